/* serve: the host's content server (--listen). Other hosts fetch chunks from
 * it, and clients fetch files, with tokens the hub signed — verified here with
 * the hub's public keys alone:
 *
 *   GET /chunks/HASH   Authorization: Bearer TOKEN (scope "chunks", our workspace)
 *   POST /chunks/batch many chunks in one answer (serve_batch.c)
 *   GET /c/TOKEN       a file version (scope "read"); on-demand files are
 *                      fetched into the cache first
 *   PUT /chunks/HASH   a client's chunk (scope "chunk-upload"): serve_upload.c
 *   PUT /u/TOKEN       a new version of the file the token names (scope
 *                      "write"): streamed to .roost/tmp, fsynced, renamed into
 *                      the folder; the sync thread then uploads it as a local edit
 *   GET /healthz
 *
 * Paths served come from the index, never from the request, and are opened
 * beneath the folder without following any symlink. */
#include "host.h"
#include "serve_req.h"
#include "serve_upload.h"
#include "../core/connlimit.h"
#include "../core/content.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/token.h"
#include "../core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* A version the hub sent a reader for but our index lacks: the commits in
 * flight get this long to reach the index before the reader hears 404. */
#define COMMIT_WAIT_MS 10000

int open_beneath(const struct host *h, const char *path, int flags, unsigned mode)
{
	/* open(2) flags are a bit set, never negative: open_how takes them as u64. */
	if (flags < 0) {
		errno = EINVAL;
		return -1;
	}
	int dfd = open(h->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	int fd = openat_beneath(dfd, path, flags, mode, BENEATH_NO_SYMLINKS);
	int saved = errno;
	close(dfd);
	errno = saved;
	return fd;
}

int serve_json(struct MHD_Connection *conn, unsigned status, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

int serve_error(struct MHD_Connection *conn, unsigned status, const char *code, const char *msg)
{
	return serve_json(conn, status,
	                  json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg));
}

/* Serve fd (size bytes), or the one byte range the request asks for. */
static enum MHD_Result send_fd(struct MHD_Connection *conn, int fd, int64_t size, const char *hash)
{
	int64_t start = 0, len = size;
	const char *rh = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Range");
	int range = http_parse_range(rh, size, &start, &len);
	char buf[96];
	if (range < 0) {
		close(fd);
		struct MHD_Response *r =
		    MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
		snprintf(buf, sizeof buf, "bytes */%lld", (long long)size);
		MHD_add_response_header(r, "Content-Range", buf);
		enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_RANGE_NOT_SATISFIABLE, r);
		MHD_destroy_response(r);
		return ret;
	}
	struct MHD_Response *r =
	    MHD_create_response_from_fd_at_offset64((uint64_t)len, fd, (uint64_t)start);
	content_headers(r, NULL, NULL, true);
	MHD_add_response_header(r, "Accept-Ranges", "bytes");
	snprintf(buf, sizeof buf, "\"%s\"", hash);
	MHD_add_response_header(r, "ETag", buf);
	MHD_add_response_header(r, "X-Roost-Hash", hash);
	/* A signed URL is a capability with no cookie: any page (the dashboard
	 * trying its sources) may read it. */
	MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
	MHD_add_response_header(r, "Access-Control-Expose-Headers", "X-Roost-Hash, Content-Range");
	if (range > 0) {
		snprintf(buf, sizeof buf, "bytes %lld-%lld/%lld", (long long)start,
		         (long long)(start + len - 1), (long long)size);
		MHD_add_response_header(r, "Content-Range", buf);
	}
	enum MHD_Result ret =
	    MHD_queue_response(conn, range > 0 ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* Verify tok for scope in our workspace; replies and returns NULL if not. */
static json_t *check_token(struct host *h, struct MHD_Connection *conn, const char *tok,
                           const char *scope)
{
	if (!tok || !*tok) {
		serve_error(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized",
		            "a token signed by the hub is required");
		return NULL;
	}
	const char *why;
	json_t *claims = token_verify(tok, keyring_key, &h->keys, keyring_now_ms(&h->keys), &why);
	if (!claims) {
		serve_error(conn, MHD_HTTP_UNAUTHORIZED, "invalid_token", why);
		return NULL;
	}
	if (!serve_claims_grant(claims, h->c.ws_id, scope)) {
		json_decref(claims);
		serve_error(conn, MHD_HTTP_FORBIDDEN, "wrong_scope",
		            "the token does not grant this on this host");
		return NULL;
	}
	return claims;
}

/* Ask the hub whether the issuer of a signed URL may still use it (see the
 * hub's hosts/self/token-check): its answer, or NULL after replying — the
 * hub's refusal, or 503 when the hub cannot be asked (fail closed). */
static json_t *hub_token_check(struct host *h, struct MHD_Connection *conn, const char *tok)
{
	CURL *curl = client_curl(&h->c);
	char *url = client_ws_url(&h->c, "/hosts/self/token-check", NULL);
	json_t *body = json_pack("{s:s}", "token", tok), *out = NULL;
	char err[256];
	long st = client_request(&h->c, curl, "POST", url, body, &out, err);
	json_decref(body);
	free(url);
	curl_easy_cleanup(curl);
	if (st == 200)
		return out;
	json_t *e = json_object_get(out, "error");
	if ((st == 403 || st == 404) && json_get_str(e, "code") && json_get_str(e, "message"))
		serve_error(conn, (unsigned)st, json_get_str(e, "code"),
		            json_get_str(e, "message"));
	else
		serve_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "hub_unavailable",
		            "this host cannot confirm the URL with the hub now; try again");
	json_decref(out);
	return NULL;
}

/* Readers of chunks verify every one (hosts, the hub, the client library),
 * so a chunk in a local file whose stat still matches the index entry made
 * when it was hashed is sent as read; a file changed since is hashed, and a
 * copy that no longer matches is not sent (the cache's may be). Hashing
 * every chunk served cost a host as much CPU as the reader's own check. */
int64_t serve_read_chunk(struct host *h, struct db *db, const char *hash, uint8_t **buf,
                         bool *cached)
{
	char *path = NULL;
	int64_t off = 0, size = 0, n = -1;
	struct ientry file;
	if (idx_chunk_where(db, hash, &path, &off, &size, &file) == 1 && size > 0) {
		int fd = open_beneath(h, path, O_RDONLY, 0);
		struct stat st;
		bool same = fd >= 0 && fstat(fd, &st) == 0 && stat_matches(&file, &st);
		*buf = xrealloc(*buf, (size_t)size);
		if (fd >= 0) {
			n = pread_full(fd, *buf, (size_t)size, off);
			close(fd);
		}
		char got[HASH_HEX_LEN + 1];
		if (n != size)
			n = -1;
		else if (!same && (hash_hex(*buf, (size_t)n, got), strcmp(got, hash) != 0))
			n = -1; /* the file changed: not this chunk any more */
	}
	free(path);
	if (n < 0 && (size = store_size(h->cache, hash)) > 0) {
		*buf = xrealloc(*buf, (size_t)size);
		n = host_cache_read(h, db, hash, *buf, (size_t)size);
		*cached = n == size;
		if (n != size)
			n = -1;
	}
	return n;
}

static enum MHD_Result serve_chunk(struct host *h, struct MHD_Connection *conn, const char *hash)
{
	const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	const char *tok = authz && strncmp(authz, "Bearer ", 7) == 0 ? authz + 7 : NULL;
	if (!hash_hex_valid(hash))
		return serve_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_hash",
		                   "a chunk is named by 64 lowercase hex digits");
	/* A whole workspace's chunk token, or one version's (readers who may not
	 * read everything): the hub says which chunks that version holds. */
	const char *why;
	json_t *vc =
	    tok ? token_verify(tok, keyring_key, &h->keys, keyring_now_ms(&h->keys), &why) : NULL;
	bool version_scoped = serve_claims_grant(vc, h->c.ws_id, "vchunks");
	json_decref(vc);
	json_t *claims = version_scoped ? NULL : check_token(h, conn, tok, "chunks");
	if (!version_scoped && !claims)
		return MHD_YES;
	json_decref(claims);
	int allowed = version_scoped ? fetch_vtoken_allows(h, tok, hash) : 1;
	if (allowed <= 0)
		return allowed < 0
		           ? serve_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "hub_unavailable",
		                         "this host cannot confirm the token with the hub now")
		           : serve_error(conn, MHD_HTTP_FORBIDDEN, "wrong_scope",
		                         "the token does not grant this chunk");
	struct db *db = db_pool_acquire(h->idx);
	uint8_t *buf = NULL;
	bool cached = false;
	int64_t n = serve_read_chunk(h, db, hash, &buf, &cached);
	if (cached)
		idx_cache_touch(db, hash, n);
	db_pool_release(h->idx, db);
	if (n < 0) {
		free(buf);
		return serve_error(conn, MHD_HTTP_NOT_FOUND, "not_found",
		                   "this host does not hold that chunk");
	}
	atomic_fetch_add(&h->served_chunks, 1);
	struct MHD_Response *r =
	    MHD_create_response_from_buffer((size_t)n, buf, MHD_RESPMEM_MUST_FREE);
	content_headers(r, NULL, NULL, true);
	enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* A version this host has no whole file of (on-demand, or replaced since):
 * its chunks from here, the cache, peers or the hub, into an unlinked temp
 * file. Its size and hash go to e. */
