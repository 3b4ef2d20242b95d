/*
 * cmd_status.c — `xba status` (is this country connected, is anything stuck in the outbox, when did the last
 * alert arrive) and `xba track ID` (for an alert this country sent: who has it, who acknowledged, who was withheld
 * and by which rule — the "fail loudly" view of DESIGN.md) and `xba quarantine` (the deliveries this country's
 * agent refused after its own verification, and why: the broker records them as refused, the inbox does not
 * have them).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clock.h"
#include "display.h"
#include "frame.h"
#include "jsonw.h"
#include "localclient.h"
#include "syntax.h"

/* Parse --json, --help and the target options; returns -1 to go on, or an exit status. */
static int
parse_simple(const char *cmd, int argc, char **argv, struct local_target *target, bool *json, bool *region,
    const char *usage)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "region", no_argument, NULL, 'r' },
		LOCAL_TARGET_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (local_target_option(target, opt, optarg))
			continue;
		if (opt == 'r' && region != NULL) {
			*region = true;
			continue;
		}
		switch (opt) {
		case 'j': *json = true; break;
		case 'h': printf("%s%s", usage, local_target_usage); return CLI_EXIT_OK;
		default:
			return cli_usage_error("%s: unknown or incomplete option '%s' (xba %s --help)", cmd, argv[optind - 1],
			    cmd);
		}
	}
	return -1;
}

/* One request/reply with the agent; *reply is the caller's.  Returns 0 or an exit status (error printed). */
static int
ask(const char *cmd, const struct local_target *target, Xba__V1__LocalFrame *req, Xba__V1__LocalFrame **reply)
{
	struct xba_error err = { 0 };
	struct local_client *c = local_client_new(target, &err);
	int rc;

	if (c == NULL)
		return cli_usage_error("%s: %s", cmd, err.msg);
	rc = local_client_request(c, req, reply, 20000, &err);
	local_client_free(c);
	if (rc != 0)
		return cli_usage_error("%s: %s", cmd, err.msg);
	if ((*reply)->body_case == XBA__V1__LOCAL_FRAME__BODY_ERROR) {
		cli_usage_error("%s: %s", cmd, (*reply)->error->message);
		local_frame_free(*reply);
		return CLI_EXIT_FAILED;
	}
	return 0;
}

/* " ID" appended to list (a NUL-terminated string in size bytes); " ..." once, when the next would not fit. */
static void
list_append(char *list, size_t size, const char *id)
{
	size_t len = strlen(list);

	if (len + strlen(id) + 6 < size)
		snprintf(list + len, size - len, " %s", id);
	else if (len + 5 < size && strstr(list, " ...") == NULL)
		snprintf(list + len, size - len, " ...");
}

/*
 * `xba status --region`: the broker's StatusReply, a row per node.  For the secretariat, the one view of who is
 * missing and what waits for them (before, only the broker's SIGUSR1 log records said it).
 */
