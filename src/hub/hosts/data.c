/* hosts/data: the hub's side of the data plane with hosts — replica reports
 * (which host holds which chunk), the tree snapshot a host starts from,
 * download manifests with the hosts to fetch each chunk from, chunk tokens
 * that let a client fetch from hosts, replica counts, and the corrupt copies
 * a host's scrub reports.
 *
 * Threads: request threads; no state outside the database. */
#include "internal.h"
#include "../meta.h"
#include "../tokens.h"
#include "../acl.h"
#include "../peer.h"
#include "../auth.h"
#include "../../core/hash.h"
#include "../../core/json.h"
#include "../../core/path.h"
#include "../../core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLICA_REPORT_MAX 10000 /* hashes in one replica report */
#define REPLICA_LIST_MAX   4500  /* hashes in one answer's "listed" (its query's LIMIT) */
#define CHUNK_TOKEN_TTL_S  600   /* a manifest's chunk token, and a new one's default */

/* A copy this host found corrupt (any reader of its, scrub or not; it
 * reports each once): audited, and it stops counting. A copy the replicate
 * job assigned turns 'corrupt' and the heartbeat's answer asks for it again;
 * any other is gone (the host set it aside). */
static int replica_corrupt(struct req *r, const char *holder, const char *hash, int64_t now)
{
	char target[80];
	snprintf(target, sizeof target, "chunk:%s", hash);
	if (db_run(r->db,
	           "UPDATE chunk_replicas SET state = 'corrupt', updated_at = ? WHERE chunk_hash "
	           "= ? AND holder = ? AND assigned = 1",
	           now, hash, holder) != DB_DONE ||
	    db_run(r->db,
	           "DELETE FROM chunk_replicas WHERE chunk_hash = ? AND holder = ? AND assigned "
	           "= 0",
	           hash, holder) != DB_DONE)
		return -1;
	return meta_audit(
	    r, "chunk.corrupt", target,
	    json_pack("{s:s, s:s, s:b}", "holder", holder, "found", "corrupt", "repaired", 0));
}

/* Has the workspace let go of hash for good, as far as this host is
 * concerned? No version of the workspace uses it, no grant or pending upload
 * of the workspace names it, and the hub records no copy of it on this host
 * but a released one: GC collected it (or is collecting it). 1 yes, 0 no,
 * <0 a database error. Only the workspace's own rows are read, so the answer
 * tells nothing about other workspaces. */
static int replica_collected(struct req *r, const char *hash)
{
	int64_t one = 0;
	int rc = db_int64(
	    r->db, &one,
	    "SELECT 1 WHERE EXISTS (SELECT 1 FROM workspace_chunks WHERE workspace_id = ? AND "
	    "chunk_hash = ?) OR EXISTS (SELECT 1 FROM chunk_uploads WHERE workspace_id = ? AND "
	    "chunk_hash = ?) OR EXISTS (SELECT 1 FROM chunk_replicas WHERE chunk_hash = ? AND "
	    "host_id = ? AND state <> 'released') OR EXISTS (SELECT 1 FROM version_chunks vc "
	    "JOIN file_versions v ON v.id = vc.version_id JOIN files f ON f.id = v.file_id WHERE "
	    "vc.chunk_hash = ? AND f.workspace_id = ?)",
	    r->ws_id, hash, r->ws_id, hash, hash, r->host_id, hash, r->ws_id);
	return rc == DB_DONE ? 1 : rc == DB_ROW ? 0 : -1;
}

/* POST /workspaces/W/hosts/self/replicas {have:[hash], dropped:[hash],
 * corrupt:[hash], check:[hash], list_after:hash}; corrupt is applied first, so
 * a copy fetched back after it was found corrupt, reported in the same request,
 * counts. check: copies the host keeps pinned; the answer's "collected" lists
 * those the workspace no longer references at all (replica_collected), which
 * the host drops — the GC's drop for a host that was offline when it ran.
 * list_after ("" to start): the answer's "listed" holds the next
 * REPLICA_LIST_MAX hashes after it (in order) that the hub counts this host
 * holding, after this report's changes: a restarted host reports dropped
 * those it lacks (a report lost in a crash left them counted). */
