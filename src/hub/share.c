/* share: share links for a file or a folder.
 *
 * A link is a random token (stored as its SHA-256, like sessions) naming a
 * target, a scope (read, or write: uploads into a shared folder), an optional
 * expiry and an optional password. Revoking one works at once: every request
 * looks the link up. A link never grants more than its creator has: each use
 * checks that the creator is still a member with read (or write) on the
 * target. Random tokens rather than signed ones, because the lookup is needed
 * for revocation anyway and a random token survives signing-key rotation.
 *
 * The public side lives on the content port: /s/TOKEN is a page (share_page.c;
 * or JSON with ?format=json) listing a shared folder or showing a shared file;
 * /s/TOKEN/file?path=P downloads; PUT /s/TOKEN/upload?path=P uploads.
 *
 * A password reaches the hub as the X-Share-Password header (scripts, the
 * CLI) or through the page's form (POST /s/TOKEN), which answers with a
 * short-lived cookie scoped to the link's path: a hub-signed token naming the
 * link, so the password never rides in a URL and the downloads, ZIPs and
 * uploads that follow need no password of their own. */
#include "hub.h"
#include "auth.h"
#include "meta.h"
#include "api.h"
#include "upload.h"
#include "tokens.h"
#include "share.h"
#include "zip.h"
#include "download.h"
#include "guard.h"
#include "peer.h"
#include "acl.h"
#include "op_http.h"
#include "share_page.h"
#include "ops/ops.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct share {
	int64_t id, ws, creator, expires_at;
	bool write, is_file;
	char *root; /* the target's path */
	char *pw_hash;
};

/* How long the page's unlock cookie lasts. */
#define SHARE_UNLOCK_TTL_S 3600
#define SHARE_COOKIE       "roost_share"

static void share_fini(struct share *s)
{
	free(s->root);
	free(s->pw_hash);
}

/* The share's own name: its target's last segment ("/" for the root). */
static const char *share_name_of(const struct share *s)
{
	return strcmp(s->root, "/") == 0 ? "/" : strrchr(s->root, '/') + 1;
}

/* A row of the audit log for the link's anonymous client: the actor is the
 * link (actor_share_id), never the creator whose access it borrows. */
static void share_audit(struct req *r, const struct share *s, const char *action,
                        const char *target)
{
	struct op_ctx c;
	req_op_ctx(r, &c);
	c.share_id = s->id;
	meta_audit_op(&c, action, target, json_pack("{s:I}", "share", (json_int_t)s->id));
	req_op_end(r, &c);
}

/* ---- managing links (authenticated API) ---- */

enum MHD_Result api_share_create(struct req *r)
{
	const char *scope = json_get_str(r->json, "scope");
	const char *pw = json_get_str(r->json, "password");
	int64_t ttl = 0;
	bool write = scope && strcmp(scope, "write") == 0;
	if ((scope && !write && strcmp(scope, "read") != 0) ||
	    (json_object_get(r->json, "expires_in") &&
	     (!json_get_int(r->json, "expires_in", &ttl) || ttl < 1 || ttl > 10ll * 365 * 86400)) ||
	    (json_object_get(r->json, "password") && (!pw || strlen(pw) < 4 || strlen(pw) > 1024)))
		return reply_error(
		    r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		    "scope is read or write, expires_in 1 s..10 years, password 4..1024 "
		    "bytes");
	char *path = req_body_path(r, "path");
	if (!path)
		return MHD_YES;
	struct op_ctx c;
	struct op_err e = {0};
	struct share_result out;
	struct share_args a = {.path = path, .write = write, .ttl_s = ttl, .password = pw};
	req_op_ctx(r, &c);
	enum op_code rc = op_share_create(&c, &a, &out, &e);
	req_op_end(r, &c);
	if (rc != OP_OK) {
		free(path);
		return reply_op_err(r, &e);
	}
	char *base = hub_content_base(r);
	char *url = xasprintf("%s/s/%s", base, out.token);
	json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:b}", "id", (json_int_t)out.id, "url",
	                      url, "token", out.token, "path", path, "scope",
	                      write ? "write" : "read", "password", pw != NULL);
	if (out.expires_at)
		json_object_set_new(o, "expires_at", json_integer(out.expires_at));
	enum MHD_Result ret = reply_json(r, MHD_HTTP_CREATED, o);
	free(url);
	free(base);
	free(path);
	return ret;
}

