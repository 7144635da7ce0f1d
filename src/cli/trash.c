/* trash: roost trash (the deleted files the caller may read, the last
 * deleted first), roost trash restore PATH (a file, or every file deleted
 * from a folder, back where it was) and roost trash empty [PATH] (for good,
 * after a question on the terminal or --yes; owners and admins). The hub's GET trash answers in
 * pages; restore names a file by id, so the CLI finds the id of the newest deletion of a path in
 * the listing. Threads: the CLI's one thread. */
#include "cmd.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRASH_PAGE_MAX 1000 /* the hub's largest page */

/* GET trash, one page after the entry before (0: from the start) or, with
 * all, every page; the entries into *out (new). 0, or 1 after the hub said
 * why. *more: entries follow the ones returned. */
static int trash_fetch(struct client *c, int64_t limit, bool all, const char *what, json_t **out,
                       bool *more, int64_t *days)
{
	json_t *entries = json_array();
	int64_t before = 0;
	*more = false;
	for (;;) {
		char rel[96];
		int64_t want = all ? TRASH_PAGE_MAX : limit;
		if (before)
			snprintf(rel, sizeof rel, "/trash?limit=%lld&before=%lld", (long long)want,
			         (long long)before);
		else
			snprintf(rel, sizeof rel, "/trash?limit=%lld", (long long)want);
		char *url = client_ws_url(c, rel, NULL);
		json_t *r = client_call(c, "GET", url, NULL, what);
		free(url);
		if (!r) {
			json_decref(entries);
			return 1;
		}
		json_t *page = json_object_get(r, "entries");
		json_array_extend(entries, page);
		*more = json_is_true(json_object_get(r, "more"));
		json_get_int(r, "trash_days", days);
		json_t *last = json_array_get(page, json_array_size(page) - 1);
		before = last ? json_integer_value(json_object_get(last, "id")) : 0;
		json_decref(r);
		if (!all || !*more || before <= 0)
			break;
	}
	*out = entries;
	return 0;
}

static int trash_list(struct opts *o)
{
	if (need_args(o, 0, 0, "trash", "[--limit N | --all] [--json]"))
		return 2;
	int64_t limit = o->limit ? parse_id(o->limit) : 100;
	if (limit < 1 || limit > TRASH_PAGE_MAX || (o->limit && o->all)) {
		fprintf(stderr, "roost trash: --limit takes 1..%d (or --all for every entry)\n",
		        TRASH_PAGE_MAX);
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	json_t *entries = NULL;
	bool more = false;
	int64_t days = 0;
	int rc = trash_fetch(&c, limit, o->all, "trash", &entries, &more, &days);
	if (rc == 0 && o->json) {
		print_json(entries);
	} else if (rc == 0 && json_array_size(entries) == 0) {
		printf("the trash of workspace %s is empty\n", c.ws_name);
	} else if (rc == 0) {
		size_t i;
		json_t *e;
		json_array_foreach(entries, i, e)
		{
			char sz[32], when[32], until[32];
			int64_t size = 0, at = 0, exp = 0, nv = 0;
			json_get_int(e, "size", &size);
			json_get_int(e, "deleted_at", &at);
			json_get_int(e, "expires_at", &exp);
			json_get_int(e, "versions", &nv);
			fmt_time(at, when);
			fmt_time(exp, until);
			printf("%-10s  deleted %s  %s  (%lld %s, restorable until %s)\n",
			       human_bytes(size, sz), when, json_get_str(e, "path"), (long long)nv,
			       plural(nv, "version", "versions"), until);
		}
	}
	if (rc == 0 && more)
		fprintf(stderr, "(more in the trash: roost trash --all)\n");
	json_decref(entries);
	client_close(&c);
	return rc;
}

/* Restore the trash entry e; 0, or 1 after the hub said why. */
static int restore_one(struct client *c, json_t *e, bool json)
{
	char *url = client_ws_url(c, "/trash/restore", NULL);
	json_t *body = json_pack("{s:O}", "id", json_object_get(e, "id"));
	json_t *r = client_call(c, "POST", url, body, "trash restore");
	json_decref(body);
	free(url);
	if (r && json)
		print_json(r);
	else if (r)
		printf("restored %s (version %lld)\n", json_get_str(r, "restored"),
		       (long long)json_integer_value(json_object_get(r, "version")));
	int rc = r ? 0 : 1;
	json_decref(r);
	return rc;
}

/* Is path the file p itself (exact) or a file below the folder p? */
static bool below(const char *path, const char *p, bool exact)
{
	size_t n = strlen(p);
	if (exact)
		return strcmp(path, p) == 0;
	return strncmp(path, p, n) == 0 && (n == 1 || path[n] == '/');
}

/* roost trash restore PATH: the newest deletion of the file PATH; if no
 * file of that path is in the trash, every file deleted from the folder PATH
 * (each path's newest deletion), as roost rm -r left them. */
static int trash_restore(struct opts *o)
{
	if (o->npos != 2) {
		fprintf(stderr, "usage: roost trash restore PATH\n");
		return 2;
	}
	const char *why;
	char *p = path_normalize(o->pos[1], strlen(o->pos[1]), &why);
	if (!p) {
		fprintf(stderr, "roost trash restore: %s: %s\n", o->pos[1], why);
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace)) {
		free(p);
		return 1;
	}
	json_t *entries = NULL;
	bool more = false;
	int64_t days = 0;
	int rc = trash_fetch(&c, TRASH_PAGE_MAX, true, "trash restore", &entries, &more, &days);
	json_t *done = json_object(); /* paths restored (newest first, so once each) */
	int restored = 0, failed = 0;
	for (int exact = 1; rc == 0 && exact >= 0 && restored + failed == 0; exact--) {
		size_t i;
		json_t *e;
		json_array_foreach(entries, i, e)
		{
			const char *path = json_get_str(e, "path");
			if (!path || !below(path, p, exact) || json_object_get(done, path))
				continue;
			json_object_set_new(done, path, json_true());
			if (restore_one(&c, e, o->json) == 0)
				restored++;
			else
				failed++;
		}
	}
	if (rc == 0 && restored + failed == 0) {
		fprintf(stderr,
		        "roost trash restore: %s is not in the trash of workspace %s (see roost "
		        "trash)\n",
		        p, c.ws_name);
		rc = 1;
	} else if (rc == 0 && failed) {
		if (restored + failed > 1)
			fprintf(stderr, "roost trash restore: %d of %d %s not restored\n", failed,
			        restored + failed, plural(restored + failed, "file", "files"));
		rc = 1;
	}
	json_decref(done);
	json_decref(entries);
	client_close(&c);
	free(p);
	return rc;
}

