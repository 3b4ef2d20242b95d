/*
 * test_envelope.c — sealing and opening signed alerts (lib/envelope.c) against a real region directory: the
 * golden vector in tests/vectors/ (so any change to the signing input or the alert encoding is caught), and each
 * way a signed alert can be forged, altered or signed by the wrong key, each with its own error.
 *
 * `test_envelope TESTS_DIR --write-vectors` rewrites the golden files; do that only for a deliberate, documented
 * change of the wire contract (docs/protocol.md, "Version policy").
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "check.h"
#include "clock.h"
#include "directory.h"
#include "encoding.h"
#include "envelope.h"
#include "keys.h"

static const char *tests_dir = ".";

#define GOLDEN_SEED_HEX "58424120676f6c64656e2074657374206b6579202d206e65766572207573652e"
#define GOLDEN_SENT_MS 1795624800000LL /* 2026-11-25T16:40:00Z */
#define HOUR_MS 3600000LL

/* The golden alert: every kind of field set, Arabic and French text, so the vector covers the whole encoding. */
static void
golden_alert(Xba__V1__Alert *a, Xba__V1__Info *info, Xba__V1__Info **info_list, Xba__V1__Area *area,
    Xba__V1__Area **area_list, Xba__V1__Polygon *poly, Xba__V1__Polygon **poly_list, Xba__V1__Point *pts,
    Xba__V1__Point **pt_list, Xba__V1__Parameter *param, Xba__V1__Parameter **param_list, char **addressees)
{
	static const double coords[5][2] = { { 23.0, 13.5 }, { 23.0, 14.8 }, { 22.2, 14.8 }, { 22.2, 13.5 },
		{ 23.0, 13.5 } };

	xba__v1__alert__init(a);
	a->id = "7c0a4c1e-2f3b-4d5a-8e6f-0a1b2c3d4e5f";
	a->origin = "NER";
	a->author = "officer.issoufou";
	a->sent_ms = GOLDEN_SENT_MS;
	a->status = XBA__V1__STATUS__STATUS_ACTUAL;
	a->msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ALERT;
	a->category = XBA__V1__CATEGORY__CATEGORY_SMUGGLING;
	a->severity = XBA__V1__SEVERITY__SEVERITY_SEVERE;
	a->urgency = XBA__V1__URGENCY__URGENCY_IMMEDIATE;
	a->certainty = XBA__V1__CERTAINTY__CERTAINTY_LIKELY;
	a->tlp = XBA__V1__TLP__TLP_AMBER;
	a->expires_ms = GOLDEN_SENT_MS + 24 * HOUR_MS;
	a->incident = "NER-2026-0142";
	addressees[0] = "LBY";
	addressees[1] = "TCD";
	a->addressees = addressees;
	a->n_addressees = 2;
	for (int i = 0; i < 2; i++)
		xba__v1__info__init(&info[i]);
	info[0].language = "fr";
	info[0].event = "Convoi de passeurs";
	info[0].headline = "Convoi de passeurs signal\xc3\xa9 pr\xc3\xa8s de la fronti\xc3\xa8re Niger\xe2\x80\x93Libye";
	info[0].description = "Quatre v\xc3\xa9hicules tout-terrain vers le nord, environ 45 personnes.";
	info[0].instruction = "Renforcer la surveillance au poste de Tummo.";
	info[1].language = "ar";
	info[1].event = "\xd9\x82\xd8\xa7\xd9\x81\xd9\x84\xd8\xa9 \xd9\x85\xd9\x87\xd8\xb1\xd8\xa8\xd9\x8a\xd9\x86";
	info[1].headline = "\xd9\x82\xd8\xa7\xd9\x81\xd9\x84\xd8\xa9 \xd9\x85\xd9\x87\xd8\xb1\xd8\xa8\xd9\x8a\xd9\x86 "
			   "\xd9\x82\xd8\xb1\xd8\xa8 \xd8\xa7\xd9\x84\xd8\xad\xd8\xaf\xd9\x88\xd8\xaf";
	info_list[0] = &info[0];
	info_list[1] = &info[1];
	a->info = info_list;
	a->n_info = 2;
	for (int i = 0; i < 5; i++) {
		xba__v1__point__init(&pts[i]);
		pts[i].lat = coords[i][0];
		pts[i].lon = coords[i][1];
		pt_list[i] = &pts[i];
	}
	xba__v1__polygon__init(poly);
	poly->points = pt_list;
	poly->n_points = 5;
	poly_list[0] = poly;
	xba__v1__area__init(area);
	area->description = "Tummo crossing, Niger\xe2\x80\x93Libya border";
	area->polygons = poly_list;
	area->n_polygons = 1;
	area_list[0] = area;
	a->areas = area_list;
	a->n_areas = 1;
	xba__v1__parameter__init(param);
	param->name = "people_count";
	param->value = "45";
	param_list[0] = param;
	a->parameters = param_list;
	a->n_parameters = 1;
}

