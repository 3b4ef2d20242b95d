"""test_broker_chunks.py — the broker reads frames in chunks, verifies the chunk's publishes on several threads
(broker/verifypool.c) and only then handles the frames one by one.  What a node sees must be exactly what one
thread handling one frame at a time would give:

1. a Hello followed at once by publishes (same chunk, before the Welcome is even sent) is a session, not
   "send hello first": every publish is accepted, in the order sent;
2. bursts far larger than a chunk from three nodes at once, with forged signatures mixed in: each forged publish
   gets BAD_SIGNATURE and its own log line, every other one is accepted, the journal order of each node's alerts
   is the order it sent them, and every recipient gets each accepted alert exactly once, in journal order;
3. the broker says how many verification threads it runs;
4. libzmq's I/O thread runs SCHED_BATCH, so that it sends a pass's messages when the loop blocks instead of
   preempting it at every send (broker/server.c, io_threads_batch), and broker.ready says so;
5. an emergency does not wait for a long pass to end: with passes allowed to run a whole second (pass_max_ms)
   and hundreds of publishes queued behind it (the broker stopped while they were sent), it is committed
   (alert.accepted commit=N) together with at most the rest of its chunk and the one chunk already read behind
   it, and the publishes after those go in later commits; pass_max_ms out of range is refused, naming the key.

usage: /usr/bin/python3 tests/e2e/test_broker_chunks.py BUILD_DIR SOURCE_ROOT
"""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
from xbatest import C  # noqa: E402

RULES = """\
rules:
  - name: everything-to-members
    when: { category: [smuggling, health] }
    to: [members]
"""
PUBLISHERS = ("NER", "TCD", "SDN")
BURST = 300          # per publisher; the broker reads at most CHUNK frames per chunk
CHUNK = 32           # CHUNK_MAX, broker/server.c
BEHIND = 300         # 5: publishes queued before and after the emergency
FORGED_EVERY = 7     # every 7th publish of NER carries a signature with one bit flipped


def forged(env):
    sig = bytearray(env.signature)
    sig[10] ^= 0x01
    env.signature = bytes(sig)
    return env


SCHED_OTHER, SCHED_BATCH = 0, 3


def thread_policies(pid, comm_prefix):
    """{tid: scheduling policy} of pid's threads whose name starts with comm_prefix (/proc/PID/task/TID/stat,
    field 41)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        if comm.startswith(comm_prefix):
            out[int(tid)] = int(fields[41 - 3])
    return out


def batch_allowed():
    """Whether this process may switch itself to SCHED_BATCH (and back), as the broker tries at start."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        return True
    except OSError:
        return False


