/* hosts: the hub's side of host agents (docs/host.md) — host invites and
 * joining, heartbeats and the hosts list, replication policies, replica
 * reports, the tree snapshot and download manifests with their sources.
 *
 * A host's credential is a bearer token of kind 'host'. It acts with the
 * rights of the admin who invited the host, in that workspace only, and audit
 * rows name the host. Online means a heartbeat within three of its intervals. */
#include "hub.h"
#include "ops/ops.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_INVITE_TTL_S  3600
#define HOST_INVITE_MAX_S  (7 * 24 * 3600)
#define REPLICA_REPORT_MAX 10000
#define CHUNK_TOKEN_TTL_S  600
#define HEARTBEAT_MS_MAX   3600000
#define LABEL_MAX          64
#define RELAY_TOKEN_TTL_S  3600

/* SQL: is host row h online at time ? */
#define ONLINE_SQL                                                                                 \
	"(h.last_seen IS NOT NULL AND h.status = 'online' AND h.last_seen + 3 * "                  \
	"COALESCE(h.heartbeat_ms, 5000) > ?)"

static bool need_admin(struct req *r)
{
	if (r->role >= ROLE_ADMIN && !r->host_id)
		return true;
	reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden", "only owners and admins manage hosts");
	return false;
}

static bool need_host(struct req *r)
{
	if (r->host_id)
		return true;
	reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden", "only a host's credential may do this");
	return false;
}

/* params[1]: a host id, or "self" for the calling host. 0 after replying 404. */
static int64_t host_param(struct req *r)
{
	int64_t id = strcmp(r->params[1], "self") == 0 ? r->host_id : parse_id(r->params[1]);
	int64_t found = 0;
	if (id > 0 && db_int64(r->db, &found,
	                       "SELECT id FROM hosts WHERE id = ? AND workspace_id = ? AND "
	                       "revoked_at IS NULL",
	                       "ii", id, r->ws_id) == DB_ROW)
		return found;
	reply_error(r, MHD_HTTP_NOT_FOUND, "host_not_found", "no such host in this workspace");
	return 0;
}

/* POST /workspaces/W/hosts/invites {expires_in} */
enum MHD_Result api_host_invite(struct req *r)
{
	if (!need_admin(r))
		return MHD_YES;
	int64_t ttl = HOST_INVITE_TTL_S;
	if (json_object_get(r->json, "expires_in") &&
	    (!json_get_int(r->json, "expires_in", &ttl) || ttl < 1 || ttl > HOST_INVITE_MAX_S))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "expires_in is 1..%d seconds", HOST_INVITE_MAX_S);
	char tok[64], hash[65];
	auth_new_token(tok, hash);
	int64_t now = now_ms(), id = 0;
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	if (db_int64(
	        r->db, &id,
	        "INSERT INTO invites(workspace_id, kind, role, token_hash, single_use, "
	        "created_by, created_at, expires_at) VALUES(?, 'host', 'member', ?, 1, ?, ?, ?) "
	        "RETURNING id",
	        "itiii", r->ws_id, hash, r->user_id, now, now + ttl * 1000) != DB_ROW ||
	    meta_audit(r, "host.invite", NULL, json_pack("{s:I}", "id", (json_int_t)id)) != 0 ||
	    meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	char *url = hub_link(r, "host-invite", tok);
	json_t *o = json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)id, "token", tok, "url",
	                      url, "expires_at", (json_int_t)(now + ttl * 1000));
	free(url);
	return reply_json(r, MHD_HTTP_CREATED, o);
}

static bool label_ok(const char *s)
{
	if (!s || !*s || strlen(s) > LABEL_MAX)
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || strchr("/\\\"", *p))
			return false;
	return true;
}

static int set_policy(struct req *r, int64_t host, const char *folder, const char *mode)
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
		            "ii", host, fid);
	else
		rc =
		    db_run(r->db,
		           "INSERT INTO replication_policies(host_id, folder_id, mode, updated_at) "
		           "VALUES(?,?,?,?) ON CONFLICT (host_id, folder_id) DO UPDATE SET "
		           "mode = excluded.mode, updated_at = excluded.updated_at",
		           "iiti", host, fid, mode, now_ms());
	if (rc != DB_DONE)
		return rc;
	return meta_change(r->db, r->ws_id, "host.policy", "host",
	                   json_pack("{s:I, s:s, s:s}", "host_id", (json_int_t)host, "folder",
	                             folder, "mode", mode));
}

