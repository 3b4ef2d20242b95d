/*
 * journal.c — the broker's journal (see journal.h): every accepted alert with its routing decision, the per-node
 * delivery state, and the hash chain that makes the history tamper-evident.  It sits between verification and
 * fan-out: an alert is acknowledged to its publisher only once journal_commit() has made it durable, and the
 * delivery path then reads each node's queue from here.
 *
 * Transaction lifecycle (one struct journal is driven by one thread at a time; the connection is opened
 * SQLITE_OPEN_NOMUTEX because the broker's event loop is its only user):
 *
 *   IDLE --journal_begin--> OPEN --journal_append / journal_mark_*--> OPEN
 *   OPEN --a write fails (disk full, I/O, lock)--> FAILED   (rolled back at once; head and tip restored)
 *   OPEN --journal_commit--> IDLE           (0, or XBA_EIO after rolling back)
 *   FAILED --journal_commit--> IDLE         (returns the first failure again; nothing was written)
 *   OPEN | FAILED --journal_rollback--> IDLE
 *
 * A FAILED transaction stays logically open so that the caller's batch loop can go on calling journal_append for
 * the rest of its publishes (each gets the stored failure) and learns the outcome from journal_commit, which is
 * where it decides to refuse the batch.  A duplicate alert id is not a failure of the transaction: SQLite undoes
 * only that statement, nothing of the entry was written, and the batch goes on.
 *
 * Durability: WAL with synchronous=FULL, so COMMIT fsyncs the WAL and a committed batch survives power loss; a
 * crash before COMMIT leaves nothing of the batch, whose publishes were never acknowledged.
 *
 * Hash chain: each entry's hash covers the one before it (lib/chain.c has the formula and the audit walk).
 * Delivery *state* (queued, delivered, acknowledged, times, officer) is deliberately outside the chain: it is
 * state that changes after the fact, not history.  Which nodes an alert went to or was withheld from, and by which
 * rule, is history and is chained.  The chain detects any edit, insertion or deletion of an entry before the tip;
 * removing entries from the tail is detectable only against a tip hash kept elsewhere (receipts, an operator's
 * note of `xba audit verify` output).
 *
 * Single writer: head and tip are kept in memory, so a second process writing the same journal is refused by the
 * seq primary key ("seq N already exists") rather than silently forking the chain.
 */
#include "journal.h"

#include "chain.h"
#include "sqlitefile.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOURNAL_SCHEMA_VERSION 2 /* 2: delivery_marks (1 is upgraded in place at open) */
#define JOURNAL_BUSY_TIMEOUT_MS 5000
#define JOURNAL_CACHE_KIB 16384     /* keeps the alert-id index and the queue index hot for a long-running broker */
#define HASH_LEN CHAIN_HASH_LEN
#define NODE_MAX 32                 /* sizeof(journal_track_row.node_id) - 1 */
#define RULE_MAX 64                 /* sizeof(journal_pending.rule) - 1 */
#define OFFICER_MAX 128             /* sizeof(journal_track_row.officer) - 1 */
#define ALERT_ID_MAX 128            /* a UUID is 36; the bound keeps every length an int for SQLite */
#define RULES_VERSION_MAX 128       /* hex SHA-256 is 64 */
#define WAL_SIZE_LIMIT (64 * 1024 * 1024) /* a burst's WAL is truncated back to this after a checkpoint */
/* The envelope cache's default bounds: 8 MiB holds ~8k typical (~1 KiB) envelopes, which covers the deliveries of
 * the turns right after an alert's commit (nearly all of them) and a node lagging up to ~8k alerts behind; a node
 * further behind reads SQLite, as before.  The arena becomes resident as it fills, within the broker's < 64 MiB
 * memory budget (docs/performance.md). */
#define ENVELOPE_CACHE_BYTES (8u * 1024 * 1024)
#define ENVELOPE_CACHE_ENTRIES 8192

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

_Static_assert(JOURNAL_SCHEMA_VERSION == CHAIN_SCHEMA_MAX,
    "a new journal schema: check that lib/chain.c's audit walk still reads it, then raise CHAIN_SCHEMA_MAX");
_Static_assert(DELIVERY_WITHHELD == CHAIN_DELIVERY_WITHHELD, "lib/chain.c reads withheld rows by this state");

/*
 * deliveries is keyed (seq, node) rather than (node, seq): appends then always land at the right edge of the
 * table's b-tree, and journal_track, the audit walk and pruning read it by seq.  The per-node queries go through
 * deliveries_queued, a partial index holding only QUEUED rows: it stays as small as the backlog however long the
 * journal grows, and it carries rule (and state, which SQLite 3.40 does not count as covered by the partial index's
 * WHERE) so that journal_pending and journal_queue_depth never touch the table.
 */
/*
 * delivery_marks (schema 2): "node has every ordinary delivery through through_seq, since delivered_ms".  A node
 * acknowledges its ordinary deliveries in seq order, so one mark row per acknowledgement replaces an UPDATE of each
 * delivery row (with its queue-index entry): that was the broker's biggest journal cost per alert after the
 * inserts (docs/performance.md).  A delivery row whose state is still QUEUED (1) but which is ordinary and at or
 * below its node's highest mark is DELIVERED, and every reader of the state applies that rule (mark_get).
 * Emergencies, deliveries acknowledged out of order, and officers' acknowledgements still update their rows.
 * Marks are state, like the rows' state: outside the hash chain.
 */
#define MARKS_SQL                                                                                                   \
	"CREATE TABLE delivery_marks ("                                                                             \
	" node TEXT NOT NULL,"                                                                                     \
	" through_seq INTEGER NOT NULL,"                                                                           \
	" delivered_ms INTEGER NOT NULL,"                                                                          \
	" PRIMARY KEY (node, through_seq)) WITHOUT ROWID;"

/*
 * supersessions: which UPDATE or CANCEL named an alert, so that the broker refuses an update of an alert already
 * replaced or withdrawn, and anything that names a withdrawn one (its origin's store restored from a backup would
 * otherwise let an officer bring a withdrawn emergency back to every recipient).  Derived from the journaled
 * envelopes, like the marks outside the hash chain, and created at open where absent, without a schema version
 * of its own: a journal of an older broker gains it (updates journaled before are not known: let through, as ones
 * whose reference was pruned), and an older broker still opens a journal that has it.
 */
#define SUPERSESSIONS_SQL                                                                                           \
	"CREATE TABLE IF NOT EXISTS supersessions ("                                                                \
	" alert_id TEXT PRIMARY KEY,"                                                                              \
	" by_alert_id TEXT NOT NULL,"                                                                              \
	" by_type INTEGER NOT NULL,"                                                                               \
	" by_seq INTEGER NOT NULL) WITHOUT ROWID;"

/*
 * delivered_high: per node, the highest seq marked delivered, refused or acknowledged row by row (emergencies, and
 * ordinary deliveries out of order): what journal_rewind_lost compares with what a node says it holds, so that a
 * Hello costs one lookup, not a read of the deliveries from the node's cursor to the head (a quiet node's cursor
 * can be far behind).  Derived, outside the chain, created at open like supersessions.
 */
#define DELIVERED_HIGH_SQL                                                                                          \
	"CREATE TABLE IF NOT EXISTS delivered_high (node TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;"

static const char schema_sql[] =
	"CREATE TABLE alerts ("
	" seq INTEGER PRIMARY KEY,"
	" alert_id TEXT NOT NULL UNIQUE,"
	" origin TEXT NOT NULL,"
	" sent_ms INTEGER NOT NULL,"
	" received_ms INTEGER NOT NULL,"
	" msg_type INTEGER NOT NULL,"
	" emergency INTEGER NOT NULL,"
	" envelope BLOB NOT NULL,"
	" envelope_sha256 BLOB NOT NULL,"
	" rules_version TEXT NOT NULL,"
	" recipients INTEGER NOT NULL,"
	" prev_hash BLOB NOT NULL,"
	" hash BLOB NOT NULL);"
	"CREATE TABLE deliveries ("
	" seq INTEGER NOT NULL,"
	" node TEXT NOT NULL,"
	" rule TEXT NOT NULL,"
	" state INTEGER NOT NULL,"
	" emergency INTEGER NOT NULL,"
	" delivered_ms INTEGER,"
	" acked_ms INTEGER,"
	" officer TEXT,"
	" note TEXT,"
	" PRIMARY KEY (seq, node)) WITHOUT ROWID;"
	"CREATE INDEX deliveries_queued ON deliveries(node, emergency DESC, seq, rule, state) WHERE state = 1;"
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	MARKS_SQL
	"PRAGMA user_version = 2;";

enum stmt_id {
	ST_BEGIN,
	ST_BEGIN_READ,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_INSERT_ALERT,
	ST_INSERT_DELIVERY,
	ST_FIND,
	ST_PENDING_EMERGENCY,
	ST_PENDING,
	ST_DEPTH_EMERGENCY,
	ST_ENVELOPE,
	ST_MARK_DELIVERED,
	ST_MARK_ACK,
	ST_STATE,
	ST_TRACK,
	ST_ALERT_EXISTS,
	ST_HEAD,
	ST_HASH_AT,
	ST_META_GET,
	ST_META_PUT,
	ST_PRUNE_FIRST_NEW,
	ST_PRUNE_DELIVERIES,
	ST_PRUNE_ALERTS,
	ST_MARK_GET,
	ST_MARK_PUT,
	ST_MARK_TIME,
	ST_QUEUED_ORDINARY,
	ST_DEPTH_ORDINARY,
	ST_MARK_THROUGH_EMERGENCY,
	ST_PRUNE_NEXT_NODE,
	ST_PRUNE_FIRST_EMERGENCY,
	ST_PRUNE_FIRST_ORDINARY,
	ST_PRUNE_MARKS,
	ST_MARK_REFUSED,
	ST_REWIND_MARKS,
	ST_REWIND_ROWS,
	ST_REWIND_UNDER_MARK,
	ST_MARK_RELEASED,
	ST_ALERT_BRIEF,
	ST_SUPERSEDE,
	ST_SUPERSEDED,
	ST_PRUNE_SUPERSESSIONS,
	ST_LOST_MAX,
	ST_HIGH_PUT,
	ST_HIGH_GET,
	ST_COUNT_
};

/* `state = 1` is written literally wherever the queue index should serve: SQLite uses a partial index only when it
 * can prove the WHERE clause implies the index's, which a bound parameter would not let it do. */
