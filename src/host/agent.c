/* agent: roost host run — start-up, the sync loop, shutdown; and the state
 * every thread reads: the folder's identity, policies, the hub's keys,
 * upload grants. The threads it starts: the watcher (watch.c), the feed
 * reader (feed.c), the heartbeat (heartbeat.c), the scrubber, the replica
 * maker, the tunnel and the content server; the calling thread becomes the
 * sync thread (sync_loop) and a signal thread waits for SIGINT/SIGTERM.
 *
 * Start-up: a fresh index reconciles with the hub's whole tree; a known one
 * replays the feed from its last seq. Then the folder is rescanned against
 * the index (stat only: unchanged files are not read) and the loop runs until
 * SIGINT/SIGTERM: remote changes first, in seq order, then local moves, then
 * local paths whose settle delay has passed (queue.c). */
#include "host.h"
#include "ignore.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HUB_RETRY_S      1 /* the hub away at start or for a resync: try again after */
#define HUB_RETRY_SLOW_S 5 /* … and after HUB_RETRY_FAST tries, this */
#define HUB_RETRY_FAST   5

/* ---- small shared helpers ---- */

struct timespec host_deadline(int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

char *host_local(const struct host *h, const char *path)
{
	return strcmp(path, "/") == 0 ? xstrdup(h->dir) : xasprintf("%s%s", h->dir, path);
}

void host_wake(struct host *h)
{
	pthread_mutex_lock(&h->mu);
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

void host_grant_set(struct host *h, const char *path, const char *grant)
{
	pthread_mutex_lock(&h->mu);
	if (!h->grants)
		h->grants = json_object();
	if (grant)
		json_object_set_new(h->grants, path, json_string(grant));
	else
		json_object_del(h->grants, path);
	pthread_mutex_unlock(&h->mu);
}

char *host_grant_get(struct host *h, const char *path)
{
	pthread_mutex_lock(&h->mu);
	const char *g = json_string_value(json_object_get(h->grants, path));
	char *copy = g ? xstrdup(g) : NULL;
	pthread_mutex_unlock(&h->mu);
	return copy;
}

enum policy host_policy(struct host *h, const char *path)
{
	pthread_mutex_lock(&h->mu);
	enum policy best = policy_match(h->policies, path);
	pthread_mutex_unlock(&h->mu);
	return best;
}

int host_load_policies(struct host *h, CURL *curl)
{
	char *url = client_ws_url(&h->c, "/hosts/self/policies", NULL);
	json_t *out = NULL;
	char err[256];
	long st = client_request(&h->c, curl, "GET", url, NULL, &out, err);
	free(url);
	json_t *pol = json_object_get(out, "policies");
	if (st != 200 || !json_is_array(pol)) {
		json_decref(out);
		return -1;
	}
	pthread_mutex_lock(&h->mu);
	bool changed = !h->policies || !json_equal(h->policies, pol);
	json_decref(h->policies);
	h->policies = json_incref(pol);
	pthread_mutex_unlock(&h->mu);
	json_decref(out);
	return changed;
}

void host_apply_settings(struct host *h, json_t *settings)
{
	const char *storage = json_get_str(settings, "storage");
	if (!storage)
		return;
	bool hosts = strcmp(storage, "hosts") == 0;
	if (atomic_exchange(&h->storage_hosts, hosts) != hosts)
		log_info("the workspace keeps its bytes on %s", hosts ? "hosts: commits name "
		                                                        "this host's chunks"
		                                                      : "the hub");
}

void host_apply_chunking(struct host *h, json_t *chunking)
{
	int64_t v[3];
	if (!json_get_int(chunking, "min", &v[0]) || !json_get_int(chunking, "avg", &v[1]) ||
	    !json_get_int(chunking, "max", &v[2]) || v[0] < 0 || v[1] < 0 || v[2] < 0 ||
	    v[2] > UINT32_MAX)
		return;
	struct chunker_params p = {(uint32_t)v[0], (uint32_t)v[1], (uint32_t)v[2]};
	if (!chunker_params_valid(&p) || (p.min == h->c.chunking.min &&
	                                  p.avg == h->c.chunking.avg && p.max == h->c.chunking.max))
		return;
	h->c.chunking = p;
	log_info("the workspace's chunk sizes are now %u / %u / %u bytes (min / avg / max): new "
	         "uploads use them",
	         p.min, p.avg, p.max);
}

void host_workspace_deleted(struct host *h, json_t *answer)
{
	(void)answer;
	if (atomic_exchange(&h->ws_deleted, true))
		return;
	log_error("workspace %lld was deleted on the hub: this host stops syncing it (the files "
	          "in %s stay)",
	          (long long)h->c.ws_id, h->dir);
	atomic_store(&h->stop, true);
	host_wake(h);
}

int host_load_settings(struct host *h, CURL *curl)
{
	char *url = client_ws_url(&h->c, "", NULL);
	json_t *out = NULL;
	char err[256];
	long st = client_request(&h->c, curl, "GET", url, NULL, &out, err);
	free(url);
	if (st == 200) {
		host_apply_settings(h, out);
		json_t *ch = json_pack(
		    "{s:O?, s:O?, s:O?}", "min", json_object_get(out, "chunk_min"), "avg",
		    json_object_get(out, "chunk_avg"), "max", json_object_get(out, "chunk_max"));
		host_apply_chunking(h, ch);
		json_decref(ch);
	}
	if (st == 410)
		host_workspace_deleted(h, out);
	json_decref(out);
	return st == 200 ? 0 : -1;
}

/* ---- identity (DIR/.roost/host.json) ---- */

int host_load_identity(struct host *h, const char *dir)
{
	char *path = xasprintf("%s/%s/host.json", dir, HOST_STATE_DIR);
	json_error_t jerr;
	json_t *j = json_load_file(path, 0, &jerr);
	int64_t ws = 0;
	if (!j || !json_get_str(j, "hub") || !json_get_str(j, "token") ||
	    !json_get_int(j, "workspace_id", &ws) || !json_get_int(j, "host_id", &h->host_id)) {
		fprintf(stderr,
		        "roost host: %s is not a joined host folder (no %s); run 'roost host join "
		        "URL --dir %s --label NAME' first\n",
		        dir, path, dir);
		int rc = j ? -EINVAL : -ENOENT;
		json_decref(j);
		free(path);
		return rc;
	}
	free(path);
	h->label = xstrdup(json_get_str(j, "label") ? json_get_str(j, "label") : "host");
	char wsid[24];
	snprintf(wsid, sizeof wsid, "%lld", (long long)ws);
	memset(&h->c, 0, sizeof h->c);
	/* The hub may be down: the identity is enough to start, details come later. */
	h->c.hub = xstrdup(json_get_str(j, "hub"));
	h->c.token = xstrdup(json_get_str(j, "token"));
	h->c.email = xstrdup("");
	h->c.cacert = json_get_str(j, "cacert") ? xstrdup(json_get_str(j, "cacert")) : NULL;
	h->c.ws_id = ws;
	h->c.curl = client_curl(&h->c);
	h->c.chunking = chunker_defaults();
	json_t *ch = json_object_get(j, "chunking");
	int64_t v;
	if (json_get_int(ch, "min", &v))
		h->c.chunking.min = (uint32_t)v;
	if (json_get_int(ch, "avg", &v))
		h->c.chunking.avg = (uint32_t)v;
	if (json_get_int(ch, "max", &v))
		h->c.chunking.max = (uint32_t)v;
	json_decref(j);
	if (!chunker_params_valid(&h->c.chunking)) {
		fprintf(stderr, "roost host: bad chunking settings in host.json\n");
		return -EINVAL;
	}
	return 0;
}

/* ---- signals ---- */

static void *signal_main(void *arg)
{
	struct host *h = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1); /* our own wake-up at shutdown */
	int sig = 0;
	sigwait(&set, &sig);
	if (sig != SIGUSR1)
		log_info("host: %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	atomic_store(&h->stop, true);
	host_wake(h);
	return NULL;
}

/* ---- the sync loop ---- */

static void sync_loop(struct host *h)
{
	int64_t next_rescan = mono_ms() + HOST_RESCAN_MS;
	bool was_busy = true;
	for (;;) {
		pthread_mutex_lock(&h->mu);
		char **due = NULL;
		size_t ndue = 0;
		int64_t next_due;
		for (;;) {
			host_queue_count(h);
			if (atomic_load(&h->stop))
				break;
			if (atomic_load(&h->paused)) {
				/* Paused: the queue and the feed's events wait (the feed
				 * reader stops at its cap); the file is looked at each second. */
				if (was_busy) {
					was_busy = false;
					pthread_mutex_unlock(&h->mu);
					host_write_status(h, true);
					pthread_mutex_lock(&h->mu);
				}
				struct timespec ts = host_deadline(1000);
				pthread_cond_timedwait(&h->cv, &h->mu, &ts);
				pthread_mutex_unlock(&h->mu);
				host_check_paused(h);
				pthread_mutex_lock(&h->mu);
				continue;
			}
			due = host_queue_take_due(h, &ndue, &next_due);
			if (ndue || json_array_size(h->events) || h->moves || h->rescan ||
			    h->resync || json_array_size(h->repairs))
				break;
			free(due);
			due = NULL;
			if (sync_in_flight(h, NULL)) { /* nothing else to do: its answer */
				pthread_mutex_unlock(&h->mu);
				sync_settle(h);
				pthread_mutex_lock(&h->mu);
				continue;
			}
			if (was_busy) {
				/* idle: say so in the status file at once */
				atomic_store(&h->state, 3);
				pthread_mutex_unlock(&h->mu);
				host_write_status(h, true);
				pthread_mutex_lock(&h->mu);
				was_busy = false;
				continue;
			}
			int64_t until = next_due < next_rescan ? next_due : next_rescan;
			int64_t wait = until - mono_ms();
			if (wait <= 0) {
				if (until == next_rescan) {
					h->rescan = true;
					next_rescan = mono_ms() + HOST_RESCAN_MS;
				}
				continue;
			}
			struct timespec ts = host_deadline(wait);
			pthread_cond_timedwait(&h->cv, &h->mu, &ts);
		}
		if (atomic_load(&h->stop)) {
			pthread_mutex_unlock(&h->mu);
			for (size_t i = 0; i < ndue; i++)
				free(due[i]);
			free(due);
			sync_settle(h);
			return;
		}
		json_t *events = h->events;
		h->events = json_array();
		pthread_cond_broadcast(&h->cv); /* the feed reader may go on */
		struct move_op *moves = h->moves;
		h->moves = NULL;
		h->moves_tail = &h->moves;
		bool rescan = h->rescan, resync = h->resync, first = h->first_rescan;
		h->rescan = h->resync = h->first_rescan = false;
		json_t *repairs = h->repairs;
		h->repairs = json_array();
		pthread_mutex_unlock(&h->mu);
		was_busy = true;
		atomic_store(&h->state, 2);
		if (host_ignore_refresh()) /* a pattern gone or negated brings files back */
			rescan = resync = true;
		if (resync || rescan || moves || json_array_size(repairs))
			sync_settle(h); /* they read the index our batch in flight changes */

		if (resync) {
			host_load_policies(h, h->c.curl);
			host_load_settings(h, h->c.curl);
			int64_t seq = sync_with_tree(h);
			if (seq >=
			    0) { /* a change made before the tree's seq has no event after it */
				host_load_settings(h, h->c.curl);
				if (host_load_policies(h, h->c.curl) == 1) {
					pthread_mutex_lock(&h->mu);
					h->resync = true; /* the pass ran under the old ones */
					pthread_mutex_unlock(&h->mu);
				}
			}
			if (seq > atomic_load(&h->seq)) {
				atomic_store(&h->seq, seq);
				idx_kv_set(h->db, "seq", seq);
			}
			if (seq < 0) {
				pthread_mutex_lock(&h->mu);
				h->resync = true; /* the hub is away: try again */
				pthread_mutex_unlock(&h->mu);
				sleep(HUB_RETRY_S);
			}
		}
		size_t i;
		json_t *ev;
		json_array_foreach(events, i, ev)
		{
			if (atomic_load(&h->stop))
				break;
			sync_remote_event(h, ev);
		}
		sync_apply_flush(h);
		json_decref(events);
		for (struct move_op *m = moves, *next; m; m = next) {
			next = m->next;
			if (!atomic_load(&h->stop))
				sync_local_move(h, m->from, m->to);
			free(m->from);
			free(m->to);
			free(m);
		}
		if (rescan)
			sync_rescan(h, first);
		json_array_foreach(repairs, i, ev)
		{
			if (!atomic_load(&h->stop))
				sync_repair(h, json_string_value(ev));
		}
		json_decref(repairs);
		for (i = 0; i < ndue; i++) {
			if (!atomic_load(&h->stop))
				sync_local_path(h, due[i]);
			free(due[i]);
		}
		free(due);
		sync_flush(h);
	}
}

/* Leftovers of a download killed mid-way. */
static void clean_tmp(struct host *h)
{
	DIR *d = opendir(h->tmp_dir);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.') {
			char *p = xasprintf("%s/%s", h->tmp_dir, de->d_name);
			unlink(p);
			free(p);
		}
	if (d)
		closedir(d);
}

int host_open(struct host *h, const struct host_config *cfg, bool clean)
{
	memset(h, 0, sizeof *h);
	h->cfg = *cfg;
	if (h->cfg.heartbeat_s <= 0)
		h->cfg.heartbeat_s = HOST_HEARTBEAT_S;
	if (h->cfg.cache_max <= 0)
		h->cfg.cache_max = HOST_CACHE_MAX;
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	pthread_cond_init(&h->commit_cv, NULL);
	/* An unknown key asks the hub on the server thread that met it (at most
	 * every KEYRING_RETRY_MS): the hub may have rotated. */
	keyring_init(&h->keys, client_get_keys, &h->c, KEYRING_FETCH_ON_MISS);
	h->repairs = json_array();
	h->assign_fetch = json_object();
	h->assign_release = json_object();
	h->policies = json_array();
	h->replicas_have = json_object(); /* hash -> true: sets, the latest report wins */
	h->replicas_dropped = json_object();
	h->replicas_corrupt = json_object();
	h->no_space = json_object();
	h->io_errors = json_object();
	host_queue_init(h);
	h->sync = sync_new();
	h->dir = realpath(cfg->dir, NULL);
	if (!h->dir) {
		int err = errno;
		fprintf(stderr, "roost host: %s: %s\n", cfg->dir, strerror(err));
		return -err;
	}
	int rc = host_load_identity(h, h->dir);
	if (rc != 0)
		return rc;
	host_ignore_init(h->dir);
	h->state_dir = xasprintf("%s/%s", h->dir, HOST_STATE_DIR);
	h->tmp_dir = xasprintf("%s/tmp", h->state_dir);
	char *cache_dir = xasprintf("%s/cache", h->state_dir);
	mkdir_p(h->tmp_dir, 0700);
	mkdir_p(cache_dir, 0700);
	if (clean)
		clean_tmp(h);
	h->cache = store_open(cache_dir);
	if (!h->cache)
		fprintf(stderr, "roost host: cannot open the cache in %s\n", cache_dir);
	free(cache_dir);
	if (!h->cache || idx_open(h) != 0)
		return -EIO; /* idx_open logged why */
	atomic_store(&h->seq, idx_kv_get(h->db, "seq", 0));
	return 0;
}

void host_close(struct host *h)
{
	if (h->db)
		db_pool_release(h->idx, h->db);
	if (h->idx)
		db_pool_free(h->idx);
	store_free(h->cache);
	sync_free(h->sync);
	host_queue_free(h);
	json_decref(h->repairs);
	json_decref(h->grants);
	json_decref(h->assign_fetch);
	json_decref(h->assign_release);
	json_decref(h->policies);
	keyring_fini(&h->keys);
	json_decref(h->replicas_have);
	json_decref(h->replicas_dropped);
	json_decref(h->replicas_corrupt);
	json_decref(h->no_space);
	json_decref(h->io_errors);
	client_close(&h->c);
	free(h->label);
	free(h->url);
	free(h->tunnel_url);
	if (h->dir)
		host_ignore_fini();
	free(h->dir);
	free(h->state_dir);
	free(h->tmp_dir);
}

int host_run(const struct host_config *cfg)
{
	struct host hs, *h = &hs;
	int rc = host_open(h, cfg, true);
	if (rc != 0)
		goto out;

	/* Signals go to one thread; every other thread blocks them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_t sig_th, hb_th, scrub_th, replica_th;
	pthread_create(&sig_th, NULL, signal_main, h);
	if ((rc = serve_start(h)) != 0) {
		atomic_store(&h->stop, true);
		pthread_kill(sig_th, SIGUSR1);
		pthread_join(sig_th, NULL);
		goto out;
	}
	log_info("host %s (id %lld) syncing %s with %s, workspace %lld", h->label,
	         (long long)h->host_id, h->dir, h->c.hub, (long long)h->c.ws_id);
	host_reconcile_replicas(h); /* what a crash kept from the hub; no thread runs yet */
	pthread_create(&hb_th, NULL, host_heartbeat_main, h);
	struct tunnel *tun = h->tunnel = tunnel_start(h);
	/* A fresh index learns the whole tree; a known one replays the feed. */
	bool policies_moved = false;
	if (host_check_paused(h))
		log_info("paused (roost host resume --dir %s to sync again)", h->dir);
	for (int attempt = 0; !atomic_load(&h->stop); attempt++) {
		if (host_load_policies(h, h->c.curl) >= 0 &&
		    host_load_settings(h, h->c.curl) == 0) {
			if (atomic_load(&h->seq) > 0 || atomic_load(&h->paused))
				break; /* paused: the tree pass waits for the resume (resync) */
			int64_t seq = sync_with_tree(h);
			if (seq >= 0) {
				/* The settings and policies again: a change between the
				 * first read and the tree's seq has no event after that
				 * seq. New policies: the tree pass again, under them. */
				host_load_settings(h, h->c.curl);
				policies_moved = host_load_policies(h, h->c.curl) == 1;
				atomic_store(&h->seq, seq);
				idx_kv_set(h->db, "seq", seq);
				break;
			}
		}
		if (attempt == 0)
			log_warn("cannot reach the hub at %s yet; retrying", h->c.hub);
		sleep(attempt < HUB_RETRY_FAST ? HUB_RETRY_S : HUB_RETRY_SLOW_S);
	}
	struct watcher *w = watcher_start(h);
	h->rescan = h->first_rescan = true;
	/* files that waited for room, or for a source (a failed download's
	 * retry the last run did not live to make); or the first pass under old
	 * policies; or the first pass of all, put off by a pause */
	h->resync = policies_moved || idx_kv_get(h->db, "no_space", 0) != 0 ||
	            idx_kv_get(h->db, "refetch", 0) != 0 || atomic_load(&h->seq) == 0;
	struct host_feed *feed = host_feed_start(h);
	pthread_create(&scrub_th, NULL, scrub_main, h);
	pthread_create(&replica_th, NULL, replica_main, h);
	sync_loop(h);

	atomic_store(&h->stop, true);
	host_wake(h);
	pthread_kill(sig_th, SIGUSR1);
	pthread_join(sig_th, NULL);
	watcher_stop(w);
	tunnel_stop(tun);
	host_feed_stop(feed);
	pthread_join(hb_th, NULL);
	pthread_join(scrub_th, NULL);
	pthread_join(replica_th, NULL);
	serve_stop(h);
	host_write_status(h, false);
	log_info("host %s stopped", h->label);
	rc = 0;
	if (atomic_load(&h->ws_deleted)) {
		fprintf(
		    stderr,
		    "roost host: workspace deleted: workspace %lld was deleted on the hub; this "
		    "host no longer syncs it (the files in %s stay)\n",
		    (long long)h->c.ws_id, h->dir);
		rc = 1;
	}
out:
	host_close(h);
	return rc;
}
