/* watch: inotify over the whole folder, recursively, turned into work for the
 * sync thread: dirty paths (with a settle delay) and moves.
 *
 * Every directory gets a watch; a directory created or moved in later gets
 * them too (and is marked dirty, so the sync thread looks inside: files made
 * before its watch existed are not missed). A rename inside the tree arrives
 * as IN_MOVED_FROM + IN_MOVED_TO with one cookie and becomes one move; half a
 * pair is a delete (moved out) or a new path (moved in). An event-queue
 * overflow asks for a rescan. */
#include "host.h"
#include "../core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#define WATCH_MASK                                                                                 \
	(IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM |          \
	 IN_MOVED_TO | IN_DELETE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)

struct watcher {
	struct host *h;
	int fd;
	int stop_pipe[2];
	pthread_t th;
	char **paths; /* by watch descriptor: the workspace path of the directory */
	int npaths;
};

static void set_path(struct watcher *w, int wd, const char *path)
{
	if (wd >= w->npaths) {
		int n = wd * 2 + 16;
		w->paths = xrealloc(w->paths, (size_t)n * sizeof *w->paths);
		memset(w->paths + w->npaths, 0, (size_t)(n - w->npaths) * sizeof *w->paths);
		w->npaths = n;
	}
	free(w->paths[wd]);
	w->paths[wd] = path ? xstrdup(path) : NULL;
}

/* Watch the directory at workspace path and every directory below it. With
 * late set (a directory that appeared while we ran), each subdirectory found
 * is marked dirty too: files made in it before its watch existed sent no
 * event, and the sync thread may have looked inside before they were made
 * (a scan that also put it in the index, so its parent's look skips it). */
static void add_tree(struct watcher *w, const char *path, bool late)
{
	if (host_ignored(path))
		return;
	char *local = host_local(w->h, path);
	int wd = inotify_add_watch(w->fd, local, WATCH_MASK);
	if (wd < 0) {
		if (errno == ENOSPC)
			log_warn("watch: out of inotify watches (fs.inotify.max_user_watches); "
			         "changes under %s are found by the periodic rescan",
			         path);
		free(local);
		return;
	}
	set_path(w, wd, path);
	DIR *d = opendir(local);
	free(local);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		char *sub = strcmp(path, "/") == 0 ? xasprintf("/%s", de->d_name)
		                                   : xasprintf("%s/%s", path, de->d_name);
		add_tree(w, sub, late);
		if (late)
			host_mark_dirty(w->h, sub, SETTLE_CLOSED_MS);
		free(sub);
	}
	if (d)
		closedir(d);
}

/* A directory moved from 'from' to 'to' keeps its watches: rename their paths. */
static void rename_watches(struct watcher *w, const char *from, const char *to)
{
	size_t n = strlen(from);
	for (int i = 0; i < w->npaths; i++) {
		char *p = w->paths[i];
		if (!p || strncmp(p, from, n) != 0 || (p[n] && p[n] != '/'))
			continue;
		char *np = xasprintf("%s%s", to, p + n);
		free(w->paths[i]);
		w->paths[i] = np;
	}
}

static void drop_watches(struct watcher *w, const char *from)
{
	size_t n = strlen(from);
	for (int i = 0; i < w->npaths; i++) {
		char *p = w->paths[i];
		if (p && strncmp(p, from, n) == 0 && (!p[n] || p[n] == '/')) {
			inotify_rm_watch(w->fd, i);
			free(w->paths[i]);
			w->paths[i] = NULL;
		}
	}
}

static char *event_path(struct watcher *w, const struct inotify_event *ev)
{
	if (ev->wd < 0 || ev->wd >= w->npaths || !w->paths[ev->wd])
		return NULL;
	const char *dir = w->paths[ev->wd];
	if (!ev->len)
		return xstrdup(dir);
	return strcmp(dir, "/") == 0 ? xasprintf("/%s", ev->name)
	                             : xasprintf("%s/%s", dir, ev->name);
}

