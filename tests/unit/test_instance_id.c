/* test_instance_id.c — the instance id rules and generated ids. */
#include <string.h>

#include "testutil.h"

static void test_valid_ids_are_accepted(void **state)
{
    (void)state;
    dt_error err;
    assert_ok(dt_instance_id_validate("order-42", &err), &err);
    assert_ok(dt_instance_id_validate("a", &err), &err);
    assert_ok(dt_instance_id_validate("with space and ünïcode", &err), &err);
    char hundred[101];
    memset(hundred, 'x', 100);
    hundred[100] = '\0';
    assert_ok(dt_instance_id_validate(hundred, &err), &err);
}

static void expect_invalid(const char *id, const char *needle)
{
    dt_error err;
    dt_error_clear(&err);
    assert_int_equal(dt_instance_id_validate(id, &err), DT_ERR_INVALID_ARG);
    assert_int_equal(err.code, DT_ERR_INVALID_ARG);
    if (strstr(err.message, needle) == NULL)
        fail_msg("message '%s' does not mention '%s'", err.message, needle);
}

static void test_invalid_ids_are_refused_with_the_rule(void **state)
{
    (void)state;
    expect_invalid("", "empty");
    expect_invalid(NULL, "empty");
    char long_id[102];
    memset(long_id, 'x', 101);
    long_id[101] = '\0';
    expect_invalid(long_id, "101 characters");
    expect_invalid("@entity", "'@'");
    expect_invalid("a/b", "'/'");
    expect_invalid("a\\b", "'\\'");
    expect_invalid("a#b", "'#'");
    expect_invalid("a?b", "'?'");
    expect_invalid("tab\there", "control character");
    expect_invalid("del\x7f", "control character");
}

static void test_generated_ids_are_valid_and_distinct(void **state)
{
    (void)state;
    char a[37], b[37];
    dt_instance_id_generate(a);
    dt_instance_id_generate(b);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');
    assert_ok(dt_instance_id_validate(a, NULL), NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_ids_are_accepted),
        cmocka_unit_test(test_invalid_ids_are_refused_with_the_rule),
        cmocka_unit_test(test_generated_ids_are_valid_and_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
