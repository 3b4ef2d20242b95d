#!/bin/sh
# cli_rules.sh — e2e test of `xba rules check` and `xba rules explain` as the secretariat and an officer use them:
# a region.yaml assembled from what the real `xba keygen` printed for the Sahel–Maghreb group, the rules of
# docs/rules.md §3, and alert files in the format of docs/alert-yaml.md.
#
# usage: cli_rules.sh XBA_BINARY SOURCE_ROOT
set -u
XBA=$1
SRC=$2
work=$(mktemp -d /tmp/xba-e2e-rules.XXXXXX)
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
# one_line NAME CMD...: CMD fails with exactly one line on stderr and nothing on stdout
one_line() {
	name=$1
	shift
	"$@" >"$work/out" 2>"$work/err"
	if [ -s "$work/out" ] || [ "$(wc -l <"$work/err")" -ne 1 ]; then
		fail "$name: expected one line on stderr, got: $(cat "$work/out" "$work/err")"
	else
		pass "$name"
	fi
}

# ---- the region: keys from the real keygen, neighbours as in docs/rules.md §3 ----
# entry NODE ROLE NEIGHBOURS: the region.yaml entry keygen printed, with the node's neighbours added.
entry() {
	"$XBA" keygen --node "$1" --role "$2" --out "$work/keys" >"$work/$1.out" 2>&1 ||
		fail "keygen $1: $(cat "$work/$1.out")"
	sed -n '/^  - id:/,$p' "$work/$1.out"
	[ -n "$3" ] && echo "    neighbours: [$3]"
	[ "$1" = NER ] && echo "    may_broadcast: true"
	[ "$1" = WHO-AFRO-REGIONAL-OFFICE-BRAZZA ] && echo "    publish: [health]"
	return 0
}
{
	echo "region: sahel-maghreb"
	echo "nodes:"
	entry DZA member "LBY, NER, MLI"
	entry LBY member "NER, TCD, SDN"
	entry SDN member "TCD"
	entry TCD member "NER"
	entry MLI member "NER"
	entry NER member ""
	entry IOM-ROMENA observer ""
	entry WHO-AFRO-REGIONAL-OFFICE-BRAZZA observer ""
	echo "groups:"
	echo "  maghreb: [DZA, LBY]"
	echo "  sahel: [MLI, NER, TCD]"
} >"$work/region.yaml"

cat >"$work/rules.yaml" <<'EOF'
# Sahel–Maghreb working group: routing rules (docs/rules.md)
rules:
  - name: crime-to-neighbours
    when: { category: [border-incident, smuggling, trafficking] }
    to: [neighbours]
  - name: trafficking-to-iom
    when: { category: [smuggling, trafficking], severity_at_least: moderate }
    to: [IOM-ROMENA]
  - name: health-to-all
    when: { category: health }
    to: [members, WHO-AFRO-REGIONAL-OFFICE-BRAZZA]
  - name: search-and-rescue-to-all        # an alert's `to:` then narrows it to the nodes it names
    when: { category: search-and-rescue }
    to: [members, observers]
  - name: exercises-stay-apart
    when: { status: exercise }
    deny: [observers]
EOF

# ---- rules check ----
expect "check OK" 0 "rules.yaml: OK (5 rules, version [0-9a-f]\{64\})" \
	"$XBA" rules check "$work/rules.yaml" --region "$work/region.yaml"
expect "check --json" 0 '"valid":true' "$XBA" rules check --json "$work/rules.yaml" --region "$work/region.yaml"
"$XBA" rules check "$work/rules.yaml" --region "$work/region.yaml" 2>"$work/clean.err" >/dev/null
if [ ! -s "$work/clean.err" ]; then pass "check of a sound file: no warning"; else
	fail "check of a sound file: no warning: $(cat "$work/clean.err")"; fi
# A valid file with a rule that can never send anything: OK (the broker loads it), with a warning naming the rule.
printf 'rules:\n  - name: smuggling-to-iom\n    when: { category: smuggling }\n' >"$work/dead.yaml"
printf '    to: [IOM-ROMENA]\n  - name: no-iom\n    deny: [IOM-ROMENA]\n' >>"$work/dead.yaml"
expect "check a rule that sends nothing: OK and a warning naming it" 0 \
	"dead.yaml: warning: rule 'smuggling-to-iom': deny rule 'no-iom' removes every node it names" \
	"$XBA" rules check "$work/dead.yaml" --region "$work/region.yaml"
expect "... and in --json, under warnings" 0 '"warnings":\["rule '"'"'smuggling-to-iom'"'"': deny rule' \
	"$XBA" rules check --json "$work/dead.yaml" --region "$work/region.yaml"

