/* sniff: content types with libmagic. libmagic is not thread-safe: one
 * handle, opened on first use, behind one lock; any thread may call. */
#include "sniff.h"

#include <magic.h>
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t magic_mu = PTHREAD_MUTEX_INITIALIZER;
static magic_t magic_handle;

void sniff_type(const uint8_t *data, size_t len, char out[128])
{
	snprintf(out, 128, "application/octet-stream");
	if (len == 0)
		return;
	pthread_mutex_lock(&magic_mu);
	if (!magic_handle) {
		/* Skip the costly looks inside archives and documents: the MIME
		 * type of the outside is what a download needs. */
		magic_handle = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR | MAGIC_NO_CHECK_COMPRESS |
		                          MAGIC_NO_CHECK_TAR | MAGIC_NO_CHECK_CDF |
		                          MAGIC_NO_CHECK_ELF | MAGIC_NO_CHECK_ENCODING);
		if (magic_handle && magic_load(magic_handle, NULL) != 0) {
			magic_close(magic_handle);
			magic_handle = NULL;
		}
	}
	const char *t =
	    magic_handle ? magic_buffer(magic_handle, data, len < SNIFF_BYTES ? len : SNIFF_BYTES)
	                 : NULL;
	if (t)
		snprintf(out, 128, "%s", t);
	pthread_mutex_unlock(&magic_mu);
}
