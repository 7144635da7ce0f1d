/* watch: follow the change feed (Server-Sent Events), reconnecting from the
 * last seq seen so nothing is missed or printed twice. */
#include "cmd.h"
#include "../core/json.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct watcher {
	bool json;
	int64_t last_seq;
	char line[65536];
	size_t len;
	char event[64];
	char *data;
};

static void print_event(struct watcher *w)
{
	json_t *ev = w->data ? json_loads(w->data, 0, NULL) : NULL;
	int64_t seq = 0;
	if (ev && json_get_int(ev, "seq", &seq)) {
		w->last_seq = seq;
		if (w->json) {
			puts(w->data);
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
	free(w->data);
	w->data = NULL;
	w->event[0] = 0;
}

/* Server-Sent Events: "field: value" lines; a blank line ends an event. */
static void sse_line(struct watcher *w, char *line)
{
	if (!*line) {
		if (w->data)
			print_event(w);
		return;
	}
	if (line[0] == ':')
		return; /* comment: the stream's greeting or a heartbeat */
	char *colon = strchr(line, ':');
	char *val = colon ? colon + 1 : line + strlen(line);
	if (colon)
		*colon = 0;
	if (*val == ' ')
		val++;
	if (strcmp(line, "data") == 0) {
		char *d = w->data ? xasprintf("%s\n%s", w->data, val) : xstrdup(val);
		free(w->data);
		w->data = d;
	} else if (strcmp(line, "event") == 0) {
		snprintf(w->event, sizeof w->event, "%s", val);
	}
}

static size_t sse_write(char *data, size_t size, size_t n, void *cls)
{
	struct watcher *w = cls;
	size_t len = size * n;
	for (size_t i = 0; i < len; i++) {
		char ch = data[i];
		if (ch == '\n') {
			w->line[w->len] = 0;
			if (w->len && w->line[w->len - 1] == '\r')
				w->line[w->len - 1] = 0;
			sse_line(w, w->line);
			w->len = 0;
		} else if (w->len + 1 < sizeof w->line) {
			w->line[w->len++] = ch;
		}
	}
	return len;
}

int cmd_watch(struct opts *o)
{
	if (need_args(o, 0, 0, "watch", "[--since SEQ] [--json]"))
		return 2;
	struct watcher w = {.json = o->json, .last_seq = -1};
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
	for (int failures = 0;;) {
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
		w.len = 0;
		free(w.data);
		w.data = NULL;
		if (status == 401 || status == 404 || status == 400) {
			fprintf(stderr, "roost watch: the hub refused the feed (HTTP %ld)%s\n",
			        status, status == 401 ? "; log in again" : "");
			break;
		}
		failures = cc == CURLE_OK ? 0 : failures + 1;
		int delay = failures < 5 ? 1 << failures : 30;
		fprintf(stderr, "roost watch: %s; reconnecting in %d s from change %lld\n",
		        cc == CURLE_OK ? "the feed ended" : curl_easy_strerror(cc), delay,
		        (long long)w.last_seq);
		sleep((unsigned)delay);
	}
	curl_slist_free_all(hdr);
	free(auth);
	client_close(&c);
	return rc;
}
