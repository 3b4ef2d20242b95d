/*
 * cmd_ack.c — `xba ack ID [--note TEXT]`: an officer's acknowledgement of an alert in this country's inbox.  The
 * agent records it and sends a signed CAP-style ACK alert back to the alert's origin, which is how the originator
 * of an emergency broadcast sees "acknowledged by ..." in its receipts.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "alert.h"
#include "cli.h"
#include "localclient.h"
#include "syntax.h"

static void
ack_usage(FILE *out)
{
	fprintf(out,
	    "usage: xba ack ID [--note TEXT] [--officer NAME]\n"
	    "\n"
	    "Acknowledge alert ID (as shown by xba watch) on behalf of this country.  A signed acknowledgement goes\n"
	    "back to the alert's origin.\n"
	    "\n"
	    "  --note TEXT     a short note for the origin (at most %d bytes): \"team dispatched\"\n"
	    "  --officer NAME  who acknowledges (default: your login name)\n"
	    "%s"
	    "\n"
	    "exit status: 0 acknowledged; 1 not acknowledged: no such alert in this country's inbox, acknowledged\n"
	    "already, or its origin is no longer a node of this region; 2 bad input or agent unreachable\n",
	    ALERT_NOTE_MAX, local_target_usage);
}

int
cmd_ack(int argc, char **argv)
{
	static const struct option options[] = {
		{ "note", required_argument, NULL, 'n' },
		{ "officer", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		LOCAL_TARGET_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	Xba__V1__LocalFrame req = XBA__V1__LOCAL_FRAME__INIT, *reply = NULL;
	Xba__V1__AckRequest ack = XBA__V1__ACK_REQUEST__INIT;
	struct local_target target;
	struct xba_error err = { 0 };
	struct local_client *c;
	const char *note = "", *officer = local_officer_name();
	int opt, status;

	local_target_defaults(&target);
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (local_target_option(&target, opt, optarg))
			continue;
		switch (opt) {
		case 'n': note = optarg; break;
		case 'o': officer = optarg; break;
		case 'h': ack_usage(stdout); return CLI_EXIT_OK;
		default:
			return cli_usage_error("ack: unknown or incomplete option '%s' (xba ack --help)", argv[optind - 1]);
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("ack: expected exactly one alert ID (xba ack --help)");
	if (!cli_alert_id(argv[optind]))
		return cli_usage_error("ack: '%s' is not an alert id (a UUID, as xba watch shows it)",
		    argv[optind]);
	if (strlen(note) > ALERT_NOTE_MAX || !syntax_utf8_valid(note, strlen(note)))
		return cli_usage_error("ack: --note must be UTF-8 text of at most %d bytes", ALERT_NOTE_MAX);
	if (officer[0] == '\0' || strlen(officer) > ALERT_AUTHOR_MAX)
		return cli_usage_error("ack: --officer must be 1 to %d bytes", ALERT_AUTHOR_MAX);
	if ((c = local_client_new(&target, &err)) == NULL)
		return cli_usage_error("ack: %s", err.msg);
	ack.alert_id = argv[optind];
	ack.officer = (char *)officer;
	ack.note = (char *)note;
	req.body_case = XBA__V1__LOCAL_FRAME__BODY_ACK;
	req.ack = &ack;
	if (local_client_request(c, &req, &reply, 10000, &err) != 0) {
		bool sent = local_client_request_sent(c);

		local_client_free(c);
		if (!sent)
			return cli_usage_error("ack: %s (not acknowledged)", err.msg);
		/* The agent may have recorded it before it stopped; asking again is safe (a second ack is named). */
		cli_usage_error("ack: %s: NOT CONFIRMED; run the same xba ack again once the agent answers: it says whether "
				"this acknowledgement was recorded", err.msg);
		return CLI_EXIT_FAILED;
	}
	if (reply->body_case == XBA__V1__LOCAL_FRAME__BODY_ACK_REPLY &&
	    reply->ack_reply->result == XBA__V1__ERROR_CODE__OK) {
		printf("acknowledged %s as %s; acknowledgement %s queued to its origin\n", argv[optind], officer,
		    reply->ack_reply->ack_alert_id);
		status = CLI_EXIT_OK;
	} else if (reply->body_case == XBA__V1__LOCAL_FRAME__BODY_ACK_REPLY &&
	    reply->ack_reply->result == XBA__V1__ERROR_CODE__UNKNOWN_ALERT) {
		/* The agent knows why (not here, or this country's own alert) and says so. */
		cli_usage_error("ack: %s", reply->ack_reply->message);
		status = CLI_EXIT_FAILED;
	} else if (reply->body_case == XBA__V1__LOCAL_FRAME__BODY_ACK_REPLY &&
	    (reply->ack_reply->result == XBA__V1__ERROR_CODE__NOT_PERMITTED ||
		reply->ack_reply->result == XBA__V1__ERROR_CODE__KEY_NOT_VALID ||
		reply->ack_reply->result == XBA__V1__ERROR_CODE__KEY_REVOKED ||
		reply->ack_reply->result == XBA__V1__ERROR_CODE__UNKNOWN_KEY ||
		reply->ack_reply->result == XBA__V1__ERROR_CODE__CLOCK_SKEW)) {
		/* Not bad input either: the alert is there, but its origin has left the region, or this country's key
		 * cannot sign now, and the agent says so. */
		cli_usage_error("ack: NOT ACKNOWLEDGED: %s", reply->ack_reply->message);
		status = CLI_EXIT_FAILED;
	} else if (reply->body_case == XBA__V1__LOCAL_FRAME__BODY_ACK_REPLY &&
	    reply->ack_reply->result == XBA__V1__ERROR_CODE__DUPLICATE) {
		/* Not bad input: the thing asked for is already true.  Nothing is sent twice. */
		cli_usage_error("ack: %s; nothing sent again", reply->ack_reply->message);
		status = CLI_EXIT_FAILED;
	} else {
		cli_usage_error("ack: not acknowledged: %s",
		    reply->body_case == XBA__V1__LOCAL_FRAME__BODY_ACK_REPLY ? reply->ack_reply->message
		    : reply->body_case == XBA__V1__LOCAL_FRAME__BODY_ERROR ? reply->error->message
									 : "unexpected answer from the agent");
		status = CLI_EXIT_USAGE;
	}
	local_frame_free(reply);
	local_client_free(c);
	return status;
}
