/* sync_apply: remote changes into the folder — versions downloaded (or, on
 * demand, only recorded), deletes, moves and new folders from the feed; the
 * hub's whole tree reconciled at start and after a policy change; conflict
 * copies when a local edit meets a remote version or loses a conditional
 * commit; scrub repairs. Run only by the sync thread. */
#include "sync.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
		sync_own_rename(h, path, cp);
		host_mark_dirty(h, cp, 0);
	} else {
		log_error("conflict: cannot keep %s aside: %s", path, strerror(errno));
	}
	free(from);
	free(to);
	free(cp);
	return ok;
}

/* ---- the way to a remote path ---- */

static void remove_local_file(struct host *h, const char *path);

/* Whether the workspace has a folder at path now (true when the hub cannot
 * say: the event is taken as it came). */
static bool hub_has_folder(struct host *h, const char *path)
{
	json_t *out = NULL;
	long st = sync_hub_call(h, "GET", "/info?path=%s", path, NULL, &out);
	const char *type = json_get_str(out, "type");
	bool folder = st == 200 ? type && strcmp(type, "folder") == 0 : st != 404;
	if (st != 200 && st != 404)
		log_warn("cannot ask the hub whether %s is a folder (%ld); taken as one", path, st);
	json_decref(out);
	return folder;
}

/* Make way here for the workspace's folder at path (itself too when self):
 * a file where the workspace has a folder is removed if the folder and the
 * workspace agreed on it (the workspace replaced it), else kept as a conflict
 * copy (plan.h: a local file never gives way to nothing). Without this, a
 * file made here at the moment another host made a folder of that name
 * blocked the folder's files here for ever, and the hub refused the file.
 * False, and nothing done, when the workspace has no folder there any more:
 * the event is the echo of this host's own folder (or a file in it), which
 * the user has replaced by a file again since (the folder's delete went up,
 * the file may wait in a batch) — the file is the user's latest, not a
 * conflict with a folder no longer there. */
static bool make_way(struct host *h, const char *path, bool self)
{
	char *p = xstrdup(path);
	char *end = self ? NULL : strrchr(p, '/');
	if (end && end != p)
		*end = 0;
	char *top = host_local(h, end == p ? "/" : p);
	struct stat top_st;
	bool clear = lstat(top, &top_st) == 0 && S_ISDIR(top_st.st_mode); /* so are its parents */
	free(top);
	if (end && end != p)
		*end = '/';
	if (clear) {
		free(p);
		return true;
	}
	bool made = true;
	for (char *slash = strchr(p + 1, '/');; slash = strchr(slash + 1, '/')) {
		if (slash)
			*slash = 0;
		else if (!self)
			break;
		char *local = host_local(h, p);
		struct stat st;
		if (lstat(local, &st) == 0 && !S_ISDIR(st.st_mode) && !hub_has_folder(h, p)) {
			made = false; /* a stale event: see above */
		} else if (lstat(local, &st) == 0 && !S_ISDIR(st.st_mode)) {
			struct ientry e;
			int found = idx_get(h->db, p, &e) == 1;
			struct plan_state base = sync_base_state(found ? &e : NULL),
			                  mine = sync_local_state(found ? &e : NULL, local, &st,
			                                          false),
			                  theirs = {.kind = PLAN_FOLDER};
			enum plan_conflict conflict;
			plan_path(&base, &mine, &theirs, &conflict);
			/* unchanged here: the folder replaces it */
			if (conflict == PLAN_NO_CONFLICT)
				remove_local_file(h, p);
			if (lstat(local, &st) == 0 && !S_ISDIR(st.st_mode))
				keep_as_conflict(h, p);
		}
		free(local);
		if (!slash || !made)
			break;
		*slash = '/';
	}
	free(p);
	return made;
}

/* The workspace's file at path, where this host has a folder: moved aside
 * in the workspace as a conflict copy (its move event brings it here), so
 * that the folder can go up. Without this the folder's files were refused
 * for ever (a file or folder is in the way) and the hosts never agreed. */
