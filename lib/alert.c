/*
 * alert.c — the alert's one gate: decode, validate, encode, and the names of its enum values (see alert.h).
 *
 * Flow: the CLI builds an Xba__V1__Alert and calls alert_encode() before envelope.c signs the bytes; the broker
 * and every receiving agent call alert_decode() on the bytes envelope.c has just verified.  Whatever passes here
 * is what routing, storage and officers' screens trust, so every rule of docs/protocol.md "Alert validation" is
 * checked in this file and nowhere else, and every refusal names the field path it is about.
 */
#include "alert.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "syntax.h"

/* Room for the longest path we build ("areas[15].polygons[7].points[255].lat") with margin. */
#define PATH_MAX_LEN 96

/* ---------------------------------------------------------------------------------------------------------------
 * Enum names */

static const char *const status_names[] = { NULL, "actual", "exercise", "system", "test", "draft" };
static const char *const msg_type_names[] = { NULL, "alert", "update", "cancel", "ack", "error" };
static const char *const category_names[] = { NULL, "border-incident", "smuggling", "trafficking", "health",
	"search-and-rescue", "population-movement", "other" };
static const char *const severity_names[] = { NULL, "unknown", "minor", "moderate", "severe", "extreme" };
static const char *const urgency_names[] = { NULL, "unknown", "past", "future", "expected", "immediate" };
static const char *const certainty_names[] = { NULL, "unknown", "unlikely", "possible", "likely", "observed" };
static const char *const tlp_names[] = { NULL, "clear", "green", "amber", "amber+strict", "red" };

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct enum_table {
	const char *kind;           /* the alert field that holds this enum, for messages */
	const char *const *names;   /* index = wire value; [0] (unspecified) is NULL */
	int max;                    /* highest valid wire value */
} enum_tables[] = {
	[ALERT_ENUM_STATUS] = { "status", status_names, COUNT(status_names) - 1 },
	[ALERT_ENUM_MSG_TYPE] = { "msg_type", msg_type_names, COUNT(msg_type_names) - 1 },
	[ALERT_ENUM_CATEGORY] = { "category", category_names, COUNT(category_names) - 1 },
	[ALERT_ENUM_SEVERITY] = { "severity", severity_names, COUNT(severity_names) - 1 },
	[ALERT_ENUM_URGENCY] = { "urgency", urgency_names, COUNT(urgency_names) - 1 },
	[ALERT_ENUM_CERTAINTY] = { "certainty", certainty_names, COUNT(certainty_names) - 1 },
	[ALERT_ENUM_TLP] = { "tlp", tlp_names, COUNT(tlp_names) - 1 },
};

static const struct enum_table *
enum_table(enum alert_enum_kind kind)
{
	assert((int)kind >= 0 && (int)kind < COUNT(enum_tables));
	return &enum_tables[kind];
}

const char *
alert_enum_name(enum alert_enum_kind kind, int value)
{
	const struct enum_table *t = enum_table(kind);

	if (value < 1 || value > t->max)
		return NULL;
	return t->names[value];
}

