/*
 * publish.c — the publish path: everything between a node's Publish frame and the journal.  Checks run in the
 * order of docs/protocol.md §2.3 (cheapest and most telling first; the signature before anything is decoded);
 * the first failure answers with its own ErrorCode and one alert.rejected log line and changes nothing.  The rate
 * limit is applied in arrival order before verification, and the signature checks run on the verification pool
 * (verifypool.c) before publish_handle() sees the frame; everything from there on runs on the loop's thread.  An
 * accepted alert is routed and appended to the open group-commit transaction; its PublishAck is held until the
 * commit is durable (server.c).  A session that asked for ordered publishes is held behind a transient refusal
 * until the refused alert comes again, so that none of its node's alerts is journaled ahead of it (§2.3 "Order").
 * Also: TrackRequest, which reads what the publish path wrote.
 */
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "clock.h"
#include "envelope.h"
#include "frame.h"
#include "log.h"

/*
 * Answer a refused publish now (nothing was written, so there is nothing to wait for) and log it.  A transient
 * refusal on an ordered session also holds the session's later publishes (publish_hold).  held: this is one of
 * those later publishes, refused only because of the hold; it is logged at info, since the refusal that caused
 * it was a warning already (publish.held) and a disk-full minute would otherwise read as dozens of failures.
 */
/* Does the alert inside claim to be an emergency?  Unverified: read only where a wrong answer costs its sender
 * alone (which budget refuses it, what a hold behind it lets pass). */
static bool
publish_claims_emergency(const Xba__V1__Publish *publish)
{
	Xba__V1__Alert *alert;
	bool emergency;

	if (publish->envelope == NULL)
		return false;
	alert = xba__v1__alert__unpack(NULL, publish->envelope->alert.len, publish->envelope->alert.data);
	emergency = alert != NULL && alert->emergency;
	if (alert != NULL)
		xba__v1__alert__free_unpacked(alert, NULL);
	return emergency;
}

static void
answer_refusal(struct server *server, size_t node_index, const Xba__V1__Publish *publish, const char *alert_id,
    Xba__V1__ErrorCode code, const char *field, uint64_t seq, uint32_t recipients, bool held, const char *fmt,
    va_list ap) XBA_PRINTF(10, 0);

static void
answer_refusal(struct server *server, size_t node_index, const Xba__V1__Publish *publish, const char *alert_id,
    Xba__V1__ErrorCode code, const char *field, uint64_t seq, uint32_t recipients, bool held, const char *fmt,
    va_list ap)
{
	Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
	Xba__V1__PublishAck ack = XBA__V1__PUBLISH_ACK__INIT;
	char message[512], quoted[600];

	vsnprintf(message, sizeof(message), fmt, ap);
	ack.ref = publish->ref;
	ack.result = code;
	ack.alert_id = (char *)(alert_id ? alert_id : "");
	ack.seq = seq;
	ack.recipients = recipients;
	ack.message = message;
	ack.field = (char *)(field ? field : "");
	frame.body_case = XBA__V1__FRAME__BODY_PUBLISH_ACK;
	frame.publish_ack = &ack;
	if (code != XBA__V1__ERROR_CODE__DUPLICATE)
		server->stats.rejected++;
	if (!node_log_allowed(server, node_index)) {
		/* a flood of refusals: counted, and said once the node's log budget allows */
	} else if (code == XBA__V1__ERROR_CODE__DUPLICATE) {
		log_info("event=alert.duplicate node=%s alert=%s seq=%llu", server->dir->nodes[node_index].id,
		    alert_id ? alert_id : "-", (unsigned long long)seq);
	} else {
		char claimed[XBA_UUID_LEN + 1] = "";

		/* Refused before the alert was verified (a key unknown or revoked): the id its bytes claim, so that
		 * `grep alert=ID` finds the refusal too; unverified, and said so.  Not for the rate limit, whose refusals
		 * must stay cheap however many a flood sends. */
		if ((alert_id == NULL || alert_id[0] == '\0') && publish->envelope != NULL &&
		    code != XBA__V1__ERROR_CODE__RATE_LIMITED)
			envelope_claimed_id(publish->envelope, claimed);
		(held ? log_info : log_warnx)("event=alert.rejected node=%s alert=%s%s code=%s field=%s reason=%s",
		    server->dir->nodes[node_index].id, alert_id && alert_id[0] ? alert_id : claimed[0] ? claimed : "-",
		    claimed[0] ? " alert_claimed=unverified" : "", frame_error_code_name(code), field && field[0] ? field
		    : "-", log_quote(quoted, sizeof(quoted), message));
	}
	server_send(server, node_index, &frame);
	if (frame_error_code_transient(code) && server->sessions[node_index].ordered_publishes && !held) {
		char claimed[XBA_UUID_LEN + 1];

		/* Refused before the alert was decoded (rate limit, unknown key): the id its bytes claim names it well
		 * enough to recognise the same bytes sent again, and a node that lies about it holds up only itself. */
		if (alert_id == NULL || alert_id[0] == '\0')
			envelope_claimed_id(publish->envelope, claimed);
		publish_hold(server, node_index, publish->ref, alert_id && alert_id[0] ? alert_id : claimed, code, false,
		    publish_claims_emergency(publish));
	}
}

