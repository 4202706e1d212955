/* test_http_activity.c — BuiltIn::HttpActivity run directly (dt_http_activity_run) against a
 * local server on 127.0.0.1: a 200 with its headers and body, a 500 returned as a response,
 * redirects followed and a loop refused, slow and oversized answers, refused hosts and
 * schemes (before anything connects), bad URLs and bad requests, each a failure whose type
 * and message say what was wrong; and after all of them the activity still works. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "durabletask/httpcall.h"
#include "httptest.h"
#include "testutil.h"

typedef struct fix {
    httptest *srv;
    dt_http_activity *act;
    dt_arena *arena;
} fix;

static int setup(void **state)
{
    fix *f = calloc(1, sizeof *f);
    f->srv = httptest_start();
    dt_error err = {0};
    dt_http_activity_options o = {.allow = "127.0.0.1"};
    assert_ok(dt_http_activity_new(&o, &f->act, &err), &err);
    f->arena = dt_arena_new();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix *f = *state;
    dt_arena_free(f->arena);
    dt_http_activity_free(f->act);
    httptest_stop(f->srv);
    free(f);
    return 0;
}

/* run: the activity on INPUT; exactly one of the result and the failure is set. */
static void run_with(fix *f, const dt_http_activity *act, const char *input, json_t **resp,
                     const dt_failure **failure)
{
    const char *result = NULL;
    *failure = NULL;
    assert_ok(dt_http_activity_run(act, input, f->arena, &result, failure), NULL);
    assert_true((result == NULL) != (*failure == NULL));
    *resp = NULL;
    if (result) {
        *resp = json_loads(result, 0, NULL);
        assert_non_null(*resp);
    }
}

static json_t *expect_response(fix *f, const char *input, int status)
{
    json_t *r;
    const dt_failure *fl;
    run_with(f, f->act, input, &r, &fl);
    if (fl)
        fail_msg("%s failed: %s: %s", input, fl->error_type, fl->message);
    assert_int_equal(json_integer_value(json_object_get(r, "statusCode")), status);
    return r;
}

static void expect_failure_of(fix *f, const dt_http_activity *act, const char *input,
                              const char *type, const char *needle)
{
    json_t *r;
    const dt_failure *fl;
    run_with(f, act, input, &r, &fl);
    if (r)
        fail_msg("%s answered %s", input, json_dumps(r, 0));
    assert_string_equal(fl->error_type, type);
    if (strstr(fl->message, needle) == NULL)
        fail_msg("failure '%s' does not say '%s'", fl->message, needle);
}

static void expect_failure(fix *f, const char *input, const char *type, const char *needle)
{
    expect_failure_of(f, f->act, input, type, needle);
}

static const char *get(fix *f, const char *path)
{
    return dt_arena_printf(f->arena, "{\"method\":\"GET\",\"uri\":\"%s\"}",
                           httptest_url(f->srv, path));
}

static const char *content(json_t *r)
{
    return json_string_value(json_object_get(r, "content"));
}

static const char *hdr(json_t *r, const char *name)
{
    return json_string_value(json_object_get(json_object_get(r, "headers"), name));
}

static void test_a_200_comes_back_with_its_headers_and_body(void **state)
{
    fix *f = *state;
    json_t *r = expect_response(f, get(f, "/ok"), 200);
    assert_string_equal(content(r), "hello");
    assert_string_equal(hdr(r, "X-Test"), "yes");
    assert_string_equal(hdr(r, "X-Multi"), "a, b");   /* a repeated header, joined */
    json_decref(r);
    /* the Java SDK's shape: a list of one request; a missing method is GET */
    const char *in = dt_arena_printf(f->arena, "[{\"uri\":\"%s\"}]", httptest_url(f->srv, "/ok"));
    r = expect_response(f, in, 200);
    assert_string_equal(content(r), "hello");
    json_decref(r);
}

