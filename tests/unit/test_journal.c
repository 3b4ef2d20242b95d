/*
 * test_journal.c — the broker's journal (broker/journal.c): appends and lookups, per-node queues and delivery
 * states, the envelope cache (hits, SQLite fallback, rollback, eviction), receipts (track), the hash-chained audit
 * trail and what it detects, pruning, failed transactions and schema versions; then a micro-benchmark of the publish
 * path's journal cost (printed, not asserted).
 *
 * Tampering is done the way an attacker with file access would: through a second, raw SQLite connection.
 * Tests run as root in CI, so a read-only file cannot be simulated with chmod; a write failure is made with
 * RLIMIT_FSIZE (writes past the limit fail with EFBIG, which root does not bypass) and a lock held by another
 * connection.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "check.h"
#include "error.h"
#include "journal.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static char workdir[256];
static int journal_counter;

/* A fresh journal path in the work directory. */
static const char *
new_path(char *buf, size_t size)
{
	snprintf(buf, size, "%s/journal-%d.db", workdir, ++journal_counter);
	return buf;
}

static const struct journal_recipient three[] = {
	{ "LBY", "neighbours" }, { "DZA", "neighbours" }, { "SDN", "members" },
};
static const struct journal_recipient one_withheld[] = { { "TCD", "deny-tcd" } };

static const uint8_t small_envelope[] = { 0x0a, 0x03, 'a', 'b', 'c', 0x00, 0xff, 0x12 };

static struct journal_entry
entry(const char *id, bool emergency, int64_t received_ms, const struct journal_recipient *r, size_t nr,
    const struct journal_recipient *w, size_t nw)
{
	struct journal_entry e;

	memset(&e, 0, sizeof(e));
	e.alert_id = id;
	e.origin = "NER";
	e.sent_ms = received_ms - 5;
	e.received_ms = received_ms;
	e.msg_type = 1;
	e.emergency = emergency;
	e.envelope = small_envelope;
	e.envelope_len = sizeof(small_envelope);
	e.rules_version = "3f0c9a6b2d5e8f1a4c7b0d3e6f9a2c5b8e1d4f7a0c3b6e9d2f5a8c1b4e7d0a3f";
	e.recipients = r;
	e.n_recipients = nr;
	e.withheld = w;
	e.n_withheld = nw;
	return e;
}

/* One alert in its own transaction; returns its seq, 0 on failure. */
static uint64_t
append_one(struct journal *j, const struct journal_entry *e)
{
	struct xba_error err;
	uint64_t seq = 0;

	if (journal_begin(j, &err) != 0) {
		fprintf(stderr, "begin: %s\n", err.msg);
		return 0;
	}
	if (journal_append(j, e, &seq, &err) != 0) {
		fprintf(stderr, "append: %s\n", err.msg);
		journal_rollback(j);
		return 0;
	}
	if (journal_commit(j, &err) != 0) {
		fprintf(stderr, "commit: %s\n", err.msg);
		return 0;
	}
	return seq;
}

/* Alerts "<prefix>-1" .. "<prefix>-n", each in its own transaction, received at 1000 * i; emergency_seq (0: none)
 * is an emergency.  True when they got seqs 1..n, as on a new journal. */
static bool
append_numbered(struct journal *j, const char *prefix, int n, int emergency_seq, const struct journal_recipient *r,
    size_t nr, const struct journal_recipient *w, size_t nw)
{
	bool ok = true;

	for (int i = 1; i <= n; i++) {
		char id[32];
		struct journal_entry e;

		snprintf(id, sizeof(id), "%s-%d", prefix, i);
		e = entry(id, i == emergency_seq, 1000 * i, r, nr, w, nw);
		ok = append_one(j, &e) == (uint64_t)i && ok;
	}
	return ok;
}

/* Runs SQL on a second, raw connection to the journal file (tampering, schema games). */
static int
raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc;

	if (sqlite3_open(path, &db) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fprintf(stderr, "raw_exec %s: %s\n", sql, msg != NULL ? msg : "?");
	sqlite3_free(msg);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* The first column of the first row of sql on a raw connection; -1 on any failure. */
static int64_t
raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static bool
verifies(struct journal *j, uint64_t expected_checked)
{
	struct xba_error err;
	uint64_t checked = 0;
	int rc = journal_audit_verify(j, &checked, &err);

	if (rc != 0)
		fprintf(stderr, "audit: %s\n", err.msg);
	else if (checked != expected_checked)
		fprintf(stderr, "audit checked %llu, expected %llu\n", (unsigned long long)checked,
		    (unsigned long long)expected_checked);
	return rc == 0 && checked == expected_checked;
}

/* ---- track rows collected for checks ---- */

struct track_log {
	struct journal_track_row rows[16];
	size_t n;
	size_t stop_after;   /* 0: never stop */
};

static int
track_collect(void *ctx, const struct journal_track_row *r)
{
	struct track_log *log = ctx;

	if (log->n < COUNT(log->rows))
		log->rows[log->n++] = *r;
	return log->stop_after != 0 && log->n == log->stop_after ? 7 : 0;
}

static const struct journal_track_row *
track_row(struct track_log *log, const char *node)
{
	for (size_t i = 0; i < log->n; i++) {
		if (strcmp(log->rows[i].node_id, node) == 0)
			return &log->rows[i];
	}
	return NULL;
}

static int
track(struct journal *j, uint64_t seq, struct track_log *log)
{
	struct xba_error err;

	memset(log, 0, sizeof(*log));
	return journal_track(j, seq, track_collect, log, &err);
}

/* ---- tests ---- */

static void
test_append_find_head(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_alert_info info;
	struct journal_entry a = entry("a-1", false, 1000, three, 3, one_withheld, 1);
	struct journal_entry b = entry("b-2", true, 1001, three, 2, NULL, 0);
	uint8_t digest[32];
	uint64_t seq = 0;

	CHECK(t, j != NULL);
	if (j == NULL)
		return;
	CHECK(t, journal_head(j) == 0);
	CHECK(t, !journal_txn_writes(j)); /* no transaction */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_find(j, "a-1", &info, &err), XBA_ENOTFOUND);
	CHECK(t, !journal_txn_writes(j)); /* a read does not make the commit write */
	CHECK_CODE(t, journal_append(j, &a, &seq, &err), 0);
	CHECK(t, journal_txn_writes(j));
	CHECK(t, seq == 1 && journal_head(j) == 1);
	/* Inside the transaction the entry is already visible to the same connection. */
	CHECK_CODE(t, journal_find(j, "a-1", &info, &err), 0);
	CHECK_CODE(t, journal_append(j, &b, &seq, &err), 0);
	CHECK(t, seq == 2);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	CHECK(t, journal_head(j) == 2 && !journal_txn_writes(j));

	CHECK_CODE(t, journal_find(j, "a-1", &info, &err), 0);
	CHECK(t, info.seq == 1 && strcmp(info.origin, "NER") == 0 && info.recipients == 3 && !info.emergency);
	EVP_Digest(small_envelope, sizeof(small_envelope), digest, NULL, EVP_sha256(), NULL);
	CHECK(t, memcmp(info.envelope_sha256, digest, 32) == 0);
	CHECK_CODE(t, journal_find(j, "b-2", &info, &err), 0);
	CHECK(t, info.seq == 2 && info.recipients == 2 && info.emergency);
	CHECK_CODE(t, journal_find(j, "nope", &info, &err), XBA_ENOTFOUND);
	CHECK_CONTAINS(t, err.msg, path);
	CHECK_CONTAINS(t, err.msg, "nope");

	/* Bad entries are refused before anything is written, and the transaction goes on. */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	a.alert_id = NULL;
	CHECK_CODE(t, journal_append(j, &a, &seq, &err), XBA_EINVAL);
	CHECK_CONTAINS(t, err.msg, "alert id");
	{
		struct journal_recipient long_node[] = { { "NODE-WITH-A-NAME-LONGER-THAN-32-BYTES", "r" } };
		struct journal_entry c = entry("c-3", false, 1002, long_node, 1, NULL, 0);

		CHECK_CODE(t, journal_append(j, &c, &seq, &err), XBA_EINVAL);
		CHECK_CONTAINS(t, err.msg, "recipient node");
	}
	a.alert_id = "a-3";
	CHECK_CODE(t, journal_append(j, &a, &seq, &err), 0);
	CHECK(t, seq == 3);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	CHECK(t, verifies(j, 3));
	journal_close(j);
}

static void
test_duplicates(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_entry a = entry("dup-1", false, 1000, three, 3, NULL, 0);
	struct journal_entry b = entry("dup-2", false, 1001, three, 3, NULL, 0);
	struct journal_recipient twice[] = { { "DZA", "r1" }, { "LBY", "r1" }, { "DZA", "r2" } };
	struct journal_recipient deny_dza[] = { { "DZA", "deny" } };
	struct journal_alert_info info;
	uint64_t seq = 0;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	CHECK(t, append_one(j, &a) == 1);
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_append(j, &a, &seq, &err), XBA_EDUPLICATE);
	CHECK_CONTAINS(t, err.msg, "dup-1");
	CHECK(t, journal_head(j) == 1);
	/* The safety net does not fail the batch: the next publish of it is journaled and committed. */
	CHECK_CODE(t, journal_append(j, &b, &seq, &err), 0);
	CHECK(t, seq == 2);
	/* A second publish of the same id within one batch is caught as well. */
	CHECK_CODE(t, journal_append(j, &b, &seq, &err), XBA_EDUPLICATE);
	b = entry("dup-3", false, 1002, twice, 3, NULL, 0);
	CHECK_CODE(t, journal_append(j, &b, &seq, &err), XBA_EINVAL);
	CHECK_CONTAINS(t, err.msg, "listed twice");
	b = entry("dup-3", false, 1002, three, 3, deny_dza, 1);
	CHECK_CODE(t, journal_append(j, &b, &seq, &err), XBA_EINVAL);
	CHECK_CONTAINS(t, err.msg, "both a recipient and withheld");
	CHECK_CODE(t, journal_commit(j, &err), 0);
	CHECK(t, journal_head(j) == 2);
	CHECK_CODE(t, journal_find(j, "dup-2", &info, &err), 0);
	CHECK_CODE(t, journal_find(j, "dup-3", &info, &err), XBA_ENOTFOUND);
	CHECK(t, verifies(j, 2));
	journal_close(j);
}

struct skip_set {
	uint64_t seqs[4];
	size_t n;
	size_t asked;        /* how often skip() was called */
};

static bool
skip_in_set(void *ctx, uint64_t seq)
{
	struct skip_set *s = ctx;

	s->asked++;
	for (size_t i = 0; i < s->n; i++) {
		if (s->seqs[i] == seq)
			return true;
	}
	return false;
}

