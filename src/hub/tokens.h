/* tokens: hub-signed Ed25519 content tokens, published keys, signed download
 * and upload URLs, and a host's check of an upload grant (tokens.c).
 *
 * Threads: request threads. */
#ifndef ROOST_HUB_TOKENS_H
#define ROOST_HUB_TOKENS_H

#include "hub.h"

char *tokens_sign(struct db *db, json_t *claims /* stolen; kid is added */);
/* The claims of a valid, unexpired token, or NULL with *why set. */
json_t *tokens_verify(struct db *db, const char *tok, const char **why);
enum MHD_Result api_keys(struct req *r);
enum MHD_Result api_url_create(struct req *r);
enum MHD_Result api_content_by_token(struct req *r);
enum MHD_Result api_upload_by_token_begin(struct req *r);
/* tokens_grant_check (a host's commit with an upload grant): ops/ops.h */
/* POST hosts/self/token-check {token}: may a signed URL's issuer still use it? */
enum MHD_Result api_host_token_check(struct req *r);

/* scheme://host:content-port as the client reached this hub. New string. */
char *hub_content_base(struct req *r);
/* scheme://host:port, the host as the client reached this hub. New string. */
char *hub_port_base(struct req *r, int port);
#endif
