/* tokens: short-lived content tokens signed by the hub with Ed25519.
 *
 * A token is base64url(JSON claims) "." base64url(signature over the first
 * part). Claims: kid (the signing key), ws, scope, exp (ms since the epoch),
 * and for scope "read" ver (a file version id), for scope "write" path and
 * user (who may then PUT a new version of that one file, through a host that
 * keeps it or the hub). Anyone holding the hub's public keys
 * (GET /api/v1/keys) can verify one — hosts and the relay will, without asking
 * the hub. A rotated key keeps verifying for TOKEN_TTL_MAX after its
 * retirement, so tokens already handed out stay good until they expire. */
#include "hub.h"
#include "auth.h"
#include "meta.h"
#include "upload.h"
#include "tokens.h"
#include "download.h"
#include "acl.h"
#include "ops/ops.h"
#include "hosts/hosts.h"
#include "peer.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/token.h"
#include "../core/util.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

static char *b64(const unsigned char *bin, size_t len)
{
	size_t n = sodium_base64_encoded_len(len, B64);
	char *out = xmalloc(n);
	sodium_bin2base64(out, n, bin, len, B64);
	return out;
}

char *tokens_sign(struct db *db, json_t *claims)
{
	char kid[64] = "", sk64[256] = "";
	struct db_stmt *st =
	    db_query(db, "SELECT kid, secret_key FROM signing_keys WHERE retired_at "
	                 "IS NULL ORDER BY created_at DESC LIMIT 1");
	if (st && db_step(st) == DB_ROW) {
		snprintf(kid, sizeof kid, "%s", db_col_text(st, 0));
		snprintf(sk64, sizeof sk64, "%s", db_col_text(st, 1));
	}
	db_finalize(st);
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	size_t sklen = 0;
	if (!kid[0] ||
	    sodium_base642bin(sk, sizeof sk, sk64, strlen(sk64), NULL, &sklen, NULL, B64) != 0 ||
	    sklen != sizeof sk) {
		sodium_memzero(sk64, sizeof sk64);
		json_decref(claims);
		log_error("tokens: no usable signing key");
		return NULL;
	}
	sodium_memzero(sk64, sizeof sk64);
	json_object_set_new(claims, "kid", json_string(kid));
	char *payload_json = json_to_string(claims);
	json_decref(claims);
	char *payload = b64((const unsigned char *)payload_json, strlen(payload_json));
	free(payload_json);
	unsigned char sig[crypto_sign_BYTES];
	crypto_sign_detached(sig, NULL, (const unsigned char *)payload, strlen(payload), sk);
	sodium_memzero(sk, sizeof sk);
	char *sig64 = b64(sig, sizeof sig);
	char *tok = xasprintf("%s.%s", payload, sig64);
	free(payload);
	free(sig64);
	return tok;
}

/* The key must exist and not be retired for longer than a token may live. */
static bool db_key(void *cls, const char *kid, unsigned char pk[crypto_sign_PUBLICKEYBYTES])
{
	char pk64[128] = "";
	struct db_stmt *st = db_query(cls,
	                              "SELECT public_key FROM signing_keys WHERE kid = ? AND "
	                              "(retired_at IS NULL OR retired_at > ?)",
	                              kid, now_ms() - TOKEN_TTL_MAX_MS);
	if (st && db_step(st) == DB_ROW)
		snprintf(pk64, sizeof pk64, "%s", db_col_text(st, 0));
	db_finalize(st);
	return token_parse_key(pk64, pk);
}

json_t *tokens_verify(struct db *db, const char *tok, const char **why)
{
	return token_verify(tok, db_key, db, now_ms(), why);
}

enum MHD_Result api_keys(struct req *r)
{
	struct db_stmt *st = db_query(r->db,
	                              "SELECT kid, public_key, created_at, retired_at FROM "
	                              "signing_keys WHERE retired_at IS NULL OR retired_at > ? "
	                              "ORDER BY created_at",
	                              now_ms() - TOKEN_TTL_MAX_MS);
	if (!st)
		return reply_db_error(r);
	json_t *arr = json_array();
	while (db_step(st) == DB_ROW) {
		json_t *k = json_pack("{s:s, s:s, s:s, s:I}", "kid", db_col_text(st, 0), "alg",
		                      "Ed25519", "public_key", db_col_text(st, 1), "created_at",
		                      (json_int_t)db_col_int64(st, 2));
		if (!db_col_is_null(st, 3))
			json_object_set_new(k, "retired_at", json_integer(db_col_int64(st, 3)));
		json_array_append_new(arr, k);
	}
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:o, s:I, s:I}", "keys", arr, "max_token_ttl_ms",
	                            (json_int_t)TOKEN_TTL_MAX_MS, "now", (json_int_t)now_ms()));
}

