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
	/* byte sizes as parse_bytes reads them everywhere: 10GiB, T */
	assert_int_equal(limit_rule_parse(r, "host.bps=1KiB", &why), 0);
	assert_true(r[LIMIT_HOST].bps == 1024);
	assert_int_equal(limit_rule_parse(r, "host.bps=1T", &why), 0);
	assert_true(r[LIMIT_HOST].bps == 1099511627776.0);
	static const char *const bad[] = {
	    "ip",         "ip.rps",    "ip.rps=",    "ipx.rps=1",           "ip.rpsx=1",
	    "ip.rps=-1",  "ip.rps=1K", "ip.bps=1P",  "ip.inflight=1.5",     "ip.rps=nan",
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

/* Parse spec into a fresh table; the rule of scope it set. */
static struct limit_rule parse_one(const char *spec, enum limit_scope scope)
{
	struct limit_rule r[LIMIT_SCOPES] = {0};
	const char *why = NULL;
	if (limit_rule_parse(r, spec, &why) != 0)
		fail_msg("refused %s: %s", spec, why);
	for (int i = 0; i < LIMIT_SCOPES; i++)
		if (i != (int)scope && (r[i].rps || r[i].bps || r[i].inflight || r[i].conns))
			fail_msg("%s set scope %d too", spec, i);
	return r[scope];
}

static void every_scope_takes_every_kind(void **state)
{
	(void)state;
	static const char *const names[] = {"ip", "host", "url"};
	for (int i = 0; i < LIMIT_SCOPES; i++) {
		char spec[64];
		snprintf(spec, sizeof spec, "%s.rps=2.5", names[i]);
		struct limit_rule r = parse_one(spec, (enum limit_scope)i);
		assert_true(r.rps == 2.5 && r.bps == 0 && r.inflight == 0 && r.conns == 0);
		snprintf(spec, sizeof spec, "%s.bps=3G", names[i]);
		r = parse_one(spec, (enum limit_scope)i);
		assert_true(r.bps == 3.0 * 1073741824 && r.rps == 0 && r.inflight == 0);
		snprintf(spec, sizeof spec, "%s.inflight=1000000", names[i]);
		r = parse_one(spec, (enum limit_scope)i);
		assert_int_equal(r.inflight, 1000000);
		assert_true(r.rps == 0 && r.bps == 0 && r.conns == 0);
	}
	struct limit_rule r = parse_one("ip.conns=20", LIMIT_IP);
	assert_int_equal(r.conns, 20);
	assert_true(r.rps == 0 && r.bps == 0 && r.inflight == 0);
	/* Zero is a value (no limit), plain bytes need no suffix. */
	assert_true(parse_one("url.rps=0", LIMIT_URL).rps == 0);
	assert_true(parse_one("host.bps=512", LIMIT_HOST).bps == 512);
	assert_int_equal(parse_one("ip.conns=0", LIMIT_IP).conns, 0);
}

static void a_later_spec_for_the_same_rule_replaces_it(void **state)
{
	(void)state;
	struct limit_rule r[LIMIT_SCOPES] = {0};
	const char *why;
	assert_int_equal(limit_rule_parse(r, "host.rps=5", &why), 0);
	assert_int_equal(limit_rule_parse(r, "host.bps=1M", &why), 0);
	assert_int_equal(limit_rule_parse(r, "host.rps=7", &why), 0);
	assert_true(r[LIMIT_HOST].rps == 7);
	assert_true(r[LIMIT_HOST].bps == 1048576);
}

static void bad_specs_say_why_and_change_nothing(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    /* shape */
	    "", ".", "=", "ip.", "ip=", ".rps=1", "ip.=1", "rps=1.ip", "ip.rps.x=1", "ip.rps=1=2",
	    /* scope */
	    "IP.rps=1", " ip.rps=1", "ipv6.rps=1", "i.rps=1", "relay.rps=1",
	    /* kind */
	    "ip.RPS=1", "ip.rp=1", "ip.rpss=1", "ip.inflightx=1", "ip.conn=1", "ip.bytes=1",
	    /* connections are counted per client address only */
	    "host.conns=1", "url.conns=1",
	    /* value */
	    "ip.rps=x", "ip.rps=1x", "ip.rps=1 ", "ip.rps=1.5.5", "ip.rps=-0.5", "ip.rps=-inf",
	    "ip.rps=1e999", "ip.inflight=-1", "ip.inflight=0.5", "ip.inflight=1000001",
	    "ip.conns=2.5", "ip.conns=1000001", "ip.conns=1e7", "ip.bps=K", "ip.bps=1KB",
	    "ip.bps=1k", "ip.bps=-1K", "ip.bps=1e308G", "ip.bps=nan", "url.inflight=1K"};
	struct limit_rule r[LIMIT_SCOPES] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}};
	struct limit_rule before[LIMIT_SCOPES];
	memcpy(before, r, sizeof r);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		const char *why = NULL;
		if (limit_rule_parse(r, bad[i], &why) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
		if (!why || !strstr(why, "SCOPE.KIND=VALUE"))
			fail_msg("no reason for \"%s\"", bad[i]);
		if (memcmp(before, r, sizeof r) != 0)
			fail_msg("\"%s\" changed the rules", bad[i]);
	}
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
	    cmocka_unit_test(every_scope_takes_every_kind),
	    cmocka_unit_test(a_later_spec_for_the_same_rule_replaces_it),
	    cmocka_unit_test(bad_specs_say_why_and_change_nothing),
	    cmocka_unit_test(table_keeps_what_is_used),
	    cmocka_unit_test(backoff_frees_a_few_then_doubles),
	    cmocka_unit_test(backoff_refund_and_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
