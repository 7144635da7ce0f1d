/* dav_lock: write locks (dav_locks: per path), LOCK and UNLOCK, and the
 * conditions of a request: If (RFC 4918 §10.4), If-Match, If-None-Match.
 *
 * Threads: the request's connection thread.
 */
#include "dav.h"
#include "../meta.h"
#include "../upload.h"
#include "../../core/path.h"
#include "../../core/util.h"

#include <ctype.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LOCK_TIMEOUT_DEF_S 3600
#define LOCK_TIMEOUT_MAX_S (7 * 86400)

void dav_locks_free(struct locks *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		free(ls->l[i].token);
		free(ls->l[i].path);
		free(ls->l[i].owner);
	}
	free(ls->l);
	ls->l = NULL;
	ls->n = 0;
}

/* The workspace's live locks (a handful: they are loaded whole). */
int dav_locks_load(struct req *r, struct locks *ls)
{
	ls->l = NULL;
	ls->n = 0;
	struct db_stmt *st = db_query(r->db,
	                              "SELECT token, path, depth, scope, owner_xml, timeout_at, "
	                              "user_id FROM dav_locks WHERE workspace_id = ? AND "
	                              "timeout_at > ? ORDER BY created_at LIMIT 10000",
	                              r->ws_id, now_ms());
	if (!st)
		return DB_ERR;
	size_t cap = 0;
	int rc;
	while ((rc = db_step(st)) == DB_ROW) {
		if (ls->n == cap) {
			cap = cap ? cap * 2 : 8;
			ls->l = xrealloc(ls->l, cap * sizeof *ls->l);
		}
		struct lock *l = &ls->l[ls->n++];
		l->token = xstrdup(db_col_text(st, 0));
		l->path = xstrdup(db_col_text(st, 1));
		l->depth = (int)db_col_int64(st, 2);
		l->exclusive = strcmp(db_col_text(st, 3), "exclusive") == 0;
		l->owner = db_col_text(st, 4) ? xstrdup(db_col_text(st, 4)) : NULL;
		l->timeout_at = db_col_int64(st, 5);
		l->user_id = db_col_int64(st, 6);
	}
	db_finalize(st);
	return rc == DB_DONE ? 0 : DB_ERR;
}

bool dav_lock_covers(const struct lock *l, const char *path)
{
	return strcmp(l->path, path) == 0 || (l->depth != 0 && dav_inside(path, l->path));
}

int dav_locks_drop_below(struct req *r, const char *path)
{
	char *prefix = strcmp(path, "/") == 0 ? xstrdup("/") : xasprintf("%s/", path);
	int rc = db_run(r->db,
	                "DELETE FROM dav_locks WHERE workspace_id = ? AND (path = ? OR "
	                "substr(path, 1, ?) = ?)",
	                r->ws_id, path, (int64_t)utf8_chars(prefix), prefix);
	free(prefix);
	return rc == DB_DONE ? 0 : DB_ERR;
}

/* If tags name resources by URL: to a path in this request's workspace. */
struct tag_ctx {
	struct req *r;
	struct dav *d;
};

static char *tag_path(void *cls, const char *url, unsigned *status)
{
	struct tag_ctx *t = cls;
	return dav_url_to_path(t->r, t->d, url, status);
}

bool dav_ifhdr_parse(struct req *r, struct dav *d, const char *s, struct ifhdr *h)
{
	struct tag_ctx t = {r, d};
	return dav_ifhdr_parse_with(s, h, tag_path, &t);
}

/* A lock token the caller submitted (positively, in any list of If). */
static bool token_submitted(const struct ifhdr *h, const struct lock *l, int64_t uid)
{
	if (l->user_id != uid)
		return false;
	for (int i = 0; i < h->n; i++)
		for (int j = 0; j < h->l[i].n; j++)
			if (!h->l[i].c[j].not &&!h->l[i].c[j].etag &&
			    strcmp(h->l[i].c[j].val, l->token) == 0)
				return true;
	return false;
}