/* The content port's address as the client reached the hub (Host header). */
char *hub_port_base(struct req *r, int port)
{
	if (r->hub->cfg.public_url) /* behind a balancer: one origin for every port */
		return xstrdup(r->hub->cfg.public_url);
	const char *host = req_header(r, "Host");
	if (!host || strpbrk(host, "/\\ \"<>@") || strlen(host) > 255)
		host = r->hub->cfg.listen;
	const char *end = host + strlen(host);
	const char *colon = strrchr(host, ':');
	if (colon && (host[0] != '[' || colon > strchr(host, ']')))
		end = colon; /* drop the port: the one asked for replaces it */
	return xasprintf("%s://%.*s:%d", r->hub->tls_cert_pem ? "https" : "http", (int)(end - host),
	                 host, port);
}

char *hub_content_base(struct req *r)
{
	return hub_port_base(r, r->hub->cfg.content_port);
}

/* The relay URL of an online host in the workspace that keeps path pinned
 * (its most specific replication policy), or "" . */
static void writable_host_url(struct req *r, const char *path, char *out, size_t cap)
{
	out[0] = 0;
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT h.tunnel_url FROM hosts h WHERE h.workspace_id = ? AND h.revoked_at IS NULL "
	    "AND h.tunnel_url IS NOT NULL AND h.status = 'online' AND h.last_seen + 3 * "
	    "COALESCE(h.heartbeat_ms, " STRINGIFY(
	        HOST_HEARTBEAT_MS_DEFAULT) ") > ? AND COALESCE((SELECT p.mode FROM "
	                                   "replication_policies p JOIN folders f ON f.id = "
	                                   "p.folder_id WHERE p.host_id = h.id "
	                                   "AND (f.path = '/' OR substr(?, 1, length(f.path) + 1) "
	                                   "= f.path || '/') ORDER BY "
	                                   "length(f.path) DESC LIMIT 1), 'pinned') = 'pinned' "
	                                   "ORDER BY h.last_seen DESC LIMIT 1",
	    r->ws_id, now_ms(), path);
	if (st && db_step(st) == DB_ROW && db_col_text(st, 0))
		snprintf(out, cap, "%s", db_col_text(st, 0));
	db_finalize(st);
}

/* POST urls {path, scope:"write", expires_in?}: a signed URL to PUT a new
 * version of path to, through the relay of a host that keeps it, else the
 * hub's content port. */
static enum MHD_Result write_url_create(struct req *r, char *path, int64_t ttl)
{
	enum MHD_Result ret = MHD_YES;
	int64_t folder = 0;
	if (!req_path_writable(r, path))
		goto out;
	int rc = meta_folder_id(r->db, r->ws_id, path, &folder);
	if (rc != 0) {
		ret = rc < 0 ? reply_db_error(r)
		             : reply_error(r, MHD_HTTP_CONFLICT, "is_folder",
		                           "%s is a folder; name a file in it", path);
		goto out;
	}
	if (!acl_require(r, path, true, PERM_WRITE))
		goto out;
	int64_t exp = now_ms() + ttl * 1000;
	char *tok =
	    tokens_sign(r->db, json_pack("{s:I, s:s, s:s, s:I, s:I}", "ws", (json_int_t)r->ws_id,
	                                 "scope", "write", "path", path, "user",
	                                 (json_int_t)r->user_id, "exp", (json_int_t)exp));
	if (!tok) {
		ret = reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "no_signing_key",
		                  "the hub has no usable signing key");
		goto out;
	}
	char relay[600];
	writable_host_url(r, path, relay, sizeof relay);
	char *base = relay[0] ? NULL : hub_content_base(r);
	char *url = relay[0] ? xasprintf("%su/%s", relay, tok) : xasprintf("%s/u/%s", base, tok);
	meta_audit(r, "url.create", path,
	           json_pack("{s:s, s:I}", "scope", "write", "expires_at", (json_int_t)exp));
	ret = reply_json(r, MHD_HTTP_CREATED,
	                 json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "url", url, "token", tok,
	                           "scope", "write", "method", "PUT", "expires_at", (json_int_t)exp,
	                           "via", relay[0] ? "relay" : "hub"));
	free(url);
	free(base);
	free(tok);
out:
	free(path);
	return ret;
}

