/* ops/commit: committing a version — a file's new content named by its
 * chunks — in one transaction (in a batch, one savepoint of the batch's):
 * access, limits, proof of possession of every chunk, the folders on the way,
 * the optional base version, the rows, the feed and the audit log. Also a
 * version's copy (WebDAV COPY) and a version restore, both made of the
 * chunks of a version the caller may read.
 *
 * Runs on the calling thread. */
#include "../possess.h"
#include "ops.h"
#include "../../core/hash.h"
#include "../../core/path.h"
#include "../../core/util.h"

#include <stdlib.h>
#include <string.h>

/* ---- content types ---- */

static void sniff_stored_chunk(struct hub *hub, const char *hash, int64_t size, char out[128])
{
	uint8_t *buf = xmalloc((size_t)size);
	int64_t n = store_read(hub->store, hash, buf, (size_t)size);
	op_sniff_type(buf, n > 0 ? (size_t)(n < SNIFF_BYTES ? n : SNIFF_BYTES) : 0, out);
	free(buf);
}

/* ---- chunk bookkeeping ----
 *
 * The store itself says which chunks the hub holds: an object exists only once
 * it is whole and durable (fsync, rename, directory fsync). Uploads therefore
 * touch no database row per chunk; a version's commit records its chunks in
 * its own transaction. Objects never committed are orphans for GC to collect. */

/* Record a reference to a committed chunk (inside the commit's transaction):
 * its row made or its refcount raised, in one statement. stored: the hub's
 * store holds it (checked by this commit), so the hub is one of its holders
 * and its size is the one the store verified. */
static int record_chunk(struct db *db, const char *hash, int64_t size, bool stored)
{
	int64_t now = now_ms();
	/* A stored chunk's size is a fact; a pointer's is a claim, so a wrong
	 * claim made first (a host naming a hash) is put right here. */
	int r = db_run_later(db,
	                     stored ? "INSERT INTO chunks(hash, size, refcount, created_at) "
	                              "VALUES(?,?,1,?) ON CONFLICT(hash) DO UPDATE SET refcount = "
	                              "chunks.refcount + 1, unref_at = NULL, size = excluded.size"
	                            : "INSERT INTO chunks(hash, size, refcount, created_at) "
	                              "VALUES(?,?,1,?) ON CONFLICT(hash) DO UPDATE SET refcount = "
	                              "chunks.refcount + 1, unref_at = NULL",
	                     hash, size, now);
	if (r == DB_DONE && stored)
		r = db_run_later(
		    db,
		    "INSERT INTO chunk_replicas(chunk_hash, holder, state, updated_at) "
		    "VALUES(?, 'hub', 'ok', ?) ON CONFLICT(chunk_hash, holder) DO UPDATE "
		    "SET state = 'ok', updated_at = excluded.updated_at",
		    hash, now);
	return r;
}

/* A host committing a version holds its chunks (it just read them from its
 * file): other hosts may fetch them from it at once. */
static int record_host_replica(struct op_ctx *c, const char *hash, int64_t now)
{
	char holder[32];
	snprintf(holder, sizeof holder, "host:%lld", (long long)c->host_id);
	return db_run_later(
	    c->db,
	    "INSERT INTO chunk_replicas(chunk_hash, holder, host_id, state, updated_at) "
	    "VALUES(?,?,?,'ok',?) ON CONFLICT(chunk_hash, holder) DO UPDATE SET state = "
	    "'ok', updated_at = excluded.updated_at",
	    hash, holder, c->host_id, now);
}

/* ---- where a commit's chunks are (docs/security.md, "chunk hashes") ----
 *
 * A chunk is committed from the hub's store when the caller proved it holds
 * the bytes (possess.c) and the workspace's grant is proven. The store need
 * not hold it when:
 *  - the caller is a host of a 'hosts' workspace: a pointer commit — the
 *    host holds what it names (its folder file is the copy); or
 *  - a non-revoked host of the workspace holds it 'ok' and the caller
 *    uploaded it (a chunk_uploads row of its own: an upload to that host),
 *    or the commit copies a version, or the workspace is in 'hosts' mode and
 *    the caller may read a version that uses it.
 * Either way a new grant is unproven (proven = 0): the hub never serves that
 * workspace its store's copy of the chunk, which another workspace may have
 * stored, until it fetched the bytes from the workspace's own host. */

