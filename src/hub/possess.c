/* possess: proof of possession of chunks (docs/security.md, "chunk hashes").
 *
 * A chunk's hash is not a capability. A caller may reference a chunk by hash
 * (probe it, commit it, read it) only if it uploaded the chunk itself within
 * the upload lease (a chunk_uploads row of its own) or it may read a version
 * that uses the chunk. Anything else answers "missing" and the client sends
 * the bytes; the store keeps them once either way.
 *
 * chunk_uploads rows are also the caller's pending bytes: uploaded but not yet
 * in a version. A commit consumes its own rows; a refused upload's rows go at
 * once, and with them the chunks nothing else holds. */
#include "hub.h"
#include "upload.h"
#include "possess.h"
#include "acl.h"
#include "ops/ops.h"
#include "../core/hash.h"
#include "../core/path.h"
#include "../core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GROUP 256 /* hashes per IN (...) query */

void possess_uploader(const struct op_ctx *oc, char out[32])
{
	if (oc->host_id)
		snprintf(out, 32, "h:%lld", (long long)oc->host_id);
	else if (oc->share_id)
		snprintf(out, 32, "s:%lld", (long long)oc->share_id);
	else
		snprintf(out, 32, "u:%lld", (long long)oc->user_id);
}

static int cmp_hash(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct hashes of c, sorted (borrowed pointers into c). */
static const char **distinct(const struct chunk_ref *c, size_t n, size_t *out_n)
{
	const char **h = xcalloc(n ? n : 1, sizeof *h);
	for (size_t i = 0; i < n; i++)
		h[i] = c[i].hash;
	qsort(h, n, sizeof *h, cmp_hash);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (k == 0 || strcmp(h[k - 1], h[i]) != 0)
			h[k++] = h[i];
	*out_n = k;
	return h;
}

/* "head (?,?,…) tail" with k placeholders. */
static char *in_list(const char *head, size_t k, const char *tail)
{
	size_t len = strlen(head) + 2 * k + strlen(tail) + 4;
	char *sql = xmalloc(len), *o = stpcpy(sql, head);
	*o++ = '(';
	for (size_t i = 0; i < k; i++) {
		*o++ = '?';
		*o++ = i + 1 < k ? ',' : ')';
	}
	strcpy(o, tail);
	return sql;
}

/* Which kind of version reading proves possession for the caller. */
enum reach { REACH_ALL, REACH_LIVE, REACH_ACL };

static enum reach reach_of(struct op_ctx *oc, struct acl *a)
{
	/* Hosts keep copies of the whole workspace, trash included; owners and
	 * admins read all of it. */
	if (oc->host_id || oc->role >= ROLE_ADMIN)
		return REACH_ALL;
	return acl_subtree_at_least(a, "/", PERM_READ) ? REACH_LIVE : REACH_ACL;
}

/* Mark held[] for the hashes h[0..k) that the query (bound from parameter
 * first_idx on) yields in column 0; with a ACL, column 1 and 2 name the
 * file, which the caller must be able to read. */
static int mark(struct db_stmt *st, int first_idx, const char **h, size_t k, bool *held,
                const struct acl *a)
{
	if (!st)
		return DB_ERR;
	for (size_t i = 0; i < k; i++)
		db_bind_text(st, first_idx + (int)i, h[i]);
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		const char *key = db_col_text(st, 0);
		const char **at = bsearch(&key, h, k, sizeof *h, cmp_hash);
		if (!at || held[at - h])
			continue;
		if (a) {
			char *p = path_join(db_col_text(st, 1), db_col_text(st, 2));
			bool ok = acl_perm(a, p, true) >= PERM_READ;
			free(p);
			if (!ok)
				continue;
		}
		held[at - h] = true;
	}
	db_finalize(st);
	return rc == DB_DONE ? DB_DONE : DB_ERR;
}

