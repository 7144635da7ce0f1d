/* Unit tests for core/util's atomic file writer: whole or absent, never
 * readable by others when asked for 0600 (a credential), no temp left. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/core/util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void writes_whole_with_the_mode_asked(void **state)
{
	(void)state;
	char dir[] = "/tmp/roost-util-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof path, "%s/cred.json", dir);
	/* An older file readable by all is replaced by one only its owner reads,
	 * even with a permissive umask. */
	FILE *f = fopen(path, "w");
	fputs("old", f);
	fclose(f);
	chmod(path, 0644);
	mode_t old_umask = umask(0);
	assert_int_equal(write_file_atomic(path, "{\"token\":\"t\"}", 13, 0600), 0);
	umask(old_umask);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 13);
	assert_int_equal(entries(dir), 1); /* no temp file left */
	unlink(path);
	rmdir(dir);
}

static void a_failed_write_leaves_nothing(void **state)
{
	(void)state;
	assert_true(write_file_atomic("/nonexistent-dir/x", "a", 1, 0600) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(writes_whole_with_the_mode_asked),
	    cmocka_unit_test(a_failed_write_leaves_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