enum MHD_Result api_host_replicas(struct req *r)
{
	if (!hosts_need_host(r))
		return MHD_YES;
	json_t *have = json_object_get(r->json, "have");
	json_t *dropped = json_object_get(r->json, "dropped");
	json_t *corrupt = json_object_get(r->json, "corrupt");
	json_t *check = json_object_get(r->json, "check");
	json_t *list_after = json_object_get(r->json, "list_after");
	if ((have && !json_is_array(have)) || (dropped && !json_is_array(dropped)) ||
	    (corrupt && !json_is_array(corrupt)) || (check && !json_is_array(check)))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "have, dropped, corrupt and check are arrays of chunk hashes");
	if (list_after &&
	    (!json_is_string(list_after) ||
	     (json_string_length(list_after) && !hash_hex_valid(json_string_value(list_after)))))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "list_after is a chunk hash, or \"\" to list from the start");
	if (json_array_size(have) + json_array_size(dropped) + json_array_size(corrupt) +
	        json_array_size(check) >
	    REPLICA_REPORT_MAX)
		return reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_many_hashes",
		                   "at most %d hashes per report", REPLICA_REPORT_MAX);
	json_t *lists[4] = {have, dropped, corrupt, check};
	const char *names[4] = {"have", "dropped", "corrupt", "check"};
	for (int l = 0; l < 4; l++) {
		size_t i;
		json_t *h;
		json_array_foreach(lists[l], i, h)
		{
			if (!hash_hex_valid(json_string_value(h)))
				return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_hash",
				                   "%s[%zu] is not 64 lowercase hex digits",
				                   names[l], i);
		}
	}
	char holder[32];
	snprintf(holder, sizeof holder, "host:%lld", (long long)r->host_id);
	int64_t now = now_ms(), recorded = 0;
	if (db_begin(r->db) != DB_DONE)
		return reply_db_error(r);
	size_t i;
	json_t *h;
	json_array_foreach(corrupt, i, h)
	{
		if (replica_corrupt(r, holder, json_string_value(h), now) != 0)
			goto db_fail;
	}
	/* Only chunks this workspace may reference, and that a version uses
	 * (one statement a hash: a host reports thousands at once). A released
	 * copy stays released — one GC released (no version uses the chunk), or
	 * an assigned copy replicate released (enough copies elsewhere): a report
	 * sent before the host heard of it, or a fetch for a stale assignment,
	 * must not make the host keep it for good (the release was never sent). */
	json_array_foreach(have, i, h)
	{
		int64_t one = 0;
		int rc = db_int64(
		    r->db, &one,
		    "INSERT INTO chunk_replicas(chunk_hash, holder, host_id, state, updated_at) "
		    "SELECT ?, ?, CAST(? AS BIGINT), 'ok', CAST(? AS BIGINT) WHERE EXISTS (SELECT "
		    "1 FROM "
		    "workspace_chunks wc JOIN chunks c ON c.hash = wc.chunk_hash WHERE "
		    "wc.workspace_id = ? AND "
		    "wc.chunk_hash = ?) ON CONFLICT (chunk_hash, holder) DO UPDATE SET state = "
		    "'ok', updated_at = excluded.updated_at WHERE NOT (chunk_replicas.state = "
		    "'released' AND (chunk_replicas.assigned = 1 OR (SELECT c.refcount FROM "
		    "chunks c WHERE c.hash = excluded.chunk_hash) <= 0)) RETURNING 1",
		    json_string_value(h), holder, r->host_id, now, r->ws_id, json_string_value(h));
		if (rc != DB_ROW && rc != DB_DONE)
			goto db_fail;
		recorded += rc == DB_ROW;
	}
	json_array_foreach(dropped, i, h)
	{
		if (db_run(r->db, "DELETE FROM chunk_replicas WHERE chunk_hash = ? AND holder = ?",
		           json_string_value(h), holder) != DB_DONE)
			goto db_fail;
	}
	json_t *collected = json_array();
	json_array_foreach(check, i, h)
	{
		int gone = replica_collected(r, json_string_value(h));
		if (gone < 0) {
			json_decref(collected);
			goto db_fail;
		}
		if (gone)
			json_array_append(collected, h);
	}
	json_t *listed = NULL;
	if (list_after) {
		listed = json_array();
		struct db_stmt *q = db_query(
		    r->db,
		    "SELECT chunk_hash FROM chunk_replicas WHERE holder = ? AND state = 'ok' AND "
		    "chunk_hash > ? ORDER BY chunk_hash LIMIT " STRINGIFY(REPLICA_LIST_MAX),
		    holder, json_string_value(list_after));
		int rc = q ? DB_ROW : DB_ERR;
		while (q && (rc = db_step(q)) == DB_ROW)
			json_array_append_new(listed, json_string(db_col_text(q, 0)));
		db_finalize(q);
		if (rc != DB_DONE) {
			json_decref(listed);
			json_decref(collected);
			goto db_fail;
		}
	}
	if (db_commit(r->db) != DB_DONE) {
		json_decref(listed);
		json_decref(collected);
		goto db_fail;
	}
	json_t *out = json_pack("{s:I, s:I, s:I, s:o}", "recorded", (json_int_t)recorded, "dropped",
	                        (json_int_t)json_array_size(dropped), "corrupt",
	                        (json_int_t)json_array_size(corrupt), "collected", collected);
	if (listed)
		json_object_set_new(out, "listed", listed);
	return reply_json(r, MHD_HTTP_OK, out);
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
	if (!a ||
	    db_int64(r->db, &seq, "SELECT last_seq FROM workspace_counters WHERE workspace_id = ?",
	             r->ws_id) != DB_ROW)
		return reply_db_error(r);
	json_t *folders = json_array(), *files = json_array();
	struct db_stmt *st = db_query(r->db,
	                              "SELECT path FROM folders WHERE workspace_id = ? AND "
	                              "deleted_at IS NULL AND path <> '/' ORDER BY path",
	                              r->ws_id);
	while (st && db_step(st) == DB_ROW)
		if (acl_visible(a, db_col_text(st, 0), false))
			json_array_append_new(folders, json_string(db_col_text(st, 0)));
	db_finalize(st);
	st = db_query(r->db,
	              "SELECT fo.path, f.name, v.number, v.id, v.size, v.hash, f.updated_at FROM "
	              "files f JOIN folders fo ON fo.id = f.folder_id JOIN file_versions v ON v.id "
	              "= f.current_version_id WHERE f.workspace_id = ? AND f.deleted_at IS NULL",
	              r->ws_id);
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

