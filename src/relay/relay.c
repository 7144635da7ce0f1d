/* relay: public HTTPS addresses for hosts that can only dial out (roost relay).
 *
 * Two TLS listeners on one libevent loop:
 *   tunnel  hosts dial in. The first line of each connection is a JSON hello
 *           with a hub-signed relay token (scope "relay": host, slug, expiry),
 *           verified with the hub's public keys alone. A "control" hello
 *           registers the host's slug; "data" hellos are idle connections
 *           waiting for one public request each (the frp/rathole pattern).
 *   public  clients. A request head (at most 16 KiB, within 10 s) is parsed
 *           with http_parser; /h/SLUG/REST goes to an idle data connection of
 *           that host as "REST", hop-by-hop headers removed and
 *           X-Forwarded-For added; then bytes flow both ways, with
 *           backpressure, until either side closes. No idle connection within
 *           5 s: 503. Unknown slug: 404.
 *
 * Keep-alive both ways: request and response bodies are framed by
 * http_parser as they stream (Content-Length or chunked), so when the host's
 * response is complete the data connection goes back to the host's pool and
 * the client may send its next request. A data connection carries one
 * client's request at a time, and a response the relay cannot frame (one
 * that ends at EOF) closes both, so nothing a client sends can reach
 * another's request.
 *
 * Threads: this file is the connection state machine, and all of it runs on
 * the event loop's thread. What the relay learns from the hub (its keys,
 * revoked slugs) is fetched by relay_hub.c's thread; the loop only reads
 * what that thread left under a mutex, and never calls the hub itself. */
#include "relay.h"
#include "relay_admin.h"
#include "http1.h"
#include "relay_hub.h"
#include "../core/json.h"
#include "../core/ratelimit.h"
#include "../core/token.h"
#include "../core/tunnel_proto.h"
#include "../core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEAD_MAX       (16 * 1024)
#define HEAD_TIMEOUT_S 10
#define HELLO_MAX      8192
#define WAIT_POOL_MS   5000
#define PIPE_HIGH      (1 << 20) /* bytes queued toward a slow side before we stop reading */
#define RELAY_TLS12_CIPHERS                                                                        \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define LINGER_S      10  /* a closing connection's last bytes must go by then */
#define CONNS_PER_IP  256 /* public connections open at once per client address */
#define HELLOS_PER_IP 64  /* tunnel connections not yet past their hello, per address */
/* We close idle data connections (plus jitter, so they are not all dialled
 * again at once) before hosts do: core/tunnel_proto.h. */
#define DATA_IDLE_MS        TUNNEL_RELAY_IDLE_MS
#define DATA_IDLE_JITTER_MS TUNNEL_RELAY_IDLE_JITTER_MS
#define TICK_MS             1000  /* revocations due, idle data connections, sweeps */
#define SWEEP_EVERY_TICKS   10    /* buckets and connection counts swept this often */
#define BUCKET_IDLE_MS      60000 /* a bucket untouched this long is full again: forgotten */
#define CROWDED_RETRY_MS    1000  /* Retry-After for a request over its in-flight cap */
#define ACCEPT_PAUSE_MS     250   /* out of descriptors: accept again after this */
#define ACCEPT_WARN_MS      10000 /* … and say so at most this often */

struct rhost;
struct pconn;

struct tconn { /* a tunnel connection from a host */
	struct relay *r;
	struct bufferevent *bev;
	struct rhost *host;
	struct pconn *peer;
	bool control;
	bool closing;               /* freed once its output is written */
	bool dead;                  /* the host closed it: never reused */
	bool freed;                 /* closed: unlinked, callbacks off, memory kept until reaped */
	bool resp_checked;          /* the response head passed http1_head_check */
	bool interim;               /* a 1xx response just ended: another head follows */
	struct limit_entry *unauth; /* counted per address until its hello passes */
	struct tconn *grave;        /* in the relay's list to reap */
	http_parser resp;           /* the host's response to the current request */
	bool head_req;              /* … which was a HEAD: no body follows */
	bool resp_done;             /* … is complete */
	int64_t idle_since;         /* in the idle list since */
	int64_t idle_limit;         /* … and closed after this long idle */
	struct tconn *all_next;     /* every tunnel connection, for shutdown */
	struct tconn *next;         /* in the host's idle list */
};

struct rhost {
	char slug[64];
	char alias[64]; /* the slug before a rotation, routed until it is retired */
	int64_t host_id;
	struct tconn *control;
	struct tconn *idle;
	int nidle;
	struct tconn *busy;          /* carrying a request */
	struct pconn **waiting_tail; /* waiting is first come, first served */
	struct pconn *waiting;       /* requests waiting for an idle connection */
	struct rhost *next;
};

struct pconn { /* a public client connection */
	struct relay *r;
	struct bufferevent *bev;
	struct tconn *peer;
	char client[64];
	http_parser parser; /* the current request, head and body */
	bool head_done;     /* routed: body bytes follow */
	bool req_done;      /* the request's body ended (bytes after it wait) */
	bool keep_alive;    /* the client wants its connection kept */
	bool closing;       /* freed once its output is written */
	bool freed;         /* closed: unlinked, callbacks off, memory kept until reaped */
	bool tls_up;        /* the TLS handshake finished */
	bool chunked;       /* the request body is chunked: re-framed toward the host */
	int64_t body_len;   /* its Content-Length (0: none) */
	bool in_value;
	int nreq; /* requests seen on this connection */
	char *url, *method;
	json_t *headers; /* [[name, value], …] */
	struct event *wait_timer;
	struct rhost *waiting_on;
	struct pconn *next_waiting;
	struct evbuffer *head; /* the rewritten head, then body bytes, until paired */
	int64_t started;
	unsigned status;
	int64_t bytes; /* sent to the client for this request */
	char slug[64];
	struct limit_entry *lim[LIMIT_SCOPES]; /* counted in flight, until freed */
	struct event *throttle;                /* bytes/s: when to move bytes again */
	struct event *linger;                  /* closing: freed by then even if unsent */
	bool held_up, held_down;               /* a direction waiting on it */
	struct limit_entry *conns;             /* this address's open connections */
	struct pconn *grave;                   /* in the relay's list to reap */
	struct pconn *all_prev, *all_next;     /* every open client connection, for shutdown */
};

struct relay {
	struct relay_config cfg;
	struct event_base *base;
	SSL_CTX *ssl;
	struct evconnlistener *pub, *tun;
	struct rhost *hosts;
	struct tconn *all;
	struct pconn *pall; /* every client connection not yet closed */
	FILE *audit;
	struct event *sigint, *sigterm, *poll_timer;
	/* The hub's keys and revocations, fetched on a thread of their own (a
	 * slow hub must not stall the loop); the revoked slugs (relay_hub.h). */
	struct relay_hub hub;
	struct limit_table limits;
	struct limit_table conns; /* open connections per client address (inflight) */
	int sweep_ticks;
	/* Connections are closed at once but freed only here, from an event of
	 * their own: a callback that closes the object it was called for, or its
	 * peer, leaves memory that the code after it may still read. */
	struct pconn *pgrave;
	struct tconn *tgrave;
	struct event *reaper;
	/* Out of descriptors: stop accepting for a moment instead of spinning. */
	struct event *resume_accept;
	int64_t accept_warned_at;
	long accept_errors;
	struct relay_stats stats;  /* for /metrics on the admin port */
	struct relay_admin *admin; /* --admin-listen, or NULL */
};

/* ---- audit: one JSON line per request and per control event ---- */

static void audit(struct relay *r, json_t *o)
{
	json_object_set_new(o, "time", json_integer(now_ms()));
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (r->audit) {
		fprintf(r->audit, "%s\n", s);
		fflush(r->audit);
	}
	free(s);
}

