/*
 * test_frame.c — frame decoding (lib/frame.c), the first thing the broker and every agent do with bytes from the
 * network: size limit, decode, body present, required sub-messages present; and the broker's hand-encoded Deliver
 * and DeliverBatch frames, which must be byte for byte what protobuf-c would send.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "check.h"
#include "envelope.h"
#include "frame.h"
#include "rules.h"

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
	free(buf);
	{
		Xba__V1__Envelope envelope = XBA__V1__ENVELOPE__INIT;

		publish.envelope = &envelope; /* an envelope, but ref 0: protocol §2.3 wants >= 1 */
		publish.ref = 0;
		buf = pack(&f, &len);
		CHECK(t, frame_decode(buf, len, FRAME_MAX_BYTES_DEFAULT, &ref, &err) == NULL);
		CHECK_CODE(t, err.code, XBA_EREQUIRED);
		CHECK_CONTAINS(t, err.msg, "publish.ref");
		publish.envelope = NULL;
		publish.ref = 4242;
	}
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

/*
 * The hand-encoded DeliverBatch against protobuf-c: n elements of envelopes of alert_len bytes (seqs from first_seq,
 * every third an emergency), built the way deliver.c builds them, must be byte for byte protobuf-c's packing of the
 * same Frame, and decode to the same deliveries in the same order.
 */
static void
check_batch(struct check_state *t, size_t n, size_t alert_len, uint64_t first_seq)
{
	Xba__V1__Frame f = XBA__V1__FRAME__INIT, *back = NULL;
	Xba__V1__DeliverBatch batch = XBA__V1__DELIVER_BATCH__INIT;
	Xba__V1__Envelope envelope = XBA__V1__ENVELOPE__INIT;
	Xba__V1__Deliver *deliveries = calloc(n, sizeof(*deliveries));
	Xba__V1__Deliver **pointers = calloc(n, sizeof(*pointers));
	struct xba_error err = { 0 };
	uint8_t *alert = malloc(alert_len + 1), *stored = NULL, *buf = NULL, *theirs = NULL, *start = NULL, *at;
	size_t stored_len, total = 0, frame_len = 0, theirs_len = 0;
	int failed_before = t->current_failed;

	CHECK(t, deliveries != NULL && pointers != NULL && alert != NULL);
	if (deliveries == NULL || pointers == NULL || alert == NULL)
		goto out;
	for (size_t i = 0; i < alert_len; i++)
		alert[i] = (uint8_t)(i * 7 + 3);
	envelope.alert.data = alert;
	envelope.alert.len = alert_len;
	stored_len = xba__v1__envelope__get_packed_size(&envelope);
	if ((stored = malloc(stored_len + 1)) == NULL)
		goto out;
	xba__v1__envelope__pack(&envelope, stored);

	for (size_t i = 0; i < n; i++) {
		xba__v1__deliver__init(&deliveries[i]);
		deliveries[i].seq = first_seq + i;
		deliveries[i].envelope = &envelope;
		deliveries[i].rule = i % 2 ? "neighbours" : "";
		deliveries[i].emergency = i % 3 == 0;
		pointers[i] = &deliveries[i];
		total += frame_deliver_size(deliveries[i].seq, stored_len, deliveries[i].rule, deliveries[i].emergency);
	}
	if ((buf = malloc(FRAME_BATCH_HEADER_MAX + total)) == NULL)
		goto out;
	at = buf + FRAME_BATCH_HEADER_MAX;
	for (size_t i = 0; i < n; i++)
		at += frame_encode_batch_element(at, deliveries[i].seq, stored, stored_len, deliveries[i].rule,
		    deliveries[i].emergency);
	CHECK(t, (size_t)(at - buf) == FRAME_BATCH_HEADER_MAX + total);
	start = frame_finish_deliver_batch(buf + FRAME_BATCH_HEADER_MAX, total, &frame_len);
	CHECK(t, start >= buf && start + frame_len == at);

	batch.n_deliveries = n;
	batch.deliveries = pointers;
	f.body_case = XBA__V1__FRAME__BODY_DELIVER_BATCH;
	f.deliver_batch = &batch;
	CHECK_CODE(t, frame_encode(&f, &theirs, &theirs_len, &err), 0);
	CHECK(t, theirs != NULL && theirs_len == frame_len && memcmp(theirs, start, frame_len) == 0);

	back = frame_decode(start, frame_len, SIZE_MAX, NULL, &err);
	CHECK(t, back != NULL && back->body_case == XBA__V1__FRAME__BODY_DELIVER_BATCH);
	if (back != NULL && back->body_case == XBA__V1__FRAME__BODY_DELIVER_BATCH) {
		CHECK(t, back->deliver_batch->n_deliveries == n);
		for (size_t i = 0; i < n && i < back->deliver_batch->n_deliveries; i++) {
			const Xba__V1__Deliver *d = back->deliver_batch->deliveries[i];

			CHECK(t, d->seq == first_seq + i && d->emergency == (i % 3 == 0));
			CHECK(t, strcmp(d->rule, deliveries[i].rule) == 0);
			CHECK(t, d->envelope->alert.len == alert_len &&
			    (alert_len == 0 || memcmp(d->envelope->alert.data, alert, alert_len) == 0));
		}
	}
	if (t->current_failed != failed_before)
		fprintf(stderr, "     (case: %zu deliveries of %zu-byte alerts from seq %llu)\n", n, alert_len,
		    (unsigned long long)first_seq);
out:
	frame_free(back);
	free(deliveries);
	free(pointers);
	free(alert);
	free(stored);
	free(buf);
	free(theirs);
}

