/*
 * localclient.c — the CLI side of the LocalFrame protocol (see localclient.h).  A DEALER socket; requests carry a
 * ref; replies are matched by ref; pushed events (ref 0) are queued in arrival order.
 */
#include "localclient.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "keys.h"

#define LOCAL_MAX_FRAME (1024 * 1024)
#define LOCAL_MAX_KEPT 4096

struct local_client {
	void *ctx;
	void *socket;                   /* DEALER to the agent */
	void *monitor;                  /* PAIR receiving the DEALER's handshake and disconnect events */
	uint64_t next_ref;
	Xba__V1__LocalFrame **kept;     /* frames read while waiting for a reply; owned */
	size_t n_kept, cap_kept;
	char endpoint[600];             /* for messages */
	bool request_sent;              /* the last request left this process (local_client_request_sent) */
	bool handshake_done;            /* a connection to the agent completed its handshake */
	bool key_refused;               /* the agent's ZAP handler refused this officer key */
};

const char local_target_usage[] =
    "  --socket PATH       the agent's local socket (default $XBA_SOCKET or " LOCAL_DEFAULT_SOCKET ")\n"
    "  --agent ENDPOINT    the agent's LAN endpoint (tcp://HOST:PORT), with --agent-key and --officer-key\n"
    "  --agent-key FILE    the agent's CURVE public key (LAN only)\n"
    "  --officer-key FILE  your CURVE secret key, mode 0600 (LAN only)\n";

void
local_target_defaults(struct local_target *target)
{
	const char *env = getenv("XBA_SOCKET");

	memset(target, 0, sizeof(*target));
	target->socket_path = env != NULL && env[0] != '\0' ? env : LOCAL_DEFAULT_SOCKET;
}

bool
local_target_option(struct local_target *target, int opt, const char *arg)
{
	switch (opt) {
	case 1001: target->socket_path = arg; return true;
	case 1002: target->agent_endpoint = arg; return true;
	case 1003: target->agent_key = arg; return true;
	case 1004: target->officer_key = arg; return true;
	default: return false;
	}
}

/*
 * A socket file left by an agent that was killed (or lost its machine) refuses connections.  libzmq would queue the
 * request and retry in the background, and the officer would wait for the whole reply timeout to learn that nobody
 * was there, after being told nothing of the kind; a plain connect() says so at once.  Anything else (a path too
 * long for a sockaddr, another error) is left to libzmq and the timeout.
 */
static bool
socket_is_stale(const char *path)
{
	struct sockaddr_un sa;
	int fd, rc, saved;

	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return false;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	saved = errno;
	close(fd);
	return rc != 0 && saved == ECONNREFUSED;
}

