/*
 * test_sigverify.c — Ed25519 verification (lib/sigverify.c).  Both backends must give the same answer on every
 * input: RFC 8032's test vectors, XBA's golden vector in tests/vectors/, and each kind of corruption.  This is
 * what lets the broker switch backends as a build choice.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "encoding.h"
#include "envelope.h"
#include "sigverify.h"

static const char *tests_dir = ".";

/* RFC 8032 section 7.1, TEST 1 and TEST 2. */
static const struct {
	const char *public_hex;
	const char *message_hex;
	const char *signature_hex;
} rfc8032[] = {
	{ "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
	    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b" },
	{ "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
	    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00" },
};

/* Both backends agree with each other and with `expected` on (pk, msg, sig). */
static void
check_both(struct check_state *t, const struct sig_pubkey *pk, const uint8_t *msg, size_t len, const uint8_t *sig,
    int expected)
{
	CHECK_CODE(t, sig_verify_openssl(pk, msg, len, sig), expected);
	CHECK_CODE(t, sig_verify_sodium(pk, msg, len, sig), expected);
	CHECK_CODE(t, sig_verify(pk, msg, len, sig), expected);
}

static void
test_rfc8032_vectors(struct check_state *t)
{
	for (size_t i = 0; i < sizeof(rfc8032) / sizeof(rfc8032[0]); i++) {
		uint8_t pub[32], msg[1], sig[64], other[32];
		size_t msg_len = strlen(rfc8032[i].message_hex) / 2;
		struct sig_pubkey pk, wrong;

		CHECK_CODE(t, encoding_unhex(rfc8032[i].public_hex, pub, 32), 0);
		CHECK_CODE(t, encoding_unhex(rfc8032[i].signature_hex, sig, 64), 0);
		if (msg_len > 0)
			CHECK_CODE(t, encoding_unhex(rfc8032[i].message_hex, msg, msg_len), 0);
		CHECK_CODE(t, sig_pubkey_init(&pk, pub, NULL), 0);
		check_both(t, &pk, msg, msg_len, sig, 0);

		sig[63] ^= 0x01; /* flipped bit in the signature */
		check_both(t, &pk, msg, msg_len, sig, XBA_ESIG);
		sig[63] ^= 0x01;
		uint8_t longer[2] = { msg_len ? msg[0] : 0, 0x00 }; /* one more byte of message */
		check_both(t, &pk, longer, msg_len + 1, sig, XBA_ESIG);

		CHECK_CODE(t, encoding_unhex(rfc8032[1 - i].public_hex, other, 32), 0); /* the other key */
		CHECK_CODE(t, sig_pubkey_init(&wrong, other, NULL), 0);
		check_both(t, &wrong, msg, msg_len, sig, XBA_ESIG);
		sig_pubkey_clear(&wrong);
		sig_pubkey_clear(&pk);
	}
}

static int
read_all(const char *name, uint8_t **out, size_t *len)
{
	char path[1024];
	FILE *f;
	long size;

	snprintf(path, sizeof(path), "%s/vectors/%s", tests_dir, name);
	f = fopen(path, "rb");
	if (f == NULL)
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

/* The golden envelope in tests/vectors verifies with both backends; any flipped bit in it does not. */
static void
test_golden_vector_both_backends(struct check_state *t)
{
	uint8_t *pub_hex, *env_bytes, pub[32], *input;
	size_t pub_len, env_len, input_len;
	Xba__V1__Envelope *env;
	struct sig_pubkey pk;

	if (read_all("golden-public.hex", &pub_hex, &pub_len) != 0 ||
	    read_all("golden-envelope.bin", &env_bytes, &env_len) != 0) {
		fprintf(stderr, "golden vectors missing under %s/vectors\n", tests_dir);
		CHECK(t, 0);
		return;
	}
	pub_hex[strcspn((char *)pub_hex, "\r\n")] = '\0';
	CHECK_CODE(t, encoding_unhex((char *)pub_hex, pub, 32), 0);
	CHECK_CODE(t, sig_pubkey_init(&pk, pub, NULL), 0);
	env = xba__v1__envelope__unpack(NULL, env_len, env_bytes);
	CHECK(t, env != NULL);
	if (env != NULL && env->signature.len == 64) {
		CHECK_CODE(t, envelope_signing_input(env->alert.data, env->alert.len, &input, &input_len), 0);
		check_both(t, &pk, input, input_len, env->signature.data, 0);
		/* Any single flipped bit in the signed bytes (context included) or in the signature fails, in both. */
		for (size_t bit = 0; bit < input_len * 8; bit += 7) {
			input[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			check_both(t, &pk, input, input_len, env->signature.data, XBA_ESIG);
			input[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		for (size_t bit = 0; bit < 512; bit += 5) {
			env->signature.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			check_both(t, &pk, input, input_len, env->signature.data, XBA_ESIG);
			env->signature.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		free(input);
	}
	xba__v1__envelope__free_unpacked(env, NULL);
	sig_pubkey_clear(&pk);
	free(pub_hex);
	free(env_bytes);
}

static void
test_backend_name(struct check_state *t)
{
	const char *name = sig_backend_name();

	CHECK(t, strcmp(name, "sodium") == 0 || strcmp(name, "openssl") == 0);
}

int
main(int argc, char **argv)
{
	struct check_state t = { 0 };

	if (argc > 1)
		tests_dir = argv[1];
	RUN(&t, test_rfc8032_vectors);
	RUN(&t, test_golden_vector_both_backends);
	RUN(&t, test_backend_name);
	return check_finish(&t);
}
