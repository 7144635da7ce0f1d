/* hosts/uploads: clients that are not hosts upload a file's chunks to a host
 * that keeps the folder, in a workspace whose storage is 'hosts' (docs/host.md,
 * "Uploads to a host"):
 *
 *   POST upload-targets {path}       where to send path's chunks: the online
 *                                    hosts that pin its folder, each with an
 *                                    upload token signed for it, then the hub
 *   POST uploads/missing {hashes}    the resume probe: which chunks the caller
 *                                    must still send (to a host or the hub)
 *   POST hosts/self/uploads {token, chunks}
 *                                    a host reports chunks it received, hashed
 *                                    and pinned: they become the uploader's
 *                                    to commit (chunk_uploads), the host's
 *                                    copy is recorded (chunk_replicas)
 *
 * An upload token (scope "chunk-upload": never "upload", which a host's
 * commit takes as an upload grant) names the workspace, the uploader, the
 * file path, the one host it is for and the largest chunk; it lets its holder
 * store chunks on that host and nothing else (no read, no other path). The
 * hub checks at report time that the uploader may still write the path.
 *
 * Threads: request threads; no state outside the database. */
#include "internal.h"
#include "../acl.h"
#include "../api.h"
#include "../auth.h"
#include "../limits.h"
#include "../meta.h"
#include "../op_http.h"
#include "../possess.h"
#include "../tokens.h"
#include "../upload.h"
#include "../ops/ops.h"
#include "../../core/hash.h"
#include "../../core/json.h"
#include "../../core/path.h"
#include "../../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPLOAD_TOKEN_TTL_MS (30ll * 60 * 1000) /* the client asks again when it lapses */
#define UPLOAD_TARGETS_MAX  4                  /* hosts offered, best first */
#define UPLOAD_REPORT_MAX   256                /* chunks in one host report */
#define UPLOAD_PROBE_MAX    10000              /* hashes in one resume probe */

/* Is workspace ws's storage 'hosts'? 1 yes, 0 no, <0 db error. */
static int storage_hosts(struct db *db, int64_t ws)
{
	struct db_stmt *st = db_query(db, "SELECT storage FROM workspaces WHERE id = ?", ws);
	int rc = st ? db_step(st) : DB_ERR;
	int out = rc == DB_ROW ? strcmp(db_col_text(st, 0), "hosts") == 0 : -1;
	db_finalize(st);
	return out;
}

/* One target: a host's content server (direct, or through its relay) with a
 * token signed for that host. */
static json_t *target(struct req *r, int64_t host, const char *label, const char *via,
                      const char *url, const char *path, int64_t chunk_max, int64_t exp)
{
	char *tok = tokens_sign(r->db, json_pack("{s:s, s:I, s:I, s:s, s:I, s:I, s:I}", "scope",
	                                         "chunk-upload", "ws", (json_int_t)r->ws_id, "user",
	                                         (json_int_t)r->user_id, "path", path, "host",
	                                         (json_int_t)host, "max", (json_int_t)chunk_max,
	                                         "exp", (json_int_t)exp));
	if (!tok)
		return NULL;
	size_t n = strlen(url);
	json_t *t =
	    json_pack("{s:s, s:I, s:s, s:s%, s:s, s:I}", "via", via, "host_id", (json_int_t)host,
	              "label", label, "url", url, n && url[n - 1] == '/' ? n - 1 : n, "token", tok,
	              "expires_at", (json_int_t)exp);
	free(tok);
	return t;
}

/* The online, non-revoked hosts that pin path (their most specific policy;
 * pinned by default), best first. Nearness is not knowable from the hub (it
 * cannot tell which host shares the client's machine or network), so the
 * order is the host with the most free space, then the most recent
 * heartbeat; the client tries them in order and falls back on failure. */
