/* host: the host agent (roost host run, docs/host.md) — shared types of its
 * modules:
 *   agent.c      start-up and shutdown, the sync loop (the sync thread),
 *                policies, the hub's keys, upload grants
 *   queue.c      the sync thread's work: dirty paths and local moves
 *   feed.c       the feed reader's thread: remote changes into h->events
 *   heartbeat.c  the heartbeat thread, status.json, the free-space check
 *   index.c      the local index (SQLite in DIR/.roost/index.db)
 *   watch.c      inotify, recursive, into the dirty set and the move queue
 *   sync*.c      reconciling local and remote changes (sync.h: uploads,
 *                applies and conflicts, scans)
 *   fetch.c      downloading a version chunk by chunk from the best source
 *   serve.c      the content server for other hosts and clients
 *   scrub.c      re-hashing kept files and the cache; repairs
 *   replica.c    copies the hub's replicate job asks this host to keep
 *   tunnel.c     the relay connections (--relay)
 *   hostcli.c    roost host invite|join|run|status, roost hosts, roost policy
 *
 * Threads: one sync thread owns every change to the folder and the index, so
 * local and remote changes are applied one at a time, in order. The watcher
 * and the feed reader only queue work for it. */
#ifndef ROOST_HOST_H
#define ROOST_HOST_H

#include "../client/client.h"
#include "../core/keyring.h"
#include "../core/path.h"
#include "../core/store.h"
#include "../db/db.h"
#include "policy.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#define HOST_STATE_DIR     PATH_RESERVED_TOP /* core/path.h: never synced */
#define HOST_HEARTBEAT_S   5
#define HOST_CACHE_MAX     (1ll << 30) /* on-demand cache cap by default */
#define HOST_RESCAN_MS     (10 * 60 * 1000)
#define SETTLE_CLOSED_MS   2   /* after a file is closed: coalesce a burst of events */
#define SETTLE_MODIFIED_MS 500 /* after a write with the file still open */

struct host_config {
	const char *dir;
	const char *listen; /* ADDR:PORT of the content server, or NULL for none */
	int heartbeat_s;
	int64_t cache_max;
	int64_t reserve;      /* free space downloads must leave; 0: max(1 GiB, 5%) */
	const char *relay;    /* the relay's tunnel ADDR:PORT, or NULL */
	const char *relay_ca; /* CA file for the relay's certificate, or NULL */
	/* The URL others reach the content server at (a reverse proxy, NAT),
	 * reported instead of one made from --listen; NULL: from --listen. */
	const char *advertise_url;
	const char *tls_cert, *tls_key; /* PEM files: the content server speaks HTTPS */
	/* CA file for other hosts' https URLs and relay URLs; NULL: relay_ca, else
	 * the system store. */
	const char *peer_ca;
};

/* One path waiting to be looked at, when due (mono ms). */
struct dirty {
	char *path;
	int64_t due;
	struct dirty *next; /* hash chain */
};

struct move_op {
	char *from, *to;
	struct move_op *next;
};

struct host {
	struct host_config cfg;
	char *dir;       /* the synced folder, absolute, no trailing slash */
	char *state_dir; /* dir/.roost */
	char *tmp_dir;   /* dir/.roost/tmp: downloads before their rename */
	char *label;
	int64_t host_id;
	struct client c; /* hub, token, workspace; c.curl is the sync thread's */
	struct db_pool *idx;
	struct db *db; /* the sync thread's index connection */
	struct store *cache;
	char *url;        /* the content server's URL, or NULL */
	char *tunnel_url; /* the public URL the relay gave us (under mu), or NULL */
	struct tunnel *tunnel;
	struct sync *sync; /* the sync thread's own state (sync.h) */

