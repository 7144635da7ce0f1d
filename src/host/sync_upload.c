/* sync_upload: local changes to the workspace — a file read into chunks,
 * the chunks the hub lacks sent, and a commit conditional on the version the
 * edit started from; small files go up in batches (one probe, a few PUTs at
 * once, one batch commit); deletes, new folders and moves are sent as calls.
 * In a 'hosts' workspace no chunk is sent: the commit names the chunks and
 * this host holds them (its folder file is the copy; a pointer commit). The
 * chunks a file held that no local file holds any more after an edit or a
 * delete are reported dropped.
 * Run by the sync thread; a batch's chunk PUTs run on SMALL_PUT_THREADS
 * short-lived threads that only read the batch (h->sync->smalls). */
#include "sync.h"
#include "ignore.h"
#include "../client/transfer.h"
#include "../core/chunker.h"
#include "../core/json.h"
#include "../core/sniff.h"
#include "../core/path.h"
#include "../core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void host_commit_begin(struct host *h)
{
	pthread_mutex_lock(&h->mu);
	h->committing++;
	pthread_mutex_unlock(&h->mu);
}

void host_commit_end(struct host *h)
{
	pthread_mutex_lock(&h->mu);
	h->committing--;
	pthread_cond_broadcast(&h->commit_cv);
	pthread_mutex_unlock(&h->mu);
}

static void upload_one(struct host *h, const char *path, const char *local, const struct stat *st,
                       int64_t base, bool retried);

/* The commit and its index entry, as one step for readers the hub sends here. */
void sync_upload(struct host *h, const char *path, const char *local, const struct stat *st,
                 int64_t base, bool retried)
{
	host_commit_begin(h);
	upload_one(h, path, local, st, base, retried);
	host_commit_end(h);
}

/* ---- chunks this host no longer holds ---- */

/* The chunks the files at or under path held that nothing else here holds. */
static json_t *released_under(struct host *h, const char *path)
{
	json_t *files = idx_list(h->db, path, true), *out = json_array(), *f;
	size_t i;
	json_array_foreach(files, i, f)
	{
		json_t *one = sync_chunks_released(h, json_string_value(f), NULL);
		json_array_extend(out, one);
		json_decref(one);
	}
	json_decref(files);
	return out;
}

/* ---- pointer commits ('hosts' workspaces) ---- */

#define POINTER_READ_BUF (1u << 20)
#define POINTER_MISSING  (-2) /* the hub wants the bytes: the workspace is in 'hub' mode now */

/* The whole file's SHA-256 on a second thread (pread, the page cache) while
 * the first chunks and hashes the chunks: two SHA passes, two cores. */
struct whole_hash {
	int fd;
	int err;
	char hex[HASH_HEX_LEN + 1];
};

static void *whole_hash_main(void *arg)
{
	struct whole_hash *w = arg;
	struct hasher *hs = hasher_new();
	uint8_t *buf = xmalloc(POINTER_READ_BUF);
	ssize_t n;
	for (off_t at = 0; (n = pread(w->fd, buf, POINTER_READ_BUF, at)) > 0; at += n)
		hasher_update(hs, buf, (size_t)n);
	w->err = n < 0;
	hasher_final_hex(hs, w->hex);
	hasher_free(hs);
	free(buf);
	return NULL;
}

/* The commit body of the file open at fd — its chunks, its hash and its
 * content type, sniffed here since the hub never sees the bytes — and the
 * chunks with offsets into *chunks. NULL on a read error. */
