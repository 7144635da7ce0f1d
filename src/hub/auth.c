/* auth: passwords (argon2id), bearer tokens (random, stored as SHA-256),
 * roles, and the login/logout endpoints. */
#include "hub.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/util.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

/* OWASP's argon2id floor (19 MiB, t=2): strong, and cheap enough that logins
 * don't dominate the hub's memory. The parameters travel in the hash string,
 * so they can be raised later. */
#define PW_OPSLIMIT 2
#define PW_MEMLIMIT (19u * 1024 * 1024)

int auth_hash_password(const char *password, char out[128])
{
	return crypto_pwhash_str(out, password, strlen(password), PW_OPSLIMIT, PW_MEMLIMIT);
}

bool auth_verify_password(const char *hash, const char *password)
{
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

void auth_token_hash(const char *tok, char hash[65])
{
	hash_hex(tok, strlen(tok), hash);
}

void auth_new_token(char tok[64], char hash[65])
{
	unsigned char raw[32];
	randombytes_buf(raw, sizeof raw);
	strcpy(tok, "rst_");
	sodium_bin2base64(tok + 4, 60, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	auth_token_hash(tok, hash);
}

int auth_check_bearer(struct db *db, const char *authz, int64_t *user_id, int64_t *token_id,
                      int64_t *host_id, int64_t *host_ws)
{
	if (!authz || strncmp(authz, "Bearer ", 7) != 0)
		return 1;
	const char *tok = authz + 7;
	if (strlen(tok) > 200)
		return 1;
	char h[65];
	auth_token_hash(tok, h);
	/* A host token acts for the admin who invited the host, in the host's
	 * workspace only, until the host is revoked. */
	struct db_stmt *st =
	    db_query(db,
	             "SELECT t.id, t.user_id, t.host_id, h.workspace_id FROM tokens t "
	             "LEFT JOIN hosts h ON h.id = t.host_id WHERE t.token_hash = ? AND "
	             "t.revoked_at IS NULL AND t.user_id IS NOT NULL AND "
	             "(t.expires_at IS NULL OR t.expires_at > ?) AND "
	             "(t.host_id IS NULL OR h.revoked_at IS NULL)",
	             "ti", h, now_ms());
	if (!st)
		return -1;
	int rc = db_step(st);
	if (rc == DB_ROW) {
		*token_id = db_col_int64(st, 0);
		*user_id = db_col_int64(st, 1);
		*host_id = db_col_int64(st, 2);
		*host_ws = db_col_int64(st, 3);
	}
	db_finalize(st);
	return rc == DB_ROW ? 0 : rc == DB_DONE ? 1 : -1;
}

enum role auth_role(struct db *db, int64_t ws_id, int64_t user_id)
{
	struct db_stmt *st =
	    db_query(db, "SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?",
	             "ii", ws_id, user_id);
	enum role role = ROLE_NONE;
	if (st && db_step(st) == DB_ROW) {
		const char *s = db_col_text(st, 0);
		role = strcmp(s, "owner") == 0   ? ROLE_OWNER
		       : strcmp(s, "admin") == 0 ? ROLE_ADMIN
		                                 : ROLE_MEMBER;
	}
	db_finalize(st);
	return role;
}

static char dummy[128];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy(void)
{
	auth_hash_password("not a real password", dummy);
}

int64_t auth_check_password(struct req *r, const char *email, const char *password)
{
	/* A dummy verify for unknown emails keeps the timing the same. */
	pthread_once(&dummy_once, make_dummy);
	char stored[128] = "";
	int64_t uid = 0;
	struct db_stmt *st =
	    db_query(r->db, "SELECT id, password_hash FROM users WHERE email = ?", "t", email);
	if (!st)
		return -1;
	if (db_step(st) == DB_ROW) {
		uid = db_col_int64(st, 0);
		snprintf(stored, sizeof stored, "%s", db_col_text(st, 1));
	}
	db_finalize(st);
	/* Don't hold a database connection through argon2id. */
	db_pool_release(r->hub->pool, r->db);
	r->db = NULL;
	bool ok = auth_verify_password(uid ? stored : dummy, password) && uid;
	r->db = db_pool_acquire(r->hub->pool);
	return ok ? uid : 0;
}

int auth_store_session(struct db *db, int64_t uid, const char *token_hash, const char *client)
{
	int64_t now = now_ms();
	return db_run(db,
	              "INSERT INTO tokens(user_id, kind, name, token_hash, created_at, expires_at) "
	              "VALUES(?, 'session', ?, ?, ?, ?)",
	              "ittii", uid, client, token_hash, now, now + SESSION_TTL_MS);
}

enum MHD_Result api_login(struct req *r)
{
	const char *email = json_get_str(r->json, "email");
	const char *password = json_get_str(r->json, "password");
	if (!email || !password || !*email || strlen(email) > 320 || strlen(password) > 1024)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "email and password (strings) are required");

	int64_t uid = auth_check_password(r, email, password);
	if (uid < 0)
		return reply_db_error(r);
	bool ok = uid > 0;
	if (!ok) {
		meta_audit(r, "login.failed", email, NULL);
		return reply_error(r, MHD_HTTP_UNAUTHORIZED, "invalid_credentials",
		                   "wrong email or password");
	}
	char tok[64], h[65];
	auth_new_token(tok, h);
	int64_t now = now_ms();
	const char *name = json_get_str(r->json, "client");
	if (auth_store_session(r->db, uid, h, name ? name : "cli") != DB_DONE)
		return reply_db_error(r);
	r->user_id = uid;
	meta_audit(r, "login", email, NULL);
	return reply_session(r,
	                     json_pack("{s:s, s:I, s:{s:I, s:s}}", "token", tok, "expires_at",
	                               (json_int_t)(now + SESSION_TTL_MS), "user", "id",
	                               (json_int_t)uid, "email", email),
	                     tok, now + SESSION_TTL_MS);
}

enum MHD_Result api_logout(struct req *r)
{
	if (db_run(r->db, "UPDATE tokens SET revoked_at = ? WHERE id = ?", "ii", now_ms(),
	           r->token_id) != DB_DONE)
		return reply_db_error(r);
	return reply_session(r, json_pack("{s:b}", "ok", 1), NULL, 0);
}

enum MHD_Result api_me(struct req *r)
{
	struct db_stmt *st =
	    db_query(r->db, "SELECT email FROM users WHERE id = ?", "i", r->user_id);
	if (!st || db_step(st) != DB_ROW) {
		db_finalize(st);
		return reply_db_error(r);
	}
	json_t *o =
	    json_pack("{s:I, s:s}", "id", (json_int_t)r->user_id, "email", db_col_text(st, 0));
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK, o);
}

