/* account: a TOTP second factor, recovery codes, the login's second step,
 * display names, a workspace's require_2fa, and administrators' one-use
 * password-reset links (account.h, docs/accounts.md). */
#include "hub.h"
#include "account.h"
#include "auth.h"
#include "guard.h"
#include "init.h"
#include "meta.h"
#include "members.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/totp.h"
#include "../core/util.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOTP_SKEW      1  /* steps either side of now a code may come from */
#define RECOVERY_CHARS 10 /* base32 characters of a recovery code (50 bits) */
#define NAME_MAX_BYTES 100

/* ---- codes ---- */

int account_totp_enabled(struct db *db, int64_t uid)
{
	int64_t on = 0;
	int rc = db_int64(db, &on,
	                  "SELECT COUNT(*) FROM users WHERE id = ? AND "
	                  "totp_enabled_at IS NOT NULL",
	                  uid);
	return rc == DB_ROW ? on > 0 : -1;
}

/* The guard's account key for second-factor guesses: apart from the
 * password's, so a right password does not reset a code's delays. */
static char *guard_key(const char *email)
{
	return xasprintf("2fa:%s", email);
}

/* Lower case, without '-' and spaces; false unless RECOVERY_CHARS base32. */
static bool recovery_normalize(const char *in, char out[RECOVERY_CHARS + 1])
{
	size_t n = 0;
	for (; *in; in++) {
		if (*in == '-' || *in == ' ')
			continue;
		char ch = (char)tolower((unsigned char)*in);
		if (n >= RECOVERY_CHARS || !((ch >= 'a' && ch <= 'z') || (ch >= '2' && ch <= '7')))
			return false;
		out[n++] = ch;
	}
	out[n] = 0;
	return n == RECOVERY_CHARS;
}

static void recovery_hash(const char *norm, char hash[65])
{
	char *salted = xasprintf("roost-recovery:%s", norm);
	hash_hex(salted, strlen(salted), hash);
	free(salted);
}

/* A TOTP code against uid's secret (pending or in force): 1 accepted (its
 * step spent), 0 no, <0 database error. */
static int check_totp(struct db *db, int64_t uid, int64_t code)
{
	char secret[80] = "";
	int64_t last = 0;
	struct db_stmt *st =
	    db_query(db, "SELECT totp_secret, totp_last_step FROM users WHERE id = ?", uid);
	if (!st)
		return -1;
	if (db_step(st) == DB_ROW && !db_col_is_null(st, 0)) {
		snprintf(secret, sizeof secret, "%s", db_col_text(st, 0));
		last = db_col_int64(st, 1);
	}
	db_finalize(st);
	unsigned char key[64];
	int klen = *secret ? totp_base32_decode(secret, key, sizeof key) : -1;
	if (klen <= 0)
		return 0;
	int64_t now = now_ms() / 1000 / TOTP_STEP_S;
	int ok = 0;
	for (int64_t s = now - TOTP_SKEW; s <= now + TOTP_SKEW && !ok; s++) {
		if (s <= last || totp_code(key, (size_t)klen, s) != (uint32_t)code)
			continue;
		/* Spend the step (and every one before it): the same code, or an
		 * older one, is refused from now on, also by a racing request. */
		int64_t one = 0;
		int rc = db_int64(db, &one,
		                  "UPDATE users SET totp_last_step = ? WHERE id = ? AND "
		                  "totp_last_step < ? RETURNING 1",
		                  s, uid, s);
		if (rc == DB_ERR)
			ok = -1;
		else
			ok = rc == DB_ROW;
		break;
	}
	sodium_memzero(key, sizeof key);
	return ok;
}

