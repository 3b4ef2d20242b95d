/*
 * test_display.c — how another node's text reaches an officer's terminal (agents/display.c): wrapped by xba at
 * the terminal's width, never by the terminal (a row the terminal wraps starts at column 0, where a sender's text
 * padded with spaces can pass for another alert's header), and with bidi overrides made visible.
 */
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

int
main(void)
{
	struct check_state t = { 0 };

	RUN(&t, test_wrap_long_word);
	RUN(&t, test_wrap_padded_header);
	RUN(&t, test_wrap_columns);
	RUN(&t, test_wrap_off);
	RUN(&t, test_clean_bidi);
	return check_finish(&t);
}
