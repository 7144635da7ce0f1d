/* Unit tests for the HTTP Range parser the hub and hosts share (found by
 * tests/fuzz/fuzz_range.c against the RFC 9110 grammar). */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_range_forms_are_served),
	    cmocka_unit_test(test_range_dash_alone_is_ignored_not_unsatisfiable),
	    cmocka_unit_test(test_range_signs_and_spaces_are_malformed),
	    cmocka_unit_test(test_range_unsatisfiable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
