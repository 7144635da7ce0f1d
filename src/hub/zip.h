/* zip: a folder (what the caller may read in it) as a streamed ZIP64
 * archive (zip.c).
 *
 * Threads: request threads; the archive streams from libmicrohttpd's callback on
 * the request's thread. */
#ifndef ROOST_HUB_ZIP_H
#define ROOST_HUB_ZIP_H

#include "hub.h"

/* A folder (what the caller may read in it) as a streamed ZIP64 archive */
enum MHD_Result serve_zip(struct req *r, const char *folder, const char *name);
/* GET zip?path=P[&path=Q…]: the selected files and folders (what the caller
 * may read in them) as one archive: a file as its name, a folder as name/…. */
enum MHD_Result api_zip(struct req *r);
#endif
