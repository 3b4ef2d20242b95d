/*
 * agent_main.c — xba-agent's front door: arguments, agent.yaml, the country's keys and its copy of region.yaml,
 * signals, and the one event loop that drives the broker session (uplink.c) and the CLI endpoint (local.c).
 *
 *   xba-agent -c agent.yaml [--check]
 *
 * Before anything is bound, the agent proves it is who agent.yaml says: node_id is in region.yaml, the signing
 * key is one of that node's keys, and the CURVE key is that node's curve_key.  A mismatch would otherwise surface
 * hours later as refused alerts, so it is refused at start (and --check), naming the key in agent.yaml.
 *
 * Signals reach the loop as bytes on lib/sigpipe.c's self-pipe ('T' stop, 'H' reload).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "clock.h"
#include "encoding.h"
#include "fdlimit.h"
#include "log.h"
#include "sigpipe.h"

#if XBA_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#define NOTIFY(text) sd_notify(0, text)
#else
#define NOTIFY(text) ((void)0)
#endif

#define LOOP_MAX_WAIT_MS 1000 /* the loop wakes at least this often, whatever the timers say */
#define PRUNE_INTERVAL_MS (3600 * 1000)
#define PRUNE_WAIT_CLOCK_MS 1000 /* the broker's time not known yet (no Welcome since the start): look again */
/* Rows per table and per loop pass: a first run over years of rows goes on for a while, but never holds the loop
 * (deliveries, officers) for longer than one small transaction. */
#define PRUNE_BATCH_ROWS 2000

void
agent_error_field(const char *message, char *field, size_t size)
{
	size_t n = 0;

	field[0] = '\0';
	if (message == NULL)
		return;
	/* Field paths are [a-z0-9_.[\]]: "info[1].headline", "envelope.signature". */
	while (message[n] != '\0' && message[n] != ':') {
		char c = message[n];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '[' || c == ']'))
			return;
		n++;
	}
	if (message[n] != ':' || n == 0 || n >= size)
		return;
	memcpy(field, message, n);
	field[n] = '\0';
}

void
agent_store_failed(struct agent *agent, const char *op, const struct xba_error *err)
{
	if (agent->store_problem.message[0] == '\0' ||
	    clock_mono_ms() - agent->store_problem.last_mono_ms > STORE_PROBLEM_SHOWN_MS) {
		agent->store_problem.since_ms = clock_now_ms();
		agent->store_problem.since_mono_ms = clock_mono_ms();
	}
	agent->store_problem.last_mono_ms = clock_mono_ms();
	agent->store_problem.busy = err != NULL && err->code == XBA_EBUSY;
	snprintf(agent->store_problem.message, sizeof(agent->store_problem.message), "%s: %.360s", op,
	    err != NULL && err->msg[0] != '\0' ? err->msg : "write failed");
}

void
agent_store_ok(struct agent *agent)
{
	agent->store_problem.message[0] = '\0';
	agent->store_problem.since_ms = 0;
}

/* The checks described at the top of this file; *node_out is this node in dir. */
static int
check_identity(const struct agent_config *c, const struct directory *dir, const struct signer *signer,
    const struct curve_identity *curve, const struct dir_node **node_out, struct xba_error *err)
{
	const struct dir_node *node = directory_node(dir, c->node_id);
	const struct dir_key *key = directory_key(dir, signer->key_id);
	uint8_t curve_public[XBA_CURVE_KEY_LEN];
	char fp[64];

	if (node == NULL)
		return agent_config_error(c, "node_id", err, XBA_ECONFIG, "%s is not a node of region %s (%s)", c->node_id,
		    dir->region, dir->path);
	/* The secretariat's admin node publishes nothing and receives nothing: its agent is there for `xba status
	 * --region`.  Its entry lists no signing key; the key file keygen wrote for it is loaded and never used. */
	if (node->role == NODE_ROLE_ADMIN)
		key = NULL;
	else if (node->n_keys == 0)
		return agent_config_error(c, "node_id", err, XBA_ECONFIG, "%s has no signing key in %s (an %s node "
		    "cannot publish alerts)", c->node_id, dir->path, directory_role_name(node->role));
	if (node->role != NODE_ROLE_ADMIN && (key == NULL || &dir->nodes[key->node_index] != node))
		return agent_config_error(c, "signing_key", err, XBA_ECONFIG, "key %s is not one of %s's signing keys in "
		    "%s%s%s: alerts signed with it would be refused (send its public key to the secretariat, or "
		    "point signing_key at the key region.yaml lists)", keys_fingerprint(signer->key_id, fp, sizeof(fp)),
		    c->node_id, dir->path, key != NULL ? "; it belongs to " : "",
		    key != NULL ? dir->nodes[key->node_index].id : "");
	if (encoding_z85_key(curve->public_z85, curve_public) != 0 ||
	    memcmp(curve_public, node->curve_public, XBA_CURVE_KEY_LEN) != 0)
		return agent_config_error(c, "curve_secret_key", err, XBA_ECONFIG, "its public key %s is not %s's "
		    "curve_key in %s (%s): the broker would refuse the connection", curve->public_z85, c->node_id,
		    dir->path, node->curve_public_z85);
	*node_out = node;
	return 0;
}

