/* feed: the realtime change feed, GET /api/v1/workspaces/{id}/events?since=SEQ.
 *
 * Server-Sent Events. A subscriber first gets every change after SEQ (or after
 * its Last-Event-ID), then each new one as it commits, each with "id: SEQ" so a
 * client that reconnects with its last seq misses nothing and sees nothing
 * twice. Commits wake subscribers through a condition variable; with several
 * hubs on one PostgreSQL, a LISTEN thread turns other hubs' NOTIFYs into the
 * same wake-up. A waiting subscriber holds no database connection, and sends a
 * heartbeat comment when it has been quiet for the heartbeat interval.
 *
 * Two ways to wait. On the feed daemon (server.c's event loop, which plain-HTTP
 * subscribers reach through acceptor.c) a subscriber with nothing to send
 * joins the waiting list and suspends its connection: it costs no thread and
 * no CPU. The watcher thread resumes them: the whole list when feed_notify
 * signals a commit, those due a heartbeat, and any whose client hung up (MHD
 * does not look at a suspended connection's socket); feed_stop resumes everyone
 * so the loop can stop. On a thread-per-connection daemon (the hub's own TLS)
 * the content callback blocks its thread on a condition variable, as before.
 * Subscribers woken by one commit share one read of the new changes (fetch). */
#include "hub.h"
#include "auth.h"
#include "feed.h"
#include "acl.h"
#include "../core/json.h"
#include "../core/util.h"

#include <jansson.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define FEED_BATCH      500 /* changes read per query */
#define FEED_LOOP_BLOCK 512 /* the response's buffer on the feed daemon */

struct sub;

/* The last batch of changes read, as sent (fetch). */
struct batch {
	bool valid;
	uint64_t gen;
	int64_t ws, user, from, to; /* the position before and after */
	int rows;
	char *text;
	size_t len, cap;
};

struct feed {
	pthread_mutex_t mu;
	pthread_cond_t changed;
	uint64_t generation; /* bumped on every commit seen */
	bool stopping;
	pthread_t listener;
	bool listening;
	atomic_int subscribers;
	struct sub *waiting;  /* suspended subscribers of the feed daemon (under mu) */
	int64_t next_beat_ms; /* the earliest heartbeat due on the list; 0: none */
	/* The watcher thread: heartbeats due, and waiting subscribers whose client
	 * hung up (MHD does not look at a suspended connection's socket). */
	int watch_ep;
	int wake_fd;        /* feed_notify to the watcher: resume them all */
	struct sub **by_fd; /* waiting subscribers by socket (under mu) */
	size_t by_fd_len;
	pthread_t watcher;
	bool watching;
	pthread_mutex_t batch_mu;
	struct batch batch;
};

static void resume_all(struct feed *f);
static void *watch_main(void *arg);

bool feed_conn_looped(struct MHD_Connection *c)
{
	/* The daemon a connection names is a worker of the feed daemon's pool, not
	 * hub->feed_loop itself; only the feed daemon may suspend connections (the flag includes
	 * MHD_USE_ITC, which the threaded daemons have too). */
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_DAEMON);
	const union MHD_DaemonInfo *di =
	    ci ? MHD_get_daemon_info(ci->daemon, MHD_DAEMON_INFO_FLAGS) : NULL;
	return di && (di->flags & MHD_ALLOW_SUSPEND_RESUME) == MHD_ALLOW_SUSPEND_RESUME;
}

void feed_init(struct hub *hub)
{
	struct feed *f = xcalloc(1, sizeof *f);
	pthread_mutex_init(&f->mu, NULL);
	pthread_mutex_init(&f->batch_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->changed, &ca);
	pthread_condattr_destroy(&ca);
	f->watch_ep = epoll_create1(EPOLL_CLOEXEC);
	f->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = f->wake_fd};
	if (f->watch_ep >= 0 &&
	    (f->wake_fd < 0 || epoll_ctl(f->watch_ep, EPOLL_CTL_ADD, f->wake_fd, &ev) < 0)) {
		close(f->watch_ep); /* no watcher: subscribers block a thread each */
		f->watch_ep = -1;
	}
	hub->feed = f;
}

