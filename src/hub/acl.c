/* acl: who may read, write or manage what: loading a caller's ACL from the
 * database, checking requests against it and the ACL endpoints. The rules
 * that evaluate it (owners and admins, nearest entry, the workspace default)
 * are in acl_rules.c. A thing a caller may not read
 * is reported as absent (404), never as forbidden, so its existence does not
 * leak; a folder that only leads to something readable is visible. */
#include "hub.h"
#include "auth.h"
#include "meta.h"
#include "acl.h"
#include "oidc.h"
#include "members.h"
#include "op_http.h"
#include "api.h"
#include "../core/chunker.h"
#include "ops/ops.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <stdlib.h>
#include <string.h>

struct acl *acl_load(struct db *db, int64_t ws, int64_t user, enum role role)
{
	struct acl *a = xcalloc(1, sizeof *a);
	a->role = role;
	a->dflt = PERM_NONE;
	struct db_stmt *st = db_query(db, "SELECT default_access FROM workspaces WHERE id = ?", ws);
	if (!st || db_step(st) != DB_ROW) {
		db_finalize(st);
		acl_free(a);
		return NULL;
	}
	a->dflt = perm_parse(db_col_text(st, 0));
	db_finalize(st);
	if (role >= ROLE_ADMIN)
		return a; /* entries cannot restrict owners and admins */
	/* Deleted items' entries too (no deleted_at filter): see struct acl_entry. */
	st = db_query(db,
	              "SELECT d.path, 0, e.perm, d.created_at, d.deleted_at FROM acl_entries e "
	              "JOIN folders d ON d.id = e.folder_id WHERE e.workspace_id = ? AND "
	              "e.user_id = ? "
	              "UNION ALL "
	              "SELECT CASE WHEN d.path = '/' THEN '/' || f.name ELSE d.path || '/' || "
	              "f.name END, 1, e.perm, f.created_at, f.deleted_at FROM acl_entries e JOIN "
	              "files f ON f.id = e.file_id JOIN folders d ON d.id = f.folder_id WHERE "
	              "e.workspace_id = ? AND e.user_id = ? AND f.purged_at IS NULL",
	              ws, user, ws, user);
	size_t cap = 0;
	int rc = DB_ERR;
	while (st && (rc = db_step(st)) == DB_ROW) {
		if (a->n == cap) {
			cap = cap ? cap * 2 : 8;
			a->e = xrealloc(a->e, cap * sizeof *a->e);
		}
		a->e[a->n].path = xstrdup(db_col_text(st, 0));
		a->e[a->n].file = db_col_int64(st, 1) != 0;
		a->e[a->n].perm = perm_parse(db_col_text(st, 2));
		a->e[a->n].from = db_col_int64(st, 3);
		a->e[a->n].until = db_col_is_null(st, 4) ? ACL_NOW : db_col_int64(st, 4);
		a->n++;
	}
	db_finalize(st);
	if (rc != DB_DONE) {
		acl_free(a);
		return NULL;
	}
	return a;
}

