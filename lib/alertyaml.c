/*
 * alertyaml.c — an officer's alert file (docs/alert-yaml.md) into a protobuf-c Alert (see alertyaml.h).
 *
 * In the flow of an alert this is the officer's side of `xba send` and the input of `xba rules explain`: YAML
 * text in, an Alert that may still lack what the agent fills (id, origin, sent) out.  The file goes through
 * yamltree.c, so every refusal carries "file:line:col: key.path: ...".  Keys are read in a fixed order, not the
 * file's, because a relative expiry needs `sent` first.
 *
 * Memory: every message, array and string is malloc'ed in protobuf-c's own layout and each repeated field's count
 * only ever covers filled slots, so at any point of a failed load xba__v1__alert__free_unpacked(alert, NULL)
 * frees exactly what was built.
 */
#include "alertyaml.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alert.h"
#include "clock.h"
#include "syntax.h"
#include "yamltree.h"

/* Key-path buffers: "areas[15].polygons[7][255][1]" and "parameters[31].value" fit with room to spare. */
#define PATH_MAX_LEN 96
#define QUOTE_SIZE 68
#define ENUM_TEXT_MAX 64
/* Read ids with room to spare beyond their syntax, so a wrong one is named by the syntax check, not its length. */
#define ID_TEXT_MAX 128
#define MS_PER_MINUTE INT64_C(60000)

static const char *const root_keys[] = { "id", "origin", "author", "sent", "status", "msg_type", "references",
	"incident", "category", "severity", "urgency", "certainty", "tlp", "to", "addressees", "expires", "emergency",
	"note", "info", "areas", "parameters", NULL };
static const char *const info_keys[] = { "language", "event", "headline", "description", "instruction", NULL };
static const char *const area_keys[] = { "description", "polygons", "circles", "geocodes", NULL };
static const char *const circle_keys[] = { "lat", "lon", "radius_km", NULL };
static const char *const geocode_keys[] = { "name", "value", NULL };
static const char *const parameter_keys[] = { "name", "value", NULL };

struct loader {
	const struct ydoc *doc;     /* the file being read */
	Xba__V1__Alert *alert;      /* what is being built; owned by load_doc() until returned */
	struct xba_error *err;      /* the caller's, filled on the first refusal */
	int64_t expires_in_ms;      /* `expires` was a duration and the file gave no `sent`: that duration; else 0 */
};

/* Operator text made safe for a one-line message: control bytes as '?', cut at 64 bytes with "...". */
static const char *
quote(const char *s, char out[QUOTE_SIZE])
{
	size_t n = 0, len = strlen(s);

	for (; n < len && n < QUOTE_SIZE - 4; n++)
		out[n] = ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) ? '?' : s[n];
	if (n < len)
		memcpy(out + n, "...", 4);
	else
		out[n] = '\0';
	return out;
}

static int
nomem(struct loader *l)
{
	return xba_error_set(l->err, XBA_ENOMEM, "%s: out of memory reading the alert", l->doc->name);
}

/* prefix, sep and tail into out, cut to fit.  Paths are bounded by the nesting the loader reads, so PATH_MAX_LEN
 * never cuts one in practice; if it ever did, a message would show a shortened path, never overflow. */
static const char *
path_cat(char out[PATH_MAX_LEN], const char *prefix, const char *sep, const char *tail)
{
	const char *parts[3] = { prefix, sep, tail };
	size_t used = 0;

	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(parts[i]);

		if (n > PATH_MAX_LEN - 1 - used)
			n = PATH_MAX_LEN - 1 - used;
		memcpy(out + used, parts[i], n);
		used += n;
	}
	out[used] = '\0';
	return out;
}

/* prefix.key (or key at the top) into out. */
static const char *
join_path(char out[PATH_MAX_LEN], const char *prefix, const char *key)
{
	return path_cat(out, prefix, prefix[0] == '\0' ? "" : ".", key);
}

/* prefix[i] into out. */
static const char *
index_path(char out[PATH_MAX_LEN], const char *prefix, size_t i)
{
	char index[32];

	snprintf(index, sizeof(index), "[%zu]", i);
	return path_cat(out, prefix, "", index);
}

/* ---- scalars ---- */

/* Copy a text value of at most max bytes into *field (which holds protobuf_c_empty_string or malloc'ed text). */
static int
read_text(struct loader *l, const struct ynode *node, const char *path, size_t max, char **field)
{
	const char *text;
	char *copy;
	int rc;

	if ((rc = ydoc_read_string(l->doc, node, path, max, &text, l->err)) != 0)
		return rc;
	if ((copy = strdup(text)) == NULL)
		return nomem(l);
	if (*field != NULL && *field != protobuf_c_empty_string)
		free(*field);
	*field = copy;
	return 0;
}

