/* acl_rules: roles, permissions and the evaluation of a caller's ACL
 * (docs/access.md). Pure: no database, no HTTP, no locks; acl.c loads a
 * struct acl from the database and answers requests with it. A struct acl
 * belongs to one request (struct req) and so to one thread at a time. */
#ifndef ROOST_ACL_RULES_H
#define ROOST_ACL_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum role { ROLE_NONE = 0, ROLE_MEMBER, ROLE_ADMIN, ROLE_OWNER };
enum perm { PERM_INVALID = -1, PERM_NONE = 0, PERM_READ, PERM_WRITE, PERM_MANAGE };

/* Access is judged at a moment: ACL_NOW for live items; for a deleted item its
 * deleted_at, for a past change its time. Entries of deleted items keep
 * applying to what was under them then, so deleting never widens access. */
#define ACL_NOW INT64_MAX

/* An entry and the life of the item it is on: it applies to its path from the
 * item's creation until its deletion (until is ACL_NOW while the item lives).
 * Entries of deleted items are kept, so a deleted item, and the feed's past
 * changes, are judged by the entries that held when they were live. */
struct acl_entry {
	char *path;
	bool file;
	enum perm perm;
	int64_t from, until;
};

/* One caller's access in one workspace: their role, the workspace's default
 * access and their entries (none for owners and admins). */
struct acl {
	enum role role;
	enum perm dflt;
	size_t n;
	struct acl_entry *e;
};

enum perm perm_parse(const char *s);
const char *perm_name(enum perm p);
/* Frees a, its entries and their paths (all heap-allocated, as acl_load makes them). */
void acl_free(struct acl *a);
enum perm acl_perm(const struct acl *a, const char *path, bool is_file);
enum perm acl_perm_at(const struct acl *a, const char *path, bool is_file, int64_t at);
/* May the caller see path at all (read it, or a folder leading to something
 * readable)? */
bool acl_visible(const struct acl *a, const char *path, bool is_file);
bool acl_visible_at(const struct acl *a, const char *path, bool is_file, int64_t at);
/* Does the caller have at least need on path and everything below it? */
bool acl_subtree_at_least(const struct acl *a, const char *path, enum perm need);
bool acl_writes_somewhere(const struct acl *a);
/* Does the caller read every path at every moment (an owner or admin, or a
 * member with read by default and no entries)? Then nothing needs judging. */
bool acl_reads_everything(const struct acl *a);

#endif
