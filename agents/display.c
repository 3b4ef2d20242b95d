/*
 * display.c — renders alerts for officers (see display.h): the last step of an alert's journey, from a
 * country's inbox to a person in an operations room.
 */
#include "display.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "alert.h"
#include "clock.h"
#include "frame.h"
#include "jsonw.h"
#include "syntax.h"

#define ANSI_RESET "\033[0m"
#define ANSI_BOLD "\033[1m"
#define ANSI_REVERSE "\033[7m"
#define ANSI_RED "\033[31m"
#define ANSI_YELLOW "\033[33m"
#define ANSI_GREEN "\033[32m"
#define ANSI_DIM "\033[2m"
#define AREA_POINTS_SHOWN 12 /* of a polygon, in text; --json has them all */

const char *
display_default_language(void)
{
	static char lang[8];
	const char *env = getenv("XBA_LANG");
	size_t n;

	if (env != NULL && env[0] != '\0')
		return env;
	env = getenv("LANG");
	if (env == NULL || env[0] == '\0' || strcmp(env, "C") == 0 || strncmp(env, "C.", 2) == 0 ||
	    strcmp(env, "POSIX") == 0)
		return "en";
	n = strcspn(env, "_.@");
	if (n < 2 || n > 3)
		return "en";
	memcpy(lang, env, n);
	lang[n] = '\0';
	return lang;
}

char *
display_time(int64_t ms, char *out, size_t size)
{
	char iso[40];

	clock_format_rfc3339(ms / 1000 * 1000, iso, sizeof(iso));
	iso[10] = ' ';
	/* Years past 9999 would not fit; the time is then cut, never overflowed. */
	if (snprintf(out, size, "%s", iso) >= (int)size && size > 0)
		out[size - 1] = '\0';
	return out;
}

const char *
display_key_warning(const Xba__V1__AgentStatusReply *s, char *out, size_t size)
{
	char until[40];
	int64_t left_ms;

	/* A suspension ends the country's keys too (operations.md section 4), and the agent cannot tell it from an
	 * expiry: the line names both, so a suspended country's focal point does not rotate keys in vain.
	 * The agent judges its key by the region's clock when it knows this machine's is wrong (uplink_signing_now):
	 * a key refused then is the key's problem, not the clock's. */
	if (s->signing_key_problem != NULL && s->signing_key_problem[0] != '\0') {
		snprintf(out, size, "CANNOT SEND: this country's signing key %s cannot sign (%s); every alert submitted "
		    "here is refused until the focal point installs a current key (docs/operations.md section 5), or, "
		    "if the working group suspended this country, until it is reinstated (section 4)%s",
		    s->signing_key, s->signing_key_problem, s->clock_offset_known ? ""
		    : ". This agent has not yet heard the broker's clock: if this machine's clock is wrong (timedatectl), "
		      "fix it first");
		return out;
	}
	if (!s->signing_key_expiring || s->signing_key_until_ms == 0)
		return NULL;
	left_ms = s->signing_key_until_ms - clock_now_ms();
	snprintf(out, size, "KEY EXPIRES: this country's signing key %s can sign until %s (%lld days, %lld hours "
	    "from now); after that every alert submitted here is refused. The focal point must rotate it now "
	    "(docs/operations.md section 5)", s->signing_key,
	    display_time(s->signing_key_until_ms, until, sizeof(until)), (long long)(left_ms / 86400000),
	    (long long)(left_ms % 86400000 / 3600000));
	return out;
}

const char *
display_clock_warning(const Xba__V1__AgentStatusReply *s, char *out, size_t size)
{
	char span[40];

	if (!s->clock_offset_known || (s->clock_offset_ms <= 30000 && s->clock_offset_ms >= -30000))
		return NULL;
	clock_format_span(s->clock_offset_ms, span, sizeof(span));
	if (s->clock_offset_ms > 0)
		snprintf(out, size, "CLOCK: this machine's clock is %s behind the broker's: fix it (NTP). Meanwhile "
		    "alerts and acknowledgements sent here are signed with the region's time, not this machine's", span);
	else
		snprintf(out, size, "CLOCK: this machine's clock is %s ahead of the broker's: fix it (NTP), or, if it is "
		    "right (timedatectl), the broker's clock is behind: tell the secretariat. Meanwhile alerts and "
		    "acknowledgements sent here are signed with the region's time, not this machine's", span);
	return out;
}

