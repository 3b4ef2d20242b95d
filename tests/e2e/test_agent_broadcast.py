"""test_agent_broadcast.py — an emergency broadcast with live receipts, every node a real xba-agent: members DZA,
LBY, NER (may_broadcast), TCD and the observer WHO-AFRO-REGIONAL-OFFICE-BRAZZA (an id of 31 characters), behind a
real xba-broker.  `xba broadcast --wait` at NER shows every node delivered; an officer at each receiving agent runs `xba ack`; the broadcast's table then shows each
node acknowledged with the officer's name and it exits 0.  `xba watch` at the receivers shows the emergency
(emergency: true in JSON), and a broadcast from LBY, which may not broadcast, exits 1 naming
BROADCAST_NOT_ALLOWED with nothing queued.  Last, a receiver whose region.yaml lacks NER's new key refuses the next
broadcast: the sender sees REFUSED (receipt, table, track), then DELIVERED once that receiver reloads the file.

usage: /usr/bin/python3 tests/e2e/test_agent_broadcast.py BUILD_DIR SOURCE_ROOT
"""
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

# The observer (WHO's regional office) has a 31-character id, near the longest allowed (32): the broadcast table's
# NODE column must widen for it.
OBS = "WHO-AFRO-REGIONAL-OFFICE-BRAZZA"
RECEIVERS = ["DZA", "LBY", "TCD", OBS]
OFFICERS = {"DZA": "Cne. Amine Ziani", "LBY": "Lt. Salem Belkacem", "TCD": "Adj. Mahamat Idriss",
            OBS: "Dr. Aïcha Traoré"}


def table_rows(text):
    """The last receipt table in broadcast's output: {node: (delivered column, acknowledged column)}."""
    blocks = text.split("NODE ")
    if len(blocks) < 2:
        return {}
    rows = {}
    for line in blocks[-1].splitlines()[1:]:
        m = re.match(r"^(\S+)\s+(-|\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)\s+(.*)$", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3).strip())
    return rows


def queued_id(t, bc, what):
    """The alert id a background `xba broadcast` prints once queued (checked as `what`), or None."""
    bc.wait(lambda: re.search(r"alert [0-9a-f-]{36} queued", bc.text()) is not None, t.t(15))
    m = re.search(r"alert ([0-9a-f-]{36}) queued", bc.text())
    t.check(m is not None, what, bc.text()[-500:] + bc.stderr()[-500:])
    return m.group(1) if m else None


