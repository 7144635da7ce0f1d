/* stats: read-only views the dashboard needs beyond the CLI's: a search by name
 * and the workspace's storage over time. Both answer only what the caller may
 * see (search) or what usage already shows them (history). */
#include "hub.h"
#include "acl.h"
#include "stats.h"
#include "../core/path.h"
#include "../core/util.h"

#include <string.h>

#define SEARCH_LIMIT_DEFAULT 100
#define SEARCH_LIMIT_MAX     1000
#define SEARCH_QUERY_MAX     255
#define HISTORY_POINTS_MAX   2000
#define DAY_MS               (24ll * 3600 * 1000)

/* q as a LIKE pattern matching it anywhere: %, _ and \ are escaped. New string. */
static char *like_pattern(const char *q)
{
	char *out = xmalloc(strlen(q) * 2 + 3), *o = out;
	*o++ = '%';
	for (const char *s = q; *s; s++) {
		if (*s == '%' || *s == '_' || *s == '\\')
			*o++ = '\\';
		*o++ = *s;
	}
	*o++ = '%';
	*o = 0;
	return out;
}

/* q as an FTS5 phrase ("…", quotes doubled): with the trigram tokenizer, the
 * names that hold q as a substring, case folded. NULL when q is shorter than
 * a trigram (three characters), which no trigram index can answer. New string. */
static char *fts_phrase(const char *q)
{
	size_t chars = 0;
	for (const unsigned char *s = (const unsigned char *)q; *s; s++)
		chars += (*s & 0xC0) != 0x80;
	if (chars < 3)
		return NULL;
	char *out = xmalloc(strlen(q) * 2 + 3), *o = out;
	*o++ = '"';
	for (const char *s = q; *s; s++) {
		if (*s == '"')
			*o++ = '"';
		*o++ = *s;
	}
	*o++ = '"';
	*o = 0;
	return out;
}

/* The search's two statements: the folders (path, name, updated_at) and the
 * files whose name matches. On SQLite with a query of three characters or
 * more, the trigram index (schema.c) picks the candidates and LIKE keeps the
 * exact meaning (ASCII case folded only); on PostgreSQL, pg_trgm's index
 * answers the LIKE itself. */
#define SEARCH_FOLDER_COLS "SELECT fo.path, fo.name, fo.updated_at FROM "
#define SEARCH_FOLDER_WHERE                                                                        \
	"fo.workspace_id = ? AND fo.deleted_at IS NULL AND fo.path <> '/' AND "                    \
	"LOWER(fo.name) LIKE LOWER(?) ESCAPE '\\' ORDER BY fo.path"
#define SEARCH_FILE_COLS                                                                           \
	"SELECT fo.path, f.name, v.size, v.number, f.updated_at, CASE WHEN v.share_id IS NULL "    \
	"THEN u.email END, f.content_type FROM "
#define SEARCH_FILE_JOINS                                                                          \
	" JOIN folders fo ON fo.id = f.folder_id JOIN file_versions v ON v.id = "                  \
	"f.current_version_id LEFT JOIN users u ON u.id = f.updated_by WHERE "
#define SEARCH_FILE_WHERE                                                                          \
	"f.workspace_id = ? AND f.deleted_at IS NULL AND LOWER(f.name) LIKE LOWER(?) ESCAPE '\\' " \
	"ORDER BY fo.path, f.name"

static struct db_stmt *search_query(struct req *r, bool files, const char *phrase, const char *pat)
{
	if (phrase && files)
		return db_query(r->db,
		                SEARCH_FILE_COLS
		                "files_name_fts x JOIN files f ON f.id = x.rowid" SEARCH_FILE_JOINS
		                "files_name_fts MATCH ? AND " SEARCH_FILE_WHERE,
		                phrase, r->ws_id, pat);
	if (phrase)
		return db_query(r->db,
		                SEARCH_FOLDER_COLS
		                "folders_name_fts x JOIN folders fo ON fo.id = x.rowid WHERE "
		                "folders_name_fts MATCH ? AND " SEARCH_FOLDER_WHERE,
		                phrase, r->ws_id, pat);
	if (files)
		return db_query(r->db,
		                SEARCH_FILE_COLS "files f" SEARCH_FILE_JOINS SEARCH_FILE_WHERE,
		                r->ws_id, pat);
	return db_query(r->db, SEARCH_FOLDER_COLS "folders fo WHERE " SEARCH_FOLDER_WHERE, r->ws_id,
	                pat);
}

/* GET search?q=TEXT[&limit=N]: live folders and files whose name holds TEXT
 * (case-insensitive for ASCII), that the caller may see; folders first, then by
 * path. */
