/* fetch: getting a version's bytes from the nearest source.
 *
 * The hub's manifest lists a version's chunks, the online hosts holding each
 * and a token to fetch chunks from them. For every chunk we try, in order: a
 * local file that holds it (a copy or an older version), the on-demand cache,
 * each online host holding it, then the hub's storage — and fall back down the
 * list on any failure. Every chunk is verified against its hash, whatever the
 * source.
 *
 * Threads: called by the sync thread, the content server's connection threads
 * (on-demand reads) and roost host get; it starts its own worker threads for
 * parallel chunk fetches and joins them before returning.
 */
#include "host.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK_CONNECT_S 5  /* a source that does not answer by then: try the next */
#define CHUNK_STALL_S   30 /* … and one that sends nothing for this long */

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

struct fixed_buf {
	uint8_t *buf;
	size_t cap, len;
};

static size_t into_fixed(char *p, size_t size, size_t n, void *cls)
{
	struct fixed_buf *b = cls;
	size_t add = size * n;
	if (b->len + add > b->cap)
		return 0;
	memcpy(b->buf + b->len, p, add);
	b->len += add;
	return add;
}

/* GET url into buf with a bearer token (the hub's, or a manifest's chunk
 * token for another host); the body's length, or -1. A source that is slow to
 * answer is given up on sooner than the hub's API would be: there are others. */
static int64_t get_into(struct host *h, CURL *curl, const char *url, const char *token,
                        uint8_t *buf, size_t cap)
{
	struct fixed_buf b = {buf, cap, 0};
	struct client src = {.hub = h->c.hub,
	                     .token = (char *)token,
	                     .cacert = h->c.cacert,
	                     .connect_s = CHUNK_CONNECT_S,
	                     .stall_s = CHUNK_STALL_S};
	return client_get_to(&src, curl, url, into_fixed, &b) == 200 ? (int64_t)b.len : -1;
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
	if (idx_chunk_where(db, hash, &path, &off, &sz) != 1 || sz != size) {
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

int64_t fetch_chunk(struct host *h, struct db *db, CURL *curl, json_t *manifest, size_t idx,
                    uint8_t *buf, size_t cap, bool to_cache)
{
	json_t *c = json_array_get(json_object_get(manifest, "chunks"), idx);
	const char *hash = json_get_str(c, "hash");
	int64_t size = 0;
	if (!hash || !json_get_int(c, "size", &size) || size <= 0 || (size_t)size > cap)
		return -EINVAL;
	if (from_local(h, db, hash, size, buf) == size) {
		atomic_fetch_add(&h->from_local, 1);
		return size;
	}
	if (store_read(h->cache, hash, buf, cap) == size) {
		idx_cache_touch(db, hash, size);
		atomic_fetch_add(&h->from_cache, 1);
		return size;
	}
	/* Other hosts first: they spare the hub. */
	int64_t n = -1;
	const char *tok = json_get_str(manifest, "chunk_token");
	json_t *hosts = json_object_get(manifest, "hosts"), *hid;
	size_t i;
	json_array_foreach(json_object_get(c, "hosts"), i, hid)
	{
		if (!tok || json_integer_value(hid) == h->host_id)
			continue;
		char key[24];
		snprintf(key, sizeof key, "%lld", (long long)json_integer_value(hid));
		const char *base = json_get_str(hosts, key);
		if (!base)
			continue;
		char *url = xasprintf("%s/chunks/%s", base, hash);
		n = get_into(h, curl, url, tok, buf, cap);
		free(url);
		if (verified(buf, n, hash, size)) {
			atomic_fetch_add(&h->from_peer, 1);
			break;
		}
		log_warn("chunk %.12s: host %s failed; trying the next source", hash, key);
		n = -1;
	}
	if (n < 0) {
		char *rel = xasprintf("/chunks/%s", hash);
		char *url = client_ws_url(&h->c, rel, NULL);
		free(rel);
		n = get_into(h, curl, url, h->c.token, buf, cap);
		free(url);
		if (!verified(buf, n, hash, size)) {
			log_warn("chunk %.12s: the hub could not give it", hash);
			return -EIO;
		}
		atomic_fetch_add(&h->from_hub, 1);
	}
	if (to_cache) {
		char got[HASH_HEX_LEN + 1];
		if (store_put(h->cache, buf, (size_t)size, got) == 0) {
			idx_cache_touch(db, hash, size);
			atomic_store(&h->cache_bytes,
			             idx_cache_trim(db, h->cache, h->cfg.cache_max));
		}
	}
	return size;
}

/* Chunks are fetched by a few threads at once (the hub verifies each chunk it
 * reads, and so do we: that is CPU work worth spreading), each written at its
 * offset. Every chunk is verified against its hash and the chunk list comes
 * from the hub, so the file is the version's bytes without hashing it again. */
#define FETCH_THREADS 3

struct fetch_job {
	struct host *h;
	json_t *m;
	int fd;
	bool to_cache;
	size_t cap, n;
	atomic_size_t next;
	atomic_int err;
};

/* With db and curl given, the caller's own (the single-thread case). */
static void fetch_run(struct fetch_job *j, struct db *db, CURL *curl)
{
	uint8_t *buf = xmalloc(j->cap ? j->cap : 1);
	json_t *chunks = json_object_get(j->m, "chunks");
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1);
		if (i >= j->n || atomic_load(&j->err) || atomic_load(&j->h->stop))
			break;
		int64_t off =
		    json_integer_value(json_object_get(json_array_get(chunks, i), "offset"));
		int64_t n = fetch_chunk(j->h, db, curl, j->m, i, buf, j->cap, j->to_cache);
		int rc = n < 0 ? (int)n : 0;
		if (rc == 0 && pwrite(j->fd, buf, (size_t)n, off) != n)
			rc = -EIO;
		if (rc) {
			int zero = 0;
			atomic_compare_exchange_strong(&j->err, &zero, rc);
		}
	}
	free(buf);
}

