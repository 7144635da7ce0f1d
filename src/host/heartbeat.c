/* heartbeat: what this host tells about itself — every heartbeat_s seconds
 * a heartbeat to the hub (status, space, queue; the replicas gained, dropped
 * or found corrupt since the last one go just before it; its answer carries
 * the replicate job's assignments) and DIR/.roost/status.json for `roost host status`; and the
 * free-space check a download must pass, whose refusals both report. The
 * heartbeat thread runs host_heartbeat_main; host_room_for runs on the sync
 * thread; host_write_status on both (a mutex of its own orders the writes). */
#include "host.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* The latest report of a chunk wins: one dropped after it was reported held
 * (or held again after dropped) leaves the other set, so the hub, which
 * applies have before dropped, never sees both. */
void host_report_replicas(struct host *h, json_t *chunks, bool have)
{
	size_t i;
	json_t *c;
	pthread_mutex_lock(&h->mu);
	json_array_foreach(chunks, i, c)
	{
		const char *hash = json_get_str(c, "hash");
		if (!hash)
			continue;
		json_object_set_new(have ? h->replicas_have : h->replicas_dropped, hash,
		                    json_true());
		json_object_del(have ? h->replicas_dropped : h->replicas_have, hash);
	}
	pthread_mutex_unlock(&h->mu);
}

#define RECONCILE_SLICE 4500 /* hashes a request: the hub takes 10000 */

static bool held_here(struct db *db, const char *hash)
{
	int64_t one = 0;
	return db_int64(db, &one,
	                "SELECT 1 WHERE EXISTS (SELECT 1 FROM chunks c JOIN files f ON f.path = "
	                "c.path WHERE c.hash = ?1 AND f.local = 1) OR EXISTS (SELECT 1 FROM cache "
	                "WHERE hash = ?1)",
	                hash) == DB_ROW;
}

/* POST one slice of the reconcile (takes body); NULL if it was not delivered. */
static json_t *reconcile_post(struct host *h, json_t *body)
{
	char *url = client_ws_url(&h->c, "/hosts/self/replicas", NULL);
	char err[256];
	json_t *out = NULL;
	long st = client_request(&h->c, h->c.curl, "POST", url, body, &out, err);
	json_decref(body);
	free(url);
	if (st != 200) {
		log_warn("replica reconcile: %s; the heartbeat reports the rest",
		         st ? "the hub refused it" : err);
		json_decref(out);
		return NULL;
	}
	return out ? out : json_object();
}

/* Undelivered: queued for the heartbeat (a "have" a later report replaces). */
static void reconcile_queue(struct host *h, json_t *hashes, bool have)
{
	size_t i;
	json_t *v;
	pthread_mutex_lock(&h->mu);
	json_array_foreach(hashes, i, v)
	{
		const char *k = json_string_value(v);
		if (!json_object_get(h->replicas_have, k) &&
		    !json_object_get(h->replicas_dropped, k))
			json_object_set_new(have ? h->replicas_have : h->replicas_dropped, k,
			                    json_true());
	}
	pthread_mutex_unlock(&h->mu);
}

void host_reconcile_replicas(struct host *h)
{
	int64_t have_n = 0, dropped_n = 0;
	bool sent = true;
	json_t *slice = json_array();
	struct db_stmt *q = db_query(h->db, "SELECT DISTINCT c.hash FROM chunks c JOIN files f ON "
	                                    "f.path = c.path WHERE f.local = 1 UNION SELECT hash "
	                                    "FROM cache");
	for (int rc = q ? db_step(q) : DB_DONE;; rc = db_step(q)) {
		if (rc == DB_ROW && hash_hex_valid(db_col_text(q, 0)))
			json_array_append_new(slice, json_string(db_col_text(q, 0)));
		if (json_array_size(slice) < RECONCILE_SLICE && rc == DB_ROW)
			continue;
		if (sent && json_array_size(slice)) {
			json_t *out = reconcile_post(h, json_pack("{s:O}", "have", slice));
			sent = out != NULL;
			json_decref(out);
		}
		if (sent)
			have_n += (int64_t)json_array_size(slice);
		else
			reconcile_queue(h, slice, true);
		json_array_clear(slice);
		if (rc != DB_ROW)
			break;
	}
	db_finalize(q);
	/* What the hub counts here that is gone: dropped, sent with the next page. */
	char after[HASH_HEX_LEN + 1] = "";
	json_t *gone = json_array();
	while (sent) {
		json_t *body = json_pack("{s:s, s:O}", "list_after", after, "dropped", gone);
		json_t *out = reconcile_post(h, body), *listed = json_object_get(out, "listed"), *v;
		sent = out != NULL;
		if (sent)
			dropped_n += (int64_t)json_array_size(gone);
		json_array_clear(gone);
		size_t i;
		json_array_foreach(listed, i, v)
		{
			const char *hash = json_string_value(v);
			if (!hash_hex_valid(hash))
				continue;
			if (!held_here(h->db, hash))
				json_array_append(gone, v);
			snprintf(after, sizeof after, "%s", hash);
		}
		bool more = json_array_size(listed) > 0;
		json_decref(out);
		if (!more && !json_array_size(gone))
			break;
	}
	reconcile_queue(h, gone, false);
	json_decref(gone);
	json_decref(slice);
	if (have_n || dropped_n)
		log_info("told the hub of %lld chunk%s held here, %lld gone", (long long)have_n,
		         have_n == 1 ? "" : "s", (long long)dropped_n);
}

