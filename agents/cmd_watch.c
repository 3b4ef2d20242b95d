/*
 * cmd_watch.c — `xba watch` and `xba history`: the duty officer's view of what reached the country.  watch
 * subscribes to the agent and prints every matching alert the second it is stored (first the ones since --since),
 * with emergencies standing out until acknowledged; history reads the agent's store.  Both share the filters and
 * display.c's rendering.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "cli.h"
#include "clock.h"
#include "display.h"
#include "localclient.h"
#include "syntax.h"

#define EMERGENCY_REMINDER_MS 30000
/* A link down this long is said (--link-grace): shorter, it is a reconnect, which a flaky satellite link does all
 * day. */
#define LINK_DOWN_SAID_MS 30000
/* This often a watch asks the agent whether it still serves it (AgentStatusReply.watching), without waiting for
 * the answer: an agent drops a watch that falls 5 000 messages behind, and one that restarted knows it no longer.
 * The question also tells the agent this watch is alive (it may give the place of a silent one to a new watch). */
#define WATCH_PROBE_MS 15000
/* An answer this late is said: the agent is stuck, or the network between here and it holds everything. */
#define WATCH_PROBE_LATE_MS 20000
#define WATCH_SUBSCRIBE_TIMEOUT_MS 30000 /* the subscription's answer comes before its replay */
#define WATCH_RETRY_MAX_MS 15000         /* subscribing again while the agent cannot be reached: 1 s, doubling */
#define MAX_FILTER_VALUES 16
#define HISTORY_PAGE 1000 /* entries asked for in one request: what an agent holds in one reply at most */

struct filter_args {
	Xba__V1__AlertFilter filter;
	Xba__V1__Category categories[MAX_FILTER_VALUES];
	char *origins[MAX_FILTER_VALUES];
	int64_t remind_ms;               /* watch: how often unacknowledged emergencies are recalled; 0 = never */
	int64_t link_grace_ms;           /* watch: how long the link must be down before it is said */
	const char *save_path;           /* history --id ID --save FILE: where its signed envelope goes */
};

enum watch_option {
	OPT_CATEGORY = 1, OPT_MIN_SEVERITY, OPT_ORIGIN, OPT_SINCE, OPT_UNACKED, OPT_LANG, OPT_JSON, OPT_LIMIT,
	OPT_OUTGOING, OPT_ID, OPT_NO_COLOR, OPT_HELP, OPT_REMIND, OPT_SAVE, OPT_LINK_GRACE,
};

static const struct option watch_options[] = {
	{ "category", required_argument, NULL, OPT_CATEGORY },
	{ "min-severity", required_argument, NULL, OPT_MIN_SEVERITY },
	{ "origin", required_argument, NULL, OPT_ORIGIN },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "unacknowledged", no_argument, NULL, OPT_UNACKED },
	{ "lang", required_argument, NULL, OPT_LANG },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "limit", required_argument, NULL, OPT_LIMIT },
	{ "outgoing", no_argument, NULL, OPT_OUTGOING },
	{ "id", required_argument, NULL, OPT_ID },
	{ "no-color", no_argument, NULL, OPT_NO_COLOR },
	{ "remind", required_argument, NULL, OPT_REMIND },
	{ "save", required_argument, NULL, OPT_SAVE },
	{ "link-grace", required_argument, NULL, OPT_LINK_GRACE },
	{ "help", no_argument, NULL, OPT_HELP },
	LOCAL_TARGET_OPTIONS,
	{ NULL, 0, NULL, 0 },
};

static void
watch_usage(FILE *out, bool history)
{
	fprintf(out,
	    "usage: xba %s [FILTERS] [--lang TAG] [--json]%s\n"
	    "\n"
	    "%s\n"
	    "\n"
	    "  --category C[,C]      only these categories (health, smuggling, ...)\n"
	    "  --min-severity S      only this severity or worse (minor, moderate, severe, extreme)\n"
	    "  --origin NODE[,NODE]  only from these nodes\n"
	    "  --since WHEN          received since an RFC 3339 time or a duration ago (30m, 6h, 2d)\n"
	    "  --unacknowledged      only alerts no officer here has acknowledged\n"
	    "  --lang TAG            preferred language (default $XBA_LANG, then $LANG, then en)\n"
	    "  --json                one JSON object per line, for scripts\n"
	    "  --no-color            no colours even on a terminal\n"
	    "%s"
	    "%s",
	    history ? "history" : "watch", history ? " [--limit N] [--outgoing] [--id ID [--save FILE]]" : "",
	    history ? "Alerts this country's agent holds, newest first."
		    : "Every alert routed to this country, the second it arrives (after those since --since).\n"
		      "Emergency broadcasts ring the bell, show in reverse video and are recalled every 30 s until\n"
		      "acknowledged (xba ack ID), or withdrawn or replaced by their sender.  Stop with Ctrl-C.",
	    history ? "  --limit N             at most N alerts (default 100)\n"
		      "  --outgoing            also alerts this country sent, with what the broker did with them\n"
		      "  --id ID               just this alert, received or sent, however old; other languages with --lang\n"
		      "  --save FILE           with --id: write its signed envelope to FILE (0600), for xba verify\n"
		    : "  --remind SECONDS      recall unacknowledged emergencies this often (default 30; 0 = never)\n"
		      "  --link-grace SECONDS  say that the link to the broker is down once it has been for this long\n"
		      "                        (default 30: a shorter outage is a reconnect)\n",
	    local_target_usage);
}