enum MHD_Result api_shares(struct req *r)
{
	/* Owners and admins see every link; members their own. */
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT s.id, s.scope, s.created_at, s.expires_at, CASE WHEN s.password_hash IS "
	    "NULL THEN 0 ELSE 1 END, u.email, u.name, "
	    "CASE WHEN s.file_id IS NOT NULL THEN (CASE WHEN d2.path = '/' THEN '/' || f.name "
	    "ELSE d2.path || '/' || f.name END) ELSE d.path END "
	    "FROM share_links s LEFT JOIN users u ON u.id = s.created_by "
	    "LEFT JOIN folders d ON d.id = s.folder_id LEFT JOIN files f ON f.id = s.file_id "
	    "LEFT JOIN folders d2 ON d2.id = f.folder_id "
	    "WHERE s.workspace_id = ? AND s.revoked_at IS NULL AND (s.expires_at IS NULL OR "
	    "s.expires_at > ?) AND (? > 0 OR s.created_by = ?) ORDER BY s.id",
	    r->ws_id, now_ms(), (int64_t)(r->role >= ROLE_ADMIN), r->user_id);
	if (!st)
		return reply_db_error(r);
	json_t *arr = json_array();
	while (db_step(st) == DB_ROW) {
		json_t *o = json_pack(
		    "{s:I, s:s, s:I, s:b, s:s?, s:s?, s:s?}", "id", (json_int_t)db_col_int64(st, 0),
		    "scope", db_col_text(st, 1), "created_at", (json_int_t)db_col_int64(st, 2),
		    "password", (int)db_col_int64(st, 4), "created_by", db_col_text(st, 5),
		    "created_by_name", db_col_text(st, 6), "path", db_col_text(st, 7));
		if (!db_col_is_null(st, 3))
			json_object_set_new(o, "expires_at", json_integer(db_col_int64(st, 3)));
		json_array_append_new(arr, o);
	}
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "shares", arr));
}

enum MHD_Result api_share_revoke(struct req *r)
{
	int64_t id = parse_id(r->params[1]), creator = 0;
	int rc =
	    db_int64(r->db, &creator,
	             "SELECT created_by FROM share_links WHERE id = ? AND workspace_id = ? AND "
	             "revoked_at IS NULL",
	             id, r->ws_id);
	if (rc != DB_ROW)
		return rc == DB_DONE
		           ? reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such link")
		           : reply_db_error(r);
	if (creator != r->user_id && r->role < ROLE_ADMIN)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "only its creator or an owner or admin revokes a link");
	if (db_run(r->db, "UPDATE share_links SET revoked_at = ? WHERE id = ?", now_ms(), id) !=
	        DB_DONE ||
	    meta_audit(r, "share.revoke", r->params[1], NULL) != 0)
		return reply_db_error(r);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:I}", "revoked", (json_int_t)id));
}

/* ---- the public side ---- */

/* Find a live link by token and check its creator may still do what it grants.
 * Replies (404) and returns false if not. */
