#include "cli.h"
#include "client.h"
#include "transfer.h"
#include "../core/json.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Options common to client commands, pulled out of argv; the rest are positional. */
struct opts {
	const char *workspace, *hub, *email, *version, *since, *limit, *action, *role, *expires,
	    *cacert, *password;
	bool write;
	bool json, quiet, parents;
	int parallel;
	char *pos[8];
	int npos;
};

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

static int need_args(const struct opts *o, int min, int max, const char *cmd, const char *usage)
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

static void fmt_time(int64_t ms, char buf[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%d %H:%M", &tm);
}

static int cmd_ls(struct opts *o)
{
	if (need_args(o, 0, 1, "ls", "[PATH] [--json]"))
		return 2;
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = client_ws_url(&c, "/list?path=%s", o->npos ? o->pos[0] : "/");
	json_t *r = client_call(&c, "GET", url, NULL, "ls");
	free(url);
	int rc = r ? 0 : 1;
	if (r && o->json) {
		char *s = json_dumps(json_object_get(r, "entries"), JSON_INDENT(2));
		puts(s);
		free(s);
	} else if (r) {
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
	json_decref(r);
	client_close(&c);
	return rc;
}

static int simple_call(struct opts *o, const char *method, const char *url_fmt, const char *arg,
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
		printf(done_fmt, arg);
		putchar('\n');
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

static int cmd_versions(struct opts *o)
{
	if (need_args(o, 1, 1, "versions", "PATH [--json]"))
		return 2;
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = client_ws_url(&c, "/versions?path=%s", o->pos[0]);
	json_t *r = client_call(&c, "GET", url, NULL, "versions");
	free(url);
	if (r && o->json) {
		char *s = json_dumps(json_object_get(r, "versions"), JSON_INDENT(2));
		puts(s);
		free(s);
	} else if (r) {
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
			printf("v%-4lld %10s  %s  %.12s  %s%s\n", (long long)n,
			       human_bytes(size, sz), when, json_get_str(v, "hash"),
			       json_get_str(v, "created_by"),
			       json_is_true(json_object_get(v, "current")) ? "  (current)" : "");
		}
	}
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

static int cmd_usage(struct opts *o)
{
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = client_ws_url(&c, "/usage", NULL);
	json_t *r = client_call(&c, "GET", url, NULL, "usage");
	free(url);
	if (r && o->json) {
		char *s = json_dumps(r, JSON_INDENT(2));
		puts(s);
		free(s);
	} else if (r) {
		int64_t logical = 0, stored = 0, chunks = 0, files = 0, versions = 0;
		json_get_int(r, "logical_bytes", &logical);
		json_get_int(r, "stored_bytes", &stored);
		json_get_int(r, "chunks", &chunks);
		json_get_int(r, "files", &files);
		json_get_int(r, "versions", &versions);
		char a[32], b[32];
		printf("workspace %s: %lld files, %lld versions\n", c.ws_name, (long long)files,
		       (long long)versions);
		printf("logical %s, stored %s in %lld chunks", human_bytes(logical, a),
		       human_bytes(stored, b), (long long)chunks);
		if (stored > 0)
			printf(" (dedup ratio %.2f)", (double)logical / (double)stored);
		printf("\n");
	}
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

static int cmd_audit(struct opts *o)
{
	if (need_args(o, 0, 0, "audit", "[--limit N] [--action ACTION] [--json]"))
		return 2;
	if (o->limit && parse_id(o->limit) <= 0) {
		fprintf(stderr, "roost audit: --limit takes a positive number\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *rel = xasprintf("/audit?limit=%s%s%%s", o->limit ? o->limit : "100",
	                      o->action ? "&action=" : "");
	char *url = client_ws_url(&c, rel, o->action ? o->action : "");
	free(rel);
	json_t *r = client_call(&c, "GET", url, NULL, "audit");
	free(url);
	if (r && o->json) {
		char *s = json_dumps(json_object_get(r, "entries"), JSON_INDENT(2));
		puts(s);
		free(s);
	} else if (r) {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(r, "entries"), i, e)
		{
			char when[32];
			int64_t at = 0;
			json_get_int(e, "at", &at);
			fmt_time(at, when);
			const char *actor = json_get_str(e, "actor"),
			           *target = json_get_str(e, "target");
			const char *client = json_get_str(e, "client");
			printf("%s  %-24s %-16s %s%s%s\n", when, actor ? actor : "-",
			       json_get_str(e, "action"), target ? target : "",
			       client ? "  from " : "", client ? client : "");
		}
	}
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

static void print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2));
	puts(s);
	free(s);
}

static int cmd_invite(struct opts *o)
{
	if (need_args(o, 0, 0, "invite", "[--role member|admin|owner] [--expires 7d]"))
		return 2;
	int64_t secs = o->expires ? parse_duration(o->expires) : 7 * 86400;
	if (secs <= 0) {
		fprintf(stderr, "roost invite: --expires takes a duration like 45m, 12h or 7d\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = client_ws_url(&c, "/invites", NULL);
	json_t *body = json_pack("{s:s, s:I}", "role", o->role ? o->role : "member", "expires_in",
	                         (json_int_t)secs);
	json_t *r = client_call(&c, "POST", url, body, "invite");
	json_decref(body);
	free(url);
	if (r && o->json)
		print_json(r);
	else if (r)
		printf("%s\n(%s of workspace %s; give it to one person: roost join URL --email "
		       "EMAIL)\n",
		       json_get_str(r, "url"), json_get_str(r, "role"), c.ws_name);
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

static int cmd_join(struct opts *o)
{
	if (need_args(o, 1, 1, "join", "INVITE_URL --email EMAIL") || !o->email) {
		if (!o->email)
			fprintf(stderr, "usage: roost join INVITE_URL --email EMAIL\n");
		return 2;
	}
	const char *u = o->pos[0], *mark = strstr(u, "/invite/");
	if (!mark || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) ||
	    !mark[8]) {
		fprintf(stderr,
		        "roost join: expected an invite URL like http://HUB/invite/TOKEN\n");
		return 2;
	}
	struct client c = {0};
	c.hub = xstrndup(u, (size_t)(mark - u));
	c.cacert = o->cacert ? realpath(o->cacert, NULL) : NULL;
	c.curl = client_curl(&c);
	char *pw = read_password("Password (new, or your account's): ", false);
	int rc = 1;
	if (pw) {
		char *url = xasprintf("%s/api/v1/invites/accept", c.hub);
		json_t *body = json_pack("{s:s, s:s, s:s}", "token", mark + 8, "email", o->email,
		                         "password", pw);
		json_t *r = client_call(&c, "POST", url, body, "join");
		json_decref(body);
		free(url);
		const char *tok = json_get_str(r, "token");
		if (tok && client_save_config(c.hub, tok, o->email, c.cacert) == 0) {
			json_t *ws = json_object_get(r, "workspace");
			printf("joined workspace %lld as %s; logged in to %s as %s\n",
			       (long long)json_integer_value(json_object_get(ws, "id")),
			       json_get_str(ws, "role"), c.hub, o->email);
			rc = 0;
		}
		json_decref(r);
		memset(pw, 0, strlen(pw));
		free(pw);
	}
	client_close(&c);
	return rc;
}

static int cmd_members(struct opts *o)
{
	if (need_args(o, 0, 0, "members", "[--json]"))
		return 2;
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = client_ws_url(&c, "/members", NULL);
	json_t *r = client_call(&c, "GET", url, NULL, "members");
	free(url);
	if (r && o->json) {
		print_json(json_object_get(r, "members"));
	} else if (r) {
		size_t i;
		json_t *m;
		json_array_foreach(json_object_get(r, "members"), i, m)
		    printf("%-8s %s\n", json_get_str(m, "role"), json_get_str(m, "email"));
	}
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

static int cmd_workspaces(struct opts *o)
{
	bool create = o->npos >= 1 && strcmp(o->pos[0], "create") == 0;
	if ((create && o->npos != 2) || (!create && o->npos != 0)) {
		fprintf(stderr,
		        "usage: roost workspaces [--json] | roost workspaces create NAME\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = xasprintf("%s/api/v1/workspaces", c.hub);
	json_t *body = create ? json_pack("{s:s}", "name", o->pos[1]) : NULL;
	json_t *r = client_call(&c, create ? "POST" : "GET", url, body, "workspaces");
	json_decref(body);
	free(url);
	if (r && (o->json || create)) {
		if (o->json)
			print_json(create ? r : json_object_get(r, "workspaces"));
		else
			printf("created workspace %s (id %lld); use it with --workspace %s\n",
			       json_get_str(r, "name"),
			       (long long)json_integer_value(json_object_get(r, "id")),
			       json_get_str(r, "name"));
	} else if (r) {
		size_t i;
		json_t *w;
		json_array_foreach(json_object_get(r, "workspaces"), i, w) printf(
		    "%-6lld %-8s %s\n", (long long)json_integer_value(json_object_get(w, "id")),
		    json_get_str(w, "role"), json_get_str(w, "name"));
	}
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

/* roost acl PATH | acl set PATH EMAIL PERM | acl rm PATH EMAIL */
static int cmd_acl(struct opts *o)
{
	bool set = o->npos == 4 && strcmp(o->pos[0], "set") == 0;
	bool rm = o->npos == 3 && strcmp(o->pos[0], "rm") == 0;
	if (!set && !rm && o->npos != 1) {
		fprintf(stderr, "usage: roost acl PATH [--json] | roost acl set PATH EMAIL "
		                "none|read|write|manage | roost acl rm PATH EMAIL\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	json_t *r = NULL;
	char *url;
	if (set) {
		url = client_ws_url(&c, "/acl", NULL);
		json_t *body = json_pack("{s:s, s:s, s:s}", "path", o->pos[1], "email", o->pos[2],
		                         "perm", o->pos[3]);
		r = client_call(&c, "PUT", url, body, "acl");
		json_decref(body);
	} else if (rm) {
		/* the API names members by id: look the email up */
		url = client_ws_url(&c, "/members", NULL);
		json_t *m = client_call(&c, "GET", url, NULL, "acl");
		free(url);
		json_int_t uid = 0;
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(m, "members"), i, e)
		{
			if (strcmp(json_get_str(e, "email"), o->pos[2]) == 0)
				uid = json_integer_value(json_object_get(e, "user_id"));
		}
		json_decref(m);
		if (!uid) {
			fprintf(stderr, "roost acl: %s is not a member\n", o->pos[2]);
			client_close(&c);
			return 1;
		}
		char *rel = xasprintf("/acl?user=%lld&path=%%s", (long long)uid);
		url = client_ws_url(&c, rel, o->pos[1]);
		free(rel);
		r = client_call(&c, "DELETE", url, NULL, "acl");
	} else {
		url = client_ws_url(&c, "/acl?path=%s", o->pos[0]);
		r = client_call(&c, "GET", url, NULL, "acl");
	}
	free(url);
	if (r && o->json) {
		print_json(r);
	} else if (r && (set || rm)) {
		printf("%s: %s for %s\n", o->pos[1], json_get_str(r, "perm"), o->pos[2]);
	} else if (r) {
		printf("%s (%s): you have %s; workspace default %s\n", json_get_str(r, "path"),
		       json_get_str(r, "type"), json_get_str(r, "effective"),
		       json_get_str(r, "default_access"));
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(r, "entries"), i, e)
		    printf("  %-7s %s\n", json_get_str(e, "perm"), json_get_str(e, "email"));
	}
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

static int cmd_url(struct opts *o)
{
	if (need_args(o, 1, 1, "url", "PATH [--expires 1h] [--version N] [--json]"))
		return 2;
	int64_t secs = o->expires ? parse_duration(o->expires) : 3600;
	int64_t version = o->version ? parse_id(o->version) : 0;
	if (secs <= 0 || version < 0) {
		fprintf(stderr,
		        "roost url: --expires takes a duration (e.g. 10m, 2h, 7d), --version "
		        "a positive number\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = client_ws_url(&c, "/urls", NULL);
	json_t *body = json_pack("{s:s, s:I}", "path", o->pos[0], "expires_in", (json_int_t)secs);
	if (version)
		json_object_set_new(body, "version", json_integer(version));
	json_t *r = client_call(&c, "POST", url, body, "url");
	json_decref(body);
	free(url);
	if (r && o->json)
		print_json(r);
	else if (r)
		puts(json_get_str(r, "url"));
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

static int cmd_share(struct opts *o)
{
	if (need_args(o, 1, 1, "share", "PATH [--write] [--expires 7d] [--password PW] [--json]"))
		return 2;
	int64_t secs = o->expires ? parse_duration(o->expires) : 0;
	if (o->expires && secs <= 0) {
		fprintf(stderr, "roost share: --expires takes a duration like 12h or 7d\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = client_ws_url(&c, "/shares", NULL);
	json_t *body =
	    json_pack("{s:s, s:s}", "path", o->pos[0], "scope", o->write ? "write" : "read");
	if (secs)
		json_object_set_new(body, "expires_in", json_integer(secs));
	if (o->password)
		json_object_set_new(body, "password", json_string(o->password));
	json_t *r = client_call(&c, "POST", url, body, "share");
	json_decref(body);
	free(url);
	if (r && o->json)
		print_json(r);
	else if (r)
		printf("%s\n(link %lld, %s%s; revoke with roost unshare %lld)\n",
		       json_get_str(r, "url"),
		       (long long)json_integer_value(json_object_get(r, "id")),
		       json_get_str(r, "scope"), o->password ? ", password protected" : "",
		       (long long)json_integer_value(json_object_get(r, "id")));
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

static int cmd_shares(struct opts *o)
{
	if (need_args(o, 0, 0, "shares", "[--json]"))
		return 2;
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = client_ws_url(&c, "/shares", NULL);
	json_t *r = client_call(&c, "GET", url, NULL, "shares");
	free(url);
	if (r && o->json) {
		print_json(json_object_get(r, "shares"));
	} else if (r) {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(r, "shares"), i, e)
		{
			char when[32] = "never";
			int64_t exp = 0;
			if (json_get_int(e, "expires_at", &exp))
				fmt_time(exp, when);
			printf("%-6lld %-5s %s  expires %s%s  by %s\n",
			       (long long)json_integer_value(json_object_get(e, "id")),
			       json_get_str(e, "scope"), json_get_str(e, "path"), when,
			       json_is_true(json_object_get(e, "password")) ? "  (password)" : "",
			       json_get_str(e, "created_by"));
		}
	}
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

static int cmd_unshare(struct opts *o)
{
	if (need_args(o, 1, 1, "unshare", "ID") || parse_id(o->pos[0]) <= 0) {
		if (o->npos == 1)
			fprintf(stderr, "usage: roost unshare ID (see roost shares)\n");
		return 2;
	}
	char *rel = xasprintf("/shares/%s", o->pos[0]);
	int rc = simple_call(o, "DELETE", rel, NULL, NULL, "unshare", NULL);
	free(rel);
	if (rc == 0)
		printf("revoked link %s\n", o->pos[0]);
	return rc;
}

static int cmd_put(struct opts *o)
{
	if (need_args(o, 1, 2, "put", "LOCAL [REMOTE] [--parallel N]"))
		return 2;
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	struct put_opts po = {.parallel = o->parallel, .quiet = o->quiet};
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

/* ---- watch: follow the change feed, reconnecting from the last seq ---- */

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

static int cmd_watch(struct opts *o)
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
