/* agent: roost host run — start-up, the sync loop, and the threads that feed
 * it: the watcher (watch.c), the feed reader and the heartbeat.
 *
 * Start-up: a fresh index reconciles with the hub's whole tree; a known one
 * replays the feed from its last seq. Then the folder is rescanned against
 * the index (stat only: unchanged files are not read) and the loop runs until
 * SIGINT/SIGTERM: remote changes first, in seq order, then local moves, then
 * local paths whose settle delay has passed. */
#include "host.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/sse.h"
#include "../core/token.h"
#include "../core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define DIRTY_BATCH         256
#define FEED_BACKOFF_MAX_MS 30000
#define FEED_QUEUE_MAX      2000 /* remote changes waiting before the reader pauses */

/* ---- small shared helpers ---- */

/* The CLOCK_REALTIME moment ms from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(int64_t ms)
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

static size_t str_hash(const char *s)
{
	size_t x = 1469598103934665603ull;
	for (; *s; s++)
		x = (x ^ (unsigned char)*s) * 1099511628211ull;
	return x;
}

static void dirty_grow(struct host *h)
{
	size_t cap = h->dirty_cap ? h->dirty_cap * 2 : 1024;
	struct dirty **t = xcalloc(cap, sizeof *t);
	for (size_t i = 0; i < h->dirty_cap; i++)
		for (struct dirty *d = h->dirty[i], *next; d; d = next) {
			next = d->next;
			size_t k = str_hash(d->path) & (cap - 1);
			d->next = t[k];
			t[k] = d;
		}
	free(h->dirty);
	h->dirty = t;
	h->dirty_cap = cap;
}

void host_mark_dirty(struct host *h, const char *path, int64_t delay_ms)
{
	int64_t due = mono_ms() + delay_ms;
	pthread_mutex_lock(&h->mu);
	if (h->ndirty >= h->dirty_cap / 2)
		dirty_grow(h);
	size_t k = str_hash(path) & (h->dirty_cap - 1);
	struct dirty *d = h->dirty[k];
	while (d && strcmp(d->path, path) != 0)
		d = d->next;
	if (!d) {
		d = xcalloc(1, sizeof *d);
		d->path = xstrdup(path);
		d->next = h->dirty[k];
		h->dirty[k] = d;
		h->ndirty++;
	}
	d->due = due;
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

void host_queue_move(struct host *h, const char *from, const char *to)
{
	struct move_op *m = xcalloc(1, sizeof *m);
	m->from = xstrdup(from);
	m->to = xstrdup(to);
	pthread_mutex_lock(&h->mu);
	/* Paths waiting under the old name now live under the new one. */
	size_t n = strlen(from);
	struct dirty *moved = NULL;
	for (size_t i = 0; i < h->dirty_cap; i++)
		for (struct dirty **pp = &h->dirty[i]; *pp;) {
			struct dirty *d = *pp;
			if (strncmp(d->path, from, n) == 0 && (!d->path[n] || d->path[n] == '/')) {
				*pp = d->next;
				char *np = xasprintf("%s%s", to, d->path + n);
				free(d->path);
				d->path = np;
				d->next = moved;
				moved = d;
				h->ndirty--;
			} else {
				pp = &d->next;
			}
		}
	for (struct dirty *d = moved, *next; d; d = next) {
		next = d->next;
		size_t k = str_hash(d->path) & (h->dirty_cap - 1);
		struct dirty *same = h->dirty[k];
		while (same && strcmp(same->path, d->path) != 0)
			same = same->next;
		if (same) {
			free(d->path);
			free(d);
			continue;
		}
		d->next = h->dirty[k];
		h->dirty[k] = d;
		h->ndirty++;
	}
	*h->moves_tail = m;
	h->moves_tail = &m->next;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

void host_report_replicas(struct host *h, json_t *chunks, bool have)
{
	size_t i;
	json_t *c;
	pthread_mutex_lock(&h->mu);
	json_array_foreach(chunks, i, c)
	{
		const char *hash = json_get_str(c, "hash");
		if (hash)
			json_array_append_new(have ? h->replicas_have : h->replicas_dropped,
			                      json_string(hash));
	}
	pthread_mutex_unlock(&h->mu);
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
	json_decref(h->policies);
	h->policies = json_incref(pol);
	pthread_mutex_unlock(&h->mu);
	json_decref(out);
	return 0;
}

