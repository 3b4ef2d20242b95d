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
(INVALID_ALERT, exit 2), while a description over several lines is accepted, its CR LF line ends (pasted from
Windows or WhatsApp) sent as LF; a bare CR is refused as a carriage return.  `xba history --id ID --save FILE`
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


def strings(value):
    """Every string inside a decoded JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


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
    # Text pasted from Windows or WhatsApp ends its lines CR LF: the CLI signs LF alone, as a text typed here would.
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                "Convoi vers Toummo", "--description", "ligne 1\r\nligne 2", "--instruction", "fermer\r\nsignaler",
                "--json", net=net)
    sent = x.sent_id(r)
    mine = [e for e in ner.history("--outgoing") if e.get("id") == sent]
    texts = list(strings(mine))
    t.check(r.rc == 0 and sent and "ligne 1\nligne 2" in texts and "fermer\nsignaler" in texts and
            not any("\r" in s for s in texts),
            "xba send: a description and an instruction pasted with CR LF line ends are sent with LF", repr(r) +
            repr(mine[:1]))
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                "Convoi vers Toummo", "--description", "ligne 1\rligne 2", net=net)
    t.check(r.rc == 2 and "info[0].description" in r.err and "0x0D" in r.err and "carriage return" in r.err and
            "one line" not in r.err,
            "xba send: a bare CR in a description is refused as a carriage return (the field is not called one line)",
            repr(r))

    # ---- lines the terminal would wrap: forged rows drawn with spaces ------------------------------------------
    # At 80 columns a line longer than the terminal continues at column 0, where text padded with spaces can draw
    # a whole alert block of its own, or a row of the broadcast table.  xba wraps at the width itself, each
    # wrapped row deeper than the block's lines; an explicit bidi override is shown as U+FFFD.
    narrow = {"COLUMNS": "80"}

    def rows_at(width, text):
        """What a terminal of this width shows: each line cut into rows of at most width characters."""
        rows = []
        for line in text.splitlines():
            rows.extend([line[i:i + width] for i in range(0, max(len(line), 1), width)])
        return rows

    padded = "Quatre vehicules vers Toummo." + " " * 48 + FORGED_HEADER.ljust(80) + \
        "   Cholera outbreak confirmed in Koufra: close the border now".ljust(80) + \
        "   NEEDS ACKNOWLEDGEMENT: xba ack 7c0a4c1e-2f3b-4d5a-8e6f-0a1b2c3d4e5f"
    b = x.alert("DZA", headline="Convoi" + " " * 71 + FORGED_HEADER)
    b.info[0].description = padded
    b.author = "capitaine\u202e  seq 1  rule x"
    b.parameters[0].value = "\u202e54"
    ack = dza.publish_wait(region.seal(b))
    t.check(ack is not None and x.code_name(ack.result) == "OK", "DZA's alert padded with spaces is accepted", ack)
    text = ""
    end = time.monotonic() + t.t(10)
    while b.id not in text and time.monotonic() < end:
        text = ner.cli("history", "--id", b.id, env=narrow, net=net).out
    rows = rows_at(80, text)
    t.check(b.id in text and all(len(line) <= 80 for line in text.splitlines()),
            "COLUMNS=80: xba history wraps every line itself (none longer than 80)", repr(text))
    t.eq(sum(1 for row in rows if row.startswith("==")), 1,
         "... and at 80 columns only the alert's own header starts with '==' (no row drawn with spaces)")
    t.check(not any(row.startswith("   NEEDS ACKNOWLEDGEMENT: xba ack 7c0a") for row in rows),
            "... nor a forged NEEDS ACKNOWLEDGEMENT row at the block's indent", "\n".join(rows))
    t.check("\u202e" not in text and "\ufffd54" in text, "... a bidi override is shown as U+FFFD", repr(text))
    w = ner.watch("--since", "1h", json_output=False, env=narrow)
    t.check(w.wait(lambda: b.id in w.text(), t.t(10)), "xba watch (text) shows the padded alert", w.text()[-800:])
    t.check(all(len(line) <= 80 for line in w.text().splitlines()) and
            sum(1 for row in rows_at(80, w.text()) if row.startswith("==")) == 2,
            "xba watch at 80 columns: lines wrapped, two headers for two alerts", repr(w.text()))
    w.stop()

    # An acknowledging officer's name the width of a row: `xba track` must not show it as a row of its own.
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                "Convoi vers Assamaka", "--wait", "10", net=net)
    sent = x.sent_id(r)
    net.run_until(lambda: sent in dza.inbox, t.t(10))
    rule = next((j.get("rule", "") for j in ner.cli("track", sent, "--json", net=net).json()
                 if j.get("node_id") == "DZA"), "")
    forged_row = "LBY            acknowledged  2026-11-26 20:03:10Z   rule neighbours, by lt-fathi"
    before = len("%-14s %-13s %-22s rule %s, by sgt-ali" % ("DZA", "acknowledged", "2026-11-26 20:05:09Z", rule))
    name = "sgt-ali" + " " * ((80 - before % 80) % 80) + forged_row   # LBY lands at column 0 of the next row
    ack = dza.publish_wait(region.seal(x.ack_alert("DZA", dza.inbox[sent].alert, author=name[:128]))) \
        if sent in dza.inbox else None
    t.check(ack is not None and x.code_name(ack.result) == "OK", "DZA acknowledges with a name padded with spaces",
            ack)
    text = ""
    end = time.monotonic() + t.t(10)
    while "acknowledged" not in text.split("DZA", 1)[-1][:40] and time.monotonic() < end:
        text = ner.cli("track", sent, env=narrow, net=net).out
    rows = rows_at(80, text)
    t.check("by sgt-ali" in text and not any(row.startswith("LBY            acknowledged") for row in rows),
            "COLUMNS=80: xba track wraps the officer's name itself; no row reads as LBY's acknowledgement",
            "\n".join(rows))


if __name__ == "__main__":
    x.main(main)
