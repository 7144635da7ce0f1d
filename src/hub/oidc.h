/* oidc: OpenID Connect sign-in (docs/access.md, "Single sign-on"): the
 * provider's discovery document and JWKS (cached; the JWKS refetched on an
 * unknown kid), the authorization code flow with PKCE (S256), state and nonce,
 * the ID token's checks, matching a user by verified email or admitting one of
 * a workspace's allowed domains, and the one-use codes that hand a CLI its
 * token through a loopback redirect (roost login --sso).
 *
 * Threads: request threads; the cached documents are behind one mutex. */
#ifndef ROOST_HUB_OIDC_H
#define ROOST_HUB_OIDC_H

#include "hub.h"

/* Set hub->oidc up from cfg (nothing when no issuer is given): reads the
 * client secret's file. 0, or -1 after logging why. */
int oidc_init(struct hub *hub);
void oidc_free(struct hub *hub);

/* GET /api/v1/oidc: is sign-in with a provider on, its name and where a
 * browser starts it. */
enum MHD_Result api_oidc_info(struct req *r);
/* GET /api/v1/oidc/start[?cli_port=N&cli_state=S&cli_challenge=C]: a new
 * flow, bound to this browser by a cookie, redirected to the provider. */
enum MHD_Result api_oidc_start(struct req *r);
/* GET /api/v1/oidc/callback?code=…&state=…: the provider's answer. */
enum MHD_Result api_oidc_callback(struct req *r);
/* POST /api/v1/oidc/exchange {code, verifier}: a CLI's token for its one-use code. */
enum MHD_Result api_oidc_exchange(struct req *r);

/* The workspace settings oidc_domains (an array of email domains; [] admits
 * none) and oidc_default_role (member or admin) in r's PATCH body: 1 given
 * and valid (*domains a new string: the JSON array, "" for none; *role
 * borrowed from the body, or NULL), 0 neither given, -1 after replying 400. */
int oidc_settings_parse(struct req *r, char **domains, const char **role);
/* Store what oidc_settings_parse gave, adding it to changed: DB_DONE or DB_ERR. */
int oidc_settings_apply(struct db *db, int64_t ws_id, const char *domains, const char *role,
                        json_t *changed);
/* Add the workspace's oidc_domains and oidc_default_role to o. */
void oidc_settings_get(struct db *db, int64_t ws_id, json_t *o);
#endif
