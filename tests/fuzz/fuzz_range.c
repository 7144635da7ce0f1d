/* fuzz_range: the HTTP Range parser (http_parse_range, src/core/util.c) that
 * the hub's downloads and the host's content server share. The first 8
 * bytes are the file's size; the rest is the header. Invariants: a range
 * that is set lies inside the file and is not empty, and the answer is the
 * one RFC 9110 §14.1.2 gives (model() below, written from the grammar:
 * "bytes=" (1*DIGIT "-" [1*DIGIT] / "-" 1*DIGIT), one range only). */
#include "fuzz.h"
#include "../../src/core/util.h"

/* Digits at s..e as a saturated value; -1 if there are none or another byte. */
static int64_t digits(const char *s, const char *e)
{
	if (s == e)
		return -1;
	unsigned __int128 v = 0;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > INT64_MAX)
			v = INT64_MAX;
	}
	return (int64_t)v;
}

static int model(const char *h, int64_t size, int64_t *start, int64_t *len)
{
	if (strncmp(h, "bytes=", 6) != 0)
		return 0;
	const char *spec = h + 6, *dash = strchr(spec, '-'), *end = spec + strlen(spec);
	if (!dash)
		return 0;
	int64_t a = digits(spec, dash), b = dash + 1 == end ? INT64_MAX : digits(dash + 1, end);
	if (dash == spec) { /* suffix */
		if (b < 0 || dash + 1 == end)
			return 0;
		if (b == 0 || size == 0)
			return -1;
		*len = b < size ? b : size;
		*start = size - *len;
		return 1;
	}
	if (a < 0 || b < 0 || b < a)
		return 0;
	if (a >= size)
		return -1;
	*start = a;
	*len = (b >= size ? size - 1 : b) - a + 1;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 8)
		return 0;
	uint64_t u = 0;
	memcpy(&u, data, 8);
	int64_t fsize = (int64_t)(u >> 1); /* a size is never negative */
	if (data[0] & 1)
		fsize = (int64_t)(u % 100000); /* small sizes, where the edges are */
	char *h = fuzz_cstr(data + 8, size - 8);
	int64_t start = -7, len = -7;
	int rc = http_parse_range(h, fsize, &start, &len);
	FUZZ_CHECK(rc >= -1 && rc <= 1);
	if (rc == 1) {
		FUZZ_CHECK(start >= 0 && len >= 1);
		FUZZ_CHECK(start < fsize && len <= fsize - start);
	} else {
		FUZZ_CHECK(start == -7 && len == -7); /* untouched */
	}
	int64_t ms = -7, ml = -7;
	FUZZ_CHECK(rc == model(h, fsize, &ms, &ml));
	FUZZ_CHECK(ms == start && ml == len);
	free(h);
	return 0;
}