enum MHD_Result api_search(struct req *r)
{
	size_t qlen = 0;
	const char *q = req_arg(r, "q", &qlen);
	const char *ls = req_arg(r, "limit", NULL);
	int64_t limit = ls ? parse_id(ls) : SEARCH_LIMIT_DEFAULT;
	if (!q || qlen == 0 || qlen > SEARCH_QUERY_MAX || strlen(q) != qlen)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "q (1..%d bytes) is required", SEARCH_QUERY_MAX);
	if (limit <= 0 || limit > SEARCH_LIMIT_MAX)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "limit must be 1..%d", SEARCH_LIMIT_MAX);
	struct acl *a = req_acl(r);
	if (!a)
		return reply_db_error(r);
	char *pat = like_pattern(q);
	json_t *results = json_array();
	bool truncated = false;
	/* The ACL is applied per row, so the limit is counted here, not in SQL. */
	char *phrase = strcmp(db_backend(r->db), "sqlite") == 0 ? fts_phrase(q) : NULL;
	struct db_stmt *st = search_query(r, false, phrase, pat);
	while (st && db_step(st) == DB_ROW) {
		if (!acl_visible(a, db_col_text(st, 0), false))
			continue;
		if ((int64_t)json_array_size(results) == limit) {
			truncated = true;
			break;
		}
		json_array_append_new(results,
		                      json_pack("{s:s, s:s, s:s, s:I}", "type", "folder", "path",
		                                db_col_text(st, 0), "name", db_col_text(st, 1),
		                                "modified_at", (json_int_t)db_col_int64(st, 2)));
	}
	bool ok = st != NULL;
	db_finalize(st);
	st = ok && !truncated ? search_query(r, true, phrase, pat) : NULL;
	ok = ok && (truncated || st);
	while (st && db_step(st) == DB_ROW) {
		char *p = path_join(db_col_text(st, 0), db_col_text(st, 1));
		if (acl_perm(a, p, true) < PERM_READ) {
			free(p);
			continue;
		}
		if ((int64_t)json_array_size(results) == limit) {
			truncated = true;
			free(p);
			break;
		}
		json_array_append_new(
		    results, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s?, s:s?}", "type", "file",
		                       "path", p, "name", db_col_text(st, 1), "size",
		                       (json_int_t)db_col_int64(st, 2), "version",
		                       (json_int_t)db_col_int64(st, 3), "modified_at",
		                       (json_int_t)db_col_int64(st, 4), "modified_by",
		                       db_col_text(st, 5), "content_type", db_col_text(st, 6)));
		free(p);
	}
	db_finalize(st);
	free(pat);
	free(phrase);
	if (!ok) {
		json_decref(results);
		return reply_db_error(r);
	}
	return reply_json(
	    r, MHD_HTTP_OK,
	    json_pack("{s:s, s:o, s:b}", "query", q, "results", results, "truncated", truncated));
}

/* Add each (bucket, bytes) row of the query into series: rows before the
 * first bucket go to base. With readable_only, rows are (folder path, file
 * name, bucket, bytes) and count only if the caller may read that file. */
static bool sum_into(struct req *r, const char *sql, int64_t step, int64_t first, int64_t n,
                     int64_t *series, int64_t *base, bool readable_only)
{
	struct acl *a = req_acl(r);
	struct db_stmt *st = a ? db_query(r->db, sql, step, r->ws_id) : NULL;
	if (!st)
		return false;
	int rc, c = readable_only ? 2 : 0;
	while ((rc = db_step(st)) == DB_ROW) {
		if (readable_only) {
			char *p = path_join(db_col_text(st, 0), db_col_text(st, 1));
			bool ok = acl_perm(a, p, true) >= PERM_READ;
			free(p);
			if (!ok)
				continue;
		}
		int64_t b = db_col_int64(st, c) - first, bytes = db_col_int64(st, c + 1);
		if (b < 0)
			*base += bytes;
		else if (b < n)
			series[b] += bytes;
		else
			series[n - 1] += bytes; /* a clock ahead of ours: count it as now */
	}
	db_finalize(st);
	return rc == DB_DONE;
}

/* usage/history for a member who may not read every file: the bytes of the
 * versions they may read; what is workspace-wide only (stored chunks,
 * network traffic) is left at 0, as it would tell of hidden files. */
static bool history_readable(struct req *r, int64_t step, int64_t first, int64_t n,
                             int64_t *logical, int64_t *lbase, int64_t *uploaded, int64_t *ubase)
{
	return sum_into(r,
	                "SELECT d.path, f.name, v.created_at / ?, v.size FROM file_versions v "
	                "JOIN files f ON f.id = v.file_id JOIN folders d ON d.id = f.folder_id "
	                "WHERE f.workspace_id = ? AND f.deleted_at IS NULL",
	                step, first, n, logical, lbase, true) &&
	       sum_into(r,
	                "SELECT d.path, f.name, v.created_at / ?, v.size FROM file_versions v "
	                "JOIN files f ON f.id = v.file_id JOIN folders d ON d.id = f.folder_id "
	                "WHERE f.workspace_id = ? AND f.deleted_at IS NULL",
	                step, first, n, uploaded, ubase, true);
}

