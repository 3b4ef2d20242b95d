/*
 * test_directory.c — region.yaml as the broker and agents see it: every lookup on a valid region, every mistake an
 * operator can make reported at its file:line:column with its key path and the right code, oversized and hostile
 * YAML refused cleanly, and the signing-key validity window checked exactly at its boundaries.
 *
 * Keys are made fresh for each run (OpenSSL Ed25519, zmq_curve_keypair) and put into templates where "@S3@" means
 * the base64 of signing key 3 and "@C3@" the Z85 of CURVE key 3.  Keys sit at the ends of lines, so the columns
 * the checks expect do not depend on their length.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "alert.h"
#include "check.h"
#include "clock.h"
#include "directory.h"
#include "encoding.h"
#include "xba.pb-c.h"

#define N_KEYS 10

static uint8_t sign_raw[N_KEYS][XBA_ED25519_PUBLIC_LEN];
static char sign_b64[N_KEYS][48];
static char curve_z85[N_KEYS][XBA_Z85_KEY_TEXT_LEN + 1];
static const char *tests_dir = ".";

static int
make_keys(void)
{
	for (int i = 0; i < N_KEYS; i++) {
		EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		size_t len = XBA_ED25519_PUBLIC_LEN;
		char secret[XBA_Z85_KEY_TEXT_LEN + 1];

		if (pkey == NULL || EVP_PKEY_get_raw_public_key(pkey, sign_raw[i], &len) != 1 || len != 32)
			return -1;
		EVP_PKEY_free(pkey);
		encoding_base64(sign_raw[i], XBA_ED25519_PUBLIC_LEN, sign_b64[i]);
		if (zmq_curve_keypair(curve_z85[i], secret) != 0)
			return -1;
	}
	return 0;
}

/* Replace "@Sn@" and "@Cn@" in tmpl; caller frees. */
static char *
expand(const char *tmpl)
{
	size_t cap = strlen(tmpl) + 1, len = 0;
	char *out;

	for (const char *p = tmpl; (p = strchr(p, '@')) != NULL; p++)
		cap += 48;
	out = malloc(cap);
	for (const char *p = tmpl; *p != '\0';) {
		if (p[0] == '@' && (p[1] == 'S' || p[1] == 'C') && p[2] >= '0' && p[2] <= '9' && p[3] == '@') {
			const char *v = p[1] == 'S' ? sign_b64[p[2] - '0'] : curve_z85[p[2] - '0'];

			memcpy(out + len, v, strlen(v));
			len += strlen(v);
			p += 4;
		} else {
			out[len++] = *p++;
		}
	}
	out[len] = '\0';
	return out;
}

static struct directory *
load_tmpl(const char *tmpl, struct xba_error *err)
{
	char *text = expand(tmpl);
	struct directory *dir = directory_load_buffer("t.yaml", text, strlen(text), err);

	free(text);
	return dir;
}

/* The template must be refused with code and a message containing both needles. */
static void
refused(struct check_state *st, const char *tmpl, int code, const char *needle, const char *needle2)
{
	struct xba_error err;
	struct directory *dir = load_tmpl(tmpl, &err);

	CHECK(st, dir == NULL);
	directory_free(dir);
	CHECK_CODE(st, err.code, code);
	CHECK_CONTAINS(st, err.msg, needle);
	if (needle2 != NULL)
		CHECK_CONTAINS(st, err.msg, needle2);
}

/*
 * Five lines per node.  A node starting at line L has its id value at L:9, role at (L+2):11, curve_key value at
 * (L+3):16 and its one signing key's public value at (L+4):29.
 */
#define HEAD "region: r\nnodes:\n"
#define NODE(id, role, c, s)                                                                                   \
	"  - id: " id "\n"                                                                                       \
	"    name: Node " id "\n"                                                                                \
	"    role: " role "\n"                                                                                   \
	"    curve_key: \"@C" c "@\"\n"                                                                          \
	"    signing_keys: [{public: \"@S" s "@\"}]\n"
#define MEMBER(id, c, s) NODE(id, "member", c, s)

static const char valid_region[] =
	"region: sahel-maghreb\n"
	"nodes:\n"
	"  - id: NER\n"
	"    name: Niger\n"
	"    role: member\n"
	"    curve_key: \"@C0@\"\n"
	"    signing_keys:\n"
	"      - public: \"@S0@\"\n"
	"        valid_from: 2026-01-01T00:00:00Z\n"
	"        valid_until: 2027-01-01T00:00:00Z\n"
	"      - public: \"@S1@\"\n"
	"        revoked_at: 2026-06-01T00:00:00Z\n"
	"    neighbours: [DZA, LBY, TCD]\n"
	"    may_broadcast: true\n"
	"  - id: DZA\n"
	"    name: Algérie\n"
	"    role: member\n"
	"    curve_key: \"@C1@\"\n"
	"    signing_keys:\n"
	"      - public: \"@S2@\"\n"
	"  - id: LBY\n"
	"    name: Libya\n"
	"    role: member\n"
	"    curve_key: \"@C2@\"\n"
	"    signing_keys:\n"
	"      - public: \"@S3@\"\n"
	"    neighbours: [DZA, NER]\n"
	"    may_broadcast: false\n"
	"  - id: TCD\n"
	"    name: Chad\n"
	"    role: member\n"
	"    curve_key: \"@C3@\"\n"
	"    signing_keys:\n"
	"      - public: \"@S4@\"\n"
	"  - id: IOM-ROMENA\n"
	"    name: IOM Regional Office\n"
	"    role: observer\n"
	"    curve_key: \"@C4@\"\n"
	"    signing_keys:\n"
	"      - public: \"@S5@\"\n"
	"      - public: \"@S6@\"\n"
	"    publish: [health, search-and-rescue]\n"
	"  - id: SECRETARIAT\n"
	"    name: Secretariat tooling\n"
	"    role: admin\n"
	"    curve_key: \"@C5@\"\n"
	"groups:\n"
	"  sahel: [NER, TCD, NER]\n"
	"  maghreb: [LBY, DZA]\n";

