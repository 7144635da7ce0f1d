/* jobs: the hub's background work, online and resumable (docs/jobs.md).
 *
 *   gc         expire old versions (keep_versions / keep_days), purge the
 *              trash (trash_days), then delete chunks no version references
 *              once they have been unreferenced for gc_retention_s and no
 *              member has touched them for the upload lease; then objects the
 *              database does not know at all.
 *   scrub      re-hash every chunk in the hub's storage at a bounded rate; a
 *              corrupt or missing one is quarantined, reported and repaired
 *              from a host that holds it; hosts are asked to scrub theirs.
 *   replicate  fetch into the hub's storage the chunks it lacks (lost,
 *              quarantined) from online hosts, at a bounded rate.
 *
 * One runner per job across every hub on a database: a lease row in `jobs`,
 * taken with one conditional UPDATE and renewed after every batch, together
 * with a cursor and the counts so far. A runner killed mid-way leaves both;
 * the next one (after the lease lapses) resumes at the cursor.
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
 * outlives the bytes it names except for a crash, which reads as missing. */
#include "../hub.h"
#include "../../core/json.h"
#include "../../core/ratelimit.h"
#include "../../core/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LEASE_MS        10000
#define BATCH           256
#define UPLOAD_LEASE_MS (3600 * 1000ll) /* a grant touched this recently is kept */
#define DAY_MS          (86400 * 1000ll)

struct job {
	struct job_ctx *c;
	const char *name;
	json_t *cur; /* {"stage", "after", counters…}: saved with every renewal */
	bool resumed, lost;
	int64_t renewed; /* mono_ms of the last renewal */
};

static int64_t cur_int(struct job *j, const char *k)
{
	return json_integer_value(json_object_get(j->cur, k));
}

static void cur_add(struct job *j, const char *k, int64_t n)
{
	json_object_set_new(j->cur, k, json_integer(cur_int(j, k) + n));
}

static const char *cur_str(struct job *j, const char *k)
{
	const char *s = json_string_value(json_object_get(j->cur, k));
	return s ? s : "";
}

static void progress(struct job *j)
{
	if (j->c->verbose) {
		char *s = json_dumps(j->cur, JSON_COMPACT | JSON_SORT_KEYS);
		fprintf(stderr, "roost %s: %s\n", j->name, s);
		free(s);
	}
}

/* ---- the lease ---- */

/* Take the job's lease (or find another runner holds it). 1 taken, 0 held
 * elsewhere, <0 error. A lapsed run's cursor is picked up. */
static int lease_take(struct job *j)
{
	int64_t now = now_ms();
	struct db_stmt *st =
	    db_query(j->c->db,
	             "UPDATE jobs SET lease_owner = ?, lease_until = ?, state = 'running', "
	             "started_at = CASE WHEN cursor IS NULL THEN ? ELSE started_at END "
	             "WHERE name = ? AND (lease_owner IS NULL OR lease_until < ? OR "
	             "lease_owner = ?) RETURNING cursor",
	             "tiitit", j->c->owner, now + LEASE_MS, now, j->name, now, j->c->owner);
	if (!st)
		return DB_ERR;
	int rc = db_step(st);
	if (rc == DB_ROW) {
		const char *cur = db_col_text(st, 0);
		j->cur = cur ? json_loads(cur, 0, NULL) : NULL;
		j->resumed = j->cur != NULL;
		if (!j->cur)
			j->cur = json_object();
	}
	db_finalize(st);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : rc;
}

static bool lease_renew(struct job *j);

/* Mid-batch, for slow (rate-bounded) work: the cursor is saved, and the
 * lease renewed, at least every second. */
static bool lease_tick(struct job *j)
{
	return mono_ms() - j->renewed < 1000 || lease_renew(j);
}

/* Save the cursor and extend the lease; false if it was lost (then stop). */
static bool lease_renew(struct job *j)
{
	char *cur = json_dumps(j->cur, JSON_COMPACT | JSON_SORT_KEYS);
	int64_t one = 0;
	int rc =
	    db_int64(j->c->db, &one,
	             "UPDATE jobs SET lease_until = ?, cursor = ?, progress = ? WHERE name = ? "
	             "AND lease_owner = ? RETURNING 1",
	             "itttt", now_ms() + LEASE_MS, cur, cur, j->name, j->c->owner);
	free(cur);
	progress(j);
	j->renewed = mono_ms();
	if (rc != DB_ROW) {
		log_warn("jobs: %s lost its lease; another runner has it", j->name);
		j->lost = true;
	}
	return rc == DB_ROW;
}

static void lease_finish(struct job *j, json_t *result, int64_t next_run_at)
{
	char *res = json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS);
	db_run(j->c->db,
	       "UPDATE jobs SET state = 'idle', lease_owner = NULL, lease_until = NULL, cursor = "
	       "NULL, progress = NULL, result = ?, finished_at = ?, runs = runs + 1, next_run_at = "
	       "? WHERE name = ? AND lease_owner = ?",
	       "tiitt", res, now_ms(), next_run_at, j->name, j->c->owner);
	free(res);
}

/* ---- audit rows written by a job (no request behind them) ---- */

static void job_audit(struct db *db, int64_t ws, const char *action, const char *target,
                      json_t *detail)
{
	char *d = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
	json_decref(detail);
	db_run(db,
	       "INSERT INTO audit_log(workspace_id, action, target, at, client_addr, detail) "
	       "VALUES(?,?,?,?,'job',?)",
	       "ittit", ws, action, target, now_ms(), d);
	free(d);
}

/* An audit row in every workspace that holds the chunk. */
static void chunk_audit(struct db *db, const char *hash, const char *action, json_t *detail)
{
	struct db_stmt *st =
	    db_query(db, "SELECT DISTINCT workspace_id FROM workspace_chunks WHERE chunk_hash = ?",
	             "t", hash);
	int64_t ws[16];
	int n = 0;
	while (st && n < 16 && db_step(st) == DB_ROW)
		ws[n++] = db_col_int64(st, 0);
	db_finalize(st);
	char target[80];
	snprintf(target, sizeof target, "chunk:%s", hash);
	for (int i = 0; i < n; i++)
		job_audit(db, ws[i], action, target, json_deep_copy(detail));
	json_decref(detail);
}

