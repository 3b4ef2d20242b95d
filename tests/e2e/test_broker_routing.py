"""test_broker_routing.py — every kind of alert, from several origins, reaches exactly the nodes the rules name
(all nine nodes checked, with the rule credited to each recipient), nothing else arrives within a settle time, the
publisher's ack carries the recipient count, emergencies produce receipts, an admin's StatusRequest lists every
node, and a TrackRequest shows recipients with their states and withheld nodes with their rule.

usage: /usr/bin/python3 tests/e2e/test_broker_routing.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
from xbatest import C  # noqa: E402

RULES = """\
# rules.yaml for test_broker_routing.py (the examples of docs/rules.md section 3, adapted)
rules:
  - name: crime-to-neighbours
    when: { category: [border-incident, smuggling, trafficking] }
    to: [neighbours]
  - name: trafficking-to-iom
    when: { category: [smuggling, trafficking], severity_at_least: moderate }
    to: [IOM-ROMENA]
  - name: health-to-all
    when: { category: health }
    to: [members, WHO-AFRO]
  - name: sar-to-neighbours-and-iom
    when: { category: search-and-rescue }
    to: [neighbours, IOM-ROMENA]
  - name: movement-to-maghreb
    when: { category: population-movement }
    to: [maghreb, observers]
  - name: other-to-reporting
    when: { category: other }
    to: [SECRETARIAT, IOM-ROMENA]
  - name: exercises-stay-apart
    when: { status: exercise }
    deny: [observers]
