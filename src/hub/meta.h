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
/* Commit a mutation and wake feed subscribers. */
int meta_commit(struct req *r);

/* Begin a transaction that mutates workspace ws. It takes the workspace's row
 * lock first, so concurrent writers to one workspace serialize on PostgreSQL as
 * BEGIN IMMEDIATE makes them on SQLite. */
int meta_begin(struct db *db, int64_t ws);
#endif
