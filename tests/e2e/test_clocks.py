"""test_clocks.py — wrong and stepping wall clocks, on the broker and on a country's agent.  Each process that is
given a wrong clock runs with tests/e2e/clockshim.c preloaded: its CLOCK_REALTIME moved by the seconds in a file
the test rewrites (the monotonic clocks, and the kernel's judgement of absolute deadlines, untouched, as after a
real `date -s` or NTP step).  Real xba-broker, real xba-agent NER, TCD and DZA, real xba CLI.

1. The broker's clock steps back: its WAL checkpointer waited on a wall-clock deadline, so checkpoints stopped for
   as long as the step and the WAL grew by ~34 KiB an alert.  It now waits on the monotonic clock.
2. The broker restarted with its clock 400 days ahead (retention_days 365): it pruned at start, before any node
   could say what time it is, an alert delivered a minute earlier (TCD's ACK of it was then refused, NER's
   `xba track` lost it), and refused an alert expiring in 12 h as expired for good.  Now: no prune at start,
   `event=broker.clock_suspect` once the nodes' Hellos say otherwise, the ACK and the track work, and the 12 h
   alert is accepted.
3. The broker's clock 2 h behind every node's: each country was held (CLOCK_SKEW) and told to fix its own,
   correct, clock.  Now the broker judges sent times by the later of its clock and its nodes', and says
   `broker.clock_suspect`.
4. NER's machine 2 h ahead: `xba send` was refused at submission (CLOCK_SKEW), and the country could not send
   until its clock was fixed.  Now the agent signs with the region's clock once the broker has said it (protocol
   §2.7): accepted, and TCD has it written at the right time, valid for the duration asked; `xba status` says
   CLOCK.  An alert queued while the broker was unreachable (no measure of its clock yet) is held CLOCK_SKEW, then
   sealed again with the region's time (`event=alert.resealed`), the clock still wrong.
5. NER's machine 13 h behind: `--expires 12h` was refused at submission (ALERT_EXPIRED by the broker's clock),
   and every alert from NER read as 13 hours old at its neighbours.  Now accepted, written and expiring by the
   region's clock, shown as news.  A clock at 2000-01-01 (dead CMOS battery): the key is judged by the region's
   clock, so the country still sends; before the agent has heard the broker, the key is refused and `xba status`
   says to check the clock.
6. NER's machine restarted 400 days ahead (retention 365 days): it pruned at start, by its own clock, an alert
   acknowledged minutes before and its own sent alert (and, in the audit's case, a quarantined alert waiting for a
   key, lost for good), and recorded what arrived next as received 400 days after it was written.  Now it prunes
   nothing before it knows the broker's time, then by the earlier of the two clocks, and records arrival times in
   the region's time while its own is known to be off.
7. NER 10 days ahead and a broker journal restored from a backup: NER publishes again what the broker lost (the
   7-day window read in the region's time, as the records it reads).

usage: /usr/bin/python3 tests/e2e/test_clocks.py BUILD_DIR SOURCE_ROOT
"""
import os
import sqlite3
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

DAY = 86400


class Clock:
    """A wall-clock offset in seconds for the processes run with wrapper()/env()."""

    def __init__(self, t, name, offset=0):
        self.t = t
        self.path = os.path.join(t.dir, f"clock-{name}")
        self.set(offset)

    def set(self, offset):
        with open(self.path + ".tmp", "w") as f:
            f.write(f"{int(offset)}\n")
        os.replace(self.path + ".tmp", self.path)
        time.sleep(0.25)                                  # the shim reads the file at most every 100 ms

    def env(self):
        shim = os.path.join(self.t.build, "tests", "e2e", "libxba_clockshim.so")
        asan = os.environ.get("ASAN_OPTIONS", "")
        return {"LD_PRELOAD": shim, "XBA_TEST_CLOCK_FILE": self.path,
                # A sanitizer build wants its runtime first in the library list; the shim only wraps one call.
                "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}

    def wrapper(self):
        return ["env"] + [f"{k}={v}" for k, v in self.env().items()]


def send(agent, clock, headline, *extra):
    env = clock.env() if clock is not None else None
    return agent.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                     headline, "--description", "x" * 400, *extra, env=env)


def sent_ms(entry):
    text = str(entry.get("sent", ""))
    return x.parse_rfc3339(text[:19] + "Z") if len(text) >= 19 else 0


