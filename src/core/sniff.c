/* sniff: content types. A cheap look of our own decides the two commonest
 * cases — plain text without any markup or code hint, and high-entropy
 * bytes (compressed, encrypted, random) with no known signature — and
 * libmagic decides the rest. libmagic costs ~2-9 million instructions a
 * call whatever the input (it walks its whole database, and its text
 * rules run regexes over the head), which was 39% of a host's sync CPU
 * for many small files. libmagic is not thread-safe: one handle, opened
 * on first use, behind one lock; any thread may call. */
#include "sniff.h"

#include <ctype.h>
#include <magic.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t magic_mu = PTHREAD_MUTEX_INITIALIZER;
static magic_t magic_handle;

/* The length of the UTF-8 sequence at p (1-4), or 0 if it is not valid.
 * A sequence cut off by the end of the head counts as valid. */
static size_t utf8_len(const uint8_t *p, size_t left)
{
	size_t n = p[0] < 0xC2 ? 0 : p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : p[0] < 0xF5 ? 4 : 0;
	for (size_t i = 1; i < n && i < left; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

/* Whether a line opens like source code that libmagic's text rules name
 * (Python, C, shell, JavaScript, Pascal...). */
static bool code_line(const uint8_t *d, size_t left)
{
	static const char *const words[] = {
	    "import",   "from",      "def",     "class",  "try",       "if",       "package",
	    "function", "var",       "let",     "const",  "use",       "module",   "require",
	    "include",  "program",   "begin",   "public", "private",   "static",   "void",
	    "int",      "struct",    "typedef", "extern", "namespace", "template", "export",
	    "local",    "return",    "print",   "echo",   "set",       "unit",     "library",
	    "with",     "procedure", "while",   "for",    "sub",       "my",       "else",
	    "elif",     "fi",        "do",      "done",   "end",       "then",     "case",
	    "BEGIN",    "PROGRAM"};
	if (!strchr("bcdeflimprstuvwBP", d[0]) || !d[0])
		return false; /* no word starts so: skip the list */
	for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
		size_t n = strlen(words[i]);
		if (left >= n && memcmp(d, words[i], n) == 0 &&
		    (left == n || !(isalnum(d[n]) || d[n] == '_')))
			return true;
	}
	return false;
}

/* Plain text with nothing libmagic would name otherwise: UTF-8 without
 * control characters (but tab, newlines, form feed), no markup ('<', '&'),
 * no braces, no line opening like code (code_line) nor with a character that starts a script,
 * directive, PostScript, troff, TeX or mail header. Anything else, even
 * text, goes to libmagic. */
static bool plain_text(const uint8_t *d, size_t len)
{
	bool line_start = true;
	for (size_t i = 0; i < len;) {
		uint8_t c = d[i];
		if (c >= 0x80) {
			size_t n = utf8_len(d + i, len - i);
			if (!n)
				return false;
			i += n;
			line_start = false;
			continue;
		}
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f')
			return false;
		if (c == 0x7F || strchr("<>&{}[]\\@", c))
			return false;
		if (line_start &&
		    ((c && strchr("#%.!;:'\"/*-=+$", c)) || code_line(d + i, len - i)))
			return false;
		line_start = c == '\n';
		i++;
	}
	return true;
}

/* Looks like the output of a compressor or cipher: almost 8 bits of
 * entropy a byte over at least 1 KiB. */
static bool high_entropy(const uint8_t *d, size_t len)
{
	if (len < 1024)
		return false;
	unsigned count[256] = {0};
	for (size_t i = 0; i < len; i++)
		count[d[i]]++;
	double e = 0;
	for (int b = 0; b < 256; b++)
		if (count[b]) {
			double p = (double)count[b] / (double)len;
			e -= p * log2(p);
		}
	return e > 7.5; /* 1 KiB of random bytes: ~7.82; text: < 5 */
}

/* The first bytes of the formats whose bytes look random after a short
 * header (archives, compressed streams, media, images, executables,
 * documents): such data goes to libmagic, which names them. */
static bool known_binary_prefix(const uint8_t *d, size_t len)
{
	static const struct {
		const char *sig;
		size_t n, at;
	} sigs[] = {
	    {"PK", 2, 0},
	    {"\x1f\x8b", 2, 0},
	    {"\x89PNG", 4, 0},
	    {"\xff\xd8\xff", 3, 0},
	    {"GIF8", 4, 0},
	    {"%PDF", 4, 0},
	    {"%!", 2, 0},
	    {"RIFF", 4, 0},
	    {"ftyp", 4, 4},
	    {"ID3", 3, 0},
	    {"OggS", 4, 0},
	    {"fLaC", 4, 0},
	    {"7z\xbc\xaf", 4, 0},
	    {"\xfd"
	     "7zXZ",
	     5, 0},
	    {"BZh", 3, 0},
	    {"\x28\xb5\x2f\xfd", 4, 0},
	    {"\x04\x22\x4d\x18", 4, 0},
	    {"MZ", 2, 0},
	    {"\x7f"
	     "ELF",
	     4, 0},
	    {"\x1a\x45\xdf\xa3", 4, 0},
	    {"Rar!", 4, 0},
	    {"\0asm", 4, 0},
	    {"SQLite format", 13, 0},
	    {"\xd0\xcf\x11\xe0", 4, 0},
	    {"wOF", 3, 0},
	    {"\0\x01\0\0", 4, 0},
	    {"OTTO", 4, 0},
	    {"II*\0", 4, 0},
	    {"MM\0*", 4, 0},
	    {"BM", 2, 0},
	    {"\0\0\x01", 3, 0},
	    {"\x30\x82", 2, 0},
	    {"-----BEGIN", 10, 0},
	};
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		if (len >= sigs[i].at + sigs[i].n &&
		    memcmp(d + sigs[i].at, sigs[i].sig, sigs[i].n) == 0)
			return true;
	/* MPEG audio frames, transport streams and OpenPGP packets: one byte. */
	static const uint8_t first[] = {0x47, 0x84, 0x85, 0x88, 0x89, 0x8c, 0x8d,
	                                0x95, 0x99, 0xa3, 0xa8, 0xc1, 0xc3, 0xc6};
	return (d[0] == 0xFF && (d[1] & 0xE0) == 0xE0) || memchr(first, d[0], sizeof first);
}

static const char *magic_type(const uint8_t *data, size_t len)
{
	if (!magic_handle) {
		/* Skip the costly looks inside archives and documents: the MIME
		 * type of the outside is what a download needs. */
		magic_handle = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS |
		                          MAGIC_NO_CHECK_TAR | MAGIC_NO_CHECK_CDF |
		                          MAGIC_NO_CHECK_ELF | MAGIC_NO_CHECK_ENCODING);
		if (magic_handle && magic_load(magic_handle, NULL) != 0) {
			magic_close(magic_handle);
			magic_handle = NULL;
		}
	}
	return magic_handle ? magic_buffer(magic_handle, data, len) : NULL;
}

void sniff_type(const uint8_t *data, size_t len, char out[128])
{
	snprintf(out, 128, "application/octet-stream");
	if (len == 0)
		return;
	if (len > SNIFF_BYTES)
		len = SNIFF_BYTES;
	if (plain_text(data, len)) {
		snprintf(out, 128, "text/plain");
		return;
	}
	if (high_entropy(data, len) && !known_binary_prefix(data, len))
		return;
	pthread_mutex_lock(&magic_mu);
	const char *t = magic_type(data, len);
	if (t)
		snprintf(out, 128, "%s", t);
	pthread_mutex_unlock(&magic_mu);
}