static void keep_remote_aside(struct host *h, const char *path)
{
	char *cp = conflict_path(h, path);
	if (!cp)
		return;
	json_t *out = NULL;
	long st = sync_hub_call(h, "POST", "/move", NULL,
	                        json_pack("{s:s, s:s}", "from", path, "to", cp), &out);
	json_decref(out);
	if (st == 200) {
		log_info("conflict: %s is a folder here; kept the workspace's file as %s", path,
		         cp);
	} else {
		log_warn("conflict: %s is a folder here and a file in the workspace; cannot move "
		         "that aside yet (%ld)",
		         path, st);
		host_mark_dirty(h, path, retry_next_ms(&h->sync->retry));
	}
	free(cp);
}

/* ---- applying a version ---- */

static void drop_local_copy(struct host *h, const char *path, struct ientry *e);

void sync_record_local(struct host *h, const char *path, const struct stat *st, int64_t vid,
                       int64_t version, const char *hash, json_t *chunks, bool committed)
{
	struct ientry e = {.local = true, .version_id = vid, .version = version};
	entry_from_stat(&e, st);
	snprintf(e.hash, sizeof e.hash, "%s", hash);
	/* What the old content held and nothing here holds now is dropped. */
	json_t *dropped = chunks ? sync_chunks_released(h, path, chunks) : NULL;
	idx_put(h->db, path, &e);
	if (chunks) {
		idx_set_chunks(h->db, path, chunks);
		if (committed)
			host_report_committed(h, chunks);
		else
			host_report_replicas(h, chunks, true);
		host_report_replicas(h, dropped, false);
		json_decref(dropped);
	}
	atomic_store(&h->last_sync, now_ms());
}

/* While a big download runs, its pages are handed to the disk as they come
 * (sync_file_range, no wait), so the fsync at the end has little left to
 * write: the disk works while the next chunks are fetched and verified. */
#define WRITEBACK_MIN_BYTES (8ll << 20)
#define WRITEBACK_EVERY_MS  25

struct writeback {
	int fd;
	bool done;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
};

static void *writeback_main(void *arg)
{
	struct writeback *w = arg;
	pthread_mutex_lock(&w->mu);
	while (!w->done) {
		struct timespec until = host_deadline(WRITEBACK_EVERY_MS);
		pthread_cond_timedwait(&w->cv, &w->mu, &until);
		if (!w->done)
			sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static struct writeback *writeback_start(int fd, int64_t size)
{
	if (size < WRITEBACK_MIN_BYTES)
		return NULL;
	struct writeback *w = xcalloc(1, sizeof *w);
	w->fd = fd;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->th, NULL, writeback_main, w) != 0) {
		free(w);
		return NULL;
	}
	return w;
}

static void writeback_stop(struct writeback *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->th, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
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
	struct writeback *wb = writeback_start(fd, json_integer_value(json_object_get(m, "size")));
	int rc = fetch_content(h, h->db, h->c.curl, m, fd, false);
	writeback_stop(wb);
	if (rc == 0 && (fchmod(fd, 0666 & ~um) != 0 || fsync(fd) != 0))
		rc = -errno;
	close(fd);
	char *local = host_local(h, path);
	if (rc == 0) {
		sync_keep_replaced(h, path, json_object_get(m, "chunks"));
		struct stat now;
		int have = lstat(local, &now) == 0;
		if ((have && (!seen || !sync_same_stat(seen, &now))) && S_ISREG(now.st_mode))
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
		if (rc != -EINTR) {
			log_error("download %s failed: %s", path, strerror(-rc));
			if (rc != -ENODATA) /* no source gave it: not the folder's */
				host_io_failed(h, path, -rc);
		}
	} else {
		struct stat st;
		if (lstat(local, &st) == 0)
			sync_record_local(
			    h, path, &st, json_integer_value(json_object_get(m, "version_id")),
			    json_integer_value(json_object_get(m, "version")),
			    json_get_str(m, "hash"), json_object_get(m, "chunks"), false);
		host_room_found(h, path);
		host_io_ok(h, path);
		log_info("synced %s (version %lld) from the workspace", path,
		         (long long)json_integer_value(json_object_get(m, "version")));
	}
	free(local);
	free(tmp);
	return rc == 0;
}