static int
region_status(const struct local_target *target, bool json)
{
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL;
	Xba__V1__StatusRequest status = XBA__V1__STATUS_REQUEST__INIT;
	size_t missing = 0, id_width = 14;
	uint64_t waiting = 0, emergencies_down = 0;
	bool capped = false, emergencies_capped = false;
	char when[40], clean[80], missing_ids[1024] = "", stranded_ids[1024] = "";
	int rc;

	req.body_case = XBA__V1__LOCAL_FRAME__BODY_REGION_STATUS;
	req.region_status = &status;
	if ((rc = ask("status --region", target, &req, &reply)) != 0)
		return rc;
	if (reply->body_case != XBA__V1__LOCAL_FRAME__BODY_REGION_STATUS_REPLY) {
		local_frame_free(reply);
		return cli_usage_error("status --region: unexpected answer from the agent (is the agent older than this "
		    "xba?)");
	}
	const Xba__V1__StatusReply *r = reply->region_status_reply;
	/* A broker before 2026-11-27 fills neither role nor the emergency counts: zero would hide emergencies. */
	bool old_broker = r->n_nodes > 0;

	for (size_t i = 0; i < r->n_nodes; i++) {
		if (strlen(r->nodes[i]->node_id) > id_width)
			id_width = strlen(r->nodes[i]->node_id);
		old_broker &= r->nodes[i]->role[0] == '\0';
	}
	if (!json)
		printf("%-*s %-9s %-10s %-28s %s\n", (int)id_width, "NODE", "ROLE", "LINK", "LAST SEEN",
		    "WAITING AT THE BROKER");
	for (size_t i = 0; i < r->n_nodes; i++) {
		const Xba__V1__NodeStatus *n = r->nodes[i];

		waiting += n->queue_depth;
		capped |= n->queue_depth_capped;
		if (!n->connected) {
			missing++;
			list_append(missing_ids, sizeof(missing_ids), display_clean(n->node_id, clean, sizeof(clean)));
			/* An emergency waiting for a connected node is on its way; for one that is not, it is stuck. */
			if (n->emergency_depth > 0) {
				emergencies_down += n->emergency_depth;
				emergencies_capped |= n->emergency_depth_capped;
				list_append(stranded_ids, sizeof(stranded_ids), clean);
			}
		}
		if (json) {
			struct jsonw w;

			jsonw_begin(&w, stdout);
			jsonw_string(&w, "node_id", n->node_id);
			jsonw_string(&w, "role", n->role);
			jsonw_bool(&w, "connected", n->connected);
			jsonw_string(&w, "last_seen", n->last_seen_ms ? clock_format_rfc3339(n->last_seen_ms, when,
			    sizeof(when)) : "");
			jsonw_int(&w, "queue_depth", (int64_t)n->queue_depth);
			jsonw_bool(&w, "queue_depth_capped", n->queue_depth_capped);
			jsonw_bool(&w, "emergency_depth_capped", n->emergency_depth_capped);
			jsonw_bool(&w, "emergencies_counted", !old_broker); /* false: a broker before 2026-11-27 */
			jsonw_int(&w, "emergency_depth", (int64_t)n->emergency_depth);
			jsonw_int(&w, "cursor", (int64_t)n->cursor);
			jsonw_int(&w, "journal_head", (int64_t)r->journal_head);
			jsonw_string(&w, "rules_version", r->rules_version);
			jsonw_end(&w);
		} else {
			char role[16], depth[96];

			/* The broker stops counting a queue at 10 000: "10000+". */
			if (old_broker)
				snprintf(depth, sizeof(depth), "%llu (emergencies not counted)",
				    (unsigned long long)n->queue_depth);
			else if (n->emergency_depth > 0)
				snprintf(depth, sizeof(depth), "%llu%s (%llu%s EMERGENCY)", (unsigned long long)n->queue_depth,
				    n->queue_depth_capped ? "+" : "", (unsigned long long)n->emergency_depth,
				    n->emergency_depth_capped ? "+" : "");
			else
				snprintf(depth, sizeof(depth), "%llu%s", (unsigned long long)n->queue_depth,
				    n->queue_depth_capped ? "+" : "");
			/* The broker keeps last-seen times in memory: after its restart a node not back yet has none. */
			printf("%-*s %-9s %-10s %-28s %s\n", (int)id_width, display_clean(n->node_id, clean, sizeof(clean)),
			    display_clean(n->role, role, sizeof(role)), n->connected ? "connected" : "DOWN",
			    n->connected ? "now" : n->last_seen_ms ? display_time(n->last_seen_ms, when, sizeof(when))
								   : "not since the broker started",
			    depth);
		}
	}
	if (!json) {
		printf("%zu node%s, %zu not connected%s%s; %s%llu deliver%s waiting at the broker (journal head %llu, "
		       "rules %s)\n", r->n_nodes, r->n_nodes == 1 ? "" : "s", missing, missing ? ":" : "", missing_ids,
		    capped ? "at least " : "", (unsigned long long)waiting, waiting == 1 ? "y" : "ies",
		    (unsigned long long)r->journal_head,
		    /* The first 12 of the SHA-256, as the logs give it (--json has the whole). */
		    display_clean(r->rules_version, clean, 13));
		if (emergencies_down > 0)
			printf("EMERGENCY: %s%llu emergenc%s wait%s for nodes that are not connected (%s): call their focal "
			       "points\n", emergencies_capped ? "at least " : "", (unsigned long long)emergencies_down,
			    emergencies_down == 1 ? "y" : "ies", emergencies_down == 1 && !emergencies_capped ? "s" : "",
			    stranded_ids + 1);
		if (old_broker)
			printf("NOTE: the broker is of a release before 2026-11-27: it does not say how many of these are "
			       "emergencies (upgrade it)\n");
		/* A country's agent is shown only itself: say so, so that one row is not read as a region of one. */
		if (r->n_nodes == 1 && strcmp(r->nodes[0]->role, "admin") != 0)
			printf("(the broker shows a node only itself; the secretariat's admin node sees every node)\n");
	}
	rc = missing > 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
	local_frame_free(reply);
	return rc;
}

