#include "transfer.h"
#include "chunkfetch.h"
#include "cmdline.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/retry.h"
#include "../core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_BUF    (4u * 1024 * 1024)
#define PROBE_BATCH 16 /* chunks per missing-chunks probe: small, so uploads start early */
#define QUEUE_CAP   16 /* chunk jobs waiting for a worker: bounds memory */
#define MAX_TRIES   6

/* ---- progress on a terminal ---- */

struct progress {
	bool on;
	const char *label;
	int64_t total;
	int64_t start_ms, last_ms;
};

static void progress_init(struct progress *p, const char *label, int64_t total, bool quiet)
{
	p->on = !quiet && isatty(STDERR_FILENO);
	p->label = label;
	p->total = total;
	p->start_ms = p->last_ms = mono_ms();
}

static void progress_show(struct progress *p, int64_t done, int64_t sent, bool final)
{
	if (!p->on)
		return;
	int64_t now = mono_ms();
	if (!final && now - p->last_ms < 200)
		return;
	p->last_ms = now;
	double secs = (double)(now - p->start_ms) / 1000.0;
	char a[32], b[32], s[32];
	int pct = p->total > 0 ? (int)(done * 100 / p->total) : 100;
	fprintf(stderr, "\r\033[K%s  %3d%%  %s / %s", p->label, pct, human_bytes(done, a),
	        human_bytes(p->total, b));
	if (sent >= 0)
		fprintf(stderr, "  sent %s", human_bytes(sent, s));
	if (secs > 0.2)
		fprintf(stderr, "  %.0f MB/s", (double)done / 1e6 / secs);
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
}

/* ---- a set of chunk hashes (open addressing) ---- */

struct hashset {
	char (*slots)[HASH_HEX_LEN + 1];
	size_t cap, len;
};

static size_t slot_of(const char *h, size_t cap)
{
	size_t v = 0;
	for (int i = 0; i < 16; i++)
		v = v * 16 + (size_t)(h[i] <= '9' ? h[i] - '0' : h[i] - 'a' + 10);
	return v & (cap - 1);
}

/* Insert; false if it was there already. */
static bool hashset_add(struct hashset *s, const char *h)
{
	if (2 * (s->len + 1) > s->cap) {
		struct hashset n = {xcalloc(s->cap ? s->cap * 2 : 1024, HASH_HEX_LEN + 1),
		                    s->cap ? s->cap * 2 : 1024, 0};
		for (size_t i = 0; i < s->cap; i++)
			if (s->slots[i][0])
				hashset_add(&n, s->slots[i]);
		free(s->slots);
		*s = n;
	}
	for (size_t i = slot_of(h, s->cap);; i = (i + 1) & (s->cap - 1)) {
		if (!s->slots[i][0]) {
			memcpy(s->slots[i], h, HASH_HEX_LEN + 1);
			s->len++;
			return true;
		}
		if (memcmp(s->slots[i], h, HASH_HEX_LEN) == 0)
			return false;
	}
}

/* ---- put ---- */

struct chunk {
	char hash[HASH_HEX_LEN + 1];
	int64_t off, size;
	int fd; /* the file it is read from: -1 for the put's own (p->fd) */
};

struct put {
	struct client *c;
	int fd;
	/* the job queue: chunk indexes to upload */
	pthread_mutex_t mu;
	pthread_cond_t can_pop, can_push;
	size_t q[QUEUE_CAP];
	int qhead, qlen;
	bool closed;
	struct chunk *chunks; /* grows under mu: workers index it */
	size_t n, cap;
	char err[512]; /* first fatal error */
	atomic_llong sent_bytes, sent_chunks;
	/* A 'hosts' workspace (put_opts.to_hosts): hosts to send chunks to,
	 * best first, from upload-targets (under mu). */
	bool hosts;         /* probe with uploads/missing, try targets first */
	bool hub_only;      /* the commit said the hub lacks chunks: send them there */
	const char *remote; /* the path, to ask for targets again */
	json_t *targets;    /* [{via, host_id, label, url, token, expires_at}] */
	size_t target_at;   /* the first target not found failing */
	atomic_llong host_bytes;
	atomic_llong *progress; /* put_opts.progress */
	int64_t size;           /* the file's size, for the first probe; -1: none (sent) */
};

