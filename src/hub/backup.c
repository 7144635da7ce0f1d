/* backup: roost admin backup — a consistent snapshot of a serving hub
 * (backup.h says what a backup directory holds).
 *
 * The order is what makes it consistent. First a fence (gc_fences) goes in,
 * so GC and the cache's eviction delete no chunk from then on; then the
 * metadata is snapshotted (SQLite: VACUUM INTO, one read transaction;
 * PostgreSQL: pg_dump on a snapshot exported from a REPEATABLE READ
 * transaction), and the chunk list is read from that same snapshot. Every
 * chunk it names was in the store when the fence went in or arrived later
 * (GC never deleted it: its deletions check the fence in their transaction),
 * so it is still there to copy while the fence is renewed. The manifest is
 * written last; then the fence goes and what the previous backup in the
 * directory held and this one does not is removed.
 *
 * Objects are copied, never hard-linked: the hub's store never rewrites an
 * object in place (temp file, rename), so a link would stay right, but it
 * would share the disk blocks with the live store, and a backup must survive
 * the loss or damage of those. Chunks are content-addressed: an object the
 * backup directory already holds (a previous backup) is not copied again.
 *
 * Threads: the main thread of `roost admin backup`. */
#include "backup.h"
#include "init.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/store.h"
#include "../core/util.h"
#include "../db/db.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FENCE_MS       60000ll /* a fence lasts this long unrenewed (a crashed backup's lapses) */
#define FENCE_RENEW_MS 5000ll
#define PROGRESS_MS    1000ll /* a progress line at most this often */

struct snap_chunk {
	char hash[HASH_HEX_LEN + 1];
	int64_t size, refcount;
};

struct snap {
	struct snap_chunk *v;
	size_t n, cap;
};

struct backup {
	const char *dest;
	struct db *db;
	struct store *src, *dst;
	char owner[128];
	int64_t fence_renewed;
	const char *kind; /* "sqlite" or "postgres" */
	int64_t created_at;
	char meta_name[64], meta_tmp[PATH_MAX], meta_path[PATH_MAX];
	char meta_sha[HASH_HEX_LEN + 1];
	int64_t meta_size;
	int schema;
	struct snap snap;
	json_t *chunks, *absent; /* the manifest's lists */
	int64_t copied, copied_bytes, present, present_bytes;
};

int backup_run_tool(const char *what, char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "roost %s: cannot start %s: %s\n", what, argv[0], strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 1);
		execvp(argv[0], argv);
		fprintf(stderr,
		        "roost %s: cannot run %s: %s (Debian: apt install "
		        "postgresql-client)\n",
		        what, argv[0], strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (!(WIFEXITED(st) && WEXITSTATUS(st) == 127))
		fprintf(stderr, "roost %s: %s failed (%s %d)\n", what, argv[0],
		        WIFEXITED(st) ? "exit code" : "signal",
		        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return -1;
}

int backup_hash_file(const char *path, char hex[65], int64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int rc = fstat(fd, &st) == 0 ? hash_fd_hex(fd, hex) : -errno;
	*size = st.st_size;
	close(fd);
	return rc;
}

static int cmp_chunk(const void *a, const void *b)
{
	return strcmp(((const struct snap_chunk *)a)->hash, ((const struct snap_chunk *)b)->hash);
}

/* Every chunk the database names, sorted by hash. DB_DONE or DB_ERR. */
static int read_chunks(struct db *db, struct snap *s)
{
	struct db_stmt *st = db_query(db, "SELECT hash, size, refcount FROM chunks");
	int step = st ? DB_DONE : DB_ERR;
	while (st && (step = db_step(st)) == DB_ROW) {
		const char *h = db_col_text(st, 0);
		if (!h || !hash_hex_valid(h))
			continue;
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 1024;
			s->v = xrealloc(s->v, s->cap * sizeof *s->v);
		}
		struct snap_chunk *c = &s->v[s->n++];
		memcpy(c->hash, h, sizeof c->hash);
		c->size = db_col_int64(st, 1);
		c->refcount = db_col_int64(st, 2);
	}
	db_finalize(st);
	if (step == DB_ERR)
		return DB_ERR;
	if (s->n)
		qsort(s->v, s->n, sizeof *s->v, cmp_chunk);
	return DB_DONE;
}