/* A chunk token: for the whole workspace (scope "chunks": any chunk it
 * holds), or for one version (scope "vchunks", with ver and the issuer:
 * hosts ask the hub which chunks that is, hosts/self/chunk-check). */
static char *chunk_token(struct req *r, int64_t version_id, int64_t ttl_s, int64_t *exp)
{
	*exp = now_ms() + ttl_s * 1000;
	if (version_id)
		return tokens_sign(
		    r->db, json_pack("{s:I, s:s, s:I, s:I, s:I}", "ws", (json_int_t)r->ws_id,
		                     "scope", "vchunks", "ver", (json_int_t)version_id, "user",
		                     (json_int_t)r->user_id, "exp", (json_int_t)*exp));
	return tokens_sign(r->db, json_pack("{s:I, s:s, s:I}", "ws", (json_int_t)r->ws_id, "scope",
	                                    "chunks", "exp", (json_int_t)*exp));
}

/* The online holders of version_id's chunks into chunks[i].hosts, and their
 * URLs: hosts {ID: url} (direct URLs, as older clients read them) and
 * sources {ID: {url, relay_url, label}}. */
static int manifest_holders(struct req *r, int64_t version_id, json_t *chunks, json_t *hosts,
                            json_t *sources)
{
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT vc.idx, h.id, h.url, h.tunnel_url, h.label FROM version_chunks vc JOIN "
	    "chunk_replicas cr ON cr.chunk_hash = vc.chunk_hash JOIN hosts h ON h.id = "
	    "cr.host_id WHERE vc.version_id = ? AND cr.state = 'ok' AND h.workspace_id = ? AND "
	    "h.revoked_at IS NULL AND (h.url IS NOT NULL OR h.tunnel_url IS NOT NULL) "
	    "AND " HOST_ONLINE_SQL " ORDER BY vc.idx, h.id",
	    version_id, r->ws_id, now_ms());
	while (st && db_step(st) == DB_ROW) {
		json_t *c = json_array_get(chunks, (size_t)db_col_int64(st, 0));
		char id[24];
		snprintf(id, sizeof id, "%lld", (long long)db_col_int64(st, 1));
		if (c)
			json_array_append_new(json_object_get(c, "hosts"),
			                      json_integer(db_col_int64(st, 1)));
		if (json_object_get(sources, id))
			continue;
		const char *url = db_col_text(st, 2), *relay = db_col_text(st, 3);
		if (!req_may_reach(r, url))
			url = NULL; /* a loopback URL: its relay's, if any */
		if (!url && !relay)
			continue;
		json_t *s = json_pack("{s:s}", "label", db_col_text(st, 4));
		if (url) {
			json_object_set_new(hosts, id, json_string(url));
			json_object_set_new(s, "url", json_string(url));
		}
		if (relay)
			json_object_set_new(s, "relay_url", json_string(relay));
		json_object_set_new(sources, id, s);
	}
	int rc = st ? 0 : -1;
	db_finalize(st);
	return rc;
}

