/* dav_tree: the methods that read and change the tree — GET, HEAD, PUT, MKCOL,
 * DELETE, COPY, MOVE, OPTIONS — through the operations (ops/ops.h), so access
 * rules, quotas, the feed and the audit log apply as in the API; their errors
 * map to WebDAV statuses (op_dav_status). PUT streams through the hub's
 * streaming upload (upload.c), whose errors are typed the same way.
 *
 * Threads: the request's connection thread.
 */
#include "dav.h"
#include "../meta.h"
#include "../api.h"
#include "../upload.h"
#include "../download.h"
#include "../acl.h"
#include "../../core/path.h"
#include "../../core/util.h"
#include "../op_http.h"
#include "../ops/ops.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define COPY_MAX_ITEMS 100000

static bool overwrite_allowed(struct req *r)
{
	const char *o = req_header(r, "Overwrite");
	return !o || (o[0] != 'F' && o[0] != 'f');
}

/* The current version of the file at path, which the caller may read. */
static bool readable(struct op_ctx *c, const char *path, struct file_info *fi, struct op_err *e)
{
	int rc = meta_file_get(c->db, c->ws_id, path, fi);
	if (rc == 1)
		return op_require(c, path, true, PERM_READ, ACL_NOW, e);
	if (rc == 0)
		op_fail(e, OP_NOT_FOUND, "no such path: %s", path); /* as a hidden one reads */
	else
		op_db(e);
	return false;
}

/* Copy a file (or fail with e); dest's props replaced by src's. */
static bool copy_file(struct req *r, struct op_ctx *c, const char *src, const char *dest,
                      struct op_err *e)
{
	struct file_info fi;
	struct commit_result out;
	if (!readable(c, src, &fi, e) || !op_require(c, dest, true, PERM_WRITE, ACL_NOW, e) ||
	    op_copy_version(c, dest, &fi, &out, e) != OP_OK)
		return false;
	if (dav_dprops_copy(r, RES_FILE, fi.id, RES_FILE, out.file_id) != 0) {
		op_fail(e, OP_DB, "failed");
		return false;
	}
	return true;
}

static bool copy_folder_one(struct req *r, struct op_ctx *c, const char *src, const char *dest,
                            struct op_err *e)
{
	int64_t sid = 0;
	struct mkdir_result out;
	if (op_mkdir(c, dest, true, &out, e) != OP_OK)
		return false;
	if (meta_folder_id(r->db, r->ws_id, src, &sid) == 1 &&
	    dav_dprops_copy(r, RES_DIR, sid, RES_DIR, out.id) != 0) {
		op_fail(e, OP_DB, "failed");
		return false;
	}
	return true;
}

static char *rebase(const char *path, const char *from, const char *to)
{
	return xasprintf("%s%s", to, path + strlen(from));
}

/* A folder and (deep) everything below it the caller may read. */
static bool copy_tree(struct req *r, struct op_ctx *c, const char *src, const char *dest, bool deep,
                      struct op_err *e)
{
	if (!copy_folder_one(r, c, src, dest, e))
		return false;
	if (!deep)
		return true;
	char *prefix = xasprintf("%s/", strcmp(src, "/") == 0 ? "" : src);
	size_t n = 0, cap = 64;
	char **items = xcalloc(cap, sizeof *items); /* "d/path" or "f/path" */
	struct db_stmt *st =
	    db_query(r->db,
	             "SELECT 'd', path FROM folders WHERE workspace_id = ? AND deleted_at IS NULL "
	             "AND substr(path, 1, ?) = ? UNION ALL SELECT 'f', CASE WHEN d.path = '/' "
	             "THEN '/' || f.name ELSE d.path || '/' || f.name END FROM files f JOIN "
	             "folders d ON d.id = f.folder_id WHERE d.workspace_id = ? AND f.deleted_at IS "
	             "NULL AND d.deleted_at IS NULL AND (d.path = ? OR substr(d.path, 1, ?) = ?) "
	             "ORDER BY 1, 2",
	             r->ws_id, (int64_t)utf8_chars(prefix), prefix, r->ws_id, src,
	             (int64_t)utf8_chars(prefix), prefix);
	bool ok = st != NULL;
	while (ok && db_step(st) == DB_ROW && n < COPY_MAX_ITEMS) {
		if (n == cap)
			items = xrealloc(items, (cap *= 2) * sizeof *items);
		items[n++] = xasprintf("%s%s", db_col_text(st, 0), db_col_text(st, 1));
	}
	db_finalize(st);
	free(prefix);
	if (!ok)
		op_fail(e, OP_DB, "failed");
	struct acl *a = op_acl(c);
	for (size_t i = 0; ok && i < n; i++) {
		const char *p = items[i] + 1;
		bool file = items[i][0] == 'f';
		if (file ? acl_perm(a, p, true) < PERM_READ : !acl_visible(a, p, false))
			continue; /* what the caller cannot see is not copied */
		char *to = rebase(p, src, dest);
		ok = file ? copy_file(r, c, p, to, e) : copy_folder_one(r, c, p, to, e);
		free(to);
	}
	for (size_t i = 0; i < n; i++)
		free(items[i]);
	free(items);
	return ok;
}

