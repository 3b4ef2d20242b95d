/*
 * test_linkwindow.c — the link window (broker/linkwindow.c): how many deliveries the broker lets onto one node's
 * link, grown while acknowledgements come back fast and cut when they slow down; times are given, not read.
 */
#include <stdint.h>

#include "check.h"
#include "linkwindow.h"

static void
test_start_and_room(struct check_state *t)
{
	struct link_window w;

	link_window_reset(&w, 1024, 0);
	CHECK(t, w.window == LINK_WINDOW_START);
	CHECK(t, link_window_room(&w, 0) == LINK_WINDOW_START);
	CHECK(t, link_window_room(&w, 3) == LINK_WINDOW_START - 3);
	CHECK(t, link_window_room(&w, LINK_WINDOW_START) == 0);
	CHECK(t, link_window_room(&w, LINK_WINDOW_START + 5) == 0); /* emergencies went past it */
	link_window_reset(&w, 4, 0);
	CHECK(t, w.window == 4); /* never past the broker's max_credit */
	link_window_reset(&w, 1, 0);
	CHECK(t, w.window == LINK_WINDOW_MIN && w.max == LINK_WINDOW_MIN);
}

/* A LAN: acknowledgements in milliseconds; the window doubles per round while it is what holds deliveries. */
static void
test_slow_start_on_a_lan(struct check_state *t)
{
	struct link_window w;
	int64_t now = 1000;

	link_window_reset(&w, 1024, now);
	CHECK(t, !link_window_acked(&w, now, true, 8, now + 2));
	CHECK(t, w.window == 16);
	now += 2;
	CHECK(t, !link_window_acked(&w, now, true, 16, now + 3));
	CHECK(t, w.window == 32);
	/* Not full when it went: the window was not what held deliveries back, so it does not grow. */
	CHECK(t, !link_window_acked(&w, now, false, 5, now + 3));
	CHECK(t, w.window == 32);
	for (int i = 0; i < 10; i++)
		(void)link_window_acked(&w, now, true, w.window, now + 2);
	CHECK(t, w.window == 1024); /* at max_credit, and no further */
	CHECK(t, w.cuts == 0);
	CHECK(t, !link_window_acked(&w, now, true, 0, now + 5000)); /* nothing acknowledged: nothing learnt */
	CHECK(t, w.window == 1024);
}

/* A slow link: the round trip grows past the fastest one by more than the target; one cut per round. */
static void
test_cut_once_per_round(struct check_state *t)
{
	struct link_window w;
	int64_t now = 0;

	link_window_reset(&w, 1024, now);
	(void)link_window_acked(&w, 0, true, 8, 600);          /* base: 600 ms (a satellite round trip) */
	CHECK(t, w.window == 16);
	(void)link_window_acked(&w, 600, true, 16, 1500);      /* 900 ms: 300 of queueing, under half the target */
	CHECK(t, w.window == 32);
	CHECK(t, link_window_acked(&w, 1500, true, 32, 3200)); /* 1700 ms: 1100 ms of queueing, past the target */
	CHECK(t, w.window == 16 && w.cuts == 1 && w.queue_ms == 1100);
	/* Sent before that cut: queued behind the old window, so it does not cut again. */
	CHECK(t, !link_window_acked(&w, 3100, true, 16, 4800));
	CHECK(t, w.window == 16 && w.cuts == 1);
	/* Sent after it and still slow: the next round cuts again. */
	CHECK(t, link_window_acked(&w, 3300, true, 16, 5000));
	CHECK(t, w.window == 8 && w.cuts == 2);
	/* Never below the minimum. */
	for (int64_t sent = 5100; sent < 20000; sent += 1000)
		(void)link_window_acked(&w, sent, true, 2, sent + 3000);
	CHECK(t, w.window == LINK_WINDOW_MIN);
}

/* After a cut it grows by one per window's worth acknowledged, not by doubling. */
static void
test_growth_after_a_cut(struct check_state *t)
{
	struct link_window w;

	link_window_reset(&w, 1024, 0);
	(void)link_window_acked(&w, 0, true, 8, 100);          /* base 100 ms, window 16 */
	CHECK(t, link_window_acked(&w, 200, true, 16, 1400)); /* 1200 ms: cut to 8 */
	CHECK(t, w.window == 8 && !w.slow_start);
	(void)link_window_acked(&w, 1500, true, 4, 1600);      /* 4 of a window of 8: not yet */
	CHECK(t, w.window == 8);
	(void)link_window_acked(&w, 1600, true, 4, 1700);      /* 8: one more */
	CHECK(t, w.window == 9);
	/* Acknowledgements at half the target's queueing or more: neither grow nor cut. */
	(void)link_window_acked(&w, 1700, true, 9, 1700 + 100 + 700);
	CHECK(t, w.window == 9 && w.cuts == 1);
}

/* The fastest round trip is remembered for one to two minutes: a route that got slower for good is learnt. */
static void
test_base_expires(struct check_state *t)
{
	struct link_window w;

	link_window_reset(&w, 1024, 0);
	(void)link_window_acked(&w, 0, true, 8, 50);           /* base 50 ms */
	CHECK(t, w.window == 16);
	/* 30 s later, 2.5 s round trips: queueing against the 50 ms base, cut. */
	CHECK(t, link_window_acked(&w, 30000, true, 16, 32500));
	CHECK(t, w.window == 8);
	/* Three minutes on, the same 2.5 s is the only round trip the last two minutes saw: no queueing. */
	CHECK(t, !link_window_acked(&w, 200000, true, 8, 202500));
	CHECK(t, w.queue_ms == 0 && w.window == 9);
	/* A round trip measured backwards (a clock that cannot go back, but a caller that might): zero, not negative. */
	CHECK(t, !link_window_acked(&w, 210000, false, 1, 209000));
	CHECK(t, w.queue_ms == 0);
}

int
main(void)
{
	struct check_state t = { 0 };

	RUN(&t, test_start_and_room);
	RUN(&t, test_slow_start_on_a_lan);
	RUN(&t, test_cut_once_per_round);
	RUN(&t, test_growth_after_a_cut);
	RUN(&t, test_base_expires);
	return check_finish(&t);
}
