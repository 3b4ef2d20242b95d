/*
 * store.c — the agent's SQLite store (see store.h): outbox and outgoing history, inbox, quarantine, receipts and
 * the delivery cursor.  It sits at both ends of an alert's trip through this node: an officer's alert is durable
 * here before the officer is told it is queued, and a delivered alert is durable here before the broker is told
 * it arrived.
 *
 * Transaction lifecycle (one connection, driven by the agent's single event loop):
 *
 *   IDLE --store_begin--> OPEN --store_inbox_add / store_outbox_accepted / ... --> OPEN
 *   OPEN --a write fails (disk full, I/O)--> FAILED     (rolled back at once)
 *   OPEN --store_commit--> IDLE                         (0, or XBA_EIO after rolling back)
 *   FAILED --store_commit--> IDLE                       (returns the first failure again; nothing was written)
 *   OPEN | FAILED --store_rollback--> IDLE
 *   IDLE --store_outbox_add / store_ack--> IDLE         (each its own BEGIN IMMEDIATE .. COMMIT)
 *
 * Durability: WAL with synchronous=FULL, so COMMIT fsyncs the WAL and a committed transaction survives power loss.
 */
#include "store.h"

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

#define STORE_SCHEMA_VERSION 5
#define STORE_BUSY_TIMEOUT_MS 1000  /* only this process writes; a sqlite3 shell reading must not stall the loop */
#define STORE_WAL_LIMIT (16 * 1024 * 1024)
#define FILTER_LIST_MAX 4096        /* bytes of the ",a,b," list a filter binds */

/*
 * superseded (schema 3): "ref_id, an alert of ref_origin, was updated (by_type 2) or cancelled (3) by by_id".  A
 * row is written when an update or cancel is stored, keyed by the alert it names, so that it holds whichever of
 * the two arrived first; an inbox alert joins it by id and origin, so that only its own origin supersedes it (the
 * agent verified who signed what).  The latest update of an alert wins, but a cancel stands against later
 * updates.  Inbox readers show it, an alert its origin updated or cancelled waits for no acknowledgement (the
 * update waits instead: it is what officers act on, and acknowledging both was double work that inflated the
 * count), and retention treats it as finished.
 */
#define SUPERSEDED_SQL                                                                                              \
	"CREATE TABLE superseded ("                                                                                 \
	" ref_id TEXT NOT NULL,"                                                                                   \
	" ref_origin TEXT NOT NULL,"                                                                               \
	" by_id TEXT NOT NULL,"                                                                                    \
	" by_type INTEGER NOT NULL,"                                                                               \
	" created_ms INTEGER NOT NULL,"                                                                            \
	" PRIMARY KEY (ref_id, ref_origin)) WITHOUT ROWID;"

/*
 * outgoing.id is AUTOINCREMENT so that a row id (the Publish.ref) is never reused, even after the newest row
 * is gone: a late PublishAck can never be taken for another alert's.  outbox_queued holds only QUEUED rows, so
 * finding the next alert to send stays as cheap as the backlog is small, however long the history grows.
 */
#define QUARANTINE_SEQ_SQL "CREATE INDEX IF NOT EXISTS quarantine_seq ON quarantine(seq);"
/*
 * History filters (category, origin, severity, since, unacknowledged) are read from these, in id order, and a
 * matching row's envelope only then: a filter that matches little used to read every row's envelope (a page or
 * three each), 0.6 s a request at 20 000 alerts of 8 KiB, while the agent's loop waited (docs/agent.md).  Each
 * index holds every column a filter reads, so SQLite never opens the table for a row that does not match.
 */
#define SCAN_INDEXES_SQL                                                                                            \
	"CREATE INDEX IF NOT EXISTS inbox_scan ON inbox(id, received_ms, severity, acknowledged, msg_type, emergency," \
	" category, origin, alert_id);"                                                                            \
	"CREATE INDEX IF NOT EXISTS outgoing_scan ON outgoing(id, submitted_ms, severity, category, origin);"

/*
 * `xba status` counts the alerts the broker refused lately, by when it refused them (an alert that waited a week in
 * the outbox and then expired is the case that matters).  Created at open where absent, without a schema version:
 * an older agent still opens the store, and where it cannot be created (a full disk at the upgrade) the count reads
 * the table instead, slower.
 */
#define REFUSED_INDEX_SQL "CREATE INDEX IF NOT EXISTS outgoing_refused ON outgoing(done_ms) WHERE state = 3;"

static const char schema_sql[] =
	"CREATE TABLE outgoing ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" alert_id TEXT NOT NULL UNIQUE,"
	" origin TEXT NOT NULL,"
	" author TEXT,"
	" sent_ms INTEGER NOT NULL,"
	" msg_type INTEGER NOT NULL,"
	" category INTEGER NOT NULL,"
	" severity INTEGER NOT NULL,"
	" tlp INTEGER NOT NULL,"
	" status INTEGER NOT NULL,"
	" emergency INTEGER NOT NULL,"
	" envelope BLOB NOT NULL,"
	" submitted_ms INTEGER NOT NULL,"
	" state INTEGER NOT NULL,"
	" seq INTEGER,"
	" recipients INTEGER,"
	" result INTEGER,"
	" message TEXT,"
	" field TEXT,"
	" done_ms INTEGER);"
	"CREATE INDEX outbox_queued ON outgoing(id) WHERE state = 1;"
	"CREATE INDEX outgoing_submitted ON outgoing(submitted_ms);"
	"CREATE TABLE inbox ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" alert_id TEXT NOT NULL UNIQUE,"
	" seq INTEGER NOT NULL,"
	" rule TEXT NOT NULL,"
	" origin TEXT NOT NULL,"
	" author TEXT,"
	" sent_ms INTEGER NOT NULL,"
	" msg_type INTEGER NOT NULL,"
	" category INTEGER NOT NULL,"
	" severity INTEGER NOT NULL,"
	" tlp INTEGER NOT NULL,"
	" status INTEGER NOT NULL,"
	" emergency INTEGER NOT NULL,"
	" envelope BLOB NOT NULL,"
	" received_ms INTEGER NOT NULL,"
	" acknowledged INTEGER NOT NULL DEFAULT 0,"
	" acknowledged_by TEXT,"
	" acknowledged_ms INTEGER,"
	" ack_alert_id TEXT);"
	"CREATE INDEX inbox_received ON inbox(received_ms);"
	"CREATE INDEX inbox_origin ON inbox(origin, received_ms);"
	"CREATE INDEX inbox_category ON inbox(category, severity);"
	"CREATE INDEX inbox_unacknowledged ON inbox(id) WHERE acknowledged = 0;"
	"CREATE TABLE quarantine ("
	" id INTEGER PRIMARY KEY,"
	" seq INTEGER NOT NULL,"
	" received_ms INTEGER NOT NULL,"
	" code INTEGER NOT NULL,"
	" reason TEXT NOT NULL,"
	" alert_id TEXT,"
	" rule TEXT,"
	" envelope BLOB,"
	" released_ms INTEGER,"
	" release_reported INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE receipts ("
	" alert_id TEXT NOT NULL,"
	" node TEXT NOT NULL,"
	" kind INTEGER NOT NULL,"
	" time_ms INTEGER NOT NULL,"
	" officer TEXT,"
	" note TEXT,"
	" PRIMARY KEY (alert_id, node, kind)) WITHOUT ROWID;"
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	SUPERSEDED_SQL
	QUARANTINE_SEQ_SQL
	SCAN_INDEXES_SQL
	"PRAGMA user_version = 5;";

/* Schema 1 -> 2: a quarantined delivery that verifies after a region.yaml update is released to the inbox, and its
 * quarantine row records when (the row stays: it is the record that the alert was refused once, and why), and
 * whether the broker has been told (so that the sender's `xba track` stops saying REFUSED). */
static const char migrate_1_to_2_sql[] =
	"ALTER TABLE quarantine ADD COLUMN released_ms INTEGER;"
	"ALTER TABLE quarantine ADD COLUMN release_reported INTEGER NOT NULL DEFAULT 0;"
	"PRAGMA user_version = 2;";

/* Schema 2 -> 3: updates and cancels (docs/operators.md), recorded against the alerts they supersede. */
static const char migrate_2_to_3_sql[] =
	SUPERSEDED_SQL
	"PRAGMA user_version = 3;";

/* Schema 3 -> 4: each quarantined delivery looks for an earlier row of its seq; without an index that was a scan
 * of the whole table per delivery, and a broker sending thousands held the agent for minutes. */
static const char migrate_3_to_4_sql[] =
	QUARANTINE_SEQ_SQL
	"PRAGMA user_version = 4;";

/* Schema 4 -> 5: history reads its filters from covering indexes (SCAN_INDEXES_SQL). */
static const char migrate_4_to_5_sql[] =
	SCAN_INDEXES_SQL
	"PRAGMA user_version = 5;";

#define OUTGOING_COLS \
	"id, alert_id, origin, sent_ms, msg_type, category, severity, tlp, status, emergency, envelope," \
	" submitted_ms, state, seq, recipients, result, message, field"
/* The last two: the broker's refusal of the ACK this agent sent for the alert, if it refused it (NULL otherwise),
 * read per row returned (one lookup in outgoing's alert_id index), so that an acknowledgement nobody received
 * never reads as one that was. */
