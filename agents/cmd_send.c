/*
 * cmd_send.c — `xba send` and `xba broadcast`: where an officer's alert enters the system.  The alert is built
 * from flags or an alert file, checked here for what an officer can fix at once (names, language tags, a
 * headline), handed to the national agent (which completes, validates, signs and durably queues it), and then the
 * command waits to tell the officer what the broker did with it.  A broadcast additionally follows its receipts:
 * delivered to each node's agent, acknowledged by an officer there.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "alertyaml.h"
#include "cli.h"
#include "clock.h"
#include "display.h"
#include "frame.h"
#include "jsonw.h"
#include "localclient.h"
#include "syntax.h"

#define REQUEST_TIMEOUT_MS 10000

/* An alert assembled from command-line flags; strings point into argv or into owned copies below. */
struct draft {
	Xba__V1__Alert alert;
	Xba__V1__Info info[ALERT_MAX_INFO], *info_list[ALERT_MAX_INFO];
	Xba__V1__Area area[ALERT_MAX_AREAS], *area_list[ALERT_MAX_AREAS];
	Xba__V1__Parameter param[ALERT_MAX_PARAMS], *param_list[ALERT_MAX_PARAMS];
	char *addressees[ALERT_MAX_ADDRESSEES];
	char *owned[ALERT_MAX_ADDRESSEES + ALERT_MAX_PARAMS * 2]; /* strdup'ed pieces, freed at the end */
	size_t n_owned;
	const char *expires_text; /* resolved once sent time is known */
	int64_t expires_in_ms;    /* --expires was a duration: this long after the sent time the agent gives it */
	const char *refers_to;    /* --update ID / --cancel ID: the earlier alert of this country's */
	int refers_type;          /* XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE or _CANCEL */
	char *reference[ALERT_MAX_REFERENCES]; /* alert.references: refers_to, and for a cancel its later versions */
	char chain[ALERT_MAX_REFERENCES][XBA_UUID_LEN + 1]; /* the versions: refers_to, then its updates in order */
	size_t n_chain;
	bool status_set;          /* --status given (draft_init sets actual) */
	bool addressees_decided;  /* a cancel's addressees were chosen (cancel_audience), even if none */
	Xba__V1__LocalFrame *original; /* the agent's reply holding the earlier alert: what the draft borrows from */
};

static void print_why_queued(struct local_client *c);

static void
draft_init(struct draft *d)
{
	memset(d, 0, sizeof(*d));
	xba__v1__alert__init(&d->alert);
	d->alert.status = XBA__V1__STATUS__STATUS_ACTUAL;
	d->alert.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ALERT;
	d->alert.info = d->info_list;
	d->alert.areas = d->area_list;
	d->alert.parameters = d->param_list;
	d->alert.addressees = d->addressees;
}

static void
draft_free(struct draft *d)
{
	for (size_t i = 0; i < d->n_owned; i++)
		free(d->owned[i]);
	local_frame_free(d->original);
}

static char *
draft_own(struct draft *d, char *text)
{
	if (text != NULL && d->n_owned < sizeof(d->owned) / sizeof(d->owned[0]))
		d->owned[d->n_owned++] = text;
	return text;
}

/* The info block flags write into: the last --lang's, created on first use (language "en" if none given). */
static Xba__V1__Info *
draft_info(struct draft *d, const char *lang)
{
	if (lang != NULL || d->alert.n_info == 0) {
		if (d->alert.n_info == ALERT_MAX_INFO)
			return NULL;
		xba__v1__info__init(&d->info[d->alert.n_info]);
		d->info[d->alert.n_info].language = (char *)(lang ? lang : "en");
		d->info_list[d->alert.n_info] = &d->info[d->alert.n_info];
		d->alert.n_info++;
	}
	return &d->info[d->alert.n_info - 1];
}

static int
parse_enum(const char *cmd, enum alert_enum_kind kind, const char *text, int *out)
{
	char names[256] = "";

	if (alert_enum_parse(kind, text, out) == 0)
		return 0;
	for (int v = 1; v <= alert_enum_max(kind); v++) {
		strncat(names, alert_enum_name(kind, v), sizeof(names) - strlen(names) - 1);
		if (v < alert_enum_max(kind))
			strncat(names, ", ", sizeof(names) - strlen(names) - 1);
	}
	return cli_usage_error("%s: --%s '%s' is not one of: %s", cmd, alert_enum_kind_name(kind), text, names);
}

int
cli_parse_when(const char *text, int64_t base_ms, int64_t *out)
{
	char *end;
	long long n;

	if (clock_parse_rfc3339(text, out) == 0)
		return 0;
	errno = 0;
	n = strtoll(text, &end, 10);
	if (errno != 0 || end == text || n < 0 || n > 100000 || end[0] == '\0' || end[1] != '\0')
		return XBA_ESYNTAX;
	switch (end[0]) {
	case 's': *out = base_ms + n * 1000LL; return 0;
	case 'm': *out = base_ms + n * 60000LL; return 0;
	case 'h': *out = base_ms + n * 3600000LL; return 0;
	case 'd': *out = base_ms + n * 86400000LL; return 0;
	default: return XBA_ESYNTAX;
	}
}

