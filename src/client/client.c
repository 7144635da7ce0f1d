/* client: requests to the hub API — curl handles with sane defaults, URLs
 * under a workspace, JSON requests, error printing — and resolving the
 * workspace a client works in. A struct client and its curl handle belong
 * to one thread at a time; client_curl gives other threads their own. */
#include "client.h"
#include "bwlimit.h"
#include "../core/json.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_CONNECT_TIMEOUT_S 10L
#define CLIENT_STALL_S           60L /* no byte for this long fails a transfer */

struct membuf {
	char *data;
	size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *cls)
{
	struct membuf *b = cls;
	size_t add = size * n;
	if (b->len + add > 64 * 1024 * 1024)
		return 0; /* refuse absurd responses */
	b->data = xrealloc(b->data, b->len + add + 1);
	memcpy(b->data + b->len, p, add);
	b->len += add;
	b->data[b->len] = 0;
	return add;
}

static void apply_defaults(const struct client *c, CURL *curl)
{
	if (c->cacert)
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->cacert);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
	                 c->connect_s > 0 ? c->connect_s : CLIENT_CONNECT_TIMEOUT_S);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Fail a transfer that stalls for a minute rather than hang forever. */
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
	                 c->stall_s > 0 ? c->stall_s : CLIENT_STALL_S);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "roost/" ROOST_VERSION);
	if (c->timeout_s > 0)
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, c->timeout_s);
	bwlimit_apply(curl); /* --max-up, --max-down: the process's total */
}

void client_curl_reset(const struct client *c, CURL *curl)
{
	curl_easy_reset(curl); /* keeps the connection, drops the last request's options */
	apply_defaults(c, curl);
}

CURL *client_curl(const struct client *c)
{
	CURL *curl = curl_easy_init();
	if (!curl)
		abort();
	apply_defaults(c, curl);
	return curl;
}

char *client_ws_url(const struct client *c, const char *rel, const char *path_arg)
{
	char *esc = NULL;
	if (path_arg) {
		CURL *curl = curl_easy_init();
		char *e = curl_easy_escape(curl, path_arg, 0);
		esc = xstrdup(e);
		curl_free(e);
		curl_easy_cleanup(curl);
	}
	char *relf = esc ? str_subst(rel, esc) : xstrdup(rel);
	char *url = xasprintf("%s/api/v1/workspaces/%lld%s", c->hub, (long long)c->ws_id, relf);
	free(relf);
	free(esc);
	return url;
}

