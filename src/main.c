/* roost: one binary, many subcommands. */
#include "cli/cli.h"
#include "client/cmdline.h"
#include "core/util.h"
#include "host/hostcli.h"
#include "hub/backup.h"
#include "hub/hub.h"
#include "hub/account.h"
#include "hub/init.h"
#include "hub/jobs/jobs.h"
#include "hub/lifecycle.h"
#include "relay/relay.h"

#include <curl/curl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEMO_HOST_PORT 3212 /* the demo host's content server */

static const char usage_text[] =
    "roost " ROOST_VERSION " — self-hosted file sync and share\n"
    "\n"
    "Hub:\n"
    "  roost init --data DIR --email EMAIL [--db URL]\n"
    "              create a hub (password: $ROOST_PASSWORD or prompt)\n"
    "  roost serve --data DIR [--db URL] [--listen ADDR] [--api-port 3210]\n"
    "              [--content-port 3211] [--dashboard-port 6791] [--heartbeat 15]\n"
    "              [--tls-cert CERT.pem --tls-key KEY.pem]  HTTPS on every port\n"
    "              [--host-ca CA.pem]  the CA bundle the hub trusts when it fetches chunks\n"
    "              from hosts (HTTPS content servers) and relay URLs (default: the system's)\n"
    "              [--rate-limit 1000]  (requests/s per token, twice that in a burst; 0: off)\n"
    "              [--login-throttle 5]  failed password attempts per account (4x per client\n"
    "              address) before growing delays (429 + Retry-After); 0: off\n"
    "              [--max-conns-per-ip 128]  connections at once per client address, over\n"
    "              all ports (0: no limit; behind a proxy every client is the proxy)\n"
    "              [--public-url https://files.example.com]  the balancer's origin: the\n"
    "              start of every link the hub makes (invites, shares, signed URLs)\n"
    "              [--trusted-proxy ADDR[,ADDR]]  load balancers whose X-Forwarded-For and\n"
    "              X-Forwarded-Proto name the client (throttles, audit; docs/scale-out.md)\n"
    "              [--head-timeout 15]  seconds a connection has to send a request head\n"
    "              [--web-dir DIR]  the dashboard's built assets (default: an installed\n"
    "              binary's PREFIX/share/roost/web, else the build's)\n"
    "              [--rotate-keys-every 30d]  a new token-signing key once the key is that\n"
    "              old (default: never; old keys verify what they signed until it expires)\n"
    "              [--session-lifetime 90d] [--session-idle 30d]  logins end that long after\n"
    "              they began, or after that long unused (0: no idle timeout)\n"
    "              [--oidc-issuer URL --oidc-client-id ID --oidc-client-secret-file FILE\n"
    "              [--oidc-name NAME] [--oidc-redirect-uri URL]]  sign-in with an OpenID\n"
    "              Connect provider (\"Sign in with NAME\"; the redirect URI defaults to\n"
    "              PUBLIC-URL/api/v1/oidc/callback, else\n"
    "              http://127.0.0.1:DASHBOARD-PORT/api/v1/oidc/callback)\n"
    "              [--store s3://BUCKET/PREFIX?endpoint=URL&region=R[&addressing=path|virtual]]\n"
    "              keeps the chunks in an S3-compatible bucket (keys PREFIX/ab/<sha256>;\n"
    "              the bucket is checked at start), or --store PATH in PATH/objects;\n"
    "              default $ROOST_STORE, else DIR/objects. Credentials: AWS_ACCESS_KEY_ID,\n"
    "              AWS_SECRET_ACCESS_KEY (, AWS_SESSION_TOKEN) or [--store-credentials FILE]\n"
    "              (mode 0600; lines access_key_id=..., secret_access_key=...)\n"
    "              --db postgresql://USER@HOST:PORT/DB keeps the metadata in PostgreSQL;\n"
    "              without it, SQLite in DIR/roost.db. Chunks are stored in DIR.\n"
    "  roost demo [--data DIR] [--host-port 3212] [--relay-port 3213] [--tunnel-port 3214]\n"
    "              a hub, a host and a relay on loopback, a demo login\n"
    "  roost admin rotate-keys --data DIR [--db URL]  new token-signing key\n"
    "  roost admin gc --data DIR [--retention 7d]     expire versions, purge the trash, free "
    "chunks\n"
    "  roost admin scrub --data DIR [--job-rate 50M]  re-hash stored chunks, repair from hosts\n"
    "  roost admin replicate --data DIR               copy back chunks the hub lacks\n"
    "              (scrub, replicate: [--host-ca CA.pem] as roost serve's, to reach hosts)\n"
    "  roost admin remove-user EMAIL --data DIR       take a user off the hub: their logins,\n"
    "              tokens, links and memberships stop; their files stay\n"
    "  roost admin jobs --data DIR [--json]           background jobs: progress and results\n"
    "  roost admin backup --data DIR [--db URL] --to DEST  a consistent backup while the hub\n"
    "              serves: the metadata, the chunks it names, a manifest; again into the same\n"
    "              DEST copies only new chunks (docs/operations.md)\n"
    "  roost admin restore --from DEST --data NEWDIR [--db URL]  a new hub from a backup,\n"
    "              every chunk verified (--db: an empty PostgreSQL database for a pg backup)\n"
    "  roost admin reset-password EMAIL --data DIR [--expires 24h]  a one-use link (printed) to\n"
    "              set a new password; it ends the account's sessions ([--listen ADDR]\n"
    "              [--dashboard-port N] [--tls-cert F] as roost serve's: the link's address)\n"
    "  roost relay --data DIR --hub URL (--cert F --key F | --self-signed) [--public ADDR:8443]\n"
    "              [--tunnel ADDR:8444] [--name HOST:PORT] [--hub-cacert F]\n"
    "              [--limit SCOPE.KIND=N]...  the relay for hosts behind NAT (docs/relay.md)\n"
    "\n"
    "Client (the hub and token are saved by login):\n"
    "  roost login --hub URL --email EMAIL [--cacert CA.pem] [--code CODE]\n"
    "                 (password: $ROOST_PASSWORD or prompt; a two-factor code: --code,\n"
    "                 $ROOST_TOTP_CODE or prompt)\n"
    "  roost login --sso --hub URL [--cacert CA.pem]  sign in with the hub's identity provider\n"
    "              in a browser (the URL is printed too, for a browser on another machine)\n"
    "  roost logout\n"
    "  roost ls [PATH] [--json]\n"
    "  roost put LOCAL [REMOTE] [--parallel N]  upload; re-running resumes\n"
    "  roost put DIR [REMOTE] [-q] [--json]     a folder's regular files to REMOTE (default\n"
    "                 /DIR's name), a few at once; a rerun sends only new and changed files;\n"
    "                 links and special files are skipped with a note\n"
    "  roost get REMOTE [LOCAL|-] [--version N] [--force] [-v|--verbose] [--json]\n"
    "                 [--host-ca CA.pem] [--parallel N]  download, verified, each chunk from\n"
    "                 the nearest source (hosts holding it, directly or through their relay,\n"
    "                 then the hub); a different local file is kept unless --force\n"
    "  roost get -r REMOTE DIR [--force] [-q] [--json]  a folder's tree into DIR, a few files\n"
    "                 at once; files DIR already has are not fetched again\n"
    "  roost mkdir PATH [-p]\n"
    "  roost mv FROM TO\n"
    "  roost rm PATH [-r] [--permanent]        to the trash; -r for a folder with files in it;\n"
    "                 --permanent: for good, not to the trash (owners, admins)\n"
    "  roost trash [--limit N | --all] [--json]  deleted files, the last deleted first\n"
    "  roost trash restore PATH                 a file (or a folder's files) back where it was\n"
    "  roost trash empty [PATH] [--yes]         delete for good (owners, admins); asks first\n"
    "  roost versions PATH [--json]\n"
    "  roost usage [--json]\n"
    "  roost watch [--since SEQ] [--json]       follow the change feed (Ctrl-C stops)\n"
    "  roost url PATH [--expires 1h] [--version N]  a signed download link, no login needed\n"
    "  roost share PATH [--write] [--expires 7d] [--password PW]  a share link\n"
    "  roost shares [--json]                    the workspace's share links\n"
    "  roost unshare ID\n"
    "  roost audit [--limit N] [--action A] [--json]  the audit log (owners, admins)\n"
    "  roost token create --name NAME [--expires D] | token ls | token revoke ID  app passwords\n"
    "  roost sessions [--json] | sessions revoke ID   your logins (CLI, browsers), ended at will\n"
    "  roost passwd   change your password (old: $ROOST_PASSWORD, new: $ROOST_NEW_PASSWORD,\n"
    "                 else prompts); ends your other sessions and app passwords\n"
    "  roost account [--json]  |  roost account set-name NAME   you; your display name\n"
    "  roost 2fa enable [--code CODE] | disable [--code CODE] | status\n"
    "                 two-factor authentication (TOTP): enable shows the key for an\n"
    "                 authenticator app, --code confirms it and prints recovery codes\n"
    "  roost 2fa require [on|off]               (owners) the workspace requires 2FA\n"
    "  roost workspaces [--json]  |  roost workspaces create NAME\n"
    "  roost workspace show [--json]            every setting of the workspace\n"
    "  roost workspace set KEY VALUE            one of them (owners, admins), e.g. quota_bytes\n"
    "                 10GiB, trash_days 14, gc_retention_s 7d, chunk_avg 512K\n"
    "  roost workspace delete NAME [--confirm NAME]  (owner) everything in it, for good\n"
    "  roost members [--json]\n"
    "  roost acl PATH  |  roost acl set PATH EMAIL none|read|write|manage  |  roost acl rm PATH "
    "EMAIL\n"
    "  roost invite [--role member|admin|owner] [--expires 7d]   prints an invite URL\n"
    "  roost join INVITE_URL --email EMAIL [--name NAME] [--code CODE]  accept it\n"
    "                 (password: $ROOST_PASSWORD or prompt)\n"
    "\n"
    "Hosts (docs/host.md):\n"
    "  roost host invite [--expires 1h]         (owners, admins) prints a host invite URL\n"
    "  roost host join URL --dir DIR --label NAME [--folders /a,/b]\n"
    "  roost host run --dir DIR [--listen ADDR:PORT] [--heartbeat 5] [--cache-max 1G]\n"
    "                 [--advertise-url URL] [--tls-cert CERT.pem --tls-key KEY.pem]\n"
    "                 [--relay ADDR:PORT [--relay-ca CA.pem]] [--host-ca CA.pem]\n"
    "                 [--max-up RATE] [--max-down RATE]  e.g. 5MiB/s: the agent's total over\n"
    "                 all its transfers with the hub and other hosts\n"
    "  roost host status --dir DIR [--json]\n"
    "  roost host pause|resume --dir DIR        stop and restart syncing (heartbeats and\n"
    "                                           serving go on; kept across restarts)\n"
    "  roost hosts [--json]                     hosts of the workspace, online or not, with\n"
    "                                           their direct and public (relay) URLs\n"
    "  roost policy set HOST FOLDER pinned|on-demand|exclude|inherit  |  roost policy ls HOST\n"
    "Client options: --workspace NAME (or $ROOST_WORKSPACE), -q/--quiet.\n";

