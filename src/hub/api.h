/* api: the metadata endpoints — list, info, versions, mkdir, move, delete,
 * usage, audit — and a workspace's chunking parameters (api.c).
 *
 * Threads: request threads. */
#ifndef ROOST_HUB_API_H
#define ROOST_HUB_API_H

#include "hub.h"

enum MHD_Result api_workspaces(struct req *r);
enum MHD_Result api_list(struct req *r);
/* A folder's entries the caller may see (JSON array): folders, then files. */
json_t *list_entries(struct req *r, int64_t folder_id, const char *path);
enum MHD_Result api_info(struct req *r);
enum MHD_Result api_versions(struct req *r);
enum MHD_Result api_mkdir(struct req *r);
enum MHD_Result api_move(struct req *r);
enum MHD_Result api_delete(struct req *r);
enum MHD_Result api_usage(struct req *r);
enum MHD_Result api_audit(struct req *r);

/* The workspace's chunking parameters. */
int hub_ws_chunking(struct db *db, int64_t ws, struct chunker_params *p);
#endif