#define INBOX_COLS \
	"id, alert_id, origin, sent_ms, msg_type, category, severity, tlp, status, emergency, envelope," \
	" received_ms, seq, rule, acknowledged, acknowledged_by, acknowledged_ms, by_id, by_type," \
	" (SELECT o.result FROM outgoing AS o WHERE o.alert_id = inbox.ack_alert_id AND o.state = 3)," \
	" (SELECT o.message FROM outgoing AS o WHERE o.alert_id = inbox.ack_alert_id AND o.state = 3)"
/* Every inbox read names the update or cancel that superseded the alert, if its origin sent one. */
#define INBOX_FROM " FROM inbox LEFT JOIN superseded ON ref_id = alert_id AND ref_origin = origin"
/* An ACK (msg_type 4) is itself an acknowledgement: it never waits for one, so it is never "unacknowledged"; nor
 * does an alert its origin has replaced or withdrawn (by_type not NULL).
 * ?1 since, ?2 min severity, ?3 0 all / 1 unacknowledged only / 2 unacknowledged emergencies only,
 * ?4 ",cat,cat," or NULL, ?5 ",NODE,NODE," or NULL, ?6 limit */
#define INBOX_WHERE \
	" WHERE received_ms >= ?1 AND severity >= ?2 AND (?3 = 0 OR (acknowledged = 0 AND msg_type != 4" \
	" AND by_type IS NULL AND (?3 = 1 OR emergency = 1)))" \
	" AND (?4 IS NULL OR instr(?4, ',' || category || ',') > 0)" \
	" AND (?5 IS NULL OR instr(?5, ',' || origin || ',') > 0) AND id < ?7"
#define OUTGOING_WHERE \
	" WHERE submitted_ms >= ?1 AND severity >= ?2 AND ?3 = 0" \
	" AND (?4 IS NULL OR instr(?4, ',' || category || ',') > 0)" \
	" AND (?5 IS NULL OR instr(?5, ',' || origin || ',') > 0) AND id < ?7"

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_OUTBOX_ADD,
	ST_OUTBOX_NEXT,
	ST_OUTBOX_NEXT_EMERGENCY,
	ST_OUTBOX_ACCEPTED,
	ST_OUTBOX_REFUSED,
	ST_OUTBOX_REPUBLISH_REFUSED,
	ST_OUTBOX_RESEAL,
	ST_OUTGOING_NEW,
	ST_OUTGOING_LATER_VERSIONS,
	ST_OUTGOING_OLD,
	ST_INBOX_ADD,
	ST_INBOX_GET,
	ST_OUTGOING_GET,
	ST_INBOX_NEW,
	ST_INBOX_OLD,
	ST_INBOX_ACK,
	ST_QUARANTINE_ADD,
	ST_QUARANTINE_NEXT,
	ST_QUARANTINE_LIST,
	ST_QUARANTINE_RELEASE,
	ST_QUARANTINE_UNREPORTED,
	ST_QUARANTINE_REPORTED_SINCE,
	ST_QUARANTINE_REPORTED,
	ST_RECORDS_INBOX,
	ST_RECORDS_SENT,
	ST_RECEIPT_ADD,
	ST_META_GET,
	ST_HIGHEST_HELD,
	ST_OUTGOING_REQUEUE,
	ST_OUTGOING_MAX_SEQ,
	ST_META_PUT,
	ST_COUNT_OUTBOX,
	ST_COUNT_REFUSED,
	ST_COUNT_ACKS_REFUSED,
	ST_COUNT_ALERTS_REFUSED_SINCE,
	ST_COUNT_INBOX,
	ST_COUNT_UNACKED,
	ST_COUNT_QUARANTINE,
	ST_LAST_DELIVERY,
	ST_PRUNE_INBOX,
	ST_PRUNE_OUTGOING,
	ST_PRUNE_RECEIPTS,
	ST_PRUNE_QUARANTINE,
	ST_PRUNE_SUPERSEDED,
	ST_SUPERSEDE,
	ST_SUPERSEDED_GET,
	ST_COUNT_
};

static const char *const stmt_sql[ST_COUNT_] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_OUTBOX_ADD] = "INSERT INTO outgoing (alert_id, origin, author, sent_ms, msg_type, category, severity, tlp,"
			  " status, emergency, envelope, submitted_ms, state)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1)",
	[ST_OUTBOX_NEXT] = "SELECT " OUTGOING_COLS " FROM outgoing WHERE state = 1 AND id > ?1 ORDER BY id LIMIT 1",
	[ST_OUTBOX_NEXT_EMERGENCY] = "SELECT " OUTGOING_COLS " FROM outgoing WHERE state = 1 AND id > ?1 AND emergency = 1"
				     " ORDER BY id LIMIT 1",
	[ST_OUTBOX_ACCEPTED] = "UPDATE outgoing SET state = 2, seq = ?2, recipients = ?3, result = ?4, done_ms = ?5"
			       " WHERE id = ?1 AND state = 1",
	[ST_OUTBOX_REFUSED] = "UPDATE outgoing SET state = 3, result = ?2, message = ?3, field = ?4, done_ms = ?5"
			      " WHERE id = ?1 AND state = 1",
	/* Its seq is now another alert's in the restored journal. */
	[ST_OUTBOX_REPUBLISH_REFUSED] = "UPDATE outgoing SET state = 2, seq = NULL WHERE id = ?1 AND state = 1"
					" AND seq IS NOT NULL",
	[ST_OUTBOX_RESEAL] = "UPDATE outgoing SET envelope = ?2, sent_ms = ?3 WHERE id = ?1 AND state = 1",
	/* The filter runs on the scan index alone; only the page it selects is read from the table (SCAN_INDEXES_SQL). */
	[ST_OUTGOING_NEW] = "SELECT " OUTGOING_COLS " FROM outgoing WHERE id IN (SELECT id FROM outgoing"
			    OUTGOING_WHERE " ORDER BY id DESC LIMIT ?6) ORDER BY id DESC",
	/* Updates and cancels stored after a row, in the order they were stored (not by a clock, which can step). */
	[ST_OUTGOING_LATER_VERSIONS] = "SELECT " OUTGOING_COLS " FROM outgoing WHERE id > ?1 AND msg_type IN (2, 3)"
				       " AND state != 3 ORDER BY id",
	[ST_OUTGOING_OLD] = "SELECT " OUTGOING_COLS " FROM outgoing WHERE id IN (SELECT id FROM outgoing"
			    OUTGOING_WHERE " ORDER BY id LIMIT ?6) ORDER BY id",
	[ST_INBOX_ADD] = "INSERT OR IGNORE INTO inbox (alert_id, seq, rule, origin, author, sent_ms, msg_type, category,"
			 " severity, tlp, status, emergency, envelope, received_ms)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
	[ST_INBOX_GET] = "SELECT " INBOX_COLS INBOX_FROM " WHERE alert_id = ?1",
	[ST_OUTGOING_GET] = "SELECT " OUTGOING_COLS " FROM outgoing WHERE alert_id = ?1",
	[ST_INBOX_NEW] = "SELECT " INBOX_COLS INBOX_FROM " WHERE id IN (SELECT id" INBOX_FROM INBOX_WHERE
			 " ORDER BY id DESC LIMIT ?6) ORDER BY id DESC",
	[ST_INBOX_OLD] = "SELECT " INBOX_COLS INBOX_FROM " WHERE id IN (SELECT id" INBOX_FROM INBOX_WHERE
			 " ORDER BY id LIMIT ?6) ORDER BY id",
	[ST_INBOX_ACK] = "UPDATE inbox SET acknowledged = 1, acknowledged_by = ?2, acknowledged_ms = ?3,"
			 " ack_alert_id = ?4 WHERE alert_id = ?1 AND acknowledged = 0",
	/* A redelivery of a seq already held (its acknowledgement was lost) is not held twice. */
	[ST_QUARANTINE_ADD] = "INSERT INTO quarantine (seq, received_ms, code, reason, alert_id, rule, envelope)"
			      " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE NOT EXISTS"
			      " (SELECT 1 FROM quarantine WHERE seq = ?1 AND released_ms IS NULL)",
	[ST_QUARANTINE_NEXT] = "SELECT id, seq, received_ms, code, reason, alert_id, rule, envelope FROM quarantine"
			       " WHERE released_ms IS NULL AND id > ?1 ORDER BY id LIMIT 1",
	[ST_QUARANTINE_LIST] = "SELECT id, seq, received_ms, code, reason, alert_id, rule, envelope FROM quarantine"
			       " WHERE released_ms IS NULL ORDER BY id DESC LIMIT ?1",
	[ST_QUARANTINE_RELEASE] = "UPDATE quarantine SET released_ms = ?2 WHERE id = ?1 AND released_ms IS NULL",
	[ST_QUARANTINE_UNREPORTED] = "SELECT seq FROM quarantine WHERE released_ms IS NOT NULL AND release_reported = 0"
				     " ORDER BY id LIMIT ?1",
	[ST_QUARANTINE_REPORTED_SINCE] = "SELECT seq FROM quarantine WHERE released_ms IS NOT NULL AND"
					 " release_reported = 1 AND released_ms >= ?2 ORDER BY id DESC LIMIT ?1",
	[ST_QUARANTINE_REPORTED] = "UPDATE quarantine SET release_reported = 1 WHERE seq = ?1 AND released_ms IS NOT NULL",
	/* For audits: paged by row id (the primary key), so each page is one range read however large the store. */
	[ST_RECORDS_INBOX] = "SELECT id, seq, alert_id, envelope FROM inbox WHERE id > ?1 ORDER BY id LIMIT ?2",
	[ST_RECORDS_SENT] = "SELECT id, seq, alert_id, envelope FROM outgoing WHERE id > ?1 AND state = 2 AND seq > 0"
			    " ORDER BY id LIMIT ?2",
	[ST_RECEIPT_ADD] = "INSERT OR REPLACE INTO receipts (alert_id, node, kind, time_ms, officer, note)"
			   " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[ST_HIGHEST_HELD] = "SELECT max(seq) FROM (SELECT max(seq) AS seq FROM inbox WHERE seq <= ?1"
			    " UNION ALL SELECT max(seq) FROM quarantine WHERE seq <= ?1)",
	[ST_META_PUT] = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
	/* Requeued rows keep seq, recipients, result and done_ms until the broker answers again (see ST_OUTBOX_REFUSED). */
	[ST_OUTGOING_REQUEUE] = "UPDATE outgoing SET state = 1 WHERE state = 2 AND seq > ?1 AND done_ms >= ?2",
	/* Only what was accepted since the last restore was noticed: older rows keep the old journal's seqs. */
	[ST_OUTGOING_MAX_SEQ] = "SELECT seq, alert_id FROM outgoing WHERE state = 2 AND done_ms >= ?1"
				" ORDER BY seq DESC LIMIT 1",
	[ST_COUNT_OUTBOX] = "SELECT count(*) FROM outgoing WHERE state = 1",
	[ST_COUNT_REFUSED] = "SELECT count(*) FROM outgoing WHERE state = 3",
	[ST_COUNT_ACKS_REFUSED] = "SELECT count(*) FROM outgoing WHERE state = 3 AND msg_type = 4",
	/* A range of outgoing_refused (REFUSED_INDEX_SQL): what was refused since ?1, however long the history. */
	[ST_COUNT_ALERTS_REFUSED_SINCE] = "SELECT count(*) FROM outgoing WHERE state = 3 AND done_ms >= ?1"
					  " AND msg_type != 4",
	[ST_COUNT_INBOX] = "SELECT count(*) FROM inbox",
	[ST_COUNT_UNACKED] = "SELECT count(*)" INBOX_FROM " WHERE acknowledged = 0 AND msg_type != 4"
			     " AND by_type IS NULL",
	[ST_COUNT_QUARANTINE] = "SELECT count(*) FROM quarantine WHERE released_ms IS NULL",
	[ST_LAST_DELIVERY] = "SELECT coalesce(max(received_ms), 0) FROM inbox",
	/* Retention (store_prune): ?1 cutoff, ?2 at most this many rows.  An inbox alert no officer acknowledged is
	 * kept however old (ACKs never wait for one), and so is the outbox: only what is finished goes. */
	[ST_PRUNE_INBOX] = "DELETE FROM inbox WHERE id IN (SELECT id" INBOX_FROM " WHERE received_ms < ?1"
			   " AND (acknowledged = 1 OR msg_type = 4 OR by_type IS NOT NULL) ORDER BY received_ms LIMIT ?2)",
	[ST_PRUNE_OUTGOING] = "DELETE FROM outgoing WHERE id IN (SELECT id FROM outgoing WHERE submitted_ms < ?1"
			      " AND state != 1 ORDER BY submitted_ms LIMIT ?2)",
	[ST_PRUNE_RECEIPTS] = "DELETE FROM receipts WHERE (alert_id, node, kind) IN (SELECT alert_id, node, kind"
			      " FROM receipts WHERE time_ms < ?1 LIMIT ?2)",
	[ST_PRUNE_QUARANTINE] = "DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine WHERE received_ms < ?1"
				" ORDER BY id LIMIT ?2)",
	/* A supersession lives as long as the alert it names, or the retention period if that never arrived. */
	[ST_PRUNE_SUPERSEDED] = "DELETE FROM superseded WHERE (ref_id, ref_origin) IN (SELECT ref_id, ref_origin"
				" FROM superseded WHERE created_ms < ?1 AND NOT EXISTS (SELECT 1 FROM inbox WHERE"
				" alert_id = ref_id) LIMIT ?2)",
	/* A cancel stands: a later update does not bring the alert back (send a new alert). */
	[ST_SUPERSEDED_GET] = "SELECT by_id, by_type FROM superseded WHERE ref_id = ?1 AND ref_origin = ?2",
	[ST_SUPERSEDE] = "INSERT INTO superseded (ref_id, ref_origin, by_id, by_type, created_ms) VALUES (?1, ?2, ?3, ?4,"
			 " ?5) ON CONFLICT (ref_id, ref_origin) DO UPDATE SET by_id = excluded.by_id, by_type ="
			 " excluded.by_type, created_ms = excluded.created_ms WHERE excluded.by_type >= by_type",
};

