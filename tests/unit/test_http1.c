/* Unit tests for the relay's strict HTTP/1.1 head grammar (src/relay/http1.c):
 * every head two parsers could frame differently is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/relay/http1.h"

#include <string.h>

static int check(enum http1_kind kind, const char *head)
{
	const char *why = NULL;
	int rc = http1_head_check(kind, head, strlen(head), &why);
	if (rc != 0)
		assert_non_null(why);
	return rc;
}

static void plain_requests_pass(void **state)
{
	(void)state;
	assert_int_equal(check(HTTP1_REQUEST, "GET /h/a/x HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	assert_int_equal(check(HTTP1_REQUEST, "PUT /u/t?x=1 HTTP/1.1\r\nHost: x\r\n"
	                                      "Content-Length: 5\r\nX-Empty:\r\n\r\n"),
	                 0);
	assert_int_equal(check(HTTP1_REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n"
	                                      "X-Tab:\ta b\t\r\n\r\n"),
	                 0);
}

static void header_names_must_be_tokens_then_a_colon(void **state)
{
	(void)state;
	assert_int_equal(check(HTTP1_REQUEST, "GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_REQUEST, "GET / HTTP/1.1\r\nContent-Length\t: 5\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_REQUEST, "GET / HTTP/1.1\r\n: x\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_REQUEST, "GET / HTTP/1.1\r\nA/B: x\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_REQUEST, "GET / HTTP/1.1\r\nNoColon\r\n\r\n"), -1);
}

static void folded_and_bare_line_ends_are_refused(void **state)
{
	(void)state;
	assert_int_equal(check(HTTP1_REQUEST, "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_REQUEST, "GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_REQUEST, "GET / HTTP/1.1\nA: b\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_REQUEST, "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_REQUEST, "GET / HTTP/1.1\r\nA: b\r\n"), -1);
	const char nul[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
	const char *why;
	assert_int_equal(http1_head_check(HTTP1_REQUEST, nul, sizeof nul - 1, &why), -1);
}

static void framing_must_be_unambiguous(void **state)
{
	(void)state;
	const char *bad[] = {
	    "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
	    "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
	    "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
	    "POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n",
	    "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
	    "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
	    "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(check(HTTP1_REQUEST, bad[i]), -1);
	assert_int_equal(check(HTTP1_REQUEST, "POST / HTTP/1.1\r\nContent-Length:  7 \r\n\r\n"), 0);
}

static void request_and_status_lines(void **state)
{
	(void)state;
	assert_int_equal(check(HTTP1_REQUEST, "GET  / HTTP/1.1\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_REQUEST, "GET / HTTP/1.1 \r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_REQUEST, "GET / HTTP/2.0\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_REQUEST, "G(T / HTTP/1.1\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"), 0);
	assert_int_equal(check(HTTP1_RESPONSE, "HTTP/1.1 204\r\n\r\n"), 0);
	assert_int_equal(check(HTTP1_RESPONSE, "HTTP/1.1 20 OK\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_RESPONSE, "HTTP/1.1 200OK\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n"),
	                 -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(plain_requests_pass),
	    cmocka_unit_test(header_names_must_be_tokens_then_a_colon),
	    cmocka_unit_test(folded_and_bare_line_ends_are_refused),
	    cmocka_unit_test(framing_must_be_unambiguous),
	    cmocka_unit_test(request_and_status_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
