/*
 * test_store.c — the agent's store (agents/store.c): the outbox keeps submission order and survives a reopen,
 * answers from the broker move rows out of it exactly once, the inbox deduplicates by alert id, filters select
 * what `xba watch` and `xba history` ask for, an officer's acknowledgement and its ACK alert commit together,
 * quarantine and receipts are kept, a quarantined delivery is listed newest first and released once and the count
 * follows, a schema-1 store (before releases) is upgraded with its quarantine intact, retention deletes only
 * finished rows older than its cutoff (never an unacknowledged alert or the outbox) and in bounded batches, the
 * delivery cursor is persisted only with its transaction, and a write that fails (disk full) refuses cleanly while
 * the next one succeeds.
 *
 * Tests run as root in CI, so a full disk is made with RLIMIT_FSIZE (writes past the limit fail with EFBIG, which
 * root does not bypass), as tests/unit/test_journal.c does.
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "check.h"
#include "error.h"
#include "store.h"

static char workdir[256];
static int store_counter;

static const char *
new_path(char *buf, size_t size)
{
	snprintf(buf, size, "%s/store-%d.db", workdir, ++store_counter);
	return buf;
}

static const uint8_t envelope_a[] = { 0x0a, 0x03, 'a', 'b', 'c', 0x00, 0xff, 0x12 };
static const uint8_t envelope_b[] = { 0x0a, 0x01, 'z', 0x12, 0x00 };

/* An alert id from a number: distinct, canonical-looking UUIDs. */
static const char *
uuid_of(int n, char buf[40])
{
	snprintf(buf, 40, "00000000-0000-4000-8000-%012d", n);
	return buf;
}

static struct store_alert_fields
fields(const char *id, const char *origin, int category, int severity)
{
	struct store_alert_fields f;

	memset(&f, 0, sizeof(f));
	f.alert_id = id;
	f.origin = origin;
	f.author = "officer-1";
	f.sent_ms = 1700000000000;
	f.msg_type = 1;
	f.category = category;
	f.severity = severity;
	f.tlp = 3;
	f.status = 1;
	return f;
}

/* Collects the alert ids a query returns, in order. */
struct collected {
	char ids[64][40];
	bool acked[64];
	size_t n;
};

static int
collect(void *ctx, const struct store_row *row)
{
	struct collected *c = ctx;

	if (c->n < 64) {
		snprintf(c->ids[c->n], sizeof(c->ids[c->n]), "%s", row->alert_id);
		c->acked[c->n] = row->acknowledged;
		c->n++;
	}
	return 0;
}

static int
stop_after_first(void *ctx, const struct store_row *row)
{
	(void)row;
	(*(int *)ctx)++;
	return 7;
}

static void
test_outbox_order_and_reopen(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], id[5][40];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	struct store_row row;
	struct store_stats stats;
	int64_t rid[5], after = 0;
	struct stat st;

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	CHECK(t, stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	for (int i = 0; i < 5; i++) {
		struct store_alert_fields f = fields(uuid_of(i + 1, id[i]), "NER", 2, 4);

		CHECK_CODE(t, store_outbox_add(s, &f, i % 2 ? envelope_b : envelope_a,
				  i % 2 ? sizeof(envelope_b) : sizeof(envelope_a), 1000 + i, &rid[i], &err), 0);
		CHECK(t, i == 0 || rid[i] > rid[i - 1]);
	}
	/* A second submission of the same alert id is refused, not queued twice. */
	{
		struct store_alert_fields f = fields(id[2], "NER", 2, 4);

		CHECK_CODE(t, store_outbox_add(s, &f, envelope_a, sizeof(envelope_a), 2000, NULL, &err), XBA_EDUPLICATE);
		CHECK_CONTAINS(t, err.msg, id[2]);
	}
	/* Oldest first, with the exact bytes. */
	for (int i = 0; i < 5; i++) {
		CHECK_CODE(t, store_outbox_next(s, after, &row, &err), 0);
		CHECK(t, row.id == rid[i] && strcmp(row.alert_id, id[i]) == 0 && row.state == STORE_QUEUED);
		CHECK(t, row.envelope_len == (i % 2 ? sizeof(envelope_b) : sizeof(envelope_a)));
		CHECK(t, memcmp(row.envelope, i % 2 ? envelope_b : envelope_a, row.envelope_len) == 0);
		after = row.id;
		store_row_clear(&row);
	}
	CHECK_CODE(t, store_outbox_next(s, after, &row, &err), XBA_ENOTFOUND);

	/* Answers: 2 accepted, 4 refused; the rest stays queued in order. */
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_outbox_accepted(s, rid[1], 1042, 5, 1, 3000, &err), 0);
	CHECK_CODE(t, store_outbox_refused(s, rid[3], 16, "observers may not publish smuggling", "category", 3000, &err),
	    0);
	/* A second answer for the same row is refused: a row leaves the outbox once. */
	CHECK_CODE(t, store_outbox_accepted(s, rid[1], 1042, 5, 15, 3001, &err), XBA_ENOTFOUND);
	CHECK_CODE(t, store_commit(s, &err), 0);
	store_close(s);

	/* Durability across a reopen. */
	s = store_open(path, &err);
	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	{
		int64_t expect[3] = { rid[0], rid[2], rid[4] };

		after = 0;
		for (int i = 0; i < 3; i++) {
			CHECK_CODE(t, store_outbox_next(s, after, &row, &err), 0);
			CHECK(t, row.id == expect[i]);
			after = row.id;
			store_row_clear(&row);
		}
		CHECK_CODE(t, store_outbox_next(s, after, &row, &err), XBA_ENOTFOUND);
	}
	CHECK_CODE(t, store_stats(s, &stats, &err), 0);
	CHECK(t, stats.outbox_depth == 3 && stats.refused == 1);
	/* The history keeps every outgoing row with its state, newest first. */
	{
		struct collected c = { 0 };

		CHECK_CODE(t, store_outgoing_query(s, NULL, true, 100, collect, &c, &err), 0);
		CHECK(t, c.n == 5 && strcmp(c.ids[0], id[4]) == 0 && strcmp(c.ids[4], id[0]) == 0);
	}
	store_close(s);
}

static int
check_outgoing_rows(void *ctx, const struct store_row *row)
{
	int *bad = ctx;

	if (row->state == STORE_ACCEPTED && (row->seq != 77 || row->recipients != 3 || row->result != 15))
		(*bad)++;
	if (row->state == STORE_REFUSED && (row->result != 18 || strcmp(row->field, "addressees") != 0 ||
	    strstr(row->message, "TLP:RED") == NULL))
		(*bad)++;
	if (row->state == STORE_QUEUED)
		(*bad)++;
	return 0;
}

/*
 * After a restore: what was accepted goes back to the outbox with its old seq kept; an expired one refused on its
 * second publish stays accepted; the last accepted alert named in Hello is looked for only among rows accepted
 * after the restore (a row too old to be requeued named its old journal's seq at every restart).
 */
