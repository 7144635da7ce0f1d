/* oidc: OpenID Connect sign-in (oidc.h; docs/access.md "Single sign-on",
 * docs/security.md for the threat model).
 *
 * A flow: GET oidc/start makes a state, a nonce and a PKCE verifier, stores
 * them (the state hashed) with the hash of a random value it sets in a
 * cookie on the browser (SameSite=Lax: the provider's redirect back is a
 * cross-site top-level GET), and redirects to the provider. GET oidc/callback
 * takes the flow out of the table (one use), checks the cookie, exchanges the
 * code with the verifier, checks the ID token (signature against the JWKS,
 * iss, aud, exp, iat, nonce, email_verified) and signs the user in: a browser
 * gets the usual session cookie; a CLI's flow ends on its loopback listener
 * with a one-use code that POST oidc/exchange turns into a token, given the
 * verifier whose challenge the CLI sent at the start. The only places the hub
 * redirects to are the provider's authorization endpoint, "/" and
 * http://127.0.0.1:PORT/callback: nothing from a request names a host. */
#include "oidc.h"
#include "auth.h"
#include "meta.h"
#include "web.h"
#include "peer.h"
#include "../core/hash.h"
#include "../core/json.h"
#include "../core/jwt.h"
#include "../core/util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OIDC_FLOW_TTL_MS   (10ll * 60 * 1000) /* from start to callback */
#define OIDC_CODE_TTL_MS   (2ll * 60 * 1000)  /* a CLI's one-use code */
#define OIDC_DOC_MAX       (256 * 1024)       /* discovery, JWKS, token answers */
#define OIDC_HTTP_S        10                 /* a call to the provider */
#define OIDC_JWKS_MIN_MS   (30ll * 1000)      /* refetch the JWKS at most this often */
#define OIDC_DISCOVERY_MS  (3600ll * 1000)    /* keep the discovery document this long */
#define OIDC_SKEW_S        60                 /* clock skew allowed on exp and iat */
#define OIDC_IAT_MAX_AGE_S (10 * 60)          /* an ID token issued longer ago is stale */
#define OIDC_DOMAINS_MAX   50
#define OIDC_FLOWS_MAX     10000 /* sign-ins under way: start is unauthenticated */
#define COOKIE_FLOW        "roost_oidc"

struct oidc {
	char *issuer, *client_id, *secret, *name, *redirect_uri;
	pthread_mutex_t mu; /* the cached documents below */
	char *auth_ep, *token_ep, *jwks_uri;
	int64_t disc_at;
	json_t *jwks;
	int64_t jwks_at;
};

/* ---- set-up ---- */

int oidc_init(struct hub *hub)
{
	const struct hub_config *c = &hub->cfg;
	if (!c->oidc_issuer && !c->oidc_client_id && !c->oidc_secret_file)
		return 0;
	if (!c->oidc_issuer || !c->oidc_client_id || !c->oidc_secret_file) {
		log_error("--oidc-issuer, --oidc-client-id and --oidc-client-secret-file go "
		          "together");
		return -1;
	}
	if (strncmp(c->oidc_issuer, "https://", 8) != 0 &&
	    strncmp(c->oidc_issuer, "http://127.0.0.1", 16) != 0 &&
	    strncmp(c->oidc_issuer, "http://localhost", 16) != 0) {
		log_error("--oidc-issuer %s: the issuer must be an https URL (http only on "
		          "loopback, for tests)",
		          c->oidc_issuer);
		return -1;
	}
	size_t len = 0;
	char *secret = read_file(c->oidc_secret_file, 4096, &len);
	if (!secret) {
		log_error("--oidc-client-secret-file %s: %s", c->oidc_secret_file, strerror(errno));
		return -1;
	}
	while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
		secret[--len] = 0;
	if (len == 0 || strlen(secret) != len) {
		log_error("--oidc-client-secret-file %s holds no secret", c->oidc_secret_file);
		free(secret);
		return -1;
	}
	struct oidc *o = xcalloc(1, sizeof *o);
	o->issuer = xstrdup(c->oidc_issuer);
	o->client_id = xstrdup(c->oidc_client_id);
	o->secret = secret;
	o->name = xstrdup(c->oidc_name ? c->oidc_name : "single sign-on");
	if (c->oidc_redirect_uri)
		o->redirect_uri = xstrdup(c->oidc_redirect_uri);
	else if (c->public_url) /* behind a balancer: every hub the same */
		o->redirect_uri = xasprintf("%s/api/v1/oidc/callback", c->public_url);
	else
		o->redirect_uri = xasprintf(
		    "%s://%s:%d/api/v1/oidc/callback", c->tls_cert ? "https" : "http",
		    !c->listen || strcmp(c->listen, "0.0.0.0") == 0 || strcmp(c->listen, "::") == 0
		        ? "127.0.0.1"
		        : c->listen,
		    c->dashboard_port);
	pthread_mutex_init(&o->mu, NULL);
	hub->oidc = o;
	log_info("single sign-on with %s (%s); redirect URI %s", o->name, o->issuer,
	         o->redirect_uri);
	return 0;
}

