"""test_hard_crash.py — crash safety under load (issue "Hardening", priority 1).

Phase 1: six publishing nodes (DZA, LBY, SDN, TCD, MLI, NER, Python protocol clients) stream alerts for a bounded
time while the broker is SIGKILLed at random moments (at least 10 times) and restarted on the same journal.
Phase 2: a second broker; four Python publishers stream alerts to two real xba-agent receivers (SDN, MLI) that are
SIGKILLed at random moments and restarted on their stores.
At the end of each phase: every acknowledged alert is in every intended recipient's inbox exactly once, nothing
reached a node the rules exclude (observers for crime alerts, non-addressees of TLP:RED), per-origin order kept;
the journal passes `xba audit verify` (chain, signatures, routing), and, in phase 2, everything each killed
agent's store holds is in the journal under the same seq and bytes (--agent-records).

usage: /usr/bin/python3 tests/e2e/test_hard_crash.py BUILD_DIR SOURCE_ROOT
"""
import collections
import os
import random
import re
import sqlite3
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
from xbatest import C  # noqa: E402

RULES = """\
rules:
  - name: crime-to-neighbours
    when: { category: [border-incident, smuggling, trafficking] }
    to: [neighbours]
  - name: health-to-members
    when: { category: health }
    to: [members, WHO-AFRO]
"""
MEMBERS = ["DZA", "LBY", "SDN", "TCD", "MLI", "NER"]
PHASE1_S = 18.0          # publishing time with broker kills
PHASE1_KILLS = 10
PHASE2_S = 12.0          # publishing time with agent kills
PHASE2_KILLS = 8
MAX_QUEUED = 100         # per publisher: keep at most this many unacknowledged in the outbox


class Stream:
    """Generates alerts for a set of publishers and remembers who must receive each."""

    def __init__(self, t, region, nodes, publishers, rng, limit_per_pub):
        self.t, self.region, self.nodes, self.publishers, self.rng = t, region, nodes, publishers, rng
        self.limit = limit_per_pub
        self.order = {p: [] for p in publishers}
        self.expect = {}
        self.refs = {}
        self.count = collections.Counter()
        self.running = True
        self.pace = None          # (start, seconds): spread limit_per_pub evenly over that time

    def expected(self, a):
        p = a.origin
        if a.tlp == C.RED:
            return set(a.addressees)
        if a.category == C.HEALTH:
            return (set(MEMBERS) | {"WHO-AFRO"}) - {p}
        return set(self.region.neighbours(p))

    def make(self, p):
        i = self.count[p]
        self.count[p] += 1
        if i % 7 == 3:
            nb = self.rng.choice(self.region.neighbours(p))
            a = x.alert(p, C.SMUGGLING, C.SEVERE, C.RED, addressees=[nb], headline=f"{p} red {i} for {nb}")
        elif i % 3 == 0:
            a = x.alert(p, C.HEALTH, C.MODERATE, C.AMBER, headline=f"{p} health {i}")
        else:
            a = x.alert(p, C.SMUGGLING if i % 2 else C.BORDER_INCIDENT, C.MODERATE, C.AMBER,
                        headline=f"{p} stream {i}")
        return a

    def tick(self):
        if not self.running:
            return
        limit = self.limit
        if self.pace is not None:
            limit = min(self.limit, int(self.limit * (time.monotonic() - self.pace[0]) / self.pace[1]) + 1)
        for p in self.publishers:
            n = self.nodes[p]
            k = 0
            while len(n.outbox) < MAX_QUEUED and self.count[p] < limit and k < 20:
                a = self.make(p)
                self.order[p].append(a.id)
                self.expect[a.id] = self.expected(a)
                self.refs[(p, n.publish(self.region.seal(a)))] = a.id
                k += 1

    def acked(self):
        return sum(1 for p in self.publishers for a in self.nodes[p].ack_log if a.result in (x.pb.OK, x.pb.DUPLICATE))

    def drained(self):
        return not any(self.nodes[p].outbox for p in self.publishers)

    def check_acks(self, label):
        ok = dup = other = 0
        ack_by_alert, bad = {}, []
        for p in self.publishers:
            for a in self.nodes[p].ack_log:
                aid = self.refs.get((p, a.ref))
                if a.result == x.pb.OK:
                    ok += 1
                elif a.result == x.pb.DUPLICATE:
                    dup += 1
                else:
                    other += 1
                    bad.append(("refused", aid, x.code_name(a.result), a.message))
                    continue
                if a.recipients != len(self.expect[aid]):
                    bad.append(("recipients", aid, a.recipients, len(self.expect[aid])))
                if aid in ack_by_alert and ack_by_alert[aid] != a.seq:
                    bad.append(("seq", aid, ack_by_alert[aid], a.seq))
                ack_by_alert[aid] = a.seq
        self.t.eq(len(ack_by_alert), len(self.expect), f"{label}: every published alert acknowledged")
        self.t.check(not bad, f"{label}: no refusal; each ack has the right recipient count; DUPLICATE keeps the seq",
                     str(bad[:5]))
        self.t.eq(len(set(ack_by_alert.values())), len(ack_by_alert), f"{label}: each alert has its own journal seq")
        return ack_by_alert, ok, dup