bool host_key(void *cls, const char *kid, unsigned char *pk)
{
	struct host *h = cls;
	for (int attempt = 0; attempt < 2; attempt++) {
		bool found = false, stale;
		pthread_mutex_lock(&h->mu);
		size_t i;
		json_t *k;
		json_array_foreach(json_object_get(h->keys, "keys"), i, k)
		{
			const char *id = json_get_str(k, "kid");
			if (id && strcmp(id, kid) == 0)
				found = token_parse_key(json_get_str(k, "public_key"), pk);
		}
		stale = mono_ms() - h->keys_at > 10000 || !h->keys;
		pthread_mutex_unlock(&h->mu);
		if (found || !stale)
			return found;
		/* An unknown key: the hub may have rotated. Ask, at most every 10 s. */
		CURL *curl = client_curl(&h->c);
		char *url = xasprintf("%s/api/v1/keys", h->c.hub);
		json_t *out = NULL;
		char err[256];
		long st = client_request(&h->c, curl, "GET", url, NULL, &out, err);
		free(url);
		curl_easy_cleanup(curl);
		pthread_mutex_lock(&h->mu);
		h->keys_at = mono_ms();
		if (st == 200) {
			json_decref(h->keys);
			h->keys = out;
			out = NULL;
		}
		pthread_mutex_unlock(&h->mu);
		json_decref(out);
	}
	return false;
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
		json_decref(j);
		free(path);
		return 1;
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
		return 1;
	}
	return 0;
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

static void write_status(struct host *h, bool running)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	json_t *o = json_pack("{s:b, s:i, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:s*, s:I}", "running",
	                      running, "pid", (int)getpid(), "host_id", (json_int_t)h->host_id,
	                      "label", h->label, "state", state_name(atomic_load(&h->state)),
	                      "queue", (json_int_t)atomic_load(&h->queue), "last_sync",
	                      (json_int_t)atomic_load(&h->last_sync), "seq",
	                      (json_int_t)atomic_load(&h->seq), "cache_bytes",
	                      (json_int_t)atomic_load(&h->cache_bytes), "url", h->url, "updated_at",
	                      (json_int_t)now_ms());
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
	pthread_mutex_unlock(&h->mu);
	char *s = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	char *path = xasprintf("%s/status.json", h->state_dir);
	char *tmp = xasprintf("%s/status.json.tmp", h->state_dir);
	pthread_mutex_lock(&mu);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (write_all(fd, s, strlen(s)) == 0 && close(fd) == 0)
			rename(tmp, path);
		else
			unlink(tmp);
	}
	pthread_mutex_unlock(&mu);
	free(s);
	free(path);
	free(tmp);
}

static void heartbeat(struct host *h, CURL *curl, const char *status)
{
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
	json_t *have = h->replicas_have, *dropped = h->replicas_dropped;
	json_t *no_space = no_space_summary(h);
	h->replicas_have = json_array();
	h->replicas_dropped = json_array();
	pthread_mutex_unlock(&h->mu);
	json_t *body = json_pack(
	    "{s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:o, s:I, s:I}", "status", status, "interval_ms",
	    (json_int_t)h->cfg.heartbeat_s * 1000, "capacity_bytes", (json_int_t)cap, "free_bytes",
	    (json_int_t)fr, "queue", (json_int_t)atomic_load(&h->queue), "last_sync",
	    (json_int_t)atomic_load(&h->last_sync), "version", ROOST_VERSION, "pinned", pinned,
	    "cache_bytes", (json_int_t)atomic_load(&h->cache_bytes), "seq",
	    (json_int_t)atomic_load(&h->seq));
	json_object_set_new(body, "no_space", no_space); /* counts only: paths stay here */
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
	if (st != 200)
		log_warn("heartbeat: %s", st ? "the hub refused it" : err);
	/* Copies the hub's replicate job asks of us (replica.c makes them). */
	json_t *rep = json_object_get(out, "replicate"), *c;
	pthread_mutex_lock(&h->mu);
	json_array_foreach(json_object_get(rep, "fetch"), i, c)
	{
		const char *hash = json_get_str(c, "hash");
		if (hash_hex_valid(hash))
			json_object_set(h->assign_fetch, hash, json_object_get(c, "size"));
	}
	json_array_foreach(json_object_get(rep, "release"), i, c)
	{
		if (hash_hex_valid(json_string_value(c)))
			json_object_set_new(h->assign_release, json_string_value(c), json_true());
	}
	pthread_mutex_unlock(&h->mu);
	json_decref(out);
	/* Replica reports, in slices the hub accepts. */
	while (st == 200 && (json_array_size(have) || json_array_size(dropped))) {
		json_t *a = json_array(), *b = json_array();
		for (size_t k = 0; k < 5000 && json_array_size(have); k++) {
			json_array_append(a, json_array_get(have, 0));
			json_array_remove(have, 0);
		}
		for (size_t k = 0; k < 5000 && json_array_size(dropped); k++) {
			json_array_append(b, json_array_get(dropped, 0));
			json_array_remove(dropped, 0);
		}
		url = client_ws_url(&h->c, "/hosts/self/replicas", NULL);
		body = json_pack("{s:o, s:o}", "have", a, "dropped", b);
		st = client_request(&h->c, curl, "POST", url, body, NULL, err);
		free(url);
		json_decref(body);
	}
	if (json_array_size(have) || json_array_size(dropped)) {
		/* not delivered: keep for the next beat */
		pthread_mutex_lock(&h->mu);
		json_array_extend(h->replicas_have, have);
		json_array_extend(h->replicas_dropped, dropped);
		pthread_mutex_unlock(&h->mu);
	}
	json_decref(have);
	json_decref(dropped);
}

