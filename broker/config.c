/*
 * config.c — broker.yaml: one table row per key (name, type, bounds, default, field), turned into struct
 * broker_config by config_load() at start-up and by --check.  Paths in the file are relative to the file's own
 * directory, so a deployment directory can be moved as a whole.  See deploy/broker.yaml for every key with its
 * default.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "yamltree.h"

#define CONFIG_MAX_BYTES (64 * 1024)

enum config_type { CONFIG_STRING, CONFIG_PATH, CONFIG_INT };

struct config_row {
	const char *key;          /* as written in broker.yaml */
	enum config_type type;
	bool required;
	size_t offset;            /* of the field in struct broker_config */
	int64_t min, max;         /* CONFIG_INT bounds */
	int64_t default_int;      /* CONFIG_INT default */
	const char *default_text; /* CONFIG_STRING default, NULL = none */
};

#define ROW_STR(k, field, req, def) { k, CONFIG_STRING, req, offsetof(struct broker_config, field), 0, 0, 0, def }
#define ROW_PATH(k, field) { k, CONFIG_PATH, true, offsetof(struct broker_config, field), 0, 0, 0, NULL }
#define ROW_INT(k, field, lo, hi, def) { k, CONFIG_INT, false, offsetof(struct broker_config, field), lo, hi, def, NULL }

static const struct config_row config_rows[] = {
	ROW_STR("broker_id", broker_id, true, NULL),
	ROW_STR("listen", listen, true, NULL),
	ROW_PATH("curve_secret_key", curve_secret_key),
	ROW_PATH("region", region),
	ROW_PATH("rules", rules),
	ROW_PATH("journal", journal),
	ROW_INT("max_frame_bytes", max_frame_bytes, 4096, 16 * 1024 * 1024, 256 * 1024),
	ROW_INT("heartbeat_ms", heartbeat_ms, 100, 600000, 5000),
	ROW_INT("clock_skew_ms", clock_skew_ms, 0, 86400000, 300000),
	ROW_INT("rate_per_second", rate_per_second, 1, 1000000, 20),
	ROW_INT("rate_burst", rate_burst, 1, 1000000, 200),
	ROW_INT("max_credit", max_credit, 1, 65536, 1024),
	ROW_INT("retention_days", retention_days, 0, 36500, 365),
	ROW_INT("group_commit_max", group_commit_max, 1, 100000, 512),
	ROW_STR("log_level", log_level, false, "info"),
};

#define N_ROWS (sizeof(config_rows) / sizeof(config_rows[0]))

/* Resolve path against the directory of the config file unless it is absolute. */
static char *
resolve_path(const char *config_path, const char *path)
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
apply_row(struct broker_config *config, const struct ydoc *doc, const struct config_row *row,
    const struct ynode *value, struct xba_error *err)
{
	char *base = (char *)config;
	const char *text;
	int rc;

	if (row->type == CONFIG_INT) {
		int64_t v = row->default_int;

		if (value != NULL && (rc = ydoc_read_int(doc, value, row->key, row->min, row->max, &v, err)) != 0)
			return rc;
		*(int64_t *)(base + row->offset) = v;
		return 0;
	}
	if (value == NULL) {
		if (row->required)
			return ydoc_error(doc, doc->root, err, row->key, "missing (required)");
		text = row->default_text;
	} else if ((rc = ydoc_read_string(doc, value, row->key, 4096, &text, err)) != 0) {
		return rc;
	}
	if (text == NULL)
		return 0;
	if (row->type == CONFIG_STRING && text[0] == '\0')
		return ydoc_error(doc, value, err, row->key, "must not be empty");
	char *copy = row->type == CONFIG_PATH ? resolve_path(doc->name, text) : strdup(text);

	if (copy == NULL)
		return xba_error_set(err, XBA_ENOMEM, "%s: out of memory", doc->name);
	*(char **)(base + row->offset) = copy;
	return 0;
}

struct broker_config *
config_load(const char *path, struct xba_error *err)
{
	const char *allowed[N_ROWS + 1];
	struct broker_config *config;
	struct ydoc *doc;
	int rc = 0;

	doc = ydoc_load_file(path, CONFIG_MAX_BYTES, err);
	if (doc == NULL)
		return NULL;
	config = calloc(1, sizeof(*config));
	if (config == NULL || (config->path = strdup(path)) == NULL) {
		free(config);
		ydoc_free(doc);
		xba_error_set(err, XBA_ENOMEM, "%s: out of memory", path);
		return NULL;
	}
	for (size_t i = 0; i < N_ROWS; i++)
		allowed[i] = config_rows[i].key;
	allowed[N_ROWS] = NULL;
	if (doc->root == NULL)
		rc = xba_error_set(err, XBA_ECONFIG, "%s:1:1: empty file (expected broker settings)", path);
	if (rc == 0)
		rc = ydoc_expect_map(doc, doc->root, NULL, err);
	if (rc == 0)
		rc = ydoc_check_keys(doc, doc->root, NULL, allowed, err);
	for (size_t i = 0; rc == 0 && i < N_ROWS; i++)
		rc = apply_row(config, doc, &config_rows[i], ynode_get(doc->root, config_rows[i].key), err);
	if (rc == 0 && strcmp(config->log_level, "debug") != 0 && strcmp(config->log_level, "info") != 0 &&
	    strcmp(config->log_level, "warn") != 0)
		rc = ydoc_error(doc, ynode_get(doc->root, "log_level"), err, "log_level",
		    "'%s' is not one of debug, info, warn", config->log_level);
	if (rc == 0 && strncmp(config->listen, "tcp://", 6) != 0 && strncmp(config->listen, "ipc://", 6) != 0)
		rc = ydoc_error(doc, ynode_get(doc->root, "listen"), err, "listen",
		    "'%s' is not a tcp:// or ipc:// ZeroMQ endpoint", config->listen);
	ydoc_free(doc);
	if (rc != 0) {
		config_free(config);
		return NULL;
	}
	return config;
}

void
config_free(struct broker_config *config)
{
	if (config == NULL)
		return;
	for (size_t i = 0; i < N_ROWS; i++)
		if (config_rows[i].type != CONFIG_INT)
			free(*(char **)((char *)config + config_rows[i].offset));
	free(config->path);
	free(config);
}
