/* zip: a shared folder as one ZIP download, streamed.
 *
 * Entries are stored (no compression: content is mostly compressed already,
 * and it keeps the stream cheap) in ZIP64 form, so files and archives may pass
 * 4 GiB. Every size is known up front, so the response has a Content-Length;
 * CRC-32s are computed as the bytes stream and written in each entry's data
 * descriptor and in the central directory. Chunks come from chunksrc (the
 * store, or a host of the workspace) and are verified, as in any download;
 * every chunk must be available before the first byte (else 503), and the
 * first one the store cannot serve is fetched from a host before the headers
 * too (else 503): an online holder that fails is found then, not midway. Past
 * the first byte a chunk is asked of every holder before the archive is cut.
 *
 * Threads: request threads; a response's reader runs on one at a time. */
#include "hub.h"
#include "zip.h"
#include "acl.h"
#include "chunksrc.h"
#include "meta.h"
#include "../core/content.h"
#include "../core/path.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define ZIP_MAX_ENTRIES 10000
#define ZIP_MAX_PATHS   200             /* selected paths in one GET zip: the URL stays short */
#define LOCAL_LEN(n)    (30 + (n) + 20) /* header + name + ZIP64 extra */
#define DESC_LEN        24              /* ZIP64 data descriptor */
#define CENTRAL_LEN(n)  (46 + (n) + 28)
#define END_LEN         (56 + 20 + 22) /* ZIP64 end record, locator, end record */

struct zip_entry {
	char *name; /* inside the archive */
	int64_t version_id, size, mtime_ms, offset;
	uint32_t crc;
	uint16_t dos_time, dos_date;
};

struct zip {
	struct hub *hub;
	struct chunksrc *src;
	int64_t ws;
	struct zip_entry *e;
	size_t n;
	/* what is being produced */
	size_t cur;                 /* entry index */
	int phase;                  /* 0 header, 1 data, 2 descriptor, 3 central, 4 end */
	uint8_t piece[512 + 65536]; /* a header, descriptor or central record */
	size_t piece_len, piece_off;
	/* the current entry's chunks */
	char (*hashes)[HASH_HEX_LEN + 1];
	int64_t *sizes;
	bool *proven;
	size_t nchunks, chunk;
	uint8_t *buf;
	int64_t buf_len, buf_off;
	/* The first chunk not in the store, fetched before the headers: its
	 * verified bytes until the stream reaches it (NULL: none, or taken). */
	struct chunksrc_chunk first;
	size_t first_entry;
	uint8_t *first_buf;
	int64_t pos, total, cd_offset, cd_size;
};

static uint8_t *put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 8;
}

