/*
 * server.c — the broker's event loop: one ROUTER socket with CURVE, the ZAP handler, the signal pipe, and timers.
 * Each loop turn drains up to group_commit_max frames in chunks (each chunk: read, verify its publishes on the
 * verification pool, dispatch in arrival order with one switch on the frame type), commits the journal
 * transaction they opened (one fsync), releases the acknowledgements and receipts the commit made true,
 * runs a delivery pass, then heartbeats.  Every frame from the network goes through frame_decode() first; a bad
 * frame is answered with an Error frame and disturbs nothing else.
 */
#define _GNU_SOURCE /* SCHED_BATCH (Linux): see io_threads_batch */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "broker.h"
#include "clock.h"
#include "encoding.h"
#include "frame.h"
#include "log.h"
#include "xba_config.h"

#if XBA_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#define NOTIFY(text) sd_notify(0, text)
#else
#define NOTIFY(text) ((void)0)
#endif

#define HARD_FRAME_FACTOR 4 /* frames over max_frame_bytes get FRAME_TOO_LARGE; over 4x the connection is cut */
/* A connection that has not finished its CURVE handshake by then is closed (libzmq's default is 30 s, during which
 * anyone's keyless connection holds a descriptor).  Measured through a relay at 700 ms each way and 32 kbit/s, a
 * satellite agent's handshake took 4.4 s at the broker: 10 s leaves room for a lost packet, and the agent waits
 * 30 s for its Welcome. */
#define BROKER_HANDSHAKE_MS 10000
#define PRUNE_INTERVAL_MS (3600 * 1000)
/* Not at start: a broker restarted with its clock a year ahead would prune what it delivered a minute ago before
 * any node could say what time it is (server_now_earliest).  Ten minutes give the nodes time to connect. */
#define PRUNE_FIRST_DELAY_MS (600 * 1000)
/* Alerts one prune transaction may delete: a prune held back for months (a node away) is released in batches. */
#define PRUNE_BATCH_ALERTS 20000
#define STATUS_DEPTH_CAP 10000 /* a StatusReply counts each queue (ordinary, emergencies) up to this: ~0.6 ms */
#define KEY_WARNING_INTERVAL_MS (86400 * 1000)
#define CHUNK_MAX 32   /* frames read, then verified together, then handled, at a time */
#define VERIFY_THREADS_AUTO_MAX 8
#define CHECKPOINT_INTERVAL_MS 20     /* WAL checkpoints by checkpointer.c, off the loop */
#define CHECKPOINT_SAFETY_PAGES 16384 /* 64 MiB of WAL: the loop checkpoints itself only past this */

/* ---- libzmq's I/O thread ----------------------------------------------------------------------------------- */

/*
 * Ask libzmq to run its threads (the I/O thread: CURVE and the sockets) as SCHED_BATCH, before the context starts
 * them.  Every zmq_send of a pass's acknowledgements and deliveries can wake the I/O thread; as an ordinary thread
 * on the loop's core it preempted the loop at each wake-up, so a pass of a few dozen sends became as many context
 * switches.  A SCHED_BATCH thread does not preempt on wake-up: it runs when the loop blocks (in the commit's fsync
 * or in zmq_poll) or its slice ends, and sends the pass's messages in one go.  It still gets its fair share of the
 * CPU.  Measured in docs/performance.md §3: about 15% less CPU per alert with the broker on one core, no worse on
 * two.  libzmq aborts when it cannot set the policy it was given, so the policy is first tried on this thread (and
 * put back); where it is not allowed (a seccomp filter, say) the threads keep the default and the broker says so.
 */
static bool
io_threads_batch(void *zmq_ctx)
{
	struct sched_param param, batch = { .sched_priority = 0 };
	int policy;

	if (pthread_getschedparam(pthread_self(), &policy, &param) != 0 ||
	    pthread_setschedparam(pthread_self(), SCHED_BATCH, &batch) != 0)
		return false;
	if (pthread_setschedparam(pthread_self(), policy, &param) != 0)
		return false;
	return zmq_ctx_set(zmq_ctx, ZMQ_THREAD_SCHED_POLICY, SCHED_BATCH) == 0;
}

/* ---- sending ---------------------------------------------------------------------------------------------- */

