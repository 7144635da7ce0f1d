/* fetch_batch: the bytes of many small files (one chunk each) from the hosts
 * that hold them, many to a request (POST /chunks/batch, serve_batch.c),
 * instead of one GET per file. sync_apply.c writes them.
 *
 * Where to ask, and the token, come from the hub's manifest of one of the
 * files (one call per batch): the online hosts holding its chunk, each asked
 * at its direct URL and, when that does not answer, at its relay URL (the
 * manifest's "sources"; an older hub gives the direct "hosts" alone). Files
 * that no host gave are left without data: the caller fetches them one by one
 * (fetch.c's sources, the hub last). Every chunk is verified against its hash.
 *
 * Threads: the sync thread, with its own curl handle. */
#include "host.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASK_MAX       1024         /* hashes in one request: serve_batch.c's cap */
#define ANSWER_MAX    (40ll << 20) /* a bigger answer is refused */
#define MANIFEST_ASKS 3            /* files whose manifest may name the sources */
#define CONNECT_S     5            /* a host that does not answer by then: its relay */
#define STALL_S       30           /* … and one that sends nothing for this long */

struct body {
	char *buf;
	size_t len, cap;
};

static size_t into_body(char *p, size_t size, size_t n, void *cls)
{
	struct body *b = cls;
	size_t add = size * n;
	if (b->len + add > ANSWER_MAX)
		return 0;
	if (b->len + add > b->cap) {
		b->cap = (b->len + add) * 2;
		b->buf = xrealloc(b->buf, b->cap);
	}
	memcpy(b->buf + b->len, p, add);
	b->len += add;
	return add;
}

/* POST {"hashes": ...} to base/chunks/batch; the answer's body, or false. */
static bool ask(struct host *h, CURL *curl, const char *base, const char *tok, json_t *hashes,
                struct body *out)
{
	json_t *req = json_pack("{s:O}", "hashes", hashes);
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	size_t len = strlen(base);
	while (len > 0 && base[len - 1] == '/') /* a relay URL ends in '/' */
		len--;
	char *url = xasprintf("%.*s/chunks/batch", (int)len, base);
	char *auth = xasprintf("Authorization: Bearer %s", tok);
	struct curl_slist *hd = curl_slist_append(NULL, auth);
	hd = curl_slist_append(hd, "Content-Type: application/json");
	/* Another host's or a relay's certificate: the peers' CA, not the hub's. */
	struct client peer = {
	    .cacert = (char *)fetch_peer_ca(h), .connect_s = CONNECT_S, .stall_s = STALL_S};
	client_curl_reset(&peer, curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, into_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
	long status = 0;
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hd);
	free(auth);
	free(url);
	free(body);
	if (status != 200)
		log_warn("batch of %zu chunks from %s: %s", json_array_size(hashes), base,
		         status ? "refused" : "no answer");
	return status == 200;
}

/* Read the answer's frames (one per hash asked, in order) into want[idx[k]];
 * each chunk verified. The number of chunks taken. */
static size_t take(const struct body *b, struct batch_want *want, const size_t *idx, size_t n)
{
	size_t pos = 0, got = 0;
	for (size_t k = 0; k < n && b->buf; k++) {
		struct batch_want *w = &want[idx[k]];
		const char *line = b->buf + pos, *nl = memchr(line, '\n', b->len - pos);
		if (!nl || nl - line < HASH_HEX_LEN + 2 || memcmp(line, w->hash, HASH_HEX_LEN) != 0)
			break; /* not the frame we asked for: trust nothing after it */
		pos = (size_t)(nl - b->buf) + 1;
		if (line[HASH_HEX_LEN + 1] == '-')
			continue;
		long long size = strtoll(line + HASH_HEX_LEN + 1, NULL, 10);
		if (size != w->size || (size_t)size > b->len - pos)
			break;
		char hex[HASH_HEX_LEN + 1];
		hash_hex(b->buf + pos, (size_t)size, hex);
		if (strcmp(hex, w->hash) == 0 && !w->data) {
			w->data = xmalloc((size_t)size);
			memcpy(w->data, b->buf + pos, (size_t)size);
			got++;
		}
		pos += (size_t)size;
	}
	return got;
}

/* Ask one host (at base) for every chunk still wanted, ASK_MAX at a time.
 * *failed: it did not answer or refused (its other URL may do better). */
static size_t from_host(struct host *h, CURL *curl, const char *base, const char *tok,
                        struct batch_want *want, size_t n, bool *failed)
{
	size_t got = 0, *idx = xmalloc(ASK_MAX * sizeof *idx);
	*failed = false;
	for (size_t i = 0; i < n && !atomic_load(&h->stop);) {
		json_t *hashes = json_array();
		size_t k = 0;
		for (; i < n && k < ASK_MAX; i++)
			if (!want[i].data && want[i].size > 0) {
				idx[k++] = i;
				json_array_append_new(hashes, json_string(want[i].hash));
			}
		struct body b = {0};
		bool answered = k && ask(h, curl, base, tok, hashes, &b);
		size_t took = answered ? take(&b, want, idx, k) : 0;
		*failed = k && !answered;
		got += took;
		json_decref(hashes);
		free(b.buf);
		if (k && !took)
			break; /* this host has none of them, or is failing */
	}
	free(idx);
	return got;
}

static bool is_http_url(const char *url)
{
	return url && (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8));
}

/* Ask holder v (a manifest's sources entry {url, relay_url}, or an older
 * hub's hosts entry: the direct URL alone) at its direct URL, then at its
 * relay URL if the direct one did not answer. */
static size_t from_holder(struct host *h, CURL *curl, json_t *v, const char *tok,
                          struct batch_want *want, size_t n)
{
	const char *urls[2] = {json_is_string(v) ? json_string_value(v) : json_get_str(v, "url"),
	                       json_get_str(v, "relay_url")};
	size_t got = 0;
	for (int k = 0; k < 2; k++) {
		if (!is_http_url(urls[k]))
			continue;
		bool failed;
		got += from_host(h, curl, urls[k], tok, want, n, &failed);
		if (!failed)
			break; /* it answered: its relay would give the same */
	}
	return got;
}

size_t fetch_batch(struct host *h, CURL *curl, struct batch_want *want, size_t n)
{
	size_t got = 0;
	json_t *tried = json_object();
	for (size_t i = 0, asks = 0; i < n && asks < MANIFEST_ASKS && got < n; i++) {
		if (want[i].data)
			continue;
		asks++;
		bool gone = false;
		json_t *m = fetch_manifest(h, curl, want[i].path, want[i].version, &gone);
		const char *tok = json_get_str(m, "chunk_token"), *key;
		json_t *srcs = json_object_get(m, "sources"), *v;
		if (!json_is_object(srcs))
			srcs = json_object_get(m, "hosts");
		json_object_foreach(srcs, key, v)
		{
			if (!tok || atoll(key) == h->host_id || json_object_get(tried, key))
				continue;
			json_object_set_new(tried, key, json_true());
			size_t took = from_holder(h, curl, v, tok, want, n);
			if (took)
				atomic_fetch_add(&h->from_peer, (long long)took);
			got += took;
		}
		json_decref(m);
	}
	json_decref(tried);
	return got;
}
