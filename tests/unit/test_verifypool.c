/*
 * test_verifypool.c — the broker's verification threads (broker/verifypool.c): whatever the number of threads and
 * the size of the batch, every job gets exactly the result a single thread computes with envelope_open_message(),
 * in its own slot, and the pool can be run again and again and freed at any time.  Real keys, real signatures:
 * valid alerts, forged signatures, altered alerts and unknown keys are mixed in each batch.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "broker.h"
#include "check.h"
#include "clock.h"
#include "encoding.h"
#include "envelope.h"
#include "keys.h"

#define N_ENVELOPES 200
#define SENT_MS 1795624800000LL /* 2026-11-25T16:40:00Z */

enum kind { VALID, FORGED_SIGNATURE, ALTERED_ALERT, UNKNOWN_KEY, N_KINDS };

struct fixture {
	struct signer ner, stranger;
	struct directory *dir;
	Xba__V1__Envelope *envelopes[N_ENVELOPES];  /* as a Publish frame would carry them */
	char ids[N_ENVELOPES][37];
	struct verify_job expected[N_ENVELOPES];     /* opened one by one on this thread */
};

static struct fixture fixture; /* built once by main; every test reads it */

static Xba__V1__Envelope *
seal(const struct signer *signer, const char *id, enum kind kind)
{
	Xba__V1__Alert a;
	Xba__V1__Info info, *info_list[1] = { &info };
	struct xba_error err = { 0 };
	Xba__V1__Envelope *env;
	uint8_t *bytes;
	size_t len;

	xba__v1__alert__init(&a);
	xba__v1__info__init(&info);
	a.id = (char *)id;
	a.origin = "NER";
	a.author = "duty officer";
	a.sent_ms = SENT_MS;
	a.status = XBA__V1__STATUS__STATUS_ACTUAL;
	a.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ALERT;
	a.category = XBA__V1__CATEGORY__CATEGORY_SMUGGLING;
	a.severity = XBA__V1__SEVERITY__SEVERITY_SEVERE;
	a.urgency = XBA__V1__URGENCY__URGENCY_IMMEDIATE;
	a.certainty = XBA__V1__CERTAINTY__CERTAINTY_OBSERVED;
	a.tlp = XBA__V1__TLP__TLP_AMBER;
	info.language = "fr";
	info.event = "Convoi";
	info.headline = "Convoi signale pres de Tummo";
	a.info = info_list;
	a.n_info = 1;
	if (envelope_seal(signer, &a, &bytes, &len, &err) != 0)
		return NULL;
	env = xba__v1__envelope__unpack(NULL, len, bytes);
	free(bytes);
	if (env == NULL)
		return NULL;
	if (kind == FORGED_SIGNATURE)
		env->signature.data[7] ^= 0x01;
	else if (kind == ALTERED_ALERT)
		env->alert.data[env->alert.len - 1] ^= 0x01; /* inside the headline: still decodes, no longer signed */
	return env;
}

static int
fixture_init(struct fixture *f)
{
	char yaml[2048], pub_z85[41], sec_z85[41], b64[64];
	struct xba_error err = { 0 };

	memset(f, 0, sizeof(*f));
	if (keys_signer_generate(&f->ner, NULL) != 0 || keys_signer_generate(&f->stranger, NULL) != 0)
		return -1;
	zmq_curve_keypair(pub_z85, sec_z85);
	encoding_base64(f->ner.public_raw, 32, b64);
	snprintf(yaml, sizeof(yaml),
	    "region: test\nnodes:\n  - id: NER\n    name: Niger\n    role: member\n    curve_key: \"%s\"\n"
	    "    signing_keys:\n      - public: \"%s\"\n",
	    pub_z85, b64);
	f->dir = directory_load_buffer("test-region.yaml", yaml, strlen(yaml), &err);
	if (f->dir == NULL) {
		fprintf(stderr, "region: %s\n", err.msg);
		return -1;
	}
	for (int i = 0; i < N_ENVELOPES; i++) {
		enum kind kind = (enum kind)(i % N_KINDS);

		snprintf(f->ids[i], sizeof(f->ids[i]), "0b9f6c1e-5f0a-4c7e-9d2a-%012d", i);
		f->envelopes[i] = seal(kind == UNKNOWN_KEY ? &f->stranger : &f->ner, f->ids[i], kind);
		if (f->envelopes[i] == NULL)
			return -1;
		f->expected[i].envelope = f->envelopes[i];
		f->expected[i].now_ms = SENT_MS + 1000;
		f->expected[i].rc = envelope_open_message(f->dir, f->envelopes[i], f->expected[i].now_ms,
		    &f->expected[i].opened, &f->expected[i].err);
	}
	return 0;
}

static void
fixture_free(struct fixture *f)
{
	for (int i = 0; i < N_ENVELOPES; i++) {
		envelope_opened_clear(&f->expected[i].opened);
		if (f->envelopes[i] != NULL)
			xba__v1__envelope__free_unpacked(f->envelopes[i], NULL);
	}
	directory_free(f->dir);
	keys_signer_clear(&f->ner);
	keys_signer_clear(&f->stranger);
}

/* The fixture itself is what the pool is compared with: make sure it holds every kind of result. */
static void
test_fixture_mixes_outcomes(struct check_state *t)
{
	struct fixture *f = &fixture;
	int valid = 0, refused = 0;

	for (int i = 0; i < N_ENVELOPES; i++) {
		if (i % N_KINDS == VALID) {
			CHECK(t, f->expected[i].rc == 0);
			CHECK(t, f->expected[i].opened.alert != NULL && strcmp(f->expected[i].opened.alert->id, f->ids[i]) == 0);
			valid += f->expected[i].rc == 0;
		} else {
			CHECK(t, f->expected[i].rc != 0);
			CHECK(t, f->expected[i].err.msg[0] != '\0');
			refused += f->expected[i].rc != 0;
		}
	}
	CHECK(t, valid == N_ENVELOPES / N_KINDS && refused == N_ENVELOPES - valid);
}