static void *heartbeat_main(void *arg)
{
	struct host *h = arg;
	CURL *curl = client_curl(&h->c);
	pthread_mutex_lock(&h->mu);
	while (!atomic_load(&h->stop)) {
		pthread_mutex_unlock(&h->mu);
		heartbeat(h, curl, "online");
		write_status(h, true);
		no_space_retry(h);
		pthread_mutex_lock(&h->mu);
		struct timespec ts = deadline_in((int64_t)h->cfg.heartbeat_s * 1000);
		while (!atomic_load(&h->stop) &&
		       pthread_cond_timedwait(&h->cv, &h->mu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&h->mu);
	heartbeat(h, curl, "stopping"); /* shown offline at once */
	curl_easy_cleanup(curl);
	return NULL;
}

/* ---- the feed reader ---- */

struct feed {
	struct host *h;
	struct sse sse;
	int64_t last; /* last seq received */
};

static void feed_event(void *cls, const char *event, const char *data, size_t len)
{
	struct feed *f = cls;
	(void)event;
	json_t *ev = json_loadb(data, len, 0, NULL);
	int64_t seq = 0;
	if (!json_get_int(ev, "seq", &seq) || seq <= f->last) {
		json_decref(ev);
		return;
	}
	f->last = seq;
	pthread_mutex_lock(&f->h->mu);
	/* Backpressure: with enough work queued, stop reading the stream until
	 * the sync thread takes it (the hub's side of the connection waits). */
	while (json_array_size(f->h->events) >= FEED_QUEUE_MAX && !atomic_load(&f->h->stop))
		pthread_cond_wait(&f->h->cv, &f->h->mu);
	json_array_append_new(f->h->events, ev);
	pthread_cond_broadcast(&f->h->cv);
	pthread_mutex_unlock(&f->h->mu);
}

static size_t feed_write(char *data, size_t size, size_t n, void *cls)
{
	struct feed *f = cls;
	sse_feed(&f->sse, data, size * n);
	return size * n;
}

static int feed_progress(void *cls, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	return atomic_load(&((struct host *)cls)->stop) ? 1 : 0;
}

static void *feed_main(void *arg)
{
	struct feed *f = arg;
	struct host *h = f->h;
	CURL *curl = client_curl(&h->c);
	int64_t backoff = 500;
	while (!atomic_load(&h->stop)) {
		char *rel = xasprintf("/events?since=%lld", (long long)f->last);
		char *url = client_ws_url(&h->c, rel, NULL);
		free(rel);
		char *auth = xasprintf("Authorization: Bearer %s", h->c.token);
		struct curl_slist *hd = curl_slist_append(NULL, auth);
		curl_easy_reset(curl);
		if (h->c.cacert)
			curl_easy_setopt(curl, CURLOPT_CAINFO, h->c.cacert);
		curl_easy_setopt(curl, CURLOPT_URL, url);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hd);
		curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
		/* The hub sends a heartbeat comment every ~15 s. */
		curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, feed_write);
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, f);
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, feed_progress);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, h);
		int64_t started = mono_ms();
		CURLcode cc = curl_easy_perform(curl);
		curl_slist_free_all(hd);
		free(auth);
		free(url);
		sse_reset(&f->sse);
		if (atomic_load(&h->stop))
			break;
		if (mono_ms() - started > 10000)
			backoff = 500; /* it ran a while: a fresh failure */
		log_warn("feed: %s; reconnecting in %.1f s",
		         cc != CURLE_OK ? curl_easy_strerror(cc) : "the hub ended the stream",
		         (double)backoff / 1000);
		/* Wait with jitter, waking early on stop. */
		int64_t wait = backoff / 2 + (int64_t)(rand() % (int)(backoff / 2 + 1));
		pthread_mutex_lock(&h->mu);
		struct timespec ts = deadline_in(wait);
		while (!atomic_load(&h->stop) &&
		       pthread_cond_timedwait(&h->cv, &h->mu, &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&h->mu);
		backoff = backoff * 2 > FEED_BACKOFF_MAX_MS ? FEED_BACKOFF_MAX_MS : backoff * 2;
	}
	curl_easy_cleanup(curl);
	return NULL;
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

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Take what is ready (under mu). Returns paths due now, sorted (parents first). */
static char **take_due(struct host *h, size_t *n, int64_t *next_due)
{
	int64_t now = mono_ms();
	*next_due = INT64_MAX;
	char **out = NULL;
	size_t cnt = 0;
	for (size_t i = 0; i < h->dirty_cap && cnt < DIRTY_BATCH; i++)
		for (struct dirty **pp = &h->dirty[i]; *pp && cnt < DIRTY_BATCH;) {
			struct dirty *d = *pp;
			if (d->due > now) {
				if (d->due < *next_due)
					*next_due = d->due;
				pp = &d->next;
				continue;
			}
			*pp = d->next;
			h->ndirty--;
			out = xrealloc(out, (cnt + 1) * sizeof *out);
			out[cnt++] = d->path;
			free(d);
		}
	if (cnt == DIRTY_BATCH)
		*next_due = now;
	if (cnt)
		qsort(out, cnt, sizeof *out, cmp_str);
	*n = cnt;
	return out;
}

