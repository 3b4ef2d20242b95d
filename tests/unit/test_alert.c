/*
 * test_alert.c — the alert codec and validator (lib/alert.c), the gate every alert passes on its way out of the
 * CLI and again after each signature check.  A complete alert must round-trip byte for byte; every refusal must
 * carry its specific code and name the field, whether the bad value was set on the struct or arrived as bytes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "check.h"
#include "syntax.h"
#include "xba.pb-c.h"

#define ALERT_ID "3f1c2a9e-8b4d-4c7a-9e2f-1a2b3c4d5e6f"
#define EARLIER_ID "0b7e2d41-5c3a-4f1e-8d2c-9a8b7c6d5e4f"
#define SENT_MS INT64_C(1717236000000)

/* "Foyer de choléra signalé à Assamaka" and "تفشي الكوليرا في أساماكا" (cholera outbreak in Assamaka), spelled
 * as bytes so the test does not depend on the compiler's source character set. */
#define HEADLINE_FR "Foyer de chol\xc3\xa9ra signal\xc3\xa9 \xc3\xa0 Assamaka"
#define HEADLINE_AR                                                                                              \
	"\xd8\xaa\xd9\x81\xd8\xb4\xd9\x8a \xd8\xa7\xd9\x84\xd9\x83\xd9\x88\xd9\x84\xd9\x8a\xd8\xb1\xd8\xa7 "       \
	"\xd9\x81\xd9\x8a \xd8\xa3\xd8\xb3\xd8\xa7\xd9\x85\xd8\xa7\xd9\x83\xd8\xa7"

static const char *const languages[ALERT_MAX_INFO + 1] = { "fr", "ar", "en", "es", "de", "it", "pt", "ha", "ff" };

/* A complete, valid alert with spare room behind every list so tests can push a count over its limit.  Every
 * pointer points into the fixture itself: allocate with fixture_new(), never copy. */
struct fixture {
	Xba__V1__Alert alert;
	char *refs[ALERT_MAX_REFERENCES + 1];
	char ref_text[ALERT_MAX_REFERENCES + 1][XBA_UUID_LEN + 1];
	char *addr[ALERT_MAX_ADDRESSEES + 1];
	char addr_text[ALERT_MAX_ADDRESSEES + 1][8];
	Xba__V1__Info info[ALERT_MAX_INFO + 1];
	Xba__V1__Info *infop[ALERT_MAX_INFO + 1];
	Xba__V1__Point pts[ALERT_MAX_POLYGON_POINTS + 1];
	Xba__V1__Point *ptp[ALERT_MAX_POLYGON_POINTS + 1];
	Xba__V1__Polygon poly[ALERT_MAX_POLYGONS + 1];
	Xba__V1__Polygon *polyp[ALERT_MAX_POLYGONS + 1];
	Xba__V1__Point center;
	Xba__V1__Circle circle[ALERT_MAX_CIRCLES + 1];
	Xba__V1__Circle *circlep[ALERT_MAX_CIRCLES + 1];
	Xba__V1__Geocode geo[ALERT_MAX_GEOCODES + 1];
	Xba__V1__Geocode *geop[ALERT_MAX_GEOCODES + 1];
	Xba__V1__Area area[ALERT_MAX_AREAS + 1];
	Xba__V1__Area *areap[ALERT_MAX_AREAS + 1];
	Xba__V1__Parameter param[ALERT_MAX_PARAMS + 1];
	Xba__V1__Parameter *paramp[ALERT_MAX_PARAMS + 1];
	char text[4][ALERT_DESCRIPTION_MAX + 2]; /* scratch for long or odd strings */
};

/* The Assamaka border post and a ring around it; closed (first == last). */
static const double ring[][2] = {
	{ 19.30, 5.70 }, { 19.30, 5.85 }, { 19.42, 5.85 }, { 19.42, 5.70 }, { 19.30, 5.70 },
};