static int parse_port(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 1 || v > 65535)
		return -1;
	*out = (int)v;
	return 0;
}

struct hub_args {
	const char *data, *email;
	struct hub_config cfg;
};

/* Is o one of parse_hub_args' options (all take a value)? Only to tell a
 * value-less last option from an unknown one: the chain below decides the rest. */
static bool hub_option(const char *o)
{
	static const char *const known[] = {"--api-port",
	                                    "--content-port",
	                                    "--dashboard-port",
	                                    "--data",
	                                    "--db",
	                                    "--rate-limit",
	                                    "--max-conns-per-ip",
	                                    "--head-timeout",
	                                    "--login-throttle",
	                                    "--gc-every",
	                                    "--scrub-every",
	                                    "--replicate-every",
	                                    "--retention",
	                                    "--job-rate",
	                                    "--tls-cert",
	                                    "--tls-key",
	                                    "--host-ca",
	                                    "--store",
	                                    "--store-credentials",
	                                    "--web-dir",
	                                    "--heartbeat",
	                                    "--email",
	                                    "--listen",
	                                    "--oidc-issuer",
	                                    "--oidc-client-id",
	                                    "--oidc-client-secret-file",
	                                    "--oidc-name",
	                                    "--oidc-redirect-uri",
	                                    "--rotate-keys-every",
	                                    "--session-lifetime",
	                                    "--session-idle",
	                                    "--trusted-proxy",
	                                    "--public-url"};
	for (size_t i = 0; i < sizeof known / sizeof *known; i++)
		if (strcmp(o, known[i]) == 0)
			return true;
	return false;
}

