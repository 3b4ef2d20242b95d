"""test_agent_restore.py — a country whose agent store is restored from a backup gets back every alert delivered
to it after the backup (docs/protocol.md section 2.5, docs/operations.md section 7).

Real xba-broker and real xba-agents NER (may_broadcast) and TCD.  NER sends alert A; TCD's store is backed up
(SQLite's online backup, as operations.md section 7 does it); NER then sends B, an emergency broadcast E and C,
and TCD's officer acknowledges C.  TCD's agent is stopped, its store replaced by the backup, and started again:
its Hello resumes from before B, below what it had acknowledged.  The broker logs event=node.rewound and sends B
and E again: TCD's history holds A, B and E, NER's `xba track` shows TCD delivered for B and E.  C, acknowledged
by an officer, stays acknowledged at the broker and is not sent again (operations.md says so).  Then the
broker's journal is restored from a backup taken after A: the broker logs event=journal.behind for TCD, whose
agent resets its cursor, and a new alert still reaches TCD.  Before the fix
the broker kept its delivery marks over the lower resume_after, and B and E never came back.  Last, the journal is
restored again while TCD's agent is offline, and NER sends more alerts than the backup lacked before TCD returns:
the broker sees that TCD's cursor names another alert than its journal holds at that seq (journal.cursor_mismatch)
and TCD resumes from what the journal records it acknowledged (before, the new alerts were marked delivered and
never sent).

usage: /usr/bin/python3 tests/e2e/test_agent_restore.py BUILD_DIR SOURCE_ROOT
"""
import os
import sqlite3
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402


