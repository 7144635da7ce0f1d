/* iofault: an LD_PRELOAD shim that makes file system calls fail, for the
 * I/O-error tests (tests/integration/test_io_faults.py; docs/reliability.md).
 * Test-only: never installed.
 *
 * A fault is one line of words, from the environment (ROOST_FAULT) or from a
 * control file (ROOST_FAULT_CTL, read again whenever it is replaced, so a
 * test switches faults on and off in a running process):
 *
 *   calls=write,fsync errno=EIO after=3 times=1 path=/objects/
 *
 * calls: write pwrite fsync fdatasync rename renameat open creat (open and
 * openat with O_CREAT); errno: EIO or ENOSPC (or a number); after: the Nth
 * matching call is the first to fail (1); times: how many fail, 0 for all
 * (0); path: a substring of the file's path (an fd's is its /proc/self/fd
 * link, read once per fd and cached until close). "off" or an empty or
 * missing control file is no fault. Each fault injected is a line in
 * ROOST_FAULT_LOG, if set.
 *
 * Every call goes to the kernel by syscall(2), not through libc (no dlsym,
 * no locks): the shim is async-signal-safe and any thread may call it. The
 * fault is read under a seqlock and the control file reloaded by whichever
 * thread wins a flag; the others use the fault they see. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum {
	C_WRITE = 1 << 0,
	C_PWRITE = 1 << 1,
	C_FSYNC = 1 << 2,
	C_FDATASYNC = 1 << 3,
	C_RENAME = 1 << 4,
	C_RENAMEAT = 1 << 5,
	C_OPEN = 1 << 6,
	C_CREAT = 1 << 7,
};

struct fault {
	unsigned calls;
	int err;
	long after, times;
	char path[200];
};

static struct fault cur;    /* under seq */
static atomic_uint seq;     /* odd while cur is being written */
static atomic_long matched; /* matching calls since the fault was set */
static atomic_flag reloading = ATOMIC_FLAG_INIT;
static struct stat ctl_seen; /* the control file last read (under reloading) */
static bool ctl_loaded;

#define MAX_FD 4096
static struct {
	atomic_int state; /* 0 unknown, 1 being written, 2 path holds the fd's path */
	dev_t dev;
	ino_t ino;
	char path[256];
} fds[MAX_FD];

