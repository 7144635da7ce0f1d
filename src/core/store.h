/* store: the content-addressed chunk store, with two back ends behind one
 * interface (store_impl.h's ops table):
 *
 * - a directory of objects/ab/<sha256> (store_dir.c, the default): writes go
 *   to objects/tmp, are hashed on the way in, fsynced, renamed into place and
 *   the directory fsynced, so an object is either whole or absent;
 * - an S3-compatible bucket, keys PREFIX/ab/<sha256> (store_s3.c): writes are
 *   hashed as they arrive and spooled to a local temp file, then PUT whole
 *   (S3 makes an object visible only when complete).
 *
 * Every read is verified against the object's name; a corrupt object is
 * reported (-EBADMSG) and never returned. A store is used by many threads. */
#ifndef ROOST_STORE_H
#define ROOST_STORE_H

#include "hash.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_writer;

/* Open (creating) the store under dir/objects. Removes leftover temp files:
 * those of writers that died; a live writer's (another hub sharing the
 * directory) is left alone. */
struct store *store_open(const char *dir);
/* The same for a store another process (a running hub) may be writing to:
 * its temp files are in-flight uploads, left alone. */
struct store *store_open_shared(const char *dir);
/* Open the store a URL names: a directory path (the store is under
 * PATH/objects), or s3://BUCKET/PREFIX?endpoint=URL&region=R[&addressing=path|virtual]
 * with credentials from creds_file (NULL: AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); NULL url: data_dir. An S3 store
 * spools writes under data_dir/spool. NULL with *err (malloc'd) on failure. */
struct store *store_open_url(const char *url, const char *data_dir, const char *creds_file,
                             char **err);
/* Is the store reachable with these credentials? (an S3 store lists one key;
 * a directory is always). 0, or -errno with *err naming the endpoint, the
 * bucket and S3's error code. */
int store_probe(struct store *s, char **err);
/* Does asking for an object's size cost a network request? (then hot paths
 * trust the database's records instead of asking per chunk). */
bool store_is_remote(const struct store *s);
void store_free(struct store *s);

/* The store's directory (.../objects) or s3://BUCKET/PREFIX, for log lines. */
const char *store_dir(const struct store *s);
/* Bytes an unprivileged writer may still use on the store's filesystem, or
 * -errno; -ENOTSUP for an S3 store (a bucket has no free space to ask). */
int64_t store_avail(const struct store *s);
/* Is err (a -errno from a write) a full disk or quota: -ENOSPC, -EDQUOT? */
bool store_err_full(int err);

bool store_has(struct store *s, const char *hash);
/* Size of a stored object, or -errno. */
int64_t store_size(struct store *s, const char *hash);

struct store_writer *store_writer_new(struct store *s);
int store_writer_write(struct store_writer *w, const void *data, size_t len);
int64_t store_writer_size(const struct store_writer *w);
/* Finish: when expected is non-NULL the content must hash to it (-EBADMSG if
 * not, nothing stored). The object's hash is written to hash_out. Frees w. */
int store_writer_commit(struct store_writer *w, const char *expected,
                        char hash_out[HASH_HEX_LEN + 1]);
void store_writer_abort(struct store_writer *w);

/* Store a whole buffer (hash computed here). */
int store_put(struct store *s, const void *data, size_t len, char hash_out[HASH_HEX_LEN + 1]);

/* Read and verify an object into buf (capacity cap). Returns its size, -ENOENT,
 * -EBADMSG when its content does not match its name, -EFBIG if over cap. */
int64_t store_read(struct store *s, const char *hash, uint8_t *buf, size_t cap);

/* Ask the kernel to start reading an object into the page cache (readahead
 * for the next chunk of a download). Best effort. */
void store_prefetch(struct store *s, const char *hash);

/* Remove an object (GC). */
int store_remove(struct store *s, const char *hash);
/* Remove n objects (an S3 store: batches of up to 1000 in one request).
 * Returns how many requests failed (0: all gone or absent), or -errno. */
int store_remove_many(struct store *s, const char *const *hashes, size_t n);
/* Move a corrupt object aside to objects/quarantine/<hash>.<time> (an S3
 * store: copied to PREFIX/quarantine/<hash>.<time>, then deleted), kept for
 * inspection, never served. 0 or -errno. */
int store_quarantine(struct store *s, const char *hash);
/* The same for an object a reader found corrupt, when several readers may
 * find it at once and a good copy may be written over it meanwhile: it is
 * hashed again and moved only if still corrupt, and a good copy that replaced
 * it between the hash and the move is put back. 0 moved (by this call: report
 * it), 1 it verifies now, -ENOENT gone (another reader moved it), -errno. */
int store_quarantine_corrupt(struct store *s, const char *hash);
/* Call fn for each object in one of the 256 fan-out directories (dir 0..255,
 * by the hash's first byte; an S3 store lists the prefix PREFIX/ab/), with
 * the object's modification time in ms.
 * Returns how many were listed, or -errno. */
int store_list_dir(struct store *s, int dir,
                   void (*fn)(const char *hash, int64_t mtime_ms, void *cls), void *cls);

#endif
