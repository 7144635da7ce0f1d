/* upload: the chunked upload protocol (probe missing chunks, PUT each one,
 * commit a version in one transaction) and the one-shot streaming upload for
 * clients that don't chunk (the hub chunks the body itself). */
#include "hub.h"
#include "meta.h"
#include "api.h"
#include "upload.h"
#include "tokens.h"
#include "possess.h"
#include "limits.h"
#include "acl.h"
#include "traffic.h"
#include "op_http.h"
#include "ops/ops.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/store.h"
#include "../core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_MAX 100000 /* hashes in one missing-chunks probe */

/* ---- chunk bookkeeping ----
 *
 * A chunk PUT only grants the workspace and the uploader the chunk (no row per
 * chunk otherwise); a version's commit records its chunks (ops/commit.c). */

/* Let workspace r->ws_id hold chunks the caller uploaded (and the hub's
 * store now holds: called only after the store committed them), and the
 * caller reference them (possess.c); the upload proves an unproven grant (the hub
 * has now seen the workspace's bytes). Losing these rows in a power cut only means
 * re-sending the chunks, so they are written without a WAL fsync per chunk
 * (db_set_relaxed, for these writes only). */
static int grant_chunks(struct req *r, const struct chunk_ref *chunks, size_t n)
{
	struct db *db = r->db;
	struct op_ctx c;
	req_op_ctx(r, &c);
	db_set_relaxed(db, true);
	int rc = db_begin(db);
	for (size_t i = 0; i < n && rc == DB_DONE; i++) {
		rc = db_run(db,
		            "INSERT INTO workspace_chunks(workspace_id, chunk_hash, touched_at) "
		            "VALUES(?,?,?) ON CONFLICT(workspace_id, chunk_hash) DO UPDATE SET "
		            "proven = 1 WHERE workspace_chunks.proven = 0",
		            r->ws_id, chunks[i].hash, now_ms());
		if (rc == DB_DONE)
			rc = possess_record(&c, &chunks[i], true);
	}
	if (rc == DB_DONE)
		rc = db_commit(db);
	else
		db_rollback(db);
	db_set_relaxed(db, false);
	return rc;
}

/* Chunks are not yet anywhere in the tree: whoever may write somewhere may
 * send them; each commit is checked against its path. */
static bool may_upload(struct req *r)
{
	struct acl *a = req_acl(r);
	if (!a) {
		reply_db_error(r);
		return false;
	}
	if (acl_writes_somewhere(a))
		return true;
	reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
	            "members of this workspace may read but not change it");
	return false;
}

bool upload_probe_fits(struct req *r)
{
	json_t *v = json_object_get(r->json, "size");
	if (!v)
		return true;
	int64_t size = -1;
	if (!json_get_int(r->json, "size", &size) || size < 0) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		            "'size' is the file's size in bytes (0 or more)");
		return false;
	}
	struct op_err e = {0};
	if (limits_fit_file(r->db, r->ws_id, size, &e))
		return true;
	reply_op_err(r, &e);
	return false;
}