const char *
display_held_outbox(const Xba__V1__AgentStatusReply *s, char *out, size_t size)
{
	const char *todo = "";
	char since[40];

	if (s->outbox_held_alert == NULL || s->outbox_held_alert[0] == '\0')
		return NULL;
	switch (s->outbox_held_code) {
	case XBA__V1__ERROR_CODE__CLOCK_SKEW:
		todo = "it was signed with a time ahead of the broker's clock: fix this machine's clock (NTP), or the "
		       "broker's if it is the one behind; once the two agree, the agent signs the held alerts again with "
		       "the corrected time and they go";
		break;
	case XBA__V1__ERROR_CODE__UNKNOWN_KEY:
		if (s->outbox_held_old_key)
			todo = "it was signed before this country's key rotation, with a key the broker's region.yaml no "
			       "longer lists: the secretariat must put that key back, with valid_until, and reload "
			       "(docs/operations.md section 5, step 4); the key it names is in the broker's reason";
		else
			todo = "the broker's region.yaml does not list this country's signing key: the secretariat must add "
			       "it and reload (docs/operations.md section 5)";
		break;
	case XBA__V1__ERROR_CODE__RATE_LIMITED:
		todo = "this country sends faster than the broker's rate limit: it goes on by itself";
		break;
	case XBA__V1__ERROR_CODE__JOURNAL_UNAVAILABLE:
		/* One code for a full disk, which clears by itself, and a damaged file, which does not: the broker's
		 * reason says which (broker/journal.c db_error). */
		if (s->outbox_held_reason != NULL && strstr(s->outbox_held_reason, "journal file is damaged") != NULL)
			todo = "the broker's journal file is damaged: tell the secretariat, who must restore it from a "
			       "checked backup (docs/operations.md section 7); alerts from here wait until then";
		else
			todo = "the broker cannot write its journal (disk full?): tell the secretariat; it goes on by "
			       "itself";
		break;
	default:
		todo = "it is retried with backoff";
		break;
	}
	snprintf(out, size, "HELD: since %s the broker refuses alert %s for now (%s: %s), and every later alert from "
	    "here waits behind it: %s", display_time(s->outbox_held_since_ms, since, sizeof(since)),
	    s->outbox_held_alert, frame_error_code_name(s->outbox_held_code),
	    s->outbox_held_reason != NULL ? s->outbox_held_reason : "", todo);
	return out;
}

static const char *
severity_color(int severity)
{
	switch (severity) {
	case XBA__V1__SEVERITY__SEVERITY_EXTREME: return ANSI_BOLD ANSI_RED;
	case XBA__V1__SEVERITY__SEVERITY_SEVERE: return ANSI_RED;
	case XBA__V1__SEVERITY__SEVERITY_MODERATE: return ANSI_YELLOW;
	case XBA__V1__SEVERITY__SEVERITY_MINOR: return ANSI_GREEN;
	default: return "";
	}
}

static const char *
name_or(enum alert_enum_kind kind, int value, const char *fallback)
{
	const char *name = alert_enum_name(kind, value);

	return name != NULL ? name : fallback;
}

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */
#define CONTINUATION "\n     "       /* a line break inside a field: deeper than the block's own lines */
#define WRAP_INDENT "     "           /* a line wrapped by display_write_wrapped: as deep as CONTINUATION */

/*
 * Bytes of a character at p that must not reach the officer's terminal as it is: a control character
 * (syntax_control_len), or a Unicode explicit directional formatting character (U+202A-U+202E embeddings and
 * overrides, U+2066-U+2069 isolates).  On a terminal that lays out Arabic, an override in a sender's text reorders
 * what xba prints after it on the same line ("seq 1  rule ..." reversed, a value of 54 read as 45).  The implicit
 * marks (U+200E, U+200F, U+061C) stay: Arabic text uses them, and they cannot reverse a run of strong characters.
 */
static size_t
display_control_len(const unsigned char *p)
{
	size_t control = syntax_control_len(p);

	if (control > 0)
		return control;
	if (p[0] == 0xe2 && p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae)
		return 3;
	if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
		return 3;
	return 0;
}

/*
 * Text from an alert is its sender's, and a receiver trusts no sender: a control character would be acted on by
 * the officer's terminal (an escape sequence can recolour, move the cursor, retitle the window), and a line break
 * would start a line that reads as the next alert's header.  Each control character is shown as U+FFFD; in a
 * multi-line field (lines) a line break continues at a deeper indent than any line of the block, and a tab is a
 * space.  The agent refuses all of these in what its own officers submit (alert_check_submission).
 */
