/* guard: throttling password checks per account and client address
 * (guard.c).
 *
 * Threads: request threads; the guard's table has its own lock. */
#ifndef ROOST_HUB_GUARD_H
#define ROOST_HUB_GUARD_H

#include "hub.h"

struct guard;
struct guard *guard_new(int free_tries); /* NULL when free_tries <= 0: no throttle */
void guard_free(struct guard *g);
/* May this client try a password (for account, if not NULL)? 0: yes, and the
 * attempt is charged until guard_result; else ms to wait. */
int64_t guard_admit(struct req *r, const char *account);
/* How the admitted attempt went: > 0 right (the account's delays end), 0
 * wrong (the charge stays), < 0 not a guess (busy, errors: charge refunded). */
void guard_result(struct req *r, const char *account, int outcome);
#endif