static int cmp_key(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

struct acl *req_acl(struct req *r)
{
	if (!r->acl)
		r->acl = acl_load(r->db, r->ws_id, r->user_id, r->role);
	return r->acl;
}

struct acl *op_acl(struct op_ctx *c)
{
	if (!c->acl) {
		c->acl = acl_load(c->db, c->ws_id, c->user_id, c->role);
		c->acl_owned = c->acl != NULL;
	}
	return c->acl;
}

void op_ctx_fini(struct op_ctx *c)
{
	if (c->acl_owned)
		acl_free(c->acl);
	c->acl = NULL;
	c->acl_owned = false;
}

bool op_require(struct op_ctx *c, const char *path, bool is_file, enum perm need, int64_t at,
                struct op_err *e)
{
	struct acl *a = op_acl(c);
	if (!a) {
		op_db(e);
		return false;
	}
	if (acl_perm_at(a, path, is_file, at) >= need)
		return true;
	if (!acl_visible_at(a, path, is_file, at))
		op_fail(e, OP_NOT_FOUND, "no such path: %s", path);
	else
		op_fail(e, OP_FORBIDDEN, "you may not %s %s",
		        need >= PERM_MANAGE  ? "manage access to"
		        : need >= PERM_WRITE ? "change"
		                             : "read",
		        path);
	return false;
}

bool op_subtree_writable(struct op_ctx *c, const char *folder, struct op_err *e)
{
	if (acl_subtree_at_least(op_acl(c), folder, PERM_WRITE))
		return true;
	op_fail(e, OP_FORBIDDEN, "%s holds things you may not change", folder);
	return false;
}

bool acl_require_at(struct req *r, const char *path, bool is_file, enum perm need, int64_t at)
{
	struct op_ctx c;
	struct op_err e = {0};
	req_op_ctx(r, &c);
	bool ok = op_require(&c, path, is_file, need, at, &e);
	req_op_end(r, &c);
	if (!ok)
		reply_op_err(r, &e);
	return ok;
}

bool acl_reads_all(struct req *r)
{
	struct acl *a = req_acl(r);
	return a && acl_subtree_at_least(a, "/", PERM_READ);
}

/* One row per (file, key): path of its folder, its name, key, value. */
int acl_sum_readable(struct req *r, struct db_stmt *st, int64_t threshold, struct acl_sums *out)
{
	struct acl *a = req_acl(r);
	struct keyed {
		char *key;
		int64_t v;
	} *rows = NULL;
	size_t n = 0, cap = 0;
	int64_t read = 0;
	int rc = a && st ? DB_ROW : DB_ERR;
	while (rc == DB_ROW && (rc = db_step(st)) == DB_ROW) {
		read++;
		char *p = path_join(db_col_text(st, 0), db_col_text(st, 1));
		if (acl_perm(a, p, true) >= PERM_READ) {
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				rows = xrealloc(rows, cap * sizeof *rows);
			}
			rows[n].key = xstrdup(db_col_text(st, 2));
			rows[n++].v = db_col_int64(st, 3);
		}
		free(p);
	}
	db_finalize(st);
	if (n)
		qsort(rows, n, sizeof *rows, cmp_key);
	memset(out, 0, sizeof *out);
	out->read = read;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(rows[i].key, rows[i - 1].key) != 0) {
			out->count++;
			out->sum += rows[i].v;
			out->below += rows[i].v < threshold;
		}
	for (size_t i = 0; i < n; i++)
		free(rows[i].key); /* after: each is compared with the next */
	free(rows);
	return rc == DB_DONE ? 0 : DB_ERR;
}

bool acl_require(struct req *r, const char *path, bool is_file, enum perm need)
{
	return acl_require_at(r, path, is_file, need, ACL_NOW);
}

/* ---- the ACL endpoints ---- */

/* Resolve path to a live file or folder id. 1 found, 0 not, <0 error. */
static int target_of(struct req *r, const char *path, bool *is_file, int64_t *id)
{
	struct file_info fi;
	int rc = meta_file_get(r->db, r->ws_id, path, &fi);
	if (rc == 1) {
		*is_file = true;
		*id = fi.id;
		return 1;
	}
	*is_file = false;
	return rc < 0 ? rc : meta_folder_id(r->db, r->ws_id, path, id);
}

/* GET acl?path=P: the caller's access there, and (to managers) its entries. */
enum MHD_Result api_acl_get(struct req *r)
{
	char *path = req_path_arg(r, "path");
	if (!path)
		return MHD_YES;
	bool is_file;
	int64_t id;
	struct acl *a = req_acl(r);
	int rc = a ? target_of(r, path, &is_file, &id) : DB_ERR;
	enum MHD_Result ret;
	if (rc < 0) {
		ret = reply_db_error(r);
	} else if (rc == 0 || !acl_visible(a, path, is_file)) {
		ret = reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such path: %s", path);
	} else {
		enum perm mine = acl_perm(a, path, is_file);
		json_t *entries = json_array();
		struct db_stmt *st =
		    mine < PERM_MANAGE
		        ? NULL
		        : db_query(
		              r->db,
		              is_file ? "SELECT u.id, u.email, e.perm, u.name FROM acl_entries e "
		                        "JOIN users "
		                        "u ON u.id = e.user_id WHERE e.file_id = ? ORDER BY u.email"
		                      : "SELECT u.id, u.email, e.perm, u.name FROM acl_entries e "
		                        "JOIN users "
		                        "u ON u.id = e.user_id WHERE e.folder_id = ? ORDER BY "
		                        "u.email",
		              id);
		while (st && db_step(st) == DB_ROW)
			json_array_append_new(entries, json_pack("{s:I, s:s, s:s, s:s?}", "user_id",
			                                         (json_int_t)db_col_int64(st, 0),
			                                         "email", db_col_text(st, 1),
			                                         "perm", db_col_text(st, 2), "name",
			                                         db_col_text(st, 3)));
		db_finalize(st);
		ret =
		    reply_json(r, MHD_HTTP_OK,
		               json_pack("{s:s, s:s, s:s, s:s, s:o}", "path", path, "type",
		                         is_file ? "file" : "folder", "effective", perm_name(mine),
		                         "default_access", perm_name(a->dflt), "entries", entries));
	}
	free(path);
	return ret;
}

