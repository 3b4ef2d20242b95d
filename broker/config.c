/*
 * config.c — broker.yaml: one table row per key (name, type, bounds, default, field), applied by
 * lib/conftable.c and turned into struct broker_config by config_load() at start-up and by --check.  Paths are
 * relative to the file's own directory.  See deploy/broker.yaml for every key with its default.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "conftable.h"
#include "frame.h"
#include "yamltree.h"

#define CONFIG_MAX_BYTES (64 * 1024)

#define OFF(field) offsetof(struct broker_config, field)
#define ROW_STR(k, field, req, def) { k, CONFTABLE_STRING, req, OFF(field), 0, 0, 0, def, NULL }
#define ROW_PATH(k, field) { k, CONFTABLE_PATH, true, OFF(field), 0, 0, 0, NULL, NULL }
#define ROW_INT(k, field, lo, hi, def) { k, CONFTABLE_INT, false, OFF(field), lo, hi, def, NULL, NULL }

static const struct conftable_row config_rows[] = {
	ROW_STR("broker_id", broker_id, true, NULL),
	ROW_STR("listen", listen, true, NULL),
	ROW_PATH("curve_secret_key", curve_secret_key),
	ROW_PATH("region", region),
	ROW_PATH("rules", rules),
	ROW_PATH("journal", journal),
	ROW_INT("max_frame_bytes", max_frame_bytes, FRAME_MIN_BYTES, 16 * 1024 * 1024, FRAME_MAX_BYTES_DEFAULT),
	ROW_INT("heartbeat_ms", heartbeat_ms, 100, 600000, 5000),
	ROW_INT("clock_skew_ms", clock_skew_ms, 0, 86400000, 300000),
	ROW_INT("rate_per_second", rate_per_second, 1, 1000000, 20),
	ROW_INT("rate_burst", rate_burst, 1, 1000000, 200),
	ROW_INT("max_credit", max_credit, 1, 65536, 1024),
	ROW_INT("retention_days", retention_days, 0, 36500, 365),
	ROW_INT("group_commit_max", group_commit_max, 1, 100000, 512),
	ROW_INT("pass_max_ms", pass_max_ms, 1, 1000, 5),
	ROW_INT("verify_threads", verify_threads, 0, 64, -1),
	ROW_INT("stats_interval_s", stats_interval_s, 0, 86400, 60),
	ROW_INT("key_warning_days", key_warning_days, 0, 3650, 30),
	ROW_STR("log_level", log_level, false, "info"),
};

#define N_ROWS (sizeof(config_rows) / sizeof(config_rows[0]))

struct broker_config *
config_load(const char *path, struct xba_error *err)
{
	struct broker_config *config;
	struct ydoc *doc;
	int rc = 0;

	config = calloc(1, sizeof(*config));
	if (config == NULL || (config->path = strdup(path)) == NULL) {
		free(config);
		xba_error_set(err, XBA_ENOMEM, "%s: out of memory", path);
		return NULL;
	}
	doc = conftable_load(path, CONFIG_MAX_BYTES, config_rows, N_ROWS, config, "broker settings", err);
	if (doc == NULL) {
		config_free(config);
		return NULL;
	}
	if (strcmp(config->log_level, "debug") != 0 && strcmp(config->log_level, "info") != 0 &&
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
	conftable_free_strings(config, config_rows, N_ROWS);
	free(config->path);
	free(config);
}
