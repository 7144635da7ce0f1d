/* totp: RFC 6238 one-time codes (HMAC-SHA-1, 30-second steps, 6 digits) and
 * the RFC 4648 base32 their secrets travel in (otpauth:// URIs, authenticator
 * apps). Pure functions; any thread. */
#ifndef ROOST_CORE_TOTP_H
#define ROOST_CORE_TOTP_H

#include <stddef.h>
#include <stdint.h>

#define TOTP_STEP_S     30
#define TOTP_DIGITS     6
#define TOTP_SECRET_LEN 20 /* bytes: SHA-1's block of key, as RFC 4226 advises */

/* The code of time step `step` (unix seconds / TOTP_STEP_S) for key. */
uint32_t totp_code(const unsigned char *key, size_t key_len, int64_t step);
/* Base32 (upper case, no padding) of n bytes into out (cap bytes); its
 * length, or -1 if it does not fit. */
int totp_base32_encode(const unsigned char *in, size_t n, char *out, size_t cap);
/* Decode base32 (either case, spaces and '=' ignored) into out; the bytes
 * written, or -1 for a character outside the alphabet or no room. */
int totp_base32_decode(const char *in, unsigned char *out, size_t cap);
/* Parse a code the user typed: exactly six digits (spaces allowed between);
 * the value, or -1. */
int64_t totp_parse_code(const char *s);
#endif