/* ---- hosts ---- */

static struct rhost *find_host(struct relay *r, const char *slug)
{
	for (struct rhost *h = r->hosts; h; h = h->next)
		if (strcmp(h->slug, slug) == 0 || (h->alias[0] && strcmp(h->alias, slug) == 0))
			return h;
	return NULL;
}

static struct rhost *find_host_id(struct relay *r, int64_t id)
{
	for (struct rhost *h = r->hosts; h; h = h->next)
		if (h->host_id == id)
			return h;
	return NULL;
}

static void tconn_close(struct tconn *t);
static void pconn_close(struct pconn *p);
static void pconn_close_after_output(struct pconn *p);
static void pair(struct pconn *p, struct tconn *t);

static void host_drop_idle(struct rhost *h, struct tconn *t)
{
	for (struct tconn **pp = &h->idle; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			h->nidle--;
			return;
		}
	for (struct tconn **pp = &h->busy; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			return;
		}
}

static bool admit(struct pconn *p, enum limit_scope s, const char *key);

static void host_unwait(struct rhost *h, struct pconn *p)
{
	for (struct pconn **pp = &h->waiting; *pp; pp = &(*pp)->next_waiting)
		if (*pp == p) {
			*pp = p->next_waiting;
			if (h->waiting_tail == &p->next_waiting)
				h->waiting_tail = pp;
			return;
		}
}

/* The data connection idle longest: requests spread over the whole pool, so
 * under load none sits idle until it expires and has to be dialled again. */
static struct tconn *oldest_idle(struct rhost *h)
{
	struct tconn *t = h->idle;
	while (t && t->next)
		t = t->next; /* the list is newest first */
	return t;
}

/* ---- replies from the relay itself ---- */

