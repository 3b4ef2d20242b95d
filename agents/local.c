/*
 * local.c — the agent's endpoint for the operator CLI (`xba send`, `watch`, `ack`, `history`, `status`, `track`):
 * the LocalFrame protocol at the end of proto/xba.proto.  It is where an officer's alert enters this country's
 * side of the system (validated, signed with the country's key, committed to the outbox before "OK" goes back) and
 * where delivered alerts leave it (pushed to every `xba watch` whose filter matches).
 *
 * Two ROUTER sockets: ipc://local_socket, guarded by the socket file's mode and group (a local user who can
 * connect can have alerts signed in this country's name), and optionally lan_listen, a CURVE server that admits
 * only the officers' keys listed in agent.yaml, checked by this file's own ZAP handler (domain "xba-local").
 * Every send is ZMQ_DONTWAIT with ROUTER_MANDATORY: a vanished CLI is forgotten (EHOSTUNREACH), a stuck one is
 * dropped from the subscribers (EAGAIN), and neither ever blocks the agent.  A malformed or unknown request gets a
 * LocalError naming what was wrong; it disturbs no other client.
 */
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "alert.h"
#include "alertyaml.h"
#include "chain.h"
#include "clock.h"
#include "envelope.h"
#include "frame.h"
#include "log.h"
#include "zapwire.h"
#include "syntax.h"

/* How far ahead of this agent's clock an alert's sent time may be: the skew every broker accepts (protocol 2.3). */
#define SENT_AHEAD_MAX_MS (60 * 1000)
/* The broker's default clock_skew_ms: a sent time further ahead of its clock is refused for now (CLOCK_SKEW). */
#define BROKER_SKEW_MS (300 * 1000)
#define LOCAL_MAX_SUBSCRIBERS 64      /* `xba watch` sessions at once; more are refused */
#define LOCAL_MAX_SUBS_PER_OFFICER 8  /* of those, for one LAN officer's key */
#define LOCAL_SUBS_KEPT_FOR_IPC 8     /* places the LAN may not take: the agent's own console can always watch */
/* A watch whose client has said nothing for this long (an `xba watch` asks every 15 s) is frozen or gone: when
 * the places are all taken, the longest silent one gives its place to a new watch. */
#define LOCAL_WATCH_SILENT_MS 60000
#define LOCAL_PING_IVL_MS 10000       /* clients are pinged this often ... */
#define LOCAL_PEER_TIMEOUT_MS 45000   /* ... and one that has not answered by then is disconnected (a ping queues
                                       * behind what is being sent: 768 KiB of history takes 45 s at 140 kbit/s) */
#define LOCAL_LOG_BURST 100           /* records clients' bad frames and refused keys may cause at once ... */
#define LOCAL_LOG_PER_SECOND 10.0     /* ... and after that; the rest are counted (event=local.log_suppressed) */
#define LOCAL_MAX_SUBMITTERS 1024     /* alerts whose submitter waits for a PublishEvent */
#define LOCAL_MAX_FRAME (1024 * 1024) /* a request; a SubmitRequest holds one alert of at most 64 KiB */
#define LOCAL_REPLY_BUDGET (768 * 1024) /* a HistoryReply stays under the CLI's 1 MiB frame limit */
#define LOCAL_BATCH 64                /* requests per socket per loop turn, so the uplink is never starved ... */
#define LOCAL_TURN_MS 20              /* ... nor held longer than this (after the first request) by a burst */
/* Messages queued per CLI connection before it counts as stuck and loses its watch: above a watch's replay (1 000
 * alerts and 1 000 older emergencies) and a full DeliverBatch arriving meanwhile; each can be an alert of up to 64
 * KiB, held by libzmq until the client reads or goes, so this bounds what one frozen terminal costs. */
#define LOCAL_SNDHWM 5000
#define LOCAL_IPC_HANDSHAKE_MS 2000   /* a local connection that has not said hello by then is closed */
#define LOCAL_REPLAY_MAX 1000         /* stored alerts replayed to a new subscriber */
#define LOCAL_REPLAY_BUDGET (16 * 1024 * 1024) /* ... and the memory they may take while being replayed */
#define LOCAL_RECALL_MAX 1000         /* ... and unacknowledged emergencies older than those, replayed first */
#define LOCAL_HISTORY_DEFAULT 100
#define LOCAL_HISTORY_MAX 1000
#define LOCAL_RECORDS_DEFAULT 1000 /* `xba audit verify --agent` pages: ~90 bytes a record */
#define LOCAL_RECORDS_MAX 5000
#define LOCAL_FILTER_LIST_MAX 64      /* categories or origins in one filter */
#define MODE_STICKY 01000             /* S_ISVTX, which _POSIX_C_SOURCE alone does not declare */
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "xba-local"

/* An `xba watch` (or `xba broadcast --wait`) connection. */
struct subscriber {
	struct local_peer peer;
	Xba__V1__AlertFilter *filter;  /* owned copy (protobuf-c unpacked); NULL = everything */
	bool receipts;                 /* also push receipts for this node's alerts */
	int64_t heard_mono;            /* when its client last sent anything (clock_mono_ms) */
};

/* A submission whose PublishEvent goes back to the connection that submitted it. */
struct submitter {
	char alert_id[XBA_UUID_LEN + 1];
	struct local_peer peer;
};

struct local {
	void *sockets[2];                            /* [LOCAL_IPC] ROUTER on ipc://; [LOCAL_LAN] CURVE ROUTER or NULL */
	void *zap;                                   /* REP answering ZAP for the LAN socket, or NULL */
	char *ipc_path;                              /* the socket file; owned */
	struct subscriber subs[LOCAL_MAX_SUBSCRIBERS];
	size_t n_subs;
	struct submitter submitters[LOCAL_MAX_SUBMITTERS]; /* ring: the oldest is overwritten when full */
	size_t next_submitter;
	struct log_budget log_budget;                /* LOCAL_LOG_*: what clients' mistakes may write to the log */
};

/* May a client's bad frame, or a refused LAN key, be logged now?  A flood of them (one officer's broken or hostile
 * client, or anyone on the LAN) must not fill the disk the store is on: past the budget they are counted, and the
 * count is written with the next record allowed. */
static bool
local_log_allowed(struct local *local)
{
	struct log_budget *b = &local->log_budget;

	if (!log_budget_take(b, LOCAL_LOG_PER_SECOND, LOCAL_LOG_BURST))
		return false;
	if (b->suppressed > 0) {
		log_warnx("event=local.log_suppressed records=%llu note=\"clients' bad frames or refused keys caused more "
			  "log records than %d at once or %.0f a second; those were not written\"",
		    (unsigned long long)b->suppressed, LOCAL_LOG_BURST, LOCAL_LOG_PER_SECOND);
		b->suppressed = 0;
	}
	return true;
}

/* ---- sending ---------------------------------------------------------------------------------------------- */

static bool
peer_equal(const struct local_peer *a, const struct local_peer *b)
{
	return a->socket == b->socket && a->id_len == b->id_len && memcmp(a->id, b->id, a->id_len) == 0;
}

