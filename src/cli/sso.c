/* sso: roost login --sso — sign in through the hub's identity provider in a
 * browser, as `gh auth login` does. The CLI listens on 127.0.0.1 (a random
 * port), opens the hub's start URL with its port, a random state and the S256
 * challenge of a verifier it keeps; the hub ends the flow by redirecting the
 * browser to http://127.0.0.1:PORT/callback with a one-use code, which only
 * the holder of the verifier can exchange for a token (POST oidc/exchange).
 * Another local process that reads the code still cannot use it.
 *
 * Threads: the CLI's one thread. */
#include "cli.h"
#include "cmd.h"
#include "../core/json.h"
#include "../core/jwt.h"
#include "../core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SSO_WAIT_S    300  /* for the browser to come back */
#define SSO_HEAD_MAX  8192 /* the loopback request's head */
#define SSO_READ_S    10   /* for a connection to send its head */
#define SSO_PARAM_MAX 256

extern char **environ;

static void random_b64(char out[64])
{
	unsigned char raw[32];
	randombytes_buf(raw, sizeof raw);
	jwt_b64url_encode(raw, sizeof raw, out, 64);
}

/* Listen on 127.0.0.1, a port the kernel picks: the socket, *port. */
static int listen_loopback(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* Try to open url in the user's browser; the URL is printed anyway. */
static void open_browser(const char *url)
{
	const char *no = getenv("ROOST_NO_BROWSER");
	if ((no && *no) || (!getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY")))
		return;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	char *argv[] = {"xdg-open", (char *)url, NULL};
	pid_t pid;
	if (posix_spawnp(&pid, "xdg-open", &fa, NULL, argv, environ) != 0)
		pid = 0;
	posix_spawn_file_actions_destroy(&fa);
	(void)pid; /* reaped when we exit; xdg-open returns at once */
}

/* The value of key in the query string q (up to the first space), into out;
 * only base64url characters are taken. */
static bool query_param(const char *q, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);
	for (const char *p = q; p && *p && *p != ' ';) {
		if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
			p += kl + 1;
			size_t n = 0;
			while (*p && *p != '&' && *p != ' ' && n + 1 < cap)
				out[n++] = *p++;
			out[n] = 0;
			return n > 0;
		}
		p = strchr(p, '&');
		if (p)
			p++;
	}
	return false;
}

static void answer(int fd, int status, const char *text)
{
	char *resp = xasprintf("HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
	                       "Cache-Control: no-store\r\nConnection: close\r\n"
	                       "Content-Security-Policy: default-src 'none'\r\n\r\n"
	                       "<!doctype html><title>roost</title><p>%s</p>\n",
	                       status, status == 200 ? "OK" : "Bad Request", text);
	(void)write_all(fd, resp, strlen(resp));
	free(resp);
}

/* Wait for the browser's GET /callback with our state: its code into code,
 * 0; -ETIMEDOUT; -EACCES the provider or the hub refused (why in code). The
 * connection stays open in *conn for the answer. */
static int wait_callback(int lfd, const char *state, char *code, size_t cap, int *conn)
{
	time_t end = time(NULL) + SSO_WAIT_S;
	for (;;) {
		time_t left = end - time(NULL);
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left * 1000) <= 0)
			return -ETIMEDOUT;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		struct timeval tv = {.tv_sec = SSO_READ_S};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		char head[SSO_HEAD_MAX + 1];
		size_t n = 0;
		while (n < SSO_HEAD_MAX && !memmem(head, n, "\r\n\r\n", 4)) {
			ssize_t got = read(fd, head + n, SSO_HEAD_MAX - n);
			if (got <= 0)
				break;
			n += (size_t)got;
		}
		head[n] = 0;
		char st[SSO_PARAM_MAX] = "", err[SSO_PARAM_MAX] = "";
		if (strncmp(head, "GET /callback?", 14) != 0) {
			answer(fd, 404, "Not found.");
			close(fd);
			continue; /* a browser also asks for /favicon.ico */
		}
		const char *q = head + 14;
		if (!query_param(q, "state", st, sizeof st) || strcmp(st, state) != 0) {
			/* not our flow: another page cannot make us take its code */
			answer(fd, 400, "This sign-in is not the one roost login is waiting for.");
			close(fd);
			continue;
		}
		if (query_param(q, "error", err, sizeof err)) {
			snprintf(code, cap, "%s", err);
			*conn = fd;
			return -EACCES;
		}
		if (!query_param(q, "code", code, cap)) {
			answer(fd, 400, "The sign-in came back without a code.");
			close(fd);
			continue;
		}
		*conn = fd;
		return 0;
	}
}

