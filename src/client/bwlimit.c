/* bwlimit: shared token buckets over libcurl transfers (bwlimit.h). */
#include "bwlimit.h"
#include "../core/ratelimit.h"
#include "../core/util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BURST_S 0.25 /* a bucket holds this many seconds' worth */
/* A longer debt is paid in naps this long (a stopping agent waits no more). */
#define NAP_MAX_MS  2000
#define HANDLES_MAX 256 /* transfers tracked at once (a new one replaces the oldest) */

struct seen {
	CURL *curl;
	curl_off_t down, up;             /* the transfer's counts at its last callback */
	curl_off_t down_total, up_total; /* … and its sizes, when known */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static double rate[2]; /* [0] up, [1] down; 0: none */
static struct bucket bucket[2];
static struct seen seen[HANDLES_MAX];
static size_t next_slot;

void bwlimit_set(double up_bps, double down_bps)
{
	pthread_mutex_lock(&mu);
	rate[0] = up_bps > 0 ? up_bps : 0;
	rate[1] = down_bps > 0 ? down_bps : 0;
	memset(bucket, 0, sizeof bucket);
	pthread_mutex_unlock(&mu);
}

/* Under mu: the handle's entry, made (counting from zero) if it has none. */
static struct seen *entry(CURL *curl)
{
	for (size_t i = 0; i < HANDLES_MAX; i++)
		if (seen[i].curl == curl)
			return &seen[i];
	struct seen *s = &seen[next_slot];
	next_slot = (next_slot + 1) % HANDLES_MAX;
	*s = (struct seen){.curl = curl};
	return s;
}

/* Under mu: the bytes moved since the last callback of this transfer. A new
 * transfer on a handle counts from zero: bwlimit_apply resets the entry when
 * the client sets a handle up for a request, and counts that went down or
 * sizes that changed say so too (libcurl need not call back at 0). */
static void moved(CURL *curl, curl_off_t down, curl_off_t down_total, curl_off_t up,
                  curl_off_t up_total, double out[2])
{
	struct seen *s = entry(curl);
	bool fresh =
	    down < s->down || up < s->up || down_total != s->down_total || up_total != s->up_total;
	out[0] = (double)(fresh ? up : up - s->up);
	out[1] = (double)(fresh ? down : down - s->down);
	*s = (struct seen){curl, down, up, down_total, up_total};
}

static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	int64_t wait = 0;
	pthread_mutex_lock(&mu);
	double n[2];
	moved(clientp, dlnow, dltotal, ulnow, ultotal, n);
	int64_t now = mono_ms();
	for (int d = 0; d < 2; d++) {
		if (rate[d] <= 0)
			continue;
		double burst = rate[d] * BURST_S;
		if (n[d] > 0)
			bucket_take(&bucket[d], rate[d], burst, n[d], now);
		double level = bucket_level(&bucket[d], rate[d], burst, now);
		if (level < 0) {
			int64_t w = (int64_t)(-level * 1000.0 / rate[d]) + 1;
			if (w > wait)
				wait = w;
		}
	}
	pthread_mutex_unlock(&mu);
	if (wait > NAP_MAX_MS)
		wait = NAP_MAX_MS;
	if (wait > 0) {
		struct timespec ts = {wait / 1000, (wait % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	return 0;
}

void bwlimit_apply(CURL *curl)
{
	pthread_mutex_lock(&mu);
	bool on = rate[0] > 0 || rate[1] > 0;
	if (on)
		*entry(curl) = (struct seen){.curl = curl}; /* a new request counts from 0 */
	pthread_mutex_unlock(&mu);
	if (!on)
		return;
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)curl);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
}

double bwlimit_parse(const char *s)
{
	if (!s || !*s)
		return -1;
	char *end;
	double v = strtod(s, &end);
	if (end == s || !(v >= 0))
		return -1;
	double mul = 1;
	if (*end == 'K' || *end == 'k')
		mul = 1024.0, end++;
	else if (*end == 'M')
		mul = 1048576.0, end++;
	else if (*end == 'G')
		mul = 1073741824.0, end++;
	if (mul > 1 && *end == 'i')
		end++;
	if (*end == 'B')
		end++;
	if (strcmp(end, "/s") == 0)
		end += 2;
	if (*end || v * mul > 1e15)
		return -1;
	return v * mul;
}