enum txn_state {
	TXN_IDLE,   /* autocommit */
	TXN_OPEN,   /* between store_begin and store_commit/rollback */
	TXN_FAILED, /* a write failed: rolled back already, waiting for store_commit/rollback */
};

struct store {
	sqlite3 *db;                    /* the one connection */
	char *path;                     /* for messages */
	sqlite3_stmt *st[ST_COUNT_];    /* prepared once at open, reset after every use */
	enum txn_state txn;             /* see the lifecycle above */
	struct xba_error failure;       /* TXN_FAILED: the write that failed it */
	int upgraded_from;              /* the schema this open upgraded (0: none, or a new file) */
};

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
	case SQLITE_IOERR_SHMOPEN:
	case SQLITE_IOERR_SHMSIZE:
	case SQLITE_IOERR_SHMMAP: return "WAL shared memory failed";
	}
	return "I/O failed";
}

/* The connection's last error as a message naming the store, the operation and, for I/O, errno (a full disk
 * must read as one).  Called before the failed statement is reset. */
static int
db_error(struct store *s, struct xba_error *err, const char *op)
{
	int ext = sqlite3_extended_errcode(s->db), primary = ext & 0xff, sys = 0;
	int code = primary == SQLITE_NOMEM ? XBA_ENOMEM : primary == SQLITE_BUSY || primary == SQLITE_LOCKED ? XBA_EBUSY
		 : XBA_EIO;

	if (primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_CANTOPEN)
		sys = sqlite3_system_errno(s->db);
	if (primary == SQLITE_IOERR)
		return xba_error_set(err, code, "store %s: %s: %s (%s%s%s; is the disk full?)", s->path, op,
		    sqlite3_errmsg(s->db), ioerr_call(ext), sys != 0 ? ": " : "", sys != 0 ? strerror(sys) : "");
	if (sys != 0)
		return xba_error_set(err, code, "store %s: %s: %s (%s)", s->path, op, sqlite3_errmsg(s->db),
		    strerror(sys));
	return xba_error_set(err, code, "store %s: %s: %s", s->path, op, sqlite3_errmsg(s->db));
}

static int
stmt_fail(struct store *s, sqlite3_stmt *st, struct xba_error *err, const char *op)
{
	int code = db_error(s, err, op);

	sqlite3_reset(st);
	return code;
}

static void
rollback_now(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db)) {
		sqlite3_step(s->st[ST_ROLLBACK]);
		sqlite3_reset(s->st[ST_ROLLBACK]);
	}
}

/* A write inside a batch failed: roll back now, keep the failure for the rest of the batch and store_commit. */
static int
txn_fail(struct store *s, sqlite3_stmt *st, struct xba_error *err, const char *op)
{
	struct xba_error local;

	db_error(s, &local, op);
	if (st != NULL)
		sqlite3_reset(st);
	rollback_now(s);
	s->failure = local;
	s->txn = TXN_FAILED;
	if (err != NULL)
		*err = local;
	return local.code;
}

/* Every batch write starts here: a write outside store_begin is a programming error; after a failure the batch
 * is refused with the failure that ended it. */
static int
batch_ready(struct store *s, struct xba_error *err, const char *op)
{
	assert(s != NULL && s->txn != TXN_IDLE);
	if (s->txn == TXN_FAILED)
		return xba_error_set(err, s->failure.code, "%s (%s refused: the transaction already failed and was "
		    "rolled back)", s->failure.msg, op);
	return 0;
}

/* ---- open and close ---- */

static int
exec_sql(struct store *s, const char *sql, const char *op, struct xba_error *err)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int code = sqlite3_errcode(s->db) == SQLITE_NOMEM ? XBA_ENOMEM : XBA_EIO;

		xba_error_set(err, code, "store %s: %s: %s", s->path, op, msg != NULL ? msg : "failed");
		sqlite3_free(msg);
		return code;
	}
	return 0;
}

static int
pragma_int(struct store *s, const char *sql, int64_t *out, struct xba_error *err)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_error(s, err, sql);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = db_error(s, err, sql);
		sqlite3_finalize(st);
		return rc;
	}
	*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* A store a newer agent upgraded: said the same way at start and by --check (store_check_version). */
static int
newer_schema(struct xba_error *err, const char *path, int64_t version)
{
	return xba_error_set(err, XBA_EIO, "store %s: written by a newer xba-agent (store schema %lld; this one knows up "
	    "to %d): run that version, or go back as docs/operations.md says (\"Going back\")", path, (long long)version,
	    STORE_SCHEMA_VERSION);
}

