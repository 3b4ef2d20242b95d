"""test_agent_rotation.py — a signing key rotation done in one step too many: the old key taken out of region.yaml
while the country's own outbox still holds alerts signed with it (docs/operations.md §5 says to give it a
valid_until instead).

NER's link is down; its officers queue two alerts, signed with its current key.  The secretariat adds NER's new key
and, in the same edit, removes the old one; NER switches to the new key and restarts; the broker comes back.  The
broker refuses the queued alerts UNKNOWN_KEY (transient: it waits for the key), and every later routine alert of
NER waits behind them.  Before, `xba status` and the agent's log told the secretariat to "add this country's
signing key", which region.yaml already listed.  Now:

1. `xba status` says the held alert was signed before the rotation with a key the broker no longer lists, and that
   the secretariat must put that key back with valid_until (`outbox_held_old_key`, `outbox_held_key` = the old
   key's fingerprint); the agent logs `alert.deferred ... key=<old fingerprint>` with that action;
2. an emergency the officer sends meanwhile goes through, and the HELD line still names the routine alert in front
   (not the emergency, refused "held:" behind it on the next retry);
3. once the old key is back in region.yaml with a valid_until, everything queued drains, the old-key alerts too;
4. NER switched to a key the broker does not list yet: the routine alert held in front keeps its place on the HELD
   line when an emergency sent next is refused "held:" behind it at the next retry (it named the emergency).

usage: /usr/bin/python3 tests/e2e/test_agent_rotation.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

RULES = """\
rules:
  - name: everything-to-members
    to: [members]
