"""test_hard_partition.py — a network partition between one real agent and the broker (issue "Hardening").

LBY's xba-agent runs in a network namespace the test makes (ip netns + a veth pair; root only), reaching the
broker (listening on 0.0.0.0) over the veth.  Python nodes NER, TCD, SDN publish to LBY's region all along; DZA
receives.  The veth is taken down for ~6 s (the link is cut both ways, TCP stalls, heartbeats time out) while
alerts keep flowing to the broker and LBY's officers keep sending (queued).  The link heals: every alert reaches
LBY's inbox once and in per-origin order, every alert LBY queued reaches DZA once and in submission order, and the
namespace and veth are removed at the end.

usage: /usr/bin/python3 tests/e2e/test_hard_partition.py BUILD_DIR SOURCE_ROOT
"""
import collections
import os
import sqlite3
import subprocess
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
from xbatest import C  # noqa: E402

RULES = """\
rules:
  - name: crime-to-neighbours
    when: { category: [border-incident, smuggling, trafficking] }
    to: [neighbours]
"""
CUT_S = 6.0


def sh(*cmd):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


class BrokerVia:
    """What an Agent needs of a broker: an endpoint (here the host end of the veth) and the pinned key."""

    def __init__(self, broker, host):
        self.endpoint = f"tcp://{host}:{broker.port}"
        self.public_key = broker.public_key


