/*
 * cmd_audit.c — `xba audit verify JOURNAL`: an auditor's check of the broker's journal, the region's record of
 * every alert it accepted and whom it routed each to.  Offline: it reads a journal file (a copy the secretariat
 * hands over, or the live file) and talks to no agent or broker.
 *
 * Three checks, each closing a gap the one before leaves open:
 *   1. the hash chain (lib/chain.c): no entry altered, inserted or deleted before the tip;
 *   2. --region: every journaled alert is signed by its origin's key as region.yaml lists it, checked as the broker
 *      checked it on arrival (key valid at the sent time, not revoked at the received time), and the journal's own
 *      columns say what the signed alert says.  Whoever holds the file can rewrite the whole chain; nobody but the
 *      origin can sign, so a rewritten or invented alert fails here even when its chain is recomputed;
 *   3. --tip SEQ:HASH: the hash an earlier audit printed for SEQ is still the hash of SEQ, so that entries removed
 *      from the tail, or a chain recomputed since, are found too.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "chain.h"
#include "cli.h"
#include "directory.h"
#include "encoding.h"
#include "envelope.h"
#include "jsonw.h"

#define FAILURES_LISTED 20 /* signature failures printed one by one; the rest are counted */

static void
audit_usage(FILE *out)
{
	fprintf(out,
	    "usage: xba audit verify JOURNAL [--region REGION.yaml] [--tip SEQ:HASH] [--json]\n"
	    "\n"
	    "Check the broker's journal JOURNAL (a copy, or the live file: it is only read):\n"
	    "  - that every entry's hash chains to the one before (nothing altered, inserted or deleted);\n"
	    "  - with --region, that every journaled alert carries a valid signature of its origin's key in\n"
	    "    REGION.yaml and that the journal's columns say what the signed alert says;\n"
	    "  - with --tip, that entry SEQ still has the HASH an earlier audit printed (entries removed from the end,\n"
	    "    or a chain recomputed since, are found too).\n"
	    "It prints the tip to note for the next audit.\n"
	    "\n"
	    "  --region FILE   the region directory (region.yaml) whose keys signed the alerts\n"
	    "  --tip SEQ:HASH  a tip noted from an earlier audit's output (\"tip: seq SEQ hash HASH\")\n"
	    "  --json          print one JSON object instead of text\n"
	    "\n"
	    "exit status: 0 every check passed, 1 a check failed, 2 wrong arguments or unreadable files\n");
}

struct signature_failure {
	uint64_t seq;
	char alert_id[64];
	char origin[40];
	int code;
	char message[XBA_ERROR_MSG_MAX];
};

struct audit {
	const struct directory *dir;          /* NULL: signatures are not checked */
	uint64_t signatures_ok, signatures_failed;
	struct signature_failure failures[FAILURES_LISTED];
	uint64_t tip_seq;                     /* --tip: 0 when not given */
	uint8_t tip_hash[CHAIN_HASH_LEN];
	bool tip_seen;                        /* the walk reached tip_seq */
	bool tip_matches;
};

static void
note_failure(struct audit *a, const struct chain_entry *e, int code, const char *fmt, ...) XBA_PRINTF(4, 5);

static void
note_failure(struct audit *a, const struct chain_entry *e, int code, const char *fmt, ...)
{
	if (a->signatures_failed < FAILURES_LISTED) {
		struct signature_failure *f = &a->failures[a->signatures_failed];
		va_list ap;

		f->seq = e->seq;
		snprintf(f->alert_id, sizeof(f->alert_id), "%.*s", (int)e->alert_id_len, e->alert_id);
		snprintf(f->origin, sizeof(f->origin), "%.*s", (int)e->origin_len, e->origin);
		f->code = code;
		va_start(ap, fmt);
		vsnprintf(f->message, sizeof(f->message), fmt, ap);
		va_end(ap);
	}
	a->signatures_failed++;
}

static bool
column_is(const char *column, size_t len, const char *value)
{
	return value != NULL && strlen(value) == len && memcmp(column, value, len) == 0;
}