/* Split "LBY,TCD" into addressees. */
static int
add_addressees(const char *cmd, struct draft *d, const char *list)
{
	char *copy = draft_own(d, strdup(list)), *save = NULL;

	if (copy == NULL)
		return cli_usage_error("%s: out of memory", cmd);
	/* An empty variable in a script (--to "$NEIGHBOURS") must not turn an addressed alert into one for everybody
	 * the rules name. */
	if (list[strspn(list, ", ")] == '\0')
		return cli_usage_error("%s: --to '%s' names no node: give the addressees (--to DZA,LBY), or leave --to "
		    "out to send where the region's rules say", cmd, list);
	for (char *tok = strtok_r(copy, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		if (!syntax_node_id_valid(tok))
			return cli_usage_error("%s: --to '%s' is not a node id (DZA, NER, IOM-ROMENA ...)", cmd, tok);
		if (d->alert.n_addressees == ALERT_MAX_ADDRESSEES)
			return cli_usage_error("%s: more than %d addressees", cmd, ALERT_MAX_ADDRESSEES);
		d->addressees[d->alert.n_addressees++] = tok;
	}
	return 0;
}

/* What the officer can fix at once, before anything reaches the agent. */
static int
check_draft(const char *cmd, const Xba__V1__Alert *a)
{
	if (a->n_info == 0 && a->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL)
		return cli_usage_error("%s: --headline is required (what happened, in one line)", cmd);
	for (size_t i = 0; i < a->n_info; i++) {
		const Xba__V1__Info *info = a->info[i];

		if (!syntax_language_tag_valid(info->language))
			return cli_usage_error("%s: --lang '%s' is not a language tag (ar, fr, en, fr-NE ...)", cmd,
			    info->language);
		if (info->headline == NULL || info->headline[strspn(info->headline, " \t")] == '\0')
			return cli_usage_error("%s: the '%s' text has no --headline (or only blanks)", cmd, info->language);
	}
	if (a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ALERT || a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE) {
		if (a->category == 0)
			return cli_usage_error("%s: --category is required (border-incident, smuggling, trafficking, "
					       "health, search-and-rescue, population-movement, other)", cmd);
		if (a->severity == 0)
			return cli_usage_error("%s: --severity is required (unknown, minor, moderate, severe, extreme)",
			    cmd);
	}
	return 0;
}

/* The broker's track answer for alert_id, or NULL when it could not be had. */
static Xba__V1__LocalFrame *
track_of(struct local_client *c, const char *alert_id)
{
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL;
	Xba__V1__TrackRequest track = XBA__V1__TRACK_REQUEST__INIT;
	struct xba_error err = { 0 };

	track.alert_id = (char *)alert_id;
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_TRACK;
	req.track = &track;
	if (local_client_request(c, &req, &reply, REQUEST_TIMEOUT_MS, &err) != 0)
		return NULL;
	if (reply->body_case != XBA__V1__LOCAL_FRAME__BODY_TRACK_REPLY ||
	    reply->track_reply->result != XBA__V1__ERROR_CODE__OK) {
		local_frame_free(reply);
		return NULL;
	}
	return reply;
}

/*
 * Whom an accepted alert was withheld from, when the officer will want to know: an addressee they named (a TLP or
 * a deny rule can keep it out, and "accepted: 1 recipient" did not say which), or, for an update or a cancel, a
 * node that has (or, queued, will have) a version it replaces: that node goes on with the version it had.  Which
 * nodes hold the earlier versions comes from the broker's track answers for the alert's references; when one of
 * them cannot be had, every withheld node is named with "if it had the alert".
 */
struct withheld_report {
	Xba__V1__LocalFrame *tracked;  /* the broker's track answer for the new alert; NULL: nothing to say */
	Xba__V1__LocalFrame *earlier[ALERT_MAX_REFERENCES]; /* track answers for alert->references, in order */
	size_t n_earlier;
	bool earlier_known;            /* every reference was tracked */
};

enum withheld_kind {
	WITHHELD_NOT_WORTH_SAYING,
	WITHHELD_ADDRESSEE,            /* an addressee of the alert */
	WITHHELD_HOLDER,               /* has or will have an earlier version */
	WITHHELD_ADDRESSEE_HOLDER,     /* both: an addressee, left with an earlier version */
	WITHHELD_MAYBE_HOLDER,         /* update/cancel, and who holds the earlier versions is not known */
};

static void
withheld_report_build(struct local_client *c, const Xba__V1__Alert *alert, const char *alert_id,
    struct withheld_report *r)
{
	bool replaces = alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE ||
	    alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL;

	memset(r, 0, sizeof(*r));
	/* A broadcast has its own table (--wait); its updates and cancels are said here like any. */
	if (!replaces && (alert->emergency || alert->n_addressees == 0))
		return;
	if ((r->tracked = track_of(c, alert_id)) == NULL || !replaces)
		return;
	r->earlier_known = true;
	for (size_t i = 0; i < alert->n_references && i < ALERT_MAX_REFERENCES; i++) {
		if ((r->earlier[i] = track_of(c, alert->references[i])) == NULL)
			r->earlier_known = false;
		r->n_earlier = i + 1;
	}
}

static void
withheld_report_free(struct withheld_report *r)
{
	local_frame_free(r->tracked);
	for (size_t i = 0; i < r->n_earlier; i++)
		local_frame_free(r->earlier[i]);
	memset(r, 0, sizeof(*r));
}

static enum withheld_kind
withheld_kind(const Xba__V1__Alert *alert, const struct withheld_report *r, const Xba__V1__RecipientState *rs)
{
	bool addressee = false;

	if (rs->state != XBA__V1__DELIVERY_STATE__DELIVERY_STATE_WITHHELD)
		return WITHHELD_NOT_WORTH_SAYING;
	for (size_t i = 0; i < alert->n_addressees && !addressee; i++)
		addressee = strcmp(alert->addressees[i], rs->node_id) == 0;
	/* An addressee that had an earlier version is told as a holder too: it goes on acting on that version. */
	if (alert->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE && alert->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL)
		return addressee ? WITHHELD_ADDRESSEE : WITHHELD_NOT_WORTH_SAYING;
	if (!r->earlier_known)
		return addressee ? WITHHELD_ADDRESSEE : WITHHELD_MAYBE_HOLDER;
	for (size_t i = 0; i < r->n_earlier; i++) {
		const Xba__V1__TrackReply *tr = r->earlier[i]->track_reply;

		for (size_t k = 0; k < tr->n_recipients; k++) {
			Xba__V1__DeliveryState st = tr->recipients[k]->state;

			/* REFUSED: held in that node's quarantine, and released to its officers by a region.yaml reload */
			if (strcmp(tr->recipients[k]->node_id, rs->node_id) == 0 &&
			    (st == XBA__V1__DELIVERY_STATE__DELIVERY_STATE_QUEUED ||
			     st == XBA__V1__DELIVERY_STATE__DELIVERY_STATE_DELIVERED ||
			     st == XBA__V1__DELIVERY_STATE__DELIVERY_STATE_ACKNOWLEDGED ||
			     st == XBA__V1__DELIVERY_STATE__DELIVERY_STATE_REFUSED))
				return addressee ? WITHHELD_ADDRESSEE_HOLDER : WITHHELD_HOLDER;
		}
	}
	return addressee ? WITHHELD_ADDRESSEE : WITHHELD_NOT_WORTH_SAYING;
}

/*
 * The broker's answer for alert_id as this agent's outgoing history holds it, as a frame like the PublishEvent the
 * agent pushes (*out, the caller's).  0 when the broker has answered (accepted or refused); -1 while it is queued,
 * or when the agent did not answer in timeout_ms.
 */
/* The agent's history entries for one alert id, its own and received (an agent holds both for at most two). */
static int
history_of_id(struct local_client *c, const char *id, int timeout_ms, Xba__V1__LocalFrame **reply,
    struct xba_error *err)
{
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT;
	Xba__V1__HistoryRequest hist = XBA__V1__HISTORY_REQUEST__INIT;
	Xba__V1__AlertFilter filter = XBA__V1__ALERT_FILTER__INIT;

	filter.include_outgoing = 1;
	hist.filter = &filter;
	hist.alert_id = (char *)id;
	hist.limit = 10;
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_HISTORY;
	req.history = &hist;
	return local_client_request(c, &req, reply, timeout_ms, err);
}

static int
ask_publish_state(struct local_client *c, const char *alert_id, int timeout_ms, Xba__V1__LocalFrame **out)
{
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL, *ev;
	Xba__V1__PublishEvent pe = XBA__V1__PUBLISH_EVENT__INIT;
	const Xba__V1__InboxEntry *e = NULL;
	struct xba_error err = { 0 };
	size_t len;
	uint8_t *buf;

	if (history_of_id(c, alert_id, timeout_ms, &reply, &err) != 0)
		return -1;
	for (size_t i = 0; reply->body_case == XBA__V1__LOCAL_FRAME__BODY_HISTORY_REPLY &&
	    i < reply->history_reply->n_entries; i++) {
		const Xba__V1__InboxEntry *x = reply->history_reply->entries[i];

		if (x->outgoing && x->alert != NULL && strcmp(x->alert->id, alert_id) == 0)
			e = x;
	}
	if (e == NULL || (e->publish_state != XBA__V1__PUBLISH_STATE__PUBLISH_STATE_ACCEPTED &&
	    e->publish_state != XBA__V1__PUBLISH_STATE__PUBLISH_STATE_REFUSED)) {
		local_frame_free(reply);
		return -1;
	}
	/* Packed and unpacked again: one frame the caller frees like any the agent sent. */
	pe.alert_id = (char *)alert_id;
	pe.state = e->publish_state;
	pe.result = e->publish_result;
	pe.seq = e->seq;
	pe.recipients = e->recipients;
	pe.message = e->publish_message;
	pe.field = e->publish_field;
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_PUBLISH_EVENT;
	req.publish_event = &pe;
	len = xba__v1__local_frame__get_packed_size(&req);
	buf = malloc(len ? len : 1);
	ev = NULL;
	if (buf != NULL) {
		xba__v1__local_frame__pack(&req, buf);
		ev = xba__v1__local_frame__unpack(NULL, len, buf);
		free(buf);
	}
	local_frame_free(reply);
	if (ev == NULL)
		return -1;
	*out = ev;
	return 0;
}

/* Submit and report: prints the alert id, then what the broker did within wait_ms.  Exit status per cli.h. */
int
cli_submit(const char *cmd, const struct local_target *target, Xba__V1__Alert *alert, int64_t expires_in_ms,
    int wait_ms, bool json, struct local_client **keep_client, char *alert_id_out, size_t alert_id_size)
{
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL, *ev = NULL;
	Xba__V1__SubmitRequest submit = XBA__V1__SUBMIT_REQUEST__INIT;
	struct xba_error err = { 0 };
	struct local_client *c;
	char alert_id[40] = "", new_id[XBA_UUID_LEN + 1];
	char *given_id = alert->id;
	int64_t deadline;
	int status = CLI_EXIT_OK, rc;
	bool lost = false; /* the connection dropped after the alert was queued: the answer is asked for */

	c = keep_client && *keep_client ? *keep_client : local_client_new(target, &err);
	if (c == NULL)
		return cli_usage_error("%s: %s", cmd, err.msg);
	/* The id is chosen here, not by the agent, so that an answer lost with a dying agent still leaves the officer
	 * an id to look for before sending the alert a second time (which would make it two alerts). */
	if ((alert->id == NULL || alert->id[0] == '\0') && syntax_uuid_new(new_id) == 0)
		alert->id = new_id;
	submit.alert = alert;
	submit.expires_in_ms = expires_in_ms;
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_SUBMIT;
	req.submit = &submit;
	if (local_client_request(c, &req, &reply, REQUEST_TIMEOUT_MS, &err) != 0) {
		bool unknown = local_client_request_sent(c) && alert->id != NULL && alert->id[0] != '\0';

		if (unknown) {
			cli_usage_error("%s: %s: NOT CONFIRMED. If the agent received the alert before it stopped, it is queued as "
					"%s and will be sent: look with `xba history --outgoing --id %s` once the agent answers, "
					"before you send it again (a second send makes a second alert)", cmd, err.msg, alert->id,
			    alert->id);
			if (json) {
				struct jsonw w;

				jsonw_begin(&w, stdout);
				jsonw_string(&w, "alert_id", alert->id);
				jsonw_string(&w, "state", "unknown");
				jsonw_string(&w, "message", err.msg);
				jsonw_end(&w);
			}
		} else {
			cli_usage_error("%s: %s (nothing was queued)", cmd, err.msg);
		}
		alert->id = given_id;
		if (!keep_client)
			local_client_free(c);
		return unknown ? CLI_EXIT_FAILED : CLI_EXIT_USAGE;
	}
	alert->id = given_id;
	if (reply->body_case == XBA__V1__LOCAL_FRAME__BODY_ERROR) {
		cli_usage_error("%s: the agent refused the request: %s", cmd, reply->error->message);
		status = CLI_EXIT_USAGE;
		goto out;
	}
	if (reply->body_case != XBA__V1__LOCAL_FRAME__BODY_SUBMIT_REPLY) {
		cli_usage_error("%s: unexpected answer from the agent", cmd);
		status = CLI_EXIT_USAGE;
		goto out;
	}
	if (reply->submit_reply->result != XBA__V1__ERROR_CODE__OK) {
		const Xba__V1__SubmitReply *r = reply->submit_reply;

		/* A malformed alert is bad input (2); a well-formed one the region's rules forbid is a "no" (1). */
		cli_usage_error("%s: not queued: %s: %s%s%s", cmd, frame_error_code_name(r->result),
		    r->field && r->field[0] ? r->field : "", r->field && r->field[0] ? ": " : "", r->message);
		status = r->result == XBA__V1__ERROR_CODE__INVALID_ALERT ||
			r->result == XBA__V1__ERROR_CODE__TLP_RED_NO_ADDRESSEES ||
			r->result == XBA__V1__ERROR_CODE__CLOCK_SKEW || r->result == XBA__V1__ERROR_CODE__ALERT_EXPIRED
		    ? CLI_EXIT_USAGE
		    : CLI_EXIT_FAILED;
		if (json) {
			/* A script reading stdout gets an answer too, not only the exit status. */
			struct jsonw w;

			jsonw_begin(&w, stdout);
			jsonw_string(&w, "alert_id", "");
			jsonw_string(&w, "state", "not_queued");
			jsonw_string(&w, "code", frame_error_code_name(r->result));
			jsonw_string(&w, "field", r->field ? r->field : "");
			jsonw_string(&w, "message", r->message ? r->message : "");
			jsonw_end(&w);
		}
		goto out;
	}
	snprintf(alert_id, sizeof(alert_id), "%s", reply->submit_reply->alert_id);
	if (alert_id_out != NULL)
		snprintf(alert_id_out, alert_id_size, "%s", alert_id);
	if (!json)
		printf("alert %s queued at the agent (signed, stored)\n", alert_id);
	fflush(stdout);

	deadline = clock_mono_ms() + wait_ms;
	status = CLI_EXIT_QUEUED; /* never reported as a success */
	while (wait_ms > 0) {
		int64_t left = deadline - clock_mono_ms();

		if (left <= 0)
			break;
		if (lost) {
			/* The agent sends the broker's answer to the connection that submitted, which is gone: ask its
			 * history instead, once a second, until the answer is there or the wait ends. */
			if (ask_publish_state(c, alert_id, left < 5000 ? (int)left : 5000, &ev) != 0) {
				struct timespec second = { .tv_sec = 1, .tv_nsec = 0 };

				if (clock_mono_ms() + 1000 < deadline)
					nanosleep(&second, NULL);
				continue;
			}
		} else if ((rc = local_client_next(c, &ev, (int)left, &err)) == XBA_EPROTO) {
			if (!json)
				fprintf(stderr, "xba: %s: %s; the alert is queued at the agent: asking it again for the "
				    "broker's answer\n", cmd, err.msg);
			lost = true;
			continue;
		} else if (rc != 0) {
			break;
		}
		if (ev->body_case == XBA__V1__LOCAL_FRAME__BODY_PUBLISH_EVENT &&
		    strcmp(ev->publish_event->alert_id, alert_id) == 0 &&
		    ev->publish_event->state != XBA__V1__PUBLISH_STATE__PUBLISH_STATE_QUEUED) {
			const Xba__V1__PublishEvent *pe = ev->publish_event;
			bool accepted = pe->state == XBA__V1__PUBLISH_STATE__PUBLISH_STATE_ACCEPTED;
			struct withheld_report report = { 0 };
			const Xba__V1__TrackReply *tr;

			if (accepted)
				withheld_report_build(c, alert, alert_id, &report);
			tr = report.tracked != NULL ? report.tracked->track_reply : NULL;

			if (json) {
				struct jsonw w;

				jsonw_begin(&w, stdout);
				jsonw_string(&w, "alert_id", alert_id);
				jsonw_string(&w, "state", accepted ? "accepted" : "refused");
				jsonw_string(&w, "result", frame_error_code_name(pe->result));
				jsonw_int(&w, "seq", (int64_t)pe->seq);
				jsonw_int(&w, "recipients", pe->recipients);
				jsonw_string(&w, "message", pe->message ? pe->message : "");
				if (tr != NULL) {
					jsonw_array_begin(&w, "withheld");
					for (size_t i = 0; i < tr->n_recipients; i++) {
						enum withheld_kind kind = withheld_kind(alert, &report, tr->recipients[i]);

						if (kind == WITHHELD_NOT_WORTH_SAYING)
							continue;
						jsonw_object_begin(&w, NULL);
						jsonw_string(&w, "node_id", tr->recipients[i]->node_id);
						jsonw_string(&w, "rule", tr->recipients[i]->rule);
						jsonw_string(&w, "why", kind == WITHHELD_ADDRESSEE ? "addressee"
						    : kind == WITHHELD_ADDRESSEE_HOLDER ? "addressee_has_earlier_version"
						    : kind == WITHHELD_HOLDER ? "has_earlier_version" : "may_have_earlier_version");
						jsonw_object_end(&w);
					}
					jsonw_array_end(&w);
				}
				jsonw_end(&w);
			} else if (accepted) {
				printf("accepted by the broker: %u recipient%s (journal seq %llu)%s\n", pe->recipients,
				    pe->recipients == 1 ? "" : "s", (unsigned long long)pe->seq,
				    pe->recipients == 0 ? (alert->n_addressees > 0
					? " -- WARNING: no one will receive it: no addressee is left (why, below)"
					: " -- WARNING: the rules chose nobody; no one will receive it") : "");
				for (size_t i = 0; tr != NULL && i < tr->n_recipients; i++) {
					const Xba__V1__RecipientState *rs = tr->recipients[i];
					enum withheld_kind kind = withheld_kind(alert, &report, rs);

					if (kind == WITHHELD_ADDRESSEE)
						printf("WARNING: %s, an addressee, will not receive it: withheld by %s\n",
						    rs->node_id, rs->rule);
					else if (kind == WITHHELD_HOLDER)
						printf("WARNING: not sent to %s (withheld by %s): it has an earlier version and "
						       "keeps it\n", rs->node_id, rs->rule);
					else if (kind == WITHHELD_ADDRESSEE_HOLDER)
						printf("WARNING: not sent to %s, an addressee (withheld by %s): it has an earlier "
						       "version and keeps it\n", rs->node_id, rs->rule);
					else if (kind == WITHHELD_MAYBE_HOLDER)
						printf("WARNING: not sent to %s (withheld by %s): if it had the alert, it keeps "
						       "the version it had\n", rs->node_id, rs->rule);
				}
			} else {
				printf("REFUSED by the broker: %s%s%s: %s\n", frame_error_code_name(pe->result),
				    pe->field && pe->field[0] ? " " : "", pe->field ? pe->field : "",
				    pe->message ? pe->message : "");
			}
			status = accepted ? (pe->recipients > 0 ? CLI_EXIT_OK : CLI_EXIT_FAILED) : CLI_EXIT_FAILED;
			withheld_report_free(&report);
			local_frame_free(ev);
			ev = NULL;
			break;
		}
		local_frame_free(ev);
		ev = NULL;
	}
	if (status == CLI_EXIT_QUEUED) {
		if (json) {
			struct jsonw w;

			jsonw_begin(&w, stdout);
			jsonw_string(&w, "alert_id", alert_id);
			jsonw_string(&w, "state", "queued");
			jsonw_end(&w);
		} else {
			print_why_queued(c);
		}
	}
out:
	local_frame_free(reply);
	if (keep_client != NULL)
		*keep_client = c;
	else
		local_client_free(c);
	return status;
}

/* After --wait ran out: say why the alert is still queued, as far as the agent knows (link, or a held outbox). */
static void
print_why_queued(struct local_client *c)
{
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL;
	Xba__V1__AgentStatusRequest status = XBA__V1__AGENT_STATUS_REQUEST__INIT;
	struct xba_error err = { 0 };
	char why[1024];

	req.body_case = XBA__V1__LOCAL_FRAME__BODY_STATUS;
	req.status = &status;
	if (local_client_request(c, &req, &reply, REQUEST_TIMEOUT_MS, &err) == 0 &&
	    reply->body_case == XBA__V1__LOCAL_FRAME__BODY_STATUS_REPLY) {
		const Xba__V1__AgentStatusReply *s = reply->status_reply;

		if (display_held_outbox(s, why, sizeof(why)) != NULL)
			printf("not yet confirmed by the broker: it stays queued at the agent.\n%s\n", why);
		else if (!s->link_up && s->link_problem != NULL && s->link_problem[0] != '\0')
			printf("not yet confirmed by the broker: it stays queued at the agent, but the link will not come "
			       "back by itself: %s. It goes out once that is fixed; tell the focal point\n",
			    display_clean(s->link_problem, why, sizeof(why)));
		else if (!s->link_up)
			printf("not yet confirmed by the broker (the link is down): it stays queued at the agent and goes "
			       "out when the link returns; check with: xba status, xba history --outgoing\n");
		else
			printf("not yet confirmed by the broker (the link is up; the broker has not answered yet): it stays "
			       "queued at the agent; check with: xba history --outgoing\n");
	} else {
		printf("not yet confirmed by the broker: it stays queued at the agent and goes out when it can; check "
		       "with: xba status, xba history --outgoing\n");
	}
	local_frame_free(reply);
}

static void
send_usage(FILE *out)
{
	fprintf(out,
	    "usage: xba send FILE.yaml [OPTIONS]\n"
	    "       xba send --category C --severity S --headline TEXT [OPTIONS]\n"
	    "\n"
	    "Sign and send an alert through this country's agent; print its id, then whether the broker accepted\n"
	    "it and for how many recipients, or why not.  The alert file format is in docs/alert-yaml.md.\n"
	    "\n"
	    "  --category C      border-incident, smuggling, trafficking, health, search-and-rescue,\n"
	    "                    population-movement, other\n"
	    "  --severity S      unknown, minor, moderate, severe, extreme\n"
	    "  --urgency U       unknown, past, future, expected, immediate (default expected)\n"
	    "  --certainty C     unknown, unlikely, possible, likely, observed (default likely)\n"
	    "  --status S        actual (default), exercise, system, test, draft\n"
	    "  --tlp T           clear, green, amber (default), amber+strict, red\n"
	    "  --to NODES        explicit addressees, comma-separated (DZA,LBY); required for --tlp red\n"
	    "  --lang TAG        starts a text block in that language (ar, fr, en...; default en); the\n"
	    "                    --headline/--event/--description/--instruction that follow belong to it\n"
	    "  --headline TEXT   one line (at most 160 bytes); required\n"
	    "  --event TEXT  --description TEXT  --instruction TEXT\n"
	    "  --area TEXT       an area description (polygons and circles: use an alert file)\n"
	    "  --param NAME=VAL  a parameter (people_count=45, vessel=..., route=...); repeatable\n"
	    "  --incident ID     incident id grouping related alerts\n"
	    "  --expires WHEN    RFC 3339 time, or a duration from now: 90m, 6h, 2d\n"
	    "  --author NAME     the officer (default: your login name)\n"
	    "  --note TEXT       why this message is sent (for a cancel: the reason)\n"
	    "  --update ID       a new version of an alert this country sent: what the flags leave out\n"
	    "                    (category, severity, TLP, addressees, areas ...) is taken from it, so that\n"
	    "                    it reaches the same nodes; --headline is required as for any alert\n"
	    "  --cancel ID       withdraw an alert this country sent (with --note REASON); it reaches the\n"
	    "                    same nodes as the alert, and needs no --headline\n"
	    "  --wait SECONDS    how long to wait for the broker's answer (default 15; 0 = do not wait)\n"
	    "  --json            print the outcome as one JSON object\n"
	    "%s"
	    "\n"
	    "exit status: 0 accepted by the broker with recipients; 1 refused (by the broker, or at once by the agent\n"
	    "             for what region.yaml forbids: not queued), accepted for nobody, or NOT CONFIRMED (may be\n"
	    "             queued: look before sending again); 2 not queued (bad input, agent unreachable);\n"
	    "             3 queued but not yet confirmed.  --json's state says which: accepted, refused,\n"
	    "             not_queued, unknown, queued\n",
	    local_target_usage);
}

enum send_option {
	OPT_CATEGORY = 1, OPT_SEVERITY, OPT_URGENCY, OPT_CERTAINTY, OPT_STATUS, OPT_TLP, OPT_TO, OPT_LANG,
	OPT_HEADLINE, OPT_EVENT, OPT_DESCRIPTION, OPT_INSTRUCTION, OPT_AREA, OPT_PARAM, OPT_INCIDENT, OPT_EXPIRES,
	OPT_AUTHOR, OPT_WAIT, OPT_JSON, OPT_TIMEOUT, OPT_HELP, OPT_NOTE, OPT_UPDATE, OPT_CANCEL,
};

static const struct option send_options[] = {
	{ "category", required_argument, NULL, OPT_CATEGORY },
	{ "severity", required_argument, NULL, OPT_SEVERITY },
	{ "urgency", required_argument, NULL, OPT_URGENCY },
	{ "certainty", required_argument, NULL, OPT_CERTAINTY },
	{ "status", required_argument, NULL, OPT_STATUS },
	{ "tlp", required_argument, NULL, OPT_TLP },
	{ "to", required_argument, NULL, OPT_TO },
	{ "lang", required_argument, NULL, OPT_LANG },
	{ "headline", required_argument, NULL, OPT_HEADLINE },
	{ "event", required_argument, NULL, OPT_EVENT },
	{ "description", required_argument, NULL, OPT_DESCRIPTION },
	{ "instruction", required_argument, NULL, OPT_INSTRUCTION },
	{ "area", required_argument, NULL, OPT_AREA },
	{ "param", required_argument, NULL, OPT_PARAM },
	{ "incident", required_argument, NULL, OPT_INCIDENT },
	{ "expires", required_argument, NULL, OPT_EXPIRES },
	{ "author", required_argument, NULL, OPT_AUTHOR },
	{ "note", required_argument, NULL, OPT_NOTE },
	{ "update", required_argument, NULL, OPT_UPDATE },
	{ "cancel", required_argument, NULL, OPT_CANCEL },
	{ "wait", required_argument, NULL, OPT_WAIT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	LOCAL_TARGET_OPTIONS,
	{ NULL, 0, NULL, 0 },
};

/* Text pasted from Windows or a phone ends its lines with CR LF.  The signed text's line break is LF alone (the
 * agent refuses a CR: a bare one redraws a terminal line), so a CR right before a LF is dropped, in place. */
static void
crlf_to_lf(char *s)
{
	char *w = s;

	for (const char *r = s; *r != '\0'; r++)
		if (r[0] != '\r' || r[1] != '\n')
			*w++ = *r;
	*w = '\0';
}

/* Parse send/broadcast flags into d.  Returns -1 to go on, or an exit status. */
static int
parse_alert_flags(const char *cmd, int argc, char **argv, struct draft *d, struct local_target *target, int *wait_s,
    int *timeout_s, bool *json, bool *any_alert_flag, void (*usage)(FILE *))
{
	int opt, value;
	char *end;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", send_options, NULL)) != -1) {
		Xba__V1__Info *info;

		if (local_target_option(target, opt, optarg))
			continue;
		if (opt != OPT_WAIT && opt != OPT_JSON && opt != OPT_HELP && opt != OPT_TIMEOUT && opt != OPT_AUTHOR)
			*any_alert_flag = true;
		switch (opt) {
		case OPT_CATEGORY:
			if (parse_enum(cmd, ALERT_ENUM_CATEGORY, optarg, &value) != 0)
				return CLI_EXIT_USAGE;
			d->alert.category = value;
			break;
		case OPT_SEVERITY:
			if (parse_enum(cmd, ALERT_ENUM_SEVERITY, optarg, &value) != 0)
				return CLI_EXIT_USAGE;
			d->alert.severity = value;
			break;
		case OPT_URGENCY:
			if (parse_enum(cmd, ALERT_ENUM_URGENCY, optarg, &value) != 0)
				return CLI_EXIT_USAGE;
			d->alert.urgency = value;
			break;
		case OPT_CERTAINTY:
			if (parse_enum(cmd, ALERT_ENUM_CERTAINTY, optarg, &value) != 0)
				return CLI_EXIT_USAGE;
			d->alert.certainty = value;
			break;
		case OPT_STATUS:
			if (parse_enum(cmd, ALERT_ENUM_STATUS, optarg, &value) != 0)
				return CLI_EXIT_USAGE;
			d->alert.status = value;
			d->status_set = true;
			break;
		case OPT_TLP:
			if (parse_enum(cmd, ALERT_ENUM_TLP, optarg, &value) != 0)
				return CLI_EXIT_USAGE;
			d->alert.tlp = value;
			break;
		case OPT_TO:
			if (add_addressees(cmd, d, optarg) != 0)
				return CLI_EXIT_USAGE;
			break;
		case OPT_LANG:
			if (!syntax_language_tag_valid(optarg))
				return cli_usage_error("%s: --lang '%s' is not a language tag (ar, fr, en, fr-NE ...)", cmd,
				    optarg);
			if (draft_info(d, optarg) == NULL)
				return cli_usage_error("%s: at most %d languages", cmd, ALERT_MAX_INFO);
			break;
		case OPT_HEADLINE:
		case OPT_EVENT:
		case OPT_DESCRIPTION:
		case OPT_INSTRUCTION:
			if ((info = draft_info(d, NULL)) == NULL)
				return cli_usage_error("%s: at most %d languages", cmd, ALERT_MAX_INFO);
			{
				char **slot = opt == OPT_HEADLINE ? &info->headline : opt == OPT_EVENT ? &info->event
					    : opt == OPT_DESCRIPTION ? &info->description : &info->instruction;

				/* The second would silently replace the first: an officer's text is never dropped. */
				if (*slot != NULL && (*slot)[0] != '\0')
					return cli_usage_error("%s: %s given twice for the '%s' text (each --lang starts a "
					    "new text; one of each per language)", cmd, opt == OPT_HEADLINE ? "--headline"
					    : opt == OPT_EVENT ? "--event" : opt == OPT_DESCRIPTION ? "--description"
					    : "--instruction", info->language);
				if (opt == OPT_DESCRIPTION || opt == OPT_INSTRUCTION)
					crlf_to_lf(optarg);
				*slot = optarg;
			}
			break;
		case OPT_AREA:
			if (d->alert.n_areas == ALERT_MAX_AREAS)
				return cli_usage_error("%s: at most %d areas", cmd, ALERT_MAX_AREAS);
			xba__v1__area__init(&d->area[d->alert.n_areas]);
			d->area[d->alert.n_areas].description = optarg;
			d->area_list[d->alert.n_areas] = &d->area[d->alert.n_areas];
			d->alert.n_areas++;
			break;
		case OPT_PARAM: {
			char *eq = strchr(optarg, '=');

			if (eq == NULL || eq == optarg)
				return cli_usage_error("%s: --param '%s' is not NAME=VALUE", cmd, optarg);
			if (d->alert.n_parameters == ALERT_MAX_PARAMS)
				return cli_usage_error("%s: at most %d parameters", cmd, ALERT_MAX_PARAMS);
			xba__v1__parameter__init(&d->param[d->alert.n_parameters]);
			d->param[d->alert.n_parameters].name = draft_own(d, strndup(optarg, (size_t)(eq - optarg)));
			d->param[d->alert.n_parameters].value = eq + 1;
			d->param_list[d->alert.n_parameters] = &d->param[d->alert.n_parameters];
			d->alert.n_parameters++;
			break;
		}
		case OPT_INCIDENT: d->alert.incident = optarg; break;
		case OPT_NOTE: d->alert.note = optarg; break;
		case OPT_UPDATE:
		case OPT_CANCEL:
			if (d->refers_to != NULL)
				return cli_usage_error("%s: give one --update or --cancel, not several", cmd);
			if (!cli_alert_id(optarg))
				return cli_usage_error("%s: --%s '%s' is not an alert id (a UUID, as xba history "
						       "prints it)", cmd, opt == OPT_UPDATE ? "update" : "cancel", optarg);
			d->refers_to = optarg;
			d->refers_type = opt == OPT_UPDATE ? XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE
							   : XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL;
			break;
		case OPT_EXPIRES: d->expires_text = optarg; break;
		case OPT_AUTHOR: d->alert.author = optarg; break;
		case OPT_WAIT:
		case OPT_TIMEOUT:
			value = (int)strtol(optarg, &end, 10);
			if (end == optarg || *end != '\0' || value < 0 || value > 86400)
				return cli_usage_error("%s: --%s '%s' is not a number of seconds", cmd,
				    opt == OPT_WAIT ? "wait" : "timeout", optarg);
			if (opt == OPT_WAIT)
				*wait_s = value;
			else if (timeout_s != NULL)
				*timeout_s = value;
			else
				return cli_usage_error("%s: unknown option --timeout (xba %s --help)", cmd, cmd);
			break;
		case OPT_JSON: *json = true; break;
		case OPT_HELP: usage(stdout); return CLI_EXIT_OK;
		default:
			return cli_usage_error("%s: unknown or incomplete option '%s' (xba %s --help)", cmd,
			    argv[optind - 1], cmd);
		}
	}
	return -1;
}

/* An update replaces the whole text: a language of the original that the update does not give is gone for the
 * officers who read it.  Said (not refused: an update in one language may be what is meant), with how to keep it. */
static void
note_dropped_languages(const char *cmd, const struct draft *d, const Xba__V1__Alert *original)
{
	char dropped[128] = "";
	const char *first = NULL;
	size_t len = 0;

	if (d->alert.n_info == 0)
		return; /* refused later: an update needs a text */
	for (size_t i = 0; i < original->n_info; i++) {
		const char *lang = original->info[i]->language;
		bool kept = false;

		for (size_t j = 0; j < d->alert.n_info && !kept; j++)
			kept = strcmp(d->alert.info[j]->language, lang) == 0;
		if (kept)
			continue;
		if (first == NULL)
			first = lang;
		if (len < sizeof(dropped))
			len += (size_t)snprintf(dropped + len, sizeof(dropped) - len, "%s%s", len ? ", " : "", lang);
	}
	if (first != NULL)
		fprintf(stderr, "%s: note: the alert was also in %s; this update is not, so those officers will read it in "
				"%s (give --lang %s --headline ... as well to keep that language)\n", cmd, dropped,
		    d->alert.info[0]->language, first);
}

/*
 * --update ID / --cancel ID: the alert this country sent, as its agent holds it.  What the flags leave unset is
 * taken from it (category, severity, urgency, certainty, TLP, status, addressees, incident, the emergency flag;
 * for an update also its areas, parameters and a future expiry), so that the routing rules send the update or
 * cancel to the same nodes as the alert itself.  CAP lets only an alert's sender update or cancel it (the broker
 * refuses the others), so an alert received from another country is refused here with its origin named.
 */
/* This agent's copy of alert id: *out points into *frame (replaced), NULL when none; *received the same for an
 * alert of that id in the inbox (another origin's).  Returns 0 or an exit status (error printed). */
static int
lookup_alert(const char *cmd, struct local_client *c, const char *id, Xba__V1__LocalFrame **frame,
    const Xba__V1__Alert **out, const Xba__V1__Alert **received)
{
	struct xba_error err = { 0 };

	*out = *received = NULL;
	local_frame_free(*frame);
	*frame = NULL;
	if (history_of_id(c, id, REQUEST_TIMEOUT_MS, frame, &err) != 0)
		return cli_usage_error("%s: %s (nothing was queued)", cmd, err.msg);
	if ((*frame)->body_case != XBA__V1__LOCAL_FRAME__BODY_HISTORY_REPLY)
		return cli_usage_error("%s: the agent refused to look up %s: %s (nothing was queued)", cmd, id,
		    (*frame)->body_case == XBA__V1__LOCAL_FRAME__BODY_ERROR ? (*frame)->error->message
									 : "unexpected answer");
	for (size_t i = 0; i < (*frame)->history_reply->n_entries; i++) {
		const Xba__V1__InboxEntry *e = (*frame)->history_reply->entries[i];

		if (e->alert == NULL || strcmp(e->alert->id, id) != 0)
			continue;
		if (e->outgoing)
			*out = e->alert;
		else
			*received = e->alert;
	}
	return 0;
}

/* An update or cancel this country sent after the alert, as the chain walk needs it. */
struct later {
	char id[XBA_UUID_LEN + 1];
	int type;
	int64_t sent_ms;
	char refs[ALERT_MAX_REFERENCES][XBA_UUID_LEN + 1];
	size_t n_refs;
};

#define CHAIN_SCAN_MAX 4096 /* updates and cancels sent since the alert that the walk reads at most */

static int
later_cmp(const void *a, const void *b)
{
	const struct later *x = a, *y = b;

	return x->sent_ms < y->sent_ms ? -1 : x->sent_ms > y->sent_ms;
}

/*
 * The versions of d->refers_to this country has sent since (its updates, and theirs, in order) into d->chain, and
 * the cancel that withdrew one of them into withdrawn_by ("" when none).  Read from the outgoing history since the
 * alert, refused ones left out.  Returns 0 or an exit status (error printed).
 */
static int
walk_chain(const char *cmd, struct local_client *c, struct draft *d, const Xba__V1__Alert *o, char *withdrawn_by,
    size_t withdrawn_size)
{
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL;
	Xba__V1__HistoryRequest hist = XBA__V1__HISTORY_REQUEST__INIT;
	Xba__V1__AlertFilter filter = XBA__V1__ALERT_FILTER__INIT;
	char *origins[1] = { o->origin };
	struct later *found = calloc(CHAIN_SCAN_MAX, sizeof(*found));
	size_t n_found = 0;
	struct xba_error err = { 0 };
	bool more = true;

	if (found == NULL)
		return cli_usage_error("%s: out of memory", cmd);
	filter.include_outgoing = 1;
	/* Submitted since the alert: its sent time may be up to a minute ahead of its submission (an alert file). */
	filter.since_ms = o->sent_ms > 120000 ? o->sent_ms - 120000 : 0;
	filter.origins = origins; /* the inbox holds none of this country's own: only the outgoing list is read */
	filter.n_origins = 1;
	hist.filter = &filter;
	hist.limit = 1000;
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_HISTORY;
	req.history = &hist;
	while (more && n_found < CHAIN_SCAN_MAX) {
		const Xba__V1__HistoryReply *h;

		if (local_client_request(c, &req, &reply, REQUEST_TIMEOUT_MS, &err) != 0 ||
		    reply->body_case != XBA__V1__LOCAL_FRAME__BODY_HISTORY_REPLY) {
			local_frame_free(reply);
			free(found);
			return cli_usage_error("%s: cannot read this country's sent alerts to find the later versions of "
			    "%s: %s (nothing was queued)", cmd, d->refers_to, err.msg[0] ? err.msg : "unexpected answer");
		}
		h = reply->history_reply;
		for (size_t i = 0; i < h->n_entries && n_found < CHAIN_SCAN_MAX; i++) {
			const Xba__V1__InboxEntry *e = h->entries[i];
			struct later *l = &found[n_found];

			if (!e->outgoing || e->alert == NULL ||
			    e->publish_state == XBA__V1__PUBLISH_STATE__PUBLISH_STATE_REFUSED ||
			    (e->alert->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE &&
			    e->alert->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL))
				continue;
			snprintf(l->id, sizeof(l->id), "%s", e->alert->id);
			l->type = e->alert->msg_type;
			l->sent_ms = e->alert->sent_ms;
			for (size_t k = 0; k < e->alert->n_references && k < ALERT_MAX_REFERENCES; k++)
				snprintf(l->refs[l->n_refs++], sizeof(l->refs[0]), "%s", e->alert->references[k]);
			n_found++;
		}
		more = h->more;
		hist.inbox_before = h->next_inbox_before;
		hist.outgoing_before = h->next_outgoing_before;
		local_frame_free(reply);
		reply = NULL;
	}
	qsort(found, n_found, sizeof(*found), later_cmp);
	snprintf(d->chain[0], sizeof(d->chain[0]), "%s", d->refers_to);
	d->n_chain = 1;
	withdrawn_by[0] = '\0';
	for (size_t i = 0; i < n_found && withdrawn_by[0] == '\0'; i++) {
		bool names_chain = false;

		for (size_t r = 0; r < found[i].n_refs && !names_chain; r++)
			for (size_t k = 0; k < d->n_chain && !names_chain; k++)
				names_chain = strcmp(found[i].refs[r], d->chain[k]) == 0;
		if (!names_chain)
			continue;
		if (found[i].type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL) {
			snprintf(withdrawn_by, withdrawn_size, "%s", found[i].id);
		} else {
			/* More versions than one message names (an older release made them): keep the newest, which a
			 * cancel must name and an update must follow; the oldest are dropped (walk_back says so). */
			if (d->n_chain == ALERT_MAX_REFERENCES) {
				memmove(d->chain[0], d->chain[1], (ALERT_MAX_REFERENCES - 1) * sizeof(d->chain[0]));
				d->n_chain--;
			}
			snprintf(d->chain[d->n_chain++], sizeof(d->chain[0]), "%s", found[i].id);
		}
	}
	free(found);
	return 0;
}

/*
 * Add to d->chain every version the versions in it replaced, and theirs, as far as this agent holds them: all the
 * references of each update (an update names every version before it; one of an older release named only the one
 * before).  *over says that more than fit in one message (ALERT_MAX_REFERENCES) were found.
 */
static int
walk_back(const char *cmd, struct local_client *c, struct draft *d, bool *over)
{
	Xba__V1__LocalFrame *frame = NULL;
	int rc = 0;

	*over = false;
	for (size_t i = 0; i < d->n_chain && rc == 0; i++) {
		const Xba__V1__Alert *cur = NULL, *received = NULL;
		char id[XBA_UUID_LEN + 1];

		snprintf(id, sizeof(id), "%s", d->chain[i]);
		if ((rc = lookup_alert(cmd, c, id, &frame, &cur, &received)) != 0)
			break;
		if (cur == NULL || cur->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE)
			continue; /* pruned from this agent, or the alert itself */
		for (size_t r = 0; r < cur->n_references; r++) {
			bool known = false;

			for (size_t k = 0; k < d->n_chain && !known; k++)
				known = strcmp(d->chain[k], cur->references[r]) == 0;
			if (known || !syntax_uuid_valid(cur->references[r]))
				continue;
			if (d->n_chain == ALERT_MAX_REFERENCES) {
				*over = true;
				continue;
			}
			snprintf(d->chain[d->n_chain++], sizeof(d->chain[0]), "%s", cur->references[r]);
		}
	}
	local_frame_free(frame);
	return rc;
}

/*
 * A cancel's TLP and addressees.  The TLP, unless the officer gave one (*tlp != 0), is the widest of its versions'
 * (the lowest), not the latest's: the routing rules send it where the alert went at that TLP.  (Before 2026-11-27
 * the broker added the nodes that had a version only within the cancel's own TLP, so this was what kept a GREEN
 * alert updated to AMBER+STRICT from staying live at the observers that had it; it now adds them whatever the TLP,
 * docs/rules.md §2 step 5, and a broker of an older release still needs this.)  The addressees, appended to d->addressees, are those of the versions sent at that TLP or a wider one (all of them
 * when the cancel is the narrowest), never those of a narrower version: a RED update's addressees must not travel
 * in a GREEN cancel.  Returns 0 or an exit status (error printed).
 */
static int
cancel_audience(const char *cmd, struct local_client *c, struct draft *d, const Xba__V1__Alert *latest,
    Xba__V1__Tlp *tlp)
{
	Xba__V1__LocalFrame *frame = NULL;
	Xba__V1__Tlp widest = latest->tlp;
	int rc = 0;

	/* Pass 0 finds the widest TLP; pass 1 takes the addressees of the versions at the cancel's TLP or wider. */
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		if (pass == 1 && *tlp == 0)
			*tlp = widest;
		/* A cancel wider than every version would take no version's addressees: the rules alone would route it,
		 * to nodes that never had the alert (a RED alert's withdrawal, and its note, to the whole region).  It
		 * tells nobody anything new, so it never needs to go wider than the alert went. */
		if (pass == 1 && *tlp < widest) {
			local_frame_free(frame);
			return cli_usage_error("%s: --cancel with --tlp %s is wider than every version of the alert (the "
			    "widest is %s): it would reach nodes the alert never went to; leave --tlp out (the cancel then "
			    "goes at %s to every node that had a version), or give --tlp %s or narrower (nothing was queued)",
			    cmd, alert_enum_name(ALERT_ENUM_TLP, *tlp), alert_enum_name(ALERT_ENUM_TLP, widest),
			    alert_enum_name(ALERT_ENUM_TLP, widest), alert_enum_name(ALERT_ENUM_TLP, widest));
		}
		for (size_t k = 0; k < d->n_chain; k++) {
			const Xba__V1__Alert *v = NULL, *received = NULL;

			if (strcmp(d->chain[k], latest->id) == 0) {
				v = latest;
			} else {
				if ((rc = lookup_alert(cmd, c, d->chain[k], &frame, &v, &received)) != 0)
					break;
				if (v == NULL) /* pruned from this agent's history: the others still decide */
					continue;
			}
			if (pass == 0) {
				if (v->tlp != 0 && v->tlp < widest)
					widest = v->tlp;
				continue;
			}
			if (v->tlp == 0 || v->tlp > *tlp)
				continue;
			for (size_t i = 0; i < v->n_addressees && d->alert.n_addressees < ALERT_MAX_ADDRESSEES; i++) {
				bool named = false;

				for (size_t j = 0; j < d->alert.n_addressees && !named; j++)
					named = strcmp(d->addressees[j], v->addressees[i]) == 0;
				if (!named && draft_own(d, strdup(v->addressees[i])) != NULL)
					d->addressees[d->alert.n_addressees++] = d->owned[d->n_owned - 1];
			}
		}
	}
	local_frame_free(frame);
	return rc;
}