static const struct dir_node *
node(const struct directory *dir, const char *id)
{
	return directory_node(dir, id);
}

static const struct dir_key *
key_of(const struct directory *dir, int i)
{
	uint8_t id[XBA_KEY_ID_LEN];

	keys_key_id(sign_raw[i], id);
	return directory_key(dir, id);
}

static void
test_valid_region(struct check_state *st)
{
	struct xba_error err;
	struct directory *dir = load_tmpl(valid_region, &err);
	const struct dir_node *ner, *dza, *lby, *tcd, *iom, *sec;
	const struct dir_group *g;
	uint8_t curve[32], digest[32];
	char *text;

	CHECK(st, dir != NULL);
	if (dir == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		return;
	}
	CHECK(st, strcmp(dir->region, "sahel-maghreb") == 0);
	CHECK(st, strcmp(dir->path, "t.yaml") == 0);
	CHECK(st, dir->n_nodes == 6 && dir->n_keys == 7 && dir->n_groups == 2);
	/* sorted by id */
	for (size_t i = 1; i < dir->n_nodes; i++)
		CHECK(st, strcmp(dir->nodes[i - 1].id, dir->nodes[i].id) < 0);
	ner = node(dir, "NER");
	dza = node(dir, "DZA");
	lby = node(dir, "LBY");
	tcd = node(dir, "TCD");
	iom = node(dir, "IOM-ROMENA");
	sec = node(dir, "SECRETARIAT");
	CHECK(st, ner && dza && lby && tcd && iom && sec);
	if (!(ner && dza && lby && tcd && iom && sec)) {
		directory_free(dir);
		return;
	}
	CHECK(st, node(dir, "MLI") == NULL && node(dir, "ner") == NULL && node(dir, "") == NULL);
	CHECK(st, strcmp(dza->name, "Algérie") == 0);
	CHECK(st, ner->role == NODE_ROLE_MEMBER && iom->role == NODE_ROLE_OBSERVER && sec->role == NODE_ROLE_ADMIN);
	CHECK(st, strcmp(directory_role_name(iom->role), "observer") == 0);
	CHECK(st, directory_node_index(dir, ner) == (size_t)(ner - dir->nodes));

	/* by CURVE key */
	for (int i = 0; i < 6; i++) {
		const char *ids[] = { "NER", "DZA", "LBY", "TCD", "IOM-ROMENA", "SECRETARIAT" };
		const struct dir_node *n;

		CHECK(st, encoding_z85_key(curve_z85[i], curve) == 0);
		n = directory_node_by_curve(dir, curve);
		CHECK(st, n != NULL && strcmp(n->id, ids[i]) == 0);
		CHECK(st, n != NULL && strcmp(n->curve_public_z85, curve_z85[i]) == 0);
	}
	CHECK(st, encoding_z85_key(curve_z85[9], curve) == 0);
	CHECK(st, directory_node_by_curve(dir, curve) == NULL);

	/* by key id, grouped by node */
	{
		const struct dir_key *k0 = key_of(dir, 0), *k1 = key_of(dir, 1), *k5 = key_of(dir, 5),
				     *k6 = key_of(dir, 6);

		CHECK(st, k0 != NULL && &dir->nodes[k0->node_index] == ner);
		CHECK(st, k0 != NULL && memcmp(k0->pub.raw, sign_raw[0], 32) == 0 && k0->pub.pkey != NULL);
		CHECK(st, k0 != NULL && k0->valid_from_ms == INT64_C(1767225600000) &&
		    k0->valid_until_ms == INT64_C(1798761600000) && k0->revoked_at_ms == XBA_TIME_NEVER);
		CHECK(st, k1 != NULL && k1->valid_from_ms == 0 && k1->valid_until_ms == XBA_TIME_NEVER &&
		    k1->revoked_at_ms == INT64_C(1780272000000));
		CHECK(st, ner->n_keys == 2 && iom->n_keys == 2 && sec->n_keys == 0);
		CHECK(st, k5 != NULL && k6 != NULL && &dir->nodes[k5->node_index] == iom &&
		    &dir->nodes[k6->node_index] == iom);
		CHECK(st, key_of(dir, 9) == NULL);
		for (size_t n = 0; n < dir->n_nodes; n++)
			for (size_t k = 0; k < dir->nodes[n].n_keys; k++)
				CHECK(st, dir->keys[dir->nodes[n].first_key + k].node_index == n);
		for (size_t k = 1; k < dir->n_keys; k++)
			CHECK(st, memcmp(dir->keys[dir->keys_by_id[k - 1]].key_id, dir->keys[dir->keys_by_id[k]].key_id,
			    32) < 0);
	}

	/* neighbours: declared on either side, present on both; never with oneself */
	CHECK(st, directory_are_neighbours(dir, ner, dza) && directory_are_neighbours(dir, dza, ner));
	CHECK(st, directory_are_neighbours(dir, ner, tcd) && directory_are_neighbours(dir, tcd, ner));
	CHECK(st, directory_are_neighbours(dir, lby, dza) && directory_are_neighbours(dir, dza, lby));
	CHECK(st, directory_are_neighbours(dir, lby, ner) && directory_are_neighbours(dir, ner, lby));
	CHECK(st, !directory_are_neighbours(dir, dza, tcd) && !directory_are_neighbours(dir, tcd, dza));
	CHECK(st, !directory_are_neighbours(dir, ner, ner) && !directory_are_neighbours(dir, iom, ner));
	CHECK(st, ner->n_neighbours == 3 && lby->n_neighbours == 2 && dza->n_neighbours == 2 && tcd->n_neighbours == 1);

	/* groups: sorted by name, members sorted and without repeats */
	CHECK(st, strcmp(dir->groups[0].name, "maghreb") == 0 && strcmp(dir->groups[1].name, "sahel") == 0);
	g = directory_group(dir, "sahel");
	CHECK(st, g != NULL && g->n_members == 2);
	if (g != NULL && g->n_members == 2)
		CHECK(st, &dir->nodes[g->members[0]] == ner && &dir->nodes[g->members[1]] == tcd);
	g = directory_group(dir, "maghreb");
	CHECK(st, g != NULL && g->n_members == 2);
	if (g != NULL && g->n_members == 2)
		CHECK(st, &dir->nodes[g->members[0]] == dza && &dir->nodes[g->members[1]] == lby);
	CHECK(st, directory_group(dir, "members") == NULL && directory_group(dir, "x") == NULL);

	/* publishing and broadcasting */
	{
		uint32_t all = 0;

		for (int c = 1; c <= alert_enum_max(ALERT_ENUM_CATEGORY); c++)
			all |= 1u << c;
		CHECK(st, ner->publish_categories == all && dza->publish_categories == all);
		CHECK(st, iom->publish_categories ==
		    ((1u << XBA__V1__CATEGORY__CATEGORY_HEALTH) |
		    (1u << XBA__V1__CATEGORY__CATEGORY_SEARCH_AND_RESCUE)));
		CHECK(st, sec->publish_categories == 0);
		CHECK(st, ner->may_broadcast && !dza->may_broadcast && !lby->may_broadcast && !sec->may_broadcast);
	}

	/* the digest is the SHA-256 of the bytes */
	text = expand(valid_region);
	CHECK(st, EVP_Digest(text, strlen(text), digest, NULL, EVP_sha256(), NULL) == 1);
	CHECK(st, memcmp(digest, dir->digest, 32) == 0);
	free(text);
	directory_free(dir);
	directory_free(NULL);
}

