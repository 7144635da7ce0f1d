/* util: allocation that aborts on failure, time, logging, small string helpers. */
#ifndef ROOST_UTIL_H
#define ROOST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define ROOST_VERSION "0.1.0"

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* tmpl with its first "%s" replaced by arg (tmpl as it is if it holds none).
 * New string. For templates made at run time, which printf must not read:
 * any other '%' in them is kept as it is. */
char *str_subst(const char *tmpl, const char *arg);

/* Milliseconds since the Unix epoch (wall clock) and a monotonic clock. */
int64_t now_ms(void);
int64_t mono_ms(void);

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* libmicrohttpd's logger (MHD_OPTION_EXTERNAL_LOGGER): its lines (a client's
 * malformed request, a failed accept) as warnings, at most 20 every 10 s and
 * then a count of those left out, so a client sending garbage cannot fill the
 * disk with them. */
void log_http_server(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Write all of buf to fd, retrying on EINTR and short writes. 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
/* pread exactly len bytes (fewer only at EOF). Returns bytes read or -errno. */
ssize_t pread_full(int fd, void *buf, size_t len, int64_t off);
/* Buffers written with O_DIRECT are aligned to this. */
#define DIRECT_ALIGN 4096u
/* Write len bytes from buf (DIRECT_ALIGN-aligned) to fd, which may have been
 * opened with O_DIRECT (*direct true): the aligned part goes direct, an
 * unaligned tail buffered (O_DIRECT is then dropped from fd for good, so only
 * a final write may have a tail). Falls back to buffered writes if the
 * filesystem refuses O_DIRECT. 0 or -errno. */
int write_maybe_direct(int fd, bool *direct, const uint8_t *buf, size_t len);
/* fsync the directory holding path (so a rename in it is durable). 0 or -errno. */
int fsync_parent_dir(const char *path);
/* Write len bytes to path atomically with the given mode: a fresh temp file
 * beside it (mkostemp: 0600, never an old file's mode), fchmod to mode,
 * write, fsync, rename over path, fsync the directory. Nothing is visible at
 * path until it is whole, and never with a wider mode. 0 or -errno. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Open path (leading '/' skipped) beneath the directory dfd with openat2:
 * no "..", absolute path or /proc magic link can leave it, and the last
 * component is never followed if it is a symlink (O_NOFOLLOW). With
 * BENEATH_NO_SYMLINKS no symlink is followed anywhere on the way; without,
 * one is followed only while it stays beneath. mode applies with O_CREAT.
 * Always O_CLOEXEC. An fd, or -1 with errno set (EXDEV for an escape, ELOOP
 * for a refused symlink). */
enum { BENEATH_NO_SYMLINKS = 1 };
int openat_beneath(int dfd, const char *path, int flags, mode_t mode, unsigned opts);
/* mkdir -p with the given mode. 0 or -errno. */
int mkdir_p(const char *path, unsigned mode);

/* A positive decimal id in canonical form (digits only, no leading zero,
 * fits int64); -1 otherwise. */
int64_t parse_id(const char *s);
/* Read a whole (small) file into a new NUL-terminated buffer; NULL with errno
 * set if it cannot be read or is over max bytes. */
char *read_file(const char *path, size_t max, size_t *len);
/* "1.5 MiB" style; buf must hold 32 bytes. */
const char *human_bytes(int64_t n, char buf[32]);
/* Parse "7d", "12h", "30m", "45s" or plain seconds into seconds; -1 if bad. */
int64_t parse_duration(const char *s);
/* Write s to f with <, >, &, " and ' escaped: safe inside HTML or XML text
 * and quoted attributes. */
void markup_escape(FILE *f, const char *s);
/* Parse a byte count or rate: a number with an optional K, M, G or T (KiB,
 * MiB, GiB, TiB) suffix, which may be spelt out, e.g. "50M", "1.5K", "10GiB".
 * -1 if bad ("1KB" too: decimal or binary is anyone's guess). */
double parse_bytes(const char *s);

/* Parse a single HTTP "bytes=a-b" range against size: 0 no range (serve all),
 * 1 range set, -1 unsatisfiable. Multi-ranges are ignored (served whole). */
int http_parse_range(const char *h, int64_t size, int64_t *start, int64_t *len);

/* A Content-Length value: 1*DIGIT that fits int64; -1 if absent or not that. */
int64_t http_content_length(const char *s);

#endif