/* 0, or the errno of the failed send: EHOSTUNREACH (the peer is gone), EAGAIN (its queue is full). */
static int
send_frame(struct local *local, const struct local_peer *peer, const Xba__V1__LocalFrame *frame)
{
	void *socket = local->sockets[peer->socket];
	size_t len = xba__v1__local_frame__get_packed_size(frame);
	uint8_t *buf;
	int rc = 0;

	if (socket == NULL)
		return EHOSTUNREACH;
	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		return ENOMEM;
	xba__v1__local_frame__pack(frame, buf);
	if (zmq_send(socket, peer->id, peer->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
	    zmq_send(socket, buf, len, ZMQ_DONTWAIT) < 0)
		rc = zmq_errno();
	free(buf);
	return rc;
}

static void
remove_subscriber(struct local *local, size_t i)
{
	if (local->subs[i].filter != NULL)
		xba__v1__alert_filter__free_unpacked(local->subs[i].filter, NULL);
	local->subs[i] = local->subs[--local->n_subs];
	memset(&local->subs[local->n_subs], 0, sizeof(local->subs[0]));
}

/* A CLI connection is gone: forget everything that would be sent to it. */
static void
forget_peer(struct agent *agent, const struct local_peer *peer)
{
	struct local *local = agent->local;

	for (size_t i = local->n_subs; i-- > 0;)
		if (peer_equal(&local->subs[i].peer, peer))
			remove_subscriber(local, i);
	for (size_t i = 0; i < LOCAL_MAX_SUBMITTERS; i++)
		if (local->submitters[i].alert_id[0] != '\0' && peer_equal(&local->submitters[i].peer, peer))
			local->submitters[i].alert_id[0] = '\0';
	uplink_forget_peer(agent->uplink, peer);
}

void
local_send(struct agent *agent, const struct local_peer *peer, const Xba__V1__LocalFrame *frame)
{
	int rc = send_frame(agent->local, peer, frame);

	if (rc == 0)
		return;
	if (rc == EHOSTUNREACH) {
		log_debug("event=local.peer_gone peer=%s", peer->who_log);
	} else {
		char quoted[300];

		log_warnx("event=local.send_failed peer=%s reason=%s", peer->who_log,
		    log_quote(quoted, sizeof(quoted), zmq_strerror(rc)));
	}
	forget_peer(agent, peer);
}

void
local_send_error(struct agent *agent, const struct local_peer *peer, uint64_t ref, Xba__V1__ErrorCode code,
    const char *field, const char *fmt, ...)
{
	Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;
	Xba__V1__LocalError error = XBA__V1__LOCAL_ERROR__INIT;
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	error.code = code;
	error.message = message;
	error.field = (char *)(field != NULL ? field : "");
	frame.ref = ref;
	frame.body_case = XBA__V1__LOCAL_FRAME__BODY_ERROR;
	frame.error = &error;
	local_send(agent, peer, &frame);
}

void
local_officers_changed(struct agent *agent)
{
	struct local *local = agent->local;

	for (size_t i = local->n_subs; i-- > 0;) {
		struct local_peer peer;

		if (i >= local->n_subs || local->subs[i].peer.socket != LOCAL_LAN ||
		    agent_config_officer(agent->config, local->subs[i].peer.officer_key) != NULL)
			continue;
		peer = local->subs[i].peer;
		log_info("event=local.unsubscribed peer=%s reason=officer-removed", peer.who_log);
		local_send_error(agent, &peer, 0, XBA__V1__ERROR_CODE__NOT_PERMITTED, "",
		    "this officer key (%s) was taken out of the agent's officers (agent.yaml): the watch ends here; ask "
		    "the focal point", peer.who + 4);
		forget_peer(agent, &peer);
	}
}

/* ---- pushes ------------------------------------------------------------------------------------------------ */

static bool
filter_matches(const Xba__V1__AlertFilter *f, const struct store_row *row, bool ack_update)
{
	bool any;

	if (f == NULL)
		return true;
	if (f->n_categories > 0) {
		any = false;
		for (size_t i = 0; i < f->n_categories; i++)
			any |= (int)f->categories[i] == row->category;
		if (!any)
			return false;
	}
	if ((int)f->min_severity > row->severity)
		return false;
	if (f->n_origins > 0) {
		any = false;
		for (size_t i = 0; i < f->n_origins; i++)
			any |= strcmp(f->origins[i], row->origin) == 0;
		if (!any)
			return false;
	}
	if (row->received_ms < f->since_ms)
		return false;
	/* An acknowledgement is news to a watch that showed the alert unacknowledged. */
	if (f->unacknowledged_only && !ack_update &&
	    (row->acknowledged || row->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ACK))
		return false;
	return true;
}

/* An InboxEntry over a row and its decoded alert (all borrowed); dir is this agent's region.yaml, which says
 * whether the alert's origin can still be sent an acknowledgement. */
static void
entry_init(Xba__V1__InboxEntry *e, const struct store_row *row, Xba__V1__Alert *alert, const struct directory *dir)
{
	xba__v1__inbox_entry__init(e);
	e->envelope.data = row->envelope;
	e->envelope.len = row->envelope_len;
	e->alert = alert;
	e->received_ms = row->outgoing ? row->submitted_ms : row->received_ms;
	e->seq = row->seq;
	e->rule = (char *)row->rule;
	e->acknowledged = row->acknowledged;
	e->acknowledged_by = (char *)row->acknowledged_by;
	e->acknowledged_ms = row->acknowledged_ms;
	e->outgoing = row->outgoing;
	e->superseded_by = (char *)row->superseded_by;
	e->superseded_type = (Xba__V1__MsgType)row->superseded_type;
	if (!row->outgoing) {
		e->origin_not_in_region = directory_node(dir, row->origin) == NULL;
		e->ack_refused_code = (Xba__V1__ErrorCode)row->ack_refused_code;
		e->ack_refused_message = (char *)row->ack_refused_message;
	}
	if (row->outgoing) {
		e->publish_state = (Xba__V1__PublishState)row->state;
		e->recipients = row->recipients;
		if (e->publish_state == XBA__V1__PUBLISH_STATE__PUBLISH_STATE_REFUSED) {
			e->publish_result = (Xba__V1__ErrorCode)row->result;
			e->publish_message = (char *)row->message;
			e->publish_field = (char *)row->field;
		}
	}
}

/* Push to every subscriber whose filter matches; a subscriber that cannot take it is dropped (see the file
 * comment), never waited for. */
static void
push_entry(struct agent *agent, const struct store_row *row, Xba__V1__Alert *alert, bool ack_update)
{
	struct local *local = agent->local;
	Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;
	Xba__V1__InboxEntry entry;

	entry_init(&entry, row, alert, agent->dir);
	frame.body_case = XBA__V1__LOCAL_FRAME__BODY_ALERT_EVENT;
	frame.alert_event = &entry;
	for (size_t i = local->n_subs; i-- > 0;) {
		struct local_peer peer;
		int rc;

		if (!filter_matches(local->subs[i].filter, row, ack_update))
			continue;
		if ((rc = send_frame(local, &local->subs[i].peer, &frame)) == 0)
			continue;
		peer = local->subs[i].peer;
		if (rc == EHOSTUNREACH)
			log_info("event=local.unsubscribed peer=%s reason=disconnected", peer.who_log);
		else {
			char quoted[300];

			log_warnx("event=local.unsubscribed peer=%s reason=too-slow alert=%s detail=%s "
				  "hint=\"the watch must subscribe again (with --since) to catch up\"",
			    peer.who_log, row->alert_id, log_quote(quoted, sizeof(quoted), zmq_strerror(rc)));
		}
		forget_peer(agent, &peer);
	}
}

void
local_push_alert(struct agent *agent, const struct store_row *row, const Xba__V1__Alert *alert)
{
	struct store_row shown = *row; /* the envelope stays the caller's */
	struct xba_error err = { 0 };
	char quoted[600];

	/* Its origin's update or cancel may have arrived first (the alert was quarantined, say): show it withdrawn
	 * now, as history will.  A failed read only leaves that out. */
	if (!row->outgoing && store_superseded_get(agent->store, &shown, &err) != 0)
		log_warnx("event=store.read_failed op=superseded error=%s", log_quote(quoted, sizeof(quoted), err.msg));
	push_entry(agent, &shown, (Xba__V1__Alert *)alert, false);
}

void
local_push_receipt(struct agent *agent, const Xba__V1__Receipt *receipt)
{
	struct local *local = agent->local;
	Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;

	frame.body_case = XBA__V1__LOCAL_FRAME__BODY_RECEIPT_EVENT;
	frame.receipt_event = (Xba__V1__Receipt *)receipt;
	for (size_t i = local->n_subs; i-- > 0;) {
		struct local_peer peer;

		if (!local->subs[i].receipts || send_frame(local, &local->subs[i].peer, &frame) == 0)
			continue;
		peer = local->subs[i].peer;
		log_info("event=local.unsubscribed peer=%s reason=send-failed", peer.who_log);
		forget_peer(agent, &peer);
	}
}

static void
remember_submitter(struct local *local, const struct local_peer *peer, const char *alert_id)
{
	struct submitter *s = &local->submitters[local->next_submitter];

	snprintf(s->alert_id, sizeof(s->alert_id), "%s", alert_id);
	s->peer = *peer;
	local->next_submitter = (local->next_submitter + 1) % LOCAL_MAX_SUBMITTERS;
}

void
local_push_publish_event(struct agent *agent, const char *alert_id, Xba__V1__PublishState state,
    Xba__V1__ErrorCode result, uint64_t seq, uint32_t recipients, const char *message, const char *field)
{
	struct local *local = agent->local;
	Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;
	Xba__V1__PublishEvent event = XBA__V1__PUBLISH_EVENT__INIT;

	event.alert_id = (char *)alert_id;
	event.state = state;
	event.result = result;
	event.seq = seq;
	event.recipients = recipients;
	event.message = (char *)(message != NULL ? message : "");
	event.field = (char *)(field != NULL ? field : "");
	frame.body_case = XBA__V1__LOCAL_FRAME__BODY_PUBLISH_EVENT;
	frame.publish_event = &event;
	for (size_t i = 0; i < LOCAL_MAX_SUBMITTERS; i++) {
		struct submitter *s = &local->submitters[i];

		if (s->alert_id[0] == '\0' || strcmp(s->alert_id, alert_id) != 0)
			continue;
		s->alert_id[0] = '\0'; /* the broker's answer is final */
		if (send_frame(local, &s->peer, &frame) != 0)
			log_debug("event=local.peer_gone peer=%s alert=%s", s->peer.who_log, alert_id);
	}
}

/* ---- decoding stored alerts --------------------------------------------------------------------------------- */

/* The alert inside a stored envelope (verified when it was stored; decoded again, never re-verified, to show it).
 * NULL, logged, when the stored bytes do not decode: a damaged row must not hide the others. */
static Xba__V1__Alert *
decode_row(const struct store_row *row)
{
	Xba__V1__Envelope *env = xba__v1__envelope__unpack(NULL, row->envelope_len, row->envelope);
	struct xba_error err = { 0 };
	Xba__V1__Alert *alert = NULL;

	if (env != NULL)
		alert = alert_decode(env->alert.data, env->alert.len, &err);
	if (alert == NULL) {
		char quoted[300];

		log_warnx("event=store.damaged_row alert=%s reason=%s", row->alert_id,
		    log_quote(quoted, sizeof(quoted), env == NULL ? "envelope does not decode" : err.msg));
	}
	if (env != NULL)
		xba__v1__envelope__free_unpacked(env, NULL);
	return alert;
}

/* A row copied out of a query callback (whose row is borrowed) with its decoded alert. */
struct held_row {
	struct store_row row;           /* envelope owned */
	Xba__V1__Alert *alert;          /* owned */
	int64_t time_ms;                /* received (inbox) or submitted (outgoing): the history's order */
};

struct held_rows {
	struct held_row *v;
	size_t n, cap;
	size_t budget;                  /* bytes still allowed in one reply (0 = no limit) */
	bool truncated;                 /* stopped because of the budget */
};

static int
hold_row(void *ctx, const struct store_row *row)
{
	struct held_rows *h = ctx;
	struct held_row *slot;
	size_t cost = row->envelope_len * 2 + 512; /* envelope + decoded alert + entry fields, generously */

	if (h->budget != 0) {
		if (cost > h->budget) {
			h->truncated = true;
			return 1;
		}
		h->budget -= cost;
	}
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 32;
		struct held_row *grown = realloc(h->v, cap * sizeof(*grown));

		if (grown == NULL)
			return XBA_ENOMEM;
		h->v = grown;
		h->cap = cap;
	}
	slot = &h->v[h->n];
	slot->row = *row;
	if ((slot->row.envelope = malloc(row->envelope_len + 1)) == NULL)
		return XBA_ENOMEM;
	if (row->envelope_len > 0)
		memcpy(slot->row.envelope, row->envelope, row->envelope_len);
	if ((slot->alert = decode_row(&slot->row)) == NULL) {
		free(slot->row.envelope);
		return 0; /* skipped and logged */
	}
	slot->time_ms = row->outgoing ? row->submitted_ms : row->received_ms;
	h->n++;
	return 0;
}

static void
held_rows_free(struct held_rows *h)
{
	for (size_t i = 0; i < h->n; i++) {
		store_row_clear(&h->v[i].row);
		alert_free(h->v[i].alert);
	}
	free(h->v);
	memset(h, 0, sizeof(*h));
}

/* ---- requests ---------------------------------------------------------------------------------------------- */

/* The filter as the store takes it (arrays borrowed from f). */
static void
store_filter_from(const Xba__V1__AlertFilter *f, struct store_filter *out, int categories[LOCAL_FILTER_LIST_MAX])
{
	memset(out, 0, sizeof(*out));
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n_categories && i < LOCAL_FILTER_LIST_MAX; i++)
		categories[i] = (int)f->categories[i];
	out->categories = categories;
	out->n_categories = f->n_categories;
	out->min_severity = (int)f->min_severity;
	out->origins = (const char *const *)f->origins;
	out->n_origins = f->n_origins;
	out->since_ms = f->since_ms;
	out->unacknowledged_only = f->unacknowledged_only;
}

/* A filter from the CLI is input: every value is checked before it reaches SQL or a comparison. */
static bool
filter_valid(struct agent *agent, const struct local_peer *peer, uint64_t ref, const char *what,
    const Xba__V1__AlertFilter *f)
{
	if (f == NULL)
		return true;
	if (f->n_categories > LOCAL_FILTER_LIST_MAX || f->n_origins > LOCAL_FILTER_LIST_MAX) {
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__MALFORMED_FRAME, "filter",
		    "%s.filter: at most %d categories and %d origins", what, LOCAL_FILTER_LIST_MAX,
		    LOCAL_FILTER_LIST_MAX);
		return false;
	}
	for (size_t i = 0; i < f->n_categories; i++) {
		if (alert_enum_name(ALERT_ENUM_CATEGORY, (int)f->categories[i]) == NULL) {
			local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__MALFORMED_FRAME, "filter.categories",
			    "%s.filter.categories[%zu]: %d is not a category (1..%d)", what, i, (int)f->categories[i],
			    alert_enum_max(ALERT_ENUM_CATEGORY));
			return false;
		}
	}
	if (f->min_severity != 0 && alert_enum_name(ALERT_ENUM_SEVERITY, (int)f->min_severity) == NULL) {
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__MALFORMED_FRAME, "filter.min_severity",
		    "%s.filter.min_severity: %d is not a severity (1..%d)", what, (int)f->min_severity,
		    alert_enum_max(ALERT_ENUM_SEVERITY));
		return false;
	}
	for (size_t i = 0; i < f->n_origins; i++) {
		if (f->origins[i] == NULL || !syntax_node_id_valid(f->origins[i])) {
			char quoted[80];

			local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__MALFORMED_FRAME, "filter.origins",
			    "%s.filter.origins[%zu]: %s is not a node id (NER, WHO-AFRO)", what, i,
			    log_quote(quoted, sizeof(quoted), f->origins[i]));
			return false;
		}
	}
	return true;
}

static void
reply_submit(struct agent *agent, const struct local_peer *peer, uint64_t ref, Xba__V1__ErrorCode result,
    const char *alert_id, const char *field, const char *fmt, ...) XBA_PRINTF(7, 8);

