"""test_hard_diskfull.py — the broker's journal on a full, then read-only, filesystem (issue "Hardening").

The journal lives on a small tmpfs the test mounts (root only; without `mount` the test falls back to RLIMIT_FSIZE
on the broker via prlimit).  A real xba-agent (NER) publishes; Python nodes DZA and LBY receive.
1. Disk full: the filler file takes every free byte; officers keep sending.  The broker answers
   JOURNAL_UNAVAILABLE (logged), never OK for what it could not store; the agent keeps the alerts in its outbox.
   Nothing reaches a receiver while full.  The broker holds the agent's later publishes behind the first refused
   one (the agent's Hello asks for ordered publishes), so that none is journaled ahead of it: with free pages
   coming and going, the agent's 64 publishes in flight could otherwise be accepted out of order.  The filler is
   removed: everything queued is accepted and delivered, once, in order.
2. Read-only: the broker is stopped and the filesystem remounted ro (a busy mount cannot be), the broker must
   refuse to start, naming the journal; the agent queues; remounted rw, the broker starts and everything arrives.
3. kill -9 and restart on the same journal: every acknowledged alert is still there (no redelivery under a new
   seq, journal_head >= every acknowledged seq).
4. RLIMIT_FSIZE (prlimit --fsize on the broker): past the limit the broker must answer JOURNAL_UNAVAILABLE and
   keep running, not die of SIGXFSZ; every acknowledged alert is delivered.
5. A receiving agent's store on a full tmpfs: `xba status` says STORE (exit 1), not only a flapping link; space
   back, every alert arrives and the line goes.

usage: /usr/bin/python3 tests/e2e/test_hard_diskfull.py BUILD_DIR SOURCE_ROOT
"""
import os
import subprocess
import sys
import time

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
FS_BYTES = 8 * 1024 * 1024


def run(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True)


def fill(path):
    """Write zeros into path until the filesystem is full; returns the bytes written."""
    n = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
                n += len(chunk)
            except OSError:
                break
        while True:
            try:
                f.write(b"\0" * 512)
                n += 512
            except OSError:
                break
    return n