static int check_recovery(struct db *db, int64_t uid, const char *code)
{
	char norm[RECOVERY_CHARS + 1], h[65];
	if (!recovery_normalize(code, norm))
		return 0;
	recovery_hash(norm, h);
	int64_t one = 0;
	int rc = db_int64(db, &one,
	                  "UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND "
	                  "code_hash = ? AND used_at IS NULL RETURNING 1",
	                  now_ms(), uid, h);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

int account_check_code(struct req *r, int64_t uid, const char *email, const char *code,
                       int64_t *retry_ms)
{
	char *key = guard_key(email);
	*retry_ms = guard_admit(r, key);
	if (*retry_ms > 0) {
		free(key);
		return AUTH_THROTTLED;
	}
	int64_t digits = totp_parse_code(code);
	int ok = digits >= 0 ? check_totp(r->db, uid, digits) : check_recovery(r->db, uid, code);
	guard_result(r, key, ok < 0 ? -1 : ok);
	free(key);
	return ok < 0 ? AUTH_DB_ERROR : ok;
}

/* Reply for a refused code: throttled, a database error, or wrong. */
static enum MHD_Result reply_code_refused(struct req *r, int rc, int64_t retry_ms)
{
	if (rc == AUTH_THROTTLED)
		return reply_retry(r, MHD_HTTP_TOO_MANY_REQUESTS, "too_many_attempts",
		                   "too many wrong codes; retry after Retry-After seconds",
		                   retry_ms);
	if (rc < 0)
		return reply_db_error(r);
	return reply_error(r, MHD_HTTP_UNAUTHORIZED, "invalid_code",
	                   "wrong code, or one already used: give the current six digits "
	                   "of your authenticator app, or an unused recovery code");
}

int account_second_factor(struct req *r, int64_t uid, const char *email, const char *code)
{
	int on = account_totp_enabled(r->db, uid);
	if (on == 0)
		return 0;
	if (on < 0) {
		reply_db_error(r);
		return 1;
	}
	if (!code || strlen(code) > 64) {
		reply_error(r, MHD_HTTP_UNAUTHORIZED, "totp_required",
		            "this account uses two-factor authentication: give its code as well");
		return 1;
	}
	int64_t retry_ms = 0;
	int ok = account_check_code(r, uid, email, code, &retry_ms);
	if (ok == 1)
		return 0;
	reply_code_refused(r, ok, retry_ms);
	return 1;
}

static bool user_email(struct db *db, int64_t uid, char email[330])
{
	email[0] = 0;
	struct db_stmt *st = db_query(db, "SELECT email FROM users WHERE id = ?", uid);
	if (st && db_step(st) == DB_ROW)
		snprintf(email, 330, "%s", db_col_text(st, 0));
	db_finalize(st);
	return email[0] != 0;
}

/* ---- the login's second step ---- */

/* A one-use link of kind for uid: its token into tok; DB_DONE or an error. */
static int link_issue(struct db *db, const char *kind, int64_t uid, int64_t by, int64_t ttl_ms,
                      char tok[64])
{
	char h[65];
	auth_new_token(tok, h);
	int64_t now = now_ms();
	struct db_stmt *st = db_prepare(db, "INSERT INTO account_links(user_id, kind, token_hash, "
	                                    "created_by, created_at, expires_at) "
	                                    "VALUES(?,?,?,?,?,?)");
	if (!st)
		return DB_ERR;
	db_bind_int64(st, 1, uid);
	db_bind_text(st, 2, kind);
	db_bind_text(st, 3, h);
	if (by)
		db_bind_int64(st, 4, by);
	else
		db_bind_null(st, 4);
	db_bind_int64(st, 5, now);
	db_bind_int64(st, 6, now + ttl_ms);
	int rc = db_step(st);
	db_finalize(st);
	return rc;
}

enum link_state { LINK_NONE, LINK_USED, LINK_EXPIRED, LINK_OK, LINK_DB_ERR };

/* Look a link's token up: its state, and its row and user. */
static enum link_state link_find(struct db *db, const char *kind, const char *tok, int64_t *id,
                                 int64_t *uid, int64_t *expires)
{
	if (!tok || strlen(tok) > 200)
		return LINK_NONE;
	char h[65];
	auth_token_hash(tok, h);
	struct db_stmt *st = db_query(db,
	                              "SELECT id, user_id, expires_at, used_at FROM account_links "
	                              "WHERE token_hash = ? AND kind = ?",
	                              h, kind);
	if (!st)
		return LINK_DB_ERR;
	enum link_state s = LINK_NONE;
	if (db_step(st) == DB_ROW) {
		*id = db_col_int64(st, 0);
		*uid = db_col_int64(st, 1);
		*expires = db_col_int64(st, 2);
		s = !db_col_is_null(st, 3) ? LINK_USED
		    : *expires <= now_ms() ? LINK_EXPIRED
		                           : LINK_OK;
	}
	db_finalize(st);
	return s;
}

/* Spend link id: 1 done, 0 someone spent it first, <0 database error. */
static int link_spend(struct db *db, int64_t id)
{
	int64_t one = 0;
	int rc = db_int64(db, &one,
	                  "UPDATE account_links SET used_at = ? WHERE id = ? AND used_at IS NULL "
	                  "RETURNING 1",
	                  now_ms(), id);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

enum MHD_Result account_login_challenge(struct req *r, int64_t uid, const char *email,
                                        const char *client)
{
	(void)client; /* the second step names its client again */
	char tok[64];
	if (link_issue(r->db, "login", uid, 0, LOGIN_CHALLENGE_MS, tok) != DB_DONE)
		return reply_db_error(r);
	r->user_id = uid;
	meta_audit(r, "login.password_ok", email, json_pack("{s:s}", "next", "totp"));
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:b, s:s, s:I}", "totp_required", 1, "challenge", tok,
	                            "expires_at", (json_int_t)(now_ms() + LOGIN_CHALLENGE_MS)));
}

