/* hub: the control plane process (roost serve). Shared types of its modules. */
#ifndef ROOST_HUB_H
#define ROOST_HUB_H

#include "../core/chunker.h"
#include "../core/connlimit.h"
#include "../core/store.h"
#include "../db/db.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define API_PORT_DEFAULT       3210
#define CONTENT_PORT_DEFAULT   3211
#define DASHBOARD_PORT_DEFAULT 6791
#define JSON_BODY_MAX          (16 * 1024 * 1024)
#define TOKEN_TTL_MAX_MS       (7ll * 24 * 3600 * 1000)  /* longest a signed token lives */
#define SESSION_TTL_MS         (90ll * 24 * 3600 * 1000) /* a login's token lives this long */
#define RATE_LIMIT_DEFAULT     1000 /* requests per second per token (a 1 GiB put sends ~350/s) */
#define LOGIN_FREE_DEFAULT     5    /* failed password checks per account before delays (guard.c) */

struct hub_config {
	const char *data_dir;
	const char *db_url; /* NULL: SQLite at data_dir/roost.db */
	const char *listen; /* address to bind; default 127.0.0.1 */
	int api_port, content_port, dashboard_port;
	int64_t feed_heartbeat_ms;      /* a quiet feed sends a comment this often */
	double rate_limit;              /* requests per second per token; 0 = unlimited */
	int login_free;                 /* failed password checks before delays; 0: no throttle */
	int max_conns_per_ip;           /* connections at once per client address; 0: no limit */
	int head_timeout_s;             /* to send a request head (connlimit.h) */
	const char *tls_cert, *tls_key; /* PEM files: serve HTTPS on every port */
	const char *web_dir;            /* the dashboard's built assets; NULL: ROOST_WEB_DIR */
	/* background jobs (docs/jobs.md): how often each runs (0: never, -1: the
	 * default), the byte rate of scrub and replicate, and a GC retention that
	 * overrides the workspaces' (roost admin gc --retention; -1: theirs) */
	int64_t gc_every_ms, scrub_every_ms, replicate_every_ms;
	double job_rate;
	int64_t gc_retention_ms;
};

/* One job run's settings and connections (jobs.c). */
struct job_ctx {
	struct db *db;
	struct store *store;
	char owner[96]; /* who holds the lease: "HOSTNAME:PID" */
	int64_t retention_ms;
	double rate;
	bool verbose;
	int64_t gc_every_ms, scrub_every_ms, replicate_every_ms;
};

struct hub_metrics {
	atomic_llong requests;
	atomic_llong chunks_received; /* chunk bodies stored (PUT and stream upload) */
	atomic_llong chunk_bytes_received;
	atomic_llong chunks_rejected; /* hash mismatch */
	atomic_llong versions_committed;
	atomic_llong bytes_served;
	atomic_llong corrupt_reads;
	atomic_llong bytes_in;  /* request bodies */
	atomic_llong bytes_out; /* JSON answers (downloads count in bytes_served) */
	/* request latency: a Prometheus histogram over all requests */
	atomic_llong latency_bucket[12];
	atomic_llong latency_sum_us, latency_count;
	/* requests by route (index into the route table; the last is "no route")
	 * and status class 1xx..5xx */
	atomic_llong (*by_route)[5];
};

struct hub {
	struct hub_config cfg;
	struct db_pool *pool;
	struct store *store;
	struct MHD_Daemon *api, *content, *dashboard;
	struct hub_metrics m;
	char *db_url;
	struct feed *feed;
	struct limiter *limiter;
	struct guard *guard;     /* password-check throttle (guard.c); NULL: off */
	struct connlimit *conns; /* per-address connections, on every port */
	char *tls_cert_pem, *tls_key_pem;
	struct traffic *traffic; /* bytes in and out per workspace (traffic.c) */
	const char *ops_token;   /* ROOST_OPS_TOKEN: what /metrics and relays show, or NULL */
	pthread_t jobs_thread;
	atomic_bool jobs_stopping;
	bool jobs_running;
};