struct chunk_rules {
	bool hosts;   /* the workspace keeps its bytes on hosts */
	bool pointer; /* a host of a 'hosts' workspace naming its own chunks */
	enum chunk_src src;
};

/* The workspace's settings a commit reads: once per batch (ops.h). 0 or DB_ERR. */
static int ws_settings(struct op_ctx *c)
{
	if (c->batch && c->ws.known)
		return 0;
	struct db_stmt *st =
	    db_query(c->db, "SELECT storage FROM workspaces WHERE id = ?", c->ws_id);
	int hosts = st && db_step(st) == DB_ROW ? strcmp(db_col_text(st, 0), "hosts") == 0 : -1;
	db_finalize(st);
	if (hosts < 0 || limits_ws(c->db, c->ws_id, &c->ws.max_file, &c->ws.quota) != 0)
		return DB_ERR;
	c->ws.hosts = hosts;
	c->ws.known = c->batch;
	return 0;
}

int op_storage_hosts(struct op_ctx *c)
{
	struct db_stmt *st =
	    db_query(c->db, "SELECT storage FROM workspaces WHERE id = ?", c->ws_id);
	int rc = st && db_step(st) == DB_ROW ? strcmp(db_col_text(st, 0), "hosts") == 0 : -1;
	db_finalize(st);
	return rc;
}

/* Claim the workspace's grant of hash for this commit: its proven (0/1), -1
 * when there is none, or DB_ERR. touched_at is the fence GC honours
 * (jobs/gc.c): on PostgreSQL the row lock also holds GC off until this
 * transaction ends. */
static int64_t claim_grant(struct op_ctx *c, const char *hash)
{
	int64_t proven = 0;
	int rc = db_int64(c->db, &proven,
	                  "UPDATE workspace_chunks SET touched_at = ? WHERE workspace_id = ? AND "
	                  "chunk_hash = ? RETURNING proven",
	                  now_ms(), c->ws_id, hash);
	return rc == DB_ROW ? proven : rc == DB_DONE ? -1 : DB_ERR;
}

/* A pointer commit always ends with a grant: claimed, or made unproven, in
 * one statement (the transaction undoes it if the commit fails). */
static int64_t claim_or_grant(struct op_ctx *c, const char *hash)
{
	int64_t proven = 0;
	int rc =
	    db_int64(c->db, &proven,
	             "INSERT INTO workspace_chunks(workspace_id, chunk_hash, touched_at, proven) "
	             "VALUES(?,?,?,0) ON CONFLICT(workspace_id, chunk_hash) DO UPDATE SET "
	             "touched_at = excluded.touched_at RETURNING proven",
	             c->ws_id, hash, now_ms());
	return rc == DB_ROW ? proven : DB_ERR;
}

/* A grant for a chunk the hub has not seen from this workspace: unproven. */
static int grant_unproven(struct op_ctx *c, const char *hash)
{
	return db_run(c->db,
	              "INSERT INTO workspace_chunks(workspace_id, chunk_hash, touched_at, proven) "
	              "VALUES(?,?,?,0) ON CONFLICT(workspace_id, chunk_hash) DO NOTHING",
	              c->ws_id, hash, now_ms());
}

/* Does a non-revoked host of the workspace hold hash ('ok')? 1, 0 or DB_ERR. */
static int host_holds(struct op_ctx *c, const char *hash)
{
	int64_t one = 0;
	int rc = db_int64(c->db, &one,
	                  "SELECT 1 FROM chunk_replicas cr JOIN hosts h ON h.id = cr.host_id "
	                  "WHERE cr.chunk_hash = ? AND cr.state = 'ok' AND h.workspace_id = ? "
	                  "AND h.revoked_at IS NULL LIMIT 1",
	                  hash, c->ws_id);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : DB_ERR;
}

