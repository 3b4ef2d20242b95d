/*
 * fuzz_envelope.c — libFuzzer target for the boundary every signed alert crosses: envelope_open() on arbitrary
 * bytes, against a directory holding the golden key (tests/vectors), so inputs derived from the golden envelope
 * reach the signature check and, when it holds, the alert decoder and validator.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "directory.h"
#include "encoding.h"
#include "envelope.h"

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
		fprintf(stderr, "fuzz_envelope: cannot read the golden public key\n");
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
		fprintf(stderr, "fuzz_envelope: %s\n", err.msg);
		abort();
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope_opened opened;
	struct xba_error err;

	/* The golden alert was sent 2026-11-25T16:40:00Z; check as of one minute later. */
	envelope_open(fuzz_dir, data, size, 1795624860000LL, &opened, &err);
	envelope_opened_clear(&opened);
	return 0;
}
