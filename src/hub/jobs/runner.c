/* jobs/runner: running the hub's background jobs (docs/jobs.md): the lease
 * and cursor of a run, the job table, the hub's jobs thread that runs each
 * job when it is due, and the jobs API (GET …/jobs, /metrics). The jobs
 * themselves are gc.c, scrub.c and replicate.c; roost admin's commands are
 * admin.c.
 *
 * One runner per job across every hub on a database: a lease row in `jobs`,
 * taken with one conditional UPDATE and renewed after every batch, together
 * with a cursor and the counts so far. A runner killed mid-way leaves both;
 * the next one (after the lease lapses) resumes at the cursor.
 *
 * Threads: jobs_main is the hub's one jobs thread (jobs_start/jobs_stop from
 * the main thread); request threads call api_jobs and jobs_metrics, which only
 * read the jobs table; `roost admin` calls jobs_run in its own process. */
#include "job.h"
#include "../meta.h"
#include "../traffic.h"
#include "../../core/json.h"
#include "../../core/util.h"

#include <malloc.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOBS_STOP_CHECK_MS 100 /* the jobs thread notices jobs_stop this fast */

const struct job_def *const jobs_table[JOB_COUNT] = {
    [JOB_GC] = &job_gc, [JOB_SCRUB] = &job_scrub, [JOB_REPLICATE] = &job_replicate};

int64_t job_cur_int(struct job *j, const char *k)
{
	return json_integer_value(json_object_get(j->cur, k));
}

void job_cur_add(struct job *j, const char *k, int64_t n)
{
	json_object_set_new(j->cur, k, json_integer(job_cur_int(j, k) + n));
}

const char *job_cur_str(struct job *j, const char *k)
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
	             "lease_owner = ?) AND (? = 0 OR cursor IS NOT NULL OR "
	             "COALESCE(next_run_at, 0) <= ?) RETURNING cursor",
	             j->c->owner, now + JOB_LEASE_MS, now, j->name, now, j->c->owner,
	             (int64_t)j->c->only_due, now);
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

bool job_lease_tick(struct job *j)
{
	return mono_ms() - j->renewed < JOB_SAVE_EVERY_MS || job_lease_renew(j);
}

/* A failed renewal reads as a lost lease even when the database failed:
 * either way this runner can no longer tell that the lease is its own. */
bool job_lease_renew(struct job *j)
{
	char *cur = json_dumps(j->cur, JSON_COMPACT | JSON_SORT_KEYS);
	int64_t one = 0;
	int rc =
	    db_int64(j->c->db, &one,
	             "UPDATE jobs SET lease_until = ?, cursor = ?, progress = ? WHERE name = ? "
	             "AND lease_owner = ? RETURNING 1",
	             now_ms() + JOB_LEASE_MS, cur, cur, j->name, j->c->owner);
	free(cur);
	progress(j);
	j->renewed = mono_ms();
	if (rc != DB_ROW)
		log_warn("jobs: %s lost its lease; another runner has it", j->name);
	return rc == DB_ROW;
}

static void lease_finish(struct job *j, json_t *result, int64_t next_run_at)
{
	char *res = json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS);
	db_run(j->c->db,
	       "UPDATE jobs SET state = 'idle', lease_owner = NULL, lease_until = NULL, cursor = "
	       "NULL, progress = NULL, result = ?, finished_at = ?, runs = runs + 1, next_run_at = "
	       "? WHERE name = ? AND lease_owner = ?",
	       res, now_ms(), next_run_at, j->name, j->c->owner);
	free(res);
}

/* ---- what jobs share: audit rows, pacing, announcements ---- */

void job_audit(struct db *db, int64_t ws, const char *action, const char *target, json_t *detail)
{
	char *d = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
	json_decref(detail);
	db_run(db,
	       "INSERT INTO audit_log(workspace_id, action, target, at, client_addr, detail) "
	       "VALUES(?,?,?,?,'job',?)",
	       ws, action, target, now_ms(), d);
	free(d);
}

