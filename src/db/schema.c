/* schema: versioned migrations of the full data model (docs/architecture.md).
 *
 * Each migration runs in one transaction and records its number in
 * schema_migrations. "{ID}" stands for the back end's auto-increment key type.
 * Times are BIGINT milliseconds since the epoch.
 *
 * Threads: runs once at start-up (db_migrate), on the connection that migrates.
 */
#include "db.h"
#include "../core/util.h"

#include <stdlib.h>
#include <string.h>

static const char *const migrations[] = {
    /* 1: the whole data model of DESIGN.md */
    "CREATE TABLE users ("
    " id {ID}, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, name TEXT,"
    " created_at BIGINT NOT NULL);"

    "CREATE TABLE workspaces ("
    " id {ID}, name TEXT NOT NULL, created_by BIGINT REFERENCES users(id),"
    " created_at BIGINT NOT NULL, last_seq BIGINT NOT NULL DEFAULT 0,"
    " chunk_min BIGINT NOT NULL DEFAULT 262144, chunk_avg BIGINT NOT NULL DEFAULT 1048576,"
    " chunk_max BIGINT NOT NULL DEFAULT 4194304, min_replicas INTEGER NOT NULL DEFAULT 2,"
    " default_access TEXT NOT NULL DEFAULT 'write' CHECK (default_access IN "
    "('none','read','write')),"
    " quota_bytes BIGINT, max_file_bytes BIGINT, keep_versions INTEGER, keep_days INTEGER,"
    " gc_retention_s BIGINT NOT NULL DEFAULT 604800);"

    "CREATE TABLE memberships ("
    " workspace_id BIGINT NOT NULL REFERENCES workspaces(id),"
    " user_id BIGINT NOT NULL REFERENCES users(id),"
    " role TEXT NOT NULL CHECK (role IN ('owner','admin','member')),"
    " created_at BIGINT NOT NULL, PRIMARY KEY (workspace_id, user_id));"

    "CREATE TABLE hosts ("
    " id {ID}, workspace_id BIGINT NOT NULL REFERENCES workspaces(id), label TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'offline', tunnel_url TEXT, capabilities TEXT,"
    " capacity_bytes BIGINT, free_bytes BIGINT, last_seen BIGINT, created_at BIGINT NOT NULL,"
    " revoked_at BIGINT);"

    "CREATE TABLE invites ("
    " id {ID}, workspace_id BIGINT NOT NULL REFERENCES workspaces(id),"
    " kind TEXT NOT NULL DEFAULT 'member' CHECK (kind IN ('member','host')),"
    " role TEXT NOT NULL DEFAULT 'member', token_hash TEXT NOT NULL UNIQUE,"
    " single_use INTEGER NOT NULL DEFAULT 1, created_by BIGINT REFERENCES users(id),"
    " created_at BIGINT NOT NULL, expires_at BIGINT, used_at BIGINT,"
    " used_by BIGINT REFERENCES users(id), revoked_at BIGINT);"

    "CREATE TABLE tokens ("
    " id {ID}, user_id BIGINT REFERENCES users(id), host_id BIGINT REFERENCES hosts(id),"
    " kind TEXT NOT NULL CHECK (kind IN ('session','api','host')), name TEXT,"
    " token_hash TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL, expires_at BIGINT,"
    " last_used_at BIGINT, revoked_at BIGINT);"

    "CREATE TABLE signing_keys ("
    " kid TEXT PRIMARY KEY, public_key TEXT NOT NULL, secret_key TEXT NOT NULL,"
    " created_at BIGINT NOT NULL, retired_at BIGINT);"

    "CREATE TABLE folders ("
    " id {ID}, workspace_id BIGINT NOT NULL REFERENCES workspaces(id),"
    " parent_id BIGINT REFERENCES folders(id), name TEXT NOT NULL, path TEXT NOT NULL,"
    " created_by BIGINT REFERENCES users(id), created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL, deleted_at BIGINT);"
    "CREATE UNIQUE INDEX folders_live_path ON folders(workspace_id, path)"
    " WHERE deleted_at IS NULL;"
    "CREATE INDEX folders_parent ON folders(parent_id);"

    "CREATE TABLE files ("
    " id {ID}, workspace_id BIGINT NOT NULL REFERENCES workspaces(id),"
    " folder_id BIGINT NOT NULL REFERENCES folders(id), name TEXT NOT NULL,"
    " size BIGINT NOT NULL DEFAULT 0, content_type TEXT, current_version_id BIGINT,"
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
    " updated_by BIGINT REFERENCES users(id), deleted_at BIGINT);"
    "CREATE UNIQUE INDEX files_live_name ON files(folder_id, name) WHERE deleted_at IS NULL;"
    "CREATE INDEX files_workspace ON files(workspace_id);"

    "CREATE TABLE file_versions ("
    " id {ID}, file_id BIGINT NOT NULL REFERENCES files(id), number BIGINT NOT NULL,"
    " hash TEXT NOT NULL, size BIGINT NOT NULL, content_type TEXT,"
    " created_by BIGINT REFERENCES users(id), created_at BIGINT NOT NULL,"
    " UNIQUE (file_id, number));"

    "CREATE TABLE chunks ("
    " hash TEXT PRIMARY KEY, size BIGINT NOT NULL, refcount BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL);"

    "CREATE TABLE version_chunks ("
    " version_id BIGINT NOT NULL REFERENCES file_versions(id), idx BIGINT NOT NULL,"
    " chunk_hash TEXT NOT NULL REFERENCES chunks(hash), chunk_offset BIGINT NOT NULL,"
    " size BIGINT NOT NULL, PRIMARY KEY (version_id, idx));"
    "CREATE INDEX version_chunks_chunk ON version_chunks(chunk_hash);"

    /* Which chunks a workspace may reference: ones its members uploaded or
     * committed. Probes and commits are answered from this, so a chunk's hash
     * alone never reveals or grants another workspace's data. */
    "CREATE TABLE workspace_chunks ("
    " workspace_id BIGINT NOT NULL REFERENCES workspaces(id), chunk_hash TEXT NOT NULL,"
    " created_at BIGINT NOT NULL, PRIMARY KEY (workspace_id, chunk_hash));"

    /* holder is 'hub' for the hub's storage or 'host:ID' */
    "CREATE TABLE chunk_replicas ("
    " chunk_hash TEXT NOT NULL REFERENCES chunks(hash), holder TEXT NOT NULL,"
    " host_id BIGINT REFERENCES hosts(id),"
    " state TEXT NOT NULL CHECK (state IN ('ok','pending','corrupt','released')),"
    " updated_at BIGINT NOT NULL, PRIMARY KEY (chunk_hash, holder));"

    "CREATE TABLE acl_entries ("
    " id {ID}, workspace_id BIGINT NOT NULL REFERENCES workspaces(id),"
    " folder_id BIGINT REFERENCES folders(id), file_id BIGINT REFERENCES files(id),"
    " user_id BIGINT NOT NULL REFERENCES users(id),"
    " perm TEXT NOT NULL CHECK (perm IN ('none','read','write','manage')),"
    " created_at BIGINT NOT NULL);"

    "CREATE TABLE replication_policies ("
    " host_id BIGINT NOT NULL REFERENCES hosts(id),"
    " folder_id BIGINT NOT NULL REFERENCES folders(id),"
    " mode TEXT NOT NULL CHECK (mode IN ('pinned','on-demand','exclude')),"
    " updated_at BIGINT NOT NULL, PRIMARY KEY (host_id, folder_id));"

    "CREATE TABLE share_links ("
    " id {ID}, workspace_id BIGINT NOT NULL REFERENCES workspaces(id),"
    " folder_id BIGINT REFERENCES folders(id), file_id BIGINT REFERENCES files(id),"
    " scope TEXT NOT NULL CHECK (scope IN ('read','write')), password_hash TEXT,"
    " token_hash TEXT UNIQUE,"
    " created_by BIGINT REFERENCES users(id), created_at BIGINT NOT NULL,"
    " expires_at BIGINT, revoked_at BIGINT);"

    "CREATE TABLE audit_log ("
    " id {ID}, workspace_id BIGINT REFERENCES workspaces(id),"
    " actor_user_id BIGINT REFERENCES users(id), actor_host_id BIGINT REFERENCES hosts(id),"
    " action TEXT NOT NULL, target TEXT, at BIGINT NOT NULL, client_addr TEXT, detail TEXT);"
    "CREATE INDEX audit_log_ws_at ON audit_log(workspace_id, at);"

    "CREATE TABLE changes ("
    " workspace_id BIGINT NOT NULL REFERENCES workspaces(id), seq BIGINT NOT NULL,"
    " kind TEXT NOT NULL, entity TEXT NOT NULL, payload TEXT NOT NULL, at BIGINT NOT NULL,"
    " PRIMARY KEY (workspace_id, seq));",

    /* 2: what hosts report in heartbeats, and who invited them */
    "ALTER TABLE hosts ADD COLUMN url TEXT;"
    "ALTER TABLE hosts ADD COLUMN heartbeat_ms BIGINT;"
    "ALTER TABLE hosts ADD COLUMN info TEXT;"
    "ALTER TABLE hosts ADD COLUMN invited_by BIGINT REFERENCES users(id);"
    "CREATE INDEX chunk_replicas_host ON chunk_replicas(host_id);",

    /* 3: the host's slug on a relay (its public URL is https://RELAY/h/SLUG/) */
    "ALTER TABLE hosts ADD COLUMN tunnel_slug TEXT;",

    /* 4: retired relay slugs: relays stop routing each at effective_at */
    "CREATE TABLE relay_revocations ("
    " slug TEXT PRIMARY KEY, host_id BIGINT REFERENCES hosts(id),"
    " effective_at BIGINT NOT NULL, created_at BIGINT NOT NULL);"
    "CREATE INDEX relay_revocations_created ON relay_revocations(created_at);",

    /* 5: background jobs (docs/jobs.md). A grant's touched_at is when a member
     * last uploaded, probed or committed the chunk: GC leaves it alone for a
     * while after (the upload lease). A chunk no version references has
     * unref_at; a purged file keeps its row (a tombstone) but not its versions. */
    "ALTER TABLE workspace_chunks RENAME COLUMN created_at TO touched_at;"
    "CREATE INDEX workspace_chunks_hash ON workspace_chunks(chunk_hash);"
    "ALTER TABLE chunks ADD COLUMN unref_at BIGINT;"
    "CREATE INDEX chunks_unref ON chunks(unref_at);"
    "ALTER TABLE files ADD COLUMN purged_at BIGINT;"
    "CREATE INDEX files_deleted ON files(workspace_id, deleted_at);"
    "ALTER TABLE workspaces ADD COLUMN trash_days INTEGER NOT NULL DEFAULT 30;"
    "ALTER TABLE workspaces ADD COLUMN replica_grace_s BIGINT NOT NULL DEFAULT 3600;"
    "CREATE TABLE jobs ("
    " name TEXT PRIMARY KEY, state TEXT NOT NULL DEFAULT 'idle', lease_owner TEXT,"
    " lease_until BIGINT, cursor TEXT, progress TEXT, result TEXT, started_at BIGINT,"
    " finished_at BIGINT, runs BIGINT NOT NULL DEFAULT 0, next_run_at BIGINT);"
    "INSERT INTO jobs(name) VALUES('gc');"
    "INSERT INTO jobs(name) VALUES('scrub');"
    "INSERT INTO jobs(name) VALUES('replicate');",

    /* 6: a copy the replicate job asked a host to keep (released when the
     * chunk has enough copies without it) */
    "ALTER TABLE chunk_replicas ADD COLUMN assigned INTEGER NOT NULL DEFAULT 0;",

    /* 7: bytes received and sent per workspace and hour (the transfer chart) */
    "CREATE TABLE transfer_hourly ("
    " workspace_id BIGINT NOT NULL REFERENCES workspaces(id), hour BIGINT NOT NULL,"
    " bytes_in BIGINT NOT NULL DEFAULT 0, bytes_out BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (workspace_id, hour));",

    /* 8: WebDAV (docs/webdav.md). Dead properties belong to a file or folder
     * row, so they follow it through moves made by any client; locks belong
     * to a path (RFC 4918: a lock does not move with its resource). */
    "CREATE TABLE dav_props ("
    " workspace_id BIGINT NOT NULL REFERENCES workspaces(id),"
    " entity TEXT NOT NULL CHECK (entity IN ('file','folder')), entity_id BIGINT NOT NULL,"
    " ns TEXT NOT NULL, name TEXT NOT NULL, value_xml TEXT NOT NULL,"
    " PRIMARY KEY (workspace_id, entity, entity_id, ns, name));"
    "CREATE TABLE dav_locks ("
    " token TEXT PRIMARY KEY, workspace_id BIGINT NOT NULL REFERENCES workspaces(id),"
    " path TEXT NOT NULL, depth INTEGER NOT NULL, scope TEXT NOT NULL CHECK (scope IN"
    " ('exclusive','shared')), owner_xml TEXT, user_id BIGINT NOT NULL REFERENCES users(id),"
    " created_at BIGINT NOT NULL, timeout_at BIGINT NOT NULL);"
    "CREATE INDEX dav_locks_ws ON dav_locks(workspace_id, timeout_at);",

    /* 9: who uploaded which chunk (possess.c): a chunk's hash alone proves
     * nothing; its uploader may commit it for UPLOAD_PENDING_MS, and until a
     * commit uses it the row counts as the uploader's pending bytes. */
    "CREATE TABLE chunk_uploads ("
    " workspace_id BIGINT NOT NULL REFERENCES workspaces(id), uploader TEXT NOT NULL,"
    " chunk_hash TEXT NOT NULL, size BIGINT NOT NULL, touched_at BIGINT NOT NULL,"
    " PRIMARY KEY (workspace_id, uploader, chunk_hash));"
    "CREATE INDEX chunk_uploads_hash ON chunk_uploads(chunk_hash);"
    "CREATE INDEX chunk_uploads_touched ON chunk_uploads(touched_at);",

    /* 10: where a workspace keeps its bytes (docs/storage.md). storage 'hub':
     * the hub's store holds every chunk; 'hosts': hosts hold them and the
     * hub's store is a cache of at most hub_cache_bytes of the workspace's
     * chunks. A grant is proven once the workspace showed the hub the bytes
     * (an upload, or a copy the hub fetched from its host and verified); a
     * host's commit of chunks it only names makes an unproven grant, and the
     * hub never serves such a workspace its store's copy of the chunk. */
    "ALTER TABLE workspaces ADD COLUMN storage TEXT NOT NULL DEFAULT 'hub'"
    " CHECK (storage IN ('hub','hosts'));"
    "ALTER TABLE workspaces ADD COLUMN hub_cache_bytes BIGINT NOT NULL DEFAULT 1073741824;"
    "ALTER TABLE workspace_chunks ADD COLUMN proven INTEGER NOT NULL DEFAULT 1;",

    /* 11: a host's heartbeat answer lists its copies with work to do (to
     * fetch, release or drop): those not 'ok', a few among all it holds. */
    "CREATE INDEX chunk_replicas_work ON chunk_replicas(host_id) WHERE state <> 'ok';",

    /* 12: attribution. A version a host committed names the host as well as
     * the user ("alice via laptop"); one uploaded through a write link names
     * the link and no user. An audit row of a link's anonymous client names
     * the link, never its creator. */
    "ALTER TABLE file_versions ADD COLUMN host_id BIGINT REFERENCES hosts(id);"
    "ALTER TABLE file_versions ADD COLUMN share_id BIGINT REFERENCES share_links(id);"
    "ALTER TABLE audit_log ADD COLUMN actor_share_id BIGINT REFERENCES share_links(id);",

    /* 13: backups fence GC (docs/operations.md, "Backups"). While a row's
     * expires_at is ahead, GC and the cache's eviction delete no chunk: a
     * backup takes its snapshot after its fence is in and copies the chunks
     * the snapshot names while it renews it. A crashed backup's fence lapses. */
    "CREATE TABLE gc_fences ("
    " owner TEXT PRIMARY KEY, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL);",

    /* 14: accounts (docs/accounts.md). A TOTP second factor: the secret (kept
     * as base32: the hub must recompute codes, so it cannot be hashed), set
     * when enrolment starts and in force once totp_enabled_at is; the last
     * time step accepted, so a code is good once. Ten recovery codes per
     * user, hashed. One-use account links: password resets an administrator
     * issued, and the short-lived challenge between a login's password and
     * its code; stored hashed as every token. A workspace may require 2FA. */
    "ALTER TABLE users ADD COLUMN totp_secret TEXT;"
    "ALTER TABLE users ADD COLUMN totp_enabled_at BIGINT;"
    "ALTER TABLE users ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE workspaces ADD COLUMN require_2fa INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE recovery_codes ("
    " id {ID}, user_id BIGINT NOT NULL REFERENCES users(id), code_hash TEXT NOT NULL,"
    " created_at BIGINT NOT NULL, used_at BIGINT);"
    "CREATE INDEX recovery_codes_user ON recovery_codes(user_id);"
    "CREATE TABLE account_links ("
    " id {ID}, user_id BIGINT NOT NULL REFERENCES users(id),"
    " kind TEXT NOT NULL CHECK (kind IN ('reset','login')), token_hash TEXT NOT NULL UNIQUE,"
    " created_by BIGINT REFERENCES users(id), created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL, used_at BIGINT);",

    /* 15: single sign-on (hub/oidc.c). A flow from start to callback (its
     * state hashed; the hash of the value in its browser's cookie; a CLI's
     * loopback port, state and PKCE challenge), a CLI's one-use code, and a
     * workspace's admission of new users of its email domains (a JSON array;
     * NULL admits none) with the role they get. */
    "CREATE TABLE oidc_flows ("
    " state_hash TEXT PRIMARY KEY, nonce TEXT NOT NULL, verifier TEXT NOT NULL,"
    " browser_hash TEXT NOT NULL, cli_port INTEGER NOT NULL DEFAULT 0,"
    " cli_state TEXT NOT NULL DEFAULT '', cli_challenge TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL);"
    "CREATE TABLE oidc_codes ("
    " code_hash TEXT PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users(id),"
    " challenge TEXT NOT NULL, created_at BIGINT NOT NULL);"
    "ALTER TABLE workspaces ADD COLUMN oidc_domains TEXT;"
    "ALTER TABLE workspaces ADD COLUMN oidc_default_role TEXT NOT NULL DEFAULT 'member'"
    " CHECK (oidc_default_role IN ('member','admin'));",

    /* 16: lifecycle. A deleted workspace keeps its row (deleted_at) until GC
     * has purged its files; a removed user keeps theirs (removed_at) so the
     * versions they made still name them. */
    "ALTER TABLE workspaces ADD COLUMN deleted_at BIGINT;"
    "ALTER TABLE users ADD COLUMN removed_at BIGINT;",

    /* 17: a million files. A folder's listing goes page by page in name
     * order (hub/api.c): files_live_name serves the files; this serves the
     * folders. Name search has an index of its own per back end (below).
     * Every request that checks access reads the caller's rules (acl_load). */
    "CREATE INDEX folders_live_name ON folders(parent_id, name) WHERE deleted_at IS NULL;"
    "CREATE INDEX acl_entries_user ON acl_entries(workspace_id, user_id);",

    /* 18: a chunk upload the hub itself put in its store (a chunk PUT or a
     * streamed upload, after the store said the object is whole): when. A
     * commit soon after trusts it instead of asking an S3 store (a HEAD per
     * chunk; ops/commit.c). An upload to a host leaves it NULL. */
    "ALTER TABLE chunk_uploads ADD COLUMN stored_at BIGINT;",

    /* 19: a workspace's used bytes (the quota's measure: every version of its
     * live files), kept by triggers on file_versions and files (below, per
     * back end) so that whatever changes a version or a file's deleted_at
     * keeps it exact, and a commit need not sum every version. */
    "ALTER TABLE workspaces ADD COLUMN used_bytes BIGINT NOT NULL DEFAULT 0;"
    "UPDATE workspaces SET used_bytes = (SELECT COALESCE(SUM(v.size), 0) FROM"
    " file_versions v JOIN files f ON f.id = v.file_id"
    " WHERE f.workspace_id = workspaces.id AND f.deleted_at IS NULL);",

    /* 20: a workspace's counters — the head of its change log and its used
     * bytes — in a row of their own, which is also the workspace's write lock
     * (hub/meta.c, meta_begin). On the workspaces row, a batch commit
     * (POST versions/batch: a savepoint per file) moved them in every
     * savepoint while each file's rows checked their foreign key to that row:
     * PostgreSQL then made a multixact of all the savepoints so far, per row,
     * and a 1,000-file batch cost O(n^2). No table refers to this one. The
     * triggers and the dropped columns are per back end (below). */
    "CREATE TABLE workspace_counters ("
    " workspace_id BIGINT PRIMARY KEY REFERENCES workspaces(id),"
    " last_seq BIGINT NOT NULL DEFAULT 0, used_bytes BIGINT NOT NULL DEFAULT 0);"
    "INSERT INTO workspace_counters(workspace_id, last_seq, used_bytes)"
    " SELECT id, last_seq, used_bytes FROM workspaces;",

    /* 21: what a folder's listing shows of each file's current version, on
     * the file's row (the commit that makes the version writes them): a
     * 10,000-entry page reads one index, not 10,000 version rows as well
     * (PostgreSQL: 25 ms of the page, 1.3 ms without). version_by is the
     * author shown, NULL for a share link's upload (its creator did not act). */
    "ALTER TABLE files ADD COLUMN version_number BIGINT;"
    "ALTER TABLE files ADD COLUMN version_hash TEXT;"
    "ALTER TABLE files ADD COLUMN version_at BIGINT;"
    "ALTER TABLE files ADD COLUMN version_by BIGINT;"
    "UPDATE files SET"
    " version_number = (SELECT number FROM file_versions v WHERE v.id = files.current_version_id),"
    " version_hash = (SELECT hash FROM file_versions v WHERE v.id = files.current_version_id),"
    " version_at = (SELECT created_at FROM file_versions v WHERE v.id = files.current_version_id),"
    " version_by = (SELECT CASE WHEN share_id IS NULL THEN created_by END FROM file_versions v"
    " WHERE v.id = files.current_version_id)"
    " WHERE current_version_id IS NOT NULL;",

    /* 22: a host's own copies in hash order (POST hosts/self/replicas
     * list_after, a restarted host's reconcile): the primary key is by hash
     * first, so each page walked every holder's rows from the cursor on. */
    "CREATE INDEX chunk_replicas_holder ON chunk_replicas(holder, chunk_hash);",
};

