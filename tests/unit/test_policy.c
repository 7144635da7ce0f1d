/* Unit tests for a host's folder policies (src/host/policy.c): the longest
 * folder that is the path or an ancestor decides, pinned by default. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/host/policy.h"

/* policies from the hub's JSON, e.g. [{"folder":"/a","mode":"exclude"}]. */
static json_t *pols(const char *text)
{
	json_error_t err;
	json_t *p = json_loads(text, 0, &err);
	if (!p)
		fail_msg("bad test JSON: %s", err.text);
	return p;
}

static void without_policies_everything_is_pinned(void **state)
{
	(void)state;
	json_t *p = json_array();
	assert_int_equal(policy_match(p, "/"), POL_PINNED);
	assert_int_equal(policy_match(p, "/a/b.txt"), POL_PINNED);
	json_decref(p);
	/* Not yet loaded from the hub (host_open starts with an empty array,
	 * but a NULL list must not crash either). */
	assert_int_equal(policy_match(NULL, "/a"), POL_PINNED);
}

static void each_mode_applies_to_the_folder_and_below(void **state)
{
	(void)state;
	json_t *p = pols("[{\"folder\":\"/pin\",\"mode\":\"pinned\"},"
	                 "{\"folder\":\"/lazy\",\"mode\":\"on-demand\"},"
	                 "{\"folder\":\"/skip\",\"mode\":\"exclude\"}]");
	assert_int_equal(policy_match(p, "/pin"), POL_PINNED);
	assert_int_equal(policy_match(p, "/lazy"), POL_ON_DEMAND);
	assert_int_equal(policy_match(p, "/lazy/a/b.bin"), POL_ON_DEMAND);
	assert_int_equal(policy_match(p, "/skip"), POL_EXCLUDE);
	assert_int_equal(policy_match(p, "/skip/x"), POL_EXCLUDE);
	assert_int_equal(policy_match(p, "/other"), POL_PINNED);
	assert_int_equal(policy_match(p, "/"), POL_PINNED);
	json_decref(p);
}

static void a_prefix_is_not_an_ancestor(void **state)
{
	(void)state;
	json_t *p = pols("[{\"folder\":\"/a\",\"mode\":\"exclude\"}]");
	assert_int_equal(policy_match(p, "/ab"), POL_PINNED);
	assert_int_equal(policy_match(p, "/a.txt"), POL_PINNED);
	assert_int_equal(policy_match(p, "/a"), POL_EXCLUDE);
	assert_int_equal(policy_match(p, "/a/b"), POL_EXCLUDE);
	/* Nor is a deeper folder an ancestor of its parent. */
	json_t *q = pols("[{\"folder\":\"/a/b\",\"mode\":\"exclude\"}]");
	assert_int_equal(policy_match(q, "/a"), POL_PINNED);
	json_decref(q);
	json_decref(p);
}

static void the_longest_folder_wins_in_any_order(void **state)
{
	(void)state;
	static const char *const orders[] = {
	    "[{\"folder\":\"/a\",\"mode\":\"exclude\"},{\"folder\":\"/a/"
	    "b\",\"mode\":\"on-demand\"},"
	    "{\"folder\":\"/a/b/c\",\"mode\":\"pinned\"}]",
	    "[{\"folder\":\"/a/b/c\",\"mode\":\"pinned\"},{\"folder\":\"/a/"
	    "b\",\"mode\":\"on-demand\"},"
	    "{\"folder\":\"/a\",\"mode\":\"exclude\"}]",
	};
	for (size_t i = 0; i < 2; i++) {
		json_t *p = pols(orders[i]);
		assert_int_equal(policy_match(p, "/a/x"), POL_EXCLUDE);
		assert_int_equal(policy_match(p, "/a/b"), POL_ON_DEMAND);
		assert_int_equal(policy_match(p, "/a/b/x/y"), POL_ON_DEMAND);
		assert_int_equal(policy_match(p, "/a/b/c/d"), POL_PINNED);
		assert_int_equal(policy_match(p, "/a/bc"), POL_EXCLUDE);
		json_decref(p);
	}
}

static void a_root_policy_sets_the_default(void **state)
{
	(void)state;
	json_t *p = pols("[{\"folder\":\"/docs\",\"mode\":\"pinned\"},"
	                 "{\"folder\":\"/\",\"mode\":\"on-demand\"}]");
	assert_int_equal(policy_match(p, "/"), POL_ON_DEMAND);
	assert_int_equal(policy_match(p, "/x"), POL_ON_DEMAND);
	assert_int_equal(policy_match(p, "/docs/a"), POL_PINNED);
	assert_int_equal(policy_match(p, "/docsx"), POL_ON_DEMAND);
	json_decref(p);
}

static void of_two_policies_on_one_folder_the_later_wins(void **state)
{
	(void)state;
	json_t *p = pols("[{\"folder\":\"/a\",\"mode\":\"exclude\"},"
	                 "{\"folder\":\"/a\",\"mode\":\"on-demand\"}]");
	assert_int_equal(policy_match(p, "/a/x"), POL_ON_DEMAND);
	json_decref(p);
}

static void entries_without_a_folder_and_unknown_modes(void **state)
{
	(void)state;
	/* No folder: skipped. An unknown mode (a newer hub's) reads as pinned. */
	json_t *p = pols("[{\"mode\":\"exclude\"},{\"folder\":7,\"mode\":\"exclude\"},"
	                 "{\"folder\":\"/a\",\"mode\":\"mirrored\"}]");
	assert_int_equal(policy_match(p, "/x"), POL_PINNED);
	assert_int_equal(policy_match(p, "/a/x"), POL_PINNED);
	json_decref(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(without_policies_everything_is_pinned),
	    cmocka_unit_test(each_mode_applies_to_the_folder_and_below),
	    cmocka_unit_test(a_prefix_is_not_an_ancestor),
	    cmocka_unit_test(the_longest_folder_wins_in_any_order),
	    cmocka_unit_test(a_root_policy_sets_the_default),
	    cmocka_unit_test(of_two_policies_on_one_folder_the_later_wins),
	    cmocka_unit_test(entries_without_a_folder_and_unknown_modes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
