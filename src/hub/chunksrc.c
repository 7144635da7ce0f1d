/* chunksrc: the bytes of a chunk the hub serves a workspace's reader, from
 * its store or from the workspace's hosts (chunksrc.h).
 *
 * The store's copy is served only for a proven grant: a host's pointer commit
 * names chunks it need not hold, and another workspace may have stored the
 * same hash, so an unproven grant gets only bytes fetched from the
 * workspace's own hosts — verified, after which the grant is proven.
 *
 * Threads: request threads (a download's reader); the replicate job through
 * chunksrc_fetch_host. The touch throttle is process-wide, under touch_mu;
 * host_ca is set once at start (chunksrc_set_host_ca), read-only after. */
#include "chunksrc.h"
#include "tokens.h"
#include "hosts/hosts.h"
#include "../client/client.h"
#include "../core/json.h"
#include "../core/util.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOLDERS_MAX    8        /* hosts tried for one chunk */
#define TOKEN_TTL_MS   600000ll /* the chunk token shown to hosts */
#define TOKEN_RENEW_MS 60000ll  /* sign a new one this long before expiry */
#define HOST_CONNECT_S 3L       /* a host that does not answer is skipped fast */
#define HOST_STALL_MS  4000ll   /* nor does a stalled one (no byte this long) hold the reader */
#define HOST_TIMEOUT_S 120L     /* one chunk (at most 64 MiB) from one host */
#define TOUCH_EVERY_MS 60000ll  /* the cache's LRU stamp, at most this often per chunk */
#define TOUCH_SLOTS    4096

struct holder {
	int64_t id, ws;
	char url[520], tunnel[600];
};

struct chunksrc {
	struct hub *hub;
	int64_t ws;
	bool keep;  /* fetched chunks go into the store (the cache) */
	bool hosts; /* a 'hosts' workspace: the store's copies are cache, touched */
	char *token;
	int64_t token_exp;
	CURL *curl;        /* one handle: connections to hosts are reused chunk after chunk */
	int64_t last_host; /* the host that served last: asked first next time */
	int64_t failed[HOLDERS_MAX]; /* hosts that failed this download: asked last */
	int nfailed;
};

/* ---- fetching from hosts ---- */

/* The CA bundle host and relay URLs are verified with (NULL: the system's). */
static char *host_ca;

int chunksrc_set_host_ca(const char *path)
{
	if (!path)
		return 0;
	char *real = realpath(path, NULL);
	if (!real)
		return -errno;
	if (access(real, R_OK) != 0) {
		int e = errno;
		free(real);
		return -e;
	}
	free(host_ca);
	host_ca = real;
	return 0;
}

struct sink {
	uint8_t *buf;
	size_t cap, len;
	int64_t moved_ms; /* when the last byte came (or the request began) */
};

static size_t sink_write(char *p, size_t size, size_t n, void *cls)
{
	struct sink *s = cls;
	size_t k = size * n;
	if (k > s->cap - s->len)
		return 0; /* more than the chunk: not this chunk */
	memcpy(s->buf + s->len, p, k);
	s->len += k;
	s->moved_ms = mono_ms();
	return k;
}

/* curl calls this about once a second, bytes or not: a host that sent
 * nothing for HOST_STALL_MS is given up. (curl's own low-speed limit
 * averages over a window of several seconds, so a host that sends a burst
 * and then stalls would hold the reader that much longer.) */
static int stall_check(void *cls, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	const struct sink *s = cls;
	return mono_ms() - s->moved_ms >= HOST_STALL_MS;
}

/* GET base/chunks/HASH with tok into buf, verified. Size, or <0. */
static int64_t get_from(CURL *curl, const char *base, const char *tok, const char *hash,
                        uint8_t *buf, size_t cap)
{
	size_t bl = strlen(base);
	char *url = xasprintf("%s%schunks/%s", base, bl && base[bl - 1] == '/' ? "" : "/", hash);
	struct client c = {.hub = (char *)base,
	                   .cacert = host_ca,
	                   .connect_s = HOST_CONNECT_S,
	                   .stall_s = HOST_STALL_MS / 1000 * 2, /* curl's: a backstop */
	                   .timeout_s = HOST_TIMEOUT_S};
	struct sink s = {.buf = buf, .cap = cap, .moved_ms = mono_ms()};
	client_curl_reset(&c, curl);
	char *auth = xasprintf("Authorization: Bearer %s", tok);
	struct curl_slist *h = curl_slist_append(NULL, auth);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, stall_check);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &s);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	long status = 0;
	CURLcode cc = curl_easy_perform(curl);
	if (cc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	else if (cc == CURLE_ABORTED_BY_CALLBACK)
		log_warn("chunksrc: %s sent nothing for %lld ms; given up", base,
		         (long long)HOST_STALL_MS);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	free(auth);
	free(url);
	if (status != 200)
		return -ENOENT;
	char got[HASH_HEX_LEN + 1];
	hash_hex(buf, s.len, got);
	if (strcmp(got, hash) != 0) {
		log_warn("chunksrc: %s served wrong bytes for chunk %s; skipped", base, hash);
		return -EBADMSG;
	}
	return (int64_t)s.len;
}