void host_cache_trim(struct host *h, struct db *db)
{
	json_t *evicted = json_array(), *gone = json_array(), *c;
	atomic_store(&h->cache_bytes, idx_cache_trim(db, h->cache, h->cfg.cache_max, evicted));
	size_t i;
	json_array_foreach(evicted, i, c)
	{
		if (!held_here(db, json_get_str(c, "hash"))) /* (its cache row is gone) */
			json_array_append(gone, c);
	}
	host_report_replicas(h, gone, false);
	json_decref(gone);
	json_decref(evicted);
}

void host_report_committed(struct host *h, json_t *chunks)
{
	size_t i;
	json_t *c;
	pthread_mutex_lock(&h->mu);
	json_array_foreach(chunks, i, c)
	    json_object_del(h->replicas_dropped, json_get_str(c, "hash"));
	pthread_mutex_unlock(&h->mu);
}

void host_report_corrupt(struct host *h, const char *hash)
{
	pthread_mutex_lock(&h->mu);
	json_object_del(h->replicas_have, hash);
	json_object_set_new(h->replicas_corrupt, hash, json_true());
	pthread_mutex_unlock(&h->mu);
}

/* ---- free space ----
 *
 * A file's size is what the workspace says, not what was uploaded: one chunk
 * listed many times makes a huge file from a small upload. A host writes a
 * file it fetches only if the disk keeps its reserve after; else the file
 * waits, reported, and a resync tries again later. */

#define NO_SPACE_RETRY_MS (60 * 1000)

bool host_room_for(struct host *h, const char *path, int64_t size)
{
	struct statvfs vfs;
	if (statvfs(h->dir, &vfs) != 0)
		return true; /* cannot tell: the write itself will fail cleanly */
	int64_t total = (int64_t)vfs.f_blocks * (int64_t)vfs.f_frsize;
	int64_t avail = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
	int64_t reserve = h->cfg.reserve > 0 ? h->cfg.reserve : total / 20;
	if (h->cfg.reserve <= 0 && reserve < (1ll << 30))
		reserve = 1ll << 30;
	if (size <= avail - reserve)
		return true;
	pthread_mutex_lock(&h->mu);
	bool known = json_object_get(h->no_space, path) != NULL;
	if (json_object_size(h->no_space) < 10000 || known)
		json_object_set_new(h->no_space, path, json_integer(size));
	pthread_mutex_unlock(&h->mu);
	if (!known)
		log_warn("no space for %s: %lld bytes, %lld free, %lld kept in reserve; will retry",
		         path, (long long)size, (long long)avail, (long long)reserve);
	atomic_store(&h->no_space_since, mono_ms());
	return false;
}

void host_room_found(struct host *h, const char *path)
{
	pthread_mutex_lock(&h->mu);
	json_object_del(h->no_space, path);
	pthread_mutex_unlock(&h->mu);
}

void host_io_failed(struct host *h, const char *path, int err)
{
	pthread_mutex_lock(&h->mu);
	if (json_object_size(h->io_errors) < 10000 || json_object_get(h->io_errors, path))
		json_object_set_new(
		    h->io_errors, path,
		    json_pack("{s:s, s:I}", "error", strerror(err), "at", (json_int_t)now_ms()));
	pthread_mutex_unlock(&h->mu);
}

void host_io_ok(struct host *h, const char *path)
{
	pthread_mutex_lock(&h->mu);
	json_object_del(h->io_errors, path);
	pthread_mutex_unlock(&h->mu);
}

