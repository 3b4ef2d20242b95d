"""test_agent_suspend.py — the working group suspends two members and reinstates one, by the procedure of
docs/operations.md section 4 ("Suspending a member"): the node stays in region.yaml, its signing keys get a
`valid_until` of now, and two deny rules naming it go first in rules.yaml.  Taking it out of region.yaml instead
loses a cancel (the cancel's routing cannot name a node outside the directory) and quarantines for good what it
signed before (its key leaves with it); this test shows the procedure keeps both.

Real xba-broker, real xba-agents NER, LBY, SDN and TCD (the sahel region, crime to the origin's neighbours):

- SDN's link is down.  LBY's smuggling alert is queued for SDN; TCD's border incident is queued for SDN.
- The secretariat suspends SDN and TCD (broker and agents reloaded, SDN's copy installed while it is down).
- TCD's `xba send` is refused at once, KEY_NOT_VALID, naming the key's end; its `xba status` says CANNOT SEND;
  its `xba ack` of LBY's alert is refused at once as well (nothing queued, the alert stays unacknowledged).
- LBY cancels its alert: the cancel is routed to SDN (superseded:had-alert), the deny rule notwithstanding.
- NER's emergency broadcast and LBY's next alert are withheld from SDN and TCD by the deny rule's name.
- SDN's link comes back: it has LBY's alert WITHDRAWN (the cancel delivered), TCD's alert verified (in its
  history, nothing in quarantine), neither the broadcast nor LBY's next alert; its own `xba send` is refused.
- SDN is reinstated (deny rule narrowed to TCD, a new signing key from now on): LBY's next alert reaches SDN, and
  SDN sends again; TCD, still suspended, does not get it.
- Whoever holds TCD's key backdates an alert to before the key's end: the broker accepts it (the window is judged
  by the sent time the signer writes) and routes it to TCD's neighbours without the suspended-origins rule, to
  nobody with it.

usage: /usr/bin/python3 tests/e2e/test_agent_suspend.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

AGENTS = ["NER", "LBY", "SDN", "TCD"]


def deny_first(nodes, origins=True):
    """rules.yaml with the suspension rules first: suspended-members has no `when`, so it matches every alert,
    emergencies included; suspended-origins routes what they publish to nobody (with origins)."""
    names = ", ".join(nodes)
    text = ("# rules.yaml: suspended members first (docs/operations.md section 4)\nrules:\n"
            f"  - name: suspended-members\n    deny: [{names}]\n")
    if origins:
        text += f"  - name: suspended-origins\n    when: {{ origin: [{names}] }}\n    deny: [members, observers]\n"
    return text + x.NEIGHBOUR_RULES.split("rules:\n", 1)[1]


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
    agents = x.start_agents(t, region, broker, AGENTS)
    ner, lby, sdn, tcd = (agents[n] for n in AGENTS)

    def track(who, alert_id):
        """{node: (state, rule)} from `xba track --json` at who."""
        r = who.cli("track", alert_id, "--json")
        return {j.get("node_id"): (j.get("state"), j.get("rule") or j.get("reason")) for j in r.json()
                if j.get("node_id")}

    def send(who, *args):
        return who.cli("send", "--lang", "fr", *args)

    def reload_all(running, what):
        """The secretariat installs region.yaml (and rules) at the broker, then at every agent, and reloads."""
        mark = broker.log_size()
        broker.write_region()
        broker.hup()
        t.check(broker.wait_log(r"event=rules\.reloaded", t.t(10), since=mark) is not None,
                f"broker reloads ({what})", broker.log_text(mark)[-800:])
        for a in agents.values():
            a.write_region()
            if a in running:
                m = a.log_size()
                a.hup()
                t.check(a.wait_log(r"event=region\.reloaded", t.t(10), since=m) is not None,
                        f"agent {a.id} reloads ({what})", a.log_text(m)[-800:])

    # ---- before: SDN's link is down, two alerts wait for it ---------------------------------------------------
    sdn.stop()
    r = send(lby, "--category", "smuggling", "--severity", "severe", "--headline", "Convoi vers le Soudan")
    a_id = x.sent_id(r)
    t.check(r.rc == 0 and track(lby, a_id).get("SDN", ("",))[0] == "queued", "LBY's alert is queued for SDN",
            repr(r))
    r = send(tcd, "--category", "border-incident", "--severity", "extreme", "--headline", "Groupe arme vers Adre")
    b_id = x.sent_id(r)
    t.check(r.rc == 0 and track(tcd, b_id).get("SDN", ("",))[0] == "queued", "TCD's alert is queued for SDN",
            repr(r))

    # ---- the suspension: both stay in region.yaml; their keys end now; a deny rule names them -----------------
    # valid_until is the next whole second: never before what they already sent (an end before an alert's sent
    # time would refuse that alert everywhere, the very loss the procedure avoids).
    end = x.now_ms() // 1000 * 1000 + 1000
    for nid in ("SDN", "TCD"):
        for k in region.nodes[nid].signing_keys:
            k.valid_until = x.rfc3339(end)
    region.write()
    broker.write_rules(deny_first(["SDN", "TCD"]))
    reload_all([ner, lby, tcd], "suspension")
    time.sleep(max(0, end - x.now_ms()) / 1000 + 0.2)

    r = send(tcd, "--category", "smuggling", "--severity", "severe", "--headline", "Passeurs vers Faya")
    t.log(f"TCD's xba send while suspended: {(r.out + r.err).strip()}")
    t.check(r.rc != 0 and "KEY_NOT_VALID" in r.out + r.err and "expired at" in r.out + r.err,
            "TCD's xba send is refused at once: KEY_NOT_VALID, the key's end named", repr(r))
    r = tcd.cli("status")
    t.log(f"TCD's xba status while suspended: {r.out.strip()}")
    t.check(r.rc == 1 and "CANNOT SEND" in r.out and "suspended this country" in r.out,
            "TCD's xba status: CANNOT SEND, naming a suspension as one cause", r.out + r.err)
    # An acknowledgement is refused at once too, not "queued to its origin" and then refused by the broker with
    # the officer gone: LBY would never hear of it.
    outgoing_before = len(tcd.history("--outgoing", "--limit", "1000"))
    r = tcd.cli("ack", a_id, "--officer", "Adj. Mahamat Idriss", "--note", "patrouille envoyée")
    t.log(f"TCD's xba ack while suspended: {(r.out + r.err).strip()}")
    t.check(r.rc == 1 and "NOT ACKNOWLEDGED" in r.err and "KEY_NOT_VALID" in r.err and "nothing was sent to LBY"
            in r.err and "queued to its origin" not in r.out, "TCD's xba ack is refused at once: KEY_NOT_VALID, "
            "exit 1, nothing sent to LBY", repr(r))
    got = [e for e in tcd.history("--id", a_id) if not e.get("outgoing")]
    t.check(got and got[0].get("acknowledged") is False and
            len(tcd.history("--outgoing", "--limit", "1000")) == outgoing_before,
            "... the alert stays unacknowledged at TCD, and nothing was queued", str(got))

    # ---- LBY withdraws the alert SDN had: the cancel still reaches SDN ---------------------------------------
    r = lby.cli("send", "--cancel", a_id, "--note", "caravane commerciale, pas un convoi")
    c_id = x.sent_id(r)
    t.check(r.rc == 0 and "not sent to SDN" not in r.out + r.err, "LBY's cancel is accepted, SDN not warned of",
            repr(r))
    routed = track(lby, c_id)
    t.check(routed.get("SDN", ("",))[0] == "queued" and routed.get("TCD", ("",))[0] != "withheld",
            "the cancel is queued for SDN and routed to TCD, which had the alert, although the deny rule names them",
            routed)

    # ---- nothing new reaches a suspended node, an emergency included -----------------------------------------
    r = ner.cli("broadcast", "--category", "border-incident", "--headline", "Urgence: attaque a Diffa")
    e_id = x.sent_id(r)
    routed = track(ner, e_id)
    t.check(r.rc == 0 and routed.get("SDN", ("",))[1] == "suspended-members" and
            routed.get("TCD", ("",))[1] == "suspended-members" and routed.get("LBY", ("",))[0] != "withheld",
            "NER's emergency broadcast: SDN and TCD withheld by suspended-members, LBY not", repr(r) + str(routed))
    r = send(lby, "--category", "smuggling", "--severity", "severe", "--headline", "Second convoi")
    d_id = x.sent_id(r)
    routed = track(lby, d_id)
    t.check(r.rc == 0 and routed.get("SDN", ("",))[1] == "suspended-members" and
            routed.get("TCD", ("",))[1] == "suspended-members",
            "LBY's next alert: withheld from SDN and TCD by suspended-members", repr(r) + str(routed))

    # ---- SDN's link comes back while suspended ---------------------------------------------------------------
    sdn.start(link=True)
    got = {}
    ok = False
    for _ in range(100):
        got = {h.get("id"): h for h in sdn.history()}
        if a_id in got and b_id in got and c_id in got:
            ok = True
            break
        time.sleep(0.1)
    t.check(ok, "SDN gets LBY's alert, its cancel and TCD's alert once its link is back", sorted(got))
    t.eq(got.get(a_id, {}).get("superseded"), "withdrawn", "SDN shows LBY's alert WITHDRAWN (the cancel delivered)")
    r = sdn.cli("history", "--id", a_id)
    t.check("WITHDRAWN" in r.out and "NEEDS ACKNOWLEDGEMENT" not in r.out,
            "xba history --id at SDN: WITHDRAWN, not waiting for an acknowledgement", r.out)
    t.check(b_id in got, "SDN has TCD's earlier alert, verified (its key's end is after the alert was sent)")
    t.eq(sdn.cli("quarantine", "--json").json(), [], "SDN's quarantine is empty")
    t.check(e_id not in got and d_id not in got, "SDN has neither the broadcast nor LBY's later alert", sorted(got))
    r = send(sdn, "--category", "smuggling", "--severity", "severe", "--headline", "Alerte du Soudan suspendu")
    t.check(r.rc != 0 and "KEY_NOT_VALID" in r.out + r.err, "SDN's xba send is refused while suspended", repr(r))
    r = sdn.cli("status")
    t.check(r.rc == 1 and "CANNOT SEND" in r.out, "SDN's xba status: CANNOT SEND", r.out + r.err)

    # ---- SDN reinstated: deny rule narrowed to TCD, a new signing key from now on -----------------------------
    region.add_key("SDN", valid_from=x.rfc3339(x.now_ms() - 1000))
    region.write()
    broker.write_rules(deny_first(["TCD"]))
    reload_all([ner, lby, tcd], "SDN reinstated")
    sdn.stop()
    sdn.signing_key = region.nodes["SDN"].signing_keys[-1].pem_path
    sdn.write_config()
    sdn.start(link=True)
    r = send(lby, "--category", "smuggling", "--severity", "severe", "--headline", "Troisieme convoi")
    f_id = x.sent_id(r)
    ok = False
    for _ in range(100):
        if any(h.get("id") == f_id for h in sdn.history()):
            ok = True
            break
        time.sleep(0.1)
    t.check(r.rc == 0 and ok, "after reinstatement LBY's new alert reaches SDN", repr(r))
    t.eq(track(lby, f_id).get("TCD", ("",))[1], "suspended-members", "... and not TCD, still suspended")
    r = send(sdn, "--category", "smuggling", "--severity", "severe", "--headline", "Le Soudan de retour")
    t.check(r.rc == 0 and x.accepted_recipients(r) is not None, "SDN sends again with its new key", repr(r))
    t.eq(sdn.cli("quarantine", "--json").json(), [], "SDN's quarantine is still empty after the reinstatement")

    # ---- TCD's key holder backdates an alert to before its key's end ----------------------------------------
    # The key window is checked against the sent time the signer wrote, so the broker accepts it; the
    # suspended-origins rule is what keeps it from everyone (a revoked_at would refuse it, and with it every alert
    # TCD signed before, still queued for a country offline).
    tcd.stop()
    net = x.Net(t)
    forger = net.node(region, "TCD", broker)
    net.connect_all()
    for origins, want in ((False, "delivered to LBY and NER"), (True, "routed to nobody")):
        broker.write_rules(deny_first(["TCD"], origins=origins))
        mark = broker.log_size()
        broker.hup()
        broker.wait_log(r"event=rules\.reloaded", t.t(10), since=mark)
        forged = x.alert("TCD", category=x.C.BORDER_INCIDENT, sent_ms=end - 500, headline="Antidatee")
        ack = forger.publish_wait(region.seal(forged))
        got_n = ack.recipients if ack is not None else None
        t.check(ack is not None and x.code_name(ack.result) == "OK" and (got_n == 0) == origins,
                f"an alert TCD backdates to before its key's end is accepted, {want}"
                f"{'' if origins else ' (the gap the suspended-origins rule closes)'}",
                f"{x.code_name(ack.result) if ack else None} recipients={got_n}")


if __name__ == "__main__":
    x.main(main, deadline_s=150)
