/*
 * fuzz_rules.c — libFuzzer target for the rules loader (lib/rules.c), the boundary where the secretariat's
 * rules.yaml becomes the routing of every alert.  Any bytes must come back as rules or as an error naming
 * file:line:column; never a crash, a leak or unbounded work.  Rules that load are then used to route a fixed set
 * of alerts, and every route must keep the engine's promises: sorted, no node twice, recipients and withheld
 * disjoint, never the origin, never an admin.
 *
 * The rules are checked against a fixed Sahel–Maghreb directory built once in LLVMFuzzerInitialize (the public
 * test keys of tests/fuzz/corpus/region/valid-sahel-maghreb.yaml; no secrets).  Seeds: tests/fuzz/corpus/rules/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "rules.h"
#include "xba.pb-c.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char region_yaml[] =
	"region: sahel-maghreb\n"
	"nodes:\n"
	"  - {id: NER, name: Niger, role: member, curve_key: \"}g1f2C]pfkD3.S>J7{cMi!:J>T&64?eK9=>y{Jq2\",\n"
	"     signing_keys: [{public: \"ugYfrBUTSANP6OhwPxsYypd9dNSaV3SHxJRCfVR3v3M=\"}],\n"
	"     neighbours: [DZA, LBY, TCD, MLI],\n"
	"     may_broadcast: true}\n"
	"  - {id: DZA, name: Algeria, role: member, curve_key: \"GTS0KCpA+saKWPg[kCU8Zv*K*9mU]JgMbhmqBuZ^\",\n"
	"     signing_keys: [{public: \"/WMcHyG/biG2rvvDTt3f/LeeL3EgjcgO6OwqtGS+q80=\"}], neighbours: [LBY, MLI]}\n"
	"  - {id: LBY, name: Libya, role: member, curve_key: \"ZC&krT^q>^Nn8WWyxb(t^JluUFVkpO^+AFUwEB}?\",\n"
	"     signing_keys: [{public: \"ClxIJTR9wld4mNLWwzrbgk4ash3vBJSZINgtWoygwF8=\"}], neighbours: [SDN, TCD]}\n"
	"  - {id: SDN, name: Sudan, role: member, curve_key: \"oahX&[C(b5da$b*^(S45>xSdl)g0]y7gvGdy^WF.\",\n"
	"     signing_keys: [{public: \"iUOH2+H3EoLBOewrFmtrZB5KQHnb+Qde9oiwbH/COZY=\"}], neighbours: [TCD]}\n"
	"  - {id: TCD, name: Chad, role: member, curve_key: \"wTxHm.GuVql?]VT(fXV0<$e=1MT+mDB:(na1V@n/\",\n"
	"     signing_keys: [{public: \"2lw6sA6+f3pyy04LYsiNreS+jSoEsFYoT618/XXFt6s=\"}]}\n"
	"  - {id: MLI, name: Mali, role: member, curve_key: \"@}KGD[N76?(./D92vBr/7uao!hYG1RVKkPAfNY8$\",\n"
	"     signing_keys: [{public: \"h7fOQCoOD0P2PUTMd3NH5T4sGxhUuQRjlh2gzZE6xlc=\"}]}\n"
	"  - {id: IOM-ROMENA, name: IOM, role: observer, curve_key: \"jc&K2-)[:$>ctz/=jk<jmgzY{SRO):W.LFSodPYu\",\n"
	"     signing_keys: [{public: \"bBae7D8/tX740DRbtmRIPpiOLR/zN9LbutXBtbN7btw=\"}]}\n"
	"  - {id: WHO-AFRO, name: WHO, role: observer, curve_key: \"lqUo+3>*O0rK?{e!XnV6oe$css-}aT&Uo48+hSg[\",\n"
	"     signing_keys: [{public: \"noB2dR6oWmrU2JuFkI3W3K2Up7kKm3Fn8dMFi/AmDao=\"}]}\n"
	"  - {id: SECRETARIAT, name: Secretariat, role: admin,\n"
	"     curve_key: \"&u@2ZT)dU4[K&Oe5Exr=H77{0jwj^dpIbG!s0%FX\"}\n"
	"groups:\n"
	"  maghreb: [DZA, LBY]\n"
	"  sahel: [MLI, NER, TCD]\n"
	"  lake-chad: [NER, TCD]\n"
	"  reporting: [SECRETARIAT, IOM-ROMENA]\n";

static struct directory *dir;

#define N_ALERTS 8
static Xba__V1__Alert alerts[N_ALERTS];
static const char *acked[N_ALERTS];
static char *addressees[] = { (char *)"DZA", (char *)"SECRETARIAT", (char *)"IOM-ROMENA", (char *)"NER" };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const struct {
		const char *origin;
		int category, severity, tlp, status, msg_type;
		int emergency, n_addressees;
		const char *acked;
	} spec[N_ALERTS] = {
		{ "NER", 2, 4, 3, 1, 1, 0, 0, NULL },          /* smuggling, severe, amber */
		{ "TCD", 4, 3, 4, 1, 1, 0, 0, NULL },          /* health, amber+strict */
		{ "NER", 1, 5, 3, 2, 1, 1, 0, NULL },          /* emergency exercise */
		{ "LBY", 5, 1, 5, 1, 2, 0, 4, NULL },          /* search and rescue update, red, addressed */
		{ "MLI", 6, 2, 2, 4, 3, 0, 2, NULL },          /* population movement cancel, green, addressed */
		{ "DZA", 0, 0, 3, 1, 4, 0, 0, "NER" },         /* ack */
		{ "WHO-AFRO", 7, 0, 1, 5, 5, 0, 1, NULL },     /* observer, other, clear, draft error */
		{ "DZA", 0, 0, 5, 1, 4, 1, 0, "WHO-AFRO" },    /* ack marked emergency and red */
	};
	struct xba_error err;

	(void)argc;
	(void)argv;
	if ((dir = directory_load_buffer("fuzz-region.yaml", region_yaml, sizeof(region_yaml) - 1, &err)) == NULL) {
		fprintf(stderr, "fuzz_rules: fixed region refused: %s\n", err.msg);
		abort();
	}
	for (int i = 0; i < N_ALERTS; i++) {
		Xba__V1__Alert *a = &alerts[i];

		xba__v1__alert__init(a);
		a->origin = (char *)spec[i].origin;
		a->category = (Xba__V1__Category)spec[i].category;
		a->severity = (Xba__V1__Severity)spec[i].severity;
		a->tlp = (Xba__V1__Tlp)spec[i].tlp;
		a->status = (Xba__V1__Status)spec[i].status;
		a->msg_type = (Xba__V1__MsgType)spec[i].msg_type;
		a->emergency = spec[i].emergency;
		a->addressees = addressees;
		a->n_addressees = (size_t)spec[i].n_addressees;
		acked[i] = spec[i].acked;
	}
	return 0;
}

