/* upload: the chunk probe, chunk PUT, version commit (one or a batch), the
 * one-shot streaming upload and version restore (upload.c).
 *
 * Threads: request threads. */
#ifndef ROOST_HUB_UPLOAD_H
#define ROOST_HUB_UPLOAD_H

#include "hub.h"
#include "meta.h"

struct chunk_ref {
	char hash[65];
	int64_t size;
};
enum MHD_Result api_chunks_missing(struct req *r);
enum MHD_Result api_chunk_put_begin(struct req *r);
int api_chunk_put_data(struct req *r, const char *data, size_t len);
enum MHD_Result api_chunk_put(struct req *r);
enum MHD_Result api_commit(struct req *r);
enum MHD_Result api_commit_batch(struct req *r);
enum MHD_Result api_upload_begin(struct req *r);
int api_upload_data(struct req *r, const char *data, size_t len);
enum MHD_Result api_upload(struct req *r);
/* Take the request body as file path (owned) in r->ws_id, chunked by the hub;
 * the caller has checked access. Finish with api_upload_data / api_upload.
 * Sets r->state to the stream, or replies (too large, over quota) and leaves
 * r->state NULL; either way it overwrites r->state without freeing it. */
enum MHD_Result upload_stream_start(struct req *r, char *path);

/* POST …/versions/restore: a past version as the new one. */
enum MHD_Result api_version_restore(struct req *r);
#endif
