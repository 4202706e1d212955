/* test_http_call.c — durable HTTP calls end to end: C orchestrations call dt_call_http on an
 * embedded hub, the built-in activity runs in the worker (dt_worker_add_http_activity) or,
 * as `dtask serve` runs it, in the activity host over a hub set with no worker activity at
 * all; the local test server answers. A 202 is followed on durable timers (history shows
 * them) until the final answer or the call's timeout; an error status is an answer; a refused
 * host or an outbound HTTP that is off is a failure the orchestration sees by its type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durabletask/httpcall.h"
#include "hubfix.h"
#include "httptest.h"

/* How the orchestrator "call" makes its call (its user data). */
typedef struct call_mode {
    int64_t timeout_ms;
    bool no_async;
    bool fail_orchestration;    /* FAILURE NULL: the orchestration fails with the call */
} call_mode;

/* call: the input is the URL (a JSON string); the output says what came back. */
static dt_status call(dt_octx *ctx, const char *input, const char **output)
{
    const call_mode *m = dt_octx_user(ctx);
    size_t n = strlen(input);
    const char *uri = n >= 2 ? dt_printf(ctx, "%.*s", (int)(n - 2), input + 1) : "";
    dt_http_header h[] = {{"X-Custom", "from-c"}};
    dt_http_request req = {.uri = uri, .headers = h, .n_headers = 1,
                           .timeout_ms = m->timeout_ms, .no_async_pattern = m->no_async};
    dt_http_response resp;
    const dt_failure *f = NULL;
    dt_status st = dt_call_http(ctx, &req, &resp, m->fail_orchestration ? NULL : &f);
    if (st != DT_OK && m->fail_orchestration)
        return st;
    if (st != DT_OK) {
        *output = dt_printf(ctx, "{\"error\":\"%s\"}", f->error_type);
        return DT_OK;
    }
    const char *x = dt_http_response_header(&resp, "x-test");
    *output = dt_printf(ctx, "{\"status\":%d,\"content\":\"%s\",\"x_test\":\"%s\"}",
                        resp.status_code, resp.content ? resp.content : "", x ? x : "");
    return DT_OK;
}

static const call_mode plain = {0}, no_async = {.no_async = true},
                       short_timeout = {.timeout_ms = 2500},
                       or_fail = {.fail_orchestration = true};

typedef struct fix {
    hubfix f;
    httptest *srv;
    dt_http_activity *act;
} fix;

static void fix_open(fix *x, const char *name, const char *allow)
{
    hubfix_open(&x->f, name, NULL);
    x->srv = httptest_start();
    dt_error err = {0};
    dt_http_activity_options o = {.allow = allow};
    assert_ok(dt_http_activity_new(&o, &x->act, &err), &err);
    assert_ok(dt_worker_add_http_activity(x->f.worker, x->act), NULL);
    assert_ok(dt_worker_add_orchestrator(x->f.worker, "call", call, (void *)&plain), NULL);
    assert_ok(dt_worker_add_orchestrator(x->f.worker, "call_no_async", call, (void *)&no_async),
              NULL);
    assert_ok(dt_worker_add_orchestrator(x->f.worker, "call_short", call,
                                         (void *)&short_timeout), NULL);
    assert_ok(dt_worker_add_orchestrator(x->f.worker, "call_or_fail", call, (void *)&or_fail),
              NULL);
    hubfix_start(&x->f);
}

static void fix_close(fix *x)
{
    hubfix_close(&x->f);
    dt_http_activity_free(x->act);
    httptest_stop(x->srv);
}

static dt_instance_state *run(fix *x, const char *orch, const char *path, char *id)
{
    char in[300];
    snprintf(in, sizeof in, "\"%s\"", httptest_url(x->srv, path));
    return hubfix_run(&x->f, orch, in, id);
}

static void expect_output(const dt_instance_state *s, const char *output)
{
    if (s->status != DT_STATUS_COMPLETED)
        fail_msg("%s: %s", dt_runtime_status_name(s->status),
                 s->failure ? s->failure->message : "");
    assert_string_equal(s->output, output);
}

static size_t scheduled(const dt_event *ev, size_t n, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ev[i].type == DT_EVENT_TASK_SCHEDULED && strcmp(ev[i].name, name) == 0;
    return c;
}

