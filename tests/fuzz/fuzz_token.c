/* fuzz_token: parsing and verifying hub-signed content tokens (token_verify,
 * src/core/token.c), which hosts and the hub run on every token from a URL or
 * an Authorization header. The first byte picks a mode:
 *   even: the rest is a token as it comes from the network; it must not
 *         verify unless it is a well-formed token signed with our key;
 *   odd:  the rest is a claims document that the harness signs with the
 *         known key, as the hub would; it must verify exactly when it is a
 *         JSON object naming that key (kid) with an unexpired integer exp.
 * Either way a verified token's claims are those in its first part. */
#include "fuzz.h"
#include "../../src/core/json.h"
#include "../../src/core/token.h"
#include "../../src/core/util.h"

static unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];

static bool key_of(void *cls, const char *kid, unsigned char out[crypto_sign_PUBLICKEYBYTES])
{
	(void)cls;
	if (strcmp(kid, "k1") != 0)
		return false;
	memcpy(out, pk, sizeof pk);
	return true;
}

static char *b64(const void *bin, size_t len)
{
	size_t n = sodium_base64_ENCODED_LEN(len, TOKEN_B64);
	char *out = xmalloc(n);
	sodium_bin2base64(out, n, bin, len, TOKEN_B64);
	return out;
}

/* A token over exactly these claim bytes, signed with sk. */
static char *sign(const uint8_t *claims, size_t len)
{
	char *head = b64(claims, len);
	unsigned char sig[crypto_sign_BYTES];
	crypto_sign_detached(sig, NULL, (const unsigned char *)head, strlen(head), sk);
	char *s = b64(sig, sizeof sig);
	char *tok = xasprintf("%s.%s", head, s);
	free(head);
	free(s);
	return tok;
}

/* Should claims bytes signed with our key verify? */
static bool acceptable(const uint8_t *claims, size_t len, size_t toklen)
{
	json_t *c = json_loadb((const char *)claims, len, 0, NULL);
	const char *kid = json_get_str(c, "kid");
	int64_t exp = 0;
	bool ok = toklen <= 4096 && kid && strcmp(kid, "k1") == 0 && json_get_int(c, "exp", &exp) &&
	          exp > now_ms();
	json_decref(c);
	return ok;
}

static void check_claims(const char *tok, json_t *claims)
{
	FUZZ_CHECK(json_is_object(claims));
	const char *kid = json_get_str(claims, "kid");
	int64_t exp = 0;
	FUZZ_CHECK(kid && strcmp(kid, "k1") == 0);
	FUZZ_CHECK(json_get_int(claims, "exp", &exp) && exp > now_ms() - 60000);
	/* The signature covers the first part, and those are the claims. */
	const char *dot = strchr(tok, '.');
	FUZZ_CHECK(dot);
	unsigned char *bin = xmalloc((size_t)(dot - tok) + 1);
	size_t n = 0;
	FUZZ_CHECK(sodium_base642bin(bin, (size_t)(dot - tok) + 1, tok, (size_t)(dot - tok), NULL,
	                             &n, NULL, TOKEN_B64) == 0);
	json_t *again = json_loadb((const char *)bin, n, 0, NULL);
	FUZZ_CHECK(json_equal(again, claims));
	json_decref(again);
	free(bin);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		unsigned char seed[crypto_sign_SEEDBYTES] = {1, 2, 3};
		if (sodium_init() < 0)
			abort();
		crypto_sign_seed_keypair(pk, sk, seed);
		ready = true;
	}
	if (size < 1)
		return 0;
	bool signed_here = data[0] & 1;
	char *tok = signed_here ? sign(data + 1, size - 1) : fuzz_cstr(data + 1, size - 1);
	const char *why = NULL;
	json_t *claims = token_verify(tok, key_of, NULL, now_ms(), &why);
	if (claims) {
		FUZZ_CHECK(!why);
		check_claims(tok, claims);
	} else {
		FUZZ_CHECK(why && *why);
	}
	if (signed_here)
		FUZZ_CHECK(!!claims == acceptable(data + 1, size - 1, strlen(tok)));
	json_decref(claims);
	free(tok);
	unsigned char k[crypto_sign_PUBLICKEYBYTES];
	char *s = fuzz_cstr(data, size);
	if (token_parse_key(s, k))
		FUZZ_CHECK(strlen(s) >= 43);
	free(s);
	return 0;
}
