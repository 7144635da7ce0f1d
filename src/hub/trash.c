/* trash: deleted files, restorable until the workspace's trash_days pass and
 * GC purges them (jobs.c).
 *
 *   GET  trash?limit=N&before=ID   deleted files the caller may read, the last
 *                                  deleted first, in pages (more: another follows)
 *   POST trash/restore {id}        the file back where it was (its deleted folders
 *                                  brought back, with their ACL entries), with its
 *                                  versions
 *   POST trash/empty {path?, id?}  delete for good: the whole trash, what lies at or
 *                                  below path, or entry id (owners and admins)
 *
 * A deleted file is judged by the ACL as it stood when it was deleted
 * (acl_perm_at with its deleted_at): deleting never shows a member what they
 * could not see before. */
#include "hub.h"
#include "meta.h"
#include "trash.h"
#include "limits.h"
#include "acl.h"
#include "op_http.h"
#include "ops/ops.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (86400 * 1000ll)

#define TRASH_SCAN_BATCH 500

/* One batch of the trash in list order after the cursor (at, id) (none: at
 * 0), the visible entries appended to arr until it holds want; the cursor
 * moves past every row read. Rows read, or -1 on a database error. "No
 * cursor" is a flag of its own: in "? = 0 OR deleted_at < ?" PostgreSQL would
 * type the first parameter int4, too small for a time in milliseconds. */
static int trash_scan(struct req *r, int64_t days, int64_t *at, int64_t *id, json_t *arr,
                      size_t want)
{
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT f.id, d.path, f.name, f.size, f.deleted_at, (SELECT COUNT(*) FROM "
	    "file_versions v WHERE v.file_id = f.id) FROM files f JOIN folders d ON d.id = "
	    "f.folder_id WHERE f.workspace_id = ? AND f.deleted_at IS NOT NULL AND f.purged_at IS "
	    "NULL AND (? = 1 OR f.deleted_at < ? OR (f.deleted_at = ? AND f.id < ?)) ORDER BY "
	    "f.deleted_at DESC, f.id DESC LIMIT ?",
	    r->ws_id, (int64_t)(*at == 0), *at, *at, *id, (int64_t)TRASH_SCAN_BATCH);
	if (!st)
		return -1;
	struct acl *a = req_acl(r);
	int rows = 0, rc = DB_ROW;
	while (json_array_size(arr) < want && (rc = db_step(st)) == DB_ROW) {
		rows++;
		char *path = op_trashed_path(db_col_text(st, 1), db_col_text(st, 2));
		*id = db_col_int64(st, 0);
		*at = db_col_int64(st, 4);
		if (a && acl_perm_at(a, path, true, *at) >= PERM_READ)
			json_array_append_new(
			    arr, json_pack("{s:I, s:s, s:I, s:I, s:I, s:I}", "id", (json_int_t)*id,
			                   "path", path, "size", (json_int_t)db_col_int64(st, 3),
			                   "deleted_at", (json_int_t)*at, "expires_at",
			                   (json_int_t)(*at + days * DAY_MS), "versions",
			                   (json_int_t)db_col_int64(st, 5)));
		free(path);
	}
	db_finalize(st);
	return rc == DB_ROW || rc == DB_DONE ? rows : -1;
}

/* The deleted_at of the trash entry id as the cursor of a page, or 0 if it is
 * not one the caller may see listed: one hidden from them answers as one
 * restored, so a cursor tells nothing about hidden entries. */
static int64_t cursor_at(struct req *r, int64_t id)
{
	struct db_stmt *st =
	    db_query(r->db,
	             "SELECT d.path, f.name, f.deleted_at FROM files f JOIN folders "
	             "d ON d.id = f.folder_id WHERE f.id = ? AND f.workspace_id = ? "
	             "AND f.deleted_at IS NOT NULL",
	             id, r->ws_id);
	int64_t at = 0;
	if (st && db_step(st) == DB_ROW) {
		char *path = op_trashed_path(db_col_text(st, 0), db_col_text(st, 1));
		struct acl *a = req_acl(r);
		at = db_col_int64(st, 2);
		if (!a || acl_perm_at(a, path, true, at) < PERM_READ)
			at = 0;
		free(path);
	}
	db_finalize(st);
	return at;
}