static void
test_pending_order(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_recipient dza[] = { { "DZA", "rule-dza" } }, lby[] = { { "LBY", "rule-lby" } };
	struct journal_pending p[10];
	struct skip_set skip = { { 4, 1 }, 2, 0 };
	struct journal_entry e;
	bool changed;
	int n;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	e = entry("p-1", false, 1, dza, 1, NULL, 0);
	CHECK(t, append_one(j, &e) == 1);
	e = entry("p-2", true, 2, dza, 1, NULL, 0);
	CHECK(t, append_one(j, &e) == 2);
	e = entry("p-3", false, 3, dza, 1, NULL, 0);
	CHECK(t, append_one(j, &e) == 3);
	e = entry("p-4", true, 4, dza, 1, NULL, 0);
	CHECK(t, append_one(j, &e) == 4);
	e = entry("p-5", true, 5, lby, 1, dza, 1); /* withheld from DZA: never pending there */
	CHECK(t, append_one(j, &e) == 5);

	n = journal_pending(j, "DZA", 0, p, COUNT(p), NULL, NULL, &err);
	CHECK(t, n == 4);
	if (n == 4) {
		CHECK(t, p[0].seq == 2 && p[0].emergency && strcmp(p[0].rule, "rule-dza") == 0);
		CHECK(t, p[1].seq == 4 && p[1].emergency);
		CHECK(t, p[2].seq == 1 && !p[2].emergency);
		CHECK(t, p[3].seq == 3 && !p[3].emergency);
	}
	n = journal_pending(j, "DZA", 0, p, 2, NULL, NULL, &err);
	CHECK(t, n == 2 && p[0].seq == 2 && p[1].seq == 4);
	n = journal_pending(j, "DZA", 0, p, COUNT(p), skip_in_set, &skip, &err);
	CHECK(t, n == 2 && p[0].seq == 2 && p[1].seq == 3);
	skip.asked = 0;
	n = journal_pending(j, "DZA", 0, p, 1, skip_in_set, &skip, &err);
	CHECK(t, n == 1 && p[0].seq == 2 && skip.asked == 1); /* stops at max: no more rows read */
	n = journal_pending(j, "LBY", 0, p, COUNT(p), NULL, NULL, &err);
	CHECK(t, n == 1 && p[0].seq == 5 && p[0].emergency && strcmp(p[0].rule, "rule-lby") == 0);
	CHECK(t, journal_pending(j, "MLI", 0, p, COUNT(p), NULL, NULL, &err) == 0);
	CHECK(t, journal_pending(j, "DZA", 0, p, 0, NULL, NULL, &err) == 0);
	/* after_seq bounds the ordinary deliveries only: emergencies at or below it still come, first. */
	n = journal_pending(j, "DZA", 1, p, COUNT(p), NULL, NULL, &err);
	CHECK(t, n == 3 && p[0].seq == 2 && p[1].seq == 4 && p[2].seq == 3 && !p[2].emergency);
	n = journal_pending(j, "DZA", 3, p, COUNT(p), NULL, NULL, &err);
	CHECK(t, n == 2 && p[0].seq == 2 && p[1].seq == 4);
	n = journal_pending(j, "DZA", 5, p, COUNT(p), skip_in_set, &skip, &err);
	CHECK(t, n == 1 && p[0].seq == 2); /* 4 is in flight (skip set) */
	n = journal_pending(j, "DZA", UINT64_MAX, p, COUNT(p), NULL, NULL, &err);
	CHECK(t, n == 2);

	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_delivered(j, "DZA", 2, 100, &changed, &err), 0);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	n = journal_pending(j, "DZA", 0, p, COUNT(p), NULL, NULL, &err);
	CHECK(t, n == 3 && p[0].seq == 4 && p[1].seq == 1 && p[2].seq == 3);
	journal_close(j);
}

static void
test_mark_transitions(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_recipient sdn[] = { { "SDN", "members" } };
	struct journal_pending p[10];
	struct journal_entry e = entry("m-1", false, 1000, three, 3, one_withheld, 1);
	struct track_log log;
	const struct journal_track_row *r;
	bool changed = false;
	int n;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	CHECK(t, append_one(j, &e) == 1);
	e = entry("m-2", false, 1001, sdn, 1, NULL, 0);
	CHECK(t, append_one(j, &e) == 2);
	e = entry("m-3", false, 1002, sdn, 1, NULL, 0);
	CHECK(t, append_one(j, &e) == 3);
	e = entry("m-4", false, 1003, sdn, 1, NULL, 0);
	CHECK(t, append_one(j, &e) == 4);

	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_delivered(j, "DZA", 1, 2000, &changed, &err), 0);
	CHECK(t, changed);
	CHECK_CODE(t, journal_mark_delivered(j, "DZA", 1, 2001, &changed, &err), 0);
	CHECK(t, !changed);
	CHECK_CODE(t, journal_mark_acknowledged(j, "DZA", 1, "duty.officer@dza", "seen", 3000, &changed, &err), 0);
	CHECK(t, changed);
	CHECK_CODE(t, journal_mark_acknowledged(j, "DZA", 1, "other.officer", NULL, 3001, &changed, &err), 0);
	CHECK(t, !changed);
	CHECK_CODE(t, journal_mark_delivered(j, "DZA", 1, 3002, &changed, &err), 0); /* never backwards */
	CHECK(t, !changed);
	/* An acknowledgement implies delivery: QUEUED goes straight to ACKNOWLEDGED. */
	CHECK_CODE(t, journal_mark_acknowledged(j, "LBY", 1, "lby.officer", NULL, 4000, &changed, &err), 0);
	CHECK(t, changed);
	/* Withheld rows never change, and nodes the alert was not routed to are not found. */
	CHECK_CODE(t, journal_mark_delivered(j, "TCD", 1, 5000, &changed, &err), XBA_ENOTFOUND);
	CHECK(t, !changed);
	CHECK_CONTAINS(t, err.msg, "withheld from TCD");
	CHECK_CODE(t, journal_mark_acknowledged(j, "TCD", 1, "x", NULL, 5000, &changed, &err), XBA_ENOTFOUND);
	CHECK_CODE(t, journal_mark_delivered(j, "MLI", 1, 5000, &changed, &err), XBA_ENOTFOUND);
	CHECK_CONTAINS(t, err.msg, "not routed to MLI");
	CHECK_CODE(t, journal_mark_delivered(j, "DZA", 99, 5000, &changed, &err), XBA_ENOTFOUND);
	/* Through: every QUEUED of SDN up to 3; the acknowledged seq 2 stays acknowledged. */
	CHECK_CODE(t, journal_mark_acknowledged(j, "SDN", 2, "sdn.officer", NULL, 5500, &changed, &err), 0);
	CHECK_CODE(t, journal_mark_delivered_through(j, "SDN", 3, 6000, &err), 0);
	CHECK_CODE(t, journal_commit(j, &err), 0); /* the ENOTFOUNDs did not fail the transaction */

	n = journal_pending(j, "SDN", 0, p, COUNT(p), NULL, NULL, &err);
	CHECK(t, n == 1 && p[0].seq == 4);
	CHECK(t, journal_pending(j, "LBY", 0, p, COUNT(p), NULL, NULL, &err) == 0);
	CHECK_CODE(t, track(j, 1, &log), 0);
	CHECK(t, (r = track_row(&log, "DZA")) != NULL && r->state == DELIVERY_ACKNOWLEDGED && r->time_ms == 3000 &&
	    strcmp(r->officer, "duty.officer@dza") == 0);
	CHECK(t, (r = track_row(&log, "LBY")) != NULL && r->state == DELIVERY_ACKNOWLEDGED && r->time_ms == 4000);
	CHECK(t, (r = track_row(&log, "SDN")) != NULL && r->state == DELIVERY_DELIVERED && r->time_ms == 6000);
	CHECK(t, (r = track_row(&log, "TCD")) != NULL && r->state == DELIVERY_WITHHELD && r->time_ms == 0);
	CHECK_CODE(t, track(j, 2, &log), 0);
	CHECK(t, log.n == 1 && log.rows[0].state == DELIVERY_ACKNOWLEDGED && log.rows[0].time_ms == 5500);
	CHECK_CODE(t, track(j, 3, &log), 0);
	CHECK(t, log.n == 1 && log.rows[0].state == DELIVERY_DELIVERED);
	CHECK(t, verifies(j, 4)); /* state changes are not history: the chain still holds */
	journal_close(j);
}

/*
 * A delivery the node's agent refused (quarantine): REFUSED with its code and time, not pending, never taken back
 * to DELIVERED by a late ack or a delivery mark; released, it is DELIVERED and the brief names the alert for the
 * receipt; an officer's ACK of a refused one records ACKNOWLEDGED.  None of it touches the hash chain.
 */
static void
test_refused_released(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_recipient sdn[] = { { "SDN", "members" } };
	struct journal_entry e = entry("r-1", true, 1000, three, 3, NULL, 0);
	struct journal_alert_brief brief;
	struct journal_pending p[10];
	struct track_log log;
	const struct journal_track_row *r;
	uint64_t run[1] = { 2 };
	bool changed = false, marked = false;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	CHECK(t, append_one(j, &e) == 1);
	e = entry("r-2", false, 1001, sdn, 1, NULL, 0);
	CHECK(t, append_one(j, &e) == 2);

	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_refused(j, "DZA", 1, "UNKNOWN_KEY", 2000, &changed, &err), 0);
	CHECK(t, changed);
	CHECK_CODE(t, journal_mark_refused(j, "DZA", 1, "BAD_SIGNATURE", 2001, &changed, &err), 0);
	CHECK(t, !changed);
	CHECK_CODE(t, journal_mark_delivered(j, "DZA", 1, 2002, &changed, &err), 0); /* a late ack: still refused */
	CHECK(t, !changed);
	CHECK_CODE(t, journal_mark_released(j, "LBY", 1, 2003, &changed, &brief, &err), 0); /* LBY never refused it */
	CHECK(t, !changed);
	CHECK_CODE(t, journal_mark_refused(j, "MLI", 1, "UNKNOWN_KEY", 2004, &changed, &err), XBA_ENOTFOUND);
	/* An ordinary delivery a mark has just covered is refused all the same. */
	CHECK_CODE(t, journal_mark_ordinary_run(j, "SDN", run, 1, 2005, &marked, &err), 0);
	CHECK(t, marked);
	CHECK_CODE(t, journal_mark_refused(j, "SDN", 2, "KEY_REVOKED", 2006, &changed, &err), 0);
	CHECK(t, changed);
	CHECK_CODE(t, journal_commit(j, &err), 0);

	CHECK(t, journal_pending(j, "DZA", 0, p, COUNT(p), NULL, NULL, &err) == 0);
	CHECK_CODE(t, track(j, 1, &log), 0);
	CHECK(t, (r = track_row(&log, "DZA")) != NULL && r->state == DELIVERY_REFUSED && r->time_ms == 2000 &&
	    strcmp(r->reason, "UNKNOWN_KEY") == 0);
	CHECK(t, (r = track_row(&log, "LBY")) != NULL && r->state == DELIVERY_QUEUED && r->reason[0] == '\0');
	CHECK_CODE(t, track(j, 2, &log), 0);
	CHECK(t, log.n == 1 && log.rows[0].state == DELIVERY_REFUSED && strcmp(log.rows[0].reason, "KEY_REVOKED") == 0);

	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_released(j, "DZA", 1, 3000, &changed, &brief, &err), 0);
	CHECK(t, changed && strcmp(brief.alert_id, "r-1") == 0 && strcmp(brief.origin, "NER") == 0 && brief.emergency);
	CHECK_CODE(t, journal_mark_released(j, "DZA", 1, 3001, &changed, &brief, &err), 0);
	CHECK(t, !changed);
	CHECK_CODE(t, journal_mark_acknowledged(j, "SDN", 2, "sdn.officer", NULL, 3002, &changed, &err), 0);
	CHECK(t, changed);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	CHECK_CODE(t, track(j, 1, &log), 0);
	CHECK(t, (r = track_row(&log, "DZA")) != NULL && r->state == DELIVERY_DELIVERED && r->time_ms == 3000 &&
	    r->reason[0] == '\0');
	CHECK_CODE(t, track(j, 2, &log), 0);
	CHECK(t, log.n == 1 && log.rows[0].state == DELIVERY_ACKNOWLEDGED && log.rows[0].time_ms == 3002);
	CHECK(t, verifies(j, 2));
	journal_close(j);
}

