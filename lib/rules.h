/*
 * rules.h — the routing-rules engine: rules.yaml in, "who receives this alert, by which rule, and who was withheld
 * and why" out.
 *
 * Flow of an alert: the broker verifies the signature and validates the alert, then asks rules_route() for its
 * recipients, journals the decision (rules_version() plus one rule name per recipient and one reason per withheld
 * node) and fans the alert out.  `xba rules check` is rules_load(); `xba rules explain` is rules_load() plus
 * rules_route() on an alert from a file.  The language and every routing step are specified in docs/rules.md.
 *
 * Lifecycle:  (none) --rules_load / rules_load_buffer--> LOADED --rules_free--> (none)
 *             LOADED --rules_route--> LOADED     (read-only: concurrent calls on one rules object are safe)
 *
 * Rules hold node indexes of the directory they were loaded against, not node names: everything is resolved to
 * bitsets at load so that routing does no YAML and no lookup of a rule's names.  A directory reload therefore
 * requires a rules reload against the new directory; rules_route() refuses (XBA_EINVAL) a directory whose file
 * digest differs from the one the rules were loaded against, rather than deliver to the wrong nodes.
 */
#ifndef XBA_RULES_H
#define XBA_RULES_H

#include <stddef.h>

#include "directory.h"
#include "error.h"
#include "xba.pb-c.h"

#define RULES_MAX_BYTES (1024u * 1024)   /* rules.yaml size limit */
#define RULES_MAX_RULES 1024             /* rules per file; routing cost is linear in it */
#define RULES_MAX_NODES 4096             /* directory size the engine handles (routing scratch is on the stack) */
#define RULES_NAME_MAX 64                /* rule names: 1..64 of [a-z0-9-] */
#define RULES_VERSION_LEN 64             /* hex SHA-256 */

/*
 * The names the engine itself credits or withholds with, besides rule names.  None can clash with a rule name:
 * the ones with ':' are not valid rule names, and the others are refused as rule names at load.
 */
#define RULES_BY_EMERGENCY "emergency"              /* recipient: emergency broadcast to every member and observer */
#define RULES_BY_ACK "ack"                          /* recipient: the origin of the acknowledged alert */
#define RULES_BY_RED_ADDRESSEE "tlp:red-addressee"  /* recipient: a TLP:RED addressee no rule named */
/* recipient: had the alert this update or cancel supersedes (with ':' so that no existing rule name can clash) */
#define RULES_BY_SUPERSEDED "superseded:had-alert"
#define RULES_WITHHELD_ADMIN "admin"                /* withheld: admin nodes never receive alerts */
#define RULES_WITHHELD_NOT_ADDRESSED "not-addressed" /* withheld: named by a rule, not among the addressees */
#define RULES_WITHHELD_NO_RULE "no-rule"            /* withheld: an addressee that no matching rule names */
#define RULES_WITHHELD_TLP_RED "tlp:red"            /* withheld: TLP:RED and not an addressee */
#define RULES_WITHHELD_TLP_AMBER_STRICT "tlp:amber+strict" /* withheld: TLP:AMBER+STRICT and not a member */
#define RULES_WITHHELD_TLP_GREEN "tlp:green"        /* withheld: TLP:GREEN and neither member nor observer */

struct rules; /* opaque; immutable once loaded */

/*
 * Load and check a rules file against dir (which must outlive the rules).  NULL on failure with err filled:
 * XBA_ECONFIG with "file:line:col: rules[3].to[1]: ..." for anything wrong in the file, XBA_EIO, XBA_ETOOBIG (over
 * RULES_MAX_BYTES, or a directory over RULES_MAX_NODES nodes), XBA_ENOMEM.  The file is read once; the version is
 * the hash of exactly the bytes that were parsed.
 */
struct rules *rules_load(const char *path, const struct directory *dir, struct xba_error *err);
/* The same from memory; name is what messages call the file. */
struct rules *rules_load_buffer(const char *name, const char *data, size_t len, const struct directory *dir,
    struct xba_error *err);
/* Accepts NULL. */
void rules_free(struct rules *rules);

/* Lower-case hex SHA-256 of the file's bytes (RULES_VERSION_LEN chars), journaled with every routing decision. */
const char *rules_version(const struct rules *rules);
/* Number of rules in the file (deliver and deny). */
size_t rules_count(const struct rules *rules);