static void
test_load_file(struct check_state *st)
{
	char path[1024], *text;
	struct xba_error err;
	struct directory *dir;
	uint8_t digest[32];
	FILE *f;
	long size;

	snprintf(path, sizeof(path), "%s/unit/data/region-valid.yaml", tests_dir);
	dir = directory_load(path, &err);
	CHECK(st, dir != NULL);
	if (dir == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		return;
	}
	CHECK(st, strcmp(dir->path, path) == 0 && dir->n_nodes == 9 && dir->n_groups == 3 && dir->n_keys == 9);
	CHECK(st, node(dir, "WHO-AFRO") != NULL && node(dir, "WHO-AFRO")->publish_categories ==
	    (1u << XBA__V1__CATEGORY__CATEGORY_HEALTH));
	CHECK(st, directory_are_neighbours(dir, node(dir, "TCD"), node(dir, "SDN")));
	CHECK(st, directory_are_neighbours(dir, node(dir, "MLI"), node(dir, "DZA")));
	f = fopen(path, "rb");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	text = malloc((size_t)size);
	CHECK(st, fread(text, 1, (size_t)size, f) == (size_t)size);
	fclose(f);
	EVP_Digest(text, (size_t)size, digest, NULL, EVP_sha256(), NULL);
	CHECK(st, memcmp(digest, dir->digest, 32) == 0);
	free(text);
	directory_free(dir);

	dir = directory_load("no-such-region.yaml", &err);
	CHECK(st, dir == NULL);
	CHECK_CODE(st, err.code, XBA_EIO);
	CHECK_CONTAINS(st, err.msg, "no-such-region.yaml");
	CHECK_CONTAINS(st, err.msg, strerror(ENOENT));
}