/* GET /workspaces/W/manifest?path=P[&version=N]: a version's chunks and where
 * they can be fetched: online hosts holding each (directly or through their
 * relay URL), plus the hub; and a chunk token for the hosts — for the whole
 * workspace if the caller reads all of it, else for this version. */
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
	json_t *chunks = json_array(), *hosts = json_object(), *sources = json_object();
	struct db_stmt *st = db_query(r->db,
	                              "SELECT chunk_hash, size, chunk_offset FROM version_chunks "
	                              "WHERE version_id = ? ORDER BY idx",
	                              fi.version_id);
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(chunks,
		                      json_pack("{s:s, s:I, s:I, s:[]}", "hash", db_col_text(st, 0),
		                                "size", (json_int_t)db_col_int64(st, 1), "offset",
		                                (json_int_t)db_col_int64(st, 2), "hosts"));
	db_finalize(st);
	json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:s, s:o, s:o, s:o}", "path", path, "version",
	                      (json_int_t)fi.version_no, "version_id", (json_int_t)fi.version_id,
	                      "size", (json_int_t)fi.size, "hash", fi.hash, "chunks", chunks,
	                      "hosts", hosts, "sources", sources);
	if (!st || manifest_holders(r, fi.version_id, chunks, hosts, sources) != 0) {
		json_decref(o);
		ret = reply_db_error(r);
		goto out;
	}
	if (json_object_size(sources)) {
		int64_t exp;
		bool all = acl_reads_all(r);
		char *tok = chunk_token(r, all ? 0 : fi.version_id, CHUNK_TOKEN_TTL_S, &exp);
		if (tok) {
			json_object_set_new(o, "chunk_token", json_string(tok));
			json_object_set_new(o, "chunk_token_scope",
			                    json_string(all ? "chunks" : "vchunks"));
		}
		free(tok);
	}
	ret = reply_json(r, MHD_HTTP_OK, o);
out:
	free(path);
	return ret;
}

/* POST /workspaces/W/tokens {scope:"chunks", expires_in, path?, version?}: a
 * chunk token for the whole workspace (read access to all of it), or with
 * path for that file's version (0/absent: current) — any reader of it. */
