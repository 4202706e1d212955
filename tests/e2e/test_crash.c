/* test_crash.c — durability against kill -9. A worker process runs a batch of orchestrations
 * on a SQLite file and is killed with SIGKILL mid-work: after the test has seen instances
 * completed in the store, and before all of them are. A second worker process finishes the
 * batch. Every instance must complete with the right output, and no history may hold a step
 * twice: one ExecutionStarted, one ExecutionCompleted, each sequence number scheduled once and
 * answered once. One batch chains activities; the other mixes sub-orchestrations, durable
 * timers, external events and retries. And nothing is told before its fsync: with the
 * store's fsync held, clients that read what was committed wait until it is durable. */
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crash_common.h"
#include "hubfix.h"

extern char **environ;

static pid_t spawn_worker(const char *db, const char *prefix, int count)
{
    char path[1024], n[16];
    snprintf(path, sizeof path, "%s/helper_crash_worker", DT_TEST_BINARY_DIR);
    snprintf(n, sizeof n, "%d", count);
    char *argv[] = {path, (char *)db, (char *)prefix, n, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, path, NULL, NULL, argv, environ);
    if (rc != 0)
        fail_msg("cannot start %s: %s", path, strerror(rc));
    return pid;
}

/* count_completed: how many of the COUNT instances under PREFIX have completed, counting no
 * further than STOP_AT (a scan under AddressSanitizer is slow, and a worker that runs while it
 * scans may finish everything before the kill). */
static int count_completed(dt_client *c, const char *prefix, int count, int stop_at)
{
    dt_arena *a = dt_arena_new();
    int n = 0;
    for (int i = 0; i < count && n < stop_at; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%03d", prefix, i);
        dt_instance_state *s = NULL;
        if (dt_client_get(c, id, a, &s, NULL) == DT_OK && s->status == DT_STATUS_COMPLETED)
            n++;
    }
    dt_arena_free(a);
    return n;
}

static bool is_scheduling(dt_event_type t)
{
    return t == DT_EVENT_TASK_SCHEDULED || t == DT_EVENT_TIMER_CREATED ||
           t == DT_EVENT_SUB_ORCHESTRATION_CREATED;
}

static bool is_completion(dt_event_type t)
{
    return t == DT_EVENT_TASK_COMPLETED || t == DT_EVENT_TASK_FAILED ||
           t == DT_EVENT_TIMER_FIRED || t == DT_EVENT_SUB_ORCHESTRATION_COMPLETED ||
           t == DT_EVENT_SUB_ORCHESTRATION_FAILED;
}

/* check_history_once: one ExecutionStarted and one ExecutionCompleted; STEPS steps, each
 * scheduled exactly once and answered exactly once; EVENTS external events. */
static void check_history_once(const dt_event *ev, size_t n, const char *id, int steps,
                               int events)
{
    int scheduled[16] = {0}, completed[16] = {0};
    int started = 0, finished = 0, raised = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type == DT_EVENT_EXECUTION_STARTED)
            started++;
        else if (ev[i].type == DT_EVENT_EXECUTION_COMPLETED)
            finished++;
        else if (ev[i].type == DT_EVENT_EVENT_RAISED)
            raised++;
        else if (is_scheduling(ev[i].type)) {
            assert_in_range(ev[i].event_id, 0, steps - 1);
            scheduled[ev[i].event_id]++;
        } else if (is_completion(ev[i].type)) {
            assert_in_range(ev[i].task_id, 0, steps - 1);
            completed[ev[i].task_id]++;
        }
    }
    if (started != 1 || finished != 1 || raised != events)
        fail_msg("%s: %d ExecutionStarted, %d ExecutionCompleted, %d EventRaised", id, started,
                 finished, raised);
    for (int k = 0; k < steps; k++)
        if (scheduled[k] != 1 || completed[k] != 1)
            fail_msg("%s: step %d scheduled %d times, answered %d times", id, k, scheduled[k],
                     completed[k]);
}