static void test_method_headers_and_body_are_sent(void **state)
{
    fix *f = *state;
    const char *in = dt_arena_printf(
        f->arena,
        "{\"method\":\"post\",\"uri\":\"%s\",\"headers\":{\"X-Custom\":[\"one\",\"two\"],"
        "\"Content-Type\":\"application/json\"},\"content\":\"{\\\"a\\\":1}\","
        "\"timeout\":\"00:00:30\",\"asynchronousPatternEnabled\":false}",
        httptest_url(f->srv, "/echo"));
    json_t *r = expect_response(f, in, 200);
    assert_string_equal(content(r), "POST|one, two|application/json||{\"a\":1}");
    json_decref(r);
    /* a body without a Content-Type is text */
    in = dt_arena_printf(f->arena, "{\"method\":\"PUT\",\"uri\":\"%s\",\"content\":\"hi\"}",
                         httptest_url(f->srv, "/echo"));
    r = expect_response(f, in, 200);
    assert_string_equal(content(r), "PUT||text/plain; charset=utf-8||hi");
    json_decref(r);
}

static void test_an_error_status_is_a_response_not_a_failure(void **state)
{
    fix *f = *state;
    json_t *r = expect_response(f, get(f, "/fail"), 500);
    assert_string_equal(content(r), "boom");
    json_decref(r);
    r = expect_response(f, get(f, "/nowhere"), 404);
    json_decref(r);
    /* a 202 is one exchange: the activity does not poll (dt_call_http does) */
    r = expect_response(f, get(f, "/poll/forever"), 202);
    assert_string_equal(hdr(r, "Location"), "/poll/forever");
    assert_string_equal(hdr(r, "Retry-After"), "1");
    json_decref(r);
}

static void test_redirects_are_followed_and_a_loop_fails(void **state)
{
    fix *f = *state;
    json_t *r = expect_response(f, get(f, "/redirect"), 200);
    assert_string_equal(content(r), "hello");
    json_decref(r);
    /* 303 after a POST: a GET without the body */
    const char *in = dt_arena_printf(f->arena,
                                     "{\"method\":\"POST\",\"uri\":\"%s\",\"content\":\"x\"}",
                                     httptest_url(f->srv, "/see-other"));
    r = expect_response(f, in, 200);
    assert_string_equal(content(r), "GET||||");
    json_decref(r);
    int before = httptest_hits(f->srv, "/loop");
    expect_failure(f, get(f, "/loop"), DT_HTTP_ERR_REDIRECTS, "more than 5 redirects");
    assert_int_equal(httptest_hits(f->srv, "/loop") - before, DT_HTTP_REDIRECTS_MAX + 1);
}

static void test_redirect_targets_are_checked_like_the_first_url(void **state)
{
    fix *f = *state;
    int before = httptest_hits(f->srv, "/ok");
    expect_failure(f, get(f, "/offsite"), DT_HTTP_ERR_REFUSED,
                   "redirect 1: host 'localhost' is not in --http-activity-allow");
    expect_failure(f, get(f, "/to-ftp"), DT_HTTP_ERR_REFUSED, "scheme 'ftp'");
    assert_int_equal(httptest_hits(f->srv, "/ok"), before);   /* never reached */
}

static void test_a_slow_answer_times_out(void **state)
{
    fix *f = *state;
    const char *in = dt_arena_printf(f->arena, "{\"uri\":\"%s\",\"timeout\":\"00:00:00.500\"}",
                                     httptest_url(f->srv, "/slow"));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_failure(f, in, DT_HTTP_ERR_TIMEOUT, "within 500 ms");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(secs >= 0.45 && secs < 2.5);
    /* a timeout in seconds, as a number */
    in = dt_arena_printf(f->arena, "{\"uri\":\"%s\",\"timeout\":0.3}",
                         httptest_url(f->srv, "/slow"));
    expect_failure(f, in, DT_HTTP_ERR_TIMEOUT, "within 300 ms");
}

static void test_an_oversized_answer_fails_with_or_without_a_length(void **state)
{
    fix *f = *state;
    expect_failure(f, get(f, "/big"), DT_HTTP_ERR_TOO_LARGE, "larger than 1048576 bytes");
    expect_failure(f, get(f, "/bigstream"), DT_HTTP_ERR_TOO_LARGE, "larger than 1048576 bytes");
    /* a lower limit of the activity's own */
    dt_http_activity *small = NULL;
    dt_error err = {0};
    dt_http_activity_options o = {.allow = "127.0.0.1", .max_response_bytes = 4};
    assert_ok(dt_http_activity_new(&o, &small, &err), &err);
    expect_failure_of(f, small, get(f, "/ok"), DT_HTTP_ERR_TOO_LARGE, "larger than 4 bytes");
    dt_http_activity_free(small);
}