/* POST /api/v1/login/totp {challenge, code, client?}: no bearer token. */
enum MHD_Result api_login_totp(struct req *r)
{
	const char *chal = json_get_str(r->json, "challenge");
	const char *code = json_get_str(r->json, "code");
	const char *client = json_get_str(r->json, "client");
	if (!chal || !code || strlen(code) > 64)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "challenge and code (strings) are required");
	if (client && strlen(client) > 100)
		client = NULL;
	int64_t id = 0, uid = 0, exp = 0;
	enum link_state s = link_find(r->db, "login", chal, &id, &uid, &exp);
	if (s == LINK_DB_ERR)
		return reply_db_error(r);
	if (s != LINK_OK)
		return reply_error(r, MHD_HTTP_UNAUTHORIZED, "challenge_invalid",
		                   "this login is over (it expired after %lld minutes, or was "
		                   "used); log in again with your password",
		                   LOGIN_CHALLENGE_MS / 60000);
	char email[330];
	if (!user_email(r->db, uid, email))
		return reply_db_error(r);
	int64_t retry_ms = 0;
	int ok = account_check_code(r, uid, email, code, &retry_ms);
	if (ok != 1) {
		if (ok == 0) {
			r->user_id = uid;
			meta_audit(r, "login.failed", email, json_pack("{s:s}", "via", "totp"));
		}
		return reply_code_refused(r, ok, retry_ms);
	}
	int spent = link_spend(r->db, id);
	if (spent < 0)
		return reply_db_error(r);
	if (spent == 0)
		return reply_error(r, MHD_HTTP_UNAUTHORIZED, "challenge_invalid",
		                   "this login was completed already; log in again");
	return auth_new_session(r, uid, email, client);
}

/* ---- enrolment ---- */

/* GET /api/v1/2fa: {enabled, pending, recovery_codes_left}. */
enum MHD_Result api_totp_status(struct req *r)
{
	int64_t left = 0;
	struct db_stmt *st =
	    db_query(r->db,
	             "SELECT totp_enabled_at, CASE WHEN totp_secret IS NULL THEN 0 ELSE 1 END FROM "
	             "users WHERE id = ?",
	             r->user_id);
	if (!st || db_step(st) != DB_ROW) {
		db_finalize(st);
		return reply_db_error(r);
	}
	bool on = !db_col_is_null(st, 0), pending = !on && db_col_int64(st, 1);
	int64_t since = on ? db_col_int64(st, 0) : 0;
	db_finalize(st);
	if (db_int64(r->db, &left,
	             "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL",
	             r->user_id) != DB_ROW)
		return reply_db_error(r);
	json_t *o = json_pack("{s:b, s:b, s:I}", "enabled", on, "pending", pending,
	                      "recovery_codes_left", (json_int_t)left);
	if (on)
		json_object_set_new(o, "enabled_at", json_integer(since));
	return reply_json(r, MHD_HTTP_OK, o);
}

