"""test_agent_held.py — an alert that would stop a country's outbox is refused before it is queued, and an outbox
the broker holds says why, in `xba status` and when `xba send` stops waiting.

Real xba-broker and a real xba-agent NER:

- An alert file whose `sent` is a day ahead is refused at submission (CLOCK_SKEW, naming `sent` and the agent's
  clock, exit 2), and so is one whose `expires` has passed (ALERT_EXPIRED): before, the first was queued, the
  broker refused it for now, and every later alert of the country waited behind it until that day.  Nothing is
  queued: the next alert goes out at once.
- NER's agent signs with a second key that its region.yaml lists and the broker's does not (the secretariat has
  not reloaded yet, docs/operations.md section 5).  The broker answers UNKNOWN_KEY, a refusal for now.
  `xba send --wait 3` then ends with exit 3 and a HELD line naming the alert, UNKNOWN_KEY and what the secretariat
  must do, instead of "link down or busy" while the link is up; `xba status` prints the same line, and
  `xba status --json` has outbox_held_alert / outbox_held_code.  Once the broker is given the key and reloads, the
  alert goes out, and the HELD line goes.  TCD's agent, never given the new key, refuses it, and the broker's
  delivery.refused line names the alert and its origin.
- With the broker down, an alert whose expiry passes before it comes back is refused by the broker then
  (ALERT_EXPIRED): `xba history --outgoing` shows the code in text and refused_code / refused_message in JSON.

usage: /usr/bin/python3 tests/e2e/test_agent_held.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
import zmq  # noqa: E402

ALERT_FILE = """\
category: smuggling
severity: severe
sent: {sent}
{extra}info:
  - language: fr
    headline: "Convoi de passeurs vers Assamaka"