/* WAL is what makes one fsync per group commit possible; a file system that cannot give it is refused. */
static int
ensure_schema(struct store *s, struct xba_error *err)
{
	int64_t version = 0;
	int rc;

	if ((rc = pragma_int(s, "PRAGMA user_version", &version, err)) != 0)
		return rc;
	if (version == STORE_SCHEMA_VERSION) {
		sqlite3_exec(s->db, REFUSED_INDEX_SQL, NULL, NULL, NULL); /* best effort: see REFUSED_INDEX_SQL */
		return 0;
	}
	if (version > STORE_SCHEMA_VERSION)
		return newer_schema(err, s->path, version);
	if (version < 0)
		return xba_error_set(err, XBA_EIO, "store %s: schema version %lld is not an XBA agent store's", s->path,
		    (long long)version);
	if ((rc = exec_sql(s, "BEGIN IMMEDIATE", "create schema", err)) != 0)
		return rc;
	/* Read again inside the write lock: another process may have created or upgraded it meanwhile. */
	if ((rc = pragma_int(s, "PRAGMA user_version", &version, err)) == 0) {
		if (version == 0)
			rc = exec_sql(s, schema_sql, "create schema (is this file an XBA agent store?)", err);
		if (version == 1)
			rc = exec_sql(s, migrate_1_to_2_sql, "upgrade schema 1 to 2", err);
		if (rc == 0 && (version == 1 || version == 2))
			rc = exec_sql(s, migrate_2_to_3_sql, "upgrade schema 2 to 3", err);
		if (rc == 0 && version >= 1 && version <= 3)
			rc = exec_sql(s, migrate_3_to_4_sql, "upgrade schema 3 to 4", err);
		if (rc == 0 && version >= 1 && version <= 4)
			rc = exec_sql(s, migrate_4_to_5_sql, "upgrade schema 4 to 5", err);
	}
	if (rc == 0 && (rc = exec_sql(s, "COMMIT", "create schema", err)) == 0) {
		s->upgraded_from = (int)version;
		sqlite3_exec(s->db, REFUSED_INDEX_SQL, NULL, NULL, NULL);
		return 0;
	}
	if (rc != 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int
store_upgraded_from(const struct store *s)
{
	return s->upgraded_from;
}

int
store_check_version(const char *path, struct xba_error *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t version = 0;
	int rc = 0;

	if (access(path, F_OK) != 0)
		return 0; /* a new store is made at start */
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
		rc = xba_error_set(err, XBA_EIO, "store %s: cannot read it: %s", path, db ? sqlite3_errmsg(db) : "?");
	} else if (sqlite3_step(st) == SQLITE_ROW) {
		version = sqlite3_column_int64(st, 0);
		if (version > STORE_SCHEMA_VERSION)
			rc = newer_schema(err, path, version);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* The store holds every alert this node received, TLP:RED included: a new file is 0600 before SQLite sees it
 * (SQLite gives the -wal and -shm files the same mode).  An existing file keeps the mode its operator chose. */
struct store *
store_open(const char *path, struct xba_error *err)
{
	static const struct sqlitefile_options file_options = {
		.kind = "store",
		.busy_timeout_ms = STORE_BUSY_TIMEOUT_MS,
		.wal_size_limit = STORE_WAL_LIMIT,
	};
	struct store *s;

	assert(path != NULL);
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->path = strdup(path)) == NULL) {
		free(s);
		xba_error_set(err, XBA_ENOMEM, "store %s: out of memory", path);
		return NULL;
	}
	if (sqlitefile_open(path, &file_options, &s->db, err) != 0 || ensure_schema(s, err) != 0)
		goto fail;
	for (int i = 0; i < ST_COUNT_; i++) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
			db_error(s, err, "prepare statements (is this file an XBA agent store?)");
			goto fail;
		}
	}
	xba_error_clear(err);
	return s;
fail:
	store_close(s);
	return NULL;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < ST_COUNT_; i++)
		sqlite3_finalize(s->st[i]);
	/* An open transaction is rolled back by sqlite3_close: it acknowledged nothing. */
	sqlite3_close(s->db);
	free(s->path);
	free(s);
}

const char *
store_path(const struct store *s)
{
	return s->path;
}

/* ---- transactions ---- */

int
store_begin(struct store *s, struct xba_error *err)
{
	sqlite3_stmt *st;

	assert(s != NULL && s->txn == TXN_IDLE);
	st = s->st[ST_BEGIN];
	if (sqlite3_step(st) != SQLITE_DONE)
		return stmt_fail(s, st, err, "begin transaction");
	sqlite3_reset(st);
	s->txn = TXN_OPEN;
	return 0;
}

int
store_commit(struct store *s, struct xba_error *err)
{
	sqlite3_stmt *st;
	int rc;

	assert(s != NULL && s->txn != TXN_IDLE);
	if (s->txn == TXN_FAILED) {
		s->txn = TXN_IDLE;
		return xba_error_set(err, s->failure.code, "%s (commit refused: the transaction already failed and was "
		    "rolled back)", s->failure.msg);
	}
	st = s->st[ST_COMMIT];
	if (sqlite3_step(st) != SQLITE_DONE) {
		/* SQLite may keep the transaction open after a failed COMMIT, for a retry; nothing of it was
		 * acknowledged, so it is rolled back and can never reach the disk later. */
		rc = txn_fail(s, st, err, "commit");
		s->txn = TXN_IDLE;
		return rc;
	}
	sqlite3_reset(st);
	s->txn = TXN_IDLE;
	return 0;
}

void
store_rollback(struct store *s)
{
	assert(s != NULL);
	if (s->txn == TXN_IDLE)
		return;
	rollback_now(s);
	s->txn = TXN_IDLE;
}

bool
store_in_transaction(const struct store *s)
{
	return s->txn != TXN_IDLE;
}

/* A transaction of its own, for the writes an officer waits on. */
static int
solo_begin(struct store *s, struct xba_error *err, const char *op)
{
	sqlite3_stmt *st = s->st[ST_BEGIN];

	assert(s->txn == TXN_IDLE); /* never inside the uplink's batch */
	if (sqlite3_step(st) != SQLITE_DONE)
		return stmt_fail(s, st, err, op);
	sqlite3_reset(st);
	return 0;
}

static int
solo_commit(struct store *s, struct xba_error *err, const char *op)
{
	sqlite3_stmt *st = s->st[ST_COMMIT];
	int rc;

	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_error(s, err, op);
		sqlite3_reset(st);
		rollback_now(s);
		return rc;
	}
	sqlite3_reset(st);
	return 0;
}

static int
solo_fail(struct store *s, sqlite3_stmt *st, struct xba_error *err, const char *op)
{
	int rc = db_error(s, err, op);

	if (st != NULL)
		sqlite3_reset(st);
	rollback_now(s);
	return rc;
}

/* ---- rows ---- */

static void
copy_text(char *dst, size_t size, const unsigned char *src)
{
	snprintf(dst, size, "%s", src != NULL ? (const char *)src : "");
}

/* Columns 0..10, shared by OUTGOING_COLS and INBOX_COLS.  With own_envelope the blob is copied (the row outlives
 * the statement); otherwise it is borrowed from SQLite for the duration of a callback. */
static int
read_common(sqlite3_stmt *st, struct store_row *row, bool own_envelope)
{
	const void *blob;
	size_t len;

	memset(row, 0, sizeof(*row));
	row->id = sqlite3_column_int64(st, 0);
	copy_text(row->alert_id, sizeof(row->alert_id), sqlite3_column_text(st, 1));
	copy_text(row->origin, sizeof(row->origin), sqlite3_column_text(st, 2));
	row->sent_ms = sqlite3_column_int64(st, 3);
	row->msg_type = sqlite3_column_int(st, 4);
	row->category = sqlite3_column_int(st, 5);
	row->severity = sqlite3_column_int(st, 6);
	row->tlp = sqlite3_column_int(st, 7);
	row->status = sqlite3_column_int(st, 8);
	row->emergency = sqlite3_column_int(st, 9) != 0;
	blob = sqlite3_column_blob(st, 10);
	len = (size_t)sqlite3_column_bytes(st, 10);
	if (own_envelope) {
		/* One spare byte: malloc(0) may return NULL, and an empty blob is not a failure. */
		if ((row->envelope = malloc(len + 1)) == NULL)
			return XBA_ENOMEM;
		if (len > 0)
			memcpy(row->envelope, blob, len);
	} else {
		row->envelope = (uint8_t *)blob;
	}
	row->envelope_len = len;
	return 0;
}

static int
read_outgoing(sqlite3_stmt *st, struct store_row *row, bool own_envelope)
{
	if (read_common(st, row, own_envelope) != 0)
		return XBA_ENOMEM;
	row->outgoing = true;
	row->submitted_ms = sqlite3_column_int64(st, 11);
	row->state = (enum store_publish_state)sqlite3_column_int(st, 12);
	row->seq = (uint64_t)sqlite3_column_int64(st, 13);
	row->recipients = (uint32_t)sqlite3_column_int64(st, 14);
	row->result = sqlite3_column_int(st, 15);
	copy_text(row->message, sizeof(row->message), sqlite3_column_text(st, 16));
	copy_text(row->field, sizeof(row->field), sqlite3_column_text(st, 17));
	return 0;
}

static int
read_inbox(sqlite3_stmt *st, struct store_row *row, bool own_envelope)
{
	if (read_common(st, row, own_envelope) != 0)
		return XBA_ENOMEM;
	row->received_ms = sqlite3_column_int64(st, 11);
	row->seq = (uint64_t)sqlite3_column_int64(st, 12);
	copy_text(row->rule, sizeof(row->rule), sqlite3_column_text(st, 13));
	row->acknowledged = sqlite3_column_int(st, 14) != 0;
	copy_text(row->acknowledged_by, sizeof(row->acknowledged_by), sqlite3_column_text(st, 15));
	row->acknowledged_ms = sqlite3_column_int64(st, 16);
	copy_text(row->superseded_by, sizeof(row->superseded_by), sqlite3_column_text(st, 17));
	row->superseded_type = sqlite3_column_int(st, 18);
	row->ack_refused_code = sqlite3_column_int(st, 19);
	copy_text(row->ack_refused_message, sizeof(row->ack_refused_message), sqlite3_column_text(st, 20));
	return 0;
}

