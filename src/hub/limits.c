/* limits: per-token request rate (core/ratelimit's token buckets), and the
 * workspace's file size and storage quota checks. */
#include "hub.h"
#include "../core/ratelimit.h"
#include "possess.h"
#include "limits.h"
#include "op_http.h"
#include "ops/ops.h"
#include "../core/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096 /* open-addressed table of tokens seen recently */

/* One token's bucket (core/ratelimit.h); b.at_ms is when it was last used. */
struct slot {
	int64_t token_id; /* 0: free */
	struct bucket b;
};

struct limiter {
	pthread_mutex_t mu;
	double rate, burst;
	struct slot s[BUCKETS];
};

struct limiter *limiter_new(double rate_per_s)
{
	if (rate_per_s <= 0)
		return NULL;
	struct limiter *l = xcalloc(1, sizeof *l);
	pthread_mutex_init(&l->mu, NULL);
	l->rate = rate_per_s;
	l->burst = rate_per_s * 2;
	return l;
}

void limiter_free(struct limiter *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->mu);
	free(l);
}

int64_t limiter_take(struct limiter *l, int64_t token_id)
{
	if (!l)
		return 0;
	int64_t now = mono_ms();
	pthread_mutex_lock(&l->mu);
	size_t h = (size_t)((uint64_t)token_id * 0x9E3779B97F4A7C15ull >> 52) % BUCKETS;
	struct slot *b = NULL, *stalest = NULL;
	for (size_t i = 0; i < 8; i++) { /* a short probe; the stalest slot is reused */
		struct slot *c = &l->s[(h + i) % BUCKETS];
		if (c->token_id == token_id || c->token_id == 0) {
			b = c;
			break;
		}
		if (!stalest || c->b.at_ms < stalest->b.at_ms)
			stalest = c;
	}
	if (!b)
		b = stalest;
	if (b->token_id != token_id) {
		b->token_id = token_id;
		b->b = (struct bucket){0}; /* starts full */
	}
	int64_t wait_ms = bucket_wait_ms(&b->b, l->rate, l->burst, 1, now);
	if (wait_ms == 0)
		bucket_take(&b->b, l->rate, l->burst, 1, now);
	pthread_mutex_unlock(&l->mu);
	return wait_ms;
}

/* Unset (or 0) is the default: a file's size is its logical bytes, which a
 * commit can name without sending them (one chunk listed many times), and
 * every host that pins the folder writes them all. */
#define MAX_FILE_SQL                                                                               \
	"CASE WHEN COALESCE(max_file_bytes, 0) > 0 THEN max_file_bytes ELSE " MAX_FILE_STR " END"
#define MAX_FILE_STR "68719476736"
_Static_assert(MAX_FILE_DEFAULT == 68719476736ll, "MAX_FILE_STR follows MAX_FILE_DEFAULT");

int64_t limits_max_file(struct db *db, int64_t ws)
{
	int64_t v = MAX_FILE_DEFAULT;
	db_int64(db, &v, "SELECT " MAX_FILE_SQL " FROM workspaces WHERE id = ?", ws);
	return v;
}

int limits_used(struct db *db, int64_t ws, int64_t *used)
{
	/* Every version of a live file counts whole: the total the database's
	 * triggers keep (db/schema.c, migration 19), not a sum of every version. */
	return db_int64(db, used,
	                "SELECT used_bytes FROM workspace_counters WHERE workspace_id = ?",
	                ws) == DB_ROW
	           ? 0
	           : DB_ERR;
}

/* Do bytes more fit the workspace's quota (> 0)? Else quota_exceeded. */
static bool within_quota(struct db *db, int64_t ws, int64_t quota, int64_t bytes, struct op_err *e)
{
	int64_t used = 0;
	if (limits_used(db, ws, &used) != 0) {
		op_db(e);
		return false;
	}
	if (used + bytes > quota) {
		op_fail(e, OP_QUOTA_EXCEEDED,
		        "this would take the workspace to %lld of its %lld bytes",
		        (long long)(used + bytes), (long long)quota);
		return false;
	}
	return true;
}