static void put_fail(struct put *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fail(struct put *p, const char *fmt, ...)
{
	pthread_mutex_lock(&p->mu);
	if (!p->err[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->err, sizeof p->err, fmt, ap);
		va_end(ap);
	}
	pthread_cond_broadcast(&p->can_push);
	pthread_cond_broadcast(&p->can_pop);
	pthread_mutex_unlock(&p->mu);
}

/* Transient failures are tried again after 200-300 ms, doubling up to
 * 12.8-19.2 s: a third of each delay is jitter. */
static void retry_start(struct retry *r)
{
	retry_init(r, 300, 300 << 6, 1.0 / 3);
}

/* curl reads the chunk straight from the file into its upload buffer. */
struct chunk_reader {
	int fd;
	int64_t off, left;
	int err;
};

static size_t read_chunk(char *buf, size_t size, size_t n, void *cls)
{
	struct chunk_reader *rd = cls;
	size_t want = size * n < (size_t)rd->left ? size * n : (size_t)rd->left;
	ssize_t got = want ? pread_full(rd->fd, buf, want, rd->off) : 0;
	if (got < 0 || (size_t)got != want) {
		rd->err = got < 0 ? (int)-got : EIO;
		return CURL_READFUNC_ABORT;
	}
	rd->off += got;
	rd->left -= got;
	return (size_t)got;
}

/* ---- put: chunks to hosts (a 'hosts' workspace) ----
 *
 * The hub's upload-targets names the online hosts that pin the file's folder,
 * each with an upload token for it; a chunk goes to the first that takes it.
 * A host that fails (unreachable, 5xx, refused) is passed over for the rest
 * of the put; with none left, chunks go to the hub (its cache). */

#define TARGET_CONNECT_S 5     /* a host not answering this fast is passed over */
#define TARGET_RENEW_MS  60000 /* ask for new tokens this long before they lapse */

/* Ask the hub where to send chunks (p->targets, or NULL: the hub). With curl
 * NULL the main thread's handle is used. */
static void targets_fetch(struct put *p, CURL *curl)
{
	char *url = client_ws_url(p->c, "/upload-targets", NULL);
	json_t *body = json_pack("{s:s}", "path", p->remote), *out = NULL;
	char err[256];
	long st = client_request(p->c, curl ? curl : p->c->curl, "POST", url, body, &out, err);
	json_decref(body);
	free(url);
	const char *storage = json_get_str(out, "storage");
	json_decref(p->targets);
	p->targets = NULL;
	p->target_at = 0;
	if (!curl) /* at the start only: workers read p->hosts unlocked */
		p->hosts = st == 200 && storage && strcmp(storage, "hosts") == 0;
	if (st == 200 && storage && strcmp(storage, "hosts") == 0)
		p->targets = json_incref(json_object_get(out, "targets"));
	json_decref(out);
}

struct target {
	char *url, *token, *label;
	size_t idx;
};

/* The first target still worth trying (copies), renewing the tokens when
 * they are about to lapse (or renew is set). false: none left. */
static bool target_get(struct put *p, CURL *curl, struct target *t, bool renew)
{
	pthread_mutex_lock(&p->mu);
	json_t *cur = json_array_get(p->targets, p->target_at);
	int64_t exp = 0;
	json_get_int(cur, "expires_at", &exp);
	if (cur && (renew || now_ms() > exp - TARGET_RENEW_MS)) {
		targets_fetch(p, curl);
		cur = json_array_get(p->targets, p->target_at);
	}
	const char *url = json_get_str(cur, "url"), *tok = json_get_str(cur, "token");
	bool ok = !p->hub_only && url && tok;
	if (ok) {
		t->url = xasprintf("%s/chunks/", url);
		t->token = xasprintf("Authorization: Bearer %s", tok);
		t->label = xstrdup(json_get_str(cur, "label") ? json_get_str(cur, "label") : "?");
		t->idx = p->target_at;
	}
	pthread_mutex_unlock(&p->mu);
	return ok;
}

static void target_free(struct target *t)
{
	free(t->url);
	free(t->token);
	free(t->label);
}

/* Target idx failed: the next one from now on. */
static void target_pass(struct put *p, size_t idx)
{
	pthread_mutex_lock(&p->mu);
	if (p->target_at == idx)
		p->target_at++;
	pthread_mutex_unlock(&p->mu);
}

/* A small response body: an error's code. */
struct errbuf {
	char data[2048];
	size_t len;
};

static size_t errbuf_add(char *d, size_t size, size_t n, void *cls)
{
	struct errbuf *b = cls;
	size_t add = size * n, room = sizeof b->data - 1 - b->len;
	memcpy(b->data + b->len, d, add < room ? add : room);
	b->len += add < room ? add : room;
	b->data[b->len] = 0;
	return size * n;
}

/* PUT chunk ch to a host. 0 taken, 1 pass this host over, 2 renew the token,
 * -1 fatal (put_fail said why). */
static int put_to_host(struct put *p, CURL *curl, const struct chunk *ch, const struct target *t)
{
	client_curl_reset(p->c, curl);
	char *url = xasprintf("%s%s", t->url, ch->hash);
	struct curl_slist *hdr = curl_slist_append(NULL, t->token);
	hdr = curl_slist_append(hdr, "Expect:");
	hdr = curl_slist_append(hdr, "Content-Type: application/octet-stream");
	struct chunk_reader rd = {ch->fd >= 0 ? ch->fd : p->fd, ch->off, ch->size, 0};
	struct errbuf eb = {.len = 0};
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)ch->size);
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_chunk);
	curl_easy_setopt(curl, CURLOPT_READDATA, &rd);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, errbuf_add);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &eb);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)TARGET_CONNECT_S);
	curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, 1024L * 1024);
	CURLcode cc = curl_easy_perform(curl);
	long status = 0;
	if (cc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdr);
	free(url);
	json_t *body = eb.len ? json_loads(eb.data, 0, NULL) : NULL;
	const char *code = json_get_str(json_object_get(body, "error"), "code");
	int rc = status == 201 || status == 200 ? 0 : status == 401 ? 2 : 1;
	if (rd.err) {
		put_fail(p, "cannot read the file at offset %lld: %s", (long long)rd.off,
		         strerror(rd.err));
		rc = -1;
	} else if (status == 422 && code && strcmp(code, "hash_mismatch") == 0) {
		put_fail(p, "the file changed while it was being uploaded; run put again");
		rc = -1;
	} else if (rc == 1) {
		fprintf(stderr, "\nroost: put: host %s did not take chunk %.12s (%s); trying %s\n",
		        t->label, ch->hash,
		        cc != CURLE_OK ? curl_easy_strerror(cc)
		        : code         ? code
		                       : "refused",
		        "the next host or the hub");
	}
	json_decref(body);
	return rc;
}

/* Send ch to the first host that takes it. 0 sent, 1 no host did (the hub
 * next), -1 fatal. */
static int upload_to_hosts(struct put *p, CURL *curl, const struct chunk *ch)
{
	bool renewed = false;
	struct target t;
	while (target_get(p, curl, &t, false)) {
		int rc = put_to_host(p, curl, ch, &t);
		if (rc == 2 && !renewed) {
			renewed = true;
			target_free(&t);
			if (!target_get(p, curl, &t, true))
				return 1;
			rc = put_to_host(p, curl, ch, &t);
		}
		if (rc == 0) {
			atomic_fetch_add(&p->sent_bytes, ch->size);
			atomic_fetch_add(&p->sent_chunks, 1);
			atomic_fetch_add(&p->host_bytes, ch->size);
		}
		if (rc != 0 && rc != -1)
			target_pass(p, t.idx);
		target_free(&t);
		if (rc <= 0)
			return rc;
	}
	return 1;
}

