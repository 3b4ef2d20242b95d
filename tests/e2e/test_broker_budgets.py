"""test_broker_budgets.py — what one member's key can make the broker do besides publishing is bounded
(docs/security.md, "Bad-input isolation"; broker/broker.h HELLO_*, STRAY_*, NODE_LOG_*).

Real xba-broker; TCD and SDN are Python nodes (docs/protocol.md) whose traffic must go on throughout.  NER is the
compromised member, on raw CURVE connections with its own key:

1. A Hello storm (300 Hellos back to back, alternating a rewind to 0 and a resume point far ahead) on one
   connection, then the connection closed unread: at most the burst of Hellos is handled (Welcome), the rest are
   answered RATE_LIMITED and not handled, and the broker is still running.  (Before the budget, this storm made
   libzmq 4.3.4 abort the broker.)
2. A second connection that never says Hello and sends 500 Heartbeats: it gets a few NOT_READY answers, not 500
   (unread answers were the broker's memory).
3. 2000 undecodable frames on a session: the broker answers every one, but writes at most the node's log budget
   of event=frame.rejected records, then one event=log.suppressed counting the rest.
4. After a pause NER connects as an honest agent would, and is welcomed; TCD's alert reaches SDN all along.

usage: /usr/bin/python3 tests/e2e/test_broker_budgets.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
import zmq  # noqa: E402

HELLO_BURST, HELLO_PER_SECOND = 20, 1.0          # broker/broker.h
STRAY_BURST, STRAY_PER_SECOND = 20, 2.0
NODE_LOG_BURST, NODE_LOG_PER_SECOND = 100, 10.0

RULES = """\
rules:
  - name: health-to-all
    when: { category: health }
    to: [members]