	pthread_mutex_t mu; /* guards everything below up to 'stop' */
	pthread_cond_t cv;
	/* Commits sent to the hub and not yet in the index: from the hub's answer
	 * on, the hub may send readers here for that version (commit_cv: one ended). */
	int committing;
	pthread_cond_t commit_cv;
	struct dirty **dirty; /* hash table of paths */
	size_t dirty_cap, ndirty;
	struct move_op *moves, **moves_tail;
	json_t *events;    /* remote changes in seq order */
	bool rescan;       /* look at the whole folder again (start, overflow, timer) */
	bool first_rescan; /* the one at start: a missing file was lost, not deleted */
	json_t *repairs;   /* paths the scrubber found corrupt */
	json_t *assign_fetch, *assign_release; /* hash -> size / true: the hub's replicate job */
	bool resync;         /* reconcile with the hub's tree (start, policy change) */
	json_t *policies;    /* [{folder, mode}] */
	struct keyring keys; /* the hub's public keys, for verifying tokens (own lock) */
	atomic_bool stop;
	atomic_bool ws_deleted; /* the hub said the workspace was deleted: stop */
	/* The workspace's storage is 'hosts': commits name this host's chunks
	 * (pointers) and send no bytes (host_load_settings, the feed). */
	atomic_bool storage_hosts;
	atomic_bool scrub_now; /* the hub asked for a scrub */
	atomic_bool gc_seen;   /* the hub collected chunks: drop them from the cache */
	/* roost host pause (DIR/.roost/paused exists): the sync loop sends and
	 * applies nothing; heartbeats and the content server go on (host_check_paused) */
	atomic_bool paused;

	atomic_llong seq;       /* last change applied */
	atomic_llong last_sync; /* ms of the last completed sync step */
	atomic_llong cache_bytes;
	atomic_llong queue;
	atomic_int state; /* 0 starting, 1 scanning, 2 syncing, 3 idle */
	/* where fetched chunks came from, and what the content server served */
	/* Files a pinned folder holds that did not fit (host_room_for): path ->
	 * size, under mu; retried by a resync after NO_SPACE_RETRY_MS. */
	json_t *no_space;
	atomic_llong no_space_since; /* mono ms of the last refusal, 0: none waiting */
	/* Files whose last write into the folder failed (host_io_failed): path
	 * -> {error, at}, under mu; each is retried (sync_fetch_later). */
	json_t *io_errors;
	atomic_llong from_local, from_cache, from_peer, from_hub, served_chunks, served_files;
	/* hash sets to report (under mu): held, dropped, found corrupt; the
	 * latest report of a chunk wins */
	json_t *replicas_have, *replicas_dropped, *replicas_corrupt;
	json_t *grants; /* path -> the hub's upload grant for a write URL's file (under mu) */
	struct MHD_Daemon *server;
	struct connlimit *conns; /* per-address connections on the content server */
};

/* agent.c */
/* Run the agent until SIGINT/SIGTERM. 0, or a negative errno (see host_open). */
int host_run(const struct host_config *cfg);
/* Open a joined folder's state (clean: drop temp files a killed run left).
 * 0, or a negative errno having printed why to stderr: -ENOENT not a joined
 * folder (no DIR/.roost/host.json), -EINVAL a bad host.json, else what the
 * folder, the cache or the index failed with. host_close after either. */
int host_open(struct host *h, const struct host_config *cfg, bool clean);
void host_close(struct host *h);
/* Load DIR/.roost/host.json into h (hub, token, ids). 0, or -ENOENT /
 * -EINVAL having printed why (as host_open). */
int host_load_identity(struct host *h, const char *dir);
/* Fetch this host's policies from the hub: 1 if they differ from those it
 * had, 0 if not, -1 on failure. */
int host_load_policies(struct host *h, CURL *curl);
/* Fetch the workspace's settings (its storage mode) from the hub. 0 or -1. */
int host_load_settings(struct host *h, CURL *curl);
/* A workspace's settings (GET /workspaces/W, a workspace.updated payload)
 * into h; what they leave out stays as it was. */
void host_apply_settings(struct host *h, json_t *settings);
/* The workspace's chunk sizes ({min, avg, max}) for the next uploads; on the
 * sync thread only (it alone chunks files). */
