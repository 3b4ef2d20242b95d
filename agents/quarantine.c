/*
 * quarantine.c — a second look at the deliveries this agent refused.  uplink.c quarantines a delivery that fails
 * verification against this agent's own region.yaml (docs/protocol.md §2.4), and acknowledges it so that the queue
 * moves: the broker will not deliver it again.  Most refusals mean the file was out of date (a member's new key not
 * yet distributed here), so when a region.yaml loads (SIGHUP) and at start-up every delivery still held is verified
 * again, exactly as uplink.c verifies a Deliver, at this agent's clock now.  One that passes goes to the inbox
 * (deduplicated by alert id), its quarantine row is kept and marked released, and it is pushed to `xba watch` like
 * a new delivery: the alert arrives late instead of never.  One that still fails stays held.
 *
 * The broker recorded the delivery REFUSED when this agent acknowledged it (DeliveryAck.refused); a release is
 * reported to it by uplink.c (DeliveryAck.released, uplink_releases_pending) as soon as the session allows, so that
 * the sender's `xba track` and receipts follow.  Runs on the agent's loop between turns, never inside one, one
 * batch per turn (quarantine_tick): forty thousand held entries took 8 s in one go, during which officers'
 * commands, deliveries and heartbeats waited and the broker declared the node dead.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "clock.h"
#include "envelope.h"
#include "frame.h"
#include "log.h"

/* Deliveries released per transaction (one fsync each): bounds what a failed commit undoes and what waits in memory
 * for the push. */
#define RECHECK_BATCH 256

/* A delivery that verified and was stored, waiting for its batch's commit before anyone is told. */
struct released {
	struct store_row row;        /* as stored in the inbox (owns the envelope) */
	Xba__V1__Alert *alert;       /* verified, for the push; owned */
	int64_t quarantined_ms;
	int code_was;
	bool stored_new;             /* false: the alert was in the inbox already; only the quarantine row changed */
};

struct recheck {
	struct agent *agent;
	const char *trigger;         /* "start" or "reload", for the logs */
	int64_t after;               /* the walk's cursor: the last quarantine row id looked at */
	int64_t now;                 /* the clock the walk verifies at */
	struct released batch[RECHECK_BATCH];
	size_t n;
	uint64_t checked, released, held;
};

static void
batch_clear(struct recheck *rc)
{
	for (size_t i = 0; i < rc->n; i++) {
		store_row_clear(&rc->batch[i].row);
		alert_free(rc->batch[i].alert);
	}
	rc->n = 0;
}

/* Commit the batch, then log and push it; on failure nothing of it happened and it stays held. */
static int
batch_finish(struct recheck *rc, struct xba_error *err)
{
	struct store *store = rc->agent->store;

	if (rc->n == 0)
		return 0;
	if (store_commit(store, err) != 0) {
		store_rollback(store);
		batch_clear(rc);
		return err->code != 0 ? err->code : XBA_EIO;
	}
	for (size_t i = 0; i < rc->n; i++) {
		const struct released *r = &rc->batch[i];
		char rule[2 * sizeof(r->row.rule) + 2]; /* the broker's word: quoted like any text from the network */

		log_info("event=alert.released alert=%s origin=%s seq=%llu rule=%s was=%s quarantined_ms=%lld "
			 "trigger=%s new=%s",
		    r->row.alert_id, r->row.origin, (unsigned long long)r->row.seq,
		    r->row.rule[0] ? log_quote(rule, sizeof(rule), r->row.rule) : "-",
		    frame_error_code_name((Xba__V1__ErrorCode)r->code_was), (long long)r->quarantined_ms, rc->trigger,
		    r->stored_new ? "true" : "false");
		if (r->stored_new)
			local_push_alert(rc->agent, &r->row, r->alert);
	}
	rc->released += rc->n;
	batch_clear(rc);
	uplink_releases_pending(rc->agent);
	return 0;
}

