/*
 * checkpointer.c — moves the journal's WAL checkpoints off the event loop.  In WAL mode every commit appends pages
 * to the -wal file; a checkpoint copies them into the database file and fsyncs it.  SQLite runs one automatically
 * inside the COMMIT that crosses 1000 WAL pages, so on a busy broker every few hundred alerts one commit took
 * about 10 ms longer, and every delivery and acknowledgement of that pass waited for it (docs/performance.md §3).
 *
 * This thread owns a second connection to the same journal and runs a PASSIVE checkpoint every interval: passive
 * checkpoints never wait for and never block the writer, and the writer's connection keeps a far-away automatic
 * checkpoint (journal_defer_checkpoints) only as a safety net should this thread fall behind.  Nothing here writes
 * journal content; a failed checkpoint loses nothing (the pages stay in the WAL) and is only logged.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "broker.h"
#include "log.h"

struct checkpointer {
	pthread_t thread;
	bool started;
	sqlite3 *db;                 /* the thread's own connection */
	int interval_ms;
	pthread_mutex_t lock;
	pthread_cond_t wake;         /* stop */
	bool stop;
	char *path;                  /* the journal's path, log_quote()d: broker.yaml may give it spaces */
};

static void *
run(void *arg)
{
	struct checkpointer *c = arg;
	int failures = 0;

	prctl(PR_SET_NAME, "xba-checkpoint", 0, 0, 0);
	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		struct timespec until;
		int rc, wal_pages = 0, copied = 0;

		/* Monotonic, as the condition variable's clock: a wall-clock step back would otherwise put this deadline
		 * the size of the step away, and the WAL would grow until the writer checkpointed on the event loop. */
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)c->interval_ms * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!c->stop && pthread_cond_timedwait(&c->wake, &c->lock, &until) != ETIMEDOUT)
			;
		if (c->stop)
			break;
		pthread_mutex_unlock(&c->lock);
		rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &wal_pages, &copied);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
			/* Logged once per run of failures: the pages stay in the WAL, and the writer's own automatic
			 * checkpoint takes over if this keeps failing. */
			if (failures++ == 0) {
				char quoted[600];

				log_warnx("event=journal.checkpoint_failed journal=%s error=%s", c->path,
				    log_quote(quoted, sizeof(quoted), sqlite3_errmsg(c->db)));
			}
		} else if (rc == SQLITE_OK && failures > 0) {
			log_warnx("event=journal.checkpoint_recovered journal=%s failures=%d", c->path, failures);
			failures = 0;
		}
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

struct checkpointer *
checkpointer_new(const char *journal_path, int interval_ms, struct xba_error *err)
{
	struct checkpointer *c = calloc(1, sizeof(*c));
	size_t quoted_size = 4 * strlen(journal_path) + 3; /* each byte at most \xNN, the two quotes, the NUL */
	pthread_condattr_t attr;

	if (c == NULL || (c->path = malloc(quoted_size)) == NULL) {
		free(c);
		xba_error_set(err, XBA_ENOMEM, "out of memory");
		return NULL;
	}
	log_quote(c->path, quoted_size, journal_path);
	c->interval_ms = interval_ms;
	if (pthread_condattr_init(&attr) != 0 || pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_mutex_init(&c->lock, NULL) != 0 || pthread_cond_init(&c->wake, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		free(c->path);
		free(c);
		xba_error_set(err, XBA_EIO, "cannot create the checkpointer's locks");
		return NULL;
	}
	pthread_condattr_destroy(&attr);
	/* The journal exists and is in WAL mode: journal_open() made it so before this is called. */
	if (sqlite3_open_v2(journal_path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL) !=
	    SQLITE_OK) {
		xba_error_set(err, XBA_EIO, "journal %s: checkpointer: %s", journal_path,
		    c->db ? sqlite3_errmsg(c->db) : "out of memory");
		checkpointer_free(c);
		return NULL;
	}
	/* WAL synced before the copy, database file synced after it: a checkpoint is as durable as a commit. */
	if (sqlite3_exec(c->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK) {
		xba_error_set(err, XBA_EIO, "journal %s: checkpointer: %s", journal_path, sqlite3_errmsg(c->db));
		checkpointer_free(c);
		return NULL;
	}
	if (pthread_create(&c->thread, NULL, run, c) != 0) {
		xba_error_set(err, XBA_EIO, "journal %s: cannot start the checkpointer thread", journal_path);
		checkpointer_free(c);
		return NULL;
	}
	c->started = true;
	return c;
}

void
checkpointer_free(struct checkpointer *c)
{
	if (c == NULL)
		return;
	if (c->started) {
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_signal(&c->wake);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
	}
	sqlite3_close(c->db);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c->path);
	free(c);
}