static bool fence_renew(struct backup *b)
{
	int64_t now = now_ms();
	if (b->fence_renewed && now - b->fence_renewed < FENCE_RENEW_MS)
		return true;
	b->fence_renewed = now;
	return db_run(b->db,
	              "INSERT INTO gc_fences(owner, created_at, expires_at) VALUES(?,?,?) ON "
	              "CONFLICT(owner) DO UPDATE SET expires_at = excluded.expires_at",
	              b->owner, now, now + FENCE_MS) == DB_DONE;
}

static void fence_drop(struct backup *b)
{
	if (b->fence_renewed)
		db_run(b->db, "DELETE FROM gc_fences WHERE owner = ?", b->owner);
	b->fence_renewed = 0;
}

/* fsync the file at path. 0 or -errno. */
static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

/* SQLite: VACUUM INTO a temp file (one read transaction of the live
 * database), and the chunk list read from that file. */
static int snapshot_sqlite(struct backup *b)
{
	if (db_run(b->db, "VACUUM INTO ?", b->meta_tmp) != DB_DONE) {
		fprintf(stderr, "roost admin backup: VACUUM INTO %s: %s\n", b->meta_tmp,
		        db_errmsg(b->db));
		return -1;
	}
	char *url = xasprintf("sqlite:%s", b->meta_tmp), *err = NULL;
	struct db *copy = db_open(url, &err);
	free(url);
	/* The backup's own fence is in its snapshot: a restored hub has none. */
	int rc = copy ? db_run(copy, "DELETE FROM gc_fences") : DB_ERR;
	if (rc == DB_DONE)
		rc = read_chunks(copy, &b->snap);
	if (copy && rc == DB_DONE)
		b->schema = db_schema_version(copy);
	if (!copy || rc != DB_DONE)
		fprintf(stderr, "roost admin backup: cannot read the snapshot %s: %s\n",
		        b->meta_tmp, copy ? db_errmsg(copy) : err);
	free(err);
	db_close(copy);
	char wal[PATH_MAX + 8];
	snprintf(wal, sizeof wal, "%s-wal", b->meta_tmp);
	unlink(wal); /* the close checkpointed it; nothing is left in it */
	snprintf(wal, sizeof wal, "%s-shm", b->meta_tmp);
	unlink(wal);
	return rc == DB_DONE ? 0 : -1;
}

/* PostgreSQL: pg_dump -Fc on a snapshot exported by a REPEATABLE READ
 * transaction, which reads the chunk list from the same snapshot. */
