/* plan: the reconciliation decision, pure (see plan.h for the rules). */
#include "plan.h"
#include "../core/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool plan_same(const struct plan_state *a, const struct plan_state *b)
{
	if (a->kind != b->kind)
		return false;
	return a->kind != PLAN_FILE || strcmp(a->hash, b->hash) == 0;
}

static const struct plan_state absent = {.kind = PLAN_ABSENT};

struct plan_state plan_path(const struct plan_state *base, const struct plan_state *local,
                            const struct plan_state *remote, enum plan_conflict *conflict)
{
	*conflict = PLAN_NO_CONFLICT;
	if (plan_same(local, remote) || plan_same(local, base))
		return *remote;
	if (plan_same(remote, base))
		return *local;
	/* Both changed, differently. */
	struct plan_state folder = {.kind = PLAN_FOLDER};
	switch (local->kind) {
	case PLAN_FILE:
		if (remote->kind == PLAN_ABSENT)
			return *local; /* deleted there, edited here: it comes back */
		*conflict = PLAN_KEEP_LOCAL;
		return remote->kind == PLAN_FILE ? *remote : folder;
	case PLAN_ABSENT:
		return *remote; /* deleted here, changed there: theirs */
	case PLAN_FOLDER:
		if (remote->kind == PLAN_FILE)
			*conflict = PLAN_KEEP_REMOTE;
		return folder;
	}
	return *remote;
}

/* ---- the table of every path the three trees name ---- */

struct row {
	char *path;
	struct plan_state b, l, r, res;
	bool moved_l, moved_r; /* the end of a move on that side: no other op there */
};

struct table {
	struct row *v;
	size_t n, cap;
	bool sorted;
};

static int row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct row *)a)->path, ((const struct row *)b)->path);
}

static struct row *find(struct table *t, const char *path)
{
	if (!t->n)
		return NULL; /* (qsort and bsearch take no NULL array, even empty) */
	if (!t->sorted) {
		qsort(t->v, t->n, sizeof *t->v, row_cmp);
		t->sorted = true;
	}
	struct row key = {.path = (char *)path};
	return bsearch(&key, t->v, t->n, sizeof *t->v, row_cmp);
}

static struct row *get(struct table *t, const char *path)
{
	struct row *r = find(t, path);
	if (r)
		return r;
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->v = xrealloc(t->v, t->cap * sizeof *t->v);
	}
	r = &t->v[t->n++];
	*r = (struct row){
	    .path = xstrdup(path), .b = absent, .l = absent, .r = absent, .res = absent};
	t->sorted = false;
	return r;
}

/* Enter one side's tree (which: 0 base, 1 local, 2 remote). */
static int load(struct table *t, const struct plan_entry *e, size_t n, int which)
{
	for (size_t i = 0; i < n; i++) {
		if (!e[i].path || e[i].path[0] != '/' || strcmp(e[i].path, "/") == 0)
			return -EINVAL;
		struct row *r = get(t, e[i].path);
		struct plan_state *s = which == 0 ? &r->b : which == 1 ? &r->l : &r->r;
		if (s->kind != PLAN_ABSENT)
			return -EINVAL;
		*s = e[i].st;
	}
	return 0;
}

/* "dir/name (conflict N).ext", the first N no row names. */
static char *conflict_name(struct table *t, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash + 1, '.');
	if (!dot || dot == slash + 1)
		dot = path + strlen(path);
	int stem = (int)(dot - path);
	for (int n = 1;; n++) {
		char *c = xasprintf("%.*s (conflict %d)%s", stem, path, n, dot);
		if (!find(t, c))
			return c;
		free(c);
	}
}

/* ---- the plan ---- */

struct ops {
	struct plan_op *v;
	size_t n, cap;
};

static void emit(struct ops *o, enum plan_op_kind k, enum plan_phase ph, const char *path,
                 const char *to, const struct plan_state *st)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? 2 * o->cap : 64;
		o->v = xrealloc(o->v, o->cap * sizeof *o->v);
	}
	o->v[o->n++] = (struct plan_op){.kind = k,
	                                .phase = ph,
	                                .path = xstrdup(path),
	                                .to = to ? xstrdup(to) : NULL,
	                                .st = st ? *st : absent};
}

/* Keep the file at path aside: on the local side (its content renamed), the
 * remote one, or both when they hold the same. The copy's row holds it on
 * those sides and in the result. Returns the copy's row. */
