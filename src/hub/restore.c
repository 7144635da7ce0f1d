/* restore: roost admin restore — a new hub from a backup directory
 * (backup.h). Nothing is trusted: the manifest must be there (a backup
 * without one never finished), the metadata file and every chunk must hash
 * to what the manifest and their names say. The hub is built in a sibling
 * directory and renamed into place once whole, so the target is either
 * untouched or a complete hub; a PostgreSQL dump goes into the (empty)
 * database given, in one transaction, after every chunk verified.
 *
 * Threads: the main thread of `roost admin restore`. */
#include "backup.h"
#include "../core/chunker.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/store.h"
#include "../core/util.h"
#include "../db/db.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MANIFEST_MAX ((size_t)4 << 30)
#define BAD_SHOWN    20 /* damaged chunks named one by one; then a count */
#define PROGRESS_MS  1000ll

struct restore {
	const char *from, *data_dir, *db_url;
	json_t *m;
	const char *kind, *meta_file, *meta_sha;
	char stage[PATH_MAX];
	struct store *dst;
	int64_t chunks, bytes, bad;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	remove(path);
	return 0;
}

/* Is dir absent, or an empty directory? */
static bool dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT;
	struct dirent *e;
	bool empty = true;
	while (empty && (e = readdir(d)))
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	return empty;
}

static json_t *load_manifest(const char *from)
{
	char *path = xasprintf("%s/%s", from, BACKUP_MANIFEST);
	size_t len = 0;
	char *text = read_file(path, MANIFEST_MAX, &len);
	json_t *m = NULL;
	if (!text && errno == ENOENT)
		fprintf(stderr,
		        "roost admin restore: %s holds no complete backup: it has no %s (a backup "
		        "that did not finish has none)\n",
		        from, BACKUP_MANIFEST);
	else if (!text)
		fprintf(stderr, "roost admin restore: cannot read %s: %s\n", path, strerror(errno));
	else if (!(m = json_loadb(text, len, 0, NULL)) || !json_is_object(m) ||
	         strcmp(json_get_str(m, "format"), BACKUP_FORMAT) != 0) {
		fprintf(stderr, "roost admin restore: %s is not a roost backup manifest (%s)\n",
		        path, BACKUP_FORMAT);
		json_decref(m);
		m = NULL;
	}
	free(text);
	free(path);
	return m;
}

/* The manifest's facts, checked: 0 or an exit code. */
static int check_manifest(struct restore *r)
{
	json_t *meta = json_object_get(r->m, "metadata");
	r->kind = json_get_str(r->m, "db");
	r->meta_file = json_get_str(meta, "file");
	r->meta_sha = json_get_str(meta, "sha256");
	bool pg = strcmp(r->kind, "postgres") == 0;
	if ((!pg && strcmp(r->kind, "sqlite") != 0) || strncmp(r->meta_file, "metadata-", 9) != 0 ||
	    strchr(r->meta_file, '/') || !hash_hex_valid(r->meta_sha) ||
	    !json_is_array(json_object_get(r->m, "chunks"))) {
		fprintf(stderr,
		        "roost admin restore: %s/%s is damaged (its metadata or chunk list)\n",
		        r->from, BACKUP_MANIFEST);
		return 1;
	}
	if (pg && !r->db_url) {
		fprintf(stderr, "roost admin restore: this backup holds a PostgreSQL dump: give "
		                "--db URL of an empty database to restore it into\n");
		return 2;
	}
	if (!pg && r->db_url) {
		fprintf(stderr, "roost admin restore: this backup holds a SQLite database; it "
		                "restores into DATA/roost.db (leave out --db)\n");
		return 2;
	}
	return 0;
}

/* An empty PostgreSQL database at url? 0 or an exit code. */
static int check_empty_db(const char *url)
{
	char *err = NULL;
	struct db *db = db_open(url, &err);
	if (!db) {
		fprintf(stderr, "roost admin restore: %s\n", err);
		free(err);
		return 1;
	}
	int64_t n = -1;
	int rc = db_int64(db, &n,
	                  "SELECT COUNT(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace "
	                  "s ON s.oid = c.relnamespace WHERE s.nspname = 'public'");
	if (rc != DB_ROW)
		fprintf(stderr, "roost admin restore: %s\n", db_errmsg(db));
	else if (n != 0)
		fprintf(stderr,
		        "roost admin restore: the database given with --db is not empty; restore "
		        "into a new one (createdb)\n");
	db_close(db);
	return rc == DB_ROW && n == 0 ? 0 : 1;
}