void feed_notify(struct hub *hub)
{
	struct feed *f = hub->feed;
	pthread_mutex_lock(&f->mu);
	f->generation++;
	pthread_cond_broadcast(&f->changed);
	/* The watcher resumes them: with 10,000 waiting that takes a while, and the
	 * committer has an answer to send. */
	uint64_t one = 1;
	if (f->waiting && (!f->watching || write(f->wake_fd, &one, sizeof one) != sizeof one))
		resume_all(f);
	pthread_mutex_unlock(&f->mu);
}

int feed_subscribers(struct hub *hub)
{
	return atomic_load(&hub->feed->subscribers);
}

/* Other hubs' commits arrive as NOTIFYs on a connection of our own. */
static void *listen_main(void *arg)
{
	struct hub *hub = arg;
	struct feed *f = hub->feed;
	char *err = NULL;
	struct db *db = NULL;
	for (;;) {
		pthread_mutex_lock(&f->mu);
		bool stop = f->stopping;
		pthread_mutex_unlock(&f->mu);
		if (stop)
			break;
		if (!db) {
			db = db_open(hub->db_url, &err);
			if (!db || db_listen(db, "roost_changes") != DB_DONE) {
				log_warn("feed: cannot listen for other hubs' changes: %s",
				         err ? err : "LISTEN failed");
				free(err);
				err = NULL;
				db_close(db);
				db = NULL;
				struct timespec ts = {1, 0};
				nanosleep(&ts, NULL);
				continue;
			}
			feed_notify(hub); /* changes may have come while not listening */
		}
		int r = db_wait_notify(db, 500);
		if (r > 0)
			feed_notify(hub);
		else if (r < 0) {
			db_close(db);
			db = NULL;
		}
	}
	db_close(db);
	return NULL;
}

/* On SQLite one hub serves the file, but `roost admin` jobs in another
 * process write changes too (scrub.requested, chunks.collected): one query a
 * second notices them, whatever the number of subscribers. */