int limits_ws(struct db *db, int64_t ws, int64_t *max_file, int64_t *quota)
{
	struct db_stmt *st = db_query(
	    db, "SELECT " MAX_FILE_SQL ", COALESCE(quota_bytes, 0) FROM workspaces WHERE id = ?",
	    ws);
	if (!st || db_step(st) != DB_ROW) {
		db_finalize(st);
		return DB_ERR;
	}
	*max_file = db_col_int64(st, 0);
	*quota = db_col_int64(st, 1);
	db_finalize(st);
	return 0;
}

bool limits_fit_size(struct db *db, int64_t ws, int64_t size, int64_t max_file, int64_t quota,
                     struct op_err *e)
{
	if (max_file > 0 && size > max_file) {
		op_fail(e, OP_FILE_TOO_LARGE, "files in this workspace are limited to %lld bytes",
		        (long long)max_file);
		return false;
	}
	/* Every version is kept, so a new one adds its whole size. */
	return quota <= 0 || within_quota(db, ws, quota, size, e);
}

bool limits_fit_file(struct db *db, int64_t ws, int64_t size, struct op_err *e)
{
	int64_t max_file = 0, quota = 0;
	if (limits_ws(db, ws, &max_file, &quota) != 0) {
		op_db(e);
		return false;
	}
	return limits_fit_size(db, ws, size, max_file, quota, e);
}

bool limits_fit_quota(struct db *db, int64_t ws, int64_t bytes, struct op_err *e)
{
	int64_t quota = 0;
	if (db_int64(db, &quota, "SELECT COALESCE(quota_bytes, 0) FROM workspaces WHERE id = ?",
	             ws) != DB_ROW) {
		op_db(e);
		return false;
	}
	return quota <= 0 || within_quota(db, ws, quota, bytes, e);
}

/* Refuse with 507: now, or (defer) once the body has been read and dropped. */
static bool refuse(struct req *r, bool defer, enum op_code code, const char *msg, int64_t pending,
                   int64_t limit, struct op_err *e)
{
	if (defer) {
		r->stream_err = (int)op_http_status(code);
		r->stream_code = op_code_json(code);
		r->stream_msg = msg;
		return true;
	}
	op_fail(e, code, "%s (%lld bytes uploaded and not committed; the limit is %lld)", msg,
	        (long long)pending, (long long)limit);
	return false;
}

bool limits_fit_pending(struct req *r, int64_t more, bool defer, struct op_err *e)
{
	int64_t cap = 0, quota = 0, used = 0, pending = 0;
	struct db_stmt *st = db_query(
	    r->db, "SELECT " MAX_FILE_SQL ", COALESCE(quota_bytes, 0) FROM workspaces WHERE id = ?",
	    r->ws_id);
	bool ok = st && db_step(st) == DB_ROW;
	if (ok) {
		cap = db_col_int64(st, 0);
		quota = db_col_int64(st, 1);
	}
	db_finalize(st);
	struct op_ctx c;
	req_op_ctx(r, &c);
	int prc = ok ? possess_pending(&c, &pending) : DB_ERR;
	req_op_end(r, &c);
	if (!ok || prc != DB_DONE || (quota > 0 && limits_used(r->db, r->ws_id, &used) != 0)) {
		op_db(e);
		return false;
	}
	if (quota > 0 && used + pending + more > quota)
		return refuse(r, defer, OP_QUOTA_EXCEEDED,
		              "this upload would take the workspace over its quota", pending, quota,
		              e);
	if (pending + more > cap)
		return refuse(r, defer, OP_UPLOAD_LIMIT,
		              "uploaded bytes not yet committed may not pass the max file size; "
		              "commit them (or wait a day) first",
		              pending, cap, e);
	return true;
}
