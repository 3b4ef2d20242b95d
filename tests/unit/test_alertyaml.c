/*
 * test_alertyaml.c — officers' alert files (lib/alertyaml.c): a complete three-language alert loads to exactly
 * the expected fields and then passes alert_validate(); every refusal names file:line:col and the key path; the
 * limits (size, depth) and libyaml's own refusals hold; failed loads free what they built (run under ASan).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert.h"
#include "alertyaml.h"
#include "check.h"
#include "clock.h"

/* The example of docs/alert-yaml.md, kept identical so the page shows a file that loads. */
static const char full_alert[] =
    "# Niger's focal point reports a smuggling convoy at the Assamaka crossing (docs/alert-yaml.md).\n"
    "id: 3f2b8c1e-0d4a-4e8b-9c51-2a7d6e0f9b13       # optional: left out, the agent gives a fresh id\n"
    "origin: NER                                    # optional: left out, the agent fills its own node id\n"
    "author: \"Cdt. Moussa Issoufou, DGPN Agadez\"    # optional: left out, xba send --author or your login name\n"
    "sent: 2026-11-25T16:40:00Z                     # optional: left out, the time the agent signs it\n"
    "status: actual                                 # default actual\n"
    "msg_type: alert                                # default alert\n"
    "references: [0b7d8a52-5c1e-4f3a-8d2b-6e9f1a4c7d30]\n"
    "incident: NE-AGZ-2026-114\n"
    "category: smuggling\n"
    "severity: severe\n"
    "urgency: immediate\n"
    "certainty: observed\n"
    "tlp: amber\n"
    "to: [DZA, LBY]                                 # addressees: only these nodes, among those the rules name\n"
    "expires: 6h                                    # six hours after sent\n"
    "emergency: false\n"
    "note: \"Suivi par le poste d'Assamaka\"\n"
    "info:                                          # one block per language\n"
    "  - language: ar\n"
    "    event: تهريب مهاجرين\n"
    "    headline: قافلة تهريب مهاجرين تعبر الحدود قرب أساماكا\n"
    "    description: رُصدت ثلاث شاحنات صغيرة تقل نحو 45 شخصاً متجهة شمالاً نحو عين قزام.\n"
    "    instruction: يرجى تعزيز الدوريات على المسار وإبلاغ نقطة الاتصال الوطنية.\n"
    "  - language: fr\n"
    "    event: Trafic de migrants\n"
    "    headline: Convoi de passeurs franchissant la frontière près d'Assamaka\n"
    "    description: >-\n"
    "      Trois pick-up transportant environ 45 personnes observés en direction\n"
    "      du nord vers In Guezzam.\n"
    "    instruction: Renforcer les patrouilles sur l'axe et informer le point focal national.\n"
    "  - language: en\n"
    "    event: Migrant smuggling\n"
    "    headline: Smuggling convoy crossing the border near Assamaka\n"
    "    description: Three pick-up trucks carrying about 45 people seen heading north towards In Guezzam.\n"
    "    instruction: Reinforce patrols on the route and inform the national focal point.\n"
    "areas:\n"
    "  - description: Assamaka border crossing and the track north to In Guezzam\n"
    "    polygons:                                  # each a closed ring of [lat, lon] points\n"
    "      - [[19.35, 5.75], [19.60, 5.75], [19.60, 6.05], [19.35, 6.05], [19.35, 5.75]]\n"
    "    circles:\n"
    "      - {lat: 19.45, lon: 5.80, radius_km: 25}\n"
    "    geocodes:\n"
    "      - {name: border-post, value: NE-ASSAMAKA}\n"
    "      - {name: region, value: NE-AGADEZ}\n"
    "parameters:\n"
    "  people_count: 45\n"
    "  vehicles: \"3 pick-up trucks\"\n"
    "  route: Agadez - Assamaka - In Guezzam\n";

static Xba__V1__Alert *
load(const char *text, struct xba_error *err)
{
	return alertyaml_load_buffer("t.yaml", text, strlen(text), err);
}

/* text must be refused with code, and the message must contain each needle (position, path, explanation). */
static void
refused(struct check_state *st, const char *text, int code, const char *where, const char *what)
{
	struct xba_error err;
	Xba__V1__Alert *a = load(text, &err);

	CHECK(st, a == NULL);
	alertyaml_free(a);
	CHECK_CODE(st, err.code, code);
	CHECK_CONTAINS(st, err.msg, where);
	if (what != NULL)
		CHECK_CONTAINS(st, err.msg, what);
	CHECK(st, strchr(err.msg, '\n') == NULL);
}

