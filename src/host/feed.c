/* feed: the feed reader — the hub's change feed (SSE, /events?since=SEQ,
 * through client/events: its limits end a connection that stalls) read on a
 * thread of its own, each event queued in h->events for the sync thread in
 * seq order; reconnects with backoff and jitter (core/retry), and stops
 * reading while FEED_QUEUE_MAX events wait (the hub's side then waits too).
 * A workspace.updated event's storage mode is applied here at once. */
#include "host.h"
#include "../client/events.h"
#include "../core/json.h"
#include "../core/retry.h"
#include "../core/sse.h"
#include "../core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FEED_BACKOFF_MIN_MS 500
#define FEED_BACKOFF_MAX_MS 30000
#define FEED_JITTER         0.5   /* each wait drawn from [half, all] of the backoff */
#define FEED_HEALTHY_MS     10000 /* a stream that lasted this long resets the backoff */
#define FEED_QUEUE_MAX      2000  /* remote changes waiting before the reader pauses */

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
	/* The storage mode now, not when the sync thread reaches the event:
	 * it only decides how the next commits are made. */
	const char *kind = json_get_str(ev, "kind");
	if (kind && strcmp(kind, "workspace.updated") == 0)
		host_apply_settings(f->h, json_object_get(ev, "payload"));
	pthread_mutex_lock(&f->h->mu);
	/* Backpressure: with enough work queued, stop reading the stream until
	 * the sync thread takes it (the hub's side of the connection waits). */
	while (json_array_size(f->h->events) >= FEED_QUEUE_MAX && !atomic_load(&f->h->stop))
		pthread_cond_wait(&f->h->cv, &f->h->mu);
	json_array_append_new(f->h->events, ev);
	pthread_cond_broadcast(&f->h->cv);
	pthread_mutex_unlock(&f->h->mu);
}

static int feed_stopping(void *cls)
{
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
		struct client_feed cf = {
		    .since = f->last, .sse = &f->sse, .stop = feed_stopping, .stop_cls = h};
		int64_t started = mono_ms();
		CURLcode cc;
		client_feed_follow(&h->c, curl, &cf, &cc);
		sse_reset(&f->sse);
		if (atomic_load(&h->stop))
			break;
		if (mono_ms() - started > FEED_HEALTHY_MS)
			retry_reset(&rt); /* it ran a while: a fresh failure */
		int64_t wait = retry_next_ms(&rt);
		/* An HTTP error ends the stream as the hub closing it would. */
		bool ended = cc == CURLE_OK || cc == CURLE_HTTP_RETURNED_ERROR;
		log_warn("feed: %s; reconnecting in %.1f s",
		         ended ? "the hub ended the stream" : curl_easy_strerror(cc),
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