static int upload_to_hub(struct put *p, CURL *curl, const struct chunk *ch)
{
	client_curl_reset(p->c, curl);
	char *url = client_ws_url(p->c, "/chunks/%s", ch->hash);
	char *auth = xasprintf("Authorization: Bearer %s", p->c->token);
	struct curl_slist *hdr = curl_slist_append(NULL, auth);
	hdr = curl_slist_append(hdr, "Expect:");
	hdr = curl_slist_append(hdr, "Content-Type: application/octet-stream");
	int rc = -1;
	struct retry rt;
	retry_start(&rt);
	for (int attempt = 0; attempt < MAX_TRIES; attempt++) {
		struct chunk_reader rd = {ch->fd >= 0 ? ch->fd : p->fd, ch->off, ch->size, 0};
		struct errbuf eb = {.len = 0};
		curl_easy_setopt(curl, CURLOPT_URL, url);
		curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)ch->size);
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_chunk);
		curl_easy_setopt(curl, CURLOPT_READDATA, &rd);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, errbuf_add);
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, &eb);
		curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, 1024L * 1024);
		CURLcode cc = curl_easy_perform(curl);
		long status = 0;
		if (cc == CURLE_OK)
			curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200 || status == 201) {
			atomic_fetch_add(&p->sent_bytes, ch->size);
			atomic_fetch_add(&p->sent_chunks, 1);
			rc = 0;
			break;
		}
		if (rd.err) {
			put_fail(p, "cannot read the file at offset %lld: %s", (long long)rd.off,
			         strerror(rd.err));
			break;
		}
		bool transient =
		    cc != CURLE_OK || status == 429 || (status >= 500 && !CLIENT_NO_RETRY(status));
		if (!transient || attempt == MAX_TRIES - 1) {
			json_t *body = eb.len ? json_loads(eb.data, 0, NULL) : NULL;
			char why[768];
			client_error_text(status, body, NULL, why, sizeof why);
			json_decref(body);
			put_fail(p, "uploading chunk %.12s failed: %s", ch->hash,
			         cc != CURLE_OK  ? curl_easy_strerror(cc)
			         : status == 401 ? "not authorized (log in again)"
			         : status == 422 ? "the file changed while it was being uploaded; "
			                           "run put again"
			         : eb.len        ? why
			                         : "the hub refused it");
			break;
		}
		pthread_mutex_lock(&p->mu);
		bool failed = p->err[0] != 0;
		pthread_mutex_unlock(&p->mu);
		if (failed)
			break;
		retry_sleep_ms(retry_next_ms(&rt));
	}
	curl_slist_free_all(hdr);
	free(auth);
	free(url);
	return rc;
}

static int upload_chunk(struct put *p, CURL *curl, const struct chunk *ch)
{
	int rc = p->hosts ? upload_to_hosts(p, curl, ch) : 1;
	return rc == 1 ? upload_to_hub(p, curl, ch) : rc;
}

static void *put_worker(void *arg)
{
	struct put *p = arg;
	CURL *curl = client_curl(p->c);
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (p->qlen == 0 && !p->closed && !p->err[0])
			pthread_cond_wait(&p->can_pop, &p->mu);
		if (p->err[0] || (p->qlen == 0 && p->closed)) {
			pthread_mutex_unlock(&p->mu);
			break;
		}
		struct chunk ch = p->chunks[p->q[p->qhead]];
		p->qhead = (p->qhead + 1) % QUEUE_CAP;
		p->qlen--;
		pthread_cond_signal(&p->can_push);
		pthread_mutex_unlock(&p->mu);
		if (upload_chunk(p, curl, &ch) != 0)
			break;
	}
	curl_easy_cleanup(curl);
	return NULL;
}

static bool enqueue(struct put *p, size_t idx)
{
	pthread_mutex_lock(&p->mu);
	while (p->qlen == QUEUE_CAP && !p->err[0])
		pthread_cond_wait(&p->can_push, &p->mu);
	bool ok = !p->err[0];
	if (ok) {
		p->q[(p->qhead + p->qlen) % QUEUE_CAP] = idx;
		p->qlen++;
		pthread_cond_signal(&p->can_pop);
	}
	pthread_mutex_unlock(&p->mu);
	return ok;
}

/* Ask which of hashes the hub lacks; enqueue each one not already queued. */
static int probe_and_enqueue(struct put *p, size_t from, size_t to, struct hashset *queued)
{
	json_t *arr = json_array();
	for (size_t i = from; i < to; i++)
		json_array_append_new(arr, json_string(p->chunks[i].hash));
	json_t *body = json_pack("{s:o}", "hashes", arr);
	/* The first probe carries the file's size: the hub checks it against the
	 * max file size and the quota before any chunk is sent (once is enough;
	 * the commit checks again). */
	if (p->size >= 0)
		json_object_set_new(body, "size", json_integer(p->size));
	p->size = -1;
	/* In a 'hosts' workspace a chunk sent to a host counts as sent too. */
	char *url = client_ws_url(p->c, p->hosts ? "/uploads/missing" : "/chunks/missing", NULL);
	json_t *resp = NULL;
	char err[256];
	long st = 0;
	struct retry rt;
	retry_start(&rt);
	for (int attempt = 0; attempt < MAX_TRIES; attempt++) {
		st = client_request(p->c, p->c->curl, "POST", url, body, &resp, err);
		if (st == 200 || (st != 0 && st != 429 && st < 500) || CLIENT_NO_RETRY(st))
			break;
		json_decref(resp);
		resp = NULL;
		retry_sleep_ms(retry_next_ms(&rt));
	}
	json_decref(body);
	free(url);
	if (st != 200) {
		char why[768];
		client_error_text(st, resp, err, why, sizeof why);
		json_decref(resp);
		put_fail(p, "%s%s", st ? "" : "the hub did not answer the chunk probe: ", why);
		return -1;
	}
	json_t *missing = json_object_get(resp, "missing");
	size_t k = 0;
	for (size_t i = from; i < to && k < json_array_size(missing); i++) {
		const char *m = json_string_value(json_array_get(missing, k));
		if (!m || strcmp(m, p->chunks[i].hash) != 0)
			continue;
		k++;
		/* A chunk that repeats within the file is sent once. */
		if (hashset_add(queued, m) && !enqueue(p, i))
			break;
	}
	json_decref(resp);
	return 0;
}

static void add_chunk(struct put *p, const char *hash, int64_t off, int64_t size)
{
	pthread_mutex_lock(&p->mu);
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 256;
		p->chunks = xrealloc(p->chunks, p->cap * sizeof *p->chunks);
	}
	struct chunk *c = &p->chunks[p->n++];
	memcpy(c->hash, hash, HASH_HEX_LEN + 1);
	c->off = off;
	c->size = size;
	c->fd = -1;
	pthread_mutex_unlock(&p->mu);
}

static char *remote_for(const char *local, const char *remote)
{
	char *copy = xstrdup(local);
	char *base = xstrdup(basename(copy));
	free(copy);
	char *r;
	if (!remote)
		r = xasprintf("/%s", base);
	else if (remote[strlen(remote) - 1] == '/')
		r = xasprintf("%s%s", remote, base);
	else
		r = xstrdup(remote);
	free(base);
	return r;
}

/* The whole-file SHA-256 runs on a second thread over the same read buffers
 * while this one chunks and hashes chunks: two SHA passes, two cores. */
