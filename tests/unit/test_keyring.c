/* Unit tests for core/keyring: lookups, refresh on an unknown key at most
 * once per retry window, the refresher's schedule, failed fetches. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/core/keyring.h"
#include "../../src/core/token.h"
#include "../../src/core/util.h"

#include <stdlib.h>
#include <string.h>

static int64_t now;
static int64_t clock_fn(void)
{
	return now;
}

/* The "hub": its current keys, how often it was asked, whether it is up. */
static struct {
	int fetches;
	bool down;
	unsigned char pk[2][crypto_sign_PUBLICKEYBYTES];
	int nkeys;       /* keys 0..nkeys-1 published as kid "k0", "k1" */
	int64_t skew_ms; /* the hub's clock minus ours; published as "now" unless 0 */
} hub;

static json_t *fetch(void *cls)
{
	(void)cls;
	hub.fetches++;
	if (hub.down)
		return NULL;
	json_t *arr = json_array();
	for (int i = 0; i < hub.nkeys; i++) {
		char b64[64], kid[16];
		sodium_bin2base64(b64, sizeof b64, hub.pk[i], sizeof hub.pk[i], TOKEN_B64);
		snprintf(kid, sizeof kid, "k%d", i);
		json_array_append_new(arr, json_pack("{s:s, s:s}", "kid", kid, "public_key", b64));
	}
	json_t *doc = json_pack("{s:o}", "keys", arr);
	if (hub.skew_ms)
		json_object_set_new(doc, "now", json_integer(now_ms() + hub.skew_ms));
	return doc;
}

static struct keyring ring;

static int setup(void **state)
{
	(void)state;
	memset(&hub, 0, sizeof hub);
	randombytes_buf(hub.pk, sizeof hub.pk);
	hub.nkeys = 1;
	now = 1000000;
	return 0;
}

static void start(unsigned opts)
{
	keyring_init(&ring, fetch, NULL, opts);
	ring.clock = clock_fn;
}

static void test_keyring_finds_a_known_key_without_asking_again(void **state)
{
	(void)state;
	start(KEYRING_FETCH_ON_MISS);
	assert_true(keyring_refresh(&ring));
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	assert_true(keyring_key(&ring, "k0", pk));
	assert_memory_equal(pk, hub.pk[0], sizeof pk);
	assert_int_equal(hub.fetches, 1);
	keyring_fini(&ring);
}

static void test_keyring_fetches_a_rotated_key_once_per_window(void **state)
{
	(void)state;
	start(KEYRING_FETCH_ON_MISS);
	keyring_refresh(&ring);
	hub.nkeys = 2; /* the hub rotated */
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	/* Within the window the ring does not ask: a flood of made-up kids
	 * cannot turn into a flood of requests to the hub. */
	assert_false(keyring_key(&ring, "k1", pk));
	assert_int_equal(hub.fetches, 1);
	now += KEYRING_RETRY_MS + 1;
	assert_true(keyring_key(&ring, "k1", pk));
	assert_memory_equal(pk, hub.pk[1], sizeof pk);
	assert_int_equal(hub.fetches, 2);
	assert_false(keyring_key(&ring, "nope", pk));
	assert_int_equal(hub.fetches, 2);
	keyring_fini(&ring);
}

static void test_keyring_without_keys_asks_on_the_first_lookup(void **state)
{
	(void)state;
	start(KEYRING_FETCH_ON_MISS);
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	assert_true(keyring_key(&ring, "k0", pk));
	assert_int_equal(hub.fetches, 1);
	keyring_fini(&ring);
}

static void test_keyring_keeps_its_keys_when_a_fetch_fails(void **state)
{
	(void)state;
	start(KEYRING_FETCH_ON_MISS);
	keyring_refresh(&ring);
	hub.down = true;
	assert_false(keyring_refresh(&ring));
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	assert_true(keyring_key(&ring, "k0", pk));
	keyring_fini(&ring);
}

static void test_keyring_for_a_refresher_only_marks_a_miss(void **state)
{
	(void)state;
	start(0);
	keyring_refresh(&ring);
	hub.nkeys = 2;
	assert_false(keyring_due(&ring, 300000));
	now += KEYRING_RETRY_MS + 1;
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	assert_false(keyring_key(&ring, "k1", pk)); /* never waits on the hub */
	assert_int_equal(hub.fetches, 1);
	assert_true(keyring_due(&ring, 300000)); /* the mark, taken */
	assert_false(keyring_due(&ring, 300000));
	keyring_refresh(&ring);
	assert_true(keyring_key(&ring, "k1", pk));
	/* And by age alone. */
	now += 300001;
	assert_true(keyring_due(&ring, 300000));
	keyring_fini(&ring);
}

static void test_keyring_refresher_retries_sooner_while_it_has_no_keys(void **state)
{
	(void)state;
	start(0);
	assert_true(keyring_due(&ring, 300000)); /* never fetched */
	hub.down = true;
	keyring_refresh(&ring);
	assert_false(keyring_due(&ring, 300000));
	now += KEYRING_RETRY_MS + 1;
	assert_true(keyring_due(&ring, 300000));
	keyring_fini(&ring);
}

static void test_keyring_for_a_refresher_without_keys_marks_once_per_window(void **state)
{
	(void)state;
	start(0);
	hub.down = true;
	keyring_refresh(&ring);
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	assert_false(keyring_key(&ring, "k0", pk)); /* just tried: the hub is away */
	assert_false(atomic_load(&ring.wanted));
	now += KEYRING_RETRY_MS + 1;
	assert_false(keyring_key(&ring, "k0", pk));
	assert_true(atomic_load(&ring.wanted));
	assert_int_equal(hub.fetches, 1);
	keyring_fini(&ring);
}

/* A host hours off judges tokens by the hub's clock, as the keys document told it. */
static void test_keyring_tells_the_hubs_time_from_its_last_fetch(void **state)
{
	(void)state;
	start(KEYRING_FETCH_ON_MISS);
	int64_t ours = now_ms();
	assert_true(llabs(keyring_now_ms(&ring) - ours) < 1000); /* nothing fetched: ours */
	hub.skew_ms = -3 * 3600 * 1000LL;                        /* we are 3 h ahead */
	assert_true(keyring_refresh(&ring));
	assert_true(llabs(keyring_now_ms(&ring) - (now_ms() + hub.skew_ms)) < 1000);
	hub.skew_ms = 0; /* a hub that does not say: the last skew is kept */
	assert_true(keyring_refresh(&ring));
	assert_true(llabs(keyring_now_ms(&ring) - (now_ms() - 3 * 3600 * 1000LL)) < 1000);
	keyring_fini(&ring);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_keyring_finds_a_known_key_without_asking_again, setup),
	    cmocka_unit_test_setup(test_keyring_tells_the_hubs_time_from_its_last_fetch, setup),
	    cmocka_unit_test_setup(test_keyring_fetches_a_rotated_key_once_per_window, setup),
	    cmocka_unit_test_setup(test_keyring_without_keys_asks_on_the_first_lookup, setup),
	    cmocka_unit_test_setup(test_keyring_keeps_its_keys_when_a_fetch_fails, setup),
	    cmocka_unit_test_setup(test_keyring_for_a_refresher_only_marks_a_miss, setup),
	    cmocka_unit_test_setup(test_keyring_refresher_retries_sooner_while_it_has_no_keys,
	                           setup),
	    cmocka_unit_test_setup(test_keyring_for_a_refresher_without_keys_marks_once_per_window,
	                           setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