static void test_a_call_returns_the_response_and_is_one_activity(void **state)
{
    (void)state;
    fix x;
    fix_open(&x, "httpcall_ok", "127.0.0.1");
    char id[DT_INSTANCE_ID_MAX + 1];
    expect_output(run(&x, "call", "/ok", id), "{\"status\":200,\"content\":\"hello\",\"x_test\":\"yes\"}");
    size_t n;
    dt_event *ev = hubfix_history(&x.f, id, &n);
    assert_int_equal(scheduled(ev, n, DT_HTTP_ACTIVITY_NAME), 1);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TIMER_CREATED), 0);
    /* the request went as the orchestration built it */
    expect_output(run(&x, "call", "/echo", NULL),
                  "{\"status\":200,\"content\":\"GET|from-c|||\",\"x_test\":\"\"}");
    fix_close(&x);
}

static void test_a_202_is_polled_on_durable_timers_until_the_final_answer(void **state)
{
    (void)state;
    fix x;
    fix_open(&x, "httpcall_202", "127.0.0.1");
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = run(&x, "call", "/poll/start", id);
    expect_output(s, "{\"status\":200,\"content\":\"done\",\"x_test\":\"\"}");
    /* start (202), status (202), status (200): two waits of Retry-After: 1 between */
    assert_int_equal(httptest_hits(x.srv, "/poll/start"), 1);
    assert_int_equal(httptest_hits(x.srv, "/poll/status"), 2);
    size_t n;
    dt_event *ev = hubfix_history(&x.f, id, &n);
    assert_int_equal(scheduled(ev, n, DT_HTTP_ACTIVITY_NAME), 3);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TIMER_CREATED), 2);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TIMER_FIRED), 2);
    assert_true(s->completed_at - s->created_at >= 2000000);
    /* the polls were GETs of the Location, resolved against the first URL */
    int polls = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].type == DT_EVENT_TASK_SCHEDULED && strstr(ev[i].input, "/poll/status") &&
            strstr(ev[i].input, "\"method\":\"GET\""))
            polls++;
    assert_int_equal(polls, 2);
    /* with the pattern off, the 202 is the answer */
    expect_output(run(&x, "call_no_async", "/poll/start", NULL),
                  "{\"status\":202,\"content\":\"working\",\"x_test\":\"\"}");
    fix_close(&x);
}

static void test_polling_stops_at_the_calls_timeout(void **state)
{
    (void)state;
    fix x;
    fix_open(&x, "httpcall_timeout", "127.0.0.1");
    dt_instance_state *s = run(&x, "call_short", "/poll/forever", NULL);
    expect_output(s, "{\"error\":\"" DT_HTTP_ERR_TIMEOUT "\"}");
    assert_true(s->completed_at - s->created_at >= 1000000);
    int hits = httptest_hits(x.srv, "/poll/forever");
    assert_true(hits >= 2 && hits <= 3);
    fix_close(&x);
}

static void test_error_statuses_are_answers_and_refusals_are_failures(void **state)
{
    (void)state;
    fix x;
    fix_open(&x, "httpcall_fail", "127.0.0.1");
    expect_output(run(&x, "call", "/fail", NULL),
                  "{\"status\":500,\"content\":\"boom\",\"x_test\":\"\"}");
    expect_output(run(&x, "call", "/big", NULL), "{\"error\":\"" DT_HTTP_ERR_TOO_LARGE "\"}");
    expect_output(hubfix_run(&x.f, "call", "\"http://example.com/\"", NULL),
                  "{\"error\":\"" DT_HTTP_ERR_REFUSED "\"}");
    /* without a FAILURE out-parameter the orchestration fails with the call */
    dt_instance_state *s = hubfix_run(&x.f, "call_or_fail", "\"ftp://127.0.0.1/x\"", NULL);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_string_equal(s->failure->error_type, DT_HTTP_ERR_REFUSED);
    assert_non_null(strstr(s->failure->message, "scheme 'ftp'"));
    s = hubfix_run(&x.f, "call_or_fail", "\"\"", NULL);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_string_equal(s->failure->error_type, DT_HTTP_ERR_INVALID);
    fix_close(&x);
}

/* ---- the activity as `dtask serve` runs it: a host over a hub set --------------------------- */

/* A hub set as `dtask serve` opens it, its default hub running the orchestration "call" and
 * no activity loop (which would take every activity, as a remote worker's stream without
 * filters would): the activity is the host's to run. */
typedef struct hostfix {
    httptest *srv;
    dt_hub_set *set;
    dt_hub_ref *ref;
    dt_worker *w;
    dt_client *c;
    dt_http_activity *on, *off;   /* allowing 127.0.0.1; outbound HTTP off */
    dt_arena *arena;
} hostfix;

