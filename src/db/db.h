/* db: the metadata database behind one small interface.
 *
 * SQL is written once, portably ('?' placeholders, BIGINT times in ms, RETURNING,
 * ON CONFLICT); each back end (db_sqlite.c now, db_pg.c later) is a driver behind
 * struct db_ops. A pool hands one connection to one thread at a time. */
#ifndef ROOST_DB_H
#define ROOST_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct db;
struct db_stmt;

/* Results of db_step and the write helpers. */
enum {
	DB_DONE = 0,
	DB_ROW = 1,
	DB_ERR = -1,
	DB_CONSTRAINT = -2, /* unique/foreign key/check violated */
	DB_BUSY = -3,
};

/* "postgres://…"/"postgresql://…" (a libpq URI), "sqlite:/path/roost.db" or a
 * plain path. NULL with *err (new string). */
struct db *db_open(const char *url, char **err);
void db_close(struct db *db);
const char *db_errmsg(struct db *db);

/* Bring the schema up to date (versioned migrations, each in one transaction). */
int db_migrate(struct db *db);
int db_schema_version(struct db *db);

/* Transactions. db_begin takes the write lock up front so that a transaction
 * that reads then writes cannot deadlock with another writer. */
int db_begin(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);
/* Let this connection's commits skip the flush to disk (true), or not. For
 * writes whose loss in a power cut is harmless, e.g. a cache of facts that can
 * be learned again. The default is durable. */
void db_set_relaxed(struct db *db, bool relaxed);
/* "sqlite" or "postgres" */
const char *db_backend(struct db *db);

struct db_stmt *db_prepare(struct db *db, const char *sql);
void db_bind_text(struct db_stmt *st, int idx, const char *v); /* idx from 1; NULL binds NULL */
void db_bind_int64(struct db_stmt *st, int idx, int64_t v);
void db_bind_null(struct db_stmt *st, int idx);
int db_step(struct db_stmt *st);
const char *db_col_text(struct db_stmt *st, int col); /* borrowed until next step */
int64_t db_col_int64(struct db_stmt *st, int col);
bool db_col_is_null(struct db_stmt *st, int col);
void db_finalize(struct db_stmt *st);

/* Prepare and bind in one go. types is one letter per argument:
 * 't' const char * (NULL binds NULL), 'i' int64_t, 'n' NULL (no argument). */
struct db_stmt *db_query(struct db *db, const char *sql, const char *types, ...);
/* Run a statement that returns no rows (or ignore them). DB_DONE or an error. */
int db_run(struct db *db, const char *sql, const char *types, ...);
/* First column of the first row as int64 into *out. DB_ROW, DB_DONE (no row) or error. */
int db_int64(struct db *db, int64_t *out, const char *sql, const char *types, ...);
/* Execute literal SQL (may hold several statements). */
int db_exec(struct db *db, const char *sql);

/* Change notification across processes (PostgreSQL LISTEN/NOTIFY). db_notify
 * is transactional: delivered at commit. db_wait_notify returns 1 when one
 * arrived, 0 on timeout, -1 if the connection failed. On SQLite db_listen
 * fails and db_notify does nothing. */
int db_listen(struct db *db, const char *channel);
int db_notify(struct db *db, const char *channel);
int db_wait_notify(struct db *db, int timeout_ms);

/* Microseconds spent in db_step and db_exec since the process started. */
int64_t db_time_us(void);

/* A fixed set of connections shared by threads. */
struct db_pool;
struct db_pool *db_pool_new(const char *url, int size, char **err);
struct db *db_pool_acquire(struct db_pool *p);
void db_pool_release(struct db_pool *p, struct db *db);
void db_pool_free(struct db_pool *p);

/* Driver interface, for back ends. */
struct db_ops {
	const char *name;
	const char *id_type;          /* column type of an auto-increment primary key */
	const char *migrate_lock_sql; /* run first in a migration transaction, or NULL */
	const char *relaxed_sql;      /* commits may skip the flush to disk */
	const char *durable_sql;      /* commits are durable when they return (default) */
	void (*close)(struct db *db);
	const char *(*errmsg)(struct db *db);
	int (*exec)(struct db *db, const char *sql);
	int (*begin)(struct db *db);
	struct db_stmt *(*prepare)(struct db *db, const char *sql);
	void (*bind_text)(struct db_stmt *st, int idx, const char *v);
	void (*bind_int64)(struct db_stmt *st, int idx, int64_t v);
	void (*bind_null)(struct db_stmt *st, int idx);
	int (*step)(struct db_stmt *st);
	const char *(*col_text)(struct db_stmt *st, int col);
	int64_t (*col_int64)(struct db_stmt *st, int col);
	bool (*col_is_null)(struct db_stmt *st, int col);
	void (*finalize)(struct db_stmt *st);
	int (*listen)(struct db *db, const char *channel); /* NULL: unsupported */
	int (*notify)(struct db *db, const char *channel); /* NULL: no-op */
	int (*wait_notify)(struct db *db, int timeout_ms);
};

struct db {
	const struct db_ops *ops;
};

struct db_stmt {
	struct db *db;
};

struct db *db_sqlite_open(const char *path, char **err);
struct db *db_pg_open(const char *url, char **err);

#endif
