/* cmdline: see cmdline.h. */
#include "cmdline.h"
#include "../core/json.h"
#include "../core/util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static const char *usage_text;

void cmdline_set_usage(const char *text)
{
	usage_text = text;
}

/* Does line (of the usage text) document cmd: "  roost CMD" then a space or its end? */
static bool documents(const char *line, const char *cmd)
{
	size_t n = strlen(cmd);
	return strncmp(line, "  roost ", 8) == 0 && strncmp(line + 8, cmd, n) == 0 &&
	       (line[8 + n] == ' ' || line[8 + n] == '\n');
}

bool cmdline_usage(FILE *f, const char *cmd)
{
	bool any = false, in = false;
	for (const char *line = usage_text; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
		/* A command's lines: its own, then those indented further under it. */
		if (documents(line, cmd))
			in = true;
		else if (!(in && strncmp(line, "   ", 3) == 0 && strncmp(line, "  roost ", 8) != 0))
			in = false;
		if (in) {
			if (!any)
				fputs("usage:\n", f);
			fwrite(line, 1, len, f);
			any = true;
		}
		line += len;
	}
	return any;
}

void cmdline_help(FILE *f, const char *cmd, const char *sub)
{
	char both[96];
	snprintf(both, sizeof both, "%s %s", cmd, sub ? sub : "");
	if ((sub && cmdline_usage(f, both)) || cmdline_usage(f, cmd))
		return;
	fprintf(f, "roost %s: see 'roost help'\n", cmd);
}

int cmdline_parse(int argc, char **argv, struct opts *o, const char *cmd)
{
	memset(o, 0, sizeof *o);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char **val = NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			cmdline_help(stdout, cmd, o->npos ? o->pos[0] : NULL);
			return CMDLINE_HELP;
		}
		if (strcmp(a, "--json") == 0)
			o->json = true;
		else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
			o->quiet = true;
		else if (strcmp(a, "-p") == 0 || strcmp(a, "--parents") == 0)
			o->parents = true;
		else if (strcmp(a, "-r") == 0 || strcmp(a, "--recursive") == 0)
			o->recursive = true;
		else if (strcmp(a, "-f") == 0 || strcmp(a, "--force") == 0)
			o->force = true;
		else if (strcmp(a, "--all") == 0)
			o->all = true;
		else if (strcmp(a, "-y") == 0 || strcmp(a, "--yes") == 0)
			o->yes = true;
		else if (strcmp(a, "--permanent") == 0)
			o->permanent = true;
		else if (strcmp(a, "--confirm") == 0)
			val = &o->confirm;
		else if (strcmp(a, "--sso") == 0)
			o->sso = true;
		else if (strcmp(a, "--workspace") == 0 || strcmp(a, "-w") == 0)
			val = &o->workspace;
		else if (strcmp(a, "--hub") == 0)
			val = &o->hub;
		else if (strcmp(a, "--cacert") == 0)
			val = &o->cacert;
		else if (strcmp(a, "--password") == 0)
			val = &o->password;
		else if (strcmp(a, "--write") == 0)
			o->write = true;
		else if (strcmp(a, "--email") == 0)
			val = &o->email;
		else if (strcmp(a, "--code") == 0)
			val = &o->code;
		else if (strcmp(a, "--version") == 0)
			val = &o->version;
		else if (strcmp(a, "--since") == 0)
			val = &o->since;
		else if (strcmp(a, "--limit") == 0)
			val = &o->limit;
		else if (strcmp(a, "--role") == 0)
			val = &o->role;
		else if (strcmp(a, "--expires") == 0)
			val = &o->expires;
		else if (strcmp(a, "--action") == 0)
			val = &o->action;
		else if (strcmp(a, "--dir") == 0)
			val = &o->dir;
		else if (strcmp(a, "--label") == 0)
			val = &o->label;
		else if (strcmp(a, "--name") == 0)
			val = &o->name;
		else if (strcmp(a, "--folders") == 0)
			val = &o->folders;
		else if (strcmp(a, "--listen") == 0)
			val = &o->listen;
		else if (strcmp(a, "--heartbeat") == 0)
			val = &o->heartbeat;
		else if (strcmp(a, "--cache-max") == 0)
			val = &o->cache_max;
		else if (strcmp(a, "--reserve") == 0)
			val = &o->reserve;
		else if (strcmp(a, "--max-up") == 0)
			val = &o->max_up;
		else if (strcmp(a, "--max-down") == 0)
			val = &o->max_down;
		else if (strcmp(a, "--relay") == 0)
			val = &o->relay;
		else if (strcmp(a, "--relay-ca") == 0)
			val = &o->relay_ca;
		else if (strcmp(a, "--advertise-url") == 0)
			val = &o->advertise_url;
		else if (strcmp(a, "--tls-cert") == 0)
			val = &o->tls_cert;
		else if (strcmp(a, "--tls-key") == 0)
			val = &o->tls_key;
		else if (strcmp(a, "--host-ca") == 0)
			val = &o->host_ca;
		else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)
			o->verbose = true;
		else if (strcmp(a, "--parallel") == 0) {
			if (i + 1 >= argc || (o->parallel = atoi(argv[++i])) < 1 ||
			    o->parallel > 64) {
				fprintf(stderr, "roost %s: --parallel takes 1..64\n", cmd);
				return 2;
			}
		} else if (a[0] == '-' && a[1] && strcmp(a, "-") != 0) {
			fprintf(stderr, "roost %s: unknown option %s\n", cmd, a);
			cmdline_help(stderr, cmd, o->npos ? o->pos[0] : NULL);
			return 2;
		} else if (o->npos < 8) {
			o->pos[o->npos++] = argv[i];
		} else {
			fprintf(stderr, "roost %s: too many arguments\n", cmd);
			return 2;
		}
		if (val) {
			if (i + 1 >= argc) {
				fprintf(stderr, "roost %s: %s needs a value\n", cmd, a);
				return 2;
			}
			*val = argv[++i];
		}
	}
	return 0;
}