static struct fixture *
fixture_new(void)
{
	static const Xba__V1__Alert alert_init = XBA__V1__ALERT__INIT;
	static const Xba__V1__Info info_init = XBA__V1__INFO__INIT;
	static const Xba__V1__Point point_init = XBA__V1__POINT__INIT;
	static const Xba__V1__Polygon poly_init = XBA__V1__POLYGON__INIT;
	static const Xba__V1__Circle circle_init = XBA__V1__CIRCLE__INIT;
	static const Xba__V1__Geocode geo_init = XBA__V1__GEOCODE__INIT;
	static const Xba__V1__Area area_init = XBA__V1__AREA__INIT;
	static const Xba__V1__Parameter param_init = XBA__V1__PARAMETER__INIT;
	struct fixture *f = calloc(1, sizeof(*f));
	Xba__V1__Alert *a;

	if (f == NULL)
		abort();
	for (size_t i = 0; i <= ALERT_MAX_REFERENCES; i++) {
		snprintf(f->ref_text[i], sizeof(f->ref_text[i]), "0b7e2d41-5c3a-4f1e-8d2c-9a8b7c6d%04zx", i + 0x5e4f);
		f->refs[i] = f->ref_text[i];
	}
	for (size_t i = 0; i <= ALERT_MAX_ADDRESSEES; i++) {
		snprintf(f->addr_text[i], sizeof(f->addr_text[i]), "N%c%c", (char)('A' + i / 26), (char)('A' + i % 26));
		f->addr[i] = f->addr_text[i];
	}
	f->addr[0] = "DZA";
	f->addr[1] = "LBY";
	f->addr[2] = "WHO-AFRO";
	for (size_t i = 0; i <= ALERT_MAX_INFO; i++) {
		f->info[i] = info_init;
		f->info[i].language = (char *)languages[i];
		f->info[i].headline = "Cholera cluster at Assamaka";
		f->infop[i] = &f->info[i];
	}
	f->info[0].event = "Foyer de chol\xc3\xa9ra";
	f->info[0].headline = HEADLINE_FR;
	f->info[0].description = "Douze cas suspects au poste fronti\xc3\xa8re d'Assamaka depuis le 30 mai.";
	f->info[0].instruction = "Renforcer le d\xc3\xa9pistage des voyageurs venant d'Arlit.";
	f->info[1].event = "\xd9\x83\xd9\x88\xd9\x84\xd9\x8a\xd8\xb1\xd8\xa7";
	f->info[1].headline = HEADLINE_AR;
	f->info[1].description = "\xd8\xa7\xd8\xab\xd9\x86\xd8\xa7 \xd8\xb9\xd8\xb4\xd8\xb1 \xd8\xad\xd8\xa7\xd9\x84\xd8\xa9";
	for (size_t i = 0; i <= ALERT_MAX_POLYGON_POINTS; i++) {
		f->pts[i] = point_init;
		f->pts[i].lat = ring[i % 4][0];
		f->pts[i].lon = ring[i % 4][1];
		f->ptp[i] = &f->pts[i];
	}
	f->pts[4] = f->pts[0];
	for (size_t i = 0; i <= ALERT_MAX_POLYGONS; i++) {
		f->poly[i] = poly_init;
		f->poly[i].n_points = 5;
		f->poly[i].points = f->ptp;
		f->polyp[i] = &f->poly[i];
	}
	f->center = point_init;
	f->center.lat = 19.35;
	f->center.lon = 5.78;
	for (size_t i = 0; i <= ALERT_MAX_CIRCLES; i++) {
		f->circle[i] = circle_init;
		f->circle[i].center = &f->center;
		f->circle[i].radius_km = 25.0;
		f->circlep[i] = &f->circle[i];
	}
	for (size_t i = 0; i <= ALERT_MAX_GEOCODES; i++) {
		f->geo[i] = geo_init;
		f->geo[i].name = "border-post";
		f->geo[i].value = "NE-ASSAMAKA";
		f->geop[i] = &f->geo[i];
	}
	for (size_t i = 0; i <= ALERT_MAX_AREAS; i++) {
		f->area[i] = area_init;
		f->area[i].description = "Poste fronti\xc3\xa8re d'Assamaka et environs";
		f->area[i].n_polygons = 1;
		f->area[i].polygons = f->polyp;
		f->area[i].n_circles = 1;
		f->area[i].circles = f->circlep;
		f->area[i].n_geocodes = 1;
		f->area[i].geocodes = f->geop;
		f->areap[i] = &f->area[i];
	}
	for (size_t i = 0; i <= ALERT_MAX_PARAMS; i++) {
		f->param[i] = param_init;
		f->param[i].name = "people_count";
		f->param[i].value = "45";
		f->paramp[i] = &f->param[i];
	}
	f->param[1].name = "route";
	f->param[1].value = "Arlit \xe2\x80\x93 Assamaka \xe2\x80\x93 In Guezzam";

	a = &f->alert;
	*a = alert_init;
	a->id = ALERT_ID;
	a->origin = "NER";
	a->author = "Cdt. A\xc3\xaf" "cha Issoufou";
	a->sent_ms = SENT_MS;
	a->status = XBA__V1__STATUS__STATUS_ACTUAL;
	a->msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ALERT;
	a->n_references = 1;
	a->references = f->refs;
	a->incident = "INC-2024-0042";
	a->category = XBA__V1__CATEGORY__CATEGORY_HEALTH;
	a->severity = XBA__V1__SEVERITY__SEVERITY_SEVERE;
	a->urgency = XBA__V1__URGENCY__URGENCY_IMMEDIATE;
	a->certainty = XBA__V1__CERTAINTY__CERTAINTY_LIKELY;
	a->tlp = XBA__V1__TLP__TLP_AMBER;
	a->n_addressees = 3;
	a->addressees = f->addr;
	a->expires_ms = SENT_MS + 86400000;
	a->n_info = 2;
	a->info = f->infop;
	a->n_areas = 1;
	a->areas = f->areap;
	a->n_parameters = 2;
	a->parameters = f->paramp;
	a->emergency = 1;
	a->note = "Confirm\xc3\xa9 par le laboratoire de Niamey.";
	return f;
}

/* Pack without validating, to put on the wire what a broken or hostile sender would. */
static uint8_t *
raw_pack(const Xba__V1__Alert *a, size_t *len)
{
	uint8_t *buf;

	*len = xba__v1__alert__get_packed_size(a);
	if ((buf = malloc(*len + 16)) == NULL)
		abort();
	xba__v1__alert__pack(a, buf);
	return buf;
}

/* Two alerts are the same when protobuf-c packs them to the same bytes (packing is deterministic). */
static int
same_alert(const Xba__V1__Alert *x, const Xba__V1__Alert *y)
{
	size_t xl, yl;
	uint8_t *xb = raw_pack(x, &xl), *yb = raw_pack(y, &yl);
	int same = xl == yl && memcmp(xb, yb, xl) == 0;

	free(xb);
	free(yb);
	return same;
}

static size_t
find_bytes(const uint8_t *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return i;
	return SIZE_MAX;
}

/* The refusal must be the same whichever way the bad value comes: validated on the struct, refused by encode,
 * or arriving as bytes for decode. */
static void
reject(struct check_state *t, const Xba__V1__Alert *a, int code, const char *needle)
{
	struct xba_error err = { 0 };
	uint8_t *out = (uint8_t *)"untouched", *wire;
	size_t out_len = 1, len;
	Xba__V1__Alert *back;

	CHECK_CODE(t, alert_validate(a, &err), code);
	CHECK_CONTAINS(t, err.msg, needle);
	xba_error_clear(&err);
	CHECK_CODE(t, alert_encode(a, &out, &out_len, &err), code);
	CHECK(t, out == NULL && out_len == 0);
	CHECK_CONTAINS(t, err.msg, needle);

	wire = raw_pack(a, &len);
	xba_error_clear(&err);
	back = alert_decode(wire, len, &err);
	CHECK(t, back == NULL);
	CHECK_CODE(t, err.code, code);
	CHECK_CONTAINS(t, err.msg, needle);
	alert_free(back);
	free(wire);
	CHECK_CODE(t, alert_validate(a, NULL), code); /* err is optional */
}

/* Field 9 is unknown inside an Info; 99 is unknown in an Alert (9 there is category). */
static ProtobufCMessageUnknownField unknown9 = { 9, PROTOBUF_C_WIRE_TYPE_VARINT, 1, (uint8_t *)"\x01" };
static ProtobufCMessageUnknownField unknown99 = { 99, PROTOBUF_C_WIRE_TYPE_VARINT, 1, (uint8_t *)"\x01" };

/*
 * One row per refusal: name, expected code, text the message must contain, and the change that breaks the
 * fixture `f`.  Each row becomes a test of its own (test_reject_<name>) so a failure has a name.
 */
