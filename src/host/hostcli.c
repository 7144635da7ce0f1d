/* hostcli: roost host invite|join|run|status|get|rotate-url|revoke-url|rm,
 * roost hosts, roost policy: parse, call the agent or the hub, print.
 * Threads: the command's main thread (host run then starts the agent's). */
#include "hostcli.h"
#include "host.h"
#include "../client/bwlimit.h"
#include "../client/cmdline.h"
#include "../core/json.h"
#include "../core/path.h"
#include "../core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int host_invite(struct opts *o)
{
	int64_t secs = o->expires ? parse_duration(o->expires) : 3600;
	if (secs <= 0) {
		fprintf(stderr, "roost host invite: --expires takes a duration like 45m or 12h\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	char *url = client_ws_url(&c, "/hosts/invites", NULL);
	json_t *body = json_pack("{s:I}", "expires_in", (json_int_t)secs);
	json_t *r = client_call(&c, "POST", url, body, "host invite");
	json_decref(body);
	free(url);
	if (r && o->json)
		print_json(r);
	else if (r)
		printf(
		    "%s\n(one device may join workspace %s with it: roost host join URL --dir DIR "
		    "--label NAME)\n",
		    json_get_str(r, "url"), c.ws_name);
	int rc = r ? 0 : 1;
	json_decref(r);
	client_close(&c);
	return rc;
}

/* Write DIR/.roost/host.json (0600) atomically. */
static int save_identity(const char *dir, json_t *id)
{
	char *sd = xasprintf("%s/%s", dir, HOST_STATE_DIR);
	char *path = xasprintf("%s/host.json", sd);
	char *s = json_dumps(id, JSON_INDENT(2));
	int rc = mkdir_p(sd, 0700);
	if (rc == 0)
		rc = write_file_atomic(path, s, strlen(s), 0600);
	if (rc != 0) {
		fprintf(stderr, "roost host join: cannot write %s: %s\n", path, strerror(-rc));
		rc = -1;
	}
	free(s);
	free(sd);
	free(path);
	return rc;
}

static int host_join(struct opts *o)
{
	const char *u = o->npos >= 2 ? o->pos[1] : NULL;
	const char *mark = u ? strstr(u, "/host-invite/") : NULL;
	if (o->npos != 2 || !o->dir || !o->label) {
		fprintf(stderr,
		        "usage: roost host join URL --dir DIR --label NAME [--folders /a,/b]\n");
		return 2;
	}
	if (!mark || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) ||
	    !mark[13]) {
		fprintf(stderr, "roost host join: expected a URL like http://HUB/host-invite/TOKEN "
		                "(from roost host invite)\n");
		return 2;
	}
	char *idf = xasprintf("%s/%s/host.json", o->dir, HOST_STATE_DIR);
	struct stat st;
	bool joined = stat(idf, &st) == 0;
	free(idf);
	if (joined) {
		fprintf(stderr, "roost host join: %s has joined already (%s/%s/host.json)\n",
		        o->dir, o->dir, HOST_STATE_DIR);
		return 1;
	}
	if (mkdir_p(o->dir, 0777) != 0) {
		fprintf(stderr, "roost host join: cannot create %s: %s\n", o->dir, strerror(errno));
		return 1;
	}
	struct client c = {0};
	c.hub = xstrndup(u, (size_t)(mark - u));
	c.cacert = o->cacert ? realpath(o->cacert, NULL) : NULL;
	c.curl = client_curl(&c);
	char *api = client_invite_api(&c, mark + 13, "host", "roost host join");
	if (!api) {
		client_close(&c);
		return 1;
	}
	free(c.hub);
	c.hub = api; /* the URL may be the dashboard's page */
	json_t *folders = json_array();
	if (o->folders) {
		char *copy = xstrdup(o->folders), *save = NULL;
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
			json_array_append_new(folders, json_string(t));
		free(copy);
	}
	char *url = xasprintf("%s/api/v1/hosts/join", c.hub);
	json_t *body =
	    json_pack("{s:s, s:s, s:o}", "token", mark + 13, "label", o->label, "folders", folders);
	json_t *r = client_call(&c, "POST", url, body, "host join");
	json_decref(body);
	free(url);
	int rc = 1;
	const char *tok = json_get_str(r, "token");
	json_t *ws = json_object_get(r, "workspace"), *host = json_object_get(r, "host");
	if (tok) {
		/* The workspace's chunking, so uploads cut chunks as the hub expects. */
		char wsid[24];
		snprintf(wsid, sizeof wsid, "%lld",
		         (long long)json_integer_value(json_object_get(ws, "id")));
		struct client hc = {0};
		json_t *id = json_pack("{s:s, s:s, s:O, s:O, s:s}", "hub", c.hub, "token", tok,
		                       "workspace_id", json_object_get(ws, "id"), "host_id",
		                       json_object_get(host, "id"), "label", o->label);
		if (c.cacert)
			json_object_set_new(id, "cacert", json_string(c.cacert));
		if (client_open_with(&hc, c.hub, tok, c.cacert, NULL, wsid) == 0)
			json_object_set_new(id, "chunking",
			                    json_pack("{s:I, s:I, s:I}", "min",
			                              (json_int_t)hc.chunking.min, "avg",
			                              (json_int_t)hc.chunking.avg, "max",
			                              (json_int_t)hc.chunking.max));
		client_close(&hc);
		if (save_identity(o->dir, id) == 0) {
			printf("joined workspace %s as host %s (id %lld); run: roost host run "
			       "--dir %s\n",
			       json_get_str(ws, "name"), o->label,
			       (long long)json_integer_value(json_object_get(host, "id")), o->dir);
			rc = 0;
		}
		json_decref(id);
	}
	json_decref(r);
	client_close(&c);
	return rc;
}

static int host_run_cmd(struct opts *o)
{
	if (o->npos != 1 || !o->dir) {
		fprintf(stderr,
		        "usage: roost host run --dir DIR [--listen ADDR:PORT [--advertise-url "
		        "URL] [--tls-cert CERT.pem --tls-key KEY.pem]] [--heartbeat "
		        "SECONDS] [--cache-max BYTES] [--reserve BYTES] [--max-up RATE] "
		        "[--max-down RATE] "
		        "[--relay ADDR:PORT "
		        "[--relay-ca CA.pem]] [--host-ca CA.pem]\n");
		return 2;
	}
	struct host_config cfg = {.dir = o->dir,
	                          .listen = o->listen,
	                          .relay = o->relay,
	                          .relay_ca = o->relay_ca,
	                          .advertise_url = o->advertise_url,
	                          .tls_cert = o->tls_cert,
	                          .tls_key = o->tls_key,
	                          .peer_ca = o->host_ca};
	if (o->advertise_url && ((strncmp(o->advertise_url, "http://", 7) &&
	                          strncmp(o->advertise_url, "https://", 8)) ||
	                         strlen(o->advertise_url) > 512 || !o->listen)) {
		fprintf(stderr, "roost host run: --advertise-url takes an http(s) URL (at most 512 "
		                "bytes) and needs --listen\n");
		return 2;
	}
	if (!o->tls_cert != !o->tls_key || (o->tls_cert && !o->listen)) {
		fprintf(stderr,
		        "roost host run: --tls-cert and --tls-key go together, with --listen\n");
		return 2;
	}
	if (o->tls_cert && o->relay) {
		/* The relay speaks plain HTTP to the content server through its
		 * tunnel, which is TLS already. */
		fprintf(stderr, "roost host run: --relay needs a plain content server; drop "
		                "--tls-cert or --relay\n");
		return 2;
	}
	if (o->heartbeat && (cfg.heartbeat_s = atoi(o->heartbeat)) < 1) {
		fprintf(stderr, "roost host run: --heartbeat takes whole seconds (1 or more)\n");
		return 2;
	}
	if (o->cache_max && (cfg.cache_max = (int64_t)parse_bytes(o->cache_max)) <= 0) {
		fprintf(stderr, "roost host run: --cache-max takes bytes, e.g. 500M or 2G\n");
		return 2;
	}
	if (o->reserve && (cfg.reserve = (int64_t)parse_bytes(o->reserve)) <= 0) {
		fprintf(stderr, "roost host run: --reserve takes bytes, e.g. 500M or 2G\n");
		return 2;
	}
	double up = o->max_up ? bwlimit_parse(o->max_up) : 0;
	double down = o->max_down ? bwlimit_parse(o->max_down) : 0;
	if (up < 0 || down < 0) {
		fprintf(stderr,
		        "roost host run: %s takes bytes per second, e.g. 5MiB/s, 500K/s or 0 (no "
		        "limit)\n",
		        up < 0 ? "--max-up" : "--max-down");
		return 2;
	}
	bwlimit_set(up, down);
	return host_run(&cfg) == 0 ? 0 : 1;
}

static int host_status(struct opts *o)
{
	if (o->npos != 1 || !o->dir) {
		fprintf(stderr, "usage: roost host status --dir DIR [--json]\n");
		return 2;
	}
	char *idf = xasprintf("%s/%s/host.json", o->dir, HOST_STATE_DIR);
	char *sf = xasprintf("%s/%s/status.json", o->dir, HOST_STATE_DIR);
	json_t *id = json_load_file(idf, 0, NULL);
	json_t *st = json_load_file(sf, 0, NULL);
	free(idf);
	free(sf);
	if (!id) {
		fprintf(stderr, "roost host status: %s is not a joined host folder\n", o->dir);
		json_decref(st);
		return 1;
	}
	if (!st)
		st = json_pack("{s:b, s:s}", "running", 0, "state", "never run");
	/* A status left by a process that died without a word is not running. */
	int64_t pid = 0;
	if (json_is_true(json_object_get(st, "running")) &&
	    (!json_get_int(st, "pid", &pid) || kill((pid_t)pid, 0) != 0)) {
		json_object_set_new(st, "running", json_false());
		json_object_set_new(st, "state", json_string("stopped"));
	}
	/* Paused or not is the file's to say, whether the agent runs or not. */
	char *pf = xasprintf("%s/%s/%s", o->dir, HOST_STATE_DIR, HOST_PAUSED_FILE);
	bool paused = access(pf, F_OK) == 0;
	free(pf);
	json_object_set_new(st, "paused", json_boolean(paused));
	json_object_set(st, "host_id", json_object_get(id, "host_id"));
	json_object_set(st, "label", json_object_get(id, "label"));
	json_object_set(st, "hub", json_object_get(id, "hub"));
	json_object_set(st, "workspace_id", json_object_get(id, "workspace_id"));
	if (o->json) {
		print_json(st);
	} else {
		char when[32] = "never";
		int64_t ls = 0;
		if (json_get_int(st, "last_sync", &ls) && ls > 0)
			fmt_time(ls, when);
		printf(
		    "host %s (id %lld) of %s\n  %s, %s; queue %lld; last sync %s; change %lld\n%s",
		    json_get_str(st, "label"),
		    (long long)json_integer_value(json_object_get(st, "host_id")),
		    json_get_str(st, "hub"),
		    json_is_true(json_object_get(st, "running")) ? "running" : "not running",
		    json_get_str(st, "state") ? json_get_str(st, "state") : "?",
		    (long long)json_integer_value(json_object_get(st, "queue")), when,
		    (long long)json_integer_value(json_object_get(st, "seq")),
		    paused ? "  paused: nothing is sent or applied (roost host resume)\n" : "");
		json_t *ns = json_object_get(st, "no_space"),
		       *io = json_object_get(st, "io_errors");
		int64_t n = json_integer_value(json_object_get(ns, "files"));
		if (n > 0)
			printf(
			    "  waiting for space: %lld file%s, %lld bytes (retried every minute)\n",
			    (long long)n, n == 1 ? "" : "s",
			    (long long)json_integer_value(json_object_get(ns, "bytes")));
		n = json_integer_value(json_object_get(io, "files"));
		if (n > 0)
			printf(
			    "  write errors: %lld file%s not written, the last %s: %s (retrying)\n",
			    (long long)n, n == 1 ? "" : "s",
			    json_get_str(io, "last_path") ? json_get_str(io, "last_path") : "?",
			    json_get_str(io, "last_error") ? json_get_str(io, "last_error") : "?");
	}
	json_decref(st);
	json_decref(id);
	return 0;
}

/* roost host pause|resume --dir DIR: the state is a file, DIR/.roost/paused,
 * so it outlives the agent; a running agent sees it within a heartbeat. */
static int host_pause(struct opts *o, bool pause)
{
	const char *cmd = pause ? "pause" : "resume";
	if (o->npos != 1 || !o->dir) {
		fprintf(stderr, "usage: roost host %s --dir DIR\n", cmd);
		return 2;
	}
	char *idf = xasprintf("%s/%s/host.json", o->dir, HOST_STATE_DIR);
	char *pf = xasprintf("%s/%s/%s", o->dir, HOST_STATE_DIR, HOST_PAUSED_FILE);
	struct stat st;
	int rc = 1;
	if (stat(idf, &st) != 0) {
		fprintf(stderr, "roost host %s: %s is not a joined host folder\n", cmd, o->dir);
		goto out;
	}
	bool was = stat(pf, &st) == 0;
	if (pause && !was) {
		char when[32], line[64];
		fmt_time(now_ms(), when);
		int n = snprintf(line, sizeof line, "paused %s\n", when);
		if (write_file_atomic(pf, line, (size_t)n, 0600) != 0) {
			fprintf(stderr, "roost host pause: cannot write %s: %s\n", pf,
			        strerror(errno));
			goto out;
		}
	} else if (!pause && was && unlink(pf) != 0) {
		fprintf(stderr, "roost host resume: cannot remove %s: %s\n", pf, strerror(errno));
		goto out;
	}
	if (!o->quiet) {
		if (pause == was)
			printf("%s was %s already\n", o->dir, pause ? "paused" : "not paused");
		else if (pause)
			printf(
			    "paused %s: nothing is sent to the hub or applied from it until "
			    "'roost host resume --dir %s'; the agent keeps sending heartbeats and "
			    "serving what it holds\n",
			    o->dir, o->dir);
		else
			printf(
			    "resumed %s: changes made meanwhile, on either side, are synced now\n",
			    o->dir);
	}
	rc = 0;
out:
	free(idf);
	free(pf);
	return rc;
}

/* roost host get --dir DIR PATH [OUT]: a file read through this host — its
 * local copy, or for an on-demand file the cache, filled from other hosts or
 * the hub as needed (the LRU cache keeps it for next time). */
static int host_get(struct opts *o)
{
	if (o->npos < 2 || o->npos > 3 || !o->dir) {
		fprintf(stderr, "usage: roost host get --dir DIR PATH [OUT|-]\n");
		return 2;
	}
	const char *why;
	char *path = path_normalize(o->pos[1], strlen(o->pos[1]), &why);
	if (!path) {
		fprintf(stderr, "roost host get: %s: %s\n", o->pos[1], why);
		return 2;
	}
	struct host_config cfg = {.dir = o->dir};
	struct host h;
	int rc = 1, fd = -1;
	if (host_open(&h, &cfg, false) != 0)
		goto out;
	const char *out = o->npos == 3 ? o->pos[2] : strrchr(path, '/') + 1;
	bool to_stdout = strcmp(out, "-") == 0;
	char *tmp = to_stdout ? NULL : xasprintf("%s.roost-XXXXXX", out);
	fd = to_stdout ? STDOUT_FILENO : mkstemp(tmp);
	if (fd < 0) {
		fprintf(stderr, "roost host get: cannot write %s: %s\n", out, strerror(errno));
		free(tmp);
		goto out;
	}
	struct ientry e;
	int found = idx_get(h.db, path, &e);
	int err = 0;
	if (found == 1 && e.local) {
		int src = open_beneath(&h, path, O_RDONLY, 0);
		char buf[1 << 16];
		ssize_t n = src < 0 ? -1 : 0;
		while (src >= 0 && (n = read(src, buf, sizeof buf)) > 0 &&
		       write_all(fd, buf, (size_t)n) == 0)
			;
		err = src < 0 || n != 0 ? -EIO : 0;
		if (src >= 0)
			close(src);
	} else {
		bool gone = false;
		json_t *m = fetch_manifest(&h, h.c.curl, path, 0, &gone);
		err = m ? fetch_content(&h, h.db, h.c.curl, m, fd, true) : -ENOENT;
		json_decref(m);
	}
	if (!to_stdout) {
		mode_t um = umask(0);
		umask(um);
		if (err == 0 &&
		    (fchmod(fd, 0666 & ~um) != 0 || fsync(fd) != 0 || rename(tmp, out) != 0))
			err = -errno;
		close(fd);
		if (err)
			unlink(tmp);
		free(tmp);
	}
	if (err)
		fprintf(stderr, "roost host get: %s: %s\n", path,
		        err == -ENOENT ? "no such file in the workspace" : strerror(-err));
	rc = err ? 1 : 0;
out:
	host_close(&h);
	free(path);
	return rc;
}

static int64_t find_host(struct client *c, const char *which);

/* roost host rotate-url HOST [GRACE_S] | roost host revoke-url HOST */
static int host_retire_url(struct opts *o, bool revoke)
{
	if (o->npos < 2 || o->npos > (revoke ? 2 : 3)) {
		fprintf(stderr, "usage: roost host rotate-url HOST [GRACE_SECONDS]\n"
		                "       roost host revoke-url HOST\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	int rc = 1;
	int64_t id = find_host(&c, o->pos[1]);
	if (id) {
		char rel[96];
		snprintf(rel, sizeof rel, "/hosts/%lld/%s", (long long)id,
		         revoke ? "revoke-url" : "rotate-url");
		char *url = client_ws_url(&c, rel, NULL);
		json_t *body = json_object();
		if (o->npos == 3)
			json_object_set_new(body, "grace_s", json_integer(atoll(o->pos[2])));
		json_t *r =
		    client_call(&c, "POST", url, body, revoke ? "revoke-url" : "rotate-url");
		json_decref(body);
		free(url);
		if (r && o->json)
			print_json(r);
		else if (r)
			printf("%s: the URL of host %s %s; it attaches again with a new one\n",
			       revoke ? "revoked" : "rotated", o->pos[1],
			       revoke ? "stops now" : "keeps working through the grace period");
		rc = r ? 0 : 1;
		json_decref(r);
	}
	client_close(&c);
	return rc;
}

/* roost host rm HOST: the host is removed for good (its credential, its
 * relay URL; its copies stop counting and are made again elsewhere). */
static int host_rm(struct opts *o)
{
	if (o->npos != 2) {
		fprintf(stderr, "usage: roost host rm HOST\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	int rc = 1;
	int64_t id = find_host(&c, o->pos[1]);
	if (id) {
		char rel[64];
		snprintf(rel, sizeof rel, "/hosts/%lld", (long long)id);
		char *url = client_ws_url(&c, rel, NULL);
		json_t *r = client_call(&c, "DELETE", url, NULL, "host rm");
		free(url);
		if (r && o->json)
			print_json(r);
		else if (r) {
			int64_t n = json_integer_value(json_object_get(r, "copies_gone"));
			printf(
			    "removed host %s: its credential and relay URL stop working; %lld %s "
			    "made again elsewhere\n",
			    o->pos[1], (long long)n,
			    plural(n, "copy of a chunk is", "copies of chunks are"));
		}
		rc = r ? 0 : 1;
		json_decref(r);
	}
	client_close(&c);
	return rc;
}

int cmd_host(struct opts *o)
{
	const char *sub = o->npos ? o->pos[0] : "";
	if (strcmp(sub, "invite") == 0)
		return host_invite(o);
	if (strcmp(sub, "join") == 0)
		return host_join(o);
	if (strcmp(sub, "run") == 0)
		return host_run_cmd(o);
	if (strcmp(sub, "status") == 0)
		return host_status(o);
	if (strcmp(sub, "get") == 0)
		return host_get(o);
	if (strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0)
		return host_pause(o, sub[0] == 'p');
	if (strcmp(sub, "rotate-url") == 0 || strcmp(sub, "revoke-url") == 0)
		return host_retire_url(o, sub[2] == 'v');
	if (strcmp(sub, "rm") == 0)
		return host_rm(o);
	fprintf(stderr, "usage: roost host invite [--expires 1h] [--json]\n"
	                "       roost host join URL --dir DIR --label NAME [--folders /a,/b]\n"
	                "       roost host run --dir DIR [--listen ADDR:PORT [--advertise-url URL] "
	                "[--tls-cert CERT.pem --tls-key KEY.pem]] [--heartbeat S] [--cache-max "
	                "BYTES] [--max-up RATE] [--max-down RATE] [--relay ADDR:PORT [--relay-ca "
	                "CA.pem]] [--host-ca CA.pem]\n"
	                "       roost host status --dir DIR [--json]\n"
	                "       roost host pause|resume --dir DIR\n"
	                "       roost host get --dir DIR PATH [OUT|-]\n"
	                "       roost host rotate-url HOST [GRACE_SECONDS]  |  roost host "
	                "revoke-url HOST\n"
	                "       roost host rm HOST\n");
	return strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0 ? 0 : 2;
}

static void print_hosts(json_t *r, const struct client *c)
{
	(void)c;
	size_t i;
	json_t *h;
	json_array_foreach(json_object_get(r, "hosts"), i, h)
	{
		char seen[32] = "never", fr[32] = "?";
		int64_t v;
		if (json_get_int(h, "last_seen", &v))
			fmt_time(v, seen);
		if (json_get_int(h, "free_bytes", &v))
			human_bytes(v, fr);
		/* Its direct URL (--advertise-url or --listen) and its public one
		 * through a relay (--relay), each "-" when it has none. */
		const char *direct = json_get_str(h, "url"), *pub = json_get_str(h, "tunnel_url");
		printf("%-4lld %-16s %-8s seen %s  free %s  queue %lld  direct %s  public %s\n",
		       (long long)json_integer_value(json_object_get(h, "id")),
		       json_get_str(h, "label"), json_get_str(h, "status"), seen, fr,
		       (long long)json_integer_value(json_object_get(h, "queue")),
		       direct ? direct : "-", pub ? pub : "-");
	}
}

int cmd_hosts(struct opts *o)
{
	if (need_args(o, 0, 0, "hosts", "[--json]"))
		return 2;
	return show(o, "/hosts", NULL, "hosts", NULL, print_hosts);
}

/* A host given by label or id: its id, or 0 after printing why. */
static int64_t find_host(struct client *c, const char *which)
{
	char *url = client_ws_url(c, "/hosts", NULL);
	json_t *r = client_call(c, "GET", url, NULL, "hosts");
	free(url);
	int64_t id = 0;
	size_t i;
	json_t *h;
	json_array_foreach(json_object_get(r, "hosts"), i, h)
	{
		if (strcmp(json_get_str(h, "label"), which) == 0 ||
		    parse_id(which) == json_integer_value(json_object_get(h, "id")))
			id = json_integer_value(json_object_get(h, "id"));
	}
	if (r && !id)
		fprintf(stderr, "roost: no host %s in workspace %s (see roost hosts)\n", which,
		        c->ws_name);
	json_decref(r);
	return id;
}

int cmd_policy(struct opts *o)
{
	bool set = o->npos == 4 && strcmp(o->pos[0], "set") == 0;
	bool ls = o->npos == 2 && strcmp(o->pos[0], "ls") == 0;
	if (!set && !ls) {
		fprintf(stderr,
		        "usage: roost policy set HOST FOLDER pinned|on-demand|exclude|inherit\n"
		        "       roost policy ls HOST [--json]\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	int rc = 1;
	int64_t id = find_host(&c, o->pos[1]);
	if (id) {
		char rel[64];
		snprintf(rel, sizeof rel, "/hosts/%lld/policies", (long long)id);
		char *url = client_ws_url(&c, rel, NULL);
		json_t *body =
		    set ? json_pack("{s:s, s:s}", "folder", o->pos[2], "mode", o->pos[3]) : NULL;
		json_t *r = client_call(&c, set ? "PUT" : "GET", url, body, "policy");
		json_decref(body);
		free(url);
		if (r && o->json) {
			print_json(r);
		} else if (r && set) {
			printf("%s on %s: %s\n", json_get_str(r, "folder"), o->pos[1],
			       json_get_str(r, "mode"));
		} else if (r) {
			size_t i;
			json_t *p;
			if (!json_array_size(json_object_get(r, "policies")))
				printf("(none: %s keeps the whole workspace pinned)\n", o->pos[1]);
			json_array_foreach(json_object_get(r, "policies"), i, p) printf(
			    "%-10s %s\n", json_get_str(p, "mode"), json_get_str(p, "folder"));
		}
		rc = r ? 0 : 1;
		json_decref(r);
	}
	client_close(&c);
	return rc;
}