void oidc_free(struct hub *hub)
{
	struct oidc *o = hub->oidc;
	if (!o)
		return;
	sodium_memzero(o->secret, strlen(o->secret));
	free(o->secret);
	free(o->issuer);
	free(o->client_id);
	free(o->name);
	free(o->redirect_uri);
	free(o->auth_ep);
	free(o->token_ep);
	free(o->jwks_uri);
	json_decref(o->jwks);
	pthread_mutex_destroy(&o->mu);
	free(o);
	hub->oidc = NULL;
}

/* ---- calls to the provider ---- */

struct buf {
	char *p;
	size_t len;
};

static size_t buf_write(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t add = size * n;
	if (b->len + add > OIDC_DOC_MAX)
		return 0; /* over the cap: fail the transfer */
	b->p = xrealloc(b->p, b->len + add + 1);
	memcpy(b->p + b->len, data, add);
	b->len += add;
	b->p[b->len] = 0;
	return add;
}

/* GET url, or POST form to it with HTTP Basic client authentication. The
 * status (0: unreachable, err set) and the body parsed as JSON in *out. */
static long provider_call(const struct oidc *o, const char *url, const char *form, json_t **out,
                          char err[256])
{
	*out = NULL;
	err[0] = 0;
	CURL *curl = curl_easy_init();
	if (!curl) {
		snprintf(err, 256, "curl_easy_init failed");
		return 0;
	}
	struct buf b = {0};
	struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)OIDC_HTTP_S);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	char *user = NULL, *pw = NULL;
	if (form) {
		/* client_secret_basic: both parts form-urlencoded first (RFC 6749 2.3.1) */
		user = curl_easy_escape(curl, o->client_id, 0);
		pw = curl_easy_escape(curl, o->secret, 0);
		curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(curl, CURLOPT_USERNAME, user);
		curl_easy_setopt(curl, CURLOPT_PASSWORD, pw);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
	}
	CURLcode cc = curl_easy_perform(curl);
	long status = 0;
	if (cc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	else
		snprintf(err, 256, "%s", curl_easy_strerror(cc));
	if (b.p)
		*out = json_loadb(b.p, b.len, JSON_BODY_FLAGS, NULL);
	if (pw)
		sodium_memzero(pw, strlen(pw));
	curl_free(user);
	curl_free(pw);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	free(b.p);
	return status;
}

/* The discovery document's endpoints, fetched once an hour. Under o->mu.
 * 0, or -1 with err set. */
static int discover_locked(struct oidc *o, char err[256])
{
	if (o->auth_ep && now_ms() - o->disc_at < OIDC_DISCOVERY_MS)
		return 0;
	size_t n = strlen(o->issuer);
	char *url = xasprintf("%s%s.well-known/openid-configuration", o->issuer,
	                      n && o->issuer[n - 1] == '/' ? "" : "/");
	json_t *d = NULL;
	long st = provider_call(o, url, NULL, &d, err);
	free(url);
	const char *iss = json_get_str(d, "issuer"), *a = json_get_str(d, "authorization_endpoint"),
	           *t = json_get_str(d, "token_endpoint"), *j = json_get_str(d, "jwks_uri");
	int rc = -1;
	if (st != 200 || !a || !t || !j) {
		if (!err[0])
			snprintf(err, 256,
			         "its discovery document answered %ld without the endpoints", st);
	} else if (!iss || strcmp(iss, o->issuer) != 0) {
		/* OpenID Connect Discovery 4.3: they must be identical */
		snprintf(err, 256, "its discovery document names issuer %.100s, not %.100s",
		         iss ? iss : "(none)", o->issuer);
	} else {
		free(o->auth_ep);
		free(o->token_ep);
		free(o->jwks_uri);
		o->auth_ep = xstrdup(a);
		o->token_ep = xstrdup(t);
		o->jwks_uri = xstrdup(j);
		o->disc_at = now_ms();
		rc = 0;
	}
	json_decref(d);
	return rc;
}

/* The provider's endpoints (new strings, any NULL-able out skipped). */
static int discover(struct oidc *o, char **auth_ep, char **token_ep, char err[256])
{
	pthread_mutex_lock(&o->mu);
	int rc = discover_locked(o, err);
	if (rc == 0) {
		if (auth_ep)
			*auth_ep = xstrdup(o->auth_ep);
		if (token_ep)
			*token_ep = xstrdup(o->token_ep);
	}
	pthread_mutex_unlock(&o->mu);
	return rc;
}