/* How long the first worker may take to complete its first instances: far more than a healthy
 * run needs, even under the sanitizers on a busy 2-core machine. */
#define CRASH_FIRST_DONE_MS 60000

/* kill_mid_work: run a worker until DONE_AT of COUNT instances under PREFIX completed, kill
 * it with SIGKILL, then run a second worker to the end. The kill must land mid-work: after
 * at least one instance was seen completed in the store (else a kill that came before any
 * commit would pass, and nothing the worker committed would be put to the test) and before
 * all of them were. */
static void kill_mid_work(hubfix *f, const char *prefix, int count, int done_at)
{
    assert_in_range(done_at, 1, count - 1);
    pid_t pid = spawn_worker(f->db, prefix, count);
    dt_time deadline = dt_now() + (dt_time)CRASH_FIRST_DONE_MS * 1000;
    int before_kill;
    while ((before_kill = count_completed(f->client, prefix, count, done_at)) < done_at &&
           dt_now() < deadline)
        test_sleep_ms(1);
    kill(pid, SIGKILL);
    int wst;
    waitpid(pid, &wst, 0);
    assert_true(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL);
    int at_kill = count_completed(f->client, prefix, count, count);
    print_message("killed the worker with %d of %d instances completed (%d seen before the "
                  "kill)\n", at_kill, count, before_kill);
    if (before_kill < 1)
        fail_msg("no instance of %d completed within %d ms: the kill came before any work",
                 count, CRASH_FIRST_DONE_MS);
    assert_true(at_kill < count);   /* it really died mid-work */

    pid = spawn_worker(f->db, prefix, count);
    waitpid(pid, &wst, 0);
    assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
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

    kill_mid_work(&f, "crash", CRASH_INSTANCES, CRASH_INSTANCES / 10);

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
        check_history_once(ev, n, id, CRASH_STEPS, 0);
    }
    hubfix_close(&f);
}

static void test_kill_9_with_timers_events_retries_and_children(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "crashmixed", NULL);
    dt_error err = {0};
    for (int i = 0; i < MIXED_INSTANCES; i++) {
        char id[32], in[16], out[DT_INSTANCE_ID_MAX + 1];
        mixed_instance_id(i, id, sizeof id);
        snprintf(in, sizeof in, "%d", i * 10);
        dt_start_options so = {.instance_id = id, .input = in};
        assert_ok(dt_client_start(f.client, "mixed", &so, out, &err), &err);
        assert_ok(dt_client_raise_event(f.client, id, "go", "\"go\"", &err), &err);
    }
    kill_mid_work(&f, "mixed", MIXED_INSTANCES, MIXED_INSTANCES / 10);
    for (int i = 0; i < MIXED_INSTANCES; i++) {
        char id[32], want[32], kid[48];
        mixed_instance_id(i, id, sizeof id);
        /* the child adds one, the retried activity adds one more */
        snprintf(want, sizeof want, "[%d,\"go\"]", i * 10 + 2);
        dt_instance_state *s = NULL;
        assert_ok(dt_client_get(f.client, id, f.arena, &s, &err), &err);
        if (s->status != DT_STATUS_COMPLETED || strcmp(s->output ? s->output : "", want) != 0)
            fail_msg("%s: status %s output %s, want Completed %s", id,
                     dt_runtime_status_name(s->status), s->output ? s->output : "null", want);
        size_t n;
        dt_event *ev = hubfix_history(&f, id, &n);
        check_history_once(ev, n, id, 5, 1);
        snprintf(kid, sizeof kid, "%s:0000", s->execution_id);   /* the derived child id */
        ev = hubfix_history(&f, kid, &n);
        check_history_once(ev, n, kid, 1, 0);
    }
    hubfix_close(&f);
}

/* ---- nothing told before its fsync ------------------------------------------------------- */

/* A gate on the store's fsync: while it is closed, a sync waits. The SQLite store's own
 * operations, but for sync. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_closed;
static atomic_int syncs_held;     /* syncs that came to the gate closed */
static dt_store_ops gated_ops;
static const dt_store_ops *real_ops;

