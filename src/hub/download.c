/* download: files streamed from their chunks (with Range), and single chunks.
 * Each chunk comes from chunksrc (the store, or a host of the workspace when
 * the store lacks it or the grant is unproven), verified against its hash; a
 * chunk no source can give ends the response with an error rather than
 * serving bad bytes.
 *
 * Chunks that must come from hosts or an S3 store are fetched ahead by
 * worker threads of the download's own (struct ahead), so a transfer
 * overlaps sending the chunk before it. Hosts get one worker (one chunk at a
 * time from them) and AHEAD_BYTES; an S3 store gets up to AHEAD_WORKERS and
 * AHEAD_BYTES_S3, so several GETs are in flight at once (one at a time left
 * the store idle between requests). A download's memory is that window's
 * slots, whatever the file's size.
 *
 * Threads: request threads; a response's reader runs on one at a time; the
 * download's ahead workers, joined when the response is freed. */
#include "hub.h"
#include "meta.h"
#include "upload.h"
#include "download.h"
#include "chunksrc.h"
#include "possess.h"
#include "traffic.h"
#include "op_http.h"
#include "ops/ops.h"
#include "../core/content.h"
#include "../core/hash.h"
#include "../core/path.h"
#include "../core/util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dl_chunk {
	char hash[HASH_HEX_LEN + 1];
	int64_t off, size;
	bool proven; /* the workspace's grant: the store's copy may be served */
	bool remote; /* not servable from the store (a host's) or the store is S3: fetched ahead */
};

#define AHEAD_BYTES (16ll * 1024 * 1024) /* host chunks fetched ahead of the reader */
#define AHEAD_BYTES_S3                                                                             \
	(16ll * 1024 * 1024) /* an S3 store's (32 MiB: hub 64.2 MiB moving 4 GiB)                  \
	                      */
#define AHEAD_MAX     8
#define AHEAD_WORKERS 8 /* GETs in flight per download from an S3 store (at most) */

enum slot_state { SLOT_FREE, SLOT_FETCHING, SLOT_READY, SLOT_FAILED };

/* The worker's share of a download: the chunk list (a copy), the window the
 * reader wants fetched, and the slots holding fetched chunks. */
struct ahead {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread[AHEAD_WORKERS];
	int nworkers, started; /* started: workers that took their src */
	int64_t window;        /* bytes of chunks fetched ahead */
	bool stop;
	struct chunksrc *src[AHEAD_WORKERS]; /* each worker's own (its own connections) */
	struct dl_chunk *chunks;
	size_t n, from, to; /* fetch remote chunks in [from, to) */
	int nslots;
	struct {
		ssize_t idx;
		enum slot_state state;
		uint8_t *buf;
	} slot[AHEAD_MAX];
};

struct download {
	struct hub *hub;
	struct chunksrc *src;
	struct dl_chunk *chunks;
	size_t n;
	int64_t start, len; /* the byte range served */
	uint8_t *buf;       /* one chunk, verified */
	int64_t buf_cap;
	ssize_t loaded;      /* index of the chunk in buf, -1 none */
	int64_t ws, sent;    /* for the workspace's transfer counts */
	size_t prefetched;   /* chunks below this index have had readahead */
	struct ahead *ahead; /* NULL: every chunk is in the store */
};

/* Keep the disk busy READAHEAD bytes ahead of the chunk being sent. */
#define READAHEAD (16ll * 1024 * 1024)

/* Stop the workers, wait for them (at most the chunk each is fetching: the
 * stall limit bounds that) and free it all. Joined rather than detached, so
 * no worker outlives the hub's pool and store at shutdown. */
