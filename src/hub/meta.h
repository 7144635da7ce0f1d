/* meta: folders, files and versions as the database holds them; the change
 * feed's and the audit log's writers; a workspace's write transaction
 * (meta.c).
 *
 * Threads: request threads and the jobs thread, each on its own connection. */
#ifndef ROOST_HUB_META_H
#define ROOST_HUB_META_H

#include "hub.h"

struct file_info {
	int64_t id, folder_id, size, version_id, version_no, updated_at, updated_by;
	char name[256];
	char hash[65];
	char content_type[128];
};
/* 1 found, 0 not found, <0 db error. */
int meta_folder_id(struct db *db, int64_t ws, const char *path, int64_t *id);
int meta_file_get(struct db *db, int64_t ws, const char *path, struct file_info *fi);
int meta_version_get(struct db *db, int64_t file_id, int64_t number, struct file_info *fi);
/* Version (0: current) of the file at path, which the caller must be allowed
 * to read; false after replying 404/403 (or a database error). */
bool meta_readable_version(struct req *r, const char *path, int64_t version, struct file_info *fi);
/* A version by id, of a live file in workspace ws. */
int meta_version_by_id(struct db *db, int64_t ws, int64_t version_id, struct file_info *fi);
/* Create path's folders as needed (the caller holds a transaction). The last one's
 * id into *id. Returns an enum op_code (ops/ops.h): OP_OK, OP_EXISTS if a file
 * is in the way, or OP_DB. meta.c's writers all return op codes. */
int meta_mkdirs(struct db *db, int64_t ws, const char *path, int64_t user, int64_t *id,
                bool *created);
/* Append to the change feed and the audit log (inside the caller's transaction). */
int meta_change(struct db *db, int64_t ws, const char *kind, const char *entity,
                json_t *payload /* stolen */);
int meta_audit(struct req *r, const char *action, const char *target, json_t *detail);

/* Attribution of a version or an audit row: who (a user), and through what
 * (a host, or a share link). Select META_VIA_COLS (five columns) with
 * META_VIA_JOINS(host id column, share id column) and hand the first
 * column's index to meta_via_json. */
#define META_VIA_COLS                                                                              \
	"vh.id, vh.label, CASE WHEN vh.revoked_at IS NULL THEN 0 ELSE 1 END, vs.id, CASE WHEN "    \
	"vs.file_id IS NOT NULL THEN (CASE WHEN vsfd.path = '/' THEN '/' || vsf.name ELSE "        \
	"vsfd.path || '/' || vsf.name END) ELSE vsd.path END "
#define META_VIA_JOINS(host, share)                                                                \
	" LEFT JOIN hosts vh ON vh.id = " host " LEFT JOIN share_links vs ON vs.id = " share       \
	" LEFT JOIN folders vsd ON vsd.id = vs.folder_id LEFT JOIN files vsf ON vsf.id = "         \
	"vs.file_id LEFT JOIN folders vsfd ON vsfd.id = vsf.folder_id "
/* Set "by" (the user's email, null for a link's anonymous client) and "via"
 * on o: null; {"host_id", "host": its current label, or null once removed,
 * "removed"}; or {"share_id", and with share_target "share": the link's
 * target}. The target is for the audit log's readers only: it may name a
 * folder a reader of a version below it cannot see. */
void meta_via_json(json_t *o, struct db_stmt *st, int col, const char *email, bool share_target);

/* Commit a mutation and wake feed subscribers. */
int meta_commit(struct req *r);

/* Begin a transaction that mutates workspace ws. It takes the workspace's lock
 * first (its workspace_counters row), so concurrent writers to one workspace
 * serialize on PostgreSQL as BEGIN IMMEDIATE makes them on SQLite. */
int meta_begin(struct db *db, int64_t ws);
#endif