static void keep_aside(struct table *t, struct ops *o, const char *path, bool local, bool remote,
                       const struct plan_state *file)
{
	char *cp = conflict_name(t, path);
	struct row *c = get(t, cp); /* may move rows: look path up again below */
	c->res = *file;
	if (local) {
		c->l = *file;
		emit(o, PLAN_CONFLICT_LOCAL, PLAN_PHASE_CONFLICTS, path, cp, file);
	}
	if (remote) {
		c->r = *file;
		emit(o, PLAN_CONFLICT_REMOTE, PLAN_PHASE_CONFLICTS, path, cp, file);
	}
	struct row *r = find(t, path);
	if (local)
		r->l = absent;
	if (remote)
		r->r = absent;
	free(cp);
}

/* Make every ancestor of path a folder in the result; a file in the way is
 * kept aside from the side(s) that hold it. */
static void make_parents(struct table *t, struct ops *o, const char *path)
{
	char *p = xstrdup(path);
	for (char *slash = strrchr(p, '/'); slash && slash != p; slash = strrchr(p, '/')) {
		*slash = 0;
		struct row *a = get(t, p);
		if (a->res.kind == PLAN_FILE) {
			struct plan_state f = a->res;
			keep_aside(t, o, p, plan_same(&a->l, &f), plan_same(&a->r, &f), &f);
			a = find(t, p);
		}
		a->res = (struct plan_state){.kind = PLAN_FOLDER};
	}
	free(p);
}

/* One side's operations for row r: from cur to res. */
static void side_ops(struct ops *o, const struct row *r, const struct plan_state *cur, bool local)
{
	const struct plan_state *want = &r->res;
	if (plan_same(cur, want))
		return;
	if (cur->kind != PLAN_ABSENT && cur->kind != want->kind)
		emit(o, local ? PLAN_DELETE_LOCAL : PLAN_DELETE_REMOTE, PLAN_PHASE_DELETES, r->path,
		     NULL, NULL);
	if (want->kind == PLAN_FOLDER)
		emit(o, local ? PLAN_MKDIR_LOCAL : PLAN_MKDIR_REMOTE, PLAN_PHASE_MKDIRS, r->path,
		     NULL, want);
	else if (want->kind == PLAN_FILE)
		emit(o, local ? PLAN_DOWNLOAD : PLAN_UPLOAD, PLAN_PHASE_TRANSFERS, r->path, NULL,
		     want);
}

/* Are path's ancestors folders on one side already? */
static bool parents_are_folders(struct table *t, const char *path, bool local)
{
	char *p = xstrdup(path);
	bool ok = true;
	for (char *slash = strrchr(p, '/'); ok && slash && slash != p; slash = strrchr(p, '/')) {
		*slash = 0;
		struct row *a = find(t, p);
		ok = a && (local ? a->l.kind : a->r.kind) == PLAN_FOLDER;
	}
	free(p);
	return ok;
}

/* Renames on one side (local: the local side moved a file, so the remote
 * moves): pair each file that side deleted (the other side unchanged) with
 * the first file of the same content it created where the other side has
 * nothing. The table is sorted and does not grow here. */
static void find_moves(struct table *t, struct ops *o, bool local)
{
	for (size_t i = 0; i < t->n; i++) {
		struct row *d = &t->v[i];
		const struct plan_state *mine = local ? &d->l : &d->r,
		                        *other = local ? &d->r : &d->l;
		if (d->res.kind != PLAN_FILE || !plan_same(mine, &d->res) ||
		    other->kind != PLAN_ABSENT || !parents_are_folders(t, d->path, !local))
			continue;
		for (size_t j = 0; j < t->n; j++) {
			struct row *s = &t->v[j];
			const struct plan_state *sm = local ? &s->l : &s->r,
			                        *so = local ? &s->r : &s->l;
			bool taken = local ? s->moved_r : s->moved_l;
			if (taken || sm->kind != PLAN_ABSENT || s->res.kind != PLAN_ABSENT ||
			    !plan_same(so, &d->res))
				continue;
			emit(o, local ? PLAN_MOVE_REMOTE : PLAN_MOVE_LOCAL, PLAN_PHASE_MOVES,
			     s->path, d->path, &d->res);
			if (local)
				s->moved_r = d->moved_r = true;
			else
				s->moved_l = d->moved_l = true;
			break;
		}
	}
}