/* POST /hosts/join {token, label, folders?}: no bearer token; the invite is it. */
enum MHD_Result api_host_join(struct req *r)
{
	const char *tok = json_get_str(r->json, "token");
	const char *label = json_get_str(r->json, "label");
	json_t *folders = json_object_get(r->json, "folders");
	if (!tok || strlen(tok) > 200 || !label_ok(label) ||
	    (folders && (!json_is_array(folders) || json_array_size(folders) > 100)))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "token and label (1..%d characters, no slashes or quotes) are "
		                   "required; folders is an array of paths",
		                   LABEL_MAX);
	size_t i;
	json_t *f;
	char **paths = xcalloc(json_array_size(folders) + 1, sizeof *paths);
	size_t np = 0;
	enum MHD_Result ret = MHD_YES;
	json_array_foreach(folders, i, f)
	{
		const char *fs = json_string_value(f), *why;
		paths[np] = fs ? path_normalize(fs, strlen(fs), &why) : NULL;
		if (!paths[np]) {
			ret = reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_path",
			                  "folders[%zu] is not a valid path", i);
			goto out;
		}
		np++;
	}
	char hash[65];
	auth_token_hash(tok, hash);
	int64_t inv = 0, ws = 0, inviter = 0, now = now_ms();
	struct db_stmt *st = db_query(r->db,
	                              "SELECT id, workspace_id, created_by FROM invites WHERE "
	                              "token_hash = ? AND kind = 'host' AND revoked_at IS NULL AND "
	                              "used_at IS NULL AND expires_at > ?",
	                              "ti", hash, now);
	if (st && db_step(st) == DB_ROW) {
		inv = db_col_int64(st, 0);
		ws = db_col_int64(st, 1);
		inviter = db_col_int64(st, 2);
	}
	db_finalize(st);
	if (!inv) {
		ret = reply_error(
		    r, MHD_HTTP_NOT_FOUND, "invite_not_found",
		    "this host invite does not exist, expired, was used or was revoked");
		goto out;
	}
	r->ws_id = ws;
	r->user_id = inviter;
	if (meta_begin(r->db, ws) != DB_DONE) {
		ret = reply_db_error(r);
		goto out;
	}
	int64_t used = 0, taken = 0, host = 0;
	if (db_int64(r->db, &used, "SELECT COUNT(*) FROM invites WHERE id = ? AND used_at IS NULL",
	             "i", inv) != DB_ROW ||
	    db_int64(r->db, &taken,
	             "SELECT COUNT(*) FROM hosts WHERE workspace_id = ? AND label = ? AND "
	             "revoked_at IS NULL",
	             "it", ws, label) != DB_ROW)
		goto db_fail;
	if (!used || taken) {
		db_rollback(r->db);
		ret = !used ? reply_error(r, MHD_HTTP_NOT_FOUND, "invite_not_found",
		                          "this host invite was used just now")
		            : reply_error(r, MHD_HTTP_CONFLICT, "label_taken",
		                          "a host labelled %s is already in this workspace", label);
		goto out;
	}
	char tok_out[64], tok_hash[65];
	auth_new_token(tok_out, tok_hash);
	if (db_int64(r->db, &host,
	             "INSERT INTO hosts(workspace_id, label, created_at, invited_by) "
	             "VALUES(?,?,?,?) RETURNING id",
	             "itii", ws, label, now, inviter) != DB_ROW ||
	    db_run(r->db,
	           "INSERT INTO tokens(user_id, host_id, kind, name, token_hash, created_at) "
	           "VALUES(?, ?, 'host', ?, ?, ?)",
	           "iitti", inviter, host, label, tok_hash, now) != DB_DONE ||
	    db_run(r->db, "UPDATE invites SET used_at = ? WHERE id = ?", "ii", now, inv) != DB_DONE)
		goto db_fail;
	r->host_id = host;
	/* Named folders: pinned, and the rest of the workspace excluded. */
	if (np && set_policy(r, host, "/", "exclude") != 0)
		goto db_fail;
	for (size_t k = 0; k < np; k++) {
		int rc = set_policy(r, host, paths[k], "pinned");
		if (rc == -EEXIST || rc == -EPERM) {
			db_rollback(r->db);
			ret = rc == -EPERM
			          ? (req_path_writable(r, paths[k]), MHD_YES)
			          : reply_error(r, MHD_HTTP_CONFLICT, "exists",
			                        "a file is in the way of folder %s", paths[k]);
			goto out;
		}
		if (rc != 0)
			goto db_fail;
	}
	char name[256] = "";
	st = db_query(r->db, "SELECT name FROM workspaces WHERE id = ?", "i", ws);
	if (st && db_step(st) == DB_ROW)
		snprintf(name, sizeof name, "%s", db_col_text(st, 0));
	db_finalize(st);
	if (meta_change(r->db, ws, "host.joined", "host",
	                json_pack("{s:I, s:s}", "host_id", (json_int_t)host, "label", label)) !=
	        0 ||
	    meta_audit(r, "host.join", label, json_pack("{s:I}", "invite", (json_int_t)inv)) != 0 ||
	    meta_commit(r) != DB_DONE)
		goto db_fail;
	ret = reply_json(r, MHD_HTTP_OK,
	                 json_pack("{s:{s:I, s:s}, s:s, s:{s:I, s:s}}", "host", "id",
	                           (json_int_t)host, "label", label, "token", tok_out, "workspace",
	                           "id", (json_int_t)ws, "name", name));
	goto out;
db_fail:
	db_rollback(r->db);
	ret = reply_db_error(r);
out:
	for (size_t k = 0; k < np; k++)
		free(paths[k]);
	free(paths);
	return ret;
}

/* GET /workspaces/W/hosts */
/* Drop from a host's list of folders those the caller may not see (a host
 * reports them by name). */
static void hide_folders(const struct acl *a, json_t *folders)
{
	for (size_t i = json_array_size(folders); i-- > 0;) {
		const char *p = json_string_value(json_array_get(folders, i));
		if (!a || !p || !acl_visible(a, p, false))
			json_array_remove(folders, i);
	}
}