static void *fetch_worker(void *arg)
{
	struct fetch_job *j = arg;
	struct db *db = db_pool_acquire(j->h->idx);
	db_set_relaxed(db, true);
	CURL *curl = client_curl(&j->h->c);
	fetch_run(j, db, curl);
	curl_easy_cleanup(curl);
	db_pool_release(j->h->idx, db);
	return NULL;
}

int fetch_content(struct host *h, struct db *db, CURL *curl, json_t *manifest, int fd,
                  bool to_cache)
{
	json_t *chunks = json_object_get(manifest, "chunks"), *c;
	struct fetch_job j = {.h = h, .m = manifest, .fd = fd, .to_cache = to_cache};
	size_t i;
	int64_t total = 0;
	json_array_foreach(chunks, i, c)
	{
		int64_t s = json_integer_value(json_object_get(c, "size"));
		if (json_integer_value(json_object_get(c, "offset")) != total || s <= 0)
			return -EBADMSG; /* the chunks must tile the file */
		total += s;
		if (s > (int64_t)j.cap)
			j.cap = (size_t)s;
	}
	if (total != json_integer_value(json_object_get(manifest, "size")))
		return -EBADMSG;
	j.n = json_array_size(chunks);
	int nth = j.n < FETCH_THREADS ? (int)j.n : FETCH_THREADS;
	pthread_t th[FETCH_THREADS];
	/* The caller's thread works too, with its own connections: a small
	 * file needs no thread and no new connection to the hub. */
	for (int t = 1; t < nth; t++)
		pthread_create(&th[t], NULL, fetch_worker, &j);
	fetch_run(&j, db, curl);
	for (int t = 1; t < nth; t++)
		pthread_join(th[t], NULL);
	if (!j.err && atomic_load(&h->stop))
		return -EINTR;
	if (!j.err && ftruncate(fd, total) != 0)
		return -errno;
	return atomic_load(&j.err);
}