static void
reply_submit(struct agent *agent, const struct local_peer *peer, uint64_t ref, Xba__V1__ErrorCode result,
    const char *alert_id, const char *field, const char *fmt, ...)
{
	Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;
	Xba__V1__SubmitReply reply = XBA__V1__SUBMIT_REPLY__INIT;
	char message[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	reply.result = result;
	reply.alert_id = (char *)(alert_id != NULL ? alert_id : "");
	reply.message = message;
	reply.field = (char *)(field != NULL ? field : "");
	frame.ref = ref;
	frame.body_case = XBA__V1__LOCAL_FRAME__BODY_SUBMIT_REPLY;
	frame.submit_reply = &reply;
	if (result != XBA__V1__ERROR_CODE__OK) {
		char quoted[600], quoted_id[160];

		/* Some refusals come before the officer's id is checked: an id that is not one is quoted. */
		log_info("event=alert.not_queued peer=%s alert=%s code=%s field=%s reason=%s", peer->who_log,
		    alert_id == NULL || alert_id[0] == '\0' ? "-" : syntax_uuid_valid(alert_id) ? alert_id
		    : log_quote(quoted_id, sizeof(quoted_id), alert_id), frame_error_code_name(result),
		    field != NULL && field[0] ? field : "-", log_quote(quoted, sizeof(quoted), message));
	}
	local_send(agent, peer, &frame);
}

/*
 * The broker judges sent and expires by its own clock.  When this machine's clock is far from it, an alert would
 * be held (sent ahead: CLOCK_SKEW, and every later alert from here behind it) or refused for good (an expiry the
 * broker's clock has passed, as `--expires 12h` on a clock 13 h behind): refuse it here, naming the clock, while
 * the officer is still there to read it.  Nothing is checked before the broker has said what its clock reads.
 */
static Xba__V1__ErrorCode
check_broker_clock(struct agent *agent, const Xba__V1__Alert *alert, int64_t now_ms, const char **field,
    char *message, size_t size)
{
	int64_t broker_now, earliest, latest;
	char span[40], when[40], broker_text[40];

	if (!uplink_broker_now(agent->uplink, &broker_now) || !uplink_broker_window(agent->uplink, &earliest, &latest))
		return 0;
	clock_format_rfc3339(broker_now / 1000 * 1000, broker_text, sizeof(broker_text));
	/* Judged as the broker judges (protocol §2.7): by the later clock for sent, the earlier for expires. */
	if (alert->sent_ms > latest + BROKER_SKEW_MS) {
		*field = "sent";
		snprintf(message, size, "this machine's clock is %s ahead of the broker's (the broker's reads %s): the "
		    "broker would hold this alert, and every later one from here, until its clock reached %s. Fix this "
		    "machine's clock (NTP) and send again; if it is right (timedatectl), the broker's clock is behind: "
		    "tell the secretariat", clock_format_span(now_ms - broker_now, span, sizeof(span)), broker_text,
		    clock_format_rfc3339(alert->sent_ms, when, sizeof(when)));
		return XBA__V1__ERROR_CODE__CLOCK_SKEW;
	}
	if (alert->expires_ms != 0 && alert->expires_ms <= earliest) {
		*field = "expires";
		snprintf(message, size, "%s has already passed by the broker's clock (%s), which is %s %s this "
		    "machine's: the broker would refuse it for good (ALERT_EXPIRED). Fix this machine's clock (NTP) and "
		    "send again", clock_format_rfc3339(alert->expires_ms, when, sizeof(when)), broker_text,
		    clock_format_span(broker_now - now_ms, span, sizeof(span)), broker_now >= now_ms ? "ahead of" : "behind");
		return XBA__V1__ERROR_CODE__ALERT_EXPIRED;
	}
	return 0;
}

/* What the broker would refuse for good, told to the officer at once, before anything is queued: the same checks
 * as broker/publish.c, against this agent's copy of region.yaml.  During an outage this is the difference between
 * "you may not broadcast" now and a refusal hours later.  0 when none applies. */
static Xba__V1__ErrorCode
check_rights(struct agent *agent, const Xba__V1__Alert *alert, int64_t now_ms, const char **field, char *message,
    size_t size)
{
	const struct dir_node *node = agent->node;
	const struct dir_key *key = directory_key(agent->dir, agent->signer.key_id);
	struct xba_error err = { 0 };
	Xba__V1__ErrorCode code;

	if (node->role == NODE_ROLE_ADMIN) {
		*field = "origin";
		snprintf(message, size, "%s is an admin node and may not publish alerts", node->id);
		return XBA__V1__ERROR_CODE__NOT_PERMITTED;
	}
	/* Before an observer's category list: a broadcast from a node that may not broadcast is refused for that. */
	if (alert->emergency && !node->may_broadcast) {
		*field = "emergency";
		snprintf(message, size, "%s may not issue emergency broadcasts (may_broadcast in this agent's copy of "
		    "region.yaml; if the secretariat has just granted it, this agent needs the new file and a reload)",
		    node->id);
		return XBA__V1__ERROR_CODE__BROADCAST_NOT_ALLOWED;
	}
	if (node->role == NODE_ROLE_OBSERVER && alert->category != 0 &&
	    (node->publish_categories & (1u << alert->category)) == 0) {
		*field = "category";
		snprintf(message, size, "observer %s may not publish %s alerts (region.yaml publish list)", node->id,
		    alert_enum_name(ALERT_ENUM_CATEGORY, alert->category));
		return XBA__V1__ERROR_CODE__NOT_PERMITTED;
	}
	if (alert->tlp == XBA__V1__TLP__TLP_RED && alert->n_addressees == 0) {
		*field = "addressees";
		snprintf(message, size, "TLP:RED goes only to explicit addressees, and this alert names none");
		return XBA__V1__ERROR_CODE__TLP_RED_NO_ADDRESSEES;
	}
	/* An alert addressed to its own origin alone goes to nobody (the origin never receives its own), which the
	 * broker would accept as "0 recipients" and the officer read as the rules' doing. */
	if (alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ALERT && alert->n_addressees > 0) {
		size_t self = 0;

		for (size_t i = 0; i < alert->n_addressees; i++)
			self += alert->addressees[i] != NULL && strcmp(alert->addressees[i], node->id) == 0;
		if (self == alert->n_addressees) {
			*field = "addressees";
			snprintf(message, size, "the only addressee is %s, this country itself: an alert never goes back to "
			    "its origin, so nobody would receive it; name the nodes it is for, or leave the addressees out "
			    "to send where the region's rules say", node->id);
			return XBA__V1__ERROR_CODE__INVALID_ALERT;
		}
	}
	for (size_t i = 0; i < alert->n_addressees; i++) {
		if (alert->addressees[i] != NULL && directory_node(agent->dir, alert->addressees[i]) == NULL) {
			*field = "addressees";
			snprintf(message, size, "addressee %.40s is not a node of this region", alert->addressees[i]);
			return XBA__V1__ERROR_CODE__INVALID_ALERT;
		}
	}
	/* The broker refuses a sent time ahead of its clock for now (CLOCK_SKEW), and on an ordered session every later
	 * alert of this node waits behind it (protocol 2.3, "Order"): one mistyped date would stop the country's
	 * alerts, emergencies included, until that date. */
	if (alert->sent_ms > now_ms + SENT_AHEAD_MAX_MS) {
		char when[40], now_text[40];

		*field = "sent";
		snprintf(message, size, "%s is %lld minutes ahead of the time now (%s): the broker would hold it, "
		    "and every later alert from here behind it, until then; leave sent out (it is then the time of "
		    "submission)", clock_format_rfc3339(alert->sent_ms, when, sizeof(when)),
		    (long long)((alert->sent_ms - now_ms) / 60000), clock_format_rfc3339(now_ms, now_text, sizeof(now_text)));
		return XBA__V1__ERROR_CODE__CLOCK_SKEW;
	}
	if (alert->expires_ms != 0 && alert->expires_ms <= now_ms) {
		char when[40];

		*field = "expires";
		snprintf(message, size, "%s has already passed: the broker would refuse it (ALERT_EXPIRED)",
		    clock_format_rfc3339(alert->expires_ms, when, sizeof(when)));
		return XBA__V1__ERROR_CODE__ALERT_EXPIRED;
	}
	if ((code = check_broker_clock(agent, alert, clock_now_ms(), field, message, size)) != 0)
		return code;
	if (key == NULL) {
		*field = "origin";
		snprintf(message, size, "this agent's signing key is no longer in its region.yaml");
		return XBA__V1__ERROR_CODE__UNKNOWN_KEY;
	}
	/* now_ms is the signing time (uplink_signing_now): a key's validity is never judged by a clock the agent knows
	 * is wrong, and its revocation never later than this machine's clock says (agent_revocation_now). */
	if (directory_key_usable(agent->dir, key, alert->sent_ms, agent_revocation_now(agent), &err) != 0) {
		*field = "sent_ms";
		snprintf(message, size, "%s", err.msg);
		return err.code == XBA_EKEYREVOKED ? XBA__V1__ERROR_CODE__KEY_REVOKED : XBA__V1__ERROR_CODE__KEY_NOT_VALID;
	}
	return 0;
}

/* What find_superseder looks for: a later update or cancel of this country's that names one of refs. */
struct superseder_search {
	const Xba__V1__Alert *submitted;          /* the update or cancel being submitted */
	char found_id[XBA_UUID_LEN + 1];
	char replaced_id[XBA_UUID_LEN + 1];       /* the reference it supersedes */
	int found_type;
};

static int
superseder_row(void *ctx, const struct store_row *row)
{
	struct superseder_search *s = ctx;
	Xba__V1__Alert *later;

	if ((row->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE && row->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL) ||
	    row->state == STORE_REFUSED || alert_names_reference(s->submitted, row->alert_id) ||
	    strcmp(row->alert_id, s->submitted->id) == 0 || (later = decode_row(row)) == NULL)
		return 0;
	for (size_t i = 0; i < later->n_references && s->found_id[0] == '\0'; i++)
		if (later->references[i] != NULL && alert_names_reference(s->submitted, later->references[i])) {
			snprintf(s->found_id, sizeof(s->found_id), "%.36s", row->alert_id);
			snprintf(s->replaced_id, sizeof(s->replaced_id), "%.36s", later->references[i]);
			s->found_type = row->msg_type;
		}
	alert_free(later);
	return s->found_id[0] != '\0' ? 1 : 0;
}

/*
 * An update or cancel names the versions `xba send` found when it looked.  Another officer's update or cancel of the
 * same alert may have been queued since (two officers at once): a cancel that does not name that update leaves it
 * live at every recipient, and a later cancel of it is refused (the alert was withdrawn); two updates of one version
 * leave two "latest" ones.  Submissions are taken one at a time here, so this is where the race is closed: refused,
 * nothing queued, and the command run again names the newer version.  0, or INVALID_ALERT with the message.
 */
static Xba__V1__ErrorCode
check_not_superseded(struct agent *agent, const Xba__V1__Alert *alert, const char **field, char *message,
    size_t size)
{
	struct superseder_search search = { .submitted = alert };
	struct store_row first = { 0 };
	struct xba_error err = { 0 };
	int64_t after = INT64_MAX;

	if (alert->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE && alert->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL)
		return 0;
	/* Only what was stored after the oldest version named can supersede one of them: by row order, which no clock
	 * step changes.  Only updates and cancels are read, however many acknowledgements were sent since. */
	for (size_t i = 0; i < alert->n_references; i++) {
		if (alert->references[i] == NULL ||
		    store_outgoing_get(agent->store, alert->references[i], &first, &err) != 0)
			continue;
		if (first.id < after)
			after = first.id;
		store_row_clear(&first);
	}
	if (after == INT64_MAX)
		return 0; /* none of them is here (pruned): the broker judges */
	if (store_outgoing_later_versions(agent->store, after, superseder_row, &search, &err) < 0) {
		char quoted[600];

		log_warnx("event=store.read_failed op=superseders error=%s", log_quote(quoted, sizeof(quoted), err.msg));
		return 0;
	}
	if (search.found_id[0] == '\0')
		return 0;
	*field = "references";
	snprintf(message, size, "%s was %s from here by %s after this command looked (another officer at the same "
	    "time?): nothing was queued. Look at it (xba history --outgoing --id %s), then run the command again if it "
	    "is still needed: it then names %s", search.replaced_id,
	    search.found_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL ? "withdrawn" : "replaced", search.found_id,
	    search.found_id, search.found_id);
	return XBA__V1__ERROR_CODE__INVALID_ALERT;
}

/*
 * Check, validate, seal and commit a completed submission; the reply is the caller's.  0, or a wire code with
 * *field and message saying why (JOURNAL_UNAVAILABLE when the store cannot be written).  Nothing refused here is
 * queued or kept.
 */
static Xba__V1__ErrorCode
seal_and_queue(struct agent *agent, const Xba__V1__Alert *alert, int64_t now_ms, const char **field,
    char *field_buf, size_t field_size, char *message, size_t size)
{
	struct store_alert_fields f;
	struct xba_error err = { 0 };
	uint8_t *envelope = NULL;
	size_t len = 0;
	Xba__V1__ErrorCode code;
	int rc;

	if ((code = check_rights(agent, alert, now_ms, field, message, size)) != 0 ||
	    (code = check_not_superseded(agent, alert, field, message, size)) != 0)
		return code;
	if ((rc = alert_check_submission(alert, &err)) != 0 ||
	    (rc = envelope_seal(&agent->signer, alert, &envelope, &len, &err)) != 0) {
		size_t skip;

		/* SubmitReply carries the field apart: the message says what is wrong with it, without repeating it
		 * ("info[0].headline" + "200 bytes, at most 160"). */
		agent_error_field(err.msg, field_buf, field_size);
		*field = field_buf;
		skip = field_buf[0] != '\0' ? strlen(field_buf) + 1 : 0;
		while (err.msg[skip] == ' ')
			skip++;
		snprintf(message, size, "%s", err.msg + skip);
		return frame_error_code_for_alert(rc);
	}
	store_fields_from_alert(alert, &f);
	/* Recorded in the region's time while this machine's clock is known to be off, as the alert is signed. */
	rc = store_outbox_add(agent->store, &f, envelope, len, uplink_signing_now(agent->uplink), NULL, &err);
	free(envelope);
	if (rc == 0)
		agent_store_ok(agent);
	if (rc == XBA_EDUPLICATE) {
		*field = "id";
		snprintf(message, size, "%s; give the new alert a new id", err.msg);
		return XBA__V1__ERROR_CODE__DUPLICATE;
	}
	if (rc != 0) {
		char quoted[600];

		log_warnx("event=store.write_failed op=outbox error=%s", log_quote(quoted, sizeof(quoted), err.msg));
		agent_store_failed(agent, "outbox", &err);
		*field = "";
		snprintf(message, size, "the agent could not store the alert durably, so it was NOT queued (%.400s); "
		    "retry later and tell the focal point", err.msg);
		return XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE;
	}
	return 0;
}

/*
 * The name an officer gives (--author, --officer) is their word; over the LAN the agent knows which listed key is
 * talking, and that name goes into what is signed beside the given one ("Cdt. Garba (key amina.issoufou)"), so that
 * one officer's key cannot sign as another officer.  The local socket's users are the host's own: as given.
 * buf holds ALERT_AUTHOR_MAX + 1 bytes.
 */
static const char *
officer_name_for(const struct local_peer *peer, const char *given, char buf[ALERT_AUTHOR_MAX + 1])
{
	const char *key = peer->socket == LOCAL_LAN && strncmp(peer->who, "lan:", 4) == 0 ? peer->who + 4 : NULL;

	if (key == NULL || strcmp(given, key) == 0)
		return given;
	if (snprintf(buf, ALERT_AUTHOR_MAX + 1, "%s (key %s)", given, key) <= ALERT_AUTHOR_MAX)
		return buf;
	return key; /* the given name is too long to keep beside it */
}

static void
handle_submit(struct agent *agent, const struct local_peer *peer, uint64_t ref, Xba__V1__SubmitRequest *req)
{
	Xba__V1__Alert *a = req->alert;
	char *saved_id, *saved_origin, *saved_author, id[XBA_UUID_LEN + 1] = "", message[600], field_buf[128];
	char author_buf[ALERT_AUTHOR_MAX + 1];
	const char *field = NULL;
	int64_t saved_sent, saved_expires, now_ms = uplink_signing_now(agent->uplink);
	Xba__V1__ErrorCode code;

	if (a == NULL) {
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__MALFORMED_FRAME, "submit.alert",
		    "submit.alert: missing (a submit request carries the alert to sign and send)");
		return;
	}
	if (a->origin != NULL && a->origin[0] != '\0' && strcmp(a->origin, agent->config->node_id) != 0) {
		char quoted[80];

		reply_submit(agent, peer, ref, XBA__V1__ERROR_CODE__WRONG_SIGNER, a->id, "origin",
		    "%s: this agent signs for %s only (leave origin empty)",
		    log_quote(quoted, sizeof(quoted), a->origin), agent->config->node_id);
		return;
	}
	if (a->author == NULL || a->author[0] == '\0') {
		reply_submit(agent, peer, ref, XBA__V1__ERROR_CODE__INVALID_ALERT, a->id, "author",
		    "missing (the officer who wrote the alert)");
		return;
	}
	if (a->id == NULL || a->id[0] == '\0') {
		if (syntax_uuid_new(id) != 0) {
			local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__INTERNAL, "id",
			    "the agent has no randomness for a new alert id; nothing was queued");
			return;
		}
	} else if (!syntax_uuid_valid(a->id)) {
		reply_submit(agent, peer, ref, XBA__V1__ERROR_CODE__INVALID_ALERT, "", "id",
		    "not a lower-case UUID (leave it empty and the agent makes one)");
		return;
	} else {
		snprintf(id, sizeof(id), "%s", a->id);
	}
	if (req->expires_in_ms < 0 || req->expires_in_ms > (int64_t)ALERTYAML_MAX_DURATION_DAYS * 86400000) {
		reply_submit(agent, peer, ref, XBA__V1__ERROR_CODE__INVALID_ALERT, id, "expires",
		    "a duration of %lld ms: at most %d days", (long long)req->expires_in_ms, ALERTYAML_MAX_DURATION_DAYS);
		return;
	}
	/* Complete the officer's alert in place; the frame's own strings go back before protobuf-c frees them. */
	saved_id = a->id;
	saved_origin = a->origin;
	saved_sent = a->sent_ms;
	saved_author = a->author;
	a->id = id;
	a->origin = agent->config->node_id;
	a->author = (char *)officer_name_for(peer, a->author, author_buf);
	if (a->sent_ms == 0)
		a->sent_ms = now_ms;
	saved_expires = a->expires_ms;
	if (req->expires_in_ms > 0 && a->sent_ms <= INT64_MAX - req->expires_in_ms)
		a->expires_ms = a->sent_ms + req->expires_in_ms;
	code = seal_and_queue(agent, a, now_ms, &field, field_buf, sizeof(field_buf), message, sizeof(message));
	if (code == 0) {
		char author[300];

		log_info("event=alert.queued alert=%s author=%s category=%s severity=%s tlp=%s emergency=%s peer=%s", id,
		    log_quote(author, sizeof(author), a->author),
		    a->category ? alert_enum_name(ALERT_ENUM_CATEGORY, a->category) : "-",
		    a->severity ? alert_enum_name(ALERT_ENUM_SEVERITY, a->severity) : "-",
		    alert_enum_name(ALERT_ENUM_TLP, a->tlp), a->emergency ? "true" : "false", peer->who_log);
	}
	a->id = saved_id;
	a->origin = saved_origin;
	a->sent_ms = saved_sent;
	a->expires_ms = saved_expires;
	a->author = saved_author;
	if (code != 0) {
		if (code == XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE)
			local_send_error(agent, peer, ref, code, "", "%s", message);
		else
			reply_submit(agent, peer, ref, code, id, field, "%s", message);
		return;
	}
	remember_submitter(agent->local, peer, id);
	reply_submit(agent, peer, ref, XBA__V1__ERROR_CODE__OK, id, "", "validated, signed and queued");
	uplink_outbox_changed(agent);
}