static void test_a_body_that_is_not_text_is_replaced_not_refused(void **state)
{
    fix *f = *state;
    json_t *r = expect_response(f, get(f, "/binary"), 200);
    assert_string_equal(content(r), "\xEF\xBF\xBD\xEF\xBF\xBD" "a");
    json_decref(r);
}

static void test_hosts_and_schemes_not_allowed_are_refused_before_connecting(void **state)
{
    fix *f = *state;
    expect_failure(f, "{\"uri\":\"http://example.com/\"}", DT_HTTP_ERR_REFUSED,
                   "host 'example.com' is not in --http-activity-allow");
    /* the same server under another name is another host */
    const char *in = dt_arena_printf(f->arena, "{\"uri\":\"http://localhost:%d/ok\"}",
                                     httptest_port(f->srv));
    expect_failure(f, in, DT_HTTP_ERR_REFUSED, "host 'localhost'");
    /* the host is the one libcurl connects to, not a look-alike in the user part */
    expect_failure(f, "{\"uri\":\"http://127.0.0.1:80@example.com/\"}", DT_HTTP_ERR_REFUSED,
                   "host 'example.com'");
    expect_failure(f, "{\"uri\":\"ftp://127.0.0.1/x\"}", DT_HTTP_ERR_REFUSED,
                   "scheme 'ftp' of 'ftp://127.0.0.1/x' is not allowed (only http and https)");
    expect_failure(f, "{\"uri\":\"file:///etc/passwd\"}", DT_HTTP_ERR_REFUSED, "scheme 'file'");
    expect_failure(f, "{\"uri\":\"gopher://127.0.0.1/\"}", DT_HTTP_ERR_REFUSED, "scheme 'gopher'");
}

