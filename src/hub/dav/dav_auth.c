/* dav_auth: who a WebDAV request is. HTTP Basic with an app password or the
 * account password (argon2id, remembered briefly), or a bearer token; Basic
 * only over TLS or from this machine. */
#include "dav.h"
#include "../auth.h"
#include "../account.h"
#include "../meta.h"
#include "../guard.h"
#include "../peer.h"
#include "../limits.h"
#include "../../core/path.h"
#include "../../core/util.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

#define AUTH_CACHE_N  64
#define AUTH_CACHE_MS 120000 /* a verified account password, for a mount's next requests */

static struct {
	unsigned char key[crypto_generichash_BYTES];
	unsigned char stamp[crypto_generichash_BYTES]; /* of the password hash it matched */
	int64_t uid, until;
} auth_cache[AUTH_CACHE_N];
static unsigned char cache_secret[crypto_generichash_KEYBYTES];
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

void dav_auth_init(void)
{
	randombytes_buf(cache_secret, sizeof cache_secret);
}

/* The cache is keyed by a keyed hash of the whole header: the password is
 * never kept. An entry holds a hash of the stored password hash it matched
 * and counts only while the user's is still that one: a password changed on
 * any hub ends it at once. */
static void cache_key(const char *authz, unsigned char out[crypto_generichash_BYTES])
{
	crypto_generichash(out, crypto_generichash_BYTES, (const unsigned char *)authz,
	                   strlen(authz), cache_secret, sizeof cache_secret);
}

/* A hash of user uid's stored password hash; false if none. */
static bool password_stamp(struct db *db, int64_t uid, unsigned char out[crypto_generichash_BYTES])
{
	struct db_stmt *st = db_query(db, "SELECT password_hash FROM users WHERE id = ?", uid);
	bool ok = st && db_step(st) == DB_ROW && db_col_text(st, 0);
	if (ok)
		crypto_generichash(out, crypto_generichash_BYTES,
		                   (const unsigned char *)db_col_text(st, 0),
		                   strlen(db_col_text(st, 0)), cache_secret, sizeof cache_secret);
	db_finalize(st);
	return ok;
}

static int64_t cache_get(struct db *db, const unsigned char *key)
{
	int64_t uid = 0, now = now_ms();
	unsigned char stamp[crypto_generichash_BYTES];
	pthread_mutex_lock(&cache_mu);
	for (int i = 0; i < AUTH_CACHE_N; i++)
		if (auth_cache[i].until > now &&
		    sodium_memcmp(auth_cache[i].key, key, crypto_generichash_BYTES) == 0) {
			uid = auth_cache[i].uid;
			memcpy(stamp, auth_cache[i].stamp, sizeof stamp);
		}
	pthread_mutex_unlock(&cache_mu);
	unsigned char now_stamp[crypto_generichash_BYTES];
	if (uid && (!password_stamp(db, uid, now_stamp) ||
	            sodium_memcmp(stamp, now_stamp, sizeof stamp) != 0))
		uid = 0;
	return uid;
}

static void cache_put(struct db *db, const unsigned char *key, int64_t uid)
{
	unsigned char stamp[crypto_generichash_BYTES];
	if (!password_stamp(db, uid, stamp))
		return;
	int64_t now = now_ms();
	pthread_mutex_lock(&cache_mu);
	int slot = 0;
	for (int i = 1; i < AUTH_CACHE_N; i++)
		if (auth_cache[i].until < auth_cache[slot].until)
			slot = i;
	memcpy(auth_cache[slot].key, key, crypto_generichash_BYTES);
	memcpy(auth_cache[slot].stamp, stamp, sizeof stamp);
	auth_cache[slot].uid = uid;
	auth_cache[slot].until = now + AUTH_CACHE_MS;
	pthread_mutex_unlock(&cache_mu);
}

/* An app password of the user: 0 valid, 1 not, -1 database error. Guesses
 * count against the client's address (a token cannot be guessed, but a
 * client trying is not a mount). */
static int basic_app_password(struct req *r, const char *email, const char *pass, int64_t *retry_ms)
{
	*retry_ms = guard_admit(r, NULL);
	if (*retry_ms > 0)
		return AUTH_THROTTLED;
	char h[65];
	auth_token_hash(pass, h);
	struct db_stmt *st =
	    db_query(r->db,
	             "SELECT t.id, t.user_id FROM tokens t JOIN users u ON u.id = t.user_id "
	             "WHERE t.token_hash = ? AND u.email = ? AND t.host_id IS NULL AND "
	             "t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?)",
	             h, email, now_ms());
	int rc = st ? db_step(st) : DB_ERR;
	if (rc == DB_ROW) {
		r->token_id = db_col_int64(st, 0);
		r->user_id = db_col_int64(st, 1);
		r->cred = CRED_APP;
	}
	db_finalize(st);
	guard_result(r, NULL, rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1);
	if (rc == DB_ROW)
		/* at most one write a minute per token */
		db_run(r->db,
		       "UPDATE tokens SET last_used_at = ? WHERE id = ? AND "
		       "(last_used_at IS NULL OR last_used_at < ?)",
		       now_ms(), r->token_id, now_ms() - 60000);
	return rc == DB_ROW ? 0 : rc == DB_DONE ? 1 : -1;
}

/* basic_auth: the password was right, but the account has a second factor. */
#define DAV_AUTH_NEEDS_APP 2
#define NEEDS_APP_TEXT                                                                             \
	"this account uses two-factor authentication: its password alone does not open WebDAV; "   \
	"use your email and an app password (roost token create --name NAME)\n"

/* An app password (an API token of this user) or the account password: 0
 * authenticated, 1 not, or AUTH_DB_ERROR, AUTH_THROTTLED, AUTH_BUSY. */