/*
 * Free text written plain with " #" after it on its line: YAML took the rest for a comment, and "Convoi #3 repéré à
 * Assamaka" was sent, accepted and read as "Convoi".  Refused rather than guessed: in quotes the text is whole,
 * whichever was meant.
 */
static int
check_whole_text(struct loader *l, const struct ynode *node, const char *path)
{
	if (node == NULL || node->kind != YNODE_SCALAR || !node->comment_follows)
		return 0;
	return ydoc_error(l->doc, node, l->err, path, "the text stops before ' #': YAML reads the rest of the line as a "
	    "comment. Put the whole text in quotes (\"...\"); a comment, if one was meant, goes after the closing quote");
}

/* read_text of free text (what officers read): whole, or refused (check_whole_text). */
static int
read_free_text(struct loader *l, const struct ynode *node, const char *path, size_t max, char **field)
{
	int rc = read_text(l, node, path, max, field);

	return rc != 0 ? rc : check_whole_text(l, node, path);
}

/* As read_text, refusing an empty value: for what an item needs (headline, area description, geocode name). */
static int
read_required_text(struct loader *l, const struct ynode *node, const char *path, size_t max, char **field)
{
	int rc = read_text(l, node, path, max, field);

	if (rc == 0 && (*field)[0] == '\0')
		return ydoc_error(l->doc, node, l->err, path, "must not be empty");
	return rc;
}

static int
read_required_free_text(struct loader *l, const struct ynode *node, const char *path, size_t max, char **field)
{
	int rc = read_required_text(l, node, path, max, field);

	return rc != 0 ? rc : check_whole_text(l, node, path);
}

/* "a, b, c": the names of kind, for "expected one of" messages. */
static const char *
enum_names(enum alert_enum_kind kind, char *out, size_t size)
{
	size_t used = 0;

	out[0] = '\0';
	for (int v = 1; v <= alert_enum_max(kind) && used < size; v++) {
		int n = snprintf(out + used, size - used, "%s%s", v > 1 ? ", " : "", alert_enum_name(kind, v));

		if (n < 0)
			break;
		used += (size_t)n;
	}
	return out;
}

static int
read_enum(struct loader *l, const struct ynode *node, const char *path, enum alert_enum_kind kind, int *value)
{
	char names[256], q[QUOTE_SIZE];
	const char *text;
	int rc;

	if ((rc = ydoc_read_string(l->doc, node, path, ENUM_TEXT_MAX, &text, l->err)) != 0)
		return rc;
	if (alert_enum_parse(kind, text, value) != 0)
		return ydoc_error(l->doc, node, l->err, path, "unknown %s '%s' (expected one of: %s)",
		    alert_enum_kind_name(kind), quote(text, q), enum_names(kind, names, sizeof(names)));
	return 0;
}

static int
read_node_id(struct loader *l, const struct ynode *node, const char *path, char **field)
{
	char q[QUOTE_SIZE];
	int rc = read_text(l, node, path, ID_TEXT_MAX, field);

	if (rc != 0)
		return rc;
	if (!syntax_node_id_valid(*field))
		return ydoc_error(l->doc, node, l->err, path,
		    "'%s' is not a node id (2 to 32 of A-Z, 0-9 and '-', starting with a letter: NER, WHO-AFRO)",
		    quote(*field, q));
	return 0;
}

static int
read_uuid(struct loader *l, const struct ynode *node, const char *path, char **field)
{
	char q[QUOTE_SIZE];
	int rc = read_text(l, node, path, ID_TEXT_MAX, field);

	if (rc != 0)
		return rc;
	if (!syntax_uuid_valid(*field))
		return ydoc_error(l->doc, node, l->err, path,
		    "'%s' is not an alert id (a lower-case UUID such as 3f2b8c1e-0d4a-4e8b-9c51-2a7d6e0f9b13)",
		    quote(*field, q));
	return 0;
}

/*
 * A duration: one or more <number><unit> with unit m (minutes), h (hours) or d (days): "90m", "6h", "2d",
 * "1d12h".  Returns 1 and *out_ms when text has that shape and a sensible size, 0 when it is not a duration at
 * all, -1 when it is one but zero or over ALERTYAML_MAX_DURATION_DAYS.
 */
static int
parse_duration(const char *text, int64_t *out_ms)
{
	const int64_t max_minutes = (int64_t)ALERTYAML_MAX_DURATION_DAYS * 24 * 60;
	int64_t minutes = 0;
	const char *p = text;

	if (*p == '\0')
		return 0;
	while (*p != '\0') {
		int64_t n = 0, unit;
		int digits = 0;

		for (; *p >= '0' && *p <= '9'; p++, digits++) {
			if (digits >= 9)
				return -1;  /* nine digits of minutes is already over any limit */
			n = n * 10 + (*p - '0');
		}
		if (digits == 0)
			return 0;
		switch (*p) {
		case 'm': unit = 1; break;
		case 'h': unit = 60; break;
		case 'd': unit = 24 * 60; break;
		default: return 0;
		}
		p++;
		minutes += n * unit;
		if (minutes > max_minutes)
			return -1;
	}
	if (minutes == 0)
		return -1;
	*out_ms = minutes * MS_PER_MINUTE;
	return 1;
}

