/* lifecycle: deleting a workspace, removing a user from the hub (lifecycle.c).
 *
 * Threads: request threads; the admin command's one thread. */
#ifndef ROOST_HUB_LIFECYCLE_H
#define ROOST_HUB_LIFECYCLE_H

#include "hub.h"

/* DELETE /workspaces/{id} {confirm: NAME}: the owner deletes the workspace. */
enum MHD_Result api_workspace_delete(struct req *r);
/* Was workspace ws deleted? 1, 0, or -1 on a database error. */
int lifecycle_ws_deleted(struct db *db, int64_t ws);
/* roost admin remove-user EMAIL: the exit code (0, 1, 3 refused). */
int hub_admin_remove_user(const struct hub_config *cfg, const char *email);

#endif
