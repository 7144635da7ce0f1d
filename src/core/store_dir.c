/* store_dir: the chunk store's directory back end, objects/ab/<sha256>
 * (store.h says what it promises). */
#include "store_impl.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define STAGE_POOL 16

struct dir_store {
	struct store base;
	char *root; /* .../objects */
	char *tmp;  /* .../objects/tmp */
	/* Staging buffers kept for reuse: a fresh 1 MiB buffer per object cost
	 * page faults and zeroing on every chunk. */
	pthread_mutex_t mu;
	uint8_t *spare[STAGE_POOL];
	int nspare;
};

/* Objects are written with O_DIRECT where the filesystem allows it: the bytes
 * go from an aligned staging buffer to the disk without being copied into the
 * page cache, which measured as half the hub's CPU time on ingest
 * (docs/benchmarks.md). The unaligned tail is written buffered. */
#define STAGE_SIZE (1u << 20)

struct dir_writer {
	struct store_writer base;
	struct dir_store *s;
	int fd;
	bool direct;
	char tmp_path[PATH_MAX];
	struct hasher *h;
	uint8_t *stage; /* DIRECT_ALIGN-aligned, STAGE_SIZE bytes */
	size_t staged;
	int err;
};

static void object_path(struct dir_store *s, const char *hash, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/%.2s/%s", s->root, hash, hash);
}

/* A temp file is an upload in flight while its writer holds an flock on it
 * (store_writer_new); the kernel drops the lock when the writer's process
 * dies, however it dies. Several hubs may share one store directory, each
 * cleaning at its start: a file whose lock can be taken is a dead writer's
 * and goes; one still locked is another hub's upload and stays. The file is
 * unlinked while the lock is held, and a writer that took its lock after
 * that finds its file unlinked (st_nlink 0) and starts another. (Linux maps
 * flock to byte-range locks on NFS, so this holds on a shared NFS store.) */
static void clean_tmp(const char *tmp)
{
	DIR *d = opendir(tmp);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s/%s", tmp, e->d_name);
		int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0) {
			unlink(p); /* not a file we can open: not an upload either */
			continue;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			unlink(p);
		close(fd);
	}
	closedir(d);
}

static const struct store_ops dir_ops;
static void dir_free(struct store *base);

struct store *store_dir_open(const char *dir, bool clean)
{
	struct dir_store *s = xcalloc(1, sizeof *s);
	s->base.ops = &dir_ops;
	s->root = xasprintf("%s/objects", dir);
	s->base.desc = s->root;
	s->tmp = xasprintf("%s/objects/tmp", dir);
	pthread_mutex_init(&s->mu, NULL);
	if (mkdir_p(s->tmp, 0700) < 0) {
		log_error("store: cannot create %s: %s", s->tmp, strerror(errno));
		dir_free(&s->base);
		return NULL;
	}
	if (clean)
		clean_tmp(s->tmp);
	return &s->base;
}

