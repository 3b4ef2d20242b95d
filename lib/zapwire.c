/*
 * zapwire.c — ZAP requests and replies (see zapwire.h).  Runs once per connection handshake, never per alert.
 */
#include "zapwire.h"

#include <string.h>
#include <zmq.h>

#define ZAP_MAX_PARTS 8

/* Copy a message part as text, cut to size - 1 bytes. */
static void
part_text(zmq_msg_t *part, char *out, size_t size)
{
	size_t len = zmq_msg_size(part) < size - 1 ? zmq_msg_size(part) : size - 1;

	if (len > 0)
		memcpy(out, zmq_msg_data(part), len);
	out[len] = '\0';
}

int
zapwire_read(void *socket, struct zap_request *req)
{
	zmq_msg_t parts[ZAP_MAX_PARTS];
	int n = 0, more;
	size_t more_len = sizeof(more);

	do {
		zmq_msg_t scratch, *msg = n < ZAP_MAX_PARTS ? &parts[n] : &scratch;

		zmq_msg_init(msg);
		if (zmq_msg_recv(msg, socket, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
			zmq_msg_close(msg);
			for (int i = 0; i < n; i++)
				zmq_msg_close(&parts[i]);
			return -1;
		}
		if (msg == &scratch)
			zmq_msg_close(msg);
		else
			n++;
		zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &more_len);
	} while (more);

	/* version, request id, domain, address, identity, mechanism, credentials... */
	memset(req, 0, sizeof(*req));
	if (n >= 2) {
		req->request_id_len = zmq_msg_size(&parts[1]) < sizeof(req->request_id) ? zmq_msg_size(&parts[1])
										: sizeof(req->request_id);
		memcpy(req->request_id, zmq_msg_data(&parts[1]), req->request_id_len);
	}
	if (n >= 3)
		part_text(&parts[2], req->domain, sizeof(req->domain));
	if (n >= 4)
		part_text(&parts[3], req->address, sizeof(req->address));
	if (n >= 6)
		part_text(&parts[5], req->mechanism, sizeof(req->mechanism));
	if (n >= 7 && strcmp(req->mechanism, "CURVE") == 0 && zmq_msg_size(&parts[6]) == sizeof(req->curve_key)) {
		memcpy(req->curve_key, zmq_msg_data(&parts[6]), sizeof(req->curve_key));
		req->has_curve_key = true;
	}
	for (int i = 0; i < n; i++)
		zmq_msg_close(&parts[i]);
	return 0;
}

void
zapwire_reply(void *socket, const struct zap_request *req, const char *status, const char *text,
    const char *user_id)
{
	zmq_send(socket, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(socket, req->request_id, req->request_id_len, ZMQ_SNDMORE);
	zmq_send(socket, status, strlen(status), ZMQ_SNDMORE);
	zmq_send(socket, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(socket, user_id, strlen(user_id), ZMQ_SNDMORE);
	zmq_send(socket, "", 0, 0);
}