static const char *const stmt_sql[ST_COUNT_] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_BEGIN_READ] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_INSERT_ALERT] = "INSERT INTO alerts (seq, alert_id, origin, sent_ms, received_ms, msg_type, emergency,"
			    " envelope, envelope_sha256, rules_version, recipients, prev_hash, hash)"
			    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	[ST_INSERT_DELIVERY] = "INSERT INTO deliveries (seq, node, rule, state, emergency) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_FIND] = "SELECT seq, origin, envelope_sha256, recipients, emergency FROM alerts WHERE alert_id = ?1",
	[ST_PENDING_EMERGENCY] = "SELECT seq, emergency, rule FROM deliveries WHERE node = ?1 AND state = 1"
				 " AND emergency = 1 ORDER BY seq",
	[ST_PENDING] = "SELECT seq, emergency, rule FROM deliveries WHERE node = ?1 AND state = 1 AND emergency = 0"
		       " AND seq > ?2 ORDER BY seq",
	/* Counted up to a limit (-1: none): a node far behind has hundreds of thousands, and the loop waits. */
	[ST_DEPTH_EMERGENCY] = "SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE node = ?1 AND state = 1"
			       " AND emergency = 1 LIMIT ?2)",
	[ST_ENVELOPE] = "SELECT envelope FROM alerts WHERE seq = ?1",
	[ST_MARK_DELIVERED] = "UPDATE deliveries SET state = 2, delivered_ms = ?3"
			      " WHERE seq = ?2 AND node = ?1 AND state = 1",
	/* An officer's ACK of a REFUSED delivery proves the node has it after all (its release report was lost). */
	[ST_MARK_ACK] = "UPDATE deliveries SET state = 3, acked_ms = ?3, officer = ?4, note = ?5,"
			" delivered_ms = coalesce(delivered_ms, ?3)"
			" WHERE seq = ?2 AND node = ?1 AND state IN (1, 2, 5)",
	[ST_STATE] = "SELECT state FROM deliveries WHERE seq = ?2 AND node = ?1",
	[ST_TRACK] = "SELECT node, state, rule, delivered_ms, acked_ms, officer, emergency, note FROM deliveries"
		     " WHERE seq = ?1 ORDER BY node",
	[ST_ALERT_EXISTS] = "SELECT 1 FROM alerts WHERE seq = ?1",
	[ST_HEAD] = "SELECT max(seq) FROM alerts",
	[ST_HASH_AT] = "SELECT hash FROM alerts WHERE seq = ?1",
	[ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[ST_META_PUT] = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
	[ST_PRUNE_FIRST_NEW] = "SELECT seq FROM alerts WHERE received_ms >= ?1 ORDER BY seq LIMIT 1",
	[ST_PRUNE_DELIVERIES] = "DELETE FROM deliveries WHERE seq <= ?1",
	[ST_PRUNE_ALERTS] = "DELETE FROM alerts WHERE seq <= ?1",
	[ST_MARK_GET] = "SELECT max(through_seq) FROM delivery_marks WHERE node = ?1",
	[ST_MARK_PUT] = "INSERT OR REPLACE INTO delivery_marks (node, through_seq, delivered_ms) VALUES (?1, ?2, ?3)",
	[ST_MARK_TIME] = "SELECT delivered_ms FROM delivery_marks WHERE node = ?1 AND through_seq >= ?2"
			 " ORDER BY through_seq LIMIT 1",
	[ST_QUEUED_ORDINARY] = "SELECT seq FROM deliveries WHERE node = ?1 AND state = 1 AND emergency = 0"
			       " AND seq > ?2 AND seq <= ?3 ORDER BY seq",
	[ST_DEPTH_ORDINARY] = "SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE node = ?1 AND state = 1"
			      " AND emergency = 0 AND seq > ?2 LIMIT ?3)",
	[ST_MARK_THROUGH_EMERGENCY] = "UPDATE deliveries SET state = 2, delivered_ms = ?3"
				      " WHERE node = ?1 AND state = 1 AND emergency = 1 AND seq <= ?2",
	/* Node by node through the queue index (a seek each), for prune: the rows under a mark are in the index too. */
	[ST_PRUNE_NEXT_NODE] = "SELECT min(node) FROM deliveries INDEXED BY deliveries_queued WHERE state = 1"
			       " AND node > ?1",
	[ST_PRUNE_FIRST_EMERGENCY] = "SELECT min(seq) FROM deliveries WHERE node = ?1 AND state = 1 AND emergency = 1",
	[ST_PRUNE_FIRST_ORDINARY] = "SELECT min(seq) FROM deliveries WHERE node = ?1 AND state = 1 AND emergency = 0"
				    " AND seq > ?2",
	[ST_PRUNE_MARKS] = "DELETE FROM delivery_marks WHERE through_seq <= ?1",
	/* A refused delivery keeps when (delivered_ms: when the node's agent refused it) and why (note: the code). */
	[ST_MARK_REFUSED] = "UPDATE deliveries SET state = 5, delivered_ms = ?3, note = ?4"
			    " WHERE seq = ?2 AND node = ?1 AND state IN (1, 2)",
	[ST_MARK_RELEASED] = "UPDATE deliveries SET state = 2, delivered_ms = ?3, note = NULL"
			     " WHERE seq = ?2 AND node = ?1 AND state = 5",
	[ST_ALERT_BRIEF] = "SELECT alert_id, origin, emergency FROM alerts WHERE seq = ?1",
	/* The first update that replaced an alert stays its record, and a cancel replaces that (withdrawn is final). */
	[ST_SUPERSEDE] = "INSERT INTO supersessions (alert_id, by_alert_id, by_type, by_seq) VALUES (?1, ?2, ?3, ?4)"
			 " ON CONFLICT (alert_id) DO UPDATE SET by_alert_id = excluded.by_alert_id,"
			 " by_type = excluded.by_type, by_seq = excluded.by_seq"
			 " WHERE excluded.by_type = 3 AND supersessions.by_type != 3",
	[ST_SUPERSEDED] = "SELECT by_type, by_alert_id FROM supersessions WHERE alert_id = ?1",
	[ST_PRUNE_SUPERSESSIONS] = "DELETE FROM supersessions WHERE by_seq <= ?1",
	/* A range of the deliveries' primary key from ?2: at a Hello, ?2 is near the head. */
	[ST_LOST_MAX] = "SELECT max(seq) FROM deliveries WHERE seq > ?2 AND node = ?1 AND state IN (2, 5)",
	[ST_HIGH_PUT] = "INSERT INTO delivered_high (node, seq) VALUES (?1, ?2) ON CONFLICT (node) DO UPDATE"
			" SET seq = excluded.seq WHERE excluded.seq > delivered_high.seq",
	[ST_HIGH_GET] = "SELECT seq FROM delivered_high WHERE node = ?1",
	/* journal_rewind: a node's store went back in time (restored from a backup). */
	[ST_REWIND_MARKS] = "DELETE FROM delivery_marks WHERE node = ?1 AND through_seq > ?2",
	[ST_REWIND_ROWS] = "UPDATE deliveries SET state = 1, delivered_ms = NULL, note = NULL"
			   " WHERE seq > ?2 AND node = ?1 AND state IN (2, 5)",
	[ST_REWIND_UNDER_MARK] = "SELECT count(*) FROM deliveries WHERE node = ?1 AND state = 1 AND emergency = 0"
				 " AND seq > ?2 AND seq <= ?3",
};

enum txn_state {
	TXN_IDLE,       /* no transaction */
	TXN_OPEN,       /* between journal_begin and journal_commit/rollback */
	TXN_FAILED,     /* a write failed: rolled back already, waiting for journal_commit/rollback */
};

/*
 * Envelopes of the most recent appends, so that the delivery path (one read per recipient: six per alert) does not
 * SELECT from SQLite what journal_append had in hand.  Slots cover consecutive seqs first .. first + count - 1 in a
 * ring; their bytes live in one arena used as a ring allocator (an envelope is never split, so the tail of the arena
 * may go unused when placement wraps to 0).  The oldest slot is always cached; a newer one may be absent (len 0:
 * an empty or oversized envelope), which reads SQLite.  The cache is a copy of what the open transaction (or the
 * journal) holds: a rollback drops the seqs it undid, because the next append reuses them for other alerts.
 */
struct cache_slot {
	size_t off;     /* offset of the envelope in the arena */
	size_t len;     /* its length; 0: not cached */
};

struct envelope_cache {
	uint8_t *arena;                 /* max_bytes; allocated at the first append that caches */
	size_t max_bytes;               /* arena size; 0 disables the cache */
	struct cache_slot *slots;       /* ring of max_entries slots */
	size_t max_entries;             /* 0 disables the cache */
	size_t start;                   /* ring index of seq first */
	size_t count;                   /* slots in use */
	uint64_t first;                 /* seq of the oldest slot */
	size_t wpos;                    /* arena offset just past the newest cached envelope */
	uint64_t hits, misses;          /* journal_envelope_ref lookups, for tests and tuning */
};

struct journal {
	sqlite3 *db;                            /* the one connection */
	char *path;                             /* as given to journal_open, for messages */
	sqlite3_stmt *st[ST_COUNT_];            /* prepared once at open, reset after every use */
	enum txn_state txn;                     /* see the lifecycle above */
	sqlite3_int64 changes_at_begin;         /* sqlite3_total_changes64() at journal_begin */
	struct xba_error failure;               /* TXN_FAILED: the write that failed it */
	uint64_t head;                          /* highest seq, including this transaction's appends */
	uint8_t tip[HASH_LEN];                  /* hash of entry head (or base_hash when there is none) */
	uint64_t committed_head;                /* head as of the last commit: restored on rollback */
	uint8_t committed_tip[HASH_LEN];        /* tip as of the last commit */
	struct chain *chain;                    /* the hash chain's digest state (lib/chain.c) */
	const struct journal_recipient **sorted; /* journal_append: recipients then withheld, each sorted */
	size_t sorted_cap;                      /* entries allocated in sorted */
	struct envelope_cache cache;            /* recent envelopes for the delivery path */
	uint8_t *envelope_out;                  /* journal_envelope_ref: a cache miss's bytes, valid until the next call */
	size_t envelope_out_cap;                /* allocated in envelope_out (envelopes are bounded: grown to fit) */
	struct node_mark *marks;                /* each node's highest delivery mark, sorted by node; loaded lazily */
	size_t n_marks, cap_marks;              /* cleared on rollback and prune, when the table changed under it */
};

struct node_mark {
	char node[NODE_MAX + 1];
	uint64_t through;                       /* 0: no mark */
};

/* ---- envelope cache ---- */

static struct cache_slot *
cache_slot(struct envelope_cache *c, size_t i)
{
	return &c->slots[(c->start + i) % c->max_entries];
}

static void
cache_clear(struct envelope_cache *c)
{
	c->start = 0;
	c->count = 0;
	c->first = 0;
	c->wpos = 0;
}

/* Drops the oldest slot, then any absent slots behind it, so that the oldest slot is always cached. */
static void
cache_pop_oldest(struct envelope_cache *c)
{
	do {
		c->start = (c->start + 1) % c->max_entries;
		c->first++;
		c->count--;
	} while (c->count > 0 && cache_slot(c, 0)->len == 0);
	if (c->count == 0)
		cache_clear(c);
}

