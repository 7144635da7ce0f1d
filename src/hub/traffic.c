/* traffic: bytes received and sent per workspace, for the dashboard's
 * transfer chart (GET usage/history). Counted in memory on every request and
 * added to transfer_hourly by the jobs thread every few seconds: one upsert
 * per workspace and hour instead of a write per request. A hub killed loses
 * at most those few seconds of counts. */
#include "hub.h"
#include "traffic.h"
#include "../core/util.h"

#include <pthread.h>
#include <stdlib.h>

#define HOUR_MS (3600 * 1000ll)

struct tally {
	int64_t ws, in, out;
};

struct traffic {
	pthread_mutex_t mu;
	struct tally *t;
	size_t n, cap;
};

struct traffic *traffic_new(void)
{
	struct traffic *tr = xcalloc(1, sizeof *tr);
	pthread_mutex_init(&tr->mu, NULL);
	return tr;
}

void traffic_free(struct traffic *tr)
{
	if (!tr)
		return;
	pthread_mutex_destroy(&tr->mu);
	free(tr->t);
	free(tr);
}

void traffic_add(struct hub *hub, int64_t ws, int64_t in, int64_t out)
{
	struct traffic *tr = hub->traffic;
	if (!tr || ws <= 0 || (in <= 0 && out <= 0))
		return;
	pthread_mutex_lock(&tr->mu);
	size_t i = 0;
	while (i < tr->n && tr->t[i].ws != ws)
		i++;
	if (i == tr->n) {
		if (tr->n == tr->cap)
			tr->t =
			    xrealloc(tr->t, (tr->cap = tr->cap ? tr->cap * 2 : 16) * sizeof *tr->t);
		tr->t[tr->n++] = (struct tally){.ws = ws};
	}
	tr->t[i].in += in > 0 ? in : 0;
	tr->t[i].out += out > 0 ? out : 0;
	pthread_mutex_unlock(&tr->mu);
}

void traffic_flush(struct hub *hub, struct db *db)
{
	struct traffic *tr = hub->traffic;
	if (!tr)
		return;
	pthread_mutex_lock(&tr->mu);
	struct tally *t = tr->t;
	size_t n = tr->n;
	tr->t = NULL;
	tr->n = tr->cap = 0;
	pthread_mutex_unlock(&tr->mu);
	int64_t hour = now_ms() / HOUR_MS * HOUR_MS;
	for (size_t i = 0; i < n; i++)
		if (db_run(
		        db,
		        "INSERT INTO transfer_hourly(workspace_id, hour, bytes_in, bytes_out) "
		        "VALUES(?,?,?,?) ON CONFLICT(workspace_id, hour) DO UPDATE SET bytes_in = "
		        "transfer_hourly.bytes_in + excluded.bytes_in, bytes_out = "
		        "transfer_hourly.bytes_out + excluded.bytes_out",
		        t[i].ws, hour, t[i].in, t[i].out) != DB_DONE)
			log_warn("traffic: cannot record workspace %lld's transfer: %s",
			         (long long)t[i].ws, db_errmsg(db));
	free(t);
}