static bool share_open(struct req *r, const char *tok, struct share *s, bool html)
{
	memset(s, 0, sizeof *s);
	char hash[65];
	if (!tok || strlen(tok) > 200) {
		if (html)
			share_page_message(r, MHD_HTTP_NOT_FOUND, "No such link",
			                   "This link does not exist.");
		else
			reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such link");
		return false;
	}
	auth_token_hash(tok, hash);
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT s.id, s.workspace_id, s.created_by, s.scope, s.password_hash, s.expires_at, "
	    "s.file_id IS NOT NULL, CASE WHEN s.file_id IS NOT NULL THEN (CASE WHEN d2.path = '/' "
	    "THEN '/' || f.name ELSE d2.path || '/' || f.name END) ELSE d.path END "
	    "FROM share_links s LEFT JOIN folders d ON d.id = s.folder_id AND d.deleted_at IS NULL "
	    "LEFT JOIN files f ON f.id = s.file_id AND f.deleted_at IS NULL "
	    "LEFT JOIN folders d2 ON d2.id = f.folder_id "
	    "WHERE s.token_hash = ? AND s.revoked_at IS NULL AND (s.expires_at IS NULL OR "
	    "s.expires_at > ?)",
	    hash, now_ms());
	bool found = false;
	if (st && db_step(st) == DB_ROW && db_col_text(st, 7)) {
		found = true;
		s->id = db_col_int64(st, 0);
		s->ws = db_col_int64(st, 1);
		s->creator = db_col_int64(st, 2);
		s->write = strcmp(db_col_text(st, 3), "write") == 0;
		s->pw_hash = db_col_text(st, 4) ? xstrdup(db_col_text(st, 4)) : NULL;
		s->expires_at = db_col_is_null(st, 5) ? 0 : db_col_int64(st, 5);
		s->is_file = db_col_int64(st, 6) != 0;
		s->root = xstrdup(db_col_text(st, 7));
	}
	db_finalize(st);
	if (found) {
		/* Act as the creator, with the creator's access of today. */
		r->ws_id = s->ws;
		r->user_id = s->creator;
		r->role = auth_role(r->db, s->ws, s->creator);
		struct acl *a = r->role != ROLE_NONE ? req_acl(r) : NULL;
		found =
		    a && acl_perm(a, s->root, s->is_file) >= (s->write ? PERM_WRITE : PERM_READ);
	}
	if (!found) {
		share_fini(s);
		if (html)
			share_page_message(r, MHD_HTTP_NOT_FOUND, "This link does not work",
			                   "It does not exist, it expired or it was revoked. Ask "
			                   "whoever shared it for a new one.");
		else
			reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
			            "this link does not exist, expired or was revoked");
	}
	return found;
}

/* Does the request carry the page's unlock cookie for this link? */
static bool share_cookie_ok(struct req *r, const struct share *s)
{
	const char *v = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, SHARE_COOKIE);
	const char *why;
	json_t *claims = v && strlen(v) < 2048 ? tokens_verify(r->db, v, &why) : NULL;
	const char *sc = json_get_str(claims, "scope");
	int64_t id = 0;
	bool ok = claims && sc && strcmp(sc, "share") == 0 && json_get_int(claims, "share", &id) &&
	          id == s->id;
	json_decref(claims);
	return ok;
}

enum unlock { UNLOCK_OK, UNLOCK_NONE, UNLOCK_WRONG, UNLOCK_REPLIED };

/* Check pw against the link's password, throttled per link and per client
 * (429/503 replied, as JSON or as the form's page). */
static enum unlock share_check(struct req *r, const struct share *s, const char *pw,
                               const char *rel, bool html)
{
	char key[48];
	snprintf(key, sizeof key, "share:%lld", (long long)s->id);
	int64_t wait = guard_admit(r, key);
	if (wait > 0) {
		if (!html) {
			auth_reply_retry(r, AUTH_THROTTLED, wait);
			return UNLOCK_REPLIED;
		}
		struct share_view v = {r->params[0], share_name_of(s), rel, s->is_file, s->write};
		char *msg = xasprintf("Too many wrong passwords: try again in %lld s.",
		                      (long long)((wait + 999) / 1000));
		share_page_locked(r, &v, MHD_HTTP_TOO_MANY_REQUESTS, msg, (wait + 999) / 1000);
		free(msg);
		return UNLOCK_REPLIED;
	}
	db_pool_release(r->hub->pool, r->db); /* argon2id without a connection */
	r->db = NULL;
	int ok = auth_verify_password(s->pw_hash, pw);
	r->db = db_pool_acquire(r->hub->pool);
	guard_result(r, key, ok == AUTH_BUSY ? -1 : ok);
	if (ok == AUTH_BUSY) {
		auth_reply_retry(r, AUTH_BUSY, AUTH_BUSY_RETRY_MS);
		return UNLOCK_REPLIED;
	}
	if (ok == 1)
		return UNLOCK_OK;
	share_audit(r, s, "share.password_failed", key);
	return UNLOCK_WRONG;
}

/* The password, from the X-Share-Password header or ?password=, or the page's
 * cookie. Replies 401 (the form's page when html), or 429/503 when guesses at
 * this link or from this client are throttled. */
