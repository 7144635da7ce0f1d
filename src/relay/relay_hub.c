/* relay_hub: the relay's side of its link to the hub (relay_hub.h). The
 * revocations thread polls the hub every second for revoked slugs and
 * fetches the hub's public keys (at start, every 5 minutes, and when a hello
 * names an unknown key); the event loop verifies tokens against the keys
 * and applies revocations when they come due, under mu. The loop itself
 * never calls the hub. */
#include "relay_hub.h"
#include "relay.h"
#include "../core/json.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEYS_TIMEOUT_S        5    /* one fetch of the keys */
#define REVOCATIONS_TIMEOUT_S 2    /* one poll for revocations */
#define REVOCATIONS_EVERY_MS  1000 /* how often they are polled */
#define STOP_CHECK_MS         100  /* the wait between polls looks at stopping this often */
#define KEYS_REFRESH_MS                                                                            \
	300000 /* keys fetched again this often anyway (when unknown                               \
	        * or missing, every KEYRING_RETRY_MS at most) */

/* GET the hub's REL (the URL in full after the hub's base) as JSON, or NULL. */
static json_t *hub_get(struct relay_hub *rh, const char *rel, long timeout_s)
{
	struct client *c = &rh->client;
	if (!c->curl)
		c->curl = client_curl(c);
	c->timeout_s = timeout_s;
	char *url = xasprintf("%s%s", c->hub, rel);
	json_t *ans = NULL;
	char err[256];
	if (client_request(c, c->curl, "GET", url, NULL, &ans, err) != 200) {
		json_decref(ans);
		ans = NULL;
	}
	free(url);
	return ans;
}

/* The ring's fetch (a keyring_fetch_fn, cls: the relay_hub): only ever on
 * the revocations thread, or before it starts, so that the event loop never
 * waits on the hub — a hello naming an unknown key cannot stall every other
 * connection. */
static json_t *fetch_keys(void *cls)
{
	struct relay_hub *rh = cls;
	json_t *k = hub_get(rh, "/api/v1/keys", KEYS_TIMEOUT_S);
	if (!k)
		log_warn("relay: cannot fetch the hub's keys from %s", rh->client.hub);
	return k;
}

/* The fetching thread: the hub's new revocations every second. */
static void *revocations_main(void *arg)
{
	struct relay_hub *rh = arg;
	int64_t since = 0;
	while (!atomic_load(&rh->stopping)) {
		if (keyring_due(&rh->keys, KEYS_REFRESH_MS))
			keyring_refresh(&rh->keys);
		char rel[96];
		snprintf(rel, sizeof rel, "/api/v1/relay/revocations?since=%lld", (long long)since);
		json_t *ans = hub_get(rh, rel, REVOCATIONS_TIMEOUT_S);
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
		                !atomic_load(&rh->stopping) && !atomic_load(&rh->keys.wanted);
		     k++)
			usleep(STOP_CHECK_MS * 1000);
	}
	return NULL;
}

void relay_hub_init(struct relay_hub *rh, const struct relay_config *cfg)
{
	memset(rh, 0, sizeof *rh);
	rh->client.hub = xstrdup(cfg->hub);
	rh->client.cacert = cfg->hub_cacert ? xstrdup(cfg->hub_cacert) : NULL;
	/* A remote hub serves revocations only with its operator token. */
	const char *ops = getenv("ROOST_OPS_TOKEN");
	rh->client.token = ops && *ops ? xstrdup(ops) : NULL;
	keyring_init(&rh->keys, fetch_keys, rh, 0);
	pthread_mutex_init(&rh->mu, NULL);
	rh->incoming = json_array();
	rh->pending = json_array();
	rh->retired = json_object();
}

void relay_hub_first_keys(struct relay_hub *rh)
{
	keyring_refresh(&rh->keys);
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
	keyring_fini(&rh->keys);
	client_close(&rh->client);
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
