/*
 * xba.c — front door of the operator CLI: finds the subcommand and hands it argv.  Subcommands that talk to the
 * national agent (send, watch, ack, broadcast, history, status) arrive with the agent; `rules` with the broker.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "syntax.h"
#include "xba_config.h"

struct subcommand {
	const char *name;                 /* as typed after `xba` */
	int (*run)(int argc, char **argv);
	const char *summary;              /* one line for `xba --help` */
};

static const struct subcommand subcommands[] = {
	{ "send", cmd_send, "sign and send an alert through this country's agent" },
	{ "watch", cmd_watch, "the duty officer's live view of alerts routed to this country" },
	{ "ack", cmd_ack, "acknowledge an alert on behalf of this country" },
	{ "broadcast", cmd_broadcast, "emergency broadcast to every node, with live receipts (--wait)" },
	{ "history", cmd_history, "alerts held by this country's agent" },
	{ "status", cmd_status, "the agent's link, outbox and inbox" },
	{ "track", cmd_track, "who has, acknowledged or was withheld an alert this country sent" },
	{ "quarantine", cmd_quarantine, "deliveries this agent's own verification refused, and why" },
	{ "rules", cmd_rules, "check a rules file, or explain who would receive an alert (offline)" },
	{ "keygen", cmd_keygen, "generate a node's signing and CURVE key pairs" },
	{ "verify", cmd_verify, "check a saved signed alert against a region directory" },
	{ "audit", cmd_audit, "verify the broker's journal: hash chain, signatures, a noted tip (offline)" },
};

static void
usage(FILE *out)
{
	fprintf(out, "usage: xba COMMAND [OPTIONS]   (xba COMMAND --help for each)\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(out, "\nCommands that talk to the agent find it at $XBA_SOCKET (default /run/xba-agent/agent.sock)\n"
		     "or --socket PATH.  docs/operators.md explains each command.\n");
}

bool
cli_alert_id(char *text)
{
	for (char *p = text; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	return syntax_uuid_valid(text);
}

int
cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("xba: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	log_init("xba", LOG_LEVEL_WARN);
	if (argc < 2)
		return usage(stderr), CLI_EXIT_USAGE;
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("xba %s\n", XBA_VERSION);
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].run(argc - 1, argv + 1);
	return cli_usage_error("unknown command '%s' (xba --help lists the commands)", argv[1]);
}
