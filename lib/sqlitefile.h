/*
 * sqlitefile.h — opening the durable SQLite files the daemons write: the broker's journal (broker/journal.c) and a
 * national agent's store (agents/store.c).  Both hold what the system promised not to lose, so both open the same
 * way; each then creates or upgrades its own schema.
 */
#ifndef XBA_SQLITEFILE_H
#define XBA_SQLITEFILE_H

#include <sqlite3.h>

#include "error.h"

struct sqlitefile_options {
	const char *kind;        /* "journal", "store": the first word of every message */
	int busy_timeout_ms;     /* another connection (a checkpointer, an auditor) holding a lock */
	int wal_size_limit;      /* bytes a WAL is truncated back to after a checkpoint */
	int cache_kib;           /* page cache; 0 keeps SQLite's default */
};

/*
 * Opens path for reading and writing, creating it mode 0600 if absent (a "file:" URI is passed to SQLite as it is),
 * in WAL mode with synchronous=FULL, so that a commit that returned survives power loss; extended result codes on.
 * Refused, with a message naming the file: a file SQLite could open only read-only (it would otherwise say so at
 * the first write, long after start-up), and a file system where WAL mode does not take.  0 and *db, or a negative
 * code with *db NULL.
 */
int sqlitefile_open(const char *path, const struct sqlitefile_options *options, sqlite3 **db, struct xba_error *err);

#endif