/*
 * --update ID / --cancel ID: the alert as this agent holds it (only this country's own), its later versions, and
 * the fields the flags leave out taken from the latest, so that the rules route the message as they routed the
 * alert.  An update must name the latest version, and nothing withdrawn is updated or withdrawn again; a cancel
 * names every version, so that no receiver keeps one of them live.
 */
static int
draft_refer(const char *cmd, struct draft *d, const struct local_target *target)
{
	const char *flag = d->refers_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE ? "update" : "cancel";
	const Xba__V1__Alert *o = NULL, *received = NULL;
	struct xba_error err = { 0 };
	struct local_client *c;
	char withdrawn_by[XBA_UUID_LEN + 1] = "";
	size_t n_forward;
	bool over = false;
	int rc;

	if ((c = local_client_new(target, &err)) == NULL)
		return cli_usage_error("%s: %s (nothing was queued)", cmd, err.msg);
	if ((rc = lookup_alert(cmd, c, d->refers_to, &d->original, &o, &received)) != 0) {
		local_client_free(c);
		return rc;
	}
	if (o == NULL && received != NULL) {
		local_client_free(c);
		return cli_usage_error("%s: --%s %s: that alert came from %s; only its origin can %s it (nothing was "
				       "queued)", cmd, flag, d->refers_to, received->origin, flag);
	}
	if (o == NULL) {
		local_client_free(c);
		return cli_usage_error("%s: --%s %s: this country's agent holds no alert it sent with that id (xba "
				       "history --outgoing lists them; nothing was queued)", cmd, flag, d->refers_to);
	}
	if (o->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_ALERT && o->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE) {
		local_client_free(c);
		return cli_usage_error("%s: --%s %s: that is %s %s, not an alert or an update (nothing was queued)", cmd,
		    flag, d->refers_to, o->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ACK ? "an" : "a",
		    alert_enum_name(ALERT_ENUM_MSG_TYPE, o->msg_type));
	}
	if ((rc = walk_chain(cmd, c, d, o, withdrawn_by, sizeof(withdrawn_by))) != 0) {
		local_client_free(c);
		return rc;
	}
	if (withdrawn_by[0] != '\0') {
		local_client_free(c);
		return cli_usage_error("%s: --%s %s: it was withdrawn already, by %s (xba history --id %s); send a new "
				       "alert instead (nothing was queued)", cmd, flag, d->refers_to, withdrawn_by, withdrawn_by);
	}
	if (d->n_chain > 1 && d->refers_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE) {
		local_client_free(c);
		return cli_usage_error("%s: --update %s: it was replaced by a later version, %s; update that one (xba "
				       "send --update %s; nothing was queued)", cmd, d->refers_to, d->chain[d->n_chain - 1],
		    d->chain[d->n_chain - 1]);
	}
	/*
	 * An update or a cancel names every version before it, back to the alert: a node that had only an early one (a
	 * RED version in between went to one country) must still hear that it was replaced or withdrawn, and a
	 * recipient knows a version only by its id.  One message names at most ALERT_MAX_REFERENCES, so an alert
	 * takes at most that many versions: a cancel must be able to name them all.
	 */
	n_forward = d->n_chain;
	if ((rc = walk_back(cmd, c, d, &over)) != 0) {
		local_client_free(c);
		return rc;
	}
	if (d->refers_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE && (over || d->n_chain >= ALERT_MAX_REFERENCES)) {
		local_client_free(c);
		return cli_usage_error("%s: --update %s: the alert has %s%zu versions, the most one cancel can name: send "
		    "a new alert instead, and withdraw this one (xba send --cancel %s; nothing was queued)", cmd,
		    d->refers_to, over ? "more than " : "", d->n_chain, d->refers_to);
	}
	if (over)
		fprintf(stderr, "WARNING: the alert has more than %d versions (sent by an older release): the cancel names "
				"the newest %d, and a node that had only an older one keeps it\n", ALERT_MAX_REFERENCES,
		    ALERT_MAX_REFERENCES);
	/* A cancel of an alert that was updated: its fields come from the latest version, which the rules saw last. */
	if (n_forward > 1 && (rc = lookup_alert(cmd, c, d->chain[n_forward - 1], &d->original, &o, &received)) != 0) {
		local_client_free(c);
		return rc;
	}
	if (o == NULL) {
		local_client_free(c);
		return cli_usage_error("%s: --cancel %s: its latest version %s is no longer at this agent (nothing was "
				       "queued)", cmd, d->refers_to, d->chain[n_forward - 1]);
	}
	if (d->refers_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL) {
		Xba__V1__Tlp tlp = d->alert.tlp; /* --tlp, or 0: chosen here */
		size_t given = d->alert.n_addressees;

		if ((rc = cancel_audience(cmd, c, d, o, &tlp)) != 0) {
			local_client_free(c);
			return rc;
		}
		if (given > 0)
			d->alert.n_addressees = given;  /* --to: the officer's own */
		d->addressees_decided = true;       /* none is none: not the latest's, copied below */
		if (d->alert.tlp == 0 && tlp != o->tlp)
			fprintf(stderr, "note: the cancel goes at TLP %s, the widest of the alert's versions (the latest is "
					"%s), and its note is read at that TLP; every node that had one of them gets it either "
					"way (--tlp %s keeps the note narrower)\n",
			    alert_enum_name(ALERT_ENUM_TLP, tlp), alert_enum_name(ALERT_ENUM_TLP, o->tlp),
			    alert_enum_name(ALERT_ENUM_TLP, o->tlp));
		d->alert.tlp = tlp;
	}
	local_client_free(c);
	d->alert.msg_type = d->refers_type;
	for (size_t i = 0; i < d->n_chain; i++)
		d->reference[i] = d->chain[i];
	d->alert.references = d->reference;
	d->alert.n_references = d->n_chain;
	if (d->alert.category == 0)
		d->alert.category = o->category;
	if (d->alert.severity == 0)
		d->alert.severity = o->severity;
	if (d->alert.urgency == 0)
		d->alert.urgency = o->urgency;
	if (d->alert.certainty == 0)
		d->alert.certainty = o->certainty;
	if (d->alert.tlp == 0)
		d->alert.tlp = o->tlp;
	if (!d->status_set)
		d->alert.status = o->status;
	if (d->alert.n_addressees == 0 && !d->addressees_decided) {
		d->alert.addressees = o->addressees;
		d->alert.n_addressees = o->n_addressees;
	}
	if (d->alert.incident == NULL || d->alert.incident[0] == '\0') /* protobuf-c's default is "" */
		d->alert.incident = o->incident;
	d->alert.emergency = o->emergency;
	if (d->refers_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE) {
		if (d->alert.n_areas == 0) {
			d->alert.areas = o->areas;
			d->alert.n_areas = o->n_areas;
		}
		if (d->alert.n_parameters == 0) {
			d->alert.parameters = o->parameters;
			d->alert.n_parameters = o->n_parameters;
		}
		if (d->expires_text == NULL && o->expires_ms > clock_now_ms())
			d->alert.expires_ms = o->expires_ms;
		note_dropped_languages(cmd, d, o);
	}
	return 0;
}