/* GET usage/history?days=N[&step=MS]: the workspace's storage over time, one point
 * per step (default a day; an hour for two days or less) over the last N days
 * (default 30). Each point has the totals at its end — logical_bytes and
 * stored_bytes as GET usage counts them, so the last point equals usage — and
 * what that step added: uploaded_bytes (versions committed, whatever their
 * chunks), new_stored_bytes (chunks this workspace referenced first then), and
 * received_bytes / sent_bytes (bytes over the network, from transfer_hourly). */
enum MHD_Result api_usage_history(struct req *r)
{
	const char *ds = req_arg(r, "days", NULL), *ss = req_arg(r, "step", NULL);
	int64_t days = ds ? parse_id(ds) : 30;
	if (days <= 0 || days > 3660)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "days must be 1..3660");
	int64_t step = ss ? parse_id(ss) : days <= 2 ? DAY_MS / 24 : DAY_MS;
	if (step < 60000 || step > 366 * DAY_MS || days * DAY_MS / step > HISTORY_POINTS_MAX)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "step must be at least a minute and give at most %d points",
		                   HISTORY_POINTS_MAX);
	int64_t now = now_ms();
	int64_t last = now / step, first = (now - days * DAY_MS) / step + 1;
	int64_t n = last - first + 1;
	int64_t *logical = xcalloc((size_t)n, sizeof *logical);
	int64_t *uploaded = xcalloc((size_t)n, sizeof *uploaded);
	int64_t *stored = xcalloc((size_t)n, sizeof *stored);
	int64_t *received = xcalloc((size_t)n, sizeof *received);
	int64_t *sent = xcalloc((size_t)n, sizeof *sent);
	int64_t logical_base = 0, uploaded_base = 0, stored_base = 0, ignored = 0;
	bool all = acl_reads_all(r);
	bool ok =
	    !all
	        ? history_readable(r, step, first, n, logical, &logical_base, uploaded,
	                           &uploaded_base)
	        : sum_into(
	              r,
	              "SELECT v.created_at / ?, SUM(v.size) FROM file_versions v JOIN files f ON "
	              "f.id = v.file_id WHERE f.workspace_id = ? AND f.deleted_at IS NULL GROUP BY "
	              "1",
	              step, first, n, logical, &logical_base, false) &&
	              sum_into(r,
	                       "SELECT v.created_at / ?, SUM(v.size) FROM file_versions v JOIN "
	                       "files f ON "
	                       "f.id = v.file_id WHERE f.workspace_id = ? GROUP BY 1",
	                       step, first, n, uploaded, &uploaded_base, false) &&
	              /* A chunk counts from the first version that referenced it. */
	              sum_into(
	                  r,
	                  "SELECT t.first_at / ?, SUM(t.size) FROM (SELECT MIN(v.created_at) AS "
	                  "first_at, "
	                  "MAX(vc.size) AS size FROM version_chunks vc JOIN file_versions v ON "
	                  "v.id = "
	                  "vc.version_id JOIN files f ON f.id = v.file_id WHERE f.workspace_id = ? "
	                  "GROUP BY vc.chunk_hash) t GROUP BY 1",
	                  step, first, n, stored, &stored_base, false) &&
	              /* Bytes over the network (uploads received, downloads sent), hourly. */
	              sum_into(r,
	                       "SELECT hour / ?, SUM(bytes_in) FROM transfer_hourly WHERE "
	                       "workspace_id = ? "
	                       "GROUP BY 1",
	                       step, first, n, received, &ignored, false) &&
	              sum_into(r,
	                       "SELECT hour / ?, SUM(bytes_out) FROM transfer_hourly WHERE "
	                       "workspace_id = ? "
	                       "GROUP BY 1",
	                       step, first, n, sent, &ignored, false);
	json_t *points = json_array();
	int64_t lsum = logical_base, ssum = stored_base;
	for (int64_t i = 0; ok && i < n; i++) {
		lsum += logical[i];
		ssum += stored[i];
		json_array_append_new(
		    points, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "at",
		                      (json_int_t)((first + i) * step), "logical_bytes",
		                      (json_int_t)lsum, "stored_bytes", (json_int_t)ssum,
		                      "uploaded_bytes", (json_int_t)uploaded[i], "new_stored_bytes",
		                      (json_int_t)stored[i], "received_bytes",
		                      (json_int_t)received[i], "sent_bytes", (json_int_t)sent[i]));
	}
	free(logical);
	free(uploaded);
	free(stored);
	free(received);
	free(sent);
	if (!ok) {
		json_decref(points);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:I, s:I, s:o}", "step", (json_int_t)step, "from",
	                            (json_int_t)(first * step), "points", points));
}
