/* config: the CLI's saved credentials ($XDG_CONFIG_HOME/roost/config.json,
 * 0600, written atomically) and opening a client from them. Called from one
 * thread (a command's). */
#include "client.h"
#include "../core/json.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *client_config_path(void)
{
	const char *x = getenv("XDG_CONFIG_HOME");
	if (x && *x)
		return xasprintf("%s/roost/config.json", x);
	const char *home = getenv("HOME");
	return xasprintf("%s/.config/roost/config.json", home ? home : ".");
}

int client_save_config(const char *hub, const char *token, const char *email, const char *cacert)
{
	char *path = client_config_path();
	char *dir = xstrdup(path);
	*strrchr(dir, '/') = 0;
	int rc = mkdir_p(dir, 0700);
	json_t *o = json_pack("{s:s, s:s, s:s}", "hub", hub, "token", token, "email", email);
	if (cacert)
		json_object_set_new(o, "cacert", json_string(cacert));
	char *s = json_dumps(o, JSON_INDENT(2));
	json_decref(o);
	if (rc == 0)
		rc = write_file_atomic(path, s, strlen(s), 0600);
	if (rc != 0) {
		fprintf(stderr, "roost: cannot save credentials to %s: %s\n", path, strerror(-rc));
		rc = -1;
	}
	free(s);
	free(dir);
	free(path);
	return rc;
}

int client_open(struct client *c, const char *workspace)
{
	memset(c, 0, sizeof *c);
	char *path = client_config_path();
	json_error_t jerr;
	json_t *cfg = json_load_file(path, 0, &jerr);
	if (!cfg || !json_get_str(cfg, "hub") || !json_get_str(cfg, "token")) {
		fprintf(stderr,
		        "roost: not logged in (no credentials in %s); run 'roost login "
		        "--hub URL --email EMAIL'\n",
		        path);
		free(path);
		json_decref(cfg);
		return 1;
	}
	free(path);
	int rc =
	    client_open_with(c, json_get_str(cfg, "hub"), json_get_str(cfg, "token"),
	                     json_get_str(cfg, "cacert"), json_get_str(cfg, "email"), workspace);
	json_decref(cfg);
	return rc;
}