static void
test_requeue_after_restore(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], id[3][40], last[40];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	int64_t rid[3];
	uint64_t count = 0, seq = 0;

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	for (int i = 0; i < 3; i++) {
		struct store_alert_fields f = fields(uuid_of(i + 1, id[i]), "NER", 2, 4);

		CHECK_CODE(t, store_outbox_add(s, &f, envelope_a, sizeof(envelope_a), 1000 + i, &rid[i], &err), 0);
	}
	CHECK_CODE(t, store_begin(s, &err), 0);
	for (int i = 0; i < 3; i++) /* row 0 accepted long ago (too old to requeue), rows 1 and 2 lately */
		CHECK_CODE(t, store_outbox_accepted(s, rid[i], (uint64_t)(50 + i), 3, 1, i == 0 ? 100 : 5000, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	CHECK_CODE(t, store_outgoing_last_accepted(s, &seq, last, sizeof(last), &err), 0);
	CHECK(t, seq == 52 && strcmp(last, id[2]) == 0);
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_outgoing_requeue_after(s, 0, 1000, 6000, &count, &err), 0);
	CHECK(t, count == 2);
	/* Row 1 expired meanwhile: the broker refuses it ALERT_EXPIRED; it stays accepted, without its seq. */
	CHECK_CODE(t, store_outbox_republish_refused(s, rid[1], &err), 0);
	CHECK_CODE(t, store_outbox_republish_refused(s, rid[1], &err), XBA_ENOTFOUND); /* not queued any more */
	CHECK_CODE(t, store_commit(s, &err), 0);
	{
		struct store_row row;

		CHECK_CODE(t, store_outgoing_get(s, id[1], &row, &err), 0);
		CHECK(t, row.state == STORE_ACCEPTED && row.seq == 0); /* seq 51 is another alert's now */
		store_row_clear(&row);
	}
	/* Nothing accepted since the restore: no last accepted alert (row 0's old seq is not named). */
	CHECK_CODE(t, store_outgoing_last_accepted(s, &seq, last, sizeof(last), &err), 0);
	CHECK(t, seq == 0 && strcmp(last, "") == 0);
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_outbox_accepted(s, rid[2], 7, 3, 15, 6200, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	CHECK_CODE(t, store_outgoing_last_accepted(s, &seq, last, sizeof(last), &err), 0);
	CHECK(t, seq == 7 && strcmp(last, id[2]) == 0);
	store_close(s);
}

static void
test_outgoing_fields(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], id[2][40];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	int64_t rid[2];
	int bad = 0;

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		struct store_alert_fields f = fields(uuid_of(20 + i, id[i]), "NER", 4, 5);

		CHECK_CODE(t, store_outbox_add(s, &f, envelope_a, sizeof(envelope_a), 500, &rid[i], &err), 0);
	}
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_outbox_accepted(s, rid[0], 77, 3, 15, 600, &err), 0);
	CHECK_CODE(t, store_outbox_refused(s, rid[1], 18, "TLP:RED needs addressees", "addressees", 600, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	CHECK_CODE(t, store_outgoing_query(s, NULL, true, 10, check_outgoing_rows, &bad, &err), 0);
	CHECK(t, bad == 0);
	/* One sent alert by its id (xba history --id --outgoing); an inbox id is not one of them. */
	{
		struct store_row row;

		CHECK_CODE(t, store_outgoing_get(s, id[1], &row, &err), 0);
		CHECK(t, row.outgoing && row.id == rid[1] && strcmp(row.alert_id, id[1]) == 0 &&
		    row.envelope_len == sizeof(envelope_a) && memcmp(row.envelope, envelope_a, sizeof(envelope_a)) == 0);
		store_row_clear(&row);
		CHECK_CODE(t, store_inbox_get(s, id[1], &row, &err), XBA_ENOTFOUND);
		CHECK_CODE(t, store_outgoing_get(s, "00000000-0000-4000-8000-000000000000", &row, &err), XBA_ENOTFOUND);
		CHECK_CONTAINS(t, err.msg, "outgoing");
	}
	store_close(s);
}

/* The updates and cancels stored after a row, in row order whatever their submission times (a clock that stepped
 * back), the refused ones and everything else left out: what the agent's check of an overtaken update reads. */
static void
test_later_versions(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], id[6][40];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	static const int types[6] = { 1, 2, 4, 3, 2, 1 };      /* alert, update, ack, cancel, update (refused), alert */
	static const int64_t submitted[6] = { 5000, 1000, 6000, 2000, 7000, 8000 };
	struct collected got = { 0 };
	int64_t rid[6];

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	for (int i = 0; i < 6; i++) {
		struct store_alert_fields f = fields(uuid_of(40 + i, id[i]), "NER", 2, 4);

		f.msg_type = types[i];
		CHECK_CODE(t, store_outbox_add(s, &f, envelope_a, sizeof(envelope_a), submitted[i], &rid[i], &err), 0);
	}
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_outbox_refused(s, rid[4], 7, "refused", "references", 9000, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	CHECK_CODE(t, store_outgoing_later_versions(s, rid[0], collect, &got, &err), 0);
	CHECK(t, got.n == 2 && strcmp(got.ids[0], id[1]) == 0 && strcmp(got.ids[1], id[3]) == 0);
	got.n = 0;
	CHECK_CODE(t, store_outgoing_later_versions(s, rid[3], collect, &got, &err), 0);
	CHECK(t, got.n == 0);
	store_close(s);
}

static void
test_inbox_dedupe(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], id[40];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	struct store_alert_fields f;
	struct store_row row;
	struct store_stats stats;
	bool inserted;

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	f = fields(uuid_of(30, id), "DZA", 1, 3);
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_inbox_add(s, &f, envelope_a, sizeof(envelope_a), 1040, "neighbours", 5000, &inserted, &err),
	    0);
	CHECK(t, inserted);
	/* Redelivered in the same batch, and again in a later one: stored once. */
	CHECK_CODE(t, store_inbox_add(s, &f, envelope_a, sizeof(envelope_a), 1040, "neighbours", 5001, &inserted, &err),
	    0);
	CHECK(t, !inserted);
	CHECK_CODE(t, store_commit(s, &err), 0);
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_inbox_add(s, &f, envelope_b, sizeof(envelope_b), 1099, "other", 6000, &inserted, &err), 0);
	CHECK(t, !inserted);
	CHECK_CODE(t, store_commit(s, &err), 0);
	CHECK_CODE(t, store_stats(s, &stats, &err), 0);
	CHECK(t, stats.inbox_count == 1 && stats.unacknowledged == 1 && stats.last_delivery_ms == 5000);
	/* The first delivery's bytes, seq and rule are what the inbox keeps. */
	CHECK_CODE(t, store_inbox_get(s, id, &row, &err), 0);
	CHECK(t, row.seq == 1040 && strcmp(row.rule, "neighbours") == 0 && row.received_ms == 5000);
	CHECK(t, row.envelope_len == sizeof(envelope_a) && memcmp(row.envelope, envelope_a, sizeof(envelope_a)) == 0);
	CHECK(t, strcmp(row.origin, "DZA") == 0 && row.category == 1 && row.severity == 3 && row.tlp == 3);
	store_row_clear(&row);
	CHECK_CODE(t, store_inbox_get(s, "00000000-0000-4000-8000-999999999999", &row, &err), XBA_ENOTFOUND);
	CHECK_CONTAINS(t, err.msg, "not in this agent's inbox");
	store_close(s);
}

/* Collects store_records rows. */
struct records {
	uint64_t seqs[16];
	size_t lens[16];
	size_t n;
};

static int
collect_record(void *ctx, uint64_t seq, const char *alert_id, const uint8_t *envelope, size_t envelope_len)
{
	struct records *r = ctx;

	(void)alert_id;
	(void)envelope;
	if (r->n < 16) {
		r->seqs[r->n] = seq;
		r->lens[r->n] = envelope_len;
		r->n++;
	}
	return 0;
}

