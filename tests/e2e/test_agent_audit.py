"""test_agent_audit.py — a country checks the region's journal against its own records: `xba audit verify
--agent-records` with a real broker, real xba-agent daemons for NER, DZA and LBY, and the real CLI.  NER's agent
holds every alert delivered to it and every alert it sent, each under the journal seq the broker gave it; all of
them must be in the journal at that seq, with the same bytes, routed to NER or sent by NER.

Then an insider deletes an entry NER received and recomputes the chain after it (xbatest.rechain_journal): the
chain, the signatures and the routing all still pass, and only NER's records show the hole.  An entry cut from the
end is past the journal's last entry: reported as not checked (a copy may simply be older), and --tip catches it.
Last, acknowledged states (beside the chain, not in it) are compared with the signed ACK entries: a made-up
acknowledgement and an erased one are both caught.

usage: /usr/bin/python3 tests/e2e/test_agent_audit.py BUILD_DIR SOURCE_ROOT
"""
import json
import os
import re
import shutil
import sqlite3
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

AGENTS = ["NER", "DZA", "LBY"]


def audit(t, journal, socket, *args):
    """xba audit verify, with --agent-records against the agent at socket unless it is None."""
    return x.audit_verify(t, journal, *args, *(("--agent-records", "--socket", socket) if socket else ()))


def copy_without(t, pristine, name, seq):
    """A copy of the journal with entry seq deleted (its alert row and its routing rows), as an insider would."""
    path = os.path.join(t.dir, name)
    shutil.copy(pristine, path)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM deliveries WHERE seq = ?", (seq,))
    db.execute("DELETE FROM alerts WHERE seq = ?", (seq,))
    db.commit()
    db.close()
    return path


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
    agents = x.start_agents(t, region, broker, AGENTS)
    ner, dza = agents["NER"], agents["DZA"]

    # NER sends two, DZA one (to NER among its neighbours), NER one more: seqs 1..4.
    sent = []
    for who, headline in ((ner, "convoy one"), (ner, "convoy two"), (dza, "convoi vers Tamanrasset"),
                          (ner, "convoy three")):
        r = who.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "en", "--headline",
                    headline)
        t.eq(r.rc, 0, f"{who.id} sends '{headline}'")
        sent.append(x.sent_id(r))
    s = ner.wait_status(lambda st: st.get("inbox_count") == 1 and st.get("outbox_depth") == 0, t.t(15))
    t.check(s is not None and s.get("inbox_count") == 1 and s.get("outbox_depth") == 0,
            "NER holds DZA's alert and the broker accepted its three", repr(s))
    seq_of = {a["id"]: a.get("seq") for a in ner.history("--outgoing")}
    t.check(seq_of.get(sent[2]) == 3, "NER received DZA's alert as seq 3", repr(seq_of))

    # The live journal, against NER's records: 3 sent + 1 received, all there.
    rc, out = audit(t, broker.journal_path, ner.socket, "--region", broker.region_path, "--rules", broker.rules_path)
    t.check(rc == 0 and "agent NER: 4 records" in out and "4 in the journal as the agent holds them, 0 NOT" in out,
            "live journal --agent-records: NER's 4 records (3 sent, 1 received) are all in the journal",
            f"exit {rc}: {out}")
    m = re.search(r"^tip: (seq \d+ hash [0-9a-f]{64})$", out, re.M)
    tip = m.group(1) if m else "seq 4 hash " + "0" * 64
    rc, out = audit(t, broker.journal_path, dza.socket, "--json")
    j = json.loads(out.splitlines()[0]) if rc == 0 and out.startswith("{") else {}
    t.check(j.get("ok") is True and j.get("agent_node") == "DZA" and j.get("agent_records") == 4 and
            j.get("agent_records_in_journal") == 4,
            "--json, DZA's agent (1 sent, NER's 3 received): agent_records 4, all in the journal", f"exit {rc}: {out}")
    t.eq(broker.stop(), 0, "broker stops")
    pristine = os.path.join(t.dir, "pristine.sqlite")
    shutil.copy(broker.journal_path, pristine)

    # The insider deletes seq 3 (DZA's alert, which NER received) and recomputes the chain after it.
    hole = copy_without(t, pristine, "hole.sqlite", 3)
    x.rechain_journal(hole, 4)
    rc, out = audit(t, hole, None, "--region", broker.region_path, "--rules", broker.rules_path)
    t.check(rc == 0 and "hash chain intact" in out,
            "seq 3 deleted, chain recomputed: chain, signatures and routing pass without the agent",
            f"exit {rc}: {out}")
    rc, out = audit(t, hole, ner.socket, "--region", broker.region_path)
    t.check(rc == 1 and re.search(rf"^seq 3 alert {sent[2]} from \?: NOT IN THE JOURNAL: NER received it under "
                                  r"seq 3, and the journal has no entry seq 3$", out, re.M)
            and "3 in the journal as the agent holds them, 1 NOT" in out,
            "--agent-records: NER's record of seq 3 is NOT IN THE JOURNAL, exit 1", f"exit {rc}: {out}")
    t.log(out)

    # The entry cut from the end instead: past the last entry, it is not checked (a copy may be older) ...
    cut = copy_without(t, pristine, "cut.sqlite", 4)
    rc, out = audit(t, cut, ner.socket)
    t.check(rc == 0 and "agent NER: 1 records after seq 3, the journal's last entry, NOT CHECKED" in out,
            "the last entry cut: NER's record past the end is reported, not failed", f"exit {rc}: {out}")
    # ... and the tip noted before shows it.
    rc, out = audit(t, cut, ner.socket, "--tip", tip)
    t.check(rc == 1 and "IS MISSING" in out, "... with the tip noted before: IS MISSING, exit 1", f"exit {rc}: {out}")

    # No agent there: a usage error naming the option, nothing else done.
    rc, out = audit(t, pristine, os.path.join(t.dir, "no-agent.sock"))
    t.check(rc == 2 and "--agent-records" in out, "--agent-records with no agent at the socket: exit 2",
            f"exit {rc}: {out}")
    for a in agents.values():
        a.stop()
    acknowledgements(t, region)


