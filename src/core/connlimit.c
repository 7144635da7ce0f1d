/* connlimit: connections per client address, and idle timeouts (connlimit.h).
 * The count uses ratelimit.h's table: an entry's inflight is its open
 * connections; idle entries are swept. */
#include "connlimit.h"
#include "ratelimit.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_SLOTS    1024
#define CONN_SWEEP_MS 60000

struct connlimit {
	pthread_mutex_t mu;
	struct limit_table t;
	int per_ip;
	unsigned head_timeout_s;
	int64_t swept_ms;
};

struct connlimit *connlimit_new(int per_ip, unsigned head_timeout_s)
{
	struct connlimit *cl = xcalloc(1, sizeof *cl);
	pthread_mutex_init(&cl->mu, NULL);
	limit_table_init(&cl->t, CONN_SLOTS);
	cl->per_ip = per_ip;
	cl->head_timeout_s = head_timeout_s;
	return cl;
}

void connlimit_free(struct connlimit *cl)
{
	if (!cl)
		return;
	limit_table_free(&cl->t);
	pthread_mutex_destroy(&cl->mu);
	free(cl);
}

static void addr_key(const struct sockaddr *sa, char out[80])
{
	char buf[INET6_ADDRSTRLEN] = "?";
	if (sa && sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, sizeof buf);
	} else if (sa && sa->sa_family == AF_INET6) {
		struct in6_addr a = ((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (!IN6_IS_ADDR_V4MAPPED(&a))
			memset(a.s6_addr + 8, 0, 8); /* one host has a whole /64 */
		inet_ntop(AF_INET6, &a, buf, sizeof buf);
	}
	snprintf(out, 80, "ip:%s", buf);
}

/* Lock the table, sweeping it when due, and give addr's entry. The caller
 * unlocks cl->mu. */
static struct limit_entry *entry_locked(struct connlimit *cl, const struct sockaddr *addr)
{
	char key[80];
	addr_key(addr, key);
	int64_t now = mono_ms();
	pthread_mutex_lock(&cl->mu);
	if (now - cl->swept_ms >= CONN_SWEEP_MS) {
		limit_table_sweep(&cl->t, now, CONN_SWEEP_MS);
		cl->swept_ms = now;
	}
	return limit_table_get(&cl->t, key, now);
}

enum MHD_Result connlimit_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	(void)addrlen;
	struct connlimit *cl = cls;
	if (cl->per_ip <= 0)
		return MHD_YES;
	/* Counted in connlimit_notify: MHD may still drop it before it starts. */
	bool full = entry_locked(cl, addr)->inflight >= cl->per_ip;
	pthread_mutex_unlock(&cl->mu);
	return full ? MHD_NO : MHD_YES;
}

void *connlimit_hold(struct connlimit *cl, const struct sockaddr *addr)
{
	static char unlimited;
	if (cl->per_ip <= 0)
		return &unlimited; /* not counted: connlimit_unhold knows it */
	struct limit_entry *e = entry_locked(cl, addr);
	if (e->inflight >= cl->per_ip)
		e = NULL;
	else
		e->inflight++; /* kept while inflight > 0: the sweep skips it */
	pthread_mutex_unlock(&cl->mu);
	return e;
}

void connlimit_unhold(struct connlimit *cl, void *hold)
{
	if (cl->per_ip <= 0 || !hold)
		return;
	struct limit_entry *e = hold;
	pthread_mutex_lock(&cl->mu);
	e->inflight--;
	e->used_ms = mono_ms();
	pthread_mutex_unlock(&cl->mu);
}

void connlimit_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode toe)
{
	struct connlimit *cl = cls;
	if (cl->per_ip <= 0)
		return;
	pthread_mutex_lock(&cl->mu);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		char key[80];
		addr_key(ci ? ci->client_addr : NULL, key);
		struct limit_entry *e = limit_table_get(&cl->t, key, mono_ms());
		e->inflight++;
		*socket_context = e; /* kept while inflight > 0: the sweep skips it */
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
		struct limit_entry *e = *socket_context;
		e->inflight--;
		e->used_ms = mono_ms();
		*socket_context = NULL;
	}
	pthread_mutex_unlock(&cl->mu);
}

void connlimit_head_done(struct MHD_Connection *c)
{
	MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S);
}

void connlimit_request_done(const struct connlimit *cl, struct MHD_Connection *c)
{
	MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, cl->head_timeout_s);
}