void
store_row_clear(struct store_row *row)
{
	if (row == NULL)
		return;
	free(row->envelope);
	row->envelope = NULL;
	row->envelope_len = 0;
}

void
store_row_from_inbox_add(struct store_row *row, const struct store_alert_fields *f, uint8_t *envelope, size_t len,
    uint64_t seq, const char *rule, int64_t received_ms)
{
	memset(row, 0, sizeof(*row));
	snprintf(row->alert_id, sizeof(row->alert_id), "%s", f->alert_id);
	snprintf(row->origin, sizeof(row->origin), "%s", f->origin);
	row->sent_ms = f->sent_ms;
	row->msg_type = f->msg_type;
	row->category = f->category;
	row->severity = f->severity;
	row->tlp = f->tlp;
	row->status = f->status;
	row->emergency = f->emergency;
	row->envelope = envelope;
	row->envelope_len = len;
	row->received_ms = received_ms;
	row->seq = seq;
	snprintf(row->rule, sizeof(row->rule), "%s", rule != NULL ? rule : "");
}

void
store_fields_from_alert(const Xba__V1__Alert *alert, struct store_alert_fields *out)
{
	memset(out, 0, sizeof(*out));
	out->alert_id = alert->id;
	out->origin = alert->origin;
	out->author = alert->author;
	out->sent_ms = alert->sent_ms;
	out->msg_type = (int)alert->msg_type;
	out->category = (int)alert->category;
	out->severity = (int)alert->severity;
	out->tlp = (int)alert->tlp;
	out->status = (int)alert->status;
	out->emergency = alert->emergency;
	out->references = (const char *const *)alert->references;
	out->n_references = alert->n_references;
}

static int
check_envelope(struct store *s, size_t len, struct xba_error *err)
{
	if (len == 0 || len > INT_MAX)
		return xba_error_set(err, XBA_EINVAL, "store %s: an envelope of %zu bytes cannot be stored", s->path,
		    len);
	return 0;
}

/* Binds the store_alert_fields columns shared by the outgoing and inbox inserts, at the given positions. */
static void
bind_fields(sqlite3_stmt *st, const struct store_alert_fields *f, int id_col, int origin_col, int author_col,
    int first_int_col)
{
	sqlite3_bind_text(st, id_col, f->alert_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, origin_col, f->origin, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, author_col, f->author, -1, SQLITE_STATIC); /* NULL binds SQL NULL */
	sqlite3_bind_int64(st, first_int_col, f->sent_ms);
	sqlite3_bind_int(st, first_int_col + 1, f->msg_type);
	sqlite3_bind_int(st, first_int_col + 2, f->category);
	sqlite3_bind_int(st, first_int_col + 3, f->severity);
	sqlite3_bind_int(st, first_int_col + 4, f->tlp);
	sqlite3_bind_int(st, first_int_col + 5, f->status);
	sqlite3_bind_int(st, first_int_col + 6, f->emergency ? 1 : 0);
}

static int
check_fields(struct store *s, const struct store_alert_fields *f, struct xba_error *err)
{
	if (f == NULL || f->alert_id == NULL || f->alert_id[0] == '\0' || f->origin == NULL || f->origin[0] == '\0')
		return xba_error_set(err, XBA_EINVAL, "store %s: an alert needs an id and an origin", s->path);
	return 0;
}

/* ---- outbox ---- */

/* The outgoing insert, inside whichever transaction the caller opened. */
static int
insert_outgoing(struct store *s, const struct store_alert_fields *f, const uint8_t *envelope, size_t len,
    int64_t now_ms, int64_t *id_out, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_OUTBOX_ADD];

	bind_fields(st, f, 1, 2, 3, 4);
	sqlite3_bind_blob(st, 11, envelope, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 12, now_ms);
	if (sqlite3_step(st) != SQLITE_DONE) {
		if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE) {
			sqlite3_reset(st);
			return xba_error_set(err, XBA_EDUPLICATE, "alert %s was already submitted from this node",
			    f->alert_id);
		}
		return solo_fail(s, st, err, "add to outbox");
	}
	sqlite3_reset(st);
	if (id_out != NULL)
		*id_out = sqlite3_last_insert_rowid(s->db);
	return 0;
}

int
store_outbox_add(struct store *s, const struct store_alert_fields *f, const uint8_t *envelope, size_t len,
    int64_t now_ms, int64_t *id_out, struct xba_error *err)
{
	int rc;

	assert(s != NULL);
	if ((rc = check_fields(s, f, err)) != 0 || (rc = check_envelope(s, len, err)) != 0)
		return rc;
	if ((rc = solo_begin(s, err, "add to outbox")) != 0)
		return rc;
	if ((rc = insert_outgoing(s, f, envelope, len, now_ms, id_out, err)) != 0) {
		rollback_now(s);
		return rc;
	}
	return solo_commit(s, err, "add to outbox (commit)");
}

/* The first row of st after after_id (bound to ?1): 0 with the row to read (reset st after reading it),
 * XBA_ENOTFOUND when there is none, or the read failure. */
static int
step_after(struct store *s, sqlite3_stmt *st, int64_t after_id, const char *op, struct xba_error *err)
{
	int rc;

	sqlite3_bind_int64(st, 1, after_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return XBA_ENOTFOUND;
	}
	return stmt_fail(s, st, err, op);
}

static int
outbox_next(struct store *s, sqlite3_stmt *st, int64_t after_id, struct store_row *out, struct xba_error *err)
{
	int rc;

	assert(s != NULL && out != NULL);
	memset(out, 0, sizeof(*out));
	if ((rc = step_after(s, st, after_id, "read outbox", err)) != 0)
		return rc;
	rc = read_outgoing(st, out, true);
	sqlite3_reset(st);
	if (rc != 0)
		return xba_error_set(err, XBA_ENOMEM, "store %s: read outbox: out of memory", s->path);
	return 0;
}

int
store_outbox_next(struct store *s, int64_t after_id, struct store_row *out, struct xba_error *err)
{
	return outbox_next(s, s->st[ST_OUTBOX_NEXT], after_id, out, err);
}

int
store_outbox_next_emergency(struct store *s, int64_t after_id, struct store_row *out, struct xba_error *err)
{
	return outbox_next(s, s->st[ST_OUTBOX_NEXT_EMERGENCY], after_id, out, err);
}

static int
outbox_update(struct store *s, sqlite3_stmt *st, int64_t id, const char *op, struct xba_error *err)
{
	bool changed;

	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(s, st, err, op);
	changed = sqlite3_changes(s->db) > 0;
	sqlite3_reset(st);
	if (!changed)
		return xba_error_set(err, XBA_ENOTFOUND, "store %s: %s: outbox row %lld is not queued", s->path, op,
		    (long long)id);
	return 0;
}

int
store_outbox_accepted(struct store *s, int64_t id, uint64_t seq, uint32_t recipients, int result, int64_t now_ms,
    struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_OUTBOX_ACCEPTED];
	int rc;

	if ((rc = batch_ready(s, err, "record acceptance")) != 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, seq > INT64_MAX ? INT64_MAX : (int64_t)seq);
	sqlite3_bind_int64(st, 3, recipients);
	sqlite3_bind_int(st, 4, result);
	sqlite3_bind_int64(st, 5, now_ms);
	return outbox_update(s, st, id, "record acceptance", err);
}

int
store_outbox_refused(struct store *s, int64_t id, int result, const char *message, const char *field,
    int64_t now_ms, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_OUTBOX_REFUSED];
	int rc;

	if ((rc = batch_ready(s, err, "record refusal")) != 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, result);
	sqlite3_bind_text(st, 3, message != NULL ? message : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, field != NULL ? field : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now_ms);
	return outbox_update(s, st, id, "record refusal", err);
}

int
store_outbox_republish_refused(struct store *s, int64_t id, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_OUTBOX_REPUBLISH_REFUSED];
	int rc;

	if ((rc = batch_ready(s, err, "record a republished alert's refusal")) != 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	return outbox_update(s, st, id, "record a republished alert's refusal", err);
}

int
store_outbox_reseal(struct store *s, int64_t id, const uint8_t *envelope, size_t len, int64_t sent_ms,
    struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_OUTBOX_RESEAL];
	int rc;

	if ((rc = batch_ready(s, err, "seal again")) != 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_blob(st, 2, envelope, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, sent_ms);
	return outbox_update(s, st, id, "seal again", err);
}

/* ---- queries ---- */

/* The ",a,b," lists a filter binds; node ids and category numbers never contain ','.  *out is malloc'ed or NULL
 * when the list is empty (matches everything). */