/* The online, non-revoked hosts holding hash 'ok' (of ws, or any if 0). */
static int list_holders(struct db *db, int64_t ws, const char *hash, struct holder *out)
{
	char *sql = xasprintf(
	    "SELECT h.id, h.workspace_id, h.url, h.tunnel_url FROM chunk_replicas cr JOIN hosts h "
	    "ON h.id = cr.host_id WHERE cr.chunk_hash = ? AND cr.state = 'ok' AND h.revoked_at "
	    "IS NULL AND (h.url IS NOT NULL OR h.tunnel_url IS NOT NULL) AND " HOST_ONLINE_SQL
	    "%s ORDER BY h.last_seen DESC, h.id LIMIT %d",
	    ws ? " AND h.workspace_id = ?" : "", HOLDERS_MAX);
	struct db_stmt *st =
	    ws ? db_query(db, sql, hash, now_ms(), ws) : db_query(db, sql, hash, now_ms());
	free(sql);
	int n = 0;
	while (st && n < HOLDERS_MAX && db_step(st) == DB_ROW) {
		struct holder *h = &out[n++];
		h->id = db_col_int64(st, 0);
		h->ws = db_col_int64(st, 1);
		snprintf(h->url, sizeof h->url, "%s",
		         db_col_is_null(st, 2) ? "" : db_col_text(st, 2));
		snprintf(h->tunnel, sizeof h->tunnel, "%s",
		         db_col_is_null(st, 3) ? "" : db_col_text(st, 3));
	}
	db_finalize(st);
	return st ? n : -EIO;
}

static char *sign_chunk_token(struct db *db, int64_t ws, int64_t *exp)
{
	*exp = now_ms() + TOKEN_TTL_MS;
	return tokens_sign(db, json_pack("{s:I, s:s, s:I}", "ws", (json_int_t)ws, "scope", "chunks",
	                                 "exp", (json_int_t)*exp));
}

/* Try holder h: its direct URL, then its relay URL. */
static int64_t get_from_holder(CURL *curl, const struct holder *h, const char *tok,
                               const char *hash, uint8_t *buf, size_t cap)
{
	int64_t n = -ENOENT;
	if (h->url[0])
		n = get_from(curl, h->url, tok, hash, buf, cap);
	if (n < 0 && h->tunnel[0])
		n = get_from(curl, h->tunnel, tok, hash, buf, cap);
	return n;
}

int64_t chunksrc_fetch_host(struct db *db, int64_t ws, const char *hash, uint8_t *buf, size_t cap,
                            int64_t *host)
{
	struct holder hs[HOLDERS_MAX];
	int n = list_holders(db, ws, hash, hs);
	if (n < 0)
		return -EIO;
	CURL *curl = n ? client_curl(&(struct client){0}) : NULL;
	int64_t got = -ENOENT;
	for (int i = 0; i < n && got < 0; i++) {
		int64_t exp;
		char *tok = sign_chunk_token(db, hs[i].ws, &exp);
		if (!tok) {
			got = -EIO;
			break;
		}
		got = get_from_holder(curl, &hs[i], tok, hash, buf, cap);
		free(tok);
		if (got >= 0 && host)
			*host = hs[i].id;
	}
	if (curl)
		curl_easy_cleanup(curl);
	return got;
}

