/* hub: the control plane process (roost serve). What every hub module shares:
 * its configuration and state (struct hub), one request in flight (struct
 * req), the route table's entries (struct route) and the replies (server.c).
 * Each module declares its own functions in its own header (auth.h, meta.h,
 * jobs/jobs.h, hosts/hosts.h, …).
 *
 * Threads: struct hub is shared by every thread (its members are set up
 * before the daemons start, or atomic, or behind their module's lock); a
 * struct req belongs to the request's thread. */
#ifndef ROOST_HUB_H
#define ROOST_HUB_H

#include "../core/chunker.h"
#include "../core/connlimit.h"
#include "../core/store.h"
#include "../db/db.h"
#include "acl_rules.h"

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
#define FORM_BODY_MAX          8192
#define TOKEN_TTL_MAX_MS       (7ll * 24 * 3600 * 1000)  /* longest a signed token lives */
#define SESSION_TTL_MS         (90ll * 24 * 3600 * 1000) /* a login's token lives this long */
#define SESSION_IDLE_MS        (30ll * 24 * 3600 * 1000) /* … unless unused this long */
#define RATE_LIMIT_DEFAULT     1000 /* requests per second per token (a 1 GiB put sends ~350/s) */
#define LOGIN_FREE_DEFAULT     5    /* failed password checks per account before delays (guard.c) */
#define HUB_PROXIES_MAX        16   /* --trusted-proxy addresses (peer.c) */
/* A number macro as a string literal, to splice into SQL text. */
#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

struct hub_config {
	const char *data_dir;
	const char *db_url; /* NULL: SQLite at data_dir/roost.db */
	/* The chunk store: a directory (its objects/ holds the chunks) or
	 * s3://BUCKET/PREFIX?endpoint=…; NULL: data_dir (store.h, store_open_url) */
	const char *store_url;
	const char *store_creds; /* --store-credentials FILE; NULL: AWS_* variables */
	const char *listen;      /* address to bind; default 127.0.0.1 */
	int api_port, content_port, dashboard_port;
	int64_t feed_heartbeat_ms;      /* a quiet feed sends a comment this often */
	double rate_limit;              /* requests per second per token; 0 = unlimited */
	int login_free;                 /* failed password checks before delays; 0: no throttle */
	int max_conns_per_ip;           /* connections at once per client address; 0: no limit */
	int head_timeout_s;             /* to send a request head (connlimit.h) */
	const char *tls_cert, *tls_key; /* PEM files: serve HTTPS on every port */
	const char *host_ca; /* CA bundle trusted when fetching chunks from hosts/relays */
	const char *web_dir; /* the dashboard's built assets; NULL: ROOST_WEB_DIR */
	/* load balancers whose X-Forwarded-For/-Proto are believed (peer.c):
	 * comma-separated IP addresses, or NULL */
	const char *trusted_proxies;
	/* the origin clients reach the hubs at (a balancer): every link the hub
	 * makes starts with it; NULL: the request's Host and the hub's own port */
	const char *public_url;
	/* background jobs (docs/jobs.md): how often each runs (0: never, -1: the
	 * default), the byte rate of scrub and replicate, and a GC retention that
	 * overrides the workspaces' (roost admin gc --retention; -1: theirs) */
	int64_t gc_every_ms, scrub_every_ms, replicate_every_ms;
	double job_rate;
	int64_t gc_retention_ms;
	/* docs/operations.md: the signing key's age at which it is rotated (0:
	 * never), and a login session's lifetime and idle timeout (-1: defaults) */
	int64_t rotate_keys_every_ms;
	int64_t session_lifetime_ms, session_idle_ms;
	/* OpenID Connect sign-in (oidc.c); no issuer: off */
	const char *oidc_issuer, *oidc_client_id, *oidc_secret_file, *oidc_name, *oidc_redirect_uri;
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
	/* plain HTTP: the feed's event loop (feed.c), fed by the acceptor; NULL with TLS */
	struct MHD_Daemon *feed_loop;
	struct acceptor *acceptor;
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
	atomic_bool out_of_space; /* a full-disk episode, logged once (hub_space_full) */
	pthread_t keyrot_thread;  /* keyrot.c: the signing key's scheduled rotation */
	atomic_bool keyrot_stopping;
	bool keyrot_running;
	struct oidc *oidc;                 /* single sign-on (oidc.c); NULL: off */
	char proxies[HUB_PROXIES_MAX][64]; /* --trusted-proxy, canonical (peer.c) */
	int nproxies;
	/* /readyz's last verdict (bit 0 database, bit 1 store up) and when, so a
	 * flood of unauthenticated checks costs one S3 listing a second. */
	_Atomic int64_t ready_at_ms;
	atomic_int ready_bits;
};