/* expires: an RFC 3339 time, or a duration after base_ms (the alert's sent time, or now). */
static int
read_expiry(struct loader *l, const struct ynode *node, const char *path, int64_t base_ms, int64_t *out)
{
	char q[QUOTE_SIZE];
	const char *text;
	int64_t ms;
	int rc;

	if ((rc = ydoc_read_string(l->doc, node, path, 64, &text, l->err)) != 0)
		return rc;
	switch (parse_duration(text, &ms)) {
	case 1:
		*out = base_ms + ms;
		if (l->alert->sent_ms == 0)
			l->expires_in_ms = ms;
		return 0;
	case -1:
		return ydoc_error(l->doc, node, l->err, path,
		    "duration '%s' must be more than zero and at most %dd", quote(text, q),
		    ALERTYAML_MAX_DURATION_DAYS);
	default:
		break;
	}
	if (clock_parse_rfc3339(text, &ms) != 0)
		return ydoc_error(l->doc, node, l->err, path,
		    "expected an RFC 3339 date-time such as 2026-11-26T06:00:00Z, or a duration such as 90m, 6h or 2d, "
		    "found '%s'", quote(text, q));
	/* Said here, at the key, rather than by the validation later as two numbers of milliseconds. */
	if (ms <= base_ms) {
		char base[40];

		return ydoc_error(l->doc, node, l->err, path, "%s is not after the alert's %s (%s)", quote(text, q),
		    l->alert->sent_ms != 0 ? "sent time" : "time of loading", clock_format_rfc3339(base_ms, base, sizeof(base)));
	}
	*out = ms;
	return 0;
}

/* ---- lists ---- */

/* node must be a list of at most max items. */
static int
expect_list(struct loader *l, const struct ynode *node, const char *path, size_t max, const char *item_name)
{
	int rc = ydoc_expect_sequence(l->doc, node, path, l->err);

	if (rc != 0)
		return rc;
	if (node->count > max)
		return ydoc_error(l->doc, node, l->err, path, "too many %s (%zu, at most %zu)", item_name, node->count,
		    max);
	return 0;
}

/* A fresh array of n pointers for a repeated field; NULL when n is 0 (protobuf-c's empty repeated field). */
static int
new_array(struct loader *l, size_t n, size_t elem_size, void **out)
{
	*out = NULL;
	if (n == 0)
		return 0;
	if ((*out = calloc(n, elem_size)) == NULL)
		return nomem(l);
	return 0;
}

/* references: alert ids, each a UUID. */
static int
read_references(struct loader *l, const struct ynode *v)
{
	Xba__V1__Alert *a = l->alert;
	char path[PATH_MAX_LEN];
	int rc;

	if ((rc = expect_list(l, v, "references", ALERT_MAX_REFERENCES, "references")) != 0 ||
	    (rc = new_array(l, v->count, sizeof(char *), (void **)&a->references)) != 0)
		return rc;
	for (size_t i = 0; i < v->count; i++) {
		/* NULL, not the empty string: protobuf-c frees every element of a repeated string field. */
		a->references[i] = NULL;
		a->n_references = i + 1;
		if ((rc = read_uuid(l, v->items[i], index_path(path, "references", i), &a->references[i])) != 0)
			return rc;
	}
	return 0;
}

/* to / addressees: node ids, each once. */
static int
read_addressees(struct loader *l, const struct ynode *v, const char *key)
{
	Xba__V1__Alert *a = l->alert;
	char path[PATH_MAX_LEN], first[PATH_MAX_LEN];
	int rc;

	if ((rc = expect_list(l, v, key, ALERT_MAX_ADDRESSEES, "addressees")) != 0)
		return rc;
	/* An alert with no addressees goes to everybody the rules name: an empty list (a template's placeholder,
	 * a generated file) must not mean that (xba send --to "" is refused alike). */
	if (v->count == 0)
		return ydoc_error(l->doc, v, l->err, key, "an empty list addresses nobody; name the addressees, or leave "
		    "'%s' out to send where the region's rules say", key);
	if ((rc = new_array(l, v->count, sizeof(char *), (void **)&a->addressees)) != 0)
		return rc;
	for (size_t i = 0; i < v->count; i++) {
		/* NULL, not the empty string: protobuf-c frees every element of a repeated string field. */
		a->addressees[i] = NULL;
		a->n_addressees = i + 1;
		if ((rc = read_node_id(l, v->items[i], index_path(path, key, i), &a->addressees[i])) != 0)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (strcmp(a->addressees[j], a->addressees[i]) == 0)
				return ydoc_error(l->doc, v->items[i], l->err, path, "%s is already addressed at %s",
				    a->addressees[i], index_path(first, key, j));
	}
	return 0;
}