/* ---- app passwords: named API tokens ----
 *
 * A WebDAV mount or a script keeps a token of its own, so the account
 * password is never stored in one and each can be revoked alone. */

#define APP_TOKENS_MAX 100 /* live app passwords per user */

enum MHD_Result api_app_token_create(struct req *r)
{
	if (r->host_id)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "a host credential cannot make app passwords");
	const char *name = json_get_str(r->json, "name");
	int64_t expires_in = 0;
	if (!name || !*name || strlen(name) > 100)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "name (1..100 bytes) is required");
	if (json_object_get(r->json, "expires_in") &&
	    (!json_get_int(r->json, "expires_in", &expires_in) || expires_in <= 0 ||
	     expires_in > 10ll * 365 * 86400))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "expires_in is a number of seconds, at most ten years");
	int64_t now = now_ms(), live = 0, id = 0;
	if (db_int64(r->db, &live,
	             "SELECT COUNT(*) FROM tokens WHERE user_id = ? AND kind = 'api' AND "
	             "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
	             "ii", r->user_id, now) != DB_ROW)
		return reply_db_error(r);
	if (live >= APP_TOKENS_MAX)
		return reply_error(r, MHD_HTTP_CONFLICT, "too_many_tokens",
		                   "at most %d app passwords; revoke one first", APP_TOKENS_MAX);
	char tok[64], h[65];
	auth_new_token(tok, h);
	struct db_stmt *st =
	    db_prepare(r->db, "INSERT INTO tokens(user_id, kind, name, token_hash, "
	                      "created_at, expires_at) VALUES(?, 'api', ?, ?, ?, "
	                      "?) RETURNING id");
	int rc = DB_ERR;
	if (st) {
		db_bind_int64(st, 1, r->user_id);
		db_bind_text(st, 2, name);
		db_bind_text(st, 3, h);
		db_bind_int64(st, 4, now);
		if (expires_in)
			db_bind_int64(st, 5, now + expires_in * 1000);
		else
			db_bind_null(st, 5);
		rc = db_step(st);
		if (rc == DB_ROW)
			id = db_col_int64(st, 0);
		db_finalize(st);
	}
	if (rc != DB_ROW || meta_audit(r, "token.create", name, NULL) != 0)
		return reply_db_error(r);
	json_t *o = json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)id, "name", name, "token",
	                      tok, "created_at", (json_int_t)now);
	if (expires_in)
		json_object_set_new(o, "expires_at", json_integer(now + expires_in * 1000));
	return reply_json(r, MHD_HTTP_CREATED, o);
}

enum MHD_Result api_app_tokens(struct req *r)
{
	struct db_stmt *st = db_query(r->db,
	                              "SELECT id, name, created_at, expires_at, last_used_at FROM "
	                              "tokens WHERE user_id = ? AND kind = 'api' AND revoked_at IS "
	                              "NULL AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
	                              "ii", r->user_id, now_ms());
	if (!st)
		return reply_db_error(r);
	json_t *arr = json_array();
	while (db_step(st) == DB_ROW) {
		json_t *o = json_pack("{s:I, s:s, s:I}", "id", (json_int_t)db_col_int64(st, 0),
		                      "name", db_col_text(st, 1) ? db_col_text(st, 1) : "",
		                      "created_at", (json_int_t)db_col_int64(st, 2));
		if (!db_col_is_null(st, 3))
			json_object_set_new(o, "expires_at", json_integer(db_col_int64(st, 3)));
		if (!db_col_is_null(st, 4))
			json_object_set_new(o, "last_used_at", json_integer(db_col_int64(st, 4)));
		json_array_append_new(arr, o);
	}
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "tokens", arr));
}

enum MHD_Result api_app_token_revoke(struct req *r)
{
	int64_t id = parse_id(r->params[0]), one = 0;
	int rc = id > 0 ? db_int64(r->db, &one,
	                           "UPDATE tokens SET revoked_at = ? WHERE id = ? AND user_id = ? "
	                           "AND kind = 'api' AND revoked_at IS NULL RETURNING 1",
	                           "iii", now_ms(), id, r->user_id)
	                : DB_DONE;
	if (rc == DB_ERR)
		return reply_db_error(r);
	if (rc != DB_ROW)
		return reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such app password");
	char target[32];
	snprintf(target, sizeof target, "%lld", (long long)id);
	meta_audit(r, "token.revoke", target, NULL);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", "revoked", 1));
}
