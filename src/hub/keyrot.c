/* keyrot: the signing key's scheduled rotation (keyrot.h). */
#include "keyrot.h"
#include "init.h"
#include "../core/util.h"

#include <time.h>

#define KEYROT_CHECK_MAX_MS 60000 /* a due key is rotated at most a minute late */
#define KEYROT_CHECK_MIN_MS 200
#define KEYROT_NAP_MS       100 /* how soon a stopping hub's thread notices */

static void *keyrot_main(void *arg)
{
	struct hub *hub = arg;
	int64_t every = hub->cfg.rotate_keys_every_ms;
	int64_t check = every / 4;
	if (check > KEYROT_CHECK_MAX_MS)
		check = KEYROT_CHECK_MAX_MS;
	if (check < KEYROT_CHECK_MIN_MS)
		check = KEYROT_CHECK_MIN_MS;
	int64_t next = 0;
	while (!atomic_load(&hub->keyrot_stopping)) {
		if (mono_ms() >= next) {
			struct db *db = db_pool_acquire(hub->pool);
			int rc = hub_keys_rotate(db, every);
			if (rc == 1)
				log_info(
				    "keys: the signing key was %lld s old: signing with a new one "
				    "(the old one verifies what it signed until that expires)",
				    (long long)(every / 1000));
			else if (rc < 0)
				log_warn("keys: rotating the signing key failed: %s",
				         db_errmsg(db));
			db_pool_release(hub->pool, db);
			next = mono_ms() + check;
		}
		struct timespec ts = {0, KEYROT_NAP_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

void keyrot_start(struct hub *hub)
{
	if (hub->cfg.rotate_keys_every_ms <= 0)
		return;
	atomic_store(&hub->keyrot_stopping, false);
	hub->keyrot_running = pthread_create(&hub->keyrot_thread, NULL, keyrot_main, hub) == 0;
	if (!hub->keyrot_running)
		log_error("keys: cannot start the rotation thread");
}

void keyrot_stop(struct hub *hub)
{
	if (!hub->keyrot_running)
		return;
	atomic_store(&hub->keyrot_stopping, true);
	pthread_join(hub->keyrot_thread, NULL);
	hub->keyrot_running = false;
}
