/* serve_upload: a client that is not a host (roost put) sends a file's chunks
 * to a host that pins the file's folder, in a workspace whose storage is
 * 'hosts' (the hub's upload-targets names the host and signs the token):
 *
 *   PUT /chunks/HASH   Authorization: Bearer UPLOAD_TOKEN
 *
 * The token (scope "chunk-upload", our workspace, this host, a path we pin,
 * the largest chunk) is checked with the hub's public keys before the body;
 * the body is streamed into the cache's store (hashed on the way), kept only
 * if its SHA-256 is HASH, and pinned there so the cache's size cap cannot
 * evict the only copy before the client's commit and replication. Then the
 * hub hears of it (hosts/self/uploads): it checks the uploader may still
 * write the path and records the chunk as the uploader's to commit and as
 * held here. If the hub refuses, the chunk goes again (unless it was held
 * before) and the refusal is the client's answer; if the hub cannot be
 * asked, 503, so the client sends the chunk elsewhere.
 *
 * The pin is released (the chunk becomes ordinary cache) once the chunk is
 * in a file of the folder — the committed file synced here — or a day and
 * an hour after the upload (the hub's commit lease lapsed). Released pins
 * are looked for at most once a minute, on uploads.
 *
 * Threads: the content server's connection threads; state per request. */
#include "serve_upload.h"
#include "serve_req.h"
#include "../core/chunker.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/token.h"
#include "../core/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#define CHUNK_UPLOAD_MAGIC 0x6b6e7568435055ull /* marks a con_cls as ours */
#define UPLOAD_ROOM        (64ll << 20)        /* free space an upload must leave */
#define PIN_SWEEP_MS       60000

struct chunk_up {
	uint64_t magic; /* first: serve_upload_release tells ours apart by it */
	char hash[HASH_HEX_LEN + 1];
	char *token;
	struct store_writer *w;
	int64_t max, size;
	unsigned status; /* an error found while the body came: answered at its end */
	const char *code, *msg;
};

bool serve_upload_is(const char *method, const char *url)
{
	return strcmp(method, "PUT") == 0 && strncmp(url, "/chunks/", 8) == 0;
}

bool serve_upload_release(void *con_cls)
{
	struct chunk_up *u = con_cls;
	uint64_t magic;
	memcpy(&magic, con_cls, sizeof magic); /* every con_cls is at least a pointer wide */
	if (magic != CHUNK_UPLOAD_MAGIC)
		return false;
	if (u->w)
		store_writer_abort(u->w);
	free(u->token);
	free(u);
	return true;
}

/* ---- pins ---- */

static atomic_llong last_sweep;

/* Our pins (the index's upload_pins, apart from the replicate job's): when
 * each was made. */

static void pin(struct host *h, const char *hash, int64_t size)
{
	struct db *db = db_pool_acquire(h->idx);
	idx_cache_touch(db, hash, size);
	idx_cache_pin(db, hash, true);
	db_run(db, "INSERT OR REPLACE INTO upload_pins(hash, at) VALUES(?,?)", hash, now_ms());
	db_pool_release(h->idx, db);
}

/* Undo pin() after the hub refused the chunk; drop it unless held before. */
static void unpin(struct host *h, const char *hash, bool drop)
{
	struct db *db = db_pool_acquire(h->idx);
	db_run(db, "DELETE FROM upload_pins WHERE hash = ?", hash);
	idx_cache_pin(db, hash, false);
	if (drop) {
		store_remove(h->cache, hash);
		db_run(db, "DELETE FROM cache WHERE hash = ?", hash);
	}
	db_pool_release(h->idx, db);
}

/* Release the pins no longer needed: the chunk is in a file of the folder,
 * or the commit lease lapsed. A replica pin of the same chunk goes too; the
 * file holds it. */