/* Does the If header hold? Lists are alternatives; a list's conditions all hold. */
static int ifhdr_eval(struct req *r, const struct ifhdr *h, const char *req_path,
                      const struct locks *ls, bool *result)
{
	*result = h->n == 0;
	for (int i = 0; i < h->n && !*result; i++) {
		const struct iflist *l = &h->l[i];
		if (l->foreign)
			continue;
		const char *path = l->tag ? l->tag : req_path;
		struct res x;
		if (dav_res_get(r, path, &x) < 0)
			return DB_ERR;
		char etag[96];
		dav_res_etag(&x, etag);
		bool all = true;
		for (int j = 0; j < l->n && all; j++) {
			const struct ifcond *c = &l->c[j];
			bool v = false;
			if (c->etag) {
				v = x.kind && strcmp(c->val, etag) == 0;
			} else {
				for (size_t k = 0; k < ls->n && !v; k++)
					v = strcmp(ls->l[k].token, c->val) == 0 &&
					    dav_lock_covers(&ls->l[k], path);
			}
			all = c->not ? !v : v;
		}
		*result = all;
	}
	return 0;
}

/* If-Match / If-None-Match (RFC 9110 §13) against the resource's ETag. */
static bool etag_listed(const char *hdr, const char *etag)
{
	if (strcmp(hdr, "*") == 0)
		return etag[0] != 0;
	if (!etag[0])
		return false;
	size_t n = strlen(etag);
	for (const char *p = hdr; (p = strstr(p, etag)); p += n)
		if ((p == hdr || strchr(" ,", p[-1]) || p[-1] == '/') &&
		    (p[n] == 0 || strchr(" ,", p[n])))
			return true;
	return false;
}

/* Preconditions of a request on path: If, If-Match, If-None-Match. Replies and
 * returns false when one fails. */
bool dav_check_preconditions(struct req *r, struct dav *d, const char *path, const struct res *x,
                             const struct ifhdr *h, const struct locks *ls)
{
	char etag[96];
	dav_res_etag(x, etag);
	const char *im = req_header(r, "If-Match"), *inm = req_header(r, "If-None-Match");
	if (im && !etag_listed(im, etag)) {
		dav_send_status(r, MHD_HTTP_PRECONDITION_FAILED);
		return false;
	}
	if (inm && etag_listed(inm, etag)) {
		bool safe = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
		if (safe)
			dav_send_full(r, MHD_HTTP_NOT_MODIFIED, NULL, NULL, 0, "ETag", etag, NULL,
			              NULL);
		else
			dav_send_status(r, MHD_HTTP_PRECONDITION_FAILED);
		return false;
	}
	bool ok;
	if (ifhdr_eval(r, h, path, ls, &ok) < 0) {
		dav_send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE,
		              "the metadata database is unavailable");
		return false;
	}
	if (!ok)
		dav_send_status(r, MHD_HTTP_PRECONDITION_FAILED);
	return ok;
}

/* May the caller change path? Locks on it (or above it, deep), with members
 * below it (subtree), or on its parent (membership: creating or removing it)
 * need their token in the If header. Replies 423 if not. */
bool dav_check_locks(struct req *r, const char *path, bool membership, bool subtree,
                     const struct ifhdr *h, const struct locks *ls, struct dav *d)
{
	char *parent = membership ? dav_parent_of(path) : NULL;
	/* Every exclusive lock needs its token; of shared locks, one token will do. */
	const struct lock *excl = NULL, *shared = NULL;
	bool shared_ok = false;
	for (size_t i = 0; i < ls->n; i++) {
		const struct lock *l = &ls->l[i];
		bool relevant = dav_lock_covers(l, path) ||
		                (subtree && dav_inside(l->path, path)) ||
		                (parent && strcmp(l->path, parent) == 0);
		if (!relevant)
			continue;
		bool mine = token_submitted(h, l, r->user_id);
		if (l->exclusive && !mine && !excl)
			excl = l;
		if (!l->exclusive) {
			shared = shared ? shared : l;
			shared_ok = shared_ok || mine;
		}
	}
	free(parent);
	const struct lock *blocking = excl ? excl : shared && !shared_ok ? shared : NULL;
	if (!blocking)
		return true;
	char *href = dav_href_new(d, blocking->path, false);
	dav_send_error(r, MHD_HTTP_LOCKED, "lock-token-submitted", href);
	free(href);
	return false;
}

void dav_activelock_print(FILE *f, struct dav *d, const struct lock *l)
{
	fprintf(f,
	        "<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:%s/>"
	        "</D:lockscope><D:depth>%s</D:depth>",
	        l->exclusive ? "exclusive" : "shared", l->depth ? "infinity" : "0");
	if (l->owner)
		fputs(l->owner, f);
	int64_t left = (l->timeout_at - now_ms()) / 1000;
	fprintf(f,
	        "<D:timeout>Second-%lld</D:timeout><D:locktoken><D:href>%s</D:href></D:locktoken>"
	        "<D:lockroot><D:href>",
	        (long long)(left > 0 ? left : 0), l->token);
	dav_href_print(f, d, l->path, false);
	fputs("</D:href></D:lockroot></D:activelock>", f);
}

