/* hosts/policy: which folders each host keeps (docs/host.md): pinned,
 * on-demand, exclude, or inherit from the folder above. Hosts read theirs;
 * owners and admins set them (and a joining host names its pinned folders).
 *
 * Threads: request threads; no state outside the database. */
#include "internal.h"
#include "../ops/ops.h"
#include "../meta.h"
#include "../acl.h"
#include "../../core/hash.h"
#include "../../core/json.h"
#include "../../core/path.h"
#include "../../core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hosts_set_policy(struct req *r, int64_t host, const char *folder, const char *mode)
{
	int64_t fid = 0;
	bool created;
	if (path_reserved(folder))
		return -EPERM;
	int rc = meta_mkdirs(r->db, r->ws_id, folder, r->user_id, &fid, &created);
	if (rc != 0)
		return rc == OP_EXISTS ? -EEXIST : DB_ERR;
	if (strcmp(mode, "inherit") == 0)
		rc = db_run(r->db,
		            "DELETE FROM replication_policies WHERE host_id = ? AND folder_id = ?",
		            host, fid);
	else
		rc =
		    db_run(r->db,
		           "INSERT INTO replication_policies(host_id, folder_id, mode, updated_at) "
		           "VALUES(?,?,?,?) ON CONFLICT (host_id, folder_id) DO UPDATE SET "
		           "mode = excluded.mode, updated_at = excluded.updated_at",
		           host, fid, mode, now_ms());
	if (rc != DB_DONE)
		return rc;
	return meta_change(r->db, r->ws_id, "host.policy", "host",
	                   json_pack("{s:I, s:s, s:s}", "host_id", (json_int_t)host, "folder",
	                             folder, "mode", mode));
}

/* GET /workspaces/W/hosts/H/policies */
enum MHD_Result api_host_policies(struct req *r)
{
	int64_t host = hosts_param(r);
	if (!host)
		return MHD_YES;
	if (r->host_id && host != r->host_id)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "a host reads its own policies only");
	struct db_stmt *st = db_query(r->db,
	                              "SELECT f.path, p.mode FROM replication_policies p JOIN "
	                              "folders f ON f.id = p.folder_id WHERE p.host_id = ? AND "
	                              "f.deleted_at IS NULL ORDER BY f.path",
	                              host);
	struct acl *a = req_acl(r);
	if (!st || !a) {
		db_finalize(st);
		return reply_db_error(r);
	}
	json_t *arr = json_array();
	while (db_step(st) == DB_ROW)
		if (acl_visible(a, db_col_text(st, 0), false))
			json_array_append_new(arr,
			                      json_pack("{s:s, s:s}", "folder", db_col_text(st, 0),
			                                "mode", db_col_text(st, 1)));
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:I, s:o}", "host_id", (json_int_t)host, "policies", arr));
}

/* PUT /workspaces/W/hosts/H/policies {folder, mode} */
enum MHD_Result api_host_policy_set(struct req *r)
{
	if (!hosts_need_admin(r))
		return MHD_YES;
	int64_t host = hosts_param(r);
	if (!host)
		return MHD_YES;
	const char *mode = json_get_str(r->json, "mode");
	if (!mode || (strcmp(mode, "pinned") && strcmp(mode, "on-demand") &&
	              strcmp(mode, "exclude") && strcmp(mode, "inherit")))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_mode",
		                   "mode is pinned, on-demand, exclude or inherit");
	char *folder = req_body_path(r, "folder");
	if (!folder)
		return MHD_YES;
	if (!req_path_writable(r, folder)) {
		free(folder);
		return MHD_YES;
	}
	enum MHD_Result ret;
	if (meta_begin(r->db, r->ws_id) != DB_DONE) {
		ret = reply_db_error(r);
		goto out;
	}
	/* A policy names a folder of the workspace; a typo must not make one
	 * (a joining host's --folders do, in enrol). */
	int64_t fid;
	struct file_info fi;
	int rc = meta_folder_id(r->db, r->ws_id, folder, &fid);
	if (rc == 0)
		rc = meta_file_get(r->db, r->ws_id, folder, &fi) == 1 ? -EEXIST : -ENOENT;
	if (rc == -ENOENT) {
		db_rollback(r->db);
		ret = reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such folder: %s", folder);
		goto out;
	}
	if (rc == 1)
		rc = hosts_set_policy(r, host, folder, mode);
	else if (rc != -EEXIST)
		rc = DB_ERR;
	if (rc == -EEXIST) {
		db_rollback(r->db);
		ret = reply_error(r, MHD_HTTP_CONFLICT, "not_a_folder", "%s is a file", folder);
		goto out;
	}
	if (rc != 0 ||
	    meta_audit(r, "host.policy", folder,
	               json_pack("{s:I, s:s}", "host_id", (json_int_t)host, "mode", mode)) != 0 ||
	    meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		ret = reply_db_error(r);
		goto out;
	}
	ret = reply_json(r, MHD_HTTP_OK,
	                 json_pack("{s:I, s:s, s:s}", "host_id", (json_int_t)host, "folder", folder,
	                           "mode", mode));
out:
	free(folder);
	return ret;
}