#define REJECT_CASES(X)                                                                                           \
	X(id_missing, XBA_EREQUIRED, "id: required", f->alert.id = "")                                              \
	X(id_null, XBA_EREQUIRED, "id: required", f->alert.id = NULL)                                               \
	X(id_malformed, XBA_ESYNTAX, "id: ", f->alert.id = "3F1C2A9E-8B4D-4C7A-9E2F-1A2B3C4D5E6F")                  \
	X(origin_missing, XBA_EREQUIRED, "origin: required", f->alert.origin = "")                                  \
	X(origin_malformed, XBA_ESYNTAX, "origin: ", f->alert.origin = "ner")                                       \
	X(author_missing, XBA_EREQUIRED, "author: required", f->alert.author = "")                                  \
	X(author_too_long, XBA_ETOOLONG, "author: 129 bytes, at most 128",                                          \
	    memset(f->text[0], 'a', 129); f->alert.author = f->text[0])                                             \
	X(sent_missing, XBA_EREQUIRED, "sent_ms: required", f->alert.sent_ms = 0)                                   \
	X(sent_negative, XBA_ETIME, "sent_ms", f->alert.sent_ms = -5)                                               \
	X(status_missing, XBA_EREQUIRED, "status: required", f->alert.status = 0)                                   \
	X(msg_type_missing, XBA_EREQUIRED, "msg_type: required", f->alert.msg_type = 0)                             \
	X(tlp_missing, XBA_EREQUIRED, "tlp: required", f->alert.tlp = 0)                                            \
	X(category_missing, XBA_EREQUIRED, "category: required", f->alert.category = 0)                             \
	X(severity_missing, XBA_EREQUIRED, "severity: required", f->alert.severity = 0)                             \
	X(urgency_missing, XBA_EREQUIRED, "urgency: required", f->alert.urgency = 0)                                \
	X(certainty_missing, XBA_EREQUIRED, "certainty: required", f->alert.certainty = 0)                          \
	X(update_category_missing, XBA_EREQUIRED, "category: required",                                             \
	    f->alert.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE; f->alert.category = 0)                          \
	X(category_99, XBA_EENUM, "category: unknown value 99", f->alert.category = 99)                             \
	X(tlp_42, XBA_EENUM, "tlp: unknown value 42", f->alert.tlp = 42)                                            \
	X(status_6, XBA_EENUM, "status: unknown value 6", f->alert.status = 6)                                      \
	X(msg_type_negative, XBA_EENUM, "msg_type: unknown value -1", f->alert.msg_type = -1)                       \
	X(severity_6, XBA_EENUM, "severity: unknown value 6", f->alert.severity = 6)                                \
	X(urgency_7, XBA_EENUM, "urgency: unknown value 7", f->alert.urgency = 7)                                   \
	X(certainty_9, XBA_EENUM, "certainty: unknown value 9", f->alert.certainty = 9)                             \
	X(ack_category_99, XBA_EENUM, "category: unknown value 99",                                                 \
	    f->alert.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ACK; f->alert.emergency = 0; f->alert.category = 99)    \
	X(ack_without_references, XBA_EREQUIRED, "references: required",                                            \
	    f->alert.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ACK; f->alert.emergency = 0; f->alert.n_references = 0) \
	X(update_without_references, XBA_EREQUIRED, "references: required",                                         \
	    f->alert.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE; f->alert.n_references = 0)                      \
	X(cancel_without_references, XBA_EREQUIRED, "references: required",                                         \
	    f->alert.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_CANCEL; f->alert.n_references = 0)                      \
	X(error_without_references, XBA_EREQUIRED, "references: required",                                          \
	    f->alert.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ERROR; f->alert.emergency = 0;                          \
	    f->alert.n_references = 0)                                                                              \
	X(reference_malformed, XBA_ESYNTAX, "references[1]", f->alert.n_references = 2; f->refs[1] = "not-a-uuid")  \
	X(reference_empty, XBA_EREQUIRED, "references[1]: required", f->alert.n_references = 2; f->refs[1] = "")    \
	X(self_reference, XBA_EDUPLICATE, "references[1]: refers to the alert itself",                              \
	    f->alert.n_references = 2; f->refs[1] = ALERT_ID)                                                       \
	X(too_many_references, XBA_ETOOLONG, "references: 33 items, at most 32",                                    \
	    f->alert.n_references = ALERT_MAX_REFERENCES + 1)                                                       \
	X(duplicate_addressee, XBA_EDUPLICATE, "addressees[2]", f->addr[2] = "DZA")                                 \
	X(bad_addressee, XBA_ESYNTAX, "addressees[1]: \"lby\" is not a node id", f->addr[1] = "lby")                \
	X(empty_addressee, XBA_EREQUIRED, "addressees[1]: required", f->addr[1] = "")                               \
	X(too_many_addressees, XBA_ETOOLONG, "addressees: 65 items, at most 64", f->addr[0] = "NAA";                \
	    f->addr[1] = "NAB"; f->addr[2] = "NAC"; f->alert.n_addressees = ALERT_MAX_ADDRESSEES + 1)               \
	X(emergency_ack, XBA_EENUM, "emergency: not allowed with msg_type ack",                                     \
	    f->alert.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ACK)                                                    \
	X(emergency_error, XBA_EENUM, "emergency: not allowed with msg_type error",                                 \
	    f->alert.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ERROR)                                                  \
	X(expiry_before_sent, XBA_ETIME, "expires_ms", f->alert.expires_ms = SENT_MS - 1)                           \
	X(expiry_at_sent, XBA_ETIME, "expires_ms", f->alert.expires_ms = SENT_MS)                                   \
	X(expiry_negative, XBA_ETIME, "expires_ms", f->alert.expires_ms = -1)                                       \
	X(incident_too_long, XBA_ETOOLONG, "incident: 129 bytes",                                                   \
	    memset(f->text[0], 'i', 129); f->alert.incident = f->text[0])                                           \
	X(note_too_long, XBA_ETOOLONG, "note: 1025 bytes", memset(f->text[0], 'n', 1025); f->alert.note = f->text[0]) \
	X(no_info, XBA_EREQUIRED, "info: at least one", f->alert.n_info = 0)                                        \
	X(update_no_info, XBA_EREQUIRED, "info: at least one",                                                      \
	    f->alert.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_UPDATE; f->alert.n_info = 0)                            \
	X(too_many_info, XBA_ETOOLONG, "info: 9 items, at most 8", f->alert.n_info = ALERT_MAX_INFO + 1)            \
	X(duplicate_language, XBA_EDUPLICATE, "info[1].language", f->info[1].language = "fr")                       \
	X(duplicate_language_case, XBA_EDUPLICATE, "info[1].language", f->info[1].language = "FR")                  \
	X(bad_language_tag, XBA_ESYNTAX, "info[1].language: \"arabic!\"", f->info[1].language = "arabic!")          \
	X(bad_language_tag_short, XBA_ESYNTAX, "info[0].language", f->info[0].language = "f")                       \
	X(language_missing, XBA_EREQUIRED, "info[1].language: required", f->info[1].language = "")                  \
	X(headline_missing, XBA_EREQUIRED, "info[0].headline: required", f->info[0].headline = "")                  \
	X(headline_161, XBA_ETOOLONG, "info[1].headline: 161 bytes, at most 160",                                   \
	    memset(f->text[0], 'h', 161); f->info[1].headline = f->text[0])                                         \
	X(event_too_long, XBA_ETOOLONG, "info[0].event: 129 bytes",                                                 \
	    memset(f->text[0], 'e', 129); f->info[0].event = f->text[0])                                            \
	X(description_too_long, XBA_ETOOLONG, "info[1].description: 8193 bytes",                                    \
	    memset(f->text[0], 'd', 8193); f->info[1].description = f->text[0])                                     \
	X(instruction_too_long, XBA_ETOOLONG, "info[0].instruction: 4097 bytes",                                    \
	    memset(f->text[0], 'i', 4097); f->info[0].instruction = f->text[0])                                     \
	X(headline_overlong_utf8, XBA_EUTF8, "info[0].headline: not valid UTF-8", f->info[0].headline = "ab\xc0\xaf")  \
	X(headline_surrogate, XBA_EUTF8, "info[0].headline: not valid UTF-8", f->info[0].headline = "\xed\xa0\x80") \
	X(headline_lone_continuation, XBA_EUTF8, "info[1].headline: not valid UTF-8",                               \
	    f->info[1].headline = "x\x80y")                                                                         \
	X(geocode_overlong_utf8, XBA_EUTF8, "areas[0].geocodes[1].value: not valid UTF-8",                          \
	    f->area[0].n_geocodes = 2; f->geo[1].value = "\xe0\x80\xaf")                                            \
	X(geocode_surrogate, XBA_EUTF8, "areas[0].geocodes[0].value: not valid UTF-8", f->geo[0].value = "\xed\xbf\xbf") \
	X(geocode_lone_continuation, XBA_EUTF8, "areas[0].geocodes[0].value: not valid UTF-8",                      \
	    f->geo[0].value = "\xbf")                                                                               \
	X(geocode_name_missing, XBA_EREQUIRED, "areas[0].geocodes[0].name: required", f->geo[0].name = "")          \
	X(geocode_value_missing, XBA_EREQUIRED, "areas[0].geocodes[0].value: required", f->geo[0].value = "")       \
	X(geocode_too_long, XBA_ETOOLONG, "areas[0].geocodes[0].value: 129 bytes",                                  \
	    memset(f->text[0], 'g', 129); f->geo[0].value = f->text[0])                                             \
	X(area_description_missing, XBA_EREQUIRED, "areas[0].description: required", f->area[0].description = "")   \
	X(area_description_too_long, XBA_ETOOLONG, "areas[0].description: 513 bytes",                               \
	    memset(f->text[0], 'a', 513); f->area[0].description = f->text[0])                                      \
	X(polygon_unclosed, XBA_EGEO, "areas[0].polygons[0]: not closed", f->pts[4].lat = 19.31)                    \
	X(polygon_3_points, XBA_EGEO, "areas[0].polygons[0].points: 3 points, at least 4",                          \
	    f->poly[0].n_points = 3; f->pts[2] = f->pts[0])                                                         \
	X(polygon_too_many_points, XBA_ETOOLONG, "areas[0].polygons[0].points: 257 items, at most 256",             \
	    f->poly[0].n_points = ALERT_MAX_POLYGON_POINTS + 1)                                                     \
	X(lat_91, XBA_EGEO, "areas[0].polygons[0].points[1].lat: 91 outside -90..90", f->pts[1].lat = 91.0)         \
	X(lon_181, XBA_EGEO, "areas[0].polygons[0].points[2].lon", f->pts[2].lon = -180.5)                          \
	X(lon_nan, XBA_EGEO, "areas[0].polygons[0].points[2].lon: not a finite number", f->pts[2].lon = NAN)        \
	X(lat_infinite, XBA_EGEO, "areas[0].polygons[0].points[3].lat: not a finite number",                        \
	    f->pts[3].lat = INFINITY)                                                                               \
	X(circle_radius_0, XBA_EGEO, "areas[0].circles[0].radius_km", f->circle[0].radius_km = 0.0)                 \
	X(circle_radius_negative, XBA_EGEO, "areas[0].circles[0].radius_km", f->circle[0].radius_km = -3.0)         \
	X(circle_radius_huge, XBA_EGEO, "areas[0].circles[0].radius_km", f->circle[0].radius_km = 5000.5)           \
	X(circle_radius_nan, XBA_EGEO, "areas[0].circles[0].radius_km", f->circle[0].radius_km = NAN)               \
	X(circle_center_missing, XBA_EREQUIRED, "areas[0].circles[0].center: required", f->circle[0].center = NULL) \
	X(circle_center_out, XBA_EGEO, "areas[0].circles[0].center.lat", f->center.lat = -90.001)                   \
	X(too_many_areas, XBA_ETOOLONG, "areas: 17 items", f->alert.n_areas = ALERT_MAX_AREAS + 1)                  \
	X(too_many_polygons, XBA_ETOOLONG, "areas[0].polygons: 9 items", f->area[0].n_polygons = 9)                 \
	X(too_many_circles, XBA_ETOOLONG, "areas[0].circles: 9 items", f->area[0].n_circles = 9)                    \
	X(too_many_geocodes, XBA_ETOOLONG, "areas[0].geocodes: 33 items", f->area[0].n_geocodes = 33)               \
	X(parameter_name_missing, XBA_EREQUIRED, "parameters[1].name: required", f->param[1].name = "")             \
	X(parameter_name_too_long, XBA_ETOOLONG, "parameters[0].name: 65 bytes",                                    \
	    memset(f->text[0], 'p', 65); f->param[0].name = f->text[0])                                             \
	X(parameter_value_too_long, XBA_ETOOLONG, "parameters[1].value: 513 bytes",                                 \
	    memset(f->text[0], 'v', 513); f->param[1].value = f->text[0])                                           \
	X(too_many_parameters, XBA_ETOOLONG, "parameters: 33 items", f->alert.n_parameters = ALERT_MAX_PARAMS + 1)  \
	X(nested_unknown_field, XBA_EDECODE, "info[1]: unknown field number 9",                                     \
	    f->info[1].base.n_unknown_fields = 1; f->info[1].base.unknown_fields = &unknown9)                       \
	X(top_unknown_field, XBA_EDECODE, "unknown field number 99",                                                \
	    f->alert.base.n_unknown_fields = 1; f->alert.base.unknown_fields = &unknown99)