enum MHD_Result api_hosts(struct req *r)
{
	int64_t now = now_ms();
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT h.id, h.label, CASE WHEN " ONLINE_SQL
	    " THEN 1 ELSE 0 END, h.last_seen, h.url, h.capacity_bytes, "
	    "h.free_bytes, h.info, h.tunnel_url, h.created_at, h.heartbeat_ms FROM hosts h "
	    "WHERE h.workspace_id = ? AND h.revoked_at IS NULL ORDER BY h.id",
	    "ii", now, r->ws_id);
	if (!st)
		return reply_db_error(r);
	json_t *arr = json_array();
	while (db_step(st) == DB_ROW) {
		json_t *info = NULL;
		if (db_col_text(st, 7))
			info = json_loads(db_col_text(st, 7), 0, NULL);
		json_t *h = json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)db_col_int64(st, 0),
		                      "label", db_col_text(st, 1), "status",
		                      db_col_int64(st, 2) ? "online" : "offline", "created_at",
		                      (json_int_t)db_col_int64(st, 9));
		const int nullable[] = {3, 4, 5, 6, 8, 10};
		const char *names[] = {"last_seen",  "url",        "capacity_bytes",
		                       "free_bytes", "tunnel_url", "heartbeat_ms"};
		for (int k = 0; k < 6; k++) {
			int c = nullable[k];
			if (db_col_is_null(st, c))
				json_object_set_new(h, names[k], json_null());
			else if (c == 4 || c == 8)
				json_object_set_new(h, names[k], json_string(db_col_text(st, c)));
			else
				json_object_set_new(h, names[k], json_integer(db_col_int64(st, c)));
		}
		if (json_is_object(info)) {
			hide_folders(req_acl(r), json_object_get(info, "pinned"));
			json_object_update_missing(h, info);
		}
		json_decref(info);
		json_array_append_new(arr, h);
	}
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "hosts", arr));
}

/* POST /workspaces/W/hosts/self/heartbeat */
enum MHD_Result api_host_heartbeat(struct req *r)
{
	if (!need_host(r))
		return MHD_YES;
	const char *url = json_get_str(r->json, "url");
	const char *status = json_get_str(r->json, "status");
	int64_t hb = 5000, cap = -1, fr = -1;
	if ((url &&
	     (strlen(url) > 512 || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))) ||
	    (json_object_get(r->json, "interval_ms") &&
	     (!json_get_int(r->json, "interval_ms", &hb) || hb < 100 || hb > HEARTBEAT_MS_MAX)) ||
	    (status && strcmp(status, "online") && strcmp(status, "stopping")))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "url is an http(s) URL, interval_ms 100..%d, status "
		                   "online|stopping",
		                   HEARTBEAT_MS_MAX);
	const char *tunnel = json_get_str(r->json, "tunnel_url");
	if (tunnel && (strlen(tunnel) > 512 || strncmp(tunnel, "https://", 8) != 0))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "tunnel_url is an https URL");
	json_get_int(r->json, "capacity_bytes", &cap);
	json_get_int(r->json, "free_bytes", &fr);
	/* What the dashboard shows as is: queue, last sync, version, pinned folders. */
	json_t *info = json_object();
	const char *keys[] = {"queue",       "last_sync", "version", "pinned",
	                      "cache_bytes", "seq",       "no_space"};
	for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
		json_t *v = json_object_get(r->json, keys[k]);
		if (v)
			json_object_set(info, keys[k], v);
	}
	char *info_s = json_to_string(info);
	json_decref(info);
	if (strlen(info_s) > 65536) {
		free(info_s);
		return reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
		                   "the heartbeat's details are over 64 KiB");
	}
	struct db_stmt *st =
	    db_prepare(r->db, "UPDATE hosts SET status = ?, last_seen = ?, url = ?, "
	                      "heartbeat_ms = ?, capacity_bytes = ?, free_bytes = ?, "
	                      "info = ?, tunnel_url = COALESCE(?, tunnel_url) WHERE id = ?");
	int rc = DB_ERR;
	if (st) {
		db_bind_text(st, 1,
		             status && strcmp(status, "stopping") == 0 ? "offline" : "online");
		db_bind_int64(st, 2, now_ms());
		db_bind_text(st, 3, url);
		db_bind_int64(st, 4, hb);
		if (cap >= 0)
			db_bind_int64(st, 5, cap);
		else
			db_bind_null(st, 5);
		if (fr >= 0)
			db_bind_int64(st, 6, fr);
		else
			db_bind_null(st, 6);
		db_bind_text(st, 7, info_s);
		db_bind_text(st, 8, tunnel);
		db_bind_int64(st, 9, r->host_id);
		rc = db_step(st);
		db_finalize(st);
	}
	free(info_s);
	if (rc != DB_DONE)
		return reply_db_error(r);
	/* Copies the replicate job wants this host to make, or may let go. */
	json_t *fetch = json_array(), *release = json_array();
	st = db_query(
	    r->db,
	    "SELECT cr.chunk_hash, cr.state, c.size FROM chunk_replicas cr JOIN chunks c ON "
	    "c.hash = cr.chunk_hash WHERE cr.host_id = ? AND cr.assigned = 1 AND cr.state "
	    "IN ('pending', 'released') LIMIT 512",
	    "i", r->host_id);
	while (st && db_step(st) == DB_ROW) {
		if (strcmp(db_col_text(st, 1), "pending") == 0)
			json_array_append_new(fetch,
			                      json_pack("{s:s, s:I}", "hash", db_col_text(st, 0),
			                                "size", (json_int_t)db_col_int64(st, 2)));
		else
			json_array_append_new(release, json_string(db_col_text(st, 0)));
	}
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:b, s:I, s:{s:o, s:o}}", "ok", 1, "host_id",
	                            (json_int_t)r->host_id, "replicate", "fetch", fetch, "release",
	                            release));
}

