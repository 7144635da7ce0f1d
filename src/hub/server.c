/* server: the hub's HTTP front on libmicrohttpd — routing, authentication,
 * request bodies and JSON responses. Handlers live in api.c, upload.c,
 * download.c and auth.c.
 *
 * One thread per connection: handlers may block on disk, fsync, the database
 * or argon2id without stalling other clients. The exception is the change
 * feed's idle subscribers: on plain HTTP the acceptor (acceptor.c) hands their
 * connections to the feed daemon, one event loop where feed.c suspends them. */
#include "hub.h"
#include "acceptor.h"
#include "auth.h"
#include "account.h"
#include "dav/route.h"
#include "feed.h"
#include "api.h"
#include "upload.h"
#include "tokens.h"
#include "trash.h"
#include "lifecycle.h"
#include "share.h"
#include "share_page.h"
#include "download.h"
#include "chunksrc.h"
#include "guard.h"
#include "limits.h"
#include "acl.h"
#include "members.h"
#include "web.h"
#include "keyrot.h"
#include "oidc.h"
#include "peer.h"
#include "stats.h"
#include "zip.h"
#include "init.h"
#include "traffic.h"
#include "hosts/hosts.h"
#include "jobs/jobs.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/store.h"
#include "../core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static enum MHD_Result api_health(struct req *r);
static enum MHD_Result api_ready(struct req *r);
static enum MHD_Result api_metrics(struct req *r);

