"""xbatest.py — the end-to-end harness: real `xba-broker` processes, real CURVE sockets on 127.0.0.1, real key files
from `xba keygen`, a real SQLite journal, and a node client written from docs/protocol.md alone.

A test script is run by meson as `/usr/bin/python3 tests/e2e/test_X.py BUILD_DIR SOURCE_ROOT` and looks like:

    import xbatest as x

    def main(t):                                   # t: x.Test (checks, temp dir, cleanup)
        region = x.sahel_region(t)                 # keygen for every node, region.yaml written
        broker = x.Broker(t, region, rules_text)   # broker.yaml, BROKER keys, a free port
        broker.start()
        net = x.Net(t)
        ner = net.node(region, "NER", broker)      # x.Node: DEALER + CURVE, Hello/Welcome, inbox, outbox
        net.connect_all()
        ack = ner.publish_wait(region.seal(x.alert("NER", category=x.C.SMUGGLING)))
        t.check(ack.result == x.pb.OK, "accepted")

    x.main(main)

The pieces, each usable alone:

  Test    checks ("ok   ..." / "FAIL ..."), the closing "N passed, N failed" line, a private temp dir, a global
          deadline, and cleanup of every process and socket it started (also on failure).
  Region  one `xba keygen` per node; region.yaml written from what keygen printed, plus neighbours, groups,
          may_broadcast, publish and extra (rotated or revoked) signing keys; signs alerts (Python `cryptography`)
          and opens envelopes exactly as docs/protocol.md section 6.3 says.
  Broker  broker.yaml + start / stop (SIGTERM) / kill9 / restart / hup / check_config / wait_log / events.
  Net     one single-threaded event loop over many Nodes: pump(), run_until(cond), sleep(); no fixed sleeps.
  Node    the wire client: socket monitor (handshake, disconnect), Hello/Welcome, outbox resent in order with the
          same bytes after every new session, PublishAck by ref, Deliver -> verify -> inbox (deduplicated by alert
          id) -> DeliveryAck + Credit, heartbeats both ways, credit accounting, Status and Track requests.
  alert() / ack_alert() build valid Alert protobufs (docs/protocol.md section 5).
  Agent   one real xba-agent: its agent.yaml (keys from the Region, a pinned broker key, its own copy of
          region.yaml, store, IPC socket), start (waits for event=agent.ready) / wait_link / stop (SIGTERM) /
          kill9 / wait_log / events, and the real `xba` CLI against it: cli(...), status(), watch().
  cli()   runs build/agents/xba with XBA_SOCKET set; returns a CliResult (rc, out, err, lines).
  Watch   `xba watch --json` as a long-running subprocess; every stdout line parsed as it arrives (a Background,
          which runs any `xba` command in the background, e.g. `xba broadcast --wait`).

Only Debian's /usr/bin/python3 with python3-zmq, python3-protobuf and python3-cryptography is needed; xba_pb2 is
generated with `protoc --python_out` into the test's temp dir.
"""
import base64
import calendar
import collections
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

import zmq
from zmq.utils.monitor import recv_monitor_message
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

pb = None            # the generated xba_pb2 module, after Test() has run protoc
CONTEXT = b"XBA-v1 alert\x00"
NEVER = 2**63 - 1


# ---------------------------------------------------------------------------------------------------------------
# Test: checks, temp dir, deadline, cleanup

class Deadline(Exception):
    pass


class SessionLost(Exception):
    """A send found no connection (the broker went away before the monitor said so); the node reconnects."""


