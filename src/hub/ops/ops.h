/* ops: the hub's operations on a workspace's tree, apart from any transport.
 *
 * An operation takes a context (the database connection, the hub, who acts
 * and their access) and its arguments, does its whole job — ACL checks,
 * limits, the transaction, the change feed and the audit log — and returns
 * OP_OK or a typed error. It never builds an HTTP answer: the JSON API
 * (api.c, upload.c, trash.c, share.c, acl.c), the batch commit and WebDAV
 * (dav/) are adapters that parse a request, call one and map the error's
 * code to their status with the tables in ops/err.c.
 *
 * Every operation runs on the calling thread (a libmicrohttpd connection
 * thread, or a test); the context is that thread's alone. */
#ifndef ROOST_HUB_OPS_H
#define ROOST_HUB_OPS_H

#include "../hub.h"
#include "../meta.h"
#include "../upload.h"
#include "err.h"
#include "../../core/sniff.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Who acts, where, and with what access. Adapters fill it from their
 * request (req_op_ctx); tests fill it by hand. */
struct op_ctx {
	struct hub *hub; /* the store, metrics and feed wake-ups */
	struct db *db;
	int64_t ws_id;
	int64_t user_id;
	int64_t author_id; /* a host's commit made for this uploader (0: none) */
	int64_t host_id;   /* a host's credential (0: none) */
	int64_t share_id;  /* a share link's upload (0: none) */
	enum role role;
	struct acl *acl; /* the actor's access in ws_id; loaded on first use */
	bool acl_owned;  /* … by op_acl, so op_ctx_fini frees it */
	char client[64]; /* the client's address, for audit rows ("" if none) */
	bool batch;      /* inside a batch's transaction: commits use savepoints */
	/* In a batch, the workspace row's settings read once: the batch holds
	 * the row's lock (meta_begin), so they cannot change under it. */
	struct {
		bool known;
		int hosts;               /* storage = 'hosts' */
		int64_t max_file, quota; /* limits_ws */
	} ws;
};

/* The actor's ACL (loaded once), NULL on a database error. acl.c */
struct acl *op_acl(struct op_ctx *c);
void op_ctx_fini(struct op_ctx *c);
/* Has the actor need on path (judged at at: ACL_NOW, or a deleted item's
 * deleted_at)? Else not_found (cannot see it) or forbidden. acl.c */
bool op_require(struct op_ctx *c, const char *path, bool is_file, enum perm need, int64_t at,
                struct op_err *e);
/* Everything below folder must be writable too, else forbidden. acl.c */
bool op_subtree_writable(struct op_ctx *c, const char *folder, struct op_err *e);
/* May anything be written at path? Else reserved_name. ops/err.c */
bool op_path_writable(const char *path, struct op_err *e);
/* Would a new version of size bytes fit the max file size and the quota?
 * Would bytes more (a file from the trash) fit the quota? limits.c */
bool limits_fit_file(struct db *db, int64_t ws, int64_t size, struct op_err *e);
/* The same with the workspace's limits already read (limits_ws: 0 or DB_ERR). */
int limits_ws(struct db *db, int64_t ws, int64_t *max_file, int64_t *quota);
bool limits_fit_size(struct db *db, int64_t ws, int64_t size, int64_t max_file, int64_t quota,
                     struct op_err *e);
bool limits_fit_quota(struct db *db, int64_t ws, int64_t bytes, struct op_err *e);
/* A row of the audit log for the actor (inside the caller's transaction).
 * 0 or DB_ERR. meta.c */
int meta_audit_op(const struct op_ctx *c, const char *action, const char *target,
                  json_t *detail /* stolen */);
/* Commit the actor's transaction and wake feed subscribers. meta.c */
int meta_commit_op(const struct op_ctx *c);
/* A host's "upload_grant" (body member) for path: the uploader whose version
 * it is into *author (0 without one); false with upload_grant_refused if the
 * grant is bad or the uploader may no longer write path. tokens.c */
bool tokens_grant_check(struct op_ctx *c, json_t *body, const char *path, int64_t *author,
                        struct op_err *e);

/* ---- files (ops/files.c) ---- */

struct mkdir_result {
	int64_t id;
	bool created;
	bool root; /* path was "/" (with parents: nothing to do) */
};
/* Create folder path; with parents its missing ancestors too, and an
 * existing folder is no error. */
enum op_code op_mkdir(struct op_ctx *c, const char *path, bool parents, struct mkdir_result *out,
                      struct op_err *e);
