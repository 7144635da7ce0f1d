/* jobs/replicate: fetch into the hub's storage the chunks it lacks (lost,
 * quarantined) from online hosts, at a bounded rate; then give chunks with
 * fewer copies than their workspace's min_replicas one more on a host, and
 * release the copies so made once they are not needed (docs/jobs.md). The
 * fetch from hosts is scrub's repair too.
 *
 * Threads: the hub's jobs thread, or a `roost admin replicate|scrub` process
 * (job.h). */
#include "job.h"
#include "../chunksrc.h"
#include "../hosts/hosts.h"
#include "../../core/hash.h"
#include "../../core/json.h"
#include "../../core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLICATE_EVERY_MS     (10ll * 60 * 1000) /* how often the hub replicates, by default */
#define REPLICATE_BATCH        64
#define REPLICA_HEADROOM_BYTES (64ll << 20) /* a host keeps this much free besides the chunk */

/* From hosts through chunksrc, as the hub's downloads do (direct URL, then
 * relay; verified). */
int job_fetch_from_hosts(struct job *j, const char *hash, int64_t ws)
{
	return chunksrc_fetch_to_store(j->c->db, j->c->store, ws, hash);
}

/* SQL: copies of chunk `hash` assigned to the hosts of workspace row w
 * (their copies HOSTS_COPIES_SQL would count once made), given now (?). The
 * job does not ask for more while they are on their way. */
#define PENDING_SQL(hash)                                                                          \
	"(SELECT COUNT(*) FROM chunk_replicas p JOIN hosts ph ON ph.id = p.host_id WHERE "         \
	"p.chunk_hash = " hash " AND p.state = 'pending' AND ph.workspace_id = w.id AND "          \
	"ph.revoked_at IS NULL AND ph.last_seen + CAST(w.replica_grace_s AS BIGINT) * 1000 > ?)"

/* Which chunks a workspace keeps min_replicas copies of: in 'hub' mode those
 * of current files (the hub's store holds all of them anyway); in 'hosts'
 * mode those of every version (kept versions are restorable and the hub's
 * copy is only cache). Copies are counted by the one rule (HOSTS_COPIES_SQL:
 * the hub's counts in 'hub' mode only). */
#define LIVE_CURRENT_SQL                                                                           \
	"SELECT DISTINCT vc.chunk_hash FROM files f JOIN version_chunks vc ON vc.version_id = "    \
	"f.current_version_id WHERE f.workspace_id = ? AND f.deleted_at IS NULL"
#define LIVE_ALL_SQL                                                                               \
	"SELECT DISTINCT vc.chunk_hash FROM files f JOIN file_versions v ON v.file_id = f.id "     \
	"JOIN "                                                                                    \
	"version_chunks vc ON vc.version_id = v.id WHERE f.workspace_id = ?"

/* Per workspace: chunks of current files with fewer copies than min_replicas
 * get one more, on the online host with the most room that lacks it (it
 * fetches the chunk into its cache and keeps it there); copies made so that
 * are released once the chunk has enough without them (a host came back). */
