/*
 * jsonw.h — the CLI's JSON output (`--json`): one object per line, so scripts can read alerts and results with
 * any JSON tool.  Text is written as JSON strings with every control byte escaped; UTF-8 passes through untouched.
 */
#ifndef XBA_JSONW_H
#define XBA_JSONW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct jsonw {
	FILE *out;      /* where the object goes */
	bool need_comma; /* a member was already written in the current object */
};

void jsonw_begin(struct jsonw *w, FILE *out);
void jsonw_string(struct jsonw *w, const char *key, const char *value);
void jsonw_int(struct jsonw *w, const char *key, int64_t value);
void jsonw_bool(struct jsonw *w, const char *key, bool value);
/* Close the object and end the line. */
void jsonw_end(struct jsonw *w);

/* Write text as a quoted JSON string. */
void jsonw_quote(FILE *out, const char *text);

#endif
