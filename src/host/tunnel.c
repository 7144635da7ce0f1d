/* tunnel: the host's side of the relay (roost host run --relay ADDR:PORT).
 *
 * The host dials out over TLS: one control connection, which registers its
 * slug and learns its public URL, and TUNNEL_POOL data connections that each
 * wait for one public request. A request arriving on a data connection is
 * piped to this host's own content server (so the same token checks apply),
 * the response piped back, and the connection replaced by a fresh one. Every
 * connection authenticates with a hub-signed relay token; all reconnect with
 * backoff when the relay goes away.
 *
 * Threads: one control thread and one per data connection (plus short-lived
 * extra ones under load); each owns its connection.
 */
#include "host.h"
#include "../core/json.h"
#include "../core/retry.h"
#include "../core/tunnel_proto.h"
#include "../core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TUNNEL_POOL      16
#define TOKEN_REFRESH_MS (30 * 60 * 1000)
#define RECONNECT_MIN_MS 500 /* the backoff's first wait (then doubling, with jitter) */
#define RECONNECT_MAX_MS 30000
#define RECONNECT_JITTER 0.5 /* each wait drawn from [half, all] of the backoff */
/* A connection silent this long is dropped (the relay drops idle ones sooner,
 * so it never hands us one we drop: core/tunnel_proto.h). */
#define PIPE_IDLE_MS     TUNNEL_HOST_IDLE_MS
#define POLL_MS          1000 /* a blocked read or write looks at h->stop this often */
#define STOP_CHECK_MS    100  /* a backoff's sleep looks at h->stop this often */
#define EXTRA_WAIT_MS    20   /* tunnel_stop looks for one-off connections' ends this often */
#define TUNNEL_EXTRA_MAX 48   /* data connections opened on demand beyond the pool */

struct tunnel {
	struct host *h;
	SSL_CTX *ctx;
	char *addr, *port;
	pthread_mutex_t mu;
	char *token;
	int64_t token_at;
	/* One fetch of a token at a time, on one connection to the hub: seventeen
	 * threads attaching at once would otherwise each open one (and keep it). */
	pthread_mutex_t fetch_mu;
	CURL *curl;
	atomic_bool reattach; /* drop the control connection and attach anew */
	atomic_int extra;     /* one-off data connections open beyond the pool */
	pthread_t control, data[TUNNEL_POOL];
};

/* A relay token from the hub (cached for half an hour). New string or NULL. */
static char *cached_token(struct tunnel *t)
{
	pthread_mutex_lock(&t->mu);
	char *tok =
	    t->token && mono_ms() - t->token_at < TOKEN_REFRESH_MS ? xstrdup(t->token) : NULL;
	pthread_mutex_unlock(&t->mu);
	return tok;
}

static char *relay_token(struct tunnel *t)
{
	char *tok = cached_token(t);
	if (tok)
		return tok;
	pthread_mutex_lock(&t->fetch_mu);
	tok = cached_token(t); /* another thread may have just fetched one */
	if (tok) {
		pthread_mutex_unlock(&t->fetch_mu);
		return tok;
	}
	CURL *curl = t->curl;
	char *url = client_ws_url(&t->h->c, "/hosts/self/relay-token", NULL);
	json_t *out = NULL;
	char err[256];
	json_t *body = json_object();
	long st = client_request(&t->h->c, curl, "POST", url, body, &out, err);
	json_decref(body);
	free(url);
	const char *got = json_get_str(out, "token");
	if (st == 201 && got) {
		tok = xstrdup(got);
		pthread_mutex_lock(&t->mu);
		free(t->token);
		t->token = xstrdup(got);
		t->token_at = mono_ms();
		pthread_mutex_unlock(&t->mu);
	} else {
		log_warn("relay: no relay token from the hub (%s)", st ? "refused" : err);
	}
	json_decref(out);
	pthread_mutex_unlock(&t->fetch_mu);
	return tok;
}

