/* tree: see tree.h. The remote tree is read folder by folder (GET list: each
 * entry's size, version and SHA-256); the files then go through transfer_put
 * and transfer_get_opts on TREE_PARALLEL workers, each with its own curl
 * handle, while the caller's thread draws the one progress line. */
#include "tree.h"
#include "cmdline.h"
#include "transfer.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Bounds on what a tree may hold, local or from the hub. */
#define TREE_MAX_DEPTH       256
#define TREE_MAX_ENTRIES     1000000
#define TREE_CHUNKS_PER_FILE 4 /* chunk transfers per file when not told (--parallel) */
#define TREE_BATCH           200 /* small files per batch commit: a worker's first commit comes soon */

struct entry {
	char *rel; /* "a/b.txt", relative to the tree's root */
	int64_t size, version;
	char hash[HASH_HEX_LEN + 1]; /* remote files; "" for local ones */
	int64_t files_below;         /* folders: regular files somewhere under it */
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

static struct entry *entries_add(struct entries *e, const char *rel)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 64;
		e->v = xrealloc(e->v, e->cap * sizeof *e->v);
	}
	struct entry *x = &e->v[e->n++];
	memset(x, 0, sizeof *x);
	x->rel = xstrdup(rel);
	return x;
}

static void entries_free(struct entries *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i].rel);
	free(e->v);
}

static int by_rel(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->rel, ((const struct entry *)b)->rel);
}

static struct entry *entries_find(const struct entries *e, const char *rel)
{
	struct entry key = {.rel = (char *)rel};
	return e->n ? bsearch(&key, e->v, e->n, sizeof *e->v, by_rel) : NULL;
}

static char *rel_join(const char *rel, const char *name)
{
	return rel[0] ? xasprintf("%s/%s", rel, name) : xstrdup(name);
}

/* A remote path: the normalized root and a relative path. */
static char *remote_join(const char *root, const char *rel)
{
	return xasprintf("%s%s%s", root, strcmp(root, "/") == 0 ? "" : "/", rel);
}

/* ---- the run: shared by put and get ---- */

struct tree {
	struct client *c;
	const struct tree_opts *o;
	bool put;
	const char *dir;    /* the local root as given */
	const char *remote; /* the remote root, normalized */
	int dfd;            /* get: the local root, open */
	bool batch_small;   /* put: small files in batch commits (a 'hub' workspace) */
	struct entries files, remote_files, dirs, remote_dirs;
	int64_t total_bytes;
	atomic_size_t next;
	atomic_llong bytes, sent;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int running;
	size_t done, changed, unchanged;
	json_t *failed;  /* [path] */
	json_t *skipped; /* [{path, reason}] */
};

static void note_skip(struct tree *t, const char *path, const char *reason)
{
	json_array_append_new(t->skipped, json_pack("{s:s, s:s}", "path", path, "reason", reason));
	if (!t->o->quiet && !t->o->json)
		fprintf(stderr, "roost %s: skipped %s: %s\n", t->put ? "put" : "get", path, reason);
}

/* ---- the remote tree ---- */

/* List folder (remote rel beneath t->remote) and everything below it into
 * t->remote_files and t->remote_dirs. 1 listed, 0 the root is missing
 * (what == NULL: not an error), -1 after printing why. */
