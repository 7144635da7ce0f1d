/* chunkfetch: the source picker (see chunkfetch.h) — the sources of one
 * manifest with their failure marks and byte counts, one chunk from the
 * nearest source that gives it verified bytes, and the parallel run over a
 * version's chunks (in any order, or in file order through a reorder window).
 *
 * Threads: the workers chunkfetch_run starts and the caller's thread share a
 * struct chunkfetch: the sources' marks and counts are atomics, the run's
 * queue and window are under its mutex. */
#include "chunkfetch.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MISSES_TO_FAIL 3    /* 404s for chunks the manifest says a source holds */
#define ERR_BODY_MAX   4096 /* of an error answer, kept to say why */

struct cf_source {
	enum cf_via via;
	int64_t host_id; /* 0: the hub or local */
	char *url;       /* base URL (hosts, relays), NULL for the hub and local */
	char *label;
	atomic_bool failed;
	atomic_int misses;
	atomic_llong bytes, chunks;
};

struct cf_chunk {
	const char *hash; /* borrowed from the manifest */
	int64_t off, size;
	json_t *holders; /* host ids, borrowed */
};

struct chunkfetch {
	const struct client *c;
	struct chunkfetch_opts o;
	const char *token; /* the manifest's chunk token, or NULL */
	const char *path;
	int64_t version;
	struct cf_chunk *chunks;
	size_t n, max_chunk;
	bool tiles;            /* the chunks tile the manifest's size: a whole file */
	struct cf_source *src; /* [0] local, then direct hosts, relays, [nsrc-1] the hub */
	size_t nsrc;
	pthread_mutex_t mu;
	char err[512];
};

const char *chunkfetch_via_name(enum cf_via via)
{
	static const char *names[] = {"local", "host", "relay", "hub"};
	return names[via];
}

static void add_source(struct chunkfetch *f, enum cf_via via, int64_t id, const char *url,
                       const char *label)
{
	struct cf_source *s = &f->src[f->nsrc++];
	s->via = via;
	s->host_id = id;
	s->url = url ? xstrdup(url) : NULL;
	for (size_t n = url ? strlen(s->url) : 0; n > 0 && s->url[n - 1] == '/'; n--)
		s->url[n - 1] = 0; /* a relay URL ends in '/': one slash before chunks/ */
	s->label = label ? xstrdup(label) : NULL;
}

/* The hosts' sources: the manifest's "sources" {ID: {url, relay_url, label}},
 * or from an older hub "hosts" {ID: url}. Direct URLs before relayed ones. */
static void add_host_sources(struct chunkfetch *f, json_t *m)
{
	json_t *rich = json_object_get(m, "sources"), *plain = json_object_get(m, "hosts"), *v;
	const char *key;
	for (int pass = 0; pass < 2; pass++) {
		json_object_foreach(rich ? rich : plain, key, v)
		{
			int64_t id = atoll(key);
			const char *url = rich ? json_get_str(v, rich && pass ? "relay_url" : "url")
			                       : (pass ? NULL : json_string_value(v));
			if (id > 0 && url &&
			    (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8)))
				add_source(f, pass ? CF_RELAY : CF_HOST, id, url,
				           rich ? json_get_str(v, "label") : NULL);
		}
	}
}

