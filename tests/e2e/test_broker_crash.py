"""test_broker_crash.py — kill -9 the broker three times in the middle of four publishers' streams and restart it on
the same journal.  The publishers resend every unacknowledged publish after each new session, in order, with the
same bytes.  At the end every acknowledged alert (OK or DUPLICATE) is in the inbox of every node the rules name,
exactly once, and nowhere else; per-origin order is kept; nothing acknowledged is lost from the journal.

usage: /usr/bin/python3 tests/e2e/test_broker_crash.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
from xbatest import C  # noqa: E402

RULES = """\
rules:
  - name: to-neighbours
    to: [neighbours]
"""
PUBLISHERS = ["NER", "LBY", "TCD", "DZA"]
PER_PUBLISHER = 300
KILLS = 3


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES, rate_per_second=1000000, rate_burst=1000000, heartbeat_ms=2000).start()
    net = x.Net(t)
    receivers = [n for n in x.ALL_NODES if n != "SECRETARIAT"]
    nodes = {nid: net.node(region, nid, broker, credit=128, max_inflight=32) for nid in receivers}
    net.connect_all()

    # Sign everything first: the bytes are fixed from here on, and resent unchanged.
    order = {}      # origin -> [alert id] in publish order
    expect = {}     # alert id -> set of recipients
    origin_of = {}
    refs = {}       # (origin, ref) -> alert id
    for p in PUBLISHERS:
        order[p] = []
        for i in range(PER_PUBLISHER):
            a = x.alert(p, C.SMUGGLING if i % 2 else C.BORDER_INCIDENT, C.MODERATE, C.AMBER,
                        headline=f"{p} stream {i}")
            order[p].append(a.id)
            expect[a.id] = set(region.neighbours(p))
            origin_of[a.id] = p
            refs[(p, nodes[p].publish(region.seal(a)))] = a.id
    total = len(expect)
    t.log(f"{total} alerts signed and queued; streaming from {', '.join(PUBLISHERS)}")

    def acked():
        return sum(1 for p in PUBLISHERS for a in nodes[p].ack_log if a.result in (x.pb.OK, x.pb.DUPLICATE))

    def max_ok_seq():
        return max([a.seq for p in PUBLISHERS for a in nodes[p].ack_log if a.result == x.pb.OK] or [0])

    def in_flight():
        return sum(1 for p in PUBLISHERS for e in nodes[p].outbox.values() if e.sent)

    kills = []
    for k in range(KILLS):
        target = total * (k + 1) // (KILLS + 1)
        # Kill mid-stream: past the target and at a moment when publishes are in flight (between two bursts of
        # acks none may be, and a fast broker makes that moment likelier).
        if not net.run_until(lambda: acked() >= target and in_flight() > 0, t.t(25)):
            t.check(False, f"stream reached {target} acks with publishes in flight before kill {k + 1}",
                    f"{acked()} acks, {in_flight()} in flight")
            break
        inflight = in_flight()
        head_before = max_ok_seq()
        broker.kill9()
        kills.append((acked(), inflight))
        t.log(f"kill -9 #{k + 1} after {acked()} acks, {inflight} publishes in flight")
        # Hold the publishers back until every node has its new session, so the next kill is mid-stream too.
        for p in PUBLISHERS:
            nodes[p].max_inflight = 0
        net.sleep(0.1)
        mark = broker.log_size()
        broker.start()
        ready = broker.events("broker.ready", since=mark)
        head = int(ready[-1].get("journal_head", -1)) if ready else -1
        t.check(head >= head_before, f"restart {k + 1}: journal_head {head} >= highest acknowledged seq "
                f"{head_before} (nothing acknowledged was lost)")
        # Every node notices the kill (socket monitor), reconnects with its through_seq and says Hello again.
        t.check(net.run_until(lambda: all(n.session == k + 2 and n.state == "open" for n in nodes.values()),
                              t.t(10)),
                f"restart {k + 1}: all {len(nodes)} nodes have a new session",
                str({n.id: (n.session, n.state) for n in nodes.values()}))
        for p in PUBLISHERS:
            nodes[p].max_inflight = 32
    t.check(len(kills) == KILLS and all(inflight > 0 for _, inflight in kills),
            f"{KILLS} kills, each with publishes in flight", str(kills))

    def done():
        if any(nodes[p].outbox for p in PUBLISHERS):
            return False
        return all(nodes[r].got(aid) for aid, rs in expect.items() for r in rs)

    finished = net.run_until(done, max(5.0, t.remaining() - 15))
    net.sleep(t.t(0.5))   # settle: any stray delivery would arrive now
    t.check(finished, "every publish acknowledged and every alert delivered before the deadline",
            f"outboxes {[len(nodes[p].outbox) for p in PUBLISHERS]}")

    # Acknowledgements.
    ok = dup = other = 0
    ack_by_alert = {}
    bad_count = []
    for p in PUBLISHERS:
        for a in nodes[p].ack_log:
            aid = refs.get((p, a.ref))
            if a.result == x.pb.OK:
                ok += 1
            elif a.result == x.pb.DUPLICATE:
                dup += 1
            else:
                other += 1
                continue
            if a.alert_id != aid:
                bad_count.append(("alert_id", aid, a.alert_id))
            if a.recipients != len(expect[aid]):
                bad_count.append(("recipients", aid, a.recipients))
            if aid in ack_by_alert and ack_by_alert[aid] != a.seq:
                bad_count.append(("seq", aid, ack_by_alert[aid], a.seq))
            ack_by_alert[aid] = a.seq
    t.eq(len(ack_by_alert), total, "every alert acknowledged (OK or DUPLICATE)")
    t.eq(other, 0, "no publish refused")
    t.check(not bad_count, "every ack names its alert, the right recipient count, and DUPLICATE carries the "
            "original seq", str(bad_count[:5]))
    t.eq(len(set(ack_by_alert.values())), len(ack_by_alert), "each alert has its own journal seq")

    # Inboxes: exactly the intended recipients, each alert once.
    missing, leaks, conflicts, wire_dups, delivered = [], [], [], 0, 0
    for r in receivers:
        n = nodes[r]
        for aid, rs in expect.items():
            if r in rs and not n.got(aid):
                missing.append((r, aid))
            if r not in rs and n.got(aid):
                leaks.append((r, aid))
        conflicts += n.seq_conflicts
        wire_dups += n.redeliveries
        delivered += len(n.arrivals)
    t.check(not missing, "every acknowledged alert is in every intended recipient's inbox",
            f"{len(missing)} missing, e.g. {missing[:3]}")
    t.check(not leaks, "no alert reached a node the rules do not name (leaks=0)", str(leaks[:3]))
    t.check(not conflicts, "no alert delivered under two seqs (journaled once: inbox duplicates=0)",
            str(conflicts[:3]))
    t.check(all(not n.quarantine for n in nodes.values()), "every delivery verified at its recipient")
    t.check(all(not n.credit_violations for n in nodes.values()), "no Deliver beyond the credit window",
            str({n.id: n.credit_violations[:2] for n in nodes.values() if n.credit_violations}))

    # Per-origin order at every recipient (first arrival of each alert).
    bad_order = []
    for r in receivers:
        seen = set()
        per_origin = {}
        for arr in nodes[r].arrivals:
            if arr.alert_id in seen:
                continue
            seen.add(arr.alert_id)
            per_origin.setdefault(arr.origin, []).append(arr.alert_id)
        for p, ids in per_origin.items():
            want = [aid for aid in order[p] if r in expect[aid]]
            if ids != want:
                bad_order.append((r, p))
    t.check(not bad_order, "per-origin order kept at every recipient across the crashes", str(bad_order))
    seqs_ok = all(ack_by_alert[a] < ack_by_alert[b] for p in PUBLISHERS for a, b in zip(order[p], order[p][1:]))
    t.check(seqs_ok, "journal seqs follow each publisher's order")

    sessions = {r: nodes[r].session for r in receivers}
    t.check(all(s == KILLS + 1 for s in sessions.values()), "no session lost except at the kills",
            str({r: nodes[r].sessions_lost for r in receivers}))
    t.log(f"published {total}, acknowledged {len(ack_by_alert)} (OK {ok}, DUPLICATE {dup}), "
          f"delivered {delivered}, wire duplicates {wire_dups}, inbox duplicates {len(conflicts)}, "
          f"leaks {len(leaks)}, missing {len(missing)}")

    net.check_protocol()
    t.eq(broker.stop(), 0, "SIGTERM after the run: broker exits 0")


if __name__ == "__main__":
    x.main(main)
