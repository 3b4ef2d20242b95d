/*
 * test_frame.c — frame decoding (lib/frame.c), the first thing the broker and every agent do with bytes from the
 * network: size limit, decode, body present, required sub-messages present.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "frame.h"

static uint8_t *
pack(const Xba__V1__Frame *f, size_t *len)
{
	uint8_t *buf;

	if (frame_encode(f, &buf, len, NULL) != 0)
		return NULL;
	return buf;
}

static void
test_round_trip(struct check_state *t)
{
	Xba__V1__Frame f = XBA__V1__FRAME__INIT, *back;
	Xba__V1__Hello hello = XBA__V1__HELLO__INIT;
	struct xba_error err = { 0 };
	uint8_t *buf;
	size_t len;

	hello.protocol_version = XBA_PROTOCOL_VERSION;
	hello.node_id = "NER";
	hello.resume_after = 42;
	hello.credit = 64;
	f.body_case = XBA__V1__FRAME__BODY_HELLO;
	f.hello = &hello;
	buf = pack(&f, &len);
	back = frame_decode(buf, len, FRAME_MAX_BYTES_DEFAULT, NULL, &err);
	CHECK(t, back != NULL);
	CHECK(t, back && back->body_case == XBA__V1__FRAME__BODY_HELLO && back->hello->resume_after == 42 &&
	    strcmp(back->hello->node_id, "NER") == 0);
	CHECK(t, strcmp(frame_type_name(XBA__V1__FRAME__BODY_HELLO), "hello") == 0);
	frame_free(back);
	free(buf);
}

static void
test_refusals(struct check_state *t)
{
	Xba__V1__Frame f = XBA__V1__FRAME__INIT;
	Xba__V1__Publish publish = XBA__V1__PUBLISH__INIT;
	struct xba_error err = { 0 };
	uint8_t garbage[256], *buf, unknown_type[] = { 0xfa, 0x06, 0x00 }; /* field 111, empty message */
	uint64_t ref = 0;
	size_t len;

	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = (uint8_t)(i * 151 + 7);
	CHECK(t, frame_decode(garbage, sizeof(garbage), FRAME_MAX_BYTES_DEFAULT, NULL, &err) == NULL);
	CHECK(t, err.code == XBA_EDECODE || err.code == XBA_EPROTO);
	CHECK(t, frame_decode(garbage, 10, 8, NULL, &err) == NULL);
	CHECK_CODE(t, err.code, XBA_ETOOBIG);
	CHECK_CONTAINS(t, err.msg, "at most 8");

	CHECK(t, frame_decode((const uint8_t *)"", 0, FRAME_MAX_BYTES_DEFAULT, NULL, &err) == NULL); /* empty frame */
	CHECK_CODE(t, err.code, XBA_EPROTO);
	CHECK(t, frame_decode(unknown_type, sizeof(unknown_type), FRAME_MAX_BYTES_DEFAULT, NULL, &err) == NULL);
	CHECK_CODE(t, err.code, XBA_EPROTO);
	CHECK_CONTAINS(t, err.msg, "unknown frame type");

	f.body_case = XBA__V1__FRAME__BODY_PUBLISH; /* publish without an envelope */
	f.publish = &publish;
	publish.ref = 4242;
	buf = pack(&f, &len);
	CHECK(t, frame_decode(buf, len, FRAME_MAX_BYTES_DEFAULT, &ref, &err) == NULL);
	CHECK(t, ref == 4242);
	CHECK_CODE(t, err.code, XBA_EREQUIRED);
	CHECK_CONTAINS(t, err.msg, "publish.envelope");
	/* Truncations of a valid frame: refused or decoded, never a crash. */
	for (size_t cut = 0; cut < len; cut++) {
		Xba__V1__Frame *back = frame_decode(buf, cut, FRAME_MAX_BYTES_DEFAULT, NULL, &err);

		frame_free(back);
	}
	free(buf);
}

static void
test_error_codes(struct check_state *t)
{
	CHECK(t, frame_error_code_for_frame(XBA_ETOOBIG) == XBA__V1__ERROR_CODE__FRAME_TOO_LARGE);
	CHECK(t, frame_error_code_for_frame(XBA_EPROTO) == XBA__V1__ERROR_CODE__UNKNOWN_FRAME_TYPE);
	CHECK(t, frame_error_code_for_frame(XBA_EDECODE) == XBA__V1__ERROR_CODE__MALFORMED_FRAME);
	CHECK(t, frame_error_code_for_alert(XBA_ESIG) == XBA__V1__ERROR_CODE__BAD_SIGNATURE);
	CHECK(t, frame_error_code_for_alert(XBA_EKEYREVOKED) == XBA__V1__ERROR_CODE__KEY_REVOKED);
	CHECK(t, frame_error_code_for_alert(XBA_EUTF8) == XBA__V1__ERROR_CODE__INVALID_ALERT);
	CHECK(t, frame_error_code_for_alert(XBA_EWRONGSIGNER) == XBA__V1__ERROR_CODE__WRONG_SIGNER);
	CHECK(t, strcmp(frame_error_code_name(XBA__V1__ERROR_CODE__BAD_SIGNATURE), "BAD_SIGNATURE") == 0);
}

int
main(void)
{
	struct check_state t = { 0 };

	RUN(&t, test_round_trip);
	RUN(&t, test_refusals);
	RUN(&t, test_error_codes);
	return check_finish(&t);
}
