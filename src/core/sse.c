/* sse: see sse.h. */
#include "sse.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void sse_init(struct sse *s, sse_event_fn fn, void *cls)
{
	s->fn = fn;
	s->cls = cls;
	s->data = NULL;
	s->id[0] = 0;
	sse_reset(s);
}

static void event_clear(struct sse *s)
{
	free(s->data);
	s->data = NULL;
	s->dlen = s->dcap = 0;
	s->event[0] = 0;
	s->bad = false;
}

void sse_reset(struct sse *s)
{
	s->len = 0;
	s->line_over = false;
	event_clear(s);
}

void sse_fini(struct sse *s)
{
	event_clear(s);
}

static void data_append(struct sse *s, const char *v, size_t n)
{
	size_t sep = s->data ? 1 : 0;
	if (s->dlen + sep + n > SSE_EVENT_MAX) {
		s->bad = true;
		return;
	}
	if (s->dlen + sep + n + 1 > s->dcap) {
		s->dcap = s->dlen + sep + n + 1 < 256 ? 256 : (s->dlen + sep + n + 1) * 2;
		s->data = xrealloc(s->data, s->dcap);
	}
	if (sep)
		s->data[s->dlen++] = '\n';
	memcpy(s->data + s->dlen, v, n);
	s->dlen += n;
	s->data[s->dlen] = 0;
}

/* One complete line of n bytes (no "\n"). */
static void sse_line(struct sse *s, const char *line, size_t n)
{
	if (n == 0) {
		if (s->data && !s->bad)
			s->fn(s->cls, s->event, s->data, s->dlen);
		event_clear(s);
		return;
	}
	if (line[0] == ':')
		return; /* a comment: the stream's greeting or a heartbeat */
	const char *colon = memchr(line, ':', n);
	size_t flen = colon ? (size_t)(colon - line) : n;
	const char *v = colon ? colon + 1 : line + n;
	if (v < line + n && *v == ' ')
		v++;
	size_t vlen = (size_t)(line + n - v);
	if (flen == 4 && memcmp(line, "data", 4) == 0) {
		data_append(s, v, vlen);
	} else if (flen == 5 && memcmp(line, "event", 5) == 0) {
		size_t k = vlen < SSE_NAME_MAX - 1 ? vlen : SSE_NAME_MAX - 1;
		memcpy(s->event, v, k);
		s->event[k] = 0;
	} else if (flen == 2 && memcmp(line, "id", 2) == 0 && vlen < SSE_ID_MAX &&
	           !memchr(v, 0, vlen)) {
		/* An id holding NUL is ignored (the spec's rule), one too long too. */
		memcpy(s->id, v, vlen);
		s->id[vlen] = 0;
	}
}

void sse_feed(struct sse *s, const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n') {
			if (s->len < SSE_LINE_MAX)
				s->line[s->len++] = buf[i];
			else
				s->line_over = true;
			continue;
		}
		size_t n = s->len;
		if (n && s->line[n - 1] == '\r')
			n--;
		if (s->line_over)
			s->bad = true; /* a cut line: the event is not what was sent */
		else
			sse_line(s, s->line, n);
		s->len = 0;
		s->line_over = false;
	}
}
