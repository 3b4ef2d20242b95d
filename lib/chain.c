/*
 * chain.c — the broker journal's hash chain (see chain.h): the hash of one entry, and the walk that recomputes
 * every entry's hash from a journal file.  The broker's journal_append hashes with it before an alert is
 * acknowledged; `xba-broker --audit` and `xba audit verify` walk with it long after.
 *
 * hash(seq) = SHA-256 of (field = u32 big-endian length, then the bytes; int = field of 8 bytes, big-endian two's
 * complement):
 *
 *   field("xba-journal-v1") field(prev_hash) int(seq) field(alert_id) field(origin) int(sent_ms)
 *   int(received_ms) int(msg_type) int(emergency) field(envelope_sha256) field(rules_version)
 *   int(n_recipients) { field(node) field(rule) }*  int(n_withheld) { field(node) field(rule) }*
 *
 * with both lists sorted by node (bytewise, as SQLite's BINARY collation orders them).  prev_hash of the first entry
 * is 32 zero bytes, or after a prune the hash of the last entry pruned (meta 'base_hash', with 'base_seq').
 * Delivery *state* is outside the chain: it changes after the fact.  Which nodes an alert went to or was withheld
 * from, and by which rule, is history and is chained.
 */
#include "chain.h"

#include <assert.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HASH_DOMAIN "xba-journal-v1"

struct chain_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

struct chain {
	char *label;                 /* the journal's path, for messages */
	EVP_MD *sha256;              /* fetched once: an implicit fetch per digest costs a lock */
	EVP_MD_CTX *md;              /* reused for every digest */
	struct chain_buf canon;      /* the entry's fields, encoded */
	struct chain_buf lists[2];   /* [0] recipients, [1] withheld: encoded (node, rule) pairs */
	uint64_t counts[2];          /* pairs in each list */
};

static int
buf_reserve(struct chain_buf *b, size_t more)
{
	size_t cap;
	uint8_t *p;

	if (b->cap - b->len >= more)
		return 0;
	if (more > SIZE_MAX / 2 - b->len)
		return -1;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < more)
		cap *= 2;
	if ((p = realloc(b->p, cap)) == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void
put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* Room was reserved by the caller (buf_reserve): the encoders cannot fail.  Field lengths are at most INT_MAX
 * (SQLite's limit, and the callers' checks), so a u32 prefix holds them. */
static void
put_field(struct chain_buf *b, const void *bytes, size_t len)
{
	put_be(b->p + b->len, (uint64_t)len, 4);
	if (len > 0)
		memcpy(b->p + b->len + 4, bytes, len);
	b->len += 4 + len;
}

static void
put_int(struct chain_buf *b, int64_t v)
{
	put_be(b->p + b->len, 8, 4);
	put_be(b->p + b->len + 4, (uint64_t)v, 8);
	b->len += 12;
}

struct chain *
chain_new(const char *label, struct xba_error *err)
{
	struct chain *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->label = strdup(label != NULL ? label : "journal")) == NULL) {
		free(c);
		xba_error_set(err, XBA_ENOMEM, "journal %s: out of memory", label != NULL ? label : "");
		return NULL;
	}
	if ((c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL || (c->md = EVP_MD_CTX_new()) == NULL) {
		xba_error_set(err, XBA_ECRYPTO, "journal %s: OpenSSL has no SHA-256", c->label);
		chain_free(c);
		return NULL;
	}
	return c;
}

void
chain_free(struct chain *c)
{
	if (c == NULL)
		return;
	EVP_MD_CTX_free(c->md);
	EVP_MD_free(c->sha256);
	free(c->canon.p);
	free(c->lists[0].p);
	free(c->lists[1].p);
	free(c->label);
	free(c);
}

static int
crypto_failed(struct chain *c, struct xba_error *err)
{
	return xba_error_set(err, XBA_ECRYPTO, "journal %s: cannot compute SHA-256", c->label);
}

int
chain_sha256(struct chain *c, const void *data, size_t len, uint8_t out[CHAIN_HASH_LEN], struct xba_error *err)
{
	if (EVP_DigestInit_ex2(c->md, c->sha256, NULL) != 1 || EVP_DigestUpdate(c->md, len > 0 ? data : "", len) != 1 ||
	    EVP_DigestFinal_ex(c->md, out, NULL) != 1)
		return crypto_failed(c, err);
	return 0;
}