#define DEFINE_REJECT(name, code, needle, ...)                                                                    \
	static void test_reject_##name(struct check_state *t)                                                     \
	{                                                                                                          \
		struct fixture *f = fixture_new();                                                                 \
		__VA_ARGS__;                                                                                       \
		reject(t, &f->alert, code, needle);                                                                \
		free(f);                                                                                           \
	}
REJECT_CASES(DEFINE_REJECT)

static void
test_round_trip(struct check_state *t)
{
	struct fixture *f = fixture_new();
	struct xba_error err = { 0 };
	uint8_t *bytes = NULL, *again = NULL;
	size_t len = 0, again_len = 0;
	Xba__V1__Alert *back;

	CHECK_CODE(t, alert_validate(&f->alert, &err), 0);
	CHECK_CODE(t, alert_encode(&f->alert, &bytes, &len, &err), 0);
	CHECK(t, bytes != NULL && len > 0 && len <= ALERT_MAX_BYTES);
	back = alert_decode(bytes, len, &err);
	CHECK(t, back != NULL);
	if (back != NULL) {
		CHECK(t, same_alert(&f->alert, back));
		CHECK(t, strcmp(back->id, ALERT_ID) == 0);
		CHECK(t, back->sent_ms == SENT_MS && back->expires_ms == SENT_MS + 86400000);
		CHECK(t, back->n_info == 2 && strcmp(back->info[1]->headline, HEADLINE_AR) == 0);
		CHECK(t, strcmp(back->info[0]->headline, HEADLINE_FR) == 0);
		CHECK(t, back->n_areas == 1 && back->areas[0]->n_polygons == 1 &&
		    back->areas[0]->polygons[0]->n_points == 5 && back->areas[0]->polygons[0]->points[2]->lat == 19.42);
		CHECK(t, back->areas[0]->circles[0]->radius_km == 25.0);
		CHECK(t, strcmp(back->areas[0]->geocodes[0]->value, "NE-ASSAMAKA") == 0);
		CHECK(t, back->n_parameters == 2 && strcmp(back->parameters[1]->value, f->param[1].value) == 0);
		CHECK(t, back->emergency && back->tlp == XBA__V1__TLP__TLP_AMBER);
		CHECK(t, back->n_addressees == 3 && strcmp(back->addressees[2], "WHO-AFRO") == 0);
		CHECK_CODE(t, alert_encode(back, &again, &again_len, &err), 0);
		CHECK(t, again_len == len && again != NULL && memcmp(bytes, again, len) == 0);
	}
	alert_free(back);
	free(bytes);
	free(again);
	free(f);
}