static void
refuse(struct server *server, size_t node_index, const Xba__V1__Publish *publish, const char *alert_id,
    Xba__V1__ErrorCode code, const char *field, uint64_t seq, uint32_t recipients, const char *fmt, ...)
    XBA_PRINTF(9, 10);

static void
refuse(struct server *server, size_t node_index, const Xba__V1__Publish *publish, const char *alert_id,
    Xba__V1__ErrorCode code, const char *field, uint64_t seq, uint32_t recipients, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	answer_refusal(server, node_index, publish, alert_id, code, field, seq, recipients, false, fmt, ap);
	va_end(ap);
}

static void
refuse_held(struct server *server, size_t node_index, const Xba__V1__Publish *publish, const char *alert_id,
    Xba__V1__ErrorCode code, const char *fmt, ...) XBA_PRINTF(6, 7);

static void
refuse_held(struct server *server, size_t node_index, const Xba__V1__Publish *publish, const char *alert_id,
    Xba__V1__ErrorCode code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	answer_refusal(server, node_index, publish, alert_id, code, NULL, 0, 0, true, fmt, ap);
	va_end(ap);
}

void
publish_hold(struct server *server, size_t node_index, uint64_t ref, const char *alert_id, Xba__V1__ErrorCode code,
    bool replace, bool emergency)
{
	struct session *s = &server->sessions[node_index];
	struct order_hold *h = emergency ? &s->emergency_hold : &s->hold;

	if (!s->ordered_publishes || alert_id == NULL || alert_id[0] == '\0')
		return; /* an alert that names no id is refused for good when it comes again: nothing to wait for */
	if (h->on && !replace)
		return;
	if (!h->on || strcmp(h->alert, alert_id) != 0)
		log_warnx("event=publish.held node=%s alert=%s ref=%llu code=%s class=%s reason=\"the node's later %s wait "
			  "until this one is sent again\"",
		    server->dir->nodes[node_index].id, alert_id, (unsigned long long)ref, frame_error_code_name(code),
		    emergency ? "emergency" : "routine", emergency ? "emergencies" : "routine publishes");
	if (!h->on)
		h->count = 0;
	h->on = true;
	snprintf(h->alert, sizeof(h->alert), "%s", alert_id);
	h->ref = ref;
	h->code = code;
}

/*
 * An ordered session holding behind a refused alert: that alert, sent again, lifts the hold and is handled as
 * usual; any other publish is refused with the same code, so that nothing of this node is journaled ahead of it.
 * Returns true when the publish was refused here.
 */
