/* api: workspace and file-tree endpoints: list, info, versions, audit,
 * and the adapters of mkdir, move and delete (ops/files.c does them). */
#include "hub.h"
#include "meta.h"
#include "api.h"
#include "acl.h"
#include "limits.h"
#include "members.h"
#include "op_http.h"
#include "ops/ops.h"
#include "trash.h"
#include "../core/json.h"
#include "../core/jwt.h"
#include "../core/path.h"
#include "../core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int hub_ws_chunking(struct db *db, int64_t ws, struct chunker_params *p)
{
	struct db_stmt *st =
	    db_query(db, "SELECT chunk_min, chunk_avg, chunk_max FROM workspaces WHERE id = ?", ws);
	if (!st)
		return DB_ERR;
	int r = db_step(st);
	if (r == DB_ROW) {
		p->min = (uint32_t)db_col_int64(st, 0);
		p->avg = (uint32_t)db_col_int64(st, 1);
		p->max = (uint32_t)db_col_int64(st, 2);
	}
	db_finalize(st);
	return r == DB_ROW ? 0 : DB_ERR;
}

enum MHD_Result api_workspaces(struct req *r)
{
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT w.id, w.name, m.role, w.chunk_min, w.chunk_avg, w.chunk_max, k.last_seq "
	    "FROM workspaces w JOIN memberships m ON m.workspace_id = w.id "
	    "JOIN workspace_counters k ON k.workspace_id = w.id "
	    "WHERE m.user_id = ? AND (? = 0 OR w.id = ?) ORDER BY w.id",
	    r->user_id, r->host_ws, r->host_ws); /* a host sees its own only */
	if (!st)
		return reply_db_error(r);
	json_t *arr = json_array();
	while (db_step(st) == DB_ROW)
		json_array_append_new(arr,
		                      json_pack("{s:I, s:s, s:s, s:{s:I, s:I, s:I}, s:I}", "id",
		                                (json_int_t)db_col_int64(st, 0), "name",
		                                db_col_text(st, 1), "role", db_col_text(st, 2),
		                                "chunking", "min", (json_int_t)db_col_int64(st, 3),
		                                "avg", (json_int_t)db_col_int64(st, 4), "max",
		                                (json_int_t)db_col_int64(st, 5), "last_seq",
		                                (json_int_t)db_col_int64(st, 6)));
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "workspaces", arr));
}

static json_t *file_json(const struct file_info *fi, const char *path)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:I}", "type", "file", "name",
	                 fi->name, "path", path, "id", (json_int_t)fi->id, "size",
	                 (json_int_t)fi->size, "version", (json_int_t)fi->version_no, "hash",
	                 fi->hash, "content_type", fi->content_type, "modified_at",
	                 (json_int_t)fi->updated_at);
}

/* A folder listing goes page by page in (kind, name) order: folders first,
 * then files, each by name as the database sorts it. A cursor names the last
 * entry a page gave ("d:NAME" or "f:NAME", base64url): the next page starts
 * after it, so entries added or removed between pages never make another
 * entry appear twice or go missing. */
#define LIST_LIMIT_DEFAULT 1000
#define LIST_LIMIT_MAX     10000
#define LIST_BATCH_MAX     1024
#define LIST_CURSOR_MAX    (2 + NAME_MAX_BYTES)

enum { LIST_FOLDERS, LIST_FILES, LIST_END };

/* A growing buffer of JSON text. */
struct jbuf {
	char *p;
	size_t len, cap;
};