static int remote_walk(struct tree *t, const char *folder, const char *rel, int depth)
{
	if (depth > TREE_MAX_DEPTH) {
		fprintf(stderr, "roost %s: %s is nested too deep (over %d folders)\n",
		        t->put ? "put" : "get", folder, TREE_MAX_DEPTH);
		return -1;
	}
	json_t *out = NULL;
	char err[256];
	long st = client_list(t->c, t->c->curl, folder, &out, err);
	if (st == 404 && depth == 0 && t->put) {
		json_decref(out);
		return 0;
	}
	if (st != 200) {
		client_print_error(t->put ? "put" : "get", st, out, err);
		json_decref(out);
		return -1;
	}
	const char *type = json_get_str(out, "type");
	if (!type || strcmp(type, "folder") != 0) {
		if (t->put)
			fprintf(stderr, "roost put: %s is a file in the workspace, not a folder\n",
			        folder);
		else
			fprintf(
			    stderr,
			    "roost get: %s is a file, not a folder; use 'roost get %s' without -r "
			    "to download it\n",
			    folder, folder);
		json_decref(out);
		return -1;
	}
	int rc = 1;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(out, "entries"), i, e)
	{
		const char *name = json_get_str(e, "name"), *etype = json_get_str(e, "type");
		if (!name || !etype || !name_valid(name, strlen(name))) {
			/* The hub's names are untrusted: never a path out of the tree. */
			fprintf(stderr, "roost %s: the hub listed a bad name in %s; ignored\n",
			        t->put ? "put" : "get", folder);
			json_array_append_new(t->failed, json_string(folder));
			continue;
		}
		if (t->remote_files.n + t->remote_dirs.n >= TREE_MAX_ENTRIES) {
			fprintf(stderr, "roost %s: %s holds more than %d entries\n",
			        t->put ? "put" : "get", t->remote, TREE_MAX_ENTRIES);
			rc = -1;
			break;
		}
		char *crel = rel_join(rel, name), *cpath = remote_join(t->remote, crel);
		if (strcmp(etype, "folder") == 0) {
			entries_add(&t->remote_dirs, crel);
			rc = remote_walk(t, cpath, crel, depth + 1);
		} else {
			struct entry *x = entries_add(&t->remote_files, crel);
			json_get_int(e, "size", &x->size);
			json_get_int(e, "version", &x->version);
			const char *h = json_get_str(e, "hash");
			if (h && hash_hex_valid(h))
				memcpy(x->hash, h, HASH_HEX_LEN + 1);
		}
		free(crel);
		free(cpath);
		if (rc < 0)
			break;
	}
	json_decref(out);
	return rc;
}

/* ---- the workers ---- */

