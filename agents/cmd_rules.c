/*
 * cmd_rules.c — `xba rules check` and `xba rules explain`: the secretariat's and the officers' offline view of the
 * routing rules (docs/rules.md), with no agent and no broker.
 *
 * In the flow of an alert this stands beside the broker's routing step and runs the very same code: `check` is
 * rules_load() against region.yaml, as the broker does at start-up and on SIGHUP; `explain` loads an officer's
 * alert file (lib/alertyaml.c, as `xba send` does), fills what the agent would fill, validates it as the broker
 * would, and prints rules_route()'s decision for every node of the region: recipient and by which rule, withheld
 * and by which rule or reason, or not routed.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "alertyaml.h"
#include "cli.h"
#include "clock.h"
#include "directory.h"
#include "jsonw.h"
#include "rules.h"
#include "syntax.h"

/* What `explain` fills in an alert file that leaves it out (the agent fills the real values when sending). */
#define EXPLAIN_ID "00000000-0000-4000-8000-000000000000"
#define EXPLAIN_AUTHOR "(xba rules explain)"

static void
rules_usage(FILE *out)
{
	fprintf(out,
	    "usage: xba rules check RULES.yaml --region REGION.yaml [--json]\n"
	    "       xba rules explain ALERT.yaml --region REGION.yaml --rules RULES.yaml\n"
	    "                         [--acked-origin NODE] [--json]\n"
	    "\n"
	    "Work offline with the working group's routing rules (docs/rules.md); no agent or broker is needed.\n"
	    "\n"
	    "  check    load RULES.yaml against REGION.yaml exactly as the broker does, and print its version\n"
	    "  explain  show who would receive the alert in ALERT.yaml (docs/alert-yaml.md), and by which rule\n"
	    "\n"
	    "xba rules COMMAND --help for each.\n");
}

static void
check_usage(FILE *out)
{
	fprintf(out,
	    "usage: xba rules check RULES.yaml --region REGION.yaml [--json]\n"
	    "\n"
	    "Load RULES.yaml against the region directory exactly as xba-broker does at start-up and on SIGHUP.\n"
	    "Prints \"RULES.yaml: OK (N rules, version HEX)\", or the first error as\n"
	    "\"RULES.yaml:LINE:COLUMN: key.path: message\".  A valid file may still get warnings on stderr\n"
	    "(\"RULES.yaml: warning: rule 'NAME': ...\"): a rule that can never send anything.  They do not\n"
	    "change the exit status: the broker loads the file all the same.\n"
	    "\n"
	    "  --region FILE  the region directory (region.yaml) the rules name nodes and groups of\n"
	    "  --json         print one JSON object instead of text\n"
	    "\n"
	    "exit status: 0 valid, 1 not valid, 2 wrong arguments or unreadable files\n");
}

static void
explain_usage(FILE *out)
{
	fprintf(out,
	    "usage: xba rules explain ALERT.yaml --region REGION.yaml --rules RULES.yaml\n"
	    "                         [--acked-origin NODE] [--json]\n"
	    "\n"
	    "Show who would receive the alert written in ALERT.yaml (the format of `xba send`, docs/alert-yaml.md)\n"
	    "under RULES.yaml, by which rule, and who would be withheld and why: one line per node of the region.\n"
	    "ALERT.yaml must name its `origin`; a missing id, sent time or author is filled with a placeholder.\n"
	    "\n"
	    "  --region FILE        the region directory (region.yaml)\n"
	    "  --rules FILE         the routing rules (rules.yaml)\n"
	    "  --acked-origin NODE  for an ack: the origin of the alert it acknowledges (the broker takes it from\n"
	    "                       its journal); without it an ack reaches nobody\n"
	    "  --json               one JSON object per node instead of text\n"
	    "\n"
	    "exit status: 0 explained, 1 the broker would refuse the alert, 2 wrong arguments or unreadable files\n");
}

/* ---- check ---- */

/* Lint warnings, held for the JSON array or printed as they come. */
struct lint_out {
	const char *file;
	bool json;
	char (*held)[400];
	size_t n, cap;
};

static void
lint_warning(void *ctx, const char *rule, const char *message)
{
	struct lint_out *o = ctx;

	if (!o->json) {
		fprintf(stderr, "%s: warning: rule '%s': %s\n", o->file, rule, message);
		return;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 8;
		char (*grown)[400] = realloc(o->held, cap * sizeof(*grown));

		if (grown == NULL)
			return; /* a warning lost to memory; the file is valid either way */
		o->held = grown;
		o->cap = cap;
	}
	snprintf(o->held[o->n++], sizeof(o->held[0]), "rule '%s': %s", rule, message);
}

