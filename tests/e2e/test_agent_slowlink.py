"""test_agent_slowlink.py — an officer's emergency does not wait behind the country's own backlog on a slow uplink
(lib/linkwindow.c in agents/uplink.c).

TCD's agent reaches the broker through a relay in this process that carries 8 KiB/s towards the broker (a
satellite uplink; the other way is not slowed).  While the broker is down, TCD's officers queue 80 alerts of about
1 KiB.  The broker comes back; the moment TCD's agent logs link.up, an officer sends `xba broadcast`.  Before the
link window the agent put 64 publishes in flight at once (about 7 s of this link, 20 s at 32 kbit/s), and the
emergency reached the broker, and DZA, behind ~64 of them.  Now:

1. the agent keeps about a second's worth in flight, so DZA gets the emergency behind fewer than 40 of TCD's
   queued alerts (checked), and then the rest;
2. every queued alert reaches DZA once, and TCD's outbox ends empty (`xba status`);
3. the relay resets every connection for a while: the agent, whose handshakes worked this session, logs
   link.failed, not link.refused, says nothing on `xba status`'s REFUSED line, and reconnects once it stops;
4. a broker whose commits stall now and then, and says so (PublishAck.held_ms), does not cut an agent's publish
   window; one that does not say it does.

usage: /usr/bin/python3 tests/e2e/test_agent_slowlink.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys
import time
import types

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

RULES = """\
rules:
  - name: everything-to-members
    to: [members]
