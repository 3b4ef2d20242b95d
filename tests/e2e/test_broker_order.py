"""test_broker_order.py — a node's alerts are journaled in the order it sent them, even when the broker refuses one
of them transiently while later ones are already on the wire (docs/protocol.md section 2.3, "Order").

A node that set Hello.ordered_publishes (xba-agent does) is held after a transient refusal: the broker refuses
every publish of another alert with the same code until the refused alert is sent again, so that nothing of this
node is journaled ahead of it.  Shown here with a real broker and protocol clients:

1. rate limit, ordered node: the burst's first refusal holds the rest, still held after the bucket has refilled;
   the refused alert sent again (under a new ref: the hold follows the alert, not the ref) lifts the hold, and the
   recipients get the node's alerts in exactly the order it sent them;
2. the same with a node that did not ask: after the bucket refills a later alert is accepted ahead of the refused
   one (the behaviour the option exists to prevent; nothing else changes for such nodes);
3. UNKNOWN_KEY (refused before the alert is decoded): the hold names the alert its bytes claim; the refused alert
   sent again is refused for its key, not "held"; a new Hello lifts the hold;
4. a permanent refusal (BAD_SIGNATURE) holds nothing;
5. the log: node.connected ordered=1/0, one publish.held line per hold, publish.resumed with the count held;
   the refusal that holds is an alert.rejected warning, the publishes refused behind it alert.rejected at info;
6. the same alert published twice at once is answered OK, then DUPLICATE (never DUPLICATE before the original's
   commit, which could still fail).

usage: /usr/bin/python3 tests/e2e/test_broker_order.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
from xbatest import C  # noqa: E402

RULES = """\
rules:
  - name: smuggling-to-members
    when: { category: smuggling }
    to: [members]
