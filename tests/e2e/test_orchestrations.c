/* test_orchestrations.c — the C SDK in-process, end to end through a SQLite hub: chaining,
 * fan-out/fan-in, when-any, orchestration time and GUIDs, replay-safe logging, activity
 * failures handled and unhandled, non-determinism detection, and unregistered names. */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hubfix.h"

/* ---- activities ------------------------------------------------------------------------ */

static dt_status say_hello(dt_actx *ctx, const char *input, const char **output)
{
    size_t n = strlen(input);
    *output = dt_activity_printf(ctx, "\"Hello %.*s!\"", (int)(n - 2), input + 1);
    return DT_OK;
}

static dt_status square(dt_actx *ctx, const char *input, const char **output)
{
    long v = strtol(input, NULL, 10);
    *output = dt_activity_printf(ctx, "%ld", v * v);
    return DT_OK;
}

static dt_status broken(dt_actx *ctx, const char *input, const char **output)
{
    (void)output;
    return dt_activity_fail(ctx, "ValueError", "cannot process %s", input);
}

static void register_activities(hubfix *f)
{
    assert_ok(dt_worker_add_activity(f->worker, "say_hello", say_hello, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "square", square, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "echo", hubfix_echo, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "sleepy", hubfix_sleepy, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "broken", broken, NULL), NULL);
}

/* ---- chaining ----------------------------------------------------------------------------- */

static dt_status hello_cities(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    const char *a = dt_await(ctx, dt_call_activity(ctx, "say_hello", "\"Tokyo\"", NULL));
    const char *b = dt_await(ctx, dt_call_activity(ctx, "say_hello", "\"Seattle\"", NULL));
    const char *c = dt_await(ctx, dt_call_activity(ctx, "say_hello", "\"London\"", NULL));
    *output = dt_printf(ctx, "[%s,%s,%s]", a, b, c);
    return DT_OK;
}

static void test_chaining_returns_output_and_history(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "chain", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "hello_cities", hello_cities, NULL), NULL);
    hubfix_start(&f);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "hello_cities", NULL, id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "[\"Hello Tokyo!\",\"Hello Seattle!\",\"Hello London!\"]");
    assert_string_equal(s->name, "hello_cities");
    assert_true(s->created_at > 0 && s->completed_at >= s->created_at);

    size_t n;
    dt_event *ev = hubfix_history(&f, id, &n);
    assert_int_equal(ev[0].type, DT_EVENT_ORCHESTRATOR_STARTED);
    assert_int_equal(ev[1].type, DT_EVENT_EXECUTION_STARTED);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_SCHEDULED), 3);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_COMPLETED), 3);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_ORCHESTRATOR_STARTED), 4);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_ORCHESTRATOR_COMPLETED), 0);
    assert_int_equal(ev[n - 1].type, DT_EVENT_EXECUTION_COMPLETED);
    /* each completion answers the schedule of the same sequence number, in order */
    int32_t next = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type == DT_EVENT_TASK_SCHEDULED) {
            assert_int_equal(ev[i].event_id, next);
            assert_string_equal(ev[i].name, "say_hello");
        }
        if (ev[i].type == DT_EVENT_TASK_COMPLETED)
            assert_int_equal(ev[i].task_id, next++);
    }
    hubfix_close(&f);
}

/* ---- fan-out / fan-in ----------------------------------------------------------------------- */

static dt_status fan_out(dt_octx *ctx, const char *input, const char **output)
{
    int n = atoi(input);
    dt_task **tasks = dt_alloc(ctx, (size_t)n * sizeof *tasks);
    for (int i = 0; i < n; i++)
        tasks[i] = dt_call_activity(ctx, "square", dt_printf(ctx, "%d", i), NULL);
    dt_await(ctx, dt_when_all(ctx, tasks, (size_t)n));
    long sum = 0;
    for (int i = 0; i < n; i++)
        sum += strtol(dt_task_result(tasks[i]), NULL, 10);
    *output = dt_printf(ctx, "%ld", sum);
    return DT_OK;
}