static void dos_time(int64_t ms, uint16_t *t, uint16_t *d)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	if (tm.tm_year < 80)
		tm.tm_year = 80, tm.tm_mon = 0, tm.tm_mday = 1,
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	*t = (uint16_t)((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
	*d = (uint16_t)(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
}

static size_t local_header(const struct zip_entry *e, uint8_t *out)
{
	size_t n = strlen(e->name);
	uint8_t *p = put32(out, 0x04034b50);
	p = put16(p, 45);     /* version needed: ZIP64 */
	p = put16(p, 0x0808); /* sizes in a data descriptor; UTF-8 name */
	p = put16(p, 0);      /* stored */
	p = put16(p, e->dos_time);
	p = put16(p, e->dos_date);
	p = put32(p, 0);
	p = put32(p, 0xFFFFFFFF);
	p = put32(p, 0xFFFFFFFF);
	p = put16(p, (unsigned)n);
	p = put16(p, 20);
	memcpy(p, e->name, n);
	p += n;
	p = put16(p, 0x0001);
	p = put16(p, 16);
	p = put64(p, 0); /* sizes follow in the descriptor */
	p = put64(p, 0);
	return (size_t)(p - out);
}

static size_t descriptor(const struct zip_entry *e, uint8_t *out)
{
	uint8_t *p = put32(out, 0x08074b50);
	p = put32(p, e->crc);
	p = put64(p, (uint64_t)e->size);
	p = put64(p, (uint64_t)e->size);
	return (size_t)(p - out);
}

static size_t central(const struct zip_entry *e, uint8_t *out)
{
	size_t n = strlen(e->name);
	uint8_t *p = put32(out, 0x02014b50);
	p = put16(p, (3 << 8) | 45); /* made by: unix, ZIP64 */
	p = put16(p, 45);
	p = put16(p, 0x0808);
	p = put16(p, 0);
	p = put16(p, e->dos_time);
	p = put16(p, e->dos_date);
	p = put32(p, e->crc);
	p = put32(p, 0xFFFFFFFF);
	p = put32(p, 0xFFFFFFFF);
	p = put16(p, (unsigned)n);
	p = put16(p, 28);
	p = put16(p, 0); /* comment */
	p = put16(p, 0); /* disk */
	p = put16(p, 0); /* internal attributes */
	p = put32(p, 0100644u << 16);
	p = put32(p, 0xFFFFFFFF);
	memcpy(p, e->name, n);
	p += n;
	p = put16(p, 0x0001);
	p = put16(p, 24);
	p = put64(p, (uint64_t)e->size);
	p = put64(p, (uint64_t)e->size);
	p = put64(p, (uint64_t)e->offset);
	return (size_t)(p - out);
}

static size_t end_records(const struct zip *z, uint8_t *out)
{
	uint8_t *p = put32(out, 0x06064b50);
	p = put64(p, 44);
	p = put16(p, (3 << 8) | 45);
	p = put16(p, 45);
	p = put32(p, 0);
	p = put32(p, 0);
	p = put64(p, z->n);
	p = put64(p, z->n);
	p = put64(p, (uint64_t)z->cd_size);
	p = put64(p, (uint64_t)z->cd_offset);
	p = put32(p, 0x07064b50); /* locator */
	p = put32(p, 0);
	p = put64(p, (uint64_t)(z->cd_offset + z->cd_size));
	p = put32(p, 1);
	p = put32(p, 0x06054b50); /* the classic end record, pointing to ZIP64 */
	p = put16(p, 0xFFFF);
	p = put16(p, 0xFFFF);
	p = put16(p, 0xFFFF);
	p = put16(p, 0xFFFF);
	p = put32(p, 0xFFFFFFFF);
	p = put32(p, 0xFFFFFFFF);
	p = put16(p, 0);
	return (size_t)(p - out);
}

static void zip_free(void *cls)
{
	struct zip *z = cls;
	for (size_t i = 0; i < z->n; i++)
		free(z->e[i].name);
	free(z->e);
	free(z->hashes);
	free(z->sizes);
	free(z->proven);
	free(z->buf);
	free(z->first_buf);
	chunksrc_close(z->src);
	free(z);
}

/* Load entry i's chunk list (a database connection only for this query). */
static int load_chunks(struct zip *z)
{
	free(z->hashes);
	free(z->sizes);
	free(z->proven);
	z->hashes = NULL;
	z->sizes = NULL;
	z->proven = NULL;
	z->nchunks = z->chunk = 0;
	struct db *db = db_pool_acquire(z->hub->pool);
	size_t cap = 0;
	struct db_stmt *st = db_query(
	    db,
	    "SELECT vc.chunk_hash, vc.size, COALESCE(wc.proven, 0) FROM version_chunks vc LEFT "
	    "JOIN workspace_chunks wc ON wc.workspace_id = ? AND wc.chunk_hash = vc.chunk_hash "
	    "WHERE vc.version_id = ? ORDER BY vc.idx",
	    z->ws, z->e[z->cur].version_id);
	int rc = DB_ERR;
	while (st && (rc = db_step(st)) == DB_ROW) {
		if (z->nchunks == cap) {
			cap = cap ? cap * 2 : 16;
			z->hashes = xrealloc(z->hashes, cap * sizeof *z->hashes);
			z->sizes = xrealloc(z->sizes, cap * sizeof *z->sizes);
			z->proven = xrealloc(z->proven, cap * sizeof *z->proven);
		}
		z->proven[z->nchunks] = db_col_int64(st, 2) != 0;
		snprintf(z->hashes[z->nchunks], HASH_HEX_LEN + 1, "%s", db_col_text(st, 0));
		z->sizes[z->nchunks++] = db_col_int64(st, 1);
	}
	db_finalize(st);
	db_pool_release(z->hub->pool, db);
	return rc == DB_DONE ? 0 : -1;
}

static ssize_t zip_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct zip *z = cls;
	while (z->piece_off == z->piece_len && z->buf_off == z->buf_len) {
		z->piece_len = z->piece_off = 0;
		if (z->phase == 0) { /* next entry's header, or the central directory */
			if (z->cur == z->n) {
				z->phase = 3;
				z->cur = 0;
				continue;
			}
			struct zip_entry *e = &z->e[z->cur];
			e->crc = (uint32_t)crc32(0, NULL, 0);
			z->piece_len = local_header(e, z->piece);
			if (load_chunks(z) != 0)
				return MHD_CONTENT_READER_END_WITH_ERROR;
			z->phase = 1;
		} else if (z->phase == 1) { /* the entry's data, one verified chunk at a time */
			struct zip_entry *e = &z->e[z->cur];
			if (z->chunk == z->nchunks) {
				z->piece_len = descriptor(e, z->piece);
				z->phase = 2;
				continue;
			}
			int64_t size = z->sizes[z->chunk], n;
			if (z->first_buf && z->cur == z->first_entry &&
			    strcmp(z->hashes[z->chunk], z->first.hash) == 0) {
				free(z->buf); /* fetched before the headers */
				z->buf = z->first_buf;
				z->first_buf = NULL;
				n = z->first.size;
			} else {
				z->buf = xrealloc(z->buf, (size_t)size);
				n = chunksrc_read(z->src, z->hashes[z->chunk], size,
				                  z->proven[z->chunk], z->buf);
			}
			if (n != size) {
				log_error("zip: chunk %s unavailable; archive aborted",
				          z->hashes[z->chunk]);
				return MHD_CONTENT_READER_END_WITH_ERROR;
			}
			e->crc = (uint32_t)crc32(e->crc, z->buf, (uInt)n);
			z->buf_len = n;
			z->buf_off = 0;
			z->chunk++;
		} else if (z->phase == 2) {
			z->cur++;
			z->phase = 0;
		} else if (z->phase == 3) { /* central directory, then the end records */
			if (z->cur == z->n) {
				z->piece_len = end_records(z, z->piece);
				z->phase = 4;
				continue;
			}
			z->piece_len = central(&z->e[z->cur++], z->piece);
		} else {
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
	}
	size_t n;
	if (z->piece_off < z->piece_len) {
		n = z->piece_len - z->piece_off < max ? z->piece_len - z->piece_off : max;
		memcpy(out, z->piece + z->piece_off, n);
		z->piece_off += n;
	} else {
		n = (size_t)(z->buf_len - z->buf_off) < max ? (size_t)(z->buf_len - z->buf_off)
		                                            : max;
		memcpy(out, z->buf + z->buf_off, n);
		z->buf_off += (int64_t)n;
	}
	z->pos += (int64_t)n;
	atomic_fetch_add(&z->hub->m.bytes_served, (long long)n);
	return (ssize_t)n;
}

/* Append an entry; DB_CONSTRAINT once the archive is full. */
static int add_entry(struct zip *z, size_t *cap, const char *name, int64_t version_id, int64_t size,
                     int64_t mtime_ms)
{
	if (z->n == ZIP_MAX_ENTRIES)
		return DB_CONSTRAINT;
	if (z->n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		z->e = xrealloc(z->e, *cap * sizeof *z->e);
	}
	struct zip_entry *e = &z->e[z->n++];
	memset(e, 0, sizeof *e);
	e->name = xstrdup(name);
	e->version_id = version_id;
	e->size = size;
	e->mtime_ms = mtime_ms;
	dos_time(mtime_ms, &e->dos_time, &e->dos_date);
	return DB_DONE;
}

/* Add the files under folder that the caller may read, each named in the
 * archive by its path without the first skip bytes. DB_DONE, DB_CONSTRAINT
 * (too many files) or a database error. */
static int add_folder(struct req *r, struct zip *z, size_t *cap, const char *folder, size_t skip)
{
	struct acl *a = req_acl(r);
	size_t plen = utf8_chars(folder) + 1;
	char *prefix = strcmp(folder, "/") == 0 ? xstrdup("/") : xasprintf("%s/", folder);
	struct db_stmt *st = db_query(
	    r->db,
	    "SELECT d.path, f.name, v.id, v.size, v.created_at FROM files f "
	    "JOIN folders d ON d.id = f.folder_id JOIN file_versions v ON v.id = "
	    "f.current_version_id "
	    "WHERE d.workspace_id = ? AND d.deleted_at IS NULL AND f.deleted_at IS NULL AND "
	    "(d.path = ? OR substr(d.path, 1, ?) = ?) ORDER BY d.path, f.name",
	    r->ws_id, folder, (int64_t)(strcmp(folder, "/") == 0 ? 1 : plen), prefix);
	free(prefix);
	int rc = DB_ERR;
	while (st && (rc = db_step(st)) == DB_ROW) {
		char *full = path_join(db_col_text(st, 0), db_col_text(st, 1));
		if (acl_perm(a, full, true) >= PERM_READ)
			rc = add_entry(z, cap, full + skip, db_col_int64(st, 2),
			               db_col_int64(st, 3), db_col_int64(st, 4));
		free(full);
		if (rc == DB_CONSTRAINT)
			break;
	}
	db_finalize(st);
	return rc;
}

/* Reply with the archive of z's entries (taking z), or with why not. */
static enum MHD_Result send_zip(struct req *r, struct zip *z, int rc, const char *name)
{
	if (rc != DB_DONE) {
		zip_free(z);
		return rc == DB_CONSTRAINT
		           ? reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_many_files",
		                         "a ZIP holds at most %d files; download them separately",
		                         ZIP_MAX_ENTRIES)
		           : reply_db_error(r);
	}
	/* Every size is known: the archive's length is too. */
	int64_t off = 0;
	for (size_t i = 0; i < z->n; i++) {
		z->e[i].offset = off;
		off += LOCAL_LEN((int64_t)strlen(z->e[i].name)) + z->e[i].size + DESC_LEN;
	}
	z->cd_offset = off;
	for (size_t i = 0; i < z->n; i++)
		z->cd_size += CENTRAL_LEN((int64_t)strlen(z->e[i].name));
	z->total = off + z->cd_size + END_LEN;
	/* Every chunk must have a source now: a clear 503 before any byte. */
	json_t *holders = NULL;
	struct chunksrc_chunk *want = &z->first;
	for (size_t i = 0; i < z->n; i++) {
		int av = z->e[i].size ? chunksrc_available(r->db, r->hub->store, r->ws_id,
		                                           z->e[i].version_id, 0, z->e[i].size,
		                                           &holders, want)
		                      : 1;
		if (av <= 0) {
			zip_free(z);
			return av < 0 ? reply_db_error(r) : chunksrc_reply_unavailable(r, holders);
		}
		if (want && want->hash[0]) {
			z->first_entry = i;
			want = NULL;
		}
	}
	z->ws = r->ws_id;
	z->src = chunksrc_open(r->hub, r->db, r->ws_id);
	/* The first chunk a host must give, before any byte: a holder that is
	 * online but refuses, stalls or sends wrong bytes (every one asked) is a
	 * 503 naming them, not an archive cut after its first entry's header. */
	if (z->first.hash[0]) {
		z->first_buf = xmalloc((size_t)z->first.size);
		if (chunksrc_read(z->src, z->first.hash, z->first.size, z->first.proven,
		                  z->first_buf) != z->first.size) {
			holders = chunksrc_holders(r->db, r->ws_id, z->first.hash);
			zip_free(z);
			return chunksrc_reply_unavailable(r, holders);
		}
	}
	db_pool_release(r->hub->pool, r->db);
	r->db = NULL;
	struct MHD_Response *resp = MHD_create_response_from_callback(
	    (uint64_t)z->total, 256 * 1024, zip_read, z, zip_free);
	char *file = xasprintf("%s.zip", name);
	content_headers(resp, "application/zip", file, true);
	free(file);
	return req_queue(r, MHD_HTTP_OK, resp);
}

enum MHD_Result serve_zip(struct req *r, const char *folder, const char *name)
{
	struct zip *z = xcalloc(1, sizeof *z);
	z->hub = r->hub;
	size_t cap = 0, skip = strcmp(folder, "/") == 0 ? 1 : strlen(folder) + 1;
	int rc = add_folder(r, z, &cap, folder, skip);
	return send_zip(r, z, rc, name);
}

/* ---- GET zip?path=P[&path=Q…] ---- */

struct path_args {
	char *paths[ZIP_MAX_PATHS];
	size_t n;
	bool too_many;
	const char *why; /* the first invalid one's reason */
};

static enum MHD_Result collect_path(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_len, const char *value, size_t value_len)
{
	(void)kind;
	struct path_args *pa = cls;
	if (key_len != 4 || memcmp(key, "path", 4) != 0)
		return MHD_YES;
	if (pa->n == ZIP_MAX_PATHS) {
		pa->too_many = true;
		return MHD_NO;
	}
	const char *why = "empty path";
	char *p = value ? path_normalize(value, value_len, &why) : NULL;
	if (!p) {
		pa->why = why;
		return MHD_NO;
	}
	pa->paths[pa->n++] = p;
	return MHD_YES;
}

/* The archive's file name: the one folder's name in plain ASCII, else "roost". */
static void archive_name(const struct path_args *pa, bool one_folder, char name[64])
{
	snprintf(name, 64, "roost");
	if (!one_folder || strcmp(pa->paths[0], "/") == 0)
		return;
	size_t k = 0;
	for (const char *b = strrchr(pa->paths[0], '/') + 1; *b && k + 1 < 64; b++)
		if ((*b >= 'a' && *b <= 'z') || (*b >= 'A' && *b <= 'Z') ||
		    (*b >= '0' && *b <= '9') || *b == '-' || *b == '_' || *b == '.')
			name[k++] = *b;
	if (k)
		name[k] = 0;
}

/* Add one selected path: a file as its name, a folder as name/…. False after
 * replying (404 for a path that is missing or hidden, alike). */
static bool add_path(struct req *r, struct zip *z, size_t *cap, const char *p, int *rc,
                     bool *folder)
{
	struct file_info fi;
	int64_t fid = 0;
	size_t skip = (size_t)(strrchr(p, '/') - p) + 1; /* keep the last name */
	int got = meta_file_get(r->db, r->ws_id, p, &fi);
	*folder = false;
	if (got == 1) {
		if (!acl_require(r, p, true, PERM_READ))
			return false;
		*rc = add_entry(z, cap, p + skip, fi.version_id, fi.size, fi.updated_at);
		return true;
	}
	if (got == 0)
		got = meta_folder_id(r->db, r->ws_id, p, &fid);
	if (got < 0) {
		reply_db_error(r);
		return false;
	}
	if (got == 0 || !acl_visible(req_acl(r), p, false)) {
		reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such path: %s", p);
		return false;
	}
	*folder = true;
	*rc = add_folder(r, z, cap, p, strcmp(p, "/") == 0 ? 1 : skip);
	return true;
}

enum MHD_Result api_zip(struct req *r)
{
	struct path_args pa = {.n = 0};
	MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, collect_path, &pa);
	enum MHD_Result ret = MHD_YES;
	if (pa.too_many || pa.why || pa.n == 0) {
		ret = pa.too_many ? reply_error(r, MHD_HTTP_BAD_REQUEST, "too_many_paths",
		                                "a ZIP names at most %d paths", ZIP_MAX_PATHS)
		      : pa.why
		          ? reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_path", "path: %s", pa.why)
		          : reply_error(r, MHD_HTTP_BAD_REQUEST, "missing_argument",
		                        "query argument 'path' is required (one or more)");
		goto out;
	}
	struct zip *z = xcalloc(1, sizeof *z);
	z->hub = r->hub;
	size_t cap = 0;
	int rc = DB_DONE;
	bool folder = false;
	for (size_t i = 0; i < pa.n && rc == DB_DONE; i++) {
		if (!add_path(r, z, &cap, pa.paths[i], &rc, &folder)) {
			zip_free(z);
			goto out;
		}
	}
	char name[64];
	archive_name(&pa, pa.n == 1 && folder, name);
	ret = send_zip(r, z, rc, name);
out:
	for (size_t i = 0; i < pa.n; i++)
		free(pa.paths[i]);
	return ret;
}
