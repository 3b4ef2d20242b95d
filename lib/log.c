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

#include "syntax.h"

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

/* The length of the well-formed UTF-8 character p starts with, or 0 when it starts none.  p is NUL-terminated:
 * a NUL fails the continuation test, so nothing past it is read. */
static size_t
utf8_char_len(const unsigned char *p)
{
	size_t n = *p < 0x80 ? 1 : *p >= 0xc2 && *p <= 0xdf ? 2 : *p >= 0xe0 && *p <= 0xef ? 3
	    : *p >= 0xf0 && *p <= 0xf4 ? 4 : 0;

	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n != 0 && syntax_utf8_valid((const char *)p, n) ? n : 0;
}

char *
log_quote(char *out, size_t size, const char *text)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(text ? text : "");
	size_t o = 0;

	if (size < 4) {
		if (size > 0)
			out[0] = '\0';
		return out;
	}
	out[o++] = '"';
	while (*p != '\0') {
		char piece[16];
		size_t n = 0, len = syntax_control_len(p);

		if (len == 0 && (*p == '"' || *p == '\\')) {
			piece[n++] = '\\';
			piece[n++] = (char)*p;
			len = 1;
		} else if (len == 0 && (len = utf8_char_len(p)) != 0) {
			memcpy(piece, p, len);
			n = len;
		} else {
			/* A control character (C1 is two bytes, both escaped) or a byte that is not UTF-8: written as
			 * \xNN so that the record stays one line of valid UTF-8 and shows what was there. */
			if (len == 0)
				len = 1;
			for (size_t i = 0; i < len; i++) {
				piece[n++] = '\\';
				piece[n++] = 'x';
				piece[n++] = hex[p[i] >> 4];
				piece[n++] = hex[p[i] & 0xf];
			}
		}
		/* Truncate between characters only, leaving room for the closing quote and the NUL. */
		if (o + n + 2 > size)
			break;
		memcpy(out + o, piece, n);
		o += n;
		p += len;
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
