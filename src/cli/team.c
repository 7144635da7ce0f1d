/* team: workspaces, members, invites, access, audit, signed URLs and share links.
 * Threads: the CLI's one thread. */
#include "cmd.h"
#include "../core/json.h"
#include "../core/util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void print_audit(json_t *r, const struct client *c)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(r, "entries"), i, e)
	{
		char when[32], who[384];
		int64_t at = 0;
		json_get_int(e, "at", &at);
		fmt_time(at, when);
		const char *target = json_get_str(e, "target"), *client = json_get_str(e, "client");
		printf("%s  %-24s %-16s %s%s%s\n", when, fmt_who(e, who, sizeof who),
		       json_get_str(e, "action"), target ? target : "", client ? "  from " : "",
		       client ? client : "");
	}
}

int cmd_audit(struct opts *o)
{
	if (need_args(o, 0, 0, "audit", "[--limit N] [--action ACTION] [--json]"))
		return 2;
	if (o->limit && parse_id(o->limit) <= 0) {
		fprintf(stderr, "roost audit: --limit takes a positive number\n");
		return 2;
	}
	char *rel = xasprintf("/audit?limit=%s%s%%s", o->limit ? o->limit : "100",
	                      o->action ? "&action=" : "");
	int rc = show(o, rel, o->action ? o->action : "", "audit", "entries", print_audit);
	free(rel);
	return rc;
}

int cmd_invite(struct opts *o)
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
		printf("%s\n(%s of workspace %s; give it to one person: it opens a join page in a "
		       "browser, or roost join URL --email EMAIL)\n",
		       json_get_str(r, "url"), json_get_str(r, "role"), c.ws_name);
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

int cmd_join(struct opts *o)
{
	if (need_args(o, 1, 1, "join", "INVITE_URL --email EMAIL [--name NAME] [--code CODE]") ||
	    !o->email) {
		if (!o->email)
			fprintf(stderr, "usage: roost join INVITE_URL --email EMAIL [--name NAME] "
			                "[--code CODE]\n");
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
	char *api = client_invite_api(&c, mark + 8, "member", "roost join");
	if (!api) {
		client_close(&c);
		return 1;
	}
	free(c.hub);
	c.hub = api; /* the URL may be the dashboard's page */
	char *pw = read_password("Password (new, or your account's): ", false);
	int rc = 1;
	if (pw) {
		char *url = xasprintf("%s/api/v1/invites/accept", c.hub);
		json_t *body = json_pack("{s:s, s:s, s:s}", "token", mark + 8, "email", o->email,
		                         "password", pw);
		if (o->name)
			json_object_set_new(body, "name", json_string(o->name));
		if (o->code)
			json_object_set_new(body, "code", json_string(o->code));
		json_t *r = client_call(&c, "POST", url, body, "join");
		json_decref(body);
		free(url);
		const char *tok = json_get_str(r, "token");
		if (tok && client_save_config(c.hub, tok, o->email, c.cacert) == 0) {
			json_t *ws = json_object_get(r, "workspace");
			const char *name = json_get_str(ws, "name");
			printf("joined workspace %s as %s; logged in to %s as %s\n",
			       name ? name : "(unnamed)", json_get_str(ws, "role"), c.hub,
			       o->email);
			rc = 0;
		}
		json_decref(r);
		memset(pw, 0, strlen(pw));
		free(pw);
	}
	client_close(&c);
	return rc;
}

static void print_members(json_t *r, const struct client *c)
{
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(r, "members"), i, m)
	{
		char who[400];
		printf(
		    "%-8s %s%s\n", json_get_str(m, "role"),
		    fmt_person(json_get_str(m, "email"), json_get_str(m, "name"), who, sizeof who),
		    json_is_true(json_object_get(m, "totp")) ? "  (2FA)" : "");
	}
}

int cmd_members(struct opts *o)
{
	if (need_args(o, 0, 0, "members", "[--json]"))
		return 2;
	return show(o, "/members", NULL, "members", "members", print_members);
}

int cmd_workspaces(struct opts *o)
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
int cmd_acl(struct opts *o)
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
		{
			char who[512];
			printf("  %-7s %s\n", json_get_str(e, "perm"),
			       fmt_person(json_get_str(e, "email"), json_get_str(e, "name"), who,
			                  sizeof who));
		}
	}
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

/* A link served by a host's relay carries the relay's certificate, which may
 * be self-signed (roost relay --self-signed, the demo's); one served by the
 * host itself over https, the host's own. The hub cannot tell (the host keeps
 * its --relay-ca to itself), so say it, on stderr, where $(roost url …) does
 * not take it. A host's direct URL is often one only its network reaches: its
 * public link through the relay, if it has one, is shown too. */
