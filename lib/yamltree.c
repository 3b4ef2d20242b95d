/*
 * yamltree.c — libyaml events to a located tree, and the typed readers every YAML loader uses (see yamltree.h).
 *
 * Sits at the very start of every configuration path: region.yaml, rules.yaml, broker.yaml, agent.yaml and the
 * alert files of `xba send` are read here before any loader looks at a value.  The tree is built from the event
 * API with an explicit stack, so nesting (YAML_MAX_DEPTH) and size (YAML_MAX_NODES) are refused while parsing,
 * before memory is spent on them.  Every node of a document is also kept in one flat list, so freeing is a loop:
 * nothing here recurses.
 */
#include "yamltree.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <yaml.h>

#include "clock.h"

/* The public document plus the flat list of every node it owns.  ydoc_free() walks the list, not the tree. */
struct ydoc_impl {
	struct ydoc pub;              /* first, so a struct ydoc * is a struct ydoc_impl * */
	struct ynode **all;           /* every node allocated for this document */
	size_t n_all;
	size_t cap_all;
};

/* One open collection while building. */
struct build_frame {
	struct ynode *node;           /* the sequence or map being filled */
	size_t cap;                   /* allocated slots in node->items (and node->keys) */
	struct ynode *pending_key;    /* map only: key read, value not yet */
};

struct builder {
	struct ydoc_impl *doc;
	const char *data;             /* the bytes being parsed, to place reader errors */
	size_t len;
	struct build_frame stack[YAML_MAX_DEPTH];
	int depth;                    /* open collections */
	int documents;                /* documents started so far */
	struct xba_error *err;
	size_t cursor;                /* a byte of data, at cursor_line:cursor_column as libyaml counts (0-based, in */
	size_t cursor_line;           /* characters): moved forward to each plain scalar's end (comment_follows) */
	size_t cursor_column;
};

/* Bytes of the line break at p (0 when none), as libyaml ends lines: CR LF, LF, CR, and U+0085, U+2028, U+2029. */
static size_t
line_break_len(const unsigned char *p, size_t left)
{
	if (p[0] == '\r')
		return left >= 2 && p[1] == '\n' ? 2 : 1;
	if (p[0] == '\n')
		return 1;
	if (left >= 2 && p[0] == 0xC2 && p[1] == 0x85)
		return 2;
	if (left >= 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9))
		return 3;
	return 0;
}

/* The byte of b->data at mark, found by moving the cursor forward (marks only grow; the walk is linear). */
static size_t
byte_at_mark(struct builder *b, const yaml_mark_t *mark)
{
	const unsigned char *d = (const unsigned char *)b->data;

	while (b->cursor < b->len && b->cursor_line < mark->line) {
		size_t brk = line_break_len(d + b->cursor, b->len - b->cursor);

		if (brk > 0) {
			b->cursor += brk;
			b->cursor_line++;
			b->cursor_column = 0;
		} else {
			if ((d[b->cursor] & 0xC0) != 0x80)
				b->cursor_column++;
			b->cursor++;
		}
	}
	while (b->cursor < b->len && b->cursor_column < mark->column &&
	    line_break_len(d + b->cursor, b->len - b->cursor) == 0) {
		b->cursor++;
		while (b->cursor < b->len && (d[b->cursor] & 0xC0) == 0x80)
			b->cursor++;
		b->cursor_column++;
	}
	return b->cursor;
}

/* Does a comment follow, on the same line, the plain scalar that ends at mark? */
static bool
comment_follows(struct builder *b, const yaml_mark_t *end)
{
	size_t at = byte_at_mark(b, end);

	while (at < b->len && (b->data[at] == ' ' || b->data[at] == '\t'))
		at++;
	return at < b->len && b->data[at] == '#';
}

