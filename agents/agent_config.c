/*
 * agent_config.c — agent.yaml: one table row per key (name, type, bounds, default, field), applied by
 * lib/conftable.c and turned into struct agent_config by agent_config_load() at start-up and by --check.  It is
 * the first thing the agent reads: every other file (keys, region.yaml, the store, the socket) is found through
 * it.  Paths are relative to the file's own directory, so a deployment directory can be moved as a whole.
 * deploy/agent.yaml shows every key with its default.  On SIGHUP agent_main.c loads the file again and takes
 * only `officers` from it (agent_config_take_officers: removing an officer's key must not wait for a restart);
 * every other key needs a restart, and agent_config_restart_keys names those that changed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "agent.h"
#include "conftable.h"
#include "encoding.h"
#include "syntax.h"
#include "yamltree.h"

#define CONFIG_MAX_BYTES (64 * 1024)
#define CONFIG_MAX_OFFICERS 1024
#define OFFICER_NAME_MAX 64

static int read_mode_row(void *config, const struct ydoc *doc, const struct conftable_row *row,
    const struct ynode *value, struct xba_error *err);
static int read_officers_row(void *config, const struct ydoc *doc, const struct conftable_row *row,
    const struct ynode *value, struct xba_error *err);

/* Of these rows only `officers` is applied on SIGHUP (see the file comment). */
#define OFF(field) offsetof(struct agent_config, field)
#define ROW_STR(k, field, req, def) { k, CONFTABLE_STRING, req, OFF(field), 0, 0, 0, def, NULL }
#define ROW_PATH(k, field, req) { k, CONFTABLE_PATH, req, OFF(field), 0, 0, 0, NULL, NULL }
#define ROW_INT(k, field, lo, hi, def) { k, CONFTABLE_INT, false, OFF(field), lo, hi, def, NULL, NULL }
#define ROW_MODE(k, field, def) { k, CONFTABLE_CUSTOM, false, OFF(field), 0, 0777, def, NULL, read_mode_row }

static const struct conftable_row config_rows[] = {
	ROW_STR("node_id", node_id, true, NULL),
	ROW_STR("broker", broker, true, NULL),
	ROW_PATH("broker_public_key", broker_public_key, true),
	ROW_PATH("signing_key", signing_key, true),
	ROW_PATH("curve_secret_key", curve_secret_key, true),
	ROW_PATH("region", region, true),
	ROW_PATH("store", store, true),
	ROW_PATH("local_socket", local_socket, true),
	ROW_MODE("local_socket_mode", local_socket_mode, 0660),
	ROW_STR("local_group", local_group, false, NULL),
	ROW_STR("lan_listen", lan_listen, false, NULL),
	ROW_PATH("lan_curve_secret_key", lan_curve_secret_key, false),
	{ "officers", CONFTABLE_CUSTOM, false, 0, 0, 0, 0, NULL, read_officers_row },
	ROW_INT("credit", credit, 1, 65536, 64),
	ROW_INT("heartbeat_ms", heartbeat_ms, 100, 600000, 5000),
	ROW_INT("reconnect_min_ms", reconnect_min_ms, 10, 3600000, 1000),
	ROW_INT("reconnect_max_ms", reconnect_max_ms, 10, 3600000, 5000),
	ROW_STR("log_level", log_level, false, "info"),
	ROW_INT("retention_days", retention_days, 0, 36500, 365),
	ROW_INT("key_warning_days", key_warning_days, 0, 3650, 30),
};

#define N_ROWS (sizeof(config_rows) / sizeof(config_rows[0]))

/* "0660" (or 0660, 660): octal digits only, so a decimal 432 can never be taken for a mode. */
static int
read_mode(const struct ydoc *doc, const struct ynode *node, const struct conftable_row *row, int64_t *out,
    struct xba_error *err)
{
	const char *text;
	int64_t v = 0;
	int rc;

