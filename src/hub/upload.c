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
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <errno.h>
#include <magic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_MAX 100000 /* hashes in one missing-chunks probe */

/* ---- content types (libmagic is not thread-safe: one handle, one lock) ---- */

static pthread_mutex_t magic_mu = PTHREAD_MUTEX_INITIALIZER;
/* libmagic's text tests scan the whole buffer; the head decides the type. */
#define SNIFF_BYTES 8192
static magic_t magic_handle;

static void sniff_type(const uint8_t *data, size_t len, char out[128])
{
	snprintf(out, 128, "application/octet-stream");
	if (len == 0)
		return;
	pthread_mutex_lock(&magic_mu);
	if (!magic_handle) {
		/* Skip the costly looks inside archives and documents: the MIME
		 * type of the outside is what a download needs. */
		magic_handle = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS |
		                          MAGIC_NO_CHECK_TAR | MAGIC_NO_CHECK_CDF |
		                          MAGIC_NO_CHECK_ELF | MAGIC_NO_CHECK_ENCODING);
		if (magic_handle && magic_load(magic_handle, NULL) != 0) {
			magic_close(magic_handle);
			magic_handle = NULL;
		}
	}
	const char *t = magic_handle ? magic_buffer(magic_handle, data, len) : NULL;
	if (t)
		snprintf(out, 128, "%s", t);
	pthread_mutex_unlock(&magic_mu);
}

static void sniff_stored_chunk(struct hub *hub, const char *hash, int64_t size, char out[128])
{
	uint8_t *buf = xmalloc((size_t)size);
	int64_t n = store_read(hub->store, hash, buf, (size_t)size);
	sniff_type(buf, n > 0 ? (size_t)(n < SNIFF_BYTES ? n : SNIFF_BYTES) : 0, out);
	free(buf);
}

/* ---- chunk bookkeeping ----
 *
 * The store itself says which chunks the hub holds: an object exists only once
 * it is whole and durable (fsync, rename, directory fsync). Uploads therefore
 * touch no database row per chunk; a version's commit records its chunks in
 * its own transaction. Objects never committed are orphans for GC to collect. */

/* Record a committed chunk (inside the commit's transaction). */
static int record_chunk(struct db *db, const char *hash, int64_t size)
{
	int64_t now = now_ms();
	int r = db_run(db,
	               "INSERT INTO chunks(hash, size, refcount, created_at) VALUES(?,?,0,?) "
	               "ON CONFLICT(hash) DO NOTHING",
	               "tii", hash, size, now);
	if (r == DB_DONE)
		r = db_run(db,
		           "INSERT INTO chunk_replicas(chunk_hash, holder, state, updated_at) "
		           "VALUES(?, 'hub', 'ok', ?) ON CONFLICT(chunk_hash, holder) DO UPDATE "
		           "SET state = 'ok', updated_at = excluded.updated_at",
		           "ti", hash, now);
	return r;
}

/* A host committing a version holds its chunks (it just read them from its
 * file): other hosts may fetch them from it at once. */
static int record_host_replica(struct req *r, const char *hash, int64_t now)
{
	char holder[32];
	snprintf(holder, sizeof holder, "host:%lld", (long long)r->host_id);
	return db_run(r->db,
	              "INSERT INTO chunk_replicas(chunk_hash, holder, host_id, state, updated_at) "
	              "VALUES(?,?,?,'ok',?) ON CONFLICT(chunk_hash, holder) DO UPDATE SET state = "
	              "'ok', updated_at = excluded.updated_at",
	              "ttii", hash, holder, r->host_id, now);
}

/* Let workspace r->ws_id hold chunks the caller uploaded, and the caller
 * reference them (possess.c). Losing these rows in a power cut only means
 * re-sending the chunks, so they are written without a WAL fsync per chunk
 * (db_set_relaxed, for these writes only). */
static int grant_chunks(struct req *r, const struct chunk_ref *chunks, size_t n)
{
	struct db *db = r->db;
	db_set_relaxed(db, true);
	int rc = db_begin(db);
	for (size_t i = 0; i < n && rc == DB_DONE; i++) {
		rc = db_run(db,
		            "INSERT INTO workspace_chunks(workspace_id, chunk_hash, touched_at) "
		            "VALUES(?,?,?) ON CONFLICT(workspace_id, chunk_hash) DO NOTHING",
		            "iti", r->ws_id, chunks[i].hash, now_ms());
		if (rc == DB_DONE)
			rc = possess_record(r, &chunks[i]);
	}
	if (rc == DB_DONE)
		rc = db_commit(db);
	else
		db_rollback(db);
	db_set_relaxed(db, false);
	return rc;
}

