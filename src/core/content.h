/* content: the headers every answer that carries a user's bytes gets, on the
 * hub (API content, signed URLs, share links, WebDAV, ZIP) and on a host.
 *
 * Those bytes are whatever a member uploaded. Served inline on one of our
 * origins, an HTML or SVG file is a stored script with the viewer's
 * credentials. So: a browser may show inline only types on a short allow-list
 * of passive formats (images but SVG, audio, video, plain text); any other is
 * an attachment. Every answer also carries "Content-Security-Policy: sandbox"
 * (no script, no same-origin rights even if a browser renders it) and
 * "X-Content-Type-Options: nosniff" (no guessing a type past the list).
 *
 * Threads: pure, any thread.
 */
#ifndef ROOST_CONTENT_H
#define ROOST_CONTENT_H

#include <microhttpd.h>
#include <stdbool.h>

/* May a file of this Content-Type (parameters ignored) be shown inline? */
bool content_inline_ok(const char *ctype);
/* Add Content-Type (ctype, or application/octet-stream if empty), the CSP
 * sandbox, nosniff and, for attachments (asked for, or a type not on the
 * list), Content-Disposition with name (NULL: no file name). */
void content_headers(struct MHD_Response *resp, const char *ctype, const char *name,
                     bool attachment);

#endif