static void
test_full_alert(struct check_state *st)
{
	struct xba_error err;
	Xba__V1__Alert *a = load(full_alert, &err);
	int64_t sent;

	CHECK(st, a != NULL);
	if (a == NULL) {
		fprintf(stderr, "%s\n", err.msg);
		return;
	}
	CHECK(st, clock_parse_rfc3339("2026-11-25T16:40:00Z", &sent) == 0);
	CHECK(st, strcmp(a->id, "3f2b8c1e-0d4a-4e8b-9c51-2a7d6e0f9b13") == 0);
	CHECK(st, strcmp(a->origin, "NER") == 0);
	CHECK(st, strcmp(a->author, "Cdt. Moussa Issoufou, DGPN Agadez") == 0);
	CHECK(st, a->sent_ms == sent);
	CHECK(st, a->status == XBA__V1__STATUS__STATUS_ACTUAL);
	CHECK(st, a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ALERT);
	CHECK(st, a->n_references == 1 && strcmp(a->references[0], "0b7d8a52-5c1e-4f3a-8d2b-6e9f1a4c7d30") == 0);
	CHECK(st, strcmp(a->incident, "NE-AGZ-2026-114") == 0);
	CHECK(st, a->category == XBA__V1__CATEGORY__CATEGORY_SMUGGLING);
	CHECK(st, a->severity == XBA__V1__SEVERITY__SEVERITY_SEVERE);
	CHECK(st, a->urgency == XBA__V1__URGENCY__URGENCY_IMMEDIATE);
	CHECK(st, a->certainty == XBA__V1__CERTAINTY__CERTAINTY_OBSERVED);
	CHECK(st, a->tlp == XBA__V1__TLP__TLP_AMBER);
	CHECK(st, a->n_addressees == 2 && strcmp(a->addressees[0], "DZA") == 0 && strcmp(a->addressees[1], "LBY") == 0);
	CHECK(st, a->expires_ms == sent + 6 * 3600 * INT64_C(1000));
	CHECK(st, !a->emergency);
	CHECK(st, strcmp(a->note, "Suivi par le poste d'Assamaka") == 0);

	CHECK(st, a->n_info == 3);
	if (a->n_info == 3) {
		CHECK(st, strcmp(a->info[0]->language, "ar") == 0);
		CHECK(st, strcmp(a->info[0]->event, "تهريب مهاجرين") == 0);
		CHECK(st, strcmp(a->info[0]->headline, "قافلة تهريب مهاجرين تعبر الحدود قرب أساماكا") == 0);
		CHECK(st, strcmp(a->info[0]->instruction,
		    "يرجى تعزيز الدوريات على المسار وإبلاغ نقطة الاتصال الوطنية.") == 0);
		CHECK(st, strcmp(a->info[1]->language, "fr") == 0);
		CHECK(st, strcmp(a->info[1]->description, "Trois pick-up transportant environ 45 personnes observés en "
		    "direction du nord vers In Guezzam.") == 0);
		CHECK(st, strcmp(a->info[2]->language, "en") == 0);
		CHECK(st, strcmp(a->info[2]->event, "Migrant smuggling") == 0);
		CHECK(st, strcmp(a->info[2]->headline, "Smuggling convoy crossing the border near Assamaka") == 0);
	}

	CHECK(st, a->n_areas == 1);
	if (a->n_areas == 1) {
		const Xba__V1__Area *ar = a->areas[0];

		CHECK(st, strcmp(ar->description, "Assamaka border crossing and the track north to In Guezzam") == 0);
		CHECK(st, ar->n_polygons == 1 && ar->polygons[0]->n_points == 5);
		if (ar->n_polygons == 1 && ar->polygons[0]->n_points == 5) {
			CHECK(st, ar->polygons[0]->points[0]->lat == 19.35 && ar->polygons[0]->points[0]->lon == 5.75);
			CHECK(st, ar->polygons[0]->points[2]->lat == 19.60 && ar->polygons[0]->points[2]->lon == 6.05);
			CHECK(st, ar->polygons[0]->points[4]->lat == 19.35 && ar->polygons[0]->points[4]->lon == 5.75);
		}
		CHECK(st, ar->n_circles == 1);
		if (ar->n_circles == 1)
			CHECK(st, ar->circles[0]->center->lat == 19.45 && ar->circles[0]->center->lon == 5.80 &&
			    ar->circles[0]->radius_km == 25.0);
		CHECK(st, ar->n_geocodes == 2);
		if (ar->n_geocodes == 2) {
			CHECK(st, strcmp(ar->geocodes[0]->name, "border-post") == 0);
			CHECK(st, strcmp(ar->geocodes[0]->value, "NE-ASSAMAKA") == 0);
			CHECK(st, strcmp(ar->geocodes[1]->value, "NE-AGADEZ") == 0);
		}
	}

	CHECK(st, a->n_parameters == 3);
	if (a->n_parameters == 3) {
		CHECK(st, strcmp(a->parameters[0]->name, "people_count") == 0);
		CHECK(st, strcmp(a->parameters[0]->value, "45") == 0);
		CHECK(st, strcmp(a->parameters[1]->name, "vehicles") == 0);
		CHECK(st, strcmp(a->parameters[1]->value, "3 pick-up trucks") == 0);
		CHECK(st, strcmp(a->parameters[2]->value, "Agadez - Assamaka - In Guezzam") == 0);
	}

	/* Complete as written, so it is a valid alert, and it survives the wire. */
	CHECK_CODE(st, alert_validate(a, &err), 0);
	{
		uint8_t *bytes = NULL;
		size_t len = 0;
		Xba__V1__Alert *back;

		CHECK_CODE(st, alert_encode(a, &bytes, &len, &err), 0);
		back = alert_decode(bytes, len, &err);
		CHECK(st, back != NULL && back->n_info == 3 && back->expires_ms == a->expires_ms);
		alert_free(back);
		free(bytes);
	}
	alertyaml_free(a);
}

