/* members: workspaces, memberships and roles, and invites.
 *
 * Roles per workspace: owner, admin, member. Owners and admins manage members
 * and invites; only an owner may make or unmake an owner, and a workspace
 * always keeps at least one owner. An invite is a random token (stored as its
 * SHA-256) with a role, an expiry and single use by default; whoever accepts it
 * with an email and password becomes a member (a new account is created for a
 * new email; an existing one must give its password). */
#include "hub.h"
#include "auth.h"
#include "account.h"
#include "meta.h"
#include "guard.h"
#include "members.h"
#include "web.h"
#include "tokens.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <stdlib.h>
#include <string.h>

#define INVITE_TTL_DEFAULT_S (7 * 86400)
#define INVITE_TTL_MAX_S     (90 * 86400)

const char *role_name(enum role r)
{
	return r == ROLE_OWNER ? "owner" : r == ROLE_ADMIN ? "admin" : "member";
}

static enum role role_parse(const char *s)
{
	if (!s)
		return ROLE_NONE;
	return strcmp(s, "owner") == 0    ? ROLE_OWNER
	       : strcmp(s, "admin") == 0  ? ROLE_ADMIN
	       : strcmp(s, "member") == 0 ? ROLE_MEMBER
	                                  : ROLE_NONE;
}

/* Create a workspace with its root folder and owner (inside a transaction). */
static int create_workspace(struct db *db, const char *name, int64_t owner, int64_t *ws)
{
	int64_t now = now_ms();
	if (db_int64(db, ws,
	             "INSERT INTO workspaces(name, created_by, created_at) VALUES(?,?,?) "
	             "RETURNING id",
	             name, owner, now) != DB_ROW)
		return DB_ERR;
	if (db_run(db,
	           "INSERT INTO memberships(workspace_id, user_id, role, created_at) "
	           "VALUES(?,?,'owner',?)",
	           *ws, owner, now) != DB_DONE)
		return DB_ERR;
	return db_run(db,
	              "INSERT INTO folders(workspace_id, parent_id, name, path, created_by, "
	              "created_at, updated_at) VALUES(?, NULL, '', '/', ?, ?, ?)",
	              *ws, owner, now, now);
}

int hub_create_workspace(struct db *db, const char *name, int64_t owner, int64_t *ws)
{
	return create_workspace(db, name, owner, ws);
}

enum MHD_Result api_workspace_create(struct req *r)
{
	json_t *jn = json_object_get(r->json, "name");
	const char *name = json_get_str(r->json, "name");
	if (!name || !name_valid(name, json_string_length(jn)) || strlen(name) > 100)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_name",
		                   "name must be 1..100 bytes of printable UTF-8 without '/'");
	int64_t ws = 0;
	if (db_begin(r->db) != DB_DONE)
		return reply_db_error(r);
	if (create_workspace(r->db, name, r->user_id, &ws) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	r->ws_id = ws;
	if (meta_change(r->db, ws, "workspace.created", "workspace",
	                json_pack("{s:I, s:s}", "id", (json_int_t)ws, "name", name)) != 0 ||
	    meta_audit(r, "workspace.create", name, NULL) != 0 || meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	return reply_json(
	    r, MHD_HTTP_CREATED,
	    json_pack("{s:I, s:s, s:s}", "id", (json_int_t)ws, "name", name, "role", "owner"));
}

enum MHD_Result api_members(struct req *r)
{
	struct db_stmt *st =
	    db_query(r->db,
	             "SELECT u.id, u.email, m.role, m.created_at, u.name, "
	             "CASE WHEN u.totp_enabled_at IS NULL THEN 0 ELSE 1 END FROM memberships m "
	             "JOIN users u ON u.id = m.user_id WHERE m.workspace_id = ? "
	             "ORDER BY m.created_at, u.id",
	             r->ws_id);
	if (!st)
		return reply_db_error(r);
	json_t *arr = json_array();
	while (db_step(st) == DB_ROW)
		json_array_append_new(arr, json_pack("{s:I, s:s, s:s?, s:s, s:I, s:b}", "user_id",
		                                     (json_int_t)db_col_int64(st, 0), "email",
		                                     db_col_text(st, 1), "name", db_col_text(st, 4),
		                                     "role", db_col_text(st, 2), "since",
		                                     (json_int_t)db_col_int64(st, 3), "totp",
		                                     db_col_int64(st, 5) != 0));
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "members", arr));
}

