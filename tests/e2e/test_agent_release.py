"""test_agent_release.py — a large quarantine released without holding the agent up.

A real xba-agent LBY behind a fake broker (xbatest.FakeBroker) is delivered 5 000 alerts signed by a key its
region.yaml does not list yet (a member's new key, not distributed here): all are quarantined.  The file that lists
the key is installed and the agent reloaded.  Before, the agent verified and released all of them in one go on its
event loop (40 000 took 8 s in the audit: officers' commands, deliveries and heartbeats waited, and the broker
declared the node dead).  Now it releases them a batch of 256 per loop turn: `xba status`, asked over and over
meanwhile, is answered while the release is under way (some answers count fewer than 5 000 and more than 0 still
quarantined), and in the end every one is released.

usage: /usr/bin/python3 tests/e2e/test_agent_release.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

HELD = 5000


def main(t):
    region = x.sahel_region(t)
    fake = x.FakeBroker(t)
    lby = x.Agent(t, region, "LBY", fake, credit=1024).start()
    t.check(fake.run_until(lambda: lby.events("link.up"), t.t(15)), "the agent is up behind the fake broker")
    stranger = region.stranger("NER")
    envs = [region.seal(x.alert("NER", headline=f"Clé pas encore distribuée {i}"), signer=stranger.signing_keys[0])
            for i in range(HELD)]
    seq = 0
    while seq < HELD:
        room = fake.credit - fake.delivered
        if room <= 0:
            fake.pump(0.02)
            continue
        n = min(room, 200, HELD - seq)
        fake.deliver_batch([(seq + 1 + i, envs[seq + i]) for i in range(n)])
        seq += n
    held = lby.wait_status(lambda s: s.get("quarantined") == HELD, t.t(60)) or {}
    t.eq(held.get("quarantined"), HELD, f"all {HELD} deliveries are quarantined (UNKNOWN_KEY)")

    mark = lby.log_size()
    region.nodes["NER"].signing_keys.append(stranger.signing_keys[0])
    lby.write_region()
    lby.hup()
    seen = []
    while not lby.events("quarantine.rechecked", since=mark):
        fake.pump(0.01)
        s = lby.status() or {}
        seen.append(s.get("quarantined"))
        if len(seen) > 2000:
            break
    during = [q for q in seen if q is not None and 0 < q < HELD]
    t.check(len(during) > 0, "xba status is answered while the release is under way (a batch per loop turn)",
            f"quarantined counts seen: {sorted(set(q for q in seen if q is not None))[:10]}")
    done = lby.events("quarantine.rechecked", since=mark)
    t.check(done and done[0].get("checked") == str(HELD) and done[0].get("released") == str(HELD),
            f"... and in the end all {HELD} are released (event=quarantine.rechecked)", str(done[:1]))
    t.eq((lby.status() or {}).get("quarantined"), 0, "nothing is left quarantined")


if __name__ == "__main__":
    x.main(main, deadline_s=200)
