/* traffic: bytes in and out per workspace, counted in memory and flushed
 * hourly-bucketed into transfer_hourly (traffic.c).
 *
 * Threads: request threads count (under the table's lock); the jobs thread
 * flushes. */
#ifndef ROOST_HUB_TRAFFIC_H
#define ROOST_HUB_TRAFFIC_H

#include "hub.h"

/* Count bytes received (in) and sent (out) for workspace ws; the
 * jobs thread flushes them into transfer_hourly. */
struct traffic *traffic_new(void);
void traffic_free(struct traffic *tr);
void traffic_add(struct hub *hub, int64_t ws, int64_t in, int64_t out);
void traffic_flush(struct hub *hub, struct db *db);
#endif