static void sweep(struct host *h)
{
	int64_t now = now_ms(), last = atomic_load(&last_sweep);
	if (now - last < PIN_SWEEP_MS || !atomic_compare_exchange_strong(&last_sweep, &last, now))
		return;
	struct db *db = db_pool_acquire(h->idx);
	struct db_stmt *st = db_query(db,
	                              "SELECT u.hash FROM upload_pins u WHERE u.at < ? OR EXISTS "
	                              "(SELECT 1 FROM chunks c JOIN files f ON f.path = c.path "
	                              "WHERE c.hash = u.hash AND f.local = 1)",
	                              now - UPLOAD_PIN_MAX_MS);
	json_t *done = json_array();
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(done, json_string(db_col_text(st, 0)));
	db_finalize(st);
	size_t i;
	json_t *v;
	json_array_foreach(done, i, v)
	{
		db_run(db, "DELETE FROM upload_pins WHERE hash = ?", json_string_value(v));
		idx_cache_pin(db, json_string_value(v), false);
	}
	db_pool_release(h->idx, db);
	if (json_array_size(done))
		log_info(
		    "upload: released %zu pinned chunks (in the folder now, or never committed)",
		    json_array_size(done));
	json_decref(done);
}

/* ---- the request ---- */

/* Check the token and the room before the body; NULL after replying. */
static struct chunk_up *begin(struct host *h, struct MHD_Connection *conn, const char *hash)
{
	const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	const char *tok = authz && strncmp(authz, "Bearer ", 7) == 0 ? authz + 7 : NULL, *why;
	if (!hash_hex_valid(hash)) {
		serve_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_hash",
		            "a chunk is named by 64 lowercase hex digits");
		return NULL;
	}
	json_t *claims =
	    tok && *tok ? token_verify(tok, keyring_key, &h->keys, keyring_now_ms(&h->keys), &why)
	                : NULL;
	if (!claims) {
		serve_error(conn, MHD_HTTP_UNAUTHORIZED,
		            tok && *tok ? "invalid_token" : "unauthorized",
		            tok && *tok ? why : "an upload token signed by the hub is required");
		return NULL;
	}
	int64_t host = 0, max = 0;
	char *path = serve_upload_path(claims);
	bool ok = serve_claims_grant(claims, h->c.ws_id, "chunk-upload") &&
	          json_get_int(claims, "host", &host) && host == h->host_id &&
	          json_get_int(claims, "max", &max) && max > 0 && path;
	json_decref(claims);
	if (!ok || host_policy(h, path) != POL_PINNED) {
		serve_error(conn, ok ? MHD_HTTP_CONFLICT : MHD_HTTP_FORBIDDEN,
		            ok ? "not_kept_here" : "wrong_scope",
		            ok ? "this host does not keep that folder; upload to the hub"
		               : "the token does not grant uploading to this host");
		free(path);
		return NULL;
	}
	free(path);
	if (max > CHUNK_MAX_LIMIT)
		max = CHUNK_MAX_LIMIT;
	int64_t cl = http_content_length(
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length"));
	struct statvfs vfs;
	if (cl > max) {
		serve_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
		            "a chunk is at most the workspace's chunk_max");
		return NULL;
	}
	if (statvfs(h->state_dir, &vfs) == 0 &&
	    (cl > 0 ? cl : max) > (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize - UPLOAD_ROOM) {
		serve_error(conn, MHD_HTTP_INSUFFICIENT_STORAGE, "no_space",
		            "this host has no room for that chunk");
		return NULL;
	}
	struct chunk_up *u = xcalloc(1, sizeof *u);
	u->magic = CHUNK_UPLOAD_MAGIC;
	memcpy(u->hash, hash, HASH_HEX_LEN + 1);
	u->token = xstrdup(tok);
	u->max = max;
	u->w = store_writer_new(h->cache);
	if (!u->w) {
		serve_upload_release(u);
		serve_error(conn, MHD_HTTP_INSUFFICIENT_STORAGE, "storage_error",
		            "this host cannot write to its cache");
		return NULL;
	}
	return u;
}

static void body(struct chunk_up *u, const char *data, size_t len)
{
	if (u->status)
		return; /* the rest is dropped; the error is answered at the end */
	u->size += (int64_t)len;
	if (u->size > u->max) {
		u->status = MHD_HTTP_CONTENT_TOO_LARGE;
		u->code = "body_too_large";
		u->msg = "a chunk is at most the workspace's chunk_max";
	} else if (store_writer_write(u->w, data, len) != 0) {
		u->status = MHD_HTTP_INSUFFICIENT_STORAGE;
		u->code = "storage_error";
		u->msg = "this host could not write the chunk";
	}
}

