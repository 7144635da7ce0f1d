/* jobs/gc: collecting what is no longer kept (docs/jobs.md). Expire old
 * versions (keep_versions / keep_days), purge the trash (trash_days), then
 * delete chunks no version references once they have been unreferenced for
 * gc_retention_s and no member has touched them for the upload lease; then
 * objects the database does not know at all. Each stage resumes at the
 * cursor a lapsed run saved.
 *
 * The GC fence: a commit claims each chunk it references by touching its
 * grant (workspace_chunks.touched_at) inside the commit's transaction, and GC
 * deletes a chunk only inside a transaction that first deletes its grants not
 * touched within the lease and then finds none left and no version using it.
 * On SQLite writers are serialized; on PostgreSQL the two row locks order the
 * transactions and the re-checked touched_at condition keeps a just-claimed
 * grant. Either the commit sees its chunk gone (409 missing_chunks: the client
 * sends it again) or GC sees it claimed — never a version without its bytes.
 * The object is unlinked before GC's transaction commits, so a grant never
 * outlives the bytes it names except for a crash, which reads as missing.
 *
 * Threads: the hub's jobs thread, or a `roost admin gc` process (job.h). */
#include "job.h"
#include "../possess.h"
#include "../ops/ops.h"
#include "../../core/hash.h"
#include "../../core/json.h"
#include "../../core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GC_EVERY_MS            DAY_MS /* how often the hub collects, by default */
#define GC_RETENTION_S_DEFAULT 604800 /* 7 days: workspaces.gc_retention_s's default */
#define HOST_DROP_WAIT_MS      DAY_MS /* hosts told to drop a chunk have this long to say so */

/* The next batch of (id, workspace) pairs a query yields for (after, now,
 * JOB_BATCH). How many, or DB_ERR. */
static int batch_ids(struct db *db, const char *sql, int64_t after, int64_t now, int64_t *ids,
                     int64_t *wss)
{
	struct db_stmt *st = db_query(db, sql, after, now, (int64_t)JOB_BATCH);
	if (!st)
		return DB_ERR;
	int n = 0, step;
	while (n < JOB_BATCH && (step = db_step(st)) == DB_ROW) {
		ids[n] = db_col_int64(st, 0);
		wss[n++] = db_col_int64(st, 1);
	}
	db_finalize(st);
	return step == DB_ERR ? DB_ERR : n;
}

/* Old versions past the workspace's keep_versions and keep_days (a version is
 * kept while it is one of the newest keep_versions or younger than keep_days;
 * the current version always). Files in the trash keep theirs until purged. */
static enum job_result gc_versions(struct job *j)
{
	struct db *db = j->c->db;
	int64_t now = now_ms();
	for (;;) {
		int64_t ids[JOB_BATCH], wss[JOB_BATCH];
		int n = batch_ids(
		    db,
		    "SELECT v.id, f.workspace_id FROM file_versions v JOIN files f ON f.id = "
		    "v.file_id JOIN workspaces w ON w.id = f.workspace_id WHERE v.id > ? AND v.id "
		    "<> "
		    "COALESCE(f.current_version_id, 0) AND f.deleted_at IS NULL AND "
		    "(COALESCE(w.keep_versions, 0) > 0 OR COALESCE(w.keep_days, 0) > 0) AND "
		    "(COALESCE(w.keep_versions, 0) = 0 OR (SELECT COUNT(*) FROM file_versions n "
		    "WHERE "
		    "n.file_id = v.file_id AND n.number > v.number) >= w.keep_versions) AND "
		    "(COALESCE(w.keep_days, 0) = 0 OR v.created_at + CAST(w.keep_days AS BIGINT) * "
		    "86400000 < ?) ORDER BY v.id LIMIT ?",
		    job_cur_int(j, "after_version"), now, ids, wss);
		if (n < 0)
			return JOB_DB_ERR;
		for (int i = 0; i < n; i++) {
			if (db_begin(db) != DB_DONE)
				return JOB_DB_ERR;
			if (op_drop_version(db, ids[i], now) != DB_DONE ||
			    db_commit(db) != DB_DONE) {
				db_rollback(db);
				return JOB_DB_ERR;
			}
			job_audit(db, wss[i], "version.expire", NULL,
			          json_pack("{s:I}", "version_id", (json_int_t)ids[i]));
		}
		if (n)
			json_object_set_new(j->cur, "after_version", json_integer(ids[n - 1]));
		job_cur_add(j, "versions_expired", n);
		if (!job_lease_renew(j))
			return JOB_LEASE_LOST;
		if (n < JOB_BATCH)
			return JOB_OK;
	}
}