/* Whether arena bytes [p, p + len) hold a cached envelope.  The live bytes run from the oldest slot's offset to
 * wpos, wrapping past the arena's end when the oldest offset is not below wpos. */
static bool
cache_overlaps(const struct envelope_cache *c, size_t p, size_t len)
{
	size_t oldest;

	if (c->count == 0)
		return false;
	oldest = c->slots[c->start].off;
	if (oldest < c->wpos)
		return p < c->wpos && oldest < p + len;
	return p + len > oldest || p < c->wpos;
}

/* Best effort: an envelope that cannot be cached (empty, larger than the arena, no memory) is read from SQLite
 * later; an append never fails because of the cache. */
static void
cache_put(struct envelope_cache *c, uint64_t seq, const uint8_t *bytes, size_t len)
{
	struct cache_slot *slot;
	size_t p;

	if (c->max_bytes == 0 || c->max_entries == 0)
		return;
	if (c->count > 0 && seq != c->first + c->count)
		cache_clear(c); /* not the next seq: cannot happen with one writer, but never serve a wrong slot */
	if (c->slots == NULL) {
		c->slots = calloc(c->max_entries, sizeof(*c->slots));
		c->arena = malloc(c->max_bytes);
		if (c->slots == NULL || c->arena == NULL) {
			free(c->slots);
			free(c->arena);
			c->slots = NULL;
			c->arena = NULL;
			return;
		}
	}
	if (len == 0 || len > c->max_bytes) {
		if (c->count == 0)
			return; /* nothing to keep contiguous with */
		if (c->count == c->max_entries)
			cache_pop_oldest(c);
		if (c->count == 0)
			return;
		slot = cache_slot(c, c->count++);
		slot->off = 0;
		slot->len = 0;
		return;
	}
	if (c->count == c->max_entries)
		cache_pop_oldest(c);
	p = c->max_bytes - c->wpos >= len ? c->wpos : 0;
	while (cache_overlaps(c, p, len))
		cache_pop_oldest(c);
	if (c->count == 0)
		c->first = seq;
	slot = cache_slot(c, c->count++);
	slot->off = p;
	slot->len = len;
	memcpy(c->arena + p, bytes, len);
	c->wpos = p + len;
}

/* Drops the slots of seqs above seq (a rollback undid them). */
static void
cache_drop_after(struct envelope_cache *c, uint64_t seq)
{
	while (c->count > 0 && c->first + c->count - 1 > seq)
		c->count--;
	if (c->count == 0) {
		cache_clear(c);
		return;
	}
	/* The newest remaining slot that is cached ends the live bytes; the oldest slot is always cached. */
	for (size_t i = c->count; i-- > 0;) {
		const struct cache_slot *slot = cache_slot(c, i);

		if (slot->len > 0) {
			c->wpos = slot->off + slot->len;
			break;
		}
	}
}

/* Drops the slots of seqs up to seq (pruned). */
static void
cache_drop_through(struct envelope_cache *c, uint64_t seq)
{
	while (c->count > 0 && c->first <= seq)
		cache_pop_oldest(c);
}

static bool
cache_get(const struct envelope_cache *c, uint64_t seq, const uint8_t **bytes, size_t *len)
{
	const struct cache_slot *slot;

	if (c->count == 0 || seq < c->first || seq - c->first >= c->count)
		return false;
	slot = &c->slots[(c->start + (size_t)(seq - c->first)) % c->max_entries];
	if (slot->len == 0)
		return false;
	*bytes = c->arena + slot->off;
	*len = slot->len;
	return true;
}

/* ---- errors ---- */

/* Which system call an SQLITE_IOERR_* was: "disk I/O error" alone does not tell a full disk from a dying one. */
static const char *
ioerr_call(int ext)
{
	switch (ext) {
	case SQLITE_IOERR_READ:
	case SQLITE_IOERR_SHORT_READ: return "read failed";
	case SQLITE_IOERR_WRITE: return "write failed";
	case SQLITE_IOERR_FSYNC:
	case SQLITE_IOERR_DIR_FSYNC: return "fsync failed";
	case SQLITE_IOERR_TRUNCATE: return "truncate failed";
	case SQLITE_IOERR_FSTAT: return "fstat failed";
	case SQLITE_IOERR_LOCK:
	case SQLITE_IOERR_RDLOCK:
	case SQLITE_IOERR_UNLOCK: return "file lock failed";
	case SQLITE_IOERR_SHMOPEN:
	case SQLITE_IOERR_SHMSIZE:
	case SQLITE_IOERR_SHMMAP: return "WAL shared memory failed";
	}
	return "I/O failed";
}

/* The connection's last error as an xba code and a message naming the journal, the operation and, for I/O, the
 * failed call and errno.  Called before the failed statement is reset, while the message is still its own. */
static int
db_error(struct journal *j, struct xba_error *err, const char *op)
{
	int ext = sqlite3_extended_errcode(j->db), primary = ext & 0xff, code, sys = 0;

	code = primary == SQLITE_NOMEM ? XBA_ENOMEM : XBA_EIO;
	/* A damaged file does not mend by itself as a full disk does once space is freed: say so, and what to do,
	 * in the message every refused publish and its log line carry. */
	if (primary == SQLITE_CORRUPT)
		return xba_error_set(err, XBA_EDAMAGED, "journal %s: %s: %s: the journal file is damaged: restore it "
		    "from a checked backup (docs/operations.md section 7)", j->path, op, sqlite3_errmsg(j->db));
	if (primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_CANTOPEN)
		sys = sqlite3_system_errno(j->db);
	if (primary == SQLITE_IOERR)
		return xba_error_set(err, code, "journal %s: %s: %s (%s%s%s)", j->path, op, sqlite3_errmsg(j->db),
		    ioerr_call(ext), sys != 0 ? ": " : "", sys != 0 ? strerror(sys) : "");
	if (sys != 0)
		return xba_error_set(err, code, "journal %s: %s: %s (%s)", j->path, op, sqlite3_errmsg(j->db),
		    strerror(sys));
	return xba_error_set(err, code, "journal %s: %s: %s", j->path, op, sqlite3_errmsg(j->db));
}

/* A statement failed outside any write: report it and reset the statement. */
static int
stmt_fail(struct journal *j, sqlite3_stmt *st, struct xba_error *err, const char *op)
{
	int code = db_error(j, err, op);

	sqlite3_reset(st);
	return code;
}

/* Ends the transaction for good after a failure: roll back (releasing the write lock and taking SQLite's pager out
 * of any error state) and put head and tip back to the last commit. */
static void
txn_undo(struct journal *j)
{
	if (!sqlite3_get_autocommit(j->db)) {
		sqlite3_step(j->st[ST_ROLLBACK]);
		sqlite3_reset(j->st[ST_ROLLBACK]);
	}
	j->head = j->committed_head;
	memcpy(j->tip, j->committed_tip, HASH_LEN);
	/* The undone seqs will be reused by the next appends: their cached envelopes must not be served for them. */
	cache_drop_after(&j->cache, j->committed_head);
	j->n_marks = 0; /* marks written by the undone transaction are gone: read them again */
}

/* A write inside the transaction failed (st, may be NULL, is the statement): undo the transaction now and keep the
 * failure, which every later call of the batch and journal_commit report again.  Returns the code. */
static int
txn_fail(struct journal *j, sqlite3_stmt *st, struct xba_error *err, const char *op)
{
	struct xba_error local;

	db_error(j, &local, op);
	if (st != NULL)
		sqlite3_reset(st);
	txn_undo(j);
	j->failure = local;
	j->txn = TXN_FAILED;
	if (err != NULL)
		*err = local;
	return local.code;
}

static int
txn_failed_already(struct journal *j, struct xba_error *err, const char *op)
{
	return xba_error_set(err, j->failure.code, "%s (%s refused: the transaction already failed and was rolled back)",
	    j->failure.msg, op);
}

/* A read failed.  SQLite may have rolled an open transaction back on its own (I/O error, out of memory); if so
 * the transaction is failed as if a write had failed, so that journal_commit cannot report a success. */
static int
read_fail(struct journal *j, sqlite3_stmt *st, struct xba_error *err, const char *op)
{
	if (j->txn == TXN_OPEN && sqlite3_get_autocommit(j->db))
		return txn_fail(j, st, err, op);
	return stmt_fail(j, st, err, op);
}

/* ---- open and close ---- */

static int
exec_sql(struct journal *j, const char *sql, const char *op, struct xba_error *err)
{
	char *msg = NULL;

	if (sqlite3_exec(j->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int code = sqlite3_errcode(j->db) == SQLITE_NOMEM ? XBA_ENOMEM : XBA_EIO;

		xba_error_set(err, code, "journal %s: %s: %s", j->path, op, msg != NULL ? msg : "failed");
		sqlite3_free(msg);
		return code;
	}
	return 0;
}

/* A one-row, one-integer query run at open (user_version, max(seq)); *is_null tells an empty max(). */
static int
query_int(struct journal *j, sqlite3_stmt *st, int64_t *out, bool *is_null, const char *op, struct xba_error *err)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_ROW)
		return stmt_fail(j, st, err, op);
	if (is_null != NULL)
		*is_null = sqlite3_column_type(st, 0) == SQLITE_NULL;
	*out = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

