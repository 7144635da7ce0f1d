/* members: workspaces, memberships and roles, invites (members.c).
 *
 * Threads: request threads; hub_create_workspace also from roost init. */
#ifndef ROOST_HUB_MEMBERS_H
#define ROOST_HUB_MEMBERS_H

#include "hub.h"

const char *role_name(enum role r);
int hub_create_workspace(struct db *db, const char *name, int64_t owner, int64_t *ws);
enum MHD_Result api_workspace_create(struct req *r);
enum MHD_Result api_members(struct req *r);
enum MHD_Result api_member_set_role(struct req *r);
enum MHD_Result api_member_remove(struct req *r);
enum MHD_Result api_invite_create(struct req *r);
enum MHD_Result api_invites(struct req *r);
enum MHD_Result api_invite_revoke(struct req *r);
enum MHD_Result api_invite_accept(struct req *r);
enum MHD_Result api_invite_peek(struct req *r);
/* scheme://HOST/kind/tok: the dashboard's page when the dashboard runs, else the
 * hub as the client reached it. New string. */
char *hub_link(struct req *r, const char *kind, const char *tok);
#endif