/* The JWKS (a new reference), fetched when none is cached or when refresh
 * asks and the last fetch is older than OIDC_JWKS_MIN_MS: a token naming an
 * unknown kid may mean the provider rotated its keys, but a stream of them
 * must not become a stream of fetches. */
static json_t *jwks_get(struct oidc *o, bool refresh, char err[256])
{
	pthread_mutex_lock(&o->mu);
	json_t *k = NULL;
	if (o->jwks && (!refresh || now_ms() - o->jwks_at < OIDC_JWKS_MIN_MS)) {
		k = json_incref(o->jwks);
	} else if (discover_locked(o, err) == 0) {
		json_t *d = NULL;
		long st = provider_call(o, o->jwks_uri, NULL, &d, err);
		if (st == 200 && json_is_array(json_object_get(d, "keys"))) {
			json_decref(o->jwks);
			o->jwks = d;
			o->jwks_at = now_ms();
			k = json_incref(d);
		} else {
			json_decref(d);
			if (!err[0])
				snprintf(err, 256, "its JWKS answered %ld", st);
			if (o->jwks)
				k = json_incref(o->jwks);
		}
	}
	pthread_mutex_unlock(&o->mu);
	return k;
}

/* ---- small helpers ---- */

static void random_b64(char *out, size_t cap)
{
	unsigned char raw[32];
	randombytes_buf(raw, sizeof raw);
	jwt_b64url_encode(raw, sizeof raw, out, cap);
}

