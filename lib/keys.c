/*
 * keys.c — a node's key files and its signing operation (see keys.h).  Read by the agent at start-up (to sign
 * what its officers submit), by the broker (its CURVE identity), and written by `xba keygen`.
 *
 * Failure model for writing: private files are opened O_CREAT|O_EXCL with mode 0600 so no moment exists where the
 * secret sits in a file others could read, written, fsync'ed, and the directory fsync'ed, so a crash leaves either
 * no file or a complete one (a partial file is refused at load because it does not parse).
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "encoding.h"

#define KEY_FILE_MAX 16384

void
keys_key_id(const uint8_t public_raw[XBA_ED25519_PUBLIC_LEN], uint8_t key_id[XBA_KEY_ID_LEN])
{
	SHA256(public_raw, XBA_ED25519_PUBLIC_LEN, key_id);
}

char *
keys_fingerprint(const uint8_t key_id[XBA_KEY_ID_LEN], char *out, size_t size)
{
	char b64[48];
	size_t len;

	encoding_base64(key_id, XBA_KEY_ID_LEN, b64);
	len = strcspn(b64, "=");
	b64[len] = '\0';
	snprintf(out, size, "SHA256:%s", b64);
	return out;
}

/* Read a whole small file, refusing anything that is not a regular file or is over KEY_FILE_MAX bytes. */
static int
read_small_file(const char *path, bool is_private, char **out, size_t *out_len, struct xba_error *err)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return xba_error_set(err, XBA_EIO, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		close(fd);
		return xba_error_set(err, XBA_EIO, "%s: cannot stat: %s", path, strerror(errno));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return xba_error_set(err, XBA_EKEY, "%s: not a regular file", path);
	}
	/* Checked on the open descriptor, so the file cannot be swapped between the check and the read. */
	if (is_private && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		close(fd);
		return xba_error_set(err, XBA_EKEYPERM,
		    "%s: private key file is accessible by group or others (mode %04o); run: chmod 600 %s", path,
		    (unsigned)(st.st_mode & 07777), path);
	}
	if (st.st_size > KEY_FILE_MAX) {
		close(fd);
		return xba_error_set(err, XBA_EKEY, "%s: %lld bytes, too big for a key file", path,
		    (long long)st.st_size);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return xba_error_set(err, XBA_ENOMEM, "%s: out of memory", path);
	}
	while (got < (size_t)st.st_size && (n = read(fd, buf + got, (size_t)st.st_size - got)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			close(fd);
			return xba_error_set(err, XBA_EIO, "%s: read failed: %s", path, strerror(errno));
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	*out_len = got;
	return 0;
}

int
keys_check_private_file(const char *path, struct xba_error *err)
{
	char *buf;
	size_t len;
	int rc = read_small_file(path, true, &buf, &len, err);

	if (rc == 0) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	return rc;
}

int
keys_load_signer(const char *path, struct signer *out, struct xba_error *err)
{
	EVP_PKEY *pkey;
	size_t len, raw_len = XBA_ED25519_PUBLIC_LEN;
	char *buf;
	BIO *bio;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = read_small_file(path, true, &buf, &len, err)) != 0)
		return rc;
	bio = BIO_new_mem_buf(buf, (int)len);
	pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (pkey == NULL) {
		ERR_clear_error();
		return xba_error_set(err, XBA_EKEY, "%s: not a PEM private key", path);
	}
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(pkey, out->public_raw, &raw_len) != 1 || raw_len != XBA_ED25519_PUBLIC_LEN) {
		EVP_PKEY_free(pkey);
		ERR_clear_error();
		return xba_error_set(err, XBA_EKEY, "%s: not an Ed25519 private key", path);
	}
	out->private_key = pkey;
	keys_key_id(out->public_raw, out->key_id);
	return 0;
}

void
keys_signer_clear(struct signer *s)
{
	if (s == NULL)
		return;
	EVP_PKEY_free(s->private_key);
	memset(s, 0, sizeof(*s));
}

int
keys_load_public(const char *path, uint8_t public_raw[XBA_ED25519_PUBLIC_LEN], struct xba_error *err)
{
	EVP_PKEY *pkey;
	size_t len, raw_len = XBA_ED25519_PUBLIC_LEN;
	char *buf;
	BIO *bio;
	int rc;

	if ((rc = read_small_file(path, false, &buf, &len, err)) != 0)
		return rc;
	bio = BIO_new_mem_buf(buf, (int)len);
	pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	free(buf);
	if (pkey == NULL || EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(pkey, public_raw, &raw_len) != 1 || raw_len != XBA_ED25519_PUBLIC_LEN) {
		EVP_PKEY_free(pkey);
		ERR_clear_error();
		return xba_error_set(err, XBA_EKEY, "%s: not a PEM Ed25519 public key", path);
	}
	EVP_PKEY_free(pkey);
	return 0;
}

