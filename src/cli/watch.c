/* watch: follow the change feed (Server-Sent Events), reconnecting from the
 * last seq seen so nothing is missed or printed twice. */
#include "cmd.h"
#include "../core/json.h"
#include "../core/retry.h"
#include "../core/sse.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct watcher {
	bool json;
	int64_t last_seq;
	struct sse sse;
};

static void print_event(void *cls, const char *event, const char *data, size_t len)
{
	struct watcher *w = cls;
	(void)event;
	json_t *ev = json_loadb(data, len, 0, NULL);
	int64_t seq = 0;
	if (ev && json_get_int(ev, "seq", &seq)) {
		w->last_seq = seq;
		if (w->json) {
			puts(data);
		} else {
			json_t *p = json_object_get(ev, "payload");
			const char *path = json_get_str(p, "path"), *from = json_get_str(p, "from");
			const char *to = json_get_str(p, "to");
			int64_t ver = 0;
			printf("%-6lld %-16s %s", (long long)seq, json_get_str(ev, "kind"),
			       from   ? from
			       : path ? path
			              : "");
			if (to)
				printf(" -> %s", to);
			if (json_get_int(p, "version", &ver))
				printf(" (version %lld)", (long long)ver);
			putchar('\n');
		}
		fflush(stdout);
	}
	json_decref(ev);
}

static size_t sse_write(char *data, size_t size, size_t n, void *cls)
{
	struct watcher *w = cls;
	sse_feed(&w->sse, data, size * n);
	return size * n;
}

int cmd_watch(struct opts *o)
{
	if (need_args(o, 0, 0, "watch", "[--since SEQ] [--json]"))
		return 2;
	struct watcher w = {.json = o->json, .last_seq = -1};
	sse_init(&w.sse, print_event, &w);
	if (o->since) {
		w.last_seq = strcmp(o->since, "0") == 0 ? 0 : parse_id(o->since);
		if (w.last_seq < 0) {
			fprintf(stderr, "roost watch: --since takes a change number (0 or more)\n");
			return 2;
		}
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *auth = xasprintf("Authorization: Bearer %s", c.token);
	struct curl_slist *hdr = curl_slist_append(NULL, auth);
	int rc = 1;
	struct retry rt; /* failures in a row wait 2, 4, 8, 16, then 30 s */
	retry_init(&rt, 2000, 30000, 0);
	for (;;) {
		char *rel = w.last_seq >= 0 ? xasprintf("/events?since=%lld", (long long)w.last_seq)
		                            : xstrdup("/events");
		char *full = client_ws_url(&c, rel, NULL);
		free(rel);
		CURL *curl = client_curl(&c);
		curl_easy_setopt(curl, CURLOPT_URL, full);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sse_write);
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, &w);
		curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
		/* The hub sends a heartbeat every 15 s: silence for a minute is a dead link. */
		curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
		CURLcode cc = curl_easy_perform(curl);
		long status = 0;
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_cleanup(curl);
		free(full);
		sse_reset(&w.sse);
		if (status == 401 || status == 404 || status == 400) {
			fprintf(stderr, "roost watch: the hub refused the feed (HTTP %ld)%s\n",
			        status, status == 401 ? "; log in again" : "");
			break;
		}
		int64_t delay = 1000; /* the feed ended cleanly: back soon */
		if (cc == CURLE_OK)
			retry_reset(&rt);
		else
			delay = retry_next_ms(&rt);
		fprintf(stderr, "roost watch: %s; reconnecting in %d s from change %lld\n",
		        cc == CURLE_OK ? "the feed ended" : curl_easy_strerror(cc),
		        (int)(delay / 1000), (long long)w.last_seq);
		retry_sleep_ms(delay);
	}
	curl_slist_free_all(hdr);
	free(auth);
	sse_fini(&w.sse);
	client_close(&c);
	return rc;
}
