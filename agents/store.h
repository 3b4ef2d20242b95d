/*
 * store.h — the national agent's durable memory (SQLite, WAL, synchronous=FULL): the outbox of sealed alerts
 * waiting for the broker, the history of what this node sent, the inbox of verified alerts delivered to it, the
 * quarantine of deliveries its own verification refused, broker receipts, and the delivery cursor.
 *
 * Flow: an officer's submission is sealed by local.c and committed here (store_outbox_add, its own transaction)
 * before the officer is told "OK"; uplink.c sends the outbox oldest first and records the broker's answer
 * (store_outbox_accepted / store_outbox_refused).  Deliveries from the broker are verified by uplink.c and
 * group-committed here (store_begin .. store_inbox_add / store_quarantine_add / store_set_through_seq ..
 * store_commit) before they are acknowledged to the broker; local.c reads the inbox for `xba watch` and
 * `xba history` and records officers' acknowledgements (store_ack, one transaction with the ACK alert's outbox row).
 * quarantine.c releases held deliveries to the inbox after a region.yaml reload (store_quarantine_next /
 * store_quarantine_release), and agent_main.c prunes what is finished (store_prune, retention_days).
 *
 * The outbox is the QUEUED rows of the `outgoing` table, in row-id order: a row leaves the outbox by changing
 * state (ACCEPTED or REFUSED) in the same statement that records the broker's answer, so "deleted from the
 * outbox" and "recorded in the history" can never be seen apart.  The row id is the Publish.ref.
 *
 * Failure model: a crash at any point loses at most the transaction in progress, which acknowledged nothing
 * (no SubmitReply OK, no DeliveryAck) and is therefore redone: a submission is refused or retried by the
 * officer, a delivery is redelivered by the broker and deduplicated by alert id.  A write that fails (disk full,
 * I/O error) fails the whole transaction at once: it is rolled back, every later write of the batch and
 * store_commit report the same failure, and the next transaction starts clean.
 */
#ifndef XBA_STORE_H
#define XBA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "xba.pb-c.h"

struct store;

/* Where an outgoing alert stands (the values of PublishState in proto/xba.proto). */
enum store_publish_state {
	STORE_QUEUED = 1,   /* in the outbox: not yet acknowledged by the broker */
	STORE_ACCEPTED = 2, /* the broker journaled it (OK or DUPLICATE) */
	STORE_REFUSED = 3,  /* the broker refused it for good; it left the outbox */
};

/* The decoded fields of an alert that the store indexes (the envelope bytes are stored beside them). */
struct store_alert_fields {
	const char *alert_id;   /* canonical UUID */
	const char *origin;     /* node id */
	const char *author;     /* officer; may be NULL */
	int64_t sent_ms;
	int msg_type;           /* Xba__V1__MsgType */
	int category;           /* Xba__V1__Category, 0 when unset */
	int severity;           /* Xba__V1__Severity, 0 when unset */
	int tlp;                /* Xba__V1__Tlp */
	int status;             /* Xba__V1__Status */
	bool emergency;
	const char *const *references; /* update/cancel: the alerts it supersedes (inbox) */
	size_t n_references;
};

/* The indexed fields of a decoded alert (pointers borrowed from alert). */
void store_fields_from_alert(const Xba__V1__Alert *alert, struct store_alert_fields *out);

/* One stored alert as the store hands it back: inbox or outgoing.  Text is copied in; envelope is owned.
 * Release with store_row_clear(). */
