/*
 * cmd_audit.c — `xba audit verify JOURNAL`: an auditor's check of the broker's journal, the region's record of
 * every alert it accepted and whom it routed each to.  Offline: it reads a journal file (a copy the secretariat
 * hands over, or the live file) and talks to no agent or broker.
 *
 * Four checks, each closing a gap the one before leaves open:
 *   1. the hash chain (lib/chain.c): no entry altered, inserted or deleted before the tip;
 *   2. --region: every journaled alert is signed by its origin's key as region.yaml lists it, checked as the broker
 *      checked it on arrival (key valid at the sent time, not revoked at the received time), and the journal's own
 *      columns say what the signed alert says.  Whoever holds the file can rewrite the whole chain; nobody but the
 *      origin can sign, so a rewritten or invented alert fails here even when its chain is recomputed;
 *   3. --tip SEQ:HASH: the hash an earlier audit printed for SEQ is still the hash of SEQ, so that entries removed
 *      from the tail, or a chain recomputed since, are found too;
 *   4. --rules: every entry routed by that rules file's version is routed again with lib/rules.c, and the result
 *      must be exactly the journaled routing (recipients, withheld nodes, and the rule for each).  Routing records
 *      are chained but not signed: this shows the broker sent each alert where the agreed rules said.  The
 *      comparison is by hash: the entry's chain hash recomputed with the expected routing must equal its own;
 *   5. --agent-records: what this country's own agent holds (every alert delivered to it, every alert it sent that
 *      the broker accepted, each under its journal seq) must be in the journal, at that seq, with the same bytes,
 *      routed to it or sent by it.  A country's store is beyond the secretariat's reach, so entries deleted from the
 *      journal with the chain recomputed after them, which no earlier tip covers, are found here.
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
#include "display.h"
#include "encoding.h"
#include "envelope.h"
#include "jsonw.h"
#include "localclient.h"
#include "rules.h"

#define FAILURES_LISTED 20 /* failures printed one by one; the rest are counted */
#define VERSIONS_LISTED 8  /* other rules versions named in the routing summary */
#define ROUTE_TEXT_MAX 400 /* a routing written out for a message */
#define AUDIT_FILES_MAX 16 /* --region and --rules files each: every version put in force */

static void
audit_usage(FILE *out)
{
	fprintf(out,
	    "usage: xba audit verify JOURNAL [--region REGION.yaml [--rules RULES.yaml]] [--tip SEQ:HASH]\n"
	    "                        [--agent-records] [--json]\n"
	    "\n"
	    "Check the broker's journal JOURNAL (a copy, or the live file: it is only read):\n"
	    "  - that SQLite finds the file undamaged (its integrity_check: every page, table and index);\n"
	    "  - that every entry's hash chains to the one before (nothing altered, inserted or deleted);\n"
	    "  - with --region, that every journaled alert carries a valid signature of its origin's key in\n"
	    "    REGION.yaml and that the journal's columns say what the signed alert says;\n"
	    "  - with --tip, that entry SEQ still has the HASH an earlier audit printed (entries removed from the end,\n"
	    "    or a chain recomputed since, are found too);\n"
	    "  - with --rules, that every entry routed by that rules file was routed exactly as it says (recipients,\n"
	    "    withheld nodes, and the rule for each), given REGION.yaml as it was then;\n"
	    "  - with --agent-records, that every alert this country's agent holds under a journal seq (delivered to\n"
	    "    it, or sent by it and accepted) is in the journal at that seq, with the same bytes.\n"
	    "It prints the tip to note for the next audit.\n"
	    "\n"
	    "  --region FILE   the region directory (region.yaml) whose keys signed the alerts; give every version put\n"
	    "                  in force (up to %d, newest last): an entry passes under the one of its day\n"
	    "  --rules FILE    the rules file (rules.yaml) to check routing against, also repeatable; entries routed by\n"
	    "                  other versions of the rules are counted, not checked\n"
	    "  --all-rules     the --rules files given are every version the broker loaded: an entry routed by any\n"
	    "                  other version fails (a rules version nobody can show a file for is a forgery or a file\n"
	    "                  lost; without this option such entries are listed NOT CHECKED and pass)\n"
	    "  --tip SEQ:HASH  a tip noted from an earlier audit's output (\"tip: seq SEQ hash HASH\")\n"
	    "  --agent-records compare with this country's agent (found as every xba command finds it, below)\n"
	    "  --json          print one JSON object instead of text\n"
	    "%s"
	    "\n"
	    "exit status: 0 every check passed, 1 a check failed or the journal is damaged (TAMPERED OR DAMAGED),\n"
	    "2 wrong arguments, or a file that cannot be read or is not an XBA journal\n",
	    AUDIT_FILES_MAX, local_target_usage);
}

struct failure {
	uint64_t seq;
	char alert_id[64];
	char origin[40];
	const char *verdict;                  /* "NOT VALID" (signature, columns) or "ROUTED OTHERWISE" */
	int code;                             /* the signature's XBA_E* code; 0 for a column or routing difference */
	char message[2 * ROUTE_TEXT_MAX + 200];
};

/* What the agent holds under a journal seq (--agent-records). */
struct agent_record {
	uint64_t seq;
	bool sent;                            /* this node sent it; otherwise it was delivered to this node */
	char alert_id[40];
	uint8_t envelope_sha256[CHAIN_HASH_LEN];
};

struct other_version {
	char version[RULES_VERSION_LEN + 1];
	uint64_t entries, first_seq, last_seq;
};

/* A rules file loaded against one of the region files: rules name nodes and groups, so a routing is reproduced
 * only with the directory it was made with, which the journal does not record. */
struct routing_pair {
	const struct directory *dir;
	const struct rules *rules;
};

struct audit {
	const struct directory *dirs[AUDIT_FILES_MAX]; /* --region files, in the order given; none: no signatures */
	size_t n_dirs;
	struct routing_pair pairs[AUDIT_FILES_MAX * AUDIT_FILES_MAX]; /* every (rules, region) that loads; none: no
								       * routing checked */
	size_t n_pairs;
	const struct rules *rules_files[AUDIT_FILES_MAX]; /* --rules files, one load each, for the summary */
	size_t n_rules_files;
	const struct directory *dir;          /* the routing being tried: its directory ... */
	const struct rules *rules;            /* ... and rules */
	struct chain *expect;                 /* --rules: hashes an entry with the routing the rules give */
	sqlite3_stmt *find_origin;            /* --rules: the origin of an acknowledged alert, by id */
	sqlite3_stmt *routing_rows;           /* --rules: an entry's journaled routing, for a message */
	sqlite3_stmt *had_alert;              /* --rules: who an update's or cancel's alert was routed to */
	uint64_t signatures_ok, signatures_failed;
	uint64_t routes_ok, routes_failed, routes_unchecked, routes_other;
	uint64_t routes_earlier;                /* of routes_ok: cancels routed as releases before 2026-11-26 did */
	bool all_rules;                       /* --all-rules: routes_other > 0 fails the audit */
	uint64_t earlier_first_seq, earlier_last_seq;
	struct failure failures[FAILURES_LISTED];
	uint64_t n_failures;
	struct other_version versions[VERSIONS_LISTED];
	size_t n_versions;
	struct agent_record *records;         /* --agent-records: sorted by (seq, sent); NULL when none */
	const struct chain_walk_result *walk; /* the walk's result: its base_seq is set before the first visit */
	uint64_t records_after;               /* --agent-records: records past the journal's last entry */
	size_t n_records, next_record;        /* next_record: the walk's position in records */
	char agent_node[XBA_NODE_ID_MAX + 1];
	sqlite3_stmt *routed_to;              /* --agent-records: was seq routed to (not withheld from) the node? */
	uint64_t records_ok, records_failed, records_pruned;
	uint64_t tip_seq;                     /* --tip: 0 when not given */
	uint8_t tip_hash[CHAIN_HASH_LEN];
	bool tip_seen;                        /* the walk reached tip_seq */
	bool tip_matches;
	struct ack_seen *acks;                /* --region: every (alert, node) a validly signed ACK entry acknowledges */
	size_t n_acks, cap_acks;
	uint64_t acks_checked;                /* delivery rows whose acknowledged state was compared with the ACKs */
};