/* http(s)://HOST[:PORT] with no path (a trailing '/' is dropped in place),
 * nothing a link could be broken out of. */
static bool public_url_ok(char *v)
{
	const char *h = strncmp(v, "https://", 8) == 0  ? v + 8
	                : strncmp(v, "http://", 7) == 0 ? v + 7
	                                                : NULL;
	size_t n = strlen(v);
	if (n > 1 && v[n - 1] == '/')
		v[--n] = 0;
	return h && *h && n <= 255 && !strpbrk(h, "/\\ \"<>@?#'`");
}

static int parse_hub_args(const char *cmd, int argc, char **argv, struct hub_args *a)
{
	memset(a, 0, sizeof *a);
	a->cfg.api_port = API_PORT_DEFAULT;
	a->cfg.content_port = CONTENT_PORT_DEFAULT;
	a->cfg.dashboard_port = DASHBOARD_PORT_DEFAULT;
	a->cfg.rate_limit = RATE_LIMIT_DEFAULT;
	a->cfg.login_free = LOGIN_FREE_DEFAULT;
	a->cfg.max_conns_per_ip = CONNS_PER_IP_DEFAULT;
	a->cfg.head_timeout_s = HEAD_TIMEOUT_DEFAULT;
	a->cfg.gc_every_ms = a->cfg.scrub_every_ms = a->cfg.replicate_every_ms = -1;
	a->cfg.session_lifetime_ms = a->cfg.session_idle_ms = -1;
	a->cfg.gc_retention_ms = -1;
	const char *store = getenv("ROOST_STORE"); /* --store's default (an option file) */
	a->cfg.store_url = store && *store ? store : NULL;
	for (int i = 0; i < argc; i += 2) { /* every option takes a value */
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int *port = strcmp(o, "--api-port") == 0         ? &a->cfg.api_port
		            : strcmp(o, "--content-port") == 0   ? &a->cfg.content_port
		            : strcmp(o, "--dashboard-port") == 0 ? &a->cfg.dashboard_port
		                                                 : NULL;
		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			cmdline_help(stdout, cmd, NULL);
			return CMDLINE_HELP;
		}
		if (!v) {
			/* a last option without its value: known, or not an option at all */
			bool known = hub_option(o);
			fprintf(stderr,
			        known ? "roost %s: %s needs a value\n"
			              : "roost %s: unknown option %s\n",
			        cmd, o);
			if (!known)
				cmdline_help(stderr, cmd, NULL);
			return 2;
		}
		if (port) {
			if (parse_port(v, port) < 0) {
				fprintf(stderr, "roost %s: %s takes a port number 1..65535\n", cmd,
				        o);
				return 2;
			}
		} else if (strcmp(o, "--data") == 0) {
			a->data = v;
		} else if (strcmp(o, "--trusted-proxy") == 0) {
			a->cfg.trusted_proxies = v;
		} else if (strcmp(o, "--public-url") == 0) {
			if (!public_url_ok(argv[i + 1])) {
				fprintf(
				    stderr,
				    "roost %s: --public-url takes the origin clients reach the hub "
				    "at, like https://files.example.com (no path)\n",
				    cmd);
				return 2;
			}
			a->cfg.public_url = v;
		} else if (strcmp(o, "--db") == 0) {
			a->cfg.db_url = v;
		} else if (strcmp(o, "--rate-limit") == 0) {
			int64_t n = strcmp(v, "0") == 0 ? 0 : parse_id(v);
			if (n < 0 || n > 1000000) {
				fprintf(
				    stderr,
				    "roost %s: --rate-limit takes requests per second (0: off)\n",
				    cmd);
				return 2;
			}
			a->cfg.rate_limit = (double)n;
		} else if (strcmp(o, "--max-conns-per-ip") == 0 ||
		           strcmp(o, "--head-timeout") == 0) {
			bool conns = o[2] == 'm';
			int64_t n = strcmp(v, "0") == 0 && conns ? 0 : parse_id(v);
			if (n < 0 || n > 100000 || (!conns && n == 0)) {
				fprintf(stderr, "roost %s: %s takes %s\n", cmd, o,
				        conns ? "a number of connections (0: no limit)"
				              : "a number of seconds (1 or more)");
				return 2;
			}
			*(conns ? &a->cfg.max_conns_per_ip : &a->cfg.head_timeout_s) = (int)n;
		} else if (strcmp(o, "--login-throttle") == 0) {
			int64_t n = strcmp(v, "0") == 0 ? 0 : parse_id(v);
			if (n < 0 || n > 10000) {
				fprintf(stderr,
				        "roost %s: --login-throttle takes the failed password "
				        "attempts per account before delays (0: off)\n",
				        cmd);
				return 2;
			}
			a->cfg.login_free = (int)n;
		} else if (strcmp(o, "--gc-every") == 0 || strcmp(o, "--scrub-every") == 0 ||
		           strcmp(o, "--replicate-every") == 0 || strcmp(o, "--retention") == 0) {
			int64_t secs = parse_duration(v);
			if (secs < 0 || secs > INT64_MAX / 1000) {
				fprintf(stderr,
				        "roost %s: %s takes a duration such as 7d, 12h, 30m or 0\n",
				        cmd, o);
				return 2;
			}
			*(o[2] == 'g'   ? &a->cfg.gc_every_ms
			  : o[2] == 's' ? &a->cfg.scrub_every_ms
			  : o[4] == 'p' ? &a->cfg.replicate_every_ms
			                : &a->cfg.gc_retention_ms) = secs * 1000;
		} else if (strcmp(o, "--rotate-keys-every") == 0 ||
		           strcmp(o, "--session-lifetime") == 0 ||
		           strcmp(o, "--session-idle") == 0) {
			/* 0 turns rotation and the idle timeout off; a session always ends */
			int64_t secs = parse_duration(v);
			bool lifetime = o[10] == 'l';
			if (secs < 0 || secs > INT64_MAX / 1000 || (lifetime && secs == 0)) {
				fprintf(stderr,
				        "roost %s: %s takes a duration such as 30d, 12h, 30m or "
				        "90s%s\n",
				        cmd, o, lifetime ? "" : " (0: off)");
				return 2;
			}
			*(o[2] == 'r' ? &a->cfg.rotate_keys_every_ms
			  : lifetime  ? &a->cfg.session_lifetime_ms
			              : &a->cfg.session_idle_ms) = secs * 1000;
		} else if (strcmp(o, "--job-rate") == 0) {
			double r = parse_bytes(v);
			if (r < 0) {
				fprintf(stderr,
				        "roost %s: --job-rate takes bytes per second (50M; 0: no "
				        "limit)\n",
				        cmd);
				return 2;
			}
			a->cfg.job_rate = r == 0 ? -1 : r;
		} else if (strcmp(o, "--tls-cert") == 0) {
			a->cfg.tls_cert = v;
		} else if (strcmp(o, "--tls-key") == 0) {
			a->cfg.tls_key = v;
		} else if (strcmp(o, "--host-ca") == 0) {
			a->cfg.host_ca = v;
		} else if (strcmp(o, "--store") == 0) {
			a->cfg.store_url = v;
		} else if (strcmp(o, "--store-credentials") == 0) {
			a->cfg.store_creds = v;
		} else if (strcmp(o, "--oidc-issuer") == 0) {
			a->cfg.oidc_issuer = v;
		} else if (strcmp(o, "--oidc-client-id") == 0) {
			a->cfg.oidc_client_id = v;
		} else if (strcmp(o, "--oidc-client-secret-file") == 0) {
			a->cfg.oidc_secret_file = v;
		} else if (strcmp(o, "--oidc-name") == 0) {
			a->cfg.oidc_name = v;
		} else if (strcmp(o, "--oidc-redirect-uri") == 0) {
			a->cfg.oidc_redirect_uri = v;
		} else if (strcmp(o, "--web-dir") == 0) {
			a->cfg.web_dir = v;
		} else if (strcmp(o, "--heartbeat") == 0) {
			int64_t secs = parse_id(v);
			if (secs <= 0 || secs > 3600) {
				fprintf(stderr, "roost %s: --heartbeat takes 1..3600 seconds\n",
				        cmd);
				return 2;
			}
			a->cfg.feed_heartbeat_ms = secs * 1000;
		} else if (strcmp(o, "--email") == 0) {
			a->email = v;
		} else if (strcmp(o, "--listen") == 0) {
			a->cfg.listen = v;
		} else {
			fprintf(stderr, "roost %s: unknown %s %s\n", cmd,
			        o[0] == '-' ? "option" : "argument", o);
			cmdline_help(stderr, cmd, NULL);
			return 2;
		}
	}
	a->cfg.data_dir = a->data;
	return 0;
}