/* The smallest useful message: an officer's acknowledgement needs no category, no info, no area. */
static void
test_minimal_ack(struct check_state *t)
{
	Xba__V1__Alert a = XBA__V1__ALERT__INIT;
	char *refs[] = { EARLIER_ID };
	struct xba_error err = { 0 };
	uint8_t *bytes = NULL;
	size_t len = 0;
	Xba__V1__Alert *back;

	a.id = ALERT_ID;
	a.origin = "DZA";
	a.author = "Lt. Karim Benali";
	a.sent_ms = SENT_MS;
	a.status = XBA__V1__STATUS__STATUS_ACTUAL;
	a.msg_type = XBA__V1__MSG_TYPE__MSG_TYPE_ACK;
	a.tlp = XBA__V1__TLP__TLP_GREEN;
	a.n_references = 1;
	a.references = refs;
	a.note = "Re\xc3\xa7u, \xc3\xa9quipe sanitaire envoy\xc3\xa9" "e.";
	CHECK_CODE(t, alert_encode(&a, &bytes, &len, &err), 0);
	back = alert_decode(bytes, len, &err);
	CHECK(t, back != NULL && same_alert(&a, back));
	CHECK(t, back != NULL && alert_info_for_language(back, "fr") == NULL);
	alert_free(back);
	free(bytes);
}

/* 160 bytes of two-byte characters is the limit, not 160 characters of any size. */
static void
test_headline_limit(struct check_state *t)
{
	struct fixture *f = fixture_new();
	struct xba_error err = { 0 };

	for (size_t i = 0; i < 80; i++)
		memcpy(f->text[0] + 2 * i, "\xc3\xa9", 2);
	f->info[0].headline = f->text[0];
	CHECK_CODE(t, alert_validate(&f->alert, &err), 0);
	memcpy(f->text[0] + 160, "!", 2);
	CHECK_CODE(t, alert_validate(&f->alert, &err), XBA_ETOOLONG);
	CHECK_CONTAINS(t, err.msg, "info[0].headline: 161 bytes, at most 160");
	/* Lengths count bytes, so a multi-byte character cut at the limit is a UTF-8 error once it fits. */
	f->text[0][159] = '\0';
	CHECK_CODE(t, alert_validate(&f->alert, &err), XBA_EUTF8);
	free(f);
}

/* Control characters: refused in one-line fields, a line break and a tab allowed in description and instruction;
 * alert_validate itself does not look (what was journaled before stays valid). */
