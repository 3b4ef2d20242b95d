"""test_agent_lanflaky.py — duty officers' watches over a bad LAN, and watches whose clients froze.

An officer's `xba watch` reaches NER's agent over its LAN endpoint through a relay in this process that can hold
everything (a switch or a laptop's Wi-Fi that stops forwarding without closing anything), drop every connection,
and refuse new ones for a while (a flapping link).  LBY is a protocol node of xbatest.py that sends the alerts.

1. A link that holds everything for 45 s: before, the watch printed nothing for as long as it lasted (its status
   question timed out and counted as "still served") and an emergency NER had stored showed up only when the link
   came back.  Now the watch says within seconds that it has no answer or no connection, says when it is connected
   again, and then shows the emergency, once.
2. A drop, then connections refused for 4 s: before, the watch's one attempt to subscribe again failed and the
   watch ended (exit 2, blaming the officer's key).  Now it keeps trying, says so, and shows the next alert.  And
   `xba send --wait` whose connection drops before the broker's answer asks the agent for it (it exited 3).
3. A watch stopped with SIGSTOP: the agent's pings go unanswered and it disconnects it (what was queued for it is
   freed, `local.unsubscribed reason=disconnected` at the next push); resumed, the watch subscribes again and shows what
   arrived meanwhile, once.
4. Places: 64 watches whose clients never speak again (a terminal frozen with Ctrl-S: the process is alive and its
   connection answers pings, but it sends nothing) took every place, the agent's own console's included.  Now the
   LAN may take at most 56 (a LAN watch past that is refused, naming the LAN; one on the agent's own socket is
   accepted), and once a silent watch has said nothing for 60 s, a new watch takes its place
   (`local.unsubscribed reason=silent`).

usage: /usr/bin/python3 tests/e2e/test_agent_lanflaky.py BUILD_DIR SOURCE_ROOT
"""
import os
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
import zmq  # noqa: E402


class Relay:
    """127.0.0.1:port -> 127.0.0.1:target.  mode "pass" forwards, "hold" forwards nothing and closes nothing (data
    waits here), "refuse" closes each new connection at once; drop() closes every connection."""

    def __init__(self, target):
        self.target = target
        self.mode = "pass"
        self.pairs = []
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.mode == "refuse":
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            threading.Thread(target=x.pump_bytes, args=(client, upstream, None, self._hold), daemon=True).start()
            threading.Thread(target=x.pump_bytes, args=(upstream, client, None, self._hold), daemon=True).start()

    def _hold(self):
        while self.mode == "hold" and not self.closed:
            time.sleep(0.05)

    def drop(self):
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.mode = "pass"
        self.listener.close()
        self.drop()


def subscribe_raw(ctx, endpoint, officer=None, agent_public=None):
    """A DEALER that subscribes and then never says anything again: a frozen terminal's connection."""
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    if officer is not None:
        s.curve_serverkey = agent_public
        s.curve_publickey, s.curve_secretkey = officer
    s.connect(endpoint)
    s.send(x.pb.LocalFrame(ref=1, subscribe=x.pb.SubscribeRequest()).SerializeToString())
    return s


def answered(s, timeout):
    """The first frame s receives within timeout: (body name, error message) or None."""
    if not s.poll(int(timeout * 1000)):
        return None
    f = x.pb.LocalFrame()
    f.ParseFromString(s.recv())
    return f.WhichOneof("body"), (f.error.message if f.WhichOneof("body") == "error" else "")


