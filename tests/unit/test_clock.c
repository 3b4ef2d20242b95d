/*
 * test_clock.c — RFC 3339 parsing and formatting (lib/clock.c), used for key validity windows, expiry and every
 * time an operator reads or writes.
 */
#include <string.h>

#include "check.h"
#include "clock.h"
#include "error.h"

static void
test_parse(struct check_state *t)
{
	int64_t ms = -1;

	CHECK_CODE(t, clock_parse_rfc3339("1970-01-01T00:00:00Z", &ms), 0);
	CHECK(t, ms == 0);
	CHECK_CODE(t, clock_parse_rfc3339("2026-11-25T16:40:00Z", &ms), 0);
	CHECK(t, ms == 1795624800000LL);
	CHECK_CODE(t, clock_parse_rfc3339("2026-11-25T17:40:00.250+01:00", &ms), 0);
	CHECK(t, ms == 1795624800250LL);
	CHECK_CODE(t, clock_parse_rfc3339("2026-11-25", &ms), 0);
	CHECK(t, ms == 1795564800000LL);
	CHECK_CODE(t, clock_parse_rfc3339("2024-02-29T00:00:00Z", &ms), 0);
	CHECK_CODE(t, clock_parse_rfc3339("2025-02-29T00:00:00Z", &ms), XBA_ESYNTAX);
	CHECK_CODE(t, clock_parse_rfc3339("2026-13-01T00:00:00Z", &ms), XBA_ESYNTAX);
	CHECK_CODE(t, clock_parse_rfc3339("2026-11-25T24:00:00Z", &ms), XBA_ESYNTAX);
	CHECK_CODE(t, clock_parse_rfc3339("2026-11-25T16:40:00", &ms), XBA_ESYNTAX); /* no zone */
	CHECK_CODE(t, clock_parse_rfc3339("2026-11-25T16:40:00Zjunk", &ms), XBA_ESYNTAX);
	CHECK_CODE(t, clock_parse_rfc3339("yesterday", &ms), XBA_ESYNTAX);
	CHECK_CODE(t, clock_parse_rfc3339("", &ms), XBA_ESYNTAX);
}

static void
test_format_round_trip(struct check_state *t)
{
	char buf[40];
	int64_t samples[] = { 0, 1795624800000LL, 1795624800250LL, 951782400000LL, 4102444799999LL };

	CHECK(t, strcmp(clock_format_rfc3339(1795624800000LL, buf, sizeof(buf)), "2026-11-25T16:40:00Z") == 0);
	CHECK(t, strcmp(clock_format_rfc3339(1795624800250LL, buf, sizeof(buf)), "2026-11-25T16:40:00.250Z") == 0);
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		int64_t back = -1;

		clock_format_rfc3339(samples[i], buf, sizeof(buf));
		CHECK_CODE(t, clock_parse_rfc3339(buf, &back), 0);
		CHECK(t, back == samples[i]);
	}
}

static void
test_now(struct check_state *t)
{
	int64_t now = clock_now_ms(), mono1 = clock_mono_ms(), mono2 = clock_mono_ms();

	int64_t ms_before, us, ms_after, us2;

	CHECK(t, now > 1735689600000LL); /* after 2025-01-01: the clock is not zero */
	CHECK(t, mono2 >= mono1);
	/* The microsecond clock is the same monotonic clock, finer. */
	ms_before = clock_mono_ms();
	us = clock_mono_us();
	ms_after = clock_mono_ms();
	us2 = clock_mono_us();
	CHECK(t, us / 1000 >= ms_before && us / 1000 <= ms_after);
	CHECK(t, us2 >= us);
}

/* A full bucket gives its burst at once, then nothing until time refills it. */
static void
test_bucket(struct check_state *t)
{
	struct clock_bucket b = { 0 };
	int taken = 0;

	for (int i = 0; i < 10; i++)
		taken += clock_bucket_take(&b, 0.001, 3); /* one token every 1000 s: none come back meanwhile */
	CHECK(t, taken == 3);
	b.mono -= 2000000;                            /* 2000 s later: 2 tokens */
	taken = 0;
	for (int i = 0; i < 10; i++)
		taken += clock_bucket_take(&b, 0.001, 3);
	CHECK(t, taken == 2);
}

static void
test_span(struct check_state *t)
{
	char buf[40];

	CHECK(t, strcmp(clock_format_span(45999, buf, sizeof(buf)), "46 s") == 0);
	CHECK(t, strcmp(clock_format_span(45499, buf, sizeof(buf)), "45 s") == 0);
	CHECK(t, strcmp(clock_format_span(59600, buf, sizeof(buf)), "1 min") == 0);
	CHECK(t, strcmp(clock_format_span(-7199800, buf, sizeof(buf)), "2 h 0 min") == 0);
	CHECK(t, strcmp(clock_format_span(86380000, buf, sizeof(buf)), "1 day 0 h") == 0);
	CHECK(t, strcmp(clock_format_span(86360000, buf, sizeof(buf)), "23 h 59 min") == 0);
	CHECK(t, strcmp(clock_format_span(-720000, buf, sizeof(buf)), "12 min") == 0);
	CHECK(t, strcmp(clock_format_span(7500000, buf, sizeof(buf)), "2 h 5 min") == 0);
	CHECK(t, strcmp(clock_format_span(-46800000, buf, sizeof(buf)), "13 h 0 min") == 0);
	CHECK(t, strcmp(clock_format_span(34560000000LL, buf, sizeof(buf)), "400 days 0 h") == 0);
	CHECK(t, strcmp(clock_format_span(INT64_MIN, buf, sizeof(buf)), "106751991167 days 7 h") == 0);
}

int
main(void)
{
	struct check_state t = { 0 };

	RUN(&t, test_parse);
	RUN(&t, test_format_round_trip);
	RUN(&t, test_now);
	RUN(&t, test_bucket);
	RUN(&t, test_span);
	return check_finish(&t);
}