def inbox_has(agent, headline, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for e in agent.history() or []:
            if headline in repr(e):
                return e
        time.sleep(0.2)
    return None


def broker_step_back(t, region):
    clock = Clock(t, "broker-wal")
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES, name="broker-wal", wrapper=clock.wrapper()).start()
    tcd = x.Agent(t, region, "TCD", broker, name="TCD-wal").start(link=True)
    ner = x.Agent(t, region, "NER", broker, name="NER-wal").start(link=True)
    wal = broker.journal_path + "-wal"
    for i in range(20):
        send(ner, None, f"avant {i}", "--wait", "0")
    ner.wait_status(lambda s: s.get("outbox_depth") == 0, t.t(60))
    clock.set(7200)                                       # two hours ahead for a moment, then corrected
    time.sleep(0.5)
    clock.set(0)
    for i in range(100):
        send(ner, None, f"après {i}", "--wait", "0")
    ner.wait_status(lambda s: s.get("outbox_depth") == 0, t.t(60))
    time.sleep(1.0)
    size = os.path.getsize(wal)
    t.check(size < 1024 * 1024, "the broker's clock stepped back 2 h: WAL checkpoints go on (WAL under 1 MiB after "
            "100 alerts; it grew ~34 KiB an alert while the checkpointer waited on the wall clock)", f"{size} bytes")
    t.check(inbox_has(tcd, "après 99", t.t(20)) is not None, "... and the alerts reach TCD", "")

    # Protocol §5.3: an expired alert is stored and shown as expired; one that has not expired says until when.
    send(ner, None, "Valable trois secondes", "--expires", "3s", "--wait", "10")
    send(ner, None, "Valable une heure", "--expires", "1h", "--wait", "10")
    inbox_has(tcd, "Valable une heure", t.t(20))
    time.sleep(3.5)
    text = tcd.cli("history", "--limit", "2").out
    short = text[:text.find("Valable trois secondes")]
    t.check("EXPIRED" in short.split("== ")[-1] and "valid until" in text,
            "`xba history`: the alert past its expiry says EXPIRED, the other 'valid until'", text[-1200:])
    for p in (ner, tcd, broker):
        p.stop()


def broker_ahead(t, region):
    clock = Clock(t, "broker-ahead")
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES, name="broker-ahead", wrapper=clock.wrapper(),
                      retention_days=365).start()
    tcd = x.Agent(t, region, "TCD", broker, name="TCD-ahead").start(link=True)
    ner = x.Agent(t, region, "NER", broker, name="NER-ahead").start(link=True)
    dza = x.Agent(t, region, "DZA", broker, name="DZA-ahead").start(link=True)
    r = send(ner, None, "Convoi vers Agadez", "--json")
    alert_id = (r.json() or [{}])[0].get("alert_id")
    got = inbox_has(tcd, "Convoi vers Agadez", t.t(20))
    t.check(alert_id and got is not None, "NER's alert reaches TCD", repr(r))

    broker.stop()
    clock.set(400 * DAY)                                  # an RTC set a year and more wrong
    mark = broker.log_size()
    marks = {a: a.log_size() for a in (tcd, ner, dza)}
    broker.start()
    for a in (tcd, ner, dza):
        a.wait_link(t.t(30), since=marks[a])
    suspect = broker.wait_log(r"event=broker\.clock_suspect offset_ms=-\d+ nodes=[23] ", t.t(30), since=mark)
    t.check(suspect is not None, "broker 400 days ahead: event=broker.clock_suspect once the nodes say their clocks",
            broker.log_text(mark)[-1500:])
    t.check(not broker.events("journal.pruned", since=mark),
            "... and it prunes nothing at start (before, the alert delivered a minute ago went)",
            broker.log_text(mark)[-800:])
    r = tcd.cli("ack", alert_id, "--officer", "oumar")
    time.sleep(1.0)
    out = [e for e in (tcd.history("--outgoing") or []) if e.get("state") == "refused"]
    t.check(r.rc == 0 and not out, "TCD acknowledges it: the ACK is not refused (UNKNOWN_ALERT)",
            repr(r) + repr(out[:1]))
    r = ner.cli("track", alert_id)
    t.check(r.rc in (0, 1) and "acknowledged 1" in r.out and "TCD" in r.out,
            "NER's `xba track` still finds it, with TCD's acknowledgement (LBY is offline: exit 1)", repr(r))
    r = send(ner, None, "Valable douze heures", "--expires", "12h", "--wait", "10")
    t.check(r.rc == 0 and "accepted by the broker" in r.out and "EXPIRED" not in r.out + r.err,
            "an alert expiring in 12 h is accepted, not refused ALERT_EXPIRED by the broker's wrong clock", repr(r))
    for p in (ner, tcd, dza, broker):
        p.stop()


