/* jobs/evict: the hub's store as a bounded cache for 'hosts' workspaces
 * (docs/jobs.md). Per such workspace, while the hub holds more than
 * hub_cache_bytes of its chunks, the least recently used one goes — but only
 * one that every workspace granting it can do without: each is in 'hosts'
 * mode and has min_replicas verified copies (HOSTS_COPIES_SQL: in 'hosts'
 * mode those are its own hosts'). A chunk shared
 * with a 'hub' workspace is that workspace's storage: never evicted, and not
 * counted against the cache. chunk_replicas(holder 'hub').updated_at is the
 * last use (the hub touches it when it serves from the cache).
 *
 * The fence: a chunk used, claimed by a commit (grant touched_at) or fetched
 * within EVICT_FENCE_MS is not a candidate, and the eviction re-checks all of
 * it inside one transaction that first locks the chunk's grants, deletes the
 * 'hub' replica row, unlinks the object and then commits. A commit or a
 * reader that touched a row first makes the eviction wait and re-check (on
 * PostgreSQL the row locks order them; on SQLite writers are serialized), so
 * it finds the chunk used and keeps it. One that comes after finds the row
 * gone: a 'hub' commit's store check fails (409 missing_chunks, the client
 * sends it again), a reader falls back to hosts. Every byte read is verified,
 * so no one ever gets a wrong one.
 *
 * Threads: the replicate job's (job.h). */
#include "job.h"
#include "../hosts/hosts.h"
#include "../../core/hash.h"
#include "../../core/json.h"
#include "../../core/util.h"

#include <errno.h>
#include <stdio.h>

#define EVICT_FENCE_MS 5000ll /* used, claimed or fetched this recently: kept */
#define EVICT_BATCH    256

/* SQL (params: fence, now): no workspace granting chunk `hash` still needs
 * the hub's copy: each is in 'hosts' mode, where the hub's copy does not
 * count, and has min_replicas verified copies by the one rule (hosts.h). */
#define EVICTABLE_SQL(hash)                                                                        \
	"NOT EXISTS (SELECT 1 FROM workspace_chunks g2 JOIN workspaces w2 ON w2.id = "             \
	"g2.workspace_id WHERE g2.chunk_hash = " hash " AND (w2.storage <> 'hosts' OR "            \
	"g2.touched_at >= ? OR " HOSTS_COPIES_SQL(hash, "w2") " < w2.min_replicas))"

/* Evict one chunk if it still may go. 1 evicted, 0 kept, <0 error. */
static int evict_one(struct job *j, const char *hash, int64_t fence, int64_t now)
{
	struct db *db = j->c->db;
	int64_t one = 0;
	if (db_begin(db) != DB_DONE)
		return -EIO;
	/* Lock the grants: a commit claiming one goes first, or waits for us. */
	int rc = db_run(
	    db, "UPDATE workspace_chunks SET touched_at = touched_at WHERE chunk_hash = ?", hash);
	int fenced = rc == DB_DONE ? job_gc_fenced(j) : DB_ERR;
	if (fenced != DB_DONE) { /* a backup copying its snapshot: the cache stays */
		db_rollback(db);
		return fenced == DB_ROW ? 0 : -EIO;
	}
	if (rc == DB_DONE)
		rc = db_int64(db, &one,
		              "DELETE FROM chunk_replicas WHERE chunk_hash = ? AND holder = 'hub' "
		              "AND state = 'ok' AND updated_at < ? AND " EVICTABLE_SQL(
		                  "chunk_replicas.chunk_hash") " RETURNING 1",
		              hash, fence, fence, now);
	if (rc != DB_ROW) {
		db_rollback(db);
		return rc == DB_DONE ? 0 : -EIO;
	}
	/* Uploads that put it there are no longer proof it is (ops/commit.c). */
	if (db_run(db, "UPDATE chunk_uploads SET stored_at = NULL WHERE chunk_hash = ?", hash) !=
	    DB_DONE) {
		db_rollback(db);
		return -EIO;
	}
	int gone = store_remove(j->c->store, hash);
	if ((gone != 0 && gone != -ENOENT) || db_commit(db) != DB_DONE) {
		db_rollback(db);
		return -EIO;
	}
	return 1;
}