void job_chunk_audit(struct db *db, const char *hash, const char *action, json_t *detail)
{
	struct db_stmt *st = db_query(
	    db, "SELECT DISTINCT workspace_id FROM workspace_chunks WHERE chunk_hash = ?", hash);
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

void job_pace(struct job *j, struct bucket *b, int64_t bytes)
{
	if (j->c->rate <= 0)
		return;
	int64_t wait = bucket_wait_ms(b, j->c->rate, j->c->rate, (double)bytes, mono_ms());
	if (wait > 0)
		usleep((useconds_t)(wait * 1000));
	bucket_take(b, j->c->rate, j->c->rate, (double)bytes, mono_ms());
}

void job_tell_workspaces(struct job *j, const char *kind, json_t *payload)
{
	struct db_stmt *st = db_query(j->c->db, "SELECT id FROM workspaces");
	int64_t ws[256];
	int n = 0;
	while (st && n < 256 && db_step(st) == DB_ROW)
		ws[n++] = db_col_int64(st, 0);
	db_finalize(st);
	for (int i = 0; i < n; i++)
		if (meta_begin(j->c->db, ws[i]) == DB_DONE) {
			if (meta_change(j->c->db, ws[i], kind, "job", json_deep_copy(payload)) ==
			        0 &&
			    db_commit(j->c->db) == DB_DONE)
				continue;
			db_rollback(j->c->db);
		}
	json_decref(payload);
}

/* ---- running a job ---- */

/* The table's entry for name, or -1. */
static int job_index(const char *name)
{
	for (int i = 0; i < JOB_COUNT; i++)
		if (strcmp(jobs_table[i]->name, name) == 0)
			return i;
	return -1;
}

const char *job_result_str(enum job_result rc)
{
	switch (rc) {
	case JOB_OK:
		return "done";
	case JOB_BUSY:
		return "another runner holds the lease";
	case JOB_LEASE_LOST:
		return "lost the lease to another runner";
	case JOB_DB_ERR:
		return "database error";
	case JOB_STORE_ERR:
		return "chunk store error";
	case JOB_UNKNOWN:
		return "no such job";
	}
	return "?";
}

enum job_result jobs_run(struct job_ctx *c, const char *name, json_t **result)
{
	*result = NULL;
	int idx = job_index(name);
	if (idx < 0)
		return JOB_UNKNOWN;
	struct job j = {.c = c, .name = name, .renewed = mono_ms()};
	int taken = lease_take(&j);
	if (taken <= 0)
		return taken == 0 ? JOB_BUSY : JOB_DB_ERR;
	int64_t started = now_ms();
	enum job_result rc = jobs_table[idx]->run(&j);
	if (rc == JOB_OK) {
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
		int64_t every = c->every_ms[idx];
		lease_finish(&j, res, now_ms() + (every > 0 ? every : DAY_MS));
		*result = res;
	} else if (rc != JOB_LEASE_LOST) {
		/* Keep the cursor; let the lease lapse so any runner resumes. */
		db_run(c->db, "UPDATE jobs SET lease_until = 0 WHERE name = ? AND lease_owner = ?",
		       name, c->owner);
	}
	json_decref(j.cur);
	return rc;
}

json_t *jobs_list(struct db *db)
{
	struct db_stmt *st =
	    db_query(db, "SELECT name, state, lease_owner, lease_until, progress, "
	                 "result, started_at, finished_at, runs, next_run_at FROM jobs "
	                 "ORDER BY name");
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

void jobs_ctx_init(struct job_ctx *c, const struct hub_config *cfg)
{
	memset(c, 0, sizeof *c);
	char host[64] = "hub";
	gethostname(host, sizeof host - 1);
	/* The random part keeps two hubs apart that share a host name and a PID
	 * (containers: each hub is PID 1 of a "hub" host). */
	uint32_t rnd = 0;
	randombytes_buf(&rnd, sizeof rnd);
	snprintf(c->owner, sizeof c->owner, "%s:%d:%08x", host, (int)getpid(), rnd);
	c->retention_ms = cfg->gc_retention_ms;
	c->rate = cfg->job_rate < 0 ? 0 : cfg->job_rate > 0 ? cfg->job_rate : JOB_RATE_DEFAULT;
	const int64_t every[JOB_COUNT] = {[JOB_GC] = cfg->gc_every_ms,
	                                  [JOB_SCRUB] = cfg->scrub_every_ms,
	                                  [JOB_REPLICATE] = cfg->replicate_every_ms};
	for (int i = 0; i < JOB_COUNT; i++)
		c->every_ms[i] = every[i] < 0 ? jobs_table[i]->every_ms_default : every[i];
}

static void *jobs_main(void *arg)
{
	struct hub *hub = arg;
	struct job_ctx c;
	jobs_ctx_init(&c, &hub->cfg);
	c.store = hub->store;
	c.only_due = true;
	int64_t trimmed = mono_ms();
	while (!atomic_load(&hub->jobs_stopping)) {
		c.db = db_pool_acquire(hub->pool);
		for (int i = 0; i < JOB_COUNT && !atomic_load(&hub->jobs_stopping); i++) {
			const char *name = jobs_table[i]->name;
			int64_t every = c.every_ms[i];
			int64_t due = 0;
			if (every <= 0 ||
			    db_int64(c.db, &due,
			             "SELECT COALESCE(next_run_at, 0) FROM jobs WHERE name = ?",
			             name) != DB_ROW)
				continue;
			if (due == 0) { /* first sight: not at once, every hub start would */
				db_run(c.db, "UPDATE jobs SET next_run_at = ? WHERE name = ?",
				       now_ms() + every, name);
				continue;
			}
			if (due > now_ms())
				continue;
			json_t *res = NULL;
			if (jobs_run(&c, name, &res) == JOB_OK) {
				char *s = json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS);
				log_info("jobs: %s done: %s", name, s);
				free(s);
			}
			json_decref(res);
		}
		traffic_flush(hub, c.db);
		db_pool_release(hub->pool, c.db);
		/* Memory freed by request threads stays in glibc's per-thread
		 * arenas, so RSS climbs to the sum of their peaks (the soak saw
		 * 60 -> 69 MiB with 11 MB in use): give it back once a minute. */
		if (mono_ms() - trimmed >= 60000) {
			malloc_trim(0);
			trimmed = mono_ms();
		}
		for (int k = 0;
		     k < JOBS_POLL_MS / JOBS_STOP_CHECK_MS && !atomic_load(&hub->jobs_stopping);
		     k++)
			usleep(JOBS_STOP_CHECK_MS * 1000);
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
		         "'hub'");
		db_int64(db, &hosts,
		         "SELECT COUNT(*) FROM chunk_replicas WHERE state = 'corrupt' AND holder "
		         "<> 'hub'");
	}
	fprintf(
	    f,
	    "# TYPE roost_chunk_copies_corrupt gauge\nroost_chunk_copies_corrupt{holder=\"hub\"} "
	    "%lld\nroost_chunk_copies_corrupt{holder=\"hosts\"} %lld\n",
	    (long long)hub, (long long)hosts);
}