static void jb_put(struct jbuf *b, const char *s, size_t n)
{
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void jb_lit(struct jbuf *b, const char *s)
{
	jb_put(b, s, strlen(s));
}

static void jb_int(struct jbuf *b, int64_t v)
{
	char num[24], *o = num + sizeof num;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do
		*--o = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--o = '-';
	jb_put(b, o, (size_t)(num + sizeof num - o));
}

/* s as a JSON string: '"' and '\' escaped, control characters as \u00XX. */
static void jb_str(struct jbuf *b, const char *s)
{
	jb_put(b, "\"", 1);
	const unsigned char *c = (const unsigned char *)s;
	while (*c) {
		size_t run = 0;
		while (c[run] && c[run] >= 0x20 && c[run] != '"' && c[run] != '\\')
			run++;
		jb_put(b, (const char *)c, run);
		c += run;
		if (*c) {
			char esc[8];
			int n = *c < 0x20 ? snprintf(esc, sizeof esc, "\\u%04x", *c)
			                  : snprintf(esc, sizeof esc, "\\%c", *c);
			jb_put(b, esc, (size_t)n);
			c++;
		}
	}
	jb_put(b, "\"", 1);
}

/* Where a page goes: a JSON array (WebDAV and share pages list a whole folder
 * through list_entries), or JSON text written straight out, for GET list: a
 * page of 10,000 entries as jansson objects is 100,000 small allocations. */
struct list_out {
	json_t *entries;
	struct jbuf *text;
	size_t n;
	int last_kind;
	struct jbuf last_name; /* of the last entry given */
};

static void put_folder(struct jbuf *b, struct db_stmt *st, const char *p)
{
	jb_lit(b, "{\"type\":\"folder\",\"name\":");
	jb_str(b, db_col_text(st, 1));
	jb_lit(b, ",\"path\":");
	jb_str(b, p);
	jb_lit(b, ",\"id\":");
	jb_int(b, db_col_int64(st, 0));
	jb_lit(b, ",\"modified_at\":");
	jb_int(b, db_col_int64(st, 2));
	jb_lit(b, "}");
}

static void put_file(struct jbuf *b, struct db_stmt *st, const char *p)
{
	const char *ct = db_col_text(st, 5), *by = db_col_text(st, 7);
	jb_lit(b, "{\"type\":\"file\",\"name\":");
	jb_str(b, db_col_text(st, 1));
	jb_lit(b, ",\"path\":");
	jb_str(b, p);
	jb_lit(b, ",\"id\":");
	jb_int(b, db_col_int64(st, 0));
	jb_lit(b, ",\"size\":");
	jb_int(b, db_col_int64(st, 2));
	jb_lit(b, ",\"version\":");
	jb_int(b, db_col_int64(st, 3));
	jb_lit(b, ",\"hash\":");
	jb_str(b, db_col_text(st, 4));
	jb_lit(b, ",\"content_type\":");
	jb_str(b, ct ? ct : "");
	jb_lit(b, ",\"modified_at\":");
	jb_int(b, db_col_int64(st, 6));
	jb_lit(b, ",\"modified_by\":");
	jb_str(b, by ? by : "");
	jb_lit(b, "}");
}

static void list_add(struct list_out *o, int kind, struct db_stmt *st, const char *p)
{
	if (o->text) {
		if (o->n)
			jb_lit(o->text, ",");
		(kind == LIST_FOLDERS ? put_folder : put_file)(o->text, st, p);
	} else {
		const char *ct = db_col_text(st, 5), *by = db_col_text(st, 7);
		json_array_append_new(
		    o->entries,
		    kind == LIST_FOLDERS
		        ? json_pack("{s:s, s:s, s:s, s:I, s:I}", "type", "folder", "name",
		                    db_col_text(st, 1), "path", p, "id",
		                    (json_int_t)db_col_int64(st, 0), "modified_at",
		                    (json_int_t)db_col_int64(st, 2))
		        : json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:I, s:s}", "type",
		                    "file", "name", db_col_text(st, 1), "path", p, "id",
		                    (json_int_t)db_col_int64(st, 0), "size",
		                    (json_int_t)db_col_int64(st, 2), "version",
		                    (json_int_t)db_col_int64(st, 3), "hash", db_col_text(st, 4),
		                    "content_type", ct ? ct : "", "modified_at",
		                    (json_int_t)db_col_int64(st, 6), "modified_by", by ? by : ""));
	}
	o->n++;
	o->last_kind = kind;
	o->last_name.len = 0;
	jb_lit(&o->last_name, db_col_text(st, 1));
}

