"""test_agent_clients.py — an officer's client cannot stop the agent with idle connections to its local socket.

libzmq (4.3.4, Debian 12) aborts the whole process when its ipc:// listener accepts and finds no file descriptor
left, and a connection that never greets held one for libzmq's default handshake interval, 30 s.  A client
opening idle connections to the local socket (a script gone wrong, or a hostile local user) aborted NER's agent,
and its restarts, at about 1 100 connections under a 1 024 limit.  Now:

1. under a low hard limit (1 024, as in a shell), idle connections opened at ~400 a second for 6 s (2 400 in all)
   are closed after 2 s each, so the agent never holds 1 024: it stays up and answers `xba status`;
2. the agent raises its soft limit to the hard one at start (a shell's 1 024 soft limit under a 20 000 hard one,
   as on this machine): 4 000 idle connections opened at once do not stop it.

Real xba-broker, real xba-agent NER and TCD, real xba CLI; raw unix-socket connections from this process.

usage: /usr/bin/python3 tests/e2e/test_agent_clients.py BUILD_DIR SOURCE_ROOT
"""
import os
import resource
import socket
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402


def idle_connections(path, count, per_second):
    """Open count unix-socket connections to path, paced, and send nothing; the open sockets."""
    socks = []
    start = time.monotonic()
    for i in range(count):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError:
            s.close()
            break
        socks.append(s)
        if per_second:
            delay = start + (i + 1) / per_second - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    return socks


def still_serving(t, ner, tcd, what):
    r = ner.cli("status", "--json", timeout=t.t(20))
    t.check(ner.alive() and r.rc in (0, 1) and r.json(), f"{what}: the agent is up and answers xba status",
            ner.log_text()[-800:])
    r = tcd.cli("send", "--category", "smuggling", "--severity", "severe", "--headline", f"Après {what}",
                "--wait", "10")
    sent = x.sent_id(r)
    end = time.monotonic() + t.t(20)
    got = False
    while not got and time.monotonic() < end:
        got = any(e.get("id") == sent for e in ner.history() or [])
        time.sleep(0.2)
    t.check(got, f"{what}: ... and still stores what the broker delivers", repr(r))


def main(t):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 6000:
        t.check(False, f"this test opens 4 000 connections; the hard descriptor limit here is {hard}", "")
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    region = x.region_of_five(t, "clients-e2e")
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
    tcd = x.Agent(t, region, "TCD", broker).start(link=True)

    def flood(name, nofile, count, per_second, what):
        """NER under `prlimit --nofile=NOFILE`, count idle connections opened at per_second (0: at once), held
        a second and closed; then NER must still serve its officers and the broker."""
        ner = x.Agent(t, region, "NER", broker, name=name, wrapper=["prlimit", f"--nofile={nofile}"]).start(
            link=True)
        socks = idle_connections(ner.socket, count, per_second)
        t.check(len(socks) == count, f"{what}: {count} idle connections opened", f"{len(socks)} opened")
        time.sleep(1.0)
        for s in socks:
            s.close()
        still_serving(t, ner, tcd, what)
        ner.stop()

    flood("NER-low", "1024:1024", 2400, 400, "400 a second under a hard limit of 1 024")
    flood("NER-soft", "1024:20000", 4000, 0, "4 000 at once (soft limit 1 024, hard 20 000)")
    for p in (tcd, broker):
        p.stop()


if __name__ == "__main__":
    x.main(main, deadline_s=180)