/* ---- deleting what is no longer kept ---- */

/* Delete one version's rows; its chunks lose a reference each (and note when
 * a chunk lost its last). In the caller's transaction. */
static int drop_version(struct db *db, int64_t vid, int64_t now)
{
	struct db_stmt *st =
	    db_query(db, "SELECT chunk_hash FROM version_chunks WHERE version_id = ?", "i", vid);
	json_t *hashes = json_array();
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(hashes, json_string(db_col_text(st, 0)));
	db_finalize(st);
	int rc = st ? DB_DONE : DB_ERR;
	size_t i;
	json_t *h;
	json_array_foreach(hashes, i, h)
	{
		if (rc == DB_DONE)
			rc = db_run(
			    db,
			    "UPDATE chunks SET refcount = refcount - 1, unref_at = CASE WHEN "
			    "refcount <= 1 THEN ? ELSE unref_at END WHERE hash = ?",
			    "it", now, json_string_value(h));
	}
	json_decref(hashes);
	if (rc == DB_DONE)
		rc = db_run(db, "DELETE FROM version_chunks WHERE version_id = ?", "i", vid);
	if (rc == DB_DONE)
		rc = db_run(db, "DELETE FROM file_versions WHERE id = ?", "i", vid);
	return rc;
}

/* The next batch of (id, workspace) pairs a query yields for (after, now,
 * BATCH). How many, or DB_ERR. */
static int batch_ids(struct db *db, const char *sql, int64_t after, int64_t now, int64_t *ids,
                     int64_t *wss)
{
	struct db_stmt *st = db_query(db, sql, "iii", after, now, (int64_t)BATCH);
	if (!st)
		return DB_ERR;
	int n = 0, step;
	while (n < BATCH && (step = db_step(st)) == DB_ROW) {
		ids[n] = db_col_int64(st, 0);
		wss[n++] = db_col_int64(st, 1);
	}
	db_finalize(st);
	return step == DB_ERR ? DB_ERR : n;
}

/* Old versions past the workspace's keep_versions and keep_days (a version is
 * kept while it is one of the newest keep_versions or younger than keep_days;
 * the current version always). Files in the trash keep theirs until purged. */
static int gc_versions(struct job *j)
{
	struct db *db = j->c->db;
	int64_t now = now_ms();
	for (;;) {
		int64_t ids[BATCH], wss[BATCH];
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
		    cur_int(j, "after_version"), now, ids, wss);
		if (n < 0)
			return DB_ERR;
		for (int i = 0; i < n; i++) {
			if (db_begin(db) != DB_DONE)
				return DB_ERR;
			if (drop_version(db, ids[i], now) != DB_DONE || db_commit(db) != DB_DONE) {
				db_rollback(db);
				return DB_ERR;
			}
			job_audit(db, wss[i], "version.expire", NULL,
			          json_pack("{s:I}", "version_id", (json_int_t)ids[i]));
		}
		if (n)
			json_object_set_new(j->cur, "after_version", json_integer(ids[n - 1]));
		cur_add(j, "versions_expired", n);
		if (!lease_renew(j))
			return -1;
		if (n < BATCH)
			return 0;
	}
}

/* Files deleted more than trash_days ago lose their versions for good (the
 * row stays as a tombstone with purged_at). */