static bool same_content(const char *local, const struct entry *r)
{
	char have[HASH_HEX_LEN + 1];
	int fd = open(local, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	bool same = fd >= 0 && hash_fd_hex(fd, have) == 0 && strcmp(have, r->hash) == 0;
	if (fd >= 0)
		close(fd);
	return same;
}

/* Does f need to go up? false when the remote current version already has
 * its bytes: the hub makes a version of every commit, same bytes or not. */
static bool put_needed(struct tree *t, const struct entry *f, const char *local)
{
	const struct entry *r = entries_find(&t->remote_files, f->rel);
	if (r && r->size == f->size && r->hash[0] && same_content(local, r)) {
		atomic_fetch_add(&t->bytes, f->size);
		return false;
	}
	return true;
}

static struct put_opts put_options(struct tree *t)
{
	return (struct put_opts){.parallel =
	                             t->o->parallel > 0 ? t->o->parallel : TREE_CHUNKS_PER_FILE,
	                         .quiet = true,
	                         .base_version_id = -1,
	                         .to_hosts = true,
	                         .progress = &t->bytes,
	                         .sent = &t->sent};
}

/* One file up on its own. 1 sent, -1 failed (said why). */
static int put_one(struct tree *t, struct client *wc, const struct put_item *it)
{
	struct put_opts po = put_options(t);
	return transfer_put(wc, it->local, it->remote, &po) == 0 ? 1 : -1;
}

/* The local folder rel beneath root, made when create, never through a
 * symbolic link: an fd, or -1 with errno (ELOOP or ENOTDIR: a link or a
 * file is in the way). rel holds only checked names. */
static int dir_beneath(int root, const char *rel, bool create)
{
	int cur = dup(root);
	char *copy = xstrdup(rel), *save = NULL;
	for (char *c = strtok_r(copy, "/", &save); c && cur >= 0; c = strtok_r(NULL, "/", &save)) {
		if (create && mkdirat(cur, c, 0777) != 0 && errno != EEXIST) {
			int e = errno;
			close(cur);
			cur = -1;
			errno = e;
			break;
		}
		int next = openat(cur, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(cur);
		cur = next;
		errno = e;
	}
	free(copy);
	return cur;
}

static const char *dir_error(int e)
{
	return e == ELOOP || e == ENOTDIR ? "a symbolic link or a file is in the way" : strerror(e);
}

/* One file down. 1 written, 0 already there, -1 failed or kept (said why). */
static int get_one(struct tree *t, struct client *wc, const struct entry *f)
{
	char *remote = remote_join(t->remote, f->rel);
	char *dest = xasprintf("%s/%s", t->dir, f->rel);
	int rc = -1;
	/* Its folder was made beneath dir; check again that no link took its
	 * place before writing into it. */
	const char *slash = strrchr(f->rel, '/');
	char *parent = slash ? xstrndup(f->rel, (size_t)(slash - f->rel)) : xstrdup("");
	int pfd = dir_beneath(t->dfd, parent, false);
	if (pfd < 0) {
		fprintf(stderr, "roost get: cannot write %s: %s; nothing written\n", dest,
		        dir_error(errno));
		goto out;
	}
	close(pfd);
	bool written = false;
	struct get_opts go = {.quiet = true,
	                      .host_ca = t->o->host_ca,
	                      .parallel =
	                          t->o->parallel > 0 ? t->o->parallel : TREE_CHUNKS_PER_FILE,
	                      .force = t->o->force,
	                      .progress = &t->bytes,
	                      .written = &written};
	int have =
	    f->hash[0] ? transfer_local_check(remote, dest, f->hash, f->size, f->version, &go) : 0;
	struct stat st;
	if (have == 0 && lstat(dest, &st) == 0 && S_ISLNK(st.st_mode) && unlink(dest) != 0) {
		/* --force replaces a link with the file; the single-file get would
		 * follow one to a folder and write there, outside dir. */
		fprintf(stderr, "roost get: cannot replace the link %s: %s\n", dest,
		        strerror(errno));
		have = -1;
	}
	if (have > 0) {
		atomic_fetch_add(&t->bytes, f->size);
		rc = 0;
	} else if (have == 0 && transfer_get_opts(wc, remote, dest, 0, &go) == 0) {
		rc = written ? 1 : 0;
		if (!written)
			atomic_fetch_add(&t->bytes, f->size);
	}
out:
	free(parent);
	free(remote);
	free(dest);
	return rc;
}

static void record(struct tree *t, const struct entry *f, int rc)
{
	pthread_mutex_lock(&t->mu);
	t->done++;
	if (rc > 0) {
		t->changed++;
	} else if (rc == 0) {
		t->unchanged++;
	} else {
		char *p =
		    t->put ? xasprintf("%s/%s", t->dir, f->rel) : remote_join(t->remote, f->rel);
		json_array_append_new(t->failed, json_string(p));
		free(p);
	}
	pthread_mutex_unlock(&t->mu);
}

/* A worker's small files waiting to go up together (transfer_put_small). */
struct batch {
	struct put_item items[TREE_BATCH];
	const struct entry *files[TREE_BATCH];
	size_t n;
};

static void batch_flush(struct tree *t, struct client *wc, struct batch *b)
{
	struct put_opts po = put_options(t);
	if (b->n)
		transfer_put_small(wc, b->items, b->n, &po);
	for (size_t i = 0; i < b->n; i++) {
		struct put_item *it = &b->items[i];
		record(t, b->files[i], it->committed ? 1 : put_one(t, wc, it));
		free((char *)it->local);
		free((char *)it->remote);
	}
	b->n = 0;
}

static void *tree_worker(void *arg)
{
	struct tree *t = arg;
	struct client wc = *t->c; /* its own connection: a struct client is one thread's */
	wc.curl = client_curl(t->c);
	struct batch *b = t->put ? xcalloc(1, sizeof *b) : NULL;
	for (;;) {
		size_t i = atomic_fetch_add(&t->next, 1);
		if (i >= t->files.n)
			break;
		const struct entry *f = &t->files.v[i];
		if (!t->put) {
			record(t, f, get_one(t, &wc, f));
			continue;
		}
		struct put_item it = {.local = xasprintf("%s/%s", t->dir, f->rel),
		                      .remote = remote_join(t->remote, f->rel)};
		if (!put_needed(t, f, it.local)) {
			record(t, f, 0);
		} else if (t->batch_small && f->size <= (int64_t)t->c->chunking.min) {
			b->items[b->n] = it;
			b->files[b->n++] = f;
			if (b->n == TREE_BATCH)
				batch_flush(t, &wc, b);
			continue;
		} else {
			record(t, f, put_one(t, &wc, &it));
		}
		free((char *)it.local);
		free((char *)it.remote);
	}
	if (b)
		batch_flush(t, &wc, b);
	free(b);
	curl_easy_cleanup(wc.curl);
	pthread_mutex_lock(&t->mu);
	t->running--;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

static void progress_line(struct tree *t, int64_t start_ms, bool final)
{
	char a[32], b[32];
	double secs = (double)(mono_ms() - start_ms) / 1000.0;
	int64_t bytes = atomic_load(&t->bytes);
	if (bytes > t->total_bytes)
		bytes = t->total_bytes; /* a file that grew, or a retried read */
	fprintf(stderr, "\r\033[K%s %s  %zu/%zu %s  %s / %s", t->put ? "put" : "get",
	        t->put ? t->dir : t->remote, t->done, t->files.n,
	        plural((int64_t)t->files.n, "file", "files"), human_bytes(bytes, a),
	        human_bytes(t->total_bytes, b));
	if (secs > 0.2)
		fprintf(stderr, "  %.1f MB/s", (double)bytes / 1e6 / secs);
	if (final)
		fputc('\n', stderr);
	fflush(stderr);
}

/* Run the workers over t->files, drawing the progress line meanwhile. */
static void run_workers(struct tree *t)
{
	bool show = !t->o->quiet && !t->o->json && isatty(STDERR_FILENO);
	int n = t->files.n < TREE_PARALLEL ? (int)t->files.n : TREE_PARALLEL;
	pthread_t th[TREE_PARALLEL];
	t->running = n;
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, tree_worker, t);
	int64_t start = mono_ms();
	pthread_mutex_lock(&t->mu);
	while (t->running > 0) {
		if (show)
			progress_line(t, start, false);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&t->cv, &t->mu, &ts);
	}
	if (show && n > 0)
		progress_line(t, start, true);
	pthread_mutex_unlock(&t->mu);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

/* The summary (stdout) and the failures (stderr); the exit code. */
static int finish(struct tree *t)
{
	char a[32], b[32];
	size_t nfail = json_array_size(t->failed);
	if (t->o->json) {
		json_t *r = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:O, s:O}", "local", t->dir,
		                      "remote", t->remote, "files", (json_int_t)t->files.n, "bytes",
		                      (json_int_t)t->total_bytes, t->put ? "uploaded" : "written",
		                      (json_int_t)t->changed, "unchanged", (json_int_t)t->unchanged,
		                      "skipped", t->skipped, "failed", t->failed);
		if (t->put)
			json_object_set_new(r, "sent_bytes",
			                    json_integer((json_int_t)atomic_load(&t->sent)));
		print_json(r);
		json_decref(r);
	} else if (!t->o->quiet) {
		printf("%s -> %s: %zu %s (%s): %zu %s, %zu %s", t->put ? t->dir : t->remote,
		       t->put ? t->remote : t->dir, t->files.n,
		       plural((int64_t)t->files.n, "file", "files"), human_bytes(t->total_bytes, a),
		       t->changed, t->put ? "uploaded" : "written", t->unchanged,
		       t->put ? "unchanged" : "already there");
		if (t->put)
			printf(" (%s sent)", human_bytes(atomic_load(&t->sent), b));
		if (json_array_size(t->skipped))
			printf(", %zu skipped", json_array_size(t->skipped));
		if (nfail)
			printf(", %zu failed", nfail);
		printf("\n");
	}
	if (nfail) {
		fprintf(stderr, "roost %s: %zu %s failed:\n", t->put ? "put" : "get", nfail,
		        plural((int64_t)nfail, "file", "files"));
		size_t i;
		json_t *p;
		json_array_foreach(t->failed, i, p) fprintf(stderr, "  %s\n", json_string_value(p));
	}
	return nfail ? 1 : 0;
}