struct local_client *
local_client_new(const struct local_target *target, struct xba_error *err)
{
	struct local_client *c = calloc(1, sizeof(*c));
	int zero = 0, immediate = 0, heartbeat_ivl = LOCAL_HEARTBEAT_IVL_MS, heartbeat_timeout = LOCAL_HEARTBEAT_TIMEOUT_MS;
	int64_t max = LOCAL_MAX_FRAME;

	if (c == NULL) {
		xba_error_set(err, XBA_ENOMEM, "out of memory");
		return NULL;
	}
	c->next_ref = 1;
	c->ctx = zmq_ctx_new();
	c->socket = c->ctx ? zmq_socket(c->ctx, ZMQ_DEALER) : NULL;
	if (c->socket == NULL) {
		xba_error_set(err, XBA_EIO, "cannot create a ZeroMQ socket: %s", zmq_strerror(zmq_errno()));
		local_client_free(c);
		return NULL;
	}
	zmq_setsockopt(c->socket, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(c->socket, ZMQ_IMMEDIATE, &immediate, sizeof(immediate));
	zmq_setsockopt(c->socket, ZMQ_MAXMSGSIZE, &max, sizeof(max));
	/* A link that stops forwarding without closing (a LAN switch, a laptop's Wi-Fi) would otherwise look like a quiet
	 * region for as long as it lasts: libzmq pings, and drops a connection that has not answered in time, which a
	 * watch sees (XBA_EPROTO) and says. */
	if (target->keepalive) {
		zmq_setsockopt(c->socket, ZMQ_HEARTBEAT_IVL, &heartbeat_ivl, sizeof(heartbeat_ivl));
		zmq_setsockopt(c->socket, ZMQ_HEARTBEAT_TIMEOUT, &heartbeat_timeout, sizeof(heartbeat_timeout));
	}
	if (target->agent_endpoint != NULL) {
		struct curve_identity officer;
		char agent_public[XBA_Z85_KEY_TEXT_LEN + 1];

		if (target->agent_key == NULL || target->officer_key == NULL) {
			xba_error_set(err, XBA_EINVAL, "--agent needs --agent-key FILE and --officer-key FILE");
			local_client_free(c);
			return NULL;
		}
		if (keys_load_curve_public(target->agent_key, agent_public, err) != 0 ||
		    keys_load_curve(target->officer_key, &officer, err) != 0) {
			local_client_free(c);
			return NULL;
		}
		zmq_setsockopt(c->socket, ZMQ_CURVE_SERVERKEY, agent_public, XBA_Z85_KEY_TEXT_LEN);
		zmq_setsockopt(c->socket, ZMQ_CURVE_PUBLICKEY, officer.public_z85, XBA_Z85_KEY_TEXT_LEN);
		zmq_setsockopt(c->socket, ZMQ_CURVE_SECRETKEY, officer.secret_z85, XBA_Z85_KEY_TEXT_LEN);
		memset(&officer, 0, sizeof(officer));
		snprintf(c->endpoint, sizeof(c->endpoint), "%s", target->agent_endpoint);
	} else {
		if (access(target->socket_path, F_OK) != 0 && errno == EACCES) {
			/* The directory is closed to this user (mode 0750): the socket may well be there. */
			xba_error_set(err, XBA_EIO,
			    "no permission to reach the agent socket %s (its directory is closed to you): ask for membership "
			    "of the duty officers' group", target->socket_path);
			local_client_free(c);
			return NULL;
		}
		if (access(target->socket_path, F_OK) != 0) {
			xba_error_set(err, XBA_EIO,
			    "no agent socket at %s (%s): is xba-agent running? (--socket PATH or XBA_SOCKET)",
			    target->socket_path, strerror(errno));
			local_client_free(c);
			return NULL;
		}
		if (access(target->socket_path, R_OK | W_OK) != 0) {
			xba_error_set(err, XBA_EIO,
			    "no permission to use the agent socket %s: ask for membership of the duty officers' group",
			    target->socket_path);
			local_client_free(c);
			return NULL;
		}
		if (socket_is_stale(target->socket_path)) {
			xba_error_set(err, XBA_EIO,
			    "the agent socket %s is there but nothing listens on it: xba-agent is not running (it stopped "
			    "without removing its socket; it removes it when it starts again)", target->socket_path);
			local_client_free(c);
			return NULL;
		}
		snprintf(c->endpoint, sizeof(c->endpoint), "ipc://%s", target->socket_path);
	}
	/* The agent cannot tell that a client reconnected, so the client must notice the drop itself. */
	{
		char monitor_endpoint[64];

		snprintf(monitor_endpoint, sizeof(monitor_endpoint), "inproc://xba-cli-monitor-%p", (void *)c);
		if (zmq_socket_monitor(c->socket, monitor_endpoint, ZMQ_EVENT_DISCONNECTED |
			ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) == 0 &&
		    (c->monitor = zmq_socket(c->ctx, ZMQ_PAIR)) != NULL) {
			zmq_setsockopt(c->monitor, ZMQ_LINGER, &zero, sizeof(zero));
			if (zmq_connect(c->monitor, monitor_endpoint) != 0) {
				zmq_close(c->monitor);
				c->monitor = NULL;
			}
		}
	}
	if (zmq_connect(c->socket, c->endpoint) != 0) {
		xba_error_set(err, XBA_EIO, "cannot connect to the agent at %s: %s", c->endpoint,
		    zmq_strerror(zmq_errno()));
		local_client_free(c);
		return NULL;
	}
	return c;
}

void
local_client_free(struct local_client *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_kept; i++)
		local_frame_free(c->kept[i]);
	free(c->kept);
	if (c->monitor != NULL)
		zmq_close(c->monitor);
	if (c->socket != NULL)
		zmq_close(c->socket);
	if (c->ctx != NULL)
		zmq_ctx_term(c->ctx);
	free(c);
}