def main(t):
    region = x.Region(t, "lanflaky-e2e")
    region.add("LBY", name="Libya", role="member", neighbours=["NER"], may_broadcast=True)
    region.add("NER", name="Niger", role="member")
    region.write()
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
    keys = os.path.join(t.dir, "lan-keys")
    for args in (["--lan", "--out", os.path.join(keys, "endpoint")],
                 ["--officer", "amina.issoufou", "--out", os.path.join(keys, "amina")]):
        r = x.cli(t, None, "keygen", *args)
        if r.rc != 0:
            raise RuntimeError(f"xba keygen {args}: {r.err}")
    with open(os.path.join(keys, "amina", "officer.curve.pub")) as f:
        amina_public = f.read().strip()
    with open(os.path.join(keys, "endpoint", "lan.curve.pub")) as f:
        agent_public = f.read().strip().encode()
    # Seven more officers, eight watches each: 56, every place the LAN may take (part 4).
    crowd = [zmq.curve_keypair() for _ in range(7)]
    officers = "\n" + "\n".join(
        [f'  - name: "amina.issoufou"\n    curve_key: "{amina_public}"'] +
        [f'  - name: "officer-{i}"\n    curve_key: "{pub.decode()}"' for i, (pub, _) in enumerate(crowd)])
    lan_port = x.free_port()
    ner = x.Agent(t, region, "NER", broker, lan_listen=f'"tcp://127.0.0.1:{lan_port}"',
                  lan_curve_secret_key=os.path.join(keys, "endpoint", "lan.curve.key"), officers=officers)
    ner.start(link=True)
    net = x.Net(t)
    lby = net.node(region, "LBY", broker)
    net.connect_all()
    relay = Relay(lan_port)
    t.defer(relay.close)
    lan = ["--agent", f"tcp://127.0.0.1:{relay.port}", "--agent-key", os.path.join(keys, "endpoint", "lan.curve.pub"),
           "--officer-key", os.path.join(keys, "amina", "officer.curve.key")]

    def publish(headline, emergency=False):
        a = x.alert("LBY", severity=x.C.EXTREME if emergency else x.C.SEVERE, emergency=emergency, headline=headline)
        ack = lby.publish_wait(region.seal(a))
        if ack is None or x.code_name(ack.result) != "OK":
            raise RuntimeError(f"LBY's publish of {headline!r}: {ack}")
        return a.id

    mark = ner.log_size()
    watch = x.Watch(t, None, "--remind", "0", *lan)
    ner.wait_log(r"event=local\.subscribed peer=\"lan:amina\.issoufou\"", t.t(15), since=mark)
    first = publish("Patrouille : 12 migrants secourus près de Madama")
    t.check(watch.wait(lambda: watch.has(first), t.t(15)), "an officer's watch over the LAN shows LBY's alert")

    # ---- 1. the link holds everything for 45 s ---------------------------------------------------------------
    relay.mode = "hold"
    held_at = time.monotonic()
    net.run_until(lambda: False, 2.0)
    emergency = publish("Naufrage au large de Zouara : 40 personnes à l'eau", emergency=True)
    ner.wait_status(lambda s: s.get("inbox_count", 0) >= 2, t.t(10))
    said = watch.wait(lambda: "NO ANSWER FROM THE AGENT" in watch.stderr() or
                      "NO CONNECTION TO THE AGENT" in watch.stderr(), 40)
    said_after = time.monotonic() - held_at
    t.check(said and not watch.has(emergency),
            "while the LAN holds everything, the watch says it has no answer or no connection from the agent "
            f"(after {said_after:.0f} s)", watch.stderr()[-600:])
    net.run_until(lambda: False, max(0.0, 45 - (time.monotonic() - held_at)))
    relay.mode = "pass"
    back = time.monotonic()
    shown = watch.wait(lambda: watch.has(emergency), t.t(40))
    t.check(shown and watch.proc.poll() is None,
            f"the link back, the watch shows the emergency NER stored meanwhile ({time.monotonic() - back:.1f} s "
            "later), and keeps running", watch.stderr()[-600:])
    t.eq(len(watch.by_id(emergency)), 1, "... once")

    # ---- 2. a drop, then connections refused for 4 s (a flapping link) -----------------------------------------
    relay.mode = "refuse"
    relay.drop()
    net.run_until(lambda: False, 4.0)
    relay.mode = "pass"
    t.check(watch.wait(lambda: "connected to the agent again" in watch.stderr().split("NO CONNECTION")[-1],
                       t.t(40)),
            "after a drop and 4 s of refused connections the watch subscribes again by itself",
            watch.stderr()[-600:])
    after = publish("Deuxième groupe secouru près de Madama")
    t.check(watch.wait(lambda: watch.has(after), t.t(20)) and watch.proc.poll() is None,
            "... shows the next alert, and is still running (it ended, exit 2, blaming the officer's key)",
            watch.stderr()[-600:])
    ids = watch.ids()
    t.eq(len(ids), len(set(ids)), "no alert shown twice over the whole bad spell")
    watch.stop()

    # ---- 2b. `xba send --wait` whose connection drops between "queued" and the broker's answer -----------------
    # The broker is held (SIGSTOP) so that the answer cannot come before the drop.  Before, send exited 3 ("not
    # yet confirmed") at the drop though the broker accepted it a moment later; now it asks the agent again.
    os.kill(broker.proc.pid, signal.SIGSTOP)
    sender = x.Background(t, None, "send", "--category", "smuggling", "--severity", "severe", "--headline",
                          "Convoi signalé vers Dirkou", "--wait", "60", *lan)
    queued = sender.wait(lambda: "queued at the agent" in sender.text(), t.t(20))
    relay.drop()
    net.run_until(lambda: False, 1.0)
    os.kill(broker.proc.pid, signal.SIGCONT)
    rc = sender.wait_exit(t.t(70))
    t.check(queued and rc == 0 and "accepted by the broker" in sender.text() and
            "asking it again for the broker's answer" in sender.stderr(),
            "xba send --wait over the LAN: the connection drops while the broker has not answered; it asks the agent "
            "again and reports the acceptance (exit 0)", f"rc={rc} out={sender.text()[-300:]} "
            f"err={sender.stderr()[-300:]}")

    # ---- 3. a watch stopped with SIGSTOP is disconnected, and resumes -------------------------------------------
    frozen = ner.watch("--remind", "0")
    ner.wait_log(r"event=local\.subscribed peer=ipc", t.t(15))
    frozen.proc.send_signal(signal.SIGSTOP)
    net.run_until(lambda: False, 58.0)          # > the agent's 10 s pings and 45 s without an answer
    mark = ner.log_size()
    meanwhile = publish("Convoi intercepté à Toummo")
    gone = ner.wait_log(r"event=local\.unsubscribed peer=ipc reason=disconnected", t.t(15), since=mark)
    t.check(gone is not None, "the agent disconnected the stopped watch (its pings unanswered): the next push finds "
            "it gone and frees its place", ner.log_text(mark)[-600:])
    frozen.proc.send_signal(signal.SIGCONT)
    t.check(frozen.wait(lambda: frozen.has(meanwhile), t.t(40)) and len(frozen.by_id(meanwhile)) == 1,
            "resumed, it subscribes again and shows the alert that arrived while it was stopped, once",
            frozen.stderr()[-600:])
    frozen.stop()

    # ---- 4. places: 56 for the LAN, the rest for the agent's own machine; silent ones give theirs ---------------
    ctx = zmq.Context()
    t.defer(lambda: ctx.destroy(linger=0))
    lan_endpoint = f"tcp://127.0.0.1:{lan_port}"
    silent = [subscribe_raw(ctx, lan_endpoint, officer, agent_public) for officer in crowd for _ in range(8)]
    got = [answered(s, t.t(20)) for s in silent]
    t.eq(sum(1 for g in got if g and g[0] == "status_reply"), 56, "56 silent LAN watches subscribe")
    filled_at = time.monotonic()
    lan_more = x.Watch(t, None, "--remind", "0", *lan)
    t.check(lan_more.wait(lambda: lan_more.proc.poll() is not None or "over the LAN" in lan_more.stderr(), t.t(20))
            and "over the LAN (the rest are kept for its own machine)" in lan_more.stderr(),
            "a 57th watch over the LAN is refused, naming the LAN's share", lan_more.stderr()[-400:])
    lan_more.stop()
    mark = ner.log_size()
    console = ner.watch("--remind", "0")
    t.check(ner.wait_log(r"event=local\.subscribed peer=ipc", t.t(20), since=mark) is not None and
            console.proc.poll() is None, "a watch on the agent's own socket is accepted beside them",
            console.stderr()[-400:])
    console.stop()
    # Fill the rest with silent watches on the agent's own socket: 64 in all.
    ipc_endpoint = "ipc://" + ner.socket
    rest = [subscribe_raw(ctx, ipc_endpoint) for _ in range(8)]
    t.check(all((answered(s, t.t(20)) or ("", ""))[0] == "status_reply" for s in rest),
            "8 silent watches on the agent's own socket: every place is taken")
    net.run_until(lambda: False, max(0.0, 62 - (time.monotonic() - filled_at)))
    mark = ner.log_size()
    newcomer = ner.watch("--remind", "0")
    t.check(ner.wait_log(r"event=local\.subscribed peer=ipc", t.t(20), since=mark) is not None and
            newcomer.proc.poll() is None, "after 60 s of silence, a new watch on the agent's socket takes a silent "
            "one's place", newcomer.stderr()[-400:] + ner.log_text(mark)[-400:])
    t.check(ner.wait_log(r"event=local\.unsubscribed peer=\S+ reason=silent silent_s=\d+", t.t(5), since=mark)
            is not None, "... and the agent logs which watch gave its place (reason=silent)", ner.log_text(mark)[-400:])
    last = publish("Dernier rapport de la nuit")
    t.check(newcomer.wait(lambda: newcomer.has(last), t.t(20)), "... and the new watch shows the next alert")
    newcomer.stop()
    for s in silent + rest:
        s.close()


if __name__ == "__main__":
    x.main(main, deadline_s=400)