static int gc_trash(struct job *j)
{
	struct db *db = j->c->db;
	int64_t now = now_ms();
	for (;;) {
		int64_t ids[BATCH], wss[BATCH];
		int n = batch_ids(
		    db,
		    "SELECT f.id, f.workspace_id FROM files f JOIN workspaces w ON w.id = "
		    "f.workspace_id WHERE f.id > ? AND f.deleted_at IS NOT NULL AND f.purged_at IS "
		    "NULL AND f.deleted_at + CAST(w.trash_days AS BIGINT) * 86400000 < ? ORDER BY "
		    "f.id "
		    "LIMIT ?",
		    cur_int(j, "after_file"), now, ids, wss);
		if (n < 0)
			return DB_ERR;
		for (int i = 0; i < n; i++) {
			if (db_begin(db) != DB_DONE)
				return DB_ERR;
			struct db_stmt *vs = db_query(
			    db, "SELECT id FROM file_versions WHERE file_id = ?", "i", ids[i]);
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
				rc = drop_version(db, vids[k], now);
			if (rc == DB_DONE && !more)
				rc = db_run(
				    db,
				    "UPDATE files SET purged_at = ?, current_version_id = NULL "
				    "WHERE id = ?",
				    "ii", now, ids[i]);
			if (rc != DB_DONE || db_commit(db) != DB_DONE) {
				db_rollback(db);
				return DB_ERR;
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
		cur_add(j, "files_purged", n);
		if (!lease_renew(j))
			return -1;
		if (n < BATCH)
			return 0;
	}
}

/* How long chunk hash stays after it lost its last reference: the run's
 * --retention, else the longest gc_retention_s of the workspaces holding it. */
static int64_t retention_of(struct job *j, const char *hash)
{
	if (j->c->retention_ms >= 0)
		return j->c->retention_ms;
	int64_t s = 7 * 86400;
	db_int64(j->c->db, &s,
	         "SELECT COALESCE(MAX(w.gc_retention_s), 604800) FROM workspace_chunks wc JOIN "
	         "workspaces w ON w.id = wc.workspace_id WHERE wc.chunk_hash = ?",
	         "t", hash);
	return s * 1000;
}

/* Delete chunk hash if nothing claims it: grants not touched since
 * lease_cutoff go, and if none is left and no version uses it, so do its
 * object, replica rows and row. 1 deleted, 0 kept, <0 error. */
static int delete_chunk(struct job *j, const char *hash, int64_t lease_cutoff, int64_t *bytes)
{
	struct db *db = j->c->db;
	int64_t one = 0, size = 0;
	db_set_relaxed(db, true); /* losing this in a crash only leaves a chunk to collect again */
	if (db_begin(db) != DB_DONE) {
		db_set_relaxed(db, false);
		return DB_ERR;
	}
	int rc = db_run(db, "DELETE FROM workspace_chunks WHERE chunk_hash = ? AND touched_at < ?",
	                "ti", hash, lease_cutoff);
	int claimed = rc == DB_DONE
	                  ? db_int64(db, &one,
	                             "SELECT 1 FROM workspace_chunks WHERE chunk_hash = ? "
	                             "UNION ALL SELECT 1 FROM version_chunks WHERE "
	                             "chunk_hash = ? LIMIT 1",
	                             "tt", hash, hash)
	                  : DB_ERR;
	if (claimed != DB_DONE) {
		db_rollback(db);
		db_set_relaxed(db, false);
		return claimed == DB_ROW ? 0 : DB_ERR;
	}
	size = store_size(j->c->store, hash);
	int gone = store_remove(j->c->store, hash);
	if ((gone != 0 && gone != -ENOENT) ||
	    db_run(db, "DELETE FROM chunk_uploads WHERE chunk_hash = ?", "t", hash) != DB_DONE ||
	    db_run(db, "DELETE FROM chunk_replicas WHERE chunk_hash = ?", "t", hash) != DB_DONE ||
	    db_run(db, "DELETE FROM chunks WHERE hash = ?", "t", hash) != DB_DONE ||
	    db_commit(db) != DB_DONE) {
		db_rollback(db);
		db_set_relaxed(db, false);
		return DB_ERR;
	}
	db_set_relaxed(db, false);
	*bytes += size > 0 ? size : 0;
	return 1;
}

/* Run delete_chunk over the hashes a query yields (cursor "after_<key>"). */
static int gc_hashes(struct job *j, const char *key, const char *sql, bool committed)
{
	char after_key[32];
	snprintf(after_key, sizeof after_key, "after_%s", key);
	for (;;) {
		int64_t now = now_ms();
		char after[HASH_HEX_LEN + 1];
		snprintf(after, sizeof after, "%s", cur_str(j, after_key));
		struct db_stmt *st = db_query(j->c->db, sql, "ti", after, (int64_t)BATCH);
		if (!st)
			return DB_ERR;
		char(*hashes)[HASH_HEX_LEN + 1] = xmalloc(BATCH * sizeof *hashes);
		int64_t unref[BATCH];
		int n = 0, step;
		while (n < BATCH && (step = db_step(st)) == DB_ROW) {
			snprintf(hashes[n], sizeof hashes[n], "%s", db_col_text(st, 0));
			unref[n++] = db_col_is_null(st, 1) ? now : db_col_int64(st, 1);
		}
		db_finalize(st);
		if (step == DB_ERR) {
			free(hashes);
			return DB_ERR;
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
			int rc = delete_chunk(j, hashes[i], lease_cutoff, &bytes);
			if (rc < 0) {
				free(hashes);
				return rc;
			}
			deleted += rc;
			kept += rc == 0;
		}
		if (n)
			json_object_set_new(j->cur, after_key, json_string(hashes[n - 1]));
		free(hashes);
		cur_add(j, "chunks_deleted", deleted);
		cur_add(j, "bytes_freed", bytes);
		cur_add(j, "chunks_kept", kept);
		if (!lease_renew(j))
			return -1;
		if (n < BATCH)
			return 0;
	}
}

struct stray_scan {
	struct job *j;
	int64_t cutoff, deleted, bytes;
};

/* An object no row names (a crash between writing and recording it). */
static void stray_object(const char *hash, int64_t mtime_ms, void *cls)
{
	struct stray_scan *s = cls;
	int64_t one = 0;
	if (mtime_ms >= s->cutoff ||
	    db_int64(s->j->c->db, &one,
	             "SELECT 1 FROM chunks WHERE hash = ? UNION ALL SELECT 1 FROM "
	             "workspace_chunks WHERE chunk_hash = ? LIMIT 1",
	             "tt", hash, hash) != DB_DONE)
		return;
	int rc = delete_chunk(s->j, hash, s->cutoff, &s->bytes);
	s->deleted += rc > 0;
}

static int gc_strays(struct job *j)
{
	/* Uploads past their lease prove nothing and are no one's pending bytes. */
	if (db_run(j->c->db, "DELETE FROM chunk_uploads WHERE touched_at < ?", "i",
	           now_ms() - UPLOAD_PENDING_MS) != DB_DONE)
		return -1;
	for (int dir = (int)cur_int(j, "store_dir"); dir < 256; dir++) {
		struct stray_scan s = {.j = j, .cutoff = now_ms() - UPLOAD_LEASE_MS};
		store_list_dir(j->c->store, dir, stray_object, &s);
		cur_add(j, "chunks_deleted", s.deleted);
		cur_add(j, "bytes_freed", s.bytes);
		json_object_set_new(j->cur, "store_dir", json_integer(dir + 1));
		if (dir % 16 == 15 && !lease_renew(j))
			return -1;
	}
	return 0;
}

/* Tell hosts (on the feed) which chunks are gone, so their caches drop them. */
static void gc_tell_hosts(struct job *j, int64_t deleted)
{
	if (!deleted)
		return;
	struct db_stmt *st = db_query(j->c->db, "SELECT id FROM workspaces", NULL);
	int64_t ws[256];
	int n = 0;
	while (st && n < 256 && db_step(st) == DB_ROW)
		ws[n++] = db_col_int64(st, 0);
	db_finalize(st);
	for (int i = 0; i < n; i++)
		if (meta_begin(j->c->db, ws[i]) == DB_DONE) {
			if (meta_change(j->c->db, ws[i], "chunks.collected", "job",
			                json_pack("{s:I}", "chunks", (json_int_t)deleted)) == 0 &&
			    db_commit(j->c->db) == DB_DONE)
				continue;
			db_rollback(j->c->db);
		}
}

static const char *const gc_stages[] = {"versions", "trash", "chunks", "orphans", "strays"};

static int run_gc(struct job *j)
{
	const char *stage = cur_str(j, "stage");
	int from = 0;
	for (int i = 0; i < 5; i++)
		if (strcmp(stage, gc_stages[i]) == 0)
			from = i;
	for (int i = from; i < 5; i++) {
		json_object_set_new(j->cur, "stage", json_string(gc_stages[i]));
		int rc = i == 0   ? gc_versions(j)
		         : i == 1 ? gc_trash(j)
		         : i == 2
		             ? gc_hashes(j, "chunk",
		                         "SELECT hash, unref_at FROM chunks WHERE refcount <= 0 "
		                         "AND hash > ? ORDER BY hash LIMIT ?",
		                         true)
		         : i == 3 ? gc_hashes(j, "orphan",
		                              "SELECT DISTINCT wc.chunk_hash, NULL FROM "
		                              "workspace_chunks wc WHERE wc.chunk_hash > ? AND NOT "
		                              "EXISTS (SELECT 1 FROM chunks c WHERE c.hash = "
		                              "wc.chunk_hash) ORDER BY 1 LIMIT ?",
		                              false)
		                  : gc_strays(j);
		if (rc != 0)
			return rc;
	}
	gc_tell_hosts(j, cur_int(j, "chunks_deleted"));
	return 0;
}

/* ---- scrub and repair ---- */

static size_t collect(char *p, size_t size, size_t n, void *cls)
{
	struct store_writer *w = cls;
	return store_writer_write(w, p, size * n) == 0 ? size * n : 0;
}

/* Fetch chunk hash from an online host that holds it into the hub's storage,
 * verified. 0 repaired, -ENOENT no healthy copy reachable, <0 error. */
static int repair_from_hosts(struct job *j, const char *hash)
{
	struct db_stmt *st =
	    db_query(j->c->db,
	             "SELECT h.url, h.workspace_id FROM chunk_replicas cr JOIN hosts h ON h.id = "
	             "cr.host_id WHERE cr.chunk_hash = ? AND cr.state = 'ok' AND h.revoked_at IS "
	             "NULL AND h.url IS NOT NULL AND h.status = 'online' AND h.last_seen + 3 * "
	             "COALESCE(h.heartbeat_ms, 5000) > ? ORDER BY h.last_seen DESC LIMIT 4",
	             "ti", hash, now_ms());
	char urls[4][512];
	int64_t wss[4];
	int n = 0;
	while (st && n < 4 && db_step(st) == DB_ROW) {
		snprintf(urls[n], sizeof urls[n], "%s", db_col_text(st, 0));
		wss[n++] = db_col_int64(st, 1);
	}
	db_finalize(st);
	for (int i = 0; i < n; i++) {
		char *tok = tokens_sign(j->c->db, json_pack("{s:I, s:s, s:I}", "ws",
		                                            (json_int_t)wss[i], "scope", "chunks",
		                                            "exp", (json_int_t)(now_ms() + 60000)));
		if (!tok)
			return -EIO;
		char *url = xasprintf("%s/chunks/%s", urls[i], hash);
		char *auth = xasprintf("Authorization: Bearer %s", tok);
		struct curl_slist *hd = curl_slist_append(NULL, auth);
		struct store_writer *w = store_writer_new(j->c->store);
		CURL *c = curl_easy_init();
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		long status = 0;
		if (curl_easy_perform(c) == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		char got[HASH_HEX_LEN + 1];
		int rc = status == 200 ? store_writer_commit(w, hash, got) : -EIO;
		if (status != 200)
			store_writer_abort(w);
		curl_easy_cleanup(c);
		curl_slist_free_all(hd);
		free(auth);
		free(url);
		free(tok);
		if (rc == 0) {
			db_run(j->c->db,
			       "UPDATE chunk_replicas SET state = 'ok', updated_at = ? WHERE "
			       "chunk_hash "
			       "= ? AND holder = 'hub'",
			       "it", now_ms(), hash);
			return 0;
		}
	}
	return -ENOENT;
}

/* Wait as the byte rate asks (the bucket holds one second's worth). */
static void pace(struct job *j, struct bucket *b, int64_t bytes)
{
	if (j->c->rate <= 0)
		return;
	int64_t wait = bucket_wait_ms(b, j->c->rate, j->c->rate, (double)bytes, mono_ms());
	if (wait > 0)
		usleep((useconds_t)(wait * 1000));
	bucket_take(b, j->c->rate, j->c->rate, (double)bytes, mono_ms());
}

static int run_scrub(struct job *j)
{
	struct bucket b = {0};
	uint8_t *buf = xmalloc(64 << 20);
	int rc = 0;
	for (;;) {
		char after[HASH_HEX_LEN + 1];
		snprintf(after, sizeof after, "%s", cur_str(j, "after_chunk"));
		struct db_stmt *st =
		    db_query(j->c->db,
		             "SELECT chunk_hash FROM chunk_replicas WHERE holder = "
		             "'hub' AND chunk_hash > ? ORDER BY chunk_hash LIMIT ?",
		             "ti", after, (int64_t)64);
		if (!st) {
			rc = DB_ERR;
			break;
		}
		char hashes[64][HASH_HEX_LEN + 1];
		int n = 0, step;
		while (n < 64 && (step = db_step(st)) == DB_ROW)
			snprintf(hashes[n++], sizeof hashes[0], "%s", db_col_text(st, 0));
		db_finalize(st);
		if (step == DB_ERR) {
			rc = DB_ERR;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (!lease_tick(j)) {
				rc = -1;
				break;
			}
			int64_t got = store_read(j->c->store, hashes[i], buf, 64 << 20);
			cur_add(j, "chunks_checked", 1);
			json_object_set_new(j->cur, "after_chunk", json_string(hashes[i]));
			if (got >= 0) {
				cur_add(j, "bytes_checked", got);
				pace(j, &b, got);
				continue;
			}
			/* Corrupt (-EBADMSG) or gone (-ENOENT): set aside, report, repair. */
			const char *what = got == -ENOENT ? "missing" : "corrupt";
			if (got != -ENOENT)
				store_quarantine(j->c->store, hashes[i]);
			db_run(j->c->db,
			       "UPDATE chunk_replicas SET state = 'corrupt', updated_at = ? WHERE "
			       "chunk_hash = ? AND holder = 'hub'",
			       "it", now_ms(), hashes[i]);
			cur_add(j, got == -ENOENT ? "chunks_missing" : "chunks_corrupt", 1);
			int fixed = repair_from_hosts(j, hashes[i]);
			cur_add(j, fixed == 0 ? "chunks_repaired" : "chunks_unrepaired", 1);
			chunk_audit(j->c->db, hashes[i],
			            fixed == 0 ? "chunk.repaired" : "chunk.corrupt",
			            json_pack("{s:s, s:s, s:b}", "holder", "hub", "found", what,
			                      "repaired", fixed == 0));
			log_warn("scrub: chunk %s in the hub's storage was %s; %s", hashes[i], what,
			         fixed == 0 ? "repaired from a host"
			                    : "no healthy copy reachable yet");
		}
		if (rc != 0 || !lease_renew(j)) {
			rc = -1;
			break;
		}
		if (n < 64)
			break;
	}
	free(buf);
	if (rc == 0) {
		/* Hosts scrub their own copies when asked on the feed. */
		struct db_stmt *st = db_query(j->c->db, "SELECT id FROM workspaces", NULL);
		int64_t ws[256];
		int n = 0;
		while (st && n < 256 && db_step(st) == DB_ROW)
			ws[n++] = db_col_int64(st, 0);
		db_finalize(st);
		for (int i = 0; i < n; i++)
			if (meta_begin(j->c->db, ws[i]) == DB_DONE) {
				if (meta_change(j->c->db, ws[i], "scrub.requested", "job",
				                json_object()) == 0 &&
				    db_commit(j->c->db) == DB_DONE)
					continue;
				db_rollback(j->c->db);
			}
	}
	return rc;
}

/* SQL: the copies of chunk ? that count — the hub's, and hosts' seen within
 * their workspace's replica grace (a host offline longer is gone for this) —
 * given the grace cutoff ?. */
#define COPIES_SQL                                                                                 \
	"(SELECT COUNT(*) FROM chunk_replicas o LEFT JOIN hosts h ON h.id = o.host_id WHERE "      \
	"o.chunk_hash = %s AND o.state %s AND (o.holder = 'hub' OR (h.revoked_at IS NULL AND "     \
	"h.last_seen > ?))%s)"

/* Per workspace: chunks of current files with fewer copies than min_replicas
 * get one more, on the online host with the most room that lacks it (it
 * fetches the chunk into its cache and keeps it there); copies made so that
 * are released once the chunk has enough without them (a host came back). */
static int replicate_to_hosts(struct job *j)
{
	struct db *db = j->c->db;
	struct db_stmt *st = db_query(
	    db, "SELECT id, min_replicas, replica_grace_s FROM workspaces ORDER BY id", NULL);
	int64_t ws[256], minr[256], grace[256];
	int nws = 0;
	while (st && nws < 256 && db_step(st) == DB_ROW) {
		ws[nws] = db_col_int64(st, 0);
		minr[nws] = db_col_int64(st, 1);
		grace[nws++] = db_col_int64(st, 2) * 1000;
	}
	db_finalize(st);
	for (int w = 0; w < nws; w++) {
		int64_t now = now_ms(), cutoff = now - grace[w];
		char *under = xasprintf(
		    "SELECT u.chunk_hash, c.size FROM (SELECT DISTINCT vc.chunk_hash FROM files f "
		    "JOIN version_chunks vc ON vc.version_id = f.current_version_id WHERE "
		    "f.workspace_id = ? AND f.deleted_at IS NULL) u JOIN chunks c ON c.hash = "
		    "u.chunk_hash WHERE " COPIES_SQL " < ? ORDER BY u.chunk_hash LIMIT 4096",
		    "u.chunk_hash", "IN ('ok', 'pending')", "");
		st = db_query(db, under, "iii", ws[w], cutoff, minr[w]);
		free(under);
		json_t *want = json_array();
		while (st && db_step(st) == DB_ROW)
			json_array_append_new(want,
			                      json_pack("{s:s, s:I}", "hash", db_col_text(st, 0),
			                                "size", (json_int_t)db_col_int64(st, 1)));
		db_finalize(st);
		if (!st) {
			json_decref(want);
			return DB_ERR;
		}
		size_t i;
		json_t *c;
		int64_t assigned = 0;
		json_array_foreach(want, i, c)
		{
			const char *hash = json_get_str(c, "hash");
			int64_t size = json_integer_value(json_object_get(c, "size")), target = 0;
			int rc = db_int64(
			    db, &target,
			    "SELECT h.id FROM hosts h WHERE h.workspace_id = ? AND h.revoked_at IS "
			    "NULL AND "
			    "h.status = 'online' AND h.last_seen + 3 * COALESCE(h.heartbeat_ms, "
			    "5000) > ? "
			    "AND COALESCE(h.free_bytes, 0) > ? AND NOT EXISTS (SELECT 1 FROM "
			    "chunk_replicas cr WHERE cr.chunk_hash = ? AND cr.host_id = h.id AND "
			    "cr.state "
			    "IN ('ok', 'pending')) ORDER BY h.free_bytes DESC LIMIT 1",
			    "iiit", ws[w], now, size + (64ll << 20), hash);
			if (rc == DB_DONE)
				continue; /* no host can take it now: the next run tries again */
			char holder[32];
			snprintf(holder, sizeof holder, "host:%lld", (long long)target);
			if (rc != DB_ROW ||
			    db_run(db,
			           "INSERT INTO chunk_replicas(chunk_hash, holder, host_id, state, "
			           "updated_at, assigned) VALUES(?,?,?,'pending',?,1) ON CONFLICT "
			           "(chunk_hash, holder) DO UPDATE SET state = 'pending', assigned "
			           "= 1, "
			           "updated_at = excluded.updated_at",
			           "ttii", hash, holder, target, now) != DB_DONE) {
				json_decref(want);
				return DB_ERR;
			}
			assigned++;
		}
		json_decref(want);
		/* Surplus: an assigned copy the chunk no longer needs. */
		char *surplus = xasprintf(
		    "UPDATE chunk_replicas SET state = 'released', updated_at = ? WHERE assigned = "
		    "1 "
		    "AND state IN ('ok', 'pending') AND host_id IN (SELECT id FROM hosts WHERE "
		    "workspace_id = ?) AND " COPIES_SQL " >= ?",
		    "chunk_replicas.chunk_hash", "= 'ok'",
		    " AND o.holder <> chunk_replicas.holder");
		int64_t before = 0, after = 0;
		db_int64(db, &before,
		         "SELECT COUNT(*) FROM chunk_replicas WHERE state = 'released'", NULL);
		int rc = db_run(db, surplus, "iiii", now, ws[w], cutoff, minr[w]);
		free(surplus);
		if (rc != DB_DONE)
			return DB_ERR;
		db_int64(db, &after, "SELECT COUNT(*) FROM chunk_replicas WHERE state = 'released'",
		         NULL);
		cur_add(j, "copies_assigned", assigned);
		cur_add(j, "copies_released", after - before);
		if (assigned || after > before)
			job_audit(db, ws[w], "replicas.rebalance", NULL,
			          json_pack("{s:I, s:I}", "assigned", (json_int_t)assigned,
			                    "released", (json_int_t)(after - before)));
		if (!lease_renew(j))
			return -1;
	}
	return 0;
}

/* Chunks some version uses that the hub's storage lacks (a lost or corrupt
 * copy): fetched back from hosts. Then copies on hosts, for min_replicas. */
static int run_replicate(struct job *j)
{
	struct bucket b = {0};
	for (;;) {
		char after[HASH_HEX_LEN + 1];
		snprintf(after, sizeof after, "%s", cur_str(j, "after_chunk"));
		struct db_stmt *st = db_query(
		    j->c->db,
		    "SELECT c.hash, c.size FROM chunks c WHERE c.hash > ? AND c.refcount > 0 "
		    "AND NOT EXISTS (SELECT 1 FROM chunk_replicas cr WHERE cr.chunk_hash = "
		    "c.hash AND cr.holder = 'hub' AND cr.state = 'ok') ORDER BY c.hash LIMIT ?",
		    "ti", after, (int64_t)64);
		if (!st)
			return DB_ERR;
		char hashes[64][HASH_HEX_LEN + 1];
		int64_t sizes[64];
		int n = 0, step;
		while (n < 64 && (step = db_step(st)) == DB_ROW) {
			snprintf(hashes[n], sizeof hashes[0], "%s", db_col_text(st, 0));
			sizes[n++] = db_col_int64(st, 1);
		}
		db_finalize(st);
		if (step == DB_ERR)
			return DB_ERR;
		for (int i = 0; i < n; i++) {
			if (!lease_tick(j))
				return -1;
			pace(j, &b, sizes[i]);
			json_object_set_new(j->cur, "after_chunk", json_string(hashes[i]));
			if (db_run(
			        j->c->db,
			        "INSERT INTO chunk_replicas(chunk_hash, holder, state, updated_at) "
			        "VALUES(?, 'hub', 'pending', ?) ON CONFLICT(chunk_hash, holder) DO "
			        "NOTHING",
			        "ti", hashes[i], now_ms()) != DB_DONE)
				return DB_ERR;
			int rc = repair_from_hosts(j, hashes[i]);
			cur_add(j, rc == 0 ? "chunks_copied" : "chunks_unavailable", 1);
			if (rc == 0) {
				cur_add(j, "bytes_copied", sizes[i]);
				chunk_audit(j->c->db, hashes[i], "chunk.replicated",
				            json_pack("{s:s}", "to", "hub"));
			}
		}
		if (!lease_renew(j))
			return -1;
		if (n < 64)
			return replicate_to_hosts(j);
	}
}

/* ---- running a job ---- */

int jobs_run(struct job_ctx *c, const char *name, json_t **result)
{
	*result = NULL;
	struct job j = {.c = c, .name = name, .renewed = mono_ms()};
	int taken = lease_take(&j);
	if (taken <= 0)
		return taken == 0 ? 1 : -1;
	int64_t started = now_ms();
	int rc = strcmp(name, "gc") == 0      ? run_gc(&j)
	         : strcmp(name, "scrub") == 0 ? run_scrub(&j)
	                                      : run_replicate(&j);
	if (rc == 0) {
		json_t *res = json_deep_copy(j.cur);
		json_object_del(res, "stage");
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(res, tmp, k, v)
		{
			if (strncmp(k, "after_", 6) == 0 || strcmp(k, "store_dir") == 0)
				json_object_del(res, k);
		}
		json_object_set_new(res, "resumed", json_boolean(j.resumed));
		json_object_set_new(res, "duration_ms", json_integer(now_ms() - started));
		int64_t every = strcmp(name, "gc") == 0      ? c->gc_every_ms
		                : strcmp(name, "scrub") == 0 ? c->scrub_every_ms
		                                             : c->replicate_every_ms;
		lease_finish(&j, res, now_ms() + (every > 0 ? every : DAY_MS));
		*result = res;
	} else if (!j.lost) {
		/* Keep the cursor; let the lease lapse so any runner resumes. */
		db_run(c->db, "UPDATE jobs SET lease_until = 0 WHERE name = ? AND lease_owner = ?",
		       "tt", name, c->owner);
	}
	json_decref(j.cur);
	return rc == 0 ? 0 : -1;
}

json_t *jobs_list(struct db *db)
{
	struct db_stmt *st =
	    db_query(db,
	             "SELECT name, state, lease_owner, lease_until, progress, "
	             "result, started_at, finished_at, runs, next_run_at FROM jobs "
	             "ORDER BY name",
	             NULL);
	if (!st)
		return NULL;
	json_t *arr = json_array();
	while (db_step(st) == DB_ROW) {
		json_t *o = json_pack("{s:s, s:s, s:I}", "name", db_col_text(st, 0), "state",
		                      db_col_text(st, 1), "runs", (json_int_t)db_col_int64(st, 8));
		if (!db_col_is_null(st, 2) && db_col_int64(st, 3) > now_ms())
			json_object_set_new(o, "runner", json_string(db_col_text(st, 2)));
		const char *cols[] = {NULL, NULL, NULL, NULL, "progress", "result"};
		for (int k = 4; k <= 5; k++)
			if (!db_col_is_null(st, k))
				json_object_set_new(o, cols[k],
				                    json_loads(db_col_text(st, k), 0, NULL));
		const char *times[] = {"started_at", "finished_at", NULL, "next_run_at"};
		for (int k = 6; k <= 9; k++)
			if (k != 8 && !db_col_is_null(st, k))
				json_object_set_new(o, times[k - 6],
				                    json_integer(db_col_int64(st, k)));
		json_array_append_new(arr, o);
	}
	db_finalize(st);
	return arr;
}

/* ---- in the hub: each job when it is due; roost admin: one now ---- */

#define GC_EVERY_MS        DAY_MS
#define SCRUB_EVERY_MS     (7 * DAY_MS)
#define REPLICATE_EVERY_MS (10 * 60 * 1000ll)
#define JOB_RATE_DEFAULT   (50.0 * 1024 * 1024) /* bytes/s read or copied */

void jobs_ctx_init(struct job_ctx *c, const struct hub_config *cfg)
{
	memset(c, 0, sizeof *c);
	char host[64] = "hub";
	gethostname(host, sizeof host - 1);
	snprintf(c->owner, sizeof c->owner, "%s:%d", host, (int)getpid());
	c->retention_ms = cfg->gc_retention_ms;
	c->rate = cfg->job_rate < 0 ? 0 : cfg->job_rate > 0 ? cfg->job_rate : JOB_RATE_DEFAULT;
	c->gc_every_ms = cfg->gc_every_ms < 0 ? GC_EVERY_MS : cfg->gc_every_ms;
	c->scrub_every_ms = cfg->scrub_every_ms < 0 ? SCRUB_EVERY_MS : cfg->scrub_every_ms;
	c->replicate_every_ms =
	    cfg->replicate_every_ms < 0 ? REPLICATE_EVERY_MS : cfg->replicate_every_ms;
}

static void *jobs_main(void *arg)
{
	struct hub *hub = arg;
	struct job_ctx c;
	jobs_ctx_init(&c, &hub->cfg);
	c.store = hub->store;
	static const char *const names[] = {"gc", "scrub", "replicate"};
	while (!atomic_load(&hub->jobs_stopping)) {
		c.db = db_pool_acquire(hub->pool);
		for (int i = 0; i < 3 && !atomic_load(&hub->jobs_stopping); i++) {
			int64_t every = i == 0   ? c.gc_every_ms
			                : i == 1 ? c.scrub_every_ms
			                         : c.replicate_every_ms;
			int64_t due = 0;
			if (every <= 0 ||
			    db_int64(c.db, &due,
			             "SELECT COALESCE(next_run_at, 0) FROM jobs WHERE name = ?",
			             "t", names[i]) != DB_ROW)
				continue;
			if (due == 0) { /* first sight: not at once, every hub start would */
				db_run(c.db, "UPDATE jobs SET next_run_at = ? WHERE name = ?", "it",
				       now_ms() + every, names[i]);
				continue;
			}
			if (due > now_ms())
				continue;
			json_t *res = NULL;
			if (jobs_run(&c, names[i], &res) == 0) {
				char *s = json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS);
				log_info("jobs: %s done: %s", names[i], s);
				free(s);
			}
			json_decref(res);
		}
		traffic_flush(hub, c.db);
		db_pool_release(hub->pool, c.db);
		for (int k = 0; k < 50 && !atomic_load(&hub->jobs_stopping); k++)
			usleep(100000);
	}
	c.db = db_pool_acquire(hub->pool); /* the last counts, at a clean stop */
	traffic_flush(hub, c.db);
	db_pool_release(hub->pool, c.db);
	return NULL;
}

void jobs_start(struct hub *hub)
{
	atomic_store(&hub->jobs_stopping, false);
	hub->jobs_running = pthread_create(&hub->jobs_thread, NULL, jobs_main, hub) == 0;
}

void jobs_stop(struct hub *hub)
{
	atomic_store(&hub->jobs_stopping, true);
	if (hub->jobs_running)
		pthread_join(hub->jobs_thread, NULL);
	hub->jobs_running = false;
}

static void print_json_stdout(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(v);
	puts(s ? s : "null");
	free(s);
}

static void print_jobs(json_t *jobs)
{
	size_t i;
	json_t *o;
	json_array_foreach(jobs, i, o)
	{
		char when[32] = "never";
		int64_t fin = json_integer_value(json_object_get(o, "finished_at"));
		if (fin) {
			time_t t = (time_t)(fin / 1000);
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
		}
		char *res = json_object_get(o, "result") ? json_dumps(json_object_get(o, "result"),
		                                                      JSON_COMPACT | JSON_SORT_KEYS)
		                                         : NULL;
		char *prog =
		    json_object_get(o, "progress")
		        ? json_dumps(json_object_get(o, "progress"), JSON_COMPACT | JSON_SORT_KEYS)
		        : NULL;
		printf("%-10s %-8s runs %-4lld last %s%s%s%s%s\n", json_get_str(o, "name"),
		       json_get_str(o, "state"),
		       (long long)json_integer_value(json_object_get(o, "runs")), when,
		       res ? "  " : "", res ? res : "", prog ? "\n           in progress: " : "",
		       prog ? prog : "");
		free(res);
		free(prog);
	}
}

int hub_admin_job(const struct hub_config *cfg, const char *job, bool json)
{
	char *url = hub_db_url(cfg->data_dir, cfg->db_url);
	char *err = NULL;
	struct db *db = db_open(url, &err);
	free(url);
	if (!db) {
		fprintf(stderr, "roost admin %s: %s\n", job, err);
		free(err);
		return 1;
	}
	int64_t users = 0;
	int rc = 1;
	if (db_migrate(db) != DB_DONE ||
	    db_int64(db, &users, "SELECT COUNT(*) FROM users", NULL) != DB_ROW || users == 0) {
		fprintf(stderr, "roost admin %s: no initialized hub in %s\n", job, cfg->data_dir);
		db_close(db);
		return 1;
	}
	if (strcmp(job, "jobs") == 0) {
		json_t *list = jobs_list(db);
		if (list && json)
			print_json_stdout(json_pack("{s:o}", "jobs", list));
		else if (list) {
			print_jobs(list);
			json_decref(list);
		}
		db_close(db);
		return list ? 0 : 1;
	}
	struct job_ctx c;
	jobs_ctx_init(&c, cfg);
	c.db = db;
	c.verbose = !json;
	c.store = store_open(cfg->data_dir);
	if (!c.store) {
		fprintf(stderr, "roost admin %s: cannot open the chunk store in %s\n", job,
		        cfg->data_dir);
		db_close(db);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	json_t *res = NULL;
	int r = jobs_run(&c, job, &res);
	if (r == 1) {
		fprintf(stderr,
		        "roost admin %s: another runner holds this job now (see 'roost admin "
		        "jobs'); try again when it is done\n",
		        job);
		rc = 3;
	} else if (r < 0) {
		fprintf(stderr, "roost admin %s: failed (database: %s); run it again to resume\n",
		        job, db_errmsg(db));
	} else {
		int64_t bad = json_integer_value(json_object_get(res, "chunks_corrupt")) +
		              json_integer_value(json_object_get(res, "chunks_missing"));
		if (json)
			print_json_stdout(json_incref(res));
		else if (strcmp(job, "gc") == 0)
			printf(
			    "gc: %lld old versions expired, %lld files purged from the trash, %lld "
			    "chunks deleted (%lld bytes freed), %lld unreferenced chunks kept for "
			    "now%s\n",
			    (long long)json_integer_value(json_object_get(res, "versions_expired")),
			    (long long)json_integer_value(json_object_get(res, "files_purged")),
			    (long long)json_integer_value(json_object_get(res, "chunks_deleted")),
			    (long long)json_integer_value(json_object_get(res, "bytes_freed")),
			    (long long)json_integer_value(json_object_get(res, "chunks_kept")),
			    json_is_true(json_object_get(res, "resumed")) ? " (resumed)" : "");
		else if (strcmp(job, "scrub") == 0)
			printf(
			    "scrub: %lld chunks (%lld bytes) checked; %lld corrupt, %lld missing, "
			    "%lld repaired, %lld not repaired yet%s\n",
			    (long long)json_integer_value(json_object_get(res, "chunks_checked")),
			    (long long)json_integer_value(json_object_get(res, "bytes_checked")),
			    (long long)json_integer_value(json_object_get(res, "chunks_corrupt")),
			    (long long)json_integer_value(json_object_get(res, "chunks_missing")),
			    (long long)json_integer_value(json_object_get(res, "chunks_repaired")),
			    (long long)json_integer_value(
			        json_object_get(res, "chunks_unrepaired")),
			    json_is_true(json_object_get(res, "resumed")) ? " (resumed)" : "");
		else
			printf(
			    "replicate: %lld chunks (%lld bytes) copied to the hub, %lld with no "
			    "reachable copy; %lld copies asked of hosts, %lld released\n",
			    (long long)json_integer_value(json_object_get(res, "chunks_copied")),
			    (long long)json_integer_value(json_object_get(res, "bytes_copied")),
			    (long long)json_integer_value(
			        json_object_get(res, "chunks_unavailable")),
			    (long long)json_integer_value(json_object_get(res, "copies_assigned")),
			    (long long)json_integer_value(json_object_get(res, "copies_released")));
		if (bad)
			fprintf(stderr,
			        "roost admin scrub: found %lld damaged chunk%s (see the audit "
			        "log)\n",
			        (long long)bad, bad == 1 ? "" : "s");
		rc = bad ? 1 : 0;
	}
	json_decref(res);
	store_free(c.store);
	db_close(db);
	return rc;
}

/* GET /workspaces/W/jobs (owners, admins): the hub's jobs, as roost admin jobs. */
enum MHD_Result api_jobs(struct req *r)
{
	if (r->role < ROLE_ADMIN)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "only owners and admins see the hub's jobs");
	json_t *list = jobs_list(r->db);
	return list ? reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "jobs", list))
	            : reply_db_error(r);
}

