/* dav/route.h: the WebDAV route's hooks (dav.c) as the route table sees them;
 * what the WebDAV files share among themselves is dav.h.
 *
 * Threads: request threads on the content port. */
#ifndef ROOST_HUB_DAV_ROUTE_H
#define ROOST_HUB_DAV_ROUTE_H

#include "../hub.h"

/* dav.c: WebDAV (RFC 4918 class 1 and 2) under /dav/WORKSPACE/ on the content port */
enum MHD_Result dav_begin(struct req *r);
int dav_data(struct req *r, const char *data, size_t len);
enum MHD_Result dav_handle(struct req *r);
/* libmicrohttpd's URL unescaping, except that an encoded NUL in a /dav/ path
 * becomes a byte the path validator refuses instead of cutting the path short. */
size_t dav_unescape(void *cls, struct MHD_Connection *c, char *s);
#endif