/* ---- small files in batches ----
 * A small remote file (one chunk, named by the file's hash) is not fetched
 * at once: it waits in h->sync->arrivals with others, until the end of the
 * batch of events or until something must see it. Then their bytes come
 * many to a request from a host holding them (fetch_batch.c), are written
 * to temp files, made durable by one syncfs(2) for all, renamed into place
 * (no half-written file is ever visible), their folders fsynced once each,
 * and indexed in one transaction. The feed seq is recorded only after. A
 * file no host gave is fetched alone, as before. */

#define ARRIVALS_MAX       1024
#define ARRIVALS_MAX_BYTES (16ll << 20)

struct arrival {
	char *path, *tmp;
	char hash[HASH_HEX_LEN + 1];
	int64_t vid, version, size;
	bool have; /* a local file was there (seen) when we decided */
	struct stat seen;
};

static bool arrival_pending(struct host *h, const char *path)
{
	return h->sync->narrivals && json_object_get(h->sync->arrival_paths, path);
}

/* The one-chunk manifest of a small file, as the hub would give it. */
static json_t *small_manifest(const char *path, int64_t vid, int64_t version, const char *hash,
                              int64_t size)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:s, s:o}", "path", path, "version",
	                 (json_int_t)version, "version_id", (json_int_t)vid, "size",
	                 (json_int_t)size, "hash", hash, "chunks",
	                 size ? json_pack("[{s:s, s:I, s:I, s:[]}]", "hash", hash, "size",
	                                  (json_int_t)size, "offset", (json_int_t)0, "hosts")
	                      : json_array());
}

/* ---- versions whose manifest was gone ----
 *
 * A version the feed announced whose manifest was gone from its path by the
 * time this host asked for it: the file was deleted or moved since. A file's
 * move names its version (moved_version); a folder's move does not, and
 * without this the host carried its old version to the new path for good. */

#define GONE_MAX 10000

static void gone_remember(struct host *h, const char *path)
{
	if (json_object_size(h->sync->gone) < GONE_MAX) {
		json_object_set_new(h->sync->gone, path, json_true());
		return;
	}
	pthread_mutex_lock(&h->mu);
	h->resync = true; /* too many to follow one by one: the tree pass finds them */
	pthread_mutex_unlock(&h->mu);
}

/* The gone paths at path or under it, removed from the list (NULL: none). */
static json_t *gone_take(struct host *h, const char *path)
{
	json_t *taken = NULL, *v;
	const char *k;
	void *tmp;
	size_t n = strlen(path);
	json_object_foreach_safe(h->sync->gone, tmp, k, v)
	{
		if (strncmp(k, path, n) == 0 && (k[n] == 0 || k[n] == '/')) {
			if (!taken)
				taken = json_array();
			json_array_append_new(taken, json_string(k));
			json_object_del(h->sync->gone, k);
		}
	}
	return taken;
}

/* The folder from is now to: each version missed under it is fetched at its
 * new path (or remembered again if it has moved on since). */
static void gone_moved(struct host *h, const char *from, const char *to)
{
	json_t *taken = gone_take(h, from), *p;
	size_t i, n = strlen(from);
	json_array_foreach(taken, i, p)
	{
		char *now = xasprintf("%s%s", to, json_string_value(p) + n);
		sync_refetch(h, now);
		free(now);
	}
	json_decref(taken);
}

/* Fetch a small file alone: its one chunk from the best source, else by its
 * manifest (not stored as one chunk after all). */
static void download_small(struct host *h, const char *path, int64_t vid, int64_t version,
                           const char *hash, int64_t size, const struct stat *seen)
{
	json_t *m = small_manifest(path, vid, version, hash, size);
	bool done = download_to(h, path, m, seen);
	json_decref(m);
	if (done)
		return;
	bool gone = false;
	m = fetch_manifest(h, h->c.curl, path, version, &gone);
	if (m ? !download_to(h, path, m, seen) : !gone) /* no source, or the hub is away */
		sync_fetch_later(h, path);
	else if (gone)
		gone_remember(h, path);
	json_decref(m);
}