struct whole_hasher {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct hasher *h;
	const uint8_t *buf; /* the buffer to hash next, NULL when idle */
	size_t len;
	bool busy, quit;
	pthread_t th;
};

static void *whole_main(void *arg)
{
	struct whole_hasher *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->busy && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->busy && w->quit)
			break;
		const uint8_t *b = w->buf;
		size_t n = w->len;
		pthread_mutex_unlock(&w->mu);
		hasher_update(w->h, b, n);
		pthread_mutex_lock(&w->mu);
		w->busy = false;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void whole_wait(struct whole_hasher *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->busy)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

static void whole_post(struct whole_hasher *w, const uint8_t *buf, size_t len)
{
	whole_wait(w);
	pthread_mutex_lock(&w->mu);
	w->buf = buf;
	w->len = len;
	w->busy = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Chunk and hash the file, probing and enqueueing as it goes. Returns 0 or -1. */
static int scan_file(struct put *p, struct progress *pr, char whole_hex[HASH_HEX_LEN + 1],
                     struct hashset *queued)
{
	struct chunker ch;
	chunker_init(&ch, &p->c->chunking);
	struct hasher *part = hasher_new();
	struct whole_hasher w = {.h = hasher_new()};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	pthread_create(&w.th, NULL, whole_main, &w);
	/* Two buffers: the whole-file hasher reads one while the next is filled. */
	uint8_t *bufs[2] = {xmalloc(READ_BUF), xmalloc(READ_BUF)};
	int64_t off = 0, chunk_start = 0;
	size_t probed = 0;
	int rc = 0;
	for (unsigned turn = 0;; turn ^= 1) {
		uint8_t *buf = bufs[turn];
		/* No wait needed here: posting the other buffer waited until this
		 * one's whole-file hashing had finished. */
		ssize_t n = read(p->fd, buf, READ_BUF);
		if (n < 0 && errno == EINTR) {
			turn ^= 1;
			continue;
		}
		if (n < 0) {
			put_fail(p, "read error: %s", strerror(errno));
			rc = -1;
			break;
		}
		if (n == 0)
			break;
		if (p->progress)
			atomic_fetch_add(p->progress, (long long)n);
		whole_post(&w, buf, (size_t)n);
		for (size_t i = 0; i < (size_t)n;) {
			bool cut;
			size_t k = chunker_scan(&ch, buf + i, (size_t)n - i, &cut);
			hasher_update(part, buf + i, k);
			i += k;
			off += (int64_t)k;
			if (cut) {
				char h[HASH_HEX_LEN + 1];
				hasher_final_hex(part, h);
				add_chunk(p, h, chunk_start, off - chunk_start);
				chunk_start = off;
			}
		}
		if (p->n - probed >= PROBE_BATCH) {
			if (probe_and_enqueue(p, probed, p->n, queued) != 0) {
				rc = -1;
				break;
			}
			probed = p->n;
		}
		progress_show(pr, off, atomic_load(&p->sent_bytes), false);
	}
	pthread_mutex_lock(&w.mu);
	w.quit = true;
	pthread_cond_broadcast(&w.cv);
	pthread_mutex_unlock(&w.mu);
	pthread_join(w.th, NULL);
	if (rc == 0 && off > chunk_start) {
		char h[HASH_HEX_LEN + 1];
		hasher_final_hex(part, h);
		add_chunk(p, h, chunk_start, off - chunk_start);
	}
	if (rc == 0 && p->n > probed)
		rc = probe_and_enqueue(p, probed, p->n, queued);
	hasher_final_hex(w.h, whole_hex);
	hasher_free(w.h);
	hasher_free(part);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	free(bufs[0]);
	free(bufs[1]);
	return rc;
}

static json_t *commit_body(struct put *p, const char *remote, int64_t size, const char *hash)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < p->n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:I}", "hash", p->chunks[i].hash,
		                                     "size", (json_int_t)p->chunks[i].size));
	return json_pack("{s:s, s:I, s:s, s:o}", "path", remote, "size", (json_int_t)size, "hash",
	                 hash, "chunks", arr);
}

static void start_workers(struct put *p, pthread_t *th, int n)
{
	p->closed = false;
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, put_worker, p);
}

