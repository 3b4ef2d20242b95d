/*
 * alert.h — the alert as every program sees it: decode, validate, encode, and the names of its enum values.
 *
 * Flow: an officer's alert is built by the CLI, validated and encoded here, signed by envelope.c in the agent,
 * and on every receiving side decoded and validated here again after envelope.c verified the exact bytes.
 * The alert type is protobuf-c's generated Xba__V1__Alert (proto/xba.proto).
 */
#ifndef XBA_ALERT_H
#define XBA_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "xba.pb-c.h"

/* Limits, in bytes of UTF-8 for text and in items for lists (docs/protocol.md repeats them). */
#define ALERT_MAX_BYTES (64 * 1024)      /* a serialized alert */
#define ALERT_AUTHOR_MAX 128
#define ALERT_INCIDENT_MAX 128
#define ALERT_NOTE_MAX 1024
#define ALERT_EVENT_MAX 128
#define ALERT_HEADLINE_MAX 160
#define ALERT_DESCRIPTION_MAX 8192
#define ALERT_INSTRUCTION_MAX 4096
#define ALERT_AREA_DESC_MAX 512
#define ALERT_GEOCODE_MAX 128            /* name and value each */
#define ALERT_PARAM_NAME_MAX 64
#define ALERT_PARAM_VALUE_MAX 512
#define ALERT_MAX_INFO 8
#define ALERT_MAX_AREAS 16
#define ALERT_MAX_POLYGONS 8             /* per area */
#define ALERT_MAX_POLYGON_POINTS 256
#define ALERT_MAX_CIRCLES 8              /* per area */
#define ALERT_MAX_GEOCODES 32            /* per area */
#define ALERT_MAX_PARAMS 32
#define ALERT_MAX_ADDRESSEES 64
#define ALERT_MAX_REFERENCES 32
#define ALERT_MAX_RADIUS_KM 5000.0

/*
 * Check every rule of docs/protocol.md "Alert validation": required fields, enum ranges, UTF-8, lengths, id and
 * node-id syntax, language tags (unique per alert), polygons closed and within bounds, expiry after sent.  On
 * failure the message names the field path ("info[1].headline: 171 bytes, at most 160").
 */
int alert_validate(const Xba__V1__Alert *alert, struct xba_error *err);

/*
 * What senders SHOULD NOT send, refused where an officer submits (the agent), not by alert_validate, so that what
 * the broker journaled before stays valid:
 *   - control characters in the alert's text (C0, DEL and C1; in description and instruction a line break or a
 *     tab is text): a terminal acts on them, and a line break in a headline reads as structure.  Receivers must
 *     still render text defensively (agents/display.c).  The message names the field, the byte and its offset;
 *   - parameter names kept for the CAP mapping: TLP, and names starting XBA- (docs/protocol.md 5.4).
 */
int alert_check_submission(const Xba__V1__Alert *alert, struct xba_error *err);

/* Whether alert names id among its references (an update or cancel naming a version, an ACK its alert). */
bool alert_names_reference(const Xba__V1__Alert *alert, const char *id);

/* Unpack and validate.  Returns NULL on failure (XBA_EDECODE, XBA_ETOOBIG or a validation code in err); the
 * caller frees the result with alert_free(). */
Xba__V1__Alert *alert_decode(const uint8_t *bytes, size_t len, struct xba_error *err);
void alert_free(Xba__V1__Alert *alert);

/* Validate, then pack into a malloc'ed buffer the caller frees. */
int alert_encode(const Xba__V1__Alert *alert, uint8_t **out, size_t *out_len, struct xba_error *err);

/* The info block to show to a reader who prefers `language` (exact tag, then same primary language, then the
 * first block).  NULL when the alert has none. */
const Xba__V1__Info *alert_info_for_language(const Xba__V1__Alert *alert, const char *language);

/*
 * Names of enum values as operators and YAML files write them: lower-case, '-' between words
 * ("border-incident", "search-and-rescue", "amber+strict", "extreme").  *_name returns NULL for an
 * out-of-range value; *_parse returns 0 and the value, or XBA_EENUM (0 / "unspecified" is never parsed).
 */
enum alert_enum_kind {
	ALERT_ENUM_STATUS,
	ALERT_ENUM_MSG_TYPE,
	ALERT_ENUM_CATEGORY,
	ALERT_ENUM_SEVERITY,
	ALERT_ENUM_URGENCY,
	ALERT_ENUM_CERTAINTY,
	ALERT_ENUM_TLP,
};
const char *alert_enum_name(enum alert_enum_kind kind, int value);
int alert_enum_parse(enum alert_enum_kind kind, const char *text, int *value);
/* Highest valid value of the kind (values run 1..max). */
int alert_enum_max(enum alert_enum_kind kind);
/* "category" etc., for messages. */
const char *alert_enum_kind_name(enum alert_enum_kind kind);

#endif
