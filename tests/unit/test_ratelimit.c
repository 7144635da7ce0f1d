/* Unit tests for the token buckets (the relay's limits, the hub's per-token
 * rate), limit specs and their table. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/core/ratelimit.h"

#include <stdio.h>
#include <string.h>

static void bucket_starts_full_and_refills(void **state)
{
	(void)state;
	struct bucket b = {0};
	/* 10/s, burst 20: twenty at once, then none until time passes. */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(bucket_wait_ms(&b, 10, 20, 1, 1000), 0);
		bucket_take(&b, 10, 20, 1, 1000);
	}
	assert_int_equal(bucket_wait_ms(&b, 10, 20, 1, 1000), 100);
	assert_int_equal(bucket_wait_ms(&b, 10, 20, 1, 1050), 50);
	assert_int_equal(bucket_wait_ms(&b, 10, 20, 1, 1100), 0);
	/* Never above the burst, however long it rested. */
	assert_true(bucket_level(&b, 10, 20, 1000000) == 20.0);
	/* Time going backwards (a clock step) adds nothing. */
	bucket_take(&b, 10, 20, 20, 1000000);
	assert_true(bucket_level(&b, 10, 20, 999000) == 0.0);
}

static void bucket_debt_is_paid_by_waiting(void **state)
{
	(void)state;
	struct bucket b = {0};
	/* 1000 bytes/s: taking 3000 at once leaves a debt of 2000, two seconds. */
	bucket_take(&b, 1000, 1000, 3000, 0);
	assert_int_equal(bucket_wait_ms(&b, 1000, 1000, 1, 0), 2001);
	assert_int_equal(bucket_wait_ms(&b, 1000, 1000, 1, 2001), 0);
	/* More than the burst waits only for a full bucket. */
	assert_int_equal(bucket_wait_ms(&b, 1000, 1000, 5000, 2001), 999);
}

static void bucket_refused_requests_take_nothing(void **state)
{
	(void)state;
	/* The hub's per-token limit (hub/limits.c): take one if it is there,
	 * else answer with the wait and take nothing, so a client that keeps
	 * asking while refused is not pushed further back. 2/s, burst 4. */
	struct bucket b = {0};
	int admitted = 0;
	for (int i = 0; i < 10; i++)
		if (bucket_wait_ms(&b, 2, 4, 1, 5000) == 0) {
			bucket_take(&b, 2, 4, 1, 5000);
			admitted++;
		}
	assert_int_equal(admitted, 4);
	assert_int_equal(bucket_wait_ms(&b, 2, 4, 1, 5000), 500);
	assert_int_equal(bucket_wait_ms(&b, 2, 4, 1, 5500), 0);
	/* A slot given to another token starts full again. */
	b = (struct bucket){0};
	assert_true(bucket_level(&b, 2, 4, 5500) == 4.0);
}

static void rules_parse(void **state)
{
	(void)state;
	struct limit_rule r[LIMIT_SCOPES] = {0};
	const char *why = NULL;
	assert_int_equal(limit_rule_parse(r, "ip.rps=100", &why), 0);
	assert_int_equal(limit_rule_parse(r, "host.bps=2M", &why), 0);
	assert_int_equal(limit_rule_parse(r, "url.inflight=3", &why), 0);
	assert_int_equal(limit_rule_parse(r, "url.bps=1.5K", &why), 0);
	assert_true(r[LIMIT_IP].rps == 100);
	assert_true(r[LIMIT_HOST].bps == 2.0 * 1048576);
	assert_int_equal(r[LIMIT_URL].inflight, 3);
	assert_true(r[LIMIT_URL].bps == 1536);
	static const char *const bad[] = {
	    "ip",         "ip.rps",    "ip.rps=",    "ipx.rps=1",           "ip.rpsx=1",
	    "ip.rps=-1",  "ip.rps=1K", "ip.bps=1T",  "ip.inflight=1.5",     "ip.rps=nan",
	    "ip.rps=inf", "=1",        "host=1.rps", "url.inflight=9999999"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		why = NULL;
		if (limit_rule_parse(r, bad[i], &why) == 0)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(why);
	}
	/* A rejected spec changes nothing. */
	assert_true(r[LIMIT_IP].rps == 100);
}