def broker_behind(t, region):
    clock = Clock(t, "broker-behind", -7200)
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES, name="broker-behind", wrapper=clock.wrapper()).start()
    mark = broker.log_size()
    tcd = x.Agent(t, region, "TCD", broker, name="TCD-behind").start(link=True)
    ner = x.Agent(t, region, "NER", broker, name="NER-behind").start(link=True)
    dza = x.Agent(t, region, "DZA", broker, name="DZA-behind").start(link=True)
    suspect = broker.wait_log(r"event=broker\.clock_suspect offset_ms=\d+ nodes=[23] .*behind", t.t(30), since=mark)
    t.check(suspect is not None, "broker 2 h behind its nodes: event=broker.clock_suspect says the broker's clock is "
            "behind", broker.log_text(mark)[-1500:])
    r = send(ner, None, "Passeurs signalés", "--wait", "10")
    t.check(r.rc == 0 and "accepted by the broker" in r.out,
            "NER (right clock) sends: accepted, not held CLOCK_SKEW behind the broker's wrong clock", repr(r))
    t.check(inbox_has(tcd, "Passeurs signalés", t.t(20)) is not None, "... and TCD has it", "")
    for p in (ner, tcd, dza, broker):
        p.stop()


def lying_majority(t, region):
    """Two of the three nodes that say their clock say 2000-01-01 (a hostile member and a dead clock battery): the
    broker doubts its own clock, but judges sent times by the later clock, so an alert from DZA (right clock) is
    accepted; DZA's agent, told both clocks, must judge the same way rather than refuse its officers' alerts.
    Then they say the largest int64: nothing overflows (the sanitizer builds run this too), nobody is refused."""
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES, name="broker-liars").start()
    dza = x.Agent(t, region, "DZA", broker, name="DZA-liars").start(link=True)
    for fake in (946684800000, 2 ** 63 - 1):
        net = x.Net(t)
        mark, dmark = broker.log_size(), dza.log_size()
        liars = [net.node(region, n, broker, clock=lambda f=fake: f) for n in ("LBY", "TCD")]
        net.connect_all(liars)
        if fake < 2 ** 62:
            t.check(broker.wait_log(r"event=broker\.clock_suspect", t.t(15), since=mark) is not None,
                    "two of three nodes say 2000-01-01: broker.clock_suspect", broker.log_text(mark)[-800:])
        net.sleep(1.5)                                # the Heartbeat that tells DZA's agent
        r = dza.cli("send", "--category", "smuggling", "--severity", "minor", "--headline",
                    f"Horloge juste, voisins faux ({fake})", "--wait", "10")
        t.check(r.rc == 0 and "accepted by the broker" in r.out,
                f"DZA (right clock) still sends while two nodes say {fake}: accepted, not refused by its own agent",
                repr(r))
        t.check(broker.alive() and dza.alive(), "... broker and agent alive", "")
        net.close()
        broker.wait_log(r"event=broker\.clock_agrees|event=node\.disconnected", t.t(10), since=mark)
    for p in (dza, broker):
        p.stop()


def expires_ms(entry):
    text = str(entry.get("expires", ""))
    return x.parse_rfc3339(text[:19] + "Z") if len(text) >= 19 else 0


