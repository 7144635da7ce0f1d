/* serve_upload: PUT /chunks/HASH on the host's content server — a client's
 * chunk for a folder this host pins, with an upload token the hub signed
 * (serve_upload.c; docs/host.md "Uploads to a host").
 *
 * Threads: the content server's connection threads. */
#ifndef ROOST_SERVE_UPLOAD_H
#define ROOST_SERVE_UPLOAD_H

#include "host.h"

#include <microhttpd.h>
#include <stdbool.h>

/* An upload's pin lasts until the chunk is in a file of the folder, or this
 * long: the hub's commit lease, and an hour. Younger, it protects a chunk no
 * commit names yet. */
#define UPLOAD_PIN_MAX_MS (25ll * 3600 * 1000)

/* Is this request a chunk upload (PUT /chunks/...)? */
bool serve_upload_is(const char *method, const char *url);
/* The MHD access handler for a chunk upload (its con_cls is the upload's). */
enum MHD_Result serve_upload_request(struct host *h, struct MHD_Connection *conn, const char *url,
                                     const char *data, size_t *size, void **con_cls);
/* Request ended: frees con_cls and returns true if it is a chunk upload's. */
bool serve_upload_release(void *con_cls);

#endif
