/* keyrot: signing keys rotated on a schedule (roost serve --rotate-keys-every,
 * docs/operations.md): a thread of the hub's that retires the signing key once
 * it is that old and signs with a new one (init.c's hub_keys_rotate: several
 * hubs on one database rotate once). Retired keys keep verifying for as long
 * as a token they signed may live (tokens.c).
 *
 * Threads: its own; hub_serve starts and stops it. */
#ifndef ROOST_HUB_KEYROT_H
#define ROOST_HUB_KEYROT_H

#include "hub.h"

/* Start the thread if hub->cfg.rotate_keys_every_ms > 0. */
void keyrot_start(struct hub *hub);
void keyrot_stop(struct hub *hub);

#endif