static bool
refused_by_hold(struct server *server, size_t node_index, const Xba__V1__Publish *publish,
    const struct verify_job *verified)
{
	struct session *s = &server->sessions[node_index];
	const Xba__V1__Alert *alert = verified != NULL ? verified->opened.alert : NULL;
	/* An emergency waits only behind an emergency: it goes ahead of queued traffic, and one country's
	 * emergencies (an update after the alert it changes) keep their order.  Unverified, it is taken as routine. */
	struct order_hold *h = alert != NULL && alert->emergency ? &s->emergency_hold : &s->hold;
	char claimed[XBA_UUID_LEN + 1];
	const char *id;

	if (!h->on)
		return false;
	if (alert != NULL && alert->id != NULL) {
		id = alert->id;
	} else {
		envelope_claimed_id(publish->envelope, claimed);
		id = claimed;
	}
	if (strcmp(id, h->alert) == 0) {
		log_info("event=publish.resumed node=%s alert=%s held=%llu", server->dir->nodes[node_index].id, id,
		    (unsigned long long)h->count);
		h->on = false;
		return false;
	}
	h->count++;
	refuse_held(server, node_index, publish, id, h->code,
	    "held: this node's publish ref %llu (alert %s) was refused %s; resend it first, so that this node's alerts "
	    "stay in order",
	    (unsigned long long)h->ref, h->alert, frame_error_code_name(h->code));
	return true;
}

/* Hold the PublishAck of a journaled alert until the commit (server.c): OK for one journaled now, DUPLICATE for
 * a resend of one journaled earlier in the same transaction. */
static void
hold_ack(struct server *server, size_t node_index, const Xba__V1__Publish *publish, const Xba__V1__Alert *alert,
    uint64_t seq, uint32_t recipients, bool duplicate)
{
	struct held_frame h = { 0 };
	const char *alert_id = alert->id;

	h.node_index = node_index;
	h.kind = XBA__V1__FRAME__BODY_PUBLISH_ACK;
	h.duplicate = duplicate;
	h.ref = publish->ref;
	h.seq = seq;
	h.recipients = recipients;
	h.emergency = alert->emergency;
	h.read_mono = server->frame_read_mono;
	snprintf(h.alert_id, sizeof(h.alert_id), "%s", alert_id);
	if (server_hold(server, &h) != 0)
		log_warnx("event=broker.error reason=\"out of memory holding an ack\" alert=%s", alert_id);
}

/* The field path an error message starts with ("info[0].headline: ..." -> "info[0].headline"). */
static void
field_of(const char *msg, char *out, size_t size)
{
	size_t len = strcspn(msg, ": ");

	if (msg[len] != ':' || len == 0 || len >= size)
		len = 0;
	memcpy(out, msg, len);
	out[len] = '\0';
}

/*
 * Token bucket: rate_per_second sustained, rate_burst at once.  Past it, an emergency from a node that may
 * broadcast has a bucket of its own (EMERGENCY_*): a country sending its backlog after an outage would otherwise
 * hold its own emergency behind hundreds of routine alerts at the rate limit.  The flag is read from the alert
 * bytes only on this refusal path; what the alert really is is checked after verification as always.
 */
bool
publish_rate_allows(struct server *server, size_t node_index, const Xba__V1__Publish *publish)
{
	struct session *s = &server->sessions[node_index];

	if (clock_bucket_take(&s->publishes, (double)server->config->rate_per_second, (double)server->config->rate_burst))
		return true;
	return server->dir->nodes[node_index].may_broadcast && publish_claims_emergency(publish) &&
	    clock_bucket_take(&s->emergencies, EMERGENCY_PER_SECOND, EMERGENCY_BURST);
}

/* journal_track walker: was the alert routed to node_id (a recipient in any state, not withheld)? */
struct recipient_probe {
	const char *node_id;
	bool found;
};