/* Copy src to dst (a new 0600 file), hashing on the way: 0 or -errno. */
static int copy_hashed(const char *src, const char *dst, char hex[HASH_HEX_LEN + 1])
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		int e = -errno;
		close(in);
		return e;
	}
	struct hasher *h = hasher_new();
	size_t cap = (size_t)1 << 20;
	uint8_t *buf = xmalloc(cap);
	int rc = 0;
	for (;;) {
		ssize_t n = read(in, buf, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : 0;
			break;
		}
		hasher_update(h, buf, (size_t)n);
		if ((rc = write_all(out, buf, (size_t)n)) != 0)
			break;
	}
	if (rc == 0 && fsync(out) != 0)
		rc = -errno;
	hasher_final_hex(h, hex);
	hasher_free(h);
	free(buf);
	close(in);
	close(out);
	return rc;
}

/* Copy the SQLite metadata into the new hub as roost.db, hashed on the way:
 * 0, or -1 (said why). */
static int restore_sqlite(struct restore *r)
{
	char *src = xasprintf("%s/%s", r->from, r->meta_file);
	char *dst = xasprintf("%s/roost.db", r->stage);
	char got[HASH_HEX_LEN + 1];
	int rc = copy_hashed(src, dst, got);
	if (rc != 0)
		fprintf(stderr, "roost admin restore: cannot copy %s to %s: %s\n", src, dst,
		        strerror(-rc));
	else if (strcmp(got, r->meta_sha) != 0) {
		fprintf(stderr,
		        "roost admin restore: %s is damaged: its SHA-256 is not the manifest's\n",
		        src);
		rc = -1;
	}
	free(src);
	free(dst);
	return rc == 0 ? 0 : -1;
}

/* The PostgreSQL dump: its hash checked first, restored later (restore_pg). */
static int verify_pg_dump(struct restore *r)
{
	char *src = xasprintf("%s/%s", r->from, r->meta_file);
	char got[HASH_HEX_LEN + 1];
	int64_t size = 0;
	int rc = backup_hash_file(src, got, &size);
	if (rc != 0)
		fprintf(stderr, "roost admin restore: cannot read %s: %s\n", src, strerror(-rc));
	else if (strcmp(got, r->meta_sha) != 0)
		fprintf(stderr,
		        "roost admin restore: %s is damaged: its SHA-256 is not the manifest's\n",
		        src);
	free(src);
	return rc == 0 && strcmp(got, r->meta_sha) == 0 ? 0 : -1;
}

static int restore_pg(struct restore *r)
{
	char *src = xasprintf("%s/%s", r->from, r->meta_file);
	char *argv[] = {"pg_restore",
	                "--no-owner",
	                "--no-privileges",
	                "--exit-on-error",
	                "--single-transaction",
	                "--no-password",
	                "--dbname",
	                (char *)r->db_url,
	                src,
	                NULL};
	int rc = backup_run_tool("admin restore", argv);
	free(src);
	char *err = NULL;
	struct db *db = rc == 0 ? db_open(r->db_url, &err) : NULL;
	if (db) /* the backup's own fence is in its snapshot: a restored hub has none */
		db_run(db, "DELETE FROM gc_fences");
	free(err);
	db_close(db);
	return rc;
}

static void bad_chunk(struct restore *r, const char *hash, const char *why)
{
	if (r->bad++ < BAD_SHOWN)
		fprintf(stderr, "roost admin restore: chunk %s %s\n", hash, why);
}

/* One chunk from the backup into the new hub's store, verified against its
 * name and the manifest's size. */
