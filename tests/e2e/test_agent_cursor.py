"""test_agent_cursor.py — a broker with a stolen key, for one session, cannot make an agent lose what the real
broker holds for it afterwards.

Real xba-broker and a real xba-agent LBY; NER is a Python node (docs/protocol.md); the impostor is xbatest's
FakeBroker, whose key LBY is made to pin (a stolen broker key).  LBY receives A1 from the real broker, stops; A2 and
A3 are journaled for it meanwhile.  LBY then spends one session with the impostor, which delivers A1 again under
seq 10^12: LBY's delivery cursor jumps there.  Back on the real broker, whose journal ends far below, LBY's Hello
still says "through 10^12", and the broker marks everything queued for LBY delivered.  The agent must see from the
Welcome that the cursor means nothing in this journal (event=link.cursor_reset), resume from the highest seq it
holds, and make the broker take its marks back (a second Hello, protocol section 2.5): A2 and A3 reach LBY, the
journal records them DELIVERED because LBY has them, and LBY's cursor is back within the journal.

usage: /usr/bin/python3 tests/e2e/test_agent_cursor.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

POISON = 10 ** 12


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
    net = x.Net(t)
    ner = net.node(region, "NER", broker)
    net.connect_all()
    lby = x.Agent(t, region, "LBY", broker)
    lby.start(link=True)

    def holds(alert):
        return any(e.get("id") == alert.id for e in lby.history())

    a1 = x.alert("NER", headline="A1 before the impostor")
    env1 = region.seal(a1)
    t.check(x.code_name(ner.publish_wait(env1).result) == "OK", "A1 journaled")
    t.check(net.run_until(lambda: holds(a1), t.t(10)), "LBY holds A1")
    lby.stop()
    later = [x.alert("NER", headline=f"A{i} while LBY was away") for i in (2, 3)]
    seqs = [ner.publish_wait(region.seal(a)).seq for a in later]
    t.check(all(seqs), "A2 and A3 journaled for LBY while it is away", str(seqs))

    # One session with the impostor: A1 again, under a seq the real journal will never reach.
    fake = x.FakeBroker(t)
    lby.broker = fake
    lby.write_broker_key()
    lby.write_config()
    lby.start()
    fake.run_until(lambda: lby.events("link.up", since=lby.mark), t.t(15))
    fake.deliver(POISON, env1)
    t.check(fake.run_until(lambda: fake.through_seq() >= POISON, t.t(10)),
            "the impostor gets a DeliveryAck through 10^12 (the agent cannot tell yet)")
    lby.stop()

    # Back on the real broker.
    lby.broker = broker
    lby.write_broker_key()
    lby.write_config()
    mark = lby.log_size()
    lby.start()
    t.check(net.run_until(lambda: all(holds(a) for a in later), t.t(20)),
            "back on the real broker, LBY receives A2 and A3: nothing queued for it was lost")
    reset = lby.events("link.cursor_reset", since=mark)
    t.check(reset and reset[0].get("cursor") == str(POISON) and "resume_after" in reset[0] and
            int(reset[0]["resume_after"]) < seqs[0],
            "event=link.cursor_reset: the cursor of 10^12 given up for the highest seq LBY holds, below A2's",
            str(reset[:1]))
    for a in later:
        state = None
        for _ in range(50):                       # the DeliveryAck may still be on its way
            tr = ner.track(a.id)
            state = next((x.pb.DeliveryState.Name(r.state) for r in (tr.recipients if tr else ())
                          if r.node_id == "LBY"), None)
            if state == "DELIVERY_STATE_DELIVERED":
                break
            net.sleep(0.2)
        t.eq(state, "DELIVERY_STATE_DELIVERED",
             f"the journal records {a.info[0].headline[:2]} DELIVERED to LBY, which holds it")
    s = lby.status() or {}
    t.check(0 < s.get("through_seq", 0) < POISON, "LBY's cursor is back within the real journal",
            str(s.get("through_seq")))
    t.eq(len([e for e in lby.history() if e.get("id") == a1.id]), 1, "A1 held once, the impostor's copy deduplicated")


if __name__ == "__main__":
    x.main(main, deadline_s=120)