int
keys_parse_public_base64(const char *text, uint8_t public_raw[XBA_ED25519_PUBLIC_LEN], struct xba_error *err)
{
	EVP_PKEY *pkey;

	if (encoding_unbase64(text, public_raw, XBA_ED25519_PUBLIC_LEN) != 0)
		return xba_error_set(err, XBA_EDECODE,
		    "not a base64 Ed25519 public key (expected 44 characters encoding 32 bytes)");
	/* Parse once here so a key that OpenSSL would refuse is caught at load, not at first use. */
	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, public_raw, XBA_ED25519_PUBLIC_LEN);
	if (pkey == NULL) {
		ERR_clear_error();
		return xba_error_set(err, XBA_EKEY, "not a usable Ed25519 public key");
	}
	EVP_PKEY_free(pkey);
	return 0;
}

/* Read the first line of a Z85 key file into out (41 bytes) and decode it into raw. */
static int
read_z85_file(const char *path, bool is_private, char out[XBA_Z85_KEY_TEXT_LEN + 1], uint8_t raw[32],
    struct xba_error *err)
{
	size_t len, line_len;
	char *buf;
	int rc;

	if ((rc = read_small_file(path, is_private, &buf, &len, err)) != 0)
		return rc;
	line_len = strcspn(buf, "\r\n");
	buf[line_len] = '\0';
	if (line_len != XBA_Z85_KEY_TEXT_LEN || encoding_z85_key(buf, raw) != 0) {
		OPENSSL_cleanse(buf, len);
		free(buf);
		return xba_error_set(err, XBA_EKEY, "%s: not a Z85 CURVE key (expected one line of 40 Z85 characters)",
		    path);
	}
	memcpy(out, buf, XBA_Z85_KEY_TEXT_LEN + 1);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return 0;
}

int
keys_load_curve(const char *path, struct curve_identity *out, struct xba_error *err)
{
	uint8_t raw[32];
	size_t len = strlen(path);
	int rc;

	memset(out, 0, sizeof(*out));
	/* A public key reads as a valid secret key (any 32 bytes are one): caught by its name, before the permission
	 * check would advise a chmod that makes it "work" as the wrong key. */
	if (len >= 4 && strcmp(path + len - 4, ".pub") == 0)
		return xba_error_set(err, XBA_EKEY, "%s: a public key file (.pub) where the secret key is needed: give the "
		    ".key file of the same pair", path);
	if ((rc = read_z85_file(path, true, out->secret_z85, raw, err)) != 0)
		return rc;
	OPENSSL_cleanse(raw, sizeof(raw));
	if (zmq_curve_public(out->public_z85, out->secret_z85) != 0) {
		OPENSSL_cleanse(out, sizeof(*out));
		return xba_error_set(err, XBA_ECRYPTO, "%s: libzmq cannot derive a CURVE public key (built without CURVE?)",
		    path);
	}
	return 0;
}

int
keys_load_curve_public(const char *path, char public_z85[XBA_Z85_KEY_TEXT_LEN + 1], struct xba_error *err)
{
	uint8_t raw[32];

	return read_z85_file(path, false, public_z85, raw, err);
}

/* Write a new file (never replacing one) durably: O_EXCL, write, fsync.  The caller fsyncs the directory. */
static int
write_new_file(const char *path, const char *data, size_t len, mode_t mode, struct xba_error *err)
{
	size_t done = 0;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return xba_error_set(err, XBA_EIO, "%s: cannot create: %s%s", path, strerror(errno),
		    errno == EEXIST ? " (keygen never overwrites a key; move the old one away first)" : "");
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			xba_error_set(err, XBA_EIO, "%s: write failed: %s", path, strerror(errno));
			close(fd);
			unlink(path);
			return XBA_EIO;
		}
		done += (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		xba_error_set(err, XBA_EIO, "%s: fsync failed: %s", path, strerror(errno));
		unlink(path);
		return XBA_EIO;
	}
	return 0;
}

static int
fsync_dir(const char *dir, struct xba_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) != 0) {
		int saved = errno;

		if (fd >= 0)
			close(fd);
		return xba_error_set(err, XBA_EIO, "%s: cannot fsync directory: %s", dir, strerror(saved));
	}
	close(fd);
	return 0;
}

/* PEM text of a key, via a memory BIO; caller frees *out (cleansed for private keys). */
static int
pem_of(EVP_PKEY *pkey, bool private_part, char **out, size_t *out_len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *mem;
	long n;
	int ok;

	if (bio == NULL)
		return XBA_ENOMEM;
	ok = private_part ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL)
			  : PEM_write_bio_PUBKEY(bio, pkey);
	n = BIO_get_mem_data(bio, &mem);
	if (!ok || n <= 0 || (*out = malloc((size_t)n)) == NULL) {
		BIO_free(bio);
		ERR_clear_error();
		return XBA_ECRYPTO;
	}
	memcpy(*out, mem, (size_t)n);
	*out_len = (size_t)n;
	OPENSSL_cleanse(mem, (size_t)n);
	BIO_free(bio);
	return 0;
}

