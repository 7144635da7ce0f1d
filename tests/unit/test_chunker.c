/* Unit tests for the FastCDC chunker: where boundaries fall, and that they depend on
 * content only, so edits to a file change only the chunks around the edit. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/core/chunker.h"
#include "../../src/core/hash.h"

#include <stdlib.h>
#include <string.h>

#define KiB (1024u)
#define MiB (1024u * 1024)

/* Small sizes keep the tests fast while keeping the default ratios (1/4, 4x). */
static const struct chunker_params small = {2 * KiB, 8 * KiB, 32 * KiB};

/* xorshift64: deterministic "random" data, the same on every run. */
static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed ? seed : 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)(x >> 56);
	}
}

static uint8_t *random_data(size_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	fill_random(buf, len, seed);
	return buf;
}

struct chunks {
	size_t n, cap;
	uint64_t *len;
};

static void chunks_push(struct chunks *cs, uint64_t len)
{
	if (cs->n == cs->cap) {
		cs->cap = cs->cap ? 2 * cs->cap : 256;
		cs->len = realloc(cs->len, cs->cap * sizeof *cs->len);
		assert_non_null(cs->len);
	}
	cs->len[cs->n++] = len;
}

/* Chunk data, handing it to the chunker in pieces of at most feed bytes. */
static struct chunks chunk_data(const struct chunker_params *p, const uint8_t *data, size_t len,
                                size_t feed)
{
	struct chunks cs = {0};
	struct chunker c;
	uint64_t cur = 0;
	chunker_init(&c, p);
	for (size_t off = 0; off < len;) {
		size_t piece = len - off < feed ? len - off : feed;
		for (size_t done = 0; done < piece;) {
			bool cut;
			size_t k = chunker_scan(&c, data + off + done, piece - done, &cut);
			assert_true(k > 0); /* progress on every non-empty call */
			done += k;
			cur += k;
			if (cut) {
				chunks_push(&cs, cur);
				cur = 0;
			}
		}
		off += piece;
	}
	assert_int_equal(c.pos, cur); /* pos is the unfinished last chunk */
	if (cur > 0)
		chunks_push(&cs, cur);
	return cs;
}

static uint64_t chunks_total(const struct chunks *cs)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < cs->n; i++)
		sum += cs->len[i];
	return sum;
}

static void assert_same_chunks(const struct chunks *a, const struct chunks *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		assert_int_equal(a->len[i], b->len[i]);
}

/* The SHA-256 of every chunk, sorted, so the chunks of two versions compare as sets. */
typedef char chunk_id[HASH_HEX_LEN + 1];

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static chunk_id *chunk_ids(const struct chunks *cs, const uint8_t *data)
{
	chunk_id *ids = calloc(cs->n ? cs->n : 1, sizeof *ids);
	assert_non_null(ids);
	uint64_t off = 0;
	for (size_t i = 0; i < cs->n; i++) {
		hash_hex(data + off, cs->len[i], ids[i]);
		off += cs->len[i];
	}
	qsort(ids, cs->n, sizeof *ids, cmp_id);
	return ids;
}

/* How many chunks of the new version are not among the old version's chunks:
 * what a client would have to upload again after the edit. */
static size_t new_chunks(const struct chunker_params *p, const uint8_t *old, size_t old_len,
                         const uint8_t *cur, size_t cur_len)
{
	struct chunks a = chunk_data(p, old, old_len, old_len);
	struct chunks b = chunk_data(p, cur, cur_len, cur_len);
	chunk_id *old_ids = chunk_ids(&a, old);
	chunk_id *cur_ids = chunk_ids(&b, cur);
	size_t fresh = 0;
	for (size_t i = 0; i < b.n; i++)
		if (!bsearch(cur_ids[i], old_ids, a.n, sizeof *old_ids, cmp_id))
			fresh++;
	free(old_ids);
	free(cur_ids);
	free(a.len);
	free(b.len);
	return fresh;
}