/* A file of exactly 4 MiB is read (and found empty: it is all comment); one byte more is refused unread. */
static void
test_file_size_limit(struct check_state *st)
{
	char path[] = "test_directory_big_XXXXXX";
	const size_t limit = 4u * 1024 * 1024;
	struct xba_error err;
	struct directory *dir;
	char *buf = malloc(limit + 1);
	int fd = mkstemp(path);

	CHECK(st, fd >= 0 && buf != NULL);
	if (fd < 0 || buf == NULL) {
		free(buf);
		return;
	}
	for (size_t i = 0; i < limit; i++)
		buf[i] = i % 64 == 0 ? '#' : i % 64 == 63 ? '\n' : 'x';
	CHECK(st, write(fd, buf, limit) == (ssize_t)limit);
	dir = directory_load(path, &err);
	CHECK(st, dir == NULL);
	CHECK_CODE(st, err.code, XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, ":1:1: the file is empty");
	CHECK(st, write(fd, "\n", 1) == 1);
	close(fd);
	dir = directory_load(path, &err);
	CHECK(st, dir == NULL);
	CHECK_CODE(st, err.code, XBA_ETOOBIG);
	CHECK_CONTAINS(st, err.msg, path);
	CHECK_CONTAINS(st, err.msg, "limit of 4194304 bytes");
	unlink(path);
	free(buf);
}

static void
test_empty_and_not_a_map(struct check_state *st)
{
	refused(st, "", XBA_ECONFIG, "t.yaml:1:1: the file is empty", NULL);
	refused(st, "# nothing\n", XBA_ECONFIG, "t.yaml:1:1: the file is empty", NULL);
	refused(st, "- a\n- b\n", XBA_ECONFIG, "t.yaml:1:1: expected a map", NULL);
	refused(st, "just text\n", XBA_ECONFIG, "t.yaml:1:1: expected a map", NULL);
	refused(st, "region: r\nnodes:\n\t- id: NER\n", XBA_ECONFIG, "t.yaml:3:1: YAML syntax error", "tab");
	refused(st, "region: r\nnodes: [a, b\n", XBA_ECONFIG, "t.yaml:3:1: YAML syntax error", NULL);
	refused(st, "}{ garbage\n", XBA_ECONFIG, "t.yaml:1:1: YAML syntax error", NULL);
}

static void
test_hostile_yaml(struct check_state *st)
{
	size_t n = 1000, len = 0;
	char *s = malloc(300000 * 6 + 64);

	for (size_t i = 0; i < n; i++)
		s[len++] = '[';
	for (size_t i = 0; i < n; i++)
		s[len++] = ']';
	s[len] = '\0';
	refused(st, s, XBA_ECONFIG, "t.yaml:1:33: nesting deeper than 32 levels", NULL);

	len = (size_t)sprintf(s, "region: r\nnodes:\n");
	for (size_t i = 0; i < 300000; i++) {
		memcpy(s + len, "  - a\n", 6);
		len += 6;
	}
	s[len] = '\0';
	refused(st, s, XBA_ECONFIG, "too many YAML nodes (the limit is 200000)", NULL);
	free(s);
	refused(st, HEAD MEMBER("NER", "0", "0") "groups: &g {a: [NER]}\n", XBA_ECONFIG, "t.yaml:8:9: anchors", NULL);
}

static void
test_root_errors(struct check_state *st)
{
	refused(st, HEAD MEMBER("NER", "0", "0") "extra: 1\n", XBA_ECONFIG,
	    "t.yaml:8:1: unknown key 'extra' (expected one of: region, nodes, groups)", NULL);
	refused(st, "nodes:\n" MEMBER("NER", "0", "0"), XBA_ECONFIG, "t.yaml:1:1: missing required key 'region'", NULL);
	refused(st, "region: r\n", XBA_ECONFIG, "t.yaml:1:1: missing required key 'nodes'", NULL);
	refused(st, "region: r\nnodes: []\n", XBA_ECONFIG, "t.yaml:2:8: nodes: the region needs at least one node",
	    NULL);
	refused(st, "region: r\nnodes:\n", XBA_ECONFIG, "t.yaml:2:7: nodes: expected a list, found nothing", NULL);
	refused(st, "region: Sahel_Maghreb\nnodes:\n" MEMBER("NER", "0", "0"), XBA_ECONFIG,
	    "t.yaml:1:9: region: 'Sahel_Maghreb' is not a valid region name", NULL);
	refused(st, "region: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nnodes:\n"
	    MEMBER("NER", "0", "0"), XBA_ECONFIG, "t.yaml:1:9: region:", NULL);
	refused(st, HEAD "  - NER\n", XBA_ECONFIG, "t.yaml:3:5: nodes[0]: expected a map", NULL);
	/* operator text is echoed on one line, cut short */
	refused(st, HEAD "  - id: \"N\\nER\"\n", XBA_ECONFIG, "t.yaml:3:9: nodes[0].id: 'N?ER' is not a valid node id",
	    NULL);
	refused(st, "region: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n"
	    "nodes:\n" MEMBER("NER", "0", "0"), XBA_ECONFIG,
	    "region: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is not", NULL);
}

static void
test_duplicate_node_id(struct check_state *st)
{
	refused(st, HEAD MEMBER("NER", "0", "0") MEMBER("DZA", "1", "1") MEMBER("NER", "2", "2"), XBA_EDUPLICATE,
	    "t.yaml:13:9: nodes[2].id: duplicate node id 'NER' (first defined as nodes[0] at line 3, column 9)", NULL);
}