/* What the agent fills may be absent; defaults apply; a duration without `sent` counts from now. */
static void
test_minimal_and_defaults(struct check_state *st)
{
	struct xba_error err;
	int64_t before = clock_now_ms(), after;
	Xba__V1__Alert *a = load("tlp: green\ncategory: health\nexpires: 90m\n", &err);

	after = clock_now_ms();
	CHECK(st, a != NULL);
	if (a == NULL)
		return;
	CHECK(st, a->id[0] == '\0' && a->origin[0] == '\0' && a->author[0] == '\0' && a->sent_ms == 0);
	CHECK(st, a->status == XBA__V1__STATUS__STATUS_ACTUAL);
	CHECK(st, a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_ALERT);
	CHECK(st, a->tlp == XBA__V1__TLP__TLP_GREEN);
	CHECK(st, a->expires_ms >= before + 90 * 60000 && a->expires_ms <= after + 90 * 60000);
	CHECK(st, a->n_info == 0 && a->n_areas == 0 && a->n_parameters == 0 && a->n_addressees == 0);
	/* Incomplete on purpose: the caller fills and validates. */
	CHECK(st, alert_validate(a, &err) != 0);

	/* What the agent does: fill, then validate. */
	CHECK_CODE(st, alertyaml_set_text(&a->id, "3f2b8c1e-0d4a-4e8b-9c51-2a7d6e0f9b13", &err), 0);
	CHECK_CODE(st, alertyaml_set_text(&a->origin, "TCD", &err), 0);
	CHECK_CODE(st, alertyaml_set_text(&a->origin, "NER", &err), 0);  /* replacing frees the old value */
	CHECK(st, strcmp(a->origin, "NER") == 0);
	alertyaml_free(a);
	alertyaml_free(NULL);
}

static void
test_spellings(struct check_state *st)
{
	struct xba_error err;
	Xba__V1__Alert *a;

	/* TLP as written on documents, addressees under their long name, parameters as a list, a date expiry,
	 * a compound duration. */
	a = load("tlp: TLP:AMBER+STRICT\nstatus: Exercise\nmsg_type: cancel\naddressees: [TCD]\n"
		 "sent: 2026-11-25T16:40:00+01:00\nexpires: 1d12h\nemergency: yes\n"
		 "parameters:\n  - {name: route, value: Agadez - Arlit}\n  - {name: vessel, value: \"\"}\n", &err);
	CHECK(st, a != NULL);
	if (a != NULL) {
		CHECK(st, a->tlp == XBA__V1__TLP__TLP_AMBER_STRICT);
		CHECK(st, a->status == XBA__V1__STATUS__STATUS_EXERCISE);
		CHECK(st, a->msg_type == XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL);
		CHECK(st, a->n_addressees == 1 && strcmp(a->addressees[0], "TCD") == 0);
		CHECK(st, a->expires_ms - a->sent_ms == 36 * 3600 * INT64_C(1000));
		CHECK(st, a->emergency);
		CHECK(st, a->n_parameters == 2 && strcmp(a->parameters[0]->name, "route") == 0 &&
		    strcmp(a->parameters[1]->value, "") == 0);
		alertyaml_free(a);
	} else {
		fprintf(stderr, "%s\n", err.msg);
	}
	a = load("tlp: red\nexpires: 2036-12-01\n", &err);
	CHECK(st, a != NULL);
	if (a != NULL) {
		int64_t t;

		CHECK(st, clock_parse_rfc3339("2036-12-01T00:00:00Z", &t) == 0 && a->expires_ms == t);
		alertyaml_free(a);
	}
}

static void
test_unknown_keys(struct check_state *st)
{
	refused(st, "tlp: amber\ncolour: red\n", XBA_ECONFIG, "t.yaml:2:1: unknown key 'colour'",
	    "expected one of: id, origin, author, sent");
	refused(st, "info:\n  - language: en\n    headline: x\n    titre: y\n", XBA_ECONFIG,
	    "t.yaml:4:5: info[0]: unknown key 'titre'", "language, event, headline");
	refused(st, "areas:\n  - description: x\n    circles:\n      - {lat: 1, lon: 2, radius: 3}\n", XBA_ECONFIG,
	    "t.yaml:4:26: areas[0].circles[0]: unknown key 'radius'", "radius_km");
	refused(st, "areas:\n  - description: x\n    geocodes:\n      - {name: a, value: b, kind: c}\n", XBA_ECONFIG,
	    "t.yaml:4:29: areas[0].geocodes[0]: unknown key 'kind'", NULL);
}