struct chunkfetch *chunkfetch_new(const struct client *c, json_t *m,
                                  const struct chunkfetch_opts *o)
{
	json_t *arr = json_object_get(m, "chunks"), *ch;
	size_t n = json_array_size(arr), i;
	struct chunkfetch *f = xcalloc(1, sizeof *f);
	f->c = c;
	f->o = *o;
	f->token = json_get_str(m, "chunk_token");
	f->path = json_get_str(m, "path");
	json_get_int(m, "version", &f->version);
	f->chunks = xcalloc(n ? n : 1, sizeof *f->chunks);
	f->n = n;
	int64_t total = 0, size = -1;
	f->tiles = true;
	json_array_foreach(arr, i, ch)
	{
		struct cf_chunk *k = &f->chunks[i];
		k->hash = json_get_str(ch, "hash");
		k->holders = json_object_get(ch, "hosts");
		if (!hash_hex_valid(k->hash) || !json_get_int(ch, "size", &k->size) ||
		    k->size <= 0) {
			free(f->chunks);
			free(f);
			return NULL;
		}
		/* A list of chunks alone (no offsets: a replica's one chunk) is
		 * fetched chunk by chunk, never run as a file. */
		if (!json_get_int(ch, "offset", &k->off))
			k->off = total;
		f->tiles = f->tiles && k->off == total;
		total += k->size;
		if ((size_t)k->size > f->max_chunk)
			f->max_chunk = (size_t)k->size;
	}
	f->tiles = f->tiles && json_get_int(m, "size", &size) && size == total;
	json_t *srcs = json_object_get(m, "sources");
	size_t hosts = json_object_size(srcs ? srcs : json_object_get(m, "hosts"));
	f->src = xcalloc(2 * hosts + 2, sizeof *f->src);
	add_source(f, CF_LOCAL, 0, NULL, NULL);
	add_host_sources(f, m);
	add_source(f, CF_HUB, 0, NULL, NULL);
	pthread_mutex_init(&f->mu, NULL);
	return f;
}

void chunkfetch_free(struct chunkfetch *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->nsrc; i++) {
		free(f->src[i].url);
		free(f->src[i].label);
	}
	free(f->src);
	free(f->chunks);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

size_t chunkfetch_max_chunk(const struct chunkfetch *f)
{
	return f->max_chunk;
}

size_t chunkfetch_count(const struct chunkfetch *f)
{
	return f->n;
}

const char *chunkfetch_error(const struct chunkfetch *f)
{
	return f->err[0] ? f->err : NULL;
}

static struct cf_source *find_source(struct chunkfetch *f, enum cf_via via, int64_t id)
{
	for (size_t i = 0; i < f->nsrc; i++)
		if (f->src[i].via == via && f->src[i].host_id == id)
			return &f->src[i];
	return NULL;
}

static void account(struct cf_source *s, int64_t size)
{
	atomic_fetch_add(&s->bytes, size);
	atomic_fetch_add(&s->chunks, 1);
}

void chunkfetch_count_local(struct chunkfetch *f, int64_t size)
{
	account(&f->src[0], size);
}

/* ---- one GET into a chunk buffer ---- */

struct into {
	CURL *curl;
	uint8_t *buf;
	size_t cap, len;
	bool error; /* an error answer: its body goes to ebuf */
	char ebuf[ERR_BODY_MAX + 1];
	size_t elen;
};

static size_t into_buf(char *p, size_t size, size_t n, void *cls)
{
	struct into *b = cls;
	size_t add = size * n;
	long code = 0;
	curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &code);
	if (code >= 300) {
		b->error = true;
		size_t take = ERR_BODY_MAX - b->elen < add ? ERR_BODY_MAX - b->elen : add;
		memcpy(b->ebuf + b->elen, p, take);
		b->elen += take;
		b->ebuf[b->elen] = 0;
		return add;
	}
	if (b->len + add > b->cap)
		return 0; /* more than the chunk: not it */
	memcpy(b->buf + b->len, p, add);
	b->len += add;
	return add;
}

/* GET url with a bearer token (and a byte range) into b; the HTTP status, 0
 * when the source was not reached or sent too much. A source slow to connect
 * or stalling is given up on sooner than the hub's API would be. */
static long get_into(CURL *curl, const char *url, const char *token, const char *cacert,
                     const char *range, struct into *b)
{
	struct client src = {.cacert = (char *)cacert,
	                     .connect_s = CHUNKFETCH_CONNECT_S,
	                     .stall_s = CHUNKFETCH_STALL_S};
	client_curl_reset(&src, curl);
	char *auth = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
	struct curl_slist *h = auth ? curl_slist_append(NULL, auth) : NULL;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, into_buf);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
	if (range)
		curl_easy_setopt(curl, CURLOPT_RANGE, range);
	b->curl = curl;
	long status = 0;
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	free(auth);
	return status;
}