static void test_same_data_gives_same_boundaries(void **state)
{
	const size_t len = 4 * MiB;
	uint8_t *data = random_data(len, 1);
	struct chunks a = chunk_data(&small, data, len, len);
	struct chunks b = chunk_data(&small, data, len, len);

	assert_true(a.n > 1);
	assert_same_chunks(&a, &b);
	assert_int_equal(chunks_total(&a), len);
	free(a.len);
	free(b.len);
	free(data);
}

static void test_buffer_size_does_not_change_boundaries(void **state)
{
	const size_t len = 2 * MiB + 12345;
	const size_t feeds[] = {1, 7, 64 * KiB};
	uint8_t *data = random_data(len, 2);
	struct chunks whole = chunk_data(&small, data, len, len);

	for (size_t i = 0; i < sizeof feeds / sizeof feeds[0]; i++) {
		struct chunks pieces = chunk_data(&small, data, len, feeds[i]);
		assert_same_chunks(&whole, &pieces);
		free(pieces.len);
	}
	free(whole.len);
	free(data);
}

/* Random stretches cut on content; zero runs have no cut points and end at max. */
static void test_chunks_are_between_min_and_max(void **state)
{
	const size_t len = 8 * MiB;
	uint8_t *data = random_data(len, 3);
	for (size_t off = 0; off + 200 * KiB <= len; off += 1 * MiB)
		memset(data + off, 0, 200 * KiB);
	struct chunks cs = chunk_data(&small, data, len, 64 * KiB);
	size_t at_max = 0;

	assert_int_equal(chunks_total(&cs), len);
	for (size_t i = 0; i < cs.n; i++) {
		if (i + 1 < cs.n)
			assert_true(cs.len[i] >= small.min);
		assert_true(cs.len[i] <= small.max);
		at_max += cs.len[i] == small.max;
	}
	assert_true(at_max > 0); /* the zero runs did reach the max */
	free(cs.len);
	free(data);
}

static void test_input_shorter_than_min_is_one_chunk(void **state)
{
	const size_t len = small.min - 1;
	uint8_t *data = random_data(len, 4);
	struct chunks cs = chunk_data(&small, data, len, len);

	assert_int_equal(cs.n, 1);
	assert_int_equal(cs.len[0], len);
	free(cs.len);
	free(data);
}

static void test_empty_input_gives_no_chunk(void **state)
{
	struct chunker c;
	bool cut = true;
	chunker_init(&c, &small);

	assert_int_equal(chunker_scan(&c, NULL, 0, &cut), 0);
	assert_false(cut);
	assert_int_equal(c.pos, 0);
}

static void test_zero_data_is_cut_at_max(void **state)
{
	const size_t len = 10 * (size_t)small.max + 100;
	uint8_t *data = calloc(len, 1);
	assert_non_null(data);
	struct chunks cs = chunk_data(&small, data, len, len);

	assert_int_equal(cs.n, 11);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(cs.len[i], small.max);
	assert_int_equal(cs.len[10], 100); /* the last chunk may be under min */
	free(cs.len);
	free(data);
}

static void test_zero_data_is_cut_at_max_with_defaults(void **state)
{
	const struct chunker_params p = chunker_defaults();
	const size_t len = 3 * (size_t)p.max;
	uint8_t *data = calloc(len, 1);
	assert_non_null(data);
	struct chunks cs = chunk_data(&p, data, len, len);

	assert_int_equal(cs.n, 3);
	for (size_t i = 0; i < cs.n; i++)
		assert_int_equal(cs.len[i], p.max);
	free(cs.len);
	free(data);
}

static void test_mean_chunk_size_is_near_avg_on_random_data(void **state)
{
	const size_t len = 16 * MiB;
	uint8_t *data = random_data(len, 5);
	struct chunks cs = chunk_data(&small, data, len, len);
	double mean = (double)len / (double)cs.n;

	assert_true(mean >= 0.5 * small.avg);
	assert_true(mean <= 1.5 * small.avg);
	free(cs.len);
	free(data);
}

static void test_mean_chunk_size_is_near_avg_with_defaults(void **state)
{
	const struct chunker_params p = chunker_defaults();
	const size_t len = 64 * MiB;
	uint8_t *data = random_data(len, 6);
	struct chunks cs = chunk_data(&p, data, len, len);
	double mean = (double)len / (double)cs.n;

	assert_true(mean >= 0.5 * p.avg);
	assert_true(mean <= 1.5 * p.avg);
	free(cs.len);
	free(data);
}

