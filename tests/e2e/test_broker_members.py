"""test_broker_members.py — the audit of a journal that spans a change of membership (docs/operations.md sections
4 and 7).

Real xba-broker; nodes are Python clients (docs/protocol.md).  NER sends two smuggling alerts to its neighbours;
the secretariat then admits MLI as NER's neighbour (a new region.yaml, SIGHUP); MLI sends one and NER two more,
which now reach MLI too.  No single region.yaml can pass `xba audit verify` on that journal: the one before the
change does not know MLI's key (NOT VALID), the one after routes NER's first alerts to MLI as well (ROUTED
OTHERWISE).  Given both, the audit passes: every signature under the directory of its day, every routing
reproduced by the rules with one of them.  A third file that revokes NER's key from a moment after its second
alert fails the alerts it signed after that, although the first two files still list the key: a revocation in
any file stands.

usage: /usr/bin/python3 tests/e2e/test_broker_members.py BUILD_DIR SOURCE_ROOT
"""
import os
import shutil
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402


def main(t):
    region = x.region_of_five(t, "members-e2e")
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES).start()
    before = os.path.join(t.dir, "region-before.yaml")
    shutil.copy(broker.region_path, before)
    net = x.Net(t)
    ner = net.node(region, "NER", broker)
    net.connect_all()

    def publish(node, headline):
        a = x.alert(node.id, headline=headline)
        ack = node.publish_wait(region.seal(a))
        t.check(ack is not None and x.code_name(ack.result) == "OK", f"{node.id}: '{headline}' accepted", ack)
        return ack

    publish(ner, "convoy 1")
    publish(ner, "convoy 2")
    time.sleep(1.2)
    revoked_at = x.rfc3339(x.now_ms())     # after convoy 2, before anything that follows
    time.sleep(1.2)

    # ---- the secretariat admits MLI, NER's neighbour ------------------------------------------------------------
    region.add("MLI", name="Mali", role="member", neighbours=["NER"])
    mark = broker.log_size()
    broker.write_region()
    broker.hup()
    t.check(broker.wait_log(r"event=rules\.reloaded .*nodes=7", t.t(10), since=mark, net=net) is not None,
            "the broker reloads region.yaml with MLI (7 nodes)")
    after = os.path.join(t.dir, "region-after.yaml")
    shutil.copy(broker.region_path, after)
    mli = net.node(region, "MLI", broker)
    net.connect_all([mli])
    publish(mli, "convoy seen from Mali")
    ack = publish(ner, "convoy 3")
    t.eq(ack.recipients if ack else None, 4, "NER's alerts now reach MLI too (DZA, LBY, TCD, MLI)")
    publish(ner, "convoy 4")

    rules = broker.rules_path
    rc, out = x.audit_verify(t, broker.journal_path, "--region", after, "--rules", rules)
    t.check(rc == 1 and "ROUTED OTHERWISE" in out and "rules only: to MLI" in out,
            "with today's region.yaml alone: NER's first alerts ROUTED OTHERWISE (today MLI would get them)", out)
    rc, out = x.audit_verify(t, broker.journal_path, "--region", before, "--rules", rules)
    t.check(rc == 1 and "NOT VALID" in out and "from MLI" in out,
            "with the region.yaml before the change alone: MLI's alert NOT VALID (its key unknown)", out)
    rc, out = x.audit_verify(t, broker.journal_path, "--region", before, "--region", after, "--rules", rules)
    t.check(rc == 0 and "signatures: 5 of 5 verified against the region directories given" in out and
            "5 as the rules say, 0 ROUTED OTHERWISE" in out,
            "with both: every signature and every routing checked, exit 0", out)

    # A revocation in any of the files stands, whichever file the key verifies under.
    region.nodes["NER"].signing_keys[0].revoked_at = revoked_at
    revoked = os.path.join(t.dir, "region-revoked.yaml")
    region.write(revoked)
    rc, out = x.audit_verify(t, broker.journal_path, "--region", before, "--region", after, "--region", revoked)
    t.check(rc == 1 and "signatures: 3 of 5" in out and out.count("was revoked at") == 2,
            "with a later file that revokes NER's key after convoy 2: convoys 3 and 4 NOT VALID, though the "
            "earlier files still list the key", out)


if __name__ == "__main__":
    x.main(main)
