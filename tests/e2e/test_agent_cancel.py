"""test_agent_cancel.py — an officer updates and withdraws an alert their country sent, and it reaches the same
nodes as the alert; no one else's alert can be updated or withdrawn.

Real xba-broker, real xba-agents NER (may_broadcast), LBY and TCD, and DZA as a Python node (docs/protocol.md).
NER sends a smuggling alert to its neighbours.  `xba send --update ID` with only a new headline and a parameter
takes category, severity, TLP, incident and areas from the alert, so it is routed to the same three nodes; the
receivers see msg_type update, the reference, the copied fields and, in text, "UPDATE of ID (replaces it)".
`xba send --cancel ID --note REASON` needs no headline and also reaches the same nodes, shown as "CANCEL of ID";
the receivers' agents then show the alert itself as REPLACED, then WITHDRAWN, no longer waiting for an
acknowledgement.
`xba track` of each lists exactly the alert's recipients.  The cancel of an updated alert names every version, so
the update is withdrawn with it; a withdrawn alert cannot be updated or withdrawn again, an update must name the
latest version, and the cancel of an update also names the versions before it.  An emergency broadcast withdrawn with `xba send
--cancel` stays an emergency, so the cancel reaches every node like the broadcast did, and `xba watch --remind 1`,
which recalled the unacknowledged broadcast every second, says it was withdrawn and recalls it no more.  Refused before anything is
queued: LBY cancelling NER's alert (its origin named), an id the agent does not hold, both flags together, and an
update without a headline.  Refused by the broker: a cancel from DZA (a raw client) naming NER's alert
(INVALID_ALERT, field references), while DZA's update of its own alert is accepted.

usage: /usr/bin/python3 tests/e2e/test_agent_cancel.py BUILD_DIR SOURCE_ROOT
"""
import json
import os
import sys
import time
import uuid

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

AGENTS = ["NER", "LBY", "TCD"]
HEALTH_TO_WHO_RULES = x.NEIGHBOUR_RULES + """\
  - name: health-to-who
    when: { category: [health] }
    to: [neighbours, WHO-AFRO]
"""
DENY_WHO_AMBER_HEALTH = """\
  - name: who-no-amber-health
    when: { category: [health], tlp: [amber, amber+strict, red] }
    deny: [WHO-AFRO]
"""


