"""test_agent_flow.py — the duty officer's day, end to end with real processes: a real xba-broker, real xba-agent
daemons for NER, LBY, TCD, DZA and WHO-AFRO (MLI, SDN and IOM-ROMENA are xbatest.py protocol nodes), and the real
`xba` CLI.  An officer at NER sends a smuggling alert with French and Arabic text by flags; it reaches exactly the
nodes the rules name (watch --json at every agent), byte-identical; a health alert sent from an alert YAML file at
TCD reaches its set; history --json lists them; an officer at LBY acknowledges, and NER's track shows it; status
shows the links up and the outboxes empty.

usage: /usr/bin/python3 tests/e2e/test_agent_flow.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

RULES = """\
# rules.yaml for test_agent_flow.py (docs/rules.md section 3)
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
  - name: exercises-stay-apart
    when: { status: exercise }
    deny: [observers]
"""

AGENTS = ["NER", "LBY", "TCD", "DZA", "WHO-AFRO"]
PY_NODES = ["MLI", "SDN", "IOM-ROMENA"]

FR_HEADLINE = "Convoi de passeurs franchissant la frontière près d'Assamaka"
FR_EVENT = "Trafic de migrants"
FR_DESCRIPTION = "Trois pick-up transportant environ 45 personnes observés en direction du nord vers In Guezzam."
AR_HEADLINE = "قافلة تهريب مهاجرين تعبر الحدود قرب أساماكا"
AR_EVENT = "تهريب مهاجرين"
AR_DESCRIPTION = "رُصدت ثلاث شاحنات صغيرة تقل نحو 45 شخصاً متجهة شمالاً نحو عين قزام."
AR_INSTRUCTION = "يرجى تعزيز الدوريات على المسار وإبلاغ نقطة الاتصال الوطنية."

HEALTH_YAML = """\
# A health alert from Chad's focal point (docs/alert-yaml.md, the short example)
category: health
severity: moderate
urgency: expected
certainty: likely
tlp: green
expires: 2d
incident: TD-ABC-2026-007
info:
  - language: fr
    headline: Cas groupés de choléra signalés à Abéché
    description: 14 cas suspects en 48 heures au quartier Ridina.
  - language: ar
    headline: حالات كوليرا متجمعة في أبشي
  - language: en
    headline: Cholera cluster reported in Abéché
areas:
  - description: Abéché, Ouaddaï
    circles:
      - {lat: 13.83, lon: 20.83, radius_km: 30}
parameters:
  cases: 14