static int cmd_init(int argc, char **argv)
{
	struct hub_args a;
	int rc = parse_hub_args("init", argc, argv, &a);
	if (rc)
		return rc == CMDLINE_HELP ? 0 : rc;
	if (!a.data || !a.email) {
		fprintf(stderr, "usage: roost init --data DIR --email EMAIL [--db URL]\n");
		return 2;
	}
	char *pw = read_password("Owner password: ", true);
	if (!pw)
		return 1;
	rc = hub_init(a.data, a.cfg.db_url, a.email, pw, false);
	sodium_memzero(pw, strlen(pw));
	free(pw);
	return rc;
}

/* roost admin reset-password EMAIL --data DIR [--expires 24h], and the
 * hub's options that say where its dashboard is. */
static int cmd_admin_reset(int argc, char **argv)
{
	const char *email = NULL;
	int64_t ttl = RESET_TTL_DEFAULT_S;
	char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
	int n = 0, rc = 0;
	for (int i = 0; i < argc && !rc; i++) {
		if (strcmp(argv[i], "--expires") == 0) {
			ttl = i + 1 < argc ? parse_duration(argv[++i]) : -1;
			if (ttl < 60 || ttl > RESET_TTL_MAX_S) {
				fprintf(stderr, "roost admin reset-password: --expires takes a "
				                "duration from 1m to 30d, such as 24h\n");
				rc = 2;
			}
		} else if (argv[i][0] != '-' && !email && (i == 0 || argv[i - 1][0] != '-')) {
			email = argv[i];
		} else {
			rest[n++] = argv[i];
		}
	}
	struct hub_args a;
	if (!rc)
		rc = parse_hub_args("admin reset-password", n, rest, &a);
	free(rest);
	if (rc)
		return rc == CMDLINE_HELP ? 0 : rc;
	if (!a.data || !email || !strchr(email, '@')) {
		fprintf(stderr,
		        "roost admin reset-password: give the account's EMAIL and --data DIR\n");
		cmdline_help(stderr, "admin reset-password", NULL);
		return 2;
	}
	return hub_admin_reset_password(&a.cfg, email, ttl);
}