/* In a commit's transaction: the size of a chunk workspace ws may use and the
 * hub's storage holds, or -1, claiming it — its grant's touched_at is the
 * fence GC honours (jobs.c): on PostgreSQL the row lock also holds GC off
 * until this transaction ends. */
static int64_t claim_chunk_size(struct req *r, const char *hash)
{
	int64_t one = 0;
	if (db_int64(r->db, &one,
	             "UPDATE workspace_chunks SET touched_at = ? WHERE workspace_id = ? AND "
	             "chunk_hash = ? RETURNING 1",
	             "iit", now_ms(), r->ws_id, hash) != DB_ROW)
		return -1;
	int64_t n = store_size(r->hub->store, hash);
	return n > 0 ? n : -1;
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
	/* A chunk the caller cannot prove it holds is "missing" even when the
	 * store has it: the answer must not tell whether anyone else has it. */
	size_t n = json_array_size(hashes);
	struct chunk_ref *refs = xcalloc(n ? n : 1, sizeof *refs);
	bool *held = xcalloc(n ? n : 1, sizeof *held);
	json_array_foreach(hashes, i, h)
	    memcpy(refs[i].hash, json_string_value(h), HASH_HEX_LEN + 1);
	int rc = possess_check(r, refs, n, held);
	json_t *missing = json_array();
	json_array_foreach(hashes, i, h)
	{
		if (!held[i] || store_size(r->hub->store, refs[i].hash) <= 0)
			json_array_append(missing, h);
	}
	free(refs);
	free(held);
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
	if (!limits_allow_pending(r, more > 0 && more < p.max ? more : p.max, false))
		return MHD_YES;
	r->state = store_writer_new(r->hub->store);
	r->state_free = writer_free;
	return MHD_YES;
}

