/*
 * test_keys.c — key files and signing (lib/keys.c): what keygen writes, what the agent and broker load at
 * start-up, and the refusal of a private key others can read.
 */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "keys.h"
#include "sigverify.h"

static char workdir[256];

static const char *
path_of(const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", workdir, name);
	return path;
}

static void
write_text(const char *name, const char *text, mode_t mode)
{
	FILE *f = fopen(path_of(name), "w");

	fputs(text, f);
	fclose(f);
	chmod(path_of(name), mode);
}

static mode_t
mode_of(const char *name)
{
	struct stat st;

	if (stat(path_of(name), &st) != 0)
		return 0;
	return st.st_mode & 07777;
}

static void
test_generate_and_load(struct check_state *t)
{
	struct xba_error err = { 0 };
	struct signer gen, loaded;
	struct curve_identity curve, curve_loaded;
	char pub_z85[41];
	uint8_t pub_raw[32], id[32];

	CHECK_CODE(t, keys_generate("NER", workdir, &gen, &curve, &err), 0);
	CHECK(t, mode_of("NER.sign.key") == 0600);
	CHECK(t, mode_of("NER.curve.key") == 0600);
	CHECK(t, mode_of("NER.sign.pub") == 0644);
	CHECK(t, mode_of("NER.curve.pub") == 0644);

	CHECK_CODE(t, keys_load_signer(path_of("NER.sign.key"), &loaded, &err), 0);
	CHECK(t, memcmp(loaded.public_raw, gen.public_raw, 32) == 0);
	SHA256(gen.public_raw, 32, id);
	CHECK(t, memcmp(loaded.key_id, id, 32) == 0);
	CHECK_CODE(t, keys_load_public(path_of("NER.sign.pub"), pub_raw, &err), 0);
	CHECK(t, memcmp(pub_raw, gen.public_raw, 32) == 0);
	keys_signer_clear(&loaded);

	CHECK_CODE(t, keys_load_curve(path_of("NER.curve.key"), &curve_loaded, &err), 0);
	CHECK(t, strcmp(curve_loaded.public_z85, curve.public_z85) == 0);
	CHECK_CODE(t, keys_load_curve_public(path_of("NER.curve.pub"), pub_z85, &err), 0);
	CHECK(t, strcmp(pub_z85, curve.public_z85) == 0);
	/* The public half given as the secret: named as such (any 32 bytes would pass for a secret key). */
	CHECK_CODE(t, keys_load_curve(path_of("NER.curve.pub"), &curve_loaded, &err), XBA_EKEY);
	CHECK_CONTAINS(t, err.msg, "a public key file (.pub) where the secret key is needed");

	/* keygen never overwrites a key. */
	CHECK_CODE(t, keys_generate("NER", workdir, NULL, NULL, &err), XBA_EIO);
	CHECK_CONTAINS(t, err.msg, "never overwrites");
	CHECK_CODE(t, keys_load_signer(path_of("NER.sign.key"), &loaded, &err), 0); /* the old key is intact */
	CHECK(t, memcmp(loaded.public_raw, gen.public_raw, 32) == 0);
	keys_signer_clear(&loaded);
	keys_signer_clear(&gen);
}

static void
test_private_key_permissions(struct check_state *t)
{
	struct xba_error err = { 0 };
	struct signer s;
	struct curve_identity c;

	CHECK_CODE(t, keys_generate("LBY", workdir, NULL, NULL, &err), 0);
	chmod(path_of("LBY.sign.key"), 0644);
	CHECK_CODE(t, keys_load_signer(path_of("LBY.sign.key"), &s, &err), XBA_EKEYPERM);
	CHECK_CONTAINS(t, err.msg, "LBY.sign.key");
	CHECK_CONTAINS(t, err.msg, "0644");
	CHECK_CONTAINS(t, err.msg, "chmod 600");
	chmod(path_of("LBY.sign.key"), 0640);
	CHECK_CODE(t, keys_load_signer(path_of("LBY.sign.key"), &s, &err), XBA_EKEYPERM);
	chmod(path_of("LBY.sign.key"), 0604);
	CHECK_CODE(t, keys_load_signer(path_of("LBY.sign.key"), &s, &err), XBA_EKEYPERM);
	chmod(path_of("LBY.curve.key"), 0666);
	CHECK_CODE(t, keys_load_curve(path_of("LBY.curve.key"), &c, &err), XBA_EKEYPERM);
	chmod(path_of("LBY.sign.key"), 0400);
	CHECK_CODE(t, keys_load_signer(path_of("LBY.sign.key"), &s, &err), 0);
	keys_signer_clear(&s);
}