static int
split_list(const char *cmd, const char *flag, char *list, char **out, size_t *n)
{
	char *save = NULL;

	for (char *tok = strtok_r(list, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		if (*n == MAX_FILTER_VALUES)
			return cli_usage_error("%s: at most %d values for --%s", cmd, MAX_FILTER_VALUES, flag);
		out[(*n)++] = tok;
	}
	return 0;
}

/* What this watch has told the officer about the agent's state (stderr), so that each change is said once. */
struct watch_state {
	bool link_down;              /* the agent's last status said the link is down */
	int64_t link_since_ms;       /* ... since then (agent's clock) */
	int64_t say_down_at;         /* mono time at which a down link is said, 0 = not pending */
	bool down_said;
	int64_t grace_ms;            /* --link-grace */
	char key_said[1024];         /* the key warning last printed ("" = none) */
	char link_problem[256];      /* why the link cannot come up, as the agent last said */
	bool clock_said;             /* a clock warning was printed and still holds */
	uint64_t probe_ref;          /* the status question in flight (WATCH_PROBE_MS), 0 = none */
	int64_t probe_sent_mono;     /* ... asked then; the next is asked WATCH_PROBE_MS after */
	bool probe_late_said;        /* "no answer from the agent" was printed */
	bool lost_said;              /* "no connection to the agent" was printed, and not yet its end */
	int64_t lost_since_ms;       /* ... since then (this machine's clock) */
};

/* An AgentStatusReply (the subscription's, or one the agent pushes when its link or key changes). */
static void
watch_status(struct watch_state *w, const Xba__V1__AgentStatusReply *s)
{
	char warning[1024], when[40];
	const char *key = display_key_warning(s, warning, sizeof(warning));

	if (key != NULL && strcmp(key, w->key_said) != 0)
		fprintf(stderr, "xba: %s\n", key);
	snprintf(w->key_said, sizeof(w->key_said), "%s", key != NULL ? key : "");
	display_clean(s->link_problem != NULL ? s->link_problem : "", w->link_problem, sizeof(w->link_problem));
	if (display_clock_warning(s, warning, sizeof(warning)) != NULL) {
		if (!w->clock_said)
			fprintf(stderr, "xba: %s\n", warning);
		w->clock_said = true;
	} else {
		w->clock_said = false;
	}
	if (!s->link_up && !w->link_down) {
		w->link_down = true;
		w->link_since_ms = s->link_since_ms;
		w->say_down_at = clock_mono_ms() + w->grace_ms;
	} else if (s->link_up && w->link_down) {
		if (w->down_said)
			fprintf(stderr, "xba: the link to the broker is UP again (it was down since %s): alerts arrive again\n",
			    display_time(w->link_since_ms, when, sizeof(when)));
		w->link_down = w->down_said = false;
		w->say_down_at = 0;
	}
}

/* Subscribe again, from the last alert shown (the replay's repeats are skipped by id).  0, or an error in err. */
static int
resubscribe(struct local_client *c, Xba__V1__LocalFrame *req, Xba__V1__AlertFilter *filter, int64_t last_received_ms,
    struct watch_state *state, bool quiet, struct xba_error *err)
{
	Xba__V1__LocalFrame *reply = NULL;

	if (last_received_ms > 0)
		filter->since_ms = last_received_ms;
	if (local_client_request(c, req, &reply, WATCH_SUBSCRIBE_TIMEOUT_MS, err) != 0)
		return -1;
	if (reply->body_case == XBA__V1__LOCAL_FRAME__BODY_ERROR) {
		/* The agent's watches are all taken, say: asked again at the next probe. */
		fprintf(stderr, "xba: watch: could not subscribe again: %s; trying again shortly\n",
		    reply->error->message);
	} else {
		if (reply->body_case == XBA__V1__LOCAL_FRAME__BODY_STATUS_REPLY)
			watch_status(state, reply->status_reply);
		if (!quiet)
			fprintf(stderr, "xba: watch: subscribed again\n");
	}
	local_frame_free(reply);
	return 0;
}

/*
 * Subscribe again until it works: a flapping link or an agent being restarted must not end a watch, which would
 * leave a duty officer looking at a quiet screen.  The first failure is said loudly, and so is the end of it.
 * Returns 0, or an exit status (the agent refused this officer key: nothing to wait for).
 */
static int
resubscribe_until(struct local_client *c, Xba__V1__LocalFrame *req, Xba__V1__AlertFilter *filter,
    int64_t last_received_ms, struct watch_state *state)
{
	struct xba_error err = { 0 };
	int64_t backoff = 1000, lost_since = state->lost_since_ms != 0 ? state->lost_since_ms : clock_now_ms();
	bool said = state->lost_said;
	char when[40];

	state->lost_said = false;
	state->lost_since_ms = 0;

	for (;;) {
		if (resubscribe(c, req, filter, last_received_ms, state, said, &err) == 0) {
			if (said)
				fprintf(stderr, "xba: watch: connected to the agent again (no connection since %s); subscribed "
				    "again: what it stored meanwhile follows\n", display_time(lost_since, when, sizeof(when)));
			return 0;
		}
		if (local_client_key_refused(c))
			return cli_usage_error("watch: %s", err.msg);
		if (!said)
			fprintf(stderr, "xba: !!! NO CONNECTION TO THE AGENT since %s: %s. This watch cannot show alerts until "
			    "it is back, and keeps trying (Ctrl-C to stop)\n", display_time(lost_since, when, sizeof(when)),
			    err.msg);
		said = true;
		{
			struct timespec wait = { .tv_sec = backoff / 1000, .tv_nsec = (backoff % 1000) * 1000000L };

			nanosleep(&wait, NULL);
		}
		backoff = backoff * 2 > WATCH_RETRY_MAX_MS ? WATCH_RETRY_MAX_MS : backoff * 2;
	}
}

/*
 * Ask, without waiting, whether the agent still serves this watch: every WATCH_PROBE_MS, busy or quiet.  The
 * answer is read by the loop like any frame (watch_probe_answer).  An answer that does not come is said.
 */
static void
watch_probe(struct local_client *c, struct watch_state *state, const char *endpoint)
{
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT;
	Xba__V1__AgentStatusRequest status = XBA__V1__AGENT_STATUS_REQUEST__INIT;
	struct xba_error err = { 0 };
	int64_t now = clock_mono_ms();

	if (state->probe_ref != 0) {
		if (now - state->probe_sent_mono < WATCH_PROBE_LATE_MS)
			return;
		if (!state->probe_late_said)
			fprintf(stderr, "xba: !!! NO ANSWER FROM THE AGENT at %s for %d s: this watch may be missing alerts "
			    "(the network between here and the agent holds everything, or the agent is stuck); it keeps "
			    "waiting\n", endpoint, WATCH_PROBE_LATE_MS / 1000);
		state->probe_late_said = true;
		/* Asked again: an answer can be lost for good (an agent that dropped this watch for falling 5 000
		 * messages behind could not queue its answer either), and only an answer ends the wait. */
	} else if (now - state->probe_sent_mono < WATCH_PROBE_MS) {
		return;
	}
	status.brief = true; /* no counts: asked every 15 s */
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_STATUS;
	req.status = &status;
	state->probe_sent_mono = now;
	if (local_client_send(c, &req, 1000, &err) == 0)
		state->probe_ref = req.ref;
}

/* A frame that answers the probe: true when the agent no longer serves this watch (subscribe again). */
static bool
watch_probe_answer(struct watch_state *state, const Xba__V1__LocalFrame *ev)
{
	if (state->probe_ref == 0 || ev->ref != state->probe_ref)
		return false;
	state->probe_ref = 0;
	if (state->probe_late_said)
		fprintf(stderr, "xba: watch: the agent answers again\n");
	state->probe_late_said = false;
	if (ev->body_case != XBA__V1__LOCAL_FRAME__BODY_STATUS_REPLY)
		return false;
	watch_status(state, ev->status_reply);
	return ev->status_reply->watching == 2;
}

/* A new connection: the probe in flight went with the old one. */
static void
watch_probe_reset(struct watch_state *state)
{
	state->probe_ref = 0;
	state->probe_late_said = false;
	state->probe_sent_mono = clock_mono_ms();
}

/* The down link, once it has lasted LINK_DOWN_SAID_MS. */
static void
watch_status_due(struct watch_state *w)
{
	char when[40];

	if (!w->link_down || w->down_said || w->say_down_at == 0 || clock_mono_ms() < w->say_down_at)
		return;
	fprintf(stderr, "xba: !!! THE LINK TO THE BROKER IS DOWN since %s: alerts from other countries cannot arrive "
	    "now, and what this country sends waits in its outbox (xba status; tell the focal point)%s%s\n",
	    w->link_since_ms ? display_time(w->link_since_ms, when, sizeof(when)) : "the agent started",
	    w->link_problem[0] ? ". It will not come back by itself: " : "", w->link_problem);
	w->down_said = true;
}

/* Shared option parsing; returns -1 to go on, or an exit status. */
static int
parse_watch_flags(const char *cmd, bool history, int argc, char **argv, struct filter_args *f,
    struct local_target *target, struct display_options *display, bool *json, uint32_t *limit, const char **id)
{
	int opt, value;
	char *end, *list[MAX_FILTER_VALUES];
	size_t n;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", watch_options, NULL)) != -1) {
		if (local_target_option(target, opt, optarg))
			continue;
		if (!history && (opt == OPT_LIMIT || opt == OPT_OUTGOING || opt == OPT_ID || opt == OPT_SAVE))
			return cli_usage_error("%s: --%s is an option of xba history, not of xba watch", cmd,
			    opt == OPT_LIMIT ? "limit" : opt == OPT_OUTGOING ? "outgoing" : opt == OPT_ID ? "id" : "save");
		if (opt == OPT_SAVE) {
			f->save_path = optarg;
			continue;
		}
		if (history && (opt == OPT_REMIND || opt == OPT_LINK_GRACE))
			return cli_usage_error("%s: --%s is an option of xba watch, not of xba history", cmd,
			    opt == OPT_REMIND ? "remind" : "link-grace");
		switch (opt) {
		case OPT_CATEGORY:
			n = 0;
			if (split_list(cmd, "category", optarg, list, &n) != 0)
				return CLI_EXIT_USAGE;
			for (size_t i = 0; i < n; i++) {
				if (alert_enum_parse(ALERT_ENUM_CATEGORY, list[i], &value) != 0)
					return cli_usage_error("%s: --category '%s' is not a category (border-incident, "
							       "smuggling, trafficking, health, search-and-rescue, "
							       "population-movement, other)", cmd, list[i]);
				if (f->filter.n_categories == MAX_FILTER_VALUES)
					return cli_usage_error("%s: too many categories", cmd);
				f->categories[f->filter.n_categories++] = (Xba__V1__Category)value;
			}
			break;
		case OPT_MIN_SEVERITY:
			if (alert_enum_parse(ALERT_ENUM_SEVERITY, optarg, &value) != 0)
				return cli_usage_error("%s: --min-severity '%s' is not one of unknown, minor, moderate, "
						       "severe, extreme", cmd, optarg);
			f->filter.min_severity = value;
			break;
		case OPT_ORIGIN:
			n = 0;
			if (split_list(cmd, "origin", optarg, list, &n) != 0)
				return CLI_EXIT_USAGE;
			for (size_t i = 0; i < n; i++) {
				if (!syntax_node_id_valid(list[i]))
					return cli_usage_error("%s: --origin '%s' is not a node id (DZA, NER, WHO-AFRO ...)",
					    cmd, list[i]);
				if (f->filter.n_origins == MAX_FILTER_VALUES)
					return cli_usage_error("%s: too many origins", cmd);
				f->origins[f->filter.n_origins++] = list[i];
			}
			break;
		case OPT_SINCE: {
			int64_t when, now = clock_now_ms();

			if (clock_parse_rfc3339(optarg, &when) == 0) {
				f->filter.since_ms = when;
			} else if (cli_parse_when(optarg, 0, &when) == 0) {
				f->filter.since_ms = now - when;
			} else {
				return cli_usage_error("%s: --since '%s' is neither an RFC 3339 time nor a duration like 6h",
				    cmd, optarg);
			}
			break;
		}
		case OPT_UNACKED: f->filter.unacknowledged_only = 1; break;
		case OPT_LANG:
			if (!syntax_language_tag_valid(optarg))
				return cli_usage_error("%s: --lang '%s' is not a language tag (ar, fr, en ...)", cmd, optarg);
			display->language = optarg;
			break;
		case OPT_JSON: *json = true; break;
		case OPT_LIMIT:
			value = (int)strtol(optarg, &end, 10);
			if (end == optarg || *end != '\0' || value < 1 || value > 100000)
				return cli_usage_error("%s: --limit '%s' is not a number from 1 to 100000", cmd, optarg);
			*limit = (uint32_t)value;
			break;
		case OPT_OUTGOING: f->filter.include_outgoing = 1; break;
		case OPT_ID:
			if (!cli_alert_id(optarg))
				return cli_usage_error("%s: --id '%s' is not an alert id (a UUID)", cmd, optarg);
			*id = optarg;
			break;
		case OPT_NO_COLOR: display->color = false; break;
		case OPT_REMIND:
		case OPT_LINK_GRACE:
			value = (int)strtol(optarg, &end, 10);
			if (end == optarg || *end != '\0' || value < 0 || value > 3600)
				return cli_usage_error("%s: --%s '%s' is not a number of seconds from 0 to 3600", cmd,
				    opt == OPT_REMIND ? "remind" : "link-grace", optarg);
			*(opt == OPT_REMIND ? &f->remind_ms : &f->link_grace_ms) = (int64_t)value * 1000;
			break;
		case OPT_HELP: watch_usage(stdout, history); return CLI_EXIT_OK;
		default:
			return cli_usage_error("%s: unknown or incomplete option '%s' (xba %s --help)", cmd,
			    argv[optind - 1], cmd);
		}
	}
	if (optind < argc)
		return cli_usage_error("%s: unexpected argument '%s' (xba %s --help)", cmd, argv[optind], cmd);
	f->filter.categories = f->categories;
	f->filter.origins = f->origins;
	return -1;
}