static void join_workers(struct put *p, pthread_t *th, int n)
{
	pthread_mutex_lock(&p->mu);
	p->closed = true;
	pthread_cond_broadcast(&p->can_pop);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

/* After a commit whose answer was lost (the hub died; a balancer answered
 * 502): did it land? The file's current version holding our content means it
 * did, or that the content was there already; either way another commit would
 * only add an identical version. The info answer, or NULL. */
static json_t *committed_already(struct client *c, const char *remote, const char *hash)
{
	char *url = client_ws_url(c, "/info?path=%s", remote);
	json_t *out = NULL;
	char err[256];
	long st = client_request(c, c->curl, "GET", url, NULL, &out, err);
	free(url);
	const char *h = json_get_str(out, "hash");
	if (st == 200 && h && strcmp(h, hash) == 0)
		return out;
	json_decref(out);
	return NULL;
}

int transfer_put(struct client *c, const char *local, const char *remote_arg,
                 const struct put_opts *o)
{
	struct put p = {.c = c, .progress = o->progress, .size = -1};
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.can_pop, NULL);
	pthread_cond_init(&p.can_push, NULL);
	p.fd = open(local, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (p.fd < 0 || fstat(p.fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "roost: put: cannot read %s: %s\n", local,
		        p.fd < 0 ? strerror(errno) : "not a regular file");
		if (p.fd >= 0)
			close(p.fd);
		return 1;
	}
	posix_fadvise(p.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	p.size = st.st_size;
	char *remote = remote_for(local, remote_arg);
	int nworkers = o->parallel > 0 ? o->parallel : PUT_PARALLEL_DEFAULT;
	pthread_t *th = xcalloc((size_t)nworkers, sizeof *th);
	struct hashset queued = {0};
	struct progress pr;
	progress_init(&pr, remote, st.st_size, o->quiet);
	char whole[HASH_HEX_LEN + 1];
	int rc = 1;
	p.remote = remote;
	if (o->to_hosts)
		targets_fetch(&p, NULL);

	start_workers(&p, th, nworkers);
	int scan = scan_file(&p, &pr, whole, &queued);
	join_workers(&p, th, nworkers);
	if (scan != 0 || p.err[0]) {
		fprintf(stderr, "\nroost: put %s: %s\n", local, p.err);
		goto out;
	}
	int64_t size = 0;
	for (size_t i = 0; i < p.n; i++)
		size += p.chunks[i].size;
	char *url = client_ws_url(c, "/versions", NULL);
	json_t *body = commit_body(&p, remote, size, whole);
	if (o->base_version_id >= 0)
		json_object_set_new(body, "base_version_id", json_integer(o->base_version_id));
	if (o->upload_grant)
		json_object_set_new(body, "upload_grant", json_string(o->upload_grant));
	struct retry rt;
	retry_start(&rt);
	json_t *landed = NULL; /* a lost answer's commit, found (committed_already) */
	for (int attempt = 0;; attempt++) {
		json_t *resp = landed;
		char err[256] = "";
		long status =
		    landed ? 201 : client_request(c, c->curl, "POST", url, body, &resp, err);
		json_t *missing = json_object_get(json_object_get(resp, "error"), "missing");
		if (status == 201) {
			progress_show(&pr, size, atomic_load(&p.sent_bytes), true);
			if (!o->quiet) {
				char a[32], b[32];
				printf(
				    "%s -> %s: version %lld, %s in %zu %s, %lld uploaded "
				    "(%s)\n",
				    local, remote,
				    (long long)json_integer_value(json_object_get(resp, "version")),
				    human_bytes(size, a), p.n,
				    plural((int64_t)p.n, "chunk", "chunks"),
				    (long long)atomic_load(&p.sent_chunks),
				    human_bytes(atomic_load(&p.sent_bytes), b));
				if (p.hosts)
					printf("  %s of it to hosts, the rest to the hub\n",
					       human_bytes(atomic_load(&p.host_bytes), a));
			}
			if (o->result) {
				json_t *arr = json_array();
				for (size_t i = 0; i < p.n; i++)
					json_array_append_new(
					    arr,
					    json_pack("{s:s, s:I, s:I}", "hash", p.chunks[i].hash,
					              "size", (json_int_t)p.chunks[i].size,
					              "offset", (json_int_t)p.chunks[i].off));
				json_object_set_new(resp, "chunks", arr);
				*o->result = resp;
			} else {
				json_decref(resp);
			}
			if (o->sent)
				atomic_fetch_add(o->sent, atomic_load(&p.sent_bytes));
			rc = 0;
			break;
		}
		const char *code = json_get_str(json_object_get(resp, "error"), "code");
		if (status == 409 && code && strcmp(code, "version_conflict") == 0) {
			json_decref(resp);
			rc = PUT_CONFLICT;
			break;
		}
		if (status == 403 && code && strcmp(code, "upload_grant_refused") == 0) {
			json_decref(resp);
			rc = PUT_GRANT_REFUSED;
			break;
		}
		if (status == 409 && json_is_array(missing) && attempt < 3) {
			/* The hub lost chunks since the probe (e.g. collected), or
			 * takes no host's copy of them: send them to the hub. */
			p.hub_only = true;
			start_workers(&p, th, nworkers);
			size_t i;
			json_t *m;
			json_array_foreach(missing, i, m)
			{
				for (size_t k = 0; k < p.n; k++)
					if (strcmp(p.chunks[k].hash, json_string_value(m)) == 0) {
						enqueue(&p, k);
						break;
					}
			}
			join_workers(&p, th, nworkers);
			json_decref(resp);
			if (p.err[0]) {
				fprintf(stderr, "roost: put %s: %s\n", local, p.err);
				break;
			}
			continue;
		}
		if ((status == 0 || status >= 500) && !CLIENT_NO_RETRY(status) &&
		    attempt < MAX_TRIES) {
			json_decref(resp);
			retry_sleep_ms(retry_next_ms(&rt));
			/* A put that names no base version (not a host's) and wants
			 * no result: the same content as the current version is done. */
			if (o->base_version_id < 0 && !o->result)
				landed = committed_already(c, remote, whole);
			continue;
		}
		client_print_error("put", status, resp, err);
		json_decref(resp);
		break;
	}
	json_decref(body);
	free(url);
out:
	close(p.fd);
	json_decref(p.targets);
	free(queued.slots);
	free(p.chunks);
	free(th);
	free(remote);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.can_pop);
	pthread_cond_destroy(&p.can_push);
	return rc;
}

/* ---- put: small files in one commit ----
 *
 * A file no bigger than the workspace's minimum chunk is one chunk whose hash
 * is the file's. A probe, a PUT and a commit each cost a round trip and the
 * hub a flush; many such files go up together, as the host agent's do: one
 * probe, the missing chunks through the put's workers (each sent once), one
 * POST versions/batch. */

static long commit_batch(struct client *c, json_t *versions, json_t **out)
{
	char *url = client_ws_url(c, "/versions/batch", NULL);
	json_t *body = json_pack("{s:O}", "versions", versions);
	long st = 0;
	struct retry rt;
	retry_start(&rt);
	for (int attempt = 0; attempt < MAX_TRIES; attempt++) {
		char err[256];
		st = client_request(c, c->curl, "POST", url, body, out, err);
		if ((st != 0 && st != 429 && st < 500) || CLIENT_NO_RETRY(st))
			break;
		json_decref(*out);
		*out = NULL;
		retry_sleep_ms(retry_next_ms(&rt));
	}
	json_decref(body);
	free(url);
	return st;
}

void transfer_put_small(struct client *c, struct put_item *items, size_t n,
                        const struct put_opts *o)
{
	struct put p = {.c = c, .fd = -1, .progress = o->progress, .size = -1};
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.can_pop, NULL);
	pthread_cond_init(&p.can_push, NULL);
	int *fds = xmalloc((n ? n : 1) * sizeof *fds);
	size_t *in_batch = xmalloc((n ? n : 1) * sizeof *in_batch); /* versions[k] is items[..] */
	json_t *versions = json_array();
	for (size_t i = 0; i < n; i++) {
		items[i].committed = false;
		struct stat st;
		char hex[HASH_HEX_LEN + 1];
		fds[i] = open(items[i].local, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fds[i] < 0 || fstat(fds[i], &st) != 0 || !S_ISREG(st.st_mode) ||
		    st.st_size > (off_t)c->chunking.min || hash_fd_hex(fds[i], hex) != 0)
			continue; /* left for a put of its own, which says why */
		if (st.st_size > 0) {
			add_chunk(&p, hex, 0, st.st_size);
			p.chunks[p.n - 1].fd = fds[i];
		}
		json_t *chunks = st.st_size ? json_pack("[{s:s, s:I}]", "hash", hex, "size",
		                                        (json_int_t)st.st_size)
		                            : json_array();
		in_batch[json_array_size(versions)] = i;
		json_array_append_new(
		    versions, json_pack("{s:s, s:I, s:s, s:o}", "path", items[i].remote, "size",
		                        (json_int_t)st.st_size, "hash", hex, "chunks", chunks));
	}
	int nworkers = o->parallel > 0 ? o->parallel : PUT_PARALLEL_DEFAULT;
	pthread_t *th = xcalloc((size_t)nworkers, sizeof *th);
	struct hashset queued = {0};
	start_workers(&p, th, nworkers);
	for (size_t from = 0; from < p.n && !p.err[0]; from += 1000)
		if (probe_and_enqueue(&p, from, from + 1000 < p.n ? from + 1000 : p.n, &queued) !=
		    0)
			break;
	join_workers(&p, th, nworkers);
	json_t *out = NULL;
	if (!p.err[0] && json_array_size(versions) && commit_batch(c, versions, &out) == 200) {
		size_t k;
		json_t *r;
		json_array_foreach(json_object_get(out, "results"), k, r)
		{
			if (k >= json_array_size(versions) ||
			    json_integer_value(json_object_get(r, "status")) != 201)
				continue;
			items[in_batch[k]].committed = true;
			if (o->progress) /* the others are read again by their own put */
				atomic_fetch_add(o->progress,
				                 json_integer_value(json_object_get(
				                     json_array_get(versions, k), "size")));
		}
	}
	if (o->sent)
		atomic_fetch_add(o->sent, atomic_load(&p.sent_bytes));
	json_decref(out);
	json_decref(versions);
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	free(in_batch);
	free(th);
	free(queued.slots);
	free(p.chunks);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.can_pop);
	pthread_cond_destroy(&p.can_push);
}