/* What a migration does on one back end only, after its common SQL.
 *
 * SQLite: name search (hub/stats.c) asks FTS5 trigram indexes of the live
 * files' and folders' names, kept in step by triggers, so every way a row is
 * created, renamed, moved, deleted, restored or purged updates them. Rows
 * share the base table's id. PostgreSQL's pg_trgm indexes are made by
 * search_index_pg, as the extension may need a superuser. */
static const struct {
	int version;
	const char *backend;
	const char *sql;
} backend_migrations[] = {
    {17, "sqlite",
     "CREATE VIRTUAL TABLE files_name_fts USING fts5(name, tokenize='trigram');"
     "CREATE VIRTUAL TABLE folders_name_fts USING fts5(name, tokenize='trigram');"
     "INSERT INTO files_name_fts(rowid, name) SELECT id, name FROM files"
     " WHERE deleted_at IS NULL;"
     "INSERT INTO folders_name_fts(rowid, name) SELECT id, name FROM folders"
     " WHERE deleted_at IS NULL;"
     "CREATE TRIGGER files_name_fts_ins AFTER INSERT ON files WHEN NEW.deleted_at IS NULL"
     " BEGIN INSERT INTO files_name_fts(rowid, name) VALUES (NEW.id, NEW.name); END;"
     "CREATE TRIGGER files_name_fts_upd AFTER UPDATE OF name, deleted_at ON files"
     " BEGIN DELETE FROM files_name_fts WHERE rowid = OLD.id;"
     " INSERT INTO files_name_fts(rowid, name) SELECT NEW.id, NEW.name"
     " WHERE NEW.deleted_at IS NULL; END;"
     "CREATE TRIGGER files_name_fts_del AFTER DELETE ON files"
     " BEGIN DELETE FROM files_name_fts WHERE rowid = OLD.id; END;"
     "CREATE TRIGGER folders_name_fts_ins AFTER INSERT ON folders WHEN NEW.deleted_at IS NULL"
     " BEGIN INSERT INTO folders_name_fts(rowid, name) VALUES (NEW.id, NEW.name); END;"
     "CREATE TRIGGER folders_name_fts_upd AFTER UPDATE OF name, deleted_at ON folders"
     " BEGIN DELETE FROM folders_name_fts WHERE rowid = OLD.id;"
     " INSERT INTO folders_name_fts(rowid, name) SELECT NEW.id, NEW.name"
     " WHERE NEW.deleted_at IS NULL; END;"
     "CREATE TRIGGER folders_name_fts_del AFTER DELETE ON folders"
     " BEGIN DELETE FROM folders_name_fts WHERE rowid = OLD.id; END;"},
    /* A version counts while its file is live: a version made or removed
     * moves its file's workspace's total; a file trashed, restored, moved
     * to another workspace or removed moves it by all its versions. */
    {19, "sqlite",
     "CREATE TRIGGER used_version_ins AFTER INSERT ON file_versions BEGIN"
     " UPDATE workspaces SET used_bytes = used_bytes + NEW.size WHERE id ="
     " (SELECT workspace_id FROM files WHERE id = NEW.file_id AND deleted_at IS NULL); END;"
     "CREATE TRIGGER used_version_del AFTER DELETE ON file_versions BEGIN"
     " UPDATE workspaces SET used_bytes = used_bytes - OLD.size WHERE id ="
     " (SELECT workspace_id FROM files WHERE id = OLD.file_id AND deleted_at IS NULL); END;"
     "CREATE TRIGGER used_version_upd AFTER UPDATE OF size, file_id ON file_versions BEGIN"
     " UPDATE workspaces SET used_bytes = used_bytes - OLD.size WHERE id ="
     " (SELECT workspace_id FROM files WHERE id = OLD.file_id AND deleted_at IS NULL);"
     " UPDATE workspaces SET used_bytes = used_bytes + NEW.size WHERE id ="
     " (SELECT workspace_id FROM files WHERE id = NEW.file_id AND deleted_at IS NULL); END;"
     "CREATE TRIGGER used_file_upd AFTER UPDATE OF deleted_at, workspace_id ON files"
     " WHEN (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)"
     " OR OLD.workspace_id <> NEW.workspace_id BEGIN"
     " UPDATE workspaces SET used_bytes = used_bytes - (SELECT COALESCE(SUM(size), 0)"
     " FROM file_versions WHERE file_id = OLD.id)"
     " WHERE id = OLD.workspace_id AND OLD.deleted_at IS NULL;"
     " UPDATE workspaces SET used_bytes = used_bytes + (SELECT COALESCE(SUM(size), 0)"
     " FROM file_versions WHERE file_id = NEW.id)"
     " WHERE id = NEW.workspace_id AND NEW.deleted_at IS NULL; END;"
     "CREATE TRIGGER used_file_del AFTER DELETE ON files WHEN OLD.deleted_at IS NULL BEGIN"
     " UPDATE workspaces SET used_bytes = used_bytes - (SELECT COALESCE(SUM(size), 0)"
     " FROM file_versions WHERE file_id = OLD.id) WHERE id = OLD.workspace_id; END;"},
    {19, "postgres",
     "CREATE FUNCTION roost_used_version() RETURNS trigger LANGUAGE plpgsql AS $$"
     " BEGIN"
     " IF TG_OP IN ('DELETE', 'UPDATE') THEN"
     " UPDATE workspaces SET used_bytes = used_bytes - OLD.size WHERE id ="
     " (SELECT workspace_id FROM files WHERE id = OLD.file_id AND deleted_at IS NULL);"
     " END IF;"
     " IF TG_OP IN ('INSERT', 'UPDATE') THEN"
     " UPDATE workspaces SET used_bytes = used_bytes + NEW.size WHERE id ="
     " (SELECT workspace_id FROM files WHERE id = NEW.file_id AND deleted_at IS NULL);"
     " END IF;"
     " RETURN NULL; END $$;"
     "CREATE TRIGGER used_version AFTER INSERT OR DELETE OR UPDATE OF size, file_id"
     " ON file_versions FOR EACH ROW EXECUTE FUNCTION roost_used_version();"
     "CREATE FUNCTION roost_used_file() RETURNS trigger LANGUAGE plpgsql AS $$"
     " BEGIN"
     " IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.deleted_at IS NULL THEN"
     " UPDATE workspaces SET used_bytes = used_bytes - (SELECT COALESCE(SUM(size), 0)"
     " FROM file_versions WHERE file_id = OLD.id) WHERE id = OLD.workspace_id;"
     " END IF;"
     " IF TG_OP = 'UPDATE' AND NEW.deleted_at IS NULL THEN"
     " UPDATE workspaces SET used_bytes = used_bytes + (SELECT COALESCE(SUM(size), 0)"
     " FROM file_versions WHERE file_id = NEW.id) WHERE id = NEW.workspace_id;"
     " END IF;"
     " RETURN NULL; END $$;"
     "CREATE TRIGGER used_file_upd AFTER UPDATE OF deleted_at, workspace_id ON files"
     " FOR EACH ROW WHEN ((OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)"
     " OR OLD.workspace_id <> NEW.workspace_id) EXECUTE FUNCTION roost_used_file();"
     "CREATE TRIGGER used_file_del AFTER DELETE ON files FOR EACH ROW"
     " WHEN (OLD.deleted_at IS NULL) EXECUTE FUNCTION roost_used_file();"},
    /* The same triggers on workspace_counters; a new workspace gets its row. */
    {20, "sqlite",
     "DROP TRIGGER used_version_ins; DROP TRIGGER used_version_del;"
     "DROP TRIGGER used_version_upd; DROP TRIGGER used_file_upd; DROP TRIGGER used_file_del;"
     "CREATE TRIGGER used_version_ins AFTER INSERT ON file_versions BEGIN"
     " UPDATE workspace_counters SET used_bytes = used_bytes + NEW.size WHERE workspace_id ="
     " (SELECT workspace_id FROM files WHERE id = NEW.file_id AND deleted_at IS NULL); END;"
     "CREATE TRIGGER used_version_del AFTER DELETE ON file_versions BEGIN"
     " UPDATE workspace_counters SET used_bytes = used_bytes - OLD.size WHERE workspace_id ="
     " (SELECT workspace_id FROM files WHERE id = OLD.file_id AND deleted_at IS NULL); END;"
     "CREATE TRIGGER used_version_upd AFTER UPDATE OF size, file_id ON file_versions BEGIN"
     " UPDATE workspace_counters SET used_bytes = used_bytes - OLD.size WHERE workspace_id ="
     " (SELECT workspace_id FROM files WHERE id = OLD.file_id AND deleted_at IS NULL);"
     " UPDATE workspace_counters SET used_bytes = used_bytes + NEW.size WHERE workspace_id ="
     " (SELECT workspace_id FROM files WHERE id = NEW.file_id AND deleted_at IS NULL); END;"
     "CREATE TRIGGER used_file_upd AFTER UPDATE OF deleted_at, workspace_id ON files"
     " WHEN (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)"
     " OR OLD.workspace_id <> NEW.workspace_id BEGIN"
     " UPDATE workspace_counters SET used_bytes = used_bytes - (SELECT COALESCE(SUM(size), 0)"
     " FROM file_versions WHERE file_id = OLD.id)"
     " WHERE workspace_id = OLD.workspace_id AND OLD.deleted_at IS NULL;"
     " UPDATE workspace_counters SET used_bytes = used_bytes + (SELECT COALESCE(SUM(size), 0)"
     " FROM file_versions WHERE file_id = NEW.id)"
     " WHERE workspace_id = NEW.workspace_id AND NEW.deleted_at IS NULL; END;"
     "CREATE TRIGGER used_file_del AFTER DELETE ON files WHEN OLD.deleted_at IS NULL BEGIN"
     " UPDATE workspace_counters SET used_bytes = used_bytes - (SELECT COALESCE(SUM(size), 0)"
     " FROM file_versions WHERE file_id = OLD.id) WHERE workspace_id = OLD.workspace_id; END;"
     "CREATE TRIGGER workspace_counters_ins AFTER INSERT ON workspaces BEGIN"
     " INSERT INTO workspace_counters(workspace_id) VALUES (NEW.id); END;"
     "ALTER TABLE workspaces DROP COLUMN used_bytes;"
     "ALTER TABLE workspaces DROP COLUMN last_seq;"},
    {20, "postgres",
     "CREATE OR REPLACE FUNCTION roost_used_version() RETURNS trigger LANGUAGE plpgsql AS $$"
     " BEGIN"
     " IF TG_OP IN ('DELETE', 'UPDATE') THEN"
     " UPDATE workspace_counters SET used_bytes = used_bytes - OLD.size WHERE workspace_id ="
     " (SELECT workspace_id FROM files WHERE id = OLD.file_id AND deleted_at IS NULL);"
     " END IF;"
     " IF TG_OP IN ('INSERT', 'UPDATE') THEN"
     " UPDATE workspace_counters SET used_bytes = used_bytes + NEW.size WHERE workspace_id ="
     " (SELECT workspace_id FROM files WHERE id = NEW.file_id AND deleted_at IS NULL);"
     " END IF;"
     " RETURN NULL; END $$;"
     "CREATE OR REPLACE FUNCTION roost_used_file() RETURNS trigger LANGUAGE plpgsql AS $$"
     " BEGIN"
     " IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.deleted_at IS NULL THEN"
     " UPDATE workspace_counters SET used_bytes = used_bytes - (SELECT COALESCE(SUM(size), 0)"
     " FROM file_versions WHERE file_id = OLD.id) WHERE workspace_id = OLD.workspace_id;"
     " END IF;"
     " IF TG_OP = 'UPDATE' AND NEW.deleted_at IS NULL THEN"
     " UPDATE workspace_counters SET used_bytes = used_bytes + (SELECT COALESCE(SUM(size), 0)"
     " FROM file_versions WHERE file_id = NEW.id) WHERE workspace_id = NEW.workspace_id;"
     " END IF;"
     " RETURN NULL; END $$;"
     "CREATE FUNCTION roost_workspace_counters() RETURNS trigger LANGUAGE plpgsql AS $$"
     " BEGIN INSERT INTO workspace_counters(workspace_id) VALUES (NEW.id); RETURN NULL; END $$;"
     "CREATE TRIGGER workspace_counters_ins AFTER INSERT ON workspaces FOR EACH ROW"
     " EXECUTE FUNCTION roost_workspace_counters();"
     "ALTER TABLE workspaces DROP COLUMN used_bytes;"
     "ALTER TABLE workspaces DROP COLUMN last_seq;"},
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static char *expand(const char *sql, const char *id_type)
{
	size_t n = 0;
	for (const char *p = sql; (p = strstr(p, "{ID}")); p += 4)
		n++;
	char *out = xmalloc(strlen(sql) + n * strlen(id_type) + 1);
	char *o = out;
	for (const char *p = sql; *p;) {
		if (strncmp(p, "{ID}", 4) == 0) {
			o = stpcpy(o, id_type);
			p += 4;
		} else {
			*o++ = *p++;
		}
	}
	*o = 0;
	return out;
}

/* PostgreSQL: name search's trigram indexes (GIN, pg_trgm) on the live files'
 * and folders' lower-cased names, made on the first start that may. The
 * extension is trusted from PostgreSQL 13 on (a database owner may create it);
 * a role that may not gets one log line, and search then reads every name of
 * the workspace (docs/operations.md). Once made, the index keeps itself in
 * step. Indexes are built outside any migration, so an administrator who
 * adds the extension later gets them on the next start. */
static void search_index_pg(struct db *db)
{
	int64_t have = 0;
	if (db_int64(db, &have,
	             "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND "
	             "indexname IN ('files_name_trgm', 'folders_name_trgm')") == DB_ROW &&
	    have == 2)
		return;
	if (db_exec(db, "CREATE EXTENSION IF NOT EXISTS pg_trgm") != DB_DONE) {
		log_warn("name search has no index: this role may not create the pg_trgm extension "
		         "(%s); search reads every name (run CREATE EXTENSION pg_trgm as the "
		         "database owner, then restart the hub)",
		         db_errmsg(db));
		return;
	}
	log_info("building the name search indexes (pg_trgm)");
	if (db_exec(db, "CREATE INDEX IF NOT EXISTS files_name_trgm ON files USING gin"
	                " (LOWER(name) gin_trgm_ops) WHERE deleted_at IS NULL") != DB_DONE ||
	    db_exec(db, "CREATE INDEX IF NOT EXISTS folders_name_trgm ON folders USING gin"
	                " (LOWER(name) gin_trgm_ops) WHERE deleted_at IS NULL") != DB_DONE)
		log_warn("name search index not built: %s", db_errmsg(db));
}

int db_schema_version(struct db *db)
{
	int64_t v = 0;
	if (db_int64(db, &v, "SELECT COALESCE(MAX(version),0) FROM schema_migrations") != DB_ROW)
		return -1;
	return (int)v;
}

int db_migrate(struct db *db)
{
	if (db_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	                " version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)") != DB_DONE)
		return DB_ERR;
	for (int v = 1; v <= N_MIGRATIONS; v++) {
		if (db_begin(db) != DB_DONE)
			return DB_ERR;
		/* Re-read inside the write lock: two hubs starting at once apply each once. */
		if (db->ops->migrate_lock_sql &&
		    db_exec(db, db->ops->migrate_lock_sql) != DB_DONE) {
			db_rollback(db);
			return DB_ERR;
		}
		int have = db_schema_version(db);
		if (have < 0) {
			db_rollback(db);
			return DB_ERR;
		}
		if (have >= v) {
			db_rollback(db);
			continue;
		}
		char *sql = expand(migrations[v - 1], db->ops->id_type);
		int r = db_exec(db, sql);
		free(sql);
		for (size_t i = 0; i < sizeof backend_migrations / sizeof backend_migrations[0];
		     i++)
			if (r == DB_DONE && backend_migrations[i].version == v &&
			    strcmp(backend_migrations[i].backend, db_backend(db)) == 0)
				r = db_exec(db, backend_migrations[i].sql);
		if (r == DB_DONE)
			r = db_run(db,
			           "INSERT INTO schema_migrations(version, applied_at) VALUES(?,?)",
			           (int64_t)v, now_ms());
		if (r != DB_DONE) {
			log_error("migration %d failed: %s", v, db_errmsg(db));
			db_rollback(db);
			return DB_ERR;
		}
		if (db_commit(db) != DB_DONE)
			return DB_ERR;
		log_info("database schema migrated to version %d", v);
	}
	if (strcmp(db_backend(db), "postgres") == 0)
		search_index_pg(db);
	return DB_DONE;
}