/* roost trash empty [PATH] [--yes]: everything in the trash (or what was at
 * or below PATH) deleted for good. It cannot be undone, so it asks first;
 * without a terminal to ask on, only --yes does it. */
static int trash_empty(struct opts *o)
{
	if (o->npos > 2) {
		fprintf(stderr, "usage: roost trash empty [PATH] [--yes]\n");
		return 2;
	}
	const char *why;
	char *p = o->npos == 2 ? path_normalize(o->pos[1], strlen(o->pos[1]), &why) : NULL;
	if (o->npos == 2 && !p) {
		fprintf(stderr, "roost trash empty: %s: %s\n", o->pos[1], why);
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace)) {
		free(p);
		return 1;
	}
	int rc = 0;
	if (!o->yes) {
		char *q =
		    p ? xasprintf("Delete everything in the trash of workspace %s that was at "
		                  "or below %s, for good? This cannot be undone. [y/N] ",
		                  c.ws_name, p)
		      : xasprintf("Empty the trash of workspace %s: delete every file in it "
		                  "for good? This cannot be undone. [y/N] ",
		                  c.ws_name);
		char *a = prompt_line(q);
		free(q);
		if (!a) {
			fprintf(stderr,
			        "roost trash empty: deleting for good needs a yes: run it on a "
			        "terminal to be asked, or add --yes\n");
			rc = 2;
		} else if (strcmp(a, "y") != 0 && strcmp(a, "yes") != 0) {
			fprintf(stderr, "roost trash empty: nothing deleted\n");
			rc = 1;
		}
		free(a);
	}
	json_t *r = NULL;
	if (rc == 0) {
		char *url = client_ws_url(&c, "/trash/empty", NULL);
		json_t *body = p ? json_pack("{s:s}", "path", p) : json_object();
		r = client_call(&c, "POST", url, body, "trash empty");
		json_decref(body);
		free(url);
		rc = r ? 0 : 1;
	}
	if (r && o->json) {
		print_json(r);
	} else if (r) {
		int64_t n = json_integer_value(json_object_get(r, "purged"));
		if (n == 0)
			printf("nothing to delete: the trash of workspace %s holds nothing%s%s\n",
			       c.ws_name, p ? " from " : "", p ? p : "");
		else
			printf("deleted %lld %s for good from the trash of workspace %s; the next "
			       "GC frees their space\n",
			       (long long)n, plural(n, "file", "files"), c.ws_name);
	}
	json_decref(r);
	client_close(&c);
	free(p);
	return rc;
}

int cmd_trash(struct opts *o)
{
	if (o->npos >= 1 && strcmp(o->pos[0], "restore") == 0)
		return trash_restore(o);
	if (o->npos >= 1 && strcmp(o->pos[0], "empty") == 0)
		return trash_empty(o);
	if (o->npos >= 1) {
		fprintf(stderr, "usage: roost trash [--limit N | --all] [--json]\n"
		                "       roost trash restore PATH\n"
		                "       roost trash empty [PATH] [--yes]\n");
		return 2;
	}
	return trash_list(o);
}