/* What a request authenticated with: the route table says which kinds may
 * call a route (R_APP). */
enum cred { CRED_NONE = 0, CRED_SESSION, CRED_APP, CRED_HOST, CRED_PASSWORD };

/* BODY_FORM: a small application/x-www-form-urlencoded body left in r->body
 * (a share page's password form). */
enum body_kind { BODY_NONE, BODY_JSON, BODY_STREAM, BODY_FORM };

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
	/* BODY_JSON, BODY_FORM */
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
	const char *etag; /* serve_version's ETag instead of the quoted hash (dav/) */
	bool dash;        /* arrived on the dashboard port (cookie sessions, CSP) */
	unsigned status;  /* the answer's status, for metrics */
	bool counted;     /* … already counted by route and status */
	int64_t start_us; /* when the request arrived */
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
/* A body already serialized as JSON (text: malloc'd, stolen; len bytes). */
enum MHD_Result reply_json_text(struct req *r, unsigned status, char *text, size_t len);
/* reply_json with one extra response header. */
enum MHD_Result reply_json_hdr(struct req *r, unsigned status, json_t *body, const char *hname,
                               const char *hval);
enum MHD_Result reply_error(struct req *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An error object with extra members merged into "error". */
enum MHD_Result reply_error_extra(struct req *r, unsigned status, const char *code,
                                  const char *message, json_t *extra /* stolen */);
/* 503 db_unavailable; 507 out_of_space when the database's disk is full. */
enum MHD_Result reply_db_error(struct req *r);

/* A full disk. Uploads are answered 507 out_of_space with this message; the
 * first failure of an episode is logged (error) with the store's path and
 * its free bytes, and the episode ends (logged too) at the next chunk the
 * store takes. what names what failed ("storing a chunk"), err the -errno. */
#define OUT_OF_SPACE_MSG                                                                           \
	"the hub is out of space; nothing was stored (the hub's operator must free space on its "  \
	"disk)"
void hub_space_full(struct hub *h, const char *what, int err);
void hub_space_ok(struct hub *h);
enum MHD_Result reply_out_of_space(struct req *r, const char *what, int err);
/* The same decided mid-body: answered once the body has been read. */
void req_out_of_space(struct req *r, const char *what, int err);
/* status (429 or 503) with code, message and Retry-After: wait_ms rounded up
 * to whole seconds. */
enum MHD_Result reply_retry(struct req *r, unsigned status, const char *code, const char *message,
                            int64_t wait_ms);
/* Queue resp (consumed) as the answer; records the status for metrics. */
enum MHD_Result req_queue(struct req *r, unsigned status, struct MHD_Response *resp);
/* A query argument; *len gets its length (embedded NULs are caught by callers). */
const char *req_arg(struct req *r, const char *key, size_t *len);
const char *req_header(struct req *r, const char *key);
/* The client address as text, for audit rows and throttles: behind a trusted
 * proxy, the client it forwards for (peer.c). buf holds 64 bytes. */
const char *req_client(struct req *r, char buf[64]);
/* The normalized "path" argument, or NULL after replying 400. */
char *req_path_arg(struct req *r, const char *key);
/* The normalized path member key of the JSON body, or NULL after replying 400. */
char *req_body_path(struct req *r, const char *key);
/* May anything be written at normalized path? Else replies 403 reserved_name
 * (core/path.h's path_reserved). Every write path of the hub asks. */
bool req_path_writable(struct req *r, const char *path);

/* server.c: roost serve; the exit code. */
int hub_serve(struct hub_config *cfg);

/* Open the chunk store cfg names (--store, --store-credentials; default:
 * data_dir). shared: a running hub may be writing to it (a directory's temp
 * files are left alone). NULL with *err (malloc'd). */
struct store *hub_store_open(const struct hub_config *cfg, bool shared, char **err);
/* Is cfg's store an S3 bucket? */
bool hub_store_is_s3(const struct hub_config *cfg);

#endif
