/* test_long.c — a long orchestration: 10,000 activities in sequence. Each episode replays the
 * whole history, so this checks that a long history stays workable: the hub's history cache
 * reads only new events, and replayed steps cost a comparison, not an allocation or a parse.
 * (bench/ measures the replay cost per episode as history grows.) */
#include <stdio.h>
#include <stdlib.h>

#include "hubfix.h"

#define STEPS 10000

static void test_10000_sequential_activities_complete(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "long", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "long_chain", hubfix_chain, NULL), NULL);
    assert_ok(dt_worker_add_activity(f.worker, "inc", hubfix_inc, NULL), NULL);
    hubfix_start(&f);
    char id[DT_INSTANCE_ID_MAX + 1];
    char in[16];
    snprintf(in, sizeof in, "%d", STEPS);
    dt_error err = {0};
    dt_start_options so = {.input = in};
    assert_ok(dt_client_start(f.client, "long_chain", &so, id, &err), &err);
    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_completion(f.client, id, 900000, f.arena, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "10000");
    size_t n;
    dt_event *ev = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_SCHEDULED), STEPS);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_COMPLETED), STEPS);
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_10000_sequential_activities_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
