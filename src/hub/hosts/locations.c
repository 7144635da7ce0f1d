/* hosts/locations: where a file's bytes are, for the dashboard and the CLI —
 * per file the hub's cache and each host's copy against the version's chunks
 * (locations), and the files some chunk of which has fewer verified copies
 * than min_replicas (under-replicated).
 *
 * Copies are counted by the one rule (HOSTS_COPIES_SQL, hosts.h; docs/api.md,
 * "Locations"), as the replicate job and the eviction count them: in 'hosts'
 * mode the hub's cached copy is shown (hub.chunks_held) but does not count.
 *
 * A member who may not read a file learns nothing of it: locations answers
 * 404 as for a missing file, under-replicated leaves it out.
 *
 * Threads: request threads; no state outside the database. */
#include "internal.h"
#include "../meta.h"
#include "../acl.h"
#include "../../core/json.h"
#include "../../core/path.h"
#include "../../core/util.h"

#include <stdlib.h>
#include <string.h>

#define OLDER_VERSIONS_MAX  20  /* older versions a host's stale copy is looked for in */
#define UNDER_LIMIT_DEFAULT 100 /* files in one page of under-replicated */
#define UNDER_LIMIT_MAX     1000

/* The distinct chunks of version ? */
#define VERSION_CHUNKS_SQL "(SELECT DISTINCT chunk_hash FROM version_chunks WHERE version_id = ?)"

struct ws_settings {
	int64_t min_replicas, grace_ms;
	char storage[8];
};

static bool ws_settings_get(struct db *db, int64_t ws, struct ws_settings *s)
{
	struct db_stmt *st = db_query(
	    db, "SELECT min_replicas, replica_grace_s, storage FROM workspaces WHERE id = ?", ws);
	bool ok = st && db_step(st) == DB_ROW;
	if (ok) {
		s->min_replicas = db_col_int64(st, 0);
		s->grace_ms = db_col_int64(st, 1) * 1000;
		snprintf(s->storage, sizeof s->storage, "%s", db_col_text(st, 2));
	}
	db_finalize(st);
	return ok;
}

/* One row of two numbers (a count and a sum) into a and b. */
static bool two_numbers(struct db_stmt *st, int64_t *a, int64_t *b)
{
	bool ok = st && db_step(st) == DB_ROW;
	if (ok) {
		*a = db_col_int64(st, 0);
		*b = db_col_int64(st, 1);
	}
	db_finalize(st);
	return ok;
}

/* Hosts that hold every chunk of some older version of the file (up to
 * OLDER_VERSIONS_MAX back) into the array, as ids. */
static bool stale_hosts(struct req *r, int64_t file_id, int64_t number, json_t *ids)
{
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT DISTINCT x.host_id FROM (SELECT vc.version_id, cr.host_id, COUNT(DISTINCT "
	    "vc.chunk_hash) AS held FROM file_versions v JOIN version_chunks vc ON vc.version_id "
	    "= v.id JOIN chunk_replicas cr ON cr.chunk_hash = vc.chunk_hash WHERE v.file_id = ? "
	    "AND v.number < ? AND v.number >= ? AND cr.state = 'ok' AND cr.host_id IS NOT NULL "
	    "GROUP BY vc.version_id, cr.host_id) x JOIN (SELECT vc.version_id, COUNT(DISTINCT "
	    "vc.chunk_hash) AS n FROM file_versions v JOIN version_chunks vc ON vc.version_id = "
	    "v.id WHERE v.file_id = ? AND v.number < ? AND v.number >= ? GROUP BY vc.version_id) "
	    "t ON t.version_id = x.version_id WHERE x.held = t.n",
	    file_id, number, number - OLDER_VERSIONS_MAX, file_id, number,
	    number - OLDER_VERSIONS_MAX);
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(ids, json_integer(db_col_int64(st, 0)));
	bool ok = st != NULL;
	db_finalize(st);
	return ok;
}

static bool in_ids(json_t *ids, int64_t id)
{
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		if (json_integer_value(v) == id)
			return true;
	}
	return false;
}

/* The workspace's hosts that hold any chunk of the version, or all of an
 * older one: how much of it, whether online, whether their copies count. */
