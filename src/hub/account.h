/* account: what a user does to their own account beyond the password
 * (auth.c) — a TOTP second factor with recovery codes and the login step it
 * adds, a display name — and the one-use password-reset links an
 * administrator issues (account.c; docs/accounts.md).
 *
 * Threads: request threads; account_reset_issue_local runs in `roost admin
 * reset-password` on its own connection. */
#ifndef ROOST_HUB_ACCOUNT_H
#define ROOST_HUB_ACCOUNT_H

#include "hub.h"

#define LOGIN_CHALLENGE_MS  (5ll * 60 * 1000)  /* password given, code awaited */
#define RESET_TTL_DEFAULT_S (24ll * 3600)      /* a reset link's default life */
#define RESET_TTL_MAX_S     (30ll * 24 * 3600) /* … and its longest */
#define RECOVERY_CODES      10

/* 1 uid has a second factor in force, 0 not, <0 a database error. */
int account_totp_enabled(struct db *db, int64_t uid);
/* The password was right but uid has a second factor: answer 200
 * {totp_required: true, challenge, expires_at} for POST /login/totp. */
enum MHD_Result account_login_challenge(struct req *r, int64_t uid, const char *email,
                                        const char *client);
/* 1 code (six digits, or a recovery code) is uid's and unused, 0 not (a
 * guess, charged to the guard), or AUTH_THROTTLED / AUTH_DB_ERROR
 * (*retry_ms set). A TOTP code's step is spent; a recovery code is used up. */
int account_check_code(struct req *r, int64_t uid, const char *email, const char *code,
                       int64_t *retry_ms);
/* Where a password alone would start a session (an invite's accept): 0 uid
 * has no second factor or code is right, else 1 after replying. */
int account_second_factor(struct req *r, int64_t uid, const char *email, const char *code);
/* The workspace requires 2FA and the caller has none: 1 (replied 403
 * "2fa_required"), 0 go on, <0 replied a database error. */
int account_require_2fa(struct req *r);

/* Issue a reset link's token for uid (by admin_uid, 0: the hub's operator),
 * living ttl_s seconds: tok gets the token. DB_DONE or an error. */
int account_reset_issue(struct db *db, int64_t uid, int64_t admin_uid, int64_t ttl_s, char tok[64]);

/* roost admin reset-password EMAIL: the hub's operator (who holds its data
 * directory) prints a reset link for any account. Exit code. */
int hub_admin_reset_password(const struct hub_config *cfg, const char *email, int64_t ttl_s);

enum MHD_Result api_login_totp(struct req *r);
enum MHD_Result api_totp_status(struct req *r);
enum MHD_Result api_totp_setup(struct req *r);
enum MHD_Result api_totp_enable(struct req *r);
enum MHD_Result api_totp_disable(struct req *r);
enum MHD_Result api_me_update(struct req *r);
enum MHD_Result api_ws_security_get(struct req *r);
enum MHD_Result api_ws_security_set(struct req *r);
enum MHD_Result api_member_reset_link(struct req *r);
enum MHD_Result api_reset_peek(struct req *r);
enum MHD_Result api_reset_password(struct req *r);
#endif