"""


def main(t):
    region = x.Region(t, "rotation-e2e")
    region.add("NER", name="Niger", role="member", may_broadcast=True)
    region.add("DZA", name="Algeria", role="member")
    region.write()
    broker = x.Broker(t, region, RULES)
    ner = x.Agent(t, region, "NER", broker, reconnect_max_ms=500)
    ner.start()
    old = region.key("NER", 0)

    queued = []
    for i in range(2):
        r = ner.cli("send", "--category", "health", "--severity", "severe", "--author", "officier-ner",
                    "--headline", f"Signé avec l'ancienne clé {i}", "--wait", "0", "--json")
        t.check(r.rc in (0, 3), f"queued alert {i} while the broker is down", f"exit {r.rc}: {r.err}")
        queued.append(r.json()[0]["alert_id"] if r.json() else "")
    st = ner.status()
    old_fingerprint = st.get("signing_key", "") if st else ""
    t.check(old_fingerprint.startswith("SHA256:"), "xba status names the key NER signs with", str(st))

    # The rotation, with the old key taken out instead of given a valid_until.
    new_index = region.add_key("NER", valid_from=x.rfc3339(x.now_ms() - 60_000))
    new = region.key("NER", new_index)
    region.nodes["NER"].signing_keys.remove(old)
    region.write()
    broker.write_region()
    ner.write_region()
    ner.stop()
    ner.signing_key = new.pem_path
    ner.write_config()
    broker.start()
    mark = ner.log_size()
    ner.start(link=True)

    # A routine alert signed with the new key, then an emergency: the routine one waits behind the old-key ones.
    r = ner.cli("send", "--category", "border-incident", "--severity", "severe", "--author", "officier-ner",
                "--headline", "Nouvelle alerte, nouvelle clé", "--wait", "3", "--json")
    t.check(r.rc == 3, "a routine alert signed with the new key waits (exit 3: queued, not confirmed)",
            f"exit {r.rc}: {r.out} {r.err}")
    routine_id = r.json()[0]["alert_id"] if r.json() else ""
    ner.wait_log(r"event=alert\.deferred", t.t(15), since=mark)
    st = ner.wait_status(lambda s: s.get("outbox_held_alert"), t.t(15))
    t.check(st and st.get("outbox_held_code") == "UNKNOWN_KEY" and st.get("outbox_held_old_key") is True,
            "xba status --json: held UNKNOWN_KEY, signed with an earlier key of this node", str(st))
    t.eq(st.get("outbox_held_key") if st else None, old_fingerprint, "outbox_held_key is the old key's fingerprint")
    t.check(st and st.get("outbox_held_alert") in queued, "the held alert is one of those queued before the rotation",
            str(st and st.get("outbox_held_alert")))
    text = ner.cli("status")
    t.check("signed before this country's key rotation" in text.out and "put that key back" in text.out and
            "must add it" not in text.out,
            "xba status: HELD says the alert was signed before the rotation and to put that key back",
            text.out[-800:])
    deferred = [e for e in ner.events("alert.deferred", since=mark) if e.get("code") == "UNKNOWN_KEY"]
    t.check(any(e.get("key") == old_fingerprint and "put that key back" in e.get("action", "") for e in deferred),
            "agent log: alert.deferred names the old key and says to put it back", str(deferred[:2]))

    # 2. An emergency goes through; HELD still names the routine alert in front.
    net = x.Net(t)
    dza = net.node(region, "DZA", broker)
    net.connect_all()
    bc = ner.cli("broadcast", "--headline", "Urgence pendant la rotation", "--author", "chef-de-quart",
                 "--wait", "--timeout", "20")
    t.check(net.run_until(lambda: any(a.emergency and a.origin == "NER" for a in dza.arrivals), t.t(20)),
            "NER's emergency reaches DZA while the routine alerts wait", f"broadcast exit {bc.rc}: {bc.out[-300:]}")
    net.sleep(2)
    st = ner.status()
    t.check(st and st.get("outbox_held_alert") in queued,
            "after the emergency went, HELD still names the routine alert in front, not the emergency",
            str(st and st.get("outbox_held_alert")))

    # 3. The old key put back with a valid_until: everything drains.
    old.valid_until = x.rfc3339(x.now_ms() + 3600_000)
    region.nodes["NER"].signing_keys.insert(0, old)
    region.write()
    broker.write_region()
    broker.hup()
    ner.write_region()
    ner.hup()
    want = [i for i in queued + [routine_id] if i]
    t.check(net.run_until(lambda: all(dza.got(i) for i in want), t.t(60)),
            "the old key back with a valid_until: the queued alerts and the new one reach DZA",
            f"{sum(dza.got(i) for i in want)} of {len(want)}")
    st = ner.wait_status(lambda s: not s.get("outbox_held_alert") and s.get("outbox_depth") == 0, t.t(30))
    t.check(st and not st.get("outbox_held_alert") and st.get("outbox_depth") == 0,
            "NER's outbox ends empty, nothing held", str(st))

    # 4. NER switches to a third key before the broker lists it: a routine alert C is held UNKNOWN_KEY (this time
    # signed with the key NER signs with now); an emergency D sent next goes first at the next retry and is refused
    # "held:" behind C.  HELD goes on naming C, the alert in front, with the "add this country's key" advice.
    third_index = region.add_key("NER", valid_from=x.rfc3339(x.now_ms() - 60_000))
    third = region.key("NER", third_index)
    ner.write_region(region.yaml())          # NER's copy only: the broker's is not updated yet
    ner.stop()
    ner.signing_key = third.pem_path
    ner.write_config()
    ner.start(link=True)
    r = ner.cli("send", "--category", "health", "--severity", "severe", "--author", "officier-ner",
                "--headline", "Routine C, clé pas encore connue", "--wait", "3", "--json")
    c_id = r.json()[0]["alert_id"] if r.json() else ""
    st = ner.wait_status(lambda s: s.get("outbox_held_alert") == c_id, t.t(15))
    t.check(st and st.get("outbox_held_alert") == c_id and st.get("outbox_held_old_key") is False,
            "a routine alert signed with a key the broker does not list yet: HELD names it, not as an old key",
            str(st and (st.get("outbox_held_alert"), st.get("outbox_held_old_key"))))
    d = ner.background("broadcast", "--headline", "Urgence D, clé pas encore connue", "--author", "chef-de-quart")
    net.sleep(8)                              # past the next retry: D goes first and is refused behind C
    st = ner.status()
    t.check(st and st.get("outbox_held_alert") == c_id,
            "HELD still names C, in front, not the emergency D refused behind it on the retry",
            str(st and (st.get("outbox_held_alert"), st.get("outbox_held_reason"))))
    text = ner.cli("status")
    t.check("must add it" in text.out, "xba status: the advice is to add this country's signing key", text.out[-600:])
    broker.write_region()
    broker.hup()
    t.check(net.run_until(lambda: dza.got(c_id), t.t(45)), "the broker told of the third key: C reaches DZA")
    t.eq(d.wait_exit(t.t(30)), 0, "xba broadcast of D: accepted once the broker lists the key")


if __name__ == "__main__":
    x.main(main, deadline_s=150)
