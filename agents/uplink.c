/*
 * uplink.c — the node side of docs/protocol.md: one CURVE DEALER session with the broker (the state diagram is in
 * agent.h).  It sits in the middle of both directions of an alert's trip: it takes this node's sealed alerts from
 * the outbox to the broker and records the broker's answer, and it takes the broker's deliveries, verifies them
 * against this agent's own region.yaml (never trusting the broker), stores them, and only then acknowledges them.
 *
 * One loop turn (uplink_process): read every pending frame; each write they cause (inbox rows, quarantine rows,
 * publish outcomes, receipts, the delivery cursor) goes into one store transaction, committed once with
 * synchronous=FULL; only after that commit are DeliveryAck + Credit sent, quarantine Error frames sent, and
 * officers told (pushes to `xba watch`, PublishEvents to `xba send`).  A commit that fails acknowledges nothing:
 * the session is dropped, and the broker redelivers on the next one (deduplicated by alert id here).
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "alert.h"
#include "clock.h"
#include "envelope.h"
#include "frame.h"
#include "linkwindow.h"
#include "log.h"
#include "syntax.h"

#define UPLINK_MAX_INFLIGHT 64          /* publishes sent and not yet answered (docs/protocol.md §2.3) */
/* From opening the socket to Welcome (§2.2).  A satellite link at 700 ms each way and 32 kbit/s takes 7-9 s to
 * get there; at 10 s a stall of a few seconds or 3% loss failed most attempts (`no-welcome`), each costing a
 * backoff. */
#define UPLINK_WELCOME_TIMEOUT_MS 30000
/* Within one attempt, libzmq's own TCP connect retries are at most this far apart: given reconnect_max_ms (15 s)
 * they reached 15 s, and a broker back 17 s into an attempt went unseen until the attempt's 30 s were up (agents
 * back 35 s after a broker that was down for minutes).  A refused connect costs the broker's host one RST. */
#define UPLINK_TCP_RETRY_MAX_MS 2000
#define UPLINK_STABLE_MS 60000          /* a session up this long resets the reconnect backoff (§2.9) */
#define UPLINK_HANDSHAKE_FAILURES_CONFIG 3 /* CURVE handshakes failing in a row, without detail, before an agent
					    * that never completed one calls it a wrong broker key (handshake_failed) ... */
#define UPLINK_HANDSHAKE_FAILURES_PROVEN 8 /* ... and one whose pinned key worked earlier */
#define UPLINK_BATCH 256                /* frames read per loop turn: one group commit (acks within ~100 ms) */
#define UPLINK_TRACKS 64                /* track requests waiting for the broker */
#define UPLINK_TRACK_TIMEOUT_MS 30000
#define UPLINK_RELEASE_BATCH 256        /* releases reported in one DeliveryAck */
#define UPLINK_RELEASE_REPEAT_MS (30LL * 86400 * 1000) /* releases of the last 30 days are reported again */
#define UPLINK_CLOCK_WARN_MS 30000      /* broker heartbeat time this far from ours: warn the operator (§2.7) */
#define UPLINK_CLOCK_MAX_MS 4102444800000LL /* 2100-01-01: a broker clock said later than this is ignored */
/*
 * The broker's journal lacks the last alert it accepted of this node's (Welcome.publishes_unknown): it was restored
 * from a backup, and what it had accepted since the backup is lost with it, acknowledgements included.  The node
 * cannot know where the backup ends, so every row accepted in the last RESTORE_REQUEUE_DAYS goes back to the outbox
 * and is published again, the same signed envelopes: the broker journals what it lost and answers DUPLICATE for
 * the rest, and recipients that have an alert ignore it by id.  Not older: a journal replaced on purpose must not
 * get a year of alerts back, and a backup a week old is a restore the working group follows by hand.
 */
#define RESTORE_REQUEUE_DAYS 7

/* An acknowledgement refused UNKNOWN_ALERT because the broker's journal, restored from a backup, lost the alert it
 * acknowledges (its origin has not published it again yet) is tried again this often (doubling to the maximum). */
#define UPLINK_ACK_RETRY_MIN_MS 15000
#define UPLINK_ACK_RETRY_MAX_MS (10 * 60 * 1000)
#define UPLINK_MAXMSGSIZE (4 * 1024 * 1024) /* transport guard; never below 256 KiB + 1 KiB (§1.3) */

enum uplink_state {
	UPLINK_WAITING,    /* no socket; the next session opens at next_attempt_mono */
	UPLINK_CONNECTING, /* socket connecting; Hello goes out once the CURVE handshake completed */
	UPLINK_HELLO_SENT, /* waiting for Welcome */
	UPLINK_UP,         /* welcomed: publishing and receiving */
};

static const char *const state_names[] = { "waiting", "connecting", "hello-sent", "up" };

/* A Publish sent and not yet answered. */
struct inflight {
	int64_t id;                              /* outbox row id = Publish.ref */
	char alert_id[XBA_UUID_LEN + 1];
	bool emergency;
	bool republished;                        /* accepted before, published again after a restore (it has a seq) */
	int msg_type;
	int64_t sent_mono;                       /* its PublishAck's delay measures the link (lib/linkwindow.c) */
	bool window_full;                        /* the link window was full once it went */
	bool old_key;                            /* signed with another key than the one this agent signs with now */
	char key[56];                            /* ... that key's fingerprint ("SHA256:..."); "" when it is the current */
};

/* An acknowledgement that waits for its alert (ack_waits_for_alert): queued in the store, not sent by pump_outbox. */
struct parked_ack {
	int64_t id;                              /* outbox row id */
	char alert_id[XBA_UUID_LEN + 1];
	int64_t until_ms;                        /* wall clock: refused for good after this */
};

/* A TrackRequest, or a StatusRequest (region), forwarded for a CLI. */
struct pending_track {
	bool used;
	bool region;                             /* a StatusRequest: alert_id is empty */
	char alert_id[XBA_UUID_LEN + 1];
	struct local_peer peer;                  /* who asked */
	uint64_t ref;                            /* their request's ref */
	int64_t deadline_mono;
};

/* A Deliver handled in this turn, waiting for the commit that makes it true. */
struct delivered {
	uint64_t seq;
	bool emergency;                          /* Deliver.emergency: jumped the queue, acknowledged selectively */
	bool stored_new;                         /* stored now (not a redelivery): log and push after commit */
	bool quarantined;                        /* refused by this agent's verification */
	struct store_row row;                    /* stored_new: what local.c pushes (envelope owned) */
	Xba__V1__Alert *alert;                   /* stored_new: the verified alert; owned */
	Xba__V1__ErrorCode code;                 /* quarantined: why */
	char field[96];
	char message[512];
};

/* A broker answer to a Publish, reported once it is durable. */
struct outcome {
	char alert_id[XBA_UUID_LEN + 1];
	bool accepted;                           /* OK/DUPLICATE; else refused for good */
	Xba__V1__ErrorCode result;
	uint64_t seq;
	uint32_t recipients;
	char message[512];
	char field[128];
};

struct uplink {
	enum uplink_state state;
	void *socket;                            /* DEALER with CURVE; NULL while WAITING */
	void *monitor;                           /* PAIR reading the socket's monitor events */
	unsigned serial;                         /* makes each monitor's inproc name unique */
	int64_t opened_mono;                     /* when the current socket was opened */
	int64_t up_mono;                         /* when Welcome arrived */
	int64_t link_since_wall;                 /* last link up/down, for status */
	int64_t next_attempt_mono;               /* WAITING: when the next session opens */
	int64_t backoff_ms;                      /* the next reconnect wait, before jitter */
	bool handshake_ok;                       /* the monitor saw the CURVE handshake complete */
	unsigned handshake_failures;             /* CURVE handshakes failed in a row, without detail (a wrong pinned
						 * broker key, or a link resetting connections: handshake_failed) */
	bool broker_key_proven;                  /* a handshake with the pinned broker key completed since the start */
	int64_t last_sent_mono, last_heard_mono; /* heartbeats and dead-peer detection */
	uint32_t heartbeat_ms;                   /* from Welcome */
	uint32_t max_frame_bytes;                /* from Welcome */
	char broker_id[65];
	char rules_version[65];
	char endpoint_log[300];                  /* agent.yaml's broker endpoint, log_quote()d once for every record */
	bool clock_warned;                       /* this session already warned about clock offset */
	/* The broker's clock as last heard (Welcome.time_ms, Heartbeat.time_ms), tied to this machine's monotonic
	 * clock so that the estimate survives a step of this machine's wall clock (an NTP fix): see uplink_broker_now. */
	bool broker_clock_known;
	int64_t broker_clock_ms, broker_clock_mono;
	int64_t nodes_offset_ms;                 /* while the broker suspects its clock: its nodes' median minus it */
	/* deliveries */
	uint64_t through_seq;                    /* the cursor: durable, and what the last DeliveryAck said */
	char through_id[XBA_UUID_LEN + 1];       /* the alert journaled at through_seq, as received ("" unknown) */
	int64_t window;                          /* deliveries the broker may still send */
	/* publishing */
	struct inflight inflight[UPLINK_MAX_INFLIGHT];
	size_t n_inflight;
	struct link_window link;                 /* ordinary publishes the link may hold (up to UPLINK_MAX_INFLIGHT) */
	int64_t last_sent_id;                    /* highest outbox id sent on this session */
	int64_t last_early_id;                   /* highest emergency sent ahead of the queue since then */
	bool paused;                             /* a transient refusal: send nothing until resume_mono */
	bool paused_by_emergency;                /* ... of an emergency: later emergencies wait behind it too */
	struct {                                 /* the alert the outbox waits behind, for xba status ("" = none) */
		char alert_id[40];
		Xba__V1__ErrorCode code;
		char message[512];
		int64_t since_ms;
		bool old_key;                    /* signed with an earlier key of this node (its fingerprint: key) */
		char key[56];
	} held_behind;
	unsigned held_refusals;                  /* this pause: publishes the broker refused as held behind it */
	/* Acknowledgements that wait for their alerts (ack_waits_for_alert): left queued, skipped by pump_outbox (a
	 * queue of them must not take every place in flight, nor the place of the alert a held session waits for),
	 * and sent again on their own at acks_retry_mono (0 = not armed).  Owned. */
	struct parked_ack *parked;
	size_t n_parked, cap_parked;
	int64_t acks_retry_mono, acks_retry_ms;
	int64_t resume_mono;                     /* paused and drained: when to resume (0 = not yet armed) */
	int64_t publish_backoff_ms;              /* the next publishing pause */
	bool publish_backoff_max;                /* the refusal needs an operator (UNKNOWN_KEY): the longest pause */
	/* tracking */
	struct pending_track tracks[UPLINK_TRACKS];
	/* this turn */
	bool in_transaction;                     /* store_begin done for this turn */
	bool store_failed;                       /* a write of this turn failed: commit will fail */
	const char *drop_reason;                 /* end the session after this turn */
	bool drop_config_error;                  /* ... at the longest backoff */
	char link_problem[512];                  /* why the link cannot come up, for xba status ("" = none known) */
	char new_curve_key[XBA_Z85_KEY_TEXT_LEN + 1]; /* region.yaml (refused at reload) gives this node this
						 * curve_key: a CURVE rotation this agent has not been restarted for */
	struct delivered *turn;                  /* deliveries of this turn; owned */
	size_t n_turn, cap_turn;
	int64_t turn_last_mono;                  /* when this turn's last delivery arrived (DeliveryAck.held_ms) */
	struct outcome *outcomes;                /* publish answers of this turn; owned */
	size_t n_outcomes, cap_outcomes;
	Xba__V1__Frame **receipts;               /* receipt frames of this turn, pushed after commit; owned */
	size_t n_receipts, cap_receipts;
	uint64_t turn_through;                   /* the cursor this turn's commit will make durable */
	char turn_through_id[XBA_UUID_LEN + 1];  /* and the alert journaled at that seq */
	uint64_t last_accepted_seq;              /* the highest seq the broker accepted one of this node's alerts at */
	char last_accepted_id[XBA_UUID_LEN + 1]; /* ... and that alert's id (Hello: a restored journal lacks it) */
	bool credit_exceeded;                    /* a Deliver arrived with the window at 0 */
	int64_t store_behind_ms;                 /* when the broker last found this store behind its record; 0 never */
	bool report_releases;                    /* the store may hold releases the broker was not told of */
	bool repeat_releases;                    /* a new session: tell the broker again of recent releases */
};

/* ---- helpers ---------------------------------------------------------------------------------------------- */

static int64_t
jitter(int64_t ms)
{
	uint32_t r = 0;

	/* x [0.5, 1.5] (§2.9), so that every agent of a region does not reconnect in the same second. */
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		return ms;
	return ms / 2 + (int64_t)((double)ms * ((double)r / 4294967296.0));
}

static bool
grow(void **v, size_t *cap, size_t n, size_t size)
{
	size_t c;
	void *p;

	if (n < *cap)
		return true;
	c = *cap ? *cap * 2 : 16;
	if ((p = realloc(*v, c * size)) == NULL)
		return false;
	*v = p;
	*cap = c;
	return true;
}

/* Encode and send one frame, never blocking.  0, or -1 when the session cannot take it (the caller drops). */
static int
send_frame(struct uplink *u, const Xba__V1__Frame *frame)
{
	uint8_t *bytes;
	size_t len;
	int rc;

	if (u->socket == NULL)
		return -1;
	if (frame_encode(frame, &bytes, &len, NULL) != 0)
		return -1;
	rc = zmq_send(u->socket, bytes, len, ZMQ_DONTWAIT);
	free(bytes);
	if (rc < 0)
		return -1;
	u->last_sent_mono = clock_mono_ms();
	return 0;
}

static void
send_error(struct uplink *u, Xba__V1__ErrorCode code, const char *field, uint64_t ref, const char *message)
{
	Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
	Xba__V1__Error error = XBA__V1__ERROR__INIT;

	error.code = code;
	error.message = (char *)message;
	error.field = (char *)(field != NULL ? field : "");
	error.ref = ref;
	frame.body_case = XBA__V1__FRAME__BODY_ERROR;
	frame.error = &error;
	send_frame(u, &frame); /* informational: a lost Error changes nothing */
}

/* End the session after this turn; the first reason wins. */
static void
want_drop(struct uplink *u, const char *reason, bool config_error)
{
	if (u->drop_reason == NULL) {
		u->drop_reason = reason;
		u->drop_config_error = config_error;
	}
}