long client_request(const struct client *c, CURL *curl, const char *method, const char *url,
                    json_t *body, json_t **out, char err[256])
{
	struct membuf resp = {0};
	struct curl_slist *h = NULL;
	char *auth = NULL, *payload = NULL;
	err[0] = 0;
	if (out)
		*out = NULL;
	client_curl_reset(c, curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (c->token) {
		auth = xasprintf("Authorization: Bearer %s", c->token);
		h = curl_slist_append(h, auth);
	}
	if (body) {
		payload = json_dumps(body, JSON_COMPACT);
		h = curl_slist_append(h, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
	}
	h = curl_slist_append(h, "Expect:");
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
	CURLcode cc = curl_easy_perform(curl);
	long status = 0;
	if (cc != CURLE_OK) {
		snprintf(err, 256, "cannot reach the hub at %s: %s", c->hub,
		         curl_easy_strerror(cc));
	} else {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		if (out && resp.len)
			*out = json_loadb(resp.data, resp.len, 0, NULL);
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	free(auth);
	free(payload);
	free(resp.data);
	return status;
}

long client_get_to(const struct client *c, CURL *curl, const char *url, curl_write_callback sink,
                   void *arg)
{
	client_curl_reset(c, curl);
	char *auth = c->token ? xasprintf("Authorization: Bearer %s", c->token) : NULL;
	struct curl_slist *h = auth ? curl_slist_append(NULL, auth) : NULL;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, arg);
	long status = 0;
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	free(auth);
	return status;
}

void client_error_text(long status, json_t *body, const char *err, char *out, size_t cap)
{
	json_t *e = json_object_get(body, "error");
	const char *msg = json_get_str(e, "message");
	const char *code = json_get_str(e, "code");
	if (err && *err)
		snprintf(out, cap, "%s", err);
	else if (code && strcmp(code, "out_of_space") == 0)
		snprintf(out, cap,
		         "the hub is out of space (%ld out_of_space); nothing more was stored: "
		         "ask the hub's operator to free space, then try again",
		         status);
	else if (code && strcmp(code, "quota_exceeded") == 0)
		snprintf(out, cap, "the workspace is over its quota (%ld quota_exceeded): %s",
		         status, msg ? msg : "");
	else if (msg)
		snprintf(out, cap, "%s (%s, HTTP %ld)", msg, code ? code : "error", status);
	else
		snprintf(out, cap, "the hub answered HTTP %ld", status);
}

void client_print_error(const char *what, long status, json_t *body, const char *err)
{
	char text[768];
	client_error_text(status, body, err, text, sizeof text);
	fprintf(stderr, "roost: %s: %s\n", what, text);
	if (status == 401)
		fprintf(stderr, "roost: log in again with 'roost login --hub URL --email EMAIL'\n");
}

long client_list(const struct client *c, CURL *curl, const char *path, json_t **out, char err[256])
{
	char *cursor = NULL;
	json_t *all = NULL;
	long st = 200;
	for (size_t page = 0; st == 200; page++) {
		char *rel = xasprintf("/list?limit=%d&path=%%s%s%s", CLIENT_LIST_PAGE,
		                      cursor ? "&cursor=" : "", cursor ? cursor : "");
		char *url = client_ws_url(c, rel, path);
		json_t *one = NULL;
		st = client_request(c, curl, "GET", url, NULL, &one, err);
		free(rel);
		free(url);
		free(cursor);
		cursor = NULL;
		if (st != 200) {
			json_decref(all);
			all = one;
			break;
		}
		const char *next = json_get_str(one, "next_cursor");
		/* The hub's cursor goes back into a URL: base64url only, and a bound
		 * on pages so a hub that never ends cannot keep us here. */
		if (next && (!*next ||
		             strspn(next, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		                          "0123456789-_") != strlen(next) ||
		             page >= CLIENT_LIST_PAGES_MAX)) {
			snprintf(err, 256, "the hub's listing of %s did not end as it should",
			         path);
			json_decref(one);
			json_decref(all);
			all = NULL;
			st = 0;
			break;
		}
		cursor = next ? xstrdup(next) : NULL;
		if (!all) {
			all = one;
		} else {
			json_array_extend(json_object_get(all, "entries"),
			                  json_object_get(one, "entries"));
			json_decref(one);
		}
		if (!cursor)
			break;
	}
	free(cursor);
	if (st == 200 && all)
		json_object_del(all, "next_cursor");
	*out = all;
	return st;
}

json_t *client_call(struct client *c, const char *method, const char *url, json_t *body,
                    const char *what)
{
	json_t *out = NULL;
	char err[256];
	long st = client_request(c, c->curl, method, url, body, &out, err);
	if (st >= 200 && st < 300)
		return out ? out : json_object();
	client_print_error(what, st, out, err);
	json_decref(out);
	return NULL;
}

int client_open_with(struct client *c, const char *hub, const char *token, const char *cacert,
                     const char *email, const char *workspace)
{
	c->hub = xstrdup(hub);
	c->token = xstrdup(token);
	c->email = xstrdup(email ? email : "");
	c->cacert = cacert ? xstrdup(cacert) : NULL;
	c->curl = client_curl(c);

	if (!workspace)
		workspace = getenv("ROOST_WORKSPACE");
	char *url = xasprintf("%s/api/v1/workspaces", c->hub);
	json_t *r = client_call(c, "GET", url, NULL, "list workspaces");
	free(url);
	if (!r)
		return 1;
	json_t *list = json_object_get(r, "workspaces"), *w, *pick = NULL;
	size_t i;
	json_array_foreach(list, i, w)
	{
		const char *name = json_get_str(w, "name");
		if (workspace ? (strcmp(name, workspace) == 0 ||
		                 atoll(workspace) == json_integer_value(json_object_get(w, "id")))
		              : strcmp(name, "default") == 0) {
			pick = w;
			break;
		}
	}
	if (!pick && !workspace)
		pick = json_array_get(list, 0);
	if (!pick) {
		fprintf(stderr, "roost: no workspace %s%s%s among yours\n", workspace ? "'" : "",
		        workspace ? workspace : "at all", workspace ? "'" : "");
		json_decref(r);
		return 1;
	}
	json_int_t id = json_integer_value(json_object_get(pick, "id"));
	c->ws_id = id;
	c->ws_name = xstrdup(json_get_str(pick, "name"));
	json_t *ch = json_object_get(pick, "chunking");
	int64_t v;
	c->chunking = chunker_defaults();
	if (json_get_int(ch, "min", &v))
		c->chunking.min = (uint32_t)v;
	if (json_get_int(ch, "avg", &v))
		c->chunking.avg = (uint32_t)v;
	if (json_get_int(ch, "max", &v))
		c->chunking.max = (uint32_t)v;
	json_decref(r);
	if (!chunker_params_valid(&c->chunking)) {
		fprintf(stderr, "roost: the workspace has invalid chunking settings\n");
		return 1;
	}
	return 0;
}

void client_close(struct client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->hub);
	free(c->token);
	free(c->email);
	free(c->cacert);
	free(c->ws_name);
}

char *client_invite_api(struct client *c, const char *token, const char *kind, const char *what)
{
	char *esc = curl_easy_escape(c->curl, token, 0);
	char *url = xasprintf("%s/api/v1/invites/%s", c->hub, esc ? esc : "");
	curl_free(esc);
	json_t *r = client_call(c, "GET", url, NULL, what);
	free(url);
	const char *k = json_get_str(r, "kind"), *api = json_get_str(r, "api");
	char *out = NULL;
	if (r && (!k || strcmp(k, kind) != 0))
		fprintf(stderr, "%s: this is %s; use %s\n", what,
		        k && strcmp(k, "host") == 0 ? "a host invite" : "a member invite",
		        k && strcmp(k, "host") == 0 ? "roost host join URL --dir DIR --label NAME"
		                                    : "roost join URL --email EMAIL");
	else if (r)
		out = xstrdup(
		    api && (strncmp(api, "http://", 7) == 0 || strncmp(api, "https://", 8) == 0)
		        ? api
		        : c->hub);
	json_decref(r);
	return out;
}

json_t *client_get_keys(void *cls)
{
	const struct client *c = cls;
	CURL *curl = client_curl(c);
	char *url = xasprintf("%s/api/v1/keys", c->hub);
	json_t *out = NULL;
	char err[256];
	long st = client_request(c, curl, "GET", url, NULL, &out, err);
	free(url);
	curl_easy_cleanup(curl);
	if (st != 200) {
		json_decref(out);
		return NULL;
	}
	return out;
}