static int
probe_recipient(void *ctx, const struct journal_track_row *r)
{
	struct recipient_probe *p = ctx;

	if (strcmp(r->node_id, p->node_id) != 0)
		return 0;
	p->found = r->state != DELIVERY_WITHHELD;
	return 1;
}

/* The nodes an update or cancel must reach because they had the alert it names (rules.h, route_inputs). */
struct superseded_nodes {
	char (*ids)[XBA_NODE_ID_MAX + 1];
	const char **list;               /* ids[i], for route_inputs */
	size_t n, cap;
};

static int
add_superseded_node(void *ctx, const struct journal_track_row *r)
{
	struct superseded_nodes *s = ctx;

	if (r->state == DELIVERY_WITHHELD)
		return 0;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->ids[i], r->node_id) == 0)
			return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char (*ids)[XBA_NODE_ID_MAX + 1] = realloc(s->ids, cap * sizeof(*ids));

		if (ids == NULL)
			return XBA_ENOMEM;
		s->ids = ids;
		s->cap = cap;
	}
	snprintf(s->ids[s->n++], sizeof(s->ids[0]), "%s", r->node_id);
	return 0;
}

/* Record officers' acknowledgements carried by an ACK-type alert and hold receipts for emergency originators. */
static int
record_acknowledgements(struct server *server, const struct dir_node *acker, const Xba__V1__Alert *alert,
    int64_t now, struct xba_error *err)
{
	for (size_t i = 0; i < alert->n_references; i++) {
		struct journal_alert_info ref;
		bool changed = false;
		const struct dir_node *ref_origin;
		int rc;

		if (journal_find(server->journal, alert->references[i], &ref, err) != 0)
			continue; /* checked before routing; cannot vanish inside the transaction */
		rc = journal_mark_acknowledged(server->journal, acker->id, ref.seq, alert->author,
		    alert->note ? alert->note : "", now, &changed, err);
		if (rc == XBA_ENOTFOUND)
			continue; /* the acknowledging node was not a recipient: the ACK is journaled, nothing to mark */
		if (rc != 0)
			return rc;
		ref_origin = directory_node(server->dir, ref.origin);
		if (changed && ref.emergency && ref_origin != NULL) {
			struct held_frame h = { 0 };

			h.node_index = directory_node_index(server->dir, ref_origin);
			h.kind = XBA__V1__FRAME__BODY_RECEIPT;
			snprintf(h.alert_id, sizeof(h.alert_id), "%s", alert->references[i]);
			snprintf(h.node_id, sizeof(h.node_id), "%s", acker->id);
			h.receipt_kind = XBA__V1__RECEIPT_KIND__RECEIPT_KIND_ACKNOWLEDGED;
			snprintf(h.officer, sizeof(h.officer), "%s", alert->author);
			h.note = alert->note != NULL && alert->note[0] != '\0' ? strdup(alert->note) : NULL;
			h.time_ms = alert->sent_ms; /* when the officer acknowledged, by their agent's clock */
			if (server_hold(server, &h) != 0) {
				free(h.note);
				return xba_error_set(err, XBA_ENOMEM, "out of memory");
			}
		}
	}
	return 0;
}

