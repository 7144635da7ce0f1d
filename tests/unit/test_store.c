/* Unit tests for the content-addressed chunk store: objects are whole or absent,
 * live at objects/ab/<sha256>, and are verified on every read. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/core/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA_LEN (100 * 1024)

struct fixture {
	char dir[64];
	struct store *s;
	uint8_t data[DATA_LEN];
	uint8_t buf[DATA_LEN + 16];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	strcpy(f->dir, "/tmp/roost-test-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->s = store_open(f->dir);
	assert_non_null(f->s);
	uint64_t x = 88172645463325252ull; /* xorshift64 */
	for (size_t i = 0; i < DATA_LEN; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		f->data[i] = (uint8_t)(x >> 56);
	}
	*state = f;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store_free(f->s);
	nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void object_file(const struct fixture *f, const char *hash, char out[PATH_MAX])
{
	snprintf(out, PATH_MAX, "%s/objects/%.2s/%s", f->dir, hash, hash);
}

/* Entries in a directory, not counting "." and "..". */
static size_t count_entries(const char *path)
{
	DIR *d = opendir(path);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static size_t count_tmp(const struct fixture *f)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/objects/tmp", f->dir);
	return count_entries(p);
}

/* Stored objects: the files in every objects/ab/ directory. */
static size_t count_objects(const struct fixture *f)
{
	char root[PATH_MAX];
	snprintf(root, sizeof root, "%s/objects", f->dir);
	DIR *d = opendir(root);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, "tmp") == 0)
			continue;
		char sub[PATH_MAX + 256];
		snprintf(sub, sizeof sub, "%s/%s", root, e->d_name);
		n += count_entries(sub);
	}
	closedir(d);
	return n;
}

static void put_data(struct fixture *f, char hash[HASH_HEX_LEN + 1])
{
	assert_int_equal(store_put(f->s, f->data, DATA_LEN, hash), 0);
}

static void test_put_then_read_returns_the_same_bytes(void **state)
{
	struct fixture *f = *state;
	char hash[HASH_HEX_LEN + 1];
	put_data(f, hash);

	assert_int_equal(store_read(f->s, hash, f->buf, sizeof f->buf), DATA_LEN);
	assert_memory_equal(f->buf, f->data, DATA_LEN);
}

static void test_put_names_object_by_sha256_under_its_first_two_digits(void **state)
{
	struct fixture *f = *state;
	char hash[HASH_HEX_LEN + 1], want[HASH_HEX_LEN + 1], path[PATH_MAX];
	struct stat st;
	put_data(f, hash);
	hash_hex(f->data, DATA_LEN, want);
	object_file(f, want, path);

	assert_string_equal(hash, want);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, DATA_LEN);
	assert_true(store_has(f->s, hash));
	assert_int_equal(store_size(f->s, hash), DATA_LEN);
}

static void test_putting_the_same_content_twice_keeps_one_object(void **state)
{
	struct fixture *f = *state;
	char a[HASH_HEX_LEN + 1], b[HASH_HEX_LEN + 1];
	put_data(f, a);
	put_data(f, b);

	assert_string_equal(a, b);
	assert_int_equal(count_objects(f), 1);
}

static void test_empty_object_round_trips(void **state)
{
	struct fixture *f = *state;
	char hash[HASH_HEX_LEN + 1], want[HASH_HEX_LEN + 1];
	hash_hex("", 0, want);

	assert_int_equal(store_put(f->s, "", 0, hash), 0);
	assert_string_equal(hash, want);
	assert_int_equal(store_read(f->s, hash, f->buf, sizeof f->buf), 0);
}

static void test_writer_hashes_data_written_in_pieces(void **state)
{
	struct fixture *f = *state;
	char hash[HASH_HEX_LEN + 1], want[HASH_HEX_LEN + 1];
	hash_hex(f->data, DATA_LEN, want);
	struct store_writer *w = store_writer_new(f->s);
	assert_int_equal(store_writer_write(w, f->data, 1), 0);
	assert_int_equal(store_writer_write(w, f->data + 1, 4095), 0);
	assert_int_equal(store_writer_write(w, f->data + 4096, DATA_LEN - 4096), 0);
	assert_int_equal(store_writer_size(w), DATA_LEN);

	assert_int_equal(store_writer_commit(w, want, hash), 0);
	assert_string_equal(hash, want);
	assert_int_equal(store_read(f->s, hash, f->buf, sizeof f->buf), DATA_LEN);
	assert_memory_equal(f->buf, f->data, DATA_LEN);
}