/* Run jobs[from, from + n) through pool (post, then wait); every slot must match what one thread computed. */
static void
check_batch(struct check_state *t, struct fixture *f, struct verify_pool *pool, size_t from, size_t n)
{
	struct verify_job *jobs = calloc(n ? n : 1, sizeof(*jobs));

	for (size_t i = 0; i < n; i++) {
		jobs[i].envelope = f->envelopes[from + i];
		jobs[i].now_ms = f->expected[from + i].now_ms;
		jobs[i].rc = 12345; /* must be overwritten */
	}
	verify_pool_post(pool, f->dir, jobs, n);
	verify_pool_wait(pool);
	for (size_t i = 0; i < n; i++) {
		const struct verify_job *want = &f->expected[from + i];

		CHECK(t, jobs[i].rc == want->rc);
		CHECK(t, strcmp(jobs[i].err.msg, want->err.msg) == 0);
		CHECK(t, (jobs[i].opened.alert == NULL) == (want->opened.alert == NULL));
		if (jobs[i].opened.alert != NULL && want->opened.alert != NULL)
			CHECK(t, strcmp(jobs[i].opened.alert->id, want->opened.alert->id) == 0);
		if (want->rc == 0)
			CHECK(t, jobs[i].opened.signer != NULL && strcmp(jobs[i].opened.signer->id, "NER") == 0);
		envelope_opened_clear(&jobs[i].opened);
	}
	free(jobs);
}

static void
test_pool_sizes_and_batches(struct check_state *t)
{
	struct fixture *f = &fixture;
	static const unsigned threads[] = { 0, 1, 3 };
	static const size_t batches[][2] = { { 0, 0 }, { 0, 1 }, { 5, 2 }, { 10, 63 }, { 0, N_ENVELOPES }, { 3, 64 } };
	struct xba_error err = { 0 };

	for (size_t ti = 0; ti < sizeof(threads) / sizeof(threads[0]); ti++) {
		struct verify_pool *pool = verify_pool_new(threads[ti], &err);

		CHECK(t, pool != NULL);
		if (pool == NULL)
			continue;
		CHECK(t, verify_pool_threads(pool) == threads[ti]);
		/* The same pool, many batches in a row: no batch is run twice or lost between generations. */
		for (int round = 0; round < 20; round++)
			for (size_t bi = 0; bi < sizeof(batches) / sizeof(batches[0]); bi++)
				check_batch(t, f, pool, batches[bi][0], batches[bi][1]);
		verify_pool_free(pool);
	}
}

/* post returns at once and wait completes the batch; without threads, nothing runs before wait (the caller does
 * it all there).  Alternating two batches is what the event loop does. */
static void
test_post_then_wait(struct check_state *t)
{
	struct fixture *f = &fixture;
	static const unsigned threads[] = { 0, 1, 2 };
	struct xba_error err = { 0 };

	for (size_t ti = 0; ti < sizeof(threads) / sizeof(threads[0]); ti++) {
		struct verify_pool *pool = verify_pool_new(threads[ti], &err);
		struct verify_job jobs[2][40];

		CHECK(t, pool != NULL);
		if (pool == NULL)
			continue;
		for (int round = 0; round < 10; round++) {
			struct verify_job *batch = jobs[round % 2];
			size_t from = (size_t)(round * 13) % (N_ENVELOPES - 40);

			memset(batch, 0, sizeof(jobs[0]));
			for (size_t i = 0; i < 40; i++) {
				batch[i].envelope = f->envelopes[from + i];
				batch[i].now_ms = f->expected[from + i].now_ms;
				batch[i].rc = 12345;
			}
			verify_pool_post(pool, f->dir, batch, 40);
			if (threads[ti] == 0)
				for (size_t i = 0; i < 40; i++)
					CHECK(t, batch[i].rc == 12345);
			verify_pool_wait(pool);
			for (size_t i = 0; i < 40; i++) {
				CHECK(t, batch[i].rc == f->expected[from + i].rc);
				CHECK(t, strcmp(batch[i].err.msg, f->expected[from + i].err.msg) == 0);
				envelope_opened_clear(&batch[i].opened);
			}
		}
		verify_pool_free(pool);
	}
}

/* A pool that never ran a batch, and one that just finished, both stop cleanly. */
static void
test_free_idle(struct check_state *t)
{
	struct fixture *f = &fixture;
	struct xba_error err = { 0 };
	struct verify_pool *idle = verify_pool_new(2, &err), *used = verify_pool_new(2, &err);

	CHECK(t, idle != NULL && used != NULL);
	if (used != NULL)
		check_batch(t, f, used, 0, 16);
	verify_pool_free(idle);
	verify_pool_free(used);
	verify_pool_free(NULL);
}

int
main(void)
{
	struct check_state state = { 0 };

	if (fixture_init(&fixture) != 0) {
		fprintf(stderr, "cannot build the test fixture\n");
		return 1;
	}
	RUN(&state, test_fixture_mixes_outcomes);
	RUN(&state, test_pool_sizes_and_batches);
	RUN(&state, test_post_then_wait);
	RUN(&state, test_free_idle);
	fixture_free(&fixture);
	return check_finish(&state);
}