static int op_cmp(const void *a, const void *b)
{
	const struct plan_op *x = a, *y = b;
	if (x->phase != y->phase)
		return x->phase < y->phase ? -1 : 1;
	int c = strcmp(x->path, y->path);
	return c ? c : (x->kind > y->kind) - (x->kind < y->kind);
}

int plan_make(const struct plan_entry *base, size_t nbase, const struct plan_entry *local,
              size_t nlocal, const struct plan_entry *remote, size_t nremote, struct plan *out)
{
	memset(out, 0, sizeof *out);
	struct table t = {0};
	struct ops o = {0};
	int rc = load(&t, base, nbase, 0);
	if (rc == 0)
		rc = load(&t, local, nlocal, 1);
	if (rc == 0)
		rc = load(&t, remote, nremote, 2);
	if (rc != 0)
		goto out;
	/* Each path alone. Conflict copies add rows: walk the paths as they
	 * were (a copy's row is resolved already). */
	size_t n = t.n;
	char **paths = xcalloc(n ? n : 1, sizeof *paths);
	for (size_t i = 0; i < n; i++)
		paths[i] = xstrdup(t.v[i].path);
	for (size_t i = 0; i < n; i++) {
		struct row *r = find(&t, paths[i]);
		enum plan_conflict c;
		r->res = plan_path(&r->b, &r->l, &r->r, &c);
		if (c == PLAN_KEEP_LOCAL) {
			struct plan_state f = r->l;
			keep_aside(&t, &o, paths[i], true, false, &f);
		} else if (c == PLAN_KEEP_REMOTE) {
			struct plan_state f = r->r;
			keep_aside(&t, &o, paths[i], false, true, &f);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	/* Then the tree: whatever exists has folders above it. Copies made
	 * here are siblings of a path whose parents are made folders too, so
	 * one pass over the rows as they grow is enough. */
	for (size_t i = 0; i < t.n; i++) {
		if (!t.sorted)
			find(&t, "/");
		if (t.v[i].res.kind == PLAN_ABSENT)
			continue;
		char *p = xstrdup(t.v[i].path);
		size_t before = t.n;
		make_parents(&t, &o, p);
		if (t.n != before)
			i = (size_t)-1; /* rows moved: start over (each pass adds folders only) */
		free(p);
	}
	/* What each side does to reach the result. */
	find(&t, "/");
	find_moves(&t, &o, true);
	find_moves(&t, &o, false);
	for (size_t i = 0; i < t.n; i++) {
		struct row *r = &t.v[i];
		if (!r->moved_l)
			side_ops(&o, r, &r->l, true);
		if (!r->moved_r)
			side_ops(&o, r, &r->r, false);
		if (r->res.kind == PLAN_FILE && plan_same(&r->l, &r->res) &&
		    plan_same(&r->r, &r->res) && !plan_same(&r->b, &r->res))
			emit(&o, PLAN_RECORD, PLAN_PHASE_TRANSFERS, r->path, NULL, &r->res);
	}
	if (o.n)
		qsort(o.v, o.n, sizeof *o.v, op_cmp);
	out->ops = o.v;
	out->nops = o.n;
	o.v = NULL;
	o.n = 0;
	out->result = xcalloc(t.n ? t.n : 1, sizeof *out->result);
	for (size_t i = 0; i < t.n; i++)
		if (t.v[i].res.kind != PLAN_ABSENT)
			out->result[out->nresult++] =
			    (struct plan_entry){.path = xstrdup(t.v[i].path), .st = t.v[i].res};
out:
	for (size_t i = 0; i < t.n; i++)
		free(t.v[i].path);
	free(t.v);
	for (size_t i = 0; i < o.n; i++) {
		free(o.v[i].path);
		free(o.v[i].to);
	}
	free(o.v);
	return rc;
}

void plan_fini(struct plan *p)
{
	for (size_t i = 0; i < p->nops; i++) {
		free(p->ops[i].path);
		free(p->ops[i].to);
	}
	free(p->ops);
	for (size_t i = 0; i < p->nresult; i++)
		free(p->result[i].path);
	free(p->result);
	memset(p, 0, sizeof *p);
}

const char *plan_op_name(enum plan_op_kind k)
{
	static const char *names[] = {"nothing",       "conflict-local", "conflict-remote",
	                              "move-local",    "move-remote",    "delete-local",
	                              "delete-remote", "mkdir-local",    "mkdir-remote",
	                              "download",      "upload",         "record"};
	return (size_t)k < sizeof names / sizeof *names ? names[k] : "?";
}
