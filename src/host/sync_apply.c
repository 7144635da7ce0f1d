/* sync: the rules that keep the folder and the workspace equal. Run only by
 * the sync thread, one change at a time.
 *
 * The index records, per file, the stat it had when it last matched a hub
 * version. So a local file whose stat still matches is unchanged (nothing to
 * upload, safe to replace), and one whose stat differs holds the user's edit
 * (upload it; never overwrite it). Uploads are conditional on the version
 * they started from; when another version got there first, or a remote
 * version arrives for a file edited here, the local edit is kept as
 * "NAME (conflict from HOST DATE).EXT" and uploaded too. Nothing is lost.
 *
 * Everything from the network is validated: paths through path_normalize,
 * content through its hashes; files are only ever replaced by rename. */
#include "host.h"
#include "../cli/transfer.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Failed work is tried again after a delay that doubles with each failure in
 * a row (1 s up to a minute), with jitter so many hosts don't retry in step. */
static int fail_streak;

static int64_t retry_ms(void)
{
	int64_t base = 1000ll << (fail_streak < 6 ? fail_streak : 6);
	if (base > 60000)
		base = 60000;
	fail_streak++;
	return base / 2 + rand() % (base / 2 + 1);
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_ino == b->st_ino &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int hash_file(const char *local, char out[HASH_HEX_LEN + 1])
{
	int fd = open(local, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	struct hasher *hs = hasher_new();
	uint8_t *buf = xmalloc(1 << 20);
	ssize_t n;
	while ((n = read(fd, buf, 1 << 20)) > 0)
		hasher_update(hs, buf, (size_t)n);
	int rc = n < 0 ? -errno : 0;
	close(fd);
	hasher_final_hex(hs, out);
	hasher_free(hs);
	free(buf);
	return rc;
}

/* ---- talking to the hub ---- */

static long hub_call(struct host *h, const char *method, const char *rel, const char *path_arg,
                     json_t *body, json_t **out)
{
	char *url = client_ws_url(&h->c, rel, path_arg);
	char err[256];
	long st = client_request(&h->c, h->c.curl, method, url, body, out, err);
	if (st == 0)
		log_warn("%s", err);
	free(url);
	json_decref(body);
	return st;
}

/* ---- renames made here ----
 *
 * The watcher reports our own renames (conflict copies, remote moves) like a
 * user's. They are remembered here, and the move they come back as is not
 * sent to the hub. Only the sync thread touches the list. */

struct own_rename {
	char *from, *to;
	int64_t at;
	struct own_rename *next;
};
static struct own_rename *own_renames;

static void own_rename(struct host *h, const char *from, const char *to)
{
	(void)h;
	struct own_rename *o = xcalloc(1, sizeof *o);
	o->from = xstrdup(from);
	o->to = xstrdup(to);
	o->at = mono_ms();
	o->next = own_renames;
	own_renames = o;
}

/* Was from -> to ours? Forgets it, and any older than a minute. */
static bool was_own_rename(const char *from, const char *to)
{
	bool found = false;
	int64_t now = mono_ms();
	for (struct own_rename **pp = &own_renames; *pp;) {
		struct own_rename *o = *pp;
		bool match = !found && strcmp(o->from, from) == 0 && strcmp(o->to, to) == 0;
		if (match || now - o->at > 60000) {
			found = found || match;
			*pp = o->next;
			free(o->from);
			free(o->to);
			free(o);
		} else {
			pp = &o->next;
		}
	}
	return found;
}

/* ---- conflict copies ---- */

/* "dir/name (conflict from LABEL 2026-11-30 101502).ext", not yet taken. */
static char *conflict_path(struct host *h, const char *path)
{
	char *parent = NULL, *name = NULL;
	path_split(path, &parent, &name);
	char *dot = strrchr(name, '.');
	if (dot == name)
		dot = NULL;
	char ext[NAME_MAX_BYTES + 1] = "";
	if (dot) {
		snprintf(ext, sizeof ext, "%s", dot);
		*dot = 0;
	}
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(when, sizeof when, "%Y-%m-%d %H%M%S", &tm);
	char *out = NULL;
	for (int n = 1; n < 100; n++) {
		char *nm =
		    n == 1
		        ? xasprintf("%s (conflict from %s %s)%s", name, h->label, when, ext)
		        : xasprintf("%s (conflict from %s %s %d)%s", name, h->label, when, n, ext);
		out = path_join(parent, nm);
		free(nm);
		char *local = host_local(h, out);
		struct stat st;
		bool free_name = lstat(local, &st) != 0;
		free(local);
		if (free_name)
			break;
		free(out);
		out = NULL;
	}
	free(parent);
	free(name);
	return out;
}

/* Move the local file at path aside as a conflict copy, to be uploaded. */
static bool keep_as_conflict(struct host *h, const char *path)
{
	char *cp = conflict_path(h, path);
	char *from = host_local(h, path), *to = cp ? host_local(h, cp) : NULL;
	bool ok = to && rename(from, to) == 0;
	if (ok) {
		log_info("conflict: kept this host's %s as %s", path, cp);
		own_rename(h, path, cp);
		host_mark_dirty(h, cp, 0);
	} else {
		log_error("conflict: cannot keep %s aside: %s", path, strerror(errno));
	}
	free(from);
	free(to);
	free(cp);
	return ok;
}

/* ---- applying a version ---- */

static void drop_local_copy(struct host *h, const char *path, struct ientry *e);

static void record_local(struct host *h, const char *path, const struct stat *st, int64_t vid,
                         int64_t version, const char *hash, json_t *chunks)
{
	struct ientry e = {.local = true, .version_id = vid, .version = version};
	entry_from_stat(&e, st);
	snprintf(e.hash, sizeof e.hash, "%s", hash);
	idx_put(h->db, path, &e);
	if (chunks) {
		idx_set_chunks(h->db, path, chunks);
		host_report_replicas(h, chunks, true);
	}
	atomic_store(&h->last_sync, now_ms());
}

/* Download manifest m to path. seen is the local file as it was when we
 * decided to replace it (NULL: there was none); if it changed since, it is
 * kept as a conflict copy rather than overwritten. */
static bool download_to(struct host *h, const char *path, json_t *m, const struct stat *seen)
{
	char *tmp = xasprintf("%s/dl-XXXXXX", h->tmp_dir);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		log_error("download %s: cannot create a temp file: %s", path, strerror(errno));
		free(tmp);
		return false;
	}
	mode_t um = umask(0);
	umask(um);
	int rc = fetch_content(h, h->db, h->c.curl, m, fd, false);
	if (rc == 0 && (fchmod(fd, 0666 & ~um) != 0 || fsync(fd) != 0))
		rc = -errno;
	close(fd);
	char *local = host_local(h, path);
	if (rc == 0) {
		struct stat now;
		int have = lstat(local, &now) == 0;
		if ((have && (!seen || !same_stat(seen, &now))) && S_ISREG(now.st_mode))
			keep_as_conflict(h, path);
		char *parent = xstrdup(local);
		*strrchr(parent, '/') = 0;
		mkdir_p(parent, 0777);
		if (rename(tmp, local) != 0) {
			rc = -errno;
			log_error("download %s: rename: %s", path, strerror(errno));
		} else {
			fsync_parent_dir(local);
		}
		free(parent);
	}
	if (rc != 0) {
		unlink(tmp);
		if (rc != -EINTR)
			log_error("download %s failed: %s", path, strerror(-rc));
	} else {
		struct stat st;
		if (lstat(local, &st) == 0)
			record_local(h, path, &st,
			             json_integer_value(json_object_get(m, "version_id")),
			             json_integer_value(json_object_get(m, "version")),
			             json_get_str(m, "hash"), json_object_get(m, "chunks"));
		host_room_found(h, path);
		log_info("synced %s (version %lld) from the workspace", path,
		         (long long)json_integer_value(json_object_get(m, "version")));
	}
	free(local);
	free(tmp);
	return rc == 0;
}

static void apply_version(struct host *h, const char *path, int64_t vid, int64_t version,
                          const char *hash, int64_t size)
{
	enum policy pol = host_policy(h, path);
	if (pol == POL_EXCLUDE)
		return;
	struct ientry e;
	int found = idx_get(h->db, path, &e) == 1;
	if (found && !e.dir && e.version_id >= vid)
		return; /* ours, or older than what we have */
	char *local = host_local(h, path);
	struct stat st;
	int have = lstat(local, &st) == 0;
	if (pol == POL_ON_DEMAND) {
		/* Metadata only; content is fetched when read. A local copy left
		 * from a pinned past goes if it is unchanged. */
		if (have && found && e.local)
			drop_local_copy(h, path, &e);
		if (!have || (found && !e.local)) {
			struct ientry ne = {.version_id = vid, .version = version, .size = size};
			snprintf(ne.hash, sizeof ne.hash, "%s", hash);
			idx_put(h->db, path, &ne);
		}
		free(local);
		return;
	}
	if (have && S_ISDIR(st.st_mode)) {
		log_warn("%s is a folder here but a file in the workspace; left alone", path);
		free(local);
		return;
	}
	if (have && !(found && stat_matches(&e, &st))) {
		/* The local file holds something the index does not know. */
		char got[HASH_HEX_LEN + 1];
		if (hash_file(local, got) == 0 && strcmp(got, hash) == 0) {
			bool gone;
			json_t *m = fetch_manifest(h, h->c.curl, path, version, &gone);
			record_local(h, path, &st, vid, version, hash,
			             m ? json_object_get(m, "chunks") : NULL);
			json_decref(m);
			free(local);
			return;
		}
		if (!keep_as_conflict(h, path)) {
			free(local);
			return;
		}
		have = false;
	}
	free(local);
	if (!host_room_for(h, path, size)) {
		/* reported; a resync tries again later, after a restart too */
		idx_kv_set(h->db, "no_space", 1);
		return;
	}
	/* A file within the minimum chunk size is one chunk named by the
	 * file's hash: no need to ask for its manifest. */
	if (size <= (int64_t)h->c.chunking.min) {
		json_t *m = json_pack(
		    "{s:s, s:I, s:I, s:I, s:s, s:o}", "path", path, "version", (json_int_t)version,
		    "version_id", (json_int_t)vid, "size", (json_int_t)size, "hash", hash, "chunks",
		    size ? json_pack("[{s:s, s:I, s:I, s:[]}]", "hash", hash, "size",
		                     (json_int_t)size, "offset", (json_int_t)0, "hosts")
		         : json_array());
		bool done = download_to(h, path, m, have ? &st : NULL);
		json_decref(m);
		if (done)
			return; /* else: not stored as one chunk; ask for the manifest */
	}
	bool gone = false;
	json_t *m = fetch_manifest(h, h->c.curl, path, version, &gone);
	if (m)
		download_to(h, path, m, have ? &st : NULL);
	else if (!gone)
		host_mark_dirty(h, path, retry_ms()); /* the hub is away: look again */
	json_decref(m);
}

/* ---- uploading ---- */

static void upload(struct host *h, const char *path, const char *local, const struct stat *st,
                   int64_t base, bool retried);

/* Our conditional commit lost: someone else's version is current. */
static void resolve_conflict(struct host *h, const char *path, const char *local,
                             const struct stat *st, bool retried)
{
	bool gone = false;
	json_t *m = fetch_manifest(h, h->c.curl, path, 0, &gone);
	if (!m) {
		if (gone && !retried) /* deleted there while edited here: keep ours */
			upload(h, path, local, st, 0, true);
		else
			host_mark_dirty(h, path, retry_ms());
		return;
	}
	char got[HASH_HEX_LEN + 1];
	const char *want = json_get_str(m, "hash");
	if (hash_file(local, got) == 0 && want && strcmp(got, want) == 0) {
		record_local(h, path, st, json_integer_value(json_object_get(m, "version_id")),
		             json_integer_value(json_object_get(m, "version")), want,
		             json_object_get(m, "chunks"));
	} else if (keep_as_conflict(h, path)) {
		download_to(h, path, m, NULL);
	}
	json_decref(m);
}

/* The hub refused the grant of a file taken through a write URL: whoever
 * uploaded it may no longer write it, so the upload is void. The workspace's
 * version comes back (a new file goes); the grant is kept until then, so the
 * file never goes up as this host's own edit. */
static void void_upload(struct host *h, const char *path, const char *local, const struct stat *st)
{
	log_warn("%s came through a write URL whose uploader may no longer write it; "
	         "restoring the workspace's version",
	         path);
	bool gone = false;
	json_t *m = fetch_manifest(h, h->c.curl, path, 0, &gone);
	if (m ? download_to(h, path, m, st) : gone && unlink(local) == 0)
		host_grant_set(h, path, NULL);
	else
		host_mark_dirty(h, path, retry_ms());
	json_decref(m);
}

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
static void upload(struct host *h, const char *path, const char *local, const struct stat *st,
                   int64_t base, bool retried)
{
	host_commit_begin(h);
	upload_one(h, path, local, st, base, retried);
	host_commit_end(h);
}

static void upload_one(struct host *h, const char *path, const char *local, const struct stat *st,
                       int64_t base, bool retried)
{
	json_t *res = NULL;
	char *grant = host_grant_get(h, path);
	struct put_opts o = {
	    .quiet = true, .base_version_id = base, .result = &res, .upload_grant = grant};
	int rc = transfer_put(&h->c, local, path, &o);
	free(grant);
	if (rc == PUT_GRANT_REFUSED) {
		void_upload(h, path, local, st);
		return;
	}
	if (rc == 0)
		host_grant_set(h, path, NULL);
	if (rc == PUT_CONFLICT) {
		resolve_conflict(h, path, local, st, retried);
		return;
	}
	if (rc != 0) {
		int64_t wait = retry_ms();
		log_warn("upload of %s failed; trying again in %.1f s", path, (double)wait / 1000);
		host_mark_dirty(h, path, wait);
		return;
	}
	fail_streak = 0;
	/* The index gets the stat from before the upload: if the file changed
	 * while it was read, it no longer matches and goes up again. */
	record_local(h, path, st, json_integer_value(json_object_get(res, "version_id")),
	             json_integer_value(json_object_get(res, "version")), json_get_str(res, "hash"),
	             json_object_get(res, "chunks"));
	struct stat after;
	if (lstat(local, &after) != 0 || !same_stat(st, &after))
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

struct small {
	char *path;
	struct stat st;
	int64_t base;
	uint8_t *data;
	char hash[HASH_HEX_LEN + 1];
	bool missing;
	int put_status;
};

static struct small *smalls;
static size_t nsmall, small_bytes;

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
	CURL *curl = client_curl(&j->h->c);
	char *auth = xasprintf("Authorization: Bearer %s", j->h->c.token);
	struct curl_slist *hd = curl_slist_append(NULL, auth);
	hd = curl_slist_append(hd, "Content-Type: application/octet-stream");
	hd = curl_slist_append(hd, "Expect:");
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1);
		if (i >= nsmall)
			break;
		struct small *s = &smalls[i];
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

void sync_flush(struct host *h)
{
	if (!nsmall)
		return;
	/* 1: which chunks the hub lacks */
	json_t *hashes = json_array();
	for (size_t i = 0; i < nsmall; i++)
		if (smalls[i].st.st_size)
			json_array_append_new(hashes, json_string(smalls[i].hash));
	json_t *out = NULL;
	long st = json_array_size(hashes) ? hub_call(h, "POST", "/chunks/missing", NULL,
	                                             json_pack("{s:o}", "hashes", hashes), &out)
	                                  : (json_decref(hashes), 200);
	json_t *missing = json_object_get(out, "missing"), *m;
	size_t k;
	json_array_foreach(missing, k, m)
	{
		for (size_t i = 0; i < nsmall; i++)
			if (strcmp(smalls[i].hash, json_string_value(m)) == 0) {
				smalls[i].missing = true;
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
	json_t *versions = json_array();
	for (size_t i = 0; ok && i < nsmall; i++) {
		struct small *s = &smalls[i];
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
		free(grant);
		json_array_append_new(versions, v);
	}
	out = NULL;
	host_commit_begin(h);
	st = ok ? hub_call(h, "POST", "/versions/batch", NULL,
	                   json_pack("{s:o}", "versions", versions), &out)
	        : (json_decref(versions), 0);
	json_t *results = json_object_get(out, "results");
	for (size_t i = 0; i < nsmall; i++) {
		struct small *s = &smalls[i];
		json_t *r = st == 200 ? json_array_get(results, i) : NULL;
		int status = (int)json_integer_value(json_object_get(r, "status"));
		json_t *b = json_object_get(r, "body");
		const char *code = json_get_str(json_object_get(b, "error"), "code");
		char *local = host_local(h, s->path);
		if (status == 201) {
			host_grant_set(h, s->path, NULL);
			json_t *chunks = one_chunk(s);
			record_local(h, s->path, &s->st,
			             json_integer_value(json_object_get(b, "version_id")),
			             json_integer_value(json_object_get(b, "version")), s->hash,
			             chunks);
			json_decref(chunks);
			struct stat after;
			if (lstat(local, &after) != 0 || !same_stat(&s->st, &after))
				host_mark_dirty(h, s->path, SETTLE_MODIFIED_MS);
		} else if (status == 409 && code && strcmp(code, "version_conflict") == 0) {
			resolve_conflict(h, s->path, local, &s->st, false);
		} else if (status == 403 && code && strcmp(code, "upload_grant_refused") == 0) {
			void_upload(h, s->path, local, &s->st);
		} else {
			if (status)
				log_warn("upload of %s refused: %s", s->path,
				         json_get_str(json_object_get(b, "error"), "message"));
			host_mark_dirty(h, s->path, retry_ms());
		}
		free(local);
		free(s->path);
		free(s->data);
	}
	host_commit_end(h);
	if (st == 200) {
		fail_streak = 0;
		log_info("uploaded %zu small file%s in one batch", nsmall, nsmall == 1 ? "" : "s");
	}
	json_decref(out);
	nsmall = small_bytes = 0;
	atomic_store(&h->last_sync, now_ms());
}

/* Read a small file now and queue it; false if it is not one (or changing). */
static bool queue_small(struct host *h, const char *path, const char *local, const struct stat *st,
                        int64_t base)
{
	if (st->st_size > (off_t)h->c.chunking.min)
		return false;
	int fd = open(local, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	uint8_t *data = xmalloc((size_t)st->st_size + 1);
	ssize_t n = pread_full(fd, data, (size_t)st->st_size, 0);
	struct stat again;
	bool same = fstat(fd, &again) == 0 && same_stat(st, &again);
	close(fd);
	if (n != st->st_size || !same) {
		free(data);
		host_mark_dirty(h, path, SETTLE_MODIFIED_MS); /* still being written */
		return true;
	}
	if (nsmall == SMALL_BATCH_FILES || small_bytes + (size_t)n > SMALL_BATCH_BYTES)
		sync_flush(h);
	smalls = xrealloc(smalls, (nsmall + 1) * sizeof *smalls);
	struct small *s = &smalls[nsmall++];
	memset(s, 0, sizeof *s);
	s->path = xstrdup(path);
	s->st = *st;
	s->base = base;
	s->data = data;
	hash_hex(data, (size_t)n, s->hash);
	small_bytes += (size_t)n;
	return true;
}

/* ---- local changes ---- */

static void local_gone(struct host *h, const char *path)
{
	struct ientry e;
	if (idx_get(h->db, path, &e) != 1 || (!e.dir && !e.local))
		return; /* unknown, or on-demand metadata whose content was never here */
	json_t *out = NULL;
	long st = hub_call(h, "DELETE", "/files?path=%s", path, NULL, &out);
	json_decref(out);
	if (st == 200 || st == 404) {
		idx_del(h->db, path);
		log_info("deleted %s from the workspace", path);
		atomic_store(&h->last_sync, now_ms());
	} else {
		host_mark_dirty(h, path, retry_ms());
	}
}

static void local_dir(struct host *h, const char *path)
{
	struct ientry e;
	if (strcmp(path, "/") != 0 && idx_get(h->db, path, &e) != 1) {
		json_t *out = NULL;
		long st = hub_call(h, "POST", "/folders", NULL,
		                   json_pack("{s:s, s:b}", "path", path, "parents", 1), &out);
		json_decref(out);
		if (st != 200 && st != 201 && st != 409) {
			host_mark_dirty(h, path, retry_ms());
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
	if (host_ignored(path) || host_policy(h, path) == POL_EXCLUDE)
		return;
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
	} else if (S_ISREG(st.st_mode)) {
		struct ientry e;
		int found = idx_get(h->db, path, &e) == 1;
		int64_t base = found && !e.dir ? e.version_id : 0;
		if (!(found && stat_matches(&e, &st)) && !queue_small(h, path, local, &st, base))
			upload(h, path, local, &st, base, false);
	}
	/* symlinks, devices, sockets: not synced */
	free(local);
}

void sync_local_move(struct host *h, const char *from, const char *to)
{
	if (was_own_rename(from, to)) {
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
	long st = hub_call(h, "POST", "/move", NULL,
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

/* ---- remote changes ---- */

/* Chunks of path that no other local file holds: this host drops them. */
static json_t *chunks_only_in(struct host *h, const char *path)
{
	json_t *out = json_array();
	struct db_stmt *q =
	    db_query(h->db,
	             "SELECT DISTINCT c.hash FROM chunks c WHERE c.path = ?1 AND NOT "
	             "EXISTS (SELECT 1 FROM chunks o JOIN files f ON f.path = o.path "
	             "WHERE o.hash = c.hash AND o.path <> ?1 AND f.local = 1)",
	             "t", path);
	while (q && db_step(q) == DB_ROW)
		json_array_append_new(out, json_pack("{s:s}", "hash", db_col_text(q, 0)));
	db_finalize(q);
	return out;
}

/* Make an on-demand file's content leave the folder (if unchanged here). */
static void drop_local_copy(struct host *h, const char *path, struct ientry *e)
{
	char *local = host_local(h, path);
	struct stat st;
	if (lstat(local, &st) == 0 && stat_matches(e, &st)) {
		json_t *dropped = chunks_only_in(h, path);
		if (unlink(local) == 0) {
			e->local = false;
			idx_put(h->db, path, e);
			db_run(h->db, "DELETE FROM chunks WHERE path = ?", "t", path);
			host_report_replicas(h, dropped, false);
		}
		json_decref(dropped);
	}
	free(local);
}

static void remove_local_file(struct host *h, const char *path)
{
	struct ientry e;
	if (idx_get(h->db, path, &e) != 1)
		return;
	char *local = host_local(h, path);
	struct stat st;
	if (lstat(local, &st) != 0 || !e.local) {
		idx_del(h->db, path);
	} else if (stat_matches(&e, &st)) {
		json_t *dropped = chunks_only_in(h, path);
		if (unlink(local) == 0 || errno == ENOENT) {
			idx_del(h->db, path);
			host_report_replicas(h, dropped, false);
		}
		json_decref(dropped);
	} else {
		/* Edited here since: keep it, as a new file. */
		idx_del(h->db, path);
		host_mark_dirty(h, path, 0);
	}
	free(local);
}

static void apply_delete(struct host *h, const char *path, bool is_dir)
{
	if (!is_dir) {
		remove_local_file(h, path);
		atomic_store(&h->last_sync, now_ms());
		return;
	}
	/* Deepest first, so folders are empty when their turn comes. */
	json_t *all = idx_list(h->db, path, false), *p;
	size_t i;
	json_array_foreach(all, i, p)
	{
		const char *sp = json_string_value(p);
		struct ientry e;
		if (idx_get(h->db, sp, &e) != 1)
			continue;
		if (e.dir) {
			char *local = host_local(h, sp);
			rmdir(local); /* fails when something edited here is left in it */
			idx_del(h->db, sp);
			free(local);
		} else {
			remove_local_file(h, sp);
		}
	}
	json_decref(all);
	char *local = host_local(h, path);
	rmdir(local);
	free(local);
	atomic_store(&h->last_sync, now_ms());
}

static void apply_move(struct host *h, const char *from, const char *to)
{
	struct ientry fe, te;
	bool known = idx_get(h->db, from, &fe) == 1;
	if (!known) {
		if (idx_get(h->db, to, &te) != 1 && host_policy(h, to) != POL_EXCLUDE) {
			pthread_mutex_lock(&h->mu);
			h->resync = true; /* something we never had is now where we keep things */
			pthread_mutex_unlock(&h->mu);
		}
		return;
	}
	if (host_policy(h, to) == POL_EXCLUDE) {
		apply_delete(h, from, fe.dir);
		return;
	}
	char *lf = host_local(h, from), *lt = host_local(h, to);
	struct stat st;
	if (lstat(lt, &st) == 0) {
		if (S_ISREG(st.st_mode))
			keep_as_conflict(h, to);
		else
			log_warn("move %s -> %s: a folder is in the way here", from, to);
	}
	char *parent = xstrdup(lt);
	*strrchr(parent, '/') = 0;
	mkdir_p(parent, 0777);
	free(parent);
	if (rename(lf, lt) == 0)
		own_rename(h, from, to);
	else if (errno != ENOENT)
		log_error("move %s -> %s: %s", from, to, strerror(errno));
	idx_rename(h->db, from, to);
	log_info("moved %s to %s (from the workspace)", from, to);
	atomic_store(&h->last_sync, now_ms());
	free(lf);
	free(lt);
}

static void apply_mkdir(struct host *h, const char *path)
{
	if (host_policy(h, path) != POL_PINNED)
		return;
	char *local = host_local(h, path);
	if (mkdir_p(local, 0777) == 0) {
		struct ientry d = {.dir = true, .local = true};
		idx_put(h->db, path, &d);
	}
	free(local);
}

/* A path from the network, normalized, or NULL if unusable here. */
static char *net_path(json_t *o, const char *key)
{
	const char *s = json_get_str(o, key), *why;
	char *p = s ? path_normalize(s, strlen(s), &why) : NULL;
	if (p && (strcmp(p, "/") == 0 || host_ignored(p))) {
		free(p);
		p = NULL;
	}
	return p;
}

void sync_remote_event(struct host *h, json_t *ev)
{
	const char *kind = json_get_str(ev, "kind");
	json_t *pl = json_object_get(ev, "payload");
	int64_t seq = 0;
	if (!json_get_int(ev, "seq", &seq) || seq <= atomic_load(&h->seq) || !kind)
		return;
	char *path = net_path(pl, "path"), *from = net_path(pl, "from"), *to = net_path(pl, "to");
	int64_t vid = 0, version = 0, size = 0, host = 0;
	const char *hash = json_get_str(pl, "hash");
	if (strcmp(kind, "file.version") == 0 && path && hash_hex_valid(hash) &&
	    json_get_int(pl, "version_id", &vid) && json_get_int(pl, "version", &version)) {
		json_get_int(pl, "size", &size);
		apply_version(h, path, vid, version, hash, size);
	} else if ((strcmp(kind, "file.deleted") == 0 || strcmp(kind, "folder.deleted") == 0) &&
	           path) {
		apply_delete(h, path, kind[1] == 'o');
	} else if ((strcmp(kind, "file.moved") == 0 || strcmp(kind, "folder.moved") == 0) && from &&
	           to) {
		apply_move(h, from, to);
	} else if (strcmp(kind, "folder.created") == 0 && path) {
		apply_mkdir(h, path);
	} else if (strcmp(kind, "scrub.requested") == 0) {
		atomic_store(&h->scrub_now, true);
	} else if (strcmp(kind, "chunks.collected") == 0) {
		atomic_store(&h->gc_seen, true);
	} else if (strcmp(kind, "host.url") == 0 && json_get_int(pl, "host_id", &host) &&
	           host == h->host_id) {
		tunnel_refresh(h->tunnel);
	} else if (strcmp(kind, "host.policy") == 0 && json_get_int(pl, "host_id", &host) &&
	           host == h->host_id && strcmp(kind, "host.policy") == 0) {
		/* Now, so the events after this one see it; the tree pass
		 * then fixes what was synced under the old policy. */
		host_load_policies(h, h->c.curl);
		pthread_mutex_lock(&h->mu);
		h->resync = true;
		pthread_mutex_unlock(&h->mu);
	}
	free(path);
	free(from);
	free(to);
	atomic_store(&h->seq, seq);
	idx_kv_set(h->db, "seq", seq);
}

/* ---- whole-folder passes ---- */

static void walk(struct host *h, const char *path)
{
	char *local = host_local(h, path);
	DIR *d = opendir(local);
	free(local);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    !name_valid(de->d_name, strlen(de->d_name)))
			continue;
		char *child = path_join(path, de->d_name);
		if (host_ignored(child) || host_policy(h, child) == POL_EXCLUDE) {
			free(child);
			continue;
		}
		char *cl = host_local(h, child);
		struct stat st;
		struct ientry e;
		if (lstat(cl, &st) == 0) {
			int found = idx_get(h->db, child, &e) == 1;
			if (S_ISDIR(st.st_mode)) {
				if (!found)
					host_mark_dirty(h, child, 0);
				walk(h, child);
			} else if (S_ISREG(st.st_mode) && !(found && stat_matches(&e, &st))) {
				host_mark_dirty(h, child, 0);
			}
		}
		free(cl);
		free(child);
	}
	closedir(d);
}

void sync_rescan(struct host *h, bool at_start)
{
	atomic_store(&h->state, 1);
	walk(h, "/");
	/* What the index has here but the folder lost. While we run, the watcher
	 * saw any delete as it happened, so what a later rescan finds missing was
	 * deleted while unwatched (an inotify overflow). At start it was lost
	 * while we were stopped: a disk replaced, files removed by accident, or
	 * a restore from an old backup. That is not a user's delete — it must
	 * not empty the workspace — so the files are fetched again. */
	struct db_stmt *st = db_query(h->db, "SELECT path FROM files WHERE local = 1", NULL);
	json_t *gone = json_array();
	while (st && db_step(st) == DB_ROW) {
		char *cl = host_local(h, db_col_text(st, 0));
		struct stat s;
		if (lstat(cl, &s) != 0 && errno == ENOENT)
			json_array_append_new(gone, json_string(db_col_text(st, 0)));
		free(cl);
	}
	db_finalize(st);
	size_t i;
	json_t *p;
	if (at_start && json_array_size(gone)) {
		log_warn("%zu file%s went missing while this host was stopped; fetching them "
		         "again (delete through roost, or while the host runs, to delete)",
		         json_array_size(gone), json_array_size(gone) == 1 ? "" : "s");
		json_array_foreach(gone, i, p) idx_del(h->db, json_string_value(p));
		pthread_mutex_lock(&h->mu);
		h->resync = true; /* the tree pass fetches what the index no longer has */
		pthread_mutex_unlock(&h->mu);
	} else {
		json_array_foreach(gone, i, p) host_mark_dirty(h, json_string_value(p), 0);
	}
	json_decref(gone);
}

void sync_repair(struct host *h, const char *path)
{
	struct ientry e;
	char *local = host_local(h, path);
	struct stat st;
	if (idx_get(h->db, path, &e) != 1 || e.dir || !e.local || lstat(local, &st) != 0 ||
	    !stat_matches(&e, &st)) {
		free(local); /* changed since the scrub looked: an edit is not ours to undo */
		return;
	}
	free(local);
	bool gone = false;
	json_t *m = fetch_manifest(h, h->c.curl, path, e.version, &gone);
	if (m && download_to(h, path, m, &st))
		log_info("scrub: %s repaired (version %lld fetched again)", path,
		         (long long)e.version);
	else if (!gone)
		log_warn("scrub: cannot fetch %s again yet; the next scrub retries", path);
	json_decref(m);
}

int64_t sync_with_tree(struct host *h)
{
	json_t *tree = NULL;
	long st = hub_call(h, "GET", "/tree", NULL, NULL, &tree);
	int64_t seq = -1;
	if (st != 200 || !json_get_int(tree, "seq", &seq)) {
		json_decref(tree);
		return -1;
	}
	atomic_store(&h->state, 1);
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(tree, "folders"), i, f)
	{
		json_t *o = json_pack("{s:O}", "path", f);
		char *p = net_path(o, "path");
		json_decref(o);
		if (p)
			apply_mkdir(h, p);
		free(p);
	}
	/* Remote files: fetch what is new or newer; fix what a policy change
	 * moved between pinned, on-demand and excluded. Files waiting for room
	 * are looked at afresh. */
	pthread_mutex_lock(&h->mu);
	json_object_clear(h->no_space);
	pthread_mutex_unlock(&h->mu);
	idx_kv_set(h->db, "no_space", 0);
	json_t *seen = json_object();
	json_array_foreach(json_object_get(tree, "files"), i, f)
	{
		char *p = net_path(f, "path");
		int64_t vid = 0, version = 0, size = 0;
		const char *hash = json_get_str(f, "hash");
		if (!p || !hash_hex_valid(hash) || !json_get_int(f, "version_id", &vid) ||
		    !json_get_int(f, "version", &version) || atomic_load(&h->stop)) {
			free(p);
			continue;
		}
		json_get_int(f, "size", &size);
		json_object_set_new(seen, p, json_true());
		enum policy pol = host_policy(h, p);
		struct ientry e;
		int found = idx_get(h->db, p, &e) == 1;
		if (pol == POL_EXCLUDE) {
			if (found)
				remove_local_file(h, p);
		} else if (found && e.version_id == vid) {
			if (pol == POL_ON_DEMAND && e.local)
				drop_local_copy(h, p, &e);
			else if (pol == POL_PINNED && !e.local) {
				idx_del(h->db, p);
				apply_version(h, p, vid, version, hash, size);
			}
		} else {
			apply_version(h, p, vid, version, hash, size);
		}
		free(p);
	}
	/* Indexed files the workspace no longer has: deleted while we were away. */
	json_t *mine = idx_list(h->db, "/", true), *p;
	json_array_foreach(mine, i, p)
	{
		struct ientry e;
		const char *sp = json_string_value(p);
		if (!json_object_get(seen, sp) && idx_get(h->db, sp, &e) == 1 && e.version_id > 0)
			remove_local_file(h, sp);
	}
	json_decref(mine);
	json_decref(seen);
	json_decref(tree);
	return seq;
}
