/* Property tests of the host's sync planner (src/host/plan.c), the way
 * Dropbox's CanopyCheck tests its planner: a random base tree, perturbed
 * twice into a local and a remote tree (edits, creates, deletes, renames,
 * case-only renames, folders and files swapped), planned, and the plan
 * applied to a simulated tree in random orders within each phase. Each case
 * must terminate, keep every local edit (at its path or as a conflict copy),
 * give the same trees in any order, end with local = remote = the new agreed
 * state, and plan nothing more from there.
 *
 * The seed is printed; ROOST_SEED=N replays it, ROOST_PLAN_CASES=N sets the
 * number of cases (default 3000). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/host/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a tiny deterministic PRNG (xorshift64*) ---- */

static uint64_t rng;

static uint64_t next(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static size_t pick(size_t n)
{
	return n ? (size_t)(next() % n) : 0;
}

/* ---- a simulated tree: paths and states, unordered ---- */

#define TREE_MAX 512

struct tree {
	struct plan_entry e[TREE_MAX];
	size_t n;
};

static int content_seq;

static struct plan_state file_state(void)
{
	struct plan_state s = {.kind = PLAN_FILE};
	snprintf(s.hash, sizeof s.hash, "c%d", ++content_seq);
	return s;
}

static const struct plan_state folder_state = {.kind = PLAN_FOLDER};

static struct plan_entry *tree_get(struct tree *t, const char *path)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->e[i].path, path) == 0)
			return &t->e[i];
	return NULL;
}

static bool under(const char *path, const char *top)
{
	size_t n = strlen(top);
	return strncmp(path, top, n) == 0 && (path[n] == 0 || path[n] == '/');
}

static void tree_remove(struct tree *t, const char *top)
{
	for (size_t i = 0; i < t->n;) {
		if (under(t->e[i].path, top)) {
			free(t->e[i].path);
			t->e[i] = t->e[--t->n];
		} else {
			i++;
		}
	}
}

static void tree_set(struct tree *t, const char *path, struct plan_state st)
{
	struct plan_entry *e = tree_get(t, path);
	if (e) {
		e->st = st;
		return;
	}
	if (t->n == TREE_MAX)
		fail_msg("simulated tree full");
	t->e[t->n++] = (struct plan_entry){.path = strdup(path), .st = st};
}

static void tree_copy(struct tree *dst, const struct tree *src)
{
	dst->n = src->n;
	for (size_t i = 0; i < src->n; i++)
		dst->e[i] = (struct plan_entry){.path = strdup(src->e[i].path), .st = src->e[i].st};
}

static void tree_free(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->e[i].path);
	t->n = 0;
}

static char *parent_of(const char *path)
{
	char *p = strdup(path);
	char *slash = strrchr(p, '/');
	if (slash == p)
		slash[1] = 0;
	else
		*slash = 0;
	return p;
}

/* Parents made folders, as mkdir -p; false when a file is in the way. */
static bool tree_mkdir_p(struct tree *t, const char *path)
{
	if (strcmp(path, "/") == 0)
		return true;
	char *parent = parent_of(path);
	bool ok = tree_mkdir_p(t, parent);
	free(parent);
	struct plan_entry *e = tree_get(t, path);
	if (e)
		return ok && e->st.kind == PLAN_FOLDER;
	tree_set(t, path, folder_state);
	return ok;
}

static bool tree_equal(const struct tree *a, const struct plan_entry *b, size_t nb)
{
	if (a->n != nb)
		return false;
	for (size_t i = 0; i < nb; i++) {
		struct plan_entry *e = tree_get((struct tree *)a, b[i].path);
		if (!e || !plan_same(&e->st, &b[i].st))
			return false;
	}
	return true;
}

/* ---- random trees ---- */

static const char *names[] = {"a", "b", "A", "c", "x.txt", "X.txt", "y.md", "d"};
#define NNAMES (sizeof names / sizeof *names)

/* A random folder of t (or the root). */
static const char *random_folder(const struct tree *t)
{
	size_t nf = 0;
	for (size_t i = 0; i < t->n; i++)
		nf += t->e[i].st.kind == PLAN_FOLDER;
	size_t k = pick(nf + 1);
	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].st.kind == PLAN_FOLDER && k-- == 0)
			return t->e[i].path;
	return "/";
}