static json_t *pointer_body(struct host *h, int fd, const char *path, json_t **chunks)
{
	struct chunker ch;
	chunker_init(&ch, &h->c.chunking);
	struct hasher *part = hasher_new();
	struct whole_hash w = {.fd = fd};
	struct stat before, after;
	pthread_t th;
	bool threaded =
	    fstat(fd, &before) == 0 && pthread_create(&th, NULL, whole_hash_main, &w) == 0;
	uint8_t *buf = xmalloc(POINTER_READ_BUF), head[SNIFF_BYTES];
	size_t head_len = 0;
	int64_t off = 0, start = 0;
	json_t *list = json_array();
	ssize_t n = -1;
	while (threaded && (n = read(fd, buf, POINTER_READ_BUF)) > 0) {
		if (head_len < sizeof head) {
			size_t k =
			    sizeof head - head_len < (size_t)n ? sizeof head - head_len : (size_t)n;
			memcpy(head + head_len, buf, k);
			head_len += k;
		}
		for (size_t i = 0; i < (size_t)n;) {
			bool cut;
			size_t k = chunker_scan(&ch, buf + i, (size_t)n - i, &cut);
			hasher_update(part, buf + i, k);
			i += k;
			off += (int64_t)k;
			if (cut) {
				char hex[HASH_HEX_LEN + 1];
				hasher_final_hex(part, hex);
				json_array_append_new(list,
				                      json_pack("{s:s, s:I, s:I}", "hash", hex,
				                                "size", (json_int_t)(off - start),
				                                "offset", (json_int_t)start));
				start = off;
			}
		}
	}
	char hex[HASH_HEX_LEN + 1], whole_hex[HASH_HEX_LEN + 1], ctype[128];
	if (n == 0 && off > start) {
		hasher_final_hex(part, hex);
		json_array_append_new(list, json_pack("{s:s, s:I, s:I}", "hash", hex, "size",
		                                      (json_int_t)(off - start), "offset",
		                                      (json_int_t)start));
	}
	if (threaded)
		pthread_join(th, NULL);
	snprintf(whole_hex, sizeof whole_hex, "%s", w.hex);
	hasher_free(part);
	free(buf);
	/* The two passes read the same bytes only if the file did not change. */
	if (!threaded || n < 0 || w.err || fstat(fd, &after) != 0 ||
	    !sync_same_stat(&before, &after) || after.st_size != off) {
		json_decref(list);
		return NULL;
	}
	if (head_len)
		sniff_type(head, head_len, ctype);
	else
		snprintf(ctype, sizeof ctype, "application/x-empty");
	json_t *named = json_array(), *c;
	size_t i;
	json_array_foreach(list, i, c)
	    json_array_append_new(named, json_pack("{s:O, s:O}", "hash", json_object_get(c, "hash"),
	                                           "size", json_object_get(c, "size")));
	*chunks = list;
	return json_pack("{s:s, s:I, s:s, s:o, s:s}", "path", path, "size", (json_int_t)off, "hash",
	                 whole_hex, "chunks", named, "content_type", ctype);
}

/* Other hosts may ask for a pointer commit's chunks as soon as the hub has
 * it, before its answer is back here and recorded (sync_record_local): so
 * the chunks' places in the file go in the index first, where the content
 * server looks them up (it re-hashes what it reads, so a place that turns
 * stale serves nothing wrong). A file new to the index gets an entry whose
 * stat matches nothing and whose version is 0: to every rule in sync*.c it
 * is an unknown local file, and a failed commit removes it again. Returns
 * what the old content held that the new one does not (to report dropped
 * once the commit is in), and *placeholder. */
static json_t *offer_chunks(struct host *h, const char *path, json_t *chunks, bool *placeholder)
{
	struct ientry e;
	json_t *dropped = sync_chunks_released(h, path, chunks);
	*placeholder = idx_get(h->db, path, &e) != 1;
	if (*placeholder) {
		struct ientry ph = {.local = true, .size = -1};
		idx_put(h->db, path, &ph);
	}
	idx_set_chunks(h->db, path, chunks);
	return dropped;
}

/* A commit's outcome for its offered chunks: dropped reported once it is in;
 * a refused new file's placeholder removed. Takes dropped. */
static void offer_settle(struct host *h, const char *path, bool committed, bool placeholder,
                         json_t *dropped)
{
	if (committed)
		host_report_replicas(h, dropped, false);
	else if (placeholder)
		idx_del(h->db, path);
	json_decref(dropped);
}