/* The signed URL catalog of a version: where a reader may GET it with tok,
 * in the order to try — each online host holding every chunk 'ok'
 * directly (not a loopback URL unless the reader is on this machine:
 * req_may_reach), then the same hosts through their relays, then the hub. Each
 * {url, via, host_id?, expires_at}. NULL on a database error. */
static json_t *read_sources(struct req *r, const struct file_info *fi, const char *tok, int64_t exp)
{
	/* An empty file has no chunks a host could be said to hold. */
	int64_t version_id = fi->size ? fi->version_id : 0;
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT h.id, h.url, h.tunnel_url FROM hosts h WHERE h.workspace_id = ? AND "
	    "h.revoked_at IS NULL AND " HOST_ONLINE_SQL " AND (h.url IS NOT NULL OR h.tunnel_url "
	    "IS NOT NULL) AND NOT EXISTS (SELECT 1 FROM version_chunks vc WHERE vc.version_id = ? "
	    "AND NOT EXISTS (SELECT 1 FROM chunk_replicas cr WHERE cr.chunk_hash = vc.chunk_hash "
	    "AND cr.host_id = h.id AND cr.state = 'ok')) ORDER BY h.last_seen DESC, h.id LIMIT 8",
	    r->ws_id, now_ms(), version_id);
	if (!st)
		return NULL;
	json_t *direct = json_array(), *relayed = json_array();
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		json_int_t id = (json_int_t)db_col_int64(st, 0);
		if (!db_col_is_null(st, 1) && req_may_reach(r, db_col_text(st, 1))) {
			char *u = xasprintf("%s/c/%s", db_col_text(st, 1), tok);
			json_array_append_new(direct, json_pack("{s:s, s:s, s:I, s:I}", "url", u,
			                                        "via", "host", "host_id", id,
			                                        "expires_at", (json_int_t)exp));
			free(u);
		}
		if (!db_col_is_null(st, 2)) {
			/* A relay URL ends with '/'. */
			char *u = xasprintf("%sc/%s", db_col_text(st, 2), tok);
			json_array_append_new(relayed, json_pack("{s:s, s:s, s:I, s:I}", "url", u,
			                                         "via", "relay", "host_id", id,
			                                         "expires_at", (json_int_t)exp));
			free(u);
		}
	}
	db_finalize(st);
	if (rc != DB_DONE) {
		json_decref(direct);
		json_decref(relayed);
		return NULL;
	}
	json_array_extend(direct, relayed);
	json_decref(relayed);
	char *base = hub_content_base(r);
	char *u = xasprintf("%s/c/%s", base, tok);
	json_array_append_new(direct, json_pack("{s:s, s:s, s:I}", "url", u, "via", "hub",
	                                        "expires_at", (json_int_t)exp));
	free(u);
	free(base);
	return direct;
}

/* POST urls {path, version?, expires_in?, scope?}: a signed download URL for
 * a file (scope "read", the default), or an upload URL (scope "write"). */
enum MHD_Result api_url_create(struct req *r)
{
	int64_t ttl = 3600, version = 0;
	if ((json_object_get(r->json, "expires_in") &&
	     (!json_get_int(r->json, "expires_in", &ttl) || ttl < 1 ||
	      ttl * 1000 > TOKEN_TTL_MAX_MS)) ||
	    (json_object_get(r->json, "version") &&
	     (!json_get_int(r->json, "version", &version) || version < 1)))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "expires_in is 1..%lld seconds and version a positive number",
		                   (long long)(TOKEN_TTL_MAX_MS / 1000));
	const char *scope = json_get_str(r->json, "scope");
	bool write = scope && strcmp(scope, "write") == 0;
	if ((json_object_get(r->json, "scope") && (!scope || (!write && strcmp(scope, "read")))) ||
	    (write && version))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "scope is read or write; a write URL takes no version");
	char *path = req_body_path(r, "path");
	if (!path)
		return MHD_YES;
	if (write)
		return write_url_create(r, path, ttl);
	struct file_info fi;
	enum MHD_Result ret = MHD_YES;
	if (!meta_readable_version(r, path, version, &fi))
		goto out;
	int64_t exp = now_ms() + ttl * 1000;
	/* path and v let a host that no longer has this version as a file
	 * assemble it from chunks; user is the issuer, whose access of now the
	 * URL keeps. */
	char *tok = tokens_sign(r->db, json_pack("{s:I, s:s, s:I, s:s, s:I, s:I, s:I}", "ws",
	                                         (json_int_t)r->ws_id, "scope", "read", "ver",
	                                         (json_int_t)fi.version_id, "path", path, "v",
	                                         (json_int_t)fi.version_no, "user",
	                                         (json_int_t)r->user_id, "exp", (json_int_t)exp));
	if (!tok) {
		ret = reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "no_signing_key",
		                  "the hub has no usable signing key");
		goto out;
	}
	json_t *sources = read_sources(r, &fi, tok, exp);
	if (!sources) {
		ret = reply_db_error(r);
		free(tok);
		goto out;
	}
	json_t *first = json_array_get(sources, 0);
	meta_audit(r, "url.create", path,
	           json_pack("{s:I, s:I}", "version", (json_int_t)fi.version_no, "expires_at",
	                     (json_int_t)exp));
	ret = reply_json(r, MHD_HTTP_CREATED,
	                 json_pack("{s:s, s:s, s:I, s:I, s:s, s:o}", "url",
	                           json_get_str(first, "url"), "token", tok, "version",
	                           (json_int_t)fi.version_no, "expires_at", (json_int_t)exp, "via",
	                           json_get_str(first, "via"), "sources", sources));
	free(tok);
