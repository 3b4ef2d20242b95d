/*
 * encoding.c — hex, base64 and Z85 (see encoding.h).  Base64 goes through OpenSSL's EVP block coder; Z85 through
 * libzmq's decoder, so a CURVE key we accept is exactly one libzmq accepts.
 */
#include "encoding.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "error.h"

char *
encoding_hex(const uint8_t *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 0xf];
	}
	out[2 * len] = '\0';
	return out;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
encoding_unhex(const char *text, uint8_t *out, size_t out_len)
{
	if (text == NULL || strlen(text) != 2 * out_len)
		return XBA_EDECODE;
	for (size_t i = 0; i < out_len; i++) {
		int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return XBA_EDECODE;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

char *
encoding_base64(const uint8_t *bytes, size_t len, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, bytes, (int)len);
	return out;
}

int
encoding_unbase64(const char *text, uint8_t *out, size_t out_len)
{
	size_t text_len, padding = 0;
	unsigned char *buf;
	int n;

	if (text == NULL)
		return XBA_EDECODE;
	text_len = strlen(text);
	/* EVP_DecodeBlock accepts stray whitespace and does not report padding, so check the shape first. */
	if (text_len == 0 || text_len % 4 != 0 || text_len / 4 * 3 < out_len || text_len / 4 * 3 > out_len + 2)
		return XBA_EDECODE;
	for (size_t i = 0; i < text_len; i++) {
		char c = text[i];

		if (c == '=' && i >= text_len - 2) {
			padding++;
			continue;
		}
		if (padding > 0 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '+' || c == '/'))
			return XBA_EDECODE;
	}
	if (text_len / 4 * 3 - padding != out_len)
		return XBA_EDECODE;
	buf = malloc(text_len / 4 * 3);
	if (buf == NULL)
		return XBA_ENOMEM;
	n = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)text_len);
	if (n < 0 || (size_t)n < out_len) {
		free(buf);
		return XBA_EDECODE;
	}
	memcpy(out, buf, out_len);
	free(buf);
	return 0;
}

int
encoding_z85_key(const char *text, uint8_t out[32])
{
	static const char alphabet[] =
	    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

	if (text == NULL || strlen(text) != 40 || strspn(text, alphabet) != 40)
		return XBA_EDECODE;
	if (zmq_z85_decode(out, text) == NULL)
		return XBA_EDECODE;
	return 0;
}
