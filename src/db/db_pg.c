/* db_pg: the PostgreSQL back end over libpq.
 *
 * Statements keep the portable '?' SQL, rewritten to $1..$n; values travel as
 * text and the server infers their types from context. A statement runs on its
 * first db_step and its rows are read from the result. Each SQL text is
 * prepared once per connection (the server parses and plans it once). Writes
 * queued by db_run_later travel in one pipeline with the next statement, and
 * a NOTIFY inside a transaction with its COMMIT: a batch commit waits for the
 * server only where it needs an answer.
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

/* Statements prepared on a connection, by their SQL: the server parses and
 * plans each once, not on every run. A fixed table; once full, statements run
 * unprepared. */
#define PREPARED_SLOTS 1024
#define PREPARED_MAX   768

struct prepared {
	char *sql; /* $n form; NULL: an empty slot */
	char name[16];
};

struct pg_stmt;

struct pg_db {
	struct db base;
	PGconn *c;
	char err[512];
	struct prepared *prep; /* PREPARED_SLOTS */
	int nprep;
	/* A NOTIFY asked for inside a transaction, sent with its COMMIT (the
	 * server delivers it then anyway): one round trip per transaction, not
	 * one per change. */
	char notify[64];
	/* Writes queued by db_run_later, sent with the next statement in one
	 * pipeline. failed: one of them failed, so this transaction must not
	 * commit (until a ROLLBACK or BEGIN). */
	struct pg_stmt **later;
	int nlater, caplater;
	bool failed;
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

static void forget_prepared(struct pg_db *db)
{
	for (int i = 0; i < PREPARED_SLOTS; i++) {
		free(db->prep[i].sql);
		db->prep[i].sql = NULL;
	}
	db->nprep = 0;
}

static void pg_finalize(struct db_stmt *st);

static void pg_close(struct db *db)
{
	for (int i = 0; i < PG(db)->nlater; i++)
		pg_finalize(&PG(db)->later[i]->base);
	free(PG(db)->later);
	PQfinish(PG(db)->c);
	forget_prepared(PG(db));
	free(PG(db)->prep);
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
	if (PQstatus(db->c) == CONNECTION_BAD) {
		PQreset(db->c);
		forget_prepared(db); /* a new session has none */
		db->notify[0] = 0;
	}
}

static int flush_later(struct pg_db *db, struct pg_stmt *also);
static int pg_step(struct db_stmt *st);

static int pg_exec(struct db *db, const char *sql)
{
	struct pg_db *p = PG(db);
	ensure_connected(p);
	bool commit = strcmp(sql, "COMMIT") == 0, rollback = strcmp(sql, "ROLLBACK") == 0;
	if (rollback) { /* what was queued is undone anyway */
		for (int i = 0; i < p->nlater; i++)
			pg_finalize(&p->later[i]->base);
		p->nlater = 0;
	}
	int r = flush_later(p, NULL);
	if (rollback || strcmp(sql, "BEGIN") == 0)
		p->failed = false;
	else if (r != DB_DONE || (commit && p->failed)) {
		/* A queued write failed: this transaction must not commit. */
		if (commit) {
			PQclear(PQexec(p->c, "ROLLBACK"));
			p->failed = false;
			p->notify[0] = 0;
		}
		return r != DB_DONE ? r : DB_ERR;
	}
	char *both = NULL;
	if (p->notify[0] && commit)
		sql = both = xasprintf("NOTIFY %s; COMMIT", p->notify);
	if (commit || rollback)
		p->notify[0] = 0;
	PGresult *res = PQexec(p->c, sql);
	r = result_code(p, res);
	PQclear(res);
	free(both);
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

/* The name sql is prepared by on this connection (preparing it now), or NULL
 * to run it unprepared: the table is full, or preparing failed (the run then
 * reports the error). */
static const char *prepared_name(struct pg_db *db, const char *sql, bool may_prepare)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
		h = (h ^ *p) * 16777619u;
	for (uint32_t i = 0; i < PREPARED_SLOTS; i++) {
		struct prepared *e = &db->prep[(h + i) % PREPARED_SLOTS];
		if (e->sql && strcmp(e->sql, sql) == 0)
			return e->name;
		if (e->sql)
			continue;
		if (db->nprep >= PREPARED_MAX || !may_prepare)
			return NULL;
		/* Inside a transaction a failed PREPARE would abort it: only SQL
		 * the server accepts is kept, and the first run of any other
		 * fails as it would have unprepared. */
		char name[16];
		snprintf(name, sizeof name, "r%d", db->nprep);
		PGresult *res = PQprepare(db->c, name, sql, 0, NULL);
		bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok)
			result_code(db, res);
		PQclear(res);
		if (!ok)
			return NULL;
		e->sql = xstrdup(sql);
		memcpy(e->name, name, sizeof name);
		db->nprep++;
		return e->name;
	}
	return NULL;
}

