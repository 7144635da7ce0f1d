/* dav_parse: the WebDAV parsers of bytes from the network, kept pure (no
 * request, no database) so that tests/fuzz can run them alone: URLs
 * (Destination, If tags), the If header (RFC 4918 §10.4) and XML bodies
 * (PROPFIND, PROPPATCH, LOCK). The rest of dav*.c calls these. */
#include "dav.h"
#include "../../core/path.h"
#include "../../core/util.h"

#include <ctype.h>
#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IF_HEADER_MAX 8192

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

unsigned dav_url_split(const char *url, char **seg, char **rest)
{
	*seg = *rest = NULL;
	if (strlen(url) > PATH_MAX_BYTES * 3 + 256)
		return MHD_HTTP_BAD_REQUEST;
	const char *p = url;
	const char *scheme = strstr(url, "://");
	if (scheme && scheme < strchr(url, '/')) {
		p = strchr(scheme + 3, '/');
		if (!p)
			return MHD_HTTP_BAD_GATEWAY;
	}
	if (*p != '/')
		return MHD_HTTP_BAD_REQUEST;
	char *s = xstrdup(p);
	char *cut = strpbrk(s, "?#");
	if (cut)
		*cut = 0;
	unsigned status = 0;
	if (!url_unesc(s)) {
		status = MHD_HTTP_BAD_REQUEST;
	} else if (strncmp(s, "/dav/", 5) != 0) {
		status = MHD_HTTP_BAD_GATEWAY;
	} else {
		char *r = strchr(s + 5, '/');
		if (r)
			*r++ = 0;
		*seg = xstrdup(s + 5);
		*rest = r ? xstrdup(r) : NULL;
	}
	free(s);
	return status;
}

void dav_ifhdr_free(struct ifhdr *h)
{
	for (int i = 0; i < h->n; i++) {
		free(h->l[i].tag);
		for (int j = 0; j < h->l[i].n; j++)
			free(h->l[i].c[j].val);
	}
	h->n = 0;
}

/* RFC 4918 §10.4: If = 1*No-tag-list | 1*Tagged-list. false: malformed. */
bool dav_ifhdr_parse_with(const char *s, struct ifhdr *h, dav_tag_fn tag_of, void *cls)
{
	memset(h, 0, sizeof *h);
	if (strlen(s) > IF_HEADER_MAX)
		return false;
	char *tag = NULL;
	/* A tag needs a list after it; lists with and without tags don't mix. */
	bool foreign = false, ok = true, tagged = false, bare = false, want_list = false;
	while (ok && *s) {
		if (isspace((unsigned char)*s)) {
			s++;
			continue;
		}
		if (*s == '<') {
			const char *e = strchr(s, '>');
			if (!e || bare || want_list) {
				ok = false;
				break;
			}
			tagged = want_list = true;
			char *url = xstrndup(s + 1, (size_t)(e - s - 1));
			unsigned st;
			free(tag);
			tag = tag_of(cls, url, &st);
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
		bare = !tagged;
		want_list = false;
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
	if (h->n == 0 || want_list)
		ok = false; /* empty, or a tag with no list */
	if (!ok)
		dav_ifhdr_free(h);
	return ok;
}

xmlDocPtr dav_xml_parse(struct dav *d)
{
	xmlParserCtxtPtr ctx = xmlNewParserCtxt();
	if (!ctx)
		abort();
	/* no network, no entity expansion, no DTD loading; quiet */
	xmlDocPtr doc = xmlCtxtReadMemory(ctx, d->body, (int)d->len, NULL, NULL,
	                                  XML_PARSE_NONET | XML_PARSE_NOERROR |
	                                      XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
	/* RFC 4918 §20.6: a body with a DTD is refused; without one, an entity
	 * other than the predefined five is not well-formed either. (A DTD's
	 * entities were stored as references and replayed raw: item 12, also
	 * found by tests/fuzz/fuzz_dav_xml.c.) */
	if (doc && (!ctx->wellFormed || !ctx->nsWellFormed || doc->intSubset || doc->extSubset)) {
		xmlFreeDoc(doc);
		doc = NULL;
	}
	xmlFreeParserCtxt(ctx);
	return doc;
}

bool dav_is(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
	       strcmp((const char *)n->ns->href, "DAV:") == 0 &&
	       strcmp((const char *)n->name, name) == 0;
}

xmlNodePtr dav_child(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (dav_is(c, name))
			return c;
	return NULL;
}

/* An element as a self-contained XML fragment: the namespaces it uses are
 * declared on it, so it can be replayed inside any other document. Copying
 * into a new document does that (declarations from the element's ancestors
 * are added to the copy's root); xmlReconciliateNs would also rename default
 * namespaces to made-up prefixes. */
char *dav_node_xml(xmlNodePtr n)
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