/* Storage for one golden alert, so tests can alter a copy. */
struct golden {
	Xba__V1__Alert alert;
	Xba__V1__Info info[2], *info_list[2];
	Xba__V1__Area area, *area_list[1];
	Xba__V1__Polygon poly, *poly_list[1];
	Xba__V1__Point pts[5], *pt_list[5];
	Xba__V1__Parameter param, *param_list[1];
	char *addressees[2];
};

static void
golden_init(struct golden *g)
{
	golden_alert(&g->alert, g->info, g->info_list, &g->area, g->area_list, &g->poly, g->poly_list, g->pts,
	    g->pt_list, &g->param, g->param_list, g->addressees);
}

static int
signer_from_seed_hex(const char *seed_hex, struct signer *s)
{
	uint8_t seed[32];
	size_t len = 32;

	memset(s, 0, sizeof(*s));
	if (encoding_unhex(seed_hex, seed, 32) != 0)
		return -1;
	s->private_key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	if (s->private_key == NULL || EVP_PKEY_get_raw_public_key(s->private_key, s->public_raw, &len) != 1)
		return -1;
	keys_key_id(s->public_raw, s->key_id);
	return 0;
}

/* Test keys: NER golden, LBY, DZA (revoked 1 h after the golden sent time), MLI (valid only in 2020). */
struct fixture {
	struct signer ner, lby, dza, mli;
	struct directory *dir;
};

static void
append_node(char *yaml, size_t size, const char *id, const struct signer *s, const char *extra)
{
	char pub_z85[41], sec_z85[41], b64[64];
	size_t used = strlen(yaml);

	zmq_curve_keypair(pub_z85, sec_z85);
	encoding_base64(s->public_raw, 32, b64);
	snprintf(yaml + used, size - used,
	    "  - id: %s\n    name: %s\n    role: member\n    curve_key: \"%s\"\n    signing_keys:\n"
	    "      - public: \"%s\"\n%s",
	    id, id, pub_z85, b64, extra);
}

static int
fixture_init(struct fixture *f, struct xba_error *err)
{
	char yaml[8192] = "region: test\nnodes:\n";

	if (signer_from_seed_hex(GOLDEN_SEED_HEX, &f->ner) || keys_signer_generate(&f->lby, err) ||
	    keys_signer_generate(&f->dza, err) || keys_signer_generate(&f->mli, err))
		return -1;
	append_node(yaml, sizeof(yaml), "NER", &f->ner, "");
	append_node(yaml, sizeof(yaml), "LBY", &f->lby, "");
	append_node(yaml, sizeof(yaml), "DZA", &f->dza, "        revoked_at: 2026-11-25T17:40:00Z\n");
	append_node(yaml, sizeof(yaml), "MLI", &f->mli,
	    "        valid_from: 2020-01-01T00:00:00Z\n        valid_until: 2021-01-01T00:00:00Z\n");
	f->dir = directory_load_buffer("test-region.yaml", yaml, strlen(yaml), err);
	return f->dir ? 0 : -1;
}