/* `xba audit verify --agent-records` pages through what the agent holds under a journal seq: the inbox, and the
 * sent alerts the broker accepted (not those waiting or refused). */
static void
test_records(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], id[40];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	struct store_alert_fields f;
	struct records r = { 0 };
	int64_t rid[3], last = 0;
	bool inserted;

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	CHECK_CODE(t, store_begin(s, &err), 0);
	for (int i = 0; i < 3; i++) {
		f = fields(uuid_of(70 + i, id), "DZA", 1, 3);
		CHECK_CODE(t, store_inbox_add(s, &f, envelope_a, sizeof(envelope_a), (uint64_t)(30 - i), "r", 5000 + i,
		    &inserted, &err), 0);
	}
	CHECK_CODE(t, store_commit(s, &err), 0);
	for (int i = 0; i < 3; i++) {
		f = fields(uuid_of(80 + i, id), "NER", 1, 3);
		CHECK_CODE(t, store_outbox_add(s, &f, envelope_b, sizeof(envelope_b), 500, &rid[i], &err), 0);
	}
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_outbox_accepted(s, rid[0], 41, 5, 1, 3000, &err), 0);
	CHECK_CODE(t, store_outbox_refused(s, rid[1], 7, "invalid", "info", 3001, &err), 0);
	CHECK_CODE(t, store_outbox_accepted(s, rid[2], 43, 5, 15, 3002, &err), 0); /* DUPLICATE: the original seq */
	CHECK_CODE(t, store_commit(s, &err), 0);

	/* The inbox in two pages of two, in row order (seqs as delivered: an emergency may come first). */
	CHECK_CODE(t, store_records(s, false, 0, 2, collect_record, &r, &last, &err), 0);
	CHECK(t, r.n == 2 && r.seqs[0] == 30 && r.seqs[1] == 29 && r.lens[0] == sizeof(envelope_a));
	CHECK_CODE(t, store_records(s, false, last, 2, collect_record, &r, &last, &err), 0);
	CHECK(t, r.n == 3 && r.seqs[2] == 28);
	CHECK_CODE(t, store_records(s, false, last, 2, collect_record, &r, &last, &err), 0);
	CHECK(t, r.n == 3);
	/* Sent: only what the broker accepted, with its seq. */
	memset(&r, 0, sizeof(r));
	CHECK_CODE(t, store_records(s, true, 0, 100, collect_record, &r, &last, &err), 0);
	CHECK(t, r.n == 2 && r.seqs[0] == 41 && r.seqs[1] == 43 && r.lens[1] == sizeof(envelope_b));
	store_close(s);
}

static void
test_filters(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], id[6][40];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	/* origin, category, severity, received_ms */
	static const struct {
		const char *origin;
		int category, severity;
		int64_t received;
	} rows[6] = {
		{ "DZA", 1, 2, 100 }, { "LBY", 4, 5, 200 }, { "DZA", 4, 3, 300 },
		{ "TCD", 2, 4, 400 }, { "LBY", 5, 1, 500 }, { "DZA", 2, 5, 600 },
	};
	struct collected c;
	bool inserted;

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	CHECK_CODE(t, store_begin(s, &err), 0);
	for (int i = 0; i < 6; i++) {
		struct store_alert_fields f = fields(uuid_of(40 + i, id[i]), rows[i].origin, rows[i].category,
		    rows[i].severity);

		CHECK_CODE(t, store_inbox_add(s, &f, envelope_a, sizeof(envelope_a), 100 + (uint64_t)i, "r",
				  rows[i].received, &inserted, &err), 0);
	}
	CHECK_CODE(t, store_commit(s, &err), 0);

	/* Everything, oldest first and newest first, and a limit. */
	memset(&c, 0, sizeof(c));
	CHECK_CODE(t, store_inbox_query(s, NULL, false, 100, collect, &c, &err), 0);
	CHECK(t, c.n == 6 && strcmp(c.ids[0], id[0]) == 0 && strcmp(c.ids[5], id[5]) == 0);
	memset(&c, 0, sizeof(c));
	CHECK_CODE(t, store_inbox_query(s, NULL, true, 2, collect, &c, &err), 0);
	CHECK(t, c.n == 2 && strcmp(c.ids[0], id[5]) == 0 && strcmp(c.ids[1], id[4]) == 0);

	/* Categories (any of), minimum severity, origins (any of), since. */
	{
		static const int health_sar[] = { 4, 5 };
		struct store_filter f = { 0 };

		f.categories = health_sar;
		f.n_categories = 2;
		memset(&c, 0, sizeof(c));
		CHECK_CODE(t, store_inbox_query(s, &f, false, 100, collect, &c, &err), 0);
		CHECK(t, c.n == 3 && strcmp(c.ids[0], id[1]) == 0 && strcmp(c.ids[1], id[2]) == 0 &&
		    strcmp(c.ids[2], id[4]) == 0);
		f.min_severity = 3;
		memset(&c, 0, sizeof(c));
		CHECK_CODE(t, store_inbox_query(s, &f, false, 100, collect, &c, &err), 0);
		CHECK(t, c.n == 2 && strcmp(c.ids[0], id[1]) == 0 && strcmp(c.ids[1], id[2]) == 0);
	}
	{
		static const char *const origins[] = { "DZA", "TCD" };
		struct store_filter f = { 0 };

		f.origins = origins;
		f.n_origins = 2;
		f.since_ms = 300;
		memset(&c, 0, sizeof(c));
		CHECK_CODE(t, store_inbox_query(s, &f, false, 100, collect, &c, &err), 0);
		CHECK(t, c.n == 3 && strcmp(c.ids[0], id[2]) == 0 && strcmp(c.ids[1], id[3]) == 0 &&
		    strcmp(c.ids[2], id[5]) == 0);
	}
	/* An origin that is a prefix of another must not match it ("DZ" is not "DZA"). */
	{
		static const char *const origins[] = { "DZ" };
		struct store_filter f = { 0 };

		f.origins = origins;
		f.n_origins = 1;
		memset(&c, 0, sizeof(c));
		CHECK_CODE(t, store_inbox_query(s, &f, false, 100, collect, &c, &err), 0);
		CHECK(t, c.n == 0);
	}
	/* A filter value that would break the list encoding is refused, not matched loosely. */
	{
		static const char *const origins[] = { "DZA,LBY" };
		struct store_filter f = { 0 };

		f.origins = origins;
		f.n_origins = 1;
		CHECK_CODE(t, store_inbox_query(s, &f, false, 100, collect, &c, &err), XBA_EINVAL);
	}
	/* A callback's non-zero return stops the walk and is returned. */
	{
		int seen = 0;

		CHECK_CODE(t, store_inbox_query(s, NULL, true, 100, stop_after_first, &seen, &err), 7);
		CHECK(t, seen == 1);
	}
	/* Pages (xba history): rows older than a row id, newest first, with the other filters still applied. */
	{
		struct store_filter f = { 0 };
		struct store_row row;

		memset(&c, 0, sizeof(c));
		CHECK_CODE(t, store_inbox_get(s, id[3], &row, &err), 0);
		f.before_id = row.id;
		store_row_clear(&row);
		CHECK_CODE(t, store_inbox_query(s, &f, true, 100, collect, &c, &err), 0);
		CHECK(t, c.n == 3 && strcmp(c.ids[0], id[2]) == 0 && strcmp(c.ids[2], id[0]) == 0);
		f.min_severity = 3;
		memset(&c, 0, sizeof(c));
		CHECK_CODE(t, store_inbox_query(s, &f, true, 1, collect, &c, &err), 0);
		CHECK(t, c.n == 1 && strcmp(c.ids[0], id[2]) == 0);
		f.before_id = 1; /* nothing is older than the first row */
		memset(&c, 0, sizeof(c));
		CHECK_CODE(t, store_inbox_query(s, &f, true, 100, collect, &c, &err), 0);
		CHECK(t, c.n == 0);
	}
	store_close(s);
}

