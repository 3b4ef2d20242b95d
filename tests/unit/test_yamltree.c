/*
 * test_yamltree.c — the located YAML tree every config loader starts from: positions, the refusals libyaml would
 * let through (duplicate keys, anchors, several documents, depth, size), libyaml's own errors, and the typed
 * readers.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "yamltree.h"

static struct ydoc *
load(const char *text, struct xba_error *err)
{
	return ydoc_load_buffer("t.yaml", text, strlen(text), err);
}

/* Load text that must be refused with code; returns the message for further checks. */
static void
refused(struct check_state *st, const char *text, int code, const char *needle)
{
	struct xba_error err;
	struct ydoc *doc = load(text, &err);

	CHECK(st, doc == NULL);
	ydoc_free(doc);
	CHECK_CODE(st, err.code, code);
	CHECK_CONTAINS(st, err.msg, needle);
}

static void
test_tree_and_positions(struct check_state *st)
{
	struct xba_error err;
	struct ydoc *doc = load("a: 1\nb:\n  - x\n  - 'y'\nc: {d: e}\n", &err);
	const struct ynode *b, *c;

	CHECK(st, doc != NULL);
	if (doc == NULL)
		return;
	CHECK(st, doc->root->kind == YNODE_MAP && doc->root->count == 3);
	CHECK(st, strcmp(ynode_get(doc->root, "a")->scalar, "1") == 0);
	CHECK(st, ynode_get(doc->root, "a")->line == 1 && ynode_get(doc->root, "a")->column == 4);
	b = ynode_get(doc->root, "b");
	CHECK(st, b->kind == YNODE_SEQUENCE && b->count == 2);
	CHECK(st, b->items[0]->plain && !b->items[1]->plain);
	CHECK(st, b->items[1]->line == 4 && b->items[1]->column == 5);
	CHECK(st, strcmp(b->items[1]->scalar, "y") == 0 && b->items[1]->scalar_len == 1);
	c = ynode_get(doc->root, "c");
	CHECK(st, c->kind == YNODE_MAP && c->line == 5 && c->column == 4);
	CHECK(st, strcmp(ynode_get(c, "d")->scalar, "e") == 0);
	CHECK(st, ynode_get(doc->root, "zz") == NULL);
	CHECK(st, ynode_get(b, "a") == NULL);
	CHECK(st, ynode_get(NULL, "a") == NULL);
	CHECK(st, strcmp(doc->name, "t.yaml") == 0);
	ydoc_free(doc);
}

static void
test_empty_document(struct check_state *st)
{
	struct xba_error err;
	struct ydoc *doc = load("", &err);

	CHECK(st, doc != NULL && doc->root == NULL);
	ydoc_free(doc);
	doc = load("# only a comment\n", &err);
	CHECK(st, doc != NULL && doc->root == NULL);
	ydoc_free(doc);
	ydoc_free(NULL);
}

static void
test_duplicate_key(struct check_state *st)
{
	refused(st, "a: 1\nb: 2\na: 3\n", XBA_ECONFIG,
	    "t.yaml:3:1: duplicate key 'a' (first written at line 1, column 1)");
	refused(st, "x:\n  k: 1\n  j: 2\n  k: 3\n", XBA_ECONFIG, "t.yaml:4:3: duplicate key 'k'");
	/* the first repeat in the file is the one reported */
	refused(st, "b: 1\na: 1\na: 2\nb: 2\n", XBA_ECONFIG, "t.yaml:3:1: duplicate key 'a'");
}

static void
test_non_scalar_key(struct check_state *st)
{
	refused(st, "{[a, b]: 1}\n", XBA_ECONFIG, "t.yaml:1:2: a map key must be plain text, not a list");
	refused(st, "? {a: 1}\n: 2\n", XBA_ECONFIG, "t.yaml:1:3: a map key must be plain text, not a map");
}

static void
test_anchors_aliases_tags(struct check_state *st)
{
	refused(st, "a: &x 1\nb: *x\n", XBA_ECONFIG, "t.yaml:1:4: anchors");
	refused(st, "a: *x\n", XBA_ECONFIG, "t.yaml:1:4: aliases");
	refused(st, "a: !!str 1\n", XBA_ECONFIG, "t.yaml:1:4: tags");
	refused(st, "a: &l [1]\n", XBA_ECONFIG, "t.yaml:1:4: anchors");
}

static void
test_several_documents(struct check_state *st)
{
	refused(st, "a: 1\n---\nb: 2\n", XBA_ECONFIG, "t.yaml:2:1: more than one YAML document");
	refused(st, "--- 1\n--- 2\n", XBA_ECONFIG, "t.yaml:2:1: more than one");
}

