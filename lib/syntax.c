/*
 * syntax.c — validators for identifiers and text (see syntax.h).  Everything here runs on bytes that came from the
 * network, a YAML file or a command line, so nothing assumes a terminator beyond what the signature promises.
 */
#include "syntax.h"

#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"

bool
syntax_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned char c = *p;
		uint32_t cp;
		size_t n;

		if (c == 0)
			return false;
		if (c < 0x80) {
			p++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false; /* continuation byte, overlong lead (c0/c1) or above U+10FFFF (f5..ff) */
		}
		if ((size_t)(end - p) <= n)
			return false;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

size_t
syntax_control_len(const unsigned char *p)
{
	if (*p < 0x20 || *p == 0x7f)
		return *p != '\0';
	return p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f ? 2 : 0;
}

void
syntax_scrub_controls(char *s)
{
	if (s == NULL)
		return;
	for (unsigned char *p = (unsigned char *)s; *p != '\0';) {
		size_t n = syntax_control_len(p);

		if (n == 0) {
			p++;
			continue;
		}
		for (size_t i = 0; i < n; i++)
			*p++ = '?';
	}
}

bool
syntax_node_id_valid(const char *s)
{
	size_t len;

	if (s == NULL)
		return false;
	len = strlen(s);
	if (len < 2 || len > XBA_NODE_ID_MAX || s[0] < 'A' || s[0] > 'Z' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

/* ISO 3166-1 alpha-3 officially assigned codes, sorted for bsearch. */
static const char iso3166_alpha3[][4] = {
	"ABW", "AFG", "AGO", "AIA", "ALA", "ALB", "AND", "ARE", "ARG", "ARM", "ASM", "ATA", "ATF", "ATG", "AUS",
	"AUT", "AZE", "BDI", "BEL", "BEN", "BES", "BFA", "BGD", "BGR", "BHR", "BHS", "BIH", "BLM", "BLR", "BLZ",
	"BMU", "BOL", "BRA", "BRB", "BRN", "BTN", "BVT", "BWA", "CAF", "CAN", "CCK", "CHE", "CHL", "CHN", "CIV",
	"CMR", "COD", "COG", "COK", "COL", "COM", "CPV", "CRI", "CUB", "CUW", "CXR", "CYM", "CYP", "CZE", "DEU",
	"DJI", "DMA", "DNK", "DOM", "DZA", "ECU", "EGY", "ERI", "ESH", "ESP", "EST", "ETH", "FIN", "FJI", "FLK",
	"FRA", "FRO", "FSM", "GAB", "GBR", "GEO", "GGY", "GHA", "GIB", "GIN", "GLP", "GMB", "GNB", "GNQ", "GRC",
	"GRD", "GRL", "GTM", "GUF", "GUM", "GUY", "HKG", "HMD", "HND", "HRV", "HTI", "HUN", "IDN", "IMN", "IND",
	"IOT", "IRL", "IRN", "IRQ", "ISL", "ISR", "ITA", "JAM", "JEY", "JOR", "JPN", "KAZ", "KEN", "KGZ", "KHM",
	"KIR", "KNA", "KOR", "KWT", "LAO", "LBN", "LBR", "LBY", "LCA", "LIE", "LKA", "LSO", "LTU", "LUX", "LVA",
	"MAC", "MAF", "MAR", "MCO", "MDA", "MDG", "MDV", "MEX", "MHL", "MKD", "MLI", "MLT", "MMR", "MNE", "MNG",
	"MNP", "MOZ", "MRT", "MSR", "MTQ", "MUS", "MWI", "MYS", "MYT", "NAM", "NCL", "NER", "NFK", "NGA", "NIC",
	"NIU", "NLD", "NOR", "NPL", "NRU", "NZL", "OMN", "PAK", "PAN", "PCN", "PER", "PHL", "PLW", "PNG", "POL",
	"PRI", "PRK", "PRT", "PRY", "PSE", "PYF", "QAT", "REU", "ROU", "RUS", "RWA", "SAU", "SDN", "SEN", "SGP",
	"SGS", "SHN", "SJM", "SLB", "SLE", "SLV", "SMR", "SOM", "SPM", "SRB", "SSD", "STP", "SUR", "SVK", "SVN",
	"SWE", "SWZ", "SXM", "SYC", "SYR", "TCA", "TCD", "TGO", "THA", "TJK", "TKL", "TKM", "TLS", "TON", "TTO",
	"TUN", "TUR", "TUV", "TWN", "TZA", "UGA", "UKR", "UMI", "URY", "USA", "UZB", "VAT", "VCT", "VEN", "VGB",
	"VIR", "VNM", "VUT", "WLF", "WSM", "YEM", "ZAF", "ZMB", "ZWE",
};

static int
compare_code(const void *key, const void *elem)
{
	return strcmp(key, elem);
}

bool
syntax_iso3166_alpha3(const char *s)
{
	if (s == NULL || strlen(s) != 3)
		return false;
	return bsearch(s, iso3166_alpha3, sizeof(iso3166_alpha3) / sizeof(iso3166_alpha3[0]),
	    sizeof(iso3166_alpha3[0]), compare_code) != NULL;
}

static bool
is_hex_lower(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool
syntax_uuid_valid(const char *s)
{
	if (s == NULL || strlen(s) != XBA_UUID_LEN)
		return false;
	for (size_t i = 0; i < XBA_UUID_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !is_hex_lower(s[i]))
			return false;
	}
	return true;
}

int
syntax_uuid_v7(int64_t unix_ms, char out[XBA_UUID_LEN + 1])
{
	unsigned char b[16];
	uint64_t ms = unix_ms < 0 ? 0 : (uint64_t)unix_ms & 0xffffffffffffu; /* 48 bits: until the year 10889 */

	if (RAND_bytes(b + 6, sizeof(b) - 6) != 1)
		return XBA_ECRYPTO;
	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(ms >> (40 - 8 * i));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x70); /* version 7 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 9562 variant */
	snprintf(out, XBA_UUID_LEN + 1,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4],
	    b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

int
syntax_uuid_new(char out[XBA_UUID_LEN + 1])
{
	return syntax_uuid_v7(clock_now_ms(), out);
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool
syntax_language_tag_valid(const char *s)
{
	size_t len, i = 0, sub;

	if (s == NULL || (len = strlen(s)) == 0 || len > 35)
		return false;
	for (sub = 0; i < len && is_alpha(s[i]); i++)
		sub++;
	if (sub < 2 || sub > 3)
		return false;
	while (i < len) {
		if (s[i++] != '-')
			return false;
		for (sub = 0; i < len && (is_alpha(s[i]) || (s[i] >= '0' && s[i] <= '9')); i++)
			sub++;
		if (sub < 2 || sub > 8)
			return false;
	}
	return true;
}
