/* peer: who a request comes from. The TCP peer, or, when the peer is a
 * balancer named by --trusted-proxy, the client it forwards for (the last
 * X-Forwarded-For entry that is not itself a trusted proxy) and whether that
 * client came over HTTPS (X-Forwarded-Proto). Nothing a client sends is
 * believed unless the connection comes from a trusted proxy.
 *
 * Threads: the list is set once at start (peer_trust), read-only after. */
#ifndef ROOST_HUB_PEER_H
#define ROOST_HUB_PEER_H

#include "hub.h"

#include <stdbool.h>

/* Trust the proxies of list, comma-separated IP addresses. 0, or -1 after
 * printing why to stderr (nothing trusted). */
int peer_trust(struct hub *h, const char *list);
/* Did the request come from this machine, not forwarded by a proxy? (A
 * request with X-Forwarded-For or Forwarded was relayed by something: not
 * "this machine" whatever the socket says.) */
bool req_loopback(struct req *r);
/* May the client of r be given url as a place to fetch from? Not a
 * loopback URL (a host listening on 127.0.0.1 or ::1 only) unless r came
 * from this machine: elsewhere it names the reader's own machine, where
 * it reaches nothing, or another program that would get the token. */
bool req_may_reach(struct req *r, const char *url);
/* Did the client reach the hub over TLS: the hub's own, or a trusted
 * proxy's (X-Forwarded-Proto: https)? */
bool req_tls(struct req *r);

#endif
