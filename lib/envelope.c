/*
 * envelope.c — seal (sign) and open (verify) alerts; see envelope.h for where each side sits in the flow.
 * The order of checks in envelope_open_message() is the contract of docs/protocol.md "Signing": cheap lookups
 * first, the signature over the received bytes next, and only then is the alert decoded.
 */
#include "envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "encoding.h"
#include "sigverify.h"

int
envelope_signing_input(const uint8_t *alert, size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t *buf = malloc(ENVELOPE_SIGNING_CONTEXT_LEN + len);

	if (buf == NULL)
		return XBA_ENOMEM;
	memcpy(buf, ENVELOPE_SIGNING_CONTEXT, ENVELOPE_SIGNING_CONTEXT_LEN); /* includes the NUL separator */
	if (len > 0)
		memcpy(buf + ENVELOPE_SIGNING_CONTEXT_LEN, alert, len);
	*out = buf;
	*out_len = ENVELOPE_SIGNING_CONTEXT_LEN + len;
	return 0;
}

int
envelope_seal(const struct signer *signer, const Xba__V1__Alert *alert, uint8_t **out, size_t *out_len,
    struct xba_error *err)
{
	Xba__V1__Envelope env = XBA__V1__ENVELOPE__INIT;
	uint8_t *alert_bytes = NULL, *input = NULL, *packed, sig[XBA_ED25519_SIG_LEN];
	size_t alert_len, input_len, packed_len;
	int rc;

	if ((rc = alert_encode(alert, &alert_bytes, &alert_len, err)) != 0)
		return rc;
	if (envelope_signing_input(alert_bytes, alert_len, &input, &input_len) != 0) {
		free(alert_bytes);
		return xba_error_set(err, XBA_ENOMEM, "out of memory");
	}
	rc = keys_sign(signer, input, input_len, sig, err);
	free(input);
	if (rc != 0) {
		free(alert_bytes);
		return rc;
	}
	env.alert.data = alert_bytes;
	env.alert.len = alert_len;
	env.key_id.data = (uint8_t *)signer->key_id;
	env.key_id.len = XBA_KEY_ID_LEN;
	env.signature.data = sig;
	env.signature.len = sizeof(sig);
	packed_len = xba__v1__envelope__get_packed_size(&env);
	packed = malloc(packed_len);
	if (packed == NULL) {
		free(alert_bytes);
		return xba_error_set(err, XBA_ENOMEM, "out of memory");
	}
	xba__v1__envelope__pack(&env, packed);
	free(alert_bytes);
	*out = packed;
	*out_len = packed_len;
	return 0;
}

/* The checks shared by both entry points; out->envelope is the caller's business. */
static int
open_checked(const struct directory *dir, const Xba__V1__Envelope *env, int64_t now_ms, struct envelope_opened *out,
    struct xba_error *err)
{
	const struct dir_key *key;
	const struct dir_node *owner;
	uint8_t *input;
	size_t input_len;
	char fp[64];
	int rc;

	out->alert = NULL;
	out->signer = NULL;
	out->key = NULL;
	if (env->alert.len == 0)
		return xba_error_set(err, XBA_EREQUIRED, "envelope.alert: missing");
	if (env->alert.len > ALERT_MAX_BYTES)
		return xba_error_set(err, XBA_ETOOBIG, "envelope.alert: %zu bytes, at most %d", env->alert.len,
		    ALERT_MAX_BYTES);
	if (env->key_id.len != XBA_KEY_ID_LEN)
		return xba_error_set(err, XBA_EDECODE, "envelope.key_id: %zu bytes, expected %d", env->key_id.len,
		    XBA_KEY_ID_LEN);
	if (env->signature.len != XBA_ED25519_SIG_LEN)
		return xba_error_set(err, XBA_EDECODE, "envelope.signature: %zu bytes, expected %d",
		    env->signature.len, XBA_ED25519_SIG_LEN);
	key = directory_key(dir, env->key_id.data);
	if (key == NULL)
		return xba_error_set(err, XBA_EKEYUNKNOWN, "envelope.key_id: key %s is not in the directory",
		    keys_fingerprint(env->key_id.data, fp, sizeof(fp)));
	owner = &dir->nodes[key->node_index];
	if (key->revoked_at_ms <= now_ms)
		return directory_key_usable(dir, key, INT64_MIN, now_ms, err);

