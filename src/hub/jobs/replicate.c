/* jobs/replicate: fetch into the hub's storage the chunks it lacks (lost,
 * quarantined) from online hosts, at a bounded rate; then give chunks with
 * fewer copies than their workspace's min_replicas one more on a host, and
 * release the copies so made once they are not needed (docs/jobs.md). The
 * fetch from hosts is scrub's repair too.
 *
 * Threads: the hub's jobs thread, or a `roost admin replicate|scrub` process
 * (job.h). */
#include "job.h"
#include "../tokens.h"
#include "../hosts/hosts.h"
#include "../../client/client.h"
#include "../../core/hash.h"
#include "../../core/json.h"
#include "../../core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define REPLICATE_EVERY_MS     (10ll * 60 * 1000) /* how often the hub replicates, by default */
#define REPLICATE_BATCH        64
#define REPLICA_HEADROOM_BYTES (64ll << 20) /* a host keeps this much free besides the chunk */
#define FETCH_TOKEN_TTL_MS     60000ll      /* the chunk token shown to a host */
#define FETCH_TIMEOUT_S        60L          /* one chunk from one host */

static size_t collect(char *p, size_t size, size_t n, void *cls)
{
	struct store_writer *w = cls;
	return store_writer_write(w, p, size * n) == 0 ? size * n : 0;
}

int job_fetch_from_hosts(struct job *j, const char *hash)
{
	struct db_stmt *st =
	    db_query(j->c->db,
	             "SELECT h.url, h.workspace_id FROM chunk_replicas cr JOIN hosts h ON h.id = "
	             "cr.host_id WHERE cr.chunk_hash = ? AND cr.state = 'ok' AND h.revoked_at IS "
	             "NULL AND h.url IS NOT NULL AND h.status = 'online' AND h.last_seen + 3 * "
	             "COALESCE(h.heartbeat_ms, " STRINGIFY(
	                 HOST_HEARTBEAT_MS_DEFAULT) ") > ? ORDER BY h.last_seen DESC LIMIT 4",
	             hash, now_ms());
	char urls[4][512];
	int64_t wss[4];
	int n = 0;
	while (st && n < 4 && db_step(st) == DB_ROW) {
		snprintf(urls[n], sizeof urls[n], "%s", db_col_text(st, 0));
		wss[n++] = db_col_int64(st, 1);
	}
	db_finalize(st);
	for (int i = 0; i < n; i++) {
		char *tok =
		    tokens_sign(j->c->db, json_pack("{s:I, s:s, s:I}", "ws", (json_int_t)wss[i],
		                                    "scope", "chunks", "exp",
		                                    (json_int_t)(now_ms() + FETCH_TOKEN_TTL_MS)));
		if (!tok)
			return -EIO;
		/* The host's content server takes the chunk token as a bearer. */
		struct client host = {.hub = urls[i], .token = tok, .timeout_s = FETCH_TIMEOUT_S};
		char *url = xasprintf("%s/chunks/%s", urls[i], hash);
		struct store_writer *w = store_writer_new(j->c->store);
		CURL *c = client_curl(&host);
		long status = client_get_to(&host, c, url, collect, w);
		char got[HASH_HEX_LEN + 1];
		int rc = status == 200 ? store_writer_commit(w, hash, got) : -EIO;
		if (status != 200)
			store_writer_abort(w);
		curl_easy_cleanup(c);
		free(url);
		free(tok);
		if (rc == 0) {
			db_run(j->c->db,
			       "UPDATE chunk_replicas SET state = 'ok', updated_at = ? WHERE "
			       "chunk_hash "
			       "= ? AND holder = 'hub'",
			       now_ms(), hash);
			return 0;
		}
	}
	return -ENOENT;
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
static enum job_result replicate_to_hosts(struct job *j)
{
	struct db *db = j->c->db;
	struct db_stmt *st =
	    db_query(db, "SELECT id, min_replicas, replica_grace_s FROM workspaces ORDER BY id");
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
		st = db_query(db, under, ws[w], cutoff, minr[w]);
		free(under);
		json_t *want = json_array();
		while (st && db_step(st) == DB_ROW)
			json_array_append_new(want,
			                      json_pack("{s:s, s:I}", "hash", db_col_text(st, 0),
			                                "size", (json_int_t)db_col_int64(st, 1)));
		db_finalize(st);
		if (!st) {
			json_decref(want);
			return JOB_DB_ERR;
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
			    "h.status = 'online' AND h.last_seen + 3 * "
			    "COALESCE(h.heartbeat_ms, " STRINGIFY(
			        HOST_HEARTBEAT_MS_DEFAULT) ") > ? "
			                                   "AND COALESCE(h.free_bytes, 0) > ? AND "
			                                   "NOT EXISTS (SELECT 1 FROM "
			                                   "chunk_replicas cr WHERE cr.chunk_hash "
			                                   "= ? AND cr.host_id = h.id AND "
			                                   "cr.state "
			                                   "IN ('ok', 'pending')) ORDER BY "
			                                   "h.free_bytes DESC LIMIT 1",
			    ws[w], now, size + REPLICA_HEADROOM_BYTES, hash);
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
			           hash, holder, target, now) != DB_DONE) {
				json_decref(want);
				return JOB_DB_ERR;
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
		         "SELECT COUNT(*) FROM chunk_replicas WHERE state = 'released'");
		int rc = db_run(db, surplus, now, ws[w], cutoff, minr[w]);
		free(surplus);
		if (rc != DB_DONE)
			return JOB_DB_ERR;
		db_int64(db, &after,
		         "SELECT COUNT(*) FROM chunk_replicas WHERE state = 'released'");
		job_cur_add(j, "copies_assigned", assigned);
		job_cur_add(j, "copies_released", after - before);
		if (assigned || after > before)
			job_audit(db, ws[w], "replicas.rebalance", NULL,
			          json_pack("{s:I, s:I}", "assigned", (json_int_t)assigned,
			                    "released", (json_int_t)(after - before)));
		if (!job_lease_renew(j))
			return JOB_LEASE_LOST;
	}
	return JOB_OK;
}

