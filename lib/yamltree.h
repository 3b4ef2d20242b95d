/*
 * yamltree.h — YAML files as a small tree that remembers where each value was written.
 *
 * Every YAML file XBA reads (region.yaml, rules.yaml, broker.yaml, agent.yaml, alert files for `xba send`) goes
 * through here: libyaml events become a tree of maps, sequences and scalars, each node carrying its line and
 * column (1-based), so loaders report "region.yaml:12:5: nodes[2].curve_key: not a Z85 key".  The builder refuses,
 * with file:line:column, what libyaml accepts but we never want: duplicate map keys, non-scalar map keys,
 * anchors/aliases, tags, more than one document, nesting deeper than YAML_MAX_DEPTH, more than YAML_MAX_NODES nodes,
 * and files over the caller's byte limit.
 */
#ifndef XBA_YAMLTREE_H
#define XBA_YAMLTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define YAML_MAX_DEPTH 32
#define YAML_MAX_NODES 200000

enum ynode_kind { YNODE_SCALAR, YNODE_SEQUENCE, YNODE_MAP };

struct ynode {
	enum ynode_kind kind;
	int line;                 /* 1-based position where the node starts */
	int column;               /* 1-based */
	char *scalar;             /* YNODE_SCALAR: NUL-terminated UTF-8 text (libyaml rejects invalid UTF-8) */
	size_t scalar_len;        /* bytes, without the NUL */
	bool plain;               /* scalar written without quotes (so "null", "~" and "" mean null only then) */
	bool comment_follows;     /* plain, and " #..." follows it on its line: YAML cut the text there (a reader of
	                           * free text may want to say so: "Convoi #3" was read as "Convoi") */
	struct ynode **items;     /* YNODE_SEQUENCE: items; YNODE_MAP: values */
	struct ynode **keys;      /* YNODE_MAP: key scalars, parallel to items */
	size_t count;             /* number of items (or key/value pairs) */
};

struct ydoc {
	char *name;               /* file name used in messages */
	struct ynode *root;       /* NULL for an empty document */
	uint8_t digest[32];       /* SHA-256 of the exact bytes parsed: the file's version, for journals and logs */
};

/* Load a file of at most max_bytes.  NULL on failure with err->code XBA_EIO, XBA_ETOOBIG or XBA_ECONFIG. */
struct ydoc *ydoc_load_file(const char *path, size_t max_bytes, struct xba_error *err);
/* Load from memory; name is what messages call it. */
struct ydoc *ydoc_load_buffer(const char *name, const char *data, size_t len, struct xba_error *err);
void ydoc_free(struct ydoc *doc);

/* Value for key in a map, or NULL (also NULL when map is not a map). */
const struct ynode *ynode_get(const struct ynode *map, const char *key);
/* A key written with no value (or ~ / null): YAML's null, which no setting takes. */
bool ynode_is_null(const struct ynode *node);

/*
 * Fill err with XBA_ECONFIG and "name:line:col: <path>: <message>" located at node; returns XBA_ECONFIG.
 * path is the dotted key path the operator would recognise ("nodes[2].curve_key"), may be NULL.
 */
int ydoc_error(const struct ydoc *doc, const struct ynode *node, struct xba_error *err, const char *path,
    const char *fmt, ...) XBA_PRINTF(5, 6);

/* Refuse any key of map not in allowed (NULL-terminated): "unknown key 'x' (expected one of: a, b, c)". */
int ydoc_check_keys(const struct ydoc *doc, const struct ynode *map, const char *path, const char *const *allowed,
    struct xba_error *err);

/* Typed readers: each refuses a node of the wrong kind or shape with a located message naming what was expected.
 * Missing optional keys are the caller's business: these take the node itself. */
int ydoc_expect_map(const struct ydoc *doc, const struct ynode *node, const char *path, struct xba_error *err);
int ydoc_expect_sequence(const struct ydoc *doc, const struct ynode *node, const char *path, struct xba_error *err);
int ydoc_read_string(const struct ydoc *doc, const struct ynode *node, const char *path, size_t max_len,
    const char **out, struct xba_error *err);
int ydoc_read_bool(const struct ydoc *doc, const struct ynode *node, const char *path, bool *out,
    struct xba_error *err);
int ydoc_read_int(const struct ydoc *doc, const struct ynode *node, const char *path, int64_t min, int64_t max,
    int64_t *out, struct xba_error *err);
int ydoc_read_double(const struct ydoc *doc, const struct ynode *node, const char *path, double min, double max,
    double *out, struct xba_error *err);
/* RFC 3339 date-time → Unix ms. */
int ydoc_read_time(const struct ydoc *doc, const struct ynode *node, const char *path, int64_t *out,
    struct xba_error *err);

#endif