/* Apply --expires now that the sent time is "now". */
static int
resolve_expiry(const char *cmd, struct draft *d)
{
	int64_t when, now = clock_now_ms(), absolute;

	if (d->expires_text == NULL)
		return 0;
	if (cli_parse_when(d->expires_text, now, &when) != 0)
		return cli_usage_error("%s: --expires '%s' is neither an RFC 3339 time nor a duration like 6h", cmd,
		    d->expires_text);
	if (when <= clock_now_ms())
		return cli_usage_error("%s: --expires '%s' is not in the future", cmd, d->expires_text);
	if (when - clock_now_ms() > ALERTYAML_MAX_DURATION_DAYS * 86400000LL)
		return cli_usage_error("%s: --expires '%s' is more than %d days ahead (as in an alert file)", cmd,
		    d->expires_text, ALERTYAML_MAX_DURATION_DAYS);
	d->alert.expires_ms = when;
	/* A duration is sent as one too: the agent counts it from the sent time it gives the alert, which is the
	 * region's when this machine's clock (or the agent's) is known to be wrong (protocol §2.7). */
	d->expires_in_ms = clock_parse_rfc3339(d->expires_text, &absolute) != 0 ? when - now : 0;
	return 0;
}

int
cmd_send(int argc, char **argv)
{
	struct local_target target;
	struct draft d;
	int wait_s = 15, rc;
	bool json = false, flags = false;
	Xba__V1__Alert *from_file = NULL, *alert;
	int64_t file_expires_in_ms = 0;
	struct xba_error err = { 0 };

	local_target_defaults(&target);
	draft_init(&d);
	rc = parse_alert_flags("send", argc, argv, &d, &target, &wait_s, NULL, &json, &flags, send_usage);
	if (rc >= 0) {
		draft_free(&d);
		return rc;
	}
	if (optind < argc) {
		if (optind + 1 < argc) {
			draft_free(&d);
			return cli_usage_error("send: one alert FILE at a time ('%s' and '%s' given; send each with its own "
			    "xba send)", argv[optind], argv[optind + 1]);
		}
		if (flags) {
			draft_free(&d);
			return cli_usage_error("send: give either an alert FILE or alert flags, not both (xba send --help)");
		}
		from_file = alertyaml_load_for_submit(argv[optind], &file_expires_in_ms, &err);
		if (from_file == NULL) {
			draft_free(&d);
			return cli_usage_error("send: %s (nothing was queued)", err.msg);
		}
		alert = from_file;
		if (d.alert.author != NULL && (alert->author == NULL || alert->author[0] == '\0') &&
		    alertyaml_set_text(&alert->author, d.alert.author, &err) != 0) {
			alertyaml_free(from_file);
			draft_free(&d);
			return cli_usage_error("send: %s", err.msg);
		}
	} else {
		if (!flags) {
			draft_free(&d);
			send_usage(stderr);
			return CLI_EXIT_USAGE;
		}
		if (d.refers_to != NULL && draft_refer("send", &d, &target) != 0) {
			draft_free(&d);
			return CLI_EXIT_USAGE;
		}
		if (d.alert.tlp == 0)
			d.alert.tlp = XBA__V1__TLP__TLP_AMBER;
		if (d.alert.urgency == 0)
			d.alert.urgency = XBA__V1__URGENCY__URGENCY_EXPECTED;
		if (d.alert.certainty == 0)
			d.alert.certainty = XBA__V1__CERTAINTY__CERTAINTY_LIKELY;
		if (resolve_expiry("send", &d) != 0) {
			draft_free(&d);
			return CLI_EXIT_USAGE;
		}
		alert = &d.alert;
	}
	if (alert->author == NULL || alert->author[0] == '\0') {
		if (alert == from_file) {
			if (alertyaml_set_text(&alert->author, local_officer_name(), &err) != 0) {
				alertyaml_free(from_file);
				draft_free(&d);
				return cli_usage_error("send: %s", err.msg);
			}
		} else
			alert->author = (char *)local_officer_name();
	}
	rc = check_draft("send", alert);
	if (rc == 0)
		rc = cli_submit("send", &target, alert, alert == &d.alert ? d.expires_in_ms : file_expires_in_ms,
		    wait_s * 1000, json, NULL, NULL, 0);
	alertyaml_free(from_file);
	draft_free(&d);
	return rc;
}

