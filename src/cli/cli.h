/* cli: the client subcommands (login, ls, put, get, mkdir, mv, rm, versions, usage). */
#ifndef ROOST_CLI_H
#define ROOST_CLI_H

/* Run a client subcommand; returns the exit code, or -1 if cmd is not one. */
int cli_run(const char *cmd, int argc, char **argv);

#endif