static int64_t owner_count(struct db *db, int64_t ws)
{
	int64_t n = 0;
	db_int64(db, &n,
	         "SELECT COUNT(*) FROM memberships WHERE workspace_id = ? AND role = 'owner'", ws);
	return n;
}

/* The target member of /members/{user}: their role, or ROLE_NONE after replying. */
static enum role target_member(struct req *r, int64_t *uid)
{
	*uid = parse_id(r->params[1]);
	enum role role = *uid > 0 ? auth_role(r->db, r->ws_id, *uid) : ROLE_NONE;
	if (role == ROLE_NONE)
		reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such member");
	return role;
}

enum MHD_Result api_member_set_role(struct req *r)
{
	enum role want = role_parse(json_get_str(r->json, "role"));
	if (want == ROLE_NONE)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_role",
		                   "role must be owner, admin or member");
	if (r->role < ROLE_ADMIN)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "only owners and admins manage members");
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	int64_t uid;
	enum role have = target_member(r, &uid);
	enum MHD_Result ret;
	if (have == ROLE_NONE) {
		db_rollback(r->db);
		return MHD_YES;
	}
	if ((want == ROLE_OWNER || have == ROLE_OWNER) && r->role != ROLE_OWNER) {
		db_rollback(r->db);
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "only an owner may make or unmake an owner");
	}
	if (have == ROLE_OWNER && want != ROLE_OWNER && owner_count(r->db, r->ws_id) <= 1) {
		db_rollback(r->db);
		return reply_error(r, MHD_HTTP_CONFLICT, "last_owner",
		                   "a workspace must keep at least one owner");
	}
	if (db_run(r->db, "UPDATE memberships SET role = ? WHERE workspace_id = ? AND user_id = ?",
	           role_name(want), r->ws_id, uid) != DB_DONE ||
	    meta_change(r->db, r->ws_id, "member.role", "member",
	                json_pack("{s:I, s:s}", "user_id", (json_int_t)uid, "role",
	                          role_name(want))) != 0 ||
	    meta_audit(r, "member.role", r->params[1],
	               json_pack("{s:s}", "role", role_name(want))) != 0 ||
	    meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	ret = reply_json(
	    r, MHD_HTTP_OK,
	    json_pack("{s:I, s:s}", "user_id", (json_int_t)uid, "role", role_name(want)));
	return ret;
}

enum MHD_Result api_member_remove(struct req *r)
{
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	int64_t uid;
	enum role have = target_member(r, &uid);
	if (have == ROLE_NONE) {
		db_rollback(r->db);
		return MHD_YES;
	}
	bool self = uid == r->user_id;
	const char *why = NULL;
	if (!self && r->role < ROLE_ADMIN)
		why = "only owners and admins remove other members";
	else if (!self && have == ROLE_OWNER && r->role != ROLE_OWNER)
		why = "only an owner may remove an owner";
	if (why) {
		db_rollback(r->db);
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden", "%s", why);
	}
	if (have == ROLE_OWNER && owner_count(r->db, r->ws_id) <= 1) {
		db_rollback(r->db);
		return reply_error(r, MHD_HTTP_CONFLICT, "last_owner",
		                   "a workspace must keep at least one owner");
	}
	if (db_run(r->db, "DELETE FROM memberships WHERE workspace_id = ? AND user_id = ?",
	           r->ws_id, uid) != DB_DONE ||
	    meta_change(r->db, r->ws_id, "member.removed", "member",
	                json_pack("{s:I}", "user_id", (json_int_t)uid)) != 0 ||
	    meta_audit(r, self ? "member.leave" : "member.remove", r->params[1], NULL) != 0 ||
	    meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:I}", "removed", (json_int_t)uid));
}

/* ---- invites ---- */

char *hub_link(struct req *r, const char *kind, const char *tok)
{
	/* A person opens the link in a browser: the dashboard's page, when it runs
	 * (roost join and roost host join find the API from there). */
	if (r->hub->dashboard || r->hub->cfg.public_url) {
		char *base = hub_port_base(r, r->hub->cfg.dashboard_port);
		char *url = xasprintf("%s/%s/%s", base, kind, tok);
		free(base);
		return url;
	}
	/* Else the hub as the client reached it. */
	const char *host = req_header(r, "Host");
	return xasprintf("%s://%s/%s/%s", r->hub->tls_cert_pem ? "https" : "http",
	                 host && !strpbrk(host, "/\\ \"<>@") ? host : "HUB", kind, tok);
}

