/*
 * agent.h — the map of xba-agent, the national agent daemon.  Every cross-file prototype of the agent is here,
 * grouped by the module that owns it, in the order an alert meets them:
 *
 *   officer (xba send) --LocalFrame--> local.c (seal with the country's key) --> store.c (outbox, fsync)
 *        --> uplink.c (Publish, oldest first; PublishAck) --> broker
 *   broker --Deliver--> uplink.c (verify against our own region.yaml) --> store.c (inbox, group commit)
 *        --> uplink.c (DeliveryAck + Credit) --> local.c (push to `xba watch`) --> officer
 *   a delivery that fails verification --> store.c (quarantine) --region.yaml reloaded, or start-up-->
 *        quarantine.c (verify again) --> store.c (inbox) --> local.c (push) --> officer
 *
 * agent_main.c owns the process: arguments, agent.yaml (agent_config.c), keys, region.yaml, signals and the one
 * zmq_poll loop over the uplink, the local sockets and the signal pipe.  One thread; nothing is shared across
 * threads; the uplink never blocks the local endpoint (every send is ZMQ_DONTWAIT).
 */
#ifndef XBA_AGENT_H
#define XBA_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "directory.h"
#include "error.h"
#include "keys.h"
#include "store.h"
#include "xba.pb-c.h"
#include "xba_config.h"

#define AGENT_SOFTWARE "xba-agent " XBA_VERSION

/* agent_config.c ----------------------------------------------------------------------------------------------- */

/* An officer allowed on the LAN endpoint (agent.yaml `officers`). */
struct agent_officer {
	char *name;                                  /* shown in logs; the ZAP User-Id; owned */
	uint8_t curve_public[XBA_CURVE_KEY_LEN];     /* the officer's CURVE public key */
};

/* Where a key was written in agent.yaml, so that a later check (key files, region.yaml) can point at it. */
struct agent_config_where {
	const char *key;                             /* a row's key name (static) */
	int line, column;                            /* of its value; 0 when absent */
};

#define AGENT_CONFIG_MAX_WHERE 32

struct agent_config {
	char *path;                   /* agent.yaml as given */
	char *node_id;                /* this node's id in region.yaml */
	char *broker;                 /* tcp:// endpoint of the broker */
	char *broker_public_key;      /* path: the pinned broker CURVE public key (Z85) */
	char *signing_key;            /* path: PEM Ed25519 private key, 0600 */
	char *curve_secret_key;       /* path: Z85 CURVE secret key, 0600 */
	char *region;                 /* path: the agent's copy of region.yaml */
	char *store;                  /* path: SQLite store */
	char *local_socket;           /* path of the IPC socket (without ipc://) */
	int64_t local_socket_mode;    /* permission bits of the socket file (default 0660) */
	char *local_group;            /* unix group that owns the socket, or NULL */
	char *lan_listen;             /* tcp:// endpoint for officers' workstations, or NULL */
	char *lan_curve_secret_key;   /* path: the LAN endpoint's CURVE secret key (required with lan_listen) */
	struct agent_officer *officers; /* allowed on lan_listen; owned */
	size_t n_officers;
	int64_t credit;               /* Hello.credit: the delivery window */
	int64_t heartbeat_ms;         /* ZMTP heartbeat interval (protocol heartbeats follow Welcome.heartbeat_ms) */
	int64_t reconnect_min_ms;     /* first reconnect wait */
	int64_t reconnect_max_ms;     /* longest reconnect wait (also used after configuration errors) */
	char *log_level;              /* debug, info or warn */
	int64_t retention_days;       /* finished store rows older than this are pruned; 0 keeps everything */
	int64_t key_warning_days;     /* warn this long before the signing key can no longer sign; 0 = never */
	struct agent_config_where where[AGENT_CONFIG_MAX_WHERE]; /* positions of the keys present */
	size_t n_where;
};

/* Load and check agent.yaml; NULL with err ("agent.yaml:3:9: broker: ...") on failure. */
struct agent_config *agent_config_load(const char *path, struct xba_error *err);
void agent_config_free(struct agent_config *config);
/* The keys other than `officers` whose values differ in loaded, comma-separated into out ("" when none): what a
 * SIGHUP leaves for a restart. */
void agent_config_restart_keys(const struct agent_config *running, const struct agent_config *loaded, char *out,
    size_t size);
