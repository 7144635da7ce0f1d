/* dav_props: PROPFIND and PROPPATCH. Live properties come from the tree;
 * dead ones are kept per file or folder row (dav_props), as XML fragments.
 *
 * Threads: the request's connection thread.
 */
#include "dav.h"
#include "../meta.h"
#include "../api.h"
#include "../limits.h"
#include "../../core/path.h"
#include "../../core/util.h"

#include <libxml/parser.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct dprop {
	int kind;
	int64_t id;
	char *ns, *name, *xml;
};

struct dprops {
	struct dprop *p;
	size_t n, cap;
};

#define DPROP_COLS "SELECT entity, entity_id, ns, name, value_xml FROM dav_props "

enum pf_mode { PF_ALL, PF_NAMES, PF_PROPS };
struct pname {
	const char *ns, *name;
};

struct pf {
	enum pf_mode mode;
	struct pname *want;
	size_t n;
	const struct locks *ls;
	const struct dprops *dead;
	const char *ws_name;
	int64_t quota, used; /* RFC 4331, when asked for by name; quota 0: none */
};

static const char *const live_names[] = {"creationdate",   "displayname",   "getcontentlength",
                                         "getcontenttype", "getetag",       "getlastmodified",
                                         "resourcetype",   "supportedlock", "lockdiscovery"};
#define N_LIVE (sizeof live_names / sizeof live_names[0])

struct patch {
	bool set;
	const char *ns, *name;
	char *xml;
};

static void fmt_http_date(int64_t ms, char out[40])
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
	         mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void fmt_iso_date(int64_t ms, char out[40])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 40, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void dprops_free(struct dprops *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->p[i].ns);
		free(d->p[i].name);
		free(d->p[i].xml);
	}
	free(d->p);
	memset(d, 0, sizeof *d);
}

static bool has_entity_refs(xmlNodePtr n)
{
	for (; n; n = n->next)
		if (n->type == XML_ENTITY_REF_NODE || n->type == XML_ENTITY_DECL ||
		    n->type == XML_DTD_NODE || has_entity_refs(n->children))
			return true;
	return false;
}

/* Is s one well-formed element that stands on its own: no DTD, no entity
 * but the five predefined, namespaces declared? Only such a value is stored
 * and replayed inside a PROPFIND answer. */
static bool fragment_ok(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > INT_MAX)
		return false;
	xmlParserCtxtPtr ctx = xmlNewParserCtxt();
	if (!ctx)
		abort();
	xmlDocPtr doc =
	    xmlCtxtReadMemory(ctx, s, (int)len, NULL, NULL,
	                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	bool ok = doc && ctx->wellFormed && ctx->nsWellFormed && !doc->intSubset &&
	          !doc->extSubset && xmlDocGetRootElement(doc) && !has_entity_refs(doc->children);
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctx);
	return ok;
}

static void dprops_add(struct dprops *d, struct db_stmt *st)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->p = xrealloc(d->p, d->cap * sizeof *d->p);
	}
	struct dprop *p = &d->p[d->n++];
	p->kind = strcmp(db_col_text(st, 0), "file") == 0 ? RES_FILE : RES_DIR;
	p->id = db_col_int64(st, 1);
	p->ns = xstrdup(db_col_text(st, 2));
	p->name = xstrdup(db_col_text(st, 3));
	/* A value stored before values were checked is replayed empty, so the
	 * answer stays well-formed. */
	p->xml = fragment_ok(db_col_text(st, 4)) ? xstrdup(db_col_text(st, 4)) : NULL;
}