static void ca_hint(json_t *r)
{
	static const char relay_ca[] =
	    "if the relay's certificate is self-signed, pass its CA: curl --cacert CA.pem";
	const char *url = json_get_str(r, "url"), *via = json_get_str(r, "via");
	bool https = url && strncmp(url, "https://", 8) == 0;
	if (https && via && strcmp(via, "relay") == 0) {
		fprintf(stderr, "(this link is served through the host's relay; %s)\n", relay_ca);
		return;
	}
	if (https && via && strcmp(via, "host") == 0)
		fprintf(stderr, "(this link is served by the host itself; if its certificate is "
		                "self-signed, pass its CA: curl --cacert CA.pem)\n");
	if (!via || strcmp(via, "host") != 0)
		return;
	/* The first source is the link printed; the same host's relay source. */
	json_t *sources = json_object_get(r, "sources");
	json_t *host = json_object_get(json_array_get(sources, 0), "host_id");
	size_t i;
	json_t *s;
	json_array_foreach(sources, i, s)
	{
		const char *u = json_get_str(s, "url"), *v = json_get_str(s, "via");
		if (u && v && strcmp(v, "relay") == 0 && host &&
		    json_equal(json_object_get(s, "host_id"), host)) {
			fprintf(stderr, "(public link, through the host's relay: %s\n %s)\n", u,
			        relay_ca);
			return;
		}
	}
}

