/*
 * test_display.c — how another node's text reaches an officer's terminal (agents/display.c): wrapped by xba at
 * the terminal's width, never by the terminal (a row the terminal wraps starts at column 0, where a sender's text
 * padded with spaces can pass for another alert's header), and with bidi overrides made visible.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "display.h"
#include "syntax.h"

/* display_write_wrapped of text into a string the caller frees; *rows the rows written. */
static char *
wrapped(int width, const char *text, int *rows)
{
	char *out = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&out, &len);

	if (mem == NULL)
		return NULL;
	*rows = display_write_wrapped(mem, width, text, strlen(text));
	fclose(mem);
	return out;
}

static char *
repeat(const char *unit, int n)
{
	size_t len = strlen(unit);
	char *s = malloc(len * (size_t)n + 1);

	for (int i = 0; i < n && s != NULL; i++)
		memcpy(s + len * (size_t)i, unit, len);
	if (s != NULL)
		s[len * (size_t)n] = '\0';
	return s;
}

/* A word longer than the row is cut at the width; the rest continues five columns in. */
static void
test_wrap_long_word(struct check_state *t)
{
	char *line = repeat("x", 100), *want = NULL, *out;
	int rows = 0;

	out = wrapped(80, line, &rows);
	want = malloc(120);
	snprintf(want, 120, "%.80s\n     %.20s", line, line);
	CHECK_STR(t, out, want);
	CHECK(t, rows == 2);
	free(out);
	free(want);
	free(line);
}

/* A sender's spaces cannot put text at column 0: the row breaks after a space, the rest is indented. */
static void
test_wrap_padded_header(struct check_state *t)
{
	char text[256];
	char *out;
	int rows = 0;

	snprintf(text, sizeof(text), "   Convoi%71s== 2026-11-26 09:00:00Z  from LBY  [HEALTH] EXTREME\n", "");
	out = wrapped(80, text, &rows);
	CHECK(t, out != NULL && strstr(out, "\n== ") == NULL);
	CHECK_CONTAINS(t, out, "\n     == 2026-11-26");
	CHECK(t, rows == 2);
	free(out);
}

/* Columns, not bytes: Arabic letters are one column in two bytes and never cut in half; our own escape sequences
 * take none; characters from U+1100 up (emoji) count two. */
static void
test_wrap_columns(struct check_state *t)
{
	char *arabic = repeat("\xd8\xaa", 100), *emoji = repeat("\xf0\x9f\x9a\xa8", 50), *out, text[64];
	int rows = 0;

	out = wrapped(80, arabic, &rows);
	CHECK(t, out != NULL && strncmp(out, arabic, 160) == 0 && strncmp(out + 160, "\n     ", 6) == 0);
	CHECK(t, rows == 2);
	free(out);
	out = wrapped(80, emoji, &rows);
	CHECK(t, out != NULL && strncmp(out + 160, "\n     ", 6) == 0); /* 40 emoji of 2 columns: 80 */
	free(out);
	out = wrapped(5, arabic, &rows); /* no wider than the indent: still never half a character */
	CHECK(t, out != NULL && syntax_utf8_valid(out, strlen(out)));
	free(out);
	snprintf(text, sizeof(text), "\033[1m%s\033[0m", "0123456789012345678901234567890123456789");
	out = wrapped(40, text, &rows);
	CHECK_STR(t, out, text);
	CHECK(t, rows == 1);
	free(out);
	free(arabic);
	free(emoji);
}

/* Width 0 writes the text as it is; every line counts one row. */
static void
test_wrap_off(struct check_state *t)
{
	char *line = repeat("y", 300), *out;
	int rows = 0;

	out = wrapped(0, line, &rows);
	CHECK_STR(t, out, line);
	free(out);
	out = wrapped(0, "a\nb\n", &rows);
	CHECK(t, rows == 2);
	free(out);
	free(line);
}

/* U+202E (right-to-left override) and U+2066 (isolate) become U+FFFD; U+200F (a mark Arabic text uses) stays. */
static void
test_clean_bidi(struct check_state *t)
{
	char out[64];

	CHECK_STR(t, display_clean("54\xe2\x80\xae" "45", out, sizeof(out)), "54\xef\xbf\xbd" "45");
	CHECK_STR(t, display_clean("a\xe2\x81\xa6" "b", out, sizeof(out)), "a\xef\xbf\xbd" "b");
	CHECK_STR(t, display_clean("a\xe2\x80\x8f" "b", out, sizeof(out)), "a\xe2\x80\x8f" "b");
	CHECK_STR(t, display_clean("a\x1b[31m", out, sizeof(out)), "a\xef\xbf\xbd[31m");
}