/* Only these can be PREPAREd; a failed PREPARE would abort the transaction. */
static bool preparable(const char *sql)
{
	static const char *const verbs[] = {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"};
	for (size_t i = 0; i < sizeof verbs / sizeof *verbs; i++)
		if (strncmp(sql, verbs[i], strlen(verbs[i])) == 0)
			return true;
	return false;
}

static int send_stmt(struct pg_db *db, struct pg_stmt *s)
{
	const char *name = preparable(s->sql) ? prepared_name(db, s->sql, false) : NULL;
	if (name)
		return PQsendQueryPrepared(db->c, name, s->nparams, (const char *const *)s->vals,
		                           NULL, NULL, 0);
	return PQsendQueryParams(db->c, s->sql, s->nparams, NULL, (const char *const *)s->vals,
	                         NULL, NULL, 0);
}

/* Send the queued writes, and also (when not NULL) one statement whose result
 * is wanted, in one pipeline: one round trip. DB_DONE when every queued write
 * succeeded, else the first one's error (also's result is then not run). */
static int flush_later(struct pg_db *db, struct pg_stmt *also)
{
	if (!db->nlater && !also)
		return DB_DONE;
	ensure_connected(db);
	/* PREPARE is synchronous: prepare before the pipeline. */
	for (int i = 0; i < db->nlater; i++)
		if (preparable(db->later[i]->sql))
			prepared_name(db, db->later[i]->sql, true);
	if (also && preparable(also->sql))
		prepared_name(db, also->sql, true);
	int rc = DB_DONE;
	bool piped = db->nlater > 0;
	if (!piped) {
		const char *name =
		    preparable(also->sql) ? prepared_name(db, also->sql, false) : NULL;
		also->res = name ? PQexecPrepared(db->c, name, also->nparams,
		                                  (const char *const *)also->vals, NULL, NULL, 0)
		                 : PQexecParams(db->c, also->sql, also->nparams, NULL,
		                                (const char *const *)also->vals, NULL, NULL, 0);
		return DB_DONE;
	}
	bool sent = PQenterPipelineMode(db->c) == 1;
	for (int i = 0; i < db->nlater && sent; i++)
		sent = send_stmt(db, db->later[i]) == 1;
	if (also && sent)
		sent = send_stmt(db, also) == 1;
	if (sent)
		sent = PQpipelineSync(db->c) == 1;
	if (!sent) {
		snprintf(db->err, sizeof db->err, "%s", PQerrorMessage(db->c));
		log_error("postgres: %s", db->err);
		rc = DB_ERR;
	}
	/* Read every result up to the sync: a NULL ends each statement's. */
	int n = db->nlater + (also ? 1 : 0), at = 0;
	while (sent) {
		PGresult *res = PQgetResult(db->c);
		if (!res) {
			if (at >= n)
				break; /* defensive: the sync comes first */
			at++;
			continue;
		}
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
		if (also && at == n - 1) {
			PQclear(also->res);
			also->res = res;
			continue;
		}
		if (st != PGRES_PIPELINE_ABORTED && st != PGRES_COMMAND_OK &&
		    st != PGRES_TUPLES_OK && rc == DB_DONE) {
			rc = result_code(db, res);
			if (rc != DB_ERR) /* no constraint or busy is handled for a queued write */
				rc = DB_ERR;
		}
		PQclear(res);
	}
	PQexitPipelineMode(db->c);
	for (int i = 0; i < db->nlater; i++)
		pg_finalize(&db->later[i]->base);
	db->nlater = 0;
	if (rc != DB_DONE)
		db->failed = true;
	return rc;
}

static int pg_defer(struct db_stmt *st)
{
	struct pg_db *db = PG(st->db);
	if (PQtransactionStatus(db->c) == PQTRANS_IDLE || PQstatus(db->c) == CONNECTION_BAD) {
		/* outside a transaction nothing commits it later: run it now */
		int r;
		while ((r = pg_step(st)) == DB_ROW)
			;
		pg_finalize(st);
		return r;
	}
	if (db->nlater == db->caplater) {
		db->caplater = db->caplater ? db->caplater * 2 : 32;
		db->later = xrealloc(db->later, (size_t)db->caplater * sizeof *db->later);
	}
	db->later[db->nlater++] = PST(st);
	return DB_DONE;
}

static int pg_step(struct db_stmt *st)
{
	struct pg_stmt *s = PST(st);
	if (!s->ran) {
		struct pg_db *db = PG(st->db);
		ensure_connected(db);
		s->ran = true;
		int r = flush_later(db, s);
		if (r != DB_DONE)
			return r;
		r = s->res ? result_code(db, s->res) : DB_ERR;
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
	struct pg_db *p = PG(db);
	if (PQtransactionStatus(p->c) == PQTRANS_INTRANS &&
	    (!p->notify[0] || strcmp(p->notify, channel) == 0) &&
	    strlen(channel) < sizeof p->notify) {
		snprintf(p->notify, sizeof p->notify, "%s", channel);
		return DB_DONE;
	}
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
    .defer = pg_defer,
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
	db->prep = xcalloc(PREPARED_SLOTS, sizeof *db->prep);
	if (pg_exec(&db->base, "SET client_min_messages = warning") != DB_DONE) {
		*err =
		    xasprintf("cannot configure the PostgreSQL session: %s", pg_errmsg(&db->base));
		pg_close(&db->base);
		return NULL;
	}
	return &db->base;
}
