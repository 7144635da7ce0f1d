/* cmd: what the client subcommands share (cli.c parses and dispatches;
 * team.c holds workspace, member, access and sharing commands; watch.c the
 * feed follower). */
#ifndef ROOST_CMD_H
#define ROOST_CMD_H

#include "client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Options common to client commands, pulled out of argv; the rest are positional. */
struct opts {
	const char *workspace, *hub, *email, *version, *since, *limit, *action, *role, *expires,
	    *cacert, *password;
	/* roost host */
	const char *name; /* roost token create */
	const char *dir, *label, *folders, *listen, *heartbeat, *cache_max, *reserve, *relay,
	    *relay_ca;
	bool write;
	bool json, quiet, parents;
	int parallel;
	char *pos[8];
	int npos;
};

/* Positional arguments between min and max, else print usage; 0 or 2. */
int need_args(const struct opts *o, int min, int max, const char *cmd, const char *usage);
void fmt_time(int64_t ms, char buf[32]);
void print_json(json_t *v);
/* GET a workspace resource (rel may hold %s for the escaped arg) and print it:
 * with --json the member key (or all of it), else through print. Exit code. */
int show(struct opts *o, const char *rel, const char *arg, const char *what, const char *key,
         void (*print)(json_t *answer, const struct client *c));
/* One call whose answer is printed with --json or as done_fmt (with arg). */
int simple_call(struct opts *o, const char *method, const char *url_fmt, const char *arg,
                json_t *body, const char *what, const char *done_fmt);

int cmd_audit(struct opts *o);
int cmd_invite(struct opts *o);
int cmd_join(struct opts *o);
int cmd_members(struct opts *o);
int cmd_workspaces(struct opts *o);
int cmd_acl(struct opts *o);
int cmd_url(struct opts *o);
int cmd_share(struct opts *o);
int cmd_shares(struct opts *o);
int cmd_unshare(struct opts *o);
int cmd_watch(struct opts *o);
int cmd_token(struct opts *o);
int cmd_sessions(struct opts *o);
int cmd_passwd(struct opts *o);
/* host/hostcli.c */
int cmd_host(struct opts *o);
int cmd_hosts(struct opts *o);
int cmd_policy(struct opts *o);

#endif
