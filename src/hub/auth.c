/* auth: passwords (argon2id), bearer tokens (random, stored as SHA-256),
 * roles, and the login/logout endpoints. */
#include "hub.h"
#include "auth.h"
#include "account.h"
#include "meta.h"
#include "guard.h"
#include "web.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/util.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

/* OWASP's argon2id floor (19 MiB, t=2): strong, and cheap enough that logins
 * don't dominate the hub's memory. The parameters travel in the hash string,
 * so they can be raised later. */
#define PW_OPSLIMIT 2
#define PW_MEMLIMIT (19u * 1024 * 1024)

/* At most PW_SLOTS argon2id runs at once: fifty concurrent logins would
 * otherwise take a gigabyte. The others wait up to PW_SLOT_WAIT_MS. */
#define PW_SLOTS        4
#define PW_SLOT_WAIT_MS 3000
#define PW_BUSY_RETRY_S 1

static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_cv;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;
static int slots_used;

static void slot_init(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&slot_cv, &ca);
	pthread_condattr_destroy(&ca);
}

static bool slot_take(void)
{
	pthread_once(&slot_once, slot_init);
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += PW_SLOT_WAIT_MS / 1000;
	pthread_mutex_lock(&slot_mu);
	int rc = 0;
	while (slots_used >= PW_SLOTS && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&slot_cv, &slot_mu, &until);
	bool got = slots_used < PW_SLOTS;
	if (got)
		slots_used++;
	pthread_mutex_unlock(&slot_mu);
	return got;
}

static void slot_give(void)
{
	pthread_mutex_lock(&slot_mu);
	slots_used--;
	pthread_cond_signal(&slot_cv);
	pthread_mutex_unlock(&slot_mu);
}

int auth_hash_password(const char *password, char out[128])
{
	if (!slot_take())
		return AUTH_BUSY;
	int rc = crypto_pwhash_str(out, password, strlen(password), PW_OPSLIMIT, PW_MEMLIMIT);
	slot_give();
	return rc == 0 ? 0 : -1;
}

int auth_verify_password(const char *hash, const char *password)
{
	if (!slot_take())
		return AUTH_BUSY;
	int rc = crypto_pwhash_str_verify(hash, password, strlen(password));
	slot_give();
	return rc == 0;
}

