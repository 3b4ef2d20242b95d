/*
 * conftable.h — the mechanism behind every daemon's settings file (broker.yaml, agent.yaml): one table row per
 * key (name, type, bounds, default, field), applied to the program's config struct.  The file must be a map of
 * known keys; each error is located ("broker.yaml:3:9: listen: ...").  Paths are resolved against the file's own
 * directory, so a deployment directory can be moved as a whole.  The program adds its own cross-key checks.
 */
#ifndef XBA_CONFTABLE_H
#define XBA_CONFTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "yamltree.h"

enum conftable_type {
	CONFTABLE_STRING, /* text, copied into a char * field (owned by the config) */
	CONFTABLE_PATH,   /* text, resolved against the file's directory, into a char * field */
	CONFTABLE_INT,    /* integer within [min, max], into an int64_t field */
	CONFTABLE_CUSTOM, /* read by the row's own function */
};

struct conftable_row;

/* A custom reader: value is NULL when the key is absent (set the default then). */
typedef int (*conftable_reader)(void *config, const struct ydoc *doc, const struct conftable_row *row,
    const struct ynode *value, struct xba_error *err);

struct conftable_row {
	const char *key;          /* as written in the file */
	enum conftable_type type;
	bool required;            /* absent is an error */
	size_t offset;            /* of the field in the program's config struct */
	int64_t min, max;         /* CONFTABLE_INT bounds (custom readers may use them) */
	int64_t default_int;      /* CONFTABLE_INT default (custom readers may use it) */
	const char *default_text; /* CONFTABLE_STRING default, NULL = none */
	conftable_reader read;    /* CONFTABLE_CUSTOM only */
};

/*
 * Load path (at most max_bytes) and apply every row to config.  `what` completes "empty file (expected ...)".
 * Returns the document, for the caller's cross-key checks and positions (ydoc_free it), or NULL with err; after
 * a failure, conftable_free_strings() still frees what was set.
 */
struct ydoc *conftable_load(const char *path, size_t max_bytes, const struct conftable_row *rows, size_t n_rows,
    void *config, const char *what, struct xba_error *err);

/*
 * The keys whose values differ between two configs loaded with the same rows (STRING, PATH and INT rows; a
 * CUSTOM row is its program's to compare), comma-separated into out ("" when none; truncated to size).  For a
 * reload that applies only some keys: the others are named as waiting for a restart.
 */
void conftable_changed(const void *a, const void *b, const struct conftable_row *rows, size_t n_rows, char *out,
    size_t size);

/* Free every STRING and PATH field the rows name. */
void conftable_free_strings(void *config, const struct conftable_row *rows, size_t n_rows);

/* path as written in config_path's file: unchanged if absolute, else relative to that file's directory.
 * malloc'ed; NULL when out of memory. */
char *conftable_resolve_path(const char *config_path, const char *path);

#endif