static void reply(struct pconn *p, unsigned status, const char *code, const char *msg,
                  const char *extra_header)
{
	char *body = xasprintf("{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
	const char *reason = status == 404   ? "Not Found"
	                     : status == 400 ? "Bad Request"
	                     : status == 408 ? "Request Timeout"
	                     : status == 431 ? "Request Header Fields Too Large"
	                     : status == 429 ? "Too Many Requests"
	                     : status == 502 ? "Bad Gateway"
	                                     : "Service Unavailable";
	evbuffer_add_printf(bufferevent_get_output(p->bev),
	                    "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\n"
	                    "Content-Length: %zu\r\nConnection: close\r\n%s%s\r\n%s",
	                    status, reason, strlen(body), extra_header ? extra_header : "",
	                    extra_header ? "\r\n" : "", body);
	free(body);
	p->status = status;
	p->head_done = true;
	pconn_close_after_output(p); /* freed once written (pconn_write_cb), or at the deadline */
}

/* ---- framing: http_parser over requests and responses as they stream ---- */

static int on_url(http_parser *hp, const char *at, size_t len)
{
	struct pconn *p = hp->data;
	char *u = p->url ? xasprintf("%s%.*s", p->url, (int)len, at) : xstrndup(at, len);
	free(p->url);
	p->url = u;
	return 0;
}

static int on_field(http_parser *hp, const char *at, size_t len)
{
	struct pconn *p = hp->data;
	if (p->head_done)
		return 0; /* a chunked body's trailer: passed on as it is */
	json_t *last = json_array_get(p->headers, json_array_size(p->headers) - 1);
	if (!p->in_value && last) { /* continuing a name split across reads */
		char *n =
		    xasprintf("%s%.*s", json_string_value(json_array_get(last, 0)), (int)len, at);
		json_array_set_new(last, 0, json_string(n));
		free(n);
	} else {
		char *n = xstrndup(at, len);
		json_array_append_new(p->headers, json_pack("[s, s]", n, ""));
		free(n);
	}
	p->in_value = false;
	return 0;
}

static int on_value(http_parser *hp, const char *at, size_t len)
{
	struct pconn *p = hp->data;
	if (p->head_done)
		return 0;
	json_t *last = json_array_get(p->headers, json_array_size(p->headers) - 1);
	char *v = xasprintf("%s%.*s", json_string_value(json_array_get(last, 1)), (int)len, at);
	json_array_set_new(last, 1, json_string(v));
	free(v);
	p->in_value = true;
	return 0;
}

/* A chunked body goes to the host re-framed, in chunks the relay wrote
 * itself (no extensions, no trailers): the host sees exactly the framing
 * the relay parsed, whatever leniency either parser has. */
static int on_request_body(http_parser *hp, const char *at, size_t len)
{
	struct pconn *p = hp->data;
	if (p->chunked && p->peer && len) {
		struct evbuffer *out = bufferevent_get_output(p->peer->bev);
		evbuffer_add_printf(out, "%zx\r\n", len);
		evbuffer_add(out, at, len);
		evbuffer_add(out, "\r\n", 2);
	}
	return 0;
}

static int on_request_head(http_parser *hp)
{
	struct pconn *p = hp->data;
	p->body_len = (hp->flags & F_CONTENTLENGTH) ? (int64_t)hp->content_length : 0;
	return 0;
}

/* The end of a request: stop there; what follows is the next one's. */
static int on_request_complete(http_parser *hp)
{
	struct pconn *p = hp->data;
	if (p->chunked && p->peer)
		evbuffer_add(bufferevent_get_output(p->peer->bev), "0\r\n\r\n", 5);
	p->req_done = true;
	http_parser_pause(hp, 1);
	return 0;
}

static int on_response_head(http_parser *hp)
{
	struct tconn *t = hp->data;
	if (hp->status_code >= 200 && t->peer)
		t->peer->status = hp->status_code;
	return t->head_req && hp->status_code >= 200 ? 1 : 0; /* 1: no body follows */
}

static int on_response_complete(http_parser *hp)
{
	struct tconn *t = hp->data;
	if (hp->status_code < 200) { /* 100 Continue: the real response follows */
		t->interim = true;
		http_parser_pause(hp, 1);
		return 0;
	}
	t->resp_done = true;
	http_parser_pause(hp, 1);
	return 0;
}

static http_parser_settings request_settings, response_settings;

static void settings_init(void)
{
	http_parser_settings_init(&request_settings);
	request_settings.on_url = on_url;
	request_settings.on_header_field = on_field;
	request_settings.on_header_value = on_value;
	request_settings.on_body = on_request_body;
	request_settings.on_headers_complete = on_request_head;
	request_settings.on_message_complete = on_request_complete;
	http_parser_settings_init(&response_settings);
	response_settings.on_headers_complete = on_response_head;
	response_settings.on_message_complete = on_response_complete;
}

/* Run hp over the first n bytes of buf without copying them. How many it
 * took (it stops after a complete message), or -1 if they are not HTTP. */
static ssize_t parse_some(http_parser *hp, const http_parser_settings *s, struct evbuffer *buf,
                          size_t n)
{
	size_t done = 0;
	while (done < n) {
		struct evbuffer_ptr at;
		evbuffer_ptr_set(buf, &at, done, EVBUFFER_PTR_SET);
		struct evbuffer_iovec v[16];
		int k = evbuffer_peek(buf, (ssize_t)(n - done), &at, v, 16);
		for (int i = 0; i < k && i < 16 && done < n; i++) {
			size_t len = v[i].iov_len < n - done ? v[i].iov_len : n - done;
			size_t got = http_parser_execute(hp, s, v[i].iov_base, len);
			done += got;
			enum http_errno err = HTTP_PARSER_ERRNO(hp);
			if (err == HPE_PAUSED)
				return (ssize_t)done;
			if (err != HPE_OK || got != len)
				return -1;
		}
		if (k <= 0)
			break;
	}
	return (ssize_t)done;
}

/* ---- the public side ---- */

/* Move up to 256 KiB per read or write event instead of libevent's 16 KiB:
 * fewer trips around the loop for a large body. */
static void big_io(struct bufferevent *bev)
{
	bufferevent_set_max_single_read(bev, 256 * 1024);
	bufferevent_set_max_single_write(bev, 256 * 1024);
}

static bool hop_by_hop(const char *name)
{
	static const char *const hop[] = {
	    "connection",          "keep-alive", "proxy-connection", "proxy-authenticate",
	    "proxy-authorization", "te",         "trailer",          "upgrade",
	    "x-forwarded-for"};
	for (size_t i = 0; i < sizeof hop / sizeof *hop; i++)
		if (strcasecmp(name, hop[i]) == 0)
			return true;
	return false;
}

static void pconn_read_head(struct pconn *p)
{
	struct evbuffer *in = bufferevent_get_input(p->bev);
	size_t have = evbuffer_get_length(in);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0) {
		if (have > HEAD_MAX)
			reply(p, 431, "head_too_large", "the request head is over 16 KiB", NULL);
		return;
	}
	size_t head_len = (size_t)end.pos + 4;
	if (head_len > HEAD_MAX) {
		reply(p, 431, "head_too_large", "the request head is over 16 KiB", NULL);
		return;
	}
	p->started = mono_ms();
	p->nreq++;
	const char *data = (const char *)evbuffer_pullup(in, (ssize_t)head_len);
	const char *why;
	if (http1_head_check(HTTP1_REQUEST, data, head_len, &why) != 0) {
		reply(p, 400, "bad_request", why, NULL);
		return;
	}
	p->parser.data = p;
	/* The head; a request without a body completes (and pauses) here. */
	size_t got = http_parser_execute(&p->parser, &request_settings, data, head_len);
	enum http_errno err = HTTP_PARSER_ERRNO(&p->parser);
	if ((err != HPE_PAUSED && err != HPE_OK) || got != head_len || !p->url ||
	    p->parser.http_major != 1 || p->parser.http_minor != 1 || p->parser.upgrade) {
		reply(p, 400, "bad_request",
		      err == HPE_UNEXPECTED_CONTENT_LENGTH
		          ? "conflicting Content-Length / Transfer-Encoding"
		          : "the request is not valid HTTP/1.1",
		      NULL);
		return;
	}
	evbuffer_drain(in, head_len);
	p->keep_alive = http_should_keep_alive(&p->parser);
	p->method = xstrdup(http_method_str(p->parser.method));
	/* /h/SLUG/REST */
	if (strncmp(p->url, "/h/", 3) != 0) {
		reply(p, 404, "not_found", "relay URLs look like /h/SLUG/...", NULL);
		return;
	}
	const char *slug = p->url + 3, *rest = strchr(slug, '/');
	size_t sl = rest ? (size_t)(rest - slug) : strlen(slug);
	if (sl == 0 || sl >= sizeof p->slug) {
		reply(p, 404, "not_found", "no such host on this relay", NULL);
		return;
	}
	memcpy(p->slug, slug, sl);
	p->slug[sl] = 0;
	char key[64 + HEAD_MAX];
	snprintf(key, sizeof key, "ip:%s", p->client);
	if (!admit(p, LIMIT_IP, key))
		return;
	struct rhost *h = find_host(p->r, p->slug);
	if (!h || relay_hub_retired(&p->r->hub, p->slug)) {
		reply(p, 404, "not_found", "no such host on this relay", NULL);
		return;
	}
	snprintf(key, sizeof key, "host:%lld", (long long)h->host_id);
	if (!admit(p, LIMIT_HOST, key))
		return;
	snprintf(key, sizeof key, "url:%lld%.*s", (long long)h->host_id,
	         rest ? (int)strcspn(rest, "?") : 0, rest ? rest : "");
	if (!admit(p, LIMIT_URL, key))
		return;
	/* The head the host gets. */
	p->head = evbuffer_new();
	evbuffer_add_printf(p->head, "%s %s HTTP/1.1\r\n", p->method, rest ? rest : "/");
	size_t i;
	json_t *hd;
	const char *xff = NULL;
	size_t xff_len = 0;
	/* Only what the relay parsed goes on, written out canonically, and the
	 * framing is the one the relay itself will use for the body. */
	json_array_foreach(p->headers, i, hd)
	{
		const char *n = json_string_value(json_array_get(hd, 0));
		const char *v = json_string_value(json_array_get(hd, 1));
		size_t vn = strlen(v);
		while (*v == ' ' || *v == '\t')
			v++, vn--;
		while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
			vn--;
		if (strcasecmp(n, "x-forwarded-for") == 0) {
			xff = v;
			xff_len = vn;
		}
		if (hop_by_hop(n) || strcasecmp(n, "content-length") == 0 ||
		    strcasecmp(n, "transfer-encoding") == 0)
			continue;
		evbuffer_add_printf(p->head, "%s: %.*s\r\n", n, (int)vn, v);
	}
	p->chunked = (p->parser.flags & F_CHUNKED) != 0;
	if (p->chunked)
		evbuffer_add_printf(p->head, "Transfer-Encoding: chunked\r\n");
	else if (p->body_len > 0)
		evbuffer_add_printf(p->head, "Content-Length: %lld\r\n", (long long)p->body_len);
	evbuffer_add_printf(p->head, "X-Forwarded-For: %.*s%s%s\r\n%s\r\n", (int)xff_len,
	                    xff ? xff : "", xff ? ", " : "", p->client,
	                    p->keep_alive ? "" : "Connection: close\r\n");
	p->head_done = true;
	bufferevent_set_timeouts(p->bev, NULL, NULL);
	if (h->idle) {
		struct tconn *t = oldest_idle(h);
		host_drop_idle(h, t);
		pair(p, t);
	} else {
		/* Wait (in turn) for a connection to come free, or the host to open one. */
		bufferevent_disable(p->bev, EV_READ);
		p->waiting_on = h;
		p->next_waiting = NULL;
		*h->waiting_tail = p;
		h->waiting_tail = &p->next_waiting;
		struct timeval tv = {WAIT_POOL_MS / 1000, (WAIT_POOL_MS % 1000) * 1000};
		evtimer_add(p->wait_timer, &tv);
		if (h->control)
			evbuffer_add_printf(bufferevent_get_output(h->control->bev),
			                    "{\"need\":1}\n");
	}
}

static void wait_expired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct pconn *p = arg;
	if (p->waiting_on)
		host_unwait(p->waiting_on, p);
	p->waiting_on = NULL;
	reply(p, 503, "no_connection", "the host has no free connection to the relay; retry",
	      "Retry-After: 1");
}

static size_t byte_allowance(struct pconn *p, size_t n, int64_t *wait_ms);
static void finish_exchange(struct pconn *p);

static bool check_response_head(struct pconn *p, struct evbuffer *in, bool *wait_more);

/* Move what one side of p's exchange sent to the other, as far as the
 * message goes, the bytes/s limits allow (limited) and the other side keeps
 * up; stop reading otherwise. True when the exchange ended (completed, and
 * the tunnel connection reused or closed; or refused, both closed): the
 * caller must look at p->freed and p->peer again before using either. */