def main(t):
    region = x.region_of_five(t, "restore-e2e")
    broker = x.Broker(t, region, x.CHAD_ONLY_RULES).start()
    agents = x.start_agents(t, region, broker, ["NER", "TCD"])
    ner, tcd = agents["NER"], agents["TCD"]

    def send(headline):
        r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline", headline)
        t.eq((r.rc, x.accepted_recipients(r)), (0, 1), f"NER sends '{headline}' to TCD")
        return x.sent_id(r)

    def tcd_has(*ids):
        end = time.monotonic() + t.t(15)
        while not {h.get("id") for h in tcd.history()} >= set(ids):
            if time.monotonic() >= end:
                return False
            time.sleep(0.2)
        return True

    a = send("Convoi A vers Toummo")
    t.check(tcd_has(a), "TCD has A")
    backup = os.path.join(t.dir, "tcd-store-backup.sqlite")
    journal_backup = os.path.join(t.dir, "journal-backup.sqlite")
    for live, copy in ((tcd.store_path, backup), (broker.journal_path, journal_backup)):
        src, dst = sqlite3.connect(live), sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        dst.close()

    b = send("Convoi B vers Toummo")
    r = ner.cli("broadcast", "--category", "border-incident", "--lang", "fr", "--headline",
                "Attaque armée au poste d'Assamaka", "--author", "Chef de quart NER")
    e = x.sent_id(r)
    t.check(r.rc == 0 and e is not None, "NER broadcasts E", r.out + r.err)
    c = send("Convoi C vers Toummo")
    t.check(tcd_has(a, b, e, c), "TCD has A, B, E and C")
    r = tcd.cli("ack", c, "--officer", "Capitaine Mahamat", "--note", "vu")
    t.eq(r.rc, 0, "TCD's officer acknowledges C")
    t.check(_wait_state(t, ner, c, "TCD", "acknowledged"), "NER's track: TCD acknowledged C")
    for name, alert_id in (("B", b), ("E", e)):
        t.check(_wait_state(t, ner, alert_id, "TCD", "delivered"), f"NER's track: TCD delivered {name}")

    # ---- the restore ---------------------------------------------------------------------------------------------
    tcd.stop()
    x.restore_sqlite(backup, tcd.store_path)
    mark = broker.log_size()
    tcd.start()
    t.check(tcd.wait_link(t.t(15)), "TCD's agent, on the restored store: link up")
    rec = broker.wait_log(r"event=node\.rewound node=TCD .*redeliveries=(\d+)", t.t(10), since=mark)
    t.check(rec is not None and int(rec.group(1)) == 2, "broker: node.rewound for TCD, 2 redeliveries (B and E)",
            broker.log_text(mark)[-1500:])
    t.check(tcd_has(a, b, e), "TCD has A, B and E again after the restore")
    # Its officers are told their store is older than the broker's record: C, acknowledged here after the backup,
    # is not sent again, and what was withdrawn or replaced since would still read as current.
    s = tcd.status() or {}
    st = tcd.cli("status")
    t.check(s.get("store_behind_since", "") != "" and "STORE BEHIND" in st.out
            and "still show as they were then" in st.out,
            "TCD's xba status: STORE BEHIND, and what it means (JSON store_behind_since)", st.out + str(s)[:200])
    t.check("event=store.behind" in tcd.log_text(), "TCD's agent logs event=store.behind")
    s = ner.status() or {}
    t.eq(s.get("store_behind_since"), "", "NER, whose store was not restored: no STORE BEHIND")
    ids = {x_.get("id") for x_ in tcd.history()}
    t.check(c not in ids, "C, acknowledged by TCD's officer before, is not sent again", str(ids))
    for name, alert_id in (("B", b), ("E", e)):
        t.check(_wait_state(t, ner, alert_id, "TCD", "delivered"), f"NER's track after the restore: TCD delivered {name}")
    t.check(_wait_state(t, ner, c, "TCD", "acknowledged"), "NER's track after the restore: TCD acknowledged C")

    # A later restart with the store as it now is rewinds nothing.
    mark = broker.log_size()
    tcd.stop()
    tcd.start()
    t.check(tcd.wait_link(t.t(15)), "TCD restarted: link up")
    d = send("Convoi D vers Toummo")
    t.check(tcd_has(d), "TCD has D")
    t.eq(broker.events("node.rewound", since=mark), [], "broker: no node.rewound on an ordinary restart")
    r = tcd.cli("ack", a, "--officer", "Lieutenant Abakar", "--note", "patrouille envoyée")
    t.eq(r.rc, 0, "TCD's officer acknowledges A")
    t.check(_wait_state(t, ner, a, "TCD", "acknowledged"), "NER's track: TCD acknowledged A")
    r = tcd.cli("ack", d, "--officer", "Lieutenant Abakar", "--note", "reçu")
    t.eq(r.rc, 0, "TCD's officer acknowledges D")
    t.check(_wait_state(t, ner, d, "TCD", "acknowledged"), "NER's track: TCD acknowledged D")
    short = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                    "Convoi X : valable trois secondes", "--expires", x.rfc3339(x.now_ms() + 3000), "--wait", "5")
    x_id = x.sent_id(short)
    t.check(short.rc == 0 and tcd_has(x_id), "NER's alert X, valid 3 s, accepted and delivered", repr(short))
    time.sleep(3.5)

    # ---- the broker's journal restored from the backup taken after A -----------------------------------------------
    # NER's agent is down meanwhile and comes back last: TCD publishes again its acknowledgement of D before NER
    # publishes D again.  Before, the broker's UNKNOWN_ALERT was final (ACKS REFUSED, NER never told); now the
    # acknowledgement waits, queued, and goes through once D is back.
    broker.stop()
    ner.stop()
    x.restore_sqlite(journal_backup, broker.journal_path)
    mark = broker.log_size()
    tcd_mark = tcd.log_size()
    broker.start()
    t.check(tcd.wait_log(r"event=ack\.waiting_for_alert ", t.t(20), since=tcd_mark) is not None,
            "TCD's agent: its acknowledgement of D, published again before NER's D, waits for it (ack.waiting_for_alert)",
            tcd.log_text(tcd_mark)[-1200:])
    s = tcd.status() or {}
    st = tcd.cli("status")
    t.check(s.get("acks_waiting") == 1 and s.get("acks_refused") == 0 and "ACKS WAITING" in st.out
            and "ACKS REFUSED" not in st.out,
            "TCD's xba status: ACKS WAITING 1 (not refused)", st.out + str(s)[:300])
    ner.start()
    rec = broker.wait_log(r"event=journal\.behind node=TCD .*", t.t(15), since=mark)
    t.check(rec is not None,
            "broker, on the journal restored from the backup: journal.behind for TCD (it has seqs the journal lacks)",
            broker.log_text(mark)[-800:])
    t.check(tcd.wait_log(r"event=link\.cursor_reset .*ends before this agent.s cursor", t.t(15), since=tcd_mark)
            is not None, "TCD's agent: link.cursor_reset (the journal ends before its cursor), back to what the "
            "restored journal records it acknowledged")
    # What the backup lacked of NER's and TCD's own is published again by their agents, the same signed alerts:
    # before, NER's B..D were gone from the broker (its officers had to send them again, under new ids), and TCD's
    # acknowledgement of A too (NER's track said delivered again, and TCD's officer could not acknowledge again).
    for node in ("NER", "TCD"):
        t.check(broker.wait_log(rf"event=journal\.publishes_lost node={node} ", t.t(15), since=mark) is not None,
                f"broker: journal.publishes_lost for {node} (the journal lacks the last alert it accepted from it)",
                broker.log_text(mark)[-800:])
    t.check(ner.wait_log(r"event=outbox\.requeued count=[1-9]", t.t(15), since=ner.mark) is not None,
            "NER's agent: outbox.requeued, what the broker accepted lately goes out again")
    t.check(_wait_state(t, ner, b, "TCD", "delivered"), "NER's track of B works again: the broker has B, TCD has it")
    t.check(_wait_state(t, ner, a, "TCD", "acknowledged"),
            "NER's track of A: TCD acknowledged it (its acknowledgement, lost with the backup, was published again)")
    t.check(_wait_state(t, ner, d, "TCD", "acknowledged", 45),
            "NER's track of D: TCD acknowledged it (its acknowledgement waited for NER to publish D again)")
    s = tcd.status() or {}
    t.check(s.get("acks_waiting") == 0 and s.get("acks_refused") == 0, "TCD's status: no acknowledgement waiting or "
            "refused any more", str(s)[:300])
    f = send("Convoi F vers Toummo")
    t.check(tcd_has(f), "a new alert after the journal's restore reaches TCD (its seq used a second time)")
    ids = [x_.get("id") for x_ in tcd.history("--limit", "1000")]
    t.eq(len(ids), len(set(ids)), "no alert twice in TCD's history after the republishing")
    out = [e for e in ner.history("--outgoing", "--id", x_id) if e.get("id") == x_id]
    t.check(out and out[0].get("publish_state") == "accepted",
            "X, published again after the restore but expired since, stays accepted in NER's history (it was "
            "delivered; before, it became 'refused ALERT_EXPIRED')", str(out)[:400])

    # ---- the journal restored again, TCD's agent offline meanwhile, and back only after the new alerts have
    # passed its cursor: the journal's head is no longer behind it, and before, the broker took the cursor's word
    # for the new alerts under the reused seqs (marked delivered, never sent; NER's track said delivered).
    journal_backup2 = os.path.join(t.dir, "journal-backup-2.sqlite")
    src, dst = sqlite3.connect(broker.journal_path), sqlite3.connect(journal_backup2)
    src.backup(dst)
    src.close()
    dst.close()
    # G0..G2 come from LBY as a node that keeps no outbox (a Python node of xbatest.py): an agent would publish
    # them again after the restore (journal.publishes_lost), at the same seqs, and there would be nothing to find.
    net = x.Net(t)
    lby = net.node(region, "LBY", broker)
    net.connect_all()
    gone = []
    for i in range(3):
        alert = x.alert("LBY", headline=f"Convoi G{i} vers Toummo")
        ack = lby.publish_wait(region.seal(alert))
        t.check(ack is not None and x.code_name(ack.result) == "OK", f"LBY publishes G{i}", str(ack))
        gone.append(alert.id)
    t.check(tcd_has(*gone), "TCD has G0..G2, journaled after the second backup")
    net.close()
    tcd.stop()
    broker.stop()
    x.restore_sqlite(journal_backup2, broker.journal_path)
    mark = broker.log_size()
    broker.start()
    new = [send(f"Convoi H{i} vers Toummo") for i in range(5)]
    tcd_mark = tcd.log_size()
    tcd.start()
    t.check(tcd.wait_link(t.t(15)), "TCD's agent back after the restore: link up")
    t.check(tcd_has(*new), "TCD has H0..H4, journaled after the restore under seqs its cursor had passed")
    rec = broker.wait_log(r"event=journal\.cursor_mismatch node=TCD .*", t.t(10), since=mark)
    t.check(rec is not None, "broker: journal.cursor_mismatch for TCD", broker.log_text(mark)[-800:])
    t.check(tcd.wait_log(r"event=link\.cursor_reset .*holds another alert", t.t(10), since=tcd_mark) is not None,
            "TCD's agent: link.cursor_reset, back to what the journal records it acknowledged")
    t.check(_wait_state(t, ner, new[0], "TCD", "delivered"), "NER's track: TCD delivered H0, and it has it")
    ids = [x_.get("id") for x_ in tcd.history("--limit", "1000")]
    t.eq(len(ids), len(set(ids)), "no alert twice in TCD's history")
    # An ordinary restart after that: the cursor is the journal's own again.
    mark = broker.log_size()
    tcd.stop()
    tcd.start()
    t.check(tcd.wait_link(t.t(15)), "TCD restarted: link up")
    last = send("Convoi I vers Toummo")
    t.check(tcd_has(last), "TCD has I")
    t.eq(broker.events("journal.cursor_mismatch", since=mark), [], "broker: no cursor mismatch on an ordinary restart")

    # ---- TCD's store restored from a backup taken before an emergency, with nothing ordinary since: an emergency
    # jumps the queue and is not in the agent's cursor, so the cursor alone did not show the loss, and the broker
    # never sent it again (the sender's track said delivered).  The Hello now says the highest seq TCD holds.
    backup3 = os.path.join(t.dir, "tcd-store-backup-3.sqlite")
    src, dst = sqlite3.connect(tcd.store_path), sqlite3.connect(backup3)
    src.backup(dst)
    src.close()
    dst.close()
    r = ner.cli("broadcast", "--category", "border-incident", "--lang", "fr", "--headline",
                "Deuxième attaque au poste d'Assamaka", "--author", "Chef de quart NER")
    e2 = x.sent_id(r)
    t.check(r.rc == 0 and tcd_has(e2), "NER broadcasts E2; TCD has it")
    tcd.stop()
    x.restore_sqlite(backup3, tcd.store_path)
    mark = broker.log_size()
    tcd.start()
    t.check(tcd.wait_link(t.t(15)), "TCD's agent, on the store from before E2: link up")
    t.check(tcd_has(e2), "TCD has E2 again (it was lost with the store's restore)")
    t.check(broker.wait_log(r"event=node\.rewound node=TCD ", t.t(10), since=mark) is not None,
            "broker: node.rewound for TCD", broker.log_text(mark)[-800:])
    s = tcd.status() or {}
    t.check(s.get("store_behind_since", "") != "", "TCD's status: STORE BEHIND", str(s)[:300])
    mark = broker.log_size()
    tcd.stop()
    tcd.start()
    t.check(tcd.wait_link(t.t(15)), "TCD restarted once more: link up")
    t.eq(broker.events("node.rewound", since=mark), [], "broker: no node.rewound on the restart after that")


def _wait_state(t, ner, alert_id, node, state, seconds=10):
    """Poll NER's `xba track ID --json` until node's state is state; whether it got there."""
    def now():
        return {j.get("node_id"): j.get("state") for j in ner.cli("track", alert_id, "--json").json()}.get(node)
    end = time.monotonic() + t.t(seconds)
    while now() != state:
        if time.monotonic() >= end:
            return False
        time.sleep(0.2)
    return True


if __name__ == "__main__":
    x.main(main)
