/* limits: the per-token request rate, max file size, quota and pending
 * uploads (limits.c).
 *
 * Threads: request threads; the limiter's buckets have their own lock. */
#ifndef ROOST_HUB_LIMITS_H
#define ROOST_HUB_LIMITS_H

#include "hub.h"

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
 * are bounded by the max file size and what is left of the quota. If not:
 * false with upload_limit or quota_exceeded in *e (or db_unavailable); with
 * defer, true with r->stream_err set instead, so the body is read, dropped and
 * then refused (simple clients cannot read an answer sent while they are
 * still sending). */
struct op_err;
bool limits_fit_pending(struct req *r, int64_t more, bool defer, struct op_err *e);
/* limits_fit_file, limits_fit_quota: ops/ops.h */
/* The bytes that count against workspace ws's quota. */
int limits_used(struct db *db, int64_t ws, int64_t *used);
#endif
