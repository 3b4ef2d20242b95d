/*
 * frame.c — encode and decode node <-> broker frames (see frame.h).  Every frame the broker or an agent reads
 * passes through frame_decode() before the receiver's dispatch switch, so the checks here are the first line of
 * defence against malformed input from the network.
 */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

Xba__V1__Frame *
frame_decode(const uint8_t *bytes, size_t len, size_t max_bytes, uint64_t *ref_out, struct xba_error *err)
{
	Xba__V1__Frame *frame;
	const char *missing = NULL;

	if (ref_out != NULL)
		*ref_out = 0;
	if (len > max_bytes) {
		xba_error_set(err, XBA_ETOOBIG, "frame: %zu bytes, at most %zu", len, max_bytes);
		return NULL;
	}
	frame = xba__v1__frame__unpack(NULL, len, bytes);
	if (frame == NULL) {
		xba_error_set(err, XBA_EDECODE, "frame: not a valid xba.v1.Frame (protobuf decode failed)");
		return NULL;
	}
	switch (frame->body_case) {
	case XBA__V1__FRAME__BODY_PUBLISH:
		if (frame->publish->envelope == NULL)
			missing = "publish.envelope";
		else if (frame->publish->ref == 0) /* its ack would read as an Error about no publish (§2.11) */
			missing = "publish.ref";
		if (ref_out != NULL)
			*ref_out = frame->publish->ref;
		break;
	case XBA__V1__FRAME__BODY_DELIVER:
		if (frame->deliver->envelope == NULL)
			missing = "deliver.envelope";
		break;
	case XBA__V1__FRAME__BODY_DELIVER_BATCH:
		if (frame->deliver_batch->n_deliveries == 0)
			missing = "deliver_batch.deliveries";
		for (size_t i = 0; missing == NULL && i < frame->deliver_batch->n_deliveries; i++)
			if (frame->deliver_batch->deliveries[i]->envelope == NULL)
				missing = "deliver_batch.deliveries[].envelope";
		break;
	case XBA__V1__FRAME__BODY_HELLO:
		if (frame->hello->node_id == NULL || frame->hello->node_id[0] == '\0')
			missing = "hello.node_id";
		break;
	case XBA__V1__FRAME__BODY__NOT_SET:
		/* An empty frame, or one whose only field is a body type newer than this decoder. */
		xba_error_set(err, XBA_EPROTO, "frame: no body of a known type (unknown frame type)");
		frame_free(frame);
		return NULL;
	default:
		break;
	}
	if (missing != NULL) {
		xba_error_set(err, XBA_EREQUIRED, "%s: missing", missing);
		frame_free(frame);
		return NULL;
	}
	return frame;
}

void
frame_free(Xba__V1__Frame *frame)
{
	if (frame != NULL)
		xba__v1__frame__free_unpacked(frame, NULL);
}

int
frame_encode(const Xba__V1__Frame *frame, uint8_t **out, size_t *out_len, struct xba_error *err)
{
	size_t len = xba__v1__frame__get_packed_size(frame);
	uint8_t *buf = malloc(len > 0 ? len : 1);

	if (buf == NULL)
		return xba_error_set(err, XBA_ENOMEM, "out of memory packing a %s frame",
		    frame_type_name(frame->body_case));
	xba__v1__frame__pack(frame, buf);
	*out = buf;
	*out_len = len;
	return 0;
}

/* ---- Deliver, by hand (see frame.h) ---- */

/* Wire tags: (field number << 3) | wire type (0 varint, 2 length-delimited). */
#define TAG_FRAME_DELIVER ((5u << 3) | 2)
#define TAG_FRAME_DELIVER_BATCH ((15u << 3) | 2)
#define TAG_BATCH_DELIVERY ((1u << 3) | 2)
#define TAG_DELIVER_SEQ ((1u << 3) | 0)
#define TAG_DELIVER_ENVELOPE ((2u << 3) | 2)
#define TAG_DELIVER_RULE ((3u << 3) | 2)
#define TAG_DELIVER_EMERGENCY ((4u << 3) | 0)

static size_t
varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static size_t
put_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

/* The Deliver message's own length (the frame wraps it in one tag and a length). */
static size_t
deliver_body_size(uint64_t seq, size_t envelope_len, size_t rule_len, bool emergency)
{
	size_t n = 1 + varint_size(envelope_len) + envelope_len;

	if (seq != 0)
		n += 1 + varint_size(seq);
	if (rule_len > 0)
		n += 1 + varint_size(rule_len) + rule_len;
	if (emergency)
		n += 2;
	return n;
}