int api_chunk_put_data(struct req *r, const char *data, size_t len)
{
	if (store_writer_write(r->state, data, len) != 0) {
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
	if (rc != 0)
		return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "storage_error",
		                   "the hub could not store the chunk: %s", strerror(-rc));
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

/* ---- committing a version ---- */

/* A commit's transaction, or in a batch its savepoint in the batch's. */
static int tx_begin(struct req *r)
{
	return r->batch ? db_exec(r->db, "SAVEPOINT commit_one") : meta_begin(r->db, r->ws_id);
}

static void tx_rollback(struct req *r)
{
	if (r->batch)
		db_exec(r->db, "ROLLBACK TO SAVEPOINT commit_one; RELEASE SAVEPOINT commit_one");
	else
		db_rollback(r->db);
}

static int tx_commit(struct req *r)
{
	return r->batch ? db_exec(r->db, "RELEASE SAVEPOINT commit_one") : meta_commit(r);
}

/* The chunks among c that the caller cannot prove it holds (possess.c), as
 * a JSON array; NULL on a database error. */
static json_t *unproven(struct req *r, const struct chunk_ref *c, size_t n)
{
	bool *held = xcalloc(n ? n : 1, sizeof *held);
	json_t *out = json_array();
	if (possess_check(r, c, n, held) != DB_DONE) {
		json_decref(out);
		out = NULL;
	}
	for (size_t i = 0; out && i < n; i++)
		if (!held[i])
			json_array_append_new(out, json_string(c[i].hash));
	free(held);
	return out;
}

/* Where a commit's chunks come from. */
enum chunk_src {
	SRC_CLIENT,  /* named by the client: each must pass possess_check */
	SRC_BODY,    /* sent in this request's body */
	SRC_VERSION, /* a version the caller may read */
};

static enum MHD_Result commit_chunks(struct req *r, const char *path, int64_t size,
                                     const char *hash, const struct chunk_ref *chunks, size_t n,
                                     const char *ctype_in, int64_t base, bool proven);

/* Commit path as a new version made of chunks, in one transaction. Replies.
 * base >= 0 makes it conditional: the file's current version id must be base
 * (0: the file must not exist), else 409 version_conflict. A refused upload
 * frees its chunks at once: a body's always, a client's when a size limit or
 * the quota refused it (it cannot be committed as it is). */
static enum MHD_Result commit_version(struct req *r, const char *path, int64_t size,
                                      const char *hash, const struct chunk_ref *chunks, size_t n,
                                      const char *ctype_in, int64_t base, enum chunk_src src)
{
	r->limit_refused = false;
	enum MHD_Result ret =
	    commit_chunks(r, path, size, hash, chunks, n, ctype_in, base, src != SRC_CLIENT);
	if (!r->committed && (src == SRC_BODY || (src == SRC_CLIENT && r->limit_refused)))
		possess_free(r, chunks, n);
	return ret;
}

static enum MHD_Result commit_chunks(struct req *r, const char *path, int64_t size,
                                     const char *hash, const struct chunk_ref *chunks, size_t n,
                                     const char *ctype_in, int64_t base, bool proven)
{
	char *parent = NULL, *name = NULL;
	enum MHD_Result ret;
	r->committed = false;
	if (!req_path_writable(r, path))
		return MHD_YES;
	if (!path_split(path, &parent, &name))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_path",
		                   "a file cannot be written at the workspace root itself");
	if (tx_begin(r) != DB_DONE) {
		ret = reply_db_error(r);
		goto out;
	}
	/* The logical size first: it is known without touching a chunk. */
	if (!limits_allow_file(r, size)) {
		tx_rollback(r);
		r->limit_refused = true;
		ret = MHD_YES;
		goto out;
	}
	/* Every chunk must be held by the caller, with the size it claims. */
	json_t *missing = proven ? json_array() : unproven(r, chunks, n);
	if (!missing)
		goto db_fail;
	bool unheld = json_array_size(missing) > 0;
	int64_t held = -1;
	for (size_t i = 0; i < n && !unheld; i++) {
		/* a chunk listed again in a row is claimed once */
		if (i == 0 || strcmp(chunks[i].hash, chunks[i - 1].hash) != 0)
			held = claim_chunk_size(r, chunks[i].hash);
		if (held < 0) {
			json_array_append_new(missing, json_string(chunks[i].hash));
		} else if (held != chunks[i].size) {
			json_decref(missing);
			tx_rollback(r);
			ret = reply_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "size_mismatch",
			                  "chunks[%zu] is %lld bytes, not %lld", i, (long long)held,
			                  (long long)chunks[i].size);
			goto out;
		}
	}
	if (json_array_size(missing)) {
		tx_rollback(r);
		ret = reply_error_extra(r, MHD_HTTP_CONFLICT, "missing_chunks",
		                        "the hub does not hold some chunks; upload them and commit "
		                        "again",
		                        json_pack("{s:o}", "missing", missing));
		goto out;
	}
	json_decref(missing);

	int64_t folder = 0, other = 0, file_id = 0, number = 0, vid = 0, now = now_ms();
	int64_t author = r->author_id ? r->author_id : r->user_id;
	bool created;
	int rc = meta_mkdirs(r->db, r->ws_id, parent, author, &folder, &created);
	if (rc == -EEXIST || (rc == 0 && meta_folder_id(r->db, r->ws_id, path, &other) == 1)) {
		tx_rollback(r);
		ret = reply_error(r, MHD_HTTP_CONFLICT, "exists",
		                  "a file or folder is in the way of %s", path);
		goto out;
	}
	if (rc != 0)
		goto db_fail;
	if (base >= 0) {
		int64_t cur = 0;
		rc = db_int64(
		    r->db, &cur,
		    "SELECT COALESCE(current_version_id, 0) FROM files WHERE folder_id = ? "
		    "AND name = ? AND deleted_at IS NULL",
		    "it", folder, name);
		if (rc == DB_ERR)
			goto db_fail;
		if (cur != base) {
			tx_rollback(r);
			ret = reply_error_extra(
			    r, MHD_HTTP_CONFLICT, "version_conflict",
			    "the file changed since the base version",
			    json_pack("{s:I}", "current_version_id", (json_int_t)cur));
			goto out;
		}
	}
	char ctype[128];
	if (ctype_in)
		snprintf(ctype, sizeof ctype, "%s", ctype_in);
	else if (n > 0)
		sniff_stored_chunk(r->hub, chunks[0].hash, chunks[0].size, ctype);
	else
		snprintf(ctype, sizeof ctype, "application/x-empty");

	rc =
	    db_int64(r->db, &file_id,
	             "SELECT id FROM files WHERE folder_id = ? AND name = ? AND deleted_at IS NULL",
	             "it", folder, name);
	if (rc == DB_DONE)
		rc = db_int64(r->db, &file_id,
		              "INSERT INTO files(workspace_id, folder_id, name, size, created_at, "
		              "updated_at) VALUES(?,?,?,?,?,?) RETURNING id",
		              "iitiii", r->ws_id, folder, name, size, now, now);
	if (rc != DB_ROW ||
	    db_int64(r->db, &number,
	             "SELECT COALESCE(MAX(number), 0) + 1 FROM file_versions WHERE file_id = ?",
	             "i", file_id) != DB_ROW ||
	    db_int64(r->db, &vid,
	             "INSERT INTO file_versions(file_id, number, hash, size, content_type, "
	             "created_by, created_at) VALUES(?,?,?,?,?,?,?) RETURNING id",
	             "iititii", file_id, number, hash, size, ctype, author, now) != DB_ROW)
		goto db_fail;
	int64_t off = 0;
	for (size_t i = 0; i < n; i++) {
		if (record_chunk(r->db, chunks[i].hash, chunks[i].size) != DB_DONE ||
		    db_run(r->db,
		           "INSERT INTO version_chunks(version_id, idx, chunk_hash, chunk_offset, "
		           "size) VALUES(?,?,?,?,?)",
		           "iitii", vid, (int64_t)i, chunks[i].hash, off,
		           chunks[i].size) != DB_DONE ||
		    db_run(
		        r->db,
		        "UPDATE chunks SET refcount = refcount + 1, unref_at = NULL WHERE hash = ?",
		        "t", chunks[i].hash) != DB_DONE ||
		    (r->host_id && record_host_replica(r, chunks[i].hash, now) != DB_DONE))
			goto db_fail;
		off += chunks[i].size;
	}
	if (db_run(r->db,
	           "UPDATE files SET current_version_id = ?, size = ?, content_type = ?, "
	           "updated_at = ?, updated_by = ? WHERE id = ?",
	           "iitiii", vid, size, ctype, now, author, file_id) != DB_DONE ||
	    possess_consume(r, chunks, n) != DB_DONE ||
	    meta_change(r->db, r->ws_id, "file.version", "file",
	                json_pack("{s:I, s:s, s:I, s:I, s:I, s:s}", "id", (json_int_t)file_id,
	                          "path", path, "version", (json_int_t)number, "version_id",
	                          (json_int_t)vid, "size", (json_int_t)size, "hash", hash)) != 0 ||
	    meta_audit(r, "file.version", path,
	               json_pack("{s:I, s:I}", "version", (json_int_t)number, "size",
	                         (json_int_t)size)) != 0 ||
	    tx_commit(r) != DB_DONE)
		goto db_fail;
	atomic_fetch_add(&r->hub->m.versions_committed, 1);
	r->committed = true;
	ret = reply_json(r, MHD_HTTP_CREATED,
	                 json_pack("{s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:I}", "path", path, "id",
	                           (json_int_t)file_id, "version", (json_int_t)number, "version_id",
	                           (json_int_t)vid, "size", (json_int_t)size, "hash", hash,
	                           "content_type", ctype, "chunks", (json_int_t)n));
	goto out;
