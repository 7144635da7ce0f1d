#include "store.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

struct store {
	char *root; /* .../objects */
	char *tmp;  /* .../objects/tmp */
};

struct store_writer {
	struct store *s;
	int fd;
	char tmp_path[PATH_MAX];
	struct hasher *h;
	int64_t size;
	int err;
};

static void object_path(struct store *s, const char *hash, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/%.2s/%s", s->root, hash, hash);
}

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
		unlink(p);
	}
	closedir(d);
}

struct store *store_open(const char *dir)
{
	struct store *s = xcalloc(1, sizeof *s);
	s->root = xasprintf("%s/objects", dir);
	s->tmp = xasprintf("%s/objects/tmp", dir);
	if (mkdir_p(s->tmp, 0700) < 0) {
		log_error("store: cannot create %s: %s", s->tmp, strerror(errno));
		store_free(s);
		return NULL;
	}
	clean_tmp(s->tmp);
	return s;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	free(s->root);
	free(s->tmp);
	free(s);
}

bool store_has(struct store *s, const char *hash)
{
	char p[PATH_MAX];
	object_path(s, hash, p);
	return access(p, F_OK) == 0;
}

int64_t store_size(struct store *s, const char *hash)
{
	char p[PATH_MAX];
	struct stat st;
	object_path(s, hash, p);
	if (stat(p, &st) < 0)
		return -errno;
	return st.st_size;
}

struct store_writer *store_writer_new(struct store *s)
{
	struct store_writer *w = xcalloc(1, sizeof *w);
	uint8_t rnd[12];
	char hex[25];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		abort();
	hex_encode(rnd, sizeof rnd, hex);
	snprintf(w->tmp_path, sizeof w->tmp_path, "%s/%s", s->tmp, hex);
	w->s = s;
	w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0)
		w->err = -errno;
	w->h = hasher_new();
	return w;
}

int store_writer_write(struct store_writer *w, const void *data, size_t len)
{
	if (w->err)
		return w->err;
	hasher_update(w->h, data, len);
	w->size += (int64_t)len;
	w->err = write_all(w->fd, data, len);
	return w->err;
}

int64_t store_writer_size(const struct store_writer *w)
{
	return w->size;
}

void store_writer_abort(struct store_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0) {
		close(w->fd);
		unlink(w->tmp_path);
	}
	hasher_free(w->h);
	free(w);
}

int store_writer_commit(struct store_writer *w, const char *expected,
			char hash_out[HASH_HEX_LEN + 1])
{
	int r = w->err;
	char hash[HASH_HEX_LEN + 1];
	if (r)
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
	close(w->fd);
	w->fd = -1;

	char dst[PATH_MAX], dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/%.2s", w->s->root, hash);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		goto fail;
	}
	object_path(w->s, hash, dst);
	if (rename(w->tmp_path, dst) < 0) {
		r = -errno;
		goto fail;
	}
	r = fsync_parent_dir(dst);
	if (r)
		goto fail_renamed;
	if (hash_out)
		memcpy(hash_out, hash, sizeof hash);
	hasher_free(w->h);
	free(w);
	return 0;
fail_renamed:
	hasher_free(w->h);
	free(w);
	return r;
fail:
	store_writer_abort(w);
	return r;
}

int store_put(struct store *s, const void *data, size_t len, char hash_out[HASH_HEX_LEN + 1])
{
	struct store_writer *w = store_writer_new(s);
	store_writer_write(w, data, len);
	return store_writer_commit(w, NULL, hash_out);
}

int64_t store_read(struct store *s, const char *hash, uint8_t *buf, size_t cap)
{
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

int store_remove(struct store *s, const char *hash)
{
	char p[PATH_MAX];
	object_path(s, hash, p);
	return unlink(p) < 0 ? -errno : 0;
}