/* base64url(SHA-256(s)): PKCE's S256 challenge. */
static void s256(const char *s, char out[64])
{
	unsigned char d[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(d, (const unsigned char *)s, strlen(s));
	jwt_b64url_encode(d, sizeof d, out, 64);
}

/* 16..128 base64url characters (a state or a verifier from a client). */
static bool b64_token(const char *s, size_t min)
{
	size_t n = s ? strlen(s) : 0;
	if (n < min || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

static enum MHD_Result redirect(struct req *r, const char *location, const char *cookie1,
                                const char *cookie2)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(resp, "Location", location);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	if (cookie1)
		MHD_add_response_header(resp, "Set-Cookie", cookie1);
	if (cookie2)
		MHD_add_response_header(resp, "Set-Cookie", cookie2);
	return req_queue(r, MHD_HTTP_FOUND, resp);
}

/* A callback's refusal. A browser's page (it asks for HTML) goes back to the
 * dashboard's login page, which says in its own words what the code means
 * (nothing from the provider is shown there); the message is logged. API
 * clients and tests get the JSON error. */
static enum MHD_Result cb_error(struct req *r, unsigned status, const char *code, const char *fmt,
                                ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result cb_error(struct req *r, unsigned status, const char *code, const char *fmt,
                                ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const char *accept = req_header(r, "Accept");
	if (!r->dash || !accept || !strstr(accept, "text/html"))
		return reply_error(r, status, code, "%s", msg);
	log_info("oidc: sign-in refused (%s): %s", code, msg);
	/* code is one of ours, a fixed word: nothing of the request is echoed */
	char *loc = xasprintf("/login?sso_error=%s", code);
	char *clear =
	    xasprintf(COOKIE_FLOW "=; Path=/api/v1/oidc/; Max-Age=0; HttpOnly; SameSite=Lax");
	enum MHD_Result ret = redirect(r, loc, clear, NULL);
	free(clear);
	free(loc);
	return ret;
}

static enum MHD_Result not_configured(struct req *r)
{
	return reply_error(r, MHD_HTTP_NOT_FOUND, "oidc_off",
	                   "single sign-on is not configured on this hub (roost serve "
	                   "--oidc-issuer)");
}

/* ---- routes ---- */

enum MHD_Result api_oidc_info(struct req *r)
{
	struct oidc *o = r->hub->oidc;
	if (!o)
		return reply_json(r, MHD_HTTP_OK, json_pack("{s:b}", "enabled", 0));
	/* the start URL on the redirect URI's origin, where the flow's cookie lives */
	const char *p = strstr(o->redirect_uri, "://");
	const char *slash = p ? strchr(p + 3, '/') : NULL;
	int origin = slash ? (int)(slash - o->redirect_uri) : (int)strlen(o->redirect_uri);
	char *start = xasprintf("%.*s/api/v1/oidc/start", origin, o->redirect_uri);
	json_t *a = json_pack("{s:b, s:s, s:s}", "enabled", 1, "name", o->name, "start_url", start);
	free(start);
	return reply_json(r, MHD_HTTP_OK, a);
}

enum MHD_Result api_oidc_start(struct req *r)
{
	struct oidc *o = r->hub->oidc;
	if (!o)
		return not_configured(r);
	const char *port_s = req_arg(r, "cli_port", NULL);
	const char *cli_state = req_arg(r, "cli_state", NULL);
	const char *cli_chal = req_arg(r, "cli_challenge", NULL);
	int64_t port = port_s ? parse_id(port_s) : 0;
	if ((port_s || cli_state || cli_chal) &&
	    (port < 1024 || port > 65535 || !b64_token(cli_state, 16) || !b64_token(cli_chal, 43) ||
	     strlen(cli_chal) != 43))
		return reply_error(
		    r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		    "cli_port (1024..65535), cli_state (16..128 base64url characters) "
		    "and cli_challenge (an S256 PKCE challenge) go together");
	char err[256];
	char *auth_ep = NULL;
	if (discover(o, &auth_ep, NULL, err) != 0) {
		log_error("oidc: %s: %s", o->issuer, err);
		return reply_error(r, MHD_HTTP_BAD_GATEWAY, "oidc_unavailable",
		                   "the identity provider %s cannot be reached: %s", o->issuer,
		                   err);
	}
	char state[64], nonce[64], verifier[64], browser[64], chal[64];
	char state_h[65], browser_h[65];
	random_b64(state, sizeof state);
	random_b64(nonce, sizeof nonce);
	random_b64(verifier, sizeof verifier);
	random_b64(browser, sizeof browser);
	s256(verifier, chal);
	hash_hex(state, strlen(state), state_h);
	hash_hex(browser, strlen(browser), browser_h);
	int64_t now = now_ms(), live = 0;
	if (db_int64(r->db, &live, "SELECT COUNT(*) FROM oidc_flows") == DB_ROW &&
	    live >= OIDC_FLOWS_MAX &&
	    db_int64(r->db, &live, "SELECT COUNT(*) FROM oidc_flows WHERE created_at >= ?",
	             (int64_t)(now - OIDC_FLOW_TTL_MS)) == DB_ROW &&
	    live >= OIDC_FLOWS_MAX) {
		free(auth_ep);
		return reply_retry(
		    r, MHD_HTTP_SERVICE_UNAVAILABLE, "busy",
		    "too many sign-ins are under way; retry after Retry-After seconds", 60 * 1000);
	}
	if (db_run(r->db, "DELETE FROM oidc_flows WHERE created_at < ?",
	           (int64_t)(now - OIDC_FLOW_TTL_MS)) != DB_DONE ||
	    db_run(r->db,
	           "INSERT INTO oidc_flows(state_hash, nonce, verifier, browser_hash, cli_port, "
	           "cli_state, cli_challenge, created_at) VALUES(?,?,?,?,?,?,?,?)",
	           state_h, nonce, verifier, browser_h, port, cli_state ? cli_state : "",
	           cli_chal ? cli_chal : "", now) != DB_DONE) {
		free(auth_ep);
		return reply_db_error(r);
	}
	CURL *e = curl_easy_init();
	char *cid = curl_easy_escape(e, o->client_id, 0);
	char *ruri = curl_easy_escape(e, o->redirect_uri, 0);
	char *loc =
	    xasprintf("%s%cresponse_type=code&client_id=%s&redirect_uri=%s&scope=openid%%20"
	              "email%%20profile&state=%s&nonce=%s&code_challenge=%s&"
	              "code_challenge_method=S256",
	              auth_ep, strchr(auth_ep, '?') ? '&' : '?', cid, ruri, state, nonce, chal);
	curl_free(cid);
	curl_free(ruri);
	curl_easy_cleanup(e);
	free(auth_ep);
	char *cookie = xasprintf(COOKIE_FLOW "=%s; Path=/api/v1/oidc/; Max-Age=%lld; HttpOnly; "
	                                     "SameSite=Lax%s",
	                         browser, OIDC_FLOW_TTL_MS / 1000, req_tls(r) ? "; Secure" : "");
	enum MHD_Result ret = redirect(r, loc, cookie, NULL);
	free(cookie);
	free(loc);
	return ret;
}

struct flow {
	char nonce[64], verifier[64], browser_h[65], cli_state[130], cli_chal[64];
	int64_t cli_port, created_at;
};

/* Take the flow of state out of the table: 1 found, 0 none, DB_ERR. */
static int flow_take(struct db *db, const char *state, struct flow *f)
{
	char h[65];
	hash_hex(state, strlen(state), h);
	struct db_stmt *st =
	    db_query(db,
	             "DELETE FROM oidc_flows WHERE state_hash = ? RETURNING nonce, "
	             "verifier, browser_hash, cli_port, cli_state, cli_challenge, "
	             "created_at",
	             h);
	int rc = st ? db_step(st) : DB_ERR;
	if (rc == DB_ROW) {
		snprintf(f->nonce, sizeof f->nonce, "%s", db_col_text(st, 0));
		snprintf(f->verifier, sizeof f->verifier, "%s", db_col_text(st, 1));
		snprintf(f->browser_h, sizeof f->browser_h, "%s", db_col_text(st, 2));
		f->cli_port = db_col_int64(st, 3);
		snprintf(f->cli_state, sizeof f->cli_state, "%s", db_col_text(st, 4));
		snprintf(f->cli_chal, sizeof f->cli_chal, "%s", db_col_text(st, 5));
		f->created_at = db_col_int64(st, 6);
		/* step to the end so the DELETE completes on every driver */
		while (db_step(st) == DB_ROW)
			;
	}
	db_finalize(st);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : DB_ERR;
}

static bool aud_ok(json_t *claims, const char *client_id)
{
	json_t *aud = json_object_get(claims, "aud");
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), client_id) == 0;
	if (!json_is_array(aud) || json_array_size(aud) == 0)
		return false;
	bool found = false;
	size_t i;
	json_t *v;
	json_array_foreach(aud, i, v) found =
	    found || (json_is_string(v) && strcmp(json_string_value(v), client_id) == 0);
	/* Core 3.1.3.7: with several audiences, azp names the client */
	const char *azp = json_get_str(claims, "azp");
	return found && (json_array_size(aud) == 1 || (azp && strcmp(azp, client_id) == 0));
}

/* The ID token's claims checked (Core 3.1.3.7): NULL, or why not. */
static const char *claims_check(const struct oidc *o, json_t *c, const char *nonce)
{
	const char *iss = json_get_str(c, "iss");
	json_t *exp = json_object_get(c, "exp"), *iat = json_object_get(c, "iat");
	int64_t now = now_ms() / 1000;
	if (!iss || strcmp(iss, o->issuer) != 0)
		return "it was issued by someone else (iss)";
	if (!aud_ok(c, o->client_id))
		return "it was issued for another client (aud)";
	if (!json_is_integer(exp) || json_integer_value(exp) + OIDC_SKEW_S < now)
		return "it has expired (exp)";
	if (!json_is_integer(iat) || json_integer_value(iat) > now + OIDC_SKEW_S ||
	    json_integer_value(iat) < now - OIDC_IAT_MAX_AGE_S)
		return "its issue time is out of range (iat)";
	const char *n = json_get_str(c, "nonce");
	if (!n || strcmp(n, nonce) != 0)
		return "it was not issued for this sign-in (nonce)";
	const char *email = json_get_str(c, "email");
	if (!email || !*email || strlen(email) > 320 || !strchr(email, '@'))
		return "it carries no email (ask for the email scope)";
	if (!json_is_true(json_object_get(c, "email_verified")))
		return "its email is not verified by the provider (email_verified)";
	return NULL;
}

/* Exchange the code and check the ID token: its claims (new), or NULL after
 * replying. */
static json_t *id_token_claims(struct req *r, const char *code, const struct flow *f)
{
	struct oidc *o = r->hub->oidc;
	char err[256];
	char *token_ep = NULL;
	if (discover(o, NULL, &token_ep, err) != 0) {
		cb_error(r, MHD_HTTP_BAD_GATEWAY, "oidc_unavailable",
		         "the identity provider cannot be reached: %s", err);
		return NULL;
	}
	CURL *e = curl_easy_init();
	char *c = curl_easy_escape(e, code, 0), *ru = curl_easy_escape(e, o->redirect_uri, 0);
	char *form =
	    xasprintf("grant_type=authorization_code&code=%s&redirect_uri=%s&code_verifier=%s", c,
	              ru, f->verifier);
	curl_free(c);
	curl_free(ru);
	curl_easy_cleanup(e);
	json_t *ans = NULL;
	long st = provider_call(o, token_ep, form, &ans, err);
	free(form);
	free(token_ep);
	const char *idt = json_get_str(ans, "id_token");
	if (st != 200 || !idt) {
		const char *pe = json_get_str(ans, "error");
		cb_error(r, st == 0 ? MHD_HTTP_BAD_GATEWAY : MHD_HTTP_BAD_REQUEST, "oidc_code",
		         "the identity provider refused the code (%ld %s): sign in again", st,
		         pe ? pe : err);
		json_decref(ans);
		return NULL;
	}
	json_t *claims = NULL;
	char kid[128];
	json_t *jwks = jwks_get(o, false, err);
	int rc = jwks ? jwt_verify(idt, jwks, &claims, kid, sizeof kid) : -EIO;
	if (rc == -ENOKEY) {
		json_decref(jwks);
		jwks = jwks_get(o, true, err);
		rc = jwks ? jwt_verify(idt, jwks, &claims, kid, sizeof kid) : -EIO;
	}
	json_decref(jwks);
	json_decref(ans);
	const char *why = rc == -EIO       ? "the provider's keys (JWKS) cannot be fetched"
	                  : rc == -ENOKEY  ? "it is signed with a key the provider does not publish"
	                  : rc == -ENOTSUP ? "it is signed with an algorithm roost refuses"
	                  : rc != 0        ? "its signature does not hold"
	                                   : claims_check(o, claims, f->nonce);
	if (why) {
		meta_audit(r, "login.failed", json_get_str(claims, "email"),
		           json_pack("{s:s, s:s}", "via", "oidc", "reason", why));
		cb_error(r, MHD_HTTP_UNAUTHORIZED, "oidc_token",
		         "the identity provider's ID token is refused: %s", why);
		json_decref(claims);
		return NULL;
	}
	return claims;
}

/* Does the JSON array text domains name domain (lowercase)? */
static bool domain_listed(const char *domains, const char *domain)
{
	json_t *a = domains ? json_loads(domains, 0, NULL) : NULL;
	bool found = false;
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) found =
	    found || (json_is_string(v) && strcmp(json_string_value(v), domain) == 0);
	json_decref(a);
	return found;
}

