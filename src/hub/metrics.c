/* metrics.c — what the hub counts and times, rendered as Prometheus text: instances started
 * (sub-orchestrations too), completed, failed and terminated by orchestrator name; work item
 * latency (lease to commit) by kind; store commit time and batch size; lost leases,
 * redeliveries and poison items; queue depths, read from the store when rendered; the
 * history cache's size. Updates take one short mutex; nothing here touches the store except
 * dt_hub_metrics_text. */
#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

#define MAX_NAMES 1000              /* past this, names count under "(other)" */

/* latency buckets in seconds, shared by every histogram of times */
static const double time_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                      0.25, 0.5, 1, 2.5, 5, 10};
#define N_TIME_BUCKETS (sizeof time_buckets / sizeof time_buckets[0])
static const double size_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
#define N_SIZE_BUCKETS (sizeof size_buckets / sizeof size_buckets[0])

typedef struct histogram {
    uint64_t counts[16];            /* per bucket (not cumulative), then +Inf */
    double sum;
    uint64_t n;
} histogram;

typedef struct name_counts {
    char *name;
    uint64_t started, completed, failed, terminated;
} name_counts;

struct hub_metrics {
    pthread_mutex_t mu;             /* guards everything below */
    name_counts *names;
    size_t n_names, cap_names;
    name_counts other;
    histogram work[2];              /* 0 orchestration, 1 activity */
    histogram commit_seconds, commit_batch;
    uint64_t commits, lease_lost, redeliveries, poison;
    uint64_t waits_by_commit, waits_by_read;   /* asynchronous waits answered (waits.c) */
    uint64_t spec_applied, spec_refused;   /* speculative episodes (dispatch.c) */
    uint64_t no_space, io_errors;   /* commits refused by the store: disk full, I/O */
};

hub_metrics *metrics_new(void)
{
    hub_metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->other.name = "(other)";
    return m;
}

void metrics_free(hub_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_names; i++)
        free(m->names[i].name);
    free(m->names);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void observe(histogram *h, const double *buckets, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > buckets[i])
        i++;
    h->counts[i]++;
    h->sum += v;
    h->n++;
}

/* counts_for: the counters of NAME (mu held); created on first use, up to MAX_NAMES. */
static name_counts *counts_for(hub_metrics *m, const char *name)
{
    assert(core_mutex_held(&m->mu));
    if (name == NULL)
        name = "";
    for (size_t i = 0; i < m->n_names; i++)
        if (strcmp(m->names[i].name, name) == 0)
            return &m->names[i];
    if (m->n_names >= MAX_NAMES)
        return &m->other;
    name_counts *v = dt_grow(m->names, &m->cap_names, m->n_names + 1, sizeof *v);
    if (v == NULL)
        return &m->other;
    m->names = v;
    char *copy = strdup(name);
    if (copy == NULL)
        return &m->other;
    m->names[m->n_names] = (name_counts){.name = copy};
    return &m->names[m->n_names++];
}