static enum job_result replicate_to_hosts(struct job *j)
{
	struct db *db = j->c->db;
	struct db_stmt *st = db_query(db, "SELECT id, storage FROM workspaces ORDER BY id");
	int64_t ws[256];
	bool hosts_mode[256];
	int nws = 0;
	while (st && nws < 256 && db_step(st) == DB_ROW) {
		ws[nws] = db_col_int64(st, 0);
		hosts_mode[nws++] = strcmp(db_col_text(st, 1), "hosts") == 0;
	}
	db_finalize(st);
	for (int w = 0; w < nws; w++) {
		int64_t now = now_ms();
		char *under =
		    xasprintf("SELECT u.chunk_hash, c.size FROM (%s) u JOIN chunks c ON c.hash = "
		              "u.chunk_hash "
		              "JOIN workspaces w ON w.id = ? WHERE " HOSTS_COPIES_SQL(
		                  "u.chunk_hash",
		                  "w") " + " PENDING_SQL("u.chunk_hash") " < w.min_replicas "
		                                                         "ORDER BY u.chunk_hash "
		                                                         "LIMIT 4096",
		              hosts_mode[w] ? LIVE_ALL_SQL : LIVE_CURRENT_SQL);
		st = db_query(db, under, ws[w], ws[w], now, now);
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
		const char *surplus =
		    "UPDATE chunk_replicas SET state = 'released', updated_at = ? WHERE assigned = "
		    "1 "
		    "AND state IN ('ok', 'pending') AND host_id IN (SELECT id FROM hosts WHERE "
		    "workspace_id = ?) AND EXISTS (SELECT 1 FROM workspaces w WHERE w.id = ? AND "
		    "" HOSTS_COPIES_EXCEPT_SQL("chunk_replicas.chunk_hash", "w",
		                               "chunk_replicas.holder") " >= w.min_replicas)";
		int64_t before = 0, after = 0;
		db_int64(db, &before,
		         "SELECT COUNT(*) FROM chunk_replicas WHERE state = 'released'");
		int rc = db_run(db, surplus, now, ws[w], ws[w], now);
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

/* SQL: (hash, size, workspace, proven) of chunks the hub must fetch into its
 * store, after hash ?, given now ? (LIMIT ?). In a 'hub' workspace: every
 * chunk a version uses (current or kept: all are restorable) that the hub
 * lacks or has not proven for the workspace (after a switch from 'hosts'
 * too). In a 'hosts' workspace: such a chunk with fewer than min_replicas
 * verified copies on the workspace's hosts, used by a version older than
 * replica_grace_s — a single laptop never holds the only copy for longer. */
#define HUB_WANTS_SQL                                                                              \
	"SELECT DISTINCT vc.chunk_hash, c.size, w.id, COALESCE(g.proven, 1) FROM version_chunks "  \
	"vc JOIN file_versions v ON v.id = vc.version_id JOIN files f ON f.id = v.file_id JOIN "   \
	"workspaces w ON w.id = f.workspace_id JOIN chunks c ON c.hash = vc.chunk_hash LEFT JOIN " \
	"workspace_chunks g ON g.workspace_id = w.id AND g.chunk_hash = vc.chunk_hash WHERE "      \
	"vc.chunk_hash > ? AND (COALESCE(g.proven, 1) = 0 OR NOT EXISTS (SELECT 1 FROM "           \
	"chunk_replicas cr WHERE cr.chunk_hash = vc.chunk_hash AND cr.holder = 'hub' AND "         \
	"cr.state = 'ok')) AND (w.storage <> 'hosts' OR (v.created_at + "                          \
	"CAST(w.replica_grace_s AS BIGINT) * 1000 < ? AND " HOSTS_COPIES_SQL(                      \
	    "vc.chunk_hash", "w") " < w.min_replicas)) ORDER BY vc.chunk_hash LIMIT ?"

/* Fetch one chunk the hub wants (HUB_WANTS_SQL's row) from hosts. An
 * unproven grant is fetched from the workspace's own hosts only, and proven
 * by it (docs/jobs.md). */
static void hub_fetch(struct job *j, const char *hash, int64_t size, int64_t ws, bool proven)
{
	int rc = job_fetch_from_hosts(j, hash, proven ? 0 : ws);
	if (rc == 0 && !proven)
		rc = db_run(j->c->db,
		            "UPDATE workspace_chunks SET proven = 1 WHERE workspace_id = ? AND "
		            "chunk_hash = ?",
		            ws, hash) == DB_DONE
		         ? 0
		         : -EIO;
	job_cur_add(j, rc == 0 ? "chunks_copied" : "chunks_unavailable", 1);
	if (rc == 0) {
		job_cur_add(j, "bytes_copied", size);
		job_audit(j->c->db, ws, "chunk.replicated", hash,
		          json_pack("{s:s, s:b}", "to", "hub", "proven", !proven));
	}
}

/* Chunks the hub's store must hold (HUB_WANTS_SQL) fetched from hosts; then
 * copies on hosts for min_replicas; then the hub cache's eviction. */
static enum job_result run_replicate(struct job *j)
{
	struct bucket b = {0};
	for (;;) {
		char after[HASH_HEX_LEN + 1];
		snprintf(after, sizeof after, "%s", job_cur_str(j, "after_chunk"));
		int64_t now = now_ms();
		struct db_stmt *st =
		    db_query(j->c->db, HUB_WANTS_SQL, after, now, now, (int64_t)REPLICATE_BATCH);
		if (!st)
			return JOB_DB_ERR;
		char hashes[REPLICATE_BATCH][HASH_HEX_LEN + 1];
		int64_t sizes[REPLICATE_BATCH], wss[REPLICATE_BATCH], proven[REPLICATE_BATCH];
		int n = 0, step;
		while (n < REPLICATE_BATCH && (step = db_step(st)) == DB_ROW) {
			snprintf(hashes[n], sizeof hashes[0], "%s", db_col_text(st, 0));
			sizes[n] = db_col_int64(st, 1);
			wss[n] = db_col_int64(st, 2);
			proven[n++] = db_col_int64(st, 3);
		}
		db_finalize(st);
		if (step == DB_ERR)
			return JOB_DB_ERR;
		for (int i = 0; i < n; i++) {
			if (!job_lease_tick(j))
				return JOB_LEASE_LOST;
			job_pace(j, &b, sizes[i]);
			json_object_set_new(j->cur, "after_chunk", json_string(hashes[i]));
			hub_fetch(j, hashes[i], sizes[i], wss[i], proven[i] != 0);
		}
		if (!job_lease_renew(j))
			return JOB_LEASE_LOST;
		if (n < REPLICATE_BATCH)
			break;
	}
	enum job_result rc = replicate_to_hosts(j);
	return rc == JOB_OK ? job_evict(j) : rc;
}

static void replicate_summary(json_t *res)
{
	printf("replicate: %lld chunks (%lld bytes) copied to the hub, %lld with no "
	       "reachable copy; %lld copies asked of hosts, %lld released; %lld chunks "
	       "(%lld bytes) evicted from the hub's cache\n",
	       (long long)json_integer_value(json_object_get(res, "chunks_copied")),
	       (long long)json_integer_value(json_object_get(res, "bytes_copied")),
	       (long long)json_integer_value(json_object_get(res, "chunks_unavailable")),
	       (long long)json_integer_value(json_object_get(res, "copies_assigned")),
	       (long long)json_integer_value(json_object_get(res, "copies_released")),
	       (long long)json_integer_value(json_object_get(res, "chunks_evicted")),
	       (long long)json_integer_value(json_object_get(res, "bytes_evicted")));
}

const struct job_def job_replicate = {.name = "replicate",
                                      .run = run_replicate,
                                      .every_ms_default = REPLICATE_EVERY_MS,
                                      .summary = replicate_summary};