static void test_bad_urls_and_requests_say_what_is_wrong(void **state)
{
    fix *f = *state;
    expect_failure(f, "{\"uri\":\"not a url\"}", DT_HTTP_ERR_INVALID, "is not a valid URL");
    expect_failure(f, "{\"uri\":\"http://\"}", DT_HTTP_ERR_INVALID, "uri 'http://'");
    expect_failure(f, "{\"uri\":\"\"}", DT_HTTP_ERR_INVALID, "no uri");
    expect_failure(f, "{\"method\":\"GET\"}", DT_HTTP_ERR_INVALID, "uri must be a string");
    expect_failure(f, "not json", DT_HTTP_ERR_INVALID, "the request is not JSON");
    expect_failure(f, "42", DT_HTTP_ERR_INVALID, "must be a JSON object");
    const char *u = httptest_url(f->srv, "/ok");
    int before = httptest_hits(f->srv, "/ok");
    const char *cases[][3] = {
        {"{\"uri\":\"%s\",\"method\":\"GE T\"}", "method must be an HTTP method name", NULL},
        {"{\"uri\":\"%s\",\"headers\":{\"X-A\":\"1\\r\\nX-B: 2\"}}", "line break", NULL},
        {"{\"uri\":\"%s\",\"headers\":{\"Bad Name\":\"1\"}}", "not an HTTP token", NULL},
        {"{\"uri\":\"%s\",\"headers\":{\"X-A\":3}}", "must have a string value", NULL},
        {"{\"uri\":\"%s\",\"headers\":{\"Content-Length\":\"3\"}}", "the activity's to set",
         NULL},
        {"{\"uri\":\"%s\",\"content\":{\"a\":1}}", "content must be a string or null", NULL},
        {"{\"uri\":\"%s\",\"timeout\":\"soon\"}", "timeout 'soon' is not a positive time span",
         NULL},
        {"{\"uri\":\"%s\",\"timeout\":-1}", "timeout must be more than 0", NULL},
        {"{\"uri\":\"%s\",\"tokenSource\":{\"resource\":\"x\"}}", "tokenSource", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_failure(f, dt_arena_printf(f->arena, cases[i][0], u), DT_HTTP_ERR_INVALID,
                       cases[i][1]);
    assert_int_equal(httptest_hits(f->srv, "/ok"), before);   /* none was sent */
}

static void test_outbound_http_is_off_without_an_allow_list(void **state)
{
    fix *f = *state;
    dt_http_activity *off = NULL;
    dt_error err = {0};
    assert_ok(dt_http_activity_new(NULL, &off, &err), &err);
    int before = httptest_hits(f->srv, "/ok");
    expect_failure_of(f, off, get(f, "/ok"), DT_HTTP_ERR_DISABLED,
                      "start dtask serve with --http-activity-allow HOSTS");
    assert_int_equal(httptest_hits(f->srv, "/ok"), before);
    dt_http_activity_free(off);
}

static void test_allow_lists_take_names_addresses_and_wildcards(void **state)
{
    fix *f = *state;
    dt_http_activity *a = NULL;
    dt_error err = {0};
    dt_http_activity_options o = {.allow = " Example.COM , *.localhost,[::1]"};
    assert_ok(dt_http_activity_new(&o, &a, &err), &err);
    /* a name under the wildcard passes (curl answers *.localhost with loopback itself, no
     * DNS); the bare suffix does not, nor a name that only starts like an allowed one */
    const char *in = dt_arena_printf(f->arena, "{\"uri\":\"http://Api.LOCALHOST:%d/ok\"}",
                                     httptest_port(f->srv));
    json_t *r = NULL;
    const dt_failure *fl = NULL;
    run_with(f, a, in, &r, &fl);
    assert_non_null(r);
    assert_string_equal(content(r), "hello");
    json_decref(r);
    in = dt_arena_printf(f->arena, "{\"uri\":\"http://localhost:%d/ok\"}", httptest_port(f->srv));
    expect_failure_of(f, a, in, DT_HTTP_ERR_REFUSED, "host 'localhost'");
    expect_failure_of(f, a, "{\"uri\":\"http://EXAMPLE.com.evil.test/\"}", DT_HTTP_ERR_REFUSED,
                      "host 'example.com.evil.test'");
    /* 127.0.0.1 is not on this list */
    expect_failure_of(f, a, get(f, "/ok"), DT_HTTP_ERR_REFUSED, "host '127.0.0.1'");
    dt_http_activity_free(a);
    const char *bad[] = {"a b", "*", "*.", "x/y", ",", "http://x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dt_http_activity_options ob = {.allow = bad[i]};
        a = NULL;
        assert_int_equal(dt_http_activity_new(&ob, &a, &err), DT_ERR_INVALID_ARG);
        assert_null(a);
        assert_non_null(strstr(err.message, "--http-activity-allow"));
    }
}

static void test_after_every_failure_the_activity_and_server_still_work(void **state)
{
    fix *f = *state;
    expect_failure(f, get(f, "/big"), DT_HTTP_ERR_TOO_LARGE, "larger");
    expect_failure(f, get(f, "/loop"), DT_HTTP_ERR_REDIRECTS, "redirects");
    /* nothing listens on port 1: a transport error naming the URL and the cause */
    expect_failure(f, "{\"uri\":\"http://127.0.0.1:1/\"}", DT_HTTP_ERR_TRANSPORT,
                   "GET 'http://127.0.0.1:1/' failed: Failed to connect");
    json_t *r = expect_response(f, get(f, "/ok"), 200);
    assert_string_equal(content(r), "hello");
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_200_comes_back_with_its_headers_and_body, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_method_headers_and_body_are_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_error_status_is_a_response_not_a_failure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redirects_are_followed_and_a_loop_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redirect_targets_are_checked_like_the_first_url,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_slow_answer_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_oversized_answer_fails_with_or_without_a_length,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_body_that_is_not_text_is_replaced_not_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_hosts_and_schemes_not_allowed_are_refused_before_connecting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_urls_and_requests_say_what_is_wrong, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_outbound_http_is_off_without_an_allow_list, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_allow_lists_take_names_addresses_and_wildcards,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_after_every_failure_the_activity_and_server_still_work,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