/* The size the hub knows hash by — the chunks row, else the caller's own
 * upload of it (*uploaded) — or -1; DB_ERR. */
static int64_t known_size(struct op_ctx *c, const char *hash, bool *uploaded)
{
	char up[32];
	possess_uploader(c, up);
	struct db_stmt *st = db_query(
	    c->db,
	    "SELECT (SELECT size FROM chunks WHERE hash = ?), (SELECT size FROM chunk_uploads "
	    "WHERE workspace_id = ? AND uploader = ? AND chunk_hash = ? AND touched_at > ?)",
	    hash, c->ws_id, up, hash, now_ms() - UPLOAD_PENDING_MS);
	if (!st || db_step(st) != DB_ROW) {
		db_finalize(st);
		return DB_ERR;
	}
	bool known = !db_col_is_null(st, 0);
	int64_t size = known ? db_col_int64(st, 0) : -1;
	*uploaded = !db_col_is_null(st, 1);
	if (!known && *uploaded)
		size = db_col_int64(st, 1);
	db_finalize(st);
	return size;
}

/* The size of hash in the hub's store (<= 0: not there). A local store is
 * asked (a stat). An S3 store would cost a HEAD per chunk, half of a put's
 * requests, so the hub's own record that it put the chunk there within
 * STORED_TRUST_MS is taken instead (possess_stored_size: an upload to a host,
 * a chunk another workspace committed long ago, or a row the hub could not
 * keep true are not trusted and get the HEAD). What that misses: an object
 * deleted from the bucket behind the hub's back between its upload and this
 * commit; scrub reports and repairs those (docs/storage.md). */
static int64_t store_size_of(struct op_ctx *c, const char *hash)
{
	int64_t size = 0;
	if (store_is_remote(c->hub->store) && possess_stored_size(c, hash, &size) == DB_ROW &&
	    size > 0)
		return size;
	return store_size(c->hub->store, hash);
}

/* Where chunk ch of a commit is: OP_OK (*stored: in the hub's store),
 * OP_MISSING_CHUNKS, OP_SIZE_MISMATCH (*size: the size the hub knows) or
 * OP_DB. proof: the caller holds it (possess.c) or the commit's source
 * vouches for it. */
static enum op_code locate_chunk(struct op_ctx *c, const struct chunk_rules *k,
                                 const struct chunk_ref *ch, bool proof, bool *stored,
                                 int64_t *size)
{
	int64_t proven = k->pointer ? claim_or_grant(c, ch->hash) : claim_grant(c, ch->hash);
	if (proven == DB_ERR)
		return OP_DB;
	int64_t in_store = store_size_of(c, ch->hash);
	*stored = in_store > 0;
	/* In 'hub' mode an unproven grant's chunk is sent again: the upload
	 * proves it, and the hub holds the workspace's bytes once more. */
	if (proof && proven >= 0 && in_store > 0 && (proven || k->hosts || k->src != SRC_CLIENT)) {
		*size = in_store;
		/* an unproven grant's store copy is not the workspace's to read */
		*stored = proven == 1;
		return in_store == ch->size ? OP_OK : OP_SIZE_MISMATCH;
	}
	bool uploaded = false;
	int64_t known = known_size(c, ch->hash, &uploaded);
	if (known == DB_ERR)
		return OP_DB;
	if (k->pointer) {
		*size = in_store > 0 ? in_store : known;
		if (*size >= 0 && *size != ch->size)
			return OP_SIZE_MISMATCH;
		*stored = false; /* not this workspace's copy: the hub did not see its bytes */
		return proven >= 0 || grant_unproven(c, ch->hash) == DB_DONE ? OP_OK : OP_DB;
	}
	if (!(uploaded || (proof && (k->src == SRC_VERSION || k->hosts))))
		return OP_MISSING_CHUNKS;
	int held = host_holds(c, ch->hash);
	if (held == DB_ERR)
		return OP_DB;
	if (!held || known < 0)
		return OP_MISSING_CHUNKS;
	*size = known;
	if (known != ch->size)
		return OP_SIZE_MISMATCH;
	*stored = false;
	return proven >= 0 || grant_unproven(c, ch->hash) == DB_DONE ? OP_OK : OP_DB;
}