"""


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES).start()
    agents = {nid: x.Agent(t, region, nid, broker) for nid in AGENTS}
    for a in agents.values():
        a.start(wait=False)
    for a in agents.values():
        if a.wait_log(r"event=agent\.ready", t.t(15), since=a.mark) is None:
            raise RuntimeError(f"{a.name} did not start: {a.log_text()[-1500:]}")
    net = x.Net(t)
    py = {nid: net.node(region, nid, broker) for nid in PY_NODES}
    net.connect_all()
    for nid, a in agents.items():
        t.check(a.wait_link(t.t(15)), f"agent {nid}: event=link.up in its log")
    watches = {nid: a.watch() for nid, a in agents.items()}
    # A watch is subscribed once the agent logs it; only then is "nothing arrived" meaningful.
    for nid, a in agents.items():
        t.check(a.wait_log(r"event=local\.subscribed", t.t(10)) is not None, f"xba watch at {nid} subscribed")

    def received(alert_id, nid):
        if nid in watches:
            return watches[nid].has(alert_id)
        return py[nid].got(alert_id)

    def wait_reach(alert_id, expect, timeout):
        return net.run_until(lambda: all(received(alert_id, n) for n in expect), timeout)

    # ---- 1. smuggling from NER, by flags, French and Arabic text -------------------------------------------------
    r = agents["NER"].cli(
        "send", "--category", "smuggling", "--severity", "severe", "--urgency", "immediate",
        "--certainty", "observed", "--tlp", "amber", "--incident", "NE-AGZ-2026-114",
        "--author", "Cdt. Moussa Issoufou",
        "--lang", "fr", "--event", FR_EVENT, "--headline", FR_HEADLINE, "--description", FR_DESCRIPTION,
        "--lang", "ar", "--event", AR_EVENT, "--headline", AR_HEADLINE, "--description", AR_DESCRIPTION,
        "--instruction", AR_INSTRUCTION,
        "--area", "Assamaka border crossing", "--param", "people_count=45", "--param", "vehicles=3 pick-up trucks",
        net=net)
    smug = x.sent_id(r)
    t.eq(r.rc, 0, "send (flags) exits 0")
    t.check(smug is not None and smug in r.out, "send prints the alert id", repr(r))
    t.eq(x.accepted_recipients(r), 5, "send prints 'accepted by the broker: 5 recipients'")
    t.check(r.err.strip() == "", "send prints nothing on stderr", r.err)

    smug_expect = {"DZA": "crime-to-neighbours", "LBY": "crime-to-neighbours", "TCD": "crime-to-neighbours",
                   "MLI": "crime-to-neighbours", "IOM-ROMENA": "trafficking-to-iom"}
    wait_reach(smug, smug_expect, t.t(10))

    # ---- 2. health from TCD, from an alert YAML file ------------------------------------------------------------
    path = os.path.join(t.dir, "cholera.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEALTH_YAML)
    r = agents["TCD"].cli("send", path, "--author", "Dr. Mahamat Saleh", "--json", net=net)
    j = r.json()
    health = x.sent_id(r)
    t.eq(r.rc, 0, "send FILE.yaml --json exits 0")
    t.check(len(j) == 1 and j[0].get("state") == "accepted" and j[0].get("recipients") == 6 and
            j[0].get("result") == "OK" and j[0].get("seq", 0) > 0,
            "send FILE.yaml --json prints one object: state accepted, result OK, 6 recipients, a seq", repr(r))
    health_expect = {n: "health-to-all" for n in ("DZA", "LBY", "MLI", "NER", "SDN", "WHO-AFRO")}
    wait_reach(health, health_expect, t.t(10))

    # Settle: anything extra would arrive now.
    net.sleep(t.t(1.5))

    everyone = AGENTS + PY_NODES
    for label, aid, expect in (("smuggling from NER", smug, smug_expect), ("health from TCD", health, health_expect)):
        got = sorted(n for n in everyone if received(aid, n))
        t.eq(got, sorted(expect), f"{label}: reached exactly the nodes the rules name")
        for nid in AGENTS:
            if nid in expect:
                entries = watches[nid].by_id(aid)
                t.check(len(entries) == 1, f"{label}: xba watch at {nid} shows it once", f"{len(entries)} times")
                if entries:
                    t.eq(entries[0].get("rule"), expect[nid], f"{label}: rule shown at {nid}")
        for nid in PY_NODES:
            if nid in expect and py[nid].got(aid):
                t.eq(py[nid].inbox[aid].rule, expect[nid], f"{label}: rule at protocol node {nid}")

    # The smuggling alert as LBY's officer sees it: every field, and the text byte for byte.
    e = (watches["LBY"].by_id(smug) or [{}])[0]
    t.check(e.get("origin") == "NER" and e.get("category") == "smuggling" and e.get("severity") == "severe" and
            e.get("urgency") == "immediate" and e.get("certainty") == "observed" and e.get("tlp") == "amber" and
            e.get("status") == "actual" and e.get("msg_type") == "alert" and e.get("emergency") is False,
            "watch --json at LBY: origin, category, severity, urgency, certainty, tlp, status, type", str(e))
    t.eq(e.get("author"), "Cdt. Moussa Issoufou", "watch --json at LBY: author (--author)")
    t.eq(e.get("incident"), "NE-AGZ-2026-114", "watch --json at LBY: incident")
    t.eq(e.get("areas"), ["Assamaka border crossing"], "watch --json at LBY: areas")
    t.eq(e.get("parameters"), {"people_count": "45", "vehicles": "3 pick-up trucks"}, "watch --json at LBY: parameters")
    want_info = [
        {"language": "fr", "event": FR_EVENT, "headline": FR_HEADLINE, "description": FR_DESCRIPTION,
         "instruction": ""},
        {"language": "ar", "event": AR_EVENT, "headline": AR_HEADLINE, "description": AR_DESCRIPTION,
         "instruction": AR_INSTRUCTION},
    ]
    for nid in ("LBY", "DZA", "TCD"):
        got_info = ((watches[nid].by_id(smug) or [{}])[0]).get("info")
        t.check(got_info == want_info and
                [b["headline"].encode() for b in got_info] == [FR_HEADLINE.encode(), AR_HEADLINE.encode()],
                f"watch --json at {nid}: exactly the fr and ar blocks, text byte-identical", str(got_info))
    if py["MLI"].got(smug):
        a = py["MLI"].inbox[smug].alert
        t.check([(i.language, i.headline.encode(), i.description.encode()) for i in a.info] ==
                [("fr", FR_HEADLINE.encode(), FR_DESCRIPTION.encode()),
                 ("ar", AR_HEADLINE.encode(), AR_DESCRIPTION.encode())],
                "the signed alert bytes carry the fr and ar text unchanged (protocol node MLI)")
    t.check(all(not n.quarantine for n in py.values()), "every delivery verified at the protocol nodes (NER's "
            "signature over the bytes the agent sealed)", str({n.id: n.quarantine for n in py.values()}))

    h = (watches["WHO-AFRO"].by_id(health) or [{}])[0]
    t.check(h.get("origin") == "TCD" and h.get("category") == "health" and h.get("severity") == "moderate" and
            h.get("tlp") == "green" and h.get("author") == "Dr. Mahamat Saleh" and h.get("expires", "") != "" and
            h.get("incident") == "TD-ABC-2026-007",
            "watch --json at WHO-AFRO: the health alert from the YAML file, author from --author, expiry set", str(h))
    t.eq([(b.get("language"), b.get("headline")) for b in h.get("info", [])],
         [("fr", "Cas groupés de choléra signalés à Abéché"), ("ar", "حالات كوليرا متجمعة في أبشي"),
          ("en", "Cholera cluster reported in Abéché")], "watch --json at WHO-AFRO: the three language blocks")
    t.eq(h.get("parameters"), {"cases": "14"}, "watch --json at WHO-AFRO: parameters from the file")

    # ---- 3. history --json at a recipient ------------------------------------------------------------------------
    hist = agents["DZA"].history()
    ids = [e.get("id") for e in hist]
    t.check(ids.count(smug) == 1 and ids.count(health) == 1, "history --json at DZA lists both alerts, once each",
            str(ids))
    t.check(ids.index(health) < ids.index(smug) if smug in ids and health in ids else False,
            "history --json at DZA: newest first")
    hs = next((e for e in hist if e.get("id") == smug), {})
    t.check(hs.get("info") == want_info and hs.get("acknowledged") is False and hs.get("seq", 0) > 0 and
            hs.get("outgoing") is False, "history --json at DZA: the smuggling alert with its text, not acknowledged",
            str(hs))
    only_health = [e.get("id") for e in agents["DZA"].history("--category", "health")]
    t.eq(only_health, [health], "history --json --category health at DZA: only the health alert")
    out = [e for e in agents["NER"].history("--outgoing") if e.get("id") == smug]
    t.check(len(out) == 1 and out[0].get("outgoing") is True and out[0].get("publish_state") == "accepted" and
            out[0].get("recipients") == 5, "history --outgoing --json at NER: the alert it sent, accepted, 5 recipients",
            str(out))

    # ---- 4. ack at LBY, track at NER --------------------------------------------------------------------------
    note = "Patrouille envoyée vers Assamaka / دورية في الطريق"
    r = agents["LBY"].cli("ack", smug, "--note", note, "--officer", "Lt. Salem Belkacem", net=net)
    t.eq(r.rc, 0, "ack at LBY exits 0")
    t.check(smug in r.out and "Lt. Salem Belkacem" in r.out, "ack prints the alert id and the officer", repr(r))

    def track():
        res = agents["NER"].cli("track", smug, "--json", net=net)
        return res, {j.get("node_id"): j.get("state") for j in res.json()}

    net.run_until(lambda: track()[1].get("LBY") == "acknowledged", t.t(10), step=0.1)
    res, states = track()
    t.eq(states.get("LBY"), "acknowledged", "track --json at NER: LBY acknowledged")
    t.check(all(states.get(n) == "delivered" for n in ("DZA", "TCD", "MLI", "IOM-ROMENA")),
            "track --json at NER: DZA, TCD, MLI, IOM-ROMENA delivered", str(states))
    t.eq(sorted(states), sorted(smug_expect), "track --json at NER: one line per recipient")
    t.eq(res.rc, 0, "track exits 0 (delivered to every recipient)")
    txt = agents["NER"].cli("track", smug, net=net)
    t.check(any(line.startswith("LBY") and "acknowledged" in line for line in txt.lines()) and
            "acknowledged 1" in txt.out, "track (text) at NER: the LBY line says acknowledged", repr(txt))

    # The ACK itself reaches NER's watch: an ack of the alert, signed by LBY, with the officer and the note.
    wn = watches["NER"]
    wn.wait(lambda: any(e.get("msg_type") == "ack" for e in wn.snapshot()), t.t(10))
    acks = [e for e in wn.snapshot() if e.get("msg_type") == "ack"]
    t.check(len(acks) == 1 and acks[0].get("origin") == "LBY" and acks[0].get("references") == [smug] and
            acks[0].get("author") == "Lt. Salem Belkacem" and acks[0].get("note") == note and
            acks[0].get("rule") == "ack", "watch --json at NER: the ACK from LBY (references, officer, note)",
            str(acks))
    lby_hist = next((e for e in agents["LBY"].history() if e.get("id") == smug), {})
    t.check(lby_hist.get("acknowledged") is True and lby_hist.get("acknowledged_by") == "Lt. Salem Belkacem",
            "history --json at LBY: acknowledged by the officer", str(lby_hist))
    dza_hist = next((e for e in agents["DZA"].history() if e.get("id") == smug), {})
    t.check(dza_hist.get("acknowledged") is False, "history --json at DZA: still not acknowledged there")

    # ---- 5. status --json ---------------------------------------------------------------------------------------
    for nid, a in agents.items():
        s = a.wait_status(lambda s: s.get("outbox_depth") == 0, t.t(5))
        t.check(s is not None and s.get("node_id") == nid and s.get("link_up") is True and
                s.get("outbox_depth") == 0 and s.get("quarantined") == 0 and
                s.get("rules_version") == broker.rules_version(),
                f"status --json at {nid}: node_id, link_up true, outbox_depth 0, quarantined 0, rules_version",
                str(s))
    s = agents["DZA"].status() or {}
    t.check(s.get("inbox_count") == 2 and s.get("unacknowledged") == 2 and s.get("through_seq", 0) >= 2 and
            s.get("last_delivery"), "status --json at DZA: 2 in the inbox, 2 unacknowledged, a delivery cursor",
            str(s))
    s = agents["WHO-AFRO"].status() or {}
    t.eq(s.get("inbox_count"), 1, "status --json at WHO-AFRO: 1 alert in the inbox (the health alert only)")
    r = agents["NER"].cli("status", net=net)
    t.check(r.rc == 0 and "UP" in r.out, "status (text) at NER exits 0 and says UP", repr(r))

    for nid, w in watches.items():
        t.check(w.alive() and not w.bad, f"xba watch --json at {nid}: still running, every line a JSON object",
                str(w.bad[:3]) + w.stderr()[-300:])
        ids = w.ids()
        t.check(len(ids) == len(set(ids)), f"xba watch --json at {nid}: no alert shown twice", str(ids))
    for nid, a in agents.items():
        t.check(not a.events("alert.quarantined"), f"agent {nid}: nothing quarantined")
    net.check_protocol()


if __name__ == "__main__":
    x.main(main)