/* The chunks the caller uploaded within the lease, among h[0..k). */
static int mark_uploaded(struct op_ctx *oc, const char **h, size_t k, bool *held)
{
	char up[32];
	possess_uploader(oc, up);
	char *sql = in_list("SELECT chunk_hash FROM chunk_uploads WHERE workspace_id = ? AND "
	                    "uploader = ? AND touched_at > ? AND chunk_hash IN ",
	                    k, "");
	struct db_stmt *st = db_prepare(oc->db, sql);
	free(sql);
	if (st) {
		db_bind_int64(st, 1, oc->ws_id);
		db_bind_text(st, 2, up);
		db_bind_int64(st, 3, now_ms() - UPLOAD_PENDING_MS);
	}
	return mark(st, 4, h, k, held, NULL);
}

/* "SELECT x.h FROM (SELECT CAST(? AS TEXT) AS h UNION ALL …) x WHERE tail"
 * with k placeholders. */
static char *each_hash(size_t k, const char *tail)
{
	static const char one[] = "SELECT CAST(? AS TEXT) AS h", sep[] = " UNION ALL ";
	size_t len = 32 + k * (sizeof one + sizeof sep) + strlen(tail);
	char *sql = xmalloc(len), *o = stpcpy(sql, "SELECT x.h FROM (");
	for (size_t i = 0; i < k; i++)
		o = stpcpy(stpcpy(o, i ? sep : ""), one);
	o = stpcpy(o, ") x WHERE ");
	strcpy(o, tail);
	return sql;
}

/* The chunks a version the caller may read uses, among h[0..k). One that
 * reads the whole workspace asks, per chunk, whether any version uses it:
 * the answer stops at the first, so a chunk in a million versions costs as
 * much as one in a single version. A caller whose reading the ACL limits
 * needs a version it may read: every path is looked at. */
static int mark_readable(struct op_ctx *oc, struct acl *a, const char **h, size_t k, bool *held)
{
	enum reach reach = reach_of(oc, a);
	if (reach == REACH_ACL) {
		char *sql = in_list(
		    "SELECT DISTINCT vc.chunk_hash, d.path, f.name FROM version_chunks vc JOIN "
		    "file_versions v ON v.id = vc.version_id JOIN files f ON f.id = v.file_id JOIN "
		    "folders d ON d.id = f.folder_id WHERE f.workspace_id = ? AND f.deleted_at IS "
		    "NULL AND vc.chunk_hash IN ",
		    k, "");
		struct db_stmt *st = db_prepare(oc->db, sql);
		free(sql);
		if (st)
			db_bind_int64(st, 1, oc->ws_id);
		return mark(st, 2, h, k, held, a);
	}
	/* The version's workspace is a subquery per row of the chunk's index, not
	 * a join: PostgreSQL flattens a join, and a generic plan made while the
	 * tables were small (a new hub's first import) hashed every file of the
	 * workspace per call, O(files) a commit. A subquery keeps the one order. */
	char *sql = each_hash(
	    k, reach == REACH_LIVE
	           ? "EXISTS (SELECT 1 FROM version_chunks vc WHERE vc.chunk_hash = x.h AND "
	             "(SELECT f.workspace_id FROM file_versions v JOIN files f ON f.id = "
	             "v.file_id WHERE v.id = vc.version_id AND f.deleted_at IS NULL) = ?)"
	           : "EXISTS (SELECT 1 FROM version_chunks vc WHERE vc.chunk_hash = x.h AND "
	             "(SELECT f.workspace_id FROM file_versions v JOIN files f ON f.id = "
	             "v.file_id WHERE v.id = vc.version_id) = ?)");
	struct db_stmt *st = db_prepare(oc->db, sql);
	free(sql);
	if (st)
		db_bind_int64(st, (int)k + 1, oc->ws_id);
	return mark(st, 1, h, k, held, NULL);
}

int possess_check(struct op_ctx *oc, const struct chunk_ref *c, size_t n, bool *held)
{
	struct acl *a = op_acl(oc);
	if (!a)
		return DB_ERR;
	size_t k;
	const char **h = distinct(c, n, &k);
	bool *got = xcalloc(k ? k : 1, sizeof *got);
	int rc = DB_DONE;
	for (size_t at = 0; at < k && rc == DB_DONE; at += GROUP) {
		size_t m = k - at < GROUP ? k - at : GROUP;
		rc = mark_uploaded(oc, h + at, m, got + at);
		bool all = true;
		for (size_t i = 0; i < m; i++)
			all = all && got[at + i];
		if (rc == DB_DONE && !all)
			rc = mark_readable(oc, a, h + at, m, got + at);
	}
	for (size_t i = 0; i < n; i++) {
		const char *key = c[i].hash;
		const char **pos = bsearch(&key, h, k, sizeof *h, cmp_hash);
		held[i] = rc == DB_DONE && pos && got[pos - h];
	}
	free(got);
	free(h);
	return rc;
}