/* ---- the transaction ---- */

/* A commit's transaction, or in a batch its savepoint in the batch's. */
static int tx_begin(struct op_ctx *c)
{
	return c->batch ? db_run_later(c->db, "SAVEPOINT commit_one") : meta_begin(c->db, c->ws_id);
}

static void tx_rollback(struct op_ctx *c)
{
	if (c->batch)
		db_exec(c->db, "ROLLBACK TO SAVEPOINT commit_one; RELEASE SAVEPOINT commit_one");
	else
		db_rollback(c->db);
}

static int tx_commit(struct op_ctx *c)
{
	return c->batch ? db_run_later(c->db, "RELEASE SAVEPOINT commit_one") : meta_commit_op(c);
}

/* The chunks among ch that the caller cannot prove it holds (possess.c):
 * held[i] false. DB_DONE or an error. */
static int proofs(struct op_ctx *c, const struct commit_args *a, bool *held)
{
	if (a->src != SRC_CLIENT) {
		for (size_t i = 0; i < a->n; i++)
			held[i] = true;
		return DB_DONE;
	}
	return possess_check(c, a->chunks, a->n, held);
}

/* Every chunk must be where the rules above allow, with the size it claims,
 * and is claimed for this commit; stored[i]: the hub's store holds chunk i
 * for this workspace. In the transaction. */
static enum op_code check_chunks(struct op_ctx *c, const struct commit_args *a, bool *stored,
                                 struct op_err *e)
{
	int hosts = c->ws.hosts; /* ws_settings, read by the caller */
	struct chunk_rules k = {
	    .hosts = hosts, .pointer = hosts && c->host_id && a->src == SRC_CLIENT, .src = a->src};
	bool *held = xcalloc(a->n ? a->n : 1, sizeof *held);
	json_t *missing = json_array();
	enum op_code rc = proofs(c, a, held) == DB_DONE ? OP_OK : OP_DB;
	int64_t size = 0;
	size_t bad = 0;
	for (size_t i = 0; i < a->n && rc == OP_OK; i++) {
		bad = i;
		const struct chunk_ref *ch = &a->chunks[i];
		/* a chunk listed again in a row is claimed once */
		if (i > 0 && strcmp(ch->hash, a->chunks[i - 1].hash) == 0) {
			stored[i] = stored[i - 1];
			if (ch->size != a->chunks[i - 1].size) {
				rc = OP_SIZE_MISMATCH;
				size = a->chunks[i - 1].size;
			}
			continue;
		}
		enum op_code got = locate_chunk(c, &k, ch, held[i], &stored[i], &size);
		if (got == OP_MISSING_CHUNKS)
			json_array_append_new(missing, json_string(ch->hash));
		else
			rc = got;
	}
	free(held);
	if (rc == OP_DB) {
		json_decref(missing);
		return op_db(e);
	}
	if (rc == OP_SIZE_MISMATCH) {
		json_decref(missing);
		return op_fail(e, OP_SIZE_MISMATCH, "chunks[%zu] is %lld bytes, not %lld", bad,
		               (long long)size, (long long)a->chunks[bad].size);
	}
	if (json_array_size(missing))
		return op_fail_detail(e, OP_MISSING_CHUNKS, json_pack("{s:o}", "missing", missing),
		                      "the hub does not hold some chunks; upload them and commit "
		                      "again");
	json_decref(missing);
	return OP_OK;
}

/* The folder the file goes in (made as needed), the live file there (*file_id,
 * 0: none) and the base version check. One statement when the folder exists. */