static const struct route routes[] = {
    {"POST", "/api/v1/login", 0, BODY_JSON, NULL, NULL, api_login},
    {"POST", "/api/v1/logout", R_AUTH, BODY_NONE, NULL, NULL, api_logout},
    {"GET", "/api/v1/me", R_AUTH | R_APP, BODY_NONE, NULL, NULL, api_me},
    {"GET", "/api/v1/workspaces", R_AUTH | R_APP | R_HOST, BODY_NONE, NULL, NULL, api_workspaces},
    {"POST", "/api/v1/workspaces", R_AUTH, BODY_JSON, NULL, NULL, api_workspace_create},
    {"GET", "/api/v1/workspaces/*/members", R_AUTH | R_WS, BODY_NONE, NULL, NULL, api_members},
    {"PUT", "/api/v1/workspaces/*/members/*", R_AUTH | R_WS, BODY_JSON, NULL, NULL,
     api_member_set_role},
    {"DELETE", "/api/v1/workspaces/*/members/*", R_AUTH | R_WS, BODY_NONE, NULL, NULL,
     api_member_remove},
    {"POST", "/api/v1/workspaces/*/invites", R_AUTH | R_WS, BODY_JSON, NULL, NULL,
     api_invite_create},
    {"GET", "/api/v1/workspaces/*/invites", R_AUTH | R_WS, BODY_NONE, NULL, NULL, api_invites},
    {"DELETE", "/api/v1/workspaces/*/invites/*", R_AUTH | R_WS, BODY_NONE, NULL, NULL,
     api_invite_revoke},
    {"POST", "/api/v1/invites/accept", 0, BODY_JSON, NULL, NULL, api_invite_accept},
    {"GET", "/api/v1/invites/*", 0, BODY_NONE, NULL, NULL, api_invite_peek},
    {"PATCH", "/api/v1/workspaces/*", R_AUTH | R_WS, BODY_JSON, NULL, NULL, api_workspace_update},
    {"GET", "/api/v1/workspaces/*", R_FILES | R_HOST, BODY_NONE, NULL, NULL, api_workspace_get},
    {"DELETE", "/api/v1/workspaces/*", R_AUTH | R_WS, BODY_JSON, NULL, NULL, api_workspace_delete},
    {"GET", "/api/v1/workspaces/*/acl", R_AUTH | R_WS, BODY_NONE, NULL, NULL, api_acl_get},
    {"PUT", "/api/v1/workspaces/*/acl", R_AUTH | R_WS, BODY_JSON, NULL, NULL, api_acl_set},
    {"DELETE", "/api/v1/workspaces/*/acl", R_AUTH | R_WS, BODY_NONE, NULL, NULL, api_acl_delete},
    {"GET", "/api/v1/workspaces/*/list", R_FILES, BODY_NONE, NULL, NULL, api_list},
    {"GET", "/api/v1/workspaces/*/info", R_FILES | R_HOST, BODY_NONE, NULL, NULL, api_info},
    {"GET", "/api/v1/workspaces/*/versions", R_FILES, BODY_NONE, NULL, NULL, api_versions},
    {"POST", "/api/v1/workspaces/*/versions", R_FILES | R_HOST, BODY_JSON, NULL, NULL, api_commit},
    {"POST", "/api/v1/workspaces/*/versions/restore", R_FILES, BODY_JSON, NULL, NULL,
     api_version_restore},
    {"GET", "/api/v1/workspaces/*/trash", R_FILES, BODY_NONE, NULL, NULL, api_trash_list},
    {"POST", "/api/v1/workspaces/*/trash/restore", R_FILES, BODY_JSON, NULL, NULL,
     api_trash_restore},
    {"POST", "/api/v1/workspaces/*/trash/empty", R_AUTH | R_WS, BODY_JSON, NULL, NULL,
     api_trash_empty},
    {"GET", "/api/v1/workspaces/*/jobs", R_AUTH | R_WS, BODY_NONE, NULL, NULL, api_jobs},
    {"POST", "/api/v1/workspaces/*/versions/batch", R_FILES | R_HOST, BODY_JSON, NULL, NULL,
     api_commit_batch},
    {"POST", "/api/v1/workspaces/*/folders", R_FILES | R_HOST, BODY_JSON, NULL, NULL, api_mkdir},
    {"POST", "/api/v1/workspaces/*/move", R_FILES | R_HOST, BODY_JSON, NULL, NULL, api_move},
    {"DELETE", "/api/v1/workspaces/*/files", R_FILES | R_HOST, BODY_NONE, NULL, NULL, api_delete},
    {"GET", "/api/v1/workspaces/*/usage", R_FILES, BODY_NONE, NULL, NULL, api_usage},
    {"GET", "/api/v1/workspaces/*/usage/history", R_FILES, BODY_NONE, NULL, NULL,
     api_usage_history},
    {"GET", "/api/v1/workspaces/*/search", R_FILES, BODY_NONE, NULL, NULL, api_search},
    {"POST", "/api/v1/workspaces/*/chunks/missing", R_FILES | R_HOST, BODY_JSON, NULL, NULL,
     api_chunks_missing},
    {"PUT", "/api/v1/workspaces/*/chunks/*", R_FILES | R_HOST, BODY_STREAM, api_chunk_put_begin,
     api_chunk_put_data, api_chunk_put},
    {"GET", "/api/v1/workspaces/*/chunks/*", R_FILES | R_HOST, BODY_NONE, NULL, NULL,
     api_chunk_get},
    {"PUT", "/api/v1/workspaces/*/upload", R_FILES, BODY_STREAM, api_upload_begin, api_upload_data,
     api_upload},
    {"GET", "/api/v1/workspaces/*/content", R_FILES, BODY_NONE, NULL, NULL, api_content},
    {"HEAD", "/api/v1/workspaces/*/content", R_FILES, BODY_NONE, NULL, NULL, api_content},
    {"GET", "/api/v1/workspaces/*/zip", R_FILES, BODY_NONE, NULL, NULL, api_zip},
    {"GET", "/api/v1/workspaces/*/events", R_FILES | R_HOST, BODY_NONE, NULL, NULL, api_events},
    {"GET", "/api/v1/workspaces/*/audit", R_AUTH | R_WS, BODY_NONE, NULL, NULL, api_audit},
    {"GET", "/api/v1/keys", 0, BODY_NONE, NULL, NULL, api_keys},
    {"POST", "/api/v1/workspaces/*/urls", R_AUTH | R_WS, BODY_JSON, NULL, NULL, api_url_create},
    {"GET", "/c/*", 0, BODY_NONE, NULL, NULL, api_content_by_token},
    {"POST", "/api/v1/workspaces/*/shares", R_AUTH | R_WS, BODY_JSON, NULL, NULL, api_share_create},
    {"GET", "/api/v1/workspaces/*/shares", R_AUTH | R_WS, BODY_NONE, NULL, NULL, api_shares},
    {"DELETE", "/api/v1/workspaces/*/shares/*", R_AUTH | R_WS, BODY_NONE, NULL, NULL,
     api_share_revoke},
    {"GET", "/s/_assets/*", 0, BODY_NONE, NULL, NULL, api_share_asset},
    {"GET", "/s/*", 0, BODY_NONE, NULL, NULL, api_share_view},
    {"POST", "/s/*", 0, BODY_FORM, NULL, NULL, api_share_unlock},
    {"GET", "/s/*/file", 0, BODY_NONE, NULL, NULL, api_share_file},
    {"HEAD", "/s/*/file", 0, BODY_NONE, NULL, NULL, api_share_file},
    {"GET", "/s/*/zip", 0, BODY_NONE, NULL, NULL, api_share_zip},
    {"PUT", "/s/*/upload", 0, BODY_STREAM, api_share_upload_begin, api_upload_data,
     api_share_upload},
    {"PUT", "/u/*", 0, BODY_STREAM, api_upload_by_token_begin, api_upload_data, api_upload},
    {"HEAD", "/c/*", 0, BODY_NONE, NULL, NULL, api_content_by_token},
    {"POST", "/api/v1/workspaces/*/hosts/invites", R_AUTH | R_WS, BODY_JSON, NULL, NULL,
     api_host_invite},
    {"POST", "/api/v1/hosts/join", 0, BODY_JSON, NULL, NULL, api_host_join},
    {"GET", "/api/v1/workspaces/*/hosts", R_AUTH | R_WS, BODY_NONE, NULL, NULL, api_hosts},
    {"POST", "/api/v1/workspaces/*/hosts/self/heartbeat", R_AUTH | R_WS | R_HOST, BODY_JSON, NULL,
     NULL, api_host_heartbeat},
    {"GET", "/api/v1/workspaces/*/hosts/*/policies", R_AUTH | R_WS | R_HOST, BODY_NONE, NULL, NULL,
     api_host_policies},
    {"PUT", "/api/v1/workspaces/*/hosts/*/policies", R_AUTH | R_WS, BODY_JSON, NULL, NULL,
     api_host_policy_set},
    {"POST", "/api/v1/workspaces/*/hosts/self/scrub", R_AUTH | R_WS | R_HOST, BODY_JSON, NULL, NULL,
     api_host_scrub},
    {"POST", "/api/v1/workspaces/*/hosts/self/replicas", R_AUTH | R_WS | R_HOST, BODY_JSON, NULL,
     NULL, api_host_replicas},
    {"POST", "/api/v1/workspaces/*/hosts/self/relay-token", R_AUTH | R_WS | R_HOST, BODY_JSON, NULL,
     NULL, api_host_relay_token},
    {"POST", "/api/v1/workspaces/*/hosts/*/rotate-url", R_AUTH | R_WS | R_HOST, BODY_JSON, NULL,
     NULL, api_host_rotate_url},
    {"POST", "/api/v1/workspaces/*/hosts/self/uploads", R_AUTH | R_WS | R_HOST, BODY_JSON, NULL,
     NULL, api_host_uploads},
    {"POST", "/api/v1/workspaces/*/upload-targets", R_FILES, BODY_JSON, NULL, NULL,
     api_upload_targets},
    {"POST", "/api/v1/workspaces/*/uploads/missing", R_FILES, BODY_JSON, NULL, NULL,
     api_uploads_missing},
    {"POST", "/api/v1/workspaces/*/hosts/self/token-check", R_AUTH | R_WS | R_HOST, BODY_JSON, NULL,
     NULL, api_host_token_check},
    {"POST", "/api/v1/workspaces/*/hosts/self/chunk-check", R_AUTH | R_WS | R_HOST, BODY_JSON, NULL,
     NULL, api_host_chunk_check},
    {"DELETE", "/api/v1/workspaces/*/hosts/*", R_AUTH | R_WS, BODY_NONE, NULL, NULL,
     api_host_remove},
    {"POST", "/api/v1/workspaces/*/hosts/*/revoke-url", R_AUTH | R_WS, BODY_JSON, NULL, NULL,
     api_host_revoke_url},
    {"GET", "/api/v1/relay/revocations", R_OPS, BODY_NONE, NULL, NULL, api_relay_revocations},
    {"GET", "/api/v1/workspaces/*/tree", R_AUTH | R_WS | R_HOST, BODY_NONE, NULL, NULL, api_tree},
    {"GET", "/api/v1/workspaces/*/manifest", R_AUTH | R_WS | R_HOST, BODY_NONE, NULL, NULL,
     api_manifest},
    {"POST", "/api/v1/workspaces/*/tokens", R_AUTH | R_WS, BODY_JSON, NULL, NULL, api_token_create},
    {"GET", "/api/v1/workspaces/*/replicas", R_AUTH | R_WS, BODY_NONE, NULL, NULL, api_replicas},
    {"GET", "/api/v1/workspaces/*/locations", R_AUTH | R_WS, BODY_NONE, NULL, NULL, api_locations},
    {"GET", "/api/v1/workspaces/*/under-replicated", R_AUTH | R_WS, BODY_NONE, NULL, NULL,
     api_under_replicated},
    {"GET", "/healthz", 0, BODY_NONE, NULL, NULL, api_health},
    {"GET", "/readyz", 0, BODY_NONE, NULL, NULL, api_ready},
    {"GET", "/metrics", R_OPS, BODY_NONE, NULL, NULL, api_metrics},
    {"POST", "/api/v1/tokens", R_AUTH, BODY_JSON, NULL, NULL, api_app_token_create},
    {"GET", "/api/v1/tokens", R_AUTH, BODY_NONE, NULL, NULL, api_app_tokens},
    {"DELETE", "/api/v1/tokens/*", R_AUTH, BODY_NONE, NULL, NULL, api_app_token_revoke},
    {"GET", "/api/v1/sessions", R_AUTH, BODY_NONE, NULL, NULL, api_sessions},
    {"DELETE", "/api/v1/sessions/*", R_AUTH, BODY_NONE, NULL, NULL, api_session_revoke},
    {"POST", "/api/v1/password", R_AUTH, BODY_JSON, NULL, NULL, api_password_change},
    {"POST", "/api/v1/login/totp", 0, BODY_JSON, NULL, NULL, api_login_totp},
    {"PATCH", "/api/v1/me", R_AUTH, BODY_JSON, NULL, NULL, api_me_update},
    {"GET", "/api/v1/2fa", R_AUTH, BODY_NONE, NULL, NULL, api_totp_status},
    {"POST", "/api/v1/2fa/setup", R_AUTH, BODY_NONE, NULL, NULL, api_totp_setup},
    {"POST", "/api/v1/2fa/enable", R_AUTH, BODY_JSON, NULL, NULL, api_totp_enable},
    {"POST", "/api/v1/2fa/disable", R_AUTH, BODY_JSON, NULL, NULL, api_totp_disable},
    {"GET", "/api/v1/workspaces/*/security", R_AUTH | R_WS, BODY_NONE, NULL, NULL,
     api_ws_security_get},
    {"PUT", "/api/v1/workspaces/*/security", R_AUTH | R_WS, BODY_JSON, NULL, NULL,
     api_ws_security_set},
    {"POST", "/api/v1/workspaces/*/members/*/reset-link", R_AUTH | R_WS, BODY_JSON, NULL, NULL,
     api_member_reset_link},
    {"GET", "/api/v1/password/reset/*", 0, BODY_NONE, NULL, NULL, api_reset_peek},
    {"POST", "/api/v1/password/reset", 0, BODY_JSON, NULL, NULL, api_reset_password},
    {"GET", "/api/v1/oidc", 0, BODY_NONE, NULL, NULL, api_oidc_info},
    {"GET", "/api/v1/oidc/start", 0, BODY_NONE, NULL, NULL, api_oidc_start},
    {"GET", "/api/v1/oidc/callback", 0, BODY_NONE, NULL, NULL, api_oidc_callback},
    {"POST", "/api/v1/oidc/exchange", 0, BODY_JSON, NULL, NULL, api_oidc_exchange},
    /* WebDAV (dav.c): every method under /dav/, authenticated by dav.c itself */
    {"*", "/dav/", R_PREFIX, BODY_STREAM, dav_begin, dav_data, dav_handle},
};