enum MHD_Result api_token_create(struct req *r)
{
	const char *scope = json_get_str(r->json, "scope");
	const char *p = json_get_str(r->json, "path");
	int64_t ttl = CHUNK_TOKEN_TTL_S, version = 0;
	if (!scope || strcmp(scope, "chunks") != 0 ||
	    (json_object_get(r->json, "expires_in") &&
	     (!json_get_int(r->json, "expires_in", &ttl) || ttl < 1 ||
	      ttl * 1000 > TOKEN_TTL_MAX_MS)) ||
	    (json_object_get(r->json, "path") && !p) ||
	    (json_object_get(r->json, "version") &&
	     (!p || !json_get_int(r->json, "version", &version) || version < 0)))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "scope is \"chunks\", expires_in 1..%lld seconds, path a file "
		                   "and version a number with it",
		                   (long long)(TOKEN_TTL_MAX_MS / 1000));
	struct file_info fi = {.version_id = 0};
	char *path = NULL;
	if (p) {
		const char *why;
		path = path_normalize(p, strlen(p), &why);
		if (!path)
			return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_path", "path: %s",
			                   why);
		bool ok = meta_readable_version(r, path, version, &fi);
		free(path);
		if (!ok)
			return MHD_YES;
	} else if (!acl_reads_all(r)) {
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "a chunk token for the whole workspace needs read access to all "
		                   "of it; name a file (path) for one of its versions");
	}
	int64_t exp;
	char *tok = chunk_token(r, fi.version_id, ttl, &exp);
	if (!tok)
		return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "no_signing_key",
		                   "the hub has no usable signing key");
	json_t *o = json_pack("{s:s, s:s, s:I}", "token", tok, "scope",
	                      fi.version_id ? "vchunks" : "chunks", "expires_at", (json_int_t)exp);
	if (fi.version_id)
		json_object_set_new(o, "version_id", json_integer(fi.version_id));
	free(tok);
	return reply_json(r, MHD_HTTP_CREATED, o);
}

/* POST /workspaces/W/hosts/self/chunk-check {token}: a host asks which chunks
 * a version-scoped chunk token grants. Only while its issuer may still read
 * that version: {ver, chunks:[hash], expires_at}. */
enum MHD_Result api_host_chunk_check(struct req *r)
{
	if (!hosts_need_host(r))
		return MHD_YES;
	const char *tok = json_get_str(r->json, "token"), *why = NULL;
	json_t *claims = tok && strlen(tok) <= 4096 ? tokens_verify(r->db, tok, &why) : NULL;
	int64_t ws = 0, ver = 0, user = 0, exp = 0;
	const char *sc = json_get_str(claims, "scope");
	bool ok = claims && sc && strcmp(sc, "vchunks") == 0 && json_get_int(claims, "ws", &ws) &&
	          ws == r->ws_id && json_get_int(claims, "ver", &ver) &&
	          json_get_int(claims, "user", &user) && json_get_int(claims, "exp", &exp);
	json_decref(claims);
	if (!ok)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "invalid_token", "%s",
		                   why ? why : "not a version chunk token of this workspace");
	/* The issuer's access of now, to the version's file. */
	char *path = NULL;
	struct db_stmt *st = db_query(r->db,
	                              "SELECT fo.path, f.name FROM file_versions v JOIN files f ON "
	                              "f.id = v.file_id JOIN folders fo ON fo.id = f.folder_id "
	                              "WHERE v.id = ? AND f.workspace_id = ? AND f.deleted_at IS "
	                              "NULL",
	                              ver, ws);
	if (st && db_step(st) == DB_ROW)
		path = path_join(db_col_text(st, 0), db_col_text(st, 1));
	db_finalize(st);
	enum role role = path ? auth_role(r->db, ws, user) : ROLE_NONE;
	struct acl *a = role != ROLE_NONE ? acl_load(r->db, ws, user, role) : NULL;
	ok = a && acl_perm(a, path, true) >= PERM_READ;
	acl_free(a);
	free(path);
	if (!ok)
		return reply_error(
		    r, MHD_HTTP_FORBIDDEN, "forbidden",
		    "the file is gone or whoever got this token may no longer read it");
	json_t *hashes = json_array();
	st = db_query(r->db, "SELECT DISTINCT chunk_hash FROM version_chunks WHERE version_id = ?",
	              ver);
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(hashes, json_string(db_col_text(st, 0)));
	db_finalize(st);
	if (!st) {
		json_decref(hashes);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:I, s:o, s:I}", "ver", (json_int_t)ver, "chunks", hashes,
	                            "expires_at", (json_int_t)exp));
}