def acknowledgements(t, region):
    """Acknowledged states live beside the chain, not in it.  Before, an insider who marked an alert acknowledged
    by a made-up officer, or erased a real acknowledgement, passed the audit (and `xba track` showed it); now each
    acknowledged delivery is compared with the signed ACK entries, both ways."""
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES, name="broker-acks").start()
    ner = x.Agent(t, region, "NER", broker, name="agent-NER-acks").start(link=True)
    dza = x.Agent(t, region, "DZA", broker, name="agent-DZA-acks").start(link=True)
    ids = []
    for headline in ("convoi un", "convoi deux"):
        r = dza.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline", headline)
        ids.append(x.sent_id(r))
    s = ner.wait_status(lambda st: st.get("inbox_count") == 2, t.t(15))
    t.check(s is not None and s.get("inbox_count") == 2, "NER has DZA's two alerts", repr(s))
    r = ner.cli("ack", ids[1], "--officer", "Cdt. Garba", "--note", "vu")
    t.eq(r.rc, 0, "NER's officer acknowledges the second")
    ner.wait_status(lambda st: st.get("outbox_depth") == 0, t.t(10))
    time.sleep(1)
    t.eq(broker.stop(), 0, "broker stops")
    clean = os.path.join(t.dir, "acks.sqlite")
    shutil.copy(broker.journal_path, clean)
    rc, out = x.audit_verify(t, clean, "--region", broker.region_path)
    t.check(rc == 0 and "acknowledgements: 1 acknowledged deliveries and 1 signed acknowledgements compared" in out,
            "the untouched journal: its one acknowledged delivery matches its signed ACK", f"exit {rc}: {out}")
    forged = os.path.join(t.dir, "acks-forged.sqlite")
    shutil.copy(clean, forged)
    db = sqlite3.connect(forged)
    db.execute("UPDATE deliveries SET state = 3, officer = 'Cdt Faux', note = 'équipe sur place' WHERE node = 'NER' "
               "AND seq = (SELECT seq FROM alerts WHERE alert_id = ?)", (ids[0],))
    db.execute("UPDATE deliveries SET state = 2, officer = NULL, note = NULL WHERE node = 'NER' "
               "AND seq = (SELECT seq FROM alerts WHERE alert_id = ?)", (ids[1],))
    db.commit()
    db.close()
    rc, out = x.audit_verify(t, forged, "--region", broker.region_path)
    t.check(rc == 1 and re.search(rf"^seq \d+ alert {ids[0]} from DZA: ACKNOWLEDGED WITHOUT AN ACKNOWLEDGEMENT: the "
                                  r'journal says NER acknowledged it \(officer "Cdt Faux"\)', out, re.M) is not None,
            "a made-up acknowledgement: ACKNOWLEDGED WITHOUT AN ACKNOWLEDGEMENT, exit 1", f"exit {rc}: {out}")
    t.check(re.search(rf"^seq \d+ alert {ids[1]} from DZA: ACKNOWLEDGEMENT NOT RECORDED: NER's signed "
                      r"acknowledgement of it is in the journal, but its delivery to NER says delivered", out, re.M)
            is not None, "an erased acknowledgement: ACKNOWLEDGEMENT NOT RECORDED", f"exit {rc}: {out}")


if __name__ == "__main__":
    x.main(main)