/* Text of a scalar made safe for a one-line message: control bytes shown as '?', cut at 64 bytes with "...". */
static const char *
safe_text(const char *s, size_t len, char *out, size_t size)
{
	size_t n = 0, max = size - 4;

	for (size_t i = 0; i < len && n < max; i++)
		out[n++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (len > max)
		memcpy(out + n, "...", 4);
	else
		out[n] = '\0';
	return out;
}

#define SAFE_TEXT_SIZE 68

static const char *
node_text(const struct ynode *node, char out[SAFE_TEXT_SIZE])
{
	return safe_text(node->scalar, node->scalar_len, out, SAFE_TEXT_SIZE);
}

static const char *
kind_name(enum ynode_kind kind)
{
	switch (kind) {
	case YNODE_SCALAR: return "a scalar";
	case YNODE_SEQUENCE: return "a list";
	case YNODE_MAP: return "a map";
	}
	return "?";
}

/* Plain "", "~", "null", "Null", "NULL": YAML's null, which no typed reader accepts as a value. */
bool
ynode_is_null(const struct ynode *node)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };

	if (node->kind != YNODE_SCALAR || !node->plain)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(node->scalar, nulls[i]) == 0 && strlen(nulls[i]) == node->scalar_len)
			return true;
	return false;
}

static int
located_error(struct xba_error *err, const char *name, int line, int column, const char *fmt, ...) XBA_PRINTF(5, 6);