static bool pump(struct pconn *p, struct bufferevent *from, struct bufferevent *to, bool limited)
{
	struct tconn *t = p->peer;
	bool up = from == p->bev;
	struct evbuffer *in = bufferevent_get_input(from), *out = bufferevent_get_output(to);
	if (up ? p->req_done : t->resp_done)
		return false; /* bytes past the message wait for the next exchange */
	int64_t wait = 0;
	bool wait_more = false; /* for the rest of a response head */
	for (;;) {
		if (!up && !t->resp_checked) {
			if (!check_response_head(p, in, &wait_more))
				return true; /* refused: both closed */
			if (wait_more)
				break;
		}
		size_t n = evbuffer_get_length(in);
		if (limited && n)
			n = byte_allowance(p, n, &wait);
		ssize_t k = n ? (up ? parse_some(&p->parser, &request_settings, in, n)
		                    : parse_some(&t->resp, &response_settings, in, n))
		              : 0;
		if (k < 0) { /* a body that is not what its head said: end both */
			pconn_close(p);
			return true;
		}
		if (up && p->chunked)
			evbuffer_drain(in, (size_t)k); /* re-framed by on_request_body */
		else
			evbuffer_remove_buffer(in, out, (size_t)k);
		*(up ? &p->r->stats.bytes_in : &p->r->stats.bytes_out) += (uint64_t)k;
		if (!up) {
			p->bytes += k;
			if (t->resp_done) {
				finish_exchange(p);
				return true;
			}
			if (t->interim) { /* a 100 Continue passed: the next head is checked too */
				t->interim = false;
				t->resp_checked = false;
				http_parser_pause(&t->resp, 0);
				continue;
			}
		}
		break;
	}
	if (up && p->req_done)
		return false;
	if (evbuffer_get_length(in) && !wait_more) {
		bufferevent_disable(from, EV_READ);
		*(up ? &p->held_up : &p->held_down) = true;
		struct timeval tv = {wait / 1000, (wait % 1000) * 1000};
		evtimer_add(p->throttle, &tv);
	} else if (evbuffer_get_length(out) >= PIPE_HIGH) {
		bufferevent_disable(from, EV_READ);
	}
	return false;
}

/* The host's response head, held to the same grammar as requests: a host
 * that frames ambiguously could answer a later request on the client's
 * connection, which may be for another host. False if refused (502; both
 * closed); *wait_more if the head is not all here yet. */
static bool check_response_head(struct pconn *p, struct evbuffer *in, bool *wait_more)
{
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	size_t have = evbuffer_get_length(in);
	const char *why = "the response head is over 16 KiB";
	if (end.pos < 0 && have <= HEAD_MAX) {
		*wait_more = true;
		return true;
	}
	if (end.pos >= 0 && (size_t)end.pos + 4 <= HEAD_MAX) {
		size_t n = (size_t)end.pos + 4;
		const char *head = (const char *)evbuffer_pullup(in, (ssize_t)n);
		if (http1_head_check(HTTP1_RESPONSE, head, n, &why) == 0) {
			p->peer->resp_checked = true;
			return true;
		}
	}
	log_warn("relay: host %s sent a response the relay cannot frame: %s", p->slug, why);
	struct tconn *t = p->peer;
	p->peer = NULL;
	t->peer = NULL;
	tconn_close(t);
	if (p->bytes == 0)
		reply(p, 502, "bad_gateway", "the host's response is not valid HTTP/1.1", NULL);
	else
		pconn_close(p);
	return false;
}

/* The bytes/s buckets refilled: move what waited, and read again. */
static void unthrottle(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct pconn *p = arg;
	bool up = p->held_up, down = p->held_down;
	p->held_up = p->held_down = false;
	if (down && p->peer) {
		struct bufferevent *tb = p->peer->bev;
		if (pump(p, tb, p->bev, true))
			return;
		if (!p->held_down &&
		    evbuffer_get_length(bufferevent_get_output(p->bev)) < PIPE_HIGH)
			bufferevent_enable(tb, EV_READ);
	}
	if (up && p->peer) {
		pump(p, p->bev, p->peer->bev, true);
		if (!p->held_up && !p->req_done &&
		    evbuffer_get_length(bufferevent_get_output(p->peer->bev)) < PIPE_HIGH)
			bufferevent_enable(p->bev, EV_READ);
	}
}

/* The other side drained: read again from the one we paused. */
static void release(struct bufferevent *drained, struct bufferevent *paused)
{
	if (paused && evbuffer_get_length(bufferevent_get_output(drained)) < PIPE_HIGH / 2)
		bufferevent_enable(paused, EV_READ);
}

static void pconn_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct pconn *p = arg;
	p->tls_up = true; /* bytes came through TLS */
	if (!p->head_done) {
		pconn_read_head(p);
		return;
	}
	if (p->peer && !p->req_done) {
		pump(p, p->bev, p->peer->bev, true);
	} else if (evbuffer_get_length(bufferevent_get_input(p->bev)) > HEAD_MAX) {
		bufferevent_disable(p->bev, EV_READ); /* pipelined: wait for the answer */
	}
}

static void pconn_write_cb(struct bufferevent *bev, void *arg)
{
	struct pconn *p = arg;
	if (p->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		pconn_close(p); /* our own reply, or the host's last, all sent */
		return;
	}
	release(bev, p->peer && !p->held_down ? p->peer->bev : NULL);
}

static void pconn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct pconn *p = arg;
	if (what & BEV_EVENT_CONNECTED) {
		p->tls_up = true;
		return;
	}
	/* A handshake that did not finish in time cannot carry a 408: close. */
	if (what & BEV_EVENT_TIMEOUT && p->tls_up && !p->head_done && !p->closing &&
	    (p->nreq == 0 || evbuffer_get_length(bufferevent_get_input(p->bev)))) {
		bufferevent_set_timeouts(p->bev, NULL, NULL);
		reply(p, 408, "timeout", "the request head did not arrive within 10 s", NULL);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		pconn_close(p); /* gone, or idle between requests for 10 s */
}

/* The path a request asked the host for, as the audit keeps it: no query, and
 * no token (/c/TOKEN and /u/TOKEN become /c/- and /u/-). */
static json_t *audit_path(const char *url)
{
	const char *rest = url && strncmp(url, "/h/", 3) == 0 ? strchr(url + 3, '/') : NULL;
	if (!rest)
		return json_string("");
	size_t n = strcspn(rest, "?");
	if (n > 3 && (strncmp(rest, "/c/", 3) == 0 || strncmp(rest, "/u/", 3) == 0))
		return json_sprintf("%.3s-", rest);
	return json_stringn(rest, n);
}

/* One audit line for the request on p; its limits stop counting it. */
static void request_done(struct pconn *p)
{
	if (p->status >= 100 && p->status < 600)
		p->r->stats.requests[p->status]++;
	if (p->method || p->nreq == 0)
		audit(p->r, json_pack("{s:s, s:s, s:s, s:s, s:o, s:i, s:I, s:I}", "event",
		                      "request", "client", p->client, "host", p->slug, "method",
		                      p->method ? p->method : "", "path", audit_path(p->url),
		                      "status", (int)p->status, "bytes", (json_int_t)p->bytes,
		                      "duration_ms", (json_int_t)(mono_ms() - p->started)));
	for (int s = 0; s < LIMIT_SCOPES; s++)
		if (p->lim[s]) {
			p->lim[s]->inflight--;
			p->lim[s] = NULL;
		}
	free(p->url);
	free(p->method);
	p->url = p->method = NULL;
	json_array_clear(p->headers);
	if (p->head)
		evbuffer_free(p->head);
	p->head = NULL;
	p->slug[0] = 0;
	p->status = 0;
	p->bytes = 0;
}

static void reap_soon(struct relay *r)
{
	event_active(r->reaper, EV_READ, 0);
}

/* Close p now: it leaves every list, its peer is closed, its callbacks and
 * timers stop. Its memory stays valid until the reaper runs, so a caller
 * may still look at p->freed (and nothing else) after this returns. */
