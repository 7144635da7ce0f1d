/* share: share links — management, the public pages, downloads, uploads and
 * folder archives (share.c).
 *
 * Threads: request threads. */
#ifndef ROOST_HUB_SHARE_H
#define ROOST_HUB_SHARE_H

#include "hub.h"

enum MHD_Result api_share_create(struct req *r);
enum MHD_Result api_shares(struct req *r);
enum MHD_Result api_share_revoke(struct req *r);
enum MHD_Result api_share_view(struct req *r);
/* POST /s/TOKEN: the page's password form (a BODY_FORM route). */
enum MHD_Result api_share_unlock(struct req *r);
enum MHD_Result api_share_file(struct req *r);
enum MHD_Result api_share_upload_begin(struct req *r);
enum MHD_Result api_share_upload(struct req *r);
enum MHD_Result api_share_zip(struct req *r);
#endif
