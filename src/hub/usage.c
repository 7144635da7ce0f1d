/* usage: GET usage — a workspace's logical and stored bytes, files, versions
 * and chunks — with a bound on what it costs.
 *
 * The stored bytes are the distinct chunks of every version, so the answer
 * reads every version of the workspace (a million files: ~1.1 s of CPU on
 * SQLite). The last answer per (workspace, caller's view) is kept: it is
 * given again while the workspace's change log has not moved; once it has,
 * the answer of a big count (USAGE_BIG versions or more: ~10 ms on either
 * back end) is given again for up to USAGE_STALE_MS (its as_of says when it
 * was counted), and only one request at a time counts it, the others wait for
 * that count. So however often a big workspace is asked, its hub counts it at
 * most every USAGE_STALE_MS; a smaller one is counted afresh after every
 * change. Big is judged by what was counted, not by how long it took: a
 * count that waited for a CPU on a busy machine is not a big one.
 *
 * Threads: request threads; the cache is the process's, under its mutex. */
#include "hub.h"
#include "acl.h"
#include "api.h"
#include "limits.h"
#include "members.h"
#include "../core/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define USAGE_SLOTS    64
#define USAGE_BIG      10000
#define USAGE_STALE_MS 30000

struct usage {
	int64_t logical, stored, chunks, files, versions;
	int64_t read; /* versions the count read: the whole workspace's, for any view */
};

struct usage_slot {
	int64_t ws, user; /* user 0: the whole workspace's view */
	int64_t seq;      /* the change log's head when counted */
	int64_t at;       /* when counted */
	bool busy;        /* being counted now */
	struct usage u;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t counted;
	struct usage_slot s[USAGE_SLOTS];
} cache = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {{0}}};

/* Tests make every count a big one (ROOST_USAGE_BIG=0) to see the bound. */
static int64_t big(void)
{
	const char *v = getenv("ROOST_USAGE_BIG");
	return v && *v ? atoll(v) : USAGE_BIG;
}

/* Usage for a member who may not read every file: of what they may read
 * (the workspace's totals would tell of hidden files). */
static int usage_readable(struct req *r, struct usage *u)
{
	struct acl_sums s;
	/* one row per version, keyed by its id: the version's size */
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT d.path, f.name, v.id, v.size FROM files f JOIN folders d ON d.id = "
	    "f.folder_id JOIN file_versions v ON v.file_id = f.id WHERE f.workspace_id = ? AND "
	    "f.deleted_at IS NULL",
	    r->ws_id);
	if (acl_sum_readable(r, st, 0, &s) != 0)
		return DB_ERR;
	u->logical = s.sum;
	u->versions = s.count;
	u->read = s.read;
	st = db_query(r->db,
	              "SELECT d.path, f.name, f.id, 0 FROM files f JOIN folders d ON d.id = "
	              "f.folder_id WHERE f.workspace_id = ? AND f.deleted_at IS NULL AND "
	              "f.current_version_id IS NOT NULL",
	              r->ws_id);
	if (acl_sum_readable(r, st, 0, &s) != 0)
		return DB_ERR;
	u->files = s.count;
	st =
	    db_query(r->db,
	             "SELECT d.path, f.name, vc.chunk_hash, vc.size FROM files f JOIN folders d ON "
	             "d.id = f.folder_id JOIN file_versions v ON v.file_id = f.id JOIN "
	             "version_chunks vc ON vc.version_id = v.id WHERE f.workspace_id = ? AND "
	             "f.deleted_at IS NULL",
	             r->ws_id);
	if (acl_sum_readable(r, st, 0, &s) != 0)
		return DB_ERR;
	u->stored = s.sum;
	u->chunks = s.count;
	return 0;
}