static void pconn_close(struct pconn *p)
{
	if (p->freed)
		return;
	p->freed = true;
	if (p->waiting_on)
		host_unwait(p->waiting_on, p);
	p->waiting_on = NULL;
	if (p->peer && p->status == 502)
		p->status = 499; /* the client went before the host answered */
	request_done(p);
	if (p->peer) {
		struct tconn *t = p->peer;
		p->peer = NULL;
		t->peer = NULL;
		tconn_close(t);
	}
	if (p->conns)
		p->conns->inflight--;
	p->conns = NULL;
	if (p->all_prev)
		p->all_prev->all_next = p->all_next;
	else
		p->r->pall = p->all_next;
	if (p->all_next)
		p->all_next->all_prev = p->all_prev;
	evtimer_del(p->wait_timer);
	evtimer_del(p->throttle);
	evtimer_del(p->linger);
	bufferevent_setcb(p->bev, NULL, NULL, NULL, NULL);
	bufferevent_disable(p->bev, EV_READ | EV_WRITE);
	p->grave = p->r->pgrave;
	p->r->pgrave = p;
	reap_soon(p->r);
}

/* Close p once what is queued for it is written, and no later than
 * LINGER_S from now: a client that reads nothing (or never finished its
 * TLS handshake) cannot keep the connection, or its descriptor, open. */
static void pconn_close_after_output(struct pconn *p)
{
	if (p->freed)
		return;
	p->closing = true;
	bufferevent_disable(p->bev, EV_READ);
	if (!p->tls_up || evbuffer_get_length(bufferevent_get_output(p->bev)) == 0) {
		pconn_close(p);
		return;
	}
	struct timeval tv = {LINGER_S, 0};
	evtimer_add(p->linger, &tv);
}

static void linger_expired(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pconn_close(arg);
}

static void pconn_destroy(struct pconn *p)
{
	event_free(p->wait_timer);
	event_free(p->throttle);
	event_free(p->linger);
	bufferevent_free(p->bev);
	json_decref(p->headers);
	free(p);
}

static void tconn_destroy(struct tconn *t)
{
	bufferevent_free(t->bev);
	free(t);
}

/* The closed connections, freed outside of any of their callbacks. */
static void reap(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct relay *r = arg;
	while (r->pgrave) {
		struct pconn *p = r->pgrave;
		r->pgrave = p->grave;
		pconn_destroy(p);
	}
	while (r->tgrave) {
		struct tconn *t = r->tgrave;
		r->tgrave = t->grave;
		tconn_destroy(t);
	}
}

/* Ready for the client's next request, which may be here already. */
static void pconn_next(struct pconn *p)
{
	http_parser_init(&p->parser, HTTP_REQUEST);
	p->head_done = p->req_done = p->in_value = false;
	p->held_up = p->held_down = false;
	evtimer_del(p->throttle);
	struct timeval tv = {HEAD_TIMEOUT_S, 0};
	bufferevent_set_timeouts(p->bev, &tv, NULL);
	bufferevent_enable(p->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(p->bev)))
		pconn_read_head(p);
}

static void client_address(const struct sockaddr *sa, char *out, size_t n)
{
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
		          (socklen_t)n);
	else
		snprintf(out, n, "?");
}

/* Count one more connection from addr against max (0: no cap), or NULL if
 * that address has max open already. */
static struct limit_entry *count_conn(struct relay *r, const char *prefix, const char *addr,
                                      int max)
{
	char key[96];
	snprintf(key, sizeof key, "%s%s", prefix, addr);
	struct limit_entry *e = limit_table_get(&r->conns, key, mono_ms());
	if (max > 0 && e->inflight >= max)
		return NULL;
	e->inflight++;
	return e;
}

static void on_public(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
	(void)l;
	(void)len;
	struct relay *r = arg;
	char addr[64];
	client_address(sa, addr, sizeof addr);
	struct limit_entry *conns = count_conn(r, "pub:", addr, r->cfg.limits[LIMIT_IP].conns);
	if (!conns) { /* too many at once from there: no TLS, no reply, no descriptor kept */
		r->stats.conn_limit_hits++;
		evutil_closesocket(fd);
		return;
	}
	r->stats.conns_public++;
	SSL *ssl = SSL_new(r->ssl);
	struct pconn *p = xcalloc(1, sizeof *p);
	p->r = r;
	p->conns = conns;
	p->all_next = r->pall;
	if (r->pall)
		r->pall->all_prev = p;
	r->pall = p;
	p->started = mono_ms();
	p->headers = json_array();
	snprintf(p->client, sizeof p->client, "%s", addr);
	http_parser_init(&p->parser, HTTP_REQUEST);
	p->bev = bufferevent_openssl_socket_new(r->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                        BEV_OPT_CLOSE_ON_FREE);
	big_io(p->bev);
	p->wait_timer = evtimer_new(r->base, wait_expired, p);
	p->throttle = evtimer_new(r->base, unthrottle, p);
	p->linger = evtimer_new(r->base, linger_expired, p);
	bufferevent_setcb(p->bev, pconn_read_cb, pconn_write_cb, pconn_event_cb, p);
	/* The handshake and the first head, within HEAD_TIMEOUT_S. */
	struct timeval tv = {HEAD_TIMEOUT_S, 0};
	bufferevent_set_timeouts(p->bev, &tv, NULL);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
}

/* ---- the tunnel side ---- */

static void pair(struct pconn *p, struct tconn *t)
{
	p->peer = t;
	t->peer = p;
	if (t->host) {
		t->next = t->host->busy;
		t->host->busy = t;
	}
	http_parser_init(&t->resp, HTTP_RESPONSE);
	t->resp.data = t;
	t->resp_done = false;
	t->head_req = p->parser.method == HTTP_HEAD;
	p->status = 502; /* until the host's response head says otherwise */
	struct evbuffer *out = bufferevent_get_output(t->bev);
	p->r->stats.bytes_in += evbuffer_get_length(p->head);
	evbuffer_add_buffer(out, p->head);
	evbuffer_free(p->head);
	p->head = NULL;
	bufferevent_enable(t->bev, EV_READ);
	pump(p, p->bev, t->bev, true); /* any body bytes already here */
	if (!p->freed && p->peer == t && !p->held_up && !p->req_done)
		bufferevent_enable(p->bev, EV_READ);
}

/* A data connection free for the next request: a waiting one, or the pool. */
static void tconn_ready(struct tconn *t)
{
	struct rhost *h = t->host;
	if (!h) {
		tconn_close(t);
		return;
	}
	if (h->waiting) {
		struct pconn *p = h->waiting;
		host_unwait(h, p);
		p->waiting_on = NULL;
		evtimer_del(p->wait_timer);
		pair(p, t);
		return;
	}
	t->idle_since = mono_ms();
	t->idle_limit = DATA_IDLE_MS + rand() % DATA_IDLE_JITTER_MS;
	t->next = h->idle;
	h->idle = t;
	h->nidle++;
}

/* The host's response is complete: log the request, then keep each side for
 * its next request, or close it. */
static void finish_exchange(struct pconn *p)
{
	struct tconn *t = p->peer;
	bool host_keeps = http_should_keep_alive(&t->resp);
	bool t_again = p->req_done && host_keeps && !t->dead &&
	               evbuffer_get_length(bufferevent_get_input(t->bev)) == 0;
	bool p_again = p->req_done && p->keep_alive && host_keeps;
	p->peer = NULL;
	t->peer = NULL;
	if (t->host)
		host_drop_idle(t->host, t); /* off the busy list */
	request_done(p);
	if (t_again)
		tconn_ready(t);
	else
		tconn_close(t);
	if (p_again)
		pconn_next(p);
	else
		pconn_close_after_output(p);
}