enum role { ROLE_NONE = 0, ROLE_MEMBER, ROLE_ADMIN, ROLE_OWNER };
/* What a request authenticated with: the route table says which kinds may
 * call a route (R_APP). */
enum cred { CRED_NONE = 0, CRED_SESSION, CRED_APP, CRED_HOST, CRED_PASSWORD };
enum perm { PERM_INVALID = -1, PERM_NONE = 0, PERM_READ, PERM_WRITE, PERM_MANAGE };
struct acl;

enum body_kind { BODY_NONE, BODY_JSON, BODY_STREAM };

struct req;
typedef enum MHD_Result (*handler_fn)(struct req *r);
typedef int (*data_fn)(struct req *r, const char *data, size_t len);

/* One HTTP request in flight. Owned by server.c; handlers read and fill it. */
struct req {
	struct hub *hub;
	struct MHD_Connection *conn;
	const char *method, *url;
	const struct route *route;
	char *params[2]; /* captured '*' segments of the route */
	int64_t user_id; /* authenticated user, 0 if none */
	int64_t token_id;
	enum cred cred;           /* the kind of credential that authenticated it */
	int64_t host_id, host_ws; /* a host's credential: the host and its workspace */
	int64_t author_id;        /* a host's commit made for this uploader (0: none) */
	int64_t ws_id;            /* workspace from the URL, membership checked */
	int64_t share_id;         /* a share link's upload: the link (possess.c) */
	enum role role;
	struct acl *acl; /* the caller's access in ws_id, loaded on first use */
	struct db *db;   /* acquired for the handler's duration */
	/* BODY_JSON */
	char *body;
	size_t body_len, body_cap;
	json_t *json;
	/* BODY_STREAM */
	int64_t body_limit; /* refuse bodies over this many bytes */
	int64_t body_seen;
	int stream_err; /* a status to answer with at the end, set mid-body */
	const char *stream_code, *stream_msg;
	void *state; /* handler-owned stream state */
	void (*state_free)(void *state);
	bool replied;
	/* Capture mode: JSON answers are kept here instead of sent. Only the
	 * streaming upload (upload_stream_start, api_upload) needs it, when
	 * WebDAV PUT/LOCK and share-link uploads reuse it (dav/, share.c); the
	 * operations (ops/ops.h) return typed errors instead. */
	bool capture;
	const char *etag; /* serve_version's ETag instead of the quoted hash (dav/) */
	unsigned cap_status;
	json_t *cap_body;
	bool dash;          /* arrived on the dashboard port (cookie sessions, CSP) */
	unsigned status;    /* the answer's status, for metrics */
	int64_t start_us;   /* when the request arrived */
};

struct route {
	const char *method;
	const char *pattern; /* '/'-separated; '*' captures a segment */
	unsigned flags;
	enum body_kind body;
	handler_fn begin;  /* BODY_STREAM: called on headers, may reply early */
	data_fn data;      /* BODY_STREAM: each piece of the body */
	handler_fn handle; /* called when the request is complete */
};

#define R_AUTH   1u  /* bearer token required */
#define R_WS     2u  /* params[0] is a workspace id the caller belongs to */
#define R_PREFIX 4u  /* pattern is a prefix; any method; the handlers check the rest */
#define R_HOST   8u  /* a host's credential may call it (in its own workspace) */
#define R_OPS    16u /* operators' (metrics, relays): loopback, or ROOST_OPS_TOKEN */
/* An app password may call it: files, folders, versions and the feed, never
 * credentials, members, invites, shares or workspace settings (docs/api.md). */
#define R_APP   32u
#define R_FILES (R_AUTH | R_WS | R_APP) /* a file route of a workspace */

/* Responses (server.c). Each returns the MHD result to hand back. */
enum MHD_Result reply_json(struct req *r, unsigned status, json_t *body /* stolen */);
/* The same with one extra response header. */
enum MHD_Result reply_json_hdr(struct req *r, unsigned status, json_t *body, const char *hname,
                               const char *hval);