/* A deleted workspace whose files are all purged gives up its grants and
 * pending uploads: its chunks are then collected as nobody's. */
static enum job_result gc_deleted_workspaces(struct db *db)
{
	const char *gone = "SELECT w.id FROM workspaces w WHERE w.deleted_at IS NOT NULL AND NOT "
	                   "EXISTS (SELECT 1 FROM files f WHERE f.workspace_id = w.id AND "
	                   "f.purged_at IS NULL)";
	char *grants = xasprintf("DELETE FROM workspace_chunks WHERE workspace_id IN (%s)", gone);
	char *uploads = xasprintf("DELETE FROM chunk_uploads WHERE workspace_id IN (%s)", gone);
	int rc = db_exec(db, grants) == DB_DONE && db_exec(db, uploads) == DB_DONE;
	free(grants);
	free(uploads);
	return rc ? JOB_OK : JOB_DB_ERR;
}

/* Files deleted more than trash_days ago lose their versions for good (the
 * row stays as a tombstone with purged_at), and so does every file of a
 * deleted workspace, whose grants then go too. */
static enum job_result gc_trash(struct job *j)
{
	struct db *db = j->c->db;
	int64_t now = now_ms();
	for (;;) {
		int64_t ids[JOB_BATCH], wss[JOB_BATCH];
		int n = batch_ids(
		    db,
		    "SELECT f.id, f.workspace_id FROM files f JOIN workspaces w ON w.id = "
		    "f.workspace_id WHERE f.id > ? AND f.purged_at IS NULL AND ((f.deleted_at IS "
		    "NOT "
		    "NULL AND f.deleted_at + CAST(w.trash_days AS BIGINT) * 86400000 < ?) OR "
		    "w.deleted_at IS NOT NULL) ORDER BY f.id LIMIT ?",
		    job_cur_int(j, "after_file"), now, ids, wss);
		if (n < 0)
			return JOB_DB_ERR;
		for (int i = 0; i < n; i++) {
			if (db_begin(db) != DB_DONE)
				return JOB_DB_ERR;
			struct db_stmt *vs =
			    db_query(db, "SELECT id FROM file_versions WHERE file_id = ?", ids[i]);
			int64_t vids[64];
			int nv = 0, rc = vs ? DB_DONE : DB_ERR;
			bool more = false;
			while (vs && db_step(vs) == DB_ROW) {
				if (nv < 64)
					vids[nv++] = db_col_int64(vs, 0);
				else
					more = true;
			}
			db_finalize(vs);
			for (int k = 0; k < nv && rc == DB_DONE; k++)
				rc = op_drop_version(db, vids[k], now);
			if (rc == DB_DONE && !more)
				rc = db_run(
				    db,
				    "UPDATE files SET purged_at = ?, current_version_id = NULL "
				    "WHERE id = ?",
				    now, ids[i]);
			if (rc != DB_DONE || db_commit(db) != DB_DONE) {
				db_rollback(db);
				return JOB_DB_ERR;
			}
			if (more) { /* a file with many versions: the rest on the next pass */
				i--;
				continue;
			}
			job_audit(db, wss[i], "trash.purge", NULL,
			          json_pack("{s:I}", "file_id", (json_int_t)ids[i]));
		}
		if (n)
			json_object_set_new(j->cur, "after_file", json_integer(ids[n - 1]));
		job_cur_add(j, "files_purged", n);
		if (!job_lease_renew(j))
			return JOB_LEASE_LOST;
		if (n < JOB_BATCH)
			return gc_deleted_workspaces(db);
	}
}

/* How long chunk hash stays after it lost its last reference: the run's
 * --retention, else the longest gc_retention_s of the workspaces holding it. */
static int64_t retention_of(struct job *j, const char *hash)
{
	if (j->c->retention_ms >= 0)
		return j->c->retention_ms;
	int64_t s = GC_RETENTION_S_DEFAULT;
	db_int64(j->c->db, &s,
	         "SELECT COALESCE(MAX(w.gc_retention_s), " STRINGIFY(
	             GC_RETENTION_S_DEFAULT) ") FROM workspace_chunks wc JOIN "
	                                     "workspaces w ON w.id = wc.workspace_id WHERE "
	                                     "wc.chunk_hash = ?",
	         hash);
	return s * 1000;
}

int job_gc_fenced(struct job *j)
{
	int64_t one = 0;
	int rc = db_int64(j->c->db, &one, "SELECT 1 FROM gc_fences WHERE expires_at > ? LIMIT 1",
	                  now_ms());
	if (rc == DB_ROW)
		job_cur_add(j, "backup_fenced", 1);
	return rc;
}

