/* totp: see totp.h. */
#include "totp.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

uint32_t totp_code(const unsigned char *key, size_t key_len, int64_t step)
{
	unsigned char msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	uint64_t s = (uint64_t)step;
	for (int i = 7; i >= 0; i--, s >>= 8)
		msg[i] = (unsigned char)(s & 0xff);
	if (!HMAC(EVP_sha1(), key, (int)key_len, msg, sizeof msg, mac, &mac_len) || mac_len < 20)
		return UINT32_MAX; /* never a 6-digit code */
	unsigned off = mac[mac_len - 1] & 0x0f;
	uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
	               ((uint32_t)mac[off + 2] << 8) | (uint32_t)mac[off + 3];
	return bin % 1000000u;
}

int totp_base32_encode(const unsigned char *in, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			if (o + 1 >= cap)
				return -1;
			out[o++] = b32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0) {
		if (o + 1 >= cap)
			return -1;
		out[o++] = b32[(acc << (5 - bits)) & 31];
	}
	if (o >= cap)
		return -1;
	out[o] = 0;
	return (int)o;
}

int totp_base32_decode(const char *in, unsigned char *out, size_t cap)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (; *in; in++) {
		if (*in == ' ' || *in == '=')
			continue;
		const char *p = strchr(b32, toupper((unsigned char)*in));
		if (!p || !*in)
			return -1;
		acc = (acc << 5) | (uint32_t)(p - b32);
		bits += 5;
		if (bits >= 8) {
			if (o >= cap)
				return -1;
			out[o++] = (unsigned char)((acc >> (bits - 8)) & 0xff);
			bits -= 8;
		}
	}
	return (int)o;
}

int64_t totp_parse_code(const char *s)
{
	int64_t v = 0;
	int digits = 0;
	for (; s && *s; s++) {
		if (*s == ' ')
			continue;
		if (*s < '0' || *s > '9' || ++digits > TOTP_DIGITS)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return digits == TOTP_DIGITS ? v : -1;
}