enum MHD_Result auth_reply_retry(struct req *r, int64_t rc, int64_t retry_ms)
{
	if (rc == AUTH_BUSY)
		return reply_retry(r, MHD_HTTP_SERVICE_UNAVAILABLE, "busy",
		                   "too many password checks at once; retry after Retry-After "
		                   "seconds",
		                   retry_ms);
	return reply_retry(r, MHD_HTTP_TOO_MANY_REQUESTS, "too_many_attempts",
	                   "too many failed password attempts; retry after Retry-After seconds",
	                   retry_ms);
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

/* Login sessions' lifetime and idle timeout (roost serve --session-lifetime,
 * --session-idle): set once at start, before any request thread. */
static int64_t session_lifetime_ms = SESSION_TTL_MS, session_idle_ms = SESSION_IDLE_MS;

void auth_session_policy(int64_t lifetime_ms, int64_t idle_ms)
{
	if (lifetime_ms > 0)
		session_lifetime_ms = lifetime_ms;
	if (idle_ms >= 0)
		session_idle_ms = idle_ms;
}

int64_t auth_session_ttl_ms(void)
{
	return session_lifetime_ms;
}

int64_t auth_session_idle_ms(void)
{
	return session_idle_ms;
}

/* A session's last use is written at most this often (a write per request
 * would be one per request): a fraction of the idle timeout, up to a minute. */
static int64_t touch_every_ms(void)
{
	int64_t t = session_idle_ms / 4;
	return t > 60000 || t <= 0 ? 60000 : t;
}

/* For a session: whether it is past its idle timeout or its lifetime (both
 * enforced here, at each request, so a change of either applies to sessions
 * already handed out), else its last use recorded. The record does not wait
 * for another writer (on SQLite a batch commit holds the one write lock for
 * its whole length, and a GET that waited for it took as long): busy, it is
 * left to a later request, until the last one recorded is two intervals old;
 * then it waits, so that a session in use never passes its idle timeout
 * (at least four intervals). */
static int session_check(struct db *db, int64_t id, int64_t created, int64_t used, int64_t now)
{
	int64_t last = used > created ? used : created;
	if (session_idle_ms > 0 && now - last >= session_idle_ms)
		return AUTH_SESSION_IDLE;
	if (now - created >= session_lifetime_ms)
		return AUTH_SESSION_EXPIRED;
	if (now - last < touch_every_ms())
		return 0;
	bool nowait = now - last < 2 * touch_every_ms();
	db_set_nowait(db, nowait);
	int rc = db_run(db, "UPDATE tokens SET last_used_at = ? WHERE id = ?", now, id);
	db_set_nowait(db, false);
	return rc == DB_DONE || (nowait && rc == DB_BUSY) ? 0 : -1;
}

int auth_check_bearer(struct db *db, const char *authz, int64_t *user_id, int64_t *token_id,
                      int64_t *host_id, int64_t *host_ws, enum cred *cred)
{
	if (!authz || strncmp(authz, "Bearer ", 7) != 0)
		return 1;
	const char *tok = authz + 7;
	if (strlen(tok) > 200)
		return 1;
	char h[65];
	auth_token_hash(tok, h);
	int64_t now = now_ms();
	/* A host token acts for the admin who invited the host, in the host's
	 * workspace only, until the host is revoked. */
	struct db_stmt *st =
	    db_query(db,
	             "SELECT t.id, t.user_id, t.host_id, h.workspace_id, t.kind, t.created_at, "
	             "t.last_used_at FROM tokens t "
	             "LEFT JOIN hosts h ON h.id = t.host_id WHERE t.token_hash = ? AND "
	             "t.revoked_at IS NULL AND t.user_id IS NOT NULL AND "
	             "(t.expires_at IS NULL OR t.expires_at > ?) AND "
	             "(t.host_id IS NULL OR h.revoked_at IS NULL)",
	             h, now);
	if (!st)
		return -1;
	int rc = db_step(st);
	int64_t created = 0, used = 0;
	if (rc == DB_ROW) {
		*token_id = db_col_int64(st, 0);
		*user_id = db_col_int64(st, 1);
		*host_id = db_col_int64(st, 2);
		*host_ws = db_col_int64(st, 3);
		const char *kind = db_col_text(st, 4);
		*cred = strcmp(kind, "api") == 0    ? CRED_APP
		        : strcmp(kind, "host") == 0 ? CRED_HOST
		                                    : CRED_SESSION;
		created = db_col_int64(st, 5);
		used = db_col_int64(st, 6);
	}
	db_finalize(st);
	if (rc == DB_ROW && *cred == CRED_SESSION)
		return session_check(db, *token_id, created, used, now);
	return rc == DB_ROW ? 0 : rc == DB_DONE ? 1 : -1;
}

enum role auth_role(struct db *db, int64_t ws_id, int64_t user_id)
{
	struct db_stmt *st =
	    db_query(db, "SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?",
	             ws_id, user_id);
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

int64_t auth_check_password(struct req *r, const char *email, const char *password,
                            int64_t *retry_ms)
{
	/* Checked before anything else, so a refused guess costs no argon2id. */
	*retry_ms = guard_admit(r, email);
	if (*retry_ms > 0)
		return AUTH_THROTTLED;
	/* A dummy verify for unknown emails keeps the timing the same. */
	pthread_once(&dummy_once, make_dummy);
	char stored[128] = "";
	int64_t uid = 0;
	struct db_stmt *st = db_query(
	    r->db, "SELECT id, password_hash FROM users WHERE email = ? AND removed_at IS NULL",
	    email);
	if (!st) {
		guard_result(r, email, -1);
		return AUTH_DB_ERROR;
	}
	if (db_step(st) == DB_ROW) {
		uid = db_col_int64(st, 0);
		snprintf(stored, sizeof stored, "%s", db_col_text(st, 1));
	}
	db_finalize(st);
	/* Don't hold a database connection through argon2id. */
	db_pool_release(r->hub->pool, r->db);
	r->db = NULL;
	int v = auth_verify_password(uid ? stored : dummy, password);
	r->db = db_pool_acquire(r->hub->pool);
	if (v == AUTH_BUSY) {
		guard_result(r, email, -1);
		*retry_ms = PW_BUSY_RETRY_S * 1000;
		return AUTH_BUSY;
	}
	bool ok = v == 1 && uid;
	guard_result(r, email, ok ? 1 : 0);
	return ok ? uid : 0;
}

int auth_store_session(struct db *db, int64_t uid, const char *token_hash, const char *client)
{
	int64_t now = now_ms();
	return db_run(db,
	              "INSERT INTO tokens(user_id, kind, name, token_hash, created_at, expires_at) "
	              "VALUES(?, 'session', ?, ?, ?, ?)",
	              uid, client, token_hash, now, now + session_lifetime_ms);
}

enum MHD_Result api_login(struct req *r)
{
	const char *email = json_get_str(r->json, "email");
	const char *password = json_get_str(r->json, "password");
	if (!email || !password || !*email || strlen(email) > 320 || strlen(password) > 1024)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "email and password (strings) are required");