/* Files whose last write failed, and the latest error (under mu); with the
 * latest's path when paths (the status file, which only the host's own
 * user reads). */
static json_t *io_errors_summary(struct host *h, bool paths)
{
	const char *k, *last_path = NULL;
	json_t *v, *last = NULL;
	json_object_foreach(h->io_errors, k, v)
	{
		if (!last || json_integer_value(json_object_get(v, "at")) >
		                 json_integer_value(json_object_get(last, "at"))) {
			last = v;
			last_path = k;
		}
	}
	json_t *o = json_pack("{s:I}", "files", (json_int_t)json_object_size(h->io_errors));
	if (last) {
		json_object_set(o, "last_error", json_object_get(last, "error"));
		json_object_set(o, "last_at", json_object_get(last, "at"));
		if (paths)
			json_object_set_new(o, "last_path", json_string(last_path));
	}
	return o;
}

/* Files waiting for room, and the bytes they need (under mu). */
static json_t *no_space_summary(struct host *h)
{
	int64_t bytes = 0;
	const char *k;
	json_t *v;
	json_object_foreach(h->no_space, k, v) bytes += json_integer_value(v);
	return json_pack("{s:I, s:I}", "files", (json_int_t)json_object_size(h->no_space), "bytes",
	                 (json_int_t)bytes);
}

/* Waiting files are looked at again (a resync) once a while has passed. */
static void no_space_retry(struct host *h)
{
	int64_t since = atomic_load(&h->no_space_since);
	if (!since || mono_ms() - since < NO_SPACE_RETRY_MS)
		return;
	atomic_store(&h->no_space_since, 0);
	pthread_mutex_lock(&h->mu);
	if (json_object_size(h->no_space)) {
		h->resync = true;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
}

/* ---- status file and heartbeat ---- */

static const char *state_name(int s)
{
	static const char *names[] = {"starting", "scanning", "syncing", "idle"};
	return s >= 0 && s < 4 ? names[s] : "?";
}

void host_write_status(struct host *h, bool running)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	json_t *o = json_pack(
	    "{s:b, s:i, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:s*, s:I}", "running", running, "pid",
	    (int)getpid(), "host_id", (json_int_t)h->host_id, "label", h->label, "state",
	    atomic_load(&h->paused) ? "paused" : state_name(atomic_load(&h->state)), "queue",
	    (json_int_t)atomic_load(&h->queue), "last_sync", (json_int_t)atomic_load(&h->last_sync),
	    "seq", (json_int_t)atomic_load(&h->seq), "cache_bytes",
	    (json_int_t)atomic_load(&h->cache_bytes), "url", h->url, "updated_at",
	    (json_int_t)now_ms());
	json_object_set_new(o, "paused", json_boolean(atomic_load(&h->paused)));
	json_object_set_new(o, "chunks",
	                    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "from_local",
	                              (json_int_t)atomic_load(&h->from_local), "from_cache",
	                              (json_int_t)atomic_load(&h->from_cache), "from_peer",
	                              (json_int_t)atomic_load(&h->from_peer), "from_hub",
	                              (json_int_t)atomic_load(&h->from_hub), "served",
	                              (json_int_t)atomic_load(&h->served_chunks), "served_files",
	                              (json_int_t)atomic_load(&h->served_files)));
	pthread_mutex_lock(&h->mu);
	json_object_set_new(o, "no_space", no_space_summary(h));
	json_object_set_new(o, "no_space_paths", json_deep_copy(h->no_space));
	json_object_set_new(o, "io_errors", io_errors_summary(h, true));
	pthread_mutex_unlock(&h->mu);
	char *s = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	char *path = xasprintf("%s/status.json", h->state_dir);
	pthread_mutex_lock(&mu);
	(void)write_file_atomic(path, s, strlen(s), 0644); /* a status missed is rewritten soon */
	pthread_mutex_unlock(&mu);
	free(s);
	free(path);
}

/* What the hub's jobs ask of us in a heartbeat's answer: copies to fetch
 * (each with the other hosts holding it, their direct and relay URLs and a
 * chunk token) or release, unreferenced chunks to drop, a scrub (replica.c
 * and scrub.c do the work). */
