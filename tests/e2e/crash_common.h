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

#endif
