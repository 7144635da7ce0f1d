/* sniff: a file's MIME type from its first bytes (libmagic), for the hub's
 * uploads and for a host that commits chunks the hub never sees. */
#ifndef ROOST_CORE_SNIFF_H
#define ROOST_CORE_SNIFF_H

#include <stddef.h>
#include <stdint.h>

#define SNIFF_BYTES 8192 /* the head that decides the type */

/* The MIME type of data[0..len) into out ("application/octet-stream" when
 * libmagic cannot tell or len is 0). Any thread. */
void sniff_type(const uint8_t *data, size_t len, char out[128]);

#endif
