/* path: the one validator for names and paths that come from users or the network.
 *
 * A name is one path component: 1..255 bytes of valid UTF-8, no '/', no NUL, no
 * control characters, not "." or "..". A path is names joined by '/', with an
 * optional leading and trailing '/'; "/" (or "") is the workspace root.
 *
 * Threads: pure, any thread.
 */
#ifndef ROOST_PATH_H
#define ROOST_PATH_H

#include <stdbool.h>
#include <stddef.h>

#define NAME_MAX_BYTES 255
#define PATH_MAX_BYTES 4096

/* Is the len bytes at s a valid name? (len lets callers catch embedded NULs.) */
bool name_valid(const char *s, size_t len);

/* Normalize a path of len bytes into "/a/b/c" (root is "/").
 * Returns a new string, or NULL with *why set to a static reason. */
char *path_normalize(const char *s, size_t len, const char **why);

/* Split a normalized path into parent ("/a/b") and name ("c"); both new strings.
 * The root has no parent: returns false. */
bool path_split(const char *norm, char **parent, char **name);

/* Join a normalized folder path and a name. New string. */
char *path_join(const char *folder, const char *name);

/* Is normalized path reserved (".roost" at the top, a host's state folder, or
 * anything in it)? Nothing may be written there; hosts never sync it. */
#define PATH_RESERVED_TOP ".roost"
bool path_reserved(const char *norm);

/* Number of UTF-8 code points in s: SQL substr() counts characters, not bytes. */
size_t utf8_chars(const char *s);

#endif