enum MHD_Result api_invite_create(struct req *r)
{
	if (r->role < ROLE_ADMIN)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "only owners and admins create invites");
	const char *rs = json_get_str(r->json, "role");
	enum role role = rs ? role_parse(rs) : ROLE_MEMBER;
	int64_t ttl = INVITE_TTL_DEFAULT_S;
	bool ok = true;
	bool single = json_get_bool(r->json, "single_use", true, &ok);
	if (role == ROLE_NONE || !ok ||
	    (json_object_get(r->json, "expires_in") &&
	     (!json_get_int(r->json, "expires_in", &ttl) || ttl < 1 || ttl > INVITE_TTL_MAX_S)))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "role is owner|admin|member, expires_in 1..%d seconds, "
		                   "single_use a boolean",
		                   INVITE_TTL_MAX_S);
	if (role == ROLE_OWNER && r->role != ROLE_OWNER)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "only an owner may invite an owner");
	char tok[64], hash[65];
	auth_new_token(tok, hash);
	int64_t now = now_ms(), id = 0;
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	if (db_int64(r->db, &id,
	             "INSERT INTO invites(workspace_id, kind, role, token_hash, single_use, "
	             "created_by, created_at, expires_at) VALUES(?, 'member', ?, ?, ?, ?, ?, ?) "
	             "RETURNING id",
	             r->ws_id, role_name(role), hash, (int64_t)single, r->user_id, now,
	             now + ttl * 1000) != DB_ROW ||
	    meta_audit(r, "invite.create", role_name(role),
	               json_pack("{s:I}", "id", (json_int_t)id)) != 0 ||
	    meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	char *url = hub_link(r, "invite", tok);
	json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:I, s:b}", "id", (json_int_t)id, "token", tok,
	                      "url", url, "role", role_name(role), "expires_at",
	                      (json_int_t)(now + ttl * 1000), "single_use", single);
	free(url);
	return reply_json(r, MHD_HTTP_CREATED, o);
}

enum MHD_Result api_invites(struct req *r)
{
	if (r->role < ROLE_ADMIN)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "only owners and admins see invites");
	struct db_stmt *st =
	    db_query(r->db,
	             "SELECT i.id, i.role, i.created_at, i.expires_at, i.single_use, "
	             "u.email, u.name FROM invites i LEFT JOIN users u ON u.id = "
	             "i.created_by WHERE i.workspace_id = ? AND i.kind = 'member' "
	             "AND i.revoked_at IS NULL AND i.used_at IS NULL AND "
	             "i.expires_at > ? ORDER BY i.id",
	             r->ws_id, now_ms());
	if (!st)
		return reply_db_error(r);
	json_t *arr = json_array();
	while (db_step(st) == DB_ROW)
		json_array_append_new(
		    arr, json_pack("{s:I, s:s, s:I, s:I, s:b, s:s?, s:s?}", "id",
		                   (json_int_t)db_col_int64(st, 0), "role", db_col_text(st, 1),
		                   "created_at", (json_int_t)db_col_int64(st, 2), "expires_at",
		                   (json_int_t)db_col_int64(st, 3), "single_use",
		                   (int)db_col_int64(st, 4), "created_by", db_col_text(st, 5),
		                   "created_by_name", db_col_text(st, 6)));
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "invites", arr));
}

enum MHD_Result api_invite_revoke(struct req *r)
{
	if (r->role < ROLE_ADMIN)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "only owners and admins revoke invites");
	int64_t id = parse_id(r->params[1]), found = 0;
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	int rc = db_int64(r->db, &found,
	                  "UPDATE invites SET revoked_at = ? WHERE id = ? AND workspace_id = ? AND "
	                  "revoked_at IS NULL RETURNING id",
	                  now_ms(), id, r->ws_id);
	if (rc != DB_ROW) {
		db_rollback(r->db);
		return rc == DB_DONE
		           ? reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such invite")
		           : reply_db_error(r);
	}
	if (meta_audit(r, "invite.revoke", r->params[1], NULL) != 0 || meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:I}", "revoked", (json_int_t)id));
}

