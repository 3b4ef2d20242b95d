/*
 * zap.c — transport authentication (ZeroMQ ZAP, RFC 27) for the broker's CURVE socket: the first gate every node
 * passes, before it can send a single frame.  libzmq asks here during each CURVE handshake; a client key listed in
 * region.yaml is admitted with User-Id = its node id (which server.c reads from every message it receives), any
 * other key is refused and logged.
 */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "broker.h"
#include "encoding.h"
#include "log.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_MAX_PARTS 8

struct zap {
	void *socket; /* REP bound to ZAP_ENDPOINT */
};

struct zap *
zap_new(void *zmq_ctx, struct xba_error *err)
{
	struct zap *zap = calloc(1, sizeof(*zap));
	int linger = 0;

	if (zap == NULL) {
		xba_error_set(err, XBA_ENOMEM, "out of memory");
		return NULL;
	}
	zap->socket = zmq_socket(zmq_ctx, ZMQ_REP);
	if (zap->socket == NULL || zmq_setsockopt(zap->socket, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
	    zmq_bind(zap->socket, ZAP_ENDPOINT) != 0) {
		xba_error_set(err, XBA_EIO, "cannot bind the ZAP handler at %s: %s", ZAP_ENDPOINT,
		    zmq_strerror(zmq_errno()));
		zap_free(zap);
		return NULL;
	}
	return zap;
}

void
zap_free(struct zap *zap)
{
	if (zap == NULL)
		return;
	if (zap->socket != NULL)
		zmq_close(zap->socket);
	free(zap);
}

void *
zap_socket(struct zap *zap)
{
	return zap->socket;
}

static void
send_part(void *socket, const void *data, size_t len, bool more)
{
	zmq_send(socket, data, len, more ? ZMQ_SNDMORE : 0);
}

/* Read one multipart ZAP request; returns the number of parts (bounded), or -1 when none is pending. */
static int
read_request(void *socket, zmq_msg_t parts[ZAP_MAX_PARTS])
{
	int n = 0, more;
	size_t more_len = sizeof(more);

	do {
		zmq_msg_t scratch, *msg = n < ZAP_MAX_PARTS ? &parts[n] : &scratch;

		zmq_msg_init(msg);
		if (zmq_msg_recv(msg, socket, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
			zmq_msg_close(msg);
			for (int i = 0; i < n && i < ZAP_MAX_PARTS; i++)
				zmq_msg_close(&parts[i]);
			return -1;
		}
		if (msg == &scratch)
			zmq_msg_close(msg);
		else
			n++;
		zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &more_len);
	} while (more);
	return n;
}

void
zap_handle(struct zap *zap, const struct directory *dir)
{
	zmq_msg_t parts[ZAP_MAX_PARTS];
	int n;

	while ((n = read_request(zap->socket, parts)) >= 0) {
		/* version, request id, domain, address, identity, mechanism, credentials... */
		const char *status = "400", *text = "unknown CURVE key", *user = "";
		char address[64] = "", key_z85[41] = "-";
		const struct dir_node *node = NULL;

		if (n >= 7 && zmq_msg_size(&parts[5]) == 5 && memcmp(zmq_msg_data(&parts[5]), "CURVE", 5) == 0 &&
		    zmq_msg_size(&parts[6]) == XBA_CURVE_KEY_LEN) {
			const uint8_t *key = zmq_msg_data(&parts[6]);

			zmq_z85_encode(key_z85, key, XBA_CURVE_KEY_LEN);
			node = directory_node_by_curve(dir, key);
		} else {
			text = "only CURVE is accepted";
		}
		if (n >= 4) {
			size_t len = zmq_msg_size(&parts[3]);

			if (len >= sizeof(address))
				len = sizeof(address) - 1;
			memcpy(address, zmq_msg_data(&parts[3]), len);
			address[len] = '\0';
		}
		if (node != NULL && node->role != 0) {
			status = "200";
			text = "OK";
			user = node->id;
			log_debug("event=node.authenticated node=%s address=%s", node->id, address);
		} else {
			char quoted[80];

			log_warnx("event=node.refused reason=unknown-curve-key key=%s address=%s", key_z85,
			    log_quote(quoted, sizeof(quoted), address));
		}
		send_part(zap->socket, "1.0", 3, true);
		if (n >= 2)
			send_part(zap->socket, zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), true);
		else
			send_part(zap->socket, "", 0, true);
		send_part(zap->socket, status, 3, true);
		send_part(zap->socket, text, strlen(text), true);
		send_part(zap->socket, user, strlen(user), true);
		send_part(zap->socket, "", 0, false);
		for (int i = 0; i < n && i < ZAP_MAX_PARTS; i++)
			zmq_msg_close(&parts[i]);
	}
}