def main(t):
    pid = os.getpid()
    ns, vh, vn = f"xbah{pid}", f"xh{pid}", f"xn{pid}"
    a, b = (pid >> 8) & 0xff, pid & 0xfc
    host_ip, ns_ip = f"10.{200 + (pid >> 16) % 50}.{a}.{b + 1}", f"10.{200 + (pid >> 16) % 50}.{a}.{b + 2}"
    rc, out = sh("ip", "netns", "add", ns)
    if rc != 0:
        t.check(False, "ip netns add works (this test needs root)", out)
        return
    t.defer(lambda: sh("ip", "netns", "del", ns))
    t.defer(lambda: sh("ip", "link", "del", vh))
    for cmd in (["ip", "link", "add", vh, "type", "veth", "peer", "name", vn],
                ["ip", "link", "set", vn, "netns", ns],
                ["ip", "addr", "add", f"{host_ip}/30", "dev", vh],
                ["ip", "link", "set", vh, "up"],
                ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/30", "dev", vn],
                ["ip", "netns", "exec", ns, "ip", "link", "set", vn, "up"],
                ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]):
        rc, out = sh(*cmd)
        if not t.check(rc == 0, f"set up: {' '.join(cmd)}", out):
            return
    t.log(f"method: network namespace {ns}, veth {vh} ({host_ip}) <-> {vn} ({ns_ip}); cut = ip link set {vh} down")

    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES, listen_host="0.0.0.0", heartbeat_ms=1000, rate_per_second=100000,
                      rate_burst=100000).start()
    lby = x.Agent(t, region, "LBY", BrokerVia(broker, host_ip), wrapper=["ip", "netns", "exec", ns],
                  reconnect_min_ms=100, reconnect_max_ms=500, heartbeat_ms=1000)
    lby.start(link=True)
    net = x.Net(t)
    pubs = ["NER", "TCD", "SDN"]
    nodes = {nid: net.node(region, nid, broker) for nid in pubs + ["DZA"]}
    net.connect_all()

    order = collections.defaultdict(list)
    nxt = [time.monotonic()]
    count = [0]

    def traffic():
        if time.monotonic() < nxt[0]:
            return
        nxt[0] = time.monotonic() + 0.05
        p = pubs[count[0] % len(pubs)]
        count[0] += 1
        al = x.alert(p, C.SMUGGLING, C.SEVERE, C.AMBER, headline=f"{p} partition stream {count[0]}")
        order[p].append(al.id)
        nodes[p].publish(region.seal(al))
    net.tickers.append(traffic)
    net.sleep(2.0)

    lby_sent = []

    def lby_send(i):
        r = lby.cli("send", "--category", "smuggling", "--severity", "severe", "--author", "officer-lby",
                    "--lang", "en", "--headline", f"LBY during partition {i}", "--wait", "0", net=net)
        aid = x.sent_id(r)
        t.check(r.rc in (0, 3) and aid, f"LBY send {i} queued (rc {r.rc})", repr(r)[:200])
        if aid:
            lby_sent.append(aid)

    lby_send(0)
    # ---- the cut ----
    mark = lby.log_size()
    bmark = broker.log_size()
    rc, out = sh("ip", "link", "set", vh, "down")
    t.check(rc == 0, "link cut (veth down)", out)
    cut_at = time.monotonic()
    for i in range(1, 6):
        lby_send(i)
        net.sleep(0.3)
    # Before the third missed heartbeat the link still reads UP: status says how long the broker has been silent.
    s = lby.status() or {}
    t.check(s.get("link_up") is False or s.get("silent_ms", 0) > 1000,
            "during the cut, status --json: link down already, or up with silent_ms past one heartbeat",
            str({k: s.get(k) for k in ("link_up", "silent_ms", "next_attempt_in_ms")}))
    down = lby.wait_log(r"event=link\.down", t.t(8), since=mark)
    t.check(down is not None, "LBY's agent notices the partition (event=link.down)")
    t.log(f"link.down after {time.monotonic() - cut_at:.1f} s")
    for i in range(6, 11):
        lby_send(i)
        net.sleep(0.2)
    s = lby.status()
    t.check(s is not None and s.get("link_up") is False and s.get("outbox_depth", 0) >= 5,
            "during the partition: link_up false, LBY's alerts queued in its outbox", str(s)[:300])
    while time.monotonic() - cut_at < CUT_S:
        net.pump(0.05)
    during = count[0]
    rc, out = sh("ip", "link", "set", vh, "up")
    t.check(rc == 0, "link healed (veth up)", out)
    healed = time.monotonic()
    t.check(lby.wait_link(t.t(15), since=mark), "LBY's agent reconnects after the partition (event=link.up)")
    t.log(f"link.up {time.monotonic() - healed:.1f} s after the heal; {during} alerts published so far")
    net.sleep(1.0)
    net.tickers.remove(traffic)

    def inbox():
        db = sqlite3.connect(f"file:{lby.store_path}?mode=ro", uri=True, timeout=5)
        try:
            return [(r[0], r[1]) for r in db.execute("SELECT origin, alert_id FROM inbox ORDER BY id")]
        except sqlite3.Error:
            return []
        finally:
            db.close()

    want = {aid for p in pubs for aid in order[p]}
    end = time.monotonic() + t.t(20)
    while time.monotonic() < end:
        got = {aid for _, aid in inbox()}
        if want <= got and all(nodes["DZA"].got(aid) for aid in lby_sent) and \
                not any(nodes[p].outbox for p in pubs):
            break
        net.sleep(0.3)
    box = inbox()
    ids = [aid for _, aid in box]
    missing = want - set(ids)
    t.check(not missing, f"after the heal: all {len(want)} alerts for LBY are in its inbox", f"{len(missing)} missing")
    t.eq(len(ids), len(set(ids)), "each exactly once in LBY's inbox")
    bad = []
    for p in pubs:
        seq = [aid for o, aid in box if o == p]
        if seq != order[p]:
            bad.append(p)
    t.check(not bad, "per-origin order kept in LBY's inbox across the partition", str(bad))
    dza = [r.alert_id for r in nodes["DZA"].arrivals if r.origin == "LBY"]
    t.check(list(dict.fromkeys(dza)) == lby_sent, f"DZA received LBY's {len(lby_sent)} queued alerts once each, "
            "in submission order", f"{len(set(dza))} of {len(lby_sent)}")
    t.check(not any(nodes["DZA"].seq_conflicts), "no alert journaled twice")
    acks = [a for p in pubs for a in nodes[p].ack_log]
    t.check(all(a.result == x.pb.OK for a in acks) and len(acks) == count[0],
            f"every one of the {count[0]} publishes acknowledged OK while LBY was cut off")
    t.check(any(e for e in broker.events("node.disconnected", since=bmark) if e.get("node") == "LBY") or
            broker.wait_log(r"node=LBY", 0.1, since=bmark) is not None, "broker logged LBY's loss")
    t.log(f"published {count[0]}, LBY inbox {len(ids)}, LBY queued {len(lby_sent)}")
    t.eq(lby.stop(), 0, "agent SIGTERM: exits 0")
    t.eq(broker.stop(), 0, "broker SIGTERM: exits 0")


if __name__ == "__main__":
    if os.geteuid() != 0:
        # Mounting a tmpfs and creating network namespaces need root (CI runs as root); 77 is meson's "skipped".
        print("skipped: needs root")
        sys.exit(77)
    x.main(main, deadline_s=88)
