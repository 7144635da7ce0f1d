/* store_s3: the chunk store's S3-compatible back end (store.h says what it
 * promises). Objects are PREFIX/ab/<sha256> in one bucket; libcurl signs every
 * request (CURLOPT_AWS_SIGV4) and keeps connections open in a small pool of
 * easy handles shared by the hub's threads. A request that meets a 5xx, a 429
 * or a network failure is tried again with a growing delay (retry.h).
 *
 * Writes are hashed as they arrive and spooled to an unlinked temp file under
 * DATA/spool (a chunk is never held in memory twice), then PUT whole with
 * Content-Length and x-amz-content-sha256 set to the hash: the server checks
 * the bytes against the object's name. A corrupt object found by a reader or
 * scrub is copied to PREFIX/quarantine/<hash>.<ms> and deleted, so that the
 * next upload of that chunk writes a good copy. */
#include "store_impl.h"
#include "retry.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX     16
#define TRIES        5
#define LIST_CAP     (8u << 20) /* one ListObjectsV2 page: 1000 keys is ~300 KiB */
#define ERRBODY_CAP  4096       /* an error answer's XML kept for its <Code> */
#define DELETE_BATCH 1000       /* S3's limit per DeleteObjects */
#define SPOOL_BUF    (64u << 10)

struct s3_store {
	struct store base;
	struct s3_conf c;
	char *spool;
	char *sigv4;    /* aws:amz:REGION:s3 */
	char *base_url; /* .../BUCKET (path style) or scheme://BUCKET.host */
	char *key_base; /* PREFIX/ or "" */
	char *ca;       /* AWS_CA_BUNDLE: the CAs an https endpoint is checked against */
	pthread_mutex_t mu;
	CURL *idle[POOL_MAX];
	int nidle;
};

struct s3_writer {
	struct store_writer base;
	FILE *f;
	struct hasher *h;
	int err;
};

/* One request's inputs and outputs. */
struct s3_req {
	const char *method; /* GET HEAD PUT DELETE POST */
	const char *key;    /* NULL: the bucket itself */
	const char *query;  /* canonical: sorted, encoded; NULL none */
	struct curl_slist *hdrs;
	FILE *in; /* PUT body */
	int64_t in_len;
	const char *body; /* POST body */
	size_t body_len;
	uint8_t *out; /* GET body into out[0..out_cap) */
	size_t out_cap, out_len;
	bool out_grow, overflow;
	char err[ERRBODY_CAP];
	size_t err_len;
	long status;
	int64_t length; /* HEAD: Content-Length */
	CURLcode cc;
};

/* ---- URL and credentials ---- */

static bool valid_bucket(const char *b)
{
	size_t n = strlen(b);
	if (n < 3 || n > 63)
		return false;
	for (const char *p = b; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '.'))
			return false;
	return true;
}

static bool valid_prefix(const char *p)
{
	if (strlen(p) > 512 || strstr(p, "//") || strstr(p, ".."))
		return false;
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("-_./", *p)))
			return false;
	return true;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* %XX-decode s[0..n) into a new string; NULL on a bad escape. */
static char *pct_decode(const char *s, size_t n)
{
	char *o = xmalloc(n + 1), *q = o;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int a = i + 2 < n ? hexval(s[i + 1]) : -1;
			int b = a >= 0 ? hexval(s[i + 2]) : -1;
			if (a < 0 || b < 0 || (a == 0 && b == 0)) {
				free(o);
				return NULL;
			}
			*q++ = (char)(a * 16 + b);
			i += 2;
		} else {
			*q++ = s[i];
		}
	}
	*q = 0;
	return o;
}

void s3_conf_fini(struct s3_conf *c)
{
	free(c->bucket);
	free(c->prefix);
	free(c->endpoint);
	free(c->region);
	free(c->access_key);
	if (c->secret_key)
		memset(c->secret_key, 0, strlen(c->secret_key));
	free(c->secret_key);
	free(c->session_token);
	memset(c, 0, sizeof *c);
}