int chunksrc_fetch_to_store(struct db *db, struct store *store, int64_t ws, const char *hash)
{
	int64_t size = 0;
	int rc = db_int64(db, &size, "SELECT size FROM chunks WHERE hash = ?", hash);
	if (rc != DB_ROW || size <= 0)
		return rc == DB_DONE ? -ENOENT : -EIO;
	uint8_t *buf = xmalloc((size_t)size);
	int64_t n = chunksrc_fetch_host(db, ws, hash, buf, (size_t)size, NULL);
	char put[HASH_HEX_LEN + 1];
	int ret = n != size ? (n < 0 ? (int)n : -EIO)
	          : store_put(store, buf, (size_t)n, put) != 0 || strcmp(put, hash) ? -EIO
	                                                                            : 0;
	free(buf);
	/* updated_at is the cache's last use (LRU): a copy just made is fresh. */
	if (ret == 0)
		db_run(db,
		       "INSERT INTO chunk_replicas(chunk_hash, holder, state, updated_at) "
		       "VALUES(?, 'hub', 'ok', ?) ON CONFLICT(chunk_hash, holder) DO UPDATE "
		       "SET state = 'ok', updated_at = excluded.updated_at",
		       hash, now_ms());
	return ret;
}

/* ---- one download's source ---- */

struct chunksrc *chunksrc_open(struct hub *hub, struct db *db, int64_t ws)
{
	struct chunksrc *s = xcalloc(1, sizeof *s);
	s->hub = hub;
	s->ws = ws;
	s->keep = true;
	struct db_stmt *st =
	    db_query(db, "SELECT storage, hub_cache_bytes FROM workspaces WHERE id = ?", ws);
	if (st && db_step(st) == DB_ROW) {
		s->hosts = strcmp(db_col_text(st, 0), "hosts") == 0;
		s->keep = !s->hosts || db_col_int64(st, 1) > 0;
	}
	db_finalize(st);
	return s;
}

void chunksrc_close(struct chunksrc *s)
{
	if (!s)
		return;
	if (s->curl)
		curl_easy_cleanup(s->curl);
	free(s->token);
	free(s);
}

static bool failed_before(const struct chunksrc *s, int64_t id)
{
	for (int i = 0; i < s->nfailed; i++)
		if (s->failed[i] == id)
			return true;
	return false;
}

/* Holders in the order to ask: the one that served last, then those that
 * have not failed this download, then those that have. */
static void order_holders(const struct chunksrc *s, struct holder *hs, int n)
{
	for (int i = 1; i < n; i++) {
		struct holder h = hs[i];
		int rank = h.id == s->last_host ? 0 : failed_before(s, h.id) ? 2 : 1;
		int j = i;
		while (j > 0) {
			int64_t pid = hs[j - 1].id;
			int prank = pid == s->last_host ? 0 : failed_before(s, pid) ? 2 : 1;
			if (prank <= rank)
				break;
			hs[j] = hs[j - 1];
			j--;
		}
		hs[j] = h;
	}
}

/* The LRU stamp of the hub's cached copy, at most once a TOUCH_EVERY_MS per
 * chunk in this process (a slot per hash prefix; a collision only touches
 * early). */
static pthread_mutex_t touch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint64_t key;
	int64_t at;
} touched[TOUCH_SLOTS];

static uint64_t touch_key(const char *hash)
{
	char prefix[17];
	memcpy(prefix, hash, 16);
	prefix[16] = 0;
	return strtoull(prefix, NULL, 16);
}

/* A copy just (re)kept: its throttle starts afresh (an earlier touch of a
 * copy since evicted must not hold back the new copy's stamps). */
static void touch_forget(const char *hash)
{
	uint64_t key = touch_key(hash);
	pthread_mutex_lock(&touch_mu);
	if (touched[key % TOUCH_SLOTS].key == key)
		touched[key % TOUCH_SLOTS].at = 0;
	pthread_mutex_unlock(&touch_mu);
}

static void touch(struct chunksrc *s, const char *hash)
{
	uint64_t key = touch_key(hash);
	int64_t now = now_ms();
	pthread_mutex_lock(&touch_mu);
	size_t slot = key % TOUCH_SLOTS;
	bool due = touched[slot].key != key || now - touched[slot].at >= TOUCH_EVERY_MS;
	if (due) {
		touched[slot].key = key;
		touched[slot].at = now;
	}
	pthread_mutex_unlock(&touch_mu);
	if (!due)
		return;
	struct db *db = db_pool_acquire(s->hub->pool);
	db_run(db,
	       "UPDATE chunk_replicas SET updated_at = ? WHERE chunk_hash = ? AND holder = 'hub' "
	       "AND state = 'ok'",
	       now, hash);
	db_pool_release(s->hub->pool, db);
}

/* A verified chunk fetched for ws: kept as cache (replica 'hub' ok, grant
 * proven) or just the grant proven. */