	if ((rc = ydoc_read_string(doc, node, row->key, 8, &text, err)) != 0)
		return rc;
	if (text[0] == '\0')
		return ydoc_error(doc, node, err, row->key, "expected octal permission bits such as \"0660\"");
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '7')
			return ydoc_error(doc, node, err, row->key,
			    "'%s' is not octal permission bits (expected e.g. \"0660\" or \"0600\")", text);
		v = v * 8 + (*p - '0');
	}
	if (v > row->max)
		return ydoc_error(doc, node, err, row->key, "'%s' has bits outside 0777", text);
	/* Anyone who can connect can have alerts signed in this country's name. */
	if (v & 0007)
		return ydoc_error(doc, node, err, row->key,
		    "'%s' lets every local user connect and send alerts signed by this node; use 0660 with "
		    "local_group, or 0600", text);
	if ((v & 0600) != 0600)
		return ydoc_error(doc, node, err, row->key,
		    "'%s' does not let the socket's owner read and write it (expected at least 0600)", text);
	*out = v;
	return 0;
}

static int
read_officers(struct agent_config *config, const struct ydoc *doc, const struct ynode *list, struct xba_error *err)
{
	static const char *const allowed[] = { "name", "curve_key", NULL };
	char path[64];
	int rc;

	if ((rc = ydoc_expect_sequence(doc, list, "officers", err)) != 0)
		return rc;
	if (list->count > CONFIG_MAX_OFFICERS)
		return ydoc_error(doc, list, err, "officers", "%zu officers, at most %d", list->count,
		    CONFIG_MAX_OFFICERS);
	if (list->count == 0)
		return 0;
	if ((config->officers = calloc(list->count, sizeof(*config->officers))) == NULL)
		return xba_error_set(err, XBA_ENOMEM, "%s: out of memory", doc->name);
	for (size_t i = 0; i < list->count; i++) {
		const struct ynode *item = list->items[i], *name_node, *key_node;
		struct agent_officer *o = &config->officers[i];
		const char *name, *key;

		snprintf(path, sizeof(path), "officers[%zu]", i);
		if ((rc = ydoc_expect_map(doc, item, path, err)) != 0 ||
		    (rc = ydoc_check_keys(doc, item, path, allowed, err)) != 0)
			return rc;
		name_node = ynode_get(item, "name");
		key_node = ynode_get(item, "curve_key");
		snprintf(path, sizeof(path), "officers[%zu].name", i);
		if ((rc = ydoc_read_string(doc, name_node, path, OFFICER_NAME_MAX, &name, err)) != 0)
			return rc;
		if (name[0] == '\0')
			return ydoc_error(doc, name_node, err, path, "expected the officer's name (1..%d bytes of text)",
			    OFFICER_NAME_MAX);
		if (!syntax_utf8_valid(name, strlen(name)))
			return ydoc_error(doc, name_node, err, path, "not valid UTF-8 (save agent.yaml as UTF-8)");
		/* The name goes into logs, into `xba` output and into the author of every alert the officer sends,
		 * where alert_check_submission refuses C1 as well as C0: refused here, the mistake shows at load. */
		for (size_t b = 0; name[b] != '\0'; b++) {
			const unsigned char *p = (const unsigned char *)name + b;
			size_t n = syntax_control_len(p);

			if (n == 1)
				return ydoc_error(doc, name_node, err, path, "control character 0x%02X at byte %zu: not "
				    "allowed in a name", *p, b);
			if (n == 2)
				return ydoc_error(doc, name_node, err, path, "control character U+%04X at byte %zu: not "
				    "allowed in a name", p[1], b);
		}
		snprintf(path, sizeof(path), "officers[%zu].curve_key", i);
		if ((rc = ydoc_read_string(doc, key_node, path, 64, &key, err)) != 0)
			return rc;
		if (encoding_z85_key(key, o->curve_public) != 0)
			return ydoc_error(doc, key_node, err, path,
			    "not a Z85 CURVE public key (expected 40 characters, as in OFFICER.curve.pub)");
		for (size_t k = 0; k < i; k++) {
			if (memcmp(config->officers[k].curve_public, o->curve_public, XBA_CURVE_KEY_LEN) == 0)
				return ydoc_error(doc, key_node, err, path, "the same key as officers[%zu] (%s)", k,
				    config->officers[k].name);
		}
		if ((o->name = strdup(name)) == NULL)
			return xba_error_set(err, XBA_ENOMEM, "%s: out of memory", doc->name);
		config->n_officers = i + 1;
	}
	return 0;
}

