/*
 * cmd_keygen.c — `xba keygen --node ID --out DIR`: the first thing a national focal point runs.  Writes the node's
 * Ed25519 (message) and CURVE (transport) key pairs, then prints their fingerprints and the region.yaml entry the
 * secretariat needs; the private halves never leave DIR.  `--officer NAME` and `--lan` make the CURVE pairs of an
 * agent's LAN endpoint (an officer's, the endpoint's own), which sign nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "clock.h"
#include "encoding.h"
#include "keys.h"
#include "syntax.h"

static void
keygen_usage(FILE *out)
{
	fprintf(out,
	    "usage: xba keygen --node ID --out DIR [--name NAME] [--role member|observer|admin]\n"
	    "       xba keygen --officer NAME --out DIR\n"
	    "       xba keygen --lan --out DIR\n"
	    "\n"
	    "Generate node ID's key pairs into DIR (created 0700 if missing; existing keys are never overwritten):\n"
	    "  DIR/ID.sign.key   Ed25519 private key (PEM, mode 0600)   signs the node's alerts\n"
	    "  DIR/ID.sign.pub   Ed25519 public key (PEM)\n"
	    "  DIR/ID.curve.key  CURVE secret key (Z85, mode 0600)      authenticates the node's connection\n"
	    "  DIR/ID.curve.pub  CURVE public key (Z85)\n"
	    "and print the fingerprints and the entry to paste into region.yaml.\n"
	    "\n"
	    "  --node ID    node id: ISO 3166-1 alpha-3 for members (NER), else 2-32 of A-Z 0-9 - (WHO-AFRO)\n"
	    "  --out DIR    where to write the key files\n"
	    "  --name NAME  human name for the region.yaml entry (default: the id)\n"
	    "  --role ROLE  role for the region.yaml entry (default: member for ISO 3166 codes, else observer)\n"
	    "\n"
	    "For an agent's LAN endpoint, CURVE pairs only (nothing there signs alerts: the agent signs for officers):\n"
	    "  --officer NAME  on the officer's workstation: DIR/officer.curve.key (use with xba --officer-key) and\n"
	    "                  .pub, and the entry for `officers:` in the agent's agent.yaml (NAME: 1-64 bytes)\n"
	    "  --lan           on the agent's machine: DIR/lan.curve.key for agent.yaml's lan_curve_secret_key, and\n"
	    "                  DIR/lan.curve.pub for the officers (xba --agent-key)\n");
}

/* mkdir -p, each new directory 0700 (as --help says); errno set on failure. */
static int
make_dirs(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf)) {
		errno = len == 0 ? ENOENT : ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return -1;
		buf[i] = i < len ? '/' : '\0';
	}
	return 0;
}

/* An officer's name as agent.yaml takes it (agent_config.c), and printable in a YAML double-quoted scalar. */
static bool
officer_name_usable(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 64 || !syntax_utf8_valid(name, len) || strchr(name, '"') || strchr(name, '\\'))
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		if (syntax_control_len(p) != 0)
			return false;
	return true;
}

/* --officer NAME (officer != NULL) or --lan: a CURVE pair, and where each half goes. */
static int
keygen_curve_only(const char *officer, const char *out)
{
	const char *base = officer != NULL ? "officer" : "lan";
	struct curve_identity curve;
	struct xba_error err = { 0 };
	int out_len;

	if (officer != NULL && !officer_name_usable(officer))
		return cli_usage_error("keygen: --officer NAME must be 1-64 bytes of UTF-8 text without control "
				       "characters, '\"' or '\\' (the name agent.yaml will list)");
	if (make_dirs(out) != 0)
		return cli_usage_error("keygen: cannot create %s: %s", out, strerror(errno));
	if (keys_generate_curve(base, out, &curve, &err) != 0)
		return cli_usage_error("keygen: %s", err.msg);
	out_len = (int)strlen(out);
	while (out_len > 1 && out[out_len - 1] == '/')
		out_len--;
	if (officer != NULL) {
		printf("officer key for %s written to %.*s\n", officer, out_len, out);
		printf("  CURVE key  %.*s/officer.curve.key  (private, mode 0600: xba --officer-key this file)\n", out_len,
		    out);
		printf("             public %s\n", curve.public_z85);
		printf("\nadd this entry under `officers:` in the agent's agent.yaml and reload the agent (SIGHUP);\n"
		       "send it to your focal point: it holds no secret.\n\n");
		printf("  - name: \"%s\"\n", officer);
		printf("    curve_key: \"%s\"\n", curve.public_z85);
	} else {
		printf("LAN endpoint key written to %.*s\n", out_len, out);
		printf("  CURVE key  %.*s/lan.curve.key  (private, mode 0600)\n", out_len, out);
		printf("             public %s  (%.*s/lan.curve.pub: give it to the officers, for xba --agent-key)\n",
		    curve.public_z85, out_len, out);
		printf("\nin agent.yaml (with lan_listen and officers:):\n\n");
		printf("  lan_curve_secret_key: %.*s/lan.curve.key\n", out_len, out);
	}
	memset(&curve, 0, sizeof(curve));
	return CLI_EXIT_OK;
}

