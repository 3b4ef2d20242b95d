"""test_broker_audit.py — the journal is the audit trail.  `xba-broker --audit` and `xba audit verify` walk its
hash chain: an intact journal passes, naming how many entries it checked; an alert row edited behind the broker's
back (here: its origin rewritten with the sqlite3 library, as an insider with file access would) is reported with
the sequence where the chain breaks, and the command exits 1.

An insider can do better: rewrite an alert and recompute every hash after it (the formula is public: lib/chain.c,
reimplemented in Python in xbatest.rechain_journal), reroute an alert the same way, or cut entries off the end.  The chain alone sees
none of these.  `xba audit verify --region` sees the first (the rewritten alert no longer carries its origin's
signature), `--rules` the second (the agreed rules do not route it so), and `--tip` with the tip an earlier audit
printed sees all three.

usage: /usr/bin/python3 tests/e2e/test_broker_audit.py BUILD_DIR SOURCE_ROOT
"""
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
from xbatest import C  # noqa: E402


def audit(t, broker):
    r = subprocess.run([t.broker_bin, "--audit", "-c", broker.config_path], capture_output=True, text=True,
                       timeout=t.t(30), cwd=broker.dir)
    return r.returncode, (r.stdout + r.stderr).strip()


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
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
    rc, out = x.audit_verify(t, broker.journal_path, "--region", broker.region_path)
    t.check(rc == 0 and "entries 1..5 (5), hash chain intact" in out and "signatures: 5 of 5 verified" in out,
            "xba audit verify --region on the live journal: chain intact, 5 of 5 signatures", f"exit {rc}: {out}")
    m = re.search(r"^tip: seq (\d+) hash ([0-9a-f]{64})$", out, re.M)
    t.check(m is not None and m.group(1) == "5", "xba audit verify prints the tip to note: seq 5", out)
    tip = f"{m.group(1)}:{m.group(2)}" if m else "5:" + "0" * 64
    rc, out = audit(t, broker)
    t.check(rc == 0 and m is not None and m.group(0) in out.splitlines(),
            "xba-broker --audit prints the same tip line as xba audit verify", f"exit {rc}: {out}")
    tip_line = m.group(0) if m else "tip: seq 5 hash " + "0" * 64     # the whole line works as --tip too
    broker_audit_reads_only(t, broker)
    t.eq(broker.stop(), 0, "SIGTERM: broker exits 0")
    pristine = os.path.join(t.dir, "pristine.sqlite")
    shutil.copy(broker.journal_path, pristine)
    rc, out = x.audit_verify(t, pristine, "--region", broker.region_path, "--tip", tip, "--json")
    t.check(rc == 0 and '"ok":true' in out and '"result":"match"' in out,
            "a copy of the journal, with the noted tip: --json says ok, tip matches", f"exit {rc}: {out}")

    # An alert rewritten and the chain recomputed after it: only the signature (and the noted tip) can tell.
    forged = os.path.join(t.dir, "forged.sqlite")
    shutil.copy(pristine, forged)
    db = sqlite3.connect(forged)
    envelope = db.execute("SELECT envelope FROM alerts WHERE seq = 2").fetchone()[0]
    t.check(b"convoy 1" in envelope, "seq 2 is the second convoy alert")
    db.execute("UPDATE alerts SET envelope = ? WHERE seq = 2", (envelope.replace(b"convoy 1", b"convoy 9"),))
    db.commit()
    db.close()
    rc, out = x.audit_verify(t, forged)
    t.check(rc == 1 and "TAMPERED" in out and "seq 2" in out, "rewritten alert, chain not recomputed: broken at seq 2",
            f"exit {rc}: {out}")
    x.rechain_journal(forged, 2)
    rc, out = x.audit_verify(t, forged)
    t.check(rc == 0 and "hash chain intact" in out,
            "chain recomputed by the insider: the chain alone passes (why --region and --tip exist)",
            f"exit {rc}: {out}")
    rc, out = x.audit_verify(t, forged, "--region", broker.region_path)
    t.check(rc == 1 and re.search(r"^seq 2 alert \S+ from NER: NOT VALID: .*NER.s key.*\(bad-signature\)", out, re.M)
            and "signatures: 4 of 5 verified" in out,
            "--region: seq 2 NOT VALID (bad-signature), 4 of 5 verified, exit 1", f"exit {rc}: {out}")
    rc, out = x.audit_verify(t, forged, "--tip", tip)
    t.check(rc == 1 and "DOES NOT MATCH" in out, "--tip: the noted tip no longer matches, exit 1", f"exit {rc}: {out}")

    # The journal's columns rewritten to match a recomputed chain: the signed alert still says otherwise.
    relabelled = os.path.join(t.dir, "relabelled.sqlite")
    shutil.copy(pristine, relabelled)
    db = sqlite3.connect(relabelled)
    db.execute("UPDATE alerts SET origin = 'LBY' WHERE seq = 4")
    db.commit()
    db.close()
    x.rechain_journal(relabelled, 4)
    rc, out = x.audit_verify(t, relabelled, "--region", broker.region_path)
    t.check(rc == 1 and "seq 4" in out and "the journal says origin LBY, the signed alert is from NER" in out,
            "--region: a recomputed chain over a rewritten origin column is caught at seq 4", f"exit {rc}: {out}")

    # Routing rewritten: the journal now says seq 4 also went to SDN, which the rules never named.  Routing rows are
    # chained, not signed: only routing the alert again with the agreed rules (--rules) can tell.
    rc, out = x.audit_verify(t, pristine, "--region", broker.region_path, "--rules", broker.rules_path)
    t.check(rc == 0 and "5 as the rules say, 0 ROUTED OTHERWISE" in out,
            "--rules on the untouched copy: all 5 routed as the rules say", f"exit {rc}: {out}")
    rerouted = os.path.join(t.dir, "rerouted.sqlite")
    shutil.copy(pristine, rerouted)
    db = sqlite3.connect(rerouted)
    db.execute("INSERT INTO deliveries (seq, node, rule, state, emergency) VALUES (4, 'SDN', 'crime-to-neighbours',"
               " 2, 0)")
    db.execute("UPDATE alerts SET recipients = recipients + 1 WHERE seq = 4")
    db.commit()
    db.close()
    x.rechain_journal(rerouted, 4)
    rc, out = x.audit_verify(t, rerouted, "--region", broker.region_path)
    t.check(rc == 0, "an extra recipient with the chain recomputed: chain and signatures pass", f"exit {rc}: {out}")
    rc, out = x.audit_verify(t, rerouted, "--region", broker.region_path, "--rules", broker.rules_path)
    t.check(rc == 1 and re.search(r"^seq 4 alert \S+ from NER: ROUTED OTHERWISE: journal only: to SDN "
                                  r"\(crime-to-neighbours\)$", out, re.M)
            and "4 as the rules say, 1 ROUTED OTHERWISE" in out,
            "--rules: seq 4 ROUTED OTHERWISE (the journal has SDN, the rules do not), exit 1", f"exit {rc}: {out}")
    t.log(out)
    db = sqlite3.connect(rerouted)
    db.execute("UPDATE deliveries SET rule = 'maghreb-liaison' WHERE seq = 5 AND node = 'DZA'")
    db.commit()
    db.close()
    x.rechain_journal(rerouted, 5)
    rc, out = x.audit_verify(t, rerouted, "--region", broker.region_path, "--rules", broker.rules_path, "--json")
    t.check(rc == 1 and '"routes_otherwise":2' in out and '"message":"journal only: to DZA (maghreb-liaison); rules '
            'only: to DZA (crime-to-neighbours)"' in out,
            "--rules --json: a rule name rewritten at seq 5 is the second ROUTED OTHERWISE", f"exit {rc}: {out}")
    other_rules = os.path.join(t.dir, "other-rules.yaml")
    with open(broker.rules_path) as f, open(other_rules, "w") as g:
        g.write(f.read() + "# another version\n")
    rc, out = x.audit_verify(t, pristine, "--region", broker.region_path, "--rules", other_rules)
    t.check(rc == 1 and "NOTHING CHECKED" in out and "5 entries (seq 1..5) routed by rules version" in out,
            "--rules with a version that routed nothing: NOTHING CHECKED, the version in use named, exit 1",
            f"exit {rc}: {out}")
    rc, out = x.audit_verify(t, pristine, "--rules", broker.rules_path)
    t.check(rc == 2 and "--rules needs --region" in out, "--rules without --region: exit 2", f"exit {rc}: {out}")
    # A rewritten routing stamped with a rules version nobody has a file for, the chain recomputed: it is not
    # checked, and said so loudly; with --all-rules (the auditor holds every version the broker loaded) it fails.
    stamped = os.path.join(t.dir, "stamped.sqlite")
    shutil.copy(pristine, stamped)
    db = sqlite3.connect(stamped)
    db.execute("DELETE FROM deliveries WHERE seq = 5 AND node = 'DZA'")
    db.execute("UPDATE alerts SET recipients = recipients - 1, rules_version = ? WHERE seq = 5", ("f" * 64,))
    db.commit()
    db.close()
    x.rechain_journal(stamped, 5)
    rc, out = x.audit_verify(t, stamped, "--region", broker.region_path, "--rules", broker.rules_path)
    t.check(rc == 0 and "1 entries (seq 5..5) routed by rules version ffffffffffff…, NOT CHECKED: no rules file "
            "given has that version" in out,
            "a routing rewritten under a made-up rules version: NOT CHECKED, said so (exit 0 without --all-rules)",
            f"exit {rc}: {out}")
    rc, out = x.audit_verify(t, stamped, "--region", broker.region_path, "--rules", broker.rules_path, "--all-rules")
    t.check(rc == 1 and "NO RULES FILE GIVEN FOR IT" in out,
            "... and with --all-rules it fails: a version nobody can show a file for", f"exit {rc}: {out}")
    rc, out = x.audit_verify(t, pristine, "--region", broker.region_path, "--rules", broker.rules_path, "--all-rules")
    t.check(rc == 0, "--all-rules on the untouched copy with its one rules file: exit 0", f"exit {rc}: {out}")

    # Entries cut off the end: the rest still chains; only the noted tip shows it.
    cut = os.path.join(t.dir, "cut.sqlite")
    shutil.copy(pristine, cut)
    db = sqlite3.connect(cut)
    db.execute("DELETE FROM deliveries WHERE seq >= 4")
    db.execute("DELETE FROM alerts WHERE seq >= 4")
    db.commit()
    db.close()
    rc, out = x.audit_verify(t, cut, "--region", broker.region_path)
    t.check(rc == 0 and "entries 1..3 (3)" in out, "two entries cut from the end: chain and signatures still pass",
            f"exit {rc}: {out}")
    rc, out = x.audit_verify(t, cut, "--region", broker.region_path, "--tip", tip_line)
    t.check(rc == 1 and "seq 5 IS MISSING" in out, "--tip: seq 5 is missing, exit 1", f"exit {rc}: {out}")
    t.check(os.path.getsize(pristine) > 0 and not os.path.exists(os.path.join(t.dir, "no-such.sqlite")),
            "nothing was created by the audits")
    rc, out = x.audit_verify(t, os.path.join(t.dir, "no-such.sqlite"))
    t.check(rc == 2 and "cannot open" in out and not os.path.exists(os.path.join(t.dir, "no-such.sqlite")),
            "a journal that does not exist: exit 2, and the audit does not create it", f"exit {rc}: {out}")

    damaged_files(t, broker, pristine)
    read_only_copy(t, broker, pristine)
    breaks(t, broker, pristine)

    db = sqlite3.connect(broker.journal_path)
    db.execute("UPDATE alerts SET origin = 'LBY' WHERE seq = 3")
    db.commit()
    db.close()
    rc, out = audit(t, broker)
    t.check(rc == 1 and "TAMPERED" in out and "seq 3" in out, "--audit after an origin was rewritten: exit 1 naming seq 3",
            f"exit {rc}: {out}")
    rc2, out2 = x.audit_verify(t, broker.journal_path)
    t.check(rc2 == 1 and "TAMPERED" in out2 and "seq 3" in out2, "xba audit verify agrees: exit 1 naming seq 3",
            f"exit {rc2}: {out2}")
    t.log(out)
    damaged_journal_refusals(t, region, broker, ner, net, pristine)


