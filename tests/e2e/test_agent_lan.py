"""test_agent_lan.py — the agent's optional LAN endpoint for officers' workstations: a CURVE server whose ZAP
handler admits only the officers listed in agent.yaml.  A listed officer's `xba --agent tcp://... --agent-key
--officer-key` works (status, send); an unlisted key is refused (exit 2, one clear line) and the agent logs
the refusal; the IPC socket keeps working for local officers throughout.  A SIGHUP applies agent.yaml's officers:
an added officer is admitted, a removed one's open watch ends and her key is refused (a send says nothing was
queued), other changed keys are named as waiting for a restart, and a broken agent.yaml changes nothing.

usage: /usr/bin/python3 tests/e2e/test_agent_lan.py BUILD_DIR SOURCE_ROOT
"""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
import zmq  # noqa: E402

RULES = """\
rules:
  - name: crime-to-neighbours
    when: { category: [smuggling, trafficking, border-incident] }
    to: [neighbours]
"""


def json_text(entry):
    return repr(entry)


def curve_public(path):
    with open(path) as f:
        return f.read().strip()


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES).start()
    keys = os.path.join(t.dir, "lan-keys")
    # The agent's LAN endpoint key and a listed officer's, as docs/agent.md says to make them: CURVE pairs only.
    r = x.cli(t, None, "keygen", "--lan", "--out", os.path.join(keys, "endpoint"))
    t.check(r.rc == 0 and sorted(os.listdir(os.path.join(keys, "endpoint"))) == ["lan.curve.key", "lan.curve.pub"],
            "xba keygen --lan: the endpoint's CURVE pair only, no signing key", f"rc={r.rc} {r.out} {r.err}")
    r = x.cli(t, None, "keygen", "--officer", "amina.issoufou", "--out", os.path.join(keys, "amina"))
    amina_key = os.path.join(keys, "amina", "officer.curve.key")
    amina_pub = os.path.join(keys, "amina", "officer.curve.pub")
    t.check(r.rc == 0 and sorted(os.listdir(os.path.join(keys, "amina"))) == ["officer.curve.key",
                                                                            "officer.curve.pub"] and
            os.stat(amina_key).st_mode & 0o777 == 0o600,
            "xba keygen --officer: the officer's CURVE pair only (secret 0600), no signing key", f"rc={r.rc} {r.err}")
    entry = r.out[r.out.index("  - name:"):] if "  - name:" in r.out else ""
    t.check(f'curve_key: "{curve_public(amina_pub)}"' in entry,
            "... and prints the officers: entry with its public key", r.out)
    x.keygen(t, "STRANGER", keys, role="observer")         # a key the agent does not list
    port = x.free_port()
    officers = "\n" + entry.rstrip()                       # pasted under officers: as printed
    ner = x.Agent(t, region, "NER", broker, lan_listen=f'"tcp://127.0.0.1:{port}"',
                  lan_curve_secret_key=os.path.join(keys, "endpoint", "lan.curve.key"), officers=officers)
    lby = x.Agent(t, region, "LBY", broker)
    ner.start(link=True)
    lby.start(link=True)
    lan = ["--agent", f"tcp://127.0.0.1:{port}", "--agent-key", os.path.join(keys, "endpoint", "lan.curve.pub")]

    r = x.cli(t, None, "status", "--json", *lan, "--officer-key", amina_key)
    j = r.json()
    t.check(r.rc == 0 and j and j[0].get("node_id") == "NER" and j[0].get("link_up") is True,
            "a listed officer's status over the LAN endpoint: NER, link up", f"rc={r.rc} out={r.out} err={r.err}")

    r = x.cli(t, None, "send", *lan, "--officer-key", amina_key,
              "--category", "smuggling", "--severity", "severe", "--lang", "fr",
              "--headline", "Convoi signalé près d'Assamaka", "--author", "amina.issoufou")
    t.check(r.rc == 0 and "accepted by the broker" in r.out, "a listed officer sends over the LAN endpoint",
            f"rc={r.rc} out={r.out} err={r.err}")

    r = x.cli(t, None, "status", *lan, "--officer-key", os.path.join(keys, "STRANGER.curve.key"),
              timeout=t.t(40))
    t.check(r.rc == 2 and len(r.err_lines()) == 1 and "refused this officer key" in r.err,
            "an unlisted officer key: exit 2, one line saying the agent refused the key", f"rc={r.rc} err={r.err}")
    t.check(ner.wait_log(r"refus|denied|unknown", t.t(5)) is not None,
            "the agent logs the refused LAN key", ner.log_text()[-800:])

    r = ner.cli("status", "--json")
    t.check(r.rc == 0 and r.json() and r.json()[0].get("outbox_depth") == 0,
            "the local socket still works, outbox empty", f"rc={r.rc} out={r.out} err={r.err}")
    r = x.cli(t, None, "status", "--agent", f"tcp://127.0.0.1:{port}", "--officer-key",
              amina_key)
    t.check(r.rc == 2 and "--agent-key" in r.err, "--agent without --agent-key: exit 2 naming --agent-key",
            f"rc={r.rc} err={r.err}")

    # A TCP connection that never does its CURVE handshake holds a descriptor: the agent closes it after 5 s (libzmq
    # would wait 30), so that a keyless flood from the LAN cannot run it out of them.
    raw = socket.create_connection(("127.0.0.1", port), timeout=t.t(20))
    opened = time.monotonic()
    try:
        closed = raw.recv(4096) is not None
        while True:                                # the greeting first, then the close (b"")
            chunk = raw.recv(4096)
            if chunk == b"":
                break
    except (socket.timeout, OSError):
        closed = False
    raw.close()
    t.check(closed and time.monotonic() - opened < 15, "a LAN connection that never completes its handshake is "
            "closed by the agent (after 5 s, not libzmq's 30)", f"{time.monotonic() - opened:.1f} s")

    # One officer's key cannot sign as another officer: the key's name goes in beside the name given.
    r = x.cli(t, None, "send", *lan, "--officer-key", amina_key,
              "--category", "smuggling", "--severity", "severe", "--headline", "Au nom d'un autre",
              "--author", "bob.diallo", "--json")
    sent = (r.json() or [{}])[0].get("alert_id")
    mine = [e for e in ner.history("--outgoing") if e.get("id") == sent]
    t.check(sent and mine and mine[0].get("author") == "bob.diallo (key amina.issoufou)",
            "an alert sent with Amina's key as --author bob.diallo is signed as 'bob.diallo (key amina.issoufou)'",
            str(mine[:1]) + repr(r.err))
    r = lby.cli("send", "--category", "smuggling", "--severity", "severe", "--headline", "Convoi vers Toummo",
                "--wait", "10")                 # LBY's neighbour NER receives it
    end = time.monotonic() + t.t(10)
    inbox = []
    while not inbox and time.monotonic() < end:
        inbox = [e for e in ner.history() if not e.get("outgoing") and e.get("origin") == "LBY"]
        time.sleep(0.1)
    if inbox:
        r = x.cli(t, None, "ack", inbox[0]["id"], *lan, "--officer-key", amina_key,
                  "--officer", "bob.diallo")
        after = [e for e in ner.history() if e.get("id") == inbox[0]["id"]]
        t.check(r.rc == 0 and after and after[0].get("acknowledged_by") == "bob.diallo (key amina.issoufou)",
                "... and an ack with her key as --officer bob.diallo is recorded as 'bob.diallo (key amina.issoufou)'",
                str(after[:1]) + repr(r.err))
    else:
        t.check(False, "NER has an alert in its inbox to acknowledge over the LAN", str(ner.history()[:2]))

    # Watches: one officer's key gets at most 8; 64 watches killed without a word do not lock the others out.
    amina = lan + ["--officer-key", amina_key]
    mark = ner.log_size()
    hers = [x.Watch(t, None, *amina) for _ in range(9)]
    refused = ner.wait_log(r'event=local\.subscribe_refused peer="lan:amina\.issoufou" reason=too-many-for-officer',
                           t.t(20), since=mark)
    t.check(refused is not None and len(ner.events("local.subscribed", since=mark)) == 8,
            "a 9th watch from one officer's key is refused; the first 8 are served", ner.log_text(mark)[-500:])
    for w in hers:
        w.stop()
    mark = ner.log_size()
    dead = [ner.watch() for _ in range(64)]
    end = time.monotonic() + t.t(30)
    while len(ner.events("local.subscribed", since=mark)) < 64 and time.monotonic() < end:
        time.sleep(0.2)
    t.eq(len(ner.events("local.subscribed", since=mark)), 64, "64 local watches subscribed")
    for w in dead:
        w.proc.kill()
    for w in dead:
        w.proc.wait()
    mark = ner.log_size()
    live = ner.watch()
    t.check(ner.wait_log(r"event=local\.subscribed", t.t(15), since=mark) is not None and
            not ner.events("local.subscribe_refused", since=mark),
            "after 64 watches were killed without a word, a new watch is served (the dead ones are forgotten)",
            ner.log_text(mark)[-500:])
    live.stop()

    # A client's junk frames: each answered, but the log is budgeted (100 at once, then 10 a second) and counted.
    ctx = zmq.Context()
    junk = ctx.socket(zmq.DEALER)
    junk.setsockopt(zmq.LINGER, 0)
    junk.connect("ipc://" + ner.socket)
    mark = ner.log_size()
    started = time.monotonic()
    for i in range(2000):
        junk.send(b"\xff\xff\xff" + bytes([i % 251]))
    answered = 0
    end = time.monotonic() + t.t(15)
    while answered < 2000 and time.monotonic() < end:
        if junk.poll(200):
            junk.recv()
            answered += 1
    time.sleep(1.2)
    junk.send(b"\xff\xff\xff")                      # after a second: the count of what was left out
    junk.poll(t.t(5) * 1000)
    elapsed = time.monotonic() - started
    end = time.monotonic() + t.t(5)
    while not ner.events("local.log_suppressed", since=mark) and time.monotonic() < end:
        time.sleep(0.1)
    junk.close(0)
    ctx.term()
    rejected = ner.events("local.rejected", since=mark)
    counted = sum(int(e.get("records", 0)) for e in ner.events("local.log_suppressed", since=mark))
    t.check(answered == 2000 and len(rejected) <= 100 + int(elapsed * 10) + 1 and len(rejected) + counted >= 2001,
            "2000 junk frames on the local socket: each answered, at most the budget logged, the rest counted "
            "(event=local.log_suppressed)", f"answered {answered}, {len(rejected)} logged, {counted} counted")

    # An officer leaves: taken out of agent.yaml's officers, SIGHUP.  Her open watch ends with a line saying why,
    # and her key's next request is refused, without a restart; another officer and the local socket go on.
    x.keygen(t, "BOB", keys, role="observer")
    bob = lan + ["--officer-key", os.path.join(keys, "BOB.curve.key")]
    both = '[{name: amina.issoufou, curve_key: "%s"}, {name: bob.diallo, curve_key: "%s"}]' % (
        curve_public(amina_pub), curve_public(os.path.join(keys, "BOB.curve.pub")))
    mark = ner.log_size()
    ner.write_config(officers=both)
    ner.hup()
    t.check(ner.wait_log(r"event=officers\.reloaded officers=2 added=1 removed=0", t.t(10), since=mark) is not None,
            "SIGHUP with an officer added: event=officers.reloaded added=1", ner.log_text(mark)[-600:])
    r = x.cli(t, None, "status", "--json", *bob, timeout=t.t(40))
    t.check(r.rc == 0 and r.json() and r.json()[0].get("node_id") == "NER",
            "the officer added by SIGHUP is admitted without a restart", f"rc={r.rc} out={r.out} err={r.err}")
    mark = ner.log_size()
    her_watch = x.Watch(t, None, *amina)
    t.check(ner.wait_log(r'event=local\.subscribed peer="lan:amina\.issoufou"', t.t(15), since=mark) is not None,
            "Amina watches over the LAN", ner.log_text(mark)[-400:])
    mark = ner.log_size()
    ner.write_config(officers='[{name: bob.diallo, curve_key: "%s"}]' % curve_public(
        os.path.join(keys, "BOB.curve.pub")), credit=32)
    ner.hup()
    t.check(ner.wait_log(r"event=officers\.reloaded officers=1 added=0 removed=1", t.t(10), since=mark) is not None,
            "SIGHUP with Amina taken out: event=officers.reloaded removed=1", ner.log_text(mark)[-600:])
    t.check(ner.wait_log(r"event=config\.restart_needed keys=credit ", t.t(5), since=mark) is not None,
            "... and the other key changed (credit) is named as waiting for a restart", ner.log_text(mark)[-600:])
    rc = her_watch.wait_exit(t.t(15))
    t.check(rc == 1 and "no longer" not in her_watch.stderr() and "taken out of the agent's officers" in
            her_watch.stderr(), "her open watch ends (exit 1) saying her key was taken out of the officers",
            f"rc={rc} err={her_watch.stderr()[-300:]}")
    her_watch.stop()
    r = x.cli(t, None, "status", *amina, timeout=t.t(40))
    t.check(r.rc == 2 and "refused this officer key" in r.err,
            "her key's next connection (status) is refused, saying so", f"rc={r.rc} out={r.out} err={r.err}")
    r = x.cli(t, None, "send", *amina, "--category", "smuggling", "--severity", "severe", "--headline",
              "Après son départ", timeout=t.t(40))
    t.check(r.rc == 2 and "refused this officer key" in r.err and "NOT CONFIRMED" not in r.err,
            "... and so is a send: exit 2, nothing queued (not 'NOT CONFIRMED': it never reached the agent)",
            f"rc={r.rc} out={r.out} err={r.err}")
    t.check(not [e for e in ner.history("--outgoing") if "Après son départ" in json_text(e)],
            "... the refused send is not in NER's outbox", "")
    r = x.cli(t, None, "status", "--json", *bob, timeout=t.t(40))
    t.check(r.rc == 0 and r.json() and r.json()[0].get("node_id") == "NER",
            "the officer who stays is still served", f"rc={r.rc} out={r.out} err={r.err}")
    # The last officer leaves too: his entry taken out leaves `officers:` with nothing under it.  That is nobody,
    # not a broken file: a reload refused for it would keep his key in force.
    mark = ner.log_size()
    ner.write_config(officers="")
    ner.hup()
    t.check(ner.wait_log(r"event=officers\.reloaded officers=0 added=0 removed=1 note=.*admits nobody", t.t(10),
                         since=mark) is not None and not ner.events("config.reload_failed", since=mark),
            "SIGHUP with the last officer taken out (officers: empty): reloaded, the LAN endpoint admits nobody",
            ner.log_text(mark)[-600:])
    r = x.cli(t, None, "send", *bob, "--category", "smuggling", "--severity", "severe", "--headline",
              "Après le départ du dernier", timeout=t.t(40))
    t.check(r.rc == 2 and "refused this officer key" in r.err, "... his key is refused from then on",
            f"rc={r.rc} out={r.out} err={r.err}")
    ner.write_config(officers="[]")
    mark = ner.log_size()
    ner.hup()
    t.check(ner.wait_log(r"event=officers\.reloaded officers=0 added=0 removed=0", t.t(10), since=mark) is not None,
            "... and `officers: []` likewise", ner.log_text(mark)[-600:])
    for label, value in (('the whole officers key deleted', None), ('`officers: ""`', '""')):
        ner.write_config(officers='[{name: bob.diallo, curve_key: "%s"}]' % curve_public(
            os.path.join(keys, "BOB.curve.pub")))
        mark = ner.log_size()
        ner.hup()
        ner.wait_log(r"event=officers\.reloaded officers=1", t.t(10), since=mark)
        ner.write_config(officers=value)
        mark = ner.log_size()
        ner.hup()
        t.check(ner.wait_log(r"event=officers\.reloaded officers=0 added=0 removed=1", t.t(10), since=mark)
                is not None and not ner.events("config.reload_failed", since=mark),
                f"... and with {label}: reloaded, nobody admitted (not a failed reload keeping Bob)",
                ner.log_text(mark)[-600:])
    ner.write_config(officers='[{name: bob.diallo, curve_key: "%s"}]' % curve_public(
        os.path.join(keys, "BOB.curve.pub")))
    mark = ner.log_size()
    ner.hup()
    t.check(ner.wait_log(r"event=officers\.reloaded officers=1 added=1", t.t(10), since=mark) is not None,
            "... and Bob put back", ner.log_text(mark)[-600:])
    mark = ner.log_size()
    with open(ner.config_path, "a") as f:
        f.write("officers: [ {name: broken\n")
    ner.hup()
    t.check(ner.wait_log(r"event=config\.reload_failed error=.*agent\.yaml.* keeping_officers=1", t.t(10),
                         since=mark) is not None,
            "SIGHUP with an agent.yaml that does not load: event=config.reload_failed, officers kept",
            ner.log_text(mark)[-600:])
    r = x.cli(t, None, "status", "--json", *bob, timeout=t.t(40))
    t.check(r.rc == 0 and r.json() and ner.alive(), "... and the officer listed before is still served",
            f"rc={r.rc} err={r.err}")
    ner.write_config(officers=officers)

    # Officers' names are the focal point's to choose: a space, or text that reads as key=value, stays inside the
    # peer value of the agent's log records (quoted), so each record still parses as the agent wrote it.
    x.keygen(t, "OMAR", keys, role="observer")
    forged = "Omar level=warn event=node.removed"
    named = '[{name: "Amina Haddad", curve_key: "%s"}, {name: "%s", curve_key: "%s"}]' % (
        curve_public(amina_pub), forged,
        curve_public(os.path.join(keys, "OMAR.curve.pub")))
    mark = ner.log_size()
    ner.write_config(officers=named)
    ner.hup()
    t.check(ner.wait_log(r"event=officers\.reloaded officers=2", t.t(10), since=mark) is not None,
            "SIGHUP with officers named 'Amina Haddad' and '%s'" % forged, ner.log_text(mark)[-600:])
    for who, headline in (("amina/officer", "Convoi près d'Arlit"), ("OMAR", "Convoi près de Dirkou")):
        r = x.cli(t, None, "send", *lan, "--officer-key", os.path.join(keys, f"{who}.curve.key"), "--category",
                  "smuggling", "--severity", "severe", "--headline", headline, timeout=t.t(40))
        t.check(r.rc == 0, f"{who} sends over the LAN", f"rc={r.rc} out={r.out} err={r.err}")
    queued = ner.events("alert.queued", since=mark)
    peers = sorted(e.get("peer", "") for e in queued)
    t.check(peers == ["lan:Amina Haddad", "lan:" + forged] and all(e.get("level") == "info" for e in queued),
            "alert.queued records: each officer's whole name in peer=, the level and event the agent wrote",
            "\n".join(e["_line"] for e in queued) or ner.log_text(mark)[-800:])
    t.check(not ner.events("node.removed", since=mark), "... and no record reads as event=node.removed",
            ner.log_text(mark)[-800:])
    ner.write_config(officers=officers)
    ner.hup()

    # A control character in a name would reach logs, terminals and the author of every alert the officer sends
    # (where it is refused): agent.yaml is refused at load, naming the officer and the byte, C1 as C0.
    for label, name, says in (("C1 U+009B", "Omar \\u009b[2J", "officers[1].name: control character U+009B at byte 5"),
                              ("C1 U+0085", "Omar\\u0085", "officers[1].name: control character U+0085 at byte 4"),
                              ("C0 ESC", "Omar \\e[2J", "officers[1].name: control character 0x1B at byte 5")):
        path = os.path.join(t.dir, "agent-named.yaml")
        ner.write_config(officers='[{name: "Amina Haddad", curve_key: "%s"}, {name: "%s", curve_key: "%s"}]' % (
            curve_public(amina_pub), name,
            curve_public(os.path.join(keys, "OMAR.curve.pub"))))
        with open(ner.config_path) as f, open(path, "w") as g:
            g.write(f.read())
        ner.write_config(officers=officers)
        rc, out = ner.check_config(path)
        t.check(rc != 0 and says in out, f"agent --check with an officer's name holding {label}: refused, naming "
                "the entry and the byte", f"rc={rc} {out}")

    # lan_listen with no officers key at all (the last officer's entry deleted with it) passes --check, as the
    # SIGHUP above took it: refused at start, the country would be off the region after its next restart.
    path = os.path.join(t.dir, "agent-nobody.yaml")
    ner.write_config(officers=None)
    with open(ner.config_path) as f, open(path, "w") as g:
        g.write(f.read())
    ner.write_config(officers=officers)
    rc, out = ner.check_config(path)
    t.check(rc == 0 and "admits nobody" in out,
            "agent --check with lan_listen and no officers key: accepted, saying the LAN endpoint admits nobody", out)

    # The socket's directory: another local user must not be able to bind the path while the agent is down.
    with open(ner.config_path) as f:
        config = f.read()
    for label, mode, owner in (("writable by everyone, sticky", 0o1777, None),
                               ("another user's", 0o755, 65534 if os.geteuid() == 0 else None)):
        d = os.path.join(t.dir, "sockdir-" + label.split()[0].replace("'", ""))
        os.makedirs(d, exist_ok=True)
        os.chmod(d, mode)
        if owner is not None:
            os.chown(d, owner, -1)
        elif mode == 0o755:
            continue                                   # not root: cannot give a directory away
        path = os.path.join(t.dir, f"agent-{len(label)}.yaml")
        with open(path, "w") as f:
            f.write(re.sub(r"(?m)^local_socket: .*$", f"local_socket: {d}/agent.sock", config))
        rc, out = ner.check_config(path)
        t.check(rc != 0 and "local_socket" in out and (
                "writable by everyone" in out if mode == 0o1777 else "belongs to uid 65534" in out),
                f"agent --check with the socket in a directory {label}: refused, saying why", f"rc={rc} {out}")


if __name__ == "__main__":
    x.main(main)