def inbox_check(t, label, stream, receivers, inboxes, order_lists):
    """inboxes: receiver -> Counter(alert id -> copies); order_lists: receiver -> [(origin, id)] in arrival order."""
    missing, leaks, dups, delivered, bad_order = [], [], [], 0, []
    for r in receivers:
        box = inboxes[r]
        delivered += sum(box.values())
        for aid, rs in stream.expect.items():
            if r in rs and box.get(aid, 0) == 0:
                missing.append((r, aid))
            if r not in rs and box.get(aid, 0):
                leaks.append((r, aid))
        dups += [(r, aid, c) for aid, c in box.items() if c > 1]
        per_origin = collections.defaultdict(list)
        seen = set()
        for origin, aid in order_lists.get(r, []):
            if aid not in seen:
                seen.add(aid)
                per_origin[origin].append(aid)
        for p, ids in per_origin.items():
            if p not in stream.order:
                continue
            want = [aid for aid in stream.order[p] if r in stream.expect[aid]]
            if ids != want:
                bad_order.append((r, p, len(ids), len(want)))
    t.check(not missing, f"{label}: every acknowledged alert is in every intended recipient's inbox",
            f"{len(missing)} missing, e.g. {missing[:3]}")
    t.check(not dups, f"{label}: each alert exactly once in each inbox (duplicates=0)", str(dups[:3]))
    t.check(not leaks, f"{label}: nothing reached a node the rules exclude (leaks=0)", str(leaks[:3]))
    t.check(not bad_order, f"{label}: per-origin order kept at every recipient", str(bad_order[:3]))
    return delivered, len(dups), len(leaks), len(missing)


