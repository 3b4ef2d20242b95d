#!/bin/sh
# demo_once.sh — e2e test of the README's first command, deploy/demo/run, against an already-built tree: with
# --once it must generate the demo region, start the broker and the 9 agents on loopback, send the sample alerts,
# and exit 0 having checked every node; this test then checks the same thing again on its own, straight from each
# agent's SQLite store against `xba rules explain`, and that nothing is left running.  It also starts the region
# without --once and stops it with --stop.
#
# usage: demo_once.sh SOURCE_ROOT BUILD_DIR        (prints "N passed, N failed"; exit status 1 on any failure)
set -u
SRC=$(cd "$1" && pwd)
BUILD=$(cd "$2" && pwd)
RUN=$SRC/deploy/demo/run
XBA=$BUILD/agents/xba
work=$(mktemp -d /tmp/xba-e2e-demo.XXXXXX)
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
check() { # check NAME COMMAND...: pass if COMMAND succeeds
	name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

# Whatever happens, nothing of ours keeps running: stop any region still recorded in a pids file.
cleanup() {
	for d in "$work/once" "$work/live" "$work/wrong" "$work/clash"; do
		[ -f "$d/pids" ] && "$RUN" --stop --dir "$d" >/dev/null 2>&1
	done
	if [ "$failed" -eq 0 ] && [ -z "${XBA_E2E_KEEP:-}" ]; then
		rm -rf "$work"
	else
		echo "     (work directory kept: $work)"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# alive_from PIDFILE: prints the names of processes of PIDFILE still running (an exited process that its new
# parent has not reaped yet, a zombie, counts as stopped)
alive_from() {
	while read -r name pid; do
		state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
		[ -n "$state" ] && [ "$state" != Z ] && printf '%s ' "$name"
	done <"$1"
}

# ---- 4 (started first, in the background, checked at the end): the check can fail -------------------------------
# A build whose broker runs the rules without R5 (exercises-stay-among-members): the drill then reaches IOM-ROMENA,
# which the rules file that run --once checks against says it must not.  run --once must see it and exit 1.
fake=$work/fake-build
mkdir -p "$fake/agents" "$fake/broker"
ln -s "$XBA" "$fake/agents/xba"
ln -s "$BUILD/agents/xba-agent" "$fake/agents/xba-agent"
cat >"$fake/broker/xba-broker.tmp" <<EOF
#!/bin/sh
case " \$* " in *" --check "*) exec "$BUILD/broker/xba-broker" "\$@" ;; esac
d=\$(dirname "\$2")
sed '/^  # R5 /,\$d' "\$d/rules.yaml" >"\$d/rules-without-r5.yaml"
sed 's#^rules: .*#rules: rules-without-r5.yaml#' "\$2" >"\$d/broker-without-r5.yaml"
exec "$BUILD/broker/xba-broker" -c "\$d/broker-without-r5.yaml"
EOF
chmod +x "$fake/broker/xba-broker.tmp"
mv "$fake/broker/xba-broker.tmp" "$fake/broker/xba-broker"
(timeout 100 "$RUN" --once --no-setup --build "$fake" --dir "$work/wrong" >"$work/wrong.out" 2>&1
	echo $? >"$work/wrong.rc") &
wrong_job=$!

# ---- 1. deploy/demo/run --once ---------------------------------------------------------------------------------
start=$(date +%s)
timeout 100 "$RUN" --once --no-setup --build "$BUILD" --dir "$work/once" >"$work/once.out" 2>&1
rc=$?
took=$(($(date +%s) - start))
D=$work/once
if [ "$rc" -eq 0 ]; then pass "run --once exits 0 (${took}s)"; else fail "run --once exits 0 (exit $rc)"; tail -n 40 "$work/once.out"; fi
check "run --once says every node received exactly what the rules say" grep -q "^demo: OK" "$work/once.out"
check "run --once printed the table" test -s "$D/result.txt"
check "run --once audited the journal: chain intact" grep -q "^  journal .*hash chain intact" "$work/once.out"
check "... every routing as rules.yaml says" grep -Eq "^  routing: ([0-9]+) of \1 entries .* 0 ROUTED OTHERWISE" \
	"$work/once.out"
check "the table has no MISMATCH" sh -c "! grep -q MISMATCH '$D/result.txt'"
check "the received view shows Arabic for LBY" grep -q "قافلة تهريب مهاجرين" "$work/once.out"
check "the received view shows French for NER" grep -q "Foyer de choléra au point de passage d'Adré" "$work/once.out"

# Nothing is left running, and each process stopped cleanly (its log ends with the stop event).
check "run --once removed its pids file" test ! -f "$D/pids" -a -f "$D/pids.stopped"
left=$([ -f "$D/pids.stopped" ] && alive_from "$D/pids.stopped")
if [ -z "$left" ]; then pass "no demo process left running"; else fail "processes left running: $left"; fi
started=$(awk '$1 != "broker" { print $1 }' "$D/pids.stopped" 2>/dev/null)
n=$(echo "$started" | wc -w)
if [ "$n" -eq 9 ]; then pass "9 agents were started (8 nodes and the secretariat's)"; else
	fail "9 agents were started (got $n: $started)"
fi
for a in $started; do
	tail -n 1 "$D/logs/$a.log" | grep -q "event=agent.stopped" || fail "agent $a stopped cleanly: $(tail -n 1 "$D/logs/$a.log")"
done
if tail -n 1 "$D/logs/broker.log" | grep -q "event=broker.stopped"; then pass "broker and agents stopped cleanly"; else
	fail "broker stopped cleanly: $(tail -n 1 "$D/logs/broker.log")"
fi

# Loopback only, private keys 0600, no secretariat agent.
check "broker listens on 127.0.0.1 only" grep -q "^listen: tcp://127.0.0.1:[0-9]*$" "$D/broker.yaml"
bad=$(grep -L "^broker: tcp://127.0.0.1:" "$D"/*/agent.yaml)
if [ -z "$bad" ]; then pass "every agent talks to 127.0.0.1"; else fail "agents not on loopback: $bad"; fi
bad=$(find "$D" -name '*.key' ! -perm 600)
if [ -z "$bad" ]; then pass "every private key file is mode 0600"; else fail "private keys not 0600: $bad"; fi
check "SECRETARIAT (the admin node) runs an agent" sh -c "test -f '$D/SECRETARIAT/keys/SECRETARIAT.curve.key' && test -f '$D/SECRETARIAT/agent.yaml'"
check "the secretariat's view: nine nodes, every one connected, nothing waiting" grep -q \
	"^  9 nodes, 0 not connected; 0 deliveries waiting at the broker" "$work/once.out"
# The alerts each receiving agent stored are checked below; the secretariat's receives none.
agents=$(echo "$started" | grep -vx SECRETARIAT)
check "the generated region.yaml passes xba rules check" sh -c "'$XBA' rules check '$D/rules.yaml' --region '$D/region.yaml' >/dev/null"

# Independently of run's own check: what each agent stored (SQLite inbox) against `xba rules explain`.
nsent=$(wc -l <"$D/sent" 2>/dev/null || echo 0)
if [ "$nsent" -eq 4 ]; then pass "4 sample alerts sent"; else fail "4 sample alerts sent (got $nsent)"; fi
while read -r base _origin _id; do
	"$XBA" rules explain "$SRC/deploy/demo/alerts/$base.yaml" --region "$D/region.yaml" --rules "$D/rules.yaml" \
		--json >"$work/explain.$base" || fail "rules explain $base"
done <"$D/sent"
for a in $agents; do
	: >"$work/want.$a"
	while read -r base _origin id; do
		grep -F "\"node\":\"$a\"" "$work/explain.$base" | grep -F '"outcome":"recipient"' |
			sed "s/.*\"rule\":\"\([^\"]*\)\".*/$id \1/" >>"$work/want.$a"
	done <"$D/sent"
	sort -o "$work/want.$a" "$work/want.$a"
	sqlite3 -readonly "$D/$a/store.sqlite" "SELECT alert_id || ' ' || rule FROM inbox ORDER BY alert_id" \
		>"$work/got.$a" 2>&1
	if cmp -s "$work/want.$a" "$work/got.$a"; then
		pass "$a stored exactly the alerts and rules xba rules explain names ($(wc -l <"$work/want.$a"))"
	else
		fail "$a stored: $(tr '\n' ';' <"$work/got.$a") expected: $(tr '\n' ';' <"$work/want.$a")"
	fi
	q=$(sqlite3 -readonly "$D/$a/store.sqlite" "SELECT count(*) FROM quarantine" 2>&1)
	[ "$q" = 0 ] || fail "$a quarantined nothing (got $q)"
done
# The drill never reached an observer; the SAR alert reached IOM-ROMENA; the health alert reached WHO-AFRO.
drill=$(awk '$1 == "4-mli-drill" { print $3 }' "$D/sent")
for o in IOM-ROMENA WHO-AFRO; do
	if grep -q "$drill" "$work/got.$o" 2>/dev/null; then fail "the drill reached observer $o"; else pass "the drill did not reach $o"; fi
done

# ---- 2. the region left running, then --stop -------------------------------------------------------------------
L=$work/live
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
timeout 100 "$RUN" --no-setup --build "$BUILD" --dir "$L" --port "$port" >"$work/live.out" 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then pass "run (without --once) exits 0 and leaves the region running"; else
	fail "run (without --once) exits 0 (exit $rc)"
	tail -n 30 "$work/live.out"
fi
check "run prints the watch command for Niger" grep -qF "XBA_SOCKET=$L/NER/agent.sock" "$work/live.out"
check "run prints how to stop" grep -qF -- "--stop --dir $L" "$work/live.out"
n=$([ -f "$L/pids" ] && alive_from "$L/pids" | wc -w)
if [ "${n:-0}" -eq 10 ]; then pass "broker and 9 agents running"; else fail "broker and 9 agents running (got ${n:-0})"; fi
check "xba status at NER: link up" sh -c "XBA_SOCKET='$L/NER/agent.sock' '$XBA' status >/dev/null"
check "--port: the broker listens on the port given" grep -q "^listen: tcp://127.0.0.1:$port$" "$L/broker.yaml"
timeout 100 "$RUN" --no-setup --build "$BUILD" --dir "$work/clash" --port "$port" >"$work/clash.out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q "port $port on 127.0.0.1 is in use" "$work/clash.out" && [ ! -f "$work/clash/pids" ]; then
	pass "a second region on the same --port: exit 1, says the port is in use, leaves nothing running"
else
	fail "a second region on the same --port: exit 1 and says so (exit $rc): $(tail -n 3 "$work/clash.out")"
fi

# One country down and back (--stop/--start NODE): its alert waits at the broker, then arrives.
check "run --stop --dir L TCD exits 0" sh -c "'$RUN' --stop --dir '$L' TCD >/dev/null"
n=$([ -f "$L/pids" ] && alive_from "$L/pids" | wc -w)
if [ "${n:-0}" -eq 9 ] && ! grep -q "^TCD " "$L/pids"; then pass "... TCD stopped, the other 9 running"; else
	fail "... TCD stopped, the other 9 running (got ${n:-0}: $(cat "$L/pids"))"
fi
"$RUN" --stop --dir "$L" TCD >"$work/stop-again.out" 2>&1
if [ $? -eq 1 ] && grep -q "TCD is not running" "$work/stop-again.out"; then pass "... stopping it again: exit 1, says so";
else fail "... stopping it again: exit 1, says so: $(cat "$work/stop-again.out")"; fi
XBA_SOCKET=$L/NER/agent.sock "$XBA" send --category border-incident --severity moderate --lang en \
	--headline "Sent while Chad is down" --json >"$work/down.json" 2>&1
down=$(sed -n 's/.*"alert_id":"\([0-9a-f-]*\)".*/\1/p' "$work/down.json" | head -n 1)
if [ -n "$down" ]; then pass "NER sent an alert for its neighbours"; else fail "NER sent: $(cat "$work/down.json")"; fi
XBA_SOCKET=$L/NER/agent.sock "$XBA" track "$down" >"$work/track-down.out" 2>&1
check "... its track says TCD queued" grep -q "^TCD  *queued" "$work/track-down.out"
XBA_SOCKET=$L/SECRETARIAT/agent.sock "$XBA" status --region >"$work/region-down.out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q "^TCD  *member  *DOWN .* 1$" "$work/region-down.out" &&
	grep -q "9 nodes, 1 not connected: TCD; 1 delivery waiting" "$work/region-down.out"; then
	pass "... the secretariat's xba status --region: TCD DOWN, 1 waiting for it, exit 1"
else
	fail "... the secretariat's xba status --region (exit $rc): $(cat "$work/region-down.out")"
fi
check "run --start --dir L TCD exits 0" sh -c "'$RUN' --start --dir '$L' TCD >/dev/null"
got=0
for _ in $(seq 1 100); do
	if XBA_SOCKET=$L/TCD/agent.sock "$XBA" history --id "$down" >/dev/null 2>&1; then got=1; break; fi
	sleep 0.2
done
if [ "$got" -eq 1 ]; then pass "... TCD, started again, received it"; else fail "... TCD, started again, received it"; fi
"$RUN" --start --dir "$L" TCD >"$work/start-again.out" 2>&1
if [ $? -eq 1 ] && grep -q "TCD is already running" "$work/start-again.out"; then pass "... starting it again: exit 1, says so"
else fail "... starting it again: exit 1, says so: $(cat "$work/start-again.out")"; fi
"$RUN" --start --dir "$L" >/dev/null 2>&1
if [ $? -eq 2 ]; then pass "run --start without names: exit 2"; else fail "run --start without names: exit 2"; fi
if [ -f "$L/pids" ]; then cp "$L/pids" "$work/live.pids"; else : >"$work/live.pids"; fi
check "run --stop exits 0" sh -c "'$RUN' --stop --dir '$L' >/dev/null"
left=$(alive_from "$work/live.pids")
if [ -z "$left" ]; then pass "--stop left nothing running"; else fail "--stop left running: $left"; fi
"$RUN" --stop --dir "$L" >/dev/null 2>&1
if [ $? -eq 1 ]; then pass "--stop again: exit 1, nothing to stop"; else fail "--stop again: exit 1"; fi

# ---- 3. refusals --------------------------------------------------------------------------------------------------
"$RUN" --no-setup --build "$BUILD" --dir "$L" >"$work/refuse.out" 2>&1
if [ $? -eq 1 ] && grep -q "not empty" "$work/refuse.out"; then pass "run refuses a directory that is not empty"; else
	fail "run refuses a directory that is not empty: $(cat "$work/refuse.out")"
fi
"$RUN" --frobnicate >/dev/null 2>&1
if [ $? -eq 2 ]; then pass "run: unknown argument exits 2"; else fail "run: unknown argument exits 2"; fi
"$RUN" --port 70000 >"$work/badport.out" 2>&1
if [ $? -eq 2 ] && grep -q "is not a port number" "$work/badport.out"; then pass "run --port 70000: exit 2, says why"
else fail "run --port 70000: exit 2, says why: $(head -n 1 "$work/badport.out")"; fi

# ---- 4. (end) the check can fail: run --once with that broker --------------------------------------------------
wait $wrong_job
rc=$(cat "$work/wrong.rc" 2>/dev/null || echo none)
if [ "$rc" = 1 ]; then pass "run --once exits 1 when a node receives what the rules do not say"; else
	fail "run --once exits 1 when a node receives what the rules do not say (exit $rc)"
	tail -n 30 "$work/wrong.out"
fi
check "... and its table names it: IOM-ROMENA got the drill" \
	grep -q "IOM-ROMENA  *4-mli-drill .*MISMATCH" "$work/wrong.out"
check "... and its audit finds no entry routed by the rules.yaml it was given" grep -q "NOTHING CHECKED" \
	"$work/wrong.out"
left=$([ -f "$work/wrong/pids.stopped" ] && alive_from "$work/wrong/pids.stopped")
if [ -z "$left" ] && [ ! -f "$work/wrong/pids" ]; then pass "... and stops everything"; else fail "left running: $left"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