struct ack_seen {
	char alert_id[XBA_UUID_LEN + 1];
	char node[XBA_NODE_ID_MAX + 1];
};

static void
note_failure_v(struct audit *a, uint64_t seq, const char *alert_id, int alert_id_len, const char *origin,
    int origin_len, const char *verdict, int code, const char *fmt, va_list ap)
{
	if (a->n_failures < FAILURES_LISTED) {
		struct failure *f = &a->failures[a->n_failures];

		f->seq = seq;
		snprintf(f->alert_id, sizeof(f->alert_id), "%.*s", alert_id_len, alert_id);
		snprintf(f->origin, sizeof(f->origin), "%.*s", origin_len, origin);
		f->verdict = verdict;
		f->code = code;
		vsnprintf(f->message, sizeof(f->message), fmt, ap);
	}
	a->n_failures++;
}

static void
note_failure(struct audit *a, const struct chain_entry *e, const char *verdict, int code, const char *fmt, ...)
    XBA_PRINTF(5, 6);

static void
note_failure(struct audit *a, const struct chain_entry *e, const char *verdict, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	note_failure_v(a, e->seq, e->alert_id, (int)e->alert_id_len, e->origin, (int)e->origin_len, verdict, code, fmt,
	    ap);
	va_end(ap);
}

/* A record of the agent's that the journal contradicts; origin "" when the journal has no entry for it. */
static void
note_record_failure(struct audit *a, const struct agent_record *r, const char *origin, const char *verdict,
    const char *fmt, ...) XBA_PRINTF(5, 6);

static void
note_record_failure(struct audit *a, const struct agent_record *r, const char *origin, const char *verdict,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	note_failure_v(a, r->seq, r->alert_id, (int)strlen(r->alert_id), origin[0] ? origin : "?", (int)strlen(origin[0]
	    ? origin : "?"), verdict, 0, fmt, ap);
	va_end(ap);
	a->records_failed++;
}

static void
note_signature_failure(struct audit *a, const struct chain_entry *e, int code, const char *fmt, ...)
    XBA_PRINTF(4, 5);

static void
note_signature_failure(struct audit *a, const struct chain_entry *e, int code, const char *fmt, ...)
{
	char message[XBA_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	note_failure(a, e, "NOT VALID", code, "%s", message);
	a->signatures_failed++;
}

static bool
column_is(const char *column, size_t len, const char *value)
{
	return value != NULL && strlen(value) == len && memcmp(column, value, len) == 0;
}

/* The signed alert against the columns the chain covers: a chain recomputed over altered columns is caught here.
 * true when the signature and the columns verify. */
static bool
check_signature(struct audit *a, const struct chain_entry *e, const struct envelope_opened *opened, int open_rc,
    const char *open_msg)
{
	const Xba__V1__Alert *alert = opened->alert;

	if (open_rc != 0)
		note_signature_failure(a, e, open_rc, "%s", open_msg);
	else if (!column_is(e->alert_id, e->alert_id_len, alert->id))
		note_signature_failure(a, e, 0, "the journal says alert %.*s, the signed alert is %s",
		    (int)e->alert_id_len, e->alert_id, alert->id);
	else if (!column_is(e->origin, e->origin_len, alert->origin))
		note_signature_failure(a, e, 0, "the journal says origin %.*s, the signed alert is from %s",
		    (int)e->origin_len, e->origin, alert->origin);
	else if (e->sent_ms != alert->sent_ms || e->msg_type != (int64_t)alert->msg_type ||
	    e->emergency != (alert->emergency ? 1 : 0))
		note_signature_failure(a, e, 0, "the journal's sent time, type or emergency flag differ from "
		    "the signed alert's");
	else {
		a->signatures_ok++;
		return true;
	}
	return false;
}

/* ---- routing (--rules) ---- */

static void
count_other_version(struct audit *a, const struct chain_entry *e)
{
	struct other_version *v = NULL;

	a->routes_other++;
	for (size_t i = 0; i < a->n_versions; i++) {
		if (column_is(e->rules_version, e->rules_version_len, a->versions[i].version))
			v = &a->versions[i];
	}
	if (v == NULL && a->n_versions < VERSIONS_LISTED) {
		v = &a->versions[a->n_versions++];
		snprintf(v->version, sizeof(v->version), "%.*s", (int)e->rules_version_len, e->rules_version);
		v->first_seq = e->seq;
	}
	if (v != NULL) {
		v->entries++;
		v->last_seq = e->seq;
	}
}

/* Appends one difference to text: "; journal only: to SDN (crime-to-neighbours)". */
static void
append_difference(char *text, size_t size, const char *side, bool withheld, const char *node, const char *rule)
{
	size_t len = strlen(text);

	if (len < size - 1)
		snprintf(text + len, size - len, "%s%s: %s %s (%s)", len > 0 ? "; " : "", side,
		    withheld ? "withheld from" : "to", node, rule);
}

/*
 * What differs between the journal's routing of seq and the rules' (sorted: recipients then withheld, each by node),
 * written as "journal only: to SDN (r); rules only: withheld from TCD (deny)".  Both sides are in node order
 * within each list (SQLite's BINARY collation and directory.nodes both sort node ids bytewise), so one merge walk.
 */
static void
routing_difference(struct audit *a, uint64_t seq, const struct route_entry *const *sorted, size_t n_recipients,
    size_t n, char *text, size_t size)
{
	sqlite3_stmt *st = a->routing_rows;
	size_t k = 0;
	int rc;

	text[0] = '\0';
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	rc = sqlite3_step(st);
	while (rc == SQLITE_ROW || k < n) {
		bool j_withheld = rc == SQLITE_ROW && sqlite3_column_int(st, 2) == CHAIN_DELIVERY_WITHHELD;
		const char *j_node = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
		const char *j_rule = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 1) : NULL;
		bool r_withheld = k >= n_recipients;
		const char *r_node = k < n ? a->dir->nodes[sorted[k]->node_index].id : NULL;
		int c;

		if (j_node == NULL)
			c = 1;
		else if (r_node == NULL)
			c = -1;
		else if (j_withheld != r_withheld)
			c = j_withheld ? 1 : -1; /* recipients come first on both sides */
		else
			c = strcmp(j_node, r_node);
		if (c < 0) {
			append_difference(text, size, "journal only", j_withheld, j_node, j_rule ? j_rule : "");
			rc = sqlite3_step(st);
		} else if (c > 0) {
			append_difference(text, size, "rules only", r_withheld, r_node, sorted[k]->rule);
			k++;
		} else {
			if (j_rule == NULL || strcmp(j_rule, sorted[k]->rule) != 0) {
				append_difference(text, size, "journal only", j_withheld, j_node, j_rule ? j_rule : "");
				append_difference(text, size, "rules only", r_withheld, r_node, sorted[k]->rule);
			}
			rc = sqlite3_step(st);
			k++;
		}
	}
	sqlite3_reset(st);
	if (text[0] == '\0')
		snprintf(text, size, "the same recipients and rules, yet a different hash");
}

