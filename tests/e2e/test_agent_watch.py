"""test_agent_watch.py — `xba watch` over a long shift: a watch the agent dropped for falling behind finds out and
subscribes again, and a new watch recalls every unacknowledged emergency, however far back in the backlog.

Real xba-broker, a real xba-agent NER, `xba watch --json` processes; LBY is a protocol node of xbatest.py.

1. Two emergencies from LBY, not acknowledged; then a watch is paused (SIGSTOP, a frozen terminal) while 21 000
   alerts arrive.  The agent drops it (`local.unsubscribed reason=too-slow`: 5 000 messages queued).  Before, the
   watch, once resumed, printed what was queued and then nothing more, for good, not even a later emergency; it
   now asks the agent whether it is still served when it falls quiet (AgentStatusReply.watching), says it was
   dropped, subscribes again from the last alert it showed, and shows the emergency sent after it woke.
2. A watch started after that backlog: its replay is the newest 1 000 alerts, and the two emergencies are 21 000
   alerts older.  They are replayed first all the same, so that the next shift's watch names them until someone
   acknowledges them.
3. An emergency acknowledged here, then the agent restarts: the watch does not show it again, and the next
   shift's watch shows it as acknowledged here (no bell, no reverse video).
4. An emergency replaced by its sender is recalled as the update; once withdrawn, nothing is recalled.

usage: /usr/bin/python3 tests/e2e/test_agent_watch.py BUILD_DIR SOURCE_ROOT
"""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xbatest as x  # noqa: E402

FLOOD = 21000


