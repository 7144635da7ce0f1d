/* cmd: what the client subcommands share (cli.c parses and dispatches;
 * team.c holds workspace, member, access and sharing commands; watch.c the
 * feed follower; trash.c the trash; sso.c login --sso). The options and helpers they share with the
 * host's commands are in client/cmdline.h. */
#ifndef ROOST_CMD_H
#define ROOST_CMD_H

#include "../client/cmdline.h"

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
int cmd_trash(struct opts *o);
int cmd_2fa(struct opts *o);
int cmd_account(struct opts *o);
/* roost login's second step when the hub answered totp_required: the code
 * from code (or $ROOST_TOTP_CODE, or a prompt); the session's answer or NULL. */
json_t *login_second_step(struct client *c, json_t *first, const char *code);
/* roost login --sso (sso.c) */
int cmd_login_sso(struct opts *o);

#endif