/* GET /workspaces/W/hosts/H/policies */
enum MHD_Result api_host_policies(struct req *r)
{
	int64_t host = host_param(r);
	if (!host)
		return MHD_YES;
	if (r->host_id && host != r->host_id)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "a host reads its own policies only");
	struct db_stmt *st = db_query(r->db,
	                              "SELECT f.path, p.mode FROM replication_policies p JOIN "
	                              "folders f ON f.id = p.folder_id WHERE p.host_id = ? AND "
	                              "f.deleted_at IS NULL ORDER BY f.path",
	                              "i", host);
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
	if (!need_admin(r))
		return MHD_YES;
	int64_t host = host_param(r);
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
	int rc = set_policy(r, host, folder, mode);
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

/* POST /workspaces/W/hosts/self/replicas {have:[hash], dropped:[hash]} */
enum MHD_Result api_host_replicas(struct req *r)
{
	if (!need_host(r))
		return MHD_YES;
	json_t *have = json_object_get(r->json, "have");
	json_t *dropped = json_object_get(r->json, "dropped");
	if ((have && !json_is_array(have)) || (dropped && !json_is_array(dropped)))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "have and dropped are arrays of chunk hashes");
	if (json_array_size(have) + json_array_size(dropped) > REPLICA_REPORT_MAX)
		return reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_many_hashes",
		                   "at most %d hashes per report", REPLICA_REPORT_MAX);
	json_t *lists[2] = {have, dropped};
	for (int l = 0; l < 2; l++) {
		size_t i;
		json_t *h;
		json_array_foreach(lists[l], i, h)
		{
			if (!hash_hex_valid(json_string_value(h)))
				return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_hash",
				                   "%s[%zu] is not 64 lowercase hex digits",
				                   l ? "dropped" : "have", i);
		}
	}
	char holder[32];
	snprintf(holder, sizeof holder, "host:%lld", (long long)r->host_id);
	int64_t now = now_ms(), recorded = 0;
	if (db_begin(r->db) != DB_DONE)
		return reply_db_error(r);
	size_t i;
	json_t *h;
	/* Only chunks this workspace may reference, and that a version uses. */
	json_array_foreach(have, i, h)
	{
		int64_t ok = 0;
		if (db_int64(r->db, &ok,
		             "SELECT COUNT(*) FROM workspace_chunks wc JOIN chunks c ON c.hash = "
		             "wc.chunk_hash WHERE wc.workspace_id = ? AND wc.chunk_hash = ?",
		             "it", r->ws_id, json_string_value(h)) != DB_ROW)
			goto db_fail;
		if (ok &&
		    db_run(r->db,
		           "INSERT INTO chunk_replicas(chunk_hash, holder, host_id, state, "
		           "updated_at) VALUES(?,?,?,'ok',?) ON CONFLICT (chunk_hash, holder) DO "
		           "UPDATE SET state = 'ok', updated_at = excluded.updated_at",
		           "ttii", json_string_value(h), holder, r->host_id, now) != DB_DONE)
			goto db_fail;
		recorded += ok;
	}
	json_array_foreach(dropped, i, h)
	{
		if (db_run(r->db, "DELETE FROM chunk_replicas WHERE chunk_hash = ? AND holder = ?",
		           "tt", json_string_value(h), holder) != DB_DONE)
			goto db_fail;
	}
	if (db_commit(r->db) != DB_DONE)
		goto db_fail;
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:I, s:I}", "recorded", (json_int_t)recorded, "dropped",
	                            (json_int_t)json_array_size(dropped)));
db_fail:
	db_rollback(r->db);
	return reply_db_error(r);
}

/* GET /workspaces/W/tree: every folder and live file the caller may read, with
 * the feed seq to follow from. The seq is read first, so the snapshot is at
 * least as new as it; replaying from it is harmless (changes are idempotent). */
