/* policy: which of a host's folder policies (pinned, on-demand, exclude)
 * applies to a path. Pure: the caller passes the list, and holds the lock
 * that guards it (host_policy in agent.c holds h->mu). */
#ifndef ROOST_HOST_POLICY_H
#define ROOST_HOST_POLICY_H

#include <jansson.h>

enum policy { POL_PINNED, POL_ON_DEMAND, POL_EXCLUDE };

/* The policy of path (a workspace path) under policies, an array of
 * {folder, mode} as the hub sends them: the longest folder that is path or
 * an ancestor of it decides (of two on the same folder, the later); with
 * none, pinned. */
enum policy policy_match(json_t *policies, const char *path);

#endif
