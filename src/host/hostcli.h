/* hostcli: the host's commands — roost host invite|join|run|status|get|
 * rotate-url|revoke-url|rm, roost hosts, roost policy (main.c dispatches them
 * through cmdline_run). */
#ifndef ROOST_HOSTCLI_H
#define ROOST_HOSTCLI_H

#include "../client/cmdline.h"

int cmd_host(struct opts *o);
int cmd_hosts(struct opts *o);
int cmd_policy(struct opts *o);

#endif
