/* db.c: back-end-independent parts: dispatch, bind helpers, the pool. */
#include "db.h"
#include "../core/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

/* The back ends by URL prefix; strip: the driver gets what follows it. */
static const struct {
	const char *prefix;
	bool strip;
	struct db *(*open)(const char *url, char **err);
} drivers[] = {
    {"sqlite:", true, db_sqlite_open},
    {"postgres://", false, db_pg_open},
    {"postgresql://", false, db_pg_open},
};

struct db *db_open(const char *url, char **err)
{
	for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++) {
		size_t n = strlen(drivers[i].prefix);
		if (strncmp(url, drivers[i].prefix, n) == 0)
			return drivers[i].open(drivers[i].strip ? url + n : url, err);
	}
	return db_sqlite_open(url, err); /* a plain path */
}

void db_close(struct db *db)
{
	if (db)
		db->ops->close(db);
}

const char *db_errmsg(struct db *db)
{
	return db->ops->errmsg(db);
}

bool db_full(struct db *db)
{
	return db && db->full;
}

static atomic_llong time_us;

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t db_time_us(void)
{
	return atomic_load(&time_us);
}

int db_exec(struct db *db, const char *sql)
{
	int64_t t = now_us();
	int r = db->ops->exec(db, sql);
	atomic_fetch_add(&time_us, now_us() - t);
	return r;
}

int db_begin(struct db *db)
{
	return db->ops->begin(db);
}

int db_commit(struct db *db)
{
	return db->ops->exec(db, "COMMIT");
}

void db_rollback(struct db *db)
{
	db->ops->exec(db, "ROLLBACK");
}

void db_set_nowait(struct db *db, bool nowait)
{
	if (db->ops->set_nowait)
		db->ops->set_nowait(db, nowait);
}

void db_set_relaxed(struct db *db, bool relaxed)
{
	db->ops->exec(db, relaxed ? db->ops->relaxed_sql : db->ops->durable_sql);
}

const char *db_backend(struct db *db)
{
	return db->ops->name;
}

int db_listen(struct db *db, const char *channel)
{
	return db->ops->listen ? db->ops->listen(db, channel) : DB_ERR;
}

int db_notify(struct db *db, const char *channel)
{
	return db->ops->notify ? db->ops->notify(db, channel) : DB_DONE;
}

int db_wait_notify(struct db *db, int timeout_ms)
{
	return db->ops->wait_notify ? db->ops->wait_notify(db, timeout_ms) : -1;
}

struct db_stmt *db_prepare(struct db *db, const char *sql)
{
	return db->ops->prepare(db, sql);
}

void db_bind_text(struct db_stmt *st, int idx, const char *v)
{
	if (v)
		st->db->ops->bind_text(st, idx, v);
	else
		st->db->ops->bind_null(st, idx);
}

void db_bind_int64(struct db_stmt *st, int idx, int64_t v)
{
	st->db->ops->bind_int64(st, idx, v);
}

void db_bind_null(struct db_stmt *st, int idx)
{
	st->db->ops->bind_null(st, idx);
}

int db_step(struct db_stmt *st)
{
	int64_t t = now_us();
	int r = st->db->ops->step(st);
	atomic_fetch_add(&time_us, now_us() - t);
	return r;
}

const char *db_col_text(struct db_stmt *st, int col)
{
	return st->db->ops->col_text(st, col);
}

int64_t db_col_int64(struct db_stmt *st, int col)
{
	return st->db->ops->col_int64(st, col);
}

bool db_col_is_null(struct db_stmt *st, int col)
{
	return st->db->ops->col_is_null(st, col);
}

void db_finalize(struct db_stmt *st)
{
	if (st)
		st->db->ops->finalize(st);
}

int db_placeholders(const char *sql)
{
	/* As SQLite numbers them: '?' is one more than the highest so far, '?N' is N. */
	int n = 0;
	for (const char *p = sql; *p; p++) {
		if (*p != '?')
			continue;
		if (p[1] >= '0' && p[1] <= '9') {
			int k = (int)strtol(p + 1, NULL, 10);
			n = k > n ? k : n;
		} else {
			n++;
		}
	}
	return n;
}

struct db_stmt *db_query_args(struct db *db, const char *sql, const struct db_arg *args, int n)
{
	int want = db_placeholders(sql);
	if (want != n) {
		log_error("db: %d argument(s) for %d placeholder(s) in: %.80s", n, want, sql);
		return NULL;
	}
	struct db_stmt *st = db_prepare(db, sql);
	if (!st)
		return NULL;
	for (int i = 0; i < n; i++) {
		if (args[i].kind == DB_ARG_INT)
			db_bind_int64(st, i + 1, args[i].i);
		else if (args[i].kind == DB_ARG_TEXT)
			db_bind_text(st, i + 1, args[i].s);
		else
			db_bind_null(st, i + 1);
	}
	return st;
}

int db_run_args(struct db *db, const char *sql, const struct db_arg *args, int n)
{
	struct db_stmt *st = db_query_args(db, sql, args, n);
	if (!st)
		return DB_ERR;
	int r;
	while ((r = db_step(st)) == DB_ROW)
		;
	db_finalize(st);
	return r;
}

int db_run_later_args(struct db *db, const char *sql, const struct db_arg *args, int n)
{
	if (!db->ops->defer)
		return db_run_args(db, sql, args, n);
	struct db_stmt *st = db_query_args(db, sql, args, n);
	if (!st)
		return DB_ERR;
	return db->ops->defer(st);
}

int db_int64_args(struct db *db, int64_t *out, const char *sql, const struct db_arg *args, int n)
{
	struct db_stmt *st = db_query_args(db, sql, args, n);
	if (!st)
		return DB_ERR;
	int r = db_step(st);
	if (r == DB_ROW)
		*out = db_col_int64(st, 0);
	db_finalize(st);
	return r;
}

struct db_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int size, nfree;
	struct db **all, **free;
};

struct db_pool *db_pool_new(const char *url, int size, char **err)
{
	struct db_pool *p = xcalloc(1, sizeof *p);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->all = xcalloc((size_t)size, sizeof *p->all);
	p->free = xcalloc((size_t)size, sizeof *p->free);
	for (int i = 0; i < size; i++) {
		p->all[i] = db_open(url, err);
		if (!p->all[i]) {
			p->size = i;
			db_pool_free(p);
			return NULL;
		}
		p->free[p->nfree++] = p->all[i];
		p->size = i + 1;
	}
	return p;
}

struct db *db_pool_acquire(struct db_pool *p)
{
	pthread_mutex_lock(&p->mu);
	while (p->nfree == 0)
		pthread_cond_wait(&p->cv, &p->mu);
	struct db *db = p->free[--p->nfree];
	pthread_mutex_unlock(&p->mu);
	db->full = false;
	return db;
}

void db_pool_release(struct db_pool *p, struct db *db)
{
	if (!db)
		return;
	pthread_mutex_lock(&p->mu);
	p->free[p->nfree++] = db;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void db_pool_free(struct db_pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->size; i++)
		db_close(p->all[i]);
	free(p->all);
	free(p->free);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