/* The whole workspace's usage. */
static int usage_all(struct req *r, struct usage *u)
{
	/* logical_bytes is the quota's measure, kept by triggers (limits_used). */
	if (limits_used(r->db, r->ws_id, &u->logical) != 0)
		return DB_ERR;
	struct db_stmt *st = db_query(r->db,
	                              "SELECT COUNT(*), COUNT(DISTINCT f.id) FROM "
	                              "file_versions v JOIN files f ON f.id = v.file_id "
	                              "WHERE f.workspace_id = ? AND f.deleted_at IS NULL",
	                              r->ws_id);
	int rc = st ? db_step(st) : DB_ERR;
	if (rc == DB_ROW) {
		u->read = u->versions = db_col_int64(st, 0);
		u->files = db_col_int64(st, 1);
	}
	db_finalize(st);
	if (rc != DB_ROW)
		return DB_ERR;
	st = db_query(r->db,
	              "SELECT COALESCE(SUM(c.size), 0), COUNT(*) FROM chunks c WHERE c.hash IN ("
	              "SELECT vc.chunk_hash FROM version_chunks vc JOIN file_versions v ON "
	              "v.id = vc.version_id JOIN files f ON f.id = v.file_id "
	              "WHERE f.workspace_id = ?)",
	              r->ws_id);
	rc = st ? db_step(st) : DB_ERR;
	if (rc == DB_ROW) {
		u->stored = db_col_int64(st, 0);
		u->chunks = db_col_int64(st, 1);
	}
	db_finalize(st);
	return rc == DB_ROW ? 0 : DB_ERR;
}

static struct usage_slot *slot_find(int64_t ws, int64_t user)
{
	for (int i = 0; i < USAGE_SLOTS; i++)
		if ((cache.s[i].at || cache.s[i].busy) && cache.s[i].ws == ws &&
		    cache.s[i].user == user)
			return &cache.s[i];
	return NULL;
}

/* A slot for (ws, user): an empty one, else the least recently counted that
 * nobody is counting. NULL when all are busy. */
static struct usage_slot *slot_take(int64_t ws, int64_t user)
{
	struct usage_slot *old = NULL;
	for (int i = 0; i < USAGE_SLOTS; i++) {
		struct usage_slot *s = &cache.s[i];
		if (!s->busy && (!old || s->at < old->at))
			old = s;
	}
	if (old) {
		memset(old, 0, sizeof *old);
		old->ws = ws;
		old->user = user;
	}
	return old;
}

/* The usage to answer with and when it was counted: *u, *at. 0 or DB_ERR. */
static int usage_get(struct req *r, struct usage *u, int64_t *at)
{
	bool all = acl_reads_all(r);
	int64_t seq = 0, user = all ? 0 : r->user_id;
	if (!all && user <= 0) { /* a view the cache cannot name: counted each time */
		*at = now_ms();
		return usage_readable(r, u);
	}
	if (db_int64(r->db, &seq, "SELECT last_seq FROM workspace_counters WHERE workspace_id = ?",
	             r->ws_id) != DB_ROW)
		return DB_ERR;
	pthread_mutex_lock(&cache.mu);
	struct usage_slot *s = slot_find(r->ws_id, user);
	while (s && s->busy) { /* another request is counting it: its answer will do */
		pthread_cond_wait(&cache.counted, &cache.mu);
		s = slot_find(r->ws_id, user);
	}
	int64_t now = now_ms();
	if (s && s->at && (s->seq == seq || (s->u.read >= big() && now - s->at < USAGE_STALE_MS))) {
		*u = s->u;
		*at = s->at;
		pthread_mutex_unlock(&cache.mu);
		return 0;
	}
	if (!s)
		s = slot_take(r->ws_id, user);
	if (s)
		s->busy = true;
	pthread_mutex_unlock(&cache.mu);

	int rc = all ? usage_all(r, u) : usage_readable(r, u);
	*at = now_ms();
	pthread_mutex_lock(&cache.mu);
	if (s) {
		s->busy = false;
		if (rc == 0) {
			s->u = *u;
			s->seq = seq;
			s->at = *at;
		} else {
			s->at = s->ws = 0; /* forgotten */
		}
		pthread_cond_broadcast(&cache.counted);
	}
	pthread_mutex_unlock(&cache.mu);
	return rc;
}

enum MHD_Result api_usage(struct req *r)
{
	struct usage u = {0};
	int64_t at = 0;
	if (usage_get(r, &u, &at) != 0)
		return reply_db_error(r);
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:I, s:I, s:I, s:I, s:I, s:s, s:I}", "logical_bytes",
	                            (json_int_t)u.logical, "stored_bytes", (json_int_t)u.stored,
	                            "chunks", (json_int_t)u.chunks, "files", (json_int_t)u.files,
	                            "versions", (json_int_t)u.versions, "role", role_name(r->role),
	                            "as_of", (json_int_t)at));
}