static void
reply_ack(struct agent *agent, const struct local_peer *peer, uint64_t ref, Xba__V1__ErrorCode result,
    const char *ack_id, const char *message)
{
	Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;
	Xba__V1__AckReply reply = XBA__V1__ACK_REPLY__INIT;

	reply.result = result;
	reply.ack_alert_id = (char *)(ack_id != NULL ? ack_id : "");
	reply.message = (char *)message;
	frame.ref = ref;
	frame.body_case = XBA__V1__LOCAL_FRAME__BODY_ACK_REPLY;
	frame.ack_reply = &reply;
	local_send(agent, peer, &frame);
}

/* An officer acknowledges an inbox alert: a signed CAP-style ACK alert to its origin, queued like any submission,
 * and the inbox row marked, in one transaction. */
static void
handle_ack(struct agent *agent, const struct local_peer *peer, uint64_t ref, const Xba__V1__AckRequest *req)
{
	Xba__V1__Alert ack = XBA__V1__ALERT__INIT, *original = NULL;
	struct store_row row = { 0 };
	struct store_alert_fields f;
	struct xba_error err = { 0 };
	char ack_id[XBA_UUID_LEN + 1], message[700], by[132], *refs[1], *addressees[1], officer_buf[ALERT_AUTHOR_MAX + 1];
	const char *officer;
	uint8_t *envelope = NULL;
	size_t len = 0;
	int rc;

	if (req->alert_id == NULL || !syntax_uuid_valid(req->alert_id)) {
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__MALFORMED_FRAME, "ack.alert_id",
		    "ack.alert_id: not an alert id (a lower-case UUID)");
		return;
	}
	if (req->officer == NULL || req->officer[0] == '\0' || strlen(req->officer) > ALERT_AUTHOR_MAX) {
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__MALFORMED_FRAME, "ack.officer",
		    "ack.officer: the acknowledging officer's name is required (1..%d bytes)", ALERT_AUTHOR_MAX);
		return;
	}
	officer = officer_name_for(peer, req->officer, officer_buf);
	if (req->note != NULL && strlen(req->note) > ALERT_NOTE_MAX) {
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__MALFORMED_FRAME, "ack.note",
		    "ack.note: %zu bytes, at most %d", strlen(req->note), ALERT_NOTE_MAX);
		return;
	}
	rc = store_inbox_get(agent->store, req->alert_id, &row, &err);
	if (rc == XBA_ENOTFOUND) {
		/* This country's own alert is in no inbox here: its recipients acknowledge it, not its sender. */
		bool own = store_outgoing_get(agent->store, req->alert_id, &row, &err) == 0;

		if (own) {
			store_row_clear(&row);
			snprintf(message, sizeof(message), "alert %s was sent by this country: its recipients acknowledge it "
			    "(xba track %s shows who did)", req->alert_id, req->alert_id);
		} else {
			snprintf(message, sizeof(message), "no alert %s in this country's inbox (xba history shows what is "
			    "there)", req->alert_id);
		}
		reply_ack(agent, peer, ref, XBA__V1__ERROR_CODE__UNKNOWN_ALERT, "", message);
		return;
	}
	if (rc != 0) {
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE, "", "cannot read the inbox: %s",
		    err.msg);
		return;
	}
	if (row.acknowledged) {
		snprintf(message, sizeof(message), "alert %s was already acknowledged by %s", req->alert_id,
		    row.acknowledged_by);
		reply_ack(agent, peer, ref, XBA__V1__ERROR_CODE__DUPLICATE, "", message);
		store_row_clear(&row);
		return;
	}
	/* The broker refuses an ACK to a node its region.yaml no longer lists, for good, long after the officer has
	 * gone (INVALID_ALERT addressees).  Nothing is recorded: "acknowledged" here means the origin is being told,
	 * and it cannot be; the inbox says why instead of asking for an acknowledgement (entry_init). */
	if (directory_node(agent->dir, row.origin) == NULL) {
		log_info("event=ack.refused alert=%s origin=%s reason=origin-not-in-region peer=%s", req->alert_id,
		    row.origin, peer->who_log);
		snprintf(message, sizeof(message), "alert %s came from %s, which is no longer a node of this region "
		    "(removed or suspended by the working group: this agent's region.yaml does not list it). The broker "
		    "would refuse an acknowledgement to it, so nothing was sent, and the alert stays unacknowledged here; "
		    "act on it as its text says, and ask the secretariat if %s must be told", req->alert_id, row.origin,
		    row.origin);
		reply_ack(agent, peer, ref, XBA__V1__ERROR_CODE__NOT_PERMITTED, "", message);
		store_row_clear(&row);
		return;
	}
	if (syntax_uuid_new(ack_id) != 0) {
		store_row_clear(&row);
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__INTERNAL, "", "no randomness for an alert id");
		return;
	}
	/* docs/protocol.md §2.6: msg_type ACK, references = [id], addressees = [its origin], same TLP and status. */
	refs[0] = (char *)req->alert_id;
	addressees[0] = row.origin;
	ack.id = ack_id;
	ack.origin = agent->config->node_id;
	ack.author = (char *)officer;
	ack.sent_ms = uplink_signing_now(agent->uplink);
	ack.status = (Xba__V1__Status)row.status;
	ack.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ACK;
	ack.references = refs;
	ack.n_references = 1;
	ack.addressees = addressees;
	ack.n_addressees = 1;
	/* An observer may publish only its listed categories, an ACK included (broker/publish.c): the category is
	 * copied only where it does not turn the acknowledgement into a refusal. */
	if (agent->node->role != NODE_ROLE_OBSERVER || row.category == 0 ||
	    (agent->node->publish_categories & (1u << row.category)) != 0)
		ack.category = (Xba__V1__Category)row.category;
	ack.severity = (Xba__V1__Severity)row.severity;
	ack.tlp = (Xba__V1__Tlp)row.tlp;
	ack.note = (char *)(req->note != NULL ? req->note : "");
	/* What the broker would refuse for good is said now, as for a submission: a signing key that has ended (a
	 * suspended country's, an expired or revoked one) would have the officer told "acknowledged" while the origin
	 * never hears of it.  Nothing is recorded, so the alert stays unacknowledged here. */
	{
		const char *field = "";
		char why[360];
		Xba__V1__ErrorCode code = check_rights(agent, &ack, ack.sent_ms, &field, why, sizeof(why));

		if (code != 0) {
			log_info("event=ack.refused alert=%s origin=%s reason=%s peer=%s", req->alert_id, row.origin,
			    frame_error_code_name(code), peer->who_log);
			snprintf(message, sizeof(message), "the broker would refuse an acknowledgement from here (%s: %.300s), so "
			    "nothing was sent to %s and the alert stays unacknowledged here; tell %s another way if it must "
			    "know", frame_error_code_name(code), why, row.origin, row.origin);
			reply_ack(agent, peer, ref, code, field, message);
			store_row_clear(&row);
			return;
		}
	}
	if ((rc = envelope_seal(&agent->signer, &ack, &envelope, &len, &err)) != 0) {
		snprintf(message, sizeof(message), "the acknowledgement does not validate: %.500s", err.msg);
		reply_ack(agent, peer, ref, frame_error_code_for_alert(rc), "", message);
		store_row_clear(&row);
		return;
	}
	store_fields_from_alert(&ack, &f);
	rc = store_ack(agent->store, req->alert_id, officer, ack.sent_ms, &f, envelope, len, NULL, by, &err);
	free(envelope);
	if (rc == XBA_ENOTFOUND || rc == XBA_EDUPLICATE) {
		snprintf(message, sizeof(message), "%s%s%s", err.msg, by[0] ? " by " : "", by);
		reply_ack(agent, peer, ref, rc == XBA_ENOTFOUND ? XBA__V1__ERROR_CODE__UNKNOWN_ALERT
								 : XBA__V1__ERROR_CODE__DUPLICATE, "", message);
		store_row_clear(&row);
		return;
	}
	if (rc != 0) {
		char quoted[600];

		log_warnx("event=store.write_failed op=ack error=%s", log_quote(quoted, sizeof(quoted), err.msg));
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE, "",
		    "the agent could not store the acknowledgement durably, so nothing was acknowledged (%s); retry later",
		    err.msg);
		store_row_clear(&row);
		return;
	}
	{
		char quoted_officer[300];

		log_info("event=alert.acknowledged alert=%s origin=%s officer=%s ack_alert=%s peer=%s", req->alert_id,
		    row.origin, log_quote(quoted_officer, sizeof(quoted_officer), officer), ack_id, peer->who_log);
	}
	remember_submitter(agent->local, peer, ack_id);
	reply_ack(agent, peer, ref, XBA__V1__ERROR_CODE__OK, ack_id, "signed and queued to the alert's origin");
	/* Watches recalling an unacknowledged emergency learn that it is acknowledged here. */
	if (row.emergency && (original = decode_row(&row)) != NULL) {
		row.acknowledged = true;
		snprintf(row.acknowledged_by, sizeof(row.acknowledged_by), "%s", officer);
		row.acknowledged_ms = ack.sent_ms;
		push_entry(agent, &row, original, true);
		alert_free(original);
	}
	store_row_clear(&row);
	uplink_outbox_changed(agent);
}