/* COPY or MOVE once the request is checked: access, Overwrite, locks, then
 * the operations (what is in the way to the trash first). */
static enum MHD_Result copymove_ops(struct req *r, struct dav *d, const struct res *x,
                                    const struct res *dx, const char *dest, bool move, bool deep,
                                    const struct ifhdr *h, const struct locks *ls)
{
	struct op_ctx c;
	struct op_err e = {0};
	enum MHD_Result ret = MHD_YES;
	bool ok = true, is_file;
	req_op_ctx(r, &c);
	/* Every permission first (a destination the caller may not see stays
	 * unseen), and nothing in the way goes to the trash for a
	 * COPY or MOVE that then fails. */
	if (move &&
	    (!op_require(&c, d->path, x->kind == RES_FILE, PERM_WRITE, ACL_NOW, &e) ||
	     (x->kind == RES_DIR && !acl_subtree_at_least(op_acl(&c), d->path, PERM_WRITE) &&
	      op_fail(&e, OP_FORBIDDEN, "failed"))))
		ok = false;
	else if (!op_require(&c, dest, x->kind == RES_FILE, PERM_WRITE, ACL_NOW, &e))
		ok = false;
	if (!ok) {
		ret = dav_send_op_err(r, &e);
		goto out;
	}
	if (dx->kind && !overwrite_allowed(r)) {
		ret = dav_send_status(r, MHD_HTTP_PRECONDITION_FAILED);
		goto out;
	}
	if ((move && !dav_check_locks(r, d->path, true, x->kind == RES_DIR, h, ls, d)) ||
	    !dav_check_locks(r, dest, true, dx->kind == RES_DIR, h, ls, d))
		goto out;
	/* A file copied over a file becomes its new version (its history stays);
	 * anything else in the way goes to the trash first. */
	bool replace_in_place = !move && x->kind == RES_FILE && dx->kind == RES_FILE;
	if (dx->kind && !replace_in_place) {
		if (op_delete(&c, dest, &is_file, &e) != OP_OK) {
			ret = dav_send_op_err(r, &e);
			goto out;
		}
		dav_locks_drop_below(r, dest);
	}
	if (move) {
		ok = op_move(&c, d->path, dest, &e) == OP_OK;
		/* locks stay with the URL, not the resource */
		if (ok)
			dav_locks_drop_below(r, d->path);
	} else if (x->kind == RES_FILE) {
		ok = copy_file(r, &c, d->path, dest, &e);
	} else {
		ok = copy_tree(r, &c, d->path, dest, deep, &e);
	}
	ret = ok ? dav_send_status(r, dx->kind ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED)
	         : dav_send_op_err(r, &e);
out:
	req_op_end(r, &c);
	op_err_fini(&e);
	return ret;
}