def main(t):
    mnt = os.path.join(t.dir, "jfs")
    os.makedirs(mnt)
    r = run("mount", "-t", "tmpfs", "-o", f"size={FS_BYTES},mode=0755", "tmpfs", mnt)
    if r.returncode != 0:
        t.log(f"mount failed ({r.stderr.strip()}): this test needs root and mount(8); method unavailable")
        t.check(False, "a small tmpfs could be mounted for the journal", r.stderr.strip())
        return

    def umount():
        run("umount", "-l", mnt)
    t.defer(umount)
    t.log(f"method: journal on a {FS_BYTES // 1024} KiB tmpfs mounted at {mnt} (mount -t tmpfs), "
          "then remount,ro")

    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES, journal=os.path.join(mnt, "journal.db"), rate_per_second=100000,
                      rate_burst=100000).start()
    net = x.Net(t)
    rx = {nid: net.node(region, nid, broker) for nid in ("DZA", "LBY", "IOM-ROMENA")}
    net.connect_all()
    ner = x.Agent(t, region, "NER", broker, reconnect_min_ms=100, reconnect_max_ms=500)
    ner.start(link=True)
    sent = []        # alert ids in submission order

    def send(label, n):
        ids = []
        for i in range(n):
            res = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--author", "officer",
                          "--lang", "en", "--headline", f"{label} {i}", "--description", "D" * 2000,
                          "--wait", "0", net=net)
            aid = x.sent_id(res)
            if res.rc not in (0, 3) or aid is None:
                t.check(False, f"{label}: xba send {i} queued", repr(res)[:300])
                continue
            ids.append(aid)
        sent.extend(ids)
        return ids

    def delivered(ids):
        return all(rx[n].got(a) for a in ids for n in ("DZA", "LBY"))

    def outbox():
        s = ner.status()
        return s.get("outbox_depth") if s else None

    def accepted_by_broker():
        return {e.get("alert") for e in broker.events("alert.accepted") if e.get("node") == "NER"}

    before = send("before", 5)
    t.check(net.run_until(lambda: delivered(before), t.t(10)), "healthy journal: 5 alerts delivered")

    # ---- 1. disk full --------------------------------------------------------------------------------------
    filler = os.path.join(mnt, "filler")
    mark = broker.log_size()
    agent_mark = ner.log_size()
    n = fill(filler)
    t.log(f"filler wrote {n} bytes; free now {os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize} bytes")
    full = send("disk-full", 40)
    m = broker.wait_log(r"code=JOURNAL_UNAVAILABLE", t.t(10), since=mark, net=net)
    t.check(m is not None, "disk full: broker answers JOURNAL_UNAVAILABLE (event=alert.rejected)")
    net.sleep(t.t(1.5))
    acc = accepted_by_broker()
    stored_anyway = [a for a in full if a in acc]
    t.log(f"disk full: {len(stored_anyway)} of 40 accepted before space ran out (SQLite's free pages)")
    stuck = [a for a in full if a not in acc]
    t.check(len(stuck) > 0, "disk full: publishes are not acknowledged while the journal cannot grow",
            f"{len(stored_anyway)} of 40 accepted")
    d = outbox()
    t.check(d is not None and d >= len(stuck) - 1 and d > 0,
            f"disk full: the agent keeps the refused alerts queued (outbox_depth {d})")
    leaked = [a for a in stuck if any(rx[nid].got(a) for nid in rx)]
    t.check(not leaked, "disk full: nothing unacknowledged reached a receiver", str(leaked[:3]))
    held = broker.events("publish.held", since=mark)
    t.check(held and all(e.get("node") == "NER" and e.get("code") == "JOURNAL_UNAVAILABLE" for e in held),
            "disk full: the broker holds NER's later publishes behind the refused one (publish.held), so that "
            "none is journaled ahead of it", str(held[:2]))
    t.check(broker.alive(), "disk full: broker still running")
    st = rx["DZA"].status()
    t.check(st is not None, "disk full: broker still answers StatusRequest")

    os.unlink(filler)
    t.check(net.run_until(lambda: delivered(full), t.t(20)),
            "space returns: every queued alert accepted and delivered", f"outbox {outbox()}")
    t.check(net.run_until(lambda: outbox() == 0, t.t(10)), "space returns: the agent's outbox drains to 0")
    # The agent warns once per refusal that pauses it, not once per publish the broker then refused as held.
    rej = [e for e in broker.events("alert.rejected", since=mark) if e.get("node") == "NER"]
    held_rej = [e for e in rej if e.get("reason", "").startswith("held:")]
    # A refusal the broker's log budget left out (event=log.suppressed, security.md, counted each second) may be
    # of either kind.
    net.sleep(1.5)
    unlogged = sum(int(e.get("records", 0)) for e in broker.events("log.suppressed", since=mark)
                   if e.get("node") == "NER")
    warned = ner.events("alert.deferred", since=agent_mark)
    paused = ner.events("publishing.paused", since=agent_mark)
    t.log(f"disk full: broker refused NER {len(rej)} times in its log, {len(held_rej)} of them as held, and left "
          f"{unlogged} records out; the agent warned {len(warned)} times and paused {len(paused)} times "
          f"(held= {[p.get('held') for p in paused]})")
    t.check(len(warned) <= len(rej) + unlogged - len(held_rej),
            "the agent's alert.deferred warnings leave out the publishes refused as held",
            f"{len(warned)} warnings, {len(rej)} refusals of which {len(held_rej)} held, {unlogged} unlogged")
    t.check(sum(int(p.get("held", 0)) for p in paused) <= len(held_rej) + unlogged and
            all("held" in p for p in paused),
            "publishing.paused counts the held refusals (held=)", str([p.get("_line") for p in paused][:2]))

    # ---- 2. read-only journal ------------------------------------------------------------------------------
    # A mounted filesystem with the journal open for writing cannot be remounted ro (EBUSY), so the broker is
    # stopped, the filesystem made read-only, and the broker started on it: it must refuse to run, loudly.
    t.eq(broker.stop(), 0, "broker SIGTERM before the read-only remount: exits 0")
    r = run("mount", "-o", "remount,ro", mnt)
    if not t.check(r.returncode == 0, "remount the journal's filesystem read-only", r.stderr.strip()):
        return
    ro = send("read-only", 10)
    mark = broker.log_size()
    broker.start(wait=False)
    try:
        broker.proc.wait(t.t(10))
    except subprocess.TimeoutExpired:
        pass
    rc = broker.proc.poll()
    tail = broker.log_text(mark)
    t.check(rc is not None and rc != 0, f"read-only journal: broker refuses to start (exit {rc})", tail[-400:])
    t.check("journal" in tail and "event=broker.ready" not in tail,
            "read-only journal: the refusal names the journal; no broker.ready", tail[-400:])
    t.log(f"read-only start: {tail.strip().splitlines()[-1] if tail.strip() else '(no log)'}")
    if broker.alive():
        broker.kill9()
    d = outbox()
    t.check(d is not None and d >= len(ro), f"read-only journal: the agent keeps them queued (outbox_depth {d})")
    r = run("mount", "-o", "remount,rw", mnt)
    t.check(r.returncode == 0, "remount read-write", r.stderr.strip())
    broker.start()
    t.check(net.run_until(lambda: delivered(ro), t.t(20)), "read-write again: every queued alert delivered",
            f"outbox {outbox()}, missing {[a for a in ro if not rx['DZA'].got(a)][:3]}")

    # ---- 3. nothing acknowledged is lost ---------------------------------------------------------------------
    net.run_until(lambda: outbox() == 0, t.t(10))
    t.eq(outbox(), 0, "agent outbox empty at the end")
    acked_seqs = [int(e.get("seq", 0)) for e in broker.events("alert.accepted")]
    broker.kill9()
    mark = broker.log_size()
    broker.start()
    ready = broker.events("broker.ready", since=mark)
    head = int(ready[-1].get("journal_head", -1)) if ready else -1
    t.check(head >= max(acked_seqs), f"after kill -9: journal_head {head} >= highest acknowledged seq "
            f"{max(acked_seqs)}")
    net.run_until(lambda: all(n.state == "open" and n.session >= 3 for n in rx.values()), t.t(10))
    net.sleep(t.t(1.0))
    missing = [(nid, a) for a in sent for nid in ("DZA", "LBY") if not rx[nid].got(a)]
    t.check(not missing, f"all {len(sent)} alerts in DZA's and LBY's inboxes", str(missing[:3]))
    t.check(not any(n.seq_conflicts for n in rx.values()), "no alert journaled twice (duplicates=0)",
            str([n.seq_conflicts[:2] for n in rx.values()]))
    t.check(not rx["IOM-ROMENA"].inbox, "IOM-ROMENA received nothing (leaks=0)")
    order_bad = []
    for nid in ("DZA", "LBY"):
        got = [a.alert_id for a in rx[nid].arrivals if a.origin == "NER"]
        firsts = list(dict.fromkeys(got))
        if firsts != sent:
            order_bad.append(nid)
    t.check(not order_bad, "NER's alerts arrived in submission order at DZA and LBY", str(order_bad))
    t.log(f"published {len(sent)}, accepted {len(accepted_by_broker())}, "
          f"JOURNAL_UNAVAILABLE answers {len([e for e in broker.events('alert.rejected') if 'JOURNAL' in e.get('code', '')])}")
    net.check_protocol()
    t.eq(ner.stop(), 0, "agent SIGTERM: exits 0")
    t.eq(broker.stop(), 0, "broker SIGTERM: exits 0")
    net.close()
    fsize_limit(t, region)


