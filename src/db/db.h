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

/* Results of db_step and the write helpers. The errors lie far below any
 * -errno value, so a function that returns either (0, -EEXIST or DB_ERR, say)
 * cannot confuse them; see docs/architecture.md, "Error conventions". */
enum {
	DB_DONE = 0,
	DB_ROW = 1,
	DB_ERR = -10000,
	DB_CONSTRAINT = -10001, /* unique/foreign key/check violated */
	DB_BUSY = -10002,
};

/* "postgres://…"/"postgresql://…" (a libpq URI), "sqlite:/path/roost.db" or a
 * plain path: the driver is chosen by the URL's prefix from db.c's table, so a
 * new back end is one driver file, its line there and its open function below.
 * NULL with *err (new string). */
struct db *db_open(const char *url, char **err);
void db_close(struct db *db);
const char *db_errmsg(struct db *db);
/* Did a statement on this connection fail because the disk (or the database
 * server's) is full (SQLite's SQLITE_FULL, PostgreSQL's SQLSTATE 53100) since
 * db_pool_acquire handed it out? The error itself is DB_ERR. */
bool db_full(struct db *db);

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
/* Let this connection's statements fail with DB_BUSY at once instead of
 * waiting for another writer's lock (true), or wait as usual (false). For a
 * write a reader can skip or do later (a session's last use): on SQLite one
 * writer at a time holds the lock, for as long as a batch commit runs, and a
 * GET must not wait for it. PostgreSQL locks rows, not the database: no-op. */
void db_set_nowait(struct db *db, bool nowait);
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

/* Typed arguments. db_query(db, sql, a, b, ...) binds each argument by its C
 * type, chosen at compile time: any integer type binds an integer, char * and
 * const char * bind text (a NULL pointer binds NULL), DB_NULL binds NULL. Any
 * other type (double, void *, a struct) is a compile error, and a count of
 * arguments that differs from the '?' placeholders fails the call with a log
 * line naming the statement, instead of binding garbage. */
enum db_arg_kind { DB_ARG_SKIP, DB_ARG_INT, DB_ARG_TEXT, DB_ARG_NULL };
struct db_arg {
	enum db_arg_kind kind;
	int64_t i;
	const char *s;
};
struct db_null {
	char unused;
};
#define DB_NULL ((struct db_null){0})

static inline struct db_arg db_arg_int(int64_t v)
{
	return (struct db_arg){.kind = DB_ARG_INT, .i = v};
}
static inline struct db_arg db_arg_uint(uint64_t v)
{
	return (struct db_arg){.kind = DB_ARG_INT, .i = (int64_t)v};
}
static inline struct db_arg db_arg_text(const char *v)
{
	return (struct db_arg){.kind = v ? DB_ARG_TEXT : DB_ARG_NULL, .s = v};
}
static inline struct db_arg db_arg_null(struct db_null n)
{
	(void)n;
	return (struct db_arg){.kind = DB_ARG_NULL};
}

#define DB_ARG(x)                                                                                  \
	_Generic((x),                                                                              \
	    _Bool: db_arg_int,                                                                     \
	    char: db_arg_int,                                                                      \
	    signed char: db_arg_int,                                                               \
	    short: db_arg_int,                                                                     \
	    int: db_arg_int,                                                                       \
	    long: db_arg_int,                                                                      \
	    long long: db_arg_int,                                                                 \
	    unsigned char: db_arg_uint,                                                            \
	    unsigned short: db_arg_uint,                                                           \
	    unsigned: db_arg_uint,                                                                 \
	    unsigned long: db_arg_uint,                                                            \
	    unsigned long long: db_arg_uint,                                                       \
	    char *: db_arg_text,                                                                   \
	    const char *: db_arg_text,                                                             \
	    struct db_null: db_arg_null)(x)