size_t
frame_deliver_size(uint64_t seq, size_t envelope_len, const char *rule, bool emergency)
{
	size_t body = deliver_body_size(seq, envelope_len, rule != NULL ? strlen(rule) : 0, emergency);

	return 1 + varint_size(body) + body;
}

/* A Deliver under tag: a whole Deliver frame, or one element of a DeliverBatch. */
static size_t
encode_deliver_tagged(uint8_t *out, uint8_t tag, uint64_t seq, const uint8_t *envelope, size_t envelope_len,
    const char *rule, bool emergency)
{
	size_t rule_len = rule != NULL ? strlen(rule) : 0, n = 0;

	/* Field order and omissions follow protobuf-c: ascending field numbers, proto3 zero values left out; the
	 * envelope, a message field, is written even when empty, as protobuf-c writes any non-NULL sub-message. */
	out[n++] = tag;
	n += put_varint(out + n, deliver_body_size(seq, envelope_len, rule_len, emergency));
	if (seq != 0) {
		out[n++] = TAG_DELIVER_SEQ;
		n += put_varint(out + n, seq);
	}
	out[n++] = TAG_DELIVER_ENVELOPE;
	n += put_varint(out + n, envelope_len);
	if (envelope_len > 0)
		memcpy(out + n, envelope, envelope_len);
	n += envelope_len;
	if (rule_len > 0) {
		out[n++] = TAG_DELIVER_RULE;
		n += put_varint(out + n, rule_len);
		memcpy(out + n, rule, rule_len);
		n += rule_len;
	}
	if (emergency) {
		out[n++] = TAG_DELIVER_EMERGENCY;
		out[n++] = 1;
	}
	return n;
}

size_t
frame_encode_deliver(uint8_t *out, uint64_t seq, const uint8_t *envelope, size_t envelope_len, const char *rule,
    bool emergency)
{
	return encode_deliver_tagged(out, TAG_FRAME_DELIVER, seq, envelope, envelope_len, rule, emergency);
}

size_t
frame_encode_batch_element(uint8_t *out, uint64_t seq, const uint8_t *envelope, size_t envelope_len,
    const char *rule, bool emergency)
{
	return encode_deliver_tagged(out, TAG_BATCH_DELIVERY, seq, envelope, envelope_len, rule, emergency);
}

uint8_t *
frame_finish_deliver_batch(uint8_t *first_element, size_t elements_len, size_t *frame_len)
{
	size_t header = 1 + varint_size(elements_len);
	uint8_t *start = first_element - header;

	start[0] = TAG_FRAME_DELIVER_BATCH;
	put_varint(start + 1, elements_len);
	*frame_len = header + elements_len;
	return start;
}

/* ---- the wire format of a frame that did not decode ---- */

struct wire {
	const uint8_t *p, *end;
};

struct wire_field {
	uint32_t number;
	unsigned type;          /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
	uint64_t value;         /* type 0 */
	const uint8_t *bytes;   /* type 2 */
	size_t len;
};

static bool
wire_varint(struct wire *w, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t b;

		if (w->p == w->end)
			return false;
		b = *w->p++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*v = x;
			return true;
		}
	}
	return false;
}

static bool
wire_skip(struct wire *w, size_t n)
{
	if ((size_t)(w->end - w->p) < n)
		return false;
	w->p += n;
	return true;
}