enum MHD_Result api_chunks_missing(struct req *r)
{
	if (!may_upload(r))
		return MHD_YES;
	json_t *hashes = json_object_get(r->json, "hashes");
	if (!json_is_array(hashes))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "'hashes' (an array of SHA-256 hex strings) is required");
	if (json_array_size(hashes) > PROBE_MAX)
		return reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_many_hashes",
		                   "at most %d hashes per probe", PROBE_MAX);
	size_t i;
	json_t *h;
	json_array_foreach(hashes, i, h)
	{
		if (!hash_hex_valid(json_string_value(h)))
			return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_hash",
			                   "hashes[%zu] is not 64 lowercase hex digits", i);
	}
	if (!upload_probe_fits(r))
		return MHD_YES;
	/* A chunk the caller cannot prove it holds is "missing" even when the
	 * store has it: the answer must not tell whether anyone else has it. */
	size_t n = json_array_size(hashes);
	struct chunk_ref *refs = xcalloc(n ? n : 1, sizeof *refs);
	bool *held = xcalloc(n ? n : 1, sizeof *held), *on_host = xcalloc(n ? n : 1, sizeof *held),
	     *host_held = xcalloc(n ? n : 1, sizeof *held),
	     *unproven = xcalloc(n ? n : 1, sizeof *held);
	json_array_foreach(hashes, i, h)
	    memcpy(refs[i].hash, json_string_value(h), HASH_HEX_LEN + 1);
	struct op_ctx c;
	req_op_ctx(r, &c);
	int hosts = op_storage_hosts(&c);
	int rc = hosts < 0 ? DB_ERR : possess_check(&c, refs, n, held);
	if (rc == DB_DONE)
		rc = possess_on_host(&c, refs, n, on_host);
	if (rc == DB_DONE && hosts)
		rc = possess_host_held(&c, refs, n, host_held);
	if (rc == DB_DONE && !hosts)
		rc = possess_unproven(&c, refs, n, unproven);
	req_op_end(r, &c);
	/* Not missing, as a commit would take it (ops/commit.c): in the store
	 * and this workspace's (in 'hub' mode: proven); in 'hosts' mode held by
	 * one of its hosts; or uploaded by the caller to a host that holds it.
	 * (A host of a 'hosts' workspace does not probe: it commits pointers.) */
	json_t *missing = json_array();
	bool remote = store_is_remote(r->hub->store);
	json_array_foreach(hashes, i, h)
	{
		/* A proven grant in 'hub' mode came from a chunk the store took; on an
		 * S3 store that record is trusted rather than a HEAD per chunk (a
		 * commit still checks each chunk it names). */
		bool stored = held[i] && !unproven[i] &&
		              ((remote && !hosts) || store_size(r->hub->store, refs[i].hash) > 0);
		if (!stored && !(held[i] && host_held[i]) && !on_host[i])
			json_array_append(missing, h);
	}
	free(refs);
	free(held);
	free(on_host);
	free(host_held);
	free(unproven);
	if (rc != DB_DONE) {
		json_decref(missing);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "missing", missing));
}

/* ---- PUT /chunks/{hash} ---- */

static void writer_free(void *w)
{
	store_writer_abort(w);
}

enum MHD_Result api_chunk_put_begin(struct req *r)
{
	if (!hash_hex_valid(r->params[1]))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_hash",
		                   "the chunk id must be 64 lowercase hex digits");
	if (!may_upload(r))
		return MHD_YES;
	struct chunker_params p;
	if (hub_ws_chunking(r->db, r->ws_id, &p) != 0)
		return reply_db_error(r);
	r->body_limit = p.max;
	/* Uploaded but uncommitted bytes are bounded per uploader. */
	const char *cl = req_header(r, "Content-Length");
	int64_t more = cl ? strtoll(cl, NULL, 10) : 0;
	struct op_err e = {0};
	if (!limits_fit_pending(r, more > 0 && more < p.max ? more : p.max, false, &e))
		return reply_op_err(r, &e);
	r->state = store_writer_new(r->hub->store);
	r->state_free = writer_free;
	return MHD_YES;
}

int api_chunk_put_data(struct req *r, const char *data, size_t len)
{
	int rc = store_writer_write(r->state, data, len);
	if (store_err_full(rc)) {
		/* The temp file goes now, not after the answer: space is short. */
		store_writer_abort(r->state);
		r->state = NULL;
		req_out_of_space(r, "storing a chunk", rc);
	} else if (rc != 0) {
		r->stream_err = MHD_HTTP_SERVICE_UNAVAILABLE;
		r->stream_code = "storage_error";
		r->stream_msg = "the hub could not write the chunk";
	}
	return 0;
}