static int
located_error(struct xba_error *err, const char *name, int line, int column, const char *fmt, ...)
{
	char msg[XBA_ERROR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return xba_error_set(err, XBA_ECONFIG, "%s:%d:%d: %s", name, line, column, msg);
}

int
ydoc_error(const struct ydoc *doc, const struct ynode *node, struct xba_error *err, const char *path,
    const char *fmt, ...)
{
	char msg[XBA_ERROR_MSG_MAX];
	va_list ap;
	int line = node != NULL ? node->line : 1, column = node != NULL ? node->column : 1;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (path != NULL && path[0] != '\0')
		return located_error(err, doc->name, line, column, "%s: %s", path, msg);
	return located_error(err, doc->name, line, column, "%s", msg);
}

/* ---- building ---- */

/* A fresh node at mark, recorded in the document's flat list.  0, XBA_ECONFIG (too many) or XBA_ENOMEM. */
static int
node_new(struct builder *b, enum ynode_kind kind, const yaml_mark_t *mark, struct ynode **out)
{
	struct ydoc_impl *doc = b->doc;
	struct ynode *node;

	if (doc->n_all >= YAML_MAX_NODES)
		return located_error(b->err, doc->pub.name, (int)mark->line + 1, (int)mark->column + 1,
		    "too many YAML nodes (the limit is %d)", YAML_MAX_NODES);
	if (doc->n_all == doc->cap_all) {
		size_t cap = doc->cap_all ? doc->cap_all * 2 : 64;
		struct ynode **all = realloc(doc->all, cap * sizeof(*all));

		if (all == NULL)
			goto nomem;
		doc->all = all;
		doc->cap_all = cap;
	}
	node = calloc(1, sizeof(*node));
	if (node == NULL)
		goto nomem;
	node->kind = kind;
	node->line = (int)mark->line + 1;
	node->column = (int)mark->column + 1;
	doc->all[doc->n_all++] = node;
	*out = node;
	return 0;
nomem:
	return xba_error_set(b->err, XBA_ENOMEM, "%s: out of memory reading YAML", doc->pub.name);
}

/* Put child into the open collection on top of the stack (or make it the root).  0 or an error. */
static int
attach(struct builder *b, struct ynode *child)
{
	struct build_frame *top;
	struct ynode *parent;

	if (b->depth == 0) {
		b->doc->pub.root = child;
		return 0;
	}
	top = &b->stack[b->depth - 1];
	parent = top->node;
	if (parent->kind == YNODE_MAP && top->pending_key == NULL) {
		if (child->kind != YNODE_SCALAR)
			return located_error(b->err, b->doc->pub.name, child->line, child->column,
			    "a map key must be plain text, not %s", kind_name(child->kind));
		top->pending_key = child;
		return 0;
	}
	if (parent->count == top->cap) {
		size_t cap = top->cap ? top->cap * 2 : 4;
		struct ynode **items = realloc(parent->items, cap * sizeof(*items));

		if (items == NULL)
			return xba_error_set(b->err, XBA_ENOMEM, "%s: out of memory reading YAML", b->doc->pub.name);
		parent->items = items;
		if (parent->kind == YNODE_MAP) {
			struct ynode **keys = realloc(parent->keys, cap * sizeof(*keys));

			if (keys == NULL)
				return xba_error_set(b->err, XBA_ENOMEM, "%s: out of memory reading YAML",
				    b->doc->pub.name);
			parent->keys = keys;
		}
		top->cap = cap;
	}
	if (parent->kind == YNODE_MAP) {
		parent->keys[parent->count] = top->pending_key;
		top->pending_key = NULL;
	}
	parent->items[parent->count++] = child;
	return 0;
}

static int
key_cmp(const void *a, const void *b)
{
	const struct ynode *ka = *(const struct ynode *const *)a, *kb = *(const struct ynode *const *)b;
	size_t n = ka->scalar_len < kb->scalar_len ? ka->scalar_len : kb->scalar_len;
	int c = memcmp(ka->scalar, kb->scalar, n);

	if (c != 0)
		return c;
	if (ka->scalar_len != kb->scalar_len)
		return ka->scalar_len < kb->scalar_len ? -1 : 1;
	/* Equal keys: document order, so the first of a run is where the key was first written. */
	if (ka->line != kb->line)
		return ka->line < kb->line ? -1 : 1;
	return ka->column < kb->column ? -1 : ka->column > kb->column;
}

static bool
mark_before(const struct ynode *a, const struct ynode *b)
{
	return a->line < b->line || (a->line == b->line && a->column < b->column);
}

/* Refuse a map that has the same key twice; sorting keeps this O(n log n) on a map of 200000 keys. */
static int
check_duplicate_keys(struct builder *b, const struct ynode *map)
{
	const struct ynode **sorted, *dup = NULL, *first = NULL;
	char text[SAFE_TEXT_SIZE];

	if (map->count < 2)
		return 0;
	sorted = malloc(map->count * sizeof(*sorted));
	if (sorted == NULL)
		return xba_error_set(b->err, XBA_ENOMEM, "%s: out of memory reading YAML", b->doc->pub.name);
	memcpy(sorted, map->keys, map->count * sizeof(*sorted));
	qsort(sorted, map->count, sizeof(*sorted), key_cmp);
	for (size_t i = 1, run = 0; i < map->count; i++) {
		if (sorted[i]->scalar_len != sorted[run]->scalar_len ||
		    memcmp(sorted[i]->scalar, sorted[run]->scalar, sorted[i]->scalar_len) != 0) {
			run = i;
			continue;
		}
		/* Report the repeat that comes first in the file. */
		if (dup == NULL || mark_before(sorted[i], dup)) {
			dup = sorted[i];
			first = sorted[run];
		}
	}
	free(sorted);
	if (dup != NULL)
		return located_error(b->err, b->doc->pub.name, dup->line, dup->column,
		    "duplicate key '%s' (first written at line %d, column %d)", node_text(dup, text), first->line,
		    first->column);
	return 0;
}

/* Anchors, aliases and tags make a file mean something other than what it shows; none is accepted. */
static int
refuse_decorations(struct builder *b, const yaml_event_t *ev, const yaml_char_t *anchor, const yaml_char_t *tag)
{
	if (anchor != NULL)
		return located_error(b->err, b->doc->pub.name, (int)ev->start_mark.line + 1,
		    (int)ev->start_mark.column + 1, "anchors (&name) are not supported: write the value out");
	if (tag != NULL)
		return located_error(b->err, b->doc->pub.name, (int)ev->start_mark.line + 1,
		    (int)ev->start_mark.column + 1, "tags (!name) are not supported");
	return 0;
}

static int
open_collection(struct builder *b, const yaml_event_t *ev, enum ynode_kind kind)
{
	struct ynode *node = NULL;
	int rc;

	if (b->depth >= YAML_MAX_DEPTH)
		return located_error(b->err, b->doc->pub.name, (int)ev->start_mark.line + 1,
		    (int)ev->start_mark.column + 1, "nesting deeper than %d levels", YAML_MAX_DEPTH);
	if ((rc = node_new(b, kind, &ev->start_mark, &node)) != 0 || (rc = attach(b, node)) != 0)
		return rc;
	b->stack[b->depth].node = node;
	b->stack[b->depth].cap = 0;
	b->stack[b->depth].pending_key = NULL;
	b->depth++;
	return 0;
}

static int
handle_event(struct builder *b, const yaml_event_t *ev)
{
	const char *name = b->doc->pub.name;
	struct ynode *node = NULL;

	switch (ev->type) {
	case YAML_STREAM_START_EVENT:
	case YAML_STREAM_END_EVENT:
	case YAML_DOCUMENT_END_EVENT:
	case YAML_NO_EVENT:
		return 0;
	case YAML_DOCUMENT_START_EVENT:
		if (++b->documents > 1)
			return located_error(b->err, name, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
			    "more than one YAML document (only one is allowed per file)");
		return 0;
	case YAML_ALIAS_EVENT:
		return located_error(b->err, name, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
		    "aliases (*name) are not supported: write the value out");
	case YAML_SCALAR_EVENT: {
		int rc = refuse_decorations(b, ev, ev->data.scalar.anchor, ev->data.scalar.tag);

		if (rc != 0)
			return rc;
		if ((rc = node_new(b, YNODE_SCALAR, &ev->start_mark, &node)) != 0)
			return rc;
		node->scalar = malloc(ev->data.scalar.length + 1);
		if (node->scalar == NULL)
			return xba_error_set(b->err, XBA_ENOMEM, "%s: out of memory reading YAML", name);
		memcpy(node->scalar, ev->data.scalar.value, ev->data.scalar.length);
		node->scalar[ev->data.scalar.length] = '\0';
		node->scalar_len = ev->data.scalar.length;
		node->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		node->comment_follows = node->plain && comment_follows(b, &ev->end_mark);
		return attach(b, node);
	}
	case YAML_SEQUENCE_START_EVENT: {
		int rc = refuse_decorations(b, ev, ev->data.sequence_start.anchor, ev->data.sequence_start.tag);

		return rc != 0 ? rc : open_collection(b, ev, YNODE_SEQUENCE);
	}
	case YAML_MAPPING_START_EVENT: {
		int rc = refuse_decorations(b, ev, ev->data.mapping_start.anchor, ev->data.mapping_start.tag);

		return rc != 0 ? rc : open_collection(b, ev, YNODE_MAP);
	}
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		/* libyaml pairs every end with its start, so the stack cannot be empty here. */
		assert(b->depth > 0);
		b->depth--;
		if (ev->type == YAML_MAPPING_END_EVENT)
			return check_duplicate_keys(b, b->stack[b->depth].node);
		return 0;
	}
	return 0;
}

/* Line and column (1-based) of byte offset in data, for reader errors that libyaml reports by offset only. */
static void
offset_position(const char *data, size_t len, size_t offset, int *line, int *column)
{
	const unsigned char *p = (const unsigned char *)data;

	*line = 1;
	*column = 1;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (p[i] == '\n') {
			(*line)++;
			*column = 1;
		} else if ((p[i] & 0xc0) != 0x80) {
			(*column)++;  /* count characters, not UTF-8 continuation bytes */
		}
	}
}