static void tconn_close(struct tconn *t);

/* Close t once its refusal is written, within LINGER_S. */
static void tconn_close_after_output(struct tconn *t)
{
	t->closing = true;
	bufferevent_disable(t->bev, EV_READ);
	struct timeval tv = {LINGER_S, 0};
	bufferevent_set_timeouts(t->bev, NULL, &tv);
}

/* Close t now (see pconn_close: memory kept until reaped). A client it was
 * answering gets what the host sent so far, then its connection closes. */
static void tconn_close(struct tconn *t)
{
	if (t->freed)
		return;
	t->freed = true;
	if (t->host) {
		host_drop_idle(t->host, t);
		if (t->control && t->host->control == t) {
			/* The host is gone: its slug stops resolving. */
			struct rhost *h = t->host;
			h->control = NULL;
			audit(t->r, json_pack("{s:s, s:s, s:I}", "event", "disconnect", "host",
			                      h->slug, "host_id", (json_int_t)h->host_id));
		}
		t->host = NULL;
	}
	if (t->unauth)
		t->unauth->inflight--;
	t->unauth = NULL;
	if (t->peer) {
		struct pconn *p = t->peer;
		p->peer = NULL;
		t->peer = NULL;
		pconn_close_after_output(p);
	}
	for (struct tconn **pp = &t->r->all; *pp; pp = &(*pp)->all_next)
		if (*pp == t) {
			*pp = t->all_next;
			break;
		}
	bufferevent_setcb(t->bev, NULL, NULL, NULL, NULL);
	bufferevent_disable(t->bev, EV_READ | EV_WRITE);
	t->grave = t->r->tgrave;
	t->r->tgrave = t;
	reap_soon(t->r);
}

static void tconn_hello(struct tconn *t)
{
	struct evbuffer *in = bufferevent_get_input(t->bev);
	char *line = evbuffer_readln(in, NULL, EVBUFFER_EOL_LF);
	if (!line) {
		if (evbuffer_get_length(in) > HELLO_MAX)
			tconn_close(t);
		return;
	}
	json_t *hello = json_loads(line, 0, NULL);
	free(line);
	const char *type = json_get_str(hello, "type"), *why = "no token";
	json_t *claims = token_verify(json_get_str(hello, "token"), keyring_key, &t->r->hub.keys,
	                              keyring_now_ms(&t->r->hub.keys), &why);
	const char *scope = json_get_str(claims, "scope"), *slug = json_get_str(claims, "slug");
	int64_t host_id = 0;
	struct relay *r = t->r;
	if (!claims || !scope || strcmp(scope, "relay") != 0 || !slug || strlen(slug) >= 64 ||
	    !json_get_int(claims, "host", &host_id) || !type) {
		r->stats.auth_failures++;
		audit(r, json_pack("{s:s, s:s}", "event", "auth_failure", "why",
		                   claims ? "not a relay token" : why));
		evbuffer_add_printf(bufferevent_get_output(t->bev),
		                    "{\"ok\":false,\"error\":\"%s\"}\n",
		                    claims ? "not a relay token" : why);
		json_decref(claims);
		json_decref(hello);
		t->host = NULL;
		tconn_close_after_output(t);
		return;
	}
	bufferevent_set_timeouts(t->bev, NULL, NULL); /* attached: idle is fine */
	t->unauth->inflight--;
	t->unauth = NULL;
	struct rhost *h = find_host(r, slug);
	if (!h && (h = find_host_id(r, host_id)) && strcmp(type, "control") == 0) {
		/* A rotated slug: route both until the old one is retired. */
		snprintf(h->alias, sizeof h->alias, "%s", h->slug);
		snprintf(h->slug, sizeof h->slug, "%s", slug);
		audit(r, json_pack("{s:s, s:s, s:s}", "event", "rotate", "host", slug, "previous",
		                   h->alias));
	} else if (!h || strcmp(h->slug, slug) != 0) {
		h = find_host(r, slug);
	}
	if (h && relay_hub_retired(&r->hub, slug) && strcmp(h->alias, slug) != 0)
		h = NULL; /* a token naming a retired slug is no way back in */
	if (relay_hub_retired(&r->hub, slug)) {
		r->stats.auth_failures++;
		audit(r, json_pack("{s:s, s:s}", "event", "auth_failure", "why", "retired slug"));
		evbuffer_add_printf(bufferevent_get_output(t->bev),
		                    "{\"ok\":false,\"error\":\"this relay URL was revoked\"}\n");
		json_decref(claims);
		json_decref(hello);
		tconn_close_after_output(t);
		return;
	}
	if (!h) {
		h = xcalloc(1, sizeof *h);
		h->waiting_tail = &h->waiting;
		snprintf(h->slug, sizeof h->slug, "%s", slug);
		h->host_id = host_id;
		h->next = r->hosts;
		r->hosts = h;
	}
	t->host = h;
	if (strcmp(type, "control") == 0) {
		if (h->control) { /* a reconnect replaces the old one */
			struct tconn *old = h->control;
			h->control = NULL;
			old->host = NULL;
			tconn_close(old);
		}
		t->control = true;
		h->control = t;
		evbuffer_add_printf(bufferevent_get_output(t->bev),
		                    "{\"ok\":true,\"url\":\"https://%s/h/%s/\"}\n",
		                    r->cfg.public_name, slug);
		audit(r, json_pack("{s:s, s:s, s:I}", "event", "connect", "host", slug, "host_id",
		                   (json_int_t)host_id));
	} else {
		tconn_ready(t);
	}
	json_decref(claims);
	json_decref(hello);
}

static void tconn_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct tconn *t = arg;
	if (t->closing)
		return;
	if (!t->host) {
		tconn_hello(t);
		return;
	}
	if (t->peer)
		pump(t->peer, t->bev, t->peer->bev, true);
	else if (t->control)
		evbuffer_drain(bufferevent_get_input(t->bev), (size_t)-1); /* pings */
	else
		tconn_close(t); /* an idle data connection speaking out of turn */
}

static void tconn_write_cb(struct bufferevent *bev, void *arg)
{
	struct tconn *t = arg;
	if (t->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		tconn_close(t);
		return;
	}
	release(bev, t->peer && !t->peer->held_up ? t->peer->bev : NULL);
}

static void tconn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct tconn *t = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		t->dead = true;
		if (t->peer && !t->peer->held_down && t->resp_checked) {
			/* The response's last bytes: one that ends at EOF, or a cut one. */
			struct evbuffer *in = bufferevent_get_input(t->bev);
			t->peer->bytes += (int64_t)evbuffer_get_length(in);
			evbuffer_add_buffer(bufferevent_get_output(t->peer->bev), in);
		}
		tconn_close(t);
	}
}

