/* hosts: the hub's side of host agents (docs/host.md), as the route table
 * and the jobs see it: enrolment and liveness (enrol.c), replication policies
 * (policy.c), the data plane — replicas, manifests, chunk tokens — (data.c),
 * where a file's bytes are (locations.c) and relay URLs (relay_url.c).
 *
 * Threads: request threads call the handlers; the jobs read hosts' liveness
 * through HOST_ONLINE_SQL. No state outside the database. */
#ifndef ROOST_HUB_HOSTS_H
#define ROOST_HUB_HOSTS_H

#include "../hub.h"

/* A host that names no interval heartbeats this often; it is online while its
 * last heartbeat is within three intervals. */
#define HOST_HEARTBEAT_MS_DEFAULT 5000

/* SQL: is host row h online at time ? */
#define HOST_ONLINE_SQL                                                                            \
	"(h.last_seen IS NOT NULL AND h.status = 'online' AND h.last_seen + 3 * "                  \
	"COALESCE(h.heartbeat_ms, " STRINGIFY(HOST_HEARTBEAT_MS_DEFAULT) ") > ?)"

/* SQL: how many verified copies of chunk `hash` count toward min_replicas in
 * the workspace of `w` (a workspaces row's alias: id, storage,
 * replica_grace_s), given the time now (its one ?). The one rule
 * (docs/storage.md, "Copies and durability") that the replicas card,
 * locations, under-replicated, the replicate job and the hub cache's
 * eviction all use. A copy is a chunk_replicas row in state 'ok' held by
 * - a host of this workspace, not revoked, seen within its replica_grace_s
 *   (an offline host's copies keep counting that long), or
 * - the hub, in a 'hub' workspace only (in 'hosts' mode its store is a cache:
 *   shown, never counted), and only while the workspace's grant of the chunk
 *   is proven (the hub does not serve it an unproven grant's copy).
 * A host of another workspace never counts: its copy is not this
 * workspace's, and counting it would tell a member that some other
 * workspace holds the same bytes. */
#define HOSTS_COPIES_SQL(hash, w) HOSTS_COPIES_EXCEPT_SQL(hash, w, "''")
/* The same without the copy of holder `except` (an SQL expression). */
#define HOSTS_COPIES_EXCEPT_SQL(hash, w, except)                                                   \
	"(SELECT COUNT(*) FROM chunk_replicas xr LEFT JOIN hosts xh ON xh.id = xr.host_id WHERE "  \
	"xr.chunk_hash = " hash " AND xr.state = 'ok' AND xr.holder <> " except " AND "            \
	"((xr.holder = 'hub' AND " w ".storage <> 'hosts' AND NOT EXISTS (SELECT 1 FROM "          \
	"workspace_chunks xg WHERE xg.workspace_id = " w ".id AND xg.chunk_hash = " hash " AND "   \
	"xg.proven = 0)) OR (xh.workspace_id = " w ".id AND xh.revoked_at IS NULL AND "            \
	"xh.last_seen + CAST(" w ".replica_grace_s AS BIGINT) * 1000 > ?)))"

/* enrol.c */
enum MHD_Result api_host_invite(struct req *r);
enum MHD_Result api_host_join(struct req *r);
enum MHD_Result api_hosts(struct req *r);
enum MHD_Result api_host_heartbeat(struct req *r);
/* DELETE /workspaces/W/hosts/H: revoke the host. */
enum MHD_Result api_host_remove(struct req *r);
/* Workspace ws was deleted (in the caller's transaction): its hosts go
 * offline and their relay slugs retire at once. Their credentials stay, so
 * each is told 410 workspace_deleted and stops. DB_DONE or DB_ERR. */
int hosts_workspace_deleted(struct db *db, int64_t ws, int64_t now);

/* policy.c */
enum MHD_Result api_host_policies(struct req *r);
enum MHD_Result api_host_policy_set(struct req *r);

/* data.c */
enum MHD_Result api_host_replicas(struct req *r);
enum MHD_Result api_tree(struct req *r);
enum MHD_Result api_manifest(struct req *r);
enum MHD_Result api_token_create(struct req *r);
/* POST hosts/self/chunk-check {token}: the chunks a version chunk token grants. */
enum MHD_Result api_host_chunk_check(struct req *r);
enum MHD_Result api_replicas(struct req *r);
enum MHD_Result api_host_scrub(struct req *r);

/* uploads.c: clients' uploads to hosts (upload-targets, the resume probe,
 * a host's report of what it received) */
enum MHD_Result api_upload_targets(struct req *r);
enum MHD_Result api_uploads_missing(struct req *r);
enum MHD_Result api_host_uploads(struct req *r);

/* locations.c: where a file's bytes are; the files below min_replicas. */
enum MHD_Result api_locations(struct req *r);
enum MHD_Result api_under_replicated(struct req *r);

/* relay_url.c */
enum MHD_Result api_host_relay_token(struct req *r);
enum MHD_Result api_host_rotate_url(struct req *r);
enum MHD_Result api_host_revoke_url(struct req *r);
enum MHD_Result api_relay_revocations(struct req *r);

#endif