static void dir_free(struct store *base)
{
	struct dir_store *s = (struct dir_store *)base;
	if (!s)
		return;
	free(s->root);
	free(s->tmp);
	for (int i = 0; i < s->nspare; i++)
		free(s->spare[i]);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static int64_t dir_avail(const struct store *base)
{
	const struct dir_store *s = (const struct dir_store *)base;
	struct statvfs v;
	if (statvfs(s->root, &v) != 0)
		return -errno;
	return (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

static int64_t dir_size(struct store *base, const char *hash)
{
	struct dir_store *s = (struct dir_store *)base;
	char p[PATH_MAX];
	struct stat sb;
	object_path(s, hash, p);
	if (stat(p, &sb) < 0)
		return -errno;
	return sb.st_size;
}

/* Create a temp file and lock it (clean_tmp): the fd, or -errno. Another
 * hub's clean_tmp may unlink it between the open and the lock; then the
 * file is made again. */
static int open_tmp(const char *path, bool *direct)
{
	for (int tries = 0; tries < 3; tries++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_DIRECT, 0600);
		*direct = fd >= 0;
		if (fd < 0 && errno == EINVAL) /* e.g. tmpfs */
			fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		struct stat st;
		if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0) {
			int err = -errno;
			close(fd);
			unlink(path);
			return err;
		}
		if (st.st_nlink > 0)
			return fd;
		close(fd);
	}
	return -EAGAIN;
}

static struct store_writer *dir_writer_new(struct store *base)
{
	struct dir_store *s = (struct dir_store *)base;
	struct dir_writer *w = xcalloc(1, sizeof *w);
	w->base.s = base;
	uint8_t rnd[12];
	char hex[25];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		abort();
	hex_encode(rnd, sizeof rnd, hex);
	snprintf(w->tmp_path, sizeof w->tmp_path, "%s/%s", s->tmp, hex);
	w->s = s;
	w->fd = open_tmp(w->tmp_path, &w->direct);
	if (w->fd < 0)
		w->err = w->fd;
	pthread_mutex_lock(&s->mu);
	w->stage = s->nspare ? s->spare[--s->nspare] : NULL;
	pthread_mutex_unlock(&s->mu);
	if (!w->stage && posix_memalign((void **)&w->stage, DIRECT_ALIGN, STAGE_SIZE) != 0)
		abort();
	w->h = hasher_new();
	return &w->base;
}

static void stage_release(struct dir_store *s, uint8_t *stage)
{
	pthread_mutex_lock(&s->mu);
	if (s->nspare < STAGE_POOL) {
		s->spare[s->nspare++] = stage;
		stage = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	free(stage);
}

static int flush_stage(struct dir_writer *w)
{
	int r = write_maybe_direct(w->fd, &w->direct, w->stage, w->staged);
	w->staged = 0;
	return r;
}

static int dir_writer_write(struct store_writer *base, const void *data, size_t len)
{
	struct dir_writer *w = (struct dir_writer *)base;
	if (w->err)
		return w->err;
	hasher_update(w->h, data, len);
	w->base.size += (int64_t)len;
	const uint8_t *d = data;
	while (len > 0) {
		size_t n = STAGE_SIZE - w->staged < len ? STAGE_SIZE - w->staged : len;
		memcpy(w->stage + w->staged, d, n);
		w->staged += n;
		d += n;
		len -= n;
		if (w->staged == STAGE_SIZE && (w->err = flush_stage(w)) != 0)
			return w->err;
	}
	return 0;
}

static void dir_writer_abort(struct store_writer *base)
{
	struct dir_writer *w = (struct dir_writer *)base;
	if (!w)
		return;
	if (w->fd >= 0) {
		close(w->fd);
		unlink(w->tmp_path);
	}
	hasher_free(w->h);
	stage_release(w->s, w->stage);
	free(w);
}

static int dir_writer_commit(struct store_writer *base, const char *expected,
                             char hash_out[HASH_HEX_LEN + 1])
{
	struct dir_writer *w = (struct dir_writer *)base;
	int r = w->err;
	char hash[HASH_HEX_LEN + 1];
	if (r || (r = flush_stage(w)) != 0)
		goto fail;
	hasher_final_hex(w->h, hash);
	if (expected && strcmp(expected, hash) != 0) {
		r = -EBADMSG;
		goto fail;
	}
	if (fsync(w->fd) < 0) {
		r = -errno;
		goto fail;
	}

	/* The fd stays open until the rename: while it is, a failure unlinks the temp. */
	char dst[PATH_MAX], dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/%.2s", w->s->root, hash);
	if (mkdir(dir, 0700) == 0) {
		r = fsync_parent_dir(dir); /* a new shard directory must survive too */
		if (r)
			goto fail;
	} else if (errno != EEXIST) {
		r = -errno;
		goto fail;
	}
	object_path(w->s, hash, dst);
	if (rename(w->tmp_path, dst) < 0) {
		r = -errno;
		goto fail;
	}
	close(w->fd);
	w->fd = -1;
	r = fsync_parent_dir(dst);
	if (r)
		goto fail_renamed;
	if (hash_out)
		memcpy(hash_out, hash, sizeof hash);
fail_renamed:
	hasher_free(w->h);
	stage_release(w->s, w->stage);
	free(w);
	return r;
fail:
	dir_writer_abort(&w->base);
	return r;
}

static int64_t dir_read(struct store *base, const char *hash, uint8_t *buf, size_t cap)
{
	struct dir_store *s = (struct dir_store *)base;
	char p[PATH_MAX];
	object_path(s, hash, p);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	if ((uint64_t)st.st_size > cap) {
		close(fd);
		return -EFBIG;
	}
	ssize_t n = pread_full(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (n < 0)
		return n;
	char got[HASH_HEX_LEN + 1];
	hash_hex(buf, (size_t)n, got);
	if (n != st.st_size || strcmp(got, hash) != 0) {
		log_error("store: object %s is corrupt (content hashes to %s); not served", hash,
		          got);
		return -EBADMSG;
	}
	return n;
}

static void dir_prefetch(struct store *base, const char *hash)
{
	struct dir_store *s = (struct dir_store *)base;
	char p[PATH_MAX];
	object_path(s, hash, p);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
		close(fd);
	}
}

static int dir_remove(struct store *base, const char *hash)
{
	struct dir_store *s = (struct dir_store *)base;
	char p[PATH_MAX];
	object_path(s, hash, p);
	return unlink(p) < 0 ? -errno : 0;
}

static int dir_quarantine(struct store *base, const char *hash)
{
	struct dir_store *s = (struct dir_store *)base;
	char from[PATH_MAX], dir[PATH_MAX], to[PATH_MAX + 80];
	object_path(s, hash, from);
	snprintf(dir, sizeof dir, "%s/quarantine", s->root);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	snprintf(to, sizeof to, "%s/%s.%lld", dir, hash, (long long)now_ms());
	if (rename(from, to) != 0)
		return -errno;
	return fsync_parent_dir(from) == 0 ? 0 : -EIO;
}

/* Does fd's content hash to hash? 1 yes, 0 no, -errno. */
static int fd_matches(int fd, const char *hash)
{
	struct hasher *hs = hasher_new();
	uint8_t buf[1 << 16];
	ssize_t n;
	off_t off = 0;
	while ((n = pread(fd, buf, sizeof buf, off)) > 0) {
		hasher_update(hs, buf, (size_t)n);
		off += n;
	}
	char got[HASH_HEX_LEN + 1];
	hasher_final_hex(hs, got);
	hasher_free(hs);
	return n < 0 ? -errno : strcmp(got, hash) == 0;
}

static int dir_quarantine_corrupt(struct store *base, const char *hash)
{
	struct dir_store *s = (struct dir_store *)base;
	char from[PATH_MAX], dir[PATH_MAX], to[PATH_MAX + 80];
	object_path(s, hash, from);
	int fd = open(from, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fd_matches(fd, hash);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	snprintf(dir, sizeof dir, "%s/quarantine", s->root);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		close(fd);
		return rc;
	}
	snprintf(to, sizeof to, "%s/%s.%lld", dir, hash, (long long)now_ms());
	struct stat held, moved;
	if (rename(from, to) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	/* Moved what we hashed, or a good copy renamed over it since? */
	rc = fstat(fd, &held) == 0 && stat(to, &moved) == 0 &&
	             (held.st_ino != moved.st_ino || held.st_dev != moved.st_dev)
	         ? 1
	         : 0;
	close(fd);
	if (rc == 1 && rename(to, from) != 0)
		return -errno;
	return fsync_parent_dir(from) == 0 ? rc : -EIO;
}

static int dir_list_dir(struct store *base, int dir,
                        void (*fn)(const char *hash, int64_t mtime_ms, void *cls), void *cls)
{
	struct dir_store *s = (struct dir_store *)base;
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%02x", s->root, dir & 0xff);
	DIR *d = opendir(p);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!hash_hex_valid(e->d_name))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		fn(e->d_name, (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000,
		   cls);
		n++;
	}
	closedir(d);
	return n;
}

static const struct store_ops dir_ops = {
    .free = dir_free,
    .avail = dir_avail,
    .size = dir_size,
    .writer_new = dir_writer_new,
    .writer_write = dir_writer_write,
    .writer_commit = dir_writer_commit,
    .writer_abort = dir_writer_abort,
    .read = dir_read,
    .prefetch = dir_prefetch,
    .remove = dir_remove,
    .quarantine = dir_quarantine,
    .quarantine_corrupt = dir_quarantine_corrupt,
    .list_dir = dir_list_dir,
};