static int tcp_connect(const char *host, const char *port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	int fd = -1;
	for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

/* A verified TLS connection to the relay's tunnel port, hello sent. */
static SSL *dial(struct tunnel *t, const char *type, const char *tok, int *fdp)
{
	int fd = tcp_connect(t->addr, t->port);
	if (fd < 0)
		return NULL;
	SSL *ssl = SSL_new(t->ctx);
	SSL_set_fd(ssl, fd);
	SSL_set_tlsext_host_name(ssl, t->addr);
	SSL_set1_host(ssl, t->addr);
	char *hello = xasprintf("{\"type\":\"%s\",\"token\":\"%s\"}\n", type, tok);
	bool ok = SSL_connect(ssl) == 1 && SSL_write(ssl, hello, (int)strlen(hello)) > 0;
	free(hello);
	if (!ok) {
		SSL_free(ssl);
		close(fd);
		return NULL;
	}
	/* From here on non-blocking: a TLS 1.3 session ticket makes the
	 * socket readable with no application data behind it. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	*fdp = fd;
	return ssl;
}

/* SSL_read on the non-blocking socket: bytes read, 0 when none are there
 * yet (after waiting up to a second), -1 when the connection is over. */
static int ssl_read_some(SSL *ssl, int fd, char *buf, int cap)
{
	int n = SSL_read(ssl, buf, cap);
	if (n > 0)
		return n;
	int err = SSL_get_error(ssl, n);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		struct pollfd pf = {.fd = fd,
		                    .events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
		poll(&pf, 1, POLL_MS);
		return 0;
	}
	return -1;
}

static int ssl_write_all(struct host *h, SSL *ssl, int fd, const char *buf, int len)
{
	while (len > 0 && !atomic_load(&h->stop)) {
		int n = SSL_write(ssl, buf, len);
		if (n > 0) {
			buf += n;
			len -= n;
			continue;
		}
		int err = SSL_get_error(ssl, n);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
			return -1;
		struct pollfd pf = {.fd = fd,
		                    .events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};
		poll(&pf, 1, POLL_MS);
	}
	return len > 0 ? -1 : 0;
}

/* The next bytes from the relay, waiting while none come; -1 when it is
 * over or we are stopping. */
static int ssl_read_wait(struct host *h, SSL *ssl, int fd, char *buf, int cap)
{
	while (!atomic_load(&h->stop)) {
		int n = ssl_read_some(ssl, fd, buf, cap);
		if (n != 0)
			return n;
	}
	return -1;
}

static void hang_up(SSL *ssl, int fd)
{
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	if (fd >= 0)
		close(fd);
}

static void backoff_init(struct retry *r)
{
	retry_init(r, RECONNECT_MIN_MS, RECONNECT_MAX_MS, RECONNECT_JITTER);
}

/* The next wait of r, cut short when the host stops. */
static void backoff_sleep(struct host *h, struct retry *r)
{
	int64_t wait = retry_next_ms(r);
	for (int64_t slept = 0; slept < wait && !atomic_load(&h->stop); slept += STOP_CHECK_MS)
		usleep(STOP_CHECK_MS * 1000);
}

/* A relay token and a connection that shows it; NULL if either failed. */
static SSL *attach(struct tunnel *t, const char *type, int *fd)
{
	char *tok = relay_token(t);
	SSL *ssl = tok ? dial(t, type, tok, fd) : NULL;
	free(tok);
	return ssl;
}

static void open_extra(struct tunnel *t);

static void *control_main(void *arg)
{
	struct tunnel *t = arg;
	struct host *h = t->h;
	struct retry backoff;
	backoff_init(&backoff);
	while (!atomic_load(&h->stop)) {
		bool at_once = false; /* attach again without waiting */
		int fd = -1;
		SSL *ssl = attach(t, "control", &fd);
		char line[1024];
		int n = ssl ? ssl_read_wait(h, ssl, fd, line, sizeof line - 1) : 0;
		json_t *ans =
		    n > 0 ? (line[n] = 0, json_loads(line, JSON_DISABLE_EOF_CHECK, NULL)) : NULL;
		const char *url = json_get_str(ans, "url");
		if (url && json_is_true(json_object_get(ans, "ok"))) {
			pthread_mutex_lock(&h->mu);
			free(h->tunnel_url);
			h->tunnel_url = xstrdup(url);
			pthread_mutex_unlock(&h->mu);
			log_info("relay: public URL %s", url);
			retry_reset(&backoff);
			/* Stay attached. {"need":1} means a request waits for a data
			 * connection: every pooled one is busy (long downloads, say),
			 * so open one more for it. */
			char buf[1024];
			size_t have = 0;
			int got;
			while (!atomic_load(&t->reattach) &&
			       (got = ssl_read_some(ssl, fd, buf + have,
			                            (int)(sizeof buf - have))) >= 0 &&
			       !atomic_load(&h->stop)) {
				have += (size_t)got;
				char *nl;
				while ((nl = memchr(buf, '\n', have))) {
					*nl = 0;
					if (strstr(buf, "\"need\""))
						open_extra(t);
					have -= (size_t)(nl + 1 - buf);
					memmove(buf, nl + 1, have);
				}
				if (have == sizeof buf)
					have = 0; /* not ours to make sense of */
			}
			if (atomic_exchange(&t->reattach, false)) {
				log_info("relay: our URL changed; attaching again");
				at_once = true;
			}
			pthread_mutex_lock(&t->mu); /* a fresh token: the slug may be new */
			free(t->token);
			t->token = NULL;
			pthread_mutex_unlock(&t->mu);
			if (!atomic_load(&h->stop))
				log_warn("relay: control connection lost; reconnecting");
		} else if (!atomic_load(&h->stop)) {
			log_warn("relay: cannot attach to %s:%s%s%s", t->addr, t->port,
			         ans ? ": " : "", ans ? json_get_str(ans, "error") : "");
		}
		json_decref(ans);
		hang_up(ssl, fd);
		if (!atomic_load(&h->stop) && !at_once)
			backoff_sleep(h, &backoff);
	}
	return NULL;
}

/* Copy both ways between the relay and the local content server until
 * either closes: the relay sends requests one after another on the same
 * connection (keep-alive), and closes it when it is done with it. first
 * holds the first request's first bytes. */
static void pipe_request(struct host *h, SSL *ssl, int rfd, const char *first, int nfirst)
{
	const char *colon = strrchr(h->cfg.listen, ':');
	char *addr = xstrndup(h->cfg.listen, (size_t)(colon - h->cfg.listen));
	int lfd = tcp_connect(addr, colon + 1);
	free(addr);
	if (lfd < 0 || write_all(lfd, first, (size_t)nfirst) != 0) {
		if (lfd >= 0)
			close(lfd);
		return;
	}
	char buf[64 * 1024];
	int64_t idle_ms = 0;
	while (!atomic_load(&h->stop) && idle_ms < PIPE_IDLE_MS) {
		struct pollfd pf[2] = {{.fd = rfd, .events = POLLIN},
		                       {.fd = lfd, .events = POLLIN}};
		int ready = SSL_pending(ssl) ? 1 : poll(pf, 2, POLL_MS);
		if (ready < 0)
			break;
		if (ready == 0) {
			idle_ms += POLL_MS;
			continue;
		}
		idle_ms = 0;
		if (SSL_pending(ssl) || pf[0].revents) {
			int n = SSL_read(ssl, buf, sizeof buf);
			int err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, n);
			if (n > 0 && write_all(lfd, buf, (size_t)n) != 0)
				break;
			if (n <= 0 && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
				break; /* the relay is done with this connection */
		}
		if (pf[1].revents) {
			ssize_t n = read(lfd, buf, sizeof buf);
			if (n <= 0 || ssl_write_all(h, ssl, rfd, buf, (int)n) != 0)
				break; /* the content server closed (Connection: close) */
		}
	}
	close(lfd);
}

/* The relay answers a hello it refuses with a JSON line; a request never
 * starts with '{' (not a method's character). Such a line is not for the
 * content server: the connection is dropped and dialled again later. */
static bool refused(const char *first, int n)
{
	if (n <= 0 || first[0] != '{')
		return false;
	log_debug("relay: refused a data connection: %.*s", n > 200 ? 200 : n, first);
	return true;
}

static void *data_main(void *arg)
{
	struct tunnel *t = arg;
	struct host *h = t->h;
	struct retry backoff;
	backoff_init(&backoff);
	while (!atomic_load(&h->stop)) {
		int fd = -1;
		SSL *ssl = attach(t, "data", &fd);
		if (!ssl) {
			backoff_sleep(h, &backoff);
			continue;
		}
		retry_reset(&backoff);
		/* A request's first bytes, or the relay closing (then dial again). */
		char first[16 * 1024];
		int n = ssl_read_wait(h, ssl, fd, first, sizeof first);
		if (n > 0 && !refused(first, n))
			pipe_request(h, ssl, fd, first, n);
		else if (!atomic_load(&h->stop))
			backoff_sleep(h, &backoff);
		hang_up(ssl, fd);
	}
	return NULL;
}

/* One more data connection, for one burst: it serves until the relay is done
 * with it (idle, or the connection drops), then goes away. */
static void *extra_main(void *arg)
{
	struct tunnel *t = arg;
	struct host *h = t->h;
	int fd = -1;
	SSL *ssl = attach(t, "data", &fd);
	char first[16 * 1024];
	int n = ssl ? ssl_read_wait(h, ssl, fd, first, sizeof first) : 0;
	if (n > 0 && !refused(first, n))
		pipe_request(h, ssl, fd, first, n);
	hang_up(ssl, fd);
	atomic_fetch_sub(&t->extra, 1);
	return NULL;
}

static void open_extra(struct tunnel *t)
{
	if (atomic_fetch_add(&t->extra, 1) >= TUNNEL_EXTRA_MAX) {
		atomic_fetch_sub(&t->extra, 1);
		return;
	}
	pthread_t th;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, extra_main, t) != 0)
		atomic_fetch_sub(&t->extra, 1);
	pthread_attr_destroy(&attr);
}