static int
parser_error(struct builder *b, const yaml_parser_t *parser)
{
	const char *name = b->doc->pub.name;
	const char *problem = parser->problem != NULL ? parser->problem : "unknown error";
	int line, column;

	switch (parser->error) {
	case YAML_MEMORY_ERROR:
		return xba_error_set(b->err, XBA_ENOMEM, "%s: out of memory reading YAML", name);
	case YAML_READER_ERROR:
		/* libyaml points at the byte where a UTF-8 sequence went wrong, often the one after the bad lead byte
		 * (a space after "caf\xe9"): name the sequence's first byte and where it is, which is what to fix. */
		if (strstr(problem, "UTF-8") != NULL && parser->problem_offset <= b->len) {
			size_t at = parser->problem_offset;
			const unsigned char *d = (const unsigned char *)b->data;

			/* Back over at most three bytes of the sequence, to its lead byte. */
			for (int k = 0; k < 3 && at > 0; k++) {
				if (at < b->len && d[at] >= 0xc0)
					break;
				if ((d[at - 1] & 0x80) == 0)
					break;
				at--;
			}
			if (at < b->len && d[at] >= 0x80) {
				offset_position(b->data, b->len, at, &line, &column);
				return located_error(b->err, name, line, column, "not valid UTF-8: byte 0x%02X here does not "
				    "start a complete character (%s); save the file as UTF-8", d[at], problem);
			}
		}
		offset_position(b->data, b->len, parser->problem_offset, &line, &column);
		if (parser->problem_value != -1)
			return located_error(b->err, name, line, column, "not readable as YAML: %s (byte 0x%02x)",
			    problem, (unsigned)parser->problem_value & 0xffu);
		return located_error(b->err, name, line, column, "not readable as YAML: %s", problem);
	default:
		line = (int)parser->problem_mark.line + 1;
		column = (int)parser->problem_mark.column + 1;
		/* The commonest mistakes in a hand-edited file deserve words of their own: libyaml's own for a tab
		 * differ with where it is, and its words for a line indented wrongly do not say "indentation". */
		if (parser->problem_mark.index < b->len && b->data[parser->problem_mark.index] == '\t')
			return located_error(b->err, name, line, column,
			    "YAML syntax error: a tab character (YAML indents with spaces only: replace it with spaces)");
		if (parser->context != NULL) {
			bool indentation = strstr(problem, "did not find expected key") != NULL ||
			    strstr(problem, "did not find expected '-' indicator") != NULL;

			return located_error(b->err, name, line, column,
			    "YAML syntax error: %s (%s at line %d, column %d)%s", problem, parser->context,
			    (int)parser->context_mark.line + 1, (int)parser->context_mark.column + 1,
			    indentation ? ": check this line's indentation: the keys of one map, and the '-' items of one "
					  "list, each start in the same column as the others" : "");
		}
		return located_error(b->err, name, line, column, "YAML syntax error: %s", problem);
	}
}

