/*
 * test_frame.c — frame decoding (lib/frame.c), the first thing the broker and every agent do with bytes from the
 * network: size limit, decode, body present, required sub-messages present; and the broker's hand-encoded Deliver
 * frame, which must be byte for byte what protobuf-c would send.
 */
#include <stdint.h>
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

/*
 * The broker's hand-encoded Deliver frame against protobuf-c: for each case, the bytes must be identical to what
 * xba__v1__frame__pack() makes of the same frame, and frame_decode() must give back the same fields with the stored
 * envelope bytes verbatim.  envelope_alert_len < 0 means an empty envelope (no field set: zero bytes).
 */
static void
check_deliver(struct check_state *t, uint64_t seq, long envelope_alert_len, const char *rule, bool emergency)
{
	Xba__V1__Frame f = XBA__V1__FRAME__INIT, *back;
	Xba__V1__Deliver deliver = XBA__V1__DELIVER__INIT;
	Xba__V1__Envelope envelope = XBA__V1__ENVELOPE__INIT;
	struct xba_error err = { 0 };
	uint8_t key_id[32], signature[64], *alert = NULL, *stored = NULL, *ours = NULL, *theirs = NULL, *repacked = NULL;
	size_t stored_len, ours_len, theirs_len = 0, written;
	int failed_before = t->current_failed;

	if (envelope_alert_len >= 0) {
		alert = malloc((size_t)envelope_alert_len + 1);
		if (alert == NULL) {
			CHECK(t, alert != NULL);
			return;
		}
		for (long i = 0; i < envelope_alert_len; i++)
			alert[i] = (uint8_t)(i * 13 + 5);
		memset(key_id, 0xab, sizeof(key_id));
		memset(signature, 0x5c, sizeof(signature));
		envelope.alert.data = alert;
		envelope.alert.len = (size_t)envelope_alert_len;
		envelope.key_id.data = key_id;
		envelope.key_id.len = sizeof(key_id);
		envelope.signature.data = signature;
		envelope.signature.len = sizeof(signature);
	}
	/* The envelope as the journal stores it: protobuf-c's encoding. */
	stored_len = xba__v1__envelope__get_packed_size(&envelope);
	stored = malloc(stored_len + 1);
	CHECK(t, stored != NULL);
	if (stored == NULL)
		goto out;
	xba__v1__envelope__pack(&envelope, stored);

	ours_len = frame_deliver_size(seq, stored_len, rule, emergency);
	ours = malloc(ours_len);
	CHECK(t, ours != NULL);
	if (ours == NULL)
		goto out;
	written = frame_encode_deliver(ours, seq, stored, stored_len, rule, emergency);
	CHECK(t, written == ours_len);

	deliver.seq = seq;
	deliver.envelope = &envelope;
	deliver.rule = (char *)(rule != NULL ? rule : "");
	deliver.emergency = emergency;
	f.body_case = XBA__V1__FRAME__BODY_DELIVER;
	f.deliver = &deliver;
	CHECK_CODE(t, frame_encode(&f, &theirs, &theirs_len, &err), 0);
	CHECK(t, theirs_len == ours_len && theirs != NULL && memcmp(theirs, ours, ours_len) == 0);

	back = frame_decode(ours, written, SIZE_MAX, NULL, &err);
	CHECK(t, back != NULL);
	if (back != NULL) {
		const Xba__V1__Deliver *d = back->deliver;

		CHECK(t, back->body_case == XBA__V1__FRAME__BODY_DELIVER);
		CHECK(t, d->seq == seq && d->emergency == emergency);
		CHECK(t, strcmp(d->rule, rule != NULL ? rule : "") == 0);
		CHECK(t, d->envelope->alert.len == (envelope_alert_len > 0 ? (size_t)envelope_alert_len : 0));
		CHECK(t, d->envelope->alert.len == 0 || memcmp(d->envelope->alert.data, alert, d->envelope->alert.len) == 0);
		/* The envelope travels verbatim: packing the decoded one gives the stored bytes back. */
		if ((repacked = malloc(xba__v1__envelope__get_packed_size(d->envelope) + 1)) != NULL) {
			size_t n = xba__v1__envelope__pack(d->envelope, repacked);

			CHECK(t, n == stored_len && memcmp(repacked, stored, n) == 0);
		}
		frame_free(back);
	}
	if (t->current_failed != failed_before)
		fprintf(stderr, "     (case: seq %llu, alert %ld bytes, rule \"%s\", emergency %d)\n",
		    (unsigned long long)seq, envelope_alert_len, rule != NULL ? rule : "(null)", emergency);
out:
	free(alert);
	free(stored);
	free(ours);
	free(theirs);
	free(repacked);
}

static void
test_deliver_hand_encoded(struct check_state *t)
{
	/* Varint boundaries: 1, 2, 3, 4, 5 and 10 bytes; 0 is proto3's default and left out. */
	static const uint64_t seqs[] = { 0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455, 268435456,
		UINT32_MAX, (uint64_t)INT64_MAX, UINT64_MAX };
	char long_rule[201];

	memset(long_rule, 'r', sizeof(long_rule) - 1);
	long_rule[sizeof(long_rule) - 1] = '\0'; /* a length of two varint bytes */
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		check_deliver(t, seqs[i], 900, "neighbours", false);
		check_deliver(t, seqs[i], 900, "members", true);
	}
	check_deliver(t, 42, 900, "", false);
	check_deliver(t, 42, 900, NULL, true);
	check_deliver(t, 42, 900, long_rule, true);
	check_deliver(t, 42, 0, "neighbours", false);   /* envelope of key id and signature only */
	check_deliver(t, 42, -1, "neighbours", false);  /* empty envelope: still written, with length 0 */
	check_deliver(t, 42, 20, "neighbours", true);   /* envelope under 128 bytes: one length byte */
	check_deliver(t, 7, 17 * 1024, "neighbours", true);     /* > 16 KiB: three length bytes at both levels */
	check_deliver(t, 7, 3 * 1024 * 1024, "neighbours", false); /* > 2 MiB: four */
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
	RUN(&t, test_deliver_hand_encoded);
	RUN(&t, test_error_codes);
	return check_finish(&t);
}