/* SIGHUP: running takes loaded's officers, and loaded the old ones (freed with it). */
void agent_config_take_officers(struct agent_config *running, struct agent_config *loaded);
/* The officer config lists with this CURVE public key, or NULL. */
const struct agent_officer *agent_config_officer(const struct agent_config *config,
    const uint8_t curve_public[XBA_CURVE_KEY_LEN]);
/* Fill err with code and "agent.yaml:LINE:COL: KEY: <message>" pointing at key's value (at the file when the key
 * is absent); returns code.  For checks made after loading: key files, region.yaml, the socket's directory. */
int agent_config_error(const struct agent_config *config, const char *key, struct xba_error *err, int code,
    const char *fmt, ...) XBA_PRINTF(5, 6);

/* agent_main.c ------------------------------------------------------------------------------------------------- */

struct uplink;
struct local;

/* What this node's signing key allows now (agent_key_health). */
enum key_health {
	KEY_HEALTH_OK,         /* signs, and will for longer than key_warning_days */
	KEY_HEALTH_EXPIRING,   /* signs, but its validity ends or its revocation falls within key_warning_days */
	KEY_HEALTH_UNUSABLE,   /* an alert submitted now would be refused (revoked, not yet or no longer valid) */
};

/* The daemon's state: what main loaded, and the two endpoints of the event loop. */
struct agent {
	struct agent_config *config;                 /* borrowed from main; its officers change on SIGHUP */
	struct directory *dir;                       /* owned; replaced on a successful SIGHUP reload */
	const struct dir_node *node;                 /* this node in dir */
	struct signer signer;                        /* owned: signs this node's alerts */
	struct curve_identity curve;                 /* this node's CURVE identity (uplink) */
	char broker_public_z85[XBA_Z85_KEY_TEXT_LEN + 1]; /* pinned */
	struct store *store;                         /* owned */
	void *zmq_ctx;                               /* owned */
	struct uplink *uplink;                       /* owned */
	struct local *local;                         /* owned */
	bool stopping;                               /* SIGTERM/SIGINT seen: finish this turn and stop */
	int64_t next_prune_mono_ms;                  /* when the store's retention runs next (clock_mono_ms) */
	struct store_pruned pruned;                  /* what the retention run in progress deleted so far */
	enum key_health key_health;                  /* as last logged */
	bool pushed_link_up;                         /* the link and key states the watches were last told */
	enum key_health pushed_key_health;
	int64_t key_next_warning_ms;                 /* wall clock: a warning that still holds is repeated daily */
	struct recheck *recheck;                     /* the quarantine's second look in progress (quarantine.c) */
	struct {                                     /* the store cannot be written (a full or read-only disk) */
		char message[400];                   /* the last failure ("" = the last write went through) */
		int64_t since_ms;                    /* wall clock of the first failure since the last success */
		int64_t since_mono_ms;               /* clock_mono_ms of the first, and of the last failure */
		int64_t last_mono_ms;
		bool busy;                           /* the last failure was a lock held by another program */
	} store_problem;
};

/*
 * A write to the store failed (op: what it was for) or went through.  While it fails, deliveries are not acknowledged
 * and the broker's answers not recorded: `xba status` says so, or the officers read a full disk as a flapping link
 * and delivered alerts as still waiting.  A lock held by another program (XBA_EBUSY) is shown only once it has
 * lasted STORE_BUSY_SHOWN_MS (a sqlite3 shell reading for a moment is not a problem; one left in a transaction is),
 * and a failure not repeated for STORE_PROBLEM_SHOWN_MS is no longer shown (nothing may write on a quiet node to
 * clear it).
 */
#define STORE_PROBLEM_SHOWN_MS (10 * 60 * 1000)
#define STORE_BUSY_SHOWN_MS (5 * 1000)
void agent_store_failed(struct agent *agent, const char *op, const struct xba_error *err);
void agent_store_ok(struct agent *agent);

/*
 * The signing key's state now, for the log, `xba status` and `xba watch`: its validity at the signing time
 * (uplink_signing_now), and its revocation at the later of that and this machine's clock (agent_revocation_now).
 * *until_ms is the end of its signing time (XBA_TIME_NEVER when it has none); err says why when UNUSABLE.
 */
enum key_health agent_key_health(const struct agent *agent, int64_t *until_ms, struct xba_error *err);
/*
 * The time a revocation is judged at: the later of this machine's clock and the signing time.  A broker whose clock
 * is behind (and that has too few nodes to doubt it) must not make a key revoked by this machine's clock sign again:
 * every recipient judges a revocation by its own clock, and would refuse what was signed.
 */
int64_t agent_revocation_now(const struct agent *agent);