#define SEEN_MAX 1024

/* Whether id was shown recently (a ring of the last SEEN_MAX ids); records it if not. */
static bool
seen_before(char seen[][40], size_t *n_seen, const char *id)
{
	size_t n = *n_seen < SEEN_MAX ? *n_seen : SEEN_MAX;

	for (size_t i = 0; i < n; i++)
		if (strcmp(seen[i], id) == 0)
			return true;
	snprintf(seen[*n_seen % SEEN_MAX], 40, "%s", id);
	(*n_seen)++;
	return false;
}

/* Unacknowledged emergencies seen by this watch, recalled until acknowledged. */
struct pending_emergency {
	char id[40];
	char origin[XBA_NODE_ID_MAX + 1];
	char headline[200];
};

/* Every one is kept, in arrival order (a flood of emergencies must not push a real one out of the list); a
 * reminder names the newest RECALL_SHOWN and counts the others. */
#define RECALL_SHOWN 10

/* Remove entry i, keeping the order. */
static void
pending_remove(struct pending_emergency *pending, size_t *n_pending, size_t i)
{
	memmove(&pending[i], &pending[i + 1], (*n_pending - i - 1) * sizeof(*pending));
	(*n_pending)--;
}

/* An update or a cancel supersedes the emergencies it names, if it comes from their origin (the agent verified who
 * signed it; a cancel naming another node's alert is not obeyed, whatever the broker let through): they are no
 * longer recalled.  An update that is itself an emergency is recalled in their place. */