enum key_health
agent_key_health(const struct agent *agent, int64_t *until_ms, struct xba_error *err)
{
	const struct dir_key *key = directory_key(agent->dir, agent->signer.key_id);
	int64_t warn_ms = agent->config->key_warning_days * 86400000LL, now_ms = uplink_signing_now(agent->uplink);

	*until_ms = XBA_TIME_NEVER;
	if (agent->node->role == NODE_ROLE_ADMIN)
		return KEY_HEALTH_OK; /* it signs nothing (check_identity) */
	if (key == NULL) {  /* check_identity keeps this from happening; said rather than assumed */
		xba_error_set(err, XBA_EKEYUNKNOWN, "the signing key is not in region.yaml");
		return KEY_HEALTH_UNUSABLE;
	}
	*until_ms = directory_key_signs_until(key);
	if (directory_key_usable(agent->dir, key, now_ms, agent_revocation_now(agent), err) != 0)
		return KEY_HEALTH_UNUSABLE;
	if (warn_ms > 0 && *until_ms != XBA_TIME_NEVER && *until_ms - now_ms <= warn_ms)
		return KEY_HEALTH_EXPIRING;
	return KEY_HEALTH_OK;
}

int64_t
agent_revocation_now(const struct agent *agent)
{
	int64_t local = clock_now_ms(), signing = uplink_signing_now(agent->uplink);

	return local > signing ? local : signing;
}

/*
 * Warn (not refuse: the agent still receives) while the signing key cannot sign, or soon will not: an alert
 * refused at the moment it is needed is the failure this prevents.  Logged when the state changes, again daily
 * while it holds, and after every reload (force), so the operator who installed a file sees where it leaves them.
 */
static void
key_tick(struct agent *agent, bool force)
{
	struct xba_error err = { 0 };
	int64_t now = clock_now_ms(), until;
	enum key_health health = agent_key_health(agent, &until, &err);
	char quoted[600], fp[64], t[40];

	if (health == agent->key_health && !(health != KEY_HEALTH_OK && (force || now >= agent->key_next_warning_ms)))
		return;
	keys_fingerprint(agent->signer.key_id, fp, sizeof(fp));
	switch (health) {
	case KEY_HEALTH_UNUSABLE:
		log_warnx("event=key.unusable key=%s reason=%s action=\"alerts submitted now would be refused; install a "
			  "current signing key (docs/operations.md section 5)\"", fp,
		    log_quote(quoted, sizeof(quoted), err.msg));
		break;
	case KEY_HEALTH_EXPIRING:
		log_warnx("event=key.expiring key=%s until=%s days_left=%lld action=\"make a new key (xba keygen), send "
			  "its public key to the secretariat and switch signing_key once it is in region.yaml "
			  "(docs/operations.md section 5)\"", fp, clock_format_rfc3339(until, t, sizeof(t)),
		    (long long)((until - now) / 86400000LL));
		break;
	case KEY_HEALTH_OK:
		log_info("event=key.usable key=%s until=%s", fp,
		    until == XBA_TIME_NEVER ? "never" : clock_format_rfc3339(until, t, sizeof(t)));
		break;
	}
	agent->key_health = health;
	agent->key_next_warning_ms = now + 86400000LL;
}

/* Keys, the broker's pinned key and region.yaml, with the identity checks.  Fills agent; err names the key in
 * agent.yaml (or region.yaml's own file:line:column). */