/* An update's or cancel's route_inputs, as the broker built them from its journal: who had each alert it names
 * (of its own origin, journaled before it).  The ids are copied into nodes.  0; 1 when a named alert is not in a
 * journal pruned since (what the broker saw then cannot be known); -1 when the list does not fit. */
static int
superseded_recipients(struct audit *a, const struct chain_entry *e, const Xba__V1__Alert *alert,
    char (*nodes)[XBA_NODE_ID_MAX + 1], const char **list, size_t max, size_t *n)
{
	sqlite3_stmt *st = a->had_alert;

	*n = 0;
	for (size_t r = 0; r < alert->n_references; r++) {
		bool present;

		sqlite3_bind_text(a->find_origin, 1, alert->references[r], -1, SQLITE_STATIC);
		present = sqlite3_step(a->find_origin) == SQLITE_ROW;
		sqlite3_reset(a->find_origin);
		if (!present && a->walk != NULL && a->walk->base_seq > 0)
			return 1;
		sqlite3_bind_text(st, 1, alert->references[r], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, alert->origin, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (int64_t)e->seq);
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *node = (const char *)sqlite3_column_text(st, 0);
			bool seen = false;

			for (size_t i = 0; i < *n && !seen; i++)
				seen = strcmp(nodes[i], node != NULL ? node : "") == 0;
			if (seen || node == NULL)
				continue;
			if (*n == max) {
				sqlite3_reset(st);
				return -1;
			}
			snprintf(nodes[*n], sizeof(nodes[0]), "%s", node);
			list[*n] = nodes[*n];
			(*n)++;
		}
		sqlite3_reset(st);
	}
	return 0;
}

enum route_verdict {
	ROUTE_MATCH,      /* exactly the journaled routing */
	ROUTE_DIFFERS,    /* why says how */
	ROUTE_UNCHECKED,  /* what it depends on was pruned, or did not fit */
};

/* Routes the alert again with a->rules and a->dir and compares, through the chain hash, with what the journal
 * recorded. */
static enum route_verdict
route_once(struct audit *a, const struct chain_entry *e, const Xba__V1__Alert *alert,
    enum route_cancel_holders cancel_holders, char *why, size_t why_size)
{
	struct xba_error err = { 0 };
	struct route route = { 0 };
	char acked_origin[XBA_NODE_ID_MAX + 1] = "";
	char (*had_nodes)[XBA_NODE_ID_MAX + 1] = NULL;
	const char **had = NULL;
	struct route_inputs inputs = { 0 };
	const struct route_entry **sorted = NULL;
	uint8_t expected[CHAIN_HASH_LEN];
	enum route_verdict verdict;
	size_t n;
	int rc;

