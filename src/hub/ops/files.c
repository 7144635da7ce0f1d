/* ops/files: the folder tree's mutations: mkdir, move (rename) and delete
 * (to the trash). Each is one transaction that also appends to the change
 * feed and the audit log. Runs on the calling thread. */
#include "ops.h"
#include "../../core/path.h"
#include "../../core/util.h"

#include <stdlib.h>
#include <string.h>

/* Roll the transaction back; returns rc. */
static enum op_code undo(struct op_ctx *c, enum op_code rc)
{
	db_rollback(c->db);
	return rc;
}

/* In a transaction: may path's folder be made (rc OP_OK), is it there
 * already, or is its parent missing? */
static enum op_code mkdir_check(struct op_ctx *c, const char *path, const char *parent,
                                bool parents, struct op_err *e)
{
	int64_t id = 0, pid = 0;
	int rc = meta_folder_id(c->db, c->ws_id, path, &id);
	if (rc == 1 && !parents)
		return op_fail(e, OP_EXISTS, "%s already exists", path);
	if (rc == 0 && !parents && meta_folder_id(c->db, c->ws_id, parent, &pid) == 0)
		return op_fail(e, OP_PARENT_NOT_FOUND,
		               "parent folder %s does not exist (use parents)", parent);
	return OP_OK;
}

enum op_code op_mkdir(struct op_ctx *c, const char *path, bool parents, struct mkdir_result *out,
                      struct op_err *e)
{
	memset(out, 0, sizeof *out);
	if (!op_require(c, path, false, PERM_WRITE, ACL_NOW, e) || !op_path_writable(path, e))
		return e->code;
	char *parent = NULL, *name = NULL;
	enum op_code rc;
	if (meta_begin(c->db, c->ws_id) != DB_DONE)
		return op_db(e);
	if (!path_split(path, &parent, &name)) {
		out->root = true;
		return undo(c, parents ? OP_OK : op_fail(e, OP_EXISTS, "the root exists"));
	}
	rc = mkdir_check(c, path, parent, parents, e);
	if (rc != OP_OK) {
		undo(c, rc);
		goto out;
	}
	rc = meta_mkdirs(c->db, c->ws_id, path, c->user_id, &out->id, &out->created);
	if (rc == OP_EXISTS) {
		undo(c, rc);
		op_fail(e, OP_EXISTS, "a file is in the way of folder %s", path);
		goto out;
	}
	if (rc != OP_OK || (out->created && meta_audit_op(c, "folder.create", path, NULL) != 0) ||
	    meta_commit_op(c) != OP_OK)
		rc = undo(c, op_db(e));
out:
	free(parent);
	free(name);
	return rc;
}

static bool is_inside(const char *path, const char *folder)
{
	size_t n = strlen(folder);
	return strncmp(path, folder, n) == 0 && (path[n] == '/' || path[n] == 0);
}

/* What is at path: 1 a file (*fi), 2 a folder (*folder), 0 nothing, <0 error. */
static int what_is(struct op_ctx *c, const char *path, struct file_info *fi, int64_t *folder)
{
	int is_file = meta_file_get(c->db, c->ws_id, path, fi);
	if (is_file != 0)
		return is_file;
	int is_folder = meta_folder_id(c->db, c->ws_id, path, folder);
	return is_folder == 1 ? 2 : is_folder;
}

/* The rows of a move (the transaction's). */
static int move_rows(struct op_ctx *c, const char *from, const char *to, bool is_file, int64_t id,
                     int64_t dst_parent, const char *tname)
{
	int64_t now = now_ms();
	if (is_file)
		return db_run(
		    c->db, "UPDATE files SET folder_id = ?, name = ?, updated_at = ? WHERE id = ?",
		    dst_parent, tname, now, id);
	/* Rename the folder, then rewrite the paths of everything below it. */
	int rc = db_run(c->db,
	                "UPDATE folders SET parent_id = ?, name = ?, path = ?, updated_at = ? "
	                "WHERE id = ?",
	                dst_parent, tname, to, now, id);
	char *prefix = xasprintf("%s/", from);
	if (rc == DB_DONE)
		rc = db_run(c->db,
		            "UPDATE folders SET path = ? || substr(path, ?) WHERE "
		            "workspace_id = ? AND deleted_at IS NULL AND "
		            "substr(path, 1, ?) = ?",
		            to, (int64_t)utf8_chars(from) + 1, c->ws_id,
		            (int64_t)utf8_chars(prefix), prefix);
	free(prefix);
	return rc;
}

