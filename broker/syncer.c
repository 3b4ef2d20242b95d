/*
 * syncer.c — the journal's fsync off the event loop.  A group commit used to fsync the WAL inside COMMIT
 * (synchronous=FULL): 1-7 ms per pass on an ordinary disk, during which the loop read nothing, verified nothing and
 * delivered nothing, so every alert of the next pass waited for it as well (docs/performance.md §3).
 *
 * Now the writer commits with synchronous=NORMAL (the WAL is written, not synced; journal_defer_sync) and this
 * thread makes it durable: the loop asks for a sync after each commit, naming the commit's generation; the thread
 * fdatasyncs the WAL file, which makes every page written before the call durable, records that generation as
 * durable and wakes the loop through a pipe.  Only then does the loop send what the commit promised: PublishAcks,
 * receipts, and deliveries of the seqs it journaled (server.c, deliver.c).  A node never holds, and a publisher
 * never deletes, anything a power cut could take back.
 *
 * Requests made while a sync runs are served by the next one, so under load each sync covers many commits.  A sync
 * that fails leaves the durable generation where it was and reports the error; the loop stops the broker (server.c),
 * because after a failed fsync the kernel may have dropped the pages it could not write and nothing can tell which.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "clock.h"

struct syncer {
	pthread_t thread;
	bool started;
	char *path;                  /* the WAL file, for messages */
	int fd;                      /* the WAL file, read-only (fdatasync needs no write access); fixed once open */
	int wake[2];                 /* pipe: the thread writes a byte after each sync; the loop polls wake[0] */
	pthread_mutex_t lock;
	pthread_cond_t work;         /* a request or stop */
	bool stop;
	struct syncer_point requested, durable;
	bool failed;                 /* a sync failed: err holds why */
	char error[200];
	atomic_uint_fast64_t reports;  /* syncs finished or failed, ever: syncer_news() without a lock or a syscall */
	uint64_t syncs;              /* since syncer_take_stats */
	int64_t sync_us_max;
};

/* fdatasync the WAL.  Runs on whichever thread asks (fdatasync on one fd from two threads is safe).  A WAL file
 * that has been unlinked (SQLite does that only when its last connection closes, never while the broker runs; so:
 * someone removed it) would sync nothing that matters: reported as a failure. */
