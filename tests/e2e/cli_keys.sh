#!/bin/sh
# cli_keys.sh — e2e test of `xba keygen` and `xba verify` as an operator uses them: real key files on disk, a
# region.yaml assembled from what keygen printed, real signed envelopes.
#
# usage: cli_keys.sh XBA_BINARY SEAL_ALERT_BINARY
set -u
XBA=$1
SEAL=$2
work=$(mktemp -d /tmp/xba-e2e-keys.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
# expect NAME EXPECTED_STATUS PATTERN CMD...: run CMD, check exit status and that output matches PATTERN
expect() {
	name=$1 want=$2 pattern=$3
	shift 3
	out=$("$@" 2>&1)
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "$name (exit $got, expected $want): $out"
	elif ! printf '%s\n' "$out" | grep -q -e "$pattern"; then
		fail "$name (output lacks '$pattern'): $out"
	else
		pass "$name"
	fi
}

# keygen for two members; region.yaml is assembled from the entries keygen printed, as the secretariat would.
"$XBA" keygen --node NER --name Niger --out "$work/keys" >"$work/ner.out" 2>&1 &&
	grep -q "fingerprint SHA256:" "$work/ner.out" && pass "keygen NER" || fail "keygen NER: $(cat "$work/ner.out")"
"$XBA" keygen --node NER --out "$work/keys" >/dev/null 2>&1 && fail "keygen refuses to overwrite" ||
	pass "keygen refuses to overwrite"
{
	echo "region: e2e"
	echo "nodes:"
	sed -n '/^  - id:/,$p' "$work/ner.out"
	"$XBA" keygen --node LBY --name Libya --out "$work/keys" | sed -n '/^  - id:/,$p'
} >"$work/region.yaml"
"$XBA" keygen --node NER --out "$work/keys2" >/dev/null

[ "$(stat -c %a "$work/keys/NER.sign.key")" = 600 ] && pass "signing key mode 0600" || fail "signing key mode 0600"
[ "$(stat -c %a "$work/keys/NER.curve.key")" = 600 ] && pass "CURVE key mode 0600" || fail "CURVE key mode 0600"

expect "keygen without --node" 2 "--node ID is required" "$XBA" keygen --out "$work/x"
expect "keygen bad node id" 2 "not a node id" "$XBA" keygen --node ner --out "$work/x"
expect "keygen member not ISO 3166" 2 "ISO 3166" "$XBA" keygen --node XYZ --role member --out "$work/x"
expect "keygen unknown option" 2 "unknown or incomplete option" "$XBA" keygen --colour red --node NER --out "$work/x"
expect "keygen --help" 0 "usage: xba keygen" "$XBA" keygen --help
expect "keygen --out with missing parents" 0 "keys for TCD written to" "$XBA" keygen --node TCD --out "$work/new/nested/keys"
[ "$(stat -c %a "$work/new/nested")" = 700 ] && pass "keygen: the parents it made are 0700" ||
	fail "keygen: parent mode $(stat -c %a "$work/new/nested")"
expect "unknown command" 2 "unknown command" "$XBA" frobnicate

# A sealed alert verifies, and names its signer.
"$SEAL" "$work/keys/NER.sign.key" NER "$work/ner.env" >/dev/null || fail "seal NER alert"
expect "verify valid" 0 "signed by NER (Niger)" "$XBA" verify "$work/ner.env" --region "$work/region.yaml"
expect "verify --json" 0 '"valid":true' "$XBA" verify --json "$work/ner.env" --region "$work/region.yaml"

# A flipped byte near the end (inside the signature) is refused.
size=$(stat -c %s "$work/ner.env")
cp "$work/ner.env" "$work/flipped.env"
printf '\377' | dd of="$work/flipped.env" bs=1 seek=$((size - 10)) conv=notrunc 2>/dev/null
expect "verify flipped byte" 1 "NOT VALID" "$XBA" verify "$work/flipped.env" --region "$work/region.yaml"

# LBY's key signing an alert that claims NER as origin.
"$SEAL" "$work/keys/LBY.sign.key" NER "$work/forged.env" >/dev/null || fail "seal forged alert"
expect "verify wrong signer" 1 "wrong-signer" "$XBA" verify "$work/forged.env" --region "$work/region.yaml"

# A key not in the directory (NER's second key pair).
"$SEAL" "$work/keys2/NER.sign.key" NER "$work/unknown.env" >/dev/null || fail "seal with unknown key"
expect "verify unknown key" 1 "unknown-key" "$XBA" verify "$work/unknown.env" --region "$work/region.yaml"

# A world-readable private key is refused by every loader.
chmod 644 "$work/keys/NER.sign.key"
expect "world-readable key refused" 2 "chmod 600" "$SEAL" "$work/keys/NER.sign.key" NER "$work/x.env"
chmod 600 "$work/keys/NER.sign.key"

head -c 300 /dev/urandom >"$work/garbage.env"
expect "verify garbage" 1 "NOT VALID" "$XBA" verify "$work/garbage.env" --region "$work/region.yaml"
expect "verify missing file" 2 "cannot open" "$XBA" verify "$work/none.env" --region "$work/region.yaml"
expect "verify without --region" 2 "--region" "$XBA" verify "$work/ner.env"
printf 'region: e2e\nnodes:\n  - id: NER\n    bogus: 1\n' >"$work/bad.yaml"
expect "verify broken region.yaml" 2 "bad.yaml:4:5" "$XBA" verify "$work/ner.env" --region "$work/bad.yaml"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