enum MHD_Result api_chunk_put(struct req *r)
{
	struct store_writer *w = r->state;
	r->state = NULL;
	int64_t size = store_writer_size(w);
	if (size == 0) {
		store_writer_abort(w);
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "empty_chunk",
		                   "a chunk cannot be empty");
	}
	int rc = store_writer_commit(w, r->params[1], NULL);
	if (rc == -EBADMSG) {
		atomic_fetch_add(&r->hub->m.chunks_rejected, 1);
		return reply_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "hash_mismatch",
		                   "the body's SHA-256 does not match %s; nothing stored",
		                   r->params[1]);
	}
	if (store_err_full(rc))
		return reply_out_of_space(r, "storing a chunk", rc);
	if (rc != 0)
		return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "storage_error",
		                   "the hub could not store the chunk: %s", strerror(-rc));
	hub_space_ok(r->hub);
	struct chunk_ref got = {.size = size};
	memcpy(got.hash, r->params[1], HASH_HEX_LEN + 1);
	if (grant_chunks(r, &got, 1) != DB_DONE)
		return reply_db_error(r);
	atomic_fetch_add(&r->hub->m.chunks_received, 1);
	atomic_fetch_add(&r->hub->m.chunk_bytes_received, size);
	traffic_add(r->hub, r->ws_id, size, 0);
	return reply_json(r, MHD_HTTP_CREATED,
	                  json_pack("{s:s, s:I}", "hash", r->params[1], "size", (json_int_t)size));
}

/* ---- committing a version (ops/commit.c does it) ---- */

/* The answer to a commit. */
static json_t *commit_json(const char *path, const struct commit_result *o)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:I}", "path", path, "id",
	                 (json_int_t)o->file_id, "version", (json_int_t)o->number, "version_id",
	                 (json_int_t)o->version_id, "size", (json_int_t)o->size, "hash", o->hash,
	                 "content_type", o->content_type, "chunks", (json_int_t)o->chunks);
}

/* A commit body's chunk list into *refs (owned), checked against size. */
static enum op_code parse_chunks(json_t *chunks, int64_t size, struct chunk_ref **refs,
                                 struct op_err *e)
{
	size_t n = json_array_size(chunks);
	*refs = xcalloc(n ? n : 1, sizeof **refs);
	int64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *c = json_array_get(chunks, i);
		const char *h = json_get_str(c, "hash");
		struct chunk_ref *ref = &(*refs)[i];
		if (!json_is_object(c) || !hash_hex_valid(h) ||
		    !json_get_int(c, "size", &ref->size) || ref->size <= 0 ||
		    ref->size > CHUNK_MAX_LIMIT)
			return op_fail(e, OP_INVALID_CHUNK,
			               "chunks[%zu] needs a hex 'hash' and a size in 1..%u", i,
			               CHUNK_MAX_LIMIT);
		memcpy(ref->hash, h, HASH_HEX_LEN + 1);
		total += ref->size;
	}
	if (total != size)
		return op_fail(e, OP_SIZE_MISMATCH,
		               "the chunks add up to %lld bytes, not size %lld", (long long)total,
		               (long long)size);
	return OP_OK;
}

/* The path member key of a JSON body, normalized (owned), or NULL with e. */
static char *body_path(json_t *body, const char *key, struct op_err *e)
{
	if (!json_is_string(json_object_get(body, key))) {
		op_fail(e, OP_INVALID_REQUEST, "'%s' (a string path) is required", key);
		return NULL;
	}
	const char *why;
	char *p = json_get_path(body, key, &why);
	if (!p)
		op_fail(e, OP_INVALID_PATH, "%s: %s", key, why);
	return p;
}

/* One commit body: checked in the order the API always has, then committed.
 * *path (owned) is set once the path is known. */
