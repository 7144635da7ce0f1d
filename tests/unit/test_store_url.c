/* Unit tests for core/store_s3's settings: the s3:// URL of --store and the
 * credentials file, each field, the defaults and what is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../src/core/store_impl.h"

/* Parse url; 0 or the error, which *msg then holds (freed by the caller). */
static int parse(struct s3_conf *c, const char *url, char **msg)
{
	memset(c, 0, sizeof *c);
	return s3_conf_parse_url(c, url, msg);
}

static void test_url_path_style_with_every_option(void **state)
{
	(void)state;
	struct s3_conf c;
	char *err = NULL;
	assert_int_equal(parse(&c,
	                       "s3://my-bucket/team/a/?endpoint=http%3A%2F%2F127.0.0.1%3A9000/"
	                       "&region=eu-west-1&addressing=path",
	                       &err),
	                 0);
	assert_null(err);
	assert_string_equal(c.bucket, "my-bucket");
	assert_string_equal(c.prefix, "team/a");
	assert_string_equal(c.endpoint, "http://127.0.0.1:9000");
	assert_string_equal(c.region, "eu-west-1");
	assert_false(c.virtual_hosted);
	s3_conf_fini(&c);
}

static void test_url_defaults_are_aws_virtual_hosted_in_us_east_1(void **state)
{
	(void)state;
	struct s3_conf c;
	char *err = NULL;
	assert_int_equal(parse(&c, "s3://bucket", &err), 0);
	assert_string_equal(c.prefix, "");
	assert_string_equal(c.region, "us-east-1");
	assert_string_equal(c.endpoint, "https://s3.us-east-1.amazonaws.com");
	assert_true(c.virtual_hosted);
	s3_conf_fini(&c);
	/* With an endpoint of one's own, path style unless asked. */
	assert_int_equal(parse(&c, "s3://bucket/p?endpoint=https://minio.lan", &err), 0);
	assert_false(c.virtual_hosted);
	s3_conf_fini(&c);
	assert_int_equal(
	    parse(&c, "s3://bucket/p?endpoint=https://minio.lan&addressing=virtual", &err), 0);
	assert_true(c.virtual_hosted);
	s3_conf_fini(&c);
}

static void test_url_refusals_say_what_is_wrong(void **state)
{
	(void)state;
	static const struct {
		const char *url, *says;
	} bad[] = {
	    {"http://bucket/p", "not an s3:// URL"},
	    {"s3://Bucket/p", "bucket name"},
	    {"s3://ab/p", "bucket name"},
	    {"s3://bucket/a/../b", "prefix"},
	    {"s3://bucket/a b", "prefix"},
	    {"s3://bucket/p?endpoint=ftp://x", "endpoint"},
	    {"s3://bucket/p?endpoint=http://user@x", "endpoint"},
	    {"s3://bucket/p?endpoint=http://x/path", "endpoint"},
	    {"s3://bucket/p?region=eu west", "region"},
	    {"s3://bucket/p?addressing=sideways", "path or virtual"},
	    {"s3://bucket/p?colour=blue", "unknown option"},
	    {"s3://bucket/p?endpoint", "NAME=VALUE"},
	    {"s3://bucket/p?endpoint=http://x%2", "%-escape"},
	    {"s3://bucket/p?endpoint=http://x%00", "%-escape"},
	    {"s3://my.bucket/p?endpoint=https://x&addressing=virtual", "addressing=path"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct s3_conf c;
		char *err = NULL;
		assert_int_equal(parse(&c, bad[i].url, &err), -22 /* EINVAL */);
		assert_non_null(err);
		if (!strstr(err, bad[i].says))
			fail_msg("%s: '%s' does not say '%s'", bad[i].url, err, bad[i].says);
		free(err);
		s3_conf_fini(&c);
	}
}

static void test_creds_file_with_comments_and_spaces(void **state)
{
	(void)state;
	struct s3_conf c = {0};
	char *err = NULL;
	assert_int_equal(s3_conf_parse_creds(&c,
	                                     "# roost's bucket\n"
	                                     "  access_key_id = AKIA123 \r\n"
	                                     "\n"
	                                     "secret_access_key=s3cr=t/+x\n"
	                                     "session_token=tok",
	                                     &err),
	                 0);
	assert_string_equal(c.access_key, "AKIA123");
	assert_string_equal(c.secret_key, "s3cr=t/+x");
	assert_string_equal(c.session_token, "tok");
	s3_conf_fini(&c);
}

static void test_creds_file_refusals(void **state)
{
	(void)state;
	static const struct {
		const char *text, *says;
	} bad[] = {
	    {"access_key_id=A\n", "needs both"},
	    {"secret_access_key=B\n", "needs both"},
	    {"access_key_id=A\nsecret_access_key=B\npassword=C\n", "line 3: unknown name"},
	    {"access_key_id\n", "line 1: expected NAME=VALUE"},
	    {"access_key_id=\nsecret_access_key=B\n", "needs a value"},
	    {"access_key_id=A:B\nsecret_access_key=B\n", "needs a value"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct s3_conf c = {0};
		char *err = NULL;
		assert_int_equal(s3_conf_parse_creds(&c, bad[i].text, &err), -22);
		if (!err || !strstr(err, bad[i].says))
			fail_msg("%s: '%s' does not say '%s'", bad[i].text, err ? err : "",
			         bad[i].says);
		free(err);
		s3_conf_fini(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url_path_style_with_every_option),
	    cmocka_unit_test(test_url_defaults_are_aws_virtual_hosted_in_us_east_1),
	    cmocka_unit_test(test_url_refusals_say_what_is_wrong),
	    cmocka_unit_test(test_creds_file_with_comments_and_spaces),
	    cmocka_unit_test(test_creds_file_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