static int
user_version(struct journal *j, int64_t *version, struct xba_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(j->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return db_error(j, err, "read schema version");
	rc = query_int(j, st, version, NULL, "read schema version", err);
	sqlite3_finalize(st);
	return rc;
}

static int
check_version(struct journal *j, int64_t version, struct xba_error *err)
{
	if (version > JOURNAL_SCHEMA_VERSION)
		return xba_error_set(err, XBA_EIO,
		    "journal %s: schema version %lld is newer than this program understands (%d): it was written by a "
		    "newer xba-broker; run that version, or restore a journal from this version",
		    j->path, (long long)version, JOURNAL_SCHEMA_VERSION);
	if (version < 0)
		return xba_error_set(err, XBA_EIO, "journal %s: schema version %lld is not an XBA journal's", j->path,
		    (long long)version);
	return 0;
}

/*
 * The tables a broker of 2026-11-27 derives, where absent.  delivered_high is filled once from the deliveries when
 * it is created (one read of the table, at the first start after the upgrade): empty, it would let a restored agent
 * store lose the emergencies delivered before the upgrade.
 */
static int
create_derived_tables(struct journal *j, struct xba_error *err)
{
	sqlite3_stmt *st = NULL;
	bool exists = false;
	int rc;

	if (sqlite3_prepare_v2(j->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'delivered_high'", -1,
	    &st, NULL) != SQLITE_OK)
		return db_error(j, err, "look for the derived tables");
	rc = sqlite3_step(st);
	exists = rc == SQLITE_ROW;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(j, err, "look for the derived tables");
	if ((rc = exec_sql(j, SUPERSESSIONS_SQL DELIVERED_HIGH_SQL, "create the derived tables", err)) != 0 || exists)
		return rc;
	return exec_sql(j, "INSERT OR REPLACE INTO delivered_high (node, seq) SELECT node, max(seq) FROM deliveries"
			   " WHERE state IN (2, 3, 5) GROUP BY node;", "fill the highest deliveries", err);
}

/* Creates the schema on a new file, or upgrades an older one.  BEGIN IMMEDIATE and a second look at the version
 * make two processes opening the same file at once safe: the second finds the schema the first created. */
static int
ensure_schema(struct journal *j, struct xba_error *err)
{
	int64_t version = 0;
	int rc;

	if ((rc = user_version(j, &version, err)) != 0 || (rc = check_version(j, version, err)) != 0)
		return rc;
	if (version == JOURNAL_SCHEMA_VERSION)
		return create_derived_tables(j, err);
	if ((rc = exec_sql(j, "BEGIN IMMEDIATE", "create schema", err)) != 0)
		return rc;
	if ((rc = user_version(j, &version, err)) == 0 && (rc = check_version(j, version, err)) == 0) {
		if (version == 0)
			rc = exec_sql(j, schema_sql, "create schema (is this file an XBA journal?)", err);
		else if (version == 1) /* before delivery marks: no mark yet, so every row keeps its meaning */
			rc = exec_sql(j, MARKS_SQL "PRAGMA user_version = 2;", "upgrade schema 1 to 2", err);
	}
	if (rc == 0)
		rc = create_derived_tables(j, err);
	if (rc == 0)
		return exec_sql(j, "COMMIT", "create schema", err);
	sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int
meta_get_int(struct journal *j, const char *key, int64_t *out, struct xba_error *err)
{
	sqlite3_stmt *st = j->st[ST_META_GET];
	int rc;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*out = 0;
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		return stmt_fail(j, st, err, "read meta");
	sqlite3_reset(st);
	return 0;
}

/* A hash read back from the file (meta base_hash, an entry's hash); absent means zeros (no base yet). */
static int
read_hash(struct journal *j, sqlite3_stmt *st, uint8_t out[HASH_LEN], const char *what, struct xba_error *err)
{
	int rc = sqlite3_step(st);

	memset(out, 0, HASH_LEN);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != HASH_LEN) {
			sqlite3_reset(st);
			return xba_error_set(err, XBA_EDECODE, "journal %s: %s is not a %d-byte hash", j->path, what,
			    HASH_LEN);
		}
		memcpy(out, sqlite3_column_blob(st, 0), HASH_LEN);
	} else if (rc != SQLITE_DONE) {
		return stmt_fail(j, st, err, what);
	}
	sqlite3_reset(st);
	return 0;
}

/* The prune base: the seq and hash the oldest kept entry chains from (0 and zeros before any prune). */
static int
read_base(struct journal *j, uint64_t *base_seq, uint8_t base_hash[HASH_LEN], struct xba_error *err)
{
	int64_t seq;
	int rc;

	if ((rc = meta_get_int(j, "base_seq", &seq, err)) != 0)
		return rc;
	if (seq < 0)
		return xba_error_set(err, XBA_EDECODE, "journal %s: meta base_seq is negative", j->path);
	*base_seq = (uint64_t)seq;
	sqlite3_bind_text(j->st[ST_META_GET], 1, "base_hash", -1, SQLITE_STATIC);
	return read_hash(j, j->st[ST_META_GET], base_hash, "meta base_hash", err);
}

/* Head and tip without a scan: max() on the INTEGER PRIMARY KEY is one b-tree descent, and so is the tip's row. */
static int
load_head(struct journal *j, struct xba_error *err)
{
	uint64_t base_seq = 0;
	int64_t max_seq = 0;
	bool empty = true;
	int rc;

	if ((rc = read_base(j, &base_seq, j->tip, err)) != 0)
		return rc;
	if ((rc = query_int(j, j->st[ST_HEAD], &max_seq, &empty, "read head", err)) != 0)
		return rc;
	j->head = base_seq;
	if (!empty && (uint64_t)max_seq > base_seq) {
		j->head = (uint64_t)max_seq;
		sqlite3_bind_int64(j->st[ST_HASH_AT], 1, max_seq);
		if ((rc = read_hash(j, j->st[ST_HASH_AT], j->tip, "read chain tip", err)) != 0)
			return rc;
	}
	j->committed_head = j->head;
	memcpy(j->committed_tip, j->tip, HASH_LEN);
	return 0;
}

/*
 * The journal holds every alert, TLP:RED included: a new file is created 0600 before SQLite sees it, and SQLite
 * gives the -wal and -shm files the database file's permissions.  An existing file keeps the mode it has.
 */
struct journal *
journal_open(const char *path, struct xba_error *err)
{
	static const struct sqlitefile_options file_options = {
		.kind = "journal",
		.busy_timeout_ms = JOURNAL_BUSY_TIMEOUT_MS,
		.wal_size_limit = WAL_SIZE_LIMIT,
		.cache_kib = JOURNAL_CACHE_KIB,
	};
	struct journal *j;

	assert(path != NULL);
	if ((j = calloc(1, sizeof(*j))) == NULL || (j->path = strdup(path)) == NULL) {
		free(j);
		xba_error_set(err, XBA_ENOMEM, "journal %s: out of memory", path);
		return NULL;
	}
	j->cache.max_bytes = ENVELOPE_CACHE_BYTES;
	j->cache.max_entries = ENVELOPE_CACHE_ENTRIES;
	/* "file:" names are SQLite URIs (this SQLite is built to read them), not paths to create. */
	if (sqlitefile_open(path, &file_options, &j->db, err) != 0 || ensure_schema(j, err) != 0)
		goto fail;
	for (int i = 0; i < ST_COUNT_; i++) {
		if (sqlite3_prepare_v3(j->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &j->st[i], NULL) != SQLITE_OK) {
			db_error(j, err, "prepare statements (is this file an XBA journal?)");
			goto fail;
		}
	}
	if ((j->chain = chain_new(path, err)) == NULL)
		goto fail;
	if (load_head(j, err) != 0)
		goto fail;
	xba_error_clear(err);
	return j;
fail:
	journal_close(j);
	return NULL;
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	for (int i = 0; i < ST_COUNT_; i++)
		sqlite3_finalize(j->st[i]);
	/* An open transaction is rolled back by sqlite3_close: its publishes were never acknowledged. */
	sqlite3_close(j->db);
	chain_free(j->chain);
	free(j->sorted);
	free(j->cache.slots);
	free(j->cache.arena);
	free(j->envelope_out);
	free(j->marks);
	free(j->path);
	free(j);
}

void
journal_defer_checkpoints(struct journal *j, int safety_pages)
{
	assert(j != NULL && safety_pages > 0);
	sqlite3_wal_autocheckpoint(j->db, safety_pages);
}

void
journal_set_busy_timeout(struct journal *j, int ms)
{
	assert(j != NULL);
	sqlite3_busy_timeout(j->db, ms);
}

void
journal_set_envelope_cache(struct journal *j, size_t max_bytes, size_t max_entries)
{
	assert(j != NULL);
	free(j->cache.slots);
	free(j->cache.arena);
	j->cache.slots = NULL;
	j->cache.arena = NULL;
	cache_clear(&j->cache);
	j->cache.max_bytes = max_bytes;
	j->cache.max_entries = max_entries;
}

void
journal_envelope_cache_stats(const struct journal *j, struct journal_cache_stats *stats)
{
	const struct envelope_cache *c;

	assert(j != NULL && stats != NULL);
	c = &j->cache;
	memset(stats, 0, sizeof(*stats));
	stats->hits = c->hits;
	stats->misses = c->misses;
	for (size_t i = 0; i < c->count; i++) {
		const struct cache_slot *slot = &c->slots[(c->start + i) % c->max_entries];

		if (slot->len > 0) {
			stats->entries++;
			stats->bytes += slot->len;
		}
	}
}

/* ---- transactions ---- */

int
journal_begin(struct journal *j, struct xba_error *err)
{
	sqlite3_stmt *st;
	int rc;

	assert(j != NULL && j->txn == TXN_IDLE);
	st = j->st[ST_BEGIN];
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return stmt_fail(j, st, err, "begin transaction");
	sqlite3_reset(st);
	j->txn = TXN_OPEN;
	j->changes_at_begin = sqlite3_total_changes64(j->db);
	return 0;
}

int
journal_commit(struct journal *j, struct xba_error *err)
{
	sqlite3_stmt *st;
	int rc;

	assert(j != NULL && j->txn != TXN_IDLE);
	if (j->txn == TXN_FAILED) {
		j->txn = TXN_IDLE;
		return txn_failed_already(j, err, "commit");
	}
	st = j->st[ST_COMMIT];
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		/* SQLite may keep the transaction open after a failed COMMIT, for a retry; the caller refuses the
		 * batch instead, so it is rolled back and nothing of it can reach the disk later. */
		rc = txn_fail(j, st, err, "commit");
		j->txn = TXN_IDLE;
		return rc;
	}
	sqlite3_reset(st);
	j->committed_head = j->head;
	memcpy(j->committed_tip, j->tip, HASH_LEN);
	j->txn = TXN_IDLE;
	return 0;
}

bool
journal_txn_writes(const struct journal *j)
{
	assert(j != NULL);
	/* Not sqlite3_txn_state(): BEGIN IMMEDIATE holds the write lock from the start, written or not. */
	return j->txn == TXN_OPEN && sqlite3_total_changes64(j->db) != j->changes_at_begin;
}

void
journal_rollback(struct journal *j)
{
	assert(j != NULL);
	if (j->txn == TXN_IDLE)
		return;
	txn_undo(j);
	j->txn = TXN_IDLE;
}

/* ---- append ---- */

static int
recipient_cmp(const struct journal_recipient *a, const struct journal_recipient *b)
{
	int c = strcmp(a->node_id, b->node_id);

	return c != 0 ? c : strcmp(a->rule, b->rule);
}

/* Lists are a handful of nodes: insertion sort of pointers, no allocation, no qsort callback overhead. */
static void
sort_recipients(const struct journal_recipient **v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		const struct journal_recipient *x = v[i];
		size_t k = i;

		for (; k > 0 && recipient_cmp(v[k - 1], x) > 0; k--)
			v[k] = v[k - 1];
		v[k] = x;
	}
}

static int
check_text(struct journal *j, const char *what, const char *text, size_t max, size_t *len, struct xba_error *err)
{
	if (text == NULL || text[0] == '\0')
		return xba_error_set(err, XBA_EINVAL, "journal %s: append: %s is missing", j->path, what);
	*len = strlen(text);
	if (*len > max)
		return xba_error_set(err, XBA_EINVAL, "journal %s: append: %s \"%.40s...\" is longer than %zu bytes",
		    j->path, what, text, max);
	return 0;
}