/* Verify one held delivery again; a pass is stored and joins the batch (the transaction is opened on the first). */
static int
recheck_one(struct recheck *rc, struct store_quarantined *q, int64_t now, struct xba_error *err)
{
	struct agent *agent = rc->agent;
	struct envelope_opened opened;
	struct store_alert_fields f;
	struct xba_error why = { 0 };
	Xba__V1__Envelope *envelope;
	struct released *r;
	bool inserted = false;
	int rc_open;

	if (q->envelope == NULL ||
	    (envelope = xba__v1__envelope__unpack(NULL, q->envelope_len, q->envelope)) == NULL) {
		rc->held++; /* nothing that could ever verify */
		return 0;
	}
	rc_open = envelope_open_message(agent->dir, envelope, now, &opened, &why);
	xba__v1__envelope__free_unpacked(envelope, NULL);
	if (rc_open != 0) {
		char quoted[600];

		log_debug("event=alert.still_quarantined seq=%llu code=%s reason=%s", (unsigned long long)q->seq,
		    frame_error_code_name(frame_error_code_for_alert(rc_open)),
		    log_quote(quoted, sizeof(quoted), why.msg));
		envelope_opened_clear(&opened);
		rc->held++;
		return 0;
	}
	if (rc->n == 0 && store_begin(agent->store, err) != 0) {
		envelope_opened_clear(&opened);
		return err->code != 0 ? err->code : XBA_EIO;
	}
	store_fields_from_alert(opened.alert, &f);
	if (store_inbox_add(agent->store, &f, q->envelope, q->envelope_len, q->seq, q->rule, now, &inserted, err) != 0 ||
	    store_quarantine_release(agent->store, q->id, now, err) != 0) {
		envelope_opened_clear(&opened);
		store_rollback(agent->store);
		batch_clear(rc);
		return err->code != 0 ? err->code : XBA_EIO;
	}
	r = &rc->batch[rc->n++];
	memset(r, 0, sizeof(*r));
	store_row_from_inbox_add(&r->row, &f, q->envelope, q->envelope_len, q->seq, q->rule, now);
	q->envelope = NULL; /* the row owns it now */
	r->alert = opened.alert;
	opened.alert = NULL;
	r->quarantined_ms = q->received_ms;
	r->code_was = q->code;
	r->stored_new = inserted;
	envelope_opened_clear(&opened);
	return rc->n == RECHECK_BATCH ? batch_finish(rc, err) : 0;
}

/* One batch of the walk: up to RECHECK_BATCH held entries, committed.  1 when more remain, 0 when the walk is
 * done, or the store failure in err (what was committed before it stays released). */
static int
recheck_some(struct recheck *rc, struct xba_error *err)
{
	struct agent *agent = rc->agent;
	int status = 0;

	for (size_t looked = 0; looked < RECHECK_BATCH; looked++) {
		struct store_quarantined q;

		status = store_quarantine_next(agent->store, rc->after, &q, err);
		if (status == XBA_ENOTFOUND) {
			status = batch_finish(rc, err);
			return status;
		}
		if (status != 0)
			break;
		rc->after = q.id;
		rc->checked++;
		status = recheck_one(rc, &q, rc->now, err);
		store_quarantined_clear(&q);
		if (status != 0)
			break;
	}
	if (status == 0 && (status = batch_finish(rc, err)) == 0)
		return 1;
	if (rc->n > 0) {
		store_rollback(agent->store);
		batch_clear(rc);
	}
	return status;
}

void
quarantine_recheck(struct agent *agent, const char *trigger)
{
	struct recheck *rc = agent->recheck;

	assert(agent != NULL && agent->store != NULL);
	/* A walk in progress starts again from the first entry, against the directory now in force. */
	if (rc == NULL && (rc = calloc(1, sizeof(*rc))) == NULL) {
		log_warnx("event=quarantine.recheck_failed trigger=%s error=\"out of memory\"", trigger);
		return;
	}
	rc->agent = agent;
	rc->trigger = trigger;
	rc->after = 0;
	rc->now = clock_now_ms();
	rc->checked = rc->released = rc->held = 0;
	agent->recheck = rc;
}

bool
quarantine_tick(struct agent *agent)
{
	struct recheck *rc = agent->recheck;
	struct xba_error err = { 0 };
	char quoted[600];
	int status;

	if (rc == NULL)
		return false;
	if (store_in_transaction(agent->store)) /* a turn's writes are not this batch's to commit */
		return true;
	status = recheck_some(rc, &err);
	if (status == 1)
		return true;
	if (status != 0) {
		log_warnx("event=quarantine.recheck_failed trigger=%s released=%llu error=%s action=\"the rest stays "
			  "quarantined until the next reload or start\"",
		    rc->trigger, (unsigned long long)rc->released, log_quote(quoted, sizeof(quoted), err.msg));
	} else if (rc->checked > 0) {
		if (rc->held > 0)
			log_warnx("event=quarantine.rechecked trigger=%s checked=%llu released=%llu held=%llu",
			    rc->trigger, (unsigned long long)rc->checked, (unsigned long long)rc->released,
			    (unsigned long long)rc->held);
		else
			log_info("event=quarantine.rechecked trigger=%s checked=%llu released=%llu held=0", rc->trigger,
			    (unsigned long long)rc->checked, (unsigned long long)rc->released);
	}
	quarantine_free(agent);
	return false;
}

void
quarantine_free(struct agent *agent)
{
	if (agent->recheck != NULL)
		batch_clear(agent->recheck);
	free(agent->recheck);
	agent->recheck = NULL;
}
