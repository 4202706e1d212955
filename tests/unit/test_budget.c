/* test_budget.c — core_budget, the count the servers bound held bytes with: what fits and what
 * does not, nothing always fitting (even over the limit), one message larger than the limit
 * going only when at most half is held, and threads taking and giving at once never passing
 * the limit nor losing a byte. */
#include <pthread.h>
#include <stdio.h>

#include "core/budget.h"
#include "testutil.h"

static void test_what_fits_is_taken_and_the_rest_refused(void **state)
{
    (void)state;
    core_budget b = {.max = 100};
    assert_true(core_budget_take(&b, 60));
    assert_true(core_budget_take(&b, 40));   /* exactly the limit */
    assert_false(core_budget_take(&b, 1));
    assert_int_equal(core_budget_used(&b), 100);
    core_budget_give(&b, 40);
    assert_false(core_budget_take(&b, 41));
    assert_true(core_budget_take(&b, 40));
    core_budget_give(&b, 100);
    assert_int_equal(core_budget_used(&b), 0);
}

static void test_nothing_fits_even_over_the_limit(void **state)
{
    (void)state;
    core_budget b = {.max = 100};
    core_budget_force(&b, 150);   /* what is bounded elsewhere may pass the limit */
    assert_true(core_budget_take(&b, 0));
    assert_false(core_budget_take(&b, 1));
    assert_int_equal(core_budget_used(&b), 150);
}

static void test_a_message_over_the_limit_goes_when_half_is_free(void **state)
{
    (void)state;
    core_budget b = {.max = 100};
    assert_true(core_budget_take(&b, 51));
    assert_false(core_budget_take(&b, 500));   /* more than half held */
    core_budget_give(&b, 1);
    assert_true(core_budget_take(&b, 500));    /* half held: it goes */
    assert_false(core_budget_take(&b, 500));   /* and no second one beside it */
    assert_false(core_budget_take(&b, 1));
    core_budget_give(&b, 550);
    assert_int_equal(core_budget_used(&b), 0);
}

/* churn: take and give back sizes 1..60 against a limit of 100, checking the count */
static core_budget shared = {.max = 100};
static atomic_int over;

static void *churn(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < 200000; i++) {
        size_t n = 1 + (seed = seed * 1103515245u + 12345u) % 60;
        if (!core_budget_take(&shared, n))
            continue;
        if (core_budget_used(&shared) > shared.max)
            atomic_fetch_add(&over, 1);
        core_budget_give(&shared, n);
    }
    return NULL;
}

static void test_threads_never_pass_the_limit_nor_lose_a_byte(void **state)
{
    (void)state;
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, (void *)(i + 1)), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&over), 0);
    assert_int_equal(core_budget_used(&shared), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_what_fits_is_taken_and_the_rest_refused),
        cmocka_unit_test(test_nothing_fits_even_over_the_limit),
        cmocka_unit_test(test_a_message_over_the_limit_goes_when_half_is_free),
        cmocka_unit_test(test_threads_never_pass_the_limit_nor_lose_a_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