"""


def main(t):
    region = x.region_of_five(t, "held-e2e")
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()      # the broker's region.yaml: NER's first key only
    tcd = x.Agent(t, region, "TCD", broker)                       # TCD's region.yaml: NER's first key only, for good
    tcd.start()
    second = region.add_key("NER")
    ner = x.Agent(t, region, "NER", broker, signing_key=region.nodes["NER"].signing_keys[second].pem_path)
    ner.start()
    t.check(ner.wait_link(t.t(15)), "NER's agent (second key): link up")

    # ---- refused before they are queued ---------------------------------------------------------------------------
    path = os.path.join(t.dir, "ahead.yaml")
    with open(path, "w") as f:
        f.write(ALERT_FILE.format(sent=x.rfc3339(x.now_ms() + 86400 * 1000), extra=""))
    r = ner.cli("send", path)
    t.check(r.rc == 2 and "CLOCK_SKEW" in r.err and "sent" in r.err and "ahead of the time now" in r.err,
            "a sent time a day ahead: refused at submission, CLOCK_SKEW, exit 2", repr(r))
    with open(path, "w") as f:
        f.write(ALERT_FILE.format(sent=x.rfc3339(x.now_ms() - 7200 * 1000),
                                  extra=f"expires: {x.rfc3339(x.now_ms() - 3600 * 1000)}\n"))
    r = ner.cli("send", path)
    t.check(r.rc == 2 and "ALERT_EXPIRED" in r.err and "already passed" in r.err,
            "an expiry that has passed: refused at submission, ALERT_EXPIRED, exit 2", repr(r))
    s = ner.status() or {}
    t.eq((s.get("outbox_depth"), s.get("outbox_held_alert")), (0, ""), "nothing queued, nothing held")

    # ---- held by the broker ---------------------------------------------------------------------------------------
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                "Convoi de passeurs vers Toummo", "--wait", "3")
    alert_id = x.sent_id(r)
    t.check(r.rc == 3 and "HELD" in r.out and "UNKNOWN_KEY" in r.out and alert_id in r.out and
            "secretariat" in r.out and "link down" not in r.out,
            "xba send --wait 3: exit 3, HELD behind this alert, UNKNOWN_KEY, what the secretariat must do", repr(r))
    r = ner.cli("status")
    t.check("HELD" in r.out and "UNKNOWN_KEY" in r.out and alert_id in r.out, "xba status: the HELD line", r.out)
    s = ner.status() or {}
    t.eq((s.get("outbox_held_alert"), s.get("outbox_held_code"), s.get("outbox_depth"), s.get("link_up")),
         (alert_id, "UNKNOWN_KEY", 1, True), "xba status --json: held behind the alert, UNKNOWN_KEY, link up")

    r = ner.cli("track", alert_id)
    t.check(r.rc == 1 and "still queued at this agent" in r.err, "xba track of the held alert: still queued here, "
            "not 'the broker has no alert'", repr(r))

    # Two more alerts queue behind it, and the agent retries: the HELD line still names the first (every later one
    # waits behind it) and says since when the outbox first stopped.  Before, each refusal of a retry named the
    # newest alert refused and started "since" again, so an outage of hours looked minutes old.
    since = s.get("outbox_held_since")
    later = []
    for i in range(2):
        r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                    f"Convoi {i} derrière le premier", "--wait", "0")
        later.append(x.sent_id(r))
    mark = broker.log_size()
    t.check(broker.wait_log(rf"event=alert\.rejected node=NER alert={alert_id} .*code=UNKNOWN_KEY", t.t(15),
                            since=mark) is not None and
            broker.wait_log(rf"event=alert\.rejected node=NER alert={later[-1]} .*code=UNKNOWN_KEY", t.t(15),
                            since=mark) is not None,
            "the agent retries: the broker refuses the first alert and the later ones again", broker.log_text(mark)[-800:])
    time.sleep(1.5)
    s = ner.status() or {}
    t.eq((s.get("outbox_held_alert"), s.get("outbox_held_since"), s.get("outbox_depth")), (alert_id, since, 3),
         "after the retries, xba status --json still names the first alert, held since the first refusal")

    broker.write_region()   # now with NER's second key
    broker.hup()
    s = ner.wait_status(lambda s: s.get("outbox_depth") == 0 and s.get("outbox_held_alert") == "", t.t(20)) or {}
    t.eq((s.get("outbox_depth"), s.get("outbox_held_alert")), (0, ""),
         "the broker reloaded with the key: the alert goes out, nothing is held")
    out = [e for e in ner.history("--outgoing") if e.get("id") == alert_id]
    t.check(out and out[0].get("publish_state") == "accepted", "history --outgoing: the alert accepted", str(out))
    t.check("HELD" not in ner.cli("status").out, "xba status: no HELD line any more")
    rec = broker.wait_log(r"event=delivery\.refused node=TCD .*", t.t(10))
    t.check(rec is not None and f"alert={alert_id}" in rec.group(0) and "origin=NER" in rec.group(0),
            "TCD's agent, whose region.yaml lacks NER's new key, refuses it: the broker's delivery.refused names the "
            "alert and its origin (an ordinary delivery, not only an emergency)", rec.group(0) if rec else "")

    # ---- refused later: the history keeps the broker's code and message ------------------------------------------
    broker.stop()
    expires = x.now_ms() + 4000
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                "Convoi : information valable quelques secondes", "--expires", x.rfc3339(expires + 1000), "--wait", "0")
    late = x.sent_id(r)
    t.eq(r.rc, 3, "with the broker down, an alert expiring in seconds is queued")
    time.sleep(max(0, (expires + 2500 - x.now_ms()) / 1000))
    broker.start()
    s = ner.wait_status(lambda s: s.get("outbox_depth") == 0, t.t(20)) or {}
    t.eq(s.get("outbox_depth"), 0, "the broker is back: the outbox drains")
    out = [e for e in ner.history("--outgoing") if e.get("id") == late]
    t.check(out and out[0].get("publish_state") == "refused" and out[0].get("refused_code") == "ALERT_EXPIRED" and
            out[0].get("refused_message"), "history --outgoing --json: refused, ALERT_EXPIRED and the broker's message",
            str(out)[:400])
    r = ner.cli("history", "--outgoing", "--id", late)
    t.check("REFUSED by the broker: ALERT_EXPIRED" in r.out, "history --outgoing (text): the code", r.out)
    # The officer who queued it was told it would go out, and may have gone home: xba status says it, for the next.
    st = ner.cli("status")
    s = ner.status() or {}
    t.check(s.get("alerts_refused_recent") == 1 and "REFUSED         1 alert sent from here was refused by the broker "
            "in the last 7 days: nobody received it" in st.out,
            "xba status: a REFUSED line (1 alert in the last 7 days; JSON alerts_refused_recent)", st.out + str(s)[:200])
    r = ner.cli("track", late)
    t.check(r.rc == 1 and "refused by the broker (ALERT_EXPIRED" in r.err, "xba track of it: refused, with the code",
            repr(r))

    # ---- a link that will not come back by itself: the broker's CURVE key changed, the agent pins the old one ----
    ner.stop()
    ner.write_broker_key(zmq.curve_keypair()[0])
    ner.start()
    ner.wait_log(r"event=link\.refused reason=(handshake-failed|closed-during-handshake)", t.t(20), since=ner.mark)
    r = ner.cli("status")
    t.check(r.rc == 1 and "REFUSED:" in r.out and "broker_public_key" in r.out,
            "xba status with a pinned broker key that is not the broker's: a REFUSED line naming broker_public_key",
            r.out)
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--headline", "Clé du courtier changée",
                "--wait", "3")
    t.check(r.rc == 3 and "will not come back by itself" in r.out and "broker_public_key" in r.out,
            "... and xba send says the link will not come back by itself, not 'when the link returns'", repr(r))
    ner.stop()
    ner.write_broker_key()
    ner.start(link=True)
    r = ner.cli("status")
    t.check(r.rc == 0 and "REFUSED:" not in r.out, "the right key back: link up, no REFUSED line", r.out)

    # ---- the broker's CURVE key rotated while NER runs (its key worked this session) --------------------------
    # A few failed handshakes in a row are taken for the link (a flapping link resets connections and libzmq says
    # the same); a run of eight is not: REFUSED names broker_public_key and both causes.  Before, such an agent
    # showed only DOWN, forever (the regression audit of the change that stopped flapping links reading as a key).
    broker.stop()
    new_public, new_secret = zmq.curve_keypair()
    secret_path = os.path.join(broker.dir, "keys", "BROKER.curve.key")
    fd = os.open(secret_path, os.O_WRONLY | os.O_TRUNC, 0o600)
    os.write(fd, new_secret + b"\n")
    os.close(fd)
    mark = ner.log_size()
    broker.start()
    t.check(ner.wait_log(r"event=link\.refused reason=(handshake-failed|closed-during-handshake) .*failures=8",
                         t.t(60), since=mark) is not None,
            "the broker's key rotated under a running NER: after 8 failed handshakes in a row, link.refused")
    r = ner.cli("status")
    t.check(r.rc == 1 and "REFUSED:" in r.out and "broker_public_key" in r.out and "after working earlier" in r.out,
            "... and xba status: REFUSED, the broker's key may have been rotated, check broker_public_key", r.out)
    counts = [e.get("failures") for e in ner.events("link.failed", since=mark) if e.get("failures")]
    t.check(counts and len(counts) == len(set(counts)), "each failed handshake logged once (failures=1, 2, ...)",
            str(counts))
    ner.stop()
    ner.write_broker_key(new_public)
    ner.start(link=True)
    t.eq(ner.cli("status").rc, 0, "the new broker key pinned: link up")
    ner.stop()
    journal_full(t, region)


def journal_full(t, region):
    """A broker whose journal disk is full answers every publish in flight JOURNAL_UNAVAILABLE (not "held:"), and
    again at each retry.  Before, the HELD line named the last refused (the newest alert, last in line) and its
    "since" started again at each retry: an outage of hours looked minutes old."""
    fake = x.FakeBroker(t)
    ner = x.Agent(t, region, "NER", fake, name="agent-NER-journal-full")
    ner.start()
    t.check(fake.run_until(lambda: ner.events("link.up", since=ner.mark), t.t(15)), "NER behind a fake broker: up")
    ids = []
    for i in range(3):
        r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                    f"Convoi {i} (journal plein)", "--wait", "0")
        ids.append(x.sent_id(r))
    answered = 0
    status = []
    for _ in range(3):                     # the first sending, then two retries, each refused in full
        fake.run_until(lambda: len(fake.publishes) >= answered + 3, t.t(15))
        for p in fake.publishes[answered:]:
            fake.answer(publish_ack=x.pb.PublishAck(ref=p.ref, result=x.pb.JOURNAL_UNAVAILABLE,
                                                    message="journal unavailable: database or disk is full"))
        answered = len(fake.publishes)
        fake.run_until(lambda: False, 1.2)
        status.append(ner.status() or {})
    t.check(answered >= 9, f"the agent sent its 3 alerts, then again after each refusal ({answered} publishes)")
    t.eq([(s.get("outbox_held_alert"), s.get("outbox_held_code")) for s in status],
         [(ids[0], "JOURNAL_UNAVAILABLE")] * 3, "xba status names the oldest alert, which the others wait behind")
    since = [s.get("outbox_held_since") for s in status]
    t.check(len(set(since)) == 1, "... held since the first refusal, through the retries", str(since))
    ner.stop()


if __name__ == "__main__":
    x.main(main)