/* The trash in the order it was deleted, newest first; before=ID continues
 * after the entry ID (the last one of the previous page). more says whether
 * another entry the caller may see follows: it is computed over visible
 * entries only, so it tells nothing about hidden ones. */
enum MHD_Result api_trash_list(struct req *r)
{
	int64_t limit = 100, before = 0, days = 30, at = 0;
	const char *l = req_arg(r, "limit", NULL), *b = req_arg(r, "before", NULL);
	if ((l && ((limit = parse_id(l)) < 1 || limit > 1000)) || (b && (before = parse_id(b)) < 1))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "limit is 1..1000 and before a file id");
	if (before && (at = cursor_at(r, before)) <= 0)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "before names no file in the trash (restored or purged since); "
		                   "list again from the start");
	db_int64(r->db, &days, "SELECT trash_days FROM workspaces WHERE id = ?", r->ws_id);
	json_t *arr = json_array();
	int rows;
	do
		rows = trash_scan(r, days, &at, &before, arr, (size_t)limit + 1);
	while (rows == TRASH_SCAN_BATCH && json_array_size(arr) <= (size_t)limit);
	if (rows < 0) {
		json_decref(arr);
		return reply_db_error(r);
	}
	bool more = json_array_size(arr) > (size_t)limit;
	if (more)
		json_array_remove(arr, (size_t)limit);
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:o, s:I, s:b}", "entries", arr, "trash_days",
	                            (json_int_t)days, "more", more));
}

enum MHD_Result api_trash_restore(struct req *r)
{
	int64_t id = 0;
	if (!json_get_int(r->json, "id", &id) || id < 1)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "id (a deleted file's id, from GET trash) is required");
	struct op_ctx c;
	struct op_err e = {0};
	struct trash_result out;
	req_op_ctx(r, &c);
	enum op_code rc = op_trash_restore(&c, id, &out, &e);
	req_op_end(r, &c);
	if (rc != OP_OK)
		return reply_op_err(r, &e);
	enum MHD_Result ret =
	    reply_json(r, MHD_HTTP_OK,
	               json_pack("{s:s, s:I, s:I}", "restored", out.path, "id", (json_int_t)id,
	                         "version", (json_int_t)out.version));
	free(out.path);
	return ret;
}

/* A destructive call a signed-in member makes, not a host or an app password
 * (both act for someone who may be an owner or admin). false after replying. */
bool trash_caller_may_purge(struct req *r)
{
	if (!r->host_id && r->cred != CRED_APP)
		return true;
	reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
	            "deleting for good needs a signed-in owner or admin, not %s",
	            r->host_id ? "a host's credential" : "an app password");
	return false;
}

enum MHD_Result api_trash_empty(struct req *r)
{
	int64_t id = 0;
	json_t *jid = json_object_get(r->json, "id"), *jp = json_object_get(r->json, "path");
	const char *p = json_get_str(r->json, "path"), *why = NULL;
	if ((jid && (!json_get_int(r->json, "id", &id) || id < 1)) || (jp && !p))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "give nothing (the whole trash), path (what was at or below it) "
		                   "or id (one entry, from GET trash)");
	char *path = p ? path_normalize(p, strlen(p), &why) : NULL;
	if (p && !path)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_path", "path: %s", why);
	if (!trash_caller_may_purge(r)) {
		free(path);
		return MHD_YES;
	}
	struct op_ctx c;
	struct op_err e = {0};
	int64_t purged = 0;
	req_op_ctx(r, &c);
	enum op_code rc = op_trash_empty(&c, path, id, &purged, &e);
	req_op_end(r, &c);
	free(path);
	if (rc != OP_OK)
		return reply_op_err(r, &e);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:I}", "purged", (json_int_t)purged));
}
