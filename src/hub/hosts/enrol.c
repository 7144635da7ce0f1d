/* hosts/enrol: host agents joining and staying (docs/host.md) — host invites
 * and joining, heartbeats (liveness, and the copies the replicate job asks of
 * the host), the hosts list and removing a host.
 *
 * A host's credential is a bearer token of kind 'host'. It acts with the
 * rights of the admin who invited the host, in that workspace only, and audit
 * rows name the host. Online means a heartbeat within three of its intervals
 * (HOST_ONLINE_SQL).
 *
 * Threads: request threads (libmicrohttpd, one per connection); no state
 * outside the database. */
#include "internal.h"
#include "../auth.h"
#include "../meta.h"
#include "../tokens.h"
#include "../acl.h"
#include "../members.h"
#include "../peer.h"
#include "../../core/hash.h"
#include "../../core/json.h"
#include "../../core/path.h"
#include "../../core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_INVITE_TTL_S 3600            /* a host invite lasts this long by default */
#define HOST_INVITE_MAX_S (7 * 24 * 3600) /* … and at most this long */
#define HEARTBEAT_MS_MIN  100             /* the heartbeat intervals a host may name */
#define HEARTBEAT_MS_MAX  (3600 * 1000)   /* … up to an hour */

bool hosts_need_admin(struct req *r)
{
	if (r->role >= ROLE_ADMIN && !r->host_id)
		return true;
	reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden", "only owners and admins manage hosts");
	return false;
}

bool hosts_need_host(struct req *r)
{
	if (r->host_id)
		return true;
	reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden", "only a host's credential may do this");
	return false;
}

int64_t hosts_param(struct req *r)
{
	int64_t id = strcmp(r->params[1], "self") == 0 ? r->host_id : parse_id(r->params[1]);
	int64_t found = 0;
	if (id > 0 && db_int64(r->db, &found,
	                       "SELECT id FROM hosts WHERE id = ? AND workspace_id = ? AND "
	                       "revoked_at IS NULL",
	                       id, r->ws_id) == DB_ROW)
		return found;
	reply_error(r, MHD_HTTP_NOT_FOUND, "host_not_found", "no such host in this workspace");
	return 0;
}

/* POST /workspaces/W/hosts/invites {expires_in} */
enum MHD_Result api_host_invite(struct req *r)
{
	if (!hosts_need_admin(r))
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
	        r->ws_id, hash, r->user_id, now, now + ttl * 1000) != DB_ROW ||
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
	                              hash, now);
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
	             inv) != DB_ROW ||
	    db_int64(r->db, &taken,
	             "SELECT COUNT(*) FROM hosts WHERE workspace_id = ? AND label = ? AND "
	             "revoked_at IS NULL",
	             ws, label) != DB_ROW)
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
	             ws, label, now, inviter) != DB_ROW ||
	    db_run(r->db,
	           "INSERT INTO tokens(user_id, host_id, kind, name, token_hash, created_at) "
	           "VALUES(?, ?, 'host', ?, ?, ?)",
	           inviter, host, label, tok_hash, now) != DB_DONE ||
	    db_run(r->db, "UPDATE invites SET used_at = ? WHERE id = ?", now, inv) != DB_DONE)
		goto db_fail;
	r->host_id = host;
	/* Named folders: pinned, and the rest of the workspace excluded. */
	if (np && hosts_set_policy(r, host, "/", "exclude") != 0)
		goto db_fail;
	for (size_t k = 0; k < np; k++) {
		int rc = hosts_set_policy(r, host, paths[k], "pinned");
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
	st = db_query(r->db, "SELECT name FROM workspaces WHERE id = ?", ws);
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
	    "SELECT h.id, h.label, CASE WHEN " HOST_ONLINE_SQL
	    " THEN 1 ELSE 0 END, h.last_seen, h.url, h.capacity_bytes, "
	    "h.free_bytes, h.info, h.tunnel_url, h.created_at, h.heartbeat_ms FROM hosts h "
	    "WHERE h.workspace_id = ? AND h.revoked_at IS NULL ORDER BY h.id",
	    now, r->ws_id);
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

/* ---- the heartbeat's answer: the jobs' requests of a host (docs/jobs.md) ---- */

#define FETCH_SOURCES_MAX   4      /* other hosts named per chunk to fetch */
#define ASSIGN_TOKEN_TTL_MS 600000 /* the chunk token for fetching from them */

/* For each chunk in fetch, the online hosts of the workspace that hold it
 * (ids in its "hosts"): the host fetches from any holder, not only from the
 * hub, whose store may lack it ('hosts' mode). Their URLs: sources {ID: {url,
 * relay_url}} — a holder reachable only through its relay is a source too —
 * and urls {ID: url}, the direct ones alone, as older hosts read them. */
