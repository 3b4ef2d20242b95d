"""test_broker_curvekey.py — a node's CURVE key changed in region.yaml locks its old connection out at the reload,
not at its next reconnect (docs/operations.md section 5: a stolen server's key taken out must stop working).

Real xba-broker; NER, DZA, LBY and TCD are Python nodes (docs/protocol.md).  After NER's first alert reaches DZA,
the secretariat gives DZA a new CURVE key (a second `xba keygen`) and reloads the broker.  The broker logs
event=node.key_changed and drops DZA's session; the connection made with the old key gets nothing more (NER's
second alert is routed to DZA and stays queued), and every frame it sends is answered NOT_READY naming the key,
a publish included (nothing journaled).  A new connection with the new key is welcomed and gets the queued alert.
Nodes whose key did not change keep their sessions through the reload.

usage: /usr/bin/python3 tests/e2e/test_broker_curvekey.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402


def main(t):
    region = x.region_of_five(t, "curvekey-e2e")
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
    net = x.Net(t)
    nodes = {nid: net.node(region, nid, broker) for nid in ("NER", "DZA", "LBY", "TCD")}
    net.connect_all()

    first = x.alert("NER", headline="Convoi vers In Guezzam")
    ack = nodes["NER"].publish_wait(region.seal(first))
    t.check(ack is not None and x.code_name(ack.result) == "OK", "NER's first alert: accepted", ack)
    t.check(net.run_until(lambda: nodes["DZA"].got(first.id), t.t(5)), "DZA (old key) receives it")

    # ---- the secretariat gives DZA a new CURVE key --------------------------------------------------------------
    new_dir = os.path.join(t.dir, "dza-new-keys")
    entry = x.parse_keygen_entry(x.keygen(t, "DZA", new_dir))
    region.nodes["DZA"].curve_key = entry["curve_key"]
    mark = broker.log_size()
    broker.write_region()
    broker.hup()
    t.check(broker.wait_log(r"event=node\.key_changed node=DZA", t.t(10), since=mark, net=net) is not None,
            "broker: node.key_changed for DZA at the reload")
    t.check(broker.wait_log(r"event=node\.disconnected node=DZA reason=curve-key-changed", t.t(5), since=mark,
                            net=net) is not None, "broker: DZA's session dropped (curve-key-changed)")
    t.eq([r.get("node") for r in broker.events("node.key_changed", since=mark)], ["DZA"],
         "no other node's session is touched")

    second = x.alert("NER", headline="Deuxieme convoi vers In Guezzam")
    ack = nodes["NER"].publish_wait(region.seal(second))
    t.check(ack is not None and x.code_name(ack.result) == "OK" and ack.recipients == 3,
            "NER's second alert: accepted for DZA, LBY and TCD", ack)
    net.run_until(lambda: nodes["LBY"].got(second.id) and nodes["TCD"].got(second.id), t.t(5))
    net.sleep(t.t(1))
    t.check(nodes["LBY"].got(second.id) and nodes["TCD"].got(second.id), "LBY and TCD receive it")
    t.check(not nodes["DZA"].got(second.id), "DZA's old-key connection does not")

    # Its next frame (a heartbeat) is refused, and so is its attempt to come back with the old key.
    net.run_until(lambda: any("CURVE key" in e.message for e in nodes["DZA"].errors), t.t(15))
    refusals = [e for e in nodes["DZA"].errors if "CURVE key" in e.message]
    t.check(len(refusals) >= 1 and all(x.code_name(e.code) == "NOT_READY" for e in refusals),
            "a frame on the old key: Error NOT_READY naming the CURVE key",
            [(x.code_name(e.code), e.message) for e in nodes["DZA"].errors])
    t.check(broker.wait_log(r"event=node\.refused reason=unknown-curve-key", t.t(10), since=mark, net=net)
            is not None, "reconnecting with the old key: refused at the handshake (unknown-curve-key)")
    t.check(all(r.get("node") != "DZA" for r in broker.events("alert.accepted", since=mark)),
            "nothing of DZA's journaled since the reload")

    # ---- DZA reconnects with its new key ------------------------------------------------------------------------
    nodes["DZA"].close()
    region.nodes["DZA"].keys_dir = new_dir
    dza_new = net.node(region, "DZA", broker)
    net.connect_all([dza_new])
    t.check(dza_new.welcome is not None, "DZA with its new key: welcomed")
    t.check(net.run_until(lambda: dza_new.got(second.id), t.t(5)), "DZA (new key) receives the queued alert")


if __name__ == "__main__":
    x.main(main)