static enum op_code place(struct op_ctx *c, const struct commit_args *a, const char *parent,
                          const char *name, int64_t author, int64_t *folder, int64_t *file_id,
                          struct op_err *e)
{
	int64_t other = 0, cur = 0;
	*file_id = 0;
	struct db_stmt *st = db_query(
	    c->db,
	    "SELECT d.id, (SELECT id FROM folders WHERE workspace_id = ? AND path = ? AND "
	    "deleted_at IS NULL), f.id, f.current_version_id FROM folders d LEFT JOIN files f ON "
	    "f.folder_id = d.id AND f.name = ? AND f.deleted_at IS NULL WHERE d.workspace_id = ? "
	    "AND d.path = ? AND d.deleted_at IS NULL",
	    c->ws_id, a->path, name, c->ws_id, parent);
	int rc = st ? db_step(st) : DB_ERR;
	if (rc == DB_ROW) {
		*folder = db_col_int64(st, 0);
		other = db_col_is_null(st, 1) ? 0 : 1;
		*file_id = db_col_int64(st, 2);
		cur = db_col_int64(st, 3);
	}
	db_finalize(st);
	if (rc == DB_ROW && other)
		return op_fail(e, OP_EXISTS, "a file or folder is in the way of %s", a->path);
	if (rc == DB_DONE) { /* the folder is new: no file in it yet */
		bool created;
		rc = meta_mkdirs(c->db, c->ws_id, parent, author, folder, &created);
		if (rc == OP_EXISTS ||
		    (rc == OP_OK && meta_folder_id(c->db, c->ws_id, a->path, &other) == 1))
			return op_fail(e, OP_EXISTS, "a file or folder is in the way of %s",
			               a->path);
		if (rc != OP_OK)
			return op_db(e);
	} else if (rc != DB_ROW)
		return op_db(e);
	if (a->base >= 0 && cur != a->base)
		return op_fail_detail(e, OP_VERSION_CONFLICT,
		                      json_pack("{s:I}", "current_version_id", (json_int_t)cur),
		                      "the file changed since the base version");
	return OP_OK;
}

/* The rows of the new version, the feed and the audit log. 0 or DB_ERR. */
static int write_version(struct op_ctx *c, const struct commit_args *a, const bool *stored,
                         int64_t folder, int64_t file_id, const char *name, int64_t author,
                         struct commit_result *out)
{
	int64_t number = 0, vid = 0, now = now_ms();
	const char *ctype = out->content_type;
	struct db_stmt *st;
	if (!file_id && strcmp(db_backend(c->db), "postgres") == 0)
		/* a new file and its first version in one statement */
		st = db_query(
		    c->db,
		    "WITH f AS (INSERT INTO files(workspace_id, folder_id, name, size, created_at, "
		    "updated_at) VALUES(?,?,?,?,?,?) RETURNING id) INSERT INTO "
		    "file_versions(file_id, "
		    "number, hash, size, content_type, created_by, created_at, host_id, share_id) "
		    "SELECT f.id, 1, CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT), "
		    "CAST(? AS BIGINT), CAST(? AS BIGINT), NULLIF(CAST(? AS BIGINT), 0), "
		    "NULLIF(CAST(? AS BIGINT), 0) FROM f RETURNING id, number, file_id",
		    c->ws_id, folder, name, a->size, now, now, a->hash, a->size, ctype, author, now,
		    c->host_id, c->share_id);
	else {
		if (!file_id && db_int64(c->db, &file_id,
		                         "INSERT INTO files(workspace_id, folder_id, name, size, "
		                         "created_at, updated_at) VALUES(?,?,?,?,?,?) RETURNING id",
		                         c->ws_id, folder, name, a->size, now, now) != DB_ROW)
			return DB_ERR;
		/* the next number, in the insert itself */
		st = db_query(
		    c->db,
		    "INSERT INTO file_versions(file_id, number, hash, size, content_type, "
		    "created_by, created_at, host_id, share_id) "
		    "SELECT CAST(? AS BIGINT), COALESCE(MAX(number), 0) + 1, CAST(? AS TEXT), "
		    "CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT), "
		    "NULLIF(CAST(? AS BIGINT), 0), NULLIF(CAST(? AS BIGINT), 0) "
		    "FROM file_versions WHERE file_id = ? RETURNING id, number, file_id",
		    file_id, a->hash, a->size, ctype, author, now, c->host_id, c->share_id,
		    file_id);
	}
	int rc = st ? db_step(st) : DB_ERR;
	if (rc == DB_ROW) {
		vid = db_col_int64(st, 0);
		number = db_col_int64(st, 1);
		file_id = db_col_int64(st, 2);
	}
	db_finalize(st);
	if (rc != DB_ROW)
		return DB_ERR;
	int64_t off = 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct chunk_ref *ch = &a->chunks[i];
		if (record_chunk(c->db, ch->hash, ch->size, stored[i]) != DB_DONE ||
		    db_run_later(
		        c->db,
		        "INSERT INTO version_chunks(version_id, idx, chunk_hash, chunk_offset, "
		        "size) VALUES(?,?,?,?,?)",
		        vid, (int64_t)i, ch->hash, off, ch->size) != DB_DONE ||
		    (c->host_id && record_host_replica(c, ch->hash, now) != DB_DONE))
			return DB_ERR;
		off += ch->size;
	}
	/* and what a listing shows of it (migration 21) */
	if (db_run_later(c->db,
	                 "UPDATE files SET current_version_id = ?, size = ?, content_type = ?, "
	                 "updated_at = ?, updated_by = ?, version_number = ?, version_hash = ?, "
	                 "version_at = ?, version_by = NULLIF(CAST(? AS BIGINT), 0) WHERE id = ?",
	                 vid, a->size, ctype, now, author, number, a->hash, now,
	                 c->share_id ? 0 : author, file_id) != DB_DONE ||
	    possess_consume(c, a->chunks, a->n) != DB_DONE ||
	    meta_change(c->db, c->ws_id, "file.version", "file",
	                json_pack("{s:I, s:s, s:I, s:I, s:I, s:s}", "id", (json_int_t)file_id,
	                          "path", a->path, "version", (json_int_t)number, "version_id",
	                          (json_int_t)vid, "size", (json_int_t)a->size, "hash", a->hash)) !=
	        0 ||
	    meta_audit_op(c, "file.version", a->path,
	                  json_pack("{s:I, s:I}", "version", (json_int_t)number, "size",
	                            (json_int_t)a->size)) != 0)
		return DB_ERR;
	out->file_id = file_id;
	out->number = number;
	out->version_id = vid;
	return 0;
}