static void
test_deliver_batch(struct check_state *t)
{
	Xba__V1__Frame f = XBA__V1__FRAME__INIT;
	Xba__V1__DeliverBatch batch = XBA__V1__DELIVER_BATCH__INIT;
	Xba__V1__Deliver bare = XBA__V1__DELIVER__INIT, *one = &bare;
	struct xba_error err = { 0 };
	uint8_t *buf;
	size_t len;

	/* Batch lengths of one, two and three varint bytes; tiny and large elements. */
	check_batch(t, 1, 20, 1);
	check_batch(t, 3, 30, 127);
	check_batch(t, 5, 900, 16380);
	check_batch(t, 40, 900, 1u << 20);
	check_batch(t, 256, 1000, UINT32_MAX);
	check_batch(t, 2, 70 * 1024, 9);

	/* Refused: an empty batch, and a delivery without its envelope. */
	f.body_case = XBA__V1__FRAME__BODY_DELIVER_BATCH;
	f.deliver_batch = &batch;
	buf = pack(&f, &len);
	CHECK(t, buf != NULL && frame_decode(buf, len, FRAME_MAX_BYTES_DEFAULT, NULL, &err) == NULL);
	CHECK_CODE(t, err.code, XBA_EREQUIRED);
	CHECK_CONTAINS(t, err.msg, "deliver_batch.deliveries");
	free(buf);
	batch.n_deliveries = 1;
	batch.deliveries = &one;
	buf = pack(&f, &len);
	CHECK(t, buf != NULL && frame_decode(buf, len, FRAME_MAX_BYTES_DEFAULT, NULL, &err) == NULL);
	CHECK_CODE(t, err.code, XBA_EREQUIRED);
	CHECK_CONTAINS(t, err.msg, "envelope");
	free(buf);
	CHECK(t, strcmp(frame_type_name(XBA__V1__FRAME__BODY_DELIVER_BATCH), "deliver_batch") == 0);
}

/* Raw wire bytes for frames protobuf-c would never write. */
struct raw {
	uint8_t b[512];
	size_t n;
};

static void
raw_bytes(struct raw *r, const void *bytes, size_t len)
{
	if (r->n + len <= sizeof(r->b)) {
		memcpy(r->b + r->n, bytes, len);
		r->n += len;
	}
}

static void
raw_varint(struct raw *r, uint64_t v)
{
	do {
		uint8_t byte = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));

		raw_bytes(r, &byte, 1);
		v >>= 7;
	} while (v != 0);
}

static void
raw_field(struct raw *r, unsigned number, const struct raw *body)
{
	raw_varint(r, (number << 3) | 2);
	raw_varint(r, body->n);
	raw_bytes(r, body->b, body->n);
}

/* A Deliver element: seq (0: none), envelope bytes (NULL: none), rule, emergency. */
static void
raw_deliver(struct raw *r, uint64_t seq, const char *envelope, size_t envelope_len, const char *rule, bool emergency)
{
	memset(r, 0, sizeof(*r));
	if (seq != 0) {
		raw_varint(r, 1 << 3);
		raw_varint(r, seq);
	}
	if (envelope != NULL) {
		raw_varint(r, (2 << 3) | 2);
		raw_varint(r, envelope_len);
		raw_bytes(r, envelope, envelope_len);
	}
	if (rule != NULL) {
		raw_varint(r, (3 << 3) | 2);
		raw_varint(r, strlen(rule));
		raw_bytes(r, rule, strlen(rule));
	}
	if (emergency) {
		raw_varint(r, 4 << 3);
		raw_varint(r, 1);
	}
}

static bool
element_unpacks(const struct frame_delivery_view *v)
{
	Xba__V1__Deliver *d = xba__v1__deliver__unpack(NULL, v->element_len, v->element);
	bool ok = d != NULL && d->envelope != NULL;

	if (d != NULL)
		xba__v1__deliver__free_unpacked(d, NULL);
	return ok;
}

