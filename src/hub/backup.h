/* backup: roost admin backup and roost admin restore (docs/operations.md,
 * "Backups").
 *
 * A backup directory holds one complete backup: objects/ab/<sha256> (the
 * chunks, the layout of a hub's store), metadata-<ms>.db or .pgdump (the
 * metadata: SQLite's VACUUM INTO, or pg_dump -Fc) and manifest.json, written
 * last and atomically: what the backup holds, with hashes. Without a manifest
 * a directory holds no backup; a new backup into it leaves the previous one
 * restorable until its own manifest replaces the old one.
 *
 * Threads: the main thread of a `roost admin backup|restore` process. */
#ifndef ROOST_HUB_BACKUP_H
#define ROOST_HUB_BACKUP_H

#include "hub.h"

#define BACKUP_FORMAT   "roost-backup-1"
#define BACKUP_MANIFEST "manifest.json"

/* Back up the hub cfg names (its data dir and database) into dest, while it
 * serves. Progress on stderr, a summary on stdout. Exit code. */
int hub_backup(const struct hub_config *cfg, const char *dest);
/* Build a hub in data_dir (absent or empty) from the backup in from, every
 * chunk and the metadata verified; a PostgreSQL backup goes into db_url, an
 * empty database. Exit code. */
int hub_restore(const char *from, const char *data_dir, const char *db_url);

/* Helpers the two share (backup.c). */
/* Run argv (argv[0] looked up on PATH) with stdout to /dev/null; its stderr is
 * ours. 0 when it exited 0, else -1 with a message on stderr. */
int backup_run_tool(const char *what, char *const argv[]);
/* SHA-256 and size of the file at path: 0 or -errno. */
int backup_hash_file(const char *path, char hex[65], int64_t *size);

#endif