/* ---- broadcast ------------------------------------------------------------------------------------------ */

struct node_receipt {
	char node_id[XBA_NODE_ID_MAX + 1];
	int64_t delivered_ms, acknowledged_ms;
	bool delivered_guessed; /* delivered_ms is the acknowledgement's time: the DELIVERED receipt was lost (a link
				 * drop); the broker's track record puts the real one */
	int64_t refused_ms;     /* its agent refused it (quarantine); cleared if it is delivered later */
	char reason[65];        /* refused: the code */
	char officer[129];
	bool withheld;          /* the rules do not send it this broadcast (an exercise to members only, say) */
	bool not_in_region;     /* the agent's region.yaml no longer lists it (removed or suspended) */
};

/* Rows past which the table is not drawn again at each change in a file or pipe (one line per change instead). */
#define RECEIPT_TABLE_REDRAWN_MAX 40

struct receipt_table {
	struct node_receipt *rows; /* one per node the broker routed it to or withheld it from; owned */
	size_t n, cap;
	bool tty;
	int width;          /* display_width(): rows are wrapped there, never by the terminal */
	int lines_drawn;    /* for redrawing in place on a terminal: rows written, wrapped ones counted */
	bool by_line;       /* too tall to redraw (the screen, or a log file): a line per change, the table at the end */
	int id_width;       /* the NODE column: 14, or the longest node id (an observer's may take 31) */
};

