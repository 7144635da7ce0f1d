/* cmdline: what every command that talks to a hub shares — the CLI's
 * (src/cli) and the host's (src/host/hostcli.c): options pulled out of argv,
 * usage checks, printing answers, one-call helpers, the password prompt.
 * Called from the one thread a command runs on. */
#ifndef ROOST_CMDLINE_H
#define ROOST_CMDLINE_H

#include "client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

/* Options common to client commands, pulled out of argv; the rest are positional. */
struct opts {
	const char *workspace, *hub, *email, *version, *since, *limit, *action, *role, *expires,
	    *cacert, *password;
	const char *code; /* roost login, join, 2fa: a second factor's code */
	/* roost host */
	const char *name; /* roost token create */
	const char *dir, *label, *folders, *listen, *heartbeat, *cache_max, *reserve, *relay,
	    *relay_ca, *advertise_url, *tls_cert, *tls_key;
	const char *host_ca; /* roost get, roost host run: CA for hosts' and relays' https */
	const char *max_up, *max_down; /* roost host run: bytes/s (client/bwlimit.h) */
	bool write, verbose;
	bool json, quiet, parents;
	bool recursive;      /* roost rm -r */
	bool force;          /* roost get --force: replace a different local file */
	bool all;            /* roost trash --all: every page */
	bool sso;            /* roost login --sso: through the hub's identity provider */
	bool yes;            /* roost trash empty --yes: no question asked */
	bool permanent;      /* roost rm --permanent: for good, not to the trash */
	const char *confirm; /* roost workspace delete --confirm NAME */
	int parallel;
	char *pos[8];
	int npos;
};

/* A command by name, for cmdline_run. */
struct cmdline_cmd {
	const char *name;
	int (*fn)(struct opts *);
};

/* The text `roost help` prints (main.c): each command's usage is taken from it. */
void cmdline_set_usage(const char *text);
/* Print to f the usage lines of cmd ("serve", "host run", "admin"): those
 * starting "  roost CMD" and the lines indented under them; false if none. */
bool cmdline_usage(FILE *f, const char *cmd);
/* The usage of "cmd sub" if there is one, else of cmd, else a pointer to
 * roost help. */
void cmdline_help(FILE *f, const char *cmd, const char *sub);

/* cmdline_parse's answer to --help (the usage went to stdout): exit 0. */
#define CMDLINE_HELP 3
/* Parse argv into o; 0, CMDLINE_HELP, or 2 after printing why (an unknown
 * option: its name and the command's usage). */
int cmdline_parse(int argc, char **argv, struct opts *o, const char *cmd);
/* Run the command of cmds[n] named cmd with its options parsed from argv
 * (curl set up around it); its exit code, or -1 if cmd is none of them. */
int cmdline_run(const struct cmdline_cmd *cmds, size_t n, const char *cmd, int argc, char **argv);

/* Positional arguments between min and max, else print usage; 0 or 2. */
int need_args(const struct opts *o, int min, int max, const char *cmd, const char *usage);
void fmt_time(int64_t ms, char buf[32]);
void print_json(json_t *v);
/* The word for n things: one ("chunk") when n is 1, else many ("chunks"). */
const char *plural(int64_t n, const char *one, const char *many);
/* A person as "Ann Lee <ann@x>", or the email alone without a name. Into buf. */
const char *fmt_person(const char *email, const char *name, char *buf, size_t cap);
/* Who made a version or an audit row, from its "by" and "via" (or the older
 * "created_by"/"actor"): "alice@x via laptop", "alice@x via a removed host",
 * "share link #3 '/docs'", or "-". Into buf, which it returns. */
const char *fmt_who(json_t *e, char *buf, size_t cap);
/* GET a workspace resource (rel may hold %s for the escaped arg) and print it:
 * with --json the member key (or all of it), else through print. Exit code. */
int show(struct opts *o, const char *rel, const char *arg, const char *what, const char *key,
         void (*print)(json_t *answer, const struct client *c));
/* One call whose answer is printed with --json or as done_fmt (with arg). */
int simple_call(struct opts *o, const char *method, const char *url_fmt, const char *arg,
                json_t *body, const char *what, const char *done_fmt);

/* Ask prompt on stderr and read one line from stdin, which must be a
 * terminal: a new string ("" at end of input), or NULL if stdin is none. */
char *prompt_line(const char *prompt);
/* Read a password from $ROOST_PASSWORD or prompt on the terminal without echo. */
char *read_password(const char *prompt, bool confirm);
/* The same from environment variable var. */
char *read_password_env(const char *var, const char *prompt, bool confirm);

#endif
