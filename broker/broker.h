/*
 * broker.h — the map of xba-broker.  Every cross-file prototype of the broker is here, grouped by the module
 * that owns it, in the order an alert meets them:
 *
 *   node --CURVE--> zap.c (who is this?) --> server.c (frame dispatch per session)
 *        --> publish.c (decode, verify, check rights, route) --> journal.c (group commit) --> ack
 *        --> deliver.c (per-node queue, credit, emergencies first) --> node
 *
 * One thread runs the event loop in server.c and owns every structure here.  Signature verification alone runs on
 * more threads (verifypool.c), fork-join per chunk of frames: the workers see only their jobs and the directory.
 */
#ifndef XBA_BROKER_H
#define XBA_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "directory.h"
#include "envelope.h"
#include "error.h"
#include "journal.h"
#include "keys.h"
#include "linkwindow.h"
#include "log.h"
#include "rules.h"
#include "xba.pb-c.h"

/* config.c ----------------------------------------------------------------------------------------------------- */

struct broker_config {
	char *path;               /* broker.yaml as given */
	char *broker_id;          /* Welcome.broker_id */
	char *listen;             /* ZeroMQ endpoint the ROUTER binds */
	char *curve_secret_key;   /* path, resolved against the config's directory */
	char *region;             /* region.yaml path, resolved */
	char *rules;              /* rules.yaml path, resolved */
	char *journal;            /* journal SQLite path, resolved */
	int64_t max_frame_bytes;  /* larger frames get FRAME_TOO_LARGE; 4x this drops the connection (ZMQ_MAXMSGSIZE) */
	int64_t heartbeat_ms;     /* idle interval for heartbeats; a peer silent 3x this long is dead */
	int64_t clock_skew_ms;    /* how far in the future an alert's sent time may be */
	int64_t rate_per_second;  /* sustained publishes per node per second */
	int64_t rate_burst;       /* publishes a node may send at once */
	int64_t max_credit;       /* cap on a node's delivery window */
	int64_t retention_days;   /* prune finished alerts older than this; 0 = keep forever */
	int64_t group_commit_max; /* publishes per journal transaction at most */
	int64_t pass_max_ms;      /* event-loop pass: read and handle for this long at most, then commit and deliver */
	int64_t verify_threads;   /* verification threads besides the loop's; -1 = one fewer than the online cores */
	int64_t stats_interval_s; /* seconds between broker.stats records; 0 = none */
	int64_t key_warning_days; /* warn this long before a node has no signing key left; 0 = never */
	char *log_level;          /* debug, info or warn */
};

/* Load and check broker.yaml; NULL with err ("broker.yaml:3:9: listen: ...") on failure. */
struct broker_config *config_load(const char *path, struct xba_error *err);
void config_free(struct broker_config *config);

/* zap.c -------------------------------------------------------------------------------------------------------- */

struct zap;
/* Bind the ZAP handler (inproc://zeromq.zap.01) in ctx; must happen before the CURVE server socket binds. */
struct zap *zap_new(void *zmq_ctx, struct xba_error *err);
void zap_free(struct zap *zap);
/* The REP socket, for the event loop's poll set. */
void *zap_socket(struct zap *zap);
/* Answer every pending ZAP request from dir: 200 with User-Id = node id for a listed CURVE key, 400 otherwise. */
void zap_handle(struct zap *zap, const struct directory *dir);

/* verifypool.c ------------------------------------------------------------------------------------------------- */

/* One envelope to open (lookups, signature, alert decoding) off the event loop's thread. */
struct verify_job {
	const Xba__V1__Envelope *envelope;      /* in: borrowed from the decoded frame */
	int64_t now_ms;                         /* in: time of use, for revocation and key validity */
	struct envelope_opened opened;          /* out: owned by the job's owner (envelope_opened_clear) */
	int rc;                                 /* out: envelope_open_message's result */
	struct xba_error err;                   /* out: why, when rc != 0 */
};

struct verify_pool;
/* Start n_threads verification threads (0: every job runs on the caller's thread). */
struct verify_pool *verify_pool_new(unsigned n_threads, struct xba_error *err);
void verify_pool_free(struct verify_pool *pool);
unsigned verify_pool_threads(const struct verify_pool *pool);
/* Hand jobs to the pool's threads and return at once; one batch at a time (wait before posting the next).  dir
 * and jobs must not change until verify_pool_wait() returns. */
