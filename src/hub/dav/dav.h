/* dav.h: what the WebDAV files share (dav.c routes and answers, dav_auth.c
 * logs in, dav_props.c holds PROPFIND/PROPPATCH and dead properties,
 * dav_lock.c locks and the If header, dav_tree.c the methods that read and
 * change the tree). Private to src/hub/dav*.c; hub.h has the route's hooks. */
#ifndef ROOST_DAV_H
#define ROOST_DAV_H

#include "../hub.h"

#include <libxml/tree.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define DAV_XML_MAX  (1 << 20) /* request bodies of PROPFIND, PROPPATCH, LOCK */
#define IF_LISTS_MAX 16
#define IF_CONDS_MAX 16

/* A file's ETag is its version's SHA-256 cut to 128 bits: clients put ETags in
 * If headers next to lock tokens, and some (litmus among them) cut headers
 * near 200 bytes. */
#define ETAG_HEX 32

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

/* dav.c */
bool dav_inside(const char *path, const char *folder);
char *dav_parent_of(const char *path);
void dav_res_etag(const struct res *x, char out[96]);
enum MHD_Result dav_send_full(struct req *r, unsigned status, const char *ctype, char *body,
                              size_t len, const char *h1, const char *v1, const char *h2,
                              const char *v2);
enum MHD_Result dav_send_status(struct req *r, unsigned status);
enum MHD_Result dav_send_text(struct req *r, unsigned status, const char *msg);
/* An XML answer from a memstream (closed here). */
enum MHD_Result dav_send_xml(struct req *r, unsigned status, FILE *f, char **buf, size_t *len,
                             const char *h1, const char *v1);
/* RFC 4918 §16: a precondition element in a DAV:error body. */
enum MHD_Result dav_send_error(struct req *r, unsigned status, const char *cond, const char *href);
struct op_err;
/* An operation's error as a text answer with its WebDAV status. */
enum MHD_Result dav_send_op_err(struct req *r, struct op_err *e);
/* The resource at path as the caller sees it: RES_NONE if missing or hidden. */
int dav_res_get(struct req *r, const char *path, struct res *x);
const char *dav_entity(int kind);
void dav_href_print(FILE *f, struct dav *d, const char *path, bool dir);
char *dav_href_new(struct dav *d, const char *path, bool dir);
/* A URL or absolute path (Destination, a resource tag) to a normalized path in
 * this request's workspace. NULL with *status 400 (bad) or 502 (elsewhere). */
char *dav_url_to_path(struct req *r, struct dav *d, const char *url, unsigned *status);

/* dav.c */
void dav_state_free(void *p);

/* dav_auth.c */
/* Once, before the first request: the cache's key and a dummy password hash. */
void dav_auth_init(void);
/* 0: authenticated; else replied. */
int dav_auth(struct req *r);
/* The workspace named by a URL segment (its id or its name) that the caller
 * belongs to; 0 if none. */
int64_t dav_ws_resolve(struct req *r, const char *seg);

/* dav_parse.c: pure parsers (tests/fuzz runs them alone) */
/* A URL or absolute path under /dav/: its workspace segment and the rest
 * (both percent-decoded, new strings; rest NULL at the workspace itself).
 * 0, or 400 (malformed) or 502 (another server, or outside /dav/). */
unsigned dav_url_split(const char *url, char **seg, char **rest);
/* A resource tag's URL to a normalized path; NULL with *status as for
 * dav_url_to_path. */
typedef char *(*dav_tag_fn)(void *cls, const char *url, unsigned *status);
/* RFC 4918 §10.4: If = 1*No-tag-list | 1*Tagged-list. false: malformed. */
bool dav_ifhdr_parse_with(const char *s, struct ifhdr *h, dav_tag_fn tag_of, void *cls);
void dav_ifhdr_free(struct ifhdr *h);
/* The request body as XML: NULL unless well-formed, namespaces included. */
xmlDocPtr dav_xml_parse(struct dav *d);
bool dav_is(xmlNodePtr n, const char *name);
xmlNodePtr dav_child(xmlNodePtr n, const char *name);
/* An element as a self-contained XML fragment: the namespaces it uses are
 * declared on it, so it can be replayed inside any other document. Copying
 * into a new document does that (declarations from the element's ancestors
 * are added to the copy's root); xmlReconciliateNs would also rename default
 * namespaces to made-up prefixes. */
char *dav_node_xml(xmlNodePtr n);

/* dav_props.c */
/* Copy dead properties onto another resource, replacing its own. */
int dav_dprops_copy(struct req *r, int skind, int64_t sid, int dkind, int64_t did);
enum MHD_Result dav_propfind(struct req *r, struct dav *d, const struct res *x,
                             const struct locks *ls);
enum MHD_Result dav_proppatch(struct req *r, struct dav *d, const struct res *x);

/* dav_lock.c */
void dav_locks_free(struct locks *ls);
/* The workspace's live locks (a handful: they are loaded whole). */
int dav_locks_load(struct req *r, struct locks *ls);
bool dav_lock_covers(const struct lock *l, const char *path);
int dav_locks_drop_below(struct req *r, const char *path);
/* The If header, its tags resolved in this request's workspace. */
bool dav_ifhdr_parse(struct req *r, struct dav *d, const char *s, struct ifhdr *h);
/* Preconditions of a request on path: If, If-Match, If-None-Match. Replies and
 * returns false when one fails. */
bool dav_check_preconditions(struct req *r, struct dav *d, const char *path, const struct res *x,
                             const struct ifhdr *h, const struct locks *ls);
/* May the caller change path? Locks on it (or above it, deep), with members
 * below it (subtree), or on its parent (membership: creating or removing it)
 * need their token in the If header. Replies 423 if not. */
bool dav_check_locks(struct req *r, const char *path, bool membership, bool subtree,
                     const struct ifhdr *h, const struct locks *ls, struct dav *d);
void dav_activelock_print(FILE *f, struct dav *d, const struct lock *l);
enum MHD_Result dav_lock(struct req *r, struct dav *d, struct res *x, const struct ifhdr *h,
                         const struct locks *ls);
enum MHD_Result dav_unlock(struct req *r, struct dav *d, const struct locks *ls);

/* dav_tree.c */
enum MHD_Result dav_copymove(struct req *r, struct dav *d, const struct res *x, bool move,
                             const struct ifhdr *h, const struct locks *ls);
enum MHD_Result dav_options(struct req *r);
enum MHD_Result dav_get(struct req *r, struct dav *d, const struct res *x);
enum MHD_Result dav_delete(struct req *r, struct dav *d, const struct res *x, const struct ifhdr *h,
                           const struct locks *ls);
enum MHD_Result dav_mkcol(struct req *r, struct dav *d, const struct res *x, const struct ifhdr *h,
                          const struct locks *ls);
/* PUT on the request head: every check before the body streams in. */
enum MHD_Result dav_put_begin(struct req *r, struct dav *d);
enum MHD_Result dav_put(struct req *r, struct dav *d);

#endif