static void
test_bad_enums(struct check_state *st)
{
	refused(st, "tlp: amber\ncategory: piracy\n", XBA_ECONFIG, "t.yaml:2:11: category: unknown category 'piracy'",
	    "(expected one of: border-incident, smuggling, trafficking, health, search-and-rescue, "
	    "population-movement, other)");
	refused(st, "severity: high\n", XBA_ECONFIG, "t.yaml:1:11: severity: unknown severity 'high'",
	    "unknown, minor, moderate, severe, extreme");
	refused(st, "tlp: orange\n", XBA_ECONFIG, "t.yaml:1:6: tlp: unknown tlp 'orange'",
	    "clear, green, amber, amber+strict, red");
	refused(st, "msg_type: alarm\n", XBA_ECONFIG, "t.yaml:1:11: msg_type:", "alert, update, cancel, ack, error");
	refused(st, "status: [actual]\n", XBA_ECONFIG, "t.yaml:1:9: status:", "expected text, found a list");
	refused(st, "urgency: unspecified\n", XBA_ECONFIG, "t.yaml:1:10: urgency: unknown urgency", NULL);
	refused(st, "certainty:\n", XBA_ECONFIG, "t.yaml:1:", "certainty: expected text, found nothing");
}

static void
test_bad_times(struct check_state *st)
{
	refused(st, "sent: yesterday\n", XBA_ECONFIG, "t.yaml:1:7: sent:", "expected an RFC 3339 date-time");
	refused(st, "sent: 2026-13-01T00:00:00Z\n", XBA_ECONFIG, "t.yaml:1:7: sent:", "RFC 3339");
	refused(st, "sent: 1969-12-31T00:00:00Z\n", XBA_ECONFIG, "t.yaml:1:7: sent:", "after 1970");
	refused(st, "expires: 6x\n", XBA_ECONFIG, "t.yaml:1:10: expires:", "or a duration such as 90m, 6h or 2d");
	refused(st, "expires: tomorrow\n", XBA_ECONFIG, "t.yaml:1:10: expires:", "RFC 3339");
	refused(st, "sent: 2026-11-25T10:00:00Z\nexpires: 2026-11-25T09:00:00Z\n", XBA_ECONFIG, "t.yaml:2:10: expires: "
	    "2026-11-25T09:00:00Z is not after the alert's sent time (2026-11-25T10:00:00Z)", NULL);
	refused(st, "expires: 2020-01-01T00:00:00Z\n", XBA_ECONFIG, "t.yaml:1:10: expires:",
	    "is not after the alert's time of loading");
	refused(st, "expires: 0h\n", XBA_ECONFIG, "t.yaml:1:10: expires: duration '0h' must be more than zero", NULL);
	refused(st, "expires: 3651d\n", XBA_ECONFIG, "t.yaml:1:10: expires:", "at most 3650d");
	refused(st, "expires: 99999999999999h\n", XBA_ECONFIG, "t.yaml:1:10: expires:", "at most 3650d");
	refused(st, "expires: 6h30\n", XBA_ECONFIG, "t.yaml:1:10: expires:", "duration");
	refused(st, "expires: -6h\n", XBA_ECONFIG, "t.yaml:1:10: expires:", "duration");
	refused(st, "expires: h\n", XBA_ECONFIG, "t.yaml:1:10: expires:", "duration");
}

