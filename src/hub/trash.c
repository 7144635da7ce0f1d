/* trash: deleted files, restorable until the workspace's trash_days pass and
 * GC purges them (jobs.c).
 *
 *   GET  trash?limit=N&before=ID   deleted files the caller may read, newest first
 *   POST trash/restore {id}        the file back where it was (its deleted folders
 *                                  brought back, with their ACL entries), with its
 *                                  versions
 *
 * A deleted file is judged by the ACL as it stood when it was deleted
 * (acl_perm_at with its deleted_at): deleting never shows a member what they
 * could not see before. */
#include "hub.h"
#include "meta.h"
#include "trash.h"
#include "limits.h"
#include "acl.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <errno.h>
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
		if (a && acl_perm_at(a, path, true, at) >= PERM_READ)
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

#define FOLDER_DEPTH_MAX 512

/* The deleted folders above folder (itself first, up to a live one, whose id
 * goes into *top). Returns how many, or -1 on a database error. */
static int deleted_chain(struct db *db, int64_t folder, int64_t ids[FOLDER_DEPTH_MAX], int64_t *top)
{
	int n = 0;
	for (;;) {
		struct db_stmt *st = db_query(
		    db,
		    "SELECT parent_id, CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END FROM folders "
		    "WHERE id = ?",
		    "i", folder);
		int rc = st ? db_step(st) : DB_ERR;
		bool deleted = rc == DB_ROW && db_col_int64(st, 1) != 0;
		int64_t parent = rc == DB_ROW ? db_col_int64(st, 0) : 0;
		db_finalize(st);
		if (rc != DB_ROW || (deleted && (parent <= 0 || n == FOLDER_DEPTH_MAX)))
			return -1;
		if (!deleted) {
			*top = folder;
			return n;
		}
		ids[n++] = folder;
		folder = parent;
	}
}

/* A folder's name or path (owned), NULL if none or on an error. */
static char *folder_text(struct db *db, int64_t id, bool path)
{
	struct db_stmt *st = db_query(db,
	                              path ? "SELECT path FROM folders WHERE id = ?"
	                                   : "SELECT name FROM folders WHERE id = ?",
	                              "i", id);
	char *s = st && db_step(st) == DB_ROW ? xstrdup(db_col_text(st, 0)) : NULL;
	db_finalize(st);
	return s;
}

/* Bring back the deleted folders a file was in, top down, so their ACL entries
 * hold again; where a live folder has taken a path since, use that one. The
 * live folder for the file into *folder, its path into *dir (owned). 0, -EEXIST
 * (a file is in the way) or a db error. */
static int revive_folders(struct req *r, int64_t *folder, char **dir)
{
	int64_t ids[FOLDER_DEPTH_MAX], parent = 0;
	int n = deleted_chain(r->db, *folder, ids, &parent);
	char *path = n < 0 ? NULL : folder_text(r->db, parent, true);
	if (!path)
		return DB_ERR;
	int rc = 0;
	for (int i = n - 1; i >= 0 && rc == 0; i--) {
		char *name = folder_text(r->db, ids[i], false), *p = NULL;
		int64_t live = 0;
		rc = name ? 0 : DB_ERR;
		if (rc == 0) {
			p = path_join(path, name);
			rc = meta_folder_id(r->db, r->ws_id, p, &live);
		}
		struct file_info fi;
		if (rc == 0 && (rc = meta_file_get(r->db, r->ws_id, p, &fi)) == 1)
			rc = -EEXIST;
		if (rc == 0) {
			live = ids[i];
			rc =
			    db_run(r->db,
			           "UPDATE folders SET deleted_at = NULL, parent_id = ?, path = ?, "
			           "updated_at = ? WHERE id = ?",
			           "itii", parent, p, now_ms(), live) == DB_DONE &&
			            meta_change(r->db, r->ws_id, "folder.created", "folder",
			                        json_pack("{s:I, s:s}", "id", (json_int_t)live,
			                                  "path", p)) == 0
			        ? 0
			        : DB_ERR;
		} else if (rc == 1) {
			rc = 0; /* a live folder holds the path now: the file goes in there */
		}
		free(name);
		free(path);
		path = p;
		parent = live;
	}
	*folder = parent;
	*dir = path;
	return rc;
}

