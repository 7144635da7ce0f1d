/* jobs/admin: roost admin gc|scrub|replicate|jobs — one job run now in this
 * process (against the hub's database and store, while the hub runs or not:
 * the lease keeps runners apart), or the jobs table printed.
 *
 * Threads: the command's main thread only. */
#include "job.h"
#include "../chunksrc.h"
#include "../init.h"
#include "../../core/json.h"
#include "../../core/util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	    db_int64(db, &users, "SELECT COUNT(*) FROM users") != DB_ROW || users == 0) {
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
	int ca = chunksrc_set_host_ca(cfg->host_ca);
	if (ca != 0) {
		fprintf(stderr, "roost admin %s: --host-ca %s: %s\n", job, cfg->host_ca,
		        strerror(-ca));
		db_close(db);
		return 1;
	}
	struct job_ctx c;
	jobs_ctx_init(&c, cfg);
	c.db = db;
	c.verbose = !json;
	char *serr = NULL;
	c.store = hub_store_open(cfg, true, &serr); /* the hub may be serving */
	if (!c.store) {
		fprintf(stderr, "roost admin %s: %s\n", job, serr);
		free(serr);
		db_close(db);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	json_t *res = NULL;
	enum job_result r = jobs_run(&c, job, &res);
	if (r == JOB_BUSY) {
		fprintf(stderr,
		        "roost admin %s: another runner holds this job now (see 'roost admin "
		        "jobs'); try again when it is done\n",
		        job);
		rc = 3;
	} else if (r == JOB_DB_ERR) {
		fprintf(stderr, "roost admin %s: failed (database: %s); run it again to resume\n",
		        job, db_errmsg(db));
	} else if (r != JOB_OK) {
		fprintf(stderr, "roost admin %s: failed (%s); run it again to resume\n", job,
		        job_result_str(r));
	} else {
		int64_t bad = json_integer_value(json_object_get(res, "chunks_corrupt")) +
		              json_integer_value(json_object_get(res, "chunks_missing"));
		if (json)
			print_json_stdout(json_incref(res));
		else
			for (int i = 0; i < JOB_COUNT; i++)
				if (strcmp(jobs_table[i]->name, job) == 0)
					jobs_table[i]->summary(res);
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