static void tree_init(struct tree *t, struct client *c, const struct tree_opts *o, bool put)
{
	memset(t, 0, sizeof *t);
	t->c = c;
	t->o = o;
	t->put = put;
	t->dfd = -1;
	t->failed = json_array();
	t->skipped = json_array();
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
}

static void tree_fini(struct tree *t)
{
	entries_free(&t->files);
	entries_free(&t->remote_files);
	entries_free(&t->dirs);
	entries_free(&t->remote_dirs);
	json_decref(t->failed);
	json_decref(t->skipped);
	if (t->dfd >= 0)
		close(t->dfd);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
}

/* ---- put ---- */

/* The regular files under the open folder fd (rel beneath t->dir) into
 * t->files, its folders into t->dirs; the rest skipped with a note. Takes fd.
 * The number of regular files found, or -1 after printing why. */
static int64_t local_walk(struct tree *t, int fd, const char *rel, int depth)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		fprintf(stderr, "roost put: cannot read %s/%s: %s\n", t->dir, rel, strerror(errno));
		close(fd);
		return -1;
	}
	int64_t found = 0;
	struct dirent *de;
	while (found >= 0 && (de = readdir(d))) {
		const char *name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		char *crel = rel_join(rel, name), *shown = xasprintf("%s/%s", t->dir, crel);
		char *remote = remote_join(t->remote, crel);
		struct stat st;
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			fprintf(stderr, "roost put: cannot read %s: %s\n", shown, strerror(errno));
			json_array_append_new(t->failed, json_string(shown));
		} else if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
			note_skip(t, shown,
			          S_ISLNK(st.st_mode) ? "a symbolic link" : "not a regular file");
		} else if (!name_valid(name, strlen(name)) || path_reserved(remote)) {
			note_skip(t, shown, "a name the workspace refuses");
		} else if (t->files.n + t->dirs.n >= TREE_MAX_ENTRIES || depth >= TREE_MAX_DEPTH) {
			fprintf(stderr, "roost put: %s holds more than %d entries or %d levels\n",
			        t->dir, TREE_MAX_ENTRIES, TREE_MAX_DEPTH);
			found = -1;
		} else if (S_ISREG(st.st_mode)) {
			entries_add(&t->files, crel)->size = st.st_size;
			t->total_bytes += st.st_size;
			found++;
		} else {
			size_t at = t->dirs.n;
			entries_add(&t->dirs, crel);
			int cfd =
			    openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int64_t below = cfd < 0 ? -1 : local_walk(t, cfd, crel, depth + 1);
			if (cfd < 0)
				fprintf(stderr, "roost put: cannot read %s: %s\n", shown,
				        strerror(errno));
			t->dirs.v[at].files_below = below;
			found = below < 0 ? -1 : found + below;
		}
		free(crel);
		free(shown);
		free(remote);
	}
	closedir(d);
	return found;
}

