/* json: small helpers over jansson for reading request bodies. */
#ifndef ROOST_JSON_H
#define ROOST_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* A string member, or NULL when absent, not a string or holding a NUL byte. */
const char *json_get_str(const json_t *o, const char *key);
/* An integer member into *out; false when absent or not an integer. */
bool json_get_int(const json_t *o, const char *key, int64_t *out);
/* A boolean member, or dflt when absent; false into *ok when present but not a bool. */
bool json_get_bool(const json_t *o, const char *key, bool dflt, bool *ok);
/* Serialize to a new compact string. */
char *json_to_string(const json_t *v);

#endif
