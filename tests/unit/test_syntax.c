/*
 * test_syntax.c — identifiers and text validators (lib/syntax.c): the first gate for every id and text field.
 */
#include <string.h>

#include "check.h"
#include "syntax.h"

static void
test_utf8(struct check_state *t)
{
	const char arabic[] = "\xd8\xaa\xd9\x86\xd8\xa8\xd9\x8a\xd9\x87"; /* تنبيه */
	const char french[] = "Fronti\xc3\xa8re ferm\xc3\xa9" "e";

	CHECK(t, syntax_utf8_valid("plain", 5));
	CHECK(t, syntax_utf8_valid(arabic, strlen(arabic)));
	CHECK(t, syntax_utf8_valid(french, strlen(french)));
	CHECK(t, syntax_utf8_valid("\xf0\x9f\x9a\xa8", 4));       /* U+1F6A8 */
	CHECK(t, !syntax_utf8_valid("\xc0\xaf", 2));              /* overlong '/' */
	CHECK(t, !syntax_utf8_valid("\xe0\x80\xaf", 3));          /* overlong, 3 bytes */
	CHECK(t, !syntax_utf8_valid("\xed\xa0\x80", 3));          /* surrogate U+D800 */
	CHECK(t, !syntax_utf8_valid("\x80", 1));                  /* lone continuation */
	CHECK(t, !syntax_utf8_valid("\xc3", 1));                  /* truncated */
	CHECK(t, !syntax_utf8_valid("\xf4\x90\x80\x80", 4));      /* above U+10FFFF */
	CHECK(t, !syntax_utf8_valid("a\0b", 3));                  /* embedded NUL */
}

/* C0 and DEL are one byte, C1 two (its UTF-8 form); a no-break space (U+00A0) and Arabic letters are text. */
static void
test_control_len(struct check_state *t)
{
	CHECK(t, syntax_control_len((const unsigned char *)"\x1b[31m") == 1);
	CHECK(t, syntax_control_len((const unsigned char *)"\n") == 1);
	CHECK(t, syntax_control_len((const unsigned char *)"\x7f") == 1);
	CHECK(t, syntax_control_len((const unsigned char *)"\xc2\x9b" "2J") == 2);
	CHECK(t, syntax_control_len((const unsigned char *)"\xc2\x80") == 2);
	CHECK(t, syntax_control_len((const unsigned char *)"\xc2\xa0") == 0);
	CHECK(t, syntax_control_len((const unsigned char *)"\xd8\xaa") == 0);
	CHECK(t, syntax_control_len((const unsigned char *)"a") == 0);
	CHECK(t, syntax_control_len((const unsigned char *)"") == 0);
	CHECK(t, syntax_control_len((const unsigned char *)"\xc2") == 0); /* cut: the NUL is not a C1 byte */
	{
		/* Scrubbed in place, byte for byte: text (Arabic, a no-break space) stays. */
		char s[] = "a\x1b[2J\r\n== \xc2\x9b" "b \xd8\xaa\xc2\xa0";

		syntax_scrub_controls(s);
		CHECK(t, strcmp(s, "a?[2J?" "?== ?" "?b \xd8\xaa\xc2\xa0") == 0); /* split: no trigraphs */
		syntax_scrub_controls(NULL);
	}
}

static void
test_node_ids(struct check_state *t)
{
	CHECK(t, syntax_node_id_valid("DZA"));
	CHECK(t, syntax_node_id_valid("IOM-ROMENA"));
	CHECK(t, syntax_node_id_valid("WHO-AFRO"));
	CHECK(t, !syntax_node_id_valid("dza"));
	CHECK(t, !syntax_node_id_valid("D"));
	CHECK(t, !syntax_node_id_valid("1AB"));
	CHECK(t, !syntax_node_id_valid("AB-"));
	CHECK(t, !syntax_node_id_valid("A B"));
	CHECK(t, !syntax_node_id_valid("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456")); /* 33 */
	CHECK(t, syntax_node_id_valid("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"));   /* 32 */
	CHECK(t, !syntax_node_id_valid(NULL));
}