static void host_open(hostfix *h, const char *name)
{
    memset(h, 0, sizeof *h);
    h->srv = httptest_start();
    dt_hub_set_options so = {.hub = {.db_path = test_path(test_tmpdir(name), "dt.db")}};
    dt_error err = {0};
    assert_ok(dt_hub_set_open(&so, &h->set, &err), &err);
    assert_ok(dt_hub_set_get(h->set, NULL, &h->ref, &err), &err);
    assert_ok(dt_worker_new(&h->w), NULL);
    assert_ok(dt_worker_add_orchestrator(h->w, "call", call, (void *)&plain), NULL);
    dt_executor ex = dt_worker_executor(h->w);
    assert_ok(dt_hub_run(dt_hub_ref_hub(h->ref), &ex, NULL, 2, 0, &err), &err);
    assert_ok(dt_client_new(dt_hub_ref_hub(h->ref), &h->c), NULL);
    dt_http_activity_options o = {.allow = "127.0.0.1"};
    assert_ok(dt_http_activity_new(&o, &h->on, &err), &err);
    assert_ok(dt_http_activity_new(NULL, &h->off, &err), &err);
    h->arena = dt_arena_new();
}

static void host_close(hostfix *h)
{
    dt_arena_free(h->arena);
    dt_client_free(h->c);
    dt_hub_stop(dt_hub_ref_hub(h->ref));
    dt_worker_free(h->w);
    dt_hub_ref_put(h->ref);
    dt_hub_set_close(h->set);
    dt_http_activity_free(h->on);
    dt_http_activity_free(h->off);
    httptest_stop(h->srv);
}

static void host_start_call(hostfix *h, const char *path, char id[DT_INSTANCE_ID_MAX + 1])
{
    char in[300];
    snprintf(in, sizeof in, "\"%s\"", httptest_url(h->srv, path));
    dt_start_options st = {.input = in};
    dt_error err = {0};
    assert_ok(dt_client_start(h->c, "call", &st, id, &err), &err);
}

static dt_instance_state *host_wait(hostfix *h, const char *id)
{
    dt_error err = {0};
    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_completion(h->c, id, 60000, h->arena, &s, &err), &err);
    return s;
}

static void test_the_server_host_runs_the_activity_with_no_worker_activity(void **state)
{
    (void)state;
    hostfix h;
    host_open(&h, "httpcall_host");
    const char *expected[] = {"{\"status\":200,\"content\":\"done\",\"x_test\":\"\"}",
                              "{\"error\":\"" DT_HTTP_ERR_DISABLED "\"}"};
    for (int round = 0; round < 2; round++) {
        dt_http_activity_host *host = NULL;
        dt_error err = {0};
        assert_ok(dt_http_activity_host_start(h.set, NULL, 0, round == 0 ? h.on : h.off, 0,
                                              &host, &err), &err);
        char id[DT_INSTANCE_ID_MAX + 1];
        host_start_call(&h, "/poll/start", id);
        expect_output(host_wait(&h, id), expected[round]);
        dt_http_activity_host_stop(host);
    }
    host_close(&h);
}

/* A stop cuts an exchange in flight short and gives its work item back, so the next run
 * (here: a host started again) does the whole call. */
static void test_stopping_the_host_mid_exchange_gives_the_work_back(void **state)
{
    (void)state;
    hostfix h;
    host_open(&h, "httpcall_hoststop");
    dt_http_activity_host *host = NULL;
    dt_error err = {0};
    assert_ok(dt_http_activity_host_start(h.set, NULL, 0, h.on, 1, &host, &err), &err);
    char id[DT_INSTANCE_ID_MAX + 1];
    host_start_call(&h, "/slow", id);
    for (int i = 0; i < 500 && httptest_hits(h.srv, "/slow") == 0; i++)
        test_sleep_ms(10);
    assert_int_equal(httptest_hits(h.srv, "/slow"), 1);
    dt_time t0 = dt_now();
    dt_http_activity_host_stop(host);   /* at once, not after the 3 s answer */
    assert_true(dt_now() - t0 < 1000000);
    assert_ok(dt_http_activity_host_start(h.set, NULL, 0, h.on, 1, &host, &err), &err);
    expect_output(host_wait(&h, id), "{\"status\":200,\"content\":\"late\",\"x_test\":\"\"}");
    assert_int_equal(httptest_hits(h.srv, "/slow"), 2);
    dt_http_activity_host_stop(host);
    host_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_call_returns_the_response_and_is_one_activity),
        cmocka_unit_test(test_a_202_is_polled_on_durable_timers_until_the_final_answer),
        cmocka_unit_test(test_polling_stops_at_the_calls_timeout),
        cmocka_unit_test(test_error_statuses_are_answers_and_refusals_are_failures),
        cmocka_unit_test(test_the_server_host_runs_the_activity_with_no_worker_activity),
        cmocka_unit_test(test_stopping_the_host_mid_exchange_gives_the_work_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
