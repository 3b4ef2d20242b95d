"""test_agent_acks.py — acknowledgements waiting for their alerts after a restore of the broker's journal do not
hold a country's other alerts (docs/operations.md section 7).

Real xba-broker (rate limit 2 a second, burst 3) and real xba-agents NER and TCD.  NER sends 4 alerts, TCD's officer
acknowledges them, TCD sends 2 of its own; the broker's journal is then restored from a backup taken before all of
that, with NER's agent offline.  TCD publishes its 6 again: the 4 acknowledgements are refused UNKNOWN_ALERT (their
alerts are gone until NER publishes them again) and wait, set apart.  Before, they stayed at the head of TCD's
outbox: each resume after a pause (the rate limit, which the republishing reaches) sent them first, and the session,
held behind a later alert that was never sent again, let nothing of TCD's but emergencies out until NER came back.

usage: /usr/bin/python3 tests/e2e/test_agent_acks.py BUILD_DIR SOURCE_ROOT
"""
import os
import sqlite3
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402


def pruned_alert_refused_at_once(t, broker, ner, tcd):
    """Without a restore, UNKNOWN_ALERT for an acknowledgement is final (the broker pruned the alert): refused at
    once, ACKS REFUSED, not a week of ACKS WAITING (the regression audit of the waiting).  The prune is made by hand
    on the stopped broker's journal, as its prune deletes the oldest entries."""
    ids = [x.sent_id(ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                             headline, "--wait", "0")) for headline in ("Convoi vers Agadez", "Suivi")]
    end = time.monotonic() + t.t(20)
    while not set(ids) <= {h.get("id") for h in tcd.history()} and time.monotonic() < end:
        time.sleep(0.3)
    broker.stop()
    db = sqlite3.connect(broker.journal_path)
    seq = db.execute("SELECT seq FROM alerts WHERE alert_id = ?", (ids[0],)).fetchone()[0]
    for table in ("deliveries", "alerts"):
        db.execute(f"DELETE FROM {table} WHERE seq <= ?", (seq,))
    db.commit()
    db.close()
    broker.start()
    t.check(tcd.wait_link(t.t(15)), "TCD back on the broker whose journal pruned NER's first alert")
    t.eq(tcd.cli("ack", ids[0], "--officer", "Capitaine Mahamat").rc, 0, "TCD's officer acknowledges it (queued)")
    s = tcd.wait_status(lambda s: s.get("acks_refused") == 1, t.t(15)) or {}
    t.check(s.get("acks_refused") == 1 and not s.get("acks_waiting"),
            "the acknowledgement of a pruned alert: ACKS REFUSED at once, not ACKS WAITING", str(s)[:400])


def main(t):
    """Acknowledgements waiting for their alerts after a journal restore do not hold the country's other alerts.
    Before, they stayed at the head of the outbox: each resume after a pause (here the broker's rate limit, 2 a
    second, which the republishing reaches) sent them first, and the session, held behind a later alert that was
    never sent again, let nothing of TCD's but emergencies out until NER came back."""
    region = x.region_of_five(t, "restore-acks-e2e")
    broker = x.Broker(t, region, x.CHAD_ONLY_RULES, rate_per_second=2, rate_burst=3).start()
    agents = x.start_agents(t, region, broker, ["NER", "TCD"])
    ner, tcd = agents["NER"], agents["TCD"]
    backup = os.path.join(t.dir, "journal-acks-backup.sqlite")
    src, dst = sqlite3.connect(broker.journal_path), sqlite3.connect(backup)
    src.backup(dst)
    src.close()
    dst.close()
    pruned_alert_refused_at_once(t, broker, ner, tcd)
    ids = [x.sent_id(ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                             f"Convoi {i}", "--wait", "0")) for i in range(4)]
    end = time.monotonic() + t.t(30)
    while not set(ids) <= {h.get("id") for h in tcd.history()} and time.monotonic() < end:
        time.sleep(0.3)
    t.eq([i for i in ids if tcd.cli("ack", i, "--officer", "Capitaine Mahamat").rc != 0], [],
         "TCD acknowledges NER's 4 alerts")
    for i in range(2):
        tcd.cli("send", "--category", "health", "--severity", "minor", "--lang", "fr", "--headline", f"Rapport {i}",
                "--wait", "0")
    s = tcd.wait_status(lambda s: s.get("outbox_depth") == 0, t.t(30)) or {}
    t.eq(s.get("outbox_depth"), 0, "TCD's outbox drains at 2 a second")
    broker.stop()
    ner.stop()
    x.restore_sqlite(backup, broker.journal_path)
    mark = tcd.log_size()
    broker.start()
    t.check(tcd.wait_log(r"event=outbox\.requeued count=6", t.t(20), since=mark) is not None,
            "TCD publishes its 6 again (4 acknowledgements of alerts the journal lost, NER offline)")
    z = x.sent_id(tcd.cli("send", "--category", "health", "--severity", "extreme", "--lang", "fr", "--headline",
                          "Cas de choléra à Abéché", "--wait", "0"))
    end = time.monotonic() + t.t(30)
    state = None
    while time.monotonic() < end:
        out = [e for e in tcd.history("--outgoing", "--id", z) if e.get("id") == z]
        state = out[0].get("publish_state") if out else None
        if state == "accepted":
            break
        time.sleep(0.5)
    s = tcd.status() or {}
    t.check(state == "accepted" and s.get("acks_waiting") == 4,
            "a new alert of TCD goes out while its 4 acknowledgements wait for NER (ACKS WAITING 4)",
            f"state {state}, {str(s)[:400]}")



if __name__ == "__main__":
    x.main(main)