int cmd_url(struct opts *o)
{
	if (need_args(o, 1, 1, "url", "PATH [--expires 1h] [--version N | --write] [--json]"))
		return 2;
	int64_t secs = o->expires ? parse_duration(o->expires) : 3600;
	int64_t version = o->version ? parse_id(o->version) : 0;
	if (secs <= 0 || version < 0 || (version && o->write)) {
		fprintf(stderr,
		        "roost url: --expires takes a duration (e.g. 10m, 2h, 7d), --version "
		        "a positive number, and --write (an upload URL) no version\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = client_ws_url(&c, "/urls", NULL);
	json_t *body = json_pack("{s:s, s:I}", "path", o->pos[0], "expires_in", (json_int_t)secs);
	if (version)
		json_object_set_new(body, "version", json_integer(version));
	if (o->write) /* a URL to PUT a new version to */
		json_object_set_new(body, "scope", json_string("write"));
	json_t *r = client_call(&c, "POST", url, body, "url");
	json_decref(body);
	free(url);
	if (r && o->json)
		print_json(r);
	else if (r)
		puts(json_get_str(r, "url"));
	if (r && !o->json && !o->quiet)
		ca_hint(r);
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

int cmd_share(struct opts *o)
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

static void print_shares(json_t *r, const struct client *c)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(r, "shares"), i, e)
	{
		char when[32] = "never", who[512];
		int64_t exp = 0;
		if (json_get_int(e, "expires_at", &exp))
			fmt_time(exp, when);
		printf("%-6lld %-5s %s  expires %s%s  by %s\n",
		       (long long)json_integer_value(json_object_get(e, "id")),
		       json_get_str(e, "scope"), json_get_str(e, "path"), when,
		       json_is_true(json_object_get(e, "password")) ? "  (password)" : "",
		       fmt_person(json_get_str(e, "created_by"), json_get_str(e, "created_by_name"),
		                  who, sizeof who));
	}
}

int cmd_shares(struct opts *o)
{
	if (need_args(o, 0, 0, "shares", "[--json]"))
		return 2;
	return show(o, "/shares", NULL, "shares", "shares", print_shares);
}

int cmd_unshare(struct opts *o)
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

/* roost token create --name NAME [--expires D] | token ls | token revoke ID:
 * app passwords, for WebDAV mounts and scripts (docs/webdav.md). */
int cmd_token(struct opts *o)
{
	const char *sub = o->npos ? o->pos[0] : "";
	bool create = strcmp(sub, "create") == 0 && o->npos == 1 && o->name;
	bool ls = strcmp(sub, "ls") == 0 && o->npos == 1;
	bool revoke = strcmp(sub, "revoke") == 0 && o->npos == 2 && parse_id(o->pos[1]) > 0;
	if (!create && !ls && !revoke) {
		fprintf(stderr, "usage: roost token create --name NAME [--expires 90d] [--json]\n"
		                "       roost token ls [--json]\n"
		                "       roost token revoke ID\n");
		return 2;
	}
	int64_t secs = 0;
	if (create && o->expires && (secs = parse_duration(o->expires)) <= 0) {
		fprintf(stderr, "roost token: --expires takes a duration like 12h, 30d or 365d\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, NULL))
		return 1;
	char *url = revoke ? xasprintf("%s/api/v1/tokens/%s", c.hub, o->pos[1])
	                   : xasprintf("%s/api/v1/tokens", c.hub);
	json_t *body = NULL;
	if (create) {
		body = json_pack("{s:s}", "name", o->name);
		if (secs)
			json_object_set_new(body, "expires_in", json_integer(secs));
	}
	json_t *r = client_call(&c,
	                        create   ? "POST"
	                        : revoke ? "DELETE"
	                                 : "GET",
	                        url, body, "token");
	json_decref(body);
	free(url);
	if (r && o->json) {
		print_json(ls ? json_object_get(r, "tokens") : r);
	} else if (r && create) {
		printf("%s\n(app password \"%s\", id %lld: use it with your email %s as the WebDAV "
		       "login, or as a bearer token; it is shown only once)\n",
		       json_get_str(r, "token"), json_get_str(r, "name"),
		       (long long)json_integer_value(json_object_get(r, "id")),
		       c.email ? c.email : "");
	} else if (r && revoke) {
		printf("revoked app password %s\n", o->pos[1]);
	} else if (r) {
		size_t i;
		json_t *t;
		json_array_foreach(json_object_get(r, "tokens"), i, t)
		{
			char made[32], used[32] = "never", until[32] = "never";
			int64_t v = 0;
			json_get_int(t, "created_at", &v);
			fmt_time(v, made);
			if (json_get_int(t, "last_used_at", &v))
				fmt_time(v, used);
			if (json_get_int(t, "expires_at", &v))
				fmt_time(v, until);
			printf("%-6lld %-20s created %s  used %s  expires %s\n",
			       (long long)json_integer_value(json_object_get(t, "id")),
			       json_get_str(t, "name"), made, used, until);
		}
	}
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

static void print_sessions(json_t *r)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(r, "sessions"), i, s)
	{
		char made[32], used[32] = "never";
		int64_t v = 0;
		json_get_int(s, "created_at", &v);
		fmt_time(v, made);
		if (json_get_int(s, "last_used_at", &v))
			fmt_time(v, used);
		printf("%-6lld %-12s created %s  used %s%s\n",
		       (long long)json_integer_value(json_object_get(s, "id")),
		       json_get_str(s, "client"), made, used,
		       json_is_true(json_object_get(s, "current")) ? "  (this one)" : "");
	}
}

/* roost sessions [--json] | sessions revoke ID: the user's logins. */
int cmd_sessions(struct opts *o)
{
	bool revoke = o->npos == 2 && strcmp(o->pos[0], "revoke") == 0 && parse_id(o->pos[1]) > 0;
	if (o->npos && !revoke) {
		fprintf(stderr, "usage: roost sessions [--json]\n"
		                "       roost sessions revoke ID\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, NULL))
		return 1;
	char *url = revoke ? xasprintf("%s/api/v1/sessions/%s", c.hub, o->pos[1])
	                   : xasprintf("%s/api/v1/sessions", c.hub);
	json_t *r = client_call(&c, revoke ? "DELETE" : "GET", url, NULL, "sessions");
	free(url);
	if (r && o->json)
		print_json(revoke ? r : json_object_get(r, "sessions"));
	else if (r && revoke)
		printf("ended session %s\n", o->pos[1]);
	else if (r)
		print_sessions(r);
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

/* roost passwd: change the password; the hub ends every other session and
 * app password, this login stays. */
int cmd_passwd(struct opts *o)
{
	if (need_args(o, 0, 0, "passwd", ""))
		return 2;
	struct client c;
	if (client_open(&c, NULL))
		return 1;
	char *old = read_password("Current password: ", false);
	char *new = old ? read_password_env("ROOST_NEW_PASSWORD", "New password: ", true) : NULL;
	json_t *r = NULL;
	if (new) {
		char *url = xasprintf("%s/api/v1/password", c.hub);
		json_t *body = json_pack("{s:s, s:s}", "old", old, "new", new);
		r = client_call(&c, "POST", url, body, "passwd");
		json_decref(body);
		free(url);
	}
	if (r && o->json)
		print_json(r);
	else if (r) {
		int64_t n = json_integer_value(json_object_get(r, "revoked"));
		printf("password changed; %lld other %s ended\n", (long long)n,
		       plural(n, "session or app password", "sessions and app passwords"));
	}
	if (old)
		sodium_memzero(old, strlen(old));
	if (new)
		sodium_memzero(new, strlen(new));
	free(old);
	free(new);
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}