/* Prometheus lines for /metrics: each job's runs, state and last result, and
 * the copies scrub has found corrupt and not yet repaired. */
void jobs_metrics(struct db *db, FILE *f)
{
	json_t *list = db ? jobs_list(db) : NULL;
	fputs("# TYPE roost_job_runs_total counter\n# TYPE roost_job_running gauge\n"
	      "# TYPE roost_job_last_result gauge\n",
	      f);
	size_t i;
	json_t *o;
	json_array_foreach(list, i, o)
	{
		const char *name = json_get_str(o, "name");
		fprintf(f,
		        "roost_job_runs_total{job=\"%s\"} %lld\nroost_job_running{job=\"%s\"} %d\n",
		        name, (long long)json_integer_value(json_object_get(o, "runs")), name,
		        strcmp(json_get_str(o, "state"), "running") == 0);
		if (json_object_get(o, "finished_at"))
			fprintf(f, "roost_job_last_finished_seconds{job=\"%s\"} %.3f\n", name,
			        (double)json_integer_value(json_object_get(o, "finished_at")) /
			            1000.0);
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(o, "result"), k, v)
		{
			if (json_is_integer(v))
				fprintf(f, "roost_job_last_result{job=\"%s\",field=\"%s\"} %lld\n",
				        name, k, (long long)json_integer_value(v));
		}
	}
	json_decref(list);
	int64_t hub = 0, hosts = 0;
	if (db) {
		db_int64(db, &hub,
		         "SELECT COUNT(*) FROM chunk_replicas WHERE state = 'corrupt' AND holder = "
		         "'hub'",
		         NULL);
		db_int64(db, &hosts,
		         "SELECT COUNT(*) FROM chunk_replicas WHERE state = 'corrupt' AND holder "
		         "<> 'hub'",
		         NULL);
	}
	fprintf(
	    f,
	    "# TYPE roost_chunk_copies_corrupt gauge\nroost_chunk_copies_corrupt{holder=\"hub\"} "
	    "%lld\nroost_chunk_copies_corrupt{holder=\"hosts\"} %lld\n",
	    (long long)hub, (long long)hosts);
}
