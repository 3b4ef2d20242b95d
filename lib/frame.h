/*
 * frame.h — the node <-> broker frames (xba.v1.Frame): encode, and decode with the checks every receiver needs
 * before it switches on the frame type.
 *
 * One ZeroMQ message part carries one serialized Frame.  frame_decode() enforces the size limit, decodes, and
 * checks that a body is present and that its required sub-messages are there (a Publish has an envelope, a
 * Deliver has an envelope), so a receiver's `switch (frame->body_case)` only sees frames it can use.
 */
#ifndef XBA_FRAME_H
#define XBA_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "xba.pb-c.h"

#define XBA_PROTOCOL_VERSION 1
#define FRAME_MAX_BYTES_DEFAULT (256 * 1024)
/* The smallest frame limit a broker may set: the Deliver frame of the largest valid alert (64 KiB, sealed, with the
 * longest seq and rule name) must fit, or a node would refuse the frame and the alert would never reach it.  That
 * frame is 65 727 bytes, 65 879 with an envelope at ENVELOPE_MAX_BYTES (test_frame checks both); 68 KiB fits them. */
#define FRAME_MIN_BYTES (68 * 1024)

/* NULL on failure: XBA_ETOOBIG (len > max_bytes), XBA_EDECODE (not a Frame), XBA_EPROTO (no body of a known
 * type), XBA_EREQUIRED (body lacks a required sub-message; the message starts with its field path).  When a
 * refused frame decoded far enough to carry a ref (a Publish), *ref_out gets it, else 0; ref_out may be NULL.
 * Free with frame_free(). */
Xba__V1__Frame *frame_decode(const uint8_t *bytes, size_t len, size_t max_bytes, uint64_t *ref_out,
    struct xba_error *err);
void frame_free(Xba__V1__Frame *frame);

/* Pack into a malloc'ed buffer the caller frees. */
int frame_encode(const Xba__V1__Frame *frame, uint8_t **out, size_t *out_len, struct xba_error *err);

/*
 * A Deliver frame, encoded by hand around an already serialized Envelope: the broker stores envelopes serialized and
 * sends each to several nodes, so decoding it only for protobuf-c to encode it again is wasted work.  The bytes are
 * exactly what xba__v1__frame__pack() produces for Frame{deliver: {seq, envelope, rule, emergency}} when envelope
 * is protobuf-c's own encoding of the Envelope (as the journal stores it), proto3 defaults omitted; rule may be
 * NULL (empty).  frame_deliver_size() is the length; frame_encode_deliver() writes that many bytes to out and
 * returns the count.
 */
size_t frame_deliver_size(uint64_t seq, size_t envelope_len, const char *rule, bool emergency);
size_t frame_encode_deliver(uint8_t *out, uint64_t seq, const uint8_t *envelope, size_t envelope_len, const char *rule,
    bool emergency);

/*
 * A DeliverBatch frame, by hand, the same way: exactly what protobuf-c packs for Frame{deliver_batch: {deliveries:
 * [...]}}.  One element of a batch is byte for byte a Deliver frame with another tag byte, so a batch is written
 * element by element (frame_encode_batch_element, frame_deliver_size bytes each) into a buffer that keeps
 * FRAME_BATCH_HEADER_MAX bytes free before the first element; frame_finish_deliver_batch() then writes the frame's
 * header immediately before the first element and returns where the frame starts (*frame_len: its length).
 */
#define FRAME_BATCH_HEADER_MAX 6 /* the frame's tag and the batch's length, a varint of at most 5 bytes */
size_t frame_encode_batch_element(uint8_t *out, uint64_t seq, const uint8_t *envelope, size_t envelope_len,
    const char *rule, bool emergency);
uint8_t *frame_finish_deliver_batch(uint8_t *first_element, size_t elements_len, size_t *frame_len);

/*
 * The deliveries inside a frame that frame_decode() refused, read from the protobuf wire format alone.  A receiver
 * must still answer for each of them: skipping them would let its next cumulative DeliveryAck tell the broker that
 * it stored what it never saw (docs/protocol.md §2.4, "A frame that does not decode").  Each view points into the
 * scanned bytes.
 */
struct frame_delivery_view {
	const uint8_t *element;          /* the Deliver message (without its tag and length): unpack it alone */
	size_t element_len;
	uint64_t seq;                    /* never 0: an element without a seq fails the scan */
	bool emergency;
	const uint8_t *envelope;         /* the envelope field's bytes, NULL when the element has none */
	size_t envelope_len;
	const uint8_t *rule;             /* the rule field's bytes, not terminated, not checked as UTF-8; NULL: none */
	size_t rule_len;
};

/* 0 with *n the deliveries the frame carries (0: it carries none, being no Deliver or DeliverBatch), their views in
 * out[0 .. min(*n, max) - 1] (out may be NULL with max 0, to count).  XBA_EDECODE when the frame has a Deliver or
 * DeliverBatch field but its wire format cannot be walked to every delivery with a seq: a truncated field, a wire
 * type its schema does not allow, an element without a seq, a delivery field next to another body.  Then nothing
 * can be answered for, and the receiver must not acknowledge past it. */
int frame_scan_deliveries(const uint8_t *bytes, size_t len, struct frame_delivery_view *out, size_t max, size_t *n,
    struct xba_error *err);

/* "hello", "publish", ... or "unknown". */
const char *frame_type_name(Xba__V1__Frame__BodyCase body_case);

/* The wire error code that reports a frame_decode() failure (XBA_ETOOBIG -> FRAME_TOO_LARGE, ...). */
Xba__V1__ErrorCode frame_error_code_for_frame(int xba_err);
/* The wire error code that reports an envelope_open() failure (XBA_ESIG -> BAD_SIGNATURE, any validation
 * failure -> INVALID_ALERT, ...). */
Xba__V1__ErrorCode frame_error_code_for_alert(int xba_err);

/* True for a PublishAck result that leaves the alert in the node's outbox, to be resent after backoff
 * (docs/protocol.md §2.3 step 5): RATE_LIMITED, JOURNAL_UNAVAILABLE, INTERNAL, UNKNOWN_KEY, CLOCK_SKEW, and an
 * unspecified or newer code (§8: treated as INTERNAL).  The broker holds an ordered session on these (§2.3
 * "Order"). */
bool frame_error_code_transient(Xba__V1__ErrorCode code);

/* "bad-signature" style name of a wire error code, for logs and the CLI. */
const char *frame_error_code_name(Xba__V1__ErrorCode code);

#endif