static void
put_text(FILE *out, const char *text, bool lines)
{
	const unsigned char *p = (const unsigned char *)(text != NULL ? text : "");

	for (; *p != '\0'; p++) {
		size_t control = display_control_len(p);

		if (lines && *p == '\r' && p[1] == '\n')
			continue;
		if (lines && *p == '\n')
			fputs(CONTINUATION, out);
		else if (lines && *p == '\t')
			fputc(' ', out);
		else if (control > 0) {
			fputs(REPLACEMENT, out);
			p += control - 1;
		} else
			fputc(*p, out);
	}
}

const char *
display_clean(const char *text, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)(text != NULL ? text : "");
	size_t n = 0;

	if (size == 0)
		return out;
	for (; *p != '\0'; p++) {
		size_t control = display_control_len(p);
		size_t len = control ? 3 : 1;

		/* A character's continuation bytes go only with its lead byte: stop before a lead that will not fit. */
		if (!control && (*p & 0xc0) != 0x80) {
			len = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 1;
			if (n + len >= size)
				break;
			len = 1;
		}
		if (n + len >= size)
			break;
		if (control) {
			memcpy(out + n, REPLACEMENT, 3);
			p += control - 1;
		} else {
			out[n] = (char)*p;
		}
		n += len;
	}
	out[n] = '\0';
	return out;
}

int
display_width(void)
{
	struct winsize ws;
	const char *columns = getenv("COLUMNS");
	char *end;
	long n;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= DISPLAY_WIDTH_MIN)
		return ws.ws_col;
	if (columns != NULL && columns[0] != '\0') {
		n = strtol(columns, &end, 10);
		if (*end == '\0' && n >= DISPLAY_WIDTH_MIN)
			return n > 100000 ? 100000 : (int)n;
	}
	return 80;
}

int
display_height(void)
{
	struct winsize ws;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
		return ws.ws_row;
	return 0;
}

/*
 * Columns a character takes: 0 for a continuation byte; 2 from U+1100 up (wide East Asian letters, emoji), 1 below.
 * Counting 2 for characters a terminal shows in one column only makes a line wrap sooner than it must; counting 1
 * for one it shows in two would let the terminal wrap the line itself, which is what this must prevent.
 */
static int
char_columns(const unsigned char *p)
{
	if ((p[0] & 0xc0) == 0x80)
		return 0;
	if (p[0] < 0xe1)
		return 1;
	return 2; /* a 3-byte sequence from U+1000 (0xE1 lead) up, or a 4-byte one; U+1000-U+10FF counted wide */
}

/* Length of one of our own escape sequences (ESC [ ... final byte) at p, 0 if p is not one. */
static size_t
escape_len(const unsigned char *p, const unsigned char *end)
{
	const unsigned char *q = p + 2;

	if (end - p < 2 || p[0] != 0x1b || p[1] != '[')
		return 0;
	while (q < end && (*q < 0x40 || *q > 0x7e))
		q++;
	return q < end ? (size_t)(q - p) + 1 : (size_t)(end - p);
}

/*
 * One line (no '\n') written wrapped at width columns: each further row starts with WRAP_INDENT, at a break after
 * a space when the row has one, else mid-word.  Returns the rows written.
 */
static int
write_line_wrapped(FILE *out, int width, const unsigned char *line, const unsigned char *end)
{
	int rows = 1, indent = (int)strlen(WRAP_INDENT);

	while (line < end) {
		const unsigned char *p = line, *cut = NULL;
		int col = rows == 1 ? 0 : indent, col_at_cut = 0;

		/* Find where this row ends: the whole rest, or the last space before the column limit. */
		while (p < end) {
			size_t esc = escape_len(p, end);
			int w;

			if (esc > 0) {
				p += esc;
				continue;
			}
			w = *p < 0x20 ? 0 : char_columns(p);
			if (col + w > width)
				break;
			col += w;
			if (*p == ' ' && col > (rows == 1 ? 0 : indent) + 1) {
				cut = p;
				col_at_cut = col;
			}
			p++;
		}
		if (p == end) {
			fwrite(line, 1, (size_t)(end - line), out);
			break;
		}
		/* Break after the last space if it leaves a useful row; otherwise mid-word, before p (never inside a
		 * multi-byte character: back up over continuation bytes). */
		if (cut != NULL && col_at_cut > width / 3) {
			fwrite(line, 1, (size_t)(cut - line), out);
			line = cut + 1;
		} else {
			while (p > line && (*p & 0xc0) == 0x80)
				p--;
			if (p == line) { /* a width too narrow for one character: write it anyway, whole */
				p++;
				while (p < end && (*p & 0xc0) == 0x80)
					p++;
			}
			fwrite(line, 1, (size_t)(p - line), out);
			line = p;
		}
		fputs("\n" WRAP_INDENT, out);
		rows++;
	}
	return rows;
}