static void
test_unknown_keys(struct check_state *st)
{
	refused(st, HEAD MEMBER("NER", "0", "0") "    colour: blue\n", XBA_ECONFIG,
	    "t.yaml:8:5: nodes[0]: unknown key 'colour' (expected one of: id, name, role, curve_key, signing_keys, "
	    "neighbours, may_broadcast, publish)", NULL);
	refused(st, HEAD "  - id: NER\n    name: Niger\n    role: member\n    curve_key: \"@C0@\"\n"
	    "    signing_keys:\n      - public: \"@S0@\"\n        expires: 2027-01-01\n", XBA_ECONFIG,
	    "t.yaml:9:9: nodes[0].signing_keys[0]: unknown key 'expires' (expected one of: public, valid_from, "
	    "valid_until, revoked_at)", NULL);
}

static void
test_missing_node_keys(struct check_state *st)
{
	refused(st, HEAD "  - id: NER\n    role: member\n    curve_key: \"@C0@\"\n", XBA_ECONFIG,
	    "t.yaml:3:5: nodes[0]: missing required key 'name'", NULL);
	refused(st, HEAD "  - id: NER\n    name: Niger\n    role: member\n    curve_key: \"@C0@\"\n", XBA_ECONFIG,
	    "t.yaml:3:5: nodes[0]: missing required key 'signing_keys'", NULL);
	refused(st, HEAD "  - id: NER\n    name: Niger\n    role: member\n    curve_key: \"@C0@\"\n"
	    "    signing_keys: []\n", XBA_ECONFIG,
	    "t.yaml:7:19: nodes[0].signing_keys: a member needs at least one signing key", NULL);
	refused(st, HEAD "  - id: IOM\n    name: IOM\n    role: observer\n    curve_key: \"@C0@\"\n", XBA_ECONFIG,
	    "t.yaml:3:5: nodes[0]: missing required key 'signing_keys'", NULL);
	refused(st, HEAD "  - name: Niger\n", XBA_ECONFIG, "t.yaml:3:5: nodes[0]: missing required key 'id'", NULL);
	refused(st, HEAD "  - id: NER\n    name: \"\"\n", XBA_ECONFIG, "t.yaml:4:11: nodes[0].name: must be 1 to 128",
	    NULL);
	refused(st, HEAD "  - id: NER\n    name: \"a\\tb\"\n", XBA_ECONFIG, "t.yaml:4:11: nodes[0].name:", NULL);
	refused(st, HEAD "  - id: ner\n", XBA_ECONFIG, "t.yaml:3:9: nodes[0].id: 'ner' is not a valid node id", NULL);
}

static void
test_admin_without_keys(struct check_state *st)
{
	struct xba_error err;
	struct directory *dir = load_tmpl(HEAD MEMBER("NER", "0", "0")
	    "  - id: ADMIN\n    name: Tools\n    role: admin\n    curve_key: \"@C1@\"\n    signing_keys: []\n"
	    "    may_broadcast: false\n", &err);

	CHECK(st, dir != NULL && node(dir, "ADMIN") != NULL && node(dir, "ADMIN")->n_keys == 0);
	directory_free(dir);
}

static void
test_bad_role(struct check_state *st)
{
	refused(st, HEAD NODE("NER", "king", "0", "0"), XBA_ECONFIG,
	    "t.yaml:5:11: nodes[0].role: unknown role 'king' (expected one of: member, observer, admin)", NULL);
	refused(st, HEAD NODE("NER", "[member]", "0", "0"), XBA_ECONFIG, "t.yaml:5:11: nodes[0].role: expected text",
	    NULL);
}

static void
test_member_not_iso3166(struct check_state *st)
{
	struct xba_error err;
	struct directory *dir;

	CHECK(st, !syntax_iso3166_alpha3("QQQ"));
	refused(st, HEAD MEMBER("QQQ", "0", "0"), XBA_ECONFIG,
	    "t.yaml:3:9: nodes[0].id: 'QQQ' is not an ISO 3166-1 alpha-3 country code", NULL);
	refused(st, HEAD MEMBER("IOM-ROMENA", "0", "0"), XBA_ECONFIG, "t.yaml:3:9: nodes[0].id: 'IOM-ROMENA'", NULL);
	/* the same ids are fine for observers */
	dir = load_tmpl(HEAD NODE("QQQ", "observer", "0", "0"), &err);
	CHECK(st, dir != NULL);
	directory_free(dir);
}

static void
test_bad_curve_key(struct check_state *st)
{
	const char *msg = "t.yaml:6:16: nodes[0].curve_key: not a valid Z85 CURVE key (expected 40 Z85 characters)";

	refused(st, HEAD "  - id: NER\n    name: N\n    role: member\n    curve_key: \"not-z85\"\n", XBA_ECONFIG, msg,
	    NULL);
	refused(st, HEAD "  - id: NER\n    name: N\n    role: member\n"
	    "    curve_key: \"~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\"\n", XBA_ECONFIG, msg, NULL);
	refused(st, HEAD "  - id: NER\n    name: N\n    role: member\n    curve_key: \"@C0@x\"\n", XBA_ECONFIG, msg,
	    NULL);
	refused(st, HEAD "  - id: NER\n    name: N\n    role: member\n    curve_key: [1]\n", XBA_ECONFIG,
	    "t.yaml:6:16: nodes[0].curve_key: expected text, found a list", NULL);
}