static bool share_unlocked(struct req *r, const struct share *s, bool html)
{
	if (!s->pw_hash || share_cookie_ok(r, s))
		return true;
	const char *pw = req_header(r, "X-Share-Password");
	if (!pw)
		pw = req_arg(r, "password", NULL);
	const char *sub = req_arg(r, "path", NULL);
	const char *rel = sub && *sub == '/' ? sub : "/";
	enum unlock u = pw && strlen(pw) <= 1024 ? share_check(r, s, pw, rel, html)
	                : pw                     ? UNLOCK_WRONG
	                                         : UNLOCK_NONE;
	if (u == UNLOCK_OK)
		return true;
	if (u == UNLOCK_REPLIED)
		return false;
	if (html) {
		struct share_view v = {r->params[0], share_name_of(s), rel, s->is_file, s->write};
		share_page_locked(r, &v, MHD_HTTP_UNAUTHORIZED,
		                  u == UNLOCK_WRONG ? "Wrong password." : NULL, 0);
	} else
		reply_error(r, MHD_HTTP_UNAUTHORIZED, "password_required",
		            pw ? "wrong password for this link" : "this link needs its password");
	return false;
}

/* POST /s/TOKEN (the page's form: password=…&path=…): a right password sets the
 * link's unlock cookie and sends the browser back to the page (303); a wrong
 * one shows the form again (401), throttled as any guess. */
enum MHD_Result api_share_unlock(struct req *r)
{
	struct share s;
	if (!share_open(r, r->params[0], &s, true))
		return MHD_YES;
	char *pw = share_form_field(r, "password"), *sub = share_form_field(r, "path");
	const char *why;
	char *rel = sub && *sub && strcmp(sub, "/") != 0 ? path_normalize(sub, strlen(sub), &why)
	                                                 : xstrdup("/");
	if (!rel)
		rel = xstrdup("/");
	enum MHD_Result ret = MHD_YES;
	enum unlock u = !s.pw_hash                        ? UNLOCK_OK
	                : pw && *pw && strlen(pw) <= 1024 ? share_check(r, &s, pw, rel, true)
	                : pw && *pw                       ? UNLOCK_WRONG
	                                                  : UNLOCK_NONE;
	if (u == UNLOCK_WRONG || u == UNLOCK_NONE) {
		struct share_view v = {r->params[0], share_name_of(&s), rel, s.is_file, s.write};
		ret = share_page_locked(
		    r, &v, MHD_HTTP_UNAUTHORIZED,
		    u == UNLOCK_WRONG ? "Wrong password." : "Type the password.", 0);
	} else if (u == UNLOCK_OK) {
		int64_t exp = now_ms() + SHARE_UNLOCK_TTL_S * 1000ll;
		if (s.expires_at && s.expires_at < exp)
			exp = s.expires_at;
		char *tok =
		    tokens_sign(r->db, json_pack("{s:s, s:I, s:I}", "scope", "share", "share",
		                                 (json_int_t)s.id, "exp", (json_int_t)exp));
		if (!tok) {
			ret = share_page_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Try again later",
			                         "The hub cannot open this link now.");
		} else {
			char *loc = NULL, *cookie;
			size_t n = 0;
			FILE *f = open_memstream(&loc, &n);
			fprintf(f, "/s/%s", r->params[0]);
			if (strcmp(rel, "/") != 0) {
				fputs("?path=", f);
				share_url_escape(f, rel);
			}
			fclose(f);
			cookie = xasprintf(SHARE_COOKIE "=%s; Path=/s/%s; Max-Age=%lld; HttpOnly; "
			                                "SameSite=Strict%s",
			                   tok, r->params[0], (long long)((exp - now_ms()) / 1000),
			                   req_tls(r) ? "; Secure" : "");
			struct MHD_Response *resp =
			    MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
			MHD_add_response_header(resp, "Location", loc);
			MHD_add_response_header(resp, "Set-Cookie", cookie);
			MHD_add_response_header(resp, "Cache-Control", "no-store");
			ret = req_queue(r, MHD_HTTP_SEE_OTHER, resp);
			free(loc);
			free(cookie);
			free(tok);
		}
	}
	if (pw)
		memset(pw, 0, strlen(pw));
	free(pw);
	free(sub);
	free(rel);
	share_fini(&s);
	return ret;
}

/* The workspace path for ?path=SUB inside a shared folder (new string), or
 * NULL after replying 400. A shared file has no inside. */
