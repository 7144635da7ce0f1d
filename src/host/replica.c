/* replica: copies the hub's replicate job asks this host to keep.
 *
 * When a workspace's chunks have fewer copies than min_replicas (a host gone
 * past its grace period), the hub names hosts to hold one more copy each; the
 * heartbeat's answer carries the list. This thread fetches those chunks (from
 * a local file, the cache, another host or the hub; each verified) into the
 * cache, pins them there so the size cap does not evict them, and reports
 * them held. When the hub says a copy is no longer needed, the pin goes (the
 * chunk becomes ordinary cache) and the hub hears it was dropped. Fetches are
 * paced to REPLICA_RATE so replication does not starve syncing.
 *
 * It also owns what happens when any reader (scrub, the content server, a
 * fetch for sync or replication) finds a cached copy corrupt: host_cache_read
 * sets the object aside and reports it to the hub exactly once; a copy the
 * hub assigned stays pinned here and the hub's next heartbeat answer asks for
 * it again (from the other holders), which this thread fetches. */
#include "host.h"
#include "serve_upload.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/ratelimit.h"
#include "../core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPLICA_RATE  (20.0 * 1024 * 1024) /* bytes/s fetched for replication */
#define IDLE_POLL_MS  1000                 /* nothing assigned: look again after */
#define STOP_CHECK_MS 100                  /* … looking at h->stop this often meanwhile */

/* A reader found hash corrupt in the cache. Of all the readers that may have
 * found it at once, the one whose quarantine moved it reports it; the pin (a
 * copy the hub assigned) stays, so the copy is fetched back when asked. */
static void cache_corrupt(struct host *h, struct db *db, const char *hash)
{
	int rc = store_quarantine_corrupt(h->cache, hash);
	if (rc == -EIO) /* moved; only its directory's fsync failed */
		rc = 0;
	if (rc < 0 && rc != -ENOENT) /* cannot set it aside: at least never read it again */
		rc = store_remove(h->cache, hash);
	if (rc != 0)
		return; /* good again, or another reader already reported it */
	db_run(db, "DELETE FROM cache WHERE hash = ?", hash);
	bool pinned = idx_cache_pinned(db, hash);
	log_warn("cache: chunk %.12s is corrupt; set aside in the cache's quarantine, reported "
	         "to the hub%s",
	         hash, pinned ? ", to be fetched again" : "");
	host_report_corrupt(h, hash);
}

int64_t host_cache_read(struct host *h, struct db *db, const char *hash, uint8_t *buf, size_t cap)
{
	int64_t n = store_read(h->cache, hash, buf, cap);
	if (n == -EBADMSG)
		cache_corrupt(h, db, hash);
	return n;
}

/* Take up to max entries from obj (under h->mu). */
static json_t *take(struct host *h, json_t *obj, size_t max)
{
	json_t *out = json_object();
	pthread_mutex_lock(&h->mu);
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(obj, tmp, k, v)
	{
		if (json_object_size(out) >= max)
			break;
		json_object_set(out, k, v);
		json_object_del(obj, k);
	}
	pthread_mutex_unlock(&h->mu);
	return out;
}

#define SWEEP_BATCH    10000 /* hashes in one question to the hub */
#define SWEEP_RETRY_MS 60000 /* the hub could not be asked: again after */

/* POST rel {key: batch}: the answer's list under out_key (new), or NULL if
 * the hub could not be asked. */
static json_t *ask_hub(struct host *h, CURL *curl, const char *rel, const char *key, json_t *batch,
                       const char *out_key)
{
	char *url = client_ws_url(&h->c, rel, NULL);
	json_t *body = json_pack("{s:O}", key, batch), *out = NULL;
	char err[256];
	long code = client_request(&h->c, curl, "POST", url, body, &out, err);
	json_decref(body);
	free(url);
	json_t *list = json_object_get(out, out_key);
	/* (an older hub answers a check without "collected": nothing to drop) */
	list = code != 200 ? NULL : json_is_array(list) ? json_incref(list) : json_array();
	json_decref(out);
	return list;
}