/* frame_scan_deliveries: what an agent can still answer for in a frame that did not decode. */
static void
test_scan_deliveries(struct check_state *t)
{
	/* Not an Envelope: field 15 as a varint, then a length-delimited field 15 cut short. */
	static const char garbage[] = "\x78\x79\x7a";
	Xba__V1__Frame f = XBA__V1__FRAME__INIT;
	Xba__V1__Hello hello = XBA__V1__HELLO__INIT;
	struct frame_delivery_view v[4];
	struct raw el, batch, frame, other;
	struct xba_error err = { 0 };
	uint8_t *buf;
	size_t len, n = 99;

	/* A frame without deliveries, and one of a body type newer than this decoder: nothing to answer for. */
	hello.node_id = "NER";
	f.body_case = XBA__V1__FRAME__BODY_HELLO;
	f.hello = &hello;
	buf = pack(&f, &len);
	CHECK_CODE(t, frame_scan_deliveries(buf, len, v, 4, &n, &err), 0);
	CHECK(t, n == 0);
	free(buf);
	raw_deliver(&el, 5, NULL, 0, NULL, false);
	memset(&frame, 0, sizeof(frame));
	raw_field(&frame, 99, &el);
	CHECK_CODE(t, frame_scan_deliveries(frame.b, frame.n, v, 4, &n, &err), 0);
	CHECK(t, n == 0);

	/* A Deliver whose envelope does not decode: the frame is refused, the delivery is still there to answer. */
	raw_deliver(&el, 300, garbage, 3, "sar-to-neighbours", true);
	memset(&frame, 0, sizeof(frame));
	raw_field(&frame, 5, &el);
	CHECK(t, frame_decode(frame.b, frame.n, FRAME_MAX_BYTES_DEFAULT, NULL, &err) == NULL);
	CHECK_CODE(t, frame_scan_deliveries(frame.b, frame.n, v, 4, &n, &err), 0);
	CHECK(t, n == 1 && v[0].seq == 300 && v[0].emergency);
	CHECK(t, v[0].envelope_len == 3 && v[0].envelope != NULL && memcmp(v[0].envelope, garbage, 3) == 0);
	CHECK(t, v[0].rule_len == 17 && v[0].rule != NULL && memcmp(v[0].rule, "sar-to-neighbours", 17) == 0);
	CHECK(t, v[0].element == frame.b + 2 && v[0].element_len == el.n && !element_unpacks(&v[0]));
	/* ... and cut short by one byte, it can no longer be answered for. */
	CHECK_CODE(t, frame_scan_deliveries(frame.b, frame.n - 1, v, 4, &n, &err), XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, "truncated");

	/* A batch of three whose second element has no envelope and whose third's is garbage: each element is read
	 * alone (the first unpacks by itself), counted without views too. */
	memset(&batch, 0, sizeof(batch));
	raw_deliver(&el, 1, "", 0, "r1", false);
	raw_field(&batch, 1, &el);
	raw_deliver(&el, 2, NULL, 0, "r2", false);
	raw_field(&batch, 1, &el);
	raw_deliver(&el, 3, garbage, 3, NULL, false);
	raw_field(&batch, 1, &el);
	memset(&frame, 0, sizeof(frame));
	raw_field(&frame, 15, &batch);
	CHECK(t, frame_decode(frame.b, frame.n, FRAME_MAX_BYTES_DEFAULT, NULL, &err) == NULL);
	CHECK_CODE(t, frame_scan_deliveries(frame.b, frame.n, NULL, 0, &n, &err), 0);
	CHECK(t, n == 3);
	CHECK_CODE(t, frame_scan_deliveries(frame.b, frame.n, v, 2, &n, &err), 0);
	CHECK(t, n == 3 && v[0].seq == 1 && v[1].seq == 2);
	CHECK_CODE(t, frame_scan_deliveries(frame.b, frame.n, v, 4, &n, &err), 0);
	CHECK(t, n == 3 && v[0].seq == 1 && v[1].seq == 2 && v[2].seq == 3 && !v[2].emergency);
	CHECK(t, element_unpacks(&v[0]) && !element_unpacks(&v[1]) && !element_unpacks(&v[2]));
	CHECK(t, v[1].envelope == NULL && v[2].rule == NULL && v[0].envelope_len == 0 && v[0].envelope != NULL);

	/* Unanswerable: an element without a seq (named by its index), a seq that is not a varint, a Deliver beside
	 * another body, two Deliver fields. */
	memset(&batch, 0, sizeof(batch));
	raw_deliver(&el, 1, "", 0, NULL, false);
	raw_field(&batch, 1, &el);
	raw_deliver(&el, 0, "", 0, "no-seq", false);
	raw_field(&batch, 1, &el);
	memset(&frame, 0, sizeof(frame));
	raw_field(&frame, 15, &batch);
	CHECK_CODE(t, frame_scan_deliveries(frame.b, frame.n, v, 4, &n, &err), XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, "deliveries[1]");
	CHECK_CONTAINS(t, err.msg, "no seq");
	memset(&el, 0, sizeof(el));
	memset(&other, 0, sizeof(other));
	raw_bytes(&other, "\x01", 1);
	raw_field(&el, 1, &other);
	memset(&frame, 0, sizeof(frame));
	raw_field(&frame, 5, &el);
	CHECK_CODE(t, frame_scan_deliveries(frame.b, frame.n, v, 4, &n, &err), XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, "not a varint");
	raw_deliver(&el, 9, "", 0, NULL, false);
	memset(&frame, 0, sizeof(frame));
	raw_field(&frame, 5, &el);
	memset(&other, 0, sizeof(other));
	raw_field(&frame, 1, &other);
	CHECK_CODE(t, frame_scan_deliveries(frame.b, frame.n, v, 4, &n, &err), XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, "beside another body");
	memset(&frame, 0, sizeof(frame));
	raw_field(&frame, 5, &el);
	raw_field(&frame, 5, &el);
	CHECK_CODE(t, frame_scan_deliveries(frame.b, frame.n, v, 4, &n, &err), XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, "more than one");
	/* Bytes that are no frame at all might have carried deliveries: unanswerable too. */
	CHECK_CODE(t, frame_scan_deliveries((const uint8_t *)"\xff\xff", 2, v, 4, &n, &err), XBA_EDECODE);
}

