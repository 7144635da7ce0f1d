/* The hub's operations (src/hub/ops) on an in-memory SQLite database, with
 * no HTTP: a workspace with an owner and a member, a chunk store in a
 * temporary directory. */
#include "../../src/hub/possess.h"
#include "../../src/hub/members.h"
#include "../../src/hub/feed.h"
#include "../../src/hub/ops/ops.h"
#include "../../src/core/util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct world {
	struct hub hub;
	struct db *db;
	char dir[64];
	int64_t ws, owner, member;
};

static int64_t add_user(struct db *db, const char *email)
{
	int64_t id = 0;
	assert_int_equal(db_int64(db, &id,
	                          "INSERT INTO users(email, password_hash, created_at) "
	                          "VALUES(?, 'x', ?) RETURNING id",
	                          email, now_ms()),
	                 DB_ROW);
	return id;
}

static int setup(void **state)
{
	struct world *w = xcalloc(1, sizeof *w);
	char *err = NULL;
	w->db = db_open("sqlite::memory:", &err);
	assert_non_null(w->db);
	assert_int_equal(db_migrate(w->db), DB_DONE);
	snprintf(w->dir, sizeof w->dir, "/tmp/roost-test-ops-XXXXXX");
	assert_non_null(mkdtemp(w->dir));
	w->hub.store = store_open(w->dir);
	assert_non_null(w->hub.store);
	feed_init(&w->hub);
	w->owner = add_user(w->db, "owner@example.com");
	w->member = add_user(w->db, "member@example.com");
	assert_int_equal(hub_create_workspace(w->db, "default", w->owner, &w->ws), DB_DONE);
	assert_int_equal(db_run(w->db,
	                        "INSERT INTO memberships(workspace_id, user_id, role, created_at) "
	                        "VALUES(?,?,'member',?)",
	                        w->ws, w->member, now_ms()),
	                 DB_DONE);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	db_close(w->db);
	store_free(w->hub.store);
	feed_free(&w->hub);
	char *cmd = xasprintf("rm -rf '%s'", w->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(w);
	return 0;
}

static void ctx_as(struct world *w, struct op_ctx *c, int64_t user, enum role role)
{
	memset(c, 0, sizeof *c);
	c->hub = &w->hub;
	c->db = w->db;
	c->ws_id = w->ws;
	c->user_id = user;
	c->role = role;
}

/* Store data as a chunk the actor uploaded (as a chunk PUT records it). */
static void upload(struct world *w, struct op_ctx *c, const char *data, struct chunk_ref *ref)
{
	ref->size = (int64_t)strlen(data);
	assert_int_equal(store_put(w->hub.store, data, strlen(data), ref->hash), 0);
	assert_int_equal(
	    db_run(w->db,
	           "INSERT INTO workspace_chunks(workspace_id, chunk_hash, touched_at) "
	           "VALUES(?,?,?) ON CONFLICT(workspace_id, chunk_hash) DO NOTHING",
	           w->ws, ref->hash, now_ms()),
	    DB_DONE);
	assert_int_equal(possess_record(c, ref, true), DB_DONE);
}

static enum op_code commit(struct op_ctx *c, const char *path, const struct chunk_ref *ref,
                           struct commit_result *out, struct op_err *e)
{
	struct commit_args a = {.path = path,
	                        .size = ref->size,
	                        .hash = ref->hash, /* one chunk: the file's hash is its hash */
	                        .chunks = ref,
	                        .n = 1,
	                        .content_type = "text/plain",
	                        .base = -1,
	                        .src = SRC_CLIENT};
	return op_commit(c, &a, out, e);
}

static int64_t count(struct world *w, const char *sql)
{
	int64_t n = -1;
	assert_int_equal(db_int64(w->db, &n, sql, w->ws), DB_ROW);
	return n;
}

static void test_commit_makes_a_version_that_lists(void **state)
{
	struct world *w = *state;
	struct op_ctx c;
	struct op_err e = {0};
	struct chunk_ref ref;
	struct commit_result out;
	struct file_info fi;
	ctx_as(w, &c, w->owner, ROLE_OWNER);
	upload(w, &c, "hello", &ref);
	assert_int_equal(commit(&c, "/docs/a.txt", &ref, &out, &e), OP_OK);
	assert_int_equal(out.number, 1);
	assert_int_equal(meta_file_get(w->db, w->ws, "/docs/a.txt", &fi), 1);
	assert_int_equal(fi.size, 5);
	assert_string_equal(fi.hash, ref.hash);
	assert_int_equal(count(w, "SELECT COUNT(*) FROM audit_log WHERE workspace_id = ? AND "
	                          "action = 'file.version'"),
	                 1);
	assert_int_equal(count(w, "SELECT COUNT(*) FROM changes WHERE workspace_id = ? AND "
	                          "kind = 'file.version'"),
	                 1);
	op_ctx_fini(&c);
}

static void test_commit_of_an_unproven_chunk_is_missing_chunks(void **state)
{
	struct world *w = *state;
	struct op_ctx c;
	struct op_err e = {0};
	struct chunk_ref ref;
	struct commit_result out;
	ctx_as(w, &c, w->owner, ROLE_OWNER);
	upload(w, &c, "secret", &ref);
	ctx_as(w, &c, w->member, ROLE_MEMBER); /* someone else names it by hash */
	assert_int_equal(commit(&c, "/b.txt", &ref, &out, &e), OP_MISSING_CHUNKS);
	assert_int_equal(json_array_size(json_object_get(e.detail, "missing")), 1);
	assert_int_equal(op_http_status(e.code), 409);
	op_err_fini(&e);
	op_ctx_fini(&c);
}

static void test_mkdir_where_a_folder_exists_is_exists(void **state)
{
	struct world *w = *state;
	struct op_ctx c;
	struct op_err e = {0};
	struct mkdir_result out;
	ctx_as(w, &c, w->owner, ROLE_OWNER);
	assert_int_equal(op_mkdir(&c, "/a", false, &out, &e), OP_OK);
	assert_true(out.created);
	assert_int_equal(op_mkdir(&c, "/a", false, &out, &e), OP_EXISTS);
	assert_string_equal(op_code_json(e.code), "exists");
	assert_int_equal(op_http_status(e.code), 409);
	assert_int_equal(op_dav_status(e.code), 405);
	assert_int_equal(op_mkdir(&c, "/a", true, &out, &e), OP_OK);
	assert_false(out.created);
	assert_int_equal(op_mkdir(&c, "/x/y", false, &out, &e), OP_PARENT_NOT_FOUND);
	op_ctx_fini(&c);
}

static void test_meta_mkdirs_reports_a_file_in_the_way(void **state)
{
	struct world *w = *state;
	struct op_ctx c;
	struct op_err e = {0};
	struct chunk_ref ref;
	struct commit_result out;
	int64_t id = 0;
	bool created;
	ctx_as(w, &c, w->owner, ROLE_OWNER);
	upload(w, &c, "file", &ref);
	assert_int_equal(commit(&c, "/f", &ref, &out, &e), OP_OK);
	assert_int_equal(meta_mkdirs(w->db, w->ws, "/f/sub", w->owner, &id, &created), OP_EXISTS);
	assert_int_equal(meta_mkdirs(w->db, w->ws, "/g/sub", w->owner, &id, &created), OP_OK);
	assert_true(created);
	op_ctx_fini(&c);
}

static void test_move_onto_an_existing_path_is_exists(void **state)
{
	struct world *w = *state;
	struct op_ctx c;
	struct op_err e = {0};
	struct mkdir_result m;
	ctx_as(w, &c, w->owner, ROLE_OWNER);
	assert_int_equal(op_mkdir(&c, "/a", false, &m, &e), OP_OK);
	assert_int_equal(op_mkdir(&c, "/b", false, &m, &e), OP_OK);
	assert_int_equal(op_move(&c, "/a", "/b", &e), OP_EXISTS);
	assert_int_equal(op_move(&c, "/a", "/a/in", &e), OP_INVALID_MOVE);
	assert_int_equal(op_move(&c, "/a", "/c", &e), OP_OK);
	int64_t id;
	assert_int_equal(meta_folder_id(w->db, w->ws, "/c", &id), 1);
	assert_int_equal(meta_folder_id(w->db, w->ws, "/a", &id), 0);
	op_ctx_fini(&c);
}

static void test_delete_then_restore_from_the_trash(void **state)
{
	struct world *w = *state;
	struct op_ctx c;
	struct op_err e = {0};
	struct chunk_ref ref;
	struct commit_result out;
	struct trash_result tr;
	struct file_info fi;
	bool is_file;
	ctx_as(w, &c, w->owner, ROLE_OWNER);
	upload(w, &c, "keep me", &ref);
	assert_int_equal(commit(&c, "/d/k.txt", &ref, &out, &e), OP_OK);
	assert_int_equal(op_delete(&c, "/d", &is_file, &e), OP_OK);
	assert_false(is_file);
	assert_int_equal(meta_file_get(w->db, w->ws, "/d/k.txt", &fi), 0);
	assert_int_equal(op_delete(&c, "/d", &is_file, &e), OP_NOT_FOUND);
	assert_int_equal(op_trash_restore(&c, out.file_id, &tr, &e), OP_OK);
	assert_string_equal(tr.path, "/d/k.txt");
	free(tr.path);
	assert_int_equal(meta_file_get(w->db, w->ws, "/d/k.txt", &fi), 1);
	assert_int_equal(op_trash_restore(&c, out.file_id, &tr, &e), OP_NOT_FOUND);
	op_ctx_fini(&c);
}

static void test_version_restore_makes_a_new_version(void **state)
{
	struct world *w = *state;
	struct op_ctx c;
	struct op_err e = {0};
	struct chunk_ref one, two;
	struct commit_result out;
	ctx_as(w, &c, w->owner, ROLE_OWNER);
	upload(w, &c, "one", &one);
	upload(w, &c, "two", &two);
	assert_int_equal(commit(&c, "/v", &one, &out, &e), OP_OK);
	assert_int_equal(commit(&c, "/v", &two, &out, &e), OP_OK);
	assert_int_equal(op_version_restore(&c, "/v", 1, &out, &e), OP_OK);
	assert_int_equal(out.number, 3);
	assert_string_equal(out.hash, one.hash);
	assert_int_equal(op_version_restore(&c, "/v", 9, &out, &e), OP_NO_SUCH_VERSION);
	op_ctx_fini(&c);
}

static void test_acl_denial_is_forbidden_or_not_found(void **state)
{
	struct world *w = *state;
	struct op_ctx own, mem;
	struct op_err e = {0};
	struct mkdir_result m;
	ctx_as(w, &own, w->owner, ROLE_OWNER);
	assert_int_equal(op_mkdir(&own, "/ro", false, &m, &e), OP_OK);
	assert_int_equal(op_mkdir(&own, "/hidden", false, &m, &e), OP_OK);
	assert_int_equal(op_acl_set(&own, "/ro", w->member, PERM_READ, &e), OP_OK);
	assert_int_equal(op_acl_set(&own, "/hidden", w->member, PERM_NONE, &e), OP_OK);
	ctx_as(w, &mem, w->member, ROLE_MEMBER);
	assert_int_equal(op_mkdir(&mem, "/ro/x", false, &m, &e), OP_FORBIDDEN);
	assert_int_equal(op_http_status(e.code), 403);
	assert_int_equal(op_mkdir(&mem, "/hidden/x", false, &m, &e), OP_NOT_FOUND);
	assert_int_equal(op_acl_set(&mem, "/ro", w->member, PERM_WRITE, &e), OP_FORBIDDEN);
	assert_int_equal(op_acl_set(&own, "/ro", 999, PERM_WRITE, &e), OP_NOT_A_MEMBER);
	assert_int_equal(count(w, "SELECT COUNT(*) FROM audit_log WHERE workspace_id = ? AND "
	                          "action = 'acl.set'"),
	                 2);
	op_ctx_fini(&own);
	op_ctx_fini(&mem);
}

static void test_share_create_stores_only_the_token_hash(void **state)
{
	struct world *w = *state;
	struct op_ctx c;
	struct op_err e = {0};
	struct mkdir_result m;
	struct share_result s;
	ctx_as(w, &c, w->owner, ROLE_OWNER);
	assert_int_equal(op_mkdir(&c, "/pub", false, &m, &e), OP_OK);
	struct share_args a = {.path = "/pub", .write = true, .ttl_s = 60};
	assert_int_equal(op_share_create(&c, &a, &s, &e), OP_OK);
	assert_true(s.id > 0 && s.expires_at > 0 && strlen(s.token) > 20);
	int64_t n = -1;
	assert_int_equal(
	    db_int64(w->db, &n, "SELECT COUNT(*) FROM share_links WHERE token_hash = ?", s.token),
	    DB_ROW);
	assert_int_equal(n, 0);
	struct share_args none = {.path = "/nope"};
	assert_int_equal(op_share_create(&c, &none, &s, &e), OP_NOT_FOUND);
	op_ctx_fini(&c);
}

static void test_reserved_names_take_no_writes(void **state)
{
	struct world *w = *state;
	struct op_ctx c;
	struct op_err e = {0};
	struct mkdir_result m;
	ctx_as(w, &c, w->owner, ROLE_OWNER);
	assert_int_equal(op_mkdir(&c, "/.roost", false, &m, &e), OP_RESERVED_NAME);
	assert_string_equal(op_code_json(e.code), "reserved_name");
	op_ctx_fini(&c);
}

/* Every code has one JSON name (no two alike) and an error status for the
 * API and for WebDAV: an adapter can never fall through to a guess. */
static void test_every_code_maps_to_a_name_and_statuses(void **state)
{
	(void)state;
	for (int i = OP_OK + 1; i < OP_CODES; i++) {
		const char *name = op_code_json((enum op_code)i);
		assert_non_null(name);
		assert_true(op_http_status((enum op_code)i) >= 400);
		assert_true(op_dav_status((enum op_code)i) >= 400);
		for (int j = i + 1; j < OP_CODES; j++)
			assert_string_not_equal(name, op_code_json((enum op_code)j));
	}
	assert_int_equal(op_http_status(OP_EXISTS), 409);
	assert_int_equal(op_dav_status(OP_EXISTS), 405);
	assert_int_equal(op_dav_status(OP_UPLOAD_LIMIT), 507);
	assert_int_equal(op_http_status(OP_STORAGE), 503);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_commit_makes_a_version_that_lists, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_commit_of_an_unproven_chunk_is_missing_chunks,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mkdir_where_a_folder_exists_is_exists, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_meta_mkdirs_reports_a_file_in_the_way, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_move_onto_an_existing_path_is_exists, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_delete_then_restore_from_the_trash, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_version_restore_makes_a_new_version, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_acl_denial_is_forbidden_or_not_found, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_share_create_stores_only_the_token_hash, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_reserved_names_take_no_writes, setup, teardown),
	    cmocka_unit_test(test_every_code_maps_to_a_name_and_statuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