/* Commit local as path naming its chunks (no bytes sent). 0 with *res (the
 * hub's answer plus "chunks" with offsets), PUT_CONFLICT, PUT_GRANT_REFUSED,
 * POINTER_MISSING, or 1 (a failure to retry). */
static int pointer_commit(struct host *h, const char *path, const char *local, int64_t base,
                          const char *grant, json_t **res)
{
	int fd = open(local, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 1;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	json_t *chunks = NULL, *body = pointer_body(h, fd, path, &chunks), *out = NULL;
	close(fd);
	if (!body)
		return 1;
	json_object_set_new(body, "base_version_id", json_integer(base));
	if (grant)
		json_object_set_new(body, "upload_grant", json_string(grant));
	bool placeholder;
	json_t *dropped = offer_chunks(h, path, chunks, &placeholder);
	long st = sync_hub_call(h, "POST", "/versions", NULL, body, &out);
	offer_settle(h, path, st == 201, placeholder, dropped);
	const char *code = json_get_str(json_object_get(out, "error"), "code");
	int rc = st == 201 ? 0 : 1;
	if (st == 409 && code && strcmp(code, "version_conflict") == 0)
		rc = PUT_CONFLICT;
	else if (st == 403 && code && strcmp(code, "upload_grant_refused") == 0)
		rc = PUT_GRANT_REFUSED;
	else if (st == 409 && code && strcmp(code, "missing_chunks") == 0)
		rc = POINTER_MISSING;
	else if (st != 201)
		log_warn("commit of %s refused (%ld): %s", path, st,
		         json_get_str(json_object_get(out, "error"), "message"));
	if (rc == 0) {
		json_object_set_new(out, "chunks", chunks);
		*res = out;
	} else {
		json_decref(chunks);
		json_decref(out);
	}
	return rc;
}

/* ---- one file ---- */

static void upload_one(struct host *h, const char *path, const char *local, const struct stat *st,
                       int64_t base, bool retried)
{
	json_t *res = NULL;
	char *grant = host_grant_get(h, path);
	struct put_opts o = {
	    .quiet = true, .base_version_id = base, .result = &res, .upload_grant = grant};
	int rc = POINTER_MISSING;
	if (atomic_load(&h->storage_hosts))
		rc = pointer_commit(h, path, local, base, grant, &res);
	if (rc == POINTER_MISSING && atomic_load(&h->storage_hosts))
		host_load_settings(h, h->c.curl); /* the mode changed: learn it */
	if (rc == POINTER_MISSING)
		rc = transfer_put(&h->c, local, path, &o);
	free(grant);
	if (rc == PUT_GRANT_REFUSED) {
		sync_void_upload(h, path, local, st);
		return;
	}
	if (rc == 0)
		host_grant_set(h, path, NULL);
	if (rc == PUT_CONFLICT) {
		sync_resolve_conflict(h, path, local, st, retried);
		return;
	}
	if (rc != 0) {
		int64_t wait = retry_next_ms(&h->sync->retry);
		log_warn("upload of %s failed; trying again in %.1f s", path, (double)wait / 1000);
		host_mark_dirty(h, path, wait);
		return;
	}
	retry_reset(&h->sync->retry);
	/* The index gets the stat from before the upload: if the file changed
	 * while it was read, it no longer matches and goes up again. */
	sync_record_local(h, path, st, json_integer_value(json_object_get(res, "version_id")),
	                  json_integer_value(json_object_get(res, "version")),
	                  json_get_str(res, "hash"), json_object_get(res, "chunks"), true);
	struct stat after;
	if (lstat(local, &after) != 0 || !sync_same_stat(st, &after))
		host_mark_dirty(h, path, SETTLE_MODIFIED_MS);
	log_info("uploaded %s (version %lld, %lld bytes)", path,
	         (long long)json_integer_value(json_object_get(res, "version")),
	         (long long)st->st_size);
	json_decref(res);
}

/* ---- small files, in batches ----
 *
 * A file no bigger than the minimum chunk is one chunk whose hash is the
 * file's. Uploading thousands of them one by one costs a probe, a PUT and a
 * commit (with its flush) each; here they go up together: one probe, the
 * missing chunks PUT a few at a time, and one batch commit. */

#define SMALL_BATCH_FILES 500
#define SMALL_BATCH_BYTES (16u << 20)
#define SMALL_PUT_THREADS 4

struct put_job {
	struct host *h;
	atomic_size_t next;
};

static size_t discard_body(char *p, size_t size, size_t n, void *cls)
{
	(void)p;
	(void)cls;
	return size * n;
}

static void *small_put_worker(void *arg)
{
	struct put_job *j = arg;
	struct sync *sy = j->h->sync;
	CURL *curl = client_curl(&j->h->c);
	char *auth = xasprintf("Authorization: Bearer %s", j->h->c.token);
	struct curl_slist *hd = curl_slist_append(NULL, auth);
	hd = curl_slist_append(hd, "Content-Type: application/octet-stream");
	hd = curl_slist_append(hd, "Expect:");
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1);
		if (i >= sy->nsmall)
			break;
		struct small *s = &sy->smalls[i];
		if (!s->missing)
			continue;
		char *rel = xasprintf("/chunks/%s", s->hash);
		char *url = client_ws_url(&j->h->c, rel, NULL);
		curl_easy_setopt(curl, CURLOPT_URL, url);
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hd);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, (const char *)s->data);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->st.st_size);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
		long status = 0;
		if (curl_easy_perform(curl) == CURLE_OK)
			curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		s->put_status = (int)status;
		free(url);
		free(rel);
	}
	curl_slist_free_all(hd);
	free(auth);
	curl_easy_cleanup(curl);
	return NULL;
}

