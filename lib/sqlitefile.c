/*
 * sqlitefile.c — see sqlitefile.h: the one way the daemons open a file they must not lose, before the journal or
 * the store lays its schema on it.
 */
#include "sqlitefile.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Mode 0600 from the first byte: SQLite would create the file with the umask's mode, readable by others. */
static int
create_private(const char *kind, const char *path, struct xba_error *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	return xba_error_set(err, XBA_EIO, "%s %s: cannot create: %s", kind, path, strerror(errno));
}

static int
failed(const struct sqlitefile_options *o, const char *path, sqlite3 *db, const char *op, struct xba_error *err)
{
	int primary = sqlite3_errcode(db) & 0xff;

	/* Damage found at start-up: the file must be replaced, which no restart does.  (SQLITE_NOTADB, no SQLite
	 * header at all, is the wrong file named, not a damaged one.) */
	if (primary == SQLITE_CORRUPT)
		return xba_error_set(err, XBA_EDAMAGED, "%s %s: %s: %s: the %s file is damaged: restore it from a "
		    "checked backup (docs/operations.md section 7)", o->kind, path, op, sqlite3_errmsg(db), o->kind);
	return xba_error_set(err, primary == SQLITE_NOMEM ? XBA_ENOMEM : XBA_EIO, "%s %s: %s: %s", o->kind, path, op,
	    sqlite3_errmsg(db));
}

/* journal_mode answers with the mode it got: a file system without shared memory silently stays in rollback
 * mode, which neither the group commit nor the checkpointer allows for. */
static int
set_wal(const struct sqlitefile_options *o, const char *path, sqlite3 *db, struct xba_error *err)
{
	sqlite3_stmt *st;
	const char *mode;
	int rc = 0;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
		return failed(o, path, db, "set WAL mode", err);
	if (sqlite3_step(st) != SQLITE_ROW)
		rc = failed(o, path, db, "set WAL mode", err);
	else if ((mode = (const char *)sqlite3_column_text(st, 0)) == NULL || sqlite3_stricmp(mode, "wal") != 0)
		rc = xba_error_set(err, XBA_EIO, "%s %s: the file system does not support WAL mode (got \"%s\")", o->kind,
		    path, mode != NULL ? mode : "?");
	sqlite3_finalize(st);
	return rc;
}

int
sqlitefile_open(const char *path, const struct sqlitefile_options *o, sqlite3 **db, struct xba_error *err)
{
	char pragma[128];
	int rc;

	assert(path != NULL && o != NULL && db != NULL);
	*db = NULL;
	if (strncmp(path, "file:", 5) != 0 && (rc = create_private(o->kind, path, err)) != 0)
		return rc;
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = *db != NULL ? failed(o, path, *db, "open", err)
		    : xba_error_set(err, XBA_ENOMEM, "%s %s: open: out of memory", o->kind, path);
		goto fail;
	}
	/* SQLite quietly opens a write-protected file read-only; the daemon would then learn it at its first write.
	 * Refused here, at start-up, where the operator is looking. */
	if (sqlite3_db_readonly(*db, "main") == 1) {
		rc = xba_error_set(err, XBA_EIO, "%s %s: open: the file is read-only (check its owner, its mode and the "
		    "file system)", o->kind, path);
		goto fail;
	}
	sqlite3_extended_result_codes(*db, 1);
	sqlite3_busy_timeout(*db, o->busy_timeout_ms);
	if (o->cache_kib > 0)
		snprintf(pragma, sizeof(pragma), "PRAGMA synchronous = FULL; PRAGMA journal_size_limit = %d;"
		    " PRAGMA cache_size = -%d", o->wal_size_limit, o->cache_kib);
	else
		snprintf(pragma, sizeof(pragma), "PRAGMA synchronous = FULL; PRAGMA journal_size_limit = %d",
		    o->wal_size_limit);
	if ((rc = set_wal(o, path, *db, err)) != 0)
		goto fail;
	if (sqlite3_exec(*db, pragma, NULL, NULL, NULL) != SQLITE_OK) {
		rc = failed(o, path, *db, "set synchronous, WAL size and cache", err);
		goto fail;
	}
	return 0;
fail:
	sqlite3_close(*db);
	*db = NULL;
	return rc;
}
