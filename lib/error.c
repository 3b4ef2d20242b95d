/*
 * error.c — fills struct xba_error and names codes.  Used on every path where an alert, frame, key or YAML file
 * can be refused, so that the refusal reaches a log line or an operator's terminal with its reason.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *
xba_strerror(int code)
{
	switch (code) {
	case XBA_OK: return "ok";
	case XBA_EINVAL: return "invalid-argument";
	case XBA_ENOMEM: return "out-of-memory";
	case XBA_EIO: return "io-error";
	case XBA_EDECODE: return "malformed";
	case XBA_ETOOBIG: return "too-big";
	case XBA_EREQUIRED: return "missing-field";
	case XBA_ETOOLONG: return "too-long";
	case XBA_EUTF8: return "invalid-utf8";
	case XBA_EENUM: return "unknown-enum-value";
	case XBA_ESYNTAX: return "bad-syntax";
	case XBA_EGEO: return "bad-geometry";
	case XBA_ETIME: return "bad-time";
	case XBA_ESIG: return "bad-signature";
	case XBA_EKEYUNKNOWN: return "unknown-key";
	case XBA_EKEYREVOKED: return "key-revoked";
	case XBA_EKEYVALIDITY: return "key-not-valid";
	case XBA_EWRONGSIGNER: return "wrong-signer";
	case XBA_EKEYPERM: return "key-file-permissions";
	case XBA_EKEY: return "bad-key";
	case XBA_ECONFIG: return "bad-config";
	case XBA_EDUPLICATE: return "duplicate";
	case XBA_ENOTFOUND: return "not-found";
	case XBA_ECRYPTO: return "crypto-failure";
	case XBA_EPROTO: return "protocol-error";
	case XBA_EDAMAGED: return "damaged-file";
	case XBA_EBUSY: return "busy";
	}
	return "unknown-error";
}

int
xba_error_set(struct xba_error *err, int code, const char *fmt, ...)
{
	if (err != NULL) {
		va_list ap;

		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

int
xba_error_prefix(struct xba_error *err, const char *fmt, ...)
{
	char prefix[XBA_ERROR_MSG_MAX], old[XBA_ERROR_MSG_MAX];
	va_list ap;

	if (err == NULL)
		return XBA_EINVAL;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* A message cut at XBA_ERROR_MSG_MAX still names its prefix, which is what matters most. */
	if (snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old) >= (int)sizeof(err->msg))
		err->msg[sizeof(err->msg) - 1] = '\0';
	return err->code;
}

void
xba_error_clear(struct xba_error *err)
{
	if (err != NULL) {
		err->code = XBA_OK;
		err->msg[0] = '\0';
	}
}
