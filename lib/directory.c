/*
 * directory.c — region.yaml into the region directory (see directory.h; the format is in docs/region.md).
 *
 * Every alert meets the directory twice: the broker's ZAP handler finds the node behind a CURVE key
 * (directory_node_by_curve), and whoever verifies a signature finds the key by id (directory_key) and asks whether
 * it could sign at that time (directory_key_usable).  The rules engine reads roles, neighbours and groups.
 *
 * Loading runs in passes so that each error is reported once, at the value that caused it:
 *   1. every node and key is read and checked on its own, in file order (load_node);
 *   2. nodes are sorted by id and duplicate ids refused; keys are laid out grouped by node (arrange_nodes);
 *   3. duplicate CURVE keys and duplicate signing keys are refused while building the lookup indexes;
 *   4. neighbours and groups are resolved against the sorted nodes.
 * Duplicates come back as XBA_EDUPLICATE; everything else wrong in the file as XBA_ECONFIG.
 */
#include "directory.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert.h"
#include "clock.h"
#include "encoding.h"
#include "yamltree.h"

#define DIRECTORY_MAX_BYTES (4u * 1024 * 1024)
#define REGION_NAME_MAX 64
#define NODE_NAME_MAX 128
#define GROUP_NAME_MAX 32
#define PATH_MAX_TEXT 96

static const char *const root_keys[] = { "region", "nodes", "groups", NULL };
static const char *const node_keys[] = { "id", "name", "role", "curve_key", "signing_keys", "neighbours",
	"may_broadcast", "publish", NULL };
static const char *const key_keys[] = { "public", "valid_from", "valid_until", "revoked_at", NULL };
static const char *const reserved_group_names[] = { "members", "observers", "neighbours", NULL };

/* Where a node was written, kept in file order so messages after sorting still point at the right place. */
struct node_src {
	const struct ynode *id;          /* the id value */
	const struct ynode *curve;       /* the curve_key value */
	const struct ynode *neighbours;  /* the neighbours list, or NULL */
};

struct loader {
	const struct ydoc *doc;
	struct directory *dir;
	struct xba_error *err;
	struct node_src *src;            /* [file index of node] */
	size_t *file_of;                 /* [sorted node index] -> file index */
	size_t *sorted_of;               /* [file index] -> sorted node index */
	const struct ynode **key_src;    /* [key index, file order until arranged, then final] -> its public value */
	size_t *key_file_index;          /* [final key index] -> position of the key in its node's list */
	size_t *key_by_order;            /* [key's rank in the file] -> final key index */
	size_t cap_keys;
};

/* A value with its position in an array, for sorting without a comparison context. */
struct sort_item {
	const void *value;
	size_t index;
};