static void
test_bad_geometry(struct check_state *st)
{
	refused(st, "areas:\n  - description: x\n    polygons:\n      - [[1, 2], [3, 4], [5, 6, 7], [1, 2]]\n",
	    XBA_ECONFIG, "t.yaml:4:26: areas[0].polygons[0][2]: expected a [lat, lon] pair, found a list of 3 values",
	    NULL);
	refused(st, "areas:\n  - description: x\n    polygons:\n      - [[1, 2], 3, [5, 6], [1, 2]]\n", XBA_ECONFIG,
	    "t.yaml:4:18: areas[0].polygons[0][1]: expected a [lat, lon] pair, found a single value", NULL);
	refused(st, "areas:\n  - description: x\n    polygons:\n      - [[1, 2], {lat: 3, lon: 4}, [5, 6], [1, 2]]\n",
	    XBA_ECONFIG, "t.yaml:4:18: areas[0].polygons[0][1]: expected a [lat, lon] pair, found a map", NULL);
	refused(st, "areas:\n  - description: x\n    polygons:\n      - [[1, 2], [3, 4], [5, 6], [1, 3]]\n",
	    XBA_ECONFIG, "t.yaml:4:34: areas[0].polygons[0][3]: polygon not closed", "[1, 2]");
	refused(st, "areas:\n  - description: x\n    polygons: [[1, 2], [3, 4], [5, 6], [1, 2]]\n", XBA_ECONFIG,
	    "t.yaml:3:16: areas[0].polygons[0]: expected a polygon (a list of [lat, lon] points), found a list of 2 "
	    "values: polygons is a list of polygons", "- [[lat, lon], [lat, lon], ...]");
	refused(st, "areas:\n  - description: x\n    polygons:\n      - [1, 2]\n      - [3, 4]\n", XBA_ECONFIG,
	    "t.yaml:4:9: areas[0].polygons[0]: expected a polygon", NULL);
	refused(st, "areas:\n  - description: x\n    polygons:\n      - [[1, 2], [3, 4], [1, 2]]\n", XBA_ECONFIG,
	    "t.yaml:4:9: areas[0].polygons[0]: a polygon needs at least 4", NULL);
	refused(st, "areas:\n  - description: x\n    polygons:\n      - [[91, 2], [3, 4], [5, 6], [91, 2]]\n",
	    XBA_ECONFIG, "t.yaml:4:11: areas[0].polygons[0][0][0]:", "between -90 and 90");
	refused(st, "areas:\n  - description: x\n    polygons:\n      - [[1, 181], [3, 4], [5, 6], [1, 181]]\n",
	    XBA_ECONFIG, "t.yaml:4:14: areas[0].polygons[0][0][1]:", "between -180 and 180");
	refused(st, "areas:\n  - description: x\n    polygons:\n      - [[1, .nan], [3, 4], [5, 6], [1, 2]]\n",
	    XBA_ECONFIG, "areas[0].polygons[0][0][1]: expected a number", NULL);
	refused(st, "areas:\n  - description: x\n    circles:\n      - {lat: 1, lon: 2, radius_km: 0}\n", XBA_ECONFIG,
	    "t.yaml:4:37: areas[0].circles[0].radius_km: must be more than 0", NULL);
	refused(st, "areas:\n  - description: x\n    circles:\n      - {lat: 1, lon: 2, radius_km: 5001}\n",
	    XBA_ECONFIG, "areas[0].circles[0].radius_km:", "between 0 and 5000");
	refused(st, "areas:\n  - description: x\n    circles:\n      - {lat: 1, lon: 2}\n", XBA_ECONFIG,
	    "t.yaml:4:9: areas[0].circles[0]: missing required key 'radius_km'", NULL);
	refused(st, "areas:\n  - polygons: []\n", XBA_ECONFIG,
	    "t.yaml:2:5: areas[0]: missing required key 'description'", NULL);
	refused(st, "areas:\n  - description: x\n    geocodes:\n      - {name: border-post}\n", XBA_ECONFIG,
	    "t.yaml:4:9: areas[0].geocodes[0]: missing required key 'value'", NULL);
}

static void
test_lists_required(struct check_state *st)
{
	refused(st, "info:\n  language: en\n  headline: x\n", XBA_ECONFIG, "t.yaml:2:3: info: expected a list",
	    "found a map");
	refused(st, "to: DZA\n", XBA_ECONFIG, "t.yaml:1:5: to: expected a list", NULL);
	refused(st, "to: []\n", XBA_ECONFIG, "t.yaml:1:5: to: an empty list addresses nobody", "leave 'to' out");
	refused(st, "addressees: []\n", XBA_ECONFIG, "t.yaml:1:13: addressees: an empty list addresses nobody", NULL);
	refused(st, "references: 0b7d8a52-5c1e-4f3a-8d2b-6e9f1a4c7d30\n", XBA_ECONFIG, "t.yaml:1:13: references:",
	    "expected a list");
	refused(st, "areas:\n  - description: x\n    polygons: [1, 2]\n", XBA_ECONFIG,
	    "t.yaml:3:16: areas[0].polygons[0]: expected a list", NULL);
	refused(st, "areas: {description: x}\n", XBA_ECONFIG, "t.yaml:1:8: areas: expected a list", NULL);
	refused(st, "parameters: 45\n", XBA_ECONFIG, "t.yaml:1:13: parameters:", "or a list of {name, value}");
	refused(st, "info: [en]\n", XBA_ECONFIG, "t.yaml:1:8: info[0]: expected a map", NULL);
	refused(st, "- tlp: amber\n", XBA_ECONFIG, "t.yaml:1:1: expected a map", NULL);
}

static void
test_item_checks(struct check_state *st)
{
	refused(st, "info:\n  - language: en\n    event: x\n", XBA_ECONFIG,
	    "t.yaml:2:5: info[0]: missing required key 'headline'", NULL);
	refused(st, "info:\n  - headline: x\n", XBA_ECONFIG, "t.yaml:2:5: info[0]: missing required key 'language'",
	    NULL);
	refused(st, "info:\n  - {language: english, headline: x}\n", XBA_ECONFIG,
	    "t.yaml:2:16: info[0].language: 'english' is not a language tag", NULL);
	refused(st, "info:\n  - {language: fr, headline: x}\n  - {language: FR, headline: y}\n", XBA_ECONFIG,
	    "t.yaml:3:16: info[1].language: language 'FR' already has a block at info[0]", NULL);
	refused(st, "info:\n  - {language: fr, headline: \"\"}\n", XBA_ECONFIG,
	    "t.yaml:2:30: info[0].headline: must not be empty", NULL);
	refused(st, "to: [DZA, ner]\n", XBA_ECONFIG, "t.yaml:1:11: to[1]: 'ner' is not a node id", NULL);
	refused(st, "to: [DZA, LBY, DZA]\n", XBA_ECONFIG, "t.yaml:1:16: to[2]: DZA is already addressed at to[0]",
	    NULL);
	refused(st, "to: [DZA]\naddressees: [LBY]\n", XBA_ECONFIG, "t.yaml:2:13: addressees:", "only one of them");
	refused(st, "origin: niger\n", XBA_ECONFIG, "t.yaml:1:9: origin: 'niger' is not a node id", NULL);
	refused(st, "id: 3F2B8C1E-0D4A-4E8B-9C51-2A7D6E0F9B13\n", XBA_ECONFIG, "t.yaml:1:5: id:", "lower-case UUID");
	refused(st, "references: [abc]\n", XBA_ECONFIG, "t.yaml:1:14: references[0]: 'abc' is not an alert id", NULL);
	refused(st, "emergency: \"true\"\n", XBA_ECONFIG, "t.yaml:1:12: emergency:", "without quotes");
	refused(st, "parameters:\n  - {name: a, value: 1}\n  - {name: a, value: 2}\n", XBA_ECONFIG,
	    "t.yaml:3:12: parameters[1].name: parameter 'a' is already given at parameters[0]", NULL);
	refused(st, "parameters:\n  people_count:\n", XBA_ECONFIG, "t.yaml:2:", "parameters.people_count:");
	refused(st, "parameters:\n  - {name: a}\n", XBA_ECONFIG,
	    "t.yaml:2:5: parameters[0]: missing required key 'value'", NULL);
}

