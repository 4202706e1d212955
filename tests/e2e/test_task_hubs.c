/* test_task_hubs.c — the set of task hubs behind dtask serve: each hub its own database, the
 * same hub for the same name, only the allowed names when a list is given, at most max_hubs
 * open, a deleted hub gone with its files (its name then a new, empty hub), names that cannot
 * be a hub's refused, and the hubs of an earlier run listed from disk. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hubfix.h"

static dt_hub_set *open_set(const char *dir, const char *const *allowed, size_t n, size_t max)
{
    static char db[700];
    snprintf(db, sizeof db, "%s/dt.db", dir);
    dt_hub_set_options o = {.hub = {.db_path = db}, .allowed = allowed, .n_allowed = n,
                            .max_hubs = max};
    dt_hub_set *s = NULL;
    dt_error err = {0};
    assert_ok(dt_hub_set_open(&o, &s, &err), &err);
    return s;
}

static void start_in(dt_hub *hub, const char *id)
{
    dt_client *c = NULL;
    assert_ok(dt_client_new(hub, &c), NULL);
    dt_start_options so = {.instance_id = id};
    char got[DT_INSTANCE_ID_MAX + 1];
    dt_error err = {0};
    assert_ok(dt_client_start(c, "orch", &so, got, &err), &err);
    dt_client_free(c);
}

static bool has_instance(dt_hub *hub, const char *id)
{
    dt_client *c = NULL;
    assert_ok(dt_client_new(hub, &c), NULL);
    dt_arena *a = dt_arena_new();
    dt_instance_state *s = NULL;
    bool found = dt_client_get(c, id, a, &s, NULL) == DT_OK;
    dt_arena_free(a);
    dt_client_free(c);
    return found;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void test_hubs_are_isolated_and_the_same_name_is_the_same_hub(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("hubs-isolated");
    dt_hub_set *s = open_set(dir, NULL, 0, 0);
    dt_hub_ref *def = NULL, *a1 = NULL, *a2 = NULL, *b = NULL;
    dt_error err = {0};
    assert_ok(dt_hub_set_get(s, NULL, &def, &err), &err);
    assert_string_equal(dt_hub_ref_name(def), "default");
    assert_ok(dt_hub_set_get(s, "alpha", &a1, &err), &err);
    assert_ok(dt_hub_set_get(s, "alpha", &a2, &err), &err);
    assert_ok(dt_hub_set_get(s, "beta", &b, &err), &err);
    assert_ptr_equal(dt_hub_ref_hub(a1), dt_hub_ref_hub(a2));
    start_in(dt_hub_ref_hub(a1), "same");
    start_in(dt_hub_ref_hub(b), "same");
    assert_true(has_instance(dt_hub_ref_hub(a2), "same"));
    assert_false(has_instance(dt_hub_ref_hub(def), "same"));
    char path[800];
    snprintf(path, sizeof path, "%s/dt.db.hubs/alpha.db", dir);
    assert_true(exists(path));
    dt_hub_ref_put(a1);
    dt_hub_ref_put(a2);
    dt_hub_ref_put(b);
    dt_hub_ref_put(def);
    dt_hub_set_close(s);

    /* another run: the hubs on disk are listed, and hold what they held */
    s = open_set(dir, NULL, 0, 0);
    dt_arena *a = dt_arena_new();
    const char **names = NULL;
    size_t n = 0;
    assert_ok(dt_hub_set_names(s, a, &names, &n, &err), &err);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "alpha");
    assert_string_equal(names[1], "beta");
    assert_string_equal(names[2], "default");
    assert_ok(dt_hub_set_get(s, "beta", &b, &err), &err);
    assert_true(has_instance(dt_hub_ref_hub(b), "same"));
    dt_hub_ref_put(b);
    /* a hub only on disk (not opened in this run) can be deleted too */
    assert_ok(dt_hub_set_delete(s, "alpha", &err), &err);
    assert_false(exists(path));
    assert_ok(dt_hub_set_get(s, "alpha", &a1, &err), &err);
    assert_false(has_instance(dt_hub_ref_hub(a1), "same"));
    dt_hub_ref_put(a1);
    dt_arena_free(a);
    dt_hub_set_close(s);
}

