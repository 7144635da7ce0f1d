#include "path.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Strict UTF-8 check of one code point that may stand in a name; returns its
 * length, or 0 for invalid UTF-8 and for C1 control characters. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
	unsigned c = s[0];
	size_t n;
	unsigned min;
	if (c < 0x80)
		return 1;
	if ((c & 0xE0) == 0xC0) {
		n = 2;
		min = 0x80;
		c &= 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3;
		min = 0x800;
		c &= 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4;
		min = 0x10000;
		c &= 0x07;
	} else {
		return 0;
	}
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF) || (c >= 0x80 && c <= 0x9F))
		return 0;
	return n;
}

bool name_valid(const char *s, size_t len)
{
	if (!s || len == 0 || len > NAME_MAX_BYTES)
		return false;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		if (u[i] < 0x20 || u[i] == 0x7F || u[i] == '/' || u[i] == '\\')
			return false;
		size_t n = utf8_len(u + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

char *path_normalize(const char *s, size_t len, const char **why)
{
	if (!s) {
		*why = "path is missing";
		return NULL;
	}
	if (len > PATH_MAX_BYTES) {
		*why = "path is longer than 4096 bytes";
		return NULL;
	}
	if (memchr(s, 0, len)) {
		*why = "path contains a NUL byte";
		return NULL;
	}
	size_t start = 0, end = len;
	if (start < end && s[start] == '/')
		start++;
	/* One trailing '/' may follow a name; "//" or "a//" ends in an empty name. */
	if (end > start + 1 && s[end - 1] == '/')
		end--;
	if (end > start && s[end - 1] == '/') {
		*why = "path has an empty component";
		return NULL;
	}
	char *out = xmalloc(len + 2);
	size_t o = 0;
	out[o++] = '/';
	size_t i = start;
	while (i < end) {
		const char *slash = memchr(s + i, '/', end - i);
		size_t clen = slash ? (size_t)(slash - (s + i)) : end - i;
		if (clen == 0) {
			*why = "path has an empty component";
			free(out);
			return NULL;
		}
		if (!name_valid(s + i, clen)) {
			*why = "path has an invalid name (empty, '.', '..', '\\', control "
			       "characters, invalid UTF-8 or over 255 bytes)";
			free(out);
			return NULL;
		}
		if (o > 1)
			out[o++] = '/';
		memcpy(out + o, s + i, clen);
		o += clen;
		i += clen + 1;
	}
	out[o] = 0;
	return out;
}

bool path_split(const char *norm, char **parent, char **name)
{
	if (strcmp(norm, "/") == 0)
		return false;
	const char *slash = strrchr(norm, '/');
	*name = xstrdup(slash + 1);
	*parent = slash == norm ? xstrdup("/") : xstrndup(norm, (size_t)(slash - norm));
	return true;
}

char *path_join(const char *folder, const char *name)
{
	if (strcmp(folder, "/") == 0)
		return xasprintf("/%s", name);
	return xasprintf("%s/%s", folder, name);
}

size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

bool path_reserved(const char *norm)
{
	size_t n = sizeof PATH_RESERVED_TOP - 1;
	return norm[0] == '/' && strncmp(norm + 1, PATH_RESERVED_TOP, n) == 0 &&
	       (norm[n + 1] == 0 || norm[n + 1] == '/');
}