static json_t *targets(struct req *r, const char *path, int64_t chunk_max, int64_t exp)
{
	json_t *out = json_array();
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT h.id, h.label, h.url, h.tunnel_url FROM hosts h WHERE h.workspace_id = ? AND "
	    "h.revoked_at IS NULL AND (h.url IS NOT NULL OR h.tunnel_url IS NOT NULL) AND "
	    "" HOST_ONLINE_SQL " AND COALESCE((SELECT p.mode FROM replication_policies p JOIN "
	    "folders f ON f.id = p.folder_id WHERE p.host_id = h.id AND (f.path = '/' OR "
	    "substr(?, 1, length(f.path) + 1) = f.path || '/') ORDER BY length(f.path) DESC "
	    "LIMIT 1), 'pinned') = 'pinned' ORDER BY COALESCE(h.free_bytes, -1) DESC, "
	    "h.last_seen DESC, h.id LIMIT " STRINGIFY(UPLOAD_TARGETS_MAX),
	    r->ws_id, now_ms(), path);
	while (st && db_step(st) == DB_ROW) {
		int64_t id = db_col_int64(st, 0);
		const char *label = db_col_text(st, 1);
		const char *urls[2] = {db_col_text(st, 2), db_col_text(st, 3)};
		const char *vias[2] = {"host", "relay"};
		for (int k = 0; k < 2; k++) {
			json_t *t = urls[k] ? target(r, id, label ? label : "", vias[k], urls[k],
			                             path, chunk_max, exp)
			                    : NULL;
			if (t)
				json_array_append_new(out, t);
		}
	}
	db_finalize(st);
	return out;
}

/* POST /workspaces/W/upload-targets {path}: where a client sends the chunks
 * of a new version of path. In a 'hub' workspace, only the hub. */
enum MHD_Result api_upload_targets(struct req *r)
{
	char *path = req_body_path(r, "path");
	if (!path)
		return MHD_YES;
	enum MHD_Result ret = MHD_YES;
	if (!req_path_writable(r, path) || !acl_require(r, path, true, PERM_WRITE))
		goto out;
	struct chunker_params p;
	int hosts = storage_hosts(r->db, r->ws_id);
	if (hosts < 0 || hub_ws_chunking(r->db, r->ws_id, &p) != 0) {
		ret = reply_db_error(r);
		goto out;
	}
	int64_t exp = now_ms() + UPLOAD_TOKEN_TTL_MS;
	json_t *list = hosts ? targets(r, path, (int64_t)p.max, exp) : json_array();
	ret = reply_json(r, MHD_HTTP_OK,
	                 json_pack("{s:s, s:o, s:b, s:I}", "storage", hosts ? "hosts" : "hub",
	                           "targets", list, "hub", 1, "chunk_max", (json_int_t)p.max));
out:
	free(path);
	return ret;
}

/* Did the caller upload hash (an own chunk_uploads row within the lease) and
 * does a non-revoked host of the workspace hold it verified? Then the commit
 * takes it without the hub's store holding it. */
static bool held_by_host_for_caller(struct req *r, const char *hash)
{
	char up[32];
	snprintf(up, sizeof up, "u:%lld", (long long)r->user_id);
	int64_t one = 0;
	return db_int64(r->db, &one,
	                "SELECT 1 FROM chunk_uploads u WHERE u.workspace_id = ? AND u.uploader = ? "
	                "AND u.chunk_hash = ? AND u.touched_at > ? AND EXISTS (SELECT 1 FROM "
	                "chunk_replicas cr JOIN hosts h ON h.id = cr.host_id WHERE cr.chunk_hash = "
	                "u.chunk_hash AND cr.state = 'ok' AND h.workspace_id = u.workspace_id AND "
	                "h.revoked_at IS NULL)",
	                r->ws_id, up, hash, now_ms() - UPLOAD_PENDING_MS) == DB_ROW;
}

/* POST /workspaces/W/uploads/missing {hashes}: the chunks the caller must
 * still send. As chunks/missing, but a chunk the caller sent to a host (and
 * the host reported) counts as sent: a put resumes without sending it again.
 * Like chunks/missing it never tells whether anyone else holds a chunk. */