int cmd_login_sso(struct opts *o)
{
	if (!o->hub) {
		fprintf(stderr, "usage: roost login --sso --hub URL [--cacert CA.pem]\n");
		return 2;
	}
	struct client c = {0};
	c.hub = xstrdup(o->hub);
	size_t n = strlen(c.hub);
	while (n > 0 && c.hub[n - 1] == '/')
		c.hub[--n] = 0;
	c.cacert = o->cacert ? realpath(o->cacert, NULL) : NULL;
	if (o->cacert && !c.cacert) {
		fprintf(stderr, "roost login: cannot read --cacert %s\n", o->cacert);
		client_close(&c);
		return 2;
	}
	c.curl = client_curl(&c);
	int rc = 1, lfd = -1, conn = -1;
	char *url = xasprintf("%s/api/v1/oidc", c.hub);
	json_t *info = client_call(&c, "GET", url, NULL, "login");
	free(url);
	url = NULL;
	const char *start = json_get_str(info, "start_url"), *name = json_get_str(info, "name");
	if (info && (!json_is_true(json_object_get(info, "enabled")) || !start)) {
		fprintf(stderr,
		        "roost login: %s has no single sign-on (its operator starts it with "
		        "roost serve --oidc-issuer …); log in with --email\n",
		        c.hub);
		goto out;
	}
	if (!info)
		goto out;
	int port = 0;
	lfd = listen_loopback(&port);
	if (lfd < 0) {
		fprintf(stderr, "roost login: cannot listen on 127.0.0.1: %s\n", strerror(errno));
		goto out;
	}
	char state[64], verifier[64], chal[64];
	unsigned char d[crypto_hash_sha256_BYTES];
	random_b64(state);
	random_b64(verifier);
	crypto_hash_sha256(d, (const unsigned char *)verifier, strlen(verifier));
	jwt_b64url_encode(d, sizeof d, chal, sizeof chal);
	url = xasprintf("%s?cli_port=%d&cli_state=%s&cli_challenge=%s", start, port, state, chal);
	printf("Sign in with %s: open this URL in a browser on this machine\n  %s\n"
	       "Waiting for the browser (%d minutes; Ctrl-C to give up)…\n",
	       name ? name : "single sign-on", url, SSO_WAIT_S / 60);
	fflush(stdout);
	open_browser(url);
	char code[SSO_PARAM_MAX];
	int w = wait_callback(lfd, state, code, sizeof code, &conn);
	if (w == -ETIMEDOUT) {
		fprintf(stderr, "roost login: no sign-in came back within %d minutes\n",
		        SSO_WAIT_S / 60);
		goto out;
	}
	if (w == -EACCES) {
		fprintf(stderr, "roost login: the sign-in was refused: %s\n", code);
		answer(conn, 400, "The sign-in was refused; see roost login's output.");
		goto out;
	}
	char *xurl = xasprintf("%s/api/v1/oidc/exchange", c.hub);
	json_t *body = json_pack("{s:s, s:s}", "code", code, "verifier", verifier);
	json_t *r = client_call(&c, "POST", xurl, body, "login");
	json_decref(body);
	free(xurl);
	const char *tok = json_get_str(r, "token");
	const char *email = json_get_str(json_object_get(r, "user"), "email");
	if (tok && email && client_save_config(c.hub, tok, email, c.cacert) == 0) {
		char *path = client_config_path();
		printf("logged in to %s as %s (credentials in %s)\n", c.hub, email, path);
		free(path);
		answer(conn, 200, "Signed in to roost. You can close this tab.");
		rc = 0;
	} else {
		answer(conn, 400, "The sign-in failed; see roost login's output.");
	}
	json_decref(r);
out:
	if (conn >= 0)
		close(conn);
	if (lfd >= 0)
		close(lfd);
	free(url);
	json_decref(info);
	client_close(&c);
	return rc;
}