static void test_fan_out_fan_in_of_1000_activities(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "fanout", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "fan_out", fan_out, NULL), NULL);
    hubfix_start(&f);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "fan_out", "1000", id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    /* sum of i*i for i < 1000 */
    assert_string_equal(s->output, "332833500");
    size_t n;
    dt_event *ev = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_SCHEDULED), 1000);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_COMPLETED), 1000);
    hubfix_close(&f);
}

static dt_status when_all_json(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_task *t[3] = {
        dt_call_activity(ctx, "echo", "\"a\"", NULL),
        dt_call_activity(ctx, "echo", "{\"b\":1}", NULL),
        dt_call_activity(ctx, "echo", NULL, NULL),
    };
    *output = dt_await(ctx, dt_when_all(ctx, t, 3));
    return DT_OK;
}

static void test_when_all_result_is_a_json_array_in_order(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "whenall", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "o", when_all_json, NULL), NULL);
    hubfix_start(&f);
    dt_instance_state *s = hubfix_run(&f, "o", NULL, NULL);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "[\"a\",{\"b\":1},null]");
    hubfix_close(&f);
}

/* ---- when-any -------------------------------------------------------------------------- */

static dt_status race(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_task *t[2] = {
        dt_call_activity(ctx, "sleepy", "1500", NULL),
        dt_call_activity(ctx, "sleepy", "10", NULL),
    };
    dt_task *any = dt_when_any(ctx, t, 2);
    const char *r = dt_await(ctx, any);
    size_t w = dt_task_winner(any);
    /* the loser finishes later; awaiting it afterwards still works */
    const char *slow = dt_await(ctx, t[0]);
    *output = dt_printf(ctx, "[%zu,%s,%s]", w, r, slow);
    return DT_OK;
}

static void test_when_any_picks_the_first_to_finish(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "whenany", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "race", race, NULL), NULL);
    hubfix_start(&f);
    dt_instance_state *s = hubfix_run(&f, "race", NULL, NULL);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "[1,10,1500]");
    hubfix_close(&f);
}

/* ---- determinism helpers ---------------------------------------------------------------- */

static atomic_int fresh_starts, fresh_after_first;

static dt_status deterministic(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    if (!dt_octx_is_replaying(ctx))
        atomic_fetch_add(&fresh_starts, 1);
    dt_octx_log(ctx, "marker-start");
    const char *g1 = dt_octx_new_guid(ctx);
    const char *g2 = dt_octx_new_guid(ctx);
    dt_time t1 = dt_octx_now(ctx);
    /* the activity records what the first episode saw */
    const char *seen = dt_await(
        ctx, dt_call_activity(ctx, "echo",
                              dt_printf(ctx, "\"%s %s %lld\"", g1, g2, (long long)t1), NULL));
    if (!dt_octx_is_replaying(ctx))
        atomic_fetch_add(&fresh_after_first, 1);
    dt_octx_log(ctx, "marker-after");
    dt_time t2 = dt_octx_now(ctx);
    dt_await(ctx, dt_call_activity(ctx, "echo", "1", NULL));
    const char *again = dt_printf(ctx, "\"%s %s %lld\"", g1, g2, (long long)t1);
    *output = dt_printf(ctx, "{\"same\":%s,\"distinct\":%s,\"later\":%s}",
                        strcmp(seen, again) == 0 ? "true" : "false",
                        strcmp(g1, g2) != 0 ? "true" : "false", t2 >= t1 ? "true" : "false");
    return DT_OK;
}

static size_t count_in_file(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[2048];
    size_t n = 0;
    while (fgets(line, sizeof line, fp))
        n += strstr(line, needle) != NULL;
    fclose(fp);
    return n;
}

static void test_time_guids_and_logging_are_replay_safe(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "determinism", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "det", deterministic, NULL), NULL);
    /* capture stderr to count the log lines */
    const char *log = test_path(f.dir, "stderr.log");
    fflush(stderr);
    int saved = dup(2);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    hubfix_start(&f);
    dt_instance_state *s = hubfix_run(&f, "det", NULL, NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "{\"same\":true,\"distinct\":true,\"later\":true}");
    /* three episodes ran; each statement counted as fresh exactly once */
    assert_int_equal(atomic_load(&fresh_starts), 1);
    assert_int_equal(atomic_load(&fresh_after_first), 1);
    assert_int_equal(count_in_file(log, "marker-start"), 1);
    assert_int_equal(count_in_file(log, "marker-after"), 1);
    hubfix_close(&f);
}