static int cmd_serve(int argc, char **argv)
{
	struct hub_args a;
	int rc = parse_hub_args("serve", argc, argv, &a);
	if (rc)
		return rc == CMDLINE_HELP ? 0 : rc;
	if (!a.data) {
		fprintf(stderr, "usage: roost serve --data DIR [--listen ADDR] [--api-port N] "
		                "[--content-port N] [--dashboard-port N]\n");
		return 2;
	}
	return hub_serve(&a.cfg);
}

/* A hub on loopback with a known login, for trying roost out. */
static size_t discard(char *p, size_t size, size_t n, void *cls)
{
	(void)p;
	(void)cls;
	return size * n;
}

/* True once GET url answers 200 (the hub has started and has its keys). */
static bool answers_200(const char *url)
{
	CURL *c = curl_easy_init();
	long st = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	curl_easy_cleanup(c);
	return st == 200;
}

/* True once something accepts TCP connections at HOST:PORT (the relay). */
static bool accepts(const char *hostport)
{
	const char *colon = strrchr(hostport, ':');
	if (!colon)
		return false;
	char *host = xstrndup(hostport, (size_t)(colon - hostport));
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	bool ok = false;
	if (getaddrinfo(host, colon + 1, &hints, &ai) == 0) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ok = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
	}
	free(host);
	return ok;
}

/* Wait (quietly, backing off to half a second) until url answers 200 (or,
 * for "tcp:HOST:PORT", a connection is accepted there), up to a minute.
 * The demo starts its parts in order: hub, relay, host. */