def phase1(t, region, rng):
    broker = x.Broker(t, region, RULES, name="broker1", rate_per_second=1000000, rate_burst=1000000,
                      heartbeat_ms=2000).start()
    net = x.Net(t)
    receivers = MEMBERS + ["IOM-ROMENA", "WHO-AFRO"]
    nodes = {nid: net.node(region, nid, broker, credit=128, max_inflight=32) for nid in receivers}
    net.connect_all()
    stream = Stream(t, region, nodes, MEMBERS, rng, limit_per_pub=10**9)
    net.tickers.append(stream.tick)
    t0 = time.monotonic()
    kills, heads_ok, inflight_at_kill = 0, True, []
    next_kill = t0 + rng.uniform(0.6, 1.6)
    while time.monotonic() - t0 < PHASE1_S or kills < PHASE1_KILLS:
        net.pump(0.02)
        if time.monotonic() >= next_kill:
            head_before = max([a.seq for p in MEMBERS for a in nodes[p].ack_log if a.result == x.pb.OK] or [0])
            inflight_at_kill.append(sum(1 for p in MEMBERS for e in nodes[p].outbox.values() if e.sent))
            broker.kill9()
            kills += 1
            net.sleep(rng.uniform(0.0, 0.3))
            mark = broker.log_size()
            broker.start()
            ready = broker.events("broker.ready", since=mark)
            head = int(ready[-1].get("journal_head", -1)) if ready else -1
            if head < head_before:
                heads_ok = False
                t.log(f"kill {kills}: journal_head {head} < acknowledged seq {head_before}")
            next_kill = time.monotonic() + rng.uniform(0.6, 1.6)
        if time.monotonic() - t0 > PHASE1_S + 30:
            break
    stream.running = False
    t.log(f"phase 1: {kills} broker kills, publishes in flight at each: {inflight_at_kill}")
    t.check(kills >= PHASE1_KILLS, f"phase 1: broker SIGKILLed at least {PHASE1_KILLS} times at random moments",
            str(kills))
    t.check(sum(1 for i in inflight_at_kill if i > 0) >= PHASE1_KILLS // 2,
            "phase 1: most kills hit publishes in flight", str(inflight_at_kill))
    t.check(heads_ok, "phase 1: after every restart journal_head >= highest acknowledged seq")

    def done():
        return stream.drained() and all(nodes[r].got(aid) for aid, rs in stream.expect.items() for r in rs)
    finished = net.run_until(done, t.t(20))
    net.sleep(t.t(0.5))
    t.check(finished, "phase 1: every publish acknowledged and every alert delivered after the last restart",
            f"outboxes {[len(nodes[p].outbox) for p in MEMBERS]}")
    _, ok, dup = stream.check_acks("phase 1")
    inboxes = {r: collections.Counter(a.alert_id for a in nodes[r].arrivals) for r in receivers}
    # The wire may redeliver (at least once); the inbox dedups by id: count inbox duplicates as seq conflicts.
    inbox_dups = {r: collections.Counter() for r in receivers}
    for r in receivers:
        for aid in nodes[r].inbox:
            inbox_dups[r][aid] = 1
        for aid, _, _ in nodes[r].seq_conflicts:
            inbox_dups[r][aid] += 1
    orders = {r: [(a.origin, a.alert_id) for a in nodes[r].arrivals] for r in receivers}
    delivered, ndup, nleak, nmiss = inbox_check(t, "phase 1", stream, receivers, inbox_dups, orders)
    wire = sum(n.redeliveries for n in nodes.values())
    t.check(all(not n.quarantine for n in nodes.values()), "phase 1: every delivery verified at its recipient")
    t.check(all(not n.credit_violations for n in nodes.values()), "phase 1: no Deliver beyond the credit window")
    print(f"     phase 1 counts: published {len(stream.expect)}, acknowledged {ok + dup} (OK {ok}, DUPLICATE {dup}), "
          f"delivered {delivered}, wire redeliveries {wire}, duplicates {ndup}, leaks {nleak}, missing {nmiss}, "
          f"broker kills {kills}", flush=True)
    net.check_protocol()
    t.eq(broker.stop(), 0, "phase 1: SIGTERM after the run: broker exits 0")
    # The journal after every kill, as an auditor reads it: the chain unbroken, every alert's signature valid, every
    # routing what the rules say.
    rc, out = x.audit_verify(t, broker.journal_path, "--region", broker.region_path, "--rules", broker.rules_path)
    t.check(rc == 0 and "hash chain intact" in out and " 0 ROUTED OTHERWISE" in out,
            "phase 1: after the kills, xba audit verify passes: chain, signatures, routing", out[-600:])
    net.close()


