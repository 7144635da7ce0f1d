/* ops/share: creating a share link (share.c has the rest: listing, revoking,
 * the public side). The token is random and only its hash is stored; the
 * creator must hold the access the link gives. Runs on the calling thread. */
#include "../auth.h"
#include "ops.h"
#include "../../core/util.h"

#include <string.h>

/* The new link's row. Its id, or 0 on a database error. */
static int64_t insert_link(struct op_ctx *c, const struct share_args *a, int64_t target,
                           bool is_file, const char *pwh, const char *hash, int64_t now,
                           int64_t exp)
{
	int64_t id = 0;
	struct db_stmt *st = db_prepare(c->db, "INSERT INTO share_links(workspace_id, folder_id, "
	                                       "file_id, scope, password_hash, token_hash, "
	                                       "created_by, created_at, expires_at) "
	                                       "VALUES(?,?,?,?,?,?,?,?,?) RETURNING id");
	if (st) {
		db_bind_int64(st, 1, c->ws_id);
		if (is_file) {
			db_bind_null(st, 2);
			db_bind_int64(st, 3, target);
		} else {
			db_bind_int64(st, 2, target);
			db_bind_null(st, 3);
		}
		db_bind_text(st, 4, a->write ? "write" : "read");
		db_bind_text(st, 5, a->password ? pwh : NULL);
		db_bind_text(st, 6, hash);
		db_bind_int64(st, 7, c->user_id);
		db_bind_int64(st, 8, now);
		if (exp)
			db_bind_int64(st, 9, exp);
		else
			db_bind_null(st, 9);
		if (db_step(st) == DB_ROW)
			id = db_col_int64(st, 0);
	}
	db_finalize(st);
	return id;
}

enum op_code op_share_create(struct op_ctx *c, const struct share_args *a, struct share_result *out,
                             struct op_err *e)
{
	struct file_info fi;
	int64_t folder = 0;
	memset(out, 0, sizeof *out);
	int is_file = meta_file_get(c->db, c->ws_id, a->path, &fi);
	int is_folder = is_file == 0 ? meta_folder_id(c->db, c->ws_id, a->path, &folder) : 0;
	if (is_file < 0 || is_folder < 0)
		return op_db(e);
	if (!is_file && !is_folder)
		return op_fail(e, OP_NOT_FOUND, "no such path: %s", a->path);
	if (a->write && is_file)
		return op_fail(e, OP_INVALID_REQUEST,
		               "a write link shares a folder to upload into");
	if (!op_require(c, a->path, is_file, a->write ? PERM_WRITE : PERM_READ, ACL_NOW, e))
		return e->code;
	char pwh[128] = "";
	int hrc = a->password ? auth_hash_password(a->password, pwh) : 0;
	if (hrc == AUTH_BUSY) {
		e->retry_ms = AUTH_BUSY_RETRY_MS;
		return op_fail(e, OP_BUSY,
		               "too many password checks at once; retry after Retry-After seconds");
	}
	if (hrc != 0)
		return op_db(e);
	char hash[65];
	auth_new_token(out->token, hash);
	int64_t now = now_ms(), exp = a->ttl_s ? now + a->ttl_s * 1000 : 0;
	out->id = insert_link(c, a, is_file ? fi.id : folder, is_file, pwh, hash, now, exp);
	if (!out->id || meta_audit_op(c, "share.create", a->path,
	                              json_pack("{s:I, s:s, s:b}", "id", (json_int_t)out->id,
	                                        "scope", a->write ? "write" : "read", "password",
	                                        a->password != NULL)) != 0)
		return op_db(e);
	out->is_file = is_file;
	out->expires_at = exp;
	return OP_OK;
}
