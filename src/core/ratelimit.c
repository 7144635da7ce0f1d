/* ratelimit: token buckets and a chained hash table of them (ratelimit.h). */
#include "ratelimit.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void refill(struct bucket *b, double rate, double burst, int64_t now_ms)
{
	if (!b->started) {
		b->tokens = burst;
		b->at_ms = now_ms;
		b->started = true;
		return;
	}
	if (now_ms > b->at_ms) {
		b->tokens += (double)(now_ms - b->at_ms) * rate / 1000.0;
		if (b->tokens > burst)
			b->tokens = burst;
		b->at_ms = now_ms;
	}
}

double bucket_level(struct bucket *b, double rate, double burst, int64_t now_ms)
{
	refill(b, rate, burst, now_ms);
	return b->tokens;
}

int64_t bucket_wait_ms(struct bucket *b, double rate, double burst, double n, int64_t now_ms)
{
	refill(b, rate, burst, now_ms);
	if (n > burst)
		n = burst;
	if (b->tokens >= n || rate <= 0)
		return 0;
	return (int64_t)ceil((n - b->tokens) * 1000.0 / rate);
}

void bucket_take(struct bucket *b, double rate, double burst, double n, int64_t now_ms)
{
	refill(b, rate, burst, now_ms);
	b->tokens -= n;
}

int limit_rule_parse(struct limit_rule rules[LIMIT_SCOPES], const char *spec, const char **why)
{
	static const char *const scopes[LIMIT_SCOPES] = {"ip", "host", "url"};
	const char *dot = strchr(spec, '.'), *eq = strchr(spec, '=');
	*why = "a limit looks like SCOPE.KIND=VALUE: ip|host|url . rps|bps|inflight, or ip.conns";
	if (!dot || !eq || eq < dot)
		return -1;
	int scope = -1;
	for (int i = 0; i < LIMIT_SCOPES; i++)
		if ((size_t)(dot - spec) == strlen(scopes[i]) &&
		    strncmp(spec, scopes[i], (size_t)(dot - spec)) == 0)
			scope = i;
	const char *kind = dot + 1;
	size_t klen = (size_t)(eq - kind);
	char *end;
	double v = strtod(eq + 1, &end);
	if (scope < 0 || end == eq + 1 || !(v >= 0) || isinf(v))
		return -1;
	struct limit_rule *r = &rules[scope];
	if (klen == 3 && strncmp(kind, "bps", 3) == 0) {
		double bps = parse_bytes(eq + 1);
		if (bps < 0)
			return -1;
		r->bps = bps;
		return 0;
	}
	if (*end)
		return -1;
	if (klen == 3 && strncmp(kind, "rps", 3) == 0) {
		r->rps = v;
		return 0;
	}
	if (klen == 8 && strncmp(kind, "inflight", 8) == 0 && v == floor(v) && v <= 1e6) {
		r->inflight = (int)v;
		return 0;
	}
	if (klen == 5 && strncmp(kind, "conns", 5) == 0 && scope == LIMIT_IP && v == floor(v) &&
	    v <= 1e6) {
		r->conns = (int)v;
		return 0;
	}
	return -1;
}

/* FNV-1a */
static size_t slot_of(const struct limit_table *t, const char *key)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h % t->nslots);
}

void limit_table_init(struct limit_table *t, size_t nslots)
{
	t->nslots = nslots ? nslots : 1;
	t->slots = xcalloc(t->nslots, sizeof *t->slots);
	t->count = 0;
}

struct limit_entry *limit_table_get(struct limit_table *t, const char *key, int64_t now_ms)
{
	size_t s = slot_of(t, key);
	for (struct limit_entry *e = t->slots[s]; e; e = e->next)
		if (strcmp(e->key, key) == 0) {
			e->used_ms = now_ms;
			return e;
		}
	size_t len = strlen(key);
	struct limit_entry *e = xcalloc(1, sizeof *e + len + 1);
	memcpy(e->key, key, len + 1);
	e->used_ms = now_ms;
	e->next = t->slots[s];
	t->slots[s] = e;
	t->count++;
	return e;
}

size_t limit_table_sweep(struct limit_table *t, int64_t now_ms, int64_t idle_ms)
{
	size_t dropped = 0;
	for (size_t s = 0; s < t->nslots; s++)
		for (struct limit_entry **pp = &t->slots[s]; *pp;) {
			struct limit_entry *e = *pp;
			if (e->inflight == 0 && now_ms - e->used_ms >= idle_ms) {
				*pp = e->next;
				free(e);
				dropped++;
			} else {
				pp = &e->next;
			}
		}
	t->count -= dropped;
	return dropped;
}

void limit_table_free(struct limit_table *t)
{
	for (size_t s = 0; s < t->nslots; s++)
		for (struct limit_entry *e = t->slots[s], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	free(t->slots);
	t->slots = NULL;
	t->count = 0;
}
