/*
 * chain.h — the broker journal's hash chain, shared by the program that writes it and the programs that check it.
 *
 * broker/journal.c computes each entry's hash with chain_hash() as it appends; `xba-broker --audit` and `xba audit
 * verify` recompute every hash from the stored columns with chain_walk().  One definition of the hash, so that the
 * writer and its auditors cannot drift apart.  The formula is at the top of chain.c.
 */
#ifndef XBA_CHAIN_H
#define XBA_CHAIN_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CHAIN_HASH_LEN 32
/* The newest journal schema whose alerts, deliveries and meta tables chain_walk reads (schema 2 added only
 * delivery_marks, which is state, not history).  broker/journal.c refuses to build if its schema moves past it. */
#define CHAIN_SCHEMA_MAX 2
#define CHAIN_DELIVERY_WITHHELD 4 /* deliveries.state of a withheld node: such rows go in the withheld list */

/* The columns of one entry that its hash covers, besides the (node, rule) lists. */
struct chain_entry {
	uint64_t seq;
	const char *alert_id;
	size_t alert_id_len;
	const char *origin;
	size_t origin_len;
	int64_t sent_ms;
	int64_t received_ms;
	int64_t msg_type;
	int64_t emergency;
	const uint8_t *envelope_sha256;    /* CHAIN_HASH_LEN bytes */
	const char *rules_version;
	size_t rules_version_len;
	uint64_t n_recipients;             /* chain_walk: the pairs hashed, for its visitor */
	uint64_t n_withheld;
	const uint8_t *prev_hash;          /* chain_walk: the hash it chains from, for its visitor */
	const uint8_t *hash;               /* chain_walk: this entry's verified hash, for its visitor */
};

/* What chain_walk found.  On a break, checked counts the good entries before broken_seq. */
struct chain_walk_result {
	uint64_t base_seq;                 /* entries up to base_seq were pruned; the first kept one chains from it */
	uint8_t base_hash[CHAIN_HASH_LEN]; /* the hash of entry base_seq (zeros when nothing was pruned) */
	uint64_t checked;                  /* entries whose stored hash matched the recomputed one */
	uint64_t first_seq, last_seq;      /* of the entries checked; 0 when none */
	uint8_t tip[CHAIN_HASH_LEN];       /* hash of last_seq (the base hash when none was checked) */
	uint64_t broken_seq;               /* where the chain breaks; 0 when intact */
};

/* Called for each entry whose hash matched, in seq order, with its stored envelope.  A non-zero return stops the
 * walk, which returns it. */
typedef int (*chain_visit_fn)(void *ctx, const struct chain_entry *entry, const uint8_t *envelope,
    size_t envelope_len, struct xba_error *err);

/* Hashing state: a digest context and the entry's encoded (node, rule) lists, reused entry after entry.  label
 * (the journal's path) prefixes error messages; it is copied. */
struct chain *chain_new(const char *label, struct xba_error *err);
void chain_free(struct chain *c);

int chain_sha256(struct chain *c, const void *data, size_t len, uint8_t out[CHAIN_HASH_LEN], struct xba_error *err);

/* The lists of the next chain_hash: cleared, then each pair added in its list's order (sorted by node, bytewise). */
void chain_pairs_clear(struct chain *c);
int chain_pair_add(struct chain *c, bool withheld, const char *node, size_t node_len, const char *rule,
    size_t rule_len, struct xba_error *err);

/* hash = the entry's chain hash after prev, over e and the pairs added since chain_pairs_clear. */
int chain_hash(struct chain *c, const uint8_t prev[CHAIN_HASH_LEN], const struct chain_entry *e,
    uint8_t out[CHAIN_HASH_LEN], struct xba_error *err);

/* Recomputes every entry's hash from a journal's stored columns and delivery rows, in seq order, and compares it
 * with the stored one; also the stored envelope digest, recipient count and previous hash.  The caller holds a
 * read transaction on db so that both tables are read from one snapshot.  0: intact (visit, when not NULL, was
 * called for every entry); XBA_EDECODE with out->broken_seq set: altered, inserted or deleted entry; XBA_EDAMAGED:
 * SQLite found a damaged page after out->checked good entries; other negative codes: the file could not be read. */
int chain_walk(struct chain *c, sqlite3 *db, chain_visit_fn visit, void *ctx, struct chain_walk_result *out,
    struct xba_error *err);

/* SQLite's integrity_check of the whole file, which the walk does not make (it reads no index and no free page);
 * run by both audits in the walk's read transaction.  0: no damage; XBA_EDAMAGED naming SQLite's first problem
 * and their count; other negative codes: the check could not run. */
int chain_check_file(struct chain *c, sqlite3 *db, struct xba_error *err);

/* msg without its leading "journal PATH: ", for a line that names the journal already. */
const char *chain_reason(const char *path, const char *msg);

/* Opens a journal file read-only for an audit (no schema created or upgraded), after checking that its schema is
 * one chain_walk reads.  On a WAL-mode file SQLite creates a -shm and an empty -wal beside it if they are absent;
 * where it cannot (a directory the auditor may not write), the file is read as immutable instead (*immutable set,
 * when not NULL): right for a copy, wrong for a file a broker is writing.  XBA_EDAMAGED: SQLite's header with a
 * schema that does not parse, or cut short; XBA_EDECODE: not a journal (an agent's store, no schema version, a
 * newer schema); XBA_EIO: cannot open or read, not SQLite at all.  The caller closes *db with sqlite3_close. */
int chain_open_readonly(const char *path, sqlite3 **db, bool *immutable, struct xba_error *err);

#endif
