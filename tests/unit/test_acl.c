/* Unit tests for the ACL rules (src/hub/acl_rules.c, docs/access.md): the
 * nearest entry decides, a file's own entry is nearest of all, owners and
 * admins are never restricted, deleted items' entries judge the past only,
 * and what cannot be read stays hidden unless it leads to something that can. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/hub/acl_rules.h"

#include <stdlib.h>
#include <string.h>

/* The slack acl_rules.c allows around an item's life (ACL_SLACK_MS). */
#define SLACK 10000

static struct acl_entry dir(const char *path, enum perm p)
{
	return (struct acl_entry){(char *)path, false, p, 0, ACL_NOW};
}

static struct acl_entry file(const char *path, enum perm p)
{
	return (struct acl_entry){(char *)path, true, p, 0, ACL_NOW};
}

/* An entry of an item that lived from from to until (deleted then). */
static struct acl_entry gone(const char *path, enum perm p, int64_t from, int64_t until)
{
	return (struct acl_entry){(char *)path, false, p, from, until};
}

static struct acl member(enum perm dflt, struct acl_entry *e, size_t n)
{
	return (struct acl){ROLE_MEMBER, dflt, n, e};
}

#define N(a) (sizeof(a) / sizeof *(a))

static void owners_and_admins_may_do_anything(void **state)
{
	(void)state;
	struct acl_entry e[] = {dir("/", PERM_NONE), file("/f", PERM_NONE)};
	struct acl a = {ROLE_OWNER, PERM_NONE, N(e), e};
	assert_int_equal(acl_perm(&a, "/f", true), PERM_MANAGE);
	assert_int_equal(acl_perm(&a, "/x/y", false), PERM_MANAGE);
	a.role = ROLE_ADMIN;
	assert_int_equal(acl_perm(&a, "/f", true), PERM_MANAGE);
	assert_true(acl_writes_somewhere(&a));
	a.role = ROLE_MEMBER;
	assert_int_equal(acl_perm(&a, "/f", true), PERM_NONE);
	assert_int_equal(acl_perm(&a, "/x/y", false), PERM_NONE);
}

static void without_entries_the_workspace_default_applies(void **state)
{
	(void)state;
	for (enum perm d = PERM_NONE; d <= PERM_WRITE; d++) {
		struct acl a = member(d, NULL, 0);
		assert_int_equal(acl_perm(&a, "/", false), d);
		assert_int_equal(acl_perm(&a, "/a/b.txt", true), d);
	}
}

static void a_folder_entry_covers_the_folder_and_below(void **state)
{
	(void)state;
	struct acl_entry e[] = {dir("/a", PERM_READ)};
	struct acl a = member(PERM_WRITE, e, N(e));
	assert_int_equal(acl_perm(&a, "/a", false), PERM_READ);
	assert_int_equal(acl_perm(&a, "/a/b", false), PERM_READ);
	assert_int_equal(acl_perm(&a, "/a/b/c.txt", true), PERM_READ);
	/* Not the parent, not a sibling. */
	assert_int_equal(acl_perm(&a, "/", false), PERM_WRITE);
	assert_int_equal(acl_perm(&a, "/b", false), PERM_WRITE);
}

static void a_prefix_is_not_an_ancestor(void **state)
{
	(void)state;
	struct acl_entry e[] = {dir("/a", PERM_NONE), dir("/ab/c", PERM_NONE)};
	struct acl a = member(PERM_READ, e, N(e));
	assert_int_equal(acl_perm(&a, "/ab", false), PERM_READ);
	assert_int_equal(acl_perm(&a, "/ab.txt", true), PERM_READ);
	assert_int_equal(acl_perm(&a, "/a.b", true), PERM_READ);
	assert_int_equal(acl_perm(&a, "/ab/cd", false), PERM_READ);
	assert_int_equal(acl_perm(&a, "/ab/c/d", false), PERM_NONE);
	assert_int_equal(acl_perm(&a, "/a/b", false), PERM_NONE);
}