static void
withdraw_pending(struct pending_emergency *pending, size_t *n_pending, const Xba__V1__Alert *a, bool json)
{
	if (a->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE && a->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL)
		return;
	for (size_t r = 0; r < a->n_references; r++) {
		for (size_t i = 0; i < *n_pending; i++) {
			if (strcmp(pending[i].id, a->references[r]) != 0 || strcmp(pending[i].origin, a->origin) != 0)
				continue;
			if (!json)
				printf("%s: %s (%s) is no longer recalled\n\n", a->msg_type ==
				    XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL ? "withdrawn by its sender" : "replaced by its sender",
				    pending[i].id, pending[i].origin);
			pending_remove(pending, n_pending, i);
			break;
		}
	}
}

int
cmd_watch(int argc, char **argv)
{
	struct filter_args f;
	struct local_target target;
	struct display_options display = { .color = isatty(STDOUT_FILENO), .bell = isatty(STDOUT_FILENO),
		.language = display_default_language(), .width = display_width() };
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL;
	Xba__V1__SubscribeRequest sub = XBA__V1__SUBSCRIBE_REQUEST__INIT;
	struct pending_emergency *pending = NULL;
	size_t n_pending = 0, cap_pending = 0;
	struct xba_error err = { 0 };
	struct local_client *c;
	bool json = false;
	uint32_t limit = 0;
	const char *id = NULL;
	int rc;
	int64_t next_reminder, last_received_ms = 0;
	char warning[1024];
	struct watch_state state = { .grace_ms = 0 };
	char (*seen)[40] = calloc(SEEN_MAX, sizeof(*seen)); /* ids shown, to skip replays after a resubscription */
	size_t n_seen = 0;

	memset(&f, 0, sizeof(f));
	xba__v1__alert_filter__init(&f.filter);
	f.remind_ms = EMERGENCY_REMINDER_MS;
	f.link_grace_ms = LINK_DOWN_SAID_MS;
	local_target_defaults(&target);
	if (seen == NULL)
		return cli_usage_error("watch: out of memory");
	rc = parse_watch_flags("watch", false, argc, argv, &f, &target, &display, &json, &limit, &id);
	if (rc >= 0) {
		free(seen);
		return rc;
	}
	state.grace_ms = f.link_grace_ms;
	/* --remind 0: never; the loop then wakes only for events (an hour is as good as never between them). */
	next_reminder = clock_mono_ms() + (f.remind_ms > 0 ? f.remind_ms : 3600 * 1000);
	if (json)
		display.color = display.bell = false;
	target.keepalive = true; /* a watch waits on small frames for hours: a held link must show */
	if ((c = local_client_new(&target, &err)) == NULL) {
		free(seen);
		return cli_usage_error("watch: %s", err.msg);
	}
	sub.filter = &f.filter;
	sub.receipts = 1;
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_SUBSCRIBE;
	req.subscribe = &sub;
	if (local_client_request(c, &req, &reply, 10000, &err) != 0) {
		local_client_free(c);
		free(seen);
		return cli_usage_error("watch: %s", err.msg);
	}
	if (reply->body_case == XBA__V1__LOCAL_FRAME__BODY_ERROR) {
		cli_usage_error("watch: the agent refused: %s", reply->error->message);
		local_frame_free(reply);
		local_client_free(c);
		free(seen);
		return CLI_EXIT_USAGE;
	}
	/* The subscription is confirmed with the agent's status: a key that cannot sign, or a link down, is the
	 * officers' business too. */
	if (reply->body_case == XBA__V1__LOCAL_FRAME__BODY_STATUS_REPLY)
		watch_status(&state, reply->status_reply);
	local_frame_free(reply);
	watch_probe_reset(&state);
	if (!json)
		fprintf(stderr, "xba: watching (language %s); Ctrl-C to stop\n", display.language);
	for (;;) {
		Xba__V1__LocalFrame *ev = NULL;
		bool again = false;          /* subscribe again: the agent restarted, or no longer serves this watch */
		int64_t wake = state.say_down_at != 0 && !state.down_said && state.say_down_at < next_reminder
		    ? state.say_down_at : next_reminder;
		int64_t wait;

		int64_t probe_due = state.probe_ref != 0 ? state.probe_sent_mono + WATCH_PROBE_LATE_MS
							 : state.probe_sent_mono + WATCH_PROBE_MS;

		if (probe_due < wake)
			wake = probe_due;
		wait = wake - clock_mono_ms();
		rc = local_client_next(c, &ev, (int)(wait > 0 ? wait : 0), &err);
		if (rc == 0 && ev->ref != 0 && watch_probe_answer(&state, ev)) {
			fprintf(stderr, "xba: watch: the agent had stopped sending to this watch (it fell too far behind, or "
			    "the agent restarted); subscribing again from the last alert shown\n");
			again = true;
		}
		if (rc == 0 && ev->body_case == XBA__V1__LOCAL_FRAME__BODY_STATUS_REPLY && ev->ref == 0)
			watch_status(&state, ev->status_reply);
		if (rc == 0 && ev->body_case == XBA__V1__LOCAL_FRAME__BODY_ALERT_EVENT && ev->alert_event->alert) {
			const Xba__V1__InboxEntry *e = ev->alert_event;
			size_t at = n_pending;

			for (size_t i = 0; i < n_pending; i++)
				if (strcmp(pending[i].id, e->alert->id) == 0)
					at = i;
			/* Shown already: replayed after a resubscription (the agent restarted), acknowledged or not.  Only the
			 * news that an emergency this watch recalls was acknowledged gets through. */
			if (seen_before(seen, &n_seen, e->alert->id) && !(e->acknowledged && at < n_pending)) {
				local_frame_free(ev);
				continue;
			}
			if (e->received_ms > last_received_ms)
				last_received_ms = e->received_ms;
			display.width = display_width(); /* the terminal may have been resized since the last alert */
			if (e->acknowledged && at < n_pending) {
				/* An officer acknowledged an emergency this watch is recalling. */
				pending_remove(pending, &n_pending, at);
				if (json)
					display_entry_json(stdout, e);
				else
					display_print_wrapped(stdout, display.width, "acknowledged: %s (%s) by %s\n\n", e->alert->id,
					    e->alert->origin, display_clean(e->acknowledged_by, warning, sizeof(warning)));
			} else {
				if (json)
					display_entry_json(stdout, e);
				else
					display_entry(stdout, &display, e);
				withdraw_pending(pending, &n_pending, e->alert, json);
				/* Recalled from now on: an emergency nobody here acknowledged and its sender has not replaced or
				 * withdrawn, unless recalled already.  An update that replaced a recalled one is recalled in its
				 * place (the list is searched again: withdraw_pending has just shortened it); a cancel of one is
				 * not itself recalled. */
				at = n_pending;
				for (size_t i = 0; i < n_pending; i++)
					if (strcmp(pending[i].id, e->alert->id) == 0)
						at = i;
				/* Nor an emergency whose origin left the region: no acknowledgement can reach it (the entry says
				 * so), and a bell every 30 s for good would teach the room to ignore the bell. */
				if (e->alert->emergency && !e->acknowledged && e->superseded_type == 0 && at == n_pending &&
				    e->alert->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL && !e->origin_not_in_region) {
					const Xba__V1__Info *info = alert_info_for_language(e->alert, display.language);

					if (n_pending == cap_pending) {
						size_t cap = cap_pending ? 2 * cap_pending : 16;
						struct pending_emergency *grown = realloc(pending, cap * sizeof(*pending));

						if (grown == NULL) {
							local_frame_free(ev);
							local_client_free(c);
							free(seen);
							free(pending);
							return cli_usage_error("watch: out of memory");
						}
						pending = grown;
						cap_pending = cap;
					}

					snprintf(pending[n_pending].id, sizeof(pending[0].id), "%s", e->alert->id);
					snprintf(pending[n_pending].origin, sizeof(pending[0].origin), "%s", e->alert->origin);
					display_clean(info ? info->headline : "", pending[n_pending].headline,
					    sizeof(pending[0].headline));
					n_pending++;
				}
			}
			fflush(stdout);
		} else if (rc == 0 && ev->body_case == XBA__V1__LOCAL_FRAME__BODY_ERROR &&
			   ev->error->code == XBA__V1__ERROR_CODE__NOT_PERMITTED) {
			/* This officer's key was taken out of agent.yaml: the agent has ended the watch. */
			cli_usage_error("watch: the agent ended this watch: %s", ev->error->message);
			local_frame_free(ev);
			local_client_free(c);
			free(seen);
			free(pending);
			return CLI_EXIT_FAILED;
		} else if (rc == 0 && ev->body_case == XBA__V1__LOCAL_FRAME__BODY_ERROR) {
			fprintf(stderr, "xba: watch: the agent reports: %s\n", ev->error->message);
		} else if (rc == XBA_EPROTO) {
			/* The agent restarted, or the network dropped the connection (or held it past the pings): subscribe
			 * again from the last alert shown, skipping what was shown.  Said loudly: until then, nothing shows. */
			char when[40];

			state.lost_since_ms = clock_now_ms();
			state.lost_said = true;
			fprintf(stderr, "xba: !!! NO CONNECTION TO THE AGENT since %s: %s. This watch cannot show alerts until "
			    "it is back, and subscribes again as soon as it is (Ctrl-C to stop)\n",
			    display_time(state.lost_since_ms, when, sizeof(when)), err.msg);
			again = true;
		} else if (rc != 0 && rc != XBA_ENOTFOUND) {
			local_client_free(c);
			free(seen);
			free(pending);
			return cli_usage_error("watch: %s", err.msg);
		}
		local_frame_free(ev);
		/* A quiet watch must mean a quiet region, not one the agent stopped serving or a link that holds
		 * everything. */
		if (!again)
			watch_probe(c, &state, local_client_endpoint(c));
		if (again) {
			watch_probe_reset(&state);
			if ((rc = resubscribe_until(c, &req, &f.filter, last_received_ms, &state)) != 0) {
				local_client_free(c);
				free(seen);
				free(pending);
				return rc;
			}
		}
		watch_status_due(&state);
		if (clock_mono_ms() >= next_reminder) {
			display.width = display_width();
			if (!json && f.remind_ms > 0) {
				if (n_pending > RECALL_SHOWN)
					printf("%s%s!!! %zu UNACKNOWLEDGED EMERGENCIES; the %d newest below (all: xba history "
					    "--unacknowledged)%s\n", display.bell ? "\a" : "", display.color ? "\033[7m\033[1m" :
					    "", n_pending, RECALL_SHOWN, display.color ? "\033[0m" : "");
				for (size_t i = n_pending > RECALL_SHOWN ? n_pending - RECALL_SHOWN : 0; i < n_pending; i++)
					display_print_wrapped(stdout, display.width, "%s%s!!! UNACKNOWLEDGED EMERGENCY from %s: %s  (xba ack "
					    "%s)%s\n", display.bell ? "\a" : "", display.color ? "\033[7m\033[1m" : "",
					    pending[i].origin, pending[i].headline, pending[i].id, display.color ? "\033[0m" : "");
				fflush(stdout);
			}
			next_reminder = clock_mono_ms() + (f.remind_ms > 0 ? f.remind_ms : 3600 * 1000);
		}
	}
}