static void
test_submission_checks(struct check_state *t)
{
	struct fixture *f = fixture_new();
	struct xba_error err = { 0 };

	CHECK_CODE(t, alert_check_submission(&f->alert, &err), 0);
	f->info[0].description = (char *)"Quatre v\xc3\xa9hicules.\n\tDirection nord.";
	f->info[0].instruction = (char *)"Ligne 1\nLigne 2";
	CHECK_CODE(t, alert_check_submission(&f->alert, &err), 0);
	f->info[0].headline = (char *)"Convoi\nvers Toummo";
	CHECK_CODE(t, alert_check_submission(&f->alert, &err), XBA_ESYNTAX);
	CHECK_CONTAINS(t, err.msg, "info[0].headline: control character 0x0A at byte 6 (a line break");
	CHECK_CODE(t, alert_validate(&f->alert, &err), 0);
	f->info[0].headline = (char *)"Convoi";
	f->info[0].description = (char *)"Rouge \x1b[31m";
	CHECK_CODE(t, alert_check_submission(&f->alert, &err), XBA_ESYNTAX);
	CHECK_CONTAINS(t, err.msg, "info[0].description: control character 0x1B at byte 6");
	/* A CR is no line break in a multi-line field either, and the refusal must not call the field one line. */
	f->info[0].description = (char *)"ligne 1\rligne 2";
	CHECK_CODE(t, alert_check_submission(&f->alert, &err), XBA_ESYNTAX);
	CHECK_CONTAINS(t, err.msg, "info[0].description: control character 0x0D at byte 7 (a carriage return");
	CHECK(t, strstr(err.msg, "one line") == NULL);
	f->info[0].description = NULL;
	f->info[0].instruction = (char *)"ligne 1\r\nligne 2";
	CHECK_CODE(t, alert_check_submission(&f->alert, &err), XBA_ESYNTAX);
	CHECK_CONTAINS(t, err.msg, "info[0].instruction: control character 0x0D at byte 7 (a carriage return");
	CHECK(t, strstr(err.msg, "one line") == NULL);
	f->info[0].instruction = (char *)"Ligne 1\nLigne 2";
	f->info[0].headline = (char *)"Convoi\r";
	CHECK_CODE(t, alert_check_submission(&f->alert, &err), XBA_ESYNTAX);
	CHECK_CONTAINS(t, err.msg,
	    "info[0].headline: control character 0x0D at byte 6 (a line break: this field is one line)");
	f->info[0].headline = (char *)"Convoi";
	f->alert.author = (char *)"capitaine \xc2\x9b" "2J";
	CHECK_CODE(t, alert_check_submission(&f->alert, &err), XBA_ESYNTAX);
	CHECK_CONTAINS(t, err.msg, "author: control character U+009B at byte 10");
	f->alert.author = (char *)"capitaine \xc2\xa0Issa"; /* a no-break space is text */
	CHECK_CODE(t, alert_check_submission(&f->alert, &err), 0);
	f->param[0].value = (char *)"45\x7f";
	CHECK_CODE(t, alert_check_submission(&f->alert, &err), XBA_ESYNTAX);
	CHECK_CONTAINS(t, err.msg, "parameters[0].value: control character 0x7F");
	f->param[0].value = (char *)"45";
	/* Names the CAP mapping keeps (docs/protocol.md 5.4), in any case; others that merely start alike are fine. */
	f->param[0].name = (char *)"tlp";
	CHECK_CODE(t, alert_check_submission(&f->alert, &err), XBA_ESYNTAX);
	CHECK_CONTAINS(t, err.msg, "parameters[0].name: 'tlp' is kept for the CAP mapping");
	f->param[0].name = (char *)"XBA-category";
	CHECK_CODE(t, alert_check_submission(&f->alert, &err), XBA_ESYNTAX);
	f->param[0].name = (char *)"tlp_source";
	CHECK_CODE(t, alert_check_submission(&f->alert, &err), 0);
	free(f);
}

/* Every text field, however deep, goes through the UTF-8 check and is named in the refusal. */
static void
test_utf8_every_field(struct check_state *t)
{
	static const char *const bad[] = { "\xc0\xaf", "\xed\xa0\x80", "\x80" };
	struct fixture *f = fixture_new();
	struct {
		char **slot;
		const char *path;
	} fields[] = {
		{ &f->alert.id, "id" }, { &f->alert.origin, "origin" }, { &f->alert.author, "author" },
		{ &f->refs[0], "references[0]" }, { &f->alert.incident, "incident" }, { &f->addr[1], "addressees[1]" },
		{ &f->info[1].language, "info[1].language" }, { &f->info[1].event, "info[1].event" },
		{ &f->info[0].headline, "info[0].headline" }, { &f->info[1].description, "info[1].description" },
		{ &f->info[0].instruction, "info[0].instruction" }, { &f->area[0].description, "areas[0].description" },
		{ &f->geo[0].name, "areas[0].geocodes[0].name" }, { &f->geo[0].value, "areas[0].geocodes[0].value" },
		{ &f->param[1].name, "parameters[1].name" }, { &f->param[0].value, "parameters[0].value" },
		{ &f->alert.note, "note" },
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
			char *saved = *fields[i].slot;
			char want[80];
			int failed = t->current_failed;

			*fields[i].slot = (char *)bad[b];
			snprintf(want, sizeof(want), "%s: not valid UTF-8", fields[i].path);
			reject(t, &f->alert, XBA_EUTF8, want);
			if (t->current_failed != failed)
				fprintf(stderr, "  ... field %s, bad sequence %zu\n", fields[i].path, b);
			*fields[i].slot = saved;
		}
	}
	free(f);
}

/* Every field is within its own limit, but together they exceed what one alert may weigh. */
static void
test_oversize(struct check_state *t)
{
	struct fixture *f = fixture_new();
	struct xba_error err = { 0 };
	uint8_t *bytes = NULL, *big;
	size_t len = 0;

	memset(f->text[0], 'd', ALERT_DESCRIPTION_MAX);
	memset(f->text[1], 'i', ALERT_INSTRUCTION_MAX);
	for (size_t i = 0; i < ALERT_MAX_INFO; i++) {
		f->info[i].description = f->text[0];
		f->info[i].instruction = f->text[1];
	}
	f->alert.n_info = ALERT_MAX_INFO;
	CHECK_CODE(t, alert_validate(&f->alert, &err), 0);
	CHECK_CODE(t, alert_encode(&f->alert, &bytes, &len, &err), XBA_ETOOBIG);
	CHECK(t, bytes == NULL);
	CHECK_CONTAINS(t, err.msg, "at most 65536");

	big = raw_pack(&f->alert, &len);
	CHECK(t, len > ALERT_MAX_BYTES);
	CHECK(t, alert_decode(big, len, &err) == NULL);
	CHECK_CODE(t, err.code, XBA_ETOOBIG);
	CHECK(t, alert_decode(big, ALERT_MAX_BYTES + 1, &err) == NULL);
	CHECK_CODE(t, err.code, XBA_ETOOBIG);
	free(big);
	free(f);
}

/* Outcome of decoding bytes that may be anything: refused with a known code and a message, or a valid alert that
 * encodes, decodes again and is the same alert. */