/* An entry (display_entry, display_entry_json) rendered into a string the caller frees. */
static char *
rendered(const Xba__V1__InboxEntry *e, bool json)
{
	struct display_options opts = { .color = false, .bell = false, .language = "fr", .width = 0 };
	char *out = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&out, &len);

	if (mem == NULL)
		return NULL;
	if (json)
		display_entry_json(mem, e);
	else
		display_entry(mem, &opts, e);
	fclose(mem);
	return out;
}

/* An area reaches the officer as its sender drew it: circles, polygons (a long one cut in text, whole in --json)
 * and geocodes; they were signed, delivered, and shown as the description alone. */
static void
test_areas_shown(struct check_state *t)
{
	Xba__V1__Point centre = XBA__V1__POINT__INIT, pts[20], *pt_list[20];
	Xba__V1__Circle circle = XBA__V1__CIRCLE__INIT, *circles[1] = { &circle };
	Xba__V1__Polygon polygon = XBA__V1__POLYGON__INIT, *polygons[1] = { &polygon };
	Xba__V1__Geocode geocode = XBA__V1__GEOCODE__INIT, *geocodes[1] = { &geocode };
	Xba__V1__Area area = XBA__V1__AREA__INIT, *areas[1] = { &area };
	Xba__V1__Info info = XBA__V1__INFO__INIT, *infos[1] = { &info };
	Xba__V1__Alert alert = XBA__V1__ALERT__INIT;
	Xba__V1__InboxEntry entry = XBA__V1__INBOX_ENTRY__INIT;
	char *text, *json;

	centre.lat = 20.4133;
	centre.lon = 9.0411;
	circle.center = &centre;
	circle.radius_km = 5;
	for (int i = 0; i < 20; i++) {
		xba__v1__point__init(&pts[i]);
		pts[i].lat = 20.0 + i / 100.0;
		pts[i].lon = i == 19 ? 9.0 : 9.0 + i / 100.0;
		pt_list[i] = &pts[i];
	}
	polygon.points = pt_list;
	polygon.n_points = 20;
	geocode.name = (char *)"border-post";
	geocode.value = (char *)"NE-ASSAMAKA";
	area.description = (char *)"Désert à l'ouest de Toummo";
	area.circles = circles;
	area.n_circles = 1;
	area.polygons = polygons;
	area.n_polygons = 1;
	area.geocodes = geocodes;
	area.n_geocodes = 1;
	info.language = (char *)"fr";
	info.headline = (char *)"Migrants en détresse";
	alert.id = (char *)"01a21a0a-0000-7000-8000-000000000001";
	alert.origin = (char *)"NER";
	alert.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ALERT;
	alert.info = infos;
	alert.n_info = 1;
	alert.areas = areas;
	alert.n_areas = 1;
	entry.alert = &alert;
	entry.acknowledged = true;

	text = rendered(&entry, false);
	json = rendered(&entry, true);
	CHECK(t, text != NULL && json != NULL);
	if (text == NULL || json == NULL) {
		free(text);
		free(json);
		return;
	}
	CHECK(t, strstr(text, "area: Désert à l'ouest de Toummo") != NULL);
	CHECK(t, strstr(text, "circle: centre 20.41330,9.04110 (lat,lon), radius 5 km") != NULL);
	CHECK(t, strstr(text, "polygon of 20 points (lat,lon): 20.00000,9.00000 20.01000,9.01000") != NULL);
	CHECK(t, strstr(text, "... and 8 more (--json has every point)") != NULL);
	CHECK(t, strstr(text, "geocode: border-post = NE-ASSAMAKA") != NULL);
	CHECK(t, strstr(json, "\"areas\":[\"Désert à l'ouest de Toummo\"]") != NULL);
	CHECK(t, strstr(json, "\"circles\":[{\"lat\":20.4133,\"lon\":9.0411,\"radius_km\":5}]") != NULL);
	CHECK(t, strstr(json, "[20.19,9]]]") != NULL); /* the polygon's twentieth point, in --json */
	CHECK(t, strstr(json, "\"geocodes\":[{\"name\":\"border-post\",\"value\":\"NE-ASSAMAKA\"}]") != NULL);
	free(text);
	free(json);
}

int
main(void)
{
	struct check_state t = { 0 };

	RUN(&t, test_wrap_long_word);
	RUN(&t, test_wrap_padded_header);
	RUN(&t, test_wrap_columns);
	RUN(&t, test_wrap_off);
	RUN(&t, test_clean_bidi);
	RUN(&t, test_areas_shown);
	return check_finish(&t);
}