/* ---- get ----
 *
 * curl's callback only copies into a ring of aligned buffers; a writer thread
 * hashes each full buffer and writes it with O_DIRECT where the filesystem
 * allows, so receiving, hashing and the disk all work at once and the bytes
 * never pass through the page cache (whose copy costs as much CPU as SHA-256
 * here). */

#define SINK_BUF  (4u << 20)
#define SINK_BUFS 4

struct sink {
	int fd;
	bool direct;
	struct hasher *h;
	uint8_t *buf[SINK_BUFS];
	size_t len[SINK_BUFS];
	int head, count; /* buf[head..head+count) wait for the writer */
	bool done;
	int err; /* errno of a failed write */
	int64_t got;
	struct progress *pr;
	atomic_llong *progress; /* get_opts.progress */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
};

static void *sink_main(void *arg)
{
	struct sink *k = arg;
	pthread_mutex_lock(&k->mu);
	for (;;) {
		while (k->count == 0 && !k->done)
			pthread_cond_wait(&k->cv, &k->mu);
		if (k->count == 0)
			break;
		uint8_t *b = k->buf[k->head];
		size_t n = k->len[k->head];
		pthread_mutex_unlock(&k->mu);
		hasher_update(k->h, b, n);
		int r = k->err ? 0 : write_maybe_direct(k->fd, &k->direct, b, n);
		pthread_mutex_lock(&k->mu);
		if (r)
			k->err = -r;
		k->len[k->head] = 0;
		k->head = (k->head + 1) % SINK_BUFS;
		k->count--;
		pthread_cond_broadcast(&k->cv);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

static void sink_start(struct sink *k, int fd, struct progress *pr)
{
	memset(k, 0, sizeof *k);
	k->fd = fd;
	int fl = fcntl(fd, F_GETFL);
	k->direct = fl >= 0 && fcntl(fd, F_SETFL, fl | O_DIRECT) == 0;
	k->h = hasher_new();
	k->pr = pr;
	for (int i = 0; i < SINK_BUFS; i++)
		if (posix_memalign((void **)&k->buf[i], DIRECT_ALIGN, SINK_BUF) != 0)
			abort();
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	pthread_create(&k->th, NULL, sink_main, k);
}

/* Hand the buffer being filled to the writer; wait for a free one. */
static void sink_push(struct sink *k)
{
	pthread_mutex_lock(&k->mu);
	k->count++;
	pthread_cond_broadcast(&k->cv);
	while (k->count == SINK_BUFS)
		pthread_cond_wait(&k->cv, &k->mu);
	pthread_mutex_unlock(&k->mu);
}

static size_t sink_write(char *data, size_t size, size_t n, void *cls)
{
	struct sink *k = cls;
	size_t len = size * n;
	for (size_t done = 0; done < len;) {
		/* Only this thread touches the buffer being filled; head and count
		 * are read under the lock the writer holds while it moves them. */
		pthread_mutex_lock(&k->mu);
		int fill = (k->head + k->count) % SINK_BUFS;
		int err = k->err;
		pthread_mutex_unlock(&k->mu);
		if (err)
			return 0; /* curl stops with a write error */
		size_t room = SINK_BUF - k->len[fill];
		size_t take = len - done < room ? len - done : room;
		memcpy(k->buf[fill] + k->len[fill], data + done, take);
		k->len[fill] += take;
		done += take;
		if (k->len[fill] == SINK_BUF)
			sink_push(k);
	}
	k->got += (int64_t)len;
	if (k->progress)
		atomic_fetch_add(k->progress, (long long)len);
	progress_show(k->pr, k->got, -1, false);
	return len;
}

/* Flush the last partial buffer, wait for the writer; the file's hash into hex. */
static int sink_finish(struct sink *k, char hex[HASH_HEX_LEN + 1])
{
	pthread_mutex_lock(&k->mu);
	int fill = (k->head + k->count) % SINK_BUFS;
	if (k->len[fill])
		k->count++;
	k->done = true;
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->th, NULL);
	hasher_final_hex(k->h, hex);
	hasher_free(k->h);
	for (int i = 0; i < SINK_BUFS; i++)
		free(k->buf[i]);
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cv);
	return k->err;
}

/* The picker's hook (ordered: in file order) into the sink: hashed and
 * written by the sink's thread. */
static int get_write(void *cls, int64_t off, const uint8_t *buf, size_t n)
{
	(void)off;
	struct sink *k = cls;
	return sink_write((char *)buf, 1, n, k) == n ? 0 : -(k->err ? k->err : EIO);
}