static void restore_chunk(struct restore *r, const char *hash, int64_t size, uint8_t **buf,
                          size_t *cap)
{
	char *p = xasprintf("%s/objects/%.2s/%s", r->from, hash, hash);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		bad_chunk(r, hash,
		          errno == ENOENT ? "is missing from the backup" : strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	if (st.st_size != size || size > CHUNK_MAX_LIMIT) {
		close(fd);
		bad_chunk(r, hash, "is damaged in the backup (its size is not the manifest's)");
		return;
	}
	if ((size_t)size > *cap) {
		*cap = (size_t)size;
		*buf = xrealloc(*buf, *cap);
	}
	ssize_t n = pread_full(fd, *buf, (size_t)size, 0);
	close(fd);
	if (n != size) {
		bad_chunk(r, hash, n < 0 ? strerror((int)-n) : "is shorter than its size");
		return;
	}
	struct store_writer *w = store_writer_new(r->dst);
	int rc = store_writer_write(w, *buf, (size_t)size);
	if (rc != 0) {
		store_writer_abort(w);
	} else {
		char got[HASH_HEX_LEN + 1];
		rc = store_writer_commit(w, hash, got);
	}
	if (rc == -EBADMSG)
		bad_chunk(r, hash,
		          "is damaged in the backup (its content does not hash to its name)");
	else if (rc != 0)
		bad_chunk(r, hash, strerror(-rc));
	else {
		r->chunks++;
		r->bytes += size;
	}
}

static void restore_chunks(struct restore *r)
{
	json_t *list = json_object_get(r->m, "chunks"), *c;
	size_t i, total = json_array_size(list);
	uint8_t *buf = NULL;
	size_t cap = 0;
	int64_t shown = mono_ms();
	json_array_foreach(list, i, c)
	{
		const char *hash = json_get_str(c, "hash");
		if (!hash_hex_valid(hash)) {
			bad_chunk(r, "(a bad name)", "is in the manifest: it is damaged");
			continue;
		}
		restore_chunk(r, hash, json_integer_value(json_object_get(c, "size")), &buf, &cap);
		if (mono_ms() - shown >= PROGRESS_MS || i + 1 == total) {
			char hb[32];
			shown = mono_ms();
			fprintf(stderr, "roost admin restore: %zu/%zu chunks verified, %s\n", i + 1,
			        total, human_bytes(r->bytes, hb));
		}
	}
	free(buf);
	if (r->bad > BAD_SHOWN)
		fprintf(stderr, "roost admin restore: and %lld more damaged or missing chunks\n",
		        (long long)(r->bad - BAD_SHOWN));
}

/* Build the hub in the staging directory: 0 or an exit code. */
static int build(struct restore *r)
{
	bool pg = strcmp(r->kind, "postgres") == 0;
	int rc = pg ? check_empty_db(r->db_url) : 0;
	if (rc)
		return rc;
	if (mkdir(r->stage, 0700) != 0) {
		fprintf(stderr, "roost admin restore: cannot create %s: %s\n", r->stage,
		        strerror(errno));
		return 1;
	}
	if ((pg ? verify_pg_dump(r) : restore_sqlite(r)) != 0)
		return 1;
	if (!(r->dst = store_open(r->stage)))
		return 1;
	restore_chunks(r);
	if (r->bad) {
		fprintf(stderr,
		        "roost admin restore: %lld chunk%s of the backup %s damaged or missing: "
		        "nothing was restored\n",
		        (long long)r->bad, r->bad == 1 ? "" : "s", r->bad == 1 ? "is" : "are");
		return 1;
	}
	if (pg && restore_pg(r) != 0) {
		fprintf(stderr, "roost admin restore: the database was not restored (pg_restore "
		                "ran in one transaction)\n");
		return 1;
	}
	return 0;
}

static void report(struct restore *r)
{
	char t[64], hb[32];
	time_t secs = (time_t)(json_integer_value(json_object_get(r->m, "created_at")) / 1000);
	strftime(t, sizeof t, "%Y-%m-%d %H:%M:%S", localtime(&secs));
	printf("restored the backup of %s (%s, roost %s) from %s into %s: %lld chunk%s (%s) and "
	       "the metadata, every one verified\n",
	       t, r->kind, json_get_str(r->m, "hub_version"), r->from, r->data_dir,
	       (long long)r->chunks, r->chunks == 1 ? "" : "s", human_bytes(r->bytes, hb));
	size_t absent = json_array_size(json_object_get(r->m, "absent"));
	if (absent)
		printf("%zu chunk%s the metadata names %s not in the backup (the hub did not hold "
		       "them: kept on hosts, or damaged); files using them come from hosts or "
		       "fail to download\n",
		       absent, absent == 1 ? "" : "s", absent == 1 ? "was" : "were");
	printf("start it with: roost serve --data %s%s%s\n", r->data_dir, r->db_url ? " --db " : "",
	       r->db_url ? r->db_url : "");
}

int hub_restore(const char *from, const char *data_dir, const char *db_url)
{
	struct restore r = {.from = from, .data_dir = data_dir, .db_url = db_url};
	if (!dir_empty(data_dir)) {
		fprintf(stderr,
		        "roost admin restore: %s is not empty (or not a directory): restore builds "
		        "a new hub in a new or empty directory\n",
		        data_dir);
		return 1;
	}
	if (!(r.m = load_manifest(from)))
		return 1;
	int rc = check_manifest(&r);
	if (rc) {
		json_decref(r.m);
		return rc;
	}
	char target[PATH_MAX], parent[PATH_MAX];
	snprintf(target, sizeof target, "%s", data_dir);
	size_t n = strlen(target);
	while (n > 1 && target[n - 1] == '/')
		target[--n] = 0;
	snprintf(parent, sizeof parent, "%s", target);
	if (snprintf(r.stage, sizeof r.stage, "%s.restoring-%ld", target, (long)getpid()) >=
	    (int)sizeof r.stage) {
		fprintf(stderr, "roost admin restore: --data %s: the path is too long\n", data_dir);
		json_decref(r.m);
		return 1;
	}
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = 0;
		mkdir_p(parent, 0700);
	}
	rc = build(&r);
	store_free(r.dst);
	if (rc == 0 && ((rmdir(target) != 0 && errno != ENOENT) || rename(r.stage, target) != 0 ||
	                fsync_parent_dir(target) != 0)) {
		fprintf(stderr, "roost admin restore: cannot move %s to %s: %s\n", r.stage,
		        data_dir, strerror(errno));
		rc = 1;
	}
	if (rc != 0)
		nftw(r.stage, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else
		report(&r);
	json_decref(r.m);
	return rc;
}