sed 's/to: \[IOM-ROMENA\]/to: [IOM-ROMENA, XYZ]/' "$work/rules.yaml" >"$work/broken.yaml"
expect "check broken file names file:line:col" 1 "broken.yaml:8:22: rules\[1\].to\[1\]: unknown node or group 'XYZ'" \
	"$XBA" rules check "$work/broken.yaml" --region "$work/region.yaml"
printf 'rules:\n  - name: a\n    when: { categories: health }\n    to: [members]\n' >"$work/typo.yaml"
expect "check unknown key" 1 "typo.yaml:3:13: rules\[0\].when: unknown key 'categories'" \
	"$XBA" rules check "$work/typo.yaml" --region "$work/region.yaml"
one_line "check broken file: one line" "$XBA" rules check "$work/broken.yaml" --region "$work/region.yaml"
expect "check --json on a broken file" 1 '"valid":false' \
	"$XBA" rules check --json "$work/broken.yaml" --region "$work/region.yaml"

# ---- rules explain ----
cat >"$work/smuggling.yaml" <<'EOF'
origin: NER
author: "Cdt. Moussa Issoufou"
category: smuggling
severity: minor
urgency: immediate
certainty: observed
tlp: amber
expires: 6h
info:
  - language: fr
    headline: Convoi de passeurs près d'Assamaka
  - language: ar
    headline: قافلة تهريب قرب أساماكا
  - language: en
    headline: Smuggling convoy near Assamaka
areas:
  - description: Assamaka
    circles:
      - {lat: 19.45, lon: 5.80, radius_km: 25}
EOF
"$XBA" rules explain "$work/smuggling.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml" \
	>"$work/explain.out" 2>&1
status=$?
[ $status -eq 0 ] && pass "explain smuggling exits 0" ||
	fail "explain smuggling exit $status: $(cat "$work/explain.out")"
recipients=$(awk '$2 == "recipient" && $3 == "crime-to-neighbours" { print $1 }' "$work/explain.out" | tr '\n' ' ')
[ "$recipients" = "DZA LBY MLI TCD " ] && pass "explain: DZA LBY MLI TCD by crime-to-neighbours" ||
	fail "explain recipients '$recipients': $(cat "$work/explain.out")"
[ "$(grep -c ' recipient ' "$work/explain.out")" -eq 4 ] && pass "explain: exactly 4 recipients" ||
	fail "explain: not exactly 4 recipients: $(cat "$work/explain.out")"
# The outcome column lines up on every node's line, past the observer's id of 31 characters.
cols=$(awk '/^  [A-Z]/ { match($0, /^  [^ ]+ +/); print RLENGTH }' "$work/explain.out" | sort -u | tr '\n' ' ')
[ "$cols" = "34 " ] && pass "explain: the outcome column lines up (at 34) on every line, the 31-character id's too" ||
	fail "explain: outcome columns at '$cols': $(cat "$work/explain.out")"
grep -q '^  NER  *origin$' "$work/explain.out" && pass "explain: NER is the origin" ||
	fail "explain: origin line: $(cat "$work/explain.out")"
for n in SDN IOM-ROMENA WHO-AFRO-REGIONAL-OFFICE-BRAZZA; do
	grep -q "^  $n  *not routed$" "$work/explain.out" && pass "explain: $n not routed" ||
		fail "explain: $n: $(cat "$work/explain.out")"
done

# The same alert, severe and an exercise: IOM-ROMENA is named by trafficking-to-iom, then withheld by the deny rule.
sed 's/severity: minor/severity: severe\nstatus: exercise/' "$work/smuggling.yaml" >"$work/exercise.yaml"
expect "explain: deny rule withholds IOM-ROMENA" 0 "IOM-ROMENA  *withheld  *exercises-stay-apart" \
	"$XBA" rules explain "$work/exercise.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"
# amber+strict health: WHO-AFRO-REGIONAL-OFFICE-BRAZZA is named by health-to-all and withheld by the TLP.
sed 's/category: smuggling/category: health/; s/tlp: amber/tlp: amber+strict/' "$work/smuggling.yaml" \
	>"$work/health.yaml"
expect "explain: TLP:AMBER+STRICT withholds WHO-AFRO-REGIONAL-OFFICE-BRAZZA" 0 "WHO-AFRO-REGIONAL-OFFICE-BRAZZA  *withheld  *tlp:amber+strict" \
	"$XBA" rules explain "$work/health.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"

