/* Unit tests for the database layer's typed binding (db.h's db_query, db_run,
 * db_int64) on an in-memory SQLite database: each C type binds as what it is,
 * and a count of arguments that differs from the placeholders fails cleanly;
 * and, on a file, that checkpoints happen on their own thread. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../src/db/db.h"

static int setup(void **state)
{
	char *err = NULL;
	struct db *db = db_open("sqlite::memory:", &err);
	if (!db)
		return -1;
	if (db_exec(db, "CREATE TABLE t (i BIGINT, s TEXT)") != DB_DONE)
		return -1;
	*state = db;
	return 0;
}

static int teardown(void **state)
{
	db_close(*state);
	return 0;
}

/* Each integer type, text, NULL pointers and DB_NULL land as their SQL types. */
static void test_each_type_binds_as_itself(void **state)
{
	struct db *db = *state;
	int small = -7;
	unsigned u = 4000000000u;
	size_t z = 12;
	int64_t big = INT64_C(1) << 40;
	const char *none = NULL;
	char buf[] = "buf";
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (?, ?)", small, "a"), DB_DONE);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (?, ?)", u, buf), DB_DONE);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (?, ?)", z, none), DB_DONE);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (?, ?)", big, DB_NULL), DB_DONE);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (?, ?)", DB_NULL, "n"), DB_DONE);

	int64_t v = 0;
	assert_int_equal(db_int64(db, &v, "SELECT SUM(i) FROM t"), DB_ROW);
	assert_true(v == -7 + 4000000000 + 12 + (INT64_C(1) << 40));
	assert_int_equal(db_int64(db, &v, "SELECT COUNT(*) FROM t WHERE s IS NULL"), DB_ROW);
	assert_int_equal(v, 2);
	assert_int_equal(db_int64(db, &v, "SELECT COUNT(*) FROM t WHERE i IS NULL"), DB_ROW);
	assert_int_equal(v, 1);
	assert_int_equal(db_int64(db, &v, "SELECT typeof(i) = 'integer' FROM t WHERE s = ?", "a"),
	                 DB_ROW);
	assert_int_equal(v, 1);

	struct db_stmt *st = db_query(db, "SELECT s FROM t WHERE i = ?", u);
	assert_non_null(st);
	assert_int_equal(db_step(st), DB_ROW);
	assert_string_equal(db_col_text(st, 0), "buf");
	db_finalize(st);
}

/* Too few or too many arguments: the call fails before anything runs. */
static void test_a_wrong_count_fails_and_changes_nothing(void **state)
{
	struct db *db = *state;
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (?, ?)", 1), DB_ERR);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (?, ?)", 1, "x", 3), DB_ERR);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (1, 'x')", 1), DB_ERR);
	assert_null(db_query(db, "SELECT * FROM t WHERE i = ?"));
	int64_t v = -1;
	assert_int_equal(db_int64(db, &v, "SELECT COUNT(*) FROM t WHERE i = ? AND s = ?", 1),
	                 DB_ERR);
	assert_int_equal(v, -1);
	assert_int_equal(db_int64(db, &v, "SELECT COUNT(*) FROM t"), DB_ROW);
	assert_int_equal(v, 0);
	assert_int_equal(db_placeholders("SELECT ?, ?, ?"), 3);
	assert_int_equal(db_placeholders("SELECT 1"), 0);
	assert_int_equal(db_placeholders("SELECT ?1, ?2, ?1 || ?"), 3);
	assert_int_equal(db_run(db, "INSERT INTO t VALUES (?1, ?1)", 5), DB_DONE);
	assert_int_equal(db_int64(db, &v, "SELECT COUNT(*) FROM t WHERE i = ?1 AND s = ?1", 5),
	                 DB_ROW);
	assert_int_equal(v, 1);
}

/* Many arguments map in order (the macro's upper range). */
static void test_many_arguments_keep_their_order(void **state)
{
	struct db *db = *state;
	int64_t v = 0;
	assert_int_equal(
	    db_int64(db, &v,
	             "SELECT ?*1 + ?*2 + ?*4 + ?*8 + ?*16 + ?*32 + ?*64 + ?*128 + ?*256 + "
	             "?*512 + ?*1024 + ?*2048",
	             1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0),
	    DB_ROW);
	assert_int_equal(v, 1 + 4 + 16 + 64 + 256 + 1024);
}

