#include "chunker.h"

#include <string.h>

struct chunker_params chunker_defaults(void)
{
	struct chunker_params p = {CHUNK_MIN_DEFAULT, CHUNK_AVG_DEFAULT, CHUNK_MAX_DEFAULT};
	return p;
}

bool chunker_params_valid(const struct chunker_params *p)
{
	return p->min >= 64 && p->min < p->avg && p->avg < p->max && p->max <= CHUNK_MAX_LIMIT;
}

/* splitmix64: a fixed, well-mixed gear table, the same on every machine. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static unsigned log2_round(uint32_t v)
{
	unsigned bits = 0;
	while ((1ull << (bits + 1)) <= v)
		bits++;
	/* round to nearest power of two */
	if (bits < 31 && (uint64_t)v - (1ull << bits) > (1ull << (bits + 1)) - v)
		bits++;
	return bits;
}

/* The gear hash shifts left, so its top bits depend on the last 64 bytes:
 * masks take the top bits for the widest window. */
static uint64_t top_mask(unsigned bits)
{
	return bits == 0 ? 0 : ~0ull << (64 - bits);
}

void chunker_init(struct chunker *c, const struct chunker_params *p)
{
	memset(c, 0, sizeof *c);
	c->p = *p;
	unsigned bits = log2_round(p->avg);
	c->mask_small = top_mask(bits + 2);
	c->mask_large = top_mask(bits > 2 ? bits - 2 : 1);
	uint64_t seed = 0x726f6f7374636463ull; /* "roostcdc" */
	for (int i = 0; i < 256; i++)
		c->gear[i] = splitmix64(&seed);
}

size_t chunker_scan(struct chunker *c, const uint8_t *data, size_t len, bool *cut)
{
	const uint64_t start = c->pos; /* bytes of this chunk before data[0] */
	const uint64_t min = c->p.min, avg = c->p.avg, max = c->p.max;
	uint64_t fp = c->fp;
	size_t k = 0;
	*cut = false;

	/* No boundary can fall before min: skip those bytes unhashed. */
	if (start < min) {
		uint64_t skip = min - start;
		k = skip < len ? (size_t)skip : len;
		fp = 0;
	}
	/* Before avg the harder mask makes cuts rarer; after it the easier mask makes
	 * them likelier, so sizes cluster near avg (normalized chunking). */
	for (int stage = 0; stage < 2 && k < len; stage++) {
		uint64_t stop = stage == 0 ? avg : max;
		uint64_t seen = start + k;
		if (seen >= stop)
			continue;
		const uint64_t m = stage == 0 ? c->mask_small : c->mask_large;
		uint64_t room = stop - seen;
		size_t end = room < len - k ? k + (size_t)room : len;
		for (; k < end; k++) {
			fp = (fp << 1) + c->gear[data[k]];
			if (!(fp & m)) {
				k++;
				goto cut_here;
			}
		}
	}
	if (start + k >= max)
		goto cut_here;
	c->pos = start + k;
	c->fp = fp;
	return k;
cut_here:
	*cut = true;
	c->pos = 0;
	c->fp = 0;
	return k;
}
