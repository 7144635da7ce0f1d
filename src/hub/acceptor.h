/* acceptor: the hub's listening sockets when it serves plain HTTP (acceptor.c).
 *
 * One thread accepts on every port with epoll and hands each connection to a
 * libmicrohttpd daemon with MHD_add_connection: a connection whose first
 * request line is a GET of a workspace's events route goes to the feed daemon
 * (one event loop where feed.c suspends idle subscribers), every other one to
 * its port's thread-per-connection daemon. Deciding needs the request line, so
 * a new connection waits in the acceptor's epoll set until its first bytes
 * arrive (peeked, not read: the daemon parses them itself), at most the head
 * timeout: a silent client costs a descriptor, never a thread. Waiting
 * connections count against the per-address limit as the daemons' do.
 *
 * With the hub's own TLS the request line cannot be peeked: the daemons listen
 * themselves and the feed keeps a thread per subscriber (server.c).
 *
 * Threads: its own; acceptor_start and acceptor_stop from the main thread. */
#ifndef ROOST_HUB_ACCEPTOR_H
#define ROOST_HUB_ACCEPTOR_H

#include "hub.h"

#include <sys/socket.h>

#define ACCEPTOR_PORTS 3

struct acceptor;

/* A listening socket bound to ss (IPv6 only if v6, as libmicrohttpd binds), or
 * a negative errno. */
int acceptor_listen(const struct sockaddr_storage *ss, bool v6);
/* Takes the listening sockets fds[i] (closed by acceptor_stop); connections
 * on fds[i] go to threaded[i] or, for the feed, to feed. NULL if the thread
 * cannot start (the sockets are closed). */
struct acceptor *acceptor_start(struct hub *hub, const int fds[ACCEPTOR_PORTS],
                                struct MHD_Daemon *const threaded[ACCEPTOR_PORTS],
                                struct MHD_Daemon *feed);
/* Stops accepting and closes the connections still waiting for their request
 * line; before the daemons stop. NULL: nothing. */
void acceptor_stop(struct acceptor *a);

#endif