static void
test_queue_depth(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_recipient dza[] = { { "DZA", "r" } }, both[] = { { "DZA", "r" }, { "LBY", "r" } };
	struct journal_entry e;
	uint64_t depth = 99, emergencies = 99;
	bool changed, capped = false, emergencies_capped = false;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	CHECK_CODE(t, journal_queue_depth(j, "DZA", 0, &depth, NULL, NULL, NULL, &err), 0);
	CHECK(t, depth == 0);
	e = entry("q-1", false, 1, dza, 1, NULL, 0);
	append_one(j, &e);
	e = entry("q-2", false, 2, both, 2, NULL, 0);
	append_one(j, &e);
	e = entry("q-3", true, 3, both, 2, NULL, 0);
	append_one(j, &e);
	CHECK_CODE(t, journal_queue_depth(j, "DZA", 0, &depth, &emergencies, NULL, NULL, &err), 0);
	CHECK(t, depth == 3 && emergencies == 1); /* q-3 is the emergency */
	/* Counted up to a cap per kind: 1 ordinary of 2 and the emergency, and more said; a cap of 2 holds all. */
	CHECK_CODE(t, journal_queue_depth(j, "DZA", 1, &depth, &emergencies, &capped, &emergencies_capped, &err), 0);
	CHECK(t, depth == 2 && emergencies == 1 && capped && !emergencies_capped);
	CHECK_CODE(t, journal_queue_depth(j, "DZA", 2, &depth, &emergencies, &capped, &emergencies_capped, &err), 0);
	CHECK(t, depth == 3 && emergencies == 1 && !capped && !emergencies_capped);
	CHECK_CODE(t, journal_queue_depth(j, "LBY", 0, &depth, NULL, NULL, NULL, &err), 0);
	CHECK(t, depth == 2);
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_delivered(j, "DZA", 2, 10, &changed, &err), 0);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	CHECK_CODE(t, journal_queue_depth(j, "DZA", 0, &depth, &emergencies, NULL, NULL, &err), 0);
	CHECK(t, depth == 2 && emergencies == 1);
	CHECK_CODE(t, journal_queue_depth(j, "NOBODY", 0, &depth, &emergencies, NULL, NULL, &err), 0);
	CHECK(t, depth == 0 && emergencies == 0);
	journal_close(j);
}

/* The seqs journal_pending returns for node (after_seq 0, no skip), as "e3 4 5" (e: emergency). */
static void
pending_text(struct journal *j, const char *node, char *out, size_t size)
{
	struct journal_pending p[32];
	struct xba_error err;
	int n = journal_pending(j, node, 0, p, COUNT(p), NULL, NULL, &err);
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < n && used < size; i++)
		used += (size_t)snprintf(out + used, size - used, "%s%s%llu", i ? " " : "", p[i].emergency ? "e" : "",
		    (unsigned long long)p[i].seq);
	if (n < 0)
		snprintf(out, size, "error: %.150s", err.msg);
}

static uint64_t
depth_of(struct journal *j, const char *node)
{
	struct xba_error err;
	uint64_t depth = 999;

	return journal_queue_depth(j, node, 0, &depth, NULL, NULL, NULL, &err) == 0 ? depth : 999;
}

/* One journal_mark_ordinary_run in its own transaction; returns *marked, or false when it failed. */
static bool
run_marks(struct journal *j, const char *node, const uint64_t *seqs, size_t n, int64_t time_ms)
{
	struct xba_error err;
	bool marked = false;

	if (journal_begin(j, &err) != 0)
		return false;
	if (journal_mark_ordinary_run(j, node, seqs, n, time_ms, &marked, &err) != 0) {
		fprintf(stderr, "mark run: %s\n", err.msg);
		journal_rollback(j);
		return false;
	}
	return journal_commit(j, &err) == 0 && marked;
}

/*
 * Delivery marks: an in-order acknowledgement of ordinary deliveries becomes one mark, and every reader of the
 * delivery state (pending, depth, track, acknowledgement, prune, a reopened journal) reads the rows under it as
 * DELIVERED; what is not an exact in-order run changes nothing; a rollback forgets the mark; a schema-1 journal is
 * upgraded in place.
 */
static void
test_delivery_marks(struct check_state *t)
{
	char path[300], text[200];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_recipient both[] = { { "DZA", "r" }, { "LBY", "r" } };
	struct journal_entry e;
	struct track_log log;
	const struct journal_track_row *row;
	uint64_t deleted = 0;
	bool changed = false, marked = true;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	CHECK(t, append_numbered(j, "dm", 6, 3, both, 2, NULL, 0)); /* seq 3 is an emergency */
	pending_text(j, "DZA", text, sizeof(text));
	CHECK_STR(t, text, "e3 1 2 4 5 6");

	/* 1, 2 and 4 in order (3 is the emergency, not an ordinary one): one mark through 4. */
	CHECK(t, run_marks(j, "DZA", (const uint64_t[]){ 1, 2, 4 }, 3, 5000));
	pending_text(j, "DZA", text, sizeof(text));
	CHECK_STR(t, text, "e3 5 6");
	CHECK(t, depth_of(j, "DZA") == 3);
	CHECK(t, depth_of(j, "LBY") == 6);
	CHECK(t, track(j, 2, &log) == 0);
	row = track_row(&log, "DZA");
	CHECK(t, row != NULL && row->state == DELIVERY_DELIVERED && row->time_ms == 5000);
	row = track_row(&log, "LBY");
	CHECK(t, row != NULL && row->state == DELIVERY_QUEUED && row->time_ms == 0);
	CHECK(t, track(j, 3, &log) == 0);
	row = track_row(&log, "DZA");
	CHECK(t, row != NULL && row->state == DELIVERY_QUEUED); /* the emergency under the mark is not covered */

	/* Not a run: a gap (5 not named), a seq under the mark, one never routed. */
	CHECK(t, !run_marks(j, "DZA", (const uint64_t[]){ 6 }, 1, 6000));
	CHECK(t, !run_marks(j, "DZA", (const uint64_t[]){ 4, 5 }, 2, 6000));
	CHECK(t, !run_marks(j, "DZA", (const uint64_t[]){ 5, 6, 7 }, 3, 6000));
	CHECK(t, !run_marks(j, "DZA", (const uint64_t[]){ 3, 5 }, 2, 6000));
	pending_text(j, "DZA", text, sizeof(text));
	CHECK_STR(t, text, "e3 5 6");

	/* A rollback forgets a mark it wrote. */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_ordinary_run(j, "LBY", (const uint64_t[]){ 1, 2 }, 2, 5000, &marked, &err), 0);
	CHECK(t, marked);
	pending_text(j, "LBY", text, sizeof(text));
	CHECK_STR(t, text, "e3 4 5 6");
	journal_rollback(j);
	pending_text(j, "LBY", text, sizeof(text));
	CHECK_STR(t, text, "e3 1 2 4 5 6");

	/* An officer's acknowledgement of a delivery under the mark. */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_acknowledged(j, "DZA", 2, "duty officer", NULL, 5500, &changed, &err), 0);
	CHECK(t, changed);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	CHECK(t, track(j, 2, &log) == 0);
	row = track_row(&log, "DZA");
	CHECK(t, row != NULL && row->state == DELIVERY_ACKNOWLEDGED && row->time_ms == 5500);
	CHECK(t, depth_of(j, "DZA") == 3);

	/* Resume after a reconnect: through past the head is clamped to it, so later alerts stay queued. */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_delivered_through(j, "DZA", 100, 7000, &err), 0);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	CHECK(t, depth_of(j, "DZA") == 0);
	e = entry("dm-7", false, 7000, both, 2, NULL, 0);
	CHECK(t, append_one(j, &e) == 7);
	pending_text(j, "DZA", text, sizeof(text));
	CHECK_STR(t, text, "7");
	CHECK(t, track(j, 3, &log) == 0);
	row = track_row(&log, "DZA");
	CHECK(t, row != NULL && row->state == DELIVERY_DELIVERED && row->time_ms == 7000);

	/* Marks are durable: a reopened journal reads the same queue. */
	journal_close(j);
	j = journal_open(path, &err);
	CHECK(t, j != NULL);
	if (j == NULL)
		return;
	pending_text(j, "DZA", text, sizeof(text));
	CHECK_STR(t, text, "7");
	CHECK(t, depth_of(j, "LBY") == 7);

	/* Prune: LBY's queue holds everything back; once LBY has 1..6, they go (7 is too new), and with them every mark
	 * at or below the cut, each node's highest included: the queues are then 7 alone. */
	CHECK_CODE(t, journal_prune(j, 6500, &deleted, &err), 0);
	CHECK(t, deleted == 0);
	CHECK(t, run_marks(j, "LBY", (const uint64_t[]){ 1, 2, 4, 5, 6 }, 5, 8000));
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_delivered(j, "LBY", 3, 8000, &changed, &err), 0);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	CHECK(t, depth_of(j, "LBY") == 1);
	CHECK_CODE(t, journal_prune(j, 6500, &deleted, &err), 0);
	CHECK(t, deleted == 6);
	CHECK(t, verifies(j, 1));
	pending_text(j, "LBY", text, sizeof(text));
	CHECK_STR(t, text, "7");
	pending_text(j, "DZA", text, sizeof(text));
	CHECK_STR(t, text, "7");
	journal_close(j);
	CHECK(t, raw_int(path, "SELECT count(*) FROM delivery_marks") == 0); /* DZA's 4 and 6, LBY's 6: all at or below */

	/* A schema-1 journal (no delivery_marks) opens as schema 2, its rows meaning what they meant. */
	CHECK(t, raw_exec(path, "DROP TABLE delivery_marks; PRAGMA user_version = 1") == 0);
	j = journal_open(path, &err);
	CHECK(t, j != NULL);
	if (j == NULL)
		return;
	pending_text(j, "DZA", text, sizeof(text));
	CHECK_STR(t, text, "7");
	CHECK(t, run_marks(j, "DZA", (const uint64_t[]){ 7 }, 1, 9000));
	pending_text(j, "DZA", text, sizeof(text));
	CHECK_STR(t, text, "");
	journal_close(j);
	CHECK(t, raw_int(path, "PRAGMA user_version") == 2);
}

static void
test_envelope_exact(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	size_t big_len = 70 * 1024 + 3, len = 0;
	uint8_t *big = malloc(big_len), *out = NULL;
	struct journal_entry e;

	if (j == NULL || big == NULL) {
		CHECK(t, j != NULL && big != NULL);
		journal_close(j);
		free(big);
		return;
	}
	for (size_t i = 0; i < big_len; i++)
		big[i] = (uint8_t)(i * 7 + (i >> 8));
	e = entry("env-1", false, 1, three, 3, NULL, 0);
	e.envelope = big;
	e.envelope_len = big_len;
	CHECK(t, append_one(j, &e) == 1);
	e = entry("env-2", false, 2, three, 3, NULL, 0);
	e.envelope = NULL;
	e.envelope_len = 0;
	CHECK(t, append_one(j, &e) == 2);

	CHECK_CODE(t, journal_envelope(j, 1, &out, &len, &err), 0);
	CHECK(t, out != NULL && len == big_len && memcmp(out, big, big_len) == 0);
	free(out);
	CHECK_CODE(t, journal_envelope(j, 2, &out, &len, &err), 0);
	CHECK(t, out != NULL && len == 0);
	free(out);
	CHECK_CODE(t, journal_envelope(j, 3, &out, &len, &err), XBA_ENOTFOUND);
	CHECK(t, out == NULL);
	CHECK_CONTAINS(t, err.msg, "seq 3");
	CHECK(t, verifies(j, 2));
	free(big);
	journal_close(j);
}

/* ---- envelope cache ---- */

/* An envelope whose bytes name its seq and a variant, so that a stale or misplaced cache slot cannot pass. */
static void
fill_envelope(uint8_t *p, size_t len, uint64_t seq, unsigned variant)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seq * 131 + variant * 17 + i * 7 + (i >> 8));
}