static void record_fetched(struct chunksrc *s, struct db *db, const char *hash, const uint8_t *buf,
                           int64_t n)
{
	char put[HASH_HEX_LEN + 1];
	if (s->keep && store_put(s->hub->store, buf, (size_t)n, put) == 0 &&
	    strcmp(put, hash) == 0) {
		touch_forget(hash);
		db_run(
		    db,
		    "INSERT INTO chunk_replicas(chunk_hash, holder, state, updated_at) VALUES(?, "
		    "'hub', 'ok', ?) ON CONFLICT (chunk_hash, holder) DO UPDATE SET state = "
		    "'ok', updated_at = excluded.updated_at",
		    hash, now_ms());
	}
	/* The workspace's own host had these bytes: the grant is proven. */
	db_run(db,
	       "UPDATE workspace_chunks SET proven = 1 WHERE workspace_id = ? AND chunk_hash = ? "
	       "AND proven = 0",
	       s->ws, hash);
}

static int64_t from_hosts(struct chunksrc *s, const char *hash, int64_t size, uint8_t *buf)
{
	struct holder hs[HOLDERS_MAX];
	struct db *db = db_pool_acquire(s->hub->pool);
	int n = list_holders(db, s->ws, hash, hs);
	if (n > 0 && (!s->token || s->token_exp - now_ms() < TOKEN_RENEW_MS)) {
		free(s->token);
		s->token = sign_chunk_token(db, s->ws, &s->token_exp);
	}
	db_pool_release(s->hub->pool, db);
	if (n < 0 || (n > 0 && !s->token))
		return -EIO;
	order_holders(s, hs, n);
	if (!s->curl && n)
		s->curl = client_curl(&(struct client){0});
	for (int i = 0; i < n; i++) {
		int64_t got = get_from_holder(s->curl, &hs[i], s->token, hash, buf, (size_t)size);
		if (got == size) {
			s->last_host = hs[i].id;
			db = db_pool_acquire(s->hub->pool);
			record_fetched(s, db, hash, buf, got);
			db_pool_release(s->hub->pool, db);
			return got;
		}
		log_warn("chunksrc: host %lld did not serve chunk %s; trying the next holder",
		         (long long)hs[i].id, hash);
		if (!failed_before(s, hs[i].id) && s->nfailed < HOLDERS_MAX)
			s->failed[s->nfailed++] = hs[i].id;
	}
	return -ENOENT;
}

int64_t chunksrc_read(struct chunksrc *s, const char *hash, int64_t size, bool proven, uint8_t *buf)
{
	bool corrupt = false;
	if (proven) {
		int64_t n = store_read(s->hub->store, hash, buf, (size_t)size);
		if (n == size) {
			if (s->hosts)
				touch(s, hash);
			return n;
		}
		if (n == -EBADMSG) {
			corrupt = true;
			atomic_fetch_add(&s->hub->m.corrupt_reads, 1);
			log_error("chunksrc: the store's copy of chunk %s is corrupt; asking hosts",
			          hash);
		}
	}
	int64_t n = from_hosts(s, hash, size, buf);
	return n == -ENOENT && corrupt ? -EBADMSG : n;
}

/* ---- availability ---- */