static int
ensure_transaction(struct agent *agent)
{
	struct uplink *u = agent->uplink;
	struct xba_error err = { 0 };

	if (u->in_transaction)
		return u->store_failed ? -1 : 0;
	/* BEGIN failed already this turn: each try waits out the store's busy timeout, and a turn of 64 deliveries on a
	 * locked store would hold the agent (and its officers' requests) for a minute. */
	if (u->store_failed)
		return -1;
	if (store_begin(agent->store, &err) != 0) {
		char quoted[600];

		log_warnx("event=store.write_failed op=begin error=%s", log_quote(quoted, sizeof(quoted), err.msg));
		u->store_failed = true;
		agent_store_failed(agent, "begin", &err);
		return -1;
	}
	u->in_transaction = true;
	return 0;
}

static void
store_write_failed(struct agent *agent, const char *op, const struct xba_error *err)
{
	struct uplink *u = agent->uplink;
	char quoted[600];

	if (!u->store_failed)
		log_warnx("event=store.write_failed op=%s error=%s", op, log_quote(quoted, sizeof(quoted), err->msg));
	u->store_failed = true;
	agent_store_failed(agent, op, err);
}

/* ---- session lifecycle ------------------------------------------------------------------------------------ */

static void
close_socket(struct uplink *u)
{
	if (u->socket != NULL) {
		zmq_socket_monitor(u->socket, NULL, 0);
		zmq_close(u->socket);
		u->socket = NULL;
	}
	if (u->monitor != NULL) {
		zmq_close(u->monitor);
		u->monitor = NULL;
	}
}

/* What a pending request asked about, for the messages that say it went unanswered. */
static const char *
pending_subject(const struct pending_track *t)
{
	return t->region ? "the region's status" : t->alert_id;
}

static void
fail_tracks(struct agent *agent, const char *why)
{
	struct uplink *u = agent->uplink;

	for (size_t i = 0; i < UPLINK_TRACKS; i++) {
		struct pending_track *t = &u->tracks[i];

		if (!t->used)
			continue;
		t->used = false;
		local_send_error(agent, &t->peer, t->ref, XBA__V1__ERROR_CODE__NOT_READY, "",
		    "no answer about %s: %s; try again when `xba status` shows the link up", pending_subject(t), why);
	}
}

/* [session_drop] UP | HELLO_SENT | CONNECTING -> WAITING.  Anything in flight stays in the outbox and is resent,
 * unchanged, on the next session; deliveries not yet acknowledged are redelivered by the broker. */
static void
session_drop(struct agent *agent, const char *reason, bool config_error)
{
	struct uplink *u = agent->uplink;
	const struct agent_config *c = agent->config;
	int64_t now = clock_mono_ms(), wait;

	if (u->state == UPLINK_WAITING)
		return;
	if (u->state == UPLINK_UP) {
		log_warnx("event=link.down reason=%s broker=%s up_ms=%lld inflight=%zu", reason, u->broker_id,
		    (long long)(now - u->up_mono), u->n_inflight);
		u->link_since_wall = uplink_signing_now(agent->uplink);
		if (now - u->up_mono >= UPLINK_STABLE_MS)
			u->backoff_ms = c->reconnect_min_ms;
	} else if (!config_error && (strcmp(reason, "handshake-failed") == 0 ||
	    strcmp(reason, "closed-during-handshake") == 0)) {
		log_warnx("event=link.failed reason=%s state=%s endpoint=%s failures=%u note=\"a link that cuts "
			  "connections, or, if this goes on, a broker_public_key that is no longer the broker's\"", reason,
		    state_names[u->state], u->endpoint_log, u->handshake_failures);
	} else {
		log_warnx("event=link.failed reason=%s state=%s endpoint=%s", reason, state_names[u->state],
		    u->endpoint_log);
	}
	close_socket(u);
	fail_tracks(agent, "the link to the broker went down before it answered");
	u->state = UPLINK_WAITING;
	u->n_inflight = 0;
	u->paused = false;
	u->resume_mono = 0;
	wait = config_error ? c->reconnect_max_ms : u->backoff_ms;
	u->backoff_ms = u->backoff_ms * 2 > c->reconnect_max_ms ? c->reconnect_max_ms : u->backoff_ms * 2;
	wait = jitter(wait);
	u->next_attempt_mono = now + wait;
	log_info("event=link.retry in_ms=%lld endpoint=%s", (long long)wait, u->endpoint_log);
}

/* [session_open] WAITING -> CONNECTING: a fresh socket for every session (§1.3), so that nothing queued for an
 * old connection can reach a new one ahead of its Hello. */
