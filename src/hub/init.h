/* init: creating a hub (schema, signing key, owner, workspace "default"),
 * the database URL, rotating keys and the demo's host (init.c).
 *
 * Threads: the main thread of roost init, demo, serve and admin. */
#ifndef ROOST_HUB_INIT_H
#define ROOST_HUB_INIT_H

#include "hub.h"

int hub_init(const char *data_dir, const char *db_url, const char *email, const char *password,
             bool quiet);
/* The metadata database URL for a hub: db_url, else SQLite in data_dir. New string. */
char *hub_db_url(const char *data_dir, const char *db_url);
int hub_rotate_keys(const char *data_dir, const char *db_url);
/* Retire the signing key if it is at least older_than_ms old (0: now) and
 * sign with a new one: 1 rotated, 0 not due (or another hub on the database
 * just did it), -1 a database error. Retired keys keep verifying for
 * TOKEN_TTL_MAX_MS (tokens.c). */
int hub_keys_rotate(struct db *db, int64_t older_than_ms);
int hub_demo_host(const char *data_dir, const char *db_url, const char *email, const char *dir,
                  const char *hub_url);
#endif
