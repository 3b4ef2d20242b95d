"""test_cli_errors.py — every `xba` subcommand that talks to the agent, given bad input, prints ONE clear line on
stderr ("xba: ..." naming what is wrong) and exits non-zero, and nothing is queued: NER's outbox_depth and
`xba history --outgoing` are unchanged after each case.  Real xba-broker, real xba-agent for NER, the real CLI.
Also: the agent not running (no socket, or a stale socket left by a kill -9) for every such subcommand; an agent that takes an alert and stops
before answering (`send` says NOT CONFIRMED with the id, not "nothing was queued"); and `--help` of every
subcommand exits 0.

usage: /usr/bin/python3 tests/e2e/test_cli_errors.py BUILD_DIR SOURCE_ROOT
"""
import os
import re
import socket
import subprocess
import sys
import threading
import uuid

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402
import zmq  # noqa: E402

RULES = """\
rules:
  - name: crime-to-neighbours
    when: { category: [border-incident, smuggling, trafficking] }
    to: [neighbours]
"""

STUTTER = re.compile(r"(?<![\w.\[\]])([\w.\[\]]+): \1: ")   # "info[0].headline: info[0].headline: ..."

GOOD = ["--category", "smuggling", "--severity", "severe", "--headline", "Convoi signalé", "--author", "officer-ner"]

FILES = {
    # name: (text, the "file:line:col:" prefix expected, a word the message must name)
    "bad-severity.yaml": ("category: smuggling\nseverity: high\nurgency: immediate\ncertainty: observed\ntlp: amber\n"
                          "info:\n  - language: fr\n    headline: Convoi\n", r"bad-severity\.yaml:2:\d+:", "high"),
    "bad-category.yaml": ("category: piracy\nseverity: severe\nurgency: immediate\ncertainty: observed\ntlp: amber\n"
                          "info:\n  - language: fr\n    headline: Convoi\n", r"bad-category\.yaml:1:\d+:", "piracy"),
    "bad-syntax.yaml": ("category: smuggling\nseverity: severe\nurgency: immediate\ncertainty: observed\ntlp: amber\n"
                        "to: [DZA, LBY\ninfo:\n  - language: fr\n    headline: Convoi\n", r"bad-syntax\.yaml:\d+:\d+:",
                        ""),
    "bad-key.yaml": ("category: smuggling\nseverity: severe\ncolour: red\nurgency: immediate\ncertainty: observed\n"
                     "tlp: amber\ninfo:\n  - language: fr\n    headline: Convoi\n", r"bad-key\.yaml:3:\d+:", "colour"),
    "bad-tab.yaml": ("category: smuggling\nseverity: severe\nurgency: immediate\ncertainty: observed\ntlp: amber\n"
                     "info:\n\t- language: fr\n\t  headline: Convoi\n", r"bad-tab\.yaml:7:\d+:", ""),
    "bad-language.yaml": ("category: smuggling\nseverity: severe\nurgency: immediate\ncertainty: observed\ntlp: amber\n"
                          "info:\n  - language: english\n    headline: Convoi\n", r"bad-language\.yaml:7:\d+:",
                          "english"),
    "no-headline.yaml": ("category: smuggling\nseverity: severe\nurgency: immediate\ncertainty: observed\ntlp: amber\n"
                         "info:\n  - language: fr\n    event: Trafic\n", r"no-headline\.yaml:7:\d+:", "headline"),
    "unknown-node.yaml": ("category: smuggling\nseverity: severe\nurgency: immediate\ncertainty: observed\ntlp: amber\n"
                          "to: [DZA, XYZ]\ninfo:\n  - language: fr\n    headline: Convoi\n", None, "XYZ"),
    "not-utf8.yaml": (None, r"not-utf8\.yaml:\d+:\d+:", ""),
    "empty-to.yaml": ("category: smuggling\nseverity: severe\nurgency: immediate\ncertainty: observed\ntlp: amber\n"
                      "to: []\ninfo:\n  - language: fr\n    headline: Convoi\n", r"empty-to\.yaml:6:\d+:",
                      "addresses nobody"),
    "expires-before-sent.yaml": ("category: smuggling\nseverity: severe\nsent: 2026-11-25T10:00:00Z\n"
                                 "expires: 2026-11-25T09:00:00Z\ninfo:\n  - language: fr\n    headline: Convoi\n",
                                 r"expires-before-sent\.yaml:4:\d+:", "not after the alert's sent time"),
}


