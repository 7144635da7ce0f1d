#include "util.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void oom(void)
{
	fputs("roost: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		oom();
	return d;
}

char *xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (!d)
		oom();
	return d;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	return s;
}

char *str_subst(const char *tmpl, const char *arg)
{
	const char *at = strstr(tmpl, "%s");
	if (!at)
		return xstrdup(tmpl);
	size_t pre = (size_t)(at - tmpl), alen = strlen(arg), post = strlen(at + 2);
	char *s = xmalloc(pre + alen + post + 1);
	memcpy(s, tmpl, pre);
	memcpy(s + pre, arg, alen);
	memcpy(s + pre + alen, at + 2, post + 1);
	return s;
}

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum log_level min_level = LOG_INFO;

void log_set_level(enum log_level level)
{
	min_level = level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	if (level < min_level)
		return;
	char ts[32];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s %s %s\n", ts, names[level], line);
}

#define HTTP_LOG_LINES     20
#define HTTP_LOG_WINDOW_MS 10000

void log_http_server(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static int64_t window_at;
	static long lines, left_out;
	char line[1024];
	vsnprintf(line, sizeof line, fmt, ap);
	line[strcspn(line, "\n")] = 0;
	int64_t now = mono_ms();
	pthread_mutex_lock(&mu);
	long dropped = 0;
	if (now - window_at >= HTTP_LOG_WINDOW_MS) {
		dropped = left_out;
		window_at = now;
		lines = left_out = 0;
	}
	bool show = lines < HTTP_LOG_LINES;
	if (show)
		lines++;
	else
		left_out++;
	pthread_mutex_unlock(&mu);
	if (dropped)
		log_warn("http: %ld more lines like the ones above were left out", dropped);
	if (show)
		log_warn("http: %s", line);
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t pread_full(int fd, void *buf, size_t len, int64_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + (int64_t)got));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static void drop_direct(int fd, bool *direct)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_DIRECT);
	*direct = false;
}

int write_maybe_direct(int fd, bool *direct, const uint8_t *buf, size_t len)
{
	size_t aligned = *direct ? len & ~(size_t)(DIRECT_ALIGN - 1) : 0;
	if (aligned) {
		int r = write_all(fd, buf, aligned);
		if (r == -EINVAL) { /* the filesystem refused O_DIRECT after all */
			drop_direct(fd, direct);
			aligned = 0;
		} else if (r) {
			return r;
		}
	}
	if (len > aligned) {
		if (*direct)
			drop_direct(fd, direct);
		return write_all(fd, buf + aligned, len - aligned);
	}
	return 0;
}

int fsync_parent_dir(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = xasprintf("%s.tmp-XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC), r = 0;
	if (fd < 0) {
		r = -errno;
		free(tmp);
		return r;
	}
	if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0)
		r = -errno;
	if (close(fd) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) != 0)
		r = -errno;
	if (r != 0)
		unlink(tmp);
	else
		fsync_parent_dir(path);
	free(tmp);
	return r;
}

int openat_beneath(int dfd, const char *path, int flags, mode_t mode, unsigned opts)
{
	while (*path == '/')
		path++;
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
	                       .mode = (flags & O_CREAT) ? mode : 0,
	                       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
	if (opts & BENEATH_NO_SYMLINKS)
		how.resolve |= RESOLVE_NO_SYMLINKS;
	return (int)syscall(SYS_openat2, dfd, path, &how, sizeof how);
}

int mkdir_p(const char *path, unsigned mode)
{
	char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			int e = errno;
			free(p);
			return -e;
		}
		*s = '/';
	}
	int r = (mkdir(p, mode) < 0 && errno != EEXIST) ? -errno : 0;
	free(p);
	return r;
}

const char *human_bytes(int64_t n, char buf[32])
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, 32, "%lld B", (long long)n);
	else
		snprintf(buf, 32, "%.1f %s", v, units[u]);
	return buf;
}

int64_t parse_duration(const char *s)
{
	char *end;
	if (!s || !*s)
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || v < 0 || end == s)
		return -1;
	int64_t mul = 1;
	if (*end) {
		switch (*end) {
		case 's':
			mul = 1;
			break;
		case 'm':
			mul = 60;
			break;
		case 'h':
			mul = 3600;
			break;
		case 'd':
			mul = 86400;
			break;
		case 'w':
			mul = 7 * 86400;
			break;
		default:
			return -1;
		}
		if (end[1])
			return -1;
	}
	if (v > INT64_MAX / mul)
		return -1;
	return v * mul;
}

int64_t parse_id(const char *s)
{
	if (!s || !*s || *s == '0' || strlen(s) > 18)
		return -1;
	int64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v;
}

char *read_file(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > max) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	char *buf = xmalloc((size_t)st.st_size + 1);
	ssize_t n = pread_full(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (n < 0) {
		free(buf);
		errno = (int)-n;
		return NULL;
	}
	buf[n] = 0;
	if (len)
		*len = (size_t)n;
	return buf;
}

/* 1*DIGIT at *p into *v (saturating at INT64_MAX), advancing *p; false if
 * there is no digit. strtoll would also take a sign and leading spaces. */
static bool range_digits(const char **p, int64_t *v)
{
	const char *s = *p;
	int64_t n = 0;
	for (; *s >= '0' && *s <= '9'; s++)
		n = n > (INT64_MAX - 9) / 10 ? INT64_MAX : n * 10 + (*s - '0');
	if (s == *p)
		return false;
	*p = s;
	*v = n;
	return true;
}

/* Parse a single "bytes=a-b" range against size (RFC 9110 §14.1.2). 0 no range
 * (serve all: absent, malformed or several ranges), 1 range set, -1
 * unsatisfiable. */
int http_parse_range(const char *h, int64_t size, int64_t *start, int64_t *len)
{
	if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 0;
	const char *p = h + 6;
	int64_t a = 0, b = INT64_MAX;
	if (*p == '-') { /* the last N bytes */
		p++;
		if (!range_digits(&p, &b) || *p)
			return 0;
		if (b == 0 || size == 0)
			return -1;
		*len = b < size ? b : size;
		*start = size - *len;
		return 1;
	}
	if (!range_digits(&p, &a) || *p++ != '-' || (*p && (!range_digits(&p, &b) || *p)) || b < a)
		return 0;
	if (a >= size)
		return -1;
	if (b >= size)
		b = size - 1;
	*start = a;
	*len = b - a + 1;
	return 1;
}

int64_t http_content_length(const char *s)
{
	int64_t v = 0;
	if (!s || !range_digits(&s, &v) || *s || v == INT64_MAX)
		return -1;
	return v;
}

double parse_bytes(const char *s)
{
	char *end;
	if (!s || !*s)
		return -1;
	double v = strtod(s, &end);
	if (end == s) /* no number: a suffix alone ("K") is not 0 */
		return -1;
	double mul = *end == 'K'   ? 1024.0
	             : *end == 'M' ? 1048576.0
	             : *end == 'G' ? 1073741824.0
	             : *end == 'T' ? 1099511627776.0
	                           : 1;
	if (mul > 1)
		end++;
	if (mul > 1 && strcmp(end, "iB") == 0) /* "10GiB" */
		end += 2;
	if (*end || !(v >= 0) || isinf(v * mul)) /* "1e308G" is finite until the suffix */
		return -1;
	return v * mul;
}

void markup_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}
