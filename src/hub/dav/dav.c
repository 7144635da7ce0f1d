/* dav: WebDAV (RFC 4918, class 1 and 2) under /dav/WORKSPACE/ on the content
 * port, so a workspace mounts as a drive (rclone, davfs2, Finder, Explorer).
 *
 * This module owns the protocol only: authentication (Basic with an app
 * password or the account password, or a bearer token), the XML of PROPFIND,
 * PROPPATCH and LOCK, dead properties, locks and the If header. Every change
 * to the tree goes through the operations (ops/ops.h: op_mkdir, op_move,
 * op_delete, op_copy_version), so ACLs, quotas, the feed and the audit log
 * apply exactly as they do to the JSON API; their typed errors map to DAV
 * statuses (op_dav_status). A PUT streams through the hub's streaming upload
 * (upload_stream_begin, upload_stream_commit), which returns typed errors too.
 * Runs on the request's connection thread.
 *
 * This file holds the route's three hooks, the answers and the URL and
 * resource helpers; dav_auth.c, dav_props.c, dav_lock.c and dav_tree.c the
 * rest (dav.h). */
#include "dav.h"
#include "../auth.h"
#include "route.h"
#include "../meta.h"
#include "../upload.h"
#include "../acl.h"
#include "../../core/path.h"
#include "../../core/util.h"
#include "../op_http.h"
#include "../ops/ops.h"

#include <ctype.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

bool dav_inside(const char *path, const char *folder)
{
	if (strcmp(folder, "/") == 0)
		return strcmp(path, "/") != 0;
	size_t n = strlen(folder);
	return strncmp(path, folder, n) == 0 && path[n] == '/';
}

char *dav_parent_of(const char *path)
{
	char *parent = NULL, *name = NULL;
	if (!path_split(path, &parent, &name))
		return NULL;
	free(name);
	return parent;
}

/* Percent-encode a path for an href: unreserved bytes and '/' stay. */
static void url_esc(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (isalnum(*p) || strchr("-._~/", *p))
			fputc(*p, f);
		else
			fprintf(f, "%%%02X", *p);
}

void dav_res_etag(const struct res *x, char out[96])
{
	if (x->kind == RES_FILE)
		snprintf(out, 96, "\"%.*s\"", ETAG_HEX, x->hash);
	else if (x->kind == RES_DIR)
		snprintf(out, 96, "\"d%lld-%lld\"", (long long)x->id, (long long)x->mtime);
	else
		out[0] = 0;
}

enum MHD_Result dav_send_full(struct req *r, unsigned status, const char *ctype, char *body,
                              size_t len, const char *h1, const char *v1, const char *h2,
                              const char *v2)
{
	struct MHD_Response *resp =
	    body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
	         : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (ctype)
		MHD_add_response_header(resp, "Content-Type", ctype);
	if (h1 && v1)
		MHD_add_response_header(resp, h1, v1);
	if (h2 && v2)
		MHD_add_response_header(resp, h2, v2);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	return req_queue(r, status, resp);
}

enum MHD_Result dav_send_status(struct req *r, unsigned status)
{
	return dav_send_full(r, status, NULL, NULL, 0, NULL, NULL, NULL, NULL);
}

enum MHD_Result dav_send_text(struct req *r, unsigned status, const char *msg)
{
	char *s = xasprintf("%s\n", msg);
	return dav_send_full(r, status, "text/plain; charset=utf-8", s, strlen(s), NULL, NULL, NULL,
	                     NULL);
}

/* An XML answer from a memstream (closed here). */
enum MHD_Result dav_send_xml(struct req *r, unsigned status, FILE *f, char **buf, size_t *len,
                             const char *h1, const char *v1)
{
	fclose(f);
	return dav_send_full(r, status, "application/xml; charset=utf-8", *buf, *len, h1, v1, NULL,
	                     NULL);
}

