/* acl: access control (docs/access.md) — entries inherited down the tree,
 * the checks every file route makes, ACL management and workspace settings
 * (acl.c).
 *
 * Threads: request threads; a struct acl belongs to one request. */
#ifndef ROOST_HUB_ACL_H
#define ROOST_HUB_ACL_H

#include "hub.h"
#include "acl_rules.h"

/* The pure rules (roles, permissions, acl_perm, acl_visible…) are in acl_rules.h. */
struct acl *acl_load(struct db *db, int64_t ws, int64_t user, enum role role);
/* The caller's ACL in r->ws_id (cached in r), NULL on a database error. */
struct acl *req_acl(struct req *r);
/* Has the caller need on path? Else replies 404 (cannot see it) or 403. */
bool acl_require(struct req *r, const char *path, bool is_file, enum perm need);
/* The same for a deleted item (at: its deleted_at). */
bool acl_require_at(struct req *r, const char *path, bool is_file, enum perm need, int64_t at);
/* May the caller read every file (an owner, an admin, or a member no entry narrows)? */
bool acl_reads_all(struct req *r);
/* Totals over what the caller may read, for answers (usage, replicas) whose
 * workspace-wide totals would tell of hidden files. st yields rows (folder
 * path, file name, key, value) and is finalized here; each distinct key of a
 * readable file counts once: count, sum of values, and how many are below
 * threshold. 0 or a db error. */
struct acl_sums {
	int64_t count, sum, below;
	int64_t read; /* rows read, the caller's or not */
};
int acl_sum_readable(struct req *r, struct db_stmt *st, int64_t threshold, struct acl_sums *out);
enum MHD_Result api_acl_get(struct req *r);
enum MHD_Result api_acl_set(struct req *r);
enum MHD_Result api_acl_delete(struct req *r);
enum MHD_Result api_workspace_update(struct req *r);
/* GET /workspaces/{id}: settings, storage mode and the caller's role. */
enum MHD_Result api_workspace_get(struct req *r);
#endif
