#!/bin/sh
# doc_events.sh — docs/agent.md's "Log events" table is the agent's full list, and docs/operations.md §6's broker
# table the broker's: a focal point greps the journal for what they name.  Every event an agent or the broker
# logs at info level or above (a `log_info`/`log_warn`/`log_warnx("event=NAME` call in agents/ or broker/) must
# be in its table, so that a new warning cannot ship undocumented.  Debug records are left out on purpose.
#
# usage: doc_events.sh SOURCE_ROOT
set -u
root=$1
work=$(mktemp -d /tmp/xba-doc-events.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# The event names a table's rows start with (each `a.b` opening a code span in the first column).
sed -n '/^## Log events/,/^## The store/p' "$root/docs/agent.md" | grep '^|' | awk -F'|' '{print $2}' |
	grep -oE '`[a-z_]+(\.[a-z_]+)+[` ]' | tr -d '` ' | sort -u >"$work/agent.doc"
sed -n '/^\*\*The broker\*\* (the events/,/^\*\*An agent:\*\*/p' "$root/docs/operations.md" | grep '^|' |
	awk -F'|' '{print $2}' | grep -oE '`[a-z_]+(\.[a-z_]+)+[` ]' | tr -d '` ' | sort -u >"$work/broker.doc"

check() {
	what=$1 dir=$2 doc=$3
	grep -hoE 'log_(info|warn|warnx)\("event=[a-z_]+(\.[a-z_]+)+' "$root/$dir"/*.c | sed 's/.*event=//' | sort -u \
		>"$work/$what.code"
	if [ ! -s "$work/$what.code" ] || [ ! -s "$work/$what.doc" ]; then
		failed=$((failed + 1))
		echo "FAIL $what: found no events in the code or in its table (has a heading moved?)"
		return
	fi
	missing=$(comm -23 "$work/$what.code" "$work/$what.doc" | tr '\n' ' ')
	if [ -n "$missing" ]; then
		failed=$((failed + 1))
		echo "FAIL $what logs events its table ($doc) does not list: $missing"
	else
		passed=$((passed + 1))
		echo "ok   every event $what logs ($(wc -l <"$work/$what.code")) is in $doc"
	fi
}
check agent agents 'docs/agent.md "Log events"'
check broker broker 'docs/operations.md section 6'
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
