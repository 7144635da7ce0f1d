/* ignore: the folder's .roostignore (docs/host.md) — gitignore patterns for
 * paths a host never syncs: `*`, `?`, `[...]` (ranges, `!`/`^` negation),
 * `**` (any depth), a leading `/` or a `/` inside anchors a pattern at the
 * folder's root (else it matches a name at any depth), a trailing `/` matches
 * folders only, `!` re-includes, `#` starts a comment, `\` quotes the next
 * character. As in git, nothing inside an ignored folder can be re-included.
 *
 * The pure half (ignore_parse, ignore_match) is what the unit test drives;
 * host_ignore_* keep the folder's set, reloaded when .roostignore changes.
 *
 * Threads: any (the watcher, the sync thread, the content server); the set is
 * swapped under a mutex. */
#ifndef ROOST_HOST_IGNORE_H
#define ROOST_HOST_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

#define IGNORE_FILE         ".roostignore"
#define IGNORE_FILE_MAX     (64 * 1024) /* bytes read of it; the rest is not */
#define IGNORE_PATTERNS_MAX 1000

struct ignore;

/* The patterns in text (len bytes); never NULL (an empty set matches nothing). */
struct ignore *ignore_parse(const char *text, size_t len);
void ignore_free(struct ignore *ig);
size_t ignore_count(const struct ignore *ig);
/* Is path ("/a/b", from the folder's root) ignored? dir: path is a folder.
 * Its parent folders are looked at first: one ignored ignores what is in it. */
bool ignore_match(const struct ignore *ig, const char *path, bool dir);

/* The folder's set: load dir/.roostignore now; later calls of
 * host_ignore_path look at the file again at most once a second. */
void host_ignore_init(const char *dir);
void host_ignore_fini(void);
/* The sync thread, when .roostignore may have changed: load it again now.
 * True if the set changed since the last call (here or by host_ignore_path):
 * the agent then walks the folder and the hub's tree again, since a pattern
 * removed or negated brings files back in. */
bool host_ignore_refresh(void);
/* Whether path is ignored by .roostignore (the folder's set; a path's being a
 * folder is read from the disk). False before host_ignore_init. */
bool host_ignore_path(const char *path);

#endif