static json_t *one_chunk(const struct small *s)
{
	return s->st.st_size ? json_pack("[{s:s, s:I, s:I}]", "hash", s->hash, "size",
	                                 (json_int_t)s->st.st_size, "offset", (json_int_t)0)
	                     : json_array();
}

/* ---- batches whose commit is in flight ----
 *
 * The hub commits a batch while this thread reads and hashes the next ones:
 * each commit request runs on a thread of its own (with its own connection),
 * up to COMMITS_IN_FLIGHT at once (sync.h). Their answers are applied here in
 * order by sync_settle, before anything that could depend on them — a path of
 * a batch seen again, a delete, a move, a remote change other than another
 * file's version, a rescan, or going idle. A path is in one batch at most. */
struct inflight {
	struct host *h;
	struct small *smalls;
	size_t n;
	json_t *body, *offers, *out;
	json_t *paths; /* the batch's paths, for sync_in_flight */
	bool pointers, started;
	int slot; /* its connection: h->sync->commit_curl[slot] */
	long st;
	pthread_t th;
};

static void *commit_main(void *arg)
{
	struct inflight *f = arg;
	struct sync *sy = f->h->sync;
	if (!sy->commit_curl[f->slot])
		sy->commit_curl[f->slot] = client_curl(&f->h->c);
	char *url = client_ws_url(&f->h->c, "/versions/batch", NULL);
	char err[256];
	f->st =
	    client_request(&f->h->c, sy->commit_curl[f->slot], "POST", url, f->body, &f->out, err);
	if (f->st == 0)
		log_warn("%s", err);
	free(url);
	return NULL;
}

bool sync_in_flight(struct host *h, const char *path)
{
	struct sync *sy = h->sync;
	for (size_t i = 0; i < sy->ninflight; i++)
		if (!path || json_object_get(sy->inflight[i]->paths, path))
			return true;
	return false;
}

