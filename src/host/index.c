/* index: what the host knows of its folder, in SQLite (DIR/.roost/index.db).
 *
 * files: per path, the stat that was last synced (size, mtime, inode) with
 * the hub version it matches, so a restart re-hashes nothing that is
 * unchanged. chunks: where each chunk of a local file sits, for serving and
 * for local copies. cache: the on-demand cache's LRU clock. kv: the feed seq.
 *
 * Commits are relaxed (no flush): everything here can be learned again — a
 * lost row makes a file look changed, it is hashed, and found equal. */
#include "host.h"
#include "../core/path.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define IDX_POOL 16 /* the sync thread, download workers, content-server requests */

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, dir INTEGER NOT NULL,"
    " local INTEGER NOT NULL, size INTEGER, mtime_ns INTEGER, ino INTEGER,"
    " version_id INTEGER, version INTEGER, hash TEXT);"
    "CREATE INDEX IF NOT EXISTS files_version ON files(version_id);"
    "CREATE TABLE IF NOT EXISTS chunks (path TEXT NOT NULL, off INTEGER NOT NULL,"
    " hash TEXT NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (path, off));"
    "CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(hash);"
    "CREATE TABLE IF NOT EXISTS cache (hash TEXT PRIMARY KEY, size INTEGER NOT NULL,"
    " used INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS cache_used ON cache(used);"
    "CREATE TABLE IF NOT EXISTS cache_pins (hash TEXT PRIMARY KEY);"
    /* pins of chunks clients uploaded here (serve_upload.c), and when */
    "CREATE TABLE IF NOT EXISTS upload_pins (hash TEXT PRIMARY KEY, at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL);";

int idx_open(struct host *h)
{
	char *url = xasprintf("sqlite:%s/index.db", h->state_dir);
	char *err = NULL;
	h->idx = db_pool_new(url, IDX_POOL, &err);
	free(url);
	if (!h->idx) {
		log_error("cannot open the index: %s", err ? err : "?");
		free(err);
		return -1;
	}
	/* Every connection of the pool commits without a flush. */
	struct db *all[IDX_POOL];
	for (int i = 0; i < IDX_POOL; i++) {
		all[i] = db_pool_acquire(h->idx);
		db_set_relaxed(all[i], true);
	}
	for (int i = 1; i < IDX_POOL; i++)
		db_pool_release(h->idx, all[i]);
	h->db = all[0];
	if (db_exec(h->db, schema) != DB_DONE) {
		log_error("cannot create the index: %s", db_errmsg(h->db));
		return -1;
	}
	return 0;
}

void entry_from_stat(struct ientry *e, const struct stat *st)
{
	e->size = st->st_size;
	e->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	e->ino = (int64_t)st->st_ino;
}

bool stat_matches(const struct ientry *e, const struct stat *st)
{
	struct ientry now;
	entry_from_stat(&now, st);
	return e->local && !e->dir && now.size == e->size && now.mtime_ns == e->mtime_ns &&
	       now.ino == e->ino;
}

static void read_entry(struct db_stmt *st, int c, struct ientry *e)
{
	memset(e, 0, sizeof *e);
	e->dir = db_col_int64(st, c) != 0;
	e->local = db_col_int64(st, c + 1) != 0;
	e->size = db_col_int64(st, c + 2);
	e->mtime_ns = db_col_int64(st, c + 3);
	e->ino = db_col_int64(st, c + 4);
	e->version_id = db_col_int64(st, c + 5);
	e->version = db_col_int64(st, c + 6);
	const char *hash = db_col_text(st, c + 7);
	snprintf(e->hash, sizeof e->hash, "%s", hash ? hash : "");
}

#define ENTRY_COLS "dir, local, size, mtime_ns, ino, version_id, version, hash"