/* Percent-encode s for an otpauth:// label or parameter. New string. */
static char *uri_escape(const char *s)
{
	size_t n = strlen(s);
	char *out = xmalloc(n * 3 + 1), *o = out;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '.' || c == '_' || c == '-' || c == '~')
			*o++ = (char)c;
		else
			o += sprintf(o, "%%%02X", c);
	}
	*o = 0;
	return out;
}

/* POST /api/v1/2fa/setup: a new secret, pending until /2fa/enable confirms
 * a first code; starting again replaces a pending secret. */
enum MHD_Result api_totp_setup(struct req *r)
{
	char email[330];
	if (!user_email(r->db, r->user_id, email))
		return reply_db_error(r);
	unsigned char key[TOTP_SECRET_LEN];
	char secret[64];
	randombytes_buf(key, sizeof key);
	totp_base32_encode(key, sizeof key, secret, sizeof secret);
	sodium_memzero(key, sizeof key);
	int64_t one = 0;
	int rc = db_int64(r->db, &one,
	                  "UPDATE users SET totp_secret = ?, totp_last_step = 0 WHERE id = ? AND "
	                  "totp_enabled_at IS NULL RETURNING 1",
	                  secret, r->user_id);
	if (rc == DB_ERR)
		return reply_db_error(r);
	if (rc != DB_ROW)
		return reply_error(r, MHD_HTTP_CONFLICT, "totp_enabled",
		                   "two-factor authentication is on already; disable it first to "
		                   "enrol a new device");
	char *label = uri_escape(email);
	char *uri = xasprintf("otpauth://totp/roost:%s?secret=%s&issuer=roost&algorithm=SHA1&"
	                      "digits=%d&period=%d",
	                      label, secret, TOTP_DIGITS, TOTP_STEP_S);
	free(label);
	json_t *o = json_pack("{s:s, s:s, s:i, s:i}", "secret", secret, "uri", uri, "digits",
	                      TOTP_DIGITS, "period", TOTP_STEP_S);
	free(uri);
	return reply_json(r, MHD_HTTP_OK, o);
}

/* POST /api/v1/2fa/enable {code}: the first code confirms the pending
 * secret; ten recovery codes are made (shown this once), and every other
 * session and app password ends: from now on only those made after the
 * second factor reach the account. */
enum MHD_Result api_totp_enable(struct req *r)
{
	const char *code = json_get_str(r->json, "code");
	if (!code || totp_parse_code(code) < 0)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "code: the six digits your authenticator app shows");
	char email[330];
	int64_t pending = 0;
	if (!user_email(r->db, r->user_id, email) ||
	    db_int64(r->db, &pending,
	             "SELECT COUNT(*) FROM users WHERE id = ? AND totp_secret IS NOT NULL AND "
	             "totp_enabled_at IS NULL",
	             r->user_id) != DB_ROW)
		return reply_db_error(r);
	if (!pending)
		return reply_error(
		    r, MHD_HTTP_CONFLICT, "no_enrolment",
		    "nothing to confirm: start with POST /api/v1/2fa/setup (roost 2fa "
		    "enable), or two-factor authentication is on already");
	int64_t retry_ms = 0;
	int ok = account_check_code(r, r->user_id, email, code, &retry_ms);
	if (ok != 1)
		return reply_code_refused(r, ok, retry_ms);
	json_t *codes = json_array();
	int64_t now = now_ms(), ended = 0;
	int rc = db_begin(r->db) == DB_DONE &&
	                 db_run(r->db, "UPDATE users SET totp_enabled_at = ? WHERE id = ?", now,
	                        r->user_id) == DB_DONE &&
	                 db_run(r->db, "DELETE FROM recovery_codes WHERE user_id = ?",
	                        r->user_id) == DB_DONE
	             ? DB_DONE
	             : DB_ERR;
	for (int i = 0; i < RECOVERY_CODES && rc == DB_DONE; i++) {
		unsigned char raw[8];
		char b[32], shown[16], h[65];
		randombytes_buf(raw, sizeof raw);
		totp_base32_encode(raw, sizeof raw, b, sizeof b);
		for (char *p = b; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		b[RECOVERY_CHARS] = 0;
		snprintf(shown, sizeof shown, "%.5s-%.5s", b, b + 5);
		recovery_hash(b, h);
		rc = db_run(
		    r->db,
		    "INSERT INTO recovery_codes(user_id, code_hash, created_at) VALUES(?,?,?)",
		    r->user_id, h, now);
		json_array_append_new(codes, json_string(shown));
	}
	if (rc != DB_DONE ||
	    db_int64(r->db, &ended,
	             "SELECT COUNT(*) FROM tokens WHERE user_id = ? AND kind IN ('session','api') "
	             "AND revoked_at IS NULL AND id <> ?",
	             r->user_id, r->token_id) != DB_ROW ||
	    db_run(r->db,
	           "UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND kind IN "
	           "('session','api') AND revoked_at IS NULL AND id <> ?",
	           now, r->user_id, r->token_id) != DB_DONE ||
	    meta_audit(r, "2fa.enable", email, json_pack("{s:I}", "revoked", (json_int_t)ended)) !=
	        0 ||
	    db_commit(r->db) != DB_DONE) {
		db_rollback(r->db);
		json_decref(codes);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:b, s:o, s:I}", "enabled", 1, "recovery_codes", codes,
	                            "revoked", (json_int_t)ended));
}

