/* Unit tests for core/util: the atomic file writer (whole or absent, never
 * readable by others when asked for 0600, no temp left), the duration and
 * byte-size parsers behind command-line options, and str_subst. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/core/util.h"

#include <dirent.h>
#include <math.h>
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

static void durations_take_one_unit_suffix(void **state)
{
	(void)state;
	assert_int_equal(parse_duration("0"), 0);
	assert_int_equal(parse_duration("45"), 45);
	assert_int_equal(parse_duration("45s"), 45);
	assert_int_equal(parse_duration("30m"), 30 * 60);
	assert_int_equal(parse_duration("12h"), 12 * 3600);
	assert_int_equal(parse_duration("7d"), 7 * 86400);
	assert_int_equal(parse_duration("2w"), 14 * 86400);
	assert_int_equal(parse_duration("0d"), 0);
}

static void durations_refuse_garbage(void **state)
{
	(void)state;
	static const char *const bad[] = {"",    "d",    "7D",   "7x",   "7dd", "7d ",
	                                  "7 d", "1.5h", "1e3",  "h7",   "7ms", "-1",
	                                  "-1d", "--1",  "0x10", "7d\n", "5s5"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (parse_duration(bad[i]) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(parse_duration(NULL), -1);
}

static void durations_that_overflow_are_refused(void **state)
{
	(void)state;
	assert_int_equal(parse_duration("9223372036854775807"), INT64_MAX);
	assert_int_equal(parse_duration("9223372036854775807s"), INT64_MAX);
	assert_int_equal(parse_duration("9223372036854775808"), -1);
	assert_int_equal(parse_duration("99999999999999999999d"), -1);
	/* The largest count of each unit that fits, and one more. */
	assert_int_equal(parse_duration("153722867280912930m"), 153722867280912930 * 60);
	assert_int_equal(parse_duration("153722867280912931m"), -1);
	assert_int_equal(parse_duration("15250284452471w"), 15250284452471 * 7 * 86400);
	assert_int_equal(parse_duration("15250284452472w"), -1);
}

static void byte_sizes_take_binary_suffixes(void **state)
{
	(void)state;
	assert_true(parse_bytes("0") == 0);
	assert_true(parse_bytes("512") == 512);
	assert_true(parse_bytes("1K") == 1024);
	assert_true(parse_bytes("1.5K") == 1536);
	assert_true(parse_bytes("50M") == 50.0 * 1048576);
	assert_true(parse_bytes("2G") == 2.0 * 1073741824);
	assert_true(parse_bytes("0.5") == 0.5);
	assert_true(parse_bytes("1e3") == 1000); /* strtod's exponent form */
}

static void byte_sizes_refuse_garbage_and_negatives(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",   "K",  "M",   "G",   "1k",  "1P",   "1KB",   "1Ki", "1iB",  "1B", "1 K", "1K ",
	    "5 ", "-1", "-1K", "nan", "inf", "-inf", "1e999", "abc", "1,5K", "K1", ".K",  "1KiBs"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (parse_bytes(bad[i]) != -1)
			fail_msg("accepted \"%s\" as %g", bad[i], parse_bytes(bad[i]));
	assert_true(parse_bytes(NULL) == -1);
}

static void byte_sizes_take_spelt_out_binary_units(void **state)
{
	(void)state;
	assert_true(parse_bytes("10GiB") == 10.0 * (1 << 30));
	assert_true(parse_bytes("512KiB") == 512.0 * 1024);
	assert_true(parse_bytes("2T") == 2.0 * 1099511627776.0);
	assert_true(parse_bytes("1TiB") == 1099511627776.0);
	assert_true(parse_bytes("3MiB") == parse_bytes("3M"));
}

static void byte_sizes_that_overflow_are_refused(void **state)
{
	(void)state;
	/* Finite before the suffix, infinite after it. */
	assert_true(parse_bytes("1e308G") == -1);
	assert_true(parse_bytes("1e300K") == 1e300 * 1024);
	assert_true(isfinite(parse_bytes("1e300")));
}

static void str_subst_fills_the_first_placeholder_only(void **state)
{
	(void)state;
	char *s = str_subst("/files?path=%s", "a%2Fb");
	assert_string_equal(s, "/files?path=a%2Fb");
	free(s);
	/* Other '%' are kept, and so is what arg holds: nothing is a directive. */
	s = str_subst("%d %s %s %n", "%s");
	assert_string_equal(s, "%d %s %s %n");
	free(s);
	s = str_subst("deleted %s", "/x");
	assert_string_equal(s, "deleted /x");
	free(s);
	s = str_subst("/usage", "ignored");
	assert_string_equal(s, "/usage");
	free(s);
	s = str_subst("%s", "");
	assert_string_equal(s, "");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(writes_whole_with_the_mode_asked),
	    cmocka_unit_test(a_failed_write_leaves_nothing),
	    cmocka_unit_test(durations_take_one_unit_suffix),
	    cmocka_unit_test(durations_refuse_garbage),
	    cmocka_unit_test(durations_that_overflow_are_refused),
	    cmocka_unit_test(byte_sizes_take_binary_suffixes),
	    cmocka_unit_test(byte_sizes_refuse_garbage_and_negatives),
	    cmocka_unit_test(byte_sizes_take_spelt_out_binary_units),
	    cmocka_unit_test(byte_sizes_that_overflow_are_refused),
	    cmocka_unit_test(str_subst_fills_the_first_placeholder_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