/* Dead properties of one resource, and with children, of a folder's members. */
static int dprops_load(struct req *r, const struct res *x, bool children, struct dprops *d)
{
	struct db_stmt *st =
	    children
	        ? db_query(r->db,
	                   DPROP_COLS "WHERE workspace_id = ? AND ((entity = 'folder' AND "
	                              "(entity_id = ? OR entity_id IN (SELECT id FROM folders "
	                              "WHERE parent_id = ? AND deleted_at IS NULL))) OR (entity "
	                              "= 'file' AND entity_id IN (SELECT id FROM files WHERE "
	                              "folder_id = ? AND deleted_at IS NULL))) ORDER BY ns, name",
	                   r->ws_id, x->id, x->id, x->id)
	        : db_query(r->db,
	                   DPROP_COLS "WHERE workspace_id = ? AND entity = ? AND entity_id = ? "
	                              "ORDER BY ns, name",
	                   r->ws_id, dav_entity(x->kind), x->id);
	if (!st)
		return DB_ERR;
	int rc;
	while ((rc = db_step(st)) == DB_ROW)
		dprops_add(d, st);
	db_finalize(st);
	return rc == DB_DONE ? 0 : DB_ERR;
}

/* Copy dead properties onto another resource, replacing its own. */
int dav_dprops_copy(struct req *r, int skind, int64_t sid, int dkind, int64_t did)
{
	int rc = db_run(r->db,
	                "DELETE FROM dav_props WHERE workspace_id = ? AND entity = ? AND "
	                "entity_id = ?",
	                r->ws_id, dav_entity(dkind), did);
	if (rc == DB_DONE)
		rc = db_run(
		    r->db,
		    "INSERT INTO dav_props(workspace_id, entity, entity_id, ns, name, "
		    "value_xml) SELECT workspace_id, ?, ?, ns, name, value_xml FROM dav_props "
		    "WHERE workspace_id = ? AND entity = ? AND entity_id = ?",
		    dav_entity(dkind), did, r->ws_id, dav_entity(skind), sid);
	return rc == DB_DONE ? 0 : DB_ERR;
}

static const char *node_ns(xmlNodePtr n)
{
	return n->ns && n->ns->href ? (const char *)n->ns->href : "";
}

/* Print live property name of x; false if x has no such property. */
static bool live_print(FILE *f, struct dav *d, const struct pf *q, const char *name,
                       const char *path, const struct res *x, bool value)
{
	char buf[96];
	bool dir = x->kind == RES_DIR;
	if ((strcmp(name, "getcontentlength") == 0 || strcmp(name, "getcontenttype") == 0) && dir)
		return false;
	if (!value) {
		fprintf(f, "<D:%s/>", name);
		return true;
	}
	if (strcmp(name, "creationdate") == 0) {
		fmt_iso_date(x->ctime, buf);
		fprintf(f, "<D:creationdate>%s</D:creationdate>", buf);
	} else if (strcmp(name, "displayname") == 0) {
		const char *slash = strrchr(path, '/');
		fputs("<D:displayname>", f);
		markup_escape(f, strcmp(path, "/") == 0 ? q->ws_name : slash + 1);
		fputs("</D:displayname>", f);
	} else if (strcmp(name, "getcontentlength") == 0) {
		fprintf(f, "<D:getcontentlength>%lld</D:getcontentlength>", (long long)x->size);
	} else if (strcmp(name, "getcontenttype") == 0) {
		fputs("<D:getcontenttype>", f);
		markup_escape(f, x->ctype[0] ? x->ctype : "application/octet-stream");
		fputs("</D:getcontenttype>", f);
	} else if (strcmp(name, "getetag") == 0) {
		dav_res_etag(x, buf);
		fputs("<D:getetag>", f);
		markup_escape(f, buf);
		fputs("</D:getetag>", f);
	} else if (strcmp(name, "getlastmodified") == 0) {
		fmt_http_date(x->mtime, buf);
		fprintf(f, "<D:getlastmodified>%s</D:getlastmodified>", buf);
	} else if (strcmp(name, "resourcetype") == 0) {
		fputs(dir ? "<D:resourcetype><D:collection/></D:resourcetype>"
		          : "<D:resourcetype/>",
		      f);
	} else if (strcmp(name, "supportedlock") == 0) {
		fputs("<D:supportedlock><D:lockentry><D:lockscope><D:exclusive/></D:lockscope>"
		      "<D:locktype><D:write/></D:locktype></D:lockentry><D:lockentry><D:lockscope>"
		      "<D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>"
		      "</D:supportedlock>",
		      f);
	} else if (strcmp(name, "quota-used-bytes") == 0 && dir && q->used >= 0) {
		fprintf(f, "<D:quota-used-bytes>%lld</D:quota-used-bytes>", (long long)q->used);
	} else if (strcmp(name, "quota-available-bytes") == 0 && dir && q->quota > 0 &&
	           q->used >= 0) {
		int64_t left = q->quota - q->used;
		fprintf(f, "<D:quota-available-bytes>%lld</D:quota-available-bytes>",
		        (long long)(left > 0 ? left : 0));
	} else if (strcmp(name, "lockdiscovery") == 0) {
		fputs("<D:lockdiscovery>", f);
		for (size_t i = 0; i < q->ls->n; i++)
			if (dav_lock_covers(&q->ls->l[i], path))
				dav_activelock_print(f, d, &q->ls->l[i]);
		fputs("</D:lockdiscovery>", f);
	} else {
		return false;
	}
	return true;
}