int idx_get(struct db *db, const char *path, struct ientry *e)
{
	struct db_stmt *st = db_query(db, "SELECT " ENTRY_COLS " FROM files WHERE path = ?", path);
	if (!st)
		return -1;
	int rc = db_step(st);
	if (rc == DB_ROW)
		read_entry(st, 0, e);
	db_finalize(st);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

int idx_put(struct db *db, const char *path, const struct ientry *e)
{
	return db_run(
	    db, "INSERT OR REPLACE INTO files(path, " ENTRY_COLS ") VALUES(?,?,?,?,?,?,?,?,?)",
	    path, (int64_t)e->dir, (int64_t)e->local, e->size, e->mtime_ns, e->ino, e->version_id,
	    e->version, e->hash[0] ? e->hash : NULL);
}

/* SQL matching path and everything under it: "/a" matches "/a" and "/a/…"
 * ('0' follows '/' in byte order). The root matches everything. */
#define UNDER_SQL "(path = ?1 OR (path > ?1 || '/' AND path < ?1 || '0') OR ?1 = '/')"

int idx_del(struct db *db, const char *path)
{
	if (db_run(db, "DELETE FROM files WHERE " UNDER_SQL, path) != DB_DONE ||
	    db_run(db, "DELETE FROM chunks WHERE " UNDER_SQL, path) != DB_DONE)
		return DB_ERR;
	return DB_DONE;
}

int idx_rename(struct db *db, const char *from, const char *to)
{
	int64_t skip = (int64_t)utf8_chars(from) + 1;
	const char *tables[] = {"files", "chunks"};
	if (db_begin(db) != DB_DONE)
		return DB_ERR;
	for (int t = 0; t < 2; t++) {
		char *del = xasprintf("DELETE FROM %s WHERE " UNDER_SQL, tables[t]);
		char *upd = xasprintf(
		    "UPDATE %s SET path = ?2 || substr(path, ?3) WHERE " UNDER_SQL, tables[t]);
		int rc = db_run(db, del, to);
		if (rc == DB_DONE)
			rc = db_run(db, upd, from, to, skip);
		free(del);
		free(upd);
		if (rc != DB_DONE) {
			db_rollback(db);
			return DB_ERR;
		}
	}
	return db_commit(db);
}

int idx_set_chunks(struct db *db, const char *path, json_t *chunks)
{
	if (db_run(db, "DELETE FROM chunks WHERE path = ?", path) != DB_DONE)
		return DB_ERR;
	size_t i;
	json_t *c;
	json_array_foreach(chunks, i, c)
	{
		if (db_run(db,
		           "INSERT OR REPLACE INTO chunks(path, off, hash, size) VALUES(?,?,?,?)",
		           path, (int64_t)json_integer_value(json_object_get(c, "offset")),
		           json_string_value(json_object_get(c, "hash")),
		           (int64_t)json_integer_value(json_object_get(c, "size"))) != DB_DONE)
			return DB_ERR;
	}
	return DB_DONE;
}

int idx_chunk_where(struct db *db, const char *hash, char **path, int64_t *off, int64_t *size,
                    struct ientry *file)
{
	struct db_stmt *st = db_query(db,
	                              "SELECT c.path, c.off, c.size, f.dir, f.local, f.size, "
	                              "f.mtime_ns, f.ino, f.version_id, f.version, f.hash FROM "
	                              "chunks c JOIN files f ON f.path = c.path WHERE c.hash = ? "
	                              "AND f.local = 1 LIMIT 1",
	                              hash);
	int rc = st ? db_step(st) : DB_ERR;
	if (rc == DB_ROW) {
		*path = xstrdup(db_col_text(st, 0));
		*off = db_col_int64(st, 1);
		*size = db_col_int64(st, 2);
		if (file)
			read_entry(st, 3, file);
	}
	db_finalize(st);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

json_t *idx_list(struct db *db, const char *prefix, bool files_only)
{
	json_t *out = json_array();
	struct db_stmt *st =
	    db_query(db,
	             files_only ? "SELECT path FROM files WHERE dir = 0 AND " UNDER_SQL
	                        : "SELECT path FROM files WHERE " UNDER_SQL " ORDER BY path DESC",
	             prefix);
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(out, json_string(db_col_text(st, 0)));
	db_finalize(st);
	return out;
}

int idx_by_version(struct db *db, int64_t version_id, char **path, struct ientry *e)
{
	struct db_stmt *st = db_query(
	    db, "SELECT path, " ENTRY_COLS " FROM files WHERE version_id = ? LIMIT 1", version_id);
	int rc = st ? db_step(st) : DB_ERR;
	if (rc == DB_ROW) {
		*path = xstrdup(db_col_text(st, 0));
		read_entry(st, 1, e);
	}
	db_finalize(st);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

int64_t idx_kv_get(struct db *db, const char *k, int64_t dflt)
{
	int64_t v = dflt;
	db_int64(db, &v, "SELECT v FROM kv WHERE k = ?", k);
	return v;
}

int idx_kv_set(struct db *db, const char *k, int64_t v)
{
	return db_run(db, "INSERT OR REPLACE INTO kv(k, v) VALUES(?,?)", k, v);
}

int idx_cache_touch(struct db *db, const char *hash, int64_t size)
{
	/* A counter, not the clock: ties between fast reads still order. */
	static atomic_llong tick;
	int64_t t = now_ms() * 1000 + (atomic_fetch_add(&tick, 1) % 1000);
	return db_run(db, "INSERT OR REPLACE INTO cache(hash, size, used) VALUES(?,?,?)", hash,
	              size, t);
}

int64_t idx_cache_trim(struct db *db, struct store *s, int64_t max, json_t *evicted)
{
	int64_t total = 0;
	db_int64(db, &total, "SELECT COALESCE(SUM(size), 0) FROM cache");
	while (total > max) {
		char hash[65] = "";
		int64_t size = 0;
		struct db_stmt *st =
		    db_query(db, "SELECT hash, size FROM cache WHERE hash NOT IN (SELECT hash FROM "
		                 "cache_pins) ORDER BY used LIMIT 1");
		if (st && db_step(st) == DB_ROW) {
			snprintf(hash, sizeof hash, "%s", db_col_text(st, 0));
			size = db_col_int64(st, 1);
		}
		db_finalize(st);
		if (!hash[0])
			break;
		store_remove(s, hash);
		db_run(db, "DELETE FROM cache WHERE hash = ?", hash);
		total -= size;
		if (evicted)
			json_array_append_new(evicted, json_pack("{s:s}", "hash", hash));
		log_info("cache: evicted chunk %.12s (%lld bytes)", hash, (long long)size);
	}
	return total;
}

int idx_cache_pin(struct db *db, const char *hash, bool pinned)
{
	return pinned ? db_run(db, "INSERT OR IGNORE INTO cache_pins(hash) VALUES(?)", hash)
	              : db_run(db, "DELETE FROM cache_pins WHERE hash = ?", hash);
}

bool idx_cache_pinned(struct db *db, const char *hash)
{
	int64_t one = 0;
	return db_int64(db, &one, "SELECT 1 FROM cache_pins WHERE hash = ?", hash) == DB_ROW;
}

void idx_cache_drop(struct db *db, struct store *s, const char *hash)
{
	store_remove(s, hash);
	db_run(db, "DELETE FROM cache WHERE hash = ?", hash);
	idx_cache_pin(db, hash, false);
}
