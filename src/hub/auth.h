/* auth: passwords (argon2id), bearer tokens and their kind, roles, login and
 * logout, sessions, app passwords, password change (auth.c).
 *
 * Threads: request threads; argon2id slots are shared among them. */
#ifndef ROOST_HUB_AUTH_H
#define ROOST_HUB_AUTH_H

#include "hub.h"

/* argon2id runs at most PW_SLOTS at a time (each takes 19 MiB); a caller
 * waits briefly for a slot, then gets AUTH_BUSY. */
#define AUTH_DB_ERROR  (-1)
#define AUTH_THROTTLED (-2) /* the guard refused: retry after *retry_ms */
#define AUTH_BUSY      (-3) /* every argon2id slot stayed taken: retry after *retry_ms */
/* When a client told AUTH_BUSY outside a password check should retry. */
#define AUTH_BUSY_RETRY_MS 1000
/* 0, AUTH_BUSY, or -1 if hashing failed. */
int auth_hash_password(const char *password, char out[128]);
/* 1 the password matches, 0 it does not, AUTH_BUSY. */
int auth_verify_password(const char *hash, const char *password);
/* The user whose email and password these are (> 0), 0 if none (timed the
 * same either way), or AUTH_DB_ERROR, AUTH_THROTTLED or AUTH_BUSY (*retry_ms
 * set). Throttled per account and client (guard.c); releases r->db during
 * argon2id. */
int64_t auth_check_password(struct req *r, const char *email, const char *password,
                            int64_t *retry_ms);
/* Answer AUTH_THROTTLED or AUTH_BUSY (429 or 503 with Retry-After). */
enum MHD_Result auth_reply_retry(struct req *r, int64_t rc, int64_t retry_ms);
/* A new random bearer token (text into tok) and its stored hash. */
void auth_new_token(char tok[64], char hash[65]);
void auth_token_hash(const char *tok, char hash[65]);
/* Resolve a bearer token; 0 if valid (user and token ids set), 1 unknown,
 * revoked or expired, AUTH_SESSION_IDLE or AUTH_SESSION_EXPIRED for a login
 * session past its idle timeout or lifetime, -1 a database error. */
#define AUTH_SESSION_IDLE    2
#define AUTH_SESSION_EXPIRED 3
int auth_check_bearer(struct db *db, const char *authz, int64_t *user_id, int64_t *token_id,
                      int64_t *host_id, int64_t *host_ws, enum cred *cred);
enum role auth_role(struct db *db, int64_t ws_id, int64_t user_id);
/* roost serve --session-lifetime, --session-idle (ms; <= 0 and < 0: the
 * defaults, SESSION_TTL_MS and SESSION_IDLE_MS): set before serving. */
void auth_session_policy(int64_t lifetime_ms, int64_t idle_ms);
int64_t auth_session_ttl_ms(void);
int64_t auth_session_idle_ms(void);
/* Record a new session token (its hash) for user uid. */
int auth_store_session(struct db *db, int64_t uid, const char *token_hash, const char *client);
/* Start a session for uid (its token in the answer, or the dashboard's
 * cookie) and reply; the login's last step. */
enum MHD_Result auth_new_session(struct req *r, int64_t uid, const char *email, const char *client);
enum MHD_Result api_login(struct req *r);
enum MHD_Result api_logout(struct req *r);
enum MHD_Result api_me(struct req *r);
/* App passwords: API tokens (kind 'api') a user names, lists and revokes. */
enum MHD_Result api_app_token_create(struct req *r);
enum MHD_Result api_app_tokens(struct req *r);
enum MHD_Result api_app_token_revoke(struct req *r);
/* Sessions (logins) of the caller: list, revoke one; and a password change,
 * which ends every other session and app password. */
enum MHD_Result api_sessions(struct req *r);
enum MHD_Result api_session_revoke(struct req *r);
enum MHD_Result api_password_change(struct req *r);
#endif