static void *poll_main(void *arg)
{
	struct hub *hub = arg;
	struct feed *f = hub->feed;
	int64_t last = -1;
	for (;;) {
		pthread_mutex_lock(&f->mu);
		bool stop = f->stopping;
		pthread_mutex_unlock(&f->mu);
		if (stop)
			break;
		struct db *db = db_pool_acquire(hub->pool);
		int64_t sum = 0;
		if (db_int64(db, &sum,
		             "SELECT COALESCE(SUM(last_seq), 0) FROM workspace_counters") ==
		        DB_ROW &&
		    sum != last) {
			if (last >= 0)
				feed_notify(hub);
			last = sum;
		}
		db_pool_release(hub->pool, db);
		struct timespec ts = {1, 0};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

void feed_start_listener(struct hub *hub)
{
	bool pg = strncmp(hub->db_url, "postgres", 8) == 0;
	hub->feed->listening =
	    pthread_create(&hub->feed->listener, NULL, pg ? listen_main : poll_main, hub) == 0;
	hub->feed->watching = hub->feed->watch_ep >= 0 &&
	                      pthread_create(&hub->feed->watcher, NULL, watch_main, hub) == 0;
}

void feed_stop(struct hub *hub)
{
	struct feed *f = hub->feed;
	pthread_mutex_lock(&f->mu);
	f->stopping = true;
	pthread_cond_broadcast(&f->changed);
	resume_all(f); /* MHD may not stop with a connection suspended */
	pthread_mutex_unlock(&f->mu);
	if (f->listening)
		pthread_join(f->listener, NULL);
	f->listening = false;
	if (f->watching)
		pthread_join(f->watcher, NULL);
	f->watching = false;
}

void feed_free(struct hub *hub)
{
	struct feed *f = hub->feed;
	if (!f)
		return;
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->changed);
	if (f->watch_ep >= 0)
		close(f->watch_ep);
	if (f->wake_fd >= 0)
		close(f->wake_fd);
	free(f->by_fd);
	pthread_mutex_destroy(&f->batch_mu);
	free(f->batch.text);
	free(f);
	hub->feed = NULL;
}

/* ---- one subscriber ---- */

struct sub {
	struct hub *hub;
	struct MHD_Connection *conn;
	int fd; /* the connection's socket */
	int64_t ws, last_seq, user;
	char *buf; /* formatted events not yet handed to MHD */
	size_t len, off, cap;
	int64_t last_send_ms;
	uint64_t fetched_gen; /* the generation of the last fetch that came up empty */
	bool fetched;         /* ... if there was one */
	bool counted;
	bool loop;               /* on the feed daemon: suspend rather than block */
	bool waiting;            /* on the waiting list, its connection suspended */
	bool gone;               /* its client hung up while it waited (under mu) */
	struct sub *prev, *next; /* the waiting list */
};

/* Under f->mu. */
static void unlink_waiting(struct feed *f, struct sub *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		f->waiting = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->waiting = false;
	if (s->fd >= 0 && (size_t)s->fd < f->by_fd_len) {
		f->by_fd[s->fd] = NULL;
		epoll_ctl(f->watch_ep, EPOLL_CTL_DEL, s->fd, NULL);
	}
}

/* Under f->mu: watch a waiting subscriber's socket for a hang-up. */
static void watch(struct feed *f, struct sub *s)
{
	if (s->fd < 0)
		return;
	if ((size_t)s->fd >= f->by_fd_len) {
		size_t n = (size_t)s->fd * 2 + 64;
		f->by_fd = xrealloc(f->by_fd, n * sizeof *f->by_fd);
		memset(f->by_fd + f->by_fd_len, 0, (n - f->by_fd_len) * sizeof *f->by_fd);
		f->by_fd_len = n;
	}
	f->by_fd[s->fd] = s;
	struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLONESHOT, .data.fd = s->fd};
	epoll_ctl(f->watch_ep, EPOLL_CTL_ADD, s->fd, &ev);
}

/* Under f->mu: every waiting subscriber looks again (its next content
 * callback runs on the feed daemon's thread). */
static void resume_all(struct feed *f)
{
	while (f->waiting) {
		struct sub *s = f->waiting;
		unlink_waiting(f, s);
		MHD_resume_connection(s->conn);
	}
	f->next_beat_ms = 0;
}

/* Under f->mu: those whose heartbeat is due; the list is walked only when one
 * is. */
static void resume_due(struct hub *hub)
{
	struct feed *f = hub->feed;
	int64_t beat = hub->cfg.feed_heartbeat_ms, now = mono_ms();
	if (f->next_beat_ms && f->next_beat_ms <= now) {
		int64_t next = 0;
		for (struct sub *s = f->waiting, *nx; s; s = nx) {
			nx = s->next;
			int64_t due = s->last_send_ms + beat;
			if (due <= now) {
				unlink_waiting(f, s);
				MHD_resume_connection(s->conn);
			} else if (!next || due < next) {
				next = due;
			}
		}
		f->next_beat_ms = next;
	}
}

#define WATCH_TICK_MS 250 /* heartbeats are at most this late */