/* Validates the lists and lays them out in j->sorted (recipients, then withheld), each sorted by node.  A node in
 * both lists or twice in one is refused here, before anything is written, so the transaction is not failed. */
static int
prepare_lists(struct journal *j, const struct journal_entry *e, struct xba_error *err)
{
	size_t n = e->n_recipients + e->n_withheld, len;
	const struct journal_recipient **all;
	int rc;

	if (n > j->sorted_cap) {
		if (n > SIZE_MAX / sizeof(*all) || (all = realloc(j->sorted, n * sizeof(*all))) == NULL)
			return xba_error_set(err, XBA_ENOMEM, "journal %s: append: out of memory", j->path);
		j->sorted = all;
		j->sorted_cap = n;
	}
	all = j->sorted;
	for (size_t i = 0; i < n; i++) {
		const struct journal_recipient *r = i < e->n_recipients ? &e->recipients[i]
		    : &e->withheld[i - e->n_recipients];

		if ((rc = check_text(j, "recipient node", r->node_id, NODE_MAX, &len, err)) != 0 ||
		    (rc = check_text(j, "rule", r->rule, RULE_MAX, &len, err)) != 0)
			return rc;
		all[i] = r;
	}
	sort_recipients(all, e->n_recipients);
	sort_recipients(all + e->n_recipients, e->n_withheld);
	for (size_t i = 1; i < n; i++) {
		if (i != e->n_recipients && strcmp(all[i - 1]->node_id, all[i]->node_id) == 0)
			return xba_error_set(err, XBA_EINVAL, "journal %s: append %s: node %s is listed twice", j->path,
			    e->alert_id, all[i]->node_id);
	}
	/* Across the two lists: a merge walk of two sorted runs. */
	for (size_t a = 0, b = e->n_recipients; a < e->n_recipients && b < n;) {
		int c = strcmp(all[a]->node_id, all[b]->node_id);

		if (c == 0)
			return xba_error_set(err, XBA_EINVAL,
			    "journal %s: append %s: node %s is both a recipient and withheld", j->path, e->alert_id,
			    all[a]->node_id);
		if (c < 0)
			a++;
		else
			b++;
	}
	chain_pairs_clear(j->chain);
	for (size_t i = 0; i < n; i++) {
		if ((rc = chain_pair_add(j->chain, i >= e->n_recipients, all[i]->node_id, strlen(all[i]->node_id),
		    all[i]->rule, strlen(all[i]->rule), err)) != 0)
			return rc;
	}
	return 0;
}

int
journal_append(struct journal *j, const struct journal_entry *e, uint64_t *seq_out, struct xba_error *err)
{
	struct chain_entry f = { 0 };
	uint8_t envelope_sha256[HASH_LEN], hash[HASH_LEN];
	sqlite3_stmt *st;
	size_t n;
	int rc;

	assert(j != NULL && e != NULL);
	assert(e->recipients != NULL || e->n_recipients == 0);
	assert(e->withheld != NULL || e->n_withheld == 0);
	assert(j->txn != TXN_IDLE); /* journal_append outside journal_begin .. journal_commit */
	if (j->txn == TXN_FAILED)
		return txn_failed_already(j, err, "append");
	if ((rc = check_text(j, "alert id", e->alert_id, ALERT_ID_MAX, &f.alert_id_len, err)) != 0 ||
	    (rc = check_text(j, "origin", e->origin, NODE_MAX, &f.origin_len, err)) != 0 ||
	    (rc = check_text(j, "rules version", e->rules_version, RULES_VERSION_MAX, &f.rules_version_len, err)) != 0)
		return rc;
	if (e->envelope == NULL && e->envelope_len > 0)
		return xba_error_set(err, XBA_EINVAL, "journal %s: append %s: envelope is missing", j->path,
		    e->alert_id);
	if (e->envelope_len > INT_MAX)
		return xba_error_set(err, XBA_ETOOBIG, "journal %s: append %s: envelope of %zu bytes is too big",
		    j->path, e->alert_id, e->envelope_len);
	if ((rc = prepare_lists(j, e, err)) != 0)
		return rc;
	if ((rc = chain_sha256(j->chain, e->envelope, e->envelope_len, envelope_sha256, err)) != 0)
		return rc;
	f.seq = j->head + 1;
	f.alert_id = e->alert_id;
	f.origin = e->origin;
	f.sent_ms = e->sent_ms;
	f.received_ms = e->received_ms;
	f.msg_type = e->msg_type;
	f.emergency = e->emergency ? 1 : 0;
	f.envelope_sha256 = envelope_sha256;
	f.rules_version = e->rules_version;
	if ((rc = chain_hash(j->chain, j->tip, &f, hash, err)) != 0)
		return rc;

	st = j->st[ST_INSERT_ALERT];
	sqlite3_bind_int64(st, 1, (int64_t)f.seq);
	sqlite3_bind_text(st, 2, e->alert_id, (int)f.alert_id_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e->origin, (int)f.origin_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, e->sent_ms);
	sqlite3_bind_int64(st, 5, e->received_ms);
	sqlite3_bind_int(st, 6, e->msg_type);
	sqlite3_bind_int(st, 7, e->emergency ? 1 : 0);
	/* A NULL pointer would bind SQL NULL; an empty envelope is stored as an empty blob. */
	sqlite3_bind_blob(st, 8, e->envelope != NULL ? (const void *)e->envelope : "", (int)e->envelope_len,
	    SQLITE_STATIC);
	sqlite3_bind_blob(st, 9, envelope_sha256, HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, e->rules_version, (int)f.rules_version_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, (int64_t)e->n_recipients);
	sqlite3_bind_blob(st, 12, j->tip, HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 13, hash, HASH_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		/* A constraint failure undoes only this statement (nothing of the entry was written): the batch goes
		 * on.  A clash on seq means another process appended behind our back: the chain would fork. */
		if (sqlite3_extended_errcode(j->db) == SQLITE_CONSTRAINT_UNIQUE) {
			sqlite3_reset(st);
			return xba_error_set(err, XBA_EDUPLICATE, "journal %s: append: alert %s is already journaled",
			    j->path, e->alert_id);
		}
		if (sqlite3_extended_errcode(j->db) == SQLITE_CONSTRAINT_PRIMARYKEY) {
			txn_fail(j, st, NULL, "append");
			xba_error_set(&j->failure, XBA_EIO,
			    "journal %s: append: seq %llu already exists: is another process writing this journal?",
			    j->path, (unsigned long long)f.seq);
			if (err != NULL)
				*err = j->failure;
			return XBA_EIO;
		}
		return txn_fail(j, st, err, "append alert");
	}
	sqlite3_reset(st);

	/* Sorted order is the table's key order: each insert lands next to the previous one. */
	st = j->st[ST_INSERT_DELIVERY];
	n = e->n_recipients + e->n_withheld;
	for (size_t i = 0; i < n; i++) {
		const struct journal_recipient *r = j->sorted[i];

		sqlite3_bind_int64(st, 1, (int64_t)f.seq);
		sqlite3_bind_text(st, 2, r->node_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r->rule, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, i < e->n_recipients ? DELIVERY_QUEUED : DELIVERY_WITHHELD);
		sqlite3_bind_int(st, 5, e->emergency ? 1 : 0);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE) {
			/* The alert row is in: only rolling the transaction back removes it again. */
			return txn_fail(j, st, err, "append delivery");
		}
		sqlite3_reset(st);
	}
	st = j->st[ST_SUPERSEDE];
	for (size_t i = 0; i < e->n_supersedes; i++) {
		sqlite3_bind_text(st, 1, e->supersedes[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, e->alert_id, (int)f.alert_id_len, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, e->msg_type);
		sqlite3_bind_int64(st, 4, (int64_t)f.seq);
		if (sqlite3_step(st) != SQLITE_DONE)
			return txn_fail(j, st, err, "append supersession");
		sqlite3_reset(st);
	}
	j->head = f.seq;
	memcpy(j->tip, hash, HASH_LEN);
	cache_put(&j->cache, f.seq, e->envelope, e->envelope_len);
	if (seq_out != NULL)
		*seq_out = f.seq;
	return 0;
}

/* ---- reads ---- */

int
journal_superseded(struct journal *j, const char *alert_id, int *by_type, char *by_alert_id, size_t size,
    struct xba_error *err)
{
	sqlite3_stmt *st = j->st[ST_SUPERSEDED];
	int rc;

	assert(j != NULL && alert_id != NULL && by_type != NULL && by_alert_id != NULL && size > 0);
	*by_type = 0;
	by_alert_id[0] = '\0';
	sqlite3_bind_text(st, 1, alert_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *by = sqlite3_column_text(st, 1);

		*by_type = sqlite3_column_int(st, 0);
		snprintf(by_alert_id, size, "%s", by != NULL ? (const char *)by : "");
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_DONE)
		return read_fail(j, st, err, "read supersessions");
	sqlite3_reset(st);
	return XBA_ENOTFOUND;
}

static void
copy_text(char *dst, size_t size, const unsigned char *src)
{
	snprintf(dst, size, "%s", src != NULL ? (const char *)src : "");
}

int
journal_find(struct journal *j, const char *alert_id, struct journal_alert_info *info, struct xba_error *err)
{
	sqlite3_stmt *st;
	int rc;

	assert(j != NULL && alert_id != NULL && info != NULL);
	st = j->st[ST_FIND];
	sqlite3_bind_text(st, 1, alert_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(info, 0, sizeof(*info));
		info->seq = (uint64_t)sqlite3_column_int64(st, 0);
		copy_text(info->origin, sizeof(info->origin), sqlite3_column_text(st, 1));
		if (sqlite3_column_bytes(st, 2) == HASH_LEN)
			memcpy(info->envelope_sha256, sqlite3_column_blob(st, 2), HASH_LEN);
		info->recipients = (uint32_t)sqlite3_column_int64(st, 3);
		info->emergency = sqlite3_column_int(st, 4) != 0;
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = xba_error_set(err, XBA_ENOTFOUND, "journal %s: alert %s is not journaled", j->path, alert_id);
	} else {
		return read_fail(j, st, err, "find alert");
	}
	sqlite3_reset(st);
	return rc;
}

uint64_t
journal_head(const struct journal *j)
{
	assert(j != NULL);
	return j->head;
}

void
journal_tip(const struct journal *j, uint8_t out[CHAIN_HASH_LEN])
{
	assert(j != NULL);
	memcpy(out, j->tip, CHAIN_HASH_LEN);
}

