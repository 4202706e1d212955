/* test_time.c — core's one ISO 8601 parser (dt_time_parse, which the HTTP API and the CLI
 * both use) and formatter: the forms accepted, leap seconds, zones, the protocol's time range
 * at its edges, and everything refused. */
#include <string.h>

#include "testutil.h"

#define SEC INT64_C(1000000)
/* 2026-01-31T12:00:00Z */
#define NOON INT64_C(1769860800000000)

/* parses: TEXT parses to WANT. */
static void parses(const char *text, dt_time want)
{
    dt_time t = 42;
    if (dt_time_parse(text, &t) != DT_OK)
        fail_msg("'%s' was refused", text);
    if (t != want)
        fail_msg("'%s' parsed to %lld, want %lld", text, (long long)t, (long long)want);
}

/* refused: TEXT is DT_ERR_INVALID_ARG and the output is untouched. */
static void refused(const char *text)
{
    dt_time t = 42;
    if (dt_time_parse(text, &t) != DT_ERR_INVALID_ARG)
        fail_msg("'%s' was accepted (as %lld)", text, (long long)t);
    assert_int_equal(t, 42);
}

static void test_dates_times_and_fractions_parse(void **state)
{
    (void)state;
    parses("2026-01-31T12:00:00Z", NOON);
    parses("2026-01-31t12:00:00z", NOON);
    parses("2026-01-31 12:00:00", NOON);                 /* no zone: UTC */
    parses("2026-01-31T12:00Z", NOON);                   /* seconds may be left out */
    parses("2026-01-31", NOON - 12 * 3600 * SEC);
    parses("2026-01-31T12:00:00.5Z", NOON + 500000);
    parses("2026-01-31T12:00:00,25Z", NOON + 250000);
    parses("2026-01-31T12:00:00.1234567899Z", NOON + 123456);   /* past microseconds: dropped */
    parses("1970-01-01T00:00:00Z", 0);
    parses("1969-12-31T23:59:59.999999Z", -1);
    parses("2024-02-29T00:00:00Z", INT64_C(1709164800) * SEC);   /* a leap day */
    parses("2000-02-29", INT64_C(951782400) * SEC);              /* 2000 is a leap year */
}

static void test_zones_are_applied(void **state)
{
    (void)state;
    parses("2026-01-31T14:00:00+02:00", NOON);
    parses("2026-01-31T14:00:00+0200", NOON);
    parses("2026-01-31T06:30:00-05:30", NOON);
    parses("2026-01-31T12:00:00+00:00", NOON);
}

static void test_a_leap_second_is_the_first_second_of_the_next_minute(void **state)
{
    (void)state;
    /* POSIX time has no leap seconds: 23:59:60 reads as the next day's 00:00:00, the same
     * for the HTTP API and the CLI (which once disagreed) */
    parses("2016-12-31T23:59:60Z", INT64_C(1483228800) * SEC);
    parses("2016-12-31T23:59:60.5Z", INT64_C(1483228800) * SEC + 500000);
    refused("2016-12-31T23:59:61Z");
}

static void test_the_protocol_range_holds_at_its_edges(void **state)
{
    (void)state;
    parses("0001-01-01T00:00:00Z", DT_TIME_MIN);
    parses("9999-12-31T23:59:59.999999Z", DT_TIME_MAX);
    refused("0000-12-31T23:59:59Z");                     /* year 0 */
    refused("0001-01-01T00:00:00+00:01");                /* a minute before year 1 */
    refused("9999-12-31T23:59:59-00:01");                /* a minute past year 9999 */
    refused("9999-12-31T23:59:60Z");                     /* the leap second is year 10000 */
}

static void test_malformed_times_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "2026", "2026-01", "2026-1-31", "26-01-31", "2026/01/31", "2026-13-01",
        "2026-00-10", "2026-01-00", "2026-01-32", "2026-02-29", "1900-02-29", "2026-04-31",
        "2026-01-31T", "2026-01-31T24:00:00Z", "2026-01-31T12:60:00Z", "2026-01-31T12",
        "2026-01-31T12:00:00.Z", "2026-01-31T12:00:00Zjunk", "2026-01-31T12:00:00 Z",
        "2026-01-31T12:00:00+24:00", "2026-01-31T12:00:00+02:60", "2026-01-31T12:00:00+2",
        "2026-01-31junk", " 2026-01-31", "2026-01-31T1:00:00Z", "+2026-01-31",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        refused(bad[i]);
    dt_time t;
    assert_int_equal(dt_time_parse(NULL, &t), DT_ERR_INVALID_ARG);
    assert_int_equal(dt_time_parse("2026-01-31", NULL), DT_ERR_INVALID_ARG);
}

static void test_formatted_times_parse_back(void **state)
{
    (void)state;
    const dt_time times[] = {NOON + 123000, 0, -1000, DT_TIME_MIN, INT64_C(253402300799999000)};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char buf[32];
        dt_time_format(times[i], buf);
        parses(buf, times[i]);   /* milliseconds: these times have none below */
    }
    char buf[32];
    dt_time_format(NOON + 5, buf);
    assert_string_equal(buf, "2026-01-31T12:00:00.000Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates_times_and_fractions_parse),
        cmocka_unit_test(test_zones_are_applied),
        cmocka_unit_test(test_a_leap_second_is_the_first_second_of_the_next_minute),
        cmocka_unit_test(test_the_protocol_range_holds_at_its_edges),
        cmocka_unit_test(test_malformed_times_are_refused),
        cmocka_unit_test(test_formatted_times_parse_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