/* POST /api/v1/2fa/disable {code} or {password}. */
enum MHD_Result api_totp_disable(struct req *r)
{
	const char *code = json_get_str(r->json, "code");
	const char *pw = json_get_str(r->json, "password");
	if ((!code && !pw) || (code && strlen(code) > 64) || (pw && strlen(pw) > 1024))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "give code (six digits or a recovery code) or password");
	char email[330];
	if (!user_email(r->db, r->user_id, email))
		return reply_db_error(r);
	int on = account_totp_enabled(r->db, r->user_id);
	if (on < 0)
		return reply_db_error(r);
	if (!on) {
		/* Abandon a pending enrolment, if any. */
		if (db_run(r->db, "UPDATE users SET totp_secret = NULL WHERE id = ?", r->user_id) !=
		    DB_DONE)
			return reply_db_error(r);
		return reply_error(r, MHD_HTTP_CONFLICT, "totp_not_enabled",
		                   "two-factor authentication is not on");
	}
	int64_t retry_ms = 0;
	if (code) {
		int ok = account_check_code(r, r->user_id, email, code, &retry_ms);
		if (ok != 1)
			return reply_code_refused(r, ok, retry_ms);
	} else {
		int64_t uid = auth_check_password(r, email, pw, &retry_ms);
		if (uid == AUTH_DB_ERROR)
			return reply_db_error(r);
		if (uid < 0)
			return auth_reply_retry(r, uid, retry_ms);
		if (uid != r->user_id)
			return reply_error(r, MHD_HTTP_FORBIDDEN, "invalid_credentials",
			                   "the password is wrong");
	}
	if (db_begin(r->db) != DB_DONE ||
	    db_run(r->db,
	           "UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL WHERE id = ?",
	           r->user_id) != DB_DONE ||
	    db_run(r->db, "DELETE FROM recovery_codes WHERE user_id = ?", r->user_id) != DB_DONE ||
	    meta_audit(r, "2fa.disable", email, NULL) != 0 || db_commit(r->db) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", "enabled", 0));
}

/* ---- require_2fa ---- */

int account_require_2fa(struct req *r)
{
	if (r->host_id)
		return 0; /* a host acts for the admin who enrolled it, not as a person */
	int64_t missing = 0;
	int rc = db_int64(r->db, &missing,
	                  "SELECT COUNT(*) FROM workspaces w, users u WHERE w.id = ? AND "
	                  "u.id = ? AND w.require_2fa <> 0 AND u.totp_enabled_at IS NULL",
	                  r->ws_id, r->user_id);
	if (rc != DB_ROW) {
		reply_db_error(r);
		return -1;
	}
	if (!missing)
		return 0;
	reply_error(r, MHD_HTTP_FORBIDDEN, "2fa_required",
	            "this workspace requires two-factor authentication: turn it on first "
	            "('roost 2fa enable', or Account in the dashboard)");
	return 1;
}

/* GET /workspaces/{id}/security: {require_2fa}, for any member. */
enum MHD_Result api_ws_security_get(struct req *r)
{
	int64_t req2 = 0;
	if (db_int64(r->db, &req2, "SELECT require_2fa FROM workspaces WHERE id = ?", r->ws_id) !=
	    DB_ROW)
		return reply_db_error(r);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", "require_2fa", req2 != 0));
}