static const int64_t latency_le_ms[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000};
#define N_LATENCY (sizeof latency_le_ms / sizeof latency_le_ms[0])
/* TLS 1.2 and 1.3 only; for 1.2 forward-secret key exchange and AEAD suites
 * only (no CBC: LUCKY13), in our order (docs/security.md). */
#define HUB_TLS_PRIORITIES                                                                         \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"        \
	"+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* ---- responses ---- */

static void count_status(struct req *r);

/* The feed daemon runs only the feed (on_head refuses any other route there,
 * since nothing may block its event loop). A refused or failed request closes
 * its connection, so a client cannot send its next request where it would be
 * refused; the stream itself keeps the usual keep-alive semantics, which SSE
 * clients (Python's http.client, browsers) rely on to close it. */
static bool on_feed_loop(const struct hub *hub, struct MHD_Connection *c)
{
	return hub->feed_loop && feed_conn_looped(c);
}

enum MHD_Result req_queue(struct req *r, unsigned status, struct MHD_Response *resp)
{
	if (r->dash)
		web_api_headers(resp);
	bool stream = status == MHD_HTTP_OK && r->route && r->route->handle == api_events;
	if (!stream && on_feed_loop(r->hub, r->conn))
		MHD_add_response_header(resp, "Connection", "close");
	enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	r->replied = true;
	r->status = status;
	count_status(r); /* now, so a client that read the answer sees it counted */
	return ret;
}

static enum MHD_Result queue_hdr(struct req *r, unsigned status, const char *ctype, char *body,
                                 size_t len, const char *hname, const char *hval)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (hname)
		MHD_add_response_header(resp, hname, hval);
	MHD_add_response_header(resp, "Content-Type", ctype);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	return req_queue(r, status, resp);
}

static enum MHD_Result queue(struct req *r, unsigned status, const char *ctype, char *body,
                             size_t len)
{
	return queue_hdr(r, status, ctype, body, len, NULL, NULL);
}

enum MHD_Result reply_json_hdr(struct req *r, unsigned status, json_t *body, const char *hname,
                               const char *hval)
{
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!s)
		abort();
	atomic_fetch_add(&r->hub->m.bytes_out, (long long)strlen(s));
	return queue_hdr(r, status, "application/json", s, strlen(s), hname, hval);
}

enum MHD_Result reply_json_text(struct req *r, unsigned status, char *text, size_t len)
{
	atomic_fetch_add(&r->hub->m.bytes_out, (long long)len);
	return queue_hdr(r, status, "application/json", text, len, NULL, NULL);
}

enum MHD_Result reply_json(struct req *r, unsigned status, json_t *body)
{
	return reply_json_hdr(r, status, body, NULL, NULL);
}

enum MHD_Result reply_error_extra(struct req *r, unsigned status, const char *code,
                                  const char *message, json_t *extra)
{
	json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);
	if (extra) {
		json_object_update(err, extra);
		json_decref(extra);
	}
	return reply_json(r, status, json_pack("{s:o}", "error", err));
}

enum MHD_Result reply_error(struct req *r, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return reply_error_extra(r, status, code, msg, NULL);
}

enum MHD_Result reply_retry(struct req *r, unsigned status, const char *code, const char *message,
                            int64_t wait_ms)
{
	char secs[32];
	snprintf(secs, sizeof secs, "%lld", (long long)((wait_ms + 999) / 1000));
	json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
	return reply_json_hdr(r, status, e, "Retry-After", secs);
}

enum MHD_Result reply_db_error(struct req *r)
{
	if (db_full(r->db))
		return reply_out_of_space(r, "writing to the metadata database", -ENOSPC);
	return reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "db_unavailable",
	                   "the metadata database could not complete the request; retry");
}

bool hub_store_is_s3(const struct hub_config *cfg)
{
	return cfg->store_url && strncmp(cfg->store_url, "s3://", 5) == 0;
}

struct store *hub_store_open(const struct hub_config *cfg, bool shared, char **err)
{
	*err = NULL;
	if (!hub_store_is_s3(cfg)) {
		const char *dir = cfg->store_url ? cfg->store_url : cfg->data_dir;
		if (cfg->store_creds) {
			*err = xstrdup("--store-credentials goes with an s3:// --store");
			return NULL;
		}
		if (!shared)
			return store_open_url(dir, cfg->data_dir, NULL, err);
		struct store *s = store_open_shared(dir);
		if (!s)
			*err = xasprintf("cannot open the chunk store in %s/objects", dir);
		return s;
	}
	struct store *s = store_open_url(cfg->store_url, cfg->data_dir, cfg->store_creds, err);
	if (s && store_probe(s, err) != 0) {
		store_free(s);
		return NULL;
	}
	return s;
}

