/*
 * directory.h — the region directory (region.yaml): who the nodes are and which keys speak for them.
 *
 * Loaded once at start-up (and on SIGHUP by the broker) by every program that authenticates or verifies: the
 * broker's ZAP handler looks nodes up by CURVE key; envelope.c looks signing keys up by key id; the rules engine
 * reads roles, neighbours and groups.  Public keys are parsed here, once, never per message.
 * The file format is documented in docs/region.md.
 */
#ifndef XBA_DIRECTORY_H
#define XBA_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "keys.h"
#include "sigverify.h"
#include "syntax.h"

enum node_role {
	NODE_ROLE_MEMBER = 1,   /* a member country (id must be an ISO 3166-1 alpha-3 code) */
	NODE_ROLE_OBSERVER = 2, /* receives per the rules; publishes only the categories it is allowed */
	NODE_ROLE_ADMIN = 3,    /* secretariat tooling: status only, never publishes or receives alerts */
};

struct dir_key {
	uint8_t key_id[XBA_KEY_ID_LEN];  /* SHA-256 of pub.raw */
	struct sig_pubkey pub;           /* parsed once */
	int64_t valid_from_ms;           /* 0 = since ever */
	int64_t valid_until_ms;          /* XBA_TIME_NEVER = no end */
	int64_t revoked_at_ms;           /* XBA_TIME_NEVER = not revoked */
	size_t node_index;               /* owner, index into directory.nodes */
};

struct dir_node {
	char id[XBA_NODE_ID_MAX + 1];
	char *name;                      /* human name, "Niger"; owned */
	enum node_role role;
	uint8_t curve_public[XBA_CURVE_KEY_LEN];
	char curve_public_z85[XBA_Z85_KEY_TEXT_LEN + 1];
	size_t first_key, n_keys;        /* this node's keys: directory.keys[first_key .. first_key+n_keys) */
	size_t *neighbours;              /* indexes into directory.nodes, sorted; symmetric; owned */
	size_t n_neighbours;
	bool may_broadcast;              /* may issue emergency broadcasts */
	uint32_t publish_categories;     /* bit (1u << Category value) set = may publish; members: all categories */
};

struct dir_group {
	char *name;                      /* owned */
	size_t *members;                 /* node indexes, sorted; owned */
	size_t n_members;
};

struct directory {
	char *region;                    /* region name; owned */
	char *path;                      /* file it was loaded from; owned */
	uint8_t digest[32];              /* SHA-256 of the file's bytes: its version */
	struct dir_node *nodes;          /* sorted by id; owned */
	size_t n_nodes;
	struct dir_key *keys;            /* grouped by node; owned */
	size_t n_keys;
	struct dir_group *groups;        /* sorted by name; owned */
	size_t n_groups;
	size_t *keys_by_id;              /* indexes into keys, sorted by key_id, for bsearch; owned */
	size_t *nodes_by_curve;          /* indexes into nodes, sorted by curve_public; owned */
};

/* Load and check region.yaml; NULL on failure, err naming file:line:column. */
struct directory *directory_load(const char *path, struct xba_error *err);
struct directory *directory_load_buffer(const char *name, const char *data, size_t len, struct xba_error *err);
void directory_free(struct directory *dir);

const struct dir_node *directory_node(const struct directory *dir, const char *id);
const struct dir_node *directory_node_by_curve(const struct directory *dir, const uint8_t curve_public[32]);
/* Signing key by id, or NULL. */
const struct dir_key *directory_key(const struct directory *dir, const uint8_t key_id[XBA_KEY_ID_LEN]);
const struct dir_group *directory_group(const struct directory *dir, const char *name);
bool directory_are_neighbours(const struct directory *dir, const struct dir_node *a, const struct dir_node *b);
size_t directory_node_index(const struct directory *dir, const struct dir_node *node);

/*
 * May key be used for an alert sent at sent_ms, checked at now_ms?  XBA_EKEYREVOKED when revoked_at <= now_ms;
 * XBA_EKEYVALIDITY when sent_ms is outside [valid_from, valid_until).  Message names the node and the times.
 */
int directory_key_usable(const struct directory *dir, const struct dir_key *key, int64_t sent_ms, int64_t now_ms,
    struct xba_error *err);

/* The end of the time in which key can sign a new alert: the earlier of valid_until and revoked_at, or
 * XBA_TIME_NEVER when neither is set.  From then on, an alert sealed with it is refused everywhere. */
int64_t directory_key_signs_until(const struct dir_key *key);

/*
 * The first instant at or after now_ms at which node has no signing key it could seal a new alert with (counting
 * keys whose validity starts later, as a planned rotation adds them): now_ms when it has none now, XBA_TIME_NEVER
 * when that never comes.  The secretariat's warning that a country is about to go silent.
 */
int64_t directory_node_signs_until(const struct directory *dir, const struct dir_node *node, int64_t now_ms);

const char *directory_role_name(enum node_role role);

#endif