static int
sync_wal(struct syncer *s, char *error, size_t size)
{
	struct stat st;
	int64_t t0, took;

	if (fstat(s->fd, &st) == 0 && st.st_nlink == 0) {
		snprintf(error, size, "%s: the WAL file was removed while the journal was open", s->path);
		return -1;
	}
	t0 = clock_mono_us();
	if (fdatasync(s->fd) != 0) {
		snprintf(error, size, "fdatasync %s: %s", s->path, strerror(errno));
		return -1;
	}
	took = clock_mono_us() - t0;
	pthread_mutex_lock(&s->lock);
	s->syncs++;
	if (took > s->sync_us_max)
		s->sync_us_max = took;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void
record(struct syncer *s, struct syncer_point point, int rc, const char *error)
{
	char byte = 's';

	pthread_mutex_lock(&s->lock);
	if (rc != 0) {
		s->failed = true;
		snprintf(s->error, sizeof(s->error), "%s", error);
	} else if (point.gen > s->durable.gen) {
		s->durable = point;
	}
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_add(&s->reports, 1);
	/* Non-blocking: a full pipe already wakes the loop, and the loop reads the state, not the bytes. */
	(void)!write(s->wake[1], &byte, 1);
}

static void *
run(void *arg)
{
	struct syncer *s = arg;

	prctl(PR_SET_NAME, "xba-sync", 0, 0, 0);
	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct syncer_point target;
		char error[200];
		int rc;

		while (!s->stop && (s->requested.gen <= s->durable.gen || s->failed))
			pthread_cond_wait(&s->work, &s->lock);
		if (s->stop)
			break;
		target = s->requested;
		pthread_mutex_unlock(&s->lock);
		rc = sync_wal(s, error, sizeof(error));
		record(s, target, rc, error);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

struct syncer *
syncer_new(const char *wal_path, struct xba_error *err)
{
	struct syncer *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->path = strdup(wal_path)) == NULL) {
		free(s);
		xba_error_set(err, XBA_ENOMEM, "out of memory");
		return NULL;
	}
	s->fd = s->wake[0] = s->wake[1] = -1;
	if (pthread_mutex_init(&s->lock, NULL) != 0 || pthread_cond_init(&s->work, NULL) != 0) {
		free(s->path);
		free(s);
		xba_error_set(err, XBA_EIO, "cannot create the syncer's locks");
		return NULL;
	}
	if ((s->fd = open(wal_path, O_RDONLY | O_CLOEXEC)) < 0) {
		xba_error_set(err, XBA_EIO, "journal WAL %s: open: %s", wal_path, strerror(errno));
		syncer_free(s);
		return NULL;
	}
	if (pipe(s->wake) != 0 || fcntl(s->wake[0], F_SETFL, O_NONBLOCK) != 0 ||
	    fcntl(s->wake[1], F_SETFL, O_NONBLOCK) != 0 || fcntl(s->wake[0], F_SETFD, FD_CLOEXEC) != 0 ||
	    fcntl(s->wake[1], F_SETFD, FD_CLOEXEC) != 0) {
		xba_error_set(err, XBA_EIO, "syncer: pipe: %s", strerror(errno));
		syncer_free(s);
		return NULL;
	}
	if (pthread_create(&s->thread, NULL, run, s) != 0) {
		xba_error_set(err, XBA_EIO, "journal WAL %s: cannot start the sync thread", wal_path);
		syncer_free(s);
		return NULL;
	}
	s->started = true;
	return s;
}

void
syncer_free(struct syncer *s)
{
	if (s == NULL)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_cond_signal(&s->work);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	if (s->fd >= 0)
		close(s->fd);
	if (s->wake[0] >= 0)
		close(s->wake[0]);
	if (s->wake[1] >= 0)
		close(s->wake[1]);
	pthread_cond_destroy(&s->work);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
}

bool
syncer_news(struct syncer *s, uint64_t *seen)
{
	uint64_t reports = atomic_load(&s->reports);

	if (reports == *seen)
		return false;
	*seen = reports;
	return true;
}

int
syncer_wake_fd(const struct syncer *s)
{
	return s->wake[0];
}

void
syncer_request(struct syncer *s, struct syncer_point point)
{
	pthread_mutex_lock(&s->lock);
	if (point.gen > s->requested.gen) {
		s->requested = point;
		pthread_cond_signal(&s->work);
	}
	pthread_mutex_unlock(&s->lock);
}

int
syncer_collect(struct syncer *s, struct syncer_point *durable, struct xba_error *err)
{
	char drain[64];
	int rc = 0;

	while (read(s->wake[0], drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&s->lock);
	*durable = s->durable;
	if (s->failed)
		rc = xba_error_set(err, XBA_EIO, "%s", s->error);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
syncer_sync_now(struct syncer *s, struct syncer_point point, struct xba_error *err)
{
	char error[200];

	if (sync_wal(s, error, sizeof(error)) != 0) {
		pthread_mutex_lock(&s->lock);
		s->failed = true;
		snprintf(s->error, sizeof(s->error), "%s", error);
		pthread_mutex_unlock(&s->lock);
		return xba_error_set(err, XBA_EIO, "%s", error);
	}
	pthread_mutex_lock(&s->lock);
	if (point.gen >= s->durable.gen)
		s->durable = point;
	if (point.gen > s->requested.gen)
		s->requested = point;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void
syncer_take_stats(struct syncer *s, uint64_t *syncs, int64_t *sync_us_max)
{
	pthread_mutex_lock(&s->lock);
	*syncs = s->syncs;
	*sync_us_max = s->sync_us_max;
	s->syncs = 0;
	s->sync_us_max = 0;
	pthread_mutex_unlock(&s->lock);
}