static void
fixture_free(struct fixture *f)
{
	keys_signer_clear(&f->ner);
	keys_signer_clear(&f->lby);
	keys_signer_clear(&f->dza);
	keys_signer_clear(&f->mli);
	directory_free(f->dir);
}

static int
read_vector(const char *name, uint8_t **out, size_t *len)
{
	char path[1024];
	FILE *f;
	long size;

	snprintf(path, sizeof(path), "%s/vectors/%s", tests_dir, name);
	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	*out = malloc((size_t)size + 1);
	*len = fread(*out, 1, (size_t)size, f);
	(*out)[*len] = 0;
	fclose(f);
	return 0;
}

static int
write_vector(const char *name, const void *data, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/vectors/%s", tests_dir, name);
	if ((f = fopen(path, "wb")) == NULL || fwrite(data, 1, len, f) != len) {
		perror(path);
		return -1;
	}
	return fclose(f);
}

/* Seal the golden alert: the result must be byte-identical to the checked-in vectors. */
static void
test_golden_vector(struct check_state *t)
{
	struct xba_error err = { 0 };
	struct signer ner;
	struct golden g;
	uint8_t *alert_bytes, *env_bytes, *want_alert, *want_env, *want_sig_hex, want_sig[64];
	size_t alert_len, env_len, want_alert_len, want_env_len, want_sig_len;
	Xba__V1__Envelope *env;

	golden_init(&g);
	CHECK_CODE(t, signer_from_seed_hex(GOLDEN_SEED_HEX, &ner), 0);
	CHECK_CODE(t, alert_encode(&g.alert, &alert_bytes, &alert_len, &err), 0);
	CHECK_CODE(t, envelope_seal(&ner, &g.alert, &env_bytes, &env_len, &err), 0);
	if (read_vector("golden-alert.bin", &want_alert, &want_alert_len) != 0 ||
	    read_vector("golden-envelope.bin", &want_env, &want_env_len) != 0 ||
	    read_vector("golden-signature.hex", &want_sig_hex, &want_sig_len) != 0) {
		fprintf(stderr, "golden vectors missing under %s/vectors\n", tests_dir);
		CHECK(t, 0);
		return;
	}
	CHECK(t, alert_len == want_alert_len && memcmp(alert_bytes, want_alert, alert_len) == 0);
	CHECK(t, env_len == want_env_len && memcmp(env_bytes, want_env, env_len) == 0);
	want_sig_hex[strcspn((char *)want_sig_hex, "\r\n")] = '\0';
	CHECK_CODE(t, encoding_unhex((char *)want_sig_hex, want_sig, 64), 0);
	env = xba__v1__envelope__unpack(NULL, env_len, env_bytes);
	CHECK(t, env != NULL && env->signature.len == 64 && memcmp(env->signature.data, want_sig, 64) == 0);
	CHECK(t, env != NULL && env->alert.len == alert_len && memcmp(env->alert.data, alert_bytes, alert_len) == 0);
	xba__v1__envelope__free_unpacked(env, NULL);
	free(alert_bytes);
	free(env_bytes);
	free(want_alert);
	free(want_env);
	free(want_sig_hex);
	keys_signer_clear(&ner);
}

