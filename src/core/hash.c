#include "hash.h"
#include "util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct hasher {
	EVP_MD_CTX *ctx;
};

struct hasher *hasher_new(void)
{
	struct hasher *h = xmalloc(sizeof *h);
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))
		abort();
	return h;
}

void hasher_reset(struct hasher *h)
{
	if (!EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))
		abort();
}

void hasher_update(struct hasher *h, const void *data, size_t len)
{
	if (len && !EVP_DigestUpdate(h->ctx, data, len))
		abort();
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = 0;
}

void hasher_final_hex(struct hasher *h, char hex[HASH_HEX_LEN + 1])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	if (!EVP_DigestFinal_ex(h->ctx, md, &n) || n != HASH_BYTES)
		abort();
	hex_encode(md, HASH_BYTES, hex);
	hasher_reset(h);
}

void hasher_free(struct hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void hash_hex(const void *data, size_t len, char hex[HASH_HEX_LEN + 1])
{
	uint8_t md[HASH_BYTES];
	unsigned n = 0;
	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL))
		abort();
	hex_encode(md, HASH_BYTES, hex);
}

bool hash_hex_valid(const char *s)
{
	if (!s || strlen(s) != HASH_HEX_LEN)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

int hash_fd_hex(int fd, char hex[HASH_HEX_LEN + 1])
{
	struct hasher *h = hasher_new();
	uint8_t *buf = xmalloc(1 << 20);
	ssize_t n;
	while ((n = read(fd, buf, 1 << 20)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			hasher_update(h, buf, (size_t)n);
	int rc = n < 0 ? -errno : 0;
	hasher_final_hex(h, hex);
	hasher_free(h);
	free(buf);
	return rc;
}
