/* serve_batch: many chunks in one answer, for another host syncing many
 * small files (fetch_batch.c is the other end).
 *
 *   POST /chunks/batch   Authorization: Bearer TOKEN (scope "chunks", as GET
 *                        /chunks/HASH), body {"hashes": [HASH, ...]}
 *
 * The answer (200, application/vnd.roost.chunks) has one frame per hash
 * asked, in order: "HASH SIZE\n" and SIZE bytes, or "HASH -\n" when this
 * host does not hold it (or it would take the answer past BATCH_MAX_BYTES:
 * ask again for the rest). Each chunk is hashed here before it is sent, as
 * GET /chunks/HASH does, and again by the receiver.
 * Bad input: 400 invalid_request, 413 too_many (more than BATCH_MAX_HASHES,
 * or a body past BATCH_MAX_BODY), 401/403 for the token.
 *
 * Threads: the content server's connection threads (one per connection);
 * the set of bodies being read is under its own lock. */
#include "host.h"
#include "serve_req.h"
#include "../core/content.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/token.h"
#include "../core/util.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH_MAX_HASHES 1024
#define BATCH_MAX_BODY   (BATCH_MAX_HASHES * 72 + 1024)
#define BATCH_MAX_BYTES  (32ll << 20)
#define COMMIT_WAIT_MS   10000 /* as serve.c's */

/* A request body being read; its address is the connection's con_cls. */
struct batch_body {
	char *buf;
	size_t len;
	bool too_big;
	struct batch_body *next;
};

/* The bodies in flight, so that the server's completion callback can tell
 * ours from its own uploads (serve_batch_release). */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static struct batch_body *live;

bool serve_batch_release(void *con_cls)
{
	pthread_mutex_lock(&live_mu);
	struct batch_body **p = &live;
	while (*p && *p != con_cls)
		p = &(*p)->next;
	struct batch_body *b = *p;
	if (b)
		*p = b->next;
	pthread_mutex_unlock(&live_mu);
	if (b) {
		free(b->buf);
		free(b);
	}
	return b != NULL;
}

/* The bearer token grants "chunks" in our workspace; else replies and false. */
static bool token_ok(struct host *h, struct MHD_Connection *conn)
{
	const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	const char *tok = authz && strncmp(authz, "Bearer ", 7) == 0 ? authz + 7 : NULL;
	const char *why = "a token signed by the hub is required";
	json_t *claims =
	    tok && *tok ? token_verify(tok, keyring_key, &h->keys, keyring_now_ms(&h->keys), &why)
	                : NULL;
	if (!claims) {
		serve_error(conn, MHD_HTTP_UNAUTHORIZED,
		            tok && *tok ? "invalid_token" : "unauthorized", why);
		return false;
	}
	bool ok = serve_claims_grant(claims, h->c.ws_id, "chunks");
	json_decref(claims);
	if (!ok)
		serve_error(conn, MHD_HTTP_FORBIDDEN, "wrong_scope",
		            "the token does not grant this on this host");
	return ok;
}

/* Wait for one commit of ours in flight (its chunks not yet in the index)
 * to land, until the mono ms deadline. False when none is in flight. The
 * hub tells other hosts of a version as soon as it is committed, so they may
 * ask before our index knows its chunks (serve.c waits the same way). */
static bool commit_landed(struct host *h, int64_t deadline)
{
	int64_t left = deadline - mono_ms();
	if (left <= 0)
		return false;
	struct timespec until = host_deadline(left);
	pthread_mutex_lock(&h->mu);
	bool any = h->committing > 0;
	if (any)
		pthread_cond_timedwait(&h->commit_cv, &h->mu, &until);
	pthread_mutex_unlock(&h->mu);
	return any;
}

/* Read the chunks of hashes not yet in data[] (up to the byte cap); the
 * number still missing. */
static size_t read_all(struct host *h, json_t *hashes, uint8_t **data, int64_t *len, int64_t *total)
{
	struct db *db = db_pool_acquire(h->idx);
	size_t missing = 0, i;
	json_t *v;
	/* one read snapshot for the batch, not a lock round per chunk */
	bool snapshot = db_exec(db, "BEGIN") == DB_DONE;
	bool *cached = xcalloc(json_array_size(hashes) + 1, sizeof *cached);
	json_array_foreach(hashes, i, v)
	{
		if (data[i])
			continue;
		int64_t n = *total < BATCH_MAX_BYTES ? serve_read_chunk(h, db, json_string_value(v),
		                                                        &data[i], &cached[i])
		                                     : -1;
		if (n > 0 && *total + n > BATCH_MAX_BYTES && *total > 0)
			n = -1; /* past the cap: the receiver asks again */
		if (n < 0) {
			free(data[i]);
			data[i] = NULL;
			missing++;
			continue;
		}
		len[i] = n;
		*total += n;
	}
	if (snapshot && db_exec(db, "COMMIT") != DB_DONE)
		db_rollback(db);
	json_array_foreach(hashes, i, v)
	{
		if (cached[i] && data[i]) /* used: last in the cache's LRU order */
			idx_cache_touch(db, json_string_value(v), len[i]);
	}
	free(cached);
	db_pool_release(h->idx, db);
	return missing;
}