struct store_row {
	int64_t id;                      /* row id: outbox/outgoing order, or inbox arrival order */
	bool outgoing;                   /* from the outgoing table (this node's own alert) */
	char alert_id[40];
	char origin[40];
	int64_t sent_ms;
	int msg_type, category, severity, tlp, status;
	bool emergency;
	uint8_t *envelope;               /* serialized Envelope exactly as delivered / sealed; owned */
	size_t envelope_len;
	/* inbox */
	int64_t received_ms;             /* agent clock when stored */
	uint64_t seq;                    /* broker journal sequence (inbox; outgoing once accepted) */
	char rule[72];                   /* routing rule that sent it here */
	bool acknowledged;               /* an officer here acknowledged it */
	char acknowledged_by[132];
	int64_t acknowledged_ms;
	char superseded_by[40];          /* the update or cancel its origin sent about it, "" when none */
	int superseded_type;             /* its msg_type (update 2, cancel 3), 0 when none */
	int ack_refused_code;            /* acknowledged: the broker's refusal of the ACK sent for it, 0 when none */
	char ack_refused_message[520];   /* ... and its message */
	/* outgoing */
	int64_t submitted_ms;            /* when it entered the outbox */
	enum store_publish_state state;
	uint32_t recipients;             /* ACCEPTED: as the broker counted them */
	int result;                      /* broker's ErrorCode: OK, DUPLICATE, or the refusal */
	char message[520];               /* REFUSED: the broker's message */
	char field[132];                 /* REFUSED: the offending field */
};

/* Which alerts a query returns; every set member must match.  Zero-initialised = everything. */
struct store_filter {
	const int *categories;           /* any of these (Xba__V1__Category values) */
	size_t n_categories;
	int min_severity;                /* severity >= this (0 = any) */
	const char *const *origins;      /* any of these node ids (must not contain ',') */
	size_t n_origins;
	int64_t since_ms;                /* inbox: received at or after; outgoing: submitted at or after */
	bool unacknowledged_only;        /* inbox alerts no officer acknowledged, ACKs excepted (outgoing: none) */
	bool emergencies_only;           /* with unacknowledged_only: of those, the emergencies */
	int64_t before_id;               /* rows older than this row id (store_row.id), for paging; 0: no bound */
};

/* Counters for `xba status`. */
struct store_stats {
	uint64_t outbox_depth;           /* QUEUED outgoing rows */
	uint64_t refused;                /* REFUSED outgoing rows */
	uint64_t acks_refused;           /* ... of them, acknowledgements (their origins were not told) */
	uint64_t inbox_count;
	uint64_t unacknowledged;         /* inbox alerts no officer acknowledged (ACK messages never count) */
	uint64_t quarantined;            /* held in the quarantine: not (yet) released by a later verification */
	int64_t last_delivery_ms;        /* newest inbox received_ms, 0 when empty */
};

/* A row callback: a non-zero return stops the walk and is returned.  The row is borrowed for the call. */
typedef int (*store_row_fn)(void *ctx, const struct store_row *row);

/* Open or create the store at path (created 0600: it holds TLP:RED alerts).  NULL with err on failure. */
struct store *store_open(const char *path, struct xba_error *err);
void store_close(struct store *s);
/* The schema store_open upgraded this file from (for the log), 0 when it upgraded nothing. */
int store_upgraded_from(const struct store *s);
/* --check: 0 when path does not exist yet or holds a schema this agent can open (or upgrade); else why not. */
int store_check_version(const char *path, struct xba_error *err);
const char *store_path(const struct store *s);

/* ---- group commit (the uplink's loop turn) ---- */
int store_begin(struct store *s, struct xba_error *err);
/* fsyncs once for everything since store_begin; on failure the transaction is rolled back (XBA_EIO). */
int store_commit(struct store *s, struct xba_error *err);
void store_rollback(struct store *s);
bool store_in_transaction(const struct store *s);

/* ---- outbox ---- */

/* Commit one sealed alert to the outbox in its own transaction (must not be inside store_begin).  *id_out = the
 * outbox row id (its Publish.ref).  XBA_EDUPLICATE when the alert id was submitted before. */
int store_outbox_add(struct store *s, const struct store_alert_fields *f, const uint8_t *envelope, size_t len,
    int64_t now_ms, int64_t *id_out, struct xba_error *err);

/* The oldest QUEUED row with id > after_id (0 = from the start): 0 and *out (store_row_clear it), or
 * XBA_ENOTFOUND when there is none. */
int store_outbox_next(struct store *s, int64_t after_id, struct store_row *out, struct xba_error *err);
/* The same, of the QUEUED emergencies only: they are sent ahead of the rest of the outbox. */
int store_outbox_next_emergency(struct store *s, int64_t after_id, struct store_row *out, struct xba_error *err);