/* Free text written plain and followed by " #" on its line: YAML cut it there ("Convoi #3 repéré" was sent as
 * "Convoi"), so it is refused; quoted it is whole, a comment after the quotes is a comment, and ids and enums keep
 * their comments. */
static void
test_text_cut_by_comment(struct check_state *st)
{
	struct xba_error err;
	Xba__V1__Alert *a;

	refused(st, "info:\n  - language: fr\n    headline: Convoi #3 repéré à Assamaka #urgent\n", XBA_ECONFIG,
	    "t.yaml:3:15: info[0].headline:", "the text stops before ' #'");
	refused(st, "parameters:\n  plate: NE-AG #4471\n", XBA_ECONFIG, "t.yaml:2:10: parameters.plate:", "in quotes");
	refused(st, "note: Évacuation à Agadès #2\n", XBA_ECONFIG, "t.yaml:1:7: note:", "' #'");
	/* Saved by Notepad: a byte-order mark and CR LF line ends. */
	refused(st, "\xef\xbb\xbfinfo:\r\n  - language: fr\r\n    headline: Convoi   #x\r\n", XBA_ECONFIG,
	    "info[0].headline:", "' #'");
	/* Lines that libyaml ends with U+2028, U+2029 or U+0085 inside plain text: the check keeps its place after
	 * them (a comment on the next line is a comment; the cut headline below them is still seen). */
	a = load("note: un\xe2\x80\xa8" "  deux\xc2\x85" "  trois\xe2\x80\xa9" "  quatre\n# un commentaire\n"
		 "category: smuggling  # R1\n",
	    &err);
	CHECK(st, a != NULL);
	alertyaml_free(a);
	refused(st, "info:\n  - language: fr\n    description: un\xe2\x80\xa8" "      deux\xc2\x85" "      trois\n"
	    "    headline: Convoi #3\n",
	    XBA_ECONFIG, "info[0].headline:", "' #'");
	/* The byte-order mark is no content: line 1's keys are read, and its columns are the officer's. */
	refused(st, "\xef\xbb\xbf" "category: smugling\n", XBA_ECONFIG, "t.yaml:1:11: category: unknown category", NULL);
	a = load("\xef\xbb\xbf" "category: smuggling\r\n", &err);
	CHECK(st, a != NULL && a->category == XBA__V1__CATEGORY__CATEGORY_SMUGGLING);
	alertyaml_free(a);
	a = load("origin: NER   # Niger\ncategory: smuggling  # R1\ninfo:\n  - language: fr\n"
		 "    headline: \"Convoi #3 repéré\"  # a comment after the quotes\n    description: Sans dièse\n", &err);
	CHECK(st, a != NULL);
	if (a != NULL) {
		CHECK_STR(st, a->origin, "NER");
		CHECK_STR(st, a->info[0]->headline, "Convoi #3 repéré");
		CHECK_STR(st, a->info[0]->description, "Sans dièse");
	}
	alertyaml_free(a);
}

/* Lengths and counts from alert.h are refused at the value, with its position. */
static void
test_limits(struct check_state *st)
{
	char *text = malloc(64 * 1024);
	size_t used;

	if (text == NULL)
		return;
	used = (size_t)sprintf(text, "info:\n  - language: en\n    headline: ");
	memset(text + used, 'x', ALERT_HEADLINE_MAX + 1);
	strcpy(text + used + ALERT_HEADLINE_MAX + 1, "\n");
	refused(st, text, XBA_ECONFIG, "t.yaml:3:15: info[0].headline: too long (161 bytes, at most 160)", NULL);

	used = (size_t)sprintf(text, "info:\n");
	for (int i = 0; i < ALERT_MAX_INFO + 1; i++)
		used += (size_t)sprintf(text + used, "  - {language: l%c, headline: x}\n", 'a' + i);
	refused(st, text, XBA_ECONFIG, "t.yaml:2:3: info: too many info blocks (9, at most 8)", NULL);

	used = (size_t)sprintf(text, "parameters:\n");
	for (int i = 0; i < ALERT_MAX_PARAMS + 1; i++)
		used += (size_t)sprintf(text + used, "  p%d: %d\n", i, i);
	refused(st, text, XBA_ECONFIG, "t.yaml:2:3: parameters: too many parameters (33, at most 32)", NULL);
	free(text);
}

