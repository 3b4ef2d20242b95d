/*
 * fuzz_frame.c — libFuzzer target for the first boundary every byte from the network crosses: frame_decode() on
 * arbitrary bytes (the broker's and the agent's receive path), with the transport's default size limit. A frame
 * that decodes to a Publish, a Deliver or a DeliverBatch (its first few elements) then has its envelope opened with
 * envelope_open_message() against a directory holding the golden key (tests/vectors), so inputs derived from the
 * golden envelope wrapped in a frame reach the signature check and, when it holds, the alert decoder and validator.
 * A frame that does not decode is scanned for deliveries as the agent scans it (frame_scan_deliveries), each
 * element unpacked alone.  Never a crash, a leak, or undefined behaviour.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "directory.h"
#include "encoding.h"
#include "envelope.h"
#include "frame.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libFuzzer's entry points have no context argument; the directory is built once and only read afterwards. */
static struct directory *fuzz_dir;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char hex[128] = "", yaml[1024], pub_z85[41], sec_z85[41], b64[64];
	uint8_t raw[32];
	struct xba_error err = { 0 };
	FILE *f = fopen(XBA_TESTS_DIR "/vectors/golden-public.hex", "r");

	(void)argc;
	(void)argv;
	if (f == NULL || fgets(hex, sizeof(hex), f) == NULL) {
		fprintf(stderr, "fuzz_frame: cannot read the golden public key\n");
		abort();
	}
	fclose(f);
	hex[strcspn(hex, "\r\n")] = '\0';
	if (encoding_unhex(hex, raw, 32) != 0 || zmq_curve_keypair(pub_z85, sec_z85) != 0)
		abort();
	encoding_base64(raw, 32, b64);
	snprintf(yaml, sizeof(yaml),
	    "region: fuzz\nnodes:\n  - id: NER\n    name: Niger\n    role: member\n    curve_key: \"%s\"\n"
	    "    signing_keys:\n      - public: \"%s\"\n",
	    pub_z85, b64);
	fuzz_dir = directory_load_buffer("fuzz-region.yaml", yaml, strlen(yaml), &err);
	if (fuzz_dir == NULL) {
		fprintf(stderr, "fuzz_frame: %s\n", err.msg);
		abort();
	}
	return 0;
}

static void
open_envelope(const Xba__V1__Envelope *env)
{
	struct envelope_opened opened;
	struct xba_error err = { 0 };

	memset(&opened, 0, sizeof(opened));
	/* The golden alert was sent 2026-11-25T16:40:00Z; check as of one minute later. */
	if (envelope_open_message(fuzz_dir, env, 1795624860000LL, &opened, &err) != 0)
		(void)frame_error_code_name(frame_error_code_for_alert(err.code));
	envelope_opened_clear(&opened);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Xba__V1__Frame *frame;
	struct xba_error err = { 0 };
	uint64_t ref = 0;

	frame = frame_decode(data, size, FRAME_MAX_BYTES_DEFAULT, &ref, &err);
	if (frame == NULL) {
		struct frame_delivery_view views[4];
		size_t n = 0;

		/* A refusal must name a wire code; the lookups must accept whatever error came back. */
		(void)frame_error_code_name(frame_error_code_for_frame(err.code));
		/* The agent then looks for deliveries to answer for, and unpacks each element alone. */
		if (frame_scan_deliveries(data, size, views, 4, &n, &err) == 0) {
			for (size_t i = 0; i < n && i < 4; i++) {
				const struct frame_delivery_view *v = &views[i];
				Xba__V1__Deliver *d = xba__v1__deliver__unpack(NULL, v->element_len, v->element);

				if (v->seq == 0 || v->element < data || v->element + v->element_len > data + size ||
				    (v->envelope != NULL && v->envelope_len > v->element_len))
					abort(); /* a view that points outside the frame, or a delivery without a seq */
				if (d != NULL && d->envelope != NULL)
					open_envelope(d->envelope);
				if (d != NULL)
					xba__v1__deliver__free_unpacked(d, NULL);
			}
		}
		return 0;
	}
	(void)frame_type_name(frame->body_case);
	if (frame->body_case == XBA__V1__FRAME__BODY_PUBLISH)
		open_envelope(frame->publish->envelope);
	else if (frame->body_case == XBA__V1__FRAME__BODY_DELIVER)
		open_envelope(frame->deliver->envelope);
	/* A DeliverBatch: its first few elements, as the agent opens them one by one (a few: to stay fast). */
	for (size_t i = 0; frame->body_case == XBA__V1__FRAME__BODY_DELIVER_BATCH && i < 4 &&
	    i < frame->deliver_batch->n_deliveries; i++)
		open_envelope(frame->deliver_batch->deliveries[i]->envelope);
	frame_free(frame);
	return 0;
}
