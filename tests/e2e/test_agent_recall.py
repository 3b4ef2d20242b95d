"""test_agent_recall.py — `xba watch` recalls every unacknowledged emergency, however many there are.

Real xba-broker and a real xba-agent LBY; NER (may_broadcast) is a Python node (docs/protocol.md).  NER
broadcasts 80 emergencies; LBY's duty officer watches in text with `--remind 1`.  The reminder counts all 80 and
names the newest 10 (a flood of emergencies must not push a real one out of the recall: the watch used to keep
64 and recall nothing after them).  When the officer acknowledges the newest, the next reminder counts 79 and
names the 10 before it.

usage: /usr/bin/python3 tests/e2e/test_agent_recall.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

COUNT, SHOWN = 80, 10   # agents/cmd_watch.c RECALL_SHOWN


def headline(i):
    return f"Emergency number {i:02d}"


def main(t):
    region = x.region_of_five(t, "recall-e2e")
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES, rate_per_second=100, rate_burst=200).start()
    agents = x.start_agents(t, region, broker, ["LBY"])
    lby = agents["LBY"]
    net = x.Net(t)
    ner = net.node(region, "NER", broker)
    net.connect_all()
    watch = lby.watch("--remind", "1", json_output=False)
    lby.wait_log(r"event=local\.subscribed", t.t(10))

    sent, refs = [], []
    for i in range(COUNT):
        a = x.alert("NER", x.C.BORDER_INCIDENT, emergency=True, headline=headline(i))
        refs.append(ner.publish(region.seal(a)))
        sent.append(a)
    t.check(net.run_until(lambda: all(r in ner.acks for r in refs), t.t(20)) and
            all(x.code_name(ner.acks[r].result) == "OK" for r in refs), f"NER's {COUNT} emergencies are accepted")

    def reminder_after(at, count):
        """The text of the first reminder block counting `count` after offset at, or ''."""
        text = watch.text()[at:]
        marker = f"!!! {count} UNACKNOWLEDGED EMERGENCIES"
        i = text.find(marker)
        if i < 0:
            return ""
        block = text[i:].split("\n")[:SHOWN + 1]
        return "\n".join(block) if len(block) == SHOWN + 1 else ""

    block = ""
    end_at = 0

    def got_block():
        nonlocal block
        block = reminder_after(end_at, COUNT)
        return block != ""
    t.check(net.run_until(got_block, t.t(30)), f"the reminder counts all {COUNT} unacknowledged emergencies",
            watch.text()[-600:])
    lines = block.split("\n")[1:]
    t.eq([line.split(": ", 1)[1].split("  (xba ack")[0] if ": " in line else line for line in lines],
         [headline(i) for i in range(COUNT - SHOWN, COUNT)],
         f"... and names the newest {SHOWN}, in order (emergencies past the 64th included)")
    t.check(all("UNACKNOWLEDGED EMERGENCY from NER" in line for line in lines),
            "... each as an UNACKNOWLEDGED EMERGENCY line with its origin", block)

    newest = sent[-1]
    r = lby.cli("ack", newest.id, "--officer", "Salem", net=net)
    t.check(r.rc == 0, "LBY acknowledges the newest", repr(r))
    end_at = len(watch.text())

    def got_next():
        nonlocal block
        block = reminder_after(end_at, COUNT - 1)
        return block != ""
    t.check(net.run_until(got_next, t.t(15)), f"the next reminder counts {COUNT - 1}", watch.text()[-600:])
    lines = block.split("\n")[1:]
    t.check(all(headline(i) in "\n".join(lines) for i in range(COUNT - SHOWN - 1, COUNT - 1)) and
            headline(COUNT - 1) not in block, f"... and names the {SHOWN} before the acknowledged one", block)
    t.check(watch.alive(), "xba watch still running")


if __name__ == "__main__":
    x.main(main)
