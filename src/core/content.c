/* content: see content.h. */
#include "content.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Passive formats a browser only displays. Not here on purpose: SVG and XML
 * (scripts), HTML, JavaScript, PDF (viewers run scripts and forms), and
 * anything unknown. */
static const char *const inline_types[] = {
    "image/png",  "image/jpeg", "image/gif",  "image/webp", "image/avif", "image/bmp",
    "audio/mpeg", "audio/ogg",  "audio/wav",  "audio/webm", "audio/flac", "audio/aac",
    "audio/mp4",  "video/mp4",  "video/webm", "video/ogg",  "text/plain",
};

bool content_inline_ok(const char *ctype)
{
	if (!ctype)
		return false;
	size_t n = strcspn(ctype, ";");
	while (n > 0 && isspace((unsigned char)ctype[n - 1]))
		n--;
	for (size_t i = 0; i < sizeof inline_types / sizeof *inline_types; i++)
		if (strlen(inline_types[i]) == n && strncasecmp(ctype, inline_types[i], n) == 0)
			return true;
	return false;
}

/* RFC 6266: a plain fallback plus the exact UTF-8 name. New string. */
static char *disposition(const char *name)
{
	if (!name || !*name)
		return xstrdup("attachment");
	char *esc = xmalloc(strlen(name) * 3 + 1), *o = esc;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		o += (isalnum(*p) || strchr("-._~", *p)) ? sprintf(o, "%c", *p)
		                                         : sprintf(o, "%%%02X", *p);
	char *cd = xasprintf("attachment; filename=\"download\"; filename*=UTF-8''%s", esc);
	free(esc);
	return cd;
}

void content_headers(struct MHD_Response *resp, const char *ctype, const char *name,
                     bool attachment)
{
	MHD_add_response_header(resp, "Content-Type",
	                        ctype && *ctype ? ctype : "application/octet-stream");
	MHD_add_response_header(resp, "Content-Security-Policy", "sandbox");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (attachment || !content_inline_ok(ctype)) {
		char *cd = disposition(name);
		MHD_add_response_header(resp, "Content-Disposition", cd);
		free(cd);
	}
}