/* info: one block per language. */
static int
read_info(struct loader *l, const struct ynode *v)
{
	Xba__V1__Alert *a = l->alert;
	char path[PATH_MAX_LEN], fpath[PATH_MAX_LEN], first[PATH_MAX_LEN], q[QUOTE_SIZE];
	int rc;

	if ((rc = expect_list(l, v, "info", ALERT_MAX_INFO, "info blocks")) != 0 ||
	    (rc = new_array(l, v->count, sizeof(*a->info), (void **)&a->info)) != 0)
		return rc;
	for (size_t i = 0; i < v->count; i++) {
		const struct ynode *m = v->items[i], *f;
		Xba__V1__Info *info;

		index_path(path, "info", i);
		if ((rc = ydoc_check_keys(l->doc, m, path, info_keys, l->err)) != 0)
			return rc;
		if ((info = malloc(sizeof(*info))) == NULL)
			return nomem(l);
		xba__v1__info__init(info);
		a->info[i] = info;
		a->n_info = i + 1;
		if ((f = ynode_get(m, "language")) == NULL)
			return ydoc_error(l->doc, m, l->err, path,
			    "missing required key 'language' (ar, fr, en, fr-NE...)");
		if ((rc = read_text(l, f, join_path(fpath, path, "language"), 64, &info->language)) != 0)
			return rc;
		if (!syntax_language_tag_valid(info->language))
			return ydoc_error(l->doc, f, l->err, fpath,
			    "'%s' is not a language tag (ar, fr, en, fr-NE, ar-Latn: 2 or 3 letters, then optional "
			    "'-' subtags)", quote(info->language, q));
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(a->info[j]->language, info->language) == 0)
				return ydoc_error(l->doc, f, l->err, fpath,
				    "language '%s' already has a block at %s (one block per language)",
				    quote(info->language, q), index_path(first, "info", j));
		if ((f = ynode_get(m, "headline")) == NULL)
			return ydoc_error(l->doc, m, l->err, path, "missing required key 'headline'");
		if ((rc = read_required_free_text(l, f, join_path(fpath, path, "headline"), ALERT_HEADLINE_MAX,
		    &info->headline)) != 0)
			return rc;
		if ((f = ynode_get(m, "event")) != NULL &&
		    (rc = read_free_text(l, f, join_path(fpath, path, "event"), ALERT_EVENT_MAX, &info->event)) != 0)
			return rc;
		if ((f = ynode_get(m, "description")) != NULL &&
		    (rc = read_free_text(l, f, join_path(fpath, path, "description"), ALERT_DESCRIPTION_MAX,
		    &info->description)) != 0)
			return rc;
		if ((f = ynode_get(m, "instruction")) != NULL &&
		    (rc = read_free_text(l, f, join_path(fpath, path, "instruction"), ALERT_INSTRUCTION_MAX,
		    &info->instruction)) != 0)
			return rc;
	}
	return 0;
}

/* One [lat, lon] pair into a fresh Point. */
static int
read_point(struct loader *l, const struct ynode *v, const char *path, Xba__V1__Point **out)
{
	char cpath[PATH_MAX_LEN];
	Xba__V1__Point *p;
	int rc;

	if (v->kind == YNODE_MAP)
		return ydoc_error(l->doc, v, l->err, path, "expected a [lat, lon] pair, found a map");
	if (v->kind == YNODE_SCALAR)
		return ydoc_error(l->doc, v, l->err, path, "expected a [lat, lon] pair, found a single value");
	if (v->count != 2)
		return ydoc_error(l->doc, v, l->err, path, "expected a [lat, lon] pair, found a list of %zu values",
		    v->count);
	if ((p = malloc(sizeof(*p))) == NULL)
		return nomem(l);
	xba__v1__point__init(p);
	*out = p;
	if ((rc = ydoc_read_double(l->doc, v->items[0], index_path(cpath, path, 0), -90.0, 90.0, &p->lat,
	    l->err)) != 0)
		return rc;
	return ydoc_read_double(l->doc, v->items[1], index_path(cpath, path, 1), -180.0, 180.0, &p->lon, l->err);
}