/* journal_envelope_ref(seq) gives exactly want[0 .. want_len). */
static bool
ref_is(struct journal *j, uint64_t seq, const uint8_t *want, size_t want_len)
{
	struct xba_error err;
	const uint8_t *bytes = NULL;
	size_t len = 0;

	if (journal_envelope_ref(j, seq, &bytes, &len, &err) != 0) {
		fprintf(stderr, "envelope_ref %llu: %s\n", (unsigned long long)seq, err.msg);
		return false;
	}
	return bytes != NULL && len == want_len && (len == 0 || memcmp(bytes, want, len) == 0);
}

static void
test_envelope_cache_hit(struct check_state *t)
{
	char path[300], id[32];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_cache_stats stats;
	uint8_t env[3][1100];

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	/* Three alerts in one transaction, as a group commit journals them; readable from memory before and after
	 * the commit (the delivery path reads after it), and as often as there are recipients. */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	for (uint64_t seq = 1; seq <= 3; seq++) {
		struct journal_entry e;
		uint64_t got = 0;

		snprintf(id, sizeof(id), "hit-%llu", (unsigned long long)seq);
		e = entry(id, false, (int64_t)seq, three, 3, NULL, 0);
		fill_envelope(env[seq - 1], sizeof(env[0]), seq, 0);
		e.envelope = env[seq - 1];
		e.envelope_len = sizeof(env[0]);
		CHECK_CODE(t, journal_append(j, &e, &got, &err), 0);
		CHECK(t, got == seq);
	}
	CHECK(t, ref_is(j, 2, env[1], sizeof(env[1])));
	CHECK_CODE(t, journal_commit(j, &err), 0);
	for (int recipient = 0; recipient < 6; recipient++) {
		for (uint64_t seq = 1; seq <= 3; seq++)
			CHECK(t, ref_is(j, seq, env[seq - 1], sizeof(env[0])));
	}
	journal_envelope_cache_stats(j, &stats);
	CHECK(t, stats.hits == 19 && stats.misses == 0);
	CHECK(t, stats.entries == 3 && stats.bytes == 3 * sizeof(env[0]));
	journal_close(j);
}

static void
test_envelope_cache_miss_reads_sqlite(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_cache_stats stats;
	struct journal_entry e;
	const uint8_t *bytes = NULL;
	uint8_t env[2][700];
	size_t len = 0;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	for (uint64_t seq = 1; seq <= 2; seq++) {
		char id[32];

		snprintf(id, sizeof(id), "miss-%llu", (unsigned long long)seq);
		e = entry(id, false, (int64_t)seq, three, 3, NULL, 0);
		fill_envelope(env[seq - 1], sizeof(env[0]), seq, 1);
		e.envelope = env[seq - 1];
		e.envelope_len = sizeof(env[0]);
		CHECK(t, append_one(j, &e) == seq);
	}
	journal_close(j);

	/* After a restart nothing is cached: the same bytes come from SQLite, borrowed from one reused buffer. */
	j = journal_open(path, &err);
	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	CHECK(t, ref_is(j, 1, env[0], sizeof(env[0])));
	CHECK(t, ref_is(j, 2, env[1], sizeof(env[1])));
	CHECK(t, ref_is(j, 1, env[0], sizeof(env[0])));
	CHECK_CODE(t, journal_envelope_ref(j, 3, &bytes, &len, &err), XBA_ENOTFOUND);
	CHECK(t, bytes == NULL && len == 0);
	CHECK_CONTAINS(t, err.msg, "seq 3");
	journal_envelope_cache_stats(j, &stats);
	CHECK(t, stats.hits == 0 && stats.misses == 4 && stats.entries == 0);

	/* New appends are cached again; older seqs still read SQLite. */
	e = entry("miss-3", false, 3, three, 3, NULL, 0);
	CHECK(t, append_one(j, &e) == 3);
	CHECK(t, ref_is(j, 3, small_envelope, sizeof(small_envelope)));
	CHECK(t, ref_is(j, 2, env[1], sizeof(env[1])));
	journal_envelope_cache_stats(j, &stats);
	CHECK(t, stats.hits == 1 && stats.misses == 5 && stats.entries == 1);

	/* Disabled, every read is SQLite's and still right. */
	journal_set_envelope_cache(j, 0, 0);
	e = entry("miss-4", false, 4, three, 3, NULL, 0);
	CHECK(t, append_one(j, &e) == 4);
	CHECK(t, ref_is(j, 4, small_envelope, sizeof(small_envelope)));
	journal_envelope_cache_stats(j, &stats);
	CHECK(t, stats.hits == 1 && stats.misses == 6 && stats.entries == 0);
	journal_close(j);
}

static void
test_envelope_cache_rollback(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_entry a = entry("rb-1", false, 1, three, 3, NULL, 0);
	struct journal_entry b = entry("rb-2", false, 2, three, 3, NULL, 0);
	struct journal_entry c = entry("rb-3", false, 3, three, 3, NULL, 0);
	const uint8_t *bytes = NULL;
	uint8_t env_a[300], env_b[900], env_c[500], env_d[40];
	size_t len = 0;
	uint64_t seq = 0;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	fill_envelope(env_a, sizeof(env_a), 1, 2);
	fill_envelope(env_b, sizeof(env_b), 2, 2);
	fill_envelope(env_c, sizeof(env_c), 3, 2);
	fill_envelope(env_d, sizeof(env_d), 2, 3);
	a.envelope = env_a;
	a.envelope_len = sizeof(env_a);
	b.envelope = env_b;
	b.envelope_len = sizeof(env_b);
	c.envelope = env_c;
	c.envelope_len = sizeof(env_c);
	CHECK(t, append_one(j, &a) == 1);
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_append(j, &b, &seq, &err), 0);
	CHECK_CODE(t, journal_append(j, &c, &seq, &err), 0);
	CHECK(t, ref_is(j, 2, env_b, sizeof(env_b)) && ref_is(j, 3, env_c, sizeof(env_c)));
	journal_rollback(j);

	/* The undone seqs are gone from memory as from the file... */
	CHECK_CODE(t, journal_envelope_ref(j, 2, &bytes, &len, &err), XBA_ENOTFOUND);
	CHECK_CODE(t, journal_envelope_ref(j, 3, &bytes, &len, &err), XBA_ENOTFOUND);
	CHECK(t, ref_is(j, 1, env_a, sizeof(env_a)));
	/* ...and a reused seq returns the new alert's envelope, never the rolled-back one. */
	c.envelope = env_d;
	c.envelope_len = sizeof(env_d);
	CHECK(t, append_one(j, &c) == 2);
	CHECK(t, ref_is(j, 2, env_d, sizeof(env_d)));
	CHECK_CODE(t, journal_envelope_ref(j, 3, &bytes, &len, &err), XBA_ENOTFOUND);
	b.alert_id = "rb-4";
	CHECK(t, append_one(j, &b) == 3);
	CHECK(t, ref_is(j, 3, env_b, sizeof(env_b)));
	CHECK(t, ref_is(j, 1, env_a, sizeof(env_a)));

	/* A batch rolled back whole, with nothing committed before it in this process. */
	journal_close(j);
	j = journal_open(path, &err);
	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	a.alert_id = "rb-5";
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_append(j, &a, &seq, &err), 0);
	CHECK(t, seq == 4 && ref_is(j, 4, env_a, sizeof(env_a)));
	journal_rollback(j);
	CHECK_CODE(t, journal_envelope_ref(j, 4, &bytes, &len, &err), XBA_ENOTFOUND);
	c.alert_id = "rb-6";
	CHECK(t, append_one(j, &c) == 4);
	CHECK(t, ref_is(j, 4, env_d, sizeof(env_d)));
	CHECK(t, verifies(j, 4));
	journal_close(j);
}

/* Every seq in 1..n reads back its own envelope (cached or not), and the cache stays within its bounds. */
static void
check_all(struct check_state *t, struct journal *j, uint8_t **envs, const size_t *lens, uint64_t n, size_t max_bytes,
    size_t max_entries)
{
	struct journal_cache_stats stats;

	for (uint64_t seq = 1; seq <= n; seq++)
		CHECK(t, ref_is(j, seq, envs[seq - 1], lens[seq - 1]));
	journal_envelope_cache_stats(j, &stats);
	CHECK(t, stats.bytes <= max_bytes && stats.entries <= max_entries);
}

static void
test_envelope_cache_eviction(struct check_state *t)
{
	enum { N = 120 };
	const size_t max_bytes = 4096, max_entries = 8;
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_cache_stats before, after;
	uint8_t *envs[N] = { 0 };
	size_t lens[N];
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	journal_set_envelope_cache(j, max_bytes, max_entries);
	/* Sizes from 1 byte to the whole arena and beyond, so placements wrap at every offset, evict by bytes and by
	 * count, and an envelope too big to cache sits between cached ones. */
	for (uint64_t seq = 1; seq <= N; seq++) {
		struct journal_entry e;
		char id[32];

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		lens[seq - 1] = seq % 29 == 0 ? max_bytes + 1 : seq % 31 == 0 ? max_bytes : 1 + (size_t)(rng % 1500);
		if ((envs[seq - 1] = malloc(lens[seq - 1])) == NULL) {
			CHECK(t, !"out of memory");
			goto out;
		}
		fill_envelope(envs[seq - 1], lens[seq - 1], seq, 4);
		snprintf(id, sizeof(id), "evict-%llu", (unsigned long long)seq);
		e = entry(id, false, (int64_t)seq, three, 3, NULL, 0);
		e.envelope = envs[seq - 1];
		e.envelope_len = lens[seq - 1];
		CHECK(t, append_one(j, &e) == seq);
		check_all(t, j, envs, lens, seq, max_bytes, max_entries);
	}
	/* The newest is served from memory, the oldest (evicted long ago) from SQLite. */
	journal_envelope_cache_stats(j, &before);
	CHECK(t, ref_is(j, N, envs[N - 1], lens[N - 1]));
	journal_envelope_cache_stats(j, &after);
	CHECK(t, after.hits == before.hits + 1);
	CHECK(t, ref_is(j, 1, envs[0], lens[0]));
	journal_envelope_cache_stats(j, &before);
	CHECK(t, before.misses == after.misses + 1);
	CHECK(t, before.entries > 0);

	/* Bounded by count: four slots keep the last four seqs. */
	journal_set_envelope_cache(j, 1024 * 1024, 4);
	for (uint64_t seq = 1; seq <= N; seq++) {
		struct journal_entry e;
		char id[32];

		snprintf(id, sizeof(id), "count-%llu", (unsigned long long)seq);
		e = entry(id, false, (int64_t)seq, three, 3, NULL, 0);
		CHECK(t, append_one(j, &e) == N + seq);
	}
	journal_envelope_cache_stats(j, &before);
	CHECK(t, before.entries == 4 && before.bytes == 4 * sizeof(small_envelope));
	for (uint64_t seq = 2 * N - 3; seq <= 2 * N; seq++)
		CHECK(t, ref_is(j, seq, small_envelope, sizeof(small_envelope)));
	CHECK(t, ref_is(j, 2 * N - 4, small_envelope, sizeof(small_envelope)));
	journal_envelope_cache_stats(j, &after);
	CHECK(t, after.hits == before.hits + 4 && after.misses == before.misses + 1);
	CHECK(t, verifies(j, 2 * N));
out:
	for (size_t i = 0; i < N; i++)
		free(envs[i]);
	journal_close(j);
}