/* Append the rows of st (seq, emergency, rule) to out[*n..max), skipping what skip() names; 0 or an error. */
static int
pending_rows(struct journal *j, sqlite3_stmt *st, struct journal_pending *out, size_t *n, size_t max,
    bool (*skip)(void *ctx, uint64_t seq), void *ctx, struct xba_error *err)
{
	int rc = SQLITE_DONE;

	while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);

		if (skip != NULL && skip(ctx, seq))
			continue;
		out[*n].seq = seq;
		out[*n].emergency = sqlite3_column_int(st, 1) != 0;
		copy_text(out[*n].rule, sizeof(out[*n].rule), sqlite3_column_text(st, 2));
		(*n)++;
	}
	if (*n < max && rc != SQLITE_DONE)
		return read_fail(j, st, err, "read pending deliveries");
	sqlite3_reset(st);
	return 0;
}

static int mark_get(struct journal *j, const char *node_id, uint64_t *through, struct xba_error *err);

int
journal_pending(struct journal *j, const char *node_id, uint64_t after_seq, struct journal_pending *out, size_t max,
    bool (*skip)(void *ctx, uint64_t seq), void *ctx, struct xba_error *err)
{
	sqlite3_stmt *st;
	size_t n = 0;
	uint64_t mark;
	int rc;

	assert(j != NULL && node_id != NULL && (out != NULL || max == 0));
	if (max > INT_MAX)
		max = INT_MAX;
	if (max == 0)
		return 0;
	st = j->st[ST_PENDING_EMERGENCY];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	if ((rc = pending_rows(j, st, out, &n, max, skip, ctx, err)) != 0)
		return rc;
	/* A range seek past after_seq: what the caller already has in flight is not even read (it used to be read,
	 * and skipped, on every pass: with a large credit window, most of the queue).  Past the node's delivery mark
	 * too: the ordinary rows under it are delivered, though their rows still say QUEUED. */
	if ((rc = mark_get(j, node_id, &mark, err)) != 0)
		return rc;
	if (mark > after_seq)
		after_seq = mark;
	st = j->st[ST_PENDING];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, after_seq > INT64_MAX ? INT64_MAX : (int64_t)after_seq);
	if ((rc = pending_rows(j, st, out, &n, max, skip, ctx, err)) != 0)
		return rc;
	return (int)n;
}

int
journal_queue_depth(struct journal *j, const char *node_id, uint64_t cap, uint64_t *depth, uint64_t *emergencies,
    bool *capped, bool *emergencies_capped, struct xba_error *err)
{
	/* One more than the cap is counted, to tell "exactly cap" from "more". */
	int64_t limit = cap == 0 || cap >= INT64_MAX ? -1 : (int64_t)cap + 1;
	uint64_t part;
	sqlite3_stmt *st;
	uint64_t mark;
	int rc;

	assert(j != NULL && node_id != NULL && depth != NULL);
	if ((rc = mark_get(j, node_id, &mark, err)) != 0)
		return rc;
	/* Emergencies, then the ordinary deliveries above the mark: two range counts in the queue index. */
	if (capped != NULL)
		*capped = false;
	if (emergencies_capped != NULL)
		*emergencies_capped = false;
	st = j->st[ST_DEPTH_EMERGENCY];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, limit);
	if (sqlite3_step(st) != SQLITE_ROW)
		return read_fail(j, st, err, "read queue depth");
	part = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (limit > 0 && part > cap) {
		part = cap;
		if (capped != NULL)
			*capped = true;
		if (emergencies_capped != NULL)
			*emergencies_capped = true;
	}
	*depth = part;
	if (emergencies != NULL)
		*emergencies = part;
	st = j->st[ST_DEPTH_ORDINARY];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)mark);
	sqlite3_bind_int64(st, 3, limit);
	if (sqlite3_step(st) != SQLITE_ROW)
		return read_fail(j, st, err, "read queue depth");
	part = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (limit > 0 && part > cap) {
		part = cap;
		if (capped != NULL)
			*capped = true;
	}
	*depth += part;
	return 0;
}

/* The envelope of seq from SQLite, copied into j->envelope_out (the blob is SQLite's only until the reset). */
static int
read_envelope(struct journal *j, uint64_t seq, const uint8_t **bytes, size_t *len, struct xba_error *err)
{
	sqlite3_stmt *st = j->st[ST_ENVELOPE];
	int rc;

	sqlite3_bind_int64(st, 1, (int64_t)seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);

		uint8_t *grown = NULL;

		/* One spare byte: an empty envelope still gets a non-NULL pointer. */
		if (n + 1 > j->envelope_out_cap && (grown = realloc(j->envelope_out, n + 1)) != NULL) {
			j->envelope_out = grown;
			j->envelope_out_cap = n + 1;
		}
		if (n + 1 > j->envelope_out_cap) {
			rc = xba_error_set(err, XBA_ENOMEM, "journal %s: envelope of seq %llu: out of memory", j->path,
			    (unsigned long long)seq);
		} else {
			if (n > 0)
				memcpy(j->envelope_out, blob, n);
			*bytes = j->envelope_out;
			*len = n;
			rc = 0;
		}
	} else if (rc == SQLITE_DONE) {
		rc = xba_error_set(err, XBA_ENOTFOUND, "journal %s: no entry seq %llu (pruned or never journaled)",
		    j->path, (unsigned long long)seq);
	} else {
		return read_fail(j, st, err, "read envelope");
	}
	sqlite3_reset(st);
	return rc;
}

int
journal_envelope_ref(struct journal *j, uint64_t seq, const uint8_t **bytes, size_t *len, struct xba_error *err)
{
	assert(j != NULL && bytes != NULL && len != NULL);
	*bytes = NULL;
	*len = 0;
	if (cache_get(&j->cache, seq, bytes, len)) {
		j->cache.hits++;
		return 0;
	}
	j->cache.misses++;
	return read_envelope(j, seq, bytes, len, err);
}

int
journal_envelope(struct journal *j, uint64_t seq, uint8_t **out, size_t *out_len, struct xba_error *err)
{
	const uint8_t *bytes;
	size_t len;
	int rc;

	assert(j != NULL && out != NULL && out_len != NULL);
	*out = NULL;
	*out_len = 0;
	if ((rc = journal_envelope_ref(j, seq, &bytes, &len, err)) != 0)
		return rc;
	/* malloc(0) may return NULL: one spare byte keeps an empty envelope distinguishable from failure. */
	if ((*out = malloc(len + 1)) == NULL)
		return xba_error_set(err, XBA_ENOMEM, "journal %s: envelope of seq %llu: out of memory", j->path,
		    (unsigned long long)seq);
	if (len > 0)
		memcpy(*out, bytes, len);
	*out_len = len;
	return 0;
}

/* ---- delivery state ---- */

/* Index in j->marks of node, or where it would go (*found false). */
static size_t
mark_slot(const struct journal *j, const char *node_id, bool *found)
{
	size_t lo = 0, hi = j->n_marks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(j->marks[mid].node, node_id);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/* Remember node's highest mark (through) in the sorted array.  Out of memory, the array is only emptied: it is a
 * cache of delivery_marks, which the next lookup reads again. */
static void
mark_remember(struct journal *j, const char *node_id, uint64_t through)
{
	bool found;
	size_t i = mark_slot(j, node_id, &found);

	if (found) {
		j->marks[i].through = through;
		return;
	}
	if (strlen(node_id) > NODE_MAX)
		return; /* not a node id the journal stores */
	if (j->n_marks == j->cap_marks) {
		size_t cap = j->cap_marks ? j->cap_marks * 2 : 16;
		struct node_mark *m = realloc(j->marks, cap * sizeof(*m));

		if (m == NULL) {
			j->n_marks = 0;
			return;
		}
		j->marks = m;
		j->cap_marks = cap;
	}
	memmove(&j->marks[i + 1], &j->marks[i], (j->n_marks - i) * sizeof(*j->marks));
	snprintf(j->marks[i].node, sizeof(j->marks[i].node), "%s", node_id);
	j->marks[i].through = through;
	j->n_marks++;
}

/* Drop node's cached mark, so that the next mark_get reads delivery_marks. */
static void
mark_forget(struct journal *j, const char *node_id)
{
	bool found;
	size_t i = mark_slot(j, node_id, &found);

	if (!found)
		return;
	memmove(&j->marks[i], &j->marks[i + 1], (j->n_marks - i - 1) * sizeof(*j->marks));
	j->n_marks--;
}

/* *through = node's highest delivery mark (0: none): every ordinary delivery of node at or below it is delivered. */
static int
mark_get(struct journal *j, const char *node_id, uint64_t *through, struct xba_error *err)
{
	sqlite3_stmt *st;
	bool found, is_null = false;
	size_t i = mark_slot(j, node_id, &found);
	int64_t v = 0;

	if (found) {
		*through = j->marks[i].through;
		return 0;
	}
	st = j->st[ST_MARK_GET];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		return read_fail(j, st, err, "read delivery mark");
	is_null = sqlite3_column_type(st, 0) == SQLITE_NULL;
	v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	*through = is_null || v < 0 ? 0 : (uint64_t)v;
	mark_remember(j, node_id, *through);
	return 0;
}

/* Inside a transaction: node has every ordinary delivery through seq, since time_ms. */
static int
mark_put(struct journal *j, const char *node_id, uint64_t through, int64_t time_ms, struct xba_error *err)
{
	sqlite3_stmt *st = j->st[ST_MARK_PUT];

	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)through);
	sqlite3_bind_int64(st, 3, time_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(j, st, err, "record delivery mark");
	sqlite3_reset(st);
	mark_remember(j, node_id, through);
	return 0;
}

/* After an UPDATE that changed nothing: why.  0 when the row exists in a state the caller's transition leaves
 * alone (already delivered or acknowledged); XBA_ENOTFOUND when the node never had the alert routed to it. */
static int
unchanged_reason(struct journal *j, const char *node_id, uint64_t seq, const char *op, struct xba_error *err)
{
	sqlite3_stmt *st = j->st[ST_STATE];
	int rc, state = 0;

	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		state = sqlite3_column_int(st, 0);
	else if (rc != SQLITE_DONE)
		return read_fail(j, st, err, op);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return xba_error_set(err, XBA_ENOTFOUND, "journal %s: %s: seq %llu was not routed to %s", j->path, op,
		    (unsigned long long)seq, node_id);
	if (state == DELIVERY_WITHHELD)
		return xba_error_set(err, XBA_ENOTFOUND, "journal %s: %s: seq %llu was withheld from %s", j->path, op,
		    (unsigned long long)seq, node_id);
	return 0;
}

/* One delivery-state UPDATE of (node ?1, seq ?2) at time ?3 in the open transaction; the caller binds any further
 * parameters first.  *did: a row changed.  A failed step fails the transaction. */
