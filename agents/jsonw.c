/*
 * jsonw.c — minimal JSON writer for the CLI's --json output (see jsonw.h).
 */
#include <math.h>

#include "jsonw.h"

void
jsonw_quote(FILE *out, const char *text)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				fprintf(out, "\\u%04x", *p);
			} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
				/* C1 controls (U+0080-U+009F) escaped too: U+009B is CSI to a terminal that honours them,
				 * and --json output of another country's text is read on terminals too. */
				fprintf(out, "\\u%04x", p[1]);
				p++;
			} else {
				fputc(*p, out);
			}
		}
	}
	fputc('"', out);
}

/* Comma and key before a value at the current depth. */
static void
value_prefix(struct jsonw *w, const char *key)
{
	if (w->need_comma[w->depth])
		fputc(',', w->out);
	w->need_comma[w->depth] = true;
	if (key != NULL) {
		jsonw_quote(w->out, key);
		fputc(':', w->out);
	}
}

void
jsonw_begin(struct jsonw *w, FILE *out)
{
	w->out = out;
	w->depth = 0;
	w->need_comma[0] = false;
	fputc('{', out);
}

void
jsonw_string(struct jsonw *w, const char *key, const char *value)
{
	value_prefix(w, key);
	jsonw_quote(w->out, value);
}

void
jsonw_int(struct jsonw *w, const char *key, int64_t value)
{
	value_prefix(w, key);
	fprintf(w->out, "%lld", (long long)value);
}

void
jsonw_number(struct jsonw *w, const char *key, double value)
{
	value_prefix(w, key);
	if (isfinite(value))
		fprintf(w->out, "%.10g", value);
	else
		fputs("null", w->out); /* JSON has no NaN or infinity */
}

void
jsonw_bool(struct jsonw *w, const char *key, bool value)
{
	value_prefix(w, key);
	fputs(value ? "true" : "false", w->out);
}

static void
open_nested(struct jsonw *w, const char *key, char bracket)
{
	value_prefix(w, key);
	fputc(bracket, w->out);
	if (w->depth + 1 < JSONW_MAX_DEPTH)
		w->depth++;
	w->need_comma[w->depth] = false;
}

void
jsonw_object_begin(struct jsonw *w, const char *key)
{
	open_nested(w, key, '{');
}

void
jsonw_object_end(struct jsonw *w)
{
	fputc('}', w->out);
	if (w->depth > 0)
		w->depth--;
}

void
jsonw_array_begin(struct jsonw *w, const char *key)
{
	open_nested(w, key, '[');
}

void
jsonw_array_end(struct jsonw *w)
{
	fputc(']', w->out);
	if (w->depth > 0)
		w->depth--;
}

void
jsonw_end(struct jsonw *w)
{
	fputs("}\n", w->out);
	fflush(w->out);
}
