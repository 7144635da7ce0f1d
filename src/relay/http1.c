/* http1: the strict head grammar (http1.h). */
#include "http1.h"

#include <string.h>
#include <strings.h>

bool http1_is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_vchar_or_ws(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* The request line: token SP target SP HTTP/1.x, the target free of spaces
 * and control bytes. */
static bool request_line_ok(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && http1_is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i >= n || s[i] != ' ')
		return false;
	size_t t = ++i;
	while (i < n && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] != 0x7f)
		i++;
	if (i == t || i >= n || s[i] != ' ')
		return false;
	i++;
	return n - i == 8 && memcmp(s + i, "HTTP/1.", 7) == 0 &&
	       (s[i + 7] == '0' || s[i + 7] == '1');
}

/* The status line: HTTP/1.x SP 3DIGIT SP reason (reason may be empty). */
static bool status_line_ok(const char *s, size_t n)
{
	if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
		return false;
	for (size_t i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	if (n > 12 && s[12] != ' ')
		return false;
	for (size_t i = 13; i < n; i++)
		if (!is_vchar_or_ws((unsigned char)s[i]))
			return false;
	return true;
}

/* The value with optional whitespace trimmed off both ends. */
static void trim(const char **v, size_t *n)
{
	while (*n && (**v == ' ' || **v == '\t'))
		(*v)++, (*n)--;
	while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
		(*n)--;
}

static bool named(const char *name, size_t n, const char *want)
{
	return n == strlen(want) && strncasecmp(name, want, n) == 0;
}

int http1_head_check(enum http1_kind kind, const char *buf, size_t len, const char **why)
{
	*why = "the head does not end with an empty line";
	if (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0)
		return -1;
	/* Lines end in CRLF, and CR and LF appear nowhere else. */
	for (size_t i = 0; i < len; i++) {
		if ((buf[i] == '\r' && (i + 1 >= len || buf[i + 1] != '\n')) ||
		    (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))) {
			*why = "a line does not end with CRLF";
			return -1;
		}
		if (buf[i] == 0) {
			*why = "the head holds a NUL byte";
			return -1;
		}
	}
	const char *line = buf, *end = buf + len - 2; /* the final CRLF ends the head */
	const char *eol = memchr(line, '\r', (size_t)(end - line));
	if (!(kind == HTTP1_REQUEST ? request_line_ok(line, (size_t)(eol - line))
	                            : status_line_ok(line, (size_t)(eol - line)))) {
		*why = kind == HTTP1_REQUEST ? "the request line is not METHOD TARGET HTTP/1.1"
		                             : "the status line is not HTTP/1.1 CODE REASON";
		return -1;
	}
	int lengths = 0, encodings = 0;
	for (line = eol + 2; line < end; line = eol + 2) {
		eol = memchr(line, '\r', (size_t)(end - line));
		if (*line == ' ' || *line == '\t') {
			*why = "a header line is folded (obs-fold)";
			return -1;
		}
		const char *colon = line;
		while (colon < eol && http1_is_tchar((unsigned char)*colon))
			colon++;
		if (colon == line || colon == eol || *colon != ':') {
			*why = "a header name is not a token directly followed by ':'";
			return -1;
		}
		const char *v = colon + 1;
		size_t vn = (size_t)(eol - v);
		for (size_t i = 0; i < vn; i++)
			if (!is_vchar_or_ws((unsigned char)v[i])) {
				*why = "a header value holds a control byte";
				return -1;
			}
		trim(&v, &vn);
		size_t nn = (size_t)(colon - line);
		if (named(line, nn, "content-length")) {
			if (++lengths > 1 || vn == 0 || vn > 18 || strspn(v, "0123456789") < vn) {
				*why = "Content-Length is not one decimal number";
				return -1;
			}
		} else if (named(line, nn, "transfer-encoding")) {
			if (++encodings > 1 || !(vn == 7 && strncasecmp(v, "chunked", 7) == 0)) {
				*why = "Transfer-Encoding other than one 'chunked'";
				return -1;
			}
		}
	}
	if (lengths && encodings) {
		*why = "both Content-Length and Transfer-Encoding";
		return -1;
	}
	return 0;
}
