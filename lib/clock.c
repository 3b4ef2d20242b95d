/*
 * clock.c — wall and monotonic time, and RFC 3339 text (see clock.h).  Conversion uses the proleptic Gregorian
 * day count directly rather than timegm(), which is not in C11 or POSIX.
 */
#include "clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "error.h"

int64_t
clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Days from 1970-01-01 to y-m-d (Howard Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int
days_in_month(int y, int m)
{
	static const int dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dim[m - 1];
}

int
clock_parse_rfc3339(const char *text, int64_t *out_ms)
{
	const char *p = text;
	int year, mon, day, hh = 0, mm = 0, ss = 0, ms = 0, offset_min = 0;

	if (text == NULL || digits(&p, 4, &year) || *p++ != '-' || digits(&p, 2, &mon) || *p++ != '-' ||
	    digits(&p, 2, &day))
		return XBA_ESYNTAX;
	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
		return XBA_ESYNTAX;
	if (*p != '\0') {
		if ((*p != 'T' && *p != 't' && *p != ' ') || (p++, digits(&p, 2, &hh)) || *p++ != ':' ||
		    digits(&p, 2, &mm) || *p++ != ':' || digits(&p, 2, &ss))
			return XBA_ESYNTAX;
		if (hh > 23 || mm > 59 || ss > 60)
			return XBA_ESYNTAX;
		if (*p == '.') {
			int scale = 100, n = 0;

			p++;
			while (*p >= '0' && *p <= '9') {
				ms += (*p - '0') * scale;
				scale /= 10;
				p++;
				n++;
			}
			if (n == 0)
				return XBA_ESYNTAX;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p++ == '-' ? -1 : 1, oh, om;

			if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
				return XBA_ESYNTAX;
			offset_min = sign * (oh * 60 + om);
		} else {
			return XBA_ESYNTAX;
		}
		if (*p != '\0')
			return XBA_ESYNTAX;
	}
	if (ss == 60)
		ss = 59; /* a leap second is held at :59.999 rather than refused */
	*out_ms = ((days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss) - (int64_t)offset_min * 60) *
	    1000 + ms;
	return 0;
}

char *
clock_format_rfc3339(int64_t ms, char *out, size_t size)
{
	int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000, days, y;
	int rem_ms = (int)(ms - secs * 1000), m, d, sod;

	days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
	sod = (int)(secs - days * 86400);
	civil_from_days(days, &y, &m, &d);
	if (rem_ms != 0)
		snprintf(out, size, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)y, m, d, sod / 3600,
		    sod / 60 % 60, sod % 60, rem_ms);
	else
		snprintf(out, size, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d, sod / 3600, sod / 60 % 60,
		    sod % 60);
	return out;
}

char *
clock_format_span(int64_t ms, char *out, size_t size)
{
	/* Every span shown is a measured clock offset, a round trip's worth off either way: a clock set 2 h ahead
	 * measures 7 199 800 ms, and truncating said "1 h 59 min".  Rounded to the last unit shown, it says 2 h. */
	uint64_t abs_ms = ms < 0 ? (uint64_t)-(ms + 1) + 1 : (uint64_t)ms;
	uint64_t n;

	if (abs_ms < 59500) {
		snprintf(out, size, "%llu s", (unsigned long long)((abs_ms + 500) / 1000));
	} else if (abs_ms < 3570000) {
		snprintf(out, size, "%llu min", (unsigned long long)((abs_ms + 30000) / 60000));
	} else if (abs_ms < 86370000) {
		n = (abs_ms + 30000) / 60000;
		snprintf(out, size, "%llu h %llu min", (unsigned long long)(n / 60), (unsigned long long)(n % 60));
	} else {
		n = (abs_ms + 1800000) / 3600000;
		snprintf(out, size, "%llu %s %llu h", (unsigned long long)(n / 24), n / 24 == 1 ? "day" : "days",
		    (unsigned long long)(n % 24));
	}
	return out;
}

bool
clock_bucket_take(struct clock_bucket *b, double per_second, double burst)
{
	int64_t now = clock_mono_ms();

	if (b->mono == 0)
		b->tokens = burst;
	else
		b->tokens += (double)(now - b->mono) * per_second / 1000.0;
	if (b->tokens > burst)
		b->tokens = burst;
	b->mono = now;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}