static int
load_identity(const struct agent_config *c, struct agent *agent, struct xba_error *err)
{
	int rc;

	if ((rc = keys_load_signer(c->signing_key, &agent->signer, err)) != 0)
		return agent_config_error(c, "signing_key", err, rc, "%s", err->msg);
	if ((rc = keys_load_curve(c->curve_secret_key, &agent->curve, err)) != 0)
		return agent_config_error(c, "curve_secret_key", err, rc, "%s", err->msg);
	if ((rc = keys_load_curve_public(c->broker_public_key, agent->broker_public_z85, err)) != 0)
		return agent_config_error(c, "broker_public_key", err, rc, "%s", err->msg);
	if ((agent->dir = directory_load(c->region, err)) == NULL)
		return err->code != 0 ? err->code : XBA_ECONFIG;
	return check_identity(c, agent->dir, &agent->signer, &agent->curve, &agent->node, err);
}

/* The store's directory must exist: SQLite would fail with a vaguer message on the first open. */
static int
check_store_dir(const struct agent_config *c, struct xba_error *err)
{
	const char *slash = strrchr(c->store, '/');
	char dir[4096];
	struct stat st;

	if (slash == NULL)
		return 0;
	snprintf(dir, sizeof(dir), "%.*s", slash == c->store ? 1 : (int)(slash - c->store), c->store);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return agent_config_error(c, "store", err, XBA_EIO, "directory %s: %s", dir,
		    stat(dir, &st) != 0 ? strerror(errno) : "not a directory");
	return 0;
}

/* SIGHUP: a new region.yaml replaces the running one only if it loads and this agent is still who it says. */
static void
reload_region(struct agent *agent)
{
	struct xba_error err = { 0 };
	const struct dir_node *node = NULL;
	struct directory *dir;
	char quoted[600], old_version[65], new_version[65];

	NOTIFY("RELOADING=1");
	encoding_hex(agent->dir->digest, 32, old_version);
	dir = directory_load(agent->config->region, &err);
	if (dir != NULL && check_identity(agent->config, dir, &agent->signer, &agent->curve, &node, &err) != 0) {
		const struct dir_node *listed = directory_node(dir, agent->config->node_id);
		bool rotated = listed != NULL && strcmp(listed->curve_public_z85, agent->curve.public_z85) != 0;

		/* The file gives this node a new CURVE key: the broker's copy will too, and refuse this one. */
		uplink_note_new_curve_key(agent, rotated ? listed->curve_public_z85 : NULL);
		if (rotated)
			log_warnx("event=region.reload_failed error=%s keeping=%.12s action=\"region.yaml gives this node a "
				  "new curve_key (%s): set curve_secret_key in agent.yaml to the matching secret key and "
				  "restart the agent\"", log_quote(quoted, sizeof(quoted), err.msg), old_version,
			    listed->curve_public_z85);
		directory_free(dir);
		dir = NULL;
		if (rotated) {
			NOTIFY("READY=1");
			return;
		}
	}
	if (dir == NULL) {
		log_warnx("event=region.reload_failed error=%s keeping=%.12s", log_quote(quoted, sizeof(quoted), err.msg),
		    old_version);
		NOTIFY("READY=1");
		return;
	}
	directory_free(agent->dir);
	agent->dir = dir;
	agent->node = node;
	uplink_note_new_curve_key(agent, NULL);
	encoding_hex(dir->digest, 32, new_version);
	log_info("event=region.reloaded version=%.12s previous=%.12s nodes=%zu keys=%zu", new_version, old_version,
	    dir->n_nodes, dir->n_keys);
	key_tick(agent, true);
	/* A key this file adds may be the one a quarantined delivery was waiting for; a failure is logged there and
	 * leaves the rest held for the next reload. */
	quarantine_recheck(agent, "reload");
	NOTIFY("READY=1");
}

/*
 * SIGHUP, after region.yaml: agent.yaml's officers take effect at once (an officer who left, or whose workstation
 * was lost, must not keep the LAN endpoint until the next restart); every other key waits for a restart, and the
 * log says which changed.  A file that does not load changes nothing.
 */