void hub_space_full(struct hub *h, const char *what, int err)
{
	if (atomic_exchange(&h->out_of_space, true))
		return; /* this episode is logged already */
	int64_t avail = store_avail(h->store);
	if (avail < 0) /* an S3 store: its uploads spool in DATA/spool, which filled */
		log_error("out of space: %s failed (%s); the store %s spools uploads in %s/spool; "
		          "uploads are refused (507 out_of_space) until space is freed",
		          what, strerror(-err), store_dir(h->store), h->cfg.data_dir);
	else
		log_error("out of space: %s failed (%s); the store %s has %lld bytes free; "
		          "uploads are refused (507 out_of_space) until space is freed",
		          what, strerror(-err), store_dir(h->store), (long long)avail);
}

void hub_space_ok(struct hub *h)
{
	if (atomic_load(&h->out_of_space) && atomic_exchange(&h->out_of_space, false))
		log_info("out of space: over; the store %s takes chunks again",
		         store_dir(h->store));
}

enum MHD_Result reply_out_of_space(struct req *r, const char *what, int err)
{
	hub_space_full(r->hub, what, err);
	return reply_error(r, MHD_HTTP_INSUFFICIENT_STORAGE, "out_of_space", "%s",
	                   OUT_OF_SPACE_MSG);
}

void req_out_of_space(struct req *r, const char *what, int err)
{
	hub_space_full(r->hub, what, err);
	r->stream_err = MHD_HTTP_INSUFFICIENT_STORAGE;
	r->stream_code = "out_of_space";
	r->stream_msg = OUT_OF_SPACE_MSG;
}

const char *req_arg(struct req *r, const char *key, size_t *len)
{
	const char *v = NULL;
	size_t n = 0;
	if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, key, strlen(key), &v,
	                                  &n) != MHD_YES)
		return NULL;
	if (len)
		*len = n;
	return v;
}

const char *req_header(struct req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, key);
}

char *req_path_arg(struct req *r, const char *key)
{
	size_t len = 0;
	const char *v = req_arg(r, key, &len);
	if (!v) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "missing_argument",
		            "query argument '%s' is required", key);
		return NULL;
	}
	const char *why = NULL;
	char *p = path_normalize(v, len, &why);
	if (!p)
		reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_path", "%s: %s", key, why);
	return p;
}

/* Normalize a path member of the JSON body; replies 400 and returns NULL if bad. */
char *req_body_path(struct req *r, const char *key)
{
	if (!json_is_string(json_object_get(r->json, key))) {
		reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		            "'%s' (a string path) is required", key);
		return NULL;
	}
	const char *why;
	char *p = json_get_path(r->json, key, &why);
	if (!p)
		reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_path", "%s: %s", key, why);
	return p;
}

bool req_path_writable(struct req *r, const char *path)
{
	if (!path_reserved(path))
		return true;
	reply_error(r, MHD_HTTP_FORBIDDEN, "reserved_name",
	            "/%s is reserved for hosts' state; nothing may be written there: %s",
	            PATH_RESERVED_TOP, path);
	return false;
}

/* ---- small built-in endpoints ---- */

static enum MHD_Result api_health(struct req *r)
{
	return reply_json(r, MHD_HTTP_OK,
	                  json_pack("{s:s, s:s}", "status", "ok", "version", ROOST_VERSION));
}

/* Readiness, for a load balancer's health check: this hub can reach its
 * database and its chunk store (a directory: it is there; S3: one listing). (/healthz only says the
 * process answers.) The answer names which is down and nothing more: anyone may ask. */
#define READY_CACHE_MS 1000

static enum MHD_Result api_ready(struct req *r)
{
	struct hub *h = r->hub;
	int64_t now = mono_ms(), at = atomic_load(&h->ready_at_ms);
	int bits = atomic_load(&h->ready_bits);
	if (at == 0 || now - at >= READY_CACHE_MS) {
		int64_t one = 0;
		bool db_ok = r->db && db_int64(r->db, &one, "SELECT 1") == DB_ROW && one == 1;
		char *err = NULL;
		bool store_ok = store_is_remote(h->store) ? store_probe(h->store, &err) == 0
		                                          : store_avail(h->store) >= 0;
		free(err);
		bits = (db_ok ? 1 : 0) | (store_ok ? 2 : 0);
		atomic_store(&h->ready_bits, bits);
		atomic_store(&h->ready_at_ms, now);
	}
	bool db_ok = bits & 1, store_ok = bits & 2;
	if (db_ok && store_ok)
		return reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ready"));
	json_t *down = json_array();
	if (!db_ok)
		json_array_append_new(down, json_string("database"));
	if (!store_ok)
		json_array_append_new(down, json_string("store"));
	return reply_json(r, MHD_HTTP_SERVICE_UNAVAILABLE,
	                  json_pack("{s:s, s:o}", "status", "not_ready", "down", down));
}

static enum MHD_Result api_metrics(struct req *r)
{
	struct hub_metrics *m = &r->hub->m;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	fprintf(f,
	        "# TYPE roost_requests_total counter\nroost_requests_total %lld\n"
	        "# TYPE roost_chunks_received_total counter\nroost_chunks_received_total %lld\n"
	        "roost_chunk_bytes_received_total %lld\n"
	        "roost_chunks_rejected_total %lld\n"
	        "roost_versions_committed_total %lld\n"
	        "roost_bytes_served_total %lld\n"
	        "roost_corrupt_reads_total %lld\n"
	        "roost_bytes_in_total %lld\n"
	        "roost_bytes_out_total %lld\n"
	        "# TYPE roost_feed_subscribers gauge\nroost_feed_subscribers %d\n"
	        "# TYPE roost_db_seconds_total counter\nroost_db_seconds_total %.6f\n",
	        (long long)m->requests, (long long)m->chunks_received,
	        (long long)m->chunk_bytes_received, (long long)m->chunks_rejected,
	        (long long)m->versions_committed, (long long)m->bytes_served,
	        (long long)m->corrupt_reads, (long long)m->bytes_in,
	        (long long)(m->bytes_out + m->bytes_served), feed_subscribers(r->hub),
	        (double)db_time_us() / 1e6);
	fputs("# TYPE roost_http_requests_total counter\n", f);
	for (size_t i = 0; i <= N_ROUTES; i++)
		for (int c = 0; c < 5; c++)
			if (m->by_route[i][c])
				fprintf(f,
				        "roost_http_requests_total{route=\"%s "
				        "%s\",status=\"%dxx\"} %lld\n",
				        i < N_ROUTES ? routes[i].method : "-",
				        i < N_ROUTES ? routes[i].pattern : "unmatched", c + 1,
				        (long long)m->by_route[i][c]);
	fputs("# TYPE roost_http_request_duration_seconds histogram\n", f);
	long long cum = 0;
	for (size_t b = 0; b < N_LATENCY; b++) {
		cum += m->latency_bucket[b];
		fprintf(f, "roost_http_request_duration_seconds_bucket{le=\"%g\"} %lld\n",
		        (double)latency_le_ms[b] / 1000.0, cum);
	}
	cum += m->latency_bucket[N_LATENCY];
	fprintf(f,
	        "roost_http_request_duration_seconds_bucket{le=\"+Inf\"} %lld\n"
	        "roost_http_request_duration_seconds_sum %.6f\n"
	        "roost_http_request_duration_seconds_count %lld\n",
	        cum, (double)m->latency_sum_us / 1e6, (long long)m->latency_count);
	jobs_metrics(r->db, f);
	fclose(f);
	return queue(r, MHD_HTTP_OK, "text/plain; version=0.0.4", text, len);
}