/* GET /api/v1/invites/TOKEN (no bearer token): what a live invite is for, so
 * a join page can say it and a CLI given the dashboard's URL finds the API.
 * Tells the holder only what accepting would: the workspace's name and role. */
enum MHD_Result api_invite_peek(struct req *r)
{
	const char *tok = r->params[0];
	char hash[65];
	if (!tok || strlen(tok) > 200)
		return reply_error(r, MHD_HTTP_NOT_FOUND, "invite_not_found", "no such invite");
	auth_token_hash(tok, hash);
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT i.kind, i.role, i.expires_at, w.name FROM invites i JOIN workspaces w ON "
	    "w.id = i.workspace_id WHERE i.token_hash = ? AND i.revoked_at IS NULL AND "
	    "i.used_at IS NULL AND i.expires_at > ?",
	    hash, now_ms());
	if (!st)
		return reply_db_error(r);
	json_t *o = NULL;
	if (db_step(st) == DB_ROW) {
		char *api = hub_port_base(r, r->hub->cfg.api_port);
		o = json_pack("{s:s, s:s?, s:I, s:{s:s}, s:s}", "kind", db_col_text(st, 0), "role",
		              db_col_text(st, 1), "expires_at", (json_int_t)db_col_int64(st, 2),
		              "workspace", "name", db_col_text(st, 3), "api", api);
		free(api);
	}
	db_finalize(st);
	if (!o)
		return reply_error(r, MHD_HTTP_NOT_FOUND, "invite_not_found",
		                   "this invite does not exist, expired, was used or was revoked");
	return reply_json(r, MHD_HTTP_OK, o);
}