static void
reload_officers(struct agent *agent)
{
	struct xba_error err = { 0 };
	struct agent_config *loaded;
	char quoted[600], restart_keys[256];
	size_t kept = 0;

	loaded = agent_config_load(agent->config->path, &err);
	if (loaded == NULL) {
		log_warnx("event=config.reload_failed error=%s keeping_officers=%zu note=\"agent.yaml did not load: "
			  "nothing of it changed; fix it and send SIGHUP again\"",
		    log_quote(quoted, sizeof(quoted), err.msg), agent->config->n_officers);
		return;
	}
	agent_config_restart_keys(agent->config, loaded, restart_keys, sizeof(restart_keys));
	for (size_t i = 0; i < loaded->n_officers; i++)
		kept += agent_config_officer(agent->config, loaded->officers[i].curve_public) != NULL;
	log_info("event=officers.reloaded officers=%zu added=%zu removed=%zu%s", loaded->n_officers,
	    loaded->n_officers - kept, agent->config->n_officers - kept, loaded->n_officers == 0 &&
	    loaded->lan_listen != NULL ? " note=\"no officer listed: the LAN endpoint admits nobody now\"" : "");
	agent_config_take_officers(agent->config, loaded);
	agent_config_free(loaded);
	local_officers_changed(agent);
	if (restart_keys[0] != '\0')
		log_warnx("event=config.restart_needed keys=%s note=\"changed in agent.yaml; only officers apply on "
			  "SIGHUP, these at the next restart\"", restart_keys);
}

/* The store's retention, from the loop between turns: one batch per pass while there is more, then hourly. */
static void
prune_tick(struct agent *agent)
{
	struct xba_error err = { 0 };
	struct store_pruned batch;
	int64_t now = clock_mono_ms();
	struct store_pruned *total = &agent->pruned;
	int64_t wall, broker;

	if (agent->config->retention_days == 0 || now < agent->next_prune_mono_ms)
		return;
	/*
	 * Deleting is the one thing a wrong clock makes irreversible: a machine whose clock is a year ahead (no NTP, a
	 * dead CMOS battery) would take what arrived minutes ago for a year old, quarantined alerts still waiting for
	 * a key included.  So, as the broker does (protocol §2.7), nothing is pruned before the broker's time is
	 * known, and then by the earlier of the two clocks.
	 */
	if (!uplink_broker_now(agent->uplink, &broker)) {
		agent->next_prune_mono_ms = now + PRUNE_WAIT_CLOCK_MS;
		return;
	}
	wall = clock_now_ms();
	if (broker < wall)
		wall = broker;
	if (store_prune(agent->store, wall - agent->config->retention_days * 86400000LL,
		PRUNE_BATCH_ROWS, &batch, &err) != 0) {
		char quoted[600];

		log_warnx("event=store.prune_failed error=%s retry_in_s=%d", log_quote(quoted, sizeof(quoted), err.msg),
		    PRUNE_INTERVAL_MS / 1000);
		memset(total, 0, sizeof(*total));
		agent->next_prune_mono_ms = now + PRUNE_INTERVAL_MS;
		return;
	}
	total->inbox += batch.inbox;
	total->outgoing += batch.outgoing;
	total->receipts += batch.receipts;
	total->quarantine += batch.quarantine;
	if (batch.more) {
		agent->next_prune_mono_ms = now; /* the next pass goes on */
		return;
	}
	if (total->inbox + total->outgoing + total->receipts + total->quarantine > 0)
		log_info("event=store.pruned inbox=%llu outgoing=%llu receipts=%llu quarantine=%llu retention_days=%lld",
		    (unsigned long long)total->inbox, (unsigned long long)total->outgoing,
		    (unsigned long long)total->receipts, (unsigned long long)total->quarantine,
		    (long long)agent->config->retention_days);
	memset(total, 0, sizeof(*total));
	agent->next_prune_mono_ms = now + PRUNE_INTERVAL_MS;
}

/* Tell the officers' watches when the link to the broker or the signing key changes state: a watch that shows
 * nothing because the link is down must not look like a quiet day. */
static void
status_tick(struct agent *agent)
{
	Xba__V1__AgentStatusReply now = XBA__V1__AGENT_STATUS_REPLY__INIT;

	uplink_status(agent->uplink, &now);
	if (now.link_up == agent->pushed_link_up && agent->key_health == agent->pushed_key_health)
		return;
	agent->pushed_link_up = now.link_up;
	agent->pushed_key_health = agent->key_health;
	local_push_status(agent);
}

static void
agent_free(struct agent *agent)
{
	quarantine_free(agent);
	local_free(agent->local);
	agent->local = NULL;
	uplink_free(agent->uplink);
	agent->uplink = NULL;
	if (agent->zmq_ctx != NULL)
		zmq_ctx_term(agent->zmq_ctx);
	agent->zmq_ctx = NULL;
	store_close(agent->store);
	agent->store = NULL;
	directory_free(agent->dir);
	agent->dir = NULL;
	keys_signer_clear(&agent->signer);
	memset(&agent->curve, 0, sizeof(agent->curve));
}