/* ---- routing ---- */

static bool match(const char *pattern, const char *url, char *params[2])
{
	const char *p = pattern, *u = url;
	int np = 0;
	while (*p && *u) {
		if (*p == '*') {
			const char *end = strchr(u, '/');
			size_t n = end ? (size_t)(end - u) : strlen(u);
			if (n == 0 || np == 2)
				return false;
			params[np++] = xstrndup(u, n);
			p++;
			u += n;
			continue;
		}
		if (*p != *u)
			return false;
		p++;
		u++;
	}
	return *p == 0 && *u == 0;
}

static void free_params(char *params[2])
{
	free(params[0]);
	free(params[1]);
	params[0] = params[1] = NULL;
}

/* Find the route; *path_found tells a wrong method (405) from no such path (404). */
static const struct route *route_find(const char *method, const char *url, char *params[2],
                                      bool *path_found)
{
	*path_found = false;
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		char *pp[2] = {NULL, NULL};
		if (routes[i].flags & R_PREFIX) {
			size_t n = strlen(routes[i].pattern);
			/* "/dav" itself too: clients drop the trailing slash */
			if (strncmp(url, routes[i].pattern, n) == 0 ||
			    (strncmp(url, routes[i].pattern, n - 1) == 0 && url[n - 1] == 0)) {
				*path_found = true;
				return &routes[i];
			}
			continue;
		}
		if (!match(routes[i].pattern, url, pp)) {
			free_params(pp);
			continue;
		}
		*path_found = true;
		if (strcmp(routes[i].method, method) == 0) {
			params[0] = pp[0];
			params[1] = pp[1];
			return &routes[i];
		}
		free_params(pp);
	}
	return NULL;
}

/* A duration as people write it for --session-idle: "7d", "12h", "90s". */
static void duration_text(int64_t ms, char *out, size_t n)
{
	static const struct {
		int64_t ms;
		const char *unit;
	} units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (ms >= units[i].ms && ms % units[i].ms == 0) {
			snprintf(out, n, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
			return;
		}
	snprintf(out, n, "%lld ms", (long long)ms);
}

/* An operators' endpoint (R_OPS): with ROOST_OPS_TOKEN set, its bearer token
 * from anywhere; without, loopback clients only, and never a request a proxy
 * relayed (peer.h): a reverse proxy on the same machine connects from
 * loopback for every client. */
static bool admit_ops(struct req *r)
{
	const char *want = r->hub->ops_token, *authz = req_header(r, "Authorization");
	if (want
	        ? authz && strncmp(authz, "Bearer ", 7) == 0 && strlen(authz + 7) == strlen(want) &&
	              sodium_memcmp(authz + 7, want, strlen(want)) == 0
	        : req_loopback(r))
		return true;
	reply_error(r, MHD_HTTP_FORBIDDEN, "ops_only",
	            want ? "this endpoint needs the hub's operator token (ROOST_OPS_TOKEN) as a "
	                   "bearer token"
	                 : "this endpoint answers loopback clients only; set ROOST_OPS_TOKEN on "
	                   "the hub (and the relay) to reach it from elsewhere");
	return false;
}

/* Authenticate and authorize on the request head; replies itself on failure. */
static bool admit(struct req *r)
{
	const struct route *rt = r->route;
	if (rt->flags & R_OPS)
		return admit_ops(r);
	if (!(rt->flags & R_AUTH))
		return true;
	const char *authz = req_header(r, "Authorization");
	/* The dashboard port also takes its session cookie (web.c). */
	char *cookie = !authz && r->dash ? web_cookie_authz(r) : NULL;
	int rc = auth_check_bearer(r->db, cookie ? cookie : authz, &r->user_id, &r->token_id,
	                           &r->host_id, &r->host_ws, &r->cred);
	if (cookie)
		authz = "cookie"; /* only whether one came is read below */
	free(cookie);
	if (rc < 0) {
		reply_db_error(r);
		return false;
	}
	int64_t wait = rc == 0 ? limiter_take(r->hub->limiter, r->token_id) : 0;
	if (wait > 0) {
		reply_retry(r, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limited",
		            "too many requests for this token; retry after Retry-After seconds",
		            wait);
		return false;
	}
	if (rc == AUTH_SESSION_IDLE || rc == AUTH_SESSION_EXPIRED) {
		char d[32];
		duration_text(rc == AUTH_SESSION_IDLE ? auth_session_idle_ms()
		                                      : auth_session_ttl_ms(),
		              d, sizeof d);
		if (rc == AUTH_SESSION_IDLE)
			reply_error(r, MHD_HTTP_UNAUTHORIZED, "session_expired",
			            "this session was not used for %s (the hub's idle timeout) and "
			            "has ended: log in again",
			            d);
		else
			reply_error(
			    r, MHD_HTTP_UNAUTHORIZED, "session_expired",
			    "this session is older than %s (the hub's session lifetime) and "
			    "has ended: log in again",
			    d);
		return false;
	}
	if (rc > 0) {
		reply_error(r, MHD_HTTP_UNAUTHORIZED, "unauthorized",
		            authz ? "the bearer token is invalid or expired"
		                  : "an Authorization: Bearer token is required");
		return false;
	}
	/* A host's credential reaches the routes its agent needs, in its own
	 * workspace (checked below), and nothing else. */
	if (r->host_id && !(rt->flags & R_HOST)) {
		reply_error(r, MHD_HTTP_FORBIDDEN, "host_credential_not_allowed",
		            "a host's credential may call only its workspace's host routes, not "
		            "%s %s",
		            rt->method, rt->pattern);
		return false;
	}
	/* An app password reaches files only: whatever it could mint or change
	 * elsewhere (tokens, sessions, members, invites, shares) would outlive it. */
	if (r->cred == CRED_APP && !(rt->flags & R_APP)) {
		reply_error(r, MHD_HTTP_FORBIDDEN, "app_password_not_allowed",
		            "an app password reaches files only; log in to do this");
		return false;
	}
	if (rt->flags & R_WS) {
		int64_t id = parse_id(r->params[0]);
		if (id <= 0) {
			reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such workspace");
			return false;
		}
		r->ws_id = id;
		r->role = auth_role(r->db, r->ws_id, r->user_id);
		/* A deleted workspace's hosts are told so, and stop syncing it. */
		if (r->role == ROLE_NONE && r->host_id && r->host_ws == id &&
		    lifecycle_ws_deleted(r->db, id) == 1) {
			reply_error(
			    r, MHD_HTTP_GONE, "workspace_deleted",
			    "workspace %lld was deleted on the hub; this host stops syncing "
			    "it (its files stay in its folder)",
			    (long long)id);
			return false;
		}
		if (r->role == ROLE_NONE || (r->host_id && r->host_ws != id)) {
			/* Not a member looks the same as not existing. */
			reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such workspace");
			return false;
		}
		if (account_require_2fa(r) != 0)
			return false;
	}
	return true;
}

static void req_free(struct req *r)
{
	if (r->state_free && r->state)
		r->state_free(r->state);
	if (r->db)
		db_pool_release(r->hub->pool, r->db);
	free_params(r->params);
	acl_free(r->acl);
	free(r->body);
	json_decref(r->json);
	free(r);
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Requests by route and status class, once per request: when its answer is
 * queued, or at its end if it got none of ours. */
static void count_status(struct req *r)
{
	if (r->counted)
		return;
	r->counted = true;
	size_t route = r->route ? (size_t)(r->route - routes) : N_ROUTES;
	unsigned cls = r->status >= 100 && r->status < 600 ? r->status / 100 - 1 : 4;
	atomic_fetch_add(&r->hub->m.by_route[route][cls], 1);
}

static void count_request(struct req *r)
{
	struct hub_metrics *m = &r->hub->m;
	int64_t us = mono_us() - r->start_us;
	size_t b = 0;
	while (b < N_LATENCY && us > latency_le_ms[b] * 1000)
		b++;
	atomic_fetch_add(&m->latency_bucket[b], 1);
	atomic_fetch_add(&m->latency_sum_us, us);
	atomic_fetch_add(&m->latency_count, 1);
	count_status(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct hub *hub = cls;
	struct req *r = *req_cls;
	if (r) {
		count_request(r);
		req_free(r);
	}
	*req_cls = NULL;
	if (!on_feed_loop(hub, c))
		connlimit_request_done(hub->conns, c); /* idle again: the head timeout */
}

static int64_t content_length(struct req *r)
{
	return http_content_length(req_header(r, "Content-Length"));
}

static enum MHD_Result head_checks(struct req *r);

static enum MHD_Result on_head(struct req *r)
{
	/* Cookies ride along on cross-site form posts; a custom header cannot be
	 * sent cross-origin without a preflight, which this port never grants. */
	if (r->dash && strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 &&
	    !req_header(r, "X-Roost-CSRF"))
		return reply_error(r, MHD_HTTP_FORBIDDEN, "csrf",
		                   "the dashboard's API needs the X-Roost-CSRF header on %s",
		                   r->method);
	bool path_found;
	r->route = route_find(r->method, r->url, r->params, &path_found);
	if (!r->route) {
		if (path_found)
			return reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed",
			                   "%s is not allowed on %s", r->method, r->url);
		return reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such endpoint: %s",
		                   r->url);
	}
	/* The acceptor sent this connection to the feed daemon on its request line;
	 * an escaped path may still name another route: none runs on the loop. */
	if (r->route->handle != api_events && on_feed_loop(r->hub, r->conn))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "not_the_feed",
		                   "this request line looked like the change feed's but is not "
		                   "(%s); send it again on a new connection",
		                   r->url);
	/* The connection is held only while the head and, later, the handler run,
	 * not while a long body streams in. */
	r->db = db_pool_acquire(r->hub->pool);
	enum MHD_Result ret = head_checks(r);
	db_pool_release(r->hub->pool, r->db);
	r->db = NULL;
	return ret;
}