void
chain_pairs_clear(struct chain *c)
{
	for (int i = 0; i < 2; i++) {
		c->lists[i].len = 0;
		c->counts[i] = 0;
	}
}

int
chain_pair_add(struct chain *c, bool withheld, const char *node, size_t node_len, const char *rule, size_t rule_len,
    struct xba_error *err)
{
	struct chain_buf *b = &c->lists[withheld ? 1 : 0];

	if (node_len > INT_MAX || rule_len > INT_MAX || buf_reserve(b, 8 + node_len + rule_len) != 0)
		return xba_error_set(err, XBA_ENOMEM, "journal %s: out of memory hashing an entry's recipients", c->label);
	put_field(b, node, node_len);
	put_field(b, rule, rule_len);
	c->counts[withheld ? 1 : 0]++;
	return 0;
}

int
chain_hash(struct chain *c, const uint8_t prev[CHAIN_HASH_LEN], const struct chain_entry *e,
    uint8_t out[CHAIN_HASH_LEN], struct xba_error *err)
{
	struct chain_buf *b = &c->canon;
	uint8_t count[12];

	b->len = 0;
	if (buf_reserve(b, 9 * 4 + sizeof(HASH_DOMAIN) + 2 * CHAIN_HASH_LEN + 5 * 12 + e->alert_id_len +
	    e->origin_len + e->rules_version_len) != 0)
		return xba_error_set(err, XBA_ENOMEM, "journal %s: out of memory hashing seq %llu", c->label,
		    (unsigned long long)e->seq);
	put_field(b, HASH_DOMAIN, sizeof(HASH_DOMAIN) - 1);
	put_field(b, prev, CHAIN_HASH_LEN);
	put_int(b, (int64_t)e->seq);
	put_field(b, e->alert_id, e->alert_id_len);
	put_field(b, e->origin, e->origin_len);
	put_int(b, e->sent_ms);
	put_int(b, e->received_ms);
	put_int(b, e->msg_type);
	put_int(b, e->emergency);
	put_field(b, e->envelope_sha256, CHAIN_HASH_LEN);
	put_field(b, e->rules_version, e->rules_version_len);
	if (EVP_DigestInit_ex2(c->md, c->sha256, NULL) != 1 || EVP_DigestUpdate(c->md, b->p, b->len) != 1)
		return crypto_failed(c, err);
	for (int i = 0; i < 2; i++) {
		struct chain_buf cb = { count, 0, sizeof(count) };

		put_int(&cb, (int64_t)c->counts[i]);
		if (EVP_DigestUpdate(c->md, count, sizeof(count)) != 1 ||
		    (c->lists[i].len > 0 && EVP_DigestUpdate(c->md, c->lists[i].p, c->lists[i].len) != 1))
			return crypto_failed(c, err);
	}
	if (EVP_DigestFinal_ex(c->md, out, NULL) != 1)
		return crypto_failed(c, err);
	return 0;
}

/* ---- the walk ---- */

/* SQLite's "malformed" (a page that does not parse, a file cut short) is the file's own damage, which an audit
 * reports as a verdict (exit 1), not as a file it could not be given (exit 2).  "Not a database" (no SQLite header)
 * is the wrong file. */
static bool
damaged(int sqlite_rc)
{
	return (sqlite_rc & 0xff) == SQLITE_CORRUPT;
}

/* step_rc: what the failed call returned, which the connection's error code may no longer be (the walk steps its
 * other statement before it looks). */
static int
step_failed(struct chain *c, sqlite3 *db, int step_rc, const char *op, struct xba_error *err)
{
	if (damaged(step_rc) || damaged(sqlite3_errcode(db)))
		return xba_error_set(err, XBA_EDAMAGED, "journal %s: %s: %s (the file is damaged)", c->label, op,
		    damaged(sqlite3_errcode(db)) ? sqlite3_errmsg(db) : sqlite3_errstr(step_rc));
	return xba_error_set(err, sqlite3_errcode(db) == SQLITE_NOMEM ? XBA_ENOMEM : XBA_EIO, "journal %s: %s: %s",
	    c->label, op, sqlite3_errmsg(db));
}

