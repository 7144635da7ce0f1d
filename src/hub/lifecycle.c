/* lifecycle: deleting a workspace and removing a user from the hub.
 *
 *   DELETE /workspaces/{id} {confirm: NAME}   the owner deletes the workspace
 *
 * A deleted workspace keeps its row (deleted_at) while GC purges its files
 * and lets its chunks go (jobs/gc.c); at once its memberships, invites,
 * share links, ACL entries and locks go, so every session, token and signed
 * URL of it stops (a signed URL's issuer is no longer a member), and its
 * hosts' relay slugs retire. Its hosts keep their credential only to be told
 * 410 workspace_deleted (server.c's admit), and stop syncing.
 *
 * roost admin remove-user EMAIL (the operator, against the database like
 * roost admin gc) takes a user off the hub: their sessions, tokens, share
 * links, unused invites and reset links, memberships, ACL entries and locks
 * stop at once; the
 * row stays (removed_at) so the versions they made still name them; hosts
 * they enrolled act for another owner of their workspace from then on. A user
 * who is a workspace's only owner is not removed: make another owner first.
 *
 * Threads: request threads; the admin command's one thread. */
#include "hub.h"
#include "auth.h"
#include "meta.h"
#include "init.h"
#include "lifecycle.h"
#include "hosts/hosts.h"
#include "../core/json.h"
#include "../core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rows of a deleted workspace's access, revoked or gone (in a transaction). */
static int revoke_workspace(struct db *db, int64_t ws, int64_t now)
{
	int rc = db_run(db, "UPDATE workspaces SET deleted_at = ? WHERE id = ?", now, ws);
	if (rc == DB_DONE)
		rc = db_run(db, "DELETE FROM memberships WHERE workspace_id = ?", ws);
	if (rc == DB_DONE)
		rc = db_run(db,
		            "UPDATE invites SET revoked_at = ? WHERE workspace_id = ? AND "
		            "revoked_at IS NULL",
		            now, ws);
	if (rc == DB_DONE)
		rc = db_run(db,
		            "UPDATE share_links SET revoked_at = ? WHERE workspace_id = ? AND "
		            "revoked_at IS NULL",
		            now, ws);
	if (rc == DB_DONE)
		rc = db_run(db, "DELETE FROM acl_entries WHERE workspace_id = ?", ws);
	if (rc == DB_DONE)
		rc = db_run(db, "DELETE FROM dav_locks WHERE workspace_id = ?", ws);
	if (rc == DB_DONE)
		rc = hosts_workspace_deleted(db, ws, now);
	return rc;
}

enum MHD_Result api_workspace_delete(struct req *r)
{
	if (r->role != ROLE_OWNER)
		return reply_error(r, MHD_HTTP_FORBIDDEN, "forbidden",
		                   "only an owner of the workspace deletes it");
	char name[256] = "";
	struct db_stmt *st = db_query(r->db, "SELECT name FROM workspaces WHERE id = ?", r->ws_id);
	if (st && db_step(st) == DB_ROW)
		snprintf(name, sizeof name, "%s", db_col_text(st, 0));
	db_finalize(st);
	if (!st || !name[0])
		return reply_db_error(r);
	const char *confirm = json_get_str(r->json, "confirm");
	if (!confirm || strcmp(confirm, name) != 0)
		return reply_error(r, MHD_HTTP_BAD_REQUEST, "confirm_mismatch",
		                   "to delete workspace %s and everything in it, give confirm: its "
		                   "name, exactly",
		                   name);
	int64_t now = now_ms();
	if (meta_begin(r->db, r->ws_id) != DB_DONE)
		return reply_db_error(r);
	/* No event on the feed: with the memberships gone, every stream of the
	 * workspace ends at its next read (feed.c), and a host learns it from
	 * the 410 its next heartbeat or request gets. */
	if (revoke_workspace(r->db, r->ws_id, now) != DB_DONE ||
	    meta_audit(r, "workspace.delete", name, NULL) != 0 || meta_commit(r) != DB_DONE) {
		db_rollback(r->db);
		return reply_db_error(r);
	}
	log_info("workspace %lld (%s) deleted by user %lld", (long long)r->ws_id, name,
	         (long long)r->user_id);
	return reply_json(
	    r, MHD_HTTP_OK,
	    json_pack("{s:s, s:I, s:b}", "deleted", name, "id", (json_int_t)r->ws_id, "ok", 1));
}

int lifecycle_ws_deleted(struct db *db, int64_t ws)
{
	int64_t deleted = 0;
	int rc = db_int64(db, &deleted,
	                  "SELECT COALESCE(deleted_at, 0) FROM workspaces WHERE id = ?", ws);
	return rc == DB_ROW ? deleted != 0 : rc == DB_DONE ? 0 : -1;
}

/* The workspaces (names, comma-separated, into out) where uid is the only
 * owner. How many, or -1. */
