/*
 * test_rules.c — the routing-rules engine as the broker and `xba rules` use it: the working group's rules on the
 * Sahel–Maghreb region route each kind of alert to exactly the nodes docs/rules.md says, crediting the rule it
 * says, and withholding the others with the reason it says; every mistake the secretariat can make in rules.yaml
 * comes back as XBA_ECONFIG at its file:line:column with its key path; and routing stays within its time budget
 * on a 200-node region with 50 rules.
 *
 * The region is built in memory with fresh keys (OpenSSL Ed25519, zmq_curve_keypair), so no key material lives in
 * the tree.  Routes are compared as text, "DZA=rule LBY=rule", in node-index order (the directory sorts nodes by
 * id), which states the exact recipient set for all nine nodes at once: a node not listed must not be there.
 */
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "alert.h"
#include "check.h"
#include "directory.h"
#include "encoding.h"
#include "rules.h"
#include "syntax.h"
#include "xba.pb-c.h"


/* ---- building the region ---- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_printf(struct sbuf *sb, const char *fmt, ...) XBA_PRINTF(2, 3);

static void
sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = sb->cap - sb->len;

		va_start(ap, fmt);
		n = vsnprintf(sb->p != NULL ? sb->p + sb->len : NULL, sb->p != NULL ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if (sb->p != NULL && (size_t)n < room) {
			sb->len += (size_t)n;
			return;
		}
		sb->cap = (sb->cap + (size_t)n + 1) * 2;
		if ((sb->p = realloc(sb->p, sb->cap)) == NULL)
			abort();
	}
}

/* One node's entry with fresh keys; neighbours is "[A, B]" or NULL. */
static int
append_node(struct sbuf *sb, const char *id, const char *role, const char *neighbours)
{
	char curve_pub[XBA_Z85_KEY_TEXT_LEN + 1], curve_sec[XBA_Z85_KEY_TEXT_LEN + 1], b64[48];
	uint8_t raw[XBA_ED25519_PUBLIC_LEN];
	size_t len = sizeof(raw);
	EVP_PKEY *pkey;

	if (zmq_curve_keypair(curve_pub, curve_sec) != 0)
		return -1;
	sb_printf(sb, "  - id: %s\n    name: Node %s\n    role: %s\n    curve_key: \"%s\"\n", id, id, role, curve_pub);
	if (strcmp(role, "admin") != 0) {
		if ((pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL)
			return -1;
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != sizeof(raw)) {
			EVP_PKEY_free(pkey);
			return -1;
		}
		EVP_PKEY_free(pkey);
		sb_printf(sb, "    signing_keys: [{public: \"%s\"}]\n", encoding_base64(raw, sizeof(raw), b64));
	}
	if (neighbours != NULL)
		sb_printf(sb, "    neighbours: %s\n", neighbours);
	return 0;
}

/*
 * The Sahel–Maghreb group.  Node indexes (sorted by id): DZA 0, IOM-ROMENA 1, LBY 2, MLI 3, NER 4, SDN 5,
 * SECRETARIAT 6, TCD 7, WHO-AFRO 8.  Neighbours: DZA-LBY, DZA-NER, DZA-MLI, LBY-NER, LBY-TCD, LBY-SDN, SDN-TCD,
 * TCD-NER, NER-MLI.  The group `reporting` holds the admin, to show it is withheld even when a rule names it.
 */
static struct directory *
make_region(const char *region_name)
{
	static const struct {
		const char *id, *role, *neighbours;
	} nodes[] = {
		{ "DZA", "member", "[LBY, NER, MLI]" },
		{ "LBY", "member", "[NER, TCD, SDN]" },
		{ "SDN", "member", "[TCD]" },
		{ "TCD", "member", "[NER]" },
		{ "MLI", "member", NULL },
		{ "NER", "member", "[MLI]" },
		{ "IOM-ROMENA", "observer", NULL },
		{ "WHO-AFRO", "observer", NULL },
		{ "SECRETARIAT", "admin", NULL },
	};
	struct sbuf sb = { NULL, 0, 0 };
	struct xba_error err;
	struct directory *dir = NULL;

	sb_printf(&sb, "region: %s\nnodes:\n", region_name);
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
		if (append_node(&sb, nodes[i].id, nodes[i].role, nodes[i].neighbours) != 0)
			goto out;
	sb_printf(&sb, "groups:\n  maghreb: [DZA, LBY]\n  sahel: [MLI, NER, TCD]\n  lake-chad: [NER, TCD]\n"
	    "  reporting: [SECRETARIAT, IOM-ROMENA]\n");
	if ((dir = directory_load_buffer("region.yaml", sb.p, sb.len, &err)) == NULL)
		fprintf(stderr, "region: %s\n", err.msg);
out:
	free(sb.p);
	return dir;
}

/* The working group's rules, as the secretariat would write them. */
static const char working_group_rules[] =
	"# Sahel-Maghreb working group routing rules (test copy)\n"
	"rules:\n"
	"  - name: crime-to-neighbours\n"
	"    when:\n"
	"      category: [border-incident, smuggling, trafficking]\n"
	"    to: [neighbours]\n"
	"  - name: trafficking-to-iom\n"
	"    when:\n"
	"      category: [smuggling, trafficking]\n"
	"      severity_at_least: moderate\n"
	"    to: [IOM-ROMENA]\n"
	"  - name: health-to-all\n"
	"    when: { category: health }\n"
	"    to: [members, WHO-AFRO]\n"
	"  - name: sar-to-neighbours-and-iom\n"
	"    when: { category: search-and-rescue }\n"
	"    to: [neighbours, IOM-ROMENA]\n"
	"  - name: movement-in-the-region\n"
	"    when: { category: population-movement, origin: [sahel, maghreb] }\n"
	"    to: [sahel, maghreb, observers]\n"
	"  - name: other-to-reporting\n"
	"    when: { category: other }\n"
	"    to: [reporting]\n"
	"  - name: exercises-stay-apart\n"
	"    when: { status: [exercise] }\n"
	"    deny: [observers]\n";

static struct directory *g_dir;
static struct rules *g_rules;

/* ---- alerts and routes ---- */

static Xba__V1__Alert
make_alert(const char *origin, Xba__V1__Category category, Xba__V1__Severity severity, Xba__V1__Tlp tlp)
{
	Xba__V1__Alert a;

	xba__v1__alert__init(&a);
	a.id = (char *)"0b9f6c1e-5f0a-4c7e-9d2a-3f1e2d3c4b5a";
	a.origin = (char *)origin;
	a.author = (char *)"duty officer";
	a.sent_ms = 1767225600000;
	a.status = XBA__V1__STATUS__STATUS_ACTUAL;
	a.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ALERT;
	a.category = category;
	a.severity = severity;
	a.urgency = XBA__V1__URGENCY__URGENCY_IMMEDIATE;
	a.certainty = XBA__V1__CERTAINTY__CERTAINTY_OBSERVED;
	a.tlp = tlp;
	return a;
}

