/* feed: the feed reader — the hub's change feed (SSE, /events?since=SEQ)
 * read on a thread of its own, each event queued in h->events for the sync
 * thread in seq order; reconnects with backoff and jitter, and stops
 * reading while FEED_QUEUE_MAX events wait (the hub's side then waits too). */
#include "host.h"
#include "../core/json.h"
#include "../core/retry.h"
#include "../core/sse.h"
#include "../core/util.h"

#include <errno.h>
#include <stdlib.h>

#define FEED_BACKOFF_MIN_MS 500
#define FEED_BACKOFF_MAX_MS 30000
#define FEED_JITTER         0.5   /* each wait drawn from [half, all] of the backoff */
#define FEED_HEALTHY_MS     10000 /* a stream that lasted this long resets the backoff */
#define FEED_CONNECT_S      10
/* The hub sends a heartbeat comment every ~15 s: a stream silent this long is dead. */
#define FEED_SILENCE_S 60
#define FEED_QUEUE_MAX 2000 /* remote changes waiting before the reader pauses */

struct host_feed {
	struct host *h;
	struct sse sse;
	int64_t last; /* last seq received */
	pthread_t thread;
};

static void feed_event(void *cls, const char *event, const char *data, size_t len)
{
	struct host_feed *f = cls;
	(void)event;
	json_t *ev = json_loadb(data, len, 0, NULL);
	int64_t seq = 0;
	if (!json_get_int(ev, "seq", &seq) || seq <= f->last) {
		json_decref(ev);
		return;
	}
	f->last = seq;
	pthread_mutex_lock(&f->h->mu);
	/* Backpressure: with enough work queued, stop reading the stream until
	 * the sync thread takes it (the hub's side of the connection waits). */
	while (json_array_size(f->h->events) >= FEED_QUEUE_MAX && !atomic_load(&f->h->stop))
		pthread_cond_wait(&f->h->cv, &f->h->mu);
	json_array_append_new(f->h->events, ev);
	pthread_cond_broadcast(&f->h->cv);
	pthread_mutex_unlock(&f->h->mu);
}

static size_t feed_write(char *data, size_t size, size_t n, void *cls)
{
	struct host_feed *f = cls;
	sse_feed(&f->sse, data, size * n);
	return size * n;
}

static int feed_progress(void *cls, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	return atomic_load(&((struct host *)cls)->stop) ? 1 : 0;
}

static void *feed_main(void *arg)
{
	struct host_feed *f = arg;
	struct host *h = f->h;
	CURL *curl = client_curl(&h->c);
	struct retry rt;
	retry_init(&rt, FEED_BACKOFF_MIN_MS, FEED_BACKOFF_MAX_MS, FEED_JITTER);
	while (!atomic_load(&h->stop)) {
		char *rel = xasprintf("/events?since=%lld", (long long)f->last);
		char *url = client_ws_url(&h->c, rel, NULL);
		free(rel);
		char *auth = xasprintf("Authorization: Bearer %s", h->c.token);
		struct curl_slist *hd = curl_slist_append(NULL, auth);
		curl_easy_reset(curl);
		if (h->c.cacert)
			curl_easy_setopt(curl, CURLOPT_CAINFO, h->c.cacert);
		curl_easy_setopt(curl, CURLOPT_URL, url);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hd);
		curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)FEED_CONNECT_S);
		curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)FEED_SILENCE_S);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, feed_write);
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, f);
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, feed_progress);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, h);
		int64_t started = mono_ms();
		CURLcode cc = curl_easy_perform(curl);
		curl_slist_free_all(hd);
		free(auth);
		free(url);
		sse_reset(&f->sse);
		if (atomic_load(&h->stop))
			break;
		if (mono_ms() - started > FEED_HEALTHY_MS)
			retry_reset(&rt); /* it ran a while: a fresh failure */
		int64_t wait = retry_next_ms(&rt);
		log_warn("feed: %s; reconnecting in %.1f s",
		         cc != CURLE_OK ? curl_easy_strerror(cc) : "the hub ended the stream",
		         (double)wait / 1000);
		/* Wait, waking early on stop. */
		pthread_mutex_lock(&h->mu);
		struct timespec ts = host_deadline(wait);
		while (!atomic_load(&h->stop) &&
		       pthread_cond_timedwait(&h->cv, &h->mu, &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&h->mu);
	}
	curl_easy_cleanup(curl);
	return NULL;
}

struct host_feed *host_feed_start(struct host *h)
{
	struct host_feed *f = xcalloc(1, sizeof *f);
	f->h = h;
	f->last = atomic_load(&h->seq);
	sse_init(&f->sse, feed_event, f);
	pthread_create(&f->thread, NULL, feed_main, f);
	return f;
}

void host_feed_stop(struct host_feed *f)
{
	pthread_join(f->thread, NULL);
	sse_fini(&f->sse);
	free(f);
}
