/* account: the user's own account — roost account (name), roost 2fa
 * (enable, disable, status, require) — and the second step of roost login.
 * Threads: the CLI's one thread. */
#include "cmd.h"
#include "../core/json.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* POST to an /api/v1 path of the saved hub (not a workspace's); the answer
 * or NULL after printing why. */
static json_t *account_call(struct client *c, const char *method, const char *path, json_t *body,
                            const char *what)
{
	char *url = xasprintf("%s/api/v1%s", c->hub, path);
	json_t *r = client_call(c, method, url, body, what);
	free(url);
	json_decref(body);
	return r;
}

json_t *login_second_step(struct client *c, json_t *first, const char *code_opt)
{
	const char *chal = json_get_str(first, "challenge");
	char *code = code_opt ? xstrdup(code_opt)
	                      : read_password_env("ROOST_TOTP_CODE",
	                                          "Two-factor code (or a recovery code): ", false);
	if (!code || !chal)
		return NULL;
	json_t *r = account_call(
	    c, "POST", "/login/totp",
	    json_pack("{s:s, s:s, s:s}", "challenge", chal, "code", code, "client", "cli"),
	    "login");
	free(code);
	return r;
}

static int print_status(struct client *c, struct opts *o)
{
	json_t *r = account_call(c, "GET", "/2fa", NULL, "2fa");
	if (!r)
		return 1;
	if (o->json) {
		print_json(r);
	} else if (json_is_true(json_object_get(r, "enabled"))) {
		int64_t left = 0;
		json_get_int(r, "recovery_codes_left", &left);
		printf("two-factor authentication: on (%lld recovery %s left)\n", (long long)left,
		       plural(left, "code", "codes"));
	} else {
		printf("two-factor authentication: off%s\n",
		       json_is_true(json_object_get(r, "pending"))
		           ? " (enrolment started: confirm with roost 2fa enable --code CODE)"
		           : "");
	}
	json_decref(r);
	return 0;
}

/* enable without --code: a new secret to put in an authenticator app;
 * with --code: its first code confirms it and recovery codes are shown. */
static int tfa_enable(struct client *c, struct opts *o)
{
	if (!o->code) {
		json_t *r = account_call(c, "POST", "/2fa/setup", NULL, "2fa enable");
		if (!r)
			return 1;
		if (o->json)
			print_json(r);
		else
			printf(
			    "Add this account to your authenticator app:\n"
			    "  %s\n"
			    "or type the key by hand: %s (time-based, 6 digits, 30 s)\n"
			    "Then confirm with the code it shows: roost 2fa enable --code CODE\n",
			    json_get_str(r, "uri"), json_get_str(r, "secret"));
		json_decref(r);
		return 0;
	}
	json_t *r = account_call(c, "POST", "/2fa/enable", json_pack("{s:s}", "code", o->code),
	                         "2fa enable");
	if (!r)
		return 1;
	if (o->json) {
		print_json(r);
	} else {
		int64_t ended = 0;
		json_get_int(r, "revoked", &ended);
		printf("two-factor authentication is on; %lld other %s ended.\n"
		       "Recovery codes (each works once, instead of a code; keep them safe):\n",
		       (long long)ended,
		       plural(ended, "session or app password", "sessions and app passwords"));
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(r, "recovery_codes"), i, v)
		    printf("  %s\n", json_string_value(v));
		printf(
		    "WebDAV and scripts: make an app password (roost token create --name NAME).\n");
	}
	json_decref(r);
	return 0;
}

static int tfa_disable(struct client *c, struct opts *o)
{
	json_t *body;
	if (o->code) {
		body = json_pack("{s:s}", "code", o->code);
	} else {
		char *pw = read_password("Password: ", false);
		if (!pw)
			return 1;
		body = json_pack("{s:s}", "password", pw);
		free(pw);
	}
	json_t *r = account_call(c, "POST", "/2fa/disable", body, "2fa disable");
	if (!r)
		return 1;
	if (o->json)
		print_json(r);
	else
		printf("two-factor authentication is off\n");
	json_decref(r);
	return 0;
}

static int tfa_require(struct client *c, struct opts *o)
{
	if (o->npos == 1) {
		char *url = client_ws_url(c, "/security", NULL);
		json_t *r = client_call(c, "GET", url, NULL, "2fa require");
		free(url);
		if (r && o->json)
			print_json(r);
		else if (r)
			printf("workspace %s %s two-factor authentication\n", c->ws_name,
			       json_is_true(json_object_get(r, "require_2fa"))
			           ? "requires"
			           : "does not require");
		json_decref(r);
		return r ? 0 : 1;
	}
	bool on = strcmp(o->pos[1], "on") == 0;
	if (!on && strcmp(o->pos[1], "off") != 0) {
		fprintf(stderr, "usage: roost 2fa require [on|off]\n");
		return 2;
	}
	char *url = client_ws_url(c, "/security", NULL);
	json_t *body = json_pack("{s:b}", "require_2fa", on);
	json_t *r = client_call(c, "PUT", url, body, "2fa require");
	json_decref(body);
	free(url);
	if (r)
		printf("workspace %s %s two-factor authentication\n", c->ws_name,
		       on ? "now requires" : "no longer requires");
	json_decref(r);
	return r ? 0 : 1;
}

int cmd_2fa(struct opts *o)
{
	const char *sub = o->npos ? o->pos[0] : "";
	bool require = strcmp(sub, "require") == 0;
	if ((require ? need_args(o, 1, 2, "2fa", "require [on|off]")
	             : need_args(o, 1, 1, "2fa",
	                         "enable [--code CODE] | disable [--code CODE] | "
	                         "status | require [on|off]")))
		return 2;
	if (!require && strcmp(sub, "enable") && strcmp(sub, "disable") && strcmp(sub, "status")) {
		fprintf(stderr,
		        "roost 2fa: unknown subcommand '%s'\nusage: roost 2fa enable "
		        "[--code CODE] | disable [--code CODE] | status | require [on|off]\n",
		        sub);
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	int rc = strcmp(sub, "enable") == 0    ? tfa_enable(&c, o)
	         : strcmp(sub, "disable") == 0 ? tfa_disable(&c, o)
	         : require                     ? tfa_require(&c, o)
	                                       : print_status(&c, o);
	client_close(&c);
	return rc;
}

/* roost account: who you are; roost account set-name NAME ("" removes it). */
int cmd_account(struct opts *o)
{
	bool set = o->npos >= 1 && strcmp(o->pos[0], "set-name") == 0;
	if ((set && o->npos != 2) || (!set && o->npos != 0)) {
		fprintf(stderr, "usage: roost account [--json] | roost account set-name NAME\n");
		return 2;
	}
	struct client c;
	if (client_open(&c, o->workspace))
		return 1;
	json_t *r = set ? account_call(&c, "PATCH", "/me", json_pack("{s:s}", "name", o->pos[1]),
	                               "account set-name")
	                : account_call(&c, "GET", "/me", NULL, "account");
	int rc = r ? 0 : 1;
	if (r && o->json) {
		print_json(r);
	} else if (r && set) {
		const char *n = json_get_str(r, "name");
		printf(n ? "your name is now %s\n" : "your name is removed%s\n", n ? n : "");
	} else if (r) {
		char who[400];
		printf(
		    "%s\ntwo-factor authentication: %s\n",
		    fmt_person(json_get_str(r, "email"), json_get_str(r, "name"), who, sizeof who),
		    json_is_true(json_object_get(r, "totp")) ? "on" : "off");
	}
	json_decref(r);
	client_close(&c);
	return rc;
}