static void *watch_main(void *arg)
{
	struct hub *hub = arg;
	struct feed *f = hub->feed;
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(f->watch_ep, evs, 64, WATCH_TICK_MS);
		pthread_mutex_lock(&f->mu);
		if (f->stopping) {
			pthread_mutex_unlock(&f->mu);
			break;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == f->wake_fd) {
				uint64_t count;
				if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN)
					log_warn("feed: the watcher's wake-up: %s",
					         strerror(errno));
				/* Resumed outside the lock, in one burst: the loop's threads
				 * can serve the first while the rest are resumed. */
				size_t k = 0, cap = 0;
				struct MHD_Connection **conns = NULL;
				while (f->waiting) {
					struct sub *s = f->waiting;
					unlink_waiting(f, s);
					if (k == cap) {
						cap = cap ? cap * 2 : 256;
						conns = xrealloc(conns, cap * sizeof *conns);
					}
					conns[k++] =
					    s->conn; /* suspended: not freed until resumed */
				}
				f->next_beat_ms = 0;
				pthread_mutex_unlock(&f->mu);
				for (size_t j = 0; j < k; j++)
					MHD_resume_connection(conns[j]);
				free(conns);
				pthread_mutex_lock(&f->mu);
				continue;
			}
			struct sub *s = fd >= 0 && (size_t)fd < f->by_fd_len ? f->by_fd[fd] : NULL;
			if (s && s->waiting) {
				s->gone = true; /* its callback ends the stream */
				unlink_waiting(f, s);
				MHD_resume_connection(s->conn);
			}
		}
		resume_due(hub);
		pthread_mutex_unlock(&f->mu);
	}
	return NULL;
}

static void sub_free(void *cls)
{
	struct sub *s = cls;
	if (s->waiting) { /* not expected: MHD frees no suspended connection */
		pthread_mutex_lock(&s->hub->feed->mu);
		if (s->waiting)
			unlink_waiting(s->hub->feed, s);
		pthread_mutex_unlock(&s->hub->feed->mu);
	}
	if (s->counted)
		atomic_fetch_sub(&s->hub->feed->subscribers, 1);
	free(s->buf);
	free(s);
}

static void append_n(struct sub *s, const char *text, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->buf = xrealloc(s->buf, s->cap);
	}
	memcpy(s->buf + s->len, text, n);
	s->len += n;
}

static void append(struct sub *s, const char *text)
{
	append_n(s, text, strlen(text));
}

/* The payload members that name a path (file.moved has from and to,
 * host.policy a folder). Every path a change names is one of these. */
static const char *const path_keys[] = {"path", "from", "to", "folder"};

/* What of a change (at its time at) the subscriber may see: the payload
 * without the paths hidden from them (a move out of a hidden folder arrives
 * without its "from"), or NULL when it names paths and all are hidden.
 * Changes that name no path (members, workspace) go to every member. The
 * ACL is the one that held at the change's time, so a later delete does not
 * show a replay what was hidden then. New string. */
static char *visible_payload(const struct acl *a, const char *payload, const char *entity,
                             int64_t at)
{
	/* Nothing hidden from this caller: the payload as stored (the hub wrote
	 * it as a JSON object). Parsing each of a batch's 1,000 changes held up
	 * the feed daemon's thread, and the events queued behind them. */
	if (acl_reads_everything(a))
		return payload[0] == '{' ? xstrdup(payload) : NULL;
	json_t *p = json_loads(payload, 0, NULL);
	if (!json_is_object(p)) {
		json_decref(p);
		return NULL;
	}
	bool is_file = strcmp(entity, "file") == 0, any = false, seen = false, cut = false;
	for (size_t i = 0; i < sizeof path_keys / sizeof *path_keys; i++) {
		const char *v = json_string_value(json_object_get(p, path_keys[i]));
		if (!v)
			continue;
		any = true;
		if (acl_visible_at(a, v, is_file, at)) {
			seen = true;
		} else {
			json_object_del(p, path_keys[i]);
			cut = true;
		}
	}
	char *out = !any    ? xstrdup(payload)
	            : !seen ? NULL
	            : cut   ? json_to_string(p)
	                    : xstrdup(payload);
	json_decref(p);
	return out;
}

/* Read the next batch of changes into the buffer. Returns rows read (visible
 * or not: the position moves past both), 0 at the end, or -1 on an error or
 * when the subscriber is no longer a member. */