enum MHD_Result api_uploads_missing(struct req *r)
{
	json_t *hashes = json_object_get(r->json, "hashes");
	if (!json_is_array(hashes) || json_array_size(hashes) > UPLOAD_PROBE_MAX)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "'hashes' is an array of at most %d chunk hashes",
		                   UPLOAD_PROBE_MAX);
	size_t n = json_array_size(hashes), i;
	json_t *h;
	struct chunk_ref *refs = xcalloc(n ? n : 1, sizeof *refs);
	json_array_foreach(hashes, i, h)
	{
		if (!hash_hex_valid(json_string_value(h))) {
			free(refs);
			return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_hash",
			                   "hashes[%zu] is not 64 lowercase hex digits", i);
		}
		memcpy(refs[i].hash, json_string_value(h), HASH_HEX_LEN + 1);
	}
	if (!upload_probe_fits(r)) {
		free(refs);
		return MHD_YES;
	}
	bool *held = xcalloc(n ? n : 1, sizeof *held);
	struct op_ctx c;
	req_op_ctx(r, &c);
	int rc = possess_check(&c, refs, n, held);
	req_op_end(r, &c);
	json_t *missing = json_array();
	for (i = 0; rc == DB_DONE && i < n; i++) {
		bool have = held[i] && store_size(r->hub->store, refs[i].hash) > 0;
		if (!have && !held_by_host_for_caller(r, refs[i].hash))
			json_array_append_new(missing, json_string(refs[i].hash));
	}
	free(refs);
	free(held);
	if (rc != DB_DONE) {
		json_decref(missing);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "missing", missing));
}

/* ---- a host's report ---- */

/* The claims of an upload token for this host and workspace (after
 * replying 403 if it is not one): the uploader and path in *user, *path
 * (normalized, new string) and the largest chunk in *max. */
static json_t *report_token(struct req *r, int64_t *user, char **path, int64_t *max)
{
	const char *tok = json_get_str(r->json, "token"), *why = NULL;
	json_t *claims = tok && strlen(tok) <= 4096 ? tokens_verify(r->db, tok, &why) : NULL;
	int64_t ws = 0, host = 0;
	const char *sc = json_get_str(claims, "scope"), *p = json_get_str(claims, "path");
	*path = NULL;
	if (claims && sc && strcmp(sc, "chunk-upload") == 0 && json_get_int(claims, "ws", &ws) &&
	    ws == r->ws_id && json_get_int(claims, "host", &host) && host == r->host_id &&
	    json_get_int(claims, "user", user) && json_get_int(claims, "max", max) && p)
		*path = path_normalize(p, strlen(p), &why);
	if (!*path) {
		json_decref(claims);
		reply_error(r, MHD_HTTP_FORBIDDEN, "invalid_token", "%s",
		            why ? why : "not an upload token for this host and workspace");
		return NULL;
	}
	return claims;
}

/* The report's chunks into refs (owned); false after replying 400. */
static bool report_chunks(struct req *r, int64_t max, struct chunk_ref **refs, size_t *n)
{
	json_t *chunks = json_object_get(r->json, "chunks");
	*n = json_array_size(chunks);
	*refs = NULL;
	if (!json_is_array(chunks) || *n == 0 || *n > UPLOAD_REPORT_MAX) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		            "chunks is an array of 1..%d {hash, size}", UPLOAD_REPORT_MAX);
		return false;
	}
	*refs = xcalloc(*n, sizeof **refs);
	for (size_t i = 0; i < *n; i++) {
		json_t *c = json_array_get(chunks, i);
		const char *h = json_get_str(c, "hash");
		if (!hash_hex_valid(h) || !json_get_int(c, "size", &(*refs)[i].size) ||
		    (*refs)[i].size < 1 || (*refs)[i].size > max) {
			reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_chunk",
			            "chunks[%zu] needs a hex hash and a size in 1..%lld", i,
			            (long long)max);
			free(*refs);
			*refs = NULL;
			return false;
		}
		memcpy((*refs)[i].hash, h, HASH_HEX_LEN + 1);
	}
	return true;
}

/* Take the uploader's identity (as a signed URL's issuer is taken) and check
 * it may still write path; false after replying 403/404. */
static bool become_uploader(struct req *r, int64_t user, const char *path)
{
	acl_free(r->acl);
	r->acl = NULL;
	r->host_id = 0; /* from here on the uploader acts: chunk_uploads names u:USER */
	r->user_id = user;
	r->role = auth_role(r->db, r->ws_id, user);
	if (r->role == ROLE_NONE) {
		reply_error(r, MHD_HTTP_FORBIDDEN, "uploader_not_member",
		            "whoever is uploading is no longer a member");
		return false;
	}
	return req_path_writable(r, path) && acl_require(r, path, true, PERM_WRITE);
}

/* One reported chunk, in the report's transaction: the chunk known (aging
 * as an unreferenced one until a commit uses it), the workspace's grant, the
 * uploader's possession and the host's copy. A new grant is unproven: the hub
 * has only the host's word for the bytes, so it must not serve this
 * workspace another workspace's copy on the strength of it. */