/* The user with this email (case aside): > 0, 0 none, DB_ERR. */
static int64_t user_by_email(struct db *db, const char *email)
{
	int64_t uid = 0;
	int rc = db_int64(db, &uid,
	                  "SELECT id FROM users WHERE lower(email) = lower(?) ORDER BY id", email);
	return rc == DB_ROW ? uid : rc == DB_DONE ? 0 : DB_ERR;
}

/* A new account for email, a member of every workspace that admits its
 * domain: the user's id, 0 when none does, DB_ERR. */
static int64_t admit(struct req *r, const char *email, const char *name)
{
	char domain[256];
	snprintf(domain, sizeof domain, "%s", strrchr(email, '@') + 1);
	for (char *p = domain; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	int64_t ws[64], n = 0;
	char roles[64][8];
	struct db_stmt *st = db_query(
	    r->db, "SELECT id, oidc_domains, oidc_default_role FROM workspaces WHERE oidc_domains "
	           "IS NOT NULL ORDER BY id");
	while (st && n < 64 && db_step(st) == DB_ROW) {
		if (!domain_listed(db_col_text(st, 1), domain))
			continue;
		ws[n] = db_col_int64(st, 0);
		snprintf(roles[n], sizeof roles[n], "%s", db_col_text(st, 2));
		n++;
	}
	if (!st)
		return DB_ERR;
	db_finalize(st);
	int64_t uid = 0;
	for (int64_t i = 0; i < n; i++) {
		r->ws_id = ws[i];
		int64_t now = now_ms();
		if (meta_begin(r->db, ws[i]) != DB_DONE)
			return DB_ERR;
		/* another sign-in may have made the account meanwhile */
		if (!uid && (uid = user_by_email(r->db, email)) == 0 &&
		    db_int64(r->db, &uid,
		             "INSERT INTO users(email, password_hash, name, created_at) "
		             "VALUES(?,'',?,?) RETURNING id",
		             email, name, now) != DB_ROW)
			uid = DB_ERR;
		r->user_id = uid > 0 ? uid : 0;
		if (uid < 0 ||
		    db_run(r->db,
		           "INSERT INTO memberships(workspace_id, user_id, role, created_at) "
		           "VALUES(?,?,?,?) ON CONFLICT DO NOTHING",
		           ws[i], uid, roles[i], now) != DB_DONE ||
		    meta_change(r->db, ws[i], "member.added", "member",
		                json_pack("{s:I, s:s, s:s}", "user_id", (json_int_t)uid, "email",
		                          email, "role", roles[i])) != 0 ||
		    meta_audit(r, "member.join", email,
		               json_pack("{s:s, s:s}", "via", "oidc", "role", roles[i])) != 0 ||
		    meta_commit(r) != DB_DONE) {
			db_rollback(r->db);
			return DB_ERR;
		}
	}
	r->ws_id = 0;
	return uid;
}

/* A CLI's flow ends on its loopback listener with a one-use code. */
static enum MHD_Result to_cli(struct req *r, const struct flow *f, int64_t uid)
{
	char code[64], h[65];
	random_b64(code, sizeof code);
	hash_hex(code, strlen(code), h);
	int64_t now = now_ms();
	if (db_run(r->db, "DELETE FROM oidc_codes WHERE created_at < ?",
	           (int64_t)(now - OIDC_CODE_TTL_MS)) != DB_DONE ||
	    db_run(r->db,
	           "INSERT INTO oidc_codes(code_hash, user_id, challenge, created_at) "
	           "VALUES(?,?,?,?)",
	           h, uid, f->cli_chal, now) != DB_DONE)
		return reply_db_error(r);
	/* The port is a number and the state base64url, both checked at the start:
	 * the redirect cannot leave the user's machine. */
	char *loc = xasprintf("http://127.0.0.1:%lld/callback?code=%s&state=%s",
	                      (long long)f->cli_port, code, f->cli_state);
	char *clear =
	    xasprintf(COOKIE_FLOW "=; Path=/api/v1/oidc/; Max-Age=0; HttpOnly; SameSite=Lax");
	enum MHD_Result ret = redirect(r, loc, clear, NULL);
	free(clear);
	free(loc);
	return ret;
}

enum MHD_Result api_oidc_callback(struct req *r)
{
	struct oidc *o = r->hub->oidc;
	if (!o)
		return not_configured(r);
	const char *code = req_arg(r, "code", NULL), *state = req_arg(r, "state", NULL);
	const char *perr = req_arg(r, "error", NULL);
	struct flow f;
	int found = state && strlen(state) <= 128 ? flow_take(r->db, state, &f) : 0;
	if (found == DB_ERR)
		return reply_db_error(r);
	if (perr)
		return cb_error(r, MHD_HTTP_BAD_REQUEST, "oidc_denied",
		                "the identity provider did not sign you in: %.200s", perr);
	if (!found || !code || strlen(code) > 2048 || now_ms() - f.created_at > OIDC_FLOW_TTL_MS)
		return cb_error(r, MHD_HTTP_BAD_REQUEST, "oidc_state",
		                "this sign-in is unknown, used or expired: start it again");
	const char *browser = MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, COOKIE_FLOW);
	char bh[65] = "";
	if (browser && strlen(browser) <= 128)
		hash_hex(browser, strlen(browser), bh);
	if (sodium_memcmp(bh, f.browser_h, 64) != 0)
		return cb_error(r, MHD_HTTP_BAD_REQUEST, "oidc_state",
		                "this sign-in was started in another browser: start it again");
	json_t *claims = id_token_claims(r, code, &f);
	if (!claims)
		return MHD_YES;
	const char *email = json_get_str(claims, "email");
	const char *name = json_get_str(claims, "name");
	int64_t uid = user_by_email(r->db, email), removed = 0;
	if (uid > 0 &&
	    db_int64(r->db, &removed, "SELECT COALESCE(removed_at, 0) FROM users WHERE id = ?",
	             uid) == DB_ROW &&
	    removed)
		uid = 0; /* removed from the hub (roost admin remove-user): no account */
	else if (uid == 0)
		uid = admit(r, email, name && strlen(name) <= 200 ? name : NULL);
	if (uid == DB_ERR) {
		json_decref(claims);
		return reply_db_error(r);
	}
	if (uid == 0) {
		meta_audit(r, "login.failed", email,
		           json_pack("{s:s, s:s}", "via", "oidc", "reason", "no account"));
		enum MHD_Result ret = cb_error(
		    r, MHD_HTTP_FORBIDDEN, "oidc_no_account",
		    "%s has no account on this hub and no workspace admits its domain: ask an "
		    "administrator for an invite",
		    email);
		json_decref(claims);
		return ret;
	}
	r->user_id = uid;
	meta_audit(r, "login", email, json_pack("{s:s}", "via", "oidc"));
	json_decref(claims);
	if (f.cli_port)
		return to_cli(r, &f, uid);
	char tok[64], h[65];
	auth_new_token(tok, h);
	if (auth_store_session(r->db, uid, h, "browser (sso)") != DB_DONE)
		return reply_db_error(r);
	char *session = web_session_cookie(r, tok, auth_session_ttl_ms() / 1000);
	char *clear =
	    xasprintf(COOKIE_FLOW "=; Path=/api/v1/oidc/; Max-Age=0; HttpOnly; SameSite=Lax");
	enum MHD_Result ret = redirect(r, "/", session, clear);
	free(session);
	free(clear);
	return ret;
}