static int snapshot_pg(struct backup *b, const char *url)
{
	if (db_exec(b->db, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY") != DB_DONE)
		goto fail;
	struct db_stmt *st = db_query(b->db, "SELECT pg_export_snapshot()");
	char snapshot[128] = "";
	if (st && db_step(st) == DB_ROW && db_col_text(st, 0))
		snprintf(snapshot, sizeof snapshot, "%s", db_col_text(st, 0));
	db_finalize(st);
	if (!snapshot[0] || read_chunks(b->db, &b->snap) != DB_DONE)
		goto fail_tx;
	b->schema = db_schema_version(b->db);
	char *argv[] = {"pg_dump", "--format=custom", "--no-password", "--snapshot", snapshot,
	                "--file",  b->meta_tmp,       "--dbname",      (char *)url,  NULL};
	if (backup_run_tool("admin backup", argv) != 0) {
		db_exec(b->db, "ROLLBACK");
		return -1;
	}
	if (db_exec(b->db, "COMMIT") != DB_DONE)
		goto fail;
	return 0;
fail_tx:
	db_exec(b->db, "ROLLBACK");
fail:
	fprintf(stderr, "roost admin backup: cannot snapshot the database: %s\n", db_errmsg(b->db));
	return -1;
}

static void progress(struct backup *b, size_t done, bool last)
{
	static int64_t shown;
	int64_t now = mono_ms();
	if (!last && now - shown < PROGRESS_MS)
		return;
	shown = now;
	char hb[32];
	fprintf(stderr, "roost admin backup: %zu/%zu chunks, %s copied\n", done, b->snap.n,
	        human_bytes(b->copied_bytes, hb));
}

/* Copy one chunk into the backup, verified on the way (a read of the hub's
 * store checks the object against its name). 0, or -1 for a failure that
 * stops the backup; a chunk the store lacks or holds damaged goes on the
 * manifest's "absent" list (one no version uses is left out: GC's). */
static int copy_chunk(struct backup *b, const struct snap_chunk *c, uint8_t **buf, size_t *cap)
{
	if (store_size(b->dst, c->hash) == c->size) {
		b->present++;
		b->present_bytes += c->size;
		return 0;
	}
	int64_t size = store_size(b->src, c->hash);
	if (size >= 0 && (uint64_t)size > *cap) {
		*cap = (size_t)size;
		*buf = xrealloc(*buf, *cap ? *cap : 1);
	}
	int64_t n = size >= 0 ? store_read(b->src, c->hash, *buf, *cap) : size;
	if (n < 0 && n != -ENOENT && n != -EBADMSG) {
		fprintf(stderr, "roost admin backup: cannot read chunk %s: %s\n", c->hash,
		        strerror((int)-n));
		return -1;
	}
	if (n < 0) {
		if (c->refcount > 0)
			json_array_append_new(
			    b->absent, json_pack("{s:s, s:I, s:s}", "hash", c->hash, "size",
			                         (json_int_t)c->size, "reason",
			                         n == -ENOENT ? "not in the hub's store"
			                                      : "damaged in the hub's store"));
		return 0;
	}
	char got[HASH_HEX_LEN + 1];
	int rc = store_put(b->dst, *buf, (size_t)n, got);
	if (rc != 0) {
		fprintf(stderr, "roost admin backup: cannot write chunk %s into %s: %s\n", c->hash,
		        b->dest, strerror(-rc));
		return -1;
	}
	b->copied++;
	b->copied_bytes += n;
	const char *delay = getenv("ROOST_BACKUP_TEST_DELAY_MS"); /* tests: a slow copy */
	if (delay && atoi(delay) > 0)
		usleep((useconds_t)atoi(delay) * 1000);
	return 0;
}

static int copy_chunks(struct backup *b)
{
	uint8_t *buf = NULL;
	size_t cap = 0;
	int rc = 0;
	for (size_t i = 0; i < b->snap.n && rc == 0; i++) {
		const struct snap_chunk *c = &b->snap.v[i];
		if (!fence_renew(b)) {
			fprintf(stderr, "roost admin backup: cannot renew the GC fence: %s\n",
			        db_errmsg(b->db));
			rc = -1;
			break;
		}
		size_t absent = json_array_size(b->absent);
		rc = copy_chunk(b, c, &buf, &cap);
		if (rc == 0 && json_array_size(b->absent) == absent &&
		    (c->refcount > 0 || store_has(b->dst, c->hash)))
			json_array_append_new(b->chunks, json_pack("{s:s, s:I}", "hash", c->hash,
			                                           "size", (json_int_t)c->size));
		progress(b, i + 1, false);
	}
	free(buf);
	if (rc == 0)
		progress(b, b->snap.n, true);
	return rc;
}

static int write_manifest(struct backup *b)
{
	json_t *m = json_pack("{s:s, s:I, s:s, s:s, s:i, s:{s:s, s:s, s:I}, s:O, s:O}", "format",
	                      BACKUP_FORMAT, "created_at", (json_int_t)b->created_at, "hub_version",
	                      ROOST_VERSION, "db", b->kind, "schema_version", b->schema, "metadata",
	                      "file", b->meta_name, "sha256", b->meta_sha, "size",
	                      (json_int_t)b->meta_size, "chunks", b->chunks, "absent", b->absent);
	char *s = json_dumps(m, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(m);
	char *path = xasprintf("%s/%s", b->dest, BACKUP_MANIFEST);
	int rc = s ? write_file_atomic(path, s, strlen(s), 0600) : -ENOMEM;
	if (rc != 0)
		fprintf(stderr, "roost admin backup: cannot write %s: %s\n", path, strerror(-rc));
	free(path);
	free(s);
	return rc;
}

struct prune {
	struct backup *b;
	int64_t removed;
};

static void prune_object(const char *hash, int64_t mtime_ms, void *cls)
{
	(void)mtime_ms;
	struct prune *p = cls;
	struct snap_chunk key;
	snprintf(key.hash, sizeof key.hash, "%s", hash);
	struct snap_chunk *c =
	    p->b->snap.n ? bsearch(&key, p->b->snap.v, p->b->snap.n, sizeof key, cmp_chunk) : NULL;
	if (!c && store_remove(p->b->dst, hash) == 0)
		p->removed++;
}

/* After the manifest: what only the previous backup needed (its metadata
 * file, chunks no longer named) goes. */
static int64_t prune(struct backup *b)
{
	DIR *d = opendir(b->dest);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, "metadata-", 9) == 0 &&
		    strcmp(e->d_name, b->meta_name) != 0) {
			char *p = xasprintf("%s/%s", b->dest, e->d_name);
			unlink(p);
			free(p);
		}
	}
	if (d)
		closedir(d);
	struct prune p = {.b = b};
	for (int dir = 0; dir < 256; dir++)
		store_list_dir(b->dst, dir, prune_object, &p);
	return p.removed;
}