static dt_status gated_sync(dt_store *s, uint64_t ticket, dt_error *err)
{
    pthread_mutex_lock(&gate_mu);
    if (gate_closed)
        atomic_fetch_add(&syncs_held, 1);
    while (gate_closed)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    return real_ops->sync(s, ticket, err);
}

static void gate_set(bool closed)
{
    pthread_mutex_lock(&gate_mu);
    gate_closed = closed;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

#define READERS 8
typedef struct reader {
    hubfix *f;
    pthread_t thread;
    atomic_bool answered;         /* it read the instance */
    dt_runtime_status status;
    dt_arena *arena;
} reader;

/* read_until_found: read "gated" until it is there (before its start is committed it is not,
 * and that read waits for nothing). */
static void *read_until_found(void *arg)
{
    reader *r = arg;
    for (;;) {
        dt_instance_state *s = NULL;
        dt_error err = {0};
        if (dt_client_get(r->f->client, "gated", r->arena, &s, &err) == DT_OK) {
            r->status = s->status;
            atomic_store(&r->answered, true);
            return NULL;
        }
        test_sleep_ms(1);
    }
}

typedef struct starter {
    hubfix *f;
    pthread_t thread;
    dt_status st;                 /* the start's outcome, once returned */
    atomic_bool returned;
} starter;

static void *start_gated(void *arg)
{
    starter *t = arg;
    dt_error err = {0};
    char out[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "gated"};
    t->st = dt_client_start(t->f->client, "nothing", &so, out, &err);
    atomic_store(&t->returned, true);
    return NULL;
}

/* status_in_store: ID's status read straight from STORE (no hub: no wait), -1 if none. */
static int status_in_store(dt_store *store, const char *id)
{
    dt_arena *a = dt_arena_new();
    dt_instance_state *s = NULL;
    int status = dt_store_get_instance(store, id, a, &s, NULL) == DT_OK ? (int)s->status : -1;
    dt_arena_free(a);
    return status;
}

/* gated_hub: F on a SQLite store of its own (NAME) whose fsyncs wait at the gate; the store. */
static dt_store *gated_hub(hubfix *f, const char *name)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/gated.db", test_tmpdir(name));
    dt_store *store = NULL;
    dt_error err = {0};
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &store, &err), &err);
    real_ops = store->ops;
    gated_ops = *real_ops;
    gated_ops.sync = gated_sync;
    store->ops = &gated_ops;
    dt_hub_options o = {.store = store};
    hubfix_open(f, name, &o);
    return store;
}

/* A start committed but not yet fsynced is in the store for anyone to read, but no client
 * hears of it: READERS clients reading it all wait (each on its own, since they wait for the
 * same publish) until the fsync is let through, and so does the start itself. */
static void test_no_client_hears_of_a_commit_before_its_fsync(void **state)
{
    (void)state;
    hubfix f;
    dt_store *store = gated_hub(&f, "gatedsync");   /* no worker: the instance stays Pending */

    gate_set(true);
    starter t = {.f = &f, .st = DT_ERR_INTERNAL, .returned = false};
    assert_int_equal(pthread_create(&t.thread, NULL, start_gated, &t), 0);
    reader r[READERS];
    for (int i = 0; i < READERS; i++) {
        r[i] = (reader){.f = &f, .arena = dt_arena_new()};
        assert_int_equal(pthread_create(&r[i].thread, NULL, read_until_found, &r[i]), 0);
    }
    /* the start is in the store (committed, its fsync held): from now on every read sees it */
    bool there = false;
    for (int i = 0; i < 20000 && !(there = status_in_store(store, "gated") >= 0); i++)
        test_sleep_ms(1);
    test_sleep_ms(300);   /* time for each reader to read it and, if it may, to say so */
    int told = 0;
    for (int i = 0; i < READERS; i++)
        told += atomic_load(&r[i].answered);
    bool start_returned = atomic_load(&t.returned);
    gate_set(false);   /* before any assertion: nothing is left waiting on the gate */
    assert_int_equal(pthread_join(t.thread, NULL), 0);
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_join(r[i].thread, NULL), 0);
    assert_true(there);
    if (told > 0 || start_returned)
        fail_msg("told before the fsync: %d of %d readers, the start %s", told, READERS,
                 start_returned ? "too" : "not");
    assert_ok(t.st, NULL);
    for (int i = 0; i < READERS; i++) {
        assert_true(atomic_load(&r[i].answered));
        assert_int_equal(r[i].status, DT_STATUS_PENDING);
        dt_arena_free(r[i].arena);
    }
    hubfix_close(&f);
}