/* The next at most n rows of one kind after the name *after (the index
 * folders_live_name or files_live_name gives them in order). */
static struct db_stmt *list_query(struct db *db, int kind, int64_t fid, const char *after, size_t n)
{
	if (kind == LIST_FOLDERS)
		return db_query(db,
		                "SELECT id, name, updated_at FROM folders WHERE parent_id = ? "
		                "AND deleted_at IS NULL AND name > ? ORDER BY name LIMIT ?",
		                fid, after, (int64_t)n);
	/* the current version's figures are on the file's row (migration 21) */
	return db_query(db,
	                "SELECT f.id, f.name, f.size, f.version_number, f.version_hash, "
	                "f.content_type, f.version_at, u.email FROM files f "
	                "LEFT JOIN users u ON u.id = f.version_by "
	                "WHERE f.folder_id = ? AND f.deleted_at IS NULL AND f.name > ? "
	                "AND f.current_version_id IS NOT NULL ORDER BY f.name LIMIT ?",
	                fid, after, (int64_t)n);
}

/* Up to limit entries the caller may see after (kind, after) into out.
 * *more: another entry the caller may see follows the last one added (so a
 * page never promises one that is hidden). 0, or DB_ERR. */
static int list_page(struct req *r, int64_t fid, const char *path, int kind, const char *after,
                     size_t limit, struct list_out *out, bool *more)
{
	struct acl *a = req_acl(r);
	/* The scan's position and each entry's path, in buffers reused row by row. */
	struct jbuf last = {0}, p = {0};
	jb_lit(&last, after);
	jb_lit(&p, path);
	if (strcmp(path, "/") != 0)
		jb_lit(&p, "/");
	size_t prefix = p.len, have = 0;
	int rc = a ? 0 : DB_ERR;
	*more = false;
	while (rc == 0 && kind != LIST_END && !*more) {
		size_t want = limit - have + 1, rows = 0;
		size_t batch = want < LIST_BATCH_MAX ? want : LIST_BATCH_MAX;
		struct db_stmt *st = list_query(r->db, kind, fid, last.p, batch);
		int s = st ? DB_ROW : DB_ERR;
		while (st && (s = db_step(st)) == DB_ROW) {
			const char *name = db_col_text(st, 1);
			rows++;
			last.len = 0;
			jb_lit(&last, name);
			p.len = prefix;
			jb_lit(&p, name);
			bool seen = kind == LIST_FOLDERS ? acl_visible(a, p.p, false)
			                                 : acl_perm(a, p.p, true) >= PERM_READ;
			if (seen && have == limit) {
				*more = true;
				break;
			}
			if (seen) {
				list_add(out, kind, st, p.p);
				have++;
			}
		}
		db_finalize(st);
		if (s != DB_ROW && s != DB_DONE)
			rc = DB_ERR;
		else if (!*more && rows < batch) {
			kind++;
			last.len = 0;
			jb_lit(&last, "");
		}
	}
	free(last.p);
	free(p.p);
	return rc;
}

/* A folder's entries the caller may see: folders first, then files. */
json_t *list_entries(struct req *r, int64_t fid, const char *path)
{
	struct list_out out = {.entries = json_array()};
	bool more;
	list_page(r, fid, path, LIST_FOLDERS, "", SIZE_MAX - 1, &out, &more);
	free(out.last_name.p);
	return out.entries;
}

/* The cursor after the entry (kind, name) (new string). */
static char *cursor_encode(int kind, const char *name)
{
	char *raw = xasprintf("%c:%s", kind == LIST_FOLDERS ? 'd' : 'f', name);
	size_t len = strlen(raw), cap = 4 * len / 3 + 4;
	char *out = xmalloc(cap);
	jwt_b64url_encode((const unsigned char *)raw, len, out, cap);
	free(raw);
	return out;
}

/* A cursor back into (kind, name): name gets a new string. false if it is
 * not one this hub made. */
