/* init: create a hub's data directory — database, signing key, owner, and the
 * workspace "default" with its root folder — in one transaction. */
#include "hub.h"
#include "auth.h"
#include "api.h"
#include "members.h"
#include "init.h"
#include "../core/util.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int create_signing_key(struct db *db)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	char pk64[128], sk64[256], kid[32];
	unsigned char kidraw[8];
	crypto_sign_keypair(pk, sk);
	randombytes_buf(kidraw, sizeof kidraw);
	sodium_bin2hex(kid, sizeof kid, kidraw, sizeof kidraw);
	sodium_bin2base64(pk64, sizeof pk64, pk, sizeof pk,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_bin2base64(sk64, sizeof sk64, sk, sizeof sk,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(sk, sizeof sk);
	int r = db_run(db,
	               "INSERT INTO signing_keys(kid, public_key, secret_key, created_at) "
	               "VALUES(?,?,?,?)",
	               kid, pk64, sk64, now_ms());
	sodium_memzero(sk64, sizeof sk64);
	return r;
}

char *hub_db_url(const char *data_dir, const char *db_url)
{
	return db_url ? xstrdup(db_url) : xasprintf("sqlite:%s/roost.db", data_dir);
}

int hub_init(const char *data_dir, const char *db_url, const char *email, const char *password,
             bool quiet)
{
	if (!email || !strchr(email, '@') || strlen(email) > 320) {
		fprintf(stderr, "roost init: --email must be an email address\n");
		return 2;
	}
	if (!password || strlen(password) < 8) {
		fprintf(stderr, "roost init: the password must be at least 8 characters\n");
		return 2;
	}
	if (mkdir_p(data_dir, 0700) < 0) {
		fprintf(stderr, "roost init: cannot create %s: %s\n", data_dir, strerror(errno));
		return 1;
	}
	char *url = hub_db_url(data_dir, db_url);
	char *err = NULL;
	struct db *db = db_open(url, &err);
	free(url);
	if (!db) {
		fprintf(stderr, "roost init: %s\n", err);
		free(err);
		return 1;
	}
	int rc = 1;
	int64_t users = 0, uid = 0, ws = 0, now = now_ms();
	char hash[128];
	if (db_migrate(db) != DB_DONE) {
		fprintf(stderr, "roost init: cannot create the database schema\n");
		goto out;
	}
	if (db_int64(db, &users, "SELECT COUNT(*) FROM users") == DB_ROW && users > 0) {
		fprintf(stderr, "roost init: %s is already initialized; nothing changed\n",
		        data_dir);
		goto out;
	}
	if (auth_hash_password(password, hash) != 0) {
		fprintf(stderr, "roost init: cannot hash the password (out of memory?)\n");
		goto out;
	}
	if (db_begin(db) != DB_DONE)
		goto dbfail;
	if (db_int64(db, &uid,
	             "INSERT INTO users(email, password_hash, created_at) VALUES(?,?,?) "
	             "RETURNING id",
	             email, hash, now) != DB_ROW ||
	    hub_create_workspace(db, "default", uid, &ws) != DB_DONE ||
	    create_signing_key(db) != DB_DONE ||
	    db_run(db,
	           "INSERT INTO audit_log(workspace_id, actor_user_id, action, target, at) "
	           "VALUES(?,?,'hub.init',?,?)",
	           ws, uid, email, now) != DB_DONE ||
	    db_commit(db) != DB_DONE) {
		db_rollback(db);
		goto dbfail;
	}
	if (!quiet)
		printf("initialized %s: owner %s, workspace 'default'\n", data_dir, email);
	rc = 0;
	goto out;
dbfail:
	fprintf(stderr, "roost init: database error: %s\n", db_errmsg(db));
out:
	db_close(db);
	return rc;
}

int hub_keys_rotate(struct db *db, int64_t older_than_ms)
{
	int64_t now = now_ms(), active = 0;
	/* Hubs sharing a database may all find the key due: the UPDATE lets one
	 * retire it, and the others then see that one's new key and add none. */
	if (db_begin(db) != DB_DONE)
		return -1;
	if (db_run(db,
	           "UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL AND "
	           "created_at <= ?",
	           now, now - older_than_ms) != DB_DONE ||
	    db_int64(db, &active, "SELECT COUNT(*) FROM signing_keys WHERE retired_at IS NULL") !=
	        DB_ROW)
		goto fail;
	if (active > 0) {
		db_rollback(db);
		return 0;
	}
	if (create_signing_key(db) != DB_DONE ||
	    db_run(db, "INSERT INTO audit_log(action, target, at) VALUES('keys.rotate', 'hub', ?)",
	           now) != DB_DONE ||
	    db_commit(db) != DB_DONE)
		goto fail;
	return 1;
fail:
	db_rollback(db);
	return -1;
}

/* roost admin rotate-keys: sign with a new key from now on; the old ones keep
 * verifying until the longest-lived token they signed has expired. */
int hub_rotate_keys(const char *data_dir, const char *db_url)
{
	char *url = hub_db_url(data_dir, db_url);
	char *err = NULL;
	struct db *db = db_open(url, &err);
	free(url);
	if (!db) {
		fprintf(stderr, "roost admin rotate-keys: %s\n", err);
		free(err);
		return 1;
	}
	int64_t users = 0;
	int rc = 1;
	if (db_migrate(db) != DB_DONE ||
	    db_int64(db, &users, "SELECT COUNT(*) FROM users") != DB_ROW || users == 0) {
		fprintf(stderr, "roost admin rotate-keys: no initialized hub there\n");
		goto out;
	}
	if (hub_keys_rotate(db, 0) != 1) {
		fprintf(stderr, "roost admin rotate-keys: database error: %s\n", db_errmsg(db));
		goto out;
	}
	printf("new signing key in use; the previous key verifies tokens for another %lld hours\n"
	       "(running hubs pick the new key up at once)\n",
	       (long long)(TOKEN_TTL_MAX_MS / 3600000));
	rc = 0;
out:
	db_close(db);
	return rc;
}

/* roost demo's host: registered straight in the database (the demo owns the
 * hub) with its credential in dir/.roost/host.json, as `roost host join`
 * would leave it. Does nothing when dir has joined already. */
int hub_demo_host(const char *data_dir, const char *db_url, const char *email, const char *dir,
                  const char *hub_url)
{
	char *idf = xasprintf("%s/.roost/host.json", dir);
	struct stat st;
	bool joined = stat(idf, &st) == 0;
	if (joined) {
		free(idf);
		return 0;
	}
	char *url = hub_db_url(data_dir, db_url);
	char *err = NULL;
	struct db *db = db_open(url, &err);
	free(url);
	if (!db) {
		fprintf(stderr, "roost demo: %s\n", err);
		free(err);
		free(idf);
		return 1;
	}
	int64_t uid = 0, ws = 0, host = 0, now = now_ms();
	char tok[64], hash[65];
	auth_new_token(tok, hash);
	struct chunker_params p = chunker_defaults();
	int rc = 1;
	if (db_migrate(db) != DB_DONE ||
	    db_int64(db, &uid, "SELECT id FROM users WHERE email = ?", email) != DB_ROW ||
	    db_int64(db, &ws,
	             "SELECT workspace_id FROM memberships WHERE user_id = ? AND role = 'owner' "
	             "ORDER BY workspace_id LIMIT 1",
	             uid) != DB_ROW ||
	    hub_ws_chunking(db, ws, &p) != 0 || db_begin(db) != DB_DONE)
		goto out;
	if (db_int64(db, &host,
	             "INSERT INTO hosts(workspace_id, label, created_at, invited_by) "
	             "VALUES(?, 'demo-host', ?, ?) RETURNING id",
	             ws, now, uid) != DB_ROW ||
	    db_run(db,
	           "INSERT INTO tokens(user_id, host_id, kind, name, token_hash, created_at) "
	           "VALUES(?, ?, 'host', 'demo-host', ?, ?)",
	           uid, host, hash, now) != DB_DONE ||
	    db_commit(db) != DB_DONE) {
		db_rollback(db);
		goto out;
	}
	json_t *id =
	    json_pack("{s:s, s:s, s:I, s:I, s:s, s:{s:I, s:I, s:I}}", "hub", hub_url, "token", tok,
	              "workspace_id", (json_int_t)ws, "host_id", (json_int_t)host, "label",
	              "demo-host", "chunking", "min", (json_int_t)p.min, "avg", (json_int_t)p.avg,
	              "max", (json_int_t)p.max);
	char *sd = xasprintf("%s/.roost", dir);
	char *s = json_dumps(id, JSON_INDENT(2));
	/* Created 0600: the credential is never readable by others, even briefly. */
	rc = mkdir_p(sd, 0700) == 0 && write_file_atomic(idf, s, strlen(s), 0600) == 0 ? 0 : 1;
	free(s);
	json_decref(id);
	free(sd);
out:
	if (rc)
		fprintf(stderr, "roost demo: cannot register the demo host: %s\n", db_errmsg(db));
	db_close(db);
	free(idf);
	return rc;
}
