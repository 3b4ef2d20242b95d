/*
 * cmd_verify.c — `xba verify FILE --region region.yaml`: checks a saved signed alert (a serialized Envelope, as
 * the agents store and `xba history --save` writes) with exactly the checks the broker and every agent apply, and
 * says who signed it.  For audits and disputes: a country cannot deny what its key signed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "cli.h"
#include "clock.h"
#include "display.h"
#include "directory.h"
#include "envelope.h"
#include "jsonw.h"
#include "keys.h"

static void
verify_usage(FILE *out)
{
	fprintf(out,
	    "usage: xba verify FILE --region REGION.yaml [--at TIME] [--json]\n"
	    "\n"
	    "Check that FILE (a signed alert envelope) was signed by its origin's key listed in REGION.yaml, that the\n"
	    "key was valid when the alert was sent and is not revoked, and that the alert itself is valid.\n"
	    "\n"
	    "  --region FILE  the region directory (region.yaml) to check against\n"
	    "  --at TIME      check revocation as of TIME (RFC 3339) instead of now, e.g. for an old alert\n"
	    "  --json         print one JSON object instead of text\n"
	    "\n"
	    "exit status: 0 valid, 1 not valid, 2 wrong arguments or unreadable files\n");
}

/* Read a whole file of at most max bytes. */
static int
read_file(const char *path, size_t max, uint8_t **out, size_t *out_len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	if (f == NULL)
		return cli_usage_error("verify: cannot open %s: %s", path, strerror(errno));
	buf = malloc(max + 1);
	if (buf == NULL) {
		fclose(f);
		return cli_usage_error("verify: out of memory");
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		fclose(f);
		free(buf);
		return cli_usage_error("verify: cannot read %s", path);
	}
	fclose(f);
	if (n > max) {
		free(buf);
		return cli_usage_error("verify: %s is larger than any signed alert (%zu bytes at most)", path, max);
	}
	*out = buf;
	*out_len = n;
	return 0;
}

int
cmd_verify(int argc, char **argv)
{
	static const struct option options[] = {
		{ "region", required_argument, NULL, 'r' },
		{ "at", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *region = NULL, *file = NULL;
	int64_t at_ms = clock_now_ms();
	bool json = false;
	char clean[512];
	struct xba_error err = { 0 };
	struct envelope_opened opened;
	struct directory *dir;
	uint8_t *bytes = NULL;
	size_t len = 0;
	int opt, rc;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'r': region = optarg; break;
		case 'a':
			if (clock_parse_rfc3339(optarg, &at_ms) != 0)
				return cli_usage_error("verify: --at '%s' is not an RFC 3339 time (2026-11-25T16:00:00Z)",
				    optarg);
			break;
		case 'j': json = true; break;
		case 'h': verify_usage(stdout); return CLI_EXIT_OK;
		default:
			return cli_usage_error("verify: unknown or incomplete option '%s' (xba verify --help)",
			    argv[optind - 1]);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("verify: expected exactly one FILE (xba verify --help)");
	file = argv[optind];
	if (region == NULL)
		return cli_usage_error("verify: --region REGION.yaml is required (xba verify --help)");
	dir = directory_load(region, &err);
	if (dir == NULL)
		return cli_usage_error("verify: %s", err.msg);
	if (read_file(file, ENVELOPE_MAX_BYTES, &bytes, &len) != 0) {
		directory_free(dir);
		return CLI_EXIT_USAGE;
	}

	rc = envelope_open(dir, bytes, len, at_ms, &opened, &err);
	free(bytes);
	if (rc != 0) {
		if (json) {
			struct jsonw w;

			jsonw_begin(&w, stdout);
			jsonw_string(&w, "file", file);
			jsonw_bool(&w, "valid", false);
			jsonw_string(&w, "error", xba_strerror(rc));
			jsonw_string(&w, "message", err.msg);
			jsonw_end(&w);
		} else {
			printf("%s: NOT VALID: %s (%s)\n", file, err.msg, xba_strerror(rc));
		}
		envelope_opened_clear(&opened);
		directory_free(dir);
		return CLI_EXIT_FAILED;
	}

	char fingerprint[64], sent[40];
	const Xba__V1__Info *info = alert_info_for_language(opened.alert, "en");

	keys_fingerprint(opened.key->key_id, fingerprint, sizeof(fingerprint));
	clock_format_rfc3339(opened.alert->sent_ms, sent, sizeof(sent));
	if (json) {
		struct jsonw w;

		jsonw_begin(&w, stdout);
		jsonw_string(&w, "file", file);
		jsonw_bool(&w, "valid", true);
		jsonw_string(&w, "alert_id", opened.alert->id);
		jsonw_string(&w, "origin", opened.alert->origin);
		jsonw_string(&w, "signer", opened.signer->id);
		jsonw_string(&w, "signer_name", opened.signer->name);
		jsonw_string(&w, "key", fingerprint);
		jsonw_string(&w, "author", opened.alert->author);
		jsonw_string(&w, "sent", sent);
		jsonw_string(&w, "headline", info ? info->headline : "");
		jsonw_end(&w);
	} else {
		printf("%s: valid\n", file);
		printf("  alert     %s\n", opened.alert->id);
		printf("  signed by %s (%s), key %s\n", opened.signer->id, opened.signer->name, fingerprint);
		printf("  author    %s\n", display_clean(opened.alert->author, clean, sizeof(clean)));
		printf("  sent      %s\n", sent);
		if (info != NULL)
			printf("  headline  %s\n", display_clean(info->headline, clean, sizeof(clean)));
	}
	envelope_opened_clear(&opened);
	directory_free(dir);
	return CLI_EXIT_OK;
}
