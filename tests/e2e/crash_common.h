/* crash_common.h — the orchestration the crash test runs, shared by the test and the worker
 * it starts as a child process. */
#ifndef DT_CRASH_COMMON_H
#define DT_CRASH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "durabletask/sdk.h"

#define CRASH_INSTANCES 200
#define CRASH_STEPS 3
#define CRASH_LEASE_MS 1000

/* add_step: input n -> n + 1, slowly enough that a kill lands mid-work */
static inline dt_status crash_add_step(dt_actx *ctx, const char *input, const char **output)
{
    struct timespec ts = {0, 3 * 1000000L};
    nanosleep(&ts, NULL);
    *output = dt_activity_printf(ctx, "%ld", strtol(input, NULL, 10) + 1);
    return DT_OK;
}

/* chain: CRASH_STEPS steps of add_step from the input number */
static inline dt_status crash_chain(dt_octx *ctx, const char *input, const char **output)
{
    const char *v = input;
    for (int i = 0; i < CRASH_STEPS; i++)
        v = dt_await(ctx, dt_call_activity(ctx, "add_step", v, NULL));
    *output = v;
    return DT_OK;
}

static inline void crash_instance_id(int i, char *buf, size_t n)
{
    snprintf(buf, n, "crash-%03d", i);
}

/* The mixed workload: a sub-orchestration, a durable timer, an external event and an
 * activity that fails on its first attempt and is retried. Sequence numbers: 0 child,
 * 1 timer, 2 first attempt (fails), 3 retry timer, 4 second attempt. */
#define MIXED_INSTANCES 100
#define MIXED_FIRST_ATTEMPT 2

static inline void mixed_instance_id(int i, char *buf, size_t n)
{
    snprintf(buf, n, "mixed-%03d", i);
}

static inline dt_status mixed_fail_first(dt_actx *ctx, const char *input, const char **output)
{
    if (dt_activity_task_id(ctx) == MIXED_FIRST_ATTEMPT)
        return dt_activity_fail(ctx, "Transient", "first attempt fails");
    return crash_add_step(ctx, input, output);
}

static inline dt_status mixed_child(dt_octx *ctx, const char *input, const char **output)
{
    *output = dt_await(ctx, dt_call_activity(ctx, "add_step", input, NULL));
    return DT_OK;
}

static inline dt_status mixed(dt_octx *ctx, const char *input, const char **output)
{
    const char *a = dt_await(ctx, dt_call_sub_orchestrator(ctx, "mixed_child", input, NULL));
    dt_await(ctx, dt_create_timer(ctx, dt_octx_now(ctx) + 30 * 1000));
    const char *ev = dt_await(ctx, dt_wait_for_event(ctx, "go"));
    dt_retry_policy p = {.max_attempts = 3, .first_interval_ms = 30};
    dt_task_options o = {.retry = &p};
    const char *b = dt_await(ctx, dt_call_activity(ctx, "fail_first", a, &o));
    *output = dt_printf(ctx, "[%s,%s]", b, ev);
    return DT_OK;
}

static inline dt_status crash_register(dt_worker *w)
{
    dt_status st = dt_worker_add_orchestrator(w, "chain", crash_chain, NULL);
    if (st == DT_OK)
        st = dt_worker_add_orchestrator(w, "mixed", mixed, NULL);
    if (st == DT_OK)
        st = dt_worker_add_orchestrator(w, "mixed_child", mixed_child, NULL);
    if (st == DT_OK)
        st = dt_worker_add_activity(w, "add_step", crash_add_step, NULL);
    if (st == DT_OK)
        st = dt_worker_add_activity(w, "fail_first", mixed_fail_first, NULL);
    return st;
}

#endif
