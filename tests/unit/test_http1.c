/* Unit tests for the relay's strict HTTP/1.1 head grammar (src/relay/http1.c):
 * every head two parsers could frame differently is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/relay/http1.h"

#include <stdio.h>
#include <stdlib.h>
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

/* The reason a head is refused, or NULL if it passes. */
static const char *why_refused(enum http1_kind kind, const char *head)
{
	const char *why = NULL;
	return http1_head_check(kind, head, strlen(head), &why) == 0 ? NULL : why;
}

static struct http1_framing framing(enum http1_kind kind, const char *head)
{
	struct http1_framing f = {-2, true};
	const char *why = NULL;
	if (http1_head_framing(kind, head, strlen(head), &why, &f) != 0)
		fail_msg("refused %s: %s", head, why);
	return f;
}

static void the_framing_is_read_from_the_head(void **state)
{
	(void)state;
	struct http1_framing f = framing(HTTP1_REQUEST, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(f.content_length, -1);
	assert_false(f.chunked);
	f = framing(HTTP1_REQUEST, "PUT / HTTP/1.1\r\ncontent-LENGTH: 0042\r\n\r\n");
	assert_int_equal(f.content_length, 42);
	assert_false(f.chunked);
	f = framing(HTTP1_REQUEST, "PUT / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(f.content_length, 0);
	f = framing(HTTP1_REQUEST, "PUT / HTTP/1.1\r\nContent-Length: 999999999999999999\r\n\r\n");
	assert_int_equal(f.content_length, 999999999999999999);
	f = framing(HTTP1_REQUEST, "POST / HTTP/1.1\r\nTRANSFER-ENCODING:  CHUNKED \r\n\r\n");
	assert_int_equal(f.content_length, -1);
	assert_true(f.chunked);
	f = framing(HTTP1_RESPONSE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	assert_true(f.chunked);
	f = framing(HTTP1_RESPONSE, "HTTP/1.0 404 Not Found\r\nContent-Length: 9\r\n\r\n");
	assert_int_equal(f.content_length, 9);
	/* A refused head leaves f as it was. */
	struct http1_framing g = {-2, true};
	const char *why, *bad = "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n";
	assert_int_equal(http1_head_framing(HTTP1_REQUEST, bad, strlen(bad), &why, &g), -1);
	assert_int_equal(g.content_length, -2);
	assert_true(g.chunked);
}

static void each_refusal_says_why(void **state)
{
	(void)state;
	static const struct {
		const char *head, *why;
	} cases[] = {
	    {"GET / HTTP/1.1\r\nA: b\r\n", "the head does not end with an empty line"},
	    {"GET / HTTP/1.1\r\nA: b\n\n", "the head does not end with an empty line"},
	    {"GET / HTTP/1.1\rA: b\r\n\r\n", "a line does not end with CRLF"},
	    {"GET / HTTP/1.1\r\nA: b\r\r\n\r\n", "a line does not end with CRLF"},
	    {"GET / HTTP/1.1\r\r\n\r\n", "a line does not end with CRLF"},
	    {"GET / HTTP/1.1\r\nA: b\nB: c\r\n\r\n", "a line does not end with CRLF"},
	    {"\nGET / HTTP/1.1\r\n\r\n", "a line does not end with CRLF"},
	    {"GET / HTTP/1.1\r\n Host: x\r\n\r\n", "a header line is folded (obs-fold)"},
	    {"GET / HTTP/1.1\r\nA: b\r\n\t c\r\n\r\n", "a header line is folded (obs-fold)"},
	    {"GET / HTTP/1.1\r\nA b: c\r\n\r\n",
	     "a header name is not a token directly followed by ':'"},
	    {"GET / HTTP/1.1\r\nA:\x01\r\n\r\n", "a header value holds a control byte"},
	    {"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", "a header value holds a control byte"},
	    {"GET / HTTP/1.1\r\nA: \x1b[2J\r\n\r\n", "a header value holds a control byte"},
	    {"GET / HTTP/1.1\r\nContent-Length:\t5\r\n\r\n",
	     "a framing header's value holds a tab"},
	    {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\t\r\n\r\n",
	     "a framing header's value holds a tab"},
	    {"GET / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
	     "Content-Length is not one decimal number"},
	    {"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	     "Content-Length is not one decimal number"},
	    {"GET / HTTP/1.1\r\nContent-Length: 1000000000000000000\r\n\r\n",
	     "Content-Length is not one decimal number"},
	    {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
	     "Content-Length is not one decimal number"},
	    {"GET / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
	     "Content-Length is not one decimal number"},
	    {"GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	     "both Content-Length and Transfer-Encoding"},
	    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	     "both Content-Length and Transfer-Encoding"},
	    {"GET /\r\n\r\n", "the request line is not METHOD TARGET HTTP/1.1"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *why = why_refused(HTTP1_REQUEST, cases[i].head);
		if (strncmp(cases[i].head, "HTTP/", 5) == 0)
			why = why_refused(HTTP1_RESPONSE, cases[i].head);
		if (!why || strcmp(why, cases[i].why) != 0)
			fail_msg("case %zu: expected \"%s\", got \"%s\"", i, cases[i].why,
			         why ? why : "(passed)");
	}
	const char nul[] = "GET / HTTP/1.1\r\nA: \0\r\n\r\n";
	const char *why;
	assert_int_equal(http1_head_check(HTTP1_REQUEST, nul, sizeof nul - 1, &why), -1);
	assert_string_equal(why, "the head holds a NUL byte");
	assert_string_equal(why_refused(HTTP1_RESPONSE, "HTTP/1.1 2000 OK\r\n\r\n"),
	                    "the status line is not HTTP/1.1 CODE REASON");
}

static void transfer_encoding_is_exactly_one_chunked(void **state)
{
	(void)state;
	static const char *const bad[] = {"chunked, chunked",
	                                  "identity, chunked",
	                                  "gzip, chunked",
	                                  "chunked,",
	                                  ",chunked",
	                                  "chunked;q=1",
	                                  "chunkedx",
	                                  "xchunked",
	                                  "chunk ed",
	                                  "\"chunked\"",
	                                  ""};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char head[128];
		snprintf(head, sizeof head, "POST / HTTP/1.1\r\nTransfer-Encoding: %s\r\n\r\n",
		         bad[i]);
		if (check(HTTP1_REQUEST, head) != -1)
			fail_msg("accepted Transfer-Encoding: %s", bad[i]);
	}
	assert_int_equal(
	    check(HTTP1_REQUEST, "POST / HTTP/1.1\r\ntransfer-encoding:chunked\r\n\r\n"), 0);
	/* Other headers may hold the words, and a name merely starting alike is another. */
	assert_int_equal(check(HTTP1_REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	                                      "Transfer-Encodings: gzip\r\nX: chunked, gzip\r\n"
	                                      "Content-Lengths: 1, 2\r\n\r\n"),
	                 0);
}

static void request_line_forms(void **state)
{
	(void)state;
	static const char *const good[] = {
	    "GET /a/b?c=d&e=%20 HTTP/1.1",    /* origin-form */
	    "GET http://h:80/x HTTP/1.1",     /* absolute-form */
	    "CONNECT h.example:443 HTTP/1.1", /* authority-form */
	    "OPTIONS * HTTP/1.1",             /* asterisk-form */
	    "M-SEARCH * HTTP/1.0",            /* any token is a method */
	    "GET /caf\xc3\xa9 HTTP/1.1",      /* bytes above 0x7f pass through */
	};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		char head[128];
		snprintf(head, sizeof head, "%s\r\nHost: h\r\n\r\n", good[i]);
		if (check(HTTP1_REQUEST, head) != 0)
			fail_msg("refused %s", good[i]);
	}
	static const char *const bad[] = {
	    "GET / HTTP/1.10",
	    "GET / HTTP/1.1x",
	    "GET / http/1.1",
	    "GET / HTTP/1.2",
	    "GET / HTTP/1",
	    "GET / HTTP/11",
	    "GET /",
	    "GET  HTTP/1.1",
	    " GET / HTTP/1.1",
	    "GET\t/ HTTP/1.1",
	    "GET /a\tb HTTP/1.1",
	    "GET /a\x7f HTTP/1.1",
	    "GET /a b HTTP/1.1",
	    "/ HTTP/1.1",
	    "GET / HTTP/1.1 x",
	    "",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char head[128];
		snprintf(head, sizeof head, "%s\r\nHost: h\r\n\r\n", bad[i]);
		if (check(HTTP1_REQUEST, head) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* A status line is not a request line, nor the other way round. */
	assert_int_equal(check(HTTP1_REQUEST, "HTTP/1.1 200 OK\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_RESPONSE, "GET / HTTP/1.1\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_RESPONSE, "HTTP/1.1 200 \r\n\r\n"), 0);
	assert_int_equal(check(HTTP1_RESPONSE, "HTTP/1.1 200 OK\x01\r\n\r\n"), -1);
	assert_int_equal(check(HTTP1_RESPONSE, "HTTP/1.1 2x0 OK\r\n\r\n"), -1);
}

static void values_may_hold_tabs_and_high_bytes(void **state)
{
	(void)state;
	assert_int_equal(check(HTTP1_REQUEST, "GET / HTTP/1.1\r\nX: a\tb\r\n"
	                                      "Y: caf\xc3\xa9\xff\r\nZ:\r\n\r\n"),
	                 0);
}

/* The grammar has no size cap of its own (the relay caps heads before it
 * asks): a huge head is judged whole, its last line as strictly as its first. */
static void huge_heads_are_judged_whole(void **state)
{
	(void)state;
	const size_t big = 1 << 20;
	char *head = malloc(big + 256);
	assert_non_null(head);
	size_t n = (size_t)sprintf(head, "PUT / HTTP/1.1\r\nX-Big: ");
	memset(head + n, 'a', big);
	n += big;
	n += (size_t)sprintf(head + n, "\r\nContent-Length: 7\r\n\r\n");
	struct http1_framing f;
	const char *why;
	assert_int_equal(http1_head_framing(HTTP1_REQUEST, head, n, &why, &f), 0);
	assert_int_equal(f.content_length, 7);
	/* A second Content-Length after many lines is still seen. */
	n = (size_t)sprintf(head, "PUT / HTTP/1.1\r\nContent-Length: 7\r\n");
	while (n < big)
		n += (size_t)sprintf(head + n, "H: v\r\n");
	n += (size_t)sprintf(head + n, "Content-Length: 7\r\n\r\n");
	assert_int_equal(http1_head_check(HTTP1_REQUEST, head, n, &why), -1);
	assert_string_equal(why, "Content-Length is not one decimal number");
	/* And a bare LF in the last byte before the blank line. */
	n = (size_t)sprintf(head, "PUT / HTTP/1.1\r\nX: ");
	memset(head + n, 'a', big);
	n += big;
	n += (size_t)sprintf(head + n, "\n\r\n\r\n");
	assert_int_equal(http1_head_check(HTTP1_REQUEST, head, n, &why), -1);
	free(head);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(plain_requests_pass),
	    cmocka_unit_test(header_names_must_be_tokens_then_a_colon),
	    cmocka_unit_test(folded_and_bare_line_ends_are_refused),
	    cmocka_unit_test(framing_must_be_unambiguous),
	    cmocka_unit_test(request_and_status_lines),
	    cmocka_unit_test(the_framing_is_read_from_the_head),
	    cmocka_unit_test(each_refusal_says_why),
	    cmocka_unit_test(transfer_encoding_is_exactly_one_chunked),
	    cmocka_unit_test(request_line_forms),
	    cmocka_unit_test(values_may_hold_tabs_and_high_bytes),
	    cmocka_unit_test(huge_heads_are_judged_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
