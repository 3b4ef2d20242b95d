/*
 * deliver.c — the delivery path: from the journal's per-node queue to the node, within the node's credit window,
 * emergencies first, one DeliverBatch frame per pass to a node that asked for batches (else a Deliver frame each);
 * and back: cumulative (plus selective) delivery acknowledgements that mark deliveries done in the journal and send
 * DELIVERED receipts to an emergency's originator.  Nothing is ever sent beyond the credit a node granted, so no
 * socket buffer fills and a slow node only slows itself; ordinary deliveries are further held to the node's link
 * window (linkwindow.c: about a second's worth on its link, so that an emergency does not queue behind a whole
 * credit window on a slow one); what is in flight when a connection drops stays QUEUED in
 * the journal and is sent again after the next Hello (the node deduplicates by alert id).
 */
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "clock.h"
#include "frame.h"
#include "log.h"

#define DELIVER_BATCH 256 /* deliveries read from the journal per node per pass */
#define LINK_EMERGENCY_PEEK 8 /* deliveries read past a full link window, for the emergencies among them */
/* DeliveryAck.released entries handled per ack (an agent sends at most 256): a frame of 256 KiB could list ~50 000,
 * each a journal UPDATE, and one node's frame must not hold the loop up for everyone. */
#define RELEASED_PER_ACK_MAX 4096