static void
test_track_rows(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_recipient r[] = { { "SDN", "members" }, { "DZA", "neighbours" }, { "LBY", "neighbours" } };
	struct journal_recipient w[] = { { "TCD", "deny-tcd" }, { "IOM-ROMENA", "tlp-amber-strict" } };
	const char *order[] = { "DZA", "IOM-ROMENA", "LBY", "SDN", "TCD" };
	struct journal_entry e = entry("t-1", false, 1, r, 3, w, 2);
	struct track_log log;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	CHECK(t, append_one(j, &e) == 1);
	e = entry("t-2", false, 2, NULL, 0, NULL, 0); /* routed to nobody */
	CHECK(t, append_one(j, &e) == 2);
	CHECK_CODE(t, track(j, 1, &log), 0);
	CHECK(t, log.n == 5);
	for (size_t i = 0; i < log.n && i < COUNT(order); i++)
		CHECK(t, strcmp(log.rows[i].node_id, order[i]) == 0);
	CHECK(t, log.rows[1].state == DELIVERY_WITHHELD && strcmp(log.rows[1].rule, "tlp-amber-strict") == 0);
	CHECK(t, log.rows[3].state == DELIVERY_QUEUED && strcmp(log.rows[3].rule, "members") == 0);
	CHECK(t, log.rows[0].time_ms == 0 && log.rows[0].officer[0] == '\0');
	memset(&log, 0, sizeof(log));
	log.stop_after = 2;
	CHECK_CODE(t, journal_track(j, 1, track_collect, &log, &err), 7);
	CHECK(t, log.n == 2);
	/* ... also right after a QUEUED row, whose delivery mark the walk looks up */
	memset(&log, 0, sizeof(log));
	log.stop_after = 4;
	CHECK_CODE(t, journal_track(j, 1, track_collect, &log, &err), 7);
	CHECK(t, log.n == 4 && log.rows[3].state == DELIVERY_QUEUED);
	CHECK_CODE(t, track(j, 2, &log), 0);
	CHECK(t, log.n == 0);
	CHECK_CODE(t, track(j, 3, &log), XBA_ENOTFOUND);
	CHECK(t, verifies(j, 2));
	journal_close(j);
}

static void
test_rollback_restores_chain(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_entry a = entry("r-1", false, 1, three, 3, NULL, 0);
	struct journal_entry b = entry("r-2", false, 2, three, 3, one_withheld, 1);
	struct journal_entry c = entry("r-3", true, 3, three, 1, NULL, 0);
	struct journal_alert_info info;
	uint64_t seq = 0;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	CHECK(t, append_one(j, &a) == 1);
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_append(j, &b, &seq, &err), 0);
	CHECK_CODE(t, journal_append(j, &c, &seq, &err), 0);
	CHECK(t, seq == 3 && journal_head(j) == 3);
	journal_rollback(j);
	CHECK(t, journal_head(j) == 1);
	CHECK_CODE(t, journal_find(j, "r-2", &info, &err), XBA_ENOTFOUND);
	journal_rollback(j); /* harmless outside a transaction */
	/* The seqs and the chain continue from the last commit, as if the rolled-back batch never happened. */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_append(j, &c, &seq, &err), 0);
	CHECK(t, seq == 2);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	CHECK(t, append_one(j, &b) == 3);
	CHECK(t, verifies(j, 3));
	journal_close(j);
}

static void
test_reopen(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_pending p[4];
	struct journal_alert_info info;
	struct track_log log;
	struct journal_entry e;
	uint8_t *env = NULL;
	size_t len = 0;
	bool changed;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	for (int i = 0; i < 5; i++) {
		char id[16];

		snprintf(id, sizeof(id), "o-%d", i);
		e = entry(id, i == 3, 100 + i, three, 3, one_withheld, 1);
		CHECK(t, append_one(j, &e) == (uint64_t)i + 1);
	}
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_acknowledged(j, "DZA", 2, "officer", "noted", 500, &changed, &err), 0);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	journal_close(j);

	j = journal_open(path, &err);
	CHECK(t, j != NULL);
	if (j == NULL)
		return;
	CHECK(t, journal_head(j) == 5);
	CHECK_CODE(t, journal_find(j, "o-3", &info, &err), 0);
	CHECK(t, info.seq == 4 && info.emergency);
	CHECK(t, journal_pending(j, "DZA", 0, p, COUNT(p), NULL, NULL, &err) == 4 && p[0].seq == 4);
	CHECK_CODE(t, track(j, 2, &log), 0);
	CHECK(t, log.n == 4 && track_row(&log, "DZA") != NULL && track_row(&log, "DZA")->state == DELIVERY_ACKNOWLEDGED);
	CHECK_CODE(t, journal_envelope(j, 5, &env, &len, &err), 0);
	CHECK(t, len == sizeof(small_envelope) && env != NULL && memcmp(env, small_envelope, len) == 0);
	free(env);
	CHECK(t, verifies(j, 5));
	/* The chain tip came back from the file: the next entry chains onto it. */
	e = entry("o-5", false, 200, three, 3, NULL, 0);
	CHECK(t, append_one(j, &e) == 6);
	CHECK(t, verifies(j, 6));
	journal_close(j);
}

/* Five committed entries with deliveries in several states, for the tampering tests. */
static struct journal *
audit_fixture(char *path, size_t size)
{
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, size), &err);
	bool changed;

	if (j == NULL)
		return NULL;
	for (int i = 0; i < 5; i++) {
		char id[16];
		struct journal_entry e;

		snprintf(id, sizeof(id), "aud-%d", i);
		e = entry(id, i == 2, 1000 + i, three, 3, one_withheld, 1);
		if (append_one(j, &e) != (uint64_t)i + 1) {
			journal_close(j);
			return NULL;
		}
	}
	if (journal_begin(j, &err) != 0 || journal_mark_delivered(j, "LBY", 2, 2000, &changed, &err) != 0 ||
	    journal_commit(j, &err) != 0) {
		journal_close(j);
		return NULL;
	}
	return j;
}

/* The audit fails at exactly seq `at`, having verified `verified` entries before it. */
static bool
detects(struct check_state *t, struct journal *j, uint64_t at, uint64_t verified)
{
	struct xba_error err;
	uint64_t checked = 99;
	char want[64];
	int rc = journal_audit_verify(j, &checked, &err);

	snprintf(want, sizeof(want), "journal entry seq %llu: hash does not match", (unsigned long long)at);
	CHECK_CODE(t, rc, XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, want);
	CHECK_CONTAINS(t, err.msg, "altered, inserted or deleted entry");
	CHECK(t, checked == verified);
	return rc == XBA_EDECODE && strstr(err.msg, want) != NULL && checked == verified;
}

static void
test_audit_detects_tampering(struct check_state *t)
{
	static const struct {
		const char *name;      /* what the attacker does */
		const char *sql;
		uint64_t at;           /* first seq the audit must name */
		uint64_t verified;     /* entries verified before it */
	} cases[] = {
		{ "envelope edited", "UPDATE alerts SET envelope = x'0a0361626300ff13' WHERE seq = 3", 3, 2 },
		{ "envelope and its digest edited",
		    "UPDATE alerts SET envelope = x'00', envelope_sha256 = "
		    "x'6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d' WHERE seq = 4", 4, 3 },
		{ "rule of a delivery changed", "UPDATE deliveries SET rule = 'members' WHERE seq = 2 AND node = 'LBY'", 2,
		    1 },
		{ "withheld node turned recipient", "UPDATE deliveries SET state = 1 WHERE seq = 1 AND node = 'TCD'", 1, 0 },
		{ "origin changed", "UPDATE alerts SET origin = 'MLI' WHERE seq = 5", 5, 4 },
		{ "alert row deleted", "DELETE FROM alerts WHERE seq = 3", 3, 2 },
		{ "alert and its deliveries deleted", "DELETE FROM alerts WHERE seq = 3; DELETE FROM deliveries WHERE seq = 3",
		    4, 2 },
		{ "first entry deleted", "DELETE FROM deliveries WHERE seq = 1; DELETE FROM alerts WHERE seq = 1", 2, 0 },
		{ "alert row inserted",
		    "INSERT INTO alerts SELECT 6, 'forged', origin, sent_ms, received_ms, msg_type, emergency, envelope,"
		    " envelope_sha256, rules_version, 0, hash, hash FROM alerts WHERE seq = 5", 6, 5 },
		{ "delivery row inserted", "INSERT INTO deliveries (seq, node, rule, state, emergency)"
		    " VALUES (2, 'MLI', 'members', 1, 0)", 2, 1 },
	};

	for (size_t i = 0; i < COUNT(cases); i++) {
		char path[300];
		struct journal *j = audit_fixture(path, sizeof(path));

		CHECK(t, j != NULL);
		if (j == NULL)
			return;
		CHECK(t, verifies(j, 5));
		CHECK(t, raw_exec(path, cases[i].sql) == 0);
		if (!detects(t, j, cases[i].at, cases[i].verified))
			fprintf(stderr, "  case not detected as expected: %s\n", cases[i].name);
		journal_close(j);
	}
	/* Delivery state is not chained (it is state, not history): a state change by hand is not a tamper. */
	{
		char path[300];
		struct journal *j = audit_fixture(path, sizeof(path));

		CHECK(t, j != NULL);
		if (j == NULL)
			return;
		CHECK(t, raw_exec(path, "UPDATE deliveries SET state = 2, delivered_ms = 1 WHERE seq = 2 AND state = 1") == 0);
		CHECK(t, verifies(j, 5));
		journal_close(j);
	}
}

static bool
not_gone(void *ctx, const char *node_id)
{
	(void)ctx;
	return strcmp(node_id, "GONE") != 0;
}

/* A node that never collects its delivery (it left the region) held every later alert for ever; taken out of the
 * region it no longer does, and the cut is made in batches. */
static void
test_prune_held(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_recipient two[] = { { "DZA", "r" }, { "GONE", "r" } };
	struct journal_pruned out;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	CHECK(t, append_numbered(j, "ph", 6, 0, two, 2, NULL, 0));
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_delivered_through(j, "DZA", 6, 7000, &err), 0);
	CHECK_CODE(t, journal_commit(j, &err), 0);

	/* GONE still listed: nothing goes, and the result says who holds it and from where. */
	CHECK_CODE(t, journal_prune_some(j, INT64_MAX, UINT64_MAX, NULL, NULL, &out, &err), 0);
	CHECK(t, out.deleted == 0 && out.held_seq == 1 && strcmp(out.held_by, "GONE") == 0 && !out.more);
	/* GONE taken out of the region: its queued deliveries hold nothing; at most 4 in one batch. */
	CHECK_CODE(t, journal_prune_some(j, INT64_MAX, 4, not_gone, NULL, &out, &err), 0);
	CHECK(t, out.deleted == 4 && out.more && out.held_seq == 0);
	CHECK(t, verifies(j, 2));
	CHECK_CODE(t, journal_prune_some(j, INT64_MAX, 4, not_gone, NULL, &out, &err), 0);
	CHECK(t, out.deleted == 2 && !out.more);
	CHECK(t, verifies(j, 0));
	journal_close(j);
}

/* Updates and cancels record what they replaced or withdrew: a cancel wins over an update, the record goes with a
 * rolled-back transaction and with prune, and a journal of an older broker gains the table at open. */