static void table_keeps_what_is_used(void **state)
{
	(void)state;
	struct limit_table t;
	limit_table_init(&t, 7); /* few slots: chains */
	char key[32];
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "ip:10.0.0.%d", i);
		limit_table_get(&t, key, 0);
	}
	assert_int_equal(t.count, 100);
	struct limit_entry *a = limit_table_get(&t, "ip:10.0.0.5", 0);
	assert_ptr_equal(a, limit_table_get(&t, "ip:10.0.0.5", 0));
	assert_string_equal(a->key, "ip:10.0.0.5");
	a->inflight = 1;                           /* busy: kept */
	limit_table_get(&t, "ip:10.0.0.6", 50000); /* recent: kept */
	assert_int_equal(limit_table_sweep(&t, 60000, 60000), 98);
	assert_int_equal(t.count, 2);
	assert_ptr_equal(a, limit_table_get(&t, "ip:10.0.0.5", 60000));
	a->inflight = 0;
	assert_int_equal(limit_table_sweep(&t, 200000, 60000), 2);
	assert_int_equal(t.count, 0);
	limit_table_free(&t);
}

static void backoff_frees_a_few_then_doubles(void **state)
{
	(void)state;
	struct backoff b = {0};
	const struct backoff_rule rule = {
	    .free = 3, .base_ms = 1000, .cap_ms = 8000, .forget_ms = 60000};
	for (int i = 0; i < 3; i++)
		assert_int_equal(backoff_admit(&b, &rule, 0), 0);
	/* the fourth goes ahead but makes the fifth wait 1 s */
	assert_int_equal(backoff_admit(&b, &rule, 0), 0);
	assert_int_equal(backoff_admit(&b, &rule, 0), 1000);
	assert_int_equal(backoff_admit(&b, &rule, 400), 600);
	assert_int_equal(backoff_admit(&b, &rule, 1000), 0); /* then 2 s */
	assert_int_equal(backoff_admit(&b, &rule, 1000), 2000);
	assert_int_equal(backoff_admit(&b, &rule, 3000), 0); /* then 4 s */
	assert_int_equal(backoff_admit(&b, &rule, 7000), 0); /* then 8 s: the cap */
	assert_int_equal(backoff_admit(&b, &rule, 15000), 0);
	assert_int_equal(backoff_admit(&b, &rule, 15000), 8000);
	/* a quiet minute forgets it all */
	assert_int_equal(backoff_admit(&b, &rule, 80000), 0);
	assert_int_equal(b.fails, 1);
}

static void backoff_refund_and_reset(void **state)
{
	(void)state;
	struct backoff b = {0};
	const struct backoff_rule rule = {
	    .free = 1, .base_ms = 1000, .cap_ms = 8000, .forget_ms = 60000};
	assert_int_equal(backoff_admit(&b, &rule, 0), 0);
	assert_int_equal(backoff_admit(&b, &rule, 0), 0);
	assert_int_equal(backoff_admit(&b, &rule, 0), 1000);
	backoff_refund(&b, &rule); /* the second succeeded: no delay owed */
	assert_int_equal(backoff_admit(&b, &rule, 0), 0);
	backoff_reset(&b);
	assert_int_equal(b.fails, 0);
	assert_int_equal(backoff_admit(&b, &rule, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bucket_starts_full_and_refills),
	    cmocka_unit_test(bucket_debt_is_paid_by_waiting),
	    cmocka_unit_test(bucket_refused_requests_take_nothing),
	    cmocka_unit_test(rules_parse),
	    cmocka_unit_test(table_keeps_what_is_used),
	    cmocka_unit_test(backoff_frees_a_few_then_doubles),
	    cmocka_unit_test(backoff_refund_and_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