/* history --save: the entry's signed envelope, as delivered or sent, into path (0600: it may be TLP:RED). */
static int
save_envelope(const char *path, const Xba__V1__InboxEntry *e)
{
	FILE *out;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		return cli_usage_error("history: --save %s: %s", path, strerror(errno));
	if ((out = fdopen(fd, "wb")) == NULL) {
		close(fd);
		return cli_usage_error("history: --save %s: %s", path, strerror(errno));
	}
	{
		bool written = fwrite(e->envelope.data, 1, e->envelope.len, out) == e->envelope.len;

		if (fclose(out) != 0 || !written)
			return cli_usage_error("history: --save %s: cannot write: %s", path, strerror(errno));
	}
	fprintf(stderr, "xba: history: the signed alert %s is saved to %s (xba verify %s --region region.yaml)\n",
	    e->alert->id, path, path);
	return 0;
}

int
cmd_history(int argc, char **argv)
{
	struct filter_args f;
	struct local_target target;
	struct display_options display = { .color = isatty(STDOUT_FILENO), .bell = false,
		.language = display_default_language(), .width = display_width() };
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL;
	Xba__V1__HistoryRequest hist = XBA__V1__HISTORY_REQUEST__INIT;
	struct xba_error err = { 0 };
	struct local_client *c;
	bool json = false;
	uint32_t limit = 100;
	const char *id = NULL;
	size_t shown = 0;
	bool more = false, saved = false;
	int rc;

	memset(&f, 0, sizeof(f));
	xba__v1__alert_filter__init(&f.filter);
	local_target_defaults(&target);
	rc = parse_watch_flags("history", true, argc, argv, &f, &target, &display, &json, &limit, &id);
	if (rc >= 0)
		return rc;
	if (json)
		display.color = false;
	if (f.save_path != NULL && id == NULL)
		return cli_usage_error("history: --save needs --id ID (the alert whose signed envelope to save)");
	if ((c = local_client_new(&target, &err)) == NULL)
		return cli_usage_error("history: %s", err.msg);
	hist.filter = &f.filter;
	/* An agent of an earlier release ignores alert_id and the cursors: it answers one page, newest first, and the
	 * id is then found (or not) among those by the filter below. */
	hist.alert_id = (char *)(id != NULL ? id : "");
	/* An officer holding an id wants that alert, whether this country received it or sent it. */
	if (id != NULL)
		f.filter.include_outgoing = 1;
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_HISTORY;
	req.history = &hist;
	/* Page after page until --limit is reached or nothing more matches; printed as they come, newest first. */
	for (uint32_t asked = 0;;) {
		const Xba__V1__HistoryReply *h;
		size_t got;

		hist.limit = id != NULL ? HISTORY_PAGE : limit - asked < HISTORY_PAGE ? limit - asked : HISTORY_PAGE;
		if (local_client_request(c, &req, &reply, 30000, &err) != 0) {
			local_client_free(c);
			return cli_usage_error("history: %s", err.msg);
		}
		if (reply->body_case != XBA__V1__LOCAL_FRAME__BODY_HISTORY_REPLY) {
			cli_usage_error("history: the agent refused: %s", reply->body_case == XBA__V1__LOCAL_FRAME__BODY_ERROR ?
			    reply->error->message : "unexpected answer");
			local_frame_free(reply);
			local_client_free(c);
			return CLI_EXIT_USAGE;
		}
		h = reply->history_reply;
		for (size_t i = 0; i < h->n_entries; i++) {
			const Xba__V1__InboxEntry *e = h->entries[i];

			if (e->alert == NULL || (id != NULL && strcmp(e->alert->id, id) != 0))
				continue;
			/* The copy received here first: it is what the origin signed and this country verified. */
			if (f.save_path != NULL && (!saved || !e->outgoing)) {
				if (save_envelope(f.save_path, e) != 0) {
					local_frame_free(reply);
					local_client_free(c);
					return CLI_EXIT_USAGE;
				}
				saved = true;
			}
			if (json)
				display_entry_json(stdout, e);
			else
				display_entry(stdout, &display, e);
			shown++;
		}
		got = h->n_entries;
		asked += (uint32_t)got;
		more = h->more;
		hist.inbox_before = h->next_inbox_before;
		hist.outgoing_before = h->next_outgoing_before;
		local_frame_free(reply);
		reply = NULL;
		if (id != NULL || !more || got == 0 || asked >= limit)
			break;
	}
	if (!json && more && id == NULL)
		printf("(the newest %zu shown; more match: a larger --limit shows older ones)\n", shown);
	/* An id that is not here is an answer the caller acts on (exit 1), said where errors go; an empty list is not. */
	if (shown == 0 && id != NULL)
		cli_usage_error("history: no alert %s at this agent (neither received nor sent here)", id);
	else if (!json && shown == 0)
		printf("no alerts match\n");
	local_client_free(c);
	return id != NULL && shown == 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}