/* PUT /workspaces/{id}/security {require_2fa: bool}: owners; an owner
 * without a second factor cannot require one (it would lock them out). */
enum MHD_Result api_ws_security_set(struct req *r)
{
	json_t *v = json_object_get(r->json, "require_2fa");
	if (!json_is_boolean(v))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "require_2fa (true or false) is required");
	if (r->role != ROLE_OWNER)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "only owners decide whether the workspace requires 2FA");
	bool on = json_is_true(v);
	int mine = account_totp_enabled(r->db, r->user_id);
	if (mine < 0)
		return reply_db_error(r);
	if (on && !mine)
		return reply_error(r, MHD_HTTP_CONFLICT, "enrol_first",
		                   "turn on two-factor authentication for your own account first "
		                   "('roost 2fa enable')");
	if (meta_begin(r->db, r->ws_id) != DB_DONE ||
	    db_run(r->db, "UPDATE workspaces SET require_2fa = ? WHERE id = ?", (int64_t)on,
	           r->ws_id) != DB_DONE ||
	    meta_audit(r, "workspace.require_2fa", on ? "on" : "off", NULL) != 0 ||
	    meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", "require_2fa", on));
}

/* ---- display names ---- */

/* PATCH /api/v1/me {name}: "" removes it. */
enum MHD_Result api_me_update(struct req *r)
{
	json_t *jn = json_object_get(r->json, "name");
	const char *name = json_get_str(r->json, "name");
	bool ok = name && strlen(name) <= NAME_MAX_BYTES;
	for (const unsigned char *p = (const unsigned char *)name; ok && *p; p++)
		ok = *p >= 0x20 && *p != 0x7f && *p != '<' && *p != '>';
	if (!jn || !ok)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_name",
		                   "name: at most %d bytes of text, without control characters, "
		                   "'<' or '>' (\"\" removes it)",
		                   NAME_MAX_BYTES);
	/* Leading and trailing spaces are not part of a name. */
	while (*name == ' ')
		name++;
	char *trimmed = xstrdup(name);
	size_t n = strlen(trimmed);
	while (n && trimmed[n - 1] == ' ')
		trimmed[--n] = 0;
	struct db_stmt *st = db_prepare(r->db, "UPDATE users SET name = ? WHERE id = ?");
	int rc = DB_ERR;
	if (st) {
		if (n)
			db_bind_text(st, 1, trimmed);
		else
			db_bind_null(st, 1);
		db_bind_int64(st, 2, r->user_id);
		rc = db_step(st);
		db_finalize(st);
	}
	if (rc != DB_DONE || meta_audit(r, "account.name", n ? trimmed : "", NULL) != 0) {
		free(trimmed);
		return reply_db_error(r);
	}
	enum MHD_Result ret =
	    reply_json(r, MHD_HTTP_OK, json_pack("{s:s?}", "name", n ? trimmed : NULL));
	free(trimmed);
	return ret;
}

/* ---- password reset links ---- */

int account_reset_issue(struct db *db, int64_t uid, int64_t admin_uid, int64_t ttl_s, char tok[64])
{
	/* One live link per user: a new one replaces the last. */
	if (db_run(db,
	           "UPDATE account_links SET used_at = ? WHERE user_id = ? AND kind = 'reset' "
	           "AND used_at IS NULL",
	           now_ms(), uid) != DB_DONE)
		return DB_ERR;
	return link_issue(db, "reset", uid, admin_uid, ttl_s * 1000, tok);
}

#define RANK_SQL(t) "CASE " t ".role WHEN 'owner' THEN 3 WHEN 'admin' THEN 2 ELSE 1 END"

/* POST /workspaces/{id}/members/{user}/reset-link {expires_in?}: an owner or
 * admin, for a member who belongs to no workspace the caller does not manage
 * at their rank or above (else the link would open doors the caller has
 * not got). The hub's operator resets anyone: roost admin reset-password. */