/* A free path in a random folder, at most 3 deep; NULL if none was found. */
static char *random_free_path(const struct tree *t)
{
	for (int tries = 0; tries < 8; tries++) {
		const char *dir = random_folder(t);
		char path[256];
		snprintf(path, sizeof path, "%s/%s", strcmp(dir, "/") ? dir : "",
		         names[pick(NNAMES)]);
		int depth = 0;
		for (const char *c = path; *c; c++)
			depth += *c == '/';
		if (depth <= 3 && !tree_get((struct tree *)t, path))
			return strdup(path);
	}
	return NULL;
}

static void random_base(struct tree *t)
{
	size_t n = 1 + pick(14);
	for (size_t i = 0; i < n; i++) {
		char *p = random_free_path(t);
		if (p)
			tree_set(t, p, pick(3) ? file_state() : folder_state);
		free(p);
	}
}

/* Move the subtree at from to to (to free, its parent a folder). */
static void tree_move(struct tree *t, const char *from, const char *to)
{
	size_t n = strlen(from);
	for (size_t i = 0; i < t->n; i++) {
		if (!under(t->e[i].path, from))
			continue;
		size_t len = strlen(to) + strlen(t->e[i].path + n) + 1;
		char *np = malloc(len);
		snprintf(np, len, "%s%s", to, t->e[i].path + n);
		free(t->e[i].path);
		t->e[i].path = np;
	}
}

/* One random change, as a user or another host would make it. */
static void perturb_once(struct tree *t)
{
	struct plan_entry *e = t->n ? &t->e[pick(t->n)] : NULL;
	switch (pick(7)) {
	case 0: /* edit */
		if (e && e->st.kind == PLAN_FILE)
			e->st = file_state();
		break;
	case 1: { /* create */
		char *p = random_free_path(t);
		if (p)
			tree_set(t, p, pick(4) ? file_state() : folder_state);
		free(p);
		break;
	}
	case 2: /* delete (a folder with all in it) */
		if (e) {
			char *p = strdup(e->path);
			tree_remove(t, p);
			free(p);
		}
		break;
	case 3: { /* rename or move, possibly across folders */
		if (!e)
			break;
		char *from = strdup(e->path), *to = random_free_path(t);
		if (to && !under(to, from))
			tree_move(t, from, to);
		free(from);
		free(to);
		break;
	}
	case 4: { /* case-only rename: the last name's first letter */
		if (!e)
			break;
		char *to = strdup(e->path);
		char *last = strrchr(to, '/') + 1;
		*last = (char)(*last >= 'a' && *last <= 'z'   ? *last - 32
		               : *last >= 'A' && *last <= 'Z' ? *last + 32
		                                              : *last);
		if (!tree_get(t, to)) {
			char *from = strdup(e->path);
			tree_move(t, from, to);
			free(from);
		}
		free(to);
		break;
	}
	case 5: /* a folder replaced by a file, or a file by a folder */
	case 6:
		if (e) {
			char *p = strdup(e->path);
			bool was_dir = e->st.kind == PLAN_FOLDER;
			tree_remove(t, p);
			tree_set(t, p, was_dir ? file_state() : folder_state);
			free(p);
		}
		break;
	}
}

static void perturb(struct tree *t)
{
	size_t n = pick(6);
	for (size_t i = 0; i < n; i++)
		perturb_once(t);
}

/* ---- applying a plan ---- */

static void shuffle(struct plan_op **v, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = pick(i);
		struct plan_op *x = v[i - 1];
		v[i - 1] = v[j];
		v[j] = x;
	}
}