static void
check_consistent(struct check_state *t, const uint8_t *bytes, size_t len)
{
	struct xba_error err = { 0 };
	Xba__V1__Alert *a = alert_decode(bytes, len, &err), *b;
	uint8_t *enc = NULL;
	size_t enc_len = 0;

	if (a == NULL) {
		CHECK(t, err.code < 0 && err.code >= XBA_EPROTO && err.msg[0] != '\0');
		CHECK(t, err.code != XBA_ENOMEM && err.code != XBA_EINVAL);
		return;
	}
	CHECK_CODE(t, alert_encode(a, &enc, &enc_len, &err), 0);
	b = alert_decode(enc, enc_len, &err);
	CHECK(t, b != NULL && same_alert(a, b));
	alert_free(a);
	alert_free(b);
	free(enc);
}

static void
test_truncated(struct check_state *t)
{
	struct fixture *f = fixture_new();
	struct xba_error err = { 0 };
	uint8_t *bytes = NULL;
	size_t len = 0;

	CHECK_CODE(t, alert_encode(&f->alert, &bytes, &len, &err), 0);
	/* The note is the last field on the wire: one byte short cuts it in the middle. */
	CHECK(t, alert_decode(bytes, len - 1, &err) == NULL);
	CHECK_CODE(t, err.code, XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, "not a valid alert (protobuf decode failed)");
	CHECK(t, alert_decode(bytes, 0, &err) == NULL);
	CHECK_CODE(t, err.code, XBA_EREQUIRED);
	CHECK_CONTAINS(t, err.msg, "id: required");
	CHECK(t, alert_decode(NULL, 0, &err) == NULL);
	for (size_t cut = 0; cut < len; cut++)
		check_consistent(t, bytes, cut);
	free(bytes);
	free(f);
}

static void
test_garbage(struct check_state *t)
{
	struct xba_error err = { 0 };
	uint8_t junk[256];
	uint32_t x = 2463534242u;

	memset(junk, 0xff, sizeof(junk));
	CHECK(t, alert_decode(junk, sizeof(junk), &err) == NULL);
	CHECK_CODE(t, err.code, XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, "not a valid alert");
	memcpy(junk, "{\"id\": \"not protobuf\"}", 22);
	CHECK(t, alert_decode(junk, 22, &err) == NULL);
	CHECK(t, err.code == XBA_EDECODE);
	for (int round = 0; round < 2000; round++) {
		size_t n = 1 + (size_t)(round % (int)sizeof(junk));

		for (size_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			junk[i] = (uint8_t)x;
		}
		check_consistent(t, junk, n);
	}
}

/* A bit flipped anywhere, say by a broken link under a valid transport checksum, must never crash the decoder
 * nor produce an alert that does not survive its own round trip. */