static bool cursor_decode(const char *s, int *kind, char **name)
{
	unsigned char raw[LIST_CURSOR_MAX + 1];
	size_t n = strlen(s);
	if (n == 0 || n > 4 * (LIST_CURSOR_MAX + 2) / 3)
		return false;
	long len = jwt_b64url_decode(s, n, raw, sizeof raw - 1);
	if (len < 3 || raw[1] != ':' || (raw[0] != 'd' && raw[0] != 'f') ||
	    memchr(raw, 0, (size_t)len) || !name_valid((char *)raw + 2, (size_t)len - 2))
		return false;
	raw[len] = 0;
	*kind = raw[0] == 'd' ? LIST_FOLDERS : LIST_FILES;
	*name = xstrdup((char *)raw + 2);
	return true;
}

/* limit and cursor of GET list: false after answering 400. */
static bool list_args(struct req *r, size_t *limit, int *kind, char **after)
{
	const char *ls = req_arg(r, "limit", NULL), *cs = req_arg(r, "cursor", NULL);
	int64_t n = ls ? parse_id(ls) : LIST_LIMIT_DEFAULT;
	if (n <= 0 || n > LIST_LIMIT_MAX) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request", "limit must be 1..%d",
		            LIST_LIMIT_MAX);
		return false;
	}
	*limit = (size_t)n;
	*kind = LIST_FOLDERS;
	*after = NULL;
	if (cs && *cs && !cursor_decode(cs, kind, after)) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		            "cursor is not one a listing gave: list the folder again");
		return false;
	}
	if (!*after)
		*after = xstrdup("");
	return true;
}

enum MHD_Result api_list(struct req *r)
{
	size_t limit;
	int kind;
	char *after;
	if (!list_args(r, &limit, &kind, &after))
		return MHD_YES;
	char *path = req_path_arg(r, "path");
	if (!path) {
		free(after);
		return MHD_YES;
	}
	int64_t fid = 0;
	struct acl *a = req_acl(r);
	int rc = a ? meta_folder_id(r->db, r->ws_id, path, &fid) : DB_ERR;
	if (rc == 0) {
		struct file_info fi;
		rc = meta_file_get(r->db, r->ws_id, path, &fi);
		enum MHD_Result ret;
		if (rc == 1 && !acl_require(r, path, true, PERM_READ))
			ret = MHD_YES;
		else if (rc == 1)
			ret = reply_json(r, MHD_HTTP_OK,
			                 json_pack("{s:s, s:s, s:[o]}", "path", path, "type",
			                           "file", "entries", file_json(&fi, path)));
		else if (rc == 0)
			ret = reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such path: %s",
			                  path);
		else
			ret = reply_db_error(r);
		free(path);
		free(after);
		return ret;
	}
	if (rc < 0 || !acl_visible(a, path, false)) {
		enum MHD_Result ret = rc < 0 ? reply_db_error(r)
		                             : reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
		                                           "no such path: %s", path);
		free(path);
		free(after);
		return ret;
	}
	struct jbuf text = {0};
	struct list_out out = {.text = &text};
	bool more = false;
	jb_lit(&text, "{\"path\":");
	jb_str(&text, path);
	jb_lit(&text, ",\"type\":\"folder\",\"entries\":[");
	rc = list_page(r, fid, path, kind, after, limit, &out, &more);
	free(after);
	free(path);
	char *next = more && out.n ? cursor_encode(out.last_kind, out.last_name.p) : NULL;
	jb_lit(&text, "],\"next_cursor\":");
	if (next)
		jb_str(&text, next);
	else
		jb_lit(&text, "null");
	jb_lit(&text, "}");
	free(next);
	free(out.last_name.p);
	if (rc < 0) {
		free(text.p);
		return reply_db_error(r);
	}
	return reply_json_text(r, MHD_HTTP_OK, text.p, text.len);
}

