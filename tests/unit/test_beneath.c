/* Unit tests for openat_beneath (core/util): what the host's content server
 * and the dashboard's file server rely on to stay inside their directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[64];  /* /tmp/roost-beneath-XXXXXX */
static char root[96]; /* top/root: the directory opened beneath */
static int dfd;

static void put(const char *rel, const char *text)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", top, rel);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(top, sizeof top, "/tmp/roost-beneath-XXXXXX");
	assert_non_null(mkdtemp(top));
	snprintf(root, sizeof root, "%s/root", top);
	assert_int_equal(mkdir(root, 0700), 0);
	char p[256];
	snprintf(p, sizeof p, "%s/sub", root);
	assert_int_equal(mkdir(p, 0700), 0);
	put("secret", "outside");
	put("root/sub/file", "inside");
	snprintf(p, sizeof p, "%s/sub/link", root);
	assert_int_equal(symlink("file", p), 0); /* stays beneath */
	snprintf(p, sizeof p, "%s/out", root);
	assert_int_equal(symlink("../secret", p), 0); /* leaves */
	snprintf(p, sizeof p, "%s/subdir", root);
	assert_int_equal(symlink("sub", p), 0); /* a directory link, beneath */
	dfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(dfd);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", top);
	return system(cmd) == 0 ? 0 : -1;
}

static void reads(int fd, const char *want)
{
	assert_true(fd >= 0);
	char buf[32] = {0};
	assert_int_equal(read(fd, buf, sizeof buf - 1), (ssize_t)strlen(want));
	assert_string_equal(buf, want);
	close(fd);
}

static void test_beneath_opens_a_file_inside_with_or_without_a_leading_slash(void **state)
{
	(void)state;
	reads(openat_beneath(dfd, "sub/file", O_RDONLY, 0, 0), "inside");
	reads(openat_beneath(dfd, "/sub/file", O_RDONLY, 0, BENEATH_NO_SYMLINKS), "inside");
}

static void test_beneath_refuses_dotdot_out_of_the_directory(void **state)
{
	(void)state;
	errno = 0;
	assert_int_equal(openat_beneath(dfd, "../secret", O_RDONLY, 0, 0), -1);
	assert_int_equal(errno, EXDEV);
	assert_int_equal(openat_beneath(dfd, "sub/../../secret", O_RDONLY, 0, 0), -1);
}

static void test_beneath_never_follows_a_symlink_as_the_last_component(void **state)
{
	(void)state;
	assert_int_equal(openat_beneath(dfd, "sub/link", O_RDONLY, 0, 0), -1);
	assert_int_equal(openat_beneath(dfd, "out", O_RDONLY, 0, 0), -1);
}

static void test_beneath_follows_inner_symlinks_only_when_allowed(void **state)
{
	(void)state;
	reads(openat_beneath(dfd, "subdir/file", O_RDONLY, 0, 0), "inside");
	errno = 0;
	assert_int_equal(openat_beneath(dfd, "subdir/file", O_RDONLY, 0, BENEATH_NO_SYMLINKS), -1);
	assert_int_equal(errno, ELOOP);
}

static void test_beneath_creates_with_the_mode_given(void **state)
{
	(void)state;
	mode_t old = umask(0);
	int fd =
	    openat_beneath(dfd, "sub/new", O_WRONLY | O_CREAT | O_EXCL, 0640, BENEATH_NO_SYMLINKS);
	umask(old);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_beneath_opens_a_file_inside_with_or_without_a_leading_slash),
	    cmocka_unit_test(test_beneath_refuses_dotdot_out_of_the_directory),
	    cmocka_unit_test(test_beneath_never_follows_a_symlink_as_the_last_component),
	    cmocka_unit_test(test_beneath_follows_inner_symlinks_only_when_allowed),
	    cmocka_unit_test(test_beneath_creates_with_the_mode_given),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