/* Apply op to the two trees; false (with why) when it cannot be done. */
static bool apply(struct tree *l, struct tree *r, const struct plan_op *op, const char **why)
{
	bool local = op->kind == PLAN_CONFLICT_LOCAL || op->kind == PLAN_DELETE_LOCAL ||
	             op->kind == PLAN_MKDIR_LOCAL || op->kind == PLAN_DOWNLOAD ||
	             op->kind == PLAN_MOVE_LOCAL;
	struct tree *t = local ? l : r, *other = local ? r : l;
	struct plan_entry *e = tree_get(t, op->path);
	char *parent = parent_of(op->path);
	bool ok = true;
	switch (op->kind) {
	case PLAN_CONFLICT_LOCAL:
	case PLAN_CONFLICT_REMOTE:
		ok = e && e->st.kind == PLAN_FILE && !tree_get(t, op->to);
		*why = "conflict copy of a path that is no file, or onto a taken name";
		if (ok) {
			struct plan_state st = e->st;
			tree_remove(t, op->path);
			tree_set(t, op->to, st);
		}
		break;
	case PLAN_MOVE_LOCAL:
	case PLAN_MOVE_REMOTE: {
		char *to_parent = parent_of(op->to);
		ok = e && plan_same(&e->st, &op->st) && !tree_get(t, op->to) &&
		     tree_mkdir_p(t, to_parent);
		*why = "a move of a file that is not there, onto a taken name or under a file";
		free(to_parent);
		if (ok) {
			tree_remove(t, op->path);
			tree_set(t, op->to, op->st);
		}
		break;
	}
	case PLAN_DELETE_LOCAL:
	case PLAN_DELETE_REMOTE:
		tree_remove(t, op->path);
		break;
	case PLAN_MKDIR_LOCAL:
	case PLAN_MKDIR_REMOTE:
		ok = tree_mkdir_p(t, op->path);
		*why = "mkdir where a file is";
		break;
	case PLAN_DOWNLOAD:
	case PLAN_UPLOAD: {
		struct plan_entry *src = tree_get(other, op->path);
		ok = src && plan_same(&src->st, &op->st) && tree_mkdir_p(t, parent) &&
		     !(e && e->st.kind == PLAN_FOLDER);
		*why = "transfer from a side that does not hold the planned file, or under a file";
		if (ok)
			tree_set(t, op->path, src->st);
		break;
	}
	case PLAN_RECORD:
	case PLAN_NOTHING:
		break;
	}
	free(parent);
	return ok;
}

static void dump(const char *what, const struct plan_entry *e, size_t n)
{
	fprintf(stderr, "  %s:\n", what);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "    %s %s\n", e[i].path,
		        e[i].st.kind == PLAN_FOLDER ? "/" : e[i].st.hash);
}

static void dump_case(const struct tree *b, const struct tree *l, const struct tree *r,
                      const struct plan *p)
{
	dump("base", b->e, b->n);
	dump("local", l->e, l->n);
	dump("remote", r->e, r->n);
	dump("result", p->result, p->nresult);
	fprintf(stderr, "  ops:\n");
	for (size_t i = 0; i < p->nops; i++)
		fprintf(stderr, "    %d %s %s%s%s\n", p->ops[i].phase, plan_op_name(p->ops[i].kind),
		        p->ops[i].path, p->ops[i].to ? " -> " : "",
		        p->ops[i].to ? p->ops[i].to : "");
}

/* Run p's ops on copies of l and r, in phase order, shuffled within each. */
static bool run_plan(const struct tree *l0, const struct tree *r0, const struct plan *p,
                     struct tree *l, struct tree *r, const char **why)
{
	tree_copy(l, l0);
	tree_copy(r, r0);
	struct plan_op **order = calloc(p->nops + 1, sizeof *order);
	for (size_t i = 0; i < p->nops; i++)
		order[i] = &p->ops[i];
	bool ok = true;
	for (size_t start = 0; start < p->nops && ok;) {
		size_t end = start;
		while (end < p->nops && order[end]->phase == order[start]->phase)
			end++;
		shuffle(order + start, end - start);
		for (size_t i = start; i < end && ok; i++)
			ok = apply(l, r, order[i], why);
		start = end;
	}
	free(order);
	return ok;
}

/* Where the local edit (path, st) may be kept: path or a conflict copy. */
static bool edit_kept(const struct plan *p, const char *path, const struct plan_state *st)
{
	const char *dot = strrchr(strrchr(path, '/') + 1, '.');
	size_t stem = dot && dot != strrchr(path, '/') + 1 ? (size_t)(dot - path) : strlen(path);
	for (size_t i = 0; i < p->nresult; i++) {
		const char *q = p->result[i].path;
		bool here = strcmp(q, path) == 0 || (strncmp(q, path, stem) == 0 &&
		                                     strncmp(q + stem, " (conflict ", 11) == 0);
		if (here && plan_same(&p->result[i].st, st))
			return true;
	}
	return false;
}

static bool result_is_a_tree(const struct plan *p)
{
	for (size_t i = 0; i < p->nresult; i++) {
		char *parent = parent_of(p->result[i].path);
		bool ok = strcmp(parent, "/") == 0;
		for (size_t j = 0; j < p->nresult && !ok; j++)
			ok = strcmp(p->result[j].path, parent) == 0 &&
			     p->result[j].st.kind == PLAN_FOLDER;
		free(parent);
		if (!ok)
			return false;
	}
	return true;
}

/* Operations seen, by kind, over a run: the generator must reach them all. */
static size_t seen_ops[PLAN_RECORD + 1];