	int64_t retry_ms = 0;
	int64_t uid = auth_check_password(r, email, password, &retry_ms);
	if (uid == AUTH_DB_ERROR)
		return reply_db_error(r);
	if (uid < 0)
		return auth_reply_retry(r, uid, retry_ms);
	bool ok = uid > 0;
	if (!ok) {
		meta_audit(r, "login.failed", email, NULL);
		return reply_error(r, MHD_HTTP_UNAUTHORIZED, "invalid_credentials",
		                   "wrong email or password");
	}
	const char *client = json_get_str(r->json, "client");
	if (client && strlen(client) > 100)
		client = NULL;
	/* With a second factor the password only earns a challenge (account.c). */
	int on = account_totp_enabled(r->db, uid);
	if (on < 0)
		return reply_db_error(r);
	if (on)
		return account_login_challenge(r, uid, email, client);
	return auth_new_session(r, uid, email, client);
}

enum MHD_Result auth_new_session(struct req *r, int64_t uid, const char *email, const char *client)
{
	char tok[64], h[65];
	auth_new_token(tok, h);
	int64_t now = now_ms();
	if (auth_store_session(r->db, uid, h, client ? client : "cli") != DB_DONE)
		return reply_db_error(r);
	r->user_id = uid;
	meta_audit(r, "login", email, NULL);
	return reply_session(r,
	                     json_pack("{s:s, s:I, s:{s:I, s:s}}", "token", tok, "expires_at",
	                               (json_int_t)(now + session_lifetime_ms), "user", "id",
	                               (json_int_t)uid, "email", email),
	                     tok, now + session_lifetime_ms);
}

enum MHD_Result api_logout(struct req *r)
{
	if (db_run(r->db, "UPDATE tokens SET revoked_at = ? WHERE id = ?", now_ms(), r->token_id) !=
	    DB_DONE)
		return reply_db_error(r);
	return reply_session(r, json_pack("{s:b}", "ok", 1), NULL, 0);
}

enum MHD_Result api_me(struct req *r)
{
	struct db_stmt *st = db_query(
	    r->db, "SELECT email, name, totp_enabled_at FROM users WHERE id = ?", r->user_id);
	if (!st || db_step(st) != DB_ROW) {
		db_finalize(st);
		return reply_db_error(r);
	}
	json_t *o = json_pack("{s:I, s:s, s:s?, s:b}", "id", (json_int_t)r->user_id, "email",
	                      db_col_text(st, 0), "name", db_col_text(st, 1), "totp",
	                      !db_col_is_null(st, 2));
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
	             r->user_id, now) != DB_ROW)
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
	                              r->user_id, now_ms());
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

/* End the caller's own credential params[0] of kind ('api' or 'session'):
 * 404 if it is not theirs, not that kind, or ended already. */
static enum MHD_Result revoke_own_token(struct req *r, const char *kind, const char *what,
                                        const char *action)
{
	int64_t id = parse_id(r->params[0]), one = 0;
	int rc = id > 0 ? db_int64(r->db, &one,
	                           "UPDATE tokens SET revoked_at = ? WHERE id = ? AND user_id = ? "
	                           "AND kind = ? AND revoked_at IS NULL RETURNING 1",
	                           now_ms(), id, r->user_id, kind)
	                : DB_DONE;
	if (rc == DB_ERR)
		return reply_db_error(r);
	if (rc != DB_ROW)
		return reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such %s", what);
	char target[32];
	snprintf(target, sizeof target, "%lld", (long long)id);
	meta_audit(r, action, target, NULL);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", "revoked", 1));
}

enum MHD_Result api_app_token_revoke(struct req *r)
{
	return revoke_own_token(r, "api", "app password", "token.revoke");
}