/* For each of c: does the query (workspace, then the uploader when
 * with_uploader, then the hashes) yield it? */
static int marks_by(struct op_ctx *oc, const char *head, bool with_uploader,
                    const struct chunk_ref *c, size_t n, bool *out)
{
	char up[32];
	possess_uploader(oc, up);
	size_t k;
	const char **h = distinct(c, n, &k);
	bool *got = xcalloc(k ? k : 1, sizeof *got);
	int rc = DB_DONE;
	for (size_t at = 0; at < k && rc == DB_DONE; at += GROUP) {
		size_t m = k - at < GROUP ? k - at : GROUP;
		char *sql = in_list(head, m, "");
		struct db_stmt *st = db_prepare(oc->db, sql);
		free(sql);
		if (st) {
			db_bind_int64(st, 1, oc->ws_id);
			if (with_uploader) {
				db_bind_text(st, 2, up);
				db_bind_int64(st, 3, now_ms() - UPLOAD_PENDING_MS);
			}
		}
		rc = mark(st, with_uploader ? 4 : 2, h + at, m, got + at, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		const char *key = c[i].hash;
		const char **pos = bsearch(&key, h, k, sizeof *h, cmp_hash);
		out[i] = rc == DB_DONE && pos && got[pos - h];
	}
	free(got);
	free(h);
	return rc;
}

int possess_on_host(struct op_ctx *oc, const struct chunk_ref *c, size_t n, bool *on_host)
{
	return marks_by(oc,
	                "SELECT cu.chunk_hash FROM chunk_uploads cu WHERE cu.workspace_id = ? AND "
	                "cu.uploader = ? AND cu.touched_at > ? AND EXISTS (SELECT 1 FROM "
	                "chunk_replicas cr JOIN hosts h ON h.id = cr.host_id WHERE cr.chunk_hash "
	                "= cu.chunk_hash AND cr.state = 'ok' AND h.workspace_id = cu.workspace_id "
	                "AND h.revoked_at IS NULL) AND cu.chunk_hash IN ",
	                true, c, n, on_host);
}

int possess_host_held(struct op_ctx *oc, const struct chunk_ref *c, size_t n, bool *held)
{
	return marks_by(oc,
	                "SELECT cr.chunk_hash FROM chunk_replicas cr JOIN hosts h ON h.id = "
	                "cr.host_id WHERE h.workspace_id = ? AND h.revoked_at IS NULL AND cr.state "
	                "= 'ok' AND cr.chunk_hash IN ",
	                false, c, n, held);
}

int possess_unproven(struct op_ctx *oc, const struct chunk_ref *c, size_t n, bool *unproven)
{
	return marks_by(oc,
	                "SELECT chunk_hash FROM workspace_chunks WHERE workspace_id = ? AND proven "
	                "= 0 AND chunk_hash IN ",
	                false, c, n, unproven);
}

int possess_record(struct op_ctx *oc, const struct chunk_ref *c, bool stored)
{
	char up[32];
	possess_uploader(oc, up);
	int64_t now = now_ms();
	if (stored)
		return db_run(
		    oc->db,
		    "INSERT INTO chunk_uploads(workspace_id, uploader, chunk_hash, size, "
		    "touched_at, stored_at) VALUES(?,?,?,?,?,?) ON CONFLICT(workspace_id, "
		    "uploader, chunk_hash) DO UPDATE SET touched_at = excluded.touched_at, "
		    "stored_at = excluded.stored_at, size = excluded.size",
		    oc->ws_id, up, c->hash, c->size, now, now);
	return db_run(oc->db,
	              "INSERT INTO chunk_uploads(workspace_id, uploader, chunk_hash, size, "
	              "touched_at) VALUES(?,?,?,?,?) ON CONFLICT(workspace_id, uploader, "
	              "chunk_hash) DO UPDATE SET touched_at = excluded.touched_at",
	              oc->ws_id, up, c->hash, c->size, now);
}

int possess_stored_size(struct op_ctx *oc, const char *hash, int64_t *size)
{
	return db_int64(oc->db, size,
	                "SELECT size FROM chunk_uploads WHERE chunk_hash = ? AND stored_at > ? "
	                "ORDER BY stored_at DESC LIMIT 1",
	                hash, now_ms() - STORED_TRUST_MS);
}

int possess_consume(struct op_ctx *oc, const struct chunk_ref *c, size_t n)
{
	char up[32];
	possess_uploader(oc, up);
	int rc = DB_DONE;
	for (size_t i = 0; i < n && rc == DB_DONE; i++)
		rc = db_run_later(
		    oc->db,
		    "DELETE FROM chunk_uploads WHERE workspace_id = ? AND uploader = ? "
		    "AND chunk_hash = ?",
		    oc->ws_id, up, c[i].hash);
	return rc;
}

int possess_pending(struct op_ctx *oc, int64_t *bytes)
{
	char up[32];
	possess_uploader(oc, up);
	return db_int64(oc->db, bytes,
	                "SELECT COALESCE(SUM(size), 0) FROM chunk_uploads WHERE workspace_id = ? "
	                "AND uploader = ? AND touched_at > ?",
	                oc->ws_id, up, now_ms() - UPLOAD_PENDING_MS) == DB_ROW
	           ? DB_DONE
	           : DB_ERR;
}

/* Drop the caller's claim on hash, and the chunk itself if nothing else holds
 * it: no version ever committed it (a chunks row; GC decides those), no other
 * live upload, no other workspace. The grant goes before the check, as in
 * GC, so a commit that claimed the chunk meanwhile is seen (jobs.c). */
static int free_one(struct op_ctx *oc, const char *up, const char *hash)
{
	int64_t one = 0;
	int rc = db_run(oc->db,
	                "DELETE FROM chunk_uploads WHERE workspace_id = ? AND uploader = ? AND "
	                "chunk_hash = ?",
	                oc->ws_id, up, hash);
	if (rc == DB_DONE)
		rc =
		    db_run(oc->db,
		           "DELETE FROM workspace_chunks WHERE workspace_id = ? AND chunk_hash = ?",
		           oc->ws_id, hash);
	if (rc != DB_DONE)
		return rc;
	rc = db_int64(oc->db, &one,
	              "SELECT 1 FROM chunks WHERE hash = ? UNION ALL SELECT 1 FROM chunk_uploads "
	              "WHERE chunk_hash = ? AND touched_at > ? UNION ALL SELECT 1 FROM "
	              "workspace_chunks WHERE chunk_hash = ? LIMIT 1",
	              hash, hash, now_ms() - UPLOAD_PENDING_MS, hash);
	if (rc == DB_ROW) /* held elsewhere: keep it, and this workspace's grant */
		return db_run(oc->db,
		              "INSERT INTO workspace_chunks(workspace_id, chunk_hash, touched_at) "
		              "VALUES(?,?,?) ON CONFLICT(workspace_id, chunk_hash) DO NOTHING",
		              oc->ws_id, hash, now_ms());
	if (rc != DB_DONE)
		return rc;
	int gone = store_remove(oc->hub->store, hash);
	return gone == 0 || gone == -ENOENT ? DB_DONE : DB_ERR;
}

void possess_free(struct op_ctx *oc, const struct chunk_ref *c, size_t n)
{
	if (!n)
		return;
	char up[32];
	possess_uploader(oc, up);
	size_t k;
	const char **h = distinct(c, n, &k);
	/* In a batch this runs in the batch's transaction; else in its own. */
	bool own = !oc->batch;
	int rc = own ? db_begin(oc->db) : DB_DONE;
	for (size_t i = 0; i < k && rc == DB_DONE; i++)
		rc = free_one(oc, up, h[i]);
	if (own && rc == DB_DONE)
		rc = db_commit(oc->db);
	else if (own)
		db_rollback(oc->db);
	if (rc != DB_DONE)
		log_warn("upload: could not free a refused upload's chunks (GC will)");
	free(h);
}
