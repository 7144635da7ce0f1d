/* sync (private to src/host/sync*.c): the rules that keep the folder and the
 * workspace equal. Run only by the sync thread, one change at a time.
 *
 * The index records, per file, the stat it had when it last matched a hub
 * version. So a local file whose stat still matches is unchanged (nothing to
 * upload, safe to replace), and one whose stat differs holds the user's edit
 * (upload it; never overwrite it). Uploads are conditional on the version
 * they started from; when another version got there first, or a remote
 * version arrives for a file edited here, the local edit is kept as
 * "NAME (conflict from HOST DATE).EXT" and uploaded too. Nothing is lost.
 *
 * Everything from the network is validated: paths through path_normalize,
 * content through its hashes; files are only ever replaced by rename.
 *
 *   sync.c         the state below, backoff, hub calls, renames made here
 *   sync_upload.c  local changes: files to chunks to commits, small ones in batches
 *   sync_apply.c   remote changes, the hub's whole tree, conflicts, repairs
 *   sync_scan.c    walking the folder for what the watcher did not see
 *
 * The entry points the agent calls are declared in host.h. */
#ifndef ROOST_HOST_SYNC_H
#define ROOST_HOST_SYNC_H

#include "host.h"
#include "../core/hash.h"
#include "../core/retry.h"
#include "plan.h"

/* One small file read and queued for the next batch (sync_upload.c). */
/* Batches whose commit may be in flight at once (sync_upload.c). One lets
 * the hub commit a batch while the next is read and hashed: 100,000 small
 * files went from 59 s to 45 s. Two were slower (48 s): the hub commits one
 * at a time anyway, and the second waited on its lock while taking CPU. */
#define COMMITS_IN_FLIGHT 1

struct small {
	char *path;
	struct stat st;
	int64_t base;
	uint8_t *data;
	char hash[HASH_HEX_LEN + 1];
	bool missing;
	int put_status;
};

/* A rename this host made itself (conflict copies, remote moves), so that
 * the move the watcher reports for it is not sent back to the hub. */
struct own_rename {
	char *from, *to;
	int64_t at;
	struct own_rename *next;
};

/* What the sync thread remembers between changes: h->sync. Only the sync
 * thread touches it (the batch's PUT workers read smalls while it waits). */
struct sync {
	struct retry retry; /* failed work's delays: doubling with each failure in a row */
	struct own_rename *own_renames;
	struct small *smalls; /* the batch of small files not yet uploaded */
	size_t nsmall, small_bytes;
	/* the batches whose commit is in flight, oldest first (sync_upload.c),
	 * and their connections */
	struct inflight *inflight[COMMITS_IN_FLIGHT];
	size_t ninflight;
	CURL *commit_curl[COMMITS_IN_FLIGHT];
	/* Small remote files waiting to be fetched together (sync_apply.c);
	 * arrivals_seq: the feed seq to record once they are placed (0: none);
	 * seq_unsaved: that of the last event with nothing to place, recorded
	 * with them (0: none). */
	struct arrival *arrivals;
	size_t narrivals, arrival_bytes;
	json_t *arrival_paths;
	int64_t arrivals_seq, seq_unsaved;
	/* Remote files whose download failed (no source gave the bytes, or the
	 * hub was away): path -> true, looked at again when their retry delay
	 * in the dirty queue passes (sync_local_path -> sync_refetch). */
	json_t *refetch;
	bool refetch_marked; /* the index's "refetch" mark is set (sync_fetch_later) */
	/* Remote files whose announced version's manifest was gone from their
	 * path (deleted or moved since): path -> true, until their delete, a
	 * folder's move above them (fetched at the new path) or a tree pass. */
	json_t *gone;
};

/* sync.c */
bool sync_same_stat(const struct stat *a, const struct stat *b);
int sync_hash_file(const char *local, char out[HASH_HEX_LEN + 1]);
/* The chunks path's recorded content held that no other local file, the
 * cache or keep (a JSON array of {hash}; NULL: none) holds, as [{hash}]: the
 * chunks this host drops when path's content goes. */
json_t *sync_chunks_released(struct host *h, const char *path, json_t *keep);
/* In a 'hosts' workspace, before a remote change replaces or removes path's
 * file here: the chunks of its recorded content that sync_chunks_released
 * would drop (keep: the new content's, or NULL) are read from the file,
 * verified and pinned in the cache. The old content is a kept version (or a
 * file in the trash): its bytes live only on hosts, and the editing host's
 * are gone with the save, so a host that applies the change must not drop
 * them. The hub's word lets them go (GC's replicate.drop). */
void sync_keep_replaced(struct host *h, const char *path, json_t *keep);
/* One JSON call to the workspace's REL (path_arg fills its %s); takes body.
 * The HTTP status, or 0 when the hub could not be reached (logged). */
long sync_hub_call(struct host *h, const char *method, const char *rel, const char *path_arg,
                   json_t *body, json_t **out);
void sync_own_rename(struct host *h, const char *from, const char *to);
/* Was from -> to ours? Forgets it, and any older than a minute. */
bool sync_was_own_rename(struct host *h, const char *from, const char *to);

/* The planner's states of a path (plan.h). Base, from its index entry (NULL:
 * none): what the folder and the workspace last agreed on; an on-demand
 * entry's content was never here, so the folder agreed on nothing. */
struct plan_state sync_base_state(const struct ientry *e);
/* Local, from the folder: st NULL when nothing is there. A file whose stat
 * still matches e holds e's content; another is hashed when hash is true,
 * else has no hash (an edit: equal to nothing). A folder is a folder;
 * anything else (a symlink) is an edit in the way. */
struct plan_state sync_local_state(const struct ientry *e, const char *local, const struct stat *st,
                                   bool hash);

/* sync_upload.c */
/* Upload the file at local as path, conditional on version base (0: new). */
void sync_upload(struct host *h, const char *path, const char *local, const struct stat *st,
                 int64_t base, bool retried);

/* sync_apply.c */
/* The index entry of a local file that now matches version vid. committed:
 * this host committed it, and the hub recorded its chunks as held here with
 * the commit (so they are not reported again). */
void sync_record_local(struct host *h, const char *path, const struct stat *st, int64_t vid,
                       int64_t version, const char *hash, json_t *chunks, bool committed);
/* Our conditional commit lost: someone else's version is current. */
void sync_resolve_conflict(struct host *h, const char *path, const char *local,
                           const struct stat *st, bool retried);
/* The hub refused the upload grant of a file taken through a write URL. */
void sync_void_upload(struct host *h, const char *path, const char *local, const struct stat *st);
/* A remote file not fetched yet: try again after the retry delay. */
void sync_fetch_later(struct host *h, const char *path);
/* Bring path to the workspace's current version, as its event would have. */
void sync_refetch(struct host *h, const char *path);

#endif