"""
RATE, BURST = 2, 5


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES, rate_per_second=RATE, rate_burst=BURST).start()
    net = x.Net(t)
    dza = net.node(region, "DZA", broker, credit=256)
    mli = net.node(region, "MLI", broker, ordered_publishes=True, max_inflight=64)
    tcd = net.node(region, "TCD", broker, max_inflight=64)
    ner = net.node(region, "NER", broker, ordered_publishes=True)
    sdn = net.node(region, "SDN", broker, ordered_publishes=True)
    net.connect_all()
    # Info records are written once per loop pass, so a node can hold its Welcome before the line is out.
    net.run_until(lambda: {"MLI", "TCD"} <= {e.get("node") for e in broker.events("node.connected")}, t.t(5))
    connected = {e.get("node"): e.get("ordered") for e in broker.events("node.connected")}
    t.check(connected.get("MLI") == "1" and connected.get("TCD") == "0",
            "log: node.connected says ordered=1 for a node that asked, ordered=0 for one that did not", str(connected))

    def code(node, ref):
        a = node.acks.get(ref)
        return x.code_name(a.result) if a else "no ack"

    def held_msg(node, ref):
        a = node.acks.get(ref)
        return a is not None and a.message.startswith("held:")

    # ---- 1. ordered node over its rate -------------------------------------------------------------------------
    alerts = [x.alert("MLI", C.SMUGGLING, headline=f"MLI ordered {i}") for i in range(8)]
    envs = [region.seal(a) for a in alerts]      # sealed first: the burst reaches the broker within milliseconds
    mark = broker.log_size()
    refs = [mli.publish(e) for e in envs]
    net.run_until(lambda: all(r in mli.acks for r in refs), t.t(10))
    codes = [code(mli, r) for r in refs]
    t.check(codes == ["OK"] * BURST + ["RATE_LIMITED"] * 3, f"burst of 8 (bucket {BURST}): 5 OK, then RATE_LIMITED",
            str(codes))
    first = refs[BURST]
    t.check(not held_msg(mli, first), "the first refusal is the rate limit's own", mli.acks[first].message
            if first in mli.acks else "no ack")
    t.check(all(held_msg(mli, r) and f"ref {first} " in mli.acks[r].message and alerts[BURST].id in
                mli.acks[r].message for r in refs[BURST + 1:]),
            "the two after it are refused as held behind it, naming its ref and alert",
            str([mli.acks[r].message for r in refs[BURST + 1:] if r in mli.acks]))
    held = broker.events("publish.held", since=mark)
    t.check(len(held) == 1 and held[0].get("node") == "MLI" and held[0].get("alert") == alerts[BURST].id and
            held[0].get("code") == "RATE_LIMITED", "log: one publish.held line naming MLI's refused alert",
            str(held))
    # The rate limit refuses before decoding, so its line names no alert ("-").  Info lines are written at the end
    # of the loop pass, which can be after the node has its answers.
    net.run_until(lambda: len(broker.events("alert.rejected", since=mark)) >= 3, t.t(5))
    rejected = [(e.get("alert"), e.get("level")) for e in broker.events("alert.rejected", since=mark)]
    t.check(rejected == [("-", "warn")] + [(a.id, "info") for a in alerts[BURST + 1:]],
            "log: the refusal itself is a warning, the publishes held behind it are info", str(rejected))

    net.sleep(t.t(3.0))   # the bucket refills (2/s): a later alert would pass the rate limit
    late = x.alert("MLI", C.SMUGGLING, headline="MLI ordered late")
    late_env = region.seal(late)
    r_late = mli.publish(late_env)
    mli.wait_ack(r_late)
    t.check(code(mli, r_late) == "RATE_LIMITED" and held_msg(mli, r_late),
            "with the bucket refilled, a later alert is still held (RATE_LIMITED, held)",
            f"{code(mli, r_late)} {mli.acks[r_late].message if r_late in mli.acks else ''}")

    # The refused alert again, under a new ref, then the rest in order.
    again = [mli.publish(envs[i]) for i in range(BURST, 8)] + [mli.publish(late_env)]
    net.run_until(lambda: all(r in mli.acks for r in again), t.t(10))
    t.eq([code(mli, r) for r in again], ["OK"] * 4, "resent from the refused one (new refs): all accepted")
    seqs = [mli.acks[r].seq for r in refs[:BURST] + again]
    t.check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "journal order is MLI's submission order",
            str(seqs))
    net.run_until(lambda: broker.events("publish.resumed", since=mark), t.t(5))
    resumed = broker.events("publish.resumed", since=mark)
    t.check(len(resumed) == 1 and resumed[0].get("alert") == alerts[BURST].id and resumed[0].get("held") == "3",
            "log: publish.resumed names the alert and counts the 3 publishes held behind it", str(resumed))
    order = [a.id for a in alerts] + [late.id]
    net.run_until(lambda: all(dza.got(a) for a in order), t.t(10))
    got = list(dict.fromkeys(a.alert_id for a in dza.arrivals if a.origin == "MLI"))
    t.check(got == order, "DZA received MLI's alerts in exactly the order MLI sent them",
            str([order.index(a) if a in order else a for a in got]))

    # ---- 2. the same with a node that did not ask --------------------------------------------------------------
    talerts = [x.alert("TCD", C.SMUGGLING, headline=f"TCD unordered {i}") for i in range(BURST + 1)]
    tenvs = [region.seal(a) for a in talerts]
    trefs = [tcd.publish(e) for e in tenvs]
    net.run_until(lambda: all(r in tcd.acks for r in trefs), t.t(10))
    t.eq([code(tcd, r) for r in trefs], ["OK"] * BURST + ["RATE_LIMITED"], "TCD: burst of 6, the last rate-limited")
    net.sleep(t.t(1.5))
    tlate = x.alert("TCD", C.SMUGGLING, headline="TCD unordered late")
    r = tcd.publish(region.seal(tlate))
    tcd.wait_ack(r)
    t.eq(code(tcd, r), "OK", "TCD (not ordered): after the refill a later alert is accepted ahead of the refused one")

    # ---- 3. UNKNOWN_KEY, refused before decoding ---------------------------------------------------------------
    stranger = region.stranger("NER").signing_keys[0]
    u = x.alert("NER", C.SMUGGLING, headline="NER signed with an unlisted key")
    u_env = region.seal(u, signer=stranger)
    mark = broker.log_size()
    ru = ner.publish(u_env)
    v = x.alert("NER", C.SMUGGLING, headline="NER after the unknown key")
    v_env = region.seal(v)
    rv = ner.publish(v_env)
    net.run_until(lambda: ru in ner.acks and rv in ner.acks, t.t(10))
    t.eq(code(ner, ru), "UNKNOWN_KEY", "NER: an alert signed with an unlisted key")
    t.check(code(ner, rv) == "UNKNOWN_KEY" and held_msg(ner, rv) and u.id in ner.acks[rv].message,
            "NER: the valid alert behind it is held, naming the alert the refused bytes claim",
            ner.acks[rv].message if rv in ner.acks else "no ack")
    ru2 = ner.publish(u_env)
    ner.wait_ack(ru2)
    t.check(code(ner, ru2) == "UNKNOWN_KEY" and not held_msg(ner, ru2),
            "NER: the held alert sent again is refused for its key, not as held", ner.acks[ru2].message
            if ru2 in ner.acks else "no ack")
    rv2 = ner.publish(v_env)
    ner.wait_ack(rv2)
    t.check(code(ner, rv2) == "UNKNOWN_KEY" and held_msg(ner, rv2), "NER: still held while the key is unknown")
    sess = ner.session
    ner.connect()
    net.run_until(lambda: ner.session > sess and ner.state == "open", t.t(10))
    rv3 = ner.publish(v_env)
    ner.wait_ack(rv3)
    t.eq(code(ner, rv3), "OK", "NER: a new Hello lifts the hold (the node resends its outbox from the start)")
    t.check(not dza.got(u.id), "the alert with the unlisted key reached nobody")

    # ---- 4. a permanent refusal holds nothing ------------------------------------------------------------------
    bad = region.seal(x.alert("SDN", C.SMUGGLING, headline="SDN forged"))
    sig = bytearray(bad.signature)
    sig[3] ^= 0x01
    bad.signature = bytes(sig)
    rb = sdn.publish(bad)
    good = x.alert("SDN", C.SMUGGLING, headline="SDN after a forged one")
    rg = sdn.publish(region.seal(good))
    net.run_until(lambda: rb in sdn.acks and rg in sdn.acks, t.t(10))
    t.eq([code(sdn, rb), code(sdn, rg)], ["BAD_SIGNATURE", "OK"], "SDN: BAD_SIGNATURE is final and holds nothing")
    held = broker.events("publish.held", since=mark)
    t.check([(e.get("node"), e.get("alert")) for e in held] == [("NER", u.id)] * 2,
            "log: publish.held only for NER's unknown-key alert, once per time it was refused", str(held))

    # ---- 6. a DUPLICATE is never answered before the original's OK ------------------------------------------------
    # DUPLICATE lets the node delete the alert from its outbox, so it must not come before the original is on disk.
    # The same envelope twice, back to back, usually lands in one transaction: the second was once answered
    # DUPLICATE at once, while the first's OK still waited for the commit (which could then fail).
    twice = region.seal(x.alert("SDN", C.SMUGGLING, headline="SDN sent twice"))
    n_log = len(sdn.ack_log)
    r1 = sdn.publish(twice)
    r2 = sdn.publish(x.pb.Envelope.FromString(twice.SerializeToString()))
    net.run_until(lambda: r1 in sdn.acks and r2 in sdn.acks, t.t(10))
    answers = [(a.ref, x.code_name(a.result)) for a in sdn.ack_log[n_log:]]
    t.eq(answers, [(r1, "OK"), (r2, "DUPLICATE")], "the same alert twice at once: OK first, then DUPLICATE")
    if r1 in sdn.acks and r2 in sdn.acks:
        t.eq(sdn.acks[r2].seq, sdn.acks[r1].seq, "the DUPLICATE names the original's seq")

    t.check(broker.alive(), "broker still running")
    net.check_protocol()
    net.close()


if __name__ == "__main__":
    x.main(main, deadline_s=120)
