"""test_broker_batches.py — DeliverBatch (docs/protocol.md 2.4): a node that sets Hello.deliver_batches gets the
deliveries of a pass in one frame; one that does not gets one Deliver frame each.  Either way the node must see
exactly what one Deliver at a time would give:

1. a node without the flag never gets a DeliverBatch, and gets everything;
2. a batching node's window is kept delivery by delivery: with a window of 40 and 150 alerts queued, exactly 40
   arrive (in more than one frame only if the frame limit says so), then nothing until it grants more, though it
   acknowledges what it stores (as nodes must: the broker's link window, §2.4, waits for acknowledgements);
3. no DeliverBatch is larger than Welcome.max_frame_bytes (set small here, so passes split into several frames),
   and batches really carry several deliveries;
4. an emergency published while the queue is full arrives ahead of the queued alerts, in the next frame;
5. ordinary deliveries arrive in journal order, each alert once, under the seq its PublishAck named, across a
   reconnect in the middle of the queue (what was in flight is sent again after the new Hello);
6. the broker's periodic broker.stats records add up to exactly what the nodes received: deliveries, frames;
7. a frame limit below the largest alert's delivery frame is refused by `xba-broker --check`.

usage: /usr/bin/python3 tests/e2e/test_broker_batches.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
from xbatest import C  # noqa: E402

RULES = """\
rules:
  - name: everything-to-members
    when: { category: [smuggling, health, border-incident] }
    to: [members]