int need_args(const struct opts *o, int min, int max, const char *cmd, const char *usage)
{
	if (o->npos < min || o->npos > max) {
		fprintf(stderr, "usage: roost %s %s\n", cmd, usage);
		return 2;
	}
	return 0;
}

void fmt_time(int64_t ms, char buf[32])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%d %H:%M", &tm);
}

const char *plural(int64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

const char *fmt_who(json_t *e, char *buf, size_t cap)
{
	json_t *via = json_object_get(e, "via");
	const char *by = json_get_str(e, "by"), *name = json_get_str(e, "by_name");
	if (!json_object_get(e, "by")) /* a hub before attribution */
		by = json_get_str(e, "created_by") ? json_get_str(e, "created_by")
		                                   : json_get_str(e, "actor");
	char named[400];
	if (by && *by && name && *name) {
		fmt_person(by, name, named, sizeof named);
		by = named;
	}
	int64_t id = 0;
	if (json_is_object(via) && json_get_int(via, "share_id", &id)) {
		const char *target = json_get_str(via, "share");
		if (target)
			snprintf(buf, cap, "share link #%lld '%s'", (long long)id, target);
		else
			snprintf(buf, cap, "share link #%lld", (long long)id);
	} else if (json_is_object(via) && json_get_int(via, "host_id", &id)) {
		const char *host = json_get_str(via, "host");
		snprintf(buf, cap, "%s via %s%s", by && *by ? by : "-",
		         host ? "" : "a removed host", host ? host : "");
	} else {
		snprintf(buf, cap, "%s", by && *by ? by : "-");
	}
	return buf;
}

const char *fmt_person(const char *email, const char *name, char *buf, size_t cap)
{
	if (name && *name)
		snprintf(buf, cap, "%s <%s>", name, email);
	else
		snprintf(buf, cap, "%s", email ? email : "-");
	return buf;
}

void print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2));
	puts(s);
	free(s);
}

int show(struct opts *o, const char *rel, const char *arg, const char *what, const char *key,
         void (*print)(json_t *answer, const struct client *c))
{
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = client_ws_url(&c, rel, arg);
	json_t *r = client_call(&c, "GET", url, NULL, what);
	free(url);
	if (r && o->json)
		print_json(key ? json_object_get(r, key) : r);
	else if (r)
		print(r, &c);
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

int simple_call(struct opts *o, const char *method, const char *url_fmt, const char *arg,
                json_t *body, const char *what, const char *done_fmt)
{
	struct client c;
	if (client_open(&c, o->workspace)) {
		json_decref(body);
		return 1;
	}
	char *url = client_ws_url(&c, url_fmt, arg);
	json_t *r = client_call(&c, method, url, body, what);
	free(url);
	json_decref(body);
	int rc = r ? 0 : 1;
	if (r && o->json) {
		char *s = json_dumps(r, JSON_INDENT(2));
		puts(s);
		free(s);
	} else if (r && done_fmt) {
		char *done = str_subst(done_fmt, arg ? arg : "");
		puts(done);
		free(done);
	}
	json_decref(r);
	client_close(&c);
	return rc;
}

char *read_password(const char *prompt, bool confirm)
{
	return read_password_env("ROOST_PASSWORD", prompt, confirm);
}

char *read_password_env(const char *var, const char *prompt, bool confirm)
{
	const char *env = getenv(var);
	if (env && *env)
		return xstrdup(env);
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "roost: no terminal to ask for a password; set %s\n", var);
		return NULL;
	}
	char *result = NULL;
	for (int round = 0; round < (confirm ? 2 : 1); round++) {
		struct termios old, quiet;
		char buf[1024];
		const char *p = round ? "Again: " : prompt;
		write_all(fd, p, strlen(p));
		tcgetattr(fd, &old);
		quiet = old;
		quiet.c_lflag &= (tcflag_t)~ECHO;
		tcsetattr(fd, TCSAFLUSH, &quiet);
		ssize_t n = read(fd, buf, sizeof buf - 1);
		tcsetattr(fd, TCSAFLUSH, &old);
		write_all(fd, "\n", 1);
		if (n <= 0)
			break;
		buf[n] = 0;
		buf[strcspn(buf, "\r\n")] = 0;
		if (round == 0) {
			result = xstrdup(buf);
		} else if (strcmp(result, buf) != 0) {
			fprintf(stderr, "roost: the passwords differ\n");
			free(result);
			result = NULL;
		}
	}
	close(fd);
	return result;
}

char *prompt_line(const char *prompt)
{
	if (!isatty(STDIN_FILENO))
		return NULL;
	fputs(prompt, stderr);
	fflush(stderr);
	char buf[1024];
	if (!fgets(buf, sizeof buf, stdin))
		return xstrdup("");
	buf[strcspn(buf, "\r\n")] = 0;
	return xstrdup(buf);
}

int cmdline_run(const struct cmdline_cmd *cmds, size_t n, const char *cmd, int argc, char **argv)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(cmd, cmds[i].name) != 0)
			continue;
		struct opts o;
		int rc = cmdline_parse(argc, argv, &o, cmd);
		if (rc)
			return rc == CMDLINE_HELP ? 0 : rc;
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = cmds[i].fn(&o);
		curl_global_cleanup();
		return rc;
	}
	return -1;
}