static int
db_failed(struct chain *c, sqlite3 *db, const char *op, struct xba_error *err)
{
	return step_failed(c, db, sqlite3_errcode(db), op, err);
}

/* detail, when not empty, follows the verdict: the alert the broken entry claims to be, or the seqs missing
 * before it.  Both come from the very rows that no longer chain, so they say where to look, not what was there. */
static int
tampered(struct chain *c, struct chain_walk_result *out, uint64_t seq, const char *detail, struct xba_error *err)
{
	out->broken_seq = seq;
	return xba_error_set(err, XBA_EDECODE,
	    "journal %s: journal entry seq %llu: hash does not match (altered, inserted or deleted entry%s%s)",
	    c->label, (unsigned long long)seq, detail[0] != '\0' ? "; " : "", detail);
}

/* Text from a row that failed its check, for a message: whoever altered the row chose its bytes, so only the
 * characters of an alert id or a node id pass (a terminal escape would not). */
static const char *
plain(char *out, size_t size, const char *text, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < size; i++) {
		char ch = text[i];

		out[n++] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		    ch == '_' || ch == '.' ? ch : '?';
	}
	out[n] = '\0';
	return out;
}

static const char *
col_text(sqlite3_stmt *st, int col, size_t *len)
{
	const char *t = (const char *)sqlite3_column_text(st, col);

	*len = (size_t)sqlite3_column_bytes(st, col);
	return t != NULL ? t : "";
}

/* meta base_seq and base_hash: 0 and zeros before any prune. */
static int
read_base(struct chain *c, sqlite3 *db, uint64_t *base_seq, uint8_t base_hash[CHAIN_HASH_LEN],
    struct xba_error *err)
{
	static const char sql[] = "SELECT key, value FROM meta WHERE key IN ('base_seq', 'base_hash')";
	sqlite3_stmt *st;
	int rc;

	*base_seq = 0;
	memset(base_hash, 0, CHAIN_HASH_LEN);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_failed(c, db, "audit: read meta", err);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);

		if (key != NULL && strcmp(key, "base_seq") == 0) {
			if (sqlite3_column_int64(st, 1) < 0) {
				sqlite3_finalize(st);
				return xba_error_set(err, XBA_EDECODE, "journal %s: meta base_seq is negative", c->label);
			}
			*base_seq = (uint64_t)sqlite3_column_int64(st, 1);
		} else if (key != NULL) {
			if (sqlite3_column_bytes(st, 1) != CHAIN_HASH_LEN) {
				sqlite3_finalize(st);
				return xba_error_set(err, XBA_EDECODE, "journal %s: meta base_hash is not a %d-byte hash",
				    c->label, CHAIN_HASH_LEN);
			}
			memcpy(base_hash, sqlite3_column_blob(st, 1), CHAIN_HASH_LEN);
		}
	}
	if (rc != SQLITE_DONE) {
		rc = db_failed(c, db, "audit: read meta", err);
		sqlite3_finalize(st);
		return rc;
	}
	sqlite3_finalize(st);
	return 0;
}

/*
 * Walks alerts and deliveries side by side, both in seq order (a merge join: one pass over each table, no lookup
 * per entry).  Every entry's hash is recomputed from its stored columns (the envelope hashed afresh) and its
 * delivery rows.
 */
int
chain_walk(struct chain *c, sqlite3 *db, chain_visit_fn visit, void *ctx, struct chain_walk_result *out,
    struct xba_error *err)
{
	static const char alerts_sql[] = "SELECT seq, alert_id, origin, sent_ms, received_ms, msg_type, emergency,"
					 " envelope, envelope_sha256, rules_version, recipients, prev_hash, hash"
					 " FROM alerts ORDER BY seq";
	static const char deliveries_sql[] = "SELECT seq, node, rule, state FROM deliveries ORDER BY seq, node";
	sqlite3_stmt *sa = NULL, *sd = NULL;
	uint8_t prev[CHAIN_HASH_LEN], hash[CHAIN_HASH_LEN], envelope_sha256[CHAIN_HASH_LEN];
	bool have_d;
	int rc, drc;

