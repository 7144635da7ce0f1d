/* tree: roost put DIR REMOTE and roost get -r REMOTE DIR — whole trees, a few
 * files at once, each through the single-file put and get (transfer.h), so a
 * tree dedups, resumes and verifies exactly as one file does. A rerun sends
 * or fetches only what differs: a file whose remote current version has its
 * SHA-256 is not uploaded again (no new version), a local file that already
 * holds the remote content is not rewritten. One progress line for the tree.
 * Threads: the caller's, plus TREE_PARALLEL workers, each with its own hub
 * connection. */
#ifndef ROOST_TREE_H
#define ROOST_TREE_H

#include "client.h"

#include <stdbool.h>

/* Files in flight at once; each also runs its own chunk transfers. */
#define TREE_PARALLEL 4

struct tree_opts {
	bool quiet;          /* no progress line, no summary (errors still) */
	bool json;           /* a summary as JSON on stdout */
	bool force;          /* get: replace local files with other content */
	int parallel;        /* chunk transfers per file; 0: the default */
	const char *host_ca; /* get: CA for hosts' and relays' https */
};

/* Every regular file under local dir to remote/relative-path; symbolic links
 * and other special files, and names the workspace refuses, are skipped with
 * a note. 0, or 1 if any file failed (listed on stderr). */
int tree_put(struct client *c, const char *dir, const char *remote, const struct tree_opts *o);

/* The remote folder's tree into local dir (made as needed). Names from the
 * hub are checked: nothing is written outside dir, and no symbolic link in
 * dir's tree is followed. 0, or 1 if the folder could not be listed or any
 * file failed or was kept (listed on stderr). */
int tree_get(struct client *c, const char *remote, const char *dir, const struct tree_opts *o);

#endif