int
cmd_status(int argc, char **argv)
{
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL;
	Xba__V1__AgentStatusRequest status = XBA__V1__AGENT_STATUS_REQUEST__INIT;
	struct local_target target;
	bool json = false, region = false;
	char t1[40], t2[40], warning[1024];
	int rc;

	local_target_defaults(&target);
	rc = parse_simple("status", argc, argv, &target, &json, &region,
	    "usage: xba status [--json]\n"
	    "       xba status --region [--json]\n\n"
	    "The agent's link to the broker, its outbox and inbox.\n\n"
	    "--region asks the broker instead: every node of the region, connected or not, when it was last seen and\n"
	    "how many alerts (emergencies among them) wait at the broker for it.  The broker shows every node to an\n"
	    "admin node (the secretariat's agent) and to any other node only itself.  Exit status 1 when a node shown\n"
	    "is not connected.\n\n");
	if (rc >= 0)
		return rc;
	if (optind < argc)
		return cli_usage_error("status: unexpected argument '%s'", argv[optind]);
	if (region)
		return region_status(&target, json);
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_STATUS;
	req.status = &status;
	if ((rc = ask("status", &target, &req, &reply)) != 0)
		return rc;
	if (reply->body_case != XBA__V1__LOCAL_FRAME__BODY_STATUS_REPLY) {
		local_frame_free(reply);
		return cli_usage_error("status: unexpected answer from the agent");
	}
	const Xba__V1__AgentStatusReply *s = reply->status_reply;

	if (json) {
		struct jsonw w;

		jsonw_begin(&w, stdout);
		jsonw_string(&w, "node_id", s->node_id);
		jsonw_bool(&w, "link_up", s->link_up);
		jsonw_string(&w, "link_since", s->link_since_ms ? clock_format_rfc3339(s->link_since_ms, t1, sizeof(t1)) : "");
		jsonw_int(&w, "silent_ms", s->silent_ms);
		jsonw_int(&w, "next_attempt_in_ms", s->next_attempt_in_ms);
		if (s->clock_offset_known)
			jsonw_int(&w, "clock_offset_ms", s->clock_offset_ms);
		jsonw_string(&w, "link_problem", s->link_problem != NULL ? s->link_problem : "");
		jsonw_string(&w, "store_problem", s->store_problem != NULL ? s->store_problem : "");
		jsonw_string(&w, "store_problem_since", s->store_problem_since_ms ?
		    clock_format_rfc3339(s->store_problem_since_ms, t2, sizeof(t2)) : "");
		jsonw_bool(&w, "store_problem_locked", s->store_problem_locked);
		jsonw_string(&w, "broker_id", s->broker_id);
		jsonw_string(&w, "rules_version", s->rules_version);
		jsonw_int(&w, "outbox_depth", (int64_t)s->outbox_depth);
		jsonw_int(&w, "inbox_count", (int64_t)s->inbox_count);
		jsonw_int(&w, "unacknowledged", (int64_t)s->unacknowledged);
		jsonw_string(&w, "last_delivery",
		    s->last_delivery_ms ? clock_format_rfc3339(s->last_delivery_ms, t2, sizeof(t2)) : "");
		jsonw_int(&w, "through_seq", (int64_t)s->through_seq);
		jsonw_int(&w, "quarantined", (int64_t)s->quarantined);
		jsonw_int(&w, "acks_refused", (int64_t)s->acks_refused);
		jsonw_int(&w, "acks_waiting", (int64_t)s->acks_waiting);
		jsonw_int(&w, "alerts_refused_recent", (int64_t)s->alerts_refused_recent);
		jsonw_string(&w, "store_behind_since", s->store_behind_since_ms ?
		    clock_format_rfc3339(s->store_behind_since_ms, t1, sizeof(t1)) : "");
		jsonw_string(&w, "acks_waiting_until", s->acks_waiting_until_ms ?
		    clock_format_rfc3339(s->acks_waiting_until_ms, t1, sizeof(t1)) : "");
		jsonw_string(&w, "signing_key", s->signing_key);
		jsonw_string(&w, "signing_key_until", s->signing_key_until_ms ?
		    clock_format_rfc3339(s->signing_key_until_ms, t1, sizeof(t1)) : "");
		jsonw_bool(&w, "signing_key_expiring", s->signing_key_expiring);
		jsonw_string(&w, "signing_key_problem", s->signing_key_problem);
		jsonw_string(&w, "outbox_held_alert", s->outbox_held_alert);
		jsonw_string(&w, "outbox_held_code", s->outbox_held_alert[0] ? frame_error_code_name(s->outbox_held_code)
									 : "");
		jsonw_string(&w, "outbox_held_reason", s->outbox_held_reason);
		jsonw_bool(&w, "outbox_held_old_key", s->outbox_held_old_key);
		jsonw_string(&w, "outbox_held_key", s->outbox_held_key);
		jsonw_string(&w, "outbox_held_since", s->outbox_held_since_ms ?
		    clock_format_rfc3339(s->outbox_held_since_ms, t2, sizeof(t2)) : "");
		jsonw_end(&w);
	} else {
		printf("node            %s\n", s->node_id);
		printf("link            %s since %s%s%s", s->link_up ? "UP" : "DOWN",
		    s->link_since_ms ? display_time(s->link_since_ms, t1, sizeof(t1)) : "start",
		    s->broker_id && s->broker_id[0] ? ", broker " : "", s->broker_id ? s->broker_id : "");
		/* A link that died silently still reads UP until three heartbeats pass; a DOWN one waits its backoff. */
		if (s->link_up && s->silent_ms > 0)
			printf(" -- nothing heard from the broker for %lld s", (long long)(s->silent_ms / 1000));
		else if (!s->link_up && s->next_attempt_in_ms > 0)
			printf(", next attempt in %lld s", (long long)((s->next_attempt_in_ms + 999) / 1000));
		else if (!s->link_up)
			fputs(", connecting", stdout);
		putchar('\n');
		if (!s->link_up && s->link_problem != NULL && s->link_problem[0] != '\0')
			printf("REFUSED: %s\n", display_clean(s->link_problem, warning, sizeof(warning)));
		if (s->store_problem != NULL && s->store_problem[0] != '\0')
			printf("STORE: this agent cannot write its store since %s (%s). Meanwhile deliveries are not "
			       "acknowledged (the broker sends them again) and the broker's answers to this country's alerts "
			       "are not recorded (they show as waiting: do not send them again), and the link drops and "
			       "comes back. %s\n",
			    s->store_problem_since_ms ? display_time(s->store_problem_since_ms, t2, sizeof(t2)) : "start",
			    display_clean(s->store_problem, warning, sizeof(warning)),
			    /* Agents before field 29 say a lock only in SQLite's words ("database is locked"). */
			    s->store_problem_locked || strstr(s->store_problem, "database is locked") != NULL
				? "Another program holds the store locked (a sqlite3 shell or a backup tool left open?): "
				  "close it"
				: "Check the disk: full, or read-only (docs/operations.md, \"A full disk\")");
		if (display_clock_warning(s, warning, sizeof(warning)) != NULL)
			printf("%s\n", warning);
		printf("outbox          %llu waiting for the broker%s\n", (unsigned long long)s->outbox_depth,
		    s->outbox_depth && !s->link_up ? " (they go out when the link returns)" : "");
		if (display_held_outbox(s, warning, sizeof(warning)) != NULL)
			printf("%s\n", warning);
		printf("inbox           %llu alerts, %llu not acknowledged\n", (unsigned long long)s->inbox_count,
		    (unsigned long long)s->unacknowledged);
		printf("last delivery   %s\n", s->last_delivery_ms ? display_time(s->last_delivery_ms, t2, sizeof(t2))
								: "none yet");
		if (s->quarantined)
			printf("QUARANTINED     %llu deliveries failed this agent's own verification (xba quarantine)\n",
			    (unsigned long long)s->quarantined);
		/* An officer who ran xba ack has gone by the time the broker refuses it: this is where it is seen. */
		if (s->acks_refused)
			printf("ACKS REFUSED    %llu acknowledgement%s sent from here %s refused by the broker: %s origin%s "
			       "NOT told (xba history --outgoing shows which)\n", (unsigned long long)s->acks_refused,
			    s->acks_refused == 1 ? "" : "s", s->acks_refused == 1 ? "was" : "were",
			    s->acks_refused == 1 ? "its" : "their", s->acks_refused == 1 ? " was" : "s were");
		if (s->store_behind_since_ms)
			printf("STORE BEHIND    on %s the broker found this agent's store older than what it had delivered "
			       "here (restored from a backup, or lost): it sent those alerts again, but alerts acknowledged, "
			       "withdrawn or replaced here after the backup still show as they were then. Check with an "
			       "alert's origin before acting on one older than the backup (docs/operations.md section 7)\n",
			    display_time(s->store_behind_since_ms, t1, sizeof(t1)));
		if (s->alerts_refused_recent)
			printf("REFUSED         %llu alert%s sent from here %s refused by the broker in the last 7 days: "
			       "nobody received %s (xba history --outgoing shows which, and why)\n",
			    (unsigned long long)s->alerts_refused_recent, s->alerts_refused_recent == 1 ? "" : "s",
			    s->alerts_refused_recent == 1 ? "was" : "were", s->alerts_refused_recent == 1 ? "it" : "them");
		if (s->acks_waiting)
			printf("ACKS WAITING    %u acknowledgement%s sent from here %s for %s alert%s: the broker's journal "
			       "was restored from a backup that lacks %s, and %s origin%s not published %s again yet. "
			       "Tried again by itself until %s; nothing to do\n", s->acks_waiting,
			    s->acks_waiting == 1 ? "" : "s", s->acks_waiting == 1 ? "waits" : "wait",
			    s->acks_waiting == 1 ? "its" : "their", s->acks_waiting == 1 ? "" : "s",
			    s->acks_waiting == 1 ? "it" : "them", s->acks_waiting == 1 ? "its" : "their",
			    s->acks_waiting == 1 ? " has" : "s have", s->acks_waiting == 1 ? "it" : "them",
			    display_time(s->acks_waiting_until_ms, t1, sizeof(t1)));
		if (s->signing_key[0] == '\0')
			printf("signing key     none: an admin node publishes nothing (xba status --region shows the region)\n");
		else
			printf("signing key     %s, %s%s\n", s->signing_key, s->signing_key_until_ms ? "signs until "
												: "no end",
			    s->signing_key_until_ms ? display_time(s->signing_key_until_ms, t1, sizeof(t1)) : "");
		if (display_key_warning(s, warning, sizeof(warning)) != NULL)
			printf("%s\n", warning);
	}
	/* Any of these and this country cannot do its part: receive, or send. */
	rc = s->link_up && s->signing_key_problem[0] == '\0' && (s->store_problem == NULL || s->store_problem[0] == '\0')
	    ? CLI_EXIT_OK : CLI_EXIT_FAILED;
	local_frame_free(reply);
	return rc;
}

