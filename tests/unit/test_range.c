/* Unit tests for the HTTP Range parser the hub and hosts share (found by
 * tests/fuzz/fuzz_range.c against the RFC 9110 grammar), and for the
 * Content-Length parser beside it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/core/util.h"

static int range(const char *h, int64_t size, int64_t *start, int64_t *len)
{
	*start = *len = -1;
	return http_parse_range(h, size, start, len);
}

static void test_range_forms_are_served(void **state)
{
	int64_t s, l;
	assert_int_equal(range("bytes=0-99", 1000, &s, &l), 1);
	assert_int_equal(s, 0);
	assert_int_equal(l, 100);
	assert_int_equal(range("bytes=990-", 1000, &s, &l), 1);
	assert_int_equal(l, 10);
	assert_int_equal(range("bytes=-5", 1000, &s, &l), 1);
	assert_int_equal(s, 995);
	assert_int_equal(range("bytes=5-99999999999999999999", 10, &s, &l), 1);
	assert_int_equal(l, 5);
}

static void test_range_dash_alone_is_ignored_not_unsatisfiable(void **state)
{
	int64_t s, l;
	assert_int_equal(range("bytes=-", 1000, &s, &l), 0);
}

static void test_range_signs_and_spaces_are_malformed(void **state)
{
	int64_t s, l;
	assert_int_equal(range("bytes= 1-2", 1000, &s, &l), 0);
	assert_int_equal(range("bytes=+1-2", 1000, &s, &l), 0);
	assert_int_equal(range("bytes=1-+2", 1000, &s, &l), 0);
	assert_int_equal(range("bytes=-+5", 1000, &s, &l), 0);
	assert_int_equal(range("bytes=1- 2", 1000, &s, &l), 0);
	assert_int_equal(s, -1);
}

static void test_range_unsatisfiable(void **state)
{
	int64_t s, l;
	assert_int_equal(range("bytes=1000-", 1000, &s, &l), -1);
	assert_int_equal(range("bytes=-0", 1000, &s, &l), -1);
	assert_int_equal(range("bytes=-5", 0, &s, &l), -1);
}

static void range_bounds_are_inclusive_and_clamped(void **state)
{
	(void)state;
	int64_t s, l;
	assert_int_equal(range("bytes=0-0", 1000, &s, &l), 1);
	assert_int_equal(s, 0);
	assert_int_equal(l, 1);
	assert_int_equal(range("bytes=999-999", 1000, &s, &l), 1);
	assert_int_equal(s, 999);
	assert_int_equal(l, 1);
	assert_int_equal(range("bytes=999-5000", 1000, &s, &l), 1);
	assert_int_equal(s, 999);
	assert_int_equal(l, 1);
	assert_int_equal(range("bytes=0-", 1, &s, &l), 1);
	assert_int_equal(s, 0);
	assert_int_equal(l, 1);
	/* Leading zeros are digits like any other. */
	assert_int_equal(range("bytes=007-010", 1000, &s, &l), 1);
	assert_int_equal(s, 7);
	assert_int_equal(l, 4);
}

static void a_suffix_longer_than_the_file_is_the_whole_file(void **state)
{
	(void)state;
	int64_t s, l;
	assert_int_equal(range("bytes=-1000", 1000, &s, &l), 1);
	assert_int_equal(s, 0);
	assert_int_equal(l, 1000);
	assert_int_equal(range("bytes=-5000", 10, &s, &l), 1);
	assert_int_equal(s, 0);
	assert_int_equal(l, 10);
	assert_int_equal(range("bytes=-99999999999999999999999", 10, &s, &l), 1);
	assert_int_equal(s, 0);
	assert_int_equal(l, 10);
	assert_int_equal(range("bytes=-1", 1000, &s, &l), 1);
	assert_int_equal(s, 999);
	assert_int_equal(l, 1);
}