/* Inside a transaction: QUEUED -> ACCEPTED with the broker's seq and recipient count (result OK or DUPLICATE).
 * XBA_ENOTFOUND when the row is not QUEUED (already answered). */
int store_outbox_accepted(struct store *s, int64_t id, uint64_t seq, uint32_t recipients, int result,
    int64_t now_ms, struct xba_error *err);
/*
 * The broker's journal was restored from a backup older than what it accepted of this node's: every row it
 * accepted at a seq above after_seq, since since_ms, goes back to QUEUED, to be published again with the same
 * envelope (the broker journals it anew, or answers DUPLICATE for what the backup had; recipients that have it
 * deduplicate by id).  Inside a transaction; *count = rows requeued.
 */
int store_outgoing_requeue_after(struct store *s, uint64_t after_seq, int64_t since_ms, int64_t now_ms,
    uint64_t *count, struct xba_error *err);
/* The highest journal seq the broker accepted one of this node's alerts at (0: none), and that alert's id; since
 * the last requeue after a restore only (rows accepted before it carry the old journal's seqs). */
int store_outgoing_last_accepted(struct store *s, uint64_t *seq, char *alert_id, size_t size, struct xba_error *err);
/* *out = this node's alerts (not ACKs) the broker refused for good at or after since_ms. */
int store_count_alerts_refused_since(struct store *s, int64_t since_ms, uint64_t *out, struct xba_error *err);
/* When this agent last saw the broker's journal restored from a backup (Welcome: its publishes or its cursor unknown
 * to the journal), wall clock ms, 0 never; and noting it (in a transaction). */
int store_restore_seen(struct store *s, int64_t *out, struct xba_error *err);
int store_note_restore_seen(struct store *s, int64_t now_ms, struct xba_error *err);
/* The highest seq this store ever held (inbox or quarantine), which retention's pruning does not lower: the
 * larger of what it holds now and what store_note_held recorded.  For the Hello (highest_held_seq). */
int store_held_high(struct store *s, uint64_t *out, struct xba_error *err);
/* In the turn's transaction: seq was stored (raises the record, never lowers it). */
int store_note_held(struct store *s, uint64_t seq, struct xba_error *err);
/* When the broker last found this store behind its record (wall clock ms; 0 never), and noting it (in a transaction). */
int store_behind_since(struct store *s, int64_t *out, struct xba_error *err);
int store_note_behind(struct store *s, int64_t now_ms, struct xba_error *err);
/* When the agent last found the broker's journal restored from a backup (and published again what it had lost),
 * wall clock ms; 0 never. */
int store_journal_restored_ms(struct store *s, int64_t *out, struct xba_error *err);
/* Inside a transaction: a row published again after a restore of the broker's journal (QUEUED with a seq) that the
 * restored broker refuses for good (expired since, or withdrawn by a cancel that was published again first) goes
 * back to ACCEPTED, without its seq (another alert's in that journal): it was delivered before the restore, and is
 * not "refused, nobody received it".  XBA_ENOTFOUND when id is not such a row. */
int store_outbox_republish_refused(struct store *s, int64_t id, struct xba_error *err);
/* Inside a transaction: QUEUED -> REFUSED with the broker's code, message and field. */
int store_outbox_refused(struct store *s, int64_t id, int result, const char *message, const char *field,
    int64_t now_ms, struct xba_error *err);

/* Inside a transaction: a QUEUED row's envelope replaced by one sealed again with sent_ms (the broker refused the
 * first for a sent time ahead of its clock, so it journaled nothing of it).  XBA_ENOTFOUND when not QUEUED. */
int store_outbox_reseal(struct store *s, int64_t id, const uint8_t *envelope, size_t len, int64_t sent_ms,
    struct xba_error *err);

/* This node's updates and cancels stored after row after_id (an outgoing row id), not refused, in the order they
 * were stored; fn's non-zero return stops the walk and is returned. */
int store_outgoing_later_versions(struct store *s, int64_t after_id, store_row_fn fn, void *ctx,
    struct xba_error *err);