/* Shapes of the whole file, and what the YAML layer refuses with the same file:line:col form. */
static void
test_yaml_refusals(struct check_state *st)
{
	char deep[256];
	size_t n = 0;

	refused(st, "", XBA_ECONFIG, "t.yaml:1:1: the file is empty", NULL);
	refused(st, "# nothing\n", XBA_ECONFIG, "t.yaml:1:1: the file is empty", NULL);
	refused(st, "tlp: amber\ntlp: red\n", XBA_ECONFIG, "t.yaml:2:1: duplicate key 'tlp'", NULL);
	refused(st, "tlp: &t amber\n", XBA_ECONFIG, "t.yaml:1:6:", "anchors");
	refused(st, "tlp: amber\n---\ntlp: red\n", XBA_ECONFIG, "t.yaml:2:1:", "more than one YAML document");
	refused(st, "info:\n\t- language: en\n", XBA_ECONFIG, "t.yaml:2:", "tab");

	/* Invalid UTF-8: libyaml's reader refuses it before any value is read. */
	refused(st, "info:\n  - {language: en, headline: \"caf\xc3\x28\"}\n", XBA_ECONFIG, "t.yaml:2:34:",
	    "byte 0xC3 here does not start a complete character");
	refused(st, "note: \xff\xfe\n", XBA_ECONFIG, "t.yaml:1:7:", "not valid UTF-8: byte 0xFF here");

	/* Nesting deeper than YAML_MAX_DEPTH (32): refused while parsing. */
	n += (size_t)sprintf(deep, "info: ");
	for (int i = 0; i < 40; i++)
		deep[n++] = '[';
	for (int i = 0; i < 40; i++)
		deep[n++] = ']';
	deep[n++] = '\n';
	deep[n] = '\0';
	refused(st, deep, XBA_ECONFIG, "t.yaml:1:", "nesting deeper than 32 levels");
}

/* Over ALERTYAML_MAX_BYTES: refused before parsing, from memory and from a file. */
static void
test_too_big(struct check_state *st)
{
	size_t len = ALERTYAML_MAX_BYTES + 1;
	char *big = malloc(len + 1), path[] = "/tmp/test_alertyaml.XXXXXX";
	struct xba_error err;
	Xba__V1__Alert *a;
	FILE *f;
	int fd;

	if (big == NULL)
		return;
	memset(big, '#', len);
	big[len] = '\0';
	a = alertyaml_load_buffer("big.yaml", big, len, &err);
	CHECK(st, a == NULL);
	CHECK_CODE(st, err.code, XBA_ETOOBIG);
	CHECK_CONTAINS(st, err.msg, "big.yaml: file is larger than the limit of 262144 bytes");

	fd = mkstemp(path);
	CHECK(st, fd >= 0);
	if (fd >= 0 && (f = fdopen(fd, "w")) != NULL) {
		fwrite(big, 1, len, f);
		fclose(f);
		a = alertyaml_load(path, &err);
		CHECK(st, a == NULL);
		CHECK_CODE(st, err.code, XBA_ETOOBIG);
		CHECK_CONTAINS(st, err.msg, path);
		/* Exactly at the limit is fine as far as size goes (all comments: an empty file). */
		CHECK(st, truncate(path, ALERTYAML_MAX_BYTES) == 0);
		a = alertyaml_load(path, &err);
		CHECK(st, a == NULL);
		CHECK_CODE(st, err.code, XBA_ECONFIG);
		CHECK_CONTAINS(st, err.msg, ":1:1: the file is empty");
		unlink(path);
	}
	free(big);
}

static void
test_load_file(struct check_state *st)
{
	char path[] = "/tmp/test_alertyaml.XXXXXX";
	struct xba_error err;
	Xba__V1__Alert *a;
	FILE *f;
	int fd = mkstemp(path);

	CHECK(st, fd >= 0);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
		return;
	fputs(full_alert, f);
	fputs("colour: red\n", f);
	fclose(f);
	a = alertyaml_load(path, &err);
	CHECK(st, a == NULL);
	CHECK_CODE(st, err.code, XBA_ECONFIG);
	CHECK_CONTAINS(st, err.msg, path);
	CHECK_CONTAINS(st, err.msg, ":50:1: unknown key 'colour'");

	CHECK(st, truncate(path, strlen(full_alert)) == 0);
	a = alertyaml_load(path, &err);
	CHECK(st, a != NULL && a->n_info == 3);
	alertyaml_free(a);
	unlink(path);

	a = alertyaml_load("/nonexistent/alert.yaml", &err);
	CHECK(st, a == NULL);
	CHECK_CODE(st, err.code, XBA_EIO);
	CHECK_CONTAINS(st, err.msg, "/nonexistent/alert.yaml: cannot open");
}

