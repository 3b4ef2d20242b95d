/*
 * error.h — the one error vocabulary of XBA.
 *
 * Every function that can fail returns 0 or a negative enum xba_err and, when the caller passed one, fills a
 * struct xba_error with a human message that names the field, file position or key that was wrong.  Codes are
 * what programs branch on; messages are what operators read.  frame.c maps codes to wire ErrorCodes.
 */
#ifndef XBA_ERROR_H
#define XBA_ERROR_H

#include <stddef.h>

/* printf-format checking: GCC and clang both understand it, and -Wformat then catches mismatched arguments in
 * every error and log call.  Other compilers get nothing. */
#if defined(__GNUC__) || defined(__clang__)
#define XBA_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#define XBA_NORETURN __attribute__((noreturn))
#else
#define XBA_PRINTF(fmt_index, first_arg)
#define XBA_NORETURN
#endif

enum xba_err {
	XBA_OK = 0,
	XBA_EINVAL = -1,          /* bad argument from a caller or the command line */
	XBA_ENOMEM = -2,
	XBA_EIO = -3,             /* a file or socket operation failed; message carries strerror */
	XBA_EDECODE = -4,         /* bytes that do not decode (protobuf, base64, Z85, PEM) */
	XBA_ETOOBIG = -5,         /* over a size limit */
	XBA_EREQUIRED = -6,       /* a required field is missing or unspecified */
	XBA_ETOOLONG = -7,        /* a text field over its length limit, or a list over its count limit */
	XBA_EUTF8 = -8,           /* text that is not valid UTF-8 */
	XBA_EENUM = -9,           /* an enum value outside its range */
	XBA_ESYNTAX = -10,        /* a value of the wrong shape: node id, UUID, language tag, time */
	XBA_EGEO = -11,           /* a polygon not closed, a point outside lat/lon bounds, a bad circle */
	XBA_ETIME = -12,          /* times inconsistent: expiry before sent */
	XBA_ESIG = -13,           /* signature does not verify */
	XBA_EKEYUNKNOWN = -14,    /* key id not in the directory */
	XBA_EKEYREVOKED = -15,    /* key revoked at the time of use */
	XBA_EKEYVALIDITY = -16,   /* key outside its validity window */
	XBA_EWRONGSIGNER = -17,   /* key belongs to a node other than the alert's origin */
	XBA_EKEYPERM = -18,       /* private key file readable by group or others */
	XBA_EKEY = -19,           /* a key file or key text that is not a usable key */
	XBA_ECONFIG = -20,        /* a YAML file that is not what it should be (message has file:line:col) */
	XBA_EDUPLICATE = -21,     /* a duplicate id: node, key, group, rule, alert */
	XBA_ENOTFOUND = -22,      /* a lookup found nothing */
	XBA_ECRYPTO = -23,        /* the crypto library failed in a way that is not the input's fault */
	XBA_EPROTO = -24,         /* a frame that is well-formed but wrong here (type, order, version) */
	XBA_EDAMAGED = -25,       /* a file whose own structure is broken: SQLite says "malformed", or a cut header */
	XBA_EBUSY = -26,          /* a file locked by another process for longer than the wait allowed */
};

#define XBA_ERROR_MSG_MAX 512

struct xba_error {
	int code;                         /* enum xba_err; XBA_OK when nothing failed */
	char msg[XBA_ERROR_MSG_MAX];      /* one line, no trailing newline */
};

/* Short name of a code ("bad-signature"), for key=value log lines; never NULL. */
const char *xba_strerror(int code);

/* Fill err (may be NULL) with code and a printf-style message; returns code so callers can `return xba_error_set(...)`. */
int xba_error_set(struct xba_error *err, int code, const char *fmt, ...)
	XBA_PRINTF(3, 4);

/* Prepend "prefix: " to err's message, keeping its code; returns the code. */
int xba_error_prefix(struct xba_error *err, const char *fmt, ...) XBA_PRINTF(2, 3);

void xba_error_clear(struct xba_error *err);

#endif