static void handle_batch(struct watcher *w, char *buf, ssize_t len)
{
	/* An IN_MOVED_FROM waiting for its IN_MOVED_TO (the kernel queues them
	 * back to back, so within one read). */
	char *from = NULL;
	uint32_t cookie = 0;
	bool from_dir = false;
	for (char *p = buf; p < buf + len;) {
		const struct inotify_event *ev = (const struct inotify_event *)p;
		p += sizeof *ev + ev->len;
		if (ev->mask & IN_Q_OVERFLOW) {
			log_warn("watch: event queue overflowed; rescanning the folder");
			pthread_mutex_lock(&w->h->mu);
			w->h->rescan = true;
			pthread_mutex_unlock(&w->h->mu);
			host_wake(w->h);
			continue;
		}
		if (ev->mask & IN_IGNORED) {
			if (ev->wd >= 0 && ev->wd < w->npaths)
				set_path(w, ev->wd, NULL);
			continue;
		}
		char *path = event_path(w, ev);
		if (!path)
			continue;
		if (host_ignored(path) || (ev->mask & IN_DELETE_SELF)) {
			free(path);
			continue;
		}
		bool isdir = ev->mask & IN_ISDIR;
		if (from && !((ev->mask & IN_MOVED_TO) && ev->cookie == cookie)) {
			/* moved out of the folder: gone */
			if (from_dir)
				drop_watches(w, from);
			host_mark_dirty(w->h, from, SETTLE_CLOSED_MS);
			free(from);
			from = NULL;
		}
		if (ev->mask & IN_MOVED_FROM) {
			from = path;
			cookie = ev->cookie;
			from_dir = isdir;
			continue;
		}
		if (ev->mask & IN_MOVED_TO) {
			if (from) {
				if (isdir)
					rename_watches(w, from, path);
				host_queue_move(w->h, from, path);
				free(from);
				from = NULL;
			} else {
				if (isdir)
					add_tree(w, path, true);
				host_mark_dirty(w->h, path, SETTLE_CLOSED_MS);
			}
			free(path);
			continue;
		}
		if ((ev->mask & IN_CREATE) && isdir)
			add_tree(w, path, true);
		int64_t delay = (ev->mask & (IN_MODIFY | IN_ATTRIB)) && !isdir ? SETTLE_MODIFIED_MS
		                                                               : SETTLE_CLOSED_MS;
		/* A new empty file (touch) closes at once; a file being written
		 * gets IN_MODIFY until its IN_CLOSE_WRITE. */
		if ((ev->mask & IN_CREATE) && !isdir)
			delay = SETTLE_MODIFIED_MS;
		host_mark_dirty(w->h, path, delay);
		free(path);
	}
	if (from) {
		if (from_dir)
			drop_watches(w, from);
		host_mark_dirty(w->h, from, SETTLE_CLOSED_MS);
		free(from);
	}
}

static void *watch_main(void *arg)
{
	struct watcher *w = arg;
	/* Big enough for a burst; aligned for struct inotify_event. */
	static _Alignas(struct inotify_event) char buf[256 * 1024];
	struct pollfd pf[2] = {{.fd = w->fd, .events = POLLIN},
	                       {.fd = w->stop_pipe[0], .events = POLLIN}};
	for (;;) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[1].revents)
			break;
		ssize_t n = read(w->fd, buf, sizeof buf);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			log_error("watch: read: %s", strerror(errno));
			break;
		}
		handle_batch(w, buf, n);
	}
	return NULL;
}

struct watcher *watcher_start(struct host *h)
{
	struct watcher *w = xcalloc(1, sizeof *w);
	w->h = h;
	w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (w->fd < 0 || pipe2(w->stop_pipe, O_CLOEXEC) != 0) {
		log_error("watch: inotify: %s", strerror(errno));
		free(w);
		return NULL;
	}
	add_tree(w, "/", false); /* the first rescan looks at everything after */
	if (pthread_create(&w->th, NULL, watch_main, w) != 0)
		abort();
	return w;
}

void watcher_stop(struct watcher *w)
{
	if (!w)
		return;
	if (write(w->stop_pipe[1], "x", 1) < 0)
		log_warn("watch: stop: %s", strerror(errno));
	pthread_join(w->th, NULL);
	close(w->fd);
	close(w->stop_pipe[0]);
	close(w->stop_pipe[1]);
	for (int i = 0; i < w->npaths; i++)
		free(w->paths[i]);
	free(w->paths);
	free(w);
}