/* A failure deep in the tree, after much was built: ASan's leak checker proves the partial alert is freed. */
static void
test_partial_failures_free(struct check_state *st)
{
	static const char *const tails[] = {
		"  - description: second\n    polygons:\n      - [[1, 2], [3, 4], [5, 6], [7, 8]]\n",
		"  - description: second\n    circles:\n      - {lat: 1, lon: 2, radius_km: -1}\n",
		"  - description: second\n    geocodes:\n      - {name: a, value: \"\"}\n",
		"parameters: {a: [1]}\n",
	};
	char text[4096];

	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		struct xba_error err;
		Xba__V1__Alert *a;

		snprintf(text, sizeof(text), "%.*s%s", (int)(strstr(full_alert, "parameters:") - full_alert),
		    full_alert, tails[i]);
		a = load(text, &err);
		CHECK(st, a == NULL);
		CHECK_CODE(st, err.code, XBA_ECONFIG);
		CHECK_CONTAINS(st, err.msg, "t.yaml:");
		alertyaml_free(a);
	}
}

/* Found by fuzz_alertyaml: a list item that is not a scalar in a list of strings (references, addressees) must
 * be refused and the half-built alert freed without touching the never-allocated element. */
static void
test_non_scalar_list_items(struct check_state *st)
{
	static const char *const texts[] = {
		"addressees:\n  - {name: people_count, value: 45}\n",
		"to: [LBY, [TCD]]\n",
		"references:\n  - {a: b}\n",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct xba_error err;
		Xba__V1__Alert *a = load(texts[i], &err);

		CHECK(st, a == NULL);
		CHECK_CODE(st, err.code, XBA_ECONFIG);
		alertyaml_free(a);
	}
}

/* The first yaml block of docs/alert-yaml.md is full_alert, byte for byte: the page shows a file that loads. */
static const char *tests_dir = ".";

static void
test_doc_example(struct check_state *st)
{
	char path[4096], *page, *start, *end;
	size_t len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/../docs/alert-yaml.md", tests_dir);
	f = fopen(path, "rb");
	CHECK(st, f != NULL);
	if (f == NULL)
		return;
	page = calloc(1, 256 * 1024);
	len = page != NULL ? fread(page, 1, 256 * 1024 - 1, f) : 0;
	fclose(f);
	CHECK(st, len > 0);
	start = page != NULL ? strstr(page, "```yaml\n") : NULL;
	end = start != NULL ? strstr(start + 8, "```\n") : NULL;
	CHECK(st, start != NULL && end != NULL);
	if (start != NULL && end != NULL) {
		size_t n = strlen(full_alert);

		start += 8;
		CHECK(st, (size_t)(end - start) == n && memcmp(start, full_alert, n) == 0);
	}
	free(page);
}

/* `xba send FILE`: a duration without `sent` is passed on as one (the agent counts it from the sent time it gives
 * the alert: this machine's clock may be wrong); with `sent`, or as a date, it is not. */
static void
test_expires_in_for_submit(struct check_state *st)
{
	static const char *const cases[][2] = {
		{ "tlp: green\nexpires: 6h\n", "21600000" },
		{ "tlp: green\nsent: 2026-11-26T06:00:00Z\nexpires: 6h\n", "0" },
		{ "tlp: green\nexpires: 2099-01-01T00:00:00Z\n", "0" },
		{ "tlp: green\n", "0" },
	};
	char path[] = "/tmp/xba-test-alertyaml-XXXXXX";
	int fd = mkstemp(path);

	CHECK(st, fd >= 0);
	if (fd < 0)
		return;
	close(fd);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct xba_error err = { 0 };
		FILE *f = fopen(path, "w");
		int64_t in_ms = -1;
		Xba__V1__Alert *a;

		CHECK(st, f != NULL);
		if (f == NULL)
			break;
		fputs(cases[i][0], f);
		fclose(f);
		a = alertyaml_load_for_submit(path, &in_ms, &err);
		CHECK(st, a != NULL);
		CHECK(st, in_ms == strtoll(cases[i][1], NULL, 10));
		alertyaml_free(a);
	}
	unlink(path);
}

int
main(int argc, char **argv)
{
	struct check_state st = { 0, 0, 0 };

	if (argc > 1)
		tests_dir = argv[1];
	RUN(&st, test_doc_example);
	RUN(&st, test_full_alert);
	RUN(&st, test_minimal_and_defaults);
	RUN(&st, test_spellings);
	RUN(&st, test_unknown_keys);
	RUN(&st, test_bad_enums);
	RUN(&st, test_bad_times);
	RUN(&st, test_bad_geometry);
	RUN(&st, test_lists_required);
	RUN(&st, test_item_checks);
	RUN(&st, test_limits);
	RUN(&st, test_yaml_refusals);
	RUN(&st, test_too_big);
	RUN(&st, test_load_file);
	RUN(&st, test_partial_failures_free);
	RUN(&st, test_non_scalar_list_items);
	RUN(&st, test_expires_in_for_submit);
	RUN(&st, test_text_cut_by_comment);
	return check_finish(&st);
}
