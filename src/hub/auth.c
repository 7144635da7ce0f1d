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

	/* A dummy verify for unknown emails keeps the timing the same. */
	pthread_once(&dummy_once, make_dummy);
	char stored[128] = "";
	int64_t uid = 0;
	struct db_stmt *st =
	    db_query(r->db, "SELECT id, password_hash FROM users WHERE email = ?", "t", email);
	if (!st)
		return reply_db_error(r);
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
