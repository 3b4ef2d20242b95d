/*
 * fuzz_alertyaml.c — libFuzzer target for alert files written by officers (`xba send FILE.yaml`,
 * `xba rules explain`): alertyaml_load_buffer() on arbitrary bytes.  A file that loads must also survive
 * alert_validate() and be freed cleanly.
 */
#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "alertyaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xba_error err;
	Xba__V1__Alert *alert = alertyaml_load_buffer("fuzz-alert.yaml", (const char *)data, size, &err);

	if (alert != NULL) {
		alert_validate(alert, &err);
		alertyaml_free(alert);
	}
	return 0;
}