static int
filter_lists(struct store *s, const struct store_filter *f, char **cats, char **origins, struct xba_error *err)
{
	size_t used = 1;
	char *buf;

	*cats = *origins = NULL;
	if (f->n_categories > 0) {
		if ((buf = malloc(FILTER_LIST_MAX)) == NULL)
			return xba_error_set(err, XBA_ENOMEM, "out of memory");
		buf[0] = ',';
		buf[1] = '\0';
		for (size_t i = 0; i < f->n_categories && used + 16 < FILTER_LIST_MAX; i++)
			used += (size_t)snprintf(buf + used, FILTER_LIST_MAX - used, "%d,", f->categories[i]);
		*cats = buf;
	}
	if (f->n_origins > 0) {
		used = 1;
		if ((buf = malloc(FILTER_LIST_MAX)) == NULL) {
			free(*cats);
			*cats = NULL;
			return xba_error_set(err, XBA_ENOMEM, "out of memory");
		}
		buf[0] = ',';
		buf[1] = '\0';
		for (size_t i = 0; i < f->n_origins; i++) {
			const char *o = f->origins[i] != NULL ? f->origins[i] : "";
			size_t len = strlen(o);

			if (strchr(o, ',') != NULL || used + len + 2 >= FILTER_LIST_MAX) {
				free(*cats);
				free(buf);
				*cats = NULL;
				return xba_error_set(err, XBA_EINVAL, "store %s: filter origin '%.40s' is not usable",
				    s->path, o);
			}
			memcpy(buf + used, o, len);
			used += len;
			buf[used++] = ',';
			buf[used] = '\0';
		}
		*origins = buf;
	}
	return 0;
}

static int
run_query(struct store *s, sqlite3_stmt *st, bool inbox, const struct store_filter *filter, size_t limit,
    store_row_fn fn, void *ctx, struct xba_error *err)
{
	static const struct store_filter everything = { 0 };
	struct store_row row;
	char *cats, *origins;
	int rc, stop = 0;

	if (filter == NULL)
		filter = &everything;
	if ((rc = filter_lists(s, filter, &cats, &origins, err)) != 0)
		return rc;
	sqlite3_bind_int64(st, 1, filter->since_ms);
	sqlite3_bind_int(st, 2, filter->min_severity);
	sqlite3_bind_int(st, 3, filter->unacknowledged_only ? (filter->emergencies_only ? 2 : 1) : 0);
	sqlite3_bind_text(st, 4, cats, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, origins, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 6, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
	/* A plain bound (not "0 means none") so that SQLite reads a page from the rowid, not from the newest row. */
	sqlite3_bind_int64(st, 7, filter->before_id > 0 ? filter->before_id : INT64_MAX);
	free(cats);
	free(origins);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (inbox)
			read_inbox(st, &row, false);
		else
			read_outgoing(st, &row, false);
		if ((stop = fn(ctx, &row)) != 0)
			break;
	}
	if (stop == 0 && rc != SQLITE_DONE)
		return stmt_fail(s, st, err, inbox ? "read inbox" : "read outgoing history");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return stop;
}

int
store_outgoing_query(struct store *s, const struct store_filter *filter, bool newest_first, size_t limit,
    store_row_fn fn, void *ctx, struct xba_error *err)
{
	assert(s != NULL && fn != NULL);
	return run_query(s, s->st[newest_first ? ST_OUTGOING_NEW : ST_OUTGOING_OLD], false, filter, limit, fn, ctx,
	    err);
}

int
store_outgoing_later_versions(struct store *s, int64_t after_id, store_row_fn fn, void *ctx, struct xba_error *err)
{
	sqlite3_stmt *st;
	struct store_row row;
	int rc, stop = 0;

	assert(s != NULL && fn != NULL);
	st = s->st[ST_OUTGOING_LATER_VERSIONS];
	sqlite3_bind_int64(st, 1, after_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_outgoing(st, &row, false);
		if ((stop = fn(ctx, &row)) != 0)
			break;
	}
	if (stop == 0 && rc != SQLITE_DONE)
		return stmt_fail(s, st, err, "read outgoing history (later versions)");
	sqlite3_reset(st);
	return stop;
}

int
store_inbox_query(struct store *s, const struct store_filter *filter, bool newest_first, size_t limit,
    store_row_fn fn, void *ctx, struct xba_error *err)
{
	assert(s != NULL && fn != NULL);
	return run_query(s, s->st[newest_first ? ST_INBOX_NEW : ST_INBOX_OLD], true, filter, limit, fn, ctx, err);
}

/* ---- inbox ---- */

/* An update or cancel just stored: each alert it names, if its origin sent one, is superseded by it. */
static int
supersede(struct store *s, const struct store_alert_fields *f, int64_t received_ms, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_SUPERSEDE];

	for (size_t i = 0; i < f->n_references; i++) {
		sqlite3_bind_text(st, 1, f->references[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, f->origin, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, f->alert_id, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, f->msg_type);
		sqlite3_bind_int64(st, 5, received_ms);
		if (sqlite3_step(st) != SQLITE_DONE)
			return txn_fail(s, st, err, "store delivery (supersede)");
		sqlite3_reset(st);
	}
	return 0;
}

int
store_inbox_add(struct store *s, const struct store_alert_fields *f, const uint8_t *envelope, size_t len,
    uint64_t seq, const char *rule, int64_t received_ms, bool *inserted, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_INBOX_ADD];
	bool written;
	int rc;

	if (inserted != NULL)
		*inserted = false;
	if ((rc = batch_ready(s, err, "store delivery")) != 0)
		return rc;
	if ((rc = check_fields(s, f, err)) != 0 || (rc = check_envelope(s, len, err)) != 0)
		return rc;
	sqlite3_bind_text(st, 1, f->alert_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, seq > INT64_MAX ? INT64_MAX : (int64_t)seq);
	sqlite3_bind_text(st, 3, rule != NULL ? rule : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, f->origin, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, f->author, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, f->sent_ms);
	sqlite3_bind_int(st, 7, f->msg_type);
	sqlite3_bind_int(st, 8, f->category);
	sqlite3_bind_int(st, 9, f->severity);
	sqlite3_bind_int(st, 10, f->tlp);
	sqlite3_bind_int(st, 11, f->status);
	sqlite3_bind_int(st, 12, f->emergency ? 1 : 0);
	sqlite3_bind_blob(st, 13, envelope, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 14, received_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(s, st, err, "store delivery");
	/* INSERT OR IGNORE: the alert id is already there, so this is a redelivery and nothing was written. */
	written = sqlite3_changes(s->db) > 0;
	if (inserted != NULL)
		*inserted = written;
	sqlite3_reset(st);
	if (written && (f->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE ||
	    f->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL))
		return supersede(s, f, received_ms, err);
	return 0;
}

int
store_superseded_get(struct store *s, struct store_row *row, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_SUPERSEDED_GET];
	int rc;

	assert(s != NULL && row != NULL);
	sqlite3_bind_text(st, 1, row->alert_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row->origin, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		copy_text(row->superseded_by, sizeof(row->superseded_by), sqlite3_column_text(st, 0));
		row->superseded_type = sqlite3_column_int(st, 1);
	} else if (rc != SQLITE_DONE) {
		return stmt_fail(s, st, err, "read inbox (superseded)");
	}
	sqlite3_reset(st);
	return 0;
}

static int
get_by_alert_id(struct store *s, bool inbox, const char *alert_id, struct store_row *out, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[inbox ? ST_INBOX_GET : ST_OUTGOING_GET];
	const char *op = inbox ? "read inbox" : "read outgoing";
	int rc;

	assert(s != NULL && alert_id != NULL && out != NULL);
	memset(out, 0, sizeof(*out));
	sqlite3_bind_text(st, 1, alert_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return xba_error_set(err, XBA_ENOTFOUND, "alert %s is not in this agent's %s", alert_id,
		    inbox ? "inbox" : "outgoing alerts");
	}
	if (rc != SQLITE_ROW)
		return stmt_fail(s, st, err, op);
	rc = inbox ? read_inbox(st, out, true) : read_outgoing(st, out, true);
	sqlite3_reset(st);
	if (rc != 0)
		return xba_error_set(err, XBA_ENOMEM, "store %s: %s: out of memory", s->path, op);
	return 0;
}

int
store_inbox_get(struct store *s, const char *alert_id, struct store_row *out, struct xba_error *err)
{
	return get_by_alert_id(s, true, alert_id, out, err);
}

int
store_outgoing_get(struct store *s, const char *alert_id, struct store_row *out, struct xba_error *err)
{
	return get_by_alert_id(s, false, alert_id, out, err);
}