/* The hashes a query yields, in batches of SWEEP_BATCH: an array of arrays. */
static json_t *hashes_of(struct db_stmt *st)
{
	json_t *all = json_array(), *batch = NULL;
	while (st && db_step(st) == DB_ROW) {
		if (!batch || json_array_size(batch) == SWEEP_BATCH) {
			batch = json_array();
			json_array_append_new(all, batch);
		}
		json_array_append_new(batch, json_string(db_col_text(st, 0)));
	}
	db_finalize(st);
	return all;
}

/* The hub's GC deleted chunks: cached ones go from here too. An ordinary
 * cached chunk goes when the hub's answer to "which of these are missing"
 * lists it. A pinned one (a copy the replicate job assigned, or an upload's
 * pin past its lease) is the workspace's — in 'hosts' mode the hub's store
 * may lack it though it is live, so "missing" proves nothing — and goes only
 * when the hub says the workspace let go of it for good (hosts/self/replicas
 * check: no version, grant, upload or live copy record names it): the
 * heartbeat's drop list says so while GC waits for the hosts, this after it
 * collected the chunk, for a host that was offline meanwhile. An upload's
 * pin younger than UPLOAD_PIN_MAX_MS is never asked about: a commit may name
 * it yet. False if the hub could not be asked (the sweep is tried again). */
static bool cache_sweep(struct host *h, CURL *curl)
{
	struct db *db = db_pool_acquire(h->idx);
	json_t *loose = hashes_of(db_query(
	           db, "SELECT hash FROM cache WHERE hash NOT IN (SELECT hash FROM cache_pins)")),
	       *pinned = hashes_of(db_query(db,
	                                    "SELECT hash FROM cache_pins WHERE hash NOT IN (SELECT "
	                                    "hash FROM upload_pins WHERE at >= ?)",
	                                    now_ms() - UPLOAD_PIN_MAX_MS));
	int64_t dropped = 0;
	bool asked = true;
	for (int pass = 0; pass < 2; pass++) {
		json_t *batches = pass ? pinned : loose, *batch;
		size_t b;
		json_array_foreach(batches, b, batch)
		{
			json_t *gone = pass ? ask_hub(h, curl, "/hosts/self/replicas", "check",
			                              batch, "collected")
			                    : ask_hub(h, curl, "/chunks/missing", "hashes", batch,
			                              "missing"),
			       *m;
			asked = asked && gone;
			size_t i;
			json_array_foreach(gone, i, m)
			{
				const char *hash = json_string_value(m);
				/* pinned meanwhile (a fetch, an upload): not what was asked */
				if (!hash_hex_valid(hash) || idx_cache_pinned(db, hash) != pass)
					continue;
				if (pass &&
				    db_run(db, "DELETE FROM upload_pins WHERE hash = ? AND at < ?",
				           hash, now_ms() - UPLOAD_PIN_MAX_MS) != DB_DONE)
					continue;
				int64_t young = 0;
				if (db_int64(db, &young, "SELECT 1 FROM upload_pins WHERE hash = ?",
				             hash) != DB_DONE)
					continue; /* an upload pinned it since */
				idx_cache_drop(db, h->cache, hash);
				dropped++;
			}
			json_decref(gone);
		}
	}
	json_decref(loose);
	json_decref(pinned);
	host_cache_trim(h, db);
	db_pool_release(h->idx, db);
	if (dropped)
		log_info("cache: dropped %lld chunk%s the hub collected", (long long)dropped,
		         dropped == 1 ? "" : "s");
	return asked;
}

/* A one-chunk manifest for fetch_chunk from an assignment {size, hosts, urls,
 * sources, token}: the other hosts holding it (directly, then through their
 * relay URLs: sources; from an older hub only the direct urls) before the hub. */
static json_t *replica_manifest(const char *hash, int64_t size, json_t *a)
{
	json_t *hosts = json_object_get(a, "hosts"), *urls = json_object_get(a, "urls");
	hosts = json_is_array(hosts) ? json_incref(hosts) : json_array();
	urls = json_is_object(urls) ? json_incref(urls) : json_object();
	json_t *m = json_pack("{s:[{s:s, s:I, s:o}], s:o}", "chunks", "hash", hash, "size",
	                      (json_int_t)size, "hosts", hosts, "hosts", urls);
	if (json_object_size(json_object_get(a, "sources")))
		json_object_set(m, "sources", json_object_get(a, "sources"));
	if (json_get_str(a, "token"))
		json_object_set(m, "chunk_token", json_object_get(a, "token"));
	return m;
}