enum MHD_Result api_oidc_exchange(struct req *r)
{
	if (!r->hub->oidc)
		return not_configured(r);
	const char *code = json_get_str(r->json, "code");
	const char *verifier = json_get_str(r->json, "verifier");
	if (!b64_token(code, 16) || !b64_token(verifier, 43))
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
		                   "code and verifier (base64url strings) are required");
	char h[65], chal[64];
	hash_hex(code, strlen(code), h);
	s256(verifier, chal);
	struct db_stmt *st = db_query(
	    r->db,
	    "DELETE FROM oidc_codes WHERE code_hash = ? RETURNING user_id, challenge, created_at",
	    h);
	int rc = st ? db_step(st) : DB_ERR;
	int64_t uid = 0, at = 0;
	char want[64] = "";
	if (rc == DB_ROW) {
		uid = db_col_int64(st, 0);
		snprintf(want, sizeof want, "%s", db_col_text(st, 1));
		at = db_col_int64(st, 2);
		while (db_step(st) == DB_ROW)
			;
	}
	db_finalize(st);
	if (rc != DB_ROW && rc != DB_DONE)
		return reply_db_error(r);
	if (rc != DB_ROW || now_ms() - at > OIDC_CODE_TTL_MS || strcmp(want, chal) != 0)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "oidc_code",
		                   "this sign-in code is unknown, used or expired: sign in again");
	char tok[64], th[65];
	auth_new_token(tok, th);
	if (auth_store_session(r->db, uid, th, "cli (sso)") != DB_DONE)
		return reply_db_error(r);
	char email[330] = "";
	st = db_query(r->db, "SELECT email FROM users WHERE id = ?", uid);
	if (st && db_step(st) == DB_ROW)
		snprintf(email, sizeof email, "%s", db_col_text(st, 0));
	db_finalize(st);
	int64_t now = now_ms();
	return reply_session(r,
	                     json_pack("{s:s, s:I, s:{s:I, s:s}}", "token", tok, "expires_at",
	                               (json_int_t)(now + auth_session_ttl_ms()), "user", "id",
	                               (json_int_t)uid, "email", email),
	                     tok, now + auth_session_ttl_ms());
}