struct tunnel *tunnel_start(struct host *h)
{
	if (!h->cfg.relay)
		return NULL;
	if (!h->cfg.listen) {
		log_error(
		    "relay: --relay needs --listen (the relay forwards to the content server)");
		return NULL;
	}
	const char *colon = strrchr(h->cfg.relay, ':');
	if (!colon || colon == h->cfg.relay || !colon[1]) {
		log_error("relay: --relay takes the relay's tunnel ADDR:PORT");
		return NULL;
	}
	struct tunnel *t = xcalloc(1, sizeof *t);
	t->h = h;
	t->addr = xstrndup(h->cfg.relay, (size_t)(colon - h->cfg.relay));
	t->port = xstrdup(colon + 1);
	pthread_mutex_init(&t->mu, NULL);
	pthread_mutex_init(&t->fetch_mu, NULL);
	t->curl = client_curl(&h->c);
	t->ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	if (h->cfg.relay_ca ? SSL_CTX_load_verify_locations(t->ctx, h->cfg.relay_ca, NULL) != 1
	                    : SSL_CTX_set_default_verify_paths(t->ctx) != 1)
		log_warn("relay: cannot load CA certificates%s%s", h->cfg.relay_ca ? " from " : "",
		         h->cfg.relay_ca ? h->cfg.relay_ca : "");
	pthread_create(&t->control, NULL, control_main, t);
	for (int i = 0; i < TUNNEL_POOL; i++)
		pthread_create(&t->data[i], NULL, data_main, t);
	return t;
}

void tunnel_stop(struct tunnel *t)
{
	if (!t)
		return;
	pthread_join(t->control, NULL);
	for (int i = 0; i < TUNNEL_POOL; i++)
		pthread_join(t->data[i], NULL);
	while (atomic_load(&t->extra) > 0) /* detached: they see h->stop within a second */
		usleep(EXTRA_WAIT_MS * 1000);
	SSL_CTX_free(t->ctx);
	curl_easy_cleanup(t->curl);
	pthread_mutex_destroy(&t->fetch_mu);
	pthread_mutex_destroy(&t->mu);
	free(t->token);
	free(t->addr);
	free(t->port);
	free(t);
}

void tunnel_refresh(struct tunnel *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	free(t->token);
	t->token = NULL;
	pthread_mutex_unlock(&t->mu);
	atomic_store(&t->reattach, true);
}