	assert(c != NULL && db != NULL && out != NULL);
	memset(out, 0, sizeof(*out));
	if ((rc = read_base(c, db, &out->base_seq, prev, err)) != 0)
		return rc;
	memcpy(out->base_hash, prev, CHAIN_HASH_LEN);
	memcpy(out->tip, prev, CHAIN_HASH_LEN);
	if (sqlite3_prepare_v2(db, alerts_sql, -1, &sa, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, deliveries_sql, -1, &sd, NULL) != SQLITE_OK) {
		rc = db_failed(c, db, "audit: read the journal (is this file an XBA journal?)", err);
		goto out;
	}
	drc = sqlite3_step(sd);
	have_d = drc == SQLITE_ROW;
	while ((rc = sqlite3_step(sa)) == SQLITE_ROW) {
		struct chain_entry e = { 0 };
		const uint8_t *envelope;
		size_t envelope_len;

		e.seq = (uint64_t)sqlite3_column_int64(sa, 0);
		/* Delivery rows of a seq with no alert row: the alert row was deleted. */
		if (have_d && (uint64_t)sqlite3_column_int64(sd, 0) < e.seq) {
			rc = tampered(c, out, (uint64_t)sqlite3_column_int64(sd, 0), "its delivery rows are there, its "
			    "entry is not", err);
			goto out;
		}
		chain_pairs_clear(c);
		while (have_d && (uint64_t)sqlite3_column_int64(sd, 0) == e.seq) {
			size_t node_len, rule_len;
			const char *node = col_text(sd, 1, &node_len), *rule = col_text(sd, 2, &rule_len);

			if ((rc = chain_pair_add(c, sqlite3_column_int(sd, 3) == CHAIN_DELIVERY_WITHHELD, node, node_len,
			    rule, rule_len, err)) != 0)
				goto out;
			drc = sqlite3_step(sd);
			have_d = drc == SQLITE_ROW;
		}
		if (!have_d && drc != SQLITE_DONE) {
			rc = step_failed(c, db, drc, "audit: read deliveries", err);
			goto out;
		}
		e.alert_id = col_text(sa, 1, &e.alert_id_len);
		e.origin = col_text(sa, 2, &e.origin_len);
		e.sent_ms = sqlite3_column_int64(sa, 3);
		e.received_ms = sqlite3_column_int64(sa, 4);
		e.msg_type = sqlite3_column_int64(sa, 5);
		e.emergency = sqlite3_column_int64(sa, 6);
		envelope = sqlite3_column_blob(sa, 7);
		envelope_len = (size_t)sqlite3_column_bytes(sa, 7);
		if ((rc = chain_sha256(c, envelope, envelope_len, envelope_sha256, err)) != 0)
			goto out;
		e.envelope_sha256 = envelope_sha256;
		e.rules_version = col_text(sa, 9, &e.rules_version_len);
		e.n_recipients = c->counts[0];
		e.n_withheld = c->counts[1];
		if ((rc = chain_hash(c, prev, &e, hash, err)) != 0)
			goto out;
		if (sqlite3_column_bytes(sa, 8) != CHAIN_HASH_LEN ||
		    memcmp(sqlite3_column_blob(sa, 8), envelope_sha256, CHAIN_HASH_LEN) != 0 ||
		    (uint64_t)sqlite3_column_int64(sa, 10) != e.n_recipients ||
		    sqlite3_column_bytes(sa, 11) != CHAIN_HASH_LEN ||
		    memcmp(sqlite3_column_blob(sa, 11), prev, CHAIN_HASH_LEN) != 0 ||
		    sqlite3_column_bytes(sa, 12) != CHAIN_HASH_LEN ||
		    memcmp(sqlite3_column_blob(sa, 12), hash, CHAIN_HASH_LEN) != 0) {
			/* The broker numbers entries without gaps (a prune removes only the oldest, and says so in
			 * meta): a gap before the broken entry is the deleted one. */
			uint64_t expected = out->checked > 0 ? out->last_seq + 1 : out->base_seq + 1;
			char detail[160];

			if (e.seq > expected + 1)
				snprintf(detail, sizeof(detail), "seqs %llu..%llu are missing before it",
				    (unsigned long long)expected, (unsigned long long)(e.seq - 1));
			else if (e.seq == expected + 1)
				snprintf(detail, sizeof(detail), "seq %llu is missing before it",
				    (unsigned long long)expected);
			else {
				char id[65], origin[33];

				snprintf(detail, sizeof(detail), "it says alert %s from %s",
				    plain(id, sizeof(id), e.alert_id, e.alert_id_len),
				    plain(origin, sizeof(origin), e.origin, e.origin_len));
			}
			rc = tampered(c, out, e.seq, detail, err);
			goto out;
		}
		e.prev_hash = prev;
		e.hash = hash;
		if (visit != NULL && (rc = visit(ctx, &e, envelope != NULL ? envelope : (const uint8_t *)"",
		    envelope_len, err)) != 0)
			goto out;
		memcpy(prev, hash, CHAIN_HASH_LEN);
		memcpy(out->tip, hash, CHAIN_HASH_LEN);
		if (out->checked++ == 0)
			out->first_seq = e.seq;
		out->last_seq = e.seq;
	}
	if (rc != SQLITE_DONE) {
		rc = step_failed(c, db, rc, "audit: read alerts", err);
		goto out;
	}
	/* Delivery rows after the last entry: an entry deleted from the tail, its rows left behind. */
	if (have_d) {
		rc = tampered(c, out, (uint64_t)sqlite3_column_int64(sd, 0), "its delivery rows are there, its entry is "
		    "not", err);
		goto out;
	}
	if (drc != SQLITE_DONE) {
		rc = step_failed(c, db, drc, "audit: read deliveries", err);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(sa);
	sqlite3_finalize(sd);
	return rc;
}

/*
 * SQLite's own check of the file, which the chain walk does not make: the walk reads the tables in seq order and
 * never an index or a free page, so a backup whose alert-id index holds one bad sector passed it, and the broker
 * restored from it refused every publish ("find alert: database disk image is malformed").
 *
 * integrity_check rather than quick_check: quick_check parses every page (O(N)) but does not check that each index
 * holds exactly its table's rows, and a wrong index is what the broker's duplicate check and its lookups by alert id
 * read.  integrity_check adds one index lookup per row (O(N log N)); on a journal of 120 000 entries (82 MB) it took
 * 0.7 s against quick_check's 0.25 s and the walk's 0.36 s, which an audit can afford.  At most CHECK_PROBLEMS
 * problems are listed: the first says what is damaged, the count how badly.
 */
#define CHECK_PROBLEMS 10
#define CHECK_SQL_(n) "PRAGMA integrity_check(" #n ")"
#define CHECK_SQL(n) CHECK_SQL_(n)

/* Counts the problems in one row of integrity_check, one a line (a row may hold several, the first after a
 * "*** in database main ***" banner), and keeps the first in first (empty until one is found). */
static int
count_problems(const char *row, char *first, size_t size)
{
	static const char banner[] = "*** in database main ***";
	int problems = 0;

	while (*row != '\0') {
		size_t len = strcspn(row, "\n");

		if (len > 0 && strncmp(row, banner, sizeof(banner) - 1) != 0) {
			if (problems++ == 0 && first[0] == '\0') {
				size_t n = 0;

				for (size_t i = 0; i < len && n + 1 < size; i++)
					first[n++] = (unsigned char)row[i] < 0x20 || row[i] == 0x7f ? ' ' : row[i];
				first[n] = '\0';
			}
		}
		row += len;
		if (*row == '\n')
			row++;
	}
	return problems;
}

int
chain_check_file(struct chain *c, sqlite3 *db, struct xba_error *err)
{
	sqlite3_stmt *st;
	char first[300] = "";
	int problems = 0, rc;

	assert(c != NULL && db != NULL);
	if (sqlite3_prepare_v2(db, CHECK_SQL(CHECK_PROBLEMS), -1, &st, NULL) != SQLITE_OK)
		return db_failed(c, db, "audit: SQLite's integrity_check", err);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(st, 0);

		if (line != NULL && strcmp(line, "ok") == 0)
			continue;
		problems += count_problems(line != NULL ? line : "?", first, sizeof(first));
	}
	/* On a page that does not parse, the check lists it and then stops with "malformed" itself. */
	if (rc != SQLITE_DONE && (!damaged(rc) || problems == 0)) {
		rc = step_failed(c, db, rc, "audit: SQLite's integrity_check", err);
		sqlite3_finalize(st);
		return rc;
	}
	sqlite3_finalize(st);
	if (problems == 0)
		return 0;
	return xba_error_set(err, XBA_EDAMAGED, "journal %s: the file is damaged: SQLite's integrity_check says: %s "
	    "(%s%d problem%s%s)", c->label, first, problems >= CHECK_PROBLEMS || rc != SQLITE_DONE ? "at least " : "",
	    problems, problems == 1 ? "" : "s", rc != SQLITE_DONE ? ", and then it stopped" : "");
}

