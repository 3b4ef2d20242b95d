/*
 * seal_alert.c — test tool: sign a small valid alert with a node's key file and write the Envelope to a file, as
 * an agent's outbox would hold it.  Lets the e2e tests exercise `xba verify` before `xba send` exists.
 *
 * usage: seal_alert KEY_FILE ORIGIN OUT_FILE [SENT_MS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "clock.h"
#include "envelope.h"
#include "keys.h"
#include "syntax.h"

int
main(int argc, char **argv)
{
	Xba__V1__Alert alert = XBA__V1__ALERT__INIT;
	Xba__V1__Info info = XBA__V1__INFO__INIT, *infos[1] = { &info };
	struct xba_error err = { 0 };
	struct signer signer;
	char id[XBA_UUID_LEN + 1];
	uint8_t *bytes;
	size_t len;
	FILE *out;

	if (argc < 4) {
		fprintf(stderr, "usage: seal_alert KEY_FILE ORIGIN OUT_FILE [SENT_MS]\n");
		return 2;
	}
	if (keys_load_signer(argv[1], &signer, &err) != 0) {
		fprintf(stderr, "seal_alert: %s\n", err.msg);
		return 2;
	}
	syntax_uuid_new(id);
	alert.id = id;
	alert.origin = argv[2];
	alert.author = "test.officer";
	alert.sent_ms = argc > 4 ? strtoll(argv[4], NULL, 10) : clock_now_ms();
	alert.status = XBA__V1__STATUS__STATUS_EXERCISE;
	alert.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ALERT;
	alert.category = XBA__V1__CATEGORY__CATEGORY_HEALTH;
	alert.severity = XBA__V1__SEVERITY__SEVERITY_MODERATE;
	alert.urgency = XBA__V1__URGENCY__URGENCY_EXPECTED;
	alert.certainty = XBA__V1__CERTAINTY__CERTAINTY_POSSIBLE;
	alert.tlp = XBA__V1__TLP__TLP_GREEN;
	info.language = "fr";
	info.headline = "Exercice : foyer de chol\xc3\xa9ra au poste fronti\xc3\xa8re";
	alert.info = infos;
	alert.n_info = 1;
	if (envelope_seal(&signer, &alert, &bytes, &len, &err) != 0) {
		fprintf(stderr, "seal_alert: %s\n", err.msg);
		return 1;
	}
	out = fopen(argv[3], "wb");
	if (out == NULL || fwrite(bytes, 1, len, out) != len || fclose(out) != 0) {
		perror(argv[3]);
		return 2;
	}
	printf("%s\n", id);
	free(bytes);
	keys_signer_clear(&signer);
	return 0;
}
