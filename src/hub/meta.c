/* meta: the folder tree, files and versions in the database, and the two
 * append-only logs every mutation writes: changes (the feed) and audit_log.
 * Runs on the calling thread with its connection.
 *
 * One error convention: a lookup (meta_folder_id, meta_file_get, …) returns
 * 1 found, 0 not found or DB_ERR; anything that writes (meta_begin,
 * meta_mkdirs, meta_change, meta_audit, meta_commit) returns an enum op_code
 * (ops/ops.h): OP_OK (0, as DB_DONE), OP_EXISTS (meta_mkdirs: a file is in the
 * way) or OP_DB. */
#include "hub.h"
#include "meta.h"
#include "feed.h"
#include "acl.h"
#include "op_http.h"
#include "ops/ops.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int meta_begin(struct db *db, int64_t ws)
{
	if (db_begin(db) != DB_DONE)
		return OP_DB;
	if (db_run(db, "UPDATE workspace_counters SET last_seq = last_seq WHERE workspace_id = ?",
	           ws) == DB_DONE)
		return OP_OK;
	db_rollback(db);
	return OP_DB;
}

int meta_folder_id(struct db *db, int64_t ws, const char *path, int64_t *id)
{
	int r = db_int64(db, id,
	                 "SELECT id FROM folders WHERE workspace_id = ? AND path = ? AND "
	                 "deleted_at IS NULL",
	                 ws, path);
	return r == DB_ROW ? 1 : r == DB_DONE ? 0 : r;
}

static void fill_file(struct db_stmt *st, struct file_info *fi)
{
	memset(fi, 0, sizeof *fi);
	fi->id = db_col_int64(st, 0);
	fi->folder_id = db_col_int64(st, 1);
	snprintf(fi->name, sizeof fi->name, "%s", db_col_text(st, 2));
	fi->size = db_col_int64(st, 3);
	fi->version_id = db_col_int64(st, 4);
	fi->version_no = db_col_int64(st, 5);
	snprintf(fi->hash, sizeof fi->hash, "%s", db_col_text(st, 6) ? db_col_text(st, 6) : "");
	snprintf(fi->content_type, sizeof fi->content_type, "%s",
	         db_col_text(st, 7) ? db_col_text(st, 7) : "");
	fi->updated_at = db_col_int64(st, 8);
	fi->updated_by = db_col_int64(st, 9);
}

#define FILE_COLS                                                                                  \
	"f.id, f.folder_id, f.name, v.size, v.id, v.number, v.hash, v.content_type, "              \
	"v.created_at, v.created_by "

/* Step a file query once: 1 with fi filled, 0 no row, <0 error. Finalizes st. */
static int fetch_file(struct db_stmt *st, struct file_info *fi)
{
	if (!st)
		return DB_ERR;
	int r = db_step(st);
	if (r == DB_ROW)
		fill_file(st, fi);
	db_finalize(st);
	return r == DB_ROW ? 1 : r == DB_DONE ? 0 : r;
}

int meta_file_get(struct db *db, int64_t ws, const char *path, struct file_info *fi)
{
	char *parent, *name;
	if (!path_split(path, &parent, &name))
		return 0;
	struct db_stmt *st =
	    db_query(db,
	             "SELECT " FILE_COLS "FROM files f JOIN folders d ON d.id = f.folder_id "
	             "JOIN file_versions v ON v.id = f.current_version_id "
	             "WHERE d.workspace_id = ? AND d.path = ? AND d.deleted_at IS NULL "
	             "AND f.name = ? AND f.deleted_at IS NULL",
	             ws, parent, name);
	free(parent);
	free(name);
	return fetch_file(st, fi);
}

int meta_version_get(struct db *db, int64_t file_id, int64_t number, struct file_info *fi)
{
	struct db_stmt *st = db_query(db,
	                              "SELECT " FILE_COLS "FROM files f JOIN file_versions v ON "
	                              "v.file_id = f.id WHERE f.id = ? AND v.number = ?",
	                              file_id, number);
	return fetch_file(st, fi);
}

int meta_version_by_id(struct db *db, int64_t ws, int64_t version_id, struct file_info *fi)
{
	struct db_stmt *st = db_query(db,
	                              "SELECT " FILE_COLS "FROM files f JOIN file_versions v ON "
	                              "v.file_id = f.id WHERE v.id = ? AND f.workspace_id = ? AND "
	                              "f.deleted_at IS NULL",
	                              version_id, ws);
	return fetch_file(st, fi);
}

static bool file_exists_at(struct db *db, int64_t folder_id, const char *name)
{
	int64_t one = 0;
	return db_int64(db, &one,
	                "SELECT 1 FROM files WHERE folder_id = ? AND name = ? AND "
	                "deleted_at IS NULL",
	                folder_id, name) == DB_ROW;
}

int meta_mkdirs(struct db *db, int64_t ws, const char *path, int64_t user, int64_t *id,
                bool *created)
{
	*created = false;
	int r = meta_folder_id(db, ws, path, id);
	if (r != 0)
		return r > 0 ? OP_OK : OP_DB;
	char *parent, *name;
	if (!path_split(path, &parent, &name))
		return OP_DB; /* the root always exists */
	int64_t pid = 0;
	bool pcreated;
	r = meta_mkdirs(db, ws, parent, user, &pid, &pcreated);
	if (r == OP_OK && file_exists_at(db, pid, name))
		r = OP_EXISTS;
	if (r == OP_OK) {
		int64_t now = now_ms();
		r = db_int64(db, id,
		             "INSERT INTO folders(workspace_id, parent_id, name, path, created_by, "
		             "created_at, updated_at) VALUES(?,?,?,?,?,?,?) RETURNING id",
		             ws, pid, name, path, user, now, now) == DB_ROW
		        ? OP_OK
		        : OP_DB;
	}
	if (r == OP_OK) {
		*created = true;
		r = meta_change(db, ws, "folder.created", "folder",
		                json_pack("{s:I, s:s}", "id", (json_int_t)*id, "path", path));
	}
	free(parent);
	free(name);
	return r;
}

