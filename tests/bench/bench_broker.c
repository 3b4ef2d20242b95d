/*
 * bench_broker.c — the broker benchmark driver, run by hand (never a meson test): it generates a region (keys made
 * with lib/keys.c, region.yaml, rules.yaml, broker.yaml in a temp dir), starts a REAL xba-broker process on
 * 127.0.0.1 with a durable journal (synchronous=FULL), and plays N nodes over DEALER+CURVE sockets speaking
 * docs/protocol.md.  It prints one labelled line per figure, as ratios against the Ed25519 verification ceiling
 * measured in the same run (docs/performance.md records the figures and what bounds them).
 *
 * usage: bench_broker [--only calib,journal,ingest,latency,broadcast,fanout,memory,backlog] [--alerts N]
 *                     [--journal N] [--backlog N] [--broadcasts N] [--fanout-nodes N] [--broker PATH]
 *                     [--perf FILE] [--keep] [--verify-threads N] [--single-delivers] [--ceiling ALERTS_PER_S]
 *                     [--repeat N] [--broker-cpus N] [--ids v7|v4|seq] [--pass-ms N]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "alert.h"
#include "clock.h"
#include "encoding.h"
#include "envelope.h"
#include "frame.h"
#include "journal.h"
#include "keys.h"
#include "sigverify.h"
#include "syntax.h"
#include "xba.pb-c.h"

#ifndef XBA_BROKER_PATH
#define XBA_BROKER_PATH "xba-broker"
#endif

#define CORE 7          /* members routed by the `to:` rule; 6 publish, each alert reaches the other 6 */
#define PUBLISHERS 6
#define WINDOW 128      /* publishes in flight per publishing node */
#define CREDIT 1024     /* delivery window (broker max_credit) */

/* ---- options and small helpers ------------------------------------------------------------------------------ */

static struct {
	const char *only;
	long alerts, journal_n, backlog_n, broadcasts, fanout_nodes;
	const char *broker;
	const char *perf;
	bool keep;
	long verify_threads; /* -1: the broker's default */
	bool single_delivers; /* nodes do not ask for DeliverBatch: one Deliver frame per delivery */
	double ceiling;       /* alerts/s that latency and broadcast take as 100% (0: the ingest just measured) */
	long repeat;          /* runs of calib, ingest, latency and broadcast, summarised at the end */
	long broker_cpus;     /* >0: the broker on the last this many online cores, this driver on the others */
	const char *ids;      /* how alert ids are made: v7, v4 or seq (bench_alert_id) */
	long pass_ms;         /* >0: broker.yaml pass_max_ms; 0: the broker's default */
} opt = { NULL, 20000, 100000, 20000, 60, 200, XBA_BROKER_PATH, NULL, false, -1, false, 0, 1, 0, "v7", 0 };

/* The targeted figures of every run, for the summary that --repeat prints (medians: this machine is noisy). */
#define REPEAT_MAX 20
static struct {
	size_t n_ingest, n_latency, n_broadcast;
	double ingest_ratio[REPEAT_MAX], ingest_verifications[REPEAT_MAX], latency_p99[REPEAT_MAX];
	double broadcast_p99[REPEAT_MAX];
} runs;

static double verify_per_s; /* sig_verify, one core, this run */

/* Cores the broker may use: its event loop plus its verification threads (broker.yaml verify_threads; by default
 * one fewer than the online cores, i.e. all of them), within the cores it is pinned to (--broker-cpus). */
static int
broker_cores(void)
{
	int threads = opt.verify_threads >= 0 ? (int)opt.verify_threads + 1 : (int)sysconf(_SC_NPROCESSORS_ONLN);

	return opt.broker_cpus > 0 && opt.broker_cpus < threads ? (int)opt.broker_cpus : threads;
}

/* --broker-cpus N: CPUs [online - N, online) for the broker, [0, online - N) for this driver.  The driver stands
 * for six agents on other machines; on a small machine it otherwise takes CPU the broker's figures count on. */
static void
pin_cpus(bool broker)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN), first = broker ? online - opt.broker_cpus : 0;
	long end = broker ? online : online - opt.broker_cpus;
	cpu_set_t set;

	if (opt.broker_cpus <= 0)
		return;
	CPU_ZERO(&set);
	for (long cpu = first; cpu < end; cpu++)
		CPU_SET((int)cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0) {
		fprintf(stderr, "bench_broker: sched_setaffinity: %s\n", strerror(errno));
		if (broker)
			_exit(127);
		exit(2);
	}
}

static bool
want(const char *name)
{
	if (opt.only == NULL)
		return true;
	size_t n = strlen(name);
	for (const char *p = opt.only; (p = strstr(p, name)) != NULL; p += n)
		if ((p == opt.only || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return true;
	return false;
}

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bench_broker: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (p == NULL)
		die("out of memory");
	return p;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Percentile p (0..100) of sorted v, in ms. */
static double
pct_ms(const int64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return (double)v[i] / 1e6;
}

/* ---- calibration -------------------------------------------------------------------------------------------- */

static double
verify_rate(int (*fn)(const struct sig_pubkey *, const uint8_t *, size_t, const uint8_t *),
    const struct sig_pubkey *pk, const uint8_t *msg, size_t len, const uint8_t *sig)
{
	long n = 0;
	int64_t t0 = now_ns(), t;
	do {
		for (int i = 0; i < 200; i++, n++)
			if (fn(pk, msg, len, sig) != 0)
				die("calibration signature does not verify");
		t = now_ns();
	} while (t - t0 < 1000000000LL);
	return (double)n * 1e9 / (double)(t - t0);
}

static void
calibrate(void)
{
	struct xba_error err = { 0 };
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	struct signer s = { 0 };
	uint8_t msg[1024 + ENVELOPE_SIGNING_CONTEXT_LEN], sig[XBA_ED25519_SIG_LEN];
	size_t rawlen = XBA_ED25519_PUBLIC_LEN;
	struct sig_pubkey pk;

	if (pkey == NULL || EVP_PKEY_get_raw_public_key(pkey, s.public_raw, &rawlen) != 1)
		die("ed25519 keygen failed");
	s.private_key = pkey;
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)(i * 31 + 7);
	if (keys_sign(&s, msg, sizeof msg, sig, &err) != 0 || sig_pubkey_init(&pk, s.public_raw, &err) != 0)
		die("calibration: %s", err.msg);
	/* With --broker-cpus, on the broker's cores: this VM's cores do not run at the same speed from one minute to
	 * the next, and the figures divide the broker's work by this rate. */
	pin_cpus(true);
	verify_per_s = verify_rate(sig_verify, &pk, msg, sizeof msg, sig);
	double ossl = verify_rate(sig_verify_openssl, &pk, msg, sizeof msg, sig);
	pin_cpus(false);
	printf("calib.verify_per_s_core      %8.0f /s  (sig_verify, backend %s, %.1f us each, 1 KiB%s)\n", verify_per_s,
	    sig_backend_name(), 1e6 / verify_per_s, opt.broker_cpus > 0 ? ", on the broker's cores" : "");
	printf("calib.verify_openssl_per_s   %8.0f /s  (sig_verify_openssl, %.1f us each)\n", ossl, 1e6 / ossl);
	sig_pubkey_clear(&pk);
	EVP_PKEY_free(pkey);
	fflush(stdout);
}

/* ---- region, broker process --------------------------------------------------------------------------------- */

struct node {
	char id[XBA_NODE_ID_MAX + 1];
	struct signer signer;
	struct curve_identity curve;
	void *sock;
	bool up;
	uint64_t resume;          /* Hello.resume_after */
	uint64_t through;         /* highest non-emergency seq received */
	uint64_t *emerg;          /* emergency seqs received since the last ack */
	size_t n_emerg, cap_emerg;
	uint32_t grant;           /* deliveries received since the last ack */
	uint64_t delivered;       /* deliveries received, total */
	long inflight;            /* publishes without ack */
};

struct alert_rec {
	uint8_t *frame;           /* pre-encoded Publish frame */
	size_t len;
	int publisher;
	bool emergency;
	int64_t sent_ns;
	int64_t done_ns;          /* emergency: every recipient has it */
	int got;                  /* emergency: recipients that have it */
};

struct bench {
	char dir[256];
	char broker_pub[XBA_Z85_KEY_TEXT_LEN + 1];
	int port;
	pid_t pid;
	void *ctx;
	struct node *nodes;
	size_t n;
	int broadcaster;          /* node index with may_broadcast */
	struct alert_rec *alerts; /* indexed by the number in the alert id (global across phases) */
	size_t n_alerts, cap_alerts;
	uint64_t acked, refused, delivered;
	int64_t *lat;             /* publish -> delivery samples, ns */
	size_t n_lat, cap_lat;
	bool record_lat;
	size_t emerg_recipients;
};

static unsigned run_tag;

/* The id of bench alert idx.  Its last 12 hex digits are idx (alert_index reads them back); the front is what the
 * journal's unique alert-id index sees, so it follows --ids: "v7" (the default, as xba-agent makes them: RFC 9562
 * version 7, the creation time in milliseconds first, so that new ids land at the right edge of the index), "v4"
 * (random, as older agents and other clients make them: each insert lands on a random page of the index) or "seq"
 * (one prefix per run: what this bench used before 2026-11-26). space tells the journal built directly for the
 * memory figure ('9') from the alerts published through the broker ('8'). */
static void
bench_alert_id(char out[XBA_UUID_LEN + 1], char space, size_t idx)
{
	/* 12 hex digits hold 48 bits; the mask lets the compiler see that the id cannot be truncated. */
	unsigned long long tail = (unsigned long long)idx & 0xffffffffffffULL;

	if (strcmp(opt.ids, "seq") == 0) {
		snprintf(out, XBA_UUID_LEN + 1, "%08x-0000-4000-%c000-%012llx", run_tag, space, tail);
	} else if (strcmp(opt.ids, "v4") == 0) {
		unsigned long long r = ((unsigned long long)rand() << 31) ^ (unsigned long long)rand();
		snprintf(out, XBA_UUID_LEN + 1, "%08x-%04x-4%03x-%c%03x-%012llx", (unsigned)(r >> 16) & 0xffffffffu,
		    (unsigned)(r & 0xffff), (unsigned)rand() & 0xfff, space, (unsigned)rand() & 0xfff, tail);
	} else {
		uint64_t ms = (uint64_t)clock_now_ms();
		snprintf(out, XBA_UUID_LEN + 1, "%08x-%04x-7%03x-%c%03x-%012llx", (unsigned)(ms >> 16) & 0xffffffffu,
		    (unsigned)(ms & 0xffff), (unsigned)rand() & 0xfff, space, (unsigned)rand() & 0xfff, tail);
	}
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		die("%s: %s", path, strerror(errno));
}

static int
free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(s, (struct sockaddr *)&a, &len) != 0)
		die("free port: %s", strerror(errno));
	close(s);
	return ntohs(a.sin_port);
}

