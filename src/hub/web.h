/* web: the dashboard port — the app's files and the browser session cookie
 * (web.c).
 *
 * Threads: request threads on the dashboard port. */
#ifndef ROOST_HUB_WEB_H
#define ROOST_HUB_WEB_H

#include "hub.h"

/* Serve the dashboard's file for url (GET/HEAD), index.html for app routes. */
enum MHD_Result web_serve(struct hub *hub, struct MHD_Connection *conn, const char *url,
                          const char *method);
/* The answer to a login: on the dashboard port the token goes into an HttpOnly
 * cookie and is left out of body; elsewhere body carries it as is. tok NULL:
 * a logout, which clears the cookie. */
enum MHD_Result reply_session(struct req *r, json_t *body /* stolen */, const char *tok,
                              int64_t expires_at);
/* The Set-Cookie value that holds session token tok for max_age_s seconds
 * (tok "": clears it); Secure when r came over TLS (the hub's, or a trusted
 * proxy's: peer.h). New string. */
char *web_session_cookie(struct req *r, const char *tok, int64_t max_age_s);
/* The dashboard port's session cookie as an "Authorization" value, or NULL. New string. */
char *web_cookie_authz(struct req *r);
/* Where the dashboard's assets are read from: --web-dir, else PREFIX/share/roost/web
 * beside an installed binary, else the build's (compiled in). */
const char *web_dir(const struct hub *hub);
/* A file share pages load from the dashboard's build (pdf.js for PDF previews):
 * name must be one of a fixed list ("pdf-preview.js", "pdf.worker.min.mjs");
 * its fd and size, or -1 (another name, or no dashboard build). */
int web_share_asset_open(struct hub *hub, const char *name, int64_t *size);
/* Does the hub have every share-page asset (the dashboard was built)? */
bool web_share_assets(struct hub *hub);
/* Headers every API answer on the dashboard port carries. */
void web_api_headers(struct MHD_Response *resp);
#endif