/* POST /api/v1/invites/accept {token, email, password, name?}: no bearer token. */
enum MHD_Result api_invite_accept(struct req *r)
{
	const char *tok = json_get_str(r->json, "token");
	const char *email = json_get_str(r->json, "email");
	const char *pw = json_get_str(r->json, "password");
	const char *uname = json_get_str(r->json, "name");
	if (!tok || !email || !pw || strlen(tok) > 200 || !strchr(email, '@') ||
	    strlen(email) > 320 || strlen(pw) > 1024 ||
	    (json_object_get(r->json, "name") && (!uname || strlen(uname) > 200)))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "token, email and password (strings) are required; name is a "
		                   "string of at most 200 bytes");
	char hash[65];
	auth_token_hash(tok, hash);
	int64_t inv = 0, ws = 0, single = 1, uid = 0;
	char role[16] = "", stored[128] = "";
	struct db_stmt *st =
	    db_query(r->db,
	             "SELECT id, workspace_id, role, single_use FROM invites WHERE "
	             "token_hash = ? AND kind = 'member' AND revoked_at IS NULL AND "
	             "used_at IS NULL AND expires_at > ?",
	             hash, now_ms());
	if (st && db_step(st) == DB_ROW) {
		inv = db_col_int64(st, 0);
		ws = db_col_int64(st, 1);
		snprintf(role, sizeof role, "%s", db_col_text(st, 2));
		single = db_col_int64(st, 3);
	}
	db_finalize(st);
	if (!inv)
		return reply_error(r, MHD_HTTP_NOT_FOUND, "invite_not_found",
		                   "this invite does not exist, expired, was used or was revoked");
	/* An existing account's password is checked here as at login: throttled alike. */
	int64_t wait = guard_admit(r, email);
	if (wait > 0)
		return auth_reply_retry(r, AUTH_THROTTLED, wait);
	st = db_query(r->db, "SELECT id, password_hash, removed_at FROM users WHERE email = ?",
	              email);
	int64_t revive = 0; /* a user removed from the hub comes back as a new account */
	if (st && db_step(st) == DB_ROW) {
		uid = db_col_int64(st, 0);
		snprintf(stored, sizeof stored, "%s", db_col_text(st, 1));
		if (!db_col_is_null(st, 2)) {
			revive = uid;
			uid = 0;
		}
	}
	db_finalize(st);
	/* argon2id without holding a database connection */
	db_pool_release(r->hub->pool, r->db);
	r->db = NULL;
	char newhash[128] = "";
	int ok = uid ? auth_verify_password(stored, pw) : strlen(pw) >= 8;
	if (!uid && ok == 1) {
		int hrc = auth_hash_password(pw, newhash);
		ok = hrc == 0 ? 1 : hrc == AUTH_BUSY ? AUTH_BUSY : 0;
	}
	r->db = db_pool_acquire(r->hub->pool);
	/* Only a wrong password for an existing account is a failed guess. */
	guard_result(r, email, ok == AUTH_BUSY || (!uid && !ok) ? -1 : ok);
	if (ok == AUTH_BUSY)
		return auth_reply_retry(r, AUTH_BUSY, AUTH_BUSY_RETRY_MS);
	if (!ok && uid)
		meta_audit(r, "login.failed", email, json_pack("{s:s}", "via", "invite"));
	if (!ok)
		return uid ? reply_error(r, MHD_HTTP_UNAUTHORIZED, "invalid_credentials",
		                         "this email has an account: give its password")
		           : reply_error(r, MHD_HTTP_BAD_REQUEST, "weak_password",
		                         "the password must be at least 8 characters");
	/* Joining starts a session: an account with a second factor gives its code. */
	if (uid && account_second_factor(r, uid, email, json_get_str(r->json, "code")))
		return MHD_YES;
	r->ws_id = ws;
	if (meta_begin(r->db, ws) != DB_DONE)
		return reply_db_error(r);
	int64_t now = now_ms(), used = 0;
	/* Re-check inside the transaction: two accepts of one single-use invite. */
	int rc = db_int64(r->db, &used,
	                  "SELECT COUNT(*) FROM invites WHERE id = ? AND revoked_at IS NULL AND "
	                  "(used_at IS NULL OR single_use = 0)",
	                  inv);
	if (rc != DB_ROW || used == 0) {
		db_rollback(r->db);
		return reply_error(r, MHD_HTTP_NOT_FOUND, "invite_not_found",
		                   "this invite was used or revoked just now");
	}
	if (revive &&
	    db_run(r->db, "UPDATE users SET password_hash = ?, removed_at = NULL WHERE id = ?",
	           newhash, revive) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	uid = uid ? uid : revive;
	if (!uid && db_int64(r->db, &uid,
	                     "INSERT INTO users(email, password_hash, name, created_at) "
	                     "VALUES(?,?,?,?) RETURNING id",
	                     email, newhash, uname && *uname ? uname : NULL, now) != DB_ROW) {
		db_rollback(r->db);
		return reply_error(r, MHD_HTTP_CONFLICT, "exists",
		                   "an account with this email was created just now; try again");
	}
	r->user_id = uid;
	if (auth_role(r->db, ws, uid) != ROLE_NONE) {
		db_rollback(r->db);
		return reply_error(r, MHD_HTTP_CONFLICT, "already_member",
		                   "%s is already a member of this workspace", email);
	}
	char tok_out[64], tok_hash[65];
	auth_new_token(tok_out, tok_hash);
	if (db_run(
	        r->db,
	        "INSERT INTO memberships(workspace_id, user_id, role, created_at) VALUES(?,?,?,?)",
	        ws, uid, role, now) != DB_DONE ||
	    (single && db_run(r->db, "UPDATE invites SET used_at = ?, used_by = ? WHERE id = ?",
	                      now, uid, inv) != DB_DONE) ||
	    auth_store_session(r->db, uid, tok_hash, "invite") != DB_DONE ||
	    meta_change(r->db, ws, "member.added", "member",
	                json_pack("{s:I, s:s, s:s}", "user_id", (json_int_t)uid, "email", email,
	                          "role", role)) != 0 ||
	    meta_audit(r, "member.join", email,
	               json_pack("{s:I, s:s}", "invite", (json_int_t)inv, "role", role)) != 0 ||
	    meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	/* The name, for "joined workspace NAME" (the id means nothing to people). */
	char name[256] = "";
	st = db_query(r->db, "SELECT name FROM workspaces WHERE id = ?", ws);
	if (st && db_step(st) == DB_ROW)
		snprintf(name, sizeof name, "%s", db_col_text(st, 0));
	db_finalize(st);
	return reply_session(r,
	                     json_pack("{s:s, s:{s:I, s:s}, s:{s:I, s:s, s:s}}", "token", tok_out,
	                               "user", "id", (json_int_t)uid, "email", email, "workspace",
	                               "id", (json_int_t)ws, "name", name, "role", role),
	                     tok_out, now_ms() + auth_session_ttl_ms());
}