/* RFC 4918 §16: a precondition element in a DAV:error body. */
enum MHD_Result dav_send_error(struct req *r, unsigned status, const char *cond, const char *href)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:%s>",
	        cond);
	if (href) {
		fputs("<D:href>", f);
		markup_escape(f, href);
		fputs("</D:href>", f);
	}
	fprintf(f, "</D:%s></D:error>\n", cond);
	return dav_send_xml(r, status, f, &buf, &len, NULL, NULL);
}

enum MHD_Result dav_send_op_err(struct req *r, struct op_err *e)
{
	req_op_err_space(r, e);
	unsigned st = op_dav_status(e->code);
	op_err_fini(e);
	return dav_send_text(r, st, e->message);
}

static int res_lookup(struct req *r, const char *path, struct res *x)
{
	memset(x, 0, sizeof *x);
	struct file_info fi;
	int rc = meta_file_get(r->db, r->ws_id, path, &fi);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		x->kind = RES_FILE;
		x->id = fi.id;
		x->size = fi.size;
		x->mtime = x->ctime = fi.updated_at;
		snprintf(x->hash, sizeof x->hash, "%s", fi.hash);
		snprintf(x->ctype, sizeof x->ctype, "%s", fi.content_type);
		return 0;
	}
	struct db_stmt *st = db_query(r->db,
	                              "SELECT id, created_at, updated_at FROM folders WHERE "
	                              "workspace_id = ? AND path = ? AND deleted_at IS NULL",
	                              r->ws_id, path);
	if (!st)
		return DB_ERR;
	rc = db_step(st);
	if (rc == DB_ROW) {
		x->kind = RES_DIR;
		x->id = db_col_int64(st, 0);
		x->ctime = db_col_int64(st, 1);
		x->mtime = db_col_int64(st, 2);
	}
	db_finalize(st);
	return rc == DB_ERR ? DB_ERR : 0;
}

int dav_res_get(struct req *r, const char *path, struct res *x)
{
	int rc = res_lookup(r, path, x);
	struct acl *a = rc < 0 ? NULL : req_acl(r);
	if (rc >= 0 && !a)
		return DB_ERR;
	/* What the caller may not see does not exist for them: every method sees
	 * a hidden target, parent or destination as a missing one, so no answer
	 * (404, 405, 409, 412) tells one from the other. */
	if ((x->kind == RES_FILE && acl_perm(a, path, true) < PERM_READ) ||
	    (x->kind == RES_DIR && !acl_visible(a, path, false)))
		memset(x, 0, sizeof *x);
	return rc;
}

const char *dav_entity(int kind)
{
	return kind == RES_FILE ? "file" : "folder";
}

void dav_href_print(FILE *f, struct dav *d, const char *path, bool dir)
{
	fputs("/dav/", f);
	url_esc(f, d->ws_seg);
	if (strcmp(path, "/") == 0) {
		fputc('/', f);
		return;
	}
	url_esc(f, path);
	if (dir)
		fputc('/', f);
}

char *dav_href_new(struct dav *d, const char *path, bool dir)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	dav_href_print(f, d, path, dir);
	fclose(f);
	return buf;
}

/* A URL or absolute path (Destination, a resource tag) to a normalized path in
 * this request's workspace. NULL with *status 400 (bad) or 502 (elsewhere). */
char *dav_url_to_path(struct req *r, struct dav *d, const char *url, unsigned *status)
{
	char *seg = NULL, *rest = NULL, *out = NULL;
	*status = dav_url_split(url, &seg, &rest);
	if (*status == 0 && strcmp(seg, d->ws_seg) != 0 && dav_ws_resolve(r, seg) != r->ws_id) {
		*status = MHD_HTTP_BAD_GATEWAY;
	} else if (*status == 0) {
		const char *why;
		*status = MHD_HTTP_BAD_REQUEST; /* if the path is not valid */
		out = path_normalize(rest ? rest : "", rest ? strlen(rest) : 0, &why);
	}
	free(seg);
	free(rest);
	return out;
}

void dav_state_free(void *p)
{
	struct dav *d = p;
	if (d->up && d->up_free)
		d->up_free(d->up);
	free(d->ws_seg);
	free(d->path);
	free(d->body);
	free(d);
}