static void
test_open_golden(struct check_state *t)
{
	struct xba_error err = { 0 };
	struct envelope_opened opened;
	struct fixture f;
	uint8_t *env_bytes;
	size_t env_len;

	if (fixture_init(&f, &err) != 0) {
		fprintf(stderr, "fixture: %s\n", err.msg);
		CHECK(t, 0);
		return;
	}
	CHECK_CODE(t, read_vector("golden-envelope.bin", &env_bytes, &env_len), 0);
	CHECK_CODE(t, envelope_open(f.dir, env_bytes, env_len, GOLDEN_SENT_MS + HOUR_MS, &opened, &err), 0);
	CHECK(t, opened.signer != NULL && strcmp(opened.signer->id, "NER") == 0);
	CHECK(t, opened.alert != NULL && strcmp(opened.alert->id, "7c0a4c1e-2f3b-4d5a-8e6f-0a1b2c3d4e5f") == 0);
	CHECK(t, opened.alert != NULL && opened.alert->n_info == 2 && strcmp(opened.alert->info[1]->language, "ar") == 0);
	envelope_opened_clear(&opened);
	free(env_bytes);
	fixture_free(&f);
}

/* Seal `alert` with `s`, then flip one bit at byte offset `at` of the chosen part, repack, and open. */
enum part { PART_NONE, PART_ALERT, PART_KEY_ID, PART_SIGNATURE };

static int
seal_tamper_open(struct fixture *f, const struct signer *s, const Xba__V1__Alert *alert, enum part part, size_t at,
    int64_t now, struct xba_error *err)
{
	struct envelope_opened opened;
	uint8_t *bytes, *repacked;
	size_t len;
	Xba__V1__Envelope *env;
	int rc;

	if (envelope_seal(s, alert, &bytes, &len, err) != 0)
		return -1000;
	env = xba__v1__envelope__unpack(NULL, len, bytes);
	free(bytes);
	if (part == PART_ALERT)
		env->alert.data[at % env->alert.len] ^= 0x04;
	else if (part == PART_KEY_ID)
		env->key_id.data[at % env->key_id.len] ^= 0x01;
	else if (part == PART_SIGNATURE)
		env->signature.data[at % env->signature.len] ^= 0x80;
	len = xba__v1__envelope__get_packed_size(env);
	repacked = malloc(len);
	xba__v1__envelope__pack(env, repacked);
	xba__v1__envelope__free_unpacked(env, NULL);
	rc = envelope_open(f->dir, repacked, len, now, &opened, err);
	envelope_opened_clear(&opened);
	free(repacked);
	return rc;
}

static void
test_tampering(struct check_state *t)
{
	struct xba_error err = { 0 };
	struct fixture f;
	struct golden g;
	int64_t now = GOLDEN_SENT_MS + 60000;

	if (fixture_init(&f, &err) != 0) {
		CHECK(t, 0);
		return;
	}
	golden_init(&g);
	CHECK_CODE(t, seal_tamper_open(&f, &f.ner, &g.alert, PART_NONE, 0, now, &err), 0);
	/* A flipped bit anywhere in the alert bytes: the signature no longer holds, whatever the bit meant. */
	for (size_t at = 0; at < 400; at += 37) {
		CHECK_CODE(t, seal_tamper_open(&f, &f.ner, &g.alert, PART_ALERT, at, now, &err), XBA_ESIG);
		CHECK_CONTAINS(t, err.msg, "envelope.signature");
	}
	for (size_t at = 0; at < 64; at += 9)
		CHECK_CODE(t, seal_tamper_open(&f, &f.ner, &g.alert, PART_SIGNATURE, at, now, &err), XBA_ESIG);
	for (size_t at = 0; at < 32; at += 5) {
		CHECK_CODE(t, seal_tamper_open(&f, &f.ner, &g.alert, PART_KEY_ID, at, now, &err), XBA_EKEYUNKNOWN);
		CHECK_CONTAINS(t, err.msg, "not in the directory");
	}
	fixture_free(&f);
}