/* ---- failures ----------------------------------------------------------------------------- */

static dt_status handles_failure(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    const dt_failure *fail = NULL;
    dt_status st = dt_try_await(ctx, dt_call_activity(ctx, "broken", "42", NULL), NULL, &fail);
    *output = dt_printf(ctx, "{\"failed\":%s,\"type\":\"%s\",\"message\":\"%s\"}",
                        st == DT_ERR_TASK_FAILED ? "true" : "false",
                        fail ? fail->error_type : "", fail ? fail->message : "");
    return DT_OK;
}

static void test_activity_failure_reaches_the_orchestrator_with_details(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "failhandled", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "o", handles_failure, NULL), NULL);
    hubfix_start(&f);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "o", NULL, id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output,
                        "{\"failed\":true,\"type\":\"ValueError\",\"message\":\"cannot process 42\"}");
    size_t n;
    dt_event *ev = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_FAILED), 1);
    hubfix_close(&f);
}

static dt_status ignores_failure(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_call_activity(ctx, "broken", "\"x\"", NULL));
    return DT_OK;
}

static void test_unhandled_activity_failure_fails_the_instance(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "failunhandled", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "o", ignores_failure, NULL), NULL);
    hubfix_start(&f);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "o", NULL, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_non_null(s->failure);
    assert_string_equal(s->failure->error_type, "TaskFailedError");
    assert_non_null(strstr(s->failure->message, "activity 'broken'"));
    assert_non_null(s->failure->inner);
    assert_string_equal(s->failure->inner->error_type, "ValueError");
    assert_string_equal(s->failure->inner->message, "cannot process \"x\"");
    assert_null(s->output);
    size_t n;
    dt_event *ev = hubfix_history(&f, id, &n);
    assert_int_equal(ev[n - 1].type, DT_EVENT_EXECUTION_COMPLETED);
    assert_int_equal(ev[n - 1].status, DT_STATUS_FAILED);
    hubfix_close(&f);
}

static dt_status fails_itself(dt_octx *ctx, const char *input, const char **output)
{
    (void)output;
    return dt_fail(ctx, "InvalidInput", "no city in %s", input);
}

static void test_orchestrator_can_fail_with_its_own_error(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "failown", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "o", fails_itself, NULL), NULL);
    hubfix_start(&f);
    dt_instance_state *s = hubfix_run(&f, "o", "{}", NULL);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_string_equal(s->failure->error_type, "InvalidInput");
    assert_string_equal(s->failure->message, "no city in {}");
    hubfix_close(&f);
}

/* ---- non-determinism ------------------------------------------------------------------------ */

static atomic_int code_version;

static dt_status changing(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    /* deliberately non-deterministic: the "deployment" changes between episodes */
    const char *act = atomic_load(&code_version) == 1 ? "echo" : "say_hello";
    dt_await(ctx, dt_call_activity(ctx, act, "\"x\"", NULL));
    atomic_store(&code_version, 2);
    *output = dt_await(ctx, dt_call_activity(ctx, "echo", "2", NULL));
    return DT_OK;
}

static void test_changed_orchestrator_is_detected_as_non_deterministic(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "nondet", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "changing", changing, NULL), NULL);
    /* a deployment changes code by starting new worker processes, which hold no sessions:
     * the new code replays the old history. Without sessions here, every episode does. */
    dt_worker_set_sessions(f.worker, 0);
    atomic_store(&code_version, 1);
    hubfix_start(&f);
    dt_instance_state *s = hubfix_run(&f, "changing", NULL, NULL);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_string_equal(s->failure->error_type, "NonDeterminismError");
    /* the message names what history has and what the code does now */
    assert_non_null(strstr(s->failure->message, "TaskScheduled 'echo' at sequence 0"));
    assert_non_null(strstr(s->failure->message, "'say_hello'"));
    hubfix_close(&f);
}

/* ---- names nobody registered ----------------------------------------------------------------- */