/* node_id's row, added if new; NULL when out of memory (the caller skips that receipt). */
static struct node_receipt *
table_row(struct receipt_table *t, const char *node_id)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->rows[i].node_id, node_id) == 0)
			return &t->rows[i];
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 32;
		struct node_receipt *rows = realloc(t->rows, cap * sizeof(*rows));

		if (rows == NULL)
			return NULL;
		t->rows = rows;
		t->cap = cap;
	}
	memset(&t->rows[t->n], 0, sizeof(t->rows[0]));
	snprintf(t->rows[t->n].node_id, sizeof(t->rows[0].node_id), "%s", node_id);
	if (t->id_width < 14)
		t->id_width = 14;
	if ((int)strlen(t->rows[t->n].node_id) > t->id_width)
		t->id_width = (int)strlen(t->rows[t->n].node_id);
	return &t->rows[t->n++];
}

/*
 * A table taller than the terminal cannot be redrawn in place (the cursor does not go above the screen: each draw
 * left a partial copy behind), and one of 200 rows drawn again at each of 400 receipts fills a log file with
 * 80 000 lines.  Such a table is followed a line per change, and drawn once at the end.
 */
static void
table_choose_mode(struct receipt_table *t)
{
	int height = t->tty ? display_height() : 0;

	if (t->by_line)
		return;
	if (t->tty ? (height > 0 && (int)t->n + 3 > height) : t->n > RECEIPT_TABLE_REDRAWN_MAX)
		t->by_line = true;
}

