/*
 * test_encoding.c — hex, base64 and Z85 (lib/encoding.c), the text forms of keys in files and region.yaml.
 */
#include <string.h>
#include <zmq.h>

#include "check.h"
#include "encoding.h"
#include "error.h"

static void
test_hex(struct check_state *t)
{
	uint8_t bytes[4] = { 0x00, 0xab, 0x7f, 0xff }, back[4];
	char text[9];

	CHECK(t, strcmp(encoding_hex(bytes, 4, text), "00ab7fff") == 0);
	CHECK_CODE(t, encoding_unhex("00AB7fff", back, 4), 0);
	CHECK(t, memcmp(bytes, back, 4) == 0);
	CHECK_CODE(t, encoding_unhex("00ab7f", back, 4), XBA_EDECODE);
	CHECK_CODE(t, encoding_unhex("00ab7fgg", back, 4), XBA_EDECODE);
}

static void
test_base64(struct check_state *t)
{
	uint8_t key[32], back[32];
	char text[64];

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(i * 37 + 1);
	encoding_base64(key, 32, text);
	CHECK(t, strlen(text) == 44);
	CHECK_CODE(t, encoding_unbase64(text, back, 32), 0);
	CHECK(t, memcmp(key, back, 32) == 0);
	CHECK_CODE(t, encoding_unbase64("QUJD", back, 32), XBA_EDECODE);            /* 3 bytes, not 32 */
	text[10] = '*';
	CHECK_CODE(t, encoding_unbase64(text, back, 32), XBA_EDECODE);             /* bad alphabet */
	CHECK_CODE(t, encoding_unbase64("", back, 32), XBA_EDECODE);
	CHECK_CODE(t, encoding_unbase64("QUJDRA==QUJD", back, 9), XBA_EDECODE);     /* padding inside */
}

static void
test_z85(struct check_state *t)
{
	char pub[41], sec[41];
	uint8_t raw[32];

	CHECK_CODE(t, zmq_curve_keypair(pub, sec), 0);
	CHECK_CODE(t, encoding_z85_key(pub, raw), 0);
	CHECK_CODE(t, encoding_z85_key("short", raw), XBA_EDECODE);
	pub[5] = '"'; /* not in the Z85 alphabet */
	CHECK_CODE(t, encoding_z85_key(pub, raw), XBA_EDECODE);
	CHECK_CODE(t, encoding_z85_key("0123456789012345678901234567890123456789X", raw), XBA_EDECODE); /* 41 */
}

int
main(void)
{
	struct check_state t = { 0 };

	RUN(&t, test_hex);
	RUN(&t, test_base64);
	RUN(&t, test_z85);
	return check_finish(&t);
}
