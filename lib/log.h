/*
 * log.h — one logger for every XBA program.
 *
 * Daemons write single-line key=value records to stderr, which journald collects:
 *     ts=2026-11-25T16:40:00.123Z level=warn prog=xba-broker event=alert.rejected node=LBY reason=bad-signature
 * Callers pass the "event=... key=value" part; the logger adds time, level and program.  Values that may contain
 * spaces or come from the network go through log_quote().  Never log a secret.
 */
#ifndef XBA_LOG_H
#define XBA_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "error.h"

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN };

/* Set the program name and the lowest level written; call once from main before anything logs. */
void log_init(const char *progname, enum log_level min_level);

/*
 * For a daemon with an event loop: hold info and debug records in stderr's buffer (buffer_bytes) until
 * log_flush(), which the loop calls once per pass before it waits; warnings and worse are still written at once.
 * One write per pass instead of one per accepted alert.  Call first thing in main, before stderr is used.
 */
void log_hold_info(size_t buffer_bytes);
void log_flush(void);

void log_debug(const char *fmt, ...) XBA_PRINTF(1, 2);
void log_info(const char *fmt, ...) XBA_PRINTF(1, 2);
/* Appends ` errno=... error="strerror(errno)"`. */
void log_warn(const char *fmt, ...) XBA_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) XBA_PRINTF(1, 2);
/* Start-up failures and broken invariants only: logs at level=fatal and exits 1. */
void fatal(const char *fmt, ...) XBA_PRINTF(1, 2) XBA_NORETURN;

/*
 * Render untrusted text as one key=value value: wrapped in double quotes, with '"' and '\\' escaped, and each byte
 * of a control character (C0, DEL, C1: U+009B is \xc2\x9b) or of anything that is not UTF-8 written as \xNN;
 * truncated to fit out (size >= 4), never inside a character or an escape.  The result is one line of valid UTF-8.
 * Returns out.
 */
char *log_quote(char *out, size_t size, const char *text);

/*
 * A budget on the records that something outside the program may cause (a peer's bad frames, refused keys): at most
 * burst at once, then per_second.  Over it, log_budget_take says no and counts the record in suppressed, which the
 * caller reports (and zeroes) when it chooses.  Zero-initialised it is full.
 */
struct log_budget {
	struct clock_bucket bucket;
	uint64_t suppressed;
};
bool log_budget_take(struct log_budget *b, double per_second, double burst);

#endif