static void
test_wrong_signer(struct check_state *t)
{
	struct xba_error err = { 0 };
	struct fixture f;
	struct golden g;
	struct signer stranger;

	if (fixture_init(&f, &err) != 0) {
		CHECK(t, 0);
		return;
	}
	golden_init(&g);
	/* LBY signs an alert claiming to come from NER: the signature is LBY's and verifies, the origin does not. */
	CHECK_CODE(t, seal_tamper_open(&f, &f.lby, &g.alert, PART_NONE, 0, GOLDEN_SENT_MS, &err), XBA_EWRONGSIGNER);
	CHECK_CONTAINS(t, err.msg, "LBY");
	CHECK_CONTAINS(t, err.msg, "alert.origin");
	/* A key the directory does not know. */
	CHECK_CODE(t, keys_signer_generate(&stranger, NULL), 0);
	CHECK_CODE(t, seal_tamper_open(&f, &stranger, &g.alert, PART_NONE, 0, GOLDEN_SENT_MS, &err), XBA_EKEYUNKNOWN);
	keys_signer_clear(&stranger);
	fixture_free(&f);
}

static void
test_key_revoked_and_validity(struct check_state *t)
{
	struct xba_error err = { 0 };
	struct fixture f;
	struct golden g;

	if (fixture_init(&f, &err) != 0) {
		CHECK(t, 0);
		return;
	}
	golden_init(&g);
	g.alert.origin = "DZA";
	/* DZA's key is revoked at sent + 1 h: good before, refused from the revocation time on. */
	CHECK_CODE(t, seal_tamper_open(&f, &f.dza, &g.alert, PART_NONE, 0, GOLDEN_SENT_MS + HOUR_MS - 1, &err), 0);
	CHECK_CODE(t, seal_tamper_open(&f, &f.dza, &g.alert, PART_NONE, 0, GOLDEN_SENT_MS + HOUR_MS, &err),
	    XBA_EKEYREVOKED);
	CHECK_CONTAINS(t, err.msg, "DZA");
	/* MLI's key was valid in 2020 only. */
	g.alert.origin = "MLI";
	CHECK_CODE(t, seal_tamper_open(&f, &f.mli, &g.alert, PART_NONE, 0, GOLDEN_SENT_MS, &err), XBA_EKEYVALIDITY);
	CHECK_CONTAINS(t, err.msg, "MLI");
	fixture_free(&f);
}

static void
test_malformed_envelopes(struct check_state *t)
{
	struct xba_error err = { 0 };
	struct envelope_opened opened;
	struct fixture f;
	struct golden g;
	uint8_t *bytes, garbage[64];
	size_t len;

	if (fixture_init(&f, &err) != 0) {
		CHECK(t, 0);
		return;
	}
	golden_init(&g);
	CHECK_CODE(t, envelope_seal(&f.ner, &g.alert, &bytes, &len, &err), 0);
	/* Truncated at every length: never a crash, never accepted. */
	for (size_t cut = 0; cut < len; cut += 13) {
		int rc = envelope_open(f.dir, bytes, cut, GOLDEN_SENT_MS, &opened, &err);

		CHECK(t, rc != 0);
		envelope_opened_clear(&opened);
	}
	CHECK_CODE(t, envelope_open(f.dir, bytes, 5, GOLDEN_SENT_MS, &opened, &err), XBA_EDECODE);
	envelope_opened_clear(&opened);
	memset(garbage, 0xff, sizeof(garbage));
	CHECK_CODE(t, envelope_open(f.dir, garbage, sizeof(garbage), GOLDEN_SENT_MS, &opened, &err), XBA_EDECODE);
	envelope_opened_clear(&opened);
	CHECK_CODE(t, envelope_open(f.dir, bytes, ENVELOPE_MAX_BYTES + 1, GOLDEN_SENT_MS, &opened, &err), XBA_ETOOBIG);
	envelope_opened_clear(&opened);
	free(bytes);

	/* A valid signature over bytes that are not a valid alert is still refused, after verification. */
	{
		Xba__V1__Envelope env = XBA__V1__ENVELOPE__INIT;
		uint8_t not_alert[] = { 0x0a, 0x03, 'a', 'b', 'c' }, *input, sig[64], *packed;
		size_t input_len, packed_len;

		envelope_signing_input(not_alert, sizeof(not_alert), &input, &input_len);
		CHECK_CODE(t, keys_sign(&f.ner, input, input_len, sig, &err), 0);
		free(input);
		env.alert.data = not_alert;
		env.alert.len = sizeof(not_alert);
		env.key_id.data = f.ner.key_id;
		env.key_id.len = 32;
		env.signature.data = sig;
		env.signature.len = 64;
		packed_len = xba__v1__envelope__get_packed_size(&env);
		packed = malloc(packed_len);
		xba__v1__envelope__pack(&env, packed);
		CHECK_CODE(t, envelope_open(f.dir, packed, packed_len, GOLDEN_SENT_MS, &opened, &err), XBA_ESYNTAX);
		envelope_opened_clear(&opened);
		CHECK_CONTAINS(t, err.msg, "id");
		env.key_id.len = 31;
		xba__v1__envelope__pack(&env, packed);
		CHECK_CODE(t, envelope_open(f.dir, packed, packed_len - 1, GOLDEN_SENT_MS, &opened, &err), XBA_EDECODE);
		envelope_opened_clear(&opened);
		CHECK_CONTAINS(t, err.msg, "envelope.key_id");
		free(packed);
	}
	fixture_free(&f);
}