static char *share_path(struct req *r, const struct share *s)
{
	size_t len = 0;
	const char *sub = req_arg(r, "path", &len);
	if (!sub || !*sub || strcmp(sub, "/") == 0)
		return xstrdup(s->root);
	if (s->is_file) {
		reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "a shared file has no inside");
		return NULL;
	}
	const char *why;
	char *rel = path_normalize(sub, len, &why); /* no "..": it cannot climb out */
	if (!rel) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_path", "path: %s", why);
		return NULL;
	}
	char *full = strcmp(s->root, "/") == 0 ? xstrdup(rel) : xasprintf("%s%s", s->root, rel);
	free(rel);
	return full;
}

/* Open the link named in the URL, check its password and resolve ?path=:
 * false after replying. The caller frees *full and finishes s. */
static bool share_enter(struct req *r, struct share *s, char **full, bool html)
{
	*full = NULL;
	if (!share_open(r, r->params[0], s, html))
		return false;
	if (share_unlocked(r, s, html) && (*full = share_path(r, s)))
		return true;
	share_fini(s);
	return false;
}

/* The part of a workspace path below the share's root ("/" for the root). */
static const char *rel_of(const struct share *s, const char *full)
{
	if (strcmp(s->root, "/") == 0)
		return full;
	const char *rest = full + strlen(s->root);
	return *rest ? rest : "/";
}

/* What a link shows of an entry: its name, kind, size and times, with its path
 * below the share's root. Never ids, hashes or who changed it: a link holder
 * is no member. New array. */
static json_t *share_entries(const struct share *s, json_t *entries /* stolen */)
{
	static const char *const shown[] = {"type", "name", "size", "modified_at", "content_type"};
	json_t *out = json_array(), *e;
	size_t i;
	json_array_foreach(entries, i, e)
	{
		json_t *o = json_object();
		for (size_t k = 0; k < sizeof shown / sizeof *shown; k++)
			if (json_object_get(e, shown[k]))
				json_object_set(o, shown[k], json_object_get(e, shown[k]));
		const char *p = json_get_str(e, "path");
		if (p)
			json_object_set_new(o, "path", json_string(rel_of(s, p)));
		json_array_append_new(out, o);
	}
	json_decref(entries);
	return out;
}

static enum MHD_Result share_json(struct req *r, struct share *s, const char *full, json_t *body)
{
	json_t *info = json_pack("{s:s, s:s, s:s}", "scope", s->write ? "write" : "read", "type",
	                         s->is_file ? "file" : "folder", "name", share_name_of(s));
	if (s->expires_at)
		json_object_set_new(info, "expires_at", json_integer(s->expires_at));
	json_object_set_new(body, "share", info);
	json_object_set_new(body, "path", json_string(rel_of(s, full)));
	return reply_json(r, MHD_HTTP_OK, body);
}

/* GET /s/TOKEN[?path=SUB][&format=json] */
enum MHD_Result api_share_view(struct req *r)
{
	struct share s;
	char *full;
	const char *fmt = req_arg(r, "format", NULL), *accept = req_header(r, "Accept");
	bool as_json =
	    (fmt && strcmp(fmt, "json") == 0) ||
	    (accept && strstr(accept, "application/json") && !strstr(accept, "text/html"));
	if (!share_enter(r, &s, &full, !as_json))
		return MHD_YES;
	enum MHD_Result ret = MHD_YES;
	struct share_view v = {r->params[0], share_name_of(&s), rel_of(&s, full), s.is_file,
	                       s.write};
	struct acl *a = req_acl(r);
	struct file_info fi;
	int64_t folder = 0;
	int rc = meta_file_get(r->db, r->ws_id, full, &fi);
	if (rc == 1 && acl_perm(a, full, true) >= PERM_READ) {
		json_t *body =
		    json_pack("{s:s, s:s, s:I, s:I, s:s?}", "type", "file", "name", fi.name, "size",
		              (json_int_t)fi.size, "modified_at", (json_int_t)fi.updated_at,
		              "content_type", fi.content_type);
		if (as_json)
			ret = share_json(r, &s, full, body);
		else {
			ret = share_page_file(r, &v, body);
			json_decref(body);
		}
	} else if (rc == 0 && meta_folder_id(r->db, r->ws_id, full, &folder) == 1 &&
	           acl_visible(a, full, false)) {
		json_t *body = json_pack("{s:s, s:o}", "type", "folder", "entries",
		                         share_entries(&s, list_entries(r, folder, full)));
		if (as_json)
			ret = share_json(r, &s, full, body);
		else {
			ret = share_page_folder(r, &v, json_object_get(body, "entries"), true);
			json_decref(body);
		}
	} else {
		ret = rc < 0    ? reply_db_error(r)
		      : as_json ? reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
		                              "nothing is shared there")
		                : share_page_message(r, MHD_HTTP_NOT_FOUND, "Not found",
		                                     "Nothing is shared there.");
	}
	free(full);
	share_fini(&s);
	return ret;
}