struct ydoc *
ydoc_load_buffer(const char *name, const char *data, size_t len, struct xba_error *err)
{
	struct ydoc_impl *doc;
	struct builder b;
	yaml_parser_t parser;
	yaml_event_t ev;
	int rc = 0;
	bool done = false;

	assert(data != NULL || len == 0);
	doc = calloc(1, sizeof(*doc));
	if (doc == NULL || (doc->pub.name = strdup(name != NULL ? name : "(buffer)")) == NULL) {
		free(doc);
		xba_error_set(err, XBA_ENOMEM, "%s: out of memory reading YAML", name != NULL ? name : "(buffer)");
		return NULL;
	}
	memset(&b, 0, sizeof(b));
	b.doc = doc;
	b.data = data;
	b.len = len;
	b.err = err;
	if (!yaml_parser_initialize(&parser)) {
		xba_error_set(err, XBA_ENOMEM, "%s: out of memory reading YAML", doc->pub.name);
		ydoc_free(&doc->pub);
		return NULL;
	}
	if (EVP_Digest(data != NULL ? data : "", len, doc->pub.digest, NULL, EVP_sha256(), NULL) != 1) {
		xba_error_set(err, XBA_ECRYPTO, "%s: cannot compute SHA-256", doc->pub.name);
		yaml_parser_delete(&parser);
		ydoc_free(&doc->pub);
		return NULL;
	}
	/* A file saved by Notepad starts with a UTF-8 byte-order mark, which libyaml, told the encoding, would read as
	 * text (the first key became U+FEFF "category", and the file was refused at line 2).  It is no content: the
	 * parser starts after it, so that columns on line 1 are the officer's too.  The digest above keeps it. */
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
		data += 3;
		len -= 3;
		b.data = data;
		b.len = len;
	}
	yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
	yaml_parser_set_input_string(&parser, (const unsigned char *)(data != NULL ? data : ""), len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = parser_error(&b, &parser);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		rc = handle_event(&b, &ev);
		yaml_event_delete(&ev);
		if (rc != 0)
			break;
	}
	yaml_parser_delete(&parser);
	if (rc != 0) {
		ydoc_free(&doc->pub);
		return NULL;
	}
	xba_error_clear(err);
	return &doc->pub;
}