/* Move (rename) a file or a folder with everything below it. */
enum op_code op_move(struct op_ctx *c, const char *from, const char *to, struct op_err *e);
/* Move a file or a folder with everything below it to the trash. *is_file
 * says which it was. */
enum op_code op_delete(struct op_ctx *c, const char *path, bool *is_file, struct op_err *e);
/* The same, and the files it deleted are purged at once (owners and admins
 * only; *purged: how many). */
enum op_code op_delete_forever(struct op_ctx *c, const char *path, bool *is_file, int64_t *purged,
                               struct op_err *e);

/* ---- committing versions (ops/commit.c) ---- */

/* Where a commit's chunks come from. */
enum chunk_src {
	SRC_CLIENT,  /* named by the client: each must pass possess_check */
	SRC_BODY,    /* sent in this request's body */
	SRC_VERSION, /* a version the caller may read */
};
struct commit_args {
	const char *path;
	int64_t size;
	const char *hash; /* the whole file's SHA-256 */
	const struct chunk_ref *chunks;
	size_t n;
	const char *content_type; /* NULL: sniffed from the first chunk */
	int64_t base;             /* >= 0: the current version id must be this (0: no file) */
	enum chunk_src src;
};
struct commit_result {
	int64_t file_id, number, version_id, size;
	size_t chunks;
	char hash[65];
	char content_type[128];
};
/* The workspace's storage setting: 1 'hosts', 0 'hub', -1 a database error. */
int op_storage_hosts(struct op_ctx *c);
/* Commit a->path as a new version made of a->chunks, in one transaction (in
 * a batch, a savepoint). The caller must have write access to the path
 * (checked again here). A refused upload frees its chunks at once: a body's
 * always, a client's when a size limit or the quota refused it. */
enum op_code op_commit(struct op_ctx *c, const struct commit_args *a, struct commit_result *out,
                       struct op_err *e);
/* Commit version src (its chunks, no bytes copied) as a new version of path. */
enum op_code op_copy_version(struct op_ctx *c, const char *path, const struct file_info *src,
                             struct commit_result *out, struct op_err *e);
/* An old version (by number), while it is kept, becomes the file's newest. */
enum op_code op_version_restore(struct op_ctx *c, const char *path, int64_t number,
                                struct commit_result *out, struct op_err *e);
/* The MIME type of a file's first bytes (libmagic; core/sniff.c). */
static inline void op_sniff_type(const uint8_t *data, size_t len, char out[128])
{
	sniff_type(data, len, out);
}

/* ---- the trash (ops/trash.c) ---- */

struct trash_result {
	char *path; /* where it is now (owned: free it) */
	int64_t version;
};
/* A deleted file's path: its folder's (live or not) and its name. New string. */
char *op_trashed_path(const char *folder, const char *name);
/* Bring deleted file id back where it was, with its deleted folders. */
enum op_code op_trash_restore(struct op_ctx *c, int64_t id, struct trash_result *out,
                              struct op_err *e);

/* ---- deleting for good (ops/purge.c) ---- */

/* Delete version vid's rows; its chunks lose a reference each (unref_at
 * marks one that lost its last). In the caller's transaction. DB_DONE. */
int op_drop_version(struct db *db, int64_t vid, int64_t now);
/* Drop every version of file_id and mark it purged (a tombstone). In the
 * caller's transaction. DB_DONE or DB_ERR. */
int op_purge_file(struct db *db, int64_t file_id, int64_t now);
/* May the actor delete for good (owners and admins)? Else forbidden. */
bool op_may_purge(struct op_ctx *c, struct op_err *e);
/* Purge the trash: every entry (path NULL, id 0), those at or below path, or
 * entry id alone. *purged: how many files. */
enum op_code op_trash_empty(struct op_ctx *c, const char *path, int64_t id, int64_t *purged,
                            struct op_err *e);

/* ---- share links (ops/share.c) ---- */

struct share_args {
	const char *path;
	bool write;           /* scope write (a folder to upload into), else read */
	int64_t ttl_s;        /* 0: no expiry */
	const char *password; /* NULL: none */
};
struct share_result {
	int64_t id, expires_at;
	bool is_file;
	char token[64]; /* the link's secret; only its hash is stored */
};
enum op_code op_share_create(struct op_ctx *c, const struct share_args *a, struct share_result *out,
                             struct op_err *e);

/* ---- access control (ops/acl.c) ---- */

/* Give member uid perm on path (PERM_INVALID: remove their entry). */
enum op_code op_acl_set(struct op_ctx *c, const char *path, int64_t uid, enum perm perm,
                        struct op_err *e);

#endif