void
publish_handle(struct server *server, size_t node_index, const Xba__V1__Publish *publish,
    const struct verify_job *verified)
{
	const struct dir_node *node = &server->dir->nodes[node_index];
	struct journal_alert_info known;
	struct xba_error err = { 0 };
	struct route route = { 0 };
	const char *field = NULL, *acked_origin = NULL;
	char field_buf[64], message[512], acked_origin_buf[XBA_NODE_ID_MAX + 1], by_id[XBA_UUID_LEN + 1];
	struct superseded_nodes superseded = { 0 };
	int by_type;
	struct route_inputs inputs = { 0 };
	int64_t now = clock_now_ms();
	uint8_t *envelope_bytes = NULL;
	size_t envelope_len;
	Xba__V1__ErrorCode code;
	int rc;

	if (refused_by_hold(server, node_index, publish, verified))
		return;
	if (verified == NULL) {
		refuse(server, node_index, publish, NULL, XBA__V1__ERROR_CODE__RATE_LIMITED, NULL, 0, 0,
		    "over %lld publishes per second (burst %lld); retry later", (long long)server->config->rate_per_second,
		    (long long)server->config->rate_burst);
		return;
	}
	/* Opened on the verification pool (verifypool.c): lookups, signature over the received bytes, decoding. */
	if (verified->rc != 0) {
		field_of(verified->err.msg, field_buf, sizeof(field_buf));
		refuse(server, node_index, publish, verified->opened.alert ? verified->opened.alert->id : NULL,
		    frame_error_code_for_alert(verified->rc), field_buf, 0, 0, "%s", verified->err.msg);
		return;
	}
	const Xba__V1__Alert *alert = verified->opened.alert;

	if (strcmp(alert->origin, node->id) != 0) {
		refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__WRONG_SIGNER, "origin", 0, 0,
		    "alert.origin is %s but this connection is %s: a node publishes only its own alerts", alert->origin,
		    node->id);
		goto done;
	}

	/* The envelope is stored re-packed from its fields: the signed alert bytes inside are exactly as received. */
	envelope_len = xba__v1__envelope__get_packed_size(publish->envelope);
	envelope_bytes = malloc(envelope_len);
	if (envelope_bytes == NULL) {
		refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__INTERNAL, NULL, 0, 0,
		    "out of memory");
		goto done;
	}
	xba__v1__envelope__pack(publish->envelope, envelope_bytes);
	if (server_begin(server, &err) != 0) {
		refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE, NULL, 0, 0,
		    "journal unavailable: %s", err.msg);
		goto done;
	}
	rc = journal_find(server->journal, alert->id, &known, &err);
	if (rc == 0) {
		uint8_t digest[32];

		SHA256(envelope_bytes, envelope_len, digest);
		if (memcmp(digest, known.envelope_sha256, sizeof(digest)) == 0 && known.seq > server->committed_head) {
			/* The original is in this very transaction, which may still fail: DUPLICATE tells the node to
			 * delete the alert from its outbox, so it waits for the commit like the original's OK. */
			hold_ack(server, node_index, publish, alert, known.seq, known.recipients, true);
		} else if (memcmp(digest, known.envelope_sha256, sizeof(digest)) == 0)
			refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__DUPLICATE, NULL, known.seq,
			    known.recipients, "already journaled as seq %llu", (unsigned long long)known.seq);
		else
			refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__INVALID_ALERT, "id", 0, 0,
			    "alert id %s was already journaled with different content", alert->id);
		goto done;
	} else if (rc != XBA_ENOTFOUND) {
		refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE, NULL, 0, 0,
		    "journal unavailable: %s", err.msg);
		goto done;
	}
	/* Judged by whichever of the broker's clock and its nodes' keeps the alert (server_now_*): when the broker's
	 * is the wrong one, refusing would hold every country, or lose an alert for good. */
	if (alert->sent_ms > server_now_latest(server, now) + server->config->clock_skew_ms) {
		refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__CLOCK_SKEW, "sent_ms", 0, 0,
		    "sent %lld ms in the future (tolerance %lld ms): check the node's clock (NTP)",
		    (long long)(alert->sent_ms - now), (long long)server->config->clock_skew_ms);
		goto done;
	}
	if (alert->expires_ms != 0 && alert->expires_ms <= server_now_earliest(server, now)) {
		refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__ALERT_EXPIRED, "expires_ms", 0,
		    0, "the alert expired %lld s ago", (long long)((now - alert->expires_ms) / 1000));
		goto done;
	}
	if ((code = rules_publish_rights(server->dir, node, alert, &field, message, sizeof(message))) != 0) {
		refuse(server, node_index, publish, alert->id, code, field, 0, 0, "%s", message);
		goto done;
	}
	if (alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ACK) {
		for (size_t i = 0; i < alert->n_references; i++) {
			struct recipient_probe probe = { .node_id = node->id };

			/* Only what was routed to this node can be acknowledged by it, and an alert that was not is
			 * answered as one that does not exist: an ACK must not tell a node which ids are journaled,
			 * nor carry its word to an origin that did not send it anything (protocol §2.10). */
			if (journal_find(server->journal, alert->references[i], &known, &err) != 0 ||
			    journal_track(server->journal, known.seq, probe_recipient, &probe, &err) < 0 || !probe.found) {
				refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__UNKNOWN_ALERT,
				    "references", 0, 0, "acknowledged alert %s is not in the journal as one routed to %s",
				    alert->references[i], node->id);
				goto done;
			}
			if (i == 0) {
				snprintf(acked_origin_buf, sizeof(acked_origin_buf), "%s", known.origin);
				acked_origin = acked_origin_buf;
			} else if (strcmp(known.origin, acked_origin) != 0) {
				/* An ACK is routed to the origin of what it acknowledges; with two origins one of them would
				 * never hear of it.  Refused loudly rather than delivered to half its audience. */
				refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__INVALID_ALERT, "references",
				    0, 0, "references: an ACK acknowledges alerts of one origin; %s is from %s, %s from %s: "
				    "acknowledge them in separate ACKs", alert->references[0], acked_origin,
				    alert->references[i], known.origin);
				goto done;
			}
		}
	}
	/* CAP: an update or a cancel supersedes alerts of its own sender.  One that names another node's alert would
	 * tell that alert's recipients it was withdrawn by someone who had no say in it.  A reference the journal no
	 * longer holds (pruned) cannot be checked and is let through. */
	if (alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE || alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL) {
		for (size_t i = 0; i < alert->n_references; i++) {
			if (journal_find(server->journal, alert->references[i], &known, &err) != 0)
				continue;
			if (strcmp(known.origin, alert->origin) != 0) {
				/* Whose it is stays unsaid: a node learns no other node's alerts from the broker (§2.10). */
				refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__INVALID_ALERT, "references",
				    0, 0, "references: an %s supersedes alerts of its own origin only; %s is not one of %s's",
				    alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE ? "update" : "cancel",
				    alert->references[i], alert->origin);
				goto done;
			}
			/* A withdrawn alert stays withdrawn, and an update names the latest version (docs/operators.md,
			 * "xba send"): the sender's agent checks both against its own store, which a restore from a backup
			 * can put behind the journal, and other clients need not check at all. */
			rc = journal_superseded(server->journal, alert->references[i], &by_type, by_id, sizeof(by_id), &err);
			if (rc == 0 && by_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL) {
				refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__INVALID_ALERT, "references",
				    0, 0, "references: %s was withdrawn already, by %s: send a new alert instead",
				    alert->references[i], by_id);
				goto done;
			}
			/* A version replaced by another that this message names too is part of the chain it names (an
			 * update or cancel names every version before it).  One replaced by a version it does not name
			 * means that a later version exists: an update would make two live ones, and a cancel would
			 * withdraw the old and leave that one live everywhere (two officers at once, or a client that
			 * does not look). */
			if (rc == 0 && !alert_names_reference(alert, by_id)) {
				refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__INVALID_ALERT, "references",
				    0, 0, "references: %s was replaced already, by %s, which this %s does not name: %s",
				    alert->references[i], by_id,
				    alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE ? "update" : "cancel",
				    alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE ? "update the latest version"
											  : "a cancel names every version");
				goto done;
			}
			if (rc != 0 && rc != XBA_ENOTFOUND) {
				refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE, NULL,
				    0, 0, "cannot read what replaced %s: %s", alert->references[i], err.msg);
				goto done;
			}
			/* Whoever had it must hear that it was replaced or withdrawn, whatever the rules say today. */
			if (journal_track(server->journal, known.seq, add_superseded_node, &superseded, &err) < 0) {
				refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE, NULL,
				    0, 0, "cannot read the recipients of %s: %s", alert->references[i], err.msg);
				goto done;
			}
		}
		if (superseded.n > 0 && (superseded.list = calloc(superseded.n, sizeof(*superseded.list))) == NULL) {
			refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__INTERNAL, NULL, 0, 0,
			    "out of memory");
			goto done;
		}
		for (size_t i = 0; i < superseded.n; i++)
			superseded.list[i] = superseded.ids[i];
	}
	inputs.acked_origin = acked_origin;
	inputs.superseded_recipients = superseded.list;
	inputs.n_superseded_recipients = superseded.n;
	if (rules_route_with(server->rules, server->dir, alert, &inputs, &route, &err) != 0) {
		refuse(server, node_index, publish, alert->id,
		    err.code == XBA_EREQUIRED ? XBA__V1__ERROR_CODE__TLP_RED_NO_ADDRESSEES : XBA__V1__ERROR_CODE__INTERNAL,
		    NULL, 0, 0, "routing failed: %s", err.msg);
		goto done;
	}

	/* Journal the alert and its routing decision. */
	{
		struct journal_recipient *recipients = calloc(route.n_recipients + 1, sizeof(*recipients));
		struct journal_recipient *withheld = calloc(route.n_withheld + 1, sizeof(*withheld));
		struct journal_entry entry = { 0 };
		uint64_t seq = 0;

		if (recipients == NULL || withheld == NULL) {
			free(recipients);
			free(withheld);
			refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__INTERNAL, NULL, 0, 0,
			    "out of memory");
			goto done;
		}
		for (size_t i = 0; i < route.n_recipients; i++) {
			recipients[i].node_id = server->dir->nodes[route.recipients[i].node_index].id;
			recipients[i].rule = route.recipients[i].rule;
		}
		for (size_t i = 0; i < route.n_withheld; i++) {
			withheld[i].node_id = server->dir->nodes[route.withheld[i].node_index].id;
			withheld[i].rule = route.withheld[i].rule;
		}
		entry.alert_id = alert->id;
		entry.origin = alert->origin;
		entry.sent_ms = alert->sent_ms;
		entry.received_ms = now;
		entry.msg_type = alert->msg_type;
		entry.emergency = alert->emergency;
		entry.envelope = envelope_bytes;
		entry.envelope_len = envelope_len;
		entry.rules_version = rules_version(server->rules);
		entry.recipients = recipients;
		entry.n_recipients = route.n_recipients;
		entry.withheld = withheld;
		entry.n_withheld = route.n_withheld;
		if (alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE ||
		    alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL) {
			entry.supersedes = alert->references;
			entry.n_supersedes = alert->n_references;
		}
		rc = journal_append(server->journal, &entry, &seq, &err);
		if (rc == 0 && alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ACK)
			rc = record_acknowledgements(server, node, alert, now, &err);
		free(recipients);
		free(withheld);
		if (rc != 0) {
			/* The transaction is now suspect: commit() rolls it back and refuses everything it held. */
			char quoted[600];

			log_warnx("event=journal.error op=append alert=%s error=%s", alert->id,
			    log_quote(quoted, sizeof(quoted), err.msg));
			server->tx_failed = true;
			refuse(server, node_index, publish, alert->id, XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE, NULL,
			    0, 0, "the broker could not store the alert; retry later");
			goto done;
		}
		for (size_t i = 0; i < route.n_recipients; i++)
			server->sessions[route.recipients[i].node_index].wants_delivery = true;
		if (entry.emergency)
			server->emergency_in_pass = true;
		hold_ack(server, node_index, publish, alert, seq, (uint32_t)route.n_recipients, false);
	}
