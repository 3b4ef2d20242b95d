"""test_agent_malformed.py — a delivery frame that does not decode loses nothing at the receiving agent.

A fake broker (x.FakeBroker: CURVE server pinned in the agent's agent.yaml) sends a real xba-agent (LBY) frames
that protobuf cannot decode but that still carry deliveries (docs/protocol.md §2.4, "A frame that does not
decode"): a DeliverBatch whose middle element's envelope is not protobuf, a Deliver without an envelope, and an
emergency Deliver with a broken envelope.  The agent stores the valid elements around the broken one as if each had
come alone, quarantines each broken delivery as MALFORMED_FRAME (xba quarantine, status, an Error naming its seq),
and names it in DeliveryAck.refused, so that the broker records REFUSED instead of DELIVERED; the window is granted
back in full and the session stays up.  A DeliverBatch larger than the max_frame_bytes the broker announced is
refused as a frame (Error FRAME_TOO_LARGE) but each of its deliveries is stored.  A frame of a body type newer than the agent is not a delivery: Error
UNKNOWN_FRAME_TYPE and nothing else.  Last, a DeliverBatch whose second element has no seq cannot be answered for:
the agent acknowledges nothing of it, logs event=broker.undecodable_deliveries, drops the session and says Hello
again from the same cursor, so the broker sends it again; the valid delivery then arrives.  At restart the three
held deliveries are checked again and stay held (they can never verify).

usage: /usr/bin/python3 tests/e2e/test_agent_malformed.py BUILD_DIR SOURCE_ROOT
"""
import json
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import xbatest as x  # noqa: E402

NOT_PROTOBUF = b"\x78\x79\x7a"   # field 15 as a varint, then a length-delimited field 15 cut short


def varint(v):
    out = bytearray()
    while True:
        byte, v = v & 0x7F, v >> 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field(number, body):
    return varint(number << 3 | 2) + varint(len(body)) + body


def deliver(seq=None, envelope=None, rule=None, emergency=False):
    """A Deliver message's bytes, written field by field: envelope may be bytes that are no Envelope."""
    out = b""
    if seq is not None:
        out += varint(1 << 3) + varint(seq)
    if envelope is not None:
        out += field(2, envelope)
    if rule is not None:
        out += field(3, rule)
    if emergency:
        out += varint(4 << 3) + varint(1)
    return out