static void
test_ack(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], id[3][40], by[132];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	struct store_alert_fields f, ackf;
	struct store_row row;
	struct store_stats stats;
	struct collected c = { 0 };
	struct store_filter unacked = { 0 };
	int64_t ack_id = 0;
	bool inserted;

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	CHECK_CODE(t, store_begin(s, &err), 0);
	for (int i = 0; i < 2; i++) {
		f = fields(uuid_of(50 + i, id[i]), "LBY", 3, 4);
		CHECK_CODE(t, store_inbox_add(s, &f, envelope_a, sizeof(envelope_a), 7 + (uint64_t)i, "r", 10, &inserted,
				  &err), 0);
	}
	CHECK_CODE(t, store_commit(s, &err), 0);
	ackf = fields(uuid_of(59, id[2]), "NER", 3, 4);
	ackf.msg_type = 4;
	ackf.author = "captain-issa";

	/* Unknown alert: nothing queued. */
	CHECK_CODE(t, store_ack(s, "00000000-0000-4000-8000-000000000777", "captain-issa", 20, &ackf, envelope_b,
			  sizeof(envelope_b), &ack_id, by, &err), XBA_ENOTFOUND);
	CHECK_CODE(t, store_stats(s, &stats, &err), 0);
	CHECK(t, stats.outbox_depth == 0);

	CHECK_CODE(t, store_ack(s, id[0], "captain-issa", 20, &ackf, envelope_b, sizeof(envelope_b), &ack_id, by, &err),
	    0);
	CHECK(t, ack_id > 0);
	CHECK_CODE(t, store_inbox_get(s, id[0], &row, &err), 0);
	CHECK(t, row.acknowledged && strcmp(row.acknowledged_by, "captain-issa") == 0 && row.acknowledged_ms == 20);
	store_row_clear(&row);
	/* The ACK alert is in the outbox, with its bytes. */
	CHECK_CODE(t, store_outbox_next(s, 0, &row, &err), 0);
	CHECK(t, row.id == ack_id && strcmp(row.alert_id, id[2]) == 0 && row.msg_type == 4);
	CHECK(t, row.envelope_len == sizeof(envelope_b));
	store_row_clear(&row);
	/* A second acknowledgement is refused and names the first officer; nothing more is queued. */
	ackf.alert_id = "00000000-0000-4000-8000-000000000060";
	CHECK_CODE(t, store_ack(s, id[0], "sgt-amina", 30, &ackf, envelope_b, sizeof(envelope_b), &ack_id, by, &err),
	    XBA_EDUPLICATE);
	CHECK(t, strcmp(by, "captain-issa") == 0);
	CHECK_CODE(t, store_stats(s, &stats, &err), 0);
	CHECK(t, stats.outbox_depth == 1 && stats.unacknowledged == 1);
	/* An ACK delivered to this node acknowledges something itself: it never counts as waiting for one. */
	CHECK_CODE(t, store_begin(s, &err), 0);
	f = fields("00000000-0000-4000-8000-000000000061", "LBY", 3, 4);
	f.msg_type = 4;
	CHECK_CODE(t, store_inbox_add(s, &f, envelope_a, sizeof(envelope_a), 9, "ack", 11, &inserted, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	CHECK_CODE(t, store_stats(s, &stats, &err), 0);
	CHECK(t, stats.unacknowledged == 1 && stats.inbox_count == 3);
	/* Unacknowledged-only filter. */
	unacked.unacknowledged_only = true;
	CHECK_CODE(t, store_inbox_query(s, &unacked, false, 100, collect, &c, &err), 0);
	CHECK(t, c.n == 1 && strcmp(c.ids[0], id[1]) == 0 && !c.acked[0]);
	/* Outgoing rows are never "unacknowledged inbox alerts". */
	memset(&c, 0, sizeof(c));
	CHECK_CODE(t, store_outgoing_query(s, &unacked, true, 100, collect, &c, &err), 0);
	CHECK(t, c.n == 0);
	store_close(s);
}

static void
test_quarantine_receipts(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	struct store_stats stats;

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_quarantine_add(s, 1050, 8, "envelope.signature: does not verify",
			  "00000000-0000-4000-8000-000000000070", "neighbours", envelope_a, sizeof(envelope_a), 99, &err),
	    0);
	CHECK_CODE(t, store_quarantine_add(s, 1051, 7, "undecodable", NULL, NULL, NULL, 0, 99, &err), 0);
	CHECK_CODE(t, store_receipt_add(s, "00000000-0000-4000-8000-000000000071", "DZA", 1, 100, NULL, NULL, &err), 0);
	CHECK_CODE(t, store_receipt_add(s, "00000000-0000-4000-8000-000000000071", "DZA", 1, 101, NULL, NULL, &err), 0);
	CHECK_CODE(t, store_receipt_add(s, "00000000-0000-4000-8000-000000000071", "DZA", 2, 102, "lt-k", "seen", &err),
	    0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	CHECK_CODE(t, store_stats(s, &stats, &err), 0);
	CHECK(t, stats.quarantined == 2 && stats.inbox_count == 0);
	store_close(s);
}

/* What store_quarantine_list handed out. */
struct listed {
	uint64_t seq[8];
	size_t n;
	bool had_envelope;
};

static int
list_quarantined(void *ctx, const struct store_quarantined *q)
{
	struct listed *l = ctx;

	if (l->n < 8)
		l->seq[l->n++] = q->seq;
	l->had_envelope |= q->envelope != NULL;
	return 0;
}

/* Two held deliveries; the first is verified again and released with its alert stored in the inbox, in one
 * transaction; it is then no longer offered, no longer counted, and cannot be released twice. */
static void
test_quarantine_release(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], id[40];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	struct store_quarantined q;
	struct store_alert_fields f = fields(uuid_of(80, id), "NER", 2, 3);
	struct store_stats stats;
	struct store_row row;
	bool inserted = false;
	int64_t first_id;

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_quarantine_add(s, 2001, 9, "envelope.key_id: no key with this id in region.yaml", id,
			  "neighbours", envelope_a, sizeof(envelope_a), 500, &err), 0);
	CHECK_CODE(t, store_quarantine_add(s, 2002, 7, "undecodable", NULL, NULL, NULL, 0, 501, &err), 0);
	CHECK_CODE(t, store_quarantine_add(s, 2002, 7, "undecodable (redelivered)", NULL, NULL, NULL, 0, 502, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	{
		struct listed l = { 0 };

		CHECK_CODE(t, store_quarantine_list(s, 10, list_quarantined, &l, &err), 0);
		CHECK(t, l.n == 2 && l.seq[0] == 2002 && l.seq[1] == 2001 && l.had_envelope); /* 2001's, for its claims */
		memset(&l, 0, sizeof(l));
		CHECK_CODE(t, store_quarantine_list(s, 1, list_quarantined, &l, &err), 0);
		CHECK(t, l.n == 1 && l.seq[0] == 2002);
	}

	CHECK_CODE(t, store_quarantine_next(s, 0, &q, &err), 0);
	CHECK(t, q.seq == 2001 && q.code == 9 && q.received_ms == 500 && strcmp(q.alert_id, id) == 0 &&
		     strcmp(q.rule, "neighbours") == 0 && q.envelope_len == sizeof(envelope_a) &&
		     q.envelope != NULL && memcmp(q.envelope, envelope_a, sizeof(envelope_a)) == 0);
	CHECK_CONTAINS(t, q.reason, "no key with this id");
	first_id = q.id;
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_inbox_add(s, &f, q.envelope, q.envelope_len, q.seq, q.rule, 900, &inserted, &err), 0);
	CHECK(t, inserted);
	CHECK_CODE(t, store_quarantine_release(s, q.id, 900, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	store_quarantined_clear(&q);
	CHECK(t, q.envelope == NULL);

	/* The listing shows what is held, newest first: the one left has no envelope. */
	{
		struct listed l = { 0 };

		CHECK_CODE(t, store_quarantine_list(s, 10, list_quarantined, &l, &err), 0);
		CHECK(t, l.n == 1 && l.seq[0] == 2002 && !l.had_envelope);
	}
	/* Only the undecodable one is still offered (with no envelope), from the start and after the first. */
	CHECK_CODE(t, store_quarantine_next(s, 0, &q, &err), 0);
	CHECK(t, q.seq == 2002 && q.envelope == NULL && q.alert_id[0] == '\0' && q.id > first_id);
	CHECK_CODE(t, store_quarantine_next(s, q.id, &q, &err), XBA_ENOTFOUND);
	CHECK_CODE(t, store_stats(s, &stats, &err), 0);
	CHECK(t, stats.quarantined == 1 && stats.inbox_count == 1);
	CHECK_CODE(t, store_inbox_get(s, id, &row, &err), 0);
	CHECK(t, row.seq == 2001 && row.received_ms == 900 && strcmp(row.rule, "neighbours") == 0);
	store_row_clear(&row);

	/* A second release of the same row is refused and the transaction is unharmed. */
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_quarantine_release(s, first_id, 950, &err), XBA_ENOTFOUND);
	CHECK_CONTAINS(t, err.msg, "released already");
	CHECK_CODE(t, store_commit(s, &err), 0);

	/* Unreported until the broker is sent it; then offered again to each new session while recent (at 900). */
	{
		uint64_t seqs[4], released = 2001;
		size_t n = 9;

		CHECK_CODE(t, store_quarantine_unreported(s, seqs, 4, &n, &err), 0);
		CHECK(t, n == 1 && seqs[0] == 2001);
		CHECK_CODE(t, store_quarantine_reported_since(s, 0, seqs, 4, &n, &err), 0);
		CHECK(t, n == 0);
		CHECK_CODE(t, store_quarantine_reported(s, &released, 1, &err), 0);
		CHECK_CODE(t, store_quarantine_unreported(s, seqs, 4, &n, &err), 0);
		CHECK(t, n == 0);
		CHECK_CODE(t, store_quarantine_reported_since(s, 900, seqs, 4, &n, &err), 0);
		CHECK(t, n == 1 && seqs[0] == 2001);
		CHECK_CODE(t, store_quarantine_reported_since(s, 901, seqs, 4, &n, &err), 0);
		CHECK(t, n == 0);
	}
	store_close(s);
}

/* An inbox message of msg_type (1 alert, 2 update, 3 cancel) naming refs, stored at seq and received_ms. */
static int
add_message(struct store *s, const char *id, const char *origin, int msg_type, const char **refs, size_t n_refs,
    uint64_t seq, int64_t received_ms)
{
	struct store_alert_fields f = fields(id, origin, 2, 4);
	struct xba_error err = { 0 };
	bool inserted = false;
	int rc;

	f.msg_type = msg_type;
	f.references = refs;
	f.n_references = n_refs;
	rc = store_inbox_add(s, &f, envelope_a, sizeof(envelope_a), seq, "r", received_ms, &inserted, &err);
	return rc != 0 ? rc : inserted ? 0 : XBA_EDUPLICATE;
}

/* Updates and cancels in the inbox (schema 3): what each supersedes, whichever arrives first, and only its
 * origin's alerts; a cancel waits for no acknowledgement and stands against a later update. */
static void
test_superseded(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], a[40], b[40], c[40], u[40], d[40], e[40];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	struct store_filter unacked = { .unacknowledged_only = true };
	struct store_stats stats;
	struct store_row row;
	struct collected got = { 0 };
	const char *refs_ab[2], *refs_a[1], *refs_e[1];

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	uuid_of(101, a);
	uuid_of(102, b);
	uuid_of(103, c);
	uuid_of(104, u);
	uuid_of(105, d);
	uuid_of(106, e);
	refs_ab[0] = a;
	refs_ab[1] = b;
	refs_a[0] = a;
	refs_e[0] = e;
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, add_message(s, a, "NER", 1, NULL, 0, 1, 100), 0);
	CHECK_CODE(t, add_message(s, b, "LBY", 1, NULL, 0, 2, 100), 0);
	/* NER cancels A, and names LBY's B too: B is not NER's to cancel. */
	CHECK_CODE(t, add_message(s, c, "NER", 3, refs_ab, 2, 3, 200), 0);
	/* A later update of A does not bring it back. */
	CHECK_CODE(t, add_message(s, u, "NER", 2, refs_a, 1, 4, 300), 0);
	/* An update that arrives before the alert it names (E), then E. */
	CHECK_CODE(t, add_message(s, d, "NER", 2, refs_e, 1, 6, 400), 0);
	CHECK_CODE(t, add_message(s, e, "NER", 1, NULL, 0, 5, 500), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);

	CHECK_CODE(t, store_inbox_get(s, a, &row, &err), 0);
	CHECK(t, strcmp(row.superseded_by, c) == 0 && row.superseded_type == 3);
	store_row_clear(&row);
	CHECK_CODE(t, store_inbox_get(s, b, &row, &err), 0);
	CHECK(t, row.superseded_by[0] == '\0' && row.superseded_type == 0);
	store_row_clear(&row);
	CHECK_CODE(t, store_inbox_get(s, e, &row, &err), 0);
	CHECK(t, strcmp(row.superseded_by, d) == 0 && row.superseded_type == 2);
	/* ... as a row built without the store (a delivery being pushed) learns it. */
	row.superseded_by[0] = '\0';
	row.superseded_type = 0;
	CHECK_CODE(t, store_superseded_get(s, &row, &err), 0);
	CHECK(t, strcmp(row.superseded_by, d) == 0 && row.superseded_type == 2);
	store_row_clear(&row);
	CHECK_CODE(t, store_inbox_get(s, b, &row, &err), 0);
	CHECK_CODE(t, store_superseded_get(s, &row, &err), 0);
	CHECK(t, row.superseded_by[0] == '\0' && row.superseded_type == 0);
	store_row_clear(&row);
	/* Unacknowledged: every alert but the cancelled A and the updated E (their cancel and update wait instead). */
	CHECK_CODE(t, store_inbox_query(s, &unacked, true, 100, collect, &got, &err), 0);
	CHECK(t, got.n == 4);
	for (size_t i = 0; i < got.n; i++)
		CHECK(t, strcmp(got.ids[i], a) != 0 && strcmp(got.ids[i], e) != 0);
	CHECK_CODE(t, store_stats(s, &stats, &err), 0);
	CHECK(t, stats.inbox_count == 6 && stats.unacknowledged == 4);
	/* Retention: the cancelled A is finished and goes, unacknowledged; B, as old, waits for its officers. */
	{
		struct store_pruned pruned;

		CHECK_CODE(t, store_prune(s, 250, 100, &pruned, &err), 0);
		CHECK(t, pruned.inbox == 1);
		CHECK_CODE(t, store_inbox_get(s, a, &row, &err), XBA_ENOTFOUND);
		CHECK_CODE(t, store_inbox_get(s, b, &row, &err), 0);
		store_row_clear(&row);
		CHECK_CODE(t, store_inbox_get(s, e, &row, &err), 0);
		CHECK(t, strcmp(row.superseded_by, d) == 0);
		store_row_clear(&row);
		/* Later, the replaced E is finished too; its update D, unacknowledged, stays. */
		CHECK_CODE(t, store_prune(s, 600, 100, &pruned, &err), 0);
		CHECK(t, pruned.inbox == 1);
		CHECK_CODE(t, store_inbox_get(s, e, &row, &err), XBA_ENOTFOUND);
		CHECK_CODE(t, store_inbox_get(s, d, &row, &err), 0);
		store_row_clear(&row);
	}
	store_close(s);
}