int
keys_signer_generate(struct signer *out, struct xba_error *err)
{
	size_t raw_len = XBA_ED25519_PUBLIC_LEN;

	memset(out, 0, sizeof(*out));
	out->private_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (out->private_key == NULL ||
	    EVP_PKEY_get_raw_public_key(out->private_key, out->public_raw, &raw_len) != 1) {
		ERR_clear_error();
		keys_signer_clear(out);
		return xba_error_set(err, XBA_ECRYPTO, "cannot generate an Ed25519 key");
	}
	keys_key_id(out->public_raw, out->key_id);
	return 0;
}

/*
 * Write base's key files into dir: the signing pair when signer is not NULL, and the CURVE pair.  Each file is
 * created new (never overwritten); private ones 0600 from the start.
 */
static int
write_key_files(const char *dir, const char *base, const struct signer *signer, const struct curve_identity *curve,
    struct xba_error *err)
{
	char path[4096], *pem = NULL, line[64];
	size_t pem_len;
	int rc = 0;
	struct {
		const char *suffix;  /* file name after base */
		int kind;            /* 0 signing private, 1 signing public, 2 curve secret, 3 curve public */
	} files[] = { { "sign.key", 0 }, { "sign.pub", 1 }, { "curve.key", 2 }, { "curve.pub", 3 } };

	for (size_t i = signer != NULL ? 0 : 2; i < sizeof(files) / sizeof(files[0]); i++) {
		bool secret = files[i].kind == 0 || files[i].kind == 2;
		const char *data;
		size_t len;

		if (snprintf(path, sizeof(path), "%s/%s.%s", dir, base, files[i].suffix) >= (int)sizeof(path))
			return xba_error_set(err, XBA_EINVAL, "%s: output directory path too long", dir);
		if (files[i].kind <= 1) {
			if (pem_of(signer->private_key, files[i].kind == 0, &pem, &pem_len) != 0)
				return xba_error_set(err, XBA_ECRYPTO, "cannot encode the Ed25519 key as PEM");
			data = pem;
			len = pem_len;
		} else {
			snprintf(line, sizeof(line), "%s\n", files[i].kind == 2 ? curve->secret_z85 : curve->public_z85);
			data = line;
			len = strlen(line);
		}
		rc = write_new_file(path, data, len, secret ? 0600 : 0644, err);
		if (pem != NULL) {
			OPENSSL_cleanse(pem, pem_len);
			free(pem);
			pem = NULL;
		}
		OPENSSL_cleanse(line, sizeof(line));
		if (rc != 0)
			return rc;
	}
	return fsync_dir(dir, err);
}

int
keys_generate(const char *node_id, const char *dir, struct signer *signer_out, struct curve_identity *curve_out,
    struct xba_error *err)
{
	struct signer signer;
	struct curve_identity curve = { 0 };
	int rc;

	if ((rc = keys_signer_generate(&signer, err)) != 0)
		return rc;
	if (zmq_curve_keypair(curve.public_z85, curve.secret_z85) != 0) {
		keys_signer_clear(&signer);
		return xba_error_set(err, XBA_ECRYPTO, "cannot generate a CURVE key (libzmq built without CURVE?)");
	}
	if ((rc = write_key_files(dir, node_id, &signer, &curve, err)) != 0) {
		keys_signer_clear(&signer);
		OPENSSL_cleanse(&curve, sizeof(curve));
		return rc;
	}
	if (signer_out != NULL)
		*signer_out = signer;
	else
		keys_signer_clear(&signer);
	if (curve_out != NULL)
		*curve_out = curve;
	OPENSSL_cleanse(&curve, sizeof(curve));
	return 0;
}

int
keys_generate_curve(const char *base, const char *dir, struct curve_identity *curve_out, struct xba_error *err)
{
	struct curve_identity curve = { 0 };
	int rc;

	if (zmq_curve_keypair(curve.public_z85, curve.secret_z85) != 0)
		return xba_error_set(err, XBA_ECRYPTO, "cannot generate a CURVE key (libzmq built without CURVE?)");
	rc = write_key_files(dir, base, NULL, &curve, err);
	if (rc == 0 && curve_out != NULL)
		*curve_out = curve;
	OPENSSL_cleanse(&curve, sizeof(curve));
	return rc;
}

int
keys_sign(const struct signer *s, const uint8_t *msg, size_t len, uint8_t sig[XBA_ED25519_SIG_LEN],
    struct xba_error *err)
{
	size_t sig_len = XBA_ED25519_SIG_LEN;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	if (ctx == NULL)
		return xba_error_set(err, XBA_ENOMEM, "out of memory");
	ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->private_key) == 1 &&
	    EVP_DigestSign(ctx, sig, &sig_len, msg, len) == 1 && sig_len == XBA_ED25519_SIG_LEN;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		ERR_clear_error();
		return xba_error_set(err, XBA_ECRYPTO, "Ed25519 signing failed");
	}
	return 0;
}
