#include "cli.h"
#include "cmd.h"
#include "client.h"
#include "transfer.h"
#include "../core/json.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int parse(int argc, char **argv, struct opts *o, const char *cmd)
{
	memset(o, 0, sizeof *o);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char **val = NULL;
		if (strcmp(a, "--json") == 0)
			o->json = true;
		else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
			o->quiet = true;
		else if (strcmp(a, "-p") == 0 || strcmp(a, "--parents") == 0)
			o->parents = true;
		else if (strcmp(a, "--workspace") == 0 || strcmp(a, "-w") == 0)
			val = &o->workspace;
		else if (strcmp(a, "--hub") == 0)
			val = &o->hub;
		else if (strcmp(a, "--cacert") == 0)
			val = &o->cacert;
		else if (strcmp(a, "--password") == 0)
			val = &o->password;
		else if (strcmp(a, "--write") == 0)
			o->write = true;
		else if (strcmp(a, "--email") == 0)
			val = &o->email;
		else if (strcmp(a, "--version") == 0)
			val = &o->version;
		else if (strcmp(a, "--since") == 0)
			val = &o->since;
		else if (strcmp(a, "--limit") == 0)
			val = &o->limit;
		else if (strcmp(a, "--role") == 0)
			val = &o->role;
		else if (strcmp(a, "--expires") == 0)
			val = &o->expires;
		else if (strcmp(a, "--action") == 0)
			val = &o->action;
		else if (strcmp(a, "--dir") == 0)
			val = &o->dir;
		else if (strcmp(a, "--label") == 0)
			val = &o->label;
		else if (strcmp(a, "--name") == 0)
			val = &o->name;
		else if (strcmp(a, "--folders") == 0)
			val = &o->folders;
		else if (strcmp(a, "--listen") == 0)
			val = &o->listen;
		else if (strcmp(a, "--heartbeat") == 0)
			val = &o->heartbeat;
		else if (strcmp(a, "--cache-max") == 0)
			val = &o->cache_max;
		else if (strcmp(a, "--reserve") == 0)
			val = &o->reserve;
		else if (strcmp(a, "--relay") == 0)
			val = &o->relay;
		else if (strcmp(a, "--relay-ca") == 0)
			val = &o->relay_ca;
		else if (strcmp(a, "--parallel") == 0) {
			if (i + 1 >= argc || (o->parallel = atoi(argv[++i])) < 1 ||
			    o->parallel > 64) {
				fprintf(stderr, "roost %s: --parallel takes 1..64\n", cmd);
				return 2;
			}
		} else if (a[0] == '-' && a[1] && strcmp(a, "-") != 0) {
			fprintf(stderr, "roost %s: unknown option %s (see 'roost help')\n", cmd, a);
			return 2;
		} else if (o->npos < 8) {
			o->pos[o->npos++] = argv[i];
		} else {
			fprintf(stderr, "roost %s: too many arguments\n", cmd);
			return 2;
		}
		if (val) {
			if (i + 1 >= argc) {
				fprintf(stderr, "roost %s: %s needs a value\n", cmd, a);
				return 2;
			}
			*val = argv[++i];
		}
	}
	return 0;
}

int need_args(const struct opts *o, int min, int max, const char *cmd, const char *usage)
{
	if (o->npos < min || o->npos > max) {
		fprintf(stderr, "usage: roost %s %s\n", cmd, usage);
		return 2;
	}
	return 0;
}

static int cmd_login(struct opts *o)
{
	if (!o->hub || !o->email) {
		fprintf(stderr, "usage: roost login --hub URL --email EMAIL\n");
		return 2;
	}
	struct client c = {0};
	c.hub = xstrdup(o->hub);
	size_t n = strlen(c.hub);
	while (n > 0 && c.hub[n - 1] == '/')
		c.hub[--n] = 0;
	c.cacert = o->cacert ? realpath(o->cacert, NULL) : NULL;
	if (o->cacert && !c.cacert) {
		fprintf(stderr, "roost login: cannot read --cacert %s\n", o->cacert);
		client_close(&c);
		return 2;
	}
	c.curl = client_curl(&c);
	char *pw = read_password("Password: ", false);
	int rc = 1;
	if (pw) {
		char *url = xasprintf("%s/api/v1/login", c.hub);
		json_t *body = json_pack("{s:s, s:s, s:s}", "email", o->email, "password", pw,
		                         "client", "cli");
		json_t *r = client_call(&c, "POST", url, body, "login");
		json_decref(body);
		free(url);
		const char *tok = json_get_str(r, "token");
		if (tok && client_save_config(c.hub, tok, o->email, c.cacert) == 0) {
			char *path = client_config_path();
			printf("logged in to %s as %s (credentials in %s)\n", c.hub, o->email,
			       path);
			free(path);
			rc = 0;
		}
		json_decref(r);
		memset(pw, 0, strlen(pw));
		free(pw);
	}
	client_close(&c);
	return rc;
}

