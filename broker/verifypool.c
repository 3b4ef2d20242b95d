/*
 * verifypool.c — the broker's signature-verification threads.  Verification is the one cost per alert that
 * cannot be avoided (DESIGN.md, "Performance model") and the only step of the publish path that is a pure function
 * of the frame and the directory, so it is the step that runs on more than one core.
 *
 * Flow: the event loop (server.c) reads a chunk of frames and posts the Publish envelopes among them
 * (verify_pool_post); the pool's threads open them (lookups, Ed25519 verification, alert decoding:
 * envelope_open_message) while the loop handles the chunk before it.  verify_pool_wait() then runs whatever is
 * still unclaimed on the loop's own thread and returns when every job is done, and the loop handles the chunk's
 * frames strictly in arrival order, so the journal order, the replies and every check after the signature are
 * exactly what a single thread would produce.  One batch at a time keeps the threads free of any broker state: a
 * worker touches only its job and the directory, which the loop does not change while jobs run (reloads happen
 * between passes).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "broker.h"

struct verify_pool {
	pthread_t *threads;
	unsigned n_threads;
	pthread_mutex_t lock;
	pthread_cond_t work;          /* a batch was posted, or stop */
	pthread_cond_t done;          /* the last job of a batch finished */
	/* The posted batch; guarded by lock. */
	const struct directory *dir;
	struct verify_job *jobs;
	size_t n_jobs;
	size_t next;                  /* first unclaimed job */
	size_t unfinished;            /* claimed or not, not yet finished */
	uint64_t generation;          /* bumped per batch, so a worker never runs a batch twice */
	bool stop;
};

static void
run_job(const struct directory *dir, struct verify_job *job)
{
	job->err = (struct xba_error){ 0 };
	job->rc = envelope_open_message(dir, job->envelope, job->now_ms, &job->opened, &job->err);
}

/* Claim and run jobs of the current batch until none is left.  Called with lock held; returns with it held. */
static void
drain(struct verify_pool *pool)
{
	while (pool->next < pool->n_jobs) {
		struct verify_job *job = &pool->jobs[pool->next++];
		const struct directory *dir = pool->dir;

		pthread_mutex_unlock(&pool->lock);
		run_job(dir, job);
		pthread_mutex_lock(&pool->lock);
		if (--pool->unfinished == 0)
			pthread_cond_broadcast(&pool->done);
	}
}

static void *
worker(void *arg)
{
	struct verify_pool *pool = arg;
	uint64_t seen = 0;

	/* Linux thread name, so top, perf and the benchmark can tell verification from the event loop. */
	prctl(PR_SET_NAME, "xba-verify", 0, 0, 0);
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->stop && (pool->generation == seen || pool->next >= pool->n_jobs)) {
			seen = pool->generation;
			pthread_cond_wait(&pool->work, &pool->lock);
		}
		if (pool->stop)
			break;
		seen = pool->generation;
		drain(pool);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

struct verify_pool *
verify_pool_new(unsigned n_threads, struct xba_error *err)
{
	struct verify_pool *pool = calloc(1, sizeof(*pool));

	if (pool == NULL || (n_threads > 0 && (pool->threads = calloc(n_threads, sizeof(*pool->threads))) == NULL)) {
		free(pool);
		xba_error_set(err, XBA_ENOMEM, "out of memory");
		return NULL;
	}
	if (pthread_mutex_init(&pool->lock, NULL) != 0 || pthread_cond_init(&pool->work, NULL) != 0 ||
	    pthread_cond_init(&pool->done, NULL) != 0) {
		free(pool->threads);
		free(pool);
		xba_error_set(err, XBA_EIO, "cannot create the verification pool's locks");
		return NULL;
	}
	for (unsigned i = 0; i < n_threads; i++) {
		if (pthread_create(&pool->threads[i], NULL, worker, pool) != 0) {
			xba_error_set(err, XBA_EIO, "cannot start verification thread %u of %u", i + 1, n_threads);
			verify_pool_free(pool);
			return NULL;
		}
		pool->n_threads++;
	}
	return pool;
}

void
verify_pool_free(struct verify_pool *pool)
{
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->n_threads; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_cond_destroy(&pool->done);
	pthread_cond_destroy(&pool->work);
	pthread_mutex_destroy(&pool->lock);
	free(pool->threads);
	free(pool);
}

unsigned
verify_pool_threads(const struct verify_pool *pool)
{
	return pool->n_threads;
}

void
verify_pool_post(struct verify_pool *pool, const struct directory *dir, struct verify_job *jobs, size_t n_jobs)
{
	pthread_mutex_lock(&pool->lock);
	pool->dir = dir;
	pool->jobs = jobs;
	pool->n_jobs = n_jobs;
	pool->next = 0;
	pool->unfinished = n_jobs;
	pool->generation++;
	/* Without threads the jobs wait for verify_pool_wait(), which runs them on the caller's thread. */
	if (pool->n_threads > 0 && n_jobs > 0)
		pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

void
verify_pool_wait(struct verify_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	drain(pool); /* whatever the threads have not claimed yet, the caller runs itself */
	while (pool->unfinished > 0)
		pthread_cond_wait(&pool->done, &pool->lock);
	/* Nothing of this batch may be touched after return. */
	pool->jobs = NULL;
	pool->n_jobs = 0;
	pool->next = 0;
	pthread_mutex_unlock(&pool->lock);
}