static int
read_polygons(struct loader *l, const struct ynode *v, const char *apath, Xba__V1__Area *area)
{
	char path[PATH_MAX_LEN], ppath[PATH_MAX_LEN], ipath[PATH_MAX_LEN];
	int rc;

	join_path(path, apath, "polygons");
	if ((rc = expect_list(l, v, path, ALERT_MAX_POLYGONS, "polygons")) != 0 ||
	    (rc = new_array(l, v->count, sizeof(*area->polygons), (void **)&area->polygons)) != 0)
		return rc;
	for (size_t i = 0; i < v->count; i++) {
		const struct ynode *pv = v->items[i];
		Xba__V1__Polygon *poly;

		index_path(ppath, path, i);
		if ((rc = expect_list(l, pv, ppath, ALERT_MAX_POLYGON_POINTS, "points")) != 0)
			return rc;
		/* `polygons: [[lat, lon], ...]` is the commonest slip: one polygon written without its own brackets. */
		if (pv->count > 0 && pv->items[0]->kind == YNODE_SCALAR)
			return ydoc_error(l->doc, pv, l->err, ppath,
			    "expected a polygon (a list of [lat, lon] points), found a list of %zu values: polygons is a "
			    "list of polygons, so one polygon is written `polygons: [[[lat, lon], [lat, lon], ...]]` or, "
			    "one polygon per line, `- [[lat, lon], [lat, lon], ...]`", pv->count);
		if (pv->count < 4)
			return ydoc_error(l->doc, pv, l->err, ppath,
			    "a polygon needs at least 4 [lat, lon] points, the last repeating the first (found %zu)",
			    pv->count);
		if ((poly = malloc(sizeof(*poly))) == NULL)
			return nomem(l);
		xba__v1__polygon__init(poly);
		area->polygons[i] = poly;
		area->n_polygons = i + 1;
		if ((rc = new_array(l, pv->count, sizeof(*poly->points), (void **)&poly->points)) != 0)
			return rc;
		for (size_t k = 0; k < pv->count; k++) {
			rc = read_point(l, pv->items[k], index_path(ipath, ppath, k), &poly->points[k]);
			if (poly->points[k] != NULL)
				poly->n_points = k + 1;
			if (rc != 0)
				return rc;
		}
		if (poly->points[0]->lat != poly->points[pv->count - 1]->lat ||
		    poly->points[0]->lon != poly->points[pv->count - 1]->lon)
			return ydoc_error(l->doc, pv->items[pv->count - 1], l->err, ipath,
			    "polygon not closed: the last point must repeat the first, [%g, %g]", poly->points[0]->lat,
			    poly->points[0]->lon);
	}
	return 0;
}

static int
read_circles(struct loader *l, const struct ynode *v, const char *apath, Xba__V1__Area *area)
{
	static const char *const needed[] = { "lat", "lon", "radius_km" };
	char path[PATH_MAX_LEN], cpath[PATH_MAX_LEN], fpath[PATH_MAX_LEN];
	int rc;

	join_path(path, apath, "circles");
	if ((rc = expect_list(l, v, path, ALERT_MAX_CIRCLES, "circles")) != 0 ||
	    (rc = new_array(l, v->count, sizeof(*area->circles), (void **)&area->circles)) != 0)
		return rc;
	for (size_t i = 0; i < v->count; i++) {
		const struct ynode *m = v->items[i];
		Xba__V1__Circle *c;

		index_path(cpath, path, i);
		if ((rc = ydoc_check_keys(l->doc, m, cpath, circle_keys, l->err)) != 0)
			return rc;
		for (size_t k = 0; k < sizeof(needed) / sizeof(needed[0]); k++)
			if (ynode_get(m, needed[k]) == NULL)
				return ydoc_error(l->doc, m, l->err, cpath, "missing required key '%s' (a circle is "
				    "{lat, lon, radius_km})", needed[k]);
		if ((c = malloc(sizeof(*c))) == NULL)
			return nomem(l);
		xba__v1__circle__init(c);
		area->circles[i] = c;
		area->n_circles = i + 1;
		if ((c->center = malloc(sizeof(*c->center))) == NULL)
			return nomem(l);
		xba__v1__point__init(c->center);
		if ((rc = ydoc_read_double(l->doc, ynode_get(m, "lat"), join_path(fpath, cpath, "lat"), -90.0, 90.0,
		    &c->center->lat, l->err)) != 0 ||
		    (rc = ydoc_read_double(l->doc, ynode_get(m, "lon"), join_path(fpath, cpath, "lon"), -180.0, 180.0,
		    &c->center->lon, l->err)) != 0 ||
		    (rc = ydoc_read_double(l->doc, ynode_get(m, "radius_km"), join_path(fpath, cpath, "radius_km"), 0.0,
		    ALERT_MAX_RADIUS_KM, &c->radius_km, l->err)) != 0)
			return rc;
		if (c->radius_km <= 0.0)
			return ydoc_error(l->doc, ynode_get(m, "radius_km"), l->err, fpath,
			    "must be more than 0 (kilometres)");
	}
	return 0;
}