"""


def raw_socket(ctx, region, node_id, broker):
    s = ctx.socket(zmq.DEALER)
    for opt, val in ((zmq.LINGER, 0), (zmq.SNDHWM, 100000), (zmq.RCVHWM, 100000), (zmq.MAXMSGSIZE, -1)):
        s.setsockopt(opt, val)
    secret = region.nodes[node_id].curve_secret()
    s.curve_secretkey = secret
    s.curve_publickey = zmq.curve_public(secret)
    s.curve_serverkey = broker.public_key
    s.connect(broker.endpoint)
    return s


def hello(node_id, resume_after):
    return x.frame(hello=x.pb.Hello(protocol_version=1, node_id=node_id, resume_after=resume_after, credit=64,
                                    software="test_broker_budgets", deliver_batches=True))


def drain(sock, seconds, net):
    """Every frame sock receives within seconds (the other nodes pumped meanwhile)."""
    got = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        while sock.poll(0):
            f = x.pb.Frame()
            f.ParseFromString(sock.recv())
            got.append(f)
        net.sleep(0.05)
    return got


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES).start()
    net = x.Net(t)
    nodes = {n: net.node(region, n, broker) for n in ("TCD", "SDN")}
    net.connect_all()
    ctx = zmq.Context()
    t.defer(lambda: ctx.destroy(0))

    def traffic_flows(label):
        a = x.alert("TCD", x.C.HEALTH, headline=f"probe {label}")
        nodes["TCD"].publish(region.seal(a))
        t.check(net.run_until(lambda: nodes["SDN"].got(a.id), t.t(10)), f"{label}: TCD's alert reaches SDN")

    # Something in the journal for NER, so that a rewind has deliveries to queue again.
    for i in range(30):
        nodes["TCD"].publish(region.seal(x.alert("TCD", x.C.HEALTH, headline=f"backlog {i}")))
    net.run_until(lambda: len(nodes["SDN"].inbox) >= 30, t.t(10))
    traffic_flows("before")

    # ---- 1. the Hello storm ------------------------------------------------------------------------------------
    mark = broker.log_size()
    storm = raw_socket(ctx, region, "NER", broker)
    started = time.monotonic()
    for i in range(300):
        storm.send(hello("NER", 0 if i % 2 else 1000000))
    replies = drain(storm, 2.0, net)
    elapsed = time.monotonic() - started
    welcomes = [f for f in replies if f.WhichOneof("body") == "welcome"]
    limited = [f for f in replies if f.WhichOneof("body") == "error" and f.error.code == x.pb.RATE_LIMITED]
    allowed = HELLO_BURST + int(elapsed * HELLO_PER_SECOND) + 1
    t.log(f"Hello storm: {len(welcomes)} Welcome, {len(limited)} RATE_LIMITED in {elapsed:.1f} s")
    t.check(0 < len(welcomes) <= allowed, f"300 Hellos: at most the burst handled ({len(welcomes)} Welcome, "
            f"allowed {allowed})")
    t.check(len(limited) >= 300 - allowed and "Hellos" in limited[0].error.message if limited else False,
            "... the others answered RATE_LIMITED, saying why", str(limited[:1]))
    storm.close(0)
    net.sleep(1.0)
    t.check(broker.alive(), "the storm's connection closed unread: the broker is still running")
    refused = broker.events("hello.refused", since=mark)
    t.check(refused and all(r.get("reason") == "too-many-hellos" for r in refused),
            "event=hello.refused reason=too-many-hellos logged", str(refused[:2]))
    traffic_flows("after the Hello storm")

    # ---- 2. a connection that never says Hello and never reads -------------------------------------------------
    stray = raw_socket(ctx, region, "NER", broker)
    time.sleep(0.5)                               # the CURVE handshake
    started = time.monotonic()
    for _ in range(500):
        stray.send(x.frame(heartbeat=x.pb.Heartbeat(time_ms=x.now_ms())))
    answers = drain(stray, 1.5, net)
    elapsed = time.monotonic() - started
    not_ready = [f for f in answers if f.WhichOneof("body") == "error" and f.error.code == x.pb.NOT_READY]
    allowed = STRAY_BURST + int(elapsed * STRAY_PER_SECOND) + 1
    t.log(f"500 frames before Hello: {len(not_ready)} NOT_READY answers in {elapsed:.1f} s")
    t.check(1 <= len(not_ready) <= allowed and len(answers) == len(not_ready),
            f"500 frames before Hello: the first answered NOT_READY, at most {allowed} answers in all "
            f"(got {len(not_ready)})")
    stray.close(0)
    traffic_flows("after the frames before Hello")

    # ---- 3. undecodable frames on a session: every one answered, the log bounded --------------------------------
    net.sleep(max(0.0, NODE_LOG_BURST / NODE_LOG_PER_SECOND - (time.monotonic() - started)))   # a full budget
    ner = net.node(region, "NER", broker)
    ner.connect()
    t.check(ner.wait_welcome(), "NER opens a session")
    mark = broker.log_size()
    n_err = len(ner.errors)
    started = time.monotonic()
    for i in range(2000):
        ner.send_raw(b"\xff\xff\xff" + bytes([i % 251]))
        if i % 200 == 0:
            net.pump(0)
    net.run_until(lambda: len(ner.errors) - n_err >= 2000, t.t(15))
    t.eq(len(ner.errors) - n_err, 2000, "2000 undecodable frames: each answered with an Error")
    net.sleep(1.0)
    ner.send_raw(b"\xff\xff\xff\x00")                # once the budget allows: the count of what was left out
    net.run_until(lambda: len(ner.errors) - n_err >= 2001, t.t(5))
    broker.wait_log(r"event=log\.suppressed node=NER.*", t.t(5), since=mark, net=net)
    net.sleep(0.5)
    elapsed = time.monotonic() - started
    rejected = broker.events("frame.rejected", since=mark)
    allowed = NODE_LOG_BURST + int(elapsed * NODE_LOG_PER_SECOND) + 1
    t.log(f"2001 undecodable frames in {elapsed:.1f} s: {len(rejected)} frame.rejected records")
    t.check(NODE_LOG_BURST // 2 <= len(rejected) <= allowed,
            f"... at most {allowed} event=frame.rejected records written (got {len(rejected)})")
    summaries = broker.events("log.suppressed", since=mark)
    counted = sum(int(r.get("records", 0)) for r in summaries if r.get("node") == "NER")
    # (the first summary also counts what the Hello storm's refusals left out)
    t.check(summaries and len(rejected) + counted >= 2001,
            "... and event=log.suppressed node=NER records=N count the rest: none unaccounted for",
            f"{len(rejected)} written + {counted} counted in {len(summaries)} summaries")

    # ---- 4. the node, honest again, and everyone else -------------------------------------------------------------
    t.check(ner.state == "open" and ner.status() is not None, "NER's session still serves it")
    traffic_flows("at the end")
    t.check(broker.alive(), "the broker ran throughout")
    t.eq(broker.stop(), 0, "SIGTERM: broker exits 0")


if __name__ == "__main__":
    x.main(main)