void verify_pool_post(struct verify_pool *pool, const struct directory *dir, struct verify_job *jobs, size_t n_jobs);
/* Run what the threads have not claimed on the caller's thread; return when every job of the batch is done. */
void verify_pool_wait(struct verify_pool *pool);

/* checkpointer.c ----------------------------------------------------------------------------------------------- */

struct checkpointer;
/* A thread with its own connection to the journal that runs a PASSIVE WAL checkpoint every interval_ms. */
struct checkpointer *checkpointer_new(const char *journal_path, int interval_ms, struct xba_error *err);
void checkpointer_free(struct checkpointer *c);

/* server.c ----------------------------------------------------------------------------------------------------- */

struct server;

/* Open journal, load region and rules, bind; NULL with err. */
struct server *server_new(const struct broker_config *config, struct xba_error *err);
void server_free(struct server *server);
/* Run until SIGTERM/SIGINT; returns 0 on a clean stop.  SIGHUP reloads region and rules. */
int server_run(struct server *server, int signal_fd);

/* Validate broker.yaml, region.yaml and rules.yaml without binding anything (--check). */
int server_check(const struct broker_config *config, struct xba_error *err);

/* The event loop's state, shared by server.c, publish.c and deliver.c ------------------------------------------- */

#define ROUTING_ID_MAX 256

/* A delivery sent to a node and not yet acknowledged by it. */
struct inflight {
	uint64_t seq;
	bool emergency;            /* receipts go to the originator when it is acknowledged */
	char alert_id[37];         /* emergency only: for the receipt */
	char origin[XBA_NODE_ID_MAX + 1];
	int64_t sent_mono;         /* when it went: its acknowledgement's delay measures the link (linkwindow.c) */
	bool window_full;          /* the link window was full once it went: a fast ack may grow the window */
};

/*
 * One node's connection, indexed like directory.nodes.
 *
 *   DOWN --(Hello on a CURVE connection whose ZAP User-Id is this node) [session_hello]--> UP
 *   UP   --(Hello again, from the same or a new connection) [session_hello]--> UP (window and resume point reset)
 *   UP   --(silent for 3 heartbeats, or a send finds the peer gone) [session_drop]--> DOWN
 * In-flight deliveries of a dropped session stay QUEUED in the journal and are sent again on the next Hello.
 */
/*
 * What one node may make the broker do besides its publishes, whatever its frames say: a compromised member's
 * key must not buy a crash, a full disk or the broker's memory (docs/security.md, "Bad-input isolation").
 */
#define HELLO_BURST 20                  /* Hellos a node may send at once (a flapping link reconnects) ... */
#define HELLO_PER_SECOND 1.0            /* ... and after that; the rest are refused RATE_LIMITED, unhandled */
#define STRAY_BURST 20                  /* answers to a node's connections that have no session ... */
#define STRAY_PER_SECOND 2.0            /* ... and after that; the rest get none (frames never read pile up) */
#define EMERGENCY_BURST 50              /* emergencies a may_broadcast node may publish past its rate limit ... */
#define EMERGENCY_PER_SECOND 5.0        /* ... and after that: a backlog of routine alerts must not hold them */
#define NODE_CLOCK_WARN_MS 30000        /* a node's clock this far from the broker's is logged (node.clock_offset) */
#define NODE_CLOCK_MAX_MS 4102444800000LL /* 2100-01-01: a node's clock said later than this is taken as this */
#define NODE_LOG_BURST 100              /* log records a node's frames may cause at once ... */
#define NODE_LOG_PER_SECOND 10.0        /* ... and after that; the rest are counted (event=log.suppressed) */

/* An ordered session holding its publishes of one class behind the earliest one refused for now. */
struct order_hold {
	bool on;                                /* holding: only alert is handled, the rest of its class refused code */
	char alert[XBA_UUID_LEN + 1];           /* the earliest publish refused transiently, to be sent again first */
	uint64_t ref, count;                    /* its ref (named to the node); publishes refused behind it */
	Xba__V1__ErrorCode code;
};