static void
check_route(const Xba__V1__Alert *a, const struct route *r)
{
	const struct dir_node *origin = directory_node(dir, a->origin);

	for (size_t i = 0; i < r->n_recipients; i++) {
		size_t n = r->recipients[i].node_index;

		if (n >= dir->n_nodes || (i > 0 && n <= r->recipients[i - 1].node_index) ||
		    r->recipients[i].rule == NULL || &dir->nodes[n] == origin || dir->nodes[n].role == NODE_ROLE_ADMIN)
			__builtin_trap();
		for (size_t j = 0; j < r->n_withheld; j++)
			if (r->withheld[j].node_index == n)
				__builtin_trap();
	}
	for (size_t j = 0; j < r->n_withheld; j++) {
		size_t n = r->withheld[j].node_index;

		if (n >= dir->n_nodes || (j > 0 && n <= r->withheld[j - 1].node_index) || r->withheld[j].rule == NULL ||
		    &dir->nodes[n] == origin)
			__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xba_error err;
	struct rules *rules = rules_load_buffer("fuzz-rules.yaml", (const char *)data, size, dir, &err);

	if (rules == NULL) {
		/* A refusal carries a reason; a content error carries its position. */
		if (err.code >= 0 || err.msg[0] == '\0')
			__builtin_trap();
		if (err.code == XBA_ECONFIG && strncmp(err.msg, "fuzz-rules.yaml:", 16) != 0)
			__builtin_trap();
		return 0;
	}
	if (strlen(rules_version(rules)) != RULES_VERSION_LEN)
		__builtin_trap();
	for (int i = 0; i < N_ALERTS; i++) {
		struct route r;
		int rc = rules_route(rules, dir, &alerts[i], acked[i], &r, &err);

		if (rc != 0)
			__builtin_trap();  /* every fixed alert is routable under any valid rules */
		check_route(&alerts[i], &r);
		route_clear(&r);
	}
	rules_free(rules);
	return 0;
}