static void an_entry_on_the_root_covers_everything(void **state)
{
	(void)state;
	struct acl_entry e[] = {dir("/", PERM_READ)};
	struct acl a = member(PERM_NONE, e, N(e));
	assert_int_equal(acl_perm(&a, "/", false), PERM_READ);
	assert_int_equal(acl_perm(&a, "/x", true), PERM_READ);
	assert_int_equal(acl_perm(&a, "/x/y/z", false), PERM_READ);
}

static void the_nearest_folder_entry_wins_either_way(void **state)
{
	(void)state;
	/* Deny under allow, and allow under deny, in either order of the list. */
	struct acl_entry e[] = {dir("/a/b/c", PERM_WRITE), dir("/a", PERM_WRITE),
	                        dir("/a/b", PERM_NONE)};
	struct acl a = member(PERM_READ, e, N(e));
	assert_int_equal(acl_perm(&a, "/a/x", true), PERM_WRITE);
	assert_int_equal(acl_perm(&a, "/a/b", false), PERM_NONE);
	assert_int_equal(acl_perm(&a, "/a/b/x", true), PERM_NONE);
	assert_int_equal(acl_perm(&a, "/a/b/c", false), PERM_WRITE);
	assert_int_equal(acl_perm(&a, "/a/b/c/d/e", true), PERM_WRITE);
	assert_int_equal(acl_perm(&a, "/z", true), PERM_READ);
}

static void a_file_entry_beats_its_folders(void **state)
{
	(void)state;
	struct acl_entry e[] = {dir("/a", PERM_NONE), file("/a/f", PERM_READ),
	                        file("/a/g", PERM_NONE), dir("/a/g2", PERM_MANAGE)};
	struct acl a = member(PERM_WRITE, e, N(e));
	assert_int_equal(acl_perm(&a, "/a/f", true), PERM_READ);
	assert_int_equal(acl_perm(&a, "/a/g", true), PERM_NONE);
	/* A file entry is for that file only: not a folder of the same path,
	 * not a path it is a prefix of. */
	assert_int_equal(acl_perm(&a, "/a/f", false), PERM_NONE);
	assert_int_equal(acl_perm(&a, "/a/f/x", true), PERM_NONE);
	assert_int_equal(acl_perm(&a, "/a/ff", true), PERM_NONE);
	/* A file entry narrows even under a wider folder entry. */
	struct acl_entry e2[] = {dir("/a", PERM_MANAGE), file("/a/f", PERM_NONE)};
	struct acl b = member(PERM_WRITE, e2, N(e2));
	assert_int_equal(acl_perm(&b, "/a/f", true), PERM_NONE);
	assert_int_equal(acl_perm(&b, "/a/h", true), PERM_MANAGE);
}

static void a_deleted_items_entry_judges_only_its_past(void **state)
{
	(void)state;
	const int64_t born = 1000000, died = 2000000;
	struct acl_entry e[] = {gone("/a", PERM_NONE, born, died)};
	struct acl a = member(PERM_READ, e, N(e));
	/* Now (live items), a deleted folder's entry no longer applies. */
	assert_int_equal(acl_perm(&a, "/a/x", true), PERM_READ);
	/* During its life, and within the slack either side of it, it does. */
	assert_int_equal(acl_perm_at(&a, "/a/x", true, died), PERM_NONE);
	assert_int_equal(acl_perm_at(&a, "/a/x", true, born), PERM_NONE);
	assert_int_equal(acl_perm_at(&a, "/a/x", true, died + SLACK), PERM_NONE);
	assert_int_equal(acl_perm_at(&a, "/a/x", true, born - SLACK), PERM_NONE);
	assert_int_equal(acl_perm_at(&a, "/a/x", true, died + SLACK + 1), PERM_READ);
	assert_int_equal(acl_perm_at(&a, "/a/x", true, born - SLACK - 1), PERM_READ);
	/* A live item's entry applies at any past moment from its creation. */
	struct acl_entry l[] = {{(char *)"/b", false, PERM_WRITE, born, ACL_NOW}};
	struct acl b = member(PERM_NONE, l, N(l));
	assert_int_equal(acl_perm_at(&b, "/b/x", true, died), PERM_WRITE);
	assert_int_equal(acl_perm_at(&b, "/b/x", true, born - SLACK - 1), PERM_NONE);
}