# What xba send refuses, explain refuses too (it called these routed): a parameter that a '>' block ends with a
# line break, and a parameter named TLP (kept for the CAP mapping).
cp "$work/smuggling.yaml" "$work/folded.yaml"
printf 'parameters:\n  - name: vehicle\n    value: >\n      Toyota Land Cruiser, blanc\n' >>"$work/folded.yaml"
expect "explain refuses what send refuses: a control character in a parameter" 1 \
	"not a valid alert: parameters\[0\].value: control character 0x0A" \
	"$XBA" rules explain "$work/folded.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"
cp "$work/smuggling.yaml" "$work/tlpparam.yaml"
printf 'parameters:\n  - name: TLP\n    value: green\n' >>"$work/tlpparam.yaml"
expect "explain refuses what send refuses: a reserved parameter name" 1 "not a valid alert: parameters\[0\].name" \
	"$XBA" rules explain "$work/tlpparam.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"

# A named pipe given as the alert file (nobody writing to it): refused at once, not waited on for ever.
mkfifo "$work/pipe.yaml"
expect "explain of a named pipe nobody writes: answered at once (empty), not waited on" 2 "pipe.yaml:1:1: the file is empty" \
	timeout 20 "$XBA" rules explain "$work/pipe.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"

# Search and rescue addressed to TCD and SDN: the addressees narrow the rule's targets.
sed 's/category: smuggling/category: search-and-rescue\nto: [TCD, SDN]/' "$work/smuggling.yaml" >"$work/sar.yaml"
"$XBA" rules explain "$work/sar.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml" >"$work/sar.out" 2>&1
sar=$(awk '$2 == "recipient" { print $1 "=" $3 } $2 == "withheld" { print $1 "-" $3 }' "$work/sar.out" | tr '\n' ' ')
want="DZA-not-addressed IOM-ROMENA-not-addressed LBY-not-addressed MLI-not-addressed"
want="$want SDN=search-and-rescue-to-all TCD=search-and-rescue-to-all WHO-AFRO-REGIONAL-OFFICE-BRAZZA-not-addressed "
[ "$sar" = "$want" ] && pass "explain: search and rescue narrowed to its addressees" ||
	fail "explain sar '$sar': $(cat "$work/sar.out")"

# --json: one object per node, every line parses, and the recipients are the same.
"$XBA" rules explain --json "$work/smuggling.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml" \
	>"$work/explain.json" 2>"$work/explain.err"
