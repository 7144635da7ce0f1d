/* Unit tests for the one validator of names and paths from users and the network. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/core/path.h"

#include <stdlib.h>
#include <string.h>

static bool valid(const char *s)
{
	return name_valid(s, strlen(s));
}

/* A string of n copies of c, NUL-terminated. */
static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	s[n] = 0;
	return s;
}

/* Normalize s and compare with want (NULL: must be rejected, with a reason). */
static void assert_normalizes(const char *s, size_t len, const char *want)
{
	const char *why = NULL;
	char *got = path_normalize(s, len, &why);
	if (want) {
		assert_non_null(got);
		assert_string_equal(got, want);
	} else {
		assert_null(got);
		assert_non_null(why);
	}
	free(got);
}

#define assert_path(s, want) assert_normalizes((s), strlen(s), (want))

static void test_name_valid_accepts_plain_names(void **state)
{
	assert_true(valid("a"));
	assert_true(valid("report.pdf"));
	assert_true(valid(".hidden"));
	assert_true(valid("..."));
	assert_true(valid("with space"));
}

static void test_name_valid_rejects_empty_dot_and_dotdot(void **state)
{
	assert_false(name_valid("", 0));
	assert_false(valid("."));
	assert_false(valid(".."));
}

static void test_name_valid_rejects_slash_and_backslash(void **state)
{
	assert_false(valid("a/b"));
	assert_false(valid("/"));
	assert_false(valid("a\\b"));
}

static void test_name_valid_rejects_embedded_nul(void **state)
{
	assert_false(name_valid("ab\0cd", 5));
	assert_false(name_valid("ab\0", 3));
}

static void test_name_valid_rejects_control_characters(void **state)
{
	assert_false(valid("a\tb"));
	assert_false(valid("a\nb"));
	assert_false(valid("\x1b[31m"));
	assert_false(valid("a\x7f"));
	assert_false(valid("a\xc2\x80")); /* U+0080, a C1 control */
	assert_false(valid("a\xc2\x9b"
	                   "1m")); /* U+009B, CSI */
	assert_true(valid("a\xc2\xa0"
	                  "b")); /* U+00A0 is printable */
}

static void test_name_valid_rejects_overlong_utf8(void **state)
{
	assert_false(valid("\xc0\xaf"));         /* '/' in two bytes */
	assert_false(valid("\xc1\xbf"));         /* U+007F in two bytes */
	assert_false(valid("\xe0\x80\xaf"));     /* '/' in three bytes */
	assert_false(valid("\xf0\x82\x82\xac")); /* U+20AC in four bytes */
}

static void test_name_valid_rejects_surrogates(void **state)
{
	assert_false(valid("\xed\xa0\x80")); /* U+D800 */
	assert_false(valid("\xed\xbf\xbf")); /* U+DFFF */
}

static void test_name_valid_rejects_truncated_utf8(void **state)
{
	assert_false(valid("\xc3"));          /* lead byte at the end */
	assert_false(valid("\xe2\x82"));      /* two of three bytes */
	assert_false(valid("a\xf0\x9f\x98")); /* three of four bytes */
	assert_false(valid("\xe2\x82z"));     /* a non-continuation byte inside */
}

static void test_name_valid_rejects_other_invalid_utf8(void **state)
{
	assert_false(valid("\x80"));             /* stray continuation byte */
	assert_false(valid("\xff"));             /* never valid */
	assert_false(valid("\xf4\x90\x80\x80")); /* past U+10FFFF */
}

static void test_name_valid_accepts_unicode(void **state)
{
	assert_true(valid("na\xc3\xafve"));             /* naïve */
	assert_true(valid("\xe6\x97\xa5\xe6\x9c\xac")); /* 日本 */
	assert_true(valid("\xf0\x9f\x98\x80.txt"));     /* 😀.txt */
	assert_true(valid("\xf4\x8f\xbf\xbf"));         /* U+10FFFF */
}

static void test_name_valid_accepts_255_bytes(void **state)
{
	char *s = repeat('x', 255);
	assert_true(valid(s));
	free(s);
}

static void test_name_valid_rejects_256_bytes(void **state)
{
	char *s = repeat('x', 256);
	assert_false(valid(s));
	free(s);
}

static void test_normalize_drops_trailing_slash(void **state)
{
	assert_path("/a/b/", "/a/b");
	assert_path("a/", "/a");
}

static void test_normalize_adds_leading_slash(void **state)
{
	assert_path("a", "/a");
	assert_path("a/b", "/a/b");
}

static void test_normalize_keeps_normal_paths(void **state)
{
	assert_path("/a/b/c", "/a/b/c");
	assert_path("/\xe6\x97\xa5/\xf0\x9f\x98\x80", "/\xe6\x97\xa5/\xf0\x9f\x98\x80");
}

static void test_normalize_maps_empty_and_slash_to_root(void **state)
{
	assert_path("", "/");
	assert_path("/", "/");
}

static void test_normalize_rejects_empty_components(void **state)
{
	assert_path("a//b", NULL);
	assert_path("//a", NULL);
	assert_path("/a//", NULL);
	assert_path("//", NULL);
}

static void test_normalize_rejects_dot_and_dotdot(void **state)
{
	assert_path("/a/../b", NULL);
	assert_path("/./a", NULL);
	assert_path("..", NULL);
	assert_path("/a/.", NULL);
}

