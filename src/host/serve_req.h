/* serve_req: what the host's content server (serve.c) reads from a request
 * before it touches the disk: the route, the token's grant and the upload's
 * target path. Pure functions, so tests/fuzz/fuzz_upload.c can run them alone. */
#ifndef ROOST_SERVE_REQ_H
#define ROOST_SERVE_REQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum serve_route {
	ROUTE_NONE,    /* 404 */
	ROUTE_METHOD,  /* 405: only GET, HEAD and PUT /u/TOKEN */
	ROUTE_UPLOAD,  /* PUT /u/TOKEN */
	ROUTE_HEALTH,  /* GET /healthz */
	ROUTE_CHUNK,   /* GET /chunks/HASH */
	ROUTE_VERSION, /* GET /c/TOKEN */
};

/* The route of method and url; *arg is the URL's last segment (token or
 * hash) for the routes that take one, else NULL. */
enum serve_route serve_route(const char *method, const char *url, const char **arg);
/* Do verified claims grant scope in workspace ws? */
bool serve_claims_grant(const json_t *claims, int64_t ws, const char *scope);
/* The file a write token names: a normalized path, not the root and not in
 * the host's state folder; NULL otherwise. New string. */
char *serve_upload_path(const json_t *claims);

#endif
