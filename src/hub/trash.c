/* trash: deleted files, restorable until the workspace's trash_days pass and
 * GC purges them (jobs.c).
 *
 *   GET  trash?limit=N&before=ID   deleted files the caller may read, newest first
 *   POST trash/restore {id}        the file back where it was (its folders made
 *                                  again if they are gone), with its versions */
#include "hub.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <stdlib.h>
#include <string.h>

#define DAY_MS (86400 * 1000ll)

/* A deleted file's path: its folder's (live or not) and its name. */
static char *trashed_path(const char *folder, const char *name)
{
	return strcmp(folder, "/") == 0 ? xasprintf("/%s", name) : xasprintf("%s/%s", folder, name);
}

enum MHD_Result api_trash_list(struct req *r)
{
	int64_t limit = 100, before = 0, days = 30;
	const char *l = req_arg(r, "limit", NULL), *b = req_arg(r, "before", NULL);
	if ((l && ((limit = parse_id(l)) < 1 || limit > 1000)) || (b && (before = parse_id(b)) < 1))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "limit is 1..1000 and before a file id");
	db_int64(r->db, &days, "SELECT trash_days FROM workspaces WHERE id = ?", "i", r->ws_id);
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT f.id, d.path, f.name, f.size, f.deleted_at, (SELECT COUNT(*) FROM "
	    "file_versions v WHERE v.file_id = f.id) FROM files f JOIN folders d ON d.id = "
	    "f.folder_id WHERE f.workspace_id = ? AND f.deleted_at IS NOT NULL AND f.purged_at IS "
	    "NULL AND (? = 0 OR f.id < ?) ORDER BY f.deleted_at DESC, f.id DESC LIMIT ?",
	    "iiii", r->ws_id, before, before, limit);
	if (!st)
		return reply_db_error(r);
	struct acl *a = req_acl(r);
	json_t *arr = json_array();
	while (db_step(st) == DB_ROW) {
		char *path = trashed_path(db_col_text(st, 1), db_col_text(st, 2));
		int64_t at = db_col_int64(st, 4);
		if (a && acl_perm(a, path, true) >= PERM_READ)
			json_array_append_new(
			    arr,
			    json_pack("{s:I, s:s, s:I, s:I, s:I, s:I}", "id",
			              (json_int_t)db_col_int64(st, 0), "path", path, "size",
			              (json_int_t)db_col_int64(st, 3), "deleted_at", (json_int_t)at,
			              "expires_at", (json_int_t)(at + days * DAY_MS), "versions",
			              (json_int_t)db_col_int64(st, 5)));
		free(path);
	}
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:o, s:I}", "entries", arr, "trash_days", (json_int_t)days));
}

enum MHD_Result api_trash_restore(struct req *r)
{
	int64_t id = 0;
	if (!json_get_int(r->json, "id", &id) || id < 1)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "id (a deleted file's id, from GET trash) is required");
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT d.path, f.name, f.current_version_id, v.number, v.size, v.hash FROM files f "
	    "JOIN folders d ON d.id = f.folder_id LEFT JOIN file_versions v ON v.id = "
	    "f.current_version_id WHERE f.id = ? AND f.workspace_id = ? AND f.deleted_at IS NOT "
	    "NULL AND f.purged_at IS NULL",
	    "ii", id, r->ws_id);
	char *path = NULL, *parent = NULL, *name = NULL, hash[HASH_HEX_LEN + 1] = "";
	int64_t vid = 0, number = 0, size = 0;
	if (st && db_step(st) == DB_ROW) {
		path = trashed_path(db_col_text(st, 0), db_col_text(st, 1));
		vid = db_col_int64(st, 2);
		number = db_col_int64(st, 3);
		size = db_col_int64(st, 4);
		snprintf(hash, sizeof hash, "%s", db_col_text(st, 5) ? db_col_text(st, 5) : "");
	}
	db_finalize(st);
	enum MHD_Result ret = MHD_YES;
	if (!path) {
		db_rollback(r->db);
		return reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
		                   "no file %lld in the trash (restored, purged, or never deleted)",
		                   (long long)id);
	}
	if (!acl_require(r, path, true, PERM_WRITE)) {
		db_rollback(r->db);
		goto out;
	}
	/* Its versions count against the quota again once it is back. */
	int64_t bytes = 0;
	if (db_int64(r->db, &bytes,
	             "SELECT COALESCE(SUM(size), 0) FROM file_versions WHERE file_id = ?", "i",
	             id) != DB_ROW) {
		db_rollback(r->db);
		ret = reply_db_error(r);
		goto out;
	}
	if (!limits_allow_quota(r, bytes)) {
		db_rollback(r->db);
		goto out;
	}
	path_split(path, &parent, &name);
	int64_t folder = 0, other = 0;
	bool created = false;
	struct file_info fi;
	int rc = meta_mkdirs(r->db, r->ws_id, parent, r->user_id, &folder, &created);
	if (rc == 0 && (meta_file_get(r->db, r->ws_id, path, &fi) == 1 ||
	                meta_folder_id(r->db, r->ws_id, path, &other) == 1)) {
		db_rollback(r->db);
		ret = reply_error(r, MHD_HTTP_CONFLICT, "exists",
		                  "%s is taken now; move that away first, then restore", path);
		goto out;
	}
	if (rc != 0 ||
	    db_run(r->db,
	           "UPDATE files SET deleted_at = NULL, folder_id = ?, updated_at = ? WHERE id = ?",
	           "iii", folder, now_ms(), id) != DB_DONE ||
	    meta_change(r->db, r->ws_id, "file.version", "file",
	                json_pack("{s:I, s:s, s:I, s:I, s:I, s:s, s:b}", "id", (json_int_t)id,
	                          "path", path, "version", (json_int_t)number, "version_id",
	                          (json_int_t)vid, "size", (json_int_t)size, "hash", hash,
	                          "restored", 1)) != 0 ||
	    meta_audit(r, "file.restore", path, json_pack("{s:I}", "id", (json_int_t)id)) != 0 ||
	    meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		ret = reply_db_error(r);
		goto out;
	}
	ret = reply_json(r, MHD_HTTP_OK,
	                 json_pack("{s:s, s:I, s:I}", "restored", path, "id", (json_int_t)id,
	                           "version", (json_int_t)number));
out:
	free(path);
	free(parent);
	free(name);
	return ret;
}