	/* Verify the bytes as received: the alert is decoded only after its signature holds. */
	if (envelope_signing_input(env->alert.data, env->alert.len, &input, &input_len) != 0)
		return xba_error_set(err, XBA_ENOMEM, "out of memory");
	rc = sig_verify(&key->pub, input, input_len, env->signature.data);
	free(input);
	if (rc != 0)
		return xba_error_set(err, XBA_ESIG, "envelope.signature: does not verify with %s's key %s", owner->id,
		    keys_fingerprint(key->key_id, fp, sizeof(fp)));

	out->alert = alert_decode(env->alert.data, env->alert.len, err);
	if (out->alert == NULL)
		return err ? err->code : XBA_EDECODE;
	if ((rc = directory_key_usable(dir, key, out->alert->sent_ms, now_ms, err)) != 0)
		goto fail;
	if (strcmp(out->alert->origin, owner->id) != 0) {
		rc = xba_error_set(err, XBA_EWRONGSIGNER, "alert.origin: %s, but the signing key belongs to %s",
		    out->alert->origin, owner->id);
		goto fail;
	}
	out->signer = owner;
	out->key = key;
	return 0;
fail:
	/* The alert decoded and verified; it stays in out so the caller's refusal can name it. */
	return rc;
}

int
envelope_open(const struct directory *dir, const uint8_t *bytes, size_t len, int64_t now_ms,
    struct envelope_opened *out, struct xba_error *err)
{
	memset(out, 0, sizeof(*out));
	if (len > ENVELOPE_MAX_BYTES)
		return xba_error_set(err, XBA_ETOOBIG, "envelope: %zu bytes, at most %d", len, ENVELOPE_MAX_BYTES);
	out->envelope = xba__v1__envelope__unpack(NULL, len, bytes);
	if (out->envelope == NULL)
		return xba_error_set(err, XBA_EDECODE, "envelope: not a valid envelope (protobuf decode failed)");
	return open_checked(dir, out->envelope, now_ms, out, err);
}

int
envelope_open_message(const struct directory *dir, const Xba__V1__Envelope *envelope, int64_t now_ms,
    struct envelope_opened *out, struct xba_error *err)
{
	size_t len = xba__v1__envelope__get_packed_size(envelope);

	memset(out, 0, sizeof(*out)); /* the envelope stays the caller's: it belongs to their frame */
	/* The size envelope_open() enforces on bytes, here on what the envelope packs to: fields outside the signed
	 * alert (unknown to this decoder, kept and re-packed by protobuf-c) count too. */
	if (len > ENVELOPE_MAX_BYTES)
		return xba_error_set(err, XBA_ETOOBIG, "envelope: %zu bytes, at most %d (fields outside the signed alert "
		    "count too)", len, ENVELOPE_MAX_BYTES);
	return open_checked(dir, envelope, now_ms, out, err);
}

void
envelope_opened_clear(struct envelope_opened *opened)
{
	if (opened == NULL)
		return;
	alert_free(opened->alert);
	if (opened->envelope != NULL)
		xba__v1__envelope__free_unpacked(opened->envelope, NULL);
	memset(opened, 0, sizeof(*opened));
}

void
envelope_claimed(const Xba__V1__Envelope *envelope, char id[XBA_UUID_LEN + 1], char origin[XBA_NODE_ID_MAX + 1])
{
	Xba__V1__Alert *alert;

	id[0] = '\0';
	if (origin != NULL)
		origin[0] = '\0';
	if (envelope == NULL || envelope->alert.len == 0 || envelope->alert.len > ALERT_MAX_BYTES)
		return;
	alert = xba__v1__alert__unpack(NULL, envelope->alert.len, envelope->alert.data);
	if (alert == NULL)
		return;
	if (alert->id != NULL && syntax_uuid_valid(alert->id))
		snprintf(id, XBA_UUID_LEN + 1, "%s", alert->id);
	if (origin != NULL && alert->origin != NULL && syntax_node_id_valid(alert->origin))
		snprintf(origin, XBA_NODE_ID_MAX + 1, "%s", alert->origin);
	xba__v1__alert__free_unpacked(alert, NULL);
}

void
envelope_claimed_id(const Xba__V1__Envelope *envelope, char out[XBA_UUID_LEN + 1])
{
	envelope_claimed(envelope, out, NULL);
}