static json_t *host_copies(struct req *r, const struct file_info *fi, int64_t nchunks,
                           const struct ws_settings *s, int64_t now)
{
	json_t *stale = json_array(), *hosts = json_array();
	if (!stale_hosts(r, fi->id, fi->version_no, stale))
		goto fail;
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT h.id, h.label, h.url, h.last_seen, CASE WHEN " HOST_ONLINE_SQL
	    " THEN 1 ELSE 0 END, (SELECT COUNT(*) FROM " VERSION_CHUNKS_SQL
	    " u JOIN chunk_replicas cr ON cr.chunk_hash = u.chunk_hash WHERE cr.host_id = h.id AND "
	    "cr.state = 'ok') FROM hosts h WHERE h.workspace_id = ? AND h.revoked_at IS NULL ORDER "
	    "BY h.id",
	    now, fi->version_id, r->ws_id);
	if (!st)
		goto fail;
	while (db_step(st) == DB_ROW) {
		int64_t id = db_col_int64(st, 0), held = db_col_int64(st, 5);
		bool older = in_ids(stale, id), current = held == nchunks;
		if (held == 0 && !older)
			continue;
		bool seen = !db_col_is_null(st, 3);
		json_t *h = json_pack("{s:I, s:s, s:b, s:I, s:b, s:b, s:s, s:b}", "id",
		                      (json_int_t)id, "label", db_col_text(st, 1), "online",
		                      db_col_int64(st, 4) != 0, "chunks_held", (json_int_t)held,
		                      "current", current, "has_older", older, "state",
		                      current ? "current"
		                      : older ? "stale"
		                              : "partial",
		                      "counted", seen && db_col_int64(st, 3) > now - s->grace_ms);
		json_object_set_new(h, "last_seen",
		                    seen ? json_integer(db_col_int64(st, 3)) : json_null());
		json_object_set_new(h, "url",
		                    db_col_is_null(st, 2) ? json_null()
		                                          : json_string(db_col_text(st, 2)));
		json_array_append_new(hosts, h);
	}
	db_finalize(st);
	json_decref(stale);
	return hosts;
fail:
	json_decref(stale);
	json_decref(hosts);
	return NULL;
}

/* The fewest verified copies any chunk of the version has; -1 for no chunk. */
static bool min_copies(struct req *r, int64_t version_id, int64_t now, int64_t *out)
{
	int64_t n = 0, least = 0;
	struct db_stmt *st =
	    db_query(r->db,
	             "SELECT COUNT(*), COALESCE(MIN(n), 0) FROM (SELECT " HOSTS_COPIES_SQL(
	                 "u.chunk_hash", "w") " AS n FROM " VERSION_CHUNKS_SQL
	                                      " u JOIN workspaces w ON w.id = ?) x",
	             now, version_id, r->ws_id);
	if (!two_numbers(st, &n, &least))
		return false;
	*out = n ? least : -1;
	return true;
}

/* GET /workspaces/W/locations?path=P[&version=N] */
enum MHD_Result api_locations(struct req *r)
{
	char *path = req_path_arg(r, "path");
	if (!path)
		return MHD_YES;
	const char *vs = req_arg(r, "version", NULL);
	int64_t version = vs ? parse_id(vs) : 0, now = now_ms();
	enum MHD_Result ret = MHD_YES;
	struct file_info fi;
	struct ws_settings s;
	int64_t nchunks = 0, bytes = 0, hub_chunks = 0, hub_bytes = 0, copies = 0;
	if (vs && version <= 0) {
		ret = reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                  "version is a positive number");
		goto out;
	}
	/* A file the caller may not read is answered as a missing one, word for
	 * word (meta_readable_version's 404 for it says otherwise). */
	struct acl *a = req_acl(r);
	if (!a) {
		ret = reply_db_error(r);
		goto out;
	}
	if (acl_perm(a, path, true) < PERM_READ) {
		ret = reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such file or version: %s",
		                  path);
		goto out;
	}
	if (!meta_readable_version(r, path, version, &fi))
		goto out;
	json_t *hosts = NULL;
	if (!ws_settings_get(r->db, r->ws_id, &s) ||
	    !two_numbers(
	        db_query(r->db,
	                 "SELECT COUNT(*), COALESCE(SUM(c.size), 0) FROM " VERSION_CHUNKS_SQL
	                 " u JOIN chunks c ON c.hash = u.chunk_hash",
	                 fi.version_id),
	        &nchunks, &bytes) ||
	    !two_numbers(
	        db_query(r->db,
	                 "SELECT COUNT(*), COALESCE(SUM(c.size), 0) FROM " VERSION_CHUNKS_SQL
	                 " u JOIN chunks c ON c.hash = u.chunk_hash JOIN chunk_replicas cr "
	                 "ON cr.chunk_hash = u.chunk_hash WHERE cr.holder = 'hub' AND "
	                 "cr.state = 'ok' AND NOT EXISTS (SELECT 1 FROM workspace_chunks "
	                 "wc WHERE wc.workspace_id = ? AND wc.chunk_hash = u.chunk_hash "
	                 "AND wc.proven = 0)",
	                 fi.version_id, r->ws_id),
	        &hub_chunks, &hub_bytes) ||
	    !min_copies(r, fi.version_id, now, &copies) ||
	    !(hosts = host_copies(r, &fi, nchunks, &s, now))) {
		ret = reply_db_error(r);
		goto out;
	}
	json_t *o =
	    json_pack("{s:s, s:I, s:I, s:I, s:I, s:s, s:I, s:{s:I, s:I}, s:o, s:b}", "path", path,
	              "version", (json_int_t)fi.version_no, "size", (json_int_t)fi.size, "chunks",
	              (json_int_t)nchunks, "min_replicas", (json_int_t)s.min_replicas, "storage",
	              s.storage, "replica_grace_s", (json_int_t)(s.grace_ms / 1000), "hub",
	              "chunks_held", (json_int_t)hub_chunks, "bytes_held", (json_int_t)hub_bytes,
	              "hosts", hosts, "below_min", copies >= 0 && copies < s.min_replicas);
	/* The hub's copy counts toward min_replicas in 'hub' mode only. */
	json_object_set_new(json_object_get(o, "hub"), "counted",
	                    json_boolean(strcmp(s.storage, "hosts") != 0));
	json_object_set_new(o, "copies", copies >= 0 ? json_integer(copies) : json_null());
	ret = reply_json(r, MHD_HTTP_OK, o);
