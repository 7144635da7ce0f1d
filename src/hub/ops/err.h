/* ops/err.h: the operations' typed error (ops.h) on its own, for headers
 * that declare functions returning one without needing the operations. The
 * table behind it is ops/err.c. Pure: any thread. */
#ifndef ROOST_HUB_OPS_ERR_H
#define ROOST_HUB_OPS_ERR_H

#include <jansson.h>
#include <stdint.h>

/* What went wrong. Each code is one JSON error code the API sends
 * (op_code_json), with one HTTP status and one WebDAV status (ops/err.c). */
enum op_code {
	OP_OK = 0,
	OP_DB,               /* db_unavailable: the database failed; retry */
	OP_BUSY,             /* busy: every password-hashing slot is taken; retry */
	OP_INVALID_REQUEST,  /* invalid_request: a malformed argument */
	OP_INVALID_PATH,     /* invalid_path: not a path this operation takes */
	OP_NOT_FOUND,        /* not_found: absent, or hidden from the caller */
	OP_PARENT_NOT_FOUND, /* parent_not_found */
	OP_NO_SUCH_VERSION,  /* no_such_version */
	OP_NOT_A_MEMBER,     /* not_a_member: an ACL entry for a non-member */
	OP_FORBIDDEN,        /* forbidden: visible, but the caller may not */
	OP_RESERVED_NAME,    /* reserved_name: /.roost takes no writes */
	OP_GRANT_REFUSED,    /* upload_grant_refused: a host's grant is bad */
	OP_EXISTS,           /* exists: something is in the way */
	OP_INVALID_MOVE,     /* invalid_move: a folder into itself */
	OP_VERSION_CONFLICT, /* version_conflict: detail current_version_id */
	OP_MISSING_CHUNKS,   /* missing_chunks: detail missing (unproven or absent) */
	OP_SIZE_MISMATCH,    /* size_mismatch: a chunk or the total is not as claimed */
	OP_INVALID_HASH,     /* invalid_hash */
	OP_INVALID_CHUNK,    /* invalid_chunk */
	OP_FILE_TOO_LARGE,   /* file_too_large: over the workspace's max file size */
	OP_QUOTA_EXCEEDED,   /* quota_exceeded */
	OP_UPLOAD_LIMIT,     /* upload_limit: too many bytes uploaded and not committed */
	OP_STORAGE,          /* storage_error: the chunk store failed */
	OP_NO_SPACE,         /* out_of_space: the hub's disk (store or database) is full */
	OP_CODES
};

struct op_err {
	enum op_code code;
	char message[512];
	json_t *detail;   /* members merged into the JSON error object, or NULL */
	int64_t retry_ms; /* OP_BUSY: when to retry */
};

/* Fail with code and a printf message; returns code. */
enum op_code op_fail(struct op_err *e, enum op_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with detail (stolen). */
enum op_code op_fail_detail(struct op_err *e, enum op_code code, json_t *detail, const char *fmt,
                            ...) __attribute__((format(printf, 4, 5)));
/* OP_DB with the one message every database failure carries. */
enum op_code op_db(struct op_err *e);
/* Drop e's detail (an adapter that does not send it). */
void op_err_fini(struct op_err *e);
/* The tables: the JSON code, the HTTP status of the API (and of a batch
 * item), the WebDAV status. */
const char *op_code_json(enum op_code code);
unsigned op_http_status(enum op_code code);
unsigned op_dav_status(enum op_code code);

#endif