/* "ID=rule ID=rule" in array order. */
static void
render(const struct directory *dir, const struct route_entry *e, size_t n, char *out, size_t size)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++) {
		int w = snprintf(out + used, size - used, "%s%s=%s", i ? " " : "",
		    e[i].node_index < dir->n_nodes ? dir->nodes[e[i].node_index].id : "?", e[i].rule ? e[i].rule : "?");

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* What must hold of every route: sorted, no repeats, the two lists disjoint, no origin, no admin. */
static void
check_shape(struct check_state *st, int line, const struct directory *dir, const Xba__V1__Alert *a,
    const struct route *r)
{
	const struct dir_node *origin = directory_node(dir, a->origin);
	int bad = 0;

	for (size_t i = 0; i < r->n_recipients; i++) {
		size_t n = r->recipients[i].node_index;

		bad |= n >= dir->n_nodes || (i > 0 && n <= r->recipients[i - 1].node_index);
		bad |= r->recipients[i].rule == NULL;
		bad |= n < dir->n_nodes && (&dir->nodes[n] == origin || dir->nodes[n].role == NODE_ROLE_ADMIN);
		for (size_t j = 0; j < r->n_withheld; j++)
			bad |= r->withheld[j].node_index == n;
	}
	for (size_t j = 0; j < r->n_withheld; j++) {
		size_t n = r->withheld[j].node_index;

		bad |= n >= dir->n_nodes || (j > 0 && n <= r->withheld[j - 1].node_index);
		bad |= r->withheld[j].rule == NULL || (n < dir->n_nodes && &dir->nodes[n] == origin);
	}
	if (bad) {
		fprintf(stderr, "%s:%d: route is not sorted, repeats a node, lists one twice, or holds the origin or "
		    "an admin\n", __FILE__, line);
		st->current_failed++;
	}
}

/* Route a with g_rules (or rules) and compare both lists with the expected text. */
static void
expect_route_with(struct check_state *st, int line, const struct rules *rules, const Xba__V1__Alert *a,
    const char *acked, const char *want_recipients, const char *want_withheld)
{
	char got_r[1024], got_w[1024];
	struct xba_error err;
	struct route r;
	int rc = rules_route(rules, g_dir, a, acked, &r, &err);

	if (rc != 0) {
		fprintf(stderr, "%s:%d: rules_route failed: %d %s\n", __FILE__, line, rc, err.msg);
		st->current_failed++;
		return;
	}
	check_shape(st, line, g_dir, a, &r);
	render(g_dir, r.recipients, r.n_recipients, got_r, sizeof(got_r));
	render(g_dir, r.withheld, r.n_withheld, got_w, sizeof(got_w));
	if (strcmp(got_r, want_recipients) != 0) {
		fprintf(stderr, "%s:%d: recipients\n   got: \"%s\"\n  want: \"%s\"\n", __FILE__, line, got_r,
		    want_recipients);
		st->current_failed++;
	}
	if (strcmp(got_w, want_withheld) != 0) {
		fprintf(stderr, "%s:%d: withheld\n   got: \"%s\"\n  want: \"%s\"\n", __FILE__, line, got_w,
		    want_withheld);
		st->current_failed++;
	}
	route_clear(&r);
	CHECK(st, r.recipients == NULL && r.n_recipients == 0 && r.withheld == NULL && r.n_withheld == 0);
}

#define EXPECT_ROUTE(st, a, acked, recipients, withheld) \
	expect_route_with((st), __LINE__, g_rules, (a), (acked), (recipients), (withheld))
#define EXPECT_ROUTE_WITH(st, rules, a, recipients, withheld) \
	expect_route_with((st), __LINE__, (rules), (a), NULL, (recipients), (withheld))

static struct rules *
load_text(const char *text, struct xba_error *err)
{
	return rules_load_buffer("rules.yaml", text, strlen(text), g_dir, err);
}

/* ---- lint ---- */

struct lint_log {
	char text[8][300];
	size_t n;
};

static void
lint_collect(void *ctx, const char *rule, const char *message)
{
	struct lint_log *log = ctx;

	if (log->n < 8)
		snprintf(log->text[log->n++], sizeof(log->text[0]), "%s: %s", rule, message);
}

/* A valid file whose rules can never send anything: each named, and the working group's own rules clean. */
static void
test_lint(struct check_state *st)
{
	struct xba_error err;
	struct lint_log log = { 0 };
	struct rules *r = load_text("rules:\n"
	    "  - name: to-admins\n"
	    "    to: [reporting]\n"          /* SECRETARIAT and IOM-ROMENA: not only admins, no warning */
	    "  - name: only-admins\n"
	    "    to: [SECRETARIAT]\n"
	    "  - name: iom-trafficking\n"
	    "    when: { category: trafficking, severity_at_least: severe }\n"
	    "    to: [IOM-ROMENA]\n"
	    "  - name: iom-health\n"             /* not covered: the deny names other categories */
	    "    when: { category: health }\n"
	    "    to: [IOM-ROMENA]\n"
	    "  - name: no-iom-crime\n"
	    "    when: { category: [trafficking, smuggling] }\n"
	    "    deny: [IOM-ROMENA, WHO-AFRO]\n"
	    "  - name: who-reports\n"            /* observers with no publish list: never matches */
	    "    when: { origin: WHO-AFRO, category: smuggling }\n"
	    "    to: [members]\n"
	    "  - name: from-anyone\n"
	    "    when: { origin: [WHO-AFRO, NER], category: smuggling }\n"
	    "    to: [members]\n", &err);

	CHECK(st, r != NULL);
	if (r == NULL)
		return;
	CHECK(st, rules_lint(r, g_dir, lint_collect, &log) == 3 && log.n == 3);
	CHECK_CONTAINS(st, log.text[0], "only-admins: it names no node that can receive alerts");
	CHECK_CONTAINS(st, log.text[1], "iom-trafficking: deny rule 'no-iom-crime' removes every node it names");
	CHECK_CONTAINS(st, log.text[2], "who-reports: none of its origins may publish any of its categories");
	rules_free(r);
	memset(&log, 0, sizeof(log));
	CHECK(st, rules_lint(g_rules, g_dir, lint_collect, &log) == 0);
}

/* ---- routing the working group's alerts ---- */

static void
test_loaded(struct check_state *st)
{
	const char *v = rules_version(g_rules);

	CHECK(st, rules_count(g_rules) == 7);
	CHECK(st, strlen(v) == RULES_VERSION_LEN);
	for (size_t i = 0; v[i] != '\0'; i++)
		CHECK(st, (v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f'));
	CHECK(st, g_dir->n_nodes == 9 && strcmp(g_dir->nodes[6].id, "SECRETARIAT") == 0);
}

static void
test_smuggling_from_niger(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("NER", XBA__V1__CATEGORY__CATEGORY_SMUGGLING, XBA__V1__SEVERITY__SEVERITY_SEVERE,
	    XBA__V1__TLP__TLP_AMBER);

	/* NER's neighbours DZA, LBY, MLI, TCD by the first rule; IOM because severe >= moderate. */
	EXPECT_ROUTE(st, &a, NULL,
	    "DZA=crime-to-neighbours IOM-ROMENA=trafficking-to-iom LBY=crime-to-neighbours "
	    "MLI=crime-to-neighbours TCD=crime-to-neighbours", "");
	a.severity = XBA__V1__SEVERITY__SEVERITY_MINOR;
	EXPECT_ROUTE(st, &a, NULL,
	    "DZA=crime-to-neighbours LBY=crime-to-neighbours MLI=crime-to-neighbours TCD=crime-to-neighbours", "");
	/* From SDN the neighbours are LBY and TCD. */
	a.origin = (char *)"SDN";
	a.severity = XBA__V1__SEVERITY__SEVERITY_MODERATE;
	EXPECT_ROUTE(st, &a, NULL,
	    "IOM-ROMENA=trafficking-to-iom LBY=crime-to-neighbours TCD=crime-to-neighbours", "");
}

static void
test_health_from_chad(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("TCD", XBA__V1__CATEGORY__CATEGORY_HEALTH, XBA__V1__SEVERITY__SEVERITY_SEVERE,
	    XBA__V1__TLP__TLP_AMBER);

	EXPECT_ROUTE(st, &a, NULL,
	    "DZA=health-to-all LBY=health-to-all MLI=health-to-all NER=health-to-all SDN=health-to-all "
	    "WHO-AFRO=health-to-all", "");
}

static void
test_emergency_from_niger(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("NER", XBA__V1__CATEGORY__CATEGORY_BORDER_INCIDENT,
	    XBA__V1__SEVERITY__SEVERITY_EXTREME, XBA__V1__TLP__TLP_AMBER);

	a.emergency = 1;
	/* Every member and observer but the origin, all credited to the emergency, not to crime-to-neighbours. */
	EXPECT_ROUTE(st, &a, NULL,
	    "DZA=emergency IOM-ROMENA=emergency LBY=emergency MLI=emergency SDN=emergency TCD=emergency "
	    "WHO-AFRO=emergency", "");
	/* Addressees do not narrow an emergency broadcast. */
	{
		char *to[] = { (char *)"DZA" };

		a.addressees = to;
		a.n_addressees = 1;
		EXPECT_ROUTE(st, &a, NULL,
		    "DZA=emergency IOM-ROMENA=emergency LBY=emergency MLI=emergency SDN=emergency TCD=emergency "
		    "WHO-AFRO=emergency", "");
		a.addressees = NULL;
		a.n_addressees = 0;
	}
	/* TLP narrowing still applies. */
	a.tlp = XBA__V1__TLP__TLP_AMBER_STRICT;
	EXPECT_ROUTE(st, &a, NULL,
	    "DZA=emergency LBY=emergency MLI=emergency SDN=emergency TCD=emergency",
	    "IOM-ROMENA=tlp:amber+strict WHO-AFRO=tlp:amber+strict");
}

static void
test_exercise_denied_to_observers(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("LBY", XBA__V1__CATEGORY__CATEGORY_SEARCH_AND_RESCUE,
	    XBA__V1__SEVERITY__SEVERITY_SEVERE, XBA__V1__TLP__TLP_GREEN);

	EXPECT_ROUTE(st, &a, NULL,
	    "DZA=sar-to-neighbours-and-iom IOM-ROMENA=sar-to-neighbours-and-iom NER=sar-to-neighbours-and-iom "
	    "SDN=sar-to-neighbours-and-iom TCD=sar-to-neighbours-and-iom", "");
	a.status = XBA__V1__STATUS__STATUS_EXERCISE;
	EXPECT_ROUTE(st, &a, NULL,
	    "DZA=sar-to-neighbours-and-iom NER=sar-to-neighbours-and-iom SDN=sar-to-neighbours-and-iom "
	    "TCD=sar-to-neighbours-and-iom", "IOM-ROMENA=exercises-stay-apart");
}

static void
test_deny_beats_emergency(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("NER", XBA__V1__CATEGORY__CATEGORY_HEALTH, XBA__V1__SEVERITY__SEVERITY_EXTREME,
	    XBA__V1__TLP__TLP_CLEAR);

	a.emergency = 1;
	a.status = XBA__V1__STATUS__STATUS_EXERCISE;
	EXPECT_ROUTE(st, &a, NULL,
	    "DZA=emergency LBY=emergency MLI=emergency SDN=emergency TCD=emergency",
	    "IOM-ROMENA=exercises-stay-apart WHO-AFRO=exercises-stay-apart");
}

static void
test_red_with_addressees(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("NER", XBA__V1__CATEGORY__CATEGORY_SMUGGLING, XBA__V1__SEVERITY__SEVERITY_SEVERE,
	    XBA__V1__TLP__TLP_RED);
	char *to[] = { (char *)"SDN", (char *)"DZA", (char *)"NER", (char *)"SECRETARIAT", (char *)"DZA" };

	a.addressees = to;
	a.n_addressees = 5;
	/* DZA keeps the rule that named it; SDN, which no rule named, is there as an addressee.  NER (the origin,
	 * addressed to itself) appears nowhere; the addressed admin is withheld. */
	EXPECT_ROUTE(st, &a, NULL, "DZA=crime-to-neighbours SDN=tlp:red-addressee",
	    "IOM-ROMENA=tlp:red LBY=tlp:red MLI=tlp:red SECRETARIAT=admin TCD=tlp:red");
	/* A deny rule wins over a RED addressee. */
	{
		char *to2[] = { (char *)"IOM-ROMENA", (char *)"TCD" };

		a.addressees = to2;
		a.n_addressees = 2;
		a.status = XBA__V1__STATUS__STATUS_EXERCISE;
		EXPECT_ROUTE(st, &a, NULL, "TCD=crime-to-neighbours",
		    "DZA=tlp:red IOM-ROMENA=exercises-stay-apart LBY=tlp:red MLI=tlp:red");
	}
	/* Addressed only to itself: legal, reaches nobody. */
	{
		char *self[] = { (char *)"NER" };

		a.addressees = self;
		a.n_addressees = 1;
		a.status = XBA__V1__STATUS__STATUS_ACTUAL;
		EXPECT_ROUTE(st, &a, NULL, "", "DZA=tlp:red IOM-ROMENA=tlp:red LBY=tlp:red MLI=tlp:red TCD=tlp:red");
	}
}

static void
test_red_without_addressees(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("NER", XBA__V1__CATEGORY__CATEGORY_SMUGGLING, XBA__V1__SEVERITY__SEVERITY_SEVERE,
	    XBA__V1__TLP__TLP_RED);
	struct xba_error err;
	struct route r;

	CHECK_CODE(st, rules_route(g_rules, g_dir, &a, NULL, &r, &err), XBA_EREQUIRED);
	CHECK_CONTAINS(st, err.msg, "TLP:RED needs explicit addressees");
	CHECK(st, r.recipients == NULL && r.n_recipients == 0 && r.withheld == NULL && r.n_withheld == 0);
	a.emergency = 1;
	CHECK_CODE(st, rules_route(g_rules, g_dir, &a, NULL, &r, &err), XBA_EREQUIRED);
	route_clear(&r);
}

static void
test_amber_strict(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("TCD", XBA__V1__CATEGORY__CATEGORY_HEALTH, XBA__V1__SEVERITY__SEVERITY_SEVERE,
	    XBA__V1__TLP__TLP_AMBER_STRICT);

	EXPECT_ROUTE(st, &a, NULL,
	    "DZA=health-to-all LBY=health-to-all MLI=health-to-all NER=health-to-all SDN=health-to-all",
	    "WHO-AFRO=tlp:amber+strict");
}

static void
test_green_and_clear(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("MLI", XBA__V1__CATEGORY__CATEGORY_POPULATION_MOVEMENT,
	    XBA__V1__SEVERITY__SEVERITY_MODERATE, XBA__V1__TLP__TLP_GREEN);
	const char *all = "DZA=movement-in-the-region IOM-ROMENA=movement-in-the-region LBY=movement-in-the-region "
	    "NER=movement-in-the-region TCD=movement-in-the-region WHO-AFRO=movement-in-the-region";

	/* GREEN's community is members and observers: everyone here already. */
	EXPECT_ROUTE(st, &a, NULL, all, "");
	a.tlp = XBA__V1__TLP__TLP_CLEAR;
	EXPECT_ROUTE(st, &a, NULL, all, "");
	/* The origin condition: SDN is in neither sahel nor maghreb. */
	a.origin = (char *)"SDN";
	EXPECT_ROUTE(st, &a, NULL, "", "");
}

static void
test_addressees_narrow(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("NER", XBA__V1__CATEGORY__CATEGORY_SMUGGLING, XBA__V1__SEVERITY__SEVERITY_SEVERE,
	    XBA__V1__TLP__TLP_AMBER);
	char *to[] = { (char *)"TCD", (char *)"DZA", (char *)"SDN" };

	a.addressees = to;
	a.n_addressees = 3;
	/* SDN was addressed but no rule sends smuggling from NER there: withheld, so the sender learns it. */
	EXPECT_ROUTE(st, &a, NULL, "DZA=crime-to-neighbours TCD=crime-to-neighbours",
	    "IOM-ROMENA=not-addressed LBY=not-addressed MLI=not-addressed SDN=no-rule");
}

static void
test_ack_to_referenced_origin(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("DZA", XBA__V1__CATEGORY__CATEGORY_UNSPECIFIED,
	    XBA__V1__SEVERITY__SEVERITY_UNSPECIFIED, XBA__V1__TLP__TLP_AMBER);
	char *refs[] = { (char *)"0b9f6c1e-5f0a-4c7e-9d2a-3f1e2d3c4b5a" };
	struct xba_error err;
	struct route r;

	a.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ACK;
	a.references = refs;
	a.n_references = 1;
	EXPECT_ROUTE(st, &a, "NER", "NER=ack", "");
	/* Neither deny rules nor TLP apply to acknowledgements. */
	a.status = XBA__V1__STATUS__STATUS_EXERCISE;
	a.tlp = XBA__V1__TLP__TLP_AMBER_STRICT;
	EXPECT_ROUTE(st, &a, "IOM-ROMENA", "IOM-ROMENA=ack", "");
	a.tlp = XBA__V1__TLP__TLP_RED;
	EXPECT_ROUTE(st, &a, "WHO-AFRO", "WHO-AFRO=ack", "");
	/* Unknown referenced origin: nobody, nothing withheld.  Its own alert: nobody. */
	EXPECT_ROUTE(st, &a, NULL, "", "");
	EXPECT_ROUTE(st, &a, "DZA", "", "");
	/* Not a node of the directory. */
	CHECK_CODE(st, rules_route(g_rules, g_dir, &a, "XYZ", &r, &err), XBA_ENOTFOUND);
	CHECK_CONTAINS(st, err.msg, "'XYZ'");
	route_clear(&r);
}

/* An update or a cancel also goes to whoever had the alert it names (route_inputs), credited
 * "superseded:had-alert";
 * not to its origin, an admin or an unknown node; a deny rule still wins over an update, not over a cancel. */
/* Route a with in (shape checked) into to and held, the recipients and the withheld nodes as render writes them. */
static void
route_with_rendered(struct check_state *st, int line, const Xba__V1__Alert *a, const struct route_inputs *in,
    char *to, char *held, size_t size)
{
	struct xba_error err;
	struct route r;

	to[0] = held[0] = '\0';
	CHECK_CODE(st, rules_route_with(g_rules, g_dir, a, in, &r, &err), 0);
	check_shape(st, line, g_dir, a, &r);
	render(g_dir, r.recipients, r.n_recipients, to, size);
	render(g_dir, r.withheld, r.n_withheld, held, size);
	route_clear(&r);
}

static void
test_superseded_recipients(struct check_state *st)
{
	static const char *const had[] = { "SDN", "WHO-AFRO", "NER", "SECRETARIAT", "XYZ", "LBY" };
	struct route_inputs in = { .superseded_recipients = had, .n_superseded_recipients = 6 };
	Xba__V1__Alert a = make_alert("NER", XBA__V1__CATEGORY__CATEGORY_SMUGGLING, XBA__V1__SEVERITY__SEVERITY_MINOR,
	    XBA__V1__TLP__TLP_AMBER);
	char *to_lby[] = { (char *)"LBY" };
	char to[1024], held[1024];

	a.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	route_with_rendered(st, __LINE__, &a, &in, to, held, sizeof(to));
	CHECK(st, strcmp(to, "DZA=crime-to-neighbours LBY=crime-to-neighbours MLI=crime-to-neighbours "
	    "SDN=superseded:had-alert TCD=crime-to-neighbours WHO-AFRO=superseded:had-alert") == 0);
	/* An exercise: the deny rule keeps the observer from an update even though it had the alert ... */
	a.status = XBA__V1__STATUS__STATUS_EXERCISE;
	a.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE;
	route_with_rendered(st, __LINE__, &a, &in, to, held, sizeof(to));
	CHECK(st, strstr(to, "SDN=superseded:had-alert") != NULL && strstr(to, "WHO-AFRO") == NULL);
	CHECK(st, strstr(held, "WHO-AFRO=exercises-stay-apart") != NULL);
	/* ... but not from a cancel: what it holds is withdrawn, whatever a deny rule says of the cancel's fields. */
	a.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	route_with_rendered(st, __LINE__, &a, &in, to, held, sizeof(to));
	CHECK(st, strstr(to, "SDN=superseded:had-alert") != NULL && strstr(to, "WHO-AFRO=superseded:had-alert") != NULL);
	CHECK(st, strstr(held, "WHO-AFRO") == NULL);
	/* Releases before this one let the deny rule win here too; `xba audit verify` routes their cancels so. */
	in.cancel_holders = ROUTE_CANCEL_DENY_BARS_HOLDERS;
	route_with_rendered(st, __LINE__, &a, &in, to, held, sizeof(to));
	CHECK(st, strstr(to, "WHO-AFRO") == NULL && strstr(held, "WHO-AFRO=exercises-stay-apart") != NULL);
	in.cancel_holders = ROUTE_CANCEL_REACHES_HOLDERS;
	/* ... nor when a rule names that holder too (a health cancel: health-to-all names WHO-AFRO). */
	a.category = XBA__V1__CATEGORY__CATEGORY_HEALTH;
	route_with_rendered(st, __LINE__, &a, &in, to, held, sizeof(to));
	CHECK(st, strstr(to, "WHO-AFRO=health-to-all") != NULL && strstr(held, "WHO-AFRO") == NULL);
	a.category = XBA__V1__CATEGORY__CATEGORY_SMUGGLING;
	/* The update's own TLP bounds who may read it: raised to RED for LBY, it reaches LBY alone, and the nodes that had
	 * the alert show as withheld by TLP:RED; AMBER+STRICT keeps the observer back. */
	a.status = XBA__V1__STATUS__STATUS_ACTUAL;
	a.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE;
	a.tlp = XBA__V1__TLP__TLP_RED;
	a.addressees = to_lby;
	a.n_addressees = 1;
	route_with_rendered(st, __LINE__, &a, &in, to, held, sizeof(to));
	CHECK(st, strcmp(to, "LBY=crime-to-neighbours") == 0);
	CHECK(st, strstr(held, "SDN=tlp:red") != NULL && strstr(held, "WHO-AFRO=tlp:red") != NULL &&
	    strstr(held, "DZA=tlp:red") != NULL);
	/* A RED cancel reaches every node that had a version, addressee or not (its addressees may not name them all:
	 * 64 at most), and nobody else: DZA, named by the rules but no holder, stays withheld. */
	a.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	route_with_rendered(st, __LINE__, &a, &in, to, held, sizeof(to));
	CHECK(st, strcmp(to, "LBY=crime-to-neighbours SDN=superseded:had-alert WHO-AFRO=superseded:had-alert") == 0);
	CHECK(st, strstr(held, "DZA=tlp:red") != NULL && strstr(held, "SDN") == NULL && strstr(held, "WHO-AFRO") == NULL);
	/* Releases before 2026-11-27 kept them out by the TLP; `xba audit verify` routes their cancels so. */
	in.cancel_holders = ROUTE_CANCEL_TLP_BARS_HOLDERS;
	route_with_rendered(st, __LINE__, &a, &in, to, held, sizeof(to));
	CHECK(st, strcmp(to, "LBY=crime-to-neighbours") == 0 && strstr(held, "SDN=tlp:red") != NULL);
	in.cancel_holders = ROUTE_CANCEL_REACHES_HOLDERS;
	a.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE;
	a.addressees = NULL;
	a.n_addressees = 0;
	a.tlp = XBA__V1__TLP__TLP_AMBER_STRICT;
	route_with_rendered(st, __LINE__, &a, &in, to, held, sizeof(to));
	CHECK(st, strstr(to, "SDN=superseded:had-alert") != NULL && strstr(to, "WHO-AFRO") == NULL);
	CHECK(st, strstr(held, "WHO-AFRO=tlp:amber+strict") != NULL);
	/* Only updates and cancels: an alert with the same inputs goes where the rules say. */
	a.tlp = XBA__V1__TLP__TLP_AMBER;
	a.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ALERT;
	route_with_rendered(st, __LINE__, &a, &in, to, held, sizeof(to));
	CHECK(st, strstr(to, "superseded") == NULL);
}

static void
test_origin_never_included(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("NER", XBA__V1__CATEGORY__CATEGORY_HEALTH, XBA__V1__SEVERITY__SEVERITY_MINOR,
	    XBA__V1__TLP__TLP_AMBER);
	char *to[] = { (char *)"NER", (char *)"MLI" };

	/* health-to-all names every member, NER included: it is neither a recipient nor withheld. */
	EXPECT_ROUTE(st, &a, NULL,
	    "DZA=health-to-all LBY=health-to-all MLI=health-to-all SDN=health-to-all TCD=health-to-all "
	    "WHO-AFRO=health-to-all", "");
	a.addressees = to;
	a.n_addressees = 2;
	EXPECT_ROUTE(st, &a, NULL, "MLI=health-to-all",
	    "DZA=not-addressed LBY=not-addressed SDN=not-addressed TCD=not-addressed WHO-AFRO=not-addressed");
	/* An observer's own alert. */
	a.origin = (char *)"WHO-AFRO";
	a.addressees = NULL;
	a.n_addressees = 0;
	EXPECT_ROUTE(st, &a, NULL,
	    "DZA=health-to-all LBY=health-to-all MLI=health-to-all NER=health-to-all SDN=health-to-all "
	    "TCD=health-to-all", "");
}

static void
test_admin_never_included(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("NER", XBA__V1__CATEGORY__CATEGORY_OTHER, XBA__V1__SEVERITY__SEVERITY_MINOR,
	    XBA__V1__TLP__TLP_CLEAR);
	char *to[] = { (char *)"SECRETARIAT", (char *)"IOM-ROMENA" };

	/* The reporting group holds the admin: named, withheld. */
	EXPECT_ROUTE(st, &a, NULL, "IOM-ROMENA=other-to-reporting", "SECRETARIAT=admin");
	a.addressees = to;
	a.n_addressees = 2;
	EXPECT_ROUTE(st, &a, NULL, "IOM-ROMENA=other-to-reporting", "SECRETARIAT=admin");
	/* An emergency is for members and observers: the admin is not even named. */
	a.addressees = NULL;
	a.n_addressees = 0;
	a.category = XBA__V1__CATEGORY__CATEGORY_HEALTH;
	a.emergency = 1;
	EXPECT_ROUTE(st, &a, NULL,
	    "DZA=emergency IOM-ROMENA=emergency LBY=emergency MLI=emergency SDN=emergency TCD=emergency "
	    "WHO-AFRO=emergency", "");
}

static void
test_unknown_alert_nodes(struct check_state *st)
{
	Xba__V1__Alert a = make_alert("NER", XBA__V1__CATEGORY__CATEGORY_HEALTH, XBA__V1__SEVERITY__SEVERITY_MINOR,
	    XBA__V1__TLP__TLP_AMBER);
	char *to[] = { (char *)"DZA", (char *)"EGY" };
	struct xba_error err;
	struct route r;

	a.addressees = to;
	a.n_addressees = 2;
	CHECK_CODE(st, rules_route(g_rules, g_dir, &a, NULL, &r, &err), XBA_ENOTFOUND);
	CHECK_CONTAINS(st, err.msg, "addressees[1]: 'EGY' is not a node of the directory");
	CHECK(st, r.recipients == NULL && r.withheld == NULL);
	a.n_addressees = 0;
	a.origin = (char *)"EGY";
	CHECK_CODE(st, rules_route(g_rules, g_dir, &a, NULL, &r, &err), XBA_ENOTFOUND);
	CHECK_CONTAINS(st, err.msg, "origin: 'EGY'");
	route_clear(&r);
}

static void
test_other_directory_refused(struct check_state *st)
{
	struct directory *other = make_region("sahel-maghreb");  /* same shape, other keys: another file */
	Xba__V1__Alert a = make_alert("NER", XBA__V1__CATEGORY__CATEGORY_HEALTH, XBA__V1__SEVERITY__SEVERITY_MINOR,
	    XBA__V1__TLP__TLP_AMBER);
	struct xba_error err;
	struct route r;

	CHECK(st, other != NULL);
	if (other == NULL)
		return;
	CHECK_CODE(st, rules_route(g_rules, other, &a, NULL, &r, &err), XBA_EINVAL);
	CHECK_CONTAINS(st, err.msg, "reload the rules");
	directory_free(other);
}

/* Every kind of condition, one rule each, each sending to one node so the route shows which matched. */
static void
test_conditions(struct check_state *st)
{
	static const char text[] =
		"rules:\n"
		"  - name: any-severity\n"
		"    when: { severity_at_least: unknown }\n"
		"    to: DZA\n"
		"  - name: minor-and-up\n"
		"    when: { severity_at_least: minor }\n"
		"    to: LBY\n"
		"  - name: from-lake-chad\n"
		"    when: { origin: lake-chad }\n"
		"    to: SDN\n"
		"  - name: from-observers\n"
		"    when: { origin: observers }\n"
		"    to: MLI\n"
		"  - name: updates\n"
		"    when: { msg_type: [update, cancel] }\n"
		"    to: TCD\n"
		"  - name: calm\n"
		"    when: { emergency: false, tlp: [clear, 'TLP:GREEN'] }\n"
		"    to: WHO-AFRO\n"
		"  - name: drafts\n"
		"    when: { status: draft }\n"
		"    to: IOM-ROMENA\n"
		"  - name: emergencies-from-members\n"
		"    when: { emergency: true, origin: members }\n"
		"    to: [NER]\n";
	struct xba_error err;
	struct rules *rules = load_text(text, &err);
	Xba__V1__Alert a = make_alert("DZA", XBA__V1__CATEGORY__CATEGORY_OTHER, XBA__V1__SEVERITY__SEVERITY_UNKNOWN,
	    XBA__V1__TLP__TLP_AMBER);

	CHECK(st, rules != NULL);
	if (rules == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		return;
	}
	CHECK(st, rules_count(rules) == 8);
	/* Unknown severity is at least unknown, and not at least minor. */
	EXPECT_ROUTE_WITH(st, rules, &a, "", "");  /* origin DZA is the only one any-severity names */
	a.origin = (char *)"MLI";
	EXPECT_ROUTE_WITH(st, rules, &a, "DZA=any-severity", "");
	a.severity = XBA__V1__SEVERITY__SEVERITY_MINOR;
	EXPECT_ROUTE_WITH(st, rules, &a, "DZA=any-severity LBY=minor-and-up", "");
	/* Unspecified severity (a cancel may carry none) meets no severity condition. */
	a.severity = XBA__V1__SEVERITY__SEVERITY_UNSPECIFIED;
	a.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL;
	EXPECT_ROUTE_WITH(st, rules, &a, "TCD=updates", "");
	/* Origin by group and by role; TLP written as on a document; emergency true and false. */
	a.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ALERT;
	a.origin = (char *)"TCD";
	a.tlp = XBA__V1__TLP__TLP_GREEN;
	EXPECT_ROUTE_WITH(st, rules, &a, "SDN=from-lake-chad WHO-AFRO=calm", "");
	a.emergency = 1;
	a.severity = XBA__V1__SEVERITY__SEVERITY_EXTREME;
	/* The emergency itself names every member and observer first. */
	EXPECT_ROUTE_WITH(st, rules, &a,
	    "DZA=emergency IOM-ROMENA=emergency LBY=emergency MLI=emergency NER=emergency SDN=emergency "
	    "WHO-AFRO=emergency", "");
	a.emergency = 0;
	a.origin = (char *)"IOM-ROMENA";
	a.status = XBA__V1__STATUS__STATUS_DRAFT;
	EXPECT_ROUTE_WITH(st, rules, &a, "DZA=any-severity LBY=minor-and-up MLI=from-observers WHO-AFRO=calm", "");
	a.tlp = XBA__V1__TLP__TLP_AMBER;
	a.status = XBA__V1__STATUS__STATUS_ACTUAL;
	EXPECT_ROUTE_WITH(st, rules, &a, "DZA=any-severity LBY=minor-and-up MLI=from-observers", "");
	rules_free(rules);
}

/* A node named by several rules is credited to the first in file order; denies apply in file order too. */
static void
test_first_rule_credited(struct check_state *st)
{
	static const char text[] =
		"rules:\n"
		"  - name: maghreb-first\n"
		"    to: [maghreb]\n"
		"  - name: everyone\n"
		"    to: [members, observers]\n"
		"  - name: neighbours-too\n"
		"    to: neighbours\n"
		"  - name: no-sudan\n"
		"    deny: [SDN, LBY]\n"
		"  - name: no-libya\n"
		"    deny: LBY\n"
		"  - name: no-neighbours-in-tests\n"
		"    when: { status: test }\n"
		"    deny: [neighbours]\n";
	struct xba_error err;
	struct rules *rules = load_text(text, &err);
	Xba__V1__Alert a = make_alert("TCD", XBA__V1__CATEGORY__CATEGORY_OTHER, XBA__V1__SEVERITY__SEVERITY_MINOR,
	    XBA__V1__TLP__TLP_CLEAR);

	CHECK(st, rules != NULL);
	if (rules == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		return;
	}
	EXPECT_ROUTE_WITH(st, rules, &a,
	    "DZA=maghreb-first IOM-ROMENA=everyone MLI=everyone NER=everyone WHO-AFRO=everyone",
	    "LBY=no-sudan SDN=no-sudan");
	a.status = XBA__V1__STATUS__STATUS_TEST;
	EXPECT_ROUTE_WITH(st, rules, &a, "DZA=maghreb-first IOM-ROMENA=everyone MLI=everyone WHO-AFRO=everyone",
	    "LBY=no-sudan NER=no-neighbours-in-tests SDN=no-sudan");
	rules_free(rules);
}

static void
test_empty_rules(struct check_state *st)
{
	struct xba_error err;
	struct rules *rules = load_text("rules: []\n", &err);
	Xba__V1__Alert a = make_alert("NER", XBA__V1__CATEGORY__CATEGORY_HEALTH, XBA__V1__SEVERITY__SEVERITY_EXTREME,
	    XBA__V1__TLP__TLP_AMBER);
	char *to[] = { (char *)"DZA" };

	CHECK(st, rules != NULL);
	if (rules == NULL)
		return;
	CHECK(st, rules_count(rules) == 0);
	EXPECT_ROUTE_WITH(st, rules, &a, "", "");
	a.addressees = to;
	a.n_addressees = 1;
	EXPECT_ROUTE_WITH(st, rules, &a, "", "DZA=no-rule");
	a.emergency = 1;
	EXPECT_ROUTE_WITH(st, rules, &a,
	    "DZA=emergency IOM-ROMENA=emergency LBY=emergency MLI=emergency SDN=emergency TCD=emergency "
	    "WHO-AFRO=emergency", "");
	rules_free(rules);
}

static void
test_version(struct check_state *st)
{
	size_t len = strlen(working_group_rules);
	char *copy = malloc(len + 1);
	struct xba_error err;
	struct rules *same, *changed;
	char *pos;

	CHECK(st, copy != NULL);
	if (copy == NULL)
		return;
	memcpy(copy, working_group_rules, len + 1);
	same = rules_load_buffer("other-name.yaml", copy, len, g_dir, &err);
	pos = strstr(copy, "(test copy)");
	pos[1] = 'T';  /* one byte of a comment: same rules, another text */
	changed = rules_load_buffer("rules.yaml", copy, len, g_dir, &err);
	CHECK(st, same != NULL && changed != NULL);
	if (same != NULL && changed != NULL) {
		CHECK(st, strcmp(rules_version(same), rules_version(g_rules)) == 0);
		CHECK(st, strcmp(rules_version(changed), rules_version(g_rules)) != 0);
		CHECK(st, strlen(rules_version(changed)) == RULES_VERSION_LEN);
	}
	rules_free(same);
	rules_free(changed);
	free(copy);
}

/* The SHA-256 of "rules: []\n", worked out independently: the version is the plain hash of the bytes. */
static void
test_version_known_answer(struct check_state *st)
{
	struct xba_error err;
	struct rules *rules = load_text("rules: []\n", &err);
	uint8_t md[32];
	char hex[65];

	CHECK(st, rules != NULL);
	if (rules == NULL)
		return;
	CHECK(st, EVP_Digest("rules: []\n", 10, md, NULL, EVP_sha256(), NULL) == 1);
	CHECK(st, strcmp(rules_version(rules), encoding_hex(md, sizeof(md), hex)) == 0);
	rules_free(rules);
}

static void
test_load_file(struct check_state *st)
{
	char path[] = "test_rules_file_XXXXXX";
	size_t len = strlen(working_group_rules);
	struct xba_error err;
	struct rules *rules;
	int fd = mkstemp(path);
	char *big;

	CHECK(st, fd >= 0);
	if (fd < 0)
		return;
	CHECK(st, write(fd, working_group_rules, len) == (ssize_t)len);
	rules = rules_load(path, g_dir, &err);
	CHECK(st, rules != NULL);
	if (rules != NULL)
		CHECK(st, strcmp(rules_version(rules), rules_version(g_rules)) == 0);
	rules_free(rules);

	/* Exactly the limit is read (and refused only for its content); one byte more is too big. */
	big = malloc(RULES_MAX_BYTES + 1);
	CHECK(st, big != NULL && ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
	if (big != NULL) {
		for (size_t i = 0; i < RULES_MAX_BYTES; i++)
			big[i] = i % 64 == 0 ? '#' : i % 64 == 63 ? '\n' : 'x';
		CHECK(st, write(fd, big, RULES_MAX_BYTES) == (ssize_t)RULES_MAX_BYTES);
		rules = rules_load(path, g_dir, &err);
		CHECK(st, rules == NULL);
		CHECK_CODE(st, err.code, XBA_ECONFIG);
		CHECK_CONTAINS(st, err.msg, ":1:1: the file is empty");
		CHECK(st, write(fd, "\n", 1) == 1);
		rules = rules_load(path, g_dir, &err);
		CHECK(st, rules == NULL);
		CHECK_CODE(st, err.code, XBA_ETOOBIG);
		CHECK_CONTAINS(st, err.msg, "limit of 1048576 bytes");
		CHECK(st, rules_load_buffer("b.yaml", big, RULES_MAX_BYTES + 1, g_dir, &err) == NULL);
		CHECK_CODE(st, err.code, XBA_ETOOBIG);
	}
	free(big);
	close(fd);
	unlink(path);
	CHECK(st, rules_load(path, g_dir, &err) == NULL);
	CHECK_CODE(st, err.code, XBA_EIO);
	CHECK_CONTAINS(st, err.msg, path);
}

/* ---- load-time errors ---- */

/* text must be refused with XBA_ECONFIG and a message containing where ("rules.yaml:L:C: path") and what. */
static void
refused_at(struct check_state *st, int line, const char *text, const char *where, const char *what)
{
	struct xba_error err;
	struct rules *rules = load_text(text, &err);

	if (rules != NULL) {
		fprintf(stderr, "%s:%d: rules were accepted\n", __FILE__, line);
		st->current_failed++;
		rules_free(rules);
		return;
	}
	if (err.code != XBA_ECONFIG || strstr(err.msg, where) == NULL || strstr(err.msg, what) == NULL) {
		fprintf(stderr, "%s:%d: got %d \"%s\"\n  want %d with \"%s\" and \"%s\"\n", __FILE__, line, err.code,
		    err.msg, XBA_ECONFIG, where, what);
		st->current_failed++;
	}
}

#define REFUSED(st, text, where, what) refused_at((st), __LINE__, (text), (where), (what))

static void
test_error_file_shape(struct check_state *st)
{
	REFUSED(st, "", "rules.yaml:1:1: ", "the file is empty");
	REFUSED(st, "# nothing but a comment\n", "rules.yaml:1:1: ", "the file is empty");
	REFUSED(st, "{}\n", "rules.yaml:1:1: ", "missing required key 'rules'");
	REFUSED(st, "- name: a\n  to: [DZA]\n", "rules.yaml:1:1: ", "expected a map");
	REFUSED(st, "rules: {a: 1}\n", "rules.yaml:1:8: rules: ", "expected a list");
	REFUSED(st, "rules:\n", "rules.yaml:1:7: rules: ", "expected a list, found nothing (write 'rules: []' to route "
	    "nothing but emergencies and acknowledgements)");
	REFUSED(st, "rules:\n  - just-a-name\n", "rules.yaml:2:5: rules[0]: ", "expected a map");
}

static void
test_error_unknown_keys(struct check_state *st)
{
	REFUSED(st, "rules: []\nextras: 1\n", "rules.yaml:2:1: ", "unknown key 'extras' (expected one of: rules)");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    to: [DZA]\n"
	    "    tp: [LBY]\n",
	    "rules.yaml:4:5: rules[0]: ", "unknown key 'tp' (expected one of: name, when, to, deny)");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when: { categories: [health] }\n"
	    "    to: [DZA]\n",
	    "rules.yaml:3:13: rules[0].when: ", "unknown key 'categories'");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when: [health]\n"
	    "    to: [DZA]\n",
	    "rules.yaml:3:11: rules[0].when: ", "expected a map");
	/* Acknowledgements are routed before any rule: a rule on them would never apply. */
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when: { msg_type: [alert, ack] }\n"
	    "    deny: [DZA]\n",
	    "rules.yaml:3:31: rules[0].when.msg_type[1]: ", "no rule applies to 'ack': an acknowledgement goes to the "
	    "origin of the alert it acknowledges, whatever the rules say; remove it");
}