static void empty_elem(FILE *f, const char *ns, const char *name)
{
	if (strcmp(ns, "DAV:") == 0) {
		fprintf(f, "<D:%s/>", name);
	} else if (!*ns) {
		fprintf(f, "<%s xmlns=\"\"/>", name);
	} else {
		fprintf(f, "<R:%s xmlns:R=\"", name);
		markup_escape(f, ns);
		fputs("\"/>", f);
	}
}

static const struct dprop *dead_find(const struct pf *q, const struct res *x, const char *ns,
                                     const char *name)
{
	for (size_t i = 0; i < q->dead->n; i++) {
		const struct dprop *p = &q->dead->p[i];
		if (p->kind == x->kind && p->id == x->id && strcmp(p->ns, ns) == 0 &&
		    strcmp(p->name, name) == 0)
			return p;
	}
	return NULL;
}

static void pf_response(FILE *f, struct dav *d, const struct pf *q, const char *path,
                        const struct res *x)
{
	fputs("<D:response><D:href>", f);
	dav_href_print(f, d, path, x->kind == RES_DIR);
	fputs("</D:href><D:propstat><D:prop>", f);
	if (q->mode != PF_PROPS) {
		for (size_t i = 0; i < N_LIVE; i++)
			live_print(f, d, q, live_names[i], path, x, q->mode == PF_ALL);
		for (size_t i = 0; i < q->dead->n; i++) {
			const struct dprop *p = &q->dead->p[i];
			if (p->kind != x->kind || p->id != x->id)
				continue;
			if (q->mode == PF_ALL && p->xml)
				fputs(p->xml, f);
			else
				empty_elem(f, p->ns, p->name);
		}
		fputs("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>", f);
		fputs("</D:response>", f);
		return;
	}
	bool missing = false;
	bool *found = xcalloc(q->n ? q->n : 1, sizeof *found);
	for (size_t i = 0; i < q->n; i++) {
		const struct pname *w = &q->want[i];
		const struct dprop *p;
		if (strcmp(w->ns, "DAV:") == 0 && live_print(f, d, q, w->name, path, x, true)) {
			found[i] = true;
		} else if ((p = dead_find(q, x, w->ns, w->name))) {
			if (p->xml)
				fputs(p->xml, f);
			else
				empty_elem(f, p->ns, p->name);
			found[i] = true;
		} else {
			missing = true;
		}
	}
	fputs("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>", f);
	if (missing) {
		fputs("<D:propstat><D:prop>", f);
		for (size_t i = 0; i < q->n; i++)
			if (!found[i])
				empty_elem(f, q->want[i].ns, q->want[i].name);
		fputs("</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>", f);
	}
	free(found);
	fputs("</D:response>", f);
}

static void res_from_entry(json_t *e, struct res *x)
{
	memset(x, 0, sizeof *x);
	bool dir = strcmp(json_string_value(json_object_get(e, "type")), "folder") == 0;
	x->kind = dir ? RES_DIR : RES_FILE;
	x->id = json_integer_value(json_object_get(e, "id"));
	x->mtime = x->ctime = json_integer_value(json_object_get(e, "modified_at"));
	if (!dir) {
		x->size = json_integer_value(json_object_get(e, "size"));
		snprintf(x->hash, sizeof x->hash, "%s",
		         json_string_value(json_object_get(e, "hash")));
		const char *ct = json_string_value(json_object_get(e, "content_type"));
		snprintf(x->ctype, sizeof x->ctype, "%s", ct ? ct : "");
	}
}