int
store_ack(struct store *s, const char *alert_id, const char *officer, int64_t now_ms,
    const struct store_alert_fields *ack, const uint8_t *ack_envelope, size_t ack_len, int64_t *ack_id_out,
    char by_out[132], struct xba_error *err)
{
	sqlite3_stmt *st;
	struct store_row row;
	int rc;

	assert(s != NULL && alert_id != NULL && officer != NULL);
	if (by_out != NULL)
		by_out[0] = '\0';
	if ((rc = check_fields(s, ack, err)) != 0 || (rc = check_envelope(s, ack_len, err)) != 0)
		return rc;
	if ((rc = solo_begin(s, err, "acknowledge")) != 0)
		return rc;
	/* Read inside the write transaction: nothing can acknowledge it between the look and the update. */
	if ((rc = store_inbox_get(s, alert_id, &row, err)) != 0) {
		rollback_now(s);
		return rc;
	}
	if (row.acknowledged) {
		if (by_out != NULL)
			snprintf(by_out, 132, "%s", row.acknowledged_by);
		store_row_clear(&row);
		rollback_now(s);
		return xba_error_set(err, XBA_EDUPLICATE, "alert %s was already acknowledged", alert_id);
	}
	store_row_clear(&row);
	st = s->st[ST_INBOX_ACK];
	sqlite3_bind_text(st, 1, alert_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, officer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now_ms);
	sqlite3_bind_text(st, 4, ack->alert_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return solo_fail(s, st, err, "acknowledge");
	sqlite3_reset(st);
	if ((rc = insert_outgoing(s, ack, ack_envelope, ack_len, now_ms, ack_id_out, err)) != 0) {
		rollback_now(s);
		return rc;
	}
	return solo_commit(s, err, "acknowledge (commit)");
}

/* ---- quarantine, receipts, cursor ---- */

int
store_quarantine_add(struct store *s, uint64_t seq, int code, const char *reason, const char *alert_id,
    const char *rule, const uint8_t *envelope, size_t len, int64_t received_ms, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_QUARANTINE_ADD];
	int rc;

	if ((rc = batch_ready(s, err, "quarantine delivery")) != 0)
		return rc;
	if (len > INT_MAX)
		len = 0; /* cannot happen under the frame limit; the reason is what matters */
	sqlite3_bind_int64(st, 1, seq > INT64_MAX ? INT64_MAX : (int64_t)seq);
	sqlite3_bind_int64(st, 2, received_ms);
	sqlite3_bind_int(st, 3, code);
	sqlite3_bind_text(st, 4, reason != NULL ? reason : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, alert_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, rule, -1, SQLITE_STATIC);
	if (envelope != NULL)
		sqlite3_bind_blob(st, 7, envelope, (int)len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 7);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(s, st, err, "quarantine delivery");
	sqlite3_reset(st);
	return 0;
}

void
store_quarantined_clear(struct store_quarantined *q)
{
	if (q == NULL)
		return;
	free(q->envelope);
	q->envelope = NULL;
	q->envelope_len = 0;
}

/* One row of ST_QUARANTINE_NEXT / ST_QUARANTINE_LIST; false: out of memory. */
static bool
read_quarantined(sqlite3_stmt *st, struct store_quarantined *out)
{
	const void *blob;

	memset(out, 0, sizeof(*out));
	out->id = sqlite3_column_int64(st, 0);
	out->seq = (uint64_t)sqlite3_column_int64(st, 1);
	out->received_ms = sqlite3_column_int64(st, 2);
	out->code = sqlite3_column_int(st, 3);
	copy_text(out->reason, sizeof(out->reason), sqlite3_column_text(st, 4));
	copy_text(out->alert_id, sizeof(out->alert_id), sqlite3_column_text(st, 5));
	copy_text(out->rule, sizeof(out->rule), sqlite3_column_text(st, 6));
	/* NULL: the delivery had no envelope to keep (there is nothing to verify again). */
	if ((blob = sqlite3_column_blob(st, 7)) != NULL) {
		size_t len = (size_t)sqlite3_column_bytes(st, 7);

		if ((out->envelope = malloc(len + 1)) == NULL)
			return false;
		memcpy(out->envelope, blob, len);
		out->envelope_len = len;
	}
	return true;
}

int
store_quarantine_next(struct store *s, int64_t after_id, struct store_quarantined *out, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_QUARANTINE_NEXT];
	bool read;
	int rc;

	assert(s != NULL && out != NULL);
	memset(out, 0, sizeof(*out));
	if ((rc = step_after(s, st, after_id, "read quarantine", err)) != 0)
		return rc;
	read = read_quarantined(st, out);
	sqlite3_reset(st);
	if (!read)
		return xba_error_set(err, XBA_ENOMEM, "store %s: read quarantine: out of memory", s->path);
	return 0;
}

int
store_quarantine_list(struct store *s, size_t limit, store_quarantined_fn fn, void *ctx, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_QUARANTINE_LIST];
	struct store_quarantined q;
	int rc;

	assert(s != NULL && fn != NULL);
	sqlite3_bind_int64(st, 1, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int stop;

		if (!read_quarantined(st, &q)) {
			sqlite3_reset(st);
			return xba_error_set(err, XBA_ENOMEM, "list quarantine: out of memory");
		}
		stop = fn(ctx, &q);
		store_quarantined_clear(&q);
		if (stop != 0) {
			sqlite3_reset(st);
			return stop;
		}
	}
	if (rc != SQLITE_DONE)
		return stmt_fail(s, st, err, "list quarantine");
	sqlite3_reset(st);
	return 0;
}

int
store_records(struct store *s, bool sent, int64_t after_id, size_t limit, store_record_fn fn, void *ctx,
    int64_t *last_id, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[sent ? ST_RECORDS_SENT : ST_RECORDS_INBOX];
	int rc;

	assert(s != NULL && fn != NULL && last_id != NULL);
	*last_id = after_id;
	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int64(st, 2, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *alert_id = (const char *)sqlite3_column_text(st, 2);
		int stop;

		*last_id = sqlite3_column_int64(st, 0);
		stop = fn(ctx, (uint64_t)sqlite3_column_int64(st, 1), alert_id != NULL ? alert_id : "",
		    sqlite3_column_blob(st, 3), (size_t)sqlite3_column_bytes(st, 3));
		if (stop != 0) {
			sqlite3_reset(st);
			return stop;
		}
	}
	if (rc != SQLITE_DONE)
		return stmt_fail(s, st, err, sent ? "list sent alerts" : "list inbox");
	sqlite3_reset(st);
	return 0;
}

int
store_quarantine_release(struct store *s, int64_t id, int64_t released_ms, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_QUARANTINE_RELEASE];
	bool changed;
	int rc;

	if ((rc = batch_ready(s, err, "release quarantined delivery")) != 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, released_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(s, st, err, "release quarantined delivery");
	changed = sqlite3_changes(s->db) > 0;
	sqlite3_reset(st);
	if (!changed)
		return xba_error_set(err, XBA_ENOTFOUND, "store %s: quarantine row %lld is not held (released already?)",
		    s->path, (long long)id);
	return 0;
}

/* The seqs a release query answers, at most max (bound as ?1 with the query's other parameters already bound). */
static int
read_release_seqs(struct store *s, sqlite3_stmt *st, uint64_t *seqs, size_t max, size_t *n, struct xba_error *err,
    const char *op)
{
	int rc;

	assert(s != NULL && n != NULL);
	*n = 0;
	sqlite3_bind_int64(st, 1, max > INT64_MAX ? INT64_MAX : (int64_t)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max)
		seqs[(*n)++] = (uint64_t)sqlite3_column_int64(st, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return stmt_fail(s, st, err, op);
	sqlite3_reset(st);
	return 0;
}

int
store_quarantine_unreported(struct store *s, uint64_t *seqs, size_t max, size_t *n, struct xba_error *err)
{
	return read_release_seqs(s, s->st[ST_QUARANTINE_UNREPORTED], seqs, max, n, err, "read unreported releases");
}

int
store_quarantine_reported_since(struct store *s, int64_t since_ms, uint64_t *seqs, size_t max, size_t *n,
    struct xba_error *err)
{
	sqlite3_bind_int64(s->st[ST_QUARANTINE_REPORTED_SINCE], 2, since_ms);
	return read_release_seqs(s, s->st[ST_QUARANTINE_REPORTED_SINCE], seqs, max, n, err, "read reported releases");
}

int
store_quarantine_reported(struct store *s, const uint64_t *seqs, size_t n, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_QUARANTINE_REPORTED];
	int rc;

	if ((rc = solo_begin(s, err, "record reported releases")) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, seqs[i] > INT64_MAX ? INT64_MAX : (int64_t)seqs[i]);
		if (sqlite3_step(st) != SQLITE_DONE)
			return solo_fail(s, st, err, "record reported releases");
		sqlite3_reset(st);
	}
	return solo_commit(s, err, "record reported releases (commit)");
}

int
store_receipt_add(struct store *s, const char *alert_id, const char *node_id, int kind, int64_t time_ms,
    const char *officer, const char *note, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_RECEIPT_ADD];
	int rc;

	if ((rc = batch_ready(s, err, "store receipt")) != 0)
		return rc;
	sqlite3_bind_text(st, 1, alert_id != NULL ? alert_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, node_id != NULL ? node_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, kind);
	sqlite3_bind_int64(st, 4, time_ms);
	sqlite3_bind_text(st, 5, officer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, note, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(s, st, err, "store receipt");
	sqlite3_reset(st);
	return 0;
}

int
store_highest_held(struct store *s, uint64_t limit, uint64_t *out, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_HIGHEST_HELD];
	int rc;

	assert(s != NULL && out != NULL);
	*out = 0;
	sqlite3_bind_int64(st, 1, limit > INT64_MAX ? INT64_MAX : (int64_t)limit);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int64_t v = sqlite3_column_int64(st, 0); /* NULL (nothing held) reads as 0 */

		*out = v > 0 ? (uint64_t)v : 0;
	} else if (rc != SQLITE_DONE) {
		return stmt_fail(s, st, err, "read the highest seq held");
	}
	sqlite3_reset(st);
	return 0;
}

/* The integer stored under key in the meta table; *out = 0 when there is none.  what names it in an error. */
static int
meta_get_int64(struct store *s, const char *key, int64_t *out, const char *what, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_META_GET];
	int rc;

	*out = 0;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		return stmt_fail(s, st, err, what);
	sqlite3_reset(st);
	return 0;
}

int
store_through_seq(struct store *s, uint64_t *out, struct xba_error *err)
{
	int64_t v;
	int rc;

	assert(s != NULL && out != NULL);
	rc = meta_get_int64(s, "through_seq", &v, "read delivery cursor", err);
	*out = rc == 0 && v > 0 ? (uint64_t)v : 0;
	return rc;
}