static enum op_code commit_body(struct op_ctx *c, json_t *body, char **path,
                                struct commit_result *out, struct op_err *e)
{
	const char *hash = json_get_str(body, "hash");
	const char *ctype = json_get_str(body, "content_type");
	json_t *chunks = json_object_get(body, "chunks");
	int64_t size, base = -1;
	struct chunk_ref *refs = NULL;
	*path = NULL;
	if (!json_get_int(body, "size", &size) || !hash || !json_is_array(chunks))
		return op_fail(e, OP_INVALID_REQUEST, "path, size, hash and chunks are required");
	if (size < 0)
		return op_fail(e, OP_INVALID_REQUEST, "size must not be negative");
	if (!hash_hex_valid(hash))
		return op_fail(e, OP_INVALID_HASH, "hash must be 64 lowercase hex digits");
	if (json_object_get(body, "content_type") && (!ctype || strlen(ctype) > 127 || !*ctype))
		return op_fail(e, OP_INVALID_REQUEST,
		               "content_type must be a string of 1..127 bytes");
	if (!(*path = body_path(body, "path", e)))
		return e->code;
	if (!op_require(c, *path, true, PERM_WRITE, ACL_NOW, e) ||
	    !tokens_grant_check(c, body, *path, &c->author_id, e))
		return e->code;
	enum op_code rc = parse_chunks(chunks, size, &refs, e);
	if (rc == OP_OK && json_object_get(body, "base_version_id") &&
	    (!json_get_int(body, "base_version_id", &base) || base < 0))
		rc = op_fail(e, OP_INVALID_REQUEST,
		             "base_version_id must be a version id, or 0 for a new file");
	if (rc == OP_OK) {
		struct commit_args a = {.path = *path,
		                        .size = size,
		                        .hash = hash,
		                        .chunks = refs,
		                        .n = json_array_size(chunks),
		                        .content_type = ctype,
		                        .base = base,
		                        .src = SRC_CLIENT};
		rc = op_commit(c, &a, out, e);
	}
	c->author_id = 0; /* a batch's next item has its own */
	free(refs);
	return rc;
}

enum MHD_Result api_commit(struct req *r)
{
	struct op_ctx c;
	struct op_err e = {0};
	struct commit_result out;
	char *path;
	req_op_ctx(r, &c);
	enum op_code rc = commit_body(&c, r->json, &path, &out, &e);
	req_op_end(r, &c);
	enum MHD_Result ret = rc == OP_OK ? reply_json(r, MHD_HTTP_CREATED, commit_json(path, &out))
	                                  : reply_op_err(r, &e);
	free(path);
	return ret;
}

#define BATCH_MAX 1000

/* POST /versions/batch {versions:[commit body…]}: many small files in one
 * transaction (one flush instead of one per file). Each item succeeds or
 * fails alone, in its savepoint; the answer lists each item's status and
 * body. A database failure fails the whole batch. */
enum MHD_Result api_commit_batch(struct req *r)
{
	json_t *items = json_object_get(r->json, "versions");
	if (!json_is_array(items) || !json_array_size(items) || json_array_size(items) > BATCH_MAX)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "versions is an array of 1..%d commits", BATCH_MAX);
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	struct op_ctx c;
	req_op_ctx(r, &c);
	c.batch = true;
	json_t *results = json_array(), *item;
	size_t i;
	bool failed = false;
	json_array_foreach(items, i, item)
	{
		struct op_err e = {0};
		struct commit_result out;
		char *path;
		enum op_code rc = commit_body(&c, item, &path, &out, &e);
		failed = rc == OP_DB; /* all or nothing */
		if (rc == OP_OK)
			json_array_append_new(results,
			                      json_pack("{s:i, s:o}", "status", MHD_HTTP_CREATED,
			                                "body", commit_json(path, &out)));
		else if (!failed)
			json_array_append_new(results, json_pack("{s:i, s:o}", "status",
			                                         (int)op_http_status(rc), "body",
			                                         op_err_json(&e)));
		op_err_fini(&e);
		free(path);
		if (failed)
			break;
	}
	req_op_end(r, &c);
	if (failed || meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		json_decref(results);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "results", results));
}

/* ---- PUT /upload?path=: the hub chunks the body ---- */

struct stream_up {
	struct hub *hub;
	struct req *req; /* owns this state, so outlives it */
	bool settled;    /* committed, or refused and freed by commit_version */
	char *path;
	struct chunker ch;
	struct store_writer *w;
	struct hasher *whole;
	struct chunk_ref *chunks;
	size_t n, cap;
	int64_t total;
	uint8_t head[SNIFF_BYTES]; /* the first bytes, for the content type */
	size_t head_len;
};