int chunksrc_available(struct db *db, struct store *store, int64_t ws, int64_t version_id,
                       int64_t start, int64_t end, json_t **holders, struct chunksrc_chunk *remote)
{
	if (remote)
		remote->hash[0] = 0;
	/* An S3 store is not asked per chunk (a HEAD each) for remote: a proven
	 * chunk it lacks is asked of hosts as the stream reaches it. */
	bool stat_all = remote && !store_is_remote(store);
	/* Per chunk in range: the grant's proof and whether an online host of
	 * ws holds it (as 1/0: PostgreSQL's EXISTS is a boolean). */
	struct db_stmt *st = db_query(
	    db,
	    "SELECT vc.chunk_hash, COALESCE(wc.proven, 0), vc.size, CASE WHEN EXISTS (SELECT 1 "
	    "FROM "
	    "chunk_replicas cr "
	    "JOIN hosts h ON h.id = cr.host_id WHERE cr.chunk_hash = vc.chunk_hash AND cr.state = "
	    "'ok' AND h.workspace_id = ? AND h.revoked_at IS NULL AND (h.url IS NOT NULL OR "
	    "h.tunnel_url IS NOT NULL) AND " HOST_ONLINE_SQL ") THEN 1 ELSE 0 END FROM "
	    "version_chunks vc LEFT JOIN "
	    "workspace_chunks wc ON wc.workspace_id = ? AND wc.chunk_hash = vc.chunk_hash WHERE "
	    "vc.version_id = ? AND vc.chunk_offset < ? AND vc.chunk_offset + vc.size > ? ORDER BY "
	    "vc.idx",
	    ws, now_ms(), ws, version_id, end, start);
	json_t *missing = json_array();
	int rc;
	while (st && (rc = db_step(st)) == DB_ROW) {
		const char *hash = db_col_text(st, 0);
		bool proven = db_col_int64(st, 1) != 0, online = db_col_int64(st, 3) != 0;
		bool want = stat_all && !remote->hash[0];
		bool stored = proven && (want || !online) ? store_size(store, hash) > 0 : false;
		if (!online && !stored)
			json_array_append_new(missing, json_string(hash));
		else if (want && !stored) {
			snprintf(remote->hash, sizeof remote->hash, "%s", hash);
			remote->size = db_col_int64(st, 2);
			remote->proven = proven;
		}
	}
	db_finalize(st);
	if (!st || rc != DB_DONE) {
		json_decref(missing);
		return -EIO;
	}
	bool all = json_array_size(missing) == 0;
	if (!all && holders)
		*holders = json_array();
	size_t i;
	json_t *h;
	json_t *seen = json_object();
	json_array_foreach(missing, i, h)
	{
		if (all || !holders)
			break;
		st = db_query(
		    db,
		    "SELECT h.id, h.label, h.last_seen FROM chunk_replicas cr JOIN hosts h "
		    "ON h.id = cr.host_id WHERE cr.chunk_hash = ? AND cr.state = 'ok' AND "
		    "h.workspace_id = ? AND h.revoked_at IS NULL ORDER BY h.id",
		    json_string_value(h), ws);
		while (st && db_step(st) == DB_ROW) {
			char id[24];
			snprintf(id, sizeof id, "%lld", (long long)db_col_int64(st, 0));
			if (json_object_get(seen, id))
				continue;
			json_object_set_new(seen, id, json_true());
			json_array_append_new(
			    *holders,
			    json_pack("{s:I, s:s, s:o, s:b}", "id", (json_int_t)db_col_int64(st, 0),
			              "label", db_col_text(st, 1), "last_seen",
			              db_col_is_null(st, 2) ? json_null()
			                                    : json_integer(db_col_int64(st, 2)),
			              "online", 0));
		}
		db_finalize(st);
		if (json_object_size(seen) >= 64)
			break; /* enough to name */
	}
	json_decref(seen);
	json_decref(missing);
	return all ? 1 : 0;
}

json_t *chunksrc_holders(struct db *db, int64_t ws, const char *hash)
{
	json_t *a = json_array();
	struct db_stmt *st =
	    db_query(db,
	             "SELECT h.id, h.label, h.last_seen, CASE WHEN " HOST_ONLINE_SQL
	             " THEN 1 ELSE 0 END FROM chunk_replicas cr JOIN hosts h ON h.id = "
	             "cr.host_id WHERE cr.chunk_hash = ? AND cr.state = 'ok' AND "
	             "h.workspace_id = ? AND h.revoked_at IS NULL ORDER BY h.id",
	             now_ms(), hash, ws);
	while (st && db_step(st) == DB_ROW)
		json_array_append_new(
		    a, json_pack("{s:I, s:s, s:o, s:b}", "id", (json_int_t)db_col_int64(st, 0),
		                 "label", db_col_text(st, 1), "last_seen",
		                 db_col_is_null(st, 2) ? json_null()
		                                       : json_integer(db_col_int64(st, 2)),
		                 "online", db_col_int64(st, 3) != 0));
	db_finalize(st);
	return a;
}

enum MHD_Result chunksrc_reply_unavailable(struct req *r, json_t *holders)
{
	size_t n = json_array_size(holders), i;
	bool online = false;
	json_t *h;
	json_array_foreach(holders, i, h) online |= json_is_true(json_object_get(h, "online"));
	const char *msg =
	    online ? "the hosts holding a chunk of this file did not serve it now (refused, "
	             "failed, stalled or sent wrong bytes); retry later"
	    : n    ? "a chunk of this file is held only by hosts that are offline now; retry "
	             "when one of them is back"
	           : "a chunk of this file is neither in the hub's storage nor on any host now";
	json_t *body =
	    json_pack("{s:{s:s, s:s, s:{s:o}}}", "error", "code", "chunk_unavailable", "message",
	              msg, "detail", "holders", holders ? holders : json_array());
	char after[16];
	snprintf(after, sizeof after, "%d", CHUNKSRC_RETRY_AFTER_S);
	return reply_json_hdr(r, MHD_HTTP_SERVICE_UNAVAILABLE, body, "Retry-After", after);
}