/* The commit itself; *limited: a size limit or the quota refused it. */
static enum op_code commit_chunks(struct op_ctx *c, const struct commit_args *a,
                                  struct commit_result *out, bool *limited, struct op_err *e)
{
	char *parent = NULL, *name = NULL;
	bool *stored = NULL;
	enum op_code rc;
	if (!op_path_writable(a->path, e))
		return e->code;
	if (!path_split(a->path, &parent, &name))
		return op_fail(e, OP_INVALID_PATH,
		               "a file cannot be written at the workspace root itself");
	if (tx_begin(c) != DB_DONE) {
		rc = op_db(e);
		goto out;
	}
	/* The logical size first: it is known without touching a chunk. */
	if (ws_settings(c) != 0) {
		tx_rollback(c);
		*limited = true; /* as a refusal of the limits check, as before */
		rc = op_db(e);
		goto out;
	}
	if (!limits_fit_size(c->db, c->ws_id, a->size, c->ws.max_file, c->ws.quota, e)) {
		tx_rollback(c);
		*limited = true; /* as a refusal, also when the check itself failed */
		rc = e->code;
		goto out;
	}
	int64_t folder = 0, file_id = 0, author = c->author_id ? c->author_id : c->user_id;
	stored = xcalloc(a->n ? a->n : 1, sizeof *stored);
	rc = check_chunks(c, a, stored, e);
	if (rc == OP_OK)
		rc = place(c, a, parent, name, author, &folder, &file_id, e);
	if (rc != OP_OK) {
		tx_rollback(c);
		goto out;
	}
	if (a->content_type)
		snprintf(out->content_type, sizeof out->content_type, "%s", a->content_type);
	else if (a->n > 0 && stored[0])
		sniff_stored_chunk(c->hub, a->chunks[0].hash, a->chunks[0].size, out->content_type);
	else if (a->n > 0) /* a pointer: the hub cannot read it (hosts send the type) */
		snprintf(out->content_type, sizeof out->content_type, "application/octet-stream");
	else
		snprintf(out->content_type, sizeof out->content_type, "application/x-empty");
	if (write_version(c, a, stored, folder, file_id, name, author, out) != 0 ||
	    tx_commit(c) != DB_DONE) {
		tx_rollback(c);
		rc = op_db(e);
		goto out;
	}
	atomic_fetch_add(&c->hub->m.versions_committed, 1);
	out->size = a->size;
	out->chunks = a->n;
	snprintf(out->hash, sizeof out->hash, "%s", a->hash);
out:
	free(stored);
	free(parent);
	free(name);
	return rc;
}