int
alert_enum_parse(enum alert_enum_kind kind, const char *text, int *value)
{
	const struct enum_table *t = enum_table(kind);
	char norm[32];
	size_t len;

	assert(value != NULL);
	if (text == NULL)
		return XBA_EENUM;
	/* TLP 2.0 writes its labels "TLP:AMBER+STRICT"; operators copy them from documents as they are. */
	if (kind == ALERT_ENUM_TLP && strncasecmp(text, "tlp:", 4) == 0)
		text += 4;
	len = strlen(text);
	if (len == 0 || len >= sizeof(norm))
		return XBA_EENUM;
	for (size_t i = 0; i <= len; i++) {
		char c = text[i];

		norm[i] = c == '_' ? '-' : (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	for (int v = 1; v <= t->max; v++) {
		if (strcmp(norm, t->names[v]) == 0) {
			*value = v;
			return 0;
		}
	}
	return XBA_EENUM;
}

int
alert_enum_max(enum alert_enum_kind kind)
{
	return enum_table(kind)->max;
}

const char *
alert_enum_kind_name(enum alert_enum_kind kind)
{
	return enum_table(kind)->kind;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Validation helpers.  A path is a prefix ("info[1]", or "" at the top) and an optional field name ("headline"). */

static int field_error(struct xba_error *err, int code, const char *prefix, const char *name, const char *fmt, ...)
	XBA_PRINTF(5, 6);

static int
field_error(struct xba_error *err, int code, const char *prefix, const char *name, const char *fmt, ...)
{
	char what[XBA_ERROR_MSG_MAX];
	va_list ap;
	const char *dot = prefix[0] != '\0' && name != NULL ? "." : "";

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (prefix[0] == '\0' && name == NULL)
		return xba_error_set(err, code, "%s", what);
	return xba_error_set(err, code, "%s%s%s: %s", prefix, dot, name ? name : "", what);
}

/* Paths nest at most four deep and their indexes are bounded by the count limits, so PATH_MAX_LEN always fits;
 * going through vsnprintf keeps GCC's truncation analysis, which cannot see those bounds, quiet. */
static void path_fmt(char path[PATH_MAX_LEN], const char *fmt, ...) XBA_PRINTF(2, 3);

static void
path_fmt(char path[PATH_MAX_LEN], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, PATH_MAX_LEN, fmt, ap);
	va_end(ap);
}

/* Values quoted in messages end up in key=value log lines: only short printable ASCII is shown as is. */
static const char *
quote(char out[48], const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < 40; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' ? s[i] : '?';
	if (s[i] != '\0') {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

static const char *
str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* Length first, then UTF-8, so that a huge field is refused without being scanned.  Identifiers pass
 * ALERT_MAX_BYTES as max: their own syntax check bounds them and says more than "too long". */
static int
check_text(const char *prefix, const char *name, const char *s, size_t max, bool required, struct xba_error *err)
{
	size_t len = strlen(str_or_empty(s));

	if (len == 0)
		return required ? field_error(err, XBA_EREQUIRED, prefix, name, "required") : 0;
	if (len > max)
		return field_error(err, XBA_ETOOLONG, prefix, name, "%zu bytes, at most %zu", len, max);
	if (!syntax_utf8_valid(s, len))
		return field_error(err, XBA_EUTF8, prefix, name, "not valid UTF-8");
	return 0;
}

static int
check_count(const char *prefix, const char *name, size_t n, size_t max, struct xba_error *err)
{
	if (n > max)
		return field_error(err, XBA_ETOOLONG, prefix, name, "%zu items, at most %zu", n, max);
	return 0;
}

static int
check_enum(enum alert_enum_kind kind, int value, bool required, struct xba_error *err)
{
	const struct enum_table *t = enum_table(kind);

	if (value == 0)
		return required ? field_error(err, XBA_EREQUIRED, "", t->kind, "required") : 0;
	if (value < 1 || value > t->max)
		return field_error(err, XBA_EENUM, "", t->kind, "unknown value %d (1..%d)", value, t->max);
	return 0;
}

/* The struct may carry fields this version does not know (kept by protobuf-c on decode, packed again on encode);
 * a signed alert must not carry data that receivers ignore. */
static int
check_unknown(const ProtobufCMessage *m, const char *prefix, struct xba_error *err)
{
	if (m->n_unknown_fields > 0)
		return field_error(err, XBA_EDECODE, prefix, NULL, "unknown field number %u",
		    (unsigned)m->unknown_fields[0].tag);
	return 0;
}

static int
check_point(const char *prefix, const Xba__V1__Point *p, struct xba_error *err)
{
	int rc;

	if (p == NULL)
		return field_error(err, XBA_EREQUIRED, prefix, NULL, "required");
	if ((rc = check_unknown(&p->base, prefix, err)) != 0)
		return rc;
	if (!isfinite(p->lat))
		return field_error(err, XBA_EGEO, prefix, "lat", "not a finite number");
	if (!isfinite(p->lon))
		return field_error(err, XBA_EGEO, prefix, "lon", "not a finite number");
	if (p->lat < -90.0 || p->lat > 90.0)
		return field_error(err, XBA_EGEO, prefix, "lat", "%g outside -90..90", p->lat);
	if (p->lon < -180.0 || p->lon > 180.0)
		return field_error(err, XBA_EGEO, prefix, "lon", "%g outside -180..180", p->lon);
	return 0;
}

static int
check_polygon(const char *prefix, const Xba__V1__Polygon *poly, struct xba_error *err)
{
	char path[PATH_MAX_LEN];
	const Xba__V1__Point *first, *last;
	int rc;

	if ((rc = check_unknown(&poly->base, prefix, err)) != 0)
		return rc;
	if ((rc = check_count(prefix, "points", poly->n_points, ALERT_MAX_POLYGON_POINTS, err)) != 0)
		return rc;
	if (poly->n_points < 4)
		return field_error(err, XBA_EGEO, prefix, "points", "%zu points, at least 4 (a closed ring)",
		    poly->n_points);
	for (size_t i = 0; i < poly->n_points; i++) {
		path_fmt(path, "%s.points[%zu]", prefix, i);
		if ((rc = check_point(path, poly->points[i], err)) != 0)
			return rc;
	}
	first = poly->points[0];
	last = poly->points[poly->n_points - 1];
	if (first->lat != last->lat || first->lon != last->lon)
		return field_error(err, XBA_EGEO, prefix, NULL, "not closed (first point %g,%g, last %g,%g)",
		    first->lat, first->lon, last->lat, last->lon);
	return 0;
}

static int
check_circle(const char *prefix, const Xba__V1__Circle *c, struct xba_error *err)
{
	char path[PATH_MAX_LEN];
	int rc;

	if ((rc = check_unknown(&c->base, prefix, err)) != 0)
		return rc;
	if (c->center == NULL)
		return field_error(err, XBA_EREQUIRED, prefix, "center", "required");
	path_fmt(path, "%s.center", prefix);
	if ((rc = check_point(path, c->center, err)) != 0)
		return rc;
	/* Written so that NaN fails too. */
	if (!(c->radius_km > 0.0 && c->radius_km <= ALERT_MAX_RADIUS_KM))
		return field_error(err, XBA_EGEO, prefix, "radius_km", "%g, must be > 0 and at most %g", c->radius_km,
		    ALERT_MAX_RADIUS_KM);
	return 0;
}

static int
check_area(const char *prefix, const Xba__V1__Area *area, struct xba_error *err)
{
	char path[PATH_MAX_LEN];
	int rc;

	if ((rc = check_unknown(&area->base, prefix, err)) != 0)
		return rc;
	if ((rc = check_text(prefix, "description", area->description, ALERT_AREA_DESC_MAX, true, err)) != 0)
		return rc;
	if ((rc = check_count(prefix, "polygons", area->n_polygons, ALERT_MAX_POLYGONS, err)) != 0 ||
	    (rc = check_count(prefix, "circles", area->n_circles, ALERT_MAX_CIRCLES, err)) != 0 ||
	    (rc = check_count(prefix, "geocodes", area->n_geocodes, ALERT_MAX_GEOCODES, err)) != 0)
		return rc;
	for (size_t i = 0; i < area->n_polygons; i++) {
		path_fmt(path, "%s.polygons[%zu]", prefix, i);
		if (area->polygons[i] == NULL)
			return field_error(err, XBA_EREQUIRED, path, NULL, "missing");
		if ((rc = check_polygon(path, area->polygons[i], err)) != 0)
			return rc;
	}
	for (size_t i = 0; i < area->n_circles; i++) {
		path_fmt(path, "%s.circles[%zu]", prefix, i);
		if (area->circles[i] == NULL)
			return field_error(err, XBA_EREQUIRED, path, NULL, "missing");
		if ((rc = check_circle(path, area->circles[i], err)) != 0)
			return rc;
	}
	for (size_t i = 0; i < area->n_geocodes; i++) {
		const Xba__V1__Geocode *g = area->geocodes[i];

		path_fmt(path, "%s.geocodes[%zu]", prefix, i);
		if (g == NULL)
			return field_error(err, XBA_EREQUIRED, path, NULL, "missing");
		if ((rc = check_unknown(&g->base, path, err)) != 0 ||
		    (rc = check_text(path, "name", g->name, ALERT_GEOCODE_MAX, true, err)) != 0 ||
		    (rc = check_text(path, "value", g->value, ALERT_GEOCODE_MAX, true, err)) != 0)
			return rc;
	}
	return 0;
}

static int
check_info(const char *prefix, const Xba__V1__Info *info, struct xba_error *err)
{
	char q[48];
	int rc;

	if ((rc = check_unknown(&info->base, prefix, err)) != 0)
		return rc;
	if ((rc = check_text(prefix, "language", info->language, ALERT_MAX_BYTES, true, err)) != 0)
		return rc;
	if (!syntax_language_tag_valid(info->language))
		return field_error(err, XBA_ESYNTAX, prefix, "language", "\"%s\" is not a language tag (\"ar\", \"fr-NE\")",
		    quote(q, info->language));
	if ((rc = check_text(prefix, "event", info->event, ALERT_EVENT_MAX, false, err)) != 0 ||
	    (rc = check_text(prefix, "headline", info->headline, ALERT_HEADLINE_MAX, true, err)) != 0 ||
	    (rc = check_text(prefix, "description", info->description, ALERT_DESCRIPTION_MAX, false, err)) != 0 ||
	    (rc = check_text(prefix, "instruction", info->instruction, ALERT_INSTRUCTION_MAX, false, err)) != 0)
		return rc;
	return 0;
}

/* A node id list element: required, well-formed, no repeats. */
static int
check_addressees(const Xba__V1__Alert *a, struct xba_error *err)
{
	char path[PATH_MAX_LEN], q[48];
	int rc;

	if ((rc = check_count("", "addressees", a->n_addressees, ALERT_MAX_ADDRESSEES, err)) != 0)
		return rc;
	for (size_t i = 0; i < a->n_addressees; i++) {
		const char *s = a->addressees[i];

		path_fmt(path, "addressees[%zu]", i);
		if ((rc = check_text(path, NULL, s, ALERT_MAX_BYTES, true, err)) != 0)
			return rc;
		if (!syntax_node_id_valid(s))
			return field_error(err, XBA_ESYNTAX, path, NULL, "\"%s\" is not a node id", quote(q, s));
		for (size_t j = 0; j < i; j++)
			if (strcmp(s, a->addressees[j]) == 0)
				return field_error(err, XBA_EDUPLICATE, path, NULL, "\"%s\" already listed as addressees[%zu]",
				    s, j);
	}
	return 0;
}

static bool
needs_references(int msg_type)
{
	return msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE || msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL ||
	    msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ACK || msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ERROR;
}

static int
check_references(const Xba__V1__Alert *a, struct xba_error *err)
{
	char path[PATH_MAX_LEN], q[48];
	int rc;

	if (a->n_references == 0 && needs_references(a->msg_type))
		return field_error(err, XBA_EREQUIRED, "", "references", "required for msg_type %s",
		    alert_enum_name(ALERT_ENUM_MSG_TYPE, a->msg_type));
	if ((rc = check_count("", "references", a->n_references, ALERT_MAX_REFERENCES, err)) != 0)
		return rc;
	for (size_t i = 0; i < a->n_references; i++) {
		const char *s = a->references[i];

		path_fmt(path, "references[%zu]", i);
		if ((rc = check_text(path, NULL, s, ALERT_MAX_BYTES, true, err)) != 0)
			return rc;
		if (!syntax_uuid_valid(s))
			return field_error(err, XBA_ESYNTAX, path, NULL, "\"%s\" is not a lower-case UUID", quote(q, s));
		/* An alert that supersedes or cancels itself would make its own state undecidable. */
		if (strcmp(s, a->id) == 0)
			return field_error(err, XBA_EDUPLICATE, path, NULL, "refers to the alert itself");
	}
	return 0;
}

static int
check_header(const Xba__V1__Alert *a, struct xba_error *err)
{
	char q[48];
	bool full;
	int rc;

	if ((rc = check_text("", "id", a->id, ALERT_MAX_BYTES, true, err)) != 0)
		return rc;
	if (!syntax_uuid_valid(a->id))
		return field_error(err, XBA_ESYNTAX, "", "id", "\"%s\" is not a lower-case UUID", quote(q, a->id));
	if ((rc = check_text("", "origin", a->origin, ALERT_MAX_BYTES, true, err)) != 0)
		return rc;
	if (!syntax_node_id_valid(a->origin))
		return field_error(err, XBA_ESYNTAX, "", "origin", "\"%s\" is not a node id", quote(q, a->origin));
	if ((rc = check_text("", "author", a->author, ALERT_AUTHOR_MAX, true, err)) != 0)
		return rc;
	if (a->sent_ms == 0)
		return field_error(err, XBA_EREQUIRED, "", "sent_ms", "required");
	if (a->sent_ms < 0)
		return field_error(err, XBA_ETIME, "", "sent_ms", "%lld is before 1970", (long long)a->sent_ms);
	if ((rc = check_enum(ALERT_ENUM_STATUS, a->status, true, err)) != 0 ||
	    (rc = check_enum(ALERT_ENUM_MSG_TYPE, a->msg_type, true, err)) != 0 ||
	    (rc = check_enum(ALERT_ENUM_TLP, a->tlp, true, err)) != 0)
		return rc;
	/* Only alerts and updates describe an event; the others point at one through references. */
	full = a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ALERT || a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE;
	if ((rc = check_enum(ALERT_ENUM_CATEGORY, a->category, full, err)) != 0 ||
	    (rc = check_enum(ALERT_ENUM_SEVERITY, a->severity, full, err)) != 0 ||
	    (rc = check_enum(ALERT_ENUM_URGENCY, a->urgency, full, err)) != 0 ||
	    (rc = check_enum(ALERT_ENUM_CERTAINTY, a->certainty, full, err)) != 0)
		return rc;
	if (a->expires_ms != 0 && a->expires_ms <= a->sent_ms)
		return field_error(err, XBA_ETIME, "", "expires_ms", "%lld is not after sent_ms %lld",
		    (long long)a->expires_ms, (long long)a->sent_ms);
	/* An emergency jumps every queue: acks and errors must never be able to do that. */
	if (a->emergency && a->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_ALERT &&
	    a->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE && a->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL)
		return field_error(err, XBA_EENUM, "", "emergency", "not allowed with msg_type %s (alert, update or "
		    "cancel only)", alert_enum_name(ALERT_ENUM_MSG_TYPE, a->msg_type));
	if ((rc = check_text("", "incident", a->incident, ALERT_INCIDENT_MAX, false, err)) != 0 ||
	    (rc = check_text("", "note", a->note, ALERT_NOTE_MAX, false, err)) != 0)
		return rc;
	return 0;
}

static int
check_infos(const Xba__V1__Alert *a, struct xba_error *err)
{
	char path[PATH_MAX_LEN];
	int rc;

	if (a->n_info == 0 && (a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ALERT ||
	    a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE))
		return field_error(err, XBA_EREQUIRED, "", "info", "at least one block required for msg_type %s",
		    alert_enum_name(ALERT_ENUM_MSG_TYPE, a->msg_type));
	if ((rc = check_count("", "info", a->n_info, ALERT_MAX_INFO, err)) != 0)
		return rc;
	for (size_t i = 0; i < a->n_info; i++) {
		path_fmt(path, "info[%zu]", i);
		if (a->info[i] == NULL)
			return field_error(err, XBA_EREQUIRED, path, NULL, "missing");
		if ((rc = check_info(path, a->info[i], err)) != 0)
			return rc;
		/* Readers pick a block by language; two blocks for one language would make the choice arbitrary. */
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(a->info[i]->language, a->info[j]->language) == 0)
				return field_error(err, XBA_EDUPLICATE, path, "language",
				    "\"%s\" already used by info[%zu]", a->info[i]->language, j);
	}
	return 0;
}

/* The first control character in s (lines: a line break or a tab is text there), as a field error. */
static int
check_plain(const char *path, const char *name, const char *s, bool lines, struct xba_error *err)
{
	const unsigned char *p = (const unsigned char *)str_or_empty(s);

	for (size_t i = 0; p[i] != '\0'; i++) {
		unsigned c = p[i];
		size_t len = syntax_control_len(p + i);

		if (len == 0 || (lines && (c == '\n' || c == '\t')))
			continue;
		if (len == 2)
			return field_error(err, XBA_ESYNTAX, path, name, "control character U+%04X at byte %zu", p[i + 1], i);
		/* In a multi-line field a CR is not the line break (LF is): a bare one can redraw a terminal line. */
		return field_error(err, XBA_ESYNTAX, path, name, "control character 0x%02X at byte %zu%s", c, i,
		    lines ? (c == '\r' ? " (a carriage return: end each line with a line break alone)" : "")
		    : c == '\n' || c == '\r' ? " (a line break: this field is one line)" : "");
	}
	return 0;
}

bool
alert_names_reference(const Xba__V1__Alert *alert, const char *id)
{
	for (size_t i = 0; i < alert->n_references; i++)
		if (alert->references[i] != NULL && strcmp(alert->references[i], id) == 0)
			return true;
	return false;
}

int
alert_check_submission(const Xba__V1__Alert *a, struct xba_error *err)
{
	char path[PATH_MAX_LEN];
	int rc;

	if ((rc = check_plain("", "author", a->author, false, err)) != 0 ||
	    (rc = check_plain("", "incident", a->incident, false, err)) != 0 ||
	    (rc = check_plain("", "note", a->note, false, err)) != 0)
		return rc;
	for (size_t i = 0; i < a->n_info; i++) {
		const Xba__V1__Info *info = a->info[i];

		path_fmt(path, "info[%zu]", i);
		if ((rc = check_plain(path, "language", info->language, false, err)) != 0 ||
		    (rc = check_plain(path, "event", info->event, false, err)) != 0 ||
		    (rc = check_plain(path, "headline", info->headline, false, err)) != 0 ||
		    (rc = check_plain(path, "description", info->description, true, err)) != 0 ||
		    (rc = check_plain(path, "instruction", info->instruction, true, err)) != 0)
			return rc;
	}
	for (size_t i = 0; i < a->n_areas; i++) {
		path_fmt(path, "areas[%zu]", i);
		if ((rc = check_plain(path, "description", a->areas[i]->description, false, err)) != 0)
			return rc;
		for (size_t k = 0; k < a->areas[i]->n_geocodes; k++) {
			path_fmt(path, "areas[%zu].geocodes[%zu]", i, k);
			if ((rc = check_plain(path, "name", a->areas[i]->geocodes[k]->name, false, err)) != 0 ||
			    (rc = check_plain(path, "value", a->areas[i]->geocodes[k]->value, false, err)) != 0)
				return rc;
		}
	}
	for (size_t i = 0; i < a->n_parameters; i++) {
		const char *name = str_or_empty(a->parameters[i]->name);

		path_fmt(path, "parameters[%zu]", i);
		if ((rc = check_plain(path, "name", name, false, err)) != 0 ||
		    (rc = check_plain(path, "value", a->parameters[i]->value, false, err)) != 0)
			return rc;
		if (strcasecmp(name, "TLP") == 0 || strncasecmp(name, "XBA-", 4) == 0)
			return field_error(err, XBA_ESYNTAX, path, "name", "'%s' is kept for the CAP mapping (TLP, XBA-*: "
			    "docs/protocol.md 5.4); choose another name", name);
	}
	return 0;
}

int
alert_validate(const Xba__V1__Alert *alert, struct xba_error *err)
{
	char path[PATH_MAX_LEN];
	int rc;

	assert(alert != NULL && alert->base.descriptor == &xba__v1__alert__descriptor);
	if ((rc = check_unknown(&alert->base, "", err)) != 0 || (rc = check_header(alert, err)) != 0 ||
	    (rc = check_references(alert, err)) != 0 || (rc = check_addressees(alert, err)) != 0 ||
	    (rc = check_infos(alert, err)) != 0)
		return rc;
	if ((rc = check_count("", "areas", alert->n_areas, ALERT_MAX_AREAS, err)) != 0)
		return rc;
	for (size_t i = 0; i < alert->n_areas; i++) {
		path_fmt(path, "areas[%zu]", i);
		if (alert->areas[i] == NULL)
			return field_error(err, XBA_EREQUIRED, path, NULL, "missing");
		if ((rc = check_area(path, alert->areas[i], err)) != 0)
			return rc;
	}
	if ((rc = check_count("", "parameters", alert->n_parameters, ALERT_MAX_PARAMS, err)) != 0)
		return rc;
	for (size_t i = 0; i < alert->n_parameters; i++) {
		const Xba__V1__Parameter *p = alert->parameters[i];

		path_fmt(path, "parameters[%zu]", i);
		if (p == NULL)
			return field_error(err, XBA_EREQUIRED, path, NULL, "missing");
		if ((rc = check_unknown(&p->base, path, err)) != 0 ||
		    (rc = check_text(path, "name", p->name, ALERT_PARAM_NAME_MAX, true, err)) != 0 ||
		    (rc = check_text(path, "value", p->value, ALERT_PARAM_VALUE_MAX, false, err)) != 0)
			return rc;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Wire checks.  protobuf-c hides two things a signer could use to carry bytes that receivers never see: it cuts a
 * string at its first NUL (it copies the wire bytes and reads them as a C string), and for a field that is not
 * repeated it keeps only the last occurrence.  The signature covers the wire bytes, so both are refused here,
 * walking the bytes protobuf-c has already accepted (which is why the walk can be simple, though still bounded). */

static bool
wire_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
		uint8_t b = p[(*pos)++];

		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*out = v;
			return true;
		}
	}
	return false;
}

static int
wire_scan(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len, const char *prefix,
    struct xba_error *err)
{
	unsigned seen[32] = { 0 }; /* occurrences so far, by field index: the [i] of repeated fields' paths */
	char path[PATH_MAX_LEN];
	size_t pos = 0;

	assert(desc->n_fields <= sizeof(seen) / sizeof(seen[0]));
	while (pos < len) {
		const ProtobufCFieldDescriptor *f;
		uint64_t tag, n;
		size_t idx;

		if (!wire_varint(p, len, &pos, &tag))
			return field_error(err, XBA_EDECODE, prefix, NULL, "bad field tag");
		f = tag >> 3 > UINT32_MAX ? NULL :
		    protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3));
		if (f == NULL)
			return field_error(err, XBA_EDECODE, prefix, NULL, "unknown field number %llu",
			    (unsigned long long)(tag >> 3));
		idx = (size_t)(f - desc->fields);
		if (f->label == PROTOBUF_C_LABEL_REPEATED)
			path_fmt(path, "%s%s%s[%u]", prefix, prefix[0] ? "." : "", f->name, seen[idx]);
		else
			path_fmt(path, "%s%s%s", prefix, prefix[0] ? "." : "", f->name);
		if (f->label != PROTOBUF_C_LABEL_REPEATED && seen[idx] > 0)
			return field_error(err, XBA_EDECODE, path, NULL, "field appears more than once");
		seen[idx]++;
		switch (tag & 7) {
		case 0:
			if (!wire_varint(p, len, &pos, &n))
				return field_error(err, XBA_EDECODE, path, NULL, "bad varint");
			break;
		case 1:
		case 5:
			n = (tag & 7) == 1 ? 8 : 4;
			if (len - pos < n)
				return field_error(err, XBA_EDECODE, path, NULL, "truncated");
			pos += n;
			break;
		case 2:
			if (!wire_varint(p, len, &pos, &n) || n > len - pos)
				return field_error(err, XBA_EDECODE, path, NULL, "truncated");
			if (f->type == PROTOBUF_C_TYPE_STRING && memchr(p + pos, 0, n) != NULL)
				return field_error(err, XBA_EUTF8, path, NULL, "contains a NUL byte");
			if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				int rc = wire_scan(f->descriptor, p + pos, n, path, err);

				if (rc != 0)
					return rc;
			}
			pos += n;
			break;
		default:
			return field_error(err, XBA_EDECODE, path, NULL, "unsupported wire type %u", (unsigned)(tag & 7));
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Codec */

Xba__V1__Alert *
alert_decode(const uint8_t *bytes, size_t len, struct xba_error *err)
{
	static const uint8_t empty[1];
	Xba__V1__Alert *alert;

	assert(bytes != NULL || len == 0);
	if (len > ALERT_MAX_BYTES) {
		xba_error_set(err, XBA_ETOOBIG, "alert: %zu bytes, at most %d", len, ALERT_MAX_BYTES);
		return NULL;
	}
	if (bytes == NULL)
		bytes = empty;
	alert = xba__v1__alert__unpack(NULL, len, bytes);
	if (alert == NULL) {
		xba_error_set(err, XBA_EDECODE, "not a valid alert (protobuf decode failed)");
		return NULL;
	}
	if (wire_scan(&xba__v1__alert__descriptor, bytes, len, "", err) != 0 || alert_validate(alert, err) != 0) {
		xba__v1__alert__free_unpacked(alert, NULL);
		return NULL;
	}
	return alert;
}

void
alert_free(Xba__V1__Alert *alert)
{
	if (alert != NULL)
		xba__v1__alert__free_unpacked(alert, NULL);
}

int
alert_encode(const Xba__V1__Alert *alert, uint8_t **out, size_t *out_len, struct xba_error *err)
{
	size_t size;
	uint8_t *buf;
	int rc;

	assert(out != NULL && out_len != NULL);
	*out = NULL;
	*out_len = 0;
	if ((rc = alert_validate(alert, err)) != 0)
		return rc;
	size = xba__v1__alert__get_packed_size(alert);
	if (size > ALERT_MAX_BYTES)
		return xba_error_set(err, XBA_ETOOBIG, "alert: %zu bytes encoded, at most %d", size, ALERT_MAX_BYTES);
	/* malloc(0) may return NULL; an empty alert cannot pass validation, but keep the buffer non-NULL anyway. */
	if ((buf = malloc(size > 0 ? size : 1)) == NULL)
		return xba_error_set(err, XBA_ENOMEM, "alert: out of memory for %zu bytes", size);
	if (xba__v1__alert__pack(alert, buf) != size) {
		free(buf);
		return xba_error_set(err, XBA_EDECODE, "alert: protobuf pack size mismatch");
	}
	*out = buf;
	*out_len = size;
	return 0;
}

/* ---------------------------------------------------------------------------------------------------------------
 * Reading */

static size_t
primary_len(const char *tag)
{
	const char *dash = strchr(tag, '-');

	return dash != NULL ? (size_t)(dash - tag) : strlen(tag);
}

const Xba__V1__Info *
alert_info_for_language(const Xba__V1__Alert *alert, const char *language)
{
	assert(alert != NULL);
	if (alert->n_info == 0)
		return NULL;
	if (language != NULL && language[0] != '\0') {
		size_t plen = primary_len(language);

		for (size_t i = 0; i < alert->n_info; i++)
			if (alert->info[i] != NULL && strcasecmp(str_or_empty(alert->info[i]->language), language) == 0)
				return alert->info[i];
		for (size_t i = 0; i < alert->n_info; i++) {
			const char *l = alert->info[i] != NULL ? str_or_empty(alert->info[i]->language) : "";

			if (primary_len(l) == plen && strncasecmp(l, language, plen) == 0)
				return alert->info[i];
		}
	}
	return alert->info[0];
}
