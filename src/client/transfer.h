/* transfer: roost put and roost get — chunked, deduplicated, parallel, resumable
 * uploads and verified, atomic downloads. */
#ifndef ROOST_TRANSFER_H
#define ROOST_TRANSFER_H

#include "client.h"

#include <stdatomic.h>

/* Chunk uploads in flight: enough to hide the hub's per-chunk fsyncs
 * (measured: 8 beat 4 by ~7% on a 1 GiB put, docs/benchmarks.md). */
#define PUT_PARALLEL_DEFAULT 8

struct put_opts {
	int parallel; /* chunk uploads in flight; 0 for the default */
	bool quiet;
	/* Conditional commit (hosts): >= 0 is the version id the file must
	 * still have (0: must not exist); -1 commits unconditionally. */
	int64_t base_version_id;
	/* When set, gets the commit's answer plus "chunks" [{hash,size,offset}]. */
	json_t **result;
	/* Hosts: the hub's upload grant for a file taken through a write URL; the
	 * version is then the uploader's (see hosts/self/token-check). */
	const char *upload_grant;
	/* Not a host (roost put): in a workspace whose storage is 'hosts', send
	 * the chunks to a host that pins the folder (upload-targets), falling
	 * back to the next one, then the hub. */
	bool to_hosts;
	/* A whole tree's progress (client/tree.h): the bytes read are added to
	 * *progress as they are, the bytes sent to *sent at the end. NULL: none. */
	atomic_llong *progress, *sent;
};

/* transfer_put's exit code when a conditional commit lost to another version. */
#define PUT_CONFLICT 3
/* ... and when the hub refused the upload grant (the uploader lost access). */
#define PUT_GRANT_REFUSED 4

int transfer_put(struct client *c, const char *local, const char *remote, const struct put_opts *o);
/* A file for transfer_put_small: local and remote in, committed out. */
struct put_item {
	const char *local, *remote;
	bool committed;
};

/* Small files (each no bigger than the workspace's minimum chunk) in one
 * batch commit: one probe, each missing chunk sent once, one POST
 * versions/batch (≤ 1,000 items). To the hub only: not for a 'hosts'
 * workspace, whose chunks go to hosts. Prints nothing; sets each item's
 * committed, and the caller puts the others one by one (transfer_put says
 * why one fails). Uses o->parallel, o->progress and o->sent. */
void transfer_put_small(struct client *c, struct put_item *items, size_t n,
                        const struct put_opts *o);

struct get_opts {
	bool quiet;
	bool verbose;           /* say where the bytes came from (stderr), and each failed source */
	bool json;              /* print a report {path, local, sha256, written, sources…} */
	const char *host_ca;    /* CA file for hosts' and relays' https; NULL: the system store */
	int parallel;           /* chunk fetches in flight; 0: the default */
	bool force;             /* replace an existing local file whose content differs */
	atomic_llong *progress; /* a tree's progress: bytes received are added here */
	bool *written;          /* set when the file was (re)written */
};

/* Before a download of remote's version ver (sha256 expect, size bytes) to
 * dest: 0 when dest is free to be (re)written; 1 when it already holds that
 * content (said so unless o->quiet; nothing to do); -1 when it must be kept
 * (said why on stderr): other content without o->force, or not a regular
 * file. A symbolic link at dest is never followed. */
int transfer_local_check(const char *remote, const char *dest, const char *expect, int64_t size,
                         int64_t ver, const struct get_opts *o);

/* version 0 means the current one; local "-" writes to stdout. An existing
 * local file with other content is kept (exit 1) unless o->force; one with
 * the same content is left as it is (exit 0). Every chunk
 * comes from the nearest source that has it (client/chunkfetch.h): hosts
 * holding it, directly or through their relay, then the hub. */
int transfer_get(struct client *c, const char *remote, const char *local, int64_t version,
                 bool quiet);
int transfer_get_opts(struct client *c, const char *remote, const char *local, int64_t version,
                      const struct get_opts *o);

#endif
