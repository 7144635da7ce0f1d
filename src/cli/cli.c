/* cli: the user's file commands (login, ls, put, get, mkdir, mv, rm,
 * versions, usage…): parse, call the hub through src/client, print.
 * Threads: the CLI's one thread (put and get start their own workers in
 * client/transfer.c). */
#include "cli.h"
#include "cmd.h"
#include "../client/transfer.h"
#include "../client/tree.h"
#include "../core/json.h"
#include "../core/util.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int cmd_login(struct opts *o)
{
	if (o->sso)
		return cmd_login_sso(o);
	if (!o->hub || !o->email) {
		fprintf(stderr, "usage: roost login --hub URL --email EMAIL [--code CODE] "
		                "[--cacert CA.pem] | roost login --sso --hub URL\n");
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
		if (json_is_true(json_object_get(r, "totp_required"))) {
			json_t *first = r;
			r = login_second_step(&c, first, o->code);
			json_decref(first);
		}
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
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	json_t *r = NULL;
	char err[256];
	long st = client_list(&c, c.curl, o->npos ? o->pos[0] : "/", &r, err);
	if (st != 200)
		client_print_error("ls", st, r, err);
	else if (o->json)
		print_json(json_object_get(r, "entries"));
	else
		print_listing(r, &c);
	json_decref(r);
	client_close(&c);
	return st == 200 ? 0 : 1;
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

/* Does the folder at path hold anything the caller sees? 1 yes, 0 no (or
 * not a folder), -1 after printing why the hub did not say. */
static int folder_has_entries(struct client *c, const char *path)
{
	char *url = client_ws_url(c, "/info?path=%s", path);
	json_t *info = client_call(c, "GET", url, NULL, "rm");
	free(url);
	if (!info)
		return -1;
	const char *type = json_get_str(info, "type");
	bool folder = type && strcmp(type, "folder") == 0;
	json_decref(info);
	if (!folder)
		return 0;
	url = client_ws_url(c, "/list?limit=1&path=%s", path);
	json_t *list = client_call(c, "GET", url, NULL, "rm");
	free(url);
	if (!list)
		return -1;
	int rc = json_array_size(json_object_get(list, "entries")) > 0;
	json_decref(list);
	return rc;
}

/* rm moves to the trash; a folder with something in it only with -r, so a
 * slip of the finger does not take a whole tree. --permanent deletes for
 * good (owners and admins): nothing goes to the trash. */
static int cmd_rm(struct opts *o)
{
	if (need_args(o, 1, 1, "rm", "PATH [-r] [--permanent]"))
		return 2;
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	const char *path = o->pos[0];
	int full = o->recursive ? 0 : folder_has_entries(&c, path);
	json_t *r = NULL;
	if (full > 0)
		fprintf(stderr,
		        "roost rm: %s is a folder with files in it; use 'roost rm -r%s %s' to "
		        "delete it and everything in it%s\n",
		        path, o->permanent ? " --permanent" : "", path,
		        o->permanent ? " for good" : " (to the trash)");
	if (full == 0) {
		char *url = client_ws_url(
		    &c, o->permanent ? "/files?permanent=1&path=%s" : "/files?path=%s", path);
		r = client_call(&c, "DELETE", url, NULL, "rm");
		free(url);
	}
	if (r && o->json) {
		print_json(r);
	} else if (r && o->permanent) {
		int64_t n = json_integer_value(json_object_get(r, "purged"));
		printf("deleted %s for good (%lld %s, not in the trash; the next GC frees the "
		       "space)\n",
		       path, (long long)n, plural(n, "file", "files"));
	} else if (r) {
		printf("deleted %s\n", path);
	}
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

static void print_versions(json_t *r, const struct client *c)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(r, "versions"), i, v)
	{
		char sz[32], when[32], who[384];
		int64_t n = 0, size = 0, at = 0;
		json_get_int(v, "version", &n);
		json_get_int(v, "size", &size);
		json_get_int(v, "created_at", &at);
		fmt_time(at, when);
		printf("v%-4lld %10s  %s  %.12s  %s%s\n", (long long)n, human_bytes(size, sz), when,
		       json_get_str(v, "hash"), fmt_who(v, who, sizeof who),
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
	printf("workspace %s: %lld %s, %lld %s\n", c->ws_name, (long long)files,
	       plural(files, "file", "files"), (long long)versions,
	       plural(versions, "version", "versions"));
	printf("logical %s, stored %s in %lld %s", human_bytes(logical, a), human_bytes(stored, b),
	       (long long)chunks, plural(chunks, "chunk", "chunks"));
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

/* put DIR [REMOTE]: the tree to REMOTE (default: /DIR's name). */
static int put_tree(struct opts *o, struct client *c)
{
	const char *dir = o->pos[0];
	char *remote;
	if (o->npos > 1) {
		remote = xstrdup(o->pos[1]);
	} else {
		/* "." and "photos/.." name a folder too: its real name */
		char *real = realpath(dir, NULL);
		char *copy = xstrdup(real ? real : dir);
		remote = xasprintf("/%s", basename(copy));
		free(copy);
		free(real);
	}
	struct tree_opts to = {.quiet = o->quiet, .json = o->json, .parallel = o->parallel};
	int rc = tree_put(c, dir, remote, &to);
	free(remote);
	return rc;
}

static int cmd_put(struct opts *o)
{
	if (need_args(o, 1, 2, "put", "LOCAL [REMOTE] [--parallel N] [-q] [--json]"))
		return 2;
	struct stat st;
	bool tree = stat(o->pos[0], &st) == 0 && S_ISDIR(st.st_mode);
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	int rc;
	if (tree) {
		rc = put_tree(o, &c);
	} else {
		struct put_opts po = {.parallel = o->parallel,
		                      .quiet = o->quiet,
		                      .base_version_id = -1,
		                      .to_hosts = true};
		rc = transfer_put(&c, o->pos[0], o->npos > 1 ? o->pos[1] : NULL, &po);
	}
	client_close(&c);
	return rc;
}

static int cmd_get(struct opts *o)
{
	if (o->recursive ? need_args(o, 2, 2, "get",
	                             "-r REMOTE DIR [--force] [-q] [--json] "
	                             "[--host-ca CA.pem] [--parallel N]")
	                 : need_args(o, 1, 2, "get",
	                             "REMOTE [LOCAL|-] [--version N] [--force] [-v|--verbose] "
	                             "[--json] [--host-ca CA.pem] [--parallel N]\n"
	                             "       roost get -r REMOTE DIR [--force] [-q] [--json]"))
		return 2;
	if (o->recursive && (o->version || strcmp(o->pos[1], "-") == 0)) {
		fprintf(stderr, "roost get: -r writes a folder's tree into DIR: it takes neither "
		                "--version nor '-'\n");
		return 2;
	}
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
	const char *host_ca = o->host_ca ? o->host_ca : getenv("ROOST_HOST_CA");
	int rc;
	if (o->recursive) {
		struct tree_opts to = {.quiet = o->quiet,
		                       .json = o->json,
		                       .force = o->force,
		                       .parallel = o->parallel,
		                       .host_ca = host_ca};
		rc = tree_get(&c, o->pos[0], o->pos[1], &to);
	} else {
		struct get_opts go = {.quiet = o->quiet,
		                      .verbose = o->verbose,
		                      .json = o->json,
		                      .host_ca = host_ca,
		                      .parallel = o->parallel,
		                      .force = o->force};
		rc = transfer_get_opts(&c, o->pos[0], o->npos > 1 ? o->pos[1] : NULL, version, &go);
	}
	client_close(&c);
	return rc;
}

int cli_run(const char *cmd, int argc, char **argv)
{
	static const struct cmdline_cmd cmds[] = {
	    {"login", cmd_login},
	    {"logout", cmd_logout},
	    {"ls", cmd_ls},
	    {"mkdir", cmd_mkdir},
	    {"mv", cmd_mv},
	    {"rm", cmd_rm},
	    {"trash", cmd_trash},
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
	    {"workspace", cmd_workspace},
	    {"acl", cmd_acl},
	    {"url", cmd_url},
	    {"share", cmd_share},
	    {"shares", cmd_shares},
	    {"unshare", cmd_unshare},
	    {"token", cmd_token},
	    {"sessions", cmd_sessions},
	    {"passwd", cmd_passwd},
	    {"2fa", cmd_2fa},
	    {"account", cmd_account},
	};
	return cmdline_run(cmds, sizeof cmds / sizeof cmds[0], cmd, argc, argv);
}
