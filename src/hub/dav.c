/* dav: WebDAV (RFC 4918, class 1 and 2) under /dav/WORKSPACE/ on the content
 * port, so a workspace mounts as a drive (rclone, davfs2, Finder, Explorer).
 *
 * This module owns the protocol only: authentication (Basic with an app
 * password or the account password, or a bearer token), the XML of PROPFIND,
 * PROPPATCH and LOCK, dead properties, locks and the If header. Every change
 * to the tree goes through the API's own functions (api_mkdir_path,
 * api_move_paths, api_delete_path, upload_stream_start, upload_copy_version)
 * in capture mode, so ACLs, quotas, the feed and the audit log apply exactly
 * as they do to the JSON API; their answers are translated to DAV statuses. */
#include "hub.h"
#include "../core/hash.h"
#include "../core/path.h"
#include "../core/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAV_XML_MAX        (1 << 20) /* request bodies of PROPFIND, PROPPATCH, LOCK */
#define LOCK_TIMEOUT_DEF_S 3600
#define LOCK_TIMEOUT_MAX_S (7 * 86400)
#define IF_LISTS_MAX       16
#define IF_CONDS_MAX       16
#define IF_HEADER_MAX      8192
#define AUTH_CACHE_N       64
#define AUTH_CACHE_MS      120000 /* a verified account password, for a mount's next requests */
#define COPY_MAX_ITEMS     100000

struct dav {
	char *ws_seg; /* the workspace segment of the URL, decoded */
	char *path;   /* normalized path in the workspace; NULL at /dav/ itself */
	char *body;   /* XML request body */
	size_t len, cap;
	void *up; /* PUT: the upload stream's state (upload.c) */
	void (*up_free)(void *);
	bool put_existed;
};

struct res {
	int kind; /* 0 none, 1 file, 2 folder */
	int64_t id, size, mtime, ctime;
	char hash[65];
	char ctype[128];
};
enum { RES_NONE, RES_FILE, RES_DIR };

struct lock {
	char *token, *path, *owner;
	int depth; /* 0 or -1 (infinity) */
	bool exclusive;
	int64_t timeout_at, user_id;
};

struct locks {
	struct lock *l;
	size_t n;
};

struct ifcond {
	bool not, etag;
	char *val;
};
struct iflist {
	char *tag;    /* a resource tag's path; NULL: the request's */
	bool foreign; /* tagged with a resource outside this workspace */
	struct ifcond c[IF_CONDS_MAX];
	int n;
};
struct ifhdr {
	struct iflist l[IF_LISTS_MAX];
	int n;
};

/* ---- small helpers ---- */

static bool inside(const char *path, const char *folder)
{
	if (strcmp(folder, "/") == 0)
		return strcmp(path, "/") != 0;
	size_t n = strlen(folder);
	return strncmp(path, folder, n) == 0 && path[n] == '/';
}

static char *parent_of(const char *path)
{
	char *parent = NULL, *name = NULL;
	if (!path_split(path, &parent, &name))
		return NULL;
	free(name);
	return parent;
}

static void xml_esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
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

/* Decode %XX in place; false on a bad escape or an encoded NUL. */
static bool url_unesc(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (*p != '%') {
			*o++ = *p;
			continue;
		}
		if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
			return false;
		char hex[3] = {p[1], p[2], 0};
		long v = strtol(hex, NULL, 16);
		if (v == 0)
			return false;
		*o++ = (char)v;
		p += 2;
	}
	*o = 0;
	return true;
}

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

/* A file's ETag is its version's SHA-256 cut to 128 bits: clients put ETags in
 * If headers next to lock tokens, and some (litmus among them) cut headers
 * near 200 bytes. */
#define ETAG_HEX 32

static void res_etag(const struct res *x, char out[96])
{
	if (x->kind == RES_FILE)
		snprintf(out, 96, "\"%.*s\"", ETAG_HEX, x->hash);
	else if (x->kind == RES_DIR)
		snprintf(out, 96, "\"d%lld-%lld\"", (long long)x->id, (long long)x->mtime);
	else
		out[0] = 0;
}

/* ---- responses ---- */

static enum MHD_Result send_full(struct req *r, unsigned status, const char *ctype, char *body,
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
	r->capture = false;
	return req_queue(r, status, resp);
}

static enum MHD_Result send_status(struct req *r, unsigned status)
{
	return send_full(r, status, NULL, NULL, 0, NULL, NULL, NULL, NULL);
}

static enum MHD_Result send_text(struct req *r, unsigned status, const char *msg)
{
	char *s = xasprintf("%s\n", msg);
	return send_full(r, status, "text/plain; charset=utf-8", s, strlen(s), NULL, NULL, NULL,
	                 NULL);
}

/* An XML answer from a memstream (closed here). */
static enum MHD_Result send_xml(struct req *r, unsigned status, FILE *f, char **buf, size_t *len,
                                const char *h1, const char *v1)
{
	fclose(f);
	return send_full(r, status, "application/xml; charset=utf-8", *buf, *len, h1, v1, NULL,
	                 NULL);
}

/* RFC 4918 §16: a precondition element in a DAV:error body. */
static enum MHD_Result send_dav_error(struct req *r, unsigned status, const char *cond,
                                      const char *href)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\"><D:%s>",
	        cond);
	if (href) {
		fputs("<D:href>", f);
		xml_esc(f, href);
		fputs("</D:href>", f);
	}
	fprintf(f, "</D:%s></D:error>\n", cond);
	return send_xml(r, status, f, &buf, &len, NULL, NULL);
}

static void cap_reset(struct req *r)
{
	json_decref(r->cap_body);
	r->cap_body = NULL;
	r->cap_status = 0;
}