static void
remember_where(struct agent_config *config, const char *key, const struct ynode *value)
{
	if (value == NULL || config->n_where >= AGENT_CONFIG_MAX_WHERE)
		return;
	config->where[config->n_where].key = key;
	config->where[config->n_where].line = value->line;
	config->where[config->n_where].column = value->column;
	config->n_where++;
}

static int
read_mode_row(void *config, const struct ydoc *doc, const struct conftable_row *row, const struct ynode *value,
    struct xba_error *err)
{
	int64_t v = row->default_int;
	int rc;

	if (value != NULL && (rc = read_mode(doc, value, row, &v, err)) != 0)
		return rc;
	*(int64_t *)((char *)config + row->offset) = v;
	return 0;
}

static int
read_officers_row(void *config, const struct ydoc *doc, const struct conftable_row *row, const struct ynode *value,
    struct xba_error *err)
{
	(void)row;
	if (value == NULL)
		return 0;
	/* `officers:` with nothing under it (or `""`), once the last officer's entry is taken out: nobody, not an
	 * error.  A refusal would keep the departed officer's key in force (a reload that fails changes nothing). */
	if (ynode_is_null(value) || (value->kind == YNODE_SCALAR && value->scalar_len == 0))
		return 0;
	return read_officers(config, doc, value, err);
}

