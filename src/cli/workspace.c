/* workspace: roost workspace show (every setting of the workspace),
 * roost workspace set KEY VALUE (one of them, through PATCH: the hub
 * validates; this parses units such as 10GiB or 7d) and roost workspace
 * delete NAME (after the user types the name, or --confirm NAME).
 * Threads: the CLI's one thread. */
#include "cmd.h"
#include "../core/json.h"
#include "../core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum unit {
	U_TEXT,    /* a string */
	U_BYTES,   /* 10GiB, 512K, 1048576 */
	U_COUNT,   /* a whole number */
	U_DAYS,    /* 30 or 30d */
	U_SECONDS, /* 7d, 1h, 3600 */
	U_LIST,    /* a,b,c (none: empty) */
};

/* The settings, in the order show prints them; keys are PATCH's. */
static const struct setting {
	const char *key;
	enum unit unit;
	const char *zero; /* what 0 means, if anything */
	const char *about;
} settings[] = {
    {"name", U_TEXT, NULL, "the workspace's name"},
    {"default_access", U_TEXT, NULL, "none, read or write: members' access without an ACL entry"},
    {"storage", U_TEXT, NULL, "hub or hosts: where the bytes live (docs/storage.md)"},
    {"quota_bytes", U_BYTES, "no quota", "the most the current versions may take"},
    {"max_file_bytes", U_BYTES, "no limit", "the largest file"},
    {"keep_versions", U_COUNT, "every version", "old versions kept per file"},
    {"keep_days", U_DAYS, "forever", "old versions kept this long"},
    {"trash_days", U_DAYS, NULL, "deleted files stay restorable this long"},
    {"gc_retention_s", U_SECONDS, NULL, "unreferenced chunks stay this long"},
    {"min_replicas", U_COUNT, NULL, "copies each chunk should have"},
    {"replica_grace_s", U_SECONDS, NULL, "an offline host's copies count this long"},
    {"hub_cache_bytes", U_BYTES, NULL, "storage hosts: the hub's cache of the workspace"},
    {"chunk_min", U_BYTES, NULL, "smallest chunk, a power of two (new uploads)"},
    {"chunk_avg", U_BYTES, NULL, "average chunk, a power of two (new uploads)"},
    {"chunk_max", U_BYTES, NULL, "largest chunk, a power of two (new uploads)"},
    {"oidc_domains", U_LIST, NULL, "email domains single sign-on admits (a,b; none)"},
    {"oidc_default_role", U_TEXT, NULL, "member or admin: the role those get"},
};
#define N_SETTINGS (sizeof settings / sizeof *settings)

static const struct setting *setting_find(const char *key)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(settings[i].key, key) == 0)
			return &settings[i];
	return NULL;
}

static void print_value(const struct setting *s, json_t *v, char *out, size_t cap)
{
	int64_t n = json_integer_value(v);
	char b[32];
	if (s->unit == U_TEXT) {
		snprintf(out, cap, "%s", json_string_value(v) ? json_string_value(v) : "");
	} else if (s->unit == U_LIST) {
		size_t i, len = 0;
		json_t *d;
		out[0] = 0;
		json_array_foreach(v, i, d)
		{
			snprintf(out + len, cap - len, "%s%s", i ? "," : "", json_string_value(d));
			len = strlen(out);
		}
		if (!json_array_size(v))
			snprintf(out, cap, "none");
	} else if (n == 0 && s->zero) {
		snprintf(out, cap, "0 (%s)", s->zero);
	} else if (s->unit == U_BYTES) {
		snprintf(out, cap, "%s (%lld bytes)", human_bytes(n, b), (long long)n);
	} else if (s->unit == U_DAYS) {
		snprintf(out, cap, "%lld %s", (long long)n, plural(n, "day", "days"));
	} else if (s->unit == U_SECONDS && n % 86400 == 0 && n) {
		snprintf(out, cap, "%lldd (%lld s)", (long long)(n / 86400), (long long)n);
	} else if (s->unit == U_SECONDS && n % 3600 == 0 && n) {
		snprintf(out, cap, "%lldh (%lld s)", (long long)(n / 3600), (long long)n);
	} else {
		snprintf(out, cap, "%lld%s", (long long)n, s->unit == U_SECONDS ? " s" : "");
	}
}

