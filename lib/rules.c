/*
 * rules.c — rules.yaml into bitsets over the directory's nodes, and the router that applies them to every alert
 * (see rules.h; the language and the routing steps are in docs/rules.md).
 *
 * In the flow of an alert this runs in the broker between verification and the journal: the alert is already
 * signed, verified and validated; what comes out is the routing decision the journal records and the fan-out
 * follows.  `xba rules check` and `xba rules explain` run the same code offline.
 *
 * Loading resolves every name once: node ids, group names, members and observers become one bitset per rule
 * (targets, and origins when the rule has an origin condition); enum names become bit masks.  Only `neighbours`
 * stays symbolic, because it depends on the alert's origin; the router turns it into a bitset from the
 * directory's index lists, at most once per alert.  Routing then is a handful of word-wide AND/OR operations per
 * matching rule, with its scratch bitsets on the stack (hence RULES_MAX_NODES) and the two result arrays, sized
 * for every node, doubling as per-node scratch for the credited rule and the withheld reason.
 */
#include "rules.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert.h"
#include "encoding.h"
#include "yamltree.h"

#define WORDS_MAX (RULES_MAX_NODES / 64)
/* Key-path buffers, each long enough for the one before plus what is appended: "rules[12]" -> ".when" ->
 * ".severity_at_least" -> "[3]". */
#define RULE_PATH 32
#define WHEN_PATH 48
#define FIELD_PATH 80
#define ITEM_PATH 112
#define QUOTE_SIZE 68
#define ENUM_TEXT_MAX 64

static const char *const root_keys[] = { "rules", NULL };
static const char *const rule_keys[] = { "name", "when", "to", "deny", NULL };
static const char *const when_keys[] = { "category", "severity_at_least", "status", "tlp", "msg_type", "origin",
	"emergency", NULL };
/* Reasons the engine records on its own; a rule with one of these names would make the journal ambiguous. */
static const char *const builtin_names[] = { RULES_BY_EMERGENCY, RULES_BY_ACK, RULES_WITHHELD_ADMIN,
	RULES_WITHHELD_NOT_ADDRESSED, RULES_WITHHELD_NO_RULE, NULL };

struct rule {
	char *name;                 /* owned; unique in the file */
	bool deny;                  /* deny rule: its targets are removed; otherwise a deliver rule */
	uint32_t categories;        /* bit (1u << Category value) set = matches; 0 = any category */
	uint32_t statuses;          /* likewise for Status; 0 = any */
	uint32_t tlps;              /* likewise for Tlp; 0 = any */
	uint32_t msg_types;         /* likewise for MsgType; 0 = any */
	int severity_at_least;      /* Severity value; 0 = any (see rule_matches for 'unknown') */
	int emergency;              /* -1 = either, 0 = only non-emergency alerts, 1 = only emergency alerts */
	const uint64_t *origins;    /* into rules->bits: origins that match; NULL = any origin */
	const uint64_t *targets;    /* into rules->bits: nodes named directly, through a group, members or observers */
	bool neighbours;            /* targets also hold the neighbours of the alert's origin */
};

struct rules {
	char version[RULES_VERSION_LEN + 1];  /* hex SHA-256 of the file */
	uint8_t dir_digest[32];     /* digest of the directory the indexes below refer to */
	size_t n_nodes;             /* nodes in that directory */
	size_t words;               /* uint64_t words per bitset: ceil(n_nodes / 64) */
	struct rule *rules;         /* file order; owned */
	size_t n_rules;
	uint64_t *bits;             /* owned: every bitset below and each rule's origins and targets, words apart */
	const uint64_t *members;    /* member nodes */
	const uint64_t *observers;  /* observer nodes */
	const uint64_t *admins;     /* admin nodes */
};

/* ---- bitsets ---- */

static inline void
bit_set(uint64_t *set, size_t i)
{
	set[i / 64] |= UINT64_C(1) << (i % 64);
}