def main(t):
    region = x.sahel_region(t)
    fake = x.FakeBroker(t, max_frame_bytes=4096)
    lby = x.Agent(t, region, "LBY", fake)
    lby.start()
    t.check(fake.run_until(lambda: lby.events("link.up"), t.t(15)), "the agent connects to the (fake) broker")
    watch = lby.watch()
    fake.run_until(lambda: lby.events("local.subscribed"), t.t(10))
    window = fake.hellos[0].credit if fake.hellos else -1

    valid = [x.alert("NER", headline=f"Valid alert {i}") for i in range(4)]
    env = [region.seal(a) for a in valid]
    # The rule a broker names is its word, text from the network: logged quoted, it cannot add a field or a record.
    forged_rule = 'r one" level=warn event=node.removed node=DZA'
    fake.deliver(1, env[0], rule=forged_rule)
    # One DeliverBatch: seq 2 valid, seq 3 whose envelope is not protobuf (its rule with a control byte), seq 4 valid.
    batch = (field(1, x.pb.Deliver(seq=2, envelope=env[1], rule="r-two").SerializeToString()) +
             field(1, deliver(3, NOT_PROTOBUF, b"bad\x01rule")) +
             field(1, x.pb.Deliver(seq=4, envelope=env[2], rule="r-four").SerializeToString()))
    fake.send_raw(field(15, batch))
    fake.send_raw(field(5, deliver(5, None, b"no-envelope")))             # a Deliver without its envelope
    fake.send_raw(field(5, deliver(9, NOT_PROTOBUF, b"sar", emergency=True)))   # an emergency, broken
    fake.send_raw(field(99, b"\x08\x01"))                                   # a body newer than this agent
    fake.delivered += 5                                                     # fake.deliver counted seq 1

    t.check(fake.run_until(lambda: fake.through_seq() >= 5 and len(fake.errors) >= 4, t.t(10)),
            "the agent acknowledges through seq 5", str([a.through_seq for a in fake.delivery_acks]))
    fake.run_until(lambda: fake.credit - fake.delivered >= window, t.t(10))
    fake.run_until(lambda: False, t.t(0.5))
    named = sorted((r.seq, x.code_name(r.code)) for a in fake.delivery_acks for r in a.refused)
    t.eq(named, [(3, "MALFORMED_FRAME"), (5, "MALFORMED_FRAME"), (9, "MALFORMED_FRAME")],
         "DeliveryAck.refused names seq 3, 5 and 9 as MALFORMED_FRAME: the broker records REFUSED, not DELIVERED")
    t.check(any(9 in a.seqs for a in fake.delivery_acks), "the broken emergency (seq 9) is acknowledged selectively",
            str([list(a.seqs) for a in fake.delivery_acks]))
    t.eq(fake.through_seq(), 5, "through_seq 5: every ordinary seq answered for, none skipped")
    t.eq(fake.credit - fake.delivered, window, "one credit granted back per delivery, the broken ones included")
    malformed = [e for e in fake.errors if x.code_name(e.code) == "MALFORMED_FRAME"]
    t.check(sorted(seq for seq in (3, 5, 9) if any(f"seq {seq} " in e.message for e in malformed)) == [3, 5, 9],
            "an Error MALFORMED_FRAME to the broker names each of seq 3, 5 and 9", str([e.message for e in malformed]))
    framed = [e for e in malformed if "answered for one by one" in e.message]
    t.eq(len(framed), 3, "and an Error MALFORMED_FRAME for each of the three frames, saying its deliveries were "
         "answered for one by one")
    t.check(any(x.code_name(e.code) == "UNKNOWN_FRAME_TYPE" for e in fake.errors),
            "the frame of an unknown body type gets Error UNKNOWN_FRAME_TYPE", str(fake.errors))
    t.eq(len(fake.hellos), 1, "one session: no reconnect for frames the agent could answer for")
    t.check(not fake.other, "the agent sent only Hello, DeliveryAck, Credit, Error and Heartbeat", str(fake.other))

    fake.run_until(lambda: all(watch.has(a.id) for a in valid[:3]), t.t(10))
    t.eq(watch.ids(), [a.id for a in valid[:3]], "xba watch shows the three valid alerts, the two around the "
         "broken batch element included, in order")
    received = [e for e in lby.events("alert.received") if e.get("alert") == valid[0].id]
    t.check(len(received) == 1 and received[0].get("rule") == forged_rule and
            received[0].get("event") == "alert.received",
            "event=alert.received logs the broker's rule as one quoted value: it adds no field and no record",
            received[0]["_line"] if received else "no record")
    shown = (watch.by_id(valid[2].id) or [{}])[0]
    t.check(shown.get("seq") == 4 and shown.get("rule") == "r-four",
            "the batch's last element as shown: seq 4 and its own rule", str(shown))
    r = lby.cli("quarantine", "--json")
    listed = [json.loads(line) for line in r.lines()] if r.out.strip() else []
    t.eq([(e.get("seq"), e.get("code"), e.get("claimed_alert_id"), e.get("claimed_origin"), e.get("rule"))
          for e in listed],
         [(9, "MALFORMED_FRAME", "", "", "sar"), (5, "MALFORMED_FRAME", "", "", "no-envelope"),
          (3, "MALFORMED_FRAME", "", "", "bad?rule")],
         "xba quarantine --json: the three broken deliveries, newest first, no claimed id, the rule as printable text")
    t.eq([e.get("reason") for e in listed],
         ["the delivery does not decode: its envelope is not a protobuf Envelope",
          "the delivery does not decode: it has no envelope",
          "the delivery does not decode: its envelope is not a protobuf Envelope"],
         "... each with the reason it did not decode")
    t.eq(r.rc, 1, "... exit status 1 while any are held")
    s = lby.status() or {}
    t.check(s.get("quarantined") == 3 and s.get("inbox_count") == 3 and s.get("through_seq") == 5,
            "status --json: quarantined 3, inbox_count 3, through_seq 5", str(s))
    bad = lby.events("broker.bad_frame")
    t.check(any(b.get("deliveries") == "3" and b.get("quarantined") == "1" for b in bad) and
            sum(b.get("quarantined") == "1" for b in bad) == 3,
            "event=broker.bad_frame for each undecodable frame, with its deliveries and how many were quarantined",
            str(bad))

    # A DeliverBatch larger than the 4 KiB this (fake) broker announced in Welcome: refused as a frame, but its
    # deliveries are all valid and each is stored.
    big = [x.alert("NER", headline=f"In an oversized batch {i}") for i in range(16)]
    errors_before = len(fake.errors)
    oversized = x.frame(deliver_batch=x.pb.DeliverBatch(deliveries=[
        x.pb.Deliver(seq=10 + i, envelope=region.seal(a), rule="big") for i, a in enumerate(big)]))
    t.check(len(oversized) > 4096, "the batch is larger than 4 KiB", str(len(oversized)))
    fake.send_raw(oversized)
    fake.delivered += len(big)
    t.check(fake.run_until(lambda: fake.through_seq() >= 25 and all(watch.has(a.id) for a in big), t.t(10)),
            "a batch over Welcome.max_frame_bytes: its 16 deliveries stored, shown and acknowledged (through 25)",
            str(fake.through_seq()))
    t.check(any(x.code_name(e.code) == "FRAME_TOO_LARGE" for e in fake.errors[errors_before:]),
            "... and the broker told FRAME_TOO_LARGE", str(fake.errors[errors_before:]))
    valid = valid + big

    # Unanswerable: the second element of this batch has no seq.  Nothing of it may be acknowledged.
    acks_before, mark = len(fake.delivery_acks), lby.log_size()
    fake.send_raw(field(15, field(1, x.pb.Deliver(seq=26, envelope=env[3], rule="r").SerializeToString()) +
                        field(1, deliver(None, NOT_PROTOBUF, b"r"))))
    fake.delivered += 2
    t.check(fake.run_until(lambda: len(fake.hellos) >= 2, t.t(15)), "the agent drops the session and says Hello again")
    t.check(all(a.through_seq <= 25 and 26 not in a.seqs for a in fake.delivery_acks[acks_before:]),
            "nothing of the unanswerable frame was acknowledged", str(fake.delivery_acks[acks_before:]))
    if len(fake.hellos) >= 2:
        t.eq(fake.hellos[1].resume_after, 25, "the new Hello resumes after seq 25: the broker sends the frame again")
    ev = lby.events("broker.undecodable_deliveries", since=mark)
    t.check(len(ev) == 1 and "no seq" in ev[0].get("reason", "") and ev[0].get("through_seq") == "25",
            "event=broker.undecodable_deliveries names the reason (an element without a seq) and the cursor", str(ev))
    t.check(lby.events("link.down", since=mark), "event=link.down for the drop")
    t.check(not watch.has(valid[3].id), "the valid element of the unanswerable frame was not shown")
    # The broker (fixed) sends seq 6 again, alone.
    fake.run_until(lambda: lby.events("link.up", since=mark), t.t(10))
    fake.deliver(26, env[3])
    t.check(fake.run_until(lambda: fake.through_seq() >= 26 and watch.has(valid[3].id), t.t(10)),
            "seq 26 arrives in the new session: stored, shown and acknowledged")

    mark = lby.log_size()
    t.eq(lby.stop(), 0, "the agent stops cleanly")
    lby.start()
    lby.wait_log(r"event=quarantine\.rechecked", t.t(10), since=mark)   # on the loop, once the agent is ready
    checked = lby.events("quarantine.rechecked", since=mark)
    t.check(len(checked) == 1 and checked[0].get("held") == "3" and checked[0].get("released") == "0",
            "at start-up the three broken deliveries are checked again and stay held", str(checked))
    t.eq(sorted(e.get("id") for e in lby.history()), sorted(a.id for a in valid),
         "xba history --json: the 20 valid alerts, each once")

    # A Welcome 15 s after Hello (a satellite link takes 7-9 s at 700 ms each way; a stall adds to it): the agent
    # waits for it (30 s) rather than dropping the session at 10 s as `no-welcome` and starting over.
    fake.run_until(lambda: lby.events("link.up", since=mark), t.t(10))
    mark = lby.log_size()
    hellos = len(fake.hellos)
    fake.welcome_delay = 15.0
    t.eq(lby.stop(), 0, "the agent stops")
    lby.start()
    t.check(fake.run_until(lambda: lby.events("link.up", since=mark), t.t(40)),
            "with the Welcome 15 s after its Hello, the agent's session comes up", lby.log_text(mark)[-600:])
    t.check(len(fake.hellos) == hellos + 1 and not [e for e in lby.events("link.down", since=mark)
                                                    if e.get("reason") == "no-welcome"],
            "... at its first Hello, without a no-welcome drop", f"hellos {len(fake.hellos) - hellos}")


if __name__ == "__main__":
    x.main(main)
