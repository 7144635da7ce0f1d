/* Unit tests for which uploaded types a browser may show inline (content.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/core/content.h"

static void test_passive_types_show_inline(void **state)
{
	(void)state;
	assert_true(content_inline_ok("image/png"));
	assert_true(content_inline_ok("IMAGE/JPEG"));
	assert_true(content_inline_ok("text/plain; charset=utf-8"));
	assert_true(content_inline_ok("video/mp4"));
}

static void test_active_and_unknown_types_are_attachments(void **state)
{
	(void)state;
	const char *active[] = {"text/html",
	                        "text/html; charset=utf-8",
	                        "image/svg+xml",
	                        "application/xhtml+xml",
	                        "text/xml",
	                        "application/xml",
	                        "application/javascript",
	                        "text/javascript",
	                        "application/pdf",
	                        "text/plain+html",
	                        "text/plainx",
	                        "image/png, text/html",
	                        "application/octet-stream",
	                        "",
	                        NULL};
	for (size_t i = 0; i < sizeof active / sizeof *active; i++)
		assert_false(content_inline_ok(active[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_passive_types_show_inline),
	    cmocka_unit_test(test_active_and_unknown_types_are_attachments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