/* The signed alert against the columns the chain covers: a chain recomputed over altered columns is caught here. */
static void
check_signature(struct audit *a, const struct chain_entry *e, const uint8_t *envelope, size_t envelope_len)
{
	struct xba_error err = { 0 };
	struct envelope_opened opened;
	const Xba__V1__Alert *alert;
	int rc;

	rc = envelope_open(a->dir, envelope, envelope_len, e->received_ms, &opened, &err);
	if (rc != 0) {
		note_failure(a, e, rc, "%s", err.msg);
		envelope_opened_clear(&opened);
		return;
	}
	alert = opened.alert;
	if (!column_is(e->alert_id, e->alert_id_len, alert->id))
		note_failure(a, e, XBA_EDECODE, "the journal says alert %.*s, the signed alert is %s",
		    (int)e->alert_id_len, e->alert_id, alert->id);
	else if (!column_is(e->origin, e->origin_len, alert->origin))
		note_failure(a, e, XBA_EDECODE, "the journal says origin %.*s, the signed alert is from %s",
		    (int)e->origin_len, e->origin, alert->origin);
	else if (e->sent_ms != alert->sent_ms || e->msg_type != (int64_t)alert->msg_type ||
	    e->emergency != (alert->emergency ? 1 : 0))
		note_failure(a, e, XBA_EDECODE, "the journal's sent time, type or emergency flag differ from the signed "
		    "alert's");
	else
		a->signatures_ok++;
	envelope_opened_clear(&opened);
}

static int
visit_entry(void *ctx, const struct chain_entry *e, const uint8_t *envelope, size_t envelope_len,
    struct xba_error *err)
{
	struct audit *a = ctx;

	(void)err;
	if (a->dir != NULL)
		check_signature(a, e, envelope, envelope_len);
	if (a->tip_seq != 0 && e->seq == a->tip_seq) {
		a->tip_seen = true;
		a->tip_matches = memcmp(e->hash, a->tip_hash, CHAIN_HASH_LEN) == 0;
	}
	return 0;
}

/* "SEQ:HASH"; also the whole line an audit prints, "tip: seq SEQ hash HASH", so that it can be kept as it is. */
static int
parse_tip(const char *text, struct audit *a)
{
	unsigned long long seq;
	char *end;
	const char *hex;

	if (strncmp(text, "tip: ", 5) == 0)
		text += 5;
	if (strncmp(text, "seq ", 4) == 0)
		text += 4;
	errno = 0;
	seq = strtoull(text, &end, 10);
	if (errno != 0 || end == text || seq == 0 || (*end != ':' && *end != ' ') || text[0] == '-')
		return -1;
	hex = end + 1;
	if (strncmp(hex, "hash ", 5) == 0)
		hex += 5;
	if (strlen(hex) != 2 * CHAIN_HASH_LEN || encoding_unhex(hex, a->tip_hash, CHAIN_HASH_LEN) != 0)
		return -1;
	a->tip_seq = seq;
	return 0;
}

/* What became of the noted tip: "match", "mismatch", "pruned" (below the prune base: gone from the file; the base
 * itself is the last pruned entry, whose hash the file still keeps) or "missing" (past the end, or the walk broke
 * before it). */
static const char *
tip_verdict(const struct audit *a, const struct chain_walk_result *r)
{
	if (a->tip_seen)
		return a->tip_matches ? "match" : "mismatch";
	if (r->base_seq != 0 && a->tip_seq == r->base_seq)
		return memcmp(r->base_hash, a->tip_hash, CHAIN_HASH_LEN) == 0 ? "match" : "mismatch";
	return a->tip_seq < r->base_seq ? "pruned" : "missing";
}