static void
test_error_names(struct check_state *st)
{
	struct xba_error err;
	struct rules *longest = load_text("rules:\n"
	    "  - name: a234567890123456789012345678901234567890123456789012345678901234\n"
	    "    to: [DZA]\n", &err);

	CHECK(st, longest != NULL);  /* 64 characters: the longest name */
	rules_free(longest);
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    to: [DZA]\n"
	    "  - name: b\n"
	    "    to: [DZA]\n"
	    "  - name: a\n"
	    "    deny: [LBY]\n",
	    "rules.yaml:6:11: rules[2].name: ", "duplicate rule name 'a' (first at rules[0], line 2, column 11)");
	REFUSED(st, "rules:\n  - to: [DZA]\n", "rules.yaml:2:5: rules[0]: ", "missing required key 'name'");
	REFUSED(st, "rules:\n  - name: Smuggling\n    to: [DZA]\n", "rules.yaml:2:11: rules[0].name: ",
	    "'Smuggling' is not a valid rule name");
	REFUSED(st,
	    "rules:\n  - name: a2345678901234567890123456789012345678901234567890123456789012345\n    to: [DZA]\n",
	    "rules.yaml:2:11: rules[0].name: ", "is not a valid rule name (1 to 64");
	REFUSED(st, "rules:\n  - name: \"\"\n    to: [DZA]\n", "rules.yaml:2:11: rules[0].name: ",
	    "is not a valid rule name");
	REFUSED(st, "rules:\n  - name: emergency\n    to: [DZA]\n", "rules.yaml:2:11: rules[0].name: ",
	    "'emergency' is reserved");
	REFUSED(st, "rules:\n  - name: no-rule\n    to: [DZA]\n", "rules.yaml:2:11: rules[0].name: ",
	    "'no-rule' is reserved");
}

