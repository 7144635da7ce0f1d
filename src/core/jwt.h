/* jwt: checking the signature of a JSON Web Token (a JWS in compact form)
 * against a JSON Web Key Set, through OpenSSL's EVP: RS256 and ES256, the
 * algorithms OpenID providers sign ID tokens with. Claims (iss, aud, exp…) are
 * the caller's to check (hub/oidc.c). "none" and the HMAC algorithms are
 * refused: a provider's token is never checked with a shared secret here.
 *
 * Threads: pure; any thread. */
#ifndef ROOST_JWT_H
#define ROOST_JWT_H

#include <jansson.h>
#include <stddef.h>

#define JWT_MAX 16384 /* longest token accepted, bytes */

/* Check tok's signature with the key of jwks ({"keys":[…]}) its header names
 * (kid; without one, the only key of its type). 0 and *claims (new reference)
 * when it holds; -ENOKEY no such key (the set may be stale: refetch once);
 * -EBADMSG malformed or a bad signature; -ENOTSUP an algorithm we refuse.
 * kid (cap bytes) gets the header's kid, "" without one, for messages. */
int jwt_verify(const char *tok, json_t *jwks, json_t **claims, char *kid, size_t cap);

/* base64url without padding into out (cap bytes); its length, or -1. */
long jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap);
/* base64url without padding of in (out holds 4*len/3+4 bytes). */
void jwt_b64url_encode(const unsigned char *in, size_t len, char *out, size_t cap);

#endif
