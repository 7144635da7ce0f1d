/* fuzz_dav_if: the WebDAV If header (RFC 4918 §10.4) and the URLs in it and
 * in Destination (dav_ifhdr_parse_with, dav_url_split: src/hub/dav/dav_parse.c).
 * Resource tags resolve as the hub does, with "ws" as this request's
 * workspace and any other segment elsewhere. Invariants: a parsed header has
 * 1..IF_LISTS_MAX lists of 1..IF_CONDS_MAX conditions, each with a value; a
 * tag is a normalized path or marked foreign; a URL splits into a segment
 * without '/' or an error status. */
#include "fuzz.h"
#include "../../src/core/path.h"
#include "../../src/hub/dav/dav.h"

static char *tag_path(void *cls, const char *url, unsigned *status)
{
	(void)cls;
	char *seg = NULL, *rest = NULL, *out = NULL;
	*status = dav_url_split(url, &seg, &rest);
	FUZZ_CHECK(*status == 0 || *status == 400 || *status == 502);
	FUZZ_CHECK(!*status == !!seg);
	if (*status == 0 && strcmp(seg, "ws") != 0) {
		*status = 502;
	} else if (*status == 0) {
		FUZZ_CHECK(!strchr(seg, '/'));
		const char *why;
		*status = 400;
		out = path_normalize(rest ? rest : "", rest ? strlen(rest) : 0, &why);
	}
	free(seg);
	free(rest);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	struct ifhdr h;
	if (dav_ifhdr_parse_with(s, &h, tag_path, NULL)) {
		FUZZ_CHECK(h.n >= 1 && h.n <= IF_LISTS_MAX);
		bool tagged = h.l[0].tag || h.l[0].foreign;
		for (int i = 0; i < h.n; i++) {
			FUZZ_CHECK(tagged == (h.l[i].tag || h.l[i].foreign));
			FUZZ_CHECK(h.l[i].n >= 1 && h.l[i].n <= IF_CONDS_MAX);
			FUZZ_CHECK(!(h.l[i].tag && h.l[i].foreign));
			FUZZ_CHECK(!h.l[i].tag || h.l[i].tag[0] == '/');
			for (int j = 0; j < h.l[i].n; j++)
				FUZZ_CHECK(h.l[i].c[j].val != NULL);
		}
		dav_ifhdr_free(&h);
	} else {
		FUZZ_CHECK(h.n == 0);
	}
	unsigned st;
	free(tag_path(NULL, s, &st));
	free(s);
	return 0;
}
