/* test_json_held.c — the bound on what jansson holds (dt_json_limit_held): while other threads
 * hold jansson's memory past the bound, a text is refused DT_ERR_NOMEM, naming the bound, told
 * apart from text that is not JSON; one text alone is always read; every block is counted back
 * when freed; the bound can be raised and lifted. An episode whose tags cannot be read for it
 * goes back for later, its instance not failed. Its own process: the bound is process-wide,
 * installed before any other use of jansson. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hubfix.h"
#include "testutil.h"

#define MIB ((size_t)1 << 20)

/* repeated: "[" ITEM "," ITEM ... "]", about N bytes */
static char *repeated(const char *item, size_t n)
{
    size_t len = strlen(item), count = n / (len + 1);
    char *s = malloc(count * (len + 1) + 3);
    assert_non_null(s);
    char *p = s;
    *p++ = '[';
    for (size_t i = 0; i < count; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, item, len);
        p += len;
    }
    *p++ = ']';
    *p = '\0';
    return s;
}

/* A thread that reads TEXT into a tree and holds it until told to let go. */
typedef struct holder {
    const char *text;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool holding, let_go;
} holder;

static void *hold_main(void *arg)
{
    holder *h = arg;
    json_t *v = json_loads(h->text, JSON_DECODE_ANY, NULL);
    pthread_mutex_lock(&h->mu);
    h->holding = v != NULL;
    pthread_cond_broadcast(&h->cv);
    while (!h->let_go)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    json_decref(v);
    return NULL;
}

static void hold(holder *h, pthread_t *t)
{
    assert_int_equal(pthread_create(t, NULL, hold_main, h), 0);
    pthread_mutex_lock(&h->mu);
    while (!h->holding)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

static void let_go(holder *h, pthread_t t)
{
    pthread_mutex_lock(&h->mu);
    h->let_go = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(t, NULL);
}

static void test_past_the_bound_others_are_refused_and_everything_is_counted_back(void **state)
{
    (void)state;
    dt_json_limit_held(4 * MIB);
    assert_int_equal(dt_json_held_max(), 4 * MIB);
    assert_int_equal(dt_json_held(), 0);

    /* a 1 MB text of empty objects: each a hash table, its tree far past 4 MiB; alone, it is
     * read all the same */
    char *objects = repeated("{}", MIB);
    dt_error err;
    assert_ok(dt_json_validate(objects, "input", &err), &err);
    assert_int_equal(dt_json_held(), 0);

    /* while another thread holds such a tree, past the bound, the next is refused */
    holder h = {.text = objects, .mu = PTHREAD_MUTEX_INITIALIZER,
                .cv = PTHREAD_COND_INITIALIZER};
    pthread_t t;
    hold(&h, &t);
    assert_true(dt_json_held() > 4 * MIB);
    assert_int_equal(dt_json_validate(objects, "input", &err), DT_ERR_NOMEM);
    assert_non_null(strstr(err.message, "input could not be read now"));
    assert_non_null(strstr(err.message, "4 MiB"));
    assert_false(dt_json_refused());   /* told once, then cleared */
    /* a bound raised far enough takes it */
    dt_json_limit_held(1024 * MIB);
    assert_ok(dt_json_validate(objects, "input", &err), &err);
    dt_json_limit_held(4 * MIB);
    let_go(&h, t);
    assert_int_equal(dt_json_held(), 0);   /* every block counted back, the refused ones too */

    /* let go, it is read again; text that is not JSON is still that, not a refusal; tags
     * read through the same functions */
    assert_ok(dt_json_validate(objects, "input", &err), &err);
    assert_int_equal(dt_json_validate("[1,", "input", &err), DT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "not valid JSON"));
    assert_ok(dt_tags_validate("{\"a\":\"b\"}", "tags", &err), &err);
    dt_json_limit_held(0);
    assert_int_equal(dt_json_held_max(), 0);
    assert_int_equal(dt_json_held(), 0);
    free(objects);
}

static dt_orch_item *next_orch(hubfix *f)
{
    dt_orch_item *item = NULL;
    dt_error err = {0};
    assert_ok(dt_hub_next_orchestration(f->hub, 20000, &item, &err), &err);
    assert_non_null(item);
    return item;
}

/* An action's tags are read (JSON) as its episode is built; refused for the bound, that is not
 * the orchestration's fault: the episode goes back and comes again (after a second), rather
 * than fail its instance for tags that are fine. */
static void test_an_episode_whose_tags_cannot_be_read_now_comes_again(void **state)
{
    (void)state;
    dt_json_limit_held(4 * MIB);
    hubfix f;
    hubfix_open(&f, "json-held", NULL);
    dt_error err = {0};
    dt_start_request req = {.name = "o", .instance_id = "tagged"};
    assert_ok(dt_hub_start(f.hub, &req, NULL, &err), &err);
    dt_orch_item *item = next_orch(&f);
    dt_action a = {.type = DT_ACTION_SCHEDULE_TASK, .id = 0, .name = "act",
                   .tags = "{\"k\":\"v\"}"};
    dt_orch_result res = {.actions = &a, .n_actions = 1};

    char *objects = repeated("{}", MIB);
    holder h = {.text = objects, .mu = PTHREAD_MUTEX_INITIALIZER,
                .cv = PTHREAD_COND_INITIALIZER};
    pthread_t t;
    hold(&h, &t);
    assert_int_equal(dt_hub_complete_orchestration(f.hub, item, &res, &err), DT_ERR_NOMEM);
    let_go(&h, t);
    dt_instance_state *st = NULL;
    assert_ok(dt_hub_get(f.hub, "tagged", f.arena, &st, &err), &err);
    assert_int_not_equal(st->status, DT_STATUS_FAILED);

    item = next_orch(&f);   /* again, the bound no longer pressed: it goes in */
    assert_ok(dt_hub_complete_orchestration(f.hub, item, &res, &err), &err);
    assert_ok(dt_hub_get(f.hub, "tagged", f.arena, &st, &err), &err);
    assert_int_equal(st->status, DT_STATUS_RUNNING);
    size_t n = 0;
    dt_event *ev = hubfix_history(&f, "tagged", &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_SCHEDULED), 1);
    hubfix_close(&f);
    free(objects);
    dt_json_limit_held(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_past_the_bound_others_are_refused_and_everything_is_counted_back),
        cmocka_unit_test(test_an_episode_whose_tags_cannot_be_read_now_comes_again),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