/*
 * What a valid file may still not mean (`xba rules check` prints these; the broker loads the file all the same):
 * a deliver rule that names only admin nodes, one whose targets a deny rule removes whenever it matches, one whose
 * origins are observers that may publish none of its categories.  warn(ctx, rule name, message) for each; returns
 * how many.  dir must be the directory the rules were loaded against.
 */
typedef void (*rules_warn_fn)(void *ctx, const char *rule, const char *message);
size_t rules_lint(const struct rules *rules, const struct directory *dir, rules_warn_fn warn, void *ctx);

struct route_entry {
	size_t node_index;  /* index into directory.nodes */
	const char *rule;   /* recipient: the rule that sent it; withheld: the rule or reason that kept it back.
	                     * Borrowed: a rule name owned by the rules object, or one of the static RULES_* strings,
	                     * so valid as long as the rules it was routed with. */
};

struct route {
	struct route_entry *recipients;  /* sorted by node_index, each node at most once; owned */
	size_t n_recipients;
	struct route_entry *withheld;    /* sorted by node_index, each node at most once, none a recipient; owned */
	size_t n_withheld;
};

/*
 * Decide who receives alert, by the steps of docs/rules.md "How an alert is routed".  alert must have passed
 * alert_validate() (the broker validates before routing); acked_origin is used only for msg_type ack: the origin
 * node id of the alert it acknowledges, or NULL when unknown (then nobody receives it).
 *
 * On success returns 0 and fills *out, which the caller releases with route_clear().  On failure *out is empty and:
 *   XBA_EREQUIRED  TLP:RED without addressees;
 *   XBA_ENOTFOUND  the origin, an addressee or acked_origin is not a node of the directory;
 *   XBA_EINVAL     dir is not the directory the rules were loaded against;
 *   XBA_ENOMEM.
 * Cost: no YAML, no allocation beyond the two result arrays; the only name lookups are the alert's own node ids
 * (binary search in the directory).
 */
int rules_route(const struct rules *rules, const struct directory *dir, const Xba__V1__Alert *alert,
    const char *acked_origin, struct route *out, struct xba_error *err);

/* What the broker knows from its journal that an alert does not carry. */
struct route_inputs {
	const char *acked_origin;                  /* msg_type ack: as rules_route's acked_origin */
	/* msg_type update or cancel: the nodes the alerts it names (of its own origin) were routed to.  Each one
	 * the rules leave out receives it all the same, credited RULES_BY_SUPERSEDED, unless a deny rule matches:
	 * a node that acts on an alert must learn that it was replaced or withdrawn.  Unknown ids are skipped. */
	const char *const *superseded_recipients;
	size_t n_superseded_recipients;
	/* Route a cancel as earlier releases did, only for auditing the journals they wrote (`xba audit verify`;
	 * the broker never sets it): ROUTE_CANCEL_TLP_BARS_HOLDERS, before 2026-11-27, kept a cancel's holders out by
	 * its TLP like an update's; ROUTE_CANCEL_DENY_BARS_HOLDERS, before 2026-11-26, by deny rules too. */
	enum route_cancel_holders {
		ROUTE_CANCEL_REACHES_HOLDERS = 0,
		ROUTE_CANCEL_TLP_BARS_HOLDERS,
		ROUTE_CANCEL_DENY_BARS_HOLDERS,
	} cancel_holders;
};

/* rules_route() with every input; in may be NULL (no inputs). */
int rules_route_with(const struct rules *rules, const struct directory *dir, const Xba__V1__Alert *alert,
    const struct route_inputs *in, struct route *out, struct xba_error *err);

/* Free the arrays of a route filled by rules_route() and empty it; accepts an already-empty route. */
void route_clear(struct route *route);

/*
 * The directory's publish rights, which the broker checks before routing (docs/protocol.md §2.3, checks 12-14):
 * admin nodes never publish; observers only the categories their `publish` list names; emergencies only from
 * nodes with may_broadcast; TLP:RED needs addressees; every addressee must be a node of the region.  Returns 0,
 * or the wire code of the refusal with *field set and why filled (one line).  `xba rules explain` uses it to say
 * when an alert would be refused before any rule is looked at.
 */
Xba__V1__ErrorCode rules_publish_rights(const struct directory *dir, const struct dir_node *origin,
    const Xba__V1__Alert *alert, const char **field, char *why, size_t size);

#endif
