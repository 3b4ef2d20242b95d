/*
 * journal.h — the broker's durable memory and audit trail (SQLite, WAL, synchronous=FULL).
 *
 * Flow: the publish path appends each accepted alert with its routing decision inside a group-commit transaction
 * (journal_begin .. journal_append* .. journal_commit: one fsync for every publish that arrived meanwhile); only
 * after journal_commit returns 0 does the broker acknowledge those publishes.  The delivery path reads pending
 * deliveries per node (the envelopes of recent appends from memory: journal_envelope_ref), records delivery
 * acknowledgements and officers' acknowledgements, and `xba audit verify` walks the hash chain.  Every alert entry
 * carries the hash of the entry before it, so editing, inserting or deleting a row is detectable.
 *
 * Failure model: a crash at any point loses at most the transaction in progress, whose publishes were never
 * acknowledged; SQLite's WAL with synchronous=FULL makes a committed transaction survive power loss.  A write
 * that fails (disk full, read-only file) fails the whole transaction: journal_commit returns XBA_EIO and the
 * caller refuses every publish of the batch with JOURNAL_UNAVAILABLE.
 */
#ifndef XBA_JOURNAL_H
#define XBA_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "error.h"
#include "syntax.h"

struct journal;

enum delivery_state {
	DELIVERY_QUEUED = 1,        /* routed to the node, not yet acknowledged by its agent */
	DELIVERY_DELIVERED = 2,     /* the node's agent stored it durably (DeliveryAck) */
	DELIVERY_ACKNOWLEDGED = 3,  /* an officer at the node acknowledged it (ACK-type alert) */
	DELIVERY_WITHHELD = 4,      /* a deny or TLP rule kept it from the node; never sent */
	DELIVERY_REFUSED = 5,       /* the node's agent refused it: its own verification failed (quarantine) */
};

struct journal_recipient {
	const char *node_id;        /* recipient (or withheld) node */
	const char *rule;           /* rule that routed or withheld it */
};

/* One accepted alert and its routing decision, as journal_append() stores it. */
struct journal_entry {
	const char *alert_id;
	const char *origin;
	int64_t sent_ms;
	int64_t received_ms;        /* broker clock at acceptance */
	int msg_type;               /* Xba__V1__MsgType */
	bool emergency;
	const uint8_t *envelope;    /* serialized Envelope exactly as received */
	size_t envelope_len;
	const char *rules_version;  /* hex SHA-256 of the rules file that routed it */
	const struct journal_recipient *recipients;
	size_t n_recipients;
	const struct journal_recipient *withheld;
	size_t n_withheld;
	/* An UPDATE's or CANCEL's references: recorded as replaced or withdrawn by this entry (journal_superseded). */
	char *const *supersedes;
	size_t n_supersedes;
};

/* A pending delivery, as the delivery path reads it. */
struct journal_pending {
	uint64_t seq;
	bool emergency;
	char rule[65];
};

/* What journal_find() knows of an alert already journaled. */
struct journal_alert_info {
	uint64_t seq;
	char origin[33];
	uint8_t envelope_sha256[32];
	uint32_t recipients;        /* count of recipients (not withheld) */
	bool emergency;
};

/* One row of journal_track(). */
struct journal_track_row {
	char node_id[33];
	enum delivery_state state;
	char rule[65];
	int64_t time_ms;            /* delivered, acknowledged or refused time; 0 if none */
	int64_t delivered_ms;       /* ACKNOWLEDGED: when it was delivered (0: not recorded) */
	char officer[129];          /* ACKNOWLEDGED: who */
	char reason[65];            /* REFUSED: the node's error code name */
};

/* An alert as a receipt names it. */
struct journal_alert_brief {
	char alert_id[40];
	char origin[33];
	bool emergency;
};

/* *through = the node's highest delivery mark in this journal (0: none): it acknowledged every ordinary delivery at
 * or below it. */
int journal_delivery_mark(struct journal *j, const char *node_id, uint64_t *through, struct xba_error *err);

/* The alert journaled at seq, named for a log line or a receipt (all empty when seq is not in the journal). */
int journal_alert_brief_get(struct journal *j, uint64_t seq, struct journal_alert_brief *brief,
    struct xba_error *err);

/* Open or create the journal at path (parent directory must exist).  NULL on failure with err. */
struct journal *journal_open(const char *path, struct xba_error *err);
void journal_close(struct journal *j);

/* How long a statement waits for another connection's lock before failing with XBA_EIO (default 5000 ms). */
void journal_set_busy_timeout(struct journal *j, int ms);

/* Group commit.  journal_commit fsyncs once for everything since journal_begin. */
/*
 * Leave WAL checkpoints to another connection (checkpointer.c): this connection then checkpoints by itself only
 * when a commit leaves the WAL at safety_pages or more, i.e. when that other connection has fallen far behind.
 */
void journal_defer_checkpoints(struct journal *j, int safety_pages);

