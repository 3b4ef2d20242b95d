"""test_broker_offline.py — a recipient (MLI) is offline while 200 alerts from two origins (NER, DZA) and then one
emergency are routed to it.

  session 1  resume_after=0, window 0: nothing comes until a Credit; the emergency jumps the queue; then small,
             uneven grants: the broker never has more deliveries outstanding than granted.  Closed after 120.
  session 2  resume_after = its last through_seq, window 10, a credit back per delivery: exactly the rest, nothing
             at or below resume_after again, the emergency (acknowledged selectively) not again.  Then 5 more
             alerts are delivered but never acknowledged, and the node falls silent (no heartbeats): the broker
             declares it dead after 3 x heartbeat_ms.
  session 3  the 5 come again (a redelivery on the wire, still once in the inbox); a grant beyond max_credit gets
             Error CREDIT_EXCEEDED and the window is capped at max_credit.

In the end MLI holds every alert once, in per-origin order.

usage: /usr/bin/python3 tests/e2e/test_broker_offline.py BUILD_DIR SOURCE_ROOT
"""
import os
import signal
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
PER_ORIGIN = 100
ORIGINS = ["NER", "DZA"]          # both neighbours of MLI
HB_MS = 1000
MAX_CREDIT = 64


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES, rate_per_second=1000000, rate_burst=1000000, heartbeat_ms=HB_MS,
                      max_credit=MAX_CREDIT).start()
    net = x.Net(t)
    pubs = {p: net.node(region, p, broker) for p in ORIGINS}
    admin = net.node(region, "SECRETARIAT", broker)
    mli = net.node(region, "MLI", broker, auto_credit=False)     # created, not connected
    net.connect_all([pubs["NER"], pubs["DZA"], admin])

    order = {p: [] for p in ORIGINS}

    def publish(p, a):
        order[p].append(a.id)
        return p, pubs[p].publish(region.seal(a))

    refs = [publish(p, x.alert(p, C.BORDER_INCIDENT, C.MODERATE, C.AMBER, headline=f"{p} offline {i}"))
            for i in range(PER_ORIGIN) for p in ORIGINS]
    net.run_until(lambda: all(r in pubs[p].acks for p, r in refs), t.t(20))
    acks = [pubs[p].acks.get(r) for p, r in refs]
    t.check(all(a is not None and a.result == x.pb.OK for a in acks), "200 publishes acknowledged OK while MLI is "
            "offline", str([x.code_name(a.result) for a in acks if a is not None and a.result != x.pb.OK][:3]))
    want_recips = {p: len(region.neighbours(p)) for p in ORIGINS}
    t.check(all(a is not None and a.recipients == want_recips[p] for (p, _), a in zip(refs, acks)),
            "each ack counts MLI among the recipients (an offline node is a recipient too)")
    emerg = x.alert("NER", C.BORDER_INCIDENT, C.EXTREME, C.AMBER, emergency=True, headline="NER emergency")
    eack = pubs["NER"].publish_wait(region.seal(emerg))
    t.check(eack is not None and eack.result == x.pb.OK and eack.seq > max(a.seq for a in acks),
            "an emergency from NER journaled after the 200")
    last_normal_seq = max(a.seq for a in acks)

    st = admin.status()
    mli_st = next((n for n in st.nodes if n.node_id == "MLI"), None) if st else None
    t.check(mli_st is not None and not mli_st.connected and mli_st.queue_depth == 201,
            "admin StatusReply: MLI not connected, queue_depth 201", str(mli_st))
    # The secretariat's view without an agent: SIGUSR1 makes the broker log every node's state, then who is missing.
    mark = broker.log_size()
    broker.proc.send_signal(signal.SIGUSR1)
    rec = broker.wait_log(r"event=region\.status nodes=(\d+) connected=(\d+) not_connected=\"([^\"]*)\"", t.t(10),
                          since=mark)
    missing = rec.group(3).split() if rec else []
    t.check(rec is not None and int(rec.group(1)) == len(region.nodes) and int(rec.group(2)) == 3
            and "MLI" in missing and "NER" not in missing and "SECRETARIAT" not in missing,
            "SIGUSR1: event=region.status, 3 connected, MLI among the nodes not connected", rec.group(0) if rec else "")
    t.check(broker.wait_log(r"event=node\.status node=MLI connected=0 last_seen=never queue_depth=201 ", t.t(5),
                            since=mark) is not None,
            "... and event=node.status for MLI: not connected, never seen, 201 queued", broker.log_text(mark)[-800:])
    t.check(broker.alive(), "... and the broker goes on (SIGUSR1 is not a stop)")

    # Session 1: resume_after=0, window 0.
    mli.connect(resume_after=0, credit=0)
    t.check(mli.wait_welcome(), "MLI welcomed (resume_after=0, credit=0)")
    t.eq(mli.welcome.journal_head, eack.seq, "Welcome.journal_head is the highest seq")
    net.sleep(t.t(0.5))
    t.eq(len(mli.arrivals), 0, "window 0: no Deliver before the first Credit")
    mli.grant(10)
    net.run_until(lambda: len(mli.arrivals) >= 10, t.t(5))
    net.sleep(t.t(0.5))
    t.eq(len(mli.arrivals), 10, "Credit{grant=10}: exactly 10 deliveries, then the broker waits")
    first = mli.arrivals[0] if mli.arrivals else None
    t.check(first is not None and first.alert_id == emerg.id and first.emergency,
            "the emergency jumped the queue: first delivery, emergency=true", str(first))
    rc = lambda: [r for r in pubs["NER"].receipts if r.alert_id == emerg.id and r.node_id == "MLI"
                  and r.kind == x.pb.RECEIPT_KIND_DELIVERED]
    net.run_until(rc, t.t(3))
    t.check(rc(), "NER got Receipt(DELIVERED) from MLI for the emergency (acknowledged through DeliveryAck.seqs)")
    # Small, uneven grants whenever the window is used up, until 120 are in.
    steps = [1, 3, 7, 2, 5, 10, 4, 6, 1, 9]
    i = 0
    while len(mli.arrivals) < 120:
        if not net.run_until(lambda: mli.outstanding() == 0, t.t(5)):
            break
        mli.grant(min(steps[i % len(steps)], 120 - len(mli.arrivals)))
        i += 1
    net.run_until(lambda: mli.outstanding() == 0, t.t(5))
    net.sleep(t.t(0.3))
    t.eq(len(mli.arrivals), 120, f"{i} small grants: exactly as many deliveries as granted (120)")
    t.check(not mli.credit_violations, "session 1: the broker never exceeded the granted window",
            str(mli.credit_violations[:3]))
    seqs1 = [a.seq for a in mli.arrivals if not a.emergency]
    t.check(seqs1 == sorted(seqs1), "session 1: queued deliveries in ascending seq")
    mli.ack_now()
    net.sleep(0.2)               # let the last DeliveryAck out
    resume = mli.through_seq
    mli.close()
    t.check(resume == max(seqs1), f"through_seq after session 1 is the highest normal seq delivered ({resume})")
    net.sleep(t.t(0.3))

    # Session 2: the last through_seq, a window of 10, one credit back per delivery.
    mli.auto_credit = True
    mli.connect(resume_after=resume, credit=10)
    t.check(mli.wait_welcome(), f"MLI welcomed again (resume_after={resume}, credit=10)")
    net.run_until(lambda: len(mli.inbox) >= 201, t.t(20))
    net.sleep(t.t(0.5))
    s2 = [a for a in mli.arrivals if a.session == 2]
    t.eq(len(mli.inbox), 201, "all 201 alerts in MLI's inbox")
    t.eq(len(s2), 81, "session 2 delivered exactly the 81 not yet acknowledged")
    t.check(all(a.seq > resume for a in s2), "nothing at or below resume_after was sent again",
            str([a.seq for a in s2 if a.seq <= resume][:5]))
    t.check(not any(a.alert_id == emerg.id for a in s2), "the selectively acknowledged emergency was not sent again")
    t.check(not mli.credit_violations, "session 2: never more outstanding than the window",
            str(mli.credit_violations[:3]))
    t.eq(mli.redeliveries, 0, "no alert delivered twice so far")
    t.check(not mli.seq_conflicts and not mli.quarantine, "every delivery verified, one seq per alert")
    t.check(all(a.seq <= last_normal_seq for a in s2), "session 2 seqs within the journal")

    # Still session 2: 5 more, delivered but never acknowledged; then silence.
    mli.ack_now()
    net.sleep(0.2)
    mli.auto_ack = False
    mli.heartbeats = False
    mli.auto_reconnect = False
    unacked = [publish("NER", x.alert("NER", C.SMUGGLING, C.MINOR, C.AMBER, headline=f"NER unacked {i}"))
               for i in range(5)]
    net.run_until(lambda: all(r in pubs["NER"].acks for _, r in unacked), t.t(5))
    net.run_until(lambda: len(mli.arrivals) >= 206, t.t(5))
    t.eq(len(mli.arrivals), 206, "5 more delivered to MLI, which stores them and stays silent")
    mark = broker.log_size()
    dead = broker.wait_log(r"event=node\.(dead|disconnected) node=MLI", t.t(3 * HB_MS / 1000 + 2), since=mark,
                           net=net)
    t.check(dead is not None, f"the broker declares the silent MLI dead within 3 x {HB_MS} ms (+ slack)",
            broker.log_text(mark)[-500:])
    if dead:
        t.log(dead.group(0))

    # Session 3: the unacknowledged 5 come again; the inbox holds them once.
    mli.auto_ack = True
    mli.heartbeats = True
    mli.auto_credit = False
    mli.connect(resume_after=mli.through_seq, credit=10)
    t.check(mli.wait_welcome(), "MLI welcomed a third time")
    net.run_until(lambda: len([a for a in mli.arrivals if a.session == 3]) >= 5, t.t(5))
    net.sleep(t.t(0.3))
    s3 = [a for a in mli.arrivals if a.session == 3]
    t.eq(len(s3), 5, "the 5 unacknowledged deliveries were sent again on the new session")
    t.eq(mli.redeliveries, 5, "... counted as wire redeliveries")
    t.eq(len(mli.inbox), 206, "... and the inbox still holds each alert once (206)")

    # Credit cap: a grant beyond max_credit is answered with CREDIT_EXCEEDED and the window stops at max_credit.
    n_err = len(mli.errors)
    mli.grant(100000)
    e = mli.wait_error(n_err, t.t(3))
    t.check(e is not None and e.code == x.pb.CREDIT_EXCEEDED, f"Credit{{grant=100000}} over max_credit "
            f"{MAX_CREDIT}: Error CREDIT_EXCEEDED", str(e))
    more = [publish(p, x.alert(p, C.BORDER_INCIDENT, C.MODERATE, C.AMBER, headline=f"{p} capped {i}"))
            for i in range(50) for p in ORIGINS]
    net.run_until(lambda: all(r in pubs[p].acks for p, r in more), t.t(10))
    net.run_until(lambda: len(mli.arrivals) >= 206 + 5 + MAX_CREDIT, t.t(5))
    net.sleep(t.t(0.5))
    got = len([a for a in mli.arrivals if a.session == 3]) - 5
    t.eq(got, MAX_CREDIT, f"100 new alerts: the capped window lets exactly {MAX_CREDIT} through")
    mli.grant(100 - MAX_CREDIT)
    net.run_until(lambda: len(mli.inbox) >= 306, t.t(5))
    net.sleep(t.t(0.3))
    t.eq(len(mli.inbox), 306, "after a further grant of 36 all 306 alerts are in the inbox")

    for p in ORIGINS:
        firsts = []
        for a in mli.arrivals:
            if a.origin == p and not a.emergency and a.alert_id not in firsts:
                firsts.append(a.alert_id)
        t.check(firsts == order[p], f"per-origin order: {p}'s {len(order[p])} alerts first arrived in the order "
                f"{p} sent them")
    t.check(all(a.rule == ("emergency" if a.emergency else "to-neighbours") for a in mli.arrivals),
            "every delivery credited to rule to-neighbours (the emergency to 'emergency')")
    t.check(not mli.seq_conflicts and not mli.quarantine, "no alert under two seqs, nothing quarantined")

    mli.ack_now()
    net.sleep(t.t(0.3))
    st = admin.status()
    mli_st = next((n for n in st.nodes if n.node_id == "MLI"), None) if st else None
    top = max(a.seq for a in mli.arrivals)
    t.check(mli_st is not None and mli_st.connected and mli_st.queue_depth == 0 and mli_st.cursor == top,
            f"admin StatusReply: MLI connected, queue_depth 0, cursor {top}", str(mli_st))
    t.check(all(p.session == 1 and p.frames_in["heartbeat"] > 0 for p in pubs.values()),
            f"the idle publishers got broker Heartbeats (heartbeat_ms {HB_MS}) and kept their sessions",
            str({p.id: (p.session, p.frames_in['heartbeat']) for p in pubs.values()}))

    # A second connection for MLI while the first is open: the later Hello wins (section 2.8).
    mli.auto_reconnect = False
    n_err, n_lost = len(mli.errors), len(mli.sessions_lost)
    mli2 = net.node(region, "MLI", broker, auto_reconnect=False)
    mli2.connect(resume_after=mli.through_seq, credit=10)
    t.check(mli2.wait_welcome(), "a second connection with MLI's key is welcomed")
    _, r = publish("NER", x.alert("NER", C.BORDER_INCIDENT, headline="after the double connection"))
    last = pubs["NER"].wait_ack(r)
    net.run_until(lambda: mli2.got(last.alert_id), t.t(5))
    net.sleep(t.t(0.3))
    t.check(mli2.got(last.alert_id) and not mli.got(last.alert_id),
            "the next delivery goes to the later session only")
    # The older connection's session is over: its next frame (a heartbeat, or this StatusRequest) gets NOT_READY,
    # or, silent long enough, it has given the broker up.
    if mli.state == "open":
        mli.send(status_request=x.pb.StatusRequest())
        net.run_until(lambda: len(mli.errors) > n_err or mli.state != "open", t.t(3))
    lost = mli.sessions_lost[n_lost:]
    t.check(any(e.code == x.pb.NOT_READY for e in mli.errors[n_err:]) or any(r.startswith("broker silent")
                                                                             for r in lost),
            "the older connection's session is over (NOT_READY, or nothing more from the broker)",
            f"state={mli.state} errors={[x.code_name(e.code) for e in mli.errors[n_err:]]} lost={lost}")
    mli.close()

    net.check_protocol()
    t.eq(broker.stop(), 0, "SIGTERM: broker exits 0")


if __name__ == "__main__":
    x.main(main)