/* GET /s/TOKEN/file[?path=SUB][&inline=1]: inline=1 is the page's preview
 * (shown inline only if content.c's passive list allows its type). */
enum MHD_Result api_share_file(struct req *r)
{
	struct share s;
	char *full;
	if (!share_enter(r, &s, &full, false))
		return MHD_YES;
	enum MHD_Result ret = MHD_YES;
	struct file_info fi;
	int rc = meta_file_get(r->db, r->ws_id, full, &fi);
	if (rc == 1 && acl_perm(req_acl(r), full, true) >= PERM_READ) {
		share_audit(r, &s, "share.download", full);
		const char *in = req_arg(r, "inline", NULL);
		ret = serve_version(r, &fi, !(in && strcmp(in, "1") == 0));
	} else {
		ret = rc < 0
		          ? reply_db_error(r)
		          : reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such shared file");
	}
	free(full);
	share_fini(&s);
	return ret;
}

/* GET /s/TOKEN/zip[?path=SUB]: a shared folder (or a folder in it) as a ZIP. */
enum MHD_Result api_share_zip(struct req *r)
{
	struct share s;
	char *full;
	if (!share_enter(r, &s, &full, false))
		return MHD_YES;
	enum MHD_Result ret = MHD_YES;
	int64_t folder = 0;
	int rc = s.is_file ? 0 : meta_folder_id(r->db, r->ws_id, full, &folder);
	if (rc == 1 && acl_visible(req_acl(r), full, false)) {
		/* A plain ASCII file name: the folder's, or "shared". */
		char name[64] = "shared";
		const char *base = strrchr(full, '/') + 1;
		size_t k = 0;
		for (; *base && k + 1 < sizeof name; base++)
			if ((*base >= 'a' && *base <= 'z') || (*base >= 'A' && *base <= 'Z') ||
			    (*base >= '0' && *base <= '9') || *base == '-' || *base == '_')
				name[k++] = *base;
		if (k)
			name[k] = 0;
		share_audit(r, &s, "share.zip", full);
		ret = serve_zip(r, full, name);
	} else {
		ret = rc < 0 ? reply_db_error(r)
		             : reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
		                           "no shared folder there");
	}
	free(full);
	share_fini(&s);
	return ret;
}

/* PUT /s/TOKEN/upload?path=SUB: a write link takes files into its folder. */
enum MHD_Result api_share_upload_begin(struct req *r)
{
	struct share s;
	char *full;
	if (!share_enter(r, &s, &full, false))
		return MHD_YES;
	enum MHD_Result ret = MHD_YES;
	if (!s.write) {
		ret = reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden", "this link is read-only");
		goto out;
	}
	if (strcmp(full, s.root) == 0) {
		ret = reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_path",
		                  "name the file: ?path=/NAME inside the shared folder");
		goto out;
	}
	if (acl_perm(req_acl(r), full, true) < PERM_WRITE) {
		ret = reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                  "this link may not write there");
		goto out;
	}
	r->share_id = s.id;                 /* the link's pending bytes are bounded (possess.c) */
	ret = upload_stream_start(r, full); /* takes full */
	full = NULL;
out:
	free(full);
	share_fini(&s);
	return ret;
}

/* The end of a link's upload: the commit's answer, told in the link's terms
 * (its path below the share's root; no ids or hashes). */
enum MHD_Result api_share_upload(struct req *r)
{
	struct op_err e = {0};
	json_t *body = upload_stream_commit(r, &e);
	if (!body)
		return reply_op_err(r, &e);
	unsigned st = MHD_HTTP_CREATED;
	struct share s; /* the link was checked (and unlocked) at the body's start */
	if (!share_open(r, r->params[0], &s, false)) {
		json_decref(body);
		return MHD_YES;
	}
	json_t *out = share_entries(&s, json_pack("[o]", body));
	enum MHD_Result ret = reply_json(r, st, json_incref(json_array_get(out, 0)));
	json_decref(out);
	share_fini(&s);
	return ret;
}