static void
test_bad_signing_key(struct check_state *st)
{
	refused(st, HEAD "  - id: NER\n    name: N\n    role: member\n    curve_key: \"@C0@\"\n"
	    "    signing_keys: [{public: \"AAAA\"}]\n", XBA_ECONFIG,
	    "t.yaml:7:29: nodes[0].signing_keys[0].public: not a base64 Ed25519 public key", NULL);
	refused(st, HEAD "  - id: NER\n    name: N\n    role: member\n    curve_key: \"@C0@\"\n"
	    "    signing_keys: [{public: \"@C1@\"}]\n", XBA_ECONFIG, "t.yaml:7:29: nodes[0].signing_keys[0].public:",
	    NULL);
	refused(st, HEAD "  - id: NER\n    name: N\n    role: member\n    curve_key: \"@C0@\"\n"
	    "    signing_keys: [{valid_from: 2026-01-01}]\n", XBA_ECONFIG,
	    "t.yaml:7:20: nodes[0].signing_keys[0]: missing required key 'public'", NULL);
	refused(st, HEAD "  - id: NER\n    name: N\n    role: member\n    curve_key: \"@C0@\"\n"
	    "    signing_keys: \"@S0@\"\n", XBA_ECONFIG, "t.yaml:7:19: nodes[0].signing_keys: expected a list", NULL);
}

static void
test_duplicate_signing_key(struct check_state *st)
{
	refused(st, HEAD MEMBER("NER", "0", "0") MEMBER("DZA", "1", "0"), XBA_EDUPLICATE,
	    "t.yaml:12:29: nodes[1].signing_keys[0].public: signing key already listed for node 'NER' "
	    "(nodes[0].signing_keys[0] at line 7, column 29)", NULL);
	/* twice in one node's list */
	refused(st, HEAD "  - id: NER\n    name: N\n    role: member\n    curve_key: \"@C0@\"\n    signing_keys:\n"
	    "      - public: \"@S1@\"\n      - public: \"@S1@\"\n", XBA_EDUPLICATE,
	    "t.yaml:9:17: nodes[0].signing_keys[1].public: signing key already listed for node 'NER' "
	    "(nodes[0].signing_keys[0] at line 8, column 17)", NULL);
	/* reported where it is first repeated in the file, whatever the sort order of ids */
	refused(st, HEAD MEMBER("ZWE", "0", "0") MEMBER("DZA", "1", "1") MEMBER("AGO", "2", "0")
	    MEMBER("BEN", "3", "1"), XBA_EDUPLICATE,
	    "t.yaml:17:29: nodes[2].signing_keys[0].public: signing key already listed for node 'ZWE'", NULL);
}

static void
test_duplicate_curve_key(struct check_state *st)
{
	refused(st, HEAD MEMBER("NER", "0", "0") MEMBER("DZA", "0", "1"), XBA_EDUPLICATE,
	    "t.yaml:11:16: nodes[1].curve_key: CURVE key already used by node 'NER' (nodes[0] at line 6, column 16)",
	    NULL);
}

static void
test_neighbour_errors(struct check_state *st)
{
	refused(st, HEAD MEMBER("NER", "0", "0") "    neighbours: [DZA, XYZ]\n" MEMBER("DZA", "1", "1"), XBA_ECONFIG,
	    "t.yaml:8:23: nodes[0].neighbours[1]: unknown node 'XYZ'", NULL);
	refused(st, HEAD MEMBER("NER", "0", "0") "    neighbours: [NER]\n", XBA_ECONFIG,
	    "t.yaml:8:18: nodes[0].neighbours[0]: a node cannot neighbour itself", NULL);
	refused(st, HEAD MEMBER("NER", "0", "0") "    neighbours: DZA\n" MEMBER("DZA", "1", "1"), XBA_ECONFIG,
	    "t.yaml:8:17: nodes[0].neighbours: expected a list", NULL);
}

static void
test_group_errors(struct check_state *st)
{
	refused(st, HEAD MEMBER("NER", "0", "0") "groups:\n  g1: [NER, XYZ]\n", XBA_ECONFIG,
	    "t.yaml:9:13: groups.g1[1]: unknown node 'XYZ'", NULL);
	refused(st, HEAD MEMBER("NER", "0", "0") "groups:\n  members: [NER]\n", XBA_ECONFIG,
	    "t.yaml:9:3: groups: 'members' is reserved by the rules language", NULL);
	refused(st, HEAD MEMBER("NER", "0", "0") "groups:\n  neighbours: [NER]\n", XBA_ECONFIG,
	    "t.yaml:9:3: groups: 'neighbours' is reserved", NULL);
	refused(st, HEAD MEMBER("NER", "0", "0") "groups:\n  observers: [NER]\n", XBA_ECONFIG,
	    "t.yaml:9:3: groups: 'observers' is reserved", NULL);
	refused(st, HEAD MEMBER("NER", "0", "0") "groups:\n  Maghreb: [NER]\n", XBA_ECONFIG,
	    "t.yaml:9:3: groups: not a valid group name", NULL);
	refused(st, HEAD MEMBER("NER", "0", "0") "groups:\n  aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: [NER]\n", XBA_ECONFIG,
	    "t.yaml:9:3: groups: not a valid group name", NULL);
	refused(st, HEAD MEMBER("NER", "0", "0") "groups:\n  g1: []\n", XBA_ECONFIG,
	    "t.yaml:9:7: groups.g1: a group needs at least one member", NULL);
	refused(st, HEAD MEMBER("NER", "0", "0") "groups:\n  g1: NER\n", XBA_ECONFIG,
	    "t.yaml:9:7: groups.g1: expected a list", NULL);
	refused(st, HEAD MEMBER("NER", "0", "0") "groups: [NER]\n", XBA_ECONFIG, "t.yaml:8:9: groups: expected a map",
	    NULL);
	refused(st, HEAD MEMBER("NER", "0", "0") "groups:\n  g1: [NER]\n  g1: [NER]\n", XBA_ECONFIG,
	    "t.yaml:10:3: duplicate key 'g1'", NULL);
}

