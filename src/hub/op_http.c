/* op_http: the JSON API's side of the operations: a request's context, and
 * an operation's typed error as the API's JSON error. Runs on the request's
 * connection thread. */
#include "op_http.h"
#include "ops/ops.h"

#include <errno.h>
#include <string.h>

void req_op_ctx(struct req *r, struct op_ctx *c)
{
	memset(c, 0, sizeof *c);
	c->hub = r->hub;
	c->db = r->db;
	c->ws_id = r->ws_id;
	c->user_id = r->user_id;
	c->author_id = r->author_id;
	c->host_id = r->host_id;
	c->share_id = r->share_id;
	c->role = r->role;
	c->acl = r->acl;
	if (r->conn)
		req_client(r, c->client);
}

void req_op_end(struct req *r, struct op_ctx *c)
{
	if (c->acl_owned && !r->acl) {
		r->acl = c->acl; /* the request frees it, and later checks reuse it */
		c->acl_owned = false;
	}
	op_ctx_fini(c);
}

json_t *op_err_json(struct op_err *e)
{
	json_t *err = json_pack("{s:s, s:s}", "code", op_code_json(e->code), "message", e->message);
	if (e->detail)
		json_object_update(err, e->detail);
	op_err_fini(e);
	return json_pack("{s:o}", "error", err);
}

void req_op_err_space(struct req *r, struct op_err *e)
{
	if (e->code != OP_DB || !db_full(r->db))
		return;
	hub_space_full(r->hub, "writing to the metadata database", -ENOSPC);
	op_fail(e, OP_NO_SPACE, "%s", OUT_OF_SPACE_MSG);
}

enum MHD_Result reply_op_err(struct req *r, struct op_err *e)
{
	req_op_err_space(r, e);
	unsigned status = op_http_status(e->code);
	if (e->code == OP_BUSY) {
		op_err_fini(e);
		return reply_retry(r, status, op_code_json(e->code), e->message, e->retry_ms);
	}
	return reply_json(r, status, op_err_json(e));
}