def fsize_limit(t, region):
    """4. RLIMIT_FSIZE (prlimit --fsize): a write past the limit raises SIGXFSZ, whose default action kills the
    process.  The broker must treat it like a full disk (ignore SIGXFSZ, get EFBIG, answer JOURNAL_UNAVAILABLE)."""
    limit = 400 * 1024
    broker = x.Broker(t, region, RULES, name="broker-fsize", wrapper=["prlimit", f"--fsize={limit}"],
                      rate_per_second=100000, rate_burst=100000).start()
    net = x.Net(t)
    ner = net.node(region, "NER", broker, max_inflight=8)
    dza = net.node(region, "DZA", broker)
    net.connect_all()
    t.log(f"method 2: broker under prlimit --fsize={limit} (RLIMIT_FSIZE), journal on the ordinary filesystem")
    refs = []
    for i in range(300):
        a = x.alert("NER", C.SMUGGLING, headline=f"fsize {i}")
        a.info[0].description = "F" * 3000
        refs.append((ner.publish(broker.region.seal(a)), a.id))

    def settled():
        return all(r in ner.acks for r, _ in refs) or not broker.alive()
    net.run_until(settled, t.t(20))
    alive = broker.alive()
    rc = broker.proc.poll()
    codes = [x.code_name(ner.acks[r].result) for r, _ in refs if r in ner.acks]
    t.log(f"RLIMIT_FSIZE: broker {'alive' if alive else f'exited {rc}'}; acks {len(codes)} "
          f"(OK {codes.count('OK')}, JOURNAL_UNAVAILABLE {codes.count('JOURNAL_UNAVAILABLE')})")
    t.check(alive, "RLIMIT_FSIZE: the broker survives a write past the file size limit (ignores SIGXFSZ)",
            f"exit status {rc} (-{signal_name(rc)})")
    t.check("JOURNAL_UNAVAILABLE" in codes, "RLIMIT_FSIZE: publishes past the limit answered JOURNAL_UNAVAILABLE",
            str(sorted(set(codes))))
    ok_ids = [aid for r, aid in refs if r in ner.acks and ner.acks[r].result == x.pb.OK]
    if not alive:
        broker.wrapper = []
        broker.start()
        net.run_until(lambda: dza.state == "open" and dza.session >= 2, t.t(10))
    net.run_until(lambda: all(dza.got(a) for a in ok_ids), t.t(10))
    lost = [a for a in ok_ids if not dza.got(a)]
    t.check(not lost, f"RLIMIT_FSIZE: all {len(ok_ids)} acknowledged alerts delivered (nothing acked was lost)",
            f"{len(lost)} lost")
    broker.stop()
    agent_store_full(t, region)