/* FRAME_MIN_BYTES: the largest valid alert, sealed, delivered under the longest seq and rule name, fits. */
static void
test_min_frame_fits_largest_delivery(struct check_state *t)
{
	Xba__V1__Envelope envelope = XBA__V1__ENVELOPE__INIT;
	static uint8_t alert[ALERT_MAX_BYTES];
	uint8_t key_id[32] = { 0 }, signature[64] = { 0 };
	char rule[RULES_NAME_MAX + 1];
	size_t envelope_len, deliver_len;

	memset(rule, 'r', RULES_NAME_MAX);
	rule[RULES_NAME_MAX] = '\0';
	envelope.alert.data = alert;
	envelope.alert.len = sizeof(alert);
	envelope.key_id.data = key_id;
	envelope.key_id.len = sizeof(key_id);
	envelope.signature.data = signature;
	envelope.signature.len = sizeof(signature);
	envelope_len = xba__v1__envelope__get_packed_size(&envelope);
	deliver_len = frame_deliver_size(UINT64_MAX, envelope_len, rule, true);
	CHECK(t, deliver_len == 65727);
	CHECK(t, deliver_len <= FRAME_MIN_BYTES);
	/* The envelope at the size the broker and every agent accept (fields outside the signature included). */
	deliver_len = frame_deliver_size(UINT64_MAX, ENVELOPE_MAX_BYTES, rule, true);
	CHECK(t, deliver_len == 65879);
	CHECK(t, deliver_len <= FRAME_MIN_BYTES);
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

	/* What keeps an alert in the outbox (and holds an ordered session), per docs/protocol.md §2.3 step 5 and §4. */
	CHECK(t, frame_error_code_transient(XBA__V1__ERROR_CODE__RATE_LIMITED));
	CHECK(t, frame_error_code_transient(XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE));
	CHECK(t, frame_error_code_transient(XBA__V1__ERROR_CODE__INTERNAL));
	CHECK(t, frame_error_code_transient(XBA__V1__ERROR_CODE__UNKNOWN_KEY));
	CHECK(t, frame_error_code_transient(XBA__V1__ERROR_CODE__CLOCK_SKEW));
	CHECK(t, frame_error_code_transient((Xba__V1__ErrorCode)(XBA__V1__ERROR_CODE__INTERNAL + 1)));
	CHECK(t, !frame_error_code_transient(XBA__V1__ERROR_CODE__OK));
	CHECK(t, !frame_error_code_transient(XBA__V1__ERROR_CODE__DUPLICATE));
	CHECK(t, !frame_error_code_transient(XBA__V1__ERROR_CODE__BAD_SIGNATURE));
	CHECK(t, !frame_error_code_transient(XBA__V1__ERROR_CODE__KEY_REVOKED));
	CHECK(t, !frame_error_code_transient(XBA__V1__ERROR_CODE__INVALID_ALERT));
	CHECK(t, !frame_error_code_transient(XBA__V1__ERROR_CODE__ALERT_EXPIRED));
}

int
main(void)
{
	struct check_state t = { 0 };

	RUN(&t, test_round_trip);
	RUN(&t, test_refusals);
	RUN(&t, test_deliver_hand_encoded);
	RUN(&t, test_deliver_batch);
	RUN(&t, test_scan_deliveries);
	RUN(&t, test_min_frame_fits_largest_delivery);
	RUN(&t, test_error_codes);
	return check_finish(&t);
}
