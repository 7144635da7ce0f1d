/* hash: SHA-256 through OpenSSL's EVP (SHA-NI where the CPU has it), hex ids.
 * Threads: a struct hasher belongs to one thread; the rest is pure. */
#ifndef ROOST_HASH_H
#define ROOST_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HASH_BYTES   32
#define HASH_HEX_LEN 64

struct hasher;

struct hasher *hasher_new(void);
void hasher_reset(struct hasher *h);
void hasher_update(struct hasher *h, const void *data, size_t len);
/* Finish into hex (65 bytes with NUL); the hasher is reset for reuse. */
void hasher_final_hex(struct hasher *h, char hex[HASH_HEX_LEN + 1]);
void hasher_free(struct hasher *h);

void hash_hex(const void *data, size_t len, char hex[HASH_HEX_LEN + 1]);
/* SHA-256 of what is left to read from fd, into hex: 0, or -errno of a
 * failed read. */
int hash_fd_hex(int fd, char hex[HASH_HEX_LEN + 1]);
/* Is s exactly 64 lowercase hex digits? */
bool hash_hex_valid(const char *s);
void hex_encode(const uint8_t *in, size_t len, char *out);

#endif
