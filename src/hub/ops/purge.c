/* ops/purge: deleting files for good — emptying the trash (all of it, what
 * lies under a path, or one entry) before trash_days pass. A purged file
 * keeps its row as a tombstone (purged_at) but loses its versions; each of
 * their chunks loses a reference, and GC deletes a chunk once it has none
 * (jobs/gc.c, which purges expired trash through the same functions). Only
 * owners and admins purge: it cannot be undone. Runs on the calling thread. */
#include "ops.h"
#include "../../core/util.h"

#include <stdlib.h>
#include <string.h>

int op_drop_version(struct db *db, int64_t vid, int64_t now)
{
	/* The workspace's lock first, as meta_begin takes it: deleting a live
	 * file's version moves its used_bytes (a trigger, db/schema.c), and GC
	 * reaching the row only after the chunks' would deadlock on PostgreSQL
	 * with a commit that holds the row and wants a chunk. */
	if (db_run(db,
	           "UPDATE workspace_counters SET last_seq = last_seq WHERE workspace_id = "
	           "(SELECT f.workspace_id FROM file_versions v JOIN files f ON f.id = v.file_id "
	           "WHERE v.id = ?)",
	           vid) != DB_DONE)
		return DB_ERR;
	struct db_stmt *st =
	    db_query(db, "SELECT chunk_hash FROM version_chunks WHERE version_id = ?", vid);
	json_t *hashes = json_array();
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(hashes, json_string(db_col_text(st, 0)));
	db_finalize(st);
	int rc = st ? DB_DONE : DB_ERR;
	size_t i;
	json_t *h;
	json_array_foreach(hashes, i, h)
	{
		if (rc == DB_DONE)
			rc = db_run(
			    db,
			    "UPDATE chunks SET refcount = refcount - 1, unref_at = CASE WHEN "
			    "refcount <= 1 THEN ? ELSE unref_at END WHERE hash = ?",
			    now, json_string_value(h));
	}
	json_decref(hashes);
	if (rc == DB_DONE)
		rc = db_run(db, "DELETE FROM version_chunks WHERE version_id = ?", vid);
	if (rc == DB_DONE)
		rc = db_run(db, "DELETE FROM file_versions WHERE id = ?", vid);
	return rc;
}

int op_purge_file(struct db *db, int64_t file_id, int64_t now)
{
	struct db_stmt *st =
	    db_query(db, "SELECT id FROM file_versions WHERE file_id = ?", file_id);
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
			rc = op_drop_version(db, json_integer_value(v), now);
	}
	json_decref(ids);
	if (rc == DB_DONE)
		rc = db_run(
		    db, "UPDATE files SET purged_at = ?, current_version_id = NULL WHERE id = ?",
		    now, file_id);
	return rc;
}

bool op_may_purge(struct op_ctx *c, struct op_err *e)
{
	if (c->role >= ROLE_ADMIN)
		return true;
	op_fail(e, OP_FORBIDDEN,
	        "only the workspace's owners and admins delete files for good (anyone who may "
	        "write moves them to the trash)");
	return false;
}

/* Is p (a trashed file's path) path itself or below it? */
static bool at_or_under(const char *p, const char *path)
{
	size_t n = strlen(path);
	if (strcmp(path, "/") == 0)
		return true;
	return strncmp(p, path, n) == 0 && (p[n] == 0 || p[n] == '/');
}

enum op_code op_trash_empty(struct op_ctx *c, const char *path, int64_t id, int64_t *purged,
                            struct op_err *e)
{
	*purged = 0;
	if (!op_may_purge(c, e))
		return e->code;
	if (meta_begin(c->db, c->ws_id) != DB_DONE)
		return op_db(e);
	struct db_stmt *st = db_query(
	    c->db,
	    "SELECT f.id, d.path, f.name FROM files f JOIN folders d ON d.id = f.folder_id WHERE "
	    "f.workspace_id = ? AND f.deleted_at IS NOT NULL AND f.purged_at IS NULL AND (? = 0 OR "
	    "f.id = ?) ORDER BY f.id",
	    c->ws_id, id, id);
	json_t *ids = json_array();
	while (st && db_step(st) == DB_ROW) {
		char *p = op_trashed_path(db_col_text(st, 1), db_col_text(st, 2));
		if (!path || at_or_under(p, path))
			json_array_append_new(ids, json_integer(db_col_int64(st, 0)));
		free(p);
	}
	db_finalize(st);
	if (!st) {
		json_decref(ids);
		db_rollback(c->db);
		return op_db(e);
	}
	if (id && json_array_size(ids) == 0) {
		json_decref(ids);
		db_rollback(c->db);
		return op_fail(e, OP_NOT_FOUND, "no file %lld in the trash (restored or purged)",
		               (long long)id);
	}
	int64_t now = now_ms();
	int rc = DB_DONE;
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		if (rc == DB_DONE)
			rc = op_purge_file(c->db, json_integer_value(v), now);
	}
	*purged = (int64_t)json_array_size(ids);
	json_t *detail = json_pack("{s:I, s:s?}", "files", (json_int_t)*purged, "path", path);
	if (id)
		json_object_set_new(detail, "file_id", json_integer(id));
	json_decref(ids);
	if (rc != DB_DONE) {
		json_decref(detail);
		db_rollback(c->db);
		return op_db(e);
	}
	if (meta_change(c->db, c->ws_id, "trash.purged", "file",
	                json_pack("{s:I}", "files", (json_int_t)*purged)) != 0 ||
	    meta_audit_op(c, "trash.empty", path ? path : "/", detail) != 0 ||
	    meta_commit_op(c) != OP_OK) {
		db_rollback(c->db);
		return op_db(e);
	}
	return OP_OK;
}