const char *
chain_reason(const char *path, const char *msg)
{
	size_t n = strlen(path);

	if (strncmp(msg, "journal ", 8) == 0 && strncmp(msg + 8, path, n) == 0 && strncmp(msg + 8 + n, ": ", 2) == 0)
		return msg + 8 + n + 2;
	return msg;
}

/* ---- opening a file to audit ---- */

/* The file may come from the very insider the audit is looking for: SQLite's settings for a database of unknown
 * origin.  No schema-defined view or trigger may call functions with side effects, no writes through any back door,
 * and every b-tree cell's size checked as it is read. */
static int
safe_reader(sqlite3 *db)
{
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA cell_size_check = ON", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	return 0;
}

/* The first read of the file: SQLite parses the header and the schema, and on a WAL-mode file opens (creating
 * them if absent) the -wal and -shm files beside it.  An SQLite result code. */
static int
read_version(sqlite3 *db, int64_t *version)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL)) != SQLITE_OK)
		return rc;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*version = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* "file:PATH?immutable=1", PATH percent-encoded but for its unreserved bytes and slashes (one leading slash at
 * most: "file://" would start an authority).  NULL when out of memory. */
static char *
immutable_uri(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(path), n;
	char *uri = malloc(sizeof("file:") + 3 * len + sizeof("?immutable=1"));

	if (uri == NULL)
		return NULL;
	while (path[0] == '/' && path[1] == '/')
		path++;
	memcpy(uri, "file:", 5);
	n = 5;
	for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '/' ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			uri[n++] = (char)*p;
		} else {
			uri[n++] = '%';
			uri[n++] = hex[*p >> 4];
			uri[n++] = hex[*p & 15];
		}
	}
	memcpy(uri + n, "?immutable=1", sizeof("?immutable=1"));
	return uri;
}

