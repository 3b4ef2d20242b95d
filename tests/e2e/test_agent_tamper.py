"""test_agent_tamper.py — a receiving agent trusts no broker: a fake broker (Python, CURVE server with its own key
pair, pinned in the agent's agent.yaml, speaking docs/protocol.md) welcomes a real xba-agent (LBY) and delivers one
valid alert, one with a flipped bit in the alert bytes, then in one DeliverBatch: one signed by a key that
region.yaml does not list, one signed by another node than its origin, a second valid one, and the first one again.
The agent stores and shows (xba watch --json, xba history --json) only the two valid ones, once each; it quarantines
the three others (status quarantined = 3, xba quarantine lists them, event=alert.quarantined with their codes in its
log), reports each in an
Error frame naming its seq, and still acknowledges every seq and grants the credit back, so the queue moves.
Its DeliveryAcks name the three as refused, with their codes.  When its region.yaml then lists the unknown key
(SIGHUP), the agent verifies its quarantine again and releases that one alert to the inbox and to xba watch,
reporting the release in a DeliveryAck, the two forgeries staying held; a key added while the agent is stopped
releases another at start-up (and, at the new session, reports again the release the broker may have missed),
and nothing is released twice.  Last, retention: with the store aged 400 days, the
agent started with retention_days 365 prunes the acknowledged alert and the quarantine, never what is unacknowledged
or still in the outbox.  And a cancel counts only from the alert's own origin: TCD's cancel of NER's alert withdraws
nothing, while NER's cancel that arrives before its alert makes the alert show withdrawn as it arrives.

usage: /usr/bin/python3 tests/e2e/test_agent_tamper.py BUILD_DIR SOURCE_ROOT
"""
import json
import os
import sqlite3
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import xbatest as x  # noqa: E402