/* The database, opened for a backup: an initialized hub's. */
static struct db *open_hub_db(const struct hub_config *cfg, char **url_out)
{
	char *url = hub_db_url(cfg->data_dir, cfg->db_url), *err = NULL;
	struct db *db = db_open(url, &err);
	if (!db) {
		fprintf(stderr, "roost admin backup: %s\n", err);
		free(err);
		free(url);
		return NULL;
	}
	int64_t users = 0;
	if (db_migrate(db) != DB_DONE ||
	    db_int64(db, &users, "SELECT COUNT(*) FROM users") != DB_ROW || users == 0) {
		fprintf(stderr, "roost admin backup: no initialized hub in %s\n", cfg->data_dir);
		db_close(db);
		free(url);
		return NULL;
	}
	*url_out = url;
	return db;
}

/* A backup directory is never a hub's data directory (nor inside its
 * store): the backup prunes what its manifest does not name. */
static int check_dest(const char *data_dir, const char *dest)
{
	char data[PATH_MAX], to[PATH_MAX];
	char *db = xasprintf("%s/roost.db", dest);
	bool hub = access(db, F_OK) == 0;
	free(db);
	if (!hub && realpath(data_dir, data) && realpath(dest, to)) {
		size_t n = strlen(data);
		hub = strcmp(data, to) == 0 ||
		      (strncmp(to, data, n) == 0 && strncmp(to + n, "/objects", 8) == 0);
	}
	if (hub)
		fprintf(stderr,
		        "roost admin backup: %s is a hub's data directory (or its store): back up "
		        "into a directory of its own\n",
		        dest);
	return hub ? -1 : 0;
}

static int take_lock(const char *dest)
{
	char *p = xasprintf("%s/.lock", dest);
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(p);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
		fprintf(stderr, "roost admin backup: another backup is writing to %s now\n", dest);
		close(fd);
		return -1;
	}
	if (fd < 0)
		fprintf(stderr, "roost admin backup: cannot lock %s: %s\n", dest, strerror(errno));
	return fd;
}

static int finish(struct backup *b)
{
	if (rename(b->meta_tmp, b->meta_path) != 0 || fsync_parent_dir(b->meta_path) != 0) {
		fprintf(stderr, "roost admin backup: cannot rename %s: %s\n", b->meta_tmp,
		        strerror(errno));
		return -1;
	}
	if (write_manifest(b) != 0)
		return -1;
	fence_drop(b);
	int64_t removed = prune(b);
	char t[64], hb[32], hp[32], hm[32];
	time_t secs = (time_t)(b->created_at / 1000);
	strftime(t, sizeof t, "%Y-%m-%d %H:%M:%S", localtime(&secs));
	printf("backup of %s (%s, %s) in %s: %zu chunk%s (%lld copied, %s; %lld already "
	       "there, %s), metadata %s",
	       t, b->kind, ROOST_VERSION, b->dest, json_array_size(b->chunks),
	       json_array_size(b->chunks) == 1 ? "" : "s", (long long)b->copied,
	       human_bytes(b->copied_bytes, hb), (long long)b->present,
	       human_bytes(b->present_bytes, hp), human_bytes(b->meta_size, hm));
	if (removed)
		printf(", %lld chunk%s only the previous backup needed removed", (long long)removed,
		       removed == 1 ? "" : "s");
	printf("\n");
	size_t absent = json_array_size(b->absent);
	if (absent)
		fprintf(stderr,
		        "roost admin backup: %zu chunk%s the metadata names %s not in the hub's "
		        "store or damaged there (a workspace that keeps its bytes on hosts, or "
		        "damage: see 'roost admin scrub'); listed as \"absent\" in the manifest\n",
		        absent, absent == 1 ? "" : "s", absent == 1 ? "is" : "are");
	return 0;
}