/* Chunks of a body that never reached its commit (too large, cut off) go at
 * once, unless something else holds them (possess_free). */
static void stream_abandon(struct stream_up *s)
{
	struct req *r = s->req;
	bool own = !r->db;
	if (own)
		r->db = db_pool_acquire(r->hub->pool);
	struct op_ctx c;
	req_op_ctx(r, &c);
	possess_free(&c, s->chunks, s->n);
	if (own) {
		db_pool_release(r->hub->pool, r->db);
		r->db = NULL;
	}
}

/* The disk is full: the body's chunks and its temp file go before the
 * answer (the client may look, and the space is short). */
static void stream_refuse_space(struct stream_up *s, int err)
{
	hub_space_full(s->hub, "storing an upload", err);
	stream_abandon(s);
	s->n = 0;
	store_writer_abort(s->w);
	s->w = NULL;
}

static void stream_free(void *p)
{
	struct stream_up *s = p;
	if (!s->settled && s->n)
		stream_abandon(s);
	store_writer_abort(s->w);
	hasher_free(s->whole);
	free(s->chunks);
	free(s->path);
	free(s);
}

static int stream_cut(struct stream_up *s)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->chunks = xrealloc(s->chunks, s->cap * sizeof *s->chunks);
	}
	struct chunk_ref *c = &s->chunks[s->n];
	c->size = store_writer_size(s->w);
	int rc = store_writer_commit(s->w, NULL, c->hash);
	s->w = NULL;
	if (rc == 0) {
		hub_space_ok(s->hub);
		s->n++;
		atomic_fetch_add(&s->hub->m.chunks_received, 1);
		atomic_fetch_add(&s->hub->m.chunk_bytes_received, c->size);
	}
	return rc;
}

enum MHD_Result api_upload_begin(struct req *r)
{
	char *path = req_path_arg(r, "path");
	if (!path)
		return MHD_YES;
	if (!acl_require(r, path, true, PERM_WRITE)) {
		free(path);
		return MHD_YES;
	}
	return upload_stream_start(r, path);
}

enum op_code upload_stream_begin(struct req *r, char *path, struct op_err *e)
{
	/* A refusal leaves no stream state behind (dav/ swaps states around
	 * this call and takes whatever r->state holds after it). */
	r->state = NULL;
	r->state_free = NULL;
	struct chunker_params p;
	enum op_code rc = OP_OK;
	if (!op_path_writable(path, e)) /* before the body comes */
		rc = e->code;
	else if (hub_ws_chunking(r->db, r->ws_id, &p) != 0)
		rc = op_db(e);
	if (rc != OP_OK) {
		free(path);
		return rc;
	}
	/* The body may not outgrow the max file size, nor with the uploader's
	 * other pending bytes the quota: refused before it is stored. */
	r->body_limit = limits_max_file(r->db, r->ws_id);
	const char *cl = req_header(r, "Content-Length");
	int64_t len = cl ? strtoll(cl, NULL, 10) : 0;
	if (len > r->body_limit)
		rc = op_fail(e, OP_FILE_TOO_LARGE,
		             "files in this workspace are limited to %lld bytes",
		             (long long)r->body_limit);
	else if (!limits_fit_pending(r, len > 0 ? len : 0, true, e))
		rc = e->code;
	if (rc != OP_OK) {
		free(path);
		return rc;
	}
	struct stream_up *s = xcalloc(1, sizeof *s);
	s->hub = r->hub;
	s->req = r;
	s->path = path;
	chunker_init(&s->ch, &p);
	s->whole = hasher_new();
	r->state = s;
	r->state_free = stream_free;
	return OP_OK;
}

enum MHD_Result upload_stream_start(struct req *r, char *path)
{
	struct op_err e = {0};
	return upload_stream_begin(r, path, &e) == OP_OK ? MHD_YES : reply_op_err(r, &e);
}

