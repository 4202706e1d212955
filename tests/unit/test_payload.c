/* test_payload.c — what counts as a payload: JSON text, or a large-payload token (the SDKs'
 * payload offload sends "blob:v1:<container>:<blob>" in place of the payload), which passes
 * untouched; anything else is refused, naming the payload. */
#include <string.h>

#include "testutil.h"

static void test_tokens_are_recognised_exactly(void **state)
{
    (void)state;
    assert_true(dt_payload_is_token("blob:v1:payloads:3f2a-11.json.gz"));
    assert_true(dt_payload_is_token("blob:v2:c:b"));
    assert_true(dt_payload_is_token("blob:v10:x"));
    const char *not_tokens[] = {NULL, "", "blob:", "blob:v", "blob:v1", "blob:v1:", "blob:vx:a",
                                "blob:v1:has space", "blob:v1:tab\there", "Blob:v1:a",
                                " blob:v1:a", "\"blob:v1:a\"", "blob:v1:caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof not_tokens / sizeof not_tokens[0]; i++)
        if (dt_payload_is_token(not_tokens[i]))
            fail_msg("'%s' was taken for a token", not_tokens[i] ? not_tokens[i] : "(null)");
    char longest[DT_PAYLOAD_TOKEN_MAX + 2];
    memset(longest, 'a', sizeof longest);
    memcpy(longest, "blob:v1:", 8);
    longest[DT_PAYLOAD_TOKEN_MAX] = '\0';
    assert_true(dt_payload_is_token(longest));
    longest[DT_PAYLOAD_TOKEN_MAX] = 'a';
    longest[DT_PAYLOAD_TOKEN_MAX + 1] = '\0';
    assert_false(dt_payload_is_token(longest));
}

static void test_payloads_are_json_or_tokens(void **state)
{
    (void)state;
    dt_error err;
    assert_ok(dt_payload_validate(NULL, "input", &err), &err);
    assert_ok(dt_payload_validate("{\"a\":[1,2]}", "input", &err), &err);
    assert_ok(dt_payload_validate("blob:v1:c:b", "input", &err), &err);
    assert_int_equal(dt_payload_validate("blob:v1:", "input", &err), DT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "input is not valid JSON"));
    assert_int_equal(dt_payload_validate("hello", "event data", &err), DT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "event data"));
    /* JSON itself stays strict: a token is not JSON */
    assert_int_equal(dt_json_validate("blob:v1:c:b", "tags", &err), DT_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens_are_recognised_exactly),
        cmocka_unit_test(test_payloads_are_json_or_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
