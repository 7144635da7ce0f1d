/* Unit tests for core/retry: delays double up to the cap, jitter stays in
 * its range, a success starts over. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/core/retry.h"

static void test_retry_without_jitter_doubles_up_to_the_cap(void **state)
{
	(void)state;
	struct retry r;
	retry_init(&r, 1000, 30000, 0);
	const int64_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		assert_int_equal(retry_next_ms(&r), want[i]);
}

static void test_retry_jitter_stays_within_its_part_of_the_delay(void **state)
{
	(void)state;
	struct retry r;
	retry_init(&r, 500, 64000, 0.5);
	int64_t base = 500;
	for (int i = 0; i < 12; i++) {
		int64_t d = retry_next_ms(&r);
		assert_true(d >= base / 2 && d <= base);
		base = base * 2 > 64000 ? 64000 : base * 2;
	}
}

static void test_retry_jitter_spreads_the_delays(void **state)
{
	(void)state;
	int64_t lo = INT64_MAX, hi = 0;
	for (int i = 0; i < 200; i++) {
		struct retry r;
		retry_init(&r, 300, 19200, 1.0 / 3);
		int64_t d = retry_next_ms(&r);
		assert_true(d >= 200 && d <= 300); /* a third of 300 is exactly 100 */
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	assert_true(hi - lo > 50); /* not all in step */
}

static void test_retry_reset_starts_over(void **state)
{
	(void)state;
	struct retry r;
	retry_init(&r, 1000, 60000, 0);
	retry_next_ms(&r);
	retry_next_ms(&r);
	assert_int_equal(retry_next_ms(&r), 4000);
	retry_reset(&r);
	assert_int_equal(retry_next_ms(&r), 1000);
}

static void test_retry_cap_below_initial_is_the_initial(void **state)
{
	(void)state;
	struct retry r;
	retry_init(&r, 5000, 1000, 0);
	assert_int_equal(retry_next_ms(&r), 5000);
	assert_int_equal(retry_next_ms(&r), 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_retry_without_jitter_doubles_up_to_the_cap),
	    cmocka_unit_test(test_retry_jitter_stays_within_its_part_of_the_delay),
	    cmocka_unit_test(test_retry_jitter_spreads_the_delays),
	    cmocka_unit_test(test_retry_reset_starts_over),
	    cmocka_unit_test(test_retry_cap_below_initial_is_the_initial),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