def agent_ahead(t, region):
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES, name="broker-agent-ahead").start()
    tcd = x.Agent(t, region, "TCD", broker, name="TCD-agent-ahead").start(link=True)
    clock = Clock(t, "ner", 7200)
    ner = x.Agent(t, region, "NER", broker, name="NER-agent-ahead", wrapper=clock.wrapper()).start(link=True)

    # The agent knows the region's clock: it signs with it, so the alert goes at once, written at the right time.
    r = send(ner, clock, "Deux heures d'avance", "--expires", "1h", "--wait", "10")
    t.check(r.rc == 0, "NER's clock 2 h ahead: `xba send --expires 1h` is accepted (it was refused CLOCK_SKEW at "
            "submission, and the country could not send until its clock was fixed)", repr(r))
    got = inbox_has(tcd, "Deux heures d'avance", t.t(30))
    t.check(got is not None and abs(sent_ms(got) - x.now_ms()) < 120000 and
            abs(expires_ms(got) - sent_ms(got) - 3600000) < 2000,
            "... TCD has it signed with the region's time (not 2 h ahead), valid for 1 h from then", str(got))
    st = ner.status() or {}
    t.check(st.get("outbox_depth") == 0 and abs(st.get("clock_offset_ms", 0) + 7200000) < 60000,
            "... nothing left queued; `xba status --json` has clock_offset_ms -7200000", str(st))
    r = ner.cli("status", env=clock.env())
    t.check("CLOCK: this machine's clock is 2 h 0 min ahead of the broker's" in r.out and
            "signed with the region's time" in r.out, "... and `xba status` prints the CLOCK line", r.out)

    # Queued while the broker is unreachable and the agent has never measured its clock: held CLOCK_SKEW, then
    # sealed again with the region's time as soon as the broker has said it, the clock still wrong.
    ner.stop()
    broker.stop()
    ner.start()
    r = send(ner, clock, "Signé en avance", "--wait", "0")
    t.check(r.rc == 3, "with the broker down, the alert is queued (exit 3)", repr(r))
    mark = ner.log_size()
    broker.start()
    held = ner.wait_log(r"event=alert\.deferred .*code=CLOCK_SKEW", t.t(30), since=mark)
    t.check(held is not None, "the broker back: it holds the alert (CLOCK_SKEW)", ner.log_text(mark)[-1000:])
    resealed = ner.wait_log(r"event=alert\.resealed ", t.t(40), since=mark)
    t.check(resealed is not None, "... sealed again with the region's time, NER's clock still 2 h ahead "
            "(event=alert.resealed)", ner.log_text(mark)[-1500:])
    got = inbox_has(tcd, "Signé en avance", t.t(30))
    t.check(got is not None and abs(sent_ms(got) - x.now_ms()) < 120000,
            "... and TCD has it, sent at the region's time (not 2 h ahead)", str(got))
    for p in (ner, tcd, broker):
        p.stop()


def agent_behind(t, region):
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES, name="broker-agent-behind").start()
    tcd = x.Agent(t, region, "TCD", broker, name="TCD-agent-behind").start(link=True)
    clock = Clock(t, "ner-behind", -13 * 3600)
    ner = x.Agent(t, region, "NER", broker, name="NER-agent-behind", wrapper=clock.wrapper()).start(link=True)
    r = send(ner, clock, "Valable douze heures", "--expires", "12h", "--wait", "10")
    t.check(r.rc == 0, "NER's clock 13 h behind: `--expires 12h` is accepted (it was refused ALERT_EXPIRED at "
            "submission: by the broker's clock 12 h from NER's had passed)", repr(r))
    got = inbox_has(tcd, "Valable douze heures", t.t(30))
    t.check(got is not None and abs(sent_ms(got) - x.now_ms()) < 120000 and
            abs(expires_ms(got) - sent_ms(got) - 12 * 3600000) < 2000,
            "... TCD has it written now by the region's clock (not 13 h ago), valid 12 h from then", str(got))
    text = tcd.cli("history", "--limit", "1").out
    t.check("Valable douze heures" in text and "WRITTEN" not in text and "EXPIRED" not in text,
            "... and TCD's officers do not read it as old news (no 'WRITTEN ..., received 13 hours later')", text)
    # The same from an alert file: its `expires: 6h` also counts from the sent time the agent gives it.
    path = os.path.join(t.dir, "six-heures.yaml")
    with open(path, "w") as f:
        f.write("category: smuggling\nseverity: severe\ntlp: amber\nurgency: immediate\ncertainty: likely\n"
                "expires: 6h\ninfo:\n  - language: fr\n    headline: Fichier six heures\n")
    r = ner.cli("send", path, "--wait", "10", env=clock.env())
    got = inbox_has(tcd, "Fichier six heures", t.t(30)) if r.rc == 0 else None
    t.check(got is not None and abs(expires_ms(got) - sent_ms(got) - 6 * 3600000) < 2000 and
            abs(sent_ms(got) - x.now_ms()) < 120000,
            "... an alert file's `expires: 6h` too: accepted, valid 6 h from the region's time (it was refused as "
            "already passed)", repr(r) + str(got))

    # A dead CMOS battery: the clock reads 2000-01-01.  With the region's clock known the key is judged by it.
    ner.stop()
    years = int((x.now_ms() / 1000) - 946684800)          # to 2000-01-01
    clock.set(-years)
    ner.start(link=True)
    r = send(ner, clock, "Pile morte", "--wait", "10")
    t.check(r.rc == 0, "clock at 2000-01-01, the broker's clock known: the alert is signed and accepted (the key "
            "is judged by the region's clock)", repr(r))
    got = inbox_has(tcd, "Pile morte", t.t(30))
    t.check(got is not None and abs(sent_ms(got) - x.now_ms()) < 120000, "... TCD has it, written now", str(got))
    r = ner.cli("status", env=clock.env())
    t.check("CANNOT SEND" not in r.out and "CLOCK:" in r.out and "behind the broker's" in r.out,
            "... `xba status` has the CLOCK line and no CANNOT SEND", r.out)
    # Before the agent has heard the broker, its own clock is all it has: the key is refused, and status says to
    # check the clock.
    ner.stop()
    broker.stop()
    ner.start()
    r = send(ner, clock, "Pile morte, seul")
    t.check(r.rc != 0 and "KEY_NOT_VALID" in r.err, "... the broker unreachable since the agent started: the key "
            "is refused by this machine's clock", repr(r))
    r = ner.cli("status", env=clock.env())
    t.check("CANNOT SEND" in r.out and "not yet heard the broker's clock" in r.out,
            "... and `xba status` says CANNOT SEND, and to check this machine's clock", r.out)
    for p in (ner, tcd):
        p.stop()