def main(t):
    region = x.region_of_five(t, "broadcast-e2e", observer=OBS)
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
    agents = x.start_agents(t, region, broker, ["NER"] + RECEIVERS)
    watches = {nid: agents[nid].watch() for nid in RECEIVERS}
    text_watch = agents["TCD"].watch(json_output=False)
    for nid in RECEIVERS:
        agents[nid].wait_log(r"event=local\.subscribed.*subscribers=2" if nid == "TCD" else r"event=local\.subscribed",
                             t.t(10))

    # ---- a broadcast from a node that may not broadcast ---------------------------------------------------------
    r = agents["LBY"].cli("broadcast", "--headline", "Tentative de diffusion d'urgence depuis LBY",
                          "--author", "Lt. Salem Belkacem", "--wait", "--timeout", "5")
    t.eq(r.rc, 1, "broadcast from LBY (not may_broadcast) exits 1 (refused)")
    t.check("BROADCAST_NOT_ALLOWED" in r.out + r.err, "broadcast from LBY names BROADCAST_NOT_ALLOWED", repr(r))
    t.check(len(r.err_lines()) <= 1, "broadcast from LBY: at most one line on stderr", repr(r))
    # An observer's broadcast: refused as a broadcast, not for its category (the observer publishes health only, and
    # a broadcast is category other unless told).
    r = agents[OBS].cli("broadcast", "--headline", "Alerte d'urgence de l'OMS", "--wait", "--timeout", "5")
    t.check(r.rc == 1 and "BROADCAST_NOT_ALLOWED" in r.err and "NOT_PERMITTED" not in r.err,
            "broadcast from the observer: BROADCAST_NOT_ALLOWED, not its category list", repr(r))
    s = agents["LBY"].wait_status(lambda s: s.get("outbox_depth") == 0, t.t(5)) or {}
    t.eq(s.get("outbox_depth"), 0, "LBY: nothing left queued (outbox_depth 0)")
    # Refused by the agent (never queued) or by the broker (kept in the history as refused): never sent on.
    out = [e.get("publish_state") for e in agents["LBY"].history("--outgoing") if e.get("outgoing")]
    t.check(all(st == "refused" for st in out), "LBY: history --outgoing holds nothing queued or accepted", str(out))

    # ---- the broadcast from NER, followed live ----------------------------------------------------------------
    bc = agents["NER"].background(
        "broadcast", "--category", "border-incident", "--author", "Chef de quart NER",
        "--lang", "fr", "--headline", "Attaque armée au poste frontière d'Assamaka",
        "--description", "Tirs signalés, trois blessés, fermeture du poste.",
        "--lang", "ar", "--headline", "هجوم مسلح على المركز الحدودي في أساماكا",
        "--area", "Assamaka border post", "--wait", "--timeout", "60")
    bid = queued_id(t, bc, "broadcast prints the alert id")
    if bid is None:
        return
    delivered_all = bc.wait(lambda: "delivered 4/4" in bc.text(), t.t(20))
    t.check(delivered_all, "broadcast --wait shows 'delivered 4/4'", bc.text()[-1500:])
    t.check("accepted by the broker: 4 recipients" in bc.text(), "broadcast: accepted by the broker for 4 recipients",
            bc.text()[:500])
    rows = table_rows(bc.text())
    t.eq(sorted(rows), sorted(RECEIVERS), "broadcast's table: one row per receiving node (not NER, not the admin)")
    t.check(all(rows.get(n, ("-",))[0] != "-" for n in RECEIVERS),
            "broadcast's table: a delivery time for every node", str(rows))
    t.check(bc.alive(), "broadcast --wait still running (waiting for acknowledgements)", f"rc={bc.proc.poll()}")

    # The receivers' watches: the emergency, with its text, marked emergency.
    for nid in RECEIVERS:
        watches[nid].wait_ids([bid], t.t(10))
        e = (watches[nid].by_id(bid) or [{}])[0]
        t.check(e.get("emergency") is True and e.get("origin") == "NER" and e.get("rule") == "emergency" and
                e.get("acknowledged") is False and e.get("severity") == "extreme" and
                e.get("category") == "border-incident",
                f"xba watch --json at {nid}: the broadcast, emergency true, rule emergency, not acknowledged", str(e))
    e = (watches["LBY"].by_id(bid) or [{}])[0]
    t.eq([(b.get("language"), b.get("headline")) for b in e.get("info", [])],
         [("fr", "Attaque armée au poste frontière d'Assamaka"), ("ar", "هجوم مسلح على المركز الحدودي في أساماكا")],
         "xba watch --json at LBY: the fr and ar text")
    text_watch.wait(lambda: "EMERGENCY BROADCAST from NER" in text_watch.text(), t.t(10))
    t.check("EMERGENCY BROADCAST from NER" in text_watch.text() and f"xba ack {bid}" in text_watch.text(),
            "xba watch (text) at TCD: '!!! EMERGENCY BROADCAST from NER !!!' and how to acknowledge it",
            text_watch.text()[-800:])

    # ---- each receiver acknowledges ----------------------------------------------------------------------------
    for nid in RECEIVERS:
        r = agents[nid].cli("ack", bid, "--officer", OFFICERS[nid], "--note", f"reçu à {nid}")
        t.check(r.rc == 0 and bid in r.out, f"xba ack at {nid} exits 0", repr(r))
    rc = bc.wait_exit(t.t(30))
    t.eq(rc, 0, "broadcast --wait exits 0 once every node acknowledged")
    rows = table_rows(bc.text())
    for nid in RECEIVERS:
        ack = rows.get(nid, ("", ""))[1]
        t.check(ack.endswith(f"by {OFFICERS[nid]}") and re.match(r"\d{4}-\d\d-\d\d ", ack),
                f"broadcast's final table: {nid} acknowledged, with the time and the officer's name", str(rows.get(nid)))
    t.check("delivered 4/4, acknowledged 4/4" in bc.text(), "broadcast's final line: delivered 4/4, acknowledged 4/4",
            bc.text()[-300:])
    t.check("NOT DELIVERED" not in bc.text(), "broadcast never says NOT DELIVERED")
    table = bc.text().split("NODE ")[-1].splitlines()
    when = re.compile(r"\d{4}-\d\d-\d\d ")
    starts = {line.split()[0]: when.search(line).start() for line in table[1:] if when.search(line)}
    heading = ("NODE " + table[0]).find("DELIVERED")
    t.check(sorted(starts) == sorted(RECEIVERS) and set(starts.values()) == {heading} and heading > len(OBS),
            f"broadcast's final table: DELIVERED lines up under its heading on every row, past the {len(OBS)}-"
            "character observer id", f"{starts} {table[0]!r}")
    res = agents["NER"].cli("track", bid)
    states = {line.split()[0]: line.find(" acknowledged ") for line in res.out.splitlines()
              if line.split() and line.split()[0] in RECEIVERS}
    t.check(sorted(states) == sorted(RECEIVERS) and len(set(states.values())) == 1 and
            states[OBS] >= len(OBS), "xba track (text): the state column lines up on every row, the long id's too",
            res.out[-800:])

    # After the acknowledgement, each watch learns it (the emergency is no longer recalled).
    for nid in RECEIVERS:
        w = watches[nid]
        w.wait(lambda: any(e.get("acknowledged") for e in w.by_id(bid)), t.t(10))
        acked = [e for e in w.by_id(bid) if e.get("acknowledged")]
        t.check(acked and acked[-1].get("acknowledged_by") == OFFICERS[nid],
                f"xba watch --json at {nid}: the broadcast shown acknowledged by {OFFICERS[nid]}",
                str(w.by_id(bid)))
    text_watch.wait(lambda: f"acknowledged: {bid}" in text_watch.text(), t.t(10))
    t.check(f"acknowledged: {bid} (NER) by {OFFICERS['TCD']}" in text_watch.text(),
            "xba watch (text) at TCD: 'acknowledged: ID (NER) by OFFICER'", text_watch.text()[-500:])

    res = agents["NER"].cli("track", bid, "--json")
    states = {j.get("node_id"): j.get("state") for j in res.json()}
    t.eq(states, {n: "acknowledged" for n in RECEIVERS}, "track --json at NER: every receiver acknowledged")
    t.eq({j.get("node_id"): j.get("officer") for j in res.json()}, OFFICERS,
         "... each with the officer who acknowledged it (before, track named nobody)")
    t.eq(res.rc, 0, "track exits 0")
    res = agents["NER"].cli("track", bid)
    t.check(f"by {OFFICERS['TCD']}" in res.out, "track (text): '..., by OFFICER'", res.out)
    s = agents["NER"].status() or {}
    t.check(s.get("outbox_depth") == 0 and s.get("link_up") is True, "status --json at NER: link up, outbox 0", str(s))
    acks_in = [e for e in agents["NER"].history("--limit", "100") if e.get("msg_type") == "ack"]
    t.eq(sorted(e.get("origin") for e in acks_in), sorted(RECEIVERS),
         "history --json at NER: one ACK alert from each receiver")
    # An ACK carries the category and severity of what it acknowledges: shown with them it read as a new alert.
    text = agents["NER"].cli("history", "--limit", "100").out
    headers = [line for line in text.splitlines() if line.startswith("== ") and " from TCD" in line]
    t.check(any("from TCD  acknowledgement  TLP:" in h for h in headers) and not any("[" in h for h in headers),
            "history (text) at NER: TCD's ACK is headed 'from TCD  acknowledgement  TLP:…', with no category or "
            "severity", "\n".join(headers))

    # A second ack of the same alert is refused, and nothing more is queued.
    r = agents["DZA"].cli("ack", bid, "--officer", "someone else")
    t.check(r.rc != 0 and "already acknowledged" in r.err and len(r.err_lines()) == 1,
            "a second xba ack at DZA is refused in one line: already acknowledged", repr(r))
    for nid in RECEIVERS:
        s = agents[nid].wait_status(lambda s: s.get("outbox_depth") == 0, t.t(5)) or {}
        t.check(s.get("outbox_depth") == 0 and s.get("unacknowledged") == 0 and s.get("quarantined") == 0,
                f"status --json at {nid}: outbox 0, nothing unacknowledged, nothing quarantined", str(s))

    # A broadcast without --author is signed in the name of the logged-in officer, as `xba send` does.
    r = agents["NER"].cli("broadcast", "--headline", "Exercice de diffusion sans --author", "--status", "exercise")
    t.check(r.rc == 0 and "accepted by the broker: 4 recipients" in r.out,
            "broadcast without --author exits 0 (the author defaults to the login name, as for send)", repr(r))

    tall_table(t, agents)
    withheld_by_rules(t, broker, agents)
    refused_then_released(t, region, broker, agents)