/* The strings an AgentStatusReply points at, kept beside it until it is sent. */
struct status_text {
	char key_fp[64];
	char key_problem[XBA_ERROR_MSG_MAX];
};

static void
fill_key_status(struct agent *agent, Xba__V1__AgentStatusReply *reply, struct status_text *text)
{
	struct xba_error err = { 0 };
	int64_t until;
	enum key_health health = agent_key_health(agent, &until, &err);

	/* An admin node's key file signs nothing (agent_main.c check_identity): no key is shown. */
	reply->signing_key = agent->node->role == NODE_ROLE_ADMIN ? ""
	    : keys_fingerprint(agent->signer.key_id, text->key_fp, sizeof(text->key_fp));
	reply->signing_key_until_ms = until == XBA_TIME_NEVER ? 0 : until;
	reply->signing_key_expiring = health == KEY_HEALTH_EXPIRING;
	snprintf(text->key_problem, sizeof(text->key_problem), "%s", health == KEY_HEALTH_UNUSABLE ? err.msg : "");
	reply->signing_key_problem = text->key_problem;
}

/* The store's last write failure, for `xba status` (agent.h). */
static void
fill_store_status(struct agent *agent, Xba__V1__AgentStatusReply *reply)
{
	if (agent->store_problem.message[0] == '\0' ||
	    clock_mono_ms() - agent->store_problem.last_mono_ms > STORE_PROBLEM_SHOWN_MS ||
	    (agent->store_problem.busy &&
	     agent->store_problem.last_mono_ms - agent->store_problem.since_mono_ms < STORE_BUSY_SHOWN_MS))
		return;
	reply->store_problem = agent->store_problem.message;
	reply->store_problem_since_ms = agent->store_problem.since_ms;
	reply->store_problem_locked = agent->store_problem.busy;
}

static void
fill_status(struct agent *agent, Xba__V1__AgentStatusReply *reply, struct status_text *text, bool *ok, char *message,
    size_t size)
{
	struct store_stats stats;
	struct xba_error err = { 0 };

	xba__v1__agent_status_reply__init(reply);
	reply->node_id = (char *)agent->config->node_id;
	uplink_status(agent->uplink, reply);
	fill_key_status(agent, reply, text);
	fill_store_status(agent, reply);
	*ok = store_stats(agent->store, &stats, &err) == 0;
	if (!*ok) {
		snprintf(message, size, "cannot read %s", err.msg);
		return;
	}
	reply->outbox_depth = stats.outbox_depth;
	reply->inbox_count = stats.inbox_count;
	reply->unacknowledged = stats.unacknowledged;
	reply->last_delivery_ms = stats.last_delivery_ms;
	reply->quarantined = stats.quarantined;
	reply->acks_refused = stats.acks_refused;
	if (store_count_alerts_refused_since(agent->store, uplink_signing_now(agent->uplink) - 7 * 86400LL * 1000,
	    &reply->alerts_refused_recent, &err) != 0) {
		*ok = false;
		snprintf(message, size, "cannot read %s", err.msg);
	}
}

void
local_push_status(struct agent *agent)
{
	struct local *local = agent->local;
	Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;
	Xba__V1__AgentStatusReply status;
	struct status_text text;
	char message[600];
	bool ok;

	if (local == NULL || local->n_subs == 0)
		return;
	fill_status(agent, &status, &text, &ok, message, sizeof(message));
	frame.body_case = XBA__V1__LOCAL_FRAME__BODY_STATUS_REPLY;
	frame.status_reply = &status;
	for (size_t i = local->n_subs; i-- > 0;) {
		struct local_peer peer;

		if (send_frame(local, &local->subs[i].peer, &frame) == 0)
			continue;
		peer = local->subs[i].peer;
		log_info("event=local.unsubscribed peer=%s reason=send-failed", peer.who_log);
		forget_peer(agent, &peer);
	}
}

static void
handle_status(struct agent *agent, const struct local_peer *peer, uint64_t ref,
    const Xba__V1__AgentStatusRequest *req)
{
	Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;
	Xba__V1__AgentStatusReply reply;
	struct status_text text;
	char message[600];
	bool ok;

	if (req != NULL && req->brief) {
		xba__v1__agent_status_reply__init(&reply);
		reply.node_id = (char *)agent->config->node_id;
		uplink_status(agent->uplink, &reply);
		fill_key_status(agent, &reply, &text);
		fill_store_status(agent, &reply);
		ok = true;
	} else {
		fill_status(agent, &reply, &text, &ok, message, sizeof(message));
	}
	if (!ok) {
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__INTERNAL, "", "%s", message);
		return;
	}
	reply.watching = 2;
	for (size_t i = 0; i < agent->local->n_subs; i++)
		if (peer_equal(&agent->local->subs[i].peer, peer))
			reply.watching = 1;
	frame.ref = ref;
	frame.body_case = XBA__V1__LOCAL_FRAME__BODY_STATUS_REPLY;
	frame.status_reply = &reply;
	local_send(agent, peer, &frame);
}

/*
 * Subscribe: the reply (same ref) is an AgentStatusReply confirming the subscription, then every matching stored
 * alert since filter.since_ms, oldest first (at most the newest LOCAL_REPLAY_MAX), then live alerts as they are
 * stored, all as alert_event frames with ref 0.  A connection subscribing again replaces its filter.
 */
/* Send rows held newest first as alert events, oldest first; false when the peer cannot take them. */
static bool
replay_rows(struct agent *agent, const struct local_peer *peer, const struct held_rows *rows)
{
	for (size_t i = rows->n; i-- > 0;) {
		Xba__V1__LocalFrame ev = XBA__V1__LOCAL_FRAME__INIT;
		Xba__V1__InboxEntry entry;

		entry_init(&entry, &rows->v[i].row, rows->v[i].alert, agent->dir);
		ev.body_case = XBA__V1__LOCAL_FRAME__BODY_ALERT_EVENT;
		ev.alert_event = &entry;
		if (send_frame(agent->local, peer, &ev) != 0)
			return false;
	}
	return true;
}

/*
 * Make room for a new watch from peer when the places it may take are all taken: the watch whose client has been
 * silent longest gives its place, if that is longer than LOCAL_WATCH_SILENT_MS (a frozen terminal, a laptop closed
 * on a watch).  A LAN watch may take only a LAN watch's place.  Returns true when a place is free.
 */
static bool
make_room_for_watch(struct agent *agent, const struct local_peer *peer)
{
	struct local *local = agent->local;
	size_t lan = 0, oldest;
	int64_t now = clock_mono_ms();
	bool lan_full = false;

	/* A watch killed without a word keeps its place until something is pushed to it: push now, which forgets every
	 * watch whose connection is gone (ROUTER_MANDATORY), before anyone's place is taken or refused. */
	for (int pass = 0; pass < 2; pass++) {
		lan = 0;
		for (size_t i = 0; i < local->n_subs; i++)
			lan += local->subs[i].peer.socket == LOCAL_LAN;
		lan_full = peer->socket == LOCAL_LAN && lan >= LOCAL_MAX_SUBSCRIBERS - LOCAL_SUBS_KEPT_FOR_IPC;
		if (local->n_subs < LOCAL_MAX_SUBSCRIBERS && !lan_full)
			return true;
		if (pass == 0)
			local_push_status(agent);
	}
	oldest = local->n_subs; /* none yet (after the push above, which may have shortened the list) */
	for (size_t i = 0; i < local->n_subs; i++) {
		if (lan_full && local->subs[i].peer.socket != LOCAL_LAN)
			continue;
		if (oldest == local->n_subs || local->subs[i].heard_mono < local->subs[oldest].heard_mono)
			oldest = i;
	}
	if (oldest == local->n_subs || now - local->subs[oldest].heard_mono < LOCAL_WATCH_SILENT_MS)
		return false;
	log_warnx("event=local.unsubscribed peer=%s reason=silent silent_s=%lld note=\"its client said nothing for that "
		  "long (frozen or gone): its place goes to a new watch; if it wakes, it subscribes again\"",
	    local->subs[oldest].peer.who_log, (long long)((now - local->subs[oldest].heard_mono) / 1000));
	remove_subscriber(local, oldest);
	return true;
}

static void
handle_subscribe(struct agent *agent, const struct local_peer *peer, uint64_t ref, const Xba__V1__SubscribeRequest *req)
{
	struct local *local = agent->local;
	struct subscriber *sub = NULL;
	struct held_rows held = { 0 }, recall = { 0 };
	struct store_filter sf;
	struct xba_error err = { 0 };
	Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;
	Xba__V1__AgentStatusReply status;
	struct status_text text;
	Xba__V1__AlertFilter *copy = NULL;
	int categories[LOCAL_FILTER_LIST_MAX];
	char message[600];
	bool ok;
	int rc;

	if (!filter_valid(agent, peer, ref, "subscribe", req->filter))
		return;
	for (size_t i = 0; i < local->n_subs; i++)
		if (peer_equal(&local->subs[i].peer, peer))
			sub = &local->subs[i];
	if (sub == NULL && peer->socket == LOCAL_LAN) {
		size_t mine = 0;

		for (int pass = 0; pass < 2; pass++) {
			mine = 0;
			for (size_t i = 0; i < local->n_subs; i++)
				mine += local->subs[i].peer.socket == LOCAL_LAN &&
				    memcmp(local->subs[i].peer.officer_key, peer->officer_key, XBA_CURVE_KEY_LEN) == 0;
			/* Connections a flaky LAN dropped keep their watches until a push finds them gone. */
			if (pass == 0 && mine >= LOCAL_MAX_SUBS_PER_OFFICER)
				local_push_status(agent);
		}
		if (mine >= LOCAL_MAX_SUBS_PER_OFFICER) {
			local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__RATE_LIMITED, "",
			    "%s already has %d watches open at this agent; close one and try again", peer->who,
			    LOCAL_MAX_SUBS_PER_OFFICER);
			log_warnx("event=local.subscribe_refused peer=%s reason=too-many-for-officer max=%d", peer->who_log,
			    LOCAL_MAX_SUBS_PER_OFFICER);
			return;
		}
	}
	if (sub == NULL && !make_room_for_watch(agent, peer)) {
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__RATE_LIMITED, "",
		    "this agent already serves %d watches%s; close one and try again", peer->socket == LOCAL_LAN
			? LOCAL_MAX_SUBSCRIBERS - LOCAL_SUBS_KEPT_FOR_IPC : LOCAL_MAX_SUBSCRIBERS,
		    peer->socket == LOCAL_LAN ? " over the LAN (the rest are kept for its own machine)" : "");
		log_warnx("event=local.subscribe_refused peer=%s reason=too-many-subscribers max=%d", peer->who_log,
		    peer->socket == LOCAL_LAN ? LOCAL_MAX_SUBSCRIBERS - LOCAL_SUBS_KEPT_FOR_IPC : LOCAL_MAX_SUBSCRIBERS);
		return;
	}
	if (req->filter != NULL) {
		/* A private copy: the request frame is freed when this handler returns. */
		size_t len = xba__v1__alert_filter__get_packed_size(req->filter);
		uint8_t *buf = malloc(len > 0 ? len : 1);

		if (buf != NULL) {
			xba__v1__alert_filter__pack(req->filter, buf);
			copy = xba__v1__alert_filter__unpack(NULL, len, buf);
			free(buf);
		}
		if (copy == NULL) {
			local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__INTERNAL, "", "out of memory");
			return;
		}
	}
	store_filter_from(req->filter, &sf, categories);
	held.budget = LOCAL_REPLAY_BUDGET;
	rc = store_inbox_query(agent->store, &sf, true, LOCAL_REPLAY_MAX, hold_row, &held, &err);
	if (rc < 0) {
		held_rows_free(&held);
		if (copy != NULL)
			xba__v1__alert_filter__free_unpacked(copy, NULL);
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE, "",
		    "cannot read the inbox: %s", rc == XBA_ENOMEM ? "out of memory" : err.msg);
		return;
	}
	if (sub == NULL) {
		sub = &local->subs[local->n_subs++];
		sub->peer = *peer;
		sub->heard_mono = clock_mono_ms();
	} else if (sub->filter != NULL) {
		xba__v1__alert_filter__free_unpacked(sub->filter, NULL);
	}
	sub->filter = copy;
	sub->receipts = req->receipts;
	log_info("event=local.subscribed peer=%s receipts=%s replay=%zu subscribers=%zu", peer->who_log,
	    req->receipts ? "true" : "false", held.n, local->n_subs);

	fill_status(agent, &status, &text, &ok, message, sizeof(message));
	frame.ref = ref;
	frame.body_case = XBA__V1__LOCAL_FRAME__BODY_STATUS_REPLY;
	frame.status_reply = &status;
	if (send_frame(local, peer, &frame) != 0) {
		held_rows_free(&held);
		forget_peer(agent, peer);
		return;
	}
	/*
	 * The replay keeps the newest alerts, but an unacknowledged emergency older than all of them must still reach
	 * the new watch, which recalls it until someone acknowledges it: after an outage the broker delivers
	 * emergencies first, so they are the oldest rows of the backlog, and the next shift's watch would otherwise
	 * never name them.  They go first, oldest first.
	 */
	if ((held.n == LOCAL_REPLAY_MAX || held.truncated) && held.n > 0) {
		struct store_filter older = sf;

		older.unacknowledged_only = older.emergencies_only = true;
		older.before_id = held.v[held.n - 1].row.id;
		recall.budget = LOCAL_REPLAY_BUDGET;
		if (store_inbox_query(agent->store, &older, true, LOCAL_RECALL_MAX, hold_row, &recall, &err) < 0) {
			char quoted[600];

			log_warnx("event=local.recall_failed peer=%s error=%s", peer->who_log,
			    log_quote(quoted, sizeof(quoted), err.msg));
		}
	}
	if (!replay_rows(agent, peer, &recall) || !replay_rows(agent, peer, &held)) {
		log_warnx("event=local.unsubscribed peer=%s reason=replay-failed", peer->who_log);
		forget_peer(agent, peer);
	} else if (recall.n > 0) {
		local_send_error(agent, peer, 0, XBA__V1__ERROR_CODE__OK, "",
		    "only the newest %zu matching alerts were replayed, after the %zu older unacknowledged emergencies; "
		    "`xba history` shows the rest", held.n, recall.n);
	} else if (held.n == LOCAL_REPLAY_MAX || held.truncated) {
		local_send_error(agent, peer, 0, XBA__V1__ERROR_CODE__OK, "",
		    "only the newest %zu matching alerts were replayed; `xba history` shows older ones", held.n);
	}
	held_rows_free(&recall);
	held_rows_free(&held);
}

