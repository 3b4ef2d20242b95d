/*
 * test_checkpointer.c — WAL checkpoints off the event loop (broker/checkpointer.c) on real SQLite files: with the
 * writer's own automatic checkpoint pushed far away, the journal's pages reach the database file only because the
 * checkpointer thread copies them there; what it copies reads back intact and the hash chain still verifies; a
 * journal that cannot be opened is named in the error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "check.h"
#include "journal.h"

#define ALERTS 300
#define ENVELOPE_BYTES 4000 /* about one page each, so the file sizes speak clearly */

static char workdir[256];

static long long
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ALERTS alerts in ALERTS / 10 commits, each with its own envelope bytes. */
static int
fill(struct journal *j)
{
	static const struct journal_recipient to[] = { { "LBY", "neighbours" }, { "DZA", "neighbours" } };
	static uint8_t envelope[ENVELOPE_BYTES];
	struct xba_error err = { 0 };

	for (int i = 0; i < ALERTS; i++) {
		struct journal_entry e;
		char id[40];
		uint64_t seq;

		if (i % 10 == 0 && journal_begin(j, &err) != 0)
			return -1;
		memset(envelope, 'a' + i % 26, sizeof(envelope));
		snprintf(id, sizeof(id), "5e7c1f0a-0000-4000-8000-%012d", i);
		memset(&e, 0, sizeof(e));
		e.alert_id = id;
		e.origin = "NER";
		e.sent_ms = 1795624800000LL + i;
		e.received_ms = e.sent_ms + 1;
		e.msg_type = 1;
		e.envelope = envelope;
		e.envelope_len = sizeof(envelope);
		e.rules_version = "3f0c9a6b2d5e8f1a4c7b0d3e6f9a2c5b8e1d4f7a0c3b6e9d2f5a8c1b4e7d0a3f";
		e.recipients = to;
		e.n_recipients = 2;
		if (journal_append(j, &e, &seq, &err) != 0) {
			fprintf(stderr, "append: %s\n", err.msg);
			return -1;
		}
		if (i % 10 == 9 && journal_commit(j, &err) != 0) {
			fprintf(stderr, "commit: %s\n", err.msg);
			return -1;
		}
	}
	return 0;
}

/* Without the checkpointer and with the automatic checkpoint deferred, everything stays in the WAL: the control
 * that makes the next test mean something. */
static void
test_control_nothing_checkpointed(struct check_state *t)
{
	char path[300];
	struct xba_error err = { 0 };
	struct journal *j;
	long long before;

	snprintf(path, sizeof(path), "%s/control.db", workdir);
	j = journal_open(path, &err);
	CHECK(t, j != NULL);
	if (j == NULL)
		return;
	journal_defer_checkpoints(j, 1000000);
	before = file_size(path);
	CHECK(t, fill(j) == 0);
	sleep_ms(200);
	CHECK(t, file_size(path) == before);
	CHECK(t, file_size(strcat(path, "-wal")) > (long long)ALERTS * ENVELOPE_BYTES);
	journal_close(j);
}

static void
test_checkpointer_copies_pages(struct check_state *t)
{
	char path[300];
	struct xba_error err = { 0 };
	struct checkpointer *c;
	struct journal *j;
	struct journal_alert_info info;
	uint64_t checked = 0;
	long long before;

	snprintf(path, sizeof(path), "%s/checkpointed.db", workdir);
	j = journal_open(path, &err);
	CHECK(t, j != NULL);
	if (j == NULL)
		return;
	journal_defer_checkpoints(j, 1000000);
	c = checkpointer_new(path, 5, &err);
	CHECK(t, c != NULL);
	before = file_size(path);
	CHECK(t, fill(j) == 0);
	/* The writer never checkpoints (1M pages away): only the thread can grow the database file. */
	for (int waited = 0; waited < 10000 && file_size(path) < before + (long long)ALERTS * ENVELOPE_BYTES; waited += 10)
		sleep_ms(10);
	CHECK(t, file_size(path) >= before + (long long)ALERTS * ENVELOPE_BYTES);
	CHECK(t, journal_find(j, "5e7c1f0a-0000-4000-8000-000000000000", &info, &err) == 0 && info.seq == 1);
	CHECK(t, journal_find(j, "5e7c1f0a-0000-4000-8000-000000000299", &info, &err) == 0 && info.seq == ALERTS);
	CHECK(t, journal_audit_verify(j, &checked, &err) == 0 && checked == ALERTS);
	/* More writes while it runs, then a clean stop, then the file reopens with everything in it. */
	CHECK(t, journal_begin(j, &err) == 0);
	CHECK(t, journal_commit(j, &err) == 0);
	checkpointer_free(c);
	journal_close(j);
	j = journal_open(path, &err);
	CHECK(t, j != NULL && journal_head(j) == ALERTS);
	if (j != NULL)
		CHECK(t, journal_audit_verify(j, &checked, &err) == 0 && checked == ALERTS);
	journal_close(j);
}

static void
test_unopenable_journal_is_named(struct check_state *t)
{
	char path[300];
	struct xba_error err = { 0 };

	snprintf(path, sizeof(path), "%s/no-such-dir/journal.db", workdir);
	CHECK(t, checkpointer_new(path, 5, &err) == NULL);
	CHECK_CONTAINS(t, err.msg, "no-such-dir/journal.db");
	checkpointer_free(NULL);
}

int
main(void)
{
	struct check_state t = { 0 };
	const char *tmp = getenv("TMPDIR");
	char cmd[300];
	int rc;

	snprintf(workdir, sizeof(workdir), "%s/xba-test-checkpointer-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(workdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	RUN(&t, test_control_nothing_checkpointed);
	RUN(&t, test_checkpointer_copies_pages);
	RUN(&t, test_unopenable_journal_is_named);
	rc = check_finish(&t);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", workdir);
	return rc;
}