static int assemble(struct host *h, struct db *db, const char *path, int64_t version,
                    struct ientry *e)
{
	CURL *curl = client_curl(&h->c);
	bool gone = false;
	json_t *m = fetch_manifest(h, curl, path, version, &gone);
	int fd = -1;
	int64_t size = 0;
	const char *hash = json_get_str(m, "hash");
	if (m && json_get_int(m, "size", &size) && hash && strlen(hash) < sizeof e->hash) {
		e->size = size;
		snprintf(e->hash, sizeof e->hash, "%s", hash);
		char *tmp = xasprintf("%s/od-XXXXXX", h->tmp_dir);
		fd = mkstemp(tmp);
		if (fd >= 0) {
			unlink(tmp);
			if (fetch_content(h, db, curl, m, fd, true) != 0) {
				close(fd);
				fd = -1;
			}
		}
		free(tmp);
	}
	json_decref(m);
	curl_easy_cleanup(curl);
	return fd;
}

/* Wait (up to ms) for the commits in flight to reach the index. True if
 * there were any: a version unknown until now may be known after. */
static bool commits_settled(struct host *h, int64_t ms)
{
	struct timespec until = host_deadline(ms);
	pthread_mutex_lock(&h->mu);
	bool any = h->committing > 0;
	while (h->committing > 0 && pthread_cond_timedwait(&h->commit_cv, &h->mu, &until) == 0)
		;
	pthread_mutex_unlock(&h->mu);
	return any;
}