/* A file in the trash: its path then, its folder, deleted_at and current version. */
struct trashed {
	char *path, *name;
	int64_t folder, deleted_at, vid, number, size;
	char hash[HASH_HEX_LEN + 1];
};

static int trashed_get(struct req *r, int64_t id, struct trashed *t)
{
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT d.path, f.name, f.current_version_id, v.number, v.size, v.hash, f.folder_id, "
	    "f.deleted_at FROM files f JOIN folders d ON d.id = f.folder_id LEFT JOIN "
	    "file_versions v ON v.id = f.current_version_id WHERE f.id = ? AND f.workspace_id = ? "
	    "AND f.deleted_at IS NOT NULL AND f.purged_at IS NULL",
	    "ii", id, r->ws_id);
	int rc = st ? db_step(st) : DB_ERR;
	if (rc == DB_ROW) {
		t->path = trashed_path(db_col_text(st, 0), db_col_text(st, 1));
		t->name = xstrdup(db_col_text(st, 1));
		t->vid = db_col_int64(st, 2);
		t->number = db_col_int64(st, 3);
		t->size = db_col_int64(st, 4);
		snprintf(t->hash, sizeof t->hash, "%s",
		         db_col_text(st, 5) ? db_col_text(st, 5) : "");
		t->folder = db_col_int64(st, 6);
		t->deleted_at = db_col_int64(st, 7);
	}
	db_finalize(st);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : DB_ERR;
}

enum MHD_Result api_trash_restore(struct req *r)
{
	int64_t id = 0;
	if (!json_get_int(r->json, "id", &id) || id < 1)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "id (a deleted file's id, from GET trash) is required");
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	struct trashed t = {0};
	char *dir = NULL, *path = NULL;
	enum MHD_Result ret = MHD_YES;
	int rc = trashed_get(r, id, &t);
	/* One that was hidden from the caller when deleted answers as one that is
	 * not there: the same 404. */
	if (rc == 1 && !acl_visible_at(req_acl(r), t.path, true, t.deleted_at))
		rc = 0;
	if (rc != 1) {
		db_rollback(r->db);
		ret = rc == 0 ? reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
		                            "no file %lld in the trash (restored, purged, or never "
		                            "deleted)",
		                            (long long)id)
		              : reply_db_error(r);
		goto out;
	}
	if (!acl_require_at(r, t.path, true, PERM_WRITE, t.deleted_at)) {
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
	int64_t folder = t.folder, other = 0;
	struct file_info fi;
	rc = revive_folders(r, &folder, &dir);
	path = dir ? path_join(dir, t.name) : NULL;
	if (rc == 0 && (meta_file_get(r->db, r->ws_id, path, &fi) == 1 ||
	                meta_folder_id(r->db, r->ws_id, path, &other) == 1))
		rc = -EEXIST;
	if (rc == -EEXIST) {
		db_rollback(r->db);
		ret = reply_error(r, MHD_HTTP_CONFLICT, "exists",
		                  "%s is taken now; move that away first, then restore",
		                  path ? path : t.path);
		goto out;
	}
	/* It comes back as a new file at path: the caller must be able to write there now. */
	if (rc == 0 && !acl_require(r, path, true, PERM_WRITE)) {
		db_rollback(r->db);
		goto out;
	}
	if (rc != 0 ||
	    db_run(r->db,
	           "UPDATE files SET deleted_at = NULL, folder_id = ?, updated_at = ? WHERE id = ?",
	           "iii", folder, now_ms(), id) != DB_DONE ||
	    meta_change(r->db, r->ws_id, "file.version", "file",
	                json_pack("{s:I, s:s, s:I, s:I, s:I, s:s, s:b}", "id", (json_int_t)id,
	                          "path", path, "version", (json_int_t)t.number, "version_id",
	                          (json_int_t)t.vid, "size", (json_int_t)t.size, "hash", t.hash,
	                          "restored", 1)) != 0 ||
	    meta_audit(r, "file.restore", path, json_pack("{s:I}", "id", (json_int_t)id)) != 0 ||
	    meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		ret = reply_db_error(r);
		goto out;
	}
	ret = reply_json(r, MHD_HTTP_OK,
	                 json_pack("{s:s, s:I, s:I}", "restored", path, "id", (json_int_t)id,
	                           "version", (json_int_t)t.number));
out:
	free(t.path);
	free(t.name);
	free(dir);
	free(path);
	return ret;
}
