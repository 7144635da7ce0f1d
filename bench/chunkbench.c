/* roost-chunkbench: what each chunk size costs and saves, to choose the default.
 *
 * For average sizes 512 KiB..8 MiB (min = avg/4, max = 4*avg, like the default) it
 * measures the bytes a client re-sends after a 1-byte insert and after a 4 KiB
 * overwrite in the middle of the data, the chunk count (metadata rows), and the
 * speed of chunking alone and of chunking plus SHA-256. The data is streamed in
 * 4 MiB buffers, so memory stays constant; the edited versions are produced on the
 * fly. Throughput is measured in memory on the first 256 MiB. See docs/chunking.md.
 *
 * usage: roost-chunkbench [--size MiB] [FILE]   (default: 1024 MiB of random data) */
#include "../src/core/chunker.h"
#include "../src/core/hash.h"
#include "../src/core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MiB        (1024ull * 1024)
#define BUF_SIZE   (4 * MiB)
#define SAMPLE_MAX (256 * MiB)
#define EDIT_LEN   4096
#define ROUNDS     3

enum edit { EDIT_NONE, EDIT_INSERT, EDIT_OVERWRITE };

struct chunk {
	char hash[HASH_HEX_LEN + 1];
	uint64_t len;
};

/* One chunking pass: the chunker, an optional hasher, and the chunks seen. */
struct pass {
	struct chunker c;
	struct hasher *h; /* NULL: chunk only */
	bool record;      /* keep every chunk's hash and length */
	uint64_t cur;     /* bytes of the current chunk so far */
	size_t n, cap;
	struct chunk *chunks;
};

static void die(const char *what)
{
	fprintf(stderr, "roost-chunkbench: %s: %s\n", what, errno ? strerror(errno) : "failed");
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pass_init(struct pass *ps, const struct chunker_params *p, bool sha, bool record)
{
	memset(ps, 0, sizeof *ps);
	chunker_init(&ps->c, p);
	ps->h = sha ? hasher_new() : NULL;
	ps->record = record;
}

static void pass_fini(struct pass *ps)
{
	hasher_free(ps->h);
	free(ps->chunks);
}

static void end_chunk(struct pass *ps)
{
	if (ps->record) {
		if (ps->n == ps->cap) {
			ps->cap = ps->cap ? 2 * ps->cap : 1024;
			ps->chunks = xrealloc(ps->chunks, ps->cap * sizeof *ps->chunks);
		}
		hasher_final_hex(ps->h, ps->chunks[ps->n].hash);
		ps->chunks[ps->n].len = ps->cur;
	} else if (ps->h) {
		char hex[HASH_HEX_LEN + 1];
		hasher_final_hex(ps->h, hex);
	}
	ps->n++;
	ps->cur = 0;
}

static void feed(struct pass *ps, const uint8_t *p, size_t len)
{
	while (len > 0) {
		bool cut;
		size_t k = chunker_scan(&ps->c, p, len, &cut);
		if (ps->h)
			hasher_update(ps->h, p, k);
		ps->cur += k;
		p += k;
		len -= k;
		if (cut)
			end_chunk(ps);
	}
}

static void finish(struct pass *ps)
{
	if (ps->cur > 0)
		end_chunk(ps);
}

/* Chunk the first size bytes of fd, edited in the middle as e says. */
static void chunk_file(int fd, uint64_t size, enum edit e, struct pass *ps)
{
	static uint8_t buf[BUF_SIZE];
	static const uint8_t inserted = 0x42;
	const uint64_t mid = size / 2;
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < BUF_SIZE ? (size_t)(size - off) : BUF_SIZE;
		if (pread_full(fd, buf, n, (int64_t)off) != (ssize_t)n)
			die("read");
		if (e == EDIT_OVERWRITE) {
			uint64_t lo = mid > off ? mid : off;
			uint64_t hi = mid + EDIT_LEN < off + n ? mid + EDIT_LEN : off + n;
			for (uint64_t i = lo; i < hi; i++)
				buf[i - off] ^= 0xFF;
		}
		if (e == EDIT_INSERT && mid >= off && mid < off + n) {
			size_t at = (size_t)(mid - off);
			feed(ps, buf, at);
			feed(ps, &inserted, 1);
			feed(ps, buf + at, n - at);
		} else {
			feed(ps, buf, n);
		}
		off += n;
	}
	finish(ps);
}

static int cmp_chunk(const void *a, const void *b)
{
	return strcmp(((const struct chunk *)a)->hash, ((const struct chunk *)b)->hash);
}

/* The expected size of the chunk holding a random byte, sum(len^2) / sum(len): what
 * one small edit re-sends on average when it changes only its own chunk. */
static double expected_resent(const struct pass *ps)
{
	double sq = 0, sum = 0;
	for (size_t i = 0; i < ps->n; i++) {
		sq += (double)ps->chunks[i].len * (double)ps->chunks[i].len;
		sum += (double)ps->chunks[i].len;
	}
	return sq / sum;
}

/* Bytes of the edited version's chunks that the original (sorted) does not have. */
static uint64_t resent(const struct pass *orig, const struct pass *edited, size_t *count)
{
	uint64_t bytes = 0;
	*count = 0;
	for (size_t i = 0; i < edited->n; i++) {
		if (bsearch(&edited->chunks[i], orig->chunks, orig->n, sizeof *orig->chunks,
		            cmp_chunk))
			continue;
		bytes += edited->chunks[i].len;
		(*count)++;
	}
	return bytes;
}