done:
	route_clear(&route);
	free(superseded.ids);
	free(superseded.list);
	free(envelope_bytes);
}

struct track_rows {
	Xba__V1__RecipientState *rows;   /* grown as journal_track reports */
	size_t n, cap;
	char (*nodes)[XBA_NODE_ID_MAX + 1];
	char (*rules)[65];
	char (*reasons)[65];
	char (*officers)[129];
};

static int
track_row(void *ctx, const struct journal_track_row *r)
{
	struct track_rows *t = ctx;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		void *rows = realloc(t->rows, cap * sizeof(*t->rows)), *nodes, *rules, *reasons, *officers;

		if (rows == NULL)
			return XBA_ENOMEM;
		t->rows = rows;
		if ((nodes = realloc(t->nodes, cap * sizeof(*t->nodes))) == NULL)
			return XBA_ENOMEM;
		t->nodes = nodes;
		if ((rules = realloc(t->rules, cap * sizeof(*t->rules))) == NULL)
			return XBA_ENOMEM;
		t->rules = rules;
		if ((reasons = realloc(t->reasons, cap * sizeof(*t->reasons))) == NULL)
			return XBA_ENOMEM;
		t->reasons = reasons;
		if ((officers = realloc(t->officers, cap * sizeof(*t->officers))) == NULL)
			return XBA_ENOMEM;
		t->officers = officers;
		t->cap = cap;
	}
	xba__v1__recipient_state__init(&t->rows[t->n]);
	snprintf(t->nodes[t->n], sizeof(t->nodes[0]), "%s", r->node_id);
	snprintf(t->rules[t->n], sizeof(t->rules[0]), "%s", r->rule);
	snprintf(t->reasons[t->n], sizeof(t->reasons[0]), "%s", r->reason);
	snprintf(t->officers[t->n], sizeof(t->officers[0]), "%s", r->officer);
	t->rows[t->n].state = (Xba__V1__DeliveryState)r->state; /* same numbering: 1 queued .. 5 refused */
	t->rows[t->n].time_ms = r->time_ms;
	t->rows[t->n].delivered_ms = r->delivered_ms;
	t->n++;
	return 0;
}