static void
test_supersessions(struct check_state *t)
{
	char path[300], by[64];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	char *a_only[] = { "ss-a" }, *a_u1[] = { "ss-a", "ss-u1" }, *x_only[] = { "ss-x" };
	struct journal_entry e;
	uint64_t seq, deleted = 0;
	int type = -1;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	e = entry("ss-a", false, 1000, three, 3, NULL, 0);
	CHECK(t, append_one(j, &e) == 1);
	CHECK_CODE(t, journal_superseded(j, "ss-a", &type, by, sizeof(by), &err), XBA_ENOTFOUND);
	e = entry("ss-u1", false, 2000, three, 3, NULL, 0);
	e.msg_type = 2;
	e.supersedes = a_only;
	e.n_supersedes = 1;
	CHECK(t, append_one(j, &e) == 2);
	CHECK_CODE(t, journal_superseded(j, "ss-a", &type, by, sizeof(by), &err), 0);
	CHECK(t, type == 2 && strcmp(by, "ss-u1") == 0);
	/* A rolled-back update leaves no record. */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	e = entry("ss-gone", false, 2500, three, 3, NULL, 0);
	e.msg_type = 2;
	e.supersedes = x_only;
	e.n_supersedes = 1;
	CHECK_CODE(t, journal_append(j, &e, &seq, &err), 0);
	CHECK_CODE(t, journal_superseded(j, "ss-x", &type, by, sizeof(by), &err), 0);
	journal_rollback(j);
	CHECK_CODE(t, journal_superseded(j, "ss-x", &type, by, sizeof(by), &err), XBA_ENOTFOUND);
	/* The cancel names both versions; for ss-a it replaces the update's record, withdrawn being final. */
	e = entry("ss-c", false, 3000, three, 3, NULL, 0);
	e.msg_type = 3;
	e.supersedes = a_u1;
	e.n_supersedes = 2;
	CHECK(t, append_one(j, &e) == 3);
	CHECK_CODE(t, journal_superseded(j, "ss-a", &type, by, sizeof(by), &err), 0);
	CHECK(t, type == 3 && strcmp(by, "ss-c") == 0);
	CHECK_CODE(t, journal_superseded(j, "ss-u1", &type, by, sizeof(by), &err), 0);
	CHECK(t, type == 3 && strcmp(by, "ss-c") == 0);
	/* ... and a later update does not take it back. */
	e = entry("ss-u2", false, 4000, three, 3, NULL, 0);
	e.msg_type = 2;
	e.supersedes = a_only;
	e.n_supersedes = 1;
	CHECK(t, append_one(j, &e) == 4);
	CHECK_CODE(t, journal_superseded(j, "ss-a", &type, by, sizeof(by), &err), 0);
	CHECK(t, type == 3 && strcmp(by, "ss-c") == 0);
	journal_close(j);

	/* A journal of a broker before the table: it is created at open, empty (those updates are not known). */
	CHECK(t, raw_exec(path, "DROP TABLE supersessions") == 0);
	j = journal_open(path, &err);
	CHECK(t, j != NULL);
	if (j == NULL)
		return;
	CHECK_CODE(t, journal_superseded(j, "ss-a", &type, by, sizeof(by), &err), XBA_ENOTFOUND);
	e = entry("ss-u3", false, 5000, three, 3, NULL, 0);
	e.msg_type = 2;
	e.supersedes = x_only;
	e.n_supersedes = 1;
	CHECK(t, append_one(j, &e) == 5);
	CHECK_CODE(t, journal_superseded(j, "ss-x", &type, by, sizeof(by), &err), 0);
	/* Prune drops the records of the updates and cancels it deletes. */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	for (uint64_t s = 1; s <= 5; s++)
		for (size_t i = 0; i < 3; i++)
			CHECK_CODE(t, journal_mark_delivered(j, three[i].node_id, s, 9000, NULL, &err), 0);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	CHECK_CODE(t, journal_prune(j, INT64_MAX, &deleted, &err), 0);
	CHECK(t, deleted == 5);
	CHECK_CODE(t, journal_superseded(j, "ss-x", &type, by, sizeof(by), &err), XBA_ENOTFOUND);
	journal_close(j);
}

static void
test_prune(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_recipient two[] = { { "DZA", "r" }, { "LBY", "r" } };
	struct journal_alert_info info;
	struct journal_entry e;
	uint64_t deleted = 99, seq;
	uint8_t *env = NULL;
	size_t len;
	bool changed;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	CHECK(t, append_numbered(j, "pr", 6, 0, two, 2, one_withheld, 1));
	CHECK_CODE(t, journal_prune(j, 10000, &deleted, &err), 0);
	CHECK(t, deleted == 0); /* nothing finished yet */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_delivered_through(j, "DZA", 6, 7000, &err), 0);
	CHECK_CODE(t, journal_mark_delivered(j, "DZA", 4, 7000, &changed, &err), 0);
	/* LBY has 1..3 (a delivery mark), then 5 and 6 out of order (row by row): 4 still waits. */
	CHECK_CODE(t, journal_mark_delivered_through(j, "LBY", 3, 7000, &err), 0);
	CHECK_CODE(t, journal_mark_delivered(j, "LBY", 5, 7000, &changed, &err), 0);
	CHECK_CODE(t, journal_mark_delivered(j, "LBY", 6, 7000, &changed, &err), 0);
	CHECK_CODE(t, journal_commit(j, &err), 0);

	/* Seq 4 still waits for LBY: only 1..3 may go, whatever the cutoff. */
	CHECK_CODE(t, journal_prune(j, 5500, &deleted, &err), 0);
	CHECK(t, deleted == 3);
	CHECK(t, verifies(j, 3));
	CHECK(t, journal_head(j) == 6);
	CHECK_CODE(t, journal_envelope(j, 2, &env, &len, &err), XBA_ENOTFOUND);
	CHECK_CODE(t, journal_find(j, "pr-3", &info, &err), XBA_ENOTFOUND);
	CHECK_CODE(t, journal_find(j, "pr-4", &info, &err), 0);

	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_delivered(j, "LBY", 4, 8000, &changed, &err), 0);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	/* Now the cutoff decides: 6 was received at 6000. */
	CHECK_CODE(t, journal_prune(j, 5500, &deleted, &err), 0);
	CHECK(t, deleted == 2);
	CHECK(t, verifies(j, 1));
	CHECK_CODE(t, journal_prune(j, INT64_MAX, &deleted, &err), 0);
	CHECK(t, deleted == 1);
	CHECK(t, verifies(j, 0));
	journal_close(j);

	/* An empty journal after pruning keeps counting: seqs are never reused, and the chain goes on. */
	j = journal_open(path, &err);
	CHECK(t, j != NULL);
	if (j == NULL)
		return;
	CHECK(t, journal_head(j) == 6);
	e = entry("pr-7", false, 9000, two, 2, NULL, 0);
	seq = append_one(j, &e);
	CHECK(t, seq == 7);
	CHECK(t, verifies(j, 1));
	/* A pruned journal still detects tampering with what is left, including its first entry. */
	CHECK(t, raw_exec(path, "UPDATE alerts SET received_ms = 1 WHERE seq = 7") == 0);
	detects(t, j, 7, 0);
	journal_close(j);
}

static void
test_commit_fails_when_disk_full(struct check_state *t)
{
	char path[300], wal[320];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_entry e = entry("full-1", false, 1, three, 3, NULL, 0), big;
	struct journal_alert_info info;
	const uint8_t *bytes;
	size_t bytes_len;
	struct rlimit saved, limited;
	struct stat st_db, st_wal;
	size_t big_len = 512 * 1024;
	uint8_t *env = calloc(1, big_len);
	void (*old_handler)(int);
	uint64_t seq = 0;
	int rc;

	if (j == NULL || env == NULL) {
		CHECK(t, j != NULL && env != NULL);
		journal_close(j);
		free(env);
		return;
	}
	CHECK(t, append_one(j, &e) == 1);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (stat(path, &st_db) != 0 || stat(wal, &st_wal) != 0 || getrlimit(RLIMIT_FSIZE, &saved) != 0) {
		CHECK(t, !"stat or getrlimit");
		goto out;
	}
	big = entry("full-2", false, 2, three, 3, NULL, 0);
	big.envelope = env;
	big.envelope_len = big_len;
	e = entry("full-3", false, 3, three, 3, NULL, 0);

	/* Writes past the limit fail with EFBIG (SIGXFSZ ignored), as a full disk's fail with ENOSPC. */
	old_handler = signal(SIGXFSZ, SIG_IGN);
	limited = saved;
	limited.rlim_cur = (rlim_t)(st_db.st_size > st_wal.st_size ? st_db.st_size : st_wal.st_size) + 16384;
	CHECK(t, setrlimit(RLIMIT_FSIZE, &limited) == 0);
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_append(j, &big, &seq, &err), 0);
	CHECK_CODE(t, journal_append(j, &e, &seq, &err), 0);
	CHECK(t, seq == 3);
	rc = journal_commit(j, &err);
	setrlimit(RLIMIT_FSIZE, &saved);
	signal(SIGXFSZ, old_handler);
	CHECK_CODE(t, rc, XBA_EIO);
	CHECK_CONTAINS(t, err.msg, path);
	CHECK_CONTAINS(t, err.msg, "commit");
	fprintf(stderr, "     (reported: %s)\n", err.msg);

	/* Rolled back: head, chain and contents are the last commit's, and the next batch goes through.  The
	 * envelope cache forgot the batch too: seq 2 is reused for full-3, whose envelope is the small one. */
	CHECK(t, journal_head(j) == 1);
	CHECK_CODE(t, journal_find(j, "full-2", &info, &err), XBA_ENOTFOUND);
	CHECK_CODE(t, journal_envelope_ref(j, 2, &bytes, &bytes_len, &err), XBA_ENOTFOUND);
	CHECK(t, verifies(j, 1));
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_append(j, &e, &seq, &err), 0);
	CHECK(t, seq == 2);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	CHECK(t, ref_is(j, 2, small_envelope, sizeof(small_envelope)));
	CHECK(t, verifies(j, 2));

	/* A failure in the middle of a batch (here: the cache spilling to a full disk) fails the whole batch: every
	 * later call of it reports the failure, and so does journal_commit. */
	{
		size_t huge_len = 24u * 1024 * 1024;
		uint8_t *huge = calloc(1, huge_len);
		struct journal_entry h = entry("full-4", false, 4, three, 3, NULL, 0);
		struct journal_entry after = entry("full-5", false, 5, three, 3, NULL, 0);

		CHECK(t, huge != NULL);
		if (huge == NULL)
			goto out;
		h.envelope = huge;
		h.envelope_len = huge_len;
		if (stat(path, &st_db) != 0 || stat(wal, &st_wal) != 0) {
			free(huge);
			goto out;
		}
		old_handler = signal(SIGXFSZ, SIG_IGN);
		limited.rlim_cur = (rlim_t)(st_db.st_size > st_wal.st_size ? st_db.st_size : st_wal.st_size) + 16384;
		CHECK(t, setrlimit(RLIMIT_FSIZE, &limited) == 0);
		CHECK_CODE(t, journal_begin(j, &err), 0);
		CHECK_CODE(t, journal_append(j, &after, &seq, &err), 0);
		CHECK(t, seq == 3);
		rc = journal_append(j, &h, &seq, &err);
		setrlimit(RLIMIT_FSIZE, &saved);
		signal(SIGXFSZ, old_handler);
		CHECK_CODE(t, rc, XBA_EIO);
		CHECK_CONTAINS(t, err.msg, path);
		fprintf(stderr, "     (reported: %s)\n", err.msg);
		CHECK(t, journal_head(j) == 2);
		after.alert_id = "full-6";
		CHECK_CODE(t, journal_append(j, &after, &seq, &err), XBA_EIO);
		CHECK_CONTAINS(t, err.msg, "the transaction already failed");
		CHECK_CODE(t, journal_commit(j, &err), XBA_EIO);
		CHECK_CONTAINS(t, err.msg, "the transaction already failed");
		CHECK_CODE(t, journal_find(j, "full-5", &info, &err), XBA_ENOTFOUND);
		CHECK_CODE(t, journal_envelope_ref(j, 3, &bytes, &bytes_len, &err), XBA_ENOTFOUND);
		free(huge);
	}
	e.alert_id = "full-7";
	CHECK(t, append_one(j, &e) == 3);
	CHECK(t, verifies(j, 3));
out:
	free(env);
	journal_close(j);
}