void host_apply_chunking(struct host *h, json_t *chunking);
/* The hub deleted the workspace (a 410 workspace_deleted answer): say so
 * once and stop; the folder's files stay. */
void host_workspace_deleted(struct host *h, json_t *answer);
/* The policy of path (longest folder prefix; pinned by default). */
enum policy host_policy(struct host *h, const char *path);
/* The hub's upload grant for path (a file taken through a write URL): its
 * commit names the uploader. set with NULL forgets it; get: a copy or NULL. */
void host_grant_set(struct host *h, const char *path, const char *grant);
char *host_grant_get(struct host *h, const char *path);
void host_wake(struct host *h);
/* dir + path. New string. */
char *host_local(const struct host *h, const char *path);
/* The CLOCK_REALTIME moment ms from now, for pthread_cond_timedwait. */
struct timespec host_deadline(int64_t ms);

/* queue.c: queue work for the sync thread (any thread). */
void host_mark_dirty(struct host *h, const char *path, int64_t delay_ms);
void host_queue_move(struct host *h, const char *from, const char *to);
void host_queue_init(struct host *h);
void host_queue_free(struct host *h);
/* Under mu: the paths due now, sorted (parents first), and when the next is due. */
char **host_queue_take_due(struct host *h, size_t *n, int64_t *next_due);
/* Under mu: h->queue, the work waiting, for the status file and heartbeat. */
void host_queue_count(struct host *h);

/* feed.c: the feed reader, from h->seq on; stop it after h->stop is set. */
struct host_feed;
struct host_feed *host_feed_start(struct host *h);
void host_feed_stop(struct host_feed *f);

/* heartbeat.c: the heartbeat thread (arg: the host), and the status file. */
void *host_heartbeat_main(void *arg);
void host_write_status(struct host *h, bool running);
/* Chunks this host now holds (have) or dropped, for the next heartbeat. */
void host_report_replicas(struct host *h, json_t *chunks, bool have);
/* At start, before any other thread runs: the hub is told every chunk this
 * host holds (its folder's files, its cache) and told dropped those it counts
 * here that are gone. Reports queued in memory die with a crash; without this
 * the hub missed a copy it had (and let a kept version lose its last one) or
 * counted one that was gone. What cannot be sent waits for the heartbeat. */
void host_reconcile_replicas(struct host *h);
/* The hub recorded these chunks as held here with this host's commit: only
 * a drop of them not yet reported is taken back. */
void host_report_committed(struct host *h, json_t *chunks);
/* A copy of hash found corrupt (or lost while pinned), for the next heartbeat:
 * the hub stops counting it and, for a copy it assigned, asks for it again.
 * A "have" of it still waiting is withdrawn: it is older news. */
void host_report_corrupt(struct host *h, const char *hash);
/* Is there room to write a file of size bytes and keep the reserve? If not,
 * logs it, reports it (status file, heartbeat) and schedules a retry. */
bool host_room_for(struct host *h, const char *path, int64_t size);
/* path fits now (or is gone): no longer reported as waiting for room. */
void host_room_found(struct host *h, const char *path);
/* Writing path into the folder failed with errno err (EIO, ENOSPC...): kept
 * for the status file and the heartbeat (a count and the last error, never
 * the path: the hub shows hosts to members who may not read it) until
 * host_io_ok(path). */
void host_io_failed(struct host *h, const char *path, int err);
void host_io_ok(struct host *h, const char *path);

/* heartbeat.c: whether DIR/.roost/paused exists (roost host pause|resume);
 * h->paused follows it, the change logged and the sync loop woken. */
#define HOST_PAUSED_FILE "paused"
bool host_check_paused(struct host *h);

/* serve_req.c: should path (a workspace path) never be synced (state dir,
 * temp names, what .roostignore names: ignore.h)? */