static void of_two_entries_on_one_path_the_narrower_wins(void **state)
{
	(void)state;
	/* A folder deleted and made again within the slack: both entries hold. */
	const int64_t t = 5000000;
	struct acl_entry e[] = {gone("/a", PERM_WRITE, 0, t), gone("/a", PERM_READ, t, ACL_NOW)};
	struct acl a = member(PERM_NONE, e, N(e));
	assert_int_equal(acl_perm_at(&a, "/a/x", true, t), PERM_READ);
	struct acl_entry r[] = {e[1], e[0]};
	struct acl b = member(PERM_NONE, r, N(r));
	assert_int_equal(acl_perm_at(&b, "/a/x", true, t), PERM_READ);
}

static void what_cannot_be_read_is_hidden(void **state)
{
	(void)state;
	struct acl_entry e[] = {dir("/a/b", PERM_READ), file("/c/f", PERM_READ),
	                        dir("/ab/x", PERM_READ)};
	struct acl a = member(PERM_NONE, e, N(e));
	/* A folder that leads to something readable is shown. */
	assert_true(acl_visible(&a, "/", false));
	assert_true(acl_visible(&a, "/a", false));
	assert_true(acl_visible(&a, "/a/b", false));
	assert_true(acl_visible(&a, "/c", false));
	/* A file never leads anywhere; siblings of readable things stay hidden. */
	assert_false(acl_visible(&a, "/a", true));
	assert_false(acl_visible(&a, "/c/g", true));
	assert_false(acl_visible(&a, "/a/c", false));
	assert_false(acl_visible(&a, "/d", false));
	/* "/ab/x" is not below "/a" (but is below "/ab"). */
	struct acl_entry only[] = {dir("/ab/x", PERM_READ)};
	struct acl b = member(PERM_NONE, only, N(only));
	assert_false(acl_visible(&b, "/a", false));
	assert_true(acl_visible(&b, "/ab", false));
	/* An entry that only denies leads nowhere. */
	struct acl_entry deny[] = {dir("/a/b", PERM_NONE)};
	struct acl c = member(PERM_NONE, deny, N(deny));
	assert_false(acl_visible(&c, "/a", false));
}

static void a_deleted_items_entry_does_not_reveal_its_parent_now(void **state)
{
	(void)state;
	struct acl_entry e[] = {gone("/a/b", PERM_READ, 0, 100)};
	struct acl a = member(PERM_NONE, e, N(e));
	assert_false(acl_visible(&a, "/a", false));
	assert_true(acl_visible_at(&a, "/a", false, 50));
	assert_true(acl_visible_at(&a, "/a/b/f", true, 50));
}

static void subtree_at_least_sees_every_narrower_entry_below(void **state)
{
	(void)state;
	struct acl_entry e[] = {dir("/x/y", PERM_READ), dir("/xy", PERM_NONE),
	                        gone("/z", PERM_NONE, 0, 100)};
	struct acl a = member(PERM_WRITE, e, N(e));
	assert_false(acl_subtree_at_least(&a, "/", PERM_WRITE));
	assert_false(acl_subtree_at_least(&a, "/x", PERM_WRITE));
	assert_false(acl_subtree_at_least(&a, "/x/y/deep", PERM_WRITE));
	assert_true(acl_subtree_at_least(&a, "/x/w", PERM_WRITE));
	assert_true(acl_subtree_at_least(&a, "/x", PERM_READ));
	/* "/xy" denies, but is not below "/x"; the deleted "/z" no longer counts. */
	assert_false(acl_subtree_at_least(&a, "/", PERM_READ));
	assert_true(acl_subtree_at_least(&a, "/z", PERM_WRITE));
	/* The path itself must reach need, not only what is below it. */
	struct acl b = member(PERM_READ, NULL, 0);
	assert_false(acl_subtree_at_least(&b, "/", PERM_WRITE));
	assert_true(acl_subtree_at_least(&b, "/", PERM_READ));
}