/* The field path an error message starts with ("info[1].headline: 171 bytes, ..." -> "info[1].headline"), or ""
 * when it starts with none; for the field of SubmitReply and of Error frames. */
void agent_error_field(const char *message, char *field, size_t size);

/* local.c ------------------------------------------------------------------------------------------------------ */

#define LOCAL_PEER_ID_MAX 256

/* One CLI connection, as a ROUTER knows it. */
struct local_peer {
	int socket;                                  /* LOCAL_IPC or LOCAL_LAN */
	uint8_t id[LOCAL_PEER_ID_MAX];               /* ROUTER routing id */
	size_t id_len;
	char who[72];                                /* "ipc" or "lan:" and the LAN officer's name */
	char who_log[4 * 72 + 2];                    /* who as a log value: "ipc", or log_quote()d, since an
	                                              * officer's name may hold spaces, '=' or quotes */
	uint8_t officer_key[XBA_CURVE_KEY_LEN];      /* LAN: the officer's CURVE key, as admitted */
	bool officer_removed;                        /* LAN: that key is no longer in agent.yaml's officers */
};

enum { LOCAL_IPC = 0, LOCAL_LAN = 1 };

/* Bind the IPC socket (and the LAN socket with its ZAP handler); NULL with err. */
struct local *local_new(struct agent *agent, struct xba_error *err);
/* The local endpoint's prerequisites, for --check: the socket's directory is safe, local_group exists, the LAN
 * key loads. */
int local_check(const struct agent_config *config, struct xba_error *err);
/* Close the sockets and remove the socket file. */
void local_free(struct local *local);
/* After SIGHUP changed agent.yaml's officers: every watch of a LAN key no longer listed is told so and ended
 * (its later requests are refused one by one, as they come). */
void local_officers_changed(struct agent *agent);
/* The sockets to poll for input; returns how many items were written (at most max). */
size_t local_poll_items(struct local *local, zmq_pollitem_t *items, size_t max);
/* Answer every pending request and ZAP query.  Never inside a store transaction. */
void local_process(struct agent *agent);

/* Pushes to subscribers and submitters (called by uplink.c after the store transaction that made them true). */
void local_push_alert(struct agent *agent, const struct store_row *row, const Xba__V1__Alert *alert);
void local_push_publish_event(struct agent *agent, const char *alert_id, Xba__V1__PublishState state,
    Xba__V1__ErrorCode result, uint64_t seq, uint32_t recipients, const char *message, const char *field);
void local_push_receipt(struct agent *agent, const Xba__V1__Receipt *receipt);
/* The agent's status (AgentStatusReply, ref 0) to every `xba watch`: when the link or the key changed. */
void local_push_status(struct agent *agent);
/* Send a reply (frame->ref already set) to one peer; a peer that is gone is forgotten. */
void local_send(struct agent *agent, const struct local_peer *peer, const Xba__V1__LocalFrame *frame);
void local_send_error(struct agent *agent, const struct local_peer *peer, uint64_t ref, Xba__V1__ErrorCode code,
    const char *field, const char *fmt, ...) XBA_PRINTF(6, 7);

/* quarantine.c ------------------------------------------------------------------------------------------------- */

/* Start verifying every delivery still held in the quarantine again against agent->dir, at this agent's clock now
 * (quarantine_tick does it, a batch at a time); release those that pass to the inbox (committed, logged
 * event=alert.released, pushed to `xba watch`).  trigger ("start", "reload") is for the logs.  A store failure is
 * logged
 * (event=quarantine.recheck_failed): the unreleased rest stays held for the next reload or start, and there is
 * nothing more a caller could do about it. */
void quarantine_recheck(struct agent *agent, const char *trigger);
/* The recheck, one batch of RECHECK_BATCH entries (one commit) per call, from the loop between turns; true while
 * more remain (the loop then does not sleep).  A recheck started again (another reload) walks from the start. */
bool quarantine_tick(struct agent *agent);
/* Drop a recheck in progress (at exit; what it committed stays released). */
void quarantine_free(struct agent *agent);

/* uplink.c ----------------------------------------------------------------------------------------------------- */

