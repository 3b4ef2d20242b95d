"""test_broker_audit.py — the journal is the audit trail: `xba-broker --audit` walks its hash chain.  An intact
journal passes, naming how many entries it checked; an alert row edited behind the broker's back (here: its
origin rewritten with the sqlite3 library, as an insider with file access would) is reported with the sequence
where the chain breaks, and the command exits 1.

usage: /usr/bin/python3 tests/e2e/test_broker_audit.py BUILD_DIR SOURCE_ROOT
"""
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
from xbatest import C  # noqa: E402

RULES = """\
rules:
  - name: crime-to-neighbours
    when: { category: [smuggling, trafficking] }
    to: [neighbours]
"""


def audit(t, broker):
    r = subprocess.run([t.broker_bin, "--audit", "-c", broker.config_path], capture_output=True, text=True,
                       timeout=t.t(30), cwd=broker.dir)
    return r.returncode, (r.stdout + r.stderr).strip()


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES).start()
    net = x.Net(t)
    ner = net.node(region, "NER", broker)
    net.connect_all()
    for i in range(5):
        a = x.alert("NER", C.SMUGGLING, C.SEVERE, C.AMBER, headline=f"convoy {i}")
        ack = ner.publish_wait(region.seal(a))
        t.check(ack is not None and ack.result == x.pb.OK, f"alert {i} accepted")
    rc, out = audit(t, broker)
    t.check(rc == 0 and "5 entries, hash chain intact" in out, "--audit while the broker runs: 5 entries intact",
            f"exit {rc}: {out}")
    t.eq(broker.stop(), 0, "SIGTERM: broker exits 0")

    db = sqlite3.connect(broker.journal_path)
    db.execute("UPDATE alerts SET origin = 'LBY' WHERE seq = 3")
    db.commit()
    db.close()
    rc, out = audit(t, broker)
    t.check(rc == 1 and "TAMPERED" in out and "seq 3" in out, "--audit after an origin was rewritten: exit 1 naming seq 3",
            f"exit {rc}: {out}")
    t.log(out)


if __name__ == "__main__":
    x.main(main)
