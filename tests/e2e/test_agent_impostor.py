"""test_agent_impostor.py — a broker's own strings cannot drive an officer's terminal or forge the agent's log.

Real xba-agent NER in front of xbatest's FakeBroker, whose key NER pins (a broker with a stolen key).  The broker's
strings are signed by nobody: its id in Welcome, the message and field of a PublishAck, an Error's message.  The
impostor fills each with an escape sequence that clears the screen and a CR/LF followed by a line that reads as
another country's alert header.  `xba status`, `xba send` and `xba history --outgoing` show none of it raw (no
ESC byte, no line that starts as the forged header), and every line of the agent's log is a record of its own
(starts with ts=).  An alert its origin wrote 400 days ago, which the impostor delivers now, is shown with the time
it was written.

usage: /usr/bin/python3 tests/e2e/test_agent_impostor.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

FORGED = "== 2026-11-26 16:09:00Z  from DZA  [SMUGGLING] EXTREME  TLP:AMBER"
PAYLOAD = "\x1b[2J\x1b[H\r\n" + FORGED + "\r\n   == forged line: close the post"


def clean(text):
    """No ESC byte, and no line (split at CR or LF) that starts as the forged header."""
    lines = text.replace("\r", "\n").split("\n")
    return "\x1b" not in text and not any(line.startswith("==") and "from DZA" in line for line in lines)


def main(t):
    region = x.region_of_five(t, "impostor-e2e")
    old_key = region.add_key("DZA", valid_from="2025-01-01T00:00:00Z")   # a key that signed long ago
    region.write()
    fake = x.FakeBroker(t)
    fake.welcome_fields = {"broker_id": "bad" + PAYLOAD}
    ner = x.Agent(t, region, "NER", fake)
    ner.start()
    t.check(fake.run_until(lambda: ner.events("link.up", since=ner.mark), t.t(15)),
            "NER's agent welcomed by the impostor")

    r = x.cli(t, ner.socket, "status")
    t.check(clean(r.out + r.err) and "broker bad" in r.out, "xba status: the impostor's id shown without its escapes "
            "or line breaks", repr(r.out[:300]))

    send = ner.background("send", "--category", "smuggling", "--severity", "severe", "--headline", "h", "--wait", "10")
    t.check(fake.run_until(lambda: fake.publishes, t.t(10)), "the impostor receives NER's publish")
    if fake.publishes:
        fake.answer(publish_ack=x.pb.PublishAck(ref=fake.publishes[0].ref, result=x.pb.INVALID_ALERT,
                                                message=PAYLOAD, field="info[0]" + PAYLOAD))
        fake.answer(error=x.pb.Error(code=x.pb.INTERNAL, message=PAYLOAD, field=PAYLOAD))
    fake.run_until(lambda: not send.alive(), t.t(15))
    out = send.text() + send.stderr()
    t.check(clean(out) and "REFUSED by the broker" in out,
            "xba send: the impostor's refusal shown without its escapes or line breaks", repr(out[-400:]))
    r = x.cli(t, ner.socket, "history", "--outgoing")
    t.check(clean(r.out) and "REFUSED" in r.out, "xba history --outgoing: the stored refusal shown clean",
            repr(r.out[-300:]))

    # An alert DZA really wrote 400 days ago, delivered now (held up, or sent again after NER pruned it): its text
    # says when it was written, so that it is not read as news.
    old = x.alert("DZA", headline="Convoi signalé il y a longtemps", sent_ms=x.now_ms() - 400 * 86400 * 1000)
    fake.deliver(7, region.seal(old, key_index=old_key))
    fake.run_until(lambda: fake.through_seq() >= 7, t.t(10))
    r = x.cli(t, ner.socket, "history", "--id", old.id)
    t.check(r.rc == 0 and "WRITTEN " in r.out and "received 400 days later" in r.out,
            "an alert written 400 days before it arrived: history says WRITTEN <then>, received 400 days later",
            r.out[:400])

    fake.run_until(lambda: ner.events("broker.error", since=ner.mark), t.t(5))
    log = ner.log_text(ner.mark)
    strays = [line for line in log.splitlines() if line and not line.startswith("ts=")]
    t.check(ner.events("broker.error", since=ner.mark) and not strays and "\x1b" not in log,
            "the agent's log: every line a record of its own, no escape byte", repr(strays[:3]))


if __name__ == "__main__":
    x.main(main)
