/* plan: the host's reconciliation decision as a pure function — no I/O, no
 * clock, no database. Given, per path, three states — the folder's (local),
 * the workspace's (remote) and the last one both agreed on (base: the
 * index) — it returns the state both sides should reach and the operations
 * that reach it. The sync thread does the I/O; tests/unit/test_plan.c checks
 * the rules on random trees (docs/reliability.md, "The sync planner").
 *
 * The rules, per path:
 *   - local equals remote: that is the state (the index only records it);
 *   - one side equals base: the other side's change wins;
 *   - both changed: a local edit is never dropped. Two different files:
 *     the remote version takes the name and the local file is kept as a
 *     conflict copy (uploaded). A file edited on one side and deleted on
 *     the other comes back. A folder on one side and a file on the other:
 *     the folder stays and the file is kept as a conflict copy.
 * and over the tree: a path that ends up holding anything has folders for
 * ancestors; a file in their way is kept as a conflict copy.
 *
 * File states compare by hash. The caller gives a local file whose stat
 * still matches the index the index's hash (it is unchanged), and hashes
 * one whose stat differs. */
#ifndef ROOST_HOST_PLAN_H
#define ROOST_HOST_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum plan_kind { PLAN_ABSENT, PLAN_FILE, PLAN_FOLDER };

struct plan_state {
	enum plan_kind kind;
	char hash[65]; /* a file's content, hex SHA-256 */
	int64_t size, mtime_ns;
};

/* What one path's three states resolve to (plan_path). */
enum plan_conflict {
	PLAN_NO_CONFLICT,
	PLAN_KEEP_LOCAL,  /* the local file is kept aside as a conflict copy */
	PLAN_KEEP_REMOTE, /* the remote file is kept aside as a conflict copy */
};

/* The state path should reach, from its three states alone (ancestors and
 * descendants aside: plan_make sees those). *conflict says which side's file
 * must first be kept aside under a new name. */
struct plan_state plan_path(const struct plan_state *base, const struct plan_state *local,
                            const struct plan_state *remote, enum plan_conflict *conflict);

bool plan_same(const struct plan_state *a, const struct plan_state *b);

enum plan_op_kind {
	PLAN_NOTHING,
	PLAN_CONFLICT_LOCAL,  /* rename the local file path -> to (then uploaded) */
	PLAN_CONFLICT_REMOTE, /* move the remote file path -> to (then downloaded) */
	PLAN_MOVE_LOCAL,      /* the remote side renamed path -> to: rename it here */
	PLAN_MOVE_REMOTE,     /* the local side renamed path -> to: move it in the workspace */
	PLAN_DELETE_LOCAL,    /* a file, or a folder with all under it */
	PLAN_DELETE_REMOTE,
	PLAN_MKDIR_LOCAL, /* with its parents */
	PLAN_MKDIR_REMOTE,
	PLAN_DOWNLOAD, /* the remote file replaces the local path */
	PLAN_UPLOAD,   /* the local file becomes the remote version */
	PLAN_RECORD,   /* both sides hold st already: only the index changes */
};

/* Operations run in phases, in order; within a phase in any order (each
 * touches its own path, deletes take what is under them, mkdirs and
 * transfers make missing parents). A file deleted on one side and the same
 * content created on that side where the other has nothing, under folders
 * that side has already, is a rename: one move instead of a delete and a
 * transfer (each file of a renamed folder moves by itself). */
enum plan_phase {
	PLAN_PHASE_CONFLICTS,
	PLAN_PHASE_MOVES,
	PLAN_PHASE_DELETES,
	PLAN_PHASE_MKDIRS,
	PLAN_PHASE_TRANSFERS
};

struct plan_op {
	enum plan_op_kind kind;
	enum plan_phase phase;
	char *path, *to;      /* to: the conflict copy or the move's new name */
	struct plan_state st; /* the state path reaches (transfers, records) */
};

/* One side's tree: paths ("/a/b", normalized, root excluded) and states. */
struct plan_entry {
	char *path;
	struct plan_state st;
};

struct plan {
	struct plan_op *ops; /* by phase, then path */
	size_t nops;
	struct plan_entry *result; /* the new agreed state, sorted by path */
	size_t nresult;
};

/* Plan the whole of three trees (entries in any order, paths borrowed;
 * an absent path need not be listed). Conflict copies are named
 * "NAME (conflict N).EXT", N the first free in all three. Fills *out (free
 * with plan_fini); 0, or -EINVAL for a path listed twice on one side or not
 * absolute. */
int plan_make(const struct plan_entry *base, size_t nbase, const struct plan_entry *local,
              size_t nlocal, const struct plan_entry *remote, size_t nremote, struct plan *out);
void plan_fini(struct plan *p);

const char *plan_op_name(enum plan_op_kind k);

#endif