/* The hub's answer to the oldest batch in flight, applied. */
static void settle_oldest(struct host *h)
{
	struct sync *sy = h->sync;
	struct inflight *f = sy->inflight[0];
	memmove(sy->inflight, sy->inflight + 1, --sy->ninflight * sizeof *sy->inflight);
	if (f->started)
		pthread_join(f->th, NULL);
	long st = f->st;
	bool pointers = f->pointers;
	json_t *results = json_object_get(f->out, "results");
	/* The committed files' index entries in one transaction (one WAL write
	 * for the batch, not a few per file); the others after, one by one. */
	bool tx = db_begin(h->db) == DB_DONE;
	for (size_t i = 0; i < f->n; i++) {
		struct small *s = &f->smalls[i];
		json_t *r = st == 200 ? json_array_get(results, i) : NULL;
		json_t *offer = json_array_get(f->offers, i);
		bool committed = json_integer_value(json_object_get(r, "status")) == 201;
		if (offer)
			offer_settle(h, s->path, committed,
			             json_is_true(json_object_get(offer, "placeholder")),
			             json_incref(json_object_get(offer, "dropped")));
		if (!committed)
			continue;
		json_t *b = json_object_get(r, "body");
		host_grant_set(h, s->path, NULL);
		json_t *chunks = one_chunk(s);
		/* an offer indexed the chunks already: the entry alone */
		sync_record_local(h, s->path, &s->st,
		                  json_integer_value(json_object_get(b, "version_id")),
		                  json_integer_value(json_object_get(b, "version")), s->hash,
		                  offer ? NULL : chunks, true);
		if (offer)
			host_report_committed(h, chunks);
		json_decref(chunks);
	}
	if (tx && db_commit(h->db) != DB_DONE)
		db_rollback(h->db);
	for (size_t i = 0; i < f->n; i++) {
		struct small *s = &f->smalls[i];
		json_t *r = st == 200 ? json_array_get(results, i) : NULL;
		int status = (int)json_integer_value(json_object_get(r, "status"));
		json_t *b = json_object_get(r, "body");
		const char *code = json_get_str(json_object_get(b, "error"), "code");
		char *local = host_local(h, s->path);
		if (status == 201) {
			struct stat after;
			if (lstat(local, &after) != 0 || !sync_same_stat(&s->st, &after))
				host_mark_dirty(h, s->path, SETTLE_MODIFIED_MS);
		} else if (status == 409 && code && strcmp(code, "version_conflict") == 0) {
			sync_resolve_conflict(h, s->path, local, &s->st, false);
		} else if (status == 403 && code && strcmp(code, "upload_grant_refused") == 0) {
			sync_void_upload(h, s->path, local, &s->st);
		} else {
			if (status)
				log_warn("upload of %s refused: %s", s->path,
				         json_get_str(json_object_get(b, "error"), "message"));
			if (pointers && code && strcmp(code, "missing_chunks") == 0) {
				host_load_settings(h, h->c.curl); /* now 'hub' */
				pointers = atomic_load(&h->storage_hosts);
			}
			host_mark_dirty(h, s->path, retry_next_ms(&h->sync->retry));
		}
		free(local);
		free(s->path);
		free(s->data);
	}
	host_commit_end(h);
	if (st == 200) {
		retry_reset(&h->sync->retry);
		log_info("uploaded %zu small file%s in one batch", f->n, f->n == 1 ? "" : "s");
	}
	json_decref(f->offers);
	json_decref(f->out);
	json_decref(f->body);
	json_decref(f->paths);
	free(f->smalls);
	free(f);
	atomic_store(&h->last_sync, now_ms());
}

void sync_settle(struct host *h)
{
	while (h->sync->ninflight)
		settle_oldest(h);
}