/* Routing id, then the frame as one part.  ROUTER_MANDATORY: an unknown peer is EHOSTUNREACH, never a silent drop. */
static int
send_bytes(struct server *server, const uint8_t *routing_id, size_t routing_len, const uint8_t *bytes, size_t len)
{
	if (zmq_send(server->router, routing_id, routing_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(server->router, bytes, len, ZMQ_DONTWAIT) < 0)
		return XBA_EIO;
	return 0;
}

static int
send_to(struct server *server, const uint8_t *routing_id, size_t routing_len, const Xba__V1__Frame *frame)
{
	uint8_t *bytes;
	size_t len;
	int rc;

	if (frame_encode(frame, &bytes, &len, NULL) != 0)
		return XBA_ENOMEM;
	rc = send_bytes(server, routing_id, routing_len, bytes, len);
	free(bytes);
	return rc;
}

int
server_send_encoded(struct server *server, size_t node_index, const uint8_t *bytes, size_t len)
{
	struct session *s = &server->sessions[node_index];

	if (!s->up)
		return XBA_ENOTFOUND;
	if (send_bytes(server, s->routing_id, s->routing_id_len, bytes, len) != 0) {
		session_drop(server, node_index, zmq_errno() == EAGAIN ? "send-buffer-full" : "peer-gone");
		return XBA_EIO;
	}
	s->last_sent_mono = clock_mono_ms();
	return 0;
}

int
server_send(struct server *server, size_t node_index, const Xba__V1__Frame *frame)
{
	uint8_t *bytes;
	size_t len;
	int rc;

	if (!server->sessions[node_index].up)
		return XBA_ENOTFOUND;
	if (frame_encode(frame, &bytes, &len, NULL) != 0)
		return XBA_ENOMEM;
	rc = server_send_encoded(server, node_index, bytes, len);
	free(bytes);
	return rc;
}

int
server_reply(struct server *server, const Xba__V1__Frame *frame)
{
	return send_to(server, server->scratch, server->scratch_len, frame);
}

static void
report_suppressed(const char *node_id, uint64_t *suppressed)
{
	log_warnx("event=log.suppressed node=%s records=%llu note=\"this node's frames caused more log records than %d "
		  "at once or %.0f a second; those were not written\"", node_id, (unsigned long long)*suppressed,
	    NODE_LOG_BURST, NODE_LOG_PER_SECOND);
	*suppressed = 0;
}

/* Each second, the records left out since the last report: a flood's count is said even if it stops there. */
static void
report_suppressed_due(struct server *server)
{
	int64_t now = clock_mono_ms();

	if (now < server->next_suppressed_report_mono)
		return;
	server->next_suppressed_report_mono = now + 1000;
	for (size_t i = 0; i < server->dir->n_nodes; i++)
		if (server->sessions[i].logs.suppressed > 0)
			report_suppressed(server->dir->nodes[i].id, &server->sessions[i].logs.suppressed);
	if (server->unlisted_logs.suppressed > 0)
		report_suppressed("(unlisted)", &server->unlisted_logs.suppressed);
}

bool
node_log_allowed(struct server *server, size_t node_index)
{
	bool listed = node_index < server->dir->n_nodes;
	struct log_budget *b = listed ? &server->sessions[node_index].logs : &server->unlisted_logs;

	if (!log_budget_take(b, NODE_LOG_PER_SECOND, NODE_LOG_BURST))
		return false;
	if (b->suppressed > 0)
		report_suppressed(listed ? server->dir->nodes[node_index].id : "(unlisted)", &b->suppressed);
	return true;
}

void
server_reply_error(struct server *server, Xba__V1__ErrorCode code, const char *field, uint64_t ref, const char *fmt,
    ...)
{
	Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
	Xba__V1__Error error = XBA__V1__ERROR__INIT;
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	error.code = code;
	error.message = message;
	error.field = (char *)(field ? field : "");
	error.ref = ref;
	frame.body_case = XBA__V1__FRAME__BODY_ERROR;
	frame.error = &error;
	server_reply(server, &frame);
}

/* ---- sessions --------------------------------------------------------------------------------------------- */

void
session_drop(struct server *server, size_t node_index, const char *reason)
{
	struct session *s = &server->sessions[node_index];

	if (!s->up)
		return;
	log_info("event=node.disconnected node=%s reason=%s inflight=%zu", server->dir->nodes[node_index].id, reason,
	    s->n_inflight);
	s->up = false;
	s->n_inflight = 0; /* still QUEUED in the journal: resent after the next Hello */
	s->credit = 0;
}

int64_t
server_now_earliest(const struct server *server, int64_t broker_now)
{
	int64_t offset = server->nodes_clock_known ? server->nodes_clock_offset_ms : 0;

	return offset < 0 ? broker_now + offset : broker_now;
}

int64_t
server_now_latest(const struct server *server, int64_t broker_now)
{
	int64_t offset = server->nodes_clock_known ? server->nodes_clock_offset_ms : 0;

	return offset > 0 ? broker_now + offset : broker_now;
}

static int
offset_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The median of the offsets the sessions up have said, when at least three have (one node's wrong clock must
 * never move the broker's judgement: of two, which is right?); of the two middle values of an even count, the one
 * nearer the broker's clock.  Within the broker's skew tolerance it counts as 0, so that NTP jitter changes
 * nothing. */
static void
nodes_clock_update(struct server *server)
{
	int64_t *offsets = malloc(server->dir->n_nodes * sizeof(*offsets)), median;
	int64_t was = server->nodes_clock_known ? server->nodes_clock_offset_ms : 0;
	size_t n = 0;
	char span[40];

	if (offsets == NULL)
		return;
	for (size_t i = 0; i < server->dir->n_nodes; i++)
		if (server->sessions[i].up && server->sessions[i].clock_known)
			offsets[n++] = server->sessions[i].clock_offset_ms;
	median = 0;
	if (n >= 3) {
		qsort(offsets, n, sizeof(*offsets), offset_cmp);
		median = offsets[n / 2];
		if (n % 2 == 0 && llabs(offsets[n / 2 - 1]) < llabs(median))
			median = offsets[n / 2 - 1];
		if (median <= server->config->clock_skew_ms && median >= -server->config->clock_skew_ms)
			median = 0;
	}
	free(offsets);
	/* The nodes check their alerts against the clock the broker says it reads (Welcome, Heartbeat): when that
	 * changes, every session gets a Heartbeat at the end of this pass rather than when it falls idle. */
	if (llabs(median - was) > 1000)
		for (size_t i = 0; i < server->dir->n_nodes; i++)
			server->sessions[i].last_sent_mono = 0;
	server->nodes_clock_known = median != 0;
	server->nodes_clock_offset_ms = median;
	if (median != 0 && !server->clock_suspect_said) {
		log_warnx("event=broker.clock_suspect offset_ms=%lld nodes=%zu action=\"the broker's clock is %s %s the "
			  "median of %zu nodes' clocks: check it (timedatectl). Meanwhile it prunes and judges expiry by "
			  "the earlier of the two clocks, and sent times by the later\"", (long long)median, n,
		    clock_format_span(median, span, sizeof(span)), median > 0 ? "behind" : "ahead of", n);
		server->clock_suspect_said = true;
	} else if (median == 0 && server->clock_suspect_said) {
		log_info("event=broker.clock_agrees nodes=%zu", n);
		server->clock_suspect_said = false;
	}
}

/* A node said its wall clock reads time_ms (0: a node that does not say). */
static void
session_clock_heard(struct server *server, size_t node_index, int64_t time_ms)
{
	struct session *s = &server->sessions[node_index];
	int64_t offset;

	if (time_ms <= 0)
		return;
	/* A node's word, bounded so that no sum of offsets and clocks can overflow (a century either way). */
	if (time_ms > NODE_CLOCK_MAX_MS)
		time_ms = NODE_CLOCK_MAX_MS;
	offset = time_ms - clock_now_ms();
	s->clock_known = true;
	s->clock_offset_ms = offset;
	if ((offset > NODE_CLOCK_WARN_MS || offset < -NODE_CLOCK_WARN_MS) && !s->clock_warned &&
	    node_log_allowed(server, node_index)) {
		char span[40];

		log_warnx("event=node.clock_offset node=%s offset_ms=%lld action=\"%s's clock is %s %s the broker's: "
			  "%s\"", server->dir->nodes[node_index].id, (long long)offset, server->dir->nodes[node_index].id,
		    clock_format_span(offset, span, sizeof(span)), offset > 0 ? "ahead of" : "behind",
		    offset > 0 ? "its alerts are refused CLOCK_SKEW past the tolerance; ask the country to fix it (NTP)"
			       : "its alerts read as that much older to their recipients; ask the country to fix it (NTP)");
		s->clock_warned = true;
	}
	nodes_clock_update(server);
}

/*
 * Is the node's cursor this journal's?  The node names the alert it holds at seq resume_after; a journal that holds
 * another one there was restored from a backup and has since journaled new alerts under the seqs it had lost, which
 * the cursor would otherwise mark delivered unseen (operations.md section 7).  Then *unknown, and *acknowledged is
 * what this journal records the node acknowledged: the node resumes from there.  Nodes before the check send no
 * alert id, and an entry pruned since cannot be compared: both are taken at their word, as before.
 */
static int
cursor_check(struct server *server, const char *node_id, const Xba__V1__Hello *hello, bool *unknown,
    uint64_t *acknowledged, struct xba_error *err)
{
	struct journal_alert_brief brief;
	int rc;

	*unknown = false;
	*acknowledged = 0;
	if (hello->resume_after == 0)
		return 0;
	/* A cursor past the head is another journal's too (agents before 2026-11-27 find that out by themselves from
	 * Welcome.journal_head, and ignore cursor_unknown). */
	if (hello->resume_after <= journal_head(server->journal)) {
		if (hello->resume_after_alert_id == NULL || hello->resume_after_alert_id[0] == '\0')
			return 0;
		if ((rc = journal_alert_brief_get(server->journal, hello->resume_after, &brief, err)) != 0)
			return rc;
		if (brief.alert_id[0] == '\0' || strcmp(brief.alert_id, hello->resume_after_alert_id) == 0)
			return 0;
	}
	if ((rc = journal_delivery_mark(server->journal, node_id, acknowledged, err)) != 0)
		return rc;
	/* A mark at or past the cursor was not made by this node's history either: resume from the start. */
	if (*acknowledged >= hello->resume_after)
		*acknowledged = 0;
	*unknown = true;
	return 0;
}

/*
 * Does this journal hold the last alert it accepted of the node's, at the seq it was accepted at?  Not when it
 * was restored from a backup taken before: then what the node published since the backup is lost here, its
 * acknowledgements included, and the node is told to publish it again (Welcome.publishes_unknown; it keeps the
 * signed envelopes).  An entry pruned since cannot be compared: taken as held.
 */
static int
publishes_check(struct server *server, const Xba__V1__Hello *hello, bool *unknown, struct xba_error *err)
{
	struct journal_alert_brief brief;
	int rc;

	*unknown = false;
	if (hello->last_accepted_seq == 0 || hello->last_accepted_alert_id == NULL ||
	    hello->last_accepted_alert_id[0] == '\0')
		return 0;
	if (hello->last_accepted_seq > journal_head(server->journal)) {
		*unknown = true;
		return 0;
	}
	if ((rc = journal_alert_brief_get(server->journal, hello->last_accepted_seq, &brief, err)) != 0)
		return rc;
	*unknown = brief.alert_id[0] != '\0' && strcmp(brief.alert_id, hello->last_accepted_alert_id) != 0;
	return 0;
}

/* After journal_rewind: what the node said it holds, for the deliveries its cursor does not cover (emergencies). */
static int
rewind_lost(struct server *server, const char *node_id, const Xba__V1__Hello *hello, uint64_t *rewound_from,
    uint64_t *redeliveries, struct xba_error *err)
{
	uint64_t held = hello->highest_held_seq > hello->resume_after ? hello->highest_held_seq : hello->resume_after;
	uint64_t from = 0, more = 0;
	int rc = journal_rewind_lost(server->journal, node_id, held, &from, &more, err);

	if (rc == 0 && more > 0) {
		*redeliveries += more;
		if (from > *rewound_from)
			*rewound_from = from;
	}
	return rc;
}

static void
session_hello(struct server *server, size_t node_index, const Xba__V1__Hello *hello)
{
	const struct dir_node *node = &server->dir->nodes[node_index];
	struct session *s = &server->sessions[node_index];
	Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
	Xba__V1__Welcome welcome = XBA__V1__WELCOME__INIT;
	struct xba_error err = { 0 };
	uint64_t rewound_from = 0, redeliveries = 0, acknowledged = 0;
	bool cursor_unknown = false, publishes_unknown = false;
	char quoted_id[120];

	/* Each Hello restarts the session and may rewind the node's queue (§2.2, §2.5): a storm of them is work and
	 * output without end, and with libzmq 4.3.4 a peer that vanishes under it can abort the whole broker. */
	if (!clock_bucket_take(&s->hellos, HELLO_PER_SECOND, HELLO_BURST)) {
		if (node_log_allowed(server, node_index))
			log_warnx("event=hello.refused node=%s reason=too-many-hellos", node->id);
		server_reply_error(server, XBA__V1__ERROR_CODE__RATE_LIMITED, NULL, 0, "more than %d Hellos at once or "
		    "%.0f a second from %s: this one was not handled; connect again later", HELLO_BURST, HELLO_PER_SECOND,
		    node->id);
		return;
	}
	if (hello->protocol_version != XBA_PROTOCOL_VERSION) {
		server_reply_error(server, XBA__V1__ERROR_CODE__UNSUPPORTED_VERSION, "hello.protocol_version", 0,
		    "protocol version %u is not supported; this broker speaks %d", hello->protocol_version,
		    XBA_PROTOCOL_VERSION);
		return;
	}
	if (strcmp(hello->node_id, node->id) != 0) {
		char quoted[80];

		if (node_log_allowed(server, node_index))
			log_warnx("event=hello.refused node=%s claimed=%s reason=wrong-node", node->id,
			    log_quote(quoted, sizeof(quoted), hello->node_id));
		server_reply_error(server, XBA__V1__ERROR_CODE__WRONG_SIGNER, "hello.node_id", 0,
		    "this connection's CURVE key belongs to %s, not to the node id in hello", node->id);
		return;
	}
	if (server_begin(server, &err) != 0 ||
	    cursor_check(server, node->id, hello, &cursor_unknown, &acknowledged, &err) != 0 ||
	    publishes_check(server, hello, &publishes_unknown, &err) != 0 ||
	    (!cursor_unknown &&
	     (journal_rewind(server->journal, node->id, hello->resume_after, &rewound_from, &redeliveries, &err) != 0 ||
	      (hello->held_said &&
	       rewind_lost(server, node->id, hello, &rewound_from, &redeliveries, &err) != 0) ||
	      journal_mark_delivered_through(server->journal, node->id, hello->resume_after, clock_now_ms(), &err) != 0))) {
		char quoted[600];

		log_warnx("event=journal.error node=%s op=resume error=%s", node->id,
		    log_quote(quoted, sizeof(quoted), err.msg));
		server_reply_error(server, XBA__V1__ERROR_CODE__NOT_READY, NULL, 0,
		    "the broker's journal is unavailable; retry later");
		return;
	}
	/* A node that has seen seqs this journal never wrote: the journal is older than the region (restored from a
	 * backup, or replaced), and the seqs after its head will be used a second time (operations.md section 7). */
	if (hello->resume_after > journal_head(server->journal) && node_log_allowed(server, node_index))
		log_warnx("event=journal.behind node=%s resume_after=%llu journal_head=%llu action=\"this journal lacks "
			  "what the node was delivered: restored from a backup? its seqs after the head are used again; note "
			  "the restore (docs/operations.md section 7)\" acknowledged_through=%llu", node->id,
		    (unsigned long long)hello->resume_after, (unsigned long long)journal_head(server->journal),
		    (unsigned long long)acknowledged);
	if (cursor_unknown && hello->resume_after <= journal_head(server->journal) &&
	    node_log_allowed(server, node_index))
		log_warnx("event=journal.cursor_mismatch node=%s resume_after=%llu acknowledged_through=%llu "
			  "node_alert=%s action=\"this journal holds another alert at the node's cursor: restored from a "
			  "backup and its seqs since used again; the node resumes from what this journal records it "
			  "acknowledged, and nothing is marked delivered on the strength of its cursor\"", node->id,
		    (unsigned long long)hello->resume_after, (unsigned long long)acknowledged,
		    log_quote(quoted_id, sizeof(quoted_id), hello->resume_after_alert_id));
	if (publishes_unknown && node_log_allowed(server, node_index))
		log_warnx("event=journal.publishes_lost node=%s last_accepted_seq=%llu journal_head=%llu action=\"this "
			  "journal lacks the last alert it accepted from the node (restored from a backup): the node publishes "
			  "again what it sent lately; what is here already is answered DUPLICATE\"", node->id,
		    (unsigned long long)hello->last_accepted_seq, (unsigned long long)journal_head(server->journal));
	if (rewound_from > 0 && node_log_allowed(server, node_index))
		log_warnx("event=node.rewound node=%s resume_after=%llu acknowledged_through=%llu redeliveries=%llu "
			  "action=\"its agent no longer has what it acknowledged (a store restored from a backup, or lost): "
			  "sending it again\"", node->id, (unsigned long long)hello->resume_after,
		    (unsigned long long)rewound_from, (unsigned long long)redeliveries);
	if (s->up && (s->routing_id_len != server->scratch_len ||
	    memcmp(s->routing_id, server->scratch, s->routing_id_len) != 0))
		log_info("event=node.replaced node=%s reason=new-connection", node->id);
	memcpy(s->routing_id, server->scratch, server->scratch_len);
	s->routing_id_len = server->scratch_len;
	s->up = true;
	s->n_inflight = 0;
	s->credit = hello->credit < (uint64_t)server->config->max_credit ? hello->credit
									  : (uint64_t)server->config->max_credit;

	s->through_seq = cursor_unknown ? acknowledged : hello->resume_after;
	s->last_seen_mono = s->last_sent_mono = clock_mono_ms();
	s->last_seen_wall = clock_now_ms();
	s->wants_delivery = true;
	s->link_limited = false;
	link_window_reset(&s->link, (uint32_t)server->config->max_credit, s->last_seen_mono);
	s->deliver_batches = hello->deliver_batches;
	s->sent_through = 0; /* nothing in flight on this connection: the pending read starts at the queue's head */
	s->ordered_publishes = hello->ordered_publishes;
	s->hold.on = s->emergency_hold.on = false; /* a new session resends its outbox from the oldest entry */
	s->clock_known = s->clock_warned = false;
	session_clock_heard(server, node_index, hello->time_ms);

	welcome.protocol_version = XBA_PROTOCOL_VERSION;
	welcome.broker_id = server->config->broker_id;
	welcome.journal_head = journal_head(server->journal);
	welcome.heartbeat_ms = (uint32_t)server->config->heartbeat_ms;
	welcome.max_frame_bytes = (uint32_t)server->config->max_frame_bytes;
	welcome.rules_version = (char *)rules_version(server->rules);
	welcome.time_ms = clock_now_ms();
	welcome.nodes_offset_ms = server->nodes_clock_known ? server->nodes_clock_offset_ms : 0;
	welcome.cursor_unknown = cursor_unknown;
	welcome.acknowledged_through = acknowledged;
	welcome.publishes_unknown = publishes_unknown;
	welcome.rewound_from = rewound_from;
	frame.body_case = XBA__V1__FRAME__BODY_WELCOME;
	frame.welcome = &welcome;
	server_send(server, node_index, &frame);
	if (hello->credit > (uint64_t)server->config->max_credit)
		server_reply_error(server, XBA__V1__ERROR_CODE__CREDIT_EXCEEDED, "hello.credit", 0,
		    "a window of %u is past the broker's maximum of %lld; capped", hello->credit,
		    (long long)server->config->max_credit);
	log_info("event=node.connected node=%s resume_after=%llu credit=%llu batches=%d ordered=%d", node->id,
	    (unsigned long long)hello->resume_after, (unsigned long long)s->credit, hello->deliver_batches,
	    hello->ordered_publishes);
}

/*
 * SIGUSR1: one record per node (connected or not, last seen, queue depth, cursor), then one naming the nodes not
 * connected.  Counting node.connected records against 200 nodes was the secretariat's only way to tell who is
 * missing (after a broker key switch, a restart, a bad night on the links).
 */
static void
log_region_status(struct server *server)
{
	size_t connected = 0, missing_len = 0;
	char missing[4096] = "", when[40];
	bool cut = false;

	for (size_t i = 0; i < server->dir->n_nodes; i++) {
		const struct session *s = &server->sessions[i];
		const char *id = server->dir->nodes[i].id;
		uint64_t depth = 0;

		journal_queue_depth(server->journal, id, 0, &depth, NULL, NULL, NULL, NULL);
		log_info("event=node.status node=%s connected=%d last_seen=%s queue_depth=%llu cursor=%llu in_flight=%zu "
			 "link_window=%u link_queue_ms=%lld link_cuts=%llu", id, s->up ? 1 : 0,
		    s->last_seen_wall ? clock_format_rfc3339(s->last_seen_wall, when, sizeof(when)) : "never",
		    (unsigned long long)depth, (unsigned long long)s->through_seq, s->up ? s->n_inflight : 0,
		    s->up ? s->link.window : 0, s->up ? (long long)s->link.queue_ms : 0LL,
		    s->up ? (unsigned long long)s->link.cuts : 0ULL);
		if (s->up) {
			connected++;
		} else if (missing_len + strlen(id) + 2 < sizeof(missing) - 8) {
			missing_len += (size_t)snprintf(missing + missing_len, sizeof(missing) - missing_len, "%s%s",
			    missing_len ? " " : "", id);
		} else {
			cut = true;
		}
	}
	log_info("event=region.status nodes=%zu connected=%zu not_connected=\"%s%s\" journal_head=%llu", server->dir->n_nodes,
	    connected, missing, cut ? " ..." : "", (unsigned long long)journal_head(server->journal));
}

static void
status_handle(struct server *server, size_t node_index)
{
	const struct dir_node *asker = &server->dir->nodes[node_index];
	bool all = asker->role == NODE_ROLE_ADMIN;
	size_t n = all ? server->dir->n_nodes : 1;
	Xba__V1__NodeStatus *rows = calloc(n, sizeof(*rows)), **list = calloc(n, sizeof(*list));
	Xba__V1__StatusReply reply = XBA__V1__STATUS_REPLY__INIT;
	Xba__V1__Frame frame = XBA__V1__FRAME__INIT;

	if (rows == NULL || list == NULL) {
		free(rows);
		free(list);
		server_reply_error(server, XBA__V1__ERROR_CODE__INTERNAL, NULL, 0, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		size_t idx = all ? i : node_index;
		const struct session *s = &server->sessions[idx];
		uint64_t depth = 0, emergencies = 0;
		bool capped = false, emergencies_capped = false;

		xba__v1__node_status__init(&rows[i]);
		rows[i].node_id = (char *)server->dir->nodes[idx].id;
		rows[i].role = (char *)directory_role_name(server->dir->nodes[idx].role);
		rows[i].connected = s->up;
		rows[i].last_seen_ms = s->last_seen_wall;
		/* Counted up to a cap: each row counted costs the loop ~60 ns, and nodes far behind hold hundreds of
		 * thousands (a request would hold every emergency back for as long). */
		journal_queue_depth(server->journal, server->dir->nodes[idx].id, STATUS_DEPTH_CAP, &depth, &emergencies,
		    &capped, &emergencies_capped, NULL);
		rows[i].queue_depth = depth;
		rows[i].emergency_depth = emergencies;
		rows[i].queue_depth_capped = capped;
		rows[i].emergency_depth_capped = emergencies_capped;
		rows[i].cursor = s->through_seq;
		list[i] = &rows[i];
	}
	reply.journal_head = journal_head(server->journal);
	reply.rules_version = (char *)rules_version(server->rules);
	reply.nodes = list;
	reply.n_nodes = n;
	frame.body_case = XBA__V1__FRAME__BODY_STATUS_REPLY;
	frame.status_reply = &reply;
	server_send(server, node_index, &frame);
	free(rows);
	free(list);
}

/* ---- the group-commit transaction --------------------------------------------------------------------------- */

int
server_begin(struct server *server, struct xba_error *err)
{
	if (server->tx_failed)
		return xba_error_set(err, XBA_EIO, "an earlier write in this batch failed");
	if (server->in_transaction)
		return 0;
	if (journal_begin(server->journal, err) != 0)
		return XBA_EIO;
	server->in_transaction = true;
	return 0;
}

int
server_hold(struct server *server, const struct held_frame *held)
{
	if (server->n_held == server->cap_held) {
		size_t cap = server->cap_held ? server->cap_held * 2 : 64;
		struct held_frame *grown = realloc(server->held, cap * sizeof(*grown));

		if (grown == NULL)
			return XBA_ENOMEM;
		server->held = grown;
		server->cap_held = cap;
	}
	server->held[server->n_held++] = *held;
	return 0;
}

static void
release_held(struct server *server, bool committed)
{
	for (size_t i = 0; i < server->n_held; i++) {
		const struct held_frame *h = &server->held[i];
		Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
		Xba__V1__PublishAck ack = XBA__V1__PUBLISH_ACK__INIT;
		Xba__V1__Receipt receipt = XBA__V1__RECEIPT__INIT;

		if (h->kind == XBA__V1__FRAME__BODY_PUBLISH_ACK) {
			int64_t held = clock_mono_ms() - h->read_mono;

			ack.ref = h->ref;
			ack.alert_id = (char *)h->alert_id;
			/* The commit's wait (a slow journal disk) is the broker's, not the node's link's (linkwindow.c). */
			ack.held_ms = h->read_mono == 0 || held < 0 ? 0 : held > UINT32_MAX ? UINT32_MAX : (uint32_t)held;
			if (committed && h->duplicate) {
				ack.result = XBA__V1__ERROR_CODE__DUPLICATE;
				ack.seq = h->seq;
				ack.recipients = h->recipients;
				ack.message = "already journaled";
				log_info("event=alert.duplicate node=%s alert=%s seq=%llu", server->dir->nodes[h->node_index].id,
				    h->alert_id, (unsigned long long)h->seq);
			} else if (committed) {
				ack.result = XBA__V1__ERROR_CODE__OK;
				ack.seq = h->seq;
				ack.recipients = h->recipients;
				log_info("event=alert.accepted node=%s alert=%s seq=%llu recipients=%u commit=%llu",
				    server->dir->nodes[h->node_index].id, h->alert_id, (unsigned long long)h->seq,
				    h->recipients, (unsigned long long)server->commits_done);
				server->stats.accepted++;
			} else {
				bool first_of_node = true;

				for (size_t k = 0; k < i && first_of_node; k++)
					first_of_node = server->held[k].kind != XBA__V1__FRAME__BODY_PUBLISH_ACK ||
					    server->held[k].node_index != h->node_index ||
					    server->held[k].emergency != h->emergency;
				/* The node's earliest publish of its class in the failed transaction arrived before any
				 * refusal that set that class's hold during it (a hold refuses everything after it), so it
				 * is the one to wait for. */
				if (first_of_node)
					publish_hold(server, h->node_index, h->ref, h->alert_id,
					    XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE, true, h->emergency);
				ack.result = XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE;
				ack.message = "the broker could not store the alert durably; it is not accepted, retry later";
				log_warnx("event=alert.rejected node=%s alert=%s code=JOURNAL_UNAVAILABLE "
					  "reason=\"journal commit failed\"",
				    server->dir->nodes[h->node_index].id, h->alert_id);
				server->stats.rejected++;
			}
			frame.body_case = XBA__V1__FRAME__BODY_PUBLISH_ACK;
			frame.publish_ack = &ack;
		} else {
			if (!committed)
				continue; /* freed below */
			receipt.alert_id = (char *)h->alert_id;
			receipt.node_id = (char *)h->node_id;
			receipt.kind = h->receipt_kind;
			receipt.time_ms = h->time_ms;
			receipt.officer = (char *)h->officer;
			receipt.note = h->note != NULL ? h->note : "";
			frame.body_case = XBA__V1__FRAME__BODY_RECEIPT;
			frame.receipt = &receipt;
		}
		server_send(server, h->node_index, &frame);
	}
	for (size_t i = 0; i < server->n_held; i++)
		free(server->held[i].note);
	server->n_held = 0;
}

static void
commit(struct server *server)
{
	struct xba_error err = { 0 };
	bool ok = true, writes;
	int64_t t0;

	if (!server->in_transaction)
		return;
	writes = journal_txn_writes(server->journal);
	t0 = clock_mono_us();
	if (server->tx_failed) {
		journal_rollback(server->journal);
		ok = false;
	} else if (journal_commit(server->journal, &err) != 0) {
		char quoted[600];

		log_warnx("event=journal.commit_failed error=%s", log_quote(quoted, sizeof(quoted), err.msg));
		ok = false;
	} else if (writes) {
		int64_t took = clock_mono_us() - t0;

		server->commits_done++;
		if (took > server->stats.commit_us_max)
			server->stats.commit_us_max = took;
	}
	if (!ok) {
		/* What the failed transaction recorded as sent or routed is not durable: start every session's
		 * delivery over from the journal's committed state. */
		for (size_t i = 0; i < server->dir->n_nodes; i++) {
			server->sessions[i].n_inflight = 0;
			server->sessions[i].sent_through = 0;
			server->sessions[i].wants_delivery = true;
			server->sessions[i].link_limited = false;
		}
	}
	server->in_transaction = false;
	server->tx_failed = false;
	if (ok)
		server->committed_head = journal_head(server->journal);
	release_held(server, ok);
}

/* ---- receiving ---------------------------------------------------------------------------------------------- */

/*
 * A chunk of frames is read first, its Publish envelopes are verified together on the verification pool, and then
 * its frames are handled one by one in arrival order.  Everything that depends on session state (hello first, the
 * same connection) is decided at handling time, so a Hello and the Publish behind it in one chunk work as they do
 * one at a time.
 */
struct incoming {
	uint8_t routing_id[ROUTING_ID_MAX];
	size_t routing_len;
	const struct dir_node *node;            /* NULL: the ZAP User-Id is no longer in the directory */
	char user[XBA_NODE_ID_MAX + 1];         /* that User-Id's node id, for the log */
	bool key_changed;                       /* the node is listed, but no longer with this connection's key */
	int extra_parts;                        /* beyond the one a frame is */
	Xba__V1__Frame *frame;                  /* owned; NULL if decoding failed */
	struct xba_error decode_err;
	uint64_t ref;                           /* from a frame that failed to decode, when readable */
	struct verify_job *job;                 /* Publish within its rate: the envelope to open; else NULL */
	int64_t read_mono;                      /* when it arrived, at the earliest: PublishAck.held_ms counts from it */
};

struct chunk {
	struct incoming in[CHUNK_MAX];
	struct verify_job jobs[CHUNK_MAX];
	size_t n_in, n_jobs;
};

static void
dispatch(struct server *server, size_t node_index, const struct incoming *in)
{
	const struct dir_node *node = &server->dir->nodes[node_index];
	struct session *s = &server->sessions[node_index];
	bool same_connection = s->up && s->routing_id_len == server->scratch_len &&
	    memcmp(s->routing_id, server->scratch, s->routing_id_len) == 0;
	const Xba__V1__Frame *frame = in->frame;

	if (frame == NULL) {
		Xba__V1__ErrorCode code = frame_error_code_for_frame(in->decode_err.code);
		char field[64] = "", quoted[600];

		if (in->decode_err.code == XBA_EREQUIRED)
			sscanf(in->decode_err.msg, "%63[^:]", field);
		if (node_log_allowed(server, node_index))
			log_warnx("event=frame.rejected node=%s code=%s reason=%s", node->id,
			    frame_error_code_name(code), log_quote(quoted, sizeof(quoted), in->decode_err.msg));
		server_reply_error(server, code, field, in->ref, "%s", in->decode_err.msg);
		return;
	}
	if (same_connection) {
		s->last_seen_mono = clock_mono_ms();
		s->last_seen_wall = clock_now_ms();
	}
	if (frame->body_case != XBA__V1__FRAME__BODY_HELLO && !same_connection) {
		/* A connection without a session may never read what it is sent: answers to it are rationed per node,
		 * so that many of them cannot fill the broker's memory; a node that lost its session hears of it from
		 * the first. */
		if (clock_bucket_take(&s->strays, STRAY_PER_SECOND, STRAY_BURST))
			server_reply_error(server, XBA__V1__ERROR_CODE__NOT_READY, NULL, 0,
			    "send hello first (got %s)", frame_type_name(frame->body_case));
		return;
	}
	switch (frame->body_case) {
	case XBA__V1__FRAME__BODY_HELLO:
		session_hello(server, node_index, frame->hello);
		break;
	case XBA__V1__FRAME__BODY_PUBLISH:
		publish_handle(server, node_index, frame->publish, in->job);
		break;
	case XBA__V1__FRAME__BODY_DELIVERY_ACK:
		deliver_handle_ack(server, node_index, frame->delivery_ack);
		break;
	case XBA__V1__FRAME__BODY_CREDIT:
		deliver_handle_credit(server, node_index, frame->credit);
		break;
	case XBA__V1__FRAME__BODY_HEARTBEAT:
		session_clock_heard(server, node_index, frame->heartbeat->time_ms); /* last_seen already updated */
		break;
	case XBA__V1__FRAME__BODY_STATUS_REQUEST:
		status_handle(server, node_index);
		break;
	case XBA__V1__FRAME__BODY_TRACK_REQUEST:
		track_handle(server, node_index, frame->track_request);
		break;
	case XBA__V1__FRAME__BODY_ERROR:
		if (frame->error != NULL) {
			char quoted[300], quoted_field[160];

			/* Both strings are the node's own: quoted, so that neither can end the record and forge another. */
			if (node_log_allowed(server, node_index))
				log_warnx("event=node.reported_error node=%s code=%s field=%s message=%s", node->id,
				    frame_error_code_name(frame->error->code), log_quote(quoted_field, sizeof(quoted_field),
				    frame->error->field ? frame->error->field : ""),
				    log_quote(quoted, sizeof(quoted), frame->error->message));
		}
		break;
	default:
		/* welcome, publish_ack, deliver, deliver_batch, receipt, status_reply, track_reply: the broker's own. */
		if (node_log_allowed(server, node_index))
			log_warnx("event=frame.rejected node=%s code=UNKNOWN_FRAME_TYPE type=%s", node->id,
			    frame_type_name(frame->body_case));
		server_reply_error(server, XBA__V1__ERROR_CODE__UNKNOWN_FRAME_TYPE, NULL, 0,
		    "a node does not send %s frames", frame_type_name(frame->body_case));
		break;
	}
}

/*
 * Read one ROUTER message (routing id + one frame part) into in, decoding the frame.  A Publish within its node's
 * rate gets a verification job in chunk.  Returns 1 if a message was read, 0 if none was pending.
 */
static int
receive_one(struct server *server, struct chunk *chunk, struct incoming *in)
{
	zmq_msg_t id, body;
	const char *user;
	int more = 0;
	size_t more_len = sizeof(more);

	zmq_msg_init(&id);
	if (zmq_msg_recv(&id, server->router, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&id);
		server->input_since_mono = clock_mono_ms(); /* empty now: what comes next arrives after this */
		return 0;
	}
	/* When it arrived is not known; no earlier than the last time the socket was found empty, or the loop woke
	 * for it.  A publish that arrived while the loop waited on a commit (a stalling journal disk) counts that wait
	 * in its PublishAck.held_ms: the broker's, not the node's link's. */
	in->read_mono = server->input_since_mono != 0 ? server->input_since_mono : clock_mono_ms();
	in->routing_len = 0;
	in->node = NULL;
	in->extra_parts = 0;
	in->frame = NULL;
	in->decode_err = (struct xba_error){ 0 };
	in->ref = 0;
	in->job = NULL;
	zmq_msg_init(&body);
	if (zmq_msg_recv(&body, server->router, 0) < 0) {
		/* Handled as nothing: no routing id to answer to (routing_len 0). */
		zmq_msg_close(&id);
		zmq_msg_close(&body);
		return 1;
	}
	/* A node sends exactly one part per frame; swallow any further parts so the next message starts clean. */
	zmq_getsockopt(server->router, ZMQ_RCVMORE, &more, &more_len);
	while (more) {
		zmq_msg_t rest;

		zmq_msg_init(&rest);
		zmq_msg_recv(&rest, server->router, 0);
		zmq_msg_close(&rest);
		in->extra_parts++;
		zmq_getsockopt(server->router, ZMQ_RCVMORE, &more, &more_len);
	}
	in->routing_len = zmq_msg_size(&id) < ROUTING_ID_MAX ? zmq_msg_size(&id) : ROUTING_ID_MAX;
	memcpy(in->routing_id, zmq_msg_data(&id), in->routing_len);
	user = zmq_msg_gets(&body, "User-Id");
	in->node = NULL;
	in->key_changed = false;
	snprintf(in->user, sizeof(in->user), "-");
	if (user != NULL) {
		/* "NODE:KEY" (zap.c); a node id has no ':', so the first one ends it. */
		const char *colon = strchr(user, ':');
		size_t id_len = colon != NULL ? (size_t)(colon - user) : strlen(user);

		if (id_len <= XBA_NODE_ID_MAX) {
			memcpy(in->user, user, id_len);
			in->user[id_len] = '\0';
			in->node = directory_node(server->dir, in->user);
		}
		/* Admitted with a key a reload has since taken from the node: that connection speaks for nobody. */
		if (in->node != NULL && (colon == NULL || strcmp(colon + 1, in->node->curve_public_z85) != 0)) {
			in->node = NULL;
			in->key_changed = true;
		}
	}
	if (in->node != NULL && in->extra_parts == 0) {
		in->frame = frame_decode(zmq_msg_data(&body), zmq_msg_size(&body), (size_t)server->config->max_frame_bytes,
		    &in->ref, &in->decode_err);
		if (in->frame != NULL && in->frame->body_case == XBA__V1__FRAME__BODY_PUBLISH &&
		    publish_rate_allows(server, directory_node_index(server->dir, in->node), in->frame->publish)) {
			struct verify_job *job = &chunk->jobs[chunk->n_jobs++];

			memset(job, 0, sizeof(*job));
			job->envelope = in->frame->publish->envelope;
			job->now_ms = clock_now_ms();
			in->job = job;
		}
	}
	zmq_msg_close(&id);
	zmq_msg_close(&body);
	return 1;
}

/* Handle one read message in arrival order, after its chunk was verified. */
static void
handle_incoming(struct server *server, const struct incoming *in)
{
	server->scratch_len = in->routing_len;
	memcpy(server->scratch, in->routing_id, in->routing_len);
	server->frame_read_mono = in->read_mono;
	if (in->node == NULL) {
		if (in->routing_len == 0)
			return; /* the message vanished between its parts: nothing to answer */
		/* Admitted under a directory that a reload has since changed: the node is no longer listed, or no longer
		 * with the CURVE key this connection was admitted with. */
		if (node_log_allowed(server, SIZE_MAX))
			log_warnx("event=frame.rejected node=%s code=NOT_READY reason=\"%s\"", in->user, in->key_changed
			    ? "this connection's CURVE key is no longer the node's" : "node not in the directory");
		if (clock_bucket_take(&server->unlisted_strays, STRAY_PER_SECOND, STRAY_BURST))
			server_reply_error(server, XBA__V1__ERROR_CODE__NOT_READY, NULL, 0, "%s", in->key_changed
			    ? "this connection's CURVE key is no longer this node's curve_key in region.yaml"
			    : "this node is not in the directory");
	} else if (in->extra_parts > 0) {
		if (node_log_allowed(server, directory_node_index(server->dir, in->node)))
			log_warnx("event=frame.rejected node=%s code=MALFORMED_FRAME reason=\"%d extra message parts\"",
			    in->node->id, in->extra_parts);
		server_reply_error(server, XBA__V1__ERROR_CODE__MALFORMED_FRAME, NULL, 0,
		    "one ZeroMQ message part per frame; got %d more", in->extra_parts);
	} else {
		dispatch(server, directory_node_index(server->dir, in->node), in);
	}
}

/* Read up to max messages into chunk and post its publishes to the verification pool; returns how many were read. */
static size_t
read_chunk(struct server *server, struct chunk *chunk, size_t max)
{
	chunk->n_in = chunk->n_jobs = 0;
	while (chunk->n_in < max && chunk->n_in < CHUNK_MAX && receive_one(server, chunk, &chunk->in[chunk->n_in]))
		chunk->n_in++;
	if (chunk->n_in > 0)
		verify_pool_post(server->verifiers, server->dir, chunk->jobs, chunk->n_jobs);
	return chunk->n_in;
}

/* Handle a verified chunk's messages in arrival order, then free them. */
static void
handle_chunk(struct server *server, struct chunk *chunk)
{
	for (size_t i = 0; i < chunk->n_in; i++) {
		handle_incoming(server, &chunk->in[i]);
		frame_free(chunk->in[i].frame);
	}
	for (size_t i = 0; i < chunk->n_jobs; i++)
		envelope_opened_clear(&chunk->jobs[i].opened);
	chunk->n_in = chunk->n_jobs = 0;
}

/*
 * The frames of one pass: at most group_commit_max, or pass_max_ms of work, so deliveries are never held behind a
 * long burst of publishes; and no more chunks once one has journaled an emergency, so that it is committed and
 * delivered after at most the one chunk already read behind it, however long the pass may run.  The bound trades
 * latency for throughput: a longer pass shares one commit (an fsync, a WAL write of each B-tree's right edge)
 * among more alerts.  5 ms is the default because 10 ms, measured, saved 4-10% of the CPU per alert under a burst
 * but raised the p99 latency at half load from ~19 ms to 24-47 ms when the broker shared its cores
 * (docs/performance.md §3).  Double-buffered: while this thread handles chunk k, the pool's threads verify chunk
 * k+1 (read just before), and whatever they have not reached when chunk k is done, this thread verifies itself in
 * verify_pool_wait().
 */
static void
receive_pass(struct server *server)
{
	int64_t pass_end = clock_mono_ms() + server->config->pass_max_ms;
	size_t budget = (size_t)server->config->group_commit_max;
	struct chunk *current = &server->chunks[0], *next = &server->chunks[1], *swap;
	size_t got;

	server->emergency_in_pass = false;
	got = read_chunk(server, current, budget);
	while (got > 0) {
		budget -= got;
		verify_pool_wait(server->verifiers);
		got = budget > 0 && !server->emergency_in_pass && clock_mono_ms() < pass_end
		    ? read_chunk(server, next, budget)
		    : 0;
		handle_chunk(server, current);
		swap = current;
		current = next;
		next = swap;
	}
}

/* ---- timers ----------------------------------------------------------------------------------------------- */

/* Start an interval: zero the counters, remember the running totals (commits, envelope cache). */
static void
stats_reset(struct server *server)
{
	struct journal_cache_stats cache;

	journal_envelope_cache_stats(server->journal, &cache);
	memset(&server->stats, 0, sizeof(server->stats));
	server->stats.since_mono = clock_mono_ms();
	server->stats.commits_done = server->commits_done;
	server->stats.cache_hits = cache.hits;
	server->stats.cache_misses = cache.misses;
}

/*
 * The secretariat's early warning: a member or observer whose signing keys all end (valid_until, revoked_at)
 * within key_warning_days will be refused everything it sends from then on.  Logged at start, after every
 * reload and daily, per node, so that the node can be asked to rotate before it goes silent.
 */
/* rules: [] is a valid file that routes nothing but emergencies and acknowledgements: worth a warning at start and
 * at each reload, in case it was deployed by mistake (each sender is told too, alert by alert). */
static void
rules_warnings(const struct server *server)
{
	if (rules_count(server->rules) == 0)
		log_warnx("event=rules.empty version=%s note=\"rules.yaml has no rules: alerts reach nobody, only emergencies "
			  "and acknowledgements are delivered\"", rules_version(server->rules));
}

static void
key_warnings(struct server *server)
{
	int64_t now = clock_now_ms(), warn_ms = server->config->key_warning_days * 86400000LL;
	char t[40];

	server->next_key_warning_mono_ms = clock_mono_ms() + KEY_WARNING_INTERVAL_MS;
	if (warn_ms == 0)
		return;
	for (size_t i = 0; i < server->dir->n_nodes; i++) {
		const struct dir_node *node = &server->dir->nodes[i];
		int64_t until;

		if (node->role == NODE_ROLE_ADMIN)
			continue;
		until = directory_node_signs_until(server->dir, node, now);
		if (until == now)
			log_warnx("event=node.cannot_sign node=%s action=\"every alert it sends is refused: add a current "
				  "key to its signing_keys in region.yaml (docs/operations.md section 5)\"", node->id);
		else if (until != XBA_TIME_NEVER && until - now <= warn_ms)
			log_warnx("event=node.key_expiring node=%s until=%s days_left=%lld action=\"ask it for a new key "
				  "and add it to region.yaml before then (docs/operations.md section 5)\"", node->id,
			    clock_format_rfc3339(until, t, sizeof(t)), (long long)((until - now) / 86400000LL));
	}
}

/* One broker.stats record per stats_interval_s (docs/operations.md), then a new interval. */
static void
stats_report(struct server *server)
{
	const struct broker_stats *st = &server->stats;
	struct journal_cache_stats cache;
	int64_t elapsed = clock_mono_ms() - st->since_mono;

	if (server->config->stats_interval_s == 0 || elapsed < server->config->stats_interval_s * 1000)
		return;
	journal_envelope_cache_stats(server->journal, &cache);
	log_info("event=broker.stats interval_ms=%lld accepted=%llu rejected=%llu deliveries=%llu delivery_frames=%llu "
		 "commits=%llu commit_ms_max=%.1f pass_ms_max=%.1f cache_hits=%llu cache_misses=%llu cache_kib=%zu",
	    (long long)elapsed, (unsigned long long)st->accepted, (unsigned long long)st->rejected,
	    (unsigned long long)st->deliveries, (unsigned long long)st->delivery_frames,
	    (unsigned long long)(server->commits_done - st->commits_done), (double)st->commit_us_max / 1e3,
	    (double)st->pass_us_max / 1e3,
	    (unsigned long long)(cache.hits - st->cache_hits), (unsigned long long)(cache.misses - st->cache_misses),
	    cache.bytes / 1024);
	stats_reset(server);
}

static void
heartbeats(struct server *server)
{
	int64_t now = clock_mono_ms(), interval = server->config->heartbeat_ms;

	for (size_t i = 0; i < server->dir->n_nodes; i++) {
		struct session *s = &server->sessions[i];

		if (!s->up)
			continue;
		if (now - s->last_seen_mono > 3 * interval) {
			log_warnx("event=node.dead node=%s silent_ms=%lld", server->dir->nodes[i].id,
			    (long long)(now - s->last_seen_mono));
			session_drop(server, i, "heartbeat-timeout");
			continue;
		}
		if (now - s->last_sent_mono >= interval) {
			Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
			Xba__V1__Heartbeat hb = XBA__V1__HEARTBEAT__INIT;

			hb.time_ms = clock_now_ms();
			hb.nodes_offset_ms = server->nodes_clock_known ? server->nodes_clock_offset_ms : 0;
			frame.body_case = XBA__V1__FRAME__BODY_HEARTBEAT;
			frame.heartbeat = &hb;
			server_send(server, i, &frame);
		}
	}
}

/* journal_prune_some: is this node still in the region?  A removed node's queued deliveries keep nothing. */
static bool
node_listed(void *ctx, const char *node_id)
{
	const struct server *server = ctx;

	return directory_node(server->dir, node_id) != NULL;
}

/* One batch of the journal's retention; true when more is due at once (the batch was full). */
static bool
prune(struct server *server)
{
	struct xba_error err = { 0 };
	struct journal_pruned out;

	if (server->config->retention_days == 0)
		return false;
	/* By the earlier clock: a broker clock stepped a year ahead must not prune what was delivered a minute ago. */
	if (journal_prune_some(server->journal, server_now_earliest(server, clock_now_ms()) -
	    server->config->retention_days * 86400000LL, PRUNE_BATCH_ALERTS, node_listed, server, &out, &err) != 0) {
		char quoted[600];

		log_warnx("event=journal.prune_failed error=%s", log_quote(quoted, sizeof(quoted), err.msg));
		return false;
	}
	if (out.deleted > 0)
		log_info("event=journal.pruned deleted=%llu retention_days=%lld more=%s", (unsigned long long)out.deleted,
		    (long long)server->config->retention_days, out.more ? "true" : "false");
	if (!out.more && out.held_seq > 0)
		log_warnx("event=journal.prune_held node=%s seq=%llu note=\"an alert past retention_days is still queued "
			  "for %s: it and every later alert are kept until %s collects it, or is taken out of region.yaml "
			  "(the journal is a chain, pruned from its oldest end)\"", out.held_by,
		    (unsigned long long)out.held_seq, out.held_by, out.held_by);
	return out.more;
}

/* ---- configuration, reload ---------------------------------------------------------------------------------- */

/* Load region and rules together: rules hold node indexes of the directory they were loaded against. */
static int
load_region_and_rules(const struct broker_config *config, struct directory **dir_out, struct rules **rules_out,
    struct xba_error *err)
{
	struct directory *dir = directory_load(config->region, err);
	struct rules *rules;

	if (dir == NULL)
		return err->code ? err->code : XBA_ECONFIG;
	rules = rules_load(config->rules, dir, err);
	if (rules == NULL) {
		directory_free(dir);
		return err->code ? err->code : XBA_ECONFIG;
	}
	*dir_out = dir;
	*rules_out = rules;
	return 0;
}

static void
reload(struct server *server)
{
	struct xba_error err = { 0 };
	struct directory *dir;
	struct rules *rules;
	struct session *sessions;

	NOTIFY("RELOADING=1");
	commit(server);
	if (load_region_and_rules(server->config, &dir, &rules, &err) != 0) {
		char quoted[600], region_version[65];

		/* Both files stay as they were, whichever failed: a revocation in region.yaml is not in force either, and
		 * the secretariat fixing a rules typo must be told so. */
		encoding_hex(server->dir->digest, 32, region_version);
		log_warnx("event=rules.reload_failed error=%s applied=nothing keeping_rules=%s keeping_region=%.12s "
			  "note=\"neither region.yaml nor rules.yaml changed: fix the file named and reload\"",
		    log_quote(quoted, sizeof(quoted), err.msg), rules_version(server->rules), region_version);
		NOTIFY("READY=1");
		return;
	}
	sessions = calloc(dir->n_nodes ? dir->n_nodes : 1, sizeof(*sessions));
	if (sessions == NULL) {
		log_warnx("event=rules.reload_failed error=\"out of memory\"");
		rules_free(rules);
		directory_free(dir);
		NOTIFY("READY=1");
		return;
	}
	/* Carry each session over by node id; nodes no longer listed are disconnected. */
	for (size_t i = 0; i < server->dir->n_nodes; i++) {
		const struct dir_node *now = directory_node(dir, server->dir->nodes[i].id);

		if (now != NULL) {
			/* A new curve_key: the live connection was admitted with the old one, and nothing more goes to it
			 * (a stolen server's key removed must lock it out now, not at its next reconnect). */
			if (server->sessions[i].up && strcmp(now->curve_public_z85, server->dir->nodes[i].curve_public_z85) != 0) {
				log_warnx("event=node.key_changed node=%s action=\"its connection with the old CURVE key is "
					  "dropped; it reconnects with the new one\"", now->id);
				session_drop(server, i, "curve-key-changed");
			}
			sessions[directory_node_index(dir, now)] = server->sessions[i];
			sessions[directory_node_index(dir, now)].wants_delivery = true;
		} else {
			if (server->sessions[i].up)
				log_warnx("event=node.removed node=%s", server->dir->nodes[i].id);
			free(server->sessions[i].inflight);
		}
	}
	free(server->sessions);
	server->sessions = sessions;
	directory_free(server->dir);
	rules_free(server->rules);
	server->dir = dir;
	server->rules = rules;
	{
		char region_version[65];

		encoding_hex(dir->digest, 32, region_version);
		log_info("event=rules.reloaded version=%s rules=%zu nodes=%zu region=%.12s", rules_version(rules),
		    rules_count(rules), dir->n_nodes, region_version);
	}
	rules_warnings(server);
	key_warnings(server);
	NOTIFY("READY=1");
}

/* The broker's CURVE secret key, an error naming the setting it came from (broker.yaml: curve_secret_key: ...). */
static int
load_curve_key(const struct broker_config *config, struct curve_identity *curve, struct xba_error *err)
{
	int rc = keys_load_curve(config->curve_secret_key, curve, err);

	if (rc != 0) {
		char msg[XBA_ERROR_MSG_MAX];

		snprintf(msg, sizeof(msg), "%s", err->msg);
		return xba_error_set(err, rc, "%s: curve_secret_key: %s", config->path, msg);
	}
	return 0;
}

int
server_check(const struct broker_config *config, struct xba_error *err)
{
	struct curve_identity curve;
	struct directory *dir;
	struct rules *rules;
	int rc;

	if ((rc = load_curve_key(config, &curve, err)) != 0)
		return rc;
	memset(&curve, 0, sizeof(curve));
	if ((rc = load_region_and_rules(config, &dir, &rules, err)) != 0)
		return rc;
	rules_free(rules);
	directory_free(dir);
	return 0;
}

/* ---- lifecycle -------------------------------------------------------------------------------------------- */

struct server *
server_new(const struct broker_config *config, struct xba_error *err)
{
	struct server *server = calloc(1, sizeof(*server));
	struct curve_identity curve;
	int one = 1, zero = 0, mandatory = 1, hwm = 100000, ivl, timeout, handshake = BROKER_HANDSHAKE_MS;
	int64_t hard_max;

	if (server == NULL) {
		xba_error_set(err, XBA_ENOMEM, "out of memory");
		return NULL;
	}
	server->config = config;
	server->signal_fd = -1;
	if (load_curve_key(config, &curve, err) != 0 ||
	    load_region_and_rules(config, &server->dir, &server->rules, err) != 0)
		goto fail;
	server->sessions = calloc(server->dir->n_nodes ? server->dir->n_nodes : 1, sizeof(*server->sessions));
	if (server->sessions == NULL) {
		xba_error_set(err, XBA_ENOMEM, "out of memory");
		goto fail;
	}
	server->journal = journal_open(config->journal, err);
	if (server->journal == NULL)
		goto fail;
	if ((server->checkpointer = checkpointer_new(config->journal, CHECKPOINT_INTERVAL_MS, err)) == NULL)
		goto fail;
	journal_defer_checkpoints(server->journal, CHECKPOINT_SAFETY_PAGES);
	server->committed_head = journal_head(server->journal);
	server->zmq_ctx = zmq_ctx_new();
	if (server->zmq_ctx != NULL)
		server->io_sched_batch = io_threads_batch(server->zmq_ctx);
	if (server->zmq_ctx == NULL || (server->zap = zap_new(server->zmq_ctx, err)) == NULL)
		goto fail;
	server->router = zmq_socket(server->zmq_ctx, ZMQ_ROUTER);
	hard_max = config->max_frame_bytes * HARD_FRAME_FACTOR;
	ivl = (int)config->heartbeat_ms;
	timeout = (int)config->heartbeat_ms * 3;
	if (server->router == NULL ||
	    zmq_setsockopt(server->router, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(server->router, ZMQ_CURVE_SECRETKEY, curve.secret_z85, XBA_Z85_KEY_TEXT_LEN) != 0 ||
	    zmq_setsockopt(server->router, ZMQ_ZAP_DOMAIN, "xba", 3) != 0 ||
	    zmq_setsockopt(server->router, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof(mandatory)) != 0 ||
	    zmq_setsockopt(server->router, ZMQ_MAXMSGSIZE, &hard_max, sizeof(hard_max)) != 0 ||
	    zmq_setsockopt(server->router, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
	    zmq_setsockopt(server->router, ZMQ_RCVHWM, &hwm, sizeof(hwm)) != 0 ||
	    zmq_setsockopt(server->router, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl)) != 0 ||
	    zmq_setsockopt(server->router, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof(timeout)) != 0 ||
	    zmq_setsockopt(server->router, ZMQ_HANDSHAKE_IVL, &handshake, sizeof(handshake)) != 0 ||
	    zmq_setsockopt(server->router, ZMQ_LINGER, &zero, sizeof(zero)) != 0) {
		xba_error_set(err, XBA_EIO, "cannot set up the ROUTER socket: %s", zmq_strerror(zmq_errno()));
		goto fail;
	}
	memset(&curve, 0, sizeof(curve));
	if (zmq_bind(server->router, config->listen) != 0) {
		xba_error_set(err, XBA_EIO, "cannot listen on %s: %s", config->listen, zmq_strerror(zmq_errno()));
		goto fail;
	}
	{
		long online = sysconf(_SC_NPROCESSORS_ONLN);
		int64_t threads = config->verify_threads >= 0 ? config->verify_threads : (online > 1 ? online - 1 : 0);

		/* By default at most VERIFY_THREADS_AUTO_MAX: a chunk holds CHUNK_MAX publishes, and every post wakes
		 * every thread; more than a few threads per chunk only adds wake-ups. */
		if (config->verify_threads < 0 && threads > VERIFY_THREADS_AUTO_MAX)
			threads = VERIFY_THREADS_AUTO_MAX;

		server->chunks = calloc(2, sizeof(*server->chunks));
		if (server->chunks == NULL) {
			xba_error_set(err, XBA_ENOMEM, "out of memory");
			goto fail;
		}
		if ((server->verifiers = verify_pool_new((unsigned)threads, err)) == NULL)
			goto fail;
	}
	return server;
fail:
	memset(&curve, 0, sizeof(curve));
	server_free(server);
	return NULL;
}

void
server_free(struct server *server)
{
	if (server == NULL)
		return;
	if (server->in_transaction)
		journal_rollback(server->journal);
	if (server->router != NULL)
		zmq_close(server->router);
	zap_free(server->zap);
	if (server->zmq_ctx != NULL)
		zmq_ctx_term(server->zmq_ctx);
	checkpointer_free(server->checkpointer);
	journal_close(server->journal);
	if (server->sessions != NULL && server->dir != NULL)
		for (size_t i = 0; i < server->dir->n_nodes; i++)
			free(server->sessions[i].inflight);
	free(server->sessions);
	free(server->held);
	verify_pool_free(server->verifiers);
	free(server->chunks);
	rules_free(server->rules);
	directory_free(server->dir);
	free(server);
}

int
server_run(struct server *server, int signal_fd)
{
	int64_t last_prune = clock_mono_ms() - PRUNE_INTERVAL_MS + PRUNE_FIRST_DELAY_MS;
	int64_t tick = server->config->heartbeat_ms / 4, poll_start;
	zmq_pollitem_t items[3];
	char region_version[65], quoted_id[300], quoted_listen[300];

	server->signal_fd = signal_fd;
	if (tick < 20)
		tick = 20;
	encoding_hex(server->dir->digest, 32, region_version);
	/* broker_id and listen are whatever broker.yaml says, spaces included. */
	log_info("event=broker.ready broker=%s listen=%s nodes=%zu rules_version=%s region=%.12s journal_head=%llu "
		 "verify=%s verify_threads=%u io_sched=%s",
	    log_quote(quoted_id, sizeof(quoted_id), server->config->broker_id),
	    log_quote(quoted_listen, sizeof(quoted_listen), server->config->listen), server->dir->n_nodes,
	    rules_version(server->rules),
	    region_version,
	    (unsigned long long)journal_head(server->journal), sig_backend_name(),
	    verify_pool_threads(server->verifiers) + 1, server->io_sched_batch ? "batch" : "default");
	rules_warnings(server);
	key_warnings(server);
	NOTIFY("READY=1");
	stats_reset(server);
	while (!server->stopping) {
		int64_t pass_start;

		log_flush(); /* what this pass logged is written before the poll may wait */
		items[0] = (zmq_pollitem_t){ server->router, 0, ZMQ_POLLIN, 0 };
		items[1] = (zmq_pollitem_t){ zap_socket(server->zap), 0, ZMQ_POLLIN, 0 };
		items[2] = (zmq_pollitem_t){ NULL, signal_fd, ZMQ_POLLIN, 0 };
		poll_start = clock_mono_ms();
		if (zmq_poll(items, 3, (long)tick) < 0 && zmq_errno() != EINTR) {
			char quoted[300];

			log_warnx("event=broker.poll_failed error=%s",
			    log_quote(quoted, sizeof(quoted), zmq_strerror(zmq_errno())));
			break;
		}
		/* The poll waited: what woke it arrived just now, not when the socket was last found empty.  (One that
		 * returned at once found frames that arrived meanwhile: during the last commit, say.) */
		if (clock_mono_ms() - poll_start >= 2)
			server->input_since_mono = clock_mono_ms();
		if (items[2].revents & ZMQ_POLLIN) {
			char c;

			while (read(signal_fd, &c, 1) == 1) {
				if (c == 'H')
					reload(server);
				else if (c == 'U')
					log_region_status(server);
				else
					server->stopping = true;
			}
		}
		pass_start = clock_mono_us();
		zap_handle(server->zap, server->dir);
		receive_pass(server);
		commit(server);
		/* The pass only reads; one read-write transaction around it takes SQLite's file locks once instead of
		 * once per statement (the fcntl calls were a visible share of broker CPU), and commits nothing. */
		{
			struct xba_error err = { 0 };
			char quoted[600];

			if (server_begin(server, &err) != 0)
				log_warnx("event=journal.error op=begin error=%s",
				    log_quote(quoted, sizeof(quoted), err.msg));
		}
		deliver_pass(server);
		commit(server);
		if (clock_mono_us() - pass_start > server->stats.pass_us_max)
			server->stats.pass_us_max = clock_mono_us() - pass_start;
		heartbeats(server);
		stats_report(server);
		report_suppressed_due(server);
		if (clock_mono_ms() - last_prune >= PRUNE_INTERVAL_MS) {
			/* A full batch: the next one in a second, between passes, rather than one long stall. */
			last_prune = clock_mono_ms() - (prune(server) ? PRUNE_INTERVAL_MS - 1000 : 0);
		}
		if (clock_mono_ms() >= server->next_key_warning_mono_ms)
			key_warnings(server);
	}
	NOTIFY("STOPPING=1");
	commit(server);
	log_info("event=broker.stopped journal_head=%llu", (unsigned long long)journal_head(server->journal));
	return 0;
}
