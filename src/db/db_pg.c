/* db_pg: the PostgreSQL back end over libpq.
 *
 * Statements keep the portable '?' SQL, rewritten to $1..$n; values travel as
 * text and the server infers their types from context. A statement runs on its
 * first db_step and its rows are read from the result.
 *
 * Threads: a connection belongs to one thread at a time (db_pool hands it out).
 */
#include "db.h"
#include "../core/util.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pg_db {
	struct db base;
	PGconn *c;
	char err[512];
};

struct pg_stmt {
	struct db_stmt base;
	char *sql;
	int nparams;
	char **vals; /* NULL entries are SQL NULLs */
	PGresult *res;
	int row, nrows;
	bool ran;
};

#define PG(db) ((struct pg_db *)(db))
#define PST(s) ((struct pg_stmt *)(s))

static void pg_close(struct db *db)
{
	PQfinish(PG(db)->c);
	free(db);
}

static const char *pg_errmsg(struct db *db)
{
	return PG(db)->err[0] ? PG(db)->err : PQerrorMessage(PG(db)->c);
}

/* Map a result to DB_*; remember the message. Clears nothing. */
static int result_code(struct pg_db *db, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return DB_DONE;
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	snprintf(db->err, sizeof db->err, "%s", PQresultErrorMessage(res));
	size_t n = strlen(db->err);
	while (n && (db->err[n - 1] == '\n' || db->err[n - 1] == ' '))
		db->err[--n] = 0;
	if (state && strncmp(state, "23", 2) == 0)
		return DB_CONSTRAINT;
	if (state && strcmp(state, "53100") == 0) /* disk_full */
		db->base.full = true;
	if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	              strcmp(state, "55P03") == 0))
		return DB_BUSY;
	log_error("postgres: %s", db->err);
	return DB_ERR;
}

/* A dropped connection (server restart) is re-established before the next use. */
static void ensure_connected(struct pg_db *db)
{
	if (PQstatus(db->c) == CONNECTION_BAD)
		PQreset(db->c);
}

static int pg_exec(struct db *db, const char *sql)
{
	ensure_connected(PG(db));
	PGresult *res = PQexec(PG(db)->c, sql);
	int r = result_code(PG(db), res);
	PQclear(res);
	return r;
}

static int pg_begin(struct db *db)
{
	return pg_exec(db, "BEGIN");
}

static struct db_stmt *pg_prepare(struct db *db, const char *sql)
{
	struct pg_stmt *s = xcalloc(1, sizeof *s);
	s->base.db = db;
	/* '?' -> $n; our SQL has no '?' inside string literals. */
	size_t n = 0;
	for (const char *p = sql; *p; p++)
		n += *p == '?';
	s->sql = xmalloc(strlen(sql) + n * 6 + 1);
	char *o = s->sql;
	for (const char *p = sql; *p; p++) {
		if (*p == '?')
			o += sprintf(o, "$%d", ++s->nparams);
		else
			*o++ = *p;
	}
	*o = 0;
	s->vals = xcalloc((size_t)(s->nparams ? s->nparams : 1), sizeof *s->vals);
	return &s->base;
}

static void set_val(struct db_stmt *st, int idx, char *v)
{
	struct pg_stmt *s = PST(st);
	if (idx < 1 || idx > s->nparams) {
		free(v);
		return;
	}
	free(s->vals[idx - 1]);
	s->vals[idx - 1] = v;
}

static void pg_bind_text(struct db_stmt *st, int idx, const char *v)
{
	set_val(st, idx, xstrdup(v));
}

static void pg_bind_int64(struct db_stmt *st, int idx, int64_t v)
{
	set_val(st, idx, xasprintf("%lld", (long long)v));
}

static void pg_bind_null(struct db_stmt *st, int idx)
{
	set_val(st, idx, NULL);
}