/* The API function answered (captured) with an error: pass it on. */
static enum MHD_Result send_captured(struct req *r)
{
	unsigned st = r->cap_status ? r->cap_status : MHD_HTTP_INTERNAL_SERVER_ERROR;
	json_t *e = json_object_get(r->cap_body, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *code = json_string_value(json_object_get(e, "code"));
	/* RFC 4918 §9.7.1: a PUT whose parent is a file, or in the way of a folder */
	if (st == MHD_HTTP_CONFLICT && code && strcmp(code, "exists") == 0)
		st = MHD_HTTP_METHOD_NOT_ALLOWED;
	return send_text(r, st, msg ? msg : "failed");
}

static bool captured_ok(struct req *r)
{
	return r->cap_status >= 200 && r->cap_status < 300;
}

/* ---- authentication ---- */

static struct {
	unsigned char key[crypto_generichash_BYTES];
	int64_t uid, until;
} auth_cache[AUTH_CACHE_N];
static unsigned char cache_secret[crypto_generichash_KEYBYTES];
static char dummy_hash[128];
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t dav_once = PTHREAD_ONCE_INIT;

static void dav_init_once(void)
{
	xmlInitParser();
	randombytes_buf(cache_secret, sizeof cache_secret);
	auth_hash_password("not a real password", dummy_hash);
}

/* The cache is keyed by a keyed hash of the whole header: the password is
 * never kept, and a changed password misses it. */
static void cache_key(const char *authz, unsigned char out[crypto_generichash_BYTES])
{
	crypto_generichash(out, crypto_generichash_BYTES, (const unsigned char *)authz,
	                   strlen(authz), cache_secret, sizeof cache_secret);
}

static int64_t cache_get(const unsigned char *key)
{
	int64_t uid = 0, now = now_ms();
	pthread_mutex_lock(&cache_mu);
	for (int i = 0; i < AUTH_CACHE_N; i++)
		if (auth_cache[i].until > now &&
		    sodium_memcmp(auth_cache[i].key, key, crypto_generichash_BYTES) == 0)
			uid = auth_cache[i].uid;
	pthread_mutex_unlock(&cache_mu);
	return uid;
}

static void cache_put(const unsigned char *key, int64_t uid)
{
	int64_t now = now_ms();
	pthread_mutex_lock(&cache_mu);
	int slot = 0;
	for (int i = 1; i < AUTH_CACHE_N; i++)
		if (auth_cache[i].until < auth_cache[slot].until)
			slot = i;
	memcpy(auth_cache[slot].key, key, crypto_generichash_BYTES);
	auth_cache[slot].uid = uid;
	auth_cache[slot].until = now + AUTH_CACHE_MS;
	pthread_mutex_unlock(&cache_mu);
}

static bool client_is_loopback(struct req *r)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return false;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* An app password (an API token of this user) or the account password. */
static int basic_auth(struct req *r, const char *authz)
{
	const char *b64 = authz + 6;
	while (*b64 == ' ')
		b64++;
	unsigned char raw[1024];
	size_t n = 0;
	if (strlen(b64) > 1300 || sodium_base642bin(raw, sizeof raw - 1, b64, strlen(b64), NULL, &n,
	                                            NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		return 1;
	raw[n] = 0;
	if (memchr(raw, 0, n))
		return 1;
	char *colon = strchr((char *)raw, ':');
	if (!colon)
		return 1;
	*colon = 0;
	const char *email = (const char *)raw, *pass = colon + 1;
	if (strncmp(pass, "rst_", 4) == 0) {
		char h[65];
		auth_token_hash(pass, h);
		struct db_stmt *st = db_query(
		    r->db,
		    "SELECT t.id, t.user_id FROM tokens t JOIN users u ON u.id = t.user_id "
		    "WHERE t.token_hash = ? AND u.email = ? AND t.host_id IS NULL AND "
		    "t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?)",
		    "tti", h, email, now_ms());
		if (!st)
			return -1;
		int rc = db_step(st);
		if (rc == DB_ROW) {
			r->token_id = db_col_int64(st, 0);
			r->user_id = db_col_int64(st, 1);
		}
		db_finalize(st);
		if (rc == DB_ROW)
			/* at most one write a minute per token */
			db_run(r->db,
			       "UPDATE tokens SET last_used_at = ? WHERE id = ? AND "
			       "(last_used_at IS NULL OR last_used_at < ?)",
			       "iii", now_ms(), r->token_id, now_ms() - 60000);
		return rc == DB_ROW ? 0 : rc == DB_DONE ? 1 : -1;
	}
	unsigned char key[crypto_generichash_BYTES];
	cache_key(authz, key);
	int64_t uid = cache_get(key);
	if (!uid) {
		char stored[128] = "";
		struct db_stmt *st = db_query(
		    r->db, "SELECT id, password_hash FROM users WHERE email = ?", "t", email);
		if (!st)
			return -1;
		if (db_step(st) == DB_ROW) {
			uid = db_col_int64(st, 0);
			snprintf(stored, sizeof stored, "%s", db_col_text(st, 1));
		}
		db_finalize(st);
		/* Don't hold a database connection through argon2id. */
		db_pool_release(r->hub->pool, r->db);
		r->db = NULL;
		bool ok = auth_verify_password(uid ? stored : dummy_hash, pass) && uid;
		r->db = db_pool_acquire(r->hub->pool);
		if (!ok)
			return 1;
		cache_put(key, uid);
	}
	r->user_id = uid;
	r->token_id = -uid; /* the rate limiter's key for password sessions */
	return 0;
}

/* 0: authenticated; else replied. */
static int dav_auth(struct req *r)
{
	const char *authz = req_header(r, "Authorization");
	int rc = 1;
	if (authz && strncasecmp(authz, "Basic ", 6) == 0) {
		if (!r->hub->tls_cert_pem && !client_is_loopback(r)) {
			send_text(r, MHD_HTTP_FORBIDDEN,
			          "Basic authentication needs HTTPS (--tls-cert) unless the client "
			          "is on this machine; use a bearer token or TLS");
			return 1;
		}
		rc = basic_auth(r, authz);
		if (rc > 0) {
			char addr[64];
			r->user_id = 0;
			meta_audit(r, "login.failed", req_client(r, addr),
			           json_pack("{s:s}", "via", "dav"));
		}
	} else if (authz) {
		rc = auth_check_bearer(r->db, authz, &r->user_id, &r->token_id, &r->host_id,
		                       &r->host_ws);
	}
	if (rc < 0) {
		send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the metadata database is unavailable");
		return 1;
	}
	if (rc == 0 && r->host_id) {
		/* A host's commits claim it holds the chunks; a mount does not. */
		send_text(r, MHD_HTTP_FORBIDDEN, "host credentials are not for WebDAV");
		return 1;
	}
	if (rc > 0) {
		send_full(r, MHD_HTTP_UNAUTHORIZED, "text/plain; charset=utf-8",
		          xstrdup("authentication required: your email and an app password\n"),
		          strlen("authentication required: your email and an app password\n"),
		          "WWW-Authenticate", "Basic realm=\"roost\", charset=\"UTF-8\"", NULL,
		          NULL);
		return 1;
	}
	int64_t wait = limiter_take(r->hub->limiter, r->token_id);
	if (wait > 0) {
		char secs[32];
		snprintf(secs, sizeof secs, "%lld", (long long)((wait + 999) / 1000));
		send_full(r, MHD_HTTP_TOO_MANY_REQUESTS, NULL, NULL, 0, "Retry-After", secs, NULL,
		          NULL);
		return 1;
	}
	return 0;
}

/* The workspace named by a URL segment (its id or its name) that the caller
 * belongs to; 0 if none. */
static int64_t ws_resolve(struct req *r, const char *seg)
{
	int64_t id = 0;
	bool digits = *seg && strspn(seg, "0123456789") == strlen(seg);
	if (digits && db_int64(r->db, &id,
	                       "SELECT workspace_id FROM memberships WHERE workspace_id = ? AND "
	                       "user_id = ?",
	                       "ii", parse_id(seg), r->user_id) == DB_ROW)
		return id;
	if (db_int64(r->db, &id,
	             "SELECT w.id FROM workspaces w JOIN memberships m ON m.workspace_id = w.id "
	             "WHERE m.user_id = ? AND w.name = ? ORDER BY w.id LIMIT 1",
	             "it", r->user_id, seg) == DB_ROW)
		return id;
	return 0;
}

/* ---- resources, properties, locks in the database ---- */

static int res_get(struct req *r, const char *path, struct res *x)
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
	                              "it", r->ws_id, path);
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

static const char *entity(int kind)
{
	return kind == RES_FILE ? "file" : "folder";
}

struct dprop {
	int kind;
	int64_t id;
	char *ns, *name, *xml;
};
struct dprops {
	struct dprop *p;
	size_t n, cap;
};

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
	p->xml = xstrdup(db_col_text(st, 4));
}

#define DPROP_COLS "SELECT entity, entity_id, ns, name, value_xml FROM dav_props "

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
	                   "iiii", r->ws_id, x->id, x->id, x->id)
	        : db_query(r->db,
	                   DPROP_COLS "WHERE workspace_id = ? AND entity = ? AND entity_id = ? "
	                              "ORDER BY ns, name",
	                   "iti", r->ws_id, entity(x->kind), x->id);
	if (!st)
		return DB_ERR;
	int rc;
	while ((rc = db_step(st)) == DB_ROW)
		dprops_add(d, st);
	db_finalize(st);
	return rc == DB_DONE ? 0 : DB_ERR;
}