static atomic_bool demo_stopping;

#define DEMO_READY_WAIT_MS   60000 /* each part of the demo has a minute to answer */
#define DEMO_BANNER_PAUSE_MS 500

static bool up(const char *what)
{
	return strncmp(what, "tcp:", 4) == 0 ? accepts(what + 4) : answers_200(what);
}

static bool wait_ready(const char *url)
{
	int64_t until = mono_ms() + DEMO_READY_WAIT_MS, wait = 20;
	while (!up(url)) {
		if (mono_ms() > until || atomic_load(&demo_stopping))
			return false;
		usleep((useconds_t)wait * 1000);
		wait = wait * 2 > 500 ? 500 : wait * 2;
	}
	return true;
}

struct banner {
	char *keys_url;     /* the hub is ready when this answers */
	char *relay, *host; /* "tcp:ADDR:PORT" of the relay and the host, or NULL */
	char *text;
};

/* Print the demo's banner once the hub answers, so that it is the last
 * thing on the screen rather than buried under start-up lines. */
static void *banner_main(void *arg)
{
	struct banner *b = arg;
	if (!wait_ready(b->keys_url)) {
		if (!atomic_load(&demo_stopping))
			fprintf(stderr, "roost demo: the hub did not start within a minute\n");
		return NULL;
	}
	/* The relay and the host too (each says why if it cannot start). */
	if (b->relay)
		wait_ready(b->relay);
	if (b->host)
		wait_ready(b->host);
	usleep(DEMO_BANNER_PAUSE_MS *
	       1000); /* the host's first lines (attached, first sync) first */
	fputs(b->text, stdout);
	fflush(stdout);
	return NULL;
}

