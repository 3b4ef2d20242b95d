/*
 * cli.h — the map of `xba`, the operator's command-line tool.  Each subcommand lives in its own cmd_*.c and
 * exports one entry point; xba.c dispatches to them.  Exit statuses are shared by every subcommand.
 */
#ifndef XBA_CLI_H
#define XBA_CLI_H

#include <stdbool.h>

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "xba.pb-c.h"

/* Exit statuses (documented in docs/operators.md). */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILED = 1, /* the command ran and the answer is "no": invalid signature, alert refused */
	CLI_EXIT_USAGE = 2,  /* wrong arguments or unreadable input: nothing was done */
	CLI_EXIT_QUEUED = 3, /* send/broadcast: queued at the agent, not yet confirmed by the broker */
};

/* An alert id as an officer may type or paste it (upper-case hex from another tool): lower-cased in place, as the
 * protocol writes ids; true when it is then an id.  The text stays the caller's. */
bool cli_alert_id(char *text);

/* Print "xba: <message>" as one line on stderr; returns CLI_EXIT_USAGE for `return cli_usage_error(...)`. */
int cli_usage_error(const char *fmt, ...) XBA_PRINTF(1, 2);

/* cmd_send.c: send, broadcast, and what they share */
int cmd_send(int argc, char **argv);
int cmd_broadcast(int argc, char **argv);
/* Parse an RFC 3339 time, or a duration ("90m", "6h", "2d") added to base_ms.  0 or XBA_ESYNTAX. */
int cli_parse_when(const char *text, int64_t base_ms, int64_t *out);
struct local_target;
struct local_client;
/* Submit alert to the agent; print its id and, within wait_ms, the broker's verdict.  expires_in_ms > 0: --expires
 * was that duration (SubmitRequest.expires_in_ms).  With keep_client, the connection is reused (a subscription
 * made on it stays) and handed back.  Exit 3 = queued, not confirmed. */
int cli_submit(const char *cmd, const struct local_target *target, Xba__V1__Alert *alert, int64_t expires_in_ms,
    int wait_ms, bool json, struct local_client **keep_client, char *alert_id_out, size_t alert_id_size);

/* cmd_watch.c */
int cmd_watch(int argc, char **argv);
int cmd_history(int argc, char **argv);

/* cmd_ack.c */
int cmd_ack(int argc, char **argv);

/* cmd_status.c */
int cmd_status(int argc, char **argv);
int cmd_track(int argc, char **argv);
int cmd_quarantine(int argc, char **argv);

/* cmd_rules.c */
int cmd_rules(int argc, char **argv);

/* cmd_keygen.c */
int cmd_keygen(int argc, char **argv);

/* cmd_verify.c */
int cmd_verify(int argc, char **argv);

/* cmd_audit.c */
int cmd_audit(int argc, char **argv);

#endif
