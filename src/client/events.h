/* events: one connection to a workspace's change feed (GET …/events,
 * Server-Sent Events), its bytes fed to a core/sse reader as they arrive.
 * The caller loops — reconnecting from the last change it saw, with
 * core/retry's delays between failures — and handles the events in its
 * sse callback. Used by roost watch and the host's feed reader.
 * Runs on the caller's thread, on the caller's curl handle. */
#ifndef ROOST_CLIENT_EVENTS_H
#define ROOST_CLIENT_EVENTS_H

#include "client.h"
#include "../core/sse.h"

struct client_feed {
	int64_t since;          /* changes after this seq; -1: from now */
	struct sse *sse;        /* the stream goes here */
	int (*stop)(void *cls); /* polled while connected; non-zero ends it (NULL: none) */
	void *stop_cls;
};

/* Follow the feed until it ends, fails or stop says so. Returns the HTTP
 * status (0 if there was none) with *cc curl's result (an HTTP error status
 * is CURLE_HTTP_RETURNED_ERROR). */
long client_feed_follow(const struct client *c, CURL *curl, const struct client_feed *f,
                        CURLcode *cc);

#endif