int
display_write_wrapped(FILE *out, int width, const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text, *end = p + len;
	int rows = 0;

	if (width <= 0) {
		fwrite(text, 1, len, out);
		for (size_t i = 0; i < len; i++)
			rows += text[i] == '\n';
		return rows;
	}
	while (p < end) {
		const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
		const unsigned char *line_end = nl != NULL ? nl : end;

		rows += write_line_wrapped(out, width, p, line_end);
		if (nl == NULL)
			break;
		fputc('\n', out);
		p = nl + 1;
	}
	return rows;
}

int
display_print_wrapped(FILE *out, int width, const char *fmt, ...)
{
	char small[1024], *text = small;
	va_list ap;
	int len, rows;

	va_start(ap, fmt);
	len = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (len < 0)
		return -1;
	if ((size_t)len >= sizeof(small)) {
		if ((text = malloc((size_t)len + 1)) == NULL)
			return -1;
		va_start(ap, fmt);
		vsnprintf(text, (size_t)len + 1, fmt, ap);
		va_end(ap);
	}
	rows = display_write_wrapped(out, width, text, (size_t)len);
	if (text != small)
		free(text);
	return rows;
}

const char *
display_refusal_advice(const char *code)
{
	if (code == NULL || code[0] == '\0' || strcmp(code, "UNKNOWN_KEY") == 0 || strcmp(code, "KEY_NOT_VALID") == 0)
		return "the recipient's region.yaml is probably older than this country's key: ask the secretariat to send "
		       "it the current file; it releases the alert on its reload";
	if (strcmp(code, "KEY_REVOKED") == 0)
		return "the key this alert was signed with is revoked: every recipient refuses it; send it again once this "
		       "country has a current key";
	if (strcmp(code, "MALFORMED_FRAME") == 0)
		return "the recipient could not decode what the broker sent it: tell the secretariat";
	return "the recipient's agent could not verify the alert: tell the secretariat";
}

/* "   LABEL" + text + "\n": one line of an alert's block. */
static void
put_line(FILE *out, const char *label, const char *text, bool lines)
{
	fprintf(out, "   %s", label);
	put_text(out, text, lines);
	fputc('\n', out);
}

/*
 * An area as its sender drew it: the description, then each circle, polygon and geocode (for search and rescue the
 * position is the alert).  A long polygon is cut at AREA_POINTS_SHOWN points, saying how many more --json has.
 */
static void
put_area(FILE *out, const Xba__V1__Area *area)
{
	put_line(out, "area: ", area->description, false);
	for (size_t k = 0; k < area->n_circles; k++) {
		const Xba__V1__Circle *c = area->circles[k];

		if (c->center != NULL)
			fprintf(out, "      circle: centre %.5f,%.5f (lat,lon), radius %g km\n", c->center->lat, c->center->lon,
			    c->radius_km);
	}
	for (size_t k = 0; k < area->n_polygons; k++) {
		const Xba__V1__Polygon *p = area->polygons[k];

		fprintf(out, "      polygon of %zu points (lat,lon):", p->n_points);
		for (size_t j = 0; j < p->n_points && j < AREA_POINTS_SHOWN; j++)
			fprintf(out, " %.5f,%.5f", p->points[j]->lat, p->points[j]->lon);
		if (p->n_points > AREA_POINTS_SHOWN)
			fprintf(out, " ... and %zu more (--json has every point)", p->n_points - AREA_POINTS_SHOWN);
		fputc('\n', out);
	}
	for (size_t k = 0; k < area->n_geocodes; k++) {
		fputs("      geocode: ", out);
		put_text(out, area->geocodes[k]->name, false);
		fputs(" = ", out);
		put_text(out, area->geocodes[k]->value, false);
		fputc('\n', out);
	}
}

/* Upper-case copy of an enum name for the header line ("search-and-rescue" -> "SEARCH-AND-RESCUE"). */
static const char *
upper(const char *text, char *buf, size_t size)
{
	size_t i;

	for (i = 0; text[i] != '\0' && i + 1 < size; i++)
		buf[i] = (text[i] >= 'a' && text[i] <= 'z') ? (char)(text[i] - 'a' + 'A') : text[i];
	buf[i] = '\0';
	return buf;
}

/*
 * Why an emergency no longer needs anyone here (" (acknowledged here)", ...), or NULL when it does.  A new watch
 * replays the shift's broadcasts: only one that still needs someone rings and stands out; the others say why not.
 */