def main(t):
    region = x.Region(t, "watch-e2e")
    region.add("LBY", name="Libya", role="member", neighbours=["NER"], may_broadcast=True)
    region.add("NER", name="Niger", role="member")
    region.write()
    broker = x.Broker(t, region, x.NEIGHBOUR_RULES, rate_per_second=100000, rate_burst=100000).start()
    ner = x.Agent(t, region, "NER", broker, credit=1024).start(link=True)
    net = x.Net(t)
    lby = net.node(region, "LBY", broker, max_inflight=256)
    net.connect_all()

    old = []
    for i in range(2):
        em = x.alert("LBY", severity=x.C.EXTREME, emergency=True, headline=f"Naufrage au large, groupe {i}")
        lby.publish_wait(region.seal(em))
        old.append(em.id)

    paused = ner.watch("--remind", "0")
    t.check(paused.wait_ids(old, t.t(15)), "a watch shows the two emergencies", str(paused.ids()[:4]))
    paused.proc.send_signal(signal.SIGSTOP)
    mark = ner.log_size()
    for i in range(FLOOD):
        lby.publish(region.seal(x.alert("LBY", headline=f"rapport {i}")))
        if i % 256 == 255:
            net.run_until(lambda: len(lby.outbox) < 128, t.t(60))
    net.run_until(lambda: not lby.outbox, t.t(120))
    ner.wait_status(lambda s: s.get("inbox_count", 0) >= FLOOD + 2, t.t(120))
    dropped = ner.wait_log(r"event=local\.unsubscribed peer=ipc reason=too-slow", t.t(30), since=mark)
    t.check(dropped is not None, f"the paused watch is dropped by the agent once {FLOOD} alerts queue up for it",
            ner.log_text(mark)[-600:])
    paused.proc.send_signal(signal.SIGCONT)
    time.sleep(1.0)
    later = x.alert("LBY", severity=x.C.EXTREME, emergency=True, headline="Second naufrage, après le réveil")
    lby.publish_wait(region.seal(later))
    shown = paused.wait_ids([later.id], t.t(90))
    t.check(shown and "subscribing again" in paused.stderr(),
            "the resumed watch finds it was dropped, subscribes again, and shows the emergency sent after it woke",
            f"shown={shown} stderr={paused.stderr()[-400:]}")

    fresh = ner.watch("--remind", "0")
    t.check(fresh.wait_ids(old + [later.id], t.t(30)),
            "a new watch replays the unacknowledged emergencies 21 000 alerts back, not only the newest 1 000",
            f"{len(fresh.ids())} entries, first {fresh.ids()[:3]}")
    ids = fresh.ids()
    t.check(ids[:2] == old, "... first, oldest first", str(ids[:3]))
    t.check("older unacknowledged emergencies" in fresh.stderr(),
            "... and it says it replayed them before the newest 1 000", fresh.stderr()[-300:])
    fresh.stop()
    paused.stop()

    # 3. An emergency acknowledged here, then the agent restarts: the watch subscribes again from the last alert it
    #    showed, and must not show that one again (it did: an acknowledged alert skipped the check, so the banner
    #    came back).  A new watch then shows it as acknowledged here, not as one that needs someone.
    # --since is whole seconds: start it after the second in which part 1's last emergency arrived, or (on a fast
    # run) that one is shown too and counted as a second banner.
    time.sleep(2.1)
    since = x.rfc3339(x.now_ms())
    text = ner.watch("--remind", "0", "--since", since, json_output=False)
    last = x.alert("LBY", severity=x.C.EXTREME, emergency=True, headline="Troisième naufrage, acquitté")
    lby.publish_wait(region.seal(last))
    t.check(text.wait(lambda: "Troisième naufrage" in text.text(), t.t(30)), "a text watch shows the emergency",
            text.text()[-400:])
    r = ner.cli("ack", last.id, "--officer", "Moussa", "--note", "reçu")
    t.check(r.rc == 0, "an officer here acknowledges it", repr(r))
    text.wait(lambda: "acknowledged: " + last.id in text.text(), t.t(10))
    ner.stop()
    ner.start(link=True)
    net.run_until(lambda: False, 1.0)
    text.wait(lambda: "connected to the agent again" in text.stderr(), t.t(40))
    time.sleep(2.0)
    t.check("NO CONNECTION TO THE AGENT" in text.stderr() and "connected to the agent again" in text.stderr() and
            text.text().count("Troisième naufrage") == 1 and
            text.text().count("EMERGENCY BROADCAST") == 1,
            "after the agent restarts, the watch subscribes again and does not show the acknowledged emergency twice",
            text.text()[-1500:] + text.stderr()[-300:])
    text.stop()
    handover = ner.watch("--remind", "0", "--since", since, json_output=False)
    t.check(handover.wait(lambda: "Troisième naufrage" in handover.text(), t.t(30)) and
            "EMERGENCY BROADCAST from LBY (acknowledged here)" in handover.text(),
            "the next shift's watch shows it as acknowledged here, not as one that needs someone",
            handover.text()[-800:])
    handover.stop()

    # 4. An emergency replaced by its sender: the watch recalls the update in its place (it recalled nothing: the
    #    list was searched before the replaced one left it).  Then the sender withdraws it: the cancel is not
    #    itself recalled as an emergency (it was, with an empty headline, every few seconds).
    since = x.rfc3339(x.now_ms() - 1000)
    w = ner.watch("--remind", "2", "--since", since, json_output=False)
    first = x.alert("LBY", severity=x.C.EXTREME, emergency=True, headline="Quatrième naufrage")
    lby.publish_wait(region.seal(first))
    t.check(w.wait(lambda: "UNACKNOWLEDGED EMERGENCY from LBY: Quatrième naufrage" in w.text(), t.t(20)),
            "a watch recalls an unacknowledged emergency", w.text()[-600:])
    update = x.alert("LBY", severity=x.C.EXTREME, emergency=True, msg_type=x.C.UPDATE, references=[first.id],
                     headline="Quatrième naufrage : 40 personnes")
    lby.publish_wait(region.seal(update))
    t.check(w.wait(lambda: "UNACKNOWLEDGED EMERGENCY from LBY: Quatrième naufrage : 40 personnes" in w.text(),
                   t.t(20)), "... its sender replaces it: the watch recalls the update in its place", w.text()[-800:])
    cancel = x.alert("LBY", severity=x.C.EXTREME, emergency=True, msg_type=x.C.CANCEL,
                     references=[first.id, update.id], headline="Fausse alerte")
    lby.publish_wait(region.seal(cancel))
    w.wait(lambda: cancel.id in w.text(), t.t(20))
    mark = len(w.text())
    time.sleep(5.0)
    later = w.text()[mark:]
    t.check(cancel.id in w.text() and "UNACKNOWLEDGED EMERGENCY" not in later,
            "... then withdraws it: nothing is recalled any more (the cancel is not an emergency to recall)",
            later[-600:])
    w.stop()
    net.close()


if __name__ == "__main__":
    x.main(main, deadline_s=300)
