/* events: see events.h. */
#include "events.h"
#include "../core/util.h"

#include <stdlib.h>

static size_t feed_write(char *data, size_t size, size_t n, void *cls)
{
	sse_feed(cls, data, size * n);
	return size * n;
}

static int feed_progress(void *cls, curl_off_t dlt, curl_off_t dl, curl_off_t ult, curl_off_t ul)
{
	const struct client_feed *f = cls;
	return f->stop(f->stop_cls) ? 1 : 0;
}

long client_feed_follow(const struct client *c, CURL *curl, const struct client_feed *f,
                        CURLcode *cc)
{
	char *rel = f->since >= 0 ? xasprintf("/events?since=%lld", (long long)f->since)
	                          : xstrdup("/events");
	char *url = client_ws_url(c, rel, NULL);
	free(rel);
	char *auth = xasprintf("Authorization: Bearer %s", c->token);
	struct curl_slist *hd = curl_slist_append(NULL, auth);
	client_curl_reset(c, curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, feed_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, f->sse);
	curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
	/* The hub sends a heartbeat every 15 s: silence for a minute is a dead
	 * link (client_curl_reset's low-speed limit). */
	if (f->stop) {
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, feed_progress);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)f);
	}
	*cc = curl_easy_perform(curl);
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hd);
	free(auth);
	free(url);
	return status;
}