static void test_commit_with_wrong_expected_hash_fails_and_stores_nothing(void **state)
{
	struct fixture *f = *state;
	char actual[HASH_HEX_LEN + 1], claimed[HASH_HEX_LEN + 1], out[HASH_HEX_LEN + 1] = "";
	hash_hex(f->data, DATA_LEN, actual);
	hash_hex(f->data, DATA_LEN - 1, claimed);
	struct store_writer *w = store_writer_new(f->s);
	assert_int_equal(store_writer_write(w, f->data, DATA_LEN), 0);

	assert_int_equal(store_writer_commit(w, claimed, out), -EBADMSG);
	assert_false(store_has(f->s, actual));
	assert_false(store_has(f->s, claimed));
	assert_int_equal(count_objects(f), 0);
	assert_int_equal(count_tmp(f), 0);
}

static void test_flipped_byte_on_disk_is_reported_as_corrupt(void **state)
{
	struct fixture *f = *state;
	char hash[HASH_HEX_LEN + 1], path[PATH_MAX];
	put_data(f, hash);
	object_file(f, hash, path);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b = (uint8_t)(f->data[DATA_LEN / 2] ^ 0x01);
	assert_int_equal(pwrite(fd, &b, 1, DATA_LEN / 2), 1);
	close(fd);

	assert_int_equal(store_read(f->s, hash, f->buf, sizeof f->buf), -EBADMSG);
}

static void test_truncated_object_is_reported_as_corrupt(void **state)
{
	struct fixture *f = *state;
	char hash[HASH_HEX_LEN + 1], path[PATH_MAX];
	put_data(f, hash);
	object_file(f, hash, path);

	assert_int_equal(truncate(path, DATA_LEN - 1), 0);
	assert_int_equal(store_read(f->s, hash, f->buf, sizeof f->buf), -EBADMSG);
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(store_read(f->s, hash, f->buf, sizeof f->buf), -EBADMSG);
}

static void test_a_corrupt_object_is_quarantined_once_and_a_good_one_kept(void **state)
{
	struct fixture *f = *state;
	char hash[HASH_HEX_LEN + 1], path[PATH_MAX], qdir[PATH_MAX];
	put_data(f, hash);
	assert_int_equal(store_quarantine_corrupt(f->s, hash), 1); /* good: stays */
	assert_int_equal(store_read(f->s, hash, f->buf, sizeof f->buf), DATA_LEN);
	object_file(f, hash, path);
	assert_int_equal(truncate(path, DATA_LEN / 2), 0);

	assert_int_equal(store_quarantine_corrupt(f->s, hash), 0);       /* this reader reports */
	assert_int_equal(store_quarantine_corrupt(f->s, hash), -ENOENT); /* the next does not */
	assert_false(store_has(f->s, hash));
	snprintf(qdir, sizeof qdir, "%s/objects/quarantine", f->dir);
	assert_int_equal(count_entries(qdir), 1);
}

static void test_reading_a_missing_object_gives_enoent(void **state)
{
	struct fixture *f = *state;
	char hash[HASH_HEX_LEN + 1];
	hash_hex(f->data, DATA_LEN, hash);

	assert_int_equal(store_read(f->s, hash, f->buf, sizeof f->buf), -ENOENT);
	assert_false(store_has(f->s, hash));
	assert_int_equal(store_size(f->s, hash), -ENOENT);
}

static void test_reading_into_a_too_small_buffer_gives_efbig(void **state)
{
	struct fixture *f = *state;
	char hash[HASH_HEX_LEN + 1];
	put_data(f, hash);

	assert_int_equal(store_read(f->s, hash, f->buf, DATA_LEN - 1), -EFBIG);
}

static void test_remove_deletes_the_object(void **state)
{
	struct fixture *f = *state;
	char hash[HASH_HEX_LEN + 1];
	put_data(f, hash);

	assert_int_equal(store_remove(f->s, hash), 0);
	assert_false(store_has(f->s, hash));
	assert_int_equal(store_read(f->s, hash, f->buf, sizeof f->buf), -ENOENT);
	assert_int_equal(store_remove(f->s, hash), -ENOENT);
}

static void test_open_removes_leftover_temp_files(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/objects/tmp/leftover%d", f->dir, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "partial", 7), 7);
		close(fd);
	}
	assert_int_equal(count_tmp(f), 3);
	store_free(f->s);

	f->s = store_open(f->dir);
	assert_non_null(f->s);
	assert_int_equal(count_tmp(f), 0);
}

/* Several hubs may share one store directory: a hub starting must not
 * remove the temp file of another hub's upload in flight. */
