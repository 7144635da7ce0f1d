/* chunkfetch: the source picker — a version's chunks from the nearest source
 * that has them, with fallback. Used by roost get and by the host agent
 * (src/host/fetch.c), so every reader picks sources the same way.
 *
 * The hub's manifest (GET .../manifest) lists a version's chunks, the online
 * hosts holding each, the hosts' URLs (direct and through a relay) and a
 * chunk token. For every chunk we try, in order: the caller's local copy (a
 * hook: the host's folder or cache; roost get has none), each holder's direct
 * URL, each holder's relay URL, then the hub. Every chunk is verified against
 * its SHA-256 whatever the source. A source that fails (refused, timed out,
 * stalled, wrong bytes, token refused) is marked failed and skipped for the
 * chunks after; a 404 only means that holder lacks that chunk.
 *
 * Threads: a struct chunkfetch is shared by the workers chunkfetch_run starts
 * (the sources' state is atomic); each worker has its own curl handle. */
#ifndef ROOST_CHUNKFETCH_H
#define ROOST_CHUNKFETCH_H

#include "client.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define CHUNKFETCH_CONNECT_S 5  /* a source that does not answer by then: try the next */
#define CHUNKFETCH_STALL_S   30 /* … and one that sends nothing for this long */
#define CHUNKFETCH_THREADS   4  /* chunk fetches in flight by default */

enum cf_via { CF_LOCAL, CF_HOST, CF_RELAY, CF_HUB };

struct chunkfetch_opts {
	/* CA file for hosts' and relays' https certificates; NULL: the system store. */
	const char *peer_cacert;
	int64_t self_host_id; /* a host never fetches from itself; 0: not a host */
	/* true: the hub is asked for the chunk by hash (hosts: GET chunks/HASH);
	 * false: for its byte range of the version (GET content, any reader). */
	bool hub_by_hash;
	bool log_failures; /* log each source that fails (log_warn) */
};

/* What the caller adds to a parallel fetch (any hook may be NULL). */
struct cf_hooks {
	void *cls;
	/* Each worker thread's own state (e.g. a database connection). */
	void *(*worker_begin)(void *cls);
	void (*worker_end)(void *cls, void *ws);
	/* The chunk from a local copy into buf, verified: its size, or <0. */
	int64_t (*local)(void *cls, void *ws, const char *hash, int64_t size, uint8_t *buf);
	/* A chunk fetched from the network and verified (e.g. to keep it). */
	void (*fetched)(void *cls, void *ws, const char *hash, const uint8_t *buf, int64_t size,
	                enum cf_via via);
	/* The chunk's bytes at their offset of the file: 0 or -errno. With
	 * ordered, called in file order, one call at a time (a stream, a
	 * whole-file hash); else from any worker, in any order. */
	int (*write)(void *cls, int64_t off, const uint8_t *buf, size_t n);
	bool ordered;
	atomic_bool *stop; /* set: the fetch ends with -EINTR */
};

struct chunkfetch;

/* The picker for manifest m (borrowed; it must outlive the picker), asking
 * the hub as c (borrowed). NULL if a chunk lacks a valid hash or size. */
struct chunkfetch *chunkfetch_new(const struct client *c, json_t *m,
                                  const struct chunkfetch_opts *o);
void chunkfetch_free(struct chunkfetch *f);
/* The largest chunk's size: what a buffer for one chunk needs. */
size_t chunkfetch_max_chunk(const struct chunkfetch *f);
size_t chunkfetch_count(const struct chunkfetch *f);

/* Chunk idx from the network sources (hosts, relays, the hub) into buf (cap
 * bytes), verified: its size, or -ENODATA when no source had it (-EINVAL for
 * a bad index): apart from a local write's -EIO. *via gets where it came from. */
int64_t chunkfetch_chunk(struct chunkfetch *f, CURL *curl, size_t idx, uint8_t *buf, size_t cap,
                         enum cf_via *via);
/* Count a chunk the caller found locally (for the report). */
void chunkfetch_count_local(struct chunkfetch *f, int64_t size);

/* Every chunk with up to threads workers (< 1: CHUNKFETCH_THREADS); the
 * caller's thread is one of them, with ws and curl as its own (curl NULL: it
 * makes one). 0, -EBADMSG (the chunks do not tile the manifest's size), -EIO
 * (a chunk no source had: chunkfetch_error says why), -EINTR, or the write
 * hook's error. */
int chunkfetch_run(struct chunkfetch *f, const struct cf_hooks *hk, int threads, void *ws,
                   CURL *curl);
/* Why the last chunk that no source had failed (the hub's error message if it
 * answered one), or NULL. Borrowed. */
const char *chunkfetch_error(const struct chunkfetch *f);

/* Where the bytes came from: [{via, host_id?, label?, url, bytes, chunks}],
 * the sources that gave any. New reference. */
json_t *chunkfetch_report(const struct chunkfetch *f);
const char *chunkfetch_via_name(enum cf_via via);

#endif