int s3_conf_parse_url(struct s3_conf *c, const char *url, char **err)
{
	*err = NULL;
	if (strncmp(url, "s3://", 5) != 0) {
		*err = xasprintf("not an s3:// URL: %s", url);
		return -EINVAL;
	}
	const char *p = url + 5;
	size_t bl = strcspn(p, "/?");
	c->bucket = xstrndup(p, bl);
	p += bl;
	const char *q = strchr(p, '?');
	size_t pl = q ? (size_t)(q - p) : strlen(p);
	while (pl && *p == '/')
		p++, pl--;
	while (pl && p[pl - 1] == '/')
		pl--;
	c->prefix = xstrndup(p, pl);
	if (!valid_bucket(c->bucket)) {
		*err = xasprintf("bucket name '%s': 3 to 63 of a-z 0-9 . -", c->bucket);
		return -EINVAL;
	}
	if (!valid_prefix(c->prefix)) {
		*err =
		    xasprintf("prefix '%s': only A-Z a-z 0-9 - _ . / (no '..' or '//')", c->prefix);
		return -EINVAL;
	}
	int addressing = -1; /* unset */
	for (const char *a = q ? q + 1 : ""; *a;) {
		size_t n = strcspn(a, "&");
		const char *eq = memchr(a, '=', n);
		if (!eq) {
			*err = xasprintf("'%.*s': options are NAME=VALUE", (int)n, a);
			return -EINVAL;
		}
		size_t kl = (size_t)(eq - a);
		char *v = pct_decode(eq + 1, n - kl - 1);
		if (!v) {
			*err = xasprintf("'%.*s': a bad %%-escape", (int)n, a);
			return -EINVAL;
		}
		if (kl == 8 && !memcmp(a, "endpoint", 8)) {
			free(c->endpoint);
			c->endpoint = v;
		} else if (kl == 6 && !memcmp(a, "region", 6)) {
			free(c->region);
			c->region = v;
		} else if (kl == 10 && !memcmp(a, "addressing", 10)) {
			addressing = !strcmp(v, "path") ? 0 : !strcmp(v, "virtual") ? 1 : -2;
			free(v);
			if (addressing == -2) {
				*err = xstrdup("addressing= takes path or virtual");
				return -EINVAL;
			}
		} else {
			*err = xasprintf("unknown option '%.*s' (endpoint, region, addressing)",
			                 (int)kl, a);
			free(v);
			return -EINVAL;
		}
		a += n;
		if (*a == '&')
			a++;
	}
	if (!c->region)
		c->region = xstrdup("us-east-1");
	for (const char *r = c->region; *r; r++)
		if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-')) {
			*err = xasprintf("region '%s': a-z 0-9 -", c->region);
			return -EINVAL;
		}
	if (!c->endpoint) { /* AWS itself */
		c->endpoint = xasprintf("https://s3.%s.amazonaws.com", c->region);
		if (addressing < 0)
			addressing = 1;
	}
	size_t el = strlen(c->endpoint);
	while (el && c->endpoint[el - 1] == '/')
		c->endpoint[--el] = 0;
	const char *host = !strncmp(c->endpoint, "http://", 7)    ? c->endpoint + 7
	                   : !strncmp(c->endpoint, "https://", 8) ? c->endpoint + 8
	                                                          : NULL;
	if (!host || !*host || strpbrk(host, "/?#@ ")) {
		*err = xasprintf("endpoint '%s': http(s)://HOST[:PORT]", c->endpoint);
		return -EINVAL;
	}
	c->virtual_hosted = addressing == 1;
	if (c->virtual_hosted && strchr(c->bucket, '.') && !strncmp(c->endpoint, "https://", 8)) {
		*err = xasprintf("bucket '%s' has a dot: TLS needs addressing=path", c->bucket);
		return -EINVAL;
	}
	return 0;
}