def main(t):
    region = x.region_of_five(t, "cancel-e2e")
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
    agents = x.start_agents(t, region, broker, AGENTS)
    net = x.Net(t)
    dza = net.node(region, "DZA", broker)
    net.connect_all()
    watches = {nid: agents[nid].watch() for nid in ("LBY", "TCD")}
    for nid in watches:
        agents[nid].wait_log(r"event=local\.subscribed", t.t(10))
    ner = agents["NER"]

    def track(alert_id):
        r = ner.cli("track", alert_id, "--json", net=net)
        return {j["node_id"]: j["state"] for j in r.json() if j.get("state") != "withheld"}

    def reached(alert_id):
        return net.run_until(lambda: watches["LBY"].has(alert_id) and watches["TCD"].has(alert_id) and
                             dza.got(alert_id), t.t(10))

    # ---- the alert ----------------------------------------------------------------------------------------------
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--tlp", "amber", "--incident",
                "NE-AGZ-2026-201", "--lang", "fr", "--headline", "Convoi de passeurs vers Toummo",
                "--area", "Tummo crossing", "--param", "people_count=60", net=net)
    alert_id = x.sent_id(r)
    t.eq((r.rc, x.accepted_recipients(r)), (0, 3), "NER's alert: accepted for its three neighbours")
    t.check(reached(alert_id), "LBY, TCD and DZA receive it")
    recipients = track(alert_id)
    t.eq(sorted(recipients), ["DZA", "LBY", "TCD"], "xba track: routed to DZA, LBY, TCD")

    # ---- the update: only what changed is given -----------------------------------------------------------------
    r = ner.cli("send", "--update", alert_id, "--lang", "fr", "--headline", "Convoi de passeurs : 80 personnes",
                "--param", "people_count=80", net=net)
    update_id = x.sent_id(r)
    t.eq((r.rc, x.accepted_recipients(r)), (0, 3), "xba send --update: accepted for the same three nodes",
         )
    t.check("note:" not in r.err, "no note: the update is in the alert's one language", repr(r.err))
    t.check(reached(update_id), "the update reaches LBY, TCD and DZA")
    t.eq(sorted(track(update_id)), sorted(recipients), "xba track of the update: exactly the alert's recipients")
    shown = (watches["LBY"].by_id(update_id) or [{}])[0]
    t.check(shown.get("msg_type") == "update" and shown.get("references") == [alert_id] and
            shown.get("category") == "smuggling" and shown.get("severity") == "severe" and shown.get("tlp") == "amber"
            and shown.get("incident") == "NE-AGZ-2026-201" and
            shown.get("areas") == ["Tummo crossing"],
            "LBY sees an update referring to the alert, with its category, severity, TLP, incident and area",
            str(shown)[:600])
    entry = dza.inbox.get(update_id)
    got = entry.alert if entry is not None else None
    t.check(got is not None and got.msg_type == x.C.UPDATE and list(got.references) == [alert_id] and
            [(p.name, p.value) for p in got.parameters] == [("people_count", "80")],
            "DZA's copy, verified: msg_type UPDATE, references the alert, the new parameter only", str(got)[:400])
    r = agents["LBY"].cli("history", "--id", update_id, "--lang", "fr", net=net)
    t.check(f"UPDATE of {alert_id} (replaces it)" in r.out and "80 personnes" in r.out,
            "xba history at LBY (text): 'UPDATE of ID (replaces it)' and the new headline", r.out)
    r = agents["LBY"].cli("history", "--id", alert_id, net=net)
    t.check(f"REPLACED by a newer version from its sender: acknowledge that one (xba history --id {update_id})"
            in r.out and "NEEDS ACKNOWLEDGEMENT" not in r.out,
            "... and the alert itself: REPLACED by the update, which is what waits for an acknowledgement now", r.out)
    pending = [e.get("id") for e in agents["LBY"].history("--unacknowledged")]
    t.check(update_id in pending and alert_id not in pending,
            "history --unacknowledged at LBY: the update, not the version it replaced (one message, one "
            "acknowledgement)", str(pending))
    status = agents["LBY"].cli("status", "--json", net=net)
    t.eq(json.loads(status.out or "{}").get("unacknowledged"), len(pending),
         "xba status counts the same: the replaced version is not waiting")

    # ---- two officers at once: a cancel (or update) that looked before the update was queued -------------------
    # It names the alert only, as `xba send --cancel` would have if it read the history just before the other
    # officer's update went in.  Accepted, it would withdraw the alert but leave the update live everywhere, and
    # the update could then never be withdrawn (the broker refuses a cancel of what was withdrawn).  The agent,
    # which takes submissions one at a time, refuses it: nothing queued, and the command run again names both.
    before = len(ner.history("--outgoing", "--limit", "1000"))
    for kind, extra in (("cancel", "note: Fausse alerte\n"),
                        ("update", "category: smuggling\nseverity: severe\nurgency: immediate\ncertainty: observed\n"
                                   "info:\n  - language: fr\n"
                                   "    headline: \"Convoi de passeurs : 90 personnes\"\n")):
        stale = os.path.join(t.dir, f"stale-{kind}.yaml")
        with open(stale, "w") as f:
            f.write(f"msg_type: {kind}\nreferences: [{alert_id}]\ntlp: amber\n{extra}")
        r = ner.cli("send", stale, net=net)
        t.check(r.rc == 2 and "INVALID_ALERT" in r.err and f"{alert_id} was replaced from here by {update_id}" in
                r.err and not x.sent_id(r), f"a stale {kind} naming the replaced alert only: refused at once, "
                "naming the update that replaced it", repr(r))
    t.eq(len(ner.history("--outgoing", "--limit", "1000")), before, "... nothing was queued by either")
    t.check(not dza.inbox.get(update_id) or not any(
        e.alert.msg_type == x.C.CANCEL for e in dza.inbox.values() if list(e.alert.references) == [alert_id]),
        "... and DZA got no cancel of the alert alone")

    # ---- the cancel: a reason, no headline ----------------------------------------------------------------------
    r = ner.cli("send", "--cancel", alert_id, "--note", "Fausse alerte : véhicules de l'armée", net=net)
    cancel_id = x.sent_id(r)
    t.eq((r.rc, x.accepted_recipients(r)), (0, 3), "xba send --cancel without --headline: accepted for the same "
         "three nodes")
    t.check(reached(cancel_id), "the cancel reaches LBY, TCD and DZA")
    t.eq(sorted(track(cancel_id)), sorted(recipients), "xba track of the cancel: exactly the alert's recipients")
    shown = (watches["TCD"].by_id(cancel_id) or [{}])[0]
    t.check(shown.get("msg_type") == "cancel" and shown.get("references") == [alert_id, update_id] and
            shown.get("note") == "Fausse alerte : véhicules de l'armée" and not shown.get("info"),
            "TCD sees a cancel referring to the alert and to its update (every version), with the reason as its "
            "note and no text", str(shown)[:500])
    r = agents["TCD"].cli("history", "--id", cancel_id, net=net)
    t.check(f"CANCEL of {alert_id}, {update_id} (withdrawn by its sender)" in r.out and "note: Fausse alerte" in r.out,
            "xba history at TCD (text): 'CANCEL of ID (withdrawn by its sender)' and the note", r.out)
    r = agents["TCD"].cli("history", "--id", alert_id, net=net)
    t.check(f"WITHDRAWN by its sender (xba history --id {cancel_id})" in r.out and
            "NEEDS ACKNOWLEDGEMENT" not in r.out,
            "... and the alert itself: WITHDRAWN, no longer waiting for an acknowledgement", r.out)
    got = agents["TCD"].history("--id", alert_id)
    t.check(len(got) == 1 and got[0].get("superseded") == "withdrawn" and got[0].get("superseded_by") == cancel_id,
            "history --json: superseded withdrawn, superseded_by the cancel", str(got)[:300])
    got = agents["TCD"].history("--id", update_id)
    t.check(len(got) == 1 and got[0].get("superseded") == "withdrawn" and got[0].get("superseded_by") == cancel_id,
            "... and the update is withdrawn with it: no version of the alert stays live", str(got)[:300])
    pending = [e.get("id") for e in agents["TCD"].history("--unacknowledged")]
    t.check(alert_id not in pending and update_id not in pending and cancel_id in pending,
            "history --unacknowledged at TCD: neither withdrawn version; the cancel, which officers acknowledge "
            "like any message", str(pending))
    r = ner.cli("send", "--update", alert_id, "--lang", "fr", "--headline", "Encore un convoi", net=net)
    t.check(r.rc == 2 and f"withdrawn already, by {cancel_id}" in r.err and "nothing was queued" in r.err,
            "an update of the withdrawn alert is refused, naming the cancel (it would bring the alert back)", repr(r))
    r = ner.cli("send", "--cancel", update_id, net=net)
    t.check(r.rc == 2 and "withdrawn already" in r.err, "a second cancel (of its update) is refused too", repr(r))

    # ---- a cancel of the latest version withdraws the earlier ones --------------------------------------------------
    r = ner.cli("send", "--category", "trafficking", "--severity", "severe", "--lang", "fr", "--headline",
                "Réseau de traite vers Agadez", "--lang", "ar", "--headline", "شبكة اتجار نحو أغاديس",
                "--lang", "en", "--headline", "Trafficking network towards Agadez", net=net)
    w1 = x.sent_id(r)
    r = ner.cli("send", "--update", w1, "--lang", "fr", "--headline", "Réseau de traite : 12 victimes", net=net)
    w2 = x.sent_id(r)
    t.check(r.rc == 0 and reached(w2), "an alert and its update reach DZA, LBY and TCD")
    t.check("note: the alert was also in ar, en; this update is not" in r.err and "--lang ar --headline" in r.err,
            "an update in French of an alert in French, Arabic and English: a note names the languages it drops",
            repr(r.err))
    r = ner.cli("send", "--update", w1, "--lang", "fr", "--headline", "Réseau de traite : 14 victimes", net=net)
    t.check(r.rc == 2 and f"replaced by a later version, {w2}" in r.err,
            "an update of a version already replaced is refused, naming the latest", repr(r))
    r = ner.cli("send", "--cancel", w2, "--note", "erreur d'identification", net=net)
    w3 = x.sent_id(r)
    t.check(r.rc == 0 and reached(w3), "the cancel of the update reaches DZA, LBY and TCD")
    shown = (watches["LBY"].by_id(w3) or [{}])[0]
    t.eq(shown.get("references"), [w2, w1], "it names the update and the alert it replaced")
    got = agents["LBY"].history("--id", w1)
    t.check(len(got) == 1 and got[0].get("superseded") == "withdrawn",
            "LBY shows the first version withdrawn too, not merely replaced", str(got)[:300])

    # ---- the rules change between an alert and its cancel ---------------------------------------------------------
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "fr", "--headline",
                "Convoi signalé près d'Assamaka", net=net)
    before_change = x.sent_id(r)
    t.check(r.rc == 0 and reached(before_change), "a second alert from NER reaches DZA, LBY and TCD")
    mark = broker.log_size()
    broker.write_rules(x.CHAD_ONLY_RULES)
    broker.hup()
    t.check(broker.wait_log(r"event=rules\.reloaded", t.t(10), since=mark, net=net) is not None,
            "the secretariat reloads rules that send crime to TCD only")
    r = ner.cli("send", "--cancel", before_change, "--note", "withdrawn after the rules changed", net=net)
    after_change = x.sent_id(r)
    t.eq((r.rc, x.accepted_recipients(r)), (0, 3), "its cancel is still accepted for three nodes")
    rules_of = {j["node_id"]: j["rule"] for j in ner.cli("track", after_change, "--json", net=net).json()
                if j.get("state") != "withheld"}
    t.eq(rules_of, {"TCD": "crime-to-chad", "DZA": "superseded:had-alert", "LBY": "superseded:had-alert"},
         "xba track: TCD by today's rule, DZA and LBY because they had the alert ('superseded:had-alert')")
    t.check(reached(after_change), "the cancel reaches DZA, LBY and TCD")
    rc, out = x.audit_verify(t, broker.journal_path, "--region", region.path, "--rules", broker.rules_path)
    t.check(rc == 0 and "0 ROUTED OTHERWISE" in out and "NOTHING CHECKED" not in out,
            "xba audit verify --rules (today's rules) finds the cancel routed as the rules and the journal say", out)

    # ---- an emergency broadcast withdrawn -----------------------------------------------------------------------
    # LBY's duty officer watches in text, recalled every second (--remind 1) of what nobody acknowledged.
    recall = agents["LBY"].watch("--remind", "1", json_output=False)
    agents["LBY"].wait_log(r"event=local\.subscribed.*subscribers=2", t.t(10))
    r = ner.cli("broadcast", "--headline", "Tempête de sable : toutes les patrouilles rentrent", net=net)
    emergency = x.sent_id(r)
    t.eq(r.rc, 0, "NER broadcasts an emergency")
    every = sorted(track(emergency))
    t.eq(every, ["DZA", "LBY", "TCD", "WHO-AFRO"], "the broadcast is routed to every other node (not the admin)")
    reminder = f"UNACKNOWLEDGED EMERGENCY from NER: Tempête de sable : toutes les patrouilles rentrent  (xba ack " \
               f"{emergency})"
    t.check(net.run_until(lambda: recall.text().count(reminder) >= 2, t.t(10)),
            "xba watch --remind 1 at LBY recalls the unacknowledged broadcast, again and again", recall.text()[-400:])
    r = ner.cli("send", "--cancel", emergency, "--note", "sent by mistake", net=net)
    withdrawn = x.sent_id(r)
    t.eq(r.rc, 0, "xba send --cancel of the broadcast: accepted")
    t.eq(sorted(track(withdrawn)), every, "... and, an emergency like the broadcast, routed to every node too")
    t.check(net.run_until(lambda: watches["LBY"].has(withdrawn), t.t(10)) and
            (watches["LBY"].by_id(withdrawn) or [{}])[0].get("emergency") is True,
            "LBY sees the cancel as an emergency")
    gone = f"withdrawn by its sender: {emergency} (NER) is no longer recalled"
    t.check(net.run_until(lambda: gone in recall.text(), t.t(10)), "the text watch says the broadcast is withdrawn "
            "and no longer recalled", recall.text()[-600:])
    after = recall.text().index(gone) if gone in recall.text() else 0
    net.run_until(lambda: False, t.t(2.5))
    t.check(reminder not in recall.text()[after:], "... and recalls it no more (2.5 s at --remind 1)",
            recall.text()[after:][-600:])

    r = ner.cli("broadcast", "--cancel", emergency, "--note", "sent by mistake (repeated)", net=net)
    t.check(r.rc == 2 and f"withdrawn already, by {withdrawn}" in r.err,
            "withdrawing it a second time is refused, naming the first cancel", repr(r))

    # `xba broadcast --cancel` does the same as a broadcast (no --headline needed).
    r = ner.cli("broadcast", "--headline", "Exercice de diffusion envoyé par erreur", net=net)
    emergency2 = x.sent_id(r)
    r = ner.cli("broadcast", "--cancel", emergency2, "--note", "sent by mistake (again)", net=net)
    again = x.sent_id(r)
    t.eq(r.rc, 0, "xba broadcast --cancel of another broadcast: accepted")
    t.check(net.run_until(lambda: watches["TCD"].has(again), t.t(10)), "TCD receives it")
    shown = (watches["TCD"].by_id(again) or [{}])[0]
    t.check(shown.get("msg_type") == "cancel" and shown.get("references") == [emergency2] and
            shown.get("emergency") is True and shown.get("note") == "sent by mistake (again)",
            "... an emergency cancel of the broadcast, with its note", str(shown)[:400])

    # ---- an observer that had the alert hears it withdrawn -------------------------------------------------------
    # A GREEN health alert reaches WHO-AFRO; its update raised to AMBER+STRICT does not (members only, as the TLP
    # says).  The cancel must still reach WHO-AFRO, or it keeps the alert live for good: without --tlp it goes at
    # the widest TLP of the versions, and says so.  Then a deny rule added after WHO-AFRO had an alert does not
    # keep its cancel away (it still keeps an update away: that is new information).
    who = net.node(region, "WHO-AFRO", broker)
    net.connect_all([who])
    mark = broker.log_size()
    broker.write_rules(HEALTH_TO_WHO_RULES)
    broker.hup()
    broker.wait_log(r"event=rules\.reloaded", t.t(10), since=mark, net=net)
    r = ner.cli("send", "--category", "health", "--severity", "severe", "--tlp", "green", "--lang", "fr",
                "--headline", "Cas de choléra à Agadez", net=net)
    green = x.sent_id(r)
    t.check(r.rc == 0 and net.run_until(lambda: who.got(green), t.t(10)), "a GREEN health alert reaches WHO-AFRO")
    r = ner.cli("send", "--update", green, "--tlp", "amber+strict", "--lang", "fr", "--headline",
                "Cas de choléra à Agadez : 3 décès", net=net)
    strict = x.sent_id(r)
    withheld = {j["node_id"]: j.get("reason") or j.get("rule") for j in ner.cli("track", strict, "--json",
                                                                            net=net).json()
                if j.get("state") == "withheld"}
    t.check(r.rc == 0 and "WHO-AFRO" in withheld, "its update at AMBER+STRICT is withheld from the observer",
            str(withheld))
    t.check("WARNING: not sent to WHO-AFRO (withheld by tlp:amber+strict): it has an earlier version and keeps it"
            in r.out, "... and xba send --update says so at once, not only xba track", r.out)
    # A node withheld every version never had the alert: nothing to warn about (before, every withheld node was
    # named "if it had the alert", the ones that never had it included).
    r = ner.cli("send", "--category", "health", "--severity", "severe", "--tlp", "amber+strict", "--lang", "fr",
                "--headline", "Rougeole à Diffa", net=net)
    never = x.sent_id(r)
    r = ner.cli("send", "--update", never, "--lang", "fr", "--headline", "Rougeole à Diffa : 12 cas", "--json",
                net=net)
    accepted = [j for j in r.json() if j.get("state") == "accepted"]
    t.check(accepted and accepted[0].get("withheld") == [],
            "an update of an AMBER+STRICT alert: WHO-AFRO, withheld from both versions, is not named", r.out)
    r = ner.cli("send", "--cancel", strict, "--note", "erreur de laboratoire", net=net)
    withdrawn_green = x.sent_id(r)
    t.check(r.rc == 0 and "the cancel goes at TLP green, the widest of the alert's versions (the latest is "
            "amber+strict)" in r.err, "xba send --cancel says the cancel goes at the widest TLP of the versions",
            repr(r.err))
    t.check(net.run_until(lambda: who.got(withdrawn_green), t.t(10)),
            "... and WHO-AFRO, which had the GREEN version, receives the cancel")
    got = who.inbox.get(withdrawn_green)
    t.check(got is not None and got.alert.tlp == x.C.GREEN and list(got.alert.references) == [strict, green],
            "a GREEN cancel naming both versions", str(got.alert if got else None)[:300])

    # An addressee the officer named but the TLP keeps out: said at once, in text and in JSON.
    r = ner.cli("send", "--category", "health", "--severity", "severe", "--tlp", "amber+strict", "--to",
                "TCD,WHO-AFRO", "--lang", "fr", "--headline", "Choléra : cas suspect à N'Guigmi", net=net)
    t.check(r.rc == 0 and "WARNING: WHO-AFRO, an addressee, will not receive it: withheld by tlp:amber+strict"
            in r.out, "xba send --to TCD,WHO-AFRO at AMBER+STRICT: accepted, with a warning naming WHO-AFRO", r.out)
    r = ner.cli("send", "--category", "health", "--severity", "severe", "--tlp", "amber+strict", "--to", "WHO-AFRO",
                "--lang", "fr", "--headline", "Choléra : pour l'OMS seule", net=net)
    t.check(r.rc == 1 and "0 recipients" in r.out and "no addressee is left" in r.out and
            "the rules chose nobody" not in r.out and "WHO-AFRO, an addressee, will not receive it" in r.out,
            "... --to WHO-AFRO alone: 0 recipients, said as no addressee left (not 'the rules chose nobody')", r.out)
    r = ner.cli("send", "--category", "health", "--severity", "severe", "--tlp", "amber+strict", "--to",
                "TCD,WHO-AFRO", "--lang", "fr", "--headline", "Choléra : second cas à N'Guigmi", "--json", net=net)
    accepted = [j for j in r.json() if j.get("state") == "accepted"]
    t.check(accepted and accepted[0].get("withheld") == [{"node_id": "WHO-AFRO", "rule": "tlp:amber+strict",
                                                          "why": "addressee"}],
            "... and --json lists it under withheld", r.out)
    # An addressee that had the GREEN version, kept out of its AMBER+STRICT update: told as an addressee AND as
    # keeping the earlier version (which it goes on acting on), not only as an addressee that will not receive it.
    r = ner.cli("send", "--category", "health", "--severity", "severe", "--tlp", "green", "--to", "TCD,WHO-AFRO",
                "--lang", "fr", "--headline", "Choléra : troisième cas à N'Guigmi", net=net)
    third = x.sent_id(r)
    t.check(r.rc == 0 and net.run_until(lambda: who.got(third), t.t(10)), "a GREEN alert to TCD and WHO-AFRO")
    r = ner.cli("send", "--update", third, "--tlp", "amber+strict", "--lang", "fr", "--headline",
                "Choléra : troisième cas confirmé", net=net)
    t.check(r.rc == 0 and "WARNING: not sent to WHO-AFRO, an addressee (withheld by tlp:amber+strict): it has an "
            "earlier version and keeps it" in r.out and "will not receive it" not in r.out,
            "its AMBER+STRICT update: WHO-AFRO named as an addressee that keeps the earlier version", r.out)
    # A RED update of a GREEN alert, then the cancel: at GREEN (every node that had the alert learns it), and
    # without the RED update's addressees, which would tell the others whom the RED version went to.
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--tlp", "green", "--lang", "fr",
                "--headline", "Convoi vers In Guezzam", net=net)
    base = x.sent_id(r)
    t.check(r.rc == 0 and reached(base), "a GREEN smuggling alert reaches DZA, LBY and TCD")
    r = ner.cli("send", "--update", base, "--tlp", "red", "--to", "LBY", "--lang", "fr", "--headline",
                "Convoi vers In Guezzam : source protégée", net=net)
    red = x.sent_id(r)
    t.check(r.rc == 0, "its update at TLP:RED to LBY alone", repr(r.err))
    r = ner.cli("send", "--cancel", red, "--note", "convoi intercepté", net=net)
    after_red = x.sent_id(r)
    t.check(r.rc == 0 and net.run_until(lambda: dza.got(after_red), t.t(10)),
            "the cancel reaches DZA, which had the GREEN version", repr(r.err))
    got = dza.inbox.get(after_red)
    t.check(got is not None and got.alert.tlp == x.C.GREEN and list(got.alert.addressees) == [],
            "... at TLP:GREEN, and without the RED update's addressee (LBY)", str(got.alert if got else None)[:300])
    # The same with --tlp green given by the officer: still not the RED update's addressees.
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--tlp", "green", "--lang", "fr",
                "--headline", "Second convoi vers In Guezzam", net=net)
    base2 = x.sent_id(r)
    net.run_until(lambda: dza.got(base2), t.t(10))
    r = ner.cli("send", "--update", base2, "--tlp", "red", "--to", "LBY", "--lang", "fr", "--headline",
                "Second convoi : source protégée", net=net)
    red2 = x.sent_id(r)
    r = ner.cli("send", "--cancel", red2, "--tlp", "green", "--note", "intercepté aussi", net=net)
    after_red2 = x.sent_id(r)
    t.check(r.rc == 0 and net.run_until(lambda: dza.got(after_red2), t.t(10)) and
            list(dza.inbox[after_red2].alert.addressees) == [],
            "... and with --tlp green given: the cancel carries no addressee of the RED update either",
            str(dza.inbox.get(after_red2).alert if dza.inbox.get(after_red2) else None)[:300])
    # A RED alert to DZA alone: a cancel given a wider --tlp would carry no version's addressees, and the rules
    # would send it, and its note, to LBY and TCD, which never had the alert.  Refused, nothing queued; without
    # --tlp it goes at RED to DZA alone.
    r = ner.cli("send", "--category", "trafficking", "--severity", "severe", "--tlp", "red", "--to", "DZA",
                "--lang", "fr", "--headline", "Réseau de traite : un informateur", net=net)
    red3 = x.sent_id(r)
    t.check(r.rc == 0 and net.run_until(lambda: dza.got(red3), t.t(10)), "a RED trafficking alert to DZA alone")
    queued_before = len(ner.history("--outgoing", "--limit", "1000"))
    r = ner.cli("send", "--cancel", red3, "--tlp", "amber", "--note", "informateur compromis", net=net)
    t.check(r.rc == 2 and "wider than every version of the alert" in r.err and "leave --tlp out" in r.err and
            not x.sent_id(r) and len(ner.history("--outgoing", "--limit", "1000")) == queued_before,
            "its cancel with --tlp amber: refused at once (exit 2), naming the widest TLP, nothing queued", repr(r))
    r = ner.cli("send", "--cancel", red3, "--note", "informateur compromis", net=net)
    cancel3 = x.sent_id(r)
    t.check(r.rc == 0 and net.run_until(lambda: dza.got(cancel3), t.t(10)) and
            list(dza.inbox[cancel3].alert.addressees) == ["DZA"] and dza.inbox[cancel3].alert.tlp == x.C.RED,
            "... without --tlp: at RED, addressed to DZA", repr(r.err))
    t.eq(track(cancel3), {"DZA": "delivered"}, "... and delivered to DZA alone (LBY and TCD withheld)")

    # GREEN to the neighbours, then RED to LBY alone, then AMBER again: the AMBER version names every version
    # before it, so DZA, which had only the GREEN one, has it REPLACED (before, it named only the RED version,
    # which DZA never had, and DZA held two current versions of one alert).
    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--tlp", "green", "--lang", "fr",
                "--headline", "Troisième convoi vers In Guezzam", net=net)
    v1 = x.sent_id(r)
    t.check(r.rc == 0 and net.run_until(lambda: dza.got(v1), t.t(10)), "v1: GREEN, reaches DZA")
    r = ner.cli("send", "--update", v1, "--tlp", "red", "--to", "LBY", "--lang", "fr", "--headline",
                "Troisième convoi : source protégée", net=net)
    v2 = x.sent_id(r)
    t.check(r.rc == 0 and v2, "v2: its update at RED to LBY alone", repr(r.err))
    r = ner.cli("send", "--update", v2, "--tlp", "amber", "--lang", "fr", "--headline",
                "Troisième convoi : 30 véhicules", net=net)
    v3 = x.sent_id(r)
    t.check(r.rc == 0 and net.run_until(lambda: dza.got(v3), t.t(10)), "v3: AMBER again, reaches DZA", repr(r.err))
    got = dza.inbox.get(v3)
    t.check(got is not None and list(got.alert.references) == [v2, v1],
            "... naming the latest version first and every one before it (v2, v1)",
            str(list(got.alert.references)) if got else "")
    shown = agents["LBY"].history("--id", v1)
    t.check(shown and shown[0].get("superseded_by") in (v2, v3), "LBY has v1 replaced", str(shown)[:300])

    # At most 32 versions make one alert: a cancel names them all, and one message names at most 32.
    r = ner.cli("send", "--category", "smuggling", "--severity", "minor", "--tlp", "amber", "--lang", "fr",
                "--headline", "Suivi du convoi", net=net)
    latest = x.sent_id(r)
    for k in range(31):
        time.sleep(0.21)   # NER's publish rate (5 a second)
        r = ner.cli("send", "--update", latest, "--lang", "fr", "--headline", f"Suivi du convoi, point {k + 1}",
                    net=net)
        if r.rc != 0 or not x.sent_id(r):
            break
        latest = x.sent_id(r)
    t.check(r.rc == 0, "31 updates of one alert: 32 versions, each accepted", repr(r.err))
    r = ner.cli("send", "--update", latest, "--lang", "fr", "--headline", "Suivi du convoi, point 32", net=net)
    t.check(r.rc == 2 and "has 32 versions, the most one cancel can name" in r.err and not x.sent_id(r),
            "the 32nd update is refused: the alert has 32 versions, the most one cancel can name", repr(r))
    r = ner.cli("send", "--cancel", latest, "--note", "fin du suivi", net=net)
    fin = x.sent_id(r)
    t.check(r.rc == 0 and net.run_until(lambda: dza.got(fin), t.t(10)) and
            len(dza.inbox[fin].alert.references) == 32, "... and the cancel names all 32 versions", repr(r.err))

    # An older release made chains longer, each update naming only the version before (written here as files).
    # Withdrawn by the first version's id, the cancel names the newest 32, the latest among them, and says the
    # oldest are not named (before, it named the oldest 32, the agent refused it as overtaken, for ever).
    r = ner.cli("send", "--category", "smuggling", "--severity", "minor", "--tlp", "amber", "--lang", "fr",
                "--headline", "Suivi ancien", net=net)
    first = prev = x.sent_id(r)
    for k in range(34):
        time.sleep(0.21)
        path = os.path.join(t.dir, "old-update.yaml")
        with open(path, "w") as f:
            f.write(f"msg_type: update\nreferences: [{prev}]\ncategory: smuggling\nseverity: minor\ntlp: amber\n"
                    f"urgency: expected\ncertainty: likely\ninfo:\n  - language: fr\n    headline: Suivi {k}\n")
        r = ner.cli("send", path, net=net)
        if r.rc != 0 or not x.sent_id(r):
            break
        prev = x.sent_id(r)
    t.check(r.rc == 0, "an older release's chain: 35 versions, each naming the one before", repr(r.err))
    r = ner.cli("send", "--update", first, "--lang", "fr", "--headline", "Suivi encore", net=net)
    t.check(r.rc == 2 and not x.sent_id(r), "its --update by the first id: refused, nothing queued", repr(r))
    time.sleep(0.21)
    r = ner.cli("send", "--cancel", first, "--note", "fin", net=net)
    old_fin = x.sent_id(r)
    t.check(r.rc == 0 and "more than 32 versions" in r.err and net.run_until(lambda: dza.got(old_fin), t.t(10))
            and prev in list(dza.inbox[old_fin].alert.references) and len(dza.inbox[old_fin].alert.references) == 32,
            "--cancel by the first id: accepted, naming the newest 32 (the latest among them), with a warning",
            repr(r))

    r = ner.cli("send", "--category", "health", "--severity", "severe", "--tlp", "amber", "--lang", "fr",
                "--headline", "Rougeole à Diffa", net=net)
    amber = x.sent_id(r)
    t.check(r.rc == 0 and net.run_until(lambda: who.got(amber), t.t(10)), "an AMBER health alert reaches WHO-AFRO")
    mark = broker.log_size()
    broker.write_rules(HEALTH_TO_WHO_RULES + DENY_WHO_AMBER_HEALTH)
    broker.hup()
    broker.wait_log(r"event=rules\.reloaded", t.t(10), since=mark, net=net)
    r = ner.cli("send", "--update", amber, "--lang", "fr", "--headline", "Rougeole à Diffa : 12 cas", net=net)
    amber2 = x.sent_id(r)
    denied = {j["node_id"]: j.get("reason") or j.get("rule") for j in ner.cli("track", amber2, "--json",
                                                                          net=net).json()
              if j.get("state") == "withheld"}
    t.check(r.rc == 0 and denied.get("WHO-AFRO") == "who-no-amber-health",
            "after a deny rule for WHO-AFRO, the alert's update is withheld from it by that rule", str(denied))
    r = ner.cli("send", "--cancel", amber2, "--note", "doublon", net=net)
    withdrawn_amber = x.sent_id(r)
    t.check(r.rc == 0 and net.run_until(lambda: who.got(withdrawn_amber), t.t(10)),
            "... but its cancel reaches WHO-AFRO, which had the alert: a deny rule does not keep a withdrawal away")

    # ---- refused before anything is queued ----------------------------------------------------------------------
    r = agents["LBY"].cli("send", "--cancel", alert_id, "--note", "not ours", net=net)
    t.check(r.rc == 2 and "came from NER" in r.err and "nothing was queued" in r.err,
            "LBY cancelling NER's alert: exit 2, naming its origin", repr(r))
    unknown = str(uuid.uuid4())
    r = ner.cli("send", "--cancel", unknown, net=net)
    t.check(r.rc == 2 and "holds no alert" in r.err, "a cancel of an id the agent does not hold: exit 2", repr(r))
    r = ner.cli("send", "--cancel", alert_id, "--update", alert_id, "--headline", "x", net=net)
    t.check(r.rc == 2 and "one --update or --cancel" in r.err, "--update and --cancel together: exit 2", repr(r))
    r = ner.cli("send", "--category", "smuggling", "--severity", "minor", "--lang", "fr", "--headline",
                "Véhicule suspect", net=net)
    live = x.sent_id(r)
    r = ner.cli("send", "--update", live, net=net)
    t.check(r.rc == 2 and "--headline is required" in r.err, "an update without a headline: exit 2", repr(r))
    r = ner.cli("send", "--cancel", "not-an-id", net=net)
    t.check(r.rc == 2 and "not an alert id" in r.err, "--cancel with something that is not an id: exit 2", repr(r))
    r = ner.cli("send", "--cancel", cancel_id, net=net)
    t.check(r.rc == 2 and "not an alert or an update" in r.err, "a cancel of a cancel: exit 2", repr(r))
    s = ner.status() or {}
    t.eq(s.get("outbox_depth"), 0, "nothing was queued at NER by the refused commands")

    # ---- the broker: only an alert's origin supersedes it -------------------------------------------------------
    forged = x.alert("DZA", msg_type=x.C.CANCEL, references=[alert_id], headline="DZA withdraws NER's alert")
    ack = dza.publish_wait(region.seal(forged))
    t.check(ack is not None and x.code_name(ack.result) == "INVALID_ALERT" and ack.field == "references" and
            "NER" not in ack.message and "not one of DZA's" in ack.message,
            "the broker refuses DZA's cancel of NER's alert: INVALID_ALERT, references, without naming NER",
            str(ack))
    own = x.alert("DZA", headline="Incident at the In Guezzam post")
    ack = dza.publish_wait(region.seal(own))
    t.check(ack is not None and x.code_name(ack.result) == "OK", "DZA's own alert: accepted", str(ack))
    update = x.alert("DZA", msg_type=x.C.UPDATE, references=[own.id], headline="In Guezzam: post reopened")
    ack = dza.publish_wait(region.seal(update))
    t.check(ack is not None and x.code_name(ack.result) == "OK", "DZA's update of its own alert: accepted",
            str(ack))


if __name__ == "__main__":
    x.main(main)
