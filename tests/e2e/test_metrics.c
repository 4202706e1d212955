/* test_metrics.c — the hub's Prometheus metrics tell what happened: instances started,
 * completed and failed by name, work item and commit timings, queue depths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubfix.h"

static dt_status ok_orch(dt_octx *ctx, const char *input, const char **output)
{
    *output = dt_await(ctx, dt_call_activity(ctx, "echo", input, NULL));
    return DT_OK;
}

static dt_status bad_orch(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    (void)output;
    return dt_fail(ctx, "Nope", "fails on purpose");
}

static void expect_line(const char *text, const char *line)
{
    if (strstr(text, line) == NULL)
        fail_msg("metrics lack '%s':\n%s", line, text);
}

static void test_metrics_count_instances_and_time_work(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "metrics", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "ok \"quoted\"", ok_orch, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "bad", bad_orch, NULL), NULL);
    assert_ok(dt_worker_add_activity(f.worker, "echo", hubfix_echo, NULL), NULL);
    /* one instance nobody runs: it waits in the queue */
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    assert_ok(dt_client_start(f.client, "unserved", NULL, id, &err), &err);
    char *before = NULL;
    assert_ok(dt_hub_metrics_text(f.hub, &before), NULL);
    expect_line(before, "dtask_queue_depth{kind=\"orchestration\"} 1");
    free(before);

    hubfix_start(&f);
    hubfix_run(&f, "ok \"quoted\"", "1", NULL);
    hubfix_run(&f, "ok \"quoted\"", "2", NULL);
    hubfix_run(&f, "bad", NULL, NULL);
    char *text = NULL;
    assert_ok(dt_hub_metrics_text(f.hub, &text), NULL);
    expect_line(text, "# TYPE dtask_instances_started_total counter");
    expect_line(text, "dtask_instances_started_total{name=\"ok \\\"quoted\\\"\"} 2");
    expect_line(text, "dtask_instances_completed_total{name=\"ok \\\"quoted\\\"\"} 2");
    expect_line(text, "dtask_instances_failed_total{name=\"bad\"} 1");
    expect_line(text, "dtask_instances_started_total{name=\"unserved\"} 1");
    expect_line(text, "dtask_work_item_seconds_count{kind=\"activity\"} 2");
    expect_line(text, "# TYPE dtask_store_commit_seconds histogram");
    expect_line(text, "dtask_store_commit_batch_size_bucket{le=\"+Inf\"}");
    expect_line(text, "dtask_lease_lost_total 0");
    /* a hub on SQLite is the only node of its database */
    char node[256];
    snprintf(node, sizeof node, "dtask_node_info{node=\"%s\"} 1", dt_hub_node(f.hub));
    expect_line(text, node);
    expect_line(text, "dtask_nodes_alive 1");
    snprintf(node, sizeof node, "dtask_node_alive_since{node=\"%s\"} ", dt_hub_node(f.hub));
    expect_line(text, node);
    /* the orchestration episodes: at least one per instance that ran */
    const char *oc = strstr(text, "dtask_work_item_seconds_count{kind=\"orchestration\"} ");
    assert_non_null(oc);
    assert_true(atoi(oc + strlen("dtask_work_item_seconds_count{kind=\"orchestration\"} ")) >= 5);
    free(text);
    hubfix_close(&f);
}

static dt_status parent_orch(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    const char *a = dt_await(ctx, dt_call_sub_orchestrator(ctx, "child \\ orch", "1", NULL));
    const char *b = dt_await(ctx, dt_call_sub_orchestrator(ctx, "child \\ orch", "2", NULL));
    *output = dt_printf(ctx, "[%s,%s]", a, b);
    return DT_OK;
}

/* Sub-orchestrations are instances started like any other: counted by name, so started minus
 * finished is what still runs. */
static void test_metrics_count_sub_orchestration_starts(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "metrics-sub", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "parent", parent_orch, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "child \\ orch", ok_orch, NULL), NULL);
    assert_ok(dt_worker_add_activity(f.worker, "echo", hubfix_echo, NULL), NULL);
    hubfix_start(&f);
    dt_instance_state *s = hubfix_run(&f, "parent", NULL, NULL);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "[1,2]");
    char *text = NULL;
    assert_ok(dt_hub_metrics_text(f.hub, &text), NULL);
    expect_line(text, "dtask_instances_started_total{name=\"parent\"} 1");
    expect_line(text, "dtask_instances_started_total{name=\"child \\\\ orch\"} 2");
    expect_line(text, "dtask_instances_completed_total{name=\"child \\\\ orch\"} 2");
    free(text);
    hubfix_close(&f);
}

static dt_status wait_go(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_wait_for_event(ctx, "go"));
    return DT_OK;
}

static void expect_cached(hubfix *f, size_t instances)
{
    char *text = NULL;
    assert_ok(dt_hub_metrics_text(f->hub, &text), NULL);
    char line[96];
    snprintf(line, sizeof line, "dtask_history_cache_instances %zu\n", instances);
    expect_line(text, line);
    free(text);
}

/* The history cache keeps what running instances need for their next episodes: an ended
 * execution's history leaves it with its last episode, so it holds the live ones only. */
static void test_the_history_cache_holds_running_instances_only(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "metrics-cache", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "ok", ok_orch, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "wait_go", wait_go, NULL), NULL);
    assert_ok(dt_worker_add_activity(f.worker, "echo", hubfix_echo, NULL), NULL);
    hubfix_start(&f);
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "waits"};
    assert_ok(dt_client_start(f.client, "wait_go", &so, id, &err), &err);
    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_start(f.client, "waits", 60000, f.arena, &s, &err), &err);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hubfix_run(&f, "ok", "1", NULL)->status, DT_STATUS_COMPLETED);
    expect_cached(&f, 1);   /* "waits" alone */
    assert_ok(dt_client_raise_event(f.client, "waits", "go", "2", &err), &err);
    assert_ok(dt_client_wait_completion(f.client, "waits", 60000, f.arena, &s, &err), &err);
    assert_string_equal(s->output, "2");
    expect_cached(&f, 0);
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_count_instances_and_time_work),
        cmocka_unit_test(test_metrics_count_sub_orchestration_starts),
        cmocka_unit_test(test_the_history_cache_holds_running_instances_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
