/*
 * display.h — how an alert looks to a duty officer: one block per alert in the terminal (`xba watch`,
 * `xba history`), or one JSON object per line (`--json`).  Text is printed as the origin wrote it: Arabic and
 * French arrive as UTF-8 and leave as UTF-8, untouched (the terminal does the shaping and direction).
 */
#ifndef XBA_DISPLAY_H
#define XBA_DISPLAY_H

#include <stdbool.h>
#include <stdio.h>

#include "error.h"
#include "xba.pb-c.h"

struct display_options {
	bool color;             /* ANSI colours and reverse video (stdout is a terminal) */
	bool bell;              /* ring the bell for emergencies */
	const char *language;   /* preferred language tag ("fr", "ar", "en") */
	int width;              /* wrap lines at this many columns (display_width()); 0: never */
};

#define DISPLAY_WIDTH_MIN 20

/* Columns to wrap at: the terminal's, when stdout is one; else $COLUMNS; else 80. */
int display_width(void);
/* Rows of the terminal on stdout; 0 when stdout is not a terminal or it does not say. */
int display_height(void);

/*
 * Write text (lines ending in '\n'; may hold our own ANSI escapes, but no sender's control character: clean it
 * first) wrapped at width columns, each wrapped row indented deeper than any line of an alert block; width 0
 * writes it as it is.  Returns the rows written (for redrawing in place).
 */
int display_write_wrapped(FILE *out, int width, const char *text, size_t len);
/* display_write_wrapped of a formatted text; -1 (nothing written) when out of memory. */
int display_print_wrapped(FILE *out, int width, const char *fmt, ...) XBA_PRINTF(3, 4);

/* Preferred language from $XBA_LANG, then $LANG ("fr_NE.UTF-8" -> "fr"), else "en". */
const char *display_default_language(void);

/* The officer's block for one inbox (or outgoing) entry. */
void display_entry(FILE *out, const struct display_options *opts, const Xba__V1__InboxEntry *entry);

/* One JSON object (one line) for an entry: every field of the alert, all info blocks, and the agent's state. */
void display_entry_json(FILE *out, const Xba__V1__InboxEntry *entry);

/*
 * What an officer must be told about the agent's signing key, into out (>= 1024 bytes), or NULL when nothing:
 * it cannot sign now (alerts submitted here are refused), or it will not be able to within the agent's
 * key_warning_days.  Shown by `xba status` and at the top of `xba watch`.
 */
const char *display_key_warning(const Xba__V1__AgentStatusReply *s, char *out, size_t size);

/*
 * This machine's clock against the broker's, into out (>= 512 bytes), or NULL when they agree within 30 s or the
 * agent has not heard the broker's: which way it is off, by how much, and what that does.  Shown by `xba status`
 * and `xba watch`.
 */
const char *display_clock_warning(const Xba__V1__AgentStatusReply *s, char *out, size_t size);

/*
 * Why the outbox does not drain, into out (>= 1024 bytes), or NULL when nothing holds it: the broker refuses an
 * alert for now (a transient code), and every later alert from this node waits behind it.  What to do is named
 * for the codes an operator can act on.  Shown by `xba status` and by `xba send` when it stops waiting.
 */
const char *display_held_outbox(const Xba__V1__AgentStatusReply *s, char *out, size_t size);

/*
 * One line of another node's text (an officer's name, an acknowledgement's note, a headline) made safe to print
 * into out: each control character (and explicit bidi formatting character) becomes U+FFFD, as in display_entry;
 * cut to fit, never mid-character.  Print the line it goes into with display_write_wrapped.
 */
const char *display_clean(const char *text, char *out, size_t size);

/* What a recipient agent's refusal code (DeliveryAck.refused, as track and broadcast --wait show it) most likely
 * means for the sender, and what to do: one sentence. */
const char *display_refusal_advice(const char *code);

/* "2026-11-25 16:40:12Z" into out (>= 24 bytes). */
char *display_time(int64_t ms, char *out, size_t size);

#endif
