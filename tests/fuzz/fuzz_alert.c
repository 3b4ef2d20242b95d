/*
 * fuzz_alert.c — libFuzzer target for the alert boundary (lib/alert.c): the bytes a broker or agent decodes right
 * after envelope.c has verified a signature over them, i.e. anything a compromised or broken node can sign.
 *
 * Whatever the input, alert_decode() must not crash and must either refuse it or hand back an alert that survives
 * its own round trip: encode, decode again, encode again gives the same bytes.  Anything else aborts.
 * Seeds: tests/fuzz/corpus/alert/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xba_error err = { 0 };
	Xba__V1__Alert *alert, *again;
	uint8_t *first = NULL, *second = NULL;
	size_t first_len = 0, second_len = 0;

	alert = alert_decode(data, size, &err);
	if (alert == NULL) {
		/* A refusal must carry a reason an operator can read. */
		if (err.code >= 0 || err.msg[0] == '\0')
			abort();
		return 0;
	}
	/* A decoded alert passed validation, so encoding it cannot fail. */
	if (alert_encode(alert, &first, &first_len, &err) != 0)
		abort();
	again = alert_decode(first, first_len, &err);
	if (again == NULL)
		abort();
	if (alert_encode(again, &second, &second_len, &err) != 0)
		abort();
	if (first_len != second_len || memcmp(first, second, first_len) != 0)
		abort();
	/* Non-canonical input may shrink on re-encoding, never grow past what was accepted. */
	if (first_len > size)
		abort();
	alert_free(alert);
	alert_free(again);
	free(first);
	free(second);
	return 0;
}