static enum MHD_Result head_checks(struct req *r)
{
	if (!admit(r))
		return MHD_YES;
	int64_t cl = content_length(r);
	if (r->route->body == BODY_JSON && cl > JSON_BODY_MAX)
		return reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
		                   "JSON bodies are limited to %d bytes", JSON_BODY_MAX);
	if (r->route->body == BODY_FORM && cl > FORM_BODY_MAX)
		return reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
		                   "form bodies are limited to %d bytes", FORM_BODY_MAX);
	if (r->route->body == BODY_STREAM && r->route->begin) {
		r->body_limit = -1;
		enum MHD_Result ret = r->route->begin(r);
		if (r->replied)
			return ret;
		if (r->body_limit >= 0 && cl > r->body_limit)
			return reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
			                   "the body is over the limit of %lld bytes",
			                   (long long)r->body_limit);
	}
	return MHD_YES;
}

static void on_body(struct req *r, const char *data, size_t len)
{
	if (r->stream_err) {
		r->body_seen += (int64_t)len;
		return; /* discard the rest; the error is answered at the end */
	}
	if (r->route->body == BODY_JSON || r->route->body == BODY_FORM) {
		if (r->body_len + len >
		    (r->route->body == BODY_FORM ? FORM_BODY_MAX : JSON_BODY_MAX)) {
			r->stream_err = MHD_HTTP_CONTENT_TOO_LARGE;
			r->stream_code = "body_too_large";
			r->stream_msg = r->route->body == BODY_FORM
			                    ? "form body over the size limit"
			                    : "JSON body over the size limit";
			return;
		}
		if (r->body_len + len + 1 > r->body_cap) {
			r->body_cap = (r->body_len + len + 1) * 2;
			if (r->body_cap > JSON_BODY_MAX + 1)
				r->body_cap = JSON_BODY_MAX + 1;
			r->body = xrealloc(r->body, r->body_cap);
		}
		memcpy(r->body + r->body_len, data, len);
		r->body_len += len;
		return;
	}
	if (r->route->body == BODY_STREAM) {
		r->body_seen += (int64_t)len;
		if (r->body_limit >= 0 && r->body_seen > r->body_limit) {
			r->stream_err = MHD_HTTP_CONTENT_TOO_LARGE;
			r->stream_code = "body_too_large";
			r->stream_msg = "the body is over the size limit";
			return;
		}
		r->route->data(r, data, len);
		return;
	}
	r->stream_err = MHD_HTTP_BAD_REQUEST;
	r->stream_code = "unexpected_body";
	r->stream_msg = "this endpoint takes no request body";
}

static enum MHD_Result on_complete(struct req *r)
{
	if (r->stream_err)
		return reply_error(r, (unsigned)r->stream_err, r->stream_code, "%s", r->stream_msg);
	if (r->route->body == BODY_JSON) {
		json_error_t jerr;
		if (r->body_len == 0)
			return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_json",
			                   "a JSON object body is required");
		r->json = json_loadb(r->body, r->body_len, JSON_BODY_FLAGS, &jerr);
		if (!r->json)
			return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_json",
			                   "malformed JSON at line %d column %d: %s", jerr.line,
			                   jerr.column, jerr.text);
		if (!json_is_object(r->json))
			return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_json",
			                   "the body must be a JSON object");
	}
	r->db = db_pool_acquire(r->hub->pool);
	return r->route->handle(r);
}