/* Outgoing history matching filter, newest first (newest_first) or oldest first, at most limit rows. */
int store_outgoing_query(struct store *s, const struct store_filter *filter, bool newest_first, size_t limit,
    store_row_fn fn, void *ctx, struct xba_error *err);

/* ---- inbox ---- */

/* Inside a transaction: store a verified delivery, deduplicated by alert id.  *inserted is false for a
 * redelivery (nothing written). */
int store_inbox_add(struct store *s, const struct store_alert_fields *f, const uint8_t *envelope, size_t len,
    uint64_t seq, const char *rule, int64_t received_ms, bool *inserted, struct xba_error *err);

/* One inbox alert by id: 0 and *out (store_row_clear it), or XBA_ENOTFOUND. */
int store_inbox_get(struct store *s, const char *alert_id, struct store_row *out, struct xba_error *err);
/* The same for an alert this node sent. */
int store_outgoing_get(struct store *s, const char *alert_id, struct store_row *out, struct xba_error *err);
/* Fill row->superseded_by/_type for an inbox row built without reading the store (a delivery just stored, whose
 * update or cancel may have come first); unchanged when none.  0, or a read error. */
int store_superseded_get(struct store *s, struct store_row *row, struct xba_error *err);

/* Inbox alerts matching filter in arrival order, newest first or oldest first, at most limit rows. */
int store_inbox_query(struct store *s, const struct store_filter *filter, bool newest_first, size_t limit,
    store_row_fn fn, void *ctx, struct xba_error *err);

/*
 * An officer acknowledges inbox alert alert_id: marks it acknowledged and commits the signed ACK alert to the
 * outbox, both in one transaction of its own (must not be inside store_begin).  XBA_ENOTFOUND when the alert is
 * not in the inbox; XBA_EDUPLICATE when it is already acknowledged (by_out, may be NULL, gets who).
 */
int store_ack(struct store *s, const char *alert_id, const char *officer, int64_t now_ms,
    const struct store_alert_fields *ack, const uint8_t *ack_envelope, size_t ack_len, int64_t *ack_id_out,
    char by_out[132], struct xba_error *err);

/* ---- quarantine, receipts, cursor ---- */

/* Inside a transaction: a delivery this agent's own verification refused.  alert_id may be NULL (undecodable). */
int store_quarantine_add(struct store *s, uint64_t seq, int code, const char *reason, const char *alert_id,
    const char *rule, const uint8_t *envelope, size_t len, int64_t received_ms, struct xba_error *err);

/* A quarantined delivery not yet released, as store_quarantine_next hands it back (clear with
 * store_quarantined_clear). */
struct store_quarantined {
	int64_t id;                      /* row id, in quarantine order */
	uint64_t seq;                    /* the broker's journal sequence of the delivery */
	int64_t received_ms;             /* agent clock when it was quarantined */
	int code;                        /* Xba__V1__ErrorCode: why it was refused */
	char reason[520];                /* the verification's message */
	char alert_id[40];               /* as claimed by the delivery; "" when undecodable */
	char rule[72];
	uint8_t *envelope;               /* the serialized Envelope as delivered; NULL when there was none; owned */
	size_t envelope_len;
};

/* The oldest quarantined delivery with id > after_id that has not been released: 0 and *out, or XBA_ENOTFOUND. */
int store_quarantine_next(struct store *s, int64_t after_id, struct store_quarantined *out, struct xba_error *err);
/* Inside a transaction: quarantine row id was verified again and its alert stored in the inbox; the row is kept
 * with released_ms.  XBA_ENOTFOUND when it is not held (released already). */
int store_quarantine_release(struct store *s, int64_t id, int64_t released_ms, struct xba_error *err);
void store_quarantined_clear(struct store_quarantined *q);
/* The held (not released) entries, newest first, at most limit, with their envelopes (q is borrowed for the call,
 * so that a listing can say what each claims to be); a non-zero return of fn stops the walk and is returned. */
typedef int (*store_quarantined_fn)(void *ctx, const struct store_quarantined *q);
int store_quarantine_list(struct store *s, size_t limit, store_quarantined_fn fn, void *ctx, struct xba_error *err);
/* For audits (`xba audit verify --agent`): the inbox's alerts (sent false) or the accepted alerts this node sent
 * (sent true), with the journal seq the broker gave each, in row order after after_id, at most limit; fn sees
 * each (borrowed for the call; a non-zero return stops and is returned); *last_id is the last row's id. */
