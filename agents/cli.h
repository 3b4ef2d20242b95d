/*
 * cli.h — the map of `xba`, the operator's command-line tool.  Each subcommand lives in its own cmd_*.c and
 * exports one entry point; xba.c dispatches to them.  Exit statuses are shared by every subcommand.
 */
#ifndef XBA_CLI_H
#define XBA_CLI_H

#include <stdbool.h>

#include "error.h"

/* Exit statuses (documented in docs/operators.md). */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILED = 1, /* the command ran and the answer is "no": invalid signature, alert refused */
	CLI_EXIT_USAGE = 2,  /* wrong arguments or unreadable input: nothing was done */
};

/* Print "xba: <message>" as one line on stderr; returns CLI_EXIT_USAGE for `return cli_usage_error(...)`. */
int cli_usage_error(const char *fmt, ...) XBA_PRINTF(1, 2);

/* cmd_keygen.c */
int cmd_keygen(int argc, char **argv);

/* cmd_verify.c */
int cmd_verify(int argc, char **argv);

#endif