static void
test_iso3166(struct check_state *t)
{
	const char *region[] = { "DZA", "LBY", "SDN", "TCD", "MLI", "NER" };

	for (size_t i = 0; i < 6; i++)
		CHECK(t, syntax_iso3166_alpha3(region[i]));
	CHECK(t, syntax_iso3166_alpha3("ABW"));
	CHECK(t, syntax_iso3166_alpha3("ZWE"));
	CHECK(t, !syntax_iso3166_alpha3("XXX"));
	CHECK(t, !syntax_iso3166_alpha3("IOM"));
	CHECK(t, !syntax_iso3166_alpha3("ne"));
	CHECK(t, !syntax_iso3166_alpha3("NERR"));
}

static void
test_uuid(struct check_state *t)
{
	char id[XBA_UUID_LEN + 1], other[XBA_UUID_LEN + 1];

	CHECK(t, syntax_uuid_valid("3f1c2a9e-5b7d-4c1e-9a2b-7d8e9f0a1b2c"));
	CHECK(t, !syntax_uuid_valid("3F1C2A9E-5B7D-4C1E-9A2B-7D8E9F0A1B2C"));
	CHECK(t, !syntax_uuid_valid("3f1c2a9e5b7d4c1e9a2b7d8e9f0a1b2c"));
	CHECK(t, !syntax_uuid_valid("3f1c2a9e-5b7d-4c1e-9a2b-7d8e9f0a1b2"));
	CHECK(t, !syntax_uuid_valid("3f1c2a9e-5b7d-4c1e-9a2b_7d8e9f0a1b2c"));
	CHECK_CODE(t, syntax_uuid_new(id), 0);
	CHECK_CODE(t, syntax_uuid_new(other), 0);
	CHECK(t, syntax_uuid_valid(id));
	CHECK(t, id[14] == '7');
	CHECK(t, strchr("89ab", id[19]) != NULL);
	CHECK(t, strcmp(id, other) != 0);

	/* Version 7: the first 48 bits are the time, so that ids sort by when they were made. */
	char early[XBA_UUID_LEN + 1], late[XBA_UUID_LEN + 1], same[XBA_UUID_LEN + 1];
	CHECK_CODE(t, syntax_uuid_v7(1764115200123LL, early), 0); /* 2025-11-26T00:00:00.123Z = 0x19abd75b87b */
	CHECK(t, strncmp(early, "019abd75-b87b-7", 15) == 0);
	CHECK(t, strchr("89ab", early[19]) != NULL);
	CHECK_CODE(t, syntax_uuid_v7(1764115200124LL, late), 0);
	CHECK(t, strcmp(early, late) < 0);
	CHECK_CODE(t, syntax_uuid_v7(1764115200123LL, same), 0);
	CHECK(t, strncmp(early, same, 13) == 0 && strcmp(early, same) != 0); /* same ms: the random bits differ */
	CHECK_CODE(t, syntax_uuid_v7(-5, early), 0);
	CHECK(t, strncmp(early, "00000000-0000-7", 15) == 0);
	CHECK(t, syntax_uuid_valid(early));
}

static void
test_language_tags(struct check_state *t)
{
	CHECK(t, syntax_language_tag_valid("ar"));
	CHECK(t, syntax_language_tag_valid("fr"));
	CHECK(t, syntax_language_tag_valid("fr-NE"));
	CHECK(t, syntax_language_tag_valid("ar-Latn"));
	CHECK(t, syntax_language_tag_valid("en-GB"));
	CHECK(t, syntax_language_tag_valid("ber"));
	CHECK(t, !syntax_language_tag_valid(""));
	CHECK(t, !syntax_language_tag_valid("f"));
	CHECK(t, !syntax_language_tag_valid("french"));
	CHECK(t, !syntax_language_tag_valid("fr-"));
	CHECK(t, !syntax_language_tag_valid("fr_NE"));
	CHECK(t, !syntax_language_tag_valid("fr-N"));
	CHECK(t, !syntax_language_tag_valid("12"));
}

int
main(void)
{
	struct check_state t = { 0 };

	RUN(&t, test_utf8);
	RUN(&t, test_control_len);
	RUN(&t, test_node_ids);
	RUN(&t, test_iso3166);
	RUN(&t, test_uuid);
	RUN(&t, test_language_tags);
	return check_finish(&t);
}