void sync_flush(struct host *h)
{
	struct sync *sy = h->sync;
	if (!sy->nsmall)
		return;
	/* 1: which chunks the hub lacks (none to send in a 'hosts' workspace:
	 * the commit names them) */
	bool pointers = atomic_load(&h->storage_hosts);
	json_t *hashes = json_array();
	for (size_t i = 0; i < sy->nsmall && !pointers; i++)
		if (sy->smalls[i].st.st_size)
			json_array_append_new(hashes, json_string(sy->smalls[i].hash));
	json_t *out = NULL;
	long st = json_array_size(hashes)
	              ? sync_hub_call(h, "POST", "/chunks/missing", NULL,
	                              json_pack("{s:o}", "hashes", hashes), &out)
	              : (json_decref(hashes), 200);
	json_t *missing = json_object_get(out, "missing"), *m;
	size_t k;
	json_array_foreach(missing, k, m)
	{
		for (size_t i = 0; i < sy->nsmall; i++)
			if (strcmp(sy->smalls[i].hash, json_string_value(m)) == 0) {
				sy->smalls[i].missing = true;
				break; /* one upload per distinct chunk */
			}
	}
	json_decref(out);
	/* 2: send them, a few at a time */
	bool ok = st == 200;
	if (ok) {
		struct put_job j = {.h = h};
		pthread_t th[SMALL_PUT_THREADS];
		for (int t = 1; t < SMALL_PUT_THREADS; t++)
			pthread_create(&th[t], NULL, small_put_worker, &j);
		small_put_worker(&j);
		for (int t = 1; t < SMALL_PUT_THREADS; t++)
			pthread_join(th[t], NULL);
	}
	/* 3: commit them all at once */
	json_t *versions = json_array(), *paths = json_object();
	for (size_t i = 0; i < sy->nsmall; i++) {
		struct small *s = &sy->smalls[i];
		json_object_set_new(paths, s->path, json_true());
		json_t *chunks = one_chunk(s);
		json_t *c;
		size_t ci;
		json_array_foreach(chunks, ci, c) json_object_del(c, "offset");
		json_t *v = json_pack("{s:s, s:I, s:s, s:o, s:I}", "path", s->path, "size",
		                      (json_int_t)s->st.st_size, "hash", s->hash, "chunks", chunks,
		                      "base_version_id", (json_int_t)s->base);
		char *grant = host_grant_get(h, s->path);
		if (grant)
			json_object_set_new(v, "upload_grant", json_string(grant));
		if (pointers) { /* the hub cannot sniff bytes it never sees */
			char ctype[128] = "application/x-empty";
			if (s->st.st_size)
				sniff_type(s->data, (size_t)s->st.st_size, ctype);
			json_object_set_new(v, "content_type", json_string(ctype));
		}
		free(grant);
		json_array_append_new(versions, v);
	}
	/* Pointers: the chunks' places first (offer_chunks), in one transaction. */
	json_t *offers = json_array();
	if (ok && pointers && db_begin(h->db) == DB_DONE) {
		for (size_t i = 0; i < sy->nsmall; i++) {
			json_t *chunks = one_chunk(&sy->smalls[i]);
			bool placeholder;
			json_t *dropped = offer_chunks(h, sy->smalls[i].path, chunks, &placeholder);
			json_array_append_new(offers, json_pack("{s:o, s:b}", "dropped", dropped,
			                                        "placeholder", placeholder));
			json_decref(chunks);
		}
		if (db_commit(h->db) != DB_DONE)
			db_rollback(h->db);
	}
	if (sy->ninflight == COMMITS_IN_FLIGHT)
		settle_oldest(h);
	bool used[COMMITS_IN_FLIGHT] = {false};
	for (size_t i = 0; i < sy->ninflight; i++)
		used[sy->inflight[i]->slot] = true;
	struct inflight *f = xcalloc(1, sizeof *f);
	*f = (struct inflight){.h = h,
	                       .smalls = sy->smalls,
	                       .n = sy->nsmall,
	                       .body = json_pack("{s:o}", "versions", versions),
	                       .offers = offers,
	                       .paths = paths,
	                       .pointers = pointers};
	while (used[f->slot])
		f->slot++;
	sy->smalls = NULL;
	sy->nsmall = sy->small_bytes = 0;
	sy->inflight[sy->ninflight++] = f;
	host_commit_begin(h);
	f->started = ok && pthread_create(&f->th, NULL, commit_main, f) == 0;
}

