/* possess: proof of possession — who uploaded which chunk, and what a caller
 * may name by hash (possess.c, docs/security.md).
 *
 * Threads: request threads and the jobs thread (GC drops lapsed uploads). */
#ifndef ROOST_HUB_POSSESS_H
#define ROOST_HUB_POSSESS_H

#include "hub.h"
#include "upload.h"

/* Who may reference a chunk by its hash (docs/security.md). A
 * caller's own uploads prove possession this long; they are its pending
 * (uploaded, not yet committed) bytes meanwhile. */
#define UPLOAD_PENDING_MS (24ll * 3600 * 1000)
/* Who uploads, as chunk_uploads names it: "u:USER", "h:HOST" or "s:LINK". */
struct op_ctx;
void possess_uploader(const struct op_ctx *oc, char out[32]);
/* held[i]: did the caller upload c[i] within the lease, or may it read a
 * version that uses it? One query per 256 distinct hashes. DB_DONE or error. */
int possess_check(struct op_ctx *oc, const struct chunk_ref *c, size_t n, bool *held);
/* on_host[i]: did the caller upload c[i] within the lease to a host of the
 * workspace that holds it ('ok', not revoked)? DB_DONE or error. */
int possess_on_host(struct op_ctx *oc, const struct chunk_ref *c, size_t n, bool *on_host);
/* held[i]: does a non-revoked host of the workspace hold c[i] ('ok')? */
int possess_host_held(struct op_ctx *oc, const struct chunk_ref *c, size_t n, bool *held);
/* unproven[i]: is the workspace's grant of c[i] unproven (a host named it;
 * the hub has not seen this workspace's bytes)? DB_DONE or error. */
int possess_unproven(struct op_ctx *oc, const struct chunk_ref *c, size_t n, bool *unproven);
/* Record that the caller uploaded c (in the caller's transaction); stored:
 * the hub itself put c in its store just now (a chunk PUT, a streamed upload,
 * after the store committed the object), not a host. */
int possess_record(struct op_ctx *oc, const struct chunk_ref *c, bool stored);
/* A stored upload is trusted this long to still be in the store (commit). */
#define STORED_TRUST_MS (3600 * 1000ll)
/* Did the hub put hash in its store itself within STORED_TRUST_MS (a
 * chunk_uploads row's stored_at, any uploader's), and no hub path has removed
 * it since (GC deletes those rows with the object, possess_free its own;
 * eviction and scrub clear stored_at)? DB_ROW (*size: the size the store
 * took), DB_DONE (no), or DB_ERR. */
int possess_stored_size(struct op_ctx *oc, const char *hash, int64_t *size);
/* A commit used these: they are no longer pending (in its transaction). */
int possess_consume(struct op_ctx *oc, const struct chunk_ref *c, size_t n);
/* The caller's pending bytes in its workspace. */
int possess_pending(struct op_ctx *oc, int64_t *bytes);
/* A refused upload: drop the caller's claims on c and delete the chunks no
 * version, other upload or other workspace holds. */
void possess_free(struct op_ctx *oc, const struct chunk_ref *c, size_t n);
#endif
