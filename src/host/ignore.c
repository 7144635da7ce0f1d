/* ignore: .roostignore patterns (ignore.h). */
#include "ignore.h"
#include "../core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECHECK_MS 1000 /* .roostignore is looked at again at most this often */

struct pattern {
	char *glob;    /* without '!', the leading '/' and the trailing '/' */
	bool negate;   /* '!': re-include */
	bool dir_only; /* trailing '/' */
	bool anchored; /* a '/' at the start or inside: matched from the root */
};

struct ignore {
	struct pattern *p;
	size_t n;
};

/* ---- matching ---- */

/* A bracket expression at p ('[' ... ']') against c: 1 match, 0 no match,
 * -1 not a bracket expression (no closing ']': '[' is then literal). *end is
 * set past the ']'. */
static int bracket(const char *p, char c, const char **end)
{
	const char *q = p + 1;
	bool neg = *q == '!' || *q == '^';
	if (neg)
		q++;
	bool hit = false, first = true;
	while (*q && (*q != ']' || first)) {
		first = false;
		char lo = *q;
		if (lo == '\\' && q[1])
			lo = *++q;
		char hi = lo;
		if (q[1] == '-' && q[2] && q[2] != ']') {
			hi = q[2];
			if (hi == '\\' && q[3])
				hi = q[3], q++;
			q += 2;
		}
		if (c >= lo && c <= hi)
			hit = true;
		q++;
	}
	if (*q != ']')
		return -1;
	*end = q + 1;
	return c != '/' && hit != neg;
}

/* gitignore's glob: '*' and '?' stop at '/', "**" spans folders. The depth
 * of the recursion is bounded by the pattern's stars (patterns are short). */
static bool glob(const char *start, const char *p, const char *s)
{
	for (; *p; p++, s++) {
		if (p[0] == '*' && p[1] == '*' && (p == start || p[-1] == '/') &&
		    (p[2] == '/' || p[2] == 0)) {
			if (p[2] == 0)
				return true; /* a trailing double star: everything below */
			/* a double star and a slash: zero or more folders */
			for (const char *t = s;; t++) {
				if ((t == s || t[-1] == '/') && glob(start, p + 3, t))
					return true;
				if (!*t)
					return false;
			}
		}
		if (*p == '*') {
			while (p[1] == '*')
				p++;
			for (const char *t = s;; t++) {
				if (glob(start, p + 1, t))
					return true;
				if (!*t || *t == '/')
					return false;
			}
		}
		if (!*s)
			return false;
		if (*p == '?') {
			if (*s == '/')
				return false;
		} else if (*p == '[') {
			const char *end;
			int m = bracket(p, *s, &end);
			if (m == 0)
				return false;
			if (m == 1) {
				p = end - 1;
				continue;
			}
			if (*s != '[')
				return false;
		} else {
			if (*p == '\\' && p[1])
				p++;
			if (*p != *s)
				return false;
		}
	}
	return *s == 0;
}

/* The verdict of the last pattern matching rel ("a/b", no leading '/'):
 * 1 ignored, 0 re-included, -1 none matched. */
static int verdict(const struct ignore *ig, const char *rel, bool dir)
{
	const char *base = strrchr(rel, '/');
	base = base ? base + 1 : rel;
	for (size_t i = ig->n; i-- > 0;) {
		const struct pattern *pt = &ig->p[i];
		if (pt->dir_only && !dir)
			continue;
		if (glob(pt->glob, pt->glob, pt->anchored ? rel : base))
			return pt->negate ? 0 : 1;
	}
	return -1;
}

bool ignore_match(const struct ignore *ig, const char *path, bool dir)
{
	if (!ig || !ig->n || !path)
		return false;
	while (*path == '/')
		path++;
	if (!*path)
		return false;
	size_t len = strlen(path);
	char *rel = xstrndup(path, len);
	bool ignored = false;
	/* Each parent folder first: nothing in an ignored folder comes back. */
	for (size_t i = 0; i <= len && !ignored; i++) {
		if (rel[i] != '/' && rel[i] != 0)
			continue;
		char saved = rel[i];
		rel[i] = 0;
		ignored = verdict(ig, rel, saved == '/' || dir) == 1;
		rel[i] = saved;
	}
	free(rel);
	return ignored;
}

/* ---- parsing ---- */

