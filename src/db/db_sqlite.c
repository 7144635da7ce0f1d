/* db_sqlite: the embedded back end. WAL, a busy timeout, foreign keys on.
 * Threads: a connection belongs to one thread at a time (db_pool hands it
 * out; SQLITE_OPEN_NOMUTEX). */
#include "db.h"
#include "../core/util.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* Prepared statements are kept per connection and reused: parsing SQL was a
 * quarter of the hub's CPU on small commits (measured with perf). */
#define STMT_CACHE 96

struct cached {
	char *sql;
	size_t hash;
	sqlite3_stmt *st;
	bool busy;
	uint64_t used;
};

struct sq_db {
	struct db base;
	sqlite3 *h;
	struct cached cache[STMT_CACHE];
	uint64_t clock;
};

struct sq_stmt {
	struct db_stmt base;
	sqlite3_stmt *st;
	struct cached *from; /* the cache entry, or NULL for a one-off */
};

#define SQ(db) ((struct sq_db *)(db))
#define SST(s) ((struct sq_stmt *)(s))

static int map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
		return DB_DONE;
	case SQLITE_ROW:
		return DB_ROW;
	case SQLITE_CONSTRAINT:
		return DB_CONSTRAINT;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return DB_BUSY;
	default:
		return DB_ERR;
	}
}

static void sq_close(struct db *db)
{
	for (int i = 0; i < STMT_CACHE; i++) {
		sqlite3_finalize(SQ(db)->cache[i].st);
		free(SQ(db)->cache[i].sql);
	}
	sqlite3_close_v2(SQ(db)->h);
	free(db);
}

static const char *sq_errmsg(struct db *db)
{
	return sqlite3_errmsg(SQ(db)->h);
}

static int sq_exec(struct db *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(SQ(db)->h, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		log_debug("sqlite: %s: %s", sql, msg ? msg : "?");
		sqlite3_free(msg);
	}
	return map_rc(rc);
}

static int sq_begin(struct db *db)
{
	return sq_exec(db, "BEGIN IMMEDIATE");
}

static size_t sql_hash(const char *s)
{
	size_t x = 1469598103934665603ull;
	for (; *s; s++)
		x = (x ^ (unsigned char)*s) * 1099511628211ull;
	return x;
}

static struct db_stmt *sq_prepare(struct db *db, const char *sql)
{
	struct sq_db *d = SQ(db);
	size_t hash = sql_hash(sql);
	struct cached *free_slot = NULL;
	struct sq_stmt *s = xcalloc(1, sizeof *s);
	s->base.db = db;
	for (int i = 0; i < STMT_CACHE; i++) {
		struct cached *c = &d->cache[i];
		if (c->st && !c->busy && c->hash == hash && strcmp(c->sql, sql) == 0) {
			c->busy = true;
			c->used = ++d->clock;
			s->st = c->st;
			s->from = c;
			return &s->base;
		}
		if (!c->busy && (!free_slot || c->used < free_slot->used))
			free_slot = c;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(d->h, sql, -1, &st, NULL) != SQLITE_OK) {
		log_error("sqlite: prepare failed: %s: %s", sqlite3_errmsg(d->h), sql);
		free(s);
		return NULL;
	}
	s->st = st;
	if (free_slot) { /* the least recently used idle entry makes room */
		sqlite3_finalize(free_slot->st);
		free(free_slot->sql);
		free_slot->sql = xstrdup(sql);
		free_slot->hash = hash;
		free_slot->st = st;
		free_slot->busy = true;
		free_slot->used = ++d->clock;
		s->from = free_slot;
	}
	return &s->base;
}

static void sq_bind_text(struct db_stmt *s, int idx, const char *v)
{
	sqlite3_bind_text(SST(s)->st, idx, v, -1, SQLITE_TRANSIENT);
}

static void sq_bind_int64(struct db_stmt *s, int idx, int64_t v)
{
	sqlite3_bind_int64(SST(s)->st, idx, v);
}

static void sq_bind_null(struct db_stmt *s, int idx)
{
	sqlite3_bind_null(SST(s)->st, idx);
}

static int sq_step(struct db_stmt *s)
{
	int rc = sqlite3_step(SST(s)->st);
	int r = map_rc(rc);
	if (r < 0 && r != DB_CONSTRAINT)
		log_error("sqlite: %s", sqlite3_errmsg(SQ(s->db)->h));
	return r;
}

static const char *sq_col_text(struct db_stmt *s, int col)
{
	return (const char *)sqlite3_column_text(SST(s)->st, col);
}

static int64_t sq_col_int64(struct db_stmt *s, int col)
{
	return sqlite3_column_int64(SST(s)->st, col);
}

static bool sq_col_is_null(struct db_stmt *s, int col)
{
	return sqlite3_column_type(SST(s)->st, col) == SQLITE_NULL;
}

static void sq_finalize(struct db_stmt *s)
{
	struct cached *c = SST(s)->from;
	if (c) {
		sqlite3_reset(c->st); /* ends the statement: releases its locks */
		sqlite3_clear_bindings(c->st);
		c->busy = false;
	} else {
		sqlite3_finalize(SST(s)->st);
	}
	free(s);
}

static const struct db_ops sqlite_ops = {
    .name = "sqlite",
    /* WAL: NORMAL commits skip the flush (a checkpoint still flushes) */
    .relaxed_sql = "PRAGMA synchronous=NORMAL",
    .durable_sql = "PRAGMA synchronous=FULL",
    .id_type = "INTEGER PRIMARY KEY",
    .close = sq_close,
    .errmsg = sq_errmsg,
    .exec = sq_exec,
    .begin = sq_begin,
    .prepare = sq_prepare,
    .bind_text = sq_bind_text,
    .bind_int64 = sq_bind_int64,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .col_text = sq_col_text,
    .col_int64 = sq_col_int64,
    .col_is_null = sq_col_is_null,
    .finalize = sq_finalize,
};

struct db *db_sqlite_open(const char *path, char **err)
{
	sqlite3 *h;
	int rc = sqlite3_open_v2(
	    path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		*err = xasprintf("cannot open %s: %s", path, sqlite3_errmsg(h));
		sqlite3_close_v2(h);
		return NULL;
	}
	sqlite3_busy_timeout(h, 10000);
	struct sq_db *db = xcalloc(1, sizeof *db);
	db->base.ops = &sqlite_ops;
	db->h = h;
	/* synchronous=FULL: a commit the client saw survives power loss too.
	 * A batch commit touches a page of every hash-keyed index per file:
	 * the cache must hold a batch's dirty pages or SQLite spills them to the
	 * WAL mid-transaction (16 MiB, allocated only as used). A batch's
	 * savepoints journal the pages they change: in memory, not a temp file.
	 * (mmap_size made 100,000 small commits slower here: page faults.) */
	if (sq_exec(&db->base,
	            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	            "PRAGMA foreign_keys=ON; PRAGMA cache_size=-16384;"
	            "PRAGMA temp_store=MEMORY;") != DB_DONE) {
		*err = xasprintf("cannot configure %s: %s", path, sqlite3_errmsg(h));
		sq_close(&db->base);
		return NULL;
	}
	return &db->base;
}