/* Every officer's connection holds a file descriptor (fdlimit.h); say so when even the hard limit is low. */
static void
raise_fd_limit(void)
{
	uint64_t limit = fdlimit_raise();

	if (limit != 0 && limit < 4096)
		log_warnx("event=agent.fd_limit_low limit=%llu action=\"raise LimitNOFILE (the unit sets 65536): each "
			  "officer's connection takes a descriptor\"", (unsigned long long)limit);
}

static int
agent_start(struct agent *agent, struct xba_error *err)
{
	int rc;

	raise_fd_limit();
	if ((rc = load_identity(agent->config, agent, err)) != 0 || (rc = check_store_dir(agent->config, err)) != 0)
		return rc;
	if ((agent->store = store_open(agent->config->store, err)) == NULL)
		return agent_config_error(agent->config, "store", err, err->code ? err->code : XBA_EIO, "%s", err->msg);
	if (store_upgraded_from(agent->store) > 0) {
		char quoted[600];

		log_warnx("event=store.upgraded path=%s from=%d action=\"an older xba-agent no longer opens this store: to "
			  "go back, see docs/operations.md (Going back)\"", log_quote(quoted, sizeof(quoted),
			      agent->config->store), store_upgraded_from(agent->store));
	}
	if ((agent->zmq_ctx = zmq_ctx_new()) == NULL)
		return xba_error_set(err, XBA_EIO, "cannot create a ZeroMQ context: %s", zmq_strerror(zmq_errno()));
	if ((agent->uplink = uplink_new(agent, err)) == NULL || (agent->local = local_new(agent, err)) == NULL)
		return err->code != 0 ? err->code : XBA_EIO;
	key_tick(agent, true);
	/* region.yaml may have changed while the agent was stopped.  A store that cannot be written now is logged;
	 * the agent still starts, since deliveries and submissions report their own store failures. */
	quarantine_recheck(agent, "start");
	return 0;
}

/* The event loop: timers, then one zmq_poll over the signal pipe, the uplink and the local sockets, then the
 * broker's frames (one group commit) and the CLI's requests.  Nothing in it blocks: every send is DONTWAIT. */
static int
agent_run(struct agent *agent, int signal_fd)
{
	struct store_stats stats = { 0 };
	char fp[64], region_version[65], broker[300], local_socket[300], lan[300];

	store_stats(agent->store, &stats, NULL);
	encoding_hex(agent->dir->digest, 32, region_version);
	/* Endpoints and paths are whatever agent.yaml says, spaces included. */
	log_info("event=agent.ready node=%s broker=%s local_socket=%s lan=%s key=%s outbox=%llu inbox=%llu "
		 "region=%s region_version=%.12s",
	    agent->config->node_id, log_quote(broker, sizeof(broker), agent->config->broker),
	    log_quote(local_socket, sizeof(local_socket), agent->config->local_socket),
	    agent->config->lan_listen != NULL ? log_quote(lan, sizeof(lan), agent->config->lan_listen) : "-",
	    keys_fingerprint(agent->signer.key_id, fp, sizeof(fp)), (unsigned long long)stats.outbox_depth,
	    (unsigned long long)stats.inbox_count, agent->dir->region, region_version);
	NOTIFY("READY=1");
	while (!agent->stopping) {
		zmq_pollitem_t items[8];
		size_t n = 0;
		long timeout = uplink_tick(agent);

		if (timeout > LOOP_MAX_WAIT_MS || timeout < 0)
			timeout = LOOP_MAX_WAIT_MS;
		if (agent->config->retention_days > 0 && agent->next_prune_mono_ms <= clock_mono_ms())
			timeout = 0; /* retention is due, or a batch left more */
		if (agent->recheck != NULL)
			timeout = 0; /* the quarantine's second look goes on, a batch a turn */
		items[n++] = (zmq_pollitem_t){ NULL, signal_fd, ZMQ_POLLIN, 0 };
		n += uplink_poll_items(agent->uplink, items + n, 8 - n);
		n += local_poll_items(agent->local, items + n, 8 - n);
		if (zmq_poll(items, (int)n, timeout) < 0 && zmq_errno() != EINTR) {
			char quoted[300];

			log_warnx("event=agent.poll_failed error=%s",
			    log_quote(quoted, sizeof(quoted), zmq_strerror(zmq_errno())));
			break;
		}
		if (items[0].revents & ZMQ_POLLIN) {
			char c;

			while (read(signal_fd, &c, 1) == 1) {
				if (c == 'H') {
					reload_region(agent);
					reload_officers(agent);
				} else if (c == 'T') {
					agent->stopping = true;
				} /* 'U' (SIGUSR1): the broker's status report; `xba status` is the agent's */
			}
		}
		uplink_process(agent);
		local_process(agent);
		prune_tick(agent);
		quarantine_tick(agent);
		key_tick(agent, false);
		status_tick(agent);
	}
	NOTIFY("STOPPING=1");
	uplink_close(agent);
	store_stats(agent->store, &stats, NULL);
	log_info("event=agent.stopped outbox=%llu inbox=%llu", (unsigned long long)stats.outbox_depth,
	    (unsigned long long)stats.inbox_count);
	return 0;
}

