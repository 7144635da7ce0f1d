/* web: the dashboard port. It serves the dashboard's built assets (web/, bundled
 * by esbuild into the build's web directory) and, for /api/v1/, the same API as
 * the API port, so the browser is same-origin and needs no CORS.
 *
 * Browser sessions live in an HttpOnly, SameSite=Strict cookie that only this
 * port accepts: script on the page never holds the token (an injected script
 * cannot carry it off), EventSource and download links work without handing a
 * token to a URL, and the API port stays bearer-only. Unsafe methods on this
 * port must carry X-Roost-CSRF, which a cross-origin page cannot send without a
 * CORS preflight this port never grants. */
#include "hub.h"
#include "web.h"
#include "peer.h"
#include "../core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ROOST_WEB_DIR
#define ROOST_WEB_DIR "web"
#endif

/* An installed binary (make install) finds the dashboard beside it, in
 * PREFIX/share/roost/web for PREFIX/bin/roost, wherever PREFIX (and a
 * packager's DESTDIR) put it; a binary in the build tree has none there and
 * uses the build's assets, whose path is compiled in. --web-dir overrides both. */
static char installed_web[4096];
static pthread_once_t installed_once = PTHREAD_ONCE_INIT;

static void find_installed_web(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = 0; /* PREFIX/bin */
	char *dir = xasprintf("%s/../share/roost/web", exe);
	char *probe = xasprintf("%s/index.html", dir);
	if (strlen(dir) < sizeof installed_web && access(probe, R_OK) == 0)
		memcpy(installed_web, dir, strlen(dir) + 1);
	free(probe);
	free(dir);
}

const char *web_dir(const struct hub *hub)
{
	if (hub->cfg.web_dir)
		return hub->cfg.web_dir;
	pthread_once(&installed_once, find_installed_web);
	return installed_web[0] ? installed_web : ROOST_WEB_DIR;
}

#define COOKIE_NAME  "roost_session"
#define WEB_FILE_MAX (64ll * 1024 * 1024)
#define WEB_URL_MAX  1024

/* The app loads only its own script and style; the API and the feed are
 * same-origin, but a download may read a signed URL from a host or the
 * content port (POST urls' sources), and previews and thumbnails load images
 * and video from the content port's signed URLs (never from this origin);
 * uPlot draws on a canvas; pdf.js (pdf-preview.js) draws a PDF's first page
 * in its worker, pdf.worker.min.mjs, from this origin; nothing may frame the
 * dashboard. */
static const char csp_app[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: http: "
    "https:; media-src http: https:; connect-src 'self' http: https:; font-src 'self'; "
    "worker-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

/* API answers on this origin include users' files: never let them run as the app. */
static const char csp_api[] = "default-src 'none'; sandbox; frame-ancestors 'none'";

static const struct {
	const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".webmanifest", "application/manifest+json"},
};

static const char *content_type(const char *name)
{
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

static void common_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
}

void web_api_headers(struct MHD_Response *resp)
{
	/* JSON answers already carry nosniff (server.c); downloads do not. */
	if (!MHD_get_response_header(resp, "X-Content-Type-Options"))
		MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Content-Security-Policy", csp_api);
	MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
}

static enum MHD_Result send_page(struct MHD_Connection *conn, unsigned status, const char *title,
                                 const char *text)
{
	char *page = xasprintf("<!doctype html><html lang=en><meta charset=utf-8>"
	                       "<meta name=viewport content='width=device-width'>"
	                       "<title>roost: %s</title><h1>%s</h1><p>%s</p></html>",
	                       title, title, text);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(strlen(page), page, MHD_RESPMEM_MUST_FREE);
	common_headers(resp);
	MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "Content-Security-Policy", csp_api);
	enum MHD_Result ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A relative path from the network, accepted only as plain names: no "." or
 * ".." segment, no empty segment, no backslash or control byte. openat2 with
 * RESOLVE_BENEATH is the second fence. */
static bool safe_rel(const char *rel)
{
	if (!*rel || strlen(rel) > WEB_URL_MAX)
		return false;
	for (const char *s = rel; *s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == '\\' || s[i] == 0x7f)
				return false;
		s += n;
		if (*s == '/')
			s++;
	}
	return true;
}

/* A regular file's fd and size, or -1. */
static int open_file(int dfd, const char *rel, int64_t *size)
{
	int fd = openat_beneath(dfd, rel, O_RDONLY, 0, 0); /* symlinks only within */
	struct stat stb;
	if (fd >= 0 &&
	    (fstat(fd, &stb) != 0 || !S_ISREG(stb.st_mode) || stb.st_size > WEB_FILE_MAX)) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0)
		*size = (int64_t)stb.st_size;
	return fd;
}