class Test:
    """One test script's run: BUILD_DIR and SOURCE_ROOT from argv, a fresh temp dir, pass/fail counts."""

    def __init__(self, argv, name, deadline_s=85):
        if len(argv) < 3:
            sys.exit(f"usage: {argv[0]} BUILD_DIR SOURCE_ROOT")
        self.build = os.path.abspath(argv[1])
        self.src = os.path.abspath(argv[2])
        self.name = name
        self.xba = os.path.join(self.build, "agents", "xba")
        self.broker_bin = os.path.join(self.build, "broker", "xba-broker")
        self.agent_bin = os.path.join(self.build, "agents", "xba-agent")
        self.dir = tempfile.mkdtemp(prefix=f"xba-e2e-{name}-")
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.started = time.monotonic()
        self.deadline_s = deadline_s
        self._cleanups = []
        # Under AddressSanitizer the broker is about 3x slower: every timeout is scaled by `slow`.
        self.slow = 1.0
        try:
            with open(self.broker_bin, "rb") as f:
                if b"__asan_init" in f.read():
                    self.slow = 3.0
        except OSError:
            pass
        if os.environ.get("XBA_BROKER_WRAPPER"):
            self.slow = max(self.slow, 10.0)     # valgrind: everything the broker does is far slower
        if os.environ.get("XBA_E2E_SLOW"):
            self.slow = float(os.environ["XBA_E2E_SLOW"])
        self._load_proto()

    def _load_proto(self):
        global pb
        out = os.path.join(self.dir, "py")
        os.makedirs(out)
        subprocess.run(["protoc", f"--python_out={out}", f"-I{self.src}/proto", f"{self.src}/proto/xba.proto"],
                       check=True)
        sys.path.insert(0, out)
        import xba_pb2
        pb = xba_pb2

    # -- reporting --
    def log(self, msg):
        print(f"     [{time.monotonic() - self.started:6.2f}s] {msg}", flush=True)

    def check(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print(f"ok   {what}", flush=True)
        else:
            self.failed += 1
            self.failures.append(what)
            print(f"FAIL {what}" + (f": {detail}" if detail else ""), flush=True)
        return bool(cond)

    def eq(self, got, want, what):
        return self.check(got == want, f"{what} (= {want!r})" if _short(want) else what,
                          f"got {got!r}, expected {want!r}")

    def t(self, seconds):
        """A timeout scaled for slow (sanitizer) builds."""
        return seconds * self.slow

    def remaining(self):
        return self.deadline_s - (time.monotonic() - self.started)

    def defer(self, fn):
        """Run fn at cleanup, last registered first."""
        self._cleanups.append(fn)

    def cleanup(self):
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception as e:  # cleanup must go on
                print(f"     cleanup: {e!r}")
        if self.failed == 0 and not os.environ.get("XBA_E2E_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print(f"     (work directory kept: {self.dir})")

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 0 if self.failed == 0 and self.passed > 0 else 1


def _short(v):
    return isinstance(v, (int, str, bool)) and len(repr(v)) < 60


def main(test_fn, deadline_s=85):
    """Entry point of a test script: runs test_fn(Test) with a deadline, always cleans up, exits 0/1."""
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    deadline_s = int(os.environ.get("XBA_E2E_DEADLINE", deadline_s))   # e.g. longer under valgrind
    t = Test(sys.argv, name, deadline_s)

    def on_alarm(signum, frame):
        raise Deadline(f"test exceeded its deadline of {deadline_s} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(deadline_s)
    try:
        test_fn(t)
    except Deadline as e:
        t.check(False, "finished within the deadline", str(e))
        traceback.print_exc()
    except Exception as e:
        t.check(False, "test ran to the end without an exception", repr(e))
        traceback.print_exc()
    finally:
        signal.alarm(0)
        t.cleanup()
    sys.exit(t.finish())


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bind port 0)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rfc3339(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def now_ms():
    return int(time.time() * 1000)


def parse_rfc3339(text):
    """The form xba keygen and rfc3339() write (2026-11-25T16:51:43Z) to ms."""
    text = text.strip().strip('"')
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) * 1000


def code_name(code):
    try:
        return pb.ErrorCode.Name(code)
    except ValueError:
        return f"code-{code}"


# ---------------------------------------------------------------------------------------------------------------
# Region: keys from `xba keygen`, region.yaml, signing and opening envelopes

class SigningKey:
    """One Ed25519 key of a node: the PEM private key keygen wrote, the public key as region.yaml lists it."""

    def __init__(self, node_id, pem_path, public_b64, valid_from=None, valid_until=None, revoked_at=None):
        self.node_id = node_id
        self.pem_path = pem_path
        self.public_b64 = public_b64
        self.valid_from = valid_from          # RFC 3339 text or None
        self.valid_until = valid_until
        self.revoked_at = revoked_at
        self.raw = base64.b64decode(public_b64)
        self.key_id = hashlib.sha256(self.raw).digest()
        with open(pem_path, "rb") as f:
            self.private = serialization.load_pem_private_key(f.read(), password=None)
        self.public = Ed25519PublicKey.from_public_bytes(self.raw)

    def window_ms(self):
        """(valid_from, valid_until, revoked_at) in ms; open bounds are -NEVER / NEVER."""
        return (parse_rfc3339(self.valid_from) if self.valid_from else -NEVER,
                parse_rfc3339(self.valid_until) if self.valid_until else NEVER,
                parse_rfc3339(self.revoked_at) if self.revoked_at else NEVER)


class NodeEntry:
    def __init__(self, node_id, name, role, curve_key, keys_dir):
        self.id = node_id
        self.name = name
        self.role = role
        self.curve_key = curve_key            # Z85 public, as keygen printed it
        self.keys_dir = keys_dir
        self.signing_keys = []
        self.neighbours = []
        self.may_broadcast = False
        self.publish = None

    def curve_secret(self):
        with open(os.path.join(self.keys_dir, f"{self.id}.curve.key"), "rb") as f:
            return f.read().strip()


class Refused(Exception):
    """An envelope that docs/protocol.md section 6.3 refuses; .code is the ErrorCode name."""

    def __init__(self, code, message, field=""):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field


def keygen(t, node_id, out_dir, name=None, role=None):
    """Run the real `xba keygen`; returns its stdout (the region.yaml entry it prints)."""
    cmd = [t.xba, "keygen", "--node", node_id, "--out", out_dir]
    if name:
        cmd += ["--name", name]
    if role:
        cmd += ["--role", role]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"xba keygen --node {node_id} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r.stdout


def parse_keygen_entry(text):
    """The entry `xba keygen` prints for region.yaml -> {id, name, role, curve_key, keys: [{public, valid_from}]}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  - id:"))
    entry = {"keys": []}
    for line in lines[start:]:
        body = line.split("#", 1)[0].rstrip() if "public:" in line else line.rstrip()
        m = re.match(r'^\s*(-\s+)?([a-z_]+):\s*(.*)$', body)
        if not m:
            continue
        key, value = m.group(2), m.group(3).strip()
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        if key == "public":
            entry["keys"].append({"public": value})
        elif key in ("valid_from", "valid_until", "revoked_at"):
            entry["keys"][-1][key] = value
        elif key != "signing_keys":
            entry[key] = value
    return entry


def _yq(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Region:
    """The region directory of one test: nodes made with the real `xba keygen`, written as region.yaml."""

    def __init__(self, t, name="e2e-region"):
        self.t = t
        self.name = name
        self.keys_dir = os.path.join(t.dir, "keys")
        self.nodes = collections.OrderedDict()
        self.groups = collections.OrderedDict()
        self.path = os.path.join(t.dir, "region.yaml")
        self._extra = 0

    def add(self, node_id, name=None, role=None, neighbours=(), may_broadcast=False, publish=None):
        out = keygen(self.t, node_id, self.keys_dir, name=name, role=role)
        e = parse_keygen_entry(out)
        assert e["id"] == node_id, (e, node_id)
        n = NodeEntry(node_id, e.get("name", node_id), e["role"], e["curve_key"], self.keys_dir)
        for k in e["keys"]:
            if n.role == "admin":
                break             # keygen writes no signing key entry for an admin
            n.signing_keys.append(SigningKey(node_id, os.path.join(self.keys_dir, f"{node_id}.sign.key"),
                                             k["public"], k.get("valid_from"), k.get("valid_until"),
                                             k.get("revoked_at")))
        n.neighbours = list(neighbours)
        n.may_broadcast = may_broadcast
        n.publish = list(publish) if publish is not None else None
        self.nodes[node_id] = n
        return n

    def add_key(self, node_id, valid_from=None, valid_until=None, revoked_at=None):
        """Another signing key for node_id (a second `xba keygen` into its own dir); returns its index."""
        self._extra += 1
        d = os.path.join(self.t.dir, f"keys-extra-{self._extra}")
        e = parse_keygen_entry(keygen(self.t, node_id, d))
        k = SigningKey(node_id, os.path.join(d, f"{node_id}.sign.key"), e["keys"][0]["public"],
                       valid_from if valid_from is not None else e["keys"][0].get("valid_from"),
                       valid_until, revoked_at)
        self.nodes[node_id].signing_keys.append(k)
        return len(self.nodes[node_id].signing_keys) - 1

    def stranger(self, node_id):
        """Key files for node_id that the directory does not list (not written into region.yaml)."""
        self._extra += 1
        d = os.path.join(self.t.dir, f"keys-stranger-{self._extra}")
        e = parse_keygen_entry(keygen(self.t, node_id, d))
        n = NodeEntry(node_id, node_id, e["role"], e["curve_key"], d)
        n.signing_keys.append(SigningKey(node_id, os.path.join(d, f"{node_id}.sign.key"), e["keys"][0]["public"]))
        return n

    def group(self, name, members):
        self.groups[name] = list(members)

    def yaml(self):
        out = ["# region.yaml written by tests/e2e/xbatest.py from `xba keygen` output", f"region: {self.name}",
               "nodes:"]
        for n in self.nodes.values():
            out += [f"  - id: {n.id}", f"    name: {_yq(n.name)}", f"    role: {n.role}",
                    f"    curve_key: {_yq(n.curve_key)}"]
            if n.signing_keys:
                out.append("    signing_keys:")
                for k in n.signing_keys:
                    out.append(f"      - public: {_yq(k.public_b64)}")
                    for attr in ("valid_from", "valid_until", "revoked_at"):
                        if getattr(k, attr):
                            out.append(f"        {attr}: {getattr(k, attr)}")
            if n.neighbours:
                out.append(f"    neighbours: [{', '.join(n.neighbours)}]")
            if n.may_broadcast:
                out.append("    may_broadcast: true")
            if n.publish is not None:
                out.append(f"    publish: [{', '.join(n.publish)}]")
        if self.groups:
            out.append("groups:")
            for g, members in self.groups.items():
                out.append(f"  {g}: [{', '.join(members)}]")
        return "\n".join(out) + "\n"

    def write(self, path=None):
        self.path = path or self.path
        with open(self.path, "w") as f:
            f.write(self.yaml())
        return self.path

    # -- the directory as the routing rules see it --
    def role(self, node_id):
        return self.nodes[node_id].role

    def members(self):
        return sorted(n.id for n in self.nodes.values() if n.role == "member")

    def observers(self):
        return sorted(n.id for n in self.nodes.values() if n.role == "observer")

    def neighbours(self, node_id):
        out = set(self.nodes[node_id].neighbours)
        out |= {n.id for n in self.nodes.values() if node_id in n.neighbours}
        out.discard(node_id)
        return sorted(out)

    # -- signing --
    def key(self, node_id, index=0):
        return self.nodes[node_id].signing_keys[index]

    def seal(self, alert_msg, signer=None, key_index=0):
        """Serialize once, sign "XBA-v1 alert\\0" || bytes (section 6.2); returns an Envelope.  signer: a
        SigningKey or a node id; default: the alert's origin."""
        if signer is None:
            signer = alert_msg.origin
        if isinstance(signer, str):
            signer = self.key(signer, key_index)
        a = alert_msg.SerializeToString()
        return pb.Envelope(alert=a, key_id=signer.key_id, signature=signer.private.sign(CONTEXT + a))

    def directory(self):
        """key id -> SigningKey, over every node (rebuilt when keys were added)."""
        count = sum(len(n.signing_keys) for n in self.nodes.values())
        if getattr(self, "_dir_count", None) != count:
            self._dir = {k.key_id: k for n in self.nodes.values() for k in n.signing_keys}
            self._dir_count = count
        return self._dir

    def open_envelope(self, env, at_ms=None):
        """docs/protocol.md 6.3 on a received envelope, against this directory; returns the Alert or raises Refused."""
        at_ms = now_ms() if at_ms is None else at_ms
        if not (1 <= len(env.alert) <= 65536) or len(env.key_id) != 32 or len(env.signature) != 64:
            raise Refused("INVALID_ALERT", "envelope sizes", "envelope")
        k = self.directory().get(env.key_id)
        if k is None:
            raise Refused("UNKNOWN_KEY", "key id not in region.yaml")
        valid_from, valid_until, revoked_at = k.window_ms()
        if revoked_at <= at_ms:
            raise Refused("KEY_REVOKED", f"key of {k.node_id} revoked")
        try:
            k.public.verify(env.signature, CONTEXT + env.alert)
        except InvalidSignature:
            raise Refused("BAD_SIGNATURE", "signature does not verify over the received bytes")
        try:
            a = pb.Alert.FromString(env.alert)
            wire_check(pb.Alert.DESCRIPTOR, env.alert)
        except Exception as e:
            raise Refused("INVALID_ALERT", str(e))
        basic_validate(a)
        if not (valid_from <= a.sent_ms < valid_until):
            raise Refused("KEY_NOT_VALID", "sent_ms outside the key's window")
        if k.node_id != a.origin:
            raise Refused("WRONG_SIGNER", f"key of {k.node_id} signed an alert of {a.origin}")
        return a


def wire_check(desc, b, path=""):
    """docs/protocol.md 5.3 rule 2 on the raw bytes: known fields only, non-repeated at most once, no NUL in
    strings, no groups.  Recurses into sub-messages."""
    seen, pos = set(), 0

    def varint():
        nonlocal pos
        v = shift = 0
        while True:
            c = b[pos]
            pos += 1
            v |= (c & 0x7F) << shift
            shift += 7
            if c < 0x80:
                return v
    while pos < len(b):
        num, wt = divmod(varint(), 8)
        f = desc.fields_by_number.get(num)
        if f is None:
            raise ValueError(f"{path.rstrip('.') or 'alert'}: unknown field number {num}")
        if f.label != f.LABEL_REPEATED:
            if num in seen:
                raise ValueError(f"{path}{f.name}: field appears more than once")
            seen.add(num)
        if wt == 0:
            varint()
        elif wt in (1, 5):
            pos += 8 if wt == 1 else 4
        elif wt == 2:
            n = varint()
            chunk = b[pos:pos + n]
            pos += n
            if f.type == f.TYPE_STRING and 0 in chunk:
                raise ValueError(f"{path}{f.name}: contains a NUL byte")
            if f.type == f.TYPE_MESSAGE:
                wire_check(f.message_type, chunk, f"{path}{f.name}.")
        else:
            raise ValueError(f"{path}{f.name}: wire type {wt}")


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NODE_RE = re.compile(r"^[A-Z][A-Z0-9-]{0,30}[A-Z0-9]$")


def basic_validate(a):
    """The parts of 5.3 a receiver in these tests relies on (not every limit)."""
    if not UUID_RE.match(a.id):
        raise Refused("INVALID_ALERT", "id is not a lower-case UUID", "id")
    if not NODE_RE.match(a.origin):
        raise Refused("INVALID_ALERT", "origin", "origin")
    if not a.author or a.sent_ms <= 0:
        raise Refused("INVALID_ALERT", "author/sent_ms", "author")
    for f, enum in (("status", pb.Status), ("msg_type", pb.MsgType), ("tlp", pb.Tlp)):
        if getattr(a, f) not in enum.values() or getattr(a, f) == 0:
            raise Refused("INVALID_ALERT", f, f)
    if a.msg_type in (pb.MSG_TYPE_ALERT, pb.MSG_TYPE_UPDATE):
        if not a.info or 0 in (a.category, a.severity, a.urgency, a.certainty):
            raise Refused("INVALID_ALERT", "alert/update needs info and CAP scales", "info")


# ---------------------------------------------------------------------------------------------------------------
# Alerts

class C:
    """Short names for the enums the tests use."""
    BORDER_INCIDENT, SMUGGLING, TRAFFICKING, HEALTH, SAR, MOVEMENT, OTHER = range(1, 8)
    ACTUAL, EXERCISE, SYSTEM, TEST, DRAFT = range(1, 6)
    ALERT, UPDATE, CANCEL, ACK, ERROR = range(1, 6)
    UNKNOWN, MINOR, MODERATE, SEVERE, EXTREME = range(1, 6)
    CLEAR, GREEN, AMBER, AMBER_STRICT, RED = range(1, 6)


def alert(origin, category=C.SMUGGLING, severity=C.SEVERE, tlp=C.AMBER, status=C.ACTUAL, msg_type=C.ALERT,
          addressees=(), references=(), emergency=False, headline=None, sent_ms=None, author="duty-officer-1",
          urgency=5, certainty=4, language="en", alert_id=None, **extra):
    """A valid Alert (docs/protocol.md 5): every required field set, one info block, one area, one parameter."""
    a = pb.Alert(
        id=alert_id or str(uuid.uuid4()), origin=origin, author=author,
        sent_ms=sent_ms if sent_ms is not None else now_ms(),
        status=status, msg_type=msg_type, category=category, severity=severity, urgency=urgency,
        certainty=certainty, tlp=tlp, emergency=emergency)
    a.references.extend(references)
    a.addressees.extend(addressees)
    a.info.add(language=language, event="e2e event",
               headline=headline or f"{origin} e2e alert", description="written by tests/e2e/xbatest.py")
    area = a.areas.add(description="Assamaka border post")
    area.geocodes.add(name="border-post", value="NE-ASSAMAKA")
    area.circles.add(center=pb.Point(lat=19.35, lon=5.78), radius_km=25.0)
    a.parameters.add(name="people_count", value="45")
    for k, v in extra.items():
        setattr(a, k, v)
    return a


def ack_alert(origin, acked, author="duty-officer-ack", note="received, patrol dispatched"):
    """The ACK an officer at `origin` publishes for Alert `acked` (docs/protocol.md 2.6)."""
    a = pb.Alert(id=str(uuid.uuid4()), origin=origin, author=author, sent_ms=now_ms(), status=acked.status,
                 msg_type=C.ACK, tlp=acked.tlp, note=note)
    a.references.append(acked.id)
    a.addressees.append(acked.origin)
    return a


def frame(**body):
    return pb.Frame(**body).SerializeToString()


# ---------------------------------------------------------------------------------------------------------------
# Broker process

LOG_KV = re.compile(r'([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def audit_verify(t, journal, *args):
    """`xba audit verify JOURNAL ARGS`: (exit status, stdout and stderr as one text)."""
    r = subprocess.run([t.xba, "audit", "verify", journal, *args], capture_output=True, text=True, timeout=t.t(60))
    return r.returncode, (r.stdout + r.stderr).strip()


def rechain_journal(path, from_seq):
    """Recompute the hash of every journal entry from from_seq on (lib/chain.c's formula, written again here from
    its comment), as an insider with the file and the public formula would after editing it."""
    import sqlite3

    def field(b):
        return struct.pack(">I", len(b)) + b

    def integer(v):
        return field(struct.pack(">q", v))

    db = sqlite3.connect(path)
    prev = db.execute("SELECT hash FROM alerts WHERE seq < ? ORDER BY seq DESC LIMIT 1", (from_seq,)).fetchone()
    prev = prev[0] if prev else bytes(32)
    for (seq, alert_id, origin, sent, received, msg_type, emergency, envelope,
         rules_version) in db.execute("SELECT seq, alert_id, origin, sent_ms, received_ms, msg_type, emergency,"
                                      " envelope, rules_version FROM alerts WHERE seq >= ? ORDER BY seq",
                                      (from_seq,)).fetchall():
        env_sha = hashlib.sha256(envelope).digest()
        rows = db.execute("SELECT node, rule, state FROM deliveries WHERE seq = ? ORDER BY node", (seq,)).fetchall()
        sent_to = [(n, r) for n, r, st in rows if st != 4]
        withheld = [(n, r) for n, r, st in rows if st == 4]
        m = (field(b"xba-journal-v1") + field(prev) + integer(seq) + field(alert_id.encode()) + field(origin.encode())
             + integer(sent) + integer(received) + integer(msg_type) + integer(emergency) + field(env_sha)
             + field(rules_version.encode()))
        for pairs in (sent_to, withheld):
            m += integer(len(pairs)) + b"".join(field(n.encode()) + field(r.encode()) for n, r in pairs)
        h = hashlib.sha256(m).digest()
        db.execute("UPDATE alerts SET envelope_sha256 = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                   (env_sha, prev, h, seq))
        prev = h
    db.commit()
    db.close()


def parse_log_line(line):
    out = {}
    for k, v in LOG_KV.findall(line):
        if v.startswith('"'):
            v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[k] = v
    return out


class Broker:
    """One xba-broker process on a free port of 127.0.0.1, with its own broker.yaml, keys, journal and log."""

    def __init__(self, t, region, rules_text, name="broker", **settings):
        self.t = t
        self.region = region
        self.dir = os.path.join(t.dir, name)
        os.makedirs(self.dir)
        keys = os.path.join(self.dir, "keys")
        keygen(t, "BROKER", keys, role="admin")
        with open(os.path.join(keys, "BROKER.curve.pub"), "rb") as f:
            self.public_key = f.read().strip()
        self.port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        # listen_host="0.0.0.0": also reachable from a network namespace (nodes here still use 127.0.0.1).
        self.listen_host = settings.pop("listen_host", None)
        # wrapper=["prlimit", "--fsize=N"]: this broker runs under that command (after $XBA_BROKER_WRAPPER).
        self.wrapper = list(settings.pop("wrapper", None) or [])
        self.config_path = os.path.join(self.dir, "broker.yaml")
        self.rules_path = os.path.join(self.dir, "rules.yaml")
        self.region_path = os.path.join(self.dir, "region.yaml")
        # journal=PATH puts the journal elsewhere (e.g. on a small filesystem); default journal.db in self.dir.
        self.journal_setting = settings.pop("journal", None)
        self.journal_path = os.path.abspath(self.journal_setting) if self.journal_setting else \
            os.path.join(self.dir, "journal.db")
        self.log_path = os.path.join(self.dir, "broker.log")
        self.settings = dict(heartbeat_ms=2000, log_level="info")
        self.settings.update(settings)
        self.proc = None
        self.starts = 0
        self.write_region()
        self.write_rules(rules_text)
        self.write_config()
        open(self.log_path, "w").close()
        t.defer(self._cleanup)

    def write_region(self):
        with open(self.region_path, "w") as f:
            f.write(self.region.yaml())

    def write_rules(self, text):
        with open(self.rules_path, "w") as f:
            f.write(text)
        return hashlib.sha256(text.encode()).hexdigest()

    def rules_version(self):
        with open(self.rules_path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def write_config(self, **overrides):
        self.settings.update(overrides)
        lines = ["# broker.yaml written by tests/e2e/xbatest.py", "broker_id: e2e-broker",
                 f'listen: "{self.listen_endpoint()}"', "curve_secret_key: keys/BROKER.curve.key",
                 "region: region.yaml", "rules: rules.yaml",
                 f"journal: {self.journal_path if self.journal_setting else 'journal.db'}"]
        lines += [f"{k}: {v}" for k, v in self.settings.items()]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def listen_endpoint(self):
        return f"tcp://{self.listen_host}:{self.port}" if self.listen_host else self.endpoint

    # -- process --
    def start(self, wait=True, timeout=None):
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("broker already running")
        self.mark = self.log_size()
        log = open(self.log_path, "ab")
        # XBA_BROKER_WRAPPER="valgrind --leak-check=full ..." runs the broker under that command.
        wrapper = shlex.split(os.environ.get("XBA_BROKER_WRAPPER", ""))
        self.proc = subprocess.Popen(wrapper + self.wrapper + [self.t.broker_bin, "-c", self.config_path], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, cwd=self.dir)
        log.close()
        self.starts += 1
        if wait:
            m = self.wait_log(r"event=broker\.ready", timeout or self.t.t(15), since=self.mark)
            if m is None:
                tail = self.log_text(self.mark)[-2000:]
                if self.starts == 1 and self.proc.poll() is not None and "in use" in tail:
                    # Another test took the free port between free_port() and bind: pick another, once.
                    self.port = free_port()
                    self.endpoint = f"tcp://127.0.0.1:{self.port}"
                    self.write_config()
                    return self.start(wait, timeout)
                self._cleanup()
                raise RuntimeError(f"broker did not log event=broker.ready (exit {self.proc.poll()}): {tail}")
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=None):
        """SIGTERM, wait; returns the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout or self.t.t(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self, timeout=None):
        """kill -9 (if running) and start again on the same journal and port."""
        self.kill9()
        return self.start(timeout=timeout)

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def _cleanup(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def check_config(self, path=None):
        """`xba-broker --check -c broker.yaml`: (exit status, output)."""
        r = subprocess.run([self.t.broker_bin, "--check", "-c", path or self.config_path], capture_output=True,
                           text=True, timeout=self.t.t(20), cwd=self.dir)
        return r.returncode, (r.stdout + r.stderr).strip()

    # -- log --
    def log_size(self):
        return os.path.getsize(self.log_path)

    def log_text(self, since=0):
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout, since=0, net=None):
        """Poll the log (pumping net, if given) until a line matches pattern; the match or None."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            for line in self.log_text(since).splitlines():
                m = rx.search(line)
                if m:
                    return m
            if time.monotonic() >= end:
                return None
            if net is not None:
                net.pump(0.05)
            else:
                time.sleep(0.02)

    def events(self, event, since=0):
        """Parsed key=value records of every log line with event=<event>."""
        out = []
        for line in self.log_text(since).splitlines():
            if re.search(r"\bevent=" + re.escape(event) + r"(\s|$)", line):
                rec = parse_log_line(line)
                rec["_line"] = line
                out.append(rec)
        return out


# ---------------------------------------------------------------------------------------------------------------
# Net: one event loop for many nodes

class Net:
    def __init__(self, t):
        self.t = t
        self.ctx = zmq.Context()
        self.nodes = []
        self.tickers = []      # callables run after every pump
        t.defer(self.close)

    def node(self, region, node_id, broker, **kw):
        n = Node(self, region, node_id, broker, **kw)
        self.nodes.append(n)
        return n

    def close(self):
        for n in self.nodes:
            n.close()
        self.ctx.term()

    def connect_all(self, nodes=None, timeout=None):
        nodes = nodes or self.nodes
        for n in nodes:
            if n.state == "closed":
                n.connect()
        ok = self.run_until(lambda: all(n.state == "open" for n in nodes), timeout or self.t.t(10))
        if not ok:
            raise RuntimeError("no Welcome for " + ", ".join(n.id for n in nodes if n.state != "open"))

    def pump(self, timeout=0.02):
        poller = zmq.Poller()
        for n in self.nodes:
            if n.sock is not None:
                poller.register(n.sock, zmq.POLLIN)
                poller.register(n.mon, zmq.POLLIN)
        ready = dict(poller.poll(int(timeout * 1000))) if poller.sockets else {}
        if not poller.sockets:
            time.sleep(timeout)
        for n in list(self.nodes):
            try:
                if n.mon is not None and n.mon in ready:
                    n._on_monitor()
                if n.sock is not None and n.sock in ready:
                    n._on_readable()
            except SessionLost:
                pass
        for n in list(self.nodes):
            try:
                n._tick()
            except SessionLost:
                pass
        for fn in list(self.tickers):
            fn()

    def run_until(self, cond, timeout, step=0.02):
        end = time.monotonic() + timeout
        while True:
            if cond():
                return True
            if time.monotonic() >= end:
                return False
            self.pump(step)

    def violations(self):
        """Everything any node saw the broker do against docs/protocol.md: undecodable or unexpected frames,
        deliveries beyond the credit window, deliveries that failed verification (section 6.3)."""
        out = {}
        for n in self.nodes:
            v = [("frame",) + b for b in n.bad_frames] + [("credit",) + c for c in n.credit_violations] + \
                [("quarantine",) + q for q in n.quarantine]
            if v:
                out[n.id] = v[:5]
        return out

    def check_protocol(self):
        """One check: no node saw a protocol violation by the broker."""
        v = self.violations()
        return self.t.check(not v, "no node saw the broker break the protocol (bad frames, credit, signatures)",
                            str(v))

    def sleep(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump(min(0.02, max(0.0, end - time.monotonic())))


# ---------------------------------------------------------------------------------------------------------------
# Node: the wire client

Arrival = collections.namedtuple("Arrival", "seq alert_id origin rule emergency session time")
InboxEntry = collections.namedtuple("InboxEntry", "seq alert rule emergency envelope")
TRANSIENT = ("RATE_LIMITED", "JOURNAL_UNAVAILABLE", "INTERNAL")


class OutEntry:
    def __init__(self, ref, envelope):
        self.ref = ref
        self.envelope = envelope          # pb.Envelope, never re-signed
        self.env_bytes = envelope.SerializeToString()
        try:                              # attack tests publish alert bytes that do not decode
            self.alert_id = pb.Alert.FromString(envelope.alert).id if envelope.alert else ""
        except Exception:
            self.alert_id = ""
        self.sent = False                 # sent on the current session
        self.sends = 0


class Node:
    """A node per docs/protocol.md, driven by Net.pump().  State: closed -> connecting (socket open, CURVE
    handshake) -> hello (Hello sent) -> open (Welcome received) -> closed (session lost; reopened if
    auto_reconnect)."""

    def __init__(self, net, region, node_id, broker, credit=64, auto_ack=True, auto_credit=True,
                 auto_reconnect=True, max_inflight=32, curve_secret=None, retry_transient=False,
                 hello_node_id=None, auto_hello=True, heartbeats=True, deliver_batches=True,
                 ordered_publishes=False, clock=None):
        self.net = net
        self.clock = clock or now_ms        # the wall clock it says it has (Hello.time_ms, Heartbeat.time_ms)
        self.t = net.t
        self.region = region
        self.id = node_id
        self.broker = broker
        self.endpoint = broker.endpoint
        self.server_key = broker.public_key
        self.curve_secret = curve_secret or region.nodes[node_id].curve_secret()
        self.hello_node_id = hello_node_id or node_id
        self.auto_hello = auto_hello        # False: stop at state "handshaken"; the test calls hello() itself
        self.heartbeats = heartbeats        # False: a silent peer (no Heartbeat frames), for dead-peer tests
        self.deliver_batches = deliver_batches  # Hello.deliver_batches, as xba-agent sets it; False: one per frame
        self.ordered_publishes = ordered_publishes  # Hello.ordered_publishes (xba-agent sets it): the broker holds
                                                    # later publishes behind a transient refusal
        self.initial_credit = credit
        self.auto_ack = auto_ack
        self.auto_credit = auto_credit
        self.auto_reconnect = auto_reconnect
        self.max_inflight = max_inflight
        self.retry_transient = retry_transient
        self.sock = None
        self.mon = None
        self.state = "closed"
        self.session = 0                   # Welcomes received
        self.welcome = None
        self.welcomes = []
        self.hb_ms = 5000
        self.last_sent = self.last_heard = self.hello_at = 0.0
        self.events = []                   # (time, monitor event name, value)
        self.auth_failures = 0
        self.disconnects = 0
        self.sessions_lost = []            # reasons
        # receiving
        self.inbox = {}                    # alert id -> InboxEntry (each alert once)
        self.arrivals = []                 # every Deliver, in arrival order
        self.batch_sizes = []              # deliveries in each DeliverBatch frame received
        self.redeliveries = 0              # Deliver of an alert id already in the inbox (allowed on the wire)
        self.seq_conflicts = []            # one alert id delivered under two seqs: journaled twice
        self.quarantine = []               # (seq, code, message)
        self.through_seq = 0               # highest through_seq sent in a DeliveryAck
        self.pending = []                  # (seq, emergency) stored, not yet acknowledged
        self.pending_refused = {}          # of those, seq -> ErrorCode for the quarantined ones
        self.granted = 0                   # this session: hello credit + grants
        self.received = 0                  # this session: Delivers
        self.credit_violations = []        # (session, seq, received, granted): a Deliver beyond the window
        self.resume_after = 0              # of the current session
        # publishing
        self.next_ref = 1
        self.outbox = collections.OrderedDict()   # ref -> OutEntry, until OK / DUPLICATE / final refusal
        self.acks = {}                     # ref -> last PublishAck
        self.ack_log = []                  # every PublishAck in arrival order
        self.sent_envelopes = {}           # ref -> OutEntry, every publish ever queued
        # other frames
        self.errors = []                   # Error frames from the broker
        self.receipts = []
        self.status_replies = []
        self.track_replies = []
        self.frames_in = collections.Counter()  # frame type -> count received
        self.bad_frames = []               # frames from the broker that break docs/protocol.md

    # -- connection --
    def connect(self, resume_after=None, credit=None):
        """Open a fresh DEALER socket; Hello goes out when the CURVE handshake succeeds."""
        self.close()
        if resume_after is not None:
            self.through_seq = resume_after
        if credit is not None:
            self.initial_credit = credit
        s = self.net.ctx.socket(zmq.DEALER)
        for opt, val in [(zmq.LINGER, 0), (zmq.IMMEDIATE, 1), (zmq.RECONNECT_IVL, 100),
                         (zmq.RECONNECT_IVL_MAX, 1000), (zmq.HEARTBEAT_IVL, 10000),
                         (zmq.HEARTBEAT_TIMEOUT, 30000), (zmq.HEARTBEAT_TTL, 30000), (zmq.TCP_KEEPALIVE, 1),
                         (zmq.SNDHWM, 100000), (zmq.RCVHWM, 100000), (zmq.MAXMSGSIZE, -1)]:
            s.setsockopt(opt, val)
        s.curve_secretkey = self.curve_secret
        s.curve_publickey = zmq.curve_public(self.curve_secret)
        s.curve_serverkey = self.server_key
        self.mon = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH |
                                        zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                        zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_DISCONNECTED)
        s.connect(self.endpoint)
        self.sock = s
        self.state = "connecting"
        return self

    def close(self):
        if self.sock is not None:
            try:
                self.sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self.mon.close(0)
            self.sock.close(0)
        self.sock = self.mon = None
        self.state = "closed"

    def _lost(self, reason):
        self.sessions_lost.append(reason)
        was = self.state
        self.close()
        if self.auto_reconnect and was != "closed":
            self.connect()

    def wait_welcome(self, timeout=None):
        return self.net.run_until(lambda: self.state == "open", timeout or self.t.t(10))

    def _send(self, data):
        if self.sock is None:
            raise SessionLost(f"{self.id}: no connection (state {self.state})")
        try:
            self.sock.send(data, zmq.NOBLOCK)
        except zmq.Again:
            # ZMQ_IMMEDIATE: no completed connection (or HWM reached, which these tests never do).
            self._lost("send found no connection")
            raise SessionLost(self.id)
        self.last_sent = time.monotonic()

    def send_raw(self, data):
        """Send bytes as one message (attacks and unusual frames)."""
        self._send(data)

    def send(self, **body):
        self._send(frame(**body))

    def hello(self, protocol_version=1, node_id=None):
        """Send Hello now (after the CURVE handshake); state becomes "hello"."""
        self._hello(protocol_version, node_id)

    def _hello(self, protocol_version=1, node_id=None):
        self.resume_after = self.through_seq
        self.granted = self.initial_credit
        self.received = 0
        self.pending = []
        self.pending_refused = {}
        for e in self.outbox.values():
            e.sent = False
        self.send(hello=pb.Hello(protocol_version=protocol_version, node_id=node_id or self.hello_node_id,
                                 resume_after=self.through_seq,
                                 credit=self.initial_credit, software="xbatest.py 0.1",
                                 deliver_batches=self.deliver_batches,
                                 ordered_publishes=self.ordered_publishes, time_ms=self.clock()))
        self.state = "hello"
        self.hello_at = time.monotonic()

    # -- event handling --
    def _on_monitor(self):
        while True:
            try:
                ev = recv_monitor_message(self.mon, zmq.NOBLOCK)
            except zmq.Again:
                return
            e = ev["event"]
            self.events.append((time.monotonic(), e, ev["value"]))
            if e == zmq.EVENT_HANDSHAKE_SUCCEEDED and self.state == "connecting":
                if self.auto_hello:
                    self._hello()
                else:
                    self.state = "handshaken"
            elif e == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.auth_failures += 1
            elif e == zmq.EVENT_DISCONNECTED:
                self.disconnects += 1
                if self.state in ("handshaken", "hello", "open"):
                    self._lost("disconnected")
                    return

    def _on_readable(self):
        while self.sock is not None:
            try:
                parts = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.last_heard = time.monotonic()
            if len(parts) != 1:
                self.bad_frames.append(("multi-part message", len(parts)))
            try:
                f = pb.Frame.FromString(parts[0])
            except Exception as e:   # a broker bug: answer MALFORMED_FRAME (never answer an Error with one)
                self.bad_frames.append(("not a Frame", repr(e)))
                self.send(error=pb.Error(code=pb.MALFORMED_FRAME, message="bytes do not decode as a Frame"))
                continue
            kind = f.WhichOneof("body")
            self.frames_in[kind] += 1
            getattr(self, "_on_" + str(kind), self._on_other)(f)

    def _on_welcome(self, f):
        self.welcome = f.welcome
        self.welcomes.append(f.welcome)
        self.hb_ms = f.welcome.heartbeat_ms or 5000
        self.session += 1
        self.state = "open"
        self._flush_outbox()

    def _on_publish_ack(self, f):
        a = f.publish_ack
        self.acks[a.ref] = a
        self.ack_log.append(a)
        e = self.outbox.get(a.ref)
        if e is None:
            return
        name = code_name(a.result)
        if name in TRANSIENT and self.retry_transient:
            e.sent = False                 # resent by _flush_outbox (next pump)
        else:
            del self.outbox[a.ref]
        self._flush_outbox()

    def _on_deliver(self, f):
        self._deliver(f.deliver)

    def _on_deliver_batch(self, f):
        """Section 2.4: each Deliver of the batch, in order, exactly as if it had come alone."""
        if not self.deliver_batches:
            self.bad_frames.append(("deliver_batch to a node that did not ask for batches",
                                    len(f.deliver_batch.deliveries)))
        if len(f.deliver_batch.deliveries) == 0:
            self.bad_frames.append(("empty deliver_batch", 0))
        if self.welcome is not None and f.ByteSize() > self.welcome.max_frame_bytes and \
                len(f.deliver_batch.deliveries) > 1:
            self.bad_frames.append(("deliver_batch over max_frame_bytes", f.ByteSize()))
        self.batch_sizes.append(len(f.deliver_batch.deliveries))
        for d in f.deliver_batch.deliveries:
            self._deliver(d)

    def _deliver(self, d):
        self.received += 1
        if self.received > self.granted:
            self.credit_violations.append((self.session, d.seq, self.received, self.granted))
            self.send(error=pb.Error(code=pb.CREDIT_EXCEEDED, message=f"seq {d.seq} arrived with the window at 0"))
        try:
            a = self.region.open_envelope(d.envelope)
        except Refused as r:
            self.quarantine.append((d.seq, r.code, r.message))
            self.send(error=pb.Error(code=getattr(pb, r.code), field=r.field,
                                     message=f"seq {d.seq}: {r.message}"[:512]))
            self.pending.append((d.seq, d.emergency))
            self.pending_refused[d.seq] = getattr(pb, r.code)   # named in the DeliveryAck (section 2.5)
            return
        self.arrivals.append(Arrival(d.seq, a.id, a.origin, d.rule, d.emergency, self.session, time.monotonic()))
        old = self.inbox.get(a.id)
        if old is not None:
            self.redeliveries += 1
            if old.seq != d.seq:
                self.seq_conflicts.append((a.id, old.seq, d.seq))
        else:
            self.inbox[a.id] = InboxEntry(d.seq, a, d.rule, d.emergency, d.envelope.SerializeToString())
        self.pending.append((d.seq, d.emergency))

    def _on_error(self, f):
        self.errors.append(f.error)
        if f.error.code == pb.NOT_READY and self.state == "open":
            self._lost("NOT_READY")

    def _on_receipt(self, f):
        self.receipts.append(f.receipt)

    def _on_status_reply(self, f):
        self.status_replies.append(f.status_reply)

    def _on_track_reply(self, f):
        self.track_replies.append(f.track_reply)

    def _on_heartbeat(self, f):
        pass

    def _on_other(self, f):
        """A body a node does not accept (or none): Error UNKNOWN_FRAME_TYPE, as section 2.11 says."""
        kind = f.WhichOneof("body")
        self.bad_frames.append(("unexpected frame type", kind))
        self.send(error=pb.Error(code=pb.UNKNOWN_FRAME_TYPE, message=f"a node does not accept {kind} frames"))

    def _tick(self):
        if self.sock is None:
            return
        now = time.monotonic()
        if self.state == "hello" and now - self.hello_at > 10:
            self._lost("no Welcome within 10 s")
            return
        if self.state != "open":
            return
        if self.auto_ack and self.pending:
            self.ack_now()
        if (now - self.last_heard) * 1000 >= 3 * self.hb_ms:
            self._lost(f"broker silent for 3 x {self.hb_ms} ms")
            return
        if self.heartbeats and (now - self.last_sent) * 1000 >= self.hb_ms * 0.5:
            self.send(heartbeat=pb.Heartbeat(time_ms=self.clock()))
        self._flush_outbox()

    # -- receiving API --
    def ack_now(self, grant=None, held_ms=0):
        """DeliveryAck for everything stored, then Credit (one per delivery unless grant says otherwise).  held_ms:
        what the ack says the node held the deliveries (its store's commit; protocol 2.5)."""
        if not self.pending:
            return
        normal = [q for q, em in self.pending if not em]
        self.through_seq = max([self.through_seq] + normal)
        seqs = sorted(q for q, em in self.pending if em and q > self.through_seq)
        refused = [pb.DeliveryRefusal(seq=q, code=c) for q, c in sorted(self.pending_refused.items())]
        self.send(delivery_ack=pb.DeliveryAck(through_seq=self.through_seq, seqs=seqs, refused=refused,
                                              held_ms=held_ms))
        n = len(self.pending)
        self.pending = []
        self.pending_refused = {}
        if self.auto_credit:
            self.grant(n if grant is None else grant)

    def grant(self, n):
        if n > 0:
            self.send(credit=pb.Credit(grant=n))
            self.granted += n

    def outstanding(self):
        return self.granted - self.received

    def got(self, alert_id):
        return alert_id in self.inbox

    # -- publishing API --
    def publish(self, envelope, ref=None):
        """Queue in the outbox; sent now if the session is open. Returns the ref."""
        if ref is None:
            ref = self.next_ref
        self.next_ref = max(self.next_ref, ref + 1)
        e = OutEntry(ref, envelope)
        self.outbox[ref] = e
        self.sent_envelopes[ref] = e
        try:
            self._flush_outbox()
        except SessionLost:
            pass                           # resent after the next Welcome
        return ref

    def _flush_outbox(self):
        if self.state != "open":
            return
        inflight = sum(1 for e in self.outbox.values() if e.sent)
        for e in self.outbox.values():
            if inflight >= self.max_inflight:
                break
            if not e.sent:
                self._send(frame(publish=pb.Publish(ref=e.ref, envelope=e.envelope)))
                e.sent = True
                e.sends += 1
                inflight += 1

    def wait_ack(self, ref, timeout=None):
        self.net.run_until(lambda: ref in self.acks, timeout or self.t.t(10))
        return self.acks.get(ref)

    def publish_wait(self, envelope, timeout=None):
        """Publish and wait for its PublishAck (None on timeout)."""
        return self.wait_ack(self.publish(envelope), timeout)

    # -- requests --
    def status(self, timeout=None):
        n = len(self.status_replies)
        self.send(status_request=pb.StatusRequest())
        self.net.run_until(lambda: len(self.status_replies) > n, timeout or self.t.t(10))
        return self.status_replies[n] if len(self.status_replies) > n else None

    def track(self, alert_id, timeout=None):
        n = len(self.track_replies)
        self.send(track_request=pb.TrackRequest(alert_id=alert_id))
        found = lambda: any(r.alert_id == alert_id for r in self.track_replies[n:])
        self.net.run_until(found, timeout or self.t.t(10))
        return next((r for r in self.track_replies[n:] if r.alert_id == alert_id), None)

    def wait_error(self, after, timeout):
        """The first Error frame received after len(errors) was `after`, or None."""
        self.net.run_until(lambda: len(self.errors) > after, timeout)
        return self.errors[after] if len(self.errors) > after else None


def track_map(reply):
    """TrackReply -> {node: (state name, rule)}."""
    return {r.node_id: (pb.DeliveryState.Name(r.state).replace("DELIVERY_STATE_", ""), r.rule)
            for r in reply.recipients}


# ---------------------------------------------------------------------------------------------------------------
# The test region of docs/rules.md section 3 (without the groups the tests do not use)

SAHEL_NEIGHBOURS = {"DZA": ["LBY", "NER", "MLI"], "LBY": ["NER", "TCD", "SDN"], "SDN": ["TCD"], "TCD": ["NER"],
                    "NER": ["MLI"]}


# rules.yaml of the e2e tests whose crime alerts go to TCD alone, whoever's neighbour it is
CHAD_ONLY_RULES = """\
rules:
  - name: crime-to-chad
    when: { category: [border-incident, smuggling, trafficking] }
    to: [TCD]
"""


NEIGHBOUR_RULES = """\
# rules.yaml of the e2e tests that need one rule: crime to the origin's neighbours (emergencies are routed
# without rules, docs/rules.md section 2)
rules:
  - name: crime-to-neighbours
    when: { category: [border-incident, smuggling, trafficking] }
    to: [neighbours]
"""


def pump_bytes(src, dst, rate=None, wait=None):
    """Copy src to dst until either closes, then close both: what a TCP relay does one way.  rate: bytes a second
    (sent 1 KiB at a time); wait: called before each send, to hold the bytes back (a stalled link)."""
    try:
        while True:
            data = src.recv(1024 if rate else 65536)
            if not data:
                break
            if wait is not None:
                wait()
            dst.sendall(data)
            if rate:
                time.sleep(len(data) / rate)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.close()
        except OSError:
            pass


class SlowLink:
    """A slow link between a node and the broker: 127.0.0.1:port -> 127.0.0.1:target, carrying at most `rate` bytes a
    second towards the client (the node: towards="node") or towards the target (the broker: towards="broker"); the
    other way is not slowed.  resetting = True closes every new connection at once with a reset (a link that cuts
    connections); drop() ends those open; a connection whose target is down is closed (the node tries again)."""

    def __init__(self, target, rate, towards="node"):
        assert towards in ("node", "broker")
        self.target = target
        self.rate = rate
        self.towards = towards
        self.closed = False
        self.resetting = False
        self.socks = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.resetting:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()      # linger 0: a reset, as a flapping link gives
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            self.socks += [client, upstream]
            up, down = (self.rate, None) if self.towards == "broker" else (None, self.rate)
            threading.Thread(target=pump_bytes, args=(client, upstream, up), daemon=True).start()
            threading.Thread(target=pump_bytes, args=(upstream, client, down), daemon=True).start()

    def drop(self):
        socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.listener.close()
        self.drop()


def restore_sqlite(backup, live):
    """Put a SQLite backup in place of a stopped daemon's file (journal or store), as operations.md section 7 says:
    owner-only, no stale -wal or -shm beside it."""
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(live + suffix)
        except FileNotFoundError:
            pass
    with open(backup, "rb") as f_in, open(live, "wb") as f_out:
        f_out.write(f_in.read())
    os.chmod(live, 0o600)


def region_of_five(t, name, observer="WHO-AFRO"):
    """Members DZA, LBY, NER (may_broadcast) and TCD, the observer WHO-AFRO (publishes health; another id if
    given) and the admin SECRETARIAT, written; NER's neighbours under NEIGHBOUR_RULES are DZA, LBY and TCD."""
    r = Region(t, name)
    r.add("DZA", name="Algerie", role="member", neighbours=["LBY", "NER"])
    r.add("LBY", name="Libya", role="member", neighbours=["NER", "TCD"])
    r.add("NER", name="Niger", role="member", neighbours=["TCD"], may_broadcast=True)
    r.add("TCD", name="Tchad", role="member")
    r.add(observer, name="WHO Regional Office for Africa", role="observer", publish=["health"])
    r.add("SECRETARIAT", name="Working-group secretariat", role="admin")
    r.write()
    return r


def sahel_region(t, write=True):
    """Members DZA, LBY, SDN, TCD, MLI, NER; observers IOM-ROMENA (search-and-rescue, population-movement) and
    WHO-AFRO (health); admin SECRETARIAT; neighbours DZA-LBY, DZA-NER, DZA-MLI, LBY-NER, LBY-TCD, LBY-SDN,
    SDN-TCD, TCD-NER, NER-MLI; NER may broadcast; group maghreb: [DZA, LBY]."""
    r = Region(t, "sahel-maghreb")
    names = {"DZA": "Algerie", "LBY": "Libya", "SDN": "Sudan", "TCD": "Tchad", "MLI": "Mali", "NER": "Niger"}
    for nid in ("DZA", "LBY", "SDN", "TCD", "MLI", "NER"):
        r.add(nid, name=names[nid], role="member", neighbours=SAHEL_NEIGHBOURS.get(nid, ()),
              may_broadcast=(nid == "NER"))
    r.add("IOM-ROMENA", name="IOM Regional Office MENA", role="observer",
          publish=["search-and-rescue", "population-movement"])
    r.add("WHO-AFRO", name="WHO Regional Office for Africa", role="observer", publish=["health"])
    r.add("SECRETARIAT", name="Working-group secretariat", role="admin")
    r.group("maghreb", ["DZA", "LBY"])
    if write:
        r.write()
    return r


ALL_NODES = ["DZA", "LBY", "SDN", "TCD", "MLI", "NER", "IOM-ROMENA", "WHO-AFRO", "SECRETARIAT"]


# ---------------------------------------------------------------------------------------------------------------
# The national agent (xba-agent) and the operator CLI (xba), as real processes

class CliResult:
    """What one `xba` run did: exit status, stdout, stderr (text), and the command line."""

    def __init__(self, args, rc, out, err):
        self.args = args
        self.rc = rc
        self.out = out
        self.err = err

    def lines(self):
        return [line for line in self.out.splitlines() if line.strip()]

    def err_lines(self):
        return [line for line in self.err.splitlines() if line.strip()]

    def json(self):
        """Every stdout line that parses as a JSON object."""
        out = []
        for line in self.lines():
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict):
                out.append(v)
        return out

    def __repr__(self):
        return f"xba {' '.join(self.args)} -> rc={self.rc} out={self.out[-800:]!r} err={self.err[-800:]!r}"


def cli_env(socket_path=None, extra=None):
    env = dict(os.environ)
    env.pop("XBA_SOCKET", None)
    if socket_path is not None:
        env["XBA_SOCKET"] = socket_path
    env["XBA_LANG"] = "en"
    env.setdefault("LANG", "C.UTF-8")
    # xba wraps text output at $COLUMNS (80 when unset and not a terminal): the tests read whole lines, and
    # test_agent_text checks the wrapping at 80.
    env["COLUMNS"] = "1000"
    if extra:
        env.update(extra)
    return env


def cli(t, socket_path, *args, timeout=None, env=None, input=None, net=None):
    """Run the real `xba ARGS...` with XBA_SOCKET=socket_path (None: unset); returns a CliResult.  With net (a
    Net), its nodes are pumped while the command runs, so Python nodes keep answering the broker."""
    args = [str(a) for a in args]
    if net is not None:
        return _cli_pumping(t, socket_path, args, timeout or t.t(30), env, net)
    try:
        r = subprocess.run([t.xba] + args, capture_output=True, timeout=timeout or t.t(30),
                           env=cli_env(socket_path, env), input=input, stdin=None if input else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        return CliResult(args, None, (e.stdout or b"").decode("utf-8", "replace"),
                         (e.stderr or b"").decode("utf-8", "replace") + f"\n(timed out after {e.timeout} s)")
    return CliResult(args, r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace"))


def _cli_pumping(t, socket_path, args, timeout, env, net):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen([t.xba] + args, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             env=cli_env(socket_path, env))
        try:
            done = net.run_until(lambda: p.poll() is not None, timeout)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        out.seek(0)
        err.seek(0)
        o, e = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
        if not done:
            return CliResult(args, None, o, e + f"\n(timed out after {timeout} s)")
        return CliResult(args, p.returncode, o, e)


class Background:
    """`xba ARGS` running in the background (watch, broadcast --wait); stdout lines are read by a thread.
    .raw: every line; .entries: every line that is a JSON object, parsed, in order; .bad: the other non-empty
    lines."""

    def __init__(self, t, socket_path, *args, env=None):
        self.t = t
        self.args = [str(a) for a in args]
        self.err_path = os.path.join(t.dir, f"{self.args[0] if self.args else 'xba'}-{id(self)}.err")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([t.xba] + self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._err, env=cli_env(socket_path, env))
        self._err.close()
        self.raw = []
        self.entries = []
        self.bad = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        t.defer(self.stop)

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            text = line.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.raw.append(text)
                if not text.strip():
                    continue
                try:
                    v = json.loads(text)
                except ValueError:
                    self.bad.append(text)
                    continue
                if isinstance(v, dict):
                    self.entries.append(v)
                else:
                    self.bad.append(text)

    def snapshot(self):
        with self._lock:
            return list(self.entries)

    def text(self):
        with self._lock:
            return "\n".join(self.raw)

    def ids(self):
        """Alert ids in arrival order (one per printed object)."""
        return [e.get("id") for e in self.snapshot()]

    def by_id(self, alert_id):
        return [e for e in self.snapshot() if e.get("id") == alert_id]

    def has(self, alert_id):
        return any(e.get("id") == alert_id for e in self.snapshot())

    def wait(self, cond, timeout):
        end = time.monotonic() + timeout
        while True:
            if cond():
                return True
            if time.monotonic() >= end or not self.alive():
                return cond()
            time.sleep(0.05)

    def wait_ids(self, ids, timeout):
        ids = set(ids)
        return self.wait(lambda: ids <= set(self.ids()), timeout)

    def alive(self):
        return self.proc.poll() is None

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_exit(self, timeout):
        """Wait for the command to end by itself; its exit status (None if still running)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(2)
        return self.proc.returncode

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2)
        try:
            self.proc.stdout.close()
        except OSError:
            pass
        return self.proc.returncode


class Watch(Background):
    """`xba watch --json [ARGS]` running in the background: .entries are the alerts it printed, in order."""

    def __init__(self, t, socket_path, *args, json_output=True, env=None):
        super().__init__(t, socket_path, "watch", *((["--json"] if json_output else []) + [str(a) for a in args]),
                         env=env)


class FakeBroker:
    """The broker's side of docs/protocol.md, just enough to test an agent that must trust no broker: ROUTER +
    CURVE server with its own key pair (pin .public_key in the Agent) on a free port, Welcome on Hello, Heartbeats,
    Deliver, DeliverBatch or raw bytes on demand; records every frame the node sends."""

    def __init__(self, t, heartbeat_ms=2000, max_frame_bytes=262144):
        self.t = t
        self.max_frame_bytes = max_frame_bytes     # announced in Welcome, not enforced on what this fake sends
        self.ctx = zmq.Context()
        self.public_key, secret = zmq.curve_keypair()
        s = self.ctx.socket(zmq.ROUTER)
        s.setsockopt(zmq.LINGER, 0)
        s.curve_server = True
        s.curve_secretkey = secret
        s.curve_publickey = self.public_key
        port = s.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.sock = s
        self.heartbeat_ms = heartbeat_ms
        self.peer = None
        self.hellos = []
        self.errors = []
        self.delivery_acks = []
        self.credit = 0          # Hello.credit + grants
        self.delivered = 0       # Delivers sent
        self.other = []          # frame kinds a node should not send, or undecodable bytes
        self.publishes = []      # Publish frames, for a test to answer as it likes (answer())
        self.welcome_fields = {}  # overrides of the Welcome it sends
        self.welcome_delay = 0.0  # seconds between a Hello and its Welcome (a slow link, a busy broker)
        self._welcome_due = None  # (monotonic time, Welcome fields) of a delayed Welcome
        self.last_sent = 0.0
        t.defer(self.close)

    def close(self):
        self.sock.close(0)
        self.ctx.term()

    def _send(self, **body):
        self.sock.send_multipart([self.peer, frame(**body)])
        self.last_sent = time.monotonic()

    def pump(self, timeout=0.02):
        if self._welcome_due is not None and time.monotonic() >= self._welcome_due[0]:
            self._send(welcome=pb.Welcome(**self._welcome_due[1]))
            self._welcome_due = None
        if self.sock.poll(int(timeout * 1000)):
            while True:
                try:
                    rid, data = self.sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                except ValueError:
                    self.other.append("multi-part message")
                    continue
                try:
                    f = pb.Frame.FromString(data)
                except Exception as e:
                    self.other.append(f"undecodable: {e!r}")
                    continue
                kind = f.WhichOneof("body")
                if kind == "hello":
                    self.peer = rid
                    self.hellos.append(f.hello)
                    self.credit = f.hello.credit
                    self.delivered = 0
                    fields = dict(protocol_version=1, broker_id="fake-broker", journal_head=6,
                                  heartbeat_ms=self.heartbeat_ms, max_frame_bytes=self.max_frame_bytes,
                                  rules_version="0" * 64)
                    fields.update(self.welcome_fields)
                    if self.welcome_delay > 0:
                        self._welcome_due = (time.monotonic() + self.welcome_delay, fields)
                    else:
                        self._send(welcome=pb.Welcome(**fields))
                elif kind == "error":
                    self.errors.append(f.error)
                elif kind == "delivery_ack":
                    self.delivery_acks.append(f.delivery_ack)
                elif kind == "credit":
                    self.credit += f.credit.grant
                elif kind == "heartbeat":
                    pass
                elif kind == "publish":
                    self.publishes.append(f.publish)
                else:
                    self.other.append(kind)
        if self.peer is not None and (time.monotonic() - self.last_sent) * 1000 >= self.heartbeat_ms / 4:
            self._send(heartbeat=pb.Heartbeat(time_ms=now_ms()))

    def run_until(self, cond, timeout):
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() >= end:
                return False
            self.pump(0.02)
        return True

    def send_raw(self, data):
        """Bytes as one message to the node: frames protobuf would not write."""
        self.sock.send_multipart([self.peer, data])
        self.last_sent = time.monotonic()

    def deliver(self, seq, envelope, rule="tamper-test", emergency=False):
        self._send(deliver=pb.Deliver(seq=seq, envelope=envelope, rule=rule, emergency=emergency))
        self.delivered += 1

    def deliver_batch(self, items, rule="tamper-test"):
        self._send(deliver_batch=pb.DeliverBatch(deliveries=[pb.Deliver(seq=seq, envelope=env, rule=rule)
                                                                for seq, env in items]))
        self.delivered += len(items)

    def through_seq(self):
        return max([a.through_seq for a in self.delivery_acks] or [0])

    def answer(self, **body):
        """Any frame to the node (a PublishAck, a Receipt, an Error ...)."""
        self._send(**body)


class Agent:
    """One real xba-agent for node_id: agent.yaml, a copy of region.yaml, the node's keys from Region (made by the
    real `xba keygen`), the broker's CURVE public key pinned in a file, a SQLite store, an IPC socket and a log.
    broker: anything with .endpoint and .public_key (a Broker, or a fake broker written in Python)."""

    def __init__(self, t, region, node_id, broker, name=None, signing_key=None, **settings):
        self.t = t
        self.region = region
        self.id = node_id
        self.broker = broker
        self.name = name or f"agent-{node_id}"
        self.dir = os.path.join(t.dir, self.name)
        os.makedirs(self.dir)
        node = region.nodes[node_id]
        # An admin node's entry lists no signing key; its agent still has the file keygen wrote (it signs nothing).
        self.signing_key = signing_key or (node.signing_keys[0].pem_path if node.signing_keys else
                                           os.path.join(node.keys_dir, f"{node_id}.sign.key"))
        self.curve_secret_key = os.path.join(node.keys_dir, f"{node_id}.curve.key")
        self.config_path = os.path.join(self.dir, "agent.yaml")
        self.region_path = os.path.join(self.dir, "region.yaml")
        self.broker_key_path = os.path.join(self.dir, "broker.curve.pub")
        self.store_path = os.path.join(self.dir, "store.db")
        self.log_path = os.path.join(self.dir, "agent.log")
        self.socket = os.path.join(self.dir, "agent.sock")
        if len(self.socket) >= 100:        # sun_path is 108 bytes: use a short private directory instead
            short = tempfile.mkdtemp(prefix="xba-s-")
            t.defer(lambda: shutil.rmtree(short, ignore_errors=True))
            self.socket = os.path.join(short, f"{node_id}.sock")
        # wrapper=["ip", "netns", "exec", NS]: the agent runs under that command (e.g. in a network namespace).
        self.wrapper = list(settings.pop("wrapper", None) or [])
        self.settings = dict(credit=64, reconnect_min_ms=100, reconnect_max_ms=1000, log_level="info")
        self.settings.update(settings)
        self.proc = None
        self.starts = 0
        self.mark = 0
        self.write_region()
        self.write_broker_key()
        self.write_config()
        open(self.log_path, "w").close()
        t.defer(self._cleanup)

    # -- files --
    def write_region(self, text=None):
        with open(self.region_path, "w") as f:
            f.write(text if text is not None else self.region.yaml())

    def write_broker_key(self, key=None):
        key = key if key is not None else self.broker.public_key
        with open(self.broker_key_path, "wb") as f:
            f.write((key if isinstance(key, bytes) else key.encode()) + b"\n")

    def write_config(self, **overrides):
        self.settings.update(overrides)
        lines = ["# agent.yaml written by tests/e2e/xbatest.py", f"node_id: {self.id}",
                 f'broker: "{self.broker.endpoint}"', f"broker_public_key: {self.broker_key_path}",
                 f"signing_key: {self.signing_key}", f"curve_secret_key: {self.curve_secret_key}",
                 f"region: {self.region_path}", f"store: {self.store_path}", f"local_socket: {self.socket}"]
        lines += [f"{k}: {v}" for k, v in self.settings.items() if v is not None]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    # -- process --
    def start(self, wait=True, timeout=None, link=False):
        """Start xba-agent -c agent.yaml; with wait, until it logs event=agent.ready (and, with link, until it
        logs event=link.up)."""
        if self.alive():
            raise RuntimeError(f"{self.name} already running")
        self.mark = self.log_size()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.wrapper + [self.t.agent_bin, "-c", self.config_path], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, cwd=self.dir)
        log.close()
        self.starts += 1
        if wait:
            m = self.wait_log(r"event=agent\.ready", timeout or self.t.t(15), since=self.mark)
            if m is None:
                tail = self.log_text(self.mark)[-2000:]
                if self.alive():
                    self.proc.kill()
                    self.proc.wait()
                raise RuntimeError(f"{self.name} did not log event=agent.ready (exit {self.proc.poll()}): {tail}")
            if link and not self.wait_link(timeout):
                raise RuntimeError(f"{self.name} did not log event=link.up: {self.log_text(self.mark)[-2000:]}")
        return self

    def wait_link(self, timeout=None, since=None):
        """Until the agent logs event=link.up (after `since`, default: its last start)."""
        return self.wait_log(r"event=link\.up", timeout or self.t.t(15),
                             since=self.mark if since is None else since) is not None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=None):
        """SIGTERM, wait; the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout or self.t.t(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def _cleanup(self):
        """SIGTERM (so that a sanitizer build reports leaks at exit), kill if it does not stop; then one check:
        no AddressSanitizer / UndefinedBehaviorSanitizer report in the agent's log over the whole test."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.t.t(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            reports = self.sanitizer_reports()
            self.t.check(not reports, f"{self.name}: no sanitizer report in its log", " | ".join(reports[:3]))

    def sanitizer_reports(self):
        return [line for line in self.log_text().splitlines()
                if "runtime error:" in line or "Sanitizer" in line][:10]

    def check_config(self, path=None):
        r = subprocess.run([self.t.agent_bin, "--check", "-c", path or self.config_path], capture_output=True,
                           text=True, timeout=self.t.t(20), cwd=self.dir)
        return r.returncode, (r.stdout + r.stderr).strip()

    # -- log --
    def log_size(self):
        return os.path.getsize(self.log_path)

    def log_text(self, since=0):
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout, since=0):
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while True:
            for line in self.log_text(since).splitlines():
                m = rx.search(line)
                if m:
                    return m
            if time.monotonic() >= end:
                return None
            time.sleep(0.03)

    def events(self, event, since=0):
        out = []
        for line in self.log_text(since).splitlines():
            if re.search(r"\bevent=" + re.escape(event) + r"(\s|$)", line):
                rec = parse_log_line(line)
                rec["_line"] = line
                out.append(rec)
        return out

    # -- the CLI against this agent --
    def cli(self, *args, **kw):
        return cli(self.t, self.socket, *args, **kw)

    def status(self):
        """`xba status --json` as a dict (None if it printed no JSON)."""
        r = self.cli("status", "--json")
        j = r.json()
        return j[0] if j else None

    def watch(self, *args, **kw):
        return Watch(self.t, self.socket, *args, **kw)

    def background(self, *args, **kw):
        """`xba ARGS` against this agent, running in the background (a Background)."""
        return Background(self.t, self.socket, *args, **kw)

    def history(self, *args):
        """`xba history --json ARGS` -> list of dicts."""
        return self.cli("history", "--json", *args).json()

    def wait_status(self, cond, timeout):
        """Poll `xba status --json` until cond(status dict); the last status."""
        end = time.monotonic() + timeout
        while True:
            s = self.status()
            if s is not None and cond(s):
                return s
            if time.monotonic() >= end:
                return s
            time.sleep(0.1)


def start_agents(t, region, broker, node_ids):
    """A real xba-agent for each node id, started together; returns {id: Agent} once each is ready and has its link
    up (a check per agent)."""
    agents = {nid: Agent(t, region, nid, broker) for nid in node_ids}
    for a in agents.values():
        a.start(wait=False)
    for nid, a in agents.items():
        if a.wait_log(r"event=agent\.ready", t.t(15), since=a.mark) is None:
            raise RuntimeError(f"{nid} did not start: {a.log_text()[-1500:]}")
        t.check(a.wait_link(t.t(15)), f"agent {nid}: link up")
    return agents


SEND_ID = re.compile(r"alert ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
ACCEPTED = re.compile(r"accepted by the broker: (\d+) recipients?")


def sent_id(result):
    """The alert id `xba send` / `xba broadcast` printed (text or --json), or None."""
    for j in result.json():
        if j.get("alert_id"):
            return j["alert_id"]
    m = SEND_ID.search(result.out)
    return m.group(1) if m else None


def accepted_recipients(result):
    """N from "accepted by the broker: N recipients", or None."""
    m = ACCEPTED.search(result.out)
    return int(m.group(1)) if m else None
