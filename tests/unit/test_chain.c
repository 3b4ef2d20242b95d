/*
 * test_chain.c — the journal's hash chain (lib/chain.c): the hash of one entry against a vector computed
 * independently from the formula (Python's hashlib, below), and the audit walk over small journal files built here
 * with SQLite itself: intact, pruned, altered, a row deleted, a page damaged (chain_check_file); and
 * chain_open_readonly on files that are not journals, or are damaged ones.  broker/journal.c's own tests
 * (test_journal) cover the walk over journals the broker wrote.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "check.h"
#include "encoding.h"
#include "error.h"

/*
 * The vector, from the formula in lib/chain.c alone:
 *
 *   field = lambda b: struct.pack('>I', len(b)) + b;  i64 = lambda v: field(struct.pack('>q', v))
 *   m = field(b"xba-journal-v1") + field(b"\x11" * 32) + i64(7) + field(ALERT_ID) + field(b"NER")
 *       + i64(1764000000000) + i64(1764000000005) + i64(1) + i64(0)
 *       + field(sha256(b"signed envelope bytes")) + field(b"abc123")
 *       + i64(2) + field(b"DZA") + field(b"crime-to-neighbours") + field(b"LBY") + field(b"crime-to-neighbours")
 *       + i64(1) + field(b"TCD") + field(b"deny-tcd")
 *   sha256(m).hexdigest()
 */
#define VECTOR_ALERT_ID "01a216e5-7961-7f6d-a705-d0767b529e51"
#define VECTOR_ENVELOPE "signed envelope bytes"
#define VECTOR_ENVELOPE_SHA256 "fed6eb80702d3f2208c36b3f1d1a6af2cfe44f52189e552c1fd954de66caf478"
#define VECTOR_HASH "b987fb5aa22fc605cd540527a0b940ae0f542e536f9f201d07fe0b7d162eb404"

static void
vector_entry(struct chain_entry *e, const uint8_t *envelope_sha256)
{
	memset(e, 0, sizeof(*e));
	e->seq = 7;
	e->alert_id = VECTOR_ALERT_ID;
	e->alert_id_len = strlen(VECTOR_ALERT_ID);
	e->origin = "NER";
	e->origin_len = 3;
	e->sent_ms = 1764000000000;
	e->received_ms = 1764000000005;
	e->msg_type = 1;
	e->emergency = 0;
	e->envelope_sha256 = envelope_sha256;
	e->rules_version = "abc123";
	e->rules_version_len = 6;
}

static int
add(struct chain *c, bool withheld, const char *node, const char *rule)
{
	struct xba_error err = { 0 };

	return chain_pair_add(c, withheld, node, strlen(node), rule, strlen(rule), &err);
}

/* The vector's lists: DZA and LBY by crime-to-neighbours; TCD withheld by deny-tcd, or (tcd_sent) sent by it. */
static int
add_vector_pairs(struct chain *c, bool tcd_sent)
{
	chain_pairs_clear(c);
	return add(c, false, "DZA", "crime-to-neighbours") | add(c, false, "LBY", "crime-to-neighbours") |
	    add(c, !tcd_sent, "TCD", "deny-tcd");
}

static void
test_vector(struct check_state *t)
{
	struct xba_error err = { 0 };
	struct chain *c = chain_new("vector", &err);
	uint8_t prev[CHAIN_HASH_LEN], sha[CHAIN_HASH_LEN], hash[CHAIN_HASH_LEN];
	char hex[2 * CHAIN_HASH_LEN + 1];
	struct chain_entry e;

	CHECK(t, c != NULL);
	if (c == NULL)
		return;
	memset(prev, 0x11, sizeof(prev));
	CHECK_CODE(t, chain_sha256(c, VECTOR_ENVELOPE, strlen(VECTOR_ENVELOPE), sha, &err), 0);
	CHECK_STR(t, encoding_hex(sha, CHAIN_HASH_LEN, hex), VECTOR_ENVELOPE_SHA256);
	vector_entry(&e, sha);
	CHECK_CODE(t, add_vector_pairs(c, false), 0);
	CHECK_CODE(t, chain_hash(c, prev, &e, hash, &err), 0);
	CHECK_STR(t, encoding_hex(hash, CHAIN_HASH_LEN, hex), VECTOR_HASH);

	/* The same again after a clear: nothing of the first entry's lists is left over. */
	CHECK_CODE(t, add_vector_pairs(c, false), 0);
	CHECK_CODE(t, chain_hash(c, prev, &e, hash, &err), 0);
	CHECK_STR(t, encoding_hex(hash, CHAIN_HASH_LEN, hex), VECTOR_HASH);

	/* TCD withheld and TCD a recipient are different history, so different hashes. */
	CHECK_CODE(t, add_vector_pairs(c, true), 0);
	CHECK_CODE(t, chain_hash(c, prev, &e, hash, &err), 0);
	CHECK(t, strcmp(encoding_hex(hash, CHAIN_HASH_LEN, hex), VECTOR_HASH) != 0);
	chain_free(c);
}