static int query(struct sub *s)
{
	struct db *db = db_pool_acquire(s->hub->pool);
	/* Access may have changed since the last batch: look again. */
	enum role role = auth_role(db, s->ws, s->user);
	struct acl *a = role != ROLE_NONE ? acl_load(db, s->ws, s->user, role) : NULL;
	if (!a) {
		db_pool_release(s->hub->pool, db);
		return -1;
	}
	struct db_stmt *st = db_query(db,
	                              "SELECT seq, kind, entity, payload, at FROM changes "
	                              "WHERE workspace_id = ? AND seq > ? ORDER BY seq LIMIT ?",
	                              s->ws, s->last_seq, (int64_t)FEED_BATCH);
	int rows = 0, r = DB_ERR;
	while (st && (r = db_step(st)) == DB_ROW) {
		int64_t seq = db_col_int64(st, 0);
		s->last_seq = seq;
		rows++;
		char *payload =
		    visible_payload(a, db_col_text(st, 3), db_col_text(st, 2), db_col_int64(st, 4));
		if (!payload)
			continue;
		char *ev = xasprintf("id: %lld\nevent: %s\ndata: {\"seq\":%lld,\"kind\":\"%s\","
		                     "\"entity\":\"%s\",\"at\":%lld,\"payload\":%s}\n\n",
		                     (long long)seq, db_col_text(st, 1), (long long)seq,
		                     db_col_text(st, 1), db_col_text(st, 2),
		                     (long long)db_col_int64(st, 4), payload);
		append(s, ev);
		free(ev);
		free(payload);
	}
	db_finalize(st);
	acl_free(a);
	db_pool_release(s->hub->pool, db);
	return r == DB_DONE ? rows : -1;
}

/* query() through the shared batch: the first subscriber of a workspace and
 * user at a position reads the batch, the others after the same commit copy
 * it (the same rows through the same ACL). A commit (a new generation) makes
 * it stale; a refusal is never shared. */
static int fetch(struct sub *s, uint64_t gen)
{
	struct feed *f = s->hub->feed;
	struct batch *b = &f->batch;
	/* Held over the query: a subscriber woken with others waits for the one
	 * query rather than making its own. */
	pthread_mutex_lock(&f->batch_mu);
	if (b->valid && b->gen == gen && b->ws == s->ws && b->user == s->user &&
	    b->from == s->last_seq) {
		if (b->len)
			append_n(s, b->text, b->len);
		s->last_seq = b->to;
		int rows = b->rows;
		pthread_mutex_unlock(&f->batch_mu);
		return rows;
	}
	int64_t from = s->last_seq;
	size_t start = s->len;
	int rows = query(s);
	b->valid = rows >= 0;
	if (b->valid) {
		b->ws = s->ws;
		b->user = s->user;
		b->from = from;
		b->to = s->last_seq;
		b->gen = gen;
		b->rows = rows;
		b->len = s->len - start;
		if (b->len > b->cap) {
			b->cap = b->len;
			b->text = xrealloc(b->text, b->cap);
		}
		if (b->len)
			memcpy(b->text, s->buf + start, b->len);
	}
	pthread_mutex_unlock(&f->batch_mu);
	return rows;
}

/* Subscribers that may see none of a run of changes skip this many batches per
 * callback, then send a comment, so one callback never reads without bound
 * (on the feed daemon it holds up every other subscriber). */
#define FEED_SKIP_BATCHES 4

/* Nothing to send: on the feed daemon, join the waiting list and suspend
 * (true); false if a commit came since gen (look again) or the feed stops. */
static bool suspend(struct sub *s, uint64_t gen)
{
	struct feed *f = s->hub->feed;
	pthread_mutex_lock(&f->mu);
	bool ok = f->generation == gen && !f->stopping;
	if (ok) {
		s->next = f->waiting;
		s->prev = NULL;
		if (f->waiting)
			f->waiting->prev = s;
		f->waiting = s;
		s->waiting = true;
		int64_t due = s->last_send_ms + s->hub->cfg.feed_heartbeat_ms;
		if (!f->next_beat_ms || due < f->next_beat_ms)
			f->next_beat_ms = due;
		watch(f, s);
		/* Under mu, so feed_notify's resume comes after it. */
		MHD_suspend_connection(s->conn);
	}
	pthread_mutex_unlock(&f->mu);
	return ok;
}

