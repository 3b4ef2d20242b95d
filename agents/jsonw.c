/*
 * jsonw.c — minimal JSON object writer for the CLI's --json output (see jsonw.h).
 */
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
			if (*p < 0x20 || *p == 0x7f)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

void
jsonw_begin(struct jsonw *w, FILE *out)
{
	w->out = out;
	w->need_comma = false;
	fputc('{', out);
}

static void
member(struct jsonw *w, const char *key)
{
	if (w->need_comma)
		fputc(',', w->out);
	w->need_comma = true;
	jsonw_quote(w->out, key);
	fputc(':', w->out);
}

void
jsonw_string(struct jsonw *w, const char *key, const char *value)
{
	member(w, key);
	jsonw_quote(w->out, value);
}

void
jsonw_int(struct jsonw *w, const char *key, int64_t value)
{
	member(w, key);
	fprintf(w->out, "%lld", (long long)value);
}

void
jsonw_bool(struct jsonw *w, const char *key, bool value)
{
	member(w, key);
	fputs(value ? "true" : "false", w->out);
}

void
jsonw_end(struct jsonw *w)
{
	fputs("}\n", w->out);
	fflush(w->out);
}