static int
read_geocodes(struct loader *l, const struct ynode *v, const char *apath, Xba__V1__Area *area)
{
	char path[PATH_MAX_LEN], gpath[PATH_MAX_LEN], fpath[PATH_MAX_LEN];
	int rc;

	join_path(path, apath, "geocodes");
	if ((rc = expect_list(l, v, path, ALERT_MAX_GEOCODES, "geocodes")) != 0 ||
	    (rc = new_array(l, v->count, sizeof(*area->geocodes), (void **)&area->geocodes)) != 0)
		return rc;
	for (size_t i = 0; i < v->count; i++) {
		const struct ynode *m = v->items[i];
		Xba__V1__Geocode *g;

		index_path(gpath, path, i);
		if ((rc = ydoc_check_keys(l->doc, m, gpath, geocode_keys, l->err)) != 0)
			return rc;
		for (size_t k = 0; geocode_keys[k] != NULL; k++)
			if (ynode_get(m, geocode_keys[k]) == NULL)
				return ydoc_error(l->doc, m, l->err, gpath, "missing required key '%s' (a geocode is "
				    "{name, value}, e.g. {name: border-post, value: NE-ASSAMAKA})", geocode_keys[k]);
		if ((g = malloc(sizeof(*g))) == NULL)
			return nomem(l);
		xba__v1__geocode__init(g);
		area->geocodes[i] = g;
		area->n_geocodes = i + 1;
		if ((rc = read_required_text(l, ynode_get(m, "name"), join_path(fpath, gpath, "name"),
		    ALERT_GEOCODE_MAX, &g->name)) != 0 ||
		    (rc = read_required_free_text(l, ynode_get(m, "value"), join_path(fpath, gpath, "value"),
		    ALERT_GEOCODE_MAX, &g->value)) != 0)
			return rc;
	}
	return 0;
}

static int
read_areas(struct loader *l, const struct ynode *v)
{
	Xba__V1__Alert *a = l->alert;
	char path[PATH_MAX_LEN], fpath[PATH_MAX_LEN];
	int rc;

	if ((rc = expect_list(l, v, "areas", ALERT_MAX_AREAS, "areas")) != 0 ||
	    (rc = new_array(l, v->count, sizeof(*a->areas), (void **)&a->areas)) != 0)
		return rc;
	for (size_t i = 0; i < v->count; i++) {
		const struct ynode *m = v->items[i], *f;
		Xba__V1__Area *area;

		index_path(path, "areas", i);
		if ((rc = ydoc_check_keys(l->doc, m, path, area_keys, l->err)) != 0)
			return rc;
		if ((area = malloc(sizeof(*area))) == NULL)
			return nomem(l);
		xba__v1__area__init(area);
		a->areas[i] = area;
		a->n_areas = i + 1;
		if ((f = ynode_get(m, "description")) == NULL)
			return ydoc_error(l->doc, m, l->err, path,
			    "missing required key 'description' (name the area)");
		if ((rc = read_required_free_text(l, f, join_path(fpath, path, "description"), ALERT_AREA_DESC_MAX,
		    &area->description)) != 0)
			return rc;
		if ((f = ynode_get(m, "polygons")) != NULL && (rc = read_polygons(l, f, path, area)) != 0)
			return rc;
		if ((f = ynode_get(m, "circles")) != NULL && (rc = read_circles(l, f, path, area)) != 0)
			return rc;
		if ((f = ynode_get(m, "geocodes")) != NULL && (rc = read_geocodes(l, f, path, area)) != 0)
			return rc;
	}
	return 0;
}

/* One parameter from its name and value nodes (either form). */
static int
read_parameter(struct loader *l, size_t i, const struct ynode *name, const char *name_path, const struct ynode *value,
    const char *value_path)
{
	Xba__V1__Alert *a = l->alert;
	char first[PATH_MAX_LEN], q[QUOTE_SIZE];
	Xba__V1__Parameter *p;
	int rc;

	if ((p = malloc(sizeof(*p))) == NULL)
		return nomem(l);
	xba__v1__parameter__init(p);
	a->parameters[i] = p;
	a->n_parameters = i + 1;
	if ((rc = read_required_text(l, name, name_path, ALERT_PARAM_NAME_MAX, &p->name)) != 0 ||
	    (rc = read_free_text(l, value, value_path, ALERT_PARAM_VALUE_MAX, &p->value)) != 0)
		return rc;
	for (size_t j = 0; j < i; j++)
		if (strcmp(a->parameters[j]->name, p->name) == 0)
			return ydoc_error(l->doc, name, l->err, name_path, "parameter '%s' is already given at %s",
			    quote(p->name, q), index_path(first, "parameters", j));
	return 0;
}