/* One random case; false (reported) when a property fails. */
static bool one_case(size_t k)
{
	struct tree b = {0}, l = {0}, r = {0}, l1 = {0}, r1 = {0}, l2 = {0}, r2 = {0};
	random_base(&b);
	tree_copy(&l, &b);
	tree_copy(&r, &b);
	perturb(&l);
	perturb(&r);
	struct plan p, again;
	const char *failed = NULL, *why = "";
	assert_int_equal(plan_make(b.e, b.n, l.e, l.n, r.e, r.n, &p), 0);
	for (size_t i = 0; i < p.nops; i++)
		seen_ops[p.ops[i].kind]++;
	if (!result_is_a_tree(&p))
		failed = "the new agreed state is not a tree";
	for (size_t i = 0; i < l.n && !failed; i++) {
		struct plan_entry *be = tree_get(&b, l.e[i].path);
		if (l.e[i].st.kind == PLAN_FILE && !(be && plan_same(&be->st, &l.e[i].st)) &&
		    !edit_kept(&p, l.e[i].path, &l.e[i].st))
			failed = "a local edit was dropped";
	}
	if (!failed && !run_plan(&l, &r, &p, &l1, &r1, &why))
		failed = why;
	if (!failed && !run_plan(&l, &r, &p, &l2, &r2, &why))
		failed = why;
	if (!failed &&
	    !(tree_equal(&l1, p.result, p.nresult) && tree_equal(&r1, p.result, p.nresult)))
		failed = "after the plan, local and remote differ from the agreed state";
	if (!failed &&
	    !(tree_equal(&l2, p.result, p.nresult) && tree_equal(&r2, p.result, p.nresult)))
		failed = "another order of the same batches gave other trees";
	if (!failed) {
		assert_int_equal(plan_make(p.result, p.nresult, p.result, p.nresult, p.result,
		                           p.nresult, &again),
		                 0);
		if (again.nops != 0)
			failed = "planning again from the agreed state is not a no-op";
		plan_fini(&again);
	}
	if (failed) {
		fprintf(stderr, "case %zu: %s\n", k, failed);
		dump_case(&b, &l, &r, &p);
	}
	plan_fini(&p);
	tree_free(&b);
	tree_free(&l);
	tree_free(&r);
	tree_free(&l1);
	tree_free(&r1);
	tree_free(&l2);
	tree_free(&r2);
	return !failed;
}

static void random_correlated_trees_converge_and_keep_local_edits(void **state)
{
	(void)state;
	const char *s = getenv("ROOST_SEED"), *c = getenv("ROOST_PLAN_CASES");
	uint64_t seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)clock();
	size_t cases = c ? strtoul(c, NULL, 10) : 3000;
	printf("test_plan: ROOST_SEED=%llu (%zu cases)\n", (unsigned long long)seed, cases);
	fflush(stdout);
	rng = seed ? seed : 1;
	for (size_t k = 0; k < cases; k++)
		if (!one_case(k))
			fail_msg("property failed; replay with ROOST_SEED=%llu",
			         (unsigned long long)seed);
	for (int k = PLAN_CONFLICT_LOCAL; k <= PLAN_RECORD && cases >= 3000; k++) {
		printf("  %-16s %zu\n", plan_op_name((enum plan_op_kind)k), seen_ops[k]);
		if (!seen_ops[k])
			fail_msg("no %s in %zu cases: the generator misses it (ROOST_SEED=%llu)",
			         plan_op_name((enum plan_op_kind)k), cases,
			         (unsigned long long)seed);
	}
}

/* ---- the rules, one at a time ---- */

static struct plan_entry F(const char *path, const char *hash) {
	struct plan_entry e = {.path = (char *)path, .st = {.kind = PLAN_FILE}};
	snprintf(e.st.hash, sizeof e.st.hash, "%s", hash);
	return e;
}

static struct plan_entry
D(const char *path) {
	return (struct plan_entry){.path = (char *)path, .st = {.kind = PLAN_FOLDER}};
}

static void
edits_on_both_sides_keep_the_local_one_as_a_conflict_copy(void **state)
{
	(void)state;
	struct plan_entry b[] = {F("/r.txt", "1")}, l[] = {F("/r.txt", "2")},
	                  r[] = {F("/r.txt", "3")};
	struct plan p;
	assert_int_equal(plan_make(b, 1, l, 1, r, 1, &p), 0);
	assert_int_equal(p.nops, 3);
	assert_int_equal(p.ops[0].kind, PLAN_CONFLICT_LOCAL);
	assert_string_equal(p.ops[0].to, "/r (conflict 1).txt");
	/* transfers by path: "/r (conflict 1).txt" sorts before "/r.txt" */
	assert_int_equal(p.ops[1].kind, PLAN_UPLOAD);
	assert_string_equal(p.ops[1].path, "/r (conflict 1).txt");
	assert_int_equal(p.ops[2].kind, PLAN_DOWNLOAD);
	assert_string_equal(p.ops[2].path, "/r.txt");
	plan_fini(&p);
}