enum MHD_Result api_tree(struct req *r)
{
	struct acl *a = req_acl(r);
	int64_t seq = 0;
	if (!a || db_int64(r->db, &seq, "SELECT last_seq FROM workspaces WHERE id = ?", "i",
	                   r->ws_id) != DB_ROW)
		return reply_db_error(r);
	json_t *folders = json_array(), *files = json_array();
	struct db_stmt *st = db_query(r->db,
	                              "SELECT path FROM folders WHERE workspace_id = ? AND "
	                              "deleted_at IS NULL AND path <> '/' ORDER BY path",
	                              "i", r->ws_id);
	while (st && db_step(st) == DB_ROW)
		if (acl_visible(a, db_col_text(st, 0), false))
			json_array_append_new(folders, json_string(db_col_text(st, 0)));
	db_finalize(st);
	st = db_query(r->db,
	              "SELECT fo.path, f.name, v.number, v.id, v.size, v.hash, f.updated_at FROM "
	              "files f JOIN folders fo ON fo.id = f.folder_id JOIN file_versions v ON v.id "
	              "= f.current_version_id WHERE f.workspace_id = ? AND f.deleted_at IS NULL",
	              "i", r->ws_id);
	if (!st) {
		json_decref(folders);
		json_decref(files);
		return reply_db_error(r);
	}
	while (db_step(st) == DB_ROW) {
		char *p = path_join(db_col_text(st, 0), db_col_text(st, 1));
		if (acl_perm(a, p, true) >= PERM_READ)
			json_array_append_new(
			    files,
			    json_pack("{s:s, s:I, s:I, s:I, s:s, s:I}", "path", p, "version",
			              (json_int_t)db_col_int64(st, 2), "version_id",
			              (json_int_t)db_col_int64(st, 3), "size",
			              (json_int_t)db_col_int64(st, 4), "hash", db_col_text(st, 5),
			              "modified_at", (json_int_t)db_col_int64(st, 6)));
		free(p);
	}
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:I, s:o, s:o}", "seq", (json_int_t)seq, "folders", folders,
	                            "files", files));
}

static char *chunk_token(struct req *r, int64_t ttl_s, int64_t *exp)
{
	*exp = now_ms() + ttl_s * 1000;
	return tokens_sign(r->db, json_pack("{s:I, s:s, s:I}", "ws", (json_int_t)r->ws_id, "scope",
	                                    "chunks", "exp", (json_int_t)*exp));
}

/* GET /workspaces/W/manifest?path=P[&version=N]: a version's chunks and where
 * they can be fetched: online hosts holding each, plus the hub. */
enum MHD_Result api_manifest(struct req *r)
{
	char *path = req_path_arg(r, "path");
	if (!path)
		return MHD_YES;
	const char *vs = req_arg(r, "version", NULL);
	int64_t version = vs ? parse_id(vs) : 0;
	enum MHD_Result ret = MHD_YES;
	struct file_info fi;
	if (vs && version <= 0) {
		ret = reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                  "version is a positive number");
		goto out;
	}
	if (!meta_readable_version(r, path, version, &fi))
		goto out;
	int64_t now = now_ms();
	json_t *chunks = json_array(), *hosts = json_object();
	struct db_stmt *st = db_query(r->db,
	                              "SELECT chunk_hash, size, chunk_offset FROM version_chunks "
	                              "WHERE version_id = ? ORDER BY idx",
	                              "i", fi.version_id);
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(chunks,
		                      json_pack("{s:s, s:I, s:I, s:[]}", "hash", db_col_text(st, 0),
		                                "size", (json_int_t)db_col_int64(st, 1), "offset",
		                                (json_int_t)db_col_int64(st, 2), "hosts"));
	db_finalize(st);
	st = db_query(r->db,
	              "SELECT vc.idx, h.id, h.url FROM version_chunks vc JOIN chunk_replicas cr ON "
	              "cr.chunk_hash = vc.chunk_hash JOIN hosts h ON h.id = cr.host_id WHERE "
	              "vc.version_id = ? AND cr.state = 'ok' AND h.workspace_id = ? AND "
	              "h.revoked_at IS NULL AND h.url IS NOT NULL AND " ONLINE_SQL
	              " ORDER BY vc.idx",
	              "iii", fi.version_id, r->ws_id, now);
	while (st && db_step(st) == DB_ROW) {
		json_t *c = json_array_get(chunks, (size_t)db_col_int64(st, 0));
		char id[24];
		snprintf(id, sizeof id, "%lld", (long long)db_col_int64(st, 1));
		if (c)
			json_array_append_new(json_object_get(c, "hosts"),
			                      json_integer(db_col_int64(st, 1)));
		json_object_set_new(hosts, id, json_string(db_col_text(st, 2)));
	}
	db_finalize(st);
	json_t *o =
	    json_pack("{s:s, s:I, s:I, s:I, s:s, s:o, s:o}", "path", path, "version",
	              (json_int_t)fi.version_no, "version_id", (json_int_t)fi.version_id, "size",
	              (json_int_t)fi.size, "hash", fi.hash, "chunks", chunks, "hosts", hosts);
	if (json_object_size(hosts) && acl_reads_all(r)) {
		int64_t exp;
		char *tok = chunk_token(r, CHUNK_TOKEN_TTL_S, &exp);
		if (tok)
			json_object_set_new(o, "chunk_token", json_string(tok));
		free(tok);
	}
	ret = reply_json(r, MHD_HTTP_OK, o);
out:
	free(path);
	return ret;
}