static void
test_busy_lock(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_entry e = entry("busy-1", false, 1, three, 3, NULL, 0);
	struct journal_alert_info info;
	sqlite3 *other = NULL;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	CHECK(t, append_one(j, &e) == 1);
	/* Another process holds the write lock (an operator's sqlite3 shell in a transaction, say). */
	CHECK(t, sqlite3_open(path, &other) == SQLITE_OK);
	CHECK(t, sqlite3_exec(other, "BEGIN IMMEDIATE; DELETE FROM meta", NULL, NULL, NULL) == SQLITE_OK);
	journal_set_busy_timeout(j, 50);
	CHECK_CODE(t, journal_begin(j, &err), XBA_EIO);
	CHECK_CONTAINS(t, err.msg, path);
	CHECK_CONTAINS(t, err.msg, "locked");
	/* Readers are not blocked in WAL mode: the delivery path goes on. */
	CHECK_CODE(t, journal_find(j, "busy-1", &info, &err), 0);
	CHECK(t, sqlite3_exec(other, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(other);
	journal_set_busy_timeout(j, 5000);
	e.alert_id = "busy-2";
	CHECK(t, append_one(j, &e) == 2);
	CHECK(t, verifies(j, 2));
	journal_close(j);
}

static void
test_schema_version(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	FILE *f;

	CHECK(t, j != NULL);
	journal_close(j);
	/* The journal holds TLP:RED alerts: owner-only, and so are the WAL files SQLite derives from it. */
	{
		struct stat st;
		char wal[320];

		snprintf(wal, sizeof(wal), "%s-wal", path);
		CHECK(t, stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
		j = journal_open(path, &err);
		CHECK(t, j != NULL && stat(wal, &st) == 0 && (st.st_mode & 0777) == 0600);
		journal_close(j);
	}
	/* A journal SQLite can only read is refused at open, not at the first publish.  Root ignores chmod, so the
	 * read-only open is asked for with a URI, where this SQLite understands them. */
	if (sqlite3_compileoption_used("USE_URI")) {
		char uri[330];

		snprintf(uri, sizeof(uri), "file:%s?mode=ro", path);
		memset(&err, 0, sizeof(err));
		j = journal_open(uri, &err);
		CHECK(t, j == NULL);
		journal_close(j);
		CHECK(t, err.code == XBA_EIO);
		CHECK_CONTAINS(t, err.msg, "read-only");
	}
	CHECK(t, raw_exec(path, "PRAGMA user_version = 3") == 0);
	memset(&err, 0, sizeof(err));
	j = journal_open(path, &err);
	CHECK(t, j == NULL);
	journal_close(j);
	CHECK(t, err.code == XBA_EIO);
	CHECK_CONTAINS(t, err.msg, path);
	CHECK_CONTAINS(t, err.msg, "schema version 3 is newer than this program understands (2)");

	/* Not a database at all. */
	new_path(path, sizeof(path));
	if ((f = fopen(path, "w")) != NULL) {
		for (int i = 0; i < 200; i++)
			fputs("this is not an sqlite database. ", f);
		fclose(f);
	}
	memset(&err, 0, sizeof(err));
	j = journal_open(path, &err);
	CHECK(t, j == NULL);
	journal_close(j);
	CHECK(t, err.code == XBA_EIO);
	CHECK_CONTAINS(t, err.msg, path);
	/* Another SQLite database that is not a journal. */
	new_path(path, sizeof(path));
	CHECK(t, raw_exec(path, "CREATE TABLE alerts (x)") == 0);
	memset(&err, 0, sizeof(err));
	j = journal_open(path, &err);
	CHECK(t, j == NULL);
	journal_close(j);
	CHECK_CONTAINS(t, err.msg, "is this file an XBA journal?");
}

/* The plan SQLite picks for sql, one detail per line. */
static void
query_plan(sqlite3 *db, const char *sql, char *out, size_t size)
{
	char explain[512];
	sqlite3_stmt *st = NULL;
	size_t used = 0;

	out[0] = '\0';
	snprintf(explain, sizeof(explain), "EXPLAIN QUERY PLAN %s", sql);
	if (sqlite3_prepare_v2(db, explain, -1, &st, NULL) != SQLITE_OK) {
		snprintf(out, size, "prepare failed: %s", sqlite3_errmsg(db));
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW && used < size) {
		int n = snprintf(out + used, size - used, "%s\n", (const char *)sqlite3_column_text(st, 3));

		if (n < 0)
			break;
		used += (size_t)n;
	}
	sqlite3_finalize(st);
}

/*
 * The per-node queries must be index searches, never scans.  The SQL is a copy of journal.c's statements (keep the
 * two in step); the plan is taken on a journal holding many rows, with statistics, so the planner has a choice.
 */
static void
test_query_plans(struct check_state *t)
{
	static const struct {
		const char *sql;
		const char *want;      /* in the plan */
	} cases[] = {
		{ "SELECT seq, emergency, rule FROM deliveries WHERE node = ?1 AND state = 1 ORDER BY emergency DESC, seq",
		    "SEARCH deliveries USING COVERING INDEX deliveries_queued (node=?)" },
		{ "SELECT count(*) FROM deliveries WHERE node = ?1 AND state = 1",
		    "SEARCH deliveries USING COVERING INDEX deliveries_queued (node=?)" },
		{ "UPDATE deliveries SET state = 2, delivered_ms = ?3 WHERE node = ?1 AND state = 1 AND emergency = 1"
		  " AND seq <= ?2",
		    "deliveries_queued (node=? AND emergency=? AND seq<?)" },
		{ "SELECT seq FROM deliveries WHERE node = ?1 AND state = 1 AND emergency = 0 AND seq > ?2 AND seq <= ?3"
		  " ORDER BY seq",
		    "SEARCH deliveries USING COVERING INDEX deliveries_queued (node=? AND emergency=? AND seq>? AND seq<?)" },
		{ "SELECT count(*) FROM deliveries WHERE node = ?1 AND state = 1 AND emergency = 0 AND seq > ?2",
		    "SEARCH deliveries USING COVERING INDEX deliveries_queued (node=? AND emergency=? AND seq>?)" },
		{ "SELECT min(node) FROM deliveries INDEXED BY deliveries_queued WHERE state = 1 AND node > ?1",
		    "SEARCH deliveries USING COVERING INDEX deliveries_queued (node>?)" },
		{ "SELECT min(seq) FROM deliveries WHERE node = ?1 AND state = 1 AND emergency = 0 AND seq > ?2",
		    "SEARCH deliveries USING COVERING INDEX deliveries_queued (node=? AND emergency=? AND seq>?)" },
		{ "SELECT max(through_seq) FROM delivery_marks WHERE node = ?1",
		    "SEARCH delivery_marks USING PRIMARY KEY (node=?)" },
		{ "SELECT delivered_ms FROM delivery_marks WHERE node = ?1 AND through_seq >= ?2 ORDER BY through_seq"
		  " LIMIT 1",
		    "SEARCH delivery_marks USING PRIMARY KEY (node=? AND through_seq>?)" },
		{ "SELECT node, state, rule, delivered_ms, acked_ms, officer FROM deliveries WHERE seq = ?1 ORDER BY node",
		    "SEARCH deliveries USING PRIMARY KEY (seq=?)" },
		{ "SELECT seq, origin, envelope_sha256, recipients, emergency FROM alerts WHERE alert_id = ?1",
		    "SEARCH alerts USING INDEX sqlite_autoindex_alerts_1 (alert_id=?)" },
		{ "SELECT max(seq) FROM alerts", "SEARCH alerts" },
	};
	char path[300], plan[1024];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	const struct journal_recipient six[] = { { "DZA", "r" }, { "LBY", "r" }, { "SDN", "r" }, { "TCD", "r" },
		{ "MLI", "r" }, { "IOM-ROMENA", "r" } };
	sqlite3 *db = NULL;
	uint64_t seq;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	CHECK_CODE(t, journal_begin(j, &err), 0);
	for (int i = 0; i < 2000; i++) {
		char id[16];
		struct journal_entry e;

		snprintf(id, sizeof(id), "qp-%d", i);
		e = entry(id, i % 10 == 0, i, six, 6, NULL, 0);
		CHECK_CODE(t, journal_append(j, &e, &seq, &err), 0);
	}
	CHECK_CODE(t, journal_commit(j, &err), 0);
	journal_close(j);
	CHECK(t, raw_exec(path, "UPDATE deliveries SET state = 2 WHERE seq <= 1900; ANALYZE") == 0);
	CHECK(t, sqlite3_open(path, &db) == SQLITE_OK);
	for (size_t i = 0; i < COUNT(cases); i++) {
		query_plan(db, cases[i].sql, plan, sizeof(plan));
		CHECK_CONTAINS(t, plan, cases[i].want);
		CHECK(t, strstr(plan, "SCAN") == NULL && strstr(plan, "TEMP B-TREE") == NULL);
		if (strstr(plan, cases[i].want) == NULL || strstr(plan, "SCAN") != NULL)
			fprintf(stderr, "  plan of %s:\n%s", cases[i].sql, plan);
	}
	sqlite3_close(db);
}

static double
elapsed_s(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Opening costs the same for a huge journal as for a small one: nothing at open scans. */
static void
test_open_large_journal(struct check_state *t)
{
	char path[300];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_entry e = entry("large-tip", false, 1, three, 3, NULL, 0);
	struct timespec t0, t1;
	double open_s;
	const long rows = getenv("XBA_BENCH_LARGE") != NULL ? 1000000 : 200000; /* 1M takes ~10 s to build */
	char sql[1024];

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	journal_close(j);
	/* Rows made in bulk (their hashes are not a chain; this test does not audit). */
	snprintf(sql, sizeof(sql),
	    "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %ld)"
	    " INSERT INTO alerts SELECT i, 'bulk-' || i, 'NER', i, i, 1, 0, zeroblob(64), zeroblob(32), 'v', 1,"
	    " zeroblob(32), randomblob(32) FROM n;"
	    " INSERT INTO deliveries (seq, node, rule, state, emergency) SELECT seq, 'DZA', 'r', 2, 0 FROM alerts;"
	    " COMMIT",
	    rows);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(t, raw_exec(path, sql) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "     (built a %ld-alert journal in %.2f s)\n", rows, elapsed_s(&t0, &t1));

	clock_gettime(CLOCK_MONOTONIC, &t0);
	j = journal_open(path, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	open_s = elapsed_s(&t0, &t1);
	CHECK(t, j != NULL);
	if (j == NULL)
		return;
	printf("bench: journal_open of a %ld-alert journal: %.2f ms\n", rows, open_s * 1e3);
	CHECK(t, open_s < 0.5);
	CHECK(t, journal_head(j) == (uint64_t)rows);
	CHECK(t, append_one(j, &e) == (uint64_t)rows + 1);
	journal_close(j);
}

/* ---- micro-benchmark ---- */

static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A UUID-shaped random id: random ids are what the alert-id index really sees. */
static void
random_uuid(uint64_t *rng, char out[37])
{
	uint64_t a = xorshift(rng), b = xorshift(rng);

	snprintf(out, 37, "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
	    (unsigned)a & 0xfff, (unsigned)(b >> 48) & 0xfff, (unsigned long long)(b & 0xffffffffffffULL));
}

/*
 * 10,000 alerts of ~1 KiB with 6 recipients, in batches of 100 with synchronous=FULL, as the publish path does
 * them: journal_find (the dedup check) then journal_append, one commit per batch.  CPU time is counted per batch
 * around the appends only, so the commit (the fsync) is outside it.  Then the delivery path: journal_pending and
 * journal_mark_delivered for every row.
 */
static void
bench_publish_path(struct check_state *t)
{
	enum { ALERTS = 10000, BATCH = 100 };
	const struct journal_recipient six[] = { { "DZA", "neighbours" }, { "LBY", "neighbours" },
		{ "SDN", "members" }, { "TCD", "members" }, { "MLI", "neighbours" }, { "IOM-ROMENA", "observers" } };
	char path[300], (*ids)[37] = malloc((size_t)ALERTS * 37);
	uint8_t envelope[1024];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_alert_info info;
	struct journal_pending p[BATCH];
	struct timespec w0, w1;
	double cpu_find = 0, cpu_append = 0, cpu_commit = 0, cpu_pending = 0, cpu_mark = 0, c0, c1, wall_commit = 0;
	uint64_t rng = 0x9e3779b97f4a7c15ULL, seq;
	int failures = 0;

	if (j == NULL || ids == NULL) {
		CHECK(t, j != NULL && ids != NULL);
		journal_close(j);
		free(ids);
		return;
	}
	for (size_t i = 0; i < sizeof(envelope); i++)
		envelope[i] = (uint8_t)xorshift(&rng);
	for (int i = 0; i < ALERTS; i++)
		random_uuid(&rng, ids[i]);

	clock_gettime(CLOCK_MONOTONIC, &w0);
	for (int b = 0; b < ALERTS / BATCH; b++) {
		struct timespec s0, s1;

		failures += journal_begin(j, &err) != 0;
		c0 = cpu_now();
		for (int i = b * BATCH; i < (b + 1) * BATCH; i++)
			failures += journal_find(j, ids[i], &info, &err) != XBA_ENOTFOUND;
		c1 = cpu_now();
		cpu_find += c1 - c0;
		for (int i = b * BATCH; i < (b + 1) * BATCH; i++) {
			struct journal_entry e = entry(ids[i], i % 50 == 0, 1800000000000LL + i, six, 6, NULL, 0);

			e.envelope = envelope;
			e.envelope_len = sizeof(envelope);
			failures += journal_append(j, &e, &seq, &err) != 0;
		}
		c0 = cpu_now();
		cpu_append += c0 - c1;
		clock_gettime(CLOCK_MONOTONIC, &s0);
		failures += journal_commit(j, &err) != 0;
		clock_gettime(CLOCK_MONOTONIC, &s1);
		cpu_commit += cpu_now() - c0;
		wall_commit += elapsed_s(&s0, &s1);
	}
	clock_gettime(CLOCK_MONOTONIC, &w1);
	CHECK(t, failures == 0);
	CHECK(t, journal_head(j) == ALERTS);

	/* Delivery path: each node drains its queue a credit window (BATCH) at a time, one commit per window. */
	for (size_t node = 0; node < COUNT(six); node++) {
		int n;

		do {
			c0 = cpu_now();
			n = journal_pending(j, six[node].node_id, 0, p, COUNT(p), NULL, NULL, &err);
			c1 = cpu_now();
			cpu_pending += c1 - c0;
			if (n <= 0)
				break;
			failures += journal_begin(j, &err) != 0;
			c0 = cpu_now();
			for (int i = 0; i < n; i++) {
				bool changed;

				failures += journal_mark_delivered(j, six[node].node_id, p[i].seq, 1, &changed, &err) != 0;
			}
			cpu_mark += cpu_now() - c0;
			failures += journal_commit(j, &err) != 0;
		} while (n == (int)COUNT(p));
	}
	CHECK(t, failures == 0);

	printf("bench: %d alerts x 6 recipients, 1 KiB envelopes, batches of %d, synchronous=FULL: %.2f s wall, "
	       "%.0f alerts/s\n", ALERTS, BATCH, elapsed_s(&w0, &w1), ALERTS / elapsed_s(&w0, &w1));
	printf("bench: CPU per alert: journal_append %.2f us, journal_find (miss) %.2f us; per commit of %d: "
	       "%.1f us CPU, %.2f ms wall\n", cpu_append / ALERTS * 1e6, cpu_find / ALERTS * 1e6, BATCH,
	    cpu_commit / (ALERTS / BATCH) * 1e6, wall_commit / (ALERTS / BATCH) * 1e3);
	printf("bench: delivery path CPU: journal_mark_delivered %.2f us per row, journal_pending %.2f us per row "
	       "read (windows of %d)\n", cpu_mark / (ALERTS * 6.0) * 1e6, cpu_pending / (ALERTS * 6.0) * 1e6, BATCH);
	printf("bench: journal CPU per alert (find + append + 6 marks) = %.1f us, %.0f%% of a 44 us verification\n",
	    (cpu_find + cpu_append + cpu_mark) / ALERTS * 1e6, (cpu_find + cpu_append + cpu_mark) / ALERTS * 1e6 / 44 * 100);
	{
		uint64_t checked = 0;

		c0 = cpu_now();
		CHECK_CODE(t, journal_audit_verify(j, &checked, &err), 0);
		c1 = cpu_now();
		CHECK(t, checked == ALERTS);
		printf("bench: journal_audit_verify: %.2f us CPU per entry\n", (c1 - c0) / ALERTS * 1e6);
	}
	free(ids);
	journal_close(j);
}

/* A node's store restored from a backup: its Hello resumes below what it acknowledged, and the deliveries after that
 * point are queued again, emergencies and refusals included; an officer's acknowledgement stays. */
static void
test_rewind(struct check_state *t)
{
	char path[300], text[200];
	struct xba_error err;
	struct journal *j = journal_open(new_path(path, sizeof(path)), &err);
	struct journal_recipient both[] = { { "DZA", "r" }, { "LBY", "r" } };
	struct track_log log;
	const struct journal_track_row *row;
	uint64_t from = 0, again = 0;
	bool changed = false;

	if (j == NULL) {
		CHECK(t, j != NULL);
		return;
	}
	CHECK(t, append_numbered(j, "rw", 6, 3, both, 2, NULL, 0)); /* seq 3 is an emergency */
	/* DZA: everything through 6, the emergency row by row; 5 acknowledged by an officer; 6 refused. */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_delivered_through(j, "DZA", 6, 5000, &err), 0);
	CHECK_CODE(t, journal_mark_acknowledged(j, "DZA", 5, "duty officer", NULL, 5500, &changed, &err), 0);
	CHECK_CODE(t, journal_mark_refused(j, "DZA", 6, "UNKNOWN_KEY", 5600, &changed, &err), 0);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	CHECK(t, depth_of(j, "DZA") == 0);

	/* The usual Hello: at or past the mark, nothing moves. */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_rewind(j, "DZA", 6, &from, &again, &err), 0);
	CHECK(t, from == 0 && again == 0);
	CHECK_CODE(t, journal_rewind(j, "LBY", 0, &from, &again, &err), 0); /* never acknowledged anything */
	CHECK(t, from == 0 && again == 0);
	CHECK_CODE(t, journal_commit(j, &err), 0);

	/* Restored to a store that had 1 only: 2, 4 (ordinary, under the mark), 3 (emergency) and 6 (refused) come
	 * again; 5, acknowledged, does not. */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_rewind(j, "DZA", 1, &from, &again, &err), 0);
	CHECK(t, from == 6 && again == 4);
	CHECK_CODE(t, journal_mark_delivered_through(j, "DZA", 1, 7000, &err), 0);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	pending_text(j, "DZA", text, sizeof(text));
	CHECK_STR(t, text, "e3 2 4 6");
	CHECK(t, track(j, 2, &log) == 0);
	row = track_row(&log, "DZA");
	CHECK(t, row != NULL && row->state == DELIVERY_QUEUED);
	CHECK(t, track(j, 1, &log) == 0);
	row = track_row(&log, "DZA");
	CHECK(t, row != NULL && row->state == DELIVERY_DELIVERED);
	CHECK(t, track(j, 5, &log) == 0);
	row = track_row(&log, "DZA");
	CHECK(t, row != NULL && row->state == DELIVERY_ACKNOWLEDGED);
	CHECK(t, track(j, 6, &log) == 0);
	row = track_row(&log, "DZA");
	CHECK(t, row != NULL && row->state == DELIVERY_QUEUED && row->reason[0] == '\0');

	/* Durable, and the cached mark went with the rows: a reopened journal reads the same queue. */
	journal_close(j);
	j = journal_open(path, &err);
	CHECK(t, j != NULL);
	if (j == NULL)
		return;
	pending_text(j, "DZA", text, sizeof(text));
	CHECK_STR(t, text, "e3 2 4 6");
	CHECK(t, verifies(j, 6));

	/* LBY has 1 and 2 (its mark) and the emergency 3, row by row; its cursor stays 2 (emergencies are not in it).
	 * Its Hello says it holds 2 at most (a store from before 3): 3 is sent again.  journal_rewind, by the cursor
	 * alone, sees nothing. */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_delivered_through(j, "LBY", 2, 8000, &err), 0);
	CHECK_CODE(t, journal_mark_delivered(j, "LBY", 3, 8000, &changed, &err), 0);
	CHECK_CODE(t, journal_rewind(j, "LBY", 2, &from, &again, &err), 0);
	CHECK(t, from == 0 && again == 0);
	CHECK_CODE(t, journal_rewind_lost(j, "LBY", 3, &from, &again, &err), 0); /* it holds 3: nothing */
	CHECK(t, from == 0 && again == 0);
	CHECK_CODE(t, journal_rewind_lost(j, "LBY", 2, &from, &again, &err), 0);
	CHECK(t, from == 3 && again == 1);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	pending_text(j, "LBY", text, sizeof(text));
	CHECK_STR(t, text, "e3 4 5 6");

	/* A journal of a broker before delivered_high: the table is made and filled from the deliveries at open, so an
	 * emergency delivered before the upgrade is found too (empty, the lookup said "nothing above"). */
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_mark_delivered(j, "LBY", 3, 8300, &changed, &err), 0);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	journal_close(j);
	CHECK(t, raw_exec(path, "DROP TABLE delivered_high") == 0);
	j = journal_open(path, &err);
	CHECK(t, j != NULL);
	if (j == NULL)
		return;
	CHECK_CODE(t, journal_begin(j, &err), 0);
	CHECK_CODE(t, journal_rewind_lost(j, "LBY", 2, &from, &again, &err), 0);
	CHECK(t, from == 3 && again == 1);
	CHECK_CODE(t, journal_commit(j, &err), 0);
	journal_close(j);
}