/* In-flight entries are kept sorted by seq, so membership is a binary search. */
static size_t
inflight_lower_bound(const struct session *s, uint64_t seq)
{
	size_t lo = 0, hi = s->n_inflight;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->inflight[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool
inflight_contains(void *ctx, uint64_t seq)
{
	const struct session *s = ctx;
	size_t at = inflight_lower_bound(s, seq);

	return at < s->n_inflight && s->inflight[at].seq == seq;
}

static int
inflight_add(struct session *s, const struct inflight *entry)
{
	size_t at;

	if (s->n_inflight == s->cap_inflight) {
		size_t cap = s->cap_inflight ? s->cap_inflight * 2 : 32;
		struct inflight *grown = realloc(s->inflight, cap * sizeof(*grown));

		if (grown == NULL)
			return XBA_ENOMEM;
		s->inflight = grown;
		s->cap_inflight = cap;
	}
	at = inflight_lower_bound(s, entry->seq);
	memmove(&s->inflight[at + 1], &s->inflight[at], (s->n_inflight - at) * sizeof(*entry));
	s->inflight[at] = *entry;
	s->n_inflight++;
	return 0;
}

/*
 * The encode buffer of one delivery pass.  A Deliver frame is the stored envelope plus a few bytes, so a typical one
 * (~1 KiB) is encoded on the stack; a larger envelope, or a DeliverBatch, grows a heap buffer that the rest of the
 * pass reuses.  Growing keeps what is written (a batch is built element by element) and at least doubles, so
 * nothing is allocated per delivery; the buffer lives no longer than deliver_pass (no state outside it).
 */
#define ENCODE_STACK_BYTES 4096

struct encode_buf {
	uint8_t *p;                             /* stack or heap */
	size_t cap;                             /* bytes at p */
	uint8_t *heap;                          /* owned; NULL until a frame outgrows the stack */
	uint8_t stack[ENCODE_STACK_BYTES];
};

static int
encode_reserve(struct encode_buf *b, size_t len)
{
	size_t cap = b->cap * 2 > len ? b->cap * 2 : len;
	uint8_t *grown;

	if (len <= b->cap)
		return 0;
	if ((grown = realloc(b->heap, cap)) == NULL)
		return XBA_ENOMEM;
	if (b->heap == NULL)
		memcpy(grown, b->stack, b->cap); /* leaving the stack */
	b->heap = grown;
	b->p = grown;
	b->cap = cap;
	return 0;
}

/* The receipt of an emergency names the alert and its origin: the one case that needs the envelope decoded.
 * Emergencies are rare; the ordinary delivery sends the stored bytes untouched. */
static int
emergency_names(const uint8_t *bytes, size_t len, struct inflight *entry)
{
	Xba__V1__Envelope *envelope = xba__v1__envelope__unpack(NULL, len, bytes);
	Xba__V1__Alert *alert;

	if (envelope == NULL)
		return XBA_EDECODE;
	alert = xba__v1__alert__unpack(NULL, envelope->alert.len, envelope->alert.data);
	if (alert != NULL) {
		snprintf(entry->alert_id, sizeof(entry->alert_id), "%s", alert->id);
		snprintf(entry->origin, sizeof(entry->origin), "%s", alert->origin);
		xba__v1__alert__free_unpacked(alert, NULL);
	}
	xba__v1__envelope__free_unpacked(envelope, NULL);
	return 0;
}

/* The journal's envelope of p, borrowed (valid until the next journal call), and the in-flight entry it makes. */
static int
prepare_delivery(struct server *server, const struct journal_pending *p, struct inflight *entry,
    const uint8_t **envelope, size_t *envelope_len)
{
	struct xba_error err = { 0 };

	if (journal_envelope_ref(server->journal, p->seq, envelope, envelope_len, &err) != 0) {
		char quoted[600];

		log_warnx("event=journal.error op=read seq=%llu error=%s", (unsigned long long)p->seq,
		    log_quote(quoted, sizeof(quoted), err.msg));
		return XBA_EIO;
	}
	memset(entry, 0, sizeof(*entry));
	entry->seq = p->seq;
	entry->emergency = p->emergency;
	if (p->emergency && emergency_names(*envelope, *envelope_len, entry) != 0) {
		log_warnx("event=journal.error op=decode seq=%llu", (unsigned long long)p->seq);
		return XBA_EDECODE;
	}
	return 0;
}

static int
reserve_or_log(struct server *server, size_t node_index, const struct journal_pending *p, struct encode_buf *buf,
    size_t len)
{
	if (encode_reserve(buf, len) == 0)
		return 0;
	log_warnx("event=deliver.error node=%s seq=%llu error=\"out of memory\"", server->dir->nodes[node_index].id,
	    (unsigned long long)p->seq);
	return XBA_ENOMEM;
}

/* The delivery is on its way (or framed in a batch about to be): it is in flight and has used one credit. */
static int
record_delivery(struct server *server, size_t node_index, const struct journal_pending *p,
    const struct inflight *framed)
{
	struct session *s = &server->sessions[node_index];
	struct inflight entry = *framed;

	entry.sent_mono = clock_mono_ms();
	entry.window_full = s->n_inflight + 1 >= s->link.window;
	if (inflight_add(s, &entry) != 0) {
		log_warnx("event=deliver.error node=%s seq=%llu error=\"out of memory\"", server->dir->nodes[node_index].id,
		    (unsigned long long)p->seq);
		return XBA_ENOMEM;
	}
	server->sessions[node_index].credit--;
	server->stats.deliveries++;
	/* Ordinary deliveries go in seq order, so everything queued up to here is in flight: the next pending read
	 * starts after it.  (A delivery that could not be recorded leaves the cursor behind, and is sent again.) */
	if (!p->emergency && p->seq > server->sessions[node_index].sent_through)
		server->sessions[node_index].sent_through = p->seq;
	log_debug("event=alert.delivered node=%s seq=%llu rule=%s emergency=%d", server->dir->nodes[node_index].id,
	    (unsigned long long)p->seq, p->rule, p->emergency);
	return 0;
}

/* Send one pending delivery as a Deliver frame; 0 on success.  The envelope is borrowed from the journal (its cache,
 * for anything recent) and framed by hand, so a delivery costs no SQLite read, no protobuf decode and encode, no
 * allocation. */
static int
send_delivery(struct server *server, size_t node_index, const struct journal_pending *p, struct encode_buf *buf)
{
	struct inflight entry;
	const uint8_t *envelope;
	size_t envelope_len, len;
	int rc;

	if ((rc = prepare_delivery(server, p, &entry, &envelope, &envelope_len)) != 0 ||
	    (rc = reserve_or_log(server, node_index, p, buf,
		 frame_deliver_size(p->seq, envelope_len, p->rule, p->emergency))) != 0)
		return rc;
	len = frame_encode_deliver(buf->p, p->seq, envelope, envelope_len, p->rule, p->emergency);
	if ((rc = server_send_encoded(server, node_index, buf->p, len)) != 0)
		return rc;
	server->stats.delivery_frames++;
	return record_delivery(server, node_index, p, &entry);
}

/* Send the elements framed so far (after FRAME_BATCH_HEADER_MAX bytes of room) as one DeliverBatch frame. */
static int
flush_batch(struct server *server, size_t node_index, struct encode_buf *buf, size_t *elements_len)
{
	uint8_t *frame;
	size_t len;

	if (*elements_len == 0)
		return 0;
	frame = frame_finish_deliver_batch(buf->p + FRAME_BATCH_HEADER_MAX, *elements_len, &len);
	*elements_len = 0;
	server->stats.delivery_frames++;
	return server_send_encoded(server, node_index, frame, len);
}

/*
 * Send a node's pending deliveries, in order, as DeliverBatch frames of at most max_frame_bytes (the size the node
 * learnt from Welcome); 0 on success.  Under load this turns one ZeroMQ message per delivery into one per node per
 * pass: one CURVE encryption, one wake-up of the node, one DeliveryAck back.  Entries go in flight as they are
 * framed; a send that fails drops the session, which puts everything in flight back in the queue.
 */
static int
send_batches(struct server *server, size_t node_index, const struct journal_pending *pending, int n,
    struct encode_buf *buf)
{
	size_t max = (size_t)server->config->max_frame_bytes, used = 0;
	int rc = 0;

	for (int k = 0; k < n && rc == 0; k++) {
		const struct journal_pending *p = &pending[k];
		struct inflight entry;
		const uint8_t *envelope;
		size_t envelope_len, size;

		if ((rc = prepare_delivery(server, p, &entry, &envelope, &envelope_len)) != 0)
			break;
		size = frame_deliver_size(p->seq, envelope_len, p->rule, p->emergency);
		/* Full: send what the batch holds first; the borrowed envelope stays valid (no journal call between).
		 * An element alone over the limit still goes, alone, as a Deliver frame of that size would. */
		if (used > 0 && FRAME_BATCH_HEADER_MAX + used + size > max && (rc = flush_batch(server, node_index, buf,
		    &used)) != 0)
			break;
		if ((rc = reserve_or_log(server, node_index, p, buf, FRAME_BATCH_HEADER_MAX + used + size)) != 0)
			break;
		used += frame_encode_batch_element(buf->p + FRAME_BATCH_HEADER_MAX + used, p->seq, envelope, envelope_len,
		    p->rule, p->emergency);
		rc = record_delivery(server, node_index, p, &entry);
	}
	/* What is framed is in flight, so it goes even when something further on failed. */
	if (flush_batch(server, node_index, buf, &used) != 0)
		rc = XBA_EIO;
	return rc;
}

void
deliver_pass(struct server *server)
{
	struct journal_pending pending[DELIVER_BATCH];
	struct encode_buf buf;

	buf.p = buf.stack;
	buf.cap = sizeof(buf.stack);
	buf.heap = NULL;
	for (size_t i = 0; i < server->dir->n_nodes; i++) {
		struct session *s = &server->sessions[i];
		struct xba_error err = { 0 };
		size_t want, room;
		bool capped;
		int n, sending;

		if (!s->up || !s->wants_delivery || s->credit == 0)
			continue;
		want = s->credit < DELIVER_BATCH ? (size_t)s->credit : DELIVER_BATCH;
		/* The link window holds ordinary deliveries back, not emergencies (they come first in the queue): with
		 * no room left, a few are read to see whether an emergency is among them. */
		room = link_window_room(&s->link, s->n_inflight);
		capped = room < want;
		if (capped && room + LINK_EMERGENCY_PEEK < want)
			want = room + LINK_EMERGENCY_PEEK;
		n = journal_pending(server->journal, server->dir->nodes[i].id, s->sent_through, pending, want,
		    inflight_contains, s, &err);
		if (n < 0) {
			char quoted[600];

			log_warnx("event=journal.error op=pending node=%s error=%s", server->dir->nodes[i].id,
			    log_quote(quoted, sizeof(quoted), err.msg));
			continue;
		}
		sending = n;
		if (capped) {
			int emergencies = 0;

			while (emergencies < n && pending[emergencies].emergency)
				emergencies++;
			if ((size_t)(n - emergencies) > room)
				sending = emergencies + (int)room;
		}
		if (s->deliver_batches)
			(void)send_batches(server, i, pending, sending, &buf);
		else
			for (int k = 0; k < sending; k++)
				if (send_delivery(server, i, &pending[k], &buf) != 0)
					break;
		if (sending < n) {
			/* The rest waits for the link: the acknowledgement that makes room starts the next pass. */
			s->wants_delivery = false;
			s->link_limited = true;
		} else if ((size_t)n < want) {
			/* Fewer than asked: the queue is empty until something new is routed here. */
			s->wants_delivery = false;
		}
	}
	free(buf.heap);
}

/* Hold a receipt about node_id's copy of an emergency for its originator, sent after the commit.  note (a code
 * name for REFUSED) may be NULL. */
static int
hold_receipt(struct server *server, const char *origin_id, const char *alert_id, const char *node_id,
    Xba__V1__ReceiptKind kind, const char *note, int64_t now)
{
	const struct dir_node *origin = directory_node(server->dir, origin_id);
	struct held_frame h = { 0 };
	int rc;

	if (origin == NULL)
		return 0; /* no longer in region.yaml: nobody to tell */
	h.node_index = directory_node_index(server->dir, origin);
	h.kind = XBA__V1__FRAME__BODY_RECEIPT;
	snprintf(h.alert_id, sizeof(h.alert_id), "%.*s", (int)sizeof(h.alert_id) - 1, alert_id); /* a UUID fits */
	snprintf(h.node_id, sizeof(h.node_id), "%s", node_id);
	h.receipt_kind = kind;
	h.time_ms = now;
	if (note != NULL && (h.note = strdup(note)) == NULL)
		return XBA_ENOMEM;
	if ((rc = server_hold(server, &h)) != 0)
		free(h.note);
	return rc;
}

/* Mark one in-flight delivery done; holds a DELIVERED receipt for an emergency's originator. */
static int
finish(struct server *server, size_t node_index, const struct inflight *entry, int64_t now, struct xba_error *err)
{
	const char *node_id = server->dir->nodes[node_index].id;
	bool changed = false;
	int rc = journal_mark_delivered(server->journal, node_id, entry->seq, now, &changed, err);

	if (rc == XBA_ENOTFOUND)
		return 0; /* pruned meanwhile */
	if (rc != 0)
		return rc;
	if (changed && entry->emergency && entry->origin[0] != '\0')
		return hold_receipt(server, entry->origin, entry->alert_id, node_id,
		    XBA__V1__RECEIPT_KIND__RECEIPT_KIND_DELIVERED, NULL, now);
	return 0;
}

/* The code with which ack says the node refused seq (its quarantine), or NULL when it stored it.  Only the first
 * max entries count: refusals are a subset of what the ack covers, which is at most what is in flight. */
static const char *
refusal_code(const Xba__V1__DeliveryAck *ack, uint64_t seq, size_t max)
{
	for (size_t k = 0; k < ack->n_refused && k < max; k++)
		if (ack->refused[k] != NULL && ack->refused[k]->seq == seq)
			return frame_error_code_name(ack->refused[k]->code);
	return NULL;
}

/*
 * An in-flight delivery the node acknowledged but keeps in its quarantine (docs/protocol.md §2.5): REFUSED, not
 * DELIVERED, so that the sender's `xba track` and, for an emergency, its receipt say that this node's officers do
 * not have it.
 */
static int
refused(struct server *server, size_t node_index, const struct inflight *entry, const char *code, int64_t now,
    struct xba_error *err)
{
	const char *node_id = server->dir->nodes[node_index].id;
	bool changed = false;
	int rc = journal_mark_refused(server->journal, node_id, entry->seq, code, now, &changed, err);

	if (rc == XBA_ENOTFOUND)
		return 0; /* pruned meanwhile */
	if (rc != 0 || !changed)
		return rc;
	{
		/* In flight, only an emergency carries its id and origin; an ordinary one is looked up (a rare path). */
		struct journal_alert_brief brief = { 0 };
		struct xba_error ignored = { 0 };

		if (entry->alert_id[0] == '\0')
			(void)journal_alert_brief_get(server->journal, entry->seq, &brief, &ignored);
		log_warnx("event=delivery.refused node=%s seq=%llu alert=%s code=%s origin=%s", node_id,
		    (unsigned long long)entry->seq, entry->alert_id[0] ? entry->alert_id : brief.alert_id[0] ? brief.alert_id
		    : "-", code, entry->origin[0] ? entry->origin : brief.origin[0] ? brief.origin : "-");
	}
	if (entry->emergency && entry->origin[0] != '\0')
		return hold_receipt(server, entry->origin, entry->alert_id, node_id,
		    XBA__V1__RECEIPT_KIND__RECEIPT_KIND_REFUSED, code, now);
	return 0;
}

/* Deliveries the node refused earlier and has verified since: DELIVERED, with the receipt an emergency's
 * originator did not get then.  Seqs that were not REFUSED for this node change nothing. */
static int
released(struct server *server, size_t node_index, const Xba__V1__DeliveryAck *ack, int64_t now,
    struct xba_error *err)
{
	const char *node_id = server->dir->nodes[node_index].id;

	if (ack->n_released > RELEASED_PER_ACK_MAX && node_log_allowed(server, node_index))
		log_warnx("event=delivery_ack.truncated node=%s released=%zu handled=%d", node_id, ack->n_released,
		    RELEASED_PER_ACK_MAX);
	for (size_t k = 0; k < ack->n_released && k < RELEASED_PER_ACK_MAX; k++) {
		struct journal_alert_brief brief;
		bool changed = false;
		int rc = journal_mark_released(server->journal, node_id, ack->released[k], now, &changed, &brief, err);

		if (rc != 0)
			return rc;
		if (!changed)
			continue;
		log_info("event=delivery.released node=%s seq=%llu alert=%s origin=%s", node_id,
		    (unsigned long long)ack->released[k], brief.alert_id, brief.origin);
		if (brief.emergency && (rc = hold_receipt(server, brief.origin, brief.alert_id, node_id,
					    XBA__V1__RECEIPT_KIND__RECEIPT_KIND_DELIVERED, NULL, now)) != 0)
			return rc;
	}
	return 0;
}

/* Whether ack finishes the delivery of seq: at or below its cumulative through_seq, or named in its seqs. */
static bool
ack_covers(const Xba__V1__DeliveryAck *ack, uint64_t seq)
{
	if (seq <= ack->through_seq)
		return true;
	for (size_t k = 0; k < ack->n_seqs; k++)
		if (ack->seqs[k] == seq)
			return true;
	return false;
}

static int
cmp_seq(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The ordinary deliveries this acknowledgement finishes, as one delivery mark when they are the node's next ones
 * in order (journal_mark_ordinary_run; nearly always); *marked tells the caller not to mark them one by one.
 */
static int
mark_ordinary_run(struct server *server, size_t node_index, const Xba__V1__DeliveryAck *ack, int64_t now,
    bool *marked, struct xba_error *err)
{
	struct session *s = &server->sessions[node_index];
	uint64_t *run;
	size_t n = 0;
	int rc;

	*marked = false;
	if (s->n_inflight == 0)
		return 0;
	if ((run = malloc(s->n_inflight * sizeof(*run))) == NULL)
		return 0; /* row by row, as without marks */
	for (size_t i = 0; i < s->n_inflight; i++)
		if (!s->inflight[i].emergency && ack_covers(ack, s->inflight[i].seq))
			run[n++] = s->inflight[i].seq;
	qsort(run, n, sizeof(*run), cmp_seq);
	rc = journal_mark_ordinary_run(server->journal, server->dir->nodes[node_index].id, run, n, now, marked, err);
	free(run);
	return rc;
}

/*
 * Tell the link window what an acknowledgement says of the link: the delay of the newest of the finished
 * deliveries it covers (sent at newest_sent; any_full: the window was full when one of them went), less what the
 * node says it held it (DeliveryAck.held_ms).  A window that held deliveries back has room again: the next pass
 * sends them.
 */
static void
link_acked(struct server *server, size_t node_index, int64_t newest_sent, bool any_full, size_t finished,
    uint32_t held_ms)
{
	struct session *s = &server->sessions[node_index];

	/* What the node says it held the delivery (its store's commit: a slow disk) is not the link's delay. */
	if (link_window_acked(&s->link, newest_sent, any_full, finished, clock_mono_ms() - (int64_t)held_ms) &&
	    s->link.cuts == 1 && node_log_allowed(server, node_index))
		log_info("event=link.queueing node=%s window=%u queue_ms=%lld action=\"deliveries wait at the broker, "
			 "not on the link, so that an emergency does not wait behind them\"", server->dir->nodes[node_index].id,
		    s->link.window, (long long)s->link.queue_ms);
	if (s->link_limited) {
		s->link_limited = false;
		s->wants_delivery = true;
	}
}

void
deliver_handle_ack(struct server *server, size_t node_index, const Xba__V1__DeliveryAck *ack)
{
	struct session *s = &server->sessions[node_index];
	const char *node_id = server->dir->nodes[node_index].id;
	struct xba_error err = { 0 };
	int64_t now = clock_now_ms();
	int64_t newest_sent = INT64_MIN;
	size_t kept = 0, finished = 0;
	bool ordinary_marked = false, any_full = false;
	int rc = server_begin(server, &err);

	if (rc == 0)
		rc = mark_ordinary_run(server, node_index, ack, now, &ordinary_marked, &err);
	/* Everything in flight at or below through_seq, or named in seqs, is done; the rest stays in flight.  What
	 * the node refused is done too, as REFUSED (an ordinary one a mark has just covered included). */
	for (size_t i = 0; rc == 0 && i < s->n_inflight; i++) {
		const struct inflight *e = &s->inflight[i];
		const char *code;

		if (!ack_covers(ack, e->seq)) {
			s->inflight[kept++] = *e;
			continue;
		}
		finished++;
		if (e->sent_mono > newest_sent)
			newest_sent = e->sent_mono;
		any_full = any_full || e->window_full;
		if ((code = refusal_code(ack, e->seq, s->n_inflight)) != NULL)
			rc = refused(server, node_index, e, code, now, &err);
		else if (e->emergency || !ordinary_marked)
			rc = finish(server, node_index, e, now, &err);
	}
	if (rc == 0 && ack->n_released > 0)
		rc = released(server, node_index, ack, now, &err);
	if (rc == 0 && finished > 0)
		link_acked(server, node_index, newest_sent, any_full, finished, ack->held_ms);
	/*
	 * Only what is in flight on this session is marked.  An acknowledgement of something not in flight (sent on a
	 * connection that has since dropped) changes nothing: that delivery is still QUEUED, is sent again, and the
	 * node, which deduplicates, acknowledges it again.  Marking "everything through through_seq" here instead
	 * walked the node's whole queue on every acknowledgement (docs/performance.md); Hello's resume_after still
	 * does it, once per connection.
	 */
	if (rc == 0)
		s->n_inflight = kept;
	if (rc != 0) {
		char quoted[600];

		log_warnx("event=journal.error op=delivery_ack node=%s error=%s", node_id,
		    log_quote(quoted, sizeof(quoted), err.msg));
		server->tx_failed = server->in_transaction;
		return;
	}
	/* A cursor past the journal head is not believed (it would only mislead status replies). */
	if (ack->through_seq > s->through_seq)
		s->through_seq = ack->through_seq < journal_head(server->journal) ? ack->through_seq
										   : journal_head(server->journal);
}

void
deliver_handle_credit(struct server *server, size_t node_index, const Xba__V1__Credit *credit)
{
	struct session *s = &server->sessions[node_index];
	uint64_t max = (uint64_t)server->config->max_credit, outstanding = s->credit + s->n_inflight;
	uint64_t room = outstanding < max ? max - outstanding : 0;

	if (credit->grant == 0) {
		server_reply_error(server, XBA__V1__ERROR_CODE__MALFORMED_FRAME, "credit.grant", 0,
		    "a credit grant must be at least 1");
		return;
	}
	if (credit->grant > room) {
		/* Capped, not refused: the node just receives less at once; the Error tells it why. */
		if (node_log_allowed(server, node_index))
			log_info("event=credit.capped node=%s grant=%u window_max=%llu",
			    server->dir->nodes[node_index].id, credit->grant, (unsigned long long)max);
		server_reply_error(server, XBA__V1__ERROR_CODE__CREDIT_EXCEEDED, "credit.grant", 0,
		    "grant of %u would open the window past the broker's maximum of %llu; capped", credit->grant,
		    (unsigned long long)max);
	}
	s->credit += credit->grant < room ? credit->grant : room;
	s->wants_delivery = true;
}
