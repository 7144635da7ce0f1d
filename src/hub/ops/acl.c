/* ops/acl: setting and removing a member's ACL entry on a file or folder
 * (acl.c judges access and has the endpoints' adapters). One transaction with
 * its change and audit rows. Runs on the calling thread. */
#include "../auth.h"
#include "ops.h"
#include "../../core/util.h"

/* Resolve path to a live file or folder id. 1 found, 0 not, <0 error. */
static int target_of(struct op_ctx *c, const char *path, bool *is_file, int64_t *id)
{
	struct file_info fi;
	int rc = meta_file_get(c->db, c->ws_id, path, &fi);
	if (rc == 1) {
		*is_file = true;
		*id = fi.id;
		return 1;
	}
	*is_file = false;
	return rc < 0 ? rc : meta_folder_id(c->db, c->ws_id, path, id);
}

static enum op_code undo(struct op_ctx *c, enum op_code rc)
{
	db_rollback(c->db);
	return rc;
}

enum op_code op_acl_set(struct op_ctx *c, const char *path, int64_t uid, enum perm perm,
                        struct op_err *e)
{
	bool is_file;
	int64_t id;
	if (meta_begin(c->db, c->ws_id) != DB_DONE)
		return op_db(e);
	int rc = target_of(c, path, &is_file, &id);
	if (rc != 1)
		return undo(c, rc == 0 ? op_fail(e, OP_NOT_FOUND, "no such path: %s", path)
		                       : op_db(e));
	if (!op_require(c, path, is_file, PERM_MANAGE, ACL_NOW, e))
		return undo(c, e->code);
	if (auth_role(c->db, c->ws_id, uid) == ROLE_NONE)
		return undo(
		    c, op_fail(e, OP_NOT_A_MEMBER, "that user is not a member of this workspace"));
	rc = db_run(c->db,
	            is_file ? "DELETE FROM acl_entries WHERE file_id = ? AND user_id = ?"
	                    : "DELETE FROM acl_entries WHERE folder_id = ? AND user_id = ?",
	            id, uid);
	if (rc == DB_DONE && perm != PERM_INVALID)
		rc = db_run(c->db,
		            is_file
		                ? "INSERT INTO acl_entries(workspace_id, file_id, user_id, perm, "
		                  "created_at) VALUES(?,?,?,?,?)"
		                : "INSERT INTO acl_entries(workspace_id, folder_id, user_id, perm, "
		                  "created_at) VALUES(?,?,?,?,?)",
		            c->ws_id, id, uid, perm_name(perm), now_ms());
	const char *what = perm == PERM_INVALID ? "removed" : perm_name(perm);
	if (rc != DB_DONE ||
	    meta_change(c->db, c->ws_id, "acl.changed", is_file ? "file" : "folder",
	                json_pack("{s:s, s:I, s:s}", "path", path, "user_id", (json_int_t)uid,
	                          "perm", what)) != 0 ||
	    meta_audit_op(c, "acl.set", path,
	                  json_pack("{s:I, s:s}", "user_id", (json_int_t)uid, "perm", what)) != 0 ||
	    meta_commit_op(c) != OP_OK)
		return undo(c, op_db(e));
	return OP_OK;
}
