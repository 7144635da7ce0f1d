/* relay_hub: the relay's side of its link to the hub (relay_hub.h). The
 * revocations thread polls the hub every second for revoked slugs and
 * fetches the hub's public keys (at start, every 5 minutes, and when a hello
 * names an unknown key); the event loop verifies tokens against the keys
 * and applies revocations when they come due, under mu. The loop itself
 * never calls the hub. */
#include "relay_hub.h"
#include "relay.h"
#include "../core/json.h"
#include "../core/token.h"
#include "../core/util.h"

#include <curl/curl.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEYS_TIMEOUT_S        5      /* one fetch of the keys */
#define REVOCATIONS_TIMEOUT_S 2      /* one poll for revocations */
#define REVOCATIONS_EVERY_MS  1000   /* how often they are polled */
#define STOP_CHECK_MS         100    /* the wait between polls looks at stopping this often */
#define KEYS_REFRESH_MS       300000 /* keys fetched again this often anyway */
#define KEYS_REFETCH_MIN_MS   10000  /* … and, when unknown or missing, at most this often */

static size_t collect(char *p, size_t size, size_t n, void *cls)
{
	struct evbuffer *b = cls;
	evbuffer_add(b, p, size * n);
	return size * n;
}

/* GET the hub's REL (the URL in full after the hub's base) as JSON, or NULL. */
static json_t *hub_get(struct relay_hub *rh, CURL *c, const char *rel, long timeout_s)
{
	char *url = xasprintf("%s%s", rh->url, rel);
	struct evbuffer *b = evbuffer_new();
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (rh->cacert)
		curl_easy_setopt(c, CURLOPT_CAINFO, rh->cacert);
	/* A remote hub serves revocations only with its operator token. */
	const char *ops = getenv("ROOST_OPS_TOKEN");
	char *authz = ops && *ops ? xasprintf("Authorization: Bearer %s", ops) : NULL;
	struct curl_slist *hd = authz ? curl_slist_append(NULL, authz) : NULL;
	if (hd)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
	long st = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	json_t *ans = st == 200 ? json_loadb((const char *)evbuffer_pullup(b, -1),
	                                     evbuffer_get_length(b), 0, NULL)
	                        : NULL;
	evbuffer_free(b);
	curl_slist_free_all(hd);
	free(authz);
	free(url);
	return ans;
}

/* The hub's public keys, fetched on the revocations thread (at start, when a
 * token names a key we do not have, and every 5 minutes) so that the event
 * loop never waits on the hub: a hello naming an unknown key cannot stall
 * every other connection. */
static void fetch_keys(struct relay_hub *rh, CURL *c)
{
	json_t *k = hub_get(rh, c, "/api/v1/keys", KEYS_TIMEOUT_S);
	pthread_mutex_lock(&rh->mu);
	rh->keys_at = mono_ms();
	if (k) {
		json_decref(rh->keys);
		rh->keys = k;
	}
	pthread_mutex_unlock(&rh->mu);
	if (!k)
		log_warn("relay: cannot fetch the hub's keys from %s", rh->url);
}

bool relay_hub_key(void *cls, const char *kid, unsigned char *pk)
{
	struct relay_hub *rh = cls;
	bool found = false, ok = false;
	pthread_mutex_lock(&rh->mu);
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(rh->keys, "keys"), i, k)
	{
		const char *id = json_get_str(k, "kid");
		if (id && strcmp(id, kid) == 0) {
			found = true;
			ok = token_parse_key(json_get_str(k, "public_key"), pk);
			break;
		}
	}
	bool stale = mono_ms() - rh->keys_at > KEYS_REFETCH_MIN_MS;
	pthread_mutex_unlock(&rh->mu);
	if (!found && stale)
		atomic_store(&rh->keys_wanted, true); /* rotated, perhaps: the host retries */
	return ok;
}

