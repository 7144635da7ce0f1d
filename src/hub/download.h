/* download: ranged, verified streaming of a version; single chunks
 * (download.c).
 *
 * Threads: request threads. */
#ifndef ROOST_HUB_DOWNLOAD_H
#define ROOST_HUB_DOWNLOAD_H

#include "hub.h"
#include "meta.h"

/* Stream version fi (with Range); as an attachment named after the file. */
enum MHD_Result serve_version(struct req *r, struct file_info *fi, bool attachment);
enum MHD_Result api_content(struct req *r);
enum MHD_Result api_chunk_get(struct req *r);
#endif