static void
test_error_to_and_deny(struct check_state *st)
{
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    to: [DZA]\n"
	    "    deny: [LBY]\n",
	    "rules.yaml:4:11: rules[0]: ", "has both 'to' and 'deny'");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when: { category: health }\n",
	    "rules.yaml:2:5: rules[0]: ", "needs 'to' (a deliver rule) or 'deny' (a deny rule)");
	REFUSED(st, "rules:\n  - name: a\n    to: []\n", "rules.yaml:3:9: rules[0].to: ", "empty list");
	REFUSED(st, "rules:\n  - name: a\n    deny: []\n", "rules.yaml:3:11: rules[0].deny: ", "empty list");
	REFUSED(st, "rules:\n  - name: a\n    to:\n", "rules.yaml:3:8: rules[0].to: ", "found nothing");
	REFUSED(st, "rules:\n  - name: a\n    to: {DZA: 1}\n", "rules.yaml:3:9: rules[0].to: ", "found a map");
}

static void
test_error_unknown_enum_names(struct check_state *st)
{
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when:\n"
	    "      category: [health, piracy]\n"
	    "    to: [DZA]\n",
	    "rules.yaml:4:26: rules[0].when.category[1]: ", "unknown category 'piracy' (expected one of: "
	    "border-incident, smuggling");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when:\n"
	    "      status: rehearsal\n"
	    "    to: [DZA]\n",
	    "rules.yaml:4:15: rules[0].when.status: ", "unknown status 'rehearsal'");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when:\n"
	    "      tlp: [amber, orange]\n"
	    "    to: [DZA]\n",
	    "rules.yaml:4:20: rules[0].when.tlp[1]: ", "unknown tlp 'orange'");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when:\n"
	    "      severity_at_least: high\n"
	    "    to: [DZA]\n",
	    "rules.yaml:4:26: rules[0].when.severity_at_least: ", "unknown severity 'high'");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when:\n"
	    "      severity_at_least: [minor]\n"
	    "    to: [DZA]\n",
	    "rules.yaml:4:26: rules[0].when.severity_at_least: ", "expected text, found a list");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when:\n"
	    "      msg_type: [alert, notice]\n"
	    "    to: [DZA]\n",
	    "rules.yaml:4:25: rules[0].when.msg_type[1]: ", "unknown msg_type 'notice'");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when:\n"
	    "      category: []\n"
	    "    to: [DZA]\n",
	    "rules.yaml:4:17: rules[0].when.category: ", "empty list (it would match nothing");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when:\n"
	    "      emergency: maybe\n"
	    "    to: [DZA]\n",
	    "rules.yaml:4:18: rules[0].when.emergency: ", "expected true or false");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when:\n"
	    "      category: unspecified\n"
	    "    to: [DZA]\n",
	    "rules.yaml:4:17: rules[0].when.category: ", "unknown category 'unspecified'");
}