/* Count (0..24) and map the arguments of a variadic macro. */
#define DB_NARGS(...)                                                                              \
	DB_NARGS_(_ __VA_OPT__(, ) __VA_ARGS__, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13,    \
	          12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define DB_NARGS_(_0, _1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17,  \
                  _18, _19, _20, _21, _22, _23, _24, N, ...)                                       \
	N
#define DB_CAT(a, b)  DB_CAT_(a, b)
#define DB_CAT_(a, b) a##b
#define DB_EACH(...)  DB_CAT(DB_E, DB_NARGS(__VA_ARGS__))(__VA_ARGS__)
#define DB_E0()
#define DB_E1(a)       , DB_ARG(a)
#define DB_E2(a, ...)  , DB_ARG(a) DB_E1(__VA_ARGS__)
#define DB_E3(a, ...)  , DB_ARG(a) DB_E2(__VA_ARGS__)
#define DB_E4(a, ...)  , DB_ARG(a) DB_E3(__VA_ARGS__)
#define DB_E5(a, ...)  , DB_ARG(a) DB_E4(__VA_ARGS__)
#define DB_E6(a, ...)  , DB_ARG(a) DB_E5(__VA_ARGS__)
#define DB_E7(a, ...)  , DB_ARG(a) DB_E6(__VA_ARGS__)
#define DB_E8(a, ...)  , DB_ARG(a) DB_E7(__VA_ARGS__)
#define DB_E9(a, ...)  , DB_ARG(a) DB_E8(__VA_ARGS__)
#define DB_E10(a, ...) , DB_ARG(a) DB_E9(__VA_ARGS__)
#define DB_E11(a, ...) , DB_ARG(a) DB_E10(__VA_ARGS__)
#define DB_E12(a, ...) , DB_ARG(a) DB_E11(__VA_ARGS__)
#define DB_E13(a, ...) , DB_ARG(a) DB_E12(__VA_ARGS__)
#define DB_E14(a, ...) , DB_ARG(a) DB_E13(__VA_ARGS__)
#define DB_E15(a, ...) , DB_ARG(a) DB_E14(__VA_ARGS__)
#define DB_E16(a, ...) , DB_ARG(a) DB_E15(__VA_ARGS__)
#define DB_E17(a, ...) , DB_ARG(a) DB_E16(__VA_ARGS__)
#define DB_E18(a, ...) , DB_ARG(a) DB_E17(__VA_ARGS__)
#define DB_E19(a, ...) , DB_ARG(a) DB_E18(__VA_ARGS__)
#define DB_E20(a, ...) , DB_ARG(a) DB_E19(__VA_ARGS__)
#define DB_E21(a, ...) , DB_ARG(a) DB_E20(__VA_ARGS__)
#define DB_E22(a, ...) , DB_ARG(a) DB_E21(__VA_ARGS__)
#define DB_E23(a, ...) , DB_ARG(a) DB_E22(__VA_ARGS__)
#define DB_E24(a, ...) , DB_ARG(a) DB_E23(__VA_ARGS__)
/* The array's first element is a placeholder so that no arguments is valid C. */
#define DB_ARGS(...)                                                                               \
	((const struct db_arg[]){{DB_ARG_SKIP, 0, NULL} DB_EACH(__VA_ARGS__)} + 1),                \
	    DB_NARGS(__VA_ARGS__)

/* Prepare and bind in one go; NULL on error (the statement is logged when the
 * arguments do not match its placeholders). */
#define db_query(db, sql, ...) db_query_args(db, sql, DB_ARGS(__VA_ARGS__))
/* Run a statement that returns no rows (or ignore them). DB_DONE or an error. */
#define db_run(db, sql, ...) db_run_args(db, sql, DB_ARGS(__VA_ARGS__))
/* First column of the first row as int64 into *out. DB_ROW, DB_DONE (no row) or error. */
/* A write inside a transaction whose outcome nothing waits for: DB_DONE at once
 * on a back end that can send it with the connection's next statement
 * (PostgreSQL: one round trip for both), else run now (its result). Its
 * failure fails that next statement (DB_ERR), and the transaction cannot
 * commit: for writes whose only failure is a database error, never a
 * constraint the caller handles. */
#define db_run_later(db, sql, ...)  db_run_later_args(db, sql, DB_ARGS(__VA_ARGS__))
#define db_int64(db, out, sql, ...) db_int64_args(db, out, sql, DB_ARGS(__VA_ARGS__))

struct db_stmt *db_query_args(struct db *db, const char *sql, const struct db_arg *args, int n);
int db_run_args(struct db *db, const char *sql, const struct db_arg *args, int n);
int db_int64_args(struct db *db, int64_t *out, const char *sql, const struct db_arg *args, int n);
int db_run_later_args(struct db *db, const char *sql, const struct db_arg *args, int n);
/* The number of '?' placeholders in sql (our SQL has none inside literals). */
int db_placeholders(const char *sql);
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
	int (*defer)(struct db_stmt *st); /* takes st; NULL: db_run_later runs at once */
	int (*listen)(struct db *db, const char *channel); /* NULL: unsupported */
	int (*notify)(struct db *db, const char *channel); /* NULL: no-op */
	int (*wait_notify)(struct db *db, int timeout_ms);
	void (*set_nowait)(struct db *db, bool nowait); /* NULL: no-op */
};

struct db {
	const struct db_ops *ops;
	bool full; /* db_full: set by the drivers, cleared by db_pool_acquire */
};

struct db_stmt {
	struct db *db;
};

struct db *db_sqlite_open(const char *path, char **err);
struct db *db_pg_open(const char *url, char **err);

#endif