/* In by-line mode: what changed for row r, and the counts. */
static void
table_line(struct receipt_table *t, const struct node_receipt *r)
{
	size_t delivered = 0, acked = 0, sent = 0;
	char when[32], text[256];

	for (size_t i = 0; i < t->n; i++) {
		sent += !t->rows[i].withheld;
		delivered += !t->rows[i].withheld && t->rows[i].delivered_ms != 0;
		acked += !t->rows[i].withheld && t->rows[i].acknowledged_ms != 0;
	}
	if (r->acknowledged_ms)
		display_print_wrapped(stdout, t->tty ? t->width : 0, "%-*s acknowledged %s by %s (delivered %zu/%zu, "
		    "acknowledged %zu/%zu)\n", t->id_width, r->node_id,
		    display_time(r->acknowledged_ms, when, sizeof(when)),
		    display_clean(r->officer, text, sizeof(text)), delivered, sent, acked, sent);
	else if (r->delivered_ms)
		display_print_wrapped(stdout, t->tty ? t->width : 0, "%-*s delivered %s (delivered %zu/%zu, "
		    "acknowledged %zu/%zu)\n", t->id_width, r->node_id, display_time(r->delivered_ms, when, sizeof(when)),
		    delivered, sent, acked, sent);
	else if (r->refused_ms)
		display_print_wrapped(stdout, t->tty ? t->width : 0, "%-*s REFUSED by its agent (%s): its officers do "
		    "not have it\n", t->id_width, r->node_id,
		    r->reason[0] ? display_clean(r->reason, text, sizeof(text)) : "?");
	fflush(stdout);
}

static void
table_draw(struct receipt_table *t)
{
	size_t delivered = 0, acked = 0, refused = 0, withheld = 0;
	char when[32], when2[32], text[256];
	int rows = 0;

	/* Rows are wrapped here, not by the terminal: an officer's name the width of a row must neither draw a row
	 * of its own ("LBY ... by lt-fathi") nor leave the redraw a line short. */
	/* A terminal resized since the last draw may have rewrapped those rows: draw the table again below them
	 * rather than move up by a count that no longer holds. */
	if (t->tty && display_width() != t->width) {
		t->width = display_width();
		t->lines_drawn = 0;
	}
	if (t->tty && t->lines_drawn > 0)
		printf("\033[%dA\033[J", t->lines_drawn);
	rows += display_print_wrapped(stdout, t->width, "%-*s %-22s %s\n", t->id_width < 14 ? 14 : t->id_width, "NODE",
	    "DELIVERED", "ACKNOWLEDGED");
	for (size_t i = 0; i < t->n; i++) {
		const struct node_receipt *r = &t->rows[i];

		if (r->withheld) {
			withheld++;
			rows += display_print_wrapped(stdout, t->width, "%-*s WITHHELD by the region's rules: it is not "
			    "sent this broadcast\n", t->id_width, r->node_id);
			continue;
		}
		delivered += r->delivered_ms != 0;
		acked += r->acknowledged_ms != 0;
		refused += r->refused_ms != 0 && r->delivered_ms == 0;
		if (r->refused_ms != 0 && r->delivered_ms == 0) {
			rows += display_print_wrapped(stdout, t->width, "%-*s REFUSED by its agent (%s): its officers do "
			    "not have it\n", t->id_width, r->node_id,
			    r->reason[0] ? display_clean(r->reason, text, sizeof(text)) : "?");
			continue;
		}
		if (r->acknowledged_ms)
			rows += display_print_wrapped(stdout, t->width, "%-*s %-22s %s by %s\n", t->id_width, r->node_id,
			    r->delivered_ms ? display_time(r->delivered_ms, when, sizeof(when)) : "-",
			    display_time(r->acknowledged_ms, when2, sizeof(when2)),
			    display_clean(r->officer, text, sizeof(text)));
		else
			rows += display_print_wrapped(stdout, t->width, "%-*s %-22s -\n", t->id_width, r->node_id,
			    r->delivered_ms ? display_time(r->delivered_ms, when, sizeof(when)) : "queued");
	}
	{
		char refused_text[40] = "", withheld_text[60] = "";

		if (refused > 0)
			snprintf(refused_text, sizeof(refused_text), ", REFUSED %zu", refused);
		if (withheld > 0)
			snprintf(withheld_text, sizeof(withheld_text), ", WITHHELD from %zu by the rules", withheld);
		rows += display_print_wrapped(stdout, t->width, "delivered %zu/%zu, acknowledged %zu/%zu%s%s\n", delivered,
		    t->n - withheld, acked, t->n - withheld, refused_text, withheld_text);
	}
	t->lines_drawn = rows;
	fflush(stdout);
}

/* Refresh the table from the broker's record (covers receipts sent before we listened); true when that changed
 * something in it. */
static bool
table_track(struct local_client *c, struct receipt_table *t, const char *alert_id)
{
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL;
	Xba__V1__TrackRequest track = XBA__V1__TRACK_REQUEST__INIT;
	struct xba_error err = { 0 };
	bool changed = false;

	track.alert_id = (char *)alert_id;
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_TRACK;
	req.track = &track;
	if (local_client_request(c, &req, &reply, REQUEST_TIMEOUT_MS, &err) != 0)
		return false;
	if (reply->body_case == XBA__V1__LOCAL_FRAME__BODY_TRACK_REPLY &&
	    reply->track_reply->result == XBA__V1__ERROR_CODE__OK) {
		for (size_t i = 0; i < reply->track_reply->n_recipients; i++) {
			const Xba__V1__RecipientState *rs = reply->track_reply->recipients[i];
			bool withheld = rs->state == XBA__V1__DELIVERY_STATE__DELIVERY_STATE_WITHHELD;
			size_t rows = t->n;
			struct node_receipt *r;

			if ((r = table_row(t, rs->node_id)) == NULL)
				continue;
			changed = changed || t->n != rows || r->withheld != withheld;
			r->withheld = withheld;
			r->not_in_region = rs->not_in_region;
			if (r->withheld)
				continue;
			if (rs->state == XBA__V1__DELIVERY_STATE__DELIVERY_STATE_REFUSED && r->delivered_ms == 0 &&
			    r->refused_ms == 0) {
				r->refused_ms = rs->time_ms ? rs->time_ms : clock_now_ms();
				snprintf(r->reason, sizeof(r->reason), "%s", rs->reason ? rs->reason : "");
				changed = true;
			}
			if (rs->state == XBA__V1__DELIVERY_STATE__DELIVERY_STATE_ACKNOWLEDGED && rs->delivered_ms != 0 &&
			    (r->delivered_ms == 0 || r->delivered_guessed)) {
				changed = changed || r->delivered_ms != rs->delivered_ms;
				r->delivered_ms = rs->delivered_ms;
				r->delivered_guessed = false;
			} else if ((rs->state == XBA__V1__DELIVERY_STATE__DELIVERY_STATE_DELIVERED ||
				rs->state == XBA__V1__DELIVERY_STATE__DELIVERY_STATE_ACKNOWLEDGED) &&
			    r->delivered_ms == 0) {
				r->delivered_ms = rs->time_ms ? rs->time_ms : clock_now_ms();
				r->delivered_guessed = rs->state == XBA__V1__DELIVERY_STATE__DELIVERY_STATE_ACKNOWLEDGED;
				changed = true;
			}
			if (rs->state == XBA__V1__DELIVERY_STATE__DELIVERY_STATE_ACKNOWLEDGED && r->acknowledged_ms == 0) {
				r->acknowledged_ms = rs->time_ms ? rs->time_ms : clock_now_ms();
				if (r->officer[0] == '\0')
					snprintf(r->officer, sizeof(r->officer), "%s", rs->officer != NULL &&
					    rs->officer[0] != '\0' ? rs->officer : "an officer");
				changed = true;
			}
		}
	}
	local_frame_free(reply);
	return changed;
}

static void
broadcast_usage(FILE *out)
{
	fprintf(out,
	    "usage: xba broadcast --headline TEXT [OPTIONS] [--wait [--timeout SECONDS]]\n"
	    "\n"
	    "Emergency broadcast to every node of the region, ahead of queued traffic.  Only nodes allowed to\n"
	    "broadcast (region.yaml may_broadcast) can send one.  With --wait, a live table shows for each node when\n"
	    "its agent received it and which officer acknowledged it.\n"
	    "\n"
	    "  --headline TEXT   required;  --lang TAG, --description, --instruction, --event as for xba send\n"
	    "  --category C      default other;  --severity S default extreme;  --urgency default immediate;\n"
	    "  --certainty       default observed;  --tlp default green;  --status default actual\n"
	    "  --area TEXT  --param NAME=VALUE  --incident ID  --expires WHEN  --author NAME  --note TEXT\n"
	    "  --update ID       a new version of a broadcast this country sent (its fields unless given)\n"
	    "  --cancel ID       withdraw a broadcast this country sent (with --note REASON; no --headline needed)\n"
	    "  --wait            follow receipts until every node acknowledged, or --timeout\n"
	    "  --timeout SECS    how long --wait follows receipts (default 300)\n"
	    "%s"
	    "\n"
	    "exit status: 0 accepted (and with --wait: delivered to every node); 1 refused, or not delivered to\n"
	    "every node before --timeout; 2 bad input or agent unreachable; 3 queued but not confirmed\n",
	    local_target_usage);
}