out:
	free(path);
	return ret;
}

/* ---- serving signed URLs: the issuer's access of now ----
 *
 * A read or write URL names its issuer ("user"). It works only while the
 * issuer may still do what it grants: a member of the workspace with read
 * access to the version's file (read) or write access to the path (write).
 * The hub checks at serve time; a host asks the hub (hosts/self/token-check)
 * before it serves a read URL or takes a write URL's body. */

/* The live path of version ver in ws into *path (new string). 1, 0 gone, <0. */
static int version_path(struct db *db, int64_t ws, int64_t ver, char **path)
{
	struct db_stmt *st = db_query(db,
	                              "SELECT fo.path, f.name FROM file_versions v JOIN files f ON "
	                              "f.id = v.file_id JOIN folders fo ON fo.id = f.folder_id "
	                              "WHERE v.id = ? AND f.workspace_id = ? AND f.deleted_at IS "
	                              "NULL",
	                              ver, ws);
	if (!st)
		return -1;
	int rc = db_step(st);
	if (rc == DB_ROW)
		*path = path_join(db_col_text(st, 0), db_col_text(st, 1));
	db_finalize(st);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

/* Take the identity of claims' issuer in its workspace (r->ws_id, user_id,
 * role, acl) and check it may still do what the token of scope grants;
 * *path gets the file's path. false after replying 403/404. */
static bool issuer_may(struct req *r, json_t *claims, const char *scope, char **path)
{
	int64_t ws = 0, user = 0, ver = 0;
	const char *sc = json_get_str(claims, "scope"), *p = json_get_str(claims, "path"), *why;
	bool write = strcmp(scope, "write") == 0;
	*path = NULL;
	if (!json_get_int(claims, "ws", &ws) || !json_get_int(claims, "user", &user) || !sc ||
	    strcmp(sc, scope) != 0 || (write ? !p : !json_get_int(claims, "ver", &ver))) {
		reply_error(r, MHD_HTTP_FORBIDDEN, "invalid_token",
		            "the token does not grant %s a file", write ? "writing" : "reading");
		return false;
	}
	if (r->ws_id && r->ws_id != ws) {
		reply_error(r, MHD_HTTP_FORBIDDEN, "invalid_token",
		            "the token is for another workspace");
		return false;
	}
	acl_free(r->acl);
	r->acl = NULL;
	r->ws_id = ws;
	r->user_id = user;
	r->role = auth_role(r->db, ws, user);
	if (r->role == ROLE_NONE) {
		reply_error(r, MHD_HTTP_FORBIDDEN, "issuer_not_member",
		            "whoever made this URL is no longer a member");
		return false;
	}
	int rc = write ? ((*path = path_normalize(p, strlen(p), &why)) ? 1 : 0)
	               : version_path(r->db, ws, ver, path);
	if (rc <= 0) {
		if (rc < 0)
			reply_db_error(r);
		else
			reply_error(r, write ? MHD_HTTP_FORBIDDEN : MHD_HTTP_NOT_FOUND,
			            write ? "invalid_token" : "not_found",
			            write ? "the token names no valid path" : "the file is gone");
		return false;
	}
	if (acl_require(r, *path, true, write ? PERM_WRITE : PERM_READ) &&
	    (!write || req_path_writable(r, *path)))
		return true;
	free(*path);
	*path = NULL;
	return false;
}

/* Verify tok's signature and expiry; NULL after replying 403. */
static json_t *verified(struct req *r, const char *tok)
{
	const char *why = NULL;
	json_t *claims = tokens_verify(r->db, tok, &why);
	if (!claims)
		reply_error(r, MHD_HTTP_FORBIDDEN, "invalid_token", "%s",
		            why ? why : "the token is not valid");
	return claims;
}

/* GET /c/TOKEN: the file version a signed token names, no bearer token needed. */
enum MHD_Result api_content_by_token(struct req *r)
{
	json_t *claims = verified(r, r->params[0]);
	char *path = NULL;
	int64_t ver = 0;
	bool ok = claims && issuer_may(r, claims, "read", &path);
	json_get_int(claims, "ver", &ver);
	json_decref(claims);
	free(path);
	if (!ok)
		return MHD_YES;
	struct file_info fi;
	int rc = meta_version_by_id(r->db, r->ws_id, ver, &fi);
	if (rc != 1)
		return rc == 0 ? reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "the file is gone")
		               : reply_db_error(r);
	return serve_version(r, &fi, true);
}

