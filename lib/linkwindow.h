/*
 * linkwindow.h — how many messages go onto one slow link at a time: the broker's deliveries to a node, below the
 * credit the node granted, and an agent's publishes to the broker.  See linkwindow.c.
 */
#ifndef XBA_LINKWINDOW_H
#define XBA_LINKWINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LINK_WINDOW_START 8          /* deliveries in flight a new session starts with */
#define LINK_WINDOW_MIN 2            /* never fewer: a cut link still moves */
#define LINK_QUEUE_TARGET_MS 1000    /* acknowledgements this much slower than the fastest recent one: cut */
#define LINK_BASE_BUCKET_MS 60000    /* the fastest acknowledgement is remembered for one to two of these */

struct link_window {
	uint32_t window;                  /* deliveries allowed in flight now */
	uint32_t max;                     /* the most it grows to (the broker's max_credit) */
	bool slow_start;                  /* doubling per round until the first cut, then one more per round */
	uint32_t grown;                   /* acknowledged since the window last grew by one (after the first cut) */
	int64_t base_ms[2];               /* fastest acknowledgement in this bucket and the one before (-1: none) */
	int64_t bucket_start_mono;
	int64_t cut_mono;                 /* the last cut: only deliveries sent after it may cut again */
	uint64_t cuts;                    /* cuts this session, for node.status */
	int64_t queue_ms;                 /* the last queueing delay measured */
};

/* A new session: the window at LINK_WINDOW_START (at most max), nothing measured. */
void link_window_reset(struct link_window *w, uint32_t max, int64_t now_mono);

/* Ordinary deliveries that may go now, with in_flight on their way. */
size_t link_window_room(const struct link_window *w, size_t in_flight);

/*
 * An acknowledgement of acked deliveries, the newest of which was sent at sent_mono, when the window was full
 * (was_full) or not, arriving at now_mono less what the peer says it held the message (its disk's commit: not the
 * link's; DeliveryAck.held_ms, PublishAck.held_ms).  Returns true when it cut the window (the link is queueing).
 */
bool link_window_acked(struct link_window *w, int64_t sent_mono, bool was_full, size_t acked, int64_t now_mono);

#endif