/* POST /workspaces/W/tokens {scope:"chunks", expires_in} */
enum MHD_Result api_token_create(struct req *r)
{
	const char *scope = json_get_str(r->json, "scope");
	int64_t ttl = CHUNK_TOKEN_TTL_S;
	if (!scope || strcmp(scope, "chunks") != 0 ||
	    (json_object_get(r->json, "expires_in") &&
	     (!json_get_int(r->json, "expires_in", &ttl) || ttl < 1 ||
	      ttl * 1000 > TOKEN_TTL_MAX_MS)))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "scope is \"chunks\" and expires_in 1..%lld seconds",
		                   (long long)(TOKEN_TTL_MAX_MS / 1000));
	if (!acl_reads_all(r))
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "a chunk token needs read access to the whole workspace");
	int64_t exp;
	char *tok = chunk_token(r, ttl, &exp);
	if (!tok)
		return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "no_signing_key",
		                   "the hub has no usable signing key");
	json_t *o = json_pack("{s:s, s:s, s:I}", "token", tok, "scope", "chunks", "expires_at",
	                      (json_int_t)exp);
	free(tok);
	return reply_json(r, MHD_HTTP_CREATED, o);
}

/* The copies of each chunk of a current version: hub storage + online hosts. */
#define COPIES_SQL                                                                                 \
	"(SELECT COUNT(*) FROM chunk_replicas cr LEFT JOIN hosts h ON h.id = cr.host_id WHERE "    \
	"cr.chunk_hash = vc.chunk_hash AND cr.state = 'ok' AND (cr.holder = 'hub' OR "             \
	"(h.revoked_at IS NULL AND " ONLINE_SQL ")))"

/* The same for a member who may not read every file: over what they may. */
static enum MHD_Result replicas_readable(struct req *r, int64_t minr, int64_t now)
{
	struct acl_sums s;
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT d.path, f.name, vc.chunk_hash, " COPIES_SQL " FROM files f JOIN folders d ON "
	    "d.id = f.folder_id JOIN version_chunks vc ON vc.version_id = f.current_version_id "
	    "WHERE f.workspace_id = ? AND f.deleted_at IS NULL",
	    "ii", now, r->ws_id);
	if (acl_sum_readable(r, st, minr, &s) != 0)
		return reply_db_error(r);
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:I, s:I, s:I, s:I}", "chunks", (json_int_t)s.count,
	                            "under_replicated", (json_int_t)s.below, "copies",
	                            (json_int_t)s.sum, "min_replicas", (json_int_t)minr));
}

/* GET /workspaces/W/replicas: chunks of current versions and how many have
 * fewer online copies (hub storage + online hosts) than min_replicas. */
enum MHD_Result api_replicas(struct req *r)
{
	int64_t now = now_ms(), minr = 2;
	if (db_int64(r->db, &minr, "SELECT min_replicas FROM workspaces WHERE id = ?", "i",
	             r->ws_id) != DB_ROW)
		return reply_db_error(r);
	if (!acl_reads_all(r))
		return replicas_readable(r, minr, now);
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN n < ? THEN 1 ELSE 0 END), 0), "
	    "COALESCE(SUM(n), 0) FROM (SELECT (SELECT COUNT(*) FROM chunk_replicas cr LEFT JOIN "
	    "hosts h ON h.id = cr.host_id WHERE cr.chunk_hash = u.chunk_hash AND cr.state = 'ok' "
	    "AND (cr.holder = 'hub' OR (h.revoked_at IS NULL AND " ONLINE_SQL "))) AS n FROM "
	    "(SELECT DISTINCT vc.chunk_hash FROM files f JOIN version_chunks vc ON vc.version_id "
	    "= f.current_version_id WHERE f.workspace_id = ? AND f.deleted_at IS NULL) u) x",
	    "iii", minr, now, r->ws_id);
	if (!st || db_step(st) != DB_ROW) {
		db_finalize(st);
		return reply_db_error(r);
	}
	json_t *o = json_pack("{s:I, s:I, s:I, s:I}", "chunks", (json_int_t)db_col_int64(st, 0),
	                      "under_replicated", (json_int_t)db_col_int64(st, 1), "copies",
	                      (json_int_t)db_col_int64(st, 2), "min_replicas", (json_int_t)minr);
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK, o);
}

/* POST /workspaces/W/hosts/self/relay-token: what a host shows a relay. The
 * relay verifies it with the hub's public keys and routes /h/SLUG/ to it. */
enum MHD_Result api_host_relay_token(struct req *r)
{
	if (!need_host(r))
		return MHD_YES;
	/* The first request picks the slug; concurrent ones read the winner's. */
	char fresh[32], slug[64] = "";
	unsigned char raw[12];
	randombytes_buf(raw, sizeof raw);
	hex_encode(raw, sizeof raw, fresh);
	if (db_run(r->db, "UPDATE hosts SET tunnel_slug = ? WHERE id = ? AND tunnel_slug IS NULL",
	           "ti", fresh, r->host_id) != DB_DONE)
		return reply_db_error(r);
	struct db_stmt *st =
	    db_query(r->db, "SELECT tunnel_slug FROM hosts WHERE id = ?", "i", r->host_id);
	if (st && db_step(st) == DB_ROW && db_col_text(st, 0))
		snprintf(slug, sizeof slug, "%s", db_col_text(st, 0));
	db_finalize(st);
	if (!slug[0])
		return reply_db_error(r);
	int64_t exp = now_ms() + RELAY_TOKEN_TTL_S * 1000;
	char *tok =
	    tokens_sign(r->db, json_pack("{s:s, s:I, s:I, s:s, s:I}", "scope", "relay", "ws",
	                                 (json_int_t)r->ws_id, "host", (json_int_t)r->host_id,
	                                 "slug", slug, "exp", (json_int_t)exp));
	if (!tok)
		return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "no_signing_key",
		                   "the hub has no usable signing key");
	json_t *o =
	    json_pack("{s:s, s:s, s:I}", "token", tok, "slug", slug, "expires_at", (json_int_t)exp);
	free(tok);
	return reply_json(r, MHD_HTTP_CREATED, o);
}

