/* fuzz_json: the hub's reading of JSON request bodies: the parser with the
 * hub's flags (JSON_BODY_FLAGS, as server.c loads every body) and the
 * helpers every handler validates members with (src/core/json.c:
 * json_get_str, json_get_int, json_get_bool, json_get_path; hash_hex_valid),
 * over the members the API reads, and into the arrays of a commit (chunks)
 * and of a batch (versions). Invariants: a string handed out holds no NUL,
 * a path handed out is normalized, and reading changes nothing. */
#include "fuzz.h"
#include "../../src/core/hash.h"
#include "../../src/core/json.h"
#include "../../src/core/path.h"

static const char *const path_keys[] = {"path", "from", "to", "folder"};
static const char *const str_keys[] = {"hash", "content_type", "name",  "email", "role",
                                       "perm", "password",     "token", "scope", "kind"};
static const char *const int_keys[] = {"size",    "base_version_id", "user_id",
                                       "version", "expires_in",      "quota_bytes",
                                       "since",   "max_file_bytes"};
static const char *const bool_keys[] = {"parents", "recursive", "pinned", "write"};
#define N(a) (sizeof a / sizeof a[0])

static void read_object(const json_t *o, int depth)
{
	for (size_t i = 0; i < N(path_keys); i++) {
		const char *why = NULL;
		char *p = json_get_path(o, path_keys[i], &why);
		if (p) {
			FUZZ_CHECK(p[0] == '/');
			char *again = path_normalize(p, strlen(p), &why);
			FUZZ_CHECK(again && strcmp(again, p) == 0);
			free(again);
			free(p);
		} else {
			FUZZ_CHECK(why && *why);
		}
	}
	for (size_t i = 0; i < N(str_keys); i++) {
		const char *s = json_get_str(o, str_keys[i]);
		json_t *v = json_object_get(o, str_keys[i]);
		FUZZ_CHECK(!s || strlen(s) == json_string_length(v));
		if (s && hash_hex_valid(s))
			FUZZ_CHECK(strlen(s) == HASH_HEX_LEN);
	}
	for (size_t i = 0; i < N(int_keys); i++) {
		int64_t v = 0;
		if (json_get_int(o, int_keys[i], &v))
			FUZZ_CHECK(json_integer_value(json_object_get(o, int_keys[i])) == v);
	}
	for (size_t i = 0; i < N(bool_keys); i++) {
		bool ok = true;
		bool v = json_get_bool(o, bool_keys[i], false, &ok);
		FUZZ_CHECK(ok || !v);
	}
	if (depth > 0)
		return;
	const char *arrays[] = {"chunks", "versions"};
	for (size_t k = 0; k < 2; k++) {
		json_t *a = json_object_get(o, arrays[k]), *item;
		size_t i;
		json_array_foreach(a, i, item) read_object(item, depth + 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t err;
	json_t *body = json_loadb((const char *)data, size, JSON_BODY_FLAGS, &err);
	if (!body) {
		FUZZ_CHECK(err.text[0] != 0);
		return 0;
	}
	char *before = json_to_string(body);
	if (json_is_object(body))
		read_object(body, 0);
	char *after = json_to_string(body);
	FUZZ_CHECK(strcmp(before, after) == 0);
	free(before);
	free(after);
	json_decref(body);
	return 0;
}
