/* upload: the chunk probe, chunk PUT, version commit (one or a batch), the
 * one-shot streaming upload and version restore (upload.c).
 *
 * Threads: request threads. */
#ifndef ROOST_HUB_UPLOAD_H
#define ROOST_HUB_UPLOAD_H

#include "hub.h"
#include "meta.h"
#include "ops/err.h"

struct chunk_ref {
	char hash[65];
	int64_t size;
};
enum MHD_Result api_chunks_missing(struct req *r);
/* A probe's optional "size" (the bytes of the file about to be committed):
 * true if absent or within the workspace's max file size and quota, else
 * false after answering 400, 413 file_too_large or 507 quota_exceeded, so a
 * client learns it before it sends a chunk. Both probes (chunks/missing,
 * uploads/missing) ask. */
bool upload_probe_fits(struct req *r);
enum MHD_Result api_chunk_put_begin(struct req *r);
int api_chunk_put_data(struct req *r, const char *data, size_t len);
enum MHD_Result api_chunk_put(struct req *r);
enum MHD_Result api_commit(struct req *r);
enum MHD_Result api_commit_batch(struct req *r);
enum MHD_Result api_upload_begin(struct req *r);
int api_upload_data(struct req *r, const char *data, size_t len);
enum MHD_Result api_upload(struct req *r);
/* The streaming upload, as the API's POST upload, WebDAV PUT, a LOCK on an
 * unmapped URL and share-link uploads run it. begin takes the request body as
 * file path (owned) in r->ws_id, chunked by the hub; the caller has checked
 * access. OP_OK with r->state set to the stream (a limit found then is kept
 * in r->stream_err and answered after the body), or an error with r->state
 * NULL; either way it overwrites r->state without freeing it. The body goes
 * to api_upload_data; commit then makes the version: its JSON as the API
 * answers it, or NULL with *e. */
enum op_code upload_stream_begin(struct req *r, char *path, struct op_err *e);
json_t *upload_stream_commit(struct req *r, struct op_err *e);
/* begin, answered as the API answers. */
enum MHD_Result upload_stream_start(struct req *r, char *path);

/* POST …/versions/restore: a past version as the new one. */
enum MHD_Result api_version_restore(struct req *r);
#endif