/* Read a small file now and queue it; false if it is not one (or changing). */
static bool queue_small(struct host *h, const char *path, const char *local, const struct stat *st,
                        int64_t base)
{
	struct sync *sy = h->sync;
	if (st->st_size > (off_t)h->c.chunking.min)
		return false;
	int fd = open(local, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	uint8_t *data = xmalloc((size_t)st->st_size + 1);
	ssize_t n = pread_full(fd, data, (size_t)st->st_size, 0);
	struct stat again;
	bool same = fstat(fd, &again) == 0 && sync_same_stat(st, &again);
	close(fd);
	if (n != st->st_size || !same) {
		free(data);
		host_mark_dirty(h, path, SETTLE_MODIFIED_MS); /* still being written */
		return true;
	}
	if (sy->nsmall == SMALL_BATCH_FILES || sy->small_bytes + (size_t)n > SMALL_BATCH_BYTES)
		sync_flush(h);
	sy->smalls = xrealloc(sy->smalls, (sy->nsmall + 1) * sizeof *sy->smalls);
	struct small *s = &sy->smalls[sy->nsmall++];
	memset(s, 0, sizeof *s);
	s->path = xstrdup(path);
	s->st = *st;
	s->base = base;
	s->data = data;
	hash_hex(data, (size_t)n, s->hash);
	sy->small_bytes += (size_t)n;
	return true;
}

/* ---- local changes ---- */

static void local_gone(struct host *h, const char *path)
{
	struct ientry e;
	/* The files queued or in flight go first: one under path must not be
	 * committed after path is deleted. */
	sync_flush(h);
	sync_settle(h);
	int found = idx_get(h->db, path, &e) == 1;
	/* The workspace is taken to hold what the index has (a delete of
	 * what changed there since is the hub's to refuse or keep in trash). */
	struct plan_state base = sync_base_state(found ? &e : NULL), gone = {.kind = PLAN_ABSENT};
	enum plan_conflict conflict;
	struct plan_state want = plan_path(&base, &gone, &base, &conflict);
	if (plan_same(&want, &base))
		return; /* unknown, or on-demand metadata whose content was never here */
	json_t *out = NULL;
	long st = sync_hub_call(h, "DELETE", "/files?path=%s", path, NULL, &out);
	json_decref(out);
	if (st == 200 || st == 404) {
		json_t *dropped = released_under(h, path);
		idx_del(h->db, path);
		host_report_replicas(h, dropped, false);
		json_decref(dropped);
		log_info("deleted %s from the workspace", path);
		atomic_store(&h->last_sync, now_ms());
	} else {
		host_mark_dirty(h, path, retry_next_ms(&h->sync->retry));
	}
}

/* The index has a file at path where the folder now has a folder, or the
 * reverse: the user replaced one by the other, and the watcher saw only the
 * new one. The old one goes from the workspace first (as its delete would
 * have), else the hub refused the new one for ever ("a file or folder is in
 * the way"). False while that delete waits for a retry. */
static bool local_replaced(struct host *h, const char *path, bool now_dir)
{
	struct ientry e;
	if (idx_get(h->db, path, &e) != 1 || e.dir == now_dir)
		return true;
	local_gone(h, path);
	return idx_get(h->db, path, &e) != 1;
}

static void local_dir(struct host *h, const char *path)
{
	struct ientry e;
	if (!local_replaced(h, path, true))
		return;
	if (strcmp(path, "/") != 0 && idx_get(h->db, path, &e) != 1) {
		json_t *out = NULL;
		long st = sync_hub_call(h, "POST", "/folders", NULL,
		                        json_pack("{s:s, s:b}", "path", path, "parents", 1), &out);
		json_decref(out);
		if (st != 200 && st != 201 && st != 409) {
			host_mark_dirty(h, path, retry_next_ms(&h->sync->retry));
			return;
		}
		struct ientry d = {.dir = true, .local = true};
		idx_put(h->db, path, &d);
	}
	/* Look inside: what was made before the watch existed is not missed. */
	char *local = host_local(h, path);
	DIR *d = opendir(local);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    !name_valid(de->d_name, strlen(de->d_name)))
			continue;
		char *child = path_join(path, de->d_name);
		struct stat st;
		char *cl = host_local(h, child);
		if (!host_ignored(child) && lstat(cl, &st) == 0 &&
		    (S_ISDIR(st.st_mode)
		         ? idx_get(h->db, child, &e) != 1
		         : S_ISREG(st.st_mode) &&
		               !(idx_get(h->db, child, &e) == 1 && stat_matches(&e, &st))))
			host_mark_dirty(h, child, 0);
		free(cl);
		free(child);
	}
	if (d)
		closedir(d);
	free(local);
}