/* The broker has no alert id of this country's, or could not be asked (broker_asked false: the link is down):
 * say what this agent knows of it instead (still queued here, refused, accepted, another country's), so that the
 * officer is not sent looking for a lost alert. */
static void
explain_untracked(const struct local_target *target, const char *id, bool broker_asked)
{
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL;
	Xba__V1__HistoryRequest hist = XBA__V1__HISTORY_REQUEST__INIT;
	Xba__V1__AlertFilter filter = XBA__V1__ALERT_FILTER__INIT;
	const Xba__V1__InboxEntry *sent = NULL, *received = NULL;
	char clean[600];

	filter.include_outgoing = 1;
	hist.filter = &filter;
	hist.alert_id = (char *)id;
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_HISTORY;
	req.history = &hist;
	if (ask("track", target, &req, &reply) == 0 && reply->body_case == XBA__V1__LOCAL_FRAME__BODY_HISTORY_REPLY) {
		for (size_t i = 0; i < reply->history_reply->n_entries; i++) {
			const Xba__V1__InboxEntry *e = reply->history_reply->entries[i];

			if (e->alert != NULL && strcmp(e->alert->id, id) == 0)
				*(e->outgoing ? &sent : &received) = e;
		}
	}
	if (!broker_asked) {
		if (sent != NULL && sent->publish_state == XBA__V1__PUBLISH_STATE__PUBLISH_STATE_QUEUED)
			cli_usage_error("track: alert %s is still queued at this agent: it goes to the broker when the link "
			    "is back (xba status)", id);
		else if (sent != NULL && sent->publish_state == XBA__V1__PUBLISH_STATE__PUBLISH_STATE_ACCEPTED)
			cli_usage_error("track: alert %s was accepted by the broker (journal seq %llu, %u recipients); who "
			    "has it now, the broker says once the link is back", id, (unsigned long long)sent->seq,
			    sent->recipients);
	} else if (sent != NULL && sent->publish_state == XBA__V1__PUBLISH_STATE__PUBLISH_STATE_QUEUED)
		cli_usage_error("track: alert %s is still queued at this agent: the broker has not accepted it yet "
		    "(xba status says why)", id);
	else if (sent != NULL && sent->publish_state == XBA__V1__PUBLISH_STATE__PUBLISH_STATE_REFUSED)
		cli_usage_error("track: alert %s was refused by the broker (%s: %s): nobody received it", id,
		    frame_error_code_name(sent->publish_result), display_clean(sent->publish_message, clean,
		    sizeof(clean)));
	else if (sent == NULL && received != NULL)
		cli_usage_error("track: alert %s came from %s: only the country that sent an alert can track it", id,
		    received->alert->origin);
	else
		cli_usage_error("track: the broker has no alert %s sent by this country", id);
	local_frame_free(reply);
}