static int record(struct req *r, int64_t host, const struct chunk_ref *c, int64_t now)
{
	char holder[32];
	snprintf(holder, sizeof holder, "host:%lld", (long long)host);
	int64_t size = 0;
	int rc = db_run(r->db,
	                "INSERT INTO chunks(hash, size, refcount, created_at, unref_at) "
	                "VALUES(?,?,0,?,?) ON CONFLICT(hash) DO NOTHING",
	                c->hash, c->size, now, now);
	if (rc == DB_DONE && (rc = db_int64(r->db, &size, "SELECT size FROM chunks WHERE hash = ?",
	                                    c->hash)) == DB_ROW)
		rc = size == c->size ? DB_DONE : DB_CONSTRAINT;
	if (rc == DB_DONE)
		rc = db_run(r->db,
		            "INSERT INTO workspace_chunks(workspace_id, chunk_hash, touched_at, "
		            "proven) VALUES(?,?,?,0) ON CONFLICT(workspace_id, chunk_hash) DO "
		            "UPDATE SET touched_at = excluded.touched_at",
		            r->ws_id, c->hash, now);
	if (rc == DB_DONE) {
		struct op_ctx oc;
		req_op_ctx(r, &oc);
		rc = possess_record(&oc, c, false); /* on a host, not in the hub's store */
		req_op_end(r, &oc);
	}
	if (rc == DB_DONE)
		rc = db_run(r->db,
		            "INSERT INTO chunk_replicas(chunk_hash, holder, host_id, state, "
		            "updated_at) VALUES(?,?,?,'ok',?) ON CONFLICT(chunk_hash, holder) DO "
		            "UPDATE SET state = 'ok', updated_at = excluded.updated_at",
		            c->hash, holder, host, now);
	return rc;
}

/* POST /workspaces/W/hosts/self/uploads {token, chunks:[{hash,size}]}: this
 * host received, hashed and pinned chunks a client sent with token. */
enum MHD_Result api_host_uploads(struct req *r)
{
	if (!hosts_need_host(r))
		return MHD_YES;
	int64_t host = r->host_id, user = 0, max = 0, total = 0;
	char *path = NULL;
	struct chunk_ref *refs = NULL;
	size_t n = 0;
	json_t *claims = report_token(r, &user, &path, &max);
	json_decref(claims);
	enum MHD_Result ret = MHD_YES;
	if (!claims || !report_chunks(r, max < CHUNK_MAX_LIMIT ? max : CHUNK_MAX_LIMIT, &refs, &n))
		goto out;
	int hosts = storage_hosts(r->db, r->ws_id);
	if (hosts <= 0) {
		ret = hosts < 0
		          ? reply_db_error(r)
		          : reply_error(r, MHD_HTTP_CONFLICT, "storage_hub",
		                        "this workspace keeps its bytes on the hub; upload there");
		goto out;
	}
	if (!become_uploader(r, user, path))
		goto out;
	for (size_t i = 0; i < n; i++)
		total += refs[i].size;
	struct op_err e = {0};
	if (!limits_fit_pending(r, total, false, &e)) {
		ret = reply_op_err(r, &e);
		goto out;
	}
	/* As the hub's chunk PUT records its grants: losing these rows in a power
	 * cut only means sending the chunks again, so no WAL fsync per report. */
	int64_t now = now_ms();
	db_set_relaxed(r->db, true);
	int rc = db_begin(r->db);
	for (size_t i = 0; i < n && rc == DB_DONE; i++)
		rc = record(r, host, &refs[i], now);
	if (rc == DB_DONE)
		rc = db_commit(r->db);
	else
		db_rollback(r->db);
	db_set_relaxed(r->db, false);
	if (rc == DB_CONSTRAINT)
		ret = reply_error(r, MHD_HTTP_CONFLICT, "size_mismatch",
		                  "a chunk's size is not the size the hub knows for its hash");
	else if (rc != DB_DONE)
		ret = reply_db_error(r);
	else
		ret = reply_json(
		    r, MHD_HTTP_OK,
		    json_pack("{s:I, s:I}", "recorded", (json_int_t)n, "user", (json_int_t)user));
out:
	free(refs);
	free(path);
	return ret;
}