static bool verified(const uint8_t *buf, size_t n, const struct cf_chunk *k)
{
	char got[HASH_HEX_LEN + 1];
	if ((int64_t)n != k->size)
		return false;
	hash_hex(buf, n, got);
	return strcmp(got, k->hash) == 0;
}

static void log_source(struct chunkfetch *f, const struct cf_source *s, const struct cf_chunk *k,
                       const char *what)
{
	if (!f->o.log_failures)
		return;
	if (s->via == CF_HUB)
		log_warn("chunk %.12s: the hub %s", k->hash, what);
	else
		log_warn("chunk %.12s: host %lld (%s) %s; trying the next source", k->hash,
		         (long long)s->host_id, s->via == CF_RELAY ? "relay" : "direct", what);
}

/* Ask a host or relay source: 1 got it, 0 it lacks it, -1 it failed. */
static int try_host(struct chunkfetch *f, struct cf_source *s, CURL *curl, const struct cf_chunk *k,
                    struct into *b)
{
	char *url = xasprintf("%s/chunks/%s", s->url, k->hash);
	long st = get_into(curl, url, f->token, f->o.peer_cacert, NULL, b);
	free(url);
	if (st == 200 && verified(b->buf, b->len, k)) {
		atomic_store(&s->misses, 0);
		return 1;
	}
	if (st == 404 && atomic_fetch_add(&s->misses, 1) + 1 < MISSES_TO_FAIL) {
		log_source(f, s, k, "does not hold it");
		return 0;
	}
	atomic_store(&s->failed, true);
	log_source(f, s, k, st == 200 ? "sent wrong bytes" : st ? "refused" : "did not answer");
	return -1;
}

/* The hub: by hash (hosts), or the chunk's byte range of the version (any
 * reader: the hub checks access by path and fetches what it lacks). */
static bool try_hub(struct chunkfetch *f, struct cf_source *s, CURL *curl, const struct cf_chunk *k,
                    struct into *b)
{
	char *url, *range = NULL;
	if (f->o.hub_by_hash || !f->path || f->version <= 0) {
		char *rel = xasprintf("/chunks/%s", k->hash);
		url = client_ws_url(f->c, rel, NULL);
		free(rel);
	} else {
		char *rel = xasprintf("/content?path=%%s&version=%lld", (long long)f->version);
		url = client_ws_url(f->c, rel, f->path);
		free(rel);
		range =
		    xasprintf("%lld-%lld", (long long)k->off, (long long)(k->off + k->size - 1));
	}
	long st = get_into(curl, url, f->c->token, f->c->cacert, range, b);
	free(url);
	free(range);
	if ((st == 200 || st == 206) && verified(b->buf, b->len, k))
		return true;
	json_t *e = b->error ? json_loads(b->ebuf, 0, NULL) : NULL;
	const char *msg = json_get_str(json_object_get(e, "error"), "message");
	pthread_mutex_lock(&f->mu);
	if (msg)
		snprintf(f->err, sizeof f->err, "%s (HTTP %ld)", msg, st);
	else if (st)
		snprintf(f->err, sizeof f->err,
		         "chunk %.12s: no source gave it (the hub: HTTP %ld)", k->hash, st);
	else
		snprintf(f->err, sizeof f->err,
		         "chunk %.12s: no source gave it (the hub at %s did "
		         "not answer)",
		         k->hash, f->c->hub);
	pthread_mutex_unlock(&f->mu);
	json_decref(e);
	log_source(f, s, k, "could not give it");
	return false;
}

