/*
 * syntax.h — the shape of every identifier and text that crosses a boundary: UTF-8 text, node ids, ISO 3166-1
 * alpha-3 codes, alert UUIDs, BCP 47 language tags.  Pure functions of their input; alert.c, directory.c and the
 * CLI call them before trusting a value.
 */
#ifndef XBA_SYNTAX_H
#define XBA_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XBA_NODE_ID_MAX 32 /* bytes, without the NUL */
#define XBA_UUID_LEN 36

/* Well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF) of exactly len bytes, no NUL. */
bool syntax_utf8_valid(const char *s, size_t len);

/* The length in bytes of the control character p starts with (C0 or DEL: 1; C1, U+0080-U+009F in UTF-8: 2), or 0
 * when it starts none.  p points into a NUL-terminated string.  What a terminal acts on and a reader takes for
 * structure: refused in what officers submit (alert_check_submission), shown as U+FFFD (agents/display.c). */
size_t syntax_control_len(const unsigned char *p);
/* Replace, in place, each byte of every control character in s (as syntax_control_len counts them) with '?';
 * NULL and "" are left alone.  For text no one verified, before it is logged, stored or shown. */
void syntax_scrub_controls(char *s);

/* Node id: 2..32 of [A-Z0-9-], first an upper-case letter, last not '-'.  "DZA", "IOM-ROMENA", "WHO-AFRO". */
bool syntax_node_id_valid(const char *s);

/* An ISO 3166-1 alpha-3 code assigned to a country ("DZA", "NER"); member nodes must use one. */
bool syntax_iso3166_alpha3(const char *s);

/* Canonical lower-case UUID text: 8-4-4-4-12 hex digits. */
bool syntax_uuid_valid(const char *s);

/* Fill out (>= 37 bytes) with a fresh version-7 UUID (RFC 9562): the Unix time in milliseconds, then 74 random
 * bits.  Ids made later sort later, so the broker's journal adds each new alert id at the right edge of its unique
 * index instead of on a random page of it (docs/performance.md §3); the time they reveal is the alert's sent_ms,
 * already in the same envelope.  Returns 0 or XBA_ECRYPTO when no randomness. */
int syntax_uuid_new(char out[XBA_UUID_LEN + 1]);

/* syntax_uuid_new for a given time (ms before 1970 count as 0): for tests. */
int syntax_uuid_v7(int64_t unix_ms, char out[XBA_UUID_LEN + 1]);

/* BCP 47 language tag, the subset we accept: a 2-3 letter primary language, then subtags of 2-8 letters or
 * digits ("ar", "fr-NE", "en-GB", "ar-Latn").  Case-insensitive, at most 35 bytes. */
bool syntax_language_tag_valid(const char *s);

#endif