static void update_queue(struct host *h)
{
	size_t moves = 0;
	for (struct move_op *m = h->moves; m; m = m->next)
		moves++;
	atomic_store(&h->queue, (long long)(h->ndirty + moves + json_array_size(h->events)));
}

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
			update_queue(h);
			if (atomic_load(&h->stop))
				break;
			due = take_due(h, &ndue, &next_due);
			if (ndue || json_array_size(h->events) || h->moves || h->rescan ||
			    h->resync || json_array_size(h->repairs))
				break;
			free(due);
			due = NULL;
			if (was_busy) {
				/* idle: say so in the status file at once */
				atomic_store(&h->state, 3);
				pthread_mutex_unlock(&h->mu);
				write_status(h, true);
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
			struct timespec ts = deadline_in(wait);
			pthread_cond_timedwait(&h->cv, &h->mu, &ts);
		}
		if (atomic_load(&h->stop)) {
			pthread_mutex_unlock(&h->mu);
			for (size_t i = 0; i < ndue; i++)
				free(due[i]);
			free(due);
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

		if (resync) {
			host_load_policies(h, h->c.curl);
			int64_t seq = sync_with_tree(h);
			if (seq > atomic_load(&h->seq)) {
				atomic_store(&h->seq, seq);
				idx_kv_set(h->db, "seq", seq);
			}
			if (seq < 0) {
				pthread_mutex_lock(&h->mu);
				h->resync = true; /* the hub is away: try again */
				pthread_mutex_unlock(&h->mu);
				sleep(1);
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
	h->events = json_array();
	h->repairs = json_array();
	h->assign_fetch = json_object();
	h->assign_release = json_object();
	h->policies = json_array();
	h->replicas_have = json_array();
	h->replicas_dropped = json_array();
	h->no_space = json_object();
	h->moves_tail = &h->moves;
	dirty_grow(h);
	h->dir = realpath(cfg->dir, NULL);
	if (!h->dir) {
		fprintf(stderr, "roost host: %s: %s\n", cfg->dir, strerror(errno));
		return 1;
	}
	if (host_load_identity(h, h->dir) != 0)
		return 1;
	h->state_dir = xasprintf("%s/%s", h->dir, HOST_STATE_DIR);
	h->tmp_dir = xasprintf("%s/tmp", h->state_dir);
	char *cache_dir = xasprintf("%s/cache", h->state_dir);
	mkdir_p(h->tmp_dir, 0700);
	mkdir_p(cache_dir, 0700);
	if (clean)
		clean_tmp(h);
	h->cache = store_open(cache_dir);
	free(cache_dir);
	if (!h->cache || idx_open(h) != 0)
		return 1;
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
	for (size_t i = 0; i < h->dirty_cap; i++)
		for (struct dirty *d = h->dirty[i], *next; d; d = next) {
			next = d->next;
			free(d->path);
			free(d);
		}
	free(h->dirty);
	for (struct move_op *m = h->moves, *next; m; m = next) {
		next = m->next;
		free(m->from);
		free(m->to);
		free(m);
	}
	json_decref(h->events);
	json_decref(h->repairs);
	json_decref(h->grants);
	json_decref(h->assign_fetch);
	json_decref(h->assign_release);
	json_decref(h->policies);
	json_decref(h->keys);
	json_decref(h->replicas_have);
	json_decref(h->replicas_dropped);
	json_decref(h->no_space);
	client_close(&h->c);
	free(h->label);
	free(h->url);
	free(h->tunnel_url);
	free(h->dir);
	free(h->state_dir);
	free(h->tmp_dir);
}

int host_run(const struct host_config *cfg)
{
	struct host hs, *h = &hs;
	int rc = 1;
	if (host_open(h, cfg, true) != 0)
		goto out;

	/* Signals go to one thread; every other thread blocks them. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_t sig_th, hb_th, feed_th, scrub_th, replica_th;
	pthread_create(&sig_th, NULL, signal_main, h);
	if (serve_start(h) != 0) {
		atomic_store(&h->stop, true);
		pthread_kill(sig_th, SIGUSR1);
		pthread_join(sig_th, NULL);
		goto out;
	}
	log_info("host %s (id %lld) syncing %s with %s, workspace %lld", h->label,
	         (long long)h->host_id, h->dir, h->c.hub, (long long)h->c.ws_id);
	pthread_create(&hb_th, NULL, heartbeat_main, h);
	struct tunnel *tun = h->tunnel = tunnel_start(h);
	/* A fresh index learns the whole tree; a known one replays the feed. */
	for (int attempt = 0; !atomic_load(&h->stop); attempt++) {
		if (host_load_policies(h, h->c.curl) == 0) {
			if (atomic_load(&h->seq) > 0)
				break;
			int64_t seq = sync_with_tree(h);
			if (seq >= 0) {
				atomic_store(&h->seq, seq);
				idx_kv_set(h->db, "seq", seq);
				break;
			}
		}
		if (attempt == 0)
			log_warn("cannot reach the hub at %s yet; retrying", h->c.hub);
		sleep(attempt < 5 ? 1 : 5);
	}
	struct watcher *w = watcher_start(h);
	h->rescan = h->first_rescan = true;
	h->resync = idx_kv_get(h->db, "no_space", 0) != 0; /* files that waited for room */
	struct feed *f = xcalloc(1, sizeof *f);
	f->h = h;
	f->last = atomic_load(&h->seq);
	sse_init(&f->sse, feed_event, f);
	pthread_create(&feed_th, NULL, feed_main, f);
	pthread_create(&scrub_th, NULL, scrub_main, h);
	pthread_create(&replica_th, NULL, replica_main, h);
	sync_loop(h);

	atomic_store(&h->stop, true);
	host_wake(h);
	pthread_kill(sig_th, SIGUSR1);
	pthread_join(sig_th, NULL);
	watcher_stop(w);
	tunnel_stop(tun);
	pthread_join(feed_th, NULL);
	pthread_join(hb_th, NULL);
	pthread_join(scrub_th, NULL);
	pthread_join(replica_th, NULL);
	sse_fini(&f->sse);
	free(f);
	serve_stop(h);
	write_status(h, false);
	log_info("host %s stopped", h->label);
	rc = 0;
out:
	host_close(h);
	return rc;
}
