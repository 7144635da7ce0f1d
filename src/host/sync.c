/* sync: the sync thread's state (struct sync, see sync.h for the rules and
 * the other sync files) and what every part of it uses: the retry delays,
 * stat comparison and hashing, calls to the hub, and the renames this host
 * made itself. Only the sync thread touches any of it. */
#include "sync.h"
#include "../core/chunker.h"
#include "../core/json.h"
#include "../core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Failed work is tried again after a delay that doubles with each failure in
 * a row (1 s up to a minute), with jitter so many hosts don't retry in step. */
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000
#define RETRY_JITTER 0.5 /* each delay drawn from [half, all] of it */

struct sync *sync_new(void)
{
	struct sync *s = xcalloc(1, sizeof(struct sync));
	retry_init(&s->retry, RETRY_MIN_MS, RETRY_MAX_MS, RETRY_JITTER);
	s->refetch = json_object();
	s->gone = json_object();
	return s;
}

void sync_free(struct sync *s)
{
	if (!s)
		return;
	json_decref(s->refetch);
	json_decref(s->gone);
	for (struct own_rename *o = s->own_renames, *next; o; o = next) {
		next = o->next;
		free(o->from);
		free(o->to);
		free(o);
	}
	for (size_t i = 0; i < s->nsmall; i++) {
		free(s->smalls[i].path);
		free(s->smalls[i].data);
	}
	free(s->smalls);
	for (int i = 0; i < COMMITS_IN_FLIGHT; i++)
		if (s->commit_curl[i])
			curl_easy_cleanup(s->commit_curl[i]);
	free(s);
}

#define OWN_RENAME_TTL_MS 60000 /* a rename of ours not reported by then never will be */

bool sync_same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_ino == b->st_ino &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

int sync_hash_file(const char *local, char out[HASH_HEX_LEN + 1])
{
	int fd = open(local, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	int rc = hash_fd_hex(fd, out);
	close(fd);
	return rc;
}

struct plan_state sync_base_state(const struct ientry *e)
{
	struct plan_state s = {.kind = PLAN_ABSENT};
	if (e && e->dir) {
		s.kind = PLAN_FOLDER;
	} else if (e && e->local) {
		s.kind = PLAN_FILE;
		s.size = e->size;
		s.mtime_ns = e->mtime_ns;
		snprintf(s.hash, sizeof s.hash, "%s", e->hash);
	}
	return s;
}

struct plan_state sync_local_state(const struct ientry *e, const char *local, const struct stat *st,
                                   bool hash)
{
	struct plan_state s = {.kind = PLAN_ABSENT};
	if (!st)
		return s;
	if (S_ISDIR(st->st_mode)) {
		s.kind = PLAN_FOLDER;
		return s;
	}
	s.kind = PLAN_FILE;
	s.size = st->st_size;
	s.mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	if (e && S_ISREG(st->st_mode) && stat_matches(e, st))
		snprintf(s.hash, sizeof s.hash, "%s", e->hash);
	else if (S_ISREG(st->st_mode) && hash && sync_hash_file(local, s.hash) != 0)
		s.hash[0] = 0;
	return s;
}

/* The chunks path's last recorded content held that no other local file, the
 * cache or keep (the new content, or NULL) holds: to report dropped. */
json_t *sync_chunks_released(struct host *h, const char *path, json_t *keep)
{
	json_t *out = json_array();
	struct db_stmt *q =
	    db_query(h->db,
	             "SELECT DISTINCT c.hash FROM chunks c WHERE c.path = ?1 AND NOT "
	             "EXISTS (SELECT 1 FROM chunks o JOIN files f ON f.path = o.path "
	             "WHERE o.hash = c.hash AND o.path <> ?1 AND f.local = 1)",
	             path);
	while (q && db_step(q) == DB_ROW) {
		const char *hash = db_col_text(q, 0);
		bool kept = store_size(h->cache, hash) > 0;
		size_t i;
		json_t *c;
		json_array_foreach(keep, i, c) kept =
		    kept || strcmp(json_get_str(c, "hash"), hash) == 0;
		if (!kept)
			json_array_append_new(out, json_pack("{s:s}", "hash", hash));
	}
	db_finalize(q);
	return out;
}

void sync_keep_replaced(struct host *h, const char *path, json_t *keep)
{
	if (!atomic_load(&h->storage_hosts))
		return;
	json_t *gone = sync_chunks_released(h, path, keep);
	char *local = host_local(h, path);
	int fd = json_array_size(gone) ? open(local, O_RDONLY | O_CLOEXEC) : -1;
	size_t i;
	json_t *c;
	json_array_foreach(fd >= 0 ? gone : NULL, i, c)
	{
		const char *hash = json_get_str(c, "hash");
		int64_t off = -1, size = 0;
		struct db_stmt *q = db_query(
		    h->db, "SELECT off, size FROM chunks WHERE path = ? AND hash = ? LIMIT 1", path,
		    hash);
		if (q && db_step(q) == DB_ROW) {
			off = db_col_int64(q, 0);
			size = db_col_int64(q, 1);
		}
		db_finalize(q);
		if (off < 0 || size <= 0 || size > (int64_t)CHUNK_MAX_LIMIT)
			continue;
		uint8_t *buf = xmalloc((size_t)size);
		char got[HASH_HEX_LEN + 1];
		/* A file changed here since it was indexed is not the old content. */
		bool whole = pread(fd, buf, (size_t)size, (off_t)off) == (ssize_t)size;
		if (whole)
			hash_hex(buf, (size_t)size, got);
		if (whole && strcmp(got, hash) == 0 &&
		    store_put(h->cache, buf, (size_t)size, got) == 0) {
			idx_cache_touch(h->db, hash, size);
			idx_cache_pin(h->db, hash, true);
		}
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	free(local);
	json_decref(gone);
}

/* ---- talking to the hub ---- */

long sync_hub_call(struct host *h, const char *method, const char *rel, const char *path_arg,
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
 * sent to the hub. */

void sync_own_rename(struct host *h, const char *from, const char *to)
{
	struct own_rename *o = xcalloc(1, sizeof *o);
	o->from = xstrdup(from);
	o->to = xstrdup(to);
	o->at = mono_ms();
	o->next = h->sync->own_renames;
	h->sync->own_renames = o;
}

bool sync_was_own_rename(struct host *h, const char *from, const char *to)
{
	bool found = false;
	int64_t now = mono_ms();
	for (struct own_rename **pp = &h->sync->own_renames; *pp;) {
		struct own_rename *o = *pp;
		bool match = !found && strcmp(o->from, from) == 0 && strcmp(o->to, to) == 0;
		if (match || now - o->at > OWN_RENAME_TTL_MS) {
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
