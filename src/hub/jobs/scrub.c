/* jobs/scrub: re-hash every chunk in the hub's storage at a bounded rate
 * (docs/jobs.md); a corrupt or missing one is quarantined, reported and
 * repaired from a host that holds it; then hosts are asked to scrub theirs.
 *
 * Threads: the hub's jobs thread, or a `roost admin scrub` process (job.h). */
#include "job.h"
#include "../hosts/hosts.h"
#include "../../core/chunker.h"
#include "../../core/hash.h"
#include "../../core/json.h"
#include "../../core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define SCRUB_EVERY_MS (7 * DAY_MS) /* how often the hub scrubs, by default */
#define SCRUB_BATCH    64           /* chunks per query */

/* What hosts' scrubs found since the previous run asked them (a host
 * scrubs after the run that asks, so a run reports the last round): host
 * copies re-verified ('ok' rows a host confirmed since; a host confirms only
 * bytes it hashed), copies marked corrupt, and the online hosts asked now. */
static enum job_result host_copies(struct job *j)
{
	int64_t since = 0, ok = 0, bad = 0, asked = 0, now = now_ms();
	db_int64(j->c->db, &since,
	         "SELECT COALESCE(finished_at, 0) FROM jobs WHERE name = 'scrub' AND result IS "
	         "NOT NULL");
	if (db_int64(j->c->db, &ok,
	             "SELECT COUNT(*) FROM chunk_replicas cr JOIN hosts h ON h.id = cr.host_id "
	             "WHERE h.revoked_at IS NULL AND cr.state = 'ok' AND cr.updated_at > ?",
	             since) != DB_ROW ||
	    db_int64(j->c->db, &bad,
	             "SELECT COUNT(*) FROM chunk_replicas cr JOIN hosts h ON h.id = cr.host_id "
	             "WHERE h.revoked_at IS NULL AND cr.state = 'corrupt'") != DB_ROW ||
	    db_int64(j->c->db, &asked,
	             "SELECT COUNT(*) FROM hosts h WHERE h.revoked_at IS NULL AND " HOST_ONLINE_SQL,
	             now) != DB_ROW)
		return JOB_DB_ERR;
	json_object_set_new(j->cur, "host_copies_verified", json_integer(ok));
	json_object_set_new(j->cur, "host_copies_corrupt", json_integer(bad));
	json_object_set_new(j->cur, "hosts_asked", json_integer(asked));
	return JOB_OK;
}