static void huge_positions_saturate_instead_of_overflowing(void **state)
{
	(void)state;
	int64_t s, l;
	/* A first byte past any file: unsatisfiable, not a wrapped small number. */
	assert_int_equal(range("bytes=99999999999999999999-", 1000, &s, &l), -1);
	assert_int_equal(range("bytes=9223372036854775807-", INT64_MAX, &s, &l), -1);
	assert_int_equal(range("bytes=999999999999999999-", INT64_MAX, &s, &l), 1);
	assert_int_equal(s, 999999999999999999);
	assert_int_equal(l, INT64_MAX - 999999999999999999);
	assert_int_equal(range("bytes=0-99999999999999999999", INT64_MAX, &s, &l), 1);
	assert_int_equal(s, 0);
	assert_int_equal(l, INT64_MAX);
}

static void several_ranges_are_served_whole(void **state)
{
	(void)state;
	int64_t s, l;
	assert_int_equal(range("bytes=0-1,5-6", 1000, &s, &l), 0);
	assert_int_equal(range("bytes=0-1, 5-6", 1000, &s, &l), 0);
	assert_int_equal(range("bytes=-5,0-1", 1000, &s, &l), 0);
	assert_int_equal(range("bytes=0-1,", 1000, &s, &l), 0);
	/* Even when each part alone would be unsatisfiable. */
	assert_int_equal(range("bytes=2000-,3000-", 1000, &s, &l), 0);
	assert_int_equal(s, -1);
	assert_int_equal(l, -1);
}

static void other_units_and_malformed_ranges_are_ignored(void **state)
{
	(void)state;
	int64_t s, l;
	static const char *const ignored[] = {
	    "",           "bytes",       "bytes=",      "bytes=a-b",   "bytes=5",
	    "bytes=5-4",  "bytes=1-2-3", "bytes=1--2",  "bytes=0x1-2", "items=0-1",
	    "bytes =0-1", "bytes=1-2 ",  "bytes=1.5-2", "bytes=--5",   "bytes=5-\t"};
	for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++)
		if (range(ignored[i], 1000, &s, &l) != 0)
			fail_msg("did not ignore \"%s\"", ignored[i]);
	assert_int_equal(range(NULL, 1000, &s, &l), 0);
	assert_int_equal(s, -1);
	assert_int_equal(l, -1);
}

static void every_range_of_an_empty_file_is_unsatisfiable(void **state)
{
	(void)state;
	int64_t s, l;
	assert_int_equal(range("bytes=0-", 0, &s, &l), -1);
	assert_int_equal(range("bytes=0-0", 0, &s, &l), -1);
	assert_int_equal(range("bytes=-1", 0, &s, &l), -1);
	/* A malformed one still means "serve it all" (nothing). */
	assert_int_equal(range("bytes=1-0", 0, &s, &l), 0);
	assert_int_equal(s, -1);
	assert_int_equal(l, -1);
}

static void content_length_is_digits_that_fit(void **state)
{
	(void)state;
	assert_int_equal(http_content_length("0"), 0);
	assert_int_equal(http_content_length("0042"), 42);
	assert_int_equal(http_content_length("999999999999999999"), 999999999999999999);
	static const char *const bad[] = {"",
	                                  "-1",
	                                  "+1",
	                                  " 1",
	                                  "1 ",
	                                  "0x10",
	                                  "1e3",
	                                  "1,2",
	                                  "9223372036854775807",
	                                  "99999999999999999999"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (http_content_length(bad[i]) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(http_content_length(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_range_forms_are_served),
	    cmocka_unit_test(test_range_dash_alone_is_ignored_not_unsatisfiable),
	    cmocka_unit_test(test_range_signs_and_spaces_are_malformed),
	    cmocka_unit_test(test_range_unsatisfiable),
	    cmocka_unit_test(range_bounds_are_inclusive_and_clamped),
	    cmocka_unit_test(a_suffix_longer_than_the_file_is_the_whole_file),
	    cmocka_unit_test(huge_positions_saturate_instead_of_overflowing),
	    cmocka_unit_test(several_ranges_are_served_whole),
	    cmocka_unit_test(other_units_and_malformed_ranges_are_ignored),
	    cmocka_unit_test(every_range_of_an_empty_file_is_unsatisfiable),
	    cmocka_unit_test(content_length_is_digits_that_fit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
