/* store: the chunk store's dispatcher: store.h's calls to the back end's ops
 * (store_dir.c, store_s3.c), and what every back end shares (store_put,
 * store_has, store_open_url's choice of back end). */
#include "store_impl.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct store *store_open_url(const char *url, const char *data_dir, const char *creds_file,
                             char **err)
{
	*err = NULL;
	if (!url || strncmp(url, "s3://", 5) != 0) {
		const char *dir = url ? url : data_dir;
		if (url && strstr(url, "://")) {
			*err = xasprintf(
			    "--store %s: not a directory path nor s3://BUCKET/PREFIX?…", url);
			return NULL;
		}
		struct store *s = store_open(dir);
		if (!s)
			*err = xasprintf("cannot open the chunk store in %s/objects", dir);
		return s;
	}
	struct s3_conf c = {0};
	if (s3_conf_parse_url(&c, url, err) != 0) {
		s3_conf_fini(&c);
		return NULL;
	}
	if (creds_file) {
		struct stat st;
		if (stat(creds_file, &st) != 0) {
			*err = xasprintf("--store-credentials %s: %s", creds_file, strerror(errno));
			goto fail;
		}
		if (st.st_mode & 0077) {
			*err = xasprintf("--store-credentials %s: readable by others (mode %03o): "
			                 "chmod 600 it first",
			                 creds_file, (unsigned)(st.st_mode & 0777));
			goto fail;
		}
		char *text = read_file(creds_file, 64 * 1024, NULL);
		if (!text) {
			*err = xasprintf("--store-credentials %s: %s", creds_file, strerror(errno));
			goto fail;
		}
		int rc = s3_conf_parse_creds(&c, text, err);
		free(text);
		if (rc != 0) {
			char *e = xasprintf("--store-credentials %s: %s", creds_file, *err);
			free(*err);
			*err = e;
			goto fail;
		}
	} else {
		const char *id = getenv("AWS_ACCESS_KEY_ID"),
		           *key = getenv("AWS_SECRET_ACCESS_KEY");
		const char *tok = getenv("AWS_SESSION_TOKEN");
		if (!id || !*id || !key || !*key) {
			*err = xstrdup("an s3:// store needs credentials: AWS_ACCESS_KEY_ID and "
			               "AWS_SECRET_ACCESS_KEY in the environment, or "
			               "--store-credentials FILE");
			goto fail;
		}
		c.access_key = xstrdup(id);
		c.secret_key = xstrdup(key);
		c.session_token = tok && *tok ? xstrdup(tok) : NULL;
	}
	char *spool = xasprintf("%s/spool", data_dir);
	struct store *s = store_s3_open(&c, spool, err);
	free(spool);
	return s;
fail:
	s3_conf_fini(&c);
	return NULL;
}

struct store *store_open(const char *dir)
{
	return store_dir_open(dir, true);
}

struct store *store_open_shared(const char *dir)
{
	return store_dir_open(dir, false);
}

void store_free(struct store *s)
{
	if (s)
		s->ops->free(s);
}

int store_probe(struct store *s, char **err)
{
	*err = NULL;
	return s->ops->probe ? s->ops->probe(s, err) : 0;
}

bool store_is_remote(const struct store *s)
{
	return s->remote;
}

const char *store_dir(const struct store *s)
{
	return s->desc;
}

int64_t store_avail(const struct store *s)
{
	return s->ops->avail ? s->ops->avail(s) : -ENOTSUP;
}

bool store_err_full(int err)
{
	return err == -ENOSPC || err == -EDQUOT;
}

bool store_has(struct store *s, const char *hash)
{
	return s->ops->size(s, hash) >= 0;
}

int64_t store_size(struct store *s, const char *hash)
{
	return s->ops->size(s, hash);
}

struct store_writer *store_writer_new(struct store *s)
{
	return s->ops->writer_new(s);
}

int store_writer_write(struct store_writer *w, const void *data, size_t len)
{
	return w->s->ops->writer_write(w, data, len);
}

int64_t store_writer_size(const struct store_writer *w)
{
	return w->size;
}

int store_writer_commit(struct store_writer *w, const char *expected,
                        char hash_out[HASH_HEX_LEN + 1])
{
	return w->s->ops->writer_commit(w, expected, hash_out);
}

void store_writer_abort(struct store_writer *w)
{
	if (w)
		w->s->ops->writer_abort(w);
}

int store_put(struct store *s, const void *data, size_t len, char hash_out[HASH_HEX_LEN + 1])
{
	struct store_writer *w = store_writer_new(s);
	store_writer_write(w, data, len);
	return store_writer_commit(w, NULL, hash_out);
}

int64_t store_read(struct store *s, const char *hash, uint8_t *buf, size_t cap)
{
	return s->ops->read(s, hash, buf, cap);
}

void store_prefetch(struct store *s, const char *hash)
{
	if (s->ops->prefetch)
		s->ops->prefetch(s, hash);
}

int store_remove(struct store *s, const char *hash)
{
	return s->ops->remove(s, hash);
}

int store_remove_many(struct store *s, const char *const *hashes, size_t n)
{
	if (s->ops->remove_many)
		return s->ops->remove_many(s, hashes, n);
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		int rc = s->ops->remove(s, hashes[i]);
		if (rc != 0 && rc != -ENOENT)
			failed++;
	}
	return failed;
}

int store_quarantine(struct store *s, const char *hash)
{
	return s->ops->quarantine(s, hash);
}

int store_quarantine_corrupt(struct store *s, const char *hash)
{
	return s->ops->quarantine_corrupt(s, hash);
}

int store_list_dir(struct store *s, int dir,
                   void (*fn)(const char *hash, int64_t mtime_ms, void *cls), void *cls)
{
	return s->ops->list_dir(s, dir, fn, cls);
}