static void test_names_limits_and_the_allowed_list(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("hubs-limits");
    const char *const only[] = {"orders", "billing", "orders"};   /* named twice: one hub */
    dt_hub_set *s = open_set(dir, only, 3, 0);
    dt_arena *a = dt_arena_new();
    const char **names = NULL;
    size_t n = 0;
    assert_ok(dt_hub_set_names(s, a, &names, &n, NULL), NULL);
    assert_int_equal(n, 2);
    dt_arena_free(a);
    dt_hub_ref *r = NULL;
    dt_error err = {0};
    assert_int_equal(dt_hub_set_get(s, "shipping", &r, &err), DT_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "'shipping'"));
    assert_int_equal(dt_hub_set_get(s, NULL, &r, &err), DT_ERR_NOT_FOUND);   /* default too */
    assert_ok(dt_hub_set_get(s, "orders", &r, &err), &err);
    dt_hub_ref_put(r);
    const char *bad[] = {"", "../x", "a b", "-x", "\x01", NULL};
    for (size_t i = 0; bad[i]; i++)
        assert_int_equal(dt_task_hub_validate(bad[i], NULL), DT_ERR_INVALID_ARG);
    char longname[80];
    memset(longname, 'x', 65);
    longname[65] = '\0';
    assert_int_equal(dt_hub_set_get(s, longname, &r, &err), DT_ERR_INVALID_ARG);
    dt_hub_set_close(s);

    s = open_set(test_tmpdir("hubs-max"), NULL, 0, 2);   /* default + one more */
    assert_ok(dt_hub_set_get(s, "one", &r, &err), &err);
    dt_hub_ref_put(r);
    assert_int_equal(dt_hub_set_get(s, "two", &r, &err), DT_ERR_STATE);
    assert_non_null(strstr(err.message, "at most 2 task hubs"));
    dt_hub_set_close(s);
}

static void test_a_deleted_hub_goes_with_its_files_and_its_name_is_a_new_hub(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("hubs-delete");
    dt_hub_set *s = open_set(dir, NULL, 0, 0);
    dt_hub_ref *r = NULL;
    dt_error err = {0};
    assert_ok(dt_hub_set_get(s, "temp", &r, &err), &err);
    start_in(dt_hub_ref_hub(r), "i1");
    char path[800];
    snprintf(path, sizeof path, "%s/dt.db.hubs/temp.db", dir);
    assert_ok(dt_hub_set_delete(s, "temp", &err), &err);
    assert_true(dt_hub_ref_deleted(r));
    assert_true(exists(path));            /* still in use */
    assert_true(has_instance(dt_hub_ref_hub(r), "i1"));
    dt_hub_ref_put(r);   /* the last user: closed, files gone (on a thread of its own: the
                          * next use of the name waits for it) */
    assert_int_equal(dt_hub_set_delete(s, "temp", &err), DT_ERR_NOT_FOUND);
    assert_false(exists(path));
    assert_ok(dt_hub_set_get(s, "temp", &r, &err), &err);
    assert_false(has_instance(dt_hub_ref_hub(r), "i1"));
    dt_hub_ref_put(r);
    dt_hub_set_close(s);
}

typedef struct racer {
    dt_hub_set *set;
    dt_hub_ref *ref;
    dt_status st;
} racer;

static void *race_get(void *arg)
{
    racer *r = arg;
    r->st = dt_hub_set_get(r->set, "race", &r->ref, NULL);
    return NULL;
}

/* Eight first uses of one name at once (each open happens outside the set's lock): one hub. */
static void test_first_uses_at_once_open_one_hub(void **state)
{
    (void)state;
    dt_hub_set *s = open_set(test_tmpdir("hubs-race"), NULL, 0, 0);
    racer r[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (racer){s, NULL, DT_ERR_INTERNAL};
        assert_int_equal(pthread_create(&t[i], NULL, race_get, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(r[i].st, DT_OK);
        assert_ptr_equal(dt_hub_ref_hub(r[i].ref), dt_hub_ref_hub(r[0].ref));
    }
    for (int i = 0; i < 8; i++)
        dt_hub_ref_put(r[i].ref);
    dt_arena *a = dt_arena_new();
    const char **names = NULL;
    size_t n = 0;
    assert_ok(dt_hub_set_names(s, a, &names, &n, NULL), NULL);
    assert_int_equal(n, 2);   /* default and race */
    dt_arena_free(a);
    dt_hub_set_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hubs_are_isolated_and_the_same_name_is_the_same_hub),
        cmocka_unit_test(test_names_limits_and_the_allowed_list),
        cmocka_unit_test(test_a_deleted_hub_goes_with_its_files_and_its_name_is_a_new_hub),
        cmocka_unit_test(test_first_uses_at_once_open_one_hub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