static void
print_text(const char *path, const struct audit *a, const struct chain_walk_result *r, int walk_rc,
    const char *walk_msg, const char *tip)
{
	char hex[2 * CHAIN_HASH_LEN + 1];

	if (walk_rc == 0) {
		if (r->checked == 0)
			printf("journal %s: no entries%s, hash chain intact\n", path, r->base_seq ? " after the prune base" : "");
		else
			printf("journal %s: entries %" PRIu64 "..%" PRIu64 " (%" PRIu64 "), hash chain intact\n", path,
			    r->first_seq, r->last_seq, r->checked);
	} else {
		printf("journal %s: TAMPERED OR DAMAGED after %" PRIu64 " good entries: %s\n", path, r->checked, walk_msg);
	}
	if (r->base_seq != 0)
		printf("pruned: entries up to seq %" PRIu64 " (retention); the first kept entry chains from their hash\n",
		    r->base_seq);
	if (a->dir != NULL) {
		for (uint64_t i = 0; i < a->signatures_failed && i < FAILURES_LISTED; i++) {
			const struct signature_failure *f = &a->failures[i];

			printf("seq %" PRIu64 " alert %s from %s: NOT VALID: %s (%s)\n", f->seq, f->alert_id, f->origin,
			    f->message, xba_strerror(f->code));
		}
		if (a->signatures_failed > FAILURES_LISTED)
			printf("... and %" PRIu64 " more not valid\n", a->signatures_failed - FAILURES_LISTED);
		printf("signatures: %" PRIu64 " of %" PRIu64 " verified against the region directory%s\n",
		    a->signatures_ok, a->signatures_ok + a->signatures_failed,
		    a->signatures_failed ? "; the others are NOT VALID" : "");
	}
	if (tip != NULL) {
		encoding_hex(a->tip_hash, CHAIN_HASH_LEN, hex);
		if (strcmp(tip, "match") == 0)
			printf("noted tip: seq %" PRIu64 " still has hash %s\n", a->tip_seq, hex);
		else if (strcmp(tip, "mismatch") == 0)
			printf("noted tip: seq %" PRIu64 " DOES NOT MATCH: its hash is no longer %s (the history up to it "
			    "was rewritten)\n", a->tip_seq, hex);
		else if (strcmp(tip, "pruned") == 0)
			printf("noted tip: seq %" PRIu64 " CANNOT BE CHECKED: it was pruned (entries up to %" PRIu64 " are "
			    "gone); note a newer tip\n", a->tip_seq, r->base_seq);
		else
			printf("noted tip: seq %" PRIu64 " IS MISSING: the journal %s\n", a->tip_seq,
			    walk_rc != 0 ? "breaks before it" : "ends before it (entries removed from the end)");
	}
	if (walk_rc == 0) {
		encoding_hex(r->tip, CHAIN_HASH_LEN, hex);
		printf("tip: seq %" PRIu64 " hash %s\n", r->checked ? r->last_seq : r->base_seq, hex);
	}
}

static void
print_json(const char *path, const struct audit *a, const struct chain_walk_result *r, int walk_rc,
    const char *walk_msg, const char *tip, bool ok)
{
	struct jsonw w;
	char hex[2 * CHAIN_HASH_LEN + 1];

	jsonw_begin(&w, stdout);
	jsonw_string(&w, "journal", path);
	jsonw_bool(&w, "ok", ok);
	jsonw_bool(&w, "chain_intact", walk_rc == 0);
	jsonw_int(&w, "entries", (int64_t)r->checked);
	jsonw_int(&w, "first_seq", (int64_t)r->first_seq);
	jsonw_int(&w, "last_seq", (int64_t)r->last_seq);
	jsonw_int(&w, "base_seq", (int64_t)r->base_seq);
	if (walk_rc != 0) {
		jsonw_int(&w, "broken_seq", (int64_t)r->broken_seq);
		jsonw_string(&w, "error", xba_strerror(walk_rc));
		jsonw_string(&w, "message", walk_msg);
	} else {
		jsonw_int(&w, "tip_seq", (int64_t)(r->checked ? r->last_seq : r->base_seq));
		jsonw_string(&w, "tip_hash", encoding_hex(r->tip, CHAIN_HASH_LEN, hex));
	}
	if (a->dir != NULL) {
		jsonw_int(&w, "signatures_verified", (int64_t)a->signatures_ok);
		jsonw_int(&w, "signatures_not_valid", (int64_t)a->signatures_failed);
		jsonw_array_begin(&w, "not_valid");
		for (uint64_t i = 0; i < a->signatures_failed && i < FAILURES_LISTED; i++) {
			const struct signature_failure *f = &a->failures[i];

			jsonw_object_begin(&w, NULL);
			jsonw_int(&w, "seq", (int64_t)f->seq);
			jsonw_string(&w, "alert_id", f->alert_id);
			jsonw_string(&w, "origin", f->origin);
			jsonw_string(&w, "error", xba_strerror(f->code));
			jsonw_string(&w, "message", f->message);
			jsonw_object_end(&w);
		}
		jsonw_array_end(&w);
	}
	if (tip != NULL) {
		jsonw_object_begin(&w, "noted_tip");
		jsonw_int(&w, "seq", (int64_t)a->tip_seq);
		jsonw_string(&w, "hash", encoding_hex(a->tip_hash, CHAIN_HASH_LEN, hex));
		jsonw_string(&w, "result", tip);
		jsonw_object_end(&w);
	}
	jsonw_end(&w);
}

