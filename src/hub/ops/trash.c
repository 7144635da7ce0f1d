/* ops/trash: restoring a deleted file (trash.c lists the trash). The file
 * comes back where it was, its deleted folders brought back with their ACL
 * entries, judged by the ACL as it stood when it was deleted. One
 * transaction. Runs on the calling thread. */
#include "ops.h"
#include "../../core/path.h"
#include "../../core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

char *op_trashed_path(const char *folder, const char *name)
{
	return strcmp(folder, "/") == 0 ? xasprintf("/%s", name) : xasprintf("%s/%s", folder, name);
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
		    folder);
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
	                              id);
	char *s = st && db_step(st) == DB_ROW ? xstrdup(db_col_text(st, 0)) : NULL;
	db_finalize(st);
	return s;
}

/* Bring back the deleted folders a file was in, top down, so their ACL entries
 * hold again; where a live folder has taken a path since, use that one. The
 * live folder for the file into *folder, its path into *dir (owned). 0, -EEXIST
 * (a file is in the way) or a db error. */
static int revive_folders(struct op_ctx *c, int64_t *folder, char **dir)
{
	int64_t ids[FOLDER_DEPTH_MAX], parent = 0;
	int n = deleted_chain(c->db, *folder, ids, &parent);
	char *path = n < 0 ? NULL : folder_text(c->db, parent, true);
	if (!path)
		return DB_ERR;
	int rc = 0;
	for (int i = n - 1; i >= 0 && rc == 0; i--) {
		char *name = folder_text(c->db, ids[i], false), *p = NULL;
		int64_t live = 0;
		rc = name ? 0 : DB_ERR;
		if (rc == 0) {
			p = path_join(path, name);
			rc = meta_folder_id(c->db, c->ws_id, p, &live);
		}
		struct file_info fi;
		if (rc == 0 && (rc = meta_file_get(c->db, c->ws_id, p, &fi)) == 1)
			rc = -EEXIST;
		if (rc == 0) {
			live = ids[i];
			rc =
			    db_run(c->db,
			           "UPDATE folders SET deleted_at = NULL, parent_id = ?, path = ?, "
			           "updated_at = ? WHERE id = ?",
			           parent, p, now_ms(), live) == DB_DONE &&
			            meta_change(c->db, c->ws_id, "folder.created", "folder",
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

static int trashed_get(struct op_ctx *c, int64_t id, struct trashed *t)
{
	struct db_stmt *st = db_query(
	    c->db,
	    "SELECT d.path, f.name, f.current_version_id, v.number, v.size, v.hash, f.folder_id, "
	    "f.deleted_at FROM files f JOIN folders d ON d.id = f.folder_id LEFT JOIN "
	    "file_versions v ON v.id = f.current_version_id WHERE f.id = ? AND f.workspace_id = ? "
	    "AND f.deleted_at IS NOT NULL AND f.purged_at IS NULL",
	    id, c->ws_id);
	int rc = st ? db_step(st) : DB_ERR;
	if (rc == DB_ROW) {
		t->path = op_trashed_path(db_col_text(st, 0), db_col_text(st, 1));
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

static enum op_code undo(struct op_ctx *c, enum op_code rc)
{
	db_rollback(c->db);
	return rc;
}

/* In the transaction: the trashed file t may come back (quota, access). */
static enum op_code restore_check(struct op_ctx *c, int64_t id, const struct trashed *t,
                                  struct op_err *e)
{
	if (!op_require(c, t->path, true, PERM_WRITE, t->deleted_at, e))
		return e->code;
	/* Its versions count against the quota again once it is back. */
	int64_t bytes = 0;
	if (db_int64(c->db, &bytes,
	             "SELECT COALESCE(SUM(size), 0) FROM file_versions WHERE file_id = ?",
	             id) != DB_ROW)
		return op_db(e);
	if (!limits_fit_quota(c->db, c->ws_id, bytes, e))
		return e->code;
	return OP_OK;
}

enum op_code op_trash_restore(struct op_ctx *c, int64_t id, struct trash_result *out,
                              struct op_err *e)
{
	memset(out, 0, sizeof *out);
	if (meta_begin(c->db, c->ws_id) != DB_DONE)
		return op_db(e);
	struct trashed t = {0};
	char *dir = NULL, *path = NULL;
	enum op_code ret;
	int rc = trashed_get(c, id, &t);
	/* One that was hidden from the caller when deleted answers as one that is
	 * not there: the same 404. */
	if (rc == 1 && !acl_visible_at(op_acl(c), t.path, true, t.deleted_at))
		rc = 0;
	if (rc != 1) {
		ret = undo(c, rc == 0 ? op_fail(e, OP_NOT_FOUND,
		                                "no file %lld in the trash (restored, purged, or "
		                                "never deleted)",
		                                (long long)id)
		                      : op_db(e));
		goto out;
	}
	if ((ret = restore_check(c, id, &t, e)) != OP_OK) {
		undo(c, ret);
		goto out;
	}
	int64_t folder = t.folder, other = 0;
	struct file_info fi;
	rc = revive_folders(c, &folder, &dir);
	path = dir ? path_join(dir, t.name) : NULL;
	if (rc == 0 && (meta_file_get(c->db, c->ws_id, path, &fi) == 1 ||
	                meta_folder_id(c->db, c->ws_id, path, &other) == 1))
		rc = -EEXIST;
	if (rc == -EEXIST) {
		ret = undo(c, op_fail(e, OP_EXISTS,
		                      "%s is taken now; move that away first, then restore",
		                      path ? path : t.path));
		goto out;
	}
	/* It comes back as a new file at path: the caller must be able to write there now. */
	if (rc == 0 && !op_require(c, path, true, PERM_WRITE, ACL_NOW, e)) {
		ret = undo(c, e->code);
		goto out;
	}
	if (rc != 0 ||
	    db_run(c->db,
	           "UPDATE files SET deleted_at = NULL, folder_id = ?, updated_at = ? WHERE id = ?",
	           folder, now_ms(), id) != DB_DONE ||
	    meta_change(c->db, c->ws_id, "file.version", "file",
	                json_pack("{s:I, s:s, s:I, s:I, s:I, s:s, s:b}", "id", (json_int_t)id,
	                          "path", path, "version", (json_int_t)t.number, "version_id",
	                          (json_int_t)t.vid, "size", (json_int_t)t.size, "hash", t.hash,
	                          "restored", 1)) != 0 ||
	    meta_audit_op(c, "file.restore", path, json_pack("{s:I}", "id", (json_int_t)id)) != 0 ||
	    meta_commit_op(c) != OP_OK) {
		ret = undo(c, op_db(e));
		goto out;
	}
	out->path = path;
	out->version = t.number;
	path = NULL;
	ret = OP_OK;
out:
	free(t.path);
	free(t.name);
	free(dir);
	free(path);
	return ret;
}
