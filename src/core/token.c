/* token: see token.h. */
#include "token.h"
#include "json.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Decode into a new buffer; NULL if not valid base64url. */
static unsigned char *unb64(const char *s, size_t slen, size_t *len)
{
	unsigned char *out = xmalloc(slen + 1);
	if (sodium_base642bin(out, slen + 1, s, slen, NULL, len, NULL, TOKEN_B64) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

bool token_parse_key(const char *b64, unsigned char pk[crypto_sign_PUBLICKEYBYTES])
{
	size_t n = 0;
	return b64 &&
	       sodium_base642bin(pk, crypto_sign_PUBLICKEYBYTES, b64, strlen(b64), NULL, &n, NULL,
	                         TOKEN_B64) == 0 &&
	       n == crypto_sign_PUBLICKEYBYTES;
}

json_t *token_verify(const char *tok, token_key_fn key, void *cls, int64_t now, const char **why)
{
	const char *dot = tok ? strchr(tok, '.') : NULL;
	*why = "the token is malformed";
	if (!dot || strlen(tok) > 4096)
		return NULL;
	size_t plen = (size_t)(dot - tok), jlen = 0, slen = 0;
	unsigned char *pj = unb64(tok, plen, &jlen);
	unsigned char *sig = unb64(dot + 1, strlen(dot + 1), &slen);
	json_t *claims = pj ? json_loadb((const char *)pj, jlen, 0, NULL) : NULL;
	free(pj);
	const char *kid = json_get_str(claims, "kid");
	int64_t exp = 0;
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	if (!sig || slen != crypto_sign_BYTES || !kid || !json_get_int(claims, "exp", &exp))
		goto fail;
	*why = "the token's signing key is unknown or retired";
	if (!key(cls, kid, pk))
		goto fail;
	*why = "the token's signature is not valid";
	if (crypto_sign_verify_detached(sig, (const unsigned char *)tok, plen, pk) != 0)
		goto fail;
	*why = "the token has expired";
	if (exp <= now)
		goto fail;
	free(sig);
	*why = NULL;
	return claims;
fail:
	free(sig);
	json_decref(claims);
	return NULL;
}