bool host_ignored(const char *path);
/* sync_upload.c: around a commit to the hub and its index entry (serve.c
 * waits for them). */
void host_commit_begin(struct host *h);
void host_commit_end(struct host *h);

/* index.c: the local index */
struct ientry {
	bool dir;
	bool local; /* content present in the folder (else on-demand metadata only) */
	int64_t size, mtime_ns, ino, version_id, version;
	char hash[65];
};
int idx_open(struct host *h);
/* 1 found, 0 not, <0 error */
int idx_get(struct db *db, const char *path, struct ientry *e);
int idx_put(struct db *db, const char *path, const struct ientry *e);
int idx_del(struct db *db, const char *path); /* the path and everything under it */
int idx_rename(struct db *db, const char *from, const char *to);
/* Where a chunk is in a local file (a copy to read and verify), and that
 * file's entry (*file, if not NULL). 1 found. */
int idx_chunk_where(struct db *db, const char *hash, char **path, int64_t *off, int64_t *size,
                    struct ientry *file);
int idx_set_chunks(struct db *db, const char *path, json_t *chunks);
/* Paths under prefix (files only, or all), for reconciling a subtree. */
json_t *idx_list(struct db *db, const char *prefix, bool files_only);
int idx_by_version(struct db *db, int64_t version_id, char **path, struct ientry *e);
int64_t idx_kv_get(struct db *db, const char *k, int64_t dflt);
int idx_kv_set(struct db *db, const char *k, int64_t v);
/* The on-demand cache's LRU bookkeeping. */
int idx_cache_touch(struct db *db, const char *hash, int64_t size);
/* Evict least recently used chunks from store until under max, each
 * appended to evicted ([{hash}], or NULL); returns bytes held. */
int64_t idx_cache_trim(struct db *db, struct store *s, int64_t max, json_t *evicted);
/* Trim the cache to --cache-max, and tell the hub of each chunk that went
 * with it: one no file here holds any more is a copy the hub must stop
 * counting (it was reported held; nothing else says it is gone). */
void host_cache_trim(struct host *h, struct db *db);
bool stat_matches(const struct ientry *e, const struct stat *st);
void entry_from_stat(struct ientry *e, const struct stat *st);

/* watch.c */
struct watcher;
struct watcher *watcher_start(struct host *h);
void watcher_stop(struct watcher *w);

/* sync*.c: run by the sync thread */
struct sync *sync_new(void);
void sync_free(struct sync *s);
void sync_remote_event(struct host *h, json_t *ev);
void sync_local_path(struct host *h, const char *path);
void sync_local_move(struct host *h, const char *from, const char *to);
/* Upload the small files queued by sync_local_path (after each batch). */
void sync_flush(struct host *h);
/* The batch sync_flush sent: wait for the hub's answer and apply it. */
void sync_settle(struct host *h);
/* Is path (NULL: any) in the batch whose commit is in flight? */
bool sync_in_flight(struct host *h, const char *path);
/* Place the small remote files sync_remote_event queued: fetched many to a
 * request, one sync for their durability (after each batch of events). */
void sync_apply_flush(struct host *h);
/* Walk the folder: every file or folder that differs from the index is marked. */
void sync_rescan(struct host *h, bool at_start);
/* Fetch the recorded version of a pinned file the scrubber found corrupt. */
void sync_repair(struct host *h, const char *path);
/* scrub.c: the scrub thread */
void *scrub_main(void *arg);
/* The hub asks for a scrub: asked is the request's time on the hub (the feed
 * event's requested_at, the heartbeat's scrub_requested_at; 0 unknown), live
 * when it came on the feed. One scrub per request, whichever way it came. */
void host_scrub_request(struct host *h, int64_t asked, bool live);
/* replica.c: copies the hub asks this host to keep in its cache, or release */
void *replica_main(void *arg);
/* Read a cached chunk, verified (store_read's results). Every reader of the
 * cache goes through here: a corrupt object is set aside in the cache's
 * quarantine and reported to the hub once, whoever read it first. */
