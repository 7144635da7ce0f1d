/* json: small helpers over jansson for reading request bodies.
 * Threads: pure, any thread. */
#ifndef ROOST_JSON_H
#define ROOST_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* How the hub reads a request body: duplicate members are refused; NULs are
 * let through the parser so that a path holding one gets the path error
 * (json_get_str refuses strings holding them elsewhere). */
#define JSON_BODY_FLAGS (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

/* A string member, or NULL when absent, not a string or holding a NUL byte. */
const char *json_get_str(const json_t *o, const char *key);
/* An integer member into *out; false when absent or not an integer. */
bool json_get_int(const json_t *o, const char *key, int64_t *out);
/* A boolean member, or dflt when absent; false into *ok when present but not a bool. */
bool json_get_bool(const json_t *o, const char *key, bool dflt, bool *ok);
/* A path member normalized (path_normalize): a new string, or NULL with *why
 * set to a static reason when absent, not a string or not a valid path. */
char *json_get_path(const json_t *o, const char *key, const char **why);
/* Serialize to a new compact string. */
char *json_to_string(const json_t *v);

#endif
