#include "json.h"
#include "path.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

const char *json_get_str(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		return NULL; /* absent, not a string, or holding a NUL */
	return json_string_value(v);
}

bool json_get_int(const json_t *o, const char *key, int64_t *out)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v))
		return false;
	*out = json_integer_value(v);
	return true;
}

bool json_get_bool(const json_t *o, const char *key, bool dflt, bool *ok)
{
	json_t *v = json_object_get(o, key);
	if (!v)
		return dflt;
	if (!json_is_boolean(v)) {
		*ok = false;
		return dflt;
	}
	return json_is_true(v);
}

char *json_get_path(const json_t *o, const char *key, const char **why)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v)) {
		*why = "a string path is required";
		return NULL;
	}
	return path_normalize(json_string_value(v), json_string_length(v), why);
}

char *json_to_string(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		abort();
	return s;
}