status=$?
json_recipients=$(/usr/bin/python3 -c '
import json, sys
nodes = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
assert len(nodes) == 8, len(nodes)
print(" ".join(n["node"] for n in nodes if n["outcome"] == "recipient" and n["rule"] == "crime-to-neighbours"))
' "$work/explain.json" 2>&1)
[ $status -eq 0 ] && [ "$json_recipients" = "DZA LBY MLI TCD" ] && pass "explain --json parses" ||
	fail "explain --json (exit $status): $json_recipients $(cat "$work/explain.json" "$work/explain.err")"

# An ack goes back to the acknowledged alert's origin, given with --acked-origin.
cat >"$work/ack.yaml" <<'EOF'
origin: DZA
msg_type: ack
references: [3f2b8c1e-0d4a-4e8b-9c51-2a7d6e0f9b13]
tlp: amber
note: reçu / received / تم الاستلام
EOF
expect "explain ack --acked-origin" 0 "NER  *recipient  *ack" "$XBA" rules explain "$work/ack.yaml" \
	--region "$work/region.yaml" --rules "$work/rules.yaml" --acked-origin NER
expect "explain ack without --acked-origin" 0 "0 recipients" "$XBA" rules explain "$work/ack.yaml" \
	--region "$work/region.yaml" --rules "$work/rules.yaml"

# A cancel is routed by the rules like any alert, and the broker adds whoever had the alert it names: said.
cat >"$work/cancel.yaml" <<'EOF'
origin: NER
msg_type: cancel
references: [3f2b8c1e-0d4a-4e8b-9c51-2a7d6e0f9b13]
category: smuggling
tlp: amber
note: fausse alerte
EOF
expect "explain cancel: routed by the rules, with a note on who else gets it" 0 \
	"note: the broker also sends a cancel to every node that had the alert it names" \
	"$XBA" rules explain "$work/cancel.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"

# Refusals: the alert file, the alert itself, the broker's rights.
sed 's/category: smuggling/category: piracy/' "$work/smuggling.yaml" >"$work/piracy.yaml"
expect "explain unknown category names key and line" 2 "piracy.yaml:3:11: category: unknown category 'piracy'" \
	"$XBA" rules explain "$work/piracy.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"
one_line "explain unknown category: one line" \
	"$XBA" rules explain "$work/piracy.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"
grep -v '^origin:' "$work/smuggling.yaml" >"$work/no-origin.yaml"
expect "explain without origin" 2 "origin: required" \
	"$XBA" rules explain "$work/no-origin.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"
sed 's/^origin: NER/origin: ESP/' "$work/smuggling.yaml" >"$work/esp.yaml"
expect "explain origin not in region" 2 "ESP is not a node" \
	"$XBA" rules explain "$work/esp.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"
grep -v 'headline' "$work/smuggling.yaml" >"$work/no-headline.yaml"
expect "explain item without headline" 2 "no-headline.yaml:10:5: info\[0\]: missing required key 'headline'" \
	"$XBA" rules explain "$work/no-headline.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"
sed '/^info:/,$d' "$work/smuggling.yaml" >"$work/no-info.yaml"
expect "explain invalid alert" 1 "not a valid alert: info" \
	"$XBA" rules explain "$work/no-info.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"
sed 's/tlp: amber/tlp: red/' "$work/smuggling.yaml" >"$work/red.yaml"
expect "explain TLP:RED without addressees" 1 "TLP:RED goes only to explicit addressees" \
	"$XBA" rules explain "$work/red.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"
sed 's/^origin: NER/origin: WHO-AFRO-REGIONAL-OFFICE-BRAZZA/' "$work/smuggling.yaml" >"$work/who.yaml"
expect "explain observer outside its publish list" 1 "would refuse this alert: observer WHO-AFRO-REGIONAL-OFFICE-BRAZZA may not publish" \
	"$XBA" rules explain "$work/who.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"

# ---- usage: one clear line, exit 2 ----
expect "rules --help" 0 "usage: xba rules check" "$XBA" rules --help
expect "rules check --help" 0 "usage: xba rules check" "$XBA" rules check --help
expect "rules explain --help" 0 "usage: xba rules explain" "$XBA" rules explain --help
expect "rules without command" 2 "expected a command" "$XBA" rules
expect "rules unknown command" 2 "unknown command 'verify'" "$XBA" rules verify
expect "check missing --region" 2 "--region REGION.yaml is required" "$XBA" rules check "$work/rules.yaml"
one_line "check missing --region: one line" "$XBA" rules check "$work/rules.yaml"
expect "explain missing --region" 2 "--region REGION.yaml is required" \
	"$XBA" rules explain "$work/smuggling.yaml" --rules "$work/rules.yaml"
expect "explain missing --rules" 2 "--rules RULES.yaml is required" \
	"$XBA" rules explain "$work/smuggling.yaml" --region "$work/region.yaml"
expect "check unknown option" 2 "unknown or incomplete option '--colour'" \
	"$XBA" rules check --colour red "$work/rules.yaml" --region "$work/region.yaml"
one_line "check unknown option: one line" \
	"$XBA" rules check --colour red "$work/rules.yaml" --region "$work/region.yaml"
expect "explain unknown option" 2 "unknown or incomplete option" \
	"$XBA" rules explain --verbose "$work/smuggling.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"
expect "check nonexistent rules file" 2 "none.yaml: cannot open" \
	"$XBA" rules check "$work/none.yaml" --region "$work/region.yaml"
one_line "check nonexistent rules file: one line" "$XBA" rules check "$work/none.yaml" --region "$work/region.yaml"
expect "check nonexistent region" 2 "cannot open" "$XBA" rules check "$work/rules.yaml" --region "$work/none.yaml"
expect "explain nonexistent alert file" 2 "none.yaml: cannot open" \
	"$XBA" rules explain "$work/none.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"
one_line "explain nonexistent alert file: one line" \
	"$XBA" rules explain "$work/none.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"
expect "explain two files" 2 "exactly one ALERT.yaml" "$XBA" rules explain "$work/smuggling.yaml" "$work/ack.yaml" \
	--region "$work/region.yaml" --rules "$work/rules.yaml"
expect "explain bad --acked-origin" 2 "not a node id" "$XBA" rules explain "$work/ack.yaml" \
	--region "$work/region.yaml" --rules "$work/rules.yaml" --acked-origin ner

# The full example of docs/alert-yaml.md (its first yaml block) loads and routes.
awk '/^```yaml$/ && !done { inside = 1; next } /^```$/ && inside { inside = 0; done = 1 } inside' \
	"$SRC/docs/alert-yaml.md" >"$work/doc-example.yaml"
expect "docs/alert-yaml.md example explains" 0 "DZA  *recipient  *crime-to-neighbours" \
	"$XBA" rules explain "$work/doc-example.yaml" --region "$work/region.yaml" --rules "$work/rules.yaml"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