def revoked_broker_behind(t, region):
    """A key revoked 30 min ago by NER's (right) clock, a broker 1 h behind with only two nodes (too few to doubt
    its clock): NER signs with the broker's time, but a revocation is judged by the later of the two clocks, so
    the key does not sign again (every recipient would refuse it: they judge revocations by their own clocks).
    Last: it revokes NER's key in the region."""
    key = region.nodes["NER"].signing_keys[0]
    key.valid_from = x.rfc3339(x.now_ms() - 10 * DAY * 1000)
    key.revoked_at = x.rfc3339(x.now_ms() - 30 * 60000)
    region.write()
    clock = Clock(t, "broker-revoked", -3600)
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES, name="broker-revoked", wrapper=clock.wrapper()).start()
    tcd = x.Agent(t, region, "TCD", broker, name="TCD-revoked").start(link=True)
    ner = x.Agent(t, region, "NER", broker, name="NER-revoked").start(link=True)
    ner.wait_status(lambda s: s.get("clock_offset_known"), t.t(20))
    r = send(ner, None, "Clé révoquée", "--wait", "10")
    t.check(r.rc != 0 and "KEY_REVOKED" in r.err, "NER's key revoked 30 min ago, the broker's clock 1 h behind: "
            "refused at submission (the broker's time does not un-revoke it)", repr(r))
    r = ner.cli("status")
    t.check("CANNOT SEND" in r.out, "... and `xba status` says CANNOT SEND", r.out)
    for p in (ner, tcd, broker):
        p.stop()