#define KEY_NODE(extra)                                                                                        \
	HEAD "  - id: NER\n    name: N\n    role: member\n    curve_key: \"@C0@\"\n    signing_keys:\n"              \
	     "      - public: \"@S0@\"\n" extra

static void
test_key_times(struct check_state *st)
{
	refused(st, KEY_NODE("        valid_from: 2026-01-01T00:00:00Z\n        valid_until: 2026-01-01T00:00:00Z\n"),
	    XBA_ECONFIG, "t.yaml:10:22: nodes[0].signing_keys[0].valid_until: valid_until (2026-01-01T00:00:00Z) must "
	    "be after valid_from (2026-01-01T00:00:00Z)", NULL);
	refused(st, KEY_NODE("        valid_from: 2026-01-02\n        valid_until: 2026-01-01\n"), XBA_ECONFIG,
	    "t.yaml:10:22: nodes[0].signing_keys[0].valid_until:", NULL);
	refused(st, KEY_NODE("        valid_from: yesterday\n"), XBA_ECONFIG,
	    "t.yaml:9:21: nodes[0].signing_keys[0].valid_from: expected an RFC 3339 date-time", "'yesterday'");
	refused(st, KEY_NODE("        revoked_at: 2026-02-30T00:00:00Z\n"), XBA_ECONFIG,
	    "t.yaml:9:21: nodes[0].signing_keys[0].revoked_at: expected an RFC 3339 date-time", NULL);
	refused(st, KEY_NODE("        valid_until: 2026-01-01T25:00:00Z\n"), XBA_ECONFIG,
	    "t.yaml:9:22: nodes[0].signing_keys[0].valid_until: expected an RFC 3339", NULL);
}

static void
test_publish_and_broadcast(struct check_state *st)
{
	refused(st, HEAD MEMBER("NER", "0", "0") "    publish: [health]\n", XBA_ECONFIG,
	    "t.yaml:8:14: nodes[0].publish: only observer nodes take a publish list", NULL);
	refused(st, HEAD NODE("ADMIN", "admin", "0", "0") "    publish: [health]\n", XBA_ECONFIG,
	    "t.yaml:8:14: nodes[0].publish: only observer nodes", NULL);
	refused(st, HEAD NODE("IOM", "observer", "0", "0") "    publish: [health, weather]\n", XBA_ECONFIG,
	    "t.yaml:8:23: nodes[0].publish[1]: unknown category 'weather' (expected one of: border-incident, "
	    "smuggling, trafficking, health, search-and-rescue, population-movement, other)", NULL);
	refused(st, HEAD NODE("IOM", "observer", "0", "0") "    publish: health\n", XBA_ECONFIG,
	    "t.yaml:8:14: nodes[0].publish: expected a list", NULL);
	refused(st, HEAD NODE("ADMIN", "admin", "0", "0") "    may_broadcast: true\n", XBA_ECONFIG,
	    "t.yaml:8:20: nodes[0].may_broadcast: admin nodes may not broadcast", NULL);
	refused(st, HEAD MEMBER("NER", "0", "0") "    may_broadcast: \"true\"\n", XBA_ECONFIG,
	    "t.yaml:8:20: nodes[0].may_broadcast: expected true or false", NULL);
	{
		struct xba_error err;
		struct directory *dir = load_tmpl(HEAD NODE("IOM", "observer", "0", "0") "    may_broadcast: yes\n",
		    &err);

		CHECK(st, dir != NULL && node(dir, "IOM")->may_broadcast && node(dir, "IOM")->publish_categories == 0);
		directory_free(dir);
	}
}