int journal_begin(struct journal *j, struct xba_error *err);
int journal_commit(struct journal *j, struct xba_error *err);
void journal_rollback(struct journal *j);
/* Whether the open transaction has written anything: only such a commit writes the WAL and waits for the fsync. */
bool journal_txn_writes(const struct journal *j);

/* Inside a transaction: store an alert, its deliveries and withheld records; *seq_out = its journal sequence. */
int journal_append(struct journal *j, const struct journal_entry *entry, uint64_t *seq_out, struct xba_error *err);

/* 0 and *info if alert_id is journaled, XBA_ENOTFOUND if not. */
int journal_find(struct journal *j, const char *alert_id, struct journal_alert_info *info, struct xba_error *err);

/* 0 if an UPDATE or a CANCEL journaled since the broker kept the record (2026-11-27) named alert_id: *by_type its
 * msg_type (a cancel wins over an update) and by_alert_id its id; XBA_ENOTFOUND if none did. */
int journal_superseded(struct journal *j, const char *alert_id, int *by_type, char *by_alert_id, size_t size,
    struct xba_error *err);

/* Highest sequence journaled (0 for an empty journal). */
uint64_t journal_head(const struct journal *j);
/* The hash of entry journal_head() (after a prune that left nothing, the base hash; zeros for a new journal):
 * what an audit prints for the next one to check (`xba audit verify --tip`). */
void journal_tip(const struct journal *j, uint8_t out[CHAIN_HASH_LEN]);

/*
 * Up to max pending (QUEUED) deliveries for node: every emergency first, by sequence, then the ordinary ones with a
 * sequence above after_seq (0: all), by sequence; skipping sequences for which skip(ctx, seq) returns true (those
 * already in flight).  The delivery path passes the highest ordinary sequence it has put in flight on the session,
 * since it sends them in order.  Returns the number written to out, or a negative error.
 */
int journal_pending(struct journal *j, const char *node_id, uint64_t after_seq, struct journal_pending *out, size_t max,
    bool (*skip)(void *ctx, uint64_t seq), void *ctx, struct xba_error *err);

/*
 * Number of QUEUED deliveries for node, and of those the emergencies (emergencies and capped may be NULL).  cap > 0
 * counts each of the two kinds only up to cap (the cost is a row per delivery counted): *capped then says whether
 * there were more, *emergencies_capped whether there were more emergencies.  0 counts them all.
 */
int journal_queue_depth(struct journal *j, const char *node_id, uint64_t cap, uint64_t *depth, uint64_t *emergencies,
    bool *capped, bool *emergencies_capped, struct xba_error *err);

/*
 * The stored envelope of seq, borrowed: *bytes (never NULL on success) is the journal's and stays valid only until
 * the next call on j.  Envelopes of recent appends come from an in-memory cache (bounded: journal_set_envelope_cache),
 * without SQLite or a copy; older ones (a backlog, anything before a restart) are read from the journal into a
 * buffer j reuses.  The delivery path reads each envelope once per recipient, so this is its per-delivery cost.
 * XBA_ENOTFOUND when seq is not (or no longer) journaled.
 */
int journal_envelope_ref(struct journal *j, uint64_t seq, const uint8_t **bytes, size_t *len, struct xba_error *err);

/* journal_envelope_ref into a malloc'ed copy (*out) the caller frees. */
int journal_envelope(struct journal *j, uint64_t seq, uint8_t **out, size_t *out_len, struct xba_error *err);

/* Bound the envelope cache: at most max_bytes of envelopes and max_entries seqs (defaults 8 MiB and 8192); 0 for
 * either disables it.  Drops whatever is cached; the memory is allocated at the next append. */
void journal_set_envelope_cache(struct journal *j, size_t max_bytes, size_t max_entries);

/* What the envelope cache holds and how journal_envelope_ref fared with it since journal_open. */
struct journal_cache_stats {
	uint64_t hits;              /* lookups served from memory */
	uint64_t misses;            /* lookups that read SQLite */
	size_t entries;             /* envelopes cached now */
	size_t bytes;               /* their total size */
};
void journal_envelope_cache_stats(const struct journal *j, struct journal_cache_stats *stats);

/* Inside a transaction: QUEUED -> DELIVERED for (node, seq); no-op when already delivered or acknowledged.
 * *changed tells whether the state changed (receipts are sent only then). */
int journal_mark_delivered(struct journal *j, const char *node_id, uint64_t seq, int64_t time_ms, bool *changed,
    struct xba_error *err);
/*
 * Inside a transaction, at a node's Hello, before journal_mark_delivered_through: when resume_after is below what
 * the node acknowledged cumulatively (its store was restored from a backup, or lost), every delivery to it after
 * resume_after that is recorded DELIVERED or REFUSED becomes QUEUED again, and the marks above resume_after go,
 * so the delivery pass sends them again (docs/protocol.md section 2.5).  Acknowledged ones stay acknowledged.
 * *rewound_from = the mark it went back from (0: nothing to do); *redeliveries = how many are queued again.
 */
int journal_rewind(struct journal *j, const char *node_id, uint64_t resume_after, uint64_t *rewound_from,
    uint64_t *redeliveries, struct xba_error *err);