static int pg_step(struct db_stmt *st)
{
	struct pg_stmt *s = PST(st);
	if (!s->ran) {
		struct pg_db *db = PG(st->db);
		ensure_connected(db);
		s->ran = true;
		s->res = PQexecParams(db->c, s->sql, s->nparams, NULL, (const char *const *)s->vals,
		                      NULL, NULL, 0);
		int r = result_code(db, s->res);
		if (r != DB_DONE)
			return r;
		s->nrows = PQntuples(s->res);
		s->row = -1;
	}
	if (!s->res || PQresultStatus(s->res) != PGRES_TUPLES_OK)
		return DB_DONE;
	if (s->row + 1 >= s->nrows)
		return DB_DONE;
	s->row++;
	return DB_ROW;
}

static const char *pg_col_text(struct db_stmt *st, int col)
{
	struct pg_stmt *s = PST(st);
	if (PQgetisnull(s->res, s->row, col))
		return NULL;
	return PQgetvalue(s->res, s->row, col);
}

static int64_t pg_col_int64(struct db_stmt *st, int col)
{
	const char *v = pg_col_text(st, col);
	return v ? strtoll(v, NULL, 10) : 0;
}

static bool pg_col_is_null(struct db_stmt *st, int col)
{
	return PQgetisnull(PST(st)->res, PST(st)->row, col);
}

static void pg_finalize(struct db_stmt *st)
{
	struct pg_stmt *s = PST(st);
	PQclear(s->res);
	for (int i = 0; i < s->nparams; i++)
		free(s->vals[i]);
	free(s->vals);
	free(s->sql);
	free(s);
}

/* Channels are our own constant names, never user input. */
static int pg_listen(struct db *db, const char *channel)
{
	char sql[128];
	snprintf(sql, sizeof sql, "LISTEN %s", channel);
	return pg_exec(db, sql);
}

static int pg_notify(struct db *db, const char *channel)
{
	char sql[128];
	snprintf(sql, sizeof sql, "NOTIFY %s", channel);
	return pg_exec(db, sql);
}

static int pg_wait_notify(struct db *db, int timeout_ms)
{
	PGconn *c = PG(db)->c;
	int got = 0;
	for (int round = 0; round < 2; round++) {
		if (!PQconsumeInput(c))
			return -1;
		PGnotify *n;
		while ((n = PQnotifies(c))) {
			got = 1;
			PQfreemem(n);
		}
		if (got || round == 1)
			break;
		struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
		if (pfd.fd < 0)
			return -1;
		int r = poll(&pfd, 1, timeout_ms);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r <= 0)
			break;
	}
	return got;
}

static const struct db_ops pg_ops = {
    .name = "postgres",
    .id_type = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    /* Two hubs starting together must not both migrate. */
    .migrate_lock_sql = "LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE",
    .relaxed_sql = "SET synchronous_commit = off",
    .durable_sql = "SET synchronous_commit = on",
    .close = pg_close,
    .errmsg = pg_errmsg,
    .exec = pg_exec,
    .begin = pg_begin,
    .prepare = pg_prepare,
    .bind_text = pg_bind_text,
    .bind_int64 = pg_bind_int64,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .col_text = pg_col_text,
    .col_int64 = pg_col_int64,
    .col_is_null = pg_col_is_null,
    .finalize = pg_finalize,
    .listen = pg_listen,
    .notify = pg_notify,
    .wait_notify = pg_wait_notify,
};

static void quiet_notices(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* "relation already exists, skipping" and the like */
}

struct db *db_pg_open(const char *url, char **err)
{
	PGconn *c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		*err = xasprintf("cannot connect to PostgreSQL: %s", PQerrorMessage(c));
		size_t n = strlen(*err);
		while (n && (*err)[n - 1] == '\n')
			(*err)[--n] = 0;
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, quiet_notices, NULL);
	struct pg_db *db = xcalloc(1, sizeof *db);
	db->base.ops = &pg_ops;
	db->c = c;
	if (pg_exec(&db->base, "SET client_min_messages = warning") != DB_DONE) {
		*err =
		    xasprintf("cannot configure the PostgreSQL session: %s", pg_errmsg(&db->base));
		pg_close(&db->base);
		return NULL;
	}
	return &db->base;
}
