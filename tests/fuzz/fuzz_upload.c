/* fuzz_upload: what the host's content server reads from an upload before
 * it writes (PUT /u/TOKEN; src/host/serve_req.c, http_content_length and
 * token_verify), and the body streamed into the hash in the pieces the
 * network delivers. The input is NUL-separated: method, URL path,
 * Content-Length, the token's claims (signed here as the hub would sign
 * them; the URL's token is replaced by it when the URL is an upload's), then
 * the body. Invariants: a route's argument is one URL segment; a granted
 * upload names a normalized file path outside the state folder; a length is
 * -1 or the header's digits; the streamed hash equals the one-shot hash. */
#include "fuzz.h"
#include "../../src/core/hash.h"
#include "../../src/core/path.h"
#include "../../src/core/token.h"
#include "../../src/core/util.h"
#include "../../src/host/host.h"
#include "../../src/host/serve_req.h"

static unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];

static bool key_of(void *cls, const char *kid, unsigned char out[crypto_sign_PUBLICKEYBYTES])
{
	(void)cls;
	memcpy(out, pk, sizeof pk);
	return strcmp(kid, "k1") == 0;
}

static char *b64(const void *bin, size_t len)
{
	size_t n = sodium_base64_ENCODED_LEN(len, TOKEN_B64);
	char *out = xmalloc(n);
	sodium_bin2base64(out, n, bin, len, TOKEN_B64);
	return out;
}

static char *sign(const char *claims)
{
	char *head = b64(claims, strlen(claims));
	unsigned char sig[crypto_sign_BYTES];
	crypto_sign_detached(sig, NULL, (const unsigned char *)head, strlen(head), sk);
	char *s = b64(sig, sizeof sig);
	char *tok = xasprintf("%s.%s", head, s);
	free(head);
	free(s);
	return tok;
}

/* The next NUL-terminated field of the input (the rest if there is no NUL). */
static const char *field(const uint8_t **p, const uint8_t *end, char **own)
{
	const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
	size_t n = z ? (size_t)(z - *p) : (size_t)(end - *p);
	*own = fuzz_cstr(*p, n);
	*p += z ? n + 1 : n;
	return *own;
}

static void check_upload(const char *claims_json)
{
	char *tok = sign(claims_json);
	const char *why = NULL;
	json_t *claims = token_verify(tok, key_of, NULL, now_ms(), &why);
	if (claims && serve_claims_grant(claims, 1, "write")) {
		char *path = serve_upload_path(claims);
		if (path) {
			FUZZ_CHECK(path[0] == '/' && strcmp(path, "/") != 0);
			FUZZ_CHECK(!host_ignored(path));
			FUZZ_CHECK(strncmp(path, "/.roost/", 8) != 0 &&
			           strcmp(path, "/.roost") != 0);
			const char *w = NULL;
			char *again = path_normalize(path, strlen(path), &w);
			FUZZ_CHECK(again && strcmp(again, path) == 0);
			free(again);
			free(path);
		}
	}
	json_decref(claims);
	free(tok);
}

static void check_body(const uint8_t *body, size_t len, unsigned seed)
{
	char whole[HASH_HEX_LEN + 1], streamed[HASH_HEX_LEN + 1];
	hash_hex(body, len, whole);
	struct hasher *h = hasher_new();
	for (size_t i = 0; i < len;) {
		seed = seed * 1103515245u + 12345u;
		size_t n = 1 + seed % 4096;
		n = n > len - i ? len - i : n;
		hasher_update(h, body + i, n);
		i += n;
	}
	hasher_final_hex(h, streamed);
	hasher_free(h);
	FUZZ_CHECK(strcmp(whole, streamed) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		unsigned char seed[crypto_sign_SEEDBYTES] = {7};
		if (sodium_init() < 0)
			abort();
		crypto_sign_seed_keypair(pk, sk, seed);
		ready = true;
	}
	const uint8_t *p = data, *end = data + size;
	char *m, *u, *c, *j;
	const char *method = field(&p, end, &m), *url = field(&p, end, &u);
	const char *cl = field(&p, end, &c), *claims = field(&p, end, &j);
	const char *arg = NULL;
	enum serve_route r = serve_route(method, url, &arg);
	FUZZ_CHECK(r >= ROUTE_NONE && r <= ROUTE_VERSION);
	FUZZ_CHECK(!arg == (r != ROUTE_UPLOAD && r != ROUTE_CHUNK && r != ROUTE_VERSION));
	FUZZ_CHECK(!arg || !strchr(arg, '/'));
	FUZZ_CHECK(r != ROUTE_UPLOAD || strcmp(method, "PUT") == 0);
	int64_t len = http_content_length(cl);
	FUZZ_CHECK(len >= -1);
	if (len >= 0)
		FUZZ_CHECK(*cl && strspn(cl, "0123456789") == strlen(cl));
	if (r == ROUTE_UPLOAD)
		check_upload(claims);
	check_body(p, (size_t)(end - p), (unsigned)size);
	free(m);
	free(u);
	free(c);
	free(j);
	return 0;
}