static void test_normalize_rejects_invalid_names(void **state)
{
	assert_path("/a/b\tc", NULL);
	assert_path("/a/\xc0\xaf", NULL);
	assert_path("/a\\b", NULL);
}

static void test_normalize_rejects_embedded_nul(void **state)
{
	assert_normalizes("/a\0/b", 5, NULL);
	assert_normalizes("/a\0", 3, NULL);
}

/* "/x" repeated: a path of exactly n bytes (n even). */
static char *long_path(size_t n)
{
	char *s = repeat('x', n);
	for (size_t i = 0; i < n; i += 2)
		s[i] = '/';
	return s;
}

static void test_normalize_accepts_4096_bytes(void **state)
{
	char *s = long_path(4096);
	assert_normalizes(s, 4096, s);
	free(s);
}

static void test_normalize_rejects_over_4096_bytes(void **state)
{
	char *s = long_path(4098);
	assert_normalizes(s, 4097, NULL); /* "/x/x.../x/": 4097 bytes, trailing '/' */
	assert_normalizes(s, 4098, NULL);
	free(s);
}

static void test_normalize_rejects_name_over_255_bytes(void **state)
{
	char *name = repeat('x', 256);
	char path[300] = "/a/";
	strcat(path, name);
	assert_path(path, NULL);
	free(name);
}

static void test_split_gives_parent_and_name(void **state)
{
	char *parent = NULL, *name = NULL;
	assert_true(path_split("/a/b/c", &parent, &name));
	assert_string_equal(parent, "/a/b");
	assert_string_equal(name, "c");
	free(parent);
	free(name);
}

static void test_split_of_top_level_name_gives_root_parent(void **state)
{
	char *parent = NULL, *name = NULL;
	assert_true(path_split("/a", &parent, &name));
	assert_string_equal(parent, "/");
	assert_string_equal(name, "a");
	free(parent);
	free(name);
}

static void test_split_of_root_fails(void **state)
{
	char *parent = NULL, *name = NULL;
	assert_false(path_split("/", &parent, &name));
	assert_null(parent);
	assert_null(name);
}

static void test_join_appends_name(void **state)
{
	char *p = path_join("/a/b", "c");
	assert_string_equal(p, "/a/b/c");
	free(p);
}

static void test_join_to_root_has_one_slash(void **state)
{
	char *p = path_join("/", "a");
	assert_string_equal(p, "/a");
	free(p);
}

static void test_join_undoes_split(void **state)
{
	char *parent = NULL, *name = NULL;
	assert_true(path_split("/x/y", &parent, &name));
	char *p = path_join(parent, name);
	assert_string_equal(p, "/x/y");
	free(p);
	free(parent);
	free(name);
}

static void test_utf8_chars_counts_code_points(void **state)
{
	assert_int_equal(utf8_chars(""), 0);
	assert_int_equal(utf8_chars("abc"), 3);
	assert_int_equal(utf8_chars("na\xc3\xafve"), 5);             /* 2-byte ï */
	assert_int_equal(utf8_chars("\xe6\x97\xa5\xe6\x9c\xac"), 2); /* 3-byte each */
	assert_int_equal(utf8_chars("/\xf0\x9f\x98\x80"), 2);        /* 4-byte emoji */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_valid_accepts_plain_names),
	    cmocka_unit_test(test_name_valid_rejects_empty_dot_and_dotdot),
	    cmocka_unit_test(test_name_valid_rejects_slash_and_backslash),
	    cmocka_unit_test(test_name_valid_rejects_embedded_nul),
	    cmocka_unit_test(test_name_valid_rejects_control_characters),
	    cmocka_unit_test(test_name_valid_rejects_overlong_utf8),
	    cmocka_unit_test(test_name_valid_rejects_surrogates),
	    cmocka_unit_test(test_name_valid_rejects_truncated_utf8),
	    cmocka_unit_test(test_name_valid_rejects_other_invalid_utf8),
	    cmocka_unit_test(test_name_valid_accepts_unicode),
	    cmocka_unit_test(test_name_valid_accepts_255_bytes),
	    cmocka_unit_test(test_name_valid_rejects_256_bytes),
	    cmocka_unit_test(test_normalize_drops_trailing_slash),
	    cmocka_unit_test(test_normalize_adds_leading_slash),
	    cmocka_unit_test(test_normalize_keeps_normal_paths),
	    cmocka_unit_test(test_normalize_maps_empty_and_slash_to_root),
	    cmocka_unit_test(test_normalize_rejects_empty_components),
	    cmocka_unit_test(test_normalize_rejects_dot_and_dotdot),
	    cmocka_unit_test(test_normalize_rejects_invalid_names),
	    cmocka_unit_test(test_normalize_rejects_embedded_nul),
	    cmocka_unit_test(test_normalize_accepts_4096_bytes),
	    cmocka_unit_test(test_normalize_rejects_over_4096_bytes),
	    cmocka_unit_test(test_normalize_rejects_name_over_255_bytes),
	    cmocka_unit_test(test_split_gives_parent_and_name),
	    cmocka_unit_test(test_split_of_top_level_name_gives_root_parent),
	    cmocka_unit_test(test_split_of_root_fails),
	    cmocka_unit_test(test_join_appends_name),
	    cmocka_unit_test(test_join_to_root_has_one_slash),
	    cmocka_unit_test(test_join_undoes_split),
	    cmocka_unit_test(test_utf8_chars_counts_code_points),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