static void
test_key_usable(struct check_state *st)
{
	const int64_t from = INT64_C(1767225600000), until = INT64_C(1798761600000), revoked = INT64_C(1780272000000);
	struct xba_error err;
	struct directory *dir = load_tmpl(valid_region, &err);
	const struct dir_key *windowed, *revocable, *plain;

	CHECK(st, dir != NULL);
	if (dir == NULL)
		return;
	windowed = key_of(dir, 0);
	revocable = key_of(dir, 1);
	plain = key_of(dir, 2);
	CHECK_CODE(st, directory_key_usable(dir, windowed, from, from, &err), 0);
	CHECK_CODE(st, directory_key_usable(dir, windowed, until - 1, until + 1000, &err), 0);
	CHECK_CODE(st, directory_key_usable(dir, windowed, from - 1, from, &err), XBA_EKEYVALIDITY);
	CHECK_CONTAINS(st, err.msg, "of node NER is valid only from 2026-01-01T00:00:00Z; the alert was sent at "
	    "2025-12-31T23:59:59.999Z");
	CHECK_CONTAINS(st, err.msg, "SHA256:");
	CHECK_CODE(st, directory_key_usable(dir, windowed, until, until, &err), XBA_EKEYVALIDITY);
	CHECK_CONTAINS(st, err.msg, "of node NER expired at 2027-01-01T00:00:00Z; the alert was sent at "
	    "2027-01-01T00:00:00Z");

	CHECK_CODE(st, directory_key_usable(dir, revocable, revoked - 10, revoked - 1, &err), 0);
	CHECK_CODE(st, directory_key_usable(dir, revocable, revoked - 10, revoked, &err), XBA_EKEYREVOKED);
	CHECK_CONTAINS(st, err.msg, "of node NER was revoked at 2026-06-01T00:00:00Z (now 2026-06-01T00:00:00Z)");
	CHECK_CODE(st, directory_key_usable(dir, revocable, revoked - 10, revoked + 1, &err), XBA_EKEYREVOKED);
	/* revocation wins over an also-failing window */
	CHECK_CODE(st, directory_key_usable(dir, revocable, -1, revoked, &err), XBA_EKEYREVOKED);

	CHECK_CODE(st, directory_key_usable(dir, plain, 0, 0, &err), 0);
	CHECK_CODE(st, directory_key_usable(dir, plain, INT64_MAX - 1, INT64_MAX - 1, &err), 0);
	CHECK_CODE(st, directory_key_usable(dir, plain, -1, 0, &err), XBA_EKEYVALIDITY);
	directory_free(dir);
}

/* A rotation with a gap between two keys: the node goes silent at the first key's end, not the second's. */
static void
test_signs_until(struct check_state *st)
{
	const int64_t y2026 = INT64_C(1767225600000), jun2026 = INT64_C(1780272000000), y2027 = INT64_C(1798761600000);
	const int64_t mar2026 = INT64_C(1772323200000), apr2026 = INT64_C(1775001600000), day = 86400000;
	struct xba_error err;
	struct directory *dir = load_tmpl(valid_region, &err);

	CHECK(st, dir != NULL);
	if (dir == NULL)
		return;
	CHECK(st, directory_key_signs_until(key_of(dir, 0)) == y2027);  /* valid_until */
	CHECK(st, directory_key_signs_until(key_of(dir, 1)) == jun2026); /* revoked_at */
	CHECK(st, directory_key_signs_until(key_of(dir, 2)) == XBA_TIME_NEVER);
	/* NER: the revocable key until June, the windowed one from January to 2027, chained. */
	CHECK(st, directory_node_signs_until(dir, node(dir, "NER"), y2026 - 30 * day) == y2027);
	CHECK(st, directory_node_signs_until(dir, node(dir, "NER"), jun2026) == y2027);
	CHECK(st, directory_node_signs_until(dir, node(dir, "NER"), y2027) == y2027);       /* none now: now */
	CHECK(st, directory_node_signs_until(dir, node(dir, "NER"), y2027 + day) == y2027 + day);
	CHECK(st, directory_node_signs_until(dir, node(dir, "DZA"), y2026) == XBA_TIME_NEVER);
	CHECK(st, directory_node_signs_until(dir, node(dir, "SECRETARIAT"), y2026) == y2026); /* no keys */
	directory_free(dir);

	dir = load_tmpl(KEY_NODE("        valid_until: 2026-03-01T00:00:00Z\n"
				 "      - public: \"@S1@\"\n        valid_from: 2026-04-01T00:00:00Z\n"), &err);
	CHECK(st, dir != NULL);
	if (dir == NULL)
		return;
	CHECK(st, directory_node_signs_until(dir, node(dir, "NER"), y2026) == mar2026);
	CHECK(st, directory_node_signs_until(dir, node(dir, "NER"), mar2026 + day) == mar2026 + day);
	CHECK(st, directory_node_signs_until(dir, node(dir, "NER"), apr2026) == XBA_TIME_NEVER);
	directory_free(dir);
}

int
main(int argc, char **argv)
{
	struct check_state st = { 0, 0, 0 };

	if (argc > 1)
		tests_dir = argv[1];
	if (make_keys() != 0) {
		fprintf(stderr, "cannot generate test keys\n");
		return 1;
	}
	RUN(&st, test_valid_region);
	RUN(&st, test_load_file);
	RUN(&st, test_file_size_limit);
	RUN(&st, test_empty_and_not_a_map);
	RUN(&st, test_hostile_yaml);
	RUN(&st, test_root_errors);
	RUN(&st, test_duplicate_node_id);
	RUN(&st, test_unknown_keys);
	RUN(&st, test_missing_node_keys);
	RUN(&st, test_admin_without_keys);
	RUN(&st, test_bad_role);
	RUN(&st, test_member_not_iso3166);
	RUN(&st, test_bad_curve_key);
	RUN(&st, test_bad_signing_key);
	RUN(&st, test_duplicate_signing_key);
	RUN(&st, test_duplicate_curve_key);
	RUN(&st, test_neighbour_errors);
	RUN(&st, test_group_errors);
	RUN(&st, test_key_times);
	RUN(&st, test_publish_and_broadcast);
	RUN(&st, test_key_usable);
	RUN(&st, test_signs_until);
	return check_finish(&st);
}
