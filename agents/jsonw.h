/*
 * jsonw.h — the CLI's JSON output (`--json`): one object per line, so scripts can read alerts and results with
 * any JSON tool.  Text is written as JSON strings with every control byte escaped; UTF-8 passes through untouched.
 * Objects and arrays nest up to JSONW_MAX_DEPTH; the writer places the commas.
 */
#ifndef XBA_JSONW_H
#define XBA_JSONW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSONW_MAX_DEPTH 8

struct jsonw {
	FILE *out;                          /* where the object goes */
	int depth;                          /* open objects and arrays */
	bool need_comma[JSONW_MAX_DEPTH];   /* a value was already written at this depth */
};

/* Start the top-level object. */
void jsonw_begin(struct jsonw *w, FILE *out);
/* Members of the current object (key != NULL) or elements of the current array (key == NULL). */
void jsonw_string(struct jsonw *w, const char *key, const char *value);
void jsonw_int(struct jsonw *w, const char *key, int64_t value);
void jsonw_number(struct jsonw *w, const char *key, double value);
void jsonw_bool(struct jsonw *w, const char *key, bool value);
void jsonw_object_begin(struct jsonw *w, const char *key);
void jsonw_object_end(struct jsonw *w);
void jsonw_array_begin(struct jsonw *w, const char *key);
void jsonw_array_end(struct jsonw *w);
/* Close the top-level object and end the line. */
void jsonw_end(struct jsonw *w);

/* Write text as a quoted JSON string. */
void jsonw_quote(FILE *out, const char *text);

#endif