/* Curl handles for reports, kept so their connections to the hub are reused
 * (a report per chunk). */
#define CURL_POOL 16
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static CURL *pool[CURL_POOL];
static int npool;

static CURL *curl_take(struct host *h)
{
	pthread_mutex_lock(&pool_mu);
	CURL *c = npool ? pool[--npool] : NULL;
	pthread_mutex_unlock(&pool_mu);
	return c ? c : client_curl(&h->c);
}

static void curl_give(CURL *c)
{
	pthread_mutex_lock(&pool_mu);
	if (npool < CURL_POOL) {
		pool[npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
	if (c)
		curl_easy_cleanup(c);
}

/* Tell the hub; 0, or the hub's refusal (or 503) answered to the client. */
static long report(struct host *h, struct chunk_up *u, struct MHD_Connection *conn)
{
	CURL *curl = curl_take(h);
	char *url = client_ws_url(&h->c, "/hosts/self/uploads", NULL);
	json_t *req = json_pack("{s:s, s:[{s:s, s:I}]}", "token", u->token, "chunks", "hash",
	                        u->hash, "size", (json_int_t)u->size),
	       *out = NULL;
	char err[256];
	long st = client_request(&h->c, curl, "POST", url, req, &out, err);
	json_decref(req);
	free(url);
	curl_give(curl);
	json_t *e = json_object_get(out, "error");
	/* The hub's refusal of the uploader or the chunk is the client's answer;
	 * anything else (our own credential refused, the hub down) is ours. */
	bool passed = st == 403 || st == 404 || st == 409 || st == 413 || st == 507;
	if (passed && json_get_str(e, "code") && json_get_str(e, "message"))
		serve_error(conn, (unsigned)st, json_get_str(e, "code"),
		            json_get_str(e, "message"));
	else if (st != 200)
		serve_error(
		    conn, MHD_HTTP_SERVICE_UNAVAILABLE, "hub_unavailable",
		    "this host cannot record the chunk with the hub now; send it elsewhere");
	json_decref(out);
	return st == 200 ? 0 : st ? st : 503;
}

static enum MHD_Result finish(struct host *h, struct MHD_Connection *conn, struct chunk_up *u)
{
	if (u->status)
		return serve_error(conn, u->status, u->code, u->msg);
	if (u->size == 0)
		return serve_error(conn, MHD_HTTP_BAD_REQUEST, "empty_chunk",
		                   "a chunk cannot be empty");
	bool had = store_has(h->cache, u->hash);
	char got[HASH_HEX_LEN + 1];
	int rc = store_writer_commit(u->w, u->hash, got);
	u->w = NULL;
	if (rc == -EBADMSG)
		return serve_error(
		    conn, MHD_HTTP_UNPROCESSABLE_CONTENT, "hash_mismatch",
		    "the body's SHA-256 does not match the chunk's name; nothing stored");
	if (rc != 0)
		return serve_error(conn, MHD_HTTP_INSUFFICIENT_STORAGE, "storage_error",
		                   strerror(-rc));
	pin(h, u->hash, u->size);
	if (report(h, u, conn) != 0) {
		unpin(h, u->hash, !had);
		return MHD_YES; /* answered */
	}
	if (!had)
		atomic_fetch_add(&h->cache_bytes, u->size);
	sweep(h);
	return serve_json(conn, MHD_HTTP_CREATED,
	                  json_pack("{s:s, s:I, s:I}", "hash", u->hash, "size", (json_int_t)u->size,
	                            "host_id", (json_int_t)h->host_id));
}

enum MHD_Result serve_upload_request(struct host *h, struct MHD_Connection *conn, const char *url,
                                     const char *data, size_t *size, void **con_cls)
{
	struct chunk_up *u = *con_cls;
	if (!u) {
		u = begin(h, conn, url + strlen("/chunks/"));
		*con_cls = u;
		return MHD_YES; /* answered if NULL */
	}
	if (*size) {
		body(u, data, *size);
		*size = 0;
		return MHD_YES;
	}
	return finish(h, conn, u);
}