static void
test_error_unknown_targets(struct check_state *st)
{
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    to: [DZA]\n"
	    "  - name: b\n"
	    "    to: [DZA]\n"
	    "  - name: c\n"
	    "    to: [DZA]\n"
	    "  - name: d\n"
	    "    to: [LBY, XYZ]\n",
	    "rules.yaml:9:15: rules[3].to[1]: ", "unknown node or group 'XYZ'");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when:\n"
	    "      origin: [NER, sahara]\n"
	    "    to: [DZA]\n",
	    "rules.yaml:4:21: rules[0].when.origin[1]: ", "unknown node or group 'sahara'");
	REFUSED(st, "rules:\n  - name: a\n    deny: nobody\n", "rules.yaml:3:11: rules[0].deny: ",
	    "unknown node or group 'nobody'");
	REFUSED(st, "rules:\n  - name: a\n    to: [ner]\n", "rules.yaml:3:10: rules[0].to[0]: ",
	    "unknown node or group 'ner' (node ids are upper-case: did you mean 'NER'?)");
	REFUSED(st, "rules:\n  - name: a\n    to: [Members]\n", "rules.yaml:3:10: rules[0].to[0]: ",
	    "unknown node or group 'Members'");
	REFUSED(st,
	    "rules:\n"
	    "  - name: a\n"
	    "    when:\n"
	    "      origin: neighbours\n"
	    "    to: [DZA]\n",
	    "rules.yaml:4:15: rules[0].when.origin: ", "'neighbours' means the neighbours of the alert's origin");
	REFUSED(st, "rules:\n  - name: a\n    to: [[DZA]]\n", "rules.yaml:3:10: rules[0].to[0]: ",
	    "expected text, found a list");
}