static void writes_somewhere_needs_a_live_write_grant(void **state)
{
	(void)state;
	struct acl a = member(PERM_READ, NULL, 0);
	assert_false(acl_writes_somewhere(&a));
	a.dflt = PERM_WRITE;
	assert_true(acl_writes_somewhere(&a));
	struct acl_entry dead[] = {gone("/a", PERM_WRITE, 0, 100)};
	struct acl b = member(PERM_NONE, dead, N(dead));
	assert_false(acl_writes_somewhere(&b));
	struct acl_entry live[] = {dir("/a", PERM_READ), file("/a/f", PERM_MANAGE)};
	struct acl c = member(PERM_NONE, live, N(live));
	assert_true(acl_writes_somewhere(&c));
}

static void reads_everything_only_without_entries(void **state)
{
	(void)state;
	struct acl_entry hidden[] = {dir("/a", PERM_NONE)};
	struct acl admin = member(PERM_NONE, hidden, N(hidden));
	admin.role = ROLE_ADMIN;
	assert_true(acl_reads_everything(&admin));
	struct acl open = member(PERM_READ, NULL, 0);
	assert_true(acl_reads_everything(&open));
	struct acl closed = member(PERM_NONE, NULL, 0);
	assert_false(acl_reads_everything(&closed));
	struct acl some = member(PERM_WRITE, hidden, N(hidden));
	assert_false(acl_reads_everything(&some));
	struct acl_entry dead[] = {gone("/a", PERM_NONE, 0, 100)};
	struct acl once = member(PERM_READ, dead, N(dead)); /* hid /a in the past */
	assert_false(acl_reads_everything(&once));
}

static void perm_names_round_trip(void **state)
{
	(void)state;
	for (enum perm p = PERM_NONE; p <= PERM_MANAGE; p++)
		assert_int_equal(perm_parse(perm_name(p)), p);
	assert_int_equal(perm_parse(NULL), PERM_INVALID);
	assert_int_equal(perm_parse(""), PERM_INVALID);
	assert_int_equal(perm_parse("Read"), PERM_INVALID);
	assert_int_equal(perm_parse("read "), PERM_INVALID);
	assert_string_equal(perm_name(PERM_INVALID), "invalid");
	assert_string_equal(perm_name((enum perm)4), "invalid");
}

static void acl_free_frees_what_acl_load_makes(void **state)
{
	(void)state;
	acl_free(NULL);
	struct acl *a = calloc(1, sizeof *a);
	a->n = 2;
	a->e = calloc(2, sizeof *a->e);
	a->e[0].path = strdup("/a");
	a->e[1].path = strdup("/b");
	acl_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(owners_and_admins_may_do_anything),
	    cmocka_unit_test(without_entries_the_workspace_default_applies),
	    cmocka_unit_test(a_folder_entry_covers_the_folder_and_below),
	    cmocka_unit_test(a_prefix_is_not_an_ancestor),
	    cmocka_unit_test(an_entry_on_the_root_covers_everything),
	    cmocka_unit_test(the_nearest_folder_entry_wins_either_way),
	    cmocka_unit_test(a_file_entry_beats_its_folders),
	    cmocka_unit_test(a_deleted_items_entry_judges_only_its_past),
	    cmocka_unit_test(of_two_entries_on_one_path_the_narrower_wins),
	    cmocka_unit_test(what_cannot_be_read_is_hidden),
	    cmocka_unit_test(a_deleted_items_entry_does_not_reveal_its_parent_now),
	    cmocka_unit_test(subtree_at_least_sees_every_narrower_entry_below),
	    cmocka_unit_test(writes_somewhere_needs_a_live_write_grant),
	    cmocka_unit_test(reads_everything_only_without_entries),
	    cmocka_unit_test(perm_names_round_trip),
	    cmocka_unit_test(acl_free_frees_what_acl_load_makes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
