/* jobs/job.h: what a job's file (gc.c, scrub.c, replicate.c) sees of the
 * runner (runner.c), and the job table. The runner owns the lease and the
 * cursor; a job reads and advances its cursor (j->cur), renews the lease
 * after every batch (or job_lease_tick in slow work) and stops at once with
 * JOB_LEASE_LOST when that fails.
 *
 * Threads: one job runs at a time, on the hub's jobs thread or in a `roost
 * admin` process, on one database connection; nothing here is shared. */
#ifndef ROOST_HUB_JOBS_JOB_H
#define ROOST_HUB_JOBS_JOB_H

#include "jobs.h"
#include "../../core/ratelimit.h"

#define JOB_BATCH       256 /* rows per batch, between lease renewals */
#define DAY_MS          (24ll * 3600 * 1000)
#define UPLOAD_LEASE_MS (3600 * 1000ll) /* a grant touched this recently is kept */

struct job {
	struct job_ctx *c;
	const char *name;
	json_t *cur; /* {"stage", "after", counters…}: saved with every renewal */
	bool resumed;
	int64_t renewed; /* mono_ms of the last renewal */
};

/* A job in the table: its name (a row in the jobs table), what runs it, how
 * often the hub runs it unless told (--gc-every…), and roost admin's one-line
 * summary of a result. */
struct job_def {
	const char *name;
	enum job_result (*run)(struct job *j);
	int64_t every_ms_default;
	void (*summary)(json_t *result);
};
extern const struct job_def job_gc, job_scrub, job_replicate;
/* Indexed by JOB_GC, JOB_SCRUB, JOB_REPLICATE. */
extern const struct job_def *const jobs_table[JOB_COUNT];

/* The cursor's members: a counter, adding to it, a string ("" if none). */
int64_t job_cur_int(struct job *j, const char *k);
void job_cur_add(struct job *j, const char *k, int64_t n);
const char *job_cur_str(struct job *j, const char *k);
/* Save the cursor and extend the lease; false if it was lost (then stop). */
bool job_lease_renew(struct job *j);
/* The same at most every JOB_SAVE_EVERY_MS, for slow (rate-bounded) work. */
bool job_lease_tick(struct job *j);
/* Wait as the run's byte rate asks (b holds one second's worth). */
void job_pace(struct job *j, struct bucket *b, int64_t bytes);
/* Audit rows written by a job (no request behind them): in workspace ws; in
 * every workspace that holds chunk hash. detail is stolen. */
void job_audit(struct db *db, int64_t ws, const char *action, const char *target, json_t *detail);
void job_chunk_audit(struct db *db, const char *hash, const char *action, json_t *detail);
/* A change of kind (payload: stolen, copied into each) on every workspace's
 * feed: what hosts act on (chunks collected, scrub requested). */
void job_tell_workspaces(struct job *j, const char *kind, json_t *payload);
/* Fetch chunk hash from an online host that holds it into the hub's storage,
 * verified (replicate.c). 0 repaired, -ENOENT no healthy copy reachable, <0
 * error. */
int job_fetch_from_hosts(struct job *j, const char *hash, int64_t ws);
/* Is a backup's fence up (gc_fences, docs/operations.md)? Asked inside the
 * transaction that would delete a chunk: DB_ROW yes (keep it), DB_DONE no,
 * DB_ERR. Counts a fenced chunk in the cursor's "backup_fenced". */
int job_gc_fenced(struct job *j);
/* The hub cache's eviction in 'hosts' workspaces (evict.c), after replicate. */
enum job_result job_evict(struct job *j);

#endif