/* Errors from the YAML layer keep their position and code too. */
static void
test_error_yaml(struct check_state *st)
{
	REFUSED(st, "rules:\n  - name: a\n    to: [DZA\n", "rules.yaml:", "");
	REFUSED(st, "rules:\n  - &r {name: a, to: [DZA]}\n  - *r\n", "rules.yaml:2:", "");
	REFUSED(st, "rules:\n  - name: a\n    name: b\n    to: [DZA]\n", "rules.yaml:3:5", "");
}

/* ---- time budget ---- */

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* 200 nodes (150 members, 50 observers), 10 groups, 50 rules (5 deny): the broker's hot path. */
static void
test_route_cost(struct check_state *st)
{
	struct sbuf sb = { NULL, 0, 0 }, rb = { NULL, 0, 0 };
	char ids[200][XBA_NODE_ID_MAX + 1];
	struct directory *dir = NULL;
	struct rules *rules = NULL;
	struct xba_error err;
	size_t n_members = 0, routed = 0;
	double t0, elapsed;
	const int rounds = 20000;

	for (char a = 'A'; a <= 'Z' && n_members < 150; a++)
		for (char b = 'A'; b <= 'Z' && n_members < 150; b++)
			for (char c = 'A'; c <= 'Z' && n_members < 150; c++) {
				char code[4] = { a, b, c, '\0' };

				if (syntax_iso3166_alpha3(code))
					memcpy(ids[n_members++], code, 4);
			}
	CHECK(st, n_members == 150);
	for (size_t i = 150; i < 200; i++)
		snprintf(ids[i], sizeof(ids[i]), "OBS-%zu", i);
	sb_printf(&sb, "region: bench\nnodes:\n");
	for (size_t i = 0; i < 200; i++) {
		char neigh[2 * XBA_NODE_ID_MAX + 8];

		snprintf(neigh, sizeof(neigh), "[%s, %s]", ids[(i + 1) % 150], ids[(i + 7) % 150]);
		if (append_node(&sb, ids[i], i < 150 ? "member" : "observer", i < 150 ? neigh : NULL) != 0)
			goto out;
	}
	sb_printf(&sb, "groups:\n");
	for (size_t g = 0; g < 10; g++) {
		sb_printf(&sb, "  g%zu: [", g);
		for (size_t m = 0; m < 15; m++)
			sb_printf(&sb, "%s%s", m ? ", " : "", ids[(g * 13 + m * 7) % 200]);
		sb_printf(&sb, "]\n");
	}
	if ((dir = directory_load_buffer("bench-region.yaml", sb.p, sb.len, &err)) == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		goto out;
	}
	sb_printf(&rb, "rules:\n");
	for (size_t r = 0; r < 50; r++) {
		static const char *const cats[] = { "border-incident", "smuggling", "trafficking", "health",
			"search-and-rescue", "population-movement", "other" };

		sb_printf(&rb, "  - name: rule-%zu\n", r);
		sb_printf(&rb, "    when: { category: [%s, %s], severity_at_least: %s, origin: [g%zu, %s] }\n",
		    cats[r % 7], cats[(r + 3) % 7], r % 2 ? "minor" : "moderate", r % 10, ids[r * 3]);
		if (r % 10 == 9)
			sb_printf(&rb, "    deny: [g%zu, %s]\n", (r + 1) % 10, ids[r + 100]);
		else
			sb_printf(&rb, "    to: [neighbours, g%zu, %s, %s]\n", (r + 5) % 10, ids[r + 20],
			    ids[150 + r % 50]);
	}
	if ((rules = rules_load_buffer("bench-rules.yaml", rb.p, rb.len, dir, &err)) == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		goto out;
	}
	CHECK(st, rules_count(rules) == 50);
	t0 = now_us();
	for (int i = 0; i < rounds; i++) {
		Xba__V1__Alert a = make_alert(ids[(size_t)i % 150], (Xba__V1__Category)(1 + i % 7),
		    (Xba__V1__Severity)(1 + i % 5), XBA__V1__TLP__TLP_AMBER);
		struct route r;

		if (rules_route(rules, dir, &a, NULL, &r, &err) != 0) {
			CHECK(st, 0);
			break;
		}
		routed += r.n_recipients;
		route_clear(&r);
	}
	elapsed = (now_us() - t0) / rounds;
	printf("route cost: %.2f us per alert (200 nodes, 50 rules, %.1f recipients on average)\n", elapsed,
	    (double)routed / rounds);
	CHECK(st, routed > 0);
	/* The figure is printed, never asserted: timing on a shared machine is not a test (tests/bench/ measures). */
out:
	rules_free(rules);
	directory_free(dir);
	free(sb.p);
	free(rb.p);
}