def main(t):
    region = x.sahel_region(t)
    fake = x.FakeBroker(t)
    lby = x.Agent(t, region, "LBY", fake)
    lby.start()
    t.check(fake.run_until(lambda: fake.peer is not None, t.t(15)), "the agent connects to the pinned (fake) broker "
            "and sends Hello")
    if fake.hellos:
        h = fake.hellos[0]
        t.check(h.protocol_version == 1 and h.node_id == "LBY" and h.resume_after == 0 and h.credit >= 6 and
                h.deliver_batches, "Hello: protocol_version 1, node_id LBY, resume_after 0, a window of at least 6, "
                "DeliverBatch frames welcome", str(h))
    t.check(fake.run_until(lambda: lby.events("link.up"), t.t(10)), "the agent logs event=link.up after Welcome")
    watch = lby.watch()
    fake.run_until(lambda: lby.events("local.subscribed"), t.t(10))

    # 1 and 5: valid alerts from NER.  2: one bit flipped in the signed bytes.  3: signed by a key that region.yaml
    # does not list.  4: NER's alert signed with TCD's key.  6: alert 1 again (a redelivery).
    valid1 = x.alert("NER", headline="Valid alert one")
    env1 = region.seal(valid1)
    flipped = x.alert("NER", headline="Tampered AAAA alert")
    env2 = region.seal(flipped)
    b = bytearray(env2.alert)
    at = bytes(b).index(b"AAAA")
    b[at] ^= 0x02                                   # 'A' -> 'C': still valid UTF-8 and protobuf, wrong signature
    env2 = x.pb.Envelope(alert=bytes(b), key_id=env2.key_id, signature=env2.signature)
    stranger = region.stranger("NER")
    unknown = x.alert("NER", headline="Signed by a key region.yaml does not list")
    env3 = region.seal(unknown, signer=stranger.signing_keys[0])
    wrong = x.alert("NER", headline="NER's alert signed by TCD")
    env4 = region.seal(wrong, signer="TCD")
    valid2 = x.alert("NER", headline="Valid alert two")
    env5 = region.seal(valid2)
    # 1 and 2 come as Deliver frames; 3 to 6 in one DeliverBatch (the agent asked for batches in its Hello): the
    # forged elements of a batch are quarantined one by one and the valid ones around them still stored.
    for seq, env in ((1, env1), (2, env2)):
        fake.deliver(seq, env)
    fake.deliver_batch([(3, env3), (4, env4), (5, env5), (6, env1)])
    bad = {2: ("BAD_SIGNATURE", flipped.id), 3: ("UNKNOWN_KEY", unknown.id), 4: ("WRONG_SIGNER", wrong.id)}

    fake.run_until(lambda: fake.through_seq() >= 6 and len(fake.errors) >= 3, t.t(10))
    fake.run_until(lambda: watch.has(valid1.id) and watch.has(valid2.id), t.t(10))
    # Settle: a wrong alert shown now would be shown late, not never.
    fake.run_until(lambda: False, t.t(1.0))

    t.eq(fake.through_seq(), 6, "DeliveryAck through_seq 6: every seq acknowledged, the quarantined ones included")
    named = sorted((r.seq, x.code_name(r.code)) for a in fake.delivery_acks for r in a.refused)
    t.eq(named, [(2, "BAD_SIGNATURE"), (3, "UNKNOWN_KEY"), (4, "WRONG_SIGNER")],
         "the DeliveryAcks name the three quarantined seqs in refused, with their codes (protocol section 2.5)")
    t.eq(fake.credit - fake.delivered, fake.hellos[0].credit if fake.hellos else -1,
         "the agent granted one credit per Deliver (the window is back where it started)")
    codes = {x.code_name(e.code) for e in fake.errors}
    t.eq(sorted(codes), ["BAD_SIGNATURE", "UNKNOWN_KEY", "WRONG_SIGNER"],
         "Error frames to the broker: BAD_SIGNATURE, UNKNOWN_KEY, WRONG_SIGNER")
    for seq, (code, aid) in bad.items():
        errs = [e for e in fake.errors if x.code_name(e.code) == code]
        t.check(len(errs) == 1 and f"seq {seq}" in errs[0].message and 0 < len(errs[0].message.encode()) <= 512,
                f"one Error {code} whose message names seq {seq}", str([e.message for e in errs]))
        if errs:
            t.check(aid in errs[0].message, f"the Error {code} names the (claimed) alert id", errs[0].message)
    t.check(not fake.other, "the agent sent only Hello, DeliveryAck, Credit, Error and Heartbeat frames",
            str(fake.other))
    t.eq(len(fake.hellos), 1, "one session: the bad deliveries did not make the agent reconnect")

    shown = watch.ids()
    t.eq(shown, [valid1.id, valid2.id], "xba watch --json shows the two valid alerts only, once each, in order")
    t.check(watch.alive() and not watch.bad, "xba watch --json still running, every line JSON", str(watch.bad[:2]))
    hist = [e.get("id") for e in lby.history()]
    t.eq(sorted(hist), sorted([valid1.id, valid2.id]), "xba history --json: the two valid alerts only")
    first = (watch.by_id(valid1.id) or [{}])[0]
    t.check(first.get("origin") == "NER" and first.get("rule") == "tamper-test" and first.get("seq") == 1 and
            first.get("info", [{}])[0].get("headline") == "Valid alert one",
            "the valid alert as shown: origin NER, rule and seq from the Deliver, the headline", str(first))

    s = lby.status() or {}
    t.check(s.get("quarantined") == 3 and s.get("inbox_count") == 2 and s.get("through_seq") == 6,
            "status --json: quarantined 3, inbox_count 2, through_seq 6", str(s))
    r = lby.cli("status")
    t.check("QUARANTINED" in r.out and "3" in r.out, "status (text) shows the 3 quarantined deliveries", repr(r))

    r = lby.cli("quarantine", "--json")
    listed = [json.loads(line) for line in r.lines()] if r.out.strip() else []
    t.eq([(e.get("seq"), e.get("code"), e.get("claimed_alert_id"), e.get("claimed_origin"), e.get("rule"))
          for e in listed],
         [(4, "WRONG_SIGNER", wrong.id, "NER", "tamper-test"), (3, "UNKNOWN_KEY", unknown.id, "NER", "tamper-test"),
          (2, "BAD_SIGNATURE", flipped.id, "NER", "tamper-test")],
         "xba quarantine --json: the three held deliveries, newest first, with code, claimed id and origin, and rule")
    t.check(r.rc == 1 and all(e.get("reason") and e.get("received") for e in listed),
            "... each with its reason and time; exit status 1 while any are held", repr(r))
    r = lby.cli("quarantine")
    t.check(r.rc == 1 and "UNKNOWN_KEY" in r.out and "3 held" in r.out and "not verified" in r.out and
            ("alert %s from NER (claimed" % unknown.id) in r.out,
            "xba quarantine (text) names the codes, the claimed id and origin, says 3 held and that the claims are "
            "not verified", repr(r))
    r = lby.cli("quarantine", "extra")
    t.check(r.rc == 2 and "unexpected argument" in r.err, "xba quarantine with an extra argument: usage error 2",
            repr(r))

    q = lby.events("alert.quarantined")
    logged = {(rec.get("seq"), rec.get("code")) for rec in q}
    t.eq(sorted(logged), [("2", "BAD_SIGNATURE"), ("3", "UNKNOWN_KEY"), ("4", "WRONG_SIGNER")],
         "the agent logs event=alert.quarantined seq=N code=CODE for each of the three")
    t.check(all("warn" in rec.get("level", "") for rec in q), "quarantine log lines are warnings",
            str([rec.get("level") for rec in q]))
    received = [rec.get("alert") for rec in lby.events("alert.received")]
    t.eq(sorted(received), sorted([valid1.id, valid2.id]), "event=alert.received only for the two valid alerts")

    # The secretariat's region.yaml now lists the key that signed seq 3 (a new NER key this agent had not been
    # sent).  On reload the agent verifies its quarantine again: seq 3 is released to the inbox and to xba watch;
    # the flipped bit and the wrong signer stay held.  The broker is told nothing: it counted every seq delivered.
    mark = lby.log_size()
    frames_before = (len(fake.errors), len(fake.delivery_acks), len(fake.other))
    region.nodes["NER"].signing_keys.append(stranger.signing_keys[0])
    lby.write_region()
    lby.hup()
    fake.run_until(lambda: lby.events("quarantine.rechecked", since=mark) and watch.has(unknown.id), t.t(10))
    released = lby.events("alert.released", since=mark)
    t.check(len(released) == 1 and released[0].get("seq") == "3" and released[0].get("alert") == unknown.id and
            released[0].get("was") == "UNKNOWN_KEY" and released[0].get("trigger") == "reload" and
            released[0].get("new") == "true",
            "after SIGHUP: event=alert.released for seq 3 only, naming its alert, was=UNKNOWN_KEY, trigger=reload",
            str(released))
    summary = lby.events("quarantine.rechecked", since=mark)
    t.check(len(summary) == 1 and summary[0].get("checked") == "3" and summary[0].get("released") == "1" and
            summary[0].get("held") == "2", "event=quarantine.rechecked checked=3 released=1 held=2", str(summary))
    fake.run_until(lambda: False, t.t(0.5))
    t.eq(watch.ids(), [valid1.id, valid2.id, unknown.id], "xba watch --json shows the released alert, once, after "
         "the two valid ones")
    shown = (watch.by_id(unknown.id) or [{}])[0]
    t.check(shown.get("seq") == 3 and shown.get("rule") == "tamper-test" and shown.get("origin") == "NER",
            "the released alert as shown: seq 3 and the rule of its delivery, origin NER", str(shown))
    t.eq(sorted(e.get("id") for e in lby.history()), sorted([valid1.id, valid2.id, unknown.id]),
         "xba history --json: the released alert joins the two valid ones")
    s = lby.status() or {}
    t.check(s.get("quarantined") == 2 and s.get("inbox_count") == 3,
            "status --json: quarantined 2 (the forged two), inbox_count 3", str(s))
    fake.run_until(lambda: len(fake.delivery_acks) > frames_before[1], t.t(10))
    later = fake.delivery_acks[frames_before[1]:]
    t.check(len(later) == 1 and list(later[0].released) == [3] and not later[0].refused and not later[0].seqs and
            later[0].through_seq == 6, "the release is reported to the broker: one DeliveryAck, released [3], "
            "through_seq unchanged (6)", str(later))
    t.eq((len(fake.errors), len(fake.other)), (frames_before[0], frames_before[2]),
         "no Error and nothing else to the broker for the release")
    t.check(lby.events("releases.reported", since=mark), "the agent logs event=releases.reported")
    r = lby.cli("quarantine", "--json")
    t.eq(sorted(json.loads(line).get("seq") for line in r.lines()), [2, 4],
         "xba quarantine --json after the release: seq 2 and 4 only")

    # Seq 7 is signed by yet another NER key this agent does not know, and is quarantined.  The key reaches
    # region.yaml while the agent is stopped: the start-up releases seq 7, and seq 3 is not released twice.
    stranger2 = region.stranger("NER")
    late = x.alert("NER", headline="Signed by a key added while the agent was stopped")
    fake.deliver(7, region.seal(late, signer=stranger2.signing_keys[0]))
    t.check(fake.run_until(lambda: fake.through_seq() >= 7 and len(lby.events("alert.quarantined")) == 4,
                           t.t(10)), "seq 7 (unknown key) quarantined and acknowledged")
    t.eq(lby.stop(), 0, "the agent stops cleanly (SIGTERM)")
    region.nodes["NER"].signing_keys.append(stranger2.signing_keys[0])
    lby.write_region()
    mark = lby.log_size()
    lby.start()
    # The start-up recheck runs on the loop, a batch a turn, once the agent is ready.
    lby.wait_log(r"event=quarantine\.rechecked", t.t(10), since=mark)
    released = lby.events("alert.released", since=mark)
    t.check(len(released) == 1 and released[0].get("seq") == "7" and released[0].get("alert") == late.id and
            released[0].get("trigger") == "start",
            "at start-up: event=alert.released for seq 7 only (trigger=start); seq 3 is not released again",
            str(released))
    t.eq(sorted(e.get("id") for e in lby.history()), sorted([valid1.id, valid2.id, unknown.id, late.id]),
         "xba history --json after the restart: four alerts, each once")
    t.check(fake.run_until(lambda: any(list(a.released) == [7] for a in fake.delivery_acks), t.t(15)),
            "after the restart's Welcome, the agent reports the start-up release to the broker (released [7])",
            str([list(a.released) for a in fake.delivery_acks]))
    # A report travels in a DeliveryAck the broker does not answer, so one may be lost with its connection: each new
    # session repeats the releases of the last 30 days (the broker changes only what it still has as REFUSED).
    t.check(fake.run_until(lambda: any(list(a.released) == [3] for a in fake.delivery_acks[frames_before[1] + 1:]),
                           t.t(15)),
            "... and repeats the release reported in the last session (released [3] again)",
            str([list(a.released) for a in fake.delivery_acks]))
    repeated = lby.events("releases.repeated", since=mark)
    t.check(len(repeated) == 1 and repeated[0].get("count") == "1" and repeated[0].get("newest_seq") == "3",
            "event=releases.repeated count=1 newest_seq=3", str(repeated))
    s = lby.status() or {}
    t.check(s.get("quarantined") == 2 and s.get("inbox_count") == 4,
            "status --json after the restart: quarantined 2, inbox_count 4", str(s))

    # Retention (agent.yaml retention_days): an officer acknowledges the first valid alert, then, while the agent
    # is stopped, every row of its store is made 400 days old.  Started with retention_days 365, it prunes what is
    # finished: the acknowledged alert and the four quarantine rows.  The three alerts nobody acknowledged stay,
    # and so does the outbox (the ACK alert, which this fake broker never answers).
    r = lby.cli("ack", valid1.id, "--officer", "lt-kaddour")
    t.check(r.rc == 0, "xba ack of the first valid alert", repr(r))
    t.eq(lby.stop(), 0, "the agent stops cleanly again")
    aged = x.now_ms() - 400 * 86400 * 1000
    db = sqlite3.connect(lby.store_path)
    with db:
        db.execute("UPDATE inbox SET received_ms = ?", (aged,))
        db.execute("UPDATE outgoing SET submitted_ms = ?", (aged,))
        db.execute("UPDATE quarantine SET received_ms = ?", (aged,))
    db.close()
    lby.write_config(retention_days=365)
    mark = lby.log_size()
    lby.start()
    # Not before the agent knows the broker's time (its Welcome or first Heartbeat): a machine's clock far ahead
    # must not prune what arrived minutes ago (test_clocks).  This fake broker says it in its Heartbeats.
    fake.run_until(lambda: lby.events("store.pruned", since=mark), t.t(15))
    pruned = lby.wait_log(r"event=store\.pruned .*", t.t(2), since=mark)
    rec = x.parse_log_line(pruned.group(0)) if pruned else {}
    t.check(rec.get("inbox") == "1" and rec.get("outgoing") == "0" and rec.get("quarantine") == "4" and
            rec.get("retention_days") == "365",
            "once it knows the broker's time: event=store.pruned inbox=1 outgoing=0 quarantine=4 "
            "retention_days=365", str(rec))
    t.eq(sorted(e.get("id") for e in lby.history()), sorted([valid2.id, unknown.id, late.id]),
         "xba history --json: the three unacknowledged alerts remain, the acknowledged one is gone")
    s = lby.status() or {}
    t.check(s.get("quarantined") == 0 and s.get("inbox_count") == 3 and s.get("outbox_depth") == 1,
            "status --json: quarantined 0, inbox_count 3, outbox_depth 1 (the ACK waits for the broker)", str(s))
    r = lby.cli("quarantine")
    t.check(r.rc == 0 and "0 held" in r.out, "xba quarantine: 0 held, exit status 0", repr(r))

    # Withdrawals, as this agent checks them: TCD's cancel of NER's alert (a broker should have refused it) does
    # not withdraw it; NER's cancel that arrives before NER's alert does, and the alert is shown withdrawn as it
    # arrives.
    subscribed = lby.log_size()
    watch = lby.watch()
    fake.run_until(lambda: lby.events("link.up", since=mark) and lby.events("local.subscribed", since=subscribed),
                   t.t(10))
    foreign = x.alert("TCD", msg_type=x.C.CANCEL, references=[valid2.id], headline="TCD withdraws NER's alert")
    late_alert = x.alert("NER", headline="An alert whose cancel came first")
    early_cancel = x.alert("NER", msg_type=x.C.CANCEL, references=[late_alert.id], headline="Withdrawn")
    fake.deliver_batch([(8, region.seal(foreign)), (9, region.seal(early_cancel)), (10, region.seal(late_alert))])
    t.check(fake.run_until(lambda: watch.has(late_alert.id), t.t(10)), "the three deliveries arrive")
    got = lby.history("--id", valid2.id)
    t.check(len(got) == 1 and got[0].get("superseded") == "", "TCD's cancel of NER's alert does not withdraw it",
            str(got)[:300])
    shown = (watch.by_id(late_alert.id) or [{}])[0]
    t.check(shown.get("superseded") == "withdrawn" and shown.get("superseded_by") == early_cancel.id,
            "the alert whose cancel came first is pushed to xba watch as withdrawn", str(shown)[:300])

    # `xba status --region` answered by a broker of an earlier release: no role, no emergency counts.  Zero
    # emergencies would hide them: the view says it does not know, and why.
    bc = lby.background("status", "--region")
    t.check(fake.run_until(lambda: "status_request" in fake.other, t.t(10)),
            "xba status --region: the agent forwards a StatusRequest to the broker", str(fake.other))
    fake.answer(status_reply=x.pb.StatusReply(journal_head=10, rules_version="0" * 64, nodes=[
        x.pb.NodeStatus(node_id="LBY", connected=True, queue_depth=0),
        x.pb.NodeStatus(node_id="TCD", connected=False, queue_depth=3)]))
    rc = None
    end = time.monotonic() + t.t(10)
    while rc is None and time.monotonic() < end:
        fake.pump(0.05)
        rc = bc.proc.poll()
    out = bc.text()
    t.check(rc == 1 and "3 (emergencies not counted)" in out and "broker is of a release before" in out and
            "EMERGENCY:" not in out, "... from an older broker: 'emergencies not counted', said, exit 1 (TCD down)",
            f"rc={rc} {out}")
    t.check(lby.alive(), "the agent is still running")


if __name__ == "__main__":
    x.main(main)