/* "[" * n + "]" * n */
static char *
nested_flow(int n)
{
	char *s = malloc((size_t)n * 2 + 1);

	for (int i = 0; i < n; i++) {
		s[i] = '[';
		s[n + i] = ']';
	}
	s[2 * n] = '\0';
	return s;
}

static void
test_depth(struct check_state *st)
{
	struct xba_error err;
	char *s = nested_flow(YAML_MAX_DEPTH);
	struct ydoc *doc = load(s, &err);
	const struct ynode *n;
	int depth = 0;

	CHECK(st, doc != NULL);
	for (n = doc ? doc->root : NULL; n != NULL; n = n->count ? n->items[0] : NULL)
		depth++;
	CHECK(st, depth == YAML_MAX_DEPTH);
	ydoc_free(doc);
	free(s);

	s = nested_flow(YAML_MAX_DEPTH + 1);
	refused(st, s, XBA_ECONFIG, "t.yaml:1:33: nesting deeper than 32 levels");
	free(s);
	s = nested_flow(1000);
	refused(st, s, XBA_ECONFIG, "nesting deeper than 32 levels");
	free(s);
}

static void
test_depth_block(struct check_state *st)
{
	/* 1000 nested block maps: "k:\n  k:\n    k: ..." */
	size_t cap = 1000 * 1003 + 16, len = 0;
	char *s = malloc(cap);

	for (int i = 0; i < 1000; i++) {
		memset(s + len, ' ', (size_t)i);
		len += (size_t)i;
		memcpy(s + len, "k:\n", 3);
		len += 3;
	}
	s[len] = '\0';
	refused(st, s, XBA_ECONFIG, "nesting deeper than 32 levels");
	free(s);
}

static void
test_too_many_nodes(struct check_state *st)
{
	size_t n = 300000, len = 0;
	char *s = malloc(n * 4 + 1);

	for (size_t i = 0; i < n; i++) {
		memcpy(s + len, "- a\n", 4);
		len += 4;
	}
	s[len] = '\0';
	refused(st, s, XBA_ECONFIG, "too many YAML nodes (the limit is 200000)");
	free(s);
}

static void
test_libyaml_errors(struct check_state *st)
{
	/* a tab where indentation is expected */
	refused(st, "a:\n\tb: 1\n", XBA_ECONFIG,
	    "t.yaml:2:1: YAML syntax error: a tab character (YAML indents with spaces only: replace it with spaces)");
	/* ... the same words for a tab that libyaml reports otherwise (after a key at the margin) */
	refused(st, "a:\n  b: 1\n\tc: 2\n", XBA_ECONFIG,
	    ": YAML syntax error: a tab character (YAML indents with spaces only: replace it with spaces)");
	/* a key or a list item one column off: the error says to look at the indentation */
	refused(st, "a:\n  - b: 1\n   c: 2\n", XBA_ECONFIG,
	    "t.yaml:3:4: YAML syntax error: did not find expected '-' indicator (while parsing a block collection at "
	    "line 2, column 3): check this line's indentation: the keys of one map, and the '-' items of one list, "
	    "each start in the same column as the others");
	refused(st, "a:\n  - b: 1\n    c: 2\n d: 3\n", XBA_ECONFIG, "t.yaml:4:2: YAML syntax error: did not find "
	    "expected key (while parsing a block mapping at line 1, column 1): check this line's indentation");
	refused(st, "a: 1\n%%%\n", XBA_ECONFIG, "t.yaml:2:2: YAML syntax error: could not find expected directive");
	refused(st, "a: [1, 2\n", XBA_ECONFIG, "YAML syntax error");
	refused(st, "a: b: c\n", XBA_ECONFIG, "t.yaml:1:5: YAML syntax error: mapping values are not allowed");
	refused(st, "a: \"unterminated\n", XBA_ECONFIG, "(while scanning a quoted scalar at line 1, column 4)");
	/* invalid UTF-8 is placed by byte offset */
	refused(st, "a: 1\nb: \xff\n", XBA_ECONFIG, "t.yaml:2:4: not valid UTF-8: byte 0xFF here");
	{
		struct xba_error err;
		struct ydoc *doc = ydoc_load_buffer("nul.yaml", "a: \0b\n", 6, &err);

		CHECK(st, doc == NULL);
		CHECK_CODE(st, err.code, XBA_ECONFIG);
		CHECK_CONTAINS(st, err.msg, "nul.yaml:1:4: not readable as YAML");
	}
}

