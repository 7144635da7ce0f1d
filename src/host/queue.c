/* queue: the sync thread's work — paths marked dirty, each due after its
 * settle delay (a hash table, so a burst of events on one path is one entry),
 * and local moves in order. The watcher, the sync thread itself and serve.c
 * add to it from their threads; the sync loop (agent.c) takes from it. Every
 * function here runs under h->mu, taking it itself when it says so. */
#include "host.h"
#include "../core/util.h"

#include <stdlib.h>
#include <string.h>

#define DIRTY_BATCH 256 /* paths taken per pass of the sync loop */

static size_t str_hash(const char *s)
{
	size_t x = 1469598103934665603ull;
	for (; *s; s++)
		x = (x ^ (unsigned char)*s) * 1099511628211ull;
	return x;
}

static void dirty_grow(struct host *h)
{
	size_t cap = h->dirty_cap ? h->dirty_cap * 2 : 1024;
	struct dirty **t = xcalloc(cap, sizeof *t);
	for (size_t i = 0; i < h->dirty_cap; i++)
		for (struct dirty *d = h->dirty[i], *next; d; d = next) {
			next = d->next;
			size_t k = str_hash(d->path) & (cap - 1);
			d->next = t[k];
			t[k] = d;
		}
	free(h->dirty);
	h->dirty = t;
	h->dirty_cap = cap;
}

void host_mark_dirty(struct host *h, const char *path, int64_t delay_ms)
{
	int64_t due = mono_ms() + delay_ms;
	pthread_mutex_lock(&h->mu);
	if (h->ndirty >= h->dirty_cap / 2)
		dirty_grow(h);
	size_t k = str_hash(path) & (h->dirty_cap - 1);
	struct dirty *d = h->dirty[k];
	while (d && strcmp(d->path, path) != 0)
		d = d->next;
	if (!d) {
		d = xcalloc(1, sizeof *d);
		d->path = xstrdup(path);
		d->next = h->dirty[k];
		h->dirty[k] = d;
		h->ndirty++;
	}
	d->due = due;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

void host_queue_move(struct host *h, const char *from, const char *to)
{
	struct move_op *m = xcalloc(1, sizeof *m);
	m->from = xstrdup(from);
	m->to = xstrdup(to);
	pthread_mutex_lock(&h->mu);
	/* Paths waiting under the old name now live under the new one. */
	size_t n = strlen(from);
	struct dirty *moved = NULL;
	for (size_t i = 0; i < h->dirty_cap; i++)
		for (struct dirty **pp = &h->dirty[i]; *pp;) {
			struct dirty *d = *pp;
			if (strncmp(d->path, from, n) == 0 && (!d->path[n] || d->path[n] == '/')) {
				*pp = d->next;
				char *np = xasprintf("%s%s", to, d->path + n);
				free(d->path);
				d->path = np;
				d->next = moved;
				moved = d;
				h->ndirty--;
			} else {
				pp = &d->next;
			}
		}
	for (struct dirty *d = moved, *next; d; d = next) {
		next = d->next;
		size_t k = str_hash(d->path) & (h->dirty_cap - 1);
		struct dirty *same = h->dirty[k];
		while (same && strcmp(same->path, d->path) != 0)
			same = same->next;
		if (same) {
			free(d->path);
			free(d);
			continue;
		}
		d->next = h->dirty[k];
		h->dirty[k] = d;
		h->ndirty++;
	}
	*h->moves_tail = m;
	h->moves_tail = &m->next;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **host_queue_take_due(struct host *h, size_t *n, int64_t *next_due)
{
	int64_t now = mono_ms();
	*next_due = INT64_MAX;
	char **out = NULL;
	size_t cnt = 0;
	for (size_t i = 0; i < h->dirty_cap && cnt < DIRTY_BATCH; i++)
		for (struct dirty **pp = &h->dirty[i]; *pp && cnt < DIRTY_BATCH;) {
			struct dirty *d = *pp;
			if (d->due > now) {
				if (d->due < *next_due)
					*next_due = d->due;
				pp = &d->next;
				continue;
			}
			*pp = d->next;
			h->ndirty--;
			out = xrealloc(out, (cnt + 1) * sizeof *out);
			out[cnt++] = d->path;
			free(d);
		}
	if (cnt == DIRTY_BATCH)
		*next_due = now;
	if (cnt)
		qsort(out, cnt, sizeof *out, cmp_str);
	*n = cnt;
	return out;
}

void host_queue_count(struct host *h)
{
	size_t moves = 0;
	for (struct move_op *m = h->moves; m; m = m->next)
		moves++;
	atomic_store(&h->queue, (long long)(h->ndirty + moves + json_array_size(h->events)));
}

void host_queue_init(struct host *h)
{
	h->events = json_array();
	h->moves_tail = &h->moves;
	dirty_grow(h);
}

void host_queue_free(struct host *h)
{
	for (size_t i = 0; i < h->dirty_cap; i++)
		for (struct dirty *d = h->dirty[i], *next; d; d = next) {
			next = d->next;
			free(d->path);
			free(d);
		}
	free(h->dirty);
	for (struct move_op *m = h->moves, *next; m; m = next) {
		next = m->next;
		free(m->from);
		free(m->to);
		free(m);
	}
	json_decref(h->events);
}
