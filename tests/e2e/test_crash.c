/* test_crash.c — durability against kill -9. A worker process runs a batch of orchestrations
 * on a SQLite file and is killed with SIGKILL mid-work; a second worker process finishes the
 * batch. Every instance must complete with the right output, and no history may hold a step
 * twice: one ExecutionStarted, one ExecutionCompleted, each sequence number scheduled once and
 * completed once. */
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crash_common.h"
#include "hubfix.h"

extern char **environ;

static pid_t spawn_worker(const char *db)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/helper_crash_worker", DT_TEST_BINARY_DIR);
    char *argv[] = {path, (char *)db, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, path, NULL, NULL, argv, environ);
    if (rc != 0)
        fail_msg("cannot start %s: %s", path, strerror(rc));
    return pid;
}

static int count_completed(dt_client *c)
{
    dt_arena *a = dt_arena_new();
    int n = 0;
    for (int i = 0; i < CRASH_INSTANCES; i++) {
        char id[32];
        crash_instance_id(i, id, sizeof id);
        dt_instance_state *s = NULL;
        if (dt_client_get(c, id, a, &s, NULL) == DT_OK && s->status == DT_STATUS_COMPLETED)
            n++;
    }
    dt_arena_free(a);
    return n;
}

static void check_history_once(const dt_event *ev, size_t n, const char *id)
{
    int scheduled[CRASH_STEPS] = {0}, completed[CRASH_STEPS] = {0};
    int started = 0, finished = 0;
    for (size_t i = 0; i < n; i++) {
        switch (ev[i].type) {
        case DT_EVENT_EXECUTION_STARTED: started++; break;
        case DT_EVENT_EXECUTION_COMPLETED: finished++; break;
        case DT_EVENT_TASK_SCHEDULED:
            assert_in_range(ev[i].event_id, 0, CRASH_STEPS - 1);
            scheduled[ev[i].event_id]++;
            break;
        case DT_EVENT_TASK_COMPLETED:
            assert_in_range(ev[i].task_id, 0, CRASH_STEPS - 1);
            completed[ev[i].task_id]++;
            break;
        default: break;
        }
    }
    if (started != 1 || finished != 1)
        fail_msg("%s: %d ExecutionStarted, %d ExecutionCompleted", id, started, finished);
    for (int k = 0; k < CRASH_STEPS; k++)
        if (scheduled[k] != 1 || completed[k] != 1)
            fail_msg("%s: step %d scheduled %d times, completed %d times", id, k, scheduled[k],
                     completed[k]);
}

static void test_kill_9_mid_work_loses_and_doubles_nothing(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "crash", NULL);
    dt_error err = {0};
    for (int i = 0; i < CRASH_INSTANCES; i++) {
        char id[32], in[16], out[DT_INSTANCE_ID_MAX + 1];
        crash_instance_id(i, id, sizeof id);
        snprintf(in, sizeof in, "%d", i * 10);
        dt_start_options so = {.instance_id = id, .input = in};
        assert_ok(dt_client_start(f.client, "chain", &so, out, &err), &err);
    }

    pid_t pid = spawn_worker(f.db);
    int done = 0;
    for (int waited = 0; waited < 60000; waited += 5) {
        done = count_completed(f.client);
        if (done >= CRASH_INSTANCES / 5)
            break;
        test_sleep_ms(5);
    }
    kill(pid, SIGKILL);
    int wst;
    waitpid(pid, &wst, 0);
    assert_true(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL);
    int at_kill = count_completed(f.client);
    print_message("killed the worker with %d of %d instances completed\n", at_kill,
                  CRASH_INSTANCES);
    assert_true(at_kill < CRASH_INSTANCES);   /* it really died mid-work */

    pid = spawn_worker(f.db);
    waitpid(pid, &wst, 0);
    assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);

    for (int i = 0; i < CRASH_INSTANCES; i++) {
        char id[32], want[16];
        crash_instance_id(i, id, sizeof id);
        snprintf(want, sizeof want, "%d", i * 10 + CRASH_STEPS);
        dt_instance_state *s = NULL;
        assert_ok(dt_client_get(f.client, id, f.arena, &s, &err), &err);
        if (s->status != DT_STATUS_COMPLETED || strcmp(s->output ? s->output : "", want) != 0)
            fail_msg("%s: status %s output %s, want Completed %s", id,
                     dt_runtime_status_name(s->status), s->output ? s->output : "null", want);
        size_t n;
        dt_event *ev = hubfix_history(&f, id, &n);
        check_history_once(ev, n, id);
    }
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_9_mid_work_loses_and_doubles_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