static void
session_open(struct agent *agent)
{
	struct uplink *u = agent->uplink;
	const struct agent_config *c = agent->config;
	int zero = 0, one = 1, ivl = (int)c->reconnect_min_ms;
	int ivl_max = ivl > UPLINK_TCP_RETRY_MAX_MS ? ivl : UPLINK_TCP_RETRY_MAX_MS;
	int hb = (int)c->heartbeat_ms, hb_timeout = (int)c->heartbeat_ms * 3;
	int64_t maxmsg = UPLINK_MAXMSGSIZE;
	char monitor_endpoint[64];

	u->socket = zmq_socket(agent->zmq_ctx, ZMQ_DEALER);
	snprintf(monitor_endpoint, sizeof(monitor_endpoint), "inproc://xba-uplink-monitor-%u", ++u->serial);
	if (u->socket == NULL || zmq_setsockopt(u->socket, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(u->socket, ZMQ_IMMEDIATE, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(u->socket, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) != 0 ||
	    zmq_setsockopt(u->socket, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max)) != 0 ||
	    zmq_setsockopt(u->socket, ZMQ_HEARTBEAT_IVL, &hb, sizeof(hb)) != 0 ||
	    zmq_setsockopt(u->socket, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof(hb_timeout)) != 0 ||
	    zmq_setsockopt(u->socket, ZMQ_HEARTBEAT_TTL, &hb_timeout, sizeof(hb_timeout)) != 0 ||
	    zmq_setsockopt(u->socket, ZMQ_TCP_KEEPALIVE, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(u->socket, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0 ||
	    zmq_setsockopt(u->socket, ZMQ_CURVE_SERVERKEY, agent->broker_public_z85, XBA_Z85_KEY_TEXT_LEN) != 0 ||
	    zmq_setsockopt(u->socket, ZMQ_CURVE_PUBLICKEY, agent->curve.public_z85, XBA_Z85_KEY_TEXT_LEN) != 0 ||
	    zmq_setsockopt(u->socket, ZMQ_CURVE_SECRETKEY, agent->curve.secret_z85, XBA_Z85_KEY_TEXT_LEN) != 0 ||
	    zmq_socket_monitor(u->socket, monitor_endpoint,
		ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
		    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
		    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0 ||
	    (u->monitor = zmq_socket(agent->zmq_ctx, ZMQ_PAIR)) == NULL ||
	    zmq_setsockopt(u->monitor, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_connect(u->monitor, monitor_endpoint) != 0 || zmq_connect(u->socket, c->broker) != 0) {
		char quoted[300];

		log_warnx("event=link.failed reason=socket-setup error=%s endpoint=%s",
		    log_quote(quoted, sizeof(quoted), zmq_strerror(zmq_errno())), u->endpoint_log);
		close_socket(u);
		u->next_attempt_mono = clock_mono_ms() + jitter(c->reconnect_max_ms);
		return;
	}
	u->state = UPLINK_CONNECTING;
	u->opened_mono = u->last_heard_mono = u->last_sent_mono = clock_mono_ms();
	u->handshake_ok = false;
	log_debug("event=link.connecting endpoint=%s", u->endpoint_log);
}

/* [send_hello] CONNECTING -> HELLO_SENT.  With ZMQ_IMMEDIATE the send succeeds only once a connection completed
 * its CURVE handshake, so EAGAIN just means "not yet". */
/* false: not sent (no connection yet) */
static bool
send_hello(struct agent *agent)
{
	struct uplink *u = agent->uplink;
	Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
	Xba__V1__Hello hello = XBA__V1__HELLO__INIT;

	hello.protocol_version = XBA_PROTOCOL_VERSION;
	hello.node_id = agent->config->node_id;
	hello.resume_after = u->through_seq;
	hello.resume_after_alert_id = u->through_id;
	hello.last_accepted_seq = u->last_accepted_seq;
	hello.last_accepted_alert_id = u->last_accepted_id;
	{
		struct xba_error err = { 0 };

		/* Not said when the store cannot be read: the broker then goes by the cursor alone, as before.  The
		 * highest ever held, not held now: retention prunes quarantine rows and acknowledged alerts, and a
		 * delivery pruned here is not one to send again. */
		hello.held_said = store_held_high(agent->store, &hello.highest_held_seq, &err) == 0;
	}
	hello.credit = (uint32_t)agent->config->credit;
	hello.software = AGENT_SOFTWARE;
	hello.deliver_batches = true; /* a DeliverBatch is handled Deliver by Deliver (dispatch below) */
	hello.ordered_publishes = true; /* per-origin order: resent from the oldest entry after a pause (below) */
	hello.time_ms = clock_now_ms(); /* the broker checks its own clock against its nodes' */
	frame.body_case = XBA__V1__FRAME__BODY_HELLO;
	frame.hello = &hello;
	if (send_frame(u, &frame) != 0)
		return false; /* not connected yet */
	u->state = UPLINK_HELLO_SENT;
	u->window = agent->config->credit;
	log_debug("event=link.hello resume_after=%llu credit=%lld", (unsigned long long)u->through_seq,
	    (long long)agent->config->credit);
	return true;
}

/* ---- publishing ------------------------------------------------------------------------------------------- */

/* A stored envelope that no longer decodes cannot be sent: refused here, in its own transaction, so that it does
 * not block the outbox forever. */
static void
refuse_damaged(struct agent *agent, const struct store_row *row)
{
	struct xba_error err = { 0 };
	const char *msg = "the agent's stored envelope does not decode (store damaged?); submit the alert again";

	log_warnx("event=alert.refused alert=%s code=INTERNAL reason=\"stored envelope does not decode\"",
	    row->alert_id);
	if (store_begin(agent->store, &err) != 0 ||
	    store_outbox_refused(agent->store, row->id, XBA__V1__ERROR_CODE__INTERNAL, msg, "",
		uplink_signing_now(agent->uplink), &err) != 0 ||
	    store_commit(agent->store, &err) != 0) {
		char quoted[600];

		store_rollback(agent->store);
		log_warnx("event=store.write_failed op=refuse error=%s", log_quote(quoted, sizeof(quoted), err.msg));
		return;
	}
	local_push_publish_event(agent, row->alert_id, XBA__V1__PUBLISH_STATE__PUBLISH_STATE_REFUSED,
	    XBA__V1__ERROR_CODE__INTERNAL, 0, 0, msg, "");
}

/* Frame and send one outbox row, and count it in flight; false when the session must stop sending (dropped). */
static bool
send_row(struct agent *agent, const struct store_row *row)
{
	struct uplink *u = agent->uplink;
	Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
	Xba__V1__Publish publish = XBA__V1__PUBLISH__INIT;
	Xba__V1__Envelope *env;
	char key[56] = "";
	bool old_key;
	size_t size;
	int rc;

	/* The same bytes as sealed: the Envelope is decoded only to be framed; its alert bytes pass through
	 * unchanged (§2.3, §6.1). */
	env = xba__v1__envelope__unpack(NULL, row->envelope_len, row->envelope);
	if (env == NULL) {
		refuse_damaged(agent, row);
		return true;
	}
	/* Sealed before a rotation of this node's signing key: if the broker no longer knows that key, say which. */
	old_key = env->key_id.len == XBA_KEY_ID_LEN &&
	    memcmp(env->key_id.data, agent->signer.key_id, XBA_KEY_ID_LEN) != 0;
	if (old_key)
		keys_fingerprint(env->key_id.data, key, sizeof(key));
	publish.ref = (uint64_t)row->id;
	publish.envelope = env;
	frame.body_case = XBA__V1__FRAME__BODY_PUBLISH;
	frame.publish = &publish;
	size = xba__v1__frame__get_packed_size(&frame);
	if (size > u->max_frame_bytes) {
		/* A sealed alert is at most ~66 KiB; a broker limit below that is a broker misconfiguration.
		 * Sending it would only get the connection cut, over and over (§1.3). */
		log_warnx("event=alert.deferred alert=%s code=FRAME_TOO_LARGE reason=\"%zu bytes, broker limit %u\"",
		    row->alert_id, size, u->max_frame_bytes);
		xba__v1__envelope__free_unpacked(env, NULL);
		return true;
	}
	rc = send_frame(u, &frame);
	xba__v1__envelope__free_unpacked(env, NULL);
	if (rc != 0) {
		want_drop(u, "send-failed", false);
		return false;
	}
	u->inflight[u->n_inflight].id = row->id;
	u->inflight[u->n_inflight].emergency = row->emergency;
	u->inflight[u->n_inflight].republished = row->seq != 0;
	u->inflight[u->n_inflight].msg_type = row->msg_type;
	u->inflight[u->n_inflight].sent_mono = clock_mono_ms();
	u->inflight[u->n_inflight].window_full = u->n_inflight + 1 >= u->link.window;
	u->inflight[u->n_inflight].old_key = old_key;
	snprintf(u->inflight[u->n_inflight].key, sizeof(u->inflight[0].key), "%s", old_key ? key : "");
	snprintf(u->inflight[u->n_inflight].alert_id, sizeof(u->inflight[0].alert_id), "%.36s", row->alert_id);
	u->n_inflight++;
	log_debug("event=alert.sent alert=%s ref=%lld", row->alert_id, (long long)row->id);
	return true;
}

static bool
is_parked(const struct uplink *u, int64_t id)
{
	for (size_t i = 0; i < u->n_parked; i++)
		if (u->parked[i].id == id)
			return true;
	return false;
}

/*
 * Send outbox entries up to UPLINK_MAX_INFLIGHT: first every queued emergency not sent yet (an emergency must not
 * wait behind this country's own backlog, hundreds of routine alerts after an outage at the broker's rate limit;
 * the broker lets an emergency past a session it holds, and past the rate limit within a budget of its own), even
 * while publishing is paused; then, unless paused, the rest oldest first.  Order is kept among emergencies and
 * among the rest.
 */
static void
pump_outbox(struct agent *agent)
{
	struct uplink *u = agent->uplink;
	struct xba_error err = { 0 };
	struct store_row row;
	int rc;

	/* Behind a refused emergency, the others wait too: one country's emergencies keep their order. */
	while (u->state == UPLINK_UP && u->n_inflight < UPLINK_MAX_INFLIGHT && u->drop_reason == NULL &&
	    !(u->paused && u->paused_by_emergency)) {
		int64_t after = u->last_early_id > u->last_sent_id ? u->last_early_id : u->last_sent_id;
		bool ok;

		rc = store_outbox_next_emergency(agent->store, after, &row, &err);
		if (rc != 0) {
			char quoted[600];

			if (rc != XBA_ENOTFOUND)
				log_warnx("event=store.read_failed op=outbox error=%s",
				    log_quote(quoted, sizeof(quoted), err.msg));
			break;
		}
		u->last_early_id = row.id;
		ok = is_parked(u, row.id) || send_row(agent, &row);
		store_row_clear(&row);
		if (!ok)
			return;
	}
	/* Ordinary publishes within the link window too: on a slow link, a backlog of 64 in flight would be tens of
	 * seconds of bytes ahead of an emergency an officer sends next (lib/linkwindow.c). */
	while (u->state == UPLINK_UP && !u->paused && link_window_room(&u->link, u->n_inflight) > 0 &&
	    u->drop_reason == NULL) {
		bool ok = true;

		rc = store_outbox_next(agent->store, u->last_sent_id, &row, &err);
		if (rc == XBA_ENOTFOUND)
			break;
		if (rc != 0) {
			char quoted[600];

			log_warnx("event=store.read_failed op=outbox error=%s",
			    log_quote(quoted, sizeof(quoted), err.msg));
			break;
		}
		u->last_sent_id = row.id;
		if ((!row.emergency || row.id > u->last_early_id) && !is_parked(u, row.id)) /* else: sent ahead already */
			ok = send_row(agent, &row);
		store_row_clear(&row);
		if (!ok)
			break;
	}
}

static void
record_outcome(struct agent *agent, const char *alert_id, bool accepted, Xba__V1__ErrorCode result, uint64_t seq,
    uint32_t recipients, const char *message, const char *field)
{
	struct uplink *u = agent->uplink;
	struct outcome *o;

	if (!grow((void **)&u->outcomes, &u->cap_outcomes, u->n_outcomes, sizeof(*u->outcomes))) {
		log_warnx("event=agent.out_of_memory op=outcome alert=%s", alert_id);
		return;
	}
	o = &u->outcomes[u->n_outcomes++];
	memset(o, 0, sizeof(*o));
	snprintf(o->alert_id, sizeof(o->alert_id), "%s", alert_id);
	o->accepted = accepted;
	o->result = result;
	o->seq = seq;
	o->recipients = recipients;
	snprintf(o->message, sizeof(o->message), "%s", message != NULL ? message : "");
	snprintf(o->field, sizeof(o->field), "%s", field != NULL ? field : "");
}

/* Take a publish out of the in-flight list; false when ref is not in flight. */
static bool
take_inflight(struct uplink *u, uint64_t ref, struct inflight *out)
{
	for (size_t i = 0; i < u->n_inflight; i++) {
		if ((uint64_t)u->inflight[i].id == ref) {
			*out = u->inflight[i];
			memmove(&u->inflight[i], &u->inflight[i + 1], (u->n_inflight - i - 1) * sizeof(u->inflight[0]));
			u->n_inflight--;
			return true;
		}
	}
	return false;
}

/* A transient refusal: stop sending, let the answers in flight arrive, back off, then resume from the oldest
 * unacknowledged entry (§2.3 "Order"). */
static void
pause_publishing(struct agent *agent, const struct inflight *p, Xba__V1__ErrorCode code, const char *message)
{
	struct uplink *u = agent->uplink;
	char quoted[600];

	/* Behind the refusal that paused publishing, a broker that holds this session (Hello.ordered_publishes) refuses
	 * the rest of what was in flight as "held" (protocol §2.3 "Order"): up to UPLINK_MAX_INFLIGHT of them, each
	 * kept and resent like the first.  They are counted into the publishing.paused line, not warned one by one. */
	if (u->paused && message != NULL && strncmp(message, "held:", 5) == 0) {
		u->held_refusals++;
		log_debug("event=alert.deferred alert=%s code=%s reason=held", p->alert_id, frame_error_code_name(code));
		return;
	}
	if (code == XBA__V1__ERROR_CODE__UNKNOWN_KEY && p->old_key)
		log_warnx("event=alert.deferred alert=%s code=%s reason=%s key=%s action=\"it was signed before this "
			  "node's key rotation with %s, which the broker's region.yaml no longer lists: the secretariat must "
			  "put that key back, with valid_until, and reload (docs/operations.md section 5, step 4); until "
			  "then every later routine alert from here waits behind it\"", p->alert_id,
		    frame_error_code_name(code), log_quote(quoted, sizeof(quoted), message), p->key, p->key);
	else
		log_warnx("event=alert.deferred alert=%s code=%s reason=%s%s", p->alert_id, frame_error_code_name(code),
		    log_quote(quoted, sizeof(quoted), message),
		    code == XBA__V1__ERROR_CODE__UNKNOWN_KEY ? " action=\"the secretariat must add this node's signing "
							     "key to the broker's region.yaml\""
		    : code == XBA__V1__ERROR_CODE__CLOCK_SKEW ? " action=\"fix this machine's clock (NTP)\""
							  : "");
	/*
	 * The alert xba status names is the one this pause began with: the oldest in flight, which every later one
	 * waits behind (the later refusals of the same pause, the newest last, would name the last in line).  Its
	 * "since" is when the outbox first stopped for this reason: each retry that is refused again keeps it, or a
	 * broker whose disk has been full for hours would look minutes old.
	 */
	/* A retry that begins with a refusal "held:" behind the alert already named (an emergency goes first, and is
	 * refused behind the routine alert the broker still holds) keeps that name: it is not the one in front. */
	if (!u->paused && !(u->held_behind.alert_id[0] != '\0' && u->held_behind.code == code && message != NULL &&
	    strncmp(message, "held:", 5) == 0)) {
		if (u->held_behind.alert_id[0] == '\0' || u->held_behind.code != code)
			u->held_behind.since_ms = uplink_signing_now(agent->uplink);
		snprintf(u->held_behind.alert_id, sizeof(u->held_behind.alert_id), "%s", p->alert_id);
		u->held_behind.code = code;
		snprintf(u->held_behind.message, sizeof(u->held_behind.message), "%s", message != NULL ? message : "");
		u->held_behind.old_key = p->old_key;
		snprintf(u->held_behind.key, sizeof(u->held_behind.key), "%s", p->key);
		u->paused_by_emergency = false;
	}
	if (p->emergency)
		u->paused_by_emergency = true;
	u->paused = true;
	u->resume_mono = 0;
	if (code == XBA__V1__ERROR_CODE__UNKNOWN_KEY)
		u->publish_backoff_max = true;
}

/*
 * One queued alert sealed again with sent = now; false when it could not be (logged, and it stays as it was).
 */
static bool
reseal_row(struct agent *agent, const struct store_row *row, int64_t now_ms)
{
	struct xba_error err = { 0 };
	Xba__V1__Envelope *env = xba__v1__envelope__unpack(NULL, row->envelope_len, row->envelope);
	Xba__V1__Alert *alert = env != NULL ? alert_decode(env->alert.data, env->alert.len, &err) : NULL;
	uint8_t *sealed = NULL;
	size_t len = 0;
	char was[40], quoted[600];
	bool ok = false;

	if (alert != NULL) {
		alert->sent_ms = now_ms;
		if (envelope_seal(&agent->signer, alert, &sealed, &len, &err) == 0 &&
		    store_outbox_reseal(agent->store, row->id, sealed, len, now_ms, &err) == 0)
			ok = true;
	} else if (env == NULL) {
		xba_error_set(&err, XBA_EDECODE, "the stored envelope does not decode");
	}
	if (ok)
		log_warnx("event=alert.resealed alert=%s was_sent=%s reason=\"signed with this machine's clock ahead of the "
			  "broker's, which refused it for now (CLOCK_SKEW); signed again with the region's time\"",
		    row->alert_id,
		    clock_format_rfc3339(row->sent_ms, was, sizeof(was)));
	else
		log_warnx("event=alert.reseal_failed alert=%s error=%s", row->alert_id,
		    log_quote(quoted, sizeof(quoted), err.msg));
	free(sealed);
	if (alert != NULL)
		alert_free(alert);
	if (env != NULL)
		xba__v1__envelope__free_unpacked(env, NULL);
	return ok;
}

/*
 * CLOCK_SKEW: the broker refused an alert whose sent time is ahead of its clock, and on this ordered session every
 * later alert waits behind it.  Alerts sealed with this machine's clock ahead while the agent had no measure of the
 * region's (queued before the first session) would hold the country until the broker's clock reached the wrong
 * times, hours maybe: every queued alert sealed ahead of the broker's clock is sealed again with the signing time
 * now (the region's, while this machine's clock is off: uplink_signing_now).  The broker checks duplicates before
 * the clock, so a CLOCK_SKEW refusal means it journaled nothing of the alert.
 */
static void
reseal_ahead(struct agent *agent)
{
	struct xba_error err = { 0 };
	struct store_row row;
	int64_t earliest, latest, now = uplink_signing_now(agent->uplink), after = 0;
	unsigned resealed = 0;

	if (!uplink_broker_window(agent->uplink, &earliest, &latest) || now > latest + UPLINK_CLOCK_WARN_MS ||
	    ensure_transaction(agent) != 0)
		return;
	while (store_outbox_next(agent->store, after, &row, &err) == 0) {
		after = row.id;
		if (row.sent_ms > latest + UPLINK_CLOCK_WARN_MS)
			resealed += reseal_row(agent, &row, now);
		store_row_clear(&row);
	}
	if (resealed > 0)
		log_info("event=outbox.resealed alerts=%u", resealed);
}

/*
 * The alert an acknowledgement (outbox row alert_id) acknowledges, as this agent received it: *until_ms = when its
 * origin stops publishing it again after a restore (RESTORE_REQUEUE_DAYS after it arrived here); false when it is
 * not in the inbox, or has expired (the broker refuses it then: it cannot come back).
 */
static bool
acknowledged_alert_may_return(struct agent *agent, const char *alert_id, int64_t now_ms, int64_t *until_ms)
{
	struct xba_error err = { 0 };
	struct store_row ack_row, acked;
	Xba__V1__Envelope *env = NULL, *acked_env = NULL;
	Xba__V1__Alert *ack = NULL, *alert = NULL;
	bool may = false;

	memset(&ack_row, 0, sizeof(ack_row));
	memset(&acked, 0, sizeof(acked));
	if (store_outgoing_get(agent->store, alert_id, &ack_row, &err) != 0 ||
	    (env = xba__v1__envelope__unpack(NULL, ack_row.envelope_len, ack_row.envelope)) == NULL ||
	    (ack = alert_decode(env->alert.data, env->alert.len, &err)) == NULL || ack->n_references == 0 ||
	    store_inbox_get(agent->store, ack->references[0], &acked, &err) != 0 ||
	    (acked_env = xba__v1__envelope__unpack(NULL, acked.envelope_len, acked.envelope)) == NULL ||
	    (alert = alert_decode(acked_env->alert.data, acked_env->alert.len, &err)) == NULL)
		goto out;
	*until_ms = acked.received_ms + RESTORE_REQUEUE_DAYS * 86400LL * 1000;
	may = now_ms < *until_ms && (alert->expires_ms == 0 || alert->expires_ms > now_ms);
out:
	if (alert != NULL)
		alert_free(alert);
	if (ack != NULL)
		alert_free(ack);
	if (acked_env != NULL)
		xba__v1__envelope__free_unpacked(acked_env, NULL);
	if (env != NULL)
		xba__v1__envelope__free_unpacked(env, NULL);
	store_row_clear(&acked);
	store_row_clear(&ack_row);
	return may;
}

/*
 * After a restore of the broker's journal every agent publishes again what the backup lacked (requeue_after_restore),
 * but not at the same moment: an acknowledgement, published again or made by an officer since, can reach the broker
 * before the alert it acknowledges, whose origin's agent is slower, or offline.  The broker refuses it
 * UNKNOWN_ALERT, which is final for an alert that is gone for good.  One whose alert this agent received (so the
 * broker had it) and that its origin may still publish again stays queued instead, set apart from the outbox's
 * walk, and is tried again on its own (uplink_tick).  True when p does.
 */
static bool
ack_waits_for_alert(struct agent *agent, const struct inflight *p, Xba__V1__ErrorCode result)
{
	struct uplink *u = agent->uplink;
	struct xba_error err = { 0 };
	int64_t until_ms = 0, seen_ms = 0, now_ms = uplink_signing_now(agent->uplink);

	if (result != XBA__V1__ERROR_CODE__UNKNOWN_ALERT || p->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_ACK)
		return false;
	/* Only after a restore this agent saw: the same answer for an alert the broker pruned is final. */
	if (store_restore_seen(agent->store, &seen_ms, &err) != 0 || seen_ms == 0 ||
	    now_ms >= seen_ms + RESTORE_REQUEUE_DAYS * 86400LL * 1000 ||
	    !acknowledged_alert_may_return(agent, p->alert_id, now_ms, &until_ms))
		return false;
	if (!is_parked(u, p->id)) {
		if (!grow((void **)&u->parked, &u->cap_parked, u->n_parked, sizeof(*u->parked)))
			return false; /* refused as before: logged, shown as ACKS REFUSED */
		u->parked[u->n_parked].id = p->id;
		u->parked[u->n_parked].until_ms = until_ms;
		snprintf(u->parked[u->n_parked].alert_id, sizeof(u->parked[0].alert_id), "%s", p->alert_id);
		u->n_parked++;
	}
	if (u->acks_retry_mono == 0) {
		u->acks_retry_mono = clock_mono_ms() + jitter(u->acks_retry_ms);
		u->acks_retry_ms = u->acks_retry_ms * 2 > UPLINK_ACK_RETRY_MAX_MS ? UPLINK_ACK_RETRY_MAX_MS
										   : u->acks_retry_ms * 2;
	}
	log_warnx("event=ack.waiting_for_alert alert=%s reason=\"the broker does not have the alert it acknowledges "
		  "(its journal was restored from a backup): waiting for its origin to publish it again; tried again in "
		  "%lld s\"", p->alert_id, (long long)((u->acks_retry_mono - clock_mono_ms()) / 1000));
	return true;
}

/*
 * The acknowledgements set apart, sent again once nothing is in flight: at most what fits in flight, the rest at the
 * next turn.  Each is taken out of the set as it goes; a refusal puts it back.
 */
static void
retry_parked_acks(struct agent *agent)
{
	struct uplink *u = agent->uplink;
	size_t kept = 0;

	log_info("event=acks.retry waiting=%zu", u->n_parked);
	for (size_t i = 0; i < u->n_parked; i++) {
		struct xba_error err = { 0 };
		struct store_row row;
		bool keep = true;
		int rc;

		if (u->n_inflight < UPLINK_MAX_INFLIGHT && u->drop_reason == NULL) {
			rc = store_outgoing_get(agent->store, u->parked[i].alert_id, &row, &err);
			if (rc == XBA_ENOTFOUND) {
				keep = false; /* pruned meanwhile: nothing to wait for */
			} else if (rc == 0) {
				/* Answered meanwhile, or in flight now (a refusal sets it apart again). */
				keep = row.state == STORE_QUEUED && !send_row(agent, &row);
				store_row_clear(&row);
			}
		}
		if (keep)
			u->parked[kept++] = u->parked[i];
	}
	u->n_parked = kept;
	u->acks_retry_mono = kept > 0 ? clock_mono_ms() + 1000 : 0;
}

/*
 * A refusal for good, inside the turn's transaction.  A row published again after a restore of the broker's journal
 * was accepted and delivered before it: the restored broker refusing it now (expired since; withdrawn by a cancel
 * that went first, emergencies going first) does not make it "refused, nobody received it".
 */
static int
record_refusal(struct agent *agent, const struct inflight *p, Xba__V1__ErrorCode code, const char *message,
    const char *field, struct xba_error *err)
{
	char quoted[600];

	if (!p->republished)
		return store_outbox_refused(agent->store, p->id, code, message, field, uplink_signing_now(agent->uplink),
		    err);
	log_warnx("event=alert.republish_refused alert=%s code=%s reason=%s note=\"published again after a restore of "
		  "the broker's journal, and refused by it now: it stays accepted, as it was delivered before the "
		  "restore\"", p->alert_id, frame_error_code_name(code), log_quote(quoted, sizeof(quoted), message));
	return store_outbox_republish_refused(agent->store, p->id, err);
}

static void
handle_publish_ack(struct agent *agent, const Xba__V1__PublishAck *ack)
{
	struct uplink *u = agent->uplink;
	struct xba_error err = { 0 };
	struct inflight p;
	int rc;

	if (!take_inflight(u, ack->ref, &p)) {
		log_warnx("event=broker.unexpected_ack ref=%llu alert=%s result=%s", (unsigned long long)ack->ref,
		    ack->alert_id, frame_error_code_name(ack->result));
		return;
	}
	/* The broker's commit (a slow journal disk) is not this link's delay: PublishAck.held_ms is taken out. */
	if (link_window_acked(&u->link, p.sent_mono, p.window_full, 1, clock_mono_ms() - (int64_t)ack->held_ms) &&
	    u->link.cuts == 1)
		log_info("event=link.queueing direction=up window=%u queue_ms=%lld action=\"publishes wait in the outbox, "
			 "not on the link, so that an emergency does not wait behind them\"", u->link.window,
		    (long long)u->link.queue_ms);
	if (ack->result == XBA__V1__ERROR_CODE__OK || ack->result == XBA__V1__ERROR_CODE__DUPLICATE) {
		if (ensure_transaction(agent) != 0)
			return;
		rc = store_outbox_accepted(agent->store, p.id, ack->seq, ack->recipients, ack->result,
		    uplink_signing_now(u), &err);
		if (rc == 0 && ack->seq > u->last_accepted_seq) {
			u->last_accepted_seq = ack->seq;
			snprintf(u->last_accepted_id, sizeof(u->last_accepted_id), "%s", p.alert_id);
		}
		if (rc == XBA_ENOTFOUND) {
			log_debug("event=alert.already_answered alert=%s", p.alert_id);
			return;
		}
		if (rc != 0) {
			store_write_failed(agent, "accepted", &err);
			return;
		}
		u->publish_backoff_ms = agent->config->reconnect_min_ms;
		u->publish_backoff_max = false;
		if (strcmp(u->held_behind.alert_id, p.alert_id) == 0)
			memset(&u->held_behind, 0, sizeof(u->held_behind));
		record_outcome(agent, p.alert_id, true, ack->result, ack->seq, ack->recipients, "", "");
		return;
	}
	if (frame_error_code_transient(ack->result)) {
		if (ack->result == XBA__V1__ERROR_CODE__CLOCK_SKEW && strncmp(ack->message, "held:", 5) != 0)
			reseal_ahead(agent);
		pause_publishing(agent, &p, ack->result, ack->message);
		return;
	}
	if (ack_waits_for_alert(agent, &p, ack->result))
		return;
	if (ensure_transaction(agent) != 0)
		return;
	rc = record_refusal(agent, &p, ack->result, ack->message, ack->field, &err);
	if (rc != 0 && rc != XBA_ENOTFOUND) {
		store_write_failed(agent, "refused", &err);
		return;
	}
	if (strcmp(u->held_behind.alert_id, p.alert_id) == 0)
		memset(&u->held_behind, 0, sizeof(u->held_behind));
	if (rc == 0 && !p.republished)
		record_outcome(agent, p.alert_id, false, ack->result, 0, 0, ack->message, ack->field);
}

/* ---- deliveries ------------------------------------------------------------------------------------------- */

/* Each delivery uses one credit and one slot of this turn; NULL when the turn cannot hold it (then the turn is
 * acknowledged not at all, and redelivered). */
static struct delivered *
delivery_begin(struct agent *agent, uint64_t seq, bool emergency)
{
	struct uplink *u = agent->uplink;
	struct delivered *p;

	u->turn_last_mono = clock_mono_ms(); /* DeliveryAck.held_ms: from here to the ack, the store's commit */
	if (u->window <= 0 && !u->credit_exceeded) {
		/* §4 CREDIT_EXCEEDED, node side: a broker bug; the delivery is processed all the same. */
		log_warnx("event=broker.credit_exceeded seq=%llu reason=\"a Deliver arrived with the window at 0\"",
		    (unsigned long long)seq);
		u->credit_exceeded = true;
	}
	u->window--;
	if (ensure_transaction(agent) != 0)
		return NULL;
	if (!grow((void **)&u->turn, &u->cap_turn, u->n_turn, sizeof(*u->turn))) {
		u->store_failed = true; /* acknowledge nothing of this turn: it is redelivered */
		return NULL;
	}
	p = &u->turn[u->n_turn];
	memset(p, 0, sizeof(*p));
	p->seq = seq;
	p->emergency = emergency;
	return p;
}

/* The delivery in p is stored (inbox or quarantine) in this turn's transaction: it joins the turn. */
static void
delivery_end(struct uplink *u, const struct delivered *p, const char *alert_id)
{
	/* §2.5: cumulative over non-emergency deliveries, stored in arrival order; emergencies are listed. */
	if (!p->emergency && p->seq > u->turn_through) {
		u->turn_through = p->seq;
		snprintf(u->turn_through_id, sizeof(u->turn_through_id), "%s", alert_id != NULL ? alert_id : "");
	}
	u->n_turn++;
}

static void
handle_deliver(struct agent *agent, const Xba__V1__Deliver *d)
{
	struct uplink *u = agent->uplink;
	struct envelope_opened opened;
	struct store_alert_fields f;
	struct xba_error err = { 0 }, werr = { 0 };
	struct delivered *p;
	int64_t now = clock_now_ms(), received = uplink_signing_now(u);
	char delivered_id[XBA_UUID_LEN + 1] = "";
	uint8_t *bytes;
	size_t len;
	int rc;

	if ((p = delivery_begin(agent, d->seq, d->emergency)) == NULL)
		return;
	len = xba__v1__envelope__get_packed_size(d->envelope);
	if ((bytes = malloc(len > 0 ? len : 1)) == NULL) {
		u->store_failed = true;
		return;
	}
	xba__v1__envelope__pack(d->envelope, bytes);

	/* §2.4: verify against this agent's own directory, at its own now; never trust the broker. */
	rc = envelope_open_message(agent->dir, d->envelope, now, &opened, &err);
	if (rc == 0) {
		bool inserted = false;

		store_fields_from_alert(opened.alert, &f);
		snprintf(delivered_id, sizeof(delivered_id), "%s", f.alert_id);
		if (store_inbox_add(agent->store, &f, bytes, len, d->seq, d->rule, received, &inserted, &werr) != 0) {
			store_write_failed(agent, "inbox", &werr);
			envelope_opened_clear(&opened);
			free(bytes);
			return;
		}
		if (inserted) {
			p->stored_new = true;
			store_row_from_inbox_add(&p->row, &f, bytes, len, d->seq, d->rule, received);
			p->alert = opened.alert;
			opened.alert = NULL; /* kept for the push */
			bytes = NULL;
		} else {
			log_debug("event=alert.redelivered alert=%s seq=%llu", f.alert_id, (unsigned long long)d->seq);
		}
	} else {
		char id[XBA_UUID_LEN + 1];

		if (opened.alert != NULL && opened.alert->id != NULL)
			snprintf(id, sizeof(id), "%s", opened.alert->id);
		else
			envelope_claimed_id(d->envelope, id);
		snprintf(delivered_id, sizeof(delivered_id), "%s", id);
		p->quarantined = true;
		p->code = frame_error_code_for_alert(rc);
		agent_error_field(err.msg, p->field, sizeof(p->field));
		snprintf(p->message, sizeof(p->message), "seq %llu alert %s quarantined by %s: %.400s",
		    (unsigned long long)d->seq, id[0] ? id : "(undecodable)", agent->config->node_id, err.msg);
		if (store_quarantine_add(agent->store, d->seq, (int)p->code, err.msg, id[0] ? id : NULL, d->rule, bytes,
			len, received, &werr) != 0) {
			store_write_failed(agent, "quarantine", &werr);
			envelope_opened_clear(&opened);
			free(bytes);
			return;
		}
	}
	envelope_opened_clear(&opened);
	free(bytes);
	delivery_end(u, p, delivered_id);
}

/* A delivery inside a frame that did not decode, whose element does not decode alone either: no envelope could be
 * verified, so it is held in the quarantine as MALFORMED_FRAME with whatever envelope bytes it had (they can never
 * be released), acknowledged and named as refused like any delivery this agent refuses (§2.4): the broker records
 * REFUSED and the sender learns that this country's officers do not have the alert. */
static void
quarantine_malformed(struct agent *agent, const struct frame_delivery_view *v)
{
	struct uplink *u = agent->uplink;
	struct xba_error werr = { 0 };
	struct delivered *p;
	Xba__V1__Envelope *envelope = NULL;
	const char *why;
	char rule[sizeof(p->row.rule)]; /* the store's column for a rule name */
	size_t n = v->rule_len < sizeof(rule) - 1 ? v->rule_len : sizeof(rule) - 1;

	if ((p = delivery_begin(agent, v->seq, v->emergency)) == NULL)
		return;
	/* The rule is as the frame had it: kept only for display, so anything but printable ASCII becomes '?'. */
	for (size_t i = 0; i < n; i++)
		rule[i] = v->rule[i] >= 0x20 && v->rule[i] < 0x7f ? (char)v->rule[i] : '?';
	rule[n] = '\0';
	if (v->envelope == NULL)
		why = "the delivery does not decode: it has no envelope";
	else if ((envelope = xba__v1__envelope__unpack(NULL, v->envelope_len, v->envelope)) == NULL)
		why = "the delivery does not decode: its envelope is not a protobuf Envelope";
	else
		why = "the delivery does not decode (protobuf)";
	xba__v1__envelope__free_unpacked(envelope, NULL);
	p->quarantined = true;
	p->code = XBA__V1__ERROR_CODE__MALFORMED_FRAME;
	snprintf(p->field, sizeof(p->field), "deliver");
	snprintf(p->message, sizeof(p->message), "seq %llu quarantined by %s: %s", (unsigned long long)v->seq,
	    agent->config->node_id, why);
	if (store_quarantine_add(agent->store, v->seq, (int)p->code, why, NULL, v->rule != NULL ? rule : NULL,
		v->envelope, v->envelope_len, uplink_signing_now(agent->uplink), &werr) != 0) {
		store_write_failed(agent, "quarantine", &werr);
		return;
	}
	delivery_end(u, p, NULL);
}

/*
 * A frame that did not decode (why) may still carry deliveries, and skipping them would let the next cumulative
 * DeliveryAck tell the broker that this node stored what it never saw.  Each delivery the wire format still shows
 * is answered for: one whose element decodes alone is handled as if it had come alone, any other is quarantined.
 * When the frame cannot be walked to its deliveries, the session is dropped before anything after it is
 * acknowledged: the broker sends them again from this node's cursor, and the agent says so at every attempt.
 * False when the frame carries no deliveries at all (the caller reports it as before).
 */
static bool
answer_undecodable(struct agent *agent, const uint8_t *bytes, size_t len, const struct xba_error *why)
{
	struct uplink *u = agent->uplink;
	struct frame_delivery_view *views = NULL;
	struct xba_error err = { 0 };
	size_t n = 0, quarantined = 0;
	char quoted[600], decode[600];

	if (frame_scan_deliveries(bytes, len, NULL, 0, &n, &err) == 0 && n == 0)
		return false;
	if (err.code == 0 && (views = calloc(n, sizeof(*views))) == NULL)
		xba_error_set(&err, XBA_ENOMEM, "no memory for %zu deliveries", n);
	if (err.code != 0 || frame_scan_deliveries(bytes, len, views, n, &n, &err) != 0) {
		log_warnx("event=broker.undecodable_deliveries reason=%s decode=%s through_seq=%llu action=\"reconnecting "
			  "without acknowledging past this frame; the broker sends it again (a broker that keeps sending it "
			  "needs fixing: nothing after it reaches this node)\"",
		    log_quote(quoted, sizeof(quoted), err.msg), log_quote(decode, sizeof(decode), why->msg),
		    (unsigned long long)u->turn_through);
		if (u->state == UPLINK_UP)
			send_error(u, XBA__V1__ERROR_CODE__MALFORMED_FRAME, "deliver", 0, err.msg);
		want_drop(u, "undecodable-deliveries", false);
		free(views);
		return true;
	}
	for (size_t i = 0; i < n && !u->store_failed; i++) {
		Xba__V1__Deliver *d = xba__v1__deliver__unpack(NULL, views[i].element_len, views[i].element);

		if (d != NULL && d->envelope != NULL) {
			handle_deliver(agent, d);
		} else {
			quarantine_malformed(agent, &views[i]);
			quarantined++;
		}
		if (d != NULL)
			xba__v1__deliver__free_unpacked(d, NULL);
	}
	log_warnx("event=broker.bad_frame code=%s deliveries=%zu quarantined=%zu reason=%s",
	    frame_error_code_name(frame_error_code_for_frame(why->code)), n, quarantined,
	    log_quote(quoted, sizeof(quoted), why->msg));
	/* §2.11: the frame itself is reported too (each quarantined delivery gets its own Error after the commit). */
	snprintf(quoted, sizeof(quoted), "%.400s; its %zu deliveries were answered for one by one", why->msg, n);
	send_error(u, frame_error_code_for_frame(why->code), "deliver", 0, quoted);
	free(views);
	return true;
}

/* After the commit: DeliveryAck + Credit, quarantine reports, logs and pushes. */
static void
acknowledge_deliveries(struct agent *agent)
{
	struct uplink *u = agent->uplink;
	Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
	Xba__V1__DeliveryAck ack = XBA__V1__DELIVERY_ACK__INIT;
	Xba__V1__Credit credit = XBA__V1__CREDIT__INIT;
	Xba__V1__DeliveryRefusal *refusals = NULL, **refused = NULL;
	uint64_t *seqs = NULL;
	size_t n_seqs = 0, n_refused = 0;

	if (u->n_turn == 0)
		return;
	u->through_seq = u->turn_through;
	memcpy(u->through_id, u->turn_through_id, sizeof(u->through_id));
	if ((seqs = calloc(u->n_turn, sizeof(*seqs))) != NULL) {
		for (size_t i = 0; i < u->n_turn; i++)
			if (u->turn[i].emergency && u->turn[i].seq > u->through_seq)
				seqs[n_seqs++] = u->turn[i].seq;
	}
	/* §2.5: what went to the quarantine is acknowledged (the queue moves) and named as refused, so that the
	 * broker records REFUSED, not DELIVERED, and the sender learns that this node's officers do not have it. */
	if ((refusals = calloc(u->n_turn, sizeof(*refusals))) != NULL &&
	    (refused = calloc(u->n_turn, sizeof(*refused))) != NULL) {
		for (size_t i = 0; i < u->n_turn; i++) {
			if (!u->turn[i].quarantined)
				continue;
			xba__v1__delivery_refusal__init(&refusals[n_refused]);
			refusals[n_refused].seq = u->turn[i].seq;
			refusals[n_refused].code = u->turn[i].code;
			refused[n_refused] = &refusals[n_refused];
			n_refused++;
		}
	}
	if (u->state == UPLINK_UP && u->drop_reason == NULL) {
		int64_t held = clock_mono_ms() - u->turn_last_mono;

		ack.through_seq = u->through_seq;
		/* This store's commit (a slow disk) is not the link's delay: the broker takes it out (linkwindow.c). */
		ack.held_ms = held < 0 ? 0 : held > UINT32_MAX ? UINT32_MAX : (uint32_t)held;
		ack.seqs = seqs;
		ack.n_seqs = n_seqs;
		ack.refused = refused;
		ack.n_refused = n_refused;
		frame.body_case = XBA__V1__FRAME__BODY_DELIVERY_ACK;
		frame.delivery_ack = &ack;
		/* Every Deliver used one credit, redeliveries and quarantined ones included: all are grant back. */
		credit.grant = (uint32_t)u->n_turn;
		if (send_frame(u, &frame) != 0) {
			want_drop(u, "send-failed", false);
		} else {
			frame.body_case = XBA__V1__FRAME__BODY_CREDIT;
			frame.credit = &credit;
			if (send_frame(u, &frame) != 0)
				want_drop(u, "send-failed", false);
			else
				u->window += credit.grant;
		}
		if (u->credit_exceeded)
			send_error(u, XBA__V1__ERROR_CODE__CREDIT_EXCEEDED, "deliver", 0,
			    "a Deliver arrived while this node's window was 0");
	}
	u->credit_exceeded = false;
	free(seqs);
	free(refused);
	free(refusals);
	for (size_t i = 0; i < u->n_turn; i++) {
		struct delivered *p = &u->turn[i];

		if (p->quarantined) {
			char quoted[700];

			log_warnx("event=alert.quarantined seq=%llu code=%s field=%s reason=%s",
			    (unsigned long long)p->seq, frame_error_code_name(p->code), p->field[0] ? p->field : "-",
			    log_quote(quoted, sizeof(quoted), p->message));
			if (u->state == UPLINK_UP && u->drop_reason == NULL)
				send_error(u, p->code, p->field, 0, p->message);
		} else if (p->stored_new) {
			char rule[2 * sizeof(p->row.rule) + 2]; /* the broker's word: quoted like any text from the network */

			log_info("event=alert.received alert=%s origin=%s seq=%llu rule=%s category=%s severity=%s "
				 "emergency=%s",
			    p->row.alert_id, p->row.origin, (unsigned long long)p->seq,
			    p->row.rule[0] ? log_quote(rule, sizeof(rule), p->row.rule) : "-",
			    p->row.category ? alert_enum_name(ALERT_ENUM_CATEGORY, p->row.category) : "-",
			    p->row.severity ? alert_enum_name(ALERT_ENUM_SEVERITY, p->row.severity) : "-",
			    p->alert->emergency ? "true" : "false");
			local_push_alert(agent, &p->row, p->alert);
		}
	}
}

/* A DeliveryAck that carries only released seqs; 0, or -1 with the session marked for dropping. */
static int
send_releases(struct uplink *u, uint64_t *seqs, size_t n)
{
	Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
	Xba__V1__DeliveryAck ack = XBA__V1__DELIVERY_ACK__INIT;

	ack.through_seq = u->through_seq; /* nothing new: the broker ignores a cursor it has */
	ack.released = seqs;
	ack.n_released = n;
	frame.body_case = XBA__V1__FRAME__BODY_DELIVERY_ACK;
	frame.delivery_ack = &ack;
	if (send_frame(u, &frame) != 0) {
		want_drop(u, "send-failed", false);
		return -1;
	}
	return 0;
}

/*
 * Tell the broker of deliveries released from the quarantine since it recorded them REFUSED (DeliveryAck.released,
 * §2.5), so that the sender's `xba track` says DELIVERED and an emergency's sender gets its DELIVERED receipt.
 * Called from uplink_tick, between turns, on an open session.  A report lost with a dropped connection is sent
 * again after the next Welcome (repeat_releases).
 */
static void
report_releases(struct agent *agent)
{
	struct uplink *u = agent->uplink;
	uint64_t seqs[UPLINK_RELEASE_BATCH];
	struct xba_error err = { 0 };
	size_t n = 0;

	if (store_quarantine_unreported(agent->store, seqs, UPLINK_RELEASE_BATCH, &n, &err) != 0) {
		char quoted[600];

		log_warnx("event=store.read_failed op=releases error=%s action=\"retried at the next session\"",
		    log_quote(quoted, sizeof(quoted), err.msg));
		u->report_releases = false;
		return;
	}
	if (n == 0) {
		u->report_releases = false;
		return;
	}
	if (send_releases(u, seqs, n) != 0)
		return;
	if (store_quarantine_reported(agent->store, seqs, n, &err) != 0) {
		/* Sent again at the next session; the broker changes only what is still REFUSED. */
		char quoted[600];

		log_warnx("event=store.write_failed op=releases_reported error=%s",
		    log_quote(quoted, sizeof(quoted), err.msg));
		u->report_releases = false;
		return;
	}
	log_info("event=releases.reported count=%zu first_seq=%llu", n, (unsigned long long)seqs[0]);
	u->report_releases = n == UPLINK_RELEASE_BATCH;
}

/*
 * A release report travels in a DeliveryAck, which the broker does not answer: one sent just before the connection
 * dropped can be lost, and the broker would keep saying REFUSED for a delivery the officers now have.  So at each
 * new session the releases of the last 30 days (the newest 256) are reported once more.  The broker changes only
 * what it still records as REFUSED, so a repeat is harmless.
 */
static void
repeat_releases(struct agent *agent)
{
	struct uplink *u = agent->uplink;
	uint64_t seqs[UPLINK_RELEASE_BATCH];
	struct xba_error err = { 0 };
	size_t n = 0;

	u->repeat_releases = false;
	if (store_quarantine_reported_since(agent->store, clock_now_ms() - UPLINK_RELEASE_REPEAT_MS, seqs,
	    UPLINK_RELEASE_BATCH, &n, &err) != 0) {
		char quoted[600];

		log_warnx("event=store.read_failed op=releases error=%s action=\"repeated at the next session\"",
		    log_quote(quoted, sizeof(quoted), err.msg));
		return;
	}
	if (n == 0)
		return;
	if (send_releases(u, seqs, n) != 0)
		return;
	log_info("event=releases.repeated count=%zu newest_seq=%llu", n, (unsigned long long)seqs[0]);
}

void
uplink_releases_pending(struct agent *agent)
{
	agent->uplink->report_releases = true;
}

static void
clear_turn(struct uplink *u)
{
	for (size_t i = 0; i < u->n_turn; i++) {
		store_row_clear(&u->turn[i].row);
		alert_free(u->turn[i].alert);
	}
	u->n_turn = 0;
	u->n_outcomes = 0;
	for (size_t i = 0; i < u->n_receipts; i++)
		frame_free(u->receipts[i]);
	u->n_receipts = 0;
	u->in_transaction = false;
	u->store_failed = false;
	u->turn_through = u->through_seq;
	memcpy(u->turn_through_id, u->through_id, sizeof(u->turn_through_id));
}

/* The highest seq this turn stored (inbox or quarantine); 0 when none. */
static uint64_t
turn_highest_seq(const struct uplink *u)
{
	uint64_t high = 0;

	for (size_t i = 0; i < u->n_turn; i++)
		if (u->turn[i].seq > high)
			high = u->turn[i].seq;
	return high;
}

/* Commit this turn's writes, then make them known: to the broker, to the log, to the officers. */
static void
finish_turn(struct agent *agent)
{
	struct uplink *u = agent->uplink;
	struct xba_error err = { 0 };
	bool committed = false;

	if (u->in_transaction) {
		if (u->store_failed) {
			store_rollback(agent->store);
		} else if (store_set_through_seq(agent->store, u->turn_through, &err) != 0 ||
		    store_set_through_alert_id(agent->store, u->turn_through, u->turn_through_id, &err) != 0 ||
		    store_note_held(agent->store, turn_highest_seq(u), &err) != 0 ||
		    store_commit(agent->store, &err) != 0) {
			store_write_failed(agent, "commit", &err);
			store_rollback(agent->store);
		} else {
			committed = true;
			agent_store_ok(agent);
		}
	}
	/* A turn whose transaction could not even begin (a store locked by another program, a full disk) dropped its
	 * deliveries unstored: without a new session, the next delivery's cursor would pass them, and the broker mark
	 * them delivered. */
	if ((u->in_transaction && !committed) || (!u->in_transaction && u->store_failed)) {
		/* Nothing of this turn is durable: acknowledge none of it; the broker redelivers on the next session
		 * and the outbox rows stay queued (a resend gets DUPLICATE). */
		log_warnx("event=store.batch_failed deliveries=%zu answers=%zu action=\"reconnecting; nothing was "
			  "acknowledged\"", u->n_turn, u->n_outcomes);
		want_drop(u, "store-failed", false);
		clear_turn(u);
		return;
	}
	if (committed) {
		acknowledge_deliveries(agent);
		for (size_t i = 0; i < u->n_outcomes; i++) {
			const struct outcome *o = &u->outcomes[i];
			char quoted[600];

			if (o->accepted) {
				log_info("event=alert.accepted alert=%s seq=%llu recipients=%u result=%s%s", o->alert_id,
				    (unsigned long long)o->seq, o->recipients, frame_error_code_name(o->result),
				    o->recipients == 0 ? " warning=\"journaled, but the rules chose no recipient\"" : "");
				local_push_publish_event(agent, o->alert_id, XBA__V1__PUBLISH_STATE__PUBLISH_STATE_ACCEPTED,
				    o->result, o->seq, o->recipients, "", "");
			} else {
				char quoted_field[160];

				log_warnx("event=alert.refused alert=%s code=%s field=%s reason=%s", o->alert_id,
				    frame_error_code_name(o->result),
				    log_quote(quoted_field, sizeof(quoted_field), o->field[0] ? o->field : "-"),
				    log_quote(quoted, sizeof(quoted), o->message));
				local_push_publish_event(agent, o->alert_id, XBA__V1__PUBLISH_STATE__PUBLISH_STATE_REFUSED,
				    o->result, 0, 0, o->message, o->field);
			}
		}
		for (size_t i = 0; i < u->n_receipts; i++)
			local_push_receipt(agent, u->receipts[i]->receipt);
	}
	clear_turn(u);
}

/* ---- other frames ----------------------------------------------------------------------------------------- */

/*
 * The broker's own strings (its id, messages, receipts, track answers, the rule it names) are its word, signed by
 * nobody: their control characters go before anything logs, stores, pushes or shows them, so that a broker with a
 * stolen key cannot clear an officer's screen, paint a forged alert line on it, or split the agent's log records.
 * The alerts themselves are signed and shown as untrusted text (display.c).  Replaced in place, byte for byte.
 */
static void
scrub_broker_text(Xba__V1__Frame *f)
{
	switch (f->body_case) {
	case XBA__V1__FRAME__BODY_WELCOME:
		syntax_scrub_controls(f->welcome->broker_id);
		syntax_scrub_controls(f->welcome->rules_version);
		break;
	case XBA__V1__FRAME__BODY_PUBLISH_ACK:
		syntax_scrub_controls(f->publish_ack->alert_id);
		syntax_scrub_controls(f->publish_ack->message);
		syntax_scrub_controls(f->publish_ack->field);
		break;
	case XBA__V1__FRAME__BODY_DELIVER:
		syntax_scrub_controls(f->deliver->rule);
		break;
	case XBA__V1__FRAME__BODY_DELIVER_BATCH:
		for (size_t i = 0; i < f->deliver_batch->n_deliveries; i++)
			syntax_scrub_controls(f->deliver_batch->deliveries[i]->rule);
		break;
	case XBA__V1__FRAME__BODY_ERROR:
		syntax_scrub_controls(f->error->message);
		syntax_scrub_controls(f->error->field);
		break;
	case XBA__V1__FRAME__BODY_RECEIPT:
		syntax_scrub_controls(f->receipt->alert_id);
		syntax_scrub_controls(f->receipt->node_id);
		syntax_scrub_controls(f->receipt->officer);
		syntax_scrub_controls(f->receipt->note);
		break;
	case XBA__V1__FRAME__BODY_STATUS_REPLY:
		syntax_scrub_controls(f->status_reply->rules_version);
		for (size_t i = 0; i < f->status_reply->n_nodes; i++) {
			syntax_scrub_controls(f->status_reply->nodes[i]->node_id);
			syntax_scrub_controls(f->status_reply->nodes[i]->role);
		}
		break;
	case XBA__V1__FRAME__BODY_TRACK_REPLY:
		syntax_scrub_controls(f->track_reply->alert_id);
		for (size_t i = 0; i < f->track_reply->n_recipients; i++) {
			syntax_scrub_controls(f->track_reply->recipients[i]->node_id);
			syntax_scrub_controls(f->track_reply->recipients[i]->rule);
			syntax_scrub_controls(f->track_reply->recipients[i]->reason);
			syntax_scrub_controls(f->track_reply->recipients[i]->officer);
		}
		break;
	default:
		break;
	}
}

static void
handle_receipt(struct agent *agent, Xba__V1__Frame **framep)
{
	struct uplink *u = agent->uplink;
	const Xba__V1__Receipt *r = (*framep)->receipt;
	struct xba_error err = { 0 };
	char officer[300], note[300];

	/* alert and node stay unquoted, as every other record writes them (grep alert=ID); the frame's strings have
	 * lost their control characters already (scrub_broker_text). */
	(r->kind == XBA__V1__RECEIPT_KIND__RECEIPT_KIND_REFUSED ? log_warnx : log_info)(
	    "event=receipt.received alert=%s node=%s kind=%s officer=%s%s%s", r->alert_id, r->node_id,
	    r->kind == XBA__V1__RECEIPT_KIND__RECEIPT_KIND_DELIVERED       ? "delivered"
	    : r->kind == XBA__V1__RECEIPT_KIND__RECEIPT_KIND_ACKNOWLEDGED ? "acknowledged"
	    : r->kind == XBA__V1__RECEIPT_KIND__RECEIPT_KIND_REFUSED      ? "refused"
									  : "unknown",
	    log_quote(officer, sizeof(officer), r->officer),
	    r->kind == XBA__V1__RECEIPT_KIND__RECEIPT_KIND_REFUSED ? " code=" : "",
	    r->kind == XBA__V1__RECEIPT_KIND__RECEIPT_KIND_REFUSED ? log_quote(note, sizeof(note), r->note) : "");
	if (ensure_transaction(agent) != 0)
		return;
	if (store_receipt_add(agent->store, r->alert_id, r->node_id, (int)r->kind, r->time_ms, r->officer, r->note,
		&err) != 0) {
		store_write_failed(agent, "receipt", &err);
		return;
	}
	if (!grow((void **)&u->receipts, &u->cap_receipts, u->n_receipts, sizeof(*u->receipts)))
		return;
	u->receipts[u->n_receipts++] = *framep;
	*framep = NULL; /* kept until the push */
}

static void
handle_track_reply(struct agent *agent, Xba__V1__TrackReply *reply)
{
	struct uplink *u = agent->uplink;
	struct pending_track *best = NULL;

	/* Replies come in request order (§2.10): the oldest request for this id is the one answered. */
	for (size_t i = 0; i < UPLINK_TRACKS; i++) {
		struct pending_track *t = &u->tracks[i];

		if (t->used && !t->region && strcmp(t->alert_id, reply->alert_id) == 0 &&
		    (best == NULL || t->deadline_mono < best->deadline_mono))
			best = t;
	}
	if (best == NULL) {
		log_debug("event=broker.unexpected_track_reply alert=%s", reply->alert_id);
		return;
	}
	{
		Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;

		/* What the broker cannot say: a recipient still "queued" that this agent's region.yaml no longer lists
		 * will not be delivered when its agent connects, but only if the working group puts it back. */
		for (size_t i = 0; i < reply->n_recipients; i++)
			reply->recipients[i]->not_in_region = reply->recipients[i]->node_id != NULL &&
			    directory_node(agent->dir, reply->recipients[i]->node_id) == NULL;
		frame.ref = best->ref;
		frame.body_case = XBA__V1__LOCAL_FRAME__BODY_TRACK_REPLY;
		frame.track_reply = reply;
		best->used = false;
		local_send(agent, &best->peer, &frame);
	}
}

/* A StatusReply carries no request id; only one is asked at a time (forward_request), and it answers everyone
 * waiting for one. */
static void
handle_status_reply(struct agent *agent, Xba__V1__StatusReply *reply)
{
	struct uplink *u = agent->uplink;
	size_t answered = 0;

	for (size_t i = 0; i < UPLINK_TRACKS; i++) {
		struct pending_track *t = &u->tracks[i];
		Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;

		if (!t->used || !t->region)
			continue;
		frame.ref = t->ref;
		frame.body_case = XBA__V1__LOCAL_FRAME__BODY_REGION_STATUS_REPLY;
		frame.region_status_reply = reply;
		t->used = false;
		local_send(agent, &t->peer, &frame);
		answered++;
	}
	if (answered == 0)
		log_debug("event=broker.unexpected_status_reply nodes=%zu", reply->n_nodes);
}

static void
handle_error(struct agent *agent, const Xba__V1__Error *e)
{
	struct uplink *u = agent->uplink;
	struct inflight p;
	char quoted[600], quoted_field[160];

	log_warnx("event=broker.error code=%s field=%s ref=%llu message=%s", frame_error_code_name(e->code),
	    log_quote(quoted_field, sizeof(quoted_field), e->field[0] ? e->field : "-"), (unsigned long long)e->ref,
	    log_quote(quoted, sizeof(quoted), e->message));
	if (u->state == UPLINK_HELLO_SENT) {
		/* The broker refused the Hello (§2.2). */
		if (e->code == XBA__V1__ERROR_CODE__UNSUPPORTED_VERSION || e->code == XBA__V1__ERROR_CODE__WRONG_SIGNER) {
			log_warnx("event=link.refused code=%s action=\"%s\"", frame_error_code_name(e->code),
			    e->code == XBA__V1__ERROR_CODE__WRONG_SIGNER
				? "this CURVE key belongs to another node in the broker's region.yaml: check node_id and "
				  "curve_secret_key in agent.yaml"
				: "the broker does not speak this agent's protocol version: upgrade");
			snprintf(u->link_problem, sizeof(u->link_problem), "the broker refuses this agent's Hello (%s): %s",
			    frame_error_code_name(e->code), e->code == XBA__V1__ERROR_CODE__WRONG_SIGNER
				? "its CURVE key is another node's in the broker's region.yaml; check node_id and "
				  "curve_secret_key in agent.yaml"
				: "the broker does not speak this agent's protocol version: upgrade");
			want_drop(u, "hello-refused", true);
		} else {
			want_drop(u, "hello-refused", false);
		}
		return;
	}
	if (e->code == XBA__V1__ERROR_CODE__NOT_READY) {
		/* The broker does not know this connection's session (a transparent reconnect, a broker restart):
		 * start over with a new socket and Hello; whatever was in flight is resent from the outbox. */
		want_drop(u, "session-lost", false);
		return;
	}
	if (e->ref != 0 && take_inflight(u, e->ref, &p)) {
		/* §2.11: an Error answering a Publish means it was not processed. */
		if (frame_error_code_transient(e->code)) {
			pause_publishing(agent, &p, e->code, e->message);
		} else if (ensure_transaction(agent) == 0) {
			struct xba_error err = { 0 };
			int rc = record_refusal(agent, &p, e->code, e->message, e->field, &err);

			if (strcmp(u->held_behind.alert_id, p.alert_id) == 0)
				memset(&u->held_behind, 0, sizeof(u->held_behind));
			if (rc == 0 && !p.republished)
				record_outcome(agent, p.alert_id, false, e->code, 0, 0, e->message, e->field);
			else if (rc != XBA_ENOTFOUND)
				store_write_failed(agent, "refused", &err);
		}
	}
}

/* The broker said its wall clock reads time_ms (0: a broker that does not say), and how far its nodes' median is
 * from it.  Warned once a session, against the region's clock (the broker's, or its nodes' when it doubts its own). */
static void
broker_clock_heard(struct uplink *u, int64_t time_ms, int64_t nodes_offset_ms)
{
	int64_t offset;

	/* The broker's word, bounded (before 2100, a century either way) so that no sum can overflow. */
	if (time_ms <= 0 || time_ms > UPLINK_CLOCK_MAX_MS || nodes_offset_ms > UPLINK_CLOCK_MAX_MS ||
	    nodes_offset_ms < -UPLINK_CLOCK_MAX_MS)
		return;
	u->broker_clock_known = true;
	u->broker_clock_ms = time_ms;
	u->broker_clock_mono = clock_mono_ms();
	u->nodes_offset_ms = nodes_offset_ms;
	offset = time_ms + nodes_offset_ms - clock_now_ms();
	if ((offset > UPLINK_CLOCK_WARN_MS || offset < -UPLINK_CLOCK_WARN_MS) && !u->clock_warned) {
		log_warnx("event=clock.offset offset_ms=%lld action=\"%s\"", (long long)offset, offset > 0
		    ? "this machine's clock is behind the broker's: fix it (NTP); meanwhile alerts from here are signed "
		      "with the region's time"
		    : "this machine's clock is ahead of the broker's: fix it (NTP), or, if it is right (timedatectl), the "
		      "broker's is behind: tell the secretariat; meanwhile alerts from here are signed with the region's "
		      "time");
		u->clock_warned = true;
	}
}

bool
uplink_broker_now(const struct uplink *u, int64_t *broker_now_ms)
{
	if (u == NULL || !u->broker_clock_known)
		return false;
	*broker_now_ms = u->broker_clock_ms + u->nodes_offset_ms + (clock_mono_ms() - u->broker_clock_mono);
	return true;
}

int64_t
uplink_signing_now(const struct uplink *u)
{
	int64_t now = clock_now_ms(), region, earliest, latest;

	/* While the broker doubts its clock, this machine's may agree with either the broker's or the nodes' median:
	 * two nodes lying about theirs must not make a right clock sign wrong times (protocol §2.7). */
	if (!uplink_broker_now(u, &region) || !uplink_broker_window(u, &earliest, &latest) ||
	    (now >= earliest - UPLINK_CLOCK_WARN_MS && now <= latest + UPLINK_CLOCK_WARN_MS))
		return now;
	return region;
}

bool
uplink_broker_window(const struct uplink *u, int64_t *earliest_ms, int64_t *latest_ms)
{
	int64_t raw;

	if (u == NULL || !u->broker_clock_known)
		return false;
	raw = u->broker_clock_ms + (clock_mono_ms() - u->broker_clock_mono);
	*earliest_ms = u->nodes_offset_ms < 0 ? raw + u->nodes_offset_ms : raw;
	*latest_ms = u->nodes_offset_ms > 0 ? raw + u->nodes_offset_ms : raw;
	return true;
}


/* The broker's journal was restored from a backup: acknowledgements of alerts it lost may wait (ack_waits_for_alert). */
static void
note_restore_seen(struct agent *agent)
{
	struct xba_error err = { 0 };

	if (ensure_transaction(agent) == 0 &&
	    store_note_restore_seen(agent->store, uplink_signing_now(agent->uplink), &err) != 0)
		agent->uplink->store_failed = true;
}

static void
requeue_after_restore(struct agent *agent)
{
	struct uplink *u = agent->uplink;
	struct xba_error err = { 0 };
	uint64_t count = 0;
	int64_t now;
	char quoted[600];

	if (ensure_transaction(agent) != 0)
		return;
	/* In the region's time, as the answers' times were recorded (a clock known to be off signs with it). */
	now = uplink_signing_now(agent->uplink);
	if (store_outgoing_requeue_after(agent->store, 0, now - (int64_t)RESTORE_REQUEUE_DAYS * 86400 * 1000, now, &count,
	    &err) != 0) {
		log_warnx("event=store.error op=requeue_after_restore error=%s", log_quote(quoted, sizeof(quoted), err.msg));
		u->store_failed = true;
		return;
	}
	log_warnx("event=outbox.requeued count=%llu last_accepted_seq=%llu reason=\"the broker's journal lacks the last "
		  "alert it accepted from here (restored from a backup): what it accepted in the last %d days is published "
		  "again, the same alerts and acknowledgements; what it still has is answered DUPLICATE, and recipients "
		  "that have them ignore them\"", (unsigned long long)count, (unsigned long long)u->last_accepted_seq,
	    RESTORE_REQUEUE_DAYS);
	u->last_accepted_seq = 0;
	u->last_accepted_id[0] = '\0';
	u->acks_retry_ms = UPLINK_ACK_RETRY_MIN_MS;
	note_restore_seen(agent);
}

static void
handle_welcome(struct agent *agent, const Xba__V1__Welcome *w)
{
	struct uplink *u = agent->uplink;
	struct store_stats stats = { 0 };

	if (w->protocol_version != XBA_PROTOCOL_VERSION) {
		log_warnx("event=link.refused reason=\"the broker chose protocol version %u; this agent speaks %d\"",
		    w->protocol_version, XBA_PROTOCOL_VERSION);
		want_drop(u, "protocol-version", true);
		return;
	}
	u->state = UPLINK_UP;
	u->up_mono = clock_mono_ms();
	link_window_reset(&u->link, UPLINK_MAX_INFLIGHT, u->up_mono);
	u->link_problem[0] = '\0';
	u->link_since_wall = uplink_signing_now(agent->uplink);
	u->heartbeat_ms = w->heartbeat_ms > 0 ? w->heartbeat_ms : (uint32_t)agent->config->heartbeat_ms;
	u->max_frame_bytes = w->max_frame_bytes >= 4096 ? w->max_frame_bytes : FRAME_MAX_BYTES_DEFAULT;
	snprintf(u->broker_id, sizeof(u->broker_id), "%s", w->broker_id);
	snprintf(u->rules_version, sizeof(u->rules_version), "%s", w->rules_version);
	/* Both go into log records unquoted, and into `xba status`: an id's characters only. */
	for (char *c = u->broker_id; *c != '\0'; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
			*c = '?';
	for (char *c = u->rules_version; *c != '\0'; c++)
		if (!isxdigit((unsigned char)*c))
			*c = '?';
	u->clock_warned = false;
	broker_clock_heard(u, w->time_ms, w->nodes_offset_ms);
	u->report_releases = true; /* any the last session did not get to */
	u->repeat_releases = true; /* and those it may have lost */
	u->n_inflight = 0;
	u->last_sent_id = u->last_early_id = 0;
	u->paused = false;
	u->resume_mono = 0;
	u->held_refusals = 0;
	/* The set-apart acknowledgements stay so, tried again soon on the new session. */
	u->acks_retry_mono = u->n_parked > 0 ? clock_mono_ms() + jitter(UPLINK_ACK_RETRY_MIN_MS) : 0;
	if (w->publishes_unknown && u->last_accepted_seq > 0)
		requeue_after_restore(agent);
	if (w->rewound_from > u->through_seq) {
		/* The broker sends again what it had delivered since (node.rewound); what an officer here acknowledged
		 * meanwhile, and the cancels and updates of it, it does not: the officers must know their store is old. */
		struct xba_error err = { 0 };

		log_warnx("event=store.behind cursor=%llu broker_delivered_through=%llu reason=\"this agent's store is older "
			  "than what the broker delivered to it (restored from a backup, or lost): alerts acknowledged, "
			  "withdrawn or replaced after the backup are not shown as such here (docs/operations.md section 7)\"",
		    (unsigned long long)u->through_seq, (unsigned long long)w->rewound_from);
		u->store_behind_ms = uplink_signing_now(agent->uplink);
		if (ensure_transaction(agent) == 0 && store_note_behind(agent->store, u->store_behind_ms, &err) != 0)
			u->store_failed = true;
	}
	if (w->cursor_unknown && w->acknowledged_through < u->through_seq) {
		/*
		 * The broker's journal holds another alert at this agent's cursor seq: it was restored from a backup and
		 * has since journaled new alerts under the seqs it had lost.  Resuming from the cursor would take those
		 * new alerts as delivered here.  The broker did not mark anything delivered on the strength of it; the
		 * cursor goes back to what that journal records this agent acknowledged (before the backup, so the same
		 * history), and a second Hello from there has everything after it sent; what this agent already holds is
		 * deduplicated by alert id.
		 */
		log_warnx("event=link.cursor_reset broker=%s journal_head=%llu cursor=%llu resume_after=%llu reason=\"the "
			  "broker's journal %s (restored from a backup%s): resuming from what that journal records this agent "
			  "acknowledged\"",
		    u->broker_id, (unsigned long long)w->journal_head, (unsigned long long)u->through_seq,
		    (unsigned long long)w->acknowledged_through,
		    w->journal_head < u->through_seq ? "ends before this agent's cursor"
						     : "holds another alert at this agent's cursor",
		    w->journal_head < u->through_seq ? "" : ", its seqs since used again");
		u->through_seq = u->turn_through = w->acknowledged_through;
		u->through_id[0] = u->turn_through_id[0] = '\0';
		ensure_transaction(agent); /* finish_turn persists the cursor */
		note_restore_seen(agent);
		if (!send_hello(agent))
			want_drop(u, "hello-failed", false); /* a new session says Hello from there */
		return;
	}
	if (w->journal_head < u->through_seq) {
		/*
		 * The broker's journal is behind this agent's cursor: it was replaced or restored from a backup, or an
		 * earlier broker (one with a stolen key) delivered under seqs this journal never wrote.  Either way the
		 * cursor says nothing true about this journal, and the broker has just marked every delivery to this
		 * node through its head as delivered on the strength of it.  The cursor goes back to the highest seq
		 * of this journal's range that this agent holds, and a second Hello from there makes the broker take
		 * those marks back (protocol §2.5): what this agent does not hold is sent again, and what it does is
		 * deduplicated by alert id.
		 */
		uint64_t held = 0;
		struct xba_error err = { 0 };

		if (store_highest_held(agent->store, w->journal_head, &held, &err) != 0) {
			char quoted[600];

			log_warnx("event=store.error op=highest_held error=%s",
			    log_quote(quoted, sizeof(quoted), err.msg));
			held = w->journal_head;
		}
		log_warnx("event=link.cursor_reset broker=%s journal_head=%llu cursor=%llu resume_after=%llu reason=\"the "
			  "broker's journal is behind this agent's cursor (replaced or restored, or a broker that was not "
			  "this one delivered here): resuming from what this agent holds\"", u->broker_id,
		    (unsigned long long)w->journal_head, (unsigned long long)u->through_seq, (unsigned long long)held);
		u->through_seq = u->turn_through = held;
		u->through_id[0] = u->turn_through_id[0] = '\0';
		ensure_transaction(agent); /* finish_turn persists the cursor */
		if (!send_hello(agent))
			want_drop(u, "hello-failed", false); /* a new session says Hello from there */
		return;
	}
	store_stats(agent->store, &stats, NULL);
	log_info("event=link.up broker=%s endpoint=%s journal_head=%llu resume_after=%llu outbox=%llu "
		 "heartbeat_ms=%u rules_version=%.12s",
	    u->broker_id[0] ? u->broker_id : "-", u->endpoint_log, (unsigned long long)w->journal_head,
	    (unsigned long long)u->through_seq, (unsigned long long)stats.outbox_depth, u->heartbeat_ms,
	    u->rules_version);
}

static void
handle_heartbeat(struct agent *agent, const Xba__V1__Heartbeat *hb)
{
	broker_clock_heard(agent->uplink, hb->time_ms, hb->nodes_offset_ms);
}

static void
handle_frame(struct agent *agent, const uint8_t *bytes, size_t len)
{
	struct uplink *u = agent->uplink;
	struct xba_error err = { 0 };
	Xba__V1__Frame *frame;

	frame = frame_decode(bytes, len, u->max_frame_bytes ? u->max_frame_bytes : FRAME_MAX_BYTES_DEFAULT, NULL, &err);
	if (frame == NULL) {
		Xba__V1__ErrorCode code = frame_error_code_for_frame(err.code);
		char field[64], quoted[600];

		if (u->state == UPLINK_UP && answer_undecodable(agent, bytes, len, &err))
			return;
		log_warnx("event=broker.bad_frame code=%s reason=%s", frame_error_code_name(code),
		    log_quote(quoted, sizeof(quoted), err.msg));
		agent_error_field(err.msg, field, sizeof(field));
		if (u->state == UPLINK_UP)
			send_error(u, code, field, 0, err.msg);
		return;
	}
	if (u->state == UPLINK_HELLO_SENT && frame->body_case != XBA__V1__FRAME__BODY_WELCOME &&
	    frame->body_case != XBA__V1__FRAME__BODY_ERROR) {
		log_warnx("event=broker.unexpected_frame type=%s state=hello-sent", frame_type_name(frame->body_case));
		frame_free(frame);
		return;
	}
	scrub_broker_text(frame);
	switch (frame->body_case) {
	case XBA__V1__FRAME__BODY_WELCOME:
		if (u->state == UPLINK_HELLO_SENT)
			handle_welcome(agent, frame->welcome);
		else
			log_warnx("event=broker.unexpected_frame type=welcome state=%s", state_names[u->state]);
		break;
	case XBA__V1__FRAME__BODY_PUBLISH_ACK:
		handle_publish_ack(agent, frame->publish_ack);
		break;
	case XBA__V1__FRAME__BODY_DELIVER:
		handle_deliver(agent, frame->deliver);
		break;
	case XBA__V1__FRAME__BODY_DELIVER_BATCH:
		/* Each element exactly as if it had come alone, in order (frame_decode checked every envelope). */
		for (size_t i = 0; i < frame->deliver_batch->n_deliveries; i++)
			handle_deliver(agent, frame->deliver_batch->deliveries[i]);
		break;
	case XBA__V1__FRAME__BODY_HEARTBEAT:
		handle_heartbeat(agent, frame->heartbeat);
		break;
	case XBA__V1__FRAME__BODY_ERROR:
		handle_error(agent, frame->error);
		break;
	case XBA__V1__FRAME__BODY_RECEIPT:
		handle_receipt(agent, &frame);
		break;
	case XBA__V1__FRAME__BODY_TRACK_REPLY:
		handle_track_reply(agent, frame->track_reply);
		break;
	case XBA__V1__FRAME__BODY_STATUS_REPLY:
		handle_status_reply(agent, frame->status_reply);
		break;
	default: {
		char message[128];

		/* hello, publish, delivery_ack, credit, status_request, track_request: a node's own frames. */
		snprintf(message, sizeof(message), "a broker does not send %s frames", frame_type_name(frame->body_case));
		log_warnx("event=broker.unexpected_frame type=%s", frame_type_name(frame->body_case));
		send_error(u, XBA__V1__ERROR_CODE__UNKNOWN_FRAME_TYPE, "", 0, message);
		break;
	}
	}
	frame_free(frame);
}

/* ---- monitor ---------------------------------------------------------------------------------------------- */

#define CURVE_REFUSED "the broker refuses this agent's CURVE key"

/*
 * A CURVE handshake failed without detail, or the connection closed during it: a wrong pinned broker key
 * (broker_public_key), or a link that resets connections (a flapping satellite link, a middlebox); libzmq says the
 * same of both.  A run of them is taken for the key: UPLINK_HANDSHAKE_FAILURES_CONFIG before any handshake with the
 * pinned key has worked since the agent started (the installation case), UPLINK_HANDSHAKE_FAILURES_PROVEN after (the
 * broker's key rotated and not installed here, about half a minute of failures at the usual backoff; a flapping
 * link fails some, and came back within seconds before it was taken for a wrong key).  Then REFUSED in xba status,
 * naming both causes once the key has worked.  Before the run is long enough, the failure is only the link's:
 * session_drop logs it with the count.
 */
static void
handshake_failed(struct agent *agent, const char *reason)
{
	struct uplink *u = agent->uplink;
	unsigned n = ++u->handshake_failures;
	bool config = n >= (u->broker_key_proven ? UPLINK_HANDSHAKE_FAILURES_PROVEN : UPLINK_HANDSHAKE_FAILURES_CONFIG);

	if (config) {
		log_warnx("event=link.refused reason=%s endpoint=%s failures=%u action=\"check broker_public_key in "
			  "agent.yaml (the pinned broker key) and the broker endpoint\"", reason, u->endpoint_log, n);
		if (u->broker_key_proven)
			snprintf(u->link_problem, sizeof(u->link_problem), "the CURVE handshake with the broker has failed "
			    "%u times in a row, after working earlier: the broker's key may have been rotated (check "
			    "broker_public_key in agent.yaml against the secretariat's), or the link cuts every connection",
			    n);
		else
			snprintf(u->link_problem, sizeof(u->link_problem), "the CURVE handshake with the broker fails (%u "
			    "times in a row, never once since this agent started): check broker_public_key in agent.yaml "
			    "(has the broker's key changed?) and the endpoint", n);
	}
	want_drop(u, reason, config);
}

/*
 * The broker refused this agent's CURVE key (handshake "not admitted"): the link's problem for xba status.  The
 * handshake says only that: a new key not registered yet and a node the working group removed or suspended look
 * the same from here, so the line names both; unless a region.yaml reload showed this node a new curve_key, which
 * is then why.
 */
static void
curve_refused(struct agent *agent)
{
	struct uplink *u = agent->uplink;

	if (u->new_curve_key[0] != '\0')
		snprintf(u->link_problem, sizeof(u->link_problem), CURVE_REFUSED " (%s): the region.yaml installed here "
		    "gives this node a new curve_key (%s), a key rotation: set curve_secret_key in agent.yaml to the "
		    "matching new secret key and restart the agent (a reload does not change it; docs/operations.md "
		    "section 5)", agent->curve.public_z85, u->new_curve_key);
	else
		snprintf(u->link_problem, sizeof(u->link_problem), CURVE_REFUSED " (%s): its region.yaml does not list "
		    "it (a new key not registered yet: send it to the secretariat; key files restored from a backup older "
		    "than a key rotation: put the current ones back, never register the old key again; or this node "
		    "removed or suspended by the working group: ask the secretariat)",
		    agent->curve.public_z85);
}

/* libzmq's monitor messages: [u16 event, u32 value], [endpoint]. */
static void
handle_monitor(struct agent *agent)
{
	struct uplink *u = agent->uplink;

	while (u->monitor != NULL) {
		zmq_msg_t head, addr;
		uint16_t event;
		uint32_t value;
		int more = 0;
		size_t more_len = sizeof(more);

		zmq_msg_init(&head);
		if (zmq_msg_recv(&head, u->monitor, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&head);
			return;
		}
		zmq_getsockopt(u->monitor, ZMQ_RCVMORE, &more, &more_len);
		zmq_msg_init(&addr);
		if (more)
			zmq_msg_recv(&addr, u->monitor, 0);
		if (zmq_msg_size(&head) < 6) {
			zmq_msg_close(&head);
			zmq_msg_close(&addr);
			continue;
		}
		memcpy(&event, zmq_msg_data(&head), sizeof(event));
		memcpy(&value, (uint8_t *)zmq_msg_data(&head) + 2, sizeof(value));
		zmq_msg_close(&head);
		zmq_msg_close(&addr);
		switch (event) {
		case ZMQ_EVENT_CONNECTED:
			log_debug("event=link.tcp_connected endpoint=%s", u->endpoint_log);
			break;
		case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
			u->handshake_ok = true;
			u->handshake_failures = 0;
			u->broker_key_proven = true;
			log_debug("event=link.handshake_ok endpoint=%s", u->endpoint_log);
			break;
		case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
			/* §1.2: a configuration error an operator must fix; retried at the longest backoff. */
			log_warnx("event=link.refused reason=curve-key-not-admitted status=%u endpoint=%s action=\"the broker "
				  "does not list this node's CURVE key (%s) in its region.yaml: a new key is sent to the "
				  "secretariat; a removed or suspended node asks it\"",
			    value, u->endpoint_log, agent->curve.public_z85);
			curve_refused(agent);
			want_drop(u, "handshake-refused", true);
			break;
		case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
		case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
			handshake_failed(agent, "handshake-failed");
			break;
		case ZMQ_EVENT_DISCONNECTED:
			if (u->drop_reason != NULL)
				break; /* already explained (a handshake failure is followed by its disconnect) */
			if (u->state == UPLINK_CONNECTING && !u->handshake_ok) {
				/* A CURVE server that cannot decrypt our HELLO (wrong pinned key) just closes; so does a link
				 * cut mid-handshake. */
				handshake_failed(agent, "closed-during-handshake");
			} else {
				want_drop(u, "disconnected", false);
			}
			break;
		default:
			break;
		}
	}
}

/* ---- the loop's entry points ------------------------------------------------------------------------------ */

void
uplink_process(struct agent *agent)
{
	struct uplink *u = agent->uplink;

	if (u->socket != NULL && u->state != UPLINK_CONNECTING) {
		for (int n = 0; n < UPLINK_BATCH && u->drop_reason == NULL; n++) {
			zmq_msg_t msg;
			int more = 0;
			size_t more_len = sizeof(more);

			zmq_msg_init(&msg);
			if (zmq_msg_recv(&msg, u->socket, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&msg);
				break;
			}
			u->last_heard_mono = clock_mono_ms();
			zmq_getsockopt(u->socket, ZMQ_RCVMORE, &more, &more_len);
			if (more) {
				/* One part per frame (§1.1): a multi-part message is not a frame; drain it. */
				log_warnx("event=broker.bad_frame code=MALFORMED_FRAME reason=\"multi-part message\"");
				while (more) {
					zmq_msg_t rest;

					zmq_msg_init(&rest);
					zmq_msg_recv(&rest, u->socket, 0);
					zmq_msg_close(&rest);
					zmq_getsockopt(u->socket, ZMQ_RCVMORE, &more, &more_len);
				}
			} else {
				handle_frame(agent, zmq_msg_data(&msg), zmq_msg_size(&msg));
			}
			zmq_msg_close(&msg);
		}
	}
	finish_turn(agent);
	handle_monitor(agent);
	pump_outbox(agent);
	if (u->drop_reason != NULL) {
		session_drop(agent, u->drop_reason, u->drop_config_error);
		u->drop_reason = NULL;
		u->drop_config_error = false;
	}
}

long
uplink_tick(struct agent *agent)
{
	struct uplink *u = agent->uplink;
	int64_t now = clock_mono_ms(), next = 1000, hb;

	for (size_t i = 0; i < UPLINK_TRACKS; i++) {
		struct pending_track *t = &u->tracks[i];

		if (t->used && now >= t->deadline_mono) {
			t->used = false;
			local_send_error(agent, &t->peer, t->ref, XBA__V1__ERROR_CODE__NOT_READY, "",
			    "the broker did not answer about %s within %d s", pending_subject(t),
			    UPLINK_TRACK_TIMEOUT_MS / 1000);
		}
	}
	switch (u->state) {
	case UPLINK_WAITING:
		if (now >= u->next_attempt_mono)
			session_open(agent);
		if (u->state == UPLINK_WAITING)
			return (long)(u->next_attempt_mono - now > 0 ? u->next_attempt_mono - now : 0);
		now = clock_mono_ms();
		/* fall through: try the Hello at once */
		/* FALLTHROUGH */
	case UPLINK_CONNECTING:
		if (now - u->opened_mono >= UPLINK_WELCOME_TIMEOUT_MS) {
			session_drop(agent, u->handshake_ok ? "no-welcome" : "broker-unreachable", false);
			return 0;
		}
		send_hello(agent);
		if (u->state == UPLINK_CONNECTING) {
			/* The socket is polled for POLLOUT, which wakes the loop as soon as the connection completes
			 * (and stays set until the Hello is queued, so every wake-up tries it); the timer is only the
			 * Welcome deadline. */
			int64_t left = u->opened_mono + UPLINK_WELCOME_TIMEOUT_MS - now;

			return (long)(left < 500 ? left : 500);
		}
		/* FALLTHROUGH */
	case UPLINK_HELLO_SENT:
		if (now - u->opened_mono >= UPLINK_WELCOME_TIMEOUT_MS) {
			session_drop(agent, "no-welcome", false);
			return 0;
		}
		return (long)(u->opened_mono + UPLINK_WELCOME_TIMEOUT_MS - now);
	case UPLINK_UP:
		break;
	}
	hb = u->heartbeat_ms;
	if (now - u->last_heard_mono >= 3 * hb) {
		session_drop(agent, "heartbeat-timeout", false);
		return 0;
	}
	if (now - u->last_sent_mono >= hb) {
		Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
		Xba__V1__Heartbeat beat = XBA__V1__HEARTBEAT__INIT;

		beat.time_ms = clock_now_ms();
		frame.body_case = XBA__V1__FRAME__BODY_HEARTBEAT;
		frame.heartbeat = &beat;
		if (send_frame(u, &frame) != 0) {
			session_drop(agent, "send-failed", false);
			return 0;
		}
	}
	if (now - u->up_mono >= UPLINK_STABLE_MS)
		u->backoff_ms = agent->config->reconnect_min_ms;
	/* Between turns, on an open session: what was reported is recorded in a transaction of its own. */
	if ((u->repeat_releases || u->report_releases) && u->state == UPLINK_UP && u->drop_reason == NULL &&
	    !store_in_transaction(agent->store)) {
		if (u->repeat_releases)
			repeat_releases(agent);
		if (u->report_releases && u->drop_reason == NULL)
			report_releases(agent);
		if (u->drop_reason != NULL) {
			session_drop(agent, u->drop_reason, u->drop_config_error);
			u->drop_reason = NULL;
			return 0;
		}
	}
	if (u->paused && u->n_inflight == 0) {
		if (u->resume_mono == 0) {
			int64_t wait = u->publish_backoff_max ? agent->config->reconnect_max_ms : u->publish_backoff_ms;

			u->resume_mono = now + jitter(wait);
			u->publish_backoff_ms = u->publish_backoff_ms * 2 > agent->config->reconnect_max_ms
			    ? agent->config->reconnect_max_ms
			    : u->publish_backoff_ms * 2;
			log_info("event=publishing.paused resume_in_ms=%lld held=%u", (long long)(u->resume_mono - now),
			    u->held_refusals);
			u->held_refusals = 0;
		} else if (now >= u->resume_mono) {
			u->paused = false;
			u->resume_mono = 0;
			u->last_sent_id = u->last_early_id = 0; /* from the oldest unacknowledged entry */
			log_info("event=publishing.resumed");
			pump_outbox(agent);
			if (u->drop_reason != NULL) {
				session_drop(agent, u->drop_reason, u->drop_config_error);
				u->drop_reason = NULL;
				return 0;
			}
		}
	}
	/* Acknowledgements waiting for their alerts (ack_waits_for_alert), once nothing is in flight: a held session
	 * waits for its held alert first. */
	if (u->acks_retry_mono != 0 && now >= u->acks_retry_mono && !u->paused && u->n_inflight == 0) {
		retry_parked_acks(agent);
		if (u->drop_reason != NULL) {
			session_drop(agent, u->drop_reason, u->drop_config_error);
			u->drop_reason = NULL;
			return 0;
		}
	}
	next = u->last_sent_mono + hb - now;
	if (u->last_heard_mono + 3 * hb - now < next)
		next = u->last_heard_mono + 3 * hb - now;
	if (u->acks_retry_mono != 0 && u->acks_retry_mono - now < next)
		next = u->acks_retry_mono - now > 100 ? u->acks_retry_mono - now : 100;
	if (u->paused && u->resume_mono != 0 && u->resume_mono - now < next)
		next = u->resume_mono - now;
	if (u->paused && u->resume_mono == 0)
		next = 100; /* waiting for the answers in flight */
	if (u->report_releases)
		next = 0; /* more than one batch of releases to report */
	return (long)(next > 0 ? next : 0);
}

size_t
uplink_poll_items(struct uplink *u, zmq_pollitem_t *items, size_t max)
{
	size_t n = 0;

	if (u->socket != NULL && n < max)
		items[n++] = (zmq_pollitem_t){ u->socket, 0,
			(short)(u->state == UPLINK_CONNECTING ? ZMQ_POLLOUT : ZMQ_POLLIN), 0 };
	if (u->monitor != NULL && n < max)
		items[n++] = (zmq_pollitem_t){ u->monitor, 0, ZMQ_POLLIN, 0 };
	return n;
}

void
uplink_outbox_changed(struct agent *agent)
{
	struct uplink *u = agent->uplink;

	pump_outbox(agent);
	if (u->drop_reason != NULL) {
		session_drop(agent, u->drop_reason, u->drop_config_error);
		u->drop_reason = NULL;
		u->drop_config_error = false;
	}
}

/* Send frame, a request whose answer goes to peer with ref, and keep its slot until the answer or the deadline.
 * what names the command for the officer. */
static int
forward_request(struct agent *agent, const struct local_peer *peer, uint64_t ref, Xba__V1__Frame *frame,
    const char *alert_id, const char *what, struct xba_error *err)
{
	struct uplink *u = agent->uplink;
	struct pending_track *slot = NULL;
	bool asked = false;

	if (u->state != UPLINK_UP) {
		char since[40];

		return xba_error_set(err, XBA_EPROTO, "the link to the broker is down%s%s; `%s` asks the broker, so "
		    "try again when `xba status` shows the link up",
		    u->link_since_wall ? " since " : "",
		    u->link_since_wall ? clock_format_rfc3339(u->link_since_wall, since, sizeof(since)) : "", what);
	}
	for (size_t i = 0; i < UPLINK_TRACKS; i++) {
		if (!u->tracks[i].used && slot == NULL)
			slot = &u->tracks[i];
		/* One region status at a time is asked: the broker's answer is the same for everyone waiting, and each
		 * costs its loop a count of every queue (scripts polling from several terminals add nothing). */
		asked |= alert_id == NULL && u->tracks[i].used && u->tracks[i].region;
	}
	if (slot == NULL)
		return xba_error_set(err, XBA_EPROTO, "%d track and status requests are already waiting for the broker; "
		    "try again", UPLINK_TRACKS);
	if (!asked && send_frame(u, frame) != 0) {
		want_drop(u, "send-failed", false);
		return xba_error_set(err, XBA_EPROTO, "the link to the broker failed while sending the request");
	}
	slot->used = true;
	slot->region = alert_id == NULL;
	snprintf(slot->alert_id, sizeof(slot->alert_id), "%s", alert_id != NULL ? alert_id : "");
	slot->peer = *peer;
	slot->ref = ref;
	slot->deadline_mono = clock_mono_ms() + UPLINK_TRACK_TIMEOUT_MS;
	return 0;
}

int
uplink_track(struct agent *agent, const struct local_peer *peer, uint64_t ref, const char *alert_id,
    struct xba_error *err)
{
	Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
	Xba__V1__TrackRequest req = XBA__V1__TRACK_REQUEST__INIT;

	req.alert_id = (char *)alert_id;
	frame.body_case = XBA__V1__FRAME__BODY_TRACK_REQUEST;
	frame.track_request = &req;
	return forward_request(agent, peer, ref, &frame, alert_id, "xba track", err);
}

int
uplink_region_status(struct agent *agent, const struct local_peer *peer, uint64_t ref, struct xba_error *err)
{
	Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
	Xba__V1__StatusRequest req = XBA__V1__STATUS_REQUEST__INIT;

	frame.body_case = XBA__V1__FRAME__BODY_STATUS_REQUEST;
	frame.status_request = &req;
	return forward_request(agent, peer, ref, &frame, NULL, "xba status --region", err);
}

void
uplink_forget_peer(struct uplink *u, const struct local_peer *peer)
{
	for (size_t i = 0; i < UPLINK_TRACKS; i++) {
		struct pending_track *t = &u->tracks[i];

		if (t->used && t->peer.socket == peer->socket && t->peer.id_len == peer->id_len &&
		    memcmp(t->peer.id, peer->id, peer->id_len) == 0)
			t->used = false;
	}
}

void
uplink_status(const struct uplink *u, Xba__V1__AgentStatusReply *out)
{
	int64_t now = clock_mono_ms();

	out->link_up = u->state == UPLINK_UP;
	out->link_since_ms = u->link_since_wall;
	if (u->state == UPLINK_UP && now - u->last_heard_mono > (int64_t)u->heartbeat_ms)
		out->silent_ms = now - u->last_heard_mono;
	if (u->state == UPLINK_WAITING && u->next_attempt_mono > now)
		out->next_attempt_in_ms = u->next_attempt_mono - now;
	out->broker_id = (char *)u->broker_id;
	out->rules_version = (char *)u->rules_version;
	out->through_seq = u->through_seq;
	if (u->state != UPLINK_UP)
		out->link_problem = (char *)u->link_problem;
	if (uplink_broker_now(u, &out->clock_offset_ms)) {
		out->clock_offset_ms -= clock_now_ms();
		out->clock_offset_known = true;
	}
	if (u->store_behind_ms != 0 && uplink_signing_now(u) - u->store_behind_ms < 7 * 86400LL * 1000)
		out->store_behind_since_ms = u->store_behind_ms;
	for (size_t i = 0; i < u->n_parked; i++) {
		out->acks_waiting++;
		if (u->parked[i].until_ms > out->acks_waiting_until_ms)
			out->acks_waiting_until_ms = u->parked[i].until_ms;
	}
	if (u->held_behind.alert_id[0] != '\0') {
		out->outbox_held_alert = (char *)u->held_behind.alert_id;
		out->outbox_held_code = u->held_behind.code;
		out->outbox_held_reason = (char *)u->held_behind.message;
		out->outbox_held_since_ms = u->held_behind.since_ms;
		out->outbox_held_old_key = u->held_behind.old_key;
		out->outbox_held_key = (char *)u->held_behind.key;
	}
}

void
uplink_note_new_curve_key(struct agent *agent, const char *curve_key)
{
	struct uplink *u = agent->uplink;

	snprintf(u->new_curve_key, sizeof(u->new_curve_key), "%s", curve_key != NULL ? curve_key : "");
	/* Refused already (the broker reloaded first): say why now, not at the next attempt minutes away. */
	if (u->state != UPLINK_UP && strncmp(u->link_problem, CURVE_REFUSED, strlen(CURVE_REFUSED)) == 0)
		curve_refused(agent);
}

struct uplink *
uplink_new(struct agent *agent, struct xba_error *err)
{
	struct uplink *u = calloc(1, sizeof(*u));

	if (u == NULL) {
		xba_error_set(err, XBA_ENOMEM, "out of memory");
		return NULL;
	}
	if (store_through_seq(agent->store, &u->through_seq, err) != 0 ||
	    store_through_alert_id(agent->store, u->through_seq, u->through_id, sizeof(u->through_id), err) != 0 ||
	    store_outgoing_last_accepted(agent->store, &u->last_accepted_seq, u->last_accepted_id,
		sizeof(u->last_accepted_id), err) != 0 ||
	    store_behind_since(agent->store, &u->store_behind_ms, err) != 0) {
		free(u);
		return NULL;
	}
	log_quote(u->endpoint_log, sizeof(u->endpoint_log), agent->config->broker);
	u->state = UPLINK_WAITING;
	u->turn_through = u->through_seq;
	memcpy(u->turn_through_id, u->through_id, sizeof(u->turn_through_id));
	u->backoff_ms = agent->config->reconnect_min_ms;
	u->publish_backoff_ms = agent->config->reconnect_min_ms;
	u->acks_retry_ms = UPLINK_ACK_RETRY_MIN_MS;
	u->max_frame_bytes = FRAME_MAX_BYTES_DEFAULT;
	u->next_attempt_mono = clock_mono_ms(); /* connect at once */
	u->link_since_wall = uplink_signing_now(u);
	return u;
}

void
uplink_close(struct agent *agent)
{
	struct uplink *u = agent->uplink;

	if (u == NULL)
		return;
	if (u->in_transaction)
		finish_turn(agent);
	if (u->state == UPLINK_UP)
		log_info("event=link.down reason=stopping broker=%s inflight=%zu", u->broker_id, u->n_inflight);
	fail_tracks(agent, "the agent is stopping");
	close_socket(u);
	u->state = UPLINK_WAITING;
}

void
uplink_free(struct uplink *u)
{
	if (u == NULL)
		return;
	close_socket(u);
	for (size_t i = 0; i < u->n_turn; i++) {
		store_row_clear(&u->turn[i].row);
		alert_free(u->turn[i].alert);
	}
	free(u->turn);
	free(u->parked);
	free(u->outcomes);
	for (size_t i = 0; i < u->n_receipts; i++)
		frame_free(u->receipts[i]);
	free(u->receipts);
	free(u);
}