static dt_status wait_go(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_wait_for_event(ctx, "go"));
    return DT_OK;
}

typedef struct watcher {
    hubfix *f;
    const char *id;
    dt_runtime_status want;
    pthread_t thread;
    atomic_bool answered;         /* a read of ID said WANT */
} watcher;

/* watch: read ID until a read says it is WANT. */
static void *watch(void *arg)
{
    watcher *w = arg;
    dt_arena *a = dt_arena_new();
    for (;;) {
        dt_instance_state *s = NULL;
        if (dt_client_get(w->f->client, w->id, a, &s, NULL) == DT_OK && s->status == w->want)
            break;
        test_sleep_ms(1);
    }
    atomic_store(&w->answered, true);
    dt_arena_free(a);
    return NULL;
}

/* A read waits for the fsync of a commit not yet durable only if that commit may have changed
 * what it reads: with the fsync of the episode that completed "busy" held, a read of "busy"
 * waits for it, and a read of "idle" (untouched since its own fsync) is answered at once. */
static void test_a_read_waits_only_for_the_fsyncs_of_what_it_reads(void **state)
{
    (void)state;
    hubfix f;
    dt_store *store = gated_hub(&f, "gatedread");
    dt_error err = {0};
    assert_ok(dt_worker_add_orchestrator(f.worker, "busy", wait_go, NULL), NULL);
    hubfix_start(&f);
    char out[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "idle"};
    assert_ok(dt_client_start(f.client, "nobody-runs-this", &so, out, &err), &err);
    so.instance_id = "busy";
    assert_ok(dt_client_start(f.client, "busy", &so, out, &err), &err);
    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_start(f.client, "busy", 60000, f.arena, &s, &err), &err);

    gate_set(true);
    assert_ok(dt_client_raise_event(f.client, "busy", "go", "1", &err), &err);
    watcher busy = {.f = &f, .id = "busy", .want = DT_STATUS_COMPLETED};
    assert_int_equal(pthread_create(&busy.thread, NULL, watch, &busy), 0);
    bool completed = false;
    for (int i = 0; i < 20000 && !completed; i++) {
        completed = status_in_store(store, "busy") == DT_STATUS_COMPLETED;
        if (!completed)
            test_sleep_ms(1);
    }
    /* the episode is committed, its fsync held: a reader of another instance is not held */
    watcher idle = {.f = &f, .id = "idle", .want = DT_STATUS_PENDING};
    assert_int_equal(pthread_create(&idle.thread, NULL, watch, &idle), 0);
    for (int i = 0; i < 5000 && !atomic_load(&idle.answered); i++)
        test_sleep_ms(1);
    test_sleep_ms(200);   /* time for the reader of "busy" to say so, if it may */
    bool idle_told = atomic_load(&idle.answered), busy_told = atomic_load(&busy.answered);
    gate_set(false);   /* before any assertion: nothing is left waiting on the gate */
    assert_int_equal(pthread_join(busy.thread, NULL), 0);
    assert_int_equal(pthread_join(idle.thread, NULL), 0);
    assert_true(completed);
    if (busy_told)
        fail_msg("the completion of 'busy' was told before its fsync");
    if (!idle_told)
        fail_msg("the read of 'idle' waited for the fsync of a commit about 'busy'");
    assert_true(atomic_load(&busy.answered));
    hubfix_close(&f);
}