"""


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES).start()
    net = x.Net(t)
    nodes = {nid: net.node(region, nid, broker) for nid in x.ALL_NODES}
    net.connect_all()
    w = nodes["NER"].welcome
    t.eq(w.protocol_version, 1, "Welcome.protocol_version")
    t.eq(w.rules_version, broker.rules_version(), "Welcome.rules_version is the SHA-256 of rules.yaml")
    t.check(w.heartbeat_ms == 2000 and w.max_frame_bytes == 262144,
            "Welcome carries heartbeat_ms=2000 and the default max_frame_bytes 262144",
            f"heartbeat_ms={w.heartbeat_ms} max_frame_bytes={w.max_frame_bytes}")

    cases = []   # (label, origin, alert, {recipient: rule}, {withheld: rule} or None)

    def route(label, origin, a, expect, withheld=None, signer=None):
        """Publish a from origin; check the ack, then (below, after everything settled) who got it."""
        ack = nodes[origin].publish_wait(region.seal(a, signer))
        ok = ack is not None and ack.result == x.pb.OK
        t.check(ok, f"{label}: publish acknowledged OK",
                f"ack={x.code_name(ack.result) + ' ' + ack.message if ack else 'none'}")
        if ok:
            t.eq(ack.recipients, len(expect), f"{label}: PublishAck.recipients")
            t.eq(ack.alert_id, a.id, f"{label}: PublishAck.alert_id")
        # Deterministic wait: every intended recipient has it (the settle time below catches any extra one).
        net.run_until(lambda: all(nodes[n].got(a.id) for n in expect), t.t(10))
        cases.append((label, origin, a, expect, withheld, ack))
        return a

    # 1. smuggling from NER, severe, amber: neighbours + IOM by the second rule
    smug = route("smuggling NER severe amber", "NER", x.alert("NER", C.SMUGGLING, C.SEVERE, C.AMBER),
                 {"DZA": "crime-to-neighbours", "LBY": "crime-to-neighbours", "MLI": "crime-to-neighbours",
                  "TCD": "crime-to-neighbours", "IOM-ROMENA": "trafficking-to-iom"})
    # 2. health from TCD, amber: every member but the origin, and WHO-AFRO
    route("health TCD amber", "TCD", x.alert("TCD", C.HEALTH, C.MODERATE, C.AMBER),
          {n: "health-to-all" for n in ("DZA", "LBY", "MLI", "NER", "SDN", "WHO-AFRO")})
    # 3. search and rescue from LBY with addressees: narrowed; a non-addressed neighbour and IOM withheld
    sar = route("search-and-rescue LBY addressed to DZA, NER, WHO-AFRO", "LBY",
                x.alert("LBY", C.SAR, C.SEVERE, C.AMBER, addressees=["DZA", "NER", "WHO-AFRO"]),
                {"DZA": "sar-to-neighbours-and-iom", "NER": "sar-to-neighbours-and-iom"},
                {"SDN": "not-addressed", "TCD": "not-addressed", "IOM-ROMENA": "not-addressed",
                 "WHO-AFRO": "no-rule"})
    # 4. an exercise from MLI: observers denied
    exer = route("search-and-rescue exercise MLI", "MLI", x.alert("MLI", C.SAR, C.SEVERE, C.GREEN,
                                                                   status=C.EXERCISE),
                 {"DZA": "sar-to-neighbours-and-iom", "NER": "sar-to-neighbours-and-iom"},
                 {"IOM-ROMENA": "exercises-stay-apart"})
    # 5. AMBER+STRICT health from TCD: members only
    strict = route("health TCD amber+strict", "TCD", x.alert("TCD", C.HEALTH, C.SEVERE, C.AMBER_STRICT),
                   {n: "health-to-all" for n in ("DZA", "LBY", "MLI", "NER", "SDN")},
                   {"WHO-AFRO": "tlp:amber+strict"})
    # 6. TLP:RED smuggling from NER with addressees SDN, DZA, SECRETARIAT
    red = route("smuggling NER red addressed to SDN, DZA, SECRETARIAT", "NER",
                x.alert("NER", C.SMUGGLING, C.SEVERE, C.RED, addressees=["SDN", "DZA", "SECRETARIAT"]),
                {"DZA": "crime-to-neighbours", "SDN": "tlp:red-addressee"},
                {"IOM-ROMENA": "tlp:red", "LBY": "tlp:red", "MLI": "tlp:red", "TCD": "tlp:red",
                 "SECRETARIAT": "admin"})
    # 7. emergency border incident from NER: every member and observer
    emerg = route("emergency border incident NER", "NER",
                  x.alert("NER", C.BORDER_INCIDENT, C.EXTREME, C.AMBER, emergency=True),
                  {n: "emergency" for n in ("DZA", "LBY", "MLI", "SDN", "TCD", "IOM-ROMENA", "WHO-AFRO")})
    # 8. ACK from DZA of NER's smuggling alert: back to NER only
    route("ACK from DZA of NER's smuggling alert", "DZA", x.ack_alert("DZA", smug), {"NER": "ack"})
    # 9. population movement from the observer IOM-ROMENA (allowed category)
    route("population-movement from observer IOM-ROMENA", "IOM-ROMENA",
          x.alert("IOM-ROMENA", C.MOVEMENT, C.MODERATE, C.GREEN),
          {"DZA": "movement-to-maghreb", "LBY": "movement-to-maghreb", "WHO-AFRO": "movement-to-maghreb"})
    # 10. other from NER: the admin named by a rule is withheld
    other = route("other NER (admin named by the rule)", "NER", x.alert("NER", C.OTHER, C.MINOR, C.CLEAR),
                  {"IOM-ROMENA": "other-to-reporting"}, {"SECRETARIAT": "admin"})
    # 11. minor smuggling from SDN: the IOM rule needs moderate or worse
    route("smuggling SDN minor", "SDN", x.alert("SDN", C.SMUGGLING, C.MINOR, C.CLEAR),
          {"LBY": "crime-to-neighbours", "TCD": "crime-to-neighbours"})

    # 12. a RED cancel of case 6 addressed to DZA alone: SDN, which had the alert, gets its withdrawal all the same
    # (a cancel's addressees cannot always name every holder: 64 at most), and no node that never had it does.
    route("RED cancel of case 6 addressed to DZA only", "NER",
          x.alert("NER", C.SMUGGLING, C.SEVERE, C.RED, msg_type=C.CANCEL, references=[red.id], addressees=["DZA"]),
          {"DZA": "crime-to-neighbours", "SDN": "superseded:had-alert"},
          {"IOM-ROMENA": "tlp:red", "LBY": "tlp:red", "MLI": "tlp:red", "TCD": "tlp:red"})

    # Settle: anything extra would arrive now.
    net.sleep(t.t(1.0))

    for label, origin, a, expect, withheld, ack in cases:
        got = {n: nodes[n].inbox[a.id].rule for n in x.ALL_NODES if nodes[n].got(a.id)}
        t.check(got == expect, f"{label}: reached exactly {sorted(expect)} with the right rules",
                f"got {got}, expected {expect}")
        for n in x.ALL_NODES:
            arrivals = [r for r in nodes[n].arrivals if r.alert_id == a.id]
            if len(arrivals) > 1:
                t.check(False, f"{label}: delivered once to {n}", f"{len(arrivals)} deliveries")
    t.check(not nodes["SECRETARIAT"].arrivals, "the admin SECRETARIAT received nothing",
            f"{len(nodes['SECRETARIAT'].arrivals)} deliveries")
    total = sum(len(n.arrivals) for n in nodes.values())
    expected_total = sum(len(c[3]) for c in cases)
    t.eq(total, expected_total, "total deliveries across the 9 nodes (nothing extra within the settle time)")
    t.check(all(not n.quarantine for n in nodes.values()), "every delivery verified at its recipient (§6.3)",
            str({n.id: n.quarantine for n in nodes.values() if n.quarantine}))
    t.check(all(not n.credit_violations for n in nodes.values()), "no Deliver beyond the credit window")

    # The emergency Deliver carries emergency=true; the others false.
    t.check(all(nodes[n].got(emerg.id) and nodes[n].inbox[emerg.id].emergency for n in cases[6][3]),
            "emergency Deliver has emergency=true")
    t.check(nodes["DZA"].got(smug.id) and not nodes["DZA"].inbox[smug.id].emergency,
            "a normal Deliver has emergency=false")

    # Emergency receipts: DELIVERED from each of the 7 recipients, pushed live to NER.
    emerg_recips = set(cases[6][3])
    got_rcpt = lambda: {r.node_id for r in nodes["NER"].receipts
                        if r.alert_id == emerg.id and r.kind == x.pb.RECEIPT_KIND_DELIVERED}
    net.run_until(lambda: got_rcpt() == emerg_recips, t.t(5))
    t.eq(sorted(got_rcpt()), sorted(emerg_recips), "Receipt(DELIVERED) to NER from every emergency recipient")
    t.check(all(r.alert_id == emerg.id for r in nodes["NER"].receipts),
            "receipts only for the emergency alert", str([r.alert_id for r in nodes["NER"].receipts]))
    t.check(not any(n.receipts for nid, n in nodes.items() if nid != "NER"), "no receipts to non-originators")

    # An ACK of the emergency: Receipt(ACKNOWLEDGED) with the officer, and TrackReply ACKNOWLEDGED.
    eack = x.ack_alert("TCD", emerg, author="officer-tcd", note="seen in N'Djamena")
    # Written a while ago (inside the key's validity), so its sent_ms differs from the broker's clock.
    eack.sent_ms = max(region.key("TCD").window_ms()[0] + 1, x.now_ms() - 30000)
    r = nodes["TCD"].publish_wait(region.seal(eack))
    t.check(r is not None and r.result == x.pb.OK and r.recipients == 1, "TCD's ACK of the emergency accepted, 1 recipient")
    ack_rc = lambda: [rc for rc in nodes["NER"].receipts
                      if rc.alert_id == emerg.id and rc.kind == x.pb.RECEIPT_KIND_ACKNOWLEDGED]
    net.run_until(lambda: ack_rc() and nodes["NER"].got(eack.id), t.t(5))
    rc = ack_rc()
    if t.check(len(rc) == 1 and rc[0].node_id == "TCD" and rc[0].officer == "officer-tcd",
               "Receipt(ACKNOWLEDGED) pushed to NER from TCD with officer = the ACK's author", str(rc)):
        t.eq(rc[0].note, "seen in N'Djamena", "Receipt(ACKNOWLEDGED).note is the ACK's note (§2.6)")
        t.eq(rc[0].time_ms, eack.sent_ms, "Receipt(ACKNOWLEDGED).time_ms is the ACK's sent_ms (§2.6)")

    # Status: the admin sees every node; a member sees itself.
    st = nodes["SECRETARIAT"].status()
    t.check(st is not None, "admin StatusRequest answered")
    if st:
        listed = sorted(n.node_id for n in st.nodes)
        t.check(set(x.ALL_NODES) - {"SECRETARIAT"} <= set(listed), "admin StatusReply lists every node",
                f"listed {listed}")
        conn = {n.node_id: n.connected for n in st.nodes}
        t.check(all(conn.get(n) for n in x.ALL_NODES if n != "SECRETARIAT"),
                "StatusReply: every node connected", str(conn))
        t.eq(st.rules_version, broker.rules_version(), "StatusReply.rules_version")
        t.check(st.journal_head >= len(cases) + 1, "StatusReply.journal_head counts the journaled alerts",
                f"journal_head={st.journal_head}")
        dza = next((n for n in st.nodes if n.node_id == "DZA"), None)
        t.check(dza is not None and dza.last_seen_ms > 0 and dza.cursor > 0,
                "StatusReply: DZA has last_seen_ms and a cursor", str(dza))
    st2 = nodes["MLI"].status()
    t.check(st2 is not None and [n.node_id for n in st2.nodes] == ["MLI"], "a member's StatusReply lists only itself",
            str(st2 and [n.node_id for n in st2.nodes]))

    # Track: recipients with states and the withheld with their rule.
    net.sleep(t.t(0.3))   # acks of the deliveries reach the broker
    expect_states = {
        smug.id: ({n: ("DELIVERED", r) for n, r in cases[0][3].items()} | {"DZA": ("ACKNOWLEDGED",
                                                                                     "crime-to-neighbours")}),
        sar.id: ({n: ("DELIVERED", r) for n, r in cases[2][3].items()}
                 | {n: ("WITHHELD", r) for n, r in cases[2][4].items()}),
        exer.id: ({n: ("DELIVERED", r) for n, r in cases[3][3].items()}
                  | {n: ("WITHHELD", r) for n, r in cases[3][4].items()}),
        strict.id: ({n: ("DELIVERED", r) for n, r in cases[4][3].items()}
                    | {n: ("WITHHELD", r) for n, r in cases[4][4].items()}),
        red.id: ({n: ("DELIVERED", r) for n, r in cases[5][3].items()}
                 | {n: ("WITHHELD", r) for n, r in cases[5][4].items()}),
        other.id: ({n: ("DELIVERED", r) for n, r in cases[9][3].items()}
                   | {n: ("WITHHELD", r) for n, r in cases[9][4].items()}),
        emerg.id: ({n: ("DELIVERED", r) for n, r in cases[6][3].items()} | {"TCD": ("ACKNOWLEDGED", "emergency")}),
    }
    origins = {smug.id: "NER", sar.id: "LBY", exer.id: "MLI", strict.id: "TCD", red.id: "NER", other.id: "NER",
               emerg.id: "NER"}
    labels = {smug.id: "smuggling NER (acked by DZA)", sar.id: "search-and-rescue LBY", exer.id: "exercise MLI",
              strict.id: "amber+strict TCD", red.id: "red NER", other.id: "other NER", emerg.id: "emergency NER"}
    for aid, want in expect_states.items():
        tr = nodes[origins[aid]].track(aid)
        if not t.check(tr is not None and tr.result == x.pb.OK, f"track {labels[aid]}: OK"):
            continue
        got = x.track_map(tr)
        t.check(got == want, f"track {labels[aid]}: recipients and withheld with states and rules",
                f"got {got}, expected {want}")
        t.eq(tr.seq, next(c[5].seq for c in cases if c[2].id == aid), f"track {labels[aid]}: seq is the ack's seq")
    rows = nodes["NER"].track(smug.id).recipients
    t.check(all(r.time_ms > 0 for r in rows if r.state in (x.pb.DELIVERY_STATE_DELIVERED,
                                                           x.pb.DELIVERY_STATE_ACKNOWLEDGED)),
            "track: DELIVERED and ACKNOWLEDGED rows carry the time the state was reached",
            str([(r.node_id, r.state, r.time_ms) for r in rows]))
    acked = [r for r in rows if r.state == x.pb.DELIVERY_STATE_ACKNOWLEDGED]
    t.check(acked and all(0 < r.delivered_ms <= r.time_ms for r in acked),
            "track: an ACKNOWLEDGED row also says when it was delivered (delivered_ms, no later than the "
            "acknowledgement): `xba broadcast --wait` whose DELIVERED receipt was lost showed the acknowledgement's "
            "time as the delivery's", str([(r.node_id, r.delivered_ms, r.time_ms) for r in acked]))

    # Track of someone else's alert, and of an unknown id: UNKNOWN_ALERT (no existence leak).
    tr = nodes["DZA"].track(smug.id)
    t.check(tr is not None and tr.result == x.pb.UNKNOWN_ALERT, "track of another node's alert: UNKNOWN_ALERT",
            str(tr))
    tr = nodes["NER"].track("00000000-0000-4000-8000-000000000000")
    t.check(tr is not None and tr.result == x.pb.UNKNOWN_ALERT, "track of an unknown id: UNKNOWN_ALERT")

    # Log: one event=alert.accepted per publish with the recipient count.
    acc = {e.get("alert"): e for e in broker.events("alert.accepted")}
    t.check(all(c[2].id in acc and acc[c[2].id].get("recipients") == str(len(c[3])) and acc[c[2].id].get("node")
                == c[1] for c in cases), "log: event=alert.accepted node=ORIGIN alert=ID recipients=N for each case",
            str([e["_line"] for e in acc.values()][:3]))

    net.check_protocol()
    t.eq(broker.stop(), 0, "SIGTERM: broker exits 0")
    t.check(broker.events("broker.stopped"), "log: event=broker.stopped")


if __name__ == "__main__":
    x.main(main)
