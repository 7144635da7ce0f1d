/* retry: the delays between tries of something that fails for a while (the
 * hub away, a relay restarting): each failure in a row doubles the delay
 * from initial_ms up to max_ms, and a part of each delay (jitter) is drawn at
 * random so many clients do not retry in step. Pure: the caller sleeps how it
 * likes (plainly, or waking early on a stop flag). One struct retry belongs
 * to one thread.
 *
 * Not the password throttle: ratelimit.h's struct backoff charges attempts
 * against a key; this one only spaces out a loop's own retries. */
#ifndef ROOST_RETRY_H
#define ROOST_RETRY_H

#include <stdint.h>

struct retry {
	int64_t initial_ms, max_ms; /* the first delay, the longest */
	double jitter;              /* 0..1: the part of each delay drawn at random */
	int64_t base_ms;            /* the next delay before jitter */
	uint64_t rng;               /* xorshift state: never 0 */
};

/* Start at initial_ms (> 0); jitter 0.5 draws each delay from [base/2, base]. */
void retry_init(struct retry *r, int64_t initial_ms, int64_t max_ms, double jitter);
/* The delay before the next try, in [base - round(base * jitter), base]; the
 * base then doubles, up to max_ms. */
int64_t retry_next_ms(struct retry *r);
/* A success: the next failure waits initial_ms again. */
void retry_reset(struct retry *r);
/* Sleep ms milliseconds (EINTR resumed). */
void retry_sleep_ms(int64_t ms);

#endif