def main(t):
    region = x.sahel_region(t)
    broker = x.Broker(t, region, RULES).start()
    ner = x.Agent(t, region, "NER", broker).start(link=True)

    # One good alert first, so that "unchanged" is about a non-empty history.
    r = ner.cli("send", *GOOD)
    own_id = x.sent_id(r)
    t.check(r.rc == 0 and own_id, "a valid send works (the baseline)", repr(r))

    def outgoing():
        return len(ner.history("--outgoing", "--limit", "1000"))

    def queued_state():
        s = ner.status() or {}
        return s.get("outbox_depth"), outgoing()

    baseline = queued_state()
    t.eq(baseline, (0, 1), "baseline: outbox_depth 0, one sent alert in history --outgoing")
    changed = []

    for name, (text, _, _) in FILES.items():
        with open(os.path.join(t.dir, name), "wb") as f:
            f.write(text.encode("utf-8") if text is not None else
                    b"category: smuggling\nseverity: severe\ntlp: amber\ninfo:\n  - language: fr\n    headline: Conv\xff\xfei\n")

    def case(label, args, want_rc, must=(), pattern=None, socket=ner.socket, check_queue=True):
        """One bad command: exit status, one line on stderr naming the problem (not twice), no id printed,
        nothing queued."""
        r = x.cli(t, socket, *args)
        err = r.err_lines()
        ok_rc = (r.rc == want_rc) if want_rc is not None else (r.rc not in (0, None))
        line = err[0] if err else ""
        named = all(m in line for m in must) and (pattern is None or re.search(pattern, line))
        t.log(f"{label}: rc={r.rc} {r.err.strip()!r}")
        t.check(ok_rc and len(err) == 1 and line.startswith("xba: ") and named and
                "queued at the agent" not in r.out and len(line) <= 400 and not STUTTER.search(line),
                f"{label}: exit {want_rc if want_rc is not None else 'non-zero'}, one line on stderr naming "
                f"{', '.join(repr(m) for m in must) or pattern}", repr(r))
        if check_queue:
            # Anything queued stays in history --outgoing (as queued, accepted or refused): one call per case.
            now = outgoing()
            if now != baseline[1]:
                changed.append((label, now))
        return r

    unknown_id = str(uuid.uuid4())
    case("ack of this country's own alert", ["ack", own_id], 1, ["sent by this country", "xba track"])
    case("ack of this country's own alert, the id in capitals", ["ack", own_id.upper()], 1, ["sent by this country"])
    # -- send: flags
    case("send --category piracy", ["send", "--category", "piracy", "--severity", "severe", "--headline", "h"], 2,
         ["piracy", "category"])
    case("send --severity high", ["send", "--category", "smuggling", "--severity", "high", "--headline", "h"], 2,
         ["high", "severity"])
    case("send --tlp purple", ["send", *GOOD, "--tlp", "purple"], 2, ["purple"])
    case("send without --headline", ["send", "--category", "smuggling", "--severity", "severe"], 2, ["headline"])
    case("send --lang fr with no headline in that language", ["send", *GOOD, "--lang", "fr", "--description", "d"],
         2, ["headline", "fr"])
    case("send without --category", ["send", "--severity", "severe", "--headline", "h"], 2, ["category"])
    case("send --lang english", ["send", *GOOD, "--lang", "english", "--headline", "h"], 2, ["english"])
    case("send --lang fr_NE", ["send", *GOOD, "--lang", "fr_NE", "--headline", "h"], 2, ["fr_NE"])
    case("send --to XYZ (a node id, not in the region: the agent refuses)", ["send", *GOOD, "--to", "DZA,XYZ"], 2,
         ["XYZ"])
    case("send --to ner (not a node id)", ["send", *GOOD, "--to", "ner"], 2, ["'ner'"])
    case("send --to '' (an empty variable: not 'everybody the rules name')", ["send", *GOOD, "--to", ""], 2,
         ["names no node", "leave --to out"])
    case("send --to ' , ' (separators only)", ["send", *GOOD, "--to", " , "], 2, ["names no node"])
    case("send --to NER from NER (its own origin alone: nobody would receive it)", ["send", *GOOD, "--to", "NER"],
         2, ["only addressee is NER", "this country itself"])
    r = case("send --tlp red without --to", ["send", *GOOD, "--tlp", "red"], 2, ["TLP:RED"])
    r = case("send --tlp red without --to, --json", ["send", *GOOD, "--tlp", "red", "--json"], 2, ["TLP:RED"])
    j = r.json()
    t.check(len(j) == 1 and j[0].get("state") == "not_queued" and j[0].get("code") == "TLP_RED_NO_ADDRESSEES" and
            j[0].get("alert_id") == "", "... and with --json, one object on stdout saying not_queued and the code",
            repr(r))
    case("send --colour red (unknown option)", ["send", *GOOD, "--colour", "red"], 2, ["--colour"])
    case("send --expires tomorrow", ["send", *GOOD, "--expires", "tomorrow"], 2, ["tomorrow"])
    case("send --expires in the past", ["send", *GOOD, "--expires", "2020-01-01T00:00:00Z"], 2,
         ["not in the future"])
    case("send --expires 3651d", ["send", *GOOD, "--expires", "3651d"], 2, ["3650 days"])
    case("send --headline twice in one language", ["send", *GOOD, "--headline", "Deuxième titre"], 2,
         ["--headline given twice"])
    case("send with a blank headline", ["send", "--category", "smuggling", "--severity", "severe", "--headline", "   "],
         2, ["headline", "blanks"])
    case("send --param without =", ["send", *GOOD, "--param", "people_count"], 2, ["people_count"])
    case("send --wait abc", ["send", *GOOD, "--wait", "abc"], 2, ["abc"])
    case("send with a headline over 160 bytes", ["send", "--category", "smuggling", "--severity", "severe",
                                                  "--headline", "é" * 100], 2, ["headline"])
    case("send FILE and flags together", ["send", os.path.join(t.dir, "bad-key.yaml"), "--category", "health"], 2,
         ["either"])
    case("send a missing file", ["send", os.path.join(t.dir, "nosuch.yaml")], 2, ["nosuch.yaml"])
    # -- send: alert files
    for name, (_, pattern, word) in FILES.items():
        case(f"send {name}", ["send", os.path.join(t.dir, name)], 2, [word] if word else [], pattern)
    # -- broadcast
    case("broadcast without --headline", ["broadcast", "--author", "a"], 2, ["headline"])
    case("broadcast --category piracy", ["broadcast", "--headline", "h", "--category", "piracy"], 2, ["piracy"])
    case("broadcast --timeout abc", ["broadcast", "--headline", "h", "--wait", "--timeout", "abc"], 2, ["abc"])
    case("broadcast --colour (unknown option)", ["broadcast", "--headline", "h", "--colour", "red"], 2, ["--colour"])
    # -- ack
    case("ack of a non-UUID", ["ack", "1234"], 2, ["1234"])
    case("ack of an unknown id in capitals: read as the id it is", ["ack", unknown_id.upper()], 1,
         [unknown_id, "no alert"])
    case("ack of an unknown id", ["ack", unknown_id, "--note", "reçu"], 1, [unknown_id])
    case("ack without an id", ["ack"], 2, ["ID"])
    case("ack --colour (unknown option)", ["ack", unknown_id, "--colour"], 2, ["--colour"])
    case("ack --note over 1024 bytes", ["ack", unknown_id, "--note", "n" * 1025], 2, ["note"])
    # -- track
    case("track of an unknown id", ["track", unknown_id], 1, [unknown_id])
    case("track of a non-UUID", ["track", "not-an-id"], 2, ["ID"])
    case("track --colour (unknown option)", ["track", unknown_id, "--colour"], 2, ["--colour"])
    # -- history, watch, status
    case("history --limit abc", ["history", "--limit", "abc"], 2, ["abc"])
    case("history --limit 0", ["history", "--limit", "0"], 2, ["'0'"])
    case("history --id not-a-uuid", ["history", "--id", "not-a-uuid"], 2, ["not-a-uuid"])
    case("history --category piracy", ["history", "--category", "piracy"], 2, ["piracy"])
    case("history --colour (unknown option)", ["history", "--colour"], 2, ["--colour"])
    case("watch --category piracy", ["watch", "--category", "piracy"], 2, ["piracy"])
    case("watch --since yesterday", ["watch", "--since", "yesterday"], 2, ["yesterday"])
    case("watch --origin ner", ["watch", "--origin", "ner"], 2, ["'ner'"])
    case("watch --limit 5 (a history option)", ["watch", "--limit", "5"], 2, ["--limit"])
    case("status --colour (unknown option)", ["status", "--colour"], 2, ["--colour"])
    case("status with an argument", ["status", "now"], 2, ["now"])
    case("unknown command", ["frobnicate"], 2, ["frobnicate"])

    # -- the agent not running: no socket at the path
    missing = os.path.join(t.dir, "no-agent", "agent.sock")
    for label, args in (("send", ["send", *GOOD]), ("watch", ["watch", "--json"]), ("status", ["status", "--json"]),
                        ("ack", ["ack", unknown_id]), ("history", ["history"]), ("track", ["track", unknown_id]),
                        ("broadcast", ["broadcast", "--headline", "h"])):
        case(f"{label} with no agent (XBA_SOCKET names no socket)", args, 2, [missing, "xba-agent"], socket=missing)
    case("send --socket PATH with no agent there", ["send", *GOOD, "--socket", missing], 2, [missing])
    # -- the agent killed (kill -9, a power cut): its socket file stays and refuses connections.  Said at once, not
    # after the whole reply timeout as "no answer", and for send not as NOT CONFIRMED (nothing could be taken).
    stale = os.path.join(t.dir, "stale", "agent.sock")
    os.makedirs(os.path.dirname(stale), mode=0o750, exist_ok=True)
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(stale)
    left.close()                   # the file stays, as after a kill -9
    for label, args in (("send", ["send", *GOOD]), ("status", ["status", "--json"]), ("ack", ["ack", unknown_id]),
                        ("history", ["history"]), ("watch", ["watch", "--json"])):
        case(f"{label} with a stale socket (the agent was killed)", args, 2, [stale, "nothing listens",
                                                                            "not running"], socket=stale)
    r = x.cli(t, None, "status", "--socket", missing, "--json")
    t.check(r.rc == 2 and not r.out.strip(), "status --json with no agent prints no JSON (nothing to parse)", repr(r))

    # A user outside the officers' group, whose way to the socket is closed, is told so (not "is it running?").
    if os.geteuid() == 0:
        closed = os.path.join(t.dir, "closed")
        os.makedirs(closed, mode=0o700, exist_ok=True)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", t.xba]
        probe = subprocess.run(as_nobody + ["--help"], capture_output=True, text=True)
        if probe.returncode == 0:
            r = subprocess.run(as_nobody + ["status", "--socket", os.path.join(closed, "agent.sock")],
                               capture_output=True, text=True, env=x.cli_env(None, None))
            t.check(r.returncode == 2 and "no permission to reach the agent socket" in r.stderr and
                    "officers' group" in r.stderr, "a user the socket's directory is closed to: told it is a "
                    "matter of permission", repr(r.stderr))
        else:
            t.log(f"(not checked: xba cannot run as nobody here: {probe.stderr.strip()[:120]})")

    # -- an agent that takes the request and dies before answering: not "nothing was queued" but NOT CONFIRMED;
    # for send, with the id the alert was submitted under (the CLI chooses it), so that the officer looks first
    def dying_agent(name, *args):
        """`xba ARGS` against a socket whose "agent" reads one request and closes: (CliResult, the LocalFrame)."""
        path = os.path.join(t.dir, name + ".sock")
        ctx = zmq.Context()
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.bind("ipc://" + path)
        taken = []

        def take_and_die():
            if router.poll(t.t(20) * 1000):
                taken.append(router.recv_multipart()[-1])
            router.close(0)
        th = threading.Thread(target=take_and_die, daemon=True)
        th.start()
        r = x.cli(t, None, *args, "--socket", path)
        th.join(t.t(5))
        ctx.term()
        f = x.pb.LocalFrame()
        if taken:
            f.ParseFromString(taken[0])
        return r, f

    r, f = dying_agent("dying-send", "send", *GOOD, "--json")
    submitted = f.submit.alert.id
    printed = (r.json() or [{}])[0]
    t.check(r.rc == 1 and "NOT CONFIRMED" in r.err and "nothing was queued" not in r.err and submitted and
            submitted in r.err and f"xba history --outgoing --id {submitted}" in r.err,
            "send to an agent that dies before answering: exit 1, NOT CONFIRMED, naming the id it was given and "
            "how to look for it", repr(r))
    t.check(printed.get("alert_id") == submitted and printed.get("state") == "unknown",
            "... and --json prints that id with state unknown", repr(r.out))
    r, f = dying_agent("dying-ack", "ack", unknown_id)
    t.check(r.rc == 1 and "NOT CONFIRMED" in r.err and "run the same xba ack again" in r.err and
            "not acknowledged" not in r.err and f.ack.alert_id == unknown_id,
            "ack to an agent that dies before answering: exit 1, NOT CONFIRMED, ask again (a second ack is named)",
            repr(r))

    t.check(not changed, "nothing was queued by any of the bad commands (history --outgoing unchanged after each)",
            str(changed[:5]))
    t.eq(queued_state(), baseline, "after every case: outbox_depth and history --outgoing as at the start")
    t.check(not ner.events("alert.queued")[1:], "the agent logged event=alert.queued only for the baseline alert",
            str([e.get("_line") for e in ner.events("alert.queued")[1:]][:3]))
    t.check(ner.alive(), "the agent is still running")

    # -- --help of every subcommand
    for sub in ("send", "watch", "ack", "broadcast", "history", "status", "track", "quarantine", "rules", "keygen",
                "verify", "audit"):
        r = x.cli(t, ner.socket, sub, "--help")
        t.check(r.rc == 0 and r.out.startswith("usage: xba") and not r.err.strip(),
                f"xba {sub} --help exits 0 with its usage on stdout", repr(r))
    r = x.cli(t, None, "--help")
    t.check(r.rc == 0 and all(f"  {c} " in r.out for c in ("send", "watch", "ack", "broadcast", "history", "status",
                                                           "track")),
            "xba --help exits 0 and lists the agent's subcommands", repr(r))


if __name__ == "__main__":
    x.main(main)