/* The version's manifest (chunks, holders, hosts' URLs, a chunk token). */
static json_t *get_manifest(struct client *c, const char *remote, int64_t ver)
{
	char *q = xasprintf("/manifest?path=%%s&version=%lld", (long long)ver);
	char *url = client_ws_url(c, q, remote);
	free(q);
	json_t *m = client_call(c, "GET", url, NULL, "get");
	free(url);
	return m;
}

/* Where the bytes came from: one line per source on stderr. */
static void print_sources(json_t *sources)
{
	size_t i;
	json_t *s;
	json_array_foreach(sources, i, s)
	{
		char a[32];
		int64_t id = 0;
		json_get_int(s, "host_id", &id);
		char who[64] = "";
		if (id)
			snprintf(who, sizeof who, " %lld%s%s", (long long)id,
			         json_get_str(s, "label") ? " " : "",
			         json_get_str(s, "label") ? json_get_str(s, "label") : "");
		int64_t n = json_integer_value(json_object_get(s, "chunks"));
		fprintf(stderr, "  from %s%s (%s): %s in %lld %s\n", json_get_str(s, "via"), who,
		        json_get_str(s, "url") ? json_get_str(s, "url") : "this machine",
		        human_bytes(json_integer_value(json_object_get(s, "bytes")), a),
		        (long long)n, plural(n, "chunk", "chunks"));
	}
}

/* A failure worth another try: the connection (a hub behind a balancer
 * died, a reset, a timeout) or a 5xx/429 answer. */
static bool stream_transient(CURLcode cc, long status)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
		return true;
	case CURLE_HTTP_RETURNED_ERROR:
		return status == 429 || (status >= 500 && !CLIENT_NO_RETRY(status));
	default:
		return false;
	}
}

/* No host holds any of it: the whole version in one stream from the hub,
 * which reads ahead (faster than a request per chunk). A stream cut short
 * (a hub killed behind the balancer) resumes where it stopped (Range); the
 * sink hashes the whole file, so a wrong resume fails the final check. */
static int get_stream(struct client *c, json_t *m, struct sink *k, json_t **report)
{
	int64_t ver = 0, size = -1;
	json_get_int(m, "version", &ver);
	json_get_int(m, "size", &size);
	char *q = xasprintf("/content?path=%%s&version=%lld", (long long)ver);
	char *url = client_ws_url(c, q, json_get_str(m, "path"));
	free(q);
	CURL *curl = client_curl(c);
	char *auth = xasprintf("Authorization: Bearer %s", c->token);
	CURLcode cc = CURLE_OK;
	long status = 0;
	struct retry rt;
	retry_start(&rt);
	for (int attempt = 0; attempt < MAX_TRIES; attempt++) {
		int64_t from = k->got;
		if (from > 0 && from == size)
			break; /* everything arrived; only the end of the answer was lost */
		char range[64];
		snprintf(range, sizeof range, "Range: bytes=%lld-", (long long)from);
		struct curl_slist *hdr = curl_slist_append(NULL, auth);
		if (from > 0)
			hdr = curl_slist_append(hdr, range);
		client_curl_reset(c, curl);
		curl_easy_setopt(curl, CURLOPT_URL, url);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink_write);
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, k);
		curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 512L * 1024);
		curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
		cc = curl_easy_perform(curl);
		status = 0;
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
		curl_slist_free_all(hdr);
		if (cc == CURLE_OK && from > 0 && status != 206)
			cc = CURLE_RANGE_ERROR; /* the rest, not the whole again */
		if (cc == CURLE_OK || k->err || !stream_transient(cc, status) ||
		    attempt == MAX_TRIES - 1)
			break;
		if (k->got > from)
			retry_reset(&rt); /* it moved: the next cut waits little again */
		fprintf(stderr, "\nroost: get %s: %s; resuming at byte %lld\n",
		        json_get_str(m, "path"), curl_easy_strerror(cc), (long long)k->got);
		retry_sleep_ms(retry_next_ms(&rt));
	}
	curl_easy_cleanup(curl);
	free(auth);
	free(url);
	*report = json_pack("[{s:s, s:s, s:I, s:I}]", "via", "hub", "url", c->hub, "bytes",
	                    (json_int_t)k->got, "chunks",
	                    (json_int_t)json_array_size(json_object_get(m, "chunks")));
	if (cc != CURLE_OK)
		fprintf(stderr, "\nroost: get %s: %s\n", json_get_str(m, "path"),
		        k->err ? strerror(k->err) : curl_easy_strerror(cc));
	return cc == CURLE_OK ? 0 : -EIO;
}

/* Fetch m's chunks from the nearest sources into fd through the sink (which
 * hashes the whole file). 0, or <0 having printed why. *report gets the
 * sources used. */
static int get_chunks(struct client *c, json_t *m, const struct get_opts *o, struct sink *k,
                      json_t **report)
{
	if (!json_object_size(json_object_get(m, "sources")) &&
	    !json_object_size(json_object_get(m, "hosts")))
		return get_stream(c, m, k, report);
	struct chunkfetch_opts po = {.peer_cacert = o->host_ca, .log_failures = o->verbose};
	struct chunkfetch *f = chunkfetch_new(c, m, &po);
	if (!f) {
		fprintf(stderr, "\nroost: get: the hub's manifest is not valid\n");
		return -EBADMSG;
	}
	struct cf_hooks hk = {.cls = k, .write = get_write, .ordered = true};
	int rc = chunkfetch_run(f, &hk, o->parallel, NULL, NULL);
	if (rc != 0 && rc != -ENODATA)
		fprintf(stderr, "\nroost: get: %s\n", strerror(-rc));
	else if (rc == -ENODATA)
		fprintf(stderr, "\nroost: get: %s\n",
		        chunkfetch_error(f) ? chunkfetch_error(f) : "no source gave a chunk");
	*report = chunkfetch_report(f);
	chunkfetch_free(f);
	return rc;
}