static int
audit_verify(int argc, char **argv)
{
	static const struct option options[] = {
		{ "region", required_argument, NULL, 'r' },
		{ "tip", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *region = NULL, *path, *tip = NULL;
	struct xba_error err = { 0 }, walk_err = { 0 };
	struct chain_walk_result result;
	struct directory *dir = NULL;
	struct audit *a;
	struct chain *chain = NULL;
	sqlite3 *db = NULL;
	bool json = false, ok;
	int opt, walk_rc;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return cli_usage_error("audit: out of memory");
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'r': region = optarg; break;
		case 't':
			if (parse_tip(optarg, a) != 0) {
				free(a);
				return cli_usage_error("audit verify: --tip '%s' is not SEQ:HASH (a seq from 1 and 64 hex "
				    "digits, as an earlier audit printed them)", optarg);
			}
			break;
		case 'j': json = true; break;
		case 'h': audit_usage(stdout); free(a); return CLI_EXIT_OK;
		default:
			free(a);
			return cli_usage_error("audit verify: unknown or incomplete option '%s' (xba audit --help)",
			    argv[optind - 1]);
		}
	}
	if (optind + 1 != argc) {
		free(a);
		return cli_usage_error("audit verify: expected exactly one JOURNAL file (xba audit --help)");
	}
	path = argv[optind];
	if (region != NULL && (dir = directory_load(region, &err)) == NULL) {
		free(a);
		return cli_usage_error("audit verify: %s", err.msg);
	}
	a->dir = dir;
	if (chain_open_readonly(path, &db, &err) != 0 || (chain = chain_new(path, &err)) == NULL) {
		sqlite3_close(db);
		directory_free(dir);
		free(a);
		return cli_usage_error("audit verify: %s", err.msg);
	}
	/* One read transaction: both tables from one snapshot while the broker may be writing the live file. */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		cli_usage_error("audit verify: journal %s: cannot read: %s", path, sqlite3_errmsg(db));
		walk_rc = CLI_EXIT_USAGE;
		goto out;
	}
	walk_rc = chain_walk(chain, db, visit_entry, a, &result, &walk_err);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (walk_rc != 0 && walk_rc != XBA_EDECODE) {
		/* Not a verdict on the journal: the file could not be read to the end. */
		cli_usage_error("audit verify: %s", walk_err.msg);
		walk_rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (a->tip_seq != 0)
		tip = tip_verdict(a, &result);
	ok = walk_rc == 0 && a->signatures_failed == 0 && (tip == NULL || strcmp(tip, "match") == 0);
	if (json)
		print_json(path, a, &result, walk_rc, walk_err.msg, tip, ok);
	else
		print_text(path, a, &result, walk_rc, walk_err.msg, tip);
	walk_rc = ok ? CLI_EXIT_OK : CLI_EXIT_FAILED;
out:
	chain_free(chain);
	sqlite3_close(db);
	directory_free(dir);
	free(a);
	return walk_rc;
}

int
cmd_audit(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return audit_verify(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		audit_usage(stdout);
		return CLI_EXIT_OK;
	}
	return cli_usage_error("audit: expected 'verify' (xba audit --help)");
}