static void test_one_byte_insert_changes_at_most_two_chunks(void **state)
{
	const size_t len = 32 * MiB, mid = len / 2;
	const struct chunker_params params[] = {chunker_defaults(), small};
	uint8_t *old = random_data(len, 7);
	uint8_t *cur = malloc(len + 1);
	assert_non_null(cur);
	memcpy(cur, old, mid);
	cur[mid] = 0xA5;
	memcpy(cur + mid + 1, old + mid, len - mid);

	for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
		size_t fresh = new_chunks(&params[i], old, len, cur, len + 1);
		assert_true(fresh >= 1); /* the edit is seen */
		assert_true(fresh <= 2);
	}
	free(old);
	free(cur);
}

/* With the defaults a 4 KiB edit is far smaller than the 256 KiB minimum chunk, so it
 * stays inside one chunk. (With the small test sizes it would be half a chunk, could
 * add or remove a cut point and shift the chunks after it; that is not tested.) */
static void test_4k_overwrite_changes_at_most_two_chunks(void **state)
{
	const size_t len = 32 * MiB, mid = len / 2;
	const struct chunker_params p = chunker_defaults();
	uint8_t *old = random_data(len, 8);
	uint8_t *cur = malloc(len);
	assert_non_null(cur);
	memcpy(cur, old, len);
	fill_random(cur + mid, 4 * KiB, 9);
	size_t fresh = new_chunks(&p, old, len, cur, len);

	assert_true(fresh >= 1); /* the edit is seen */
	assert_true(fresh <= 2);
	free(old);
	free(cur);
}

static void test_params_valid_accepts_defaults_and_small_sizes(void **state)
{
	const struct chunker_params d = chunker_defaults();
	const struct chunker_params tiny = {64, 128, 256};
	const struct chunker_params limit = {1 * MiB, 4 * MiB, CHUNK_MAX_LIMIT};

	assert_true(chunker_params_valid(&d));
	assert_true(chunker_params_valid(&small));
	assert_true(chunker_params_valid(&tiny));
	assert_true(chunker_params_valid(&limit));
}

static void test_params_valid_rejects_bad_params(void **state)
{
	const struct chunker_params bad[] = {
	    {0, 0, 0},                               /* all zero */
	    {63, 128, 256},                          /* min under 64 */
	    {8 * KiB, 8 * KiB, 32 * KiB},            /* min == avg */
	    {16 * KiB, 8 * KiB, 32 * KiB},           /* min > avg */
	    {2 * KiB, 32 * KiB, 32 * KiB},           /* avg == max */
	    {2 * KiB, 64 * KiB, 32 * KiB},           /* avg > max */
	    {1 * MiB, 4 * MiB, CHUNK_MAX_LIMIT + 1}, /* max over the hard cap */
	    {1 * MiB, 4 * MiB, UINT32_MAX},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_false(chunker_params_valid(&bad[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_same_data_gives_same_boundaries),
	    cmocka_unit_test(test_buffer_size_does_not_change_boundaries),
	    cmocka_unit_test(test_chunks_are_between_min_and_max),
	    cmocka_unit_test(test_input_shorter_than_min_is_one_chunk),
	    cmocka_unit_test(test_empty_input_gives_no_chunk),
	    cmocka_unit_test(test_zero_data_is_cut_at_max),
	    cmocka_unit_test(test_zero_data_is_cut_at_max_with_defaults),
	    cmocka_unit_test(test_mean_chunk_size_is_near_avg_on_random_data),
	    cmocka_unit_test(test_mean_chunk_size_is_near_avg_with_defaults),
	    cmocka_unit_test(test_one_byte_insert_changes_at_most_two_chunks),
	    cmocka_unit_test(test_4k_overwrite_changes_at_most_two_chunks),
	    cmocka_unit_test(test_params_valid_accepts_defaults_and_small_sizes),
	    cmocka_unit_test(test_params_valid_rejects_bad_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