/* The copies of each chunk of a current version: the one rule (hosts.h). */
#define REPLICAS_COPIES_SQL HOSTS_COPIES_SQL("vc.chunk_hash", "w")

/* The same for a member who may not read every file: over what they may. */
static enum MHD_Result replicas_readable(struct req *r, int64_t minr, const char *storage,
                                         int64_t now)
{
	struct acl_sums s;
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT d.path, f.name, vc.chunk_hash, " REPLICAS_COPIES_SQL " FROM files f JOIN "
	    "folders d ON d.id = f.folder_id JOIN version_chunks vc ON vc.version_id = "
	    "f.current_version_id JOIN workspaces w ON w.id = f.workspace_id WHERE "
	    "f.workspace_id = ? AND f.deleted_at IS NULL",
	    now, r->ws_id);
	if (acl_sum_readable(r, st, minr, &s) != 0)
		return reply_db_error(r);
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:I, s:I, s:I, s:I, s:s}", "chunks", (json_int_t)s.count,
	                            "under_replicated", (json_int_t)s.below, "copies",
	                            (json_int_t)s.sum, "min_replicas", (json_int_t)minr, "storage",
	                            storage));
}

/* GET /workspaces/W/replicas: chunks of current versions and how many have
 * fewer verified copies than min_replicas, counted as locations,
 * under-replicated and the replicate job count them. */
enum MHD_Result api_replicas(struct req *r)
{
	int64_t now = now_ms(), minr = 2;
	char storage[8] = "";
	struct db_stmt *st =
	    db_query(r->db, "SELECT min_replicas, storage FROM workspaces WHERE id = ?", r->ws_id);
	bool ok = st && db_step(st) == DB_ROW;
	if (ok) {
		minr = db_col_int64(st, 0);
		snprintf(storage, sizeof storage, "%s", db_col_text(st, 1));
	}
	db_finalize(st);
	if (!ok)
		return reply_db_error(r);
	if (!acl_reads_all(r))
		return replicas_readable(r, minr, storage, now);
	st = db_query(r->db,
	              "SELECT COUNT(*), COALESCE(SUM(CASE WHEN n < ? THEN 1 ELSE 0 END), 0), "
	              "COALESCE(SUM(n), 0) FROM (SELECT " REPLICAS_COPIES_SQL
	              " AS n FROM (SELECT DISTINCT vc.chunk_hash FROM files f JOIN version_chunks "
	              "vc ON vc.version_id = f.current_version_id WHERE f.workspace_id = ? AND "
	              "f.deleted_at IS NULL) vc JOIN workspaces w ON w.id = ?) x",
	              minr, now, r->ws_id, r->ws_id);
	if (!st || db_step(st) != DB_ROW) {
		db_finalize(st);
		return reply_db_error(r);
	}
	json_t *o = json_pack(
	    "{s:I, s:I, s:I, s:I, s:s}", "chunks", (json_int_t)db_col_int64(st, 0),
	    "under_replicated", (json_int_t)db_col_int64(st, 1), "copies",
	    (json_int_t)db_col_int64(st, 2), "min_replicas", (json_int_t)minr, "storage", storage);
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK, o);
}

/* POST /workspaces/W/hosts/self/scrub {files_checked, bytes_checked,
 * corrupt:[{path, hash}], cache_chunks_dropped}: what a host's scrub found.
 * Audited; the host's copies of a corrupt file's chunks count as corrupt
 * until it reports them again (after fetching the file back). */
enum MHD_Result api_host_scrub(struct req *r)
{
	if (!hosts_need_host(r))
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
		        now_ms(), holder, r->ws_id, json_get_str(c, "hash")) != DB_DONE ||
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