/* Delete chunk hash if nothing claims it: grants not touched since
 * lease_cutoff go, and if none is left and no version uses it, so do its
 * object, replica rows and row (*deleted: whether it went). */
static enum job_result delete_chunk(struct job *j, const char *hash, int64_t lease_cutoff,
                                    int64_t *bytes, bool *deleted)
{
	*deleted = false;
	struct db *db = j->c->db;
	int64_t one = 0, size = 0;
	db_set_relaxed(db, true); /* losing this in a crash only leaves a chunk to collect again */
	if (db_begin(db) != DB_DONE) {
		db_set_relaxed(db, false);
		return JOB_DB_ERR;
	}
	/* A backup copying its snapshot's chunks fences every deletion: its
	 * snapshot came after the fence, so a chunk it names is kept until it is
	 * done; one this transaction deletes unfenced is named by no version it
	 * could see (the grant fence above orders commits against us). */
	int fenced = job_gc_fenced(j);
	if (fenced != DB_DONE) {
		db_rollback(db);
		db_set_relaxed(db, false);
		return fenced == DB_ROW ? JOB_OK : JOB_DB_ERR;
	}
	int rc = db_run(db, "DELETE FROM workspace_chunks WHERE chunk_hash = ? AND touched_at < ?",
	                hash, lease_cutoff);
	int claimed = rc == DB_DONE
	                  ? db_int64(db, &one,
	                             "SELECT 1 FROM workspace_chunks WHERE chunk_hash = ? "
	                             "UNION ALL SELECT 1 FROM version_chunks WHERE "
	                             "chunk_hash = ? LIMIT 1",
	                             hash, hash)
	                  : DB_ERR;
	if (claimed != DB_DONE) {
		db_rollback(db);
		db_set_relaxed(db, false);
		return claimed == DB_ROW ? JOB_OK : JOB_DB_ERR;
	}
	/* (an S3 store: the recorded size, not a HEAD request per chunk) */
	if (!store_is_remote(j->c->store))
		size = store_size(j->c->store, hash);
	else if (db_int64(db, &size, "SELECT size FROM chunks WHERE hash = ?", hash) != DB_ROW)
		size = 0;
	int gone = store_remove(j->c->store, hash);
	if (gone != 0 && gone != -ENOENT) {
		db_rollback(db);
		db_set_relaxed(db, false);
		return JOB_STORE_ERR;
	}
	if (db_run(db, "DELETE FROM chunk_uploads WHERE chunk_hash = ?", hash) != DB_DONE ||
	    db_run(db, "DELETE FROM chunk_replicas WHERE chunk_hash = ?", hash) != DB_DONE ||
	    db_run(db, "DELETE FROM chunks WHERE hash = ?", hash) != DB_DONE ||
	    db_commit(db) != DB_DONE) {
		db_rollback(db);
		db_set_relaxed(db, false);
		return JOB_DB_ERR;
	}
	db_set_relaxed(db, false);
	*bytes += size > 0 ? size : 0;
	*deleted = true;
	return JOB_OK;
}

/* Hosts that keep chunk hash (cache, assigned copies) drop it before it is
 * deleted: their rows become 'released', the heartbeat's answer lists them to
 * drop, and each host reports it dropped (its row goes). *wait: some host of
 * a live workspace has not done so yet, for at most HOST_DROP_WAIT_MS. A host
 * offline longer never sees the drop list; its cache sweep (at start and on
 * chunks.collected) asks hosts/self/replicas which pinned copies the
 * workspace let go of, and drops those (host/replica.c). */
/* Hosts that still sync a workspace: not revoked, their workspace not deleted
 * (such a host stopped syncing and is told nothing more). */
#define LIVE_HOSTS                                                                                 \
	"SELECT h.id FROM hosts h JOIN workspaces w ON w.id = h.workspace_id WHERE h.revoked_at "  \
	"IS NULL AND w.deleted_at IS NULL"

static int hosts_to_drop(struct job *j, const char *hash, int64_t now, bool *wait)
{
	int64_t told = 0, waiting = 0;
	int rc = db_int64(j->c->db, &told,
	                  "SELECT COUNT(*) FROM chunk_replicas WHERE chunk_hash = ? AND host_id IN "
	                  "(" LIVE_HOSTS ") AND state <> 'released'",
	                  hash);
	if (rc == DB_ROW && told)
		rc = db_run(j->c->db,
		            "UPDATE chunk_replicas SET state = 'released', updated_at = ? WHERE "
		            "chunk_hash = ? AND host_id IS NOT NULL AND state <> 'released'",
		            now, hash) == DB_DONE
		         ? DB_ROW
		         : DB_ERR;
	if (rc == DB_ROW)
		rc =
		    db_int64(j->c->db, &waiting,
		             "SELECT COUNT(*) FROM chunk_replicas WHERE chunk_hash = ? AND host_id "
		             "IN (" LIVE_HOSTS ") AND state = 'released' AND updated_at > ?",
		             hash, now - HOST_DROP_WAIT_MS);
	if (rc != DB_ROW)
		return DB_ERR;
	job_cur_add(j, "host_copies_dropping", told);
	*wait = waiting > 0;
	return DB_DONE;
}