static int
write_vectors(void)
{
	struct xba_error err = { 0 };
	struct signer ner;
	struct golden g;
	uint8_t *alert_bytes, *env_bytes;
	size_t alert_len, env_len;
	char hex[200];
	Xba__V1__Envelope *env;

	golden_init(&g);
	if (signer_from_seed_hex(GOLDEN_SEED_HEX, &ner) != 0 ||
	    alert_encode(&g.alert, &alert_bytes, &alert_len, &err) != 0 ||
	    envelope_seal(&ner, &g.alert, &env_bytes, &env_len, &err) != 0) {
		fprintf(stderr, "cannot build the golden vector: %s\n", err.msg);
		return 1;
	}
	env = xba__v1__envelope__unpack(NULL, env_len, env_bytes);
	snprintf(hex, sizeof(hex), "%s\n", GOLDEN_SEED_HEX);
	if (write_vector("golden-key.hex", hex, strlen(hex)) != 0)
		return 1;
	encoding_hex(ner.public_raw, 32, hex);
	strcat(hex, "\n");
	if (write_vector("golden-public.hex", hex, strlen(hex)) != 0)
		return 1;
	encoding_hex(env->signature.data, 64, hex);
	strcat(hex, "\n");
	if (write_vector("golden-signature.hex", hex, strlen(hex)) != 0 ||
	    write_vector("golden-alert.bin", alert_bytes, alert_len) != 0 ||
	    write_vector("golden-envelope.bin", env_bytes, env_len) != 0)
		return 1;
	printf("golden vectors written under %s/vectors\n", tests_dir);
	return 0;
}

/*
 * An envelope padded with a field outside the signature (unknown to Envelope): the signature still holds, so only
 * the size limit stands between it and the journal.  Both ways of opening refuse it past ENVELOPE_MAX_BYTES and
 * accept the same envelope padded below it: the broker and the agents (envelope_open_message, on a Frame's
 * envelope) judge exactly as `xba verify` (envelope_open, on bytes).
 */
