/* store_impl: what the chunk store's back ends share with store.c, the
 * dispatcher (store.h is what callers see). Each back end embeds struct store
 * and struct store_writer first in its own structs and fills one ops table.
 * Not for use outside src/core/store*.c and the store's unit tests. */
#ifndef ROOST_STORE_IMPL_H
#define ROOST_STORE_IMPL_H

#include "store.h"

struct store_ops {
	void (*free)(struct store *s);
	int64_t (*avail)(const struct store *s);
	int64_t (*size)(struct store *s, const char *hash);
	struct store_writer *(*writer_new)(struct store *s);
	int (*writer_write)(struct store_writer *w, const void *data, size_t len);
	int (*writer_commit)(struct store_writer *w, const char *expected,
	                     char hash_out[HASH_HEX_LEN + 1]);
	void (*writer_abort)(struct store_writer *w);
	int64_t (*read)(struct store *s, const char *hash, uint8_t *buf, size_t cap);
	void (*prefetch)(struct store *s, const char *hash);
	int (*remove)(struct store *s, const char *hash);
	int (*remove_many)(struct store *s, const char *const *hashes,
	                   size_t n); /* NULL: one by one */
	int (*quarantine)(struct store *s, const char *hash);
	int (*quarantine_corrupt)(struct store *s, const char *hash);
	int (*list_dir)(struct store *s, int dir,
	                void (*fn)(const char *hash, int64_t mtime_ms, void *cls), void *cls);
	int (*probe)(struct store *s, char **err);
};

struct store {
	const struct store_ops *ops;
	char *desc;  /* for log lines: a directory, or s3://bucket/prefix at endpoint */
	bool remote; /* a size check is a network request */
};

struct store_writer {
	struct store *s;
	int64_t size;
};

struct store *store_dir_open(const char *dir, bool clean);

/* An S3 store's settings, from the URL and the credentials (store_s3.c). */
struct s3_conf {
	char *bucket, *prefix; /* prefix without leading or trailing '/', may be "" */
	char *endpoint;        /* scheme://host[:port], no trailing '/' */
	char *region;
	bool virtual_hosted;
	char *access_key, *secret_key, *session_token;
};
/* Parse s3://BUCKET[/PREFIX]?endpoint=URL&region=R[&addressing=path|virtual].
 * 0, or -EINVAL with *err (malloc'd) saying what is wrong. */
int s3_conf_parse_url(struct s3_conf *c, const char *url, char **err);
/* Credentials from text in the file's form (access_key_id=…, secret_access_key=…,
 * optionally session_token=…; '#' comments). 0 or -EINVAL with *err. */
int s3_conf_parse_creds(struct s3_conf *c, const char *text, char **err);
void s3_conf_fini(struct s3_conf *c);
/* Open an S3 store from a parsed conf (taken over: fini'd here on failure too);
 * spool_dir holds writers' temp files. */
struct store *store_s3_open(struct s3_conf *c, const char *spool_dir, char **err);

#endif