/* Run delete_chunk over the hashes a query yields (cursor "after_<key>"). */
static enum job_result gc_hashes(struct job *j, const char *key, const char *sql, bool committed)
{
	char after_key[32];
	snprintf(after_key, sizeof after_key, "after_%s", key);
	for (;;) {
		int64_t now = now_ms();
		char after[HASH_HEX_LEN + 1];
		snprintf(after, sizeof after, "%s", job_cur_str(j, after_key));
		struct db_stmt *st = db_query(j->c->db, sql, after, (int64_t)JOB_BATCH);
		if (!st)
			return JOB_DB_ERR;
		char(*hashes)[HASH_HEX_LEN + 1] = xmalloc(JOB_BATCH * sizeof *hashes);
		int64_t unref[JOB_BATCH];
		int n = 0, step;
		while (n < JOB_BATCH && (step = db_step(st)) == DB_ROW) {
			snprintf(hashes[n], sizeof hashes[n], "%s", db_col_text(st, 0));
			unref[n++] = db_col_is_null(st, 1) ? now : db_col_int64(st, 1);
		}
		db_finalize(st);
		if (step == DB_ERR) {
			free(hashes);
			return JOB_DB_ERR;
		}
		int64_t deleted = 0, bytes = 0, kept = 0;
		for (int i = 0; i < n; i++) {
			int64_t keep = retention_of(j, hashes[i]);
			/* Committed chunks count from when they lost their last
			 * reference, and every grant of theirs may go (a commit that
			 * claims one meanwhile is fenced off by the transaction).
			 * Never-committed ones count from their last touch, and an
			 * upload still under way keeps them for the lease. */
			int64_t lease_cutoff =
			    committed ? now + 1
			              : now - (keep > UPLOAD_LEASE_MS ? keep : UPLOAD_LEASE_MS);
			if (committed && unref[i] > now - keep) {
				kept++;
				continue;
			}
			bool wait = false;
			if (committed && hosts_to_drop(j, hashes[i], now, &wait) != DB_DONE) {
				free(hashes);
				return JOB_DB_ERR;
			}
			if (wait) {
				kept++;
				continue;
			}
			bool gone;
			enum job_result rc =
			    delete_chunk(j, hashes[i], lease_cutoff, &bytes, &gone);
			if (rc != JOB_OK) {
				free(hashes);
				return rc;
			}
			deleted += gone;
			kept += !gone;
		}
		if (n)
			json_object_set_new(j->cur, after_key, json_string(hashes[n - 1]));
		free(hashes);
		job_cur_add(j, "chunks_deleted", deleted);
		job_cur_add(j, "bytes_freed", bytes);
		job_cur_add(j, "chunks_kept", kept);
		if (!job_lease_renew(j))
			return JOB_LEASE_LOST;
		if (n < JOB_BATCH)
			return JOB_OK;
	}
}

#define STRAY_BATCH 1000 /* an S3 store deletes this many in one request */

struct stray_scan {
	struct job *j;
	int64_t cutoff, deleted, bytes;
	char (*batch)[HASH_HEX_LEN + 1]; /* an S3 store's strays, deleted together */
	size_t nbatch;
};

static void strays_flush(struct stray_scan *s)
{
	if (!s->nbatch)
		return;
	const char *h[STRAY_BATCH];
	for (size_t i = 0; i < s->nbatch; i++)
		h[i] = s->batch[i];
	int failed = store_remove_many(s->j->c->store, h, s->nbatch);
	s->deleted += failed >= 0 ? (int64_t)s->nbatch - failed : 0;
	s->nbatch = 0;
}

/* An object no row names (a crash between writing and recording it). */
static void stray_object(const char *hash, int64_t mtime_ms, void *cls)
{
	struct stray_scan *s = cls;
	int64_t one = 0;
	if (mtime_ms >= s->cutoff ||
	    db_int64(s->j->c->db, &one,
	             "SELECT 1 FROM chunks WHERE hash = ? UNION ALL SELECT 1 FROM "
	             "workspace_chunks WHERE chunk_hash = ? LIMIT 1",
	             hash, hash) != DB_DONE)
		return;
	if (s->batch) { /* no row names it: nothing to delete but the object */
		memcpy(s->batch[s->nbatch++], hash, HASH_HEX_LEN + 1);
		if (s->nbatch == STRAY_BATCH)
			strays_flush(s);
		return;
	}
	bool gone;
	delete_chunk(s->j, hash, s->cutoff, &s->bytes, &gone);
	s->deleted += gone;
}