static void on_tunnel(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
	(void)l;
	(void)len;
	struct relay *r = arg;
	char addr[64];
	client_address(sa, addr, sizeof addr);
	/* Only connections still before their hello count: a host holds many
	 * once attached, but nobody needs many unauthenticated ones. */
	struct limit_entry *unauth = count_conn(r, "tun:", addr, HELLOS_PER_IP);
	if (!unauth) {
		evutil_closesocket(fd);
		return;
	}
	r->stats.conns_tunnel++;
	struct tconn *t = xcalloc(1, sizeof *t);
	t->r = r;
	t->unauth = unauth;
	t->all_next = r->all;
	r->all = t;
	t->bev = bufferevent_openssl_socket_new(r->base, fd, SSL_new(r->ssl),
	                                        BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	big_io(t->bev);
	bufferevent_setcb(t->bev, tconn_read_cb, tconn_write_cb, tconn_event_cb, t);
	struct timeval tv = {HEAD_TIMEOUT_S, 0};
	bufferevent_set_timeouts(t->bev, &tv, NULL); /* the hello, then none */
	bufferevent_enable(t->bev, EV_READ | EV_WRITE);
}

/* ---- revocations: retired slugs from the hub (relay_hub.c fetches them) ---- */

/* Cut a slug now: its host's connections, idle and busy, and the URL. */
static void retire(struct relay *r, const char *slug)
{
	for (struct rhost **pp = &r->hosts; *pp; pp = &(*pp)->next) {
		struct rhost *h = *pp;
		if (strcmp(h->alias, slug) == 0) {
			h->alias[0] = 0; /* the rotation's grace is over */
			/* Requests that came in by the old URL end now. */
			for (struct tconn **tp = &h->busy; *tp;) {
				struct tconn *t = *tp;
				if (t->peer && strcmp(t->peer->slug, slug) == 0) {
					*tp = t->next;
					t->host = NULL;
					pconn_close(t->peer);
				} else {
					tp = &t->next;
				}
			}
			audit(r, json_pack("{s:s, s:s, s:I}", "event", "revoke", "host", slug,
			                   "host_id", (json_int_t)h->host_id));
			return;
		}
		if (strcmp(h->slug, slug) != 0)
			continue;
		*pp = h->next;
		audit(r, json_pack("{s:s, s:s, s:I}", "event", "revoke", "host", slug, "host_id",
		                   (json_int_t)h->host_id));
		while (h->waiting) {
			struct pconn *p = h->waiting;
			host_unwait(h, p);
			p->waiting_on = NULL;
			evtimer_del(p->wait_timer);
			reply(p, 404, "not_found", "this relay URL was revoked", NULL);
		}
		while (h->idle) {
			struct tconn *t = h->idle;
			h->idle = t->next;
			t->host = NULL;
			tconn_close(t);
		}
		if (h->control) {
			h->control->host = NULL;
			tconn_close(h->control);
		}
		/* Requests in flight through this host end now. */
		while (h->busy) {
			struct tconn *t = h->busy;
			h->busy = t->next;
			t->host = NULL;
			if (t->peer)
				pconn_close(t->peer); /* the client's connection too, unflushed */
			else
				tconn_close(t);
		}
		free(h);
		return;
	}
}

/* In the loop: revocations that arrived, and those now due (by our clock). */
static void apply_revocations(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct relay *r = arg;
	json_t *due = relay_hub_due(&r->hub, now_ms()), *slug;
	size_t i;
	json_array_foreach(due, i, slug) retire(r, json_string_value(slug));
	json_decref(due);
}

/* Once a second: revocations coming due, idle data connections, old buckets. */
static void tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct relay *r = arg;
	apply_revocations(-1, 0, r);
	/* Close data connections idle for long, before their hosts do: a host
	 * closing one as we hand it a request would lose that request. */
	int64_t mono = mono_ms();
	for (struct rhost *h = r->hosts; h; h = h->next)
		for (struct tconn **tp = &h->idle; *tp;) {
			struct tconn *t = *tp;
			if (mono - t->idle_since > t->idle_limit) {
				*tp = t->next;
				h->nidle--;
				t->host = NULL;
				tconn_close(t);
			} else {
				tp = &t->next;
			}
		}
	/* Forget idle clients' buckets now and then (full again by then). */
	if (++r->sweep_ticks % SWEEP_EVERY_TICKS == 0 || r->limits.count > 200000)
		limit_table_sweep(&r->limits, mono_ms(),
		                  r->limits.count > 200000 ? 0 : BUCKET_IDLE_MS);
	/* And the connection counts of addresses with none open (many addresses,
	 * IPv6 say, must not grow the table for good). */
	if (r->sweep_ticks % SWEEP_EVERY_TICKS == 0 || r->conns.count > 200000)
		limit_table_sweep(&r->conns, mono_ms(), 0);
	struct timeval tv = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};
	evtimer_add(r->poll_timer, &tv);
}

/* ---- limits: token buckets per client IP, per host and per URL ---- */

/* Admit p's request under the limits of scope s (the bucket under key), or
 * answer 429 with Retry-After. An admitted request counts in flight until
 * its connection is freed. */
static bool admit(struct pconn *p, enum limit_scope s, const char *key)
{
	static const char *const what[LIMIT_SCOPES] = {"from this address", "for this host",
	                                               "for this URL"};
	const struct limit_rule *rule = &p->r->cfg.limits[s];
	if (rule->rps <= 0 && rule->bps <= 0 && rule->inflight <= 0)
		return true;
	int64_t now = mono_ms();
	struct limit_entry *e = limit_table_get(&p->r->limits, key, now);
	bool crowded = rule->inflight > 0 && e->inflight >= rule->inflight;
	int64_t wait = crowded ? CROWDED_RETRY_MS
	               : rule->rps > 0
	                   ? bucket_wait_ms(&e->requests, rule->rps, 2 * rule->rps, 1, now)
	                   : 0;
	if (wait > 0) {
		p->r->stats.limit_hits[s]++;
		char msg[96], retry[48];
		snprintf(msg, sizeof msg, "too many requests%s %s; retry later",
		         crowded ? " at once" : "", what[s]);
		snprintf(retry, sizeof retry, "Retry-After: %lld", (long long)(wait + 999) / 1000);
		reply(p, 429, "rate_limited", msg, retry);
		return false;
	}
	if (rule->rps > 0)
		bucket_take(&e->requests, rule->rps, 2 * rule->rps, 1, now);
	e->inflight++;
	p->lim[s] = e;
	return true;
}

static size_t byte_allowance(struct pconn *p, size_t n, int64_t *wait_ms)
{
	int64_t now = mono_ms();
	double allow = (double)n;
	for (int s = 0; s < LIMIT_SCOPES; s++) {
		double bps = p->r->cfg.limits[s].bps;
		if (bps > 0 && p->lim[s]) {
			double level = bucket_level(&p->lim[s]->bytes, bps, bps, now);
			if (level < allow)
				allow = level > 0 ? level : 0;
		}
	}
	size_t k = (size_t)allow;
	*wait_ms = 0;
	for (int s = 0; s < LIMIT_SCOPES; s++) {
		double bps = p->r->cfg.limits[s].bps;
		if (bps <= 0 || !p->lim[s])
			continue;
		if (k)
			bucket_take(&p->lim[s]->bytes, bps, bps, (double)k, now);
		else {
			/* Wake when a read's worth (or the rest) may pass. */
			double want = n < 16384 ? (double)n : 16384;
			int64_t w = bucket_wait_ms(&p->lim[s]->bytes, bps, bps, want, now);
			if (w > *wait_ms)
				*wait_ms = w;
		}
	}
	if (!k && *wait_ms < 5)
		*wait_ms = 5;
	return k;
}

/* ---- the admin port's /metrics ---- */

