/* fetch: getting a version's bytes from the nearest source — the host's
 * side of the client library's source picker (client/chunkfetch.h).
 *
 * The picker tries each online host holding a chunk (directly, then through
 * its relay URL) and then the hub; this file adds what only a host has, tried
 * first: a local file that holds the chunk (a copy or an older version) and
 * the on-demand cache, and keeps chunks fetched from elsewhere in the cache
 * when asked to. Every chunk is verified against its hash, whatever the source.
 *
 * Threads: called by the sync thread, the content server's connection threads
 * (on-demand reads), the replica thread and roost host get; the picker starts
 * its own worker threads for parallel chunk fetches and joins them before
 * returning. */
#include "host.h"
#include "../client/chunkfetch.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Chunks are fetched by a few threads at once (the hub verifies each chunk it
 * reads, and so do we: that is CPU work worth spreading), each written at its
 * offset. Every chunk is verified against its hash and the chunk list comes
 * from the hub, so the file is the version's bytes without hashing it again. */
#define FETCH_THREADS 3

json_t *fetch_manifest(struct host *h, CURL *curl, const char *path, int64_t version, bool *gone)
{
	char *rel = version ? xasprintf("/manifest?path=%%s&version=%lld", (long long)version)
	                    : xstrdup("/manifest?path=%s");
	char *url = client_ws_url(&h->c, rel, path);
	free(rel);
	json_t *m = NULL;
	char err[256];
	long st = client_request(&h->c, curl, "GET", url, NULL, &m, err);
	free(url);
	*gone = st == 404;
	if (st != 200 || !json_is_array(json_object_get(m, "chunks"))) {
		if (st != 404)
			log_warn("manifest %s: %s", path, err[0] ? err : "the hub refused");
		json_decref(m);
		return NULL;
	}
	return m;
}

const char *fetch_peer_ca(const struct host *h)
{
	/* Relay URLs carry the relay's certificate: its CA unless told otherwise. */
	return h->cfg.peer_ca ? h->cfg.peer_ca : h->cfg.relay_ca;
}

static struct chunkfetch_opts picker_opts(const struct host *h)
{
	return (struct chunkfetch_opts){.peer_cacert = fetch_peer_ca(h),
	                                .self_host_id = h->host_id,
	                                .hub_by_hash = true,
	                                .log_failures = true};
}

static bool verified(const uint8_t *buf, int64_t n, const char *hash, int64_t size)
{
	char got[HASH_HEX_LEN + 1];
	if (n != size)
		return false;
	hash_hex(buf, (size_t)n, got);
	return strcmp(got, hash) == 0;
}

/* The chunk from a local file that holds it, verified. */
static int64_t from_local(struct host *h, struct db *db, const char *hash, int64_t size,
                          uint8_t *buf)
{
	char *path = NULL;
	int64_t off = 0, sz = 0;
	if (idx_chunk_where(db, hash, &path, &off, &sz, NULL) != 1 || sz != size) {
		free(path);
		return -1;
	}
	int fd = open_beneath(h, path, O_RDONLY, 0);
	free(path);
	if (fd < 0)
		return -1;
	ssize_t n = pread_full(fd, buf, (size_t)size, off);
	close(fd);
	return verified(buf, n, hash, size) ? size : -1;
}

/* A local file's copy, else the cache's (verified; a corrupt one is set
 * aside and reported by host_cache_read). */
static int64_t local_or_cache(struct host *h, struct db *db, const char *hash, int64_t size,
                              uint8_t *buf)
{
	if (from_local(h, db, hash, size, buf) == size) {
		atomic_fetch_add(&h->from_local, 1);
		return size;
	}
	if (host_cache_read(h, db, hash, buf, (size_t)size) == size) {
		idx_cache_touch(db, hash, size);
		atomic_fetch_add(&h->from_cache, 1);
		return size;
	}
	return -1;
}

static void count_fetched(struct host *h, enum cf_via via)
{
	atomic_fetch_add(via == CF_HUB ? &h->from_hub : &h->from_peer, 1);
}

static void keep_in_cache(struct host *h, struct db *db, const char *hash, const uint8_t *buf,
                          int64_t size)
{
	char got[HASH_HEX_LEN + 1];
	if (store_put(h->cache, buf, (size_t)size, got) == 0) {
		idx_cache_touch(db, hash, size);
		host_cache_trim(h, db);
	}
}

int64_t fetch_chunk(struct host *h, struct db *db, CURL *curl, json_t *manifest, size_t idx,
                    uint8_t *buf, size_t cap, bool to_cache)
{
	json_t *c = json_array_get(json_object_get(manifest, "chunks"), idx);
	const char *hash = json_get_str(c, "hash");
	int64_t size = 0;
	if (!hash || !json_get_int(c, "size", &size) || size <= 0 || (size_t)size > cap)
		return -EINVAL;
	if (local_or_cache(h, db, hash, size, buf) == size)
		return size;
	struct chunkfetch_opts o = picker_opts(h);
	struct chunkfetch *f = chunkfetch_new(&h->c, manifest, &o);
	if (!f)
		return -EINVAL;
	enum cf_via via;
	int64_t n = chunkfetch_chunk(f, curl, idx, buf, cap, &via);
	chunkfetch_free(f);
	if (n != size)
		return n < 0 ? n : -ENODATA;
	count_fetched(h, via);
	if (to_cache)
		keep_in_cache(h, db, hash, buf, size);
	return size;
}

/* ---- the picker's hooks for a whole version ---- */

struct job {
	struct host *h;
	int fd;
	bool to_cache;
	bool stream; /* fd is a pipe or a terminal: chunks in order, written in turn */
};