int
main(int argc, char **argv)
{
	struct check_state t = { 0 };
	const char *tmp = getenv("TMPDIR");
	int rc;

	(void)argc;
	(void)argv; /* the tests/ directory: this test needs no data files */
	snprintf(workdir, sizeof(workdir), "%s/xba-test-journal-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(workdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	RUN(&t, test_append_find_head);
	RUN(&t, test_duplicates);
	RUN(&t, test_pending_order);
	RUN(&t, test_mark_transitions);
	RUN(&t, test_refused_released);
	RUN(&t, test_queue_depth);
	RUN(&t, test_delivery_marks);
	RUN(&t, test_rewind);
	RUN(&t, test_envelope_exact);
	RUN(&t, test_envelope_cache_hit);
	RUN(&t, test_envelope_cache_miss_reads_sqlite);
	RUN(&t, test_envelope_cache_rollback);
	RUN(&t, test_envelope_cache_eviction);
	RUN(&t, test_track_rows);
	RUN(&t, test_rollback_restores_chain);
	RUN(&t, test_reopen);
	RUN(&t, test_audit_detects_tampering);
	RUN(&t, test_prune);
	RUN(&t, test_supersessions);
	RUN(&t, test_prune_held);
	RUN(&t, test_commit_fails_when_disk_full);
	RUN(&t, test_busy_lock);
	RUN(&t, test_schema_version);
	RUN(&t, test_query_plans);
	RUN(&t, test_open_large_journal);
	RUN(&t, bench_publish_path);
	rc = check_finish(&t);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", workdir);
	}
	return rc;
}
