/* trash: deleted files and folders — the trash list and restores (trash.c).
 *
 * Threads: request threads. */
#ifndef ROOST_HUB_TRASH_H
#define ROOST_HUB_TRASH_H

#include "hub.h"

enum MHD_Result api_trash_list(struct req *r);
enum MHD_Result api_trash_restore(struct req *r);
#endif