/* The frames for hashes (validated), into one buffer. */
static enum MHD_Result answer(struct host *h, struct MHD_Connection *conn, json_t *hashes)
{
	size_t n = json_array_size(hashes), len = 0, cap = n * (HASH_HEX_LEN + 24);
	uint8_t **data = xcalloc(n, sizeof *data);
	int64_t *lens = xcalloc(n, sizeof *lens), total = 0, served = 0;
	int64_t deadline = mono_ms() + COMMIT_WAIT_MS;
	while (read_all(h, hashes, data, lens, &total) && total < BATCH_MAX_BYTES &&
	       commit_landed(h, deadline))
		;
	cap += (size_t)total;
	char *out = xmalloc(cap);
	for (size_t i = 0; i < n; i++) {
		const char *hash = json_string_value(json_array_get(hashes, i));
		if (!data[i]) {
			len += (size_t)snprintf(out + len, cap - len, "%s -\n", hash);
			continue;
		}
		len +=
		    (size_t)snprintf(out + len, cap - len, "%s %lld\n", hash, (long long)lens[i]);
		memcpy(out + len, data[i], (size_t)lens[i]);
		len += (size_t)lens[i];
		free(data[i]);
		served++;
	}
	free(data);
	free(lens);
	atomic_fetch_add(&h->served_chunks, served);
	struct MHD_Response *r = MHD_create_response_from_buffer(len, out, MHD_RESPMEM_MUST_FREE);
	content_headers(r, "application/vnd.roost.chunks", NULL, true);
	enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* The reason hashes is not a usable list, or NULL. */
static const char *hashes_invalid(json_t *hashes)
{
	if (!json_is_array(hashes) || !json_array_size(hashes))
		return "the body is {\"hashes\": [64 lowercase hex digits, ...]}";
	size_t i;
	json_t *v;
	json_array_foreach(hashes, i, v)
	{
		if (!hash_hex_valid(json_string_value(v)))
			return "a chunk is named by 64 lowercase hex digits";
	}
	return NULL;
}

/* Check the request's hashes; replies and NULL if they are not usable. */
static json_t *parse_hashes(struct MHD_Connection *conn, const struct batch_body *b)
{
	json_t *body = b->too_big ? NULL : json_loadb(b->buf ? b->buf : "", b->len, 0, NULL);
	json_t *hashes = json_object_get(body, "hashes");
	const char *bad = b->too_big ? NULL : hashes_invalid(hashes);
	if (b->too_big || (!bad && json_array_size(hashes) > BATCH_MAX_HASHES)) {
		serve_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_many",
		            "at most 1024 hashes in one request");
		json_decref(body);
		return NULL;
	}
	if (bad) {
		serve_error(conn, MHD_HTTP_BAD_REQUEST, "invalid_request", bad);
		json_decref(body);
		return NULL;
	}
	json_incref(hashes);
	json_decref(body);
	return hashes;
}

int serve_batch(struct host *h, struct MHD_Connection *conn, const char *data, size_t *size,
                void **con_cls)
{
	struct batch_body *b = *con_cls;
	if (!b) { /* the head: the token before any body is read */
		if (!token_ok(h, conn))
			return MHD_YES;
		b = xcalloc(1, sizeof *b);
		pthread_mutex_lock(&live_mu);
		b->next = live;
		live = b;
		pthread_mutex_unlock(&live_mu);
		*con_cls = b;
		return MHD_YES;
	}
	if (*size) {
		if (b->len + *size > BATCH_MAX_BODY) {
			b->too_big = true;
		} else if (!b->too_big) {
			b->buf = xrealloc(b->buf, b->len + *size + 1);
			memcpy(b->buf + b->len, data, *size);
			b->len += *size;
		}
		*size = 0;
		return MHD_YES;
	}
	json_t *hashes = parse_hashes(conn, b);
	if (!hashes)
		return MHD_YES;
	enum MHD_Result ret = answer(h, conn, hashes);
	json_decref(hashes);
	return ret;
}