def main(t):
    region = x.sahel_region(t)
    # Passes as long as a second and 100 000 frames: only the emergency (5) ends one early while frames wait.
    broker = x.Broker(t, region, RULES, verify_threads=2, rate_per_second=100000, rate_burst=100000,
                      pass_max_ms=1000, group_commit_max=100000).start()
    t.check(broker.wait_log(r"event=broker\.ready .*verify_threads=3", t.t(5)),
            "log: broker.ready says verify_threads=3 (the loop and two workers)")
    # Where this machine forbids SCHED_BATCH (a seccomp filter), the broker must say so and keep the default.
    want_sched, want_policy = ("batch", SCHED_BATCH) if batch_allowed() else ("default", SCHED_OTHER)
    t.check(broker.wait_log(rf"event=broker\.ready .*io_sched={want_sched}", t.t(5)),
            f"log: broker.ready says io_sched={want_sched}")
    # libzmq's I/O thread names itself (and takes its policy) when it first runs, which may be after
    # broker.ready on a loaded machine: wait for it.
    io_policies, until = {}, time.monotonic() + t.t(5)
    while not io_policies and time.monotonic() < until:
        io_policies = thread_policies(broker.proc.pid, "ZMQbg/IO")
        if not io_policies:
            time.sleep(0.05)
    t.check(io_policies and all(p == want_policy for p in io_policies.values()),
            f"libzmq's I/O thread runs {'SCHED_BATCH' if want_policy == SCHED_BATCH else 'the default policy'}",
            str(io_policies))
    # The event loop is the main thread (tid = pid).  Not every thread still called xba-broker: libzmq's threads
    # start with the process's name and take their policy before they rename themselves, so on a loaded machine
    # one can be seen as "xba-broker" already running SCHED_BATCH.
    loop_policy = {tid: p for tid, p in thread_policies(broker.proc.pid, "xba-broker").items()
                   if tid == broker.proc.pid}
    t.check(loop_policy and all(p == SCHED_OTHER for p in loop_policy.values()),
            "the event loop is back on the default policy after trying SCHED_BATCH", str(loop_policy))
    net = x.Net(t)

    # 1. Hello and publishes back to back.
    early = net.node(region, "MLI", broker, auto_hello=False, auto_reconnect=False)
    early.connect()
    net.run_until(lambda: early.state == "handshaken", t.t(5))
    early.hello()
    refs = list(range(1, 21))
    for ref in refs:
        early.send(publish=x.pb.Publish(ref=ref, envelope=region.seal(
            x.alert("MLI", C.HEALTH, C.MODERATE, C.AMBER, headline=f"MLI early {ref}"))))
    net.run_until(lambda: all(r in early.acks for r in refs), t.t(15))
    codes = [x.code_name(early.acks[r].result) if r in early.acks else "no ack" for r in refs]
    t.check(codes == ["OK"] * len(refs), "publishes right behind Hello (no wait for Welcome) are all accepted",
            str(codes))
    t.check(not early.errors, "no Error frame (no 'send hello first')", str([e.message for e in early.errors]))
    seqs = [early.acks[r].seq for r in refs if r in early.acks]
    t.check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "journal order is the order sent", str(seqs))

    # 2. Three nodes burst at once, NER with forged signatures mixed in.
    receivers = {nid: net.node(region, nid, broker, credit=1024) for nid in ("DZA", "LBY")}
    pubs = {nid: net.node(region, nid, broker, auto_reconnect=False) for nid in PUBLISHERS}
    net.connect_all()
    mark = broker.log_size()
    expected_code = {nid: {} for nid in PUBLISHERS}    # ref -> code
    alert_ids = {nid: {} for nid in PUBLISHERS}        # ref -> alert id
    for i in range(BURST):
        for nid in PUBLISHERS:
            ref = i + 1
            a = x.alert(nid, C.HEALTH, C.MODERATE, C.AMBER, headline=f"{nid} burst {ref}")
            env = region.seal(a)
            bad = nid == "NER" and ref % FORGED_EVERY == 0
            if bad:
                env = forged(env)
            expected_code[nid][ref] = "BAD_SIGNATURE" if bad else "OK"
            alert_ids[nid][ref] = a.id
            pubs[nid].send(publish=x.pb.Publish(ref=ref, envelope=env))
    done = lambda: all(len(pubs[n].acks) == BURST for n in PUBLISHERS)   # noqa: E731
    net.run_until(done, t.t(60))
    t.check(done(), "every publish of the burst answered", str({n: len(pubs[n].acks) for n in PUBLISHERS}))
    accepted = {}   # alert id -> seq
    for nid in PUBLISHERS:
        wrong = [(ref, want, x.code_name(pubs[nid].acks[ref].result) if ref in pubs[nid].acks else "no ack")
                 for ref, want in expected_code[nid].items()
                 if ref not in pubs[nid].acks or x.code_name(pubs[nid].acks[ref].result) != want]
        t.check(not wrong, f"{nid}: each publish answered with its own result", str(wrong[:5]))
        ok_refs = [r for r in sorted(expected_code[nid]) if expected_code[nid][r] == "OK" and r in pubs[nid].acks]
        seqs = [pubs[nid].acks[r].seq for r in ok_refs]
        t.check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs),
                f"{nid}: journal order of its alerts is the order it sent them", str(seqs[:10]))
        for r in ok_refs:
            accepted[alert_ids[nid][r]] = pubs[nid].acks[r].seq
    n_forged = sum(1 for r in expected_code["NER"].values() if r == "BAD_SIGNATURE")
    t.eq(len(accepted), len(PUBLISHERS) * BURST - n_forged, "accepted alerts")
    t.eq(len(set(accepted.values())), len(accepted), "every accepted alert has its own seq")
    net.run_until(lambda: broker.events("alert.rejected", since=mark) and
                  len([e for e in broker.events("alert.rejected", since=mark)
                       if e.get("code") == "BAD_SIGNATURE"]) >= n_forged, t.t(5))
    bad_lines = [e for e in broker.events("alert.rejected", since=mark) if e.get("code") == "BAD_SIGNATURE"]
    t.eq(len(bad_lines), n_forged, "one alert.rejected code=BAD_SIGNATURE log line per forged publish")

    for nid, r in receivers.items():
        want = {aid for aid, _ in accepted.items()}
        net.run_until(lambda r=r: want <= set(r.inbox), t.t(30))
        got = [a for a in r.arrivals if a.alert_id in want]
        t.check(want <= set(r.inbox), f"{nid}: every accepted alert delivered", f"{len(want - set(r.inbox))} missing")
        t.eq(r.redeliveries, 0, f"{nid}: no alert delivered twice")
        seqs = [a.seq for a in got]
        t.check(seqs == sorted(seqs), f"{nid}: deliveries arrive in journal order", str(seqs[:10]))
        t.check(all(accepted[a.alert_id] == a.seq for a in got), f"{nid}: delivered under the seq its ack named")
    t.check(not any(r.quarantine for r in receivers.values()), "no forged alert reached a recipient")

    # 5. An emergency in the middle of a queue of publishes ends its pass.  Sealed first; sent while the broker is
    # stopped, so that they are all waiting when it reads them.
    ner = pubs["NER"]
    ordinary = [x.alert("NER", C.HEALTH, C.MODERATE, C.AMBER, headline=f"NER queued {i}") for i in range(2 * BEHIND)]
    emergency = x.alert("NER", C.BORDER_INCIDENT, C.EXTREME, C.AMBER, emergency=True, headline="NER emergency")
    queue = ordinary[:BEHIND] + [emergency] + ordinary[BEHIND:]
    envs = [region.seal(a) for a in queue]
    refs = list(range(1001, 1001 + len(queue)))
    mark = broker.log_size()
    os.kill(broker.proc.pid, signal.SIGSTOP)
    try:
        for ref, env in zip(refs, envs):
            ner.send(publish=x.pb.Publish(ref=ref, envelope=env))
        net.run_until(lambda: False, 0.3)    # let libzmq write them out to the stopped broker's socket
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
    net.run_until(lambda: all(r in ner.acks for r in refs), t.t(60))
    codes = [x.code_name(ner.acks[r].result) if r in ner.acks else "no ack" for r in refs]
    t.check(codes == ["OK"] * len(refs), "every queued publish and the emergency accepted",
            str([c for c in codes if c != "OK"][:5]))
    net.run_until(lambda: len(broker.events("alert.accepted", since=mark)) >= len(refs), t.t(5))
    commit_of = {e.get("alert"): int(e.get("commit", "-1")) for e in broker.events("alert.accepted", since=mark)}
    e_commit = commit_of.get(emergency.id)
    t.check(e_commit is not None and e_commit > 0, "log: alert.accepted names the emergency's commit",
            str(e_commit))
    with_it = [a.id for a in ordinary[BEHIND:] if commit_of.get(a.id) == e_commit]
    t.check(len(with_it) <= 2 * CHUNK - 1,
            f"the emergency's commit holds at most {2 * CHUNK - 1} of the publishes queued behind it (the rest of "
            "its chunk and the chunk read behind it), not the rest of a long pass", f"{len(with_it)} of {BEHIND}")
    before = [a.id for a in ordinary[:BEHIND] if commit_of.get(a.id, 0) > e_commit]
    t.check(not before, "nothing queued ahead of the emergency is committed after it", str(before[:3]))
    t.log(f"5: {len(set(commit_of.values()))} commits for {len(refs)} publishes; {len(with_it)} behind the "
          f"emergency share its commit")
    for nid, r in receivers.items():
        net.run_until(lambda r=r: emergency.id in r.inbox, t.t(10))
        t.check(emergency.id in r.inbox and r.inbox[emergency.id].emergency, f"{nid}: the emergency delivered")
    for bad in (0, 1001):
        broker.write_config(pass_max_ms=bad)
        rc, out = broker.check_config()
        t.check(rc != 0 and "pass_max_ms" in out, f"--check refuses pass_max_ms {bad}, naming the key",
                f"exit {rc}: {out}")
    broker.write_config(pass_max_ms=1000)
    net.check_protocol()
    net.close()


if __name__ == "__main__":
    x.main(main, deadline_s=200)
