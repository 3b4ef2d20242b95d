#!/bin/sh
# valgrind_broker.sh — run one broker end-to-end test with xba-broker under valgrind (memcheck): fails on any
# memory error or definite leak in the broker.
#
# usage: tests/e2e/valgrind_broker.sh BUILD_DIR SOURCE_ROOT [TEST]     (TEST default: test_broker_routing)
# Use a plain (non-sanitizer) build: valgrind and AddressSanitizer do not mix.
# xbatest.py prepends $XBA_BROKER_WRAPPER to the broker's command line and scales its timeouts by 10 when it is
# set; XBA_E2E_DEADLINE lengthens the test's overall deadline.
set -u
BUILD=${1:?usage: $0 BUILD_DIR SOURCE_ROOT [TEST]}
SRC=${2:?usage: $0 BUILD_DIR SOURCE_ROOT [TEST]}
TEST=${3:-test_broker_routing}
command -v valgrind >/dev/null || { echo "valgrind_broker.sh: valgrind not installed" >&2; exit 77; }
if grep -q __asan_init "$BUILD/broker/xba-broker" 2>/dev/null; then
	echo "valgrind_broker.sh: $BUILD is a sanitizer build; use a plain one" >&2
	exit 2
fi
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/xba-valgrind-XXXXXX")
XBA_BROKER_WRAPPER="valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --track-fds=no --num-callers=30 --log-file=$LOGS/vg.%p.log"
export XBA_BROKER_WRAPPER
XBA_E2E_DEADLINE=${XBA_E2E_DEADLINE:-600}
export XBA_E2E_DEADLINE
/usr/bin/python3 "$SRC/tests/e2e/$TEST.py" "$BUILD" "$SRC"
rc=$?
bad=0
for f in "$LOGS"/vg.*.log; do
	[ -e "$f" ] || continue
	# A run that ended with SIGKILL (the tests' kill -9) writes no summary: nothing to judge there.
	grep -q "ERROR SUMMARY" "$f" || continue
	if grep -Eq "ERROR SUMMARY: [1-9]|definitely lost: [1-9]" "$f"; then
		echo "== valgrind: errors or definite leaks in $(basename "$f"):"
		grep -E "definitely lost|ERROR SUMMARY|Invalid|uninitialised|Mismatched" "$f" | head -20
		sed -n '/definitely lost in/,/^==[0-9]*== $/p' "$f" | head -60
		bad=1
	else
		echo "== valgrind: $(basename "$f"): $(grep -E 'ERROR SUMMARY' "$f" | sed 's/^==[0-9]*== //')"
	fi
done
n=$(ls "$LOGS" | wc -l)
[ "$n" -gt 0 ] || { echo "valgrind_broker.sh: no valgrind log written (did the test start a broker?)"; bad=1; }
if [ $bad -eq 0 ]; then rm -rf "$LOGS"; else echo "valgrind logs kept in $LOGS"; fi
[ $rc -eq 0 ] && [ $bad -eq 0 ] && { echo "valgrind_broker.sh: $TEST clean under valgrind"; exit 0; }
echo "valgrind_broker.sh: FAILED (test exit $rc, valgrind findings $bad)"
exit 1