static enum MHD_Result dispatch(struct hub *hub, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *upload_data,
                                size_t *upload_data_size, void **req_cls, bool dash)
{
	struct req *r = *req_cls;
	if (!r) {
		r = xcalloc(1, sizeof *r);
		r->hub = hub;
		r->dash = dash;
		r->conn = conn;
		r->url = url;
		r->method = method;
		r->start_us = mono_us();
		*req_cls = r;
		atomic_fetch_add(&r->hub->m.requests, 1);
		enum MHD_Result ret = on_head(r);
		/* Admitted: it may take its time now. Not on the feed daemon, whose
		 * connections keep the daemon's one timeout: MHD visits every
		 * connection with a timeout of its own on every turn of its loop. */
		if (!r->replied && !on_feed_loop(hub, conn))
			connlimit_head_done(conn);
		return ret;
	}
	if (r->replied) {
		/* Answered on the head; drop whatever body follows. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		atomic_fetch_add(&r->hub->m.bytes_in, (long long)*upload_data_size);
		on_body(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		/* Refuse to swallow an unbounded body after an error. */
		if (r->stream_err && r->body_seen > 256ll * 1024 * 1024)
			return MHD_NO;
		return MHD_YES;
	}
	return on_complete(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
	return dispatch(cls, conn, url, method, upload_data, upload_data_size, req_cls, false);
}

/* ---- the dashboard port ---- */

/* The API under /api/v1/ (same-origin for the app, see web.c); the app's
 * assets for everything else. */
static enum MHD_Result on_dashboard(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **req_cls)
{
	if (*req_cls || strncmp(url, "/api/v1/", 8) == 0)
		return dispatch(cls, conn, url, method, upload_data, upload_data_size, req_cls,
		                true);
	return web_serve(cls, conn, url, method);
}

/* ---- start and stop ---- */

static int make_addr(const char *listen, int port, struct sockaddr_storage *ss, bool *v6)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, listen, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*v6 = false;
		return 0;
	}
	const char *h = listen;
	char buf[64];
	if (h[0] == '[') {
		snprintf(buf, sizeof buf, "%s", h + 1);
		char *e = strchr(buf, ']');
		if (e)
			*e = 0;
		h = buf;
	}
	if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*v6 = true;
		return 0;
	}
	return -1;
}

static struct MHD_Daemon *start(struct hub *hub, int port, MHD_AccessHandlerCallback cb)
{
	struct sockaddr_storage ss;
	bool v6;
	if (make_addr(hub->cfg.listen, port, &ss, &v6) < 0) {
		log_error("--listen %s is not an IPv4 or IPv6 address", hub->cfg.listen);
		return NULL;
	}
	/* poll(), not select(): descriptors past FD_SETSIZE (1024) are refused by
	 * select, and a hub with 100 hosts holds more connections than that.
	 * Without TLS the acceptor listens and hands connections over. */
	bool own = !hub->tls_cert_pem;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	                 MHD_USE_POLL | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0) |
	                 (own ? MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC : MHD_USE_TLS);
	struct MHD_OptionItem listen_on[] = {{own ? MHD_OPTION_END : MHD_OPTION_SOCK_ADDR, 0, &ss},
	                                     {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
	                                     {MHD_OPTION_END, 0, NULL}};
	struct MHD_OptionItem tls[] = {
	    {hub->tls_cert_pem ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, hub->tls_key_pem},
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, hub->tls_cert_pem},
	    /* TLS 1.2 and 1.3 only */
	    {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)HUB_TLS_PRIORITIES},
	    {MHD_OPTION_END, 0, NULL}};
	/* One count per address over the three ports; a connection has
	 * head_timeout_s to send its request head (connlimit.h). */
	struct MHD_Daemon *d = MHD_start_daemon(
	    flags, own ? 0 : (uint16_t)port, connlimit_accept, hub->conns, cb, hub,
	    MHD_OPTION_EXTERNAL_LOGGER, log_http_server, NULL, /* first: it must be */
	    MHD_OPTION_ARRAY, listen_on, MHD_OPTION_NOTIFY_COMPLETED, on_completed, hub,
	    MHD_OPTION_NOTIFY_CONNECTION, connlimit_notify, hub->conns, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)4000, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)hub->cfg.head_timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_UNESCAPE_CALLBACK,
	    dav_unescape, NULL, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
	if (!d && own)
		log_error("cannot start the server on port %d: %s", port, strerror(errno));
	else if (!d)
		log_error("cannot listen on %s port %d: %s", hub->cfg.listen, port,
		          strerror(errno));
	return d;
}

/* ---- the feed daemon (plain HTTP) ---- */

#define FEED_LOOP_THREADS 2          /* event loops: one per core here */
#define FEED_LOOP_CONNS   60000u     /* subscribers at once (per address: connlimit) */
#define FEED_LOOP_MEMORY  (8 * 1024) /* per connection: a request head, a chunk */

static int local_port(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (!ci || getsockname(ci->connect_fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

/* Every port's feed requests: the dashboard's with its headers, as on_dashboard. */
static enum MHD_Result on_feed(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **req_cls)
{
	struct hub *hub = cls;
	bool dash = !*req_cls && local_port(conn) == hub->cfg.dashboard_port;
	return dispatch(hub, conn, url, method, upload_data, upload_data_size, req_cls, dash);
}

/* Its connections arrive with a whole request line (acceptor.c) and then have
 * IDLE_TIMEOUT_S for the rest of the head and between writes: the head timeout
 * would need a timeout per connection, which MHD visits on every turn. */
static struct MHD_Daemon *start_feed_loop(struct hub *hub)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	                 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_NO_LISTEN_SOCKET |
	                 MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_feed, hub, MHD_OPTION_EXTERNAL_LOGGER, log_http_server, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, hub, MHD_OPTION_NOTIFY_CONNECTION,
	    connlimit_notify, hub->conns, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)FEED_LOOP_THREADS,
	    MHD_OPTION_CONNECTION_LIMIT, FEED_LOOP_CONNS, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)FEED_LOOP_MEMORY,
	    MHD_OPTION_UNESCAPE_CALLBACK, dav_unescape, NULL, MHD_OPTION_END);
	if (!d)
		log_error("cannot start the feed's event loop: %s", strerror(errno));
	return d;
}

/* Plain HTTP: bind the three ports, start their daemons and the feed's, then
 * the acceptor. */
