/*
 * main.c — xba-broker's front door: arguments, configuration, signals, and the hand-off to server.c.
 *
 *   xba-broker -c broker.yaml [--check | --audit]
 *
 * Signals reach the event loop as bytes on lib/sigpipe.c's self-pipe ('T' stop, 'H' reload, 'U' status report).
 */
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "broker.h"
#include "chain.h"
#include "encoding.h"
#include "fdlimit.h"
#include "log.h"
#include "sigpipe.h"
#include "xba_config.h"

/*
 * Keep freed heap memory for the next burst instead of handing it back to the kernel.  glibc trims the top of the
 * heap whenever 128 KiB or more of it is free, and libzmq's I/O thread frees each message once it is sent: under
 * load the heap shrank and grew again hundreds of times a second, and every regrowth page-faulted fresh pages into
 * the copy of the next DeliverBatch (docs/performance.md §3: ~15% of the broker's CPU per alert).  Setting the trim
 * threshold stops glibc adapting the mmap threshold, so that is set too: allocations of 4 MiB and more (the
 * envelope cache's arena) still get mappings of their own.  The memory target counts peak RSS, which this does not
 * raise.  A libc that refuses (or a sanitizer's allocator) leaves the default, which is only slower.
 */
static void
malloc_keep_heap(void)
{
#ifdef __GLIBC__
	(void)mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
	(void)mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
#endif
}

/*
 * --audit: walk the journal's hash chain and check the file with SQLite; 0 intact, 1 broken, damaged or
 * unreadable.  Read-only, as `xba audit verify` reads it (lib/chain.c): journal_open would create a journal that is
 * not there (and call it intact), upgrade an old backup's schema and checkpoint its -wal, changing the evidence it
 * is asked to judge.
 */
static int
audit_journal(const char *path)
{
	struct xba_error err = { 0 }, check_err = { 0 };
	struct chain_walk_result result;
	struct chain *chain = NULL;
	sqlite3 *db = NULL;
	bool immutable = false;
	char hex[2 * CHAIN_HASH_LEN + 1];
	int rc, check_rc = 0;

	memset(&result, 0, sizeof(result));
	rc = chain_open_readonly(path, &db, &immutable, &err);
	if (rc == XBA_EDAMAGED) {
		printf("journal %s: TAMPERED OR DAMAGED before any entry was checked: %s\n", path,
		    chain_reason(path, err.msg));
		rc = 1;
		goto out;
	}
	if (rc != 0 || (chain = chain_new(path, &err)) == NULL) {
		fprintf(stderr, "xba-broker: %s\n", err.msg);
		rc = 1;
		goto out;
	}
	if (immutable)
		fprintf(stderr, "xba-broker: note: journal %s: read as immutable, without locks, because SQLite cannot "
		    "create %s-shm beside it: right for a copy, which nothing writes\n", path, path);
	/* One read transaction: both scans of the walk and the file check see one snapshot while a broker writes. */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "xba-broker: journal %s: cannot read: %s\n", path, sqlite3_errmsg(db));
		rc = 1;
		goto out;
	}
	rc = chain_walk(chain, db, NULL, NULL, &result, &err);
	/* The walk reads no index: a backup whose alert-id index is damaged passed it, and the broker restored from it
	 * refused every publish. */
	if (rc == 0 || rc == XBA_EDECODE || rc == XBA_EDAMAGED)
		check_rc = chain_check_file(chain, db, &check_err);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != 0 && rc != XBA_EDECODE && rc != XBA_EDAMAGED) {
		/* Not a verdict on the journal: it could not be read to the end. */
		fprintf(stderr, "xba-broker: %s\n", err.msg);
		rc = 1;
	} else if (rc != 0) {
		printf("journal %s: TAMPERED OR DAMAGED after %llu good entries: %s%s%s\n", path,
		    (unsigned long long)result.checked, chain_reason(path, err.msg),
		    check_rc == XBA_EDAMAGED ? "; " : "", check_rc == XBA_EDAMAGED ? chain_reason(path, check_err.msg) : "");
		rc = 1;
	} else if (check_rc == XBA_EDAMAGED) {
		printf("journal %s: TAMPERED OR DAMAGED after %llu good entries: %s\n", path,
		    (unsigned long long)result.checked, chain_reason(path, check_err.msg));
		rc = 1;
	} else if (check_rc != 0) {
		fprintf(stderr, "xba-broker: %s\n", check_err.msg);
		rc = 1;
	} else {
		uint64_t head = result.checked > 0 ? result.last_seq : result.base_seq;

		printf("journal %s: %llu entries, hash chain intact, file undamaged (head %llu)\n", path,
		    (unsigned long long)result.checked, (unsigned long long)head);
		/* The line `xba audit verify --tip` takes as it is, for whoever keeps it out of the secretariat's reach. */
		printf("tip: seq %llu hash %s\n", (unsigned long long)head, encoding_hex(result.tip, CHAIN_HASH_LEN, hex));
	}