static void arrival_add(struct host *h, const char *path, int64_t vid, int64_t version,
                        const char *hash, int64_t size, const struct stat *seen)
{
	struct sync *s = h->sync;
	if (!s->arrivals) {
		s->arrivals = xcalloc(ARRIVALS_MAX, sizeof *s->arrivals);
		s->arrival_paths = json_object();
	}
	struct arrival *a = &s->arrivals[s->narrivals++];
	*a = (struct arrival){.path = xstrdup(path), .vid = vid, .version = version, .size = size};
	snprintf(a->hash, sizeof a->hash, "%s", hash);
	if (seen) {
		a->have = true;
		a->seen = *seen;
	}
	json_object_set_new(s->arrival_paths, path, json_true());
	s->arrival_bytes += (size_t)size;
	if (s->narrivals >= ARRIVALS_MAX || (int64_t)s->arrival_bytes >= ARRIVALS_MAX_BYTES)
		sync_apply_flush(h);
}

/* Write a's bytes to a new temp file (not synced yet). 0 or -errno. */
static int arrival_write(struct host *h, struct arrival *a, const uint8_t *data, mode_t mode)
{
	a->tmp = xasprintf("%s/dl-XXXXXX", h->tmp_dir);
	int fd = mkstemp(a->tmp);
	int rc = fd < 0 ? -errno : write_all(fd, data, (size_t)a->size);
	if (rc == 0 && fchmod(fd, mode) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc != 0) {
		if (fd >= 0)
			unlink(a->tmp);
		free(a->tmp);
		a->tmp = NULL;
	}
	return rc;
}

/* Rename a's synced temp file into place (a local edit since is kept as a
 * conflict copy) and index it; its folder goes to dirs. */
static bool arrival_place(struct host *h, struct arrival *a, json_t *dirs)
{
	char *local = host_local(h, a->path);
	struct stat now;
	if (lstat(local, &now) == 0 && S_ISREG(now.st_mode) &&
	    (!a->have || !sync_same_stat(&a->seen, &now)))
		keep_as_conflict(h, a->path);
	sync_keep_replaced(h, a->path, NULL);
	char *parent = xstrdup(local);
	*strrchr(parent, '/') = 0;
	bool ok = mkdir_p(parent, 0777) == 0 && rename(a->tmp, local) == 0;
	if (!ok) {
		log_error("download %s: rename: %s", a->path, strerror(errno));
		unlink(a->tmp);
	} else {
		json_object_set_new(dirs, parent, json_true());
		json_t *chunks = json_pack("[{s:s, s:I, s:I}]", "hash", a->hash, "size",
		                           (json_int_t)a->size, "offset", (json_int_t)0);
		if (lstat(local, &now) == 0)
			sync_record_local(h, a->path, &now, a->vid, a->version, a->hash, chunks,
			                  false);
		json_decref(chunks);
		host_room_found(h, a->path);
		host_io_ok(h, a->path);
	}
	free(parent);
	free(local);
	return ok;
}