static int
held_time_cmp_desc(const struct held_row *x, const struct held_row *y)
{
	if (x->time_ms != y->time_ms)
		return x->time_ms < y->time_ms ? 1 : -1;
	return x->row.id < y->row.id ? 1 : x->row.id > y->row.id ? -1 : 0;
}

/* One list of the history (the inbox, or what this node sent), newest first from the request's cursor: one row
 * more than the page, whose presence is what says that more match. */
static int
history_page(struct agent *agent, bool outgoing, const struct store_filter *sf, size_t limit, struct held_rows *h,
    struct xba_error *err)
{
	h->budget = LOCAL_REPLY_BUDGET;
	return outgoing ? store_outgoing_query(agent->store, sf, true, limit + 1, hold_row, h, err)
			: store_inbox_query(agent->store, sf, true, limit + 1, hold_row, h, err);
}

/* HistoryRequest.alert_id: that alert from one list, by its index, whatever the other filters say. */
static int
history_by_id(struct agent *agent, bool outgoing, const char *alert_id, struct held_rows *h, struct xba_error *err)
{
	struct store_row row;
	int rc = outgoing ? store_outgoing_get(agent->store, alert_id, &row, err)
			  : store_inbox_get(agent->store, alert_id, &row, err);

	if (rc == XBA_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	rc = hold_row(h, &row);
	store_row_clear(&row);
	return rc;
}

/*
 * `xba history`: the inbox (and with filter.include_outgoing what this node sent), newest first, a page at a time.
 * Each list is read from its own cursor and the two are merged by time; a reply holds at most LOCAL_HISTORY_MAX
 * entries and LOCAL_REPLY_BUDGET bytes, and says when more match, with the cursors to ask for them: a caller that
 * wants more than one reply holds pages on, so that a long history is never cut without anyone being told.
 */
static void
handle_history(struct agent *agent, const struct local_peer *peer, uint64_t ref, const Xba__V1__HistoryRequest *req)
{
	Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;
	Xba__V1__HistoryReply reply = XBA__V1__HISTORY_REPLY__INIT;
	Xba__V1__InboxEntry *entries = NULL, **list = NULL;
	struct held_rows in = { 0 }, out = { 0 };
	struct held_row **order = NULL;
	struct store_filter sf;
	struct xba_error err = { 0 };
	int categories[LOCAL_FILTER_LIST_MAX];
	size_t limit = req->limit == 0 ? LOCAL_HISTORY_DEFAULT : req->limit, n = 0, i = 0, o = 0, used = 0;
	bool outgoing = req->filter != NULL && req->filter->include_outgoing;
	bool by_id = req->alert_id != NULL && req->alert_id[0] != '\0';
	int rc;

	if (!filter_valid(agent, peer, ref, "history", req->filter))
		return;
	if (limit > LOCAL_HISTORY_MAX)
		limit = LOCAL_HISTORY_MAX;
	store_filter_from(req->filter, &sf, categories);
	if (by_id) {
		rc = history_by_id(agent, false, req->alert_id, &in, &err);
		if (rc >= 0 && outgoing)
			rc = history_by_id(agent, true, req->alert_id, &out, &err);
	} else {
		sf.before_id = req->inbox_before;
		rc = history_page(agent, false, &sf, limit, &in, &err);
		sf.before_id = req->outgoing_before;
		if (rc >= 0 && outgoing)
			rc = history_page(agent, true, &sf, limit, &out, &err);
	}
	if (rc >= 0 && in.n + out.n > 0 && (order = calloc(in.n + out.n, sizeof(*order))) == NULL)
		rc = xba_error_set(&err, XBA_ENOMEM, "store %s: history: out of memory", store_path(agent->store));
	if (rc < 0) {
		held_rows_free(&in);
		held_rows_free(&out);
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE, "", "cannot read %s",
		    err.msg);
		return;
	}
	/* Merged newest first, each list taken in its own order, so that what is left of each is one page on. */
	while (n < limit && (i < in.n || o < out.n)) {
		bool from_in = o == out.n || (i < in.n && held_time_cmp_desc(&in.v[i], &out.v[o]) <= 0);
		struct held_row *r = from_in ? &in.v[i] : &out.v[o];
		size_t cost = r->row.envelope_len * 2 + 512;

		if (n > 0 && used + cost > LOCAL_REPLY_BUDGET)
			break;
		used += cost;
		order[n++] = r;
		if (from_in)
			i++;
		else
			o++;
	}
	if (n > 0 && ((entries = calloc(n, sizeof(*entries))) == NULL || (list = calloc(n, sizeof(*list))) == NULL)) {
		free(entries);
		free(order);
		held_rows_free(&in);
		held_rows_free(&out);
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__INTERNAL, "", "out of memory");
		return;
	}
	for (size_t k = 0; k < n; k++) {
		entry_init(&entries[k], &order[k]->row, order[k]->alert, agent->dir);
		list[k] = &entries[k];
	}
	reply.entries = list;
	reply.n_entries = n;
	reply.more = !by_id && (i < in.n || o < out.n || in.truncated || out.truncated);
	reply.next_inbox_before = i > 0 ? in.v[i - 1].row.id : req->inbox_before;
	reply.next_outgoing_before = o > 0 ? out.v[o - 1].row.id : req->outgoing_before;
	frame.ref = ref;
	frame.body_case = XBA__V1__LOCAL_FRAME__BODY_HISTORY_REPLY;
	frame.history_reply = &reply;
	local_send(agent, peer, &frame);
	free(entries);
	free(list);
	free(order);
	held_rows_free(&in);
	held_rows_free(&out);
}

static void
handle_track(struct agent *agent, const struct local_peer *peer, uint64_t ref, const Xba__V1__TrackRequest *req)
{
	struct xba_error err = { 0 };

	if (req->alert_id == NULL || !syntax_uuid_valid(req->alert_id)) {
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__MALFORMED_FRAME, "track.alert_id",
		    "track.alert_id: not an alert id (a lower-case UUID)");
		return;
	}
	if (uplink_track(agent, peer, ref, req->alert_id, &err) != 0)
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__NOT_READY, "", "%s", err.msg);
}

/* `xba status --region`: the broker's view of every node (for an admin node; of this node for the others). */
static void
handle_region_status(struct agent *agent, const struct local_peer *peer, uint64_t ref)
{
	struct xba_error err = { 0 };

	if (uplink_region_status(agent, peer, ref, &err) != 0)
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__NOT_READY, "", "%s", err.msg);
}

/* Quarantine listing: the entries copied out of the store walk, newest first. */
struct quarantine_text {
	char reason[520], alert_id[40], rule[72]; /* as in struct store_quarantined; the reply points into these */
	char claimed_origin[XBA_NODE_ID_MAX + 1];
};

struct quarantine_list {
	Xba__V1__QuarantineEntry *entries;
	struct quarantine_text *text;
	size_t n, cap;
};

static int
hold_quarantined(void *ctx, const struct store_quarantined *q)
{
	struct quarantine_list *l = ctx;
	Xba__V1__QuarantineEntry *e;

	if (l->n == l->cap)
		return 1; /* cannot happen: the store returns at most cap */
	e = &l->entries[l->n];
	xba__v1__quarantine_entry__init(e);
	e->seq = q->seq;
	e->received_ms = q->received_ms;
	e->code = (Xba__V1__ErrorCode)q->code;
	snprintf(l->text[l->n].reason, sizeof(l->text[l->n].reason), "%s", q->reason);
	snprintf(l->text[l->n].alert_id, sizeof(l->text[l->n].alert_id), "%s", q->alert_id);
	snprintf(l->text[l->n].rule, sizeof(l->text[l->n].rule), "%s", q->rule);
	e->reason = l->text[l->n].reason;
	e->alert_id = l->text[l->n].alert_id;
	e->rule = l->text[l->n].rule;
	e->claimed_origin = l->text[l->n].claimed_origin;
	if (q->envelope != NULL) {
		Xba__V1__Envelope *envelope = xba__v1__envelope__unpack(NULL, q->envelope_len, q->envelope);
		char id[XBA_UUID_LEN + 1];

		/* Whose it claims to be, for the officer who must ask that country; the id was kept when it came. */
		envelope_claimed(envelope, id, l->text[l->n].claimed_origin);
		if (envelope != NULL)
			xba__v1__envelope__free_unpacked(envelope, NULL);
	}
	l->n++;
	return 0;
}

/* `xba quarantine`: what this agent refused and still holds, so that an officer can say why an alert the broker
 * routed here (and records as refused) is not in the inbox. */
static void
handle_quarantine(struct agent *agent, const struct local_peer *peer, uint64_t ref,
    const Xba__V1__QuarantineRequest *req)
{
	Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;
	Xba__V1__QuarantineReply reply = XBA__V1__QUARANTINE_REPLY__INIT;
	Xba__V1__QuarantineEntry **list = NULL;
	struct quarantine_list l = { 0 };
	struct store_stats stats;
	struct xba_error err = { 0 };
	size_t limit = req->limit == 0 ? LOCAL_HISTORY_DEFAULT : req->limit;

	if (limit > LOCAL_HISTORY_MAX)
		limit = LOCAL_HISTORY_MAX;
	l.cap = limit;
	l.entries = calloc(limit, sizeof(*l.entries));
	l.text = calloc(limit, sizeof(*l.text));
	list = calloc(limit, sizeof(*list));
	if (l.entries == NULL || l.text == NULL || list == NULL) {
		free(list);
		free(l.entries);
		free(l.text);
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__INTERNAL, "", "out of memory");
		return;
	}
	if (store_stats(agent->store, &stats, &err) != 0 ||
	    store_quarantine_list(agent->store, limit, hold_quarantined, &l, &err) < 0) {
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE, "",
		    "cannot read %s", err.msg);
	} else {
		for (size_t i = 0; i < l.n; i++)
			list[i] = &l.entries[i];
		reply.entries = list;
		reply.n_entries = l.n;
		reply.held = stats.quarantined;
		frame.ref = ref;
		frame.body_case = XBA__V1__LOCAL_FRAME__BODY_QUARANTINE_REPLY;
		frame.quarantine_reply = &reply;
		local_send(agent, peer, &frame);
	}
	free(list);
	free(l.entries);
	free(l.text);
}