static void
test_bad_key_files(struct check_state *t)
{
	struct xba_error err = { 0 };
	struct signer s;
	struct curve_identity c;
	uint8_t raw[32];
	char z85[41];

	CHECK_CODE(t, keys_load_signer(path_of("missing.key"), &s, &err), XBA_EIO);
	CHECK_CONTAINS(t, err.msg, "missing.key");
	write_text("garbage.key", "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n", 0600);
	CHECK_CODE(t, keys_load_signer(path_of("garbage.key"), &s, &err), XBA_EKEY);
	CHECK_CONTAINS(t, err.msg, "garbage.key");
	write_text("empty.pub", "", 0644);
	CHECK_CODE(t, keys_load_public(path_of("empty.pub"), raw, &err), XBA_EKEY);
	write_text("bad.curve.key", "this is not a z85 key at all, no sir!!!\n", 0600);
	CHECK_CODE(t, keys_load_curve(path_of("bad.curve.key"), &c, &err), XBA_EKEY);
	CHECK_CONTAINS(t, err.msg, "Z85");
	write_text("short.curve.pub", "abc\n", 0644);
	CHECK_CODE(t, keys_load_curve_public(path_of("short.curve.pub"), z85, &err), XBA_EKEY);
	CHECK_CODE(t, keys_load_signer(workdir, &s, &err), XBA_EKEY); /* a directory */
	CHECK_CONTAINS(t, err.msg, "not a regular file");
}

static void
test_parse_public_base64(struct check_state *t)
{
	struct xba_error err = { 0 };
	uint8_t raw[32];

	CHECK_CODE(t, keys_parse_public_base64("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", raw, &err), 0);
	CHECK(t, raw[0] == 0xd7 && raw[31] == 0x1a);
	CHECK_CODE(t, keys_parse_public_base64("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUR==", raw, &err),
	    XBA_EDECODE);
	CHECK_CODE(t, keys_parse_public_base64("not base64", raw, &err), XBA_EDECODE);
}

static void
test_sign_and_fingerprint(struct check_state *t)
{
	struct xba_error err = { 0 };
	struct signer s;
	struct sig_pubkey pk;
	uint8_t sig[64];
	const uint8_t msg[] = "cholera cluster at the crossing";
	char fp[64];

	CHECK_CODE(t, keys_generate("TCD", workdir, &s, NULL, &err), 0);
	CHECK_CODE(t, keys_sign(&s, msg, sizeof(msg), sig, &err), 0);
	CHECK_CODE(t, sig_pubkey_init(&pk, s.public_raw, &err), 0);
	CHECK_CODE(t, sig_verify(&pk, msg, sizeof(msg), sig), 0);
	sig[0] ^= 1;
	CHECK_CODE(t, sig_verify(&pk, msg, sizeof(msg), sig), XBA_ESIG);
	keys_fingerprint(s.key_id, fp, sizeof(fp));
	CHECK(t, strncmp(fp, "SHA256:", 7) == 0 && strlen(fp) == 7 + 43);
	sig_pubkey_clear(&pk);
	keys_signer_clear(&s);
}

/* An in-memory signer: its key id is the SHA-256 of its public key, it signs what its public key verifies, and two
 * are never the same key. */
static void
test_signer_generate(struct check_state *t)
{
	struct xba_error err = { 0 };
	struct signer a, b;
	struct sig_pubkey pk;
	uint8_t sig[64], id[32];
	const uint8_t msg[] = "boat in distress off the coast";

	CHECK_CODE(t, keys_signer_generate(&a, &err), 0);
	CHECK_CODE(t, keys_signer_generate(&b, &err), 0);
	SHA256(a.public_raw, sizeof(a.public_raw), id);
	CHECK(t, memcmp(id, a.key_id, sizeof(id)) == 0);
	CHECK(t, memcmp(a.public_raw, b.public_raw, sizeof(a.public_raw)) != 0);
	CHECK_CODE(t, keys_sign(&a, msg, sizeof(msg), sig, &err), 0);
	CHECK_CODE(t, sig_pubkey_init(&pk, a.public_raw, &err), 0);
	CHECK_CODE(t, sig_verify(&pk, msg, sizeof(msg), sig), 0);
	sig_pubkey_clear(&pk);
	CHECK_CODE(t, sig_pubkey_init(&pk, b.public_raw, &err), 0);
	CHECK_CODE(t, sig_verify(&pk, msg, sizeof(msg), sig), XBA_ESIG);
	sig_pubkey_clear(&pk);
	keys_signer_clear(&a);
	keys_signer_clear(&b);
	CHECK(t, a.private_key == NULL);
}

int
main(void)
{
	struct check_state t = { 0 };
	int rc;

	snprintf(workdir, sizeof(workdir), "/tmp/xba-test-keys-XXXXXX");
	if (mkdtemp(workdir) == NULL)
		return 2;
	RUN(&t, test_generate_and_load);
	RUN(&t, test_private_key_permissions);
	RUN(&t, test_bad_key_files);
	RUN(&t, test_parse_public_base64);
	RUN(&t, test_sign_and_fingerprint);
	RUN(&t, test_signer_generate);
	rc = check_finish(&t);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", workdir);
	}
	return rc;
}