struct session {
	bool up;                                /* Welcome sent on the current connection */
	uint8_t routing_id[ROUTING_ID_MAX];     /* ROUTER identity of the current connection */
	size_t routing_id_len;
	int64_t last_seen_mono;                 /* last frame received */
	int64_t last_sent_mono;                 /* last frame sent */
	int64_t last_seen_wall;                 /* for status replies */
	uint64_t credit;                        /* deliveries the node will still accept */
	uint64_t through_seq;                   /* highest cumulative delivery ack (or resume point) */
	struct inflight *inflight;              /* sent, unacknowledged; owned */
	size_t n_inflight, cap_inflight;
	bool wants_delivery;                    /* new deliveries or credit since the last delivery pass */
	bool deliver_batches;                   /* Hello.deliver_batches: send a pass's deliveries as one frame */
	struct link_window link;                /* ordinary deliveries the link may hold, below the credit */
	bool link_limited;                      /* the last pass left ordinary deliveries for want of link window:
						 * an acknowledgement starts the next */
	uint64_t sent_through;                  /* highest ordinary seq put in flight this session (sent in order) */
	bool ordered_publishes;                 /* Hello.ordered_publishes: hold publishes behind a transient refusal */
	/* Ordered publishes (docs/protocol.md §2.3 "Order"), in two classes: routine alerts wait behind a routine alert
	 * refused for now, emergencies behind an emergency; an emergency never waits behind routine traffic. */
	struct order_hold hold, emergency_hold;
	struct clock_bucket publishes;          /* rate_per_second, rate_burst */
	struct clock_bucket emergencies;        /* EMERGENCY_*: a may_broadcast node's emergencies past that limit */
	struct clock_bucket hellos;             /* HELLO_BURST, HELLO_PER_SECOND */
	struct clock_bucket strays;             /* STRAY_BURST, STRAY_PER_SECOND */
	struct log_budget logs;                 /* NODE_LOG_BURST, NODE_LOG_PER_SECOND; what it left out since the last
						 * event=log.suppressed */
	bool clock_known;                       /* the node said its wall clock (Hello.time_ms, Heartbeat) */
	int64_t clock_offset_ms;                /* ... minus the broker's, when it last said it */
	bool clock_warned;                      /* event=node.clock_offset written this session */
};

/* A PublishAck or Receipt held until the transaction that made it true is durable. */
struct held_frame {
	size_t node_index;                      /* destination */
	Xba__V1__Frame__BodyCase kind;          /* PUBLISH_ACK or RECEIPT */
	uint64_t ref, seq;
	uint32_t recipients;
	char alert_id[37];
	char node_id[XBA_NODE_ID_MAX + 1];      /* RECEIPT: who received / acknowledged */
	int receipt_kind;                       /* Xba__V1__ReceiptKind */
	char officer[129];
	char *note;                             /* RECEIPT: the acknowledging officer's note; owned, may be NULL */
	int64_t time_ms;
	bool duplicate;                         /* PUBLISH_ACK: DUPLICATE of an alert in the same transaction */
	bool emergency;                         /* PUBLISH_ACK: of an emergency (its class of ordered publishes) */
	int64_t read_mono;                      /* PUBLISH_ACK: when its Publish was read (held_ms) */
};

/* What the loop did since the last broker.stats record (server.c), for operators: load, batching, and whether
 * the disk's commits (the fsync every acknowledgement waits for) or the passes are getting slow. */
struct broker_stats {
	int64_t since_mono;                     /* ms, when the interval began */
	uint64_t accepted, rejected;            /* publishes answered OK / refused (duplicates are neither) */
	uint64_t deliveries, delivery_frames;   /* deliveries sent, and the Deliver/DeliverBatch frames they took */
	uint64_t commits_done;                  /* server's commits_done at interval start */
	int64_t commit_us_max, pass_us_max;     /* slowest commit; slowest loop pass (receive, commit, deliver) */
	uint64_t cache_hits, cache_misses;      /* the journal's envelope-cache totals at interval start */
};