void
local_frame_free(Xba__V1__LocalFrame *frame)
{
	if (frame != NULL)
		xba__v1__local_frame__free_unpacked(frame, NULL);
}

/* One monitor event: its id (the first part's first two bytes, native order); the parts are all read. */
static uint16_t
read_monitor_event(struct local_client *c)
{
	uint16_t event = 0;
	int more = 1, part = 0;
	size_t more_len = sizeof(more);
	zmq_msg_t msg;

	while (more) {
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, c->monitor, 0) < 0) {
			zmq_msg_close(&msg);
			break;
		}
		if (part++ == 0 && zmq_msg_size(&msg) >= sizeof(event))
			memcpy(&event, zmq_msg_data(&msg), sizeof(event));
		zmq_msg_close(&msg);
		zmq_getsockopt(c->monitor, ZMQ_RCVMORE, &more, &more_len);
	}
	return event;
}

/* One monitor event, read and noted: a handshake that succeeded clears an earlier refusal of this key. */
static uint16_t
note_monitor_event(struct local_client *c)
{
	uint16_t event = read_monitor_event(c);

	if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
		c->handshake_done = true;
		c->key_refused = false;
	} else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
		c->key_refused = true;
	}
	return event;
}

/* Read one frame from the socket, waiting up to timeout_ms.  XBA_ENOTFOUND on timeout; XBA_EPROTO when the
 * connection dropped or the agent refused this officer key (c->key_refused). */
static int
read_frame(struct local_client *c, Xba__V1__LocalFrame **out, int timeout_ms, struct xba_error *err)
{
	zmq_pollitem_t items[2] = { { c->socket, 0, ZMQ_POLLIN, 0 }, { c->monitor, 0, ZMQ_POLLIN, 0 } };
	int64_t deadline = clock_mono_ms() + timeout_ms;
	zmq_msg_t msg;
	int rc;

	for (;;) {
		int64_t left = deadline - clock_mono_ms();
		uint16_t event;

		rc = zmq_poll(items, c->monitor != NULL ? 2 : 1, left > 0 ? (long)left : 0);
		if (rc < 0)
			return xba_error_set(err, XBA_EIO, "waiting for the agent: %s", zmq_strerror(zmq_errno()));
		if (rc == 0)
			return xba_error_set(err, XBA_ENOTFOUND, "no answer from the agent at %s", c->endpoint);
		if (c->monitor == NULL || !(items[1].revents & ZMQ_POLLIN) || (items[0].revents & ZMQ_POLLIN))
			break;
		event = note_monitor_event(c);
		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
			continue;
		if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
			return xba_error_set(err, XBA_EPROTO, "the agent at %s refused this officer key", c->endpoint);
		return xba_error_set(err, XBA_EPROTO, "the connection to the agent at %s dropped", c->endpoint);
	}
	zmq_msg_init(&msg);
	if (zmq_msg_recv(&msg, c->socket, 0) < 0) {
		zmq_msg_close(&msg);
		return xba_error_set(err, XBA_EIO, "reading from the agent: %s", zmq_strerror(zmq_errno()));
	}
	*out = xba__v1__local_frame__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
	zmq_msg_close(&msg);
	if (*out == NULL)
		return xba_error_set(err, XBA_EDECODE, "the agent sent a frame that does not decode");
	return 0;
}