enum MHD_Result dav_copymove(struct req *r, struct dav *d, const struct res *x, bool move,
                             const struct ifhdr *h, const struct locks *ls)
{
	const char *dh = req_header(r, "Destination");
	if (!dh)
		return dav_send_text(r, MHD_HTTP_BAD_REQUEST, "a Destination header is required");
	unsigned bad;
	char *dest = dav_url_to_path(r, d, dh, &bad);
	if (!dest)
		return dav_send_text(r, bad,
		                     bad == MHD_HTTP_BAD_GATEWAY
		                         ? "the destination is not in this workspace"
		                         : "the destination is not a valid path");
	if (path_reserved(dest)) {
		free(dest);
		return dav_send_text(r, MHD_HTTP_FORBIDDEN,
		                     "this name is reserved for hosts' state");
	}
	enum MHD_Result ret;
	char *dparent = dav_parent_of(dest);
	const char *depth = req_header(r, "Depth");
	bool deep = !depth || strcasecmp(depth, "infinity") == 0;
	struct res dx, px;
	if (strcmp(dest, d->path) == 0 || !dparent || (move && strcmp(d->path, "/") == 0)) {
		ret = dav_send_text(r, MHD_HTTP_FORBIDDEN, "source and destination are the same");
		goto out;
	}
	if (x->kind == RES_DIR && dav_inside(dest, d->path)) {
		ret =
		    dav_send_text(r, MHD_HTTP_CONFLICT, "cannot copy or move a folder into itself");
		goto out;
	}
	if (move && x->kind == RES_DIR && depth && !deep) {
		ret = dav_send_text(r, MHD_HTTP_BAD_REQUEST,
		                    "MOVE of a collection takes Depth: infinity");
		goto out;
	}
	if (dav_res_get(r, dest, &dx) < 0 || dav_res_get(r, dparent, &px) < 0) {
		ret = dav_send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		goto out;
	}
	if (px.kind != RES_DIR) {
		ret =
		    dav_send_text(r, MHD_HTTP_CONFLICT, "the destination's parent does not exist");
		goto out;
	}
	ret = copymove_ops(r, d, x, &dx, dest, move, deep, h, ls);
out:
	free(dest);
	free(dparent);
	return ret;
}

enum MHD_Result dav_options(struct req *r)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(resp, "DAV", "1, 2");
	MHD_add_response_header(resp, "MS-Author-Via", "DAV");
	MHD_add_response_header(resp, "Allow",
	                        "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, "
	                        "PROPPATCH, LOCK, UNLOCK");
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	return req_queue(r, MHD_HTTP_OK, resp);
}

enum MHD_Result dav_get(struct req *r, struct dav *d, const struct res *x)
{
	if (x->kind == RES_DIR) {
		const char *msg = "This is a roost WebDAV folder: mount it with a WebDAV client.\n";
		return dav_send_full(r, MHD_HTTP_OK, "text/plain; charset=utf-8", xstrdup(msg),
		                     strlen(msg), NULL, NULL, NULL, NULL);
	}
	struct file_info fi;
	struct op_ctx c;
	struct op_err e = {0};
	req_op_ctx(r, &c);
	bool ok = readable(&c, d->path, &fi, &e);
	req_op_end(r, &c);
	if (!ok)
		return dav_send_op_err(r, &e);
	char etag[96];
	dav_res_etag(x, etag);
	r->etag = etag;
	enum MHD_Result ret = serve_version(r, &fi, false);
	r->etag = NULL;
	return ret;
}

enum MHD_Result dav_delete(struct req *r, struct dav *d, const struct res *x, const struct ifhdr *h,
                           const struct locks *ls)
{
	if (strcmp(d->path, "/") == 0)
		return dav_send_text(r, MHD_HTTP_FORBIDDEN, "the workspace root cannot be deleted");
	if (!dav_check_locks(r, d->path, true, x->kind == RES_DIR, h, ls, d))
		return MHD_YES;
	struct op_ctx c;
	struct op_err e = {0};
	bool is_file;
	req_op_ctx(r, &c);
	enum op_code rc = op_delete(&c, d->path, &is_file, &e);
	req_op_end(r, &c);
	if (rc != OP_OK)
		return dav_send_op_err(r, &e);
	dav_locks_drop_below(r, d->path);
	return dav_send_status(r, MHD_HTTP_NO_CONTENT);
}