/* Is the workspace's storage 'hub'? Then small files go up in batches; in a
 * 'hosts' workspace each file's chunks go to the hosts that pin its folder. */
static bool workspace_keeps_chunks(struct client *c)
{
	char *url = client_ws_url(c, "", NULL);
	json_t *out = NULL;
	char err[256];
	long st = client_request(c, c->curl, "GET", url, NULL, &out, err);
	free(url);
	const char *storage = json_get_str(out, "storage");
	bool hub = st == 200 && storage && strcmp(storage, "hub") == 0;
	json_decref(out);
	return hub;
}

/* Folders with no file anywhere below: made on the hub (files make theirs). */
static void put_empty_folders(struct tree *t)
{
	for (size_t i = 0; i < t->dirs.n; i++) {
		const struct entry *d = &t->dirs.v[i];
		if (d->files_below != 0 || entries_find(&t->remote_dirs, d->rel))
			continue;
		char *path = remote_join(t->remote, d->rel);
		char *url = client_ws_url(t->c, "/folders", NULL);
		json_t *body = json_pack("{s:s, s:b}", "path", path, "parents", true);
		json_t *r = client_call(t->c, "POST", url, body, "put");
		if (!r)
			json_array_append_new(t->failed, json_string(path));
		json_decref(r);
		json_decref(body);
		free(url);
		free(path);
	}
}