/*
 * Inside a transaction, at a node's Hello that says the highest seq it holds (`held`, at least its resume_after):
 * every delivery to it above that recorded DELIVERED or REFUSED was lost by the node (an emergency jumps the queue
 * and is not in the cursor, so journal_rewind, which compares the cursor with the marks, misses it) and becomes
 * QUEUED again.  *rewound_from = the highest such seq (0: none); *redeliveries = how many.
 */
int journal_rewind_lost(struct journal *j, const char *node_id, uint64_t held, uint64_t *rewound_from,
    uint64_t *redeliveries, struct xba_error *err);
/* Inside a transaction: every QUEUED delivery of node with seq <= through (at most the head) becomes DELIVERED
 * (resume after a reconnect whose acknowledgement the broker had not recorded): emergencies row by row, the
 * ordinary ones as one delivery mark. */
int journal_mark_delivered_through(struct journal *j, const char *node_id, uint64_t through, int64_t time_ms,
    struct xba_error *err);
/*
 * Inside a transaction: node acknowledged the ordinary deliveries seqs[0..n), ascending.  When they are exactly its
 * QUEUED ordinary deliveries from its delivery mark up to seqs[n-1] (the usual case: the node takes them in order),
 * this records one mark, "node has every ordinary delivery through seqs[n-1]", instead of n row updates, and sets
 * *marked.  Otherwise it changes nothing and the caller marks them one by one with journal_mark_delivered.  Reads
 * of the delivery state (pending, queue depth, track, prune) count an ordinary delivery at or below its node's mark
 * as DELIVERED.
 */
int journal_mark_ordinary_run(struct journal *j, const char *node_id, const uint64_t *seqs, size_t n, int64_t time_ms,
    bool *marked, struct xba_error *err);

/* Inside a transaction: node's agent refused seq after its own verification (code: the name of its ErrorCode) and
 * keeps it in its quarantine: QUEUED or DELIVERED -> REFUSED.  *changed false when it was neither (acknowledged, or
 * refused already). */
int journal_mark_refused(struct journal *j, const char *node_id, uint64_t seq, const char *code, int64_t time_ms,
    bool *changed, struct xba_error *err);
/* Inside a transaction: node's agent verified seq since (its region.yaml was updated) and stored it: REFUSED ->
 * DELIVERED.  *changed false when it was not REFUSED; when changed, *brief (may be NULL) names the alert for the
 * receipt. */
int journal_mark_released(struct journal *j, const char *node_id, uint64_t seq, int64_t time_ms, bool *changed,
    struct journal_alert_brief *brief, struct xba_error *err);

/* Inside a transaction: an officer at node acknowledged alert seq (via an ACK-type alert). */
int journal_mark_acknowledged(struct journal *j, const char *node_id, uint64_t seq, const char *officer,
    const char *note, int64_t time_ms, bool *changed, struct xba_error *err);

/* Every recipient and withheld node of alert seq, sorted by node, calling row() for each; a non-zero return from
 * row() stops the walk and is returned.  XBA_ENOTFOUND when seq is not (or no longer) journaled. */
int journal_track(struct journal *j, uint64_t seq, int (*row)(void *ctx, const struct journal_track_row *r),
    void *ctx, struct xba_error *err);

/* Recompute the hash chain, then run SQLite's integrity_check (chain_check_file); XBA_OK, XBA_EDECODE naming the
 * first sequence whose hash does not match, or XBA_EDAMAGED naming what SQLite found damaged. */
int journal_audit_verify(struct journal *j, uint64_t *checked, struct xba_error *err);

/* Delete alerts received before cutoff_ms whose deliveries are all finished (delivered, acknowledged or
 * withheld), keeping the chain verifiable from the oldest kept entry.  *deleted = rows removed. */
int journal_prune(struct journal *j, int64_t cutoff_ms, uint64_t *deleted, struct xba_error *err);

/* What one journal_prune_some() did, and what stopped it. */
struct journal_pruned {
	uint64_t deleted;                       /* alerts removed */
	bool more;                              /* max_alerts stopped it: call again soon */
	uint64_t held_seq;                      /* > 0: the oldest alert past the cutoff still queued for ... */
	char held_by[XBA_NODE_ID_MAX + 1];      /* ... this listed node, which keeps it and every later alert */
};

/*
 * journal_prune, at most max_alerts in one transaction (the loop must not stall behind a year of them), and
 * counting only the queued deliveries of nodes listed(ctx, node) says are still in the region (NULL: every node):
 * a node taken out of region.yaml can never collect what was queued for it, and must not keep the journal from
 * being pruned for ever.  The journal is a hash chain, so it is pruned from its oldest end only: out->held_by
 * names the node whose queued delivery stops it.
 */
int journal_prune_some(struct journal *j, int64_t cutoff_ms, uint64_t max_alerts,
    bool (*listed)(void *ctx, const char *node_id), void *ctx, struct journal_pruned *out, struct xba_error *err);

#endif