/* The checks that involve more than one key, or a key's shape beyond its type. */
static int
check_config(struct agent_config *config, const struct ydoc *doc, struct xba_error *err)
{
	const struct ynode *root = doc->root;

	if (!syntax_node_id_valid(config->node_id))
		return ydoc_error(doc, ynode_get(root, "node_id"), err, "node_id",
		    "'%s' is not a node id (2-32 of A-Z 0-9 -, starting with a letter: NER, WHO-AFRO)",
		    config->node_id);
	if (strncmp(config->broker, "tcp://", 6) != 0 || config->broker[6] == '\0')
		return ydoc_error(doc, ynode_get(root, "broker"), err, "broker",
		    "'%s' is not a tcp:// endpoint (e.g. tcp://broker.example.org:7450)", config->broker);
	if (strcmp(config->log_level, "debug") != 0 && strcmp(config->log_level, "info") != 0 &&
	    strcmp(config->log_level, "warn") != 0)
		return ydoc_error(doc, ynode_get(root, "log_level"), err, "log_level",
		    "'%s' is not one of debug, info, warn", config->log_level);
	if (config->reconnect_min_ms > config->reconnect_max_ms)
		return ydoc_error(doc, ynode_get(root, "reconnect_min_ms"), err, "reconnect_min_ms",
		    "%lld is more than reconnect_max_ms (%lld)", (long long)config->reconnect_min_ms,
		    (long long)config->reconnect_max_ms);
	/* sun_path holds 108 bytes on Linux; libzmq refuses a longer path only at bind, with a vaguer message. */
	if (strlen(config->local_socket) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return ydoc_error(doc, ynode_get(root, "local_socket"), err, "local_socket",
		    "'%s' is %zu bytes long; a unix socket path must be shorter than %zu", config->local_socket,
		    strlen(config->local_socket), sizeof(((struct sockaddr_un *)0)->sun_path));
	if (config->local_group != NULL) {
		for (const char *p = config->local_group; *p != '\0'; p++)
			if (*p == ':' || *p == '/' || (unsigned char)*p <= 0x20)
				return ydoc_error(doc, ynode_get(root, "local_group"), err, "local_group",
				    "'%s' is not a unix group name", config->local_group);
	}
	if (config->lan_listen != NULL) {
		if (strncmp(config->lan_listen, "tcp://", 6) != 0 || config->lan_listen[6] == '\0')
			return ydoc_error(doc, ynode_get(root, "lan_listen"), err, "lan_listen",
			    "'%s' is not a tcp:// endpoint (e.g. tcp://192.0.2.10:7460)", config->lan_listen);
		if (config->lan_curve_secret_key == NULL)
			return ydoc_error(doc, ynode_get(root, "lan_listen"), err, "lan_curve_secret_key",
			    "required with lan_listen: the LAN endpoint's CURVE secret key (xba keygen makes one)");
		/* No officers key (the last officer's entry deleted with it) admits nobody, as an empty list does, and
		 * the agent says so when it listens: refused on SIGHUP it would keep that officer's key in force, and
		 * refused at start it would keep the country off the region after its next restart. */
	} else if (config->lan_curve_secret_key != NULL || config->n_officers > 0) {
		return ydoc_error(doc, ynode_get(root, config->n_officers > 0 ? "officers" : "lan_curve_secret_key"),
		    err, config->n_officers > 0 ? "officers" : "lan_curve_secret_key",
		    "has no effect without lan_listen");
	}
	return 0;
}

struct agent_config *
agent_config_load(const char *path, struct xba_error *err)
{
	struct agent_config *config;
	struct ydoc *doc;
	int rc;

	config = calloc(1, sizeof(*config));
	if (config == NULL || (config->path = strdup(path)) == NULL) {
		free(config);
		xba_error_set(err, XBA_ENOMEM, "%s: out of memory", path);
		return NULL;
	}
	doc = conftable_load(path, CONFIG_MAX_BYTES, config_rows, N_ROWS, config, "the agent's settings", err);
	if (doc == NULL) {
		agent_config_free(config);
		return NULL;
	}
	for (size_t i = 0; i < N_ROWS; i++)
		remember_where(config, config_rows[i].key, ynode_get(doc->root, config_rows[i].key));
	rc = check_config(config, doc, err);
	ydoc_free(doc);
	if (rc != 0) {
		agent_config_free(config);
		return NULL;
	}
	return config;
}

void
agent_config_restart_keys(const struct agent_config *running, const struct agent_config *loaded, char *out,
    size_t size)
{
	size_t used;

	conftable_changed(running, loaded, config_rows, N_ROWS, out, size);
	used = strlen(out);
	/* The one custom row besides officers; its value is an int64 like an INT row's. */
	if (running->local_socket_mode != loaded->local_socket_mode && used + 1 < size)
		snprintf(out + used, size - used, "%slocal_socket_mode", used > 0 ? "," : "");
}

void
agent_config_take_officers(struct agent_config *running, struct agent_config *loaded)
{
	struct agent_officer *officers = running->officers;
	size_t n_officers = running->n_officers;

	running->officers = loaded->officers;
	running->n_officers = loaded->n_officers;
	loaded->officers = officers;
	loaded->n_officers = n_officers;
}

const struct agent_officer *
agent_config_officer(const struct agent_config *config, const uint8_t curve_public[XBA_CURVE_KEY_LEN])
{
	for (size_t i = 0; i < config->n_officers; i++)
		if (memcmp(config->officers[i].curve_public, curve_public, XBA_CURVE_KEY_LEN) == 0)
			return &config->officers[i];
	return NULL;
}

void
agent_config_free(struct agent_config *config)
{
	if (config == NULL)
		return;
	conftable_free_strings(config, config_rows, N_ROWS);
	for (size_t i = 0; i < config->n_officers; i++)
		free(config->officers[i].name);
	free(config->officers);
	free(config->path);
	free(config);
}

int
agent_config_error(const struct agent_config *config, const char *key, struct xba_error *err, int code,
    const char *fmt, ...)
{
	char msg[XBA_ERROR_MSG_MAX];
	int line = 1, column = 1;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < config->n_where; i++) {
		if (strcmp(config->where[i].key, key) == 0) {
			line = config->where[i].line;
			column = config->where[i].column;
		}
	}
	return xba_error_set(err, code, "%s:%d:%d: %s: %s", config->path, line, column, key, msg);
}