static dt_status calls_missing(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_call_activity(ctx, "no_such_activity", NULL, NULL));
    return DT_OK;
}

/* A worker started with all_names (a host that wants every item) runs what it has no code for,
 * and fails it naming the missing name. */
static void test_unknown_names_fail_the_instance_naming_them(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "unknown", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "calls_missing", calls_missing, NULL), NULL);
    dt_error err = {0};
    dt_worker_options wo = {.all_names = true};
    assert_ok(dt_worker_start(f.worker, f.hub, &wo, &err), &err);
    dt_instance_state *s = hubfix_run(&f, "no_such_orchestrator", NULL, NULL);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_string_equal(s->failure->error_type, "OrchestratorNotRegistered");
    assert_non_null(strstr(s->failure->message, "'no_such_orchestrator'"));

    s = hubfix_run(&f, "calls_missing", NULL, NULL);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_non_null(s->failure->inner);
    assert_string_equal(s->failure->inner->error_type, "ActivityNotRegistered");
    assert_non_null(strstr(s->failure->inner->message, "'no_such_activity'"));
    hubfix_close(&f);
}

static dt_status other_orch(dt_octx *ctx, const char *input, const char **output)
{
    *output = dt_await(ctx, dt_call_activity(ctx, "other_act", input, NULL));
    return DT_OK;
}

/* By default the in-process worker takes only its own names: another program's orchestration
 * (and activity) on the same hub waits for that program instead of failing with
 * OrchestratorNotRegistered, and runs when a worker that has it starts. */
static void test_in_process_worker_leaves_other_names_to_other_programs(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "own-names", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "calls_missing", calls_missing, NULL), NULL);
    assert_ok(dt_worker_add_activity(f.worker, "echo", hubfix_echo, NULL), NULL);
    hubfix_start(&f);
    dt_error err = {0};
    char other[DT_INSTANCE_ID_MAX + 1], calls[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.input = "\"x\""};
    assert_ok(dt_client_start(f.client, "other_orch", &so, other, &err), &err);
    assert_ok(dt_client_start(f.client, "calls_missing", NULL, calls, &err), &err);

    dt_instance_state *s = NULL;
    assert_int_equal(dt_client_wait_completion(f.client, other, 1500, f.arena, &s, &err),
                     DT_ERR_TIMEOUT);
    assert_ok(dt_client_get(f.client, other, f.arena, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_PENDING);
    assert_ok(dt_client_get(f.client, calls, f.arena, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_RUNNING);   /* no_such_activity waits, unfailed */

    /* the other program: a worker that has other_orch and other_act */
    dt_worker_stop(f.worker);
    dt_worker *w2 = NULL;
    assert_ok(dt_worker_new(&w2), NULL);
    assert_ok(dt_worker_add_orchestrator(w2, "other_orch", other_orch, NULL), NULL);
    assert_ok(dt_worker_add_activity(w2, "other_act", hubfix_echo, NULL), NULL);
    assert_ok(dt_worker_start(w2, f.hub, NULL, &err), &err);
    assert_ok(dt_client_wait_completion(f.client, other, 60000, f.arena, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "\"x\"");
    assert_ok(dt_client_get(f.client, calls, f.arena, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_RUNNING);
    dt_worker_free(w2);
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chaining_returns_output_and_history),
        cmocka_unit_test(test_fan_out_fan_in_of_1000_activities),
        cmocka_unit_test(test_when_all_result_is_a_json_array_in_order),
        cmocka_unit_test(test_when_any_picks_the_first_to_finish),
        cmocka_unit_test(test_time_guids_and_logging_are_replay_safe),
        cmocka_unit_test(test_activity_failure_reaches_the_orchestrator_with_details),
        cmocka_unit_test(test_unhandled_activity_failure_fails_the_instance),
        cmocka_unit_test(test_orchestrator_can_fail_with_its_own_error),
        cmocka_unit_test(test_changed_orchestrator_is_detected_as_non_deterministic),
        cmocka_unit_test(test_unknown_names_fail_the_instance_naming_them),
        cmocka_unit_test(test_in_process_worker_leaves_other_names_to_other_programs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
