/* Unit tests for content-type sniffing (core/sniff.c): the cheap looks of
 * its own give the types libmagic gave, and hand it everything else. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/core/sniff.h"

static const char *type_of(const char *s, size_t n)
{
	static char out[128];
	sniff_type((const uint8_t *)s, n ? n : strlen(s), out);
	return out;
}

static void test_text_and_markup(void **state)
{
	(void)state;
	assert_string_equal(type_of("note 7\nnote 7\nthe quick brown fox\n", 0), "text/plain");
	assert_string_equal(type_of("caf\xc3\xa9 au lait\n", 0), "text/plain");
	assert_string_equal(
	    type_of("<svg xmlns=\"http://www.w3.org/2000/svg\"><script>1</script></svg>", 0),
	    "image/svg+xml");
	assert_string_equal(type_of("{\"a\": [1, 2, 3], \"b\": \"c\"}", 0), "application/json");
	assert_string_equal(type_of("#!/bin/sh\necho hi\n", 0), "text/x-shellscript");
	assert_string_equal(type_of("import os\n\ndef f():\n    return os.getcwd()\n", 0),
	                    "text/x-script.python");
}

static void test_binary(void **state)
{
	(void)state;
	static char buf[4096];
	srand(15);
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (char)(rand() & 0xff);
	buf[0] = 0x10; /* no known first byte */
	assert_string_equal(type_of(buf, sizeof buf), "application/octet-stream");
	memcpy(buf, "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
	assert_string_equal(type_of(buf, sizeof buf), "image/png");
	memcpy(buf, "%PDF-1.4\n", 9);
	assert_string_equal(type_of(buf, sizeof buf), "application/pdf");
	memcpy(buf, "GIF89a", 6);
	assert_string_equal(type_of(buf, sizeof buf), "image/gif");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_and_markup),
	    cmocka_unit_test(test_binary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