/* fails_once_code: fails its first run, completes when run again (rewound) */
static atomic_int code_runs;
static dt_status fails_once_code(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    if (atomic_fetch_add(&code_runs, 1) == 0)
        return dt_fail(ctx, "Transient", "the first run fails");
    *output = dt_printf(ctx, "\"rewound\"");
    return DT_OK;
}

typedef struct completion_wait {
    hubfix *f;
    const char *id;
    pthread_t thread;
    dt_status st;
    dt_runtime_status status;
    dt_arena *arena;
} completion_wait;

static void *wait_completion(void *arg)
{
    completion_wait *w = arg;
    dt_instance_state *s = NULL;
    w->st = dt_client_wait_completion(w->f->client, w->id, 60000, w->arena, &s, NULL);
    if (w->st == DT_OK)
        w->status = s->status;
    return NULL;
}

/* A wait is told only rows newer than what it read itself. A Failed instance drops a late
 * message (an episode that leaves its row as it was) and that commit's fsync is held; the
 * instance is rewound meanwhile (Running again, as dt_hub_rewind makes it once the drop let
 * go of its lease), and a wait for its completion begins. When the fsync comes, the dropped
 * message's row (Failed, older than the wait's read) does not answer the wait: the rewound
 * run's completion does. (Once seen on PostgreSQL as a rewind that "still" failed.) */
static void test_a_wait_is_not_told_a_row_older_than_its_own_read(void **state)
{
    (void)state;
    hubfix f;
    dt_store *store = gated_hub(&f, "gatedstale");
    dt_error err = {0};
    assert_ok(dt_worker_add_orchestrator(f.worker, "fails_once", fails_once_code, NULL), NULL);
    hubfix_start(&f);
    atomic_store(&code_runs, 0);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "fails_once", NULL, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);

    gate_set(true);
    atomic_store(&syncs_held, 0);
    /* a late message, straight into the store (a client may not raise one: it has finished) */
    dt_message late = {.instance_id = id};
    dt_event_init(&late.event, DT_EVENT_EVENT_RAISED, dt_now());
    late.event.name = "late";
    assert_ok(dt_store_send_message(store, &late, &err), &err);
    for (int i = 0; i < 20000 && atomic_load(&syncs_held) == 0; i++)
        test_sleep_ms(1);
    bool dropped = atomic_load(&syncs_held) > 0;   /* committed; its fsync at the gate */
    dt_message rewind = {.instance_id = id, .reopen = true};
    dt_event_init(&rewind.event, DT_EVENT_EXECUTION_REWOUND, dt_now());
    dt_status reopened = dropped ? dt_store_send_message(store, &rewind, &err) : DT_ERR_TIMEOUT;
    completion_wait w = {.f = &f, .id = id, .st = DT_ERR_INTERNAL, .arena = dt_arena_new()};
    if (reopened == DT_OK)
        assert_int_equal(pthread_create(&w.thread, NULL, wait_completion, &w), 0);
    test_sleep_ms(300);   /* time for the wait to be listed and to read the row (Running) */
    gate_set(false);   /* before any assertion: nothing is left waiting on the gate */
    if (reopened == DT_OK)
        assert_int_equal(pthread_join(w.thread, NULL), 0);
    assert_true(dropped);
    assert_ok(reopened, &err);
    assert_ok(w.st, NULL);
    if (w.status != DT_STATUS_COMPLETED)
        fail_msg("the wait was told %s, the row the dropped message left before the rewind",
                 dt_runtime_status_name(w.status));
    assert_int_equal(atomic_load(&code_runs), 2);
    dt_arena_free(w.arena);
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_9_mid_work_loses_and_doubles_nothing),
        cmocka_unit_test(test_kill_9_with_timers_events_retries_and_children),
        cmocka_unit_test(test_no_client_hears_of_a_commit_before_its_fsync),
        cmocka_unit_test(test_a_read_waits_only_for_the_fsyncs_of_what_it_reads),
        cmocka_unit_test(test_a_wait_is_not_told_a_row_older_than_its_own_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
