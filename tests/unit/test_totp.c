/* Unit tests for core/totp: RFC 6238's SHA-1 test vectors (the last six of
 * their eight digits), base32 both ways, and what counts as a typed code. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "../../src/core/totp.h"

static const unsigned char rfc_key[] = "12345678901234567890";

static void test_totp_matches_the_rfc_6238_vectors(void **state)
{
	(void)state;
	const struct {
		int64_t t;
		uint32_t code;
	} v[] = {{59, 287082},       {1111111109, 81804},  {1111111111, 50471},
	         {1234567890, 5924}, {2000000000, 279037}, {20000000000, 353130}};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		assert_int_equal(totp_code(rfc_key, 20, v[i].t / TOTP_STEP_S), v[i].code);
}

static void test_base32_round_trips_the_rfc_key(void **state)
{
	(void)state;
	char b[64];
	assert_int_equal(totp_base32_encode(rfc_key, 20, b, sizeof b), 32);
	assert_string_equal(b, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	unsigned char out[32];
	assert_int_equal(
	    totp_base32_decode("gezd gnbv gy3t qojq gezd gnbv gy3t qojq", out, sizeof out), 20);
	assert_memory_equal(out, rfc_key, 20);
	assert_int_equal(totp_base32_decode("GEZ1", out, sizeof out), -1); /* '1' is not base32 */
	assert_int_equal(totp_base32_encode(rfc_key, 20, b, 32), -1);      /* no room for the NUL */
	assert_int_equal(totp_base32_decode("GEZDGNBVGY3TQOJQ", out, 5), -1);
}

static void test_a_code_is_exactly_six_digits(void **state)
{
	(void)state;
	assert_int_equal(totp_parse_code("012345"), 12345);
	assert_int_equal(totp_parse_code("012 345"), 12345);
	assert_int_equal(totp_parse_code("12345"), -1);
	assert_int_equal(totp_parse_code("1234567"), -1);
	assert_int_equal(totp_parse_code("12a456"), -1);
	assert_int_equal(totp_parse_code(""), -1);
	assert_int_equal(totp_parse_code(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_totp_matches_the_rfc_6238_vectors),
	    cmocka_unit_test(test_base32_round_trips_the_rfc_key),
	    cmocka_unit_test(test_a_code_is_exactly_six_digits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
