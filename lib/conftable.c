/*
 * conftable.c — table-driven settings files (see conftable.h).  Read once at a daemon's start-up and by its
 * --check; nothing here runs per alert.
 */
#include "conftable.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFTABLE_MAX_ROWS 64
#define CONFTABLE_MAX_TEXT 4096

char *
conftable_resolve_path(const char *config_path, const char *path)
{
	const char *slash = strrchr(config_path, '/');
	size_t dir_len, len;
	char *out;

	if (path[0] == '/' || slash == NULL)
		return strdup(path);
	dir_len = (size_t)(slash - config_path);
	len = dir_len + 1 + strlen(path) + 1;
	if ((out = malloc(len)) == NULL)
		return NULL;
	snprintf(out, len, "%.*s/%s", (int)dir_len, config_path, path);
	return out;
}

static int
apply_row(void *config, const struct ydoc *doc, const struct conftable_row *row, const struct ynode *value,
    struct xba_error *err)
{
	char *base = config, *copy;
	const char *text;
	int rc;

	switch (row->type) {
	case CONFTABLE_CUSTOM:
		return row->read(config, doc, row, value, err);
	case CONFTABLE_INT: {
		int64_t v = row->default_int;

		if (value != NULL && (rc = ydoc_read_int(doc, value, row->key, row->min, row->max, &v, err)) != 0)
			return rc;
		*(int64_t *)(base + row->offset) = v;
		return 0;
	}
	case CONFTABLE_STRING:
	case CONFTABLE_PATH:
		break;
	}
	if (value == NULL) {
		if (row->required)
			return ydoc_error(doc, doc->root, err, row->key, "missing (required)");
		text = row->default_text;
	} else if ((rc = ydoc_read_string(doc, value, row->key, CONFTABLE_MAX_TEXT, &text, err)) != 0) {
		return rc;
	}
	if (text == NULL)
		return 0;
	if (text[0] == '\0')
		return ydoc_error(doc, value, err, row->key, "must not be empty");
	copy = row->type == CONFTABLE_PATH ? conftable_resolve_path(doc->name, text) : strdup(text);
	if (copy == NULL)
		return xba_error_set(err, XBA_ENOMEM, "%s: out of memory", doc->name);
	*(char **)(base + row->offset) = copy;
	return 0;
}

struct ydoc *
conftable_load(const char *path, size_t max_bytes, const struct conftable_row *rows, size_t n_rows, void *config,
    const char *what, struct xba_error *err)
{
	const char *allowed[CONFTABLE_MAX_ROWS + 1];
	struct ydoc *doc;
	int rc = 0;

	if (n_rows > CONFTABLE_MAX_ROWS) {
		xba_error_set(err, XBA_EINVAL, "%s: too many settings rows", path);
		return NULL;
	}
	if ((doc = ydoc_load_file(path, max_bytes, err)) == NULL)
		return NULL;
	for (size_t i = 0; i < n_rows; i++)
		allowed[i] = rows[i].key;
	allowed[n_rows] = NULL;
	if (doc->root == NULL)
		rc = xba_error_set(err, XBA_ECONFIG, "%s:1:1: empty file (expected %s)", path, what);
	if (rc == 0)
		rc = ydoc_expect_map(doc, doc->root, NULL, err);
	if (rc == 0)
		rc = ydoc_check_keys(doc, doc->root, NULL, allowed, err);
	for (size_t i = 0; rc == 0 && i < n_rows; i++)
		rc = apply_row(config, doc, &rows[i], ynode_get(doc->root, rows[i].key), err);
	if (rc != 0) {
		ydoc_free(doc);
		return NULL;
	}
	return doc;
}

void
conftable_changed(const void *a, const void *b, const struct conftable_row *rows, size_t n_rows, char *out,
    size_t size)
{
	size_t used = 0;

	if (size == 0)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < n_rows; i++) {
		const char *pa = (const char *)a + rows[i].offset, *pb = (const char *)b + rows[i].offset;
		bool differ;

		if (rows[i].type == CONFTABLE_STRING || rows[i].type == CONFTABLE_PATH) {
			const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;

			differ = (sa == NULL) != (sb == NULL) || (sa != NULL && strcmp(sa, sb) != 0);
		} else if (rows[i].type == CONFTABLE_INT) {
			differ = *(const int64_t *)pa != *(const int64_t *)pb;
		} else {
			continue;
		}
		if (differ && used < size) {
			int n = snprintf(out + used, size - used, "%s%s", used > 0 ? "," : "", rows[i].key);

			used += n > 0 ? (size_t)n : 0;
		}
	}
}

void
conftable_free_strings(void *config, const struct conftable_row *rows, size_t n_rows)
{
	for (size_t i = 0; i < n_rows; i++)
		if (rows[i].type == CONFTABLE_STRING || rows[i].type == CONFTABLE_PATH)
			free(*(char **)((char *)config + rows[i].offset));
}