void metrics_started(hub_metrics *m, const char *name)
{
    pthread_mutex_lock(&m->mu);
    counts_for(m, name)->started++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_finished(hub_metrics *m, const char *name, dt_runtime_status status)
{
    pthread_mutex_lock(&m->mu);
    name_counts *c = counts_for(m, name);
    if (status == DT_STATUS_COMPLETED)
        c->completed++;
    else if (status == DT_STATUS_FAILED)
        c->failed++;
    else if (status == DT_STATUS_TERMINATED)
        c->terminated++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_work_item(hub_metrics *m, bool activity, dt_time leased_at, dt_status result)
{
    double secs = (double)(dt_now() - leased_at) / 1e6;
    pthread_mutex_lock(&m->mu);
    observe(&m->work[activity], time_buckets, N_TIME_BUCKETS, secs < 0 ? 0 : secs);
    if (result == DT_ERR_LEASE_LOST)
        m->lease_lost++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_committed(hub_metrics *m, const dt_commit *c, int64_t lease_us)
{
    if (c->kind == DT_COMMIT_START)
        return;   /* counted by dt_hub_start */
    if (c->kind == DT_COMMIT_ENTITY) {
        for (size_t i = 0; c->result == DT_OK && i < c->u.entity.n_instances; i++)
            metrics_started(m, c->u.entity.instances[i].name);
        if (c->result == DT_ERR_LEASE_LOST)
            dt_log(DT_LOG_WARN, c->u.entity.item->entity_id,
                   "entity step not applied: its lease had expired");
        return;
    }
    if (c->kind == DT_COMMIT_ACTIVITY) {
        metrics_work_item(m, true, c->u.activity.item->locked_until - lease_us, c->result);
        if (c->result == DT_ERR_LEASE_LOST)
            dt_log(DT_LOG_WARN, c->u.activity.item->instance_id,
                   "result of activity '%s' (task %d) not applied: its lease had expired",
                   c->u.activity.item->name, c->u.activity.item->task_id);
        return;
    }
    const dt_episode *ep = &c->u.episode;
    if (ep->consumes) {
        /* speculative: the activity's result went in with the episode, or alone */
        const dt_activity_item *act = ep->consumes->item;
        if (spec_resent(c))
            return;   /* counted when the result goes alone */
        metrics_work_item(m, true, act->locked_until - lease_us, c->result);
        pthread_mutex_lock(&m->mu);
        if (c->result == DT_OK)
            *(ep->refused ? &m->spec_refused : &m->spec_applied) += 1;
        pthread_mutex_unlock(&m->mu);
        if (c->result == DT_ERR_LEASE_LOST)
            dt_log(DT_LOG_WARN, act->instance_id,
                   "result of activity '%s' (task %d) not applied: its lease had expired",
                   act->name, act->task_id);
        if (c->result != DT_OK || ep->refused)
            return;
    }
    metrics_work_item(m, false, ep->item->locked_until - lease_us, c->result);
    /* a sub-orchestration is an instance started like any other: counted by its name, so
     * started minus finished stays what is still running */
    for (size_t i = 0; c->result == DT_OK && i < ep->n_instances; i++)
        metrics_started(m, ep->instances[i].name);
    if (c->result == DT_ERR_LEASE_LOST)
        dt_log(DT_LOG_WARN, ep->item->instance_id,
               "episode not applied: its lease expired and another worker has the instance");
    if (c->result == DT_OK && dt_runtime_status_is_terminal(ep->status) &&
        !dt_runtime_status_is_terminal(ep->item->state.status)) {
        metrics_finished(m, ep->item->state.name, ep->status);
        dt_log(ep->status == DT_STATUS_COMPLETED ? DT_LOG_INFO : DT_LOG_WARN,
               ep->item->instance_id, "%s %s%s%s", ep->item->state.name ? ep->item->state.name : "",
               dt_runtime_status_name(ep->status), ep->failure ? ": " : "",
               ep->failure && ep->failure->message ? ep->failure->message : "");
    }
}

void metrics_store_trouble(hub_metrics *m, dt_status st)
{
    pthread_mutex_lock(&m->mu);
    if (st == DT_ERR_NO_SPACE)
        m->no_space++;
    else
        m->io_errors++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_redelivered(hub_metrics *m)
{
    pthread_mutex_lock(&m->mu);
    m->redeliveries++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_wait_answered(hub_metrics *m, bool by_commit)
{
    pthread_mutex_lock(&m->mu);
    if (by_commit)
        m->waits_by_commit++;
    else
        m->waits_by_read++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_poison(hub_metrics *m)
{
    pthread_mutex_lock(&m->mu);
    m->poison++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_commit(hub_metrics *m, size_t batch, dt_time took_us)
{
    pthread_mutex_lock(&m->mu);
    observe(&m->commit_seconds, time_buckets, N_TIME_BUCKETS, (double)took_us / 1e6);
    observe(&m->commit_batch, size_buckets, N_SIZE_BUCKETS, (double)batch);
    m->commits++;
    pthread_mutex_unlock(&m->mu);
}

/* ---- rendering ---------------------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len, cap;
    bool nomem;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = b->p ? vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        if (b->p && n < 0) {   /* an encoding error: no size would do */
            b->nomem = true;
            return;
        }
        char *p = dt_grow(b->p, &b->cap, b->p ? b->len + (size_t)n + 1 : 4096, 1);
        if (p == NULL) {
            b->nomem = true;
            return;
        }
        b->p = p;
    }
}

/* put_label: NAME as a Prometheus label value (backslash, quote and newline escaped). */
static void put_label(buf *b, const char *name)
{
    for (const char *s = name; *s; s++) {
        if (*s == '\\' || *s == '"')
            put(b, "\\%c", *s);
        else if (*s == '\n')
            put(b, "\\n");
        else
            put(b, "%c", *s);
    }
}

static void put_histogram(buf *b, const char *metric, const char *labels, const histogram *h,
                          const double *buckets, size_t nb)
{
    uint64_t cum = 0;
    for (size_t i = 0; i < nb; i++) {
        cum += h->counts[i];
        put(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", metric, labels, *labels ? "," : "", buckets[i],
            (unsigned long long)cum);
    }
    cum += h->counts[nb];
    put(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", metric, labels, *labels ? "," : "",
        (unsigned long long)cum);
    put(b, "%s_sum%s%s%s %g\n", metric, *labels ? "{" : "", labels, *labels ? "}" : "", h->sum);
    put(b, "%s_count%s%s%s %llu\n", metric, *labels ? "{" : "", labels, *labels ? "}" : "",
        (unsigned long long)h->n);
}

static void put_by_name(buf *b, const hub_metrics *m, const char *metric, const char *help,
                        size_t offset)
{
    put(b, "# HELP %s %s\n# TYPE %s counter\n", metric, help, metric);
    for (size_t i = 0; i <= m->n_names; i++) {
        const name_counts *c = i < m->n_names ? &m->names[i] : &m->other;
        uint64_t v = *(const uint64_t *)((const char *)c + offset);
        if (i == m->n_names && v == 0)
            continue;
        put(b, "%s{name=\"", metric);
        put_label(b, c->name);
        put(b, "\"} %llu\n", (unsigned long long)v);
    }
}

/* put_nodes: which node this is and which nodes are alive on its database (dt_hub_nodes);
 * nothing of the latter when the store cannot say (it is down: dtask_store_healthy says so). */
static void put_nodes(buf *b, dt_hub *hub)
{
    put(b, "# HELP dtask_node_info This node (its lease owner name).\n"
           "# TYPE dtask_node_info gauge\ndtask_node_info{node=\"");
    put_label(b, dt_hub_node(hub));
    put(b, "\"} 1\n");
    dt_arena *a = dt_arena_new();
    dt_node_info *nodes = NULL;
    size_t n = 0;
    if (a == NULL || dt_hub_nodes(hub, a, &nodes, &n, NULL) != DT_OK) {
        dt_arena_free(a);
        return;
    }
    put(b, "# HELP dtask_nodes_alive Nodes heard of on this database within the last %d s.\n"
           "# TYPE dtask_nodes_alive gauge\ndtask_nodes_alive %zu\n",
        DT_NODE_ALIVE_MS / 1000, n);
    put(b, "# HELP dtask_node_alive_since A node alive on this database, with its start time "
           "(seconds since the epoch).\n# TYPE dtask_node_alive_since gauge\n");
    for (size_t i = 0; i < n; i++) {
        put(b, "dtask_node_alive_since{node=\"");
        put_label(b, nodes[i].node);
        put(b, "\"} %.3f\n", (double)nodes[i].started_at / 1e6);
    }
    dt_arena_free(a);
}

dt_status dt_hub_metrics_text(dt_hub *hub, char **out)
{
    *out = NULL;
    size_t orch_depth = 0, act_depth = 0;
    dt_status qs = dt_store_queue_depths(hub->store, dt_now(), &orch_depth, &act_depth, NULL);
    buf b = {0};
    hub_metrics *m = hub->metrics;
    pthread_mutex_lock(&m->mu);
    put_by_name(&b, m, "dtask_instances_started_total",
                "Instances started (by clients, as sub-orchestrations, by entities), by "
                "orchestrator.",
                offsetof(name_counts, started));
    put_by_name(&b, m, "dtask_instances_completed_total",
                "Instances that completed, by orchestrator.", offsetof(name_counts, completed));
    put_by_name(&b, m, "dtask_instances_failed_total", "Instances that failed, by orchestrator.",
                offsetof(name_counts, failed));
    put_by_name(&b, m, "dtask_instances_terminated_total",
                "Instances that were terminated, by orchestrator.",
                offsetof(name_counts, terminated));
    put(&b, "# HELP dtask_work_item_seconds Time from lease to commit of a work item.\n"
            "# TYPE dtask_work_item_seconds histogram\n");
    put_histogram(&b, "dtask_work_item_seconds", "kind=\"orchestration\"", &m->work[0],
                  time_buckets, N_TIME_BUCKETS);
    put_histogram(&b, "dtask_work_item_seconds", "kind=\"activity\"", &m->work[1], time_buckets,
                  N_TIME_BUCKETS);
    put(&b, "# HELP dtask_store_commit_seconds Time of one store commit (group commit).\n"
            "# TYPE dtask_store_commit_seconds histogram\n");
    put_histogram(&b, "dtask_store_commit_seconds", "", &m->commit_seconds, time_buckets,
                  N_TIME_BUCKETS);
    put(&b, "# HELP dtask_store_commit_batch_size Work item results per store commit.\n"
            "# TYPE dtask_store_commit_batch_size histogram\n");
    put_histogram(&b, "dtask_store_commit_batch_size", "", &m->commit_batch, size_buckets,
                  N_SIZE_BUCKETS);
    put(&b, "# HELP dtask_lease_lost_total Results refused because their lease had expired and "
            "been taken.\n# TYPE dtask_lease_lost_total counter\ndtask_lease_lost_total %llu\n",
        (unsigned long long)m->lease_lost);
    put(&b, "# HELP dtask_redeliveries_total Activity work items delivered again after a lease "
            "expired.\n# TYPE dtask_redeliveries_total counter\ndtask_redeliveries_total %llu\n",
        (unsigned long long)m->redeliveries);
    put(&b, "# HELP dtask_waits_answered_total Waits that hold no thread (a gRPC client's "
            "WaitForInstance*) answered with a state: told by the commit that reached it, or "
            "found by a read.\n# TYPE dtask_waits_answered_total counter\n"
            "dtask_waits_answered_total{by=\"commit\"} %llu\n"
            "dtask_waits_answered_total{by=\"read\"} %llu\n",
        (unsigned long long)m->waits_by_commit, (unsigned long long)m->waits_by_read);
    put(&b, "# HELP dtask_speculative_episodes_total Episodes run on an activity result not yet "
            "committed and committed with it: applied, or refused because the instance had "
            "changed (the result then went to its inbox).\n"
            "# TYPE dtask_speculative_episodes_total counter\n"
            "dtask_speculative_episodes_total{outcome=\"applied\"} %llu\n"
            "dtask_speculative_episodes_total{outcome=\"refused\"} %llu\n",
        (unsigned long long)m->spec_applied, (unsigned long long)m->spec_refused);
    put(&b, "# HELP dtask_poison_items_total Orchestration work items given back without a result "
            "DT_POISON_DELIVERIES times in a row, parked by failing their instance.\n"
            "# TYPE dtask_poison_items_total counter\ndtask_poison_items_total %llu\n",
        (unsigned long long)m->poison);
    put(&b, "# HELP dtask_store_write_errors_total Store commits that failed, by reason.\n"
            "# TYPE dtask_store_write_errors_total counter\n"
            "dtask_store_write_errors_total{reason=\"no_space\"} %llu\n"
            "dtask_store_write_errors_total{reason=\"io\"} %llu\n",
        (unsigned long long)m->no_space, (unsigned long long)m->io_errors);
    pthread_mutex_unlock(&m->mu);
    put(&b, "# HELP dtask_store_healthy 1 while the store takes writes, 0 after a write failed "
            "until one succeeds.\n# TYPE dtask_store_healthy gauge\ndtask_store_healthy %d\n",
        dt_hub_health(hub, NULL) == DT_OK);
    if (qs == DT_OK)
        put(&b, "# HELP dtask_queue_depth Work items ready and not leased.\n"
                "# TYPE dtask_queue_depth gauge\n"
                "dtask_queue_depth{kind=\"orchestration\"} %zu\n"
                "dtask_queue_depth{kind=\"activity\"} %zu\n",
            orch_depth, act_depth);
    put(&b, "# HELP dtask_results_waiting Activity results the store had no room for, kept "
            "and tried again until it has.\n# TYPE dtask_results_waiting gauge\n"
            "dtask_results_waiting %zu\n",
        commit_parked(hub));
    size_t cached, cached_events;
    cache_size(hub, &cached, &cached_events);
    put(&b, "# HELP dtask_history_cache_instances Executions whose history the hub keeps decoded "
            "between episodes (running ones: an ended execution's goes).\n"
            "# TYPE dtask_history_cache_instances gauge\ndtask_history_cache_instances %zu\n"
            "# HELP dtask_history_cache_events History events the hub keeps decoded.\n"
            "# TYPE dtask_history_cache_events gauge\ndtask_history_cache_events %zu\n",
        cached, cached_events);
    put_nodes(&b, hub);
    if (b.nomem) {
        free(b.p);
        return DT_ERR_NOMEM;
    }
    *out = b.p;
    return DT_OK;
}