/* The fetching thread: the hub's new revocations every second. */
static void *revocations_main(void *arg)
{
	struct relay_hub *rh = arg;
	CURL *c = curl_easy_init();
	int64_t since = 0;
	while (!atomic_load(&rh->stopping)) {
		pthread_mutex_lock(&rh->mu);
		bool old =
		    mono_ms() - rh->keys_at > (rh->keys ? KEYS_REFRESH_MS : KEYS_REFETCH_MIN_MS);
		pthread_mutex_unlock(&rh->mu);
		if (old || atomic_exchange(&rh->keys_wanted, false))
			fetch_keys(rh, c);
		char rel[96];
		snprintf(rel, sizeof rel, "/api/v1/relay/revocations?since=%lld", (long long)since);
		json_t *ans = hub_get(rh, c, rel, REVOCATIONS_TIMEOUT_S);
		json_t *list = json_object_get(ans, "revocations"), *v;
		size_t i;
		json_array_foreach(list, i, v)
		{
			int64_t created = 0;
			if (json_get_int(v, "created_at", &created) && created > since)
				since = created;
		}
		if (json_array_size(list)) {
			pthread_mutex_lock(&rh->mu);
			json_array_extend(rh->incoming, list);
			pthread_mutex_unlock(&rh->mu);
			event_active(rh->arrived, EV_READ, 0); /* apply them now, in the loop */
		}
		json_decref(ans);
		for (int k = 0; k < REVOCATIONS_EVERY_MS / STOP_CHECK_MS &&
		                !atomic_load(&rh->stopping) && !atomic_load(&rh->keys_wanted);
		     k++)
			usleep(STOP_CHECK_MS * 1000);
	}
	curl_easy_cleanup(c);
	return NULL;
}

void relay_hub_init(struct relay_hub *rh, const struct relay_config *cfg)
{
	memset(rh, 0, sizeof *rh);
	rh->url = cfg->hub;
	rh->cacert = cfg->hub_cacert;
	pthread_mutex_init(&rh->mu, NULL);
	rh->incoming = json_array();
	rh->pending = json_array();
	rh->retired = json_object();
}

void relay_hub_first_keys(struct relay_hub *rh)
{
	CURL *kc = curl_easy_init();
	fetch_keys(rh, kc);
	curl_easy_cleanup(kc);
}

int relay_hub_start(struct relay_hub *rh, struct event_base *base, event_callback_fn on_arrived,
                    void *arg)
{
	rh->arrived = event_new(base, -1, 0, on_arrived, arg);
	rh->running = pthread_create(&rh->thread, NULL, revocations_main, rh) == 0;
	return rh->running ? 0 : -1;
}

void relay_hub_fini(struct relay_hub *rh)
{
	atomic_store(&rh->stopping, true);
	if (rh->running)
		pthread_join(rh->thread, NULL);
	rh->running = false;
	if (rh->arrived)
		event_free(rh->arrived);
	rh->arrived = NULL;
	pthread_mutex_destroy(&rh->mu);
	json_decref(rh->keys);
	json_decref(rh->incoming);
	json_decref(rh->pending);
	json_decref(rh->retired);
}

bool relay_hub_retired(const struct relay_hub *rh, const char *slug)
{
	return json_object_get(rh->retired, slug) != NULL;
}

json_t *relay_hub_due(struct relay_hub *rh, int64_t now)
{
	pthread_mutex_lock(&rh->mu);
	json_array_extend(rh->pending, rh->incoming);
	json_array_clear(rh->incoming);
	pthread_mutex_unlock(&rh->mu);
	json_t *due = json_array();
	for (size_t i = 0; i < json_array_size(rh->pending);) {
		json_t *p = json_array_get(rh->pending, i);
		int64_t at = 0;
		json_get_int(p, "effective_at", &at);
		const char *slug = json_get_str(p, "slug");
		if (at <= now && slug) {
			json_object_set_new(rh->retired, slug, json_true());
			json_array_append_new(due, json_string(slug));
			json_array_remove(rh->pending, i);
		} else {
			i++;
		}
	}
	return due;
}