static int cmd_demo(int argc, char **argv)
{
	/* --host-port N is the demo's own; the rest are the hub's options. */
	int host_port = DEMO_HOST_PORT, relay_port = 0, tunnel_port = 0;
	char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
	int nrest = 0;
	for (int i = 0; i < argc; i++) {
		int *port = strcmp(argv[i], "--host-port") == 0     ? &host_port
		            : strcmp(argv[i], "--relay-port") == 0  ? &relay_port
		            : strcmp(argv[i], "--tunnel-port") == 0 ? &tunnel_port
		                                                    : NULL;
		if (port) {
			if (i + 1 >= argc || parse_port(argv[i + 1], port) != 0) {
				fprintf(stderr, "roost demo: %s takes a port number\n", argv[i]);
				free(rest);
				return 2;
			}
			i++;
		} else {
			rest[nrest++] = argv[i];
		}
	}
	struct hub_args a;
	int rc = parse_hub_args("demo", nrest, rest, &a);
	free(rest);
	if (rc)
		return rc == CMDLINE_HELP ? 0 : rc;
	if (!a.data)
		a.data = a.cfg.data_dir = "demo-data";
	const char *email = "demo@roost.local";
	char *login_file = xasprintf("%s/demo-login.txt", a.data);
	char pw[64] = "";
	FILE *f = fopen(login_file, "r");
	if (f) {
		if (!fgets(pw, sizeof pw, f))
			pw[0] = 0;
		pw[strcspn(pw, "\n")] = 0;
		fclose(f);
	}
	if (!pw[0]) {
		unsigned char raw[9];
		randombytes_buf(raw, sizeof raw);
		sodium_bin2base64(pw, sizeof pw, raw, sizeof raw,
		                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		if ((rc = hub_init(a.data, a.cfg.db_url, email, pw, true)) != 0) {
			free(login_file);
			return rc;
		}
		/* 0600 from the start: the password is never readable by others. */
		char line[sizeof pw + 1];
		int len = snprintf(line, sizeof line, "%s\n", pw);
		(void)write_file_atomic(login_file, line, (size_t)len, 0600);
	}
	free(login_file);
	const char *host = a.cfg.listen ? a.cfg.listen : "127.0.0.1";
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		n = (ssize_t)snprintf(exe, sizeof exe, "roost");
	exe[n] = 0;
	/* The demo's host: a synced folder beside the hub, as its own process. */
	char *host_dir = xasprintf("%s/host", a.data);
	char *hub_url = xasprintf("http://%s:%d", host, a.cfg.api_port);
	/* And a relay on loopback (self-signed), which the host attaches to. */
	char *relay_dir = xasprintf("%s/relay", a.data);
	char *ca = xasprintf("%s/ca.pem", relay_dir);
	char relay_pub[64], relay_tun[64], listen[64];
	snprintf(relay_pub, sizeof relay_pub, "%s:%d", host,
	         relay_port ? relay_port : host_port + 1);
	snprintf(relay_tun, sizeof relay_tun, "%s:%d", host,
	         tunnel_port ? tunnel_port : host_port + 2);
	snprintf(listen, sizeof listen, "%s:%d", host, host_port);
	const char *cert, *key;
	pid_t relay = -1, agent = -1;
	char *keys_url = xasprintf("%s/api/v1/keys", hub_url);
	if (mkdir_p(relay_dir, 0700) == 0 && relay_self_signed(relay_dir, &cert, &key) == 0) {
		relay = fork();
		if (relay == 0) {
			prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the demo */
			if (!wait_ready(keys_url))
				_exit(1);
			execl(exe, "roost", "relay", "--data", relay_dir, "--hub", hub_url,
			      "--public", relay_pub, "--tunnel", relay_tun, "--cert", cert, "--key",
			      key, (char *)NULL);
			_exit(127);
		}
	}
	if (hub_demo_host(a.data, a.cfg.db_url, email, host_dir, hub_url) == 0) {
		agent = fork();
		if (agent == 0) {
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			char *tun = xasprintf("tcp:%s", relay_tun);
			if (!wait_ready(keys_url) || (relay > 0 && !wait_ready(tun)))
				_exit(1);
			free(tun);
			if (relay > 0)
				execl(exe, "roost", "host", "run", "--dir", host_dir, "--listen",
				      listen, "--relay", relay_tun, "--relay-ca", ca, (char *)NULL);
			else
				execl(exe, "roost", "host", "run", "--dir", host_dir, "--listen",
				      listen, (char *)NULL);
			_exit(127);
		}
	}
	struct banner b = {.keys_url = keys_url,
	                   .relay = relay > 0 ? xasprintf("tcp:%s", relay_pub) : NULL,
	                   .host = agent > 0 ? xasprintf("tcp:%s", listen) : NULL};
	b.text = xasprintf(
	    "\nroost demo\n"
	    "  relay:     https://%s/h/... (the host's public URL: roost hosts; CA %s)\n"
	    "  host:      %s (a synced folder: files put in it appear in the workspace)\n"
	    "  dashboard: http://%s:%d/\n"
	    "  API:       http://%s:%d/api/v1\n"
	    "  WebDAV:    http://%s:%d/dav/default/ (same login; rclone, davfs2, Finder)\n"
	    "  login:     %s  password: %s\n"
	    "  try:       ROOST_PASSWORD='%s' %s login --hub http://%s:%d --email %s\n"
	    "             %s put FILE && %s ls\n"
	    "  (Ctrl-C stops the hub, the host and the relay; data stays in %s)\n\n",
	    relay_pub, ca, host_dir, host, a.cfg.dashboard_port, host, a.cfg.api_port, host,
	    a.cfg.content_port, email, pw, pw, exe, host, a.cfg.api_port, email, exe, exe, a.data);
	pthread_t banner;
	bool banner_started = pthread_create(&banner, NULL, banner_main, &b) == 0;
	rc = hub_serve(&a.cfg);
	atomic_store(&demo_stopping, true);
	if (banner_started)
		pthread_join(banner, NULL);
	free(b.text);
	free(b.relay);
	free(b.host);
	free(keys_url);
	if (agent > 0) {
		kill(agent, SIGTERM);
		waitpid(agent, NULL, 0);
	}
	if (relay > 0) {
		kill(relay, SIGTERM);
		waitpid(relay, NULL, 0);
	}
	free(relay_dir);
	free(ca);
	free(host_dir);
	free(hub_url);
	return rc;
}

/* roost admin backup|restore: --to/--from are theirs, the rest the hub's
 * options (backup takes serve's database options; restore --data and --db). */
static int cmd_backup(bool backup, int argc, char **argv)
{
	const char *what = backup ? "admin backup" : "admin restore";
	const char *usage = backup ? "usage: roost admin backup --data DIR [--db URL] --to DEST\n"
	                           : "usage: roost admin restore --from DEST --data NEWDIR [--db "
	                             "URL]\n";
	const char *dir = NULL;
	char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			cmdline_help(stdout, what, NULL); /* as every command's */
			free(rest);
			return 0;
		}
		if (strcmp(argv[i], backup ? "--to" : "--from") == 0) {
			if (i + 1 >= argc || !argv[i + 1][0]) {
				fprintf(stderr, "roost %s: %s needs a directory\n%s", what, argv[i],
				        usage);
				free(rest);
				return 2;
			}
			dir = argv[++i];
		} else {
			rest[n++] = argv[i];
		}
	}
	struct hub_args a;
	int rc = parse_hub_args(what, n, rest, &a);
	free(rest);
	if (rc)
		return rc;
	if (!a.data || !dir) {
		fputs(usage, stderr);
		return 2;
	}
	if (!backup && (a.cfg.listen || a.email)) {
		fprintf(stderr, "roost %s: takes only --from, --data and --db\n%s", what, usage);
		return 2;
	}
	return backup ? hub_backup(&a.cfg, dir) : hub_restore(dir, a.data, a.cfg.db_url);
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "roost: libsodium failed to initialize\n");
		return 1;
	}
	if (getenv("ROOST_DEBUG"))
		log_set_level(LOG_DEBUG);
	cmdline_set_usage(usage_text);
	if (argc >= 3 && strcmp(argv[1], "help") == 0) {
		/* roost help CMD [SUB]: that command's usage */
		char both[96];
		snprintf(both, sizeof both, "%s %s", argv[2], argc >= 4 ? argv[3] : "");
		if ((argc >= 4 && cmdline_usage(stdout, both)) || cmdline_usage(stdout, argv[2]))
			return 0;
		fprintf(stderr, "roost help: no command '%s'\n\n%s", argv[2], usage_text);
		return 2;
	}
	if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("roost %s\n", ROOST_VERSION);
		return 0;
	}
	if (strcmp(cmd, "init") == 0)
		return cmd_init(argc - 2, argv + 2);
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc - 2, argv + 2);
	if (strcmp(cmd, "relay") == 0)
		return relay_main(argc - 2, argv + 2);
	if (strcmp(cmd, "demo") == 0)
		return cmd_demo(argc - 2, argv + 2);
	if (strcmp(cmd, "admin") == 0 && argc >= 3 &&
	    (strcmp(argv[2], "gc") == 0 || strcmp(argv[2], "scrub") == 0 ||
	     strcmp(argv[2], "replicate") == 0 || strcmp(argv[2], "jobs") == 0)) {
		/* --json is ours; the rest are the hub's options */
		bool json = false;
		int n = 0;
		char **rest = xcalloc((size_t)argc, sizeof *rest);
		for (int i = 3; i < argc; i++) {
			if (strcmp(argv[i], "--json") == 0)
				json = true;
			else
				rest[n++] = argv[i];
		}
		char what[32];
		snprintf(what, sizeof what, "admin %s", argv[2]);
		struct hub_args a;
		int rc = parse_hub_args(what, n, rest, &a);
		free(rest);
		if (rc)
			return rc == CMDLINE_HELP ? 0 : rc;
		if (!a.data) {
			fprintf(stderr, "usage: roost admin %s --data DIR [--db URL]%s [--json]\n",
			        argv[2],
			        strcmp(argv[2], "gc") == 0     ? " [--retention 7d]"
			        : strcmp(argv[2], "jobs") == 0 ? ""
			                                       : " [--job-rate 50M]");
			return 2;
		}
		return hub_admin_job(&a.cfg, argv[2], json);
	}
	if (strcmp(cmd, "admin") == 0 && argc >= 3 && strcmp(argv[2], "rotate-keys") == 0) {
		struct hub_args a;
		int rc = parse_hub_args("admin rotate-keys", argc - 3, argv + 3, &a);
		if (rc)
			return rc == CMDLINE_HELP ? 0 : rc;
		if (!a.data) {
			fprintf(stderr, "usage: roost admin rotate-keys --data DIR [--db URL]\n");
			return 2;
		}
		return hub_rotate_keys(a.data, a.cfg.db_url);
	}
	if (strcmp(cmd, "admin") == 0 && argc >= 3 && strcmp(argv[2], "remove-user") == 0) {
		if (argc >= 4 && (strcmp(argv[3], "--help") == 0 || strcmp(argv[3], "-h") == 0)) {
			cmdline_help(stdout, "admin", "remove-user");
			return 0;
		}
		if (argc < 4 || argv[3][0] == '-' || !strchr(argv[3], '@')) {
			if (argc >= 4 && argv[3][0] == '-')
				fprintf(stderr, "roost admin remove-user: unknown option %s\n",
				        argv[3]);
			fprintf(stderr,
			        "usage: roost admin remove-user EMAIL --data DIR [--db URL]\n");
			return 2;
		}
		struct hub_args a;
		int rc = parse_hub_args("admin remove-user", argc - 4, argv + 4, &a);
		if (rc)
			return rc;
		if (!a.data) {
			fprintf(stderr,
			        "usage: roost admin remove-user EMAIL --data DIR [--db URL]\n");
			return 2;
		}
		return hub_admin_remove_user(&a.cfg, argv[3]);
	}
	if (strcmp(cmd, "admin") == 0 && argc >= 3 &&
	    (strcmp(argv[2], "backup") == 0 || strcmp(argv[2], "restore") == 0))
		return cmd_backup(strcmp(argv[2], "backup") == 0, argc - 3, argv + 3);
	if (strcmp(cmd, "admin") == 0 && argc >= 3 && strcmp(argv[2], "reset-password") == 0)
		return cmd_admin_reset(argc - 3, argv + 3);
	if (strcmp(cmd, "admin") == 0) {
		/* roost admin alone, --help, or a subcommand there is not */
		bool help =
		    argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
		if (argc >= 3 && !help)
			fprintf(stderr, "roost admin: unknown subcommand %s\n", argv[2]);
		cmdline_help(help ? stdout : stderr, "admin", NULL);
		return help ? 0 : 2;
	}
	static const struct cmdline_cmd host_cmds[] = {
	    {"host", cmd_host},
	    {"hosts", cmd_hosts},
	    {"policy", cmd_policy},
	};
	int rc = cli_run(cmd, argc - 2, argv + 2);
	if (rc < 0)
		rc = cmdline_run(host_cmds, sizeof host_cmds / sizeof host_cmds[0], cmd, argc - 2,
		                 argv + 2);
	if (rc >= 0)
		return rc;
	fprintf(stderr, "roost: unknown command '%s'\n\n%s", cmd, usage_text);
	return 2;
}