out:
	chain_free(chain);
	sqlite3_close(db);
	return rc;
}

static void
usage(FILE *out)
{
	fprintf(out, "usage: xba-broker -c broker.yaml [--check | --audit]\n"
		     "\n"
		     "The working group's central broker: authenticates nodes (CURVE), verifies, routes, journals and\n"
		     "delivers their alerts.\n"
		     "\n"
		     "  -c, --config FILE  broker.yaml (region.yaml and rules.yaml are named in it)\n"
		     "      --check        validate broker.yaml, region.yaml, rules.yaml and the key, then exit\n"
		     "      --audit        verify the journal's hash chain (tamper evidence), then exit\n"
		     "  -h, --help         this text\n"
		     "\n"
		     "Signals: SIGHUP reloads region.yaml and rules.yaml (an invalid file is refused and the running\n"
		     "ones stay); SIGUSR1 logs every node's state (event=node.status) and the nodes not connected\n"
		     "(event=region.status); SIGTERM stops cleanly.  Logs go to stderr as key=value lines.\n");
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "audit", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	bool check = false, audit = false;
	struct broker_config *config;
	struct xba_error err = { 0 };
	struct server *server;
	int opt, signal_fd = -1, rc;

	malloc_keep_heap();
	/* Accepted alerts log one info record each: written once per loop pass (server.c), not once per alert. */
	log_hold_info(64 * 1024);
	log_init("xba-broker", LOG_LEVEL_INFO);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c': config_path = optarg; break;
		case 'k': check = true; break;
		case 'a': audit = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("xba-broker %s\n", XBA_VERSION); return 0;
		default:
			fprintf(stderr, "xba-broker: unknown or incomplete option '%s' (xba-broker --help)\n",
			    argv[optind - 1]);
			return 2;
		}
	}
	if (config_path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	config = config_load(config_path, &err);
	if (config == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	if (check) {
		rc = server_check(config, &err);
		if (rc == 0)
			printf("configuration OK\n");
		else
			fprintf(stderr, "%s\n", err.msg);
		config_free(config);
		return rc == 0 ? 0 : 1;
	}
	if (audit) {
		rc = audit_journal(config->journal);
		config_free(config);
		return rc;
	}
	log_init("xba-broker", strcmp(config->log_level, "debug") == 0 ? LOG_LEVEL_DEBUG
			       : strcmp(config->log_level, "warn") == 0 ? LOG_LEVEL_WARN
									 : LOG_LEVEL_INFO);

	if (sigpipe_open(&signal_fd) != 0)
		fatal("event=broker.failed reason=\"cannot create the signal pipe\"");
	{
		/* Keyless connections hold a descriptor each while their handshake lasts (fdlimit.h): about 1 100 of
		 * them under a shell's 1024 kept every agent out of a broker started by hand. */
		uint64_t limit = fdlimit_raise();

		if (limit != 0 && limit < 4096)
			log_warnx("event=broker.fd_limit_low limit=%llu action=\"raise LimitNOFILE (the unit sets 65536): "
				  "each connection, keyless ones included, takes a descriptor\"", (unsigned long long)limit);
	}

	server = server_new(config, &err);
	if (server == NULL) {
		char quoted[600];

		log_warnx("event=broker.failed reason=%s", log_quote(quoted, sizeof(quoted), err.msg));
		config_free(config);
		return 1;
	}
	rc = server_run(server, signal_fd);
	server_free(server);
	config_free(config);
	sigpipe_close();
	return rc == 0 ? 0 : 1;
}