/* Read at most max_bytes of path into a fresh buffer.  XBA_EIO or XBA_ETOOBIG. */
static int
read_file(const char *path, size_t max_bytes, char **out, size_t *out_len, struct xba_error *err)
{
	size_t cap, len = 0;
	char *buf;
	int fd, saved;

	if (max_bytes > SIZE_MAX / 4)
		max_bytes = SIZE_MAX / 4;  /* so max_bytes + 1 and the doubling below cannot wrap */
	/* O_NONBLOCK: opening a FIFO with no writer would wait for ever (an officer's `xba send FILE` hung silently). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return xba_error_set(err, XBA_EIO, "%s: cannot open: %s", path, strerror(errno));
	{
		struct stat st;
		const char *what = NULL;
		int flags;

		if (fstat(fd, &st) != 0)
			what = strerror(errno);
		else if (S_ISDIR(st.st_mode))
			what = "cannot read: Is a directory";
		else if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
			what = strerror(errno);
		/* Blocking again: a pipe someone writes (`<(...)`) is read whole, and one nobody writes reads as empty. */
		if (what != NULL) {
			xba_error_set(err, XBA_EIO, "%s: %s", path, what);
			close(fd);
			return XBA_EIO;
		}
	}
	cap = max_bytes < 65536 ? max_bytes + 1 : 65536;
	buf = malloc(cap);
	if (buf == NULL) {
		close(fd);
		return xba_error_set(err, XBA_ENOMEM, "%s: out of memory", path);
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *grown;

			if (len > max_bytes) {
				free(buf);
				close(fd);
				return xba_error_set(err, XBA_ETOOBIG, "%s: file is larger than the limit of %zu bytes",
				    path, max_bytes);
			}
			cap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
			if ((grown = realloc(buf, cap)) == NULL) {
				free(buf);
				close(fd);
				return xba_error_set(err, XBA_ENOMEM, "%s: out of memory", path);
			}
			buf = grown;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			saved = errno;
			free(buf);
			close(fd);
			return xba_error_set(err, XBA_EIO, "%s: cannot read: %s", path, strerror(saved));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len > max_bytes) {
		free(buf);
		return xba_error_set(err, XBA_ETOOBIG, "%s: file is larger than the limit of %zu bytes", path,
		    max_bytes);
	}
	*out = buf;
	*out_len = len;
	return 0;
}

struct ydoc *
ydoc_load_file(const char *path, size_t max_bytes, struct xba_error *err)
{
	struct ydoc *doc;
	char *data = NULL;
	size_t len = 0;

	assert(path != NULL);
	if (read_file(path, max_bytes, &data, &len, err) != 0)
		return NULL;
	doc = ydoc_load_buffer(path, data, len, err);
	free(data);
	return doc;
}