/* Node ids: members need ISO 3166 alpha-3 codes; beyond those, observers. */
static void
node_ids(struct bench *b, size_t n, size_t *n_members)
{
	size_t k = 0;
	char c[4] = "AAA";
	for (c[0] = 'A'; c[0] <= 'Z' && k < n; c[0]++)
		for (c[1] = 'A'; c[1] <= 'Z' && k < n; c[1]++)
			for (c[2] = 'A'; c[2] <= 'Z' && k < n; c[2]++)
				if (syntax_iso3166_alpha3(c))
					snprintf(b->nodes[k++].id, sizeof b->nodes[0].id, "%s", c);
	*n_members = k;
	for (size_t i = 0; k < n; k++, i++)
		snprintf(b->nodes[k].id, sizeof b->nodes[0].id, "OBS-%03zu", i);
}

/* A region of n nodes (the first CORE are the routing group; node n-1 may broadcast), keys, rules, broker.yaml. */
static void
region_make(struct bench *b, const char *name, size_t n, const char *journal)
{
	struct xba_error err = { 0 };
	char path[512], keys[300];
	size_t n_members, cap = 4096 + n * 400;
	char *y = xcalloc(1, cap);
	size_t o = 0;
	struct signer bs;
	struct curve_identity bc;

	memset(b, 0, sizeof *b);
	snprintf(b->dir, sizeof b->dir, "/tmp/xba-bench-%s-XXXXXX", name);
	if (mkdtemp(b->dir) == NULL)
		die("mkdtemp: %s", strerror(errno));
	snprintf(keys, sizeof keys, "%s/keys", b->dir);
	mkdir(keys, 0700);
	b->n = n;
	b->nodes = xcalloc(n, sizeof *b->nodes);
	b->broadcaster = (int)n - 1;
	node_ids(b, n, &n_members);
	if (keys_generate("BROKER", keys, &bs, &bc, &err) != 0)
		die("keygen: %s", err.msg);
	keys_signer_clear(&bs);
	memcpy(b->broker_pub, bc.public_z85, sizeof b->broker_pub);
	o += (size_t)snprintf(y + o, cap - o, "# region.yaml written by bench_broker\nregion: bench\nnodes:\n");
	for (size_t i = 0; i < n; i++) {
		struct node *nd = &b->nodes[i];
		char b64[64];
		if (keys_generate(nd->id, keys, &nd->signer, &nd->curve, &err) != 0)
			die("keygen %s: %s", nd->id, err.msg);
		encoding_base64(nd->signer.public_raw, XBA_ED25519_PUBLIC_LEN, b64);
		o += (size_t)snprintf(y + o, cap - o,
		    "  - id: %s\n    name: \"%s\"\n    role: %s\n    curve_key: \"%s\"\n    signing_keys:\n"
		    "      - public: \"%s\"\n%s",
		    nd->id, nd->id, i < n_members ? "member" : "observer", nd->curve.public_z85, b64,
		    (int)i == b->broadcaster ? "    may_broadcast: true\n" : "");
		if (i >= n_members)
			o += (size_t)snprintf(y + o, cap - o, "    publish: [health]\n");
	}
	o += (size_t)snprintf(y + o, cap - o, "groups:\n  core: [");
	for (size_t i = 0; i < CORE && i < n; i++)
		o += (size_t)snprintf(y + o, cap - o, "%s%s", i ? ", " : "", b->nodes[i].id);
	snprintf(y + o, cap - o, "]\n");
	snprintf(path, sizeof path, "%s/region.yaml", b->dir);
	write_file(path, y);
	free(y);
	/* With exactly CORE members, the rule is the issue's `to: [members]`; larger regions route to the group. */
	snprintf(path, sizeof path, "%s/rules.yaml", b->dir);
	write_file(path, n == CORE ? "rules:\n  - name: bench-core\n    to: [members]\n"
	                           : "rules:\n  - name: bench-core\n    to: [core]\n");
	b->port = free_port();
	char cfg[1024];
	char threads_line[64] = "", pass_line[48] = "";
	if (opt.verify_threads >= 0)
		snprintf(threads_line, sizeof threads_line, "verify_threads: %ld\n", opt.verify_threads);
	else if (opt.broker_cpus > 0) /* as many threads as the cores it is pinned to, not as the machine has */
		snprintf(threads_line, sizeof threads_line, "verify_threads: %ld\n", opt.broker_cpus - 1);
	if (opt.pass_ms > 0)
		snprintf(pass_line, sizeof pass_line, "pass_max_ms: %ld\n", opt.pass_ms);
	snprintf(cfg, sizeof cfg,
	    "# broker.yaml written by bench_broker (durable journal: WAL, synchronous=FULL)\n"
	    "broker_id: bench\nlisten: \"tcp://127.0.0.1:%d\"\ncurve_secret_key: keys/BROKER.curve.key\n"
	    "region: region.yaml\nrules: rules.yaml\njournal: %s\nrate_per_second: 1000000\n"
	    "rate_burst: 1000000\nmax_credit: %d\nlog_level: warn\n%s%s",
	    b->port, journal ? journal : "journal.db", CREDIT, threads_line, pass_line);
	snprintf(path, sizeof path, "%s/broker.yaml", b->dir);
	write_file(path, cfg);
	b->ctx = zmq_ctx_new();
	zmq_ctx_set(b->ctx, ZMQ_IO_THREADS, 1);
	zmq_ctx_set(b->ctx, ZMQ_MAX_SOCKETS, 4096);
}