/* One page of records for `xba audit verify --agent`, held until the reply is sent. */
struct records_page {
	Xba__V1__Record *records;
	Xba__V1__Record **list;
	char **alert_ids;                   /* copies: the store's text is borrowed for one callback */
	uint8_t (*sha)[CHAIN_HASH_LEN];
	size_t n, cap;
	struct chain *chain;                /* the journal's own digest of an envelope (lib/chain.c) */
	struct xba_error *err;
};

static int
hold_record(void *ctx, uint64_t seq, const char *alert_id, const uint8_t *envelope, size_t envelope_len)
{
	struct records_page *p = ctx;
	Xba__V1__Record *r;

	if (p->n == p->cap)
		return 1;
	r = &p->records[p->n];
	xba__v1__record__init(r);
	if ((p->alert_ids[p->n] = strdup(alert_id)) == NULL)
		return xba_error_set(p->err, XBA_ENOMEM, "out of memory");
	if (chain_sha256(p->chain, envelope, envelope_len, p->sha[p->n], p->err) != 0)
		return XBA_ECRYPTO;
	r->seq = seq;
	r->alert_id = p->alert_ids[p->n];
	r->envelope_sha256.data = p->sha[p->n];
	r->envelope_sha256.len = CHAIN_HASH_LEN;
	p->list[p->n] = r;
	p->n++;
	return 0;
}

static void
handle_records(struct agent *agent, const struct local_peer *peer, uint64_t ref, const Xba__V1__RecordsRequest *req)
{
	Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;
	Xba__V1__RecordsReply reply = XBA__V1__RECORDS_REPLY__INIT;
	struct xba_error err = { 0 };
	struct records_page p = { 0 };
	size_t limit = req->limit == 0 ? LOCAL_RECORDS_DEFAULT : req->limit;
	int64_t last_id = req->after_id;
	int rc;

	if (limit > LOCAL_RECORDS_MAX)
		limit = LOCAL_RECORDS_MAX;
	p.cap = limit;
	p.err = &err;
	p.records = calloc(limit, sizeof(*p.records));
	p.list = calloc(limit, sizeof(*p.list));
	p.alert_ids = calloc(limit, sizeof(*p.alert_ids));
	p.sha = calloc(limit, sizeof(*p.sha));
	if (p.records == NULL || p.list == NULL || p.alert_ids == NULL || p.sha == NULL ||
	    (p.chain = chain_new(store_path(agent->store), &err)) == NULL) {
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__INTERNAL, "", "out of memory");
		goto out;
	}
	rc = store_records(agent->store, req->sent, req->after_id, limit, hold_record, &p, &last_id, &err);
	if (rc < 0) {
		local_send_error(agent, peer, ref, XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE, "", "cannot read %s",
		    err.msg);
		goto out;
	}
	reply.node_id = agent->config->node_id;
	reply.records = p.list;
	reply.n_records = p.n;
	reply.last_id = last_id;
	reply.end = p.n < limit;
	frame.ref = ref;
	frame.body_case = XBA__V1__LOCAL_FRAME__BODY_RECORDS_REPLY;
	frame.records_reply = &reply;
	local_send(agent, peer, &frame);
out:
	for (size_t i = 0; i < p.n; i++)
		free(p.alert_ids[i]);
	chain_free(p.chain);
	free(p.records);
	free(p.list);
	free(p.alert_ids);
	free(p.sha);
}

static const char *
local_body_name(Xba__V1__LocalFrame__BodyCase body_case)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field(&xba__v1__local_frame__descriptor, (unsigned)body_case);

	return f != NULL ? f->name : "unknown";
}

static void
dispatch(struct agent *agent, const struct local_peer *peer, const uint8_t *bytes, size_t len)
{
	Xba__V1__LocalFrame *frame = xba__v1__local_frame__unpack(NULL, len, bytes);

	if (frame == NULL) {
		if (local_log_allowed(agent->local))
			log_info("event=local.rejected peer=%s code=MALFORMED_FRAME bytes=%zu", peer->who_log, len);
		local_send_error(agent, peer, 0, XBA__V1__ERROR_CODE__MALFORMED_FRAME, "",
		    "not a LocalFrame (protobuf decode failed; %zu bytes)", len);
		return;
	}
	log_debug("event=local.request peer=%s type=%s ref=%llu", peer->who_log, local_body_name(frame->body_case),
	    (unsigned long long)frame->ref);
	for (size_t i = 0; i < agent->local->n_subs; i++)
		if (peer_equal(&agent->local->subs[i].peer, peer))
			agent->local->subs[i].heard_mono = clock_mono_ms();
	if (peer->officer_removed) {
		if (local_log_allowed(agent->local))
			log_warnx("event=local.refused peer=%s reason=officer-removed type=%s", peer->who_log,
			    local_body_name(frame->body_case));
		local_send_error(agent, peer, frame->ref, XBA__V1__ERROR_CODE__NOT_PERMITTED, "",
		    "this officer key (%s) is no longer listed in the agent's officers (agent.yaml); ask the focal "
		    "point", peer->who + 4);
		xba__v1__local_frame__free_unpacked(frame, NULL);
		return;
	}
	switch (frame->body_case) {
	case XBA__V1__LOCAL_FRAME__BODY_SUBMIT:
		handle_submit(agent, peer, frame->ref, frame->submit);
		break;
	case XBA__V1__LOCAL_FRAME__BODY_SUBSCRIBE:
		handle_subscribe(agent, peer, frame->ref, frame->subscribe);
		break;
	case XBA__V1__LOCAL_FRAME__BODY_ACK:
		handle_ack(agent, peer, frame->ref, frame->ack);
		break;
	case XBA__V1__LOCAL_FRAME__BODY_HISTORY:
		handle_history(agent, peer, frame->ref, frame->history);
		break;
	case XBA__V1__LOCAL_FRAME__BODY_STATUS:
		handle_status(agent, peer, frame->ref, frame->status);
		break;
	case XBA__V1__LOCAL_FRAME__BODY_TRACK:
		handle_track(agent, peer, frame->ref, frame->track);
		break;
	case XBA__V1__LOCAL_FRAME__BODY_REGION_STATUS:
		handle_region_status(agent, peer, frame->ref);
		break;
	case XBA__V1__LOCAL_FRAME__BODY_QUARANTINE:
		handle_quarantine(agent, peer, frame->ref, frame->quarantine);
		break;
	case XBA__V1__LOCAL_FRAME__BODY_RECORDS:
		handle_records(agent, peer, frame->ref, frame->records);
		break;
	case XBA__V1__LOCAL_FRAME__BODY__NOT_SET:
		if (local_log_allowed(agent->local))
			log_info("event=local.rejected peer=%s code=UNKNOWN_FRAME_TYPE type=none", peer->who_log);
		local_send_error(agent, peer, frame->ref, XBA__V1__ERROR_CODE__UNKNOWN_FRAME_TYPE, "",
		    "no request of a type this agent knows (is the CLI newer than the agent?)");
		break;
	default:
		if (local_log_allowed(agent->local))
			log_info("event=local.rejected peer=%s code=UNKNOWN_FRAME_TYPE type=%s", peer->who_log,
			    local_body_name(frame->body_case));
		local_send_error(agent, peer, frame->ref, XBA__V1__ERROR_CODE__UNKNOWN_FRAME_TYPE, "",
		    "%s is something the agent sends, not a request it accepts", local_body_name(frame->body_case));
		break;
	}
	xba__v1__local_frame__free_unpacked(frame, NULL);
}

/*
 * Who is talking on the LAN socket.  The ZAP handler admitted the connection with User-Id "KEY:name" (KEY the
 * officer's CURVE key in Z85, 40 characters), but agent.yaml's officers may have changed since (SIGHUP): the key
 * is looked up again on every request, so that a removed key is refused at once and a renamed officer's requests
 * carry the new name.
 */
static void
lan_officer(struct agent *agent, const char *user, struct local_peer *peer)
{
	const struct agent_officer *officer = NULL;

	if (user != NULL && strlen(user) > XBA_Z85_KEY_TEXT_LEN && user[XBA_Z85_KEY_TEXT_LEN] == ':') {
		char key_z85[XBA_Z85_KEY_TEXT_LEN + 1];

		memcpy(key_z85, user, XBA_Z85_KEY_TEXT_LEN);
		key_z85[XBA_Z85_KEY_TEXT_LEN] = '\0';
		if (zmq_z85_decode(peer->officer_key, key_z85) != NULL)
			officer = agent_config_officer(agent->config, peer->officer_key);
	}
	peer->officer_removed = officer == NULL;
	snprintf(peer->who, sizeof(peer->who), "lan:%s", officer != NULL ? officer->name
	    : user != NULL && strlen(user) > XBA_Z85_KEY_TEXT_LEN ? user + XBA_Z85_KEY_TEXT_LEN + 1 : "?");
}

/* Read one ROUTER message (routing id + one part).  1 if one was handled, 0 if none was pending. */
static int
receive_one(struct agent *agent, int which)
{
	void *socket = agent->local->sockets[which];
	struct local_peer peer;
	zmq_msg_t id, body;
	const char *user;
	int more = 0, extra = 0;
	size_t more_len = sizeof(more);

	zmq_msg_init(&id);
	if (zmq_msg_recv(&id, socket, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&id);
		return 0;
	}
	zmq_msg_init(&body);
	if (zmq_msg_recv(&body, socket, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&id);
		zmq_msg_close(&body);
		return 1;
	}
	/* One part per request; swallow any others so the next message starts clean. */
	zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &more_len);
	while (more) {
		zmq_msg_t rest;

		zmq_msg_init(&rest);
		if (zmq_msg_recv(&rest, socket, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&rest);
			break;
		}
		zmq_msg_close(&rest);
		extra++;
		zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &more_len);
	}
	memset(&peer, 0, sizeof(peer));
	peer.socket = which;
	peer.id_len = zmq_msg_size(&id) < LOCAL_PEER_ID_MAX ? zmq_msg_size(&id) : LOCAL_PEER_ID_MAX;
	if (peer.id_len > 0)
		memcpy(peer.id, zmq_msg_data(&id), peer.id_len);
	user = which == LOCAL_LAN ? zmq_msg_gets(&body, "User-Id") : NULL;
	if (which == LOCAL_LAN) {
		lan_officer(agent, user, &peer);
		log_quote(peer.who_log, sizeof(peer.who_log), peer.who);
	} else {
		snprintf(peer.who, sizeof(peer.who), "ipc");
		snprintf(peer.who_log, sizeof(peer.who_log), "ipc");
	}
	if (extra > 0) {
		if (local_log_allowed(agent->local))
			log_info("event=local.rejected peer=%s code=MALFORMED_FRAME reason=\"%d extra message parts\"",
			    peer.who_log, extra);
		local_send_error(agent, &peer, 0, XBA__V1__ERROR_CODE__MALFORMED_FRAME, "",
		    "one ZeroMQ message part per LocalFrame; got %d more", extra);
	} else {
		dispatch(agent, &peer, zmq_msg_data(&body), zmq_msg_size(&body));
	}
	zmq_msg_close(&id);
	zmq_msg_close(&body);
	return 1;
}

/* ---- ZAP for the LAN endpoint ------------------------------------------------------------------------------ */

/*
 * RFC 27 requests: version, request id, domain, address, identity, mechanism, credentials.  A CURVE client on the
 * "xba-local" domain whose key is an officer's is admitted with User-Id = the officer's name.  A NULL-mechanism
 * request can only come from the IPC socket (the LAN socket speaks CURVE only), whose file permissions already
 * decided; it is admitted, should this libzmq ask.
 */
static void
zap_handle(struct agent *agent)
{
	void *socket = agent->local->zap;
	struct zap_request req;

	if (socket == NULL)
		return;
	while (zapwire_read(socket, &req) == 0) {
		const char *user = NULL;
		char key_z85[XBA_Z85_KEY_TEXT_LEN + 1] = "-", quoted[4 * 64 + 2], user_id[XBA_Z85_KEY_TEXT_LEN + 2 + 64 + 1] = "";

		if (strcmp(req.mechanism, "NULL") == 0) {
			user = "ipc";
		} else if (strcmp(req.domain, ZAP_DOMAIN) == 0 && req.has_curve_key) {
			const struct agent_officer *officer = agent_config_officer(agent->config, req.curve_key);

			zmq_z85_encode(key_z85, req.curve_key, XBA_CURVE_KEY_LEN);
			if (officer != NULL) {
				/* "KEY:name": lan_officer() looks the key up again on every request. */
				snprintf(user_id, sizeof(user_id), "%s:%s", key_z85, officer->name);
				user = officer->name;
			}
		}
		if (user != NULL) {
			char quoted_address[100];

			log_debug("event=local.admitted officer=%s address=%s", log_quote(quoted, sizeof(quoted), user),
			    log_quote(quoted_address, sizeof(quoted_address), req.address));
			zapwire_reply(socket, &req, "200", "OK", user_id[0] != '\0' ? user_id : user);
		} else {
			if (local_log_allowed(agent->local))
				log_warnx("event=local.refused reason=unknown-officer-key key=%s address=%s", key_z85,
				    log_quote(quoted, sizeof(quoted), req.address));
			zapwire_reply(socket, &req, "400", "not an officer of this agent", "");
		}
	}
}