static enum MHD_Result serve_version(struct host *h, struct MHD_Connection *conn, const char *tok)
{
	json_t *claims = check_token(h, conn, tok, "read");
	if (!claims)
		return MHD_YES;
	int64_t ver = 0;
	json_get_int(claims, "ver", &ver);
	/* The path and version number, to assemble the version if the file
	 * here is not it (any more). */
	const char *cpath = json_get_str(claims, "path");
	char *want_path = cpath ? xstrdup(cpath) : NULL;
	int64_t want_v = 0;
	json_get_int(claims, "v", &want_v);
	json_decref(claims);
	json_t *ok = hub_token_check(h, conn, tok);
	if (!ok) {
		free(want_path);
		return MHD_YES;
	}
	json_decref(ok);
	bool retried = false;
again:;
	struct db *db = db_pool_acquire(h->idx);
	char *path = NULL;
	struct ientry e;
	int fd = -1;
	int rc = idx_by_version(db, ver, &path, &e);
	if (rc == 1 && e.local) {
		fd = open_beneath(h, path, O_RDONLY, 0);
		struct stat st;
		if (fd >= 0 && (fstat(fd, &st) != 0 || !stat_matches(&e, &st))) {
			close(fd); /* edited since: not that version any more */
			fd = -1;
		}
	} else if (rc == 1 && host_policy(h, path) == POL_ON_DEMAND) {
		fd = assemble(h, db, path, e.version, &e);
	}
	if (fd < 0 && rc == 0 && !retried && commits_settled(h, COMMIT_WAIT_MS)) {
		db_pool_release(h->idx, db);
		free(path);
		retried = true; /* the hub knew the version before our index did */
		goto again;
	}
	if (fd < 0 && rc >= 0 && want_path && want_v > 0)
		fd = assemble(h, db, want_path, want_v, &e);
	db_pool_release(h->idx, db);
	free(path);
	free(want_path);
	if (fd < 0)
		return serve_error(conn, MHD_HTTP_NOT_FOUND, "not_found",
		                   "this host does not hold that version");
	atomic_fetch_add(&h->served_files, 1);
	return send_fd(conn, fd, e.size, e.hash);
}

