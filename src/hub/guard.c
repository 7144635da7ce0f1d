/* guard: throttles password checks — login, WebDAV Basic, share-link
 * passwords, invite accept, password change — per account and per client
 * address, with growing delays (ratelimit.h's backoff). A refused attempt is
 * answered 429 with Retry-After before any argon2id runs.
 *
 * The client's key is its address, an IPv6 client's /64: one host gets a
 * whole /64 as easily as one address. */
#include "hub.h"
#include "guard.h"
#include "../core/ratelimit.h"
#include "../core/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD_SLOTS     4096
#define GUARD_KEYS_MAX  100000 /* past this many keys, quieter ones are dropped sooner */
#define GUARD_SWEEP_MS  60000
#define GUARD_CLIENT_X  4 /* a client address gets this many times an account's free tries */
#define GUARD_BASE_MS   1000
#define GUARD_CAP_MS    (10 * 60 * 1000)
#define GUARD_FORGET_MS (60 * 60 * 1000)

struct guard {
	pthread_mutex_t mu;
	struct limit_table t;
	struct backoff_rule account, client;
	int64_t swept_ms;
};

struct guard *guard_new(int free_tries)
{
	if (free_tries <= 0)
		return NULL;
	struct guard *g = xcalloc(1, sizeof *g);
	pthread_mutex_init(&g->mu, NULL);
	limit_table_init(&g->t, GUARD_SLOTS);
	g->account =
	    (struct backoff_rule){free_tries, GUARD_BASE_MS, GUARD_CAP_MS, GUARD_FORGET_MS};
	g->client = g->account;
	g->client.free = free_tries * GUARD_CLIENT_X;
	return g;
}

void guard_free(struct guard *g)
{
	if (!g)
		return;
	limit_table_free(&g->t);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

static void client_key(struct req *r, char out[96])
{
	char addr[64];
	req_client(r, addr);
	unsigned char a6[16];
	if (strchr(addr, ':') && inet_pton(AF_INET6, addr, a6) == 1 &&
	    !IN6_IS_ADDR_V4MAPPED((struct in6_addr *)a6)) {
		memset(a6 + 8, 0, 8);
		inet_ntop(AF_INET6, a6, addr, sizeof addr);
	}
	snprintf(out, 96, "ip:%s", addr);
}

/* "acct:" and the account name in lower case (a new string). */
static char *account_key(const char *account)
{
	char *k = xasprintf("acct:%.320s", account);
	for (char *p = k; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return k;
}

static void sweep(struct guard *g, int64_t now)
{
	if (now - g->swept_ms < GUARD_SWEEP_MS && g->t.count < GUARD_KEYS_MAX)
		return;
	g->swept_ms = now;
	limit_table_sweep(&g->t, now, GUARD_FORGET_MS);
	if (g->t.count >= GUARD_KEYS_MAX) /* a flood of keys: keep only the busy ones */
		limit_table_sweep(&g->t, now, GUARD_SWEEP_MS);
}

int64_t guard_admit(struct req *r, const char *account)
{
	struct guard *g = r->hub->guard;
	if (!g)
		return 0;
	char ck[96];
	client_key(r, ck);
	char *ak = account ? account_key(account) : NULL;
	int64_t now = mono_ms();
	pthread_mutex_lock(&g->mu);
	sweep(g, now);
	struct limit_entry *c = limit_table_get(&g->t, ck, now);
	/* The client first: an address that is waiting makes no account entries. */
	int64_t wait = backoff_admit(&c->fails, &g->client, now);
	if (!wait && ak) {
		struct limit_entry *a = limit_table_get(&g->t, ak, now);
		wait = backoff_admit(&a->fails, &g->account, now);
		if (wait)
			backoff_refund(&c->fails, &g->client);
	}
	pthread_mutex_unlock(&g->mu);
	free(ak);
	return wait;
}

void guard_result(struct req *r, const char *account, int outcome)
{
	struct guard *g = r->hub->guard;
	if (!g || outcome == 0)
		return; /* a failure keeps its charge */
	char ck[96];
	client_key(r, ck);
	char *ak = account ? account_key(account) : NULL;
	int64_t now = mono_ms();
	pthread_mutex_lock(&g->mu);
	backoff_refund(&limit_table_get(&g->t, ck, now)->fails, &g->client);
	if (ak) {
		struct backoff *a = &limit_table_get(&g->t, ak, now)->fails;
		if (outcome > 0)
			backoff_reset(a); /* the owner got in: an attacker's delays end */
		else
			backoff_refund(a, &g->account);
	}
	pthread_mutex_unlock(&g->mu);
	free(ak);
}
