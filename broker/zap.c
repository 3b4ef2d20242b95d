/*
 * zap.c — transport authentication (ZeroMQ ZAP, RFC 27) for the broker's CURVE socket: the first gate every node
 * passes, before it can send a single frame.  libzmq asks here during each CURVE handshake; a client key listed in
 * region.yaml is admitted with User-Id = "NODE:KEY", its node id and its CURVE key in Z85 (server.c reads it from
 * every message it receives, and refuses a connection whose key a reload took from the node), any other key is
 * refused and logged.
 */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "broker.h"
#include "encoding.h"
#include "log.h"
#include "zapwire.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"

struct zap {
	void *socket;              /* REP bound to ZAP_ENDPOINT */
	struct log_budget refused; /* records of refused keys: anyone can cause them, with fresh keys at will */
};

#define ZAP_LOG_BURST 100
#define ZAP_LOG_PER_SECOND 10.0

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

void
zap_handle(struct zap *zap, const struct directory *dir)
{
	struct zap_request req;

	while (zapwire_read(zap->socket, &req) == 0) {
		const struct dir_node *node = req.has_curve_key ? directory_node_by_curve(dir, req.curve_key) : NULL;
		char key_z85[XBA_Z85_KEY_TEXT_LEN + 1] = "-", quoted[80];

		if (node != NULL) {
			char user[XBA_NODE_ID_MAX + 1 + XBA_Z85_KEY_TEXT_LEN + 1];

			log_debug("event=node.authenticated node=%s address=%s", node->id,
			    log_quote(quoted, sizeof(quoted), req.address));
			snprintf(user, sizeof(user), "%s:%s", node->id, node->curve_public_z85);
			zapwire_reply(zap->socket, &req, "200", "OK", user);
			continue;
		}
		if (req.has_curve_key)
			zmq_z85_encode(key_z85, req.curve_key, XBA_CURVE_KEY_LEN);
		if (log_budget_take(&zap->refused, ZAP_LOG_PER_SECOND, ZAP_LOG_BURST)) {
			if (zap->refused.suppressed > 0) {
				log_warnx("event=node.refused_suppressed records=%llu note=\"more refused keys than %d at once or "
					  "%.0f a second; those were not logged\"", (unsigned long long)zap->refused.suppressed,
				    ZAP_LOG_BURST, ZAP_LOG_PER_SECOND);
				zap->refused.suppressed = 0;
			}
			log_warnx("event=node.refused reason=%s key=%s address=%s",
			    req.has_curve_key ? "unknown-curve-key" : "not-curve", key_z85,
			    log_quote(quoted, sizeof(quoted), req.address));
		}
		zapwire_reply(zap->socket, &req, "400", req.has_curve_key ? "unknown CURVE key" : "only CURVE is accepted",
		    "");
	}
}