/* ---- uploads: PUT /u/TOKEN ---- */

#define UPLOAD_RESERVE (64ll << 20) /* free space an upload must leave */

struct upload {
	char *path, *tmp; /* where it goes (from the token); the temp file */
	char *grant;      /* the hub's upload grant: the commit names the uploader */
	int fd;
	struct hasher *hash;
	int64_t size;
	int err; /* errno of a failed write */
};

static void upload_free(struct upload *u)
{
	if (u->fd >= 0)
		close(u->fd);
	if (u->tmp)
		unlink(u->tmp); /* still there: not placed */
	hasher_free(u->hash);
	free(u->tmp);
	free(u->path);
	free(u->grant);
	free(u);
}

/* A request without a body, seen once: MHD keeps a connection alive only if
 * the answer comes after its first call. */
static int head_seen;

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
	(void)cls;
	(void)conn;
	(void)why;
	if (*con_cls && *con_cls != &head_seen && !serve_batch_release(*con_cls) &&
	    !serve_upload_release(*con_cls))
		upload_free(*con_cls);
	*con_cls = NULL;
	/* Unlike the hub, a connection that has sent one head keeps the long idle
	 * timeout between requests: the relay tunnel's pipes idle up to the
	 * relay's 90 s between requests, and must not be closed under it. */
}

