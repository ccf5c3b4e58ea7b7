/*
 * metrics.c - per-store counters and latency histograms kept in this
 * process, and their Prometheus text exposition (at_metrics_prometheus).
 *
 * Counters are per queue.  The queue of an ack, fail or release is not in
 * the call (only an id and a token), so at_poll remembers each claim (id ->
 * queue, claim time) in a bounded table that the finishing call consumes;
 * the same entry gives the run-time histogram for every job finished
 * through this handle, worker or not.  A claim whose lease is lost stays in
 * the table until the job is claimed again here or the table is full, in
 * which case new claims are still counted but not timed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define NBUCKETS 12
static const double k_bounds[NBUCKETS - 1] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300};
#define CLAIMS_MAX 65536

enum { C_ENQUEUED, C_STARTED, C_SUCCEEDED, C_FAILED, C_RETRIED, C_DEAD, C_RELEASED, C_CANCELLED, C_COUNT };
static const char *const k_counter_names[C_COUNT] = {"enqueued", "started", "succeeded", "failed",
                                                     "retried",  "dead",    "released",  "cancelled"};

struct hist {
    uint64_t bucket[NBUCKETS];
    double sum;
    uint64_t count;
};

struct mqueue {
    struct mqueue *next;
    uint64_t c[C_COUNT];
    struct hist wait, run;
    char name[];
};

struct claim {
    struct claim *next;
    struct mqueue *q;
    int64_t started_ms;
    char id[AT_ID_SIZE];
};

struct at__metrics {
    pthread_mutex_t mu;
    struct mqueue *queues;
    struct claim *claims[1024];
    size_t nclaims;
};

int at__metrics_new(struct at__metrics **out)
{
    *out = at__calloc(1, sizeof **out);
    if (!*out)
        return AT_ERR_NOMEM;
    pthread_mutex_init(&(*out)->mu, NULL);
    return 0;
}

void at__metrics_free(struct at__metrics *m)
{
    if (!m)
        return;
    for (struct mqueue *q = m->queues, *n; q; q = n) {
        n = q->next;
        at__free(q);
    }
    for (size_t i = 0; i < 1024; i++)
        for (struct claim *c = m->claims[i], *n; c; c = n) {
            n = c->next;
            at__free(c);
        }
    pthread_mutex_destroy(&m->mu);
    at__free(m);
}

/* Caller holds mu.  NULL when out of memory (the event is not counted). */
static struct mqueue *queue(struct at__metrics *m, const char *name)
{
    struct mqueue **pp = &m->queues;
    for (; *pp; pp = &(*pp)->next) {
        int c = strcmp((*pp)->name, name);
        if (c == 0)
            return *pp;
        if (c > 0)
            break;
    }
    size_t n = strlen(name);
    struct mqueue *q = at__calloc(1, sizeof *q + n + 1);
    if (!q)
        return NULL;
    memcpy(q->name, name, n + 1);
    q->next = *pp; /* kept sorted: the exposition lists queues in order */
    *pp = q;
    return q;
}

static void observe(struct hist *h, double seconds)
{
    if (seconds < 0)
        seconds = 0;
    size_t b = 0;
    while (b < NBUCKETS - 1 && seconds > k_bounds[b])
        b++;
    h->bucket[b]++;
    h->sum += seconds;
    h->count++;
}

static size_t slot(const char *id)
{
    uint64_t h = 1469598103934665603u;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211u;
    return (size_t)(h & 1023);
}

void at__metrics_enqueued(struct at__metrics *m, const char *queue_name, uint64_t n)
{
    pthread_mutex_lock(&m->mu);
    struct mqueue *q = queue(m, queue_name);
    if (q)
        q->c[C_ENQUEUED] += n;
    pthread_mutex_unlock(&m->mu);
}