static void test_open_leaves_temp_files_of_live_writers(void **state)
{
	struct fixture *f = *state;
	struct store_writer *w = store_writer_new(f->s);
	assert_int_equal(store_writer_write(w, f->data, DATA_LEN), 0);
	assert_int_equal(count_tmp(f), 1);
	struct store *other = store_open(f->dir);
	assert_non_null(other);
	assert_int_equal(count_tmp(f), 1);
	char hash[HASH_HEX_LEN + 1];
	assert_int_equal(store_writer_commit(w, NULL, hash), 0);
	assert_true(store_has(other, hash));
	store_free(other);
}

/* roost admin gc/backup open the store of a hub that may be serving: an
 * upload's temp file there must survive (it is renamed into place later). */
static void test_open_shared_leaves_temp_files_of_uploads_in_flight(void **state)
{
	struct fixture *f = *state;
	struct store_writer *w = store_writer_new(f->s);
	assert_int_equal(store_writer_write(w, f->data, DATA_LEN), 0);
	assert_int_equal(count_tmp(f), 1);
	struct store *other = store_open_shared(f->dir);
	assert_non_null(other);
	assert_int_equal(count_tmp(f), 1);
	char hash[HASH_HEX_LEN + 1];
	assert_int_equal(store_writer_commit(w, NULL, hash), 0);
	assert_int_equal(store_read(other, hash, f->buf, sizeof f->buf), DATA_LEN);
	store_free(other);
}

static void test_reopened_store_keeps_its_objects(void **state)
{
	struct fixture *f = *state;
	char hash[HASH_HEX_LEN + 1];
	put_data(f, hash);
	store_free(f->s);

	f->s = store_open(f->dir);
	assert_non_null(f->s);
	assert_int_equal(store_read(f->s, hash, f->buf, sizeof f->buf), DATA_LEN);
	assert_memory_equal(f->buf, f->data, DATA_LEN);
}

static void test_commit_leaves_no_temp_file(void **state)
{
	struct fixture *f = *state;
	char hash[HASH_HEX_LEN + 1];
	struct store_writer *w = store_writer_new(f->s);
	assert_int_equal(store_writer_write(w, f->data, DATA_LEN), 0);
	assert_int_equal(count_tmp(f), 1); /* the write goes to a temp file first */

	assert_int_equal(store_writer_commit(w, NULL, hash), 0);
	assert_int_equal(count_tmp(f), 0);
	assert_int_equal(count_objects(f), 1);
}

static void test_abort_leaves_no_temp_file_and_no_object(void **state)
{
	struct fixture *f = *state;
	struct store_writer *w = store_writer_new(f->s);
	assert_int_equal(store_writer_write(w, f->data, DATA_LEN), 0);
	assert_int_equal(count_tmp(f), 1);

	store_writer_abort(w);
	assert_int_equal(count_tmp(f), 0);
	assert_int_equal(count_objects(f), 0);
}

/* A file where the object's directory should be makes the final rename fail. */
static void test_failed_rename_leaves_no_temp_file(void **state)
{
	struct fixture *f = *state;
	char hash[HASH_HEX_LEN + 1], path[PATH_MAX];
	hash_hex(f->data, DATA_LEN, hash);
	snprintf(path, sizeof path, "%s/objects/%.2s", f->dir, hash);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	struct store_writer *w = store_writer_new(f->s);
	assert_int_equal(store_writer_write(w, f->data, DATA_LEN), 0);

	assert_int_equal(store_writer_commit(w, NULL, hash), -ENOTDIR);
	assert_int_equal(count_tmp(f), 0);
}

#define store_test(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    store_test(test_put_then_read_returns_the_same_bytes),
	    store_test(test_put_names_object_by_sha256_under_its_first_two_digits),
	    store_test(test_putting_the_same_content_twice_keeps_one_object),
	    store_test(test_empty_object_round_trips),
	    store_test(test_writer_hashes_data_written_in_pieces),
	    store_test(test_commit_with_wrong_expected_hash_fails_and_stores_nothing),
	    store_test(test_flipped_byte_on_disk_is_reported_as_corrupt),
	    store_test(test_truncated_object_is_reported_as_corrupt),
	    store_test(test_a_corrupt_object_is_quarantined_once_and_a_good_one_kept),
	    store_test(test_reading_a_missing_object_gives_enoent),
	    store_test(test_reading_into_a_too_small_buffer_gives_efbig),
	    store_test(test_remove_deletes_the_object),
	    store_test(test_open_removes_leftover_temp_files),
	    store_test(test_open_leaves_temp_files_of_live_writers),
	    store_test(test_open_shared_leaves_temp_files_of_uploads_in_flight),
	    store_test(test_reopened_store_keeps_its_objects),
	    store_test(test_commit_leaves_no_temp_file),
	    store_test(test_abort_leaves_no_temp_file_and_no_object),
	    store_test(test_failed_rename_leaves_no_temp_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