static void take_requests(struct host *h, json_t *out)
{
	json_t *rep = json_object_get(out, "replicate"), *c;
	json_t *urls = json_object_get(rep, "hosts"), *srcs = json_object_get(rep, "sources");
	const char *tok = json_get_str(rep, "chunk_token");
	size_t i;
	pthread_mutex_lock(&h->mu);
	json_array_foreach(json_object_get(rep, "fetch"), i, c)
	{
		const char *hash = json_get_str(c, "hash");
		if (!hash_hex_valid(hash))
			continue;
		json_t *want =
		    json_pack("{s:O, s:O?, s:o, s:o, s:s?}", "size", json_object_get(c, "size"),
		              "hosts", json_object_get(c, "hosts"), "urls", json_object(),
		              "sources", json_object(), "token", tok);
		size_t k;
		json_t *id;
		json_array_foreach(json_object_get(c, "hosts"), k, id)
		{
			char key[24];
			snprintf(key, sizeof key, "%lld", (long long)json_integer_value(id));
			if (json_get_str(urls, key))
				json_object_set(json_object_get(want, "urls"), key,
				                json_object_get(urls, key));
			/* direct and relay URLs (an older hub: urls alone) */
			if (json_is_object(json_object_get(srcs, key)))
				json_object_set(json_object_get(want, "sources"), key,
				                json_object_get(srcs, key));
		}
		json_object_set_new(h->assign_fetch, hash, want);
	}
	json_array_foreach(json_object_get(rep, "release"), i, c)
	{
		if (hash_hex_valid(json_string_value(c)))
			json_object_set_new(h->assign_release, json_string_value(c), json_true());
	}
	/* Chunks the hub's GC collects: out of the cache, not only unpinned. */
	json_array_foreach(json_object_get(rep, "drop"), i, c)
	{
		if (hash_hex_valid(json_string_value(c)))
			json_object_set_new(h->assign_release, json_string_value(c),
			                    json_string("drop"));
	}
	pthread_mutex_unlock(&h->mu);
	/* A scrub the hub asked for (once: the feed may have told us first). */
	json_t *jasked = json_object_get(out, "scrub_requested_at");
	if (json_is_integer(jasked))
		host_scrub_request(h, json_integer_value(jasked), false);
}

/* Move up to max entries from the front of from to a new array. */
/* Up to max hashes taken out of the set into a new array. */
static json_t *take_hashes(json_t *set, size_t max)
{
	json_t *out = json_array(), *v;
	const char *k;
	void *tmp;
	json_object_foreach_safe(set, tmp, k, v)
	{
		if (json_array_size(out) == max)
			break;
		json_array_append_new(out, json_string(k));
		json_object_del(set, k);
	}
	return out;
}

/* Put the undelivered hashes of set back into into, unless a newer report
 * of the chunk (in other or other2) replaced them. */
static void keep_undelivered(json_t *set, json_t *into, json_t *other, json_t *other2)
{
	const char *k;
	json_t *v;
	json_object_foreach(set, k, v)
	{
		if (!json_object_get(other, k) && !(other2 && json_object_get(other2, k)))
			json_object_set(into, k, v);
	}
}

/* The replicas gained, dropped and found corrupt since the last beat, in
 * slices the hub accepts; what is not delivered waits for the next beat.
 * Sent before the heartbeat, so its answer is computed from them: else it
 * asks again for a copy just reported held, or misses one just lost. */
static void report_replicas(struct host *h, CURL *curl)
{
	const char *names[3] = {"corrupt", "have", "dropped"};
	const size_t max[3] = {1000, 4500, 4500}; /* 10000 a report at most */
	json_t **queued[3] = {&h->replicas_corrupt, &h->replicas_have, &h->replicas_dropped};
	json_t *unsent[3];
	pthread_mutex_lock(&h->mu);
	for (int l = 0; l < 3; l++) {
		unsent[l] = *queued[l];
		*queued[l] = json_object();
	}
	pthread_mutex_unlock(&h->mu);
	long st = 200;
	char err[256];
	while (st == 200 && (json_object_size(unsent[0]) || json_object_size(unsent[1]) ||
	                     json_object_size(unsent[2]))) {
		/* The hub applies corrupt before have: a copy fetched back after
		 * it was found corrupt ends up held. */
		json_t *body = json_object();
		for (int l = 0; l < 3; l++)
			json_object_set_new(body, names[l], take_hashes(unsent[l], max[l]));
		char *url = client_ws_url(&h->c, "/hosts/self/replicas", NULL);
		st = client_request(&h->c, curl, "POST", url, body, NULL, err);
		free(url);
		if (st != 200) { /* this slice waits with the rest */
			log_warn("replica report: %s", st ? "the hub refused it" : err);
			for (int l = 0; l < 3; l++) {
				size_t i;
				json_t *v;
				json_array_foreach(json_object_get(body, names[l]), i, v)
				    json_object_set_new(unsent[l], json_string_value(v),
				                        json_true());
			}
		}
		json_decref(body);
	}
	pthread_mutex_lock(&h->mu); /* not delivered: unless reported again since */
	keep_undelivered(unsent[0], h->replicas_corrupt, h->replicas_have, NULL);
	keep_undelivered(unsent[1], h->replicas_have, h->replicas_dropped, h->replicas_corrupt);
	keep_undelivered(unsent[2], h->replicas_dropped, h->replicas_have, NULL);
	pthread_mutex_unlock(&h->mu);
	for (int l = 0; l < 3; l++)
		json_decref(unsent[l]);
}

