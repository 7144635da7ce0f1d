/* ops/err: the operations' typed errors and the one table that maps each
 * code to its JSON code, its HTTP status (the API, a batch item) and its
 * WebDAV status. Pure: any thread. */
#include "ops.h"
#include "../../core/path.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
	const char *json;
	unsigned http, dav;
} codes[OP_CODES] = {
    [OP_OK] = {"ok", 200, 200},
    [OP_DB] = {"db_unavailable", 503, 503},
    [OP_BUSY] = {"busy", 503, 503},
    [OP_INVALID_REQUEST] = {"invalid_request", 400, 400},
    [OP_INVALID_PATH] = {"invalid_path", 400, 400},
    [OP_NOT_FOUND] = {"not_found", 404, 404},
    [OP_PARENT_NOT_FOUND] = {"parent_not_found", 404, 404},
    [OP_NO_SUCH_VERSION] = {"no_such_version", 404, 404},
    [OP_NOT_A_MEMBER] = {"not_a_member", 404, 404},
    [OP_FORBIDDEN] = {"forbidden", 403, 403},
    [OP_RESERVED_NAME] = {"reserved_name", 403, 403},
    [OP_GRANT_REFUSED] = {"upload_grant_refused", 403, 403},
    /* RFC 4918 §9.7.1: a PUT whose parent is a file, or in the way of a
     * folder; MKCOL where something exists (§9.3.1) */
    [OP_EXISTS] = {"exists", 409, 405},
    [OP_INVALID_MOVE] = {"invalid_move", 409, 409},
    [OP_VERSION_CONFLICT] = {"version_conflict", 409, 409},
    [OP_MISSING_CHUNKS] = {"missing_chunks", 409, 409},
    [OP_SIZE_MISMATCH] = {"size_mismatch", 422, 422},
    [OP_INVALID_HASH] = {"invalid_hash", 400, 400},
    [OP_INVALID_CHUNK] = {"invalid_chunk", 400, 400},
    [OP_FILE_TOO_LARGE] = {"file_too_large", 413, 413},
    [OP_QUOTA_EXCEEDED] = {"quota_exceeded", 507, 507},
    [OP_UPLOAD_LIMIT] = {"upload_limit", 507, 507},
    [OP_STORAGE] = {"storage_error", 503, 503},
    [OP_NO_SPACE] = {"out_of_space", 507, 507},
};

const char *op_code_json(enum op_code code)
{
	return codes[code].json;
}

unsigned op_http_status(enum op_code code)
{
	return codes[code].http;
}

unsigned op_dav_status(enum op_code code)
{
	return codes[code].dav;
}

static enum op_code vfail(struct op_err *e, enum op_code code, json_t *detail, const char *fmt,
                          va_list ap)
{
	e->code = code;
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	json_decref(e->detail);
	e->detail = detail;
	return code;
}

enum op_code op_fail(struct op_err *e, enum op_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(e, code, NULL, fmt, ap);
	va_end(ap);
	return code;
}

enum op_code op_fail_detail(struct op_err *e, enum op_code code, json_t *detail, const char *fmt,
                            ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(e, code, detail, fmt, ap);
	va_end(ap);
	return code;
}

enum op_code op_db(struct op_err *e)
{
	return op_fail(e, OP_DB, "the metadata database could not complete the request; retry");
}

void op_err_fini(struct op_err *e)
{
	json_decref(e->detail);
	e->detail = NULL;
}

bool op_path_writable(const char *path, struct op_err *e)
{
	if (!path_reserved(path))
		return true;
	op_fail(e, OP_RESERVED_NAME,
	        "/%s is reserved for hosts' state; nothing may be written there: %s",
	        PATH_RESERVED_TOP, path);
	return false;
}