int
cmd_track(int argc, char **argv)
{
	static const char *const states[] = { "?", "queued", "delivered", "acknowledged", "withheld", "refused" };
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL;
	Xba__V1__TrackRequest track = XBA__V1__TRACK_REQUEST__INIT;
	struct local_target target;
	bool json = false;
	char when[32], clean[256];
	const char *first_refusal = NULL;
	int rc;

	local_target_defaults(&target);
	rc = parse_simple("track", argc, argv, &target, &json, NULL,
	    "usage: xba track ID [--json]\n\nFor an alert this country sent: every node it was routed to and its "
	    "state (queued,\ndelivered, acknowledged, or refused by that node's agent: its officers do not have it),\n"
	    "and every node it was withheld from, with the rule.\n\n");
	if (rc >= 0)
		return rc;
	if (optind + 1 != argc || !cli_alert_id(argv[optind]))
		return cli_usage_error("track: expected one alert ID (a UUID, as xba history prints it)");
	track.alert_id = argv[optind];
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_TRACK;
	req.track = &track;
	if ((rc = ask("track", &target, &req, &reply)) != 0) {
		if (rc == CLI_EXIT_FAILED) /* the agent answered, but could not ask the broker */
			explain_untracked(&target, argv[optind], false);
		return rc;
	}
	if (reply->body_case != XBA__V1__LOCAL_FRAME__BODY_TRACK_REPLY ||
	    reply->track_reply->result != XBA__V1__ERROR_CODE__OK) {
		local_frame_free(reply);
		explain_untracked(&target, argv[optind], true);
		return CLI_EXIT_FAILED;
	}
	const Xba__V1__TrackReply *r = reply->track_reply;
	size_t routed = 0, delivered = 0, acked = 0, refused = 0;
	int width = display_width();
	int id_width = 14; /* the node column: 14, or an observer's longer id (up to 32), so that the states line up */

	for (size_t i = 0; i < r->n_recipients; i++)
		if ((int)strlen(r->recipients[i]->node_id) > id_width)
			id_width = (int)strlen(r->recipients[i]->node_id);
	for (size_t i = 0; i < r->n_recipients; i++) {
		const Xba__V1__RecipientState *rs = r->recipients[i];
		unsigned st = rs->state <= 5 ? (unsigned)rs->state : 0;

		if (json) {
			struct jsonw w;

			jsonw_begin(&w, stdout);
			jsonw_string(&w, "alert_id", r->alert_id);
			jsonw_string(&w, "node_id", rs->node_id);
			jsonw_string(&w, "state", states[st]);
			jsonw_string(&w, "rule", rs->rule);
			jsonw_string(&w, "time", rs->time_ms ? clock_format_rfc3339(rs->time_ms, when, sizeof(when)) : "");
			if (st == 5)
				jsonw_string(&w, "reason", rs->reason);
			if (st == 3)
				jsonw_string(&w, "officer", rs->officer != NULL ? rs->officer : "");
			jsonw_bool(&w, "not_in_region", rs->not_in_region);
			jsonw_end(&w);
		} else if (st == 5) {
			display_print_wrapped(stdout, width, "%-*s %-13s %-22s rule %s: REFUSED by its agent (%s): its "
			    "officers do not have it\n",
			    id_width, rs->node_id, states[st], rs->time_ms ? display_time(rs->time_ms, when, sizeof(when)) : "-",
			    rs->rule, rs->reason && rs->reason[0] ? display_clean(rs->reason, clean, sizeof(clean)) : "?");
		} else {
			/* The acknowledging officer's name is the other country's text: wrapped here, so that it cannot
			 * make the terminal start a row that reads as another node's. */
			bool by = st == 3 && rs->officer != NULL && rs->officer[0] != '\0';

			/* Still queued for a node this agent's region.yaml no longer lists: it waits for the working
			 * group, not for that node's agent. */
			bool gone = st == 1 && rs->not_in_region;

			display_print_wrapped(stdout, width, "%-*s %-13s %-22s %s %s%s%s%s\n", id_width, rs->node_id,
			    states[st],
			    rs->time_ms ? display_time(rs->time_ms, when, sizeof(when)) : "-",
			    st == 4 ? "withheld by" : "rule", rs->rule, by ? ", by " : "",
			    by ? display_clean(rs->officer, clean, sizeof(clean)) : "",
			    gone ? ": no longer a node of this region (removed or suspended): delivered only if the "
				   "working group puts it back" : "");
		}
		if (st != 4)
			routed++;
		delivered += st == 2 || st == 3;
		acked += st == 3;
		refused += st == 5;
		if (st == 5 && first_refusal == NULL)
			first_refusal = rs->reason;
	}
	if (!json)
		printf("alert %s (journal seq %llu): routed to %zu, delivered %zu, acknowledged %zu%s", r->alert_id,
		    (unsigned long long)r->seq, routed, delivered, acked, refused ? ", REFUSED " : "\n");
	if (!json && refused)
		printf("%zu: %s\n", refused, display_refusal_advice(first_refusal));
	if (!json && delivered + refused < routed) {
		/* Named, as broadcast --wait names them: in 200 rows the officer should not have to look for them. */
		char *text = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&text, &len);

		if (out != NULL) {
			fputs("NOT DELIVERED yet to (queued at the broker):", out);
			for (size_t i = 0; i < r->n_recipients; i++)
				if (r->recipients[i]->state == XBA__V1__DELIVERY_STATE__DELIVERY_STATE_QUEUED)
					fprintf(out, " %s", r->recipients[i]->node_id);
			fputc('\n', out);
			if (fclose(out) == 0)
				display_write_wrapped(stdout, width, text, len);
			free(text);
		}
	}
	local_frame_free(reply);
	return delivered == routed ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