"""
MAX_FRAME = 69632   # the smallest frame limit a broker accepts; a DeliverBatch of ~12 KiB deliveries holds 5
COUNT = 150
WINDOW = 40


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES, max_frame_bytes=MAX_FRAME, rate_per_second=100000,
                      rate_burst=100000, stats_interval_s=1).start()
    net = x.Net(t)
    mark = broker.log_size()
    pub = net.node(region, "NER", broker)
    legacy = net.node(region, "LBY", broker, credit=64, deliver_batches=False)
    net.connect_all()
    t.check(broker.wait_log(r"event=node\.connected node=LBY .*batches=0", t.t(5), since=mark),
            "log: node.connected says batches=0 for a node that did not ask")

    seq_of = {}
    order = []
    for i in range(COUNT):
        a = x.alert("NER", C.SMUGGLING, C.SEVERE, C.AMBER, headline=f"NER batch {i:03d} " + "x" * 100)
        a.info[0].description = "d" * 8000   # about 12 KiB per delivery
        a.info[0].instruction = "i" * 4000
        ref = pub.publish(region.seal(a))
        order.append((ref, a.id))
    net.run_until(lambda: all(r in pub.acks for r, _ in order), t.t(30))
    t.check(all(r in pub.acks and pub.acks[r].result == x.pb.OK for r, _ in order),
            f"{COUNT} publishes acknowledged OK")
    for r, aid in order:
        if r in pub.acks:
            seq_of[aid] = pub.acks[r].seq

    # The batching node comes with the whole queue waiting: its first pass fills the window at once.
    batching = net.node(region, "DZA", broker, credit=WINDOW, auto_ack=True, auto_credit=False)
    net.connect_all([batching])
    t.check(broker.wait_log(r"event=node\.connected node=DZA .*batches=1", t.t(5), since=mark),
            "log: node.connected says batches=1 for a node that asked")

    # 2. The window, delivery by delivery.
    net.run_until(lambda: len(batching.arrivals) >= WINDOW, t.t(10))
    net.sleep(0.5)
    t.eq(len(batching.arrivals), WINDOW, f"with a window of {WINDOW}, exactly {WINDOW} deliveries arrive")
    t.check(not batching.credit_violations, "no delivery beyond the window", str(batching.credit_violations[:3]))
    t.eq(batching.frames_in["deliver"], 0, "a batching node gets no single Deliver frame")
    t.check(sum(batching.batch_sizes) == len(batching.arrivals) and max(batching.batch_sizes or [0]) > 1,
            "the deliveries came in DeliverBatch frames of several each", str(batching.batch_sizes))

    # 4. An emergency jumps the queue: it is the first delivery after the next grant.  From here the node stops
    # acknowledging, so that deliveries are in flight when its connection drops (5).
    batching.auto_ack = False
    before = len(batching.arrivals)
    emerg = x.alert("NER", C.BORDER_INCIDENT, C.EXTREME, C.AMBER, emergency=True, headline="NER emergency")
    eack = pub.publish_wait(region.seal(emerg))
    t.check(eack is not None and eack.result == x.pb.OK, "an emergency published behind the queue")
    batching.ack_now()
    batching.grant(60)
    net.run_until(lambda: len(batching.arrivals) > before, t.t(10))
    net.sleep(0.5)
    nxt = batching.arrivals[before] if len(batching.arrivals) > before else None
    t.check(nxt is not None and nxt.emergency and nxt.alert_id == emerg.id,
            "after the grant, the emergency arrives first, ahead of the queued alerts",
            str(nxt))

    # 5. Reconnect with deliveries in flight (received, not acknowledged): they come again after the new Hello.
    in_flight = len(batching.pending)
    t.check(in_flight > 0, "deliveries in flight when the connection drops", str(in_flight))
    lost = {q for q, _ in batching.pending}
    # Lost with the connection: never stored, never acknowledged.
    batching.inbox = {k: v for k, v in batching.inbox.items() if v.seq not in lost}
    batching.pending = []
    first_session = batching.session
    batching.auto_ack = batching.auto_credit = True
    batching.connect()
    want = set(seq_of) | {emerg.id}
    net.run_until(lambda: want <= set(batching.inbox) and want <= set(legacy.inbox), t.t(30))
    for node in (batching, legacy):
        t.check(want <= set(node.inbox), f"{node.id}: every alert delivered",
                f"{len(want - set(node.inbox))} missing")
        got = [a for a in node.arrivals if not a.emergency]
        per_session = {}
        for a in got:
            per_session.setdefault(a.session, []).append(a.seq)
        t.check(all(s == sorted(s) for s in per_session.values()),
                f"{node.id}: ordinary deliveries arrive in journal order within each session",
                str({k: v[:8] for k, v in per_session.items()}))
        t.check(all(seq_of[a.alert_id] == a.seq for a in got if a.alert_id in seq_of),
                f"{node.id}: each delivered under the seq its PublishAck named")
        t.eq(node.seq_conflicts, [], f"{node.id}: no alert under two seqs")
    again = {a.seq for a in batching.arrivals if a.session > first_session}
    t.check(lost <= again, "every delivery in flight when the connection dropped came again after the new Hello",
            f"{len(lost - again)} of {len(lost)} did not")
    t.eq(legacy.redeliveries, 0, "the other node: each alert once")

    # 1. and 3.
    t.eq(legacy.frames_in["deliver_batch"], 0, "a node that did not ask never gets a DeliverBatch")
    t.check(legacy.frames_in["deliver"] >= COUNT + 1, "it gets one Deliver frame per delivery",
            str(legacy.frames_in["deliver"]))
    big = max(batching.batch_sizes or [0])
    t.check(1 < big < WINDOW, f"a {MAX_FRAME}-byte frame limit splits a pass into several batches "
            "(none over the limit: checked with every frame received)", str(batching.batch_sizes))

    # 7. A frame limit too small for the largest alert's delivery is refused at start-up, naming the key.
    rc, out = broker.check_config()
    t.check(rc == 0, "--check accepts max_frame_bytes at the minimum", f"exit {rc}: {out}")
    broker.write_config(max_frame_bytes=16384)
    rc, out = broker.check_config()
    t.check(rc != 0 and "max_frame_bytes" in out and "69632" in out,
            "--check refuses max_frame_bytes 16384, naming the key and the minimum 69632", f"exit {rc}: {out}")
    broker.write_config(max_frame_bytes=MAX_FRAME)

    # 6. The broker.stats records (one a second here) add up to exactly what the nodes saw, once the interval
    # that saw the last of it has been written.
    nodes = (pub, batching, legacy)
    keys = ("accepted", "rejected", "deliveries", "delivery_frames", "commits", "cache_hits", "cache_misses")

    def totals():
        return {k: sum(int(e.get(k, 0)) for e in broker.events("broker.stats")) for k in keys}
    net.run_until(lambda: totals()["deliveries"] >= sum(len(n.arrivals) for n in nodes), t.t(5))
    stats = broker.events("broker.stats")
    total = totals()
    t.check(len(stats) >= 1, "broker.stats records, one per stats_interval_s", str(len(stats)))
    t.eq(total["accepted"], COUNT + 1, "broker.stats: accepted adds up to the publishes acknowledged OK")
    t.eq(total["rejected"], 0, "broker.stats: nothing rejected")
    t.eq(total["deliveries"], sum(len(n.arrivals) for n in nodes),
         "broker.stats: deliveries add up to the deliveries the nodes received")
    t.eq(total["delivery_frames"], sum(n.frames_in["deliver"] + n.frames_in["deliver_batch"] for n in nodes),
         "broker.stats: delivery_frames add up to the Deliver and DeliverBatch frames the nodes received")
    t.eq(total["cache_hits"] + total["cache_misses"], total["deliveries"],
         "broker.stats: one envelope-cache lookup per delivery")
    # Every accepted alert names the commit that made it durable; the intervals' commits count those commits (and
    # the ones that only recorded deliveries), so they are at least the highest commit number any alert names.
    commit_nos = {int(e.get("commit", 0)) for e in broker.events("alert.accepted")}
    t.check(commit_nos and min(commit_nos) >= 1 and total["commits"] >= max(commit_nos) >= len(commit_nos),
            "broker.stats: commits add up to at least the highest alert.accepted commit= number",
            f"commits {total['commits']}, commit numbers {sorted(commit_nos)[:5]}..{max(commit_nos or {0})}")
    t.check(any(float(e.get("commit_ms_max", 0)) > 0 for e in stats) and
            all(float(e.get("pass_ms_max", -1)) >= float(e.get("commit_ms_max", 0)) for e in stats),
            "broker.stats: commit_ms_max measured, and within pass_ms_max", str(stats[:2]))
    net.check_protocol()
    net.close()


if __name__ == "__main__":
    x.main(main, deadline_s=120)