static enum job_result run_scrub(struct job *j)
{
	struct bucket b = {0};
	uint8_t *buf = xmalloc(CHUNK_MAX_LIMIT);
	enum job_result rc = JOB_OK;
	for (;;) {
		char after[HASH_HEX_LEN + 1];
		snprintf(after, sizeof after, "%s", job_cur_str(j, "after_chunk"));
		struct db_stmt *st =
		    db_query(j->c->db,
		             "SELECT chunk_hash FROM chunk_replicas WHERE holder = "
		             "'hub' AND chunk_hash > ? ORDER BY chunk_hash LIMIT ?",
		             after, (int64_t)SCRUB_BATCH);
		if (!st) {
			rc = JOB_DB_ERR;
			break;
		}
		char hashes[SCRUB_BATCH][HASH_HEX_LEN + 1];
		int n = 0, step;
		while (n < SCRUB_BATCH && (step = db_step(st)) == DB_ROW)
			snprintf(hashes[n++], sizeof hashes[0], "%s", db_col_text(st, 0));
		db_finalize(st);
		if (step == DB_ERR) {
			rc = JOB_DB_ERR;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (!job_lease_tick(j)) {
				rc = JOB_LEASE_LOST;
				break;
			}
			int64_t got = store_read(j->c->store, hashes[i], buf, CHUNK_MAX_LIMIT);
			job_cur_add(j, "chunks_checked", 1);
			json_object_set_new(j->cur, "after_chunk", json_string(hashes[i]));
			if (got >= 0) {
				job_cur_add(j, "bytes_checked", got);
				job_pace(j, &b, got);
				continue;
			}
			/* Corrupt (-EBADMSG) or gone (-ENOENT): set aside, report, repair. */
			const char *what = got == -ENOENT ? "missing" : "corrupt";
			if (got != -ENOENT && store_quarantine_corrupt(j->c->store, hashes[i]) == 1)
				continue; /* a good copy was stored over it meanwhile (an upload) */
			db_run(j->c->db,
			       "UPDATE chunk_replicas SET state = 'corrupt', updated_at = ? WHERE "
			       "chunk_hash = ? AND holder = 'hub'",
			       now_ms(), hashes[i]);
			/* nor is an upload's record proof of it now (ops/commit.c) */
			db_run(j->c->db,
			       "UPDATE chunk_uploads SET stored_at = NULL WHERE chunk_hash = ?",
			       hashes[i]);
			job_cur_add(j, got == -ENOENT ? "chunks_missing" : "chunks_corrupt", 1);
			int fixed = job_fetch_from_hosts(j, hashes[i], 0);
			job_cur_add(j, fixed == 0 ? "chunks_repaired" : "chunks_unrepaired", 1);
			job_chunk_audit(j->c->db, hashes[i],
			                fixed == 0 ? "chunk.repaired" : "chunk.corrupt",
			                json_pack("{s:s, s:s, s:b}", "holder", "hub", "found", what,
			                          "repaired", fixed == 0));
			log_warn("scrub: chunk %s in the hub's storage was %s; %s", hashes[i], what,
			         fixed == 0 ? "repaired from a host"
			                    : "no healthy copy reachable yet");
		}
		if (rc != JOB_OK || !job_lease_renew(j)) {
			rc = JOB_LEASE_LOST;
			break;
		}
		if (n < SCRUB_BATCH)
			break;
	}
	free(buf);
	/* Hosts scrub their own copies when asked: on the feed, and in the
	 * heartbeat's answer (scrub_requested_at, once this run's result has
	 * hosts_asked_at). The same time in both: a host scrubs once for it. */
	if (rc == JOB_OK) {
		int64_t asked = now_ms();
		json_object_set_new(j->cur, "hosts_asked_at", json_integer(asked));
		job_tell_workspaces(j, "scrub.requested",
		                    json_pack("{s:I}", "requested_at", (json_int_t)asked));
		rc = host_copies(j);
	}
	return rc;
}

static void scrub_summary(json_t *res)
{
	printf("scrub: %lld chunks (%lld bytes) checked; %lld corrupt, %lld missing, "
	       "%lld repaired, %lld not repaired yet%s\n",
	       (long long)json_integer_value(json_object_get(res, "chunks_checked")),
	       (long long)json_integer_value(json_object_get(res, "bytes_checked")),
	       (long long)json_integer_value(json_object_get(res, "chunks_corrupt")),
	       (long long)json_integer_value(json_object_get(res, "chunks_missing")),
	       (long long)json_integer_value(json_object_get(res, "chunks_repaired")),
	       (long long)json_integer_value(json_object_get(res, "chunks_unrepaired")),
	       json_is_true(json_object_get(res, "resumed")) ? " (resumed)" : "");
	printf("scrub: %lld online hosts asked to scrub; since the last request %lld host "
	       "copies verified, %lld host copies corrupt\n",
	       (long long)json_integer_value(json_object_get(res, "hosts_asked")),
	       (long long)json_integer_value(json_object_get(res, "host_copies_verified")),
	       (long long)json_integer_value(json_object_get(res, "host_copies_corrupt")));
}

const struct job_def job_scrub = {.name = "scrub",
                                  .run = run_scrub,
                                  .every_ms_default = SCRUB_EVERY_MS,
                                  .summary = scrub_summary};