struct server {
	const struct broker_config *config;     /* borrowed from main */
	void *zmq_ctx;
	void *router;                           /* CURVE server, ROUTER_MANDATORY */
	struct zap *zap;
	struct directory *dir;                  /* owned; replaced on SIGHUP */
	struct rules *rules;                    /* owned; replaced on SIGHUP */
	struct journal *journal;                /* owned */
	struct session *sessions;               /* dir->n_nodes entries; owned */
	bool in_transaction;                    /* journal_begin done, commit pending */
	bool tx_failed;                         /* a write in the open transaction failed: roll back, refuse all */
	uint64_t committed_head;                /* journal head at the last successful commit: what is durable */
	struct held_frame *held;                /* released after commit; owned */
	size_t n_held, cap_held;
	int signal_fd;                          /* read end of main's self-pipe: 'T' stop, 'H' reload */
	bool stopping;
	struct verify_pool *verifiers;          /* owned */
	struct checkpointer *checkpointer;      /* owned; WAL checkpoints off the loop */
	bool io_sched_batch;                    /* libzmq's threads run SCHED_BATCH (server.c, io_threads_batch) */
	struct chunk *chunks;                   /* two: one being handled, one being verified; owned (server.c) */
	bool emergency_in_pass;                 /* this pass journaled an emergency: end it, commit, deliver */
	int64_t next_key_warning_mono_ms;       /* when key_warnings looks at the nodes' keys again (daily) */
	uint64_t commits_done;                  /* journal commits that wrote (each waited for an fsync), since start:
						 * alert.accepted commit=, and broker.stats commits= per interval */
	struct log_budget unlisted_logs;        /* the node budgets' counterparts for connections whose node or key */
	struct clock_bucket unlisted_strays;    /* a reload removed from the directory */
	int64_t next_suppressed_report_mono;    /* when counts of records left out are written (server.c, each second) */
	uint8_t scratch[ROUTING_ID_MAX];        /* routing id of the frame being handled */
	size_t scratch_len;
	int64_t frame_read_mono;                /* when the frame being handled arrived, at the earliest
						 * (PublishAck.held_ms) */
	int64_t input_since_mono;               /* the ROUTER socket was last found empty, or the poll woke, then */
	struct broker_stats stats;
	/* The nodes' clocks against the broker's: the median offset over the sessions up that said theirs, when at
	 * least three did (nodes_clock_update).  A broker whose clock is wrong must not prune a day-old alert as a
	 * year old, refuse a valid alert as expired, or hold every country's alerts as sent in the future: the
	 * checks that lose or hold something take whichever of the two clocks keeps it (server_now_*). */
	bool nodes_clock_known;
	int64_t nodes_clock_offset_ms;
	bool clock_suspect_said;                /* event=broker.clock_suspect written, not yet event=broker.clock_agrees */
};

/* server.c: the earliest and the latest of the broker's clock and the nodes' (the broker's alone when the nodes
 * have not said theirs).  The earliest judges what has expired or aged out; the latest, what is in the future. */
int64_t server_now_earliest(const struct server *server, int64_t broker_now);
int64_t server_now_latest(const struct server *server, int64_t broker_now);

/* server.c: may node_index's frames cause one more log record now?  Over NODE_LOG_*, no (counted, and said with
 * event=log.suppressed within a second); SIZE_MAX: a connection whose node is no longer listed. */
bool node_log_allowed(struct server *server, size_t node_index);

/* server.c: sending (used by publish.c and deliver.c). */
int server_send(struct server *server, size_t node_index, const Xba__V1__Frame *frame);
/* Send an already encoded Frame (the delivery path encodes Deliver frames itself, without a copy of the envelope). */
int server_send_encoded(struct server *server, size_t node_index, const uint8_t *bytes, size_t len);
/* Send a frame to the connection that sent the frame being handled (before or without a session). */
int server_reply(struct server *server, const Xba__V1__Frame *frame);
/* Error frame to the connection being handled. */
void server_reply_error(struct server *server, Xba__V1__ErrorCode code, const char *field, uint64_t ref,
    const char *fmt, ...) XBA_PRINTF(5, 6);
/* Open the group-commit transaction if it is not open yet. */
int server_begin(struct server *server, struct xba_error *err);
/* Hold a frame until commit. */
int server_hold(struct server *server, const struct held_frame *held);
void session_drop(struct server *server, size_t node_index, const char *reason);

/* publish.c */
/* In arrival order, before verification: false if the node is over its rate (publish_handle then refuses it
 * unverified, so a flooding node costs no verification). */
bool publish_rate_allows(struct server *server, size_t node_index, const Xba__V1__Publish *publish);
/* An ordered session's publish of alert_id was refused with a transient code: hold the session's publishes behind
 * it (docs/protocol.md §2.3 "Order").  replace: it arrived before the alert held now (a failed commit refuses
 * publishes that arrived before the refusal that set the hold). */
void publish_hold(struct server *server, size_t node_index, uint64_t ref, const char *alert_id,
    Xba__V1__ErrorCode code, bool replace, bool emergency);
/* verified: the envelope opened by the pool, or NULL when publish_rate_allows() said no. */
void publish_handle(struct server *server, size_t node_index, const Xba__V1__Publish *publish,
    const struct verify_job *verified);
void track_handle(struct server *server, size_t node_index, const Xba__V1__TrackRequest *request);

/* deliver.c */
void deliver_pass(struct server *server);
void deliver_handle_ack(struct server *server, size_t node_index, const Xba__V1__DeliveryAck *ack);
void deliver_handle_credit(struct server *server, size_t node_index, const Xba__V1__Credit *credit);

#endif