/* Block this connection's thread until a commit or the heartbeat is due. */
static void block(struct sub *s, uint64_t gen, int64_t wait)
{
	struct feed *f = s->hub->feed;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += wait / 1000;
	ts.tv_nsec += (wait % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&f->mu);
	while (f->generation == gen && !f->stopping &&
	       pthread_cond_timedwait(&f->changed, &f->mu, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&f->mu);
}

static ssize_t sub_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct sub *s = cls;
	struct feed *f = s->hub->feed;
	int64_t beat = s->hub->cfg.feed_heartbeat_ms;
	int skipped = 0;
	while (s->off == s->len) {
		s->off = s->len = 0;
		pthread_mutex_lock(&f->mu);
		uint64_t gen = f->generation;
		bool stop = f->stopping, gone = s->gone;
		pthread_mutex_unlock(&f->mu);
		if (stop)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (gone)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		/* No commit since the last empty fetch (a heartbeat's wake-up): no
		 * query. */
		if (!s->fetched || gen != s->fetched_gen) {
			int rows = fetch(s, gen);
			if (rows < 0)
				return MHD_CONTENT_READER_END_WITH_ERROR; /* the client reconnects
				                                           */
			if (s->len > 0)
				break;
			if (rows > 0) { /* a batch of changes this subscriber may not see */
				if (++skipped < FEED_SKIP_BATCHES)
					continue;
				append(s, ":\n\n");
				break;
			}
			s->fetched = true;
			s->fetched_gen = gen;
		}
		int64_t quiet = mono_ms() - s->last_send_ms;
		if (quiet >= beat) {
			append(s, ": heartbeat\n\n");
			break;
		}
		/* Wait for a commit (or the next heartbeat) without a db connection. */
		if (s->loop) {
			if (suspend(s, gen))
				return 0;
		} else {
			block(s, gen, beat - quiet);
		}
	}
	size_t n = s->len - s->off < max ? s->len - s->off : max;
	memcpy(out, s->buf + s->off, n);
	s->off += n;
	s->last_send_ms = mono_ms();
	return (ssize_t)n;
}

enum MHD_Result api_events(struct req *r)
{
	/* Resume from ?since=SEQ, else the standard Last-Event-ID, else now. */
	const char *since = req_arg(r, "since", NULL);
	const char *last_id = req_header(r, "Last-Event-ID");
	int64_t from = -1;
	if (since)
		from = strcmp(since, "0") == 0 ? 0 : parse_id(since);
	else if (last_id)
		from = strcmp(last_id, "0") == 0 ? 0 : parse_id(last_id);
	if ((since || last_id) && from < 0)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_since",
		                   "since must be a change sequence number (0 or more)");
	if (from < 0 &&
	    db_int64(r->db, &from, "SELECT last_seq FROM workspace_counters WHERE workspace_id = ?",
	             r->ws_id) != DB_ROW)
		return reply_db_error(r);
	db_pool_release(r->hub->pool, r->db);
	r->db = NULL;

	struct sub *s = xcalloc(1, sizeof *s);
	s->hub = r->hub;
	s->ws = r->ws_id;
	s->user = r->user_id;
	s->last_seq = from;
	s->last_send_ms = mono_ms();
	s->conn = r->conn;
	const union MHD_ConnectionInfo *fdi =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	s->fd = fdi ? fdi->connect_fd : -1;
	s->loop = feed_conn_looped(r->conn);
	s->counted = true;
	atomic_fetch_add(&r->hub->feed->subscribers, 1);
	/* Open the stream at once, so a client knows it is subscribed. */
	append(s, ": roost feed\nretry: 2000\n\n");
	/* On the feed daemon a small block: each subscriber's costs memory. */
	struct MHD_Response *resp = MHD_create_response_from_callback(
	    MHD_SIZE_UNKNOWN, s->loop ? FEED_LOOP_BLOCK : 8 * 1024, sub_read, s, sub_free);
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	enum MHD_Result ret = req_queue(r, MHD_HTTP_OK, resp);
	return ret;
}
