/* http1: the strict grammar the relay holds an HTTP/1.1 head to before it
 * lets http_parser frame the message (docs/security.md, "request smuggling").
 *
 * http_parser is lenient where the host's libmicrohttpd is strict, and the
 * other way round; every disagreement about where a message ends is a way to
 * smuggle one. So a head is refused unless it is unambiguous to any parser:
 * every line ends in CRLF (no bare CR or LF), no obs-fold, header names are
 * RFC 9110 tokens directly followed by ':', values hold no control bytes but
 * HTAB, at most one Content-Length (digits only), Transfer-Encoding is exactly
 * "chunked" and never beside a Content-Length. Pure: no I/O, no allocation. */
#ifndef ROOST_HTTP1_H
#define ROOST_HTTP1_H

#include <stdbool.h>
#include <stddef.h>

enum http1_kind { HTTP1_REQUEST, HTTP1_RESPONSE };

/* Check the head in buf[0..len), which ends with the blank line "\r\n\r\n".
 * 0 if it passes; -1 with *why (a static string) if not. */
int http1_head_check(enum http1_kind kind, const char *buf, size_t len, const char **why);

/* RFC 9110 tchar. */
bool http1_is_tchar(unsigned char c);

#endif
