/* db_sqlite: the embedded back end. WAL, a busy timeout, foreign keys on.
 * Threads: a connection belongs to one thread at a time (db_pool hands it
 * out; SQLITE_OPEN_NOMUTEX); each database file open in the process has one
 * checkpoint thread with a connection of its own. */
#include "db.h"
#include "../core/util.h"

#include <pthread.h>
#include <signal.h>
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

/* ---- checkpoints off the committing thread ----
 *
 * SQLite copies the WAL back into the database inside the COMMIT that takes
 * the WAL past 1000 pages. A batch of small commits did that nearly every
 * time, and it was half of the commit (measured: 48 ms of a 256-file batch's
 * 94). Here a commit that leaves CKPT_PAGES or more in the WAL only wakes
 * the file's checkpoint thread, which checkpoints (PASSIVE: writers and
 * readers go on) on its own connection. (The count is of the WAL's frames,
 * backfilled or not: a WAL that readers keep from restarting stays long, and
 * a committer that checkpointed itself past some length spent 7% of the
 * hub's time finding nothing left to copy.) */
#define CKPT_PAGES 1000

struct ckpt {
	char *path;
	int refs;
	sqlite3 *h;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool wake, stop;
	struct ckpt *next;
};

static pthread_mutex_t ckpts_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ckpt *ckpts; /* by path, under ckpts_mu */

static void *ckpt_main(void *arg)
{
	struct ckpt *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->wake && !c->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stop)
			break;
		c->wake = false;
		pthread_mutex_unlock(&c->mu);
		/* A read first: a connection opened before the file had its WAL
		 * header takes it for a rollback journal, and its checkpoints do
		 * nothing until it reads the header again. */
		sqlite3_exec(c->h, "SELECT 1 FROM sqlite_master LIMIT 1", NULL, NULL, NULL);
		sqlite3_wal_checkpoint_v2(c->h, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static int on_wal_commit(void *arg, sqlite3 *h, const char *name, int pages)
{
	(void)h;
	(void)name;
	struct ckpt *c = arg;
	if (pages >= CKPT_PAGES) {
		pthread_mutex_lock(&c->mu);
		c->wake = true;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	return SQLITE_OK;
}

/* The checkpoint thread of path, started with its first connection; NULL
 * (SQLite's own checkpoints) if it cannot start. */
static struct ckpt *ckpt_get(const char *path)
{
	pthread_mutex_lock(&ckpts_mu);
	struct ckpt *c = ckpts;
	while (c && strcmp(c->path, path) != 0)
		c = c->next;
	if (c) {
		c->refs++;
		pthread_mutex_unlock(&ckpts_mu);
		return c;
	}
	c = xcalloc(1, sizeof *c);
	if (sqlite3_open_v2(path, &c->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		sqlite3_close_v2(c->h);
		free(c);
		pthread_mutex_unlock(&ckpts_mu);
		return NULL;
	}
	sqlite3_wal_autocheckpoint(c->h, 0);
	c->path = xstrdup(path);
	c->refs = 1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	/* No signal for this thread: the process's own threads take them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int started = pthread_create(&c->th, NULL, ckpt_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (started != 0) {
		sqlite3_close_v2(c->h);
		free(c->path);
		free(c);
		pthread_mutex_unlock(&ckpts_mu);
		return NULL;
	}
	c->next = ckpts;
	ckpts = c;
	pthread_mutex_unlock(&ckpts_mu);
	return c;
}

/* After the last connection of path closed: the thread stops and its
 * connection, now the last, checkpoints the rest as it closes. */
static void ckpt_put(struct ckpt *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&ckpts_mu);
	bool last = --c->refs == 0;
	if (last) {
		struct ckpt **p = &ckpts;
		while (*p != c)
			p = &(*p)->next;
		*p = c->next;
	}
	pthread_mutex_unlock(&ckpts_mu);
	if (!last)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->th, NULL);
	sqlite3_close_v2(c->h);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c->path);
	free(c);
}

struct sq_db {
	struct db base;
	sqlite3 *h;
	struct ckpt *ckpt;
	struct cached cache[STMT_CACHE];
	uint64_t clock;
	bool nowait; /* db_set_nowait: a busy lock fails at once, unlogged */
};

struct sq_stmt {
	struct db_stmt base;
	sqlite3_stmt *st;
	struct cached *from; /* the cache entry, or NULL for a one-off */
};

/* How long a statement waits for another connection's write lock. */
#define BUSY_WAIT_MS 10000

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

/* map_rc, noting a full disk on db (db_full). */
static int map_rc_on(struct db *db, int rc)
{
	if ((rc & 0xff) == SQLITE_FULL)
		db->full = true;
	return map_rc(rc);
}

static void sq_close(struct db *db)
{
	for (int i = 0; i < STMT_CACHE; i++) {
		sqlite3_finalize(SQ(db)->cache[i].st);
		free(SQ(db)->cache[i].sql);
	}
	sqlite3_close_v2(SQ(db)->h);
	ckpt_put(SQ(db)->ckpt);
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
	return map_rc_on(db, rc);
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
	int r = map_rc_on(s->db, rc);
	if (r < 0 && r != DB_CONSTRAINT && !(r == DB_BUSY && SQ(s->db)->nowait))
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

static void sq_set_nowait(struct db *db, bool nowait)
{
	SQ(db)->nowait = nowait;
	sqlite3_busy_timeout(SQ(db)->h, nowait ? 0 : BUSY_WAIT_MS);
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
    .set_nowait = sq_set_nowait,
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
	sqlite3_busy_timeout(h, BUSY_WAIT_MS);
	struct sq_db *db = xcalloc(1, sizeof *db);
	db->base.ops = &sqlite_ops;
	db->h = h;
	/* synchronous=FULL: a commit the client saw survives power loss too.
	 * A batch commit touches a page of every hash-keyed index per file:
	 * the cache must hold a batch's dirty pages or SQLite spills them to the
	 * WAL mid-transaction (16 MiB, allocated only as used). A batch's
	 * savepoints journal the pages they change: in memory, not a temp file.
	 * (mmap_size made 100,000 small commits slower here: page faults.) A
	 * WAL that grew while the checkpoint thread lagged is cut back to 64 MiB
	 * once it restarts. */
	if (sq_exec(&db->base,
	            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	            "PRAGMA foreign_keys=ON; PRAGMA cache_size=-16384;"
	            "PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=67108864;") != DB_DONE) {
		*err = xasprintf("cannot configure %s: %s", path, sqlite3_errmsg(h));
		sq_close(&db->base);
		return NULL;
	}
	if (strcmp(path, ":memory:") != 0 && (db->ckpt = ckpt_get(path)))
		sqlite3_wal_hook(h, on_wal_commit, db->ckpt);
	return &db->base;
}