/* Copy dead properties onto another resource, replacing its own. */
static int dprops_copy(struct req *r, int skind, int64_t sid, int dkind, int64_t did)
{
	int rc = db_run(r->db,
	                "DELETE FROM dav_props WHERE workspace_id = ? AND entity = ? AND "
	                "entity_id = ?",
	                "iti", r->ws_id, entity(dkind), did);
	if (rc == DB_DONE)
		rc = db_run(
		    r->db,
		    "INSERT INTO dav_props(workspace_id, entity, entity_id, ns, name, "
		    "value_xml) SELECT workspace_id, ?, ?, ns, name, value_xml FROM dav_props "
		    "WHERE workspace_id = ? AND entity = ? AND entity_id = ?",
		    "tiiti", entity(dkind), did, r->ws_id, entity(skind), sid);
	return rc == DB_DONE ? 0 : DB_ERR;
}

static void locks_free(struct locks *ls)
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
static int locks_load(struct req *r, struct locks *ls)
{
	ls->l = NULL;
	ls->n = 0;
	struct db_stmt *st = db_query(r->db,
	                              "SELECT token, path, depth, scope, owner_xml, timeout_at, "
	                              "user_id FROM dav_locks WHERE workspace_id = ? AND "
	                              "timeout_at > ? ORDER BY created_at LIMIT 10000",
	                              "ii", r->ws_id, now_ms());
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

static bool lock_covers(const struct lock *l, const char *path)
{
	return strcmp(l->path, path) == 0 || (l->depth != 0 && inside(path, l->path));
}

static int locks_drop_below(struct req *r, const char *path)
{
	char *prefix = strcmp(path, "/") == 0 ? xstrdup("/") : xasprintf("%s/", path);
	int rc = db_run(r->db,
	                "DELETE FROM dav_locks WHERE workspace_id = ? AND (path = ? OR "
	                "substr(path, 1, ?) = ?)",
	                "itit", r->ws_id, path, (int64_t)utf8_chars(prefix), prefix);
	free(prefix);
	return rc == DB_DONE ? 0 : DB_ERR;
}

/* ---- hrefs and the If header ---- */

static void href_print(FILE *f, struct dav *d, const char *path, bool dir)
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

static char *href_new(struct dav *d, const char *path, bool dir)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	href_print(f, d, path, dir);
	fclose(f);
	return buf;
}

/* A URL or absolute path (Destination, a resource tag) to a normalized path in
 * this request's workspace. NULL with *status 400 (bad) or 502 (elsewhere). */
static char *url_to_path(struct req *r, struct dav *d, const char *url, unsigned *status)
{
	*status = MHD_HTTP_BAD_REQUEST;
	if (strlen(url) > PATH_MAX_BYTES * 3 + 256)
		return NULL;
	const char *p = url;
	const char *scheme = strstr(url, "://");
	if (scheme && scheme < strchr(url, '/')) {
		p = strchr(scheme + 3, '/');
		if (!p) {
			*status = MHD_HTTP_BAD_GATEWAY;
			return NULL;
		}
	}
	if (*p != '/')
		return NULL;
	char *s = xstrdup(p);
	char *cut = strpbrk(s, "?#");
	if (cut)
		*cut = 0;
	if (!url_unesc(s)) {
		free(s);
		return NULL;
	}
	char *out = NULL;
	if (strncmp(s, "/dav/", 5) != 0) {
		*status = MHD_HTTP_BAD_GATEWAY;
		goto done;
	}
	char *seg = s + 5, *rest = strchr(seg, '/');
	if (rest)
		*rest++ = 0;
	if (strcmp(seg, d->ws_seg) != 0 && ws_resolve(r, seg) != r->ws_id) {
		*status = MHD_HTTP_BAD_GATEWAY;
		goto done;
	}
	const char *why;
	out = path_normalize(rest ? rest : "", rest ? strlen(rest) : 0, &why);
done:
	free(s);
	return out;
}

static void ifhdr_free(struct ifhdr *h)
{
	for (int i = 0; i < h->n; i++) {
		free(h->l[i].tag);
		for (int j = 0; j < h->l[i].n; j++)
			free(h->l[i].c[j].val);
	}
	h->n = 0;
}