/* A store written by the agent before releases existed (schema 1) opens, keeps its quarantine, and can release. */
static void
test_schema_1_upgrade(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], id[40];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	struct store_quarantined q;
	struct store_stats stats;
	sqlite3 *db = NULL;
	int version = -1;
	sqlite3_stmt *st;

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_quarantine_add(s, 3001, 9, "unknown key", uuid_of(90, id), "members", envelope_b,
			  sizeof(envelope_b), 700, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	store_close(s);
	/* Back to schema 1 as the older agent wrote it: no released_ms column, no superseded table. */
	CHECK(t, sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(t, sqlite3_exec(db, "ALTER TABLE quarantine DROP COLUMN release_reported;"
			 "ALTER TABLE quarantine DROP COLUMN released_ms; DROP TABLE superseded;"
			 "PRAGMA user_version = 1;", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);

	s = store_open(path, &err);
	CHECK(t, s != NULL);
	CHECK(t, s != NULL && store_upgraded_from(s) == 1); /* the agent logs event=store.upgraded from=1 */
	if (s == NULL) {
		fprintf(stderr, "     (open: %s)\n", err.msg);
		return;
	}
	CHECK_CODE(t, store_stats(s, &stats, &err), 0);
	CHECK(t, stats.quarantined == 1);
	CHECK_CODE(t, store_quarantine_next(s, 0, &q, &err), 0);
	CHECK(t, q.seq == 3001 && q.envelope_len == sizeof(envelope_b) && strcmp(q.alert_id, id) == 0);
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_quarantine_release(s, q.id, 800, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	store_quarantined_clear(&q);
	CHECK_CODE(t, store_stats(s, &stats, &err), 0);
	CHECK(t, stats.quarantined == 0);
	store_close(s);

	CHECK(t, sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(t, sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	/* Each quarantined delivery looks its seq up: by the index, not a scan of every row held. */
	CHECK(t, sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT 1 FROM quarantine WHERE seq = 7 AND released_ms IS "
				 "NULL", -1, &st, NULL) == SQLITE_OK);
	{
		bool indexed = false;

		while (sqlite3_step(st) == SQLITE_ROW)
			indexed |= strstr((const char *)sqlite3_column_text(st, 3), "quarantine_seq") != NULL;
		CHECK(t, indexed);
	}
	sqlite3_finalize(st);
	/* A history filter reads the scan index, not every row's envelope (schema 5): the shape of the agent's query,
	 * with an origin that matches nothing. */
	CHECK(t, sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN SELECT id FROM inbox LEFT JOIN superseded ON ref_id = "
				 "alert_id AND ref_origin = origin WHERE received_ms >= 0 AND severity >= 0 AND (0 = 0 OR "
				 "(acknowledged = 0 AND msg_type != 4 AND by_type IS NOT 3)) AND instr(',TCD,', ',' || "
				 "origin || ',') > 0 AND id < 1000000 ORDER BY id DESC LIMIT 100", -1, &st, NULL) == SQLITE_OK);
	{
		bool covering = false;

		while (sqlite3_step(st) == SQLITE_ROW)
			covering |= strstr((const char *)sqlite3_column_text(st, 3), "COVERING INDEX inbox_scan") != NULL;
		CHECK(t, covering);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* through 2 (releases), 3 (supersessions), 4 (the quarantine's seq index) to 5 (the history's scan indexes) */
	CHECK(t, version == 5);
}

/* A store a newer agent upgraded: refused at open and by --check (store_check_version), saying so and what to do,
 * and left as it was; a store that does not exist yet passes the check. */
static void
test_newer_schema_refused(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	sqlite3 *db = NULL;

	CHECK(t, s != NULL && store_upgraded_from(s) == 0);
	store_close(s);
	CHECK_CODE(t, store_check_version(path, &err), 0);
	CHECK(t, sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(t, sqlite3_exec(db, "PRAGMA user_version = 99;", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	CHECK(t, store_open(path, &err) == NULL);
	CHECK_CONTAINS(t, err.msg, "newer xba-agent");
	CHECK_CONTAINS(t, err.msg, "Going back");
	CHECK(t, store_check_version(path, &err) != 0);
	CHECK_CONTAINS(t, err.msg, "newer xba-agent");
	CHECK_CODE(t, store_check_version("/nonexistent/xba-store.db", &err), 0);
}

/*
 * Retention.  Old (time 100) and new (time 5000) rows of every kind, cutoff 1000:
 *   inbox: old acknowledged, old ACK message, old unacknowledged (kept), new acknowledged (kept);
 *   outgoing: old accepted, old refused, old still queued (kept: the outbox), new accepted (kept);
 *   receipts: one old, one new;  quarantine: one old, one new.
 */
static void
test_prune(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], id[12][40], by[132];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	struct store_alert_fields f;
	struct store_pruned pruned;
	struct store_stats stats;
	struct store_row row;
	int64_t out_id[4], ack_id;
	bool inserted;

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	CHECK_CODE(t, store_begin(s, &err), 0);
	for (int i = 0; i < 4; i++) {
		f = fields(uuid_of(100 + i, id[i]), "LBY", 3, 4);
		if (i == 1)
			f.msg_type = 4;
		CHECK_CODE(t, store_inbox_add(s, &f, envelope_a, sizeof(envelope_a), 40 + (uint64_t)i, "r",
				  i == 3 ? 5000 : 100, &inserted, &err), 0);
	}
	CHECK_CODE(t, store_receipt_add(s, id[0], "DZA", 1, 100, NULL, NULL, &err), 0);
	CHECK_CODE(t, store_receipt_add(s, id[0], "MLI", 1, 5000, NULL, NULL, &err), 0);
	CHECK_CODE(t, store_quarantine_add(s, 60, 9, "unknown key", NULL, NULL, NULL, 0, 100, &err), 0);
	CHECK_CODE(t, store_quarantine_add(s, 61, 9, "unknown key", NULL, NULL, NULL, 0, 5000, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	for (int i = 0; i < 4; i++) {
		f = fields(uuid_of(110 + i, id[4 + i]), "NER", 3, 4);
		CHECK_CODE(t, store_outbox_add(s, &f, envelope_b, sizeof(envelope_b), i == 3 ? 5000 : 100, &out_id[i],
				  &err), 0);
	}
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_outbox_accepted(s, out_id[0], 70, 6, 0, 150, &err), 0);
	CHECK_CODE(t, store_outbox_refused(s, out_id[1], 11, "refused", "category", 150, &err), 0);
	CHECK_CODE(t, store_outbox_accepted(s, out_id[3], 71, 6, 0, 5050, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	/* Acknowledge inbox alerts 0 (old) and 3 (new); the ACK alerts join the outbox as new queued rows. */
	f = fields(uuid_of(120, id[8]), "NER", 3, 4);
	f.msg_type = 4;
	CHECK_CODE(t, store_ack(s, id[0], "lt-k", 200, &f, envelope_b, sizeof(envelope_b), &ack_id, by, &err), 0);
	f = fields(uuid_of(121, id[9]), "NER", 3, 4);
	f.msg_type = 4;
	CHECK_CODE(t, store_ack(s, id[3], "lt-k", 5100, &f, envelope_b, sizeof(envelope_b), &ack_id, by, &err), 0);

	/* At most one row per table per call: the first call says there is more. */
	CHECK_CODE(t, store_prune(s, 1000, 1, &pruned, &err), 0);
	CHECK(t, pruned.more && pruned.inbox == 1 && pruned.outgoing == 1 && pruned.receipts == 1 &&
		     pruned.quarantine == 1);
	CHECK_CODE(t, store_prune(s, 1000, 100, &pruned, &err), 0);
	CHECK(t, !pruned.more && pruned.inbox == 1 && pruned.outgoing == 1 && pruned.receipts == 0 &&
		     pruned.quarantine == 0);
	CHECK_CODE(t, store_prune(s, 1000, 100, &pruned, &err), 0);
	CHECK(t, !pruned.more && pruned.inbox + pruned.outgoing + pruned.receipts + pruned.quarantine == 0);

	CHECK_CODE(t, store_inbox_get(s, id[0], &row, &err), XBA_ENOTFOUND);
	CHECK_CODE(t, store_inbox_get(s, id[1], &row, &err), XBA_ENOTFOUND);
	CHECK_CODE(t, store_inbox_get(s, id[2], &row, &err), 0); /* old, but nobody acknowledged it */
	CHECK(t, !row.acknowledged);
	store_row_clear(&row);
	CHECK_CODE(t, store_inbox_get(s, id[3], &row, &err), 0);
	store_row_clear(&row);
	CHECK_CODE(t, store_outbox_next(s, 0, &row, &err), 0); /* the old queued row is still the outbox's first */
	CHECK(t, row.id == out_id[2] && strcmp(row.alert_id, id[6]) == 0);
	store_row_clear(&row);
	CHECK_CODE(t, store_stats(s, &stats, &err), 0);
	CHECK(t, stats.inbox_count == 2 && stats.unacknowledged == 1 && stats.outbox_depth == 3 &&
		     stats.quarantined == 1 && stats.refused == 0);
	store_close(s);
}

static void
test_through_seq(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	uint64_t v = 99;

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	CHECK_CODE(t, store_through_seq(s, &v, &err), 0);
	CHECK(t, v == 0);
	/* The highest seq ever held: noted per turn, never lowered (retention prunes what is held, not that). */
	CHECK_CODE(t, store_held_high(s, &v, &err), 0);
	CHECK(t, v == 0);
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_note_held(s, 1500, &err), 0);
	CHECK_CODE(t, store_note_held(s, 1200, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	CHECK_CODE(t, store_held_high(s, &v, &err), 0);
	CHECK(t, v == 1500);
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_set_through_seq(s, 1041, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	/* A rolled-back batch leaves the cursor where the last commit put it. */
	CHECK_CODE(t, store_begin(s, &err), 0);
	CHECK_CODE(t, store_set_through_seq(s, 2000, &err), 0);
	store_rollback(s);
	CHECK(t, !store_in_transaction(s));
	store_close(s);
	s = store_open(path, &err);
	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	CHECK_CODE(t, store_through_seq(s, &v, &err), 0);
	CHECK(t, v == 1041);
	/* The cursor's alert id is read only for the seq it was stored with: an older agent (a downgrade) moves the
	 * cursor without it, and the id of seq 1041 sent for seq 1050 made the broker take the cursor for another
	 * journal's and send the node its whole queue again. */
	{
		char id[64] = "x";

		CHECK_CODE(t, store_through_alert_id(s, 1041, id, sizeof(id), &err), 0);
		CHECK(t, strcmp(id, "") == 0);
		CHECK_CODE(t, store_begin(s, &err), 0);
		CHECK_CODE(t, store_set_through_alert_id(s, 1041, "01a21ad1-3203-7bad-9b5e-c80178ea7f66", &err), 0);
		CHECK_CODE(t, store_commit(s, &err), 0);
		CHECK_CODE(t, store_through_alert_id(s, 1041, id, sizeof(id), &err), 0);
		CHECK(t, strcmp(id, "01a21ad1-3203-7bad-9b5e-c80178ea7f66") == 0);
		CHECK_CODE(t, store_begin(s, &err), 0);
		CHECK_CODE(t, store_set_through_seq(s, 1050, &err), 0);   /* as an agent before the id does */
		CHECK_CODE(t, store_commit(s, &err), 0);
		CHECK_CODE(t, store_through_alert_id(s, 1050, id, sizeof(id), &err), 0);
		CHECK(t, strcmp(id, "") == 0);
	}
	store_close(s);
}

/* Shrinks the file-size limit to just above the store's current files, so the next growing write fails. */
static bool
limit_writes(const char *path, struct rlimit *saved)
{
	char wal[320];
	struct stat st_db, st_wal;
	struct rlimit limited;
	off_t biggest;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (stat(path, &st_db) != 0 || getrlimit(RLIMIT_FSIZE, saved) != 0)
		return false;
	biggest = st_db.st_size;
	if (stat(wal, &st_wal) == 0 && st_wal.st_size > biggest)
		biggest = st_wal.st_size;
	limited = *saved;
	limited.rlim_cur = (rlim_t)biggest + 4096;
	return setrlimit(RLIMIT_FSIZE, &limited) == 0;
}

static void
test_disk_full(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], id[4][40];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	struct store_alert_fields f;
	struct store_stats stats;
	struct store_row row;
	struct rlimit saved;
	void (*old_handler)(int);
	uint8_t *big;
	size_t big_len = 60000;
	bool inserted;
	uint64_t v;
	int rc;

	CHECK(t, s != NULL);
	if (s == NULL)
		return;
	if ((big = malloc(big_len)) == NULL) {
		CHECK(t, !"malloc");
		store_close(s);
		return;
	}
	for (size_t i = 0; i < big_len; i++)
		big[i] = (uint8_t)(i * 131 + 7);
	f = fields(uuid_of(80, id[0]), "NER", 2, 4);
	CHECK_CODE(t, store_outbox_add(s, &f, envelope_a, sizeof(envelope_a), 1, NULL, &err), 0);

	/* An officer's submission while the disk is full: refused with a message naming the store, nothing kept. */
	old_handler = signal(SIGXFSZ, SIG_IGN);
	CHECK(t, limit_writes(path, &saved));
	f = fields(uuid_of(81, id[1]), "NER", 2, 4);
	rc = store_outbox_add(s, &f, big, big_len, 2, NULL, &err);
	setrlimit(RLIMIT_FSIZE, &saved);
	CHECK_CODE(t, rc, XBA_EIO);
	CHECK_CONTAINS(t, err.msg, path);
	fprintf(stderr, "     (reported: %s)\n", err.msg);
	CHECK(t, !store_in_transaction(s));
	CHECK_CODE(t, store_stats(s, &stats, &err), 0);
	CHECK(t, stats.outbox_depth == 1);

	/* A delivery batch while the disk is full: the whole batch fails, the cursor does not move. */
	CHECK(t, limit_writes(path, &saved));
	CHECK_CODE(t, store_begin(s, &err), 0);
	f = fields(uuid_of(82, id[2]), "DZA", 2, 4);
	rc = store_inbox_add(s, &f, big, big_len, 5, "r", 3, &inserted, &err);
	if (rc == 0)
		rc = store_set_through_seq(s, 5, &err);
	if (rc == 0)
		rc = store_commit(s, &err);
	else
		CHECK_CODE(t, store_commit(s, &err), XBA_EIO);
	setrlimit(RLIMIT_FSIZE, &saved);
	signal(SIGXFSZ, old_handler);
	CHECK_CODE(t, rc, XBA_EIO);
	CHECK_CONTAINS(t, err.msg, path);
	fprintf(stderr, "     (reported: %s)\n", err.msg);
	CHECK(t, !store_in_transaction(s));
	CHECK_CODE(t, store_inbox_get(s, id[2], &row, &err), XBA_ENOTFOUND);
	CHECK_CODE(t, store_through_seq(s, &v, &err), 0);
	CHECK(t, v == 0);

	/* The next writes go through. */
	f = fields(uuid_of(81, id[1]), "NER", 2, 4);
	CHECK_CODE(t, store_outbox_add(s, &f, big, big_len, 4, NULL, &err), 0);
	CHECK_CODE(t, store_begin(s, &err), 0);
	f = fields(uuid_of(82, id[2]), "DZA", 2, 4);
	CHECK_CODE(t, store_inbox_add(s, &f, big, big_len, 5, "r", 5, &inserted, &err), 0);
	CHECK(t, inserted);
	CHECK_CODE(t, store_set_through_seq(s, 5, &err), 0);
	CHECK_CODE(t, store_commit(s, &err), 0);
	CHECK_CODE(t, store_stats(s, &stats, &err), 0);
	CHECK(t, stats.outbox_depth == 2 && stats.inbox_count == 1);
	CHECK_CODE(t, store_through_seq(s, &v, &err), 0);
	CHECK(t, v == 5);
	free(big);
	store_close(s);
}

static void
test_failed_batch_refuses_rest(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300], id[2][40];
	struct store *s = store_open(new_path(path, sizeof(path)), &err);
	struct store_alert_fields f;
	struct rlimit saved;
	void (*old_handler)(int);
	uint8_t *big;
	size_t big_len = 60000;
	bool inserted;
	int rc = 0;

	CHECK(t, s != NULL);
	if (s == NULL || (big = calloc(1, big_len)) == NULL) {
		store_close(s);
		return;
	}
	for (size_t i = 0; i < big_len; i++)
		big[i] = (uint8_t)(i * 37 + 1);
	old_handler = signal(SIGXFSZ, SIG_IGN);
	CHECK(t, limit_writes(path, &saved));
	CHECK_CODE(t, store_begin(s, &err), 0);
	/* Enough to spill SQLite's cache to the WAL inside the transaction, so a write (not just COMMIT) fails. */
	for (int i = 0; i < 200 && rc == 0; i++) {
		char idbuf[40];

		f = fields(uuid_of(100 + i, idbuf), "DZA", 2, 4);
		rc = store_inbox_add(s, &f, big, big_len, 10 + (uint64_t)i, "r", 3, &inserted, &err);
	}
	setrlimit(RLIMIT_FSIZE, &saved);
	signal(SIGXFSZ, old_handler);
	if (rc == 0) {
		/* The cache held it all: the commit is where it fails. */
		CHECK_CODE(t, store_commit(s, &err), XBA_EIO);
	} else {
		CHECK_CODE(t, rc, XBA_EIO);
		f = fields(uuid_of(1, id[0]), "DZA", 2, 4);
		CHECK_CODE(t, store_inbox_add(s, &f, envelope_a, sizeof(envelope_a), 1, "r", 3, &inserted, &err), XBA_EIO);
		CHECK_CONTAINS(t, err.msg, "the transaction already failed");
		CHECK_CODE(t, store_set_through_seq(s, 9, &err), XBA_EIO);
		CHECK_CODE(t, store_commit(s, &err), XBA_EIO);
		CHECK_CONTAINS(t, err.msg, "the transaction already failed");
	}
	CHECK(t, !store_in_transaction(s));
	CHECK_CODE(t, store_begin(s, &err), 0);
	f = fields(uuid_of(2, id[1]), "DZA", 2, 4);
	CHECK_CODE(t, store_inbox_add(s, &f, envelope_a, sizeof(envelope_a), 1, "r", 3, &inserted, &err), 0);
	CHECK(t, inserted);
	CHECK_CODE(t, store_commit(s, &err), 0);
	free(big);
	store_close(s);
}

static void
test_open_refuses_foreign_file(struct check_state *t)
{
	struct xba_error err = { 0 };
	char path[300];
	FILE *f;

	new_path(path, sizeof(path));
	f = fopen(path, "w");
	CHECK(t, f != NULL);
	if (f == NULL)
		return;
	fputs("this is not a database, it is an operator's note\n", f);
	fclose(f);
	CHECK(t, store_open(path, &err) == NULL);
	CHECK_CONTAINS(t, err.msg, path);
	fprintf(stderr, "     (reported: %s)\n", err.msg);
	snprintf(path, sizeof(path), "%s/no-such-dir/store.db", workdir);
	CHECK(t, store_open(path, &err) == NULL);
	CHECK_CONTAINS(t, err.msg, "no-such-dir");
}

int
main(int argc, char **argv)
{
	struct check_state t = { 0 };
	const char *tmp = getenv("TMPDIR");
	int rc;

	(void)argc;
	(void)argv; /* the tests/ directory: this test needs no data files */
	snprintf(workdir, sizeof(workdir), "%s/xba-test-store-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(workdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	RUN(&t, test_outbox_order_and_reopen);
	RUN(&t, test_outgoing_fields);
	RUN(&t, test_later_versions);
	RUN(&t, test_requeue_after_restore);
	RUN(&t, test_inbox_dedupe);
	RUN(&t, test_records);
	RUN(&t, test_filters);
	RUN(&t, test_ack);
	RUN(&t, test_quarantine_receipts);
	RUN(&t, test_quarantine_release);
	RUN(&t, test_superseded);
	RUN(&t, test_schema_1_upgrade);
	RUN(&t, test_newer_schema_refused);
	RUN(&t, test_prune);
	RUN(&t, test_through_seq);
	RUN(&t, test_disk_full);
	RUN(&t, test_failed_batch_refuses_rest);
	RUN(&t, test_open_refuses_foreign_file);
	rc = check_finish(&t);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", workdir);
	}
	return rc;
}
