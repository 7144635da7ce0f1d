#include "client.h"
#include "../core/json.h"
#include "../core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

char *client_config_path(void)
{
	const char *x = getenv("XDG_CONFIG_HOME");
	if (x && *x)
		return xasprintf("%s/roost/config.json", x);
	const char *home = getenv("HOME");
	return xasprintf("%s/.config/roost/config.json", home ? home : ".");
}

int client_save_config(const char *hub, const char *token, const char *email, const char *cacert)
{
	char *path = client_config_path();
	char *dir = xstrdup(path);
	*strrchr(dir, '/') = 0;
	int rc = mkdir_p(dir, 0700);
	json_t *o = json_pack("{s:s, s:s, s:s}", "hub", hub, "token", token, "email", email);
	if (cacert)
		json_object_set_new(o, "cacert", json_string(cacert));
	char *s = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	if (rc == 0)
		rc = write_file_atomic(path, s, strlen(s), 0600);
	if (rc != 0) {
		fprintf(stderr, "roost: cannot save credentials to %s: %s\n", path, strerror(-rc));
		rc = -1;
	}
	free(s);
	free(dir);
	free(path);
	return rc;
}

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
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Fail a transfer that stalls for a minute rather than hang forever. */
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "roost/" ROOST_VERSION);
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
	curl_easy_reset(curl); /* keeps the connection, drops the last request's options */
	apply_defaults(c, curl);
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

void client_print_error(const char *what, long status, json_t *body, const char *err)
{
	json_t *e = json_object_get(body, "error");
	const char *msg = json_get_str(e, "message");
	const char *code = json_get_str(e, "code");
	if (err && *err)
		fprintf(stderr, "roost: %s: %s\n", what, err);
	else if (msg)
		fprintf(stderr, "roost: %s: %s (%s, HTTP %ld)\n", what, msg, code ? code : "error",
		        status);
	else
		fprintf(stderr, "roost: %s: the hub answered HTTP %ld\n", what, status);
	if (status == 401)
		fprintf(stderr, "roost: log in again with 'roost login --hub URL --email EMAIL'\n");
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

int client_open(struct client *c, const char *workspace)
{
	memset(c, 0, sizeof *c);
	char *path = client_config_path();
	json_error_t jerr;
	json_t *cfg = json_load_file(path, 0, &jerr);
	if (!cfg || !json_get_str(cfg, "hub") || !json_get_str(cfg, "token")) {
		fprintf(stderr,
		        "roost: not logged in (no credentials in %s); run 'roost login "
		        "--hub URL --email EMAIL'\n",
		        path);
		free(path);
		json_decref(cfg);
		return 1;
	}
	free(path);
	int rc =
	    client_open_with(c, json_get_str(cfg, "hub"), json_get_str(cfg, "token"),
	                     json_get_str(cfg, "cacert"), json_get_str(cfg, "email"), workspace);
	json_decref(cfg);
	return rc;
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

char *read_password(const char *prompt, bool confirm)
{
	return read_password_env("ROOST_PASSWORD", prompt, confirm);
}

char *read_password_env(const char *var, const char *prompt, bool confirm)
{
	const char *env = getenv(var);
	if (env && *env)
		return xstrdup(env);
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "roost: no terminal to ask for a password; set %s\n", var);
		return NULL;
	}
	char *result = NULL;
	for (int round = 0; round < (confirm ? 2 : 1); round++) {
		struct termios old, quiet;
		char buf[1024];
		const char *p = round ? "Again: " : prompt;
		write_all(fd, p, strlen(p));
		tcgetattr(fd, &old);
		quiet = old;
		quiet.c_lflag &= (tcflag_t)~ECHO;
		tcsetattr(fd, TCSAFLUSH, &quiet);
		ssize_t n = read(fd, buf, sizeof buf - 1);
		tcsetattr(fd, TCSAFLUSH, &old);
		write_all(fd, "\n", 1);
		if (n <= 0)
			break;
		buf[n] = 0;
		buf[strcspn(buf, "\r\n")] = 0;
		if (round == 0) {
			result = xstrdup(buf);
		} else if (strcmp(result, buf) != 0) {
			fprintf(stderr, "roost: the passwords differ\n");
			free(result);
			result = NULL;
		}
	}
	close(fd);
	return result;
}