static int sole_owner_of(struct db *db, int64_t uid, char *out, size_t cap)
{
	struct db_stmt *st = db_query(
	    db,
	    "SELECT w.name FROM memberships m JOIN workspaces w ON w.id = m.workspace_id WHERE "
	    "m.user_id = ? AND m.role = 'owner' AND w.deleted_at IS NULL AND NOT EXISTS (SELECT 1 "
	    "FROM memberships o WHERE o.workspace_id = m.workspace_id AND o.role = 'owner' AND "
	    "o.user_id <> m.user_id) ORDER BY w.name",
	    uid);
	int n = 0;
	out[0] = 0;
	while (st && db_step(st) == DB_ROW) {
		size_t len = strlen(out);
		snprintf(out + len, cap - len, "%s%s", n ? ", " : "", db_col_text(st, 0));
		n++;
	}
	db_finalize(st);
	return st ? n : -1;
}

/* Take uid off the hub (in a transaction). */
static int remove_rows(struct db *db, int64_t uid, int64_t now)
{
	/* A row in each workspace's audit log, before the memberships go. */
	int rc = db_run(db,
	                "INSERT INTO audit_log(workspace_id, action, target, at, detail) SELECT "
	                "m.workspace_id, 'user.remove', u.email, ?, '{\"by\":\"roost admin\"}' "
	                "FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.user_id = ?",
	                now, uid);
	/* Hosts they enrolled act for another owner of their workspace. */
	if (rc == DB_DONE)
		rc = db_run(db,
		            "UPDATE tokens SET user_id = (SELECT MIN(m.user_id) FROM hosts h JOIN "
		            "memberships m ON m.workspace_id = h.workspace_id WHERE h.id = "
		            "tokens.host_id AND m.role = 'owner' AND m.user_id <> ?) WHERE kind = "
		            "'host' AND user_id = ? AND revoked_at IS NULL",
		            uid, uid);
	if (rc == DB_DONE)
		rc = db_run(
		    db,
		    "UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND kind <> 'host' AND "
		    "revoked_at IS NULL",
		    now, uid);
	if (rc == DB_DONE)
		rc = db_run(db,
		            "UPDATE share_links SET revoked_at = ? WHERE created_by = ? AND "
		            "revoked_at IS NULL",
		            now, uid);
	if (rc == DB_DONE)
		rc = db_run(
		    db,
		    "UPDATE invites SET revoked_at = ? WHERE created_by = ? AND revoked_at IS "
		    "NULL AND used_at IS NULL",
		    now, uid);
	if (rc == DB_DONE)
		rc = db_run(
		    db,
		    "UPDATE account_links SET used_at = ? WHERE user_id = ? AND used_at IS NULL",
		    now, uid);
	if (rc == DB_DONE)
		rc = db_run(db, "DELETE FROM memberships WHERE user_id = ?", uid);
	if (rc == DB_DONE)
		rc = db_run(db, "DELETE FROM acl_entries WHERE user_id = ?", uid);
	if (rc == DB_DONE)
		rc = db_run(db, "DELETE FROM dav_locks WHERE user_id = ?", uid);
	if (rc == DB_DONE)
		rc = db_run(db, "UPDATE users SET removed_at = ?, password_hash = '!' WHERE id = ?",
		            now, uid);
	return rc;
}

int hub_admin_remove_user(const struct hub_config *cfg, const char *email)
{
	char *url = hub_db_url(cfg->data_dir, cfg->db_url);
	char *err = NULL;
	struct db *db = db_open(url, &err);
	free(url);
	if (!db) {
		fprintf(stderr, "roost admin remove-user: %s\n", err);
		free(err);
		return 1;
	}
	int64_t uid = 0, users = 0, now = now_ms();
	int rc = 1;
	char sole[1024];
	if (db_migrate(db) != DB_DONE ||
	    db_int64(db, &users, "SELECT COUNT(*) FROM users") != DB_ROW || users == 0) {
		fprintf(stderr, "roost admin remove-user: no initialized hub in %s\n",
		        cfg->data_dir);
		goto out;
	}
	if (db_begin(db) != DB_DONE)
		goto dberr;
	int found = db_int64(db, &uid,
	                     "SELECT id FROM users WHERE email = ? AND removed_at IS NULL", email);
	int n = found == DB_ROW ? sole_owner_of(db, uid, sole, sizeof sole) : 0;
	if (found == DB_DONE) {
		db_rollback(db);
		fprintf(stderr, "roost admin remove-user: no user %s on this hub\n", email);
		goto out;
	}
	if (found != DB_ROW || n < 0) {
		db_rollback(db);
		goto dberr;
	}
	if (n > 0) {
		db_rollback(db);
		fprintf(stderr,
		        "roost admin remove-user: %s is the only owner of workspace%s %s; make "
		        "another member owner there first (roost members set-role), or delete "
		        "%s\n",
		        email, n == 1 ? "" : "s", sole, n == 1 ? "it" : "them");
		rc = 3;
		goto out;
	}
	if (remove_rows(db, uid, now) != DB_DONE || db_commit(db) != DB_DONE) {
		db_rollback(db);
		goto dberr;
	}
	printf("removed %s from the hub: their sessions, tokens, share links, invites and "
	       "memberships stopped; the versions they made stay\n",
	       email);
	rc = 0;
	goto out;
dberr:
	fprintf(stderr, "roost admin remove-user: database error: %s\n", db_errmsg(db));
out:
	db_close(db);
	return rc;
}
