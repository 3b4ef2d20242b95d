/*
 * linkwindow.c — how many messages go onto one link at a time: the broker's ordinary deliveries to a node, below
 * the credit the node granted (broker/deliver.c asks it before each delivery pass and tells it of each
 * DeliveryAck), and an agent's ordinary publishes to the broker (agents/uplink.c, told of each PublishAck).
 *
 * Why: the credit window says what the node will store, not what its link carries.  On a satellite link at 32
 * kbit/s a window of 64 ordinary alerts of 1 KiB is about 20 s of bytes in the sockets' buffers, and an emergency
 * routed after them waits behind all of it (TCP delivers in order).  So the broker keeps no more on the link than
 * it drains in about LINK_QUEUE_TARGET_MS more than its fastest recent round trip, judged by the delay of the
 * acknowledgements (a delay-based window, as LEDBAT does for bulk transfers): it starts at LINK_WINDOW_START,
 * doubles per round while the delay stays low and the window was full, halves (once per round) when the delay
 * grows past the target, and then grows by one per round.  On a LAN the round trip is milliseconds and the window
 * reaches the credit in a few rounds; it never goes under LINK_WINDOW_MIN.  Emergencies do not wait for it
 * (deliver.c sends them within the credit alone, uplink.c within its in-flight limit): they still wait behind what
 * is on the link, which this keeps to about a second's worth.  The same holds the other way: an agent draining a
 * backlog of its country's alerts over the satellite link keeps about a second's worth of them in flight, not 64.
 *
 * The fastest acknowledgement is kept per minute bucket, the current one and the one before, so that a round trip
 * that grew for good (a new route) is learnt within two minutes instead of reading as queueing forever.
 */
#include "linkwindow.h"

static int64_t
base_ms(const struct link_window *w)
{
	if (w->base_ms[0] < 0)
		return w->base_ms[1];
	if (w->base_ms[1] < 0 || w->base_ms[0] < w->base_ms[1])
		return w->base_ms[0];
	return w->base_ms[1];
}

void
link_window_reset(struct link_window *w, uint32_t max, int64_t now_mono)
{
	w->max = max < LINK_WINDOW_MIN ? LINK_WINDOW_MIN : max;
	w->window = LINK_WINDOW_START < w->max ? LINK_WINDOW_START : w->max;
	w->slow_start = true;
	w->grown = 0;
	w->base_ms[0] = w->base_ms[1] = -1;
	w->bucket_start_mono = now_mono;
	w->cut_mono = now_mono;
	w->cuts = 0;
	w->queue_ms = 0;
}

size_t
link_window_room(const struct link_window *w, size_t in_flight)
{
	return in_flight < w->window ? w->window - in_flight : 0;
}

static void
note_round_trip(struct link_window *w, int64_t rtt_ms, int64_t now_mono)
{
	if (now_mono - w->bucket_start_mono >= 2 * LINK_BASE_BUCKET_MS) {
		w->base_ms[0] = w->base_ms[1] = -1; /* quiet for two buckets: nothing recent to compare with */
		w->bucket_start_mono = now_mono;
	} else if (now_mono - w->bucket_start_mono >= LINK_BASE_BUCKET_MS) {
		w->base_ms[1] = w->base_ms[0];
		w->base_ms[0] = -1;
		w->bucket_start_mono = now_mono;
	}
	if (w->base_ms[0] < 0 || rtt_ms < w->base_ms[0])
		w->base_ms[0] = rtt_ms;
}

bool
link_window_acked(struct link_window *w, int64_t sent_mono, bool was_full, size_t acked, int64_t now_mono)
{
	int64_t rtt_ms = now_mono - sent_mono;

	if (acked == 0)
		return false;
	if (rtt_ms < 0)
		rtt_ms = 0;
	note_round_trip(w, rtt_ms, now_mono);
	w->queue_ms = rtt_ms - base_ms(w);
	if (w->queue_ms > LINK_QUEUE_TARGET_MS) {
		/* One cut per round: what was sent before the last cut was queued behind the old window. */
		if (sent_mono <= w->cut_mono)
			return false;
		w->window = w->window / 2 < LINK_WINDOW_MIN ? LINK_WINDOW_MIN : w->window / 2;
		w->slow_start = false;
		w->grown = 0;
		w->cut_mono = now_mono;
		w->cuts++;
		return true;
	}
	/* Grow only when the window was what held deliveries back, and the link shows little queueing. */
	if (!was_full || w->queue_ms > LINK_QUEUE_TARGET_MS / 2 || w->window >= w->max)
		return false;
	if (w->slow_start) {
		w->window = acked >= w->max - w->window ? w->max : w->window + (uint32_t)acked;
		return false;
	}
	w->grown += acked > UINT32_MAX ? UINT32_MAX : (uint32_t)acked;
	if (w->grown >= w->window) {
		w->grown -= w->window;
		w->window++;
	}
	return false;
}