static int cmd_logout(struct opts *o)
{
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = xasprintf("%s/api/v1/logout", c.hub);
	json_t *r = client_call(&c, "POST", url, NULL, "logout");
	free(url);
	json_decref(r);
	char *path = client_config_path();
	remove(path);
	free(path);
	client_close(&c);
	printf("logged out\n");
	return 0;
}

void fmt_time(int64_t ms, char buf[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%d %H:%M", &tm);
}

void print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2));
	puts(s);
	free(s);
}

int show(struct opts *o, const char *rel, const char *arg, const char *what, const char *key,
         void (*print)(json_t *answer, const struct client *c))
{
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = client_ws_url(&c, rel, arg);
	json_t *r = client_call(&c, "GET", url, NULL, what);
	free(url);
	if (r && o->json)
		print_json(key ? json_object_get(r, key) : r);
	else if (r)
		print(r, &c);
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

static void print_listing(json_t *r, const struct client *c)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(r, "entries"), i, e)
	{
		char sz[32], when[32];
		int64_t size = 0, mod = 0;
		bool folder = strcmp(json_get_str(e, "type"), "folder") == 0;
		json_get_int(e, "size", &size);
		json_get_int(e, "modified_at", &mod);
		fmt_time(mod, when);
		printf("%-10s  %s  %s%s\n", folder ? "-" : human_bytes(size, sz), when,
		       json_get_str(e, "name"), folder ? "/" : "");
	}
}

static int cmd_ls(struct opts *o)
{
	if (need_args(o, 0, 1, "ls", "[PATH] [--json]"))
		return 2;
	return show(o, "/list?path=%s", o->npos ? o->pos[0] : "/", "ls", "entries", print_listing);
}

int simple_call(struct opts *o, const char *method, const char *url_fmt, const char *arg,
                json_t *body, const char *what, const char *done_fmt)
{
	struct client c;
	if (client_open(&c, o->workspace)) {
		json_decref(body);
		return 1;
	}
	char *url = client_ws_url(&c, url_fmt, arg);
	json_t *r = client_call(&c, method, url, body, what);
	free(url);
	json_decref(body);
	int rc = r ? 0 : 1;
	if (r && o->json) {
		char *s = json_dumps(r, JSON_INDENT(2));
		puts(s);
		free(s);
	} else if (r && done_fmt) {
		char *done = str_subst(done_fmt, arg ? arg : "");
		puts(done);
		free(done);
	}
	json_decref(r);
	client_close(&c);
	return rc;
}

static int cmd_mkdir(struct opts *o)
{
	if (need_args(o, 1, 1, "mkdir", "PATH [-p]"))
		return 2;
	return simple_call(o, "POST", "/folders", o->pos[0],
	                   json_pack("{s:s, s:b}", "path", o->pos[0], "parents", o->parents),
	                   "mkdir", "created %s");
}

static int cmd_mv(struct opts *o)
{
	if (need_args(o, 2, 2, "mv", "FROM TO"))
		return 2;
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	/* "mv a dir/" moves into dir, keeping the name. */
	const char *from = o->pos[0], *to = o->pos[1];
	char *dest = NULL;
	if (to[strlen(to) - 1] == '/') {
		const char *slash = strrchr(from, '/');
		dest = xasprintf("%s%s", to, slash ? slash + 1 : from);
	} else {
		dest = xstrdup(to);
	}
	char *url = client_ws_url(&c, "/move", NULL);
	json_t *body = json_pack("{s:s, s:s}", "from", from, "to", dest);
	json_t *r = client_call(&c, "POST", url, body, "mv");
	if (r)
		printf("moved %s -> %s\n", from, dest);
	json_decref(body);
	json_decref(r);
	free(url);
	free(dest);
	client_close(&c);
	return r ? 0 : 1;
}