#define ROTATE_GRACE_S_DEFAULT 60
#define ROTATE_GRACE_S_MAX     86400

/* Put host's relay slug (into old, "" if none) on the relays' revocation
 * list from effective_at, and clear it. In the caller's transaction. */
static int slug_retire(struct db *db, int64_t host, int64_t effective_at, char old[64])
{
	old[0] = 0;
	struct db_stmt *st = db_query(db, "SELECT tunnel_slug FROM hosts WHERE id = ?", "i", host);
	if (st && db_step(st) == DB_ROW && db_col_text(st, 0))
		snprintf(old, 64, "%s", db_col_text(st, 0));
	db_finalize(st);
	if (!st)
		return DB_ERR;
	if (old[0] && db_run(db,
	                     "INSERT INTO relay_revocations(slug, host_id, effective_at, "
	                     "created_at) VALUES(?,?,?,?) ON CONFLICT(slug) DO UPDATE SET "
	                     "effective_at = excluded.effective_at, created_at = "
	                     "excluded.created_at",
	                     "tiii", old, host, effective_at, now_ms()) != DB_DONE)
		return DB_ERR;
	return db_run(db, "UPDATE hosts SET tunnel_slug = NULL, tunnel_url = NULL WHERE id = ?",
	              "i", host);
}

/* POST hosts/H/rotate-url {grace_s} and POST hosts/H/revoke-url: the host's
 * relay slug is retired (at once, or after the grace period, during which
 * relays route both) and a new one is used from its next relay token. */
static enum MHD_Result retire_slug(struct req *r, bool revoke)
{
	int64_t host = host_param(r);
	if (!host)
		return MHD_YES;
	if (!(r->role >= ROLE_ADMIN && !r->host_id) && !(r->host_id == host && !revoke))
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   revoke
		                       ? "only owners and admins revoke a host's URL"
		                       : "only owners, admins or the host itself rotate its URL");
	int64_t grace = revoke ? 0 : ROTATE_GRACE_S_DEFAULT;
	if (!revoke && json_object_get(r->json, "grace_s") &&
	    (!json_get_int(r->json, "grace_s", &grace) || grace < 0 || grace > ROTATE_GRACE_S_MAX))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "grace_s is 0..%d seconds", ROTATE_GRACE_S_MAX);
	int64_t now = now_ms();
	char old[64] = "";
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	if (slug_retire(r->db, host, now + grace * 1000, old) != DB_DONE ||
	    meta_change(r->db, r->ws_id, "host.url", "host",
	                json_pack("{s:I, s:s, s:I}", "host_id", (json_int_t)host, "action",
	                          revoke ? "revoke" : "rotate", "grace_s", (json_int_t)grace)) !=
	        0 ||
	    meta_audit(r, revoke ? "host.revoke_url" : "host.rotate_url", old[0] ? old : NULL,
	               json_pack("{s:I, s:I}", "host_id", (json_int_t)host, "grace_s",
	                         (json_int_t)grace)) != 0 ||
	    meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:I, s:s, s:I}", "host_id", (json_int_t)host, "retired", old,
	                            "effective_at", (json_int_t)(now + grace * 1000)));
}

enum MHD_Result api_host_rotate_url(struct req *r)
{
	return retire_slug(r, false);
}

enum MHD_Result api_host_revoke_url(struct req *r)
{
	return retire_slug(r, true);
}

/* DELETE /workspaces/W/hosts/H: remove a host for good. Its credential
 * stops working at once (auth_check_bearer wants hosts.revoked_at NULL, and
 * its tokens are revoked too), its relay slug is retired at once, its copies
 * of chunks stop counting (their rows go), and the replicate job is due now
 * to make up for them. Owners and admins only; audited. */
