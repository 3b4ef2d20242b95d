/*
 * encoding.h — byte <-> text encodings used in key files, region.yaml and operator output: hex, base64
 * (RFC 4648, padded) and ZeroMQ's Z85 for CURVE keys.
 */
#ifndef XBA_ENCODING_H
#define XBA_ENCODING_H

#include <stddef.h>
#include <stdint.h>

/* Lower-case hex of len bytes into out (>= 2*len+1). Returns out. */
char *encoding_hex(const uint8_t *bytes, size_t len, char *out);

/* Decode exactly out_len bytes of hex (either case) from text.  0 or XBA_EDECODE. */
int encoding_unhex(const char *text, uint8_t *out, size_t out_len);

/* Base64 of len bytes into out (>= 4*((len+2)/3)+1). Returns out. */
char *encoding_base64(const uint8_t *bytes, size_t len, char *out);

/* Decode base64 text that must yield exactly out_len bytes.  0 or XBA_EDECODE. */
int encoding_unbase64(const char *text, uint8_t *out, size_t out_len);

/* Decode a 40-character Z85 CURVE key into 32 bytes.  0 or XBA_EDECODE (wrong length or alphabet). */
int encoding_z85_key(const char *text, uint8_t out[32]);

#endif
