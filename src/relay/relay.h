/* relay: roost relay (docs/relay.md) — public HTTPS for hosts behind NAT. */
#ifndef ROOST_RELAY_H
#define ROOST_RELAY_H

#include "../core/ratelimit.h"

struct relay_config {
	const char *data;        /* audit log, self-signed certificates */
	const char *public_addr; /* ADDR:PORT for clients */
	const char *tunnel_addr; /* ADDR:PORT for hosts */
	const char *admin_addr;  /* ADDR:PORT for /healthz and /metrics, or NULL: none */
	const char *public_name; /* host[:port] in the URLs handed out */
	const char *cert, *key;  /* PEM */
	const char *hub;         /* the hub's URL: its public keys verify host tokens */
	const char *hub_cacert;
	struct limit_rule limits[LIMIT_SCOPES]; /* per client IP, host, URL (--limit) */
};

int relay_run(const struct relay_config *cfg);
/* Write DIR/ca.pem and a certificate for 127.0.0.1/localhost signed by it
 * (DIR/relay.pem, DIR/relay.key), unless they exist. 0 or -1. */
int relay_self_signed(const char *dir, const char **cert, const char **key);
/* roost relay ARGS */
int relay_main(int argc, char **argv);

#endif