db_fail:
	tx_rollback(r);
	ret = reply_db_error(r);
out:
	free(parent);
	free(name);
	return ret;
}

enum MHD_Result api_commit(struct req *r)
{
	const char *hash = json_get_str(r->json, "hash");
	const char *ctype = json_get_str(r->json, "content_type");
	json_t *chunks = json_object_get(r->json, "chunks");
	int64_t size;
	if (!json_get_int(r->json, "size", &size) || !hash || !json_is_array(chunks))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "path, size, hash and chunks are required");
	if (size < 0)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "size must not be negative");
	if (!hash_hex_valid(hash))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_hash",
		                   "hash must be 64 lowercase hex digits");
	if (json_object_get(r->json, "content_type") && (!ctype || strlen(ctype) > 127 || !*ctype))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "content_type must be a string of 1..127 bytes");
	char *path = req_body_path(r, "path");
	if (!path)
		return MHD_YES;
	if (!acl_require(r, path, true, PERM_WRITE) ||
	    !tokens_upload_grant(r, path, &r->author_id)) {
		free(path);
		return MHD_YES;
	}
	size_t n = json_array_size(chunks);
	struct chunk_ref *refs = xcalloc(n ? n : 1, sizeof *refs);
	int64_t total = 0;
	enum MHD_Result ret;
	for (size_t i = 0; i < n; i++) {
		json_t *c = json_array_get(chunks, i);
		const char *h = json_get_str(c, "hash");
		if (!json_is_object(c) || !hash_hex_valid(h) ||
		    !json_get_int(c, "size", &refs[i].size) || refs[i].size <= 0 ||
		    refs[i].size > CHUNK_MAX_LIMIT) {
			ret = reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_chunk",
			                  "chunks[%zu] needs a hex 'hash' and a size in 1..%u", i,
			                  CHUNK_MAX_LIMIT);
			goto out;
		}
		memcpy(refs[i].hash, h, HASH_HEX_LEN + 1);
		total += refs[i].size;
	}
	if (total != size) {
		ret = reply_error(r, MHD_HTTP_UNPROCESSABLE_CONTENT, "size_mismatch",
		                  "the chunks add up to %lld bytes, not size %lld",
		                  (long long)total, (long long)size);
		goto out;
	}
	int64_t base = -1;
	if (json_object_get(r->json, "base_version_id") &&
	    (!json_get_int(r->json, "base_version_id", &base) || base < 0)) {
		ret = reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                  "base_version_id must be a version id, or 0 for a new file");
		goto out;
	}
	ret = commit_version(r, path, size, hash, refs, n, ctype, base, SRC_CLIENT);