/* PUT /u/TOKEN: a new version of the file a write token names, as the user
 * who asked for the URL, with that user's access of now. */
enum MHD_Result api_upload_by_token_begin(struct req *r)
{
	json_t *claims = verified(r, r->params[0]);
	char *path = NULL;
	bool ok = claims && issuer_may(r, claims, "write", &path);
	json_decref(claims);
	if (!ok)
		return MHD_YES;
	return upload_stream_start(r, path); /* takes path */
}

#define UPLOAD_GRANT_TTL_MS (24ll * 3600 * 1000)

/* POST hosts/self/token-check {token}: before a host serves a read URL or
 * takes a write URL's body, it asks whether the issuer still may. For a
 * write URL the answer carries an upload grant: the host sends it with the
 * commit of that file, which is then made as (and checked for) the issuer. */
enum MHD_Result api_host_token_check(struct req *r)
{
	const char *tok = json_get_str(r->json, "token");
	if (!r->host_id || !tok || strlen(tok) > 4096)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "token (a signed URL's token) is required, from a host");
	json_t *claims = verified(r, tok);
	const char *sc = json_get_str(claims, "scope");
	const char *scope = sc && strcmp(sc, "write") == 0 ? "write" : "read";
	char *path = NULL;
	bool ok = claims && issuer_may(r, claims, scope, &path);
	json_decref(claims);
	if (!ok)
		return MHD_YES;
	json_t *o = json_pack("{s:s, s:s, s:I}", "scope", scope, "path", path, "user",
	                      (json_int_t)r->user_id);
	if (scope[0] == 'w') {
		char *grant = tokens_sign(
		    r->db, json_pack("{s:s, s:I, s:I, s:s, s:I, s:I}", "scope", "upload", "ws",
		                     (json_int_t)r->ws_id, "host", (json_int_t)r->host_id, "path",
		                     path, "user", (json_int_t)r->user_id, "exp",
		                     (json_int_t)(now_ms() + UPLOAD_GRANT_TTL_MS)));
		if (grant)
			json_object_set_new(o, "grant", json_string(grant));
		free(grant);
	}
	free(path);
	return reply_json(r, MHD_HTTP_OK, o);
}

bool tokens_grant_check(struct op_ctx *c, json_t *body, const char *path, int64_t *author,
                        struct op_err *e)
{
	const char *g = json_get_str(body, "upload_grant"), *why;
	*author = 0;
	if (!json_object_get(body, "upload_grant"))
		return true;
	json_t *claims = g ? tokens_verify(c->db, g, &why) : NULL;
	int64_t ws = 0, host = 0, user = 0;
	const char *sc = json_get_str(claims, "scope"), *p = json_get_str(claims, "path");
	bool ok = claims && sc && strcmp(sc, "upload") == 0 && json_get_int(claims, "ws", &ws) &&
	          ws == c->ws_id && json_get_int(claims, "host", &host) && host == c->host_id &&
	          p && strcmp(p, path) == 0 && json_get_int(claims, "user", &user);
	json_decref(claims);
	enum role role = ok ? auth_role(c->db, ws, user) : ROLE_NONE;
	struct acl *a = role != ROLE_NONE ? acl_load(c->db, ws, user, role) : NULL;
	ok = a && acl_perm(a, path, true) >= PERM_WRITE;
	acl_free(a);
	if (!ok) {
		op_fail(e, OP_GRANT_REFUSED,
		        "the upload grant is invalid or expired, or whoever uploaded %s may no "
		        "longer write it",
		        path);
		return false;
	}
	*author = user;
	return true;
}
