/* acceptor: the hub's listening sockets and the choice of daemon per
 * connection (acceptor.h). */
#include "acceptor.h"
#include "../core/connlimit.h"
#include "../core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define PEEK_MAX       1024 /* a request line longer than this is not the feed's */
#define ACCEPT_BURST   64   /* connections accepted per wake-up per port */
#define EPOLL_EVENTS   64
#define EMFILE_WAIT_MS 100 /* out of descriptors: stop accepting this long */

enum kind { K_LISTEN, K_PENDING, K_STOP };

/* Either a listening port or a connection waiting for its request line. */
struct item {
	enum kind kind;
	int fd;
	int port;                 /* index into the ports */
	struct item *prev, *next; /* pending only: the list, oldest first */
	int64_t deadline_ms;      /* pending only */
	void *hold;               /* pending only: connlimit_hold */
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

struct acceptor {
	struct hub *hub;
	int ep, stop_fd;
	struct item stop_item;
	struct item ports[ACCEPTOR_PORTS];
	struct MHD_Daemon *threaded[ACCEPTOR_PORTS];
	struct MHD_Daemon *feed;
	struct item *head, *tail; /* pending, by deadline (one timeout: by arrival) */
	int64_t paused_until_ms;  /* after EMFILE */
	pthread_t thread;
};

int acceptor_listen(const struct sockaddr_storage *ss, bool v6)
{
	int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	socklen_t len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	if (bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, SOMAXCONN) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* ---- deciding ---- */

enum verdict { V_WAIT, V_FEED, V_THREADED, V_GONE };

/* Whether buf[0..n) can still become lit (matched so far: V_WAIT), is it and
 * more (V_FEED), or cannot (V_THREADED). */
static enum verdict expect(const char *buf, size_t n, const char *lit)
{
	size_t l = strlen(lit), m = n < l ? n : l;
	if (memcmp(buf, lit, m) != 0)
		return V_THREADED;
	return n > l ? V_FEED : V_WAIT;
}

/* GET /api/v1/workspaces/{id}/events followed by '?' or ' ': the feed's route
 * (server.c's routes[]); anything else goes to the threaded daemon. */
static enum verdict classify(const char *buf, size_t n)
{
	static const char head[] = "GET /api/v1/workspaces/";
	enum verdict v = expect(buf, n, head);
	if (v != V_FEED)
		return v;
	size_t i = sizeof head - 1, id = i;
	while (i < n && buf[i] != '/' && buf[i] != '?' && buf[i] != ' ' && buf[i] != '\r' &&
	       buf[i] != '\n')
		i++;
	if (i == n)
		return n >= PEEK_MAX ? V_THREADED : V_WAIT;
	if (i == id || buf[i] != '/')
		return V_THREADED;
	v = expect(buf + i, n - i, "/events");
	if (v != V_FEED)
		return v;
	char after = buf[i + sizeof "/events" - 1];
	return after == '?' || after == ' ' ? V_FEED : V_THREADED;
}

static enum verdict peek(int fd)
{
	char buf[PEEK_MAX];
	ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0)
		return V_GONE;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? V_WAIT : V_GONE;
	enum verdict v = classify(buf, (size_t)n);
	return v == V_WAIT && (size_t)n >= sizeof buf ? V_THREADED : v;
}

/* ---- pending connections ---- */

static void unlink_pending(struct acceptor *a, struct item *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		a->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		a->tail = p->prev;
	epoll_ctl(a->ep, EPOLL_CTL_DEL, p->fd, NULL);
	connlimit_unhold(a->hub->conns, p->hold);
}

/* Hand over (d not NULL) or close, and forget. */
static void finish(struct acceptor *a, struct item *p, struct MHD_Daemon *d)
{
	unlink_pending(a, p);
	if (d) {
		/* MHD owns the socket now, and closes it if it cannot take it. */
		if (MHD_add_connection(d, p->fd, (const struct sockaddr *)&p->addr, p->addrlen) !=
		    MHD_YES)
			log_debug("acceptor: a connection was refused: %s", strerror(errno));
	} else {
		close(p->fd);
	}
	free(p);
}

static void on_pending(struct acceptor *a, struct item *p)
{
	switch (peek(p->fd)) {
	case V_WAIT:
		return;
	case V_FEED:
		finish(a, p, a->feed);
		return;
	case V_THREADED:
		finish(a, p, a->threaded[p->port]);
		return;
	case V_GONE:
		finish(a, p, NULL);
		return;
	}
}

static void accept_some(struct acceptor *a, struct item *port)
{
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct item *p = xcalloc(1, sizeof *p);
		p->addrlen = sizeof p->addr;
		p->fd = accept4(port->fd, (struct sockaddr *)&p->addr, &p->addrlen,
		                SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (p->fd < 0) {
			int e = errno;
			free(p);
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
				log_warn("acceptor: cannot accept: %s; pausing %d ms", strerror(e),
				         EMFILE_WAIT_MS);
				a->paused_until_ms = mono_ms() + EMFILE_WAIT_MS;
			}
			return; /* EAGAIN, or an aborted connection */
		}
		p->hold = connlimit_hold(a->hub->conns, (const struct sockaddr *)&p->addr);
		if (!p->hold) { /* at its limit: refused, as the daemons refuse */
			close(p->fd);
			free(p);
			continue;
		}
		p->kind = K_PENDING;
		p->port = port->port;
		p->deadline_ms = mono_ms() + (int64_t)a->hub->cfg.head_timeout_s * 1000;
		p->prev = a->tail;
		if (a->tail)
			a->tail->next = p;
		else
			a->head = p;
		a->tail = p;
		/* Edge-triggered: woken once per arrival of bytes, not while they sit
		 * there unread (they are only peeked). Adding a readable socket
		 * reports it at once. */
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = p};
		if (epoll_ctl(a->ep, EPOLL_CTL_ADD, p->fd, &ev) < 0)
			finish(a, p, a->threaded[p->port]);
	}
}