enum MHD_Result api_info(struct req *r)
{
	char *path = req_path_arg(r, "path");
	if (!path)
		return MHD_YES;
	struct file_info fi;
	int64_t fid;
	enum MHD_Result ret;
	struct acl *a = req_acl(r);
	int rc = a ? meta_file_get(r->db, r->ws_id, path, &fi) : DB_ERR;
	if (rc == 1 && !acl_require(r, path, true, PERM_READ)) {
		ret = MHD_YES;
	} else if (rc == 1) {
		ret = reply_json(r, MHD_HTTP_OK, file_json(&fi, path));
	} else if (rc == 0 && (rc = meta_folder_id(r->db, r->ws_id, path, &fid)) == 1 &&
	           acl_visible(a, path, false)) {
		ret = reply_json(r, MHD_HTTP_OK,
		                 json_pack("{s:s, s:s, s:I}", "type", "folder", "path", path, "id",
		                           (json_int_t)fid));
	} else if (rc >= 0) {
		ret = reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such path: %s", path);
	} else {
		ret = reply_db_error(r);
	}
	free(path);
	return ret;
}

enum MHD_Result api_versions(struct req *r)
{
	char *path = req_path_arg(r, "path");
	if (!path)
		return MHD_YES;
	struct file_info fi;
	int rc = meta_file_get(r->db, r->ws_id, path, &fi);
	if (rc != 1 || !acl_require(r, path, true, PERM_READ)) {
		/* a missing file reads as a hidden one (acl_require) */
		enum MHD_Result ret = rc == 1   ? MHD_YES
		                      : rc == 0 ? reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
		                                              "no such path: %s", path)
		                                : reply_db_error(r);
		free(path);
		return ret;
	}
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT v.number, v.size, v.hash, v.created_at, u.email, u.name, " META_VIA_COLS
	    "FROM file_versions v LEFT JOIN users u ON u.id = v.created_by" META_VIA_JOINS(
	        "v.host_id", "v.share_id") "WHERE v.file_id = ? "
	                                   "ORDER BY v.number DESC",
	    fi.id);
	json_t *arr = json_array();
	while (st && db_step(st) == DB_ROW) {
		/* created_by: the user, "" for a share link's upload (as before "by") */
		const char *by = db_col_is_null(st, 9) ? db_col_text(st, 4) : NULL;
		json_t *v = json_pack(
		    "{s:I, s:I, s:s, s:I, s:s, s:b}", "version", (json_int_t)db_col_int64(st, 0),
		    "size", (json_int_t)db_col_int64(st, 1), "hash", db_col_text(st, 2),
		    "created_at", (json_int_t)db_col_int64(st, 3), "created_by", by ? by : "",
		    "current", db_col_int64(st, 0) == fi.version_no);
		meta_via_json(v, st, 6, by, false);
		if (by && !db_col_is_null(st, 5))
			json_object_set_new(v, "by_name", json_string(db_col_text(st, 5)));
		json_array_append_new(arr, v);
	}
	db_finalize(st);
	enum MHD_Result ret =
	    reply_json(r, MHD_HTTP_OK, json_pack("{s:s, s:o}", "path", path, "versions", arr));
	free(path);
	return ret;
}

enum MHD_Result api_mkdir(struct req *r)
{
	bool ok = true;
	bool parents = json_get_bool(r->json, "parents", false, &ok);
	if (!ok)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "'parents' must be a boolean");
	char *path = req_body_path(r, "path");
	if (!path)
		return MHD_YES;
	struct op_ctx c;
	struct op_err e = {0};
	struct mkdir_result out;
	req_op_ctx(r, &c);
	enum op_code rc = op_mkdir(&c, path, parents, &out, &e);
	req_op_end(r, &c);
	enum MHD_Result ret;
	if (rc != OP_OK)
		ret = reply_op_err(r, &e);
	else if (out.root)
		ret = reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "path", "/"));
	else
		ret = reply_json(r, out.created ? MHD_HTTP_CREATED : MHD_HTTP_OK,
		                 json_pack("{s:s, s:s, s:I, s:b}", "type", "folder", "path", path,
		                           "id", (json_int_t)out.id, "created", out.created));
	free(path);
	return ret;
}

