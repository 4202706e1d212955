/* test_grow.c — core's one way to grow a heap array (dt_grow), what an arena holds
 * (dt_arena_held), and the event kinds every layer asks about (dt_event_is_scheduling,
 * dt_event_is_completion). */
#include <stdint.h>
#include <stdlib.h>

#include "testutil.h"

static void test_grow_doubles_keeps_contents_and_reuses_room(void **state)
{
    (void)state;
    int *v = NULL;
    size_t cap = 0;
    for (int i = 0; i < 1000; i++) {
        int *bigger = dt_grow(v, &cap, (size_t)i + 1, sizeof *v);
        assert_non_null(bigger);
        v = bigger;
        assert_true(cap >= (size_t)i + 1);
        v[i] = i;
    }
    for (int i = 0; i < 1000; i++)
        assert_int_equal(v[i], i);
    assert_int_equal(cap, 1024);           /* 8 doubled: amortized constant per append */
    size_t before = cap;
    assert_ptr_equal(dt_grow(v, &cap, 10, sizeof *v), v);   /* room enough: same array */
    assert_int_equal(cap, before);
    free(v);
}

static void test_grow_refuses_overflow_and_leaves_the_array(void **state)
{
    (void)state;
    size_t cap = 0;
    char *v = dt_grow(NULL, &cap, 16, 1);
    assert_non_null(v);
    size_t had = cap;
    assert_null(dt_grow(v, &cap, SIZE_MAX / 2 + 2, 1));     /* doubling would overflow */
    assert_null(dt_grow(v, &cap, SIZE_MAX / 8, 16));        /* the bytes would overflow */
    assert_null(dt_grow(v, &cap, 1, 0));                    /* nothing to grow */
    assert_int_equal(cap, had);
    v[15] = 'x';                                            /* still ours, still whole */
    free(v);
}

/* the gRPC server counts what a client makes it keep by dt_arena_held: it must grow with
 * every allocation, small ones by their chunks, big ones by at least their size */
static void test_arena_held_counts_every_chunk(void **state)
{
    (void)state;
    assert_int_equal(dt_arena_held(NULL), 0);
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    size_t first = dt_arena_held(a);
    assert_true(first >= 1024);
    size_t asked = 0;
    for (int i = 0; i < 10000; i++) {
        assert_non_null(dt_arena_alloc(a, 24));
        asked += 24;
    }
    size_t small = dt_arena_held(a);
    assert_true(small >= asked);
    assert_true(small < asked * 2 + first + 64 * 1024);   /* chunks, not far more */
    assert_non_null(dt_arena_alloc(a, 1 << 20));
    assert_true(dt_arena_held(a) >= small + (1 << 20));
    dt_arena_free(a);
}

static void test_event_kinds(void **state)
{
    (void)state;
    const dt_event_type scheduling[] = {DT_EVENT_TASK_SCHEDULED, DT_EVENT_TIMER_CREATED,
                                        DT_EVENT_SUB_ORCHESTRATION_CREATED, DT_EVENT_EVENT_SENT};
    const dt_event_type completion[] = {DT_EVENT_TASK_COMPLETED, DT_EVENT_TASK_FAILED,
                                        DT_EVENT_TIMER_FIRED,
                                        DT_EVENT_SUB_ORCHESTRATION_COMPLETED,
                                        DT_EVENT_SUB_ORCHESTRATION_FAILED};
    int n_sched = 0, n_done = 0;
    for (int t = DT_EVENT_NONE; t <= DT_EVENT_EXECUTION_RESUMED; t++) {
        bool s = dt_event_is_scheduling((dt_event_type)t);
        bool c = dt_event_is_completion((dt_event_type)t);
        assert_false(s && c);
        n_sched += s;
        n_done += c;
    }
    assert_int_equal(n_sched, 4);
    assert_int_equal(n_done, 5);
    for (size_t i = 0; i < 4; i++)
        assert_true(dt_event_is_scheduling(scheduling[i]));
    for (size_t i = 0; i < 5; i++)
        assert_true(dt_event_is_completion(completion[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_doubles_keeps_contents_and_reuses_room),
        cmocka_unit_test(test_grow_refuses_overflow_and_leaves_the_array),
        cmocka_unit_test(test_arena_held_counts_every_chunk),
        cmocka_unit_test(test_event_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