static void
broker_start(struct bench *b)
{
	char log[300];
	snprintf(log, sizeof log, "%s/broker.log", b->dir);
	fflush(stdout);
	b->pid = fork();
	if (b->pid < 0)
		die("fork: %s", strerror(errno));
	if (b->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (chdir(b->dir) != 0 || fd < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		pin_cpus(true);
		execl(opt.broker, opt.broker, "-c", "broker.yaml", (char *)NULL);
		_exit(127);
	}
}

/* The xba-broker process whose CPU and memory the figures read: the process started, or, when --broker is a
 * wrapper (perf record, a script) that runs the broker as a child, that child.  Falls back to the process started,
 * with a warning, so that a wrapper the bench cannot see through gives figures marked as not the broker's. */
static pid_t
broker_process(const struct bench *b)
{
	pid_t pid = b->pid;
	for (int depth = 0; depth < 4; depth++) {
		char path[96], comm[64] = "", children[256] = "";
		snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
		FILE *f = fopen(path, "r");
		if (f != NULL) {
			if (fgets(comm, sizeof comm, f) == NULL)
				comm[0] = '\0';
			fclose(f);
		}
		if (strncmp(comm, "xba-broker", 10) == 0)
			return pid;
		snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
		if ((f = fopen(path, "r")) == NULL)
			break;
		long child = fgets(children, sizeof children, f) != NULL ? atol(children) : 0;
		fclose(f);
		if (child <= 0)
			break;
		pid = (pid_t)child;
	}
	printf("# warning: no xba-broker process under pid %d (--broker %s): CPU and memory figures are that "
	       "process's\n", (int)b->pid, opt.broker);
	return b->pid;
}

static void
broker_stop(struct bench *b)
{
	if (b->pid > 0) {
		kill(b->pid, SIGTERM);
		waitpid(b->pid, NULL, 0);
		b->pid = 0;
	}
}

/* utime+stime of pid in µs. */
static double
proc_cpu_us(pid_t pid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/* The broker's event-loop thread (its main thread): ns on a CPU and ns runnable but waiting for one. */
static void
loop_schedstat(pid_t pid, double *on_cpu, double *waiting)
{
	char path[80];
	unsigned long long a = 0, w = 0;
	snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", (int)pid, (int)pid);
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		if (fscanf(f, "%llu %llu", &a, &w) != 2)
			a = w = 0;
		fclose(f);
	}
	*on_cpu = (double)a;
	*waiting = (double)w;
}

/* ns on a CPU of the broker's threads, by role: the event loop (main thread), verification, libzmq's I/O. */
struct thread_cpu {
	double loop, verify, zmq_io, other;
};

static struct thread_cpu
broker_thread_cpu(pid_t pid)
{
	struct thread_cpu t = { 0, 0, 0, 0 };
	char path[96];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return t;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int tid = atoi(e->d_name);
		char comm[64] = "";
		unsigned long long ns = 0;
		snprintf(path, sizeof path, "/proc/%d/task/%d/comm", (int)pid, tid);
		FILE *f = fopen(path, "r");
		if (f != NULL) {
			if (fgets(comm, sizeof comm, f) == NULL)
				comm[0] = '\0';
			fclose(f);
		}
		snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", (int)pid, tid);
		if ((f = fopen(path, "r")) != NULL) {
			if (fscanf(f, "%llu", &ns) != 1)
				ns = 0;
			fclose(f);
		}
		if (tid == (int)pid)
			t.loop += (double)ns;
		else if (strncmp(comm, "xba-verify", 10) == 0)
			t.verify += (double)ns;
		else if (strncmp(comm, "ZMQbg/IO", 8) == 0)
			t.zmq_io += (double)ns;
		else
			t.other += (double)ns;
	}
	closedir(d);
	return t;
}

static long
proc_status_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	long v = -1;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return v;
}

static void
region_free(struct bench *b)
{
	broker_stop(b);
	for (size_t i = 0; i < b->n; i++) {
		if (b->nodes[i].sock)
			zmq_close(b->nodes[i].sock);
		keys_signer_clear(&b->nodes[i].signer);
		free(b->nodes[i].emerg);
	}
	zmq_ctx_term(b->ctx);
	for (size_t i = 0; i < b->n_alerts; i++)
		free(b->alerts[i].frame);
	free(b->alerts);
	free(b->nodes);
	free(b->lat);
	if (!opt.keep) {
		char cmd[400];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", b->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_broker: could not remove %s\n", b->dir);
	} else {
		printf("# kept %s\n", b->dir);
	}
}

/* ---- the wire ------------------------------------------------------------------------------------------------ */

static void
send_frame(struct node *nd, const Xba__V1__Frame *f)
{
	uint8_t *bytes;
	size_t len;
	struct xba_error err = { 0 };
	if (frame_encode(f, &bytes, &len, &err) != 0)
		die("encode: %s", err.msg);
	if (zmq_send(nd->sock, bytes, len, 0) < 0)
		die("send %s: %s", nd->id, zmq_strerror(errno));
	free(bytes);
}