int api_upload_data(struct req *r, const char *data, size_t len)
{
	struct stream_up *s = r->state;
	const uint8_t *d = (const uint8_t *)data;
	hasher_update(s->whole, d, len);
	if (s->head_len < sizeof s->head) {
		size_t n = sizeof s->head - s->head_len < len ? sizeof s->head - s->head_len : len;
		memcpy(s->head + s->head_len, d, n);
		s->head_len += n;
	}
	s->total += (int64_t)len;
	traffic_add(r->hub, r->ws_id, (int64_t)len, 0);
	while (len > 0) {
		bool cut;
		size_t n = chunker_scan(&s->ch, d, len, &cut);
		if (!s->w)
			s->w = store_writer_new(s->hub->store);
		int rc = store_writer_write(s->w, d, n);
		if (rc == 0 && cut)
			rc = stream_cut(s);
		if (store_err_full(rc)) {
			stream_refuse_space(s, rc);
			req_out_of_space(r, "storing an upload", rc);
			return -1;
		}
		if (rc != 0) {
			r->stream_err = MHD_HTTP_SERVICE_UNAVAILABLE;
			r->stream_code = "storage_error";
			r->stream_msg = "the hub could not store the upload";
			return -1;
		}
		d += n;
		len -= n;
	}
	return 0;
}

json_t *upload_stream_commit(struct req *r, struct op_err *e)
{
	struct stream_up *s = r->state;
	int cut = s->w ? stream_cut(s) : 0;
	if (store_err_full(cut)) {
		stream_refuse_space(s, cut);
		op_fail(e, OP_NO_SPACE, "%s", OUT_OF_SPACE_MSG);
		return NULL;
	}
	if (cut != 0) {
		op_fail(e, OP_STORAGE, "the hub could not store the upload");
		return NULL;
	}
	char hash[HASH_HEX_LEN + 1], ctype[128];
	hasher_final_hex(s->whole, hash);
	const char *given = req_header(r, "Content-Type");
	if (given && strlen(given) < sizeof ctype && strncmp(given, "application/x-www", 17) != 0 &&
	    strcmp(given, "application/octet-stream") != 0)
		snprintf(ctype, sizeof ctype, "%s", given);
	else if (s->head_len)
		op_sniff_type(s->head, s->head_len, ctype);
	else
		snprintf(ctype, sizeof ctype, "application/x-empty");
	if (grant_chunks(r, s->chunks, s->n) != DB_DONE) {
		op_db(e);
		return NULL;
	}
	s->settled = true; /* op_commit frees a refused body's chunks */
	struct op_ctx c;
	struct commit_result out;
	struct commit_args a = {.path = s->path,
	                        .size = s->total,
	                        .hash = hash,
	                        .chunks = s->chunks,
	                        .n = s->n,
	                        .content_type = ctype,
	                        .base = -1,
	                        .src = SRC_BODY};
	req_op_ctx(r, &c);
	enum op_code rc = op_commit(&c, &a, &out, e);
	req_op_end(r, &c);
	return rc == OP_OK ? commit_json(s->path, &out) : NULL;
}

enum MHD_Result api_upload(struct req *r)
{
	struct op_err e = {0};
	json_t *v = upload_stream_commit(r, &e);
	return v ? reply_json(r, MHD_HTTP_CREATED, v) : reply_op_err(r, &e);
}

/* POST versions/restore {path, version}: an old version, while it is kept,
 * becomes the file's newest (a new version made of the same chunks). */
enum MHD_Result api_version_restore(struct req *r)
{
	int64_t number = 0;
	if (!json_get_int(r->json, "version", &number) || number < 1)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "path and version (a version number) are required");
	char *path = req_body_path(r, "path");
	if (!path)
		return MHD_YES;
	struct op_ctx c;
	struct op_err e = {0};
	struct commit_result out;
	req_op_ctx(r, &c);
	enum op_code rc = op_version_restore(&c, path, number, &out, &e);
	req_op_end(r, &c);
	enum MHD_Result ret = rc == OP_OK ? reply_json(r, MHD_HTTP_CREATED, commit_json(path, &out))
	                                  : reply_op_err(r, &e);
	free(path);
	return ret;
}