static void
test_check_keys(struct check_state *st)
{
	static const char *const allowed[] = { "alpha", "beta", "gamma", NULL };
	struct xba_error err;
	struct ydoc *doc = load("top:\n  alpha: 1\n  delta: 2\n", &err);
	const struct ynode *top = ynode_get(doc->root, "top");

	CHECK_CODE(st, ydoc_check_keys(doc, top, "top", allowed, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "t.yaml:3:3: top: unknown key 'delta' (expected one of: alpha, beta, gamma)");
	CHECK_CODE(st, ydoc_check_keys(doc, doc->root, NULL, allowed, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "t.yaml:1:1: unknown key 'top'");
	CHECK_CODE(st, ydoc_check_keys(doc, ynode_get(top, "alpha"), "top.alpha", allowed, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "t.yaml:2:10: top.alpha: expected a map");
	ydoc_free(doc);

	doc = load("alpha: 1\nbeta: 2\n", &err);
	CHECK_CODE(st, ydoc_check_keys(doc, doc->root, NULL, allowed, &err), 0);
	ydoc_free(doc);
}

static void
test_expect(struct check_state *st)
{
	struct xba_error err;
	struct ydoc *doc = load("s: x\nl: [1]\nm: {}\nn:\n", &err);

	CHECK_CODE(st, ydoc_expect_map(doc, ynode_get(doc->root, "m"), "m", &err), 0);
	CHECK_CODE(st, ydoc_expect_sequence(doc, ynode_get(doc->root, "l"), "l", &err), 0);
	CHECK_CODE(st, ydoc_expect_map(doc, ynode_get(doc->root, "l"), "l", &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "t.yaml:2:4: l: expected a map");
	CHECK_CODE(st, ydoc_expect_sequence(doc, ynode_get(doc->root, "s"), "s", &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "t.yaml:1:4: s: expected a list");
	CHECK_CODE(st, ydoc_expect_sequence(doc, ynode_get(doc->root, "n"), "n", &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "n: expected a list, found nothing");
	CHECK_CODE(st, ydoc_expect_map(doc, NULL, "zz", &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "t.yaml:1:1: zz: missing");
	CHECK_CODE(st, ydoc_error(doc, doc->root, &err, "p.q", "bad %d", 7), XBA_ECONFIG);
	CHECK(st, strcmp(err.msg, "t.yaml:1:1: p.q: bad 7") == 0);
	CHECK_CODE(st, ydoc_error(doc, doc->root, &err, NULL, "plain"), XBA_ECONFIG);
	CHECK(st, strcmp(err.msg, "t.yaml:1:1: plain") == 0);
	ydoc_free(doc);
}

static void
test_read_string(struct check_state *st)
{
	struct xba_error err;
	struct ydoc *doc = load("a: hello\nb: \"\"\nc: ~\nd: [x]\ne: \"null\"\nf: \"a\\0b\"\n", &err);
	const char *s = NULL;

	CHECK_CODE(st, ydoc_read_string(doc, ynode_get(doc->root, "a"), "a", 5, &s, &err), 0);
	CHECK(st, s != NULL && strcmp(s, "hello") == 0);
	CHECK_CODE(st, ydoc_read_string(doc, ynode_get(doc->root, "a"), "a", 4, &s, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "t.yaml:1:4: a: too long (5 bytes, at most 4)");
	CHECK_CODE(st, ydoc_read_string(doc, ynode_get(doc->root, "b"), "b", 5, &s, &err), 0);
	CHECK(st, strcmp(s, "") == 0);
	CHECK_CODE(st, ydoc_read_string(doc, ynode_get(doc->root, "c"), "c", 5, &s, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "t.yaml:3:4: c: expected text, found nothing");
	CHECK_CODE(st, ydoc_read_string(doc, ynode_get(doc->root, "d"), "d", 5, &s, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "t.yaml:4:4: d: expected text, found a list");
	CHECK_CODE(st, ydoc_read_string(doc, ynode_get(doc->root, "e"), "e", 5, &s, &err), 0);
	CHECK(st, strcmp(s, "null") == 0);
	CHECK_CODE(st, ydoc_read_string(doc, ynode_get(doc->root, "f"), "f", 5, &s, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "NUL");
	CHECK_CODE(st, ydoc_read_string(doc, NULL, "g", 5, &s, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "g: missing");
	ydoc_free(doc);
}

static void
test_read_bool(struct check_state *st)
{
	struct xba_error err;
	struct ydoc *doc = load("[true, false, yes, no, True, NO, \"true\", maybe, 1, []]\n", &err);
	const struct ynode *l = doc->root;
	bool b = false;

	CHECK_CODE(st, ydoc_read_bool(doc, l->items[0], "x", &b, &err), 0);
	CHECK(st, b);
	CHECK_CODE(st, ydoc_read_bool(doc, l->items[1], "x", &b, &err), 0);
	CHECK(st, !b);
	CHECK_CODE(st, ydoc_read_bool(doc, l->items[2], "x", &b, &err), 0);
	CHECK(st, b);
	CHECK_CODE(st, ydoc_read_bool(doc, l->items[3], "x", &b, &err), 0);
	CHECK(st, !b);
	CHECK_CODE(st, ydoc_read_bool(doc, l->items[4], "x", &b, &err), 0);
	CHECK(st, b);
	CHECK_CODE(st, ydoc_read_bool(doc, l->items[5], "x", &b, &err), 0);
	CHECK(st, !b);
	CHECK_CODE(st, ydoc_read_bool(doc, l->items[6], "x", &b, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "t.yaml:1:34: x: expected true or false (without quotes), found quoted 'true'");
	CHECK_CODE(st, ydoc_read_bool(doc, l->items[7], "x", &b, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "found 'maybe'");
	CHECK_CODE(st, ydoc_read_bool(doc, l->items[8], "x", &b, &err), XBA_ECONFIG);
	CHECK_CODE(st, ydoc_read_bool(doc, l->items[9], "x", &b, &err), XBA_ECONFIG);
	ydoc_free(doc);
}

static void
test_read_int(struct check_state *st)
{
	struct xba_error err;
	struct ydoc *doc = load(
	    "[12, -5, 12abc, 99999999999999999999, 101, \" 3\", 0x10, +7, '', 9223372036854775807]\n", &err);
	const struct ynode *l = doc->root;
	int64_t v = 0;

	CHECK_CODE(st, ydoc_read_int(doc, l->items[0], "n", 0, 100, &v, &err), 0);
	CHECK(st, v == 12);
	CHECK_CODE(st, ydoc_read_int(doc, l->items[1], "n", -10, 100, &v, &err), 0);
	CHECK(st, v == -5);
	CHECK_CODE(st, ydoc_read_int(doc, l->items[1], "n", 0, 100, &v, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "n: -5 is out of range (must be between 0 and 100)");
	CHECK_CODE(st, ydoc_read_int(doc, l->items[2], "n", 0, 100, &v, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "t.yaml:1:10: n: expected a whole number, found '12abc'");
	CHECK_CODE(st, ydoc_read_int(doc, l->items[3], "n", 0, INT64_MAX, &v, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "out of range (must be between 0 and 9223372036854775807)");
	CHECK_CODE(st, ydoc_read_int(doc, l->items[4], "n", 0, 100, &v, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "101 is out of range (must be between 0 and 100)");
	CHECK_CODE(st, ydoc_read_int(doc, l->items[4], "n", 101, 101, &v, &err), 0);
	CHECK_CODE(st, ydoc_read_int(doc, l->items[5], "n", 0, 100, &v, &err), XBA_ECONFIG);
	CHECK_CODE(st, ydoc_read_int(doc, l->items[6], "n", 0, 100, &v, &err), XBA_ECONFIG);
	CHECK_CODE(st, ydoc_read_int(doc, l->items[7], "n", 0, 100, &v, &err), 0);
	CHECK(st, v == 7);
	CHECK_CODE(st, ydoc_read_int(doc, l->items[8], "n", 0, 100, &v, &err), XBA_ECONFIG);
	CHECK_CODE(st, ydoc_read_int(doc, l->items[9], "n", INT64_MIN, INT64_MAX, &v, &err), 0);
	CHECK(st, v == INT64_MAX);
	ydoc_free(doc);
}

static void
test_read_double(struct check_state *st)
{
	struct xba_error err;
	struct ydoc *doc = load("[1.5, -90, nan, inf, 1e3, 2.5x, 0x1p3, 91]\n", &err);
	const struct ynode *l = doc->root;
	double v = 0;

	CHECK_CODE(st, ydoc_read_double(doc, l->items[0], "d", -90, 90, &v, &err), 0);
	CHECK(st, v == 1.5);
	CHECK_CODE(st, ydoc_read_double(doc, l->items[1], "d", -90, 90, &v, &err), 0);
	CHECK(st, v == -90);
	CHECK_CODE(st, ydoc_read_double(doc, l->items[2], "d", -90, 90, &v, &err), XBA_ECONFIG);
	CHECK_CODE(st, ydoc_read_double(doc, l->items[3], "d", -1e9, 1e9, &v, &err), XBA_ECONFIG);
	CHECK_CODE(st, ydoc_read_double(doc, l->items[4], "d", 0, 1e9, &v, &err), 0);
	CHECK(st, v == 1000);
	CHECK_CODE(st, ydoc_read_double(doc, l->items[5], "d", -90, 90, &v, &err), XBA_ECONFIG);
	CHECK_CODE(st, ydoc_read_double(doc, l->items[6], "d", -90, 90, &v, &err), XBA_ECONFIG);
	CHECK_CODE(st, ydoc_read_double(doc, l->items[7], "d", -90, 90, &v, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "d: 91 is out of range (must be between -90 and 90)");
	ydoc_free(doc);
}

static void
test_read_time(struct check_state *st)
{
	struct xba_error err;
	struct ydoc *doc = load("[2026-01-01T00:00:00Z, \"2026-01-01T01:00:00+01:00\", 2026-13-01T00:00:00Z, 12]\n",
	    &err);
	const struct ynode *l = doc->root;
	int64_t t = 0;

	CHECK_CODE(st, ydoc_read_time(doc, l->items[0], "t", &t, &err), 0);
	CHECK(st, t == INT64_C(1767225600000));
	CHECK_CODE(st, ydoc_read_time(doc, l->items[1], "t", &t, &err), 0);
	CHECK(st, t == INT64_C(1767225600000));
	CHECK_CODE(st, ydoc_read_time(doc, l->items[2], "t", &t, &err), XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, "t: expected an RFC 3339 date-time such as 2026-01-01T00:00:00Z, found "
	    "'2026-13-01T00:00:00Z'");
	CHECK_CODE(st, ydoc_read_time(doc, l->items[3], "t", &t, &err), XBA_ECONFIG);
	ydoc_free(doc);
}

static void
test_message_is_one_line(struct check_state *st)
{
	struct xba_error err;
	struct ydoc *doc = load("\"a\\nb\": 1\n", &err);
	static const char *const allowed[] = { "x", NULL };

	CHECK_CODE(st, ydoc_check_keys(doc, doc->root, NULL, allowed, &err), XBA_ECONFIG);
	CHECK(st, strchr(err.msg, '\n') == NULL);
	CHECK_CONTAINS(st, err.msg, "unknown key 'a?b'");
	ydoc_free(doc);
}

static void
test_load_file(struct check_state *st)
{
	char path[] = "test_yamltree_XXXXXX";
	struct xba_error err;
	struct ydoc *doc;
	int fd = mkstemp(path);
	FILE *f;

	CHECK(st, fd >= 0);
	if (fd < 0)
		return;
	f = fdopen(fd, "w");
	fputs("key: value\n", f);
	fclose(f);
	doc = ydoc_load_file(path, 1024, &err);
	CHECK(st, doc != NULL && strcmp(doc->name, path) == 0);
	CHECK(st, doc != NULL && strcmp(ynode_get(doc->root, "key")->scalar, "value") == 0);
	ydoc_free(doc);
	doc = ydoc_load_file(path, 11, &err);
	CHECK(st, doc != NULL);
	ydoc_free(doc);
	doc = ydoc_load_file(path, 10, &err);
	CHECK(st, doc == NULL);
	CHECK_CODE(st, err.code, XBA_ETOOBIG);
	CHECK_CONTAINS(st, err.msg, path);
	CHECK_CONTAINS(st, err.msg, "limit of 10 bytes");
	unlink(path);
	doc = ydoc_load_file(path, 1024, &err);
	CHECK(st, doc == NULL);
	CHECK_CODE(st, err.code, XBA_EIO);
	CHECK_CONTAINS(st, err.msg, path);
	CHECK_CONTAINS(st, err.msg, strerror(ENOENT));
	doc = ydoc_load_file(".", 1024, &err);
	CHECK(st, doc == NULL);
	CHECK_CODE(st, err.code, XBA_EIO);
}

int
main(int argc, char **argv)
{
	struct check_state st = { 0, 0, 0 };

	(void)argc;
	(void)argv;
	RUN(&st, test_tree_and_positions);
	RUN(&st, test_empty_document);
	RUN(&st, test_duplicate_key);
	RUN(&st, test_non_scalar_key);
	RUN(&st, test_anchors_aliases_tags);
	RUN(&st, test_several_documents);
	RUN(&st, test_depth);
	RUN(&st, test_depth_block);
	RUN(&st, test_too_many_nodes);
	RUN(&st, test_libyaml_errors);
	RUN(&st, test_check_keys);
	RUN(&st, test_expect);
	RUN(&st, test_read_string);
	RUN(&st, test_read_bool);
	RUN(&st, test_read_int);
	RUN(&st, test_read_double);
	RUN(&st, test_read_time);
	RUN(&st, test_message_is_one_line);
	RUN(&st, test_load_file);
	return check_finish(&st);
}
