"""test_agent_outage.py — nothing is lost, nothing is doubled, order is kept, whatever stops: real xba-broker, real
xba-agent daemons for NER, LBY and TCD, the real `xba` CLI.

1. The broker stops while NER's officers submit 20 alerts: every `xba send` exits 3 ("queued") and NER's outbox
   grows by one each time.
2. NER's agent itself stops (SIGTERM): `xba send` exits 2, and nothing is queued anywhere; the agent starts again
   with its 20 queued alerts.
3. The broker returns: the 20 go out, LBY's and TCD's `xba watch --json` show each once, in the order submitted.
   TCD's watch (--link-grace 1) said on stderr that the link was down, then once that it is up again; LBY's
   (--link-grace 300) said nothing of an outage shorter than that.
4. LBY's agent is kill -9'ed while 30 alerts are routed to it: when it returns, every one is in its inbox and on a
   new `xba watch`, once, in order; the watch that was running when it died does not stay silently deaf.

usage: /usr/bin/python3 tests/e2e/test_agent_outage.py BUILD_DIR SOURCE_ROOT
"""
import os
import re
import sys
import threading
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402


def send_args(headline, wait):
    return ["send", "--category", "smuggling", "--severity", "severe", "--author", "officer-ner",
            "--lang", "fr", "--headline", headline, "--wait", str(wait)]


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
    ner = x.Agent(t, region, "NER", broker)
    lby = x.Agent(t, region, "LBY", broker)
    tcd = x.Agent(t, region, "TCD", broker)
    for a in (ner, lby, tcd):
        a.start(link=True)
    w_lby = lby.watch("--link-grace", "300")
    w_tcd = tcd.watch("--link-grace", "1")
    for a in (lby, tcd):
        a.wait_log(r"event=local\.subscribed", t.t(10))

    # ---- 1. the broker stops; officers keep submitting --------------------------------------------------------
    broker.stop()
    s = ner.wait_status(lambda s: s.get("link_up") is False, t.t(10))
    t.check(s is not None and s.get("link_up") is False, "status --json at NER: link_up false once the broker is gone",
            str(s))
    s = ner.wait_status(lambda s: s.get("next_attempt_in_ms", 0) > 0, t.t(10))
    r = ner.cli("status")
    t.check(s is not None and r.rc == 1 and
            re.search(r"^link +DOWN since .*, (next attempt in \d+ s|connecting)$", r.out, re.M),
            "status at NER, broker down: DOWN, and when the agent tries again (next_attempt_in_ms in --json)",
            r.out[:300])
    down = "THE LINK TO THE BROKER IS DOWN since"
    t.check(w_tcd.wait(lambda: down in w_tcd.stderr(), t.t(10)),
            "xba watch --link-grace 1 at TCD says, a second later, that the link to the broker is down",
            w_tcd.stderr()[-600:])
    headlines = [f"Convoi {i:02d} signalé à Assamaka" for i in range(1, 21)]
    ids, rcs, depths, bad = [], [], [], []
    for i, h in enumerate(headlines):
        r = ner.cli(*send_args(h, 1 if i < 2 else 0))
        rcs.append(r.rc)
        aid = x.sent_id(r)
        ids.append(aid)
        if aid is None or "queued" not in r.out:
            bad.append(repr(r))
        if i < 2 and "not yet confirmed" not in r.out:
            bad.append(repr(r))
        depths.append((ner.status() or {}).get("outbox_depth"))
    t.eq(rcs, [3] * 20, "broker down: each of 20 `xba send` exits 3 (queued, not confirmed)")
    t.check(not bad, "broker down: send prints the id and says it is queued (and, with --wait, not yet confirmed)",
            "; ".join(bad[:2]))
    t.eq(depths, list(range(1, 21)), "broker down: status --json outbox_depth grows 1, 2, ... 20")
    t.eq(len(set(ids)), 20, "20 distinct alert ids")
    out = {e.get("id"): e for e in ner.history("--outgoing", "--limit", "1000")}
    r = ner.cli("history", "--outgoing", "--limit", "5")
    t.check(r.rc == 0 and "queued for the broker" in r.out and "seq 0" not in r.out,
            "history --outgoing (text) at NER: queued for the broker, and no 'seq 0' before the broker gave one",
            r.out[-400:])
    r = ner.cli("track", ids[0])
    t.check(r.rc == 1 and "still queued at this agent" in r.err,
            "track at NER while the link is down: says the alert is still queued here, not only 'try again'", repr(r))
    t.check(all(out.get(a, {}).get("publish_state") == "queued" for a in ids),
            "history --outgoing --json at NER: all 20 queued", str([out.get(a, {}).get("publish_state") for a in ids]))

    # ---- 2. the agent itself stops: nothing can be queued -----------------------------------------------------
    rc = ner.stop()
    t.eq(rc, 0, "NER's agent exits 0 on SIGTERM")
    stopped = ner.events("agent.stopped")
    t.check(stopped and stopped[-1].get("outbox") == "20", "NER's agent logs event=agent.stopped outbox=20",
            str(stopped[-1:]))
    for k in range(3):
        r = ner.cli(*send_args(f"agent down {k}", 1))
        t.check(r.rc == 2 and len(r.err_lines()) == 1 and "xba-agent running" in r.err and "queued at" not in r.out,
                f"agent down: send #{k + 1} exits 2 with one line on stderr, and prints no id", repr(r))
    ner.start()
    s = ner.status() or {}
    t.check(s.get("outbox_depth") == 20 and s.get("link_up") is False,
            "NER's agent restarted (broker still down): outbox_depth 20 -- nothing lost, nothing added", str(s))
    out = ner.history("--outgoing", "--limit", "1000")
    t.eq(len([e for e in out if e.get("outgoing")]), 20, "history --outgoing at NER: 20 sent alerts, no more")

    # ---- 3. the broker returns ---------------------------------------------------------------------------------
    broker.start()
    s = ner.wait_status(lambda s: s.get("outbox_depth") == 0 and s.get("link_up"), t.t(20))
    t.check(s is not None and s.get("outbox_depth") == 0 and s.get("link_up") is True,
            "broker back: NER's outbox drains to 0 and the link is up", str(s))
    t.check(w_tcd.wait(lambda: "link to the broker is UP again" in w_tcd.stderr(), t.t(20)) and
            w_tcd.stderr().count(down) == 1, "... and, once, that it is up again", w_tcd.stderr()[-600:])
    t.check(down not in w_lby.stderr(), "LBY's watch (--link-grace 300) said nothing of a shorter outage",
            w_lby.stderr()[-600:])
    for name, w in (("LBY", w_lby), ("TCD", w_tcd)):
        w.wait_ids(ids, t.t(20))
        got = [i for i in w.ids() if i in set(ids)]
        t.eq(got, ids, f"xba watch --json at {name}: the 20 alerts, each once, in the order submitted")
    out = {e.get("id"): e for e in ner.history("--outgoing", "--limit", "1000")}
    states = [out.get(a, {}).get("publish_state") for a in ids]
    t.eq(states, ["accepted"] * 20, "history --outgoing --json at NER: all 20 accepted")
    seqs = [out.get(a, {}).get("seq", 0) for a in ids]
    t.check(seqs == sorted(seqs) and len(set(seqs)) == 20 and seqs[0] > 0,
            "the broker journaled them in submission order (seqs ascending)", str(seqs))
    seen = {e.get("id"): e for e in w_lby.snapshot()}
    t.eq([seen.get(a, {}).get("info", [{}])[0].get("headline") for a in ids], headlines,
         "xba watch --json at LBY: each headline as written")

    # ---- 4. LBY is kill -9'ed while 30 alerts are routed to it ---------------------------------------------
    burst = [f"Rafale {i:02d} — passage signalé" for i in range(1, 31)]
    burst_ids, burst_rcs = [], []
    lock = threading.Lock()

    def sender():
        for h in burst:
            r = ner.cli(*send_args(h, 0))
            with lock:
                burst_ids.append(x.sent_id(r))
                burst_rcs.append(r.rc)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    # Kill LBY once some of the burst have reached its officers' screen (deliveries are in flight then).
    w_lby.wait(lambda: len([i for i in w_lby.ids() if i in set(burst_ids)]) >= 4 or not th.is_alive(), t.t(20))
    lby.kill9()
    before_kill = [i for i in w_lby.ids() if i in set(burst_ids)]
    t.log(f"LBY killed after its watch showed {len(before_kill)} of the burst")
    th.join(t.t(60))
    t.check(not th.is_alive() and len(burst_ids) == 30 and None not in burst_ids,
            "the 30 sends all got an id", f"{len(burst_ids)} ids")
    t.check(all(rc in (0, 3) for rc in burst_rcs), "every send of the burst exited 0 or 3", str(burst_rcs))
    s = ner.wait_status(lambda s: s.get("outbox_depth") == 0, t.t(20))
    t.check(s is not None and s.get("outbox_depth") == 0, "the broker accepted the whole burst (NER's outbox 0)",
            str(s))
    w_tcd.wait_ids(burst_ids, t.t(20))
    t.eq([i for i in w_tcd.ids() if i in set(burst_ids)], burst_ids,
         "xba watch at TCD (never stopped): the 30, once each, in order")

    lby.start(link=True)
    w_new = lby.watch()
    w_new.wait_ids(burst_ids, t.t(20))
    got = [i for i in w_new.ids() if i in set(burst_ids)]
    t.eq(got, burst_ids, "LBY back after kill -9: a new xba watch --json shows all 30, each once, in order")
    all_ids = w_new.ids()
    t.check(len(all_ids) == len(set(all_ids)), "LBY's new watch shows no alert twice",
            str([i for i in all_ids if all_ids.count(i) > 1][:5]))
    t.check(set(ids) <= set(all_ids), "LBY's new watch also replays the 20 from the broker outage")
    hist = [e.get("id") for e in lby.history("--limit", "1000")]
    t.check(all(hist.count(i) == 1 for i in burst_ids + ids) and len(hist) == len(set(hist)),
            "history --json at LBY: each of the 50 alerts once", f"{len(hist)} entries, {len(set(hist))} distinct")
    t.eq([i for i in reversed(hist) if i in set(burst_ids)], burst_ids,
         "history --json at LBY (newest first): the burst in per-origin order")
    s = lby.status() or {}
    t.check(s.get("inbox_count") == 50 and s.get("link_up") is True and s.get("quarantined") == 0,
            "status --json at LBY: 50 in the inbox, link up, nothing quarantined", str(s))
    received = [e.get("alert") for e in lby.events("alert.received")]
    t.check(all(received.count(i) == 1 for i in burst_ids if i in received),
            "LBY's log: event=alert.received at most once per alert id across the crash")

    # The broker's record agrees: LBY has every one of the burst.
    not_delivered = []
    for aid in burst_ids:
        tr = {j.get("node_id"): j.get("state") for j in ner.cli("track", aid, "--json").json()}
        if tr.get("LBY") not in ("delivered", "acknowledged"):
            not_delivered.append((aid, tr.get("LBY")))
    t.check(not not_delivered, "track at NER: LBY delivered for each of the 30", str(not_delivered[:3]))

    # The watch that was running at LBY when its agent died must not stay silently deaf: it either shows what
    # arrives after the restart, or it ends with a message (and a non-zero status) that the officer can act on.
    r = ner.cli(*send_args("Après le redémarrage de LBY", 15))
    after = x.sent_id(r)
    w_new.wait_ids([after], t.t(10))
    t.check(w_new.has(after), "LBY's new watch shows an alert sent after the restart")
    w_lby.wait(lambda: w_lby.has(after) or not w_lby.alive(), t.t(5))
    if w_lby.alive():
        t.check(w_lby.has(after), "the watch running at LBY across its agent's kill -9 shows the alert sent after the "
                "restart (or exits with an error): it must not stay silently deaf",
                f"alive, {len(w_lby.entries)} entries, none after the restart; stderr={w_lby.stderr()!r}")
    else:
        t.check(w_lby.proc.returncode != 0 and w_lby.stderr().strip(),
                "the watch running at LBY across its agent's kill -9 exited non-zero with a message",
                f"rc={w_lby.proc.returncode} stderr={w_lby.stderr()!r}")
    for a in (ner, lby, tcd):
        t.check(not a.events("alert.quarantined"), f"agent {a.id}: nothing quarantined")


if __name__ == "__main__":
    x.main(main)