def agent_far_ahead(t, region):
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES, name="broker-agent-far").start()
    tcd = x.Agent(t, region, "TCD", broker, name="TCD-agent-far").start(link=True)
    clock = Clock(t, "ner-far", 0)
    ner = x.Agent(t, region, "NER", broker, name="NER-agent-far", wrapper=clock.wrapper()).start(link=True)
    r = send(tcd, None, "Reçu et acquitté avant le saut", "--wait", "10")
    got = inbox_has(ner, "Reçu et acquitté avant le saut", t.t(30))
    t.check(r.rc == 0 and got is not None, "NER has TCD's alert", repr(r))
    t.eq(ner.cli("ack", got.get("id", "?"), "--officer", "Cdt. Garba").rc if got else None, 0,
         "NER's officer acknowledges it")
    t.eq(send(ner, None, "Envoyé par NER avant le saut", "--wait", "10").rc, 0, "NER sends an alert, accepted")
    ner.wait_status(lambda s: s.get("outbox_depth") == 0, t.t(30))

    # NER's machine restarts 400 days ahead (a dead CMOS battery set forward, no NTP): retention_days is 365.
    ner.stop()
    clock.set(400 * DAY)
    mark = ner.log_size()
    ner.start(link=True)
    r = send(tcd, None, "Reçu avec l'horloge en avance", "--wait", "10")
    late = inbox_has(ner, "Reçu avec l'horloge en avance", t.t(30))
    time.sleep(2.5)                                      # past the agent's first prune (once it knows the broker's time)
    pruned = [e for e in ner.events("store.pruned", since=mark)
              if any(e.get(k, "0") != "0" for k in ("inbox", "outgoing", "receipts", "quarantine"))]
    t.check(not pruned, "NER restarted 400 days ahead: it prunes nothing that arrived minutes ago (it pruned the "
            "acknowledged alert and its own sent one at start, by its own clock)", str(pruned))
    hist = ner.history() or []
    t.check(any("Reçu et acquitté avant le saut" in repr(e) for e in hist),
            "... the acknowledged alert is still in NER's history", str(len(hist)))
    out = ner.cli("history", "--outgoing", "--json").out
    t.check("Envoyé par NER avant le saut" in out, "... and so is the alert NER sent", out[-400:])
    received = x.parse_rfc3339(late.get("received", "")[:19] + "Z") if late and late.get("received") else 0
    t.check(late is not None and abs(received - x.now_ms()) < 120000,
            "an alert received with the clock 400 days ahead is recorded as received at the region's time (it "
            "read as received 400 days after it was written)", str(late and late.get("received")))
    for p in (ner, tcd, broker):
        p.stop()


def agent_ahead_restore(t, region):
    """NER's clock 10 days ahead, known (xba status CLOCK): it records what the broker answered in the region's
    time (part 6), so every window over those records must be read in the region's time too.  Before, the 7 days
    after a journal restore within which it publishes again what the broker lost were counted by its own clock:
    with it 10 days ahead it published nothing again, and TCD, offline meanwhile, never got B and C (the regression
    audit).  (Its REFUSED count of the last 7 days missed a refusal of a second ago the same way: the audit's repro,
    not repeated here.)"""
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES, name="broker-ahead-restore").start()
    others = [x.Agent(t, region, n, broker, name=f"{n}-ahead-restore").start(link=True) for n in ("DZA", "LBY")]
    clock = Clock(t, "ner-ahead-restore", 10 * DAY)
    ner = x.Agent(t, region, "NER", broker, name="NER-ahead-restore", wrapper=clock.wrapper()).start(link=True)
    tcd = x.Agent(t, region, "TCD", broker, name="TCD-ahead-restore")    # not started: offline
    t.eq(send(ner, clock, "A, dix jours d'avance", "--wait", "10").rc, 0, "NER, 10 days ahead, sends A: accepted")
    backup = os.path.join(t.dir, "journal-ahead-restore.sqlite")
    src, dst = sqlite3.connect(broker.journal_path), sqlite3.connect(backup)
    src.backup(dst)
    src.close()
    dst.close()
    for h in ("B", "C"):
        t.eq(send(ner, clock, f"{h}, dix jours d'avance", "--wait", "10").rc, 0, f"... {h} after the backup: accepted")
    broker.stop()
    x.restore_sqlite(backup, broker.journal_path)
    mark = ner.log_size()
    broker.start()
    m = ner.wait_log(r"event=outbox\.requeued count=(\d+)", t.t(30), since=mark)
    t.check(m is not None and int(m.group(1)) >= 2, "the broker's journal restored from a backup taken before B and "
            "C: NER publishes them again (its 7 days read in the region's time)", m.group(0) if m else "none")
    tcd.start(link=True)
    t.check(inbox_has(tcd, "C, dix jours d'avance", t.t(30)) is not None and
            inbox_has(tcd, "B, dix jours d'avance", t.t(5)) is not None, "... and TCD, offline meanwhile, gets them")
    for p in [ner, tcd] + others + [broker]:
        p.stop()


def main(t):
    region = x.region_of_five(t, "clocks-e2e")
    broker_step_back(t, region)
    broker_ahead(t, region)
    broker_behind(t, region)
    lying_majority(t, region)
    agent_ahead(t, region)
    agent_behind(t, region)
    agent_far_ahead(t, region)
    agent_ahead_restore(t, region)
    revoked_broker_behind(t, region)                   # last: it revokes NER's key in the region


if __name__ == "__main__":
    x.main(main, deadline_s=260)
