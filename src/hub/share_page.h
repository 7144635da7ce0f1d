/* share_page: the HTML a share link's visitor sees on the content port — a
 * folder's listing, a file with its preview, the password form, the upload
 * form — styled like the dashboard with an embedded stylesheet (the page works
 * without the dashboard's build). Every name is escaped; the page's script and
 * style carry a per-answer nonce. share.c decides what to show; this file only
 * draws it.
 *
 * Threads: request threads. */
#ifndef ROOST_HUB_SHARE_PAGE_H
#define ROOST_HUB_SHARE_PAGE_H

#include "hub.h"

/* What the page is about. */
struct share_view {
	const char *tok;  /* the link's token, as in the URL */
	const char *name; /* the shared target's name ("/" for the root) */
	const char *rel;  /* the shown path below the share's root ("/": the root) */
	bool is_file, write;
};

/* A shared folder (or a folder in it): entries is the link's JSON listing
 * (share.c's share_entries; borrowed). */
enum MHD_Result share_page_folder(struct req *r, const struct share_view *v, json_t *entries,
                                  bool zip);
/* A shared file: name, size, modified_at and content_type (borrowed). */
enum MHD_Result share_page_file(struct req *r, const struct share_view *v, json_t *file);
/* The password form, answered with status (401, or 429 when throttled, with
 * retry_s as Retry-After); message says why (NULL: none). */
enum MHD_Result share_page_locked(struct req *r, const struct share_view *v, unsigned status,
                                  const char *message, int64_t retry_s);
/* A plain page with a title and a message (the link is gone, …). */
enum MHD_Result share_page_message(struct req *r, unsigned status, const char *title,
                                   const char *message);
/* GET /s/_assets/NAME: a fixed file of the dashboard's build that share pages
 * load (pdf.js for PDF previews); 404 for any other name or without a build. */
enum MHD_Result api_share_asset(struct req *r);
/* The decoded value of key in an application/x-www-form-urlencoded body
 * (r->body), or NULL. New string. */
char *share_form_field(struct req *r, const char *key);
/* Percent-encode a path for a query string. */
void share_url_escape(FILE *f, const char *s);

#endif
