/*
 * test_log.c — log_quote (lib/log.c): how every value from outside (the network, agent.yaml, an officer) is written
 * into a key=value record, so that no value can split a record, forge a key or leave invalid UTF-8 in the log.
 */
#include <string.h>

#include "check.h"
#include "log.h"
#include "syntax.h"

static void
test_plain(struct check_state *t)
{
	char out[64];

	CHECK_STR(t, log_quote(out, sizeof(out), "Amina Haddad"), "\"Amina Haddad\"");
	CHECK_STR(t, log_quote(out, sizeof(out), NULL), "\"\"");
	CHECK_STR(t, log_quote(out, sizeof(out), "a\"b\\c"), "\"a\\\"b\\\\c\"");
	CHECK_STR(t, log_quote(out, sizeof(out), "Fronti\xc3\xa8re \xd8\xaa\xd9\x86"),
	    "\"Fronti\xc3\xa8re \xd8\xaa\xd9\x86\"");
	CHECK_STR(t, log_quote(out, sizeof(out), "\xc2\xa0"), "\"\xc2\xa0\""); /* a no-break space is text */
	CHECK_STR(t, log_quote(out, 3, "abc"), "");
}

/* C0, DEL and C1 (what a terminal acts on) all come out as \xNN, every byte of them. */
static void
test_controls(struct check_state *t)
{
	char out[64];

	CHECK_STR(t, log_quote(out, sizeof(out), "a\nb\x1b[2J\x7f"), "\"a\\x0ab\\x1b[2J\\x7f\"");
	CHECK_STR(t, log_quote(out, sizeof(out), "Omar \xc2\x9b" "2J"), "\"Omar \\xc2\\x9b2J\"");
	CHECK_STR(t, log_quote(out, sizeof(out), "\xc2\x85\xc2\x80"), "\"\\xc2\\x85\\xc2\\x80\"");
}

/* Bytes that are not UTF-8 are escaped too, so the log stays valid UTF-8. */
static void
test_not_utf8(struct check_state *t)
{
	char out[64];

	CHECK_STR(t, log_quote(out, sizeof(out), "caf\xe9"), "\"caf\\xe9\"");
	CHECK_STR(t, log_quote(out, sizeof(out), "\x80x"), "\"\\x80x\"");
	CHECK_STR(t, log_quote(out, sizeof(out), "\xc3"), "\"\\xc3\"");
	CHECK_STR(t, log_quote(out, sizeof(out), "\xe2\x82"), "\"\\xe2\\x82\"");
	CHECK_STR(t, log_quote(out, sizeof(out), "\xc0\xaf"), "\"\\xc0\\xaf\"");
	CHECK_STR(t, log_quote(out, sizeof(out), "\xed\xa0\x80"), "\"\\xed\\xa0\\x80\"");
}

/* Every backslash in q starts a whole escape (\" \\ \xNN), and the only bare quotes are the first and the last. */
static int
escapes_whole(const char *q)
{
	size_t len = strlen(q);

	for (size_t i = 1; i + 1 < len; i++) {
		if (q[i] == '"')
			return 0;
		if (q[i] != '\\')
			continue;
		if (q[i + 1] == '"' || q[i + 1] == '\\')
			i++;
		else if (q[i + 1] == 'x' && i + 3 < len - 1 && strchr("0123456789abcdef", q[i + 2]) != NULL &&
		    strchr("0123456789abcdef", q[i + 3]) != NULL)
			i += 3;
		else
			return 0;
		if (i >= len - 1)
			return 0;
	}
	return 1;
}

/* Truncation stops between characters: never inside a multi-byte character or an escape. */
static void
test_truncation(struct check_state *t)
{
	/* "aé" then Arabic, an emoji, an escape and a C1 control, so that every kind of piece meets the end. */
	const char *text = "a\xc3\xa9\xd8\xaa\xd9\x86\xf0\x9f\x9a\xa8\"\x1b\xc2\x9b" "z";
	char out[64];

	CHECK_STR(t, log_quote(out, 6, text), "\"a\xc3\xa9\"");
	CHECK_STR(t, log_quote(out, 7, text), "\"a\xc3\xa9\"");
	CHECK_STR(t, log_quote(out, 8, text), "\"a\xc3\xa9\xd8\xaa\"");
	CHECK_STR(t, log_quote(out, 13, text), "\"a\xc3\xa9\xd8\xaa\xd9\x86\"");
	CHECK_STR(t, log_quote(out, 14, text), "\"a\xc3\xa9\xd8\xaa\xd9\x86\xf0\x9f\x9a\xa8\"");
	for (size_t size = 4; size <= sizeof(out); size++) {
		size_t len;

		log_quote(out, size, text);
		len = strlen(out);
		CHECK(t, len < size);
		CHECK(t, len >= 2 && out[0] == '"' && out[len - 1] == '"');
		CHECK(t, syntax_utf8_valid(out, len));
		CHECK(t, escapes_whole(out));
	}
	CHECK_STR(t, log_quote(out, sizeof(out), text),
	    "\"a\xc3\xa9\xd8\xaa\xd9\x86\xf0\x9f\x9a\xa8\\\"\\x1b\\xc2\\x9bz\"");
}

int
main(void)
{
	struct check_state t = { 0 };

	RUN(&t, test_plain);
	RUN(&t, test_controls);
	RUN(&t, test_not_utf8);
	RUN(&t, test_truncation);
	return check_finish(&t);
}
