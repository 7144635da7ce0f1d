/* fuzz_sse: the Server-Sent Events reader (src/core/sse.c) that `roost watch`
 * and the host's feed thread run on the hub's change feed. The first byte
 * seeds the sizes of the pieces the stream arrives in. Invariants: the
 * events are the same however the bytes are cut (as curl cuts them), each
 * within SSE_EVENT_MAX, no more events than blank lines, and data never
 * holds a "\r\n" pair or a line that was cut. */
#include "fuzz.h"
#include "../../src/core/sse.h"
#include "../../src/core/util.h"

struct log {
	char *buf; /* every event as name NUL data NUL, one after another */
	size_t len, n;
};

static void on_event(void *cls, const char *event, const char *data, size_t len)
{
	struct log *l = cls;
	FUZZ_CHECK(len <= SSE_EVENT_MAX && data[len] == 0);
	FUZZ_CHECK(strlen(event) < SSE_NAME_MAX);
	size_t el = strlen(event);
	l->buf = xrealloc(l->buf, l->len + el + len + 2);
	memcpy(l->buf + l->len, event, el + 1);
	memcpy(l->buf + l->len + el + 1, data, len + 1);
	l->len += el + len + 2;
	l->n++;
}

static struct log read_all(const uint8_t *data, size_t size, unsigned seed)
{
	struct log l = {0};
	static struct sse s; /* 64 KiB: not on the stack */
	sse_init(&s, on_event, &l);
	for (size_t i = 0; i < size;) {
		size_t n = seed ? 1 + (seed = seed * 1103515245u + 12345u) % 97 : size;
		n = n > size - i ? size - i : n;
		sse_feed(&s, (const char *)data + i, n);
		i += n;
	}
	sse_fini(&s);
	return l;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct log whole = read_all(data + 1, size - 1, 0);
	struct log cut = read_all(data + 1, size - 1, data[0] | 1u);
	FUZZ_CHECK(whole.n == cut.n && whole.len == cut.len);
	FUZZ_CHECK(whole.len == 0 || memcmp(whole.buf, cut.buf, whole.len) == 0);
	size_t blank = 0;
	for (size_t i = 2; i < size; i++)
		blank +=
		    data[i] == '\n' &&
		    (data[i - 1] == '\n' || (data[i - 1] == '\r' && i >= 3 && data[i - 2] == '\n'));
	FUZZ_CHECK(whole.n <= blank);
	free(whole.buf);
	free(cut.buf);
	return 0;
}