enum MHD_Result api_move(struct req *r)
{
	char *from = req_body_path(r, "from");
	if (!from)
		return MHD_YES;
	char *to = req_body_path(r, "to");
	if (!to) {
		free(from);
		return MHD_YES;
	}
	struct op_ctx c;
	struct op_err e = {0};
	req_op_ctx(r, &c);
	enum op_code rc = op_move(&c, from, to, &e);
	req_op_end(r, &c);
	enum MHD_Result ret =
	    rc == OP_OK
	        ? reply_json(r, MHD_HTTP_OK, json_pack("{s:s, s:s}", "from", from, "to", to))
	        : reply_op_err(r, &e);
	free(from);
	free(to);
	return ret;
}

enum MHD_Result api_delete(struct req *r)
{
	char *path = req_path_arg(r, "path");
	if (!path)
		return MHD_YES;
	const char *perm = req_arg(r, "permanent", NULL);
	bool forever = perm && strcmp(perm, "0") != 0;
	if (forever && !trash_caller_may_purge(r)) {
		free(path);
		return MHD_YES;
	}
	struct op_ctx c;
	struct op_err e = {0};
	bool is_file;
	int64_t purged = 0;
	req_op_ctx(r, &c);
	enum op_code rc = forever ? op_delete_forever(&c, path, &is_file, &purged, &e)
	                          : op_delete(&c, path, &is_file, &e);
	req_op_end(r, &c);
	json_t *o = json_pack("{s:s, s:s}", "deleted", path, "type", is_file ? "file" : "folder");
	if (forever)
		json_object_set_new(o, "purged", json_integer(purged));
	enum MHD_Result ret =
	    rc == OP_OK ? reply_json(r, MHD_HTTP_OK, o) : (json_decref(o), reply_op_err(r, &e));
	free(path);
	return ret;
}

/* GET audit?limit=N&before=ID&action=A: the workspace's audit log, newest first,
 * for owners and admins. */
enum MHD_Result api_audit(struct req *r)
{
	if (r->role < ROLE_ADMIN)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "only owners and admins may read the audit log");
	const char *ls = req_arg(r, "limit", NULL), *bs = req_arg(r, "before", NULL);
	const char *action = req_arg(r, "action", NULL);
	int64_t limit = ls ? parse_id(ls) : 100, before = bs ? parse_id(bs) : INT64_MAX;
	if (limit <= 0 || limit > 1000 || before <= 0)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "limit must be 1..1000 and before a positive id");
	if (action && (strlen(action) > 64 || !*action))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "action must be 1..64 bytes");
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT a.id, a.action, a.target, a.at, a.client_addr, a.detail, "
	    "u.email, u.name, " META_VIA_COLS
	    "FROM audit_log a LEFT JOIN users u ON u.id = a.actor_user_id" META_VIA_JOINS(
	        "a.actor_host_id", "a.actor_share_id") "WHERE a.workspace_id = ? AND a.id < ? AND "
	                                               "COALESCE(?, a.action) = a.action "
	                                               "ORDER BY a.id DESC LIMIT ?",
	    r->ws_id, before, action, limit);
	if (!st)
		return reply_db_error(r);
	json_t *rows = json_array();
	while (db_step(st) == DB_ROW) {
		const char *target = db_col_text(st, 2), *addr = db_col_text(st, 4);
		const char *detail = db_col_text(st, 5), *email = db_col_text(st, 6);
		json_t *d = detail ? json_loads(detail, 0, NULL) : NULL;
		json_t *e = json_pack("{s:I, s:s, s:s?, s:I, s:s?, s:s?, s:o?}", "id",
		                      (json_int_t)db_col_int64(st, 0), "action", db_col_text(st, 1),
		                      "target", target, "at", (json_int_t)db_col_int64(st, 3),
		                      "client", addr, "actor", email, "detail", d);
		meta_via_json(e, st, 8, email, true);
		if (email && !db_col_is_null(st, 7) && json_is_string(json_object_get(e, "by")))
			json_object_set_new(e, "by_name", json_string(db_col_text(st, 7)));
		json_array_append_new(rows, e);
	}
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "entries", rows));
}