enum MHD_Result dav_propfind(struct req *r, struct dav *d, const struct res *x,
                             const struct locks *ls)
{
	const char *depth = req_header(r, "Depth");
	if (!depth || strcasecmp(depth, "infinity") == 0)
		return dav_send_error(r, MHD_HTTP_FORBIDDEN, "propfind-finite-depth", NULL);
	if (strcmp(depth, "0") != 0 && strcmp(depth, "1") != 0)
		return dav_send_text(r, MHD_HTTP_BAD_REQUEST, "Depth must be 0, 1 or infinity");
	struct pf q = {.mode = PF_ALL, .ls = ls};
	xmlDocPtr doc = NULL;
	if (d->len) {
		doc = dav_xml_parse(d);
		xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
		if (!dav_is(root, "propfind")) {
			xmlFreeDoc(doc);
			return dav_send_text(r, MHD_HTTP_BAD_REQUEST,
			                     "the body is not a DAV:propfind");
		}
		xmlNodePtr prop = dav_child(root, "prop");
		if (dav_child(root, "propname")) {
			q.mode = PF_NAMES;
		} else if (prop) {
			q.mode = PF_PROPS;
			for (xmlNodePtr c = prop->children; c; c = c->next)
				if (c->type == XML_ELEMENT_NODE)
					q.n++;
			q.want = xcalloc(q.n ? q.n : 1, sizeof *q.want);
			size_t i = 0;
			for (xmlNodePtr c = prop->children; c; c = c->next)
				if (c->type == XML_ELEMENT_NODE)
					q.want[i++] =
					    (struct pname){node_ns(c), (const char *)c->name};
		} else if (!dav_child(root, "allprop")) {
			xmlFreeDoc(doc);
			return dav_send_text(r, MHD_HTTP_BAD_REQUEST,
			                     "propfind needs allprop, propname or prop");
		}
	}
	char *ws_name = NULL;
	struct db_stmt *st = db_query(r->db, "SELECT name FROM workspaces WHERE id = ?", r->ws_id);
	if (st && db_step(st) == DB_ROW)
		ws_name = xstrdup(db_col_text(st, 0));
	db_finalize(st);
	q.ws_name = ws_name ? ws_name : d->ws_seg;
	/* RFC 4331 quota properties: a sum over the workspace, so only on request */
	bool want_quota = false;
	for (size_t i = 0; i < q.n; i++)
		want_quota = want_quota || (strcmp(q.want[i].ns, "DAV:") == 0 &&
		                            strncmp(q.want[i].name, "quota-", 6) == 0);
	int64_t used = 0;
	q.used = -1;
	if (want_quota &&
	    db_int64(r->db, &q.quota,
	             "SELECT COALESCE(quota_bytes, 0) FROM workspaces WHERE id = ?",
	             r->ws_id) == DB_ROW &&
	    limits_used(r->db, r->ws_id, &used) == 0)
		q.used = used;
	bool deep = strcmp(depth, "1") == 0 && x->kind == RES_DIR;
	struct dprops dead = {0};
	q.dead = &dead;
	enum MHD_Result ret;
	if (dprops_load(r, x, deep, &dead) < 0) {
		ret = dav_send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		goto out;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">", f);
	pf_response(f, d, &q, d->path, x);
	if (deep) {
		json_t *entries = list_entries(r, x->id, d->path), *e;
		size_t i;
		json_array_foreach(entries, i, e)
		{
			struct res cx;
			res_from_entry(e, &cx);
			pf_response(f, d, &q, json_string_value(json_object_get(e, "path")), &cx);
		}
		json_decref(entries);
	}
	fputs("</D:multistatus>\n", f);
	ret = dav_send_xml(r, MHD_HTTP_MULTI_STATUS, f, &buf, &len, NULL, NULL);
out:
	dprops_free(&dead);
	free(ws_name);
	free(q.want);
	xmlFreeDoc(doc);
	return ret;
}

