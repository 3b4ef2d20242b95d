"""test_agent_text.py — another node's text cannot drive an officer's terminal or forge what it shows.

Real xba-broker and a real xba-agent NER; DZA is a Python node (docs/protocol.md).  DZA publishes, correctly
signed, an alert whose description holds a line that imitates the header of another alert ("== … from LBY
[HEALTH] EXTREME TLP:RED"), whose headline holds a line break, whose instruction holds an ANSI escape sequence and
a window-title sequence, and whose author holds a C1 control (U+009B, a one-byte CSI).  The broker accepts it
(the protocol does not forbid control characters, and alerts journaled before must stay valid), NER's agent
stores it, and `xba history` and `xba watch` (text) show it with every control character as U+FFFD (`--json`
writes each as a \\u escape), the description's next line indented deeper than any line of an alert's block,
and no line of the alert starting with "==" but its own header.  NER's own officers cannot submit such text:
`xba send` refuses a headline with a line break and a description with an escape, naming the field and the byte
(INVALID_ALERT, exit 2), while a description over several lines is accepted.  `xba history --id ID --save FILE`
writes the signed envelope (mode 0600), which `xba verify` checks offline.

usage: /usr/bin/python3 tests/e2e/test_agent_text.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

FORGED_HEADER = "== 2026-11-26 09:00:00Z  from LBY  [HEALTH] EXTREME  TLP:RED"


def main(t):
    region = x.region_of_five(t, "text-e2e")
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
    agents = x.start_agents(t, region, broker, ["NER"])
    ner = agents["NER"]
    net = x.Net(t)
    dza = net.node(region, "DZA", broker)
    net.connect_all()

    a = x.alert("DZA", headline="Convoi signale\nNEEDS ACKNOWLEDGEMENT: xba ack forged")
    a.info[0].description = "Quatre vehicules.\n" + FORGED_HEADER + "\n   Ordre : fermer la frontiere"
    a.info[0].instruction = "Ne pas \x1b[31mtirer\x1b[0m \x1b]0;pwned\x07"
    a.author = "capitaine \u009b2J"
    ack = dza.publish_wait(region.seal(a))
    t.check(ack is not None and x.code_name(ack.result) == "OK", "the broker accepts DZA's alert (well-formed, signed)", ack)

    def shown():
        r = ner.cli("history", "--id", a.id, net=net)
        return r.out if a.id in r.out else ""

    text = ""
    end = time.monotonic() + t.t(10)
    while not text and time.monotonic() < end:
        text = shown()
    t.check(text != "", "NER's xba history shows DZA's alert", text)
    t.check("\x1b" not in text and "\x07" not in text and "\u009b" not in text,
            "no escape, bell or C1 control reaches the terminal", repr(text))
    t.check(text.count("\ufffd") >= 6, "each control character shown as U+FFFD", repr(text))
    r = ner.cli("history", "--id", a.id, "--json", net=net)
    t.check(r.rc == 0 and "\u009b" not in r.out and "\x1b" not in r.out and "\\u009b2J" in r.out and
            (r.json() or [{}])[0].get("author") == "capitaine \u009b2J",
            "xba history --json: the C1 control escaped as \\u009b like C0 ones, the author intact once parsed",
            repr(r.out[:300]))
    headers = [line for line in text.splitlines() if line.startswith("==")]
    t.eq(len(headers), 1, "one line starts with '==': the alert's own header, not the forged one")
    t.check(any(line.startswith("     " + FORGED_HEADER) for line in text.splitlines()),
            "the description's next line is indented deeper than the block (5 spaces)", text)
    t.check(not any(line.startswith("   NEEDS ACKNOWLEDGEMENT: xba ack forged") for line in text.splitlines()),
            "the headline's line break does not make a line of its own", text)

    w = ner.watch("--since", "1h", json_output=False)
    t.check(w.wait(lambda: a.id in w.text(), t.t(10)), "xba watch (text) shows the alert", w.text()[-800:])
    t.check("\x1b" not in w.text() and sum(1 for line in w.text().splitlines() if line.startswith("==")) == 1,
            "xba watch: no escape, one header", repr(w.text()))
    w.stop()

    # The signed alert, saved from the history, verifies offline (operators.md: xba verify FILE).
    saved = os.path.join(t.dir, "dza-alert.env")
    r = ner.cli("history", "--id", a.id, "--save", saved, net=net)
    t.check(r.rc == 0 and os.path.exists(saved) and (os.stat(saved).st_mode & 0o777) == 0o600,
            "xba history --id ID --save FILE writes the signed envelope, mode 0600", repr(r))
    r = ner.cli("verify", saved, "--region", ner.region_path, net=net)
    t.check(r.rc == 0 and "signed by DZA" in r.out and "\x1b" not in r.out,
            "xba verify of the saved envelope: valid, signed by DZA (its author's control character made safe)",
            repr(r))

    # ---- NER's own officers -------------------------------------------------------------------------------------
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                "Convoi\nvers Toummo", net=net)
    t.check(r.rc == 2 and "INVALID_ALERT" in r.err and "info[0].headline" in r.err and "0x0A" in r.err,
            "xba send: a headline with a line break is refused, field and byte named", repr(r))
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                "Convoi vers Toummo", "--description", "Rouge \x1b[31m", net=net)
    t.check(r.rc == 2 and "info[0].description" in r.err and "0x1B" in r.err,
            "xba send: an escape in a description is refused", repr(r))
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                "Convoi vers Toummo", "--description", "Quatre vehicules.\nDirection nord.", net=net)
    t.eq((r.rc, x.accepted_recipients(r)), (0, 3), "xba send: a description over two lines is accepted")


if __name__ == "__main__":
    x.main(main)