static void fetch_sources(struct req *r, json_t *fetch, json_t *urls, json_t *sources)
{
	size_t i;
	json_t *c;
	int64_t now = now_ms();
	json_array_foreach(fetch, i, c)
	{
		json_t *ids = json_array();
		struct db_stmt *st = db_query(
		    r->db,
		    "SELECT h.id, h.url, h.tunnel_url FROM chunk_replicas cr JOIN hosts h ON h.id "
		    "= "
		    "cr.host_id WHERE cr.chunk_hash = ? AND cr.state = 'ok' AND h.workspace_id = ? "
		    "AND h.id <> ? AND h.revoked_at IS NULL AND (h.url IS NOT NULL OR "
		    "h.tunnel_url IS NOT NULL) AND " HOST_ONLINE_SQL
		    " ORDER BY h.last_seen DESC LIMIT " STRINGIFY(FETCH_SOURCES_MAX),
		    json_get_str(c, "hash"), r->ws_id, r->host_id, now);
		while (st && db_step(st) == DB_ROW) {
			char id[24];
			snprintf(id, sizeof id, "%lld", (long long)db_col_int64(st, 0));
			const char *url = db_col_text(st, 1), *relay = db_col_text(st, 2);
			if (!req_may_reach(r, url))
				url = NULL; /* another machine's loopback URL */
			if (!url && !relay)
				continue;
			json_t *s = json_object();
			if (url) {
				json_object_set_new(urls, id, json_string(url));
				json_object_set_new(s, "url", json_string(url));
			}
			if (relay)
				json_object_set_new(s, "relay_url", json_string(relay));
			json_object_set_new(sources, id, s);
			json_array_append_new(ids, json_integer(db_col_int64(st, 0)));
		}
		db_finalize(st);
		json_object_set_new(c, "hosts", ids);
	}
}

/* When the last finished scrub asked hosts to scrub: the requested_at of its
 * scrub.requested event (a host that saw the event does not scrub again for
 * it), or its end for a result from before it said. 0: never. */
static int64_t scrub_requested_at(struct req *r)
{
	char *res = NULL;
	int64_t at = 0;
	struct db_stmt *st =
	    db_query(r->db, "SELECT result, COALESCE(finished_at, 0) FROM jobs WHERE "
	                    "name = 'scrub' AND result IS NOT NULL");
	if (st && db_step(st) == DB_ROW) {
		res = db_col_text(st, 0) ? xstrdup(db_col_text(st, 0)) : NULL;
		at = db_col_int64(st, 1);
	}
	db_finalize(st);
	json_t *o = res ? json_loads(res, 0, NULL) : NULL;
	json_get_int(o, "hosts_asked_at", &at);
	json_decref(o);
	free(res);
	return at;
}

/* What the jobs ask of this host: copies to fetch (with where to fetch them
 * from) or release (replicate), unreferenced chunks to drop from its cache
 * (GC marked its copies 'released'; the host drops them and reports it), and
 * when the hub last asked hosts to scrub. */
static json_t *heartbeat_answer(struct req *r)
{
	json_t *fetch = json_array(), *release = json_array(), *drop = json_array();
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT cr.chunk_hash, cr.state, c.size, c.refcount, cr.assigned FROM chunk_replicas "
	    "cr JOIN chunks c ON c.hash = cr.chunk_hash WHERE cr.host_id = ? AND cr.state <> 'ok' "
	    "AND ((cr.assigned = 1 AND cr.state IN ('pending', 'released', 'corrupt')) OR "
	    "(cr.state = 'released' AND c.refcount <= 0)) LIMIT 1024",
	    r->host_id);
	while (st && db_step(st) == DB_ROW) {
		const char *hash = db_col_text(st, 0), *state = db_col_text(st, 1);
		if (db_col_int64(st, 3) <= 0 && strcmp(state, "released") == 0)
			json_array_append_new(drop, json_string(hash));
		else if ((strcmp(state, "pending") == 0 || strcmp(state, "corrupt") == 0) &&
		         json_array_size(fetch) < 512) /* corrupt: an assigned copy, again */
			json_array_append_new(fetch, json_pack("{s:s, s:I}", "hash", hash, "size",
			                                       (json_int_t)db_col_int64(st, 2)));
		else if (strcmp(state, "released") == 0)
			json_array_append_new(release, json_string(hash));
	}
	db_finalize(st);
	json_t *urls = json_object(), *sources = json_object();
	fetch_sources(r, fetch, urls, sources);
	json_t *rep =
	    json_pack("{s:o, s:o, s:o}", "fetch", fetch, "release", release, "drop", drop);
	if (json_object_size(sources)) {
		char *tok =
		    tokens_sign(r->db, json_pack("{s:I, s:s, s:I}", "ws", (json_int_t)r->ws_id,
		                                 "scope", "chunks", "exp",
		                                 (json_int_t)(now_ms() + ASSIGN_TOKEN_TTL_MS)));
		if (tok)
			json_object_set_new(rep, "chunk_token", json_string(tok));
		free(tok);
	}
	json_object_set_new(rep, "hosts", urls);
	json_object_set_new(rep, "sources", sources);
	return json_pack("{s:b, s:I, s:o, s:I}", "ok", 1, "host_id", (json_int_t)r->host_id,
	                 "replicate", rep, "scrub_requested_at", (json_int_t)scrub_requested_at(r));
}