static int
step_mark(struct journal *j, sqlite3_stmt *st, const char *node_id, uint64_t seq, int64_t time_ms, const char *op,
    bool *did, struct xba_error *err)
{
	assert(j != NULL && node_id != NULL);
	assert(j->txn != TXN_IDLE);
	*did = false;
	if (j->txn == TXN_FAILED)
		return txn_failed_already(j, err, op);
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)seq);
	sqlite3_bind_int64(st, 3, time_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(j, st, err, op);
	*did = sqlite3_changes(j->db) > 0;
	sqlite3_reset(st);
	if (!*did)
		return 0;
	st = j->st[ST_HIGH_PUT];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)seq);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(j, st, err, op);
	sqlite3_reset(st);
	return 0;
}

int
journal_mark_delivered(struct journal *j, const char *node_id, uint64_t seq, int64_t time_ms, bool *changed,
    struct xba_error *err)
{
	bool did;
	int rc = step_mark(j, j->st[ST_MARK_DELIVERED], node_id, seq, time_ms, "mark delivered", &did, err);

	if (changed != NULL)
		*changed = did;
	if (rc != 0)
		return rc;
	return did ? 0 : unchanged_reason(j, node_id, seq, "mark delivered", err);
}

int
journal_mark_delivered_through(struct journal *j, const char *node_id, uint64_t through, int64_t time_ms,
    struct xba_error *err)
{
	sqlite3_stmt *st;
	uint64_t mark;
	int rc;

	assert(j != NULL && node_id != NULL);
	assert(j->txn != TXN_IDLE);
	if (j->txn == TXN_FAILED)
		return txn_failed_already(j, err, "mark delivered through");
	/* Emergencies row by row; the ordinary ones with one mark.  Not past the head: a mark there would also cover
	 * alerts journaled later, which the node has never seen. */
	if (through > j->head)
		through = j->head;
	st = j->st[ST_MARK_THROUGH_EMERGENCY];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)through);
	sqlite3_bind_int64(st, 3, time_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(j, st, err, "mark delivered through");
	sqlite3_reset(st);
	if ((rc = mark_get(j, node_id, &mark, err)) != 0)
		return rc;
	return through > mark ? mark_put(j, node_id, through, time_ms, err) : 0;
}

int
journal_rewind(struct journal *j, const char *node_id, uint64_t resume_after, uint64_t *rewound_from,
    uint64_t *redeliveries, struct xba_error *err)
{
	sqlite3_stmt *st;
	uint64_t mark;
	int rc;

	assert(j != NULL && node_id != NULL && rewound_from != NULL && redeliveries != NULL);
	assert(j->txn != TXN_IDLE);
	*rewound_from = *redeliveries = 0;
	if (j->txn == TXN_FAILED)
		return txn_failed_already(j, err, "rewind deliveries");
	if ((rc = mark_get(j, node_id, &mark, err)) != 0)
		return rc;
	if (resume_after >= mark)
		return 0;  /* the usual case: the node has at least what it acknowledged */
	/* The ordinary deliveries the marks being dropped covered are QUEUED rows already: counted, not written. */
	st = j->st[ST_REWIND_UNDER_MARK];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)resume_after);
	sqlite3_bind_int64(st, 3, (int64_t)mark);
	if (sqlite3_step(st) != SQLITE_ROW)
		return read_fail(j, st, err, "count deliveries to rewind");
	*redeliveries = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	st = j->st[ST_REWIND_MARKS];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)resume_after);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(j, st, err, "rewind delivery marks");
	sqlite3_reset(st);
	st = j->st[ST_REWIND_ROWS];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)resume_after);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(j, st, err, "rewind deliveries");
	*redeliveries += (uint64_t)sqlite3_changes(j->db);
	sqlite3_reset(st);
	/* The highest mark left is at most resume_after; read it again rather than guess. */
	mark_forget(j, node_id);
	*rewound_from = mark;
	return 0;
}

int
journal_rewind_lost(struct journal *j, const char *node_id, uint64_t held, uint64_t *rewound_from,
    uint64_t *redeliveries, struct xba_error *err)
{
	sqlite3_stmt *st;
	int rc;

	assert(j != NULL && node_id != NULL && rewound_from != NULL && redeliveries != NULL);
	assert(j->txn != TXN_IDLE);
	*rewound_from = *redeliveries = 0;
	if (j->txn == TXN_FAILED)
		return txn_failed_already(j, err, "rewind lost deliveries");
	/* The usual case in one lookup: nothing was marked row by row above what the node holds. */
	st = j->st[ST_HIGH_GET];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE || (rc == SQLITE_ROW && (uint64_t)sqlite3_column_int64(st, 0) <= held)) {
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW)
		return read_fail(j, st, err, "read the highest delivery");
	sqlite3_reset(st);
	st = j->st[ST_LOST_MAX];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, held > INT64_MAX ? INT64_MAX : (int64_t)held);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		*rewound_from = (uint64_t)sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return read_fail(j, st, err, "find lost deliveries");
	sqlite3_reset(st);
	if (*rewound_from == 0)
		return 0; /* the usual case: nothing delivered above what the node holds */
	st = j->st[ST_REWIND_ROWS];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)held);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(j, st, err, "rewind lost deliveries");
	*redeliveries = (uint64_t)sqlite3_changes(j->db);
	sqlite3_reset(st);
	return 0;
}

int
journal_mark_ordinary_run(struct journal *j, const char *node_id, const uint64_t *seqs, size_t n, int64_t time_ms,
    bool *marked, struct xba_error *err)
{
	sqlite3_stmt *st;
	uint64_t mark;
	size_t matched = 0;
	int rc;

	assert(j != NULL && node_id != NULL && marked != NULL && (seqs != NULL || n == 0));
	assert(j->txn != TXN_IDLE);
	*marked = false;
	if (j->txn == TXN_FAILED)
		return txn_failed_already(j, err, "mark delivered");
	if (n == 0)
		return 0;
	if ((rc = mark_get(j, node_id, &mark, err)) != 0)
		return rc;
	if (seqs[0] <= mark || seqs[n - 1] > (uint64_t)INT64_MAX)
		return 0; /* not a run above the mark: row by row */
	/* The node's QUEUED ordinary deliveries between the mark and the run's end must be exactly the run. */
	st = j->st[ST_QUEUED_ORDINARY];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)mark);
	sqlite3_bind_int64(st, 3, (int64_t)seqs[n - 1]);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (matched == n || (uint64_t)sqlite3_column_int64(st, 0) != seqs[matched]) {
			matched = n + 1; /* a queued delivery the run does not name, or one out of step */
			break;
		}
		matched++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return read_fail(j, st, err, "read queued deliveries");
	sqlite3_reset(st);
	if (matched != n)
		return 0;
	if ((rc = mark_put(j, node_id, seqs[n - 1], time_ms, err)) != 0)
		return rc;
	*marked = true;
	return 0;
}

int
journal_mark_acknowledged(struct journal *j, const char *node_id, uint64_t seq, const char *officer,
    const char *note, int64_t time_ms, bool *changed, struct xba_error *err)
{
	sqlite3_stmt *st = j->st[ST_MARK_ACK];
	size_t len;
	bool did = false;
	int rc;

	if (changed != NULL)
		*changed = false;
	/* A failed transaction is reported before the officer's text is looked at. */
	if (j->txn == TXN_FAILED)
		return txn_failed_already(j, err, "mark acknowledged");
	if (officer != NULL && (rc = check_text(j, "officer", officer, OFFICER_MAX, &len, err)) != 0)
		return rc;
	sqlite3_bind_text(st, 4, officer, -1, SQLITE_STATIC);       /* NULL binds SQL NULL */
	sqlite3_bind_text(st, 5, note, -1, SQLITE_STATIC);
	rc = step_mark(j, st, node_id, seq, time_ms, "mark acknowledged", &did, err);
	if (changed != NULL)
		*changed = did;
	if (rc != 0)
		return rc;
	return did ? 0 : unchanged_reason(j, node_id, seq, "mark acknowledged", err);
}

int
journal_mark_refused(struct journal *j, const char *node_id, uint64_t seq, const char *code, int64_t time_ms,
    bool *changed, struct xba_error *err)
{
	sqlite3_stmt *st = j->st[ST_MARK_REFUSED];
	int rc;

	assert(code != NULL);
	sqlite3_bind_text(st, 4, code, -1, SQLITE_STATIC);
	if ((rc = step_mark(j, st, node_id, seq, time_ms, "mark refused", changed, err)) != 0)
		return rc;
	return *changed ? 0 : unchanged_reason(j, node_id, seq, "mark refused", err);
}

int
journal_mark_released(struct journal *j, const char *node_id, uint64_t seq, int64_t time_ms, bool *changed,
    struct journal_alert_brief *brief, struct xba_error *err)
{
	int rc;

	if ((rc = step_mark(j, j->st[ST_MARK_RELEASED], node_id, seq, time_ms, "mark released", changed, err)) != 0)
		return rc;
	if (!*changed || brief == NULL)
		return 0;
	return journal_alert_brief_get(j, seq, brief, err);
}

int
journal_delivery_mark(struct journal *j, const char *node_id, uint64_t *through, struct xba_error *err)
{
	assert(j != NULL && node_id != NULL && through != NULL);
	return mark_get(j, node_id, through, err);
}

int
journal_alert_brief_get(struct journal *j, uint64_t seq, struct journal_alert_brief *brief, struct xba_error *err)
{
	sqlite3_stmt *st = j->st[ST_ALERT_BRIEF];
	int rc;

	memset(brief, 0, sizeof(*brief));
	sqlite3_bind_int64(st, 1, (int64_t)seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		copy_text(brief->alert_id, sizeof(brief->alert_id), sqlite3_column_text(st, 0));
		copy_text(brief->origin, sizeof(brief->origin), sqlite3_column_text(st, 1));
		brief->emergency = sqlite3_column_int(st, 2) != 0;
	} else if (rc != SQLITE_DONE) {
		return read_fail(j, st, err, "read alert");
	}
	sqlite3_reset(st);
	return 0;
}

/* An ordinary delivery of seq to node whose row says QUEUED: *covered when a delivery mark covers it (it is
 * delivered), with *time_ms = when the first such mark was recorded. */
static int
marked_time(struct journal *j, const char *node_id, uint64_t seq, bool *covered, int64_t *time_ms,
    struct xba_error *err)
{
	sqlite3_stmt *st;
	uint64_t mark;
	int rc;

	*covered = false;
	if ((rc = mark_get(j, node_id, &mark, err)) != 0 || seq > mark)
		return rc;
	st = j->st[ST_MARK_TIME];
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*time_ms = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		return read_fail(j, st, err, "read delivery mark");
	sqlite3_reset(st);
	*covered = true;
	return 0;
}