static void
node_connect(struct bench *b, struct node *nd)
{
	char ep[64];
	int zero = 0, ivl = 5;
	nd->sock = zmq_socket(b->ctx, ZMQ_DEALER);
	zmq_setsockopt(nd->sock, ZMQ_LINGER, &zero, sizeof zero);
	zmq_setsockopt(nd->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
	zmq_setsockopt(nd->sock, ZMQ_CURVE_SERVERKEY, b->broker_pub, XBA_Z85_KEY_TEXT_LEN);
	zmq_setsockopt(nd->sock, ZMQ_CURVE_PUBLICKEY, nd->curve.public_z85, XBA_Z85_KEY_TEXT_LEN);
	zmq_setsockopt(nd->sock, ZMQ_CURVE_SECRETKEY, nd->curve.secret_z85, XBA_Z85_KEY_TEXT_LEN);
	snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", b->port);
	if (zmq_connect(nd->sock, ep) != 0)
		die("connect: %s", zmq_strerror(errno));
	Xba__V1__Hello h = XBA__V1__HELLO__INIT;
	Xba__V1__Frame f = XBA__V1__FRAME__INIT;
	h.protocol_version = XBA_PROTOCOL_VERSION;
	h.node_id = nd->id;
	h.resume_after = nd->resume;
	h.credit = CREDIT;
	h.software = "bench_broker";
	h.deliver_batches = !opt.single_delivers; /* as xba-agent does */
	f.body_case = XBA__V1__FRAME__BODY_HELLO;
	f.hello = &h;
	send_frame(nd, &f); /* queued until the connection is up (ZMQ_IMMEDIATE=0) */
}

static void
node_ack(struct node *nd)
{
	if (nd->grant == 0)
		return;
	Xba__V1__DeliveryAck a = XBA__V1__DELIVERY_ACK__INIT;
	Xba__V1__Credit c = XBA__V1__CREDIT__INIT;
	Xba__V1__Frame f = XBA__V1__FRAME__INIT;
	a.through_seq = nd->through;
	a.seqs = nd->emerg;
	a.n_seqs = nd->n_emerg;
	f.body_case = XBA__V1__FRAME__BODY_DELIVERY_ACK;
	f.delivery_ack = &a;
	send_frame(nd, &f);
	c.grant = nd->grant;
	f.body_case = XBA__V1__FRAME__BODY_CREDIT;
	f.credit = &c;
	send_frame(nd, &f);
	nd->grant = 0;
	nd->n_emerg = 0;
}

/* The alert index is the last 12 hex digits of its id; field 1 (id) is encoded first. */
static long
alert_index(const ProtobufCBinaryData *alert)
{
	if (alert->len < 2 + 36 || alert->data[0] != 0x0a || alert->data[1] != 36)
		return -1;
	return strtol((const char *)alert->data + 2 + 24, NULL, 16) & 0xffffffffffffL;
}

/* One delivery, alone or from a batch: count it, note what the next ack covers, record its latency. */
static void
on_deliver(struct bench *b, struct node *nd, const Xba__V1__Deliver *d, int64_t t)
{
	long idx = alert_index(&d->envelope->alert);
	nd->delivered++;
	b->delivered++;
	nd->grant++;
	if (d->emergency) {
		if (nd->n_emerg == nd->cap_emerg) {
			nd->cap_emerg = nd->cap_emerg ? 2 * nd->cap_emerg : 64;
			nd->emerg = realloc(nd->emerg, nd->cap_emerg * sizeof *nd->emerg);
		}
		nd->emerg[nd->n_emerg++] = d->seq;
	} else if (d->seq > nd->through) {
		nd->through = d->seq;
	}
	if (idx >= 0 && (size_t)idx < b->n_alerts) {
		struct alert_rec *a = &b->alerts[idx];
		if (a->emergency && ++a->got == (int)b->emerg_recipients)
			a->done_ns = t;
		if (b->record_lat && !a->emergency && a->sent_ns) {
			if (b->n_lat == b->cap_lat) {
				b->cap_lat = b->cap_lat ? 2 * b->cap_lat : 65536;
				b->lat = realloc(b->lat, b->cap_lat * sizeof *b->lat);
			}
			b->lat[b->n_lat++] = t - a->sent_ns;
		}
	}
}

static void
on_frame(struct bench *b, struct node *nd, const uint8_t *bytes, size_t len, int64_t t)
{
	Xba__V1__Frame *f = xba__v1__frame__unpack(NULL, len, bytes);
	if (f == NULL)
		die("undecodable frame from the broker");
	switch (f->body_case) {
	case XBA__V1__FRAME__BODY_WELCOME:
		nd->up = true;
		break;
	case XBA__V1__FRAME__BODY_PUBLISH_ACK:
		nd->inflight--;
		if (f->publish_ack->result == XBA__V1__ERROR_CODE__OK || f->publish_ack->result == 2 /* DUPLICATE */) {
			b->acked++;
		} else {
			if (b->refused++ < 5)
				fprintf(stderr, "bench_broker: %s ref %llu refused: %s %s\n", nd->id,
				    (unsigned long long)f->publish_ack->ref, frame_error_code_name(f->publish_ack->result),
				    f->publish_ack->message ? f->publish_ack->message : "");
		}
		break;
	case XBA__V1__FRAME__BODY_DELIVER:
		on_deliver(b, nd, f->deliver, t);
		break;
	case XBA__V1__FRAME__BODY_DELIVER_BATCH:
		for (size_t i = 0; i < f->deliver_batch->n_deliveries; i++)
			on_deliver(b, nd, f->deliver_batch->deliveries[i], t);
		break;
	case XBA__V1__FRAME__BODY_ERROR:
		fprintf(stderr, "bench_broker: %s: error %s %s\n", nd->id, frame_error_code_name(f->error->code),
		    f->error->message ? f->error->message : "");
		break;
	default:
		break;
	}
	xba__v1__frame__free_unpacked(f, NULL);
}

/* Receive whatever is ready on every connected node, ack and grant credit; wait at most timeout_ms. */
static void
pump(struct bench *b, long timeout_ms)
{
	static zmq_pollitem_t *items;
	static size_t *map, cap;
	size_t k = 0;
	if (cap < b->n) {
		cap = b->n;
		items = realloc(items, cap * sizeof *items);
		map = realloc(map, cap * sizeof *map);
	}
	for (size_t i = 0; i < b->n; i++)
		if (b->nodes[i].sock) {
			items[k] = (zmq_pollitem_t){ .socket = b->nodes[i].sock, .events = ZMQ_POLLIN };
			map[k++] = i;
		}
	if (zmq_poll(items, (int)k, timeout_ms) <= 0)
		return;
	for (size_t j = 0; j < k; j++) {
		if (!(items[j].revents & ZMQ_POLLIN))
			continue;
		struct node *nd = &b->nodes[map[j]];
		for (int m = 0; m < 4096; m++) {
			zmq_msg_t msg;
			zmq_msg_init(&msg);
			if (zmq_msg_recv(&msg, nd->sock, ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&msg);
				break;
			}
			on_frame(b, nd, zmq_msg_data(&msg), zmq_msg_size(&msg), now_ns());
			zmq_msg_close(&msg);
		}
		node_ack(nd);
	}
}

static bool
all_up(struct bench *b, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (b->nodes[i].sock && !b->nodes[i].up)
			return false;
	return true;
}

static void
connect_range(struct bench *b, size_t from, size_t to)
{
	int64_t t0 = now_ns();
	for (size_t i = from; i < to; i++)
		node_connect(b, &b->nodes[i]);
	while (!all_up(b, from, to)) {
		pump(b, 20);
		if (now_ns() - t0 > 30000000000LL)
			die("nodes not welcomed within 30 s (broker log: %s/broker.log)", b->dir);
	}
}

/* Pre-sign `count` alerts (about 1 KiB each) from publisher nodes pubs[i % n_pubs]; returns the first index. */
static size_t
make_alerts(struct bench *b, size_t count, const int *pubs, size_t n_pubs, bool emergency)
{
	static char description[900];
	struct xba_error err = { 0 };
	size_t first = b->n_alerts;
	if (description[0] == '\0') {
		for (size_t i = 0; i < sizeof description - 1; i++)
			description[i] = "abcdefghij klmnopqrstuvwxyz "[i % 28];
	}
	if (b->n_alerts + count > b->cap_alerts) {
		b->cap_alerts = b->n_alerts + count;
		b->alerts = realloc(b->alerts, b->cap_alerts * sizeof *b->alerts);
	}
	for (size_t k = 0; k < count; k++) {
		size_t idx = b->n_alerts++;
		struct alert_rec *a = &b->alerts[idx];
		struct node *nd = &b->nodes[pubs[k % n_pubs]];
		Xba__V1__Alert al = XBA__V1__ALERT__INIT;
		Xba__V1__Info info = XBA__V1__INFO__INIT, *infos[1] = { &info };
		char id[64];
		uint8_t *env;
		size_t env_len;

		memset(a, 0, sizeof *a);
		a->publisher = pubs[k % n_pubs];
		a->emergency = emergency;
		bench_alert_id(id, '8', idx);
		al.id = id;
		al.origin = nd->id;
		al.author = "bench.officer";
		al.sent_ms = clock_now_ms();
		al.status = XBA__V1__STATUS__STATUS_EXERCISE;
		al.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ALERT;
		al.category = XBA__V1__CATEGORY__CATEGORY_HEALTH;
		al.severity = emergency ? XBA__V1__SEVERITY__SEVERITY_EXTREME : XBA__V1__SEVERITY__SEVERITY_MODERATE;
		al.urgency = emergency ? XBA__V1__URGENCY__URGENCY_IMMEDIATE : XBA__V1__URGENCY__URGENCY_EXPECTED;
		al.certainty = XBA__V1__CERTAINTY__CERTAINTY_POSSIBLE;
		al.tlp = XBA__V1__TLP__TLP_GREEN;
		al.emergency = emergency;
		info.language = "en";
		info.headline = "Benchmark alert";
		info.description = description;
		al.info = infos;
		al.n_info = 1;
		if (envelope_seal(&nd->signer, &al, &env, &env_len, &err) != 0)
			die("seal: %s", err.msg);
		Xba__V1__Envelope *e = xba__v1__envelope__unpack(NULL, env_len, env);
		Xba__V1__Publish p = XBA__V1__PUBLISH__INIT;
		Xba__V1__Frame f = XBA__V1__FRAME__INIT;
		p.ref = idx + 1;
		p.envelope = e;
		f.body_case = XBA__V1__FRAME__BODY_PUBLISH;
		f.publish = &p;
		if (e == NULL || frame_encode(&f, &a->frame, &a->len, &err) != 0)
			die("encode publish");
		xba__v1__envelope__free_unpacked(e, NULL);
		free(env);
	}
	return first;
}

static void
publish(struct bench *b, size_t idx)
{
	struct alert_rec *a = &b->alerts[idx];
	struct node *nd = &b->nodes[a->publisher];
	a->sent_ns = now_ns();
	if (zmq_send(nd->sock, a->frame, a->len, 0) < 0)
		die("publish: %s", zmq_strerror(errno));
	nd->inflight++;
}

static const int core_pubs[PUBLISHERS] = { 0, 1, 2, 3, 4, 5 };

/* Publish [first, first+count) as fast as the windows allow; wait until acked and `deliveries` delivered. */
static void
publish_flat_out(struct bench *b, size_t first, size_t count, uint64_t deliveries, int64_t *t_acked)
{
	size_t next = first, end = first + count;
	uint64_t acked0 = b->acked + b->refused, d0 = b->delivered;
	*t_acked = 0;
	while (b->acked + b->refused - acked0 < count || b->delivered - d0 < deliveries) {
		while (next < end && b->nodes[b->alerts[next].publisher].inflight < WINDOW)
			publish(b, next++);
		pump(b, 100);
		if (!*t_acked && b->acked + b->refused - acked0 >= count)
			*t_acked = now_ns();
	}
}

/* ---- figures ------------------------------------------------------------------------------------------------- */

static double ingest_ceiling; /* alerts/s measured by fig_ingest */

/* What latency and broadcast call 100% load: --ceiling, else the ingest rate just measured, else a guess. A fixed
 * --ceiling compares two builds at the same absolute rates (a faster build otherwise measures its latency under
 * more load, and one lucky ingest run raises the load of the whole latency figure). */
static double
load_ceiling(void)
{
	if (opt.ceiling > 0)
		return opt.ceiling;
	return ingest_ceiling > 0 ? ingest_ceiling : 0.8 * verify_per_s / 4;
}

/* ---- the journal alone -------------------------------------------------------------------------------------- */

/* One real sealed envelope of the ingest's kind, as the journal stores it, for figures that write a journal
 * directly; and the six recipients the ingest routes each alert to.  The caller frees the envelope. */
static uint8_t *
template_envelope(struct bench *b, size_t *len, struct journal_recipient rcpt[6])
{
	size_t tmpl = make_alerts(b, 1, core_pubs, 1, false);
	Xba__V1__Frame *pf = xba__v1__frame__unpack(NULL, b->alerts[tmpl].len, b->alerts[tmpl].frame);
	uint8_t *env;

	if (pf == NULL || pf->publish == NULL)
		die("template alert does not decode");
	env = xcalloc(1, xba__v1__envelope__get_packed_size(pf->publish->envelope));
	*len = xba__v1__envelope__pack(pf->publish->envelope, env);
	xba__v1__frame__free_unpacked(pf, NULL);
	for (int i = 0; i < 6; i++)
		rcpt[i] = (struct journal_recipient){ b->nodes[i + 1].id, "bench-core" };
	return env;
}

/* What the journal costs the loop per alert, measured apart from everything else in this run: the CPU time of
 * this thread (user and kernel: the WAL writes, the fdatasync, SQLite's own checkpoints) for `count` alerts of the
 * ingest's size appended with `n_rcpt` recipients each, `per_commit` to a transaction, on a fresh durable journal
 * opened with broker/journal.c in `dir`.  Runs on the broker's cores, like the calibration it is read against. */
static double
journal_cpu_us(const char *dir, const char *name, const uint8_t *env, size_t env_len,
    const struct journal_recipient *rcpt, size_t n_rcpt, size_t count, size_t per_commit)
{
	struct xba_error err = { 0 };
	char path[400], version[65];
	struct timespec c0, c1;

	memset(version, 'a', 64);
	version[64] = '\0';
	snprintf(path, sizeof path, "%s/%s.db", dir, name);
	struct journal *j = journal_open(path, &err);
	if (j == NULL)
		die("journal_open %s: %s", path, err.msg);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	for (size_t i = 0; i < count;) {
		if (journal_begin(j, &err) != 0)
			die("journal_begin: %s", err.msg);
		for (size_t k = 0; k < per_commit && i < count; k++, i++) {
			char id[XBA_UUID_LEN + 1];
			uint64_t seq;
			bench_alert_id(id, '7', i);
			struct journal_entry e = { .alert_id = id, .origin = "BA", .sent_ms = clock_now_ms(),
				.received_ms = clock_now_ms(), .msg_type = 1, .emergency = false, .envelope = env,
				.envelope_len = env_len, .rules_version = version, .recipients = rcpt,
				.n_recipients = n_rcpt };
			if (journal_append(j, &e, &seq, &err) != 0)
				die("journal_append: %s", err.msg);
		}
		if (journal_commit(j, &err) != 0)
			die("journal_commit: %s", err.msg);
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	journal_close(j);
	return ((double)(c1.tv_sec - c0.tv_sec) * 1e6 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e3) / (double)count;
}

/* Commit sizes of the journal figure; the last three are also measured without delivery rows, and the budget
 * fig_ingest prints takes the one nearest to what the broker commits at once during ingest. */
static const size_t journal_sizes[] = { 1, 8, 32, 64, 128 };
#define JOURNAL_SIZES (sizeof journal_sizes / sizeof journal_sizes[0])
#define JOURNAL_FIRST_BUDGET 2 /* journal_sizes[2..]: the sizes a loop pass under load commits */
#define BROKER_PASS_MS 5       /* broker.yaml pass_max_ms by default: under a burst, one commit per this much work */

/* The journal's share of the ingest figure, for the budget fig_ingest prints: 0 until fig_journal ran this run. */
static struct {
	double with_rows_us[JOURNAL_SIZES], without_rows_us[JOURNAL_SIZES];
} journal_cost;

static void
fig_journal(void)
{
	struct bench b;
	struct journal_recipient rcpt[6];
	char name[32];

	size_t env_len;

	region_make(&b, "journal", CORE, NULL);
	uint8_t *env = template_envelope(&b, &env_len, rcpt);
	pin_cpus(true);
	for (size_t k = 0; k < JOURNAL_SIZES; k++) {
		size_t count = journal_sizes[k] == 1 ? 1000 : 4000;
		snprintf(name, sizeof name, "rows-%zu", journal_sizes[k]);
		journal_cost.with_rows_us[k] = journal_cpu_us(b.dir, name, env, env_len, rcpt, 6, count, journal_sizes[k]);
		if (k >= JOURNAL_FIRST_BUDGET) {
			snprintf(name, sizeof name, "norows-%zu", journal_sizes[k]);
			journal_cost.without_rows_us[k] =
			    journal_cpu_us(b.dir, name, env, env_len, rcpt, 0, count, journal_sizes[k]);
		}
	}
	pin_cpus(false);
	printf("journal.cpu_us_per_alert");
	for (size_t k = 0; k < JOURNAL_SIZES; k++)
		printf("%s%.1f us (%zu/commit)", k ? ", " : "     ", journal_cost.with_rows_us[k], journal_sizes[k]);
	printf("  (append + commit + SQLite's checkpoints, 6 recipients, durable; this thread's CPU)\n");
	printf("journal.delivery_rows_us");
	for (size_t k = JOURNAL_FIRST_BUDGET; k < JOURNAL_SIZES; k++) {
		double rows = journal_cost.with_rows_us[k] - journal_cost.without_rows_us[k];
		printf("%s%.1f us (%zu/commit: %.2f verifications)", k > JOURNAL_FIRST_BUDGET ? ", " : "     ", rows,
		    journal_sizes[k], rows * verify_per_s / 1e6);
	}
	printf("  (what the six delivery rows add to an alert's journal cost)\n");
	free(env);
	fflush(stdout);
	region_free(&b);
}

/* The broker's pass_max_ms in this run. */
static long
pass_ms(void)
{
	return opt.pass_ms > 0 ? opt.pass_ms : BROKER_PASS_MS;
}

/* How many times larger the larger of a and b is (both > 0). */
static double
ratio_apart(double a, double b)
{
	return a > b ? a / b : b / a;
}

/* The journal figure's commit size nearest (by ratio) to what the broker commits at once at this ingest rate. */
static size_t
journal_budget_size(double rate)
{
	double per_commit = rate * (double)pass_ms() / 1000.0;
	size_t best = JOURNAL_FIRST_BUDGET;

	for (size_t k = JOURNAL_FIRST_BUDGET + 1; k < JOURNAL_SIZES; k++)
		if (ratio_apart((double)journal_sizes[k], per_commit) < ratio_apart((double)journal_sizes[best], per_commit))
			best = k;
	return best;
}

static void
fig_ingest(void)
{
	struct bench b;
	int64_t t_acked;
	region_make(&b, "ingest", CORE, NULL);
	broker_start(&b);
	connect_range(&b, 0, CORE);
	size_t n = (size_t)opt.alerts, warm = n / 10 < 1000 ? n / 10 : 1000;
	size_t first = make_alerts(&b, warm + n, core_pubs, PUBLISHERS, false);
	publish_flat_out(&b, first, warm, warm * 6, &t_acked); /* warm-up: page cache, SQLite tables */
	pid_t perf_pid = 0, bp = broker_process(&b);
	if (opt.perf) {
		char pidtxt[16];
		snprintf(pidtxt, sizeof pidtxt, "%d", (int)bp);
		perf_pid = fork();
		if (perf_pid == 0) {
			execlp("perf", "perf", "record", "-g", "-q", "-o", opt.perf, "-p", pidtxt, (char *)NULL);
			_exit(127);
		}
		usleep(300000);
	}
	double cpu0 = proc_cpu_us(bp), self0 = proc_cpu_us(getpid()), run0, wait0, run1, wait1;
	loop_schedstat(bp, &run0, &wait0);
	struct thread_cpu th0 = broker_thread_cpu(bp);
	int64_t t0 = now_ns();
	publish_flat_out(&b, first + warm, n, n * 6, &t_acked);
	int64_t t1 = now_ns();
	double cpu1 = proc_cpu_us(bp), self1 = proc_cpu_us(getpid());
	loop_schedstat(bp, &run1, &wait1);
	struct thread_cpu th1 = broker_thread_cpu(bp);
	if (perf_pid > 0) {
		kill(perf_pid, SIGINT);
		waitpid(perf_pid, NULL, 0);
	}
	double secs = (double)(t1 - t0) / 1e9, rate = (double)n / secs;
	double cpu_per = (cpu1 - cpu0) / (double)n, verify_us = 1e6 / verify_per_s;
	ingest_ceiling = rate;
	if (runs.n_ingest < REPEAT_MAX) {
		runs.ingest_ratio[runs.n_ingest] = rate / verify_per_s;
		runs.ingest_verifications[runs.n_ingest++] = cpu_per / verify_us;
	}
	printf("ingest.accepted_per_s        %8.0f /s  (%zu alerts, 6 publishers x %d in flight, 6 recipients each, "
	       "acked+delivered in %.2f s; acks alone %.0f /s; refused %llu)\n",
	    rate, n, WINDOW, secs, (double)n * 1e9 / (double)(t_acked - t0), (unsigned long long)b.refused);
	int cores = broker_cores();
	printf("ingest.ratio_to_verify_core  %8.2f     (target >= 0.80 x verifications/s/core x %d cores the broker "
	       "may use = %.2f)  %s\n",
	    rate / verify_per_s, cores, 0.8 * cores, rate / verify_per_s >= 0.8 * cores ? "MET" : "MISSED");
	printf("ingest.ratio_per_broker_core %8.2f     (accepted/s per core the broker may use / verifications/s/core)\n",
	    rate / verify_per_s / cores);
	printf("ingest.broker_cpu_us_per     %8.1f us  (= %.2f verifications; target <= 1.50)  %s\n", cpu_per,
	    cpu_per / verify_us, cpu_per / verify_us <= 1.5 ? "MET" : "MISSED");
	printf("ingest.per_broker_cpu_second %8.0f /s  (= %.2f x verifications/s/core: the rate if the loop had its core to "
	       "itself)\n",
	    1e6 / cpu_per, 1e6 / cpu_per / verify_per_s);
	printf("ingest.broker_cpu_util       %8.2f     (broker CPU seconds / wall second; the driver used %.2f)\n",
	    (cpu1 - cpu0) / 1e6 / secs, (self1 - self0) / 1e6 / secs);
	printf("ingest.broker_threads        %8.1f us  per alert on the event loop; %.1f us verification threads; "
	       "%.1f us libzmq I/O (CURVE, sockets); %.1f us other\n",
	    (th1.loop - th0.loop) / 1e3 / (double)n, (th1.verify - th0.verify) / 1e3 / (double)n,
	    (th1.zmq_io - th0.zmq_io) / 1e3 / (double)n, (th1.other - th0.other) / 1e3 / (double)n);
	if (journal_cost.with_rows_us[0] > 0) {
		/* The floor under the CPU figure: what verification, the journal and CURVE with the sockets cost alone,
		 * each measured in this run; "the rest" is everything else the loop does (decode, route, the delivery
		 * pass, acknowledgements, handing frames to libzmq).  The journal figure includes SQLite's checkpoints,
		 * which the broker runs on its checkpointer thread, so that thread is not counted again. */
		size_t k = journal_budget_size(rate);
		double io_us = (th1.zmq_io - th0.zmq_io) / 1e3 / (double)n, journal_us = journal_cost.with_rows_us[k];
		double floor_us = verify_us + journal_us + io_us;
		printf("ingest.budget                %8.1f us  = verification %.1f + journal %.1f (%zu/commit, nearest to "
		       "%.0f in a %ld ms pass; of which delivery rows %.1f) + libzmq I/O %.1f: %.2f verifications before "
		       "the rest of the loop (%.1f us)\n",
		    floor_us, verify_us, journal_us, journal_sizes[k], rate * (double)pass_ms() / 1000.0, pass_ms(),
		    journal_us - journal_cost.without_rows_us[k], io_us, floor_us / verify_us, cpu_per - floor_us);
	}
	printf("ingest.loop_thread           %8.2f     on a CPU, %.2f runnable but waiting for a CPU (machine busy), "
	       "%.2f blocked (poll, fsync)\n",
	    (run1 - run0) / 1e9 / secs, (wait1 - wait0) / 1e9 / secs,
	    1.0 - (run1 - run0) / 1e9 / secs - (wait1 - wait0) / 1e9 / secs);
	fflush(stdout);
	region_free(&b);
}

static void
fig_latency(void)
{
	static const double loads[3] = { 0.10, 0.50, 0.90 };
	struct bench b;
	double ceiling = load_ceiling();
	region_make(&b, "latency", CORE, NULL);
	broker_start(&b);
	connect_range(&b, 0, CORE);
	for (int li = 0; li < 3; li++) {
		double rate = loads[li] * ceiling;
		size_t n = (size_t)(rate * 3.0); /* 3 s of traffic */
		if (n < 200)
			n = 200;
		size_t first = make_alerts(&b, n, core_pubs, PUBLISHERS, false);
		uint64_t d0 = b.delivered;
		b.n_lat = 0;
		b.record_lat = true;
		int64_t t0 = now_ns();
		size_t next = first;
		while (next < first + n || b.delivered - d0 < n * 6) {
			int64_t due = next < first + n ? t0 + (int64_t)((double)(next - first) * 1e9 / rate) : INT64_MAX;
			int64_t t = now_ns();
			while (next < first + n && due <= t) {
				publish(&b, next++);
				due = next < first + n ? t0 + (int64_t)((double)(next - first) * 1e9 / rate) : INT64_MAX;
			}
			long wait = due == INT64_MAX ? 100 : (long)((due - now_ns()) / 1000000);
			pump(&b, wait < 0 ? 0 : wait);
			if (now_ns() - t0 > 120000000000LL)
				die("latency run did not finish");
		}
		b.record_lat = false;
		qsort(b.lat, b.n_lat, sizeof *b.lat, cmp_i64);
		double p99 = pct_ms(b.lat, b.n_lat, 99);
		if (li == 1 && runs.n_latency < REPEAT_MAX)
			runs.latency_p99[runs.n_latency++] = p99;
		printf("latency.load_%02.0f              p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms  (%.0f alerts/s paced, %zu "
		       "deliveries)%s\n",
		    loads[li] * 100, pct_ms(b.lat, b.n_lat, 50), p99, (double)b.lat[b.n_lat - 1] / 1e6, rate, b.n_lat,
		    li == 1 ? (p99 < 20 ? "  target p99 < 20 ms MET" : "  target p99 < 20 ms MISSED") : "");
		fflush(stdout);
	}
	region_free(&b);
}

static void
fig_broadcast(void)
{
	struct bench b;
	size_t nn = 30, nb = (size_t)opt.broadcasts;
	double ceiling = load_ceiling();
	double rate = 0.5 * ceiling;
	region_make(&b, "broadcast", nn, NULL);
	b.emerg_recipients = nn - 1;
	broker_start(&b);
	connect_range(&b, 0, nn);
	int bc = b.broadcaster;
	size_t n_normal = (size_t)(rate * ((double)nb * 0.05 + 1.0));
	size_t first = make_alerts(&b, n_normal, core_pubs, PUBLISHERS, false);
	size_t efirst = make_alerts(&b, nb, &bc, 1, true);
	int64_t t0 = now_ns();
	size_t next = first, enext = efirst;
	while (enext < efirst + nb || b.alerts[efirst + nb - 1].done_ns == 0 ||
	    (enext > efirst && b.alerts[enext - 1].done_ns == 0)) {
		int64_t t = now_ns();
		int64_t due = next < first + n_normal ? t0 + (int64_t)((double)(next - first) * 1e9 / rate) : INT64_MAX;
		while (next < first + n_normal && due <= t) {
			publish(&b, next++);
			due = next < first + n_normal ? t0 + (int64_t)((double)(next - first) * 1e9 / rate) : INT64_MAX;
		}
		int64_t edue = t0 + 500000000LL + (int64_t)(enext - efirst) * 50000000LL; /* one every 50 ms */
		if (enext < efirst + nb && edue <= t)
			publish(&b, enext++);
		pump(&b, 0 + (due - now_ns() > 1000000 ? 1 : 0));
		if (now_ns() - t0 > 120000000000LL)
			die("broadcast run did not finish");
	}
	int64_t *v = xcalloc(nb, sizeof *v);
	for (size_t i = 0; i < nb; i++)
		v[i] = b.alerts[efirst + i].done_ns - b.alerts[efirst + i].sent_ns;
	qsort(v, nb, sizeof *v, cmp_i64);
	double p99 = pct_ms(v, nb, 99);
	if (runs.n_broadcast < REPEAT_MAX)
		runs.broadcast_p99[runs.n_broadcast++] = p99;
	printf("broadcast.to_all_29          p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms  (%zu emergencies, 30 nodes, "
	       "normal traffic %.0f /s = 50%%)  target p99 < 50 ms %s\n",
	    pct_ms(v, nb, 50), p99, (double)v[nb - 1] / 1e6, nb, rate, p99 < 50 ? "MET" : "MISSED");
	fflush(stdout);
	free(v);
	region_free(&b);
}

static void
fig_fanout(void)
{
	struct bench b;
	size_t nn = (size_t)opt.fanout_nodes, burst = 20;
	region_make(&b, "fanout", nn, NULL);
	b.emerg_recipients = nn - 1;
	broker_start(&b);
	connect_range(&b, 0, nn);
	int bc = b.broadcaster;
	/* one at a time */
	size_t first = make_alerts(&b, 5 + burst, &bc, 1, true);
	int64_t one = 0;
	for (size_t i = 0; i < 5; i++) {
		publish(&b, first + i);
		while (b.alerts[first + i].done_ns == 0)
			pump(&b, 10);
		one += b.alerts[first + i].done_ns - b.alerts[first + i].sent_ns;
	}
	/* a burst */
	uint64_t d0 = b.delivered;
	int64_t t0 = now_ns();
	for (size_t i = 5; i < 5 + burst; i++)
		publish(&b, first + i);
	while (b.delivered - d0 < burst * (nn - 1))
		pump(&b, 10);
	double secs = (double)(now_ns() - t0) / 1e9;
	printf("fanout.deliveries_per_s      %8.0f /s  (one emergency to %zu nodes: %.1f ms until all have it = %.0f "
	       "deliveries/s; burst of %zu: %.0f /s)\n",
	    (double)(nn - 1) * 5e9 / (double)one, nn - 1, (double)one / 5e6, (double)(nn - 1) * 5e9 / (double)one,
	    burst, (double)(burst * (nn - 1)) / secs);
	fflush(stdout);
	region_free(&b);
}

static void
fig_memory_recovery(void)
{
	struct bench b;
	struct xba_error err = { 0 };
	size_t nn = 200, n = (size_t)opt.journal_n;
	char path[400];
	region_make(&b, "memory", nn, NULL);
	/* Build the journal directly: one real sealed envelope reused with distinct ids, 6 recipients, delivered. */
	struct journal_recipient rcpt[6];
	size_t env_len;
	uint8_t *env = template_envelope(&b, &env_len, rcpt);
	snprintf(path, sizeof path, "%s/journal.db", b.dir);
	int64_t tb = now_ns();
	struct journal *j = journal_open(path, &err);
	if (j == NULL)
		die("journal_open: %s", err.msg);
	char version[65];
	memset(version, 'a', 64);
	version[64] = '\0';
	for (size_t i = 0; i < n;) {
		if (journal_begin(j, &err) != 0)
			die("journal_begin: %s", err.msg);
		for (size_t k = 0; k < 5000 && i < n; k++, i++) {
			char id[64];
			uint64_t seq;
			bench_alert_id(id, '9', i);
			struct journal_entry e = { .alert_id = id, .origin = b.nodes[0].id, .sent_ms = clock_now_ms(),
				.received_ms = clock_now_ms(), .msg_type = 1, .emergency = false, .envelope = env,
				.envelope_len = env_len, .rules_version = version, .recipients = rcpt, .n_recipients = 6 };
			if (journal_append(j, &e, &seq, &err) != 0)
				die("journal_append: %s", err.msg);
		}
		if (journal_commit(j, &err) != 0)
			die("journal_commit: %s", err.msg);
	}
	uint64_t head = journal_head(j);
	if (journal_begin(j, &err) != 0)
		die("journal_begin: %s", err.msg);
	for (int i = 1; i <= 6; i++)
		if (journal_mark_delivered_through(j, b.nodes[i].id, head, clock_now_ms(), &err) != 0)
			die("mark delivered: %s", err.msg);
	if (journal_commit(j, &err) != 0)
		die("journal_commit: %s", err.msg);
	journal_close(j);
	struct stat st;
	stat(path, &st);
	printf("# memory: journal of %zu alerts (6 recipients each, delivered) built directly in %.1f s, %.0f MiB\n", n,
	    (double)(now_ns() - tb) / 1e9, (double)st.st_size / 1048576.0);
	free(env);

	/* Recovery: exec -> first PublishAck OK (Hello and Publish are queued before the broker listens). */
	for (size_t i = 0; i < nn; i++)
		b.nodes[i].resume = head;
	size_t p = make_alerts(&b, 1, core_pubs, 1, false);
	int64_t t0 = now_ns();
	broker_start(&b);
	node_connect(&b, &b.nodes[0]);
	publish(&b, p);
	while (b.acked == 0) {
		pump(&b, 1);
		if (b.refused || now_ns() - t0 > 120000000000LL)
			die("no PublishAck OK after restart (log %s/broker.log)", b.dir);
	}
	double rec_ms = (double)(now_ns() - t0) / 1e6;
	printf("recovery.exec_to_first_ack   %8.1f ms  (journal of %zu alerts)\n", rec_ms, n);
	fflush(stdout);

	/* Memory: 200 connected nodes, then enough traffic (10 000 alerts of ~1 KiB) to fill the broker's envelope
	 * cache (8 MiB, 8192 entries), then VmHWM. */
	connect_range(&b, 1, nn);
	int64_t tacked;
	size_t first = make_alerts(&b, 10000, core_pubs, PUBLISHERS, false);
	pid_t bp = broker_process(&b);
	double cpu0 = proc_cpu_us(bp);
	int64_t tp = now_ns();
	publish_flat_out(&b, first, 10000, 10000 * 6, &tacked);
	double secs = (double)(now_ns() - tp) / 1e9, cpu_per = (proc_cpu_us(bp) - cpu0) / 10000.0;
	/* The ingest figure's journal is new; a broker in service holds a year of alerts (retention_days).  What the
	 * large journal costs per alert (index pages that no longer fit the cache, deeper B-trees) shows here. */
	printf("memory.publish_on_journal    %8.0f /s  (10000 alerts onto a journal of %zu, 200 nodes connected, 6 "
	       "recipients each; broker %.1f us CPU each = %.2f verifications)\n",
	    10000.0 / secs, n, cpu_per, cpu_per * verify_per_s / 1e6);
	long hwm = proc_status_kb(bp, "VmHWM:"), rss = proc_status_kb(bp, "VmRSS:");
	double mib = (double)hwm / 1024.0;
	printf("memory.broker_peak_rss       %8.1f MiB (VmHWM; VmRSS %.1f MiB; %zu nodes connected, journal %zu "
	       "alerts, then 10000 published; target 1,000,000 alerts < 64 MiB)%s\n",
	    mib, (double)rss / 1024.0, nn, n,
	    n >= 1000000 ? (mib < 64 ? "  MET" : "  MISSED") : "  (run --journal 1000000 for the target)");
	fflush(stdout);
	region_free(&b);
}

static void
fig_backlog(void)
{
	struct bench b;
	size_t n = (size_t)opt.backlog_n;
	int64_t tacked;
	region_make(&b, "backlog", CORE, NULL);
	broker_start(&b);
	connect_range(&b, 0, CORE - 1); /* node 6 stays offline */
	size_t first = make_alerts(&b, n, core_pubs, PUBLISHERS, false);
	publish_flat_out(&b, first, n, n * 5, &tacked);
	struct node *late = &b.nodes[CORE - 1];
	pid_t bp = broker_process(&b);
	double cpu0 = proc_cpu_us(bp);
	int64_t t0 = now_ns();
	node_connect(&b, late);
	while (late->delivered < n) {
		pump(&b, 10);
		if (now_ns() - t0 > 300000000000LL)
			die("backlog not drained");
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	double cpu = proc_cpu_us(bp) - cpu0;
	printf("backlog.catch_up_per_s       %8.0f /s  (%zu alerts queued for an offline node, drained in %.2f s; "
	       "broker %.1f us CPU each = %.2f verifications)\n",
	    (double)n / secs, n, secs, cpu / (double)n, cpu / (double)n * verify_per_s / 1e6);
	fflush(stdout);
	region_free(&b);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

enum bound { AT_LEAST, AT_MOST, BELOW }; /* how a run's value must compare with the target's limit */

/* One summary line: median (min-max) of n values, and in how many runs the target held. */
static void
summary_line(const char *name, const double *values, size_t n, const char *unit, const char *target, enum bound bound,
    double limit)
{
	double v[REPEAT_MAX];
	size_t met = 0;
	if (n == 0)
		return;
	memcpy(v, values, n * sizeof *v);
	qsort(v, n, sizeof *v, cmp_double);
	for (size_t i = 0; i < n; i++)
		met += bound == AT_LEAST ? v[i] >= limit : bound == AT_MOST ? v[i] <= limit : v[i] < limit;
	printf("%-32s median %7.2f%s (%.2f-%.2f over %zu runs)  target %s: met in %zu of %zu\n", name,
	    n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, unit, v[0], v[n - 1], n, target, met, n);
}

static void
print_summary(void)
{
	char target[64];
	snprintf(target, sizeof target, ">= %.2f", 0.8 * broker_cores());
	printf("# summary of %ld runs (each against its own calibration)\n", opt.repeat);
	summary_line("summary.ingest.ratio_to_verify_core", runs.ingest_ratio, runs.n_ingest, "", target, AT_LEAST,
	    0.8 * broker_cores());
	summary_line("summary.ingest.cpu_verifications", runs.ingest_verifications, runs.n_ingest, "", "<= 1.50",
	    AT_MOST, 1.5);
	summary_line("summary.latency.load_50.p99", runs.latency_p99, runs.n_latency, " ms", "< 20 ms", BELOW, 20.0);
	summary_line("summary.broadcast.p99", runs.broadcast_p99, runs.n_broadcast, " ms", "< 50 ms", BELOW, 50.0);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "only", required_argument, NULL, 'o' },
		{ "alerts", required_argument, NULL, 'a' },
		{ "journal", required_argument, NULL, 'j' },
		{ "backlog", required_argument, NULL, 'b' },
		{ "broadcasts", required_argument, NULL, 'B' },
		{ "fanout-nodes", required_argument, NULL, 'f' },
		{ "broker", required_argument, NULL, 'x' },
		{ "perf", required_argument, NULL, 'p' },
		{ "keep", no_argument, NULL, 'k' },
		{ "verify-threads", required_argument, NULL, 'v' },
		{ "single-delivers", no_argument, NULL, 's' },
		{ "ceiling", required_argument, NULL, 'c' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "broker-cpus", required_argument, NULL, 'C' },
		{ "ids", required_argument, NULL, 'i' },
		{ "pass-ms", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': opt.only = optarg; break;
		case 'a': opt.alerts = atol(optarg); break;
		case 'j': opt.journal_n = atol(optarg); break;
		case 'b': opt.backlog_n = atol(optarg); break;
		case 'B': opt.broadcasts = atol(optarg); break;
		case 'f': opt.fanout_nodes = atol(optarg); break;
		case 'x': opt.broker = optarg; break;
		case 'p': opt.perf = optarg; break;
		case 'k': opt.keep = true; break;
		case 'v': opt.verify_threads = atol(optarg); break;
		case 's': opt.single_delivers = true; break;
		case 'c': opt.ceiling = atof(optarg); break;
		case 'r': opt.repeat = atol(optarg); break;
		case 'C': opt.broker_cpus = atol(optarg); break;
		case 'i': opt.ids = optarg; break;
		case 'P': opt.pass_ms = atol(optarg); break;
		default:
			fprintf(stderr,
			    "usage: bench_broker [--only calib,journal,ingest,latency,broadcast,fanout,memory,backlog]\n"
			    "  [--alerts N (20000)] [--journal N (100000)] [--backlog N (20000)] [--broadcasts N (60)]\n"
			    "  [--fanout-nodes N (200)] [--broker PATH] [--perf FILE (perf record the broker during "
			    "ingest)] [--keep]\n"
			    "  [--verify-threads N (broker default: one fewer than the online cores)]\n"
			    "  [--single-delivers (nodes do not ask for DeliverBatch frames)]\n"
			    "  [--ceiling ALERTS_PER_S (100%% load for latency and broadcast; default: the ingest rate)]\n"
			    "  [--repeat N (run calib, ingest, latency, broadcast N times, <= 20; print medians)]\n"
			    "  [--broker-cpus N (pin the broker to the last N cores and this driver to the others)]\n"
			    "  [--ids v7|v4|seq (how alert ids are made; v7, time-ordered, as xba-agent does)]\n"
			    "  [--pass-ms N (broker.yaml pass_max_ms, 1-1000; default: the broker's, 5)]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (opt.alerts < 100 || opt.broadcasts < 1 || opt.broadcasts > 100 || opt.fanout_nodes < 31 ||
	    opt.backlog_n < 1 || opt.journal_n < 1 || opt.repeat < 1 || opt.repeat > REPEAT_MAX ||
	    opt.broker_cpus < 0 || (opt.broker_cpus > 0 && opt.broker_cpus >= sysconf(_SC_NPROCESSORS_ONLN)) ||
	    opt.pass_ms < 0 || opt.pass_ms > 1000 ||
	    (strcmp(opt.ids, "v7") != 0 && strcmp(opt.ids, "v4") != 0 && strcmp(opt.ids, "seq") != 0))
		die("option out of range (--broker-cpus must leave the driver at least one core; --ids is v7, v4 or seq; "
		    "--pass-ms is 1-1000)");
	pin_cpus(false);
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	run_tag = (unsigned)rand();
	char host[64] = "";
	gethostname(host, sizeof host - 1);
	time_t now = time(NULL);
	printf("# bench_broker %s on %s, %ld cores online, broker %s, broker may use %d cores (event loop + %d "
	       "verification threads); deliveries %s; alert ids %s; passes of %ld ms; %s\n", strtok(ctime(&now), "\n"),
	    host, sysconf(_SC_NPROCESSORS_ONLN), opt.broker, broker_cores(), broker_cores() - 1,
	    opt.single_delivers ? "one Deliver frame each (--single-delivers)" : "in DeliverBatch frames", opt.ids,
	    pass_ms(),
	    opt.broker_cpus > 0 ? "broker and driver pinned to separate cores (--broker-cpus)"
				: "broker and driver share every core");
	for (long r = 0; r < opt.repeat; r++) {
		if (opt.repeat > 1)
			printf("# run %ld of %ld\n", r + 1, opt.repeat);
		calibrate(); /* always, and again every run: every figure is read against it */
		if (want("journal"))
			fig_journal();
		if (want("ingest"))
			fig_ingest();
		if (want("latency"))
			fig_latency();
		if (want("broadcast"))
			fig_broadcast();
	}
	if (want("fanout"))
		fig_fanout();
	if (want("memory") || want("recovery"))
		fig_memory_recovery();
	if (want("backlog"))
		fig_backlog();
	if (opt.repeat > 1)
		print_summary();
	return 0;
}
