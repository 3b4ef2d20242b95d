"""test_agent_backlog.py — an emergency broadcast goes ahead of its own country's backlog.

Real xba-broker (rate limit 5 publishes a second, burst 10), real xba-agent NER (may_broadcast) and TCD.  NER's
officers queue 60 routine alerts while the broker is down; the broker comes back and NER's agent starts sending the
backlog, which the rate limit stretches over about ten seconds.  An officer at NER then broadcasts.  Before, the
agent sent its outbox strictly oldest first and the broker held an ordered session behind every RATE_LIMITED
refusal, so the emergency waited behind the whole backlog (38 s behind 1 000 alerts at the default rate in the
audit).  Now the agent sends queued emergencies first, the broker lets an emergency past a held session, and past
the rate limit within a budget of its own: TCD holds the emergency while most of the backlog is still queued.  All
60 routine alerts still arrive, in order.

usage: /usr/bin/python3 tests/e2e/test_agent_backlog.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

BACKLOG = 60


def main(t):
    region = x.region_of_five(t, "backlog-e2e")
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES, rate_per_second=5, rate_burst=10).start()
    tcd = x.Agent(t, region, "TCD", broker).start(link=True)
    ner = x.Agent(t, region, "NER", broker).start(link=True)

    broker.stop()
    for i in range(BACKLOG):
        r = ner.cli("send", "--category", "smuggling", "--severity", "minor", "--headline", f"Rapport de routine {i}",
                    "--wait", "0")
        if r.rc != 3:
            t.check(False, "a routine alert is queued while the broker is down (exit 3)", repr(r))
            return
    mark = ner.log_size()
    broker.start()
    t.check(ner.wait_link(t.t(30), since=mark), "the broker is back; NER's agent sends its backlog", "")
    ner.wait_log(r"event=alert\.deferred .*code=RATE_LIMITED", t.t(20), since=mark)
    r = ner.cli("broadcast", "--category", "search-and-rescue", "--headline", "Embarcation en détresse",
                "--json")
    em = (r.json() or [{}])[0].get("alert_id")
    t.check(em is not None, "an officer at NER broadcasts", repr(r))
    end = time.monotonic() + t.t(20)
    got, routine = None, 0
    while time.monotonic() < end:
        hist = tcd.history("--limit", "200") or []
        routine = sum(1 for e in hist if "Rapport de routine" in repr(e))
        got = next((e for e in hist if e.get("id") == em), None)
        if got is not None:
            break
        time.sleep(0.1)
    t.check(got is not None and routine < BACKLOG // 2,
            "TCD holds the emergency while most of NER's backlog is still queued (it went ahead of it)",
            f"emergency {'held' if got else 'not held'} with {routine} of {BACKLOG} routine alerts in")
    end = time.monotonic() + t.t(60)
    while time.monotonic() < end and routine < BACKLOG:
        hist = tcd.history("--limit", "200") or []
        routine = sum(1 for e in hist if "Rapport de routine" in repr(e))
        time.sleep(0.5)
    order = [int(repr(e).split("Rapport de routine ")[1].split("'")[0].split('"')[0])
             for e in reversed(tcd.history("--limit", "200") or []) if "Rapport de routine" in repr(e)]
    t.check(order == list(range(BACKLOG)), f"... and all {BACKLOG} routine alerts arrive, in order",
            str(order[:10]) + "..." + str(order[-5:]))

    # Emergencies keep their order among themselves: 70 queued while the broker is down go past both budgets (the
    # rate limit's 10 and the emergency budget's 50), the rest are refused RATE_LIMITED, and one more broadcast
    # then must not overtake them (it did: the agent sent it at once, the broker let it past the hold).  The agent's
    # publishing backoff as deployed (deploy/agent.yaml): the pause behind the refusal is long enough to overtake.
    ner.stop()
    ner.write_config(reconnect_min_ms=1000, reconnect_max_ms=15000)
    ner.start(link=True)
    broker.stop()
    for i in range(70):
        # Each is queued before the next is typed; the CLI then waits for the broker (down), so it is stopped
        # once it says the alert is queued (a fixed timeout killed slow sanitizer CLIs before they had queued).
        bc = ner.background("broadcast", "--category", "search-and-rescue", "--headline", f"Urgence {i}")
        queued = bc.wait(lambda: "queued at the agent" in bc.text(), t.t(10))
        bc.stop()
        if not queued:
            t.check(False, f"broadcast {i} queued at the agent while the broker is down", bc.text() + bc.stderr())
            return
    mark = ner.log_size()
    broker.start()
    ner.wait_link(t.t(30), since=mark)
    t.check(ner.wait_log(r"event=alert\.deferred .*code=RATE_LIMITED", t.t(20), since=mark) is not None,
            "70 queued emergencies: those past both budgets are refused RATE_LIMITED", "")
    time.sleep(1.0)                                   # the emergency budget refills a few
    ner.cli("broadcast", "--category", "search-and-rescue", "--headline", "Urgence 70", timeout=1)
    end = time.monotonic() + t.t(60)
    got = []
    while time.monotonic() < end and len(got) < 71:
        got = sorted((e.get("seq", 0), int(repr(e).split("Urgence ")[1].split("'")[0].split('"')[0]))
                     for e in tcd.history("--limit", "500") or [] if "Urgence " in repr(e))
        time.sleep(0.5)
    order = [n for _, n in got]
    t.check(order == list(range(71)), "... and all 71 reach TCD in the order NER's officers sent them",
            f"first out of order at {next((i for i, v in enumerate(order) if v != i), None)}: {order[55:]}")
    ner.stop()
    ner.write_config(reconnect_min_ms=100, reconnect_max_ms=1000)
    ner.start(link=True)

    # `broadcast --wait --timeout 45` with the broker down for 33 s: before, it gave up on the broker after 30 s
    # (exit 3, no table) and nobody followed the broadcast when it went out; --timeout now covers that wait too.
    broker.stop()
    bc = ner.background("broadcast", "--headline", "Deuxième embarcation en détresse", "--wait", "--timeout", "45")
    time.sleep(33)
    t.check(bc.alive(), "broadcast --wait --timeout 45 is still waiting for the broker after 33 s", bc.text()[-300:])
    broker.start()
    rc = bc.wait_exit(t.t(80))
    t.check(rc is not None and rc != 3 and "NODE" in bc.text() and "TCD" in bc.text(),
            "... and once the broker is back it follows the receipts (the table), not exit 3",
            f"rc={rc} {bc.text()[-600:]} {bc.stderr()[-300:]}")


if __name__ == "__main__":
    x.main(main, deadline_s=300)