int
cmd_broadcast(int argc, char **argv)
{
	static const char *const wait_flag = "--wait";
	struct local_target target;
	struct receipt_table table = { .tty = isatty(STDOUT_FILENO), .width = display_width() };
	struct local_client *c = NULL;
	struct xba_error err = { 0 };
	struct draft d;
	char alert_id[40] = "";
	char **args = calloc((size_t)argc + 1, sizeof(*args));
	int nargs = 0, timeout_s = 300, wait_s = 15, rc;
	bool json = false, flags = false, follow = false;
	int64_t deadline, next_track, started;

	/* --wait is a flag here (follow receipts), not send's --wait SECONDS. */
	if (args == NULL)
		return cli_usage_error("broadcast: out of memory");
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], wait_flag) == 0)
			follow = true;
		else
			args[nargs++] = argv[i];
	}
	local_target_defaults(&target);
	draft_init(&d);
	rc = parse_alert_flags("broadcast", nargs, args, &d, &target, &wait_s, &timeout_s, &json, &flags,
	    broadcast_usage);
	if (rc < 0 && optind < nargs)
		rc = cli_usage_error("broadcast: unexpected argument '%s' (xba broadcast --help)", args[optind]);
	if (rc >= 0) {
		free(args);
		draft_free(&d);
		return rc;
	}
	if (d.refers_to != NULL && draft_refer("broadcast", &d, &target) != 0) {
		free(args);
		draft_free(&d);
		return CLI_EXIT_USAGE;
	}
	d.alert.emergency = 1;
	if (d.alert.category == 0)
		d.alert.category = XBA__V1__CATEGORY__CATEGORY_OTHER;
	if (d.alert.severity == 0)
		d.alert.severity = XBA__V1__SEVERITY__SEVERITY_EXTREME;
	if (d.alert.urgency == 0)
		d.alert.urgency = XBA__V1__URGENCY__URGENCY_IMMEDIATE;
	if (d.alert.certainty == 0)
		d.alert.certainty = XBA__V1__CERTAINTY__CERTAINTY_OBSERVED;
	if (d.alert.tlp == 0)
		d.alert.tlp = XBA__V1__TLP__TLP_GREEN;
	if (d.alert.author == NULL || d.alert.author[0] == '\0')
		d.alert.author = (char *)local_officer_name();
	if (resolve_expiry("broadcast", &d) != 0 || check_draft("broadcast", &d.alert) != 0) {
		free(args);
		draft_free(&d);
		return CLI_EXIT_USAGE;
	}
	if (follow) {
		/* Listen for receipts before sending, so none is missed. */
		Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL;
		Xba__V1__SubscribeRequest sub = XBA__V1__SUBSCRIBE_REQUEST__INIT;
		Xba__V1__AlertFilter filter = XBA__V1__ALERT_FILTER__INIT;

		target.keepalive = true; /* follows small receipts for minutes, as a watch does */
		if ((c = local_client_new(&target, &err)) == NULL) {
			free(args);
			draft_free(&d);
			return cli_usage_error("broadcast: %s (nothing was sent)", err.msg);
		}
		filter.since_ms = INT64_MAX; /* no stored alerts: only receipts matter here */
		sub.filter = &filter;
		sub.receipts = 1;
		req.body_case = XBA__V1__LOCAL_FRAME__BODY_SUBSCRIBE;
		req.subscribe = &sub;
		if (local_client_request(c, &req, &reply, REQUEST_TIMEOUT_MS, &err) != 0) {
			local_client_free(c);
			free(args);
			draft_free(&d);
			return cli_usage_error("broadcast: %s (nothing was sent)", err.msg);
		}
		local_frame_free(reply);
	}
	/* With --wait, --timeout covers the wait for the broker too: a link down for a minute must not end the
	 * command at 30 s with nobody following the broadcast. */
	started = clock_mono_ms();
	rc = cli_submit("broadcast", &target, &d.alert, d.expires_in_ms, (follow ? timeout_s : wait_s) * 1000, json,
	    follow ? &c : NULL, alert_id, sizeof(alert_id));
	draft_free(&d);
	free(args);
	if (!follow || rc != CLI_EXIT_OK) {
		local_client_free(c);
		return rc;
	}

	table_track(c, &table, alert_id);
	table_choose_mode(&table);
	if (table.by_line)
		printf("following %zu nodes: a line per change, the whole table at the end\n", table.n);
	else
		table_draw(&table);
	deadline = started + (int64_t)timeout_s * 1000;
	next_track = clock_mono_ms() + 5000;
	for (;;) {
		Xba__V1__LocalFrame *ev = NULL;
		size_t decided = 0;
		int64_t now = clock_mono_ms(), wait = next_track - now;
		bool changed = false;

		/* Done when every node acknowledged it or its agent refused it: a refusal waits for an administrator
		 * (region.yaml), not for minutes; `xba track` shows a later release. */
		for (size_t i = 0; i < table.n; i++)
			decided += table.rows[i].acknowledged_ms != 0 || table.rows[i].withheld ||
			    (table.rows[i].refused_ms != 0 && table.rows[i].delivered_ms == 0);
		if ((table.n > 0 && decided == table.n) || now >= deadline)
			break;
		if (wait > deadline - now)
			wait = deadline - now;
		rc = local_client_next(c, &ev, (int)(wait > 0 ? wait : 0), &err);
		if (rc == XBA_EPROTO && local_client_key_refused(c)) {
			/* libzmq does not try a refused key again: nothing more will come on this connection. */
			fprintf(stderr, "xba: broadcast: %s; the table stops here (xba track %s follows the broadcast)\n",
			    err.msg, alert_id);
			break;
		}
		if (rc == XBA_EPROTO) {
			/* The connection dropped (a LAN, an agent restart): its receipt subscription went with it.  Asked
			 * again, without waiting; the broker's record is read meanwhile, as every 5 s. */
			Xba__V1__LocalFrame again = XBA__V1__LOCAL_FRAME__INIT;
			Xba__V1__SubscribeRequest resub = XBA__V1__SUBSCRIBE_REQUEST__INIT;
			Xba__V1__AlertFilter none = XBA__V1__ALERT_FILTER__INIT;

			none.since_ms = INT64_MAX;
			resub.filter = &none;
			resub.receipts = 1;
			again.body_case = XBA__V1__LOCAL_FRAME__BODY_SUBSCRIBE;
			again.subscribe = &resub;
			local_client_send(c, &again, 1000, &err);
			next_track = clock_mono_ms();
		}
		if (rc == 0) {
			if (ev->body_case == XBA__V1__LOCAL_FRAME__BODY_RECEIPT_EVENT &&
			    strcmp(ev->receipt_event->alert_id, alert_id) == 0) {
				const Xba__V1__Receipt *r = ev->receipt_event;
				struct node_receipt *row = table_row(&table, r->node_id);

				bool row_changed = false;

				if (row != NULL && r->kind == XBA__V1__RECEIPT_KIND__RECEIPT_KIND_DELIVERED &&
				    row->delivered_ms == 0) {
					row->delivered_ms = r->time_ms;
					row_changed = true;
				} else if (row != NULL && r->kind == XBA__V1__RECEIPT_KIND__RECEIPT_KIND_REFUSED &&
				    row->delivered_ms == 0) {
					row->refused_ms = r->time_ms;
					snprintf(row->reason, sizeof(row->reason), "%s", r->note ? r->note : "");
					row_changed = true;
				} else if (row != NULL && r->kind == XBA__V1__RECEIPT_KIND__RECEIPT_KIND_ACKNOWLEDGED) {
					/* Its DELIVERED receipt never came (a link drop): the acknowledgement's time for now, and
					 * the delivery's own from the broker's record at the next look at it. */
					if (row->delivered_ms == 0) {
						row->delivered_ms = r->time_ms;
						row->delivered_guessed = true;
						next_track = clock_mono_ms();
					}
					row->acknowledged_ms = r->time_ms;
					snprintf(row->officer, sizeof(row->officer), "%s", r->officer);
					row_changed = true;
				}
				table_choose_mode(&table);
				if (row_changed && table.by_line)
					table_line(&table, row);
				else
					changed = changed || row_changed;
			}
			local_frame_free(ev);
		}
		if (clock_mono_ms() >= next_track) {
			/* Redrawn only when the broker's record changed something: in a log file, one table per change. */
			struct node_receipt *before = NULL;
			size_t n_before = table.n;

			if (table.by_line && (before = malloc((n_before + 1) * sizeof(*before))) != NULL)
				memcpy(before, table.rows, n_before * sizeof(*before));
			changed = table_track(c, &table, alert_id) || changed;
			for (size_t i = 0; before != NULL && i < n_before; i++)
				if (before[i].delivered_ms != table.rows[i].delivered_ms ||
				    before[i].acknowledged_ms != table.rows[i].acknowledged_ms ||
				    before[i].refused_ms != table.rows[i].refused_ms)
					table_line(&table, &table.rows[i]);
			free(before);
			next_track = clock_mono_ms() + 5000;
		}
		table_choose_mode(&table);
		if (changed && !table.by_line)
			table_draw(&table);
	}
	if (table.by_line)
		table.lines_drawn = 0; /* the whole table once, below the lines */
	table_draw(&table);
	local_client_free(c);
	for (size_t i = 0; i < table.n; i++) {
		if (table.rows[i].refused_ms != 0 && table.rows[i].delivered_ms == 0) {
			printf("REFUSED by the agent of at least one node (%s): %s; xba track shows a later release\n",
			    table.rows[i].reason[0] ? table.rows[i].reason : "?",
			    display_refusal_advice(table.rows[i].reason));
			free(table.rows);
			return CLI_EXIT_FAILED;
		}
	}
	{
		/* Name them, as the acknowledgement line does: in a table of 30 the officer should not have to look
		 * for the rows left empty.  A node the agent's region.yaml no longer lists is named apart: its agent
		 * connecting will not deliver it (the broker refuses that agent); only the working group putting it
		 * back will. */
		size_t undelivered = 0;
		char *text = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&text, &len);

		if (out == NULL)
			out = stdout;
		for (int pass = 0; pass < 2; pass++) {
			size_t named = 0;

			for (size_t i = 0; i < table.n; i++) {
				if (table.rows[i].delivered_ms != 0 || table.rows[i].withheld ||
				    table.rows[i].not_in_region != (pass == 1))
					continue;
				if (named++ == 0 && undelivered == 0)
					fprintf(out, "NOT DELIVERED within %d s to:", timeout_s);
				else if (named == 1)
					fputs("; nor to:", out);
				fprintf(out, " %s", table.rows[i].node_id);
			}
			if (named > 0 && pass == 0)
				fprintf(out, " (queued at the broker: delivered when that node's agent is connected; xba "
					     "track %s follows it)", alert_id);
			if (named > 0 && pass == 1)
				fprintf(out, " (no longer a node of this region: removed or suspended by the working group; "
					     "delivered only if the working group puts it back)");
			undelivered += named;
		}
		if (undelivered > 0)
			fputc('\n', out);
		if (out != stdout && fclose(out) == 0 && undelivered > 0)
			display_write_wrapped(stdout, table.tty ? table.width : 0, text, len);
		free(text);
		if (undelivered > 0) {
			free(table.rows);
			return CLI_EXIT_FAILED;
		}
	}
	{
		size_t unacked = 0, withheld = 0;

		for (size_t i = 0; i < table.n; i++) {
			unacked += table.rows[i].acknowledged_ms == 0 && !table.rows[i].withheld;
			withheld += table.rows[i].withheld;
		}
		/* Delivered everywhere is the success; who has not acknowledged it yet, and whom the rules left out,
		 * is said, not implied. */
		char *text = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&text, &len);

		/* Composed whole, then wrapped at the terminal's width: a list of 30 node ids must not be broken by the
		 * terminal in the middle of one. */
		if (out == NULL)
			out = stdout;
		if (withheld > 0) {
			fprintf(out, "NOT SENT to");
			for (size_t i = 0; i < table.n; i++)
				if (table.rows[i].withheld)
					fprintf(out, " %s", table.rows[i].node_id);
			fprintf(out, ": the region's rules withhold it from them (xba rules explain)\n");
		}
		if (unacked > 0) {
			fprintf(out, "delivered to every node%s; NOT ACKNOWLEDGED within %d s by:",
			    withheld > 0 ? " it was sent to" : "", timeout_s);
			for (size_t i = 0; i < table.n; i++)
				if (table.rows[i].acknowledged_ms == 0 && !table.rows[i].withheld)
					fprintf(out, " %s", table.rows[i].node_id);
			fprintf(out, " (xba track %s follows it)\n", alert_id);
		}
		/* Our own text: wrapped on a terminal only, so that a script reading a file or pipe finds it on one line. */
		if (out != stdout && fclose(out) == 0)
			display_write_wrapped(stdout, table.tty ? table.width : 0, text, len);
		free(text);
	}
	rc = table.n > 0 ? CLI_EXIT_OK : CLI_EXIT_FAILED;
	free(table.rows);
	return rc;
}
