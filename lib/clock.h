/*
 * clock.h — time as XBA counts it: Unix milliseconds in int64_t, UTC, and its RFC 3339 text form used in YAML
 * files and operator output ("2026-11-25T16:40:00Z", "2026-11-25T16:40:00.250+01:00").
 */
#ifndef XBA_CLOCK_H
#define XBA_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XBA_TIME_NEVER INT64_MAX /* "no such time": no expiry, never revoked */

/* Wall-clock now, in Unix milliseconds. */
int64_t clock_now_ms(void);

/* Monotonic milliseconds, for timeouts and heartbeats. */
int64_t clock_mono_ms(void);

/* A token bucket on the monotonic clock, for what a peer may make a daemon do: at most burst at once, then
 * per_second.  Zero-initialised it is full. */
struct clock_bucket {
	double tokens;
	int64_t mono;                           /* when tokens was last refilled; 0: never used */
};
/* One token, if there is one. */
bool clock_bucket_take(struct clock_bucket *b, double per_second, double burst);
/* The same clock in microseconds: for timing the broker's own work (its broker.stats record). */
int64_t clock_mono_us(void);

/* Parse an RFC 3339 date-time (date alone, "YYYY-MM-DD", means midnight UTC).  0 or XBA_ESYNTAX. */
int clock_parse_rfc3339(const char *text, int64_t *out_ms);

/* Format as "YYYY-MM-DDTHH:MM:SS[.mmm]Z" into out (>= 32 bytes); milliseconds only when not zero.  Returns out. */
char *clock_format_rfc3339(int64_t ms, char *out, size_t size);

/* A length of time for people, its sign dropped and rounded to the last unit shown: "45 s", "12 min", "2 h 5 min",
 * "3 days 4 h".  Returns out. */
char *clock_format_span(int64_t ms, char *out, size_t size);

#endif
