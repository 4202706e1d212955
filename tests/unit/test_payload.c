/* test_payload.c — what counts as a payload: JSON text, or a large-payload token (the SDKs'
 * payload offload sends "blob:v1:<container>:<blob>" in place of the payload), which passes
 * untouched; anything else is refused, naming the payload. And what counts as tags: a bounded
 * JSON object of strings whose keys keep the rules of names. */
#include <stdio.h>
#include <stdlib.h>
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

/* expect_refused: GOT is DT_ERR_INVALID_ARG and ERR's message holds NEEDLE. */
static void expect_refused(dt_status got, const dt_error *err, const char *needle)
{
    assert_int_equal(got, DT_ERR_INVALID_ARG);
    if (strstr(err->message, needle) == NULL)
        fail_msg("message '%s' does not mention '%s'", err->message, needle);
}

/* tags_of: {"k":"vvv..."}, exactly LEN bytes of JSON text (LEN >= 9); free() it. */
static char *tags_of(size_t len)
{
    char *t = malloc(len + 1);
    assert_non_null(t);
    memcpy(t, "{\"k\":\"", 6);
    memset(t + 6, 'v', len - 8);
    memcpy(t + len - 2, "\"}", 3);
    return t;
}

static void test_tags_are_bounded_in_all(void **state)
{
    (void)state;
    dt_error err;
    char *at_limit = tags_of(DT_TAGS_MAX);
    assert_ok(dt_tags_validate(at_limit, "tags", &err), &err);
    char *over = tags_of(DT_TAGS_MAX + 1);
    expect_refused(dt_tags_validate(over, "tags", &err), &err,
                   "tags are 65537 bytes of JSON text, over the tags size limit of 65536 bytes "
                   "(64 KiB, DT_TAGS_MAX)");
    /* what the red team sent: far over, refused before it is parsed */
    char *huge = tags_of((size_t)14 << 20);
    expect_refused(dt_tags_validate(huge, "tags", &err), &err, "DT_TAGS_MAX");
    free(at_limit);
    free(over);
    free(huge);
}

static void test_tag_keys_keep_the_rules_of_names(void **state)
{
    (void)state;
    dt_error err;
    assert_ok(dt_tags_validate(NULL, "tags", &err), &err);
    assert_ok(dt_tags_validate("{}", "tags", &err), &err);
    /* values are any text: newlines and non-ASCII are fine */
    assert_ok(dt_tags_validate("{\"team\":\"line one\\nline two\",\"caf\u00e9\":\"\u00fc\"}",
                               "tags", &err), &err);
    expect_refused(dt_tags_validate("{\"a\\nb\":\"x\"}", "tags", &err), &err,
                   "tags: a key has a control character (0x0a) at byte 1");
    expect_refused(dt_tags_validate("{\"a\\u0085b\":\"x\"}", "tags", &err), &err,
                   "tags: a key has a control character (U+0085) at byte 1");
    expect_refused(dt_tags_validate("{\"\":\"x\"}", "tags", &err), &err, "tags: a key is empty");
    char key[DT_NAME_MAX + 2], tags[DT_NAME_MAX + 16];
    memset(key, 'k', DT_NAME_MAX);
    key[DT_NAME_MAX] = '\0';
    snprintf(tags, sizeof tags, "{\"%s\":\"v\"}", key);
    assert_ok(dt_tags_validate(tags, "tags", &err), &err);   /* DT_NAME_MAX bytes: allowed */
    snprintf(tags, sizeof tags, "{\"k%s\":\"v\"}", key);
    expect_refused(dt_tags_validate(tags, "tags", &err), &err,
                   "tags: a key is 257 characters long; at most 256 are allowed");
    expect_refused(dt_tags_validate("{\"a\":\"x\\u0000y\"}", "tags", &err), &err,
                   "the value of 'a' holds a NUL character");
    assert_int_equal(dt_tags_validate("{\"a\\u0000b\":\"x\"}", "tags", &err), DT_ERR_INVALID_ARG);
    expect_refused(dt_tags_validate("{\"a\":1}", "tags", &err), &err,
                   "tags: the value of 'a' is not a string");
    expect_refused(dt_tags_validate("[\"a\"]", "tags", &err), &err, "tags is not a JSON object");
    expect_refused(dt_tags_validate("{\"a\":", "tags", &err), &err, "tags is not valid JSON");
}

/* Tags stored before the limits still merge with an orchestration's own (the hub checks the
 * result's size): nothing stored becomes unusable. */
static void test_tags_merge_takes_tags_stored_before_the_limits(void **state)
{
    (void)state;
    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    const char *m = dt_tags_merge(arena, "{\"a\\nb\":\"1\",\"x\":\"2\"}", "{\"x\":\"3\"}");
    assert_non_null(m);
    assert_string_equal(m, "{\"a\\nb\":\"1\",\"x\":\"3\"}");
    char *big = tags_of(DT_TAGS_MAX + 100);
    m = dt_tags_merge(arena, big, "{\"y\":\"z\"}");
    assert_non_null(m);
    assert_true(strlen(m) > DT_TAGS_MAX);
    assert_null(dt_tags_merge(arena, "{\"a\":1}", "{\"y\":\"z\"}"));
    free(big);
    dt_arena_free(arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokens_are_recognised_exactly),
        cmocka_unit_test(test_payloads_are_json_or_tokens),
        cmocka_unit_test(test_tags_are_bounded_in_all),
        cmocka_unit_test(test_tag_keys_keep_the_rules_of_names),
        cmocka_unit_test(test_tags_merge_takes_tags_stored_before_the_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