/* Check the token and the room, and open the temp file; NULL after replying. */
static struct upload *upload_begin(struct host *h, struct MHD_Connection *conn, const char *tok)
{
	json_t *claims = check_token(h, conn, tok, "write");
	if (!claims)
		return NULL;
	char *path = serve_upload_path(claims);
	json_decref(claims);
	if (!path) {
		serve_error(conn, MHD_HTTP_FORBIDDEN, "wrong_scope",
		            "the token names no file path");
		return NULL;
	}
	if (host_policy(h, path) != POL_PINNED) {
		free(path);
		serve_error(conn, MHD_HTTP_CONFLICT, "not_kept_here",
		            "this host does not keep that folder; upload to the hub");
		return NULL;
	}
	/* The signature is not enough: the uploader must still be allowed to
	 * write the file, which only the hub knows. Asked before the body. */
	json_t *ok = hub_token_check(h, conn, tok);
	const char *grant = json_get_str(ok, "grant");
	if (!ok || !grant) {
		if (ok)
			serve_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "hub_unavailable",
			            "the hub gave no upload grant");
		json_decref(ok);
		free(path);
		return NULL;
	}
	char *grant_copy = xstrdup(grant);
	json_decref(ok);
	int64_t cl = http_content_length(
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length"));
	struct statvfs vfs;
	if (cl > 0 && statvfs(h->dir, &vfs) == 0 &&
	    cl > (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize - UPLOAD_RESERVE) {
		free(path);
		free(grant_copy);
		serve_error(conn, MHD_HTTP_INSUFFICIENT_STORAGE, "no_space",
		            "this host has no room for that file");
		return NULL;
	}
	struct upload *u = xcalloc(1, sizeof *u);
	u->path = path;
	u->grant = grant_copy;
	u->tmp = xasprintf("%s/up-XXXXXX", h->tmp_dir);
	u->fd = mkstemp(u->tmp);
	u->hash = hasher_new();
	if (u->fd < 0) {
		free(u->tmp);
		u->tmp = NULL;
		upload_free(u);
		serve_error(conn, MHD_HTTP_INSUFFICIENT_STORAGE, "storage_error",
		            "this host cannot write a temporary file");
		return NULL;
	}
	return u;
}

/* Move the finished temp file to its path beneath the folder, making the
 * folders on the way; no symlink is followed. 0 or -errno. */
static int upload_place(struct host *h, struct upload *u)
{
	if (fsync(u->fd) != 0)
		return -errno;
	int dfd = open(h->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	char *rest = xstrdup(u->path + 1), *name = rest, *slash;
	int rc = dfd < 0 ? -errno : 0;
	while (rc == 0 && (slash = strchr(name, '/'))) {
		*slash = 0;
		if (mkdirat(dfd, name, 0755) != 0 && errno != EEXIST)
			rc = -errno;
		int next =
		    rc ? -1 : openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (!rc && next < 0)
			rc = -errno;
		close(dfd);
		dfd = next;
		name = slash + 1;
	}
	if (rc == 0 && renameat(AT_FDCWD, u->tmp, dfd, name) != 0)
		rc = -errno;
	if (rc == 0) {
		free(u->tmp);
		u->tmp = NULL;
		int sfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sfd >= 0) {
			fsync(sfd);
			close(sfd);
		}
	}
	if (dfd >= 0)
		close(dfd);
	free(rest);
	return rc;
}

static enum MHD_Result upload_request(struct host *h, struct MHD_Connection *conn, const char *tok,
                                      const char *data, size_t *size, void **con_cls)
{
	struct upload *u = *con_cls;
	if (!u) {
		u = upload_begin(h, conn, tok);
		if (!u)
			return MHD_YES; /* answered */
		*con_cls = u;
		return MHD_YES;
	}
	if (*size) {
		hasher_update(u->hash, data, *size);
		int w = u->err ? 0 : write_all(u->fd, data, *size);
		if (w)
			u->err = -w;
		u->size += (int64_t)*size;
		*size = 0;
		return MHD_YES;
	}
	/* The grant is in place before the file is, so its commit names the uploader. */
	if (!u->err)
		host_grant_set(h, u->path, u->grant);
	int rc = u->err ? -u->err : upload_place(h, u);
	if (rc != 0 && !u->err)
		host_grant_set(h, u->path, NULL);
	if (rc != 0)
		return serve_error(conn,
		                   rc == -ENOSPC ? MHD_HTTP_INSUFFICIENT_STORAGE
		                                 : MHD_HTTP_INTERNAL_SERVER_ERROR,
		                   rc == -ENOSPC ? "no_space" : "storage_error", strerror(-rc));
	char hex[HASH_HEX_LEN + 1];
	hasher_final_hex(u->hash, hex);
	host_mark_dirty(h, u->path, 0);
	log_info("upload through the content server: %s (%lld bytes)", u->path, (long long)u->size);
	return serve_json(conn, MHD_HTTP_CREATED,
	                  json_pack("{s:s, s:I, s:s, s:s}", "path", u->path, "size",
	                            (json_int_t)u->size, "hash", hex, "state", "syncing"));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
	(void)version;
	struct host *h = cls;
	if (!*con_cls)
		connlimit_head_done(conn); /* a whole head: it may take its time now */
	if (serve_upload_is(method, url))
		return serve_upload_request(h, conn, url, data, size, con_cls);
	const char *arg;
	enum serve_route route = serve_route(method, url, &arg);
	if (strcmp(method, "POST") == 0 && strcmp(url, "/chunks/batch") == 0)
		return (enum MHD_Result)serve_batch(h, conn, data, size, con_cls);
	if (route == ROUTE_UPLOAD)
		return upload_request(h, conn, arg, data, size, con_cls);
	if (route == ROUTE_METHOD)
		return serve_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
		                   "this host serves GET and HEAD, and PUT /u/TOKEN");
	if (!*con_cls) {
		*con_cls = &head_seen;
		return MHD_YES;
	}
	if (route == ROUTE_HEALTH)
		return serve_json(conn, MHD_HTTP_OK,
		                  json_pack("{s:b, s:I, s:s}", "ok", 1, "host_id",
		                            (json_int_t)h->host_id, "version", ROOST_VERSION));
	if (route == ROUTE_CHUNK)
		return serve_chunk(h, conn, arg);
	if (route == ROUTE_VERSION)
		return serve_version(h, conn, arg);
	return serve_error(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such resource");
}

static char *tls_pem[2]; /* the key and certificate text, while serving */

/* --tls-cert/--tls-key as libmicrohttpd options (the PEM text, which it
 * parses at start); 0, or -EINVAL logged. */
static int tls_options(const struct host *h, struct MHD_OptionItem opt[3])
{
	if (!h->cfg.tls_cert)
		return 0;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		log_error("--tls-cert: this libmicrohttpd was built without TLS");
		return -EINVAL;
	}
	size_t n;
	char *cert = read_file(h->cfg.tls_cert, 1 << 20, &n);
	char *key = h->cfg.tls_key ? read_file(h->cfg.tls_key, 1 << 20, &n) : NULL;
	if (!cert || !key) {
		log_error("cannot read %s", cert ? h->cfg.tls_key : h->cfg.tls_cert);
		free(cert);
		free(key);
		return -EINVAL;
	}
	tls_pem[0] = key; /* kept while the server runs */
	tls_pem[1] = cert;
	opt[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, key};
	opt[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, cert};
	opt[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	return 0;
}

int serve_start(struct host *h)
{
	if (!h->cfg.listen)
		return 0;
	char addr[64];
	const char *colon = strrchr(h->cfg.listen, ':');
	int port = colon ? atoi(colon + 1) : 0;
	snprintf(addr, sizeof addr, "%.*s", colon ? (int)(colon - h->cfg.listen) : 0,
	         h->cfg.listen);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (!colon || port <= 0 || port > 65535 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		log_error("--listen %s: expected IPv4ADDR:PORT, e.g. 127.0.0.1:7420",
		          h->cfg.listen);
		return -EINVAL;
	}
	struct MHD_OptionItem tls[3] = {{MHD_OPTION_END, 0, NULL}};
	if (tls_options(h, tls) != 0)
		return -EINVAL;
	/* As the hub's ports (connlimit.h). The relay tunnel's pipes come from this
	 * machine, at most 64 of them, well inside the per-address limit. */
	h->conns = connlimit_new(CONNS_PER_IP_DEFAULT, HEAD_TIMEOUT_DEFAULT);
	h->server = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
	        MHD_USE_ERROR_LOG | (h->cfg.tls_cert ? MHD_USE_TLS : 0),
	    (uint16_t)port, connlimit_accept, h->conns, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
	    log_http_server, NULL, /* first: it must be */
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 1000u,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HEAD_TIMEOUT_DEFAULT,
	    MHD_OPTION_NOTIFY_CONNECTION, connlimit_notify, h->conns,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
	if (!h->server) {
		int err = errno ? errno : EADDRINUSE;
		log_error("cannot listen on %s: %s", h->cfg.listen, strerror(err));
		return -err;
	}
	h->url = h->cfg.advertise_url
	             ? xstrdup(h->cfg.advertise_url)
	             : xasprintf("%s://%s", h->cfg.tls_cert ? "https" : "http", h->cfg.listen);
	log_info("serving content on %s", h->url);
	return 0;
}

void serve_stop(struct host *h)
{
	if (h->server)
		MHD_stop_daemon(h->server);
	h->server = NULL;
	connlimit_free(h->conns);
	h->conns = NULL;
	for (int i = 0; i < 2; i++) {
		free(tls_pem[i]);
		tls_pem[i] = NULL;
	}
}