/* Chunks some version uses that the hub's storage lacks (a lost or corrupt
 * copy): fetched back from hosts. Then copies on hosts, for min_replicas. */
static enum job_result run_replicate(struct job *j)
{
	struct bucket b = {0};
	for (;;) {
		char after[HASH_HEX_LEN + 1];
		snprintf(after, sizeof after, "%s", job_cur_str(j, "after_chunk"));
		struct db_stmt *st = db_query(
		    j->c->db,
		    "SELECT c.hash, c.size FROM chunks c WHERE c.hash > ? AND c.refcount > 0 "
		    "AND NOT EXISTS (SELECT 1 FROM chunk_replicas cr WHERE cr.chunk_hash = "
		    "c.hash AND cr.holder = 'hub' AND cr.state = 'ok') ORDER BY c.hash LIMIT ?",
		    after, (int64_t)REPLICATE_BATCH);
		if (!st)
			return JOB_DB_ERR;
		char hashes[REPLICATE_BATCH][HASH_HEX_LEN + 1];
		int64_t sizes[REPLICATE_BATCH];
		int n = 0, step;
		while (n < REPLICATE_BATCH && (step = db_step(st)) == DB_ROW) {
			snprintf(hashes[n], sizeof hashes[0], "%s", db_col_text(st, 0));
			sizes[n++] = db_col_int64(st, 1);
		}
		db_finalize(st);
		if (step == DB_ERR)
			return JOB_DB_ERR;
		for (int i = 0; i < n; i++) {
			if (!job_lease_tick(j))
				return JOB_LEASE_LOST;
			job_pace(j, &b, sizes[i]);
			json_object_set_new(j->cur, "after_chunk", json_string(hashes[i]));
			if (db_run(
			        j->c->db,
			        "INSERT INTO chunk_replicas(chunk_hash, holder, state, updated_at) "
			        "VALUES(?, 'hub', 'pending', ?) ON CONFLICT(chunk_hash, holder) DO "
			        "NOTHING",
			        hashes[i], now_ms()) != DB_DONE)
				return JOB_DB_ERR;
			int rc = job_fetch_from_hosts(j, hashes[i]);
			job_cur_add(j, rc == 0 ? "chunks_copied" : "chunks_unavailable", 1);
			if (rc == 0) {
				job_cur_add(j, "bytes_copied", sizes[i]);
				job_chunk_audit(j->c->db, hashes[i], "chunk.replicated",
				                json_pack("{s:s}", "to", "hub"));
			}
		}
		if (!job_lease_renew(j))
			return JOB_LEASE_LOST;
		if (n < REPLICATE_BATCH)
			return replicate_to_hosts(j);
	}
}

static void replicate_summary(json_t *res)
{
	printf("replicate: %lld chunks (%lld bytes) copied to the hub, %lld with no "
	       "reachable copy; %lld copies asked of hosts, %lld released\n",
	       (long long)json_integer_value(json_object_get(res, "chunks_copied")),
	       (long long)json_integer_value(json_object_get(res, "bytes_copied")),
	       (long long)json_integer_value(json_object_get(res, "chunks_unavailable")),
	       (long long)json_integer_value(json_object_get(res, "copies_assigned")),
	       (long long)json_integer_value(json_object_get(res, "copies_released")));
}

const struct job_def job_replicate = {.name = "replicate",
                                      .run = run_replicate,
                                      .every_ms_default = REPLICATE_EVERY_MS,
                                      .summary = replicate_summary};