/* PUT acl {path, email|user_id, perm}, and DELETE acl?path=P&user=ID
 * (ops/acl.c does it). */
static enum MHD_Result acl_change(struct req *r, const char *path, int64_t uid, enum perm perm)
{
	struct op_ctx c;
	struct op_err e = {0};
	req_op_ctx(r, &c);
	enum op_code rc = op_acl_set(&c, path, uid, perm, &e);
	req_op_end(r, &c);
	if (rc != OP_OK)
		return reply_op_err(r, &e);
	const char *what = perm == PERM_INVALID ? "removed" : perm_name(perm);
	return reply_json(
	    r, MHD_HTTP_OK,
	    json_pack("{s:s, s:I, s:s}", "path", path, "user_id", (json_int_t)uid, "perm", what));
}

enum MHD_Result api_acl_set(struct req *r)
{
	enum perm perm = perm_parse(json_get_str(r->json, "perm"));
	const char *email = json_get_str(r->json, "email");
	int64_t uid = 0;
	if (perm == PERM_INVALID)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_perm",
		                   "perm must be none, read, write or manage");
	if (!json_get_int(r->json, "user_id", &uid) && email &&
	    db_int64(r->db, &uid, "SELECT id FROM users WHERE email = ?", email) == DB_ERR)
		return reply_db_error(r);
	if (uid <= 0)
		return reply_error(r, MHD_HTTP_NOT_FOUND, "not_a_member",
		                   "give the email or user_id of a member");
	char *path = req_body_path(r, "path");
	if (!path)
		return MHD_YES;
	enum MHD_Result ret = acl_change(r, path, uid, perm);
	free(path);
	return ret;
}

enum MHD_Result api_acl_delete(struct req *r)
{
	int64_t uid = parse_id(req_arg(r, "user", NULL));
	if (uid <= 0)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "user (a member's id) is required");
	char *path = req_path_arg(r, "path");
	if (!path)
		return MHD_YES;
	enum MHD_Result ret = acl_change(r, path, uid, PERM_INVALID);
	free(path);
	return ret;
}

/* The workspace's numeric settings PATCH takes: name, least, most. */
static const struct {
	const char *name;
	int64_t min, max;
} int_settings[] = {
    {"quota_bytes", 0, INT64_MAX},       /* 0: no quota */
    {"max_file_bytes", 0, INT64_MAX},    /* 0: no limit */
    {"keep_versions", 0, 1000000},       /* 0: every version */
    {"keep_days", 0, 36500},             /* 0: forever */
    {"trash_days", 1, 36500},            /* deleted files stay restorable this long */
    {"gc_retention_s", 0, 3650 * 86400}, /* unreferenced chunks stay this long */
    {"replica_grace_s", 0, 365 * 86400}, /* an offline host's copies count this long */
    {"min_replicas", 1, 10},
    {"hub_cache_bytes", 0, INT64_MAX}, /* storage "hosts": the hub caches this much */
};
#define N_INT_SETTINGS (sizeof int_settings / sizeof *int_settings)

/* chunk_min, chunk_avg and chunk_max in the PATCH body, laid over the
 * workspace's current ones into *p (*given: any was). NULL, or why the
 * result is refused: each a power of two, 64 B <= min < avg < max <=
 * CHUNK_MAX_LIMIT (the chunker's rules; docs/chunking.md). */