/* In the move's transaction: everything but the rows. OP_OK to go on; a
 * same-path move is done (*noop) without a change. */
static enum op_code move_check(struct op_ctx *c, const char *from, const char *to,
                               const char *tparent, int kind, int64_t *dst_parent, bool *noop,
                               struct op_err *e)
{
	bool is_file = kind == 1;
	int64_t other = 0;
	struct file_info tmp;
	if (kind == 0)
		return op_fail(e, OP_NOT_FOUND, "no such path: %s", from);
	/* The source, everything below it and the destination must be writable. */
	if (!op_require(c, from, is_file, PERM_WRITE, ACL_NOW, e) ||
	    !op_require(c, to, is_file, PERM_WRITE, ACL_NOW, e) ||
	    (!is_file && !op_subtree_writable(c, from, e)))
		return e->code;
	if (meta_folder_id(c->db, c->ws_id, tparent, dst_parent) != 1)
		return op_fail(e, OP_PARENT_NOT_FOUND, "destination folder %s does not exist",
		               tparent);
	if (!is_file && is_inside(to, from))
		return op_fail(e, OP_INVALID_MOVE, "cannot move a folder into itself");
	if (strcmp(from, to) == 0) {
		*noop = true;
		return OP_OK;
	}
	if (meta_file_get(c->db, c->ws_id, to, &tmp) == 1 ||
	    meta_folder_id(c->db, c->ws_id, to, &other) == 1)
		return op_fail(e, OP_EXISTS, "%s already exists", to);
	return OP_OK;
}

/* A move's change. A file's names the version it carries: a host that has
 * not fetched that version yet (its manifest's path is gone by then) fetches
 * it at the new path. */
static json_t *moved_payload(int64_t id, const char *from, const char *to,
                             const struct file_info *fi)
{
	json_t *p = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "from", from, "to", to);
	if (fi) {
		json_object_set_new(p, "version_id", json_integer(fi->version_id));
		json_object_set_new(p, "version", json_integer(fi->version_no));
		json_object_set_new(p, "hash", json_string(fi->hash));
		json_object_set_new(p, "size", json_integer(fi->size));
	}
	return p;
}

enum op_code op_move(struct op_ctx *c, const char *from, const char *to, struct op_err *e)
{
	char *tparent = NULL, *tname = NULL;
	struct file_info fi;
	int64_t src_folder = 0, dst_parent = 0;
	bool noop = false;
	enum op_code rc;
	if (!op_path_writable(to, e))
		return e->code;
	if (strcmp(from, "/") == 0 || !path_split(to, &tparent, &tname)) {
		rc = op_fail(e, OP_INVALID_PATH, "the workspace root cannot be moved or replaced");
		goto out;
	}
	if (meta_begin(c->db, c->ws_id) != DB_DONE) {
		rc = op_db(e);
		goto out;
	}
	int kind = what_is(c, from, &fi, &src_folder);
	if (kind < 0) {
		rc = undo(c, op_db(e));
		goto out;
	}
	rc = move_check(c, from, to, tparent, kind, &dst_parent, &noop, e);
	if (rc != OP_OK || noop) {
		undo(c, rc);
		goto out;
	}
	bool is_file = kind == 1;
	if (move_rows(c, from, to, is_file, is_file ? fi.id : src_folder, dst_parent, tname) !=
	        DB_DONE ||
	    meta_change(
	        c->db, c->ws_id, is_file ? "file.moved" : "folder.moved",
	        is_file ? "file" : "folder",
	        moved_payload(is_file ? fi.id : src_folder, from, to, is_file ? &fi : NULL)) != 0 ||
	    meta_audit_op(c, is_file ? "file.move" : "folder.move", from,
	                  json_pack("{s:s}", "to", to)) != 0 ||
	    meta_commit_op(c) != OP_OK)
		rc = undo(c, op_db(e));
out:
	free(tparent);
	free(tname);
	return rc;
}