enum MHD_Result web_serve(struct hub *hub, struct MHD_Connection *conn, const char *url,
                          const char *method)
{
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return send_page(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "Method not allowed",
		                 "The dashboard's pages are read with GET.");
	if (url[0] != '/' || !(url[1] == 0 || safe_rel(url + 1)))
		return send_page(conn, MHD_HTTP_NOT_FOUND, "Not found", "No such page.");
	const char *dir = web_dir(hub);
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int64_t size = 0;
	int fd = -1;
	const char *rel = url[1] ? url + 1 : "index.html";
	if (dfd >= 0)
		fd = open_file(dfd, rel, &size);
	/* Routes of the app (/w/3/files/docs, /invite/TOKEN) have no file: they get
	 * index.html and the app routes them. A missing asset (a name with an
	 * extension) is a plain 404 rather than HTML under a script's name. */
	const char *last = strrchr(rel, '/');
	bool asset = strchr(last ? last : rel, '.') != NULL;
	if (fd < 0 && dfd >= 0 && !asset) {
		rel = "index.html";
		fd = open_file(dfd, rel, &size);
	}
	if (dfd >= 0)
		close(dfd);
	if (fd < 0 && strcmp(rel, "index.html") == 0) {
		char *text = xasprintf(
		    "The hub is running, but the dashboard's assets were not found in "
		    "<code>%s</code>. "
		    "Build them with <code>make build</code> (it needs npm), or start the hub with "
		    "<code>--web-dir DIR</code>. The JSON API is on port %d "
		    "(<code>/api/v1</code>).",
		    dir, hub->cfg.api_port);
		enum MHD_Result ret =
		    send_page(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "Dashboard not built", text);
		free(text);
		return ret;
	}
	if (fd < 0)
		return send_page(conn, MHD_HTTP_NOT_FOUND, "Not found", "No such file.");
	struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)size, fd);
	common_headers(resp);
	MHD_add_response_header(resp, "Content-Type", content_type(rel));
	MHD_add_response_header(resp, "Content-Security-Policy", csp_app);
	/* Asset names are stable (app.js), so the browser revalidates each load. */
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* The files a share page may load from the dashboard's build (share_page.c):
 * these names only, matched whole; nothing from the request reaches a path. */
static const char *const share_assets[] = {"pdf-preview.js", "pdf.worker.min.mjs"};

int web_share_asset_open(struct hub *hub, const char *name, int64_t *size)
{
	const char *fixed = NULL;
	for (size_t i = 0; name && i < sizeof share_assets / sizeof *share_assets; i++)
		if (strcmp(name, share_assets[i]) == 0)
			fixed = share_assets[i];
	if (!fixed)
		return -1;
	const char *dir = web_dir(hub);
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	int fd = open_file(dfd, fixed, size);
	close(dfd);
	return fd;
}

bool web_share_assets(struct hub *hub)
{
	int64_t size;
	bool all = true;
	for (size_t i = 0; all && i < sizeof share_assets / sizeof *share_assets; i++) {
		int fd = web_share_asset_open(hub, share_assets[i], &size);
		all = fd >= 0;
		if (fd >= 0)
			close(fd);
	}
	return all;
}

char *web_cookie_authz(struct req *r)
{
	const char *v = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, COOKIE_NAME);
	if (!v || !*v || strlen(v) > 200)
		return NULL;
	return xasprintf("Bearer %s", v);
}

char *web_session_cookie(struct req *r, const char *tok, int64_t max_age_s)
{
	return xasprintf(COOKIE_NAME
	                 "=%s; Path=/api/v1/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
	                 tok, (long long)max_age_s, req_tls(r) ? "; Secure" : "");
}

enum MHD_Result reply_session(struct req *r, json_t *body, const char *tok, int64_t expires_at)
{
	if (!r->dash)
		return reply_json(r, MHD_HTTP_OK, body);
	json_object_del(body, "token");
	int64_t age = tok ? (expires_at - now_ms()) / 1000 : 0;
	char *cookie = web_session_cookie(r, tok ? tok : "", age > 0 ? age : 0);
	enum MHD_Result ret = reply_json_hdr(r, MHD_HTTP_OK, body, "Set-Cookie", cookie);
	free(cookie);
	return ret;
}