/* POST /workspaces/W/hosts/self/heartbeat */
enum MHD_Result api_host_heartbeat(struct req *r)
{
	if (!hosts_need_host(r))
		return MHD_YES;
	const char *url = json_get_str(r->json, "url");
	const char *status = json_get_str(r->json, "status");
	int64_t hb = HOST_HEARTBEAT_MS_DEFAULT, cap = -1, fr = -1;
	if ((url &&
	     (strlen(url) > 512 || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))) ||
	    (json_object_get(r->json, "interval_ms") &&
	     (!json_get_int(r->json, "interval_ms", &hb) || hb < HEARTBEAT_MS_MIN ||
	      hb > HEARTBEAT_MS_MAX)) ||
	    (status && strcmp(status, "online") && strcmp(status, "stopping")))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "url is an http(s) URL, interval_ms %d..%d, status "
		                   "online|stopping",
		                   HEARTBEAT_MS_MIN, HEARTBEAT_MS_MAX);
	const char *tunnel = json_get_str(r->json, "tunnel_url");
	if (tunnel && (strlen(tunnel) > 512 || strncmp(tunnel, "https://", 8) != 0))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "tunnel_url is an https URL");
	json_get_int(r->json, "capacity_bytes", &cap);
	json_get_int(r->json, "free_bytes", &fr);
	/* What the dashboard shows as is: queue, last sync, version, pinned folders. */
	json_t *info = json_object();
	const char *keys[] = {"queue",       "last_sync", "version",  "pinned",
	                      "cache_bytes", "seq",       "no_space", "io_errors"};
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
	return reply_json(r, MHD_HTTP_OK, heartbeat_answer(r));
}

/* DELETE /workspaces/W/hosts/H: remove a host for good. Its credential
 * stops working at once (auth_check_bearer wants hosts.revoked_at NULL, and
 * its tokens are revoked too), its relay slug is retired at once, its copies
 * of chunks stop counting (their rows go), and the replicate job is due now
 * to make up for them. Owners and admins only; audited. */
enum MHD_Result api_host_remove(struct req *r)
{
	if (!hosts_need_admin(r))
		return MHD_YES;
	int64_t host = hosts_param(r);
	if (!host)
		return MHD_YES;
	int64_t now = now_ms(), copies = 0;
	char slug[64] = "", label[LABEL_MAX + 1] = "";
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	struct db_stmt *st = db_query(r->db, "SELECT label FROM hosts WHERE id = ?", host);
	if (st && db_step(st) == DB_ROW)
		snprintf(label, sizeof label, "%s", db_col_text(st, 0));
	db_finalize(st);
	if (!st || hosts_slug_retire(r->db, host, now, slug) != DB_DONE ||
	    db_run(r->db,
	           "UPDATE hosts SET revoked_at = ?, status = 'offline', url = NULL WHERE id = ?",
	           now, host) != DB_DONE ||
	    db_run(r->db,
	           "UPDATE tokens SET revoked_at = ? WHERE host_id = ? AND revoked_at IS NULL", now,
	           host) != DB_DONE ||
	    db_int64(r->db, &copies, "SELECT COUNT(*) FROM chunk_replicas WHERE host_id = ?",
	             host) != DB_ROW ||
	    db_run(r->db, "DELETE FROM chunk_replicas WHERE host_id = ?", host) != DB_DONE ||
	    db_run(r->db, "UPDATE jobs SET next_run_at = ? WHERE name = 'replicate'", now) !=
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

int hosts_workspace_deleted(struct db *db, int64_t ws, int64_t now)
{
	struct db_stmt *st =
	    db_query(db, "SELECT id FROM hosts WHERE workspace_id = ? AND revoked_at IS NULL", ws);
	json_t *ids = json_array();
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(ids, json_integer(db_col_int64(st, 0)));
	db_finalize(st);
	int rc = st ? DB_DONE : DB_ERR;
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		char slug[64] = "";
		if (rc == DB_DONE)
			rc = hosts_slug_retire(db, json_integer_value(v), now, slug);
	}
	json_decref(ids);
	if (rc == DB_DONE)
		rc = db_run(
		    db, "UPDATE hosts SET status = 'offline', url = NULL WHERE workspace_id = ?",
		    ws);
	return rc;
}