/* The rows of a delete: the file, or the folder and everything below it. */
static int delete_rows(struct op_ctx *c, const char *path, bool is_file, int64_t file_id,
                       int64_t now)
{
	if (is_file)
		return db_run(c->db, "UPDATE files SET deleted_at = ? WHERE id = ?", now, file_id);
	/* The folder and everything below it go to the trash together. */
	char *prefix = xasprintf("%s/", path);
	const char *sub = "SELECT id FROM folders WHERE workspace_id = ? AND "
	                  "deleted_at IS NULL AND (path = ? OR substr(path, 1, ?) = ?)";
	char *sql = xasprintf("UPDATE files SET deleted_at = ? WHERE deleted_at IS NULL "
	                      "AND folder_id IN (%s)",
	                      sub);
	int rc = db_run(c->db, sql, now, c->ws_id, path, (int64_t)utf8_chars(prefix), prefix);
	free(sql);
	if (rc == DB_DONE)
		rc = db_run(c->db,
		            "UPDATE folders SET deleted_at = ? WHERE workspace_id = ? AND "
		            "deleted_at IS NULL AND (path = ? OR substr(path, 1, ?) = ?)",
		            now, c->ws_id, path, (int64_t)utf8_chars(prefix), prefix);
	free(prefix);
	return rc;
}

/* The files a delete at now just moved to the trash lose their versions. */
static int purge_deleted(struct op_ctx *c, const char *path, bool is_file, int64_t file_id,
                         int64_t now, int64_t *purged)
{
	if (is_file) {
		*purged = 1;
		return op_purge_file(c->db, file_id, now);
	}
	char *prefix = xasprintf("%s/", path);
	struct db_stmt *st = db_query(
	    c->db,
	    "SELECT id FROM files WHERE workspace_id = ? AND deleted_at = ? AND purged_at IS NULL "
	    "AND folder_id IN (SELECT id FROM folders WHERE workspace_id = ? AND deleted_at = ? "
	    "AND (path = ? OR substr(path, 1, ?) = ?))",
	    c->ws_id, now, c->ws_id, now, path, (int64_t)utf8_chars(prefix), prefix);
	free(prefix);
	json_t *ids = json_array();
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(ids, json_integer(db_col_int64(st, 0)));
	db_finalize(st);
	int rc = st ? DB_DONE : DB_ERR;
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		if (rc == DB_DONE)
			rc = op_purge_file(c->db, json_integer_value(v), now);
	}
	*purged = (int64_t)json_array_size(ids);
	json_decref(ids);
	return rc;
}

static enum op_code delete_path(struct op_ctx *c, const char *path, bool forever, bool *is_file,
                                int64_t *purged, struct op_err *e)
{
	struct file_info fi;
	int64_t folder = 0, now = now_ms();
	*is_file = false;
	*purged = 0;
	if (strcmp(path, "/") == 0)
		return op_fail(e, OP_INVALID_PATH, "the workspace root cannot be deleted");
	if (forever && !op_may_purge(c, e))
		return e->code;
	if (meta_begin(c->db, c->ws_id) != DB_DONE)
		return op_db(e);
	int kind = what_is(c, path, &fi, &folder);
	if (kind < 0)
		return undo(c, op_db(e));
	if (kind == 0)
		return undo(c, op_fail(e, OP_NOT_FOUND, "no such path: %s", path));
	*is_file = kind == 1;
	if (!op_require(c, path, *is_file, PERM_WRITE, ACL_NOW, e) ||
	    (!*is_file && !op_subtree_writable(c, path, e)))
		return undo(c, e->code);
	if (delete_rows(c, path, *is_file, fi.id, now) != DB_DONE ||
	    (forever && purge_deleted(c, path, *is_file, fi.id, now, purged) != DB_DONE) ||
	    meta_change(c->db, c->ws_id, *is_file ? "file.deleted" : "folder.deleted",
	                *is_file ? "file" : "folder",
	                json_pack("{s:I, s:s, s:b}", "id", (json_int_t)(*is_file ? fi.id : folder),
	                          "path", path, "permanent", forever)) != 0 ||
	    meta_audit_op(c,
	                  forever ? (*is_file ? "file.delete_forever" : "folder.delete_forever")
	                          : (*is_file ? "file.delete" : "folder.delete"),
	                  path,
	                  forever ? json_pack("{s:I}", "files", (json_int_t)*purged) : NULL) != 0 ||
	    meta_commit_op(c) != OP_OK)
		return undo(c, op_db(e));
	return OP_OK;
}

enum op_code op_delete(struct op_ctx *c, const char *path, bool *is_file, struct op_err *e)
{
	int64_t purged;
	return delete_path(c, path, false, is_file, &purged, e);
}

enum op_code op_delete_forever(struct op_ctx *c, const char *path, bool *is_file, int64_t *purged,
                               struct op_err *e)
{
	return delete_path(c, path, true, is_file, purged, e);
}