"""
UPLINK_BYTES_PER_S = 8 * 1024
QUEUED = 80
BEFORE_EMERGENCY_MAX = 40     # TCD's queued alerts DZA may get before the emergency (before the window: ~64)



def main(t):
    region = x.Region(t, "uplink-e2e")
    region.add("TCD", name="Chad", role="member", may_broadcast=True)
    region.add("DZA", name="Algeria", role="member")
    region.write()
    broker = x.Broker(t, region, RULES, rate_per_second=1000, rate_burst=1000)
    relay = x.SlowLink(broker.port, UPLINK_BYTES_PER_S, towards="broker")
    t.defer(relay.close)
    via_relay = types.SimpleNamespace(endpoint=relay.endpoint, public_key=broker.public_key)
    tcd = x.Agent(t, region, "TCD", via_relay)
    tcd.start()

    # The broker is down: the officers' alerts wait in TCD's outbox.
    description = "Patrouille de routine, secteur nord, rien à signaler. " * 16
    for i in range(QUEUED):
        r = tcd.cli("send", "--category", "border-incident", "--severity", "moderate", "--author", "officier-tcd",
                    "--lang", "fr", "--headline", f"Rapport de patrouille {i}", "--description", description,
                    "--wait", "0")
        if r.rc not in (0, 3):
            raise RuntimeError(f"xba send {i}: exit {r.rc}: {r.err}")
    st = tcd.status()
    t.check(st is not None and st.get("outbox_depth", 0) >= QUEUED,
            f"TCD's outbox holds the {QUEUED} alerts while the broker is down", str(st and st.get("outbox_depth")))

    broker.start()
    net = x.Net(t)
    dza = net.node(region, "DZA", broker)
    net.connect_all()
    t.check(tcd.wait_link(t.t(20), since=0), "TCD's agent: link up through the slow uplink")
    # In the background: it waits for the broker's answer, which comes behind whatever is in flight.
    bc = tcd.background("broadcast", "--headline", "Urgence : convoi armé signalé près de Zouar",
                        "--author", "chef-de-quart")

    def tcd_alerts():
        return [a for a in dza.arrivals if a.origin == "TCD"]

    done = net.run_until(lambda: len({a.alert_id for a in tcd_alerts()}) >= QUEUED + 1, t.t(60))
    t.check(done, f"DZA gets TCD's {QUEUED} queued alerts and the emergency",
            f"{len({a.alert_id for a in tcd_alerts()})} of {QUEUED + 1}")
    t.eq(bc.wait_exit(t.t(20)), 0, "xba broadcast: accepted")
    arrived = tcd_alerts()
    emergencies = [i for i, a in enumerate(arrived) if a.emergency]
    before = emergencies[0] if emergencies else len(arrived)
    headline = dza.inbox[arrived[before].alert_id].alert.info[0].headline if emergencies else ""
    t.check("convoi armé" in headline, "the emergency DZA got is the officer's broadcast", headline)
    t.check(before < BEFORE_EMERGENCY_MAX,
            f"the emergency reached DZA behind fewer than {BEFORE_EMERGENCY_MAX} of TCD's {QUEUED} queued alerts "
            "(the uplink holds about a second's worth, not 64)", f"behind {before}")
    t.log(f"DZA got TCD's emergency behind {before} of its queued alerts")
    t.eq(dza.redeliveries, 0, "DZA got no alert twice")
    st = tcd.wait_status(lambda s: s.get("outbox_depth") == 0, t.t(20))
    t.eq(st.get("outbox_depth") if st else None, 0, "TCD's outbox ends empty")

    # 3. The link resets every connection for a few seconds (a flapping satellite link).  libzmq reports it as a
    # failed CURVE handshake, as it does a wrong pinned broker key; before, the agent said REFUSED ("check
    # broker_public_key", "will not come back by itself") and waited its longest backoff.  Its key has worked this
    # session, so now it takes them for the link: link.failed, no REFUSED line, and back within seconds.
    mark = tcd.log_size()
    relay.resetting = True
    relay.drop()
    t.check(tcd.wait_log(r"event=link\.failed reason=(closed-during-handshake|handshake-failed) .*failures=3",
                         t.t(30), since=mark) is not None,
            "the link resetting connections: three failed handshakes in a row, logged as link.failed")
    st = tcd.status() or {}
    t.eq(st.get("link_problem", "?"), "", "... and xba status has no REFUSED line (link_problem empty)")
    t.check(not tcd.events("link.refused", since=mark), "... no link.refused (a configuration error) logged",
            str(tcd.events("link.refused", since=mark)[:1]))
    relay.resetting = False
    back = time.monotonic()
    t.check(tcd.wait_log(r"event=link\.up", t.t(20), since=mark) is not None, "the link back: TCD reconnects")
    t.log(f"TCD back {time.monotonic() - back:.1f} s after the link stopped resetting")

    # 4. A broker whose journal disk stalls now and then is not a slow uplink.  Two agents, each against a broker
    # of this process that answers every 4th round of publishes 1.5 s late (its commit stalled): one says so in its
    # PublishAcks (held_ms, as xba-broker does), the other does not (an older broker).  Before held_ms, every agent
    # cut its publish window for a stalling broker disk (the regression audit: 400 alerts in two minutes instead
    # of 8 s), each logging a slow uplink.
    def stalled_broker(node_id, says_held):
        fake = x.FakeBroker(t)
        agent = x.Agent(t, region, node_id, fake, name=f"agent-{node_id}-stalls-{int(says_held)}")
        agent.start()
        for i in range(30):          # queued before the fake answers the Hello: the backlog of a link back
            r = agent.cli("send", "--category", "border-incident", "--severity", "moderate", "--author", "o",
                          "--headline", f"Rapport {i}", "--wait", "0")
            if r.rc not in (0, 3):
                raise RuntimeError(f"xba send {i}: exit {r.rc}: {r.err}")
        mark = agent.mark
        state = {"answered": 0, "rounds": 0, "due": None}

        def answer_round():
            pending = fake.publishes[state["answered"]:]
            if not pending:
                return
            now = time.monotonic()
            if state["due"] is None:
                state["rounds"] += 1
                state["due"] = now + (1.5 if state["rounds"] % 4 == 0 else 0.0)
            if now < state["due"]:
                return
            held = 1500 if state["rounds"] % 4 == 0 and says_held else 0
            for p in pending:
                fake.answer(publish_ack=x.pb.PublishAck(ref=p.ref, result=x.pb.OK, seq=1000 + state["answered"],
                                                        recipients=1, held_ms=held))
                state["answered"] += 1
            state["due"] = None

        end = time.monotonic() + t.t(40)
        while state["answered"] < 30 and time.monotonic() < end:
            fake.pump(0.02)
            answer_round()
        st = agent.wait_status(lambda s: s.get("outbox_depth") == 0, t.t(10)) or {}
        cut = agent.events("link.queueing", since=mark)
        agent.stop()
        return st.get("outbox_depth"), state["rounds"], cut

    depth, rounds, cut = stalled_broker("DZA", True)
    t.check(depth == 0 and rounds >= 4 and not cut, "an agent whose broker says how long its commit held each "
            "publish (held_ms): its stalls are not taken for a slow uplink (no link.queueing)",
            f"outbox {depth}, rounds {rounds}, {[e.get('_line') for e in cut][:1]}")
    depth, rounds, cut = stalled_broker("TCD", False)
    t.check(depth == 0 and rounds >= 4 and cut, "... while the same stalls unsaid are (link.queueing direction=up): "
            "what held_ms is for", f"outbox {depth}, rounds {rounds}, cut {len(cut)}")


if __name__ == "__main__":
    x.main(main, deadline_s=240)   # 80 CLI runs under AddressSanitizer on a loaded machine take a while
