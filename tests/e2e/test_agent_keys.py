"""test_agent_keys.py — a country learns that its signing key is about to stop signing before its alerts are
refused, and the secretariat learns which nodes are about to go silent.

Real xba-broker and real xba-agents NER, LBY and TCD, keys from the real `xba keygen`, region.yaml with validity
windows (docs/operations.md section 5):

- NER's key ends in 10 days: its agent logs event=key.expiring (days_left 9), `xba status` prints "KEY EXPIRES"
  and still exits 0 (it can send), `xba status --json` carries the end time, and `xba watch` says it on stderr.
- LBY's key also ends in 10 days, but its agent.yaml says key_warning_days: 0: nothing is said.
- TCD's key ends a few seconds after the start: its agent warns, then logs event=key.unusable when the end
  passes; `xba status` then says "CANNOT SEND" and exits 1, and `xba send` is refused (KEY_NOT_VALID).  Given a
  region.yaml that lifts the end and a SIGHUP, the agent logs event=key.usable and sends again.
- The broker logs event=node.key_expiring for NER, LBY and TCD and for WHO-AFRO (whose key is revoked from a day in
  19 days: a revocation ends a key too), not for DZA, whose second key takes over from its first (a planned
  rotation), and event=node.cannot_sign for TCD at the reload after TCD's key ended.

usage: /usr/bin/python3 tests/e2e/test_agent_keys.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
import zmq  # noqa: E402

DAY_MS = 86400 * 1000
TCD_SECONDS = 20     # TCD's key ends this long after the region is written: after the agents start, early in the test


def main(t):
    region = x.region_of_five(t, "keys-e2e")
    now = x.now_ms()
    tcd_end = now + TCD_SECONDS * 1000
    region.nodes["NER"].signing_keys[0].valid_until = x.rfc3339(now + 10 * DAY_MS)
    region.nodes["LBY"].signing_keys[0].valid_until = x.rfc3339(now + 10 * DAY_MS)
    region.nodes["TCD"].signing_keys[0].valid_until = x.rfc3339(tcd_end)
    region.nodes["WHO-AFRO"].signing_keys[0].revoked_at = x.rfc3339(now + 19 * DAY_MS + 3600 * 1000)
    region.nodes["DZA"].signing_keys[0].valid_until = x.rfc3339(now + 10 * DAY_MS)
    region.add_key("DZA", valid_from=x.rfc3339(now + 5 * DAY_MS))   # the next key, from day 5, no end
    region.write()

    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
    expiring = {r.get("node"): r for r in broker.events("node.key_expiring")}
    t.eq(sorted(expiring), ["LBY", "NER", "TCD", "WHO-AFRO"],
         "broker: node.key_expiring for the nodes whose keys all end within 30 days (not DZA: its next key)")
    t.eq((expiring.get("NER", {}).get("days_left"), expiring.get("WHO-AFRO", {}).get("days_left"),
          expiring.get("TCD", {}).get("days_left")), ("9", "19", "0"),
         "broker: days left until valid_until (NER), revoked_at (WHO-AFRO), a few seconds (TCD)")
    t.eq(expiring.get("NER", {}).get("until"), region.nodes["NER"].signing_keys[0].valid_until,
         "broker: NER's until is its key's valid_until")

    agents = {nid: x.Agent(t, region, nid, broker) for nid in ("NER", "LBY", "TCD")}
    agents["LBY"].write_config(key_warning_days=0)
    for a in agents.values():
        a.start(wait=False)
    for nid, a in agents.items():
        t.check(a.wait_log(r"event=agent\.ready", t.t(15)) is not None, f"agent {nid} starts")
        t.check(a.wait_link(t.t(15)), f"agent {nid}: link up")
    ner, lby, tcd = agents["NER"], agents["LBY"], agents["TCD"]

    # ---- NER: warned, still sending ---------------------------------------------------------------------------
    warned = ner.events("key.expiring")
    t.check(len(warned) == 1 and warned[0].get("days_left") == "9" and warned[0].get("key", "").startswith("SHA256:")
            and "docs/operations.md" in warned[0].get("action", ""),
            "NER's agent: one key.expiring at start, 9 days left, the key and what to do", warned)
    r = ner.cli("status")
    t.check(r.rc == 0 and "KEY EXPIRES" in r.out and "signs until" in r.out,
            "xba status (NER): KEY EXPIRES, and exit 0 while the link is up and the key signs", r.out + r.err)
    s = ner.status() or {}
    t.check(s.get("signing_key_expiring") is True and s.get("signing_key_problem") == "" and
            x.parse_rfc3339(s.get("signing_key_until", "1970-01-01T00:00:00Z")) ==
            x.parse_rfc3339(region.nodes["NER"].signing_keys[0].valid_until) and
            s.get("signing_key") == warned[0].get("key") if warned else False,
            "xba status --json (NER): expiring, no problem, the key's valid_until, the key logged", s)
    w = ner.watch()
    t.check(w.wait(lambda: "KEY EXPIRES" in w.stderr(), t.t(10)), "xba watch (NER) says KEY EXPIRES on stderr",
            w.stderr())
    w.stop()
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                "Convoi vers Assamaka")
    t.eq((r.rc, x.accepted_recipients(r)), (0, 3), "NER still sends with a key that ends in 10 days")

    # ---- LBY: key_warning_days 0 ----------------------------------------------------------------------------------
    s = lby.status() or {}
    t.check(lby.events("key.expiring") == [] and s.get("signing_key_expiring") is False and
            s.get("signing_key_until", "") != "" and "KEY EXPIRES" not in lby.cli("status").out,
            "LBY (key_warning_days: 0): the end is shown, nothing is warned", s)

    # ---- TCD: the key ends while the agent runs -------------------------------------------------------------------
    t.check(len(tcd.events("key.expiring")) == 1, "TCD's agent warns at start (its key ends in seconds)")
    wait_s = (tcd_end - x.now_ms()) / 1000 + 5
    rec = tcd.wait_log(r"event=key\.unusable", t.t(max(wait_s, 5)))
    t.check(rec is not None and "expired at" in rec.string, "TCD's agent logs key.unusable when its key ends",
            tcd.log_text()[-1500:])
    r = tcd.cli("status")
    t.check(r.rc == 1 and "CANNOT SEND" in r.out, "xba status (TCD): CANNOT SEND and exit 1 (link up)",
            r.out + r.err)
    s = tcd.status() or {}
    t.check(s.get("link_up") is True and "expired at" in s.get("signing_key_problem", ""),
            "xba status --json (TCD): link up, the problem named", s)
    r = tcd.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                "Passeurs vers Zouarké")
    t.check(r.rc != 0 and "KEY_NOT_VALID" in r.out + r.err, "xba send (TCD) is refused: KEY_NOT_VALID",
            r.out + r.err)

    broker_mark = broker.log_size()
    broker.hup()
    t.check(broker.wait_log(r"event=node\.cannot_sign node=TCD", t.t(10), since=broker_mark) is not None,
            "broker, after a reload: node.cannot_sign for TCD")

    # The secretariat lifts the end; TCD's agent reloads and says so.
    region.nodes["TCD"].signing_keys[0].valid_until = None
    tcd_mark = tcd.log_size()
    tcd.write_region()
    tcd.hup()
    t.check(tcd.wait_log(r"event=key\.usable .*until=never", t.t(10), since=tcd_mark) is not None,
            "TCD's agent, reloaded with the end lifted: key.usable until=never")
    broker.write_region()
    broker.hup()
    end = time.monotonic() + t.t(10)
    r = None
    while time.monotonic() < end:   # the broker's reload and the agent's are not ordered with the CLI
        r = tcd.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                    "Passeurs vers Zouarke")
        if r.rc == 0:
            break
        time.sleep(0.3)
    t.check(r is not None and r.rc == 0 and tcd.cli("status").rc == 0,
            "TCD sends again, and xba status exits 0", (r.out + r.err) if r else "")

    # TCD's key files and region.yaml put back from a backup older than a CURVE key rotation: the agent starts (its
    # files agree with each other), and the broker refuses its key.  The advice names that case: put the current
    # files back, never register the old key again (the rotation may have followed a compromise).
    tcd.stop()
    public, secret = zmq.curve_keypair()
    fd = os.open(tcd.curve_secret_key, os.O_WRONLY | os.O_TRUNC, 0o600)
    os.write(fd, secret + b"\n")
    os.close(fd)
    current = region.nodes["TCD"].curve_key
    region.nodes["TCD"].curve_key = public.decode()
    tcd.write_region()
    region.nodes["TCD"].curve_key = current
    tcd.start()
    s = tcd.wait_status(lambda s: "refuses this agent's CURVE key" in s.get("link_problem", ""), t.t(20)) or {}
    st = tcd.cli("status")
    t.check(st.rc == 1 and "REFUSED: the broker refuses this agent's CURVE key" in st.out
            and "restored from a backup older than a key rotation: put the current ones back, never register the "
                "old key again" in st.out,
            "TCD with key files older than a rotation: xba status exits 1, REFUSED, and says to put the current key "
            "files back", st.out + str(s)[:300])

    # A planned CURVE rotation where TCD's focal point reloads instead of restarting: the secretariat gives TCD a
    # new curve_key at the broker and in TCD's region.yaml; TCD's agent, sent SIGHUP, refuses that file (its own
    # secret key is not the new one), and xba status says so: set the new secret key and restart.  (It listed the
    # three generic causes, none of them this one.)  Then the restart with the new secret key brings the link up.
    new_public, new_secret = zmq.curve_keypair()
    region.nodes["TCD"].curve_key = new_public.decode()
    broker.write_region()
    broker.hup()
    mark = tcd.log_size()
    tcd.write_region()
    tcd.hup()
    t.check(tcd.wait_log(r"event=region\.reload_failed .*new curve_key", t.t(10), since=mark) is not None,
            "TCD's reload of a region.yaml with its new curve_key: refused, the log says to set the new secret key "
            "and restart")
    s = tcd.wait_status(lambda s: "new curve_key" in s.get("link_problem", ""), t.t(20)) or {}
    st = tcd.cli("status")
    t.check(st.rc == 1 and new_public.decode() in st.out and "restart the agent" in st.out
            and "never register the old key again" not in st.out,
            "xba status: REFUSED names the new curve_key and says to set the matching secret key and restart",
            st.out + str(s)[:300])
    tcd.stop()
    fd = os.open(tcd.curve_secret_key, os.O_WRONLY | os.O_TRUNC, 0o600)
    os.write(fd, new_secret + b"\n")
    os.close(fd)
    tcd.start(link=True)
    st = tcd.cli("status")
    t.check(st.rc == 0 and "REFUSED" not in st.out, "restarted with the new secret key: link up, nothing refused",
            st.out[-400:])


if __name__ == "__main__":
    x.main(main)