static long sys_ret(long r)
{
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

#define SYS(...) sys_ret(syscall(__VA_ARGS__))

static const char *env(const char *name)
{
	extern char **environ;
	size_t n = strlen(name);
	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

static bool word_is(const char *w, size_t n, const char *s)
{
	return strlen(s) == n && memcmp(w, s, n) == 0;
}

static unsigned call_bit(const char *w, size_t n)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {{"write", C_WRITE},         {"pwrite", C_PWRITE}, {"fsync", C_FSYNC},
	             {"fdatasync", C_FDATASYNC}, {"rename", C_RENAME}, {"renameat", C_RENAMEAT},
	             {"open", C_OPEN},           {"creat", C_CREAT}};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (word_is(w, n, names[i].name))
			return names[i].bit;
	return 0;
}

static long number(const char *s, size_t n)
{
	long v = 0;
	for (size_t i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* One fault line into *f (no fault when it names no call). */
static void parse(const char *s, size_t len, struct fault *f)
{
	memset(f, 0, sizeof *f);
	f->err = EIO;
	f->after = 1;
	const char *end = s + len;
	while (s < end) {
		while (s < end && (*s == ' ' || *s == '\t' || *s == '\n'))
			s++;
		const char *w = s;
		while (s < end && *s != ' ' && *s != '\t' && *s != '\n')
			s++;
		const char *eq = memchr(w, '=', (size_t)(s - w));
		if (!eq)
			continue;
		const char *v = eq + 1;
		size_t k = (size_t)(eq - w), n = (size_t)(s - v);
		if (word_is(w, k, "calls")) {
			for (const char *c = v; c < s;) {
				const char *comma = memchr(c, ',', (size_t)(s - c));
				const char *ce = comma ? comma : s;
				f->calls |= call_bit(c, (size_t)(ce - c));
				c = ce + 1;
			}
		} else if (word_is(w, k, "errno")) {
			f->err = word_is(v, n, "ENOSPC")   ? ENOSPC
			         : word_is(v, n, "EIO")    ? EIO
			         : word_is(v, n, "EDQUOT") ? EDQUOT
			                                   : (int)number(v, n);
		} else if (word_is(w, k, "after")) {
			f->after = number(v, n);
		} else if (word_is(w, k, "times")) {
			f->times = number(v, n);
		} else if (word_is(w, k, "path") && n < sizeof f->path) {
			memcpy(f->path, v, n);
			f->path[n] = '\0';
		}
	}
}

static void publish(const struct fault *f)
{
	atomic_fetch_add(&seq, 1);
	memcpy(&cur, f, sizeof cur);
	atomic_store(&matched, 0);
	atomic_fetch_add(&seq, 1);
}

/* Read the control file again if it was replaced or changed since. */
static void reload(void)
{
	const char *ctl = env("ROOST_FAULT_CTL");
	if (!ctl || atomic_flag_test_and_set(&reloading))
		return;
	struct stat st;
	int saved = errno;
	if (SYS(SYS_newfstatat, AT_FDCWD, ctl, &st, 0) != 0) {
		if (ctl_loaded) { /* removed: no fault */
			struct fault none = {0};
			publish(&none);
			ctl_loaded = false;
		}
	} else if (!ctl_loaded || st.st_ino != ctl_seen.st_ino ||
	           st.st_mtim.tv_nsec != ctl_seen.st_mtim.tv_nsec ||
	           st.st_mtim.tv_sec != ctl_seen.st_mtim.tv_sec || st.st_size != ctl_seen.st_size) {
		char buf[512];
		long n = -1;
		long fd = SYS(SYS_openat, AT_FDCWD, ctl, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			n = SYS(SYS_read, fd, buf, sizeof buf);
			SYS(SYS_close, fd);
		}
		if (n >= 0) {
			struct fault f;
			parse(buf, (size_t)n, &f);
			publish(&f);
			ctl_seen = st;
			ctl_loaded = true;
		}
	}
	errno = saved;
	atomic_flag_clear(&reloading);
}

static void snapshot(struct fault *f)
{
	reload();
	for (;;) {
		unsigned s = atomic_load(&seq);
		if (s & 1)
			continue;
		memcpy(f, &cur, sizeof *f);
		if (atomic_load(&seq) == s)
			return;
	}
}

/* fd's path: its /proc/self/fd link, cached per fd with the file's identity
 * (a close inside libc, as fclose's, passes by close() below: the identity
 * tells a reused number). */
static const char *fd_path(int fd, char *tmp, size_t cap)
{
	char link[40] = "/proc/self/fd/";
	char num[16];
	int i = 0;
	unsigned v = (unsigned)fd;
	do
		num[i++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	size_t l = strlen(link);
	while (i > 0)
		link[l++] = num[--i];
	link[l] = '\0';
	struct stat st;
	if (SYS(SYS_fstat, fd, &st) != 0)
		return "";
	if (fd >= 0 && fd < MAX_FD && atomic_load(&fds[fd].state) == 2 &&
	    fds[fd].dev == st.st_dev && fds[fd].ino == st.st_ino) {
		size_t k = strnlen(fds[fd].path, cap - 1);
		memcpy(tmp, fds[fd].path, k);
		tmp[k] = '\0';
		if (atomic_load(&fds[fd].state) == 2) /* not rewritten meanwhile */
			return tmp;
	}
	long n = SYS(SYS_readlinkat, AT_FDCWD, link, tmp, cap - 1);
	tmp[n > 0 ? n : 0] = '\0';
	if (fd >= MAX_FD)
		return tmp;
	int want = atomic_load(&fds[fd].state);
	if (want != 1 && atomic_compare_exchange_strong(&fds[fd].state, &want, 1)) {
		memcpy(fds[fd].path, tmp, sizeof fds[fd].path < cap ? sizeof fds[fd].path : cap);
		fds[fd].path[sizeof fds[fd].path - 1] = '\0';
		fds[fd].dev = st.st_dev;
		fds[fd].ino = st.st_ino;
		atomic_store(&fds[fd].state, 2);
	}
	return tmp;
}

static void forget_fd(long fd)
{
	if (fd >= 0 && fd < MAX_FD)
		atomic_store(&fds[fd].state, 0);
}

static void log_fault(const char *call, const char *path, int err)
{
	const char *log = env("ROOST_FAULT_LOG");
	if (!log)
		return;
	char line[400];
	size_t n = 0;
	const char *parts[] = {call, " ", err == ENOSPC ? "ENOSPC" : "EIO", " ", path, "\n"};
	for (size_t i = 0; i < 6; i++) {
		size_t l = strlen(parts[i]);
		if (n + l >= sizeof line)
			l = sizeof line - n - 1;
		memcpy(line + n, parts[i], l);
		n += l;
	}
	int saved = errno;
	long fd = SYS(SYS_openat, AT_FDCWD, log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		SYS(SYS_write, fd, line, n);
		SYS(SYS_close, fd);
	}
	errno = saved;
}

/* Whether this call fails: the errno to fail with, or 0. path, if not NULL,
 * is matched; else fd's path (path2: a second path, as rename's target). */
static int should_fail(unsigned bit, const char *call, int fd, const char *path, const char *path2)
{
	struct fault f;
	snapshot(&f);
	if (!(f.calls & bit))
		return 0;
	char tmp[256];
	const char *p = path ? path : fd_path(fd, tmp, sizeof tmp);
	if (f.path[0] && !strstr(p, f.path) && !(path2 && strstr(path2, f.path)))
		return 0;
	long n = atomic_fetch_add(&matched, 1) + 1;
	if (n < f.after || (f.times > 0 && n >= f.after + f.times))
		return 0;
	log_fault(call, p, f.err);
	return f.err;
}

#define FAIL_IF(bit, call, fd, path, path2)                                                        \
	do {                                                                                       \
		int e_ = should_fail(bit, call, fd, path, path2);                                  \
		if (e_) {                                                                          \
			errno = e_;                                                                \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

ssize_t write(int fd, const void *buf, size_t n)
{
	FAIL_IF(C_WRITE, "write", fd, NULL, NULL);
	return SYS(SYS_write, fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	FAIL_IF(C_PWRITE, "pwrite", fd, NULL, NULL);
	return SYS(SYS_pwrite64, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

int fsync(int fd)
{
	FAIL_IF(C_FSYNC, "fsync", fd, NULL, NULL);
	return (int)SYS(SYS_fsync, fd);
}

int fdatasync(int fd)
{
	FAIL_IF(C_FDATASYNC, "fdatasync", fd, NULL, NULL);
	return (int)SYS(SYS_fdatasync, fd);
}

int rename(const char *from, const char *to)
{
	FAIL_IF(C_RENAME, "rename", -1, from, to);
	return (int)SYS(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 0);
}

int renameat(int dfrom, const char *from, int dto, const char *to)
{
	FAIL_IF(C_RENAMEAT, "renameat", -1, from, to);
	return (int)SYS(SYS_renameat2, dfrom, from, dto, to, 0);
}

int renameat2(int dfrom, const char *from, int dto, const char *to, unsigned flags)
{
	FAIL_IF(C_RENAMEAT, "renameat", -1, from, to);
	return (int)SYS(SYS_renameat2, dfrom, from, dto, to, flags);
}

static int do_openat(int dir, const char *path, int flags, mode_t mode)
{
	if (flags & O_CREAT)
		FAIL_IF(C_CREAT, "creat", -1, path, NULL);
	FAIL_IF(C_OPEN, "open", -1, path, NULL);
	long fd = SYS(SYS_openat, dir, path, flags, mode);
	forget_fd(fd);
	return (int)fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(AT_FDCWD, path, flags, mode);
}

int openat(int dir, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(dir, path, flags, mode);
}

int openat64(int dir, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return do_openat(dir, path, flags, mode);
}

int close(int fd)
{
	forget_fd(fd);
	return (int)SYS(SYS_close, fd);
}

__attribute__((constructor)) static void iofault_init(void)
{
	const char *spec = env("ROOST_FAULT");
	if (spec) {
		struct fault f;
		parse(spec, strlen(spec), &f);
		publish(&f);
	}
}