out:
	r->author_id = 0; /* a batch's next item has its own */
	free(refs);
	free(path);
	return ret;
}

#define BATCH_MAX 1000

/* POST /versions/batch {versions:[commit body…]}: many small files in one
 * transaction (one flush instead of one per file). Each item succeeds or
 * fails alone; the answer lists each item's status and body. */
enum MHD_Result api_commit_batch(struct req *r)
{
	json_t *items = json_object_get(r->json, "versions");
	if (!json_is_array(items) || !json_array_size(items) || json_array_size(items) > BATCH_MAX)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "versions is an array of 1..%d commits", BATCH_MAX);
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	json_t *results = json_array(), *whole = r->json, *item;
	size_t i;
	bool failed = false;
	r->batch = true;
	json_array_foreach(items, i, item)
	{
		r->json = item;
		r->cap_status = 0;
		api_commit(r);
		if (r->cap_status == MHD_HTTP_SERVICE_UNAVAILABLE || !r->cap_status) {
			failed = true; /* the database failed: all or nothing */
			break;
		}
		json_array_append_new(results, json_pack("{s:i, s:O}", "status", (int)r->cap_status,
		                                         "body", r->cap_body));
	}
	r->batch = false;
	r->json = whole;
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
	possess_free(r, s->chunks, s->n);
	if (own) {
		db_pool_release(r->hub->pool, r->db);
		r->db = NULL;
	}
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

enum MHD_Result upload_stream_start(struct req *r, char *path)
{
	/* A refusal leaves no stream state behind (dav.c swaps states around
	 * this call and takes whatever r->state holds after it). */
	r->state = NULL;
	r->state_free = NULL;
	if (!req_path_writable(r, path)) { /* before the body comes */
		free(path);
		return MHD_YES;
	}
	struct chunker_params p;
	if (hub_ws_chunking(r->db, r->ws_id, &p) != 0) {
		free(path);
		return reply_db_error(r);
	}
	/* The body may not outgrow the max file size, nor with the uploader's
	 * other pending bytes the quota: refused before it is stored. */
	r->body_limit = limits_max_file(r->db, r->ws_id);
	const char *cl = req_header(r, "Content-Length");
	int64_t len = cl ? strtoll(cl, NULL, 10) : 0;
	if (len > r->body_limit) {
		free(path);
		return reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "file_too_large",
		                   "files in this workspace are limited to %lld bytes",
		                   (long long)r->body_limit);
	}
	if (!limits_allow_pending(r, len > 0 ? len : 0, true) && !r->stream_err) {
		free(path);
		return MHD_YES;
	}
	struct stream_up *s = xcalloc(1, sizeof *s);
	s->hub = r->hub;
	s->req = r;
	s->path = path;
	chunker_init(&s->ch, &p);
	s->whole = hasher_new();
	r->state = s;
	r->state_free = stream_free;
	return MHD_YES;
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