enum MHD_Result api_member_reset_link(struct req *r)
{
	int64_t ttl = RESET_TTL_DEFAULT_S;
	if (json_object_get(r->json, "expires_in") &&
	    (!json_get_int(r->json, "expires_in", &ttl) || ttl < 60 || ttl > RESET_TTL_MAX_S))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "expires_in is a number of seconds, 60 to %lld (30 days)",
		                   RESET_TTL_MAX_S);
	if (r->role < ROLE_ADMIN)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "only owners and admins issue password reset links");
	int64_t uid = parse_id(r->params[1]), beyond = 0;
	if (uid <= 0 || auth_role(r->db, r->ws_id, uid) == ROLE_NONE)
		return reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such member");
	if (uid == r->user_id)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "own_account",
		                   "change your own password with roost passwd (or Account in "
		                   "the dashboard)");
	if (db_int64(r->db, &beyond,
	             "SELECT COUNT(*) FROM memberships t LEFT JOIN memberships c ON "
	             "c.workspace_id = t.workspace_id AND c.user_id = ? WHERE t.user_id = ? AND "
	             "(c.user_id IS NULL OR " RANK_SQL("c") " < 2 OR " RANK_SQL("c") " < " RANK_SQL(
	                 "t") ")",
	             r->user_id, uid) != DB_ROW)
		return reply_db_error(r);
	if (beyond)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "you cannot reset this member's password: they outrank you, or "
		                   "belong where you are not an owner or admin; the hub's operator "
		                   "can (roost admin reset-password)");
	char tok[64], email[330];
	if (!user_email(r->db, uid, email) || db_begin(r->db) != DB_DONE ||
	    account_reset_issue(r->db, uid, r->user_id, ttl, tok) != DB_DONE ||
	    meta_audit(r, "password.reset_link", email, NULL) != 0 || db_commit(r->db) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	char *url = hub_link(r, "reset", tok);
	json_t *o = json_pack("{s:s, s:s, s:I}", "url", url, "email", email, "expires_at",
	                      (json_int_t)(now_ms() + ttl * 1000));
	free(url);
	return reply_json(r, MHD_HTTP_CREATED, o);
}

/* A reset link's state as an error reply; LINK_OK replies nothing. */
static enum MHD_Result reply_link_state(struct req *r, enum link_state s)
{
	switch (s) {
	case LINK_DB_ERR:
		return reply_db_error(r);
	case LINK_USED:
		return reply_error(r, MHD_HTTP_GONE, "reset_used",
		                   "this reset link was used already (or replaced by a newer "
		                   "one); ask your administrator for a new one");
	case LINK_EXPIRED:
		return reply_error(r, MHD_HTTP_GONE, "reset_expired",
		                   "this reset link has expired; ask your administrator for a new "
		                   "one");
	default:
		return reply_error(r, MHD_HTTP_NOT_FOUND, "reset_invalid",
		                   "this is not a valid reset link; check it was copied whole");
	}
}

/* Throttled per client like password guesses: a link is 256 random bits,
 * but a client trying many pays for it. 0 go on, else replied. */
static int reset_admit(struct req *r)
{
	int64_t wait = guard_admit(r, NULL);
	if (wait <= 0)
		return 0;
	auth_reply_retry(r, AUTH_THROTTLED, wait);
	return 1;
}

/* GET /api/v1/password/reset/{token}: whose link it is, for the page. */
enum MHD_Result api_reset_peek(struct req *r)
{
	if (reset_admit(r))
		return MHD_YES;
	int64_t id = 0, uid = 0, exp = 0;
	enum link_state s = link_find(r->db, "reset", r->params[0], &id, &uid, &exp);
	guard_result(r, NULL, s == LINK_NONE ? 0 : -1);
	char email[330];
	if (s != LINK_OK)
		return reply_link_state(r, s);
	if (!user_email(r->db, uid, email))
		return reply_db_error(r);
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:s, s:I}", "email", email, "expires_at", (json_int_t)exp));
}

/* POST /api/v1/password/reset {token, password}: the new password; every
 * session and app password of the user ends. A second factor stays. */