static const char *chunking_patch(struct req *r, struct chunker_params *p, bool *given)
{
	static const char *const keys[] = {"chunk_min", "chunk_avg", "chunk_max"};
	int64_t v[3];
	*given = false;
	for (int i = 0; i < 3; i++)
		*given = *given || json_object_get(r->json, keys[i]);
	if (!*given)
		return NULL;
	if (hub_ws_chunking(r->db, r->ws_id, p) != 0)
		return "the workspace's chunk sizes could not be read; try again";
	v[0] = p->min;
	v[1] = p->avg;
	v[2] = p->max;
	for (int i = 0; i < 3; i++) {
		if (!json_object_get(r->json, keys[i]))
			continue;
		if (!json_get_int(r->json, keys[i], &v[i]) || v[i] < 64 ||
		    v[i] > (int64_t)CHUNK_MAX_LIMIT || (v[i] & (v[i] - 1)) != 0)
			return "chunk_min, chunk_avg and chunk_max are powers of two from 64 bytes "
			       "to 64 MiB";
	}
	p->min = (uint32_t)v[0];
	p->avg = (uint32_t)v[1];
	p->max = (uint32_t)v[2];
	if (!chunker_params_valid(p))
		return "chunk sizes need chunk_min < chunk_avg < chunk_max";
	return NULL;
}

/* GET /workspaces/{id}: the workspace's settings, for any member. */
enum MHD_Result api_workspace_get(struct req *r)
{
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT name, default_access, storage, quota_bytes, max_file_bytes, keep_versions, "
	    "keep_days, trash_days, gc_retention_s, replica_grace_s, min_replicas, "
	    "hub_cache_bytes, "
	    "chunk_min, chunk_avg, chunk_max FROM workspaces WHERE id = ?",
	    r->ws_id);
	if (!st || db_step(st) != DB_ROW) {
		db_finalize(st);
		return reply_db_error(r);
	}
	json_t *o = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)r->ws_id, "name",
	                      db_col_text(st, 0), "default_access", db_col_text(st, 1), "storage",
	                      db_col_text(st, 2));
	for (size_t i = 0; i < N_INT_SETTINGS; i++) {
		/* the columns 3..11 in int_settings' order; NULL reads as 0 (none) */
		json_object_set_new(o, int_settings[i].name,
		                    json_integer(db_col_int64(st, 3 + (int)i)));
	}
	json_object_set_new(o, "chunk_min", json_integer(db_col_int64(st, 12)));
	json_object_set_new(o, "chunk_avg", json_integer(db_col_int64(st, 13)));
	json_object_set_new(o, "chunk_max", json_integer(db_col_int64(st, 14)));
	json_object_set_new(o, "role", json_string(role_name(r->role)));
	db_finalize(st);
	oidc_settings_get(r->db, r->ws_id, o);
	return reply_json(r, MHD_HTTP_OK, o);
}

/* PATCH /workspaces/{id} {default_access?, name?, storage?, a number from
 * int_settings?}: owners and admins. */