static int basic_auth(struct req *r, const char *authz, int64_t *retry_ms)
{
	const char *b64 = authz + 6;
	while (*b64 == ' ')
		b64++;
	unsigned char raw[1024];
	size_t n = 0;
	if (strlen(b64) > 1300 || sodium_base642bin(raw, sizeof raw - 1, b64, strlen(b64), NULL, &n,
	                                            NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		return 1;
	raw[n] = 0;
	if (memchr(raw, 0, n))
		return 1;
	char *colon = strchr((char *)raw, ':');
	if (!colon)
		return 1;
	*colon = 0;
	const char *email = (const char *)raw, *pass = colon + 1;
	if (strncmp(pass, "rst_", 4) == 0)
		return basic_app_password(r, email, pass, retry_ms);
	unsigned char key[crypto_generichash_BYTES];
	cache_key(authz, key);
	int64_t uid = cache_get(r->db, key);
	if (!uid) {
		uid = auth_check_password(r, email, pass, retry_ms);
		if (uid <= 0)
			return uid < 0 ? (int)uid : 1;
		cache_put(r->db, key, uid);
	}
	/* The account password alone is not enough once a second factor guards
	 * the account (also for a password cached before): a mount uses an app
	 * password (docs/security.md). */
	int on = account_totp_enabled(r->db, uid);
	if (on != 0)
		return on < 0 ? AUTH_DB_ERROR : DAV_AUTH_NEEDS_APP;
	r->user_id = uid;
	r->cred = CRED_PASSWORD;
	r->token_id = -uid; /* the rate limiter's key for password sessions */
	return 0;
}

static void send_retry(struct req *r, unsigned status, int64_t wait_ms)
{
	char secs[32];
	snprintf(secs, sizeof secs, "%lld", (long long)((wait_ms + 999) / 1000));
	dav_send_full(r, status, NULL, NULL, 0, "Retry-After", secs, NULL, NULL);
}

/* 0: authenticated; else replied. */
int dav_auth(struct req *r)
{
	const char *authz = req_header(r, "Authorization");
	int rc = 1;
	if (authz && strncasecmp(authz, "Basic ", 6) == 0) {
		if (!req_tls(r) && !req_loopback(r)) {
			dav_send_text(
			    r, MHD_HTTP_FORBIDDEN,
			    "Basic authentication needs HTTPS (--tls-cert, or a TLS proxy named "
			    "by --trusted-proxy) unless the client is on this machine; use a "
			    "bearer token or TLS");
			return 1;
		}
		int64_t retry_ms = 0;
		rc = basic_auth(r, authz, &retry_ms);
		if (rc == AUTH_THROTTLED || rc == AUTH_BUSY) {
			send_retry(r,
			           rc == AUTH_BUSY ? MHD_HTTP_SERVICE_UNAVAILABLE
			                           : MHD_HTTP_TOO_MANY_REQUESTS,
			           retry_ms);
			return 1;
		}
		if (rc == DAV_AUTH_NEEDS_APP) {
			dav_send_full(r, MHD_HTTP_UNAUTHORIZED, "text/plain; charset=utf-8",
			              xstrdup(NEEDS_APP_TEXT), strlen(NEEDS_APP_TEXT),
			              "WWW-Authenticate",
			              "Basic realm=\"roost\", charset=\"UTF-8\"", NULL, NULL);
			return 1;
		}
		if (rc > 0) {
			char addr[64];
			r->user_id = 0;
			meta_audit(r, "login.failed", req_client(r, addr),
			           json_pack("{s:s}", "via", "dav"));
		}
	} else if (authz) {
		rc = auth_check_bearer(r->db, authz, &r->user_id, &r->token_id, &r->host_id,
		                       &r->host_ws, &r->cred);
	}
	if (rc < 0) {
		dav_send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE,
		              "the metadata database is unavailable");
		return 1;
	}
	if (rc == 0 && r->host_id) {
		/* A host's commits claim it holds the chunks; a mount does not. */
		dav_send_text(r, MHD_HTTP_FORBIDDEN, "host credentials are not for WebDAV");
		return 1;
	}
	if (rc > 0) {
		dav_send_full(r, MHD_HTTP_UNAUTHORIZED, "text/plain; charset=utf-8",
		              xstrdup("authentication required: your email and an app password\n"),
		              strlen("authentication required: your email and an app password\n"),
		              "WWW-Authenticate", "Basic realm=\"roost\", charset=\"UTF-8\"", NULL,
		              NULL);
		return 1;
	}
	int64_t wait = limiter_take(r->hub->limiter, r->token_id);
	if (wait > 0) {
		send_retry(r, MHD_HTTP_TOO_MANY_REQUESTS, wait);
		return 1;
	}
	return 0;
}

/* The workspace named by a URL segment (its id or its name) that the caller
 * belongs to; 0 if none. */
int64_t dav_ws_resolve(struct req *r, const char *seg)
{
	int64_t id = 0;
	bool digits = *seg && strspn(seg, "0123456789") == strlen(seg);
	if (digits && db_int64(r->db, &id,
	                       "SELECT workspace_id FROM memberships WHERE workspace_id = ? AND "
	                       "user_id = ?",
	                       parse_id(seg), r->user_id) == DB_ROW)
		return id;
	if (db_int64(r->db, &id,
	             "SELECT w.id FROM workspaces w JOIN memberships m ON m.workspace_id = w.id "
	             "WHERE m.user_id = ? AND w.name = ? ORDER BY w.id LIMIT 1",
	             r->user_id, seg) == DB_ROW)
		return id;
	return 0;
}
