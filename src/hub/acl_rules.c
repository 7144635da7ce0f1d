/* acl_rules: how a caller's ACL answers "what may they do here" (acl_rules.h).
 *
 * Owners and admins may do anything in their workspace. For a member, the
 * nearest ACL entry for them on the path or an ancestor folder decides (an
 * entry on the file itself is nearest of all); with none, the workspace's
 * default access (none, read or write) applies. Moved out of acl.c so it can
 * be tested without a database. */
#include "acl_rules.h"

#include <stdlib.h>
#include <string.h>

/* Clocks of several hubs (and the steps of one transaction) differ by a few
 * ms: an entry is taken to cover this much before and after its item's life. */
#define ACL_SLACK_MS 10000

enum perm perm_parse(const char *s)
{
	if (!s)
		return PERM_INVALID;
	return strcmp(s, "none") == 0     ? PERM_NONE
	       : strcmp(s, "read") == 0   ? PERM_READ
	       : strcmp(s, "write") == 0  ? PERM_WRITE
	       : strcmp(s, "manage") == 0 ? PERM_MANAGE
	                                  : PERM_INVALID;
}

const char *perm_name(enum perm p)
{
	static const char *names[] = {"none", "read", "write", "manage"};
	return p >= PERM_NONE && p <= PERM_MANAGE ? names[p] : "invalid";
}

void acl_free(struct acl *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->e[i].path);
	free(a->e);
	free(a);
}

/* Is path equal to folder or below it? */
static bool under(const char *path, const char *folder)
{
	size_t n = strlen(folder);
	if (strcmp(folder, "/") == 0)
		return true;
	return strncmp(path, folder, n) == 0 && (path[n] == '/' || path[n] == 0);
}

/* Did e's item hold its path at moment at? Now: only live items' entries. */
static bool holds_at(const struct acl_entry *e, int64_t at)
{
	if (at == ACL_NOW)
		return e->until == ACL_NOW;
	return e->from - ACL_SLACK_MS <= at &&
	       (e->until == ACL_NOW || at <= e->until + ACL_SLACK_MS);
}

/* Of two entries on the same path that both held at a moment (a folder
 * deleted and made again within the slack), the narrower wins: never more. */
static const struct acl_entry *nearer(const struct acl_entry *best, const struct acl_entry *e)
{
	if (!best)
		return e;
	size_t lb = strlen(best->path), le = strlen(e->path);
	if (le != lb)
		return le > lb ? e : best;
	return e->perm < best->perm ? e : best;
}

enum perm acl_perm_at(const struct acl *a, const char *path, bool is_file, int64_t at)
{
	if (a->role >= ROLE_ADMIN)
		return PERM_MANAGE;
	const struct acl_entry *dir = NULL, *file = NULL;
	for (size_t i = 0; i < a->n; i++) {
		const struct acl_entry *e = &a->e[i];
		if (!holds_at(e, at))
			continue;
		if (e->file) {
			if (is_file && strcmp(e->path, path) == 0)
				file = nearer(file, e);
		} else if (under(path, e->path)) {
			dir = nearer(dir, e);
		}
	}
	return file ? file->perm : dir ? dir->perm : a->dflt;
}

enum perm acl_perm(const struct acl *a, const char *path, bool is_file)
{
	return acl_perm_at(a, path, is_file, ACL_NOW);
}

bool acl_visible_at(const struct acl *a, const char *path, bool is_file, int64_t at)
{
	if (acl_perm_at(a, path, is_file, at) >= PERM_READ)
		return true;
	if (is_file)
		return false;
	/* A folder leading to something readable is shown, so it can be reached. */
	for (size_t i = 0; i < a->n; i++)
		if (holds_at(&a->e[i], at) && a->e[i].perm >= PERM_READ &&
		    strcmp(a->e[i].path, path) != 0 && under(a->e[i].path, path))
			return true;
	return false;
}

bool acl_visible(const struct acl *a, const char *path, bool is_file)
{
	return acl_visible_at(a, path, is_file, ACL_NOW);
}

bool acl_subtree_at_least(const struct acl *a, const char *path, enum perm need)
{
	if (acl_perm(a, path, false) < need)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (holds_at(&a->e[i], ACL_NOW) && a->e[i].perm < need && under(a->e[i].path, path))
			return false;
	return true;
}

bool acl_writes_somewhere(const struct acl *a)
{
	if (a->role >= ROLE_ADMIN || a->dflt >= PERM_WRITE)
		return true;
	for (size_t i = 0; i < a->n; i++)
		if (holds_at(&a->e[i], ACL_NOW) && a->e[i].perm >= PERM_WRITE)
			return true;
	return false;
}

bool acl_reads_everything(const struct acl *a)
{
	return a->role >= ROLE_ADMIN || (a->dflt >= PERM_READ && a->n == 0);
}
