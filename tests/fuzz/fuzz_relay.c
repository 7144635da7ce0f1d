/* fuzz_relay: the relay's request head grammar (src/relay/http1.c) against
 * http_parser, which frames the body the relay forwards. The input is a
 * head, then body bytes. Invariants:
 *  - the grammar never reads outside the head, and refuses with a reason;
 *  - a head the grammar accepts and http_parser parses is framed the same
 *    way by both (Content-Length value, chunked or not): two readings of one
 *    head are what request smuggling needs;
 *  - a head the grammar accepts as a response is framed the same way too;
 *  - body bytes run through http_parser as the relay does (paused at the end
 *    of the message) never take more than the body, and a chunked body is
 *    re-framed into chunks that a fresh parser reads back to the same bytes. */
#include "fuzz.h"
#include "../../src/relay/http1.h"

#include <http_parser.h>

struct seen {
	int complete;
	char *body;
	size_t body_len, body_cap;
};

static void append(struct seen *s, const char *at, size_t len)
{
	if (s->body_len + len > s->body_cap) {
		s->body_cap = (s->body_len + len) * 2 + 64;
		s->body = realloc(s->body, s->body_cap);
		if (!s->body)
			abort();
	}
	memcpy(s->body + s->body_len, at, len);
	s->body_len += len;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
	append(hp->data, at, len);
	return 0;
}

static int on_complete(http_parser *hp)
{
	((struct seen *)hp->data)->complete = 1;
	http_parser_pause(hp, 1);
	return 0;
}

static void check_framing(enum http1_kind kind, const uint8_t *data, size_t head_len, size_t size)
{
	const char *why = NULL;
	struct http1_framing f = {-7, true};
	int rc = http1_head_framing(kind, (const char *)data, head_len, &why, &f);
	if (rc != 0) {
		FUZZ_CHECK(why != NULL && why[0]);
		return;
	}
	http_parser hp;
	http_parser_settings st;
	http_parser_settings_init(&st);
	st.on_body = on_body;
	st.on_message_complete = on_complete;
	http_parser_init(&hp, kind == HTTP1_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE);
	struct seen seen = {0};
	hp.data = &seen;
	size_t got = http_parser_execute(&hp, &st, (const char *)data, head_len);
	enum http_errno err = HTTP_PARSER_ERRNO(&hp);
	if ((err != HPE_OK && err != HPE_PAUSED) || got != head_len || hp.upgrade) {
		free(seen.body);
		return; /* http_parser refuses it too: the relay answers 400 */
	}
	/* Both read the same framing. */
	FUZZ_CHECK(((hp.flags & F_CHUNKED) != 0) == f.chunked);
	if (f.content_length >= 0 && kind == HTTP1_REQUEST) {
		FUZZ_CHECK((hp.flags & F_CONTENTLENGTH) != 0);
		FUZZ_CHECK(seen.complete || (long long)hp.content_length == f.content_length);
	}
	if (kind == HTTP1_RESPONSE || seen.complete) {
		free(seen.body);
		return;
	}
	/* The body as the relay streams it: never past the message's end. */
	size_t rest = size - head_len;
	if (rest == 0) { /* len 0 means EOF to http_parser; the relay never passes it */
		free(seen.body);
		return;
	}
	got = http_parser_execute(&hp, &st, (const char *)data + head_len, rest);
	err = HTTP_PARSER_ERRNO(&hp);
	FUZZ_CHECK(got <= rest);
	if (f.content_length >= 0 && !f.chunked)
		FUZZ_CHECK(seen.body_len <= (size_t)f.content_length);
	if (seen.complete && f.chunked) {
		/* Re-framed as the relay does, read back by a fresh parser. */
		char *out = NULL;
		size_t n = 0;
		FILE *mem = open_memstream(&out, &n);
		fprintf(mem, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
		if (seen.body_len) {
			fprintf(mem, "%zx\r\n", seen.body_len);
			fwrite(seen.body, 1, seen.body_len, mem);
			fprintf(mem, "\r\n");
		}
		fprintf(mem, "0\r\n\r\n");
		fclose(mem);
		struct seen again = {0};
		http_parser hp2;
		http_parser_init(&hp2, HTTP_REQUEST);
		hp2.data = &again;
		size_t used = http_parser_execute(&hp2, &st, out, n);
		FUZZ_CHECK(used == n && again.complete);
		FUZZ_CHECK(again.body_len == seen.body_len);
		FUZZ_CHECK(seen.body_len == 0 || memcmp(again.body, seen.body, seen.body_len) == 0);
		free(again.body);
		free(out);
	}
	free(seen.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	/* The head ends at the first blank line, as the relay finds it. */
	size_t head_len = 0;
	for (size_t i = 0; i + 3 < size; i++)
		if (memcmp(data + i, "\r\n\r\n", 4) == 0) {
			head_len = i + 4;
			break;
		}
	if (!head_len) {
		const char *why = NULL;
		/* Without the blank line, nothing passes. */
		FUZZ_CHECK(http1_head_check(HTTP1_REQUEST, (const char *)data, size, &why) == -1);
		return 0;
	}
	check_framing(HTTP1_REQUEST, data, head_len, size);
	check_framing(HTTP1_RESPONSE, data, head_len, size);
	return 0;
}