out:
	free(path);
	return ret;
}

struct under {
	char *path;
	int64_t version, size, copies;
};

static int under_cmp(const void *a, const void *b)
{
	return strcmp(((const struct under *)a)->path, ((const struct under *)b)->path);
}

/* Every readable live file with a chunk below min_replicas into *out (sorted
 * by path, in C: the databases' collations differ), their number into *n. */
static bool under_collect(struct req *r, const struct ws_settings *s, struct under **out, size_t *n)
{
	struct acl *a = req_acl(r);
	bool all = acl_reads_all(r);
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT d.path, f.name, v.number, v.size, MIN(x.n) FROM files f JOIN folders d ON d.id "
	    "= f.folder_id JOIN file_versions v ON v.id = f.current_version_id JOIN version_chunks "
	    "vc ON vc.version_id = v.id JOIN (SELECT u.chunk_hash, " HOSTS_COPIES_SQL(
	        "u.chunk_hash",
	        "w") " AS n FROM (SELECT DISTINCT vc2.chunk_hash FROM files f2 JOIN "
	             "version_chunks vc2 ON vc2.version_id = f2.current_version_id "
	             "WHERE "
	             "f2.workspace_id = ? AND f2.deleted_at IS NULL) u JOIN workspaces "
	             "w ON w.id = ?) x ON "
	             "x.chunk_hash "
	             "= vc.chunk_hash WHERE f.workspace_id = ? AND f.deleted_at IS NULL "
	             "GROUP BY f.id, d.path, f.name, v.number, v.size HAVING MIN(x.n) < "
	             "?",
	    now_ms(), r->ws_id, r->ws_id, r->ws_id, s->min_replicas);
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	if (!a || !st) {
		db_finalize(st);
		return false;
	}
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		char *p = path_join(db_col_text(st, 0), db_col_text(st, 1));
		if (!all && acl_perm(a, p, true) < PERM_READ) {
			free(p);
			continue;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*out = xrealloc(*out, cap * sizeof **out);
		}
		(*out)[(*n)++] = (struct under){p, db_col_int64(st, 2), db_col_int64(st, 3),
		                                db_col_int64(st, 4)};
	}
	db_finalize(st);
	if (*n)
		qsort(*out, *n, sizeof **out, under_cmp);
	return rc == DB_DONE;
}

/* GET /workspaces/W/under-replicated[?limit=N&after=PATH]: the files the
 * caller may read with fewer verified copies than min_replicas, by path. */
enum MHD_Result api_under_replicated(struct req *r)
{
	const char *ls = req_arg(r, "limit", NULL), *after = req_arg(r, "after", NULL);
	int64_t limit = ls ? parse_id(ls) : UNDER_LIMIT_DEFAULT;
	if (limit <= 0 || limit > UNDER_LIMIT_MAX)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "limit is a number in 1..%d", UNDER_LIMIT_MAX);
	struct ws_settings s;
	struct under *u = NULL;
	size_t n = 0, i = 0;
	if (!ws_settings_get(r->db, r->ws_id, &s) || !under_collect(r, &s, &u, &n)) {
		for (size_t k = 0; k < n; k++)
			free(u[k].path);
		free(u);
		return reply_db_error(r);
	}
	while (after && i < n && strcmp(u[i].path, after) <= 0)
		i++;
	json_t *files = json_array();
	for (; i < n && json_array_size(files) < (size_t)limit; i++)
		json_array_append_new(files, json_pack("{s:s, s:I, s:I, s:I}", "path", u[i].path,
		                                       "version", (json_int_t)u[i].version, "size",
		                                       (json_int_t)u[i].size, "copies",
		                                       (json_int_t)u[i].copies));
	json_t *o = json_pack("{s:o, s:I, s:I, s:s}", "files", files, "total", (json_int_t)n,
	                      "min_replicas", (json_int_t)s.min_replicas, "storage", s.storage);
	/* The cursor for the next page: the last path given, while more follow. */
	json_t *last = json_object_get(json_array_get(files, json_array_size(files) - 1), "path");
	json_object_set_new(o, "next", i < n && last ? json_copy(last) : json_null());
	for (size_t k = 0; k < n; k++)
		free(u[k].path);
	free(u);
	return reply_json(r, MHD_HTTP_OK, o);
}
