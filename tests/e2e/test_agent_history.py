"""test_agent_history.py — a long history at an agent is read page by page, never cut without a word.

A fake broker (x.FakeBroker) delivers 700 valid alerts to a real xba-agent (LBY), half from NER and half from TCD,
in DeliverBatch frames within the agent's window, while LBY's officers send three alerts of their own (the fake
broker never answers them, so they stay in the outbox: still LBY's history).  One reply of the local socket holds
at most 1000 entries and 768 KiB (about 260 such alerts), so:

- `xba history --json --limit 650` pages until it has the newest 650, each once, newest first;
- `--outgoing --limit 2000` merges the inbox and what LBY sent by time across pages: 703 entries, each once, the
  alert sent midway between the deliveries before and after it;
- a filter holds across pages (`--origin NER`: the 350 from NER);
- `xba history` (text, default limit 100) says that more match;
- `xba history --id` finds the oldest alert, far beyond one page (it once answered "no alert" for anything older
  than the newest few hundred), and an alert LBY sent.

usage: /usr/bin/python3 tests/e2e/test_agent_history.py BUILD_DIR SOURCE_ROOT
"""
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import xbatest as x  # noqa: E402

DELIVERED = 700
BATCH = 50


def main(t):
    region = x.sahel_region(t)
    fake = x.FakeBroker(t)
    lby = x.Agent(t, region, "LBY", fake)
    lby.start()
    t.check(fake.run_until(lambda: lby.events("link.up"), t.t(15)), "the agent connects to the (fake) broker")
    window = fake.hellos[0].credit if fake.hellos else 0
    t.check(window >= BATCH, f"a window of at least {BATCH}", str(window))

    def send(headline):
        r = lby.cli("send", "--category", "smuggling", "--severity", "severe", "--lang", "en", "--headline",
                    headline, "--wait", "0")
        t.eq(r.rc, 3, f"LBY sends '{headline}': queued, exit 3 (this broker never confirms)")
        return x.sent_id(r)

    alerts = [x.alert("NER" if i % 2 == 0 else "TCD", headline=f"Convoy report {i}") for i in range(DELIVERED)]
    sent = {0: send("sent before the deliveries")}
    for start in range(0, DELIVERED, BATCH):
        if start == DELIVERED // 2:
            sent[start] = send("sent midway")
        fake.run_until(lambda: fake.credit - fake.delivered >= BATCH, t.t(15))
        fake.deliver_batch([(i + 1, region.seal(alerts[i])) for i in range(start, start + BATCH)])
    t.check(fake.run_until(lambda: fake.through_seq() >= DELIVERED, t.t(60)),
            f"the agent stores and acknowledges all {DELIVERED} deliveries", str(fake.through_seq()))
    sent[DELIVERED] = send("sent after the deliveries")
    s = lby.status() or {}
    t.check(s.get("inbox_count") == DELIVERED and s.get("outbox_depth") == 3,
            f"status: inbox_count {DELIVERED}, outbox_depth 3", str(s))

    newest_first = [a.id for a in reversed(alerts)]
    got = [e.get("id") for e in lby.history("--limit", "650")]
    t.eq(len(got), 650, "history --json --limit 650: 650 entries (several replies of the local socket)")
    t.check(got == newest_first[:650], "... the newest 650, each once, newest first")
    got = [e.get("id") for e in lby.history()]
    t.check(got == newest_first[:100], "history --json: the newest 100 (the default limit)", str(len(got)))

    merged = [e.get("id") for e in lby.history("--outgoing", "--limit", "2000")]
    t.eq(len(merged), DELIVERED + 3, "history --outgoing --limit 2000: every delivery and every sent alert")
    t.eq(len(set(merged)), len(merged), "... each once, across the pages")
    t.check(merged[:1] == [sent[DELIVERED]] and merged[-1:] == [sent[0]],
            "... the alert sent last first, the one sent before any delivery last", str(merged[:1] + merged[-1:]))
    if sent[DELIVERED // 2] in merged:
        at = merged.index(sent[DELIVERED // 2])
        t.check(merged[at - 1] == alerts[DELIVERED // 2].id and merged[at + 1] == alerts[DELIVERED // 2 - 1].id,
                "... the alert sent midway between the deliveries after and before it", str(merged[at - 1:at + 2]))
    else:
        t.check(False, "the alert sent midway is in the merged history", str(merged[:3]))

    ner = [e.get("id") for e in lby.history("--origin", "NER", "--limit", "1000")]
    t.check(ner == [a.id for a in reversed(alerts) if a.origin == "NER"],
            f"history --origin NER --limit 1000: the {DELIVERED // 2} from NER only, newest first, across pages",
            str(len(ner)))

    r = lby.cli("history")
    t.check(r.rc == 0 and "Convoy report 699" in r.out and "more match" in r.out and "--limit" in r.out,
            "history (text): the newest alerts, and a last line saying that more match", r.out[-300:])
    r = lby.cli("history", "--since", "1h", "--limit", "1000")
    t.check(r.rc == 0 and "more match" not in r.out, "... and no such line when the limit covers every match",
            r.out[-200:])

    oldest = alerts[0]
    r = lby.cli("history", "--id", oldest.id)
    t.check(r.rc == 0 and "Convoy report 0" in r.out,
            "history --id finds the oldest alert, 700 entries back", repr(r)[-300:])
    got = lby.history("--id", oldest.id)
    t.check(len(got) == 1 and got[0].get("id") == oldest.id and got[0].get("seq") == 1,
            "history --id --json: that alert once, with its seq", str(got)[:300])
    got = lby.history("--id", sent[0])
    t.check(len(got) == 1 and got[0].get("id") == sent[0] and got[0].get("outgoing") is True,
            "history --id finds an alert LBY sent too (as outgoing)", str(got)[:300])
    r = lby.cli("history", "--id", "00000000-0000-4000-8000-000000000000")
    t.check(r.rc == 1 and r.err.startswith("xba: history: no alert") and r.out == "",
            "history --id of an alert the agent does not hold: exit 1, one line on stderr", repr(r))


if __name__ == "__main__":
    x.main(main)
