/* retry: see retry.h. */
#include "retry.h"

#include <errno.h>
#include <math.h>
#include <sys/random.h>
#include <time.h>

void retry_init(struct retry *r, int64_t initial_ms, int64_t max_ms, double jitter)
{
	r->initial_ms = initial_ms > 0 ? initial_ms : 1;
	r->max_ms = max_ms > r->initial_ms ? max_ms : r->initial_ms;
	r->jitter = jitter < 0 ? 0 : jitter > 1 ? 1 : jitter;
	r->base_ms = r->initial_ms;
	/* Seeded apart per struct: hosts started together still spread out. */
	if (getrandom(&r->rng, sizeof r->rng, GRND_NONBLOCK) != (ssize_t)sizeof r->rng)
		r->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r;
	r->rng |= 1;
}

/* xorshift64*: plenty for spreading retries, and free of shared state. */
static uint64_t next_random(struct retry *r)
{
	r->rng ^= r->rng >> 12;
	r->rng ^= r->rng << 25;
	r->rng ^= r->rng >> 27;
	return r->rng * 0x2545F4914F6CDD1Dull;
}

int64_t retry_next_ms(struct retry *r)
{
	int64_t base = r->base_ms;
	int64_t span = (int64_t)llround((double)base * r->jitter);
	int64_t delay = base - (int64_t)(next_random(r) % (uint64_t)(span + 1));
	r->base_ms = base > r->max_ms / 2 ? r->max_ms : base * 2;
	return delay;
}

void retry_reset(struct retry *r)
{
	r->base_ms = r->initial_ms;
}

void retry_sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
	while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}