/* Database results never equal an -errno value a caller may mix them with. */
static void test_db_errors_are_not_errno_values(void **state)
{
	(void)state;
	int errs[] = {DB_ERR, DB_CONSTRAINT, DB_BUSY};
	for (size_t i = 0; i < 3; i++) {
		assert_true(errs[i] < -4095); /* below every -errno */
		for (size_t j = i + 1; j < 3; j++)
			assert_int_not_equal(errs[i], errs[j]);
	}
	struct db *db = *state;
	assert_int_equal(db_exec(db, "CREATE TABLE u (k TEXT PRIMARY KEY)"), DB_DONE);
	assert_int_equal(db_run(db, "INSERT INTO u VALUES (?)", "k"), DB_DONE);
	assert_int_equal(db_run(db, "INSERT INTO u VALUES (?)", "k"), DB_CONSTRAINT);
	assert_int_not_equal(DB_CONSTRAINT, -ENOENT);
}

/* A database that cannot grow fails its write with DB_ERR and says it is full
 * (db_full: the hub answers 507 out_of_space, not 503); other failures do not. */
static void test_a_full_database_says_so(void **state)
{
	struct db *db = *state;
	assert_false(db_full(db));
	assert_int_equal(db_exec(db, "SELECT * FROM no_such_table"), DB_ERR);
	assert_false(db_full(db));
	assert_int_equal(db_exec(db, "PRAGMA max_page_count = 8"), DB_DONE);
	int rc = DB_DONE;
	for (int i = 0; i < 100 && rc == DB_DONE; i++)
		rc = db_run(db, "INSERT INTO t (i, s) VALUES (?, printf('%.4000c', 'x'))", i);
	assert_int_equal(rc, DB_ERR);
	assert_true(db_full(db));
}

/* Commits leave the WAL's pages to the database file's checkpoint thread
 * (db_sqlite.c): while the connection stays open, the file itself grows as
 * that thread copies them back. (A checkpoint connection that never read the
 * file did nothing, and the WAL grew without end.) */
static void test_a_thread_checkpoints_while_commits_go_on(void **state)
{
	(void)state;
	char dir[] = "/tmp/roost-db-......";
	memset(dir + strlen(dir) - 6, 'X', 6); /* mkdtemp's template */
	assert_non_null(mkdtemp(dir));
	char path[64], wal[80];
	snprintf(path, sizeof path, "%s/t.db", dir);
	snprintf(wal, sizeof wal, "%s-wal", path);
	char *err = NULL;
	struct db *db = db_open(path, &err);
	assert_non_null(db);
	assert_int_equal(db_exec(db, "CREATE TABLE b (v TEXT)"), DB_DONE);
	char blob[2001];
	memset(blob, 'x', sizeof blob - 1);
	blob[sizeof blob - 1] = 0;
	for (int tx = 0; tx < 40; tx++) { /* ~8 MB: well past 1,000 WAL pages */
		assert_int_equal(db_begin(db), DB_DONE);
		for (int i = 0; i < 100; i++)
			assert_int_equal(db_run(db, "INSERT INTO b(v) VALUES(?)", blob), DB_DONE);
		assert_int_equal(db_exec(db, "COMMIT"), DB_DONE);
	}
	struct stat st = {0};
	for (int i = 0; i < 200 && (stat(path, &st) != 0 || st.st_size < (4 << 20)); i++)
		nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
	assert_true(st.st_size >= (4 << 20));
	db_close(db);
	unlink(wal);
	snprintf(wal, sizeof wal, "%s-shm", path);
	unlink(wal);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_each_type_binds_as_itself, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_wrong_count_fails_and_changes_nothing, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_many_arguments_keep_their_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_db_errors_are_not_errno_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_a_full_database_says_so, setup, teardown),
	    cmocka_unit_test(test_a_thread_checkpoints_while_commits_go_on),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