void
ydoc_free(struct ydoc *pub)
{
	struct ydoc_impl *doc = (struct ydoc_impl *)pub;

	if (doc == NULL)
		return;
	for (size_t i = 0; i < doc->n_all; i++) {
		free(doc->all[i]->scalar);
		free(doc->all[i]->items);
		free(doc->all[i]->keys);
		free(doc->all[i]);
	}
	free(doc->all);
	free(doc->pub.name);
	free(doc);
}

/* ---- reading ---- */

const struct ynode *
ynode_get(const struct ynode *map, const char *key)
{
	size_t len;

	if (map == NULL || map->kind != YNODE_MAP || key == NULL)
		return NULL;
	len = strlen(key);
	for (size_t i = 0; i < map->count; i++)
		if (map->keys[i]->scalar_len == len && memcmp(map->keys[i]->scalar, key, len) == 0)
			return map->items[i];
	return NULL;
}

static int
missing(const struct ydoc *doc, struct xba_error *err, const char *path, const char *what)
{
	return ydoc_error(doc, NULL, err, path, "missing: expected %s", what);
}

int
ydoc_check_keys(const struct ydoc *doc, const struct ynode *map, const char *path, const char *const *allowed,
    struct xba_error *err)
{
	int rc = ydoc_expect_map(doc, map, path, err);

	if (rc != 0)
		return rc;
	for (size_t i = 0; i < map->count; i++) {
		const struct ynode *key = map->keys[i];
		char list[XBA_ERROR_MSG_MAX / 2], text[SAFE_TEXT_SIZE];
		size_t used = 0;
		bool known = false;

		for (size_t j = 0; allowed[j] != NULL && !known; j++)
			known = strlen(allowed[j]) == key->scalar_len && strcmp(allowed[j], key->scalar) == 0;
		if (known)
			continue;
		list[0] = '\0';
		for (size_t j = 0; allowed[j] != NULL && used < sizeof(list); j++) {
			int n = snprintf(list + used, sizeof(list) - used, "%s%s", j ? ", " : "", allowed[j]);

			if (n < 0)
				break;
			used += (size_t)n;
		}
		return ydoc_error(doc, key, err, path, "unknown key '%s' (expected one of: %s)", node_text(key, text),
		    list);
	}
	return 0;
}

int
ydoc_expect_map(const struct ydoc *doc, const struct ynode *node, const char *path, struct xba_error *err)
{
	if (node == NULL)
		return missing(doc, err, path, "a map");
	if (node->kind != YNODE_MAP) {
		if (ynode_is_null(node))
			return ydoc_error(doc, node, err, path, "expected a map, found nothing");
		return ydoc_error(doc, node, err, path, "expected a map (key: value lines), found %s",
		    kind_name(node->kind));
	}
	return 0;
}

int
ydoc_expect_sequence(const struct ydoc *doc, const struct ynode *node, const char *path, struct xba_error *err)
{
	if (node == NULL)
		return missing(doc, err, path, "a list");
	if (node->kind != YNODE_SEQUENCE) {
		if (ynode_is_null(node))
			return ydoc_error(doc, node, err, path, "expected a list, found nothing");
		return ydoc_error(doc, node, err, path, "expected a list (\"- item\" lines or [a, b]), found %s",
		    kind_name(node->kind));
	}
	return 0;
}

/* Refuse anything but a non-null scalar without NUL bytes. */
static int
expect_scalar(const struct ydoc *doc, const struct ynode *node, const char *path, const char *what,
    struct xba_error *err)
{
	if (node == NULL)
		return missing(doc, err, path, what);
	if (node->kind != YNODE_SCALAR)
		return ydoc_error(doc, node, err, path, "expected %s, found %s", what, kind_name(node->kind));
	if (ynode_is_null(node))
		return ydoc_error(doc, node, err, path, "expected %s, found nothing", what);
	if (strlen(node->scalar) != node->scalar_len)
		return ydoc_error(doc, node, err, path, "expected %s, found text with a NUL character", what);
	return 0;
}