int tree_put(struct client *c, const char *dir, const char *remote, const struct tree_opts *o)
{
	const char *why = NULL;
	char *root = path_normalize(remote, strlen(remote), &why);
	if (!root) {
		fprintf(stderr, "roost put: %s: %s\n", remote, why);
		return 2;
	}
	/* "photos/" names the same folder: paths shown as photos/a, not photos//a */
	char *local = xstrdup(dir);
	for (size_t n = strlen(local); n > 1 && local[n - 1] == '/';)
		local[--n] = 0;
	struct tree t;
	tree_init(&t, c, o, true);
	t.dir = local;
	t.remote = root;
	int rc = 1;
	int fd = open(local, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "roost put: cannot read %s: %s\n", dir, strerror(errno));
		goto out;
	}
	if (local_walk(&t, fd, "", 0) < 0 || remote_walk(&t, root, "", 0) < 0)
		goto out;
	t.batch_small = workspace_keeps_chunks(c);
	if (t.remote_files.n > 1) /* (qsort of no array: undefined, UBSan says) */
		qsort(t.remote_files.v, t.remote_files.n, sizeof *t.remote_files.v, by_rel);
	if (t.remote_dirs.n > 1)
		qsort(t.remote_dirs.v, t.remote_dirs.n, sizeof *t.remote_dirs.v, by_rel);
	run_workers(&t);
	put_empty_folders(&t);
	rc = finish(&t);
out:
	tree_fini(&t);
	free(local);
	free(root);
	return rc;
}

/* ---- get ---- */

int tree_get(struct client *c, const char *remote, const char *dir, const struct tree_opts *o)
{
	const char *why = NULL;
	char *root = path_normalize(remote, strlen(remote), &why);
	if (!root) {
		fprintf(stderr, "roost get: %s: %s\n", remote, why);
		return 2;
	}
	struct tree t;
	tree_init(&t, c, o, false);
	t.dir = dir;
	t.remote = root;
	int rc = 1;
	if (remote_walk(&t, root, "", 0) < 0)
		goto out;
	int e = mkdir_p(dir, 0777);
	t.dfd = e ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t.dfd < 0) {
		fprintf(stderr, "roost get: cannot make %s: %s\n", dir, strerror(e ? -e : errno));
		goto out;
	}
	/* The folders first (parents before children: the walk's order), none
	 * through a symbolic link; a file in a folder that failed fails too. */
	for (size_t i = 0; i < t.remote_dirs.n; i++) {
		int fd = dir_beneath(t.dfd, t.remote_dirs.v[i].rel, true);
		if (fd < 0)
			fprintf(stderr, "roost get: cannot make %s/%s: %s\n", dir,
			        t.remote_dirs.v[i].rel, dir_error(errno));
		else
			close(fd);
	}
	t.files = t.remote_files; /* the work list */
	t.remote_files = (struct entries){0};
	for (size_t i = 0; i < t.files.n; i++)
		t.total_bytes += t.files.v[i].size;
	run_workers(&t);
	rc = finish(&t);
out:
	tree_fini(&t);
	free(root);
	return rc;
}
