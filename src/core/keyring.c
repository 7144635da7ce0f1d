/* keyring: see keyring.h. */
#include "keyring.h"
#include "json.h"
#include "token.h"
#include "util.h"

#include <string.h>

void keyring_init(struct keyring *k, keyring_fetch_fn fetch, void *cls, unsigned opts)
{
	memset(k, 0, sizeof *k);
	pthread_mutex_init(&k->mu, NULL);
	atomic_init(&k->wanted, false);
	atomic_init(&k->hub_skew_ms, 0);
	k->fetch = fetch;
	k->cls = cls;
	k->opts = opts;
	k->retry_ms = KEYRING_RETRY_MS;
	k->clock = mono_ms;
}

void keyring_fini(struct keyring *k)
{
	json_decref(k->keys);
	k->keys = NULL;
	pthread_mutex_destroy(&k->mu);
}

/* Under mu: the key named kid, parsed. */
static bool find(struct keyring *k, const char *kid, unsigned char *pk)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(k->keys, "keys"), i, e)
	{
		const char *id = json_get_str(e, "kid");
		if (id && strcmp(id, kid) == 0)
			return token_parse_key(json_get_str(e, "public_key"), pk);
	}
	return false;
}

/* Under mu: may the hub be asked again for a key we lack? Once per
 * retry_ms; a ring that fetches on a miss also whenever it holds no keys
 * (a host's requests wait for them), while a refresher's ring without keys
 * is marked no more often than with them (the relay's hosts dial again and
 * again: each hello must not send its thread to a hub that is down). */
static bool stale(struct keyring *k)
{
	bool waiting = !k->keys && (k->opts & KEYRING_FETCH_ON_MISS);
	return waiting || !k->tried || k->clock() - k->fetched_ms > k->retry_ms;
}

bool keyring_key(void *cls, const char *kid, unsigned char pk[crypto_sign_PUBLICKEYBYTES])
{
	struct keyring *k = cls;
	for (int attempt = 0; attempt < 2; attempt++) {
		pthread_mutex_lock(&k->mu);
		bool found = find(k, kid, pk), old = stale(k);
		pthread_mutex_unlock(&k->mu);
		if (found || !old)
			return found;
		if (!(k->opts & KEYRING_FETCH_ON_MISS)) {
			atomic_store(&k->wanted, true); /* rotated, perhaps: the caller retries */
			return false;
		}
		keyring_refresh(k);
	}
	return false;
}

bool keyring_refresh(struct keyring *k)
{
	int64_t sent = now_ms();
	json_t *doc = k->fetch(k->cls); /* not under mu: lookups go on meanwhile */
	int64_t hub_now = 0;
	if (doc && json_get_int(doc, "now", &hub_now) && hub_now > 0) {
		/* The hub read its clock between our send and receipt: take the middle. */
		int64_t got = now_ms();
		atomic_store(&k->hub_skew_ms, hub_now - (sent + (got - sent) / 2));
	}
	pthread_mutex_lock(&k->mu);
	k->fetched_ms = k->clock();
	k->tried = true;
	if (doc) {
		json_decref(k->keys);
		k->keys = doc;
	}
	pthread_mutex_unlock(&k->mu);
	return doc != NULL;
}

int64_t keyring_now_ms(struct keyring *k)
{
	/* The hub's clock comes with its keys: a ring that fetches on a miss and
	 * never has would judge the first token by our own clock (the key lookup
	 * that fetches comes after the time is read). */
	pthread_mutex_lock(&k->mu);
	bool never = !k->tried && (k->opts & KEYRING_FETCH_ON_MISS);
	pthread_mutex_unlock(&k->mu);
	if (never)
		keyring_refresh(k);
	return now_ms() + atomic_load(&k->hub_skew_ms);
}

bool keyring_due(struct keyring *k, int64_t max_age_ms)
{
	pthread_mutex_lock(&k->mu);
	int64_t age = k->clock() - k->fetched_ms;
	bool old = !k->tried || age > (k->keys ? max_age_ms : k->retry_ms);
	pthread_mutex_unlock(&k->mu);
	return atomic_exchange(&k->wanted, false) || old;
}
