/* ratelimit: the one token bucket (the relay's limits per client IP, per
 * host and per URL, docs/relay.md; the hub's per-token rate, hub/limits.c;
 * job pacing), and a table of them by key. Pure: the
 * caller passes the clock, so tests drive time by hand. Not thread-safe. */
#ifndef ROOST_RATELIMIT_H
#define ROOST_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Refills at rate units per second up to burst; starts full. */
struct bucket {
	double tokens;
	int64_t at_ms;
	bool started;
};

/* Units available at now_ms (after refilling). */
double bucket_level(struct bucket *b, double rate, double burst, int64_t now_ms);
/* Milliseconds until n units are available (0: now); takes nothing. A request
 * bigger than the burst waits for a full bucket. */
int64_t bucket_wait_ms(struct bucket *b, double rate, double burst, double n, int64_t now_ms);
/* Take n units (the level may go below zero: a debt paid back by waiting). */
void bucket_take(struct bucket *b, double rate, double burst, double n, int64_t now_ms);

/* What a limit applies to, and what it counts. */
enum limit_scope { LIMIT_IP, LIMIT_HOST, LIMIT_URL, LIMIT_SCOPES };
struct limit_rule {
	double rps;   /* requests per second, twice that in a burst; 0: no limit */
	double bps;   /* bytes per second both ways, one second's worth in a burst; 0: none */
	int inflight; /* requests at once; 0: no limit */
	int conns;    /* connections open at once (client IPs only); 0: no limit */
};

/* Parse "SCOPE.KIND=VALUE" (ip|host|url . rps|bps|inflight, or ip.conns; VALUE a number,
 * bps with an optional K, M or G suffix for KiB, MiB, GiB) into rules[].
 * 0 on success; -1 with *why set. */
int limit_rule_parse(struct limit_rule rules[LIMIT_SCOPES], const char *spec, const char **why);

/* Growing delays after failures (password guesses): a few attempts are free,
 * then each one waits twice as long as the one before, up to a cap. Failures
 * are forgotten after a quiet window. Attempts are charged when they start,
 * so a burst of concurrent ones cannot all slip through before the first
 * fails; a success refunds its charge. */
struct backoff {
	int fails;        /* attempts charged and not refunded */
	int64_t until_ms; /* no attempt before this */
	int64_t last_ms;  /* the last charge */
};
struct backoff_rule {
	int free;                /* attempts before delays start */
	int64_t base_ms, cap_ms; /* the first delay, the longest */
	int64_t forget_ms;       /* failures older than this are forgotten */
};

/* 0 and the attempt charged, or ms to wait (nothing charged). */
int64_t backoff_admit(struct backoff *b, const struct backoff_rule *rule, int64_t now_ms);
/* Give back one charge (the attempt did not fail). */
void backoff_refund(struct backoff *b, const struct backoff_rule *rule);
/* Forget every failure (the account's owner got in). */
void backoff_reset(struct backoff *b);

/* The state behind one key ("ip:1.2.3.4", "host:7", "url:SLUG/PATH"). */
struct limit_entry {
	struct limit_entry *next;
	struct bucket requests, bytes;
	struct backoff fails;
	int inflight;
	int64_t used_ms;
	char key[];
};

struct limit_table {
	struct limit_entry **slots;
	size_t nslots, count;
};

void limit_table_init(struct limit_table *t, size_t nslots);
/* The entry for key, made on first use. */
struct limit_entry *limit_table_get(struct limit_table *t, const char *key, int64_t now_ms);
/* Forget entries unused for idle_ms with nothing in flight (their buckets are
 * full by then). Returns how many were dropped. */
size_t limit_table_sweep(struct limit_table *t, int64_t now_ms, int64_t idle_ms);
void limit_table_free(struct limit_table *t);

#endif