static int
cmp_item_string(const void *a, const void *b)
{
	const struct sort_item *x = a, *y = b;
	int c = strcmp(x->value, y->value);

	return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

static int
cmp_item_32(const void *a, const void *b)
{
	const struct sort_item *x = a, *y = b;
	int c = memcmp(x->value, y->value, 32);

	return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

static int
cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return (x > y) - (x < y);
}

/* Sort and drop repeats; returns the new count. */
static size_t
sort_unique(size_t *v, size_t n)
{
	size_t out = 0;

	if (n == 0)
		return 0;  /* v may be NULL then, which qsort does not allow */
	qsort(v, n, sizeof(*v), cmp_size);
	for (size_t i = 0; i < n; i++)
		if (out == 0 || v[out - 1] != v[i])
			v[out++] = v[i];
	return out;
}

static int
nomem(struct loader *l)
{
	return xba_error_set(l->err, XBA_ENOMEM, "%s: out of memory loading the directory", l->doc->name);
}

/* A located XBA_EDUPLICATE: the message of ydoc_error with the code programs branch on for duplicates. */
static int
dup_error(struct loader *l, const struct ynode *node, const char *path, const char *fmt, ...) XBA_PRINTF(4, 5);

static int
dup_error(struct loader *l, const struct ynode *node, const char *path, const char *fmt, ...)
{
	char msg[XBA_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ydoc_error(l->doc, node, l->err, path, "%s", msg);
	if (l->err != NULL)
		l->err->code = XBA_EDUPLICATE;
	return XBA_EDUPLICATE;
}

static bool
name_valid(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static bool
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

#define QUOTE_SIZE 68

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

/* Required key of map: its value, or a located error at the map naming the key. */
static int
required(struct loader *l, const struct ynode *map, const char *path, const char *key, const struct ynode **out)
{
	*out = ynode_get(map, key);
	if (*out == NULL)
		return ydoc_error(l->doc, map, l->err, path, "missing required key '%s'", key);
	return 0;
}

static int
parse_role(struct loader *l, const struct ynode *node, const char *path, enum node_role *out)
{
	char q[QUOTE_SIZE];
	const char *text;
	int rc = ydoc_read_string(l->doc, node, path, 256, &text, l->err);

	if (rc != 0)
		return rc;
	if (strcmp(text, "member") == 0)
		*out = NODE_ROLE_MEMBER;
	else if (strcmp(text, "observer") == 0)
		*out = NODE_ROLE_OBSERVER;
	else if (strcmp(text, "admin") == 0)
		*out = NODE_ROLE_ADMIN;
	else
		return ydoc_error(l->doc, node, l->err, path, "unknown role '%s' (expected one of: member, observer, "
		    "admin)", quote(text, q));
	return 0;
}

/* Append one signing key (list item i of node file index n) to dir->keys. */
static int
load_key(struct loader *l, const struct ynode *item, size_t node_file_index, size_t i)
{
	struct directory *dir = l->dir;
	char path[PATH_MAX_TEXT], fpath[PATH_MAX_TEXT + 32];
	const struct ynode *pub, *v;
	struct dir_key *key;
	struct xba_error inner;
	uint8_t raw[XBA_ED25519_PUBLIC_LEN];
	const char *text;
	int rc;

	snprintf(path, sizeof(path), "nodes[%zu].signing_keys[%zu]", node_file_index, i);
	if ((rc = ydoc_check_keys(l->doc, item, path, key_keys, l->err)) != 0 ||
	    (rc = required(l, item, path, "public", &pub)) != 0)
		return rc;
	snprintf(fpath, sizeof(fpath), "%s.public", path);
	if ((rc = ydoc_read_string(l->doc, pub, fpath, 256, &text, l->err)) != 0)
		return rc;
	if (keys_parse_public_base64(text, raw, &inner) != 0)
		return ydoc_error(l->doc, pub, l->err, fpath, "%s", inner.msg);
	if (dir->n_keys == l->cap_keys) {
		size_t cap = l->cap_keys ? l->cap_keys * 2 : 16;
		struct dir_key *keys = realloc(dir->keys, cap * sizeof(*keys));
		const struct ynode **src;

		if (keys == NULL)
			return nomem(l);
		dir->keys = keys;
		if ((src = realloc(l->key_src, cap * sizeof(*src))) == NULL)
			return nomem(l);
		l->key_src = src;
		l->cap_keys = cap;
	}
	key = &dir->keys[dir->n_keys];
	memset(key, 0, sizeof(*key));
	if (sig_pubkey_init(&key->pub, raw, &inner) != 0)
		return ydoc_error(l->doc, pub, l->err, fpath, "%s", inner.msg);
	dir->n_keys++;  /* from here directory_free() clears it */
	l->key_src[dir->n_keys - 1] = pub;
	keys_key_id(raw, key->key_id);
	key->node_index = node_file_index;
	key->valid_from_ms = 0;
	key->valid_until_ms = XBA_TIME_NEVER;
	key->revoked_at_ms = XBA_TIME_NEVER;
	if ((v = ynode_get(item, "valid_from")) != NULL) {
		snprintf(fpath, sizeof(fpath), "%s.valid_from", path);
		if ((rc = ydoc_read_time(l->doc, v, fpath, &key->valid_from_ms, l->err)) != 0)
			return rc;
	}
	if ((v = ynode_get(item, "valid_until")) != NULL) {
		snprintf(fpath, sizeof(fpath), "%s.valid_until", path);
		if ((rc = ydoc_read_time(l->doc, v, fpath, &key->valid_until_ms, l->err)) != 0)
			return rc;
		if (key->valid_until_ms <= key->valid_from_ms) {
			char from[32], until[32];

			return ydoc_error(l->doc, v, l->err, fpath, "valid_until (%s) must be after valid_from (%s)",
			    clock_format_rfc3339(key->valid_until_ms, until, sizeof(until)),
			    clock_format_rfc3339(key->valid_from_ms, from, sizeof(from)));
		}
	}
	if ((v = ynode_get(item, "revoked_at")) != NULL) {
		snprintf(fpath, sizeof(fpath), "%s.revoked_at", path);
		if ((rc = ydoc_read_time(l->doc, v, fpath, &key->revoked_at_ms, l->err)) != 0)
			return rc;
	}
	return 0;
}

static int
load_publish(struct loader *l, const struct ynode *list, size_t node_file_index, struct dir_node *node)
{
	char path[PATH_MAX_TEXT], ipath[PATH_MAX_TEXT + 32];
	int rc, max = alert_enum_max(ALERT_ENUM_CATEGORY);

	assert(max > 0 && max < 32);
	snprintf(path, sizeof(path), "nodes[%zu].publish", node_file_index);
	if (node->role != NODE_ROLE_OBSERVER)
		return ydoc_error(l->doc, list, l->err, path, "only observer nodes take a publish list (members may "
		    "publish every category, admins none)");
	if ((rc = ydoc_expect_sequence(l->doc, list, path, l->err)) != 0)
		return rc;
	for (size_t i = 0; i < list->count; i++) {
		const char *text;
		int value;

		snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
		if ((rc = ydoc_read_string(l->doc, list->items[i], ipath, 64, &text, l->err)) != 0)
			return rc;
		if (alert_enum_parse(ALERT_ENUM_CATEGORY, text, &value) != 0) {
			char names[256], q[QUOTE_SIZE];
			size_t used = 0;

			names[0] = '\0';
			for (int v = 1; v <= max && used < sizeof(names); v++) {
				int n = snprintf(names + used, sizeof(names) - used, "%s%s", v > 1 ? ", " : "",
				    alert_enum_name(ALERT_ENUM_CATEGORY, v));

				if (n < 0)
					break;
				used += (size_t)n;
			}
			return ydoc_error(l->doc, list->items[i], l->err, ipath,
			    "unknown category '%s' (expected one of: %s)", quote(text, q), names);
		}
		node->publish_categories |= 1u << value;
	}
	return 0;
}

/* Read and check node number i (file order) into dir->nodes[i]; its keys are appended to dir->keys. */
static int
load_node(struct loader *l, const struct ynode *map, size_t i)
{
	struct dir_node *node = &l->dir->nodes[i];
	struct node_src *src = &l->src[i];
	char path[PATH_MAX_TEXT], fpath[PATH_MAX_TEXT + 16], q[QUOTE_SIZE];
	const struct ynode *v, *keys;
	const char *text;
	bool b;
	int rc;

	snprintf(path, sizeof(path), "nodes[%zu]", i);
	if ((rc = ydoc_check_keys(l->doc, map, path, node_keys, l->err)) != 0)
		return rc;

	snprintf(fpath, sizeof(fpath), "%s.id", path);
	if ((rc = required(l, map, path, "id", &src->id)) != 0 ||
	    (rc = ydoc_read_string(l->doc, src->id, fpath, 256, &text, l->err)) != 0)
		return rc;
	if (!syntax_node_id_valid(text))
		return ydoc_error(l->doc, src->id, l->err, fpath, "'%s' is not a valid node id (2 to %d of A-Z, 0-9 "
		    "and '-', starting with a letter, not ending with '-')", quote(text, q), XBA_NODE_ID_MAX);
	memcpy(node->id, text, strlen(text) + 1);

	snprintf(fpath, sizeof(fpath), "%s.name", path);
	if ((rc = required(l, map, path, "name", &v)) != 0 ||
	    (rc = ydoc_read_string(l->doc, v, fpath, NODE_NAME_MAX, &text, l->err)) != 0)
		return rc;
	if (text[0] == '\0' || has_control(text) || !syntax_utf8_valid(text, strlen(text)))
		return ydoc_error(l->doc, v, l->err, fpath, "must be 1 to %d bytes of UTF-8 text without control "
		    "characters", NODE_NAME_MAX);
	if ((node->name = strdup(text)) == NULL)
		return nomem(l);

	snprintf(fpath, sizeof(fpath), "%s.role", path);
	if ((rc = required(l, map, path, "role", &v)) != 0 || (rc = parse_role(l, v, fpath, &node->role)) != 0)
		return rc;
	if (node->role == NODE_ROLE_MEMBER && !syntax_iso3166_alpha3(node->id)) {
		snprintf(fpath, sizeof(fpath), "%s.id", path);
		return ydoc_error(l->doc, src->id, l->err, fpath, "'%s' is not an ISO 3166-1 alpha-3 country code "
		    "(member nodes must use one; observers and admins may use other ids)", node->id);
	}

	snprintf(fpath, sizeof(fpath), "%s.curve_key", path);
	if ((rc = required(l, map, path, "curve_key", &src->curve)) != 0 ||
	    (rc = ydoc_read_string(l->doc, src->curve, fpath, 256, &text, l->err)) != 0)
		return rc;
	if (strlen(text) != XBA_Z85_KEY_TEXT_LEN || encoding_z85_key(text, node->curve_public) != 0)
		return ydoc_error(l->doc, src->curve, l->err, fpath, "not a valid Z85 CURVE key (expected %d Z85 "
		    "characters)", XBA_Z85_KEY_TEXT_LEN);
	memcpy(node->curve_public_z85, text, XBA_Z85_KEY_TEXT_LEN + 1);

	snprintf(fpath, sizeof(fpath), "%s.signing_keys", path);
	node->first_key = l->dir->n_keys;
	keys = ynode_get(map, "signing_keys");
	if (keys == NULL && node->role != NODE_ROLE_ADMIN)
		return ydoc_error(l->doc, map, l->err, path, "missing required key 'signing_keys' (every %s signs "
		    "what it publishes)", directory_role_name(node->role));
	if (keys != NULL) {
		if ((rc = ydoc_expect_sequence(l->doc, keys, fpath, l->err)) != 0)
			return rc;
		if (keys->count == 0 && node->role != NODE_ROLE_ADMIN)
			return ydoc_error(l->doc, keys, l->err, fpath, "a %s needs at least one signing key",
			    directory_role_name(node->role));
		for (size_t k = 0; k < keys->count; k++)
			if ((rc = load_key(l, keys->items[k], i, k)) != 0)
				return rc;
	}
	node->n_keys = l->dir->n_keys - node->first_key;

	/* Neighbours are only shaped here; they are resolved once every node is known. */
	if ((src->neighbours = ynode_get(map, "neighbours")) != NULL) {
		snprintf(fpath, sizeof(fpath), "%s.neighbours", path);
		if ((rc = ydoc_expect_sequence(l->doc, src->neighbours, fpath, l->err)) != 0)
			return rc;
	}

	if ((v = ynode_get(map, "may_broadcast")) != NULL) {
		snprintf(fpath, sizeof(fpath), "%s.may_broadcast", path);
		if ((rc = ydoc_read_bool(l->doc, v, fpath, &b, l->err)) != 0)
			return rc;
		if (b && node->role == NODE_ROLE_ADMIN)
			return ydoc_error(l->doc, v, l->err, fpath, "admin nodes may not broadcast");
		node->may_broadcast = b;
	}

	if (node->role == NODE_ROLE_MEMBER)
		node->publish_categories = ((1u << (alert_enum_max(ALERT_ENUM_CATEGORY) + 1)) - 1) & ~1u;
	if ((v = ynode_get(map, "publish")) != NULL && (rc = load_publish(l, v, i, node)) != 0)
		return rc;
	return 0;
}

/* Sort nodes by id (refusing duplicates) and lay keys out grouped by node in that order. */
static int
arrange_nodes(struct loader *l)
{
	struct directory *dir = l->dir;
	size_t n = dir->n_nodes, best = SIZE_MAX, k;
	struct sort_item *items = calloc(n, sizeof(*items));
	struct dir_node *nodes = NULL;
	struct dir_key *keys = NULL;
	const struct ynode **key_src = NULL;
	int rc = 0;

	if (items == NULL)
		return nomem(l);
	for (size_t i = 0; i < n; i++) {
		items[i].value = dir->nodes[i].id;
		items[i].index = i;
	}
	qsort(items, n, sizeof(*items), cmp_item_string);
	/* Of all repeated ids, report the repeat written first in the file. */
	for (size_t i = 1, run = 0; i < n; i++) {
		if (strcmp(items[i].value, items[run].value) != 0)
			run = i;
		else if (best == SIZE_MAX || items[i].index < items[best].index)
			best = i;
	}
	if (best != SIZE_MAX) {
		size_t first = best;
		char path[PATH_MAX_TEXT];
		const struct ynode *at;

		while (first > 0 && strcmp(items[first - 1].value, items[best].value) == 0)
			first--;
		at = l->src[items[first].index].id;
		snprintf(path, sizeof(path), "nodes[%zu].id", items[best].index);
		rc = dup_error(l, l->src[items[best].index].id, path, "duplicate node id '%s' (first defined as "
		    "nodes[%zu] at line %d, column %d)", (const char *)items[best].value, items[first].index, at->line,
		    at->column);
		free(items);
		return rc;
	}
	nodes = calloc(n, sizeof(*nodes));
	keys = calloc(dir->n_keys ? dir->n_keys : 1, sizeof(*keys));
	key_src = calloc(dir->n_keys ? dir->n_keys : 1, sizeof(*key_src));
	l->file_of = calloc(n, sizeof(*l->file_of));
	l->sorted_of = calloc(n, sizeof(*l->sorted_of));
	l->key_file_index = calloc(dir->n_keys ? dir->n_keys : 1, sizeof(*l->key_file_index));
	l->key_by_order = calloc(dir->n_keys ? dir->n_keys : 1, sizeof(*l->key_by_order));
	if (nodes == NULL || keys == NULL || key_src == NULL || l->file_of == NULL || l->sorted_of == NULL ||
	    l->key_file_index == NULL || l->key_by_order == NULL) {
		free(items);
		free(nodes);
		free(keys);
		free(key_src);
		return nomem(l);
	}
	/* Ownership of names and parsed keys moves with the struct copies; the old arrays are freed bare. */
	k = 0;
	for (size_t s = 0; s < n; s++) {
		size_t f = items[s].index;
		const struct dir_node *old = &dir->nodes[f];

		nodes[s] = *old;
		nodes[s].first_key = k;
		for (size_t j = 0; j < old->n_keys; j++, k++) {
			keys[k] = dir->keys[old->first_key + j];
			keys[k].node_index = s;
			key_src[k] = l->key_src[old->first_key + j];
			l->key_file_index[k] = j;
			l->key_by_order[old->first_key + j] = k;  /* keys were read in file order */
		}
		l->file_of[s] = f;
		l->sorted_of[f] = s;
	}
	assert(k == dir->n_keys);
	free(items);
	free(dir->nodes);
	free(dir->keys);
	free(l->key_src);
	dir->nodes = nodes;
	dir->keys = keys;
	l->key_src = key_src;
	return 0;
}

/* nodes_by_curve, refusing a CURVE key used by two nodes. */
static int
index_curves(struct loader *l)
{
	struct directory *dir = l->dir;
	size_t n = dir->n_nodes, best = SIZE_MAX;
	struct sort_item *items = calloc(n, sizeof(*items));
	int rc = 0;

	if (items == NULL || (dir->nodes_by_curve = calloc(n, sizeof(size_t))) == NULL) {
		free(items);
		return nomem(l);
	}
	/* Sorted by key, then by file position, so the first of a run is the one written first. */
	for (size_t s = 0; s < n; s++) {
		items[s].value = dir->nodes[s].curve_public;
		items[s].index = l->file_of[s];
	}
	qsort(items, n, sizeof(*items), cmp_item_32);
	for (size_t i = 1; i < n; i++)
		if (memcmp(items[i].value, items[i - 1].value, 32) == 0 &&
		    (best == SIZE_MAX || items[i].index < items[best].index))
			best = i;
	if (best != SIZE_MAX) {
		size_t first = best;
		char path[PATH_MAX_TEXT];

		while (first > 0 && memcmp(items[first - 1].value, items[best].value, 32) == 0)
			first--;
		snprintf(path, sizeof(path), "nodes[%zu].curve_key", items[best].index);
		rc = dup_error(l, l->src[items[best].index].curve, path, "CURVE key already used by node '%s' "
		    "(nodes[%zu] at line %d, column %d); every node needs its own",
		    dir->nodes[l->sorted_of[items[first].index]].id, items[first].index,
		    l->src[items[first].index].curve->line, l->src[items[first].index].curve->column);
	} else {
		for (size_t i = 0; i < n; i++)
			dir->nodes_by_curve[i] = l->sorted_of[items[i].index];
	}
	free(items);
	return rc;
}

/* keys_by_id, refusing a signing key listed twice anywhere. */
static int
index_keys(struct loader *l)
{
	struct directory *dir = l->dir;
	size_t n = dir->n_keys, best = SIZE_MAX;
	struct sort_item *items = calloc(n ? n : 1, sizeof(*items));
	int rc = 0;

	if (items == NULL || (dir->keys_by_id = calloc(n ? n : 1, sizeof(size_t))) == NULL) {
		free(items);
		return nomem(l);
	}
	/* Sorted by key id, then by rank in the file, so the first of a run is the one written first. */
	for (size_t r = 0; r < n; r++) {
		items[r].value = dir->keys[l->key_by_order[r]].key_id;
		items[r].index = r;
	}
	qsort(items, n, sizeof(*items), cmp_item_32);
	for (size_t i = 1; i < n; i++)
		if (memcmp(items[i].value, items[i - 1].value, XBA_KEY_ID_LEN) == 0 &&
		    (best == SIZE_MAX || items[i].index < items[best].index))
			best = i;
	if (best != SIZE_MAX) {
		size_t first = best, repeat, orig;
		const struct ynode *at;
		char path[PATH_MAX_TEXT];

		while (first > 0 && memcmp(items[first - 1].value, items[best].value, XBA_KEY_ID_LEN) == 0)
			first--;
		repeat = l->key_by_order[items[best].index];
		orig = l->key_by_order[items[first].index];
		at = l->key_src[orig];
		snprintf(path, sizeof(path), "nodes[%zu].signing_keys[%zu].public",
		    l->file_of[dir->keys[repeat].node_index], l->key_file_index[repeat]);
		rc = dup_error(l, l->key_src[repeat], path, "signing key already listed for node '%s' (nodes[%zu]."
		    "signing_keys[%zu] at line %d, column %d); a key speaks for one node, once",
		    dir->nodes[dir->keys[orig].node_index].id, l->file_of[dir->keys[orig].node_index],
		    l->key_file_index[orig], at->line, at->column);
	} else {
		for (size_t i = 0; i < n; i++)
			dir->keys_by_id[i] = l->key_by_order[items[i].index];
	}
	free(items);
	return rc;
}

/* Look up the node a list item names; located error when it is not a node id we know. */
static int
resolve_node(struct loader *l, const struct ynode *item, const char *path, size_t *out)
{
	const struct dir_node *node;
	char q[QUOTE_SIZE];
	const char *text;
	int rc;

	if ((rc = ydoc_read_string(l->doc, item, path, 256, &text, l->err)) != 0)
		return rc;
	if ((node = directory_node(l->dir, text)) == NULL)
		return ydoc_error(l->doc, item, l->err, path, "unknown node '%s' (not listed under nodes)",
		    quote(text, q));
	*out = directory_node_index(l->dir, node);
	return 0;
}

/* Resolve every neighbours list and make the relation symmetric. */
static int
link_neighbours(struct loader *l)
{
	struct directory *dir = l->dir;
	size_t n_edges = 0, (*edges)[2] = NULL;
	int rc = 0;

	for (size_t f = 0; f < dir->n_nodes; f++)
		if (l->src[f].neighbours != NULL)
			n_edges += l->src[f].neighbours->count;
	if (n_edges == 0)
		return 0;
	if ((edges = calloc(n_edges, sizeof(*edges))) == NULL)
		return nomem(l);
	n_edges = 0;
	for (size_t f = 0; f < dir->n_nodes && rc == 0; f++) {
		const struct ynode *list = l->src[f].neighbours;
		size_t self = l->sorted_of[f];

		for (size_t i = 0; list != NULL && i < list->count && rc == 0; i++) {
			char path[PATH_MAX_TEXT];
			size_t other = 0; /* set by resolve_node; initialised for -O3, which cannot see it */

			snprintf(path, sizeof(path), "nodes[%zu].neighbours[%zu]", f, i);
			if ((rc = resolve_node(l, list->items[i], path, &other)) != 0)
				break;
			if (other == self) {
				rc = ydoc_error(l->doc, list->items[i], l->err, path, "a node cannot neighbour itself");
				break;
			}
			edges[n_edges][0] = self;
			edges[n_edges][1] = other;
			n_edges++;
		}
	}
	/* Count both directions, allocate, fill, then sort and drop repeats (declared on both sides, or twice). */
	for (size_t e = 0; e < n_edges && rc == 0; e++) {
		dir->nodes[edges[e][0]].n_neighbours++;
		dir->nodes[edges[e][1]].n_neighbours++;
	}
	for (size_t s = 0; s < dir->n_nodes && rc == 0; s++) {
		if (dir->nodes[s].n_neighbours == 0)
			continue;
		if ((dir->nodes[s].neighbours = calloc(dir->nodes[s].n_neighbours, sizeof(size_t))) == NULL)
			rc = nomem(l);
		dir->nodes[s].n_neighbours = 0;
	}
	for (size_t e = 0; e < n_edges && rc == 0; e++) {
		struct dir_node *a = &dir->nodes[edges[e][0]], *b = &dir->nodes[edges[e][1]];

		a->neighbours[a->n_neighbours++] = edges[e][1];
		b->neighbours[b->n_neighbours++] = edges[e][0];
	}
	for (size_t s = 0; s < dir->n_nodes && rc == 0; s++)
		dir->nodes[s].n_neighbours = sort_unique(dir->nodes[s].neighbours, dir->nodes[s].n_neighbours);
	if (rc != 0)
		for (size_t s = 0; s < dir->n_nodes; s++)
			dir->nodes[s].n_neighbours = 0;
	free(edges);
	return rc;
}

static int
cmp_group(const void *a, const void *b)
{
	return strcmp(((const struct dir_group *)a)->name, ((const struct dir_group *)b)->name);
}

static int
load_groups(struct loader *l, const struct ynode *map)
{
	struct directory *dir = l->dir;
	int rc;

	if ((rc = ydoc_expect_map(l->doc, map, "groups", l->err)) != 0)
		return rc;
	if (map->count == 0)
		return 0;
	if ((dir->groups = calloc(map->count, sizeof(*dir->groups))) == NULL)
		return nomem(l);
	for (size_t g = 0; g < map->count; g++) {
		const struct ynode *name = map->keys[g], *list = map->items[g];
		struct dir_group *group = &dir->groups[dir->n_groups];
		char path[PATH_MAX_TEXT], ipath[PATH_MAX_TEXT + 32];

		if (strlen(name->scalar) != name->scalar_len || !name_valid(name->scalar, GROUP_NAME_MAX))
			return ydoc_error(l->doc, name, l->err, "groups", "not a valid group name (1 to %d of a-z, 0-9 "
			    "and '-')", GROUP_NAME_MAX);
		for (size_t r = 0; reserved_group_names[r] != NULL; r++)
			if (strcmp(name->scalar, reserved_group_names[r]) == 0)
				return ydoc_error(l->doc, name, l->err, "groups", "'%s' is reserved by the rules "
				    "language (members, observers and neighbours cannot be group names)", name->scalar);
		snprintf(path, sizeof(path), "groups.%s", name->scalar);
		if ((rc = ydoc_expect_sequence(l->doc, list, path, l->err)) != 0)
			return rc;
		if (list->count == 0)
			return ydoc_error(l->doc, list, l->err, path, "a group needs at least one member");
		if ((group->name = strdup(name->scalar)) == NULL)
			return nomem(l);
		dir->n_groups++;
		if ((group->members = calloc(list->count, sizeof(size_t))) == NULL)
			return nomem(l);
		for (size_t i = 0; i < list->count; i++) {
			snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
			if ((rc = resolve_node(l, list->items[i], ipath, &group->members[i])) != 0)
				return rc;
		}
		group->n_members = sort_unique(group->members, list->count);
	}
	/* Names are distinct: yamltree refuses a map with a key written twice. */
	qsort(dir->groups, dir->n_groups, sizeof(*dir->groups), cmp_group);
	return 0;
}

static int
load_tree(struct loader *l)
{
	const struct ydoc *doc = l->doc;
	struct directory *dir = l->dir;
	const struct ynode *root = doc->root, *v, *nodes;
	char q[QUOTE_SIZE];
	const char *text;
	int rc;

	if (root == NULL)
		return ydoc_error(doc, NULL, l->err, NULL, "the file is empty (expected a map with keys region and "
		    "nodes)");
	if ((rc = ydoc_check_keys(doc, root, NULL, root_keys, l->err)) != 0)
		return rc;

	if ((rc = required(l, root, NULL, "region", &v)) != 0 ||
	    (rc = ydoc_read_string(doc, v, "region", 256, &text, l->err)) != 0)
		return rc;
	if (!name_valid(text, REGION_NAME_MAX))
		return ydoc_error(doc, v, l->err, "region", "'%s' is not a valid region name (1 to %d of a-z, 0-9 and "
		    "'-')", quote(text, q), REGION_NAME_MAX);
	if ((dir->region = strdup(text)) == NULL)
		return nomem(l);

	if ((rc = required(l, root, NULL, "nodes", &nodes)) != 0 ||
	    (rc = ydoc_expect_sequence(doc, nodes, "nodes", l->err)) != 0)
		return rc;
	if (nodes->count == 0)
		return ydoc_error(doc, nodes, l->err, "nodes", "the region needs at least one node");
	dir->nodes = calloc(nodes->count, sizeof(*dir->nodes));
	l->src = calloc(nodes->count, sizeof(*l->src));
	if (dir->nodes == NULL || l->src == NULL)
		return nomem(l);
	for (size_t i = 0; i < nodes->count; i++) {
		dir->n_nodes++;  /* so directory_free() sees this node's name even when it fails half-way */
		if ((rc = load_node(l, nodes->items[i], i)) != 0)
			return rc;
	}
	if ((rc = arrange_nodes(l)) != 0 || (rc = index_curves(l)) != 0 || (rc = index_keys(l)) != 0 ||
	    (rc = link_neighbours(l)) != 0)
		return rc;
	if ((v = ynode_get(root, "groups")) != NULL && (rc = load_groups(l, v)) != 0)
		return rc;
	return 0;
}

/* Build the directory from a parsed document; takes ownership of doc. */
static struct directory *
directory_from_doc(struct ydoc *doc, struct xba_error *err)
{
	struct directory *dir;
	struct loader l;
	int rc;

	if ((dir = calloc(1, sizeof(*dir))) == NULL || (dir->path = strdup(doc->name)) == NULL) {
		free(dir);
		xba_error_set(err, XBA_ENOMEM, "%s: out of memory loading the directory", doc->name);
		ydoc_free(doc);
		return NULL;
	}
	memcpy(dir->digest, doc->digest, sizeof(dir->digest));
	memset(&l, 0, sizeof(l));
	l.doc = doc;
	l.dir = dir;
	l.err = err;
	rc = load_tree(&l);
	free(l.src);
	free(l.file_of);
	free(l.sorted_of);
	free(l.key_src);
	free(l.key_file_index);
	free(l.key_by_order);
	ydoc_free(doc);
	if (rc != 0) {
		directory_free(dir);
		return NULL;
	}
	xba_error_clear(err);
	return dir;
}

struct directory *
directory_load_buffer(const char *name, const char *data, size_t len, struct xba_error *err)
{
	struct ydoc *doc = ydoc_load_buffer(name != NULL ? name : "(buffer)", data, len, err);

	return doc != NULL ? directory_from_doc(doc, err) : NULL;
}

struct directory *
directory_load(const char *path, struct xba_error *err)
{
	struct ydoc *doc;

	assert(path != NULL);
	doc = ydoc_load_file(path, DIRECTORY_MAX_BYTES, err);
	return doc != NULL ? directory_from_doc(doc, err) : NULL;
}

void
directory_free(struct directory *dir)
{
	if (dir == NULL)
		return;
	for (size_t i = 0; i < dir->n_nodes; i++) {
		free(dir->nodes[i].name);
		free(dir->nodes[i].neighbours);
	}
	for (size_t k = 0; k < dir->n_keys; k++)
		sig_pubkey_clear(&dir->keys[k].pub);
	for (size_t g = 0; g < dir->n_groups; g++) {
		free(dir->groups[g].name);
		free(dir->groups[g].members);
	}
	free(dir->nodes);
	free(dir->keys);
	free(dir->groups);
	free(dir->keys_by_id);
	free(dir->nodes_by_curve);
	free(dir->region);
	free(dir->path);
	free(dir);
}

/* ---- lookups ---- */

static int
cmp_id_node(const void *key, const void *elem)
{
	return strcmp(key, ((const struct dir_node *)elem)->id);
}

const struct dir_node *
directory_node(const struct directory *dir, const char *id)
{
	assert(dir != NULL);
	if (id == NULL || dir->n_nodes == 0)
		return NULL;
	return bsearch(id, dir->nodes, dir->n_nodes, sizeof(*dir->nodes), cmp_id_node);
}

/* bsearch probes for the index arrays: the comparator gets the probe first (C11 7.22.5.1), so it carries dir. */
struct probe {
	const struct directory *dir;
	const uint8_t *bytes;
};

static int
cmp_curve_probe(const void *key, const void *elem)
{
	const struct probe *p = key;

	return memcmp(p->bytes, p->dir->nodes[*(const size_t *)elem].curve_public, XBA_CURVE_KEY_LEN);
}

const struct dir_node *
directory_node_by_curve(const struct directory *dir, const uint8_t curve_public[32])
{
	struct probe p = { dir, curve_public };
	const size_t *hit;

	assert(dir != NULL && curve_public != NULL);
	if (dir->n_nodes == 0)
		return NULL;
	hit = bsearch(&p, dir->nodes_by_curve, dir->n_nodes, sizeof(size_t), cmp_curve_probe);
	return hit != NULL ? &dir->nodes[*hit] : NULL;
}

static int
cmp_key_probe(const void *key, const void *elem)
{
	const struct probe *p = key;

	return memcmp(p->bytes, p->dir->keys[*(const size_t *)elem].key_id, XBA_KEY_ID_LEN);
}

const struct dir_key *
directory_key(const struct directory *dir, const uint8_t key_id[XBA_KEY_ID_LEN])
{
	struct probe p = { dir, key_id };
	const size_t *hit;

	assert(dir != NULL && key_id != NULL);
	if (dir->n_keys == 0)
		return NULL;
	hit = bsearch(&p, dir->keys_by_id, dir->n_keys, sizeof(size_t), cmp_key_probe);
	return hit != NULL ? &dir->keys[*hit] : NULL;
}

static int
cmp_name_group(const void *key, const void *elem)
{
	return strcmp(key, ((const struct dir_group *)elem)->name);
}

const struct dir_group *
directory_group(const struct directory *dir, const char *name)
{
	assert(dir != NULL);
	if (name == NULL || dir->n_groups == 0)
		return NULL;
	return bsearch(name, dir->groups, dir->n_groups, sizeof(*dir->groups), cmp_name_group);
}

size_t
directory_node_index(const struct directory *dir, const struct dir_node *node)
{
	assert(dir != NULL && node >= dir->nodes && node < dir->nodes + dir->n_nodes);
	return (size_t)(node - dir->nodes);
}

bool
directory_are_neighbours(const struct directory *dir, const struct dir_node *a, const struct dir_node *b)
{
	size_t ib = directory_node_index(dir, b);

	(void)directory_node_index(dir, a);
	if (a->n_neighbours == 0)
		return false;
	return bsearch(&ib, a->neighbours, a->n_neighbours, sizeof(size_t), cmp_size) != NULL;
}

int
directory_key_usable(const struct directory *dir, const struct dir_key *key, int64_t sent_ms, int64_t now_ms,
    struct xba_error *err)
{
	const struct dir_node *node;
	char fp[64], t1[32], t2[32];

	assert(dir != NULL && key != NULL && key->node_index < dir->n_nodes);
	node = &dir->nodes[key->node_index];
	if (key->revoked_at_ms > now_ms && sent_ms >= key->valid_from_ms && sent_ms < key->valid_until_ms)
		return 0;  /* the per-alert path: nothing formatted */
	keys_fingerprint(key->key_id, fp, sizeof(fp));
	if (key->revoked_at_ms <= now_ms)
		return xba_error_set(err, XBA_EKEYREVOKED, "signing key %s of node %s was revoked at %s (now %s)", fp,
		    node->id, clock_format_rfc3339(key->revoked_at_ms, t1, sizeof(t1)),
		    clock_format_rfc3339(now_ms, t2, sizeof(t2)));
	if (sent_ms < key->valid_from_ms)
		return xba_error_set(err, XBA_EKEYVALIDITY,
		    "signing key %s of node %s is valid only from %s; the alert was sent at %s", fp, node->id,
		    clock_format_rfc3339(key->valid_from_ms, t1, sizeof(t1)),
		    clock_format_rfc3339(sent_ms, t2, sizeof(t2)));
	if (sent_ms >= key->valid_until_ms)
		return xba_error_set(err, XBA_EKEYVALIDITY,
		    "signing key %s of node %s expired at %s; the alert was sent at %s", fp, node->id,
		    clock_format_rfc3339(key->valid_until_ms, t1, sizeof(t1)),
		    clock_format_rfc3339(sent_ms, t2, sizeof(t2)));
	return 0;
}

int64_t
directory_key_signs_until(const struct dir_key *key)
{
	return key->revoked_at_ms < key->valid_until_ms ? key->revoked_at_ms : key->valid_until_ms;
}

int64_t
directory_node_signs_until(const struct directory *dir, const struct dir_node *node, int64_t now_ms)
{
	int64_t covered = now_ms;
	bool extended = true;

	/* Chain the keys' windows from now: a node has a handful of keys, so a pass per link is cheap enough. */
	while (covered != XBA_TIME_NEVER && extended) {
		extended = false;
		for (size_t k = node->first_key; k < node->first_key + node->n_keys; k++) {
			const struct dir_key *key = &dir->keys[k];
			int64_t until = directory_key_signs_until(key);

			if (key->valid_from_ms <= covered && until > covered) {
				covered = until;
				extended = true;
			}
		}
	}
	return covered;
}

const char *
directory_role_name(enum node_role role)
{
	switch (role) {
	case NODE_ROLE_MEMBER: return "member";
	case NODE_ROLE_OBSERVER: return "observer";
	case NODE_ROLE_ADMIN: return "admin";
	}
	return "unknown";
}