/* 1: *f read; 0: the end of the bytes; -1: bytes that are not a field (truncated, field 0, a group). */
static int
wire_next(struct wire *w, struct wire_field *f)
{
	uint64_t key, len;

	/* Every member set, whatever the wire type: a caller reads bytes/len only for type 2, which GCC cannot see. */
	f->value = 0;
	f->bytes = NULL;
	f->len = 0;
	if (w->p == w->end)
		return 0;
	if (!wire_varint(w, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
		return -1;
	f->number = (uint32_t)(key >> 3);
	f->type = (unsigned)(key & 7);
	switch (f->type) {
	case 0:
		return wire_varint(w, &f->value) ? 1 : -1;
	case 1:
		return wire_skip(w, 8) ? 1 : -1;
	case 5:
		return wire_skip(w, 4) ? 1 : -1;
	case 2:
		if (!wire_varint(w, &len) || len > (uint64_t)(w->end - w->p))
			return -1;
		f->bytes = w->p;
		f->len = (size_t)len;
		w->p += len;
		return 1;
	default:
		return -1; /* groups (3, 4), which proto3 never writes, and the unused types 6, 7 */
	}
}

/* One Deliver's fields (xba.proto: seq 1, envelope 2, rule 3, emergency 4; later ones win, as protobuf reads). */
static int
scan_deliver(const uint8_t *bytes, size_t len, struct frame_delivery_view *v, struct xba_error *err)
{
	struct wire w = { bytes, bytes + len };
	struct wire_field f;
	int rc;

	memset(v, 0, sizeof(*v));
	v->element = bytes;
	v->element_len = len;
	while ((rc = wire_next(&w, &f)) > 0) {
		if ((f.number == 1 || f.number == 4) && f.type != 0)
			return xba_error_set(err, XBA_EDECODE, "deliver field %u: wire type %u, not a varint", f.number,
			    f.type);
		if ((f.number == 2 || f.number == 3) && f.type != 2)
			return xba_error_set(err, XBA_EDECODE, "deliver field %u: wire type %u, not length-delimited",
			    f.number, f.type);
		if (f.number == 1) {
			v->seq = f.value;
		} else if (f.number == 2) {
			v->envelope = f.bytes;
			v->envelope_len = f.len;
		} else if (f.number == 3) {
			v->rule = f.bytes;
			v->rule_len = f.len;
		} else if (f.number == 4) {
			v->emergency = f.value != 0;
		}
	}
	if (rc < 0)
		return xba_error_set(err, XBA_EDECODE, "deliver: truncated or not protobuf after byte %zu",
		    (size_t)(w.p - bytes));
	if (v->seq == 0)
		return xba_error_set(err, XBA_EDECODE, "deliver: no seq");
	return 0;
}

int
frame_scan_deliveries(const uint8_t *bytes, size_t len, struct frame_delivery_view *out, size_t max, size_t *n,
    struct xba_error *err)
{
	struct wire w = { bytes, bytes + len };
	struct wire_field f, carrier = { 0 };
	unsigned bodies = 0;
	size_t count = 0;
	int rc;

	*n = 0;
	while ((rc = wire_next(&w, &f)) > 0) {
		if (f.number >= 1 && f.number <= 15)
			bodies++; /* Frame's oneof body: every field of Frame today */
		if (f.number == 5 || f.number == 15) {
			if (carrier.number != 0)
				return xba_error_set(err, XBA_EDECODE, "frame: more than one deliver or deliver_batch field");
			carrier = f;
		}
	}
	/* A frame that cannot be walked may have carried deliveries past the point where the walk stopped. */
	if (rc < 0)
		return xba_error_set(err, XBA_EDECODE, "frame: truncated or not protobuf after byte %zu",
		    (size_t)(w.p - bytes));
	if (carrier.number == 0)
		return 0;
	if (bodies > 1)
		return xba_error_set(err, XBA_EDECODE, "frame: a %s field beside another body",
		    carrier.number == 5 ? "deliver" : "deliver_batch");
	if (carrier.type != 2)
		return xba_error_set(err, XBA_EDECODE, "frame: %s field of wire type %u",
		    carrier.number == 5 ? "deliver" : "deliver_batch", carrier.type);
	if (carrier.number == 5) {
		struct frame_delivery_view v;

		if ((rc = scan_deliver(carrier.bytes, carrier.len, &v, err)) != 0)
			return rc;
		if (max > 0)
			out[0] = v;
		*n = 1;
		return 0;
	}
	w.p = carrier.bytes;
	w.end = carrier.bytes + carrier.len;
	while ((rc = wire_next(&w, &f)) > 0) {
		struct frame_delivery_view v;

		if (f.number != 1)
			continue; /* a newer field of DeliverBatch */
		if (f.type != 2)
			return xba_error_set(err, XBA_EDECODE, "deliver_batch.deliveries[%zu]: wire type %u", count, f.type);
		if (scan_deliver(f.bytes, f.len, &v, err) != 0)
			return xba_error_prefix(err, "deliver_batch.deliveries[%zu]", count);
		if (count < max)
			out[count] = v;
		count++;
	}
	if (rc < 0)
		return xba_error_set(err, XBA_EDECODE, "deliver_batch: truncated or not protobuf");
	*n = count;
	return 0;
}

const char *
frame_type_name(Xba__V1__Frame__BodyCase body_case)
{
	switch (body_case) {
	case XBA__V1__FRAME__BODY_HELLO: return "hello";
	case XBA__V1__FRAME__BODY_WELCOME: return "welcome";
	case XBA__V1__FRAME__BODY_PUBLISH: return "publish";
	case XBA__V1__FRAME__BODY_PUBLISH_ACK: return "publish_ack";
	case XBA__V1__FRAME__BODY_DELIVER: return "deliver";
	case XBA__V1__FRAME__BODY_DELIVERY_ACK: return "delivery_ack";
	case XBA__V1__FRAME__BODY_CREDIT: return "credit";
	case XBA__V1__FRAME__BODY_HEARTBEAT: return "heartbeat";
	case XBA__V1__FRAME__BODY_ERROR: return "error";
	case XBA__V1__FRAME__BODY_RECEIPT: return "receipt";
	case XBA__V1__FRAME__BODY_STATUS_REQUEST: return "status_request";
	case XBA__V1__FRAME__BODY_STATUS_REPLY: return "status_reply";
	case XBA__V1__FRAME__BODY_TRACK_REQUEST: return "track_request";
	case XBA__V1__FRAME__BODY_TRACK_REPLY: return "track_reply";
	case XBA__V1__FRAME__BODY_DELIVER_BATCH: return "deliver_batch";
	default: return "unknown";
	}
}

Xba__V1__ErrorCode
frame_error_code_for_frame(int xba_err)
{
	switch (xba_err) {
	case XBA_OK: return XBA__V1__ERROR_CODE__OK;
	case XBA_ETOOBIG: return XBA__V1__ERROR_CODE__FRAME_TOO_LARGE;
	case XBA_EPROTO: return XBA__V1__ERROR_CODE__UNKNOWN_FRAME_TYPE;
	case XBA_EDECODE:
	case XBA_EREQUIRED:
		return XBA__V1__ERROR_CODE__MALFORMED_FRAME;
	default: return XBA__V1__ERROR_CODE__INTERNAL;
	}
}

Xba__V1__ErrorCode
frame_error_code_for_alert(int xba_err)
{
	switch (xba_err) {
	case XBA_OK: return XBA__V1__ERROR_CODE__OK;
	case XBA_EDECODE:
	case XBA_ETOOBIG:
	case XBA_EREQUIRED:
	case XBA_ETOOLONG:
	case XBA_EUTF8:
	case XBA_EENUM:
	case XBA_ESYNTAX:
	case XBA_EGEO:
	case XBA_ETIME:
	case XBA_EDUPLICATE:
		return XBA__V1__ERROR_CODE__INVALID_ALERT;
	case XBA_ESIG: return XBA__V1__ERROR_CODE__BAD_SIGNATURE;
	case XBA_EKEYUNKNOWN: return XBA__V1__ERROR_CODE__UNKNOWN_KEY;
	case XBA_EKEYREVOKED: return XBA__V1__ERROR_CODE__KEY_REVOKED;
	case XBA_EKEYVALIDITY: return XBA__V1__ERROR_CODE__KEY_NOT_VALID;
	case XBA_EWRONGSIGNER: return XBA__V1__ERROR_CODE__WRONG_SIGNER;
	default: return XBA__V1__ERROR_CODE__INTERNAL;
	}
}

bool
frame_error_code_transient(Xba__V1__ErrorCode code)
{
	switch (code) {
	case XBA__V1__ERROR_CODE__RATE_LIMITED:
	case XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE:
	case XBA__V1__ERROR_CODE__INTERNAL:
	case XBA__V1__ERROR_CODE__UNKNOWN_KEY:
	case XBA__V1__ERROR_CODE__CLOCK_SKEW:
	case XBA__V1__ERROR_CODE__ERROR_CODE_UNSPECIFIED:
		return true;
	default:
		return (int)code > (int)XBA__V1__ERROR_CODE__INTERNAL;
	}
}

const char *
frame_error_code_name(Xba__V1__ErrorCode code)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&xba__v1__error_code__descriptor, (int)code);

	return v != NULL ? v->name : "UNKNOWN";
}