static const char *
emergency_settled(const Xba__V1__InboxEntry *entry)
{
	if (entry->outgoing)
		return " (sent from here)";
	if (entry->acknowledged)
		return " (acknowledged here)";
	if (entry->alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL)
		return " (its sender withdraws one)";
	if (entry->superseded_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL)
		return " (withdrawn by its sender)";
	if (entry->superseded_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE)
		return " (replaced by its sender)";
	return NULL;
}

static void
render_entry(FILE *out, const struct display_options *opts, const Xba__V1__InboxEntry *entry)
{
	const Xba__V1__Alert *a = entry->alert;
	const Xba__V1__Info *info;
	char when[32], cat[40], sev[24], tlp[24], status[24];
	const char *on, *off = opts->color ? ANSI_RESET : "";
	bool emergency;

	if (a == NULL)
		return;
	on = opts->color ? severity_color(a->severity) : "";
	emergency = a->emergency;
	info = alert_info_for_language(a, opts->language);
	if (emergency) {
		const char *why_not = emergency_settled(entry);

		if (opts->bell && why_not == NULL)
			fputc('\a', out);
		fprintf(out, "%s%s!!! EMERGENCY BROADCAST from %s%s !!!%s\n", opts->color && why_not == NULL ? ANSI_REVERSE : "",
		    opts->color ? ANSI_BOLD : "", a->origin, why_not != NULL ? why_not : "", off);
	}
	display_time(entry->received_ms ? entry->received_ms : a->sent_ms, when, sizeof(when));
	if (a->status != XBA__V1__STATUS__STATUS_ACTUAL)
		upper(name_or(ALERT_ENUM_STATUS, a->status, ""), status, sizeof(status));
	else
		status[0] = '\0';
	/* An acknowledgement carries the category and severity of the alert it acknowledges (protocol §2.6): shown with
	 * them, in that alert's colour, it read as a new extreme alert.  It says what it is instead. */
	if (a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ACK) {
		fprintf(out, "== %s  %s%s  acknowledgement  TLP:%s  %s\n", when, entry->outgoing ? "sent by " : "from ",
		    a->origin, upper(name_or(ALERT_ENUM_TLP, a->tlp, "-"), tlp, sizeof(tlp)), status);
	} else {
		fprintf(out, "%s== %s  %s%s  [%s] %s  TLP:%s  %s%s\n", on, when, entry->outgoing ? "sent by " : "from ",
		    a->origin, upper(name_or(ALERT_ENUM_CATEGORY, a->category, "-"), cat, sizeof(cat)),
		    upper(name_or(ALERT_ENUM_SEVERITY, a->severity, "-"), sev, sizeof(sev)),
		    upper(name_or(ALERT_ENUM_TLP, a->tlp, "-"), tlp, sizeof(tlp)), status, off);
	}
	/* The header shows when it arrived; the signed time says when it was written.  An alert that took more than
	 * an hour says both, so that one written long ago (held up by an outage, or sent again by a broker after
	 * this agent pruned it) is not read as news. */
	if (!entry->outgoing && entry->received_ms - a->sent_ms > 3600 * 1000) {
		char sent[40];
		long long hours = (long long)((entry->received_ms - a->sent_ms) / (3600 * 1000));

		fprintf(out, "   WRITTEN %s, received %lld %s later\n", display_time(a->sent_ms, sent, sizeof(sent)),
		    hours >= 48 ? hours / 24 : hours, hours >= 48 ? "days" : hours == 1 ? "hour" : "hours");
	}
	/* Protocol §5.3: an expired alert is stored, and shown as expired (by this machine's clock). */
	if (a->expires_ms != 0) {
		char until[40];

		if (a->expires_ms <= clock_now_ms())
			fprintf(out, "   %sEXPIRED %s%s: its origin said it no longer applies after then\n",
			    opts->color ? ANSI_BOLD : "", display_time(a->expires_ms, until, sizeof(until)), off);
		else
			fprintf(out, "   valid until %s\n", display_time(a->expires_ms, until, sizeof(until)));
	}
	if (a->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_ALERT) {
		char type[16];

		/* An update or a cancel changes what officers should do about an earlier alert: said first, in capitals. */
		fprintf(out, "   %s%s", opts->color ? ANSI_BOLD : "",
		    upper(name_or(ALERT_ENUM_MSG_TYPE, a->msg_type, "?"), type, sizeof(type)));
		for (size_t i = 0; i < a->n_references; i++)
			fprintf(out, "%s%s", i ? ", " : " of ", a->references[i]);
		if (a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE)
			fputs(" (replaces it)", out);
		else if (a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL)
			fputs(" (withdrawn by its sender)", out);
		fprintf(out, "%s\n", opts->color ? ANSI_RESET : "");
	}
	if (info != NULL) {
		fprintf(out, "   %s", opts->color ? ANSI_BOLD : "");
		put_text(out, info->headline, false);
		fprintf(out, "%s\n", opts->color ? ANSI_RESET : "");
		if (info->event != NULL && info->event[0] != '\0')
			put_line(out, "event: ", info->event, false);
		if (info->description != NULL && info->description[0] != '\0')
			put_line(out, "", info->description, true);
		if (info->instruction != NULL && info->instruction[0] != '\0')
			put_line(out, "instruction: ", info->instruction, true);
		if (a->n_info > 1) {
			fprintf(out, "   %salso in:", opts->color ? ANSI_DIM : "");
			for (size_t i = 0; i < a->n_info; i++)
				if (a->info[i] != info) {
					fputc(' ', out);
					put_text(out, a->info[i]->language, false);
				}
			fprintf(out, " (xba history --id %s --lang LANG)%s\n", a->id, opts->color ? ANSI_RESET : "");
		}
	}
	for (size_t i = 0; i < a->n_areas; i++)
		put_area(out, a->areas[i]);
	for (size_t i = 0; i < a->n_parameters; i++) {
		fputs("   ", out);
		put_text(out, a->parameters[i]->name, false);
		fputs(": ", out);
		put_text(out, a->parameters[i]->value, false);
		fputc('\n', out);
	}
	if (a->note != NULL && a->note[0] != '\0')
		put_line(out, "note: ", a->note, false);
	fprintf(out, "   %sid %s  author ", opts->color ? ANSI_DIM : "", a->id);
	put_text(out, a->author, false);
	/* An alert still queued here has no journal seq or rule yet (the line below says so): no "seq 0". */
	if (entry->seq != 0)
		fprintf(out, "  seq %llu", (unsigned long long)entry->seq);
	if (entry->rule != NULL && entry->rule[0] != '\0') {
		fputs("  rule ", out);
		put_text(out, entry->rule, false);
	}
	fprintf(out, "%s\n", opts->color ? ANSI_RESET : "");
	if (entry->outgoing) {
		static const char *const states[] = { "unknown", "queued for the broker", "accepted by the broker",
			"REFUSED by the broker" };
		unsigned st = entry->publish_state <= 3 ? (unsigned)entry->publish_state : 0;

		fprintf(out, "   %s", states[st]);
		if (entry->publish_state == XBA__V1__PUBLISH_STATE__PUBLISH_STATE_ACCEPTED)
			fprintf(out, ", %u recipient%s", entry->recipients, entry->recipients == 1 ? "" : "s");
		if (entry->publish_state == XBA__V1__PUBLISH_STATE__PUBLISH_STATE_REFUSED && entry->publish_result != 0) {
			fprintf(out, ": %s%s", frame_error_code_name(entry->publish_result),
			    entry->publish_field != NULL && entry->publish_field[0] ? " " : "");
			put_text(out, entry->publish_field, false);
			fputs(": ", out);
			put_text(out, entry->publish_message, false);
		}
		fputc('\n', out);
	} else if (entry->superseded_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL) {
		/* Withdrawn by its own sender: nothing left to acknowledge. */
		fprintf(out, "   %sWITHDRAWN by its sender%s (xba history --id %s)\n", opts->color ? ANSI_BOLD : "",
		    opts->color ? ANSI_RESET : "", entry->superseded_by);
	} else if (entry->acknowledged && entry->ack_refused_code != 0) {
		char at[32];

		/* Acknowledged here, but the origin was never told: not to be read as an acknowledgement delivered. */
		fputs("   acknowledged here by ", out);
		put_text(out, entry->acknowledged_by, false);
		fprintf(out, " at %s, but the acknowledgement was %sREFUSED by the broker%s (%s: ",
		    display_time(entry->acknowledged_ms, at, sizeof(at)), opts->color ? ANSI_BOLD : "",
		    opts->color ? ANSI_RESET : "", frame_error_code_name(entry->ack_refused_code));
		put_text(out, entry->ack_refused_message, false);
		fputs("): ", out);
		put_text(out, a->origin, false);
		fputs(" was NOT told\n", out);
	} else if (entry->acknowledged) {
		char at[32];

		fputs("   acknowledged by ", out);
		put_text(out, entry->acknowledged_by, false);
		fprintf(out, " at %s\n", display_time(entry->acknowledged_ms, at, sizeof(at)));
	} else if (entry->origin_not_in_region && a->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_ACK) {
		/* xba ack would be refused: asking for it would send the officer round in a circle. */
		fprintf(out, "   %sNOT ACKNOWLEDGED%s: its origin ", opts->color ? ANSI_BOLD : "", opts->color ? ANSI_RESET : "");
		put_text(out, a->origin, false);
		fputs(" is no longer a node of this region (removed or suspended by the working group): no acknowledgement "
		      "can be sent to it\n", out);
	} else if (entry->superseded_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE) {
		/* The update is what needs acknowledging now; this version waits for nothing. */
		fprintf(out, "   %sREPLACED by a newer version from its sender%s: acknowledge that one (xba history --id "
			     "%s)\n", opts->color ? ANSI_BOLD : "", opts->color ? ANSI_RESET : "", entry->superseded_by);
	} else if (a->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_ACK) {
		fprintf(out, "   %sNEEDS ACKNOWLEDGEMENT%s: xba ack %s\n", opts->color ? ANSI_BOLD : "",
		    opts->color ? ANSI_RESET : "", a->id);
	}
	if (!entry->outgoing && entry->acknowledged && entry->superseded_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE)
		fprintf(out, "   %sREPLACED by a newer version from its sender%s (xba history --id %s)\n",
		    opts->color ? ANSI_BOLD : "", opts->color ? ANSI_RESET : "", entry->superseded_by);
	fputc('\n', out);
}

