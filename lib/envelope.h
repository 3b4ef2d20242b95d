/*
 * envelope.h — signing and verifying alerts: the message layer of XBA's trust model.
 *
 * Seal (agent, on submission): encode the alert once, sign "XBA-v1 alert\0" || bytes with the origin's Ed25519
 * key, wrap bytes + key id + signature in an Envelope.  Open (broker on publish, every agent on delivery,
 * `xba verify`): decode the Envelope, find the key by id in the directory, check it was valid and not revoked,
 * verify the signature over the received bytes exactly, only then decode and validate the alert, and check that
 * the key belongs to the alert's origin.  Nothing is ever re-serialised before verification.
 */
#ifndef XBA_ENVELOPE_H
#define XBA_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "directory.h"
#include "error.h"
#include "keys.h"
#include "syntax.h"
#include "xba.pb-c.h"

/* Domain separation: a signature over an alert can never be taken for a signature over anything else. */
#define ENVELOPE_SIGNING_CONTEXT "XBA-v1 alert"
#define ENVELOPE_SIGNING_CONTEXT_LEN 13 /* including the terminating NUL, which is signed */
#define ENVELOPE_MAX_BYTES (ALERT_MAX_BYTES + 256)

/* Validate, encode and sign alert; *out is a malloc'ed serialized Envelope the caller frees. */
int envelope_seal(const struct signer *signer, const Xba__V1__Alert *alert, uint8_t **out, size_t *out_len,
    struct xba_error *err);

/* What envelope_open() hands back.  Free with envelope_opened_clear(). */
struct envelope_opened {
	Xba__V1__Envelope *envelope;     /* owned; the decoded outer message */
	Xba__V1__Alert *alert;           /* owned; decoded from envelope->alert.data, validated */
	const struct dir_node *signer;   /* borrowed from the directory */
	const struct dir_key *key;       /* borrowed from the directory */
};

/*
 * Verify and decode serialized Envelope bytes.  now_ms is the time of use, against which revocation is checked;
 * the key's validity window is checked against the alert's sent time.  Errors, in the order checked:
 * XBA_ETOOBIG, XBA_EDECODE (envelope, key id or signature length), XBA_EKEYUNKNOWN, XBA_EKEYREVOKED, XBA_ESIG,
 * then the alert's own decode/validation codes, XBA_EKEYVALIDITY, XBA_EWRONGSIGNER (key's node != origin).
 * Whatever the result, call envelope_opened_clear(out) afterwards: on XBA_EKEYVALIDITY and XBA_EWRONGSIGNER the
 * verified alert is left in out->alert (out->signer stays NULL) so that a refusal can name the alert.
 */
int envelope_open(const struct directory *dir, const uint8_t *bytes, size_t len, int64_t now_ms,
    struct envelope_opened *out, struct xba_error *err);

/* Same checks on an Envelope already unpacked as part of a Frame (its alert bytes are used as received), the size
 * limit included: what it packs to, unknown fields and all, is at most ENVELOPE_MAX_BYTES. */
int envelope_open_message(const struct directory *dir, const Xba__V1__Envelope *envelope, int64_t now_ms,
    struct envelope_opened *out, struct xba_error *err);

void envelope_opened_clear(struct envelope_opened *opened);

/* The alert id and origin an envelope's alert bytes claim, without verifying anything; each "" when they do not
 * decode to an alert with a well-formed one (origin may be NULL when it is not wanted).  For naming an alert that
 * was not (or could not be) verified, never for trusting it. */
void envelope_claimed(const Xba__V1__Envelope *envelope, char id[XBA_UUID_LEN + 1],
    char origin[XBA_NODE_ID_MAX + 1]);
void envelope_claimed_id(const Xba__V1__Envelope *envelope, char out[XBA_UUID_LEN + 1]);

/* Build the signing input "context || alert" into a malloc'ed buffer. */
int envelope_signing_input(const uint8_t *alert, size_t len, uint8_t **out, size_t *out_len);

#endif