static void *worker_begin(void *cls)
{
	struct job *j = cls;
	struct db *db = db_pool_acquire(j->h->idx);
	db_set_relaxed(db, true);
	return db;
}

static void worker_end(void *cls, void *ws)
{
	struct job *j = cls;
	db_pool_release(j->h->idx, ws);
}

static int64_t hook_local(void *cls, void *ws, const char *hash, int64_t size, uint8_t *buf)
{
	struct job *j = cls;
	return local_or_cache(j->h, ws, hash, size, buf);
}

static void hook_fetched(void *cls, void *ws, const char *hash, const uint8_t *buf, int64_t size,
                         enum cf_via via)
{
	struct job *j = cls;
	count_fetched(j->h, via);
	if (j->to_cache)
		keep_in_cache(j->h, ws, hash, buf, size);
}

static int hook_write(void *cls, int64_t off, const uint8_t *buf, size_t n)
{
	struct job *j = cls;
	if (j->stream)
		return write_all(j->fd, buf, n);
	ssize_t w = pwrite(j->fd, buf, n, off);
	return w == (ssize_t)n ? 0 : w < 0 ? -errno : -EIO;
}

int fetch_content(struct host *h, struct db *db, CURL *curl, json_t *manifest, int fd,
                  bool to_cache)
{
	struct chunkfetch_opts o = picker_opts(h);
	struct chunkfetch *f = chunkfetch_new(&h->c, manifest, &o);
	if (!f)
		return -EBADMSG;
	/* roost host get PATH - writes to a pipe, which has no offsets. */
	bool stream = lseek(fd, 0, SEEK_CUR) < 0 && errno == ESPIPE;
	struct job j = {.h = h, .fd = fd, .to_cache = to_cache, .stream = stream};
	struct cf_hooks hk = {.cls = &j,
	                      .worker_begin = worker_begin,
	                      .worker_end = worker_end,
	                      .local = hook_local,
	                      .fetched = hook_fetched,
	                      .write = hook_write,
	                      .ordered = stream,
	                      .stop = &h->stop};
	int rc = chunkfetch_run(f, &hk, FETCH_THREADS, db, curl);
	chunkfetch_free(f);
	if (rc == 0 && !stream &&
	    ftruncate(fd, json_integer_value(json_object_get(manifest, "size"))) != 0)
		return -errno;
	return rc;
}

/* ---- version-scoped chunk tokens (scope "vchunks") ----
 *
 * A reader who may not read the whole workspace gets a chunk token for one
 * version. Which chunks that version holds only the hub knows: the first
 * request with such a token asks it (hosts/self/chunk-check), and the answer
 * is kept until the token expires, so a download costs one round trip. */

#define VTOKEN_CACHE 32

struct vtoken {
	char *tok;
	int64_t exp;
	json_t *hashes; /* hash -> true */
};

static struct vtoken vcache[VTOKEN_CACHE];
static pthread_mutex_t vcache_mu = PTHREAD_MUTEX_INITIALIZER;

/* Under vcache_mu: the cached answer for tok, or -1; else a slot to fill. */
static int vcache_find(const char *tok, int64_t now, int *free_slot)
{
	int victim = 0;
	for (int i = 0; i < VTOKEN_CACHE; i++) {
		struct vtoken *v = &vcache[i];
		if (v->tok && v->exp <= now) {
			free(v->tok);
			json_decref(v->hashes);
			*v = (struct vtoken){0};
		}
		if (v->tok && strcmp(v->tok, tok) == 0)
			return i;
		if (!v->tok || (vcache[victim].tok && v->exp < vcache[victim].exp))
			victim = i;
	}
	*free_slot = victim;
	return -1;
}

/* Ask the hub which chunks tok's version holds: {hash: true}, or NULL with
 * *status the hub's answer (0: not reached). */
static json_t *ask_hub(struct host *h, const char *tok, int64_t *exp, long *status)
{
	CURL *curl = client_curl(&h->c);
	char *url = client_ws_url(&h->c, "/hosts/self/chunk-check", NULL);
	json_t *body = json_pack("{s:s}", "token", tok), *out = NULL;
	char err[256];
	*status = client_request(&h->c, curl, "POST", url, body, &out, err);
	json_decref(body);
	free(url);
	curl_easy_cleanup(curl);
	json_t *set = NULL;
	if (*status == 200 && json_get_int(out, "expires_at", exp)) {
		set = json_object();
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(out, "chunks"), i, c)
		{
			if (json_is_string(c))
				json_object_set_new(set, json_string_value(c), json_true());
		}
	}
	json_decref(out);
	return set;
}

int fetch_vtoken_allows(struct host *h, const char *tok, const char *hash)
{
	int64_t now = now_ms();
	int slot = 0;
	pthread_mutex_lock(&vcache_mu);
	int i = vcache_find(tok, now, &slot);
	int ok = i >= 0 ? json_object_get(vcache[i].hashes, hash) != NULL : -1;
	pthread_mutex_unlock(&vcache_mu);
	if (ok >= 0)
		return ok;
	int64_t exp = 0;
	long st = 0;
	json_t *set = ask_hub(h, tok, &exp, &st);
	if (!set)
		return st == 403 || st == 404 ? 0 : -EAGAIN;
	ok = json_object_get(set, hash) != NULL;
	pthread_mutex_lock(&vcache_mu);
	if (vcache_find(tok, now, &slot) < 0) {
		struct vtoken *v = &vcache[slot];
		free(v->tok);
		json_decref(v->hashes);
		*v = (struct vtoken){.tok = xstrdup(tok), .exp = exp, .hashes = set};
		set = NULL;
	}
	pthread_mutex_unlock(&vcache_mu);
	json_decref(set);
	return ok;
}