int s3_conf_parse_creds(struct s3_conf *c, const char *text, char **err)
{
	*err = NULL;
	int line = 0;
	for (const char *p = text; *p;) {
		size_t n = strcspn(p, "\n");
		line++;
		const char *a = p, *e = p + n;
		while (a < e && (*a == ' ' || *a == '\t'))
			a++;
		while (e > a && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		p += n + (p[n] == '\n');
		if (a == e || *a == '#')
			continue;
		const char *eq = memchr(a, '=', (size_t)(e - a));
		if (!eq) {
			*err = xasprintf("line %d: expected NAME=VALUE", line);
			return -EINVAL;
		}
		const char *k = a, *ke = eq, *v = eq + 1;
		while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
			ke--;
		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		char **dst = NULL;
		size_t kl = (size_t)(ke - k);
		if (kl == 13 && !memcmp(k, "access_key_id", 13))
			dst = &c->access_key;
		else if (kl == 17 && !memcmp(k, "secret_access_key", 17))
			dst = &c->secret_key;
		else if (kl == 13 && !memcmp(k, "session_token", 13))
			dst = &c->session_token;
		if (!dst) {
			*err = xasprintf("line %d: unknown name '%.*s' (access_key_id, "
			                 "secret_access_key, session_token)",
			                 line, (int)kl, k);
			return -EINVAL;
		}
		if (v == e || (memchr(v, ':', (size_t)(e - v)) && dst == &c->access_key)) {
			*err = xasprintf("line %d: '%.*s' needs a value (and a key id has no ':')",
			                 line, (int)kl, k);
			return -EINVAL;
		}
		free(*dst);
		*dst = xstrndup(v, (size_t)(e - v));
	}
	if (!c->access_key || !c->secret_key) {
		*err = xstrdup("needs both access_key_id= and secret_access_key=");
		return -EINVAL;
	}
	return 0;
}

/* ---- requests ---- */

static CURL *handle_get(struct s3_store *s)
{
	CURL *h = NULL;
	pthread_mutex_lock(&s->mu);
	if (s->nidle)
		h = s->idle[--s->nidle];
	pthread_mutex_unlock(&s->mu);
	if (!h && !(h = curl_easy_init()))
		abort(); /* out of memory, as xmalloc */
	return h;
}

static void handle_put(struct s3_store *s, CURL *h)
{
	curl_easy_reset(h); /* keeps its open connections */
	pthread_mutex_lock(&s->mu);
	if (s->nidle < POOL_MAX) {
		s->idle[s->nidle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	if (h)
		curl_easy_cleanup(h);
}

static size_t on_body(char *data, size_t sz, size_t nm, void *cls)
{
	struct s3_req *r = cls;
	size_t n = sz * nm;
	if (r->status >= 300) { /* on_header saw the status */
		size_t room = sizeof r->err - 1 - r->err_len;
		size_t k = n < room ? n : room;
		memcpy(r->err + r->err_len, data, k);
		r->err_len += k;
		r->err[r->err_len] = 0;
		return n;
	}
	if (!r->out && !r->out_grow)
		return n; /* not wanted */
	if (r->out_len + n > r->out_cap) {
		if (!r->out_grow || r->out_len + n > LIST_CAP) {
			r->overflow = true;
			return 0;
		}
		size_t cap = r->out_cap ? r->out_cap : 64 * 1024;
		while (cap < r->out_len + n)
			cap *= 2;
		r->out = xrealloc(r->out, cap);
		r->out_cap = cap;
	}
	memcpy(r->out + r->out_len, data, n);
	r->out_len += n;
	return n;
}

/* The status is known before the body: route error bodies aside. */
static size_t on_header(char *data, size_t sz, size_t nm, void *cls)
{
	struct s3_req *r = cls;
	size_t n = sz * nm;
	int code;
	if (n > 9 && !memcmp(data, "HTTP/", 5) && sscanf(data, "HTTP/%*s %d", &code) == 1)
		r->status = code;
	return n;
}

static bool retryable(const struct s3_req *r)
{
	switch (r->cc) {
	case CURLE_OK:
		return r->status >= 500 || r->status == 429 || strstr(r->err, "<Code>SlowDown<");
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return true;
	default:
		return false;
	}
}

static void request_once(struct s3_store *s, CURL *h, struct s3_req *r, const char *url)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
	curl_easy_setopt(h, CURLOPT_USERNAME, s->c.access_key);
	curl_easy_setopt(h, CURLOPT_PASSWORD, s->c.secret_key);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (s->ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, s->ca);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	if (!strcmp(r->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(r->method, "PUT")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READDATA, r->in);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->in_len);
	} else if (!strcmp(r->method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	} else if (strcmp(r->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	}
	r->status = 0;
	r->out_len = 0;
	r->err_len = 0;
	r->err[0] = 0;
	r->overflow = false;
	if (r->in)
		rewind(r->in);
	r->cc = curl_easy_perform(h);
	long code = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	r->status = code;
	curl_off_t len = -1;
	curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
	r->length = len;
}

/* Perform r with retries. 0 when an answer came (r->status says which), or
 * -EIO (the network; logged) or -EFBIG (a body over its cap). */
static int request(struct s3_store *s, struct s3_req *r)
{
	char *url = xasprintf("%s/%s%s%s", s->base_url, r->key ? r->key : "", r->query ? "?" : "",
	                      r->query ? r->query : "");
	/* No "Expect:" to turn off 100-continue: libcurl before 8.x signs that empty
	 * header but sends none, and a server that checks SignedHeaders against the
	 * request (Ceph's radosgw, AWS) refuses the signature. */
	/* S3 wants the payload's hash in a header, and libcurl signs it with that
	 * value. A PUT of a chunk sets it itself (the chunk's name). */
	bool has_sha = false;
	for (struct curl_slist *l = r->hdrs; l; l = l->next)
		has_sha |= strncasecmp(l->data, "x-amz-content-sha256:", 21) == 0;
	if (!has_sha) {
		char hex[HASH_HEX_LEN + 1];
		hash_hex((const uint8_t *)(r->body ? r->body : ""), r->body_len, hex);
		char *h = xasprintf("x-amz-content-sha256: %s", hex);
		r->hdrs = curl_slist_append(r->hdrs, h);
		free(h);
	}
	if (s->c.session_token) {
		char *t = xasprintf("x-amz-security-token: %s", s->c.session_token);
		r->hdrs = curl_slist_append(r->hdrs, t);
		free(t);
	}
	CURL *h = handle_get(s);
	struct retry rt;
	retry_init(&rt, 100, 2000, 0.5);
	int rc = 0;
	for (int i = 0;; i++) {
		request_once(s, h, r, url);
		if (r->overflow) {
			rc = -EFBIG;
			break;
		}
		if (!retryable(r) || i + 1 == TRIES)
			break;
		log_warn("store: %s %s: %s; trying again", r->method, r->key ? r->key : "(bucket)",
		         r->cc ? curl_easy_strerror(r->cc) : "a server error");
		retry_sleep_ms(retry_next_ms(&rt));
	}
	if (!rc && r->cc != CURLE_OK) {
		log_error("store: %s %s at %s: %s", r->method, r->key ? r->key : "(bucket)",
		          s->c.endpoint, curl_easy_strerror(r->cc));
		rc = -EIO;
	}
	handle_put(s, h);
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
	free(url);
	return rc;
}

/* S3's <Code> from an error answer, or the HTTP status. */
static void err_code(const struct s3_req *r, char *out, size_t cap)
{
	const char *a = strstr(r->err, "<Code>"), *b = a ? strstr(a, "</Code>") : NULL;
	if (a && b && b - a - 6 < (ptrdiff_t)cap && b - a > 6)
		snprintf(out, cap, "%.*s", (int)(b - a - 6), a + 6);
	else
		snprintf(out, cap, "HTTP %ld", r->status);
}

static void log_status(struct s3_store *s, const struct s3_req *r)
{
	char code[96];
	err_code(r, code, sizeof code);
	log_error("store: %s %s at %s bucket %s: HTTP %ld %s", r->method,
	          r->key ? r->key : "(bucket)", s->c.endpoint, s->c.bucket, r->status, code);
}

/* An HTTP status as -errno: 404 -ENOENT, 403 -EACCES, other -EIO (logged). */
static int status_err(struct s3_store *s, const struct s3_req *r)
{
	if (r->status >= 200 && r->status < 300)
		return 0;
	if (r->status == 404)
		return -ENOENT;
	log_status(s, r);
	return r->status == 403 ? -EACCES : -EIO;
}

static char *object_key(struct s3_store *s, const char *hash)
{
	return xasprintf("%s%.2s/%s", s->key_base, hash, hash);
}

/* ---- the ops ---- */

static void s3_free(struct store *st)
{
	struct s3_store *s = (struct s3_store *)st;
	for (int i = 0; i < s->nidle; i++)
		curl_easy_cleanup(s->idle[i]);
	pthread_mutex_destroy(&s->mu);
	s3_conf_fini(&s->c);
	free(s->spool);
	free(s->sigv4);
	free(s->base_url);
	free(s->key_base);
	free(s->ca);
	free(s->base.desc);
	free(s);
}

static int64_t s3_size(struct store *st, const char *hash)
{
	struct s3_store *s = (struct s3_store *)st;
	char *key = object_key(s, hash);
	struct s3_req r = {.method = "HEAD", .key = key};
	int rc = request(s, &r);
	if (!rc)
		rc = status_err(s, &r);
	free(key);
	return rc ? rc : r.length;
}

static struct store_writer *s3_writer_new(struct store *st)
{
	struct s3_store *s = (struct s3_store *)st;
	struct s3_writer *w = xcalloc(1, sizeof *w);
	w->base.s = st;
	w->h = hasher_new();
	int fd = open(s->spool, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		char *t = xasprintf("%s/chunk.XXXXXX", s->spool);
		fd = mkostemp(t, O_CLOEXEC);
		if (fd >= 0)
			unlink(t);
		free(t);
	}
	if (fd < 0 || !(w->f = fdopen(fd, "w+"))) {
		w->err = -errno;
		log_error("store: cannot spool a chunk in %s: %s", s->spool, strerror(errno));
		if (fd >= 0)
			close(fd);
	} else {
		setvbuf(w->f, NULL, _IOFBF, SPOOL_BUF);
	}
	return &w->base;
}

static int s3_writer_write(struct store_writer *base, const void *data, size_t len)
{
	struct s3_writer *w = (struct s3_writer *)base;
	if (w->err)
		return w->err;
	hasher_update(w->h, data, len);
	w->base.size += (int64_t)len;
	if (len && fwrite(data, 1, len, w->f) != len)
		w->err = errno ? -errno : -EIO;
	return w->err;
}

static void s3_writer_abort(struct store_writer *base)
{
	struct s3_writer *w = (struct s3_writer *)base;
	if (w->f)
		fclose(w->f);
	hasher_free(w->h);
	free(w);
}

static int s3_writer_commit(struct store_writer *base, const char *expected,
                            char hash_out[HASH_HEX_LEN + 1])
{
	struct s3_writer *w = (struct s3_writer *)base;
	struct s3_store *s = (struct s3_store *)base->s;
	char hash[HASH_HEX_LEN + 1];
	int rc = w->err;
	if (!rc && fflush(w->f) != 0)
		rc = -errno;
	if (rc)
		goto out;
	hasher_final_hex(w->h, hash);
	if (expected && strcmp(expected, hash) != 0) {
		rc = -EBADMSG;
		goto out;
	}
	char *key = object_key(s, hash);
	char *sha = xasprintf("x-amz-content-sha256: %s", hash);
	struct s3_req r = {.method = "PUT", .key = key, .in = w->f, .in_len = w->base.size};
	r.hdrs = curl_slist_append(NULL, sha);
	r.hdrs = curl_slist_append(r.hdrs, "Content-Type: application/octet-stream");
	rc = request(s, &r);
	if (!rc)
		rc = status_err(s, &r);
	if (rc == -ENOENT) /* no bucket */
		rc = -EIO;
	free(sha);
	free(key);
	if (!rc && hash_out)
		memcpy(hash_out, hash, sizeof hash);
out:
	s3_writer_abort(base);
	return rc;
}

static int64_t s3_read(struct store *st, const char *hash, uint8_t *buf, size_t cap)
{
	struct s3_store *s = (struct s3_store *)st;
	char *key = object_key(s, hash);
	struct s3_req r = {.method = "GET", .key = key, .out = buf, .out_cap = cap};
	int rc = request(s, &r);
	if (!rc)
		rc = status_err(s, &r);
	free(key);
	if (rc)
		return rc;
	char got[HASH_HEX_LEN + 1];
	hash_hex(buf, r.out_len, got);
	if (strcmp(got, hash) != 0) {
		log_error("store: object %s in %s is corrupt (content hashes to %s); not served",
		          hash, s->base.desc, got);
		return -EBADMSG;
	}
	return (int64_t)r.out_len;
}

static int s3_remove(struct store *st, const char *hash)
{
	struct s3_store *s = (struct s3_store *)st;
	char *key = object_key(s, hash);
	struct s3_req r = {.method = "DELETE", .key = key};
	int rc = request(s, &r);
	if (!rc)
		rc = status_err(s, &r);
	free(key);
	return rc;
}

static void xml_put_key(FILE *f, const char *k)
{
	fputs(k, f); /* keys are PREFIX (validated) and hex: nothing needs escaping */
}

static int s3_remove_many(struct store *st, const char *const *hashes, size_t n)
{
	struct s3_store *s = (struct s3_store *)st;
	int failed = 0;
	for (size_t at = 0; at < n; at += DELETE_BATCH) {
		size_t m = n - at < DELETE_BATCH ? n - at : DELETE_BATCH;
		char *body = NULL;
		size_t blen = 0;
		FILE *f = open_memstream(&body, &blen);
		fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>", f);
		for (size_t i = 0; i < m; i++) {
			char *key = object_key(s, hashes[at + i]);
			fputs("<Object><Key>", f);
			xml_put_key(f, key);
			fputs("</Key></Object>", f);
			free(key);
		}
		fputs("</Delete>", f);
		fclose(f);
		unsigned char md5[16];
		unsigned int md5len = 0;
		EVP_Digest(body, blen, md5, &md5len, EVP_md5(), NULL);
		char b64[32];
		EVP_EncodeBlock((unsigned char *)b64, md5, 16);
		char *hmd5 = xasprintf("Content-MD5: %s", b64);
		struct s3_req r = {.method = "POST",
		                   .query = "delete=",
		                   .body = body,
		                   .body_len = blen,
		                   .out_grow = true};
		r.hdrs = curl_slist_append(NULL, hmd5);
		r.hdrs = curl_slist_append(r.hdrs, "Content-Type: application/xml");
		int rc = request(s, &r);
		if (!rc)
			rc = status_err(s, &r);
		if (rc) {
			failed += (int)m;
		} else {
			/* Quiet: the answer lists only the keys that failed. */
			for (const char *p = (const char *)r.out; p && r.out_len;) {
				p = memmem(p, r.out_len - (size_t)(p - (const char *)r.out),
				           "<Error>", 7);
				if (!p)
					break;
				failed++;
				p += 7;
			}
		}
		free(r.out);
		free(hmd5);
		free(body);
	}
	return failed;
}

static int s3_quarantine(struct store *st, const char *hash)
{
	struct s3_store *s = (struct s3_store *)st;
	char *qkey = xasprintf("%squarantine/%s.%lld", s->key_base, hash, (long long)now_ms());
	char *src =
	    xasprintf("x-amz-copy-source: /%s/%s%.2s/%s", s->c.bucket, s->key_base, hash, hash);
	FILE *empty = fopen("/dev/null", "r");
	struct s3_req r = {.method = "PUT", .key = qkey, .in = empty, .in_len = 0};
	r.hdrs = curl_slist_append(NULL, src);
	int rc = empty ? request(s, &r) : -errno;
	if (!rc)
		rc = status_err(s, &r);
	if (!rc && strstr(r.err, "<Error>"))
		rc = -EIO; /* a copy can fail after its 200 */
	if (empty)
		fclose(empty);
	free(src);
	free(qkey);
	if (!rc)
		rc = s3_remove(st, hash);
	if (!rc)
		log_warn("store: corrupt object %s moved to %squarantine/ in bucket %s", hash,
		         s->key_base, s->c.bucket);
	return rc;
}

static int s3_quarantine_corrupt(struct store *st, const char *hash)
{
	struct s3_store *s = (struct s3_store *)st;
	char *key = object_key(s, hash);
	struct s3_req r = {.method = "GET", .key = key, .out_grow = true};
	int rc = request(s, &r);
	if (!rc)
		rc = status_err(s, &r);
	free(key);
	if (!rc) {
		char got[HASH_HEX_LEN + 1];
		hash_hex(r.out ? r.out : (const uint8_t *)"", r.out_len, got);
		rc = strcmp(got, hash) == 0 ? 1 : 0;
	}
	free(r.out);
	/* Not atomic as a rename is: a good copy PUT between the GET and the
	 * DELETE is lost, and the next upload of the chunk writes it again. */
	return rc == 0 ? s3_quarantine(st, hash) : rc;
}

static const char *xml_text(xmlNode *n, const char *name)
{
	for (xmlNode *c = n->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name) &&
		    c->children && c->children->type == XML_TEXT_NODE)
			return (const char *)c->children->content;
	return NULL;
}

static int64_t parse_iso_ms(const char *t)
{
	struct tm tm = {0};
	int ms = 0;
	if (!t || sscanf(t, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	                 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

static int s3_list_dir(struct store *st, int dir,
                       void (*fn)(const char *hash, int64_t mtime_ms, void *cls), void *cls)
{
	struct s3_store *s = (struct s3_store *)st;
	char pfx[600];
	snprintf(pfx, sizeof pfx, "%s%02x/", s->key_base, dir & 0xff);
	CURL *esc = curl_easy_init();
	char *epfx = curl_easy_escape(esc, pfx, 0);
	char *token = NULL;
	int count = 0, rc = 0;
	do {
		char *etok = token ? curl_easy_escape(esc, token, 0) : NULL;
		char *query =
		    xasprintf("%s%s%slist-type=2&prefix=%s", etok ? "continuation-token=" : "",
		              etok ? etok : "", etok ? "&" : "", epfx);
		curl_free(etok);
		free(token);
		token = NULL;
		struct s3_req r = {.method = "GET", .query = query, .out_grow = true};
		rc = request(s, &r);
		if (!rc)
			rc = status_err(s, &r);
		free(query);
		xmlDoc *doc = rc ? NULL
		                 : xmlReadMemory((const char *)r.out, (int)r.out_len, NULL, NULL,
		                                 XML_PARSE_NONET | XML_PARSE_NOBLANKS);
		free(r.out);
		if (!rc && !doc)
			rc = -EPROTO;
		if (rc)
			break;
		xmlNode *root = xmlDocGetRootElement(doc);
		for (xmlNode *c = root ? root->children : NULL; c; c = c->next) {
			if (c->type != XML_ELEMENT_NODE ||
			    strcmp((const char *)c->name, "Contents"))
				continue;
			const char *key = xml_text(c, "Key");
			size_t pl = strlen(pfx);
			if (!key || strncmp(key, pfx, pl) || !hash_hex_valid(key + pl) ||
			    strncmp(key + pl, pfx + strlen(s->key_base), 2))
				continue;
			fn(key + pl, parse_iso_ms(xml_text(c, "LastModified")), cls);
			count++;
		}
		const char *trunc = root ? xml_text(root, "IsTruncated") : NULL;
		const char *next = root ? xml_text(root, "NextContinuationToken") : NULL;
		if (trunc && !strcmp(trunc, "true") && next)
			token = xstrdup(next);
		xmlFreeDoc(doc);
	} while (token);
	free(token);
	curl_free(epfx);
	curl_easy_cleanup(esc);
	return rc ? rc : count;
}

static int s3_probe(struct store *st, char **err)
{
	struct s3_store *s = (struct s3_store *)st;
	CURL *esc = curl_easy_init();
	char *epfx = curl_easy_escape(esc, s->key_base, 0);
	char *query = xasprintf("list-type=2&max-keys=1&prefix=%s", epfx);
	curl_free(epfx);
	curl_easy_cleanup(esc);
	struct s3_req r = {.method = "GET", .query = query, .out_grow = true};
	int rc = request(s, &r);
	free(query);
	free(r.out);
	if (rc) {
		*err = xasprintf("cannot reach the S3 store at %s (bucket %s): %s", s->c.endpoint,
		                 s->c.bucket, curl_easy_strerror(r.cc));
		return rc;
	}
	if (r.status == 200)
		return 0;
	char code[96];
	err_code(&r, code, sizeof code);
	log_debug("store: the refusal: %s", r.err);
	*err = xasprintf("the S3 store at %s refused bucket %s: HTTP %ld %s%s", s->c.endpoint,
	                 s->c.bucket, r.status, code,
	                 r.status == 403   ? " (check the access key and secret)"
	                 : r.status == 404 ? " (create the bucket first)"
	                                   : "");
	return r.status == 403 ? -EACCES : r.status == 404 ? -ENOENT : -EIO;
}

static const struct store_ops s3_ops = {
    .free = s3_free,
    .avail = NULL, /* -ENOTSUP */
    .size = s3_size,
    .writer_new = s3_writer_new,
    .writer_write = s3_writer_write,
    .writer_commit = s3_writer_commit,
    .writer_abort = s3_writer_abort,
    .read = s3_read,
    .prefetch = NULL, /* nothing to warm */
    .remove = s3_remove,
    .remove_many = s3_remove_many,
    .quarantine = s3_quarantine,
    .quarantine_corrupt = s3_quarantine_corrupt,
    .list_dir = s3_list_dir,
    .probe = s3_probe,
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	xmlInitParser();
}

struct store *store_s3_open(struct s3_conf *c, const char *spool_dir, char **err)
{
	pthread_once(&global_once, global_init);
	if (mkdir_p(spool_dir, 0700) < 0) {
		*err = xasprintf("cannot create %s: %s", spool_dir, strerror(errno));
		s3_conf_fini(c);
		return NULL;
	}
	struct s3_store *s = xcalloc(1, sizeof *s);
	s->base.ops = &s3_ops;
	s->base.remote = true;
	s->c = *c;
	memset(c, 0, sizeof *c);
	s->spool = xstrdup(spool_dir);
	s->sigv4 = xasprintf("aws:amz:%s:s3", s->c.region);
	const char *ca = getenv("AWS_CA_BUNDLE");
	s->ca = ca && *ca ? xstrdup(ca) : NULL;
	s->key_base = *s->c.prefix ? xasprintf("%s/", s->c.prefix) : xstrdup("");
	if (s->c.virtual_hosted) {
		const char *host = strstr(s->c.endpoint, "://") + 3;
		s->base_url = xasprintf("%.*s%s.%s", (int)(host - s->c.endpoint), s->c.endpoint,
		                        s->c.bucket, host);
	} else {
		s->base_url = xasprintf("%s/%s", s->c.endpoint, s->c.bucket);
	}
	s->base.desc = xasprintf("s3://%s/%s at %s", s->c.bucket, s->c.prefix, s->c.endpoint);
	pthread_mutex_init(&s->mu, NULL);
	return &s->base;
}