/*
 * The broker session (docs/protocol.md §2), one DEALER socket at a time:
 *
 *   WAITING    --backoff over [uplink_tick -> session_open]---------------------------------> CONNECTING
 *   CONNECTING --handshake done, Hello sent [uplink_tick -> send_hello]-----------------------> HELLO_SENT
 *   HELLO_SENT --Welcome [handle_welcome] (resend the outbox oldest first)------------------> UP
 *   UP         --PublishAck / Deliver / Receipt / TrackReply / Heartbeat [handle_frame]-----> UP
 *   CONNECTING | HELLO_SENT --no Welcome within 10 s, Error, handshake failed [session_drop]--> WAITING
 *   UP         --silent 3 x heartbeat, disconnect, NOT_READY, send or store failure [session_drop]--> WAITING
 *
 * session_drop closes the socket; the next session is a fresh socket after reconnect_min_ms doubling to
 * reconnect_max_ms (x[0.5, 1.5] jitter; reset after a session stayed up 60 s; the maximum at once after a
 * configuration error: handshake refused, WRONG_SIGNER, UNSUPPORTED_VERSION).  Within UP, publishing pauses on a
 * transient refusal until the publishes in flight are answered and a backoff passed, then resumes from the oldest
 * unacknowledged outbox entry, so that this node's alerts are journaled in the order they were submitted.
 */
struct uplink *uplink_new(struct agent *agent, struct xba_error *err);
void uplink_free(struct uplink *uplink);
/* The sockets to poll (the DEALER and its monitor, when a session exists); returns how many were written. */
size_t uplink_poll_items(struct uplink *uplink, zmq_pollitem_t *items, size_t max);
/* Read every pending frame and monitor event, group-commit what they changed, then acknowledge and push. */
void uplink_process(struct agent *agent);
/* Timers: open a session, Hello, heartbeats, dead broker, resume publishing.  Returns ms until the next timer. */
long uplink_tick(struct agent *agent);
/* The outbox has a new entry: send it now if the session allows. */
void uplink_outbox_changed(struct agent *agent);
/* The quarantine released deliveries: tell the broker (DeliveryAck.released) as soon as the session allows. */
void uplink_releases_pending(struct agent *agent);
/* Forward a TrackRequest; the TrackReply goes to peer with ref.  XBA_EPROTO when the link is down. */
int uplink_track(struct agent *agent, const struct local_peer *peer, uint64_t ref, const char *alert_id,
    struct xba_error *err);
/* Forward a StatusRequest (`xba status --region`); the StatusReply goes to peer with ref.  XBA_EPROTO when the link
 * is down. */
int uplink_region_status(struct agent *agent, const struct local_peer *peer, uint64_t ref, struct xba_error *err);
/* A local peer went away: forget its pending track and region status requests. */
void uplink_forget_peer(struct uplink *uplink, const struct local_peer *peer);
/* Link fields of AgentStatusReply: link_up, link_since_ms, broker_id, rules_version, through_seq (strings are
 * borrowed from the uplink). */
void uplink_status(const struct uplink *uplink, Xba__V1__AgentStatusReply *out);
/* The region's wall clock now (the broker's, or its nodes' median while the broker doubts its own), as estimated
 * from what the broker last said (Welcome, Heartbeat) and this machine's monotonic clock since; false when it
 * never said (no session yet, or a broker that does not send it). */
bool uplink_broker_now(const struct uplink *uplink, int64_t *broker_now_ms);
/*
 * The time an alert or acknowledgement sealed here now says it was written: this machine's clock, unless the
 * broker has said the region's and this machine's is more than 30 s from it (from both the broker's and the nodes'
 * median, while the broker doubts its own); then the region's.  A country whose
 * server clock is wrong (no NTP, a dead CMOS battery) must still be able to send, and its neighbours must not read
 * a fresh emergency as hours old, or have its expiry refused as passed (protocol §2.7).
 */
int64_t uplink_signing_now(const struct uplink *uplink);
/* The two clocks the broker judges by while it doubts its own (protocol §2.7): an expiry has passed only if it is
 * before the earliest, a sent time is in the future only if it is after the latest.  Both the broker's clock when
 * it does not doubt it; false as uplink_broker_now. */
bool uplink_broker_window(const struct uplink *uplink, int64_t *earliest_ms, int64_t *latest_ms);
/* Close the session (SIGTERM): nothing is in flight that the outbox and the cursor do not already cover. */
void uplink_close(struct agent *agent);

/* A region.yaml reload was refused because it gives this node another CURVE key (curve_key, Z85) than the one
 * this agent runs with: a planned CURVE rotation.  The broker will refuse this agent's key; the link's problem
 * then says to install the new secret key and restart.  NULL forgets it (a reload that loaded). */
void uplink_note_new_curve_key(struct agent *agent, const char *curve_key);

#endif