enum op_code op_commit(struct op_ctx *c, const struct commit_args *a, struct commit_result *out,
                       struct op_err *e)
{
	memset(out, 0, sizeof *out);
	bool limited = false;
	enum op_code rc = OP_OK;
	if (!op_require(c, a->path, true, PERM_WRITE, ACL_NOW, e))
		rc = e->code;
	else
		rc = commit_chunks(c, a, out, &limited, e);
	/* A refused upload frees its chunks at once: a body's always, a
	 * client's when it cannot be committed as it is. */
	if (rc != OP_OK && (a->src == SRC_BODY || (a->src == SRC_CLIENT && limited)))
		possess_free(c, a->chunks, a->n);
	return rc;
}

/* Commit version vid's chunks (no bytes copied) as a new version of path. */
static enum op_code commit_from_version(struct op_ctx *c, const char *path, int64_t vid,
                                        int64_t size, const char *hash, const char *ctype,
                                        int64_t base, struct commit_result *out, struct op_err *e)
{
	struct db_stmt *st = db_query(
	    c->db, "SELECT chunk_hash, size FROM version_chunks WHERE version_id = ? ORDER BY idx",
	    vid);
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
	struct commit_args a = {.path = path,
	                        .size = size,
	                        .hash = hash,
	                        .chunks = refs,
	                        .n = n,
	                        .content_type = ctype,
	                        .base = base,
	                        .src = SRC_VERSION};
	enum op_code rc = op_commit(c, &a, out, e);
	free(refs);
	return rc;
}

enum op_code op_copy_version(struct op_ctx *c, const char *path, const struct file_info *src,
                             struct commit_result *out, struct op_err *e)
{
	return commit_from_version(c, path, src->version_id, src->size, src->hash,
	                           src->content_type[0] ? src->content_type : NULL, -1, out, e);
}

enum op_code op_version_restore(struct op_ctx *c, const char *path, int64_t number,
                                struct commit_result *out, struct op_err *e)
{
	struct file_info fi;
	int rc = meta_file_get(c->db, c->ws_id, path, &fi);
	if (rc != 1)
		return rc == 0 ? op_fail(e, OP_NOT_FOUND, "no such path: %s", path) : op_db(e);
	if (!op_require(c, path, true, PERM_WRITE, ACL_NOW, e))
		return e->code;
	struct db_stmt *st = db_query(c->db,
	                              "SELECT v.id, v.size, v.hash, v.content_type FROM "
	                              "file_versions v WHERE v.file_id = ? AND v.number = ?",
	                              fi.id, number);
	int64_t vid = 0, size = 0;
	char hash[HASH_HEX_LEN + 1] = "", ctype[128] = "";
	if (st && db_step(st) == DB_ROW) {
		vid = db_col_int64(st, 0);
		size = db_col_int64(st, 1);
		snprintf(hash, sizeof hash, "%s", db_col_text(st, 2));
		snprintf(ctype, sizeof ctype, "%s", db_col_text(st, 3) ? db_col_text(st, 3) : "");
	}
	db_finalize(st);
	if (!vid)
		return op_fail(e, OP_NO_SUCH_VERSION, "%s has no version %lld (any more)", path,
		               (long long)number);
	/* Conditional on the version current now, so a concurrent edit wins. */
	return commit_from_version(c, path, vid, size, hash, ctype[0] ? ctype : NULL, fi.version_id,
	                           out, e);
}