/* ---- small journals made with SQLite itself ---- */

static const char journal_sql[] =
	"CREATE TABLE alerts (seq INTEGER PRIMARY KEY, alert_id TEXT, origin TEXT, sent_ms INTEGER,"
	" received_ms INTEGER, msg_type INTEGER, emergency INTEGER, envelope BLOB, envelope_sha256 BLOB,"
	" rules_version TEXT, recipients INTEGER, prev_hash BLOB, hash BLOB);"
	"CREATE TABLE deliveries (seq INTEGER, node TEXT, rule TEXT, state INTEGER, PRIMARY KEY (seq, node));"
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value);"
	"PRAGMA user_version = 2;";

struct fixture {
	char path[64];
	sqlite3 *db;
	struct chain *chain;
	uint8_t tip[CHAIN_HASH_LEN];
};

static int
fixture_open(struct fixture *f, uint64_t base_seq)
{
	struct xba_error err = { 0 };
	int fd;

	memset(f, 0, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "/tmp/xba-test-chain-XXXXXX");
	if ((fd = mkstemp(f->path)) < 0)
		return -1;
	close(fd);
	if (sqlite3_open(f->path, &f->db) != SQLITE_OK || sqlite3_exec(f->db, journal_sql, NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	if ((f->chain = chain_new(f->path, &err)) == NULL)
		return -1;
	if (base_seq > 0) {
		sqlite3_stmt *st;

		memset(f->tip, 0x5a, sizeof(f->tip));
		if (sqlite3_prepare_v2(f->db, "INSERT INTO meta VALUES ('base_seq', ?1), ('base_hash', ?2)", -1, &st,
		    NULL) != SQLITE_OK)
			return -1;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)base_seq);
		sqlite3_bind_blob(st, 2, f->tip, CHAIN_HASH_LEN, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			return -1;
		sqlite3_finalize(st);
	}
	return 0;
}

static void
fixture_close(struct fixture *f)
{
	chain_free(f->chain);
	sqlite3_close(f->db);
	unlink(f->path);
}

/* Appends an entry to DZA and LBY (and withheld from TCD), chained after f->tip, as broker/journal.c would. */
static int
fixture_append(struct fixture *f, uint64_t seq, const char *envelope)
{
	struct xba_error err = { 0 };
	uint8_t sha[CHAIN_HASH_LEN], hash[CHAIN_HASH_LEN];
	struct chain_entry e;
	char alert_id[64];
	sqlite3_stmt *st;
	static const char *const nodes[] = { "DZA", "LBY", "TCD" };

	snprintf(alert_id, sizeof(alert_id), "alert-%llu", (unsigned long long)seq);
	if (chain_sha256(f->chain, envelope, strlen(envelope), sha, &err) != 0)
		return -1;
	vector_entry(&e, sha);
	e.seq = seq;
	e.alert_id = alert_id;
	e.alert_id_len = strlen(alert_id);
	chain_pairs_clear(f->chain);
	if (add(f->chain, false, "DZA", "r") != 0 || add(f->chain, false, "LBY", "r") != 0 ||
	    add(f->chain, true, "TCD", "deny") != 0 || chain_hash(f->chain, f->tip, &e, hash, &err) != 0)
		return -1;
	if (sqlite3_prepare_v2(f->db, "INSERT INTO alerts VALUES (?1, ?2, 'NER', ?3, ?4, 1, 0, ?5, ?6, 'abc123', 2,"
	    " ?7, ?8)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	sqlite3_bind_text(st, 2, alert_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, e.sent_ms);
	sqlite3_bind_int64(st, 4, e.received_ms);
	sqlite3_bind_blob(st, 5, envelope, (int)strlen(envelope), SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 6, sha, CHAIN_HASH_LEN, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 7, f->tip, CHAIN_HASH_LEN, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 8, hash, CHAIN_HASH_LEN, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		return -1;
	sqlite3_finalize(st);
	for (int i = 0; i < 3; i++) {
		if (sqlite3_prepare_v2(f->db, "INSERT INTO deliveries VALUES (?1, ?2, ?3, ?4)", -1, &st, NULL) != SQLITE_OK)
			return -1;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
		sqlite3_bind_text(st, 2, nodes[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, i < 2 ? "r" : "deny", -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 4, i < 2 ? 2 : CHAIN_DELIVERY_WITHHELD);
		if (sqlite3_step(st) != SQLITE_DONE)
			return -1;
		sqlite3_finalize(st);
	}
	memcpy(f->tip, hash, CHAIN_HASH_LEN);
	return 0;
}

struct visits {
	int n;
	uint64_t seqs[8];
	size_t envelope_len[8];
	uint64_t recipients[8], withheld[8];
	int stop_at;                 /* return an error at this visit (1-based); 0 never */
};

static int
visit(void *ctx, const struct chain_entry *e, const uint8_t *envelope, size_t envelope_len, struct xba_error *err)
{
	struct visits *v = ctx;

	(void)envelope;
	if (v->n < 8) {
		v->seqs[v->n] = e->seq;
		v->envelope_len[v->n] = envelope_len;
		v->recipients[v->n] = e->n_recipients;
		v->withheld[v->n] = e->n_withheld;
	}
	if (++v->n == v->stop_at)
		return xba_error_set(err, XBA_ESIG, "visit %d refused", v->n);
	return 0;
}

static void
test_walk_intact(struct check_state *t)
{
	struct fixture f;
	struct xba_error err = { 0 };
	struct chain_walk_result r;
	struct visits v = { 0 };

	CHECK_CODE(t, fixture_open(&f, 0), 0);
	CHECK_CODE(t, fixture_append(&f, 1, "first envelope"), 0);
	CHECK_CODE(t, fixture_append(&f, 2, "second, longer envelope"), 0);
	CHECK_CODE(t, fixture_append(&f, 3, "third"), 0);
	CHECK_CODE(t, chain_walk(f.chain, f.db, visit, &v, &r, &err), 0);
	CHECK(t, r.checked == 3 && r.first_seq == 1 && r.last_seq == 3 && r.base_seq == 0 && r.broken_seq == 0);
	CHECK(t, memcmp(r.tip, f.tip, CHAIN_HASH_LEN) == 0);
	CHECK(t, v.n == 3 && v.seqs[0] == 1 && v.seqs[2] == 3);
	CHECK(t, v.envelope_len[1] == strlen("second, longer envelope"));
	CHECK(t, v.recipients[0] == 2 && v.withheld[0] == 1);

	/* A visitor's refusal stops the walk and is returned as it is. */
	memset(&v, 0, sizeof(v));
	v.stop_at = 2;
	CHECK_CODE(t, chain_walk(f.chain, f.db, visit, &v, &r, &err), XBA_ESIG);
	CHECK_CONTAINS(t, err.msg, "visit 2 refused");
	CHECK(t, v.n == 2 && r.checked == 1);
	fixture_close(&f);
}

static void
test_walk_pruned(struct check_state *t)
{
	struct fixture f;
	struct xba_error err = { 0 };
	struct chain_walk_result r;
	uint8_t base[CHAIN_HASH_LEN];

	CHECK_CODE(t, fixture_open(&f, 5), 0);
	memcpy(base, f.tip, CHAIN_HASH_LEN);
	CHECK_CODE(t, chain_walk(f.chain, f.db, NULL, NULL, &r, &err), 0);
	CHECK(t, r.checked == 0 && r.base_seq == 5 && memcmp(r.tip, base, CHAIN_HASH_LEN) == 0);
	CHECK_CODE(t, fixture_append(&f, 6, "after the prune"), 0);
	CHECK_CODE(t, fixture_append(&f, 7, "and one more"), 0);
	CHECK_CODE(t, chain_walk(f.chain, f.db, NULL, NULL, &r, &err), 0);
	CHECK(t, r.checked == 2 && r.first_seq == 6 && r.last_seq == 7 && r.base_seq == 5);

	/* A different base hash (the pruned history swapped): the first kept entry no longer chains. */
	CHECK(t, sqlite3_exec(f.db, "UPDATE meta SET value = zeroblob(32) WHERE key = 'base_hash'", NULL, NULL, NULL) ==
	    SQLITE_OK);
	CHECK_CODE(t, chain_walk(f.chain, f.db, NULL, NULL, &r, &err), XBA_EDECODE);
	CHECK(t, r.broken_seq == 6 && r.checked == 0);
	fixture_close(&f);
}

static void
test_walk_tampered(struct check_state *t)
{
	static const struct {
		const char *sql;
		uint64_t broken;
	} cases[] = {
		{ "UPDATE alerts SET origin = 'LBY' WHERE seq = 2", 2 },
		{ "UPDATE alerts SET envelope = x'00' WHERE seq = 3", 3 },
		{ "UPDATE deliveries SET rule = 'other' WHERE seq = 2 AND node = 'DZA'", 2 },
		{ "UPDATE deliveries SET state = 4 WHERE seq = 1 AND node = 'LBY'", 1 },   /* sent, rewritten withheld */
		{ "DELETE FROM deliveries WHERE seq = 3 AND node = 'TCD'", 3 },
		{ "DELETE FROM alerts WHERE seq = 2", 2 },                               /* its rows are still there */
		{ "DELETE FROM alerts WHERE seq = 3", 3 },                               /* the tail: rows left behind */
		{ "UPDATE alerts SET recipients = 3 WHERE seq = 1", 1 },
		{ "DELETE FROM deliveries WHERE seq = 2; DELETE FROM alerts WHERE seq = 2", 3 }, /* gone, rows too */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fixture f;
		struct xba_error err = { 0 };
		struct chain_walk_result r;

		CHECK_CODE(t, fixture_open(&f, 0), 0);
		CHECK_CODE(t, fixture_append(&f, 1, "one"), 0);
		CHECK_CODE(t, fixture_append(&f, 2, "two"), 0);
		CHECK_CODE(t, fixture_append(&f, 3, "three"), 0);
		CHECK(t, sqlite3_exec(f.db, cases[i].sql, NULL, NULL, NULL) == SQLITE_OK);
		CHECK_CODE(t, chain_walk(f.chain, f.db, NULL, NULL, &r, &err), XBA_EDECODE);
		if (r.broken_seq != cases[i].broken)
			fprintf(stderr, "case %s: broken at %llu, expected %llu\n", cases[i].sql,
			    (unsigned long long)r.broken_seq, (unsigned long long)cases[i].broken);
		CHECK(t, r.broken_seq == cases[i].broken);
		CHECK_CONTAINS(t, err.msg, "hash does not match");
		/* The broker numbers entries without gaps: a gap before the break is the deleted entry, named. */
		if (i == sizeof(cases) / sizeof(cases[0]) - 1)
			CHECK_CONTAINS(t, err.msg, "seq 2 is missing before it");
		fixture_close(&f);
	}
}

/* Overwrites the page of table or index `name` in the fixture's file with garbage (the fixture's connection is
 * closed first): one bad sector. */
static int
spoil_page(struct fixture *f, const char *name)
{
	sqlite3_stmt *st;
	int64_t page = 0, size = 0;
	char garbage[65536];
	FILE *file;

	if (sqlite3_prepare_v2(f->db, "SELECT rootpage, (SELECT page_size FROM pragma_page_size) FROM sqlite_master"
	    " WHERE name = ?1", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		page = sqlite3_column_int64(st, 0);
		size = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	sqlite3_close(f->db);
	f->db = NULL;
	if (page < 1 || size < 512 || size > (int64_t)sizeof(garbage) || (file = fopen(f->path, "r+b")) == NULL)
		return -1;
	for (int64_t i = 0; i < size; i++)
		garbage[i] = (char)(i * 7 + 3);
	if (fseek(file, (long)((page - 1) * size), SEEK_SET) != 0 || fwrite(garbage, 1, (size_t)size, file) !=
	    (size_t)size) {
		fclose(file);
		return -1;
	}
	return fclose(file) == 0 ? 0 : -1;
}

/* Walk and integrity_check as both audits run them: one read transaction. */
static void
audit_file(const char *path, struct chain *c, int *walk_rc, int *check_rc, struct chain_walk_result *r,
    struct xba_error *walk_err, struct xba_error *check_err)
{
	sqlite3 *db = NULL;

	*walk_rc = *check_rc = -999;
	if (chain_open_readonly(path, &db, NULL, walk_err) != 0)
		return;
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	*walk_rc = chain_walk(c, db, NULL, NULL, r, walk_err);
	*check_rc = chain_check_file(c, db, check_err);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);
}

static void
test_damaged(struct check_state *t)
{
	struct xba_error walk_err = { 0 }, check_err = { 0 };
	struct chain_walk_result r;
	int walk_rc, check_rc;
	struct fixture f;

	/* Intact: integrity_check finds nothing. */
	CHECK_CODE(t, fixture_open(&f, 0), 0);
	CHECK(t, sqlite3_exec(f.db, "CREATE UNIQUE INDEX alerts_id ON alerts (alert_id)", NULL, NULL, NULL) ==
	    SQLITE_OK);
	for (uint64_t seq = 1; seq <= 3; seq++)
		CHECK_CODE(t, fixture_append(&f, seq, "envelope"), 0);
	audit_file(f.path, f.chain, &walk_rc, &check_rc, &r, &walk_err, &check_err);
	CHECK_CODE(t, walk_rc, 0);
	CHECK_CODE(t, check_rc, 0);

	/* A bad sector in an index the walk never reads: the chain is intact, the file is not. */
	CHECK_CODE(t, spoil_page(&f, "alerts_id"), 0);
	audit_file(f.path, f.chain, &walk_rc, &check_rc, &r, &walk_err, &check_err);
	CHECK_CODE(t, walk_rc, 0);
	CHECK(t, r.checked == 3);
	CHECK_CODE(t, check_rc, XBA_EDAMAGED);
	CHECK_CONTAINS(t, check_err.msg, "the file is damaged: SQLite's integrity_check says: ");
	CHECK_CONTAINS(t, check_err.msg, f.path);
	fixture_close(&f);

	/* A bad sector in the alerts table: the walk stops there, damaged, not "cannot read". */
	CHECK_CODE(t, fixture_open(&f, 0), 0);
	for (uint64_t seq = 1; seq <= 3; seq++)
		CHECK_CODE(t, fixture_append(&f, seq, "envelope"), 0);
	CHECK_CODE(t, spoil_page(&f, "alerts"), 0);
	audit_file(f.path, f.chain, &walk_rc, &check_rc, &r, &walk_err, &check_err);
	CHECK_CODE(t, walk_rc, XBA_EDAMAGED);
	CHECK_CONTAINS(t, walk_err.msg, "the file is damaged");
	CHECK_CODE(t, check_rc, XBA_EDAMAGED);
	fixture_close(&f);
}

static void
test_open_damaged(struct check_state *t)
{
	struct xba_error err = { 0 };
	sqlite3 *db = NULL;
	struct fixture f;
	char big[3000];

	/* Enough rows for a file of several pages, then cut: SQLite's header on a body that is not all there. */
	CHECK_CODE(t, fixture_open(&f, 0), 0);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (uint64_t seq = 1; seq <= 8; seq++)
		CHECK_CODE(t, fixture_append(&f, seq, big), 0);
	sqlite3_close(f.db);
	f.db = NULL;
	CHECK(t, truncate(f.path, 4096) == 0);
	{
		int rc = chain_open_readonly(f.path, &db, NULL, &err);

		/* Page 1 may still parse (the schema is on it): then the walk finds the damage. */
		if (rc == 0) {
			struct chain_walk_result r;

			CHECK_CODE(t, chain_walk(f.chain, db, NULL, NULL, &r, &err), XBA_EDAMAGED);
			sqlite3_close(db);
		} else {
			CHECK_CODE(t, rc, XBA_EDAMAGED);
		}
	}
	/* Cut inside the header: SQLite would read it as an empty database, "not a journal". */
	CHECK(t, truncate(f.path, 50) == 0);
	CHECK_CODE(t, chain_open_readonly(f.path, &db, NULL, &err), XBA_EDAMAGED);
	CHECK_CONTAINS(t, err.msg, "cut short (50 bytes)");
	/* Empty: no SQLite header at all, the wrong file (exit 2 in xba audit verify). */
	CHECK(t, truncate(f.path, 0) == 0);
	CHECK_CODE(t, chain_open_readonly(f.path, &db, NULL, &err), XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, "not an XBA journal");
	fixture_close(&f);
}

static void
test_reason(struct check_state *t)
{
	CHECK_STR(t, chain_reason("/a/j.db", "journal /a/j.db: journal entry seq 2: x"), "journal entry seq 2: x");
	CHECK_STR(t, chain_reason("/a/j.db", "journal /a/k.db: y"), "journal /a/k.db: y");
	CHECK_STR(t, chain_reason("/a/j.db", "journal /a/j.dbx: y"), "journal /a/j.dbx: y");
}

static void
test_open_readonly(struct check_state *t)
{
	struct fixture f;
	struct xba_error err = { 0 };
	sqlite3 *db = (sqlite3 *)&err;
	const char *missing = "/tmp/xba-test-chain-no-such-journal.db";

	unlink(missing);
	CHECK(t, chain_open_readonly(missing, &db, NULL, &err) < 0 && db == NULL);
	CHECK_CONTAINS(t, err.msg, missing);
	CHECK(t, access(missing, F_OK) != 0); /* not created */

	CHECK_CODE(t, fixture_open(&f, 0), 0);
	CHECK_CODE(t, chain_open_readonly(f.path, &db, NULL, &err), 0);
	CHECK(t, db != NULL);
	/* Read-only: nothing can be written through it. */
	CHECK(t, sqlite3_exec(db, "DELETE FROM alerts", NULL, NULL, NULL) == SQLITE_READONLY);
	sqlite3_close(db);

	CHECK(t, sqlite3_exec(f.db, "PRAGMA user_version = 3", NULL, NULL, NULL) == SQLITE_OK);
	CHECK_CODE(t, chain_open_readonly(f.path, &db, NULL, &err), XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, "schema version 3 is newer");
	CHECK(t, sqlite3_exec(f.db, "PRAGMA user_version = 0", NULL, NULL, NULL) == SQLITE_OK);
	CHECK_CODE(t, chain_open_readonly(f.path, &db, NULL, &err), XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, "not an XBA journal");
	/* An agent's store given by mistake (the backups sit side by side): named as such. */
	CHECK(t, sqlite3_exec(f.db, "PRAGMA user_version = 3; ALTER TABLE alerts RENAME TO outgoing;"
	    " CREATE TABLE inbox (id INTEGER)", NULL, NULL, NULL) == SQLITE_OK);
	CHECK_CODE(t, chain_open_readonly(f.path, &db, NULL, &err), XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, "is an xba-agent's store");
	fixture_close(&f);

	/* Not SQLite at all. */
	{
		char path[] = "/tmp/xba-test-chain-text-XXXXXX";
		int fd = mkstemp(path);

		CHECK(t, fd >= 0 && write(fd, "region:\n  id: x\n", 16) == 16);
		close(fd);
		CHECK(t, chain_open_readonly(path, &db, NULL, &err) < 0 && db == NULL);
		CHECK_CONTAINS(t, err.msg, path);
		unlink(path);
	}
}

int
main(void)
{
	struct check_state t = { 0 };

	RUN(&t, test_vector);
	RUN(&t, test_walk_intact);
	RUN(&t, test_walk_pruned);
	RUN(&t, test_walk_tampered);
	RUN(&t, test_open_readonly);
	RUN(&t, test_damaged);
	RUN(&t, test_open_damaged);
	RUN(&t, test_reason);
	return check_finish(&t);
}
