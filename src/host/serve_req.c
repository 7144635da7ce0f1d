/* serve_req: see serve_req.h. */
#include "serve_req.h"
#include "host.h"
#include "ignore.h"
#include "../core/json.h"
#include "../core/path.h"

#include <stdlib.h>
#include <string.h>

bool host_ignored(const char *path)
{
	return path_reserved(path) || host_ignore_path(path);
}

/* url is prefix followed by one segment (no further '/'): that segment. */
static const char *segment(const char *url, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(url, prefix, n) == 0 && !strchr(url + n, '/') ? url + n : NULL;
}

enum serve_route serve_route(const char *method, const char *url, const char **arg)
{
	*arg = NULL;
	if (strcmp(method, "PUT") == 0 && (*arg = segment(url, "/u/")))
		return ROUTE_UPLOAD;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return ROUTE_METHOD;
	if (strcmp(url, "/healthz") == 0)
		return ROUTE_HEALTH;
	if ((*arg = segment(url, "/chunks/")))
		return ROUTE_CHUNK;
	if ((*arg = segment(url, "/c/")))
		return ROUTE_VERSION;
	return ROUTE_NONE;
}

bool serve_claims_grant(const json_t *claims, int64_t ws, const char *scope)
{
	int64_t cws = 0;
	const char *sc = json_get_str(claims, "scope");
	return json_get_int(claims, "ws", &cws) && cws == ws && sc && strcmp(sc, scope) == 0;
}

char *serve_upload_path(const json_t *claims)
{
	const char *why = NULL, *p = json_get_str(claims, "path");
	char *path = p ? path_normalize(p, strlen(p), &why) : NULL;
	if (path && (strcmp(path, "/") == 0 || host_ignored(path))) {
		free(path);
		path = NULL;
	}
	return path;
}