/* Bytes of workspace ws's chunks in the hub's cache (those shared with a
 * 'hub' workspace are its storage, not cache), or -1. */
static int64_t cached_bytes(struct db *db, int64_t ws)
{
	int64_t n = -1;
	db_int64(db, &n,
	         "SELECT COALESCE(SUM(c.size), 0) FROM workspace_chunks g JOIN chunks c ON c.hash "
	         "= g.chunk_hash JOIN chunk_replicas cr ON cr.chunk_hash = g.chunk_hash AND "
	         "cr.holder = 'hub' AND cr.state = 'ok' WHERE g.workspace_id = ? AND NOT EXISTS "
	         "(SELECT 1 FROM workspace_chunks g2 JOIN workspaces w2 ON w2.id = "
	         "g2.workspace_id WHERE g2.chunk_hash = g.chunk_hash AND w2.storage <> 'hosts')",
	         ws);
	return n;
}

/* Evict workspace ws's least recently used chunks until it has at most cap
 * bytes cached or nothing more may go. */
static enum job_result evict_workspace(struct job *j, int64_t ws, int64_t cap)
{
	int64_t total = cached_bytes(j->c->db, ws);
	if (total < 0)
		return JOB_DB_ERR;
	while (total > cap) {
		int64_t now = now_ms(), fence = now - EVICT_FENCE_MS;
		struct db_stmt *st = db_query(
		    j->c->db,
		    "SELECT c.hash, c.size FROM workspace_chunks g JOIN chunks c ON c.hash = "
		    "g.chunk_hash JOIN chunk_replicas cr ON cr.chunk_hash = c.hash AND cr.holder = "
		    "'hub' AND cr.state = 'ok' WHERE g.workspace_id = ? AND cr.updated_at < ? "
		    "AND " EVICTABLE_SQL("c.hash") " ORDER BY cr.updated_at, c.hash LIMIT ?",
		    ws, fence, fence, now, (int64_t)EVICT_BATCH);
		if (!st)
			return JOB_DB_ERR;
		char hashes[EVICT_BATCH][HASH_HEX_LEN + 1];
		int64_t sizes[EVICT_BATCH];
		int n = 0, step;
		while (n < EVICT_BATCH && (step = db_step(st)) == DB_ROW) {
			snprintf(hashes[n], sizeof hashes[0], "%s", db_col_text(st, 0));
			sizes[n++] = db_col_int64(st, 1);
		}
		db_finalize(st);
		if (step == DB_ERR)
			return JOB_DB_ERR;
		int64_t evicted = 0;
		for (int i = 0; i < n && total > cap; i++) {
			int rc = evict_one(j, hashes[i], fence, now);
			if (rc < 0)
				return JOB_DB_ERR;
			if (rc == 0)
				continue;
			total -= sizes[i];
			evicted++;
			job_cur_add(j, "chunks_evicted", 1);
			job_cur_add(j, "bytes_evicted", sizes[i]);
		}
		if (!job_lease_renew(j))
			return JOB_LEASE_LOST;
		if (n < EVICT_BATCH || !evicted)
			break; /* the rest may not go yet: too few host copies, or in use */
	}
	if (total > cap)
		job_cur_add(j, "cache_bytes_over", total - cap);
	return JOB_OK;
}

enum job_result job_evict(struct job *j)
{
	struct db_stmt *st = db_query(j->c->db, "SELECT id, hub_cache_bytes FROM workspaces WHERE "
	                                        "storage = 'hosts' ORDER BY id");
	int64_t ws[256], cap[256];
	int n = 0;
	while (st && n < 256 && db_step(st) == DB_ROW) {
		ws[n] = db_col_int64(st, 0);
		cap[n++] = db_col_int64(st, 1);
	}
	db_finalize(st);
	if (!st)
		return JOB_DB_ERR;
	for (int i = 0; i < n; i++) {
		int64_t before = job_cur_int(j, "chunks_evicted");
		enum job_result rc = evict_workspace(j, ws[i], cap[i]);
		if (rc != JOB_OK)
			return rc;
		int64_t evicted = job_cur_int(j, "chunks_evicted") - before;
		if (evicted)
			job_audit(j->c->db, ws[i], "cache.evict", NULL,
			          json_pack("{s:I}", "chunks", (json_int_t)evicted));
	}
	return JOB_OK;
}
