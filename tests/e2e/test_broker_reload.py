"""test_broker_reload.py — SIGHUP reloads rules.yaml.  A broken file is refused (event=rules.reload_failed naming
file:line:column), the old rules keep routing and `xba-broker --check` exits 1 naming the position; a good file
takes over for the next alert (other recipients, other rule names, the new version in Welcome, StatusReply and the
log), while sessions stay open and the journal keeps the rule that routed each earlier alert.

usage: /usr/bin/python3 tests/e2e/test_broker_reload.py BUILD_DIR SOURCE_ROOT
"""
import hashlib
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
from xbatest import C  # noqa: E402

RULES_V1 = """\
rules:
  - name: v1-neighbours
    when: { category: smuggling }
    to: [neighbours]
"""
# rules[0].when: unknown key 'categories' at line 3, column 13 (docs/rules.md section 4).
RULES_BROKEN = """\
rules:
  - name: v2-observers
    when: { categories: [smuggling] }
    to: [observers]
"""
# rules[0].to[1]: unknown node or group 'XYZ' at line 4, column 21.
RULES_BROKEN2 = """\
rules:
  - name: v2-observers
    when: { category: [smuggling] }
    to: [observers, XYZ]
"""
RULES_V2 = """\
# version 2: smuggling goes to the observers only
rules:
  - name: v2-observers
    when: { category: [smuggling] }
    to: [observers]
"""


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES_V1).start()
    v1 = hashlib.sha256(RULES_V1.encode()).hexdigest()
    v2 = hashlib.sha256(RULES_V2.encode()).hexdigest()
    rc, out = broker.check_config()
    t.check(rc == 0 and "configuration OK" in out, "--check on the v1 configuration: exit 0, configuration OK",
            f"exit {rc}: {out}")
    net = x.Net(t)
    nodes = {nid: net.node(region, nid, broker) for nid in x.ALL_NODES}
    net.connect_all()
    t.eq(nodes["NER"].welcome.rules_version, v1, "Welcome.rules_version is v1's SHA-256")
    v1_recips = {n: "v1-neighbours" for n in ("DZA", "LBY", "MLI", "TCD")}
    v2_recips = {n: "v2-observers" for n in ("IOM-ROMENA", "WHO-AFRO")}

    def route(label, expect):
        a = x.alert("NER", C.SMUGGLING, C.SEVERE, C.AMBER, headline=label)
        ack = nodes["NER"].publish_wait(region.seal(a))
        t.check(ack is not None and ack.result == x.pb.OK and ack.recipients == len(expect),
                f"{label}: accepted with {len(expect)} recipients",
                f"{x.code_name(ack.result)} recipients={ack.recipients}" if ack else "no ack")
        net.run_until(lambda: all(nodes[n].got(a.id) for n in expect), t.t(5))
        net.sleep(t.t(0.5))
        got = {n: nodes[n].inbox[a.id].rule for n in x.ALL_NODES if nodes[n].got(a.id)}
        t.check(got == expect, f"{label}: reached exactly {sorted(expect)} by rule {next(iter(expect.values()))}",
                f"got {got}")
        return a

    first = route("under v1", v1_recips)

    # A broken file: refused, the old rules stay.
    for text, pos, label in [(RULES_BROKEN, "rules.yaml:3:13", "unknown key 'categories'"),
                             (RULES_BROKEN2, "rules.yaml:4:21", "unknown node 'XYZ'")]:
        broker.write_rules(text)
        mark = broker.log_size()
        broker.hup()
        m = broker.wait_log(r"event=rules\.reload_failed.*", t.t(5), since=mark, net=net)
        t.check(m is not None, f"SIGHUP with {label}: log event=rules.reload_failed")
        if m:
            t.check(pos in m.group(0), f"... the log line names {pos}", m.group(0))
            t.log(m.group(0))
            ready = (broker.events("broker.ready") or [{}])[0]
            t.check("applied=nothing" in m.group(0) and ready.get("region") and
                    f"keeping_region={ready.get('region')}" in m.group(0),
                    "... and says that nothing was applied, naming the region.yaml kept (a revocation in it is not "
                    "in force either)", m.group(0))
        t.check(not broker.events("rules.reloaded", since=mark), "... and no event=rules.reloaded")
        t.check(broker.alive(), "... and the broker keeps running")
        route(f"after the refused reload ({label})", v1_recips)
        rc, out = broker.check_config()
        t.check(rc == 1 and pos in out, f"xba-broker --check with {label}: exit 1 naming {pos}", f"exit {rc}: {out}")
        t.log(f"--check: {out}")
    st = nodes["SECRETARIAT"].status()
    t.check(st is not None and st.rules_version == v1, "StatusReply.rules_version is still v1")

    # A good file: the next alert follows the new rules.
    broker.write_rules(RULES_V2)
    mark = broker.log_size()
    broker.hup()
    m = broker.wait_log(r"event=rules\.reloaded.*", t.t(5), since=mark, net=net)
    t.check(m is not None, "SIGHUP with a good file: log event=rules.reloaded")
    if m:
        rec = x.parse_log_line(m.group(0))
        t.eq(rec.get("version"), v2, "event=rules.reloaded version= the new file's SHA-256")
        with open(broker.region_path, "rb") as f:
            region_version = hashlib.sha256(f.read()).hexdigest()[:12]
        t.eq(rec.get("region"), region_version, "... and region= the first 12 hex digits of sha256sum region.yaml")
        ready = broker.events("broker.ready")
        t.check(ready and ready[0].get("region") == region_version, "broker.ready names the same region version",
                ready)
    second = route("under v2", v2_recips)
    st = nodes["SECRETARIAT"].status()
    t.check(st is not None and st.rules_version == v2, "StatusReply.rules_version is v2")
    t.check(all(n.session == 1 for n in nodes.values()), "every session stayed open across the reloads",
            str({n.id: n.session for n in nodes.values()}))
    nodes["DZA"].connect()
    t.check(nodes["DZA"].wait_welcome(), "DZA opens a new session")
    t.eq(nodes["DZA"].welcome.rules_version, v2, "the new session's Welcome.rules_version is v2")

    # Track: the journal keeps the rule that routed each alert.
    tr1, tr2 = nodes["NER"].track(first.id), nodes["NER"].track(second.id)
    m1 = x.track_map(tr1) if tr1 else {}
    m2 = x.track_map(tr2) if tr2 else {}
    t.check({n: r for n, (_, r) in m1.items()} == v1_recips, "track of the v1 alert: its recipients by v1-neighbours",
            str(m1))
    t.check({n: r for n, (_, r) in m2.items()} == v2_recips, "track of the v2 alert: its recipients by v2-observers",
            str(m2))
    t.check(not broker.events("rules.empty"), "no event=rules.empty while the rules route something")

    # rules: [] is valid, and routes nothing but emergencies and acks: in force, with a warning.
    broker.write_rules("rules: []\n")
    mark = broker.log_size()
    broker.hup()
    m = broker.wait_log(r"event=rules\.empty.*", t.t(5), since=mark, net=net)
    empty = broker.events("rules.empty", since=mark)
    t.check(m is not None and empty and "warn" in empty[0].get("level", "") and
            broker.events("rules.reloaded", since=mark),
            "SIGHUP with 'rules: []': reloaded, and a warning event=rules.empty", str(empty))
    broker.write_rules(RULES_V2)
    mark = broker.log_size()
    broker.hup()
    broker.wait_log(r"event=rules\.reloaded.*", t.t(5), since=mark, net=net)
    t.check(not broker.events("rules.empty", since=mark), "... and none once v2 is back")
    rc, out = broker.check_config()
    t.check(rc == 0 and "configuration OK" in out, "--check on v2: exit 0, configuration OK", f"exit {rc}: {out}")
    key = os.path.join(broker.dir, "keys", "BROKER.curve.key")
    os.chmod(key, 0o644)
    rc, out = broker.check_config()
    os.chmod(key, 0o600)
    t.check(rc == 1 and "broker.yaml: curve_secret_key:" in out and "0644" in out,
            "--check with the broker's key readable by others: exit 1, naming broker.yaml's curve_secret_key",
            f"exit {rc}: {out}")
    net.check_protocol()
    t.eq(broker.stop(), 0, "SIGTERM: broker exits 0")


if __name__ == "__main__":
    x.main(main)