static void write_metrics(void *arg, struct evbuffer *out)
{
	struct relay *r = arg;
	uint64_t attached = 0, idle = 0, waiting = 0, tunnel = 0, public = 0;
	for (struct rhost *h = r->hosts; h; h = h->next) {
		attached += h->control != NULL;
		idle += (uint64_t)h->nidle;
		for (struct pconn *p = h->waiting; p; p = p->next_waiting)
			waiting++;
	}
	for (struct tconn *t = r->all; t; t = t->all_next)
		tunnel++;
	for (struct pconn *p = r->pall; p; p = p->all_next)
	public++;
	evbuffer_add_printf(
	    out,
	    "# HELP roost_relay_hosts_attached Hosts with a control connection.\n"
	    "# TYPE roost_relay_hosts_attached gauge\n"
	    "roost_relay_hosts_attached %llu\n"
	    "# HELP roost_relay_connections Connections open, by side.\n"
	    "# TYPE roost_relay_connections gauge\n"
	    "roost_relay_connections{side=\"public\"} %llu\n"
	    "roost_relay_connections{side=\"tunnel\"} %llu\n"
	    "# HELP roost_relay_idle_data_connections Hosts' data connections waiting for a "
	    "request.\n"
	    "# TYPE roost_relay_idle_data_connections gauge\n"
	    "roost_relay_idle_data_connections %llu\n"
	    "# HELP roost_relay_waiting_requests Requests waiting for a data connection.\n"
	    "# TYPE roost_relay_waiting_requests gauge\n"
	    "roost_relay_waiting_requests %llu\n",
	    (unsigned long long)attached, (unsigned long long)public, (unsigned long long)tunnel,
	    (unsigned long long)idle, (unsigned long long)waiting);
	relay_stats_write(&r->stats, out);
}

/* ---- start-up ---- */

/* accept() failed. Out of descriptors (or memory), the listening socket
 * stays readable and libevent would retry at once, forever: stop accepting
 * for 250 ms instead, and say so at most once every 10 s. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct relay *r = arg;
	int err = EVUTIL_SOCKET_ERROR();
	r->accept_errors++;
	int64_t now = mono_ms();
	if (now - r->accept_warned_at >= ACCEPT_WARN_MS) {
		log_warn("relay: accept(): %s (%ld times in the last 10 s); pausing new "
		         "connections",
		         strerror(err), r->accept_errors);
		r->accept_warned_at = now;
		r->accept_errors = 0;
	}
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		evconnlistener_disable(l);
		struct timeval tv = {ACCEPT_PAUSE_MS / 1000, (ACCEPT_PAUSE_MS % 1000) * 1000};
		evtimer_add(r->resume_accept, &tv);
	}
}

static void resume_accepting(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct relay *r = arg;
	if (r->pub)
		evconnlistener_enable(r->pub);
	if (r->tun)
		evconnlistener_enable(r->tun);
}

static struct evconnlistener *listen_on(struct relay *r, const char *addr, evconnlistener_cb cb)
{
	struct sockaddr_storage ss;
	int len = sizeof ss;
	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) != 0) {
		log_error("relay: %s is not ADDR:PORT", addr);
		return NULL;
	}
	struct evconnlistener *l =
	    evconnlistener_new_bind(r->base, cb, r, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 512,
	                            (struct sockaddr *)&ss, len);
	if (!l)
		log_error("relay: cannot listen on %s: %s", addr, strerror(errno));
	else
		evconnlistener_set_error_cb(l, on_accept_error);
	return l;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct relay *r = arg;
	log_info("relay: %s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	event_base_loopexit(r->base, NULL);
}

int relay_run(const struct relay_config *cfg)
{
	struct relay rs = {.cfg = *cfg}, *r = &rs;
	signal(SIGPIPE, SIG_IGN);
	relay_hub_init(&r->hub, cfg);
	int rc = 1;
	r->ssl = SSL_CTX_new(TLS_server_method());
	SSL_CTX_set_min_proto_version(r->ssl, TLS1_2_VERSION);
	/* TLS 1.2: forward secrecy and AEAD only (no CBC: LUCKY13), in our order. */
	SSL_CTX_set_cipher_list(r->ssl, RELAY_TLS12_CIPHERS);
	SSL_CTX_set_options(r->ssl, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
	/* An idle connection keeps no 2 x 17 KiB of TLS buffers (hosts hold many). */
	SSL_CTX_set_mode(r->ssl, SSL_MODE_RELEASE_BUFFERS);
	/* 100 hosts hold 1,700 tunnel connections: more than a default 1,024. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (SSL_CTX_use_certificate_chain_file(r->ssl, cfg->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(r->ssl, cfg->key, SSL_FILETYPE_PEM) != 1) {
		log_error("relay: cannot load %s / %s", cfg->cert, cfg->key);
		goto out;
	}
	char *ap = xasprintf("%s/audit.log", cfg->data);
	r->audit = fopen(ap, "a");
	free(ap);
	relay_hub_first_keys(&r->hub); /* before the first hello, if the hub is up */
	limit_table_init(&r->limits, 4096);
	limit_table_init(&r->conns, 4096);
	settings_init();
	evthread_use_pthreads(); /* the revocations thread wakes the loop */
	r->base = event_base_new();
	r->reaper = event_new(r->base, -1, 0, reap, r);
	r->resume_accept = evtimer_new(r->base, resume_accepting, r);
	r->pub = listen_on(r, cfg->public_addr, on_public);
	r->tun = listen_on(r, cfg->tunnel_addr, on_tunnel);
	if (!r->pub || !r->tun)
		goto out;
	if (cfg->admin_addr &&
	    !(r->admin = relay_admin_start(r->base, cfg->admin_addr, write_metrics, r)))
		goto out;
	r->sigint = evsignal_new(r->base, SIGINT, on_signal, r);
	r->sigterm = evsignal_new(r->base, SIGTERM, on_signal, r);
	event_add(r->sigint, NULL);
	event_add(r->sigterm, NULL);
	r->poll_timer = evtimer_new(r->base, tick, r);
	relay_hub_start(&r->hub, r->base, apply_revocations, r);
	tick(-1, 0, r);
	log_info("relay: public https://%s (listening %s), tunnel %s, admin %s, hub %s",
	         cfg->public_name, cfg->public_addr, cfg->tunnel_addr,
	         cfg->admin_addr ? cfg->admin_addr : "off", cfg->hub);
	static const char *const scope[LIMIT_SCOPES] = {"ip", "host", "url"};
	for (int i = 0; i < LIMIT_SCOPES; i++) { /* what --limit set, in its own words */
		const struct limit_rule *l = &cfg->limits[i];
		char conns[32] = "";
		if (i == LIMIT_IP)
			snprintf(conns, sizeof conns, " ip.conns=%d", l->conns);
		log_info("relay: limits per %s: %s.rps=%g %s.bps=%.0f %s.inflight=%d%s (0: none)",
		         scope[i], scope[i], l->rps, scope[i], l->bps, scope[i], l->inflight,
		         conns);
	}
	event_base_dispatch(r->base);
	rc = 0;
out:
	if (r->sigint)
		event_free(r->sigint);
	if (r->sigterm)
		event_free(r->sigterm);
	relay_hub_fini(&r->hub);
	if (r->poll_timer)
		event_free(r->poll_timer);
	relay_admin_stop(r->admin);
	if (r->pub)
		evconnlistener_free(r->pub);
	if (r->tun)
		evconnlistener_free(r->tun);
	/* Every connection still open, then the hosts. */
	while (r->all) {
		struct tconn *t = r->all;
		if (t->peer)
			pconn_close(t->peer); /* closes t too */
		else
			tconn_close(t);
	}
	while (r->pall)
		pconn_close(r->pall); /* idle between requests, lingering, or waiting */
	if (r->reaper) {
		reap(-1, 0, r);
		event_free(r->reaper);
	}
	if (r->resume_accept)
		event_free(r->resume_accept);
	for (struct rhost *h = r->hosts, *next; h; h = next) {
		next = h->next;
		free(h);
	}
	if (r->base)
		event_base_free(r->base);
	if (r->audit)
		fclose(r->audit);
	limit_table_free(&r->limits);
	limit_table_free(&r->conns);
	SSL_CTX_free(r->ssl);
	return rc;
}