int
ydoc_read_string(const struct ydoc *doc, const struct ynode *node, const char *path, size_t max_len,
    const char **out, struct xba_error *err)
{
	int rc = expect_scalar(doc, node, path, "text", err);

	if (rc != 0)
		return rc;
	if (node->scalar_len > max_len)
		return ydoc_error(doc, node, err, path, "too long (%zu bytes, at most %zu)", node->scalar_len, max_len);
	*out = node->scalar;
	return 0;
}

int
ydoc_read_bool(const struct ydoc *doc, const struct ynode *node, const char *path, bool *out,
    struct xba_error *err)
{
	static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES" };
	static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO" };
	char text[SAFE_TEXT_SIZE];
	int rc = expect_scalar(doc, node, path, "true or false", err);

	if (rc != 0)
		return rc;
	if (node->plain) {
		for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
			if (strcmp(node->scalar, yes[i]) == 0) {
				*out = true;
				return 0;
			}
			if (strcmp(node->scalar, no[i]) == 0) {
				*out = false;
				return 0;
			}
		}
	}
	return ydoc_error(doc, node, err, path, "expected true or false (without quotes), found %s'%s'",
	    node->plain ? "" : "quoted ", node_text(node, text));
}

int
ydoc_read_int(const struct ydoc *doc, const struct ynode *node, const char *path, int64_t min, int64_t max,
    int64_t *out, struct xba_error *err)
{
	char text[SAFE_TEXT_SIZE], *end;
	long long v;
	int rc = expect_scalar(doc, node, path, "a whole number", err);
	const char *s;

	if (rc != 0)
		return rc;
	s = node->scalar;
	if (!((s[0] >= '0' && s[0] <= '9') || ((s[0] == '-' || s[0] == '+') && s[1] >= '0' && s[1] <= '9')))
		return ydoc_error(doc, node, err, path, "expected a whole number, found '%s'", node_text(node, text));
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end != s + node->scalar_len)
		return ydoc_error(doc, node, err, path, "expected a whole number, found '%s'", node_text(node, text));
	if (errno == ERANGE || v < min || v > max)
		return ydoc_error(doc, node, err, path, "%s is out of range (must be between %lld and %lld)",
		    node_text(node, text), (long long)min, (long long)max);
	*out = (int64_t)v;
	return 0;
}

int
ydoc_read_double(const struct ydoc *doc, const struct ynode *node, const char *path, double min, double max,
    double *out, struct xba_error *err)
{
	char text[SAFE_TEXT_SIZE], *end;
	double v;
	int rc = expect_scalar(doc, node, path, "a number", err);

	if (rc != 0)
		return rc;
	/* Decimal notation only: strtod would also take "nan", "inf" and hex floats. */
	if (strspn(node->scalar, "0123456789+-.eE") != node->scalar_len ||
	    strpbrk(node->scalar, "0123456789") == NULL)
		return ydoc_error(doc, node, err, path, "expected a number, found '%s'", node_text(node, text));
	errno = 0;
	v = strtod(node->scalar, &end);
	if (end != node->scalar + node->scalar_len)
		return ydoc_error(doc, node, err, path, "expected a number, found '%s'", node_text(node, text));
	if (errno == ERANGE || !isfinite(v) || v < min || v > max)
		return ydoc_error(doc, node, err, path, "%s is out of range (must be between %g and %g)",
		    node_text(node, text), min, max);
	*out = v;
	return 0;
}

int
ydoc_read_time(const struct ydoc *doc, const struct ynode *node, const char *path, int64_t *out,
    struct xba_error *err)
{
	char text[SAFE_TEXT_SIZE];
	int rc = expect_scalar(doc, node, path, "an RFC 3339 date-time", err);

	if (rc != 0)
		return rc;
	if (clock_parse_rfc3339(node->scalar, out) != 0)
		return ydoc_error(doc, node, err, path,
		    "expected an RFC 3339 date-time such as 2026-01-01T00:00:00Z, found '%s'", node_text(node, text));
	return 0;
}
