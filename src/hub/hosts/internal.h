/* hosts/internal.h: what the files of hosts/ share and nothing else sees —
 * the checks every host route makes, and the two steps one concern's file
 * takes on behalf of another's (a join sets policies; a removal retires the
 * relay slug).
 *
 * Threads: request threads; no state. */
#ifndef ROOST_HUB_HOSTS_INTERNAL_H
#define ROOST_HUB_HOSTS_INTERNAL_H

#include "hosts.h"

#define LABEL_MAX 64 /* a host's label, in bytes */

/* Is the caller an owner or admin (not a host)? Else replies 403. */
bool hosts_need_admin(struct req *r);
/* Did a host's credential make the request? Else replies 403. */
bool hosts_need_host(struct req *r);
/* params[1]: a host id, or "self" for the calling host. 0 after replying 404. */
int64_t hosts_param(struct req *r);
/* Set host's mode (pinned, on-demand, exclude, inherit) for folder, created
 * as needed, in the caller's transaction; a change on the feed. 0, -EPERM
 * (a reserved name), -EEXIST (a file is in the way) or a db error. */
int hosts_set_policy(struct req *r, int64_t host, const char *folder, const char *mode);
/* Put host's relay slug (into old, "" if none) on the relays' revocation
 * list from effective_at, and clear it. In the caller's transaction. */
int hosts_slug_retire(struct db *db, int64_t host, int64_t effective_at, char old[64]);

#endif