static bool start_plain(struct hub *hub)
{
	const int ports[ACCEPTOR_PORTS] = {hub->cfg.api_port, hub->cfg.content_port,
	                                   hub->cfg.dashboard_port};
	int fds[ACCEPTOR_PORTS];
	for (int i = 0; i < ACCEPTOR_PORTS; i++) {
		struct sockaddr_storage ss;
		bool v6;
		if (make_addr(hub->cfg.listen, ports[i], &ss, &v6) < 0) {
			log_error("--listen %s is not an IPv4 or IPv6 address", hub->cfg.listen);
			fds[i] = -EINVAL;
		} else {
			fds[i] = acceptor_listen(&ss, v6);
			if (fds[i] < 0)
				log_error("cannot listen on %s port %d: %s", hub->cfg.listen,
				          ports[i], strerror(-fds[i]));
		}
		if (fds[i] < 0) {
			while (i-- > 0)
				close(fds[i]);
			return false;
		}
	}
	hub->api = start(hub, hub->cfg.api_port, on_request);
	hub->content = hub->api ? start(hub, hub->cfg.content_port, on_request) : NULL;
	hub->dashboard = hub->content ? start(hub, hub->cfg.dashboard_port, on_dashboard) : NULL;
	hub->feed_loop = hub->dashboard ? start_feed_loop(hub) : NULL;
	if (!hub->feed_loop) {
		for (int i = 0; i < ACCEPTOR_PORTS; i++)
			close(fds[i]);
		return false;
	}
	struct MHD_Daemon *const threaded[ACCEPTOR_PORTS] = {hub->api, hub->content,
	                                                     hub->dashboard};
	hub->acceptor = acceptor_start(hub, fds, threaded, hub->feed_loop);
	return hub->acceptor != NULL;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int hub_serve(struct hub_config *cfg)
{
	struct hub *hub = xcalloc(1, sizeof *hub);
	hub->cfg = *cfg;
	if (!hub->cfg.listen)
		hub->cfg.listen = "127.0.0.1";
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	/* Block the stop signals in every thread (MHD's inherit the mask); the main
	 * thread takes them with sigwait. */
	sigset_t stop_set;
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGINT);
	sigaddset(&stop_set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_set, NULL);

	char *dbpath = hub_db_url(cfg->data_dir, cfg->db_url);
	char *err = NULL;
	struct db *db = db_open(dbpath, &err);
	if (!db) {
		log_error("%s", err);
		free(err);
		free(dbpath);
		free(hub);
		return 1;
	}
	int64_t users = 0;
	bool ok = db_migrate(db) == DB_DONE &&
	          db_int64(db, &users, "SELECT COUNT(*) FROM users") == DB_ROW && users > 0;
	db_close(db);
	if (!ok) {
		log_error(
		    "%s holds no initialized hub: run 'roost init --data %s --email YOU' first",
		    cfg->data_dir, cfg->data_dir);
		free(dbpath);
		free(hub);
		return 1;
	}
	const char *ops = getenv("ROOST_OPS_TOKEN");
	hub->ops_token = ops && *ops ? ops : NULL;
	hub->pool = db_pool_new(dbpath, 16, &err);
	hub->db_url = dbpath;
	if (hub->cfg.feed_heartbeat_ms <= 0)
		hub->cfg.feed_heartbeat_ms = FEED_HEARTBEAT_MS_DEFAULT;
	feed_init(hub);
	hub->m.by_route = xcalloc(N_ROUTES + 1, sizeof *hub->m.by_route);
	hub->limiter = limiter_new(hub->cfg.rate_limit);
	hub->guard = guard_new(hub->cfg.login_free);
	auth_session_policy(hub->cfg.session_lifetime_ms, hub->cfg.session_idle_ms);
	if (hub->cfg.head_timeout_s <= 0)
		hub->cfg.head_timeout_s = HEAD_TIMEOUT_DEFAULT;
	hub->conns = connlimit_new(hub->cfg.max_conns_per_ip, (unsigned)hub->cfg.head_timeout_s);
	hub->traffic = traffic_new();
	if (!hub->pool) {
		log_error("cannot open the hub's data: %s", err);
		free(err);
		return 1;
	}
	hub->store = hub_store_open(cfg, false, &err);
	if (!hub->store) {
		log_error("cannot open the chunk store: %s", err);
		free(err);
		return 1;
	}
	log_info("chunk store: %s", store_dir(hub->store));

	if (!!cfg->tls_cert != !!cfg->tls_key) {
		log_error("--tls-cert and --tls-key go together");
		return 1;
	}
	if (cfg->tls_cert) {
		hub->tls_cert_pem = read_file(cfg->tls_cert, 1 << 20, NULL);
		hub->tls_key_pem =
		    hub->tls_cert_pem ? read_file(cfg->tls_key, 1 << 20, NULL) : NULL;
		if (!hub->tls_key_pem) {
			log_error("cannot read %s: %s",
			          hub->tls_cert_pem ? cfg->tls_key : cfg->tls_cert,
			          strerror(errno));
			return 1;
		}
	}
	if (peer_trust(hub, cfg->trusted_proxies) != 0)
		return 1;
	int ca = chunksrc_set_host_ca(cfg->host_ca);
	if (ca != 0) {
		log_error("--host-ca %s: %s", cfg->host_ca, strerror(-ca));
		return 1;
	}
	if (oidc_init(hub) != 0)
		return 1;
	feed_start_listener(hub);
	jobs_start(hub);
	keyrot_start(hub);
	bool started;
	if (hub->tls_cert_pem) {
		hub->api = start(hub, cfg->api_port, on_request);
		hub->content = hub->api ? start(hub, cfg->content_port, on_request) : NULL;
		hub->dashboard =
		    hub->content ? start(hub, cfg->dashboard_port, on_dashboard) : NULL;
		started = hub->dashboard != NULL;
	} else {
		started = start_plain(hub);
	}
	int rc = 1;
	if (started) {
		log_info("roost hub %s: API %s://%s:%d/api/v1, content port %d, dashboard "
		         "port %d (assets %s), data %s",
		         ROOST_VERSION, hub->tls_cert_pem ? "https" : "http", hub->cfg.listen,
		         cfg->api_port, cfg->content_port, cfg->dashboard_port, web_dir(hub),
		         cfg->data_dir);
		int sig = 0;
		sigwait(&stop_set, &sig);
		log_info("%s: shutting down", strsignal(sig));
		rc = 0;
	}
	acceptor_stop(hub->acceptor); /* no new connections for the daemons */
	keyrot_stop(hub);
	jobs_stop(hub);
	feed_stop(hub); /* streams end (and resume), so the daemons can stop */
	if (hub->feed_loop)
		MHD_stop_daemon(hub->feed_loop);
	if (hub->dashboard)
		MHD_stop_daemon(hub->dashboard);
	if (hub->content)
		MHD_stop_daemon(hub->content);
	if (hub->api)
		MHD_stop_daemon(hub->api);
	store_free(hub->store);
	db_pool_free(hub->pool);
	feed_free(hub);
	free(hub->m.by_route);
	limiter_free(hub->limiter);
	guard_free(hub->guard);
	connlimit_free(hub->conns);
	traffic_free(hub->traffic);
	oidc_free(hub);
	free(hub->tls_cert_pem);
	if (hub->tls_key_pem) {
		memset(hub->tls_key_pem, 0, strlen(hub->tls_key_pem));
		free(hub->tls_key_pem);
	}
	free(hub->db_url);
	free(hub);
	return rc;
}
