/*
 * sigverify.h — Ed25519 signature verification, the one cost per alert that cannot be avoided.
 *
 * Public keys are parsed once (sig_pubkey_init, at directory load) and reused for every message.  The backend that
 * sig_verify() uses is a build choice (meson option verify_backend): libsodium (default, faster) or OpenSSL.  Both
 * implement RFC 8032, both are always compiled, and tests/unit/test_sigverify.c checks that they agree on the
 * golden vectors and on every negative case.
 */
#ifndef XBA_SIGVERIFY_H
#define XBA_SIGVERIFY_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "keys.h"

struct sig_pubkey {
	uint8_t raw[XBA_ED25519_PUBLIC_LEN]; /* what the sodium backend uses */
	EVP_PKEY *pkey;                      /* owned; what the OpenSSL backend uses, parsed once */
};

int sig_pubkey_init(struct sig_pubkey *pk, const uint8_t raw[XBA_ED25519_PUBLIC_LEN], struct xba_error *err);
void sig_pubkey_clear(struct sig_pubkey *pk);

/* 0 when sig is pk's signature of msg, else XBA_ESIG.  Thread-safe for concurrent calls on the same pk. */
int sig_verify(const struct sig_pubkey *pk, const uint8_t *msg, size_t len, const uint8_t sig[XBA_ED25519_SIG_LEN]);
int sig_verify_openssl(const struct sig_pubkey *pk, const uint8_t *msg, size_t len,
    const uint8_t sig[XBA_ED25519_SIG_LEN]);
int sig_verify_sodium(const struct sig_pubkey *pk, const uint8_t *msg, size_t len,
    const uint8_t sig[XBA_ED25519_SIG_LEN]);

/* "sodium" or "openssl": the backend sig_verify() uses in this build. */
const char *sig_backend_name(void);

#endif
