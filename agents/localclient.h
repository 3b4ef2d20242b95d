/*
 * localclient.h — the CLI's connection to its national agent (the LocalFrame protocol at the end of
 * proto/xba.proto).  Every `xba` subcommand that talks to the agent (send, watch, ack, broadcast, history,
 * status, track) opens one of these, sends requests with a ref, and reads replies and pushed events.
 *
 * Where the agent is: --socket PATH (or $XBA_SOCKET, default /run/xba-agent/agent.sock) for the IPC socket on the
 * same machine; or, from an officer's workstation on the LAN, --agent tcp://HOST:PORT with --agent-key (the
 * agent's CURVE public key file) and --officer-key (the officer's CURVE secret key file, mode 0600).
 */
#ifndef XBA_LOCALCLIENT_H
#define XBA_LOCALCLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "xba.pb-c.h"

#define LOCAL_DEFAULT_SOCKET "/run/xba-agent/agent.sock"
/* ZMTP heartbeats to the agent: a connection silent this long after a ping is dropped (and then seen dropped). */
#define LOCAL_HEARTBEAT_IVL_MS 5000
#define LOCAL_HEARTBEAT_TIMEOUT_MS 15000

struct local_target {
	const char *socket_path;   /* IPC socket; used when agent_endpoint is NULL */
	const char *agent_endpoint; /* tcp://host:port of the agent's LAN endpoint, or NULL */
	const char *agent_key;     /* LAN: file with the agent's Z85 CURVE public key */
	const char *officer_key;   /* LAN: file with the officer's Z85 CURVE secret key (0600) */
	bool keepalive;            /* ping the agent (LOCAL_HEARTBEAT_*): for commands that wait on small frames for
	                            * long (watch, broadcast --wait); not for one big answer, which a slow LAN takes
	                            * longer than the timeout to carry (a ping's answer queues behind it) */
};

struct local_client;

/* Fill target from $XBA_SOCKET / defaults; options parsed later override. */
void local_target_defaults(struct local_target *target);

/* getopt_long rows for the target options, and their handling: returns true if opt was one of them. */
#define LOCAL_TARGET_OPTIONS                                          \
	{ "socket", required_argument, NULL, 1001 },                  \
	{ "agent", required_argument, NULL, 1002 },                   \
	{ "agent-key", required_argument, NULL, 1003 },               \
	{ "officer-key", required_argument, NULL, 1004 }
bool local_target_option(struct local_target *target, int opt, const char *arg);
/* Usage text for the target options (one block, indented two spaces). */
extern const char local_target_usage[];

/* Connect (ZeroMQ connects lazily: the first request's timeout is what tells an absent agent). */
struct local_client *local_client_new(const struct local_target *target, struct xba_error *err);
void local_client_free(struct local_client *c);

/* Send a request (its ref is set here) and wait up to timeout_ms for the reply with that ref; events that
 * arrive meanwhile are kept for local_client_next().  *reply is the caller's (local_frame_free). */
int local_client_request(struct local_client *c, Xba__V1__LocalFrame *request, Xba__V1__LocalFrame **reply,
    int timeout_ms, struct xba_error *err);
/* Send a request (its ref set here, in request->ref) without waiting for the reply, which comes later through
 * local_client_next() with that ref. */
int local_client_send(struct local_client *c, Xba__V1__LocalFrame *request, int timeout_ms, struct xba_error *err);
/* "ipc://PATH" or "tcp://HOST:PORT": where the agent is, for messages. */
const char *local_client_endpoint(const struct local_client *c);
/* Has the agent refused this officer key at a handshake (for good, until agent.yaml lists it)? */
bool local_client_key_refused(const struct local_client *c);
/* After local_client_request failed: had the request left this process?  Then the agent may have acted on it
 * and stopped before answering (killed, restarted): its outcome is unknown, not "nothing happened". */
bool local_client_request_sent(const struct local_client *c);

/* The next frame (a kept one first), waiting up to timeout_ms (-1 = forever).  XBA_ENOTFOUND on timeout;
 * XBA_EPROTO when the connection to the agent dropped (the agent stopped or restarted): ZeroMQ reconnects by
 * itself, but a subscription must be made again. */
int local_client_next(struct local_client *c, Xba__V1__LocalFrame **frame, int timeout_ms, struct xba_error *err);

void local_frame_free(Xba__V1__LocalFrame *frame);

/* The login name of the user running the CLI, for the author of alerts; "unknown" if it cannot be found. */
const char *local_officer_name(void);

#endif
