/* fuzz_path: the one validator of names and paths (src/core/path.c). Every
 * path from a URL, a JSON body, a token or a WebDAV header goes through it.
 * Invariants: a normalized path is accepted again unchanged (idempotent),
 * starts with '/', has no empty, "." or ".." component and no byte below
 * 0x20; split and join give it back. */
#include "fuzz.h"
#include "../../src/core/path.h"

static void check_normalized(const char *p)
{
	size_t n = strlen(p);
	FUZZ_CHECK(n >= 1 && p[0] == '/');
	FUZZ_CHECK(n == 1 || p[n - 1] != '/');
	FUZZ_CHECK(!strstr(p, "//") && !strstr(p, "/./") && !strstr(p, "/../"));
	FUZZ_CHECK(strcmp(p, "/.") != 0 && strcmp(p, "/..") != 0);
	FUZZ_CHECK(n < 3 || strcmp(p + n - 3, "/..") != 0);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)p[i] >= 0x20 && p[i] != 0x7f && p[i] != '\\');
	const char *why = NULL;
	char *again = path_normalize(p, n, &why);
	FUZZ_CHECK(again && strcmp(again, p) == 0);
	free(again);
	char *parent = NULL, *name = NULL;
	if (path_split(p, &parent, &name)) {
		FUZZ_CHECK(name_valid(name, strlen(name)));
		char *joined = path_join(parent, name);
		FUZZ_CHECK(strcmp(joined, p) == 0);
		free(joined);
		free(parent);
		free(name);
	} else {
		FUZZ_CHECK(strcmp(p, "/") == 0);
	}
	FUZZ_CHECK(utf8_chars(p) <= n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	if (name_valid(s, size)) {
		FUZZ_CHECK(size >= 1 && size <= NAME_MAX_BYTES);
		FUZZ_CHECK(!memchr(s, '/', size) && !memchr(s, 0, size));
	}
	const char *why = NULL;
	char *p = path_normalize(s, size, &why);
	if (p) {
		FUZZ_CHECK(strlen(p) <= size + 1);
		check_normalized(p);
		free(p);
	} else {
		FUZZ_CHECK(why && *why);
	}
	return 0;
}