def phase2(t, region, rng):
    broker = x.Broker(t, region, RULES, name="broker2", rate_per_second=1000000, rate_burst=1000000,
                      heartbeat_ms=2000).start()
    agents = {nid: x.Agent(t, region, nid, broker, name=f"agent2-{nid}") for nid in ("SDN", "MLI")}
    for a in agents.values():
        a.start(link=True)
    pubs = ["DZA", "LBY", "TCD", "NER"]
    net = x.Net(t)
    nodes = {nid: net.node(region, nid, broker, credit=128, max_inflight=32) for nid in pubs + ["IOM-ROMENA"]}
    net.connect_all()
    stream = Stream(t, region, nodes, pubs, rng, limit_per_pub=500)
    t0 = time.monotonic()
    stream.pace = (t0, PHASE2_S - 2)
    net.tickers.append(stream.tick)
    kills = 0
    next_kill = t0 + rng.uniform(0.5, 1.5)
    while time.monotonic() - t0 < PHASE2_S or kills < PHASE2_KILLS:
        net.pump(0.02)
        if time.monotonic() >= next_kill:
            victim = agents[rng.choice(sorted(agents))]
            victim.kill9()
            kills += 1
            net.sleep(rng.uniform(0.0, 0.4))
            victim.start(wait=False)
            next_kill = time.monotonic() + rng.uniform(0.6, 1.6)
        if time.monotonic() - t0 > PHASE2_S + 30:
            break
    stream.running = False
    t.check(kills >= PHASE2_KILLS, f"phase 2: receiving agents SIGKILLed at least {PHASE2_KILLS} times", str(kills))
    for a in agents.values():
        if not a.wait_log(r"event=agent\.ready", t.t(15), since=a.mark):
            t.check(False, f"phase 2: {a.name} restarted", a.log_text(a.mark)[-500:])
    finished = net.run_until(stream.drained, t.t(15))
    t.check(finished, "phase 2: every publish acknowledged", f"outboxes {[len(nodes[p].outbox) for p in pubs]}")
    _, ok, dup = stream.check_acks("phase 2")

    def histories():
        # The agent's own store, read-only (`xba history` caps one reply at 768 KiB, fewer rows than we need).
        out = {}
        for nid, a in agents.items():
            db = sqlite3.connect(f"file:{a.store_path}?mode=ro", uri=True, timeout=5)
            try:
                out[nid] = [{"id": r[0], "origin": r[1]} for r in
                            db.execute("SELECT alert_id, origin FROM inbox ORDER BY id")]
            except sqlite3.Error:
                out[nid] = []
            finally:
                db.close()
        return out

    def all_there():
        h = histories()
        return all(aid in {e.get("id") for e in h[r]} for aid, rs in stream.expect.items() for r in rs
                   if r in agents)
    end = time.monotonic() + t.t(20)
    while time.monotonic() < end and not all_there():
        net.sleep(0.5)
    net.sleep(t.t(0.5))
    h = histories()
    inboxes = {r: collections.Counter(e.get("id") for e in h[r]) for r in agents}
    orders = {r: [(e.get("origin"), e.get("id")) for e in h[r]] for r in agents}
    # Only the agents' inboxes are judged in phase 2 (the Python receivers are not the subject here).
    sub = Stream(t, region, nodes, pubs, rng, 0)
    sub.order = stream.order
    sub.expect = {aid: rs & set(agents) for aid, rs in stream.expect.items()}
    delivered, ndup, nleak, nmiss = inbox_check(t, "phase 2 (real agents)", sub, list(agents), inboxes, orders)
    iom_leak = [aid for aid in nodes["IOM-ROMENA"].inbox]
    t.check(not iom_leak, "phase 2: observer IOM-ROMENA received none of the crime/health/RED alerts", str(iom_leak[:3]))
    print(f"     phase 2 counts: published {len(stream.expect)}, acknowledged {ok + dup} (OK {ok}, DUPLICATE {dup}), "
          f"delivered to agents {delivered}, duplicates {ndup}, leaks {nleak + len(iom_leak)}, missing {nmiss}, "
          f"agent kills {kills}", flush=True)
    # Each killed agent's store against the journal: every alert it holds is there, under its seq, same bytes.
    for a in agents.values():
        rc, out = x.audit_verify(t, broker.journal_path, "--agent-records", "--socket", a.socket)
        t.check(rc == 0 and re.search(r"agent \S+: \d+ records .*: (\d+) in the journal as the agent holds them, 0 NOT",
                                      out),
                f"phase 2: xba audit verify --agent-records: everything {a.name} holds is in the journal", out[-600:])
    for a in agents.values():
        t.eq(a.stop(), 0, f"phase 2: {a.name} exits 0 on SIGTERM")
    t.eq(broker.stop(), 0, "phase 2: SIGTERM after the run: broker exits 0")
    net.close()


def main(t):
    seed = int(os.environ.get("XBA_HARD_SEED", str(int(time.time()))))
    t.log(f"random seed {seed} (XBA_HARD_SEED to replay)")
    rng = random.Random(seed)
    region = x.sahel_region(t)
    phase1(t, region, rng)
    phase2(t, region, rng)


if __name__ == "__main__":
    x.main(main, deadline_s=88)