static int
keep(struct local_client *c, Xba__V1__LocalFrame *frame)
{
	if (c->n_kept == LOCAL_MAX_KEPT) {
		local_frame_free(frame); /* a request that waits this long has bigger problems than an event */
		return 0;
	}
	if (c->n_kept == c->cap_kept) {
		size_t cap = c->cap_kept ? c->cap_kept * 2 : 16;
		Xba__V1__LocalFrame **grown = realloc(c->kept, cap * sizeof(*grown));

		if (grown == NULL) {
			local_frame_free(frame);
			return XBA_ENOMEM;
		}
		c->kept = grown;
		c->cap_kept = cap;
	}
	c->kept[c->n_kept++] = frame;
	return 0;
}

/*
 * Hand one request to libzmq by the deadline.  A blocking send could wait for ever: once the agent has refused
 * this officer key at the handshake, the DEALER has no pipe to queue into, and it would reconnect and be refused
 * again and again.  So wait for room and watch the handshake meanwhile.
 */
static int
key_refused_error(const struct local_client *c, struct xba_error *err)
{
	return xba_error_set(err, XBA_EIO, "the agent at %s refused this officer key (it is not, or no longer, listed "
	    "under officers: in the agent's agent.yaml; ask the focal point)", c->endpoint);
}

/* Over the LAN, silence is as likely the network as the agent. */
static const char *
unreachable_hint(const struct local_client *c)
{
	return strncmp(c->endpoint, "tcp://", 6) == 0 ? ", and does the network between here and it carry anything" : "";
}

static int
send_within(struct local_client *c, const uint8_t *buf, size_t len, int timeout_ms, struct xba_error *err)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;

	for (;;) {
		zmq_pollitem_t items[2] = { { c->socket, 0, ZMQ_POLLOUT, 0 }, { c->monitor, 0, ZMQ_POLLIN, 0 } };
		int64_t left = deadline - clock_mono_ms();
		int rc;

		if (zmq_send(c->socket, buf, len, ZMQ_DONTWAIT) >= 0)
			return 0;
		if (zmq_errno() != EAGAIN)
			return xba_error_set(err, XBA_EIO, "cannot send to the agent at %s: %s", c->endpoint,
			    zmq_strerror(zmq_errno()));
		if (left <= 0)
			return xba_error_set(err, XBA_EIO, "no connection to the agent at %s within %d s: is xba-agent "
			    "running%s?", c->endpoint, timeout_ms / 1000, unreachable_hint(c));
		rc = zmq_poll(items, c->monitor != NULL ? 2 : 1, (long)left);
		if (rc < 0 && zmq_errno() != EINTR)
			return xba_error_set(err, XBA_EIO, "waiting for the agent: %s", zmq_strerror(zmq_errno()));
		if (rc <= 0 || c->monitor == NULL || !(items[1].revents & ZMQ_POLLIN))
			continue;
		if (note_monitor_event(c) == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
			return key_refused_error(c, err);
	}
}

/*
 * Read the connection events that came while nothing was asked (a drop, and the reconnections and refusals of a
 * flapping link since): they say nothing of a request sent now, which waits in libzmq's queue for the next
 * connection (ZMQ_IMMEDIATE off).  Left queued, each would fail one later request as "dropped".  A refusal of this
 * key stands unless a handshake succeeded after it.
 */
static void
drain_stale_events(struct local_client *c)
{
	while (c->monitor != NULL) {
		zmq_pollitem_t item = { c->monitor, 0, ZMQ_POLLIN, 0 };

		if (zmq_poll(&item, 1, 0) <= 0)
			return;
		note_monitor_event(c);
	}
}

