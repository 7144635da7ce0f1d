/* relay_admin: /healthz and /metrics on the relay's admin port (relay_admin.h). */
#include "relay_admin.h"
#include "../core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_HEADERS_MAX 8192
#define ADMIN_TIMEOUT_S   10

struct relay_admin {
	struct evhttp *http;
	relay_metrics_fn metrics;
	void *arg;
	const char *ops_token; /* ROOST_OPS_TOKEN, or NULL */
};

static void answer(struct evhttp_request *req, int status, const char *reason, const char *type,
                   const char *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, body, strlen(body));
	evhttp_send_reply(req, status, reason, b);
	evbuffer_free(b);
}

static bool loopback(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port = 0;
	evhttp_connection_get_peer(c, &addr, &port);
	return addr && (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
	                strncmp(addr, "::ffff:127.", 11) == 0);
}

static bool admitted(struct relay_admin *a, struct evhttp_request *req)
{
	if (!a->ops_token)
		return loopback(req);
	const char *authz =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	size_t n = strlen(a->ops_token);
	return authz && strncmp(authz, "Bearer ", 7) == 0 && strlen(authz + 7) == n &&
	       sodium_memcmp(authz + 7, a->ops_token, n) == 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct relay_admin *a = arg;
	const char *uri = evhttp_request_get_uri(req);
	size_t path_len = strcspn(uri, "?");
	if (path_len == 8 && strncmp(uri, "/healthz", 8) == 0) {
		answer(req, 200, "OK", "application/json", "{\"ok\":true}\n");
	} else if (path_len == 8 && strncmp(uri, "/metrics", 8) == 0) {
		if (!admitted(a, req)) {
			answer(req, 403, "Forbidden", "application/json",
			       a->ops_token
			           ? "{\"error\":{\"code\":\"ops_only\",\"message\":\"this "
			             "endpoint needs the operator token (ROOST_OPS_TOKEN) "
			             "as a bearer token\"}}\n"
			           : "{\"error\":{\"code\":\"ops_only\",\"message\":\"this "
			             "endpoint answers loopback clients only; set "
			             "ROOST_OPS_TOKEN to reach it from elsewhere\"}}\n");
			return;
		}
		struct evbuffer *b = evbuffer_new();
		a->metrics(a->arg, b);
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);
		evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
		evhttp_add_header(h, "Cache-Control", "no-store");
		evhttp_send_reply(req, 200, "OK", b);
		evbuffer_free(b);
	} else {
		answer(req, 404, "Not Found", "application/json",
		       "{\"error\":{\"code\":\"not_found\",\"message\":\"the relay's admin port "
		       "serves /healthz and /metrics\"}}\n");
	}
}

struct relay_admin *relay_admin_start(struct event_base *base, const char *addr,
                                      relay_metrics_fn metrics, void *arg)
{
	struct sockaddr_storage ss;
	int len = sizeof ss;
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) != 0) {
		log_error("relay: --admin-listen %s is not ADDR:PORT", addr);
		return NULL;
	}
	struct evconnlistener *l =
	    evconnlistener_new_bind(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
	                            (struct sockaddr *)&ss, len);
	if (!l) {
		log_error("relay: cannot listen on %s (admin): %s", addr, strerror(errno));
		return NULL;
	}
	struct relay_admin *a = xcalloc(1, sizeof *a);
	a->metrics = metrics;
	a->arg = arg;
	const char *ops = getenv("ROOST_OPS_TOKEN");
	a->ops_token = ops && *ops ? ops : NULL;
	a->http = evhttp_new(base);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(a->http, ADMIN_HEADERS_MAX);
	evhttp_set_max_body_size(a->http, 0);
	evhttp_set_timeout(a->http, ADMIN_TIMEOUT_S);
	evhttp_set_gencb(a->http, on_request, a);
	if (!evhttp_bind_listener(a->http, l)) {
		evconnlistener_free(l);
		evhttp_free(a->http);
		free(a);
		log_error("relay: cannot serve %s (admin)", addr);
		return NULL;
	}
	return a;
}

void relay_admin_stop(struct relay_admin *a)
{
	if (!a)
		return;
	evhttp_free(a->http);
	free(a);
}

void relay_stats_write(const struct relay_stats *s, struct evbuffer *out)
{
	evbuffer_add_printf(out, "# HELP roost_relay_requests_total Requests answered, by "
	                         "HTTP status (the host's, or the relay's own).\n"
	                         "# TYPE roost_relay_requests_total counter\n");
	for (int st = 100; st < 600; st++)
		if (s->requests[st])
			evbuffer_add_printf(out, "roost_relay_requests_total{status=\"%d\"} %llu\n",
			                    st, (unsigned long long)s->requests[st]);
	evbuffer_add_printf(
	    out,
	    "# HELP roost_relay_bytes_in_total Request bytes piped from clients to hosts.\n"
	    "# TYPE roost_relay_bytes_in_total counter\n"
	    "roost_relay_bytes_in_total %llu\n"
	    "# HELP roost_relay_bytes_out_total Response bytes piped from hosts to clients.\n"
	    "# TYPE roost_relay_bytes_out_total counter\n"
	    "roost_relay_bytes_out_total %llu\n"
	    "# HELP roost_relay_connections_total Connections accepted, by side.\n"
	    "# TYPE roost_relay_connections_total counter\n"
	    "roost_relay_connections_total{side=\"public\"} %llu\n"
	    "roost_relay_connections_total{side=\"tunnel\"} %llu\n"
	    "# HELP roost_relay_limit_hits_total Requests refused (429) or connections closed "
	    "over a limit, by limit.\n"
	    "# TYPE roost_relay_limit_hits_total counter\n"
	    "roost_relay_limit_hits_total{limit=\"ip\"} %llu\n"
	    "roost_relay_limit_hits_total{limit=\"host\"} %llu\n"
	    "roost_relay_limit_hits_total{limit=\"url\"} %llu\n"
	    "roost_relay_limit_hits_total{limit=\"ip.conns\"} %llu\n"
	    "# HELP roost_relay_auth_failures_total Tunnel hellos refused.\n"
	    "# TYPE roost_relay_auth_failures_total counter\n"
	    "roost_relay_auth_failures_total %llu\n",
	    (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
	    (unsigned long long)s->conns_public, (unsigned long long)s->conns_tunnel,
	    (unsigned long long)s->limit_hits[LIMIT_IP],
	    (unsigned long long)s->limit_hits[LIMIT_HOST],
	    (unsigned long long)s->limit_hits[LIMIT_URL], (unsigned long long)s->conn_limit_hits,
	    (unsigned long long)s->auth_failures);
}