/* /dav/ itself: the caller's workspaces, as folders. */
static enum MHD_Result dav_root(struct req *r, struct dav *d)
{
	if (strcmp(r->method, "OPTIONS") == 0)
		return dav_options(r);
	if (strcmp(r->method, "PROPFIND") != 0 && strcmp(r->method, "GET") != 0 &&
	    strcmp(r->method, "HEAD") != 0)
		return dav_send_text(r, MHD_HTTP_METHOD_NOT_ALLOWED,
		                     "the list of workspaces is read-only");
	const char *depth = req_header(r, "Depth");
	bool deep = depth && strcmp(depth, "1") == 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">"
	      "<D:response><D:href>/dav/</D:href><D:propstat><D:prop><D:resourcetype>"
	      "<D:collection/></D:resourcetype><D:displayname>roost</D:displayname></D:prop>"
	      "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>",
	      f);
	struct db_stmt *st = deep ? db_query(r->db,
	                                     "SELECT w.name FROM workspaces w JOIN memberships m "
	                                     "ON m.workspace_id = w.id WHERE m.user_id = ? ORDER "
	                                     "BY w.id",
	                                     r->user_id)
	                          : NULL;
	while (st && db_step(st) == DB_ROW) {
		fputs("<D:response><D:href>/dav/", f);
		url_esc(f, db_col_text(st, 0));
		fputs("/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/>"
		      "</D:resourcetype><D:displayname>",
		      f);
		markup_escape(f, db_col_text(st, 0));
		fputs("</D:displayname></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
		      "</D:response>",
		      f);
	}
	db_finalize(st);
	fputs("</D:multistatus>\n", f);
	(void)d;
	return dav_send_xml(r, MHD_HTTP_MULTI_STATUS, f, &buf, &len, NULL, NULL);
}

size_t dav_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	bool dav = strncmp(s, "/dav/", 5) == 0;
	size_t n = MHD_http_unescape(s);
	for (size_t i = 0; dav && i < n; i++)
		if (s[i] == 0)
			s[i] = 0x01;
	return n;
}

static bool is_content_port(struct req *r)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_DAEMON);
	return ci && ci->daemon == r->hub->content;
}

static pthread_once_t dav_once = PTHREAD_ONCE_INIT;

static void dav_init_once(void)
{
	xmlInitParser();
	dav_auth_init();
}

enum MHD_Result dav_begin(struct req *r)
{
	pthread_once(&dav_once, dav_init_once);
	if (!is_content_port(r))
		return dav_send_text(r, MHD_HTTP_NOT_FOUND, "WebDAV is served on the content port");
	struct dav *d = xcalloc(1, sizeof *d);
	r->state = d;
	r->state_free = dav_state_free;
	r->body_limit = DAV_XML_MAX;
	/* OPTIONS answers without a login: Windows and Office probe with it. */
	if (strcmp(r->method, "OPTIONS") == 0)
		return MHD_YES;
	if (dav_auth(r) != 0)
		return MHD_YES;
	const char *rest = r->url + 4; /* after "/dav" */
	if (*rest == '/')
		rest++;
	const char *slash = strchr(rest, '/');
	d->ws_seg = slash ? xstrndup(rest, (size_t)(slash - rest)) : xstrdup(rest);
	if (!*d->ws_seg)
		return MHD_YES; /* /dav/ itself */
	r->ws_id = dav_ws_resolve(r, d->ws_seg);
	if (r->ws_id)
		r->role = auth_role(r->db, r->ws_id, r->user_id);
	if (!r->ws_id || r->role == ROLE_NONE || (r->host_id && r->host_ws != r->ws_id))
		return dav_send_text(r, MHD_HTTP_NOT_FOUND, "no such workspace");
	const char *p = slash ? slash : "/", *why;
	d->path = path_normalize(p, strlen(p), &why);
	if (!d->path) {
		char *msg = xasprintf("invalid path: %s", why);
		enum MHD_Result ret = dav_send_text(r, MHD_HTTP_BAD_REQUEST, msg);
		free(msg);
		return ret;
	}
	/* Reserved names (core/path.h) take no writes, by any method. */
	const char *m = r->method;
	if (path_reserved(d->path) && strcmp(m, "GET") && strcmp(m, "HEAD") &&
	    strcmp(m, "PROPFIND") && strcmp(m, "OPTIONS"))
		return dav_send_text(r, MHD_HTTP_FORBIDDEN,
		                     "this name is reserved for hosts' state");
	if (strcmp(m, "PUT") == 0)
		return dav_put_begin(r, d);
	return MHD_YES;
}

