/*
 * clockshim.c — LD_PRELOAD for test_clocks.py: a wrong or stepping wall clock for one process.  CLOCK_REALTIME as
 * read through clock_gettime() (lib/clock.c, the log's timestamps) is moved by the number of seconds written in
 * the file $XBA_TEST_CLOCK_FILE, read again at most every 100 ms, so a test can step the clock while the process
 * runs.  The monotonic clocks are untouched, and so is the kernel's own judgement of an absolute CLOCK_REALTIME
 * deadline (pthread_cond_timedwait), as after a real `date -s` or NTP step.  Test code only, never installed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

/* Process-wide by nature: LD_PRELOAD has no context to pass, and every thread must see the same step. */
static _Atomic int64_t offset_s;
static _Atomic int64_t read_at_ms = -1000000;

static int64_t
mono_ms(clock_gettime_fn real)
{
	struct timespec ts;

	real(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
refresh(clock_gettime_fn real)
{
	int64_t now = mono_ms(real);
	const char *path;
	FILE *f;
	long long v;

	if (now - atomic_load(&read_at_ms) < 100)
		return;
	atomic_store(&read_at_ms, now);
	if ((path = getenv("XBA_TEST_CLOCK_FILE")) == NULL || (f = fopen(path, "r")) == NULL)
		return;
	if (fscanf(f, "%lld", &v) == 1)
		atomic_store(&offset_s, (int64_t)v);
	fclose(f);
}

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	static _Atomic(clock_gettime_fn) real;
	clock_gettime_fn fn = atomic_load(&real);
	int rc;

	if (fn == NULL) {
		fn = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
		atomic_store(&real, fn);
	}
	rc = fn(id, ts);
	if (rc == 0 && id == CLOCK_REALTIME) {
		refresh(fn);
		ts->tv_sec += (time_t)atomic_load(&offset_s);
	}
	return rc;
}