static int cmd_rm(struct opts *o)
{
	if (need_args(o, 1, 1, "rm", "PATH"))
		return 2;
	return simple_call(o, "DELETE", "/files?path=%s", o->pos[0], NULL, "rm", "deleted %s");
}

static void print_versions(json_t *r, const struct client *c)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(r, "versions"), i, v)
	{
		char sz[32], when[32];
		int64_t n = 0, size = 0, at = 0;
		json_get_int(v, "version", &n);
		json_get_int(v, "size", &size);
		json_get_int(v, "created_at", &at);
		fmt_time(at, when);
		printf("v%-4lld %10s  %s  %.12s  %s%s\n", (long long)n, human_bytes(size, sz), when,
		       json_get_str(v, "hash"), json_get_str(v, "created_by"),
		       json_is_true(json_object_get(v, "current")) ? "  (current)" : "");
	}
}

static int cmd_versions(struct opts *o)
{
	if (need_args(o, 1, 1, "versions", "PATH [--json]"))
		return 2;
	return show(o, "/versions?path=%s", o->pos[0], "versions", "versions", print_versions);
}

static void print_usage(json_t *r, const struct client *c)
{
	int64_t logical = 0, stored = 0, chunks = 0, files = 0, versions = 0;
	json_get_int(r, "logical_bytes", &logical);
	json_get_int(r, "stored_bytes", &stored);
	json_get_int(r, "chunks", &chunks);
	json_get_int(r, "files", &files);
	json_get_int(r, "versions", &versions);
	char a[32], b[32];
	printf("workspace %s: %lld files, %lld versions\n", c->ws_name, (long long)files,
	       (long long)versions);
	printf("logical %s, stored %s in %lld chunks", human_bytes(logical, a),
	       human_bytes(stored, b), (long long)chunks);
	if (stored > 0)
		printf(" (dedup ratio %.2f)", (double)logical / (double)stored);
	printf("\n");
}

static int cmd_usage(struct opts *o)
{
	if (need_args(o, 0, 0, "usage", "[--json]"))
		return 2;
	return show(o, "/usage", NULL, "usage", NULL, print_usage);
}

static int cmd_put(struct opts *o)
{
	if (need_args(o, 1, 2, "put", "LOCAL [REMOTE] [--parallel N]"))
		return 2;
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	struct put_opts po = {.parallel = o->parallel, .quiet = o->quiet, .base_version_id = -1};
	int rc = transfer_put(&c, o->pos[0], o->npos > 1 ? o->pos[1] : NULL, &po);
	client_close(&c);
	return rc;
}

static int cmd_get(struct opts *o)
{
	if (need_args(o, 1, 2, "get", "REMOTE [LOCAL|-] [--version N]"))
		return 2;
	int64_t version = 0;
	if (o->version) {
		char *end;
		version = strtoll(o->version, &end, 10);
		if (*end || version <= 0) {
			fprintf(stderr, "roost get: --version takes a positive number\n");
			return 2;
		}
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	int rc = transfer_get(&c, o->pos[0], o->npos > 1 ? o->pos[1] : NULL, version, o->quiet);
	client_close(&c);
	return rc;
}

int cli_run(const char *cmd, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct opts *);
	} cmds[] = {
	    {"login", cmd_login},
	    {"logout", cmd_logout},
	    {"ls", cmd_ls},
	    {"mkdir", cmd_mkdir},
	    {"mv", cmd_mv},
	    {"rm", cmd_rm},
	    {"versions", cmd_versions},
	    {"usage", cmd_usage},
	    {"put", cmd_put},
	    {"get", cmd_get},
	    {"watch", cmd_watch},
	    {"audit", cmd_audit},
	    {"invite", cmd_invite},
	    {"join", cmd_join},
	    {"members", cmd_members},
	    {"workspaces", cmd_workspaces},
	    {"acl", cmd_acl},
	    {"url", cmd_url},
	    {"share", cmd_share},
	    {"shares", cmd_shares},
	    {"unshare", cmd_unshare},
	    {"host", cmd_host},
	    {"hosts", cmd_hosts},
	    {"policy", cmd_policy},
	    {"token", cmd_token},
	    {"sessions", cmd_sessions},
	    {"passwd", cmd_passwd},
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(cmd, cmds[i].name) != 0)
			continue;
		struct opts o;
		int rc = parse(argc, argv, &o, cmd);
		if (rc)
			return rc;
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = cmds[i].fn(&o);
		curl_global_cleanup();
		return rc;
	}
	return -1;
}