int hub_backup(const struct hub_config *cfg, const char *dest)
{
	struct backup b = {.dest = dest};
	char *url = NULL;
	int rc = 1, lock = -1;
	if (hub_store_is_s3(cfg)) { /* before anything is made in dest */
		fprintf(stderr,
		        "roost admin backup: not for a hub whose chunks are in an S3 bucket "
		        "(--store %s): turn on the bucket's versioning and back the metadata up "
		        "with pg_dump or sqlite3 .backup (docs/operations.md, \"Object "
		        "storage\")\n",
		        cfg->store_url);
		return 1;
	}
	if (!(b.db = open_hub_db(cfg, &url)) || check_dest(cfg->data_dir, dest) != 0)
		goto out;
	if (mkdir_p(dest, 0700) != 0) {
		fprintf(stderr, "roost admin backup: cannot create %s: %s\n", dest,
		        strerror(errno));
		goto out;
	}
	if ((lock = take_lock(dest)) < 0)
		goto out;
	b.kind = db_backend(b.db);
	b.src = store_open_shared(cfg->store_url ? cfg->store_url : cfg->data_dir);
	b.dst = store_open(dest);
	if (!b.src || !b.dst) {
		fprintf(stderr, "roost admin backup: cannot open the chunk stores in %s and %s\n",
		        cfg->data_dir, dest);
		goto out;
	}
	char host[64] = "";
	gethostname(host, sizeof host - 1);
	snprintf(b.owner, sizeof b.owner, "backup %s:%ld:%lld", host, (long)getpid(),
	         (long long)now_ms());
	if (!fence_renew(&b)) {
		fprintf(stderr, "roost admin backup: cannot fence GC: %s\n", db_errmsg(b.db));
		goto out;
	}
	b.created_at = now_ms();
	bool pg = strcmp(b.kind, "postgres") == 0;
	snprintf(b.meta_name, sizeof b.meta_name, "metadata-%lld.%s", (long long)b.created_at,
	         pg ? "pgdump" : "db");
	snprintf(b.meta_path, sizeof b.meta_path, "%s/%s", dest, b.meta_name);
	snprintf(b.meta_tmp, sizeof b.meta_tmp, "%s/.%s.tmp", dest, b.meta_name);
	/* The metadata holds password hashes and signing keys: 0600 from the
	 * start (VACUUM INTO takes an empty file; pg_dump truncates it). */
	unlink(b.meta_tmp);
	int mfd = open(b.meta_tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (mfd < 0) {
		fprintf(stderr, "roost admin backup: cannot create %s: %s\n", b.meta_tmp,
		        strerror(errno));
		goto out;
	}
	close(mfd);
	b.chunks = json_array();
	b.absent = json_array();
	if ((pg ? snapshot_pg(&b, url) : snapshot_sqlite(&b)) != 0)
		goto out;
	int h = fsync_path(b.meta_tmp);
	if (h == 0)
		h = backup_hash_file(b.meta_tmp, b.meta_sha, &b.meta_size);
	if (h != 0) {
		fprintf(stderr, "roost admin backup: %s: %s\n", b.meta_tmp, strerror(-h));
		goto out;
	}
	char hb[32];
	int64_t total = 0;
	for (size_t i = 0; i < b.snap.n; i++)
		total += b.snap.v[i].size;
	fprintf(stderr, "roost admin backup: snapshot taken: %zu chunk%s (%s) to back up\n",
	        b.snap.n, b.snap.n == 1 ? "" : "s", human_bytes(total, hb));
	if (copy_chunks(&b) != 0 || finish(&b) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0 && b.meta_tmp[0])
		unlink(b.meta_tmp);
	if (rc != 0 && lock >= 0)
		fprintf(stderr,
		        "roost admin backup: failed; %s holds no new backup (a previous "
		        "one there is unchanged)\n",
		        dest);
	if (b.db)
		fence_drop(&b);
	json_decref(b.chunks);
	json_decref(b.absent);
	free(b.snap.v);
	store_free(b.src);
	store_free(b.dst);
	db_close(b.db);
	if (lock >= 0)
		close(lock);
	free(url);
	return rc;
}
