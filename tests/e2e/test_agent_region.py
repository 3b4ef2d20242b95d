"""test_agent_region.py — `xba status --region`, the secretariat's view of the region: a real xba-broker, real
xba-agents for the admin node SECRETARIAT and for NER, TCD and DZA; LBY, SDN, MLI and the observers are not
running.  NER sends an ordinary alert (routed to its neighbours DZA, LBY, MLI and TCD) and an emergency
broadcast.  At SECRETARIAT, the command shows all nine nodes: who is connected, who is DOWN and never seen since
the broker started, how many deliveries wait at the broker for each and how many of them are emergencies, names
the nodes not connected and the stranded emergencies, and exits 1; --json gives the same per node.  At NER it
shows NER only, and says why.  The admin node's own agent runs without a signing key in region.yaml and publishes
nothing.  Once LBY's agent runs and drains, its row reads connected with nothing waiting; with the broker stopped,
the command says the link is down (and that it asks the broker) instead of waiting.

usage: /usr/bin/python3 tests/e2e/test_agent_region.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys
import threading

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

DOWN = ["LBY", "SDN", "MLI", "IOM-ROMENA", "WHO-AFRO"]


def region_rows(agent, *extra):
    """`xba status --region --json` at agent: (CliResult, {node_id: row})."""
    r = agent.cli("status", "--region", "--json", *extra)
    return r, {row.get("node_id"): row for row in (r.json() or [])}


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
    agents = x.start_agents(t, region, broker, ["SECRETARIAT", "NER", "TCD", "DZA"])
    sec, ner = agents["SECRETARIAT"], agents["NER"]

    r = ner.cli("send", "--category", "smuggling", "--severity", "severe", "--headline", "Convoi vers Tummo",
                "--author", "officer-ner")
    ordinary = x.sent_id(r)
    t.check(r.rc == 0 and ordinary, "NER sends an ordinary alert to its neighbours (DZA, LBY, MLI, TCD)", repr(r))
    r = ner.cli("broadcast", "--headline", "Attaque armée au poste d'Assamaka", "--author", "officer-ner")
    emergency = x.sent_id(r)
    t.check(r.rc == 0 and emergency, "NER broadcasts an emergency", repr(r))
    for nid in ("TCD", "DZA"):
        agents[nid].wait_status(lambda s: s.get("inbox_count", 0) >= 2, t.t(10))

    # ---- the secretariat: every node ---------------------------------------------------------------------------
    def settled(rows):
        return all(rows.get(n, {}).get("queue_depth", 0) == 0 for n in ("NER", "TCD", "DZA", "SECRETARIAT"))
    r, rows = region_rows(sec)
    for _ in range(40):
        if settled(rows):
            break
        t.sleep(0.25)
        r, rows = region_rows(sec)
    t.eq(sorted(rows), sorted(x.ALL_NODES), "at SECRETARIAT (admin): a row for each of the nine nodes")
    t.eq(r.rc, 1, "at SECRETARIAT: exit 1, nodes are not connected")
    t.eq(sorted(n for n, row in rows.items() if row.get("connected")), sorted(["SECRETARIAT", "NER", "TCD", "DZA"]),
         "connected: the four running agents, and only they")
    t.check(all(rows[n].get("last_seen") == "" for n in DOWN),
            "the nodes never connected: no last-seen time (not since the broker started)", str(rows))
    t.check(all(rows[n].get("last_seen", "").endswith("Z") for n in ("NER", "TCD", "DZA")),
            "the connected ones: a last-seen time", str(rows))
    t.eq({n: (rows[n].get("queue_depth"), rows[n].get("emergency_depth")) for n in DOWN},
         {"LBY": (2, 1), "SDN": (1, 1), "MLI": (2, 1), "IOM-ROMENA": (1, 1), "WHO-AFRO": (1, 1)},
         "waiting at the broker: LBY and MLI the ordinary alert and the emergency, the other down nodes the "
         "emergency")
    t.check(settled(rows), "nothing waits for the connected nodes", str(rows))
    t.eq({n: rows[n].get("role") for n in rows},
         {**{n: "member" for n in ("DZA", "LBY", "SDN", "TCD", "MLI", "NER")}, "IOM-ROMENA": "observer",
          "WHO-AFRO": "observer", "SECRETARIAT": "admin"}, "each node's role, as region.yaml says")
    t.check(len({row.get("journal_head") for row in rows.values()}) == 1 and rows["NER"].get("journal_head", 0) >= 2
            and rows["NER"].get("rules_version"), "journal head and rules version on every row", str(rows["NER"]))

    r = sec.cli("status", "--region")
    t.log("xba status --region at SECRETARIAT:\n" + r.out)
    lines = r.out.splitlines()
    t.check(r.rc == 1 and lines and lines[0].split()[:2] == ["NODE", "ROLE"], "text: a table with a heading",
            r.out[:400])
    row = {ln.split()[0]: ln for ln in lines[1:] if ln.split() and ln.split()[0] in x.ALL_NODES}
    t.check("DOWN" in row.get("LBY", "") and "not since the broker started" in row.get("LBY", "") and
            row.get("LBY", "").rstrip().endswith("2 (1 EMERGENCY)"),
            "text: LBY's row says DOWN, never seen since the broker started, 2 waiting (1 EMERGENCY)", row.get("LBY"))
    t.check("connected" in row.get("TCD", "") and row.get("TCD", "").rstrip().endswith(" 0"),
            "text: TCD's row says connected, 0 waiting", row.get("TCD"))
    t.check(f"9 nodes, 5 not connected: {' '.join(sorted(DOWN))}; 7 deliveries waiting" in r.out, "text: the summary names the five nodes not connected and counts what waits", r.out[-600:])
    t.check(f"EMERGENCY: 5 emergencies wait for nodes that are not connected ({' '.join(sorted(DOWN))}): "
            "call their focal points" in r.out, "text: the stranded emergencies are said, with whom to call",
            r.out[-400:])

    # Several at once (a monitoring script and two officers): the agent asks the broker once for all of them, and
    # each gets the whole answer.
    results = []
    threads = [threading.Thread(target=lambda: results.append(region_rows(sec))) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(t.t(60))
    t.check(len(results) == 8 and all(r.rc == 1 and sorted(rows) == sorted(x.ALL_NODES) for r, rows in results),
            "8 xba status --region at once at SECRETARIAT: each answered with the nine nodes",
            str([(r.rc, len(rows), r.err[-200:]) for r, rows in results]))
    t.check(all(rows.get("LBY", {}).get("queue_depth") == 2 and rows["LBY"].get("queue_depth_capped") is False
                for _, rows in results), "... the same answer for each (LBY: 2 waiting, counted exactly)", "")

    # ---- the admin node's own agent: up, publishing nothing ---------------------------------------------------
    r = sec.cli("status")
    t.check(r.rc == 0 and "signing key     none: an admin node publishes nothing" in r.out,
            "xba status at SECRETARIAT: exit 0 (link up), and no signing key: an admin node publishes nothing",
            r.out[-500:])
    r = sec.cli("send", "--category", "other", "--severity", "minor", "--headline", "Réunion du groupe")
    t.check(r.rc == 1 and "admin node and may not publish" in r.err, "xba send at SECRETARIAT: refused at once, "
            "an admin node does not publish", repr(r))

    # ---- a country's agent: itself only, and told so ----------------------------------------------------------
    r, rows = region_rows(ner)
    t.eq(sorted(rows), ["NER"], "at NER (a member): its own row only")
    t.check(r.rc == 0 and rows["NER"].get("connected") is True and rows["NER"].get("role") == "member",
            "... connected, exit 0", repr(r))
    r = ner.cli("status", "--region")
    t.check(r.rc == 0 and "the broker shows a node only itself" in r.out, "text at NER: says it sees only itself",
            r.out)

    # ---- LBY comes, takes what waited ----------------------------------------------------------------------------
    lby = x.Agent(t, region, "LBY", broker).start(link=True)
    lby.wait_status(lambda s: s.get("inbox_count", 0) >= 2, t.t(15))
    r, rows = region_rows(sec)
    for _ in range(40):
        if rows.get("LBY", {}).get("queue_depth") == 0:
            break
        t.sleep(0.25)
        r, rows = region_rows(sec)
    t.check(rows.get("LBY", {}).get("connected") is True and rows["LBY"].get("queue_depth") == 0 and
            rows["LBY"].get("emergency_depth") == 0, "LBY back: connected, nothing waiting", str(rows.get("LBY")))

    # ---- the broker down: said at once ---------------------------------------------------------------------------
    broker.stop()
    sec.wait_status(lambda s: not s.get("link_up"), t.t(15))
    r = sec.cli("status", "--region")
    t.check(r.rc not in (0, None) and "link to the broker is down" in r.err and "xba status --region" in r.err
            and len(r.err_lines()) == 1, "broker stopped: one line, the link is down, the command asks the broker",
            repr(r))
    t.check(lby.alive() and sec.alive() and ner.alive(), "the agents still run")


if __name__ == "__main__":
    x.main(main)