int
cmd_keygen(int argc, char **argv)
{
	static const struct option options[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "out", required_argument, NULL, 'o' },
		{ "name", required_argument, NULL, 'N' },
		{ "role", required_argument, NULL, 'r' },
		{ "officer", required_argument, NULL, 'O' },
		{ "lan", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *node = NULL, *out = NULL, *name = NULL, *role = NULL, *officer = NULL;
	bool lan = false;
	struct signer signer;
	struct curve_identity curve;
	struct xba_error err = { 0 };
	char fingerprint[64], public_b64[64], now_text[40];
	int opt, out_len;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'n': node = optarg; break;
		case 'o': out = optarg; break;
		case 'N': name = optarg; break;
		case 'r': role = optarg; break;
		case 'O': officer = optarg; break;
		case 'L': lan = true; break;
		case 'h': keygen_usage(stdout); return CLI_EXIT_OK;
		default:
			return cli_usage_error("keygen: unknown or incomplete option '%s' (xba keygen --help)",
			    argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("keygen: unexpected argument '%s' (xba keygen --help)", argv[optind]);
	if ((node != NULL) + (officer != NULL) + lan > 1)
		return cli_usage_error("keygen: give one of --node, --officer, --lan (xba keygen --help)");
	if (out == NULL)
		return cli_usage_error("keygen: --out DIR is required (xba keygen --help)");
	if (officer != NULL || lan) {
		if (name != NULL || role != NULL)
			return cli_usage_error("keygen: --name and --role are for a node's keys (--node), not %s",
			    lan ? "--lan" : "--officer");
		return keygen_curve_only(officer, out);
	}
	if (node == NULL)
		return cli_usage_error("keygen: --node ID is required (xba keygen --help)");
	if (!syntax_node_id_valid(node))
		return cli_usage_error("keygen: --node '%s' is not a node id (2-32 of A-Z 0-9 -, starting with a letter)",
		    node);
	if (role == NULL)
		role = syntax_iso3166_alpha3(node) ? "member" : "observer";
	if (strcmp(role, "member") != 0 && strcmp(role, "observer") != 0 && strcmp(role, "admin") != 0)
		return cli_usage_error("keygen: --role '%s' is not one of member, observer, admin", role);
	if (strcmp(role, "member") == 0 && !syntax_iso3166_alpha3(node))
		return cli_usage_error("keygen: --node '%s': a member's id must be an ISO 3166-1 alpha-3 code", node);
	if (name != NULL && (!syntax_utf8_valid(name, strlen(name)) || strlen(name) > 128 || strchr(name, '"')))
		return cli_usage_error("keygen: --name must be UTF-8 text of at most 128 bytes without '\"'");
	if (make_dirs(out) != 0)
		return cli_usage_error("keygen: cannot create %s: %s", out, strerror(errno));

	if (keys_generate(node, out, &signer, &curve, &err) != 0)
		return cli_usage_error("keygen: %s", err.msg);
	out_len = (int)strlen(out);

	keys_fingerprint(signer.key_id, fingerprint, sizeof(fingerprint));
	encoding_base64(signer.public_raw, XBA_ED25519_PUBLIC_LEN, public_b64);
	clock_format_rfc3339(clock_now_ms() / 1000 * 1000, now_text, sizeof(now_text));
	while (out_len > 1 && out[out_len - 1] == '/') /* "--out keys/": keys/NER.sign.key, not keys//NER.sign.key */
		out_len--;
	printf("keys for %s written to %.*s\n", node, out_len, out);
	printf("  signing key  %.*s/%s.sign.key  (private, mode 0600)\n", out_len, out, node);
	printf("               fingerprint %s\n", fingerprint);
	printf("  CURVE key    %.*s/%s.curve.key  (private, mode 0600)\n", out_len, out, node);
	printf("               public %s\n", curve.public_z85);
	printf("\nadd this entry under `nodes:` in region.yaml (send it to the secretariat; it holds no secret):\n\n");
	printf("  - id: %s\n", node);
	printf("    name: \"%s\"\n", name ? name : node);
	printf("    role: %s\n", role);
	printf("    curve_key: \"%s\"\n", curve.public_z85);
	if (strcmp(role, "admin") != 0) {
		printf("    signing_keys:\n");
		printf("      - public: \"%s\"   # %s\n", public_b64, fingerprint);
		printf("        valid_from: %s\n", now_text);
	}
	keys_signer_clear(&signer);
	memset(&curve, 0, sizeof(curve));
	return CLI_EXIT_OK;
}
