/* chunksrc: where the hub gets the bytes of a chunk it serves to a reader of
 * one workspace — its own store when the workspace's grant of the chunk is
 * proven, else an online host of that workspace holding it (directly, then
 * through the host's relay URL), verified against the hash; optionally kept
 * in the hub's store as cache (docs/security.md, docs/api.md).
 *
 * Threads: a struct chunksrc belongs to one download (one thread at a time:
 * libmicrohttpd calls a response's reader on one thread). The LRU touch
 * throttle is process-wide, behind a mutex. chunksrc_fetch_host is the part
 * any thread may call with its own database connection (the replicate job). */
#ifndef ROOST_HUB_CHUNKSRC_H
#define ROOST_HUB_CHUNKSRC_H

#include "hub.h"
#include "../core/hash.h"

/* Seconds a reader is told to wait (Retry-After) when no holder is online. */
#define CHUNKSRC_RETRY_AFTER_S 30

/* Fetch chunk hash into buf (capacity cap) from an online, non-revoked host
 * holding it 'ok': of workspace ws, or of any workspace when ws is 0 (the
 * hub's own store repair). Each host's direct URL, then its relay URL; a
 * chunk token the hub signs for that host's workspace. db is held throughout
 * (a job's connection). Returns the verified size, -ENOENT if no holder
 * served it, -EIO on a signing failure. *host (if not NULL) gets the host
 * that served it. */
int64_t chunksrc_fetch_host(struct db *db, int64_t ws, const char *hash, uint8_t *buf, size_t cap,
                            int64_t *host);

/* job_fetch_from_hosts' shape: chunk hash from any workspace's holder host
 * (ws 0) or ws's into store, verified, and its 'hub' replica row set 'ok'.
 * 0, -ENOENT no holder served it, <0 error. */
int chunksrc_fetch_to_store(struct db *db, struct store *store, int64_t ws, const char *hash);

/* Trust the CA bundle at path (NULL: the system's) for every fetch from a
 * host or a relay URL (roost serve --host-ca): hosts serving HTTPS with a
 * self-signed certificate, relays with their own CA. Call once, before any
 * thread fetches. 0, or -errno if path is not a readable file. */
int chunksrc_set_host_ca(const char *path);

struct chunksrc;

/* A source of ws's chunks for one download; reads the workspace's storage
 * mode and cache size with db. */
struct chunksrc *chunksrc_open(struct hub *hub, struct db *db, int64_t ws);
void chunksrc_close(struct chunksrc *s);

/* Chunk hash (size bytes) into buf, verified: from the store if proven (the
 * workspace's grant is proven) and the store holds it, else from a holder
 * host (kept in the store when the workspace caches). Takes pool connections
 * only as it needs them. Returns size, or -ENOENT no source had it, -EBADMSG
 * the store's copy is corrupt and no host had it, -EIO. */
int64_t chunksrc_read(struct chunksrc *s, const char *hash, int64_t size, bool proven,
                      uint8_t *buf);

/* A chunk of a version as a stream needs it. */
struct chunksrc_chunk {
	char hash[HASH_HEX_LEN + 1];
	int64_t size;
	bool proven;
};

/* Can every chunk of version_id overlapping [start, end) be served now (in
 * the store with a proven grant, or held by an online host)? 1 yes, 0 no
 * (*holders, if not NULL, gets [{id, label, last_seen}] of the hosts holding
 * the missing ones, new array), <0 database error. remote, if not NULL, gets
 * the first of those chunks the store cannot serve (hash "" if none): the one
 * a stream fetches from a host before its headers, so that an online holder
 * that fails is a 503 rather than a cut response. */
int chunksrc_available(struct db *db, struct store *store, int64_t ws, int64_t version_id,
                       int64_t start, int64_t end, json_t **holders, struct chunksrc_chunk *remote);

/* The hosts of ws holding hash, online or not, for a 503's detail.holders:
 * [{id, label, last_seen}] (new array). */
json_t *chunksrc_holders(struct db *db, int64_t ws, const char *hash);

/* Reply 503 chunk_unavailable with Retry-After and detail.holders (stolen). */
enum MHD_Result chunksrc_reply_unavailable(struct req *r, json_t *holders);

#endif