static enum job_result gc_strays(struct job *j)
{
	/* Uploads past their lease prove nothing and are no one's pending bytes. */
	if (db_run(j->c->db, "DELETE FROM chunk_uploads WHERE touched_at < ?",
	           now_ms() - UPLOAD_PENDING_MS) != DB_DONE)
		return JOB_DB_ERR;
	bool batch = store_is_remote(j->c->store);
	for (int dir = (int)job_cur_int(j, "store_dir"); dir < 256; dir++) {
		struct stray_scan s = {.j = j, .cutoff = now_ms() - UPLOAD_LEASE_MS};
		if (batch)
			s.batch = xmalloc(STRAY_BATCH * sizeof *s.batch);
		store_list_dir(j->c->store, dir, stray_object, &s);
		strays_flush(&s);
		free(s.batch);
		job_cur_add(j, "chunks_deleted", s.deleted);
		job_cur_add(j, "bytes_freed", s.bytes);
		json_object_set_new(j->cur, "store_dir", json_integer(dir + 1));
		if (dir % 16 == 15 && !job_lease_renew(j))
			return JOB_LEASE_LOST;
	}
	return JOB_OK;
}

static enum job_result gc_chunks(struct job *j)
{
	return gc_hashes(j, "chunk",
	                 "SELECT hash, unref_at FROM chunks WHERE refcount <= 0 "
	                 "AND hash > ? ORDER BY hash LIMIT ?",
	                 true);
}

static enum job_result gc_orphans(struct job *j)
{
	return gc_hashes(j, "orphan",
	                 "SELECT DISTINCT wc.chunk_hash, NULL FROM "
	                 "workspace_chunks wc WHERE wc.chunk_hash > ? AND NOT "
	                 "EXISTS (SELECT 1 FROM chunks c WHERE c.hash = "
	                 "wc.chunk_hash) ORDER BY 1 LIMIT ?",
	                 false);
}

/* The stages in order; the cursor's "stage" says where a resumed run starts. */
static const struct {
	const char *name;
	enum job_result (*run)(struct job *j);
} gc_stages[] = {{"versions", gc_versions},
                 {"trash", gc_trash},
                 {"chunks", gc_chunks},
                 {"orphans", gc_orphans},
                 {"strays", gc_strays}};
#define GC_STAGES (sizeof gc_stages / sizeof *gc_stages)

static enum job_result run_gc(struct job *j)
{
	const char *stage = job_cur_str(j, "stage");
	size_t from = 0;
	for (size_t i = 0; i < GC_STAGES; i++)
		if (strcmp(stage, gc_stages[i].name) == 0)
			from = i;
	for (size_t i = from; i < GC_STAGES; i++) {
		json_object_set_new(j->cur, "stage", json_string(gc_stages[i].name));
		enum job_result rc = gc_stages[i].run(j);
		if (rc != JOB_OK)
			return rc;
	}
	/* Tell hosts (on the feed) which chunks are gone, so their caches drop them. */
	int64_t deleted = job_cur_int(j, "chunks_deleted");
	if (deleted)
		job_tell_workspaces(j, "chunks.collected",
		                    json_pack("{s:I}", "chunks", (json_int_t)deleted));
	return JOB_OK;
}

static void gc_summary(json_t *res)
{
	printf("gc: %lld old versions expired, %lld files purged from the trash, %lld "
	       "chunks deleted (%lld bytes freed), %lld unreferenced chunks kept for "
	       "now, %lld host copies told to drop%s\n",
	       (long long)json_integer_value(json_object_get(res, "versions_expired")),
	       (long long)json_integer_value(json_object_get(res, "files_purged")),
	       (long long)json_integer_value(json_object_get(res, "chunks_deleted")),
	       (long long)json_integer_value(json_object_get(res, "bytes_freed")),
	       (long long)json_integer_value(json_object_get(res, "chunks_kept")),
	       (long long)json_integer_value(json_object_get(res, "host_copies_dropping")),
	       json_is_true(json_object_get(res, "resumed")) ? " (resumed)" : "");
}

const struct job_def job_gc = {
    .name = "gc", .run = run_gc, .every_ms_default = GC_EVERY_MS, .summary = gc_summary};