enum MHD_Result api_workspace_update(struct req *r)
{
	if (r->role < ROLE_ADMIN)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "only owners and admins change workspace settings");
	const char *da = json_get_str(r->json, "default_access");
	const char *name = json_get_str(r->json, "name");
	json_t *jn = json_object_get(r->json, "name");
	const char *storage = json_get_str(r->json, "storage");
	json_t *js = json_object_get(r->json, "storage");
	enum perm p = da ? perm_parse(da) : PERM_INVALID;
	int64_t vals[N_INT_SETTINGS];
	bool given[N_INT_SETTINGS], any = da || jn || js;
	for (size_t i = 0; i < N_INT_SETTINGS; i++) {
		given[i] = json_object_get(r->json, int_settings[i].name) != NULL;
		any = any || given[i];
		if (given[i] && (!json_get_int(r->json, int_settings[i].name, &vals[i]) ||
		                 vals[i] < int_settings[i].min || vals[i] > int_settings[i].max))
			return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
			                   "%s takes a whole number in %lld..%lld",
			                   int_settings[i].name, (long long)int_settings[i].min,
			                   (long long)int_settings[i].max);
	}
	struct chunker_params cp;
	bool chunking = false;
	const char *bad = chunking_patch(r, &cp, &chunking);
	if (bad)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request", "%s", bad);
	any = any || chunking;
	char *oidc_domains = NULL;
	const char *oidc_role = NULL;
	int oidc = oidc_settings_parse(r, &oidc_domains, &oidc_role);
	if (oidc < 0)
		return MHD_YES;
	any = any || oidc;
	if ((json_object_get(r->json, "default_access") && (p < PERM_NONE || p > PERM_WRITE)) ||
	    (jn && (!name || !name_valid(name, json_string_length(jn)) || strlen(name) > 100)) ||
	    (js && (!storage || (strcmp(storage, "hub") && strcmp(storage, "hosts")))) || !any) {
		free(oidc_domains);
		return reply_error(
		    r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		    "give default_access (none, read or write), name, storage (hub or hosts), "
		    "quota_bytes, max_file_bytes, keep_versions, keep_days, trash_days, "
		    "gc_retention_s, replica_grace_s, min_replicas, hub_cache_bytes, chunk_min, "
		    "chunk_avg, chunk_max, oidc_domains or oidc_default_role");
	}
	if (meta_begin(r->db, r->ws_id) != DB_DONE) {
		free(oidc_domains);
		return reply_db_error(r);
	}
	int rc = DB_DONE;
	json_t *changed = json_object();
	for (size_t i = 0; i < N_INT_SETTINGS && rc == DB_DONE; i++) {
		if (!given[i])
			continue;
		/* Column names come from the table above, never from the request. */
		char *sql =
		    xasprintf("UPDATE workspaces SET %s = ? WHERE id = ?", int_settings[i].name);
		rc = db_run(r->db, sql, vals[i], r->ws_id);
		free(sql);
		json_object_set_new(changed, int_settings[i].name, json_integer(vals[i]));
	}
	if (rc == DB_DONE && chunking) {
		rc = db_run(
		    r->db,
		    "UPDATE workspaces SET chunk_min = ?, chunk_avg = ?, chunk_max = ? WHERE "
		    "id = ?",
		    (int64_t)cp.min, (int64_t)cp.avg, (int64_t)cp.max, r->ws_id);
		json_object_set_new(changed, "chunking",
		                    json_pack("{s:I, s:I, s:I}", "min", (json_int_t)cp.min, "avg",
		                              (json_int_t)cp.avg, "max", (json_int_t)cp.max));
	}
	/* Hosts pick new chunk sizes up from the event; they apply to new uploads. */
	json_t *payload = json_pack("{s:s?, s:s?, s:s?}", "default_access",
	                            da ? perm_name(p) : NULL, "name", name, "storage", storage);
	if (chunking)
		json_object_set(payload, "chunking", json_object_get(changed, "chunking"));
	if (rc == DB_DONE && oidc)
		rc = oidc_settings_apply(r->db, r->ws_id, oidc_domains, oidc_role, changed);
	free(oidc_domains);
	if (rc != DB_DONE ||
	    (da && db_run(r->db, "UPDATE workspaces SET default_access = ? WHERE id = ?",
	                  perm_name(p), r->ws_id) != DB_DONE) ||
	    (name && db_run(r->db, "UPDATE workspaces SET name = ? WHERE id = ?", name, r->ws_id) !=
	                 DB_DONE) ||
	    (storage && db_run(r->db, "UPDATE workspaces SET storage = ? WHERE id = ?", storage,
	                       r->ws_id) != DB_DONE) ||
	    meta_change(r->db, r->ws_id, "workspace.updated", "workspace", json_incref(payload)) !=
	        0 ||
	    meta_audit(
	        r, "workspace.update", name,
	        (json_object_set_new(changed, "default_access", da ? json_string(da) : json_null()),
	         json_object_set_new(changed, "storage",
	                             storage ? json_string(storage) : json_null()),
	         json_incref(changed))) != 0 ||
	    meta_commit(r) != DB_DONE) {
		json_decref(changed);
		json_decref(payload);
		db_rollback(r->db);
		return reply_db_error(r);
	}
	json_decref(changed);
	json_decref(payload);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1));
}