enum MHD_Result dav_mkcol(struct req *r, struct dav *d, const struct res *x, const struct ifhdr *h,
                          const struct locks *ls)
{
	if (d->len)
		return dav_send_text(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "MKCOL takes no body");
	if (x->kind)
		return dav_send_text(r, MHD_HTTP_METHOD_NOT_ALLOWED,
		                     "something exists there already");
	char *parent = dav_parent_of(d->path);
	struct res px;
	int rc = parent ? dav_res_get(r, parent, &px) : 0;
	free(parent);
	if (rc < 0)
		return dav_send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
	if (px.kind != RES_DIR)
		return dav_send_text(r, MHD_HTTP_CONFLICT, "the parent folder does not exist");
	if (!dav_check_locks(r, d->path, true, false, h, ls, d))
		return MHD_YES;
	struct op_ctx c;
	struct op_err e = {0};
	struct mkdir_result out;
	req_op_ctx(r, &c);
	bool made = op_mkdir(&c, d->path, false, &out, &e) == OP_OK;
	req_op_end(r, &c);
	if (!made)
		return dav_send_op_err(r, &e);
	return dav_send_status(r, MHD_HTTP_CREATED);
}

/* PUT on the request head: every check before the body streams in. */
enum MHD_Result dav_put_begin(struct req *r, struct dav *d)
{
	struct res x, px;
	char *parent = dav_parent_of(d->path);
	int rc = parent ? dav_res_get(r, parent, &px) : 0;
	free(parent);
	if (rc >= 0)
		rc = dav_res_get(r, d->path, &x);
	if (rc < 0)
		return dav_send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
	if (!strcmp(d->path, "/") || x.kind == RES_DIR)
		return dav_send_text(r, MHD_HTTP_METHOD_NOT_ALLOWED, "a folder cannot be PUT");
	if (px.kind != RES_DIR)
		return dav_send_text(r, MHD_HTTP_CONFLICT, "the parent folder does not exist");
	if (req_header(r, "Content-Range"))
		return dav_send_text(r, MHD_HTTP_BAD_REQUEST, "partial PUT is not supported");
	struct op_ctx c;
	struct op_err e = {0};
	req_op_ctx(r, &c);
	bool may = op_require(&c, d->path, true, PERM_WRITE, ACL_NOW, &e);
	req_op_end(r, &c);
	if (!may)
		return dav_send_op_err(r, &e);
	struct ifhdr h;
	const char *ih = req_header(r, "If");
	if (ih && !dav_ifhdr_parse(r, d, ih, &h))
		return dav_send_text(r, MHD_HTTP_BAD_REQUEST, "malformed If header");
	if (!ih)
		memset(&h, 0, sizeof h);
	struct locks ls;
	enum MHD_Result ret = MHD_YES;
	if (dav_locks_load(r, &ls) < 0) {
		ret = dav_send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		goto out;
	}
	if (!dav_check_preconditions(r, d, d->path, &x, &h, &ls) ||
	    !dav_check_locks(r, d->path, x.kind == RES_NONE, false, &h, &ls, d))
		goto out;
	d->put_existed = x.kind == RES_FILE;
	enum op_code up = upload_stream_begin(r, xstrdup(d->path), &e);
	d->up = r->state;
	d->up_free = r->state_free;
	r->state = d;
	r->state_free = dav_state_free;
	if (up != OP_OK)
		ret = dav_send_op_err(r, &e);
out:
	dav_locks_free(&ls);
	dav_ifhdr_free(&h);
	return ret;
}

enum MHD_Result dav_put(struct req *r, struct dav *d)
{
	r->state = d->up;
	struct op_err e = {0};
	json_t *v = upload_stream_commit(r, &e);
	r->state = d;
	if (!v)
		return dav_send_op_err(r, &e);
	char etag[80];
	snprintf(etag, sizeof etag, "\"%.*s\"", ETAG_HEX,
	         json_string_value(json_object_get(v, "hash")));
	json_decref(v);
	return dav_send_full(r, d->put_existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED, NULL, NULL,
	                     0, "ETag", etag, NULL, NULL);
}
