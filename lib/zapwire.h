/*
 * zapwire.h — the ZeroMQ Authentication Protocol (ZAP, RFC 27) on the wire: reading one request from a ZAP REP
 * socket and answering it.  The broker (admits CURVE keys listed in region.yaml) and the agent's LAN endpoint
 * (admits the officers listed in agent.yaml) each decide; this module only reads and writes the frames.
 */
#ifndef XBA_ZAPWIRE_H
#define XBA_ZAPWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct zap_request {
	char request_id[256];     /* echoed in the reply */
	size_t request_id_len;
	char domain[64];          /* ZMQ_ZAP_DOMAIN of the socket being connected to */
	char address[64];         /* the peer's address, for logs */
	char mechanism[16];       /* "CURVE", "NULL", ... */
	uint8_t curve_key[32];    /* the client's CURVE public key, when has_curve_key */
	bool has_curve_key;
};

/* Read one pending request without blocking; 0, or -1 when none is pending.  Malformed requests are read whole
 * and come back with empty fields (and no key), so the caller refuses them. */
int zapwire_read(void *socket, struct zap_request *req);

/* Answer req: status "200" (admitted, user_id becomes the connection's User-Id) or "400". */
void zapwire_reply(void *socket, const struct zap_request *req, const char *status, const char *text,
    const char *user_id);

#endif
