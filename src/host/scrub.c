/* scrub: re-hash what this host keeps, at a bounded rate, on its own thread.
 *
 * Every pinned file whose stat still matches the index is read again and its
 * SHA-256 compared with the version's. A mismatch with an unchanged stat is
 * silent corruption (a bad disk, a stray write), not an edit: a copy goes to
 * .roost/quarantine for inspection and the sync thread fetches the recorded
 * version back over the file (sync_repair). Cached chunks are re-verified;
 * a corrupt one is set aside (host_cache_read). The hub hears of it (POST
 * hosts/self/scrub: audit, replica state; replicas: corrupt). Runs every
 * SCRUB_EVERY_MS and once per request of the hub, which comes on the feed
 * (scrub.requested) and in the heartbeat's answer (host_scrub_request; the
 * sync and heartbeat threads call it). The file is copied, not moved, to
 * quarantine: a move would look like a delete to the watcher. */
#include "host.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/ratelimit.h"
#include "../core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCRUB_EVERY_MS (7 * 86400 * 1000ll)
#define SCRUB_RATE     (50.0 * 1024 * 1024) /* bytes/s read */
#define IDLE_POLL_MS   1000                 /* is a scrub due, or asked for? */
#define STOP_CHECK_MS  100                  /* … looking at h->stop this often meanwhile */

struct pacer {
	struct bucket b;
	double rate;
};

static void pace(struct pacer *p, size_t n)
{
	int64_t wait = bucket_wait_ms(&p->b, p->rate, p->rate, (double)n, mono_ms());
	if (wait > 0)
		usleep((useconds_t)(wait * 1000));
	bucket_take(&p->b, p->rate, p->rate, (double)n, mono_ms());
}

/* Hash fd at the pacer's rate. 0 or -errno. */
static int hash_fd(struct host *h, int fd, struct pacer *p, char out[HASH_HEX_LEN + 1])
{
	struct hasher *hs = hasher_new();
	uint8_t *buf = xmalloc(1 << 20);
	ssize_t n;
	while ((n = read(fd, buf, 1 << 20)) > 0 && !atomic_load(&h->stop)) {
		hasher_update(hs, buf, (size_t)n);
		pace(p, (size_t)n);
	}
	int rc = n < 0 ? -errno : atomic_load(&h->stop) ? -EINTR : 0;
	hasher_final_hex(hs, out);
	hasher_free(hs);
	free(buf);
	return rc;
}

/* A copy of the damaged file in .roost/quarantine, for whoever investigates. */
static void quarantine_copy(struct host *h, const char *path, int fd)
{
	char *dir = xasprintf("%s/quarantine", h->state_dir);
	mkdir_p(dir, 0700);
	const char *base = strrchr(path, '/') + 1;
	char *to = xasprintf("%s/%s.%lld", dir, base, (long long)now_ms());
	int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	uint8_t *buf = xmalloc(1 << 20);
	ssize_t n;
	lseek(fd, 0, SEEK_SET);
	while (out >= 0 && (n = read(fd, buf, 1 << 20)) > 0)
		if (write_all(out, buf, (size_t)n) != 0)
			break;
	if (out >= 0) {
		fsync(out);
		close(out);
	}
	log_warn("scrub: %s does not match its recorded hash though it was not edited; a copy "
	         "is in %s and the recorded version is being fetched again",
	         path, to);
	free(buf);
	free(to);
	free(dir);
}

/* A verified file's chunks, as a replica report's {hash} entries. */
static void verified_chunks(struct db *db, const char *path, json_t *out)
{
	struct db_stmt *st = db_query(db, "SELECT DISTINCT hash FROM chunks WHERE path = ?", path);
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(out, json_pack("{s:s}", "hash", db_col_text(st, 0)));
	db_finalize(st);
}

/* verified: the chunks of files that hashed right, for the hub (each copy's
 * replica row is re-confirmed 'ok', which the hub's scrub result counts). */
static void scrub_files(struct host *h, struct db *db, struct pacer *p, json_t *report,
                        json_t *verified)
{
	struct db_stmt *st = db_query(db, "SELECT path FROM files WHERE local = 1 AND dir = 0");
	json_t *paths = json_array();
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(paths, json_string(db_col_text(st, 0)));
	db_finalize(st);
	int64_t files = 0, bytes = 0;
	json_t *corrupt = json_array();
	size_t i;
	json_t *jp;
	json_array_foreach(paths, i, jp)
	{
		if (atomic_load(&h->stop))
			break;
		const char *path = json_string_value(jp);
		struct ientry e;
		if (idx_get(db, path, &e) != 1 || host_policy(h, path) != POL_PINNED)
			continue;
		int fd = open_beneath(h, path, O_RDONLY, 0);
		struct stat before, after;
		if (fd < 0 || fstat(fd, &before) != 0 || !stat_matches(&e, &before)) {
			if (fd >= 0)
				close(fd);
			continue; /* edited (the watcher has it), or gone */
		}
		char got[HASH_HEX_LEN + 1];
		int rc = hash_fd(h, fd, p, got);
		files++;
		bytes += before.st_size;
		/* Still the same file, unchanged while we read it? */
		if (rc == 0 && fstat(fd, &after) == 0 && stat_matches(&e, &after) &&
		    strcmp(got, e.hash) != 0) {
			quarantine_copy(h, path, fd);
			json_array_append_new(
			    corrupt, json_pack("{s:s, s:s}", "path", path, "hash", e.hash));
			pthread_mutex_lock(&h->mu);
			json_array_append_new(h->repairs, json_string(path));
			pthread_cond_broadcast(&h->cv);
			pthread_mutex_unlock(&h->mu);
		} else if (rc == 0 && strcmp(got, e.hash) == 0) {
			verified_chunks(db, path, verified);
		}
		close(fd);
	}
	json_decref(paths);
	json_object_set_new(report, "files_checked", json_integer(files));
	json_object_set_new(report, "bytes_checked", json_integer(bytes));
	json_object_set_new(report, "corrupt", corrupt);
}