static inline void
bit_clear(uint64_t *set, size_t i)
{
	set[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

static inline bool
bit_get(const uint64_t *set, size_t i)
{
	return (set[i / 64] >> (i % 64)) & 1u;
}

static inline unsigned
lowest_bit(uint64_t w)
{
#if defined(__GNUC__) || defined(__clang__)
	return (unsigned)__builtin_ctzll(w);
#else
	unsigned n = 0;

	while (!(w & 1u)) {
		w >>= 1;
		n++;
	}
	return n;
#endif
}

/* Store value at entries[i].rule for every bit i of set. */
static void
mark_all(const uint64_t *set, size_t words, struct route_entry *entries, const char *value)
{
	for (size_t w = 0; w < words; w++)
		for (uint64_t bits = set[w]; bits != 0; bits &= bits - 1)
			entries[w * 64 + lowest_bit(bits)].rule = value;
}

/* ---- loading ---- */

struct loader {
	const struct ydoc *doc;
	const struct directory *dir;
	struct rules *r;
	struct xba_error *err;
	const struct ynode **name_at;  /* [rule] -> its name value, for duplicate messages */
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
	return xba_error_set(l->err, XBA_ENOMEM, "%s: out of memory loading the rules", l->doc->name);
}

static bool
name_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > RULES_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/*
 * A condition or target value may be one scalar or a list of them.  These give its items uniformly and refuse
 * the shapes that cannot be meant: a map, or an empty list (which would match or name nothing).
 */
static int
check_list(struct loader *l, const struct ynode *v, const char *path, const char *empty_why)
{
	if (v->kind == YNODE_MAP)
		return ydoc_error(l->doc, v, l->err, path, "expected a name or a list of names, found a map");
	if (v->kind == YNODE_SEQUENCE && v->count == 0)
		return ydoc_error(l->doc, v, l->err, path, "empty list (%s)", empty_why);
	return 0;
}

static size_t
item_count(const struct ynode *v)
{
	return v->kind == YNODE_SEQUENCE ? v->count : 1;
}

static const struct ynode *
item_at(const struct ynode *v, size_t i, const char *path, char out[ITEM_PATH])
{
	if (v->kind != YNODE_SEQUENCE) {
		snprintf(out, ITEM_PATH, "%s", path);
		return v;
	}
	snprintf(out, ITEM_PATH, "%s[%zu]", path, i);
	return v->items[i];
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
read_enum_set(struct loader *l, const struct ynode *v, const char *path, enum alert_enum_kind kind, uint32_t *out)
{
	char ipath[ITEM_PATH];
	int rc, value;

	assert(alert_enum_max(kind) < 32);
	if ((rc = check_list(l, v, path, "it would match nothing; leave the condition out to match any")) != 0)
		return rc;
	for (size_t i = 0; i < item_count(v); i++) {
		const struct ynode *item = item_at(v, i, path, ipath);

		if ((rc = read_enum(l, item, ipath, kind, &value)) != 0)
			return rc;
		/* Routing ends for an acknowledgement before any rule (§2 step 0): a rule on it, even a deny, would be
		 * checked, deployed and silently never applied. */
		if (kind == ALERT_ENUM_MSG_TYPE && value == XBA__V1__MSG_TYPE__MSG_TYPE_ACK)
			return ydoc_error(l->doc, item, l->err, ipath, "no rule applies to 'ack': an acknowledgement goes "
			    "to the origin of the alert it acknowledges, whatever the rules say; remove it");
		*out |= 1u << value;
	}
	return 0;
}

/* The located error for a target that is no node, group or reserved word, with a hint for the likeliest slip. */
static int
unknown_target(struct loader *l, const struct ynode *item, const char *ipath, const char *text, bool neighbours_ok)
{
	char up[XBA_NODE_ID_MAX + 1], q[QUOTE_SIZE];
	size_t len = strlen(text);

	/* Node ids are upper-case; "ner" for NER is the likeliest slip, so name the fix. */
	if (len <= XBA_NODE_ID_MAX) {
		for (size_t c = 0; c <= len; c++)
			up[c] = text[c] >= 'a' && text[c] <= 'z' ? (char)(text[c] - 'a' + 'A') : text[c];
		if (directory_node(l->dir, up) != NULL)
			return ydoc_error(l->doc, item, l->err, ipath, "unknown node or group '%s' (node ids are "
			    "upper-case: did you mean '%s'?)", quote(text, q), up);
	}
	return ydoc_error(l->doc, item, l->err, ipath, "unknown node or group '%s' (expected a node id or group of "
	    "%s, %s)", quote(text, q), l->dir->path, neighbours_ok ? "members, observers or neighbours" :
	    "members or observers");
}

/*
 * Resolve target names into set: node ids, directory groups, `members`, `observers`, and `neighbours` when
 * neighbours is not NULL (it is relative to the origin, so it cannot select an origin).  A node id is tried before
 * a group name; the directory keeps the two apart anyway (ids are upper-case, group names lower-case).
 */
static int
read_targets(struct loader *l, const struct ynode *v, const char *path, uint64_t *set, bool *neighbours)
{
	const struct directory *dir = l->dir;
	struct rules *r = l->r;
	char ipath[ITEM_PATH];
	int rc;

	if ((rc = check_list(l, v, path, neighbours != NULL ? "name at least one target" :
	    "it would match nothing; leave the condition out to match any")) != 0)
		return rc;
	for (size_t i = 0; i < item_count(v); i++) {
		const struct ynode *item = item_at(v, i, path, ipath);
		const struct dir_node *node;
		const struct dir_group *group;
		const char *text;

		if ((rc = ydoc_read_string(l->doc, item, ipath, 256, &text, l->err)) != 0)
			return rc;
		if (strcmp(text, "members") == 0) {
			for (size_t w = 0; w < r->words; w++)
				set[w] |= r->members[w];
		} else if (strcmp(text, "observers") == 0) {
			for (size_t w = 0; w < r->words; w++)
				set[w] |= r->observers[w];
		} else if (strcmp(text, "neighbours") == 0) {
			if (neighbours == NULL)
				return ydoc_error(l->doc, item, l->err, ipath, "'neighbours' means the neighbours "
				    "of the alert's origin, so it cannot be an origin condition (name nodes or a "
				    "group)");
			*neighbours = true;
		} else if ((node = directory_node(dir, text)) != NULL) {
			bit_set(set, directory_node_index(dir, node));
		} else if ((group = directory_group(dir, text)) != NULL) {
			for (size_t m = 0; m < group->n_members; m++)
				bit_set(set, group->members[m]);
		} else {
			return unknown_target(l, item, ipath, text, neighbours != NULL);
		}
	}
	return 0;
}

static int
load_when(struct loader *l, const struct ynode *when, const char *rpath, struct rule *rule, uint64_t *origins)
{
	const struct {
		const char *key;
		enum alert_enum_kind kind;
		uint32_t *set;
	} sets[] = {
		{ "category", ALERT_ENUM_CATEGORY, &rule->categories },
		{ "status", ALERT_ENUM_STATUS, &rule->statuses },
		{ "tlp", ALERT_ENUM_TLP, &rule->tlps },
		{ "msg_type", ALERT_ENUM_MSG_TYPE, &rule->msg_types },
	};
	char path[WHEN_PATH], fpath[FIELD_PATH];
	const struct ynode *v;
	int rc;

	snprintf(path, sizeof(path), "%s.when", rpath);
	if ((rc = ydoc_check_keys(l->doc, when, path, when_keys, l->err)) != 0)
		return rc;
	for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
		if ((v = ynode_get(when, sets[s].key)) == NULL)
			continue;
		snprintf(fpath, sizeof(fpath), "%s.%s", path, sets[s].key);
		if ((rc = read_enum_set(l, v, fpath, sets[s].kind, sets[s].set)) != 0)
			return rc;
	}
	if ((v = ynode_get(when, "severity_at_least")) != NULL) {
		snprintf(fpath, sizeof(fpath), "%s.severity_at_least", path);
		if ((rc = read_enum(l, v, fpath, ALERT_ENUM_SEVERITY, &rule->severity_at_least)) != 0)
			return rc;
	}
	if ((v = ynode_get(when, "emergency")) != NULL) {
		bool b;

		snprintf(fpath, sizeof(fpath), "%s.emergency", path);
		if ((rc = ydoc_read_bool(l->doc, v, fpath, &b, l->err)) != 0)
			return rc;
		rule->emergency = b ? 1 : 0;
	}
	if ((v = ynode_get(when, "origin")) != NULL) {
		snprintf(fpath, sizeof(fpath), "%s.origin", path);
		if ((rc = read_targets(l, v, fpath, origins, NULL)) != 0)
			return rc;
		rule->origins = origins;
	}
	return 0;
}

/* Rule number i of the file into l->r->rules[i], checked in the order its keys are usually written. */
static int
load_rule(struct loader *l, const struct ynode *map, size_t i)
{
	struct rules *r = l->r;
	struct rule *rule = &r->rules[i];
	uint64_t *origins = r->bits + (3 + 2 * i) * r->words, *targets = origins + r->words;
	const struct ynode *name, *when, *to, *deny, *list;
	char path[RULE_PATH], fpath[FIELD_PATH], q[QUOTE_SIZE];
	const char *text;
	int rc;

	snprintf(path, sizeof(path), "rules[%zu]", i);
	if ((rc = ydoc_check_keys(l->doc, map, path, rule_keys, l->err)) != 0)
		return rc;
	rule->emergency = -1;
	rule->targets = targets;

	snprintf(fpath, sizeof(fpath), "%s.name", path);
	if ((name = ynode_get(map, "name")) == NULL)
		return ydoc_error(l->doc, map, l->err, path, "missing required key 'name'");
	if ((rc = ydoc_read_string(l->doc, name, fpath, 256, &text, l->err)) != 0)
		return rc;
	if (!name_valid(text))
		return ydoc_error(l->doc, name, l->err, fpath, "'%s' is not a valid rule name (1 to %d of a-z, 0-9 and "
		    "'-')", quote(text, q), RULES_NAME_MAX);
	for (size_t b = 0; builtin_names[b] != NULL; b++)
		if (strcmp(text, builtin_names[b]) == 0)
			return ydoc_error(l->doc, name, l->err, fpath, "'%s' is reserved: the engine records it as a "
			    "routing reason of its own", text);
	for (size_t j = 0; j < i; j++)
		if (strcmp(r->rules[j].name, text) == 0)
			return ydoc_error(l->doc, name, l->err, fpath, "duplicate rule name '%s' (first at rules[%zu], "
			    "line %d, column %d)", text, j, l->name_at[j]->line, l->name_at[j]->column);
	if ((rule->name = strdup(text)) == NULL)
		return nomem(l);
	l->name_at[i] = name;

	if ((when = ynode_get(map, "when")) != NULL && (rc = load_when(l, when, path, rule, origins)) != 0)
		return rc;

	to = ynode_get(map, "to");
	deny = ynode_get(map, "deny");
	if (to != NULL && deny != NULL)
		return ydoc_error(l->doc, deny, l->err, path, "has both 'to' and 'deny' (a rule either delivers or "
		    "denies; write two rules)");
	if (to == NULL && deny == NULL)
		return ydoc_error(l->doc, map, l->err, path, "needs 'to' (a deliver rule) or 'deny' (a deny rule)");
	rule->deny = deny != NULL;
	list = deny != NULL ? deny : to;
	snprintf(fpath, sizeof(fpath), "%s.%s", path, rule->deny ? "deny" : "to");
	return read_targets(l, list, fpath, targets, &rule->neighbours);
}

static int
load_tree(struct loader *l)
{
	const struct ydoc *doc = l->doc;
	const struct directory *dir = l->dir;
	struct rules *r = l->r;
	const struct ynode *list;
	uint64_t *members, *observers, *admins;
	int rc;

	if (doc->root == NULL)
		return ydoc_error(doc, NULL, l->err, NULL, "the file is empty (expected a map with the key rules)");
	if ((rc = ydoc_check_keys(doc, doc->root, NULL, root_keys, l->err)) != 0)
		return rc;
	if ((list = ynode_get(doc->root, "rules")) == NULL)
		return ydoc_error(doc, doc->root, l->err, NULL, "missing required key 'rules' (write 'rules: []' to "
		    "route nothing but emergencies and acknowledgements)");
	if (ynode_is_null(list))
		return ydoc_error(doc, list, l->err, "rules", "expected a list, found nothing (write 'rules: []' to route "
		    "nothing but emergencies and acknowledgements)");
	if ((rc = ydoc_expect_sequence(doc, list, "rules", l->err)) != 0)
		return rc;
	if (list->count > RULES_MAX_RULES)
		return ydoc_error(doc, list, l->err, "rules", "%zu rules, at most %d", list->count, RULES_MAX_RULES);

	/* Three role bitsets, then an origins and a targets bitset per rule. */
	if ((r->bits = calloc((3 + 2 * list->count) * r->words, sizeof(uint64_t))) == NULL ||
	    (list->count > 0 && (r->rules = calloc(list->count, sizeof(*r->rules))) == NULL) ||
	    (l->name_at = calloc(list->count + 1, sizeof(*l->name_at))) == NULL)
		return nomem(l);
	members = r->bits;
	observers = members + r->words;
	admins = observers + r->words;
	for (size_t n = 0; n < dir->n_nodes; n++)
		bit_set(dir->nodes[n].role == NODE_ROLE_MEMBER ? members :
		    dir->nodes[n].role == NODE_ROLE_OBSERVER ? observers : admins, n);
	r->members = members;
	r->observers = observers;
	r->admins = admins;

	for (size_t i = 0; i < list->count; i++) {
		r->n_rules++;  /* so rules_free() sees this rule's name even when it fails half-way */
		if ((rc = load_rule(l, list->items[i], i)) != 0)
			return rc;
	}
	return 0;
}

/* Build the rules from a parsed document; takes ownership of doc.  The version is the digest of the exact bytes
 * parsed, so an edit racing with the load cannot give a version of another text. */
static struct rules *
rules_from_doc(struct ydoc *doc, const struct directory *dir, struct xba_error *err)
{
	struct rules *r;
	struct loader l;
	int rc;

	if (dir->n_nodes > RULES_MAX_NODES) {
		xba_error_set(err, XBA_ETOOBIG, "%s: the directory has %zu nodes; the rules engine handles at most %d",
		    doc->name, dir->n_nodes, RULES_MAX_NODES);
		ydoc_free(doc);
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		xba_error_set(err, XBA_ENOMEM, "%s: out of memory loading the rules", doc->name);
		ydoc_free(doc);
		return NULL;
	}
	r->n_nodes = dir->n_nodes;
	r->words = (dir->n_nodes + 63) / 64;
	if (r->words == 0)
		r->words = 1;  /* keeps every bitset a valid pointer */
	memcpy(r->dir_digest, dir->digest, sizeof(r->dir_digest));
	memset(&l, 0, sizeof(l));
	l.doc = doc;
	l.dir = dir;
	l.r = r;
	l.err = err;
	rc = load_tree(&l);
	if (rc == 0)
		encoding_hex(doc->digest, sizeof(doc->digest), r->version);
	free(l.name_at);
	ydoc_free(doc);
	if (rc != 0) {
		rules_free(r);
		return NULL;
	}
	xba_error_clear(err);
	return r;
}

struct rules *
rules_load_buffer(const char *name, const char *data, size_t len, const struct directory *dir,
    struct xba_error *err)
{
	struct ydoc *doc;

	assert(dir != NULL && (data != NULL || len == 0));
	if (name == NULL)
		name = "(buffer)";
	if (len > RULES_MAX_BYTES) {
		xba_error_set(err, XBA_ETOOBIG, "%s: file is larger than the limit of %u bytes", name, RULES_MAX_BYTES);
		return NULL;
	}
	if ((doc = ydoc_load_buffer(name, data != NULL ? data : "", len, err)) == NULL)
		return NULL;
	return rules_from_doc(doc, dir, err);
}

struct rules *
rules_load(const char *path, const struct directory *dir, struct xba_error *err)
{
	struct ydoc *doc;

	assert(path != NULL && dir != NULL);
	if ((doc = ydoc_load_file(path, RULES_MAX_BYTES, err)) == NULL)
		return NULL;
	return rules_from_doc(doc, dir, err);
}

void
rules_free(struct rules *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_rules; i++)
		free(r->rules[i].name);
	free(r->rules);
	free(r->bits);
	free(r);
}

const char *
rules_version(const struct rules *r)
{
	assert(r != NULL);
	return r->version;
}

size_t
rules_count(const struct rules *r)
{
	assert(r != NULL);
	return r->n_rules;
}

/* ---- routing ---- */

static bool
enum_in(uint32_t set, int value)
{
	return set == 0 || (value > 0 && value < 32 && ((set >> value) & 1u));
}

/*
 * Does rule's `when` hold for alert from origin?  An alert field left unspecified (0) satisfies no condition on
 * that field.  Severity follows CAP's order unknown < minor < moderate < severe < extreme, except that an alert of
 * unknown severity is not known to be at least anything: only `severity_at_least: unknown` takes it.
 */
static bool
rule_matches(const struct rule *rule, const Xba__V1__Alert *alert, size_t origin)
{
	if (!enum_in(rule->categories, (int)alert->category) || !enum_in(rule->statuses, (int)alert->status) ||
	    !enum_in(rule->tlps, (int)alert->tlp) || !enum_in(rule->msg_types, (int)alert->msg_type))
		return false;
	if (rule->severity_at_least != 0) {
		int s = (int)alert->severity;

		if (s < XBA__V1__SEVERITY__SEVERITY_UNKNOWN || s > XBA__V1__SEVERITY__SEVERITY_EXTREME)
			return false;
		if (s == XBA__V1__SEVERITY__SEVERITY_UNKNOWN &&
		    rule->severity_at_least != XBA__V1__SEVERITY__SEVERITY_UNKNOWN)
			return false;
		if (s < rule->severity_at_least)
			return false;
	}
	if (rule->emergency >= 0 && (alert->emergency ? 1 : 0) != rule->emergency)
		return false;
	if (rule->origins != NULL && !bit_get(rule->origins, origin))
		return false;
	return true;
}

/* The neighbours of origin as a bitset, built at most once per alert (*have says whether it is built). */
static const uint64_t *
neighbours_of(const struct directory *dir, size_t origin, size_t words, uint64_t *set, bool *have)
{
	if (!*have) {
		const struct dir_node *node = &dir->nodes[origin];

		memset(set, 0, words * sizeof(*set));
		for (size_t k = 0; k < node->n_neighbours; k++)
			bit_set(set, node->neighbours[k]);
		*have = true;
	}
	return set;
}

/* targets := what rule names for an alert from origin. */
static void
rule_targets(const struct rule *rule, const struct directory *dir, size_t origin, size_t words, uint64_t *targets,
    uint64_t *neigh, bool *have_neigh)
{
	memcpy(targets, rule->targets, words * sizeof(*targets));
	if (rule->neighbours) {
		const uint64_t *n = neighbours_of(dir, origin, words, neigh, have_neigh);

		for (size_t w = 0; w < words; w++)
			targets[w] |= n[w];
	}
}

void
route_clear(struct route *route)
{
	if (route == NULL)
		return;
	free(route->recipients);
	free(route->withheld);
	memset(route, 0, sizeof(*route));
}

/* Resolve a node id the alert carries; NULL when the directory has no such node. */
static const struct dir_node *
alert_node(const struct directory *dir, const char *id)
{
	return id != NULL ? directory_node(dir, id) : NULL;
}

/*
 * The steps of docs/rules.md, in order.  credit[i].rule and reason[i].rule (the two result arrays, indexed by node
 * while routing) hold the rule that named node i first and the first reason that removed it; every step that
 * removes nodes records a reason only for nodes it actually removes, so each node gets at most one.
 */
int
rules_route(const struct rules *rules, const struct directory *dir, const Xba__V1__Alert *alert,
    const char *acked_origin, struct route *out, struct xba_error *err)
{
	struct route_inputs in = { .acked_origin = acked_origin };

	return rules_route_with(rules, dir, alert, &in, out, err);
}

int
rules_route_with(const struct rules *rules, const struct directory *dir, const Xba__V1__Alert *alert,
    const struct route_inputs *in, struct route *out, struct xba_error *err)
{
	static const struct route_inputs none = { 0 };
	const char *acked_origin;
	uint64_t named[WORDS_MAX], addressed[WORDS_MAX], recv[WORDS_MAX], targets[WORDS_MAX], neigh[WORDS_MAX];
	uint64_t held[WORDS_MAX]; /* a cancel's nodes that had what it withdraws: no deny rule keeps it from them */
	const struct dir_node *origin_node;
	struct route_entry *credit, *reason;
	bool have_neigh = false;
	size_t words, n, origin, k;
	int tlp;

	assert(rules != NULL && dir != NULL && alert != NULL && out != NULL);
	memset(out, 0, sizeof(*out));
	if (in == NULL)
		in = &none;
	acked_origin = in->acked_origin;
	if (dir->n_nodes != rules->n_nodes || memcmp(dir->digest, rules->dir_digest, sizeof(dir->digest)) != 0)
		return xba_error_set(err, XBA_EINVAL, "rules %.12s were loaded against another directory than %s; "
		    "reload the rules after the directory", rules->version, dir->path);
	if ((origin_node = alert_node(dir, alert->origin)) == NULL) {
		char q[QUOTE_SIZE];

		return xba_error_set(err, XBA_ENOTFOUND, "origin: '%s' is not a node of the directory",
		    quote(alert->origin != NULL ? alert->origin : "", q));
	}
	origin = directory_node_index(dir, origin_node);
	words = rules->words;
	n = rules->n_nodes;
	/* A directory has at least one node; the guard keeps calloc(0) from looking like a failure anyway. */
	if ((credit = calloc(n ? n : 1, sizeof(*credit))) == NULL ||
	    (reason = calloc(n ? n : 1, sizeof(*reason))) == NULL) {
		free(credit);
		return xba_error_set(err, XBA_ENOMEM, "out of memory routing an alert");
	}
	memset(recv, 0, words * sizeof(*recv));

	/* 0. An acknowledgement goes back to whoever sent the alert it acknowledges, and nowhere else. */
	if (alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ACK) {
		const struct dir_node *to;
		size_t t;

		if (acked_origin != NULL) {
			if ((to = directory_node(dir, acked_origin)) == NULL) {
				char q[QUOTE_SIZE];

				free(credit);
				free(reason);
				return xba_error_set(err, XBA_ENOTFOUND, "acknowledged alert's origin '%s' is not a "
				    "node of the directory", quote(acked_origin, q));
			}
			t = directory_node_index(dir, to);
			if (t != origin && bit_get(rules->admins, t)) {
				reason[t].rule = RULES_WITHHELD_ADMIN;
			} else if (t != origin) {
				credit[t].rule = RULES_BY_ACK;
				bit_set(recv, t);
			}
		}
		goto done;
	}

	/* 1-2. The emergency, then every matching deliver rule; each node is credited to the first that named it. */
	memset(named, 0, words * sizeof(*named));
	if (alert->emergency) {
		for (size_t w = 0; w < words; w++)
			named[w] = rules->members[w] | rules->observers[w];
		mark_all(named, words, credit, RULES_BY_EMERGENCY);
	}
	for (size_t i = 0; i < rules->n_rules; i++) {
		const struct rule *rule = &rules->rules[i];

		if (rule->deny || !rule_matches(rule, alert, origin))
			continue;
		rule_targets(rule, dir, origin, words, targets, neigh, &have_neigh);
		for (size_t w = 0; w < words; w++) {
			uint64_t fresh = targets[w] & ~named[w];

			named[w] |= targets[w];
			for (; fresh != 0; fresh &= fresh - 1)
				credit[w * 64 + lowest_bit(fresh)].rule = rule->name;
		}
	}

	/* The addressees, resolved before anything is removed so that an unknown one is refused whatever the rules. */
	memset(addressed, 0, words * sizeof(*addressed));
	for (size_t i = 0; i < alert->n_addressees; i++) {
		const struct dir_node *a = alert_node(dir, alert->addressees[i]);

		if (a == NULL) {
			char q[QUOTE_SIZE];

			free(credit);
			free(reason);
			return xba_error_set(err, XBA_ENOTFOUND, "addressees[%zu]: '%s' is not a node of the "
			    "directory", i, quote(alert->addressees[i] != NULL ? alert->addressees[i] : "", q));
		}
		bit_set(addressed, directory_node_index(dir, a));
	}
	tlp = (int)alert->tlp;
	if (tlp == XBA__V1__TLP__TLP_RED && alert->n_addressees == 0) {
		free(credit);
		free(reason);
		return xba_error_set(err, XBA_EREQUIRED, "tlp: TLP:RED needs explicit addressees");
	}
	/* 3. The origin leaves silently; admins leave withheld.  No step below sees either. */
	bit_clear(named, origin);
	bit_clear(addressed, origin);
	for (size_t w = 0; w < words; w++) {
		uint64_t admins = (named[w] | addressed[w]) & rules->admins[w];

		for (; admins != 0; admins &= admins - 1)
			reason[w * 64 + lowest_bit(admins)].rule = RULES_WITHHELD_ADMIN;
		named[w] &= ~rules->admins[w];
		addressed[w] &= ~rules->admins[w];
	}

	/* 4. TLP:RED goes to exactly the addressees; otherwise addressees narrow everything but an emergency. */
	if (tlp == XBA__V1__TLP__TLP_RED) {
		for (size_t w = 0; w < words; w++) {
			uint64_t out_w = named[w] & ~addressed[w], in_w = addressed[w] & ~named[w];

			for (; out_w != 0; out_w &= out_w - 1)
				reason[w * 64 + lowest_bit(out_w)].rule = RULES_WITHHELD_TLP_RED;
			for (; in_w != 0; in_w &= in_w - 1)
				credit[w * 64 + lowest_bit(in_w)].rule = RULES_BY_RED_ADDRESSEE;
			recv[w] = addressed[w];
		}
	} else if (alert->n_addressees > 0 && !alert->emergency) {
		for (size_t w = 0; w < words; w++) {
			uint64_t out_w = named[w] & ~addressed[w], lost = addressed[w] & ~named[w];

			for (; out_w != 0; out_w &= out_w - 1)
				reason[w * 64 + lowest_bit(out_w)].rule = RULES_WITHHELD_NOT_ADDRESSED;
			for (; lost != 0; lost &= lost - 1)
				reason[w * 64 + lowest_bit(lost)].rule = RULES_WITHHELD_NO_RULE;
			recv[w] = named[w] & addressed[w];
		}
	} else {
		memcpy(recv, named, words * sizeof(*recv));
		/* An emergency names every member and observer, so no addressee is left unnamed here. */
	}
	/* 5. TLP narrowing by role. */
	if (tlp == XBA__V1__TLP__TLP_AMBER_STRICT || tlp == XBA__V1__TLP__TLP_GREEN) {
		const char *why = tlp == XBA__V1__TLP__TLP_GREEN ? RULES_WITHHELD_TLP_GREEN :
		    RULES_WITHHELD_TLP_AMBER_STRICT;

		for (size_t w = 0; w < words; w++) {
			uint64_t allowed = rules->members[w], out_w;

			if (tlp == XBA__V1__TLP__TLP_GREEN)
				allowed |= rules->observers[w];
			out_w = recv[w] & ~allowed;

			for (; out_w != 0; out_w &= out_w - 1)
				reason[w * 64 + lowest_bit(out_w)].rule = why;
			recv[w] &= allowed;
		}
	}

	/* 5b. An update or cancel also reaches whoever had the alerts it names (the broker's journal says who), so that
	 * no node goes on acting on an alert its origin replaced or withdrew.  The update's own TLP still bounds who
	 * may read it (an officer who raises it to RED means it).  Neither its TLP nor a deny rule keeps a node from a
	 * cancel of what it holds, which tells it nothing but that, and why: a rule added since (or matching the
	 * cancel's fields, not the version the node had), or a RED cancel whose addressees could not name every
	 * holder (at most 64 addressees; the versions may have named more), would leave it acting on a withdrawn
	 * alert for good. */
	memset(held, 0, words * sizeof(*held));
	if (alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE || alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL) {
		for (size_t i = 0; i < in->n_superseded_recipients; i++) {
			const struct dir_node *had = alert_node(dir, in->superseded_recipients[i]);
			const char *tlp_bars = NULL;
			size_t t;

			if (had == NULL)
				continue; /* no longer a node of the region */
			t = directory_node_index(dir, had);
			if (t == origin || bit_get(rules->admins, t))
				continue;
			if (bit_get(recv, t)) {
				if (alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL &&
				    in->cancel_holders != ROUTE_CANCEL_DENY_BARS_HOLDERS)
					bit_set(held, t);
				continue;
			}
			if (alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL &&
			    in->cancel_holders == ROUTE_CANCEL_REACHES_HOLDERS)
				tlp_bars = NULL;
			else if (tlp == XBA__V1__TLP__TLP_RED && !bit_get(addressed, t))
				tlp_bars = RULES_WITHHELD_TLP_RED;
			else if (tlp == XBA__V1__TLP__TLP_AMBER_STRICT && !bit_get(rules->members, t))
				tlp_bars = RULES_WITHHELD_TLP_AMBER_STRICT;
			else if (tlp == XBA__V1__TLP__TLP_GREEN && !bit_get(rules->members, t) &&
			    !bit_get(rules->observers, t))
				tlp_bars = RULES_WITHHELD_TLP_GREEN;
			if (tlp_bars != NULL) {
				if (reason[t].rule == NULL)
					reason[t].rule = tlp_bars; /* the sender's track shows it did not get the update */
				continue;
			}
			bit_set(recv, t);
			if (alert->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL &&
			    in->cancel_holders != ROUTE_CANCEL_DENY_BARS_HOLDERS)
				bit_set(held, t);
			credit[t].rule = RULES_BY_SUPERSEDED;
			reason[t].rule = NULL;
		}
	}

	/* 6. Deny rules, in file order, win over everything before them but a cancel's holders (5b). */
	for (size_t i = 0; i < rules->n_rules; i++) {
		const struct rule *rule = &rules->rules[i];

		if (!rule->deny || !rule_matches(rule, alert, origin))
			continue;
		rule_targets(rule, dir, origin, words, targets, neigh, &have_neigh);
		for (size_t w = 0; w < words; w++) {
			uint64_t out_w = recv[w] & targets[w] & ~held[w];

			for (; out_w != 0; out_w &= out_w - 1)
				reason[w * 64 + lowest_bit(out_w)].rule = rule->name;
			recv[w] &= ~(targets[w] & ~held[w]);
		}
	}

done:
	/* Compact the per-node scratch into the sorted results, in place: entry k is written after entry i >= k
	 * was read. */
	k = 0;
	for (size_t i = 0; i < n; i++)
		if (bit_get(recv, i)) {
			const char *rule = credit[i].rule;

			credit[k].node_index = i;
			credit[k].rule = rule;
			k++;
		}
	out->n_recipients = k;
	k = 0;
	for (size_t i = 0; i < n; i++)
		if (reason[i].rule != NULL) {
			const char *why = reason[i].rule;

			reason[k].node_index = i;
			reason[k].rule = why;
			k++;
		}
	out->n_withheld = k;
	if (out->n_recipients == 0) {
		free(credit);
		credit = NULL;
	}
	if (out->n_withheld == 0) {
		free(reason);
		reason = NULL;
	}
	out->recipients = credit;
	out->withheld = reason;
	xba_error_clear(err);
	return 0;
}

/* ---- lint ---- */

/* Is every bit of a in b? */
static bool
bits_within(const uint64_t *a, const uint64_t *b, size_t words)
{
	for (size_t w = 0; w < words; w++)
		if ((a[w] & ~b[w]) != 0)
			return false;
	return true;
}

static bool
bits_empty(const uint64_t *a, size_t words)
{
	for (size_t w = 0; w < words; w++)
		if (a[w] != 0)
			return false;
	return true;
}

/* Does deny's `when` hold for every alert that rule's holds?  (A set of 0 means any value.) */
static bool
when_covers(const struct rule *deny, const struct rule *rule, size_t words)
{
	if ((deny->categories != 0 && (rule->categories == 0 || (rule->categories & ~deny->categories) != 0)) ||
	    (deny->statuses != 0 && (rule->statuses == 0 || (rule->statuses & ~deny->statuses) != 0)) ||
	    (deny->tlps != 0 && (rule->tlps == 0 || (rule->tlps & ~deny->tlps) != 0)) ||
	    (deny->msg_types != 0 && (rule->msg_types == 0 || (rule->msg_types & ~deny->msg_types) != 0)))
		return false;
	if (deny->severity_at_least != 0 && (rule->severity_at_least == 0 ||
	    rule->severity_at_least < deny->severity_at_least))
		return false;
	if (deny->emergency != -1 && deny->emergency != rule->emergency)
		return false;
	return deny->origins == NULL || (rule->origins != NULL && bits_within(rule->origins, deny->origins, words));
}

size_t
rules_lint(const struct rules *r, const struct directory *dir, rules_warn_fn warn, void *ctx)
{
	char message[300];
	size_t n = 0;

	for (size_t i = 0; i < r->n_rules; i++) {
		const struct rule *rule = &r->rules[i];

		if (rule->deny)
			continue;
		if (!rule->neighbours && bits_within(rule->targets, r->admins, r->words)) {
			warn(ctx, rule->name, "it names no node that can receive alerts (admin nodes never do): it sends "
			    "nothing");
			n++;
			continue;
		}
		for (size_t d = 0; d < r->n_rules; d++) {
			const struct rule *deny = &r->rules[d];

			if (!deny->deny || (rule->neighbours && !deny->neighbours) ||
			    !bits_within(rule->targets, deny->targets, r->words) || !when_covers(deny, rule, r->words))
				continue;
			snprintf(message, sizeof(message), "deny rule '%s' removes every node it names whenever it "
			    "matches: it sends nothing (deny rules win, docs/rules.md section 2)", deny->name);
			warn(ctx, rule->name, message);
			n++;
			break;
		}
		/* Origins that are all observers, none of which may publish any of the rule's categories. */
		if (rule->origins != NULL && rule->categories != 0 && !bits_empty(rule->origins, r->words)) {
			bool possible = false;

			for (size_t k = 0; k < dir->n_nodes && !possible; k++) {
				const struct dir_node *node = &dir->nodes[k];

				if (!bit_get(rule->origins, k))
					continue;
				possible = node->role == NODE_ROLE_MEMBER ||
				    (node->role == NODE_ROLE_OBSERVER && (node->publish_categories & rule->categories) != 0);
			}
			if (!possible) {
				warn(ctx, rule->name, "none of its origins may publish any of its categories (region.yaml: "
				    "observers publish only their publish list, admins nothing): it never matches");
				n++;
			}
		}
	}
	return n;
}

Xba__V1__ErrorCode
rules_publish_rights(const struct directory *dir, const struct dir_node *origin, const Xba__V1__Alert *alert,
    const char **field, char *message, size_t size)
{
	if (origin->role == NODE_ROLE_ADMIN) {
		*field = "origin";
		snprintf(message, size, "%s is an admin node and may not publish alerts", origin->id);
		return XBA__V1__ERROR_CODE__NOT_PERMITTED;
	}
	/* Before an observer's category list: a broadcast from a node that may not broadcast is refused for that. */
	if (alert->emergency && !origin->may_broadcast) {
		*field = "emergency";
		snprintf(message, size, "%s may not issue emergency broadcasts (region.yaml may_broadcast)", origin->id);
		return XBA__V1__ERROR_CODE__BROADCAST_NOT_ALLOWED;
	}
	/* An observer's update, cancel or error must name a category of its list too: without one it would match
	 * every rule with no category condition, and reach nodes its list keeps it from.  Only an acknowledgement
	 * (which goes back to the alert's origin, whatever the rules) may leave it out. */
	if (origin->role == NODE_ROLE_OBSERVER && alert->msg_type != XBA__V1__MSG_TYPE__MSG_TYPE_ACK &&
	    alert->category == 0) {
		*field = "category";
		snprintf(message, size, "observer %s must give the category of its %s, one of its region.yaml publish "
		    "list", origin->id, alert_enum_name(ALERT_ENUM_MSG_TYPE, alert->msg_type));
		return XBA__V1__ERROR_CODE__NOT_PERMITTED;
	}
	if (origin->role == NODE_ROLE_OBSERVER && alert->category != 0 &&
	    (origin->publish_categories & (1u << alert->category)) == 0) {
		*field = "category";
		snprintf(message, size, "observer %s may not publish %s alerts (region.yaml publish list)", origin->id,
		    alert_enum_name(ALERT_ENUM_CATEGORY, alert->category));
		return XBA__V1__ERROR_CODE__NOT_PERMITTED;
	}
	if (alert->tlp == XBA__V1__TLP__TLP_RED && alert->n_addressees == 0) {
		*field = "addressees";
		snprintf(message, size, "TLP:RED goes only to explicit addressees, and this alert names none");
		return XBA__V1__ERROR_CODE__TLP_RED_NO_ADDRESSEES;
	}
	for (size_t i = 0; i < alert->n_addressees; i++) {
		if (directory_node(dir, alert->addressees[i]) == NULL) {
			*field = "addressees";
			snprintf(message, size, "addressee %s is not a node of this region", alert->addressees[i]);
			return XBA__V1__ERROR_CODE__INVALID_ALERT;
		}
	}
	return 0;
}