/* --check: everything the start-up checks, without binding or writing anything. */
static int
check_only(struct agent_config *config, struct xba_error *err)
{
	struct agent agent;
	int rc;

	memset(&agent, 0, sizeof(agent));
	agent.config = config;
	rc = load_identity(config, &agent, err);
	if (rc == 0)
		rc = check_store_dir(config, err);
	if (rc == 0 && (rc = store_check_version(config->store, err)) != 0)
		rc = agent_config_error(config, "store", err, err->code, "%s", err->msg);
	if (rc == 0)
		rc = local_check(config, err);
	agent_free(&agent);
	return rc;
}

static void
usage(FILE *out)
{
	fprintf(out, "usage: xba-agent -c agent.yaml [--check]\n"
		     "\n"
		     "A country's national agent: signs and queues its officers' alerts for the broker, and verifies,\n"
		     "stores and shows the alerts the broker delivers to it.  See docs/agent.md.\n"
		     "\n"
		     "  -c, --config FILE  agent.yaml (keys, region.yaml and the store are named in it)\n"
		     "      --check        validate agent.yaml, the keys, region.yaml and this node's identity, then exit\n"
		     "  -h, --help         this text\n"
		     "      --version      the version\n"
		     "\n"
		     "Signals: SIGHUP reloads region.yaml (a file that does not load, or no longer lists this node's\n"
		     "keys, is refused and the running one stays) and agent.yaml's officers (a removed officer's key\n"
		     "is refused at once; other agent.yaml keys need a restart); SIGTERM stops cleanly.  Logs go to\n"
		     "stderr as key=value lines.\n");
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	bool check = false;
	struct agent_config *config;
	struct xba_error err = { 0 };
	struct agent agent;
	int opt, signal_fd = -1, rc;

	log_init("xba-agent", LOG_LEVEL_INFO);
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c': config_path = optarg; break;
		case 'k': check = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("xba-agent %s\n", XBA_VERSION); return 0;
		default:
			fprintf(stderr, "xba-agent: unknown or incomplete option '%s' (xba-agent --help)\n", argv[optind - 1]);
			return 2;
		}
	}
	if (config_path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	config = agent_config_load(config_path, &err);
	if (config == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	if (check) {
		rc = check_only(config, &err);
		if (rc == 0)
			printf("configuration OK%s\n", config->lan_listen != NULL && config->n_officers == 0
			    ? " (note: lan_listen with no officer listed admits nobody; an xba-agent before 2026-11-27 "
			      "refuses to start on this file)" : "");
		else
			fprintf(stderr, "%s\n", err.msg);
		agent_config_free(config);
		return rc == 0 ? 0 : 1;
	}
	log_init("xba-agent", strcmp(config->log_level, "debug") == 0 ? LOG_LEVEL_DEBUG
			      : strcmp(config->log_level, "warn") == 0 ? LOG_LEVEL_WARN
									: LOG_LEVEL_INFO);

	if (sigpipe_open(&signal_fd) != 0)
		fatal("event=agent.failed reason=\"cannot create the signal pipe\"");

	memset(&agent, 0, sizeof(agent));
	agent.config = config;
	if (agent_start(&agent, &err) != 0) {
		char quoted[600];

		log_warnx("event=agent.failed reason=%s", log_quote(quoted, sizeof(quoted), err.msg));
		agent_free(&agent);
		agent_config_free(config);
		return 1;
	}
	rc = agent_run(&agent, signal_fd);
	agent_free(&agent);
	agent_config_free(config);
	sigpipe_close();
	return rc == 0 ? 0 : 1;
}