/* RFC 4918 §10.4: If = 1*No-tag-list | 1*Tagged-list. false: malformed. */
static bool ifhdr_parse(struct req *r, struct dav *d, const char *s, struct ifhdr *h)
{
	memset(h, 0, sizeof *h);
	if (strlen(s) > IF_HEADER_MAX)
		return false;
	char *tag = NULL;
	bool foreign = false, ok = true;
	while (ok && *s) {
		if (isspace((unsigned char)*s)) {
			s++;
			continue;
		}
		if (*s == '<') {
			const char *e = strchr(s, '>');
			if (!e) {
				ok = false;
				break;
			}
			char *url = xstrndup(s + 1, (size_t)(e - s - 1));
			unsigned st;
			free(tag);
			tag = url_to_path(r, d, url, &st);
			foreign = !tag;
			if (!tag && st != MHD_HTTP_BAD_GATEWAY)
				ok = false;
			free(url);
			s = e + 1;
			continue;
		}
		if (*s != '(' || h->n == IF_LISTS_MAX) {
			ok = false;
			break;
		}
		struct iflist *l = &h->l[h->n++];
		l->tag = tag ? xstrdup(tag) : NULL;
		l->foreign = foreign;
		s++;
		while (ok) {
			while (isspace((unsigned char)*s))
				s++;
			if (*s == ')') {
				s++;
				break;
			}
			if (l->n == IF_CONDS_MAX) {
				ok = false;
				break;
			}
			struct ifcond *c = &l->c[l->n];
			if (strncasecmp(s, "Not", 3) == 0) {
				c->not = true;
				s += 3;
				while (isspace((unsigned char)*s))
					s++;
			}
			char close = *s == '<' ? '>' : *s == '[' ? ']' : 0;
			const char *e = close ? strchr(s + 1, close) : NULL;
			if (!e) {
				ok = false;
				break;
			}
			c->etag = close == ']';
			c->val = xstrndup(s + 1, (size_t)(e - s - 1));
			l->n++;
			s = e + 1;
		}
		if (ok && l->n == 0)
			ok = false;
	}
	free(tag);
	if (!ok)
		ifhdr_free(h);
	return ok;
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
		if (res_get(r, path, &x) < 0)
			return DB_ERR;
		char etag[96];
		res_etag(&x, etag);
		bool all = true;
		for (int j = 0; j < l->n && all; j++) {
			const struct ifcond *c = &l->c[j];
			bool v = false;
			if (c->etag) {
				v = x.kind && strcmp(c->val, etag) == 0;
			} else {
				for (size_t k = 0; k < ls->n && !v; k++)
					v = strcmp(ls->l[k].token, c->val) == 0 &&
					    lock_covers(&ls->l[k], path);
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
static bool check_preconditions(struct req *r, struct dav *d, const char *path, const struct res *x,
                                const struct ifhdr *h, const struct locks *ls)
{
	char etag[96];
	res_etag(x, etag);
	const char *im = req_header(r, "If-Match"), *inm = req_header(r, "If-None-Match");
	if (im && !etag_listed(im, etag)) {
		send_status(r, MHD_HTTP_PRECONDITION_FAILED);
		return false;
	}
	if (inm && etag_listed(inm, etag)) {
		bool safe = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
		if (safe)
			send_full(r, MHD_HTTP_NOT_MODIFIED, NULL, NULL, 0, "ETag", etag, NULL,
			          NULL);
		else
			send_status(r, MHD_HTTP_PRECONDITION_FAILED);
		return false;
	}
	bool ok;
	if (ifhdr_eval(r, h, path, ls, &ok) < 0) {
		send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the metadata database is unavailable");
		return false;
	}
	if (!ok)
		send_status(r, MHD_HTTP_PRECONDITION_FAILED);
	return ok;
}

/* May the caller change path? Locks on it (or above it, deep), with members
 * below it (subtree), or on its parent (membership: creating or removing it)
 * need their token in the If header. Replies 423 if not. */
static bool check_locks(struct req *r, const char *path, bool membership, bool subtree,
                        const struct ifhdr *h, const struct locks *ls, struct dav *d)
{
	char *parent = membership ? parent_of(path) : NULL;
	/* Every exclusive lock needs its token; of shared locks, one token will do. */
	const struct lock *excl = NULL, *shared = NULL;
	bool shared_ok = false;
	for (size_t i = 0; i < ls->n; i++) {
		const struct lock *l = &ls->l[i];
		bool relevant = lock_covers(l, path) || (subtree && inside(l->path, path)) ||
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
	char *href = href_new(d, blocking->path, false);
	send_dav_error(r, MHD_HTTP_LOCKED, "lock-token-submitted", href);
	free(href);
	return false;
}

/* ---- XML requests ---- */

static xmlDocPtr xml_parse(struct dav *d)
{
	xmlParserCtxtPtr ctx = xmlNewParserCtxt();
	if (!ctx)
		abort();
	/* no network, no entity expansion, no DTD loading; quiet */
	xmlDocPtr doc = xmlCtxtReadMemory(ctx, d->body, (int)d->len, NULL, NULL,
	                                  XML_PARSE_NONET | XML_PARSE_NOERROR |
	                                      XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
	if (doc && (!ctx->wellFormed || !ctx->nsWellFormed)) {
		xmlFreeDoc(doc);
		doc = NULL;
	}
	xmlFreeParserCtxt(ctx);
	return doc;
}

static bool is_dav(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
	       strcmp((const char *)n->ns->href, "DAV:") == 0 &&
	       strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr dav_child(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (is_dav(c, name))
			return c;
	return NULL;
}

static const char *node_ns(xmlNodePtr n)
{
	return n->ns && n->ns->href ? (const char *)n->ns->href : "";
}

/* An element as a self-contained XML fragment: the namespaces it uses are
 * declared on it, so it can be replayed inside any other document. Copying
 * into a new document does that (declarations from the element's ancestors
 * are added to the copy's root); xmlReconciliateNs would also rename default
 * namespaces to made-up prefixes. */
static char *node_xml(xmlNodePtr n)
{
	xmlDocPtr doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlNodePtr copy = xmlDocCopyNode(n, doc, 1);
	if (!doc || !copy)
		abort();
	xmlDocSetRootElement(doc, copy);
	xmlBufferPtr buf = xmlBufferCreate();
	xmlNodeDump(buf, doc, copy, 0, 0);
	char *s = xstrdup((const char *)xmlBufferContent(buf));
	xmlBufferFree(buf);
	xmlFreeDoc(doc);
	return s;
}

/* ---- PROPFIND ---- */

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
};

static const char *const live_names[] = {"creationdate",   "displayname",   "getcontentlength",
                                         "getcontenttype", "getetag",       "getlastmodified",
                                         "resourcetype",   "supportedlock", "lockdiscovery"};
#define N_LIVE (sizeof live_names / sizeof live_names[0])

static void activelock_print(FILE *f, struct dav *d, const struct lock *l)
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
	href_print(f, d, l->path, false);
	fputs("</D:href></D:lockroot></D:activelock>", f);
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
		xml_esc(f, strcmp(path, "/") == 0 ? q->ws_name : slash + 1);
		fputs("</D:displayname>", f);
	} else if (strcmp(name, "getcontentlength") == 0) {
		fprintf(f, "<D:getcontentlength>%lld</D:getcontentlength>", (long long)x->size);
	} else if (strcmp(name, "getcontenttype") == 0) {
		fputs("<D:getcontenttype>", f);
		xml_esc(f, x->ctype[0] ? x->ctype : "application/octet-stream");
		fputs("</D:getcontenttype>", f);
	} else if (strcmp(name, "getetag") == 0) {
		res_etag(x, buf);
		fputs("<D:getetag>", f);
		xml_esc(f, buf);
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
	} else if (strcmp(name, "lockdiscovery") == 0) {
		fputs("<D:lockdiscovery>", f);
		for (size_t i = 0; i < q->ls->n; i++)
			if (lock_covers(&q->ls->l[i], path))
				activelock_print(f, d, &q->ls->l[i]);
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
		xml_esc(f, ns);
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
	href_print(f, d, path, x->kind == RES_DIR);
	fputs("</D:href><D:propstat><D:prop>", f);
	if (q->mode != PF_PROPS) {
		for (size_t i = 0; i < N_LIVE; i++)
			live_print(f, d, q, live_names[i], path, x, q->mode == PF_ALL);
		for (size_t i = 0; i < q->dead->n; i++) {
			const struct dprop *p = &q->dead->p[i];
			if (p->kind != x->kind || p->id != x->id)
				continue;
			if (q->mode == PF_ALL)
				fputs(p->xml, f);
			else
				empty_elem(f, p->ns, p->name);
		}
		fputs("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>", f);
		fputs("</D:response>", f);
		return;
	}
	bool missing = false;
	for (size_t i = 0; i < q->n; i++) {
		const struct pname *w = &q->want[i];
		const struct dprop *p;
		if (strcmp(w->ns, "DAV:") == 0 && live_print(f, d, q, w->name, path, x, true))
			continue;
		if ((p = dead_find(q, x, w->ns, w->name)))
			fputs(p->xml, f);
		else
			missing = true;
	}
	fputs("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>", f);
	if (missing) {
		fputs("<D:propstat><D:prop>", f);
		for (size_t i = 0; i < q->n; i++) {
			const struct pname *w = &q->want[i];
			bool live = false;
			if (strcmp(w->ns, "DAV:") == 0)
				for (size_t k = 0; k < N_LIVE; k++)
					live = live || (strcmp(w->name, live_names[k]) == 0 &&
					                !(x->kind == RES_DIR &&
					                  strncmp(w->name, "getcontent", 10) == 0));
			if (!live && !dead_find(q, x, w->ns, w->name))
				empty_elem(f, w->ns, w->name);
		}
		fputs("</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>", f);
	}
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

static enum MHD_Result dav_propfind(struct req *r, struct dav *d, const struct res *x,
                                    const struct locks *ls)
{
	const char *depth = req_header(r, "Depth");
	if (!depth || strcasecmp(depth, "infinity") == 0)
		return send_dav_error(r, MHD_HTTP_FORBIDDEN, "propfind-finite-depth", NULL);
	if (strcmp(depth, "0") != 0 && strcmp(depth, "1") != 0)
		return send_text(r, MHD_HTTP_BAD_REQUEST, "Depth must be 0, 1 or infinity");
	struct pf q = {.mode = PF_ALL, .ls = ls};
	xmlDocPtr doc = NULL;
	if (d->len) {
		doc = xml_parse(d);
		xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
		if (!is_dav(root, "propfind")) {
			xmlFreeDoc(doc);
			return send_text(r, MHD_HTTP_BAD_REQUEST, "the body is not a DAV:propfind");
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
			return send_text(r, MHD_HTTP_BAD_REQUEST,
			                 "propfind needs allprop, propname or prop");
		}
	}
	char *ws_name = NULL;
	struct db_stmt *st =
	    db_query(r->db, "SELECT name FROM workspaces WHERE id = ?", "i", r->ws_id);
	if (st && db_step(st) == DB_ROW)
		ws_name = xstrdup(db_col_text(st, 0));
	db_finalize(st);
	q.ws_name = ws_name ? ws_name : d->ws_seg;
	bool deep = strcmp(depth, "1") == 0 && x->kind == RES_DIR;
	struct dprops dead = {0};
	q.dead = &dead;
	enum MHD_Result ret;
	if (dprops_load(r, x, deep, &dead) < 0) {
		ret = send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
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
	ret = send_xml(r, MHD_HTTP_MULTI_STATUS, f, &buf, &len, NULL, NULL);
out:
	dprops_free(&dead);
	free(ws_name);
	free(q.want);
	xmlFreeDoc(doc);
	return ret;
}

/* ---- PROPPATCH ---- */

struct patch {
	bool set;
	const char *ns, *name;
	char *xml;
};

static enum MHD_Result dav_proppatch(struct req *r, struct dav *d, const struct res *x)
{
	xmlDocPtr doc = xml_parse(d);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
	if (!is_dav(root, "propertyupdate")) {
		xmlFreeDoc(doc);
		return send_text(r, MHD_HTTP_BAD_REQUEST, "the body is not a DAV:propertyupdate");
	}
	size_t n = 0, cap = 8;
	struct patch *ops = xcalloc(cap, sizeof *ops);
	bool protected_seen = false;
	for (xmlNodePtr op = root->children; op; op = op->next) {
		bool set = is_dav(op, "set");
		if (!set && !is_dav(op, "remove"))
			continue;
		for (xmlNodePtr prop = op->children; prop; prop = prop->next) {
			if (!is_dav(prop, "prop"))
				continue;
			for (xmlNodePtr c = prop->children; c; c = c->next) {
				if (c->type != XML_ELEMENT_NODE)
					continue;
				if (n == cap)
					ops = xrealloc(ops, (cap *= 2) * sizeof *ops);
				ops[n] = (struct patch){set, node_ns(c), (const char *)c->name,
				                        set ? node_xml(c) : NULL};
				if (strcmp(ops[n].ns, "DAV:") == 0)
					protected_seen = true;
				n++;
			}
		}
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
			    "ititt", r->ws_id, entity(x->kind), x->id, ops[i].ns, ops[i].name);
			if (rc == DB_DONE && ops[i].set)
				rc = db_run(
				    r->db,
				    "INSERT INTO dav_props(workspace_id, entity, entity_id, ns, "
				    "name, value_xml) VALUES(?,?,?,?,?,?)",
				    "itittt", r->ws_id, entity(x->kind), x->id, ops[i].ns,
				    ops[i].name, ops[i].xml);
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
		ret = send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
	} else {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		fputs("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">"
		      "<D:response><D:href>",
		      f);
		href_print(f, d, d->path, x->kind == RES_DIR);
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
		ret = send_xml(r, MHD_HTTP_MULTI_STATUS, f, &buf, &len, NULL, NULL);
	}
	for (size_t i = 0; i < n; i++)
		free(ops[i].xml);
	free(ops);
	xmlFreeDoc(doc);
	return ret;
}

/* ---- LOCK / UNLOCK ---- */

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
	activelock_print(f, d, l);
	fputs("</D:lockdiscovery></D:prop>\n", f);
	char hdr[80];
	snprintf(hdr, sizeof hdr, "<%s>", l->token);
	return send_xml(r, status, f, &buf, &len, "Lock-Token", hdr);
}

/* Create an empty file at path (a LOCK on an unmapped URL, RFC 4918 §9.10.4). */
static bool create_empty(struct req *r, struct dav *d)
{
	void *mine = r->state;
	void (*mine_free)(void *) = r->state_free;
	cap_reset(r);
	upload_stream_start(r, xstrdup(d->path));
	if (!r->cap_status)
		api_upload(r);
	if (r->state && r->state_free)
		r->state_free(r->state);
	r->state = mine;
	r->state_free = mine_free;
	return captured_ok(r);
}

/* An existing lock a new one would conflict with (RFC 4918 §6.1), or NULL. */
static const struct lock *lock_conflict(const struct locks *ls, const struct lock *nl)
{
	for (size_t i = 0; i < ls->n; i++) {
		const struct lock *l = &ls->l[i];
		bool overlap = lock_covers(l, nl->path) || (nl->depth && inside(l->path, nl->path));
		if (overlap && (nl->exclusive || l->exclusive))
			return l;
	}
	return NULL;
}

static enum MHD_Result dav_lock(struct req *r, struct dav *d, struct res *x, const struct ifhdr *h,
                                const struct locks *ls)
{
	int64_t now = now_ms(), timeout = lock_timeout_s(r);
	if (d->len == 0) {
		/* A refresh: the If header names the lock. */
		for (size_t i = 0; i < ls->n; i++) {
			struct lock *l = &ls->l[i];
			if (!lock_covers(l, d->path) || !token_submitted(h, l, r->user_id))
				continue;
			l->timeout_at = now + timeout * 1000;
			if (db_run(r->db, "UPDATE dav_locks SET timeout_at = ? WHERE token = ?",
			           "it", l->timeout_at, l->token) != DB_DONE)
				return send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE,
				                 "database unavailable");
			return send_lock(r, d, l, MHD_HTTP_OK);
		}
		return send_dav_error(r, MHD_HTTP_PRECONDITION_FAILED,
		                      "lock-token-matches-request-uri", NULL);
	}
	xmlDocPtr doc = xml_parse(d);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
	xmlNodePtr scope = dav_child(root, "lockscope"), type = dav_child(root, "locktype");
	if (!is_dav(root, "lockinfo") || !scope || !type || !dav_child(type, "write") ||
	    (!dav_child(scope, "exclusive") && !dav_child(scope, "shared"))) {
		xmlFreeDoc(doc);
		return send_text(r, MHD_HTTP_BAD_REQUEST, "the body is not a write DAV:lockinfo");
	}
	const char *dh = req_header(r, "Depth");
	struct lock nl = {.exclusive = dav_child(scope, "exclusive") != NULL,
	                  .depth = dh && strcmp(dh, "0") == 0 ? 0 : -1,
	                  .path = d->path,
	                  .timeout_at = now + timeout * 1000,
	                  .user_id = r->user_id};
	xmlNodePtr owner = dav_child(root, "owner");
	nl.owner = owner ? node_xml(owner) : NULL;
	xmlFreeDoc(doc);
	char token[64];
	new_lock_token(token);
	nl.token = token;
	enum MHD_Result ret;
	const struct lock *clash = lock_conflict(ls, &nl);
	if (clash) {
		char *href = href_new(d, clash->path, false);
		ret = send_dav_error(r, MHD_HTTP_LOCKED, "no-conflicting-lock", href);
		free(href);
		goto out;
	}
	bool created = false;
	if (x->kind == RES_NONE) {
		char *parent = parent_of(d->path);
		struct res px = {0};
		if (parent && res_get(r, parent, &px) < 0)
			px.kind = RES_NONE;
		free(parent);
		if (px.kind != RES_DIR) {
			ret = send_text(r, MHD_HTTP_CONFLICT, "the parent folder does not exist");
			goto out;
		}
		if (!check_locks(r, d->path, true, false, h, ls, d)) {
			ret = MHD_YES;
			goto out;
		}
		r->capture = true;
		if (!create_empty(r, d)) {
			ret = send_captured(r);
			goto out;
		}
		created = true;
	}
	/* Again inside the workspace's lock: two LOCKs racing both saw no conflict. */
	struct locks fresh = {0};
	if (meta_begin(r->db, r->ws_id) != DB_DONE || locks_load(r, &fresh) < 0) {
		db_rollback(r->db);
		ret = send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		goto out;
	}
	clash = lock_conflict(&fresh, &nl);
	if (clash) {
		db_rollback(r->db);
		char *href = href_new(d, clash->path, false);
		ret = send_dav_error(r, MHD_HTTP_LOCKED, "no-conflicting-lock", href);
		free(href);
		locks_free(&fresh);
		goto out;
	}
	locks_free(&fresh);
	if (db_run(r->db, "DELETE FROM dav_locks WHERE workspace_id = ? AND timeout_at <= ?", "ii",
	           r->ws_id, now) != DB_DONE ||
	    db_run(r->db,
	           "INSERT INTO dav_locks(token, workspace_id, path, depth, scope, owner_xml, "
	           "user_id, created_at, timeout_at) VALUES(?,?,?,?,?,?,?,?,?)",
	           "titittiii", nl.token, r->ws_id, nl.path, (int64_t)nl.depth,
	           nl.exclusive ? "exclusive" : "shared", nl.owner, r->user_id, now,
	           nl.timeout_at) != DB_DONE ||
	    meta_audit(r, "dav.lock", d->path, NULL) != 0 || meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		ret = send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		goto out;
	}
	ret = send_lock(r, d, &nl, created ? MHD_HTTP_CREATED : MHD_HTTP_OK);
out:
	free(nl.owner);
	return ret;
}

static enum MHD_Result dav_unlock(struct req *r, struct dav *d, const struct locks *ls)
{
	const char *h = req_header(r, "Lock-Token");
	if (!h)
		return send_text(r, MHD_HTTP_BAD_REQUEST, "a Lock-Token header is required");
	while (*h == ' ')
		h++;
	size_t n = strlen(h);
	char *tok = n >= 2 && h[0] == '<' && h[n - 1] == '>' ? xstrndup(h + 1, n - 2) : xstrdup(h);
	enum MHD_Result ret = MHD_NO;
	bool found = false;
	for (size_t i = 0; i < ls->n && !found; i++) {
		const struct lock *l = &ls->l[i];
		if (strcmp(l->token, tok) != 0 || !lock_covers(l, d->path))
			continue;
		found = true;
		if (l->user_id != r->user_id && r->role < ROLE_ADMIN) {
			ret = send_text(r, MHD_HTTP_FORBIDDEN, "the lock belongs to someone else");
		} else if (db_run(r->db, "DELETE FROM dav_locks WHERE token = ?", "t", tok) !=
		               DB_DONE ||
		           meta_audit(r, "dav.unlock", l->path, NULL) != 0) {
			ret = send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		} else {
			ret = send_status(r, MHD_HTTP_NO_CONTENT);
		}
	}
	if (!found)
		ret = send_dav_error(r, MHD_HTTP_CONFLICT, "lock-token-matches-request-uri", NULL);
	free(tok);
	return ret;
}

/* ---- COPY and MOVE ---- */

static bool overwrite_allowed(struct req *r)
{
	const char *o = req_header(r, "Overwrite");
	return !o || (o[0] != 'F' && o[0] != 'f');
}

/* Copy a file (or, captured, fail); dest's props replaced by src's. */
static bool copy_file(struct req *r, const char *src, const char *dest)
{
	struct file_info fi;
	cap_reset(r);
	if (!meta_readable_version(r, src, 0, &fi))
		return false;
	if (!acl_require(r, dest, true, PERM_WRITE))
		return false;
	upload_copy_version(r, dest, &fi);
	if (!captured_ok(r))
		return false;
	int64_t id = json_integer_value(json_object_get(r->cap_body, "id"));
	if (dprops_copy(r, RES_FILE, fi.id, RES_FILE, id) != 0) {
		r->cap_status = MHD_HTTP_SERVICE_UNAVAILABLE;
		return false;
	}
	return true;
}

static bool copy_folder_one(struct req *r, const char *src, const char *dest)
{
	int64_t sid = 0;
	cap_reset(r);
	api_mkdir_path(r, dest, true);
	if (!captured_ok(r))
		return false;
	int64_t did = json_integer_value(json_object_get(r->cap_body, "id"));
	if (meta_folder_id(r->db, r->ws_id, src, &sid) == 1 &&
	    dprops_copy(r, RES_DIR, sid, RES_DIR, did) != 0) {
		r->cap_status = MHD_HTTP_SERVICE_UNAVAILABLE;
		return false;
	}
	return true;
}

static char *rebase(const char *path, const char *from, const char *to)
{
	return xasprintf("%s%s", to, path + strlen(from));
}

/* A folder and (deep) everything below it the caller may read. */
static bool copy_tree(struct req *r, const char *src, const char *dest, bool deep)
{
	if (!copy_folder_one(r, src, dest))
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
	             "iititit", r->ws_id, (int64_t)utf8_chars(prefix), prefix, r->ws_id, src,
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
		r->cap_status = MHD_HTTP_SERVICE_UNAVAILABLE;
	struct acl *a = req_acl(r);
	for (size_t i = 0; ok && i < n; i++) {
		const char *p = items[i] + 1;
		bool file = items[i][0] == 'f';
		if (file ? acl_perm(a, p, true) < PERM_READ : !acl_visible(a, p, false))
			continue; /* what the caller cannot see is not copied */
		char *to = rebase(p, src, dest);
		ok = file ? copy_file(r, p, to) : copy_folder_one(r, p, to);
		free(to);
	}
	for (size_t i = 0; i < n; i++)
		free(items[i]);
	free(items);
	return ok;
}

static enum MHD_Result dav_copymove(struct req *r, struct dav *d, const struct res *x, bool move,
                                    const struct ifhdr *h, const struct locks *ls)
{
	const char *dh = req_header(r, "Destination");
	if (!dh)
		return send_text(r, MHD_HTTP_BAD_REQUEST, "a Destination header is required");
	unsigned bad;
	char *dest = url_to_path(r, d, dh, &bad);
	if (!dest)
		return send_text(r, bad,
		                 bad == MHD_HTTP_BAD_GATEWAY
		                     ? "the destination is not in this workspace"
		                     : "the destination is not a valid path");
	enum MHD_Result ret;
	char *dparent = parent_of(dest);
	const char *depth = req_header(r, "Depth");
	bool deep = !depth || strcasecmp(depth, "infinity") == 0;
	struct res dx, px;
	if (strcmp(dest, d->path) == 0 || !dparent || (move && strcmp(d->path, "/") == 0)) {
		ret = send_text(r, MHD_HTTP_FORBIDDEN, "source and destination are the same");
		goto out;
	}
	if (x->kind == RES_DIR && inside(dest, d->path)) {
		ret = send_text(r, MHD_HTTP_CONFLICT, "cannot copy or move a folder into itself");
		goto out;
	}
	if (move && x->kind == RES_DIR && depth && !deep) {
		ret = send_text(r, MHD_HTTP_BAD_REQUEST,
		                "MOVE of a collection takes Depth: infinity");
		goto out;
	}
	if (res_get(r, dest, &dx) < 0 || res_get(r, dparent, &px) < 0) {
		ret = send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		goto out;
	}
	if (px.kind != RES_DIR) {
		ret = send_text(r, MHD_HTTP_CONFLICT, "the destination's parent does not exist");
		goto out;
	}
	if (dx.kind && !overwrite_allowed(r)) {
		ret = send_status(r, MHD_HTTP_PRECONDITION_FAILED);
		goto out;
	}
	if ((move && !check_locks(r, d->path, true, x->kind == RES_DIR, h, ls, d)) ||
	    !check_locks(r, dest, true, dx.kind == RES_DIR, h, ls, d)) {
		ret = MHD_YES;
		goto out;
	}
	r->capture = true;
	/* Every permission first: nothing in the way goes to the trash for a
	 * COPY or MOVE that then fails. */
	cap_reset(r);
	if ((move &&
	     (!acl_require(r, d->path, x->kind == RES_FILE, PERM_WRITE) ||
	      (x->kind == RES_DIR && !acl_subtree_at_least(req_acl(r), d->path, PERM_WRITE)))) ||
	    !acl_require(r, dest, x->kind == RES_FILE, PERM_WRITE)) {
		if (!r->cap_status)
			r->cap_status = MHD_HTTP_FORBIDDEN;
		ret = send_captured(r);
		goto out;
	}
	/* A file copied over a file becomes its new version (its history stays);
	 * anything else in the way goes to the trash first. */
	bool replace_in_place = !move && x->kind == RES_FILE && dx.kind == RES_FILE;
	if (dx.kind && !replace_in_place) {
		cap_reset(r);
		api_delete_path(r, dest);
		if (!captured_ok(r)) {
			ret = send_captured(r);
			goto out;
		}
		locks_drop_below(r, dest);
	}
	bool ok;
	if (move) {
		cap_reset(r);
		api_move_paths(r, d->path, dest);
		ok = captured_ok(r);
		if (ok)
			locks_drop_below(r,
			                 d->path); /* locks stay with the URL, not the resource */
	} else if (x->kind == RES_FILE) {
		ok = copy_file(r, d->path, dest);
	} else {
		ok = copy_tree(r, d->path, dest, deep);
	}
	ret = ok ? send_status(r, dx.kind ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED)
	         : send_captured(r);
out:
	free(dest);
	free(dparent);
	return ret;
}

static void dav_free(void *p);

/* ---- the other methods ---- */

static enum MHD_Result dav_options(struct req *r)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(resp, "DAV", "1, 2");
	MHD_add_response_header(resp, "MS-Author-Via", "DAV");
	MHD_add_response_header(resp, "Allow",
	                        "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, "
	                        "PROPPATCH, LOCK, UNLOCK");
	MHD_add_response_header(resp, "Accept-Ranges", "bytes");
	r->capture = false;
	return req_queue(r, MHD_HTTP_OK, resp);
}

static enum MHD_Result dav_get(struct req *r, struct dav *d, const struct res *x)
{
	if (x->kind == RES_DIR) {
		const char *msg = "This is a roost WebDAV folder: mount it with a WebDAV client.\n";
		return send_full(r, MHD_HTTP_OK, "text/plain; charset=utf-8", xstrdup(msg),
		                 strlen(msg), NULL, NULL, NULL, NULL);
	}
	struct file_info fi;
	cap_reset(r);
	r->capture = true;
	if (!meta_readable_version(r, d->path, 0, &fi))
		return send_captured(r);
	r->capture = false;
	char etag[96];
	res_etag(x, etag);
	r->etag = etag;
	enum MHD_Result ret = serve_version(r, &fi, false);
	r->etag = NULL;
	return ret;
}

static enum MHD_Result dav_delete(struct req *r, struct dav *d, const struct res *x,
                                  const struct ifhdr *h, const struct locks *ls)
{
	if (strcmp(d->path, "/") == 0)
		return send_text(r, MHD_HTTP_FORBIDDEN, "the workspace root cannot be deleted");
	if (!check_locks(r, d->path, true, x->kind == RES_DIR, h, ls, d))
		return MHD_YES;
	r->capture = true;
	cap_reset(r);
	api_delete_path(r, d->path);
	if (!captured_ok(r))
		return send_captured(r);
	locks_drop_below(r, d->path);
	return send_status(r, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result dav_mkcol(struct req *r, struct dav *d, const struct res *x,
                                 const struct ifhdr *h, const struct locks *ls)
{
	if (d->len)
		return send_text(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "MKCOL takes no body");
	if (x->kind)
		return send_text(r, MHD_HTTP_METHOD_NOT_ALLOWED, "something exists there already");
	char *parent = parent_of(d->path);
	struct res px;
	int rc = parent ? res_get(r, parent, &px) : 0;
	free(parent);
	if (rc < 0)
		return send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
	if (px.kind != RES_DIR)
		return send_text(r, MHD_HTTP_CONFLICT, "the parent folder does not exist");
	if (!check_locks(r, d->path, true, false, h, ls, d))
		return MHD_YES;
	r->capture = true;
	cap_reset(r);
	api_mkdir_path(r, d->path, false);
	if (!captured_ok(r))
		return send_captured(r);
	return send_status(r, MHD_HTTP_CREATED);
}

/* PUT on the request head: every check before the body streams in. */
static enum MHD_Result dav_put_begin(struct req *r, struct dav *d)
{
	struct res x, px;
	char *parent = parent_of(d->path);
	int rc = parent ? res_get(r, parent, &px) : 0;
	free(parent);
	if (rc >= 0)
		rc = res_get(r, d->path, &x);
	if (rc < 0)
		return send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
	if (!strcmp(d->path, "/") || x.kind == RES_DIR)
		return send_text(r, MHD_HTTP_METHOD_NOT_ALLOWED, "a folder cannot be PUT");
	if (px.kind != RES_DIR)
		return send_text(r, MHD_HTTP_CONFLICT, "the parent folder does not exist");
	if (req_header(r, "Content-Range"))
		return send_text(r, MHD_HTTP_BAD_REQUEST, "partial PUT is not supported");
	r->capture = true;
	cap_reset(r);
	if (!acl_require(r, d->path, true, PERM_WRITE))
		return send_captured(r);
	struct ifhdr h;
	const char *ih = req_header(r, "If");
	if (ih && !ifhdr_parse(r, d, ih, &h))
		return send_text(r, MHD_HTTP_BAD_REQUEST, "malformed If header");
	if (!ih)
		memset(&h, 0, sizeof h);
	struct locks ls;
	enum MHD_Result ret = MHD_YES;
	if (locks_load(r, &ls) < 0) {
		ret = send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		goto out;
	}
	if (!check_preconditions(r, d, d->path, &x, &h, &ls) ||
	    !check_locks(r, d->path, x.kind == RES_NONE, false, &h, &ls, d))
		goto out;
	d->put_existed = x.kind == RES_FILE;
	cap_reset(r);
	upload_stream_start(r, xstrdup(d->path));
	d->up = r->state;
	d->up_free = r->state_free;
	r->state = d;
	r->state_free = dav_free;
	if (r->cap_status)
		ret = send_captured(r);
	r->capture = false;
out:
	locks_free(&ls);
	ifhdr_free(&h);
	return ret;
}

static enum MHD_Result dav_put(struct req *r, struct dav *d)
{
	r->state = d->up;
	r->capture = true;
	cap_reset(r);
	api_upload(r);
	r->state = d;
	if (!captured_ok(r))
		return send_captured(r);
	char etag[80];
	snprintf(etag, sizeof etag, "\"%.*s\"", ETAG_HEX,
	         json_string_value(json_object_get(r->cap_body, "hash")));
	return send_full(r, d->put_existed ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED, NULL, NULL, 0,
	                 "ETag", etag, NULL, NULL);
}

/* ---- the route's three hooks ---- */

static void dav_free(void *p)
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
		return send_text(r, MHD_HTTP_METHOD_NOT_ALLOWED,
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
	                                     "i", r->user_id)
	                          : NULL;
	while (st && db_step(st) == DB_ROW) {
		fputs("<D:response><D:href>/dav/", f);
		url_esc(f, db_col_text(st, 0));
		fputs("/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/>"
		      "</D:resourcetype><D:displayname>",
		      f);
		xml_esc(f, db_col_text(st, 0));
		fputs("</D:displayname></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
		      "</D:response>",
		      f);
	}
	db_finalize(st);
	fputs("</D:multistatus>\n", f);
	(void)d;
	return send_xml(r, MHD_HTTP_MULTI_STATUS, f, &buf, &len, NULL, NULL);
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

enum MHD_Result dav_begin(struct req *r)
{
	pthread_once(&dav_once, dav_init_once);
	if (!is_content_port(r))
		return send_text(r, MHD_HTTP_NOT_FOUND, "WebDAV is served on the content port");
	struct dav *d = xcalloc(1, sizeof *d);
	r->state = d;
	r->state_free = dav_free;
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
	r->ws_id = ws_resolve(r, d->ws_seg);
	if (r->ws_id)
		r->role = auth_role(r->db, r->ws_id, r->user_id);
	if (!r->ws_id || r->role == ROLE_NONE || (r->host_id && r->host_ws != r->ws_id))
		return send_text(r, MHD_HTTP_NOT_FOUND, "no such workspace");
	const char *p = slash ? slash : "/", *why;
	d->path = path_normalize(p, strlen(p), &why);
	if (!d->path) {
		char *msg = xasprintf("invalid path: %s", why);
		enum MHD_Result ret = send_text(r, MHD_HTTP_BAD_REQUEST, msg);
		free(msg);
		return ret;
	}
	if (strcmp(r->method, "PUT") == 0)
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
	if (ih && !ifhdr_parse(r, d, ih, &h))
		return send_text(r, MHD_HTTP_BAD_REQUEST, "malformed If header");
	if (res_get(r, d->path, &x) < 0 || locks_load(r, &ls) < 0) {
		ret = send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		goto out;
	}
	struct acl *a = req_acl(r);
	if (!a) {
		ret = send_text(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		goto out;
	}
	/* What the caller may not see does not exist for them. */
	if (x.kind == RES_FILE && acl_perm(a, d->path, true) < PERM_READ)
		x.kind = RES_NONE;
	if (x.kind == RES_DIR && !acl_visible(a, d->path, false))
		x.kind = RES_NONE;
	bool creates = strcmp(m, "MKCOL") == 0 || strcmp(m, "LOCK") == 0;
	if (!x.kind && !creates && strcmp(m, "UNLOCK") != 0) {
		ret = send_text(r, MHD_HTTP_NOT_FOUND, "not found");
		goto out;
	}
	if (!check_preconditions(r, d, d->path, &x, &h, &ls))
		goto out;
	bool writes = strcmp(m, "PROPPATCH") == 0 || strcmp(m, "LOCK") == 0;
	if (writes) {
		r->capture = true;
		cap_reset(r);
		if (!acl_require(r, d->path, x.kind != RES_DIR, PERM_WRITE)) {
			ret = send_captured(r);
			goto out;
		}
		r->capture = false;
	}
	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
		ret = dav_get(r, d, &x);
	else if (strcmp(m, "PROPFIND") == 0)
		ret = dav_propfind(r, d, &x, &ls);
	else if (strcmp(m, "PROPPATCH") == 0)
		ret = check_locks(r, d->path, false, false, &h, &ls, d) ? dav_proppatch(r, d, &x)
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
		ret = send_text(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method not supported here");
out:
	r->capture = false;
	locks_free(&ls);
	ifhdr_free(&h);
	return ret;
}