int64_t chunkfetch_chunk(struct chunkfetch *f, CURL *curl, size_t idx, uint8_t *buf, size_t cap,
                         enum cf_via *via)
{
	if (idx >= f->n || (size_t)f->chunks[idx].size > cap)
		return -EINVAL;
	const struct cf_chunk *k = &f->chunks[idx];
	struct into *b = xmalloc(sizeof *b);
	size_t nh = json_array_size(k->holders);
	/* Holders in turn, starting at a different one per chunk: the load spreads. */
	for (enum cf_via phase = CF_HOST; f->token && phase <= CF_RELAY; phase++) {
		for (size_t j = 0; j < nh; j++) {
			int64_t id = json_integer_value(json_array_get(k->holders, (idx + j) % nh));
			struct cf_source *s =
			    id == f->o.self_host_id ? NULL : find_source(f, phase, id);
			if (!s || atomic_load(&s->failed))
				continue;
			*b = (struct into){.buf = buf, .cap = cap};
			if (try_host(f, s, curl, k, b) == 1) {
				account(s, k->size);
				*via = phase;
				free(b);
				return k->size;
			}
		}
	}
	struct cf_source *hub = &f->src[f->nsrc - 1];
	*b = (struct into){.buf = buf, .cap = cap};
	bool ok = try_hub(f, hub, curl, k, b);
	free(b);
	if (!ok)
		return -ENODATA;
	account(hub, k->size);
	*via = CF_HUB;
	return k->size;
}

json_t *chunkfetch_report(const struct chunkfetch *f)
{
	json_t *out = json_array();
	for (size_t i = 0; i < f->nsrc; i++) {
		const struct cf_source *s = &f->src[i];
		int64_t chunks = atomic_load(&s->chunks);
		if (!chunks)
			continue;
		json_t *o =
		    json_pack("{s:s, s:I, s:I}", "via", chunkfetch_via_name(s->via), "bytes",
		              (json_int_t)atomic_load(&s->bytes), "chunks", (json_int_t)chunks);
		if (s->host_id)
			json_object_set_new(o, "host_id", json_integer(s->host_id));
		if (s->label)
			json_object_set_new(o, "label", json_string(s->label));
		if (s->url)
			json_object_set_new(o, "url", json_string(s->url));
		else if (s->via == CF_HUB)
			json_object_set_new(o, "url", json_string(f->c->hub));
		json_array_append_new(out, o);
	}
	return out;
}

/* ---- the parallel run ----
 *
 * Workers take chunk indexes in order. Unordered, each writes its chunk where
 * it belongs. Ordered, a finished chunk waits in a window of slots until the
 * chunks before it are written; whichever worker completes the prefix writes
 * it. A worker does not start a chunk beyond the window, so memory stays
 * bounded (window + workers chunk buffers). */

struct run {
	struct chunkfetch *f;
	const struct cf_hooks *hk;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t next;    /* the next chunk to start */
	size_t written; /* ordered: the next chunk to write */
	size_t window;
	uint8_t **slot; /* ordered: slot[i % window] holds chunk i, done */
	uint8_t **spare;
	size_t nspare;
	bool writing;
	int err;
};

static uint8_t *take_buf(struct run *r)
{
	return r->nspare ? r->spare[--r->nspare] : xmalloc(r->f->max_chunk ? r->f->max_chunk : 1);
}

/* Under mu: write the done prefix, unless another worker is doing so. */
static void drain(struct run *r)
{
	while (!r->writing && !r->err && r->written < r->f->n && r->slot[r->written % r->window]) {
		size_t i = r->written;
		uint8_t *b = r->slot[i % r->window];
		r->slot[i % r->window] = NULL;
		r->writing = true;
		pthread_mutex_unlock(&r->mu);
		const struct cf_chunk *k = &r->f->chunks[i];
		int rc = r->hk->write ? r->hk->write(r->hk->cls, k->off, b, (size_t)k->size) : 0;
		pthread_mutex_lock(&r->mu);
		r->spare[r->nspare++] = b;
		r->writing = false;
		r->written++;
		if (rc && !r->err)
			r->err = rc;
		pthread_cond_broadcast(&r->cv);
	}
}

