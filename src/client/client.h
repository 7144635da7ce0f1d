/* client: the one client of the hub API, used by the CLI and the host agent
 * — saved credentials (config.c), the chosen workspace, JSON requests with
 * clear error messages (client.c); put and get are in transfer.h, command
 * plumbing in cmdline.h. Nothing here knows the CLI, the host or the hub.
 * A struct client belongs to one thread at a time. */
#ifndef ROOST_CLIENT_H
#define ROOST_CLIENT_H

#include "../core/chunker.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct client {
	char *hub;   /* base URL, no trailing slash */
	char *token; /* bearer token */
	char *email;
	char *cacert; /* a CA bundle to trust for an https hub (self-signed), or NULL */
	int64_t ws_id;
	char *ws_name;
	struct chunker_params chunking;
	CURL *curl;
	long timeout_s; /* a whole request's limit; 0: none (a stall still fails after 60 s) */
	long connect_s; /* how long to wait for a connection; 0: 10 s */
	long stall_s;   /* a transfer that sends nothing this long fails; 0: 60 s */
};

/* Path of the credentials file ($XDG_CONFIG_HOME/roost/config.json). New string. */
char *client_config_path(void);
int client_save_config(const char *hub, const char *token, const char *email, const char *cacert);
/* Load credentials and resolve the workspace (NULL: $ROOST_WORKSPACE, else
 * "default", else the first). Prints why on failure; returns 0 or an exit code. */
int client_open(struct client *c, const char *workspace);
/* The same with credentials given (c is zeroed first by the caller). */
int client_open_with(struct client *c, const char *hub, const char *token, const char *cacert,
                     const char *email, const char *workspace);
void client_close(struct client *c);

/* A new curl handle set up with the token and sane timeouts. */
CURL *client_curl(const struct client *c);
/* Ready curl for a new request: its last one's options dropped (the
 * connection kept), the defaults set again. */
void client_curl_reset(const struct client *c, CURL *curl);
/* URL of an API path under /api/v1/workspaces/{id}; rel may hold %s for the
 * escaped path argument. New string. */
char *client_ws_url(const struct client *c, const char *rel, const char *path_arg);

/* One JSON request. Returns the HTTP status (0 if the hub could not be
 * reached, with *err set). *out gets the parsed body (or NULL). */
long client_request(const struct client *c, CURL *curl, const char *method, const char *url,
                    json_t *body, json_t **out, char err[256]);
/* GET url (any server that takes c's bearer token: the hub, a host's content
 * server) with its body passed to sink, curl's write callback: returning less
 * than it was given fails the transfer. The HTTP status, 0 if the server was
 * not reached or sink refused. */
long client_get_to(const struct client *c, CURL *curl, const char *url, curl_write_callback sink,
                   void *arg);
/* GET list?path=P, every page of it: one answer as a single page would be,
 * its entries all the pages' (in order) and no next_cursor. The HTTP status
 * (the first page's error, with *out its body; 0 with err set if the hub was
 * not reached or its pages never ended). */
#define CLIENT_LIST_PAGE      1000
#define CLIENT_LIST_PAGES_MAX 100000
long client_list(const struct client *c, CURL *curl, const char *path, json_t **out, char err[256]);
/* Print an API error body (or err) as "roost: message". */
void client_print_error(const char *what, long status, json_t *body, const char *err);
/* What a hub's error answer means, in words (no "roost: what:" prefix): a full
 * hub reads "the hub is out of space (507 out_of_space) …", a quota "the
 * workspace is over its quota (507 quota_exceeded): …", others "MESSAGE
 * (CODE, HTTP STATUS)". err: a transport error, or NULL/"". */
void client_error_text(long status, json_t *body, const char *err, char *out, size_t cap);
/* An answer not worth repeating: 507 (a full hub or quota stays so). */
#define CLIENT_NO_RETRY(status) ((status) == 507)
/* Request that must succeed (2xx); prints the error and returns NULL otherwise. */
/* An invite URL may name the dashboard (a browser's page) rather than the API:
 * ask c->hub (the URL's origin) about the invite token and return the API's
 * base URL (new string), or NULL after printing why ("what: …"), also when
 * the invite is of another kind than kind ("member" or "host"). */
char *client_invite_api(struct client *c, const char *token, const char *kind, const char *what);
json_t *client_call(struct client *c, const char *method, const char *url, json_t *body,
                    const char *what);

/* The hub's published signing keys ({"keys": [...]}, GET /api/v1/keys) or
 * NULL, on a curl handle of its own so any thread may ask. A
 * keyring_fetch_fn (core/keyring.h) with cls the struct client. */
json_t *client_get_keys(void *cls);

#endif