static void
test_padded_envelope(struct check_state *t)
{
	static uint8_t padded[ENVELOPE_MAX_BYTES + 4096];
	struct xba_error err = { 0 };
	struct envelope_opened opened;
	struct fixture f;
	struct golden g;
	uint8_t *bytes;
	size_t len;

	if (fixture_init(&f, &err) != 0) {
		CHECK(t, 0);
		return;
	}
	golden_init(&g);
	CHECK_CODE(t, envelope_seal(&f.ner, &g.alert, &bytes, &len, &err), 0);
	for (int over = 0; over <= 1; over++) {
		/* Field 15, length-delimited, with a three-byte length: the whole envelope ends 1 byte over or at the limit. */
		size_t total = ENVELOPE_MAX_BYTES + (size_t)over, pad = total - len - 4;
		Xba__V1__Envelope *env;

		memcpy(padded, bytes, len);
		padded[len] = (15 << 3) | 2;
		padded[len + 1] = (uint8_t)(0x80 | (pad & 0x7f));
		padded[len + 2] = (uint8_t)(0x80 | ((pad >> 7) & 0x7f));
		padded[len + 3] = (uint8_t)(pad >> 14);
		memset(padded + len + 4, 'j', pad);
		env = xba__v1__envelope__unpack(NULL, total, padded);
		CHECK(t, env != NULL && xba__v1__envelope__get_packed_size(env) == total);
		if (env == NULL)
			continue;
		CHECK_CODE(t, envelope_open_message(f.dir, env, GOLDEN_SENT_MS, &opened, &err), over ? XBA_ETOOBIG : 0);
		envelope_opened_clear(&opened);
		CHECK_CODE(t, envelope_open(f.dir, padded, total, GOLDEN_SENT_MS, &opened, &err), over ? XBA_ETOOBIG : 0);
		if (over)
			CHECK_CONTAINS(t, err.msg, "at most 65792");
		envelope_opened_clear(&opened);
		xba__v1__envelope__free_unpacked(env, NULL);
	}
	free(bytes);
	fixture_free(&f);
}

/* The id an unverified envelope claims: what the broker holds an ordered session behind when it refuses a publish
 * before decoding it (rate limit, unknown key), and what an agent names a quarantined delivery by. */
static void
test_claimed_id(struct check_state *t)
{
	struct xba_error err = { 0 };
	Xba__V1__Envelope *env;
	struct fixture f;
	struct golden g;
	char id[XBA_UUID_LEN + 1], origin[XBA_NODE_ID_MAX + 1];
	uint8_t *bytes;
	size_t len;

	if (fixture_init(&f, &err) != 0) {
		CHECK(t, 0);
		return;
	}
	golden_init(&g);
	CHECK_CODE(t, envelope_seal(&f.ner, &g.alert, &bytes, &len, &err), 0);
	env = xba__v1__envelope__unpack(NULL, len, bytes);
	CHECK(t, env != NULL);
	if (env != NULL) {
		env->signature.data[0] ^= 1; /* no signature is checked */
		envelope_claimed_id(env, id);
		CHECK(t, strcmp(id, g.alert.id) == 0);
		envelope_claimed(env, id, origin);
		CHECK(t, strcmp(id, g.alert.id) == 0 && strcmp(origin, g.alert.origin) == 0);
		env->alert.len = 3; /* truncated alert bytes: no id, no origin */
		envelope_claimed(env, id, origin);
		CHECK(t, id[0] == '\0' && origin[0] == '\0');
		env->alert.len = 0;
		envelope_claimed_id(env, id);
		CHECK(t, id[0] == '\0');
		xba__v1__envelope__free_unpacked(env, NULL);
	}
	envelope_claimed_id(NULL, id);
	CHECK(t, id[0] == '\0');
	free(bytes);
	fixture_free(&f);
}

int
main(int argc, char **argv)
{
	struct check_state t = { 0 };

	if (argc > 1)
		tests_dir = argv[1];
	if (argc > 2 && strcmp(argv[2], "--write-vectors") == 0)
		return write_vectors();
	RUN(&t, test_golden_vector);
	RUN(&t, test_open_golden);
	RUN(&t, test_tampering);
	RUN(&t, test_wrong_signer);
	RUN(&t, test_key_revoked_and_validity);
	RUN(&t, test_malformed_envelopes);
	RUN(&t, test_padded_envelope);
	RUN(&t, test_claimed_id);
	return check_finish(&t);
}