void at__metrics_claimed(struct at__metrics *m, at_job *const *jobs, size_t n)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        const at_job *j = jobs[i];
        struct mqueue *q = queue(m, at_job_queue(j));
        if (!q)
            continue;
        q->c[C_STARTED]++;
        int64_t started = at_job_time(j, AT_JOB_TIME_STARTED), run_at = at_job_time(j, AT_JOB_TIME_RUN_AT);
        if (started != AT_TIME_NONE && run_at != AT_TIME_NONE)
            /* In doubles: times read from a store need not be sane, and an
             * int64_t difference of two of them can overflow. */
            observe(&q->wait, ((double)started - (double)run_at) / 1000.0);
        struct claim **pp = &m->claims[slot(at_job_id(j))], *c;
        for (c = *pp; c && strcmp(c->id, at_job_id(j)) != 0; c = c->next)
            ;
        if (!c && m->nclaims < CLAIMS_MAX && (c = at__malloc(sizeof *c)) != NULL) {
            snprintf(c->id, sizeof c->id, "%s", at_job_id(j));
            c->next = *pp;
            *pp = c;
            m->nclaims++;
        }
        if (c) {
            c->q = q;
            c->started_ms = started;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

/* A claim finished through this handle with `outcome` (C_*); now_ms is the
 * store's time.  Unknown claims (made elsewhere) are not counted: their
 * queue is unknown here. */
static void finished(struct at__metrics *m, const char *id, int outcome, int64_t now_ms, bool timed)
{
    pthread_mutex_lock(&m->mu);
    struct claim **pp = &m->claims[slot(id)];
    while (*pp && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->next;
    struct claim *c = *pp;
    if (c) {
        c->q->c[outcome]++;
        if (timed && c->started_ms != AT_TIME_NONE)
            observe(&c->q->run, ((double)now_ms - (double)c->started_ms) / 1000.0);
        *pp = c->next;
        m->nclaims--;
        at__free(c);
    }
    pthread_mutex_unlock(&m->mu);
}

void at__metrics_acked(struct at__metrics *m, const char *id, int64_t now_ms)
{
    finished(m, id, C_SUCCEEDED, now_ms, true);
}

void at__metrics_failed(struct at__metrics *m, const char *id, int32_t state, int64_t now_ms)
{
    /* failed counts every failed run; retried or dead says what followed. */
    pthread_mutex_lock(&m->mu);
    struct claim *c = m->claims[slot(id)];
    while (c && strcmp(c->id, id) != 0)
        c = c->next;
    if (c)
        c->q->c[C_FAILED]++;
    pthread_mutex_unlock(&m->mu);
    finished(m, id, state == AT_STATE_DEAD ? C_DEAD : C_RETRIED, now_ms, true);
}

void at__metrics_released(struct at__metrics *m, const char *id)
{
    finished(m, id, C_RELEASED, 0, false);
}

void at__metrics_cancelled(struct at__metrics *m, const char *id)
{
    finished(m, id, C_CANCELLED, 0, false);
}

/* ------------------------------------------------------------ exposition */

struct out {
    char *buf;
    size_t len, n;
};

static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->n < o->len ? o->len - o->n : 0;
    int w = vsnprintf(room ? o->buf + o->n : NULL, room, fmt, ap);
    va_end(ap);
    if (w > 0)
        o->n += (size_t)w;
}

static void emit_hist(struct out *o, const char *name, const char *queue_name, const struct hist *h)
{
    uint64_t cum = 0;
    for (size_t b = 0; b < NBUCKETS; b++) {
        cum += h->bucket[b];
        if (b < NBUCKETS - 1)
            emit(o, "%s_bucket{queue=\"%s\",le=\"%g\"} %" PRIu64 "\n", name, queue_name, k_bounds[b], cum);
        else
            emit(o, "%s_bucket{queue=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", name, queue_name, cum);
    }
    emit(o, "%s_sum{queue=\"%s\"} %.6f\n", name, queue_name, h->sum);
    emit(o, "%s_count{queue=\"%s\"} %" PRIu64 "\n", name, queue_name, h->count);
}

AT_EXTERN int64_t at_metrics_prometheus(char *buf, size_t len, at_store *s)
{
    int rc = at__store_enter(s);
    if (rc)
        return rc;
    if (!buf && len)
        return at__err_set(s, AT_ERR_INVAL, 0, "buf is NULL but len is %zu", len);
    at_stats *st = NULL;
    if ((rc = at_stats_get(&st, s)) != 0)
        return rc;
    struct out o = {.buf = buf, .len = len};
    /* Queue names are restricted to [A-Za-z0-9._:-] (at_enqueue(3)), so
     * they are valid label values without escaping. */
    emit(&o, "# HELP asynctask_jobs Jobs in the store per queue and state, now.\n"
             "# TYPE asynctask_jobs gauge\n");
    for (size_t i = 0; i < at_stats_queue_count(st); i++)
        for (int32_t state = 1; state < AT_STATE_COUNT__; state++)
            emit(&o, "asynctask_jobs{queue=\"%s\",state=\"%s\"} %" PRIu64 "\n", at_stats_queue_name(st, i),
                 at_state_name(state), at_stats_count(st, i, state));
    at_stats_free(st);
    struct at__metrics *m = s->metrics;
    pthread_mutex_lock(&m->mu);
    for (int c = 0; c < C_COUNT; c++) {
        emit(&o,
             "# HELP asynctask_jobs_%s_total Jobs %s through this store handle since it was opened.\n"
             "# TYPE asynctask_jobs_%s_total counter\n",
             k_counter_names[c], k_counter_names[c], k_counter_names[c]);
        for (struct mqueue *q = m->queues; q; q = q->next)
            emit(&o, "asynctask_jobs_%s_total{queue=\"%s\"} %" PRIu64 "\n", k_counter_names[c], q->name, q->c[c]);
    }
    emit(&o, "# HELP asynctask_job_wait_seconds Time from a job's run_at to its claim through this handle.\n"
             "# TYPE asynctask_job_wait_seconds histogram\n");
    for (struct mqueue *q = m->queues; q; q = q->next)
        emit_hist(&o, "asynctask_job_wait_seconds", q->name, &q->wait);
    emit(&o, "# HELP asynctask_job_run_seconds Time from a claim to its ack or fail through this handle.\n"
             "# TYPE asynctask_job_run_seconds histogram\n");
    for (struct mqueue *q = m->queues; q; q = q->next)
        emit_hist(&o, "asynctask_job_run_seconds", q->name, &q->run);
    pthread_mutex_unlock(&m->mu);
    if (o.len)
        o.buf[o.n < o.len ? o.n : o.len - 1] = '\0';
    return (int64_t)o.n;
}
