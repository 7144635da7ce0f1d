/* tunnel_proto: what the relay (src/relay) and a host's tunnel
 * (src/host/tunnel.c) must agree on about a data connection's life. No code:
 * both sides include it, so the one rule between them holds by definition.
 *
 * Between requests a data connection sits idle in the relay's pool, and the
 * host's end waits on it for the next request. Whoever closes an idle
 * connection must be the relay: if the host closed one just as the relay
 * handed it a client's request, that request would be lost. So the relay
 * gives up on an idle connection after TUNNEL_RELAY_IDLE_MS plus a random
 * jitter of up to TUNNEL_RELAY_IDLE_JITTER_MS (so a host's connections are
 * not all dialled again at once), and the host only after
 * TUNNEL_HOST_IDLE_MS, which is defined from the relay's worst case plus a
 * margin for a busy loop or a slow link. */
#ifndef ROOST_TUNNEL_PROTO_H
#define ROOST_TUNNEL_PROTO_H

#define TUNNEL_RELAY_IDLE_MS        90000
#define TUNNEL_RELAY_IDLE_JITTER_MS 10000
#define TUNNEL_IDLE_MARGIN_MS       20000
#define TUNNEL_HOST_IDLE_MS                                                                        \
	(TUNNEL_RELAY_IDLE_MS + TUNNEL_RELAY_IDLE_JITTER_MS + TUNNEL_IDLE_MARGIN_MS) /* 120 s */

_Static_assert(TUNNEL_HOST_IDLE_MS > TUNNEL_RELAY_IDLE_MS + TUNNEL_RELAY_IDLE_JITTER_MS,
               "the relay must close an idle data connection before the host does");

#endif