/* Cached chunks re-verified: a pinned one (a copy the hub counts) is
 * reported held again; a corrupt one is set aside and reported by
 * host_cache_read (so it stops counting at once, and a copy the hub assigned
 * is fetched back when the hub asks). One whose object is gone is dropped,
 * or for a pinned copy reported like a corrupt one: it is still owed. */
static void scrub_cache(struct host *h, struct db *db, struct pacer *p, json_t *report,
                        json_t *verified, json_t *dropped)
{
	struct db_stmt *st = db_query(db, "SELECT hash, size FROM cache");
	json_t *hashes = json_array();
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(hashes, json_string(db_col_text(st, 0)));
	db_finalize(st);
	int64_t bad = 0;
	uint8_t *buf = xmalloc(CHUNK_MAX_LIMIT);
	size_t i;
	json_t *jh;
	json_array_foreach(hashes, i, jh)
	{
		if (atomic_load(&h->stop))
			break;
		const char *hash = json_string_value(jh);
		bool pinned = idx_cache_pinned(db, hash);
		int64_t n = host_cache_read(h, db, hash, buf, CHUNK_MAX_LIMIT);
		if (n >= 0) {
			pace(p, (size_t)n);
			if (pinned)
				json_array_append_new(verified, json_pack("{s:s}", "hash", hash));
		} else if (n == -EBADMSG) {
			bad++;
		} else if (n == -ENOENT) {
			log_warn("scrub: cached chunk %.12s is missing", hash);
			db_run(db, "DELETE FROM cache WHERE hash = ?", hash);
			if (pinned)
				host_report_corrupt(h, hash);
			else
				json_array_append_new(dropped, json_pack("{s:s}", "hash", hash));
			bad++;
		}
	}
	free(buf);
	json_decref(hashes);
	json_object_set_new(report, "cache_chunks_dropped", json_integer(bad));
}

static void scrub_once(struct host *h, CURL *curl)
{
	struct pacer p = {.rate = SCRUB_RATE};
	struct db *db = db_pool_acquire(h->idx);
	json_t *report = json_object();
	int64_t started = mono_ms();
	json_t *verified = json_array(), *dropped = json_array();
	scrub_files(h, db, &p, report, verified);
	scrub_cache(h, db, &p, report, verified, dropped);
	/* A chunk both in a good file and a bad cache object is reported
	 * corrupt (above) then held: the hub applies them in that order. */
	host_report_replicas(h, dropped, false);
	host_report_replicas(h, verified, true);
	json_object_set_new(report, "chunks_verified",
	                    json_integer((json_int_t)json_array_size(verified)));
	json_decref(verified);
	json_decref(dropped);
	idx_kv_set(db, "scrub_at", now_ms());
	db_pool_release(h->idx, db);
	json_object_set_new(report, "duration_ms", json_integer(mono_ms() - started));
	size_t bad = json_array_size(json_object_get(report, "corrupt"));
	log_info("scrub: %lld files (%lld bytes) checked, %zu corrupt, %lld cached chunks dropped",
	         (long long)json_integer_value(json_object_get(report, "files_checked")),
	         (long long)json_integer_value(json_object_get(report, "bytes_checked")), bad,
	         (long long)json_integer_value(json_object_get(report, "cache_chunks_dropped")));
	char *url = client_ws_url(&h->c, "/hosts/self/scrub", NULL);
	json_t *out = NULL;
	char err[256];
	client_request(&h->c, curl, "POST", url, report, &out, err);
	json_decref(out);
	json_decref(report);
	free(url);
}

void host_scrub_request(struct host *h, int64_t asked, bool live)
{
	/* The feed (sync thread) and the heartbeat's answer race to tell us. */
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&mu);
	struct db *db = db_pool_acquire(h->idx);
	int64_t seen = idx_kv_get(db, "scrub_asked", -1);
	if (asked > seen)
		idx_kv_set(db, "scrub_asked", asked);
	db_pool_release(h->idx, db);
	pthread_mutex_unlock(&mu);
	/* A hub too old to say when asks on the feed only as it asks; the
	 * first heartbeat only tells what was asked before this host was. */
	if ((live && (asked <= 0 || asked > seen)) || (!live && seen >= 0 && asked > seen))
		atomic_store(&h->scrub_now, true);
}

void *scrub_main(void *arg)
{
	struct host *h = arg;
	CURL *curl = client_curl(&h->c);
	struct db *db = db_pool_acquire(h->idx);
	int64_t last = idx_kv_get(db, "scrub_at", 0);
	if (!last) /* not at first start: a week after joining */
		idx_kv_set(db, "scrub_at", last = now_ms());
	db_pool_release(h->idx, db);
	while (!atomic_load(&h->stop)) {
		if (atomic_exchange(&h->scrub_now, false) || now_ms() - last >= SCRUB_EVERY_MS) {
			scrub_once(h, curl);
			last = now_ms();
		}
		for (int i = 0; i < IDLE_POLL_MS / STOP_CHECK_MS && !atomic_load(&h->stop) &&
		                !atomic_load(&h->scrub_now);
		     i++)
			usleep(STOP_CHECK_MS * 1000);
	}
	curl_easy_cleanup(curl);
	return NULL;
}