void
track_handle(struct server *server, size_t node_index, const Xba__V1__TrackRequest *request)
{
	const struct dir_node *node = &server->dir->nodes[node_index];
	Xba__V1__Frame frame = XBA__V1__FRAME__INIT;
	Xba__V1__TrackReply reply = XBA__V1__TRACK_REPLY__INIT;
	struct journal_alert_info info;
	struct track_rows t = { 0 };
	Xba__V1__RecipientState **list = NULL;
	struct xba_error err = { 0 };

	reply.alert_id = request->alert_id;
	reply.result = XBA__V1__ERROR_CODE__UNKNOWN_ALERT;
	/* A node tracks only its own alerts; an admin tracks any. */
	if (journal_find(server->journal, request->alert_id, &info, &err) == 0 &&
	    (strcmp(info.origin, node->id) == 0 || node->role == NODE_ROLE_ADMIN) &&
	    journal_track(server->journal, info.seq, track_row, &t, &err) == 0 &&
	    (t.n == 0 || (list = calloc(t.n, sizeof(*list))) != NULL)) {
		for (size_t i = 0; i < t.n; i++) {
			t.rows[i].node_id = t.nodes[i];
			t.rows[i].rule = t.rules[i];
			t.rows[i].reason = t.reasons[i];
			t.rows[i].officer = t.officers[i];
			list[i] = &t.rows[i];
		}
		reply.result = XBA__V1__ERROR_CODE__OK;
		reply.seq = info.seq;
		reply.recipients = list;
		reply.n_recipients = t.n;
	}
	frame.body_case = XBA__V1__FRAME__BODY_TRACK_REPLY;
	frame.track_reply = &reply;
	server_send(server, node_index, &frame);
	free(list);
	free(t.rows);
	free(t.nodes);
	free(t.rules);
	free(t.reasons);
	free(t.officers);
}