def spoil_page(path, name):
    """Overwrite the page of table or index `name` with garbage: one bad sector in a backup."""
    db = sqlite3.connect(path)
    page = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(path, "r+b") as f:
        f.seek((page - 1) * size)
        f.write(bytes(range(256)) * (size // 256))


def broker_audit_of(t, broker, journal):
    """`xba-broker --audit` on a copy of broker.yaml naming journal (docs/operations.md section 7)."""
    cfg = os.path.join(broker.dir, "audit.yaml")
    with open(broker.config_path) as f:
        text = re.sub(r"(?m)^journal:.*$", f"journal: {journal}", f.read())
    with open(cfg, "w") as f:
        f.write(text)
    r = subprocess.run([t.broker_bin, "--audit", "-c", cfg], capture_output=True, text=True, timeout=t.t(30),
                       cwd=broker.dir)
    return r.returncode, (r.stdout + r.stderr).strip()


def broker_audit_reads_only(t, broker):
    """`xba-broker --audit` changes nothing it is given: a copy taken with its -wal (committed changes not yet
    copied into the file) stays byte for byte, and a journal that is not there is not created and called intact."""
    d = tempfile.mkdtemp(prefix="xba-e2e-audit-wal-", dir=t.dir)
    copy = os.path.join(d, "journal.sqlite")
    shutil.copy(broker.journal_path, copy)
    if os.path.exists(broker.journal_path + "-wal"):
        shutil.copy(broker.journal_path + "-wal", copy + "-wal")
    wal_before = os.path.getsize(copy + "-wal") if os.path.exists(copy + "-wal") else 0
    with open(copy, "rb") as f:
        main_before = hashlib.sha256(f.read()).hexdigest()
    rc, out = broker_audit_of(t, broker, copy)
    with open(copy, "rb") as f:
        main_after = hashlib.sha256(f.read()).hexdigest()
    wal_after = os.path.getsize(copy + "-wal") if os.path.exists(copy + "-wal") else 0
    t.check(rc == 0 and "5 entries, hash chain intact" in out, "--audit of a copy taken with its -wal: 5 entries intact",
            f"exit {rc}: {out}")
    t.check(main_after == main_before and wal_after == wal_before,
            "... and the copy is left as it was: its -wal not checkpointed into the file nor removed",
            f"-wal {wal_before} -> {wal_after} bytes, file {'unchanged' if main_after == main_before else 'CHANGED'}")
    missing = os.path.join(d, "no-such.sqlite")
    rc, out = broker_audit_of(t, broker, missing)
    t.check(rc == 1 and "cannot open" in out and "intact" not in out and not os.path.exists(missing),
            "--audit of a journal that is not there: exit 1, 'cannot open', and it is not created", f"exit {rc}: {out}")


def damaged_files(t, broker, pristine):
    """A damaged file is a verdict (exit 1, TAMPERED OR DAMAGED), not the wrong file (exit 2)."""
    # One bad sector in the alert-id index: the chain walk reads no index, the broker restored from it could not
    # look an alert up.  SQLite's integrity_check sees it.
    bad_index = os.path.join(t.dir, "bad-index.sqlite")
    shutil.copy(pristine, bad_index)
    spoil_page(bad_index, "sqlite_autoindex_alerts_1")
    rc, out = x.audit_verify(t, bad_index, "--region", broker.region_path, "--rules", broker.rules_path)
    t.check(rc == 1 and "TAMPERED OR DAMAGED" in out and "integrity_check says" in out,
            "a backup with a damaged index: xba audit verify says TAMPERED OR DAMAGED, naming SQLite's finding, exit 1",
            f"exit {rc}: {out}")
    rc, out = broker_audit_of(t, broker, bad_index)
    t.check(rc == 1 and "TAMPERED OR DAMAGED" in out and "integrity_check says" in out,
            "the same backup: xba-broker --audit says TAMPERED OR DAMAGED too, exit 1", f"exit {rc}: {out}")
    rc, out = broker_audit_of(t, broker, pristine)
    t.check(rc == 0 and "5 entries, hash chain intact, file undamaged" in out,
            "xba-broker --audit on the intact copy: exit 0", f"exit {rc}: {out}")

    size = os.path.getsize(pristine)
    for label, cut in (("cut in half", size // 2), ("cut to its first page", 4096), ("cut to 50 bytes", 50)):
        path = os.path.join(t.dir, "cut-%d.sqlite" % cut)
        shutil.copy(pristine, path)
        os.truncate(path, cut)
        rc, out = x.audit_verify(t, path, "--region", broker.region_path)
        t.check(rc == 1 and "TAMPERED OR DAMAGED" in out and "damaged" in out and "is it an XBA journal" not in out,
                f"a journal {label}: TAMPERED OR DAMAGED, exit 1", f"exit {rc}: {out}")
    garbage = os.path.join(t.dir, "bad-deliveries.sqlite")
    shutil.copy(pristine, garbage)
    spoil_page(garbage, "deliveries")
    rc, out = x.audit_verify(t, garbage, "--json")
    t.check(rc == 1 and '"damaged":true' in out and '"ok":false' in out,
            "a garbage page in the deliveries table: --json says damaged, exit 1", f"exit {rc}: {out}")
    # Still the wrong file, exit 2: not SQLite at all, or an empty file.
    text = os.path.join(t.dir, "not-sqlite.sqlite")
    with open(text, "w") as f:
        f.write("region:\n  id: sahel\n" * 300)
    rc, out = x.audit_verify(t, text)
    t.check(rc == 2 and "is it an XBA journal?" in out, "a text file: exit 2, is it an XBA journal?",
            f"exit {rc}: {out}")
    empty = os.path.join(t.dir, "empty.sqlite")
    open(empty, "w").close()
    rc, out = x.audit_verify(t, empty)
    t.check(rc == 2 and "not an XBA journal" in out, "an empty file: exit 2, not an XBA journal", f"exit {rc}: {out}")


def read_only_copy(t, broker, pristine):
    """An auditor's account may read the copy and not write beside it: the audit still runs (immutable)."""
    d = tempfile.mkdtemp(prefix="xba-e2e-audit-ro-")
    try:
        copy = os.path.join(d, "journal-copy.sqlite")
        shutil.copy(pristine, copy)
        for n in ("-wal", "-shm"):
            if os.path.exists(copy + n):
                os.remove(copy + n)
        os.chmod(copy, 0o444)
        os.chmod(d, 0o555)
        cmd = [t.xba, "audit", "verify", copy, "--region", broker.region_path]
        if os.geteuid() == 0:       # root writes anywhere: be an account that may not
            region = os.path.join(d + "-region.yaml")
            shutil.copy(broker.region_path, region)
            os.chmod(region, 0o444)
            cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", t.xba, "audit", "verify", copy,
                   "--region", region]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=t.t(60))
        out = (r.stdout + r.stderr).strip()
        t.check(r.returncode == 0 and "entries 1..5 (5), hash chain intact" in out and "immutable" in out,
                "a copy in a directory the auditor may not write: audited (read as immutable, and it says so), exit 0",
                f"exit {r.returncode}: {out}")
        t.check(not os.path.exists(copy + "-shm") and not os.path.exists(copy + "-wal"),
                "nothing was written beside it")
    finally:
        os.chmod(d, 0o755)
        shutil.rmtree(d, ignore_errors=True)
        if os.path.exists(d + "-region.yaml"):
            os.remove(d + "-region.yaml")


def breaks(t, broker, pristine):
    """What is printed after a break: the path once, the missing seq, and no 'no entry was routed'."""
    first = os.path.join(t.dir, "first-altered.sqlite")
    shutil.copy(pristine, first)
    db = sqlite3.connect(first)
    db.execute("UPDATE deliveries SET rule = 'x' WHERE seq = 1")
    db.commit()
    db.close()
    rc, out = x.audit_verify(t, first, "--region", broker.region_path, "--rules", broker.rules_path)
    t.check(rc == 1 and "TAMPERED OR DAMAGED after 0 good entries" in out and
            "no entry was routed by this rules file" not in out and "walk stopped at the break at seq 1" in out,
            "a break at seq 1 with --rules: the walk stopped there, not 'no entry was routed'", f"exit {rc}: {out}")
    line = next((ln for ln in out.splitlines() if "TAMPERED" in ln), "")
    t.check(line.count(first) == 1, "the break line names the journal once", line)
    gap = os.path.join(t.dir, "gap.sqlite")
    shutil.copy(pristine, gap)
    db = sqlite3.connect(gap)
    db.execute("DELETE FROM deliveries WHERE seq = 3")
    db.execute("DELETE FROM alerts WHERE seq = 3")
    db.commit()
    db.close()
    rc, out = x.audit_verify(t, gap)
    t.check(rc == 1 and "seq 4" in out and "seq 3 is missing" in out, "a deleted middle entry: the missing seq named",
            f"exit {rc}: {out}")


def damaged_journal_refusals(t, region, broker, ner, net, pristine):
    """The broker restored from a backup whose alert-id index is damaged: its refusals say that the journal file is
    damaged and must be restored from a checked backup, not that the disk may be full."""
    for n in ("", "-wal", "-shm"):
        if os.path.exists(broker.journal_path + n):
            os.remove(broker.journal_path + n)
    shutil.copy(pristine, broker.journal_path)
    spoil_page(broker.journal_path, "sqlite_autoindex_alerts_1")
    session = ner.session
    broker.start()
    t.check(net.run_until(lambda: ner.session != session and ner.state == "open", t.t(10)),
            "NER has a new session with the restored broker")
    a = x.alert("NER", C.SMUGGLING, C.SEVERE, C.AMBER, headline="after a bad restore")
    ack = ner.publish_wait(region.seal(a))
    t.check(ack is not None and ack.result == x.pb.JOURNAL_UNAVAILABLE and "journal file is damaged" in ack.message
            and "operations.md section 7" in ack.message,
            "the publish is refused JOURNAL_UNAVAILABLE saying the journal file is damaged (restore it)",
            str(ack))


if __name__ == "__main__":
    x.main(main)