enum MHD_Result api_host_remove(struct req *r)
{
	if (!need_admin(r))
		return MHD_YES;
	int64_t host = host_param(r);
	if (!host)
		return MHD_YES;
	int64_t now = now_ms(), copies = 0;
	char slug[64] = "", label[LABEL_MAX + 1] = "";
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	struct db_stmt *st = db_query(r->db, "SELECT label FROM hosts WHERE id = ?", "i", host);
	if (st && db_step(st) == DB_ROW)
		snprintf(label, sizeof label, "%s", db_col_text(st, 0));
	db_finalize(st);
	if (!st || slug_retire(r->db, host, now, slug) != DB_DONE ||
	    db_run(r->db,
	           "UPDATE hosts SET revoked_at = ?, status = 'offline', url = NULL WHERE id = ?",
	           "ii", now, host) != DB_DONE ||
	    db_run(r->db,
	           "UPDATE tokens SET revoked_at = ? WHERE host_id = ? AND revoked_at IS NULL",
	           "ii", now, host) != DB_DONE ||
	    db_int64(r->db, &copies, "SELECT COUNT(*) FROM chunk_replicas WHERE host_id = ?", "i",
	             host) != DB_ROW ||
	    db_run(r->db, "DELETE FROM chunk_replicas WHERE host_id = ?", "i", host) != DB_DONE ||
	    db_run(r->db, "UPDATE jobs SET next_run_at = ? WHERE name = 'replicate'", "i", now) !=
	        DB_DONE ||
	    meta_change(r->db, r->ws_id, "host.removed", "host",
	                json_pack("{s:I, s:s}", "host_id", (json_int_t)host, "label", label)) !=
	        0 ||
	    meta_audit(r, "host.remove", label,
	               json_pack("{s:I, s:I, s:s?}", "host_id", (json_int_t)host, "copies_gone",
	                         (json_int_t)copies, "slug", slug[0] ? slug : NULL)) != 0 ||
	    meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:I, s:s, s:b, s:I, s:s?}", "host_id", (json_int_t)host,
	                            "label", label, "removed", 1, "copies_gone", (json_int_t)copies,
	                            "retired_slug", slug[0] ? slug : NULL));
}

/* GET /api/v1/relay/revocations?since=MS: retired slugs, for relays (no
 * credential: a retired slug routes nowhere, so the list gives nothing away). */
enum MHD_Result api_relay_revocations(struct req *r)
{
	const char *since_s = req_arg(r, "since", NULL);
	int64_t since = since_s ? strtoll(since_s, NULL, 10) : 0;
	struct db_stmt *st =
	    db_query(r->db,
	             "SELECT slug, effective_at, created_at FROM relay_revocations "
	             "WHERE created_at > ? ORDER BY created_at LIMIT 1000",
	             "i", since);
	if (!st)
		return reply_db_error(r);
	json_t *arr = json_array();
	while (db_step(st) == DB_ROW)
		json_array_append_new(arr,
		                      json_pack("{s:s, s:I, s:I}", "slug", db_col_text(st, 0),
		                                "effective_at", (json_int_t)db_col_int64(st, 1),
		                                "created_at", (json_int_t)db_col_int64(st, 2)));
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:o, s:I}", "revocations", arr, "now", (json_int_t)now_ms()));
}

/* POST /workspaces/W/hosts/self/scrub {files_checked, bytes_checked,
 * corrupt:[{path, hash}], cache_chunks_dropped}: what a host's scrub found.
 * Audited; the host's copies of a corrupt file's chunks count as corrupt
 * until it reports them again (after fetching the file back). */
enum MHD_Result api_host_scrub(struct req *r)
{
	if (!need_host(r))
		return MHD_YES;
	json_t *corrupt = json_object_get(r->json, "corrupt");
	int64_t files = 0, bytes = 0, dropped = 0;
	if ((corrupt && !json_is_array(corrupt)) || json_array_size(corrupt) > 10000 ||
	    (json_object_get(r->json, "files_checked") &&
	     !json_get_int(r->json, "files_checked", &files)) ||
	    (json_object_get(r->json, "bytes_checked") &&
	     !json_get_int(r->json, "bytes_checked", &bytes)))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "files_checked, bytes_checked (numbers) and corrupt (at most "
		                   "10000 {path, hash}) are expected");
	json_get_int(r->json, "cache_chunks_dropped", &dropped);
	size_t i;
	json_t *c;
	json_array_foreach(corrupt, i, c)
	{
		const char *p = json_get_str(c, "path"), *hash = json_get_str(c, "hash");
		if (!p || !hash_hex_valid(hash) || p[0] != '/' || strlen(p) > 4096)
			return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
			                   "corrupt[%zu] needs a path and a version hash", i);
	}
	char holder[32];
	snprintf(holder, sizeof holder, "host:%lld", (long long)r->host_id);
	if (db_begin(r->db) != DB_DONE)
		return reply_db_error(r);
	json_array_foreach(corrupt, i, c)
	{
		if (db_run(
		        r->db,
		        "UPDATE chunk_replicas SET state = 'corrupt', updated_at = ? WHERE holder "
		        "= ? "
		        "AND chunk_hash IN (SELECT vc.chunk_hash FROM version_chunks vc JOIN "
		        "file_versions v ON v.id = vc.version_id JOIN files f ON f.id = v.file_id "
		        "WHERE f.workspace_id = ? AND v.hash = ?)",
		        "itit", now_ms(), holder, r->ws_id, json_get_str(c, "hash")) != DB_DONE ||
		    meta_audit(r, "file.corrupt", json_get_str(c, "path"),
		               json_pack("{s:s, s:I}", "hash", json_get_str(c, "hash"), "host",
		                         (json_int_t)r->host_id)) != 0)
			goto fail;
	}
	if (meta_audit(r, "host.scrub", holder,
	               json_pack("{s:I, s:I, s:I, s:I}", "files_checked", (json_int_t)files,
	                         "bytes_checked", (json_int_t)bytes, "corrupt",
	                         (json_int_t)json_array_size(corrupt), "cache_chunks_dropped",
	                         (json_int_t)dropped)) != 0 ||
	    db_commit(r->db) != DB_DONE)
		goto fail;
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1));
fail:
	db_rollback(r->db);
	return reply_db_error(r);
}
