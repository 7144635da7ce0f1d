/* stats: search by name and storage over time, for the dashboard (stats.c).
 *
 * Threads: request threads. */
#ifndef ROOST_HUB_STATS_H
#define ROOST_HUB_STATS_H

#include "hub.h"

enum MHD_Result api_search(struct req *r);
enum MHD_Result api_usage_history(struct req *r);
#endif
