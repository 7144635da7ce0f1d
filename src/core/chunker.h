/* chunker: FastCDC content-defined chunking with normalized chunking (level 2).
 *
 * Streaming and O(1) in memory: feed buffers of any size; the chunker says where
 * the current chunk ends. It never buffers data; the caller hashes or stores the
 * bytes it is handed back. Boundaries depend only on content, so an insert or an
 * overwrite changes only the chunks around it.
 *
 * Threads: pure; a struct chunker belongs to one thread.
 */
#ifndef ROOST_CHUNKER_H
#define ROOST_CHUNKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHUNK_MIN_DEFAULT (256u * 1024)
#define CHUNK_AVG_DEFAULT (1024u * 1024)
#define CHUNK_MAX_DEFAULT (4096u * 1024)
/* Hard cap on any chunk size setting; the hub refuses larger bodies. */
#define CHUNK_MAX_LIMIT (64u * 1024 * 1024)

struct chunker_params {
	uint32_t min, avg, max;
};

struct chunker {
	struct chunker_params p;
	uint64_t mask_small; /* harder mask used before avg */
	uint64_t mask_large; /* easier mask used after avg */
	uint64_t fp;
	uint64_t pos; /* bytes of the current chunk seen so far */
	uint64_t gear[256];
};

/* Defaults: 256 KiB / 1 MiB / 4 MiB. */
struct chunker_params chunker_defaults(void);
/* 64 <= min < avg < max <= CHUNK_MAX_LIMIT. */
bool chunker_params_valid(const struct chunker_params *p);
void chunker_init(struct chunker *c, const struct chunker_params *p);

/* Scan up to len bytes. Returns how many of them belong to the current chunk;
 * *cut is set when the chunk ends after them (the chunker then starts a new one).
 * At end of input, a non-empty current chunk (c->pos > 0) is the last chunk. */
size_t chunker_scan(struct chunker *c, const uint8_t *data, size_t len, bool *cut);

#endif
