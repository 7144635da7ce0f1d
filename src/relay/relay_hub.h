/* relay_hub (private to src/relay): what the relay learns from the hub — its
 * public keys (a core/keyring), which verify the relay tokens hosts present,
 * and the slugs it revoked. One thread of its own talks to the hub (at start,
 * then polling every second, through the client library) so the event loop
 * never waits on it; the loop takes what it fetched under mu, and a lookup
 * of an unknown key only marks the ring for that thread. */
#ifndef ROOST_RELAY_HUB_H
#define ROOST_RELAY_HUB_H

#include "../client/client.h"
#include "../core/keyring.h"

#include <event2/event.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct relay_config;

struct relay_hub {
	/* The hub (--hub, its CA, ROOST_OPS_TOKEN if set) and one connection
	 * to it: start-up's, then the thread's alone. */
	struct client client;
	struct event *arrived; /* in the loop: revocations came in (the caller's callback) */
	pthread_t thread;
	bool running;
	atomic_bool stopping;
	/* The hub's keys: token_verify looks them up with keyring_key (cls: this
	 * ring) on the loop, which only marks the ring; the thread fetches. */
	struct keyring keys;
	pthread_mutex_t mu; /* guards incoming */
	json_t *incoming;   /* revocations fetched, not yet taken by the loop */
	/* The event loop's alone: */
	json_t *pending; /* revocations taken, not yet effective */
	json_t *retired; /* slug -> true, once effective */
};

void relay_hub_init(struct relay_hub *rh, const struct relay_config *cfg);
/* Fetch the keys now, on the calling thread: before the loop runs, so that
 * the first hello finds them if the hub is up. */
void relay_hub_first_keys(struct relay_hub *rh);
/* Start the thread; on_arrived(-1, EV_READ, arg) runs in the loop when
 * revocations come in. 0 or -1. */
int relay_hub_start(struct relay_hub *rh, struct event_base *base, event_callback_fn on_arrived,
                    void *arg);
/* Stop and join the thread (if started), then free everything. */
void relay_hub_fini(struct relay_hub *rh);

/* In the loop: has slug been revoked (and the revocation come into effect)? */
bool relay_hub_retired(const struct relay_hub *rh, const char *slug);
/* In the loop: the slugs whose revocation is effective by now (wall-clock
 * ms), each now counted as retired. A new array, to be cut by the caller. */
json_t *relay_hub_due(struct relay_hub *rh, int64_t now);

#endif