enum MHD_Result api_reset_password(struct req *r)
{
	const char *tok = json_get_str(r->json, "token");
	const char *pw = json_get_str(r->json, "password");
	if (!tok || !pw || strlen(pw) > 1024)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "token and password (strings) are required");
	if (reset_admit(r))
		return MHD_YES;
	int64_t id = 0, uid = 0, exp = 0;
	enum link_state s = link_find(r->db, "reset", tok, &id, &uid, &exp);
	guard_result(r, NULL, s == LINK_NONE ? 0 : -1);
	if (s != LINK_OK)
		return reply_link_state(r, s);
	if (strlen(pw) < 8)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "weak_password",
		                   "the password must be at least 8 characters");
	char email[330], hash[128];
	if (!user_email(r->db, uid, email))
		return reply_db_error(r);
	db_pool_release(r->hub->pool, r->db); /* argon2id without a connection */
	r->db = NULL;
	int hrc = auth_hash_password(pw, hash);
	r->db = db_pool_acquire(r->hub->pool);
	if (hrc == AUTH_BUSY)
		return auth_reply_retry(r, AUTH_BUSY, AUTH_BUSY_RETRY_MS);
	if (hrc != 0 || !r->db || db_begin(r->db) != DB_DONE)
		return reply_db_error(r);
	int spent = link_spend(r->db, id);
	int64_t ended = 0;
	r->user_id = uid;
	if (spent == 0) {
		db_rollback(r->db);
		return reply_link_state(r, LINK_USED);
	}
	if (spent < 0 ||
	    db_run(r->db, "UPDATE users SET password_hash = ? WHERE id = ?", hash, uid) !=
	        DB_DONE ||
	    db_int64(r->db, &ended,
	             "SELECT COUNT(*) FROM tokens WHERE user_id = ? AND kind IN ('session','api') "
	             "AND revoked_at IS NULL",
	             uid) != DB_ROW ||
	    db_run(r->db,
	           "UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND kind IN "
	           "('session','api') AND revoked_at IS NULL",
	           now_ms(), uid) != DB_DONE ||
	    meta_audit(r, "password.reset", email,
	               json_pack("{s:I}", "revoked", (json_int_t)ended)) != 0 ||
	    db_commit(r->db) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	return reply_json(
	    r, MHD_HTTP_OK,
	    json_pack("{s:b, s:s, s:I}", "reset", 1, "email", email, "revoked", (json_int_t)ended));
}

int hub_admin_reset_password(const struct hub_config *cfg, const char *email, int64_t ttl_s)
{
	char *url = hub_db_url(cfg->data_dir, cfg->db_url);
	char *err = NULL;
	struct db *db = db_open(url, &err);
	free(url);
	if (!db) {
		fprintf(stderr, "roost admin reset-password: %s\n", err);
		free(err);
		return 1;
	}
	int rc = 1;
	int64_t uid = 0;
	char tok[64];
	int found = db_migrate(db) == DB_DONE
	                ? db_int64(db, &uid, "SELECT id FROM users WHERE email = ?", email)
	                : DB_ERR;
	if (found == DB_DONE) {
		fprintf(stderr, "roost admin reset-password: no account with the email %s\n",
		        email);
		goto out;
	}
	if (found != DB_ROW || db_begin(db) != DB_DONE ||
	    account_reset_issue(db, uid, 0, ttl_s, tok) != DB_DONE ||
	    db_run(
	        db,
	        "INSERT INTO audit_log(action, target, at, detail) VALUES('password.reset_link', "
	        "?, ?, '{\"by\":\"operator\"}')",
	        email, now_ms()) != DB_DONE ||
	    db_commit(db) != DB_DONE) {
		db_rollback(db);
		fprintf(stderr, "roost admin reset-password: database error: %s\n", db_errmsg(db));
		goto out;
	}
	/* The dashboard as this hub's options say it listens. */
	const char *host = cfg->listen && *cfg->listen ? cfg->listen : "127.0.0.1";
	printf("%s://%s:%d/reset/%s\n", cfg->tls_cert ? "https" : "http", host, cfg->dashboard_port,
	       tok);
	fprintf(stderr,
	        "a one-use link for %s to set a new password, valid %lld %s; using it ends "
	        "every session and app password of the account\n",
	        email, (long long)(ttl_s % 3600 ? ttl_s / 60 : ttl_s / 3600),
	        ttl_s % 3600 ? "minutes" : "hours");
	rc = 0;
out:
	db_close(db);
	return rc;
}