static void an_edit_deleted_elsewhere_comes_back(void **state)
{
	(void)state;
	struct plan_entry b[] = {F("/k", "1")}, l[] = {F("/k", "2")};
	struct plan p;
	assert_int_equal(plan_make(b, 1, l, 1, NULL, 0, &p), 0);
	assert_int_equal(p.nops, 1);
	assert_int_equal(p.ops[0].kind, PLAN_UPLOAD);
	plan_fini(&p);
}

static void an_unchanged_file_follows_a_remote_delete(void **state)
{
	(void)state;
	struct plan_entry b[] = {F("/k", "1")}, l[] = {F("/k", "1")};
	struct plan p;
	assert_int_equal(plan_make(b, 1, l, 1, NULL, 0, &p), 0);
	assert_int_equal(p.nops, 1);
	assert_int_equal(p.ops[0].kind, PLAN_DELETE_LOCAL);
	assert_int_equal(p.nresult, 0);
	plan_fini(&p);
}

static void a_remote_file_in_place_of_a_local_folder_is_kept_aside(void **state)
{
	(void)state;
	struct plan_entry l[] = {D("/d"), F("/d/n", "1")}, r[] = {F("/d", "2")};
	struct plan p;
	assert_int_equal(plan_make(NULL, 0, l, 2, r, 1, &p), 0);
	assert_int_equal(p.ops[0].kind, PLAN_CONFLICT_REMOTE);
	assert_string_equal(p.ops[0].to, "/d (conflict 1)");
	assert_int_equal(p.nresult, 3);
	plan_fini(&p);
}

static void a_local_rename_is_one_move_in_the_workspace(void **state)
{
	(void)state;
	struct plan_entry b[] = {D("/d"), F("/d/old.txt", "1")},
	                  l[] = {D("/d"), F("/d/new.txt", "1")},
	                  r[] = {D("/d"), F("/d/old.txt", "1")};
	struct plan p;
	assert_int_equal(plan_make(b, 2, l, 2, r, 2, &p), 0);
	assert_int_equal(p.nops, 1);
	assert_int_equal(p.ops[0].kind, PLAN_MOVE_REMOTE);
	assert_string_equal(p.ops[0].path, "/d/old.txt");
	assert_string_equal(p.ops[0].to, "/d/new.txt");
	plan_fini(&p);
}

static void a_remote_rename_edited_here_keeps_the_edit(void **state)
{
	(void)state;
	/* Renamed there, edited here: the edit stays at the old name (uploaded),
	 * the renamed copy comes down. */
	struct plan_entry b[] = {F("/a", "1")}, l[] = {F("/a", "2")}, r[] = {F("/b", "1")};
	struct plan p;
	assert_int_equal(plan_make(b, 1, l, 1, r, 1, &p), 0);
	assert_int_equal(p.nops, 2);
	assert_int_equal(p.ops[0].kind, PLAN_UPLOAD);
	assert_int_equal(p.ops[1].kind, PLAN_DOWNLOAD);
	plan_fini(&p);
}

static void a_path_listed_twice_is_refused(void **state)
{
	(void)state;
	struct plan_entry l[] = {F("/a", "1"), D("/a")};
	struct plan p;
	assert_int_equal(plan_make(NULL, 0, l, 2, NULL, 0, &p), -22);
	assert_null(p.ops);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(edits_on_both_sides_keep_the_local_one_as_a_conflict_copy),
	    cmocka_unit_test(an_edit_deleted_elsewhere_comes_back),
	    cmocka_unit_test(an_unchanged_file_follows_a_remote_delete),
	    cmocka_unit_test(a_remote_file_in_place_of_a_local_folder_is_kept_aside),
	    cmocka_unit_test(a_local_rename_is_one_move_in_the_workspace),
	    cmocka_unit_test(a_remote_rename_edited_here_keeps_the_edit),
	    cmocka_unit_test(a_path_listed_twice_is_refused),
	    cmocka_unit_test(random_correlated_trees_converge_and_keep_local_edits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