/* ---- sessions and the password ----
 *
 * A session is a login's token (kind 'session'): the CLI's, a browser's, an
 * invite's. A user sees theirs and ends any of them; changing the password
 * ends every other credential it could have been used to make. */

enum MHD_Result api_sessions(struct req *r)
{
	struct db_stmt *st =
	    db_query(r->db,
	             "SELECT id, name, created_at, expires_at, last_used_at FROM "
	             "tokens WHERE user_id = ? AND kind = 'session' AND revoked_at "
	             "IS NULL AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
	             r->user_id, now_ms());
	if (!st)
		return reply_db_error(r);
	json_t *arr = json_array();
	while (db_step(st) == DB_ROW) {
		int64_t id = db_col_int64(st, 0);
		json_t *o =
		    json_pack("{s:I, s:s, s:I, s:b}", "id", (json_int_t)id, "client",
		              db_col_text(st, 1) ? db_col_text(st, 1) : "", "created_at",
		              (json_int_t)db_col_int64(st, 2), "current", id == r->token_id);
		if (!db_col_is_null(st, 3))
			json_object_set_new(o, "expires_at", json_integer(db_col_int64(st, 3)));
		if (!db_col_is_null(st, 4))
			json_object_set_new(o, "last_used_at", json_integer(db_col_int64(st, 4)));
		json_array_append_new(arr, o);
	}
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "sessions", arr));
}

enum MHD_Result api_session_revoke(struct req *r)
{
	return revoke_own_token(r, "session", "session", "session.revoke");
}

#define PASSWORD_MIN 8 /* as for a new account (invite accept) */

/* POST /api/v1/password {old, new}: a session's own; every other session and
 * app password of the user ends. */
enum MHD_Result api_password_change(struct req *r)
{
	const char *old = json_get_str(r->json, "old");
	const char *new = json_get_str(r->json, "new");
	if (!old || !new || strlen(old) > 1024 || strlen(new) > 1024)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "old and new (strings) are required");
	if (strlen(new) < PASSWORD_MIN)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "weak_password",
		                   "the password must be at least %d characters", PASSWORD_MIN);
	char email[330] = "";
	struct db_stmt *st = db_query(r->db, "SELECT email FROM users WHERE id = ?", r->user_id);
	if (st && db_step(st) == DB_ROW)
		snprintf(email, sizeof email, "%s", db_col_text(st, 0));
	db_finalize(st);
	if (!*email)
		return reply_db_error(r);
	int64_t retry_ms = 0, uid = auth_check_password(r, email, old, &retry_ms);
	if (uid == AUTH_DB_ERROR)
		return reply_db_error(r);
	if (uid < 0)
		return auth_reply_retry(r, uid, retry_ms);
	if (uid != r->user_id) {
		meta_audit(r, "password.change_failed", email, NULL);
		return reply_error(r, MHD_HTTP_FORBIDDEN, "invalid_credentials",
		                   "the old password is wrong");
	}
	char hash[128];
	db_pool_release(r->hub->pool, r->db); /* argon2id without a connection */
	r->db = NULL;
	int hrc = auth_hash_password(new, hash);
	r->db = db_pool_acquire(r->hub->pool);
	if (hrc == AUTH_BUSY)
		return auth_reply_retry(r, AUTH_BUSY, AUTH_BUSY_RETRY_MS);
	int64_t ended = 0;
	if (hrc != 0 || db_begin(r->db) != DB_DONE)
		return reply_db_error(r);
	if (db_run(r->db, "UPDATE users SET password_hash = ? WHERE id = ?", hash, r->user_id) !=
	        DB_DONE ||
	    db_int64(r->db, &ended,
	             "SELECT COUNT(*) FROM tokens WHERE user_id = ? AND kind IN ('session','api') "
	             "AND revoked_at IS NULL AND id <> ?",
	             r->user_id, r->token_id) != DB_ROW ||
	    db_run(r->db,
	           "UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND kind IN "
	           "('session','api') AND revoked_at IS NULL AND id <> ?",
	           now_ms(), r->user_id, r->token_id) != DB_DONE ||
	    meta_audit(r, "password.change", email,
	               json_pack("{s:I}", "revoked", (json_int_t)ended)) != 0 ||
	    db_commit(r->db) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:b, s:I}", "changed", 1, "revoked", (json_int_t)ended));
}
