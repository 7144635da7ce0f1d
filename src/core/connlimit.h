/* connlimit: the connection policy of a libmicrohttpd daemon (the hub's
 * ports, a host's content server). At most N connections at once per client
 * address (an IPv6 client's /64), so one address cannot take every slot; and
 * a short idle timeout until a connection has sent a whole request head, the
 * long one only while a request is in progress (a body, a download, a feed). */
#ifndef ROOST_CONNLIMIT_H
#define ROOST_CONNLIMIT_H

#include <microhttpd.h>
#include <stdint.h>

#define CONNS_PER_IP_DEFAULT 128 /* a CLI put opens up to 64, a browser 6 per port */
#define HEAD_TIMEOUT_DEFAULT 15  /* seconds to send a request head */
#define IDLE_TIMEOUT_S       120 /* a request in progress may be quiet this long */

struct connlimit;

/* per_ip <= 0: no per-address limit (the timeouts still apply). */
struct connlimit *connlimit_new(int per_ip, unsigned head_timeout_s);
void connlimit_free(struct connlimit *cl);
/* MHD_AcceptPolicyCallback (cls: the connlimit): refuses an address at its limit. */
enum MHD_Result connlimit_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
/* MHD_NotifyConnectionCallback (cls: the connlimit): counts connections. */
void connlimit_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode toe);
/* A connection accepted outside libmicrohttpd (the hub's acceptor) that waits
 * for its first bytes: counted like the daemons' own, so a client cannot hold
 * more than its share while silent. NULL: the address is at its limit. Release
 * with connlimit_unhold before handing the connection to a daemon (which counts
 * it again). */
void *connlimit_hold(struct connlimit *cl, const struct sockaddr *addr);
void connlimit_unhold(struct connlimit *cl, void *hold);
/* A request head arrived: the connection may idle IDLE_TIMEOUT_S until the
 * request completes (connlimit_request_done), then the head timeout again. */
void connlimit_head_done(struct MHD_Connection *c);
void connlimit_request_done(const struct connlimit *cl, struct MHD_Connection *c);

#endif
