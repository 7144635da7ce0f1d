/* jobs: the hub's background work (docs/jobs.md) — gc, scrub, replicate —
 * as the rest of the hub and `roost admin` see it. The runner (runner.c)
 * takes a job's lease, runs it from its saved cursor and schedules the next
 * run; each job is one file (gc.c, scrub.c, replicate.c) behind the job table.
 *
 * Threads: the hub's jobs thread (jobs_start) runs every job; request
 * threads only read the jobs table (api_jobs, jobs_metrics); `roost admin`
 * runs one job in its own process. */
#ifndef ROOST_HUB_JOBS_H
#define ROOST_HUB_JOBS_H

#include "../hub.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JOB_LEASE_MS      10000ll              /* a runner's lease lasts this long unrenewed */
#define JOB_SAVE_EVERY_MS 1000ll               /* rate-bound work saves its cursor this often */
#define JOBS_POLL_MS      5000ll               /* the jobs thread looks for due jobs this often */
#define JOB_RATE_DEFAULT  (50.0 * 1024 * 1024) /* bytes/s read or copied */

/* What running a job, or one of its stages, came to: the one convention of
 * the jobs (docs/architecture.md). Never a DB_* code or an errno. */
enum job_result {
	JOB_OK = 0,     /* done; jobs_run's *result says what it did */
	JOB_BUSY,       /* another runner holds the lease: nothing was done */
	JOB_LEASE_LOST, /* the lease was lost mid-run (another runner has it): stopped */
	JOB_DB_ERR,     /* a database error: stopped, the cursor kept to resume */
	JOB_STORE_ERR,  /* the chunk store failed: stopped, the cursor kept to resume */
	JOB_UNKNOWN,    /* no job of that name */
};

/* The jobs, in the order the hub's jobs thread looks at them. */
enum { JOB_GC, JOB_SCRUB, JOB_REPLICATE, JOB_COUNT };

/* One job run's settings and connections. */
struct job_ctx {
	struct db *db;
	struct store *store;
	char owner[96]; /* who holds the lease: "HOSTNAME:PID:RANDOM" */
	/* The hub's jobs thread: take a job's lease only while it is due (or a
	 * lapsed run waits to be resumed). Another hub may have run it between
	 * this one's look at next_run_at and its lease_take; roost admin runs a
	 * job now whatever its schedule. */
	bool only_due;
	int64_t retention_ms;
	double rate;
	bool verbose;
	int64_t every_ms[JOB_COUNT]; /* how often each runs in the hub; 0: never */
};

/* The settings of cfg (defaults for what it leaves at -1); db and store are
 * the caller's to set. */
void jobs_ctx_init(struct job_ctx *c, const struct hub_config *cfg);
/* Run job name now, resuming a lapsed run's cursor. JOB_OK with *result (the
 * caller's to free), else the reason it did not finish. */
enum job_result jobs_run(struct job_ctx *c, const char *name, json_t **result);
/* A short description of a result, for logs and roost admin. */
const char *job_result_str(enum job_result rc);
/* The jobs table as JSON (state, runner, progress, last result), or NULL. */
json_t *jobs_list(struct db *db);
/* Prometheus lines for /metrics. */
void jobs_metrics(struct db *db, FILE *f);
/* The hub's jobs thread: each job when it is due, and the traffic counters. */
void jobs_start(struct hub *hub);
void jobs_stop(struct hub *hub);
/* GET /workspaces/W/jobs */
enum MHD_Result api_jobs(struct req *r);
/* roost admin gc|scrub|replicate|jobs (admin.c): exit code */
int hub_admin_job(const struct hub_config *cfg, const char *job, bool json);

#endif
