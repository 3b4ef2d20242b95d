/*
 * keys.h — a node's keys on disk and in memory.
 *
 * Each node has an Ed25519 signing key pair (OpenSSL; PEM files) for the message layer and a CURVE key pair
 * (libzmq; Z85 text files) for the transport layer.  keygen writes, for node NER in DIR:
 *     DIR/NER.sign.key   PKCS#8 PEM Ed25519 private key, mode 0600
 *     DIR/NER.sign.pub   PEM Ed25519 public key
 *     DIR/NER.curve.key  Z85 CURVE secret key, one line, mode 0600
 *     DIR/NER.curve.pub  Z85 CURVE public key, one line
 * A private key file that group or others may read is refused (XBA_EKEYPERM), as ssh does.
 * Key id = SHA-256 of the raw 32-byte Ed25519 public key.
 */
#ifndef XBA_KEYS_H
#define XBA_KEYS_H

#include <openssl/evp.h>
#include <stdint.h>

#include "error.h"

#define XBA_ED25519_PUBLIC_LEN 32
#define XBA_ED25519_SIG_LEN 64
#define XBA_KEY_ID_LEN 32
#define XBA_CURVE_KEY_LEN 32
#define XBA_Z85_KEY_TEXT_LEN 40

/* A loaded signing identity: what an agent signs with. */
struct signer {
	EVP_PKEY *private_key;                  /* owned; Ed25519 */
	uint8_t public_raw[XBA_ED25519_PUBLIC_LEN];
	uint8_t key_id[XBA_KEY_ID_LEN];
};

/* A loaded CURVE identity: what a node's ZeroMQ socket authenticates with.  Text forms, as libzmq wants them. */
struct curve_identity {
	char public_z85[XBA_Z85_KEY_TEXT_LEN + 1];
	char secret_z85[XBA_Z85_KEY_TEXT_LEN + 1];
};

/* Key id of a raw public key. */
void keys_key_id(const uint8_t public_raw[XBA_ED25519_PUBLIC_LEN], uint8_t key_id[XBA_KEY_ID_LEN]);

/* "SHA256:<base64 of key id, no padding>", as ssh prints fingerprints; out >= 52 bytes. */
char *keys_fingerprint(const uint8_t key_id[XBA_KEY_ID_LEN], char *out, size_t size);

/* Refuse (XBA_EKEYPERM) a private key file that is not a regular file or that group or others may read. */
int keys_check_private_file(const char *path, struct xba_error *err);

/* Load DIR/NODE.sign.key style PEM private key (mode checked).  Caller owns *out; signer_clear() frees it. */
int keys_load_signer(const char *path, struct signer *out, struct xba_error *err);
void keys_signer_clear(struct signer *s);

/* Load a PEM Ed25519 public key file into raw bytes. */
int keys_load_public(const char *path, uint8_t public_raw[XBA_ED25519_PUBLIC_LEN], struct xba_error *err);

/* Parse base64 text of a raw Ed25519 public key (as region.yaml holds it). */
int keys_parse_public_base64(const char *text, uint8_t public_raw[XBA_ED25519_PUBLIC_LEN], struct xba_error *err);

/* Load a CURVE secret key file (mode checked) and derive its public key. */
int keys_load_curve(const char *path, struct curve_identity *out, struct xba_error *err);

/* Load a CURVE public key file (one Z85 line). */
int keys_load_curve_public(const char *path, char public_z85[XBA_Z85_KEY_TEXT_LEN + 1], struct xba_error *err);

/* A new Ed25519 signer in memory only (keys_generate writes one to files); release with keys_signer_clear(). */
int keys_signer_generate(struct signer *out, struct xba_error *err);

/*
 * Generate both key pairs for node_id into dir (which must exist) with the file names above.  Refuses to overwrite
 * existing files.  Private files are created 0600 from the start (never chmod'ed after being written).
 */
int keys_generate(const char *node_id, const char *dir, struct signer *signer_out, struct curve_identity *curve_out,
    struct xba_error *err);

/* The CURVE pair alone, as dir/base.curve.key and dir/base.curve.pub (an officer's key for an agent's LAN endpoint:
 * an officer signs nothing, the agent signs for them).  Refuses to overwrite existing files. */
int keys_generate_curve(const char *base, const char *dir, struct curve_identity *curve_out, struct xba_error *err);

/* Sign msg with Ed25519. */
int keys_sign(const struct signer *s, const uint8_t *msg, size_t len, uint8_t sig[XBA_ED25519_SIG_LEN],
    struct xba_error *err);

#endif