static int64_t lock_timeout_s(struct req *r)
{
	const char *t = req_header(r, "Timeout");
	if (!t)
		return LOCK_TIMEOUT_DEF_S;
	while (*t == ' ')
		t++;
	if (strncasecmp(t, "Infinite", 8) == 0)
		return LOCK_TIMEOUT_MAX_S;
	if (strncasecmp(t, "Second-", 7) == 0) {
		long long v = strtoll(t + 7, NULL, 10);
		if (v <= 0)
			return LOCK_TIMEOUT_DEF_S;
		return v > LOCK_TIMEOUT_MAX_S ? LOCK_TIMEOUT_MAX_S : v;
	}
	return LOCK_TIMEOUT_DEF_S;
}

static void new_lock_token(char out[64])
{
	unsigned char b[16];
	randombytes_buf(b, sizeof b);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 64,
	         "opaquelocktoken:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x"
	         "%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

static enum MHD_Result send_lock(struct req *r, struct dav *d, const struct lock *l,
                                 unsigned status)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:prop xmlns:D=\"DAV:\">"
	      "<D:lockdiscovery>",
	      f);
	dav_activelock_print(f, d, l);
	fputs("</D:lockdiscovery></D:prop>\n", f);
	char hdr[80];
	snprintf(hdr, sizeof hdr, "<%s>", l->token);
	return dav_send_xml(r, status, f, &buf, &len, "Lock-Token", hdr);
}

/* Create an empty file at path (a LOCK on an unmapped URL, RFC 4918 §9.10.4). */
static bool create_empty(struct req *r, struct dav *d, struct op_err *e)
{
	void *mine = r->state;
	void (*mine_free)(void *) = r->state_free;
	json_t *v = NULL;
	if (upload_stream_begin(r, xstrdup(d->path), e) == OP_OK)
		v = upload_stream_commit(r, e);
	if (r->state && r->state_free)
		r->state_free(r->state);
	r->state = mine;
	r->state_free = mine_free;
	json_decref(v);
	return v != NULL;
}

/* An existing lock a new one would conflict with (RFC 4918 §6.1), or NULL. */
static const struct lock *lock_conflict(const struct locks *ls, const struct lock *nl)
{
	for (size_t i = 0; i < ls->n; i++) {
		const struct lock *l = &ls->l[i];
		bool overlap =
		    dav_lock_covers(l, nl->path) || (nl->depth && dav_inside(l->path, nl->path));
		if (overlap && (nl->exclusive || l->exclusive))
			return l;
	}
	return NULL;
}