int
store_set_through_seq(struct store *s, uint64_t through_seq, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_META_PUT];
	int rc;

	if ((rc = batch_ready(s, err, "store delivery cursor")) != 0)
		return rc;
	sqlite3_bind_text(st, 1, "through_seq", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, through_seq > INT64_MAX ? INT64_MAX : (int64_t)through_seq);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(s, st, err, "store delivery cursor");
	sqlite3_reset(st);
	return 0;
}

int
store_outgoing_requeue_after(struct store *s, uint64_t after_seq, int64_t since_ms, int64_t now_ms, uint64_t *count,
    struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_OUTGOING_REQUEUE];
	int rc;

	*count = 0;
	if ((rc = batch_ready(s, err, "queue again what a restored journal lost")) != 0)
		return rc;
	sqlite3_bind_int64(st, 1, after_seq > INT64_MAX ? INT64_MAX : (int64_t)after_seq);
	sqlite3_bind_int64(st, 2, since_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(s, st, err, "queue again what a restored journal lost");
	*count = (uint64_t)sqlite3_changes(s->db);
	sqlite3_reset(st);
	/* From now on the last accepted alert is looked for among rows accepted after this (store_outgoing_last_accepted):
	 * rows too old to be requeued keep the old journal's seqs, and named in every Hello they would make each
	 * restart look like another restore. */
	st = s->st[ST_META_PUT];
	sqlite3_bind_text(st, 1, "journal_restored_ms", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(s, st, err, "note the journal's restore");
	sqlite3_reset(st);
	return 0;
}

int
store_count_alerts_refused_since(struct store *s, int64_t since_ms, uint64_t *out, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_COUNT_ALERTS_REFUSED_SINCE];

	assert(s != NULL && out != NULL);
	*out = 0;
	sqlite3_bind_int64(st, 1, since_ms);
	if (sqlite3_step(st) != SQLITE_ROW)
		return stmt_fail(s, st, err, "count refused alerts");
	*out = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

/* In the turn's transaction: the integer value under key in the meta table. */
static int
meta_put_int64(struct store *s, const char *key, int64_t value, const char *what, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_META_PUT];
	int rc;

	if ((rc = batch_ready(s, err, what)) != 0)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, value);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(s, st, err, what);
	sqlite3_reset(st);
	return 0;
}

int
store_held_high(struct store *s, uint64_t *out, struct xba_error *err)
{
	int64_t noted = 0;
	int rc;

	assert(s != NULL && out != NULL);
	if ((rc = store_highest_held(s, INT64_MAX, out, err)) != 0 ||
	    (rc = meta_get_int64(s, "held_high", &noted, "read the highest seq held", err)) != 0)
		return rc;
	if (noted > 0 && (uint64_t)noted > *out)
		*out = (uint64_t)noted;
	return 0;
}

int
store_note_held(struct store *s, uint64_t seq, struct xba_error *err)
{
	int64_t noted = 0;
	int rc;

	if (seq == 0)
		return 0; /* a turn that stored no delivery (publish answers only): nothing to read or write */
	if ((rc = meta_get_int64(s, "held_high", &noted, "read the highest seq held", err)) != 0)
		return rc;
	if (seq > INT64_MAX || (int64_t)seq <= noted)
		return 0;
	return meta_put_int64(s, "held_high", (int64_t)seq, "note the highest seq held", err);
}

int
store_behind_since(struct store *s, int64_t *out, struct xba_error *err)
{
	assert(s != NULL && out != NULL);
	return meta_get_int64(s, "store_behind_ms", out, "read when this store was found behind", err);
}

int
store_note_behind(struct store *s, int64_t now_ms, struct xba_error *err)
{
	return meta_put_int64(s, "store_behind_ms", now_ms, "note that this store is behind the broker's record", err);
}

int
store_restore_seen(struct store *s, int64_t *out, struct xba_error *err)
{
	assert(s != NULL && out != NULL);
	return meta_get_int64(s, "journal_restore_seen_ms", out, "read when a journal restore was last seen", err);
}

int
store_note_restore_seen(struct store *s, int64_t now_ms, struct xba_error *err)
{
	return meta_put_int64(s, "journal_restore_seen_ms", now_ms, "note a restore of the broker's journal", err);
}

int
store_journal_restored_ms(struct store *s, int64_t *out, struct xba_error *err)
{
	assert(s != NULL && out != NULL);
	return meta_get_int64(s, "journal_restored_ms", out, "read when the journal was last restored", err);
}

int
store_outgoing_last_accepted(struct store *s, uint64_t *seq, char *alert_id, size_t size, struct xba_error *err)
{
	sqlite3_stmt *st;
	int64_t restored_ms = 0;
	int rc;

	*seq = 0;
	alert_id[0] = '\0';
	if ((rc = store_journal_restored_ms(s, &restored_ms, err)) != 0)
		return rc;
	st = s->st[ST_OUTGOING_MAX_SEQ];
	sqlite3_bind_int64(st, 1, restored_ms);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int64_t v = sqlite3_column_int64(st, 0);
		const unsigned char *id = sqlite3_column_text(st, 1);

		*seq = v > 0 ? (uint64_t)v : 0;
		snprintf(alert_id, size, "%s", id != NULL ? (const char *)id : "");
	} else if (rc != SQLITE_DONE) {
		return stmt_fail(s, st, err, "read the highest seq of an accepted alert");
	}
	sqlite3_reset(st);
	return 0;
}

int
store_through_alert_id(struct store *s, uint64_t through_seq, char *out, size_t size, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_META_GET];
	int rc;

	assert(s != NULL && out != NULL && size > 0);
	out[0] = '\0';
	sqlite3_bind_text(st, 1, "through_alert", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		char *end = NULL;
		unsigned long long seq = v != NULL ? strtoull(v, &end, 10) : 0;

		/* "SEQ ID": the id only when it is the cursor's */
		if (v != NULL && end != v && *end == ' ' && seq == through_seq)
			snprintf(out, size, "%s", end + 1);
	} else if (rc != SQLITE_DONE) {
		return stmt_fail(s, st, err, "read the delivery cursor's alert id");
	}
	sqlite3_reset(st);
	return 0;
}

int
store_set_through_alert_id(struct store *s, uint64_t through_seq, const char *alert_id, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[ST_META_PUT];
	char value[64];
	int rc;

	if ((rc = batch_ready(s, err, "store the delivery cursor's alert id")) != 0)
		return rc;
	snprintf(value, sizeof(value), "%llu %.40s", (unsigned long long)through_seq, alert_id != NULL ? alert_id : "");
	sqlite3_bind_text(st, 1, "through_alert", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		return txn_fail(s, st, err, "store the delivery cursor's alert id");
	sqlite3_reset(st);
	return 0;
}

int
store_prune(struct store *s, int64_t cutoff_ms, size_t max_rows, struct store_pruned *out, struct xba_error *err)
{
	static const enum stmt_id ids[4] = { ST_PRUNE_INBOX, ST_PRUNE_OUTGOING, ST_PRUNE_RECEIPTS,
		ST_PRUNE_QUARANTINE };
	uint64_t *counts[4];
	int rc;

	assert(s != NULL && out != NULL && max_rows > 0);
	memset(out, 0, sizeof(*out));
	counts[0] = &out->inbox;
	counts[1] = &out->outgoing;
	counts[2] = &out->receipts;
	counts[3] = &out->quarantine;
	if ((rc = solo_begin(s, err, "prune")) != 0)
		return rc;
	for (int i = 0; i < 5; i++) {
		sqlite3_stmt *st = s->st[i < 4 ? ids[i] : ST_PRUNE_SUPERSEDED];
		uint64_t changed;

		sqlite3_bind_int64(st, 1, cutoff_ms);
		sqlite3_bind_int64(st, 2, max_rows > INT64_MAX ? INT64_MAX : (int64_t)max_rows);
		if (sqlite3_step(st) != SQLITE_DONE)
			return solo_fail(s, st, err, "prune");
		changed = (uint64_t)sqlite3_changes(s->db);
		sqlite3_reset(st);
		if (i < 4) /* after the inbox: what its pruned alerts no longer need (not counted: bookkeeping) */
			*counts[i] = changed;
		if (changed == max_rows)
			out->more = true;
	}
	return solo_commit(s, err, "prune (commit)");
}

static int
count(struct store *s, enum stmt_id id, int64_t *out, struct xba_error *err)
{
	sqlite3_stmt *st = s->st[id];

	if (sqlite3_step(st) != SQLITE_ROW)
		return stmt_fail(s, st, err, "count");
	*out = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

int
store_stats(struct store *s, struct store_stats *out, struct xba_error *err)
{
	int64_t v[7] = { 0 };
	static const enum stmt_id ids[7] = { ST_COUNT_OUTBOX, ST_COUNT_REFUSED, ST_COUNT_INBOX, ST_COUNT_UNACKED,
		ST_COUNT_QUARANTINE, ST_LAST_DELIVERY, ST_COUNT_ACKS_REFUSED };
	int rc;

	assert(s != NULL && out != NULL);
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < 7; i++)
		if ((rc = count(s, ids[i], &v[i], err)) != 0)
			return rc;
	out->outbox_depth = (uint64_t)v[0];
	out->refused = (uint64_t)v[1];
	out->inbox_count = (uint64_t)v[2];
	out->unacknowledged = (uint64_t)v[3];
	out->quarantined = (uint64_t)v[4];
	out->last_delivery_ms = v[5];
	out->acks_refused = (uint64_t)v[6];
	return 0;
}