/* parameters: a map (people_count: 45) or a list of {name, value}. */
static int
read_parameters(struct loader *l, const struct ynode *v)
{
	Xba__V1__Alert *a = l->alert;
	char path[PATH_MAX_LEN], npath[PATH_MAX_LEN], vpath[PATH_MAX_LEN];
	int rc;

	if (v->kind != YNODE_MAP && v->kind != YNODE_SEQUENCE)
		return ydoc_error(l->doc, v, l->err, "parameters",
		    "expected a map (people_count: 45) or a list of {name, value}, found a single value");
	if (v->count > ALERT_MAX_PARAMS)
		return ydoc_error(l->doc, v, l->err, "parameters", "too many parameters (%zu, at most %d)", v->count,
		    ALERT_MAX_PARAMS);
	if ((rc = new_array(l, v->count, sizeof(*a->parameters), (void **)&a->parameters)) != 0)
		return rc;
	for (size_t i = 0; i < v->count; i++) {
		if (v->kind == YNODE_MAP) {
			char q[QUOTE_SIZE];

			/* The key's own text is the name; the path names it as the operator wrote it. */
			join_path(path, "parameters", quote(v->keys[i]->scalar, q));
			rc = read_parameter(l, i, v->keys[i], path, v->items[i], path);
		} else {
			const struct ynode *m = v->items[i];

			index_path(path, "parameters", i);
			if ((rc = ydoc_check_keys(l->doc, m, path, parameter_keys, l->err)) != 0)
				return rc;
			for (size_t k = 0; parameter_keys[k] != NULL; k++)
				if (ynode_get(m, parameter_keys[k]) == NULL)
					return ydoc_error(l->doc, m, l->err, path,
					    "missing required key '%s' (a parameter is {name, value})", parameter_keys[k]);
			rc = read_parameter(l, i, ynode_get(m, "name"), join_path(npath, path, "name"),
			    ynode_get(m, "value"), join_path(vpath, path, "value"));
		}
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- the alert ---- */

/* Store a parsed enum value (1..alert_enum_max(kind)) in its field. */
static void
set_enum(Xba__V1__Alert *a, enum alert_enum_kind kind, int value)
{
	switch (kind) {
	case ALERT_ENUM_STATUS: a->status = (Xba__V1__Status)value; break;
	case ALERT_ENUM_MSG_TYPE: a->msg_type = (Xba__V1__MsgType)value; break;
	case ALERT_ENUM_CATEGORY: a->category = (Xba__V1__Category)value; break;
	case ALERT_ENUM_SEVERITY: a->severity = (Xba__V1__Severity)value; break;
	case ALERT_ENUM_URGENCY: a->urgency = (Xba__V1__Urgency)value; break;
	case ALERT_ENUM_CERTAINTY: a->certainty = (Xba__V1__Certainty)value; break;
	case ALERT_ENUM_TLP: a->tlp = (Xba__V1__Tlp)value; break;
	}
}

static int
load_alert(struct loader *l)
{
	const struct ydoc *doc = l->doc;
	const struct ynode *root = doc->root, *v;
	Xba__V1__Alert *a = l->alert;
	static const struct {
		const char *key;
		enum alert_enum_kind kind;
	} enums[] = {
		{ "status", ALERT_ENUM_STATUS },
		{ "msg_type", ALERT_ENUM_MSG_TYPE },
		{ "category", ALERT_ENUM_CATEGORY },
		{ "severity", ALERT_ENUM_SEVERITY },
		{ "urgency", ALERT_ENUM_URGENCY },
		{ "certainty", ALERT_ENUM_CERTAINTY },
		{ "tlp", ALERT_ENUM_TLP },
	};
	int rc;

	if (root == NULL)
		return ydoc_error(doc, NULL, l->err, NULL,
		    "the file is empty (expected an alert: a map with keys such as tlp, category and info)");
	if ((rc = ydoc_check_keys(doc, root, NULL, root_keys, l->err)) != 0)
		return rc;

	if ((v = ynode_get(root, "id")) != NULL && (rc = read_uuid(l, v, "id", &a->id)) != 0)
		return rc;
	if ((v = ynode_get(root, "origin")) != NULL && (rc = read_node_id(l, v, "origin", &a->origin)) != 0)
		return rc;
	if ((v = ynode_get(root, "author")) != NULL &&
	    (rc = read_required_free_text(l, v, "author", ALERT_AUTHOR_MAX, &a->author)) != 0)
		return rc;
	if ((v = ynode_get(root, "sent")) != NULL) {
		if ((rc = ydoc_read_time(doc, v, "sent", &a->sent_ms, l->err)) != 0)
			return rc;
		if (a->sent_ms <= 0)
			return ydoc_error(doc, v, l->err, "sent", "must be after 1970-01-01T00:00:00Z");
	}

	a->status = XBA__V1__STATUS__STATUS_ACTUAL;
	a->msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ALERT;
	for (size_t i = 0; i < sizeof(enums) / sizeof(enums[0]); i++) {
		int value;

		if ((v = ynode_get(root, enums[i].key)) == NULL)
			continue;
		if ((rc = read_enum(l, v, enums[i].key, enums[i].kind, &value)) != 0)
			return rc;
		set_enum(a, enums[i].kind, value);
	}

	if ((v = ynode_get(root, "references")) != NULL && (rc = read_references(l, v)) != 0)
		return rc;
	if ((v = ynode_get(root, "incident")) != NULL &&
	    (rc = read_text(l, v, "incident", ALERT_INCIDENT_MAX, &a->incident)) != 0)
		return rc;
	if (ynode_get(root, "to") != NULL && ynode_get(root, "addressees") != NULL)
		return ydoc_error(doc, ynode_get(root, "addressees"), l->err, "addressees",
		    "'to' and 'addressees' are the same list: write only one of them");
	if ((v = ynode_get(root, "to")) != NULL && (rc = read_addressees(l, v, "to")) != 0)
		return rc;
	if ((v = ynode_get(root, "addressees")) != NULL && (rc = read_addressees(l, v, "addressees")) != 0)
		return rc;
	if ((v = ynode_get(root, "expires")) != NULL &&
	    (rc = read_expiry(l, v, "expires", a->sent_ms != 0 ? a->sent_ms : clock_now_ms(), &a->expires_ms)) != 0)
		return rc;
	if ((v = ynode_get(root, "emergency")) != NULL) {
		bool b;

		if ((rc = ydoc_read_bool(doc, v, "emergency", &b, l->err)) != 0)
			return rc;
		a->emergency = b;
	}
	if ((v = ynode_get(root, "note")) != NULL && (rc = read_free_text(l, v, "note", ALERT_NOTE_MAX, &a->note)) != 0)
		return rc;
	if ((v = ynode_get(root, "info")) != NULL && (rc = read_info(l, v)) != 0)
		return rc;
	if ((v = ynode_get(root, "areas")) != NULL && (rc = read_areas(l, v)) != 0)
		return rc;
	if ((v = ynode_get(root, "parameters")) != NULL && (rc = read_parameters(l, v)) != 0)
		return rc;
	return 0;
}

/* The alert in doc, which this frees.  NULL with err filled on failure. */
static Xba__V1__Alert *
load_doc(struct ydoc *doc, int64_t *expires_in_ms, struct xba_error *err)
{
	struct loader l = { .doc = doc, .err = err };

	if ((l.alert = malloc(sizeof(*l.alert))) == NULL) {
		nomem(&l);
		ydoc_free(doc);
		return NULL;
	}
	xba__v1__alert__init(l.alert);
	if (load_alert(&l) != 0) {
		alertyaml_free(l.alert);
		l.alert = NULL;
	} else {
		xba_error_clear(err);
		if (expires_in_ms != NULL)
			*expires_in_ms = l.expires_in_ms;
	}
	ydoc_free(doc);
	return l.alert;
}

Xba__V1__Alert *
alertyaml_load_buffer(const char *name, const char *data, size_t len, struct xba_error *err)
{
	struct ydoc *doc;

	if (name == NULL)
		name = "(buffer)";
	if (len > ALERTYAML_MAX_BYTES) {
		xba_error_set(err, XBA_ETOOBIG, "%s: file is larger than the limit of %u bytes for an alert", name,
		    ALERTYAML_MAX_BYTES);
		return NULL;
	}
	if ((doc = ydoc_load_buffer(name, data, len, err)) == NULL)
		return NULL;
	return load_doc(doc, NULL, err);
}

Xba__V1__Alert *
alertyaml_load_for_submit(const char *path, int64_t *expires_in_ms, struct xba_error *err)
{
	struct ydoc *doc;

	assert(path != NULL);
	if (expires_in_ms != NULL)
		*expires_in_ms = 0;
	/* yamltree reads the file once, refusing it past the limit before parsing. */
	if ((doc = ydoc_load_file(path, ALERTYAML_MAX_BYTES, err)) == NULL)
		return NULL;
	return load_doc(doc, expires_in_ms, err);
}

Xba__V1__Alert *
alertyaml_load(const char *path, struct xba_error *err)
{
	return alertyaml_load_for_submit(path, NULL, err);
}

void
alertyaml_free(Xba__V1__Alert *alert)
{
	if (alert != NULL)
		xba__v1__alert__free_unpacked(alert, NULL);
}

int
alertyaml_set_text(char **field, const char *text, struct xba_error *err)
{
	char *copy;

	assert(field != NULL && text != NULL);
	if ((copy = strdup(text)) == NULL)
		return xba_error_set(err, XBA_ENOMEM, "out of memory");
	if (*field != NULL && *field != protobuf_c_empty_string)
		free(*field);
	*field = copy;
	return 0;
}