static int64_t get_chunk(struct run *r, void *ws, CURL *curl, size_t i, uint8_t *buf)
{
	struct chunkfetch *f = r->f;
	const struct cf_chunk *k = &f->chunks[i];
	const struct cf_hooks *hk = r->hk;
	if (hk->local && hk->local(hk->cls, ws, k->hash, k->size, buf) == k->size) {
		chunkfetch_count_local(f, k->size);
		return k->size;
	}
	enum cf_via via;
	int64_t n = chunkfetch_chunk(f, curl, i, buf, f->max_chunk, &via);
	if (n == k->size && hk->fetched)
		hk->fetched(hk->cls, ws, k->hash, buf, n, via);
	return n;
}

static bool stopped(const struct run *r)
{
	return r->err || (r->hk->stop && atomic_load(r->hk->stop));
}

static void run_worker(struct run *r, void *ws, CURL *curl)
{
	const struct cf_hooks *hk = r->hk;
	pthread_mutex_lock(&r->mu);
	uint8_t *buf = take_buf(r);
	for (;;) {
		while (hk->ordered && !stopped(r) && r->next < r->f->n &&
		       r->next >= r->written + r->window)
			pthread_cond_wait(&r->cv, &r->mu);
		if (stopped(r) || r->next >= r->f->n)
			break;
		size_t i = r->next++;
		pthread_mutex_unlock(&r->mu);
		int64_t n = get_chunk(r, ws, curl, i, buf);
		int rc = n < 0 ? (int)n : 0;
		if (rc == 0 && !hk->ordered && hk->write)
			rc = hk->write(hk->cls, r->f->chunks[i].off, buf, (size_t)n);
		pthread_mutex_lock(&r->mu);
		if (rc && !r->err)
			r->err = rc;
		if (rc == 0 && hk->ordered) {
			r->slot[i % r->window] = buf;
			buf = take_buf(r);
			drain(r);
		}
		pthread_cond_broadcast(&r->cv);
	}
	r->spare[r->nspare++] = buf;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void *run_thread(void *arg)
{
	struct run *r = arg;
	void *ws = r->hk->worker_begin ? r->hk->worker_begin(r->hk->cls) : NULL;
	CURL *curl = client_curl(r->f->c);
	run_worker(r, ws, curl);
	curl_easy_cleanup(curl);
	if (r->hk->worker_end)
		r->hk->worker_end(r->hk->cls, ws);
	return NULL;
}

int chunkfetch_run(struct chunkfetch *f, const struct cf_hooks *hk, int threads, void *ws,
                   CURL *curl)
{
	if (!f->tiles)
		return -EBADMSG;
	if (threads < 1)
		threads = CHUNKFETCH_THREADS;
	if ((size_t)threads > f->n)
		threads = f->n ? (int)f->n : 1;
	struct run r = {.f = f, .hk = hk, .window = 2 * (size_t)threads};
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	r.slot = xcalloc(r.window, sizeof *r.slot);
	r.spare = xcalloc(r.window + (size_t)threads + 1, sizeof *r.spare);
	pthread_t *th = xcalloc((size_t)threads, sizeof *th);
	for (int t = 1; t < threads; t++)
		pthread_create(&th[t], NULL, run_thread, &r);
	/* The caller's thread works too, with its own connections: a small
	 * file needs no thread and no new connection. */
	CURL *own = curl ? NULL : client_curl(f->c);
	run_worker(&r, ws, curl ? curl : own);
	if (own)
		curl_easy_cleanup(own);
	for (int t = 1; t < threads; t++)
		pthread_join(th[t], NULL);
	int err = r.err;
	if (!err && hk->stop && atomic_load(hk->stop))
		err = -EINTR;
	for (size_t i = 0; i < r.window; i++)
		free(r.slot[i]);
	for (size_t i = 0; i < r.nspare; i++)
		free(r.spare[i]);
	free(r.slot);
	free(r.spare);
	free(th);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	return err;
}
