/* Unit tests for the one Server-Sent Events reader (src/core/sse.c): the
 * caps that tests/fuzz/fuzz_sse.c cannot reach with small inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/core/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct seen {
	int n;
	char last[256];
	size_t last_len;
};

static void on_event(void *cls, const char *event, const char *data, size_t len)
{
	struct seen *s = cls;
	s->n++;
	s->last_len = len;
	snprintf(s->last, sizeof s->last, "%s|%.*s", event, (int)(len < 200 ? len : 200), data);
}

static struct sse rd; /* 64 KiB: not on the stack */

static void feed(const char *s)
{
	sse_feed(&rd, s, strlen(s));
}

static void test_sse_joins_data_lines_and_names_events(void **state)
{
	struct seen s = {0};
	sse_init(&rd, on_event, &s);
	feed(": hello\n\nevent: change\r\ndata: a\r\ndata:b\ndata\n\n");
	assert_int_equal(s.n, 1);
	assert_string_equal(s.last, "change|a\nb\n");
	sse_fini(&rd);
}

static void test_sse_event_split_anywhere_is_the_same(void **state)
{
	const char *stream = "data: {\"seq\":1}\n\ndata: {\"seq\":2}\n\n";
	struct seen s = {0};
	sse_init(&rd, on_event, &s);
	for (const char *p = stream; *p; p++)
		sse_feed(&rd, p, 1);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.last, "|{\"seq\":2}");
	sse_fini(&rd);
}

static void test_sse_a_cut_line_drops_its_event_only(void **state)
{
	struct seen s = {0};
	sse_init(&rd, on_event, &s);
	size_t n = SSE_LINE_MAX + 100;
	char *big = malloc(n + 1);
	memset(big, 'x', n);
	big[n] = 0;
	memcpy(big, "data: ", 6);
	feed(big);
	feed("\n\ndata: next\n\n");
	assert_int_equal(s.n, 1);
	assert_string_equal(s.last, "|next");
	free(big);
	sse_fini(&rd);
}

static void test_sse_data_over_the_cap_is_dropped_not_grown(void **state)
{
	struct seen s = {0};
	sse_init(&rd, on_event, &s);
	char line[1024];
	memset(line, 'y', sizeof line);
	memcpy(line, "data: ", 6);
	line[sizeof line - 1] = '\n';
	for (size_t i = 0; i < 2 * SSE_EVENT_MAX / sizeof line; i++)
		sse_feed(&rd, line, sizeof line);
	assert_true(rd.dcap <= 2 * SSE_EVENT_MAX + 2);
	feed("\ndata: ok\n\n");
	assert_int_equal(s.n, 1);
	assert_string_equal(s.last, "|ok");
	sse_fini(&rd);
}

static void test_sse_reset_forgets_a_partial_event(void **state)
{
	struct seen s = {0};
	sse_init(&rd, on_event, &s);
	feed("data: half");
	sse_reset(&rd);
	feed("\n\n");
	assert_int_equal(s.n, 0);
	sse_fini(&rd);
}

static char ids[4][SSE_ID_MAX]; /* rd.id as each event arrived */
static int nids;

static void on_event_id(void *cls, const char *event, const char *data, size_t len)
{
	(void)cls, (void)event, (void)data, (void)len;
	if (nids < 4)
		snprintf(ids[nids++], SSE_ID_MAX, "%s", rd.id);
}

static void test_sse_id_is_the_last_one_seen_and_outlives_a_reconnect(void **state)
{
	(void)state;
	nids = 0;
	sse_init(&rd, on_event_id, NULL);
	feed("id: 7\nevent: change\ndata: x\n\n");
	feed("data: y\n\n"); /* no id line: the last one holds */
	feed("id: 9\ndata: z");
	sse_reset(&rd);                  /* the connection dropped mid-event */
	assert_string_equal(rd.id, "9"); /* what Last-Event-ID sends */
	feed("id:\ndata: w\n\n");        /* an empty id clears it */
	assert_int_equal(nids, 3);
	assert_string_equal(ids[0], "7");
	assert_string_equal(ids[1], "7");
	assert_string_equal(ids[2], "");
	sse_fini(&rd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sse_joins_data_lines_and_names_events),
	    cmocka_unit_test(test_sse_event_split_anywhere_is_the_same),
	    cmocka_unit_test(test_sse_a_cut_line_drops_its_event_only),
	    cmocka_unit_test(test_sse_data_over_the_cap_is_dropped_not_grown),
	    cmocka_unit_test(test_sse_reset_forgets_a_partial_event),
	    cmocka_unit_test(test_sse_id_is_the_last_one_seen_and_outlives_a_reconnect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