static void add_line(struct ignore *ig, char *line)
{
	size_t n = strlen(line);
	/* Trailing spaces go unless quoted with '\'. */
	while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r') &&
	       !(n >= 2 && line[n - 2] == '\\'))
		line[--n] = 0;
	if (!n || line[0] == '#' || ig->n >= IGNORE_PATTERNS_MAX)
		return;
	struct pattern pt = {0};
	char *p = line;
	if (*p == '!') {
		pt.negate = true;
		p++;
	} else if (*p == '\\' && (p[1] == '!' || p[1] == '#')) {
		p++;
	}
	n = strlen(p);
	if (n && p[n - 1] == '/') {
		pt.dir_only = true;
		p[--n] = 0;
	}
	if (*p == '/') {
		pt.anchored = true;
		while (*p == '/')
			p++;
	}
	if (!*p)
		return;
	if (strchr(p, '/'))
		pt.anchored = true;
	pt.glob = xstrdup(p);
	ig->p = xrealloc(ig->p, (ig->n + 1) * sizeof *ig->p);
	ig->p[ig->n++] = pt;
}

struct ignore *ignore_parse(const char *text, size_t len)
{
	struct ignore *ig = xcalloc(1, sizeof *ig);
	if (len > IGNORE_FILE_MAX)
		len = IGNORE_FILE_MAX;
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && text[j] != '\n')
			j++;
		char *line = xstrndup(text + i, j - i);
		if (!memchr(text + i, 0, j - i))
			add_line(ig, line);
		free(line);
		i = j + 1;
	}
	return ig;
}

size_t ignore_count(const struct ignore *ig)
{
	return ig ? ig->n : 0;
}

void ignore_free(struct ignore *ig)
{
	if (!ig)
		return;
	for (size_t i = 0; i < ig->n; i++)
		free(ig->p[i].glob);
	free(ig->p);
	free(ig);
}

/* ---- the folder's set ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct ignore *current;
static char *root, *file;
static struct stat seen; /* the file as last loaded (st_ino 0: absent) */
static int64_t checked_ms;
static bool pending; /* changed since host_ignore_refresh last said so */

/* Under mu: the file again if it changed since it was loaded. True if the set changed. */
static bool reload(void)
{
	struct stat st;
	memset(&st, 0, sizeof st);
	if (stat(file, &st) != 0 || !S_ISREG(st.st_mode))
		memset(&st, 0, sizeof st);
	if (current && st.st_ino == seen.st_ino && st.st_size == seen.st_size &&
	    st.st_mtim.tv_sec == seen.st_mtim.tv_sec && st.st_mtim.tv_nsec == seen.st_mtim.tv_nsec)
		return false;
	char *text = xmalloc(IGNORE_FILE_MAX);
	ssize_t n = 0;
	int fd = st.st_ino ? open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	if (fd >= 0) {
		n = pread_full(fd, text, IGNORE_FILE_MAX, 0);
		close(fd);
	}
	struct ignore *ig = ignore_parse(text, n > 0 ? (size_t)n : 0);
	free(text);
	bool had = current != NULL;
	ignore_free(current);
	current = ig;
	seen = st;
	if (had || ig->n)
		log_info("%s: %zu pattern%s", IGNORE_FILE, ig->n, ig->n == 1 ? "" : "s");
	pending |= had;
	return had;
}

void host_ignore_init(const char *dir)
{
	pthread_mutex_lock(&mu);
	free(root);
	free(file);
	root = xstrdup(dir);
	file = xasprintf("%s/%s", dir, IGNORE_FILE);
	ignore_free(current);
	current = NULL;
	reload();
	checked_ms = mono_ms();
	pthread_mutex_unlock(&mu);
}

void host_ignore_fini(void)
{
	pthread_mutex_lock(&mu);
	ignore_free(current);
	current = NULL;
	free(root);
	free(file);
	root = file = NULL;
	pthread_mutex_unlock(&mu);
}

bool host_ignore_path(const char *path)
{
	pthread_mutex_lock(&mu);
	if (!current) {
		pthread_mutex_unlock(&mu);
		return false;
	}
	int64_t now = mono_ms();
	if (now - checked_ms >= RECHECK_MS) {
		checked_ms = now;
		reload();
	}
	bool ignored = false;
	if (current->n) {
		char *local = xasprintf("%s%s", root, path);
		struct stat st;
		bool dir = lstat(local, &st) == 0 && S_ISDIR(st.st_mode);
		free(local);
		ignored = ignore_match(current, path, dir);
	}
	pthread_mutex_unlock(&mu);
	return ignored;
}

bool host_ignore_refresh(void)
{
	pthread_mutex_lock(&mu);
	if (current) {
		checked_ms = mono_ms();
		reload();
	}
	bool changed = pending;
	pending = false;
	pthread_mutex_unlock(&mu);
	return changed;
}
