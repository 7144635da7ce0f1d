/* sse: the one reader of Server-Sent Events (the hub's change feed), used by
 * `roost watch` and the host's feed thread. Bytes go in as they arrive, in
 * any pieces; each complete event comes out through a callback.
 *
 * Lines end in "\n" (a "\r" before it is dropped); "field: value" lines make
 * up an event and a blank line ends it. "data" lines are joined with "\n",
 * "event" names it, "id" sets the last event id (kept across events, as a
 * reconnecting reader sends it in Last-Event-ID), other fields and ":"
 * comments (the heartbeat) are skipped. Every buffer has a cap: an event with a line over
 * SSE_LINE_MAX or data over SSE_EVENT_MAX is dropped whole rather than passed on cut. */
#ifndef ROOST_SSE_H
#define ROOST_SSE_H

#include <stdbool.h>
#include <stddef.h>

#define SSE_LINE_MAX  (1 << 16)
#define SSE_EVENT_MAX (1 << 20)
#define SSE_NAME_MAX  64
#define SSE_ID_MAX    64

/* An event: its name ("" when unnamed) and data (NUL-terminated, len bytes). */
typedef void (*sse_event_fn)(void *cls, const char *event, const char *data, size_t len);

struct sse {
	sse_event_fn fn;
	void *cls;
	char line[SSE_LINE_MAX];
	size_t len;
	bool line_over; /* the current line ran past SSE_LINE_MAX */
	char event[SSE_NAME_MAX];
	char id[SSE_ID_MAX]; /* the last event id seen ("" none); set before fn runs */
	char *data;          /* NULL until the event's first data line */
	size_t dlen, dcap;
	bool bad; /* the current event lost a line: drop it */
};

void sse_init(struct sse *s, sse_event_fn fn, void *cls);
/* Feed len bytes of the stream; calls fn for each event they complete. */
void sse_feed(struct sse *s, const char *buf, size_t len);
/* A new connection: forget any partial line and event. */
void sse_reset(struct sse *s);
void sse_fini(struct sse *s);

#endif