/* Bytes in PATH-wal: changes committed but not yet copied into the file, which an immutable reading would miss. */
static long long
wal_bytes(const char *path)
{
	char wal[4096];
	struct stat sb;

	if (snprintf(wal, sizeof(wal), "%s-wal", path) >= (int)sizeof(wal) || stat(wal, &sb) != 0)
		return 0;
	return (long long)sb.st_size;
}

/* A file with SQLite's header whose size no page size explains: cut short (SQLite reads a file shorter than its
 * header as an empty database, which would pass for "not a journal"). */
static bool
header_cut_short(const char *path, long long *size)
{
	unsigned char h[100];
	struct stat sb;
	size_t got = 0;
	unsigned page;
	FILE *f;

	if (stat(path, &sb) != 0 || (f = fopen(path, "rb")) == NULL)
		return false;
	got = fread(h, 1, sizeof(h), f);
	fclose(f);
	*size = (long long)sb.st_size;
	if (got < 16 || memcmp(h, "SQLite format 3", 16) != 0)
		return false;
	if (got < sizeof(h))
		return true;
	page = (unsigned)h[16] << 8 | h[17];
	page = page == 1 ? 65536 : page;
	return page < 512 || sb.st_size % page != 0;
}

int
chain_open_readonly(const char *path, sqlite3 **db, bool *immutable, struct xba_error *err)
{
	sqlite3_stmt *st = NULL;
	int64_t version = -1;
	long long size = 0;
	char *uri = NULL;
	int rc;

	*db = NULL;
	if (immutable != NULL)
		*immutable = false;
	/* READONLY: an audit must not create a file that is not there, nor upgrade or checkpoint one that is. */
	rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = xba_error_set(err, XBA_EIO, "journal %s: cannot open: %s", path,
		    *db != NULL ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
		goto fail;
	}
	if (safe_reader(*db) != 0) {
		rc = xba_error_set(err, XBA_EIO, "journal %s: cannot set up a safe reader: %s", path, sqlite3_errmsg(*db));
		goto fail;
	}
	rc = read_version(*db, &version);
	/*
	 * A WAL-mode file (every journal is one) needs its -shm beside it even to be read, and SQLite creates it, with
	 * an empty -wal, when they are absent: in a directory the auditor may not write, that fails.  The fallback
	 * reads the file as immutable: no -shm, no lock, the -wal ignored.  Right for a copy, which nothing writes; not
	 * for the live file, whose broker would change pages under a reader that holds no lock, hence only a fallback.
	 * A -wal with committed changes in it would be ignored too, so that case is refused, not read half.
	 */
	if ((rc & 0xff) == SQLITE_READONLY || (rc & 0xff) == SQLITE_CANTOPEN) {
		long long wal = wal_bytes(path);

		if (wal > 0) {
			rc = xba_error_set(err, XBA_EIO, "journal %s: cannot read: %s, and %s-wal holds %lld bytes of "
			    "changes that a reading without it would miss: copy the file and its -wal to a directory you "
			    "may write, and audit the copy", path, sqlite3_errmsg(*db), path, wal);
			goto fail;
		}
		sqlite3_close(*db);
		*db = NULL;
		if ((uri = immutable_uri(path)) == NULL) {
			rc = xba_error_set(err, XBA_ENOMEM, "journal %s: out of memory", path);
			goto fail;
		}
		if ((rc = sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL)) !=
		    SQLITE_OK) {
			rc = xba_error_set(err, XBA_EIO, "journal %s: cannot open: %s", path,
			    *db != NULL ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
			goto fail;
		}
		if (safe_reader(*db) != 0) {
			rc = xba_error_set(err, XBA_EIO, "journal %s: cannot set up a safe reader: %s", path,
			    sqlite3_errmsg(*db));
			goto fail;
		}
		rc = read_version(*db, &version);
		if (rc == SQLITE_OK && immutable != NULL)
			*immutable = true;
	}
	if (rc != SQLITE_OK) {
		/* The header says SQLite and the schema or a page does not parse: the file is damaged, which is a
		 * verdict on it.  "Not a database" is a file without SQLite's header: the wrong file. */
		if ((rc & 0xff) == SQLITE_CORRUPT)
			rc = xba_error_set(err, XBA_EDAMAGED, "journal %s: the file is damaged: SQLite cannot read its "
			    "schema: %s", path, sqlite3_errmsg(*db));
		else
			rc = xba_error_set(err, XBA_EIO, "journal %s: cannot read (is it an XBA journal?): %s", path,
			    sqlite3_errmsg(*db));
		goto fail;
	}
	/* Backups of both kinds of file sit side by side (docs/operations.md section 7): name the wrong one. */
	if (sqlite3_prepare_v2(*db, "SELECT count(*) FILTER (WHERE name = 'alerts'), count(*) FILTER (WHERE name IN"
	    " ('inbox', 'outgoing')) FROM sqlite_master WHERE type = 'table'", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 0 && sqlite3_column_int(st, 1) > 0) {
		rc = xba_error_set(err, XBA_EDECODE, "journal %s: this is an xba-agent's store (it has an inbox and an "
		    "outbox), not the broker's journal: audit the broker's journal.sqlite, and check a country's agent "
		    "against it with --agent-records", path);
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (version < 1 && header_cut_short(path, &size)) {
		rc = xba_error_set(err, XBA_EDAMAGED, "journal %s: the file is damaged: it starts with SQLite's header "
		    "but is cut short (%lld bytes)", path, size);
		goto fail;
	}
	if (version < 1) {
		rc = xba_error_set(err, XBA_EDECODE, "journal %s: not an XBA journal (no schema version)", path);
		goto fail;
	}
	if (version > CHAIN_SCHEMA_MAX) {
		rc = xba_error_set(err, XBA_EDECODE,
		    "journal %s: schema version %lld is newer than this program reads (%d): audit it with the xba of "
		    "the broker that wrote it", path, (long long)version, CHAIN_SCHEMA_MAX);
		goto fail;
	}
	free(uri);
	return 0;
fail:
	free(uri);
	sqlite3_finalize(st);
	sqlite3_close(*db);
	*db = NULL;
	return rc;
}
