/* hosts/relay_url: a host's public URL through a relay (docs/relay.md) —
 * the relay token that names the host's slug, rotating and revoking the
 * slug, and the revocation list relays poll.
 *
 * Threads: request threads; no state outside the database. */
#include "internal.h"
#include "../meta.h"
#include "../tokens.h"
#include "../../core/hash.h"
#include "../../core/json.h"
#include "../../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#define RELAY_TOKEN_TTL_S      3600 /* a relay token lasts this long */
#define ROTATE_GRACE_S_DEFAULT 60   /* relays route a rotated slug this much longer */
#define ROTATE_GRACE_S_MAX     86400

/* POST /workspaces/W/hosts/self/relay-token: what a host shows a relay. The
 * relay verifies it with the hub's public keys and routes /h/SLUG/ to it. */
enum MHD_Result api_host_relay_token(struct req *r)
{
	if (!hosts_need_host(r))
		return MHD_YES;
	/* The first request picks the slug; concurrent ones read the winner's. */
	char fresh[32], slug[64] = "";
	unsigned char raw[12];
	randombytes_buf(raw, sizeof raw);
	hex_encode(raw, sizeof raw, fresh);
	if (db_run(r->db, "UPDATE hosts SET tunnel_slug = ? WHERE id = ? AND tunnel_slug IS NULL",
	           fresh, r->host_id) != DB_DONE)
		return reply_db_error(r);
	struct db_stmt *st =
	    db_query(r->db, "SELECT tunnel_slug FROM hosts WHERE id = ?", r->host_id);
	if (st && db_step(st) == DB_ROW && db_col_text(st, 0))
		snprintf(slug, sizeof slug, "%s", db_col_text(st, 0));
	db_finalize(st);
	if (!slug[0])
		return reply_db_error(r);
	int64_t exp = now_ms() + RELAY_TOKEN_TTL_S * 1000;
	char *tok =
	    tokens_sign(r->db, json_pack("{s:s, s:I, s:I, s:s, s:I}", "scope", "relay", "ws",
	                                 (json_int_t)r->ws_id, "host", (json_int_t)r->host_id,
	                                 "slug", slug, "exp", (json_int_t)exp));
	if (!tok)
		return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "no_signing_key",
		                   "the hub has no usable signing key");
	json_t *o =
	    json_pack("{s:s, s:s, s:I}", "token", tok, "slug", slug, "expires_at", (json_int_t)exp);
	free(tok);
	return reply_json(r, MHD_HTTP_CREATED, o);
}

int hosts_slug_retire(struct db *db, int64_t host, int64_t effective_at, char old[64])
{
	old[0] = 0;
	struct db_stmt *st = db_query(db, "SELECT tunnel_slug FROM hosts WHERE id = ?", host);
	if (st && db_step(st) == DB_ROW && db_col_text(st, 0))
		snprintf(old, 64, "%s", db_col_text(st, 0));
	db_finalize(st);
	if (!st)
		return DB_ERR;
	if (old[0] && db_run(db,
	                     "INSERT INTO relay_revocations(slug, host_id, effective_at, "
	                     "created_at) VALUES(?,?,?,?) ON CONFLICT(slug) DO UPDATE SET "
	                     "effective_at = excluded.effective_at, created_at = "
	                     "excluded.created_at",
	                     old, host, effective_at, now_ms()) != DB_DONE)
		return DB_ERR;
	return db_run(db, "UPDATE hosts SET tunnel_slug = NULL, tunnel_url = NULL WHERE id = ?",
	              host);
}

/* POST hosts/H/rotate-url {grace_s} and POST hosts/H/revoke-url: the host's
 * relay slug is retired (at once, or after the grace period, during which
 * relays route both) and a new one is used from its next relay token. */
static enum MHD_Result retire_slug(struct req *r, bool revoke)
{
	int64_t host = hosts_param(r);
	if (!host)
		return MHD_YES;
	if (!(r->role >= ROLE_ADMIN && !r->host_id) && !(r->host_id == host && !revoke))
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   revoke
		                       ? "only owners and admins revoke a host's URL"
		                       : "only owners, admins or the host itself rotate its URL");
	int64_t grace = revoke ? 0 : ROTATE_GRACE_S_DEFAULT;
	if (!revoke && json_object_get(r->json, "grace_s") &&
	    (!json_get_int(r->json, "grace_s", &grace) || grace < 0 || grace > ROTATE_GRACE_S_MAX))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "grace_s is 0..%d seconds", ROTATE_GRACE_S_MAX);
	int64_t now = now_ms();
	char old[64] = "";
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	if (hosts_slug_retire(r->db, host, now + grace * 1000, old) != DB_DONE ||
	    meta_change(r->db, r->ws_id, "host.url", "host",
	                json_pack("{s:I, s:s, s:I}", "host_id", (json_int_t)host, "action",
	                          revoke ? "revoke" : "rotate", "grace_s", (json_int_t)grace)) !=
	        0 ||
	    meta_audit(r, revoke ? "host.revoke_url" : "host.rotate_url", old[0] ? old : NULL,
	               json_pack("{s:I, s:I}", "host_id", (json_int_t)host, "grace_s",
	                         (json_int_t)grace)) != 0 ||
	    meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:I, s:s, s:I}", "host_id", (json_int_t)host, "retired", old,
	                            "effective_at", (json_int_t)(now + grace * 1000)));
}

enum MHD_Result api_host_rotate_url(struct req *r)
{
	return retire_slug(r, false);
}

enum MHD_Result api_host_revoke_url(struct req *r)
{
	return retire_slug(r, true);
}

/* GET /api/v1/relay/revocations?since=MS: retired slugs, for relays (no
 * credential: a retired slug routes nowhere, so the list gives nothing away). */
enum MHD_Result api_relay_revocations(struct req *r)
{
	const char *since_s = req_arg(r, "since", NULL);
	int64_t since = since_s ? strtoll(since_s, NULL, 10) : 0;
	struct db_stmt *st =
	    db_query(r->db,
	             "SELECT slug, effective_at, created_at FROM relay_revocations "
	             "WHERE created_at > ? ORDER BY created_at LIMIT 1000",
	             since);
	if (!st)
		return reply_db_error(r);
	json_t *arr = json_array();
	while (db_step(st) == DB_ROW)
		json_array_append_new(arr,
		                      json_pack("{s:s, s:I, s:I}", "slug", db_col_text(st, 0),
		                                "effective_at", (json_int_t)db_col_int64(st, 1),
		                                "created_at", (json_int_t)db_col_int64(st, 2)));
	db_finalize(st);
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:o, s:I}", "revocations", arr, "now", (json_int_t)now_ms()));
}
