/*
 * log.c — writes the key=value records described in log.h.  The logger's settings are process-wide by nature
 * (stderr is), so they live in one file-static struct set once by log_init() from main; nothing else writes it.
 */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
	const char *progname;     /* prog= value */
	enum log_level min_level; /* lower levels are dropped */
	bool hold_info;           /* info and debug wait in stderr's buffer for log_flush() */
} log_settings = { "xba", LOG_LEVEL_INFO, false };

void
log_init(const char *progname, enum log_level min_level)
{
	log_settings.progname = progname;
	log_settings.min_level = min_level;
}

void
log_hold_info(size_t buffer_bytes)
{
	if (setvbuf(stderr, NULL, _IOFBF, buffer_bytes) == 0)
		log_settings.hold_info = true;
}

void
log_flush(void)
{
	fflush(stderr);
}

static void
log_vwrite(const char *level, const char *fmt, va_list ap, int with_errno, int saved_errno)
{
	char line[2048], stamp[40];
	struct timespec now;
	struct tm tm;
	size_t used;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s prog=%s ", stamp, now.tv_nsec / 1000000L, level,
	    log_settings.progname);
	used = n < 0 ? 0 : (size_t)n;
	if (used < sizeof(line)) {
		n = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
		used += n < 0 ? 0 : (size_t)n;
	}
	if (with_errno && used < sizeof(line)) {
		char quoted[256];

		n = snprintf(line + used, sizeof(line) - used, " errno=%d error=%s", saved_errno,
		    log_quote(quoted, sizeof(quoted), strerror(saved_errno)));
		used += n < 0 ? 0 : (size_t)n;
	}
	if (used >= sizeof(line))
		used = sizeof(line) - 1;
	/* One fputs per record so concurrent writers never interleave within a line. */
	line[used] = '\n';
	fwrite(line, 1, used + 1, stderr);
	if (!log_settings.hold_info || (level[0] != 'i' && level[0] != 'd'))
		fflush(stderr);
}

#define LOG_BODY(level_enum, level_name, with_errno)                                         \
	do {                                                                                 \
		int saved_errno = errno;                                                     \
		va_list ap;                                                                  \
		if ((level_enum) < log_settings.min_level)                                   \
			return;                                                              \
		va_start(ap, fmt);                                                           \
		log_vwrite(level_name, fmt, ap, with_errno, saved_errno);                    \
		va_end(ap);                                                                  \
		errno = saved_errno;                                                         \
	} while (0)

void log_debug(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_DEBUG, "debug", 0); }
void log_info(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_INFO, "info", 0); }
void log_warn(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_WARN, "warn", 1); }
void log_warnx(const char *fmt, ...) { LOG_BODY(LOG_LEVEL_WARN, "warn", 0); }

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("fatal", fmt, ap, 0, 0);
	va_end(ap);
	exit(1);
}

char *
log_quote(char *out, size_t size, const char *text)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (size < 4) {
		if (size > 0)
			out[0] = '\0';
		return out;
	}
	out[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p != '\0'; p++) {
		/* Leave room for the longest escape (4), the closing quote and the NUL. */
		if (o + 6 > size)
			break;
		if (*p == '"' || *p == '\\') {
			out[o++] = '\\';
			out[o++] = (char)*p;
		} else if (*p < 0x20 || *p == 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 0xf];
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

bool
log_budget_take(struct log_budget *b, double per_second, double burst)
{
	if (clock_bucket_take(&b->bucket, per_second, burst))
		return true;
	b->suppressed++;
	return false;
}