int
journal_track(struct journal *j, uint64_t seq, int (*row)(void *ctx, const struct journal_track_row *r), void *ctx,
    struct xba_error *err)
{
	struct journal_track_row r;
	sqlite3_stmt *st;
	size_t rows = 0;
	int rc, stop = 0;

	assert(j != NULL && row != NULL);
	st = j->st[ST_TRACK];
	sqlite3_bind_int64(st, 1, (int64_t)seq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		copy_text(r.node_id, sizeof(r.node_id), sqlite3_column_text(st, 0));
		r.state = (enum delivery_state)sqlite3_column_int(st, 1);
		copy_text(r.rule, sizeof(r.rule), sqlite3_column_text(st, 2));
		if (r.state == DELIVERY_ACKNOWLEDGED) {
			r.time_ms = sqlite3_column_int64(st, 4);
			r.delivered_ms = sqlite3_column_int64(st, 3);
		} else if (r.state == DELIVERY_DELIVERED)
			r.time_ms = sqlite3_column_int64(st, 3);
		else if (r.state == DELIVERY_REFUSED) {
			r.time_ms = sqlite3_column_int64(st, 3);
			copy_text(r.reason, sizeof(r.reason), sqlite3_column_text(st, 7));
		}
		else if (r.state == DELIVERY_QUEUED && sqlite3_column_int(st, 6) == 0) {
			bool covered;
			int mrc; /* not rc: a walk stopped after this row must still see SQLITE_ROW there */

			if ((mrc = marked_time(j, r.node_id, seq, &covered, &r.time_ms, err)) != 0) {
				sqlite3_reset(st);
				return mrc;
			}
			if (covered)
				r.state = DELIVERY_DELIVERED; /* under a delivery mark */
		}
		copy_text(r.officer, sizeof(r.officer), sqlite3_column_text(st, 5));
		rows++;
		if ((stop = row(ctx, &r)) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return read_fail(j, st, err, "track");
	sqlite3_reset(st);
	if (stop != 0)
		return stop;
	if (rows > 0)
		return 0;
	/* No rows: an alert routed to nobody, or no such alert. */
	st = j->st[ST_ALERT_EXISTS];
	sqlite3_bind_int64(st, 1, (int64_t)seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = 0;
	else if (rc == SQLITE_DONE)
		rc = xba_error_set(err, XBA_ENOTFOUND, "journal %s: no entry seq %llu (pruned or never journaled)",
		    j->path, (unsigned long long)seq);
	else
		return read_fail(j, st, err, "track");
	sqlite3_reset(st);
	return rc;
}

/* ---- audit ---- */

int
journal_audit_verify(struct journal *j, uint64_t *checked, struct xba_error *err)
{
	struct chain_walk_result result;
	bool own_txn;
	int rc;

	assert(j != NULL);
	own_txn = j->txn == TXN_IDLE;
	/* One read transaction, so that the walk's two scans see the same snapshot while the broker goes on writing. */
	if (own_txn) {
		if (sqlite3_step(j->st[ST_BEGIN_READ]) != SQLITE_DONE)
			return stmt_fail(j, j->st[ST_BEGIN_READ], err, "audit: begin");
		sqlite3_reset(j->st[ST_BEGIN_READ]);
	}
	rc = chain_walk(j->chain, j->db, NULL, NULL, &result, err);
	if (checked != NULL)
		*checked = result.checked;
	/* The walk reads no index: a backup whose alert-id index is damaged passed it, and the broker restored from
	 * it refused every publish (chain_check_file). */
	if (rc == 0)
		rc = chain_check_file(j->chain, j->db, err);
	if (own_txn) {
		sqlite3_step(j->st[ST_COMMIT]);
		sqlite3_reset(j->st[ST_COMMIT]);
	}
	return rc;
}

/* ---- prune ---- */

/* The first seq of the query's single-integer answer, or `none` when it has no row or a NULL. */
static int
first_seq(struct journal *j, sqlite3_stmt *st, uint64_t none, uint64_t *out, struct xba_error *err)
{
	int rc = sqlite3_step(st);

	*out = none;
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return stmt_fail(j, st, err, "prune");
	sqlite3_reset(st);
	return 0;
}

static int
step_write(struct journal *j, sqlite3_stmt *st, struct xba_error *err, const char *op)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE)
		return stmt_fail(j, st, err, op);
	sqlite3_reset(st);
	return 0;
}

/*
 * *out = the lowest seq still QUEUED for some node (j->head + 1 when none is): node by node through the queue index,
 * the first emergency and the first ordinary delivery above the node's mark.  A seek or two per node that has
 * anything in the index, not a read of the index, which also holds the ordinary rows under each mark.
 */
static int
first_queued_seq(struct journal *j, bool (*listed)(void *ctx, const char *node_id), void *ctx, uint64_t *out,
    char *held_by, size_t held_by_size, struct xba_error *err)
{
	char node[NODE_MAX + 1] = "";
	int rc;

	*out = j->head + 1;
	for (;;) {
		sqlite3_stmt *st = j->st[ST_PRUNE_NEXT_NODE];
		uint64_t mark, first;

		sqlite3_bind_text(st, 1, node, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW)
			return read_fail(j, st, err, "prune: next node");
		if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
			sqlite3_reset(st);
			return 0;
		}
		copy_text(node, sizeof(node), sqlite3_column_text(st, 0));
		sqlite3_reset(st);
		if (listed != NULL && !listed(ctx, node))
			continue;
		if ((rc = mark_get(j, node, &mark, err)) != 0)
			return rc;
		sqlite3_bind_text(j->st[ST_PRUNE_FIRST_EMERGENCY], 1, node, -1, SQLITE_STATIC);
		if ((rc = first_seq(j, j->st[ST_PRUNE_FIRST_EMERGENCY], *out, &first, err)) != 0)
			return rc;
		if (first < *out) {
			*out = first;
			snprintf(held_by, held_by_size, "%s", node);
		}
		sqlite3_bind_text(j->st[ST_PRUNE_FIRST_ORDINARY], 1, node, -1, SQLITE_STATIC);
		sqlite3_bind_int64(j->st[ST_PRUNE_FIRST_ORDINARY], 2, (int64_t)mark);
		if ((rc = first_seq(j, j->st[ST_PRUNE_FIRST_ORDINARY], *out, &first, err)) != 0)
			return rc;
		if (first < *out) {
			*out = first;
			snprintf(held_by, held_by_size, "%s", node);
		}
	}
}

/*
 * Only a prefix of the chain can go: removing an entry from the middle would leave its successor chained to a hash
 * nobody can recompute.  So the cut is just before the first entry that is either too recent or still has a
 * QUEUED delivery, and an alert that a node never collects holds back pruning of everything after it: the
 * audit trail's completeness wins over disk space.  The hash of the last pruned entry becomes the base the oldest
 * kept entry is verified against.
 */
int
journal_prune(struct journal *j, int64_t cutoff_ms, uint64_t *deleted, struct xba_error *err)
{
	struct journal_pruned out;
	int rc = journal_prune_some(j, cutoff_ms, UINT64_MAX, NULL, NULL, &out, err);

	if (deleted != NULL)
		*deleted = out.deleted;
	return rc;
}

int
journal_prune_some(struct journal *j, int64_t cutoff_ms, uint64_t max_alerts,
    bool (*listed)(void *ctx, const char *node_id), void *ctx, struct journal_pruned *out, struct xba_error *err)
{
	uint64_t base_seq = 0, first_new = 0, first_queued = 0, last;
	uint64_t *deleted = &out->deleted;
	uint8_t base_hash[HASH_LEN];
	sqlite3_stmt *st;
	int rc;

	assert(j != NULL);
	assert(j->txn == TXN_IDLE); /* prune runs its own transaction */
	memset(out, 0, sizeof(*out));
	if ((rc = journal_begin(j, err)) != 0)
		return rc;
	if ((rc = read_base(j, &base_seq, base_hash, err)) != 0)
		goto fail;
	sqlite3_bind_int64(j->st[ST_PRUNE_FIRST_NEW], 1, cutoff_ms);
	if ((rc = first_seq(j, j->st[ST_PRUNE_FIRST_NEW], j->head + 1, &first_new, err)) != 0 ||
	    (rc = first_queued_seq(j, listed, ctx, &first_queued, out->held_by, sizeof(out->held_by), err)) != 0)
		goto fail;
	if (first_queued < first_new)
		out->held_seq = first_queued;
	else
		out->held_by[0] = '\0';
	last = (first_new < first_queued ? first_new : first_queued) - 1;
	if (last > base_seq && last - base_seq > max_alerts) {
		last = base_seq + max_alerts;
		out->more = true;
	}
	if (last <= base_seq) {
		journal_rollback(j);
		return 0;
	}
	sqlite3_bind_int64(j->st[ST_HASH_AT], 1, (int64_t)last);
	if ((rc = read_hash(j, j->st[ST_HASH_AT], base_hash, "prune: read hash of last pruned entry", err)) != 0)
		goto fail;
	sqlite3_bind_int64(j->st[ST_PRUNE_DELIVERIES], 1, (int64_t)last);
	if ((rc = step_write(j, j->st[ST_PRUNE_DELIVERIES], err, "prune deliveries")) != 0)
		goto fail;
	st = j->st[ST_PRUNE_ALERTS];
	sqlite3_bind_int64(st, 1, (int64_t)last);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = stmt_fail(j, st, err, "prune alerts");
		goto fail;
	}
	if (deleted != NULL)
		*deleted = (uint64_t)sqlite3_changes64(j->db);
	sqlite3_reset(st);
	/* Marks at or below the cut covered only rows that are gone; a node's marks above it stay, the highest too. */
	sqlite3_bind_int64(j->st[ST_PRUNE_SUPERSESSIONS], 1, (int64_t)last);
	if ((rc = step_write(j, j->st[ST_PRUNE_SUPERSESSIONS], err, "prune supersessions")) != 0)
		goto fail;
	sqlite3_bind_int64(j->st[ST_PRUNE_MARKS], 1, (int64_t)last);
	if ((rc = step_write(j, j->st[ST_PRUNE_MARKS], err, "prune delivery marks")) != 0)
		goto fail;
	j->n_marks = 0;
	st = j->st[ST_META_PUT];
	sqlite3_bind_text(st, 1, "base_seq", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)last);
	if ((rc = step_write(j, st, err, "prune: store base")) != 0)
		goto fail;
	sqlite3_bind_text(st, 1, "base_hash", -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, base_hash, HASH_LEN, SQLITE_STATIC);
	if ((rc = step_write(j, st, err, "prune: store base")) != 0)
		goto fail;
	if ((rc = journal_commit(j, err)) != 0) {
		if (deleted != NULL)
			*deleted = 0;
		return rc;
	}
	cache_drop_through(&j->cache, last);
	return 0;
fail:
	if (deleted != NULL)
		*deleted = 0;
	journal_rollback(j);
	return rc;
}