void sync_local_path(struct host *h, const char *path)
{
	if (strcmp(path, "/" IGNORE_FILE) == 0 && host_ignore_refresh()) {
		pthread_mutex_lock(&h->mu);
		h->rescan = h->resync = true; /* a pattern gone or negated brings files back */
		pthread_mutex_unlock(&h->mu);
	}
	if (host_ignored(path) || host_policy(h, path) == POL_EXCLUDE)
		return;
	if (json_object_get(h->sync->refetch, path)) { /* a remote file to fetch again */
		sync_refetch(h, path);
		return;
	}
	if (sync_in_flight(h, path))
		sync_settle(h); /* its index entry first */
	char *local = host_local(h, path);
	struct stat st;
	if (lstat(local, &st) != 0) {
		if (errno == ENOENT)
			local_gone(h, path);
		free(local);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		local_dir(h, path);
	} else if (S_ISREG(st.st_mode) && local_replaced(h, path, false)) {
		struct ientry e;
		int found = idx_get(h->db, path, &e) == 1;
		int64_t base = found && !e.dir ? e.version_id : 0;
		/* The workspace is taken to hold what the index has: the upload
		 * is conditional on it, and the hub says when it moved on. */
		struct plan_state agreed = sync_base_state(found ? &e : NULL);
		struct plan_state mine = sync_local_state(found ? &e : NULL, local, &st, false);
		enum plan_conflict conflict;
		struct plan_state want = plan_path(&agreed, &mine, &agreed, &conflict);
		if (!plan_same(&want, &agreed) && !queue_small(h, path, local, &st, base))
			sync_upload(h, path, local, &st, base, false);
	}
	/* symlinks, devices, sockets: not synced */
	free(local);
}

void sync_local_move(struct host *h, const char *from, const char *to)
{
	sync_flush(h); /* what is queued under from goes up before it moves */
	sync_settle(h);
	if (sync_was_own_rename(h, from, to)) {
		host_mark_dirty(h, to, 0);
		return;
	}
	struct ientry fe, te;
	bool known = idx_get(h->db, from, &fe) == 1;
	bool taken = idx_get(h->db, to, &te) == 1;
	if (!known || taken || host_policy(h, from) == POL_EXCLUDE ||
	    host_policy(h, to) == POL_EXCLUDE) {
		/* Not a move the workspace can make (or our own, applied already):
		 * look at both ends as they are. */
		host_mark_dirty(h, from, 0);
		host_mark_dirty(h, to, 0);
		return;
	}
	json_t *out = NULL;
	long st = sync_hub_call(h, "POST", "/move", NULL,
	                        json_pack("{s:s, s:s}", "from", from, "to", to), &out);
	json_decref(out);
	if (st == 200) {
		idx_rename(h->db, from, to);
		log_info("moved %s to %s in the workspace", from, to);
		atomic_store(&h->last_sync, now_ms());
	}
	host_mark_dirty(h, from, 0);
	host_mark_dirty(h, to, 0);
}