typedef int (*store_record_fn)(void *ctx, uint64_t seq, const char *alert_id, const uint8_t *envelope,
    size_t envelope_len);
int store_records(struct store *s, bool sent, int64_t after_id, size_t limit, store_record_fn fn, void *ctx,
    int64_t *last_id, struct xba_error *err);
/* Seqs released from the quarantine that the broker has not been told of yet (DeliveryAck.released), oldest first,
 * at most max into seqs; *n how many. */
int store_quarantine_unreported(struct store *s, uint64_t *seqs, size_t max, size_t *n, struct xba_error *err);
/* Releases already reported whose release was at or after since_ms, newest first, at most max: reported again at
 * each new session, in case a report was lost with the connection that carried it. */
int store_quarantine_reported_since(struct store *s, int64_t since_ms, uint64_t *seqs, size_t max, size_t *n,
    struct xba_error *err);
/* The broker has been sent these releases: in a transaction of its own (never inside store_begin). */
int store_quarantine_reported(struct store *s, const uint64_t *seqs, size_t n, struct xba_error *err);

/* Inside a transaction: a broker receipt for one of this node's alerts (kind = ReceiptKind).  A repeat of the
 * same (alert, node, kind) replaces the earlier one. */
int store_receipt_add(struct store *s, const char *alert_id, const char *node_id, int kind, int64_t time_ms,
    const char *officer, const char *note, struct xba_error *err);

/* The highest journal seq at or below limit of a delivery this agent holds (inbox or quarantine); 0 when none. */
int store_highest_held(struct store *s, uint64_t limit, uint64_t *out, struct xba_error *err);
/* The delivery cursor: the highest through_seq this agent sent in a DeliveryAck (Hello.resume_after). */
int store_through_seq(struct store *s, uint64_t *out, struct xba_error *err);
/* Inside a transaction. */
int store_set_through_seq(struct store *s, uint64_t through_seq, struct xba_error *err);
/*
 * The alert id journaled at the cursor's seq, as this agent received it ("" when not known: stores before it, a
 * delivery without a readable id, a cursor reset).  Hello carries it so that a broker whose journal holds another
 * alert under that seq (restored from a backup, its seqs since used again) can tell the cursor is not its own.
 */
int store_through_alert_id(struct store *s, uint64_t through_seq, char *out, size_t size, struct xba_error *err);
/* Inside a transaction.  Stored with its seq: an agent before 2026-11-27 (a downgrade, then back) moves the cursor
 * without it, and an id read for another seq would make the broker take a cursor for another journal's. */
int store_set_through_alert_id(struct store *s, uint64_t through_seq, const char *alert_id, struct xba_error *err);

int store_stats(struct store *s, struct store_stats *out, struct xba_error *err);

/* What one store_prune call deleted. */
struct store_pruned {
	uint64_t inbox, outgoing, receipts, quarantine;
	bool more;                       /* a table gave max_rows: call again for the rest */
};

/*
 * Retention, in a transaction of its own (never inside store_begin): delete at most max_rows per table of what is
 * finished and older than cutoff_ms: inbox alerts an officer acknowledged, or that their origin cancelled (and
 * ACKs) by received_ms, outgoing
 * alerts the broker answered by submitted_ms, receipts by time_ms, quarantine entries by received_ms.  An inbox
 * alert nobody acknowledged and the outbox are never pruned.  Rolled back whole on failure.
 */
int store_prune(struct store *s, int64_t cutoff_ms, size_t max_rows, struct store_pruned *out,
    struct xba_error *err);

void store_row_clear(struct store_row *row);
/* The inbox row store_inbox_add just wrote, for the push to `xba watch`: text copied from f and rule, envelope
 * taken over (row owns it from here). */
void store_row_from_inbox_add(struct store_row *row, const struct store_alert_fields *f, uint8_t *envelope,
    size_t len, uint64_t seq, const char *rule, int64_t received_ms);

#endif