/*
 * The block is rendered whole, then written wrapped at opts->width: a sender's long line must never be wrapped by
 * the terminal, which would put the rest of it at column 0, where it can pass for the header of another alert
 * ("== ... from LBY [HEALTH] EXTREME") drawn with spaces.  Wrapped rows start deeper than the block's own lines.
 */
void
display_entry(FILE *out, const struct display_options *opts, const Xba__V1__InboxEntry *entry)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = opts->width > 0 ? open_memstream(&text, &len) : NULL;

	if (mem == NULL) {
		render_entry(out, opts, entry);
	} else {
		render_entry(mem, opts, entry);
		if (fclose(mem) == 0)
			display_write_wrapped(out, opts->width, text, len);
		else
			render_entry(out, opts, entry);
		free(text);
	}
	fflush(out);
}

void
display_entry_json(FILE *out, const Xba__V1__InboxEntry *entry)
{
	const Xba__V1__Alert *a = entry->alert;
	struct jsonw w;
	char t[40];

	if (a == NULL)
		return;
	jsonw_begin(&w, out);
	jsonw_string(&w, "id", a->id);
	jsonw_string(&w, "origin", a->origin);
	jsonw_string(&w, "author", a->author);
	jsonw_string(&w, "sent", clock_format_rfc3339(a->sent_ms, t, sizeof(t)));
	jsonw_string(&w, "received", entry->received_ms ? clock_format_rfc3339(entry->received_ms, t, sizeof(t)) : "");
	jsonw_string(&w, "status", name_or(ALERT_ENUM_STATUS, a->status, ""));
	jsonw_string(&w, "msg_type", name_or(ALERT_ENUM_MSG_TYPE, a->msg_type, ""));
	jsonw_string(&w, "category", name_or(ALERT_ENUM_CATEGORY, a->category, ""));
	jsonw_string(&w, "severity", name_or(ALERT_ENUM_SEVERITY, a->severity, ""));
	jsonw_string(&w, "urgency", name_or(ALERT_ENUM_URGENCY, a->urgency, ""));
	jsonw_string(&w, "certainty", name_or(ALERT_ENUM_CERTAINTY, a->certainty, ""));
	jsonw_string(&w, "tlp", name_or(ALERT_ENUM_TLP, a->tlp, ""));
	jsonw_bool(&w, "emergency", a->emergency);
	jsonw_string(&w, "incident", a->incident ? a->incident : "");
	jsonw_string(&w, "expires", a->expires_ms ? clock_format_rfc3339(a->expires_ms, t, sizeof(t)) : "");
	jsonw_array_begin(&w, "references");
	for (size_t i = 0; i < a->n_references; i++)
		jsonw_string(&w, NULL, a->references[i]);
	jsonw_array_end(&w);
	jsonw_array_begin(&w, "addressees");
	for (size_t i = 0; i < a->n_addressees; i++)
		jsonw_string(&w, NULL, a->addressees[i]);
	jsonw_array_end(&w);
	jsonw_array_begin(&w, "info");
	for (size_t i = 0; i < a->n_info; i++) {
		const Xba__V1__Info *info = a->info[i];

		jsonw_object_begin(&w, NULL);
		jsonw_string(&w, "language", info->language);
		jsonw_string(&w, "event", info->event ? info->event : "");
		jsonw_string(&w, "headline", info->headline);
		jsonw_string(&w, "description", info->description ? info->description : "");
		jsonw_string(&w, "instruction", info->instruction ? info->instruction : "");
		jsonw_object_end(&w);
	}
	jsonw_array_end(&w);
	jsonw_array_begin(&w, "areas");
	for (size_t i = 0; i < a->n_areas; i++)
		jsonw_string(&w, NULL, a->areas[i]->description);
	jsonw_array_end(&w);
	/* The same areas whole, as alert files write them (docs/alert-yaml.md): "areas" stays the descriptions. */
	jsonw_array_begin(&w, "area_shapes");
	for (size_t i = 0; i < a->n_areas; i++) {
		const Xba__V1__Area *area = a->areas[i];

		jsonw_object_begin(&w, NULL);
		jsonw_string(&w, "description", area->description);
		jsonw_array_begin(&w, "polygons");
		for (size_t k = 0; k < area->n_polygons; k++) {
			jsonw_array_begin(&w, NULL);
			for (size_t j = 0; j < area->polygons[k]->n_points; j++) {
				jsonw_array_begin(&w, NULL);
				jsonw_number(&w, NULL, area->polygons[k]->points[j]->lat);
				jsonw_number(&w, NULL, area->polygons[k]->points[j]->lon);
				jsonw_array_end(&w);
			}
			jsonw_array_end(&w);
		}
		jsonw_array_end(&w);
		jsonw_array_begin(&w, "circles");
		for (size_t k = 0; k < area->n_circles; k++) {
			const Xba__V1__Circle *c = area->circles[k];

			jsonw_object_begin(&w, NULL);
			jsonw_number(&w, "lat", c->center != NULL ? c->center->lat : 0);
			jsonw_number(&w, "lon", c->center != NULL ? c->center->lon : 0);
			jsonw_number(&w, "radius_km", c->radius_km);
			jsonw_object_end(&w);
		}
		jsonw_array_end(&w);
		jsonw_array_begin(&w, "geocodes");
		for (size_t k = 0; k < area->n_geocodes; k++) {
			jsonw_object_begin(&w, NULL);
			jsonw_string(&w, "name", area->geocodes[k]->name);
			jsonw_string(&w, "value", area->geocodes[k]->value);
			jsonw_object_end(&w);
		}
		jsonw_array_end(&w);
		jsonw_object_end(&w);
	}
	jsonw_array_end(&w);
	jsonw_object_begin(&w, "parameters");
	for (size_t i = 0; i < a->n_parameters; i++)
		jsonw_string(&w, a->parameters[i]->name, a->parameters[i]->value);
	jsonw_object_end(&w);
	jsonw_string(&w, "note", a->note ? a->note : "");
	jsonw_int(&w, "seq", (int64_t)entry->seq);
	jsonw_string(&w, "rule", entry->rule ? entry->rule : "");
	jsonw_bool(&w, "outgoing", entry->outgoing);
	if (entry->outgoing) {
		static const char *const states[] = { "", "queued", "accepted", "refused" };

		jsonw_string(&w, "publish_state", states[entry->publish_state <= 3 ? entry->publish_state : 0]);
		jsonw_int(&w, "recipients", entry->recipients);
		if (entry->publish_state == XBA__V1__PUBLISH_STATE__PUBLISH_STATE_REFUSED) {
			jsonw_string(&w, "refused_code", entry->publish_result ? frame_error_code_name(entry->publish_result)
									     : "");
			jsonw_string(&w, "refused_field", entry->publish_field ? entry->publish_field : "");
			jsonw_string(&w, "refused_message", entry->publish_message ? entry->publish_message : "");
		}
	} else {
		jsonw_bool(&w, "acknowledged", entry->acknowledged);
		jsonw_string(&w, "acknowledged_by", entry->acknowledged_by ? entry->acknowledged_by : "");
		/* "withdrawn" (its origin cancelled it), "replaced" (updated), or "" */
		jsonw_string(&w, "superseded", entry->superseded_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL ? "withdrawn"
		    : entry->superseded_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE ? "replaced" : "");
		jsonw_string(&w, "superseded_by", entry->superseded_by ? entry->superseded_by : "");
		jsonw_bool(&w, "origin_not_in_region", entry->origin_not_in_region);
		/* acknowledged here, and the broker refused the ACK: the origin was not told */
		jsonw_string(&w, "ack_refused_code", entry->ack_refused_code ? frame_error_code_name(entry->ack_refused_code)
									     : "");
		jsonw_string(&w, "ack_refused_message", entry->ack_refused_message ? entry->ack_refused_message : "");
	}
	jsonw_end(&w);
}