int meta_change(struct db *db, int64_t ws, const char *kind, const char *entity, json_t *payload)
{
	char *p = json_to_string(payload);
	json_decref(payload);
	int r;
	/* Other hubs on the same PostgreSQL learn of it at commit. */
	if (db_notify(db, "roost_changes") != DB_DONE) {
		free(p);
		return OP_DB;
	}
	if (strcmp(db_backend(db), "postgres") == 0) {
		/* the next number and the row in one statement, sent with the next */
		r = db_run_later(
		    db,
		    "WITH s AS (UPDATE workspace_counters SET last_seq = last_seq + 1 WHERE "
		    "workspace_id = ? RETURNING workspace_id, last_seq) INSERT INTO "
		    "changes(workspace_id, seq, kind, entity, payload, at) SELECT workspace_id, "
		    "last_seq, CAST(? AS TEXT), "
		    "CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT) FROM s",
		    ws, kind, entity, p, now_ms());
		free(p);
		return r == DB_DONE ? OP_OK : OP_DB;
	}
	int64_t seq = 0;
	r = db_int64(db, &seq,
	             "UPDATE workspace_counters SET last_seq = last_seq + 1 WHERE workspace_id = ? "
	             "RETURNING last_seq",
	             ws);
	if (r != DB_ROW) {
		free(p);
		return OP_DB;
	}
	r = db_run(db,
	           "INSERT INTO changes(workspace_id, seq, kind, entity, payload, at) "
	           "VALUES(?,?,?,?,?,?)",
	           ws, seq, kind, entity, p, now_ms());
	free(p);
	return r == DB_DONE ? OP_OK : OP_DB;
}

int meta_commit_op(const struct op_ctx *c)
{
	if (db_commit(c->db) != DB_DONE)
		return OP_DB;
	feed_notify(c->hub);
	return OP_OK;
}

int meta_commit(struct req *r)
{
	struct op_ctx c = {.hub = r->hub, .db = r->db};
	return meta_commit_op(&c);
}

int meta_audit_op(const struct op_ctx *c, const char *action, const char *target, json_t *detail)
{
	char *d = detail ? json_to_string(detail) : NULL;
	json_decref(detail);
	/* A host's commit for an uploader names the uploader, and the host. A
	 * share link's anonymous client is the link: the creator whose access it
	 * borrows did not act. Ids start at 1: 0 is none (NULL). */
	int64_t actor = !c->share_id && (c->author_id || c->user_id)
	                    ? (c->author_id ? c->author_id : c->user_id)
	                    : 0;
	int rc = db_run_later(
	    c->db,
	    "INSERT INTO audit_log(workspace_id, actor_user_id, action, target, "
	    "at, client_addr, detail, actor_host_id, actor_share_id) "
	    "VALUES(NULLIF(CAST(? AS BIGINT), 0), NULLIF(CAST(? AS BIGINT), 0), ?, ?, "
	    "?, ?, ?, NULLIF(CAST(? AS BIGINT), 0), NULLIF(CAST(? AS BIGINT), 0))",
	    c->ws_id, actor, action, target, now_ms(), c->client, d, c->host_id, c->share_id);
	free(d);
	return rc == DB_DONE ? OP_OK : OP_DB;
}

int meta_audit(struct req *r, const char *action, const char *target, json_t *detail)
{
	struct op_ctx c;
	req_op_ctx(r, &c);
	return meta_audit_op(&c, action, target, detail);
}

void meta_via_json(json_t *o, struct db_stmt *st, int col, const char *email, bool share_target)
{
	json_t *via = json_null();
	bool share = !db_col_is_null(st, col + 3);
	if (share) {
		via = json_pack("{s:I}", "share_id", (json_int_t)db_col_int64(st, col + 3));
		const char *target = db_col_text(st, col + 4);
		if (share_target)
			json_object_set_new(via, "share",
			                    target ? json_string(target) : json_null());
	} else if (!db_col_is_null(st, col)) {
		bool removed = db_col_int64(st, col + 2) != 0;
		const char *label = db_col_text(st, col + 1);
		via = json_pack("{s:I, s:o, s:b}", "host_id", (json_int_t)db_col_int64(st, col),
		                "host", !removed && label ? json_string(label) : json_null(),
		                "removed", removed);
	}
	json_object_set_new(o, "by", !share && email ? json_string(email) : json_null());
	json_object_set_new(o, "via", via);
}

bool meta_readable_version(struct req *r, const char *path, int64_t version, struct file_info *fi)
{
	int rc = meta_file_get(r->db, r->ws_id, path, fi);
	if (rc == 1 && !acl_require(r, path, true, PERM_READ))
		return false;
	/* A missing file reads word for word as a hidden one (acl_require). */
	if (rc == 0)
		reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such path: %s", path);
	if (rc != 1)
		return rc == 0 ? false : (reply_db_error(r), false);
	if (version && (rc = meta_version_get(r->db, fi->id, version, fi)) != 1) {
		if (rc == 0)
			reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "%s has no version %lld",
			            path, (long long)version);
		else
			reply_db_error(r);
		return false;
	}
	return true;
}