	if (alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ACK && alert->n_references > 0) {
		/* An ACK goes to the origin of what it acknowledges: the broker looked it up in the journal, so do we. */
		sqlite3_stmt *st = a->find_origin;

		sqlite3_bind_text(st, 1, alert->references[0], -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(acked_origin, sizeof(acked_origin), "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_reset(st);
		if (acked_origin[0] == '\0')
			return ROUTE_UNCHECKED; /* what it acknowledges was pruned: its origin is no longer known */
	}
	if (alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE || alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL) {
		size_t max = a->dir->n_nodes;

		if ((had_nodes = calloc(max + 1, sizeof(*had_nodes))) == NULL ||
		    (had = calloc(max + 1, sizeof(*had))) == NULL ||
		    superseded_recipients(a, e, alert, had_nodes, had, max, &inputs.n_superseded_recipients) != 0) {
			free(had_nodes);
			free(had);
			return ROUTE_UNCHECKED;
		}
		inputs.superseded_recipients = had;
	}
	inputs.acked_origin = acked_origin[0] ? acked_origin : NULL;
	inputs.cancel_holders = cancel_holders;
	rc = rules_route_with(a->rules, a->dir, alert, &inputs, &route, &err);
	free(had_nodes);
	free(had);
	if (rc != 0) {
		snprintf(why, why_size, "the rules refuse to route it (%s), but the journal routed it", err.msg);
		return ROUTE_DIFFERS;
	}
	n = route.n_recipients + route.n_withheld;
	if ((sorted = calloc(n + 1, sizeof(*sorted))) == NULL) {
		route_clear(&route);
		return ROUTE_UNCHECKED;
	}
	/* rules_route sorts each list by node_index, and directory.nodes is sorted by id bytewise: the order in which
	 * the journal hashed the pairs. */
	for (size_t i = 0; i < n; i++)
		sorted[i] = i < route.n_recipients ? &route.recipients[i] : &route.withheld[i - route.n_recipients];
	chain_pairs_clear(a->expect);
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *node = a->dir->nodes[sorted[i]->node_index].id;

		rc = chain_pair_add(a->expect, i >= route.n_recipients, node, strlen(node), sorted[i]->rule,
		    strlen(sorted[i]->rule), &err);
	}
	if (rc == 0)
		rc = chain_hash(a->expect, e->prev_hash, e, expected, &err);
	if (rc != 0) {
		verdict = ROUTE_UNCHECKED;
	} else if (memcmp(expected, e->hash, CHAIN_HASH_LEN) == 0) {
		verdict = ROUTE_MATCH;
	} else {
		routing_difference(a, e->seq, sorted, route.n_recipients, n, why, why_size);
		verdict = ROUTE_DIFFERS;
	}
	free(sorted);
	route_clear(&route);
	return verdict;
}

/*
 * The entry's routing against every (rules, region) pair whose rules version routed it: it passes when one of them
 * gives exactly the journaled routing (the region files are every directory put in force, and the journal does not
 * say which one was).  A difference is reported against the last pair tried: the newest files, if given last.
 */
static void
check_routing(struct audit *a, const struct chain_entry *e, const Xba__V1__Alert *alert)
{
	char difference[2 * ROUTE_TEXT_MAX] = "";
	bool candidate = false, differs = false;

	for (size_t i = 0; i < a->n_pairs; i++) {
		char why[2 * ROUTE_TEXT_MAX];
		enum route_verdict v;

		if (!column_is(e->rules_version, e->rules_version_len, rules_version(a->pairs[i].rules)))
			continue;
		candidate = true;
		a->dir = a->pairs[i].dir;
		a->rules = a->pairs[i].rules;
		why[0] = '\0';
		v = route_once(a, e, alert, ROUTE_CANCEL_REACHES_HOLDERS, why, sizeof(why));
		/* A cancel that its TLP (releases before 2026-11-27) or a deny rule (before 2026-11-26) kept from a node
		 * that had the alert: journals those releases wrote must not read as rewritten. */
		if (v == ROUTE_DIFFERS && alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL) {
			char earlier[2 * ROUTE_TEXT_MAX];

			/* Counted apart and said: expected of entries an earlier broker journaled, and of none after the
			 * upgrade, where it would be a broker that kept a withdrawal from a node that holds the alert. */
			if (route_once(a, e, alert, ROUTE_CANCEL_TLP_BARS_HOLDERS, earlier, sizeof(earlier)) == ROUTE_MATCH ||
			    route_once(a, e, alert, ROUTE_CANCEL_DENY_BARS_HOLDERS, earlier, sizeof(earlier)) == ROUTE_MATCH) {
				if (a->routes_earlier++ == 0)
					a->earlier_first_seq = e->seq;
				a->earlier_last_seq = e->seq;
				v = ROUTE_MATCH;
			}
		}
		if (v == ROUTE_MATCH) {
			a->routes_ok++;
			return;
		}
		if (v == ROUTE_DIFFERS) {
			differs = true;
			snprintf(difference, sizeof(difference), "%s%s", why, a->n_dirs > 1 ? " (under each region file "
			    "given; this with the last)" : "");
		}
	}
	if (!candidate) {
		count_other_version(a, e);
	} else if (differs) {
		note_failure(a, e, "ROUTED OTHERWISE", 0, "%s", difference);
		a->routes_failed++;
	} else {
		a->routes_unchecked++;
	}
}

/* ---- the agent's records (--agent-records) ---- */

static int
by_seq(const void *x, const void *y)
{
	const struct agent_record *a = x, *b = y;

	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return (int)a->sent - (int)b->sent;
}

/* Every record of one kind, page by page, appended to a->records.  0, or an exit status (error printed). */
static int
fetch_records(struct audit *a, struct local_client *c, bool sent)
{
	Xba__V1__RecordsRequest req = XBA__V1__RECORDS_REQUEST__INIT;
	Xba__V1__LocalFrame frame = XBA__V1__LOCAL_FRAME__INIT;
	struct xba_error err = { 0 };
	bool end = false;
	size_t cap = a->n_records;

	req.sent = sent;
	frame.body_case = XBA__V1__LOCAL_FRAME__BODY_RECORDS;
	frame.records = &req;
	while (!end) {
		Xba__V1__LocalFrame *reply = NULL;
		const Xba__V1__RecordsReply *r;

		if (local_client_request(c, &frame, &reply, 20000, &err) != 0)
			return cli_usage_error("audit verify: --agent-records: %s", err.msg);
		if (reply->body_case == XBA__V1__LOCAL_FRAME__BODY_ERROR) {
			cli_usage_error("audit verify: --agent-records: the agent says: %s", reply->error->message);
			local_frame_free(reply);
			return CLI_EXIT_USAGE;
		}
		if (reply->body_case != XBA__V1__LOCAL_FRAME__BODY_RECORDS_REPLY) {
			/* An agent older than this command answers with an error about an unknown request, or not at all. */
			local_frame_free(reply);
			return cli_usage_error("audit verify: --agent-records: unexpected answer from the agent (is it older "
			    "than this xba?)");
		}
		r = reply->records_reply;
		snprintf(a->agent_node, sizeof(a->agent_node), "%s", r->node_id);
		if (a->n_records + r->n_records > cap) {
			size_t want = (a->n_records + r->n_records) * 2;
			struct agent_record *grown = realloc(a->records, want * sizeof(*grown));

			if (grown == NULL) {
				local_frame_free(reply);
				return cli_usage_error("audit verify: out of memory");
			}
			a->records = grown;
			cap = want;
		}
		for (size_t i = 0; i < r->n_records; i++) {
			struct agent_record *rec = &a->records[a->n_records];

			if (r->records[i]->envelope_sha256.len != CHAIN_HASH_LEN)
				continue; /* not from this protocol: nothing to compare */
			rec->seq = r->records[i]->seq;
			rec->sent = sent;
			snprintf(rec->alert_id, sizeof(rec->alert_id), "%s", r->records[i]->alert_id);
			memcpy(rec->envelope_sha256, r->records[i]->envelope_sha256.data, CHAIN_HASH_LEN);
			a->n_records++;
		}
		req.after_id = r->last_id;
		end = r->end || r->n_records == 0;
		local_frame_free(reply);
	}
	return 0;
}

static int
load_records(struct audit *a, const struct local_target *target)
{
	struct xba_error err = { 0 };
	struct local_client *c = local_client_new(target, &err);
	int rc;

	if (c == NULL)
		return cli_usage_error("audit verify: --agent-records: %s", err.msg);
	if ((rc = fetch_records(a, c, false)) == 0)
		rc = fetch_records(a, c, true);
	local_client_free(c);
	if (rc == 0 && a->n_records > 0)
		qsort(a->records, a->n_records, sizeof(*a->records), by_seq);
	return rc;
}

/* Records of seqs below the entry the walk is at, which the journal does not have: pruned, or deleted. */
static void
records_missing_before(struct audit *a, uint64_t seq, uint64_t base_seq)
{
	while (a->next_record < a->n_records && a->records[a->next_record].seq < seq) {
		const struct agent_record *r = &a->records[a->next_record++];

		if (r->seq <= base_seq)
			a->records_pruned++;
		else
			note_record_failure(a, r, "", "NOT IN THE JOURNAL", "%s %s it under seq %" PRIu64
			    ", and the journal has no entry seq %" PRIu64, a->agent_node,
			    r->sent ? "sent it and the broker accepted" : "received", r->seq, r->seq);
	}
}

/* The agent's records of entry e's seq against the entry. */
static void
check_records(struct audit *a, const struct chain_entry *e, uint64_t base_seq)
{
	records_missing_before(a, e->seq, base_seq);
	while (a->next_record < a->n_records && a->records[a->next_record].seq == e->seq) {
		const struct agent_record *r = &a->records[a->next_record++];
		char origin[XBA_NODE_ID_MAX + 1];
		bool routed = false;

		snprintf(origin, sizeof(origin), "%.*s", (int)e->origin_len, e->origin);
		if (!column_is(e->alert_id, e->alert_id_len, r->alert_id)) {
			note_record_failure(a, r, origin, "DIFFERS FROM THE AGENT'S", "the journal has alert %.*s at seq %"
			    PRIu64, (int)e->alert_id_len, e->alert_id, e->seq);
			continue;
		}
		if (memcmp(e->envelope_sha256, r->envelope_sha256, CHAIN_HASH_LEN) != 0) {
			note_record_failure(a, r, origin, "DIFFERS FROM THE AGENT'S", "the journal's signed alert is not the "
			    "bytes %s %s", a->agent_node, r->sent ? "sent" : "received");
			continue;
		}
		if (r->sent) {
			if (strcmp(origin, a->agent_node) != 0) {
				note_record_failure(a, r, origin, "DIFFERS FROM THE AGENT'S", "%s sent it, the journal says "
				    "its origin is %s", a->agent_node, origin);
				continue;
			}
		} else {
			sqlite3_bind_int64(a->routed_to, 1, (sqlite3_int64)e->seq);
			sqlite3_bind_text(a->routed_to, 2, a->agent_node, -1, SQLITE_STATIC);
			routed = sqlite3_step(a->routed_to) == SQLITE_ROW;
			sqlite3_reset(a->routed_to);
			if (!routed) {
				note_record_failure(a, r, origin, "DIFFERS FROM THE AGENT'S", "%s received it, the journal "
				    "does not route it to %s", a->agent_node, a->agent_node);
				continue;
			}
		}
		a->records_ok++;
	}
}

/* ---- acknowledgements (--region) ---- */

static int
ack_cmp(const void *x, const void *y)
{
	const struct ack_seen *p = x, *q = y;
	int c = strcmp(p->alert_id, q->alert_id);

	return c != 0 ? c : strcmp(p->node, q->node);
}

/* A validly signed ACK entry: the alerts it acknowledges, for its origin. */
static int
note_acks(struct audit *a, const Xba__V1__Alert *ack)
{
	for (size_t i = 0; i < ack->n_references; i++) {
		if (a->n_acks == a->cap_acks) {
			size_t cap = a->cap_acks ? 2 * a->cap_acks : 256;
			struct ack_seen *grown = realloc(a->acks, cap * sizeof(*grown));

			if (grown == NULL)
				return XBA_ENOMEM;
			a->acks = grown;
			a->cap_acks = cap;
		}
		snprintf(a->acks[a->n_acks].alert_id, sizeof(a->acks[0].alert_id), "%s", ack->references[i]);
		snprintf(a->acks[a->n_acks].node, sizeof(a->acks[0].node), "%s", ack->origin);
		a->n_acks++;
	}
	return 0;
}

static void
note_failure_at(struct audit *a, uint64_t seq, const char *alert_id, const char *origin, const char *verdict,
    const char *fmt, ...) XBA_PRINTF(6, 7);

static void
note_failure_at(struct audit *a, uint64_t seq, const char *alert_id, const char *origin, const char *verdict,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	note_failure_v(a, seq, alert_id, (int)strlen(alert_id), origin, (int)strlen(origin), verdict, 0, fmt, ap);
	va_end(ap);
}

/*
 * The journal's acknowledged states against its signed ACK entries.  The states live beside the chain, not in it
 * (they change after an entry is written), so an insider could mark an alert acknowledged by a made-up officer, or
 * erase a real acknowledgement, and the chain would not show it.  The broker marks a delivery acknowledged exactly
 * when it journals an ACK of that alert from that node, so: every ACKNOWLEDGED delivery needs such an ACK entry,
 * and every such ACK entry leaves its delivery (when the node had one to acknowledge) ACKNOWLEDGED.
 */
static int
check_acknowledgements(struct audit *a, sqlite3 *db, struct xba_error *err)
{
	sqlite3_stmt *st = NULL;
	struct ack_seen key;
	int rc = 0;

	if (a->n_acks > 1) /* qsort's array may not be NULL, even empty */
		qsort(a->acks, a->n_acks, sizeof(*a->acks), ack_cmp);
	if (sqlite3_prepare_v2(db, "SELECT d.seq, d.node, coalesce(d.officer, ''), al.alert_id, al.origin FROM deliveries "
	    "AS d JOIN alerts AS al ON al.seq = d.seq WHERE d.state = 3 ORDER BY d.seq, d.node", -1, &st, NULL)
	    != SQLITE_OK)
		return xba_error_set(err, XBA_EIO, "read acknowledged deliveries: %s", sqlite3_errmsg(db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *node = (const char *)sqlite3_column_text(st, 1);
		const char *officer = (const char *)sqlite3_column_text(st, 2);
		const char *alert_id = (const char *)sqlite3_column_text(st, 3);
		const char *origin = (const char *)sqlite3_column_text(st, 4);
		char quoted[120];

		a->acks_checked++;
		snprintf(key.alert_id, sizeof(key.alert_id), "%s", alert_id != NULL ? alert_id : "");
		snprintf(key.node, sizeof(key.node), "%s", node != NULL ? node : "");
		if (a->n_acks > 0 && bsearch(&key, a->acks, a->n_acks, sizeof(*a->acks), ack_cmp) != NULL)
			continue;
		display_clean(officer != NULL ? officer : "", quoted, sizeof(quoted));
		note_failure_at(a, (uint64_t)sqlite3_column_int64(st, 0), key.alert_id, origin != NULL ? origin : "",
		    "ACKNOWLEDGED WITHOUT AN ACKNOWLEDGEMENT", "the journal says %s acknowledged it (officer \"%s\"), "
		    "and holds no signed acknowledgement of it from %s", key.node, quoted, key.node);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return xba_error_set(err, XBA_EIO, "read acknowledged deliveries: %s", sqlite3_errmsg(db));
	/* A row the ACK should have marked (queued, delivered or refused: a withheld node had nothing to acknowledge) */
	if (sqlite3_prepare_v2(db, "SELECT al.seq, al.origin, d.state FROM alerts AS al JOIN deliveries AS d ON d.seq = "
	    "al.seq AND d.node = ?2 WHERE al.alert_id = ?1", -1, &st, NULL) != SQLITE_OK)
		return xba_error_set(err, XBA_EIO, "read deliveries: %s", sqlite3_errmsg(db));
	for (size_t i = 0; i < a->n_acks; i++) {
		if (i > 0 && ack_cmp(&a->acks[i - 1], &a->acks[i]) == 0)
			continue;
		sqlite3_bind_text(st, 1, a->acks[i].alert_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, a->acks[i].node, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			int state = sqlite3_column_int(st, 2);

			if (state == 1 || state == 2 || state == 5) {
				const char *origin = (const char *)sqlite3_column_text(st, 1);

				note_failure_at(a, (uint64_t)sqlite3_column_int64(st, 0), a->acks[i].alert_id,
				    origin != NULL ? origin : "", "ACKNOWLEDGEMENT NOT RECORDED", "%s's signed "
				    "acknowledgement of it is in the journal, but its delivery to %s says %s", a->acks[i].node,
				    a->acks[i].node, state == 5 ? "refused" : state == 2 ? "delivered" : "queued");
			}
		} else if (rc != SQLITE_DONE) {
			sqlite3_finalize(st);
			return xba_error_set(err, XBA_EIO, "read deliveries: %s", sqlite3_errmsg(db));
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return 0;
}

static int
visit_entry(void *ctx, const struct chain_entry *e, const uint8_t *envelope, size_t envelope_len,
    struct xba_error *err)
{
	struct audit *a = ctx;

	if (a->n_dirs > 0) {
		struct xba_error open_err = { 0 };
		struct envelope_opened opened;
		int rc = -1;

		/* Signed under one of the directories put in force: the broker checked it against the one of its day. */
		for (size_t i = 0; i < a->n_dirs && rc != 0; i++) {
			if (i > 0)
				envelope_opened_clear(&opened);
			rc = envelope_open(a->dirs[i], envelope, envelope_len, e->received_ms, &opened, &open_err);
		}
		if (rc != 0 && a->n_dirs > 1) {
			size_t len = strlen(open_err.msg);

			snprintf(open_err.msg + len, sizeof(open_err.msg) - len, " (under each of the %zu region files; "
			    "this with the last)", a->n_dirs);
		}
		/* A revocation in any of the files stands: an older file, written before the key was stolen, must not
		 * pass what its thief signed. */
		for (size_t i = 0; rc == 0 && i < a->n_dirs; i++) {
			const struct dir_key *k = directory_key(a->dirs[i], opened.key->key_id);

			if (k != NULL && k->revoked_at_ms <= e->received_ms)
				rc = directory_key_usable(a->dirs[i], k, e->sent_ms, e->received_ms, &open_err);
		}
		if (check_signature(a, e, &opened, rc, open_err.msg)) {
			if (a->n_pairs > 0)
				check_routing(a, e, opened.alert);
			if (opened.alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ACK && note_acks(a, opened.alert) != 0)
				return xba_error_set(err, XBA_ENOMEM, "out of memory");
		} else if (a->n_pairs > 0) {
			a->routes_unchecked++; /* what it says cannot be trusted, so neither can a routing of it */
		}
		envelope_opened_clear(&opened);
	}
	if (a->records != NULL)
		check_records(a, e, a->walk->base_seq);
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

/* Where a walk that did not reach the end stopped, for the lines that count what it checked before. */
static const char *
walk_stop(const struct chain_walk_result *r, char *out, size_t size)
{
	if (r->broken_seq != 0)
		snprintf(out, size, "the walk stopped at the break at seq %" PRIu64, r->broken_seq);
	else if (r->checked > 0)
		snprintf(out, size, "the walk stopped where the file is damaged, after seq %" PRIu64, r->last_seq);
	else
		snprintf(out, size, "the walk stopped where the file is damaged, before any entry");
	return out;
}

/* damage: SQLite's integrity_check finding, or NULL. */
static void
print_text(const char *path, const struct audit *a, const struct chain_walk_result *r, int walk_rc,
    const char *walk_msg, const char *damage, const char *tip)
{
	char hex[2 * CHAIN_HASH_LEN + 1], stop[120];

	if (walk_rc == 0 && damage == NULL) {
		if (r->checked == 0)
			printf("journal %s: no entries%s, hash chain intact\n", path, r->base_seq ? " after the prune base" : "");
		else
			printf("journal %s: entries %" PRIu64 "..%" PRIu64 " (%" PRIu64 "), hash chain intact\n", path,
			    r->first_seq, r->last_seq, r->checked);
	} else if (walk_rc == 0) {
		/* Every entry chains, and the file is still not one a broker can use: name both. */
		printf("journal %s: TAMPERED OR DAMAGED: entries %" PRIu64 "..%" PRIu64 " (%" PRIu64 ") chain intact, but "
		    "%s\n", path, r->first_seq, r->last_seq, r->checked, chain_reason(path, damage));
	} else {
		printf("journal %s: TAMPERED OR DAMAGED after %" PRIu64 " good entries: %s\n", path, r->checked,
		    chain_reason(path, walk_msg));
		if (damage != NULL)
			printf("damage: %s\n", chain_reason(path, damage));
	}
	if (r->base_seq != 0)
		printf("pruned: entries up to seq %" PRIu64 " (retention); the first kept entry chains from their hash\n",
		    r->base_seq);
	for (uint64_t i = 0; i < a->n_failures && i < FAILURES_LISTED; i++) {
		const struct failure *f = &a->failures[i];

		printf("seq %" PRIu64 " alert %s from %s: %s: %s", f->seq, f->alert_id, f->origin, f->verdict, f->message);
		printf(f->code != 0 ? " (%s)\n" : "\n", xba_strerror(f->code));
	}
	if (a->n_failures > FAILURES_LISTED)
		printf("... and %" PRIu64 " more\n", a->n_failures - FAILURES_LISTED);
	if (a->n_dirs > 0)
		printf("signatures: %" PRIu64 " of %" PRIu64 " verified against the region director%s%s%s%s\n",
		    a->signatures_ok, a->signatures_ok + a->signatures_failed, a->n_dirs > 1 ? "ies given" : "y",
		    a->signatures_failed ? "; the others are NOT VALID" : "", walk_rc != 0 ? "; " : "",
		    walk_rc != 0 ? walk_stop(r, stop, sizeof(stop)) : "");
	if (a->n_dirs > 0 && walk_rc == 0)
		printf("acknowledgements: %" PRIu64 " acknowledged deliveries and %zu signed acknowledgements compared\n",
		    a->acks_checked, a->n_acks);
	if (a->n_pairs > 0) {
		printf("routing: %" PRIu64 " of %" PRIu64 " entries routed by rules version", a->routes_ok + a->routes_failed,
		    a->routes_ok + a->routes_failed + a->routes_unchecked);
		for (size_t i = 0; i < a->n_rules_files; i++)
			printf("%s %.12s…", i == 0 ? (a->n_rules_files > 1 ? "s" : "") : ",", rules_version(a->rules_files[i]));
		printf(" checked: %" PRIu64 " as the rules say, %" PRIu64 " ROUTED OTHERWISE", a->routes_ok,
		    a->routes_failed);
		if (a->routes_unchecked > 0)
			printf(", %" PRIu64 " not checkable (signature not valid, or the alert an ACK acknowledges or "
			    "an update or cancel supersedes was pruned)", a->routes_unchecked);
		printf("\n");
		/* After a break, what was not routed is what the walk never reached, not what these rules never
		 * routed. */
		if (walk_rc != 0)
			printf("routing: %s: the entries from there on are NOT CHECKED\n", walk_stop(r, stop, sizeof(stop)));
		else if (a->routes_ok + a->routes_failed == 0)
			printf("routing: NOTHING CHECKED: %s\n", a->routes_unchecked > 0 ? "no entry routed by this rules file "
			    "could be checked" : "no entry was routed by this rules file");
		for (size_t i = 0; i < a->n_versions; i++)
			printf("routing: %" PRIu64 " entries (seq %" PRIu64 "..%" PRIu64 ") routed by rules version %.12s…, "
			    "%s\n", a->versions[i].entries, a->versions[i].first_seq, a->versions[i].last_seq,
			    a->versions[i].version, a->all_rules
				? "NO RULES FILE GIVEN FOR IT (--all-rules: a version nobody can show a file for is a forgery "
				  "or a file lost)"
				: "NOT CHECKED: no rules file given has that version; ask the secretariat for it (the broker "
				  "logs each version it loads: event=rules.reloaded), or give --all-rules if you have them all");
		if (a->routes_other > 0 && a->n_versions == VERSIONS_LISTED)
			printf("routing: %" PRIu64 " entries in all routed by other rules versions\n", a->routes_other);
		if (a->routes_earlier > 0)
			printf("routing: %" PRIu64 " of them (seq %" PRIu64 "..%" PRIu64 ") cancels routed as brokers before "
			    "2026-11-26 did, a deny rule keeping them from nodes that had the alert: expected only of "
			    "entries journaled before the broker was upgraded (docs/rules.md §2 step 6)\n", a->routes_earlier,
			    a->earlier_first_seq, a->earlier_last_seq);
	}
	if (a->agent_node[0] != '\0' || a->n_records > 0) {
		printf("agent %s: %zu records (alerts it received or sent, under their journal seq): %" PRIu64 " in the "
		    "journal as the agent holds them, %" PRIu64 " NOT", a->agent_node, a->n_records, a->records_ok,
		    a->records_failed);
		if (a->records_pruned > 0)
			printf(", %" PRIu64 " pruned from the journal (not checkable)", a->records_pruned);
		printf("\n");
		if (a->records_after > 0)
			printf("agent %s: %" PRIu64 " records after seq %" PRIu64 ", the journal's last entry, NOT CHECKED: a "
			    "copy older than the agent's records, or entries cut from the journal's end (--tip tells)\n",
			    a->agent_node, a->records_after, r->checked ? r->last_seq : r->base_seq);
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
    const char *walk_msg, const char *damage, const char *tip, bool ok)
{
	struct jsonw w;
	char hex[2 * CHAIN_HASH_LEN + 1];

	jsonw_begin(&w, stdout);
	jsonw_string(&w, "journal", path);
	jsonw_bool(&w, "ok", ok);
	jsonw_bool(&w, "chain_intact", walk_rc == 0);
	jsonw_bool(&w, "damaged", walk_rc == XBA_EDAMAGED || damage != NULL);
	if (damage != NULL)
		jsonw_string(&w, "damage", chain_reason(path, damage));
	jsonw_int(&w, "entries", (int64_t)r->checked);
	jsonw_int(&w, "first_seq", (int64_t)r->first_seq);
	jsonw_int(&w, "last_seq", (int64_t)r->last_seq);
	jsonw_int(&w, "base_seq", (int64_t)r->base_seq);
	if (walk_rc != 0) {
		jsonw_int(&w, "broken_seq", (int64_t)r->broken_seq);
		jsonw_string(&w, "error", xba_strerror(walk_rc));
		jsonw_string(&w, "message", chain_reason(path, walk_msg));
	} else {
		jsonw_int(&w, "tip_seq", (int64_t)(r->checked ? r->last_seq : r->base_seq));
		jsonw_string(&w, "tip_hash", encoding_hex(r->tip, CHAIN_HASH_LEN, hex));
	}
	if (a->n_dirs > 0) {
		jsonw_int(&w, "signatures_verified", (int64_t)a->signatures_ok);
		jsonw_int(&w, "signatures_not_valid", (int64_t)a->signatures_failed);
	}
	if (a->n_pairs > 0) {
		jsonw_string(&w, "rules_version", rules_version(a->rules_files[0]));
		jsonw_array_begin(&w, "rules_versions");
		for (size_t i = 0; i < a->n_rules_files; i++)
			jsonw_string(&w, NULL, rules_version(a->rules_files[i]));
		jsonw_array_end(&w);
		jsonw_int(&w, "routes_as_rules_say", (int64_t)a->routes_ok);
		jsonw_int(&w, "routes_otherwise", (int64_t)a->routes_failed);
		jsonw_int(&w, "routes_not_checkable", (int64_t)a->routes_unchecked);
		jsonw_int(&w, "routes_other_rules_versions", (int64_t)a->routes_other);
		jsonw_int(&w, "routes_cancels_as_before_2026_11_26", (int64_t)a->routes_earlier);
	}
	if (a->agent_node[0] != '\0' || a->n_records > 0) {
		jsonw_string(&w, "agent_node", a->agent_node);
		jsonw_int(&w, "agent_records", (int64_t)a->n_records);
		jsonw_int(&w, "agent_records_in_journal", (int64_t)a->records_ok);
		jsonw_int(&w, "agent_records_not", (int64_t)a->records_failed);
		jsonw_int(&w, "agent_records_pruned", (int64_t)a->records_pruned);
		jsonw_int(&w, "agent_records_after_journal", (int64_t)a->records_after);
	}
	if (a->n_dirs > 0 || a->n_records > 0) {
		jsonw_array_begin(&w, "failures");
		for (uint64_t i = 0; i < a->n_failures && i < FAILURES_LISTED; i++) {
			const struct failure *f = &a->failures[i];

			jsonw_object_begin(&w, NULL);
			jsonw_int(&w, "seq", (int64_t)f->seq);
			jsonw_string(&w, "alert_id", f->alert_id);
			jsonw_string(&w, "origin", f->origin);
			jsonw_string(&w, "verdict", f->verdict);
			if (f->code != 0)
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

/* --rules: what the routing check needs beside the rules themselves.  0, or a message in err. */
static int
routing_check_open(struct audit *a, sqlite3 *db, const char *path, struct xba_error *err)
{
	if ((a->expect = chain_new(path, err)) == NULL)
		return -1;
	if (sqlite3_prepare_v2(db, "SELECT origin FROM alerts WHERE alert_id = ?1", -1, &a->find_origin, NULL) !=
	    SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT node, rule, state FROM deliveries WHERE seq = ?1 ORDER BY state = 4, node",
	    -1, &a->routing_rows, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT DISTINCT d.node FROM alerts a JOIN deliveries d ON d.seq = a.seq"
	    " WHERE a.alert_id = ?1 AND a.origin = ?2 AND a.seq < ?3 AND d.state != 4", -1, &a->had_alert, NULL) !=
	    SQLITE_OK)
		return xba_error_set(err, XBA_EIO, "journal %s: cannot read: %s", path, sqlite3_errmsg(db));
	return 0;
}

static void
audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	sqlite3_finalize(a->find_origin);
	sqlite3_finalize(a->routing_rows);
	sqlite3_finalize(a->had_alert);
	sqlite3_finalize(a->routed_to);
	free(a->records);
	free(a->acks);
	chain_free(a->expect);
	for (size_t i = 0; i < a->n_pairs; i++)
		rules_free((struct rules *)a->pairs[i].rules);
	for (size_t i = 0; i < a->n_dirs; i++)
		directory_free((struct directory *)a->dirs[i]);
	free(a);
}

static int
audit_verify(int argc, char **argv)
{
	static const struct option options[] = {
		{ "region", required_argument, NULL, 'r' },
		{ "rules", required_argument, NULL, 'R' },
		{ "tip", required_argument, NULL, 't' },
		{ "agent-records", no_argument, NULL, 'A' },
		{ "all-rules", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		LOCAL_TARGET_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct local_target target;
	const char *regions[AUDIT_FILES_MAX], *rules_paths[AUDIT_FILES_MAX], *path, *tip = NULL;
	size_t n_regions = 0, n_rules_paths = 0;
	struct xba_error err = { 0 }, walk_err = { 0 }, check_err = { 0 };
	struct chain_walk_result result;
	struct audit *a;
	struct chain *chain = NULL;
	sqlite3 *db = NULL;
	bool json = false, agent_records = false, immutable = false, ok;
	int opt, rc, check_rc = 0;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return cli_usage_error("audit: out of memory");
	local_target_defaults(&target);
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (local_target_option(&target, opt, optarg))
			continue;
		switch (opt) {
		case 'A': agent_records = true; break;
		case 'a': a->all_rules = true; break;
		case 'r':
		case 'R':
			if ((opt == 'r' ? n_regions : n_rules_paths) == AUDIT_FILES_MAX) {
				audit_free(a);
				return cli_usage_error("audit verify: at most %d --%s files", AUDIT_FILES_MAX,
				    opt == 'r' ? "region" : "rules");
			}
			if (opt == 'r')
				regions[n_regions++] = optarg;
			else
				rules_paths[n_rules_paths++] = optarg;
			break;
		case 't':
			if (parse_tip(optarg, a) != 0) {
				audit_free(a);
				return cli_usage_error("audit verify: --tip '%s' is not SEQ:HASH (a seq from 1 and 64 hex "
				    "digits, as an earlier audit printed them)", optarg);
			}
			break;
		case 'j': json = true; break;
		case 'h': audit_usage(stdout); audit_free(a); return CLI_EXIT_OK;
		default:
			audit_free(a);
			return cli_usage_error("audit verify: unknown or incomplete option '%s' (xba audit --help)",
			    argv[optind - 1]);
		}
	}
	rc = CLI_EXIT_USAGE;
	if (optind + 1 != argc) {
		cli_usage_error("audit verify: expected exactly one JOURNAL file (xba audit --help)");
		goto out;
	}
	path = argv[optind];
	if (n_rules_paths > 0 && n_regions == 0) {
		cli_usage_error("audit verify: --rules needs --region (the rules name the region's nodes and groups)");
		goto out;
	}
	for (size_t i = 0; i < n_regions; i++) {
		struct directory *d = directory_load(regions[i], &err);

		if (d == NULL) {
			cli_usage_error("audit verify: %s", err.msg);
			goto out;
		}
		a->dirs[a->n_dirs++] = d;
	}
	/* Each rules file against each region file it fits: one of them was the pair in force for an entry. */
	for (size_t k = 0; k < n_rules_paths; k++) {
		size_t before = a->n_pairs;

		for (size_t i = 0; i < a->n_dirs; i++) {
			struct rules *r = rules_load(rules_paths[k], a->dirs[i], &err);

			if (r == NULL)
				continue;
			a->pairs[a->n_pairs++] = (struct routing_pair){ a->dirs[i], r };
			if (a->n_pairs == before + 1)
				a->rules_files[a->n_rules_files++] = r;
		}
		if (a->n_pairs == before) {
			cli_usage_error("audit verify: %s%s", err.msg, a->n_dirs > 1 ? " (with every --region file)" : "");
			goto out;
		}
	}
	memset(&result, 0, sizeof(result));
	a->walk = &result;
	rc = chain_open_readonly(path, &db, &immutable, &err);
	if (rc == XBA_EDAMAGED) {
		/* SQLite's header on a body that does not parse: a verdict on the file, not the wrong file given. */
		walk_err = err;
		goto verdict;
	}
	rc = CLI_EXIT_USAGE;
	if (db == NULL || (chain = chain_new(path, &err)) == NULL ||
	    (a->n_pairs > 0 && routing_check_open(a, db, path, &err) != 0)) {
		cli_usage_error("audit verify: %s", err.msg);
		goto out;
	}
	if (immutable)
		fprintf(stderr, "xba: audit verify: note: journal %s: read as immutable, without locks, because SQLite "
		    "cannot create %s-shm beside it (a directory this account may not write): right for a copy, which "
		    "nothing writes; audit a journal a broker is writing as an account that may write its directory\n",
		    path, path);
	if (agent_records) {
		if ((rc = load_records(a, &target)) != 0)
			goto out;
		rc = CLI_EXIT_USAGE;
		if (sqlite3_prepare_v2(db, "SELECT 1 FROM deliveries WHERE seq = ?1 AND node = ?2 AND state != 4", -1,
		    &a->routed_to, NULL) != SQLITE_OK) {
			cli_usage_error("audit verify: journal %s: cannot read: %s", path, sqlite3_errmsg(db));
			goto out;
		}
	}
	/* One read transaction: both tables from one snapshot while the broker may be writing the live file. */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		cli_usage_error("audit verify: journal %s: cannot read: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	rc = chain_walk(chain, db, visit_entry, a, &result, &walk_err);
	/* In the same snapshot: also after a break, where damage is what may have broken the chain. */
	if (rc == 0 || rc == XBA_EDECODE || rc == XBA_EDAMAGED)
		check_rc = chain_check_file(chain, db, &check_err);
	if (rc == 0 && check_rc == 0 && a->n_dirs > 0 && check_acknowledgements(a, db, &walk_err) != 0) {
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		cli_usage_error("audit verify: journal %s: %s", path, walk_err.msg);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (check_rc != 0 && check_rc != XBA_EDAMAGED && rc == 0) {
		cli_usage_error("audit verify: %s", check_err.msg);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (rc != 0 && rc != XBA_EDECODE && rc != XBA_EDAMAGED) {
		/* Not a verdict on the journal: the file could not be read to the end. */
		cli_usage_error("audit verify: %s", walk_err.msg);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (rc == 0 && a->next_record < a->n_records) {
		/* Past the last entry: pruned if nothing is left after the base, else not checkable (see the output). */
		uint64_t last = result.checked ? result.last_seq : result.base_seq;

		records_missing_before(a, last + 1, result.base_seq);
		a->records_after = a->n_records - a->next_record;
	}
verdict:
	if (a->tip_seq != 0)
		tip = tip_verdict(a, &result);
	ok = rc == 0 && check_rc == 0 && a->n_failures == 0 && (tip == NULL || strcmp(tip, "match") == 0) &&
	    (a->n_pairs == 0 || a->routes_ok > 0 || result.checked == 0) && !(a->all_rules && a->routes_other > 0);
	if (json)
		print_json(path, a, &result, rc, walk_err.msg, check_rc == XBA_EDAMAGED ? check_err.msg : NULL, tip, ok);
	else
		print_text(path, a, &result, rc, walk_err.msg, check_rc == XBA_EDAMAGED ? check_err.msg : NULL, tip);
	rc = ok ? CLI_EXIT_OK : CLI_EXIT_FAILED;
out:
	audit_free(a);
	chain_free(chain);
	sqlite3_close(db);
	return rc;
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