static void ahead_free(struct ahead *a)
{
	pthread_mutex_lock(&a->mu);
	a->stop = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	for (int w = 0; w < a->nworkers; w++)
		pthread_join(a->thread[w], NULL);
	for (int w = 0; w < AHEAD_WORKERS; w++)
		chunksrc_close(a->src[w]);
	for (int i = 0; i < a->nslots; i++)
		free(a->slot[i].buf);
	free(a->chunks);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

/* Under a->mu: a remote chunk in the window no slot holds, and a slot for
 * it (one outside the window is reused). False if there is none. */
static bool ahead_next(struct ahead *a, size_t *idx, int *slot)
{
	for (size_t i = a->from; i < a->to; i++) {
		if (!a->chunks[i].remote)
			continue;
		int free_slot = -1;
		bool held = false;
		for (int k = 0; k < a->nslots && !held; k++) {
			ssize_t si = a->slot[k].idx;
			held = si == (ssize_t)i && a->slot[k].state != SLOT_FREE;
			bool stale = a->slot[k].state == SLOT_FREE ||
			             (a->slot[k].state != SLOT_FETCHING &&
			              (si < (ssize_t)a->from || si >= (ssize_t)a->to));
			if (stale && free_slot < 0)
				free_slot = k;
		}
		if (held)
			continue;
		if (free_slot < 0)
			return false;
		*idx = i;
		*slot = free_slot;
		return true;
	}
	return false;
}

static void *ahead_main(void *arg)
{
	struct ahead *a = arg;
	pthread_mutex_lock(&a->mu);
	struct chunksrc *src = a->src[a->started++];
	while (!a->stop) {
		size_t i;
		int k;
		if (!ahead_next(a, &i, &k)) {
			pthread_cond_wait(&a->cv, &a->mu);
			continue;
		}
		a->slot[k].idx = (ssize_t)i;
		a->slot[k].state = SLOT_FETCHING;
		const struct dl_chunk *c = &a->chunks[i];
		pthread_mutex_unlock(&a->mu);
		int64_t n = chunksrc_read(src, c->hash, c->size, c->proven, a->slot[k].buf);
		pthread_mutex_lock(&a->mu);
		a->slot[k].state = n == c->size ? SLOT_READY : SLOT_FAILED;
		pthread_cond_broadcast(&a->cv);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* Start fetching d's remote chunks ahead, if it has any: at most window
 * bytes of them, with up to `workers` threads (no more than there are slots:
 * window / the biggest chunk, at most AHEAD_MAX). */
static void ahead_start(struct download *d, struct db *db, int workers, int64_t window)
{
	bool any = false;
	for (size_t i = 0; i < d->n && !any; i++)
		any = d->chunks[i].remote;
	if (!any || d->buf_cap <= 0)
		return;
	struct ahead *a = xcalloc(1, sizeof *a);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	a->chunks = xmalloc(d->n * sizeof *a->chunks);
	memcpy(a->chunks, d->chunks, d->n * sizeof *a->chunks);
	a->n = d->n;
	a->window = window;
	int64_t k = window / d->buf_cap;
	a->nslots = k < 1 ? 1 : k > AHEAD_MAX ? AHEAD_MAX : (int)k;
	for (int i = 0; i < a->nslots; i++) {
		a->slot[i].idx = -1;
		a->slot[i].buf = xmalloc((size_t)d->buf_cap);
	}
	if (workers > a->nslots)
		workers = a->nslots;
	if (workers > AHEAD_WORKERS)
		workers = AHEAD_WORKERS;
	for (int w = 0; w < workers; w++)
		a->src[w] = chunksrc_open(d->hub, db, d->ws);
	/* Fewer threads than asked for still work; none: the reader alone. */
	while (a->nworkers < workers &&
	       pthread_create(&a->thread[a->nworkers], NULL, ahead_main, a) == 0)
		a->nworkers++;
	if (a->nworkers == 0) {
		for (int w = 0; w < AHEAD_WORKERS; w++)
			chunksrc_close(a->src[w]);
		for (int i = 0; i < a->nslots; i++)
			free(a->slot[i].buf);
		free(a->chunks);
		pthread_cond_destroy(&a->cv);
		pthread_mutex_destroy(&a->mu);
		free(a);
		a = NULL;
	}
	d->ahead = a;
}

/* Chunk i into d->buf: from the worker's slot if it has (or is fetching)
 * it, else fetched here; then the window moves past i. */
static int64_t ahead_take(struct download *d, size_t i)
{
	struct ahead *a = d->ahead;
	const struct dl_chunk *c = &d->chunks[i];
	int64_t n = -ENOENT;
	pthread_mutex_lock(&a->mu);
	/* The window first, so a worker that is idle starts on the next ones;
	 * it holds i itself while this thread waits for it (a slot in the
	 * window is never reused). */
	a->from = i;
	a->to = i + 1;
	int64_t bytes = 0;
	while (a->to < a->n && bytes + a->chunks[a->to].size <= a->window)
		bytes += a->chunks[a->to++].size;
	pthread_cond_broadcast(&a->cv);
	int k;
	for (;;) {
		for (k = 0; k < a->nslots; k++)
			if (a->slot[k].idx == (ssize_t)i && a->slot[k].state != SLOT_FREE)
				break;
		if (k == a->nslots || a->slot[k].state != SLOT_FETCHING)
			break;
		pthread_cond_wait(&a->cv, &a->mu);
	}
	if (k < a->nslots && a->slot[k].state == SLOT_READY) {
		uint8_t *t = d->buf; /* swap: the slot gets the old buffer */
		d->buf = a->slot[k].buf;
		a->slot[k].buf = t;
		n = c->size;
	}
	if (k < a->nslots)
		a->slot[k].state = SLOT_FREE;
	a->from = i + 1;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	/* Not fetched ahead, or the worker's sources failed: this thread tries
	 * every holder again. */
	return n == c->size ? n : chunksrc_read(d->src, c->hash, c->size, c->proven, d->buf);
}

static void download_free(void *cls)
{
	struct download *d = cls;
	if (d->ahead)
		ahead_free(d->ahead);
	traffic_add(d->hub, d->ws, 0, d->sent);
	chunksrc_close(d->src);
	free(d->chunks);
	free(d->buf);
	free(d);
}

static size_t find_chunk(const struct download *d, int64_t off)
{
	size_t lo = 0, hi = d->n;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (d->chunks[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static ssize_t download_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct download *d = cls;
	if ((int64_t)pos >= d->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	int64_t abs = d->start + (int64_t)pos;
	const struct dl_chunk *c = d->loaded >= 0 ? &d->chunks[d->loaded] : NULL;
	if (!c || abs < c->off || abs >= c->off + c->size) {
		size_t i = find_chunk(d, abs);
		c = &d->chunks[i];
		int64_t n = c->remote && d->ahead
		                ? ahead_take(d, i)
		                : chunksrc_read(d->src, c->hash, c->size, c->proven, d->buf);
		if (n != c->size) {
			log_error("download: chunk %s unavailable (%s); response aborted", c->hash,
			          n < 0 ? strerror((int)-n) : "wrong size");
			d->loaded = -1;
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		d->loaded = (ssize_t)i;
		/* Overlap the next chunks' disk reads with sending this one. */
		if (d->prefetched <= i)
			d->prefetched = i + 1;
		for (; d->prefetched < d->n &&
		       d->chunks[d->prefetched].off - (c->off + c->size) < READAHEAD;
		     d->prefetched++)
			if (d->chunks[d->prefetched].proven)
				store_prefetch(d->hub->store, d->chunks[d->prefetched].hash);
	}
	int64_t in_chunk = c->off + c->size - abs;
	int64_t in_range = d->start + d->len - abs;
	int64_t n = in_chunk < in_range ? in_chunk : in_range;
	if (n > (int64_t)max)
		n = (int64_t)max;
	memcpy(out, d->buf + (abs - c->off), (size_t)n);
	atomic_fetch_add(&d->hub->m.bytes_served, n);
	d->sent += n;
	return (ssize_t)n;
}

enum MHD_Result api_content(struct req *r)
{
	char *path = req_path_arg(r, "path");
	if (!path)
		return MHD_YES;
	const char *vs = req_arg(r, "version", NULL);
	int64_t v = vs ? parse_id(vs) : 0;
	struct file_info fi;
	bool found = (!vs || v > 0) && meta_readable_version(r, path, v, &fi);
	free(path);
	if (vs && v <= 0)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_version",
		                   "version must be a positive integer");
	if (!found)
		return MHD_YES;
	/* On the dashboard's origin a file is always a download, never a page. */
	return serve_version(r, &fi, r->dash);
}

enum MHD_Result serve_version(struct req *r, struct file_info *fi_in, bool attachment)
{
	struct file_info fi = *fi_in;
	struct download *d = xcalloc(1, sizeof *d);
	d->hub = r->hub;
	d->ws = r->ws_id;
	d->loaded = -1;
	size_t cap = 0;
	struct db_stmt *st =
	    db_query(r->db,
	             "SELECT vc.chunk_hash, vc.chunk_offset, vc.size, COALESCE(wc.proven, 0) FROM "
	             "version_chunks vc LEFT JOIN workspace_chunks wc ON wc.workspace_id = ? AND "
	             "wc.chunk_hash = vc.chunk_hash WHERE vc.version_id = ? ORDER BY vc.idx",
	             r->ws_id, fi.version_id);
	while (st && db_step(st) == DB_ROW) {
		if (d->n == cap) {
			cap = cap ? cap * 2 : 64;
			d->chunks = xrealloc(d->chunks, cap * sizeof *d->chunks);
		}
		struct dl_chunk *c = &d->chunks[d->n++];
		snprintf(c->hash, sizeof c->hash, "%s", db_col_text(st, 0));
		c->off = db_col_int64(st, 1);
		c->size = db_col_int64(st, 2);
		c->proven = db_col_int64(st, 3) != 0;
		if (c->size > d->buf_cap)
			d->buf_cap = c->size;
	}
	db_finalize(st);

	int64_t size = fi.size;
	d->start = 0;
	d->len = size;
	int range = http_parse_range(req_header(r, "Range"), size, &d->start, &d->len);
	char buf[128];
	if (range < 0) {
		download_free(d);
		snprintf(buf, sizeof buf, "bytes */%lld", (long long)size);
		json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", "range_not_satisfiable",
		                      "message", "the range starts past the end of the file");
		return reply_json_hdr(r, MHD_HTTP_RANGE_NOT_SATISFIABLE, e, "Content-Range", buf);
	}
	/* Every chunk the range needs must be in storage with a proven grant
	 * (one stat each) or on an online host, so a lost chunk is a clear 503
	 * before any byte, not a cut download. A corrupt copy, or a host that
	 * fails, is found only as it is read: the next source is asked then. */
	json_t *holders = NULL;
	int av = d->len ? chunksrc_available(r->db, r->hub->store, r->ws_id, fi.version_id,
	                                     d->start, d->start + d->len, &holders, NULL)
	                : 1;
	if (av <= 0) {
		download_free(d);
		return av < 0 ? reply_db_error(r) : chunksrc_reply_unavailable(r, holders);
	}
	d->src = chunksrc_open(r->hub, r->db, r->ws_id);
	/* An S3 store is not asked per chunk (a HEAD each): its chunks are
	 * fetched ahead like a host's (a GET overlaps sending the one before),
	 * and one found missing there is asked of hosts as any other. */
	bool s3 = store_is_remote(r->hub->store);
	for (size_t i = 0; i < d->n; i++) {
		struct dl_chunk *c = &d->chunks[i];
		c->remote = c->off + c->size > d->start && c->off < d->start + d->len &&
		            (!c->proven || s3 || store_size(r->hub->store, c->hash) <= 0);
	}
	d->buf = xmalloc(d->buf_cap ? (size_t)d->buf_cap : 1);
	/* The first chunk before any header: a holder that is online but does
	 * not serve (gone since its heartbeat, a certificate the hub does not
	 * trust: --host-ca) is a 503 too, not a cut response. Past the first
	 * byte a failure can only cut it (after every holder was asked). */
	if (d->len) {
		size_t i = find_chunk(d, d->start);
		const struct dl_chunk *c = &d->chunks[i];
		if (chunksrc_read(d->src, c->hash, c->size, c->proven, d->buf) != c->size) {
			json_decref(holders);
			holders = chunksrc_holders(r->db, r->ws_id, c->hash);
			download_free(d);
			return chunksrc_reply_unavailable(r, holders);
		}
		d->loaded = (ssize_t)i;
	}
	ahead_start(d, r->db, s3 ? AHEAD_WORKERS : 1, s3 ? AHEAD_BYTES_S3 : AHEAD_BYTES);
	/* A long download must not hold a database connection. */
	db_pool_release(r->hub->pool, r->db);
	r->db = NULL;
	struct MHD_Response *resp = MHD_create_response_from_callback(
	    (uint64_t)d->len, 256 * 1024, download_read, d, download_free);
	content_headers(resp, fi.content_type, fi.name, attachment);
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	snprintf(buf, sizeof buf, "\"%s\"", fi.hash);
	MHD_add_response_header(resp, "ETag", r->etag ? r->etag : buf);
	MHD_add_response_header(resp, "X-Roost-Hash", fi.hash);
	if (strncmp(r->url, "/c/", 3) == 0) {
		/* A signed URL (no cookie): readable by any page, as a host's is. */
		MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
		MHD_add_response_header(resp, "Access-Control-Expose-Headers",
		                        "X-Roost-Hash, Content-Range");
	}
	snprintf(buf, sizeof buf, "%lld", (long long)fi.version_no);
	MHD_add_response_header(resp, "X-Roost-Version", buf);
	if (range > 0) {
		snprintf(buf, sizeof buf, "bytes %lld-%lld/%lld", (long long)d->start,
		         (long long)(d->start + d->len - 1), (long long)size);
		MHD_add_response_header(resp, "Content-Range", buf);
	}
	enum MHD_Result ret =
	    req_queue(r, range > 0 ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, resp);
	return ret;
}

/* A chunk is read by hash only by whoever could commit it: its uploader, or
 * a caller who may read a version that uses it (possess.c). */
static bool chunk_readable(struct req *r, const char *hash)
{
	struct chunk_ref c = {.size = 0};
	snprintf(c.hash, sizeof c.hash, "%s", hash);
	bool held = false;
	struct op_ctx oc;
	req_op_ctx(r, &oc);
	int rc = possess_check(&oc, &c, 1, &held);
	req_op_end(r, &oc);
	return rc == DB_DONE && held;
}

enum MHD_Result api_chunk_get(struct req *r)
{
	const char *hash = r->params[1];
	if (!hash_hex_valid(hash))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_hash",
		                   "the chunk id must be 64 lowercase hex digits");
	/* Only this workspace's chunks: the store is shared by workspaces. */
	int64_t size = 0;
	bool proven = false;
	/* An upload no version uses yet has no chunks row: its size is the store's. */
	struct db_stmt *st =
	    db_query(r->db,
	             "SELECT c.size, wc.proven FROM workspace_chunks wc LEFT JOIN "
	             "chunks c ON c.hash = wc.chunk_hash WHERE wc.workspace_id = ? "
	             "AND wc.chunk_hash = ?",
	             r->ws_id, hash);
	int rc = st ? db_step(st) : DB_ERR;
	if (rc == DB_ROW) {
		proven = db_col_int64(st, 1) != 0;
		size = db_col_is_null(st, 0) ? (proven ? store_size(r->hub->store, hash) : 0)
		                             : db_col_int64(st, 0);
	}
	db_finalize(st);
	if (rc == DB_ROW && (size <= 0 || !chunk_readable(r, hash)))
		rc = DB_DONE;
	if (rc != DB_ROW)
		return rc == DB_DONE ? reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
		                                   "no such chunk in this workspace")
		                     : reply_db_error(r);
	struct chunksrc *src = chunksrc_open(r->hub, r->db, r->ws_id);
	/* chunksrc takes pool connections of its own: hold none meanwhile. */
	db_pool_release(r->hub->pool, r->db);
	r->db = NULL;
	uint8_t *buf = xmalloc((size_t)size);
	int64_t n = chunksrc_read(src, hash, size, proven, buf);
	chunksrc_close(src);
	if (n != size) {
		free(buf);
		r->db = db_pool_acquire(r->hub->pool);
		if (n == -EBADMSG)
			return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "chunk_corrupt",
			                   "the hub's copy of this chunk is corrupt and no host "
			                   "holding it is online; it was not served");
		return chunksrc_reply_unavailable(r, chunksrc_holders(r->db, r->ws_id, hash));
	}
	atomic_fetch_add(&r->hub->m.bytes_served, n);
	traffic_add(r->hub, r->ws_id, 0, n);
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer((size_t)n, buf, MHD_RESPMEM_MUST_FREE);
	content_headers(resp, NULL, NULL, true);
	MHD_add_response_header(resp, "ETag", hash);
	enum MHD_Result ret = req_queue(r, MHD_HTTP_OK, resp);
	return ret;
}