static void
test_bit_flips(struct check_state *t)
{
	struct fixture *f = fixture_new();
	struct xba_error err = { 0 };
	uint8_t *bytes = NULL;
	size_t len = 0, refused = 0;

	CHECK_CODE(t, alert_encode(&f->alert, &bytes, &len, &err), 0);
	for (size_t bit = 0; bit < len * 8; bit++) {
		Xba__V1__Alert *a;

		bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		check_consistent(t, bytes, len);
		a = alert_decode(bytes, len, &err);
		refused += a == NULL;
		alert_free(a);
		bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CHECK(t, refused > 0);
	free(bytes);
	free(f);
}

/* Values that only a hand-made byte string can carry: the struct cannot express them. */
static void
test_wire_only(struct check_state *t)
{
	struct fixture *f = fixture_new();
	struct xba_error err = { 0 };
	uint8_t *bytes, *buf;
	size_t len, at;

	bytes = raw_pack(&f->alert, &len);
	buf = malloc(len + 16);

	/* Field 21 does not exist in v1: appended as a varint. */
	memcpy(buf, bytes, len);
	memcpy(buf + len, "\xa8\x01\x01", 3);
	CHECK(t, alert_decode(buf, len + 3, &err) == NULL);
	CHECK_CODE(t, err.code, XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, "unknown field number 21");

	/* A second author: protobuf-c would keep only the last one. */
	memcpy(buf, bytes, len);
	memcpy(buf + len, "\x1a\x03" "Eve", 5);
	CHECK(t, alert_decode(buf, len + 5, &err) == NULL);
	CHECK_CODE(t, err.code, XBA_EDECODE);
	CHECK_CONTAINS(t, err.msg, "author: field appears more than once");

	/* A NUL inside the headline: protobuf-c would cut the text there and receivers would never see the rest. */
	memcpy(buf, bytes, len);
	at = find_bytes(buf, len, HEADLINE_FR);
	CHECK(t, at != SIZE_MAX);
	if (at != SIZE_MAX) {
		buf[at + 5] = 0;
		CHECK(t, alert_decode(buf, len, &err) == NULL);
		CHECK_CODE(t, err.code, XBA_EUTF8);
		CHECK_CONTAINS(t, err.msg, "info[0].headline: contains a NUL byte");
	}

	/* The same inside a nested geocode value. */
	memcpy(buf, bytes, len);
	at = find_bytes(buf, len, "NE-ASSAMAKA");
	CHECK(t, at != SIZE_MAX);
	if (at != SIZE_MAX) {
		buf[at + 2] = 0;
		CHECK(t, alert_decode(buf, len, &err) == NULL);
		CHECK_CODE(t, err.code, XBA_EUTF8);
		CHECK_CONTAINS(t, err.msg, "areas[0].geocodes[0].value: contains a NUL byte");
	}

	/* Category 99 (field 9, varint) where the field was absent: protobuf-c keeps any number in an open enum. */
	f->alert.category = 0;
	free(bytes);
	bytes = raw_pack(&f->alert, &len);
	memcpy(buf, bytes, len);
	memcpy(buf + len, "\x48\x63", 2);
	CHECK(t, alert_decode(buf, len + 2, &err) == NULL);
	CHECK_CODE(t, err.code, XBA_EENUM);
	CHECK_CONTAINS(t, err.msg, "category: unknown value 99");

	/* TLP 42 (field 13) likewise. */
	f->alert.category = XBA__V1__CATEGORY__CATEGORY_HEALTH;
	f->alert.tlp = 0;
	free(bytes);
	bytes = raw_pack(&f->alert, &len);
	memcpy(buf, bytes, len);
	memcpy(buf + len, "\x68\x2a", 2);
	CHECK(t, alert_decode(buf, len + 2, &err) == NULL);
	CHECK_CODE(t, err.code, XBA_EENUM);
	CHECK_CONTAINS(t, err.msg, "tlp: unknown value 42");
	free(buf);
	free(bytes);
	free(f);
}

static void
test_info_for_language(struct check_state *t)
{
	struct fixture *f = fixture_new();
	const Xba__V1__Alert *a = &f->alert;

	f->info[2].language = "fr-NE";
	f->alert.n_info = 3;
	CHECK(t, alert_info_for_language(a, "ar") == &f->info[1]);
	CHECK(t, alert_info_for_language(a, "AR") == &f->info[1]);
	CHECK(t, alert_info_for_language(a, "fr-ne") == &f->info[2]);
	CHECK(t, alert_info_for_language(a, "fr") == &f->info[0]);
	CHECK(t, alert_info_for_language(a, "ar-EG") == &f->info[1]);
	CHECK(t, alert_info_for_language(a, "fr-TD") == &f->info[0]);
	CHECK(t, alert_info_for_language(a, "en") == &f->info[0]);
	CHECK(t, alert_info_for_language(a, "a") == &f->info[0]);
	CHECK(t, alert_info_for_language(a, "") == &f->info[0]);
	CHECK(t, alert_info_for_language(a, NULL) == &f->info[0]);
	f->alert.n_info = 0;
	CHECK(t, alert_info_for_language(a, "fr") == NULL);
	free(f);
}

static const ProtobufCEnumDescriptor *const enum_descriptors[] = {
	[ALERT_ENUM_STATUS] = &xba__v1__status__descriptor,
	[ALERT_ENUM_MSG_TYPE] = &xba__v1__msg_type__descriptor,
	[ALERT_ENUM_CATEGORY] = &xba__v1__category__descriptor,
	[ALERT_ENUM_SEVERITY] = &xba__v1__severity__descriptor,
	[ALERT_ENUM_URGENCY] = &xba__v1__urgency__descriptor,
	[ALERT_ENUM_CERTAINTY] = &xba__v1__certainty__descriptor,
	[ALERT_ENUM_TLP] = &xba__v1__tlp__descriptor,
};

/* Every value of every kind: name -> parse -> same value, in the spellings operators use; and the tables still
 * match the .proto (a value added there without a name here fails). */
static void
test_enum_names(struct check_state *t)
{
	static const char *const kinds[] = { "status", "msg_type", "category", "severity", "urgency", "certainty",
		"tlp" };

	for (int k = ALERT_ENUM_STATUS; k <= ALERT_ENUM_TLP; k++) {
		const ProtobufCEnumDescriptor *d = enum_descriptors[k];
		int max = alert_enum_max(k), v = -1;

		CHECK(t, strcmp(alert_enum_kind_name(k), kinds[k]) == 0);
		CHECK(t, max == (int)d->n_values - 1 && d->values[max].value == max);
		CHECK(t, alert_enum_name(k, 0) == NULL && alert_enum_name(k, max + 1) == NULL);
		CHECK(t, alert_enum_name(k, -1) == NULL);
		CHECK_CODE(t, alert_enum_parse(k, "unspecified", &v), XBA_EENUM);
		CHECK_CODE(t, alert_enum_parse(k, "UNSPECIFIED", &v), XBA_EENUM);
		CHECK_CODE(t, alert_enum_parse(k, "", &v), XBA_EENUM);
		CHECK_CODE(t, alert_enum_parse(k, NULL, &v), XBA_EENUM);
		CHECK_CODE(t, alert_enum_parse(k, "0", &v), XBA_EENUM);
		CHECK(t, v == -1);
		for (int value = 1; value <= max; value++) {
			const char *name = alert_enum_name(k, value);
			char upper[40], under[40];

			CHECK(t, name != NULL);
			if (name == NULL)
				continue;
			CHECK(t, alert_enum_parse(k, name, &v) == 0 && v == value);
			for (size_t i = 0; i <= strlen(name); i++) {
				upper[i] = name[i] >= 'a' && name[i] <= 'z' ? (char)(name[i] - 'a' + 'A') : name[i];
				under[i] = name[i] == '-' ? '_' : name[i];
			}
			v = -1;
			CHECK(t, alert_enum_parse(k, upper, &v) == 0 && v == value);
			v = -1;
			CHECK(t, alert_enum_parse(k, under, &v) == 0 && v == value);
		}
	}
	{
		int v = 0;

		CHECK(t, alert_enum_parse(ALERT_ENUM_TLP, "TLP:AMBER+STRICT", &v) == 0 && v == 4);
		CHECK(t, alert_enum_parse(ALERT_ENUM_TLP, "tlp:red", &v) == 0 && v == 5);
		CHECK_CODE(t, alert_enum_parse(ALERT_ENUM_TLP, "tlp:", &v), XBA_EENUM);
		CHECK_CODE(t, alert_enum_parse(ALERT_ENUM_SEVERITY, "tlp:extreme", &v), XBA_EENUM);
		CHECK(t, alert_enum_parse(ALERT_ENUM_CATEGORY, "Search_And_Rescue", &v) == 0 && v == 5);
		CHECK(t, alert_enum_parse(ALERT_ENUM_CATEGORY, "border-incident", &v) == 0 && v == 1);
		CHECK(t, alert_enum_parse(ALERT_ENUM_CATEGORY, "population-movement", &v) == 0 && v == 6);
		CHECK_CODE(t, alert_enum_parse(ALERT_ENUM_CATEGORY, "health ", &v), XBA_EENUM);
		CHECK_CODE(t, alert_enum_parse(ALERT_ENUM_MSG_TYPE, "acknowledge", &v), XBA_EENUM);
		CHECK(t, strcmp(alert_enum_name(ALERT_ENUM_TLP, 4), "amber+strict") == 0);
		CHECK(t, strcmp(alert_enum_name(ALERT_ENUM_CATEGORY, 5), "search-and-rescue") == 0);
	}
}

int
main(int argc, char **argv)
{
	struct check_state state = { 0 }, *t = &state;

	(void)argc;
	(void)argv;
	RUN(t, test_round_trip);
	RUN(t, test_minimal_ack);
	RUN(t, test_headline_limit);
	RUN(t, test_submission_checks);
	RUN(t, test_utf8_every_field);
	RUN(t, test_oversize);
	RUN(t, test_truncated);
	RUN(t, test_garbage);
	RUN(t, test_bit_flips);
	RUN(t, test_wire_only);
	RUN(t, test_info_for_language);
	RUN(t, test_enum_names);
#define RUN_REJECT(name, ...) RUN(t, test_reject_##name);
	REJECT_CASES(RUN_REJECT)
	return check_finish(t);
}