/* Best of ROUNDS, in MB/s (10^6 bytes). */
static double throughput(const uint8_t *data, size_t len, const struct chunker_params *p, bool sha)
{
	double best = 0;
	for (int i = 0; i < ROUNDS; i++) {
		struct pass ps;
		pass_init(&ps, p, sha, false);
		double t0 = now_s();
		feed(&ps, data, len);
		finish(&ps);
		double mbs = (double)len / (now_s() - t0) / 1e6;
		best = mbs > best ? mbs : best;
		pass_fini(&ps);
	}
	return best;
}

/* Write size bytes of xorshift64 data to an unlinked temp file; returns its fd. */
static int random_file(uint64_t size)
{
	const char *tmp = getenv("TMPDIR");
	char *dir = xasprintf("%s/roost-chunkbench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		die(dir);
	char *path = xasprintf("%s/data", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die(path);
	/* Unlinked at once: the data goes away when the program exits, however. */
	unlink(path);
	rmdir(dir);
	free(path);
	free(dir);

	static uint64_t buf[BUF_SIZE / 8];
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (uint64_t off = 0; off < size; off += BUF_SIZE) {
		for (size_t i = 0; i < BUF_SIZE / 8; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = x;
		}
		size_t n = size - off < BUF_SIZE ? (size_t)(size - off) : BUF_SIZE;
		if (write_all(fd, buf, n) < 0)
			die("write");
	}
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: roost-chunkbench [--size MiB] [FILE]\n");
	exit(2);
}

/* Open FILE (or generate data); *size is the bytes to use, 0 meaning all/1 GiB. */
static int open_input(const char *file, uint64_t *size)
{
	if (!file) {
		*size = *size ? *size : 1024 * MiB;
		fprintf(stderr, "generating %llu MiB of random data\n",
		        (unsigned long long)(*size / MiB));
		return random_file(*size);
	}
	struct stat st;
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		die(file);
	if (*size > (uint64_t)st.st_size) {
		fprintf(stderr, "roost-chunkbench: %s is smaller than --size\n", file);
		exit(1);
	}
	*size = *size ? *size : (uint64_t)st.st_size;
	if (*size < 2 * EDIT_LEN) {
		fprintf(stderr, "roost-chunkbench: %s is too small\n", file);
		exit(1);
	}
	return fd;
}

/* One table row: chunk the original and both edits of fd, then time the sample. */
static void bench_row(int fd, uint64_t size, const uint8_t *sample, size_t sample_len, uint32_t avg)
{
	const struct chunker_params p = {avg / 4, avg, avg * 4};
	if (!chunker_params_valid(&p))
		die("chunker params");
	fprintf(stderr, "avg %u KiB...\n", avg / 1024);

	struct pass orig, ins, ovw;
	pass_init(&orig, &p, true, true);
	pass_init(&ins, &p, true, true);
	pass_init(&ovw, &p, true, true);
	chunk_file(fd, size, EDIT_NONE, &orig);
	chunk_file(fd, size, EDIT_INSERT, &ins);
	chunk_file(fd, size, EDIT_OVERWRITE, &ovw);
	qsort(orig.chunks, orig.n, sizeof *orig.chunks, cmp_chunk);

	size_t ins_n, ovw_n;
	uint64_t ins_b = resent(&orig, &ins, &ins_n);
	uint64_t ovw_b = resent(&orig, &ovw, &ovw_n);
	double mean = (double)size / (double)orig.n;
	char s_min[32], s_avg[32], s_max[32], s_mean[32], s_ins[32], s_ovw[32], s_exp[32];
	printf("| %s / %s / %s | %zu | %s | %.0f | %s (%zu) | %s (%zu) | %s | %.0f | %.0f |\n",
	       human_bytes(p.min, s_min), human_bytes(p.avg, s_avg), human_bytes(p.max, s_max),
	       orig.n, human_bytes((int64_t)mean, s_mean), (double)(1ull << 40) / mean,
	       human_bytes((int64_t)ins_b, s_ins), ins_n, human_bytes((int64_t)ovw_b, s_ovw), ovw_n,
	       human_bytes((int64_t)expected_resent(&orig), s_exp),
	       throughput(sample, sample_len, &p, false), throughput(sample, sample_len, &p, true));
	fflush(stdout);
	pass_fini(&orig);
	pass_fini(&ins);
	pass_fini(&ovw);
}

int main(int argc, char **argv)
{
	uint64_t size = 0;
	const char *file = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
			char *end;
			unsigned long long mib = strtoull(argv[++i], &end, 10);
			if (*end || mib == 0 || mib > (1ull << 24))
				usage();
			size = mib * MiB;
		} else if (argv[i][0] != '-' && !file) {
			file = argv[i];
		} else {
			usage();
		}
	}
	int fd = open_input(file, &size);

	size_t sample_len = size < SAMPLE_MAX ? (size_t)size : SAMPLE_MAX;
	uint8_t *sample = xmalloc(sample_len);
	if (pread_full(fd, sample, sample_len, 0) != (ssize_t)sample_len)
		die("read");

	char s_size[32], s_sample[32];
	printf("Data: %s (%s). Re-sent: bytes of the edited version's chunks whose SHA-256 "
	       "the original lacks (chunks in parentheses). Throughput: best of %d over %s in "
	       "memory, MB = 10^6 B.\n\n",
	       file ? file : "random", human_bytes((int64_t)size, s_size), ROUNDS,
	       human_bytes((int64_t)sample_len, s_sample));
	printf("| min / avg / max | chunks | mean chunk | chunks per TiB "
	       "| re-sent after 1-byte insert | re-sent after 4 KiB overwrite "
	       "| expected re-sent per edit | chunk MB/s | chunk+SHA-256 MB/s |\n");
	printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
	for (uint32_t avg = 512 * 1024; avg <= 8 * MiB; avg *= 2)
		bench_row(fd, size, sample, sample_len, avg);
	free(sample);
	close(fd);
	return 0;
}
