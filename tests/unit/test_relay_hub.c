/* Unit tests for the relay's hub-facing state (src/relay/relay_hub.c): a
 * revocation retires its slug only once effective, and a key lookup never
 * waits on the hub (the event loop calls it). No thread is started here. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/core/util.h"
#include "../../src/relay/relay.h"
#include "../../src/relay/relay_hub.h"

/* Nothing listens on port 1: a lookup that called the hub would fail, slowly. */
static const struct relay_config cfg = {.hub = "http://127.0.0.1:1"};

static json_t *revocation(const char *slug, int64_t effective_at)
{
	return json_pack("{s:s, s:I, s:I}", "slug", slug, "effective_at", (json_int_t)effective_at,
	                 "created_at", (json_int_t)1);
}

static void revocations_retire_slugs_once_effective(void **state)
{
	(void)state;
	struct relay_hub rh;
	relay_hub_init(&rh, &cfg);
	int64_t now = 1000000;
	json_array_append_new(rh.incoming, revocation("old", now - 1));
	json_array_append_new(rh.incoming, revocation("graced", now + 5000));
	json_t *due = relay_hub_due(&rh, now);
	assert_int_equal(json_array_size(due), 1);
	assert_string_equal(json_string_value(json_array_get(due, 0)), "old");
	json_decref(due);
	assert_true(relay_hub_retired(&rh, "old"));
	assert_false(relay_hub_retired(&rh, "graced"));
	due = relay_hub_due(&rh, now + 5000);
	assert_int_equal(json_array_size(due), 1);
	assert_true(relay_hub_retired(&rh, "graced"));
	json_decref(due);
	due = relay_hub_due(&rh, now + 10000); /* each is applied once */
	assert_int_equal(json_array_size(due), 0);
	json_decref(due);
	relay_hub_fini(&rh);
}

static void an_unknown_key_asks_the_thread_instead_of_the_hub(void **state)
{
	(void)state;
	struct relay_hub rh;
	relay_hub_init(&rh, &cfg);
	unsigned char pk[32];
	rh.keys.tried = true;
	rh.keys.fetched_ms = mono_ms() - 60000; /* stale: a refetch is due */
	int64_t t0 = mono_ms();
	assert_false(keyring_key(&rh.keys, "nosuchkid", pk));
	assert_true(mono_ms() - t0 < 500);
	assert_true(atomic_load(&rh.keys.wanted));
	relay_hub_fini(&rh);
}

static void a_fresh_key_set_is_not_fetched_again(void **state)
{
	(void)state;
	struct relay_hub rh;
	relay_hub_init(&rh, &cfg);
	unsigned char pk[32];
	rh.keys.keys = json_pack("{s:[]}", "keys");
	rh.keys.tried = true;
	rh.keys.fetched_ms = mono_ms();
	assert_false(keyring_key(&rh.keys, "nosuchkid", pk));
	assert_false(atomic_load(&rh.keys.wanted));
	relay_hub_fini(&rh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(revocations_retire_slugs_once_effective),
	    cmocka_unit_test(an_unknown_key_asks_the_thread_instead_of_the_hub),
	    cmocka_unit_test(a_fresh_key_set_is_not_fetched_again),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