static int
rules_check(int argc, char **argv)
{
	static const struct option options[] = {
		{ "region", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *region = NULL, *file;
	struct xba_error err = { 0 };
	struct directory *dir;
	struct rules *rules;
	bool json = false;
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'r': region = optarg; break;
		case 'j': json = true; break;
		case 'h': check_usage(stdout); return CLI_EXIT_OK;
		default:
			return cli_usage_error(
			    "rules check: unknown or incomplete option '%s' (xba rules check --help)", argv[optind - 1]);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("rules check: expected exactly one RULES.yaml (xba rules check --help)");
	file = argv[optind];
	if (region == NULL)
		return cli_usage_error("rules check: --region REGION.yaml is required (xba rules check --help)");
	if ((dir = directory_load(region, &err)) == NULL)
		return cli_usage_error("rules check: region directory: %s", err.msg);

	rules = rules_load(file, dir, &err);
	if (rules == NULL && err.code == XBA_EIO) {
		directory_free(dir);
		return cli_usage_error("rules check: %s", err.msg);
	}
	if (json) {
		struct jsonw w;
		struct lint_out lint = { .file = file, .json = true };

		jsonw_begin(&w, stdout);
		jsonw_string(&w, "file", file);
		jsonw_bool(&w, "valid", rules != NULL);
		if (rules != NULL) {
			jsonw_int(&w, "rules", (int64_t)rules_count(rules));
			jsonw_string(&w, "version", rules_version(rules));
			rules_lint(rules, dir, lint_warning, &lint);
			jsonw_array_begin(&w, "warnings");
			for (size_t i = 0; i < lint.n; i++)
				jsonw_string(&w, NULL, lint.held[i]);
			jsonw_array_end(&w);
			free(lint.held);
		} else {
			jsonw_string(&w, "error", xba_strerror(err.code));
			jsonw_string(&w, "message", err.msg);
		}
		jsonw_end(&w);
	} else if (rules != NULL) {
		size_t n = rules_count(rules);
		struct lint_out lint = { .file = file, .json = false };

		printf("%s: OK (%zu rule%s, version %s)\n", file, n, n == 1 ? "" : "s", rules_version(rules));
		rules_lint(rules, dir, lint_warning, &lint);
	} else {
		/* The loader's message already reads "file:line:col: path: ...", the form editors jump to. */
		fprintf(stderr, "%s\n", err.msg);
	}
	if (rules == NULL) {
		directory_free(dir);
		return CLI_EXIT_FAILED;
	}
	rules_free(rules);
	directory_free(dir);
	return CLI_EXIT_OK;
}

/* ---- explain ---- */

/* What a built-in credit or reason means, for the text output; NULL for a rule of the file. */
static const char *
engine_meaning(const char *name)
{
	static const struct {
		const char *name, *meaning;
	} meanings[] = {
		{ RULES_BY_EMERGENCY, "emergency broadcast: every member and observer" },
		{ RULES_BY_ACK, "an acknowledgement goes back to the origin of the alert it acknowledges" },
		{ RULES_BY_RED_ADDRESSEE, "TLP:RED addressee that no rule names" },
		{ RULES_WITHHELD_ADMIN, "admin nodes never receive alerts" },
		{ RULES_WITHHELD_NOT_ADDRESSED, "a rule names it, but the alert has addressees and it is not one" },
		{ RULES_WITHHELD_NO_RULE, "addressed, but no matching rule sends this alert to it" },
		{ RULES_WITHHELD_TLP_RED, "TLP:RED goes only to the addressees" },
		{ RULES_WITHHELD_TLP_AMBER_STRICT, "TLP:AMBER+STRICT goes only to members" },
		{ RULES_WITHHELD_TLP_GREEN, "TLP:GREEN stays within members and observers" },
	};

	for (size_t i = 0; i < sizeof(meanings) / sizeof(meanings[0]); i++)
		if (strcmp(name, meanings[i].name) == 0)
			return meanings[i].meaning;
	return NULL;
}

/* "alert smuggling from NER, severity severe, TLP:AMBER, status actual": the alert in one line, for the header.
 * Fields the alert leaves unspecified (a cancel's or an ack's category) are left out. */
static void
print_header(const char *file, const Xba__V1__Alert *a, const struct rules *rules)
{
	const char *category = alert_enum_name(ALERT_ENUM_CATEGORY, (int)a->category);
	const char *severity = alert_enum_name(ALERT_ENUM_SEVERITY, (int)a->severity);
	const char *tlp = alert_enum_name(ALERT_ENUM_TLP, (int)a->tlp);
	char tlp_upper[32];
	size_t i;

	for (i = 0; tlp[i] != '\0' && i < sizeof(tlp_upper) - 1; i++)
		tlp_upper[i] = tlp[i] >= 'a' && tlp[i] <= 'z' ? (char)(tlp[i] - 'a' + 'A') : tlp[i];
	tlp_upper[i] = '\0';
	printf("%s: %s%s%s from %s", file, alert_enum_name(ALERT_ENUM_MSG_TYPE, (int)a->msg_type),
	    category != NULL ? " " : "", category != NULL ? category : "", a->origin);
	if (severity != NULL)
		printf(", severity %s", severity);
	printf(", TLP:%s, status %s%s\n", tlp_upper, alert_enum_name(ALERT_ENUM_STATUS, (int)a->status),
	    a->emergency ? ", EMERGENCY" : "");
	if (a->n_references > 0 && a->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_ALERT)
		printf("  refers to %s%s\n", a->references[0], a->n_references > 1 ? " and others" : "");
	if (a->n_addressees > 0) {
		printf("  addressees:");
		for (size_t k = 0; k < a->n_addressees; k++)
			printf(" %s", a->addressees[k]);
		printf("\n");
	}
	printf("  rules version %s\n", rules_version(rules));
}

/* One node's line (text) or object (JSON). */
static void
print_node(bool json, int id_width, const struct dir_node *node, const char *outcome, const char *rule)
{
	if (json) {
		struct jsonw w;

		jsonw_begin(&w, stdout);
		jsonw_string(&w, "node", node->id);
		jsonw_string(&w, "name", node->name);
		jsonw_string(&w, "role", directory_role_name(node->role));
		jsonw_string(&w, "outcome", outcome);
		jsonw_string(&w, "rule", rule != NULL ? rule : "");
		jsonw_end(&w);
		return;
	}
	if (rule == NULL) {
		printf("  %-*s %s\n", id_width, node->id, outcome);
	} else {
		const char *meaning = engine_meaning(rule);

		if (meaning != NULL)
			printf("  %-*s %-11s %s (%s)\n", id_width, node->id, outcome, rule, meaning);
		else
			printf("  %-*s %-11s %s\n", id_width, node->id, outcome, rule);
	}
}

/* Fill what the agent would fill, so that alert_validate() judges what the officer wrote.  0 or XBA_ENOMEM. */
static int
fill_placeholders(Xba__V1__Alert *a, struct xba_error *err)
{
	int rc;

	if (a->id[0] == '\0' && (rc = alertyaml_set_text(&a->id, EXPLAIN_ID, err)) != 0)
		return rc;
	if (a->author[0] == '\0' && (rc = alertyaml_set_text(&a->author, EXPLAIN_AUTHOR, err)) != 0)
		return rc;
	if (a->sent_ms == 0)
		a->sent_ms = clock_now_ms();
	return 0;
}

static int
rules_explain(int argc, char **argv)
{
	static const struct option options[] = {
		{ "region", required_argument, NULL, 'r' },
		{ "rules", required_argument, NULL, 'R' },
		{ "acked-origin", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *region = NULL, *rules_file = NULL, *acked_origin = NULL, *file;
	struct xba_error err = { 0 };
	struct directory *dir = NULL;
	struct rules *rules = NULL;
	Xba__V1__Alert *a = NULL;
	struct route route = { 0 };
	uint8_t *encoded = NULL;
	size_t encoded_len = 0;
	const struct dir_node *origin;
	char why[XBA_ERROR_MSG_MAX];
	const char *refused_field = NULL;
	bool json = false;
	int opt, rc = CLI_EXIT_USAGE;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'r': region = optarg; break;
		case 'R': rules_file = optarg; break;
		case 'a': acked_origin = optarg; break;
		case 'j': json = true; break;
		case 'h': explain_usage(stdout); return CLI_EXIT_OK;
		default:
			return cli_usage_error(
			    "rules explain: unknown or incomplete option '%s' (xba rules explain --help)", argv[optind - 1]);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("rules explain: expected exactly one ALERT.yaml (xba rules explain --help)");
	file = argv[optind];
	if (region == NULL)
		return cli_usage_error("rules explain: --region REGION.yaml is required (xba rules explain --help)");
	if (rules_file == NULL)
		return cli_usage_error("rules explain: --rules RULES.yaml is required (xba rules explain --help)");
	if (acked_origin != NULL && !syntax_node_id_valid(acked_origin))
		return cli_usage_error("rules explain: --acked-origin '%s' is not a node id (NER, WHO-AFRO)",
		    acked_origin);

	if ((dir = directory_load(region, &err)) == NULL) {
		cli_usage_error("rules explain: region directory: %s", err.msg);
		goto out;
	}
	if ((rules = rules_load(rules_file, dir, &err)) == NULL) {
		cli_usage_error("rules explain: rules: %s", err.msg);
		goto out;
	}
	if ((a = alertyaml_load(file, &err)) == NULL) {
		cli_usage_error("rules explain: %s", err.msg);
		goto out;
	}
	if (a->origin[0] == '\0') {
		cli_usage_error("rules explain: %s: origin: required to explain routing (write the sending node, "
				"e.g. 'origin: NER'; xba send fills it from the agent)", file);
		goto out;
	}
	if ((origin = directory_node(dir, a->origin)) == NULL) {
		cli_usage_error("rules explain: %s: origin: %s is not a node of %s", file, a->origin, region);
		goto out;
	}
	if (a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ACK && acked_origin != NULL &&
	    directory_node(dir, acked_origin) == NULL) {
		cli_usage_error("rules explain: --acked-origin %s is not a node of %s", acked_origin, region);
		goto out;
	}
	if (fill_placeholders(a, &err) != 0) {
		cli_usage_error("rules explain: %s", err.msg);
		goto out;
	}

	/* From here on the files are read; what remains is the answer, and a refusal is "no" (exit 1). */
	rc = CLI_EXIT_FAILED;
	/* The agent's checks at submission too (control characters in text, reserved parameter names, the encoded
	 * size): explain must not call "routed" a file that xba send refuses. */
	if (alert_encode(a, &encoded, &encoded_len, &err) != 0 || alert_check_submission(a, &err) != 0) {
		fprintf(stderr, "xba: rules explain: %s: not a valid alert: %s (%s)\n", file, err.msg,
		    xba_strerror(err.code));
		goto out;
	}
	if (rules_publish_rights(dir, origin, a, &refused_field, why, sizeof(why)) != 0) {
		fprintf(stderr, "xba: rules explain: %s: the broker would refuse this alert: %s\n", file, why);
		goto out;
	}
	if (rules_route(rules, dir, a, acked_origin, &route, &err) != 0) {
		fprintf(stderr, "xba: rules explain: %s: cannot be routed: %s (%s)\n", file, err.msg,
		    xba_strerror(err.code));
		goto out;
	}

	if (!json)
		print_header(file, a, rules);
	/* Both lists are sorted by node index, as the directory's nodes are: one merge pass. */
	/* The node column: 12, or an observer's longer id (up to 32), so that the outcomes stay one column. */
	int id_width = 12;

	for (size_t i = 0; i < dir->n_nodes; i++)
		if ((int)strlen(dir->nodes[i].id) > id_width)
			id_width = (int)strlen(dir->nodes[i].id);
	for (size_t i = 0, r = 0, w = 0; i < dir->n_nodes; i++) {
		const struct dir_node *node = &dir->nodes[i];

		if (r < route.n_recipients && route.recipients[r].node_index == i)
			print_node(json, id_width, node, "recipient", route.recipients[r++].rule);
		else if (w < route.n_withheld && route.withheld[w].node_index == i)
			print_node(json, id_width, node, "withheld", route.withheld[w++].rule);
		else if (node == origin)
			print_node(json, id_width, node, "origin", NULL);
		else
			print_node(json, id_width, node, "not routed", NULL);
	}
	if (!json) {
		printf("%zu recipient%s, %zu withheld, %zu not routed\n", route.n_recipients,
		    route.n_recipients == 1 ? "" : "s", route.n_withheld,
		    dir->n_nodes - route.n_recipients - route.n_withheld - 1);
		if (a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ACK && acked_origin == NULL)
			printf("note: an ack goes only to the origin of the alert it acknowledges; give it with "
			       "--acked-origin NODE\n");
		if (a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE || a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL)
			printf("note: the broker also sends %s to every node that had the alert it names (from its "
			       "journal; not shown here; docs/rules.md section 2, step 5)\n",
			    a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE ? "an update" : "a cancel");
	}
	rc = CLI_EXIT_OK;
out:
	free(encoded);
	route_clear(&route);
	alertyaml_free(a);
	rules_free(rules);
	directory_free(dir);
	return rc;
}

int
cmd_rules(int argc, char **argv)
{
	const char *sub = argc >= 2 ? argv[1] : NULL;

	if (sub == NULL)
		return cli_usage_error("rules: expected a command, check or explain (xba rules --help)");
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
		rules_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(sub, "check") == 0)
		return rules_check(argc - 1, argv + 1);
	if (strcmp(sub, "explain") == 0)
		return rules_explain(argc - 1, argv + 1);
	return cli_usage_error("rules: unknown command '%s' (expected check or explain; xba rules --help)", sub);
}