enum MHD_Result dav_proppatch(struct req *r, struct dav *d, const struct res *x)
{
	xmlDocPtr doc = dav_xml_parse(d);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
	if (!dav_is(root, "propertyupdate")) {
		xmlFreeDoc(doc);
		return dav_send_text(r, MHD_HTTP_BAD_REQUEST,
		                     "the body is not a DAV:propertyupdate");
	}
	size_t n = 0, cap = 8;
	struct patch *ops = xcalloc(cap, sizeof *ops);
	bool protected_seen = false;
	for (xmlNodePtr op = root->children; op; op = op->next) {
		bool set = dav_is(op, "set");
		if (!set && !dav_is(op, "remove"))
			continue;
		for (xmlNodePtr prop = op->children; prop; prop = prop->next) {
			if (!dav_is(prop, "prop"))
				continue;
			for (xmlNodePtr c = prop->children; c; c = c->next) {
				if (c->type != XML_ELEMENT_NODE)
					continue;
				if (n == cap)
					ops = xrealloc(ops, (cap *= 2) * sizeof *ops);
				ops[n] = (struct patch){set, node_ns(c), (const char *)c->name,
				                        set ? dav_node_xml(c) : NULL};
				if (strcmp(ops[n].ns, "DAV:") == 0)
					protected_seen = true;
				n++;
			}
		}
	}
	/* Store only what replays as well-formed XML (RFC 4918 §9.2: a body the
	 * server cannot take as it is is a 400, and nothing is changed). */
	for (size_t i = 0; i < n; i++)
		if (ops[i].set && !fragment_ok(ops[i].xml)) {
			for (size_t k = 0; k < n; k++)
				free(ops[k].xml);
			free(ops);
			xmlFreeDoc(doc);
			return dav_send_text(r, MHD_HTTP_BAD_REQUEST,
			                     "a property value is not well-formed XML on its own");
		}
	bool ok = !protected_seen && n <= 1000;
	int rc = DB_DONE;
	if (ok && n) {
		rc = meta_begin(r->db, r->ws_id);
		for (size_t i = 0; i < n && rc == DB_DONE; i++) {
			rc = db_run(
			    r->db,
			    "DELETE FROM dav_props WHERE workspace_id = ? AND entity = ? AND "
			    "entity_id = ? AND ns = ? AND name = ?",
			    r->ws_id, dav_entity(x->kind), x->id, ops[i].ns, ops[i].name);
			if (rc == DB_DONE && ops[i].set)
				rc = db_run(
				    r->db,
				    "INSERT INTO dav_props(workspace_id, entity, entity_id, ns, "
				    "name, value_xml) VALUES(?,?,?,?,?,?)",
				    r->ws_id, dav_entity(x->kind), x->id, ops[i].ns, ops[i].name,
				    ops[i].xml);
		}
		if (rc == DB_DONE &&
		    meta_audit(r, "dav.proppatch", d->path,
		               json_pack("{s:I}", "properties", (json_int_t)n)) != 0)
			rc = DB_ERR;
		if (rc == DB_DONE)
			rc = meta_commit(r);
		else
			db_rollback(r->db);
	}
	enum MHD_Result ret;
	if (rc != DB_DONE) {
		ret = dav_send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
	} else {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">"
		      "<D:response><D:href>",
		      f);
		dav_href_print(f, d, d->path, x->kind == RES_DIR);
		fputs("</D:href>", f);
		for (size_t i = 0; i < n; i++) {
			const char *status = ok ? "200 OK"
			                     : strcmp(ops[i].ns, "DAV:") == 0
			                         ? "403 Forbidden"
			                         : "424 Failed Dependency";
			fputs("<D:propstat><D:prop>", f);
			empty_elem(f, ops[i].ns, ops[i].name);
			fprintf(f, "</D:prop><D:status>HTTP/1.1 %s</D:status></D:propstat>",
			        status);
		}
		fputs("</D:response></D:multistatus>\n", f);
		ret = dav_send_xml(r, MHD_HTTP_MULTI_STATUS, f, &buf, &len, NULL, NULL);
	}
	for (size_t i = 0; i < n; i++)
		free(ops[i].xml);
	free(ops);
	xmlFreeDoc(doc);
	return ret;
}
