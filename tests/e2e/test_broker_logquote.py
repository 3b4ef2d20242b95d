"""test_broker_logquote.py — a library error that embeds a path stays one log record.

The journal's error messages name its file ("journal PATH: commit: database or disk is full"), and broker.yaml may
put the journal in a directory whose name holds a '"' and a newline.  The broker runs under prlimit --fsize, so the
journal soon fails to grow; every record it writes about that (journal.error, journal.commit_failed) must still be
one line that parses to the right event and level, with the whole message in error=.  Written raw inside "...", the
'"' ended the value early and the newline cut the record in two: a second line with no ts, level or event.

usage: /usr/bin/python3 tests/e2e/test_broker_logquote.py BUILD_DIR SOURCE_ROOT
"""
import os
import re
import shutil
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
from xbatest import C  # noqa: E402

RULES = """\
rules:
  - name: crime-to-neighbours
    when: { category: [border-incident, smuggling, trafficking] }
    to: [neighbours]
"""
JOURNAL_DIR = 'j"q\nx'          # relative to broker.yaml; a '"' and a newline in one path
LIMIT = 200 * 1024


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES, name="broker-quote", wrapper=["prlimit", f"--fsize={LIMIT}"],
                      rate_per_second=100000, rate_burst=100000)
    os.makedirs(os.path.join(broker.dir, JOURNAL_DIR))
    # The harness writes `journal:` bare; this path needs YAML's double-quoted form (\" and \n escapes).
    with open(broker.config_path) as f:
        config = f.read()
    config = config.replace("journal: journal.db\n", 'journal: "j\\"q\\nx/journal.db"\n')
    with open(broker.config_path, "w") as f:
        f.write(config)
    broker.start()
    net = x.Net(t)
    ner = net.node(region, "NER", broker, max_inflight=8)
    net.node(region, "DZA", broker)
    net.connect_all()
    refs = []
    for i in range(120):
        a = x.alert("NER", C.SMUGGLING, headline=f"quote {i}")
        a.info[0].description = "Q" * 3000
        refs.append(ner.publish(broker.region.seal(a)))
    net.run_until(lambda: all(r in ner.acks for r in refs) or not broker.alive(), t.t(20))
    codes = [x.code_name(ner.acks[r].result) for r in refs if r in ner.acks]
    t.check("JOURNAL_UNAVAILABLE" in codes, "publishes past the file size limit answered JOURNAL_UNAVAILABLE",
            str(sorted(set(codes))))
    t.check(broker.alive(), "the broker keeps running")
    net.close()
    broker.stop()

    text = broker.log_text()
    # Every line of the log is a whole record: ts, level, prog and event, in that order.
    torn = [line for line in text.splitlines()
            if not re.match(r"ts=\S+ level=(debug|info|warn|fatal) prog=xba-broker event=[\w.-]+( |$)", line)]
    t.check(not torn, "every log line is one whole record (no line torn off by a newline in a message)",
            repr(torn[:3]))
    failures = broker.events("journal.error") + broker.events("journal.commit_failed")
    t.check(failures, "the journal's failures are logged (journal.error / journal.commit_failed)")
    # log_quote writes the newline as \x0a and the quote as \"; parse_log_line undoes the latter.
    want = os.path.join(broker.dir, JOURNAL_DIR).replace("\n", "\\x0a") + "/journal.db: "
    for event in sorted({r["event"] for r in failures}):
        recs = [r for r in failures if r.get("event") == event]
        bad_level = [r["_line"] for r in recs if r.get("level") != "warn" or r.get("prog") != "xba-broker"]
        t.check(not bad_level, f"{event}: {len(recs)} records, each level=warn prog=xba-broker", repr(bad_level[:2]))
        cut = [r.get("error") for r in recs if want not in r.get("error", "")]
        t.check(not cut, f"{event}: error= holds the whole message, path included", repr(cut[:2]))
        split = [r["_line"] for r in recs if not re.search(r'\berror="(?:[^"\\]|\\.)*"( |$)', r["_line"])]
        t.check(not split, f"{event}: error= is one quoted value", repr(split[:2]))


if __name__ == "__main__":
    if shutil.which("prlimit") is None:
        print("skipped: needs prlimit(1) (util-linux)")   # 77 is meson's "skipped"
        sys.exit(77)
    x.main(main, deadline_s=60)
