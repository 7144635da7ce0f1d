/* watch: follow the change feed (Server-Sent Events), reconnecting from the
 * last seq seen so nothing is missed or printed twice.
 *
 * Threads: the CLI's one thread.
 */
#include "cmd.h"
#include "../client/events.h"
#include "../core/json.h"
#include "../core/retry.h"
#include "../core/util.h"

#define WATCH_RECONNECT_MS 1000  /* after the hub ended the feed cleanly (a restart) */
#define WATCH_HEALTHY_MS   10000 /* a stream that lasted this long was no failure */
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
	int rc = 1;
	struct retry rt; /* failures in a row wait 2, 4, 8, 16, then 30 s */
	retry_init(&rt, 2000, 30000, 0);
	for (;;) {
		struct client_feed f = {.since = w.last_seq, .sse = &w.sse};
		CURLcode cc;
		int64_t from = w.last_seq, started = mono_ms();
		long status = client_feed_follow(&c, c.curl, &f, &cc);
		sse_reset(&w.sse);
		if (status == 401 || status == 404 || status == 400) {
			fprintf(stderr, "roost watch: the hub refused the feed (HTTP %ld)%s\n",
			        status, status == 401 ? "; log in again" : "");
			break;
		}
		int64_t delay = WATCH_RECONNECT_MS; /* the feed ended cleanly: back soon */
		/* A stream that worked (it brought a change, or lasted) and was then
		 * cut is a fresh failure: a flaky network must not leave the watch
		 * waiting 30 s after every cut once four have happened. */
		if (cc == CURLE_OK || w.last_seq != from || mono_ms() - started > WATCH_HEALTHY_MS)
			retry_reset(&rt);
		else
			delay = retry_next_ms(&rt);
		fprintf(stderr, "roost watch: %s; reconnecting in %d s from change %lld\n",
		        cc == CURLE_OK ? "the feed ended" : curl_easy_strerror(cc),
		        (int)(delay / 1000), (long long)w.last_seq);
		retry_sleep_ms(delay);
	}
	sse_fini(&w.sse);
	client_close(&c);
	return rc;
}