enum MHD_Result reply_error(struct req *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An error object with extra members merged into "error". */
enum MHD_Result reply_error_extra(struct req *r, unsigned status, const char *code,
                                  const char *message, json_t *extra /* stolen */);
enum MHD_Result reply_db_error(struct req *r);
/* status (429 or 503) with code, message and Retry-After: wait_ms rounded up
 * to whole seconds. */
enum MHD_Result reply_retry(struct req *r, unsigned status, const char *code, const char *message,
                            int64_t wait_ms);
/* Queue resp (consumed) as the answer; records the status for metrics. */
enum MHD_Result req_queue(struct req *r, unsigned status, struct MHD_Response *resp);
/* A query argument; *len gets its length (embedded NULs are caught by callers). */
const char *req_arg(struct req *r, const char *key, size_t *len);
const char *req_header(struct req *r, const char *key);
/* The client address as text, for audit rows. buf holds 64 bytes. */
const char *req_client(struct req *r, char buf[64]);
/* The normalized "path" argument, or NULL after replying 400. */
char *req_path_arg(struct req *r, const char *key);
/* The normalized path member key of the JSON body, or NULL after replying 400. */
char *req_body_path(struct req *r, const char *key);
/* May anything be written at normalized path? Else replies 403 reserved_name
 * (core/path.h's path_reserved). Every write path of the hub asks. */
bool req_path_writable(struct req *r, const char *path);

/* auth.c */
/* argon2id runs at most PW_SLOTS at a time (each takes 19 MiB); a caller
 * waits briefly for a slot, then gets AUTH_BUSY. */
#define AUTH_DB_ERROR  (-1)
#define AUTH_THROTTLED (-2) /* the guard refused: retry after *retry_ms */
#define AUTH_BUSY      (-3) /* every argon2id slot stayed taken: retry after *retry_ms */
/* 0, AUTH_BUSY, or -1 if hashing failed. */
int auth_hash_password(const char *password, char out[128]);
/* 1 the password matches, 0 it does not, AUTH_BUSY. */
int auth_verify_password(const char *hash, const char *password);
/* The user whose email and password these are (> 0), 0 if none (timed the
 * same either way), or AUTH_DB_ERROR, AUTH_THROTTLED or AUTH_BUSY (*retry_ms
 * set). Throttled per account and client (guard.c); releases r->db during
 * argon2id. */
int64_t auth_check_password(struct req *r, const char *email, const char *password,
                            int64_t *retry_ms);
/* Answer AUTH_THROTTLED or AUTH_BUSY (429 or 503 with Retry-After). */
enum MHD_Result auth_reply_retry(struct req *r, int64_t rc, int64_t retry_ms);
/* A new random bearer token (text into tok) and its stored hash. */
void auth_new_token(char tok[64], char hash[65]);
void auth_token_hash(const char *tok, char hash[65]);
/* Resolve a bearer token; 0 if valid (user and token ids set). */
int auth_check_bearer(struct db *db, const char *authz, int64_t *user_id, int64_t *token_id,
                      int64_t *host_id, int64_t *host_ws, enum cred *cred);
enum role auth_role(struct db *db, int64_t ws_id, int64_t user_id);
/* Record a new session token (its hash) for user uid. */
int auth_store_session(struct db *db, int64_t uid, const char *token_hash, const char *client);
enum MHD_Result api_login(struct req *r);
enum MHD_Result api_logout(struct req *r);
enum MHD_Result api_me(struct req *r);
/* App passwords: API tokens (kind 'api') a user names, lists and revokes. */
enum MHD_Result api_app_token_create(struct req *r);
enum MHD_Result api_app_tokens(struct req *r);
enum MHD_Result api_app_token_revoke(struct req *r);
/* Sessions (logins) of the caller: list, revoke one; and a password change,
 * which ends every other session and app password. */
enum MHD_Result api_sessions(struct req *r);
enum MHD_Result api_session_revoke(struct req *r);
enum MHD_Result api_password_change(struct req *r);

/* dav/dav.c: WebDAV (RFC 4918 class 1 and 2) under /dav/WORKSPACE/ on the content port */
enum MHD_Result dav_begin(struct req *r);
int dav_data(struct req *r, const char *data, size_t len);
enum MHD_Result dav_handle(struct req *r);
/* libmicrohttpd's URL unescaping, except that an encoded NUL in a /dav/ path
 * becomes a byte the path validator refuses instead of cutting the path short. */
size_t dav_unescape(void *cls, struct MHD_Connection *c, char *s);

/* meta.c: folders, files, versions, changes and audit. */
struct file_info {
	int64_t id, folder_id, size, version_id, version_no, updated_at, updated_by;
	char name[256];
	char hash[65];
	char content_type[128];
};
/* 1 found, 0 not found, <0 db error. */
int meta_folder_id(struct db *db, int64_t ws, const char *path, int64_t *id);
int meta_file_get(struct db *db, int64_t ws, const char *path, struct file_info *fi);
int meta_version_get(struct db *db, int64_t file_id, int64_t number, struct file_info *fi);
/* Version (0: current) of the file at path, which the caller must be allowed
 * to read; false after replying 404/403 (or a database error). */
bool meta_readable_version(struct req *r, const char *path, int64_t version, struct file_info *fi);
/* A version by id, of a live file in workspace ws. */
int meta_version_by_id(struct db *db, int64_t ws, int64_t version_id, struct file_info *fi);
/* Create path's folders as needed (the caller holds a transaction). The last one's
 * id into *id. Returns an enum op_code (ops/ops.h): OP_OK, OP_EXISTS if a file
 * is in the way, or OP_DB. meta.c's writers all return op codes. */
int meta_mkdirs(struct db *db, int64_t ws, const char *path, int64_t user, int64_t *id,
                bool *created);
/* Append to the change feed and the audit log (inside the caller's transaction). */
int meta_change(struct db *db, int64_t ws, const char *kind, const char *entity,
                json_t *payload /* stolen */);
int meta_audit(struct req *r, const char *action, const char *target, json_t *detail);
/* Commit a mutation and wake feed subscribers. */
int meta_commit(struct req *r);

/* feed.c: the realtime change feed */
void feed_init(struct hub *hub);
void feed_start_listener(struct hub *hub);
void feed_notify(struct hub *hub);
int feed_subscribers(struct hub *hub);
void feed_stop(struct hub *hub); /* ends every stream; before stopping the daemons */
void feed_free(struct hub *hub);
enum MHD_Result api_events(struct req *r);

/* api.c: metadata endpoints */
enum MHD_Result api_workspaces(struct req *r);
enum MHD_Result api_list(struct req *r);
/* A folder's entries the caller may see (JSON array): folders, then files. */
json_t *list_entries(struct req *r, int64_t folder_id, const char *path);
enum MHD_Result api_info(struct req *r);
enum MHD_Result api_versions(struct req *r);
enum MHD_Result api_mkdir(struct req *r);
enum MHD_Result api_move(struct req *r);
enum MHD_Result api_delete(struct req *r);
enum MHD_Result api_usage(struct req *r);
enum MHD_Result api_audit(struct req *r);

/* upload.c */
struct chunk_ref {
	char hash[65];
	int64_t size;
};
enum MHD_Result api_chunks_missing(struct req *r);
enum MHD_Result api_chunk_put_begin(struct req *r);
int api_chunk_put_data(struct req *r, const char *data, size_t len);
enum MHD_Result api_chunk_put(struct req *r);
enum MHD_Result api_commit(struct req *r);
enum MHD_Result api_commit_batch(struct req *r);
enum MHD_Result api_upload_begin(struct req *r);
int api_upload_data(struct req *r, const char *data, size_t len);
enum MHD_Result api_upload(struct req *r);
/* Take the request body as file path (owned) in r->ws_id, chunked by the hub;
 * the caller has checked access. Finish with api_upload_data / api_upload.
 * Sets r->state to the stream, or replies (too large, over quota) and leaves
 * r->state NULL; either way it overwrites r->state without freeing it. */
enum MHD_Result upload_stream_start(struct req *r, char *path);

/* tokens.c: hub-signed content tokens (Ed25519) */
char *tokens_sign(struct db *db, json_t *claims /* stolen; kid is added */);
/* The claims of a valid, unexpired token, or NULL with *why set. */
json_t *tokens_verify(struct db *db, const char *tok, const char **why);
enum MHD_Result api_keys(struct req *r);
enum MHD_Result api_url_create(struct req *r);
enum MHD_Result api_content_by_token(struct req *r);
enum MHD_Result api_upload_by_token_begin(struct req *r);
/* tokens_grant_check (a host's commit with an upload grant): ops/ops.h */
enum MHD_Result api_version_restore(struct req *r);
enum MHD_Result api_trash_list(struct req *r);
enum MHD_Result api_trash_restore(struct req *r);
enum MHD_Result api_jobs(struct req *r);
enum MHD_Result api_host_scrub(struct req *r);
/* scheme://host:content-port as the client reached this hub. New string. */
char *hub_content_base(struct req *r);

/* share.c: share links */
enum MHD_Result api_share_create(struct req *r);
enum MHD_Result api_shares(struct req *r);
enum MHD_Result api_share_revoke(struct req *r);
enum MHD_Result api_share_view(struct req *r);
enum MHD_Result api_share_file(struct req *r);
enum MHD_Result api_share_upload_begin(struct req *r);
enum MHD_Result api_share_upload(struct req *r);
enum MHD_Result api_share_zip(struct req *r);

/* hosts.c: host agents (docs/host.md) */
enum MHD_Result api_host_invite(struct req *r);
enum MHD_Result api_host_join(struct req *r);
enum MHD_Result api_hosts(struct req *r);
enum MHD_Result api_host_heartbeat(struct req *r);
enum MHD_Result api_host_policies(struct req *r);
enum MHD_Result api_host_policy_set(struct req *r);
enum MHD_Result api_host_replicas(struct req *r);
enum MHD_Result api_tree(struct req *r);
enum MHD_Result api_manifest(struct req *r);
enum MHD_Result api_token_create(struct req *r);
enum MHD_Result api_replicas(struct req *r);
enum MHD_Result api_host_relay_token(struct req *r);
enum MHD_Result api_host_rotate_url(struct req *r);
enum MHD_Result api_host_revoke_url(struct req *r);
enum MHD_Result api_relay_revocations(struct req *r);
/* DELETE /workspaces/W/hosts/H: revoke the host (hosts.c). */
enum MHD_Result api_host_remove(struct req *r);
/* POST hosts/self/token-check {token}: may a signed URL's issuer still use it? */
enum MHD_Result api_host_token_check(struct req *r);

/* zip.c: folder (what the caller may read in it) as a streamed ZIP64 archive */
enum MHD_Result serve_zip(struct req *r, const char *folder, const char *name);
int hub_rotate_keys(const char *data_dir, const char *db_url);
int hub_demo_host(const char *data_dir, const char *db_url, const char *email, const char *dir,
                  const char *hub_url);

/* download.c */
/* Stream version fi (with Range); as an attachment named after the file. */
enum MHD_Result serve_version(struct req *r, struct file_info *fi, bool attachment);
enum MHD_Result api_content(struct req *r);
enum MHD_Result api_chunk_get(struct req *r);

/* guard.c: throttling of password checks per account and client address */
struct guard;
struct guard *guard_new(int free_tries); /* NULL when free_tries <= 0: no throttle */
void guard_free(struct guard *g);
/* May this client try a password (for account, if not NULL)? 0: yes, and the
 * attempt is charged until guard_result; else ms to wait. */
int64_t guard_admit(struct req *r, const char *account);
/* How the admitted attempt went: > 0 right (the account's delays end), 0
 * wrong (the charge stays), < 0 not a guess (busy, errors: charge refunded). */
void guard_result(struct req *r, const char *account, int outcome);

/* possess.c: who may reference a chunk by its hash (docs/security.md). A
 * caller's own uploads prove possession this long; they are its pending
 * (uploaded, not yet committed) bytes meanwhile. */
#define UPLOAD_PENDING_MS (24ll * 3600 * 1000)
/* Who uploads, as chunk_uploads names it: "u:USER", "h:HOST" or "s:LINK". */
struct op_ctx;
void possess_uploader(const struct op_ctx *oc, char out[32]);
/* held[i]: did the caller upload c[i] within the lease, or may it read a
 * version that uses it? One query per 256 distinct hashes. DB_DONE or error. */
int possess_check(struct op_ctx *oc, const struct chunk_ref *c, size_t n, bool *held);
/* Record that the caller uploaded c (in the caller's transaction). */
int possess_record(struct op_ctx *oc, const struct chunk_ref *c);
/* A commit used these: they are no longer pending (in its transaction). */
int possess_consume(struct op_ctx *oc, const struct chunk_ref *c, size_t n);
/* The caller's pending bytes in its workspace. */
int possess_pending(struct op_ctx *oc, int64_t *bytes);
/* A refused upload: drop the caller's claims on c and delete the chunks no
 * version, other upload or other workspace holds. */
void possess_free(struct op_ctx *oc, const struct chunk_ref *c, size_t n);

/* limits.c */
struct limiter;
struct limiter *limiter_new(double rate_per_s); /* NULL when rate <= 0: no limit */
void limiter_free(struct limiter *l);
/* Take one request for token_id: 0 if allowed, else ms until one would be. */
int64_t limiter_take(struct limiter *l, int64_t token_id);
/* The workspace's max file size. */
int64_t limits_max_file(struct db *db, int64_t ws);
/* Files are limited to this by default (PATCH max_file_bytes changes it). */
#define MAX_FILE_DEFAULT (64ll << 30)
/* May the caller upload more bytes it has not committed yet? Its pending bytes
 * are bounded by the max file size and what is left of the quota. Replies 507
 * upload_limit or quota_exceeded if not; with defer, sets r->stream_err so
 * the body is read, dropped and then refused (simple clients cannot read an
 * answer sent while they are still sending). */
bool limits_allow_pending(struct req *r, int64_t more, bool defer);
/* limits_fit_file, limits_fit_quota: ops/ops.h */
/* The bytes that count against workspace ws's quota. */
int limits_used(struct db *db, int64_t ws, int64_t *used);

/* acl.c: access control (docs/access.md) */
enum perm perm_parse(const char *s);
const char *perm_name(enum perm p);
struct acl *acl_load(struct db *db, int64_t ws, int64_t user, enum role role);
void acl_free(struct acl *a);
/* Access is judged at a moment: ACL_NOW for live items; for a deleted item its
 * deleted_at, for a past change its time. Entries of deleted items keep
 * applying to what was under them then, so deleting never widens access. */
#define ACL_NOW INT64_MAX
enum perm acl_perm(const struct acl *a, const char *path, bool is_file);
enum perm acl_perm_at(const struct acl *a, const char *path, bool is_file, int64_t at);
/* May the caller see path at all (read it, or a folder leading to something
 * readable)? */
bool acl_visible(const struct acl *a, const char *path, bool is_file);
bool acl_visible_at(const struct acl *a, const char *path, bool is_file, int64_t at);
/* Does the caller have at least need on path and everything below it? */
bool acl_subtree_at_least(const struct acl *a, const char *path, enum perm need);
bool acl_writes_somewhere(const struct acl *a);
/* The caller's ACL in r->ws_id (cached in r), NULL on a database error. */
struct acl *req_acl(struct req *r);
/* Has the caller need on path? Else replies 404 (cannot see it) or 403. */
bool acl_require(struct req *r, const char *path, bool is_file, enum perm need);
/* The same for a deleted item (at: its deleted_at). */
bool acl_require_at(struct req *r, const char *path, bool is_file, enum perm need, int64_t at);
/* May the caller read every file (an owner, an admin, or a member no entry narrows)? */
bool acl_reads_all(struct req *r);
/* Totals over what the caller may read, for answers (usage, replicas) whose
 * workspace-wide totals would tell of hidden files. st yields rows (folder
 * path, file name, key, value) and is finalized here; each distinct key of a
 * readable file counts once: count, sum of values, and how many are below
 * threshold. 0 or a db error. */
struct acl_sums {
	int64_t count, sum, below;
};
int acl_sum_readable(struct req *r, struct db_stmt *st, int64_t threshold, struct acl_sums *out);
enum MHD_Result api_acl_get(struct req *r);
enum MHD_Result api_acl_set(struct req *r);
enum MHD_Result api_acl_delete(struct req *r);
enum MHD_Result api_workspace_update(struct req *r);

/* members.c: workspaces, members, roles, invites */
const char *role_name(enum role r);
int hub_create_workspace(struct db *db, const char *name, int64_t owner, int64_t *ws);
enum MHD_Result api_workspace_create(struct req *r);
enum MHD_Result api_members(struct req *r);
enum MHD_Result api_member_set_role(struct req *r);
enum MHD_Result api_member_remove(struct req *r);
enum MHD_Result api_invite_create(struct req *r);
enum MHD_Result api_invites(struct req *r);
enum MHD_Result api_invite_revoke(struct req *r);
enum MHD_Result api_invite_accept(struct req *r);
/* scheme://HOST/kind/tok, HOST as the client reached this hub. New string. */
char *hub_link(struct req *r, const char *kind, const char *tok);

/* The workspace's chunking parameters. */
int hub_ws_chunking(struct db *db, int64_t ws, struct chunker_params *p);

/* web.c: the dashboard port's static assets and browser sessions */
/* Serve the dashboard's file for url (GET/HEAD), index.html for app routes. */
enum MHD_Result web_serve(struct hub *hub, struct MHD_Connection *conn, const char *url,
                          const char *method);
/* The answer to a login: on the dashboard port the token goes into an HttpOnly
 * cookie and is left out of body; elsewhere body carries it as is. tok NULL:
 * a logout, which clears the cookie. */
enum MHD_Result reply_session(struct req *r, json_t *body /* stolen */, const char *tok,
                              int64_t expires_at);
/* The dashboard port's session cookie as an "Authorization" value, or NULL. New string. */
char *web_cookie_authz(struct req *r);
/* Headers every API answer on the dashboard port carries. */
void web_api_headers(struct MHD_Response *resp);

/* stats.c: name search and storage over time, for the dashboard */
enum MHD_Result api_search(struct req *r);
enum MHD_Result api_usage_history(struct req *r);

/* init.c */
int hub_init(const char *data_dir, const char *db_url, const char *email, const char *password,
             bool quiet);
/* The metadata database URL for a hub: db_url, else SQLite in data_dir. New string. */
char *hub_db_url(const char *data_dir, const char *db_url);
/* Begin a transaction that mutates workspace ws. It takes the workspace's row
 * lock first, so concurrent writers to one workspace serialize on PostgreSQL as
 * BEGIN IMMEDIATE makes them on SQLite. */
int meta_begin(struct db *db, int64_t ws);
int hub_serve(struct hub_config *cfg);

/* jobs.c: gc, scrub, replicate. jobs_run: 0 done (*result: what it did), 1
 * another runner holds the lease, -1 failed (the cursor is kept to resume). */
int jobs_run(struct job_ctx *c, const char *name, json_t **result);
json_t *jobs_list(struct db *db);
void jobs_metrics(struct db *db, FILE *f);
/* traffic.c: count bytes received (in) and sent (out) for workspace ws; the
 * jobs thread flushes them into transfer_hourly. */
struct traffic *traffic_new(void);
void traffic_free(struct traffic *tr);
void traffic_add(struct hub *hub, int64_t ws, int64_t in, int64_t out);
void traffic_flush(struct hub *hub, struct db *db);
void jobs_ctx_init(struct job_ctx *c, const struct hub_config *cfg);
void jobs_start(struct hub *hub);
void jobs_stop(struct hub *hub);
/* roost admin gc|scrub|replicate|jobs: exit code */
int hub_admin_job(const struct hub_config *cfg, const char *job, bool json);

#endif