int
cmd_quarantine(int argc, char **argv)
{
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL;
	Xba__V1__QuarantineRequest quarantine = XBA__V1__QUARANTINE_REQUEST__INIT;
	struct local_target target;
	bool json = false;
	char when[40];
	int rc;

	local_target_defaults(&target);
	rc = parse_simple("quarantine", argc, argv, &target, &json, NULL,
	    "usage: xba quarantine [--json]\n\nDeliveries this agent's own verification refused and still holds, newest "
	    "first (at most 100):\nofficers do not see them, and the sender's xba track shows them REFUSED.  Nearly always this\n"
	    "agent's region.yaml is older than the sender's key: install the current file and\nreload the agent; it "
	    "verifies them again and releases what passes.\nExit status 1 while any are held.\n\n");
	if (rc >= 0)
		return rc;
	if (optind < argc)
		return cli_usage_error("quarantine: unexpected argument '%s'", argv[optind]);
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_QUARANTINE;
	req.quarantine = &quarantine;
	if ((rc = ask("quarantine", &target, &req, &reply)) != 0)
		return rc;
	if (reply->body_case != XBA__V1__LOCAL_FRAME__BODY_QUARANTINE_REPLY) {
		local_frame_free(reply);
		return cli_usage_error("quarantine: unexpected answer from the agent");
	}
	const Xba__V1__QuarantineReply *r = reply->quarantine_reply;

	for (size_t i = 0; i < r->n_entries; i++) {
		const Xba__V1__QuarantineEntry *e = r->entries[i];

		if (json) {
			struct jsonw w;

			jsonw_begin(&w, stdout);
			jsonw_int(&w, "seq", (int64_t)e->seq);
			jsonw_string(&w, "received", clock_format_rfc3339(e->received_ms, when, sizeof(when)));
			jsonw_string(&w, "code", frame_error_code_name(e->code));
			jsonw_string(&w, "reason", e->reason);
			jsonw_string(&w, "claimed_alert_id", e->alert_id);
			jsonw_string(&w, "claimed_origin", e->claimed_origin);
			jsonw_string(&w, "rule", e->rule);
			jsonw_end(&w);
		} else {
			printf("seq %-8llu %-22s %-16s alert %s from %s (claimed, not verified), rule %s\n    %s\n",
			    (unsigned long long)e->seq, display_time(e->received_ms, when, sizeof(when)),
			    frame_error_code_name(e->code), e->alert_id[0] ? e->alert_id : "(undecodable)",
			    e->claimed_origin[0] ? e->claimed_origin : "(unknown)", e->rule[0] ? e->rule : "-", e->reason);
		}
	}
	if (!json)
		printf("%llu held%s; verified again at every region.yaml reload and agent start\n",
		    (unsigned long long)r->held, r->held > r->n_entries ? " (the newest shown)" : "");
	rc = r->held > 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK; /* for monitoring: something is held */
	local_frame_free(reply);
	return rc;
}