static void set_listening(struct acceptor *a, bool on)
{
	for (int i = 0; i < ACCEPTOR_PORTS; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &a->ports[i]};
		epoll_ctl(a->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, a->ports[i].fd, &ev);
	}
}

static void *acceptor_main(void *arg)
{
	struct acceptor *a = arg;
	struct epoll_event evs[EPOLL_EVENTS];
	for (;;) {
		int64_t now = mono_ms();
		while (a->head && a->head->deadline_ms <= now)
			finish(a, a->head,
			       NULL); /* no request line in time: as MHD's head timeout */
		if (a->paused_until_ms && a->paused_until_ms <= now) {
			a->paused_until_ms = 0;
			set_listening(a, true);
		}
		int64_t next = a->head ? a->head->deadline_ms : -1;
		if (a->paused_until_ms && (next < 0 || a->paused_until_ms < next))
			next = a->paused_until_ms;
		int timeout = next < 0 ? -1 : (int)(next - now + 1);
		int n = epoll_wait(a->ep, evs, EPOLL_EVENTS, timeout);
		if (n < 0 && errno != EINTR) {
			log_error("acceptor: epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct item *it = evs[i].data.ptr;
			if (it->kind == K_STOP)
				return NULL;
			if (it->kind == K_LISTEN) {
				if (!a->paused_until_ms)
					accept_some(a, it);
				if (a->paused_until_ms)
					set_listening(a, false);
			} else {
				on_pending(a, it);
			}
		}
	}
	return NULL;
}

struct acceptor *acceptor_start(struct hub *hub, const int fds[ACCEPTOR_PORTS],
                                struct MHD_Daemon *const threaded[ACCEPTOR_PORTS],
                                struct MHD_Daemon *feed)
{
	struct acceptor *a = xcalloc(1, sizeof *a);
	a->hub = hub;
	a->feed = feed;
	a->ep = epoll_create1(EPOLL_CLOEXEC);
	a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a->stop_item.kind = K_STOP;
	for (int i = 0; i < ACCEPTOR_PORTS; i++) {
		a->ports[i] = (struct item){.kind = K_LISTEN, .fd = fds[i], .port = i};
		a->threaded[i] = threaded[i];
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &a->stop_item};
	if (a->ep < 0 || a->stop_fd < 0 || epoll_ctl(a->ep, EPOLL_CTL_ADD, a->stop_fd, &ev) < 0) {
		log_error("acceptor: %s", strerror(errno));
		goto fail;
	}
	set_listening(a, true);
	if (pthread_create(&a->thread, NULL, acceptor_main, a) != 0) {
		log_error("acceptor: cannot start its thread");
		goto fail;
	}
	return a;
fail:
	for (int i = 0; i < ACCEPTOR_PORTS; i++)
		close(fds[i]);
	if (a->ep >= 0)
		close(a->ep);
	if (a->stop_fd >= 0)
		close(a->stop_fd);
	free(a);
	return NULL;
}

void acceptor_stop(struct acceptor *a)
{
	if (!a)
		return;
	uint64_t one = 1;
	if (write(a->stop_fd, &one, sizeof one) < 0)
		log_warn("acceptor: cannot signal its thread: %s", strerror(errno));
	pthread_join(a->thread, NULL);
	while (a->head)
		finish(a, a->head, NULL);
	for (int i = 0; i < ACCEPTOR_PORTS; i++)
		close(a->ports[i].fd);
	close(a->ep);
	close(a->stop_fd);
	free(a);
}
