/* Unit tests for .roostignore patterns (src/host/ignore.c): gitignore's
 * syntax, matched against paths from the folder's root. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/host/ignore.h"

static struct ignore *ig(const char *text)
{
	return ignore_parse(text, strlen(text));
}

#define IGN(set, path)     assert_true(ignore_match(set, path, false))
#define KEPT(set, path)    assert_false(ignore_match(set, path, false))
#define IGN_DIR(set, path) assert_true(ignore_match(set, path, true))

static void comments_and_blank_lines_are_not_patterns(void **state)
{
	(void)state;
	struct ignore *s = ig("# a comment\n\n   \n\\#hash\n");
	assert_int_equal(ignore_count(s), 1);
	IGN(s, "/#hash");
	KEPT(s, "/a comment");
	ignore_free(s);
}

static void a_name_matches_at_any_depth(void **state)
{
	(void)state;
	struct ignore *s = ig("*.tmp\nbuild\n");
	IGN(s, "/a.tmp");
	IGN(s, "/x/y/a.tmp");
	KEPT(s, "/a.tmpx");
	IGN(s, "/build");
	IGN(s, "/src/build/out.o"); /* inside an ignored folder */
	KEPT(s, "/builder");
	ignore_free(s);
}

static void a_slash_anchors_at_the_root(void **state)
{
	(void)state;
	struct ignore *s = ig("/top.txt\ndocs/*.pdf\n");
	IGN(s, "/top.txt");
	KEPT(s, "/sub/top.txt");
	IGN(s, "/docs/a.pdf");
	KEPT(s, "/docs/sub/a.pdf"); /* '*' stops at '/' */
	KEPT(s, "/x/docs/a.pdf");
	ignore_free(s);
}

static void a_trailing_slash_matches_folders_only(void **state)
{
	(void)state;
	struct ignore *s = ig("cache/\n");
	KEPT(s, "/cache"); /* a file named cache */
	IGN_DIR(s, "/cache");
	IGN(s, "/cache/a.bin"); /* its parent is a folder */
	IGN(s, "/a/cache/b.bin");
	ignore_free(s);
}

static void double_stars_span_folders(void **state)
{
	(void)state;
	struct ignore *s = ig("**/logs\nout/**\na/**/z.txt\n");
	IGN(s, "/logs");
	IGN(s, "/x/y/logs");
	IGN(s, "/out/a/b");
	KEPT(s, "/out");
	IGN(s, "/a/z.txt");
	IGN(s, "/a/b/c/z.txt");
	KEPT(s, "/b/z.txt");
	ignore_free(s);
}

static void question_marks_and_brackets(void **state)
{
	(void)state;
	struct ignore *s = ig("file?.txt\nv[0-9].bin\nx[!ab].c\n[unclosed\n");
	IGN(s, "/file1.txt");
	KEPT(s, "/file10.txt");
	IGN(s, "/v7.bin");
	KEPT(s, "/vx.bin");
	IGN(s, "/xc.c");
	KEPT(s, "/xa.c");
	IGN(s, "/[unclosed");
	ignore_free(s);
}

static void the_last_match_wins_and_negation_re_includes(void **state)
{
	(void)state;
	struct ignore *s = ig("*.log\n!keep.log\n");
	IGN(s, "/a.log");
	KEPT(s, "/keep.log");
	KEPT(s, "/d/keep.log");
	ignore_free(s);
	s = ig("!keep.log\n*.log\n");
	IGN(s, "/keep.log");
	ignore_free(s);
}

static void nothing_in_an_ignored_folder_comes_back(void **state)
{
	(void)state;
	struct ignore *s = ig("secret/\n!secret/ok.txt\nstuff/*\n!stuff/ok.txt\n");
	IGN(s, "/secret/ok.txt");
	IGN(s, "/stuff/a.txt");
	KEPT(s, "/stuff/ok.txt"); /* stuff itself is not ignored */
	ignore_free(s);
}

static void an_empty_set_ignores_nothing(void **state)
{
	(void)state;
	struct ignore *s = ig("");
	KEPT(s, "/a");
	KEPT(s, "/");
	ignore_free(s);
	KEPT(NULL, "/a");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(comments_and_blank_lines_are_not_patterns),
	    cmocka_unit_test(a_name_matches_at_any_depth),
	    cmocka_unit_test(a_slash_anchors_at_the_root),
	    cmocka_unit_test(a_trailing_slash_matches_folders_only),
	    cmocka_unit_test(double_stars_span_folders),
	    cmocka_unit_test(question_marks_and_brackets),
	    cmocka_unit_test(the_last_match_wins_and_negation_re_includes),
	    cmocka_unit_test(nothing_in_an_ignored_folder_comes_back),
	    cmocka_unit_test(an_empty_set_ignores_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
