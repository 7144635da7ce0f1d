/* trash: deleted files and folders — the trash list and restores (trash.c).
 *
 * Threads: request threads. */
#ifndef ROOST_HUB_TRASH_H
#define ROOST_HUB_TRASH_H

#include "hub.h"

enum MHD_Result api_trash_list(struct req *r);
enum MHD_Result api_trash_restore(struct req *r);
/* POST trash/empty {path?, id?}: delete for good (owners and admins). */
enum MHD_Result api_trash_empty(struct req *r);
/* May r's credential delete for good (not a host's, not an app password)?
 * false after replying 403. */
bool trash_caller_may_purge(struct req *r);
#endif
