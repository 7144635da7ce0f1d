/* bwlimit: a process's bandwidth limits over every libcurl transfer the
 * client makes (roost host run --max-up, --max-down; docs/host.md). One token
 * bucket for each direction is shared by all transfers at once, on every
 * thread: the limit is the process's total, not each transfer's (libcurl's
 * CURLOPT_MAX_*_SPEED_LARGE would be per transfer). A transfer past the
 * bucket waits in libcurl's progress callback, which stalls that transfer
 * (and others on its multi handle) until the debt is paid back.
 *
 * The burst is a quarter of a second's worth. What the process serves to
 * others (a host's content server, its relay tunnel) is not counted.
 *
 * Threads: any; the buckets are under a mutex. */
#ifndef ROOST_CLIENT_BWLIMIT_H
#define ROOST_CLIENT_BWLIMIT_H

#include <curl/curl.h>
#include <stdbool.h>

/* Bytes per second up and down for this process (0: no limit). Set before
 * the first transfer. */
void bwlimit_set(double up_bps, double down_bps);
/* Hook curl's progress callback to the buckets (client.c, on every handle);
 * does nothing when no limit is set. */
void bwlimit_apply(CURL *curl);
/* A rate such as "5MiB/s", "500K/s", "2M", "1.5GB/s" (binary units; a bare
 * number is bytes per second): bytes per second, or -1. */
double bwlimit_parse(const char *s);

#endif