/* Pack request (its ref set here) and hand it to libzmq within timeout_ms. */
static int
send_request(struct local_client *c, Xba__V1__LocalFrame *request, int timeout_ms, struct xba_error *err)
{
	size_t len;
	uint8_t *buf;
	int rc;

	drain_stale_events(c);
	if (c->key_refused) {
		c->request_sent = false;
		return key_refused_error(c, err); /* refused at a handshake already: the request would wait for nothing */
	}

	request->ref = c->next_ref++;
	c->request_sent = false;
	len = xba__v1__local_frame__get_packed_size(request);
	if ((buf = malloc(len ? len : 1)) == NULL)
		return xba_error_set(err, XBA_ENOMEM, "out of memory");
	xba__v1__local_frame__pack(request, buf);
	rc = send_within(c, buf, len, timeout_ms, err);
	free(buf);
	if (rc == 0)
		c->request_sent = true;
	return rc;
}

int
local_client_send(struct local_client *c, Xba__V1__LocalFrame *request, int timeout_ms, struct xba_error *err)
{
	return send_request(c, request, timeout_ms, err);
}

const char *
local_client_endpoint(const struct local_client *c)
{
	return c->endpoint;
}

bool
local_client_key_refused(const struct local_client *c)
{
	return c->key_refused;
}

int
local_client_request(struct local_client *c, Xba__V1__LocalFrame *request, Xba__V1__LocalFrame **reply,
    int timeout_ms, struct xba_error *err)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	int rc;

	if ((rc = send_request(c, request, timeout_ms, err)) != 0)
		return rc;
	for (;;) {
		Xba__V1__LocalFrame *frame;
		int64_t left = deadline - clock_mono_ms();

		if (left < 0)
			left = 0;
		if ((rc = read_frame(c, &frame, (int)left, err)) != 0) {
			/* Refused at the handshake of the first connection: the request never reached the agent. */
			if (rc == XBA_EPROTO && c->key_refused) {
				if (!c->handshake_done)
					c->request_sent = false;
				return key_refused_error(c, err);
			}
			/* A refused key is said above (the handshake says so); a drop is the network or a restart. */
			if (rc == XBA_EPROTO)
				return xba_error_set(err, XBA_EIO, "the connection to the agent at %s dropped before it "
				    "answered%s", c->endpoint, strncmp(c->endpoint, "tcp://", 6) == 0
					? " (the network between here and the agent, or the agent restarted)"
					: " (the agent stopped or restarted)");
			if (rc == XBA_ENOTFOUND)
				xba_error_set(err, XBA_EIO, "no answer from the agent at %s within %d s: is xba-agent running%s?",
				    c->endpoint, timeout_ms / 1000, unreachable_hint(c));
			return rc == XBA_ENOTFOUND ? XBA_EIO : rc;
		}
		if (frame->ref == request->ref) {
			*reply = frame;
			return 0;
		}
		if ((rc = keep(c, frame)) != 0)
			return xba_error_set(err, rc, "out of memory");
	}
}

int
local_client_next(struct local_client *c, Xba__V1__LocalFrame **frame, int timeout_ms, struct xba_error *err)
{
	if (c->n_kept > 0) {
		*frame = c->kept[0];
		memmove(&c->kept[0], &c->kept[1], (c->n_kept - 1) * sizeof(c->kept[0]));
		c->n_kept--;
		return 0;
	}
	return read_frame(c, frame, timeout_ms, err);
}

const char *
local_officer_name(void)
{
	const struct passwd *pw = getpwuid(getuid());
	const char *user = getenv("USER");

	if (pw != NULL && pw->pw_name != NULL && pw->pw_name[0] != '\0')
		return pw->pw_name;
	return user != NULL && user[0] != '\0' ? user : "unknown";
}

bool
local_client_request_sent(const struct local_client *c)
{
	return c->request_sent;
}