/* ---- the workspace settings ---- */

int oidc_settings_parse(struct req *r, char **domains, const char **role)
{
	json_t *d = json_object_get(r->json, "oidc_domains");
	json_t *ro = json_object_get(r->json, "oidc_default_role");
	*domains = NULL;
	*role = NULL;
	if (!d && !ro)
		return 0;
	if (ro) {
		*role = json_string_value(ro);
		if (!*role || (strcmp(*role, "member") != 0 && strcmp(*role, "admin") != 0)) {
			reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
			            "oidc_default_role is member or admin");
			return -1;
		}
	}
	if (d) {
		bool ok = json_is_array(d) && json_array_size(d) <= OIDC_DOMAINS_MAX;
		json_t *clean = json_array(), *v;
		size_t i;
		json_array_foreach(d, i, v)
		{
			const char *s = json_string_value(v);
			size_t n = s ? strlen(s) : 0;
			ok = ok && n > 0 && n < 254 && !strchr(s, '@') && s[0] != '.' &&
			     strchr(s, '.');
			for (size_t k = 0; ok && k < n; k++)
				ok = isalnum((unsigned char)s[k]) || s[k] == '.' || s[k] == '-';
			if (!ok)
				break;
			char *low = xstrdup(s);
			for (char *p = low; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			json_array_append_new(clean, json_string(low));
			free(low);
		}
		if (!ok) {
			json_decref(clean);
			reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request",
			            "oidc_domains is a list of at most %d email domains such as "
			            "[\"example.com\"] ([] admits none)",
			            OIDC_DOMAINS_MAX);
			return -1;
		}
		*domains = json_array_size(clean) ? json_dumps(clean, JSON_COMPACT) : xstrdup("");
		json_decref(clean);
	}
	return 1;
}

