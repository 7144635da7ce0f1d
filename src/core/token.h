/* token: verifying hub-signed content tokens (Ed25519), shared by the hub and
 * hosts. A token is base64url(JSON claims) "." base64url(signature over the
 * first part); the claims name the signing key (kid) and expiry (exp, ms).
 *
 * Threads: any thread; the key lookup it is given must be safe where it is called.
 */
#ifndef ROOST_TOKEN_H
#define ROOST_TOKEN_H

#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>

#define TOKEN_B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* Find the public key named kid: true with pk filled, false if unknown. */
typedef bool (*token_key_fn)(void *cls, const char *kid,
                             unsigned char pk[crypto_sign_PUBLICKEYBYTES]);

/* The claims of a well-signed token unexpired at now (ms since the epoch by the
 * hub's clock: the hub's now_ms(), a host's or relay's keyring_now_ms()), or
 * NULL with *why set. */
json_t *token_verify(const char *tok, token_key_fn key, void *cls, int64_t now, const char **why);
/* Decode a base64url public key. */
bool token_parse_key(const char *b64, unsigned char pk[crypto_sign_PUBLICKEYBYTES]);

#endif
