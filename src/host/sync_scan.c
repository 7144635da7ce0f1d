/* sync_scan: whole-folder passes — the folder walked against the index (at
 * start, after an inotify overflow, and every HOST_RESCAN_MS), each file or
 * folder that differs marked dirty; files the index has but the folder lost
 * fetched again (at start) or deleted (later). Run only by the sync thread. */
#include "sync.h"
#include "../core/path.h"
#include "../core/util.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* ---- whole-folder passes ---- */

static void walk(struct host *h, const char *path)
{
	char *local = host_local(h, path);
	DIR *d = opendir(local);
	free(local);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    !name_valid(de->d_name, strlen(de->d_name)))
			continue;
		char *child = path_join(path, de->d_name);
		if (host_ignored(child) || host_policy(h, child) == POL_EXCLUDE) {
			free(child);
			continue;
		}
		char *cl = host_local(h, child);
		struct stat st;
		struct ientry e;
		if (lstat(cl, &st) == 0) {
			int found = idx_get(h->db, child, &e) == 1;
			if (S_ISDIR(st.st_mode)) {
				if (!found)
					host_mark_dirty(h, child, 0);
				walk(h, child);
			} else if (S_ISREG(st.st_mode) && !(found && stat_matches(&e, &st))) {
				host_mark_dirty(h, child, 0);
			}
		}
		free(cl);
		free(child);
	}
	closedir(d);
}

void sync_rescan(struct host *h, bool at_start)
{
	atomic_store(&h->state, 1);
	walk(h, "/");
	/* What the index has here but the folder lost. While we run, the watcher
	 * saw any delete as it happened, so what a later rescan finds missing was
	 * deleted while unwatched (an inotify overflow). At start it was lost
	 * while we were stopped: a disk replaced, files removed by accident, or
	 * a restore from an old backup. That is not a user's delete — it must
	 * not empty the workspace — so the files are fetched again. */
	struct db_stmt *st = db_query(h->db, "SELECT path FROM files WHERE local = 1");
	json_t *gone = json_array();
	while (st && db_step(st) == DB_ROW) {
		char *cl = host_local(h, db_col_text(st, 0));
		struct stat s;
		if (lstat(cl, &s) != 0 && errno == ENOENT)
			json_array_append_new(gone, json_string(db_col_text(st, 0)));
		free(cl);
	}
	db_finalize(st);
	size_t i;
	json_t *p;
	if (at_start && json_array_size(gone)) {
		log_warn("%zu file%s went missing while this host was stopped; fetching them "
		         "again (delete through roost, or while the host runs, to delete)",
		         json_array_size(gone), json_array_size(gone) == 1 ? "" : "s");
		json_array_foreach(gone, i, p) idx_del(h->db, json_string_value(p));
		pthread_mutex_lock(&h->mu);
		h->resync = true; /* the tree pass fetches what the index no longer has */
		pthread_mutex_unlock(&h->mu);
	} else {
		json_array_foreach(gone, i, p) host_mark_dirty(h, json_string_value(p), 0);
	}
	json_decref(gone);
}