def tall_table(t, agents):
    """On a terminal too short for the table (a region of 200 nodes on a 40-line screen, here 4 rows on 6 lines),
    it cannot be redrawn in place (the cursor does not go above the screen; each draw left a partial copy in the
    scrollback): one line per change instead, with the counts, and the whole table once at the end."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 6, 160, 0, 0))
    proc = subprocess.Popen([t.xba, "broadcast", "--headline", "Exercice : écran trop court", "--status", "exercise",
                             "--wait", "--timeout", "60"], stdin=slave, stdout=slave, stderr=slave,
                            env=x.cli_env(agents["NER"].socket, None), close_fds=True)
    os.close(slave)
    t.defer(lambda: proc.poll() is None and proc.kill())
    chunks = []

    def read_for(seconds, until=None):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    return
                if not data:
                    return
                chunks.append(data)
            if until is not None and until(b"".join(chunks).decode("utf-8", "replace")):
                return

    read_for(t.t(15), lambda out: "following 4 nodes" in out)
    m = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", b"".join(chunks).decode())
    t.check(m is not None, "broadcast on a 6-line terminal: prints the alert id", b"".join(chunks).decode()[-600:])
    if m is None:
        return
    for nid in RECEIVERS:
        agents[nid].cli("ack", m.group(0), "--officer", OFFICERS[nid])
    read_for(t.t(20), lambda out: "delivered 4/4, acknowledged 4/4" in out.split("following 4 nodes")[-1]
             and proc.poll() is not None)
    read_for(0.5)
    proc.wait(timeout=t.t(10))
    os.close(master)
    out = b"".join(chunks).decode("utf-8", "replace")
    t.check("following 4 nodes: a line per change, the whole table at the end" in out,
            "a table taller than the terminal: followed a line per change", out[-1500:])
    t.check(all(re.search(rf"{re.escape(n)} +acknowledged .* by {re.escape(OFFICERS[n])} \(delivered 4/4, "
                          r"acknowledged [1-4]/4\)", out) for n in RECEIVERS),
            "... each acknowledgement a line, naming the officer, with the counts", out[-1500:])
    t.check(out.count("NODE") == 1 and "\x1b[" not in out.replace("\x1b[0m", ""),
            "... the table drawn once, at the end, and no cursor movement", repr(out[-800:]))
    t.eq(proc.returncode, 0, "... and it exits 0 once every node acknowledged")


def withheld_by_rules(t, broker, agents):
    """The rules keep exercises from the observers: `broadcast --wait` of an exercise shows WHO-AFRO as WITHHELD
    (before, it had no row and the table read "delivered 3/3 ... every node") and says whom it was not sent to."""
    mark = broker.log_size()
    broker.write_rules(x.NEIGHBOUR_RULES + "  - name: exercises-among-members\n    when: { status: exercise }\n"
                       "    deny: [observers]\n")
    broker.hup()
    t.check(broker.wait_log(r"event=rules\.reloaded", t.t(10), since=mark) is not None,
            "the broker reloads rules that keep exercises from observers")
    r = agents["NER"].cli("broadcast", "--headline", "Exercice : alerte d'inondation", "--status", "exercise",
                          "--wait", "--timeout", "8", timeout=t.t(40))
    rows = table_rows(r.out)
    t.check(OBS in r.out and "WITHHELD by the region's rules" in r.out and f"NOT SENT to {OBS}" in r.out
            and "delivered 3/3" in r.out and "WITHHELD from 1" in r.out,
            "broadcast --wait of an exercise: the observer shown WITHHELD by the rules, 'NOT SENT to' it",
            r.out[-900:])
    t.check(r.rc == 0 and "delivered to every node it was sent to" in r.out and set(rows) >= {"DZA", "LBY", "TCD"},
            "... delivered to every node it was sent to (exit 0)", repr(r))


def refused_then_released(t, region, broker, agents):
    """NER signs with a new key that every region.yaml lists but TCD's (not yet sent the file).  TCD's agent
    refuses NER's next broadcast (UNKNOWN_KEY, quarantine): the broker records REFUSED, not delivered, NER gets a
    REFUSED receipt, and NER's broadcast --wait and xba track say so.  Once TCD has the file and reloads, it
    releases the broadcast, tells the broker, and NER gets the DELIVERED receipt it was missing."""
    new_key = region.key("NER", region.add_key("NER")).pem_path
    old_tcd = open(agents["TCD"].region_path).read()
    region.write()
    mark = broker.log_size()
    broker.write_region()
    broker.hup()
    t.check(broker.wait_log(r"event=rules\.reloaded", t.t(10), since=mark) is not None,
            "the broker reloads region.yaml with NER's second key")
    for nid, a in agents.items():
        if nid != "TCD":
            m = a.log_size()
            a.write_region()
            a.hup()
            t.check(a.wait_log(r"event=region\.reloaded", t.t(10), since=m) is not None,
                    f"agent {nid} reloads region.yaml with NER's second key")
    ner = agents["NER"]
    t.eq(ner.stop(), 0, "NER's agent stops to take its new signing key")
    ner.signing_key = new_key
    ner.write_config()
    ner.start(link=True)
    tcd_mark = agents["TCD"].log_size()
    ner_mark = ner.log_size()

    bc = ner.background("broadcast", "--headline", "Deuxième alerte, signée de la nouvelle clé de NER",
                        "--author", "Chef de quart NER", "--wait", "--timeout", "60")
    bid = queued_id(t, bc, "the second broadcast prints its alert id")
    if bid is None:
        return
    refused = bc.wait(lambda: "TCD" in bc.text() and "REFUSED by its agent (UNKNOWN_KEY)" in bc.text(), t.t(20))
    t.check(refused, "broadcast --wait shows TCD REFUSED by its agent (UNKNOWN_KEY)", bc.text()[-1500:])
    t.check(bc.wait(lambda: "delivered 3/4" in bc.text() and "REFUSED 1" in bc.text(), t.t(10)),
            "broadcast --wait: delivered 3/4, REFUSED 1", bc.text()[-600:])
    q = agents["TCD"].events("alert.quarantined", since=tcd_mark)
    t.check(len(q) == 1 and q[0].get("code") == "UNKNOWN_KEY", "TCD's agent quarantined it: UNKNOWN_KEY", str(q))
    rec = broker.events("delivery.refused", since=mark)
    t.check(len(rec) == 1 and rec[0].get("node") == "TCD" and rec[0].get("alert") == bid and
            rec[0].get("code") == "UNKNOWN_KEY", "the broker logs event=delivery.refused node=TCD code=UNKNOWN_KEY",
            str(rec))
    res = ner.cli("track", bid, "--json")
    rows = {j.get("node_id"): j for j in res.json()}
    t.check(rows.get("TCD", {}).get("state") == "refused" and rows.get("TCD", {}).get("reason") == "UNKNOWN_KEY"
            and all(rows.get(n, {}).get("state") == "delivered" for n in ("DZA", "LBY", OBS)),
            "track --json at NER: TCD refused (UNKNOWN_KEY), the three others delivered", str(rows))
    t.eq(res.rc, 1, "track exits 1: not every recipient has it")
    got = ner.events("receipt.received", since=ner_mark)
    t.check(any(g.get("node") == "TCD" and g.get("kind") == "refused" and g.get("code") == "UNKNOWN_KEY" and
                g.get("alert") == bid and "warn" in g.get("level", "") for g in got),
            "NER's agent got a REFUSED receipt from the broker for TCD (logged as a warning)", str(got))
    t.check(not any(g.get("node") == "TCD" and g.get("kind") == "delivered" and g.get("alert") == bid for g in got),
            "... and no DELIVERED receipt for TCD", str(got))
    for nid in ("DZA", "LBY", OBS):
        r = agents[nid].cli("ack", bid, "--officer", OFFICERS[nid])
        t.check(r.rc == 0, f"xba ack of the second broadcast at {nid}", repr(r))
    rc = bc.wait_exit(t.t(30))
    t.eq(rc, 1, "broadcast --wait ends once the others acknowledged and TCD refused, and exits 1")
    t.check("REFUSED by the agent of at least one node" in bc.text(), "... saying it was REFUSED, not that it is "
            "late", bc.text()[-400:])

    # TCD is sent the current region.yaml: its reload releases the broadcast, and the broker hears of it.
    t.check(old_tcd != region.yaml(), "(TCD's region.yaml was the old one)")
    tcd = agents["TCD"]
    tcd_mark = tcd.log_size()
    tcd.write_region()
    tcd.hup()
    rel = tcd.wait_log(r"event=alert\.released .*", t.t(10), since=tcd_mark)
    t.check(rel is not None and bid in rel.group(0) and "was=UNKNOWN_KEY" in rel.group(0),
            "TCD's reload releases the broadcast (event=alert.released was=UNKNOWN_KEY)", rel.group(0) if rel else "")
    t.check(tcd.wait_log(r"event=releases\.reported count=1", t.t(10), since=tcd_mark) is not None,
            "TCD tells the broker (event=releases.reported count=1)")
    t.check(broker.wait_log(r"event=delivery\.released node=TCD .*alert=" + bid, t.t(10), since=mark) is not None,
            "the broker logs event=delivery.released node=TCD")
    t.check(ner.wait_log(r"event=receipt\.received alert=" + bid + r" node=TCD kind=delivered", t.t(10),
                         since=ner_mark) is not None, "NER now gets TCD's DELIVERED receipt")
    res = ner.cli("track", bid, "--json")
    t.eq({j.get("node_id"): j.get("state") for j in res.json()}.get("TCD"), "delivered",
         "track --json at NER: TCD delivered")
    r = tcd.cli("ack", bid, "--officer", OFFICERS["TCD"])
    t.check(r.rc == 0, "TCD's officer acknowledges the released broadcast", repr(r))
    end = time.monotonic() + t.t(10)
    while True:
        res = ner.cli("track", bid, "--json")
        if all(j.get("state") == "acknowledged" for j in res.json()) or time.monotonic() >= end:
            break
        time.sleep(0.2)
    t.check(res.rc == 0 and all(j.get("state") == "acknowledged" for j in res.json()),
            "track at NER: all four acknowledged, exit 0", str(res.json()))

    # Delivered everywhere, acknowledged by nobody before --timeout: a success, and who has not acknowledged is said.
    r = ner.cli("broadcast", "--headline", "Tempête de sable sur l'axe Agadez - Arlit", "--author", "Chef de quart NER",
                "--wait", "--timeout", "3")
    t.check(r.rc == 0 and f"NOT ACKNOWLEDGED within 3 s by: DZA LBY TCD {OBS}" in r.out,
            "broadcast --wait --timeout 3 with no acknowledgement: exit 0 (every node has it), naming who has not "
            "acknowledged", r.out[-600:])

    # A node down: the table says queued on its row, and the last line names it.
    who = agents[OBS]
    t.eq(who.stop(), 0, "the observer's agent stops")
    r = ner.cli("broadcast", "--headline", "Crue de la Komadougou : évacuation", "--author", "Chef de quart NER",
                "--wait", "--timeout", "3")
    t.check(r.rc == 1 and f"NOT DELIVERED within 3 s to: {OBS} (queued at the broker" in r.out and
            any(line.split()[:2] == [OBS, "queued"] for line in r.out.splitlines()),
            "broadcast --wait with the observer down: exit 1, its row says queued and the last line names it",
            r.out[-700:])
    res = ner.cli("track", x.sent_id(r))
    t.check(res.rc == 1 and f"NOT DELIVERED yet to (queued at the broker): {OBS}\n" in res.out,
            "xba track of it: exit 1, and its last line names the observer (not to be looked for among the rows)",
            res.out[-600:])
    who.start(link=True)


if __name__ == "__main__":
    x.main(main)
