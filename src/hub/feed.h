/* feed: the realtime change feed (SSE), its wake-ups and LISTEN/NOTIFY across
 * hubs (feed.c).
 *
 * Threads: the feed daemon's loop (subscribers suspended while idle), request
 * threads (with the hub's own TLS a subscriber's stream blocks its own), the
 * LISTEN or poll thread (which also resumes subscribers due a heartbeat), and
 * committers calling feed_notify. */
#ifndef ROOST_HUB_FEED_H
#define ROOST_HUB_FEED_H

#include "hub.h"

/* A comment line on an idle feed this often (--heartbeat), so proxies and
 * clients see the stream is alive. */
#define FEED_HEARTBEAT_MS_DEFAULT 15000

void feed_init(struct hub *hub);
void feed_start_listener(struct hub *hub);
void feed_notify(struct hub *hub);
int feed_subscribers(struct hub *hub);
void feed_stop(struct hub *hub); /* ends every stream; before stopping the daemons */
void feed_free(struct hub *hub);
enum MHD_Result api_events(struct req *r);
/* Whether a connection is on the feed daemon (server.c), where nothing may
 * block and idle subscribers are suspended. */
bool feed_conn_looped(struct MHD_Connection *c);
#endif
