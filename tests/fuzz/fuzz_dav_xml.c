/* fuzz_dav_xml: WebDAV request bodies (dav_xml_parse, dav_is, dav_child,
 * dav_node_xml: src/hub/dav/dav_parse.c), walked the way PROPFIND, PROPPATCH
 * and LOCK walk them (dav_props.c, dav_lock.c). Invariant: every fragment
 * the hub would store (a PROPPATCH value, a LOCK owner) and replay inside
 * PROPFIND and lockdiscovery answers is itself well-formed XML holding the
 * same element (issue 13, item 12). */
#include "fuzz.h"
#include "../../src/hub/dav/dav.h"

#include <libxml/parser.h>

static void check_fragment(xmlNodePtr n)
{
	char *xml = dav_node_xml(n);
	struct dav d = {.body = xml, .len = strlen(xml)};
	xmlDocPtr doc = dav_xml_parse(&d);
	if (!doc)
		fprintf(stderr, "stored fragment is not well-formed: %s\n", xml);
	FUZZ_CHECK(doc);
	xmlNodePtr root = xmlDocGetRootElement(doc);
	FUZZ_CHECK(root && strcmp((const char *)root->name, (const char *)n->name) == 0);
	FUZZ_CHECK(!n->ns == !root->ns);
	FUZZ_CHECK(!n->ns || xmlStrEqual(n->ns->href, root->ns->href));
	xmlFreeDoc(doc);
	free(xml);
}

static void walk_propfind(xmlNodePtr root)
{
	xmlNodePtr prop = dav_child(root, "prop");
	if (dav_child(root, "propname") || !prop)
		return;
	for (xmlNodePtr c = prop->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			FUZZ_CHECK(c->name != NULL);
}

static void walk_proppatch(xmlNodePtr root)
{
	for (xmlNodePtr op = root->children; op; op = op->next) {
		bool set = dav_is(op, "set");
		if (!set && !dav_is(op, "remove"))
			continue;
		for (xmlNodePtr prop = op->children; prop; prop = prop->next) {
			if (!dav_is(prop, "prop"))
				continue;
			for (xmlNodePtr c = prop->children; c; c = c->next)
				if (c->type == XML_ELEMENT_NODE && set)
					check_fragment(c);
		}
	}
}

static void walk_lockinfo(xmlNodePtr root)
{
	xmlNodePtr scope = dav_child(root, "lockscope"), type = dav_child(root, "locktype");
	if (!scope || !type || !dav_child(type, "write"))
		return;
	xmlNodePtr owner = dav_child(root, "owner");
	if (owner)
		check_fragment(owner);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		xmlInitParser();
		ready = true;
	}
	if (size > DAV_XML_MAX)
		return 0;
	struct dav d = {.body = (char *)data, .len = size};
	xmlDocPtr doc = dav_xml_parse(&d);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
	if (dav_is(root, "propfind"))
		walk_propfind(root);
	else if (dav_is(root, "propertyupdate"))
		walk_proppatch(root);
	else if (dav_is(root, "lockinfo"))
		walk_lockinfo(root);
	xmlFreeDoc(doc);
	return 0;
}
