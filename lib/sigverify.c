/*
 * sigverify.c — Ed25519 verification behind one function (see sigverify.h).  Sits on the hot path of every alert:
 * the broker calls it once per publish, every agent once per delivery.  Both backends are compiled so the tests can
 * prove they agree; XBA_VERIFY_SODIUM (meson option verify_backend) picks the one sig_verify() uses.
 */
#include "sigverify.h"

#include <openssl/err.h>
#include <sodium.h>
#include <string.h>

#include "xba_config.h"

int
sig_pubkey_init(struct sig_pubkey *pk, const uint8_t raw[XBA_ED25519_PUBLIC_LEN], struct xba_error *err)
{
	memcpy(pk->raw, raw, XBA_ED25519_PUBLIC_LEN);
	pk->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, XBA_ED25519_PUBLIC_LEN);
	if (pk->pkey == NULL) {
		ERR_clear_error();
		return xba_error_set(err, XBA_EKEY, "not a usable Ed25519 public key");
	}
	/* sodium_init() is idempotent and thread-safe; it picks the fastest implementation for this CPU. */
	if (sodium_init() < 0) {
		EVP_PKEY_free(pk->pkey);
		pk->pkey = NULL;
		return xba_error_set(err, XBA_ECRYPTO, "libsodium failed to initialise");
	}
	return 0;
}

void
sig_pubkey_clear(struct sig_pubkey *pk)
{
	if (pk == NULL)
		return;
	EVP_PKEY_free(pk->pkey);
	pk->pkey = NULL;
}

int
sig_verify_openssl(const struct sig_pubkey *pk, const uint8_t *msg, size_t len, const uint8_t sig[XBA_ED25519_SIG_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (ctx == NULL)
		return XBA_ENOMEM;
	/* Pure Ed25519 takes no digest; the one-shot EVP_DigestVerify is the only way OpenSSL offers it. */
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk->pkey) == 1 &&
	    EVP_DigestVerify(ctx, sig, XBA_ED25519_SIG_LEN, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		ERR_clear_error();
		return XBA_ESIG;
	}
	return 0;
}

int
sig_verify_sodium(const struct sig_pubkey *pk, const uint8_t *msg, size_t len, const uint8_t sig[XBA_ED25519_SIG_LEN])
{
	return crypto_sign_verify_detached(sig, msg, len, pk->raw) == 0 ? 0 : XBA_ESIG;
}

int
sig_verify(const struct sig_pubkey *pk, const uint8_t *msg, size_t len, const uint8_t sig[XBA_ED25519_SIG_LEN])
{
#if XBA_VERIFY_SODIUM
	return sig_verify_sodium(pk, msg, len, sig);
#else
	return sig_verify_openssl(pk, msg, len, sig);
#endif
}

const char *
sig_backend_name(void)
{
#if XBA_VERIFY_SODIUM
	return "sodium";
#else
	return "openssl";
#endif
}
