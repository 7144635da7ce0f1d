/* jwt: a JWS's signature checked against a JWK Set (jwt.h). Keys are built
 * from their JWK members with EVP_PKEY_fromdata, so no PEM round trip and no
 * library beyond the OpenSSL every roost process links. */
#include "jwt.h"
#include "util.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>

#define JWT_PART_MAX 8192 /* a decoded header, or a signature */

long jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	size_t n = 0;
	if (sodium_base642bin(out, cap, in, len, NULL, &n, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return -1;
	return (long)n;
}

void jwt_b64url_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
	sodium_bin2base64(out, cap, in, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* A base64url member of a JWK as bytes (new, *n its length), or NULL. */
static unsigned char *jwk_bytes(json_t *jwk, const char *key, size_t *n)
{
	const char *s = json_string_value(json_object_get(jwk, key));
	if (!s || strlen(s) > 2048)
		return NULL;
	unsigned char *b = xmalloc(strlen(s) + 1);
	long got = jwt_b64url_decode(s, strlen(s), b, strlen(s) + 1);
	if (got <= 0) {
		free(b);
		return NULL;
	}
	*n = (size_t)got;
	return b;
}

static EVP_PKEY *fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

static EVP_PKEY *rsa_key(json_t *jwk)
{
	size_t nn = 0, en = 0;
	unsigned char *n = jwk_bytes(jwk, "n", &nn), *e = jwk_bytes(jwk, "e", &en);
	EVP_PKEY *pkey = NULL;
	BIGNUM *bn = n ? BN_bin2bn(n, (int)nn, NULL) : NULL;
	BIGNUM *be = e ? BN_bin2bn(e, (int)en, NULL) : NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	/* 2048 bits at least: a shorter key is not one a provider should use */
	if (bn && be && bld && BN_num_bits(bn) >= 2048 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		pkey = fromdata("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	free(n);
	free(e);
	return pkey;
}

static EVP_PKEY *ec_key(json_t *jwk)
{
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	if (!crv || strcmp(crv, "P-256") != 0)
		return NULL;
	size_t xn = 0, yn = 0;
	unsigned char *x = jwk_bytes(jwk, "x", &xn), *y = jwk_bytes(jwk, "y", &yn);
	EVP_PKEY *pkey = NULL;
	if (x && y && xn == 32 && yn == 32) {
		unsigned char pub[65];
		pub[0] = 0x04; /* uncompressed point */
		memcpy(pub + 1, x, 32);
		memcpy(pub + 33, y, 32);
		OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
		if (bld &&
		    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) &&
		    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub))
			pkey = fromdata("EC", bld);
		OSSL_PARAM_BLD_free(bld);
	}
	free(x);
	free(y);
	return pkey;
}

/* The key of jwks for alg and kid: 1 found (*pkey), 0 none, -1 a bad key. */
static int find_key(json_t *jwks, const char *alg, const char *kid, EVP_PKEY **pkey)
{
	const char *kty = strcmp(alg, "RS256") == 0 ? "RSA" : "EC";
	json_t *keys = json_object_get(jwks, "keys"), *k, *found = NULL;
	size_t i, matches = 0;
	json_array_foreach(keys, i, k)
	{
		const char *t = json_string_value(json_object_get(k, "kty"));
		const char *id = json_string_value(json_object_get(k, "kid"));
		const char *use = json_string_value(json_object_get(k, "use"));
		const char *kalg = json_string_value(json_object_get(k, "alg"));
		if (!t || strcmp(t, kty) != 0 || (use && strcmp(use, "sig") != 0) ||
		    (kalg && strcmp(kalg, alg) != 0))
			continue;
		if (kid ? id && strcmp(id, kid) == 0 : true) {
			found = k;
			matches++;
		}
	}
	/* Without a kid the key must be the only candidate. */
	if (!found || (!kid && matches != 1))
		return 0;
	*pkey = strcmp(kty, "RSA") == 0 ? rsa_key(found) : ec_key(found);
	return *pkey ? 1 : -1;
}

/* ES256 signs r || s (32 bytes each); OpenSSL verifies DER. */
static unsigned char *es256_der(const unsigned char *sig, size_t n, size_t *der_len)
{
	if (n != 64)
		return NULL;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
	unsigned char *der = NULL;
	if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
		r = s = NULL; /* owned by es now */
		int len = i2d_ECDSA_SIG(es, &der);
		if (len <= 0)
			der = NULL;
		else
			*der_len = (size_t)len;
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return der;
}

static bool verify(EVP_PKEY *pkey, const char *alg, const char *data, size_t len,
                   const unsigned char *sig, size_t sig_len)
{
	unsigned char *der = NULL;
	if (strcmp(alg, "ES256") == 0) {
		der = es256_der(sig, sig_len, &sig_len);
		if (!der)
			return false;
		sig = der;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	          EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)data, len) == 1;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	return ok;
}

/* A part of the token decoded and parsed as a JSON object (new), or NULL. */
static json_t *part_json(const char *p, size_t len)
{
	unsigned char buf[JWT_PART_MAX];
	long n = jwt_b64url_decode(p, len, buf, sizeof buf);
	if (n <= 0)
		return NULL;
	json_t *o = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	if (o && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

int jwt_verify(const char *tok, json_t *jwks, json_t **claims, char *kid, size_t cap)
{
	*claims = NULL;
	if (cap)
		kid[0] = 0;
	size_t len = strnlen(tok, JWT_MAX + 1);
	const char *d1 = memchr(tok, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
	if (len > JWT_MAX || !d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
		return -EBADMSG;
	json_t *hdr = part_json(tok, (size_t)(d1 - tok));
	if (!hdr)
		return -EBADMSG;
	const char *alg = json_string_value(json_object_get(hdr, "alg"));
	const char *k = json_string_value(json_object_get(hdr, "kid"));
	if (k && cap)
		snprintf(kid, cap, "%s", k);
	int rc = -ENOTSUP;
	/* crit names extensions we would have to understand: we understand none */
	if (!alg || json_object_get(hdr, "crit") ||
	    (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0))
		goto out;
	EVP_PKEY *pkey = NULL;
	int found = find_key(jwks, alg, k, &pkey);
	rc = found == 0 ? -ENOKEY : -EBADMSG;
	if (found != 1)
		goto out;
	unsigned char sig[JWT_PART_MAX];
	long sig_len = jwt_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - tok), sig, sizeof sig);
	rc = -EBADMSG;
	if (sig_len > 0 && verify(pkey, alg, tok, (size_t)(d2 - tok), sig, (size_t)sig_len)) {
		*claims = part_json(d1 + 1, (size_t)(d2 - d1 - 1));
		rc = *claims ? 0 : -EBADMSG;
	}
	EVP_PKEY_free(pkey);
out:
	json_decref(hdr);
	return rc;
}
