/* op_http: the JSON API's side of the operations (ops/ops.h): a request's
 * context, and an operation's error as the API's JSON error. */
#ifndef ROOST_HUB_OP_HTTP_H
#define ROOST_HUB_OP_HTTP_H

#include "hub.h"

struct op_ctx;
struct op_err;

/* The context of request r: its connection, workspace, actor and (if loaded)
 * ACL. End it with req_op_end, which keeps an ACL loaded meanwhile in r. */
void req_op_ctx(struct req *r, struct op_ctx *c);
void req_op_end(struct req *r, struct op_ctx *c);
/* A database failure (OP_DB) because the database's disk is full becomes
 * OP_NO_SPACE (logged as hub_space_full says); reply_op_err and WebDAV's
 * answers ask. */
void req_op_err_space(struct req *r, struct op_err *e);
/* Answer e as {"error": {code, message, detail…}} with its HTTP status
 * (OP_BUSY with Retry-After). Takes e's detail. */
enum MHD_Result reply_op_err(struct req *r, struct op_err *e);
/* The same error as a JSON object (a batch item's body). Takes e's detail. */
json_t *op_err_json(struct op_err *e);

#endif