int dav_data(struct req *r, const char *data, size_t len)
{
	struct dav *d = r->state;
	if (d->up) {
		r->state = d->up;
		int rc = api_upload_data(r, data, len);
		r->state = d;
		return rc;
	}
	if (d->len + len > DAV_XML_MAX)
		return -1; /* server.c answers 413 past body_limit */
	if (d->len + len + 1 > d->cap) {
		d->cap = (d->len + len + 1) * 2;
		d->body = xrealloc(d->body, d->cap);
	}
	memcpy(d->body + d->len, data, len);
	d->len += len;
	d->body[d->len] = 0;
	return 0;
}

enum MHD_Result dav_handle(struct req *r)
{
	struct dav *d = r->state;
	const char *m = r->method;
	if (strcmp(m, "OPTIONS") == 0)
		return dav_options(r);
	if (!d->path)
		return dav_root(r, d);
	if (strcmp(m, "PUT") == 0)
		return dav_put(r, d);
	struct res x;
	struct ifhdr h;
	struct locks ls = {0};
	memset(&h, 0, sizeof h);
	enum MHD_Result ret = MHD_YES;
	const char *ih = req_header(r, "If");
	if (ih && !dav_ifhdr_parse(r, d, ih, &h))
		return dav_send_text(r, MHD_HTTP_BAD_REQUEST, "malformed If header");
	if (dav_res_get(r, d->path, &x) < 0 || dav_locks_load(r, &ls) < 0) {
		ret = dav_send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		goto out;
	}
	bool creates = strcmp(m, "MKCOL") == 0 || strcmp(m, "LOCK") == 0;
	if (!x.kind && !creates && strcmp(m, "UNLOCK") != 0) {
		ret = dav_send_text(r, MHD_HTTP_NOT_FOUND, "not found");
		goto out;
	}
	if (!dav_check_preconditions(r, d, d->path, &x, &h, &ls))
		goto out;
	bool writes = strcmp(m, "PROPPATCH") == 0 || strcmp(m, "LOCK") == 0;
	if (writes) {
		struct op_ctx c;
		struct op_err e = {0};
		req_op_ctx(r, &c);
		bool may = op_require(&c, d->path, x.kind != RES_DIR, PERM_WRITE, ACL_NOW, &e);
		req_op_end(r, &c);
		if (!may) {
			ret = dav_send_op_err(r, &e);
			goto out;
		}
	}
	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
		ret = dav_get(r, d, &x);
	else if (strcmp(m, "PROPFIND") == 0)
		ret = dav_propfind(r, d, &x, &ls);
	else if (strcmp(m, "PROPPATCH") == 0)
		ret = dav_check_locks(r, d->path, false, false, &h, &ls, d)
		          ? dav_proppatch(r, d, &x)
		          : MHD_YES;
	else if (strcmp(m, "MKCOL") == 0)
		ret = dav_mkcol(r, d, &x, &h, &ls);
	else if (strcmp(m, "DELETE") == 0)
		ret = dav_delete(r, d, &x, &h, &ls);
	else if (strcmp(m, "COPY") == 0 || strcmp(m, "MOVE") == 0)
		ret = dav_copymove(r, d, &x, strcmp(m, "MOVE") == 0, &h, &ls);
	else if (strcmp(m, "LOCK") == 0)
		ret = dav_lock(r, d, &x, &h, &ls);
	else if (strcmp(m, "UNLOCK") == 0)
		ret = dav_unlock(r, d, &ls);
	else
		ret = dav_send_text(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method not supported here");
out:
	dav_locks_free(&ls);
	dav_ifhdr_free(&h);
	return ret;
}