enum MHD_Result api_upload(struct req *r)
{
	struct stream_up *s = r->state;
	if (s->w && stream_cut(s) != 0)
		return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "storage_error",
		                   "the hub could not store the upload");
	char hash[HASH_HEX_LEN + 1], ctype[128];
	hasher_final_hex(s->whole, hash);
	const char *given = req_header(r, "Content-Type");
	if (given && strlen(given) < sizeof ctype && strncmp(given, "application/x-www", 17) != 0 &&
	    strcmp(given, "application/octet-stream") != 0)
		snprintf(ctype, sizeof ctype, "%s", given);
	else if (s->head_len)
		sniff_type(s->head, s->head_len, ctype);
	else
		snprintf(ctype, sizeof ctype, "application/x-empty");
	if (grant_chunks(r, s->chunks, s->n) != DB_DONE)
		return reply_db_error(r);
	s->settled = true;
	return commit_version(r, s->path, s->total, hash, s->chunks, s->n, ctype, -1, SRC_BODY);
}

/* Commit version vid's chunks (no bytes copied) as a new version of path. */
static enum MHD_Result commit_from_version(struct req *r, const char *path, int64_t vid,
                                           int64_t size, const char *hash, const char *ctype,
                                           int64_t base)
{
	struct db_stmt *st = db_query(
	    r->db, "SELECT chunk_hash, size FROM version_chunks WHERE version_id = ? ORDER BY idx",
	    "i", vid);
	size_t n = 0, cap = 16;
	struct chunk_ref *refs = xcalloc(cap, sizeof *refs);
	while (st && db_step(st) == DB_ROW) {
		if (n == cap)
			refs = xrealloc(refs, (cap *= 2) * sizeof *refs);
		snprintf(refs[n].hash, sizeof refs[n].hash, "%s", db_col_text(st, 0));
		refs[n++].size = db_col_int64(st, 1);
	}
	db_finalize(st);
	/* The caller may read the source version: its chunks are proven. */
	enum MHD_Result ret =
	    commit_version(r, path, size, hash, refs, n, ctype, base, SRC_VERSION);
	free(refs);
	return ret;
}

enum MHD_Result upload_copy_version(struct req *r, const char *path, const struct file_info *src)
{
	return commit_from_version(r, path, src->version_id, src->size, src->hash,
	                           src->content_type[0] ? src->content_type : NULL, -1);
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
	enum MHD_Result ret = MHD_YES;
	struct file_info fi;
	int rc = meta_file_get(r->db, r->ws_id, path, &fi);
	if (rc != 1) {
		ret = rc == 0 ? reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such file: %s",
		                            path)
		              : reply_db_error(r);
		goto out;
	}
	if (!acl_require(r, path, true, PERM_WRITE))
		goto out;
	struct db_stmt *st = db_query(r->db,
	                              "SELECT v.id, v.size, v.hash, v.content_type FROM "
	                              "file_versions v WHERE v.file_id = ? AND v.number = ?",
	                              "ii", fi.id, number);
	int64_t vid = 0, size = 0;
	char hash[HASH_HEX_LEN + 1] = "", ctype[128] = "";
	if (st && db_step(st) == DB_ROW) {
		vid = db_col_int64(st, 0);
		size = db_col_int64(st, 1);
		snprintf(hash, sizeof hash, "%s", db_col_text(st, 2));
		snprintf(ctype, sizeof ctype, "%s", db_col_text(st, 3) ? db_col_text(st, 3) : "");
	}
	db_finalize(st);
	if (!vid) {
		ret = reply_error(r, MHD_HTTP_NOT_FOUND, "no_such_version",
		                  "%s has no version %lld (any more)", path, (long long)number);
		goto out;
	}
	/* Conditional on the version current now, so a concurrent edit wins. */
	ret = commit_from_version(r, path, vid, size, hash, ctype[0] ? ctype : NULL, fi.version_id);
out:
	free(path);
	return ret;
}
