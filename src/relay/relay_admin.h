/* relay_admin: the relay's admin port (--admin-listen ADDR:PORT, docs/relay.md):
 * GET /healthz for liveness and GET /metrics in Prometheus' text format, over
 * plain HTTP on the relay's event loop. /metrics answers loopback clients, or
 * any with the operator token (ROOST_OPS_TOKEN) as a bearer token, as the
 * hub's does; what it shows are counts, never a slug, address or path.
 *
 * Threads: the event loop's only (the counters are plain integers). */
#ifndef ROOST_RELAY_ADMIN_H
#define ROOST_RELAY_ADMIN_H

#include "../core/ratelimit.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdint.h>

/* What the relay counts since it started; relay.c adds to them. */
struct relay_stats {
	uint64_t requests[600];              /* answered requests by status (100..599) */
	uint64_t bytes_in, bytes_out;        /* request and response bytes piped */
	uint64_t conns_public, conns_tunnel; /* connections accepted */
	uint64_t limit_hits[LIMIT_SCOPES];   /* 429s per scope (ip, host, url) */
	uint64_t conn_limit_hits;            /* connections refused over ip.conns */
	uint64_t auth_failures;              /* tunnel hellos refused */
};

/* The gauges of the moment and the counters, as Prometheus text into out. */
typedef void (*relay_metrics_fn)(void *arg, struct evbuffer *out);

struct relay_admin;

/* Serve addr ("ADDR:PORT") on base; NULL (logged) if it cannot listen. */
struct relay_admin *relay_admin_start(struct event_base *base, const char *addr,
                                      relay_metrics_fn metrics, void *arg);
void relay_admin_stop(struct relay_admin *a);
/* Prometheus lines for s (the counters; the gauges are the caller's). */
void relay_stats_write(const struct relay_stats *s, struct evbuffer *out);

#endif