int64_t host_cache_read(struct host *h, struct db *db, const char *hash, uint8_t *buf, size_t cap);
/* index.c: a cached chunk kept whatever the cache's size cap (or not) */
int idx_cache_pin(struct db *db, const char *hash, bool pinned);
bool idx_cache_pinned(struct db *db, const char *hash);
/* A cached chunk gone for good: its object, LRU row and pin. */
void idx_cache_drop(struct db *db, struct store *s, const char *hash);
/* Reconcile with the hub's whole tree; the feed seq to follow from, or -1. */
int64_t sync_with_tree(struct host *h);

/* fetch.c */
/* The manifest of path's version (0: current), or NULL (404 sets *gone). */
json_t *fetch_manifest(struct host *h, CURL *curl, const char *path, int64_t version, bool *gone);
/* Write the manifest's content into fd (a file, or a pipe: written in order), every
 * chunk verified. 0 or -errno / -EBADMSG.
 * With to_cache, chunks fetched from elsewhere are kept in the on-demand cache. */
int fetch_content(struct host *h, struct db *db, CURL *curl, json_t *manifest, int fd,
                  bool to_cache);
/* Chunk idx of the manifest from the best source — a local file, the cache,
 * an online host holding it, the hub — into buf (cap bytes), verified.
 * Its size, or <0 when no source had it. */
int64_t fetch_chunk(struct host *h, struct db *db, CURL *curl, json_t *manifest, size_t idx,
                    uint8_t *buf, size_t cap, bool to_cache);
/* The CA file for other hosts' https URLs and relay URLs (--host-ca, else
 * --relay-ca), or NULL: the system's store. */
const char *fetch_peer_ca(const struct host *h);
/* May a version-scoped chunk token (scope "vchunks", verified by the caller)
 * fetch chunk hash? 1 yes, 0 no, -EAGAIN the hub cannot be asked now. */
int fetch_vtoken_allows(struct host *h, const char *tok, const char *hash);

/* fetch_batch.c: one small file's chunk (the whole file) to fetch; data is
 * set (malloc'd) to its verified bytes once got. */
struct batch_want {
	const char *path, *hash;
	int64_t version, size;
	uint8_t *data;
};
/* The bytes of many one-chunk files from the online hosts holding them, many
 * to a request; the number got (the rest: fetch them one by one). */
size_t fetch_batch(struct host *h, CURL *curl, struct batch_want *want, size_t n);

/* tunnel.c: the relay connections (--relay) */
struct tunnel;
struct tunnel *tunnel_start(struct host *h);
void tunnel_stop(struct tunnel *t); /* after h->stop is set */
/* Our relay URL was rotated or revoked: attach again with a new token. */
void tunnel_refresh(struct tunnel *t);

/* serve.c */
/* 0 (also without --listen), or a negative errno, logged. */
int serve_start(struct host *h);
void serve_stop(struct host *h);
/* The content server's JSON answers (body stolen), and {error:{code, message}}. */
struct MHD_Connection;
int serve_json(struct MHD_Connection *conn, unsigned status, json_t *body);
int serve_error(struct MHD_Connection *conn, unsigned status, const char *code, const char *msg);
/* A chunk's bytes for a reader elsewhere, from a local file holding it, else
 * from the cache (*cached; verified there); its size or -1. *buf grows. */
int64_t serve_read_chunk(struct host *h, struct db *db, const char *hash, uint8_t **buf,
                         bool *cached);
/* serve_batch.c: POST /chunks/batch (called by serve.c's request handler;
 * an MHD_Result), and whether con_cls was one of its requests (then freed). */
int serve_batch(struct host *h, struct MHD_Connection *conn, const char *data, size_t *size,
                void **con_cls);
bool serve_batch_release(void *con_cls);

/* Open path beneath the folder without following symlinks anywhere. */
int open_beneath(const struct host *h, const char *path, int flags, unsigned mode);

#endif