void
local_process(struct agent *agent)
{
	zap_handle(agent);
	for (int which = LOCAL_IPC; which <= LOCAL_LAN; which++) {
		if (agent->local->sockets[which] == NULL)
			continue;
		int64_t until = clock_mono_ms() + LOCAL_TURN_MS;

		/* A burst of requests that each read much of the store (a history filter no index serves) must not hold
		 * the broker's deliveries: at least one request a turn, then only while the turn lasts. */
		for (int n = 0; n < LOCAL_BATCH && (n == 0 || clock_mono_ms() < until) && receive_one(agent, which); n++)
			;
	}
}

size_t
local_poll_items(struct local *local, zmq_pollitem_t *items, size_t max)
{
	size_t n = 0;

	if (local->zap != NULL && n < max)
		items[n++] = (zmq_pollitem_t){ local->zap, 0, ZMQ_POLLIN, 0 };
	for (int which = LOCAL_IPC; which <= LOCAL_LAN; which++)
		if (local->sockets[which] != NULL && n < max)
			items[n++] = (zmq_pollitem_t){ local->sockets[which], 0, ZMQ_POLLIN, 0 };
	return n;
}

/* ---- set-up ------------------------------------------------------------------------------------------------- */

/* The socket file's directory: anyone who can write there could replace the socket with their own. */
static int
check_socket_dir(const struct agent_config *config, struct xba_error *err)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	const char *slash = strrchr(config->local_socket, '/');
	struct stat st;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == config->local_socket)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - config->local_socket), config->local_socket);
	if (stat(dir, &st) != 0)
		return agent_config_error(config, "local_socket", err, XBA_EIO, "directory %s: %s (create it, owned by "
		    "the agent's user, mode 0750)", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return agent_config_error(config, "local_socket", err, XBA_EIO, "%s is not a directory", dir);
	/* Sticky does not help: while the agent is down, anyone who can write there can bind the path first and
	 * receive what officers submit (TLP:RED included). */
	if (st.st_mode & S_IWOTH)
		return agent_config_error(config, "local_socket", err, XBA_EIO,
		    "directory %s is writable by everyone%s: any local user could put their own socket there while the "
		    "agent is down; use a directory such as /run/xba-agent (mode 0750)", dir,
		    st.st_mode & MODE_STICKY ? " (sticky or not)" : "");
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return agent_config_error(config, "local_socket", err, XBA_EIO,
		    "directory %s belongs to uid %lu, neither root nor the agent's user (uid %lu): that user could put "
		    "their own socket there; use a directory of the agent's own", dir, (unsigned long)st.st_uid,
		    (unsigned long)geteuid());
	return 0;
}

/* A socket file left by a crash is removed; one a running agent still listens on is not (libzmq would silently
 * take it over); anything else at that path is not the agent's to delete. */
static int
clear_stale_socket(const struct agent_config *config, struct xba_error *err)
{
	const char *path = config->local_socket;
	struct sockaddr_un sa;
	struct stat st;
	char quoted[300];
	int fd, rc;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0
				       : agent_config_error(config, "local_socket", err, XBA_EIO, "%s: %s", path,
					   strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return agent_config_error(config, "local_socket", err, XBA_EIO,
		    "%s exists and is not a socket; not removing it", path);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return agent_config_error(config, "local_socket", err, XBA_EIO, "socket(): %s", strerror(errno));
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0)
		return agent_config_error(config, "local_socket", err, XBA_EIO,
		    "%s: another process (another xba-agent?) is listening on it; the socket belongs to uid %lu%s", path,
		    (unsigned long)st.st_uid, st.st_uid != geteuid() ? ", not this agent's user: find out whose it is" : "");
	if (errno != ECONNREFUSED)
		return agent_config_error(config, "local_socket", err, XBA_EIO, "%s: cannot tell whether it is in use: %s",
		    path, strerror(errno));
	if (unlink(path) != 0)
		return agent_config_error(config, "local_socket", err, XBA_EIO, "cannot remove the stale socket %s: %s",
		    path, strerror(errno));
	log_info("event=local.stale_socket_removed path=%s", log_quote(quoted, sizeof(quoted), path));
	return 0;
}

static int
set_router_options(void *socket)
{
	int one = 1, zero = 0, hwm = LOCAL_SNDHWM, ivl = LOCAL_PING_IVL_MS, timeout = LOCAL_PEER_TIMEOUT_MS;
	int64_t max = LOCAL_MAX_FRAME;

	/* A client that stops answering pings (a process stopped with Ctrl-Z or SIGSTOP, a workstation switched off or
	 * cut off) is disconnected: what was queued for it is freed, its watch's place with it (the next push finds
	 * it gone), and a client that wakes sees the drop and subscribes again. */
	return zmq_setsockopt(socket, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(socket, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
	    zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max, sizeof(max)) != 0 ||
	    zmq_setsockopt(socket, ZMQ_HEARTBEAT_IVL, &ivl, sizeof(ivl)) != 0 ||
	    zmq_setsockopt(socket, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof(timeout)) != 0 ? -1 : 0;
}

static int
bind_ipc(struct agent *agent, struct local *local, struct xba_error *err)
{
	const struct agent_config *config = agent->config;
	char endpoint[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
	mode_t old_umask;
	int rc, handshake_ms = LOCAL_IPC_HANDSHAKE_MS;

	if ((rc = check_socket_dir(config, err)) != 0 || (rc = clear_stale_socket(config, err)) != 0)
		return rc;
	local->sockets[LOCAL_IPC] = zmq_socket(agent->zmq_ctx, ZMQ_ROUTER);
	/* libzmq (4.3.4) aborts the whole process when accepting on an ipc:// socket finds no file descriptor left, and
	 * a connection that never greets holds one for its handshake interval (default 30 s): a client opening idle
	 * connections fast could stop the agent, and its restarts.  A real CLI greets at once. */
	if (local->sockets[LOCAL_IPC] == NULL || set_router_options(local->sockets[LOCAL_IPC]) != 0 ||
	    zmq_setsockopt(local->sockets[LOCAL_IPC], ZMQ_HANDSHAKE_IVL, &handshake_ms, sizeof(handshake_ms)) != 0)
		return xba_error_set(err, XBA_EIO, "cannot set up the local socket: %s", zmq_strerror(zmq_errno()));
	snprintf(endpoint, sizeof(endpoint), "ipc://%s", config->local_socket);
	/* The file is created 0600 by the bind itself (libzmq binds in this thread), so there is no moment when it
	 * is open to more than the configured mode; the chmod below only widens it to that mode. */
	old_umask = umask(0177);
	rc = zmq_bind(local->sockets[LOCAL_IPC], endpoint);
	umask(old_umask);
	if (rc != 0)
		return agent_config_error(config, "local_socket", err, XBA_EIO, "cannot listen on %s: %s", endpoint,
		    zmq_strerror(zmq_errno()));
	if ((local->ipc_path = strdup(config->local_socket)) == NULL)
		return xba_error_set(err, XBA_ENOMEM, "out of memory");
	if (config->local_group != NULL) {
		const struct group *g = getgrnam(config->local_group);

		if (g == NULL)
			return agent_config_error(config, "local_group", err, XBA_ECONFIG, "no unix group '%s' on this "
			    "machine", config->local_group);
		if (chown(config->local_socket, (uid_t)-1, g->gr_gid) != 0)
			return agent_config_error(config, "local_group", err, XBA_EIO, "cannot give %s to group %s: %s "
			    "(the agent's user must be a member of it)", config->local_socket, config->local_group,
			    strerror(errno));
	}
	if (chmod(config->local_socket, (mode_t)config->local_socket_mode) != 0)
		return agent_config_error(config, "local_socket_mode", err, XBA_EIO, "cannot chmod %s to %04llo: %s",
		    config->local_socket, (unsigned long long)config->local_socket_mode, strerror(errno));
	return 0;
}

static int
bind_lan(struct agent *agent, struct local *local, struct xba_error *err)
{
	const struct agent_config *config = agent->config;
	struct curve_identity lan;
	char quoted_endpoint[300];
	int one = 1, zero = 0, rc = 0, lan_handshake_ms = 5000;

	if (config->lan_listen == NULL)
		return 0;
	if (keys_load_curve(config->lan_curve_secret_key, &lan, err) != 0)
		return agent_config_error(config, "lan_curve_secret_key", err, err->code, "%s", err->msg);
	/* The ZAP handler must exist before the CURVE socket binds, or libzmq admits every client. */
	local->zap = zmq_socket(agent->zmq_ctx, ZMQ_REP);
	if (local->zap == NULL || zmq_setsockopt(local->zap, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_bind(local->zap, ZAP_ENDPOINT) != 0) {
		rc = xba_error_set(err, XBA_EIO, "cannot start the ZAP handler for the LAN endpoint: %s",
		    zmq_strerror(zmq_errno()));
		goto out;
	}
	local->sockets[LOCAL_LAN] = zmq_socket(agent->zmq_ctx, ZMQ_ROUTER);
	if (local->sockets[LOCAL_LAN] == NULL || set_router_options(local->sockets[LOCAL_LAN]) != 0 ||
	    zmq_setsockopt(local->sockets[LOCAL_LAN], ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(local->sockets[LOCAL_LAN], ZMQ_CURVE_SECRETKEY, lan.secret_z85, XBA_Z85_KEY_TEXT_LEN) != 0 ||
	    zmq_setsockopt(local->sockets[LOCAL_LAN], ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) != 0 ||
	    /* A connection that has not finished its CURVE handshake within 5 s (libzmq's default: 30) is closed:
	     * every such connection holds a file descriptor, and anyone on the LAN can open them without a key. */
	    zmq_setsockopt(local->sockets[LOCAL_LAN], ZMQ_HANDSHAKE_IVL, &lan_handshake_ms, sizeof(lan_handshake_ms)) != 0) {
		rc = xba_error_set(err, XBA_EIO, "cannot set up the LAN socket: %s", zmq_strerror(zmq_errno()));
		goto out;
	}
	if (zmq_bind(local->sockets[LOCAL_LAN], config->lan_listen) != 0)
		rc = agent_config_error(config, "lan_listen", err, XBA_EIO, "cannot listen on %s: %s", config->lan_listen,
		    zmq_strerror(zmq_errno()));
	else if (config->n_officers == 0)
		log_warnx("event=local.lan_listening endpoint=%s officers=0 public_key=%s note=\"no officer listed in "
			  "agent.yaml: it admits nobody\"", log_quote(quoted_endpoint, sizeof(quoted_endpoint),
		    config->lan_listen), lan.public_z85);
	else
		log_info("event=local.lan_listening endpoint=%s officers=%zu public_key=%s",
		    log_quote(quoted_endpoint, sizeof(quoted_endpoint), config->lan_listen), config->n_officers,
		    lan.public_z85);
out:
	memset(&lan, 0, sizeof(lan));
	return rc;
}

int
local_check(const struct agent_config *config, struct xba_error *err)
{
	struct curve_identity lan;
	int rc;

	if ((rc = check_socket_dir(config, err)) != 0)
		return rc;
	if (config->local_group != NULL && getgrnam(config->local_group) == NULL)
		return agent_config_error(config, "local_group", err, XBA_ECONFIG, "no unix group '%s' on this machine",
		    config->local_group);
	if (config->lan_curve_secret_key != NULL) {
		rc = keys_load_curve(config->lan_curve_secret_key, &lan, err);
		memset(&lan, 0, sizeof(lan));
		if (rc != 0)
			return agent_config_error(config, "lan_curve_secret_key", err, rc, "%s", err->msg);
	}
	return 0;
}

struct local *
local_new(struct agent *agent, struct xba_error *err)
{
	struct local *local = calloc(1, sizeof(*local));

	if (local == NULL) {
		xba_error_set(err, XBA_ENOMEM, "out of memory");
		return NULL;
	}
	if (bind_ipc(agent, local, err) != 0 || bind_lan(agent, local, err) != 0) {
		local_free(local);
		return NULL;
	}
	return local;
}

void
local_free(struct local *local)
{
	if (local == NULL)
		return;
	for (size_t i = 0; i < local->n_subs; i++)
		if (local->subs[i].filter != NULL)
			xba__v1__alert_filter__free_unpacked(local->subs[i].filter, NULL);
	for (int which = LOCAL_IPC; which <= LOCAL_LAN; which++)
		if (local->sockets[which] != NULL)
			zmq_close(local->sockets[which]);
	if (local->zap != NULL)
		zmq_close(local->zap);
	/* libzmq removes the socket file when the listener closes (asynchronously); removing it here too makes
	 * a clean stop leave nothing behind even if the context is torn down first. */
	if (local->ipc_path != NULL) {
		struct stat st;

		if (lstat(local->ipc_path, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(local->ipc_path);
		free(local->ipc_path);
	}
	free(local);
}