static int ws_show(struct opts *o)
{
	if (need_args(o, 1, 1, "workspace", "show [--json]"))
		return 2;
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = client_ws_url(&c, "", NULL);
	json_t *r = client_call(&c, "GET", url, NULL, "workspace show");
	free(url);
	if (r && o->json) {
		print_json(r);
	} else if (r) {
		printf("workspace %s (id %lld), your role: %s\n", json_get_str(r, "name"),
		       (long long)c.ws_id, json_get_str(r, "role"));
		for (size_t i = 0; i < N_SETTINGS; i++) {
			char v[128];
			print_value(&settings[i], json_object_get(r, settings[i].key), v, sizeof v);
			printf("  %-16s %-28s %s\n", settings[i].key, v, settings[i].about);
		}
	}
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

/* VALUE of setting s as JSON (new), or NULL after saying why. */
static json_t *parse_value(const struct setting *s, const char *v)
{
	char *end;
	if (s->unit == U_TEXT)
		return json_string(v);
	if (s->unit == U_LIST) {
		json_t *a = json_array();
		if (strcmp(v, "none") == 0 || !*v)
			return a;
		for (const char *p = v; *p;) {
			size_t n = strcspn(p, ",");
			if (n)
				json_array_append_new(a, json_stringn(p, n));
			p += n + (p[n] == ',');
		}
		return a;
	}
	if (s->zero && (strcmp(v, "none") == 0 || strcmp(v, "off") == 0))
		return json_integer(0);
	if (s->unit == U_BYTES) {
		double b = parse_bytes(v);
		if (b >= 0 && b < 9.2e18 && b == floor(b))
			return json_integer((json_int_t)b);
		fprintf(stderr,
		        "roost workspace set: %s takes a size in bytes, e.g. 10GiB, 512K or "
		        "1048576%s, not '%s'\n",
		        s->key, s->zero ? " (0 or none: no limit)" : "", v);
		return NULL;
	}
	if (s->unit == U_COUNT) {
		long long n = strtoll(v, &end, 10);
		if (*v && !*end && n >= 0)
			return json_integer(n);
		fprintf(stderr, "roost workspace set: %s takes a whole number, not '%s'\n", s->key,
		        v);
		return NULL;
	}
	int64_t secs = parse_duration(v);
	if (s->unit == U_DAYS) {
		long long n = strtoll(v, &end, 10);
		if (*v && !*end && n >= 0)
			return json_integer(n); /* plain days */
		if (secs >= 0 && secs % 86400 == 0)
			return json_integer(secs / 86400);
		fprintf(stderr,
		        "roost workspace set: %s takes whole days, e.g. 30 or 30d, not '%s'\n",
		        s->key, v);
		return NULL;
	}
	if (secs >= 0)
		return json_integer(secs);
	fprintf(stderr,
	        "roost workspace set: %s takes a duration, e.g. 7d, 12h, 30m or seconds, not "
	        "'%s'\n",
	        s->key, v);
	return NULL;
}

static int ws_set(struct opts *o)
{
	if (need_args(o, 3, 3, "workspace", "set KEY VALUE"))
		return 2;
	const struct setting *s = setting_find(o->pos[1]);
	if (!s) {
		fprintf(stderr,
		        "roost workspace set: no setting '%s'; the settings are:", o->pos[1]);
		for (size_t i = 0; i < N_SETTINGS; i++)
			fprintf(stderr, "%s %s", i ? "," : "", settings[i].key);
		fprintf(stderr, "\n");
		return 2;
	}
	json_t *v = parse_value(s, o->pos[2]);
	if (!v)
		return 2;
	struct client c;
	if (client_open(&c, o->workspace)) {
		json_decref(v);
		return 1;
	}
	char *url = client_ws_url(&c, "", NULL);
	json_t *body = json_object();
	json_object_set(body, s->key, v);
	json_t *r = client_call(&c, "PATCH", url, body, "workspace set");
	json_decref(body);
	free(url);
	if (r && o->json) {
		print_json(r);
	} else if (r) {
		char shown[128];
		print_value(s, v, shown, sizeof shown);
		printf("workspace %s: %s is now %s%s\n", c.ws_name, s->key, shown,
		       strncmp(s->key, "chunk_", 6) == 0 ? " (new uploads use it; hosts pick it up)"
		                                         : "");
	}
	int rc = r ? 0 : 1;
	json_decref(v);
	json_decref(r);
	client_close(&c);
	return rc;
}

/* roost workspace delete NAME: the workspace NAME (not --workspace), once
 * the user typed its name again or gave it with --confirm. */
static int ws_delete(struct opts *o)
{
	if (need_args(o, 2, 2, "workspace", "delete NAME [--confirm NAME]"))
		return 2;
	const char *name = o->pos[1];
	if (o->confirm && strcmp(o->confirm, name) != 0) {
		fprintf(stderr,
		        "roost workspace delete: --confirm %s does not name workspace %s; nothing "
		        "deleted\n",
		        o->confirm, name);
		return 2;
	}
	struct client c;
	if (client_open(&c, name))
		return 1;
	char *typed = o->confirm ? xstrdup(o->confirm) : NULL;
	int rc = 0;
	if (!typed) {
		char *q =
		    xasprintf("This deletes workspace %s with every file, version, share link "
		              "and invite in it, for good; its hosts stop syncing it.\nType its "
		              "name to go on: ",
		              c.ws_name);
		typed = prompt_line(q);
		free(q);
		if (!typed) {
			fprintf(stderr, "roost workspace delete: no terminal to ask on; give "
			                "--confirm NAME to delete it\n");
			rc = 2;
		} else if (strcmp(typed, c.ws_name) != 0) {
			fprintf(stderr,
			        "roost workspace delete: the name typed is not %s; nothing "
			        "deleted\n",
			        c.ws_name);
			rc = 1;
		}
	}
	json_t *r = NULL;
	if (rc == 0) {
		char *url = client_ws_url(&c, "", NULL);
		json_t *body = json_pack("{s:s}", "confirm", typed);
		r = client_call(&c, "DELETE", url, body, "workspace delete");
		json_decref(body);
		free(url);
		rc = r ? 0 : 1;
	}
	if (r && o->json)
		print_json(r);
	else if (r)
		printf("deleted workspace %s; the next GC frees its space\n", c.ws_name);
	free(typed);
	json_decref(r);
	client_close(&c);
	return rc;
}

int cmd_workspace(struct opts *o)
{
	const char *sub = o->npos ? o->pos[0] : "";
	if (strcmp(sub, "show") == 0)
		return ws_show(o);
	if (strcmp(sub, "set") == 0)
		return ws_set(o);
	if (strcmp(sub, "delete") == 0)
		return ws_delete(o);
	fprintf(stderr, "usage: roost workspace show [--json]\n"
	                "       roost workspace set KEY VALUE\n"
	                "       roost workspace delete NAME [--confirm NAME]\n");
	return 2;
}