int
main(int argc, char **argv)
{
	struct check_state st = { 0, 0, 0 };
	struct xba_error err;

	(void)argc;
	(void)argv;
	if ((g_dir = make_region("sahel-maghreb")) == NULL) {
		fprintf(stderr, "cannot build the test region\n");
		return 1;
	}
	if ((g_rules = load_text(working_group_rules, &err)) == NULL) {
		fprintf(stderr, "working group rules refused: %s\n", err.msg);
		directory_free(g_dir);
		return 1;
	}
	RUN(&st, test_loaded);
	RUN(&st, test_smuggling_from_niger);
	RUN(&st, test_health_from_chad);
	RUN(&st, test_emergency_from_niger);
	RUN(&st, test_exercise_denied_to_observers);
	RUN(&st, test_deny_beats_emergency);
	RUN(&st, test_red_with_addressees);
	RUN(&st, test_red_without_addressees);
	RUN(&st, test_amber_strict);
	RUN(&st, test_green_and_clear);
	RUN(&st, test_addressees_narrow);
	RUN(&st, test_ack_to_referenced_origin);
	RUN(&st, test_superseded_recipients);
	RUN(&st, test_origin_never_included);
	RUN(&st, test_admin_never_included);
	RUN(&st, test_unknown_alert_nodes);
	RUN(&st, test_other_directory_refused);
	RUN(&st, test_conditions);
	RUN(&st, test_first_rule_credited);
	RUN(&st, test_empty_rules);
	RUN(&st, test_version);
	RUN(&st, test_version_known_answer);
	RUN(&st, test_load_file);
	RUN(&st, test_error_file_shape);
	RUN(&st, test_error_unknown_keys);
	RUN(&st, test_error_names);
	RUN(&st, test_error_to_and_deny);
	RUN(&st, test_error_unknown_enum_names);
	RUN(&st, test_error_unknown_targets);
	RUN(&st, test_error_yaml);
	RUN(&st, test_route_cost);
	RUN(&st, test_lint);
	rules_free(g_rules);
	directory_free(g_dir);
	return check_finish(&st);
}
