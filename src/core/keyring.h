/* keyring: the hub's published signing keys (GET /api/v1/keys) as a host or
 * the relay holds them to verify hub-signed tokens (core/token.h), and their
 * refresh: when a token names a key the ring lacks (the hub may have
 * rotated) and, for a background refresher, when the keys grow old.
 *
 * How the keys are fetched is the owner's (fetch; client_get_keys for a
 * struct client). A lookup that misses either fetches on its own thread
 * (KEYRING_FETCH_ON_MISS: the host's server threads may wait on the hub) or
 * only marks the ring wanted for a refresher thread (the relay: its event
 * loop must never wait). Either way the hub is asked at most once per
 * retry_ms for unknown keys. Thread-safe: lookups from any thread. */
#ifndef ROOST_KEYRING_H
#define ROOST_KEYRING_H

#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The keys document {"keys": [{"kid", "public_key"}, ...]} (new reference), or NULL. */
typedef json_t *(*keyring_fetch_fn)(void *cls);

enum { KEYRING_FETCH_ON_MISS = 1 };

#define KEYRING_RETRY_MS 10000 /* unknown keys ask the hub at most this often */

struct keyring {
	pthread_mutex_t mu;
	json_t *keys;       /* the last document fetched (under mu) */
	int64_t fetched_ms; /* when a fetch was last tried (under mu) */
	bool tried;         /* a fetch was tried at all (under mu) */
	atomic_bool wanted; /* a lookup missed: the refresher should fetch */
	keyring_fetch_fn fetch;
	void *cls;
	unsigned opts;
	int64_t retry_ms;
	int64_t (*clock)(void); /* mono_ms; tests drive their own */
	/* The hub's clock minus ours (ms), from the keys document's "now" at the
	 * last fetch: tokens' expiry is judged by the hub's clock, not a host's
	 * that may be hours off. 0 until a fetch tells. */
	_Atomic int64_t hub_skew_ms;
};

void keyring_init(struct keyring *k, keyring_fetch_fn fetch, void *cls, unsigned opts);
void keyring_fini(struct keyring *k);
/* A token_key_fn (cls: the struct keyring): the public key named kid. */
bool keyring_key(void *cls, const char *kid, unsigned char pk[crypto_sign_PUBLICKEYBYTES]);
/* Fetch now (at start-up; the refresher). true if the hub answered; a
 * failed fetch keeps the keys held. */
bool keyring_refresh(struct keyring *k);
/* Now by the hub's clock (ms since the epoch): ours plus the skew the last
 * fetch measured, to within that fetch's round trip. */
int64_t keyring_now_ms(struct keyring *k);
/* For a refresher thread: should it refresh now? Yes when a lookup missed,
 * when no keys are held and retry_ms passed, or when they are max_age_ms old.
 * Takes the wanted mark. */
bool keyring_due(struct keyring *k, int64_t max_age_ms);

#endif