void *replica_main(void *arg)
{
	struct host *h = arg;
	CURL *curl = client_curl(&h->c);
	uint8_t *buf = xmalloc(CHUNK_MAX_LIMIT);
	struct bucket pace = {0};
	/* Swept once at start too: GC may have collected chunks while we were
	 * offline, past its wait for us to drop them. */
	int64_t sweep_at = mono_ms();
	while (!atomic_load(&h->stop)) {
		if (atomic_exchange(&h->gc_seen, false))
			sweep_at = mono_ms();
		if (sweep_at && mono_ms() >= sweep_at)
			sweep_at = cache_sweep(h, curl) ? 0 : mono_ms() + SWEEP_RETRY_MS;
		json_t *fetch = take(h, h->assign_fetch, 64),
		       *release = take(h, h->assign_release, 512);
		if (!json_object_size(fetch) && !json_object_size(release)) {
			json_decref(fetch);
			json_decref(release);
			for (int i = 0; i < IDLE_POLL_MS / STOP_CHECK_MS && !atomic_load(&h->stop);
			     i++)
				usleep(STOP_CHECK_MS * 1000);
			continue;
		}
		struct db *db = db_pool_acquire(h->idx);
		json_t *have = json_array(), *dropped = json_array();
		const char *hash;
		json_t *v;
		json_object_foreach(fetch, hash, v)
		{
			if (atomic_load(&h->stop))
				break;
			/* {size, hosts, urls, token}; a bare size from an older hub */
			int64_t size =
			    json_integer_value(json_is_object(v) ? json_object_get(v, "size") : v);
			if (size <= 0 || size > CHUNK_MAX_LIMIT)
				continue;
			if (idx_cache_pinned(db, hash) && store_size(h->cache, hash) == size) {
				/* held already: an answer from before our report came
				 * in asked again (a corrupt copy is out of the cache) */
				json_array_append_new(have, json_pack("{s:s}", "hash", hash));
				continue;
			}
			int64_t wait = bucket_wait_ms(&pace, REPLICA_RATE, REPLICA_RATE,
			                              (double)size, mono_ms());
			if (wait > 0)
				usleep((useconds_t)(wait * 1000));
			bucket_take(&pace, REPLICA_RATE, REPLICA_RATE, (double)size, mono_ms());
			json_t *m = replica_manifest(hash, size, v);
			idx_cache_pin(db, hash,
			              true); /* before: the trim in fetch_chunk keeps it */
			if (fetch_chunk(h, db, curl, m, 0, buf, CHUNK_MAX_LIMIT, true) == size &&
			    store_size(h->cache, hash) == size) {
				json_array_append_new(have, json_pack("{s:s}", "hash", hash));
			} else {
				idx_cache_pin(db, hash, false);
				log_warn(
				    "replica: cannot fetch chunk %.12s now; the hub asks again",
				    hash);
			}
			json_decref(m);
		}
		json_object_foreach(release, hash, v)
		{
			idx_cache_pin(db, hash, false);
			if (json_is_string(v)) /* "drop": the hub's GC collects it */
				idx_cache_drop(db, h->cache, hash);
			json_array_append_new(dropped, json_pack("{s:s}", "hash", hash));
		}
		host_cache_trim(h, db);
		db_pool_release(h->idx, db);
		if (json_array_size(have) || json_array_size(dropped))
			log_info(
			    "replica: keeping %zu more chunk%s for the workspace, released %zu",
			    json_array_size(have), json_array_size(have) == 1 ? "" : "s",
			    json_array_size(dropped));
		host_report_replicas(h, have, true);
		host_report_replicas(h, dropped, false);
		json_decref(have);
		json_decref(dropped);
		json_decref(fetch);
		json_decref(release);
	}
	free(buf);
	curl_easy_cleanup(curl);
	return NULL;
}