int transfer_local_check(const char *remote, const char *dest, const char *expect, int64_t size,
                         int64_t ver, const struct get_opts *o)
{
	struct stat st;
	if (lstat(dest, &st) != 0)
		return 0;
	if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
		fprintf(stderr,
		        "roost: get: %s exists and is not a regular file; nothing written\n", dest);
		return -1;
	}
	char have[HASH_HEX_LEN + 1] = "";
	int fd = S_ISREG(st.st_mode) ? open(dest, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	bool same = fd >= 0 && st.st_size == size && hash_fd_hex(fd, have) == 0 &&
	            strcmp(have, expect) == 0;
	if (fd >= 0)
		close(fd);
	if (same) {
		if (o->json) {
			json_t *rep = json_pack("{s:s, s:s, s:I, s:I, s:s, s:b, s:[]}", "path",
			                        remote, "local", dest, "version", (json_int_t)ver,
			                        "size", (json_int_t)size, "sha256", have, "written",
			                        false, "sources");
			print_json(rep);
			json_decref(rep);
		} else if (!o->quiet) {
			printf("%s -> %s: version %lld, already there (same sha256); nothing "
			       "written\n",
			       remote, dest, (long long)ver);
		}
		return 1;
	}
	if (o->force)
		return 0;
	fprintf(stderr,
	        "roost: get: %s exists %s than %s version %lld; left as it is (use --force to "
	        "replace it)\n",
	        dest, S_ISLNK(st.st_mode) ? "as a symbolic link rather" : "with other content",
	        remote, (long long)ver);
	return -1;
}

int transfer_get(struct client *c, const char *remote, const char *local, int64_t version,
                 bool quiet)
{
	struct get_opts o = {.quiet = quiet};
	return transfer_get_opts(c, remote, local, version, &o);
}

int transfer_get_opts(struct client *c, const char *remote, const char *local, int64_t version,
                      const struct get_opts *o)
{
	bool quiet = o->quiet || o->json;
	char *url = client_ws_url(c, "/info?path=%s", remote);
	json_t *info = client_call(c, "GET", url, NULL, "get");
	free(url);
	if (!info)
		return 1;
	if (strcmp(json_get_str(info, "type") ? json_get_str(info, "type") : "", "file") != 0) {
		fprintf(stderr, "roost: get: %s is a folder\n", remote);
		json_decref(info);
		return 1;
	}
	const char *name = json_get_str(info, "name");
	int64_t size = 0, ver = 0;
	json_get_int(info, "size", &size);
	json_get_int(info, "version", &ver);
	char expect[HASH_HEX_LEN + 1];
	snprintf(expect, sizeof expect, "%s", json_get_str(info, "hash"));
	if (version > 0) {
		/* A named version: its size and hash come from the version list. */
		char *vurl = client_ws_url(c, "/versions?path=%s", remote);
		json_t *vs = client_call(c, "GET", vurl, NULL, "get");
		free(vurl);
		json_t *v, *found = NULL;
		size_t i;
		json_array_foreach(json_object_get(vs, "versions"), i, v)
		{
			if (json_integer_value(json_object_get(v, "version")) == version)
				found = v;
		}
		if (!found) {
			fprintf(stderr, "roost: get: %s has no version %lld\n", remote,
			        (long long)version);
			json_decref(vs);
			json_decref(info);
			return 1;
		}
		json_get_int(found, "size", &size);
		snprintf(expect, sizeof expect, "%s", json_get_str(found, "hash"));
		ver = version;
		json_decref(vs);
	}
	bool to_stdout = local && strcmp(local, "-") == 0;
	char *dest;
	struct stat st;
	if (!local)
		dest = xstrdup(name);
	else if (!to_stdout && stat(local, &st) == 0 && S_ISDIR(st.st_mode))
		dest = xasprintf("%s/%s", local, name);
	else
		dest = xstrdup(local);
	json_decref(info);
	int have = to_stdout ? 0 : transfer_local_check(remote, dest, expect, size, ver, o);
	if (have != 0) {
		free(dest);
		return have > 0 ? 0 : 1;
	}

	json_t *m = get_manifest(c, remote, ver);
	if (!m) {
		free(dest);
		return 1;
	}

	char *tmp = NULL;
	int fd = STDOUT_FILENO;
	if (!to_stdout) {
		char *copy = xstrdup(dest);
		tmp = xasprintf("%s/.%s.roost-XXXXXX", dirname(copy), basename(dest));
		free(copy);
		fd = mkstemp(tmp);
		if (fd >= 0) {
			/* mkstemp makes it 0600; a downloaded file gets the usual mode. */
			mode_t um = umask(0);
			umask(um);
			fchmod(fd, 0666 & ~um);
		}
		if (fd < 0) {
			fprintf(stderr, "roost: get: cannot create a file next to %s: %s\n", dest,
			        strerror(errno));
			free(tmp);
			free(dest);
			json_decref(m);
			return 1;
		}
	}
	struct progress pr;
	progress_init(&pr, remote, size, quiet || to_stdout);
	struct sink k;
	sink_start(&k, fd, &pr);
	k.progress = o->progress;
	json_t *sources = NULL;
	int gerr = get_chunks(c, m, o, &k, &sources);
	json_decref(m);

	char got[HASH_HEX_LEN + 1];
	int werr = sink_finish(&k, got);
	int rc = 1;
	if (gerr) {
		/* said why */
	} else if (werr) {
		fprintf(stderr, "\nroost: get %s: %s\n", remote, strerror(werr));
	} else if (k.got != size || strcmp(got, expect) != 0) {
		fprintf(stderr,
		        "\nroost: get %s: the content does not match version %lld's hash "
		        "(got %lld %s); nothing written\n",
		        remote, (long long)ver, (long long)k.got, plural(k.got, "byte", "bytes"));
	} else if (!to_stdout &&
	           (fsync(fd) != 0 || rename(tmp, dest) != 0 || fsync_parent_dir(dest) != 0)) {
		fprintf(stderr, "roost: get: cannot write %s: %s\n", dest, strerror(errno));
	} else {
		rc = 0;
		if (o->written && !to_stdout)
			*o->written = true;
		progress_show(&pr, k.got, -1, true);
		if (o->json && !to_stdout) {
			json_t *rep = json_pack("{s:s, s:s, s:I, s:I, s:s, s:b, s:O}", "path",
			                        remote, "local", dest, "version", (json_int_t)ver,
			                        "size", (json_int_t)k.got, "sha256", got, "written",
			                        true, "sources", sources);
			print_json(rep);
			json_decref(rep);
		} else if (!quiet && !to_stdout) {
			char a[32];
			printf("%s -> %s: version %lld, %s, sha256 verified\n", remote, dest,
			       (long long)ver, human_bytes(k.got, a));
		}
		if (o->verbose || (o->json && to_stdout))
			print_sources(sources);
	}
	json_decref(sources);
	if (!to_stdout) {
		close(fd);
		if (rc != 0)
			unlink(tmp);
	}
	free(tmp);
	free(dest);
	return rc;
}
