/*
 * alertyaml.h — an alert written by an officer as a YAML file (docs/alert-yaml.md), into the wire Alert.
 *
 * Flow: the first step of an alert's life.  `xba send FILE.yaml` loads the file here, lets the agent fill what the
 * officer leaves out (id, origin, sent), and the agent validates, signs and queues it; `xba rules explain` loads
 * the same files offline to show who would receive them.  Every mistake is reported as
 * "file:line:col: key.path: message" (XBA_ECONFIG) through yamltree.h.
 *
 * What is checked here: the keys (unknown ones refused), the shape of every value (map, list, text, number,
 * bool), enum names (the message lists the valid ones), times and durations, node ids, UUIDs, language tags,
 * lengths and counts (alert.h limits), coordinates and closed polygons, the keys each item needs.  What is not:
 * whether the alert is complete (id, origin, sent, author, tlp, the fields its msg_type requires).  The result
 * may be incomplete on purpose; the caller runs alert_validate() once it has filled the rest.
 */
#ifndef XBA_ALERTYAML_H
#define XBA_ALERTYAML_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "xba.pb-c.h"

#define ALERTYAML_MAX_BYTES (256u * 1024)     /* an alert file */
#define ALERTYAML_MAX_DURATION_DAYS 3650      /* "expires: 10d" and friends: at most ten years */

/*
 * Load an alert file of at most ALERTYAML_MAX_BYTES.  Returns the alert, which the caller frees with
 * alertyaml_free(), or NULL with err filled: XBA_ECONFIG ("file:line:col: path: message") for anything wrong in
 * the file, XBA_EIO, XBA_ETOOBIG, XBA_ENOMEM.
 *
 * Defaults: status actual, msg_type alert.  Fields the file leaves out stay empty ("" or 0).  A relative expiry
 * ("6h") counts from `sent` when the file gives it, otherwise from the time of loading.
 *
 * Ownership: the whole tree is allocated with malloc in protobuf-c's layout, so alertyaml_free(),
 * alert_free() and xba__v1__alert__free_unpacked(alert, NULL) are the same.  A string field is either
 * protobuf_c_empty_string or malloc'ed; replace one with alertyaml_set_text().
 */
Xba__V1__Alert *alertyaml_load(const char *path, struct xba_error *err);
/*
 * alertyaml_load for `xba send FILE`: *expires_in_ms is the file's `expires` when that is a duration and the file
 * gives no `sent` (else 0), so that the agent counts it from the sent time it gives the alert
 * (SubmitRequest.expires_in_ms): this machine's clock may be wrong.
 */
Xba__V1__Alert *alertyaml_load_for_submit(const char *path, int64_t *expires_in_ms, struct xba_error *err);
/* The same from memory; name is what messages call the file. */
Xba__V1__Alert *alertyaml_load_buffer(const char *name, const char *data, size_t len, struct xba_error *err);
/* Accepts NULL. */
void alertyaml_free(Xba__V1__Alert *alert);

/*
 * Replace the string field *field of a loaded alert (&alert->id, &alert->origin, &alert->author) with a copy of
 * text, freeing the old value.  0 or XBA_ENOMEM (the field then keeps its old value).
 */
int alertyaml_set_text(char **field, const char *text, struct xba_error *err);

#endif