/* Fetch, write, sync once, place: the arrivals that a host gave. */
static size_t arrivals_place(struct host *h, struct arrival *as, size_t n)
{
	struct batch_want *want = xcalloc(n, sizeof *want);
	for (size_t i = 0; i < n; i++)
		want[i] = (struct batch_want){.path = as[i].path,
		                              .hash = as[i].hash,
		                              .version = as[i].version,
		                              .size = as[i].size};
	fetch_batch(h, h->c.curl, want, n);
	mode_t um = umask(0);
	umask(um);
	size_t written = 0;
	for (size_t i = 0; i < n; i++) {
		if (want[i].data && arrival_write(h, &as[i], want[i].data, 0666 & ~um) == 0)
			written++;
		free(want[i].data);
	}
	free(want);
	if (!written)
		return 0;
	/* One flush for every file written, instead of one fsync each. */
	int dfd = open(h->tmp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool synced = dfd >= 0 && syncfs(dfd) == 0;
	if (dfd >= 0)
		close(dfd);
	json_t *dirs = json_object();
	size_t placed = 0;
	db_begin(h->db);
	for (size_t i = 0; i < n; i++) {
		if (!as[i].tmp)
			continue;
		if (!synced) { /* not durable: fetch it alone */
			unlink(as[i].tmp);
			free(as[i].tmp);
			as[i].tmp = NULL;
		} else if (arrival_place(h, &as[i], dirs)) {
			placed++;
		} else {
			free(as[i].tmp);
			as[i].tmp = NULL;
		}
	}
	const char *dir;
	json_t *v;
	json_object_foreach(dirs, dir, v)
	{
		int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
	}
	db_commit(h->db);
	json_decref(dirs);
	return placed;
}

void sync_apply_flush(struct host *h)
{
	struct sync *s = h->sync;
	size_t n = s->narrivals;
	struct arrival *as = s->arrivals;
	int64_t seq = s->arrivals_seq;
	s->arrivals = NULL;
	s->narrivals = s->arrival_bytes = 0;
	s->arrivals_seq = 0;
	json_decref(s->arrival_paths);
	s->arrival_paths = NULL;
	bool stop = atomic_load(&h->stop);
	size_t placed = n && !stop ? arrivals_place(h, as, n) : 0;
	for (size_t i = 0; i < n; i++) {
		if (!as[i].tmp && !stop) /* no host gave it: alone, from any source */
			download_small(h, as[i].path, as[i].vid, as[i].version, as[i].hash,
			               as[i].size, as[i].have ? &as[i].seen : NULL);
		free(as[i].path);
		free(as[i].tmp);
	}
	free(as);
	if (placed)
		log_info("synced %zu small files from the workspace in one batch", placed);
	/* The seq of events with nothing to place is recorded here too, once per
	 * batch of events rather than a write each: a crash replays them, and
	 * applying an event twice changes nothing. */
	if (s->seq_unsaved > seq)
		seq = s->seq_unsaved;
	s->seq_unsaved = 0;
	if (seq > 0 && !stop) /* stopped: the feed gives those events again */
		idx_kv_set(h->db, "seq", seq);
}

static void apply_version(struct host *h, const char *path, int64_t vid, int64_t version,
                          const char *hash, int64_t size)
{
	if (arrival_pending(h, path))
		sync_apply_flush(h); /* its older version first */
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
	/* The planner decides (plan.h); this does what it says. */
	struct plan_state base = sync_base_state(found ? &e : NULL);
	struct plan_state mine =
	    sync_local_state(found ? &e : NULL, local, have ? &st : NULL, true);
	struct plan_state theirs = {.kind = PLAN_FILE, .size = size};
	snprintf(theirs.hash, sizeof theirs.hash, "%s", hash);
	enum plan_conflict conflict;
	struct plan_state want = plan_path(&base, &mine, &theirs, &conflict);
	if (mine.kind == PLAN_FOLDER) {
		/* A folder here (with what is in it) and a file there: the plan
		 * keeps the folder and the workspace's file aside. */
		free(local);
		keep_remote_aside(h, path);
		return;
	}
	if (plan_same(&mine, &theirs)) { /* the folder holds it already */
		bool gone;
		json_t *m = fetch_manifest(h, h->c.curl, path, version, &gone);
		sync_record_local(h, path, &st, vid, version, hash,
		                  m ? json_object_get(m, "chunks") : NULL, false);
		json_decref(m);
		free(local);
		return;
	}
	free(local);
	if (conflict != PLAN_KEEP_LOCAL && !plan_same(&want, &theirs)) {
		/* The new version holds what the index has: the local edit (or
		 * delete) stands, and goes up on the new version. No way is made
		 * for it: a file here where its folders were (the user replaced
		 * the folder) is the user's latest, not a conflict. */
		e.version_id = vid;
		e.version = version;
		idx_put(h->db, path, &e);
		host_mark_dirty(h, path, 0);
		return;
	}
	if (!make_way(h, path, false))
		return;
	if (conflict == PLAN_KEEP_LOCAL) {
		if (!keep_as_conflict(h, path))
			return;
		have = false;
	}
	if (!host_room_for(h, path, size)) {
		/* reported; a resync tries again later, after a restart too */
		idx_kv_set(h->db, "no_space", 1);
		return;
	}
	/* A file within the minimum chunk size is one chunk named by the
	 * file's hash: no need to ask for its manifest, and it goes with
	 * others (arrival_add). */
	if (size > 0 && size <= (int64_t)h->c.chunking.min) {
		arrival_add(h, path, vid, version, hash, size, have ? &st : NULL);
		return;
	}
	if (size == 0) {
		download_small(h, path, vid, version, hash, size, have ? &st : NULL);
		return;
	}
	bool gone = false;
	json_t *m = fetch_manifest(h, h->c.curl, path, version, &gone);
	if (m ? !download_to(h, path, m, have ? &st : NULL) : !gone)
		sync_fetch_later(h, path); /* no source, or the hub is away */
	else if (gone)
		gone_remember(h, path);
	json_decref(m);
}

void sync_fetch_later(struct host *h, const char *path)
{
	/* The feed's seq moves past this file's event all the same: the mark
	 * makes the next start run the tree pass if the agent stops (or is
	 * killed) before the retry gets the bytes. */
	if (!h->sync->refetch_marked) {
		idx_kv_set(h->db, "refetch", 1);
		h->sync->refetch_marked = true;
	}
	json_object_set_new(h->sync->refetch, path, json_true());
	host_mark_dirty(h, path, retry_next_ms(&h->sync->retry));
}

void sync_refetch(struct host *h, const char *path)
{
	json_object_del(h->sync->refetch, path);
	bool gone = false;
	json_t *m = fetch_manifest(h, h->c.curl, path, 0, &gone);
	if (!m) {
		if (!gone)
			sync_fetch_later(h, path);
		else /* deleted or moved there since: its event does the rest */
			gone_remember(h, path);
		return;
	}
	const char *hash = json_get_str(m, "hash");
	int64_t vid = 0, version = 0, size = 0;
	if (hash_hex_valid(hash) && json_get_int(m, "version_id", &vid) &&
	    json_get_int(m, "version", &version) && json_get_int(m, "size", &size)) {
		apply_version(h, path, vid, version, hash, size);
		sync_apply_flush(h); /* a small file waits in the arrivals otherwise */
	}
	json_decref(m);
}

void sync_resolve_conflict(struct host *h, const char *path, const char *local,
                           const struct stat *st, bool retried)
{
	bool gone = false;
	json_t *m = fetch_manifest(h, h->c.curl, path, 0, &gone);
	if (!m) {
		if (gone && !retried) /* deleted there while edited here: keep ours */
			sync_upload(h, path, local, st, 0, true);
		else
			host_mark_dirty(h, path, retry_next_ms(&h->sync->retry));
		return;
	}
	const char *want = json_get_str(m, "hash");
	struct ientry e;
	int found = idx_get(h->db, path, &e) == 1;
	struct plan_state base = sync_base_state(found ? &e : NULL), mine = {.kind = PLAN_FILE},
	                  theirs = {.kind = PLAN_FILE};
	if (sync_hash_file(local, mine.hash) != 0)
		mine.hash[0] = 0; /* unreadable: equal to nothing */
	snprintf(theirs.hash, sizeof theirs.hash, "%s", want ? want : "-");
	enum plan_conflict conflict;
	struct plan_state plan = plan_path(&base, &mine, &theirs, &conflict);
	int64_t vid = json_integer_value(json_object_get(m, "version_id"));
	if (plan_same(&mine, &theirs)) {
		sync_record_local(h, path, st, vid,
		                  json_integer_value(json_object_get(m, "version")), want,
		                  json_object_get(m, "chunks"), false);
	} else if (conflict == PLAN_NO_CONFLICT && plan_same(&plan, &mine) && !retried) {
		/* The version that got there first holds what this edit started
		 * from (the same bytes committed again): the edit goes on it. */
		sync_upload(h, path, local, st, vid, true);
	} else if (keep_as_conflict(h, path)) {
		download_to(h, path, m, NULL);
	}
	json_decref(m);
}

/* The hub refused the grant of a file taken through a write URL: whoever
 * uploaded it may no longer write it, so the upload is void. The workspace's
 * version comes back (a new file goes); the grant is kept until then, so the
 * file never goes up as this host's own edit. */
void sync_void_upload(struct host *h, const char *path, const char *local, const struct stat *st)
{
	log_warn("%s came through a write URL whose uploader may no longer write it; "
	         "restoring the workspace's version",
	         path);
	bool gone = false;
	json_t *m = fetch_manifest(h, h->c.curl, path, 0, &gone);
	if (m ? download_to(h, path, m, st) : gone && unlink(local) == 0)
		host_grant_set(h, path, NULL);
	else
		host_mark_dirty(h, path, retry_next_ms(&h->sync->retry));
	json_decref(m);
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
	             path);
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
			db_run(h->db, "DELETE FROM chunks WHERE path = ?", path);
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
	struct plan_state gone = {.kind = PLAN_ABSENT}, base = sync_base_state(&e), mine;
	enum plan_conflict conflict;
	bool here = lstat(local, &st) == 0;
	mine = sync_local_state(&e, local, here ? &st : NULL, false);
	struct plan_state want = plan_path(&base, &mine, &gone, &conflict);
	if (!here || !e.local) {
		idx_del(h->db, path);
	} else if (want.kind == PLAN_ABSENT) {     /* unchanged here: the delete applies */
		sync_keep_replaced(h, path, NULL); /* in the trash, restorable */
		json_t *dropped = sync_chunks_released(h, path, NULL);
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
	/* A file's delete where the index has a folder, or the reverse: the echo
	 * of this host's own delete of what the user replaced here, come after
	 * the replacement went up (the hub deletes only what it has, and any
	 * other change there comes as an event before this one). Applied, it
	 * took the new folder from the index with all in it (the echo of its
	 * file then made way for it: a conflict copy of the user's new file), or
	 * deleted the new file here and so on the hub. */
	json_decref(gone_take(h, path));
	struct ientry here;
	if (idx_get(h->db, path, &here) == 1 && here.dir != is_dir)
		return;
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

/* The version a file's move names (the hub's, at the move), at its new path:
 * a version this host had not fetched when the file moved was gone from its
 * old path by the time its manifest was asked for (never fetched, and the
 * hosts kept the old one at the new path for good). */
static void moved_version(struct host *h, const char *to, json_t *pl)
{
	int64_t vid = 0, version = 0, size = 0;
	const char *hash = json_get_str(pl, "hash");
	if (!hash_hex_valid(hash) || !json_get_int(pl, "version_id", &vid) ||
	    !json_get_int(pl, "version", &version) || !json_get_int(pl, "size", &size))
		return;                                 /* a folder's move, or an older hub's */
	apply_version(h, to, vid, version, hash, size); /* returns if we have it */
}

static void apply_move(struct host *h, const char *from, const char *to, bool is_dir, json_t *pl)
{
	struct ientry fe, te;
	if (!is_dir) /* its version, if missed, is the move's (moved_version) */
		json_decref(gone_take(h, from));
	bool known = idx_get(h->db, from, &fe) == 1;
	if (known && fe.dir != is_dir) {
		/* Not what we have there (our folder, where the workspace had a
		 * file it moves aside: keep_remote_aside): look at the tree. */
		pthread_mutex_lock(&h->mu);
		h->resync = true;
		pthread_mutex_unlock(&h->mu);
		return;
	}
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
	/* The echo of a move this host made itself, after a stale creation event
	 * (its own upload's, delivered late: after a feed reconnect, or a feed
	 * not yet connected at start) put the file back at from: to already holds
	 * that very version, or a newer one this host sent since (an editor's
	 * save: a temp name, renamed, then saved again). The hub moves only onto
	 * a free path and events come in order, so a version at to newer than
	 * from's can only be this file's: from is a stale copy to drop (kept if
	 * edited here since), not a conflict to keep beside it. */
	if (!fe.dir && fe.version_id && idx_get(h->db, to, &te) == 1 && !te.dir &&
	    te.version_id >= fe.version_id) {
		remove_local_file(h, from);
		moved_version(h, to, pl);
		atomic_store(&h->last_sync, now_ms());
		return;
	}
	char *lf = host_local(h, from), *lt = host_local(h, to);
	struct stat st, fst;
	if (lstat(lt, &st) == 0 && !fe.dir && stat_matches(&fe, &st) && lstat(lf, &fst) != 0 &&
	    errno == ENOENT) {
		/* The user made this very move here (the same inode, untouched),
		 * and its own report of it is still queued or its answer was lost
		 * (the hub killed after the commit): the move is done, nothing is in
		 * conflict. Without this the file was set aside as a conflict copy of
		 * itself and the path left empty. */
		idx_rename(h->db, from, to);
		log_info("moved %s to %s (done here already)", from, to);
		moved_version(h, to, pl);
		atomic_store(&h->last_sync, now_ms());
		free(lf);
		free(lt);
		return;
	}
	/* A case-only rename on a case-blind file system finds the file itself
	 * at to: no conflict with itself. */
	bool at_to = lstat(lt, &st) == 0;
	bool itself =
	    at_to && lstat(lf, &fst) == 0 && st.st_ino == fst.st_ino && st.st_dev == fst.st_dev;
	if (at_to && !itself) {
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
		sync_own_rename(h, from, to);
	else if (errno != ENOENT)
		log_error("move %s -> %s: %s", from, to, strerror(errno));
	idx_rename(h->db, from, to);
	log_info("moved %s to %s (from the workspace)", from, to);
	if (!is_dir)
		moved_version(h, to, pl);
	else
		gone_moved(h, from, to);
	atomic_store(&h->last_sync, now_ms());
	free(lf);
	free(lt);
}

static void apply_mkdir(struct host *h, const char *path)
{
	if (host_policy(h, path) != POL_PINNED)
		return;
	struct ientry e;
	if (idx_get(h->db, path, &e) == 1 && e.dir)
		return; /* agreed already (our own folder's echo): a file here now is the
		           user's replacement, which goes up (local_replaced) */
	if (!make_way(h, path, true))
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
	/* Our batch in flight is applied before a change that may touch it. */
	if (strcmp(kind, "file.version") != 0 || !path || sync_in_flight(h, path))
		sync_settle(h);
	if (strcmp(kind, "file.version") != 0)
		sync_apply_flush(h); /* what comes next sees the files before it */
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
		apply_move(h, from, to, kind[1] == 'o', pl);
	} else if (strcmp(kind, "folder.created") == 0 && path) {
		apply_mkdir(h, path);
	} else if (strcmp(kind, "scrub.requested") == 0) {
		int64_t asked = 0;
		json_get_int(pl, "requested_at", &asked);
		host_scrub_request(h, asked, true);
	} else if (strcmp(kind, "workspace.updated") == 0 && json_object_get(pl, "chunking")) {
		host_apply_chunking(h, json_object_get(pl, "chunking"));
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
	if (h->sync->narrivals)
		h->sync->arrivals_seq = seq; /* recorded once they are placed */
	else
		h->sync->seq_unsaved = seq; /* recorded by the next sync_apply_flush */
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
	long st = sync_hub_call(h, "GET", "/tree", NULL, NULL, &tree);
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
	/* This pass fetches whatever a failed download left behind; a failure
	 * in it marks again (sync_fetch_later). */
	idx_kv_set(h->db, "refetch", 0);
	h->sync->refetch_marked = false;
	json_object_clear(h->sync->gone); /* the pass fetches what they missed */
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
	sync_apply_flush(h);
	return seq;
}