enum MHD_Result dav_lock(struct req *r, struct dav *d, struct res *x, const struct ifhdr *h,
                         const struct locks *ls)
{
	int64_t now = now_ms(), timeout = lock_timeout_s(r);
	if (d->len == 0) {
		/* A refresh: the If header names the lock. */
		for (size_t i = 0; i < ls->n; i++) {
			struct lock *l = &ls->l[i];
			if (!dav_lock_covers(l, d->path) || !token_submitted(h, l, r->user_id))
				continue;
			l->timeout_at = now + timeout * 1000;
			if (db_run(r->db, "UPDATE dav_locks SET timeout_at = ? WHERE token = ?",
			           l->timeout_at, l->token) != DB_DONE)
				return dav_send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE,
				                     "database unavailable");
			return send_lock(r, d, l, MHD_HTTP_OK);
		}
		return dav_send_error(r, MHD_HTTP_PRECONDITION_FAILED,
		                      "lock-token-matches-request-uri", NULL);
	}
	xmlDocPtr doc = dav_xml_parse(d);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
	xmlNodePtr scope = dav_child(root, "lockscope"), type = dav_child(root, "locktype");
	if (!dav_is(root, "lockinfo") || !scope || !type || !dav_child(type, "write") ||
	    (!dav_child(scope, "exclusive") && !dav_child(scope, "shared"))) {
		xmlFreeDoc(doc);
		return dav_send_text(r, MHD_HTTP_BAD_REQUEST,
		                     "the body is not a write DAV:lockinfo");
	}
	const char *dh = req_header(r, "Depth");
	struct lock nl = {.exclusive = dav_child(scope, "exclusive") != NULL,
	                  .depth = dh && strcmp(dh, "0") == 0 ? 0 : -1,
	                  .path = d->path,
	                  .timeout_at = now + timeout * 1000,
	                  .user_id = r->user_id};
	xmlNodePtr owner = dav_child(root, "owner");
	nl.owner = owner ? dav_node_xml(owner) : NULL;
	xmlFreeDoc(doc);
	char token[64];
	new_lock_token(token);
	nl.token = token;
	enum MHD_Result ret;
	const struct lock *clash = lock_conflict(ls, &nl);
	if (clash) {
		char *href = dav_href_new(d, clash->path, false);
		ret = dav_send_error(r, MHD_HTTP_LOCKED, "no-conflicting-lock", href);
		free(href);
		goto out;
	}
	bool created = false;
	if (x->kind == RES_NONE) {
		char *parent = dav_parent_of(d->path);
		struct res px = {0};
		if (parent && dav_res_get(r, parent, &px) < 0)
			px.kind = RES_NONE;
		free(parent);
		if (px.kind != RES_DIR) {
			ret =
			    dav_send_text(r, MHD_HTTP_CONFLICT, "the parent folder does not exist");
			goto out;
		}
		if (!dav_check_locks(r, d->path, true, false, h, ls, d)) {
			ret = MHD_YES;
			goto out;
		}
		struct op_err e = {0};
		if (!create_empty(r, d, &e)) {
			ret = dav_send_op_err(r, &e);
			goto out;
		}
		created = true;
	}
	/* Again inside the workspace's lock: two LOCKs racing both saw no conflict. */
	struct locks fresh = {0};
	if (meta_begin(r->db, r->ws_id) != DB_DONE || dav_locks_load(r, &fresh) < 0) {
		db_rollback(r->db);
		ret = dav_send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		goto out;
	}
	clash = lock_conflict(&fresh, &nl);
	if (clash) {
		db_rollback(r->db);
		char *href = dav_href_new(d, clash->path, false);
		ret = dav_send_error(r, MHD_HTTP_LOCKED, "no-conflicting-lock", href);
		free(href);
		dav_locks_free(&fresh);
		goto out;
	}
	dav_locks_free(&fresh);
	if (db_run(r->db, "DELETE FROM dav_locks WHERE workspace_id = ? AND timeout_at <= ?",
	           r->ws_id, now) != DB_DONE ||
	    db_run(r->db,
	           "INSERT INTO dav_locks(token, workspace_id, path, depth, scope, owner_xml, "
	           "user_id, created_at, timeout_at) VALUES(?,?,?,?,?,?,?,?,?)",
	           nl.token, r->ws_id, nl.path, (int64_t)nl.depth,
	           nl.exclusive ? "exclusive" : "shared", nl.owner, r->user_id, now,
	           nl.timeout_at) != DB_DONE ||
	    meta_audit(r, "dav.lock", d->path, NULL) != 0 || meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		ret = dav_send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		goto out;
	}
	ret = send_lock(r, d, &nl, created ? MHD_HTTP_CREATED : MHD_HTTP_OK);
out:
	free(nl.owner);
	return ret;
}

enum MHD_Result dav_unlock(struct req *r, struct dav *d, const struct locks *ls)
{
	const char *h = req_header(r, "Lock-Token");
	if (!h)
		return dav_send_text(r, MHD_HTTP_BAD_REQUEST, "a Lock-Token header is required");
	while (*h == ' ')
		h++;
	size_t n = strlen(h);
	char *tok = n >= 2 && h[0] == '<' && h[n - 1] == '>' ? xstrndup(h + 1, n - 2) : xstrdup(h);
	enum MHD_Result ret = MHD_NO;
	bool found = false;
	for (size_t i = 0; i < ls->n && !found; i++) {
		const struct lock *l = &ls->l[i];
		if (strcmp(l->token, tok) != 0 || !dav_lock_covers(l, d->path))
			continue;
		found = true;
		if (l->user_id != r->user_id && r->role < ROLE_ADMIN) {
			ret = dav_send_text(r, MHD_HTTP_FORBIDDEN,
			                    "the lock belongs to someone else");
		} else if (db_run(r->db, "DELETE FROM dav_locks WHERE token = ?", tok) != DB_DONE ||
		           meta_audit(r, "dav.unlock", l->path, NULL) != 0) {
			ret =
			    dav_send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		} else {
			ret = dav_send_status(r, MHD_HTTP_NO_CONTENT);
		}
	}
	if (!found)
		ret = dav_send_error(r, MHD_HTTP_CONFLICT, "lock-token-matches-request-uri", NULL);
	free(tok);
	return ret;
}