int oidc_settings_apply(struct db *db, int64_t ws_id, const char *domains, const char *role,
                        json_t *changed)
{
	if (domains) {
		int rc = *domains
		             ? db_run(db, "UPDATE workspaces SET oidc_domains = ? WHERE id = ?",
		                      domains, ws_id)
		             : db_run(db, "UPDATE workspaces SET oidc_domains = NULL WHERE id = ?",
		                      ws_id);
		if (rc != DB_DONE)
			return DB_ERR;
		json_object_set_new(changed, "oidc_domains",
		                    *domains ? json_loads(domains, 0, NULL) : json_array());
	}
	if (role) {
		if (db_run(db, "UPDATE workspaces SET oidc_default_role = ? WHERE id = ?", role,
		           ws_id) != DB_DONE)
			return DB_ERR;
		json_object_set_new(changed, "oidc_default_role", json_string(role));
	}
	return DB_DONE;
}

void oidc_settings_get(struct db *db, int64_t ws_id, json_t *o)
{
	struct db_stmt *st = db_query(
	    db, "SELECT oidc_domains, oidc_default_role FROM workspaces WHERE id = ?", ws_id);
	json_t *d = NULL;
	if (st && db_step(st) == DB_ROW) {
		d = db_col_text(st, 0) ? json_loads(db_col_text(st, 0), 0, NULL) : NULL;
		json_object_set_new(o, "oidc_default_role", json_string(db_col_text(st, 1)));
	}
	db_finalize(st);
	json_object_set_new(o, "oidc_domains", d ? d : json_array());
}
