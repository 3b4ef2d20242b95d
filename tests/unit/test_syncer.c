/*
 * test_syncer.c — the journal's fsync off the event loop (broker/syncer.c), on a real journal: the WAL file that
 * journal_wal_path names exists once journal_defer_sync is in force; requests made faster than syncs run are all
 * answered, in order, with the newest one durable last; the wake descriptor becomes readable; a synchronous sync
 * makes its point durable at once; a sync that fails (the WAL file removed under the journal) is reported, sticks,
 * and names the file; an unopenable WAL path is named.  Whether fdatasync reaches the platter is the kernel's
 * business and is not tested here; that the broker acts on nothing before its sync is the e2e suite's.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "check.h"
#include "journal.h"

static char workdir[256];

/* Wait up to 5 s for the syncer to report durable.gen >= gen; returns what it last reported. */
static struct syncer_point
wait_durable(struct syncer *s, uint64_t gen, int *rc, struct xba_error *err)
{
	struct syncer_point durable = { 0, 0 };

	for (int i = 0; i < 500; i++) {
		struct pollfd p = { syncer_wake_fd(s), POLLIN, 0 };

		(void)poll(&p, 1, 10);
		*rc = syncer_collect(s, &durable, err);
		if (*rc != 0 || durable.gen >= gen)
			break;
	}
	return durable;
}

static void
test_requests_become_durable(struct check_state *t)
{
	char path[300];
	struct xba_error err = { 0 };
	struct syncer_point durable;
	struct journal *j;
	struct syncer *s;
	uint64_t syncs = 0;
	int64_t sync_us_max = -1;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/journal.db", workdir);
	j = journal_open(path, &err);
	CHECK(t, j != NULL);
	if (j == NULL)
		return;
	CHECK_CODE(t, journal_defer_sync(j, &err), 0);
	CHECK(t, journal_wal_path(j) != NULL && strstr(journal_wal_path(j), "journal.db-wal") != NULL);
	CHECK(t, access(journal_wal_path(j), F_OK) == 0);
	s = syncer_new(journal_wal_path(j), &err);
	CHECK(t, s != NULL);
	if (s == NULL) {
		journal_close(j);
		return;
	}
	CHECK_CODE(t, syncer_sync_now(s, (struct syncer_point){ 0, 7 }, &err), 0);
	CHECK_CODE(t, syncer_collect(s, &durable, &err), 0);
	CHECK(t, durable.gen == 0 && durable.head == 7);

	/* A hundred requests in a row: syncs coalesce, the last one asked for is what ends up durable. */
	for (uint64_t gen = 1; gen <= 100; gen++)
		syncer_request(s, (struct syncer_point){ gen, 7 + gen });
	durable = wait_durable(s, 100, &rc, &err);
	CHECK(t, rc == 0);
	CHECK(t, durable.gen == 100 && durable.head == 107);
	syncer_take_stats(s, &syncs, &sync_us_max);
	CHECK(t, syncs >= 1 && syncs <= 101 && sync_us_max >= 0);
	syncer_take_stats(s, &syncs, &sync_us_max);
	CHECK(t, syncs == 0 && sync_us_max == 0);

	/* An older point asked again changes nothing. */
	syncer_request(s, (struct syncer_point){ 50, 57 });
	CHECK_CODE(t, syncer_collect(s, &durable, &err), 0);
	CHECK(t, durable.gen == 100 && durable.head == 107);

	/* The WAL file removed under the journal: the next sync fails, says which file, and the failure sticks. */
	CHECK(t, unlink(journal_wal_path(j)) == 0);
	syncer_request(s, (struct syncer_point){ 101, 108 });
	durable = wait_durable(s, 101, &rc, &err);
	CHECK(t, rc != 0);
	CHECK_CONTAINS(t, err.msg, "journal.db-wal");
	CHECK_CONTAINS(t, err.msg, "removed");
	CHECK(t, durable.gen == 100);
	memset(&err, 0, sizeof(err));
	CHECK(t, syncer_collect(s, &durable, &err) != 0 && strstr(err.msg, "removed") != NULL);
	syncer_free(s);
	journal_close(j);
}

static void
test_unopenable_wal_is_named(struct check_state *t)
{
	char path[300];
	struct xba_error err = { 0 };

	snprintf(path, sizeof(path), "%s/no-such-dir/journal.db-wal", workdir);
	CHECK(t, syncer_new(path, &err) == NULL);
	CHECK_CONTAINS(t, err.msg, "no-such-dir/journal.db-wal");
	syncer_free(NULL);
}

int
main(void)
{
	struct check_state t = { 0 };
	const char *tmp = getenv("TMPDIR");
	char cmd[300];
	int rc;

	snprintf(workdir, sizeof(workdir), "%s/xba-test-syncer-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(workdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	RUN(&t, test_requests_become_durable);
	RUN(&t, test_unopenable_wal_is_named);
	rc = check_finish(&t);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", workdir);
	return rc;
}