def agent_store_full(t, region):
    """5. A receiving agent's store on a full filesystem: it cannot store deliveries, so it acknowledges none and
    reconnects.  Before, `xba status` showed only a link DOWN (or UP, exit 0) since a few seconds, and the focal
    point looked at the network; now a STORE line names the store's error since the first failure, exit 1, and
    `--json` has store_problem.  Space back: every alert arrives, and the line goes."""
    mnt = os.path.join(t.dir, "tcd-store")
    os.makedirs(mnt)
    r = run("mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", mnt)
    if not t.check(r.returncode == 0, "a 1 MiB tmpfs for DZA's store", r.stderr.strip()):
        return
    t.defer(lambda: run("umount", "-l", mnt))
    broker = x.Broker(t, region, RULES, name="broker-storefull").start()
    ner = x.Agent(t, region, "NER", broker, name="agent-NER-storefull").start(link=True)
    tcd = x.Agent(t, region, "DZA", broker, name="agent-DZA-storefull", reconnect_min_ms=200, reconnect_max_ms=1000)
    tcd.store_path = os.path.join(mnt, "store.db")
    tcd.write_config()
    tcd.start(link=True)
    # A store locked by another process for 2 s (a sqlite3 shell) while an officer sends is not a disk problem:
    # the send is refused, and no STORE line follows (it stuck, exit 1, until the next write went through).
    import sqlite3
    lock = sqlite3.connect(tcd.store_path, timeout=5)
    lock.execute("BEGIN IMMEDIATE")
    r = tcd.cli("send", "--category", "smuggling", "--severity", "minor", "--lang", "fr", "--headline",
                "Pendant un verrou", "--wait", "0")
    lock.rollback()
    lock.close()
    t.check(r.rc != 0, "DZA's officer sends while the store is locked: refused (nothing stored)", repr(r))
    r = tcd.cli("status")
    t.check(r.rc == 0 and "STORE:" not in r.out, "... and xba status says no STORE after a lock (exit 0)", r.out)
    # A lock held longer (a sqlite3 shell left in a transaction) while an alert arrives: before, the turn whose
    # transaction could not begin dropped the delivery unstored, the next alert's cursor passed it, and the broker
    # marked it delivered (lost, and NER's track said delivered).  Now nothing is acknowledged, the session drops,
    # the broker sends it again; after 5 s the STORE line says so; the lock gone, it arrives and the line goes.
    # Thirty of them: before, each delivery of a turn tried BEGIN again and waited out the 1 s busy timeout, so the
    # agent answered nobody (xba status: "no answer from the agent") for half a minute per session.
    lock = sqlite3.connect(tcd.store_path, timeout=5)
    lock.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                "Convoi pendant le verrou", "--wait", "5")
    locked_alert = x.sent_id(r)
    for i in range(29):
        ner.cli("send", "--category", "smuggling", "--severity", "minor", "--lang", "fr", "--headline",
                f"Rapport {i} pendant le verrou", "--wait", "0")
    time.sleep(max(0.0, 7 - (time.monotonic() - started)))
    during = tcd.cli("status")
    during_json = tcd.status() or {}
    lock.rollback()
    lock.close()
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                "Convoi après le verrou", "--wait", "5")
    after_lock = x.sent_id(r)
    end = time.monotonic() + t.t(20)
    while time.monotonic() < end and not {h.get("id") for h in tcd.history()} >= {locked_alert, after_lock}:
        time.sleep(0.3)
    t.check({h.get("id") for h in tcd.history()} >= {locked_alert, after_lock},
            "an alert that arrived while DZA's store was locked 7 s reaches DZA once it is free (not lost)")
    t.check(during.rc == 1 and "STORE:" in during.out and "Another program holds the store locked" in during.out,
            "... and xba status answered while it lasted, STORE: another program holds the store locked",
            during.out + during.err)
    t.check(during_json.get("store_problem_locked") is True,
            "... and --json says store_problem_locked: true (the agent knows it is a lock)", str(during_json))
    r = tcd.cli("status")
    t.check(r.rc == 0 and "STORE:" not in r.out, "... and no longer once it is stored", r.out)
    filler = os.path.join(mnt, "filler")
    fill(filler)
    mark = tcd.log_size()
    ids = []
    for i in range(2):
        r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                    f"Convoi {i} (disque plein à Alger)", "--description", "D" * 3000)
        ids.append(x.sent_id(r))
    t.check(tcd.wait_log(r"event=store\.(write_failed|batch_failed)", t.t(15), since=mark) is not None,
            "DZA's agent cannot store the deliveries (store.write_failed)", tcd.log_text(mark)[-600:])
    r = tcd.cli("status")
    t.check(r.rc == 1 and "STORE: this agent cannot write its store since" in r.out and "full" in r.out,
            "xba status at DZA: a STORE line naming the store's error, exit 1", repr(r))
    s = tcd.status() or {}
    t.check(s.get("store_problem", "") != "" and s.get("store_problem_since", "") != "",
            "xba status --json: store_problem and store_problem_since", str(s))
    t.check(s.get("store_problem_locked") is False, "... and store_problem_locked: false (the disk, not a lock)", str(s))
    os.unlink(filler)
    end = time.monotonic() + t.t(30)
    while time.monotonic() < end and not {h.get("id") for h in tcd.history()} >= set(ids):
        time.sleep(0.3)
    t.check({h.get("id") for h in tcd.history()} >= set(ids), "space back: both alerts reach DZA by themselves")
    s = tcd.wait_status(lambda s: s.get("store_problem") == "", t.t(10)) or {}
    r = tcd.cli("status")
    t.check(s.get("store_problem") == "" and "STORE:" not in r.out, "... and the STORE line goes", r.out)
    tcd.stop()
    ner.stop()
    broker.stop()


def signal_name(rc):
    try:
        import signal as _s
        return _s.Signals(-rc).name if rc is not None and rc < 0 else str(rc)
    except ValueError:
        return str(rc)


if __name__ == "__main__":
    if os.geteuid() != 0:
        # Mounting a tmpfs and creating network namespaces need root (CI runs as root); 77 is meson's "skipped".
        print("skipped: needs root")
        sys.exit(77)
    x.main(main, deadline_s=150)