static void heartbeat(struct host *h, CURL *curl, const char *status)
{
	report_replicas(h, curl);
	struct statvfs vfs;
	int64_t cap = -1, fr = -1;
	if (statvfs(h->dir, &vfs) == 0) {
		cap = (int64_t)vfs.f_blocks * (int64_t)vfs.f_frsize;
		fr = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
	}
	json_t *pinned = json_array(), *p;
	size_t i;
	pthread_mutex_lock(&h->mu);
	bool root_set = false;
	json_array_foreach(h->policies, i, p)
	{
		const char *f = json_get_str(p, "folder"), *mode = json_get_str(p, "mode");
		if (f && strcmp(f, "/") == 0)
			root_set = true;
		if (mode && strcmp(mode, "pinned") == 0)
			json_array_append(pinned, json_object_get(p, "folder"));
	}
	if (!root_set) /* pinned unless a policy says otherwise */
		json_array_insert_new(pinned, 0, json_string("/"));
	json_t *no_space = no_space_summary(h), *io_errors = io_errors_summary(h, false);
	pthread_mutex_unlock(&h->mu);
	json_t *body = json_pack(
	    "{s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:o, s:I, s:I}", "status", status, "interval_ms",
	    (json_int_t)h->cfg.heartbeat_s * 1000, "capacity_bytes", (json_int_t)cap, "free_bytes",
	    (json_int_t)fr, "queue", (json_int_t)atomic_load(&h->queue), "last_sync",
	    (json_int_t)atomic_load(&h->last_sync), "version", ROOST_VERSION, "pinned", pinned,
	    "cache_bytes", (json_int_t)atomic_load(&h->cache_bytes), "seq",
	    (json_int_t)atomic_load(&h->seq));
	json_object_set_new(body, "no_space", no_space); /* counts only: paths stay here */
	json_object_set_new(body, "io_errors", io_errors);
	if (h->url)
		json_object_set_new(body, "url", json_string(h->url));
	pthread_mutex_lock(&h->mu);
	if (h->tunnel_url)
		json_object_set_new(body, "tunnel_url", json_string(h->tunnel_url));
	pthread_mutex_unlock(&h->mu);
	char *url = client_ws_url(&h->c, "/hosts/self/heartbeat", NULL);
	char err[256];
	json_t *out = NULL;
	long st = client_request(&h->c, curl, "POST", url, body, &out, err);
	free(url);
	json_decref(body);
	if (st == 410)
		host_workspace_deleted(h, out);
	else if (st != 200)
		log_warn("heartbeat: %s", st ? "the hub refused it" : err);
	take_requests(h, out);
	json_decref(out);
}

bool host_check_paused(struct host *h)
{
	char *f = xasprintf("%s/%s", h->state_dir, HOST_PAUSED_FILE);
	bool now = access(f, F_OK) == 0;
	free(f);
	if (atomic_exchange(&h->paused, now) != now) {
		log_info(now ? "paused: nothing is sent or applied until roost host resume"
		             : "resumed: syncing again");
		host_wake(h);
	}
	return now;
}

void *host_heartbeat_main(void *arg)
{
	struct host *h = arg;
	CURL *curl = client_curl(&h->c);
	pthread_mutex_lock(&h->mu);
	while (!atomic_load(&h->stop)) {
		pthread_mutex_unlock(&h->mu);
		host_check_paused(h);
		heartbeat(h, curl, "online");
		host_write_status(h, true);
		no_space_retry(h);
		pthread_mutex_lock(&h->mu);
		struct timespec ts = host_deadline((int64_t)h->cfg.heartbeat_s * 1000);
		while (!atomic_load(&h->stop) &&
		       pthread_cond_timedwait(&h->cv, &h->mu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&h->mu);
	heartbeat(h, curl, "stopping"); /* shown offline at once */
	curl_easy_cleanup(curl);
	return NULL;
}
