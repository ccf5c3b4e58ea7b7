/*
 * worker.c - the worker runtime: handler threads over a set of queues
 * (ADR/0015).
 *
 * Threads:
 *  - N handler threads, each: pick the eligible queues (per-queue
 *    concurrency), claim one job with at_poll, take a token of the queue's
 *    shared rate limit (or give the job back until one is there), run the
 *    handler, ack/fail/release by its answer;
 *  - one keeper thread that renews the leases of running jobs every third of
 *    their lease, tells handlers of a cancellation, fails jobs that pass their
 *    timeout, and carries out a stop: it wakes the pollers, gives handlers the
 *    grace period, then releases the leases of the jobs still running so they
 *    run again at once elsewhere;
 *  - in event-loop mode (at_worker_fd) no handler threads: a claimer thread
 *    claims one job at a time into a slot and makes the fd readable, and
 *    at_worker_run_ready runs jobs in the host's thread.
 * at_worker_stop only stores a flag and writes a byte to a pipe, which is
 * what a signal handler may do; the keeper reads the pipe and does the rest.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define WORKER_MAGIC 0x6177726bu /* "awrk" */
#define MAX_THREADS 1024
#define MAX_QUEUES AT__MAX_QUEUES_PER_POLL
/* A safety net only: pollers are woken by the store on every change that
 * matters (a job, a freed concurrency slot, a stop). */
#define POLL_TIMEOUT_MS 1000

struct wqueue {
    char name[AT_NAME_MAX + 1];
    int32_t weight, concurrency;
    atomic_int running;
    uint32_t rate_limit;
    int64_t rate_period;
};

struct whandler {
    char type[AT_NAME_MAX + 1];
    at_handler_fn fn;
    void *ud;
};

struct at_ctx {
    at_worker *w;
    at_job *job;
    struct wqueue *q;
    void *result;
    size_t result_len;
    char *error;
    atomic_int cancelled;
    atomic_int done_elsewhere; /* the keeper failed (timeout) or released it: results are dropped */
    int64_t deadline;          /* wall ms or AT_TIME_NONE */
    int64_t next_touch;        /* mono ms */
    int last_rc;               /* of the last finishing store call */
    struct at_ctx *next;       /* running list */
};

struct at_worker {
    uint32_t magic;
    at_store *st;
    struct whandler *h;
    size_t nh;
    struct wqueue q[MAX_QUEUES];
    size_t nq;
    int64_t threads, timeout_ms, grace_ms, weighted;
    at_event_fn on_event;
    void *event_ud;

    pthread_mutex_t mu; /* running list, counts below, slot */
    pthread_cond_t cv;  /* keeper sleeps here; waiters of at_worker_wait too */
    struct at_ctx *running;
    size_t nthreads_live;
    bool started, event_mode, keeper_done;
    pthread_t *th;
    pthread_t keeper, claimer;
    bool have_claimer;
    int stop_pipe[2];
    int ready_pipe[2];
    at_job *slot; /* event mode: one claimed job waiting for run_ready */
    int64_t slot_touch; /* mono ms: when the keeper renews the slot job's lease */
    atomic_int stopping;
    _Atomic uint64_t started_n, succeeded_n, failed_n, released_n;
};

static void wait_until(at_worker *w, int64_t mono_deadline);

static bool valid(const at_worker *w)
{
    return w && w->magic == WORKER_MAGIC;
}

static int64_t mono_ms(void)
{
    return at__real_mono_ns() / 1000000;
}

static void emit(at_worker *w, int32_t ev, const at_job *job, const char *detail)
{
    static const char *const names[] = {"", "started", "succeeded", "retried", "dead", "cancelled", "released",
                                        "progress", "timeout", "enqueued", "failed"};
    int32_t level = ev == AT_EVENT_DEAD || ev == AT_EVENT_TIMEOUT ? AT_LOG_WARN
                    : ev == AT_EVENT_FAILED || ev == AT_EVENT_RETRIED || ev == AT_EVENT_RELEASED ||
                            ev == AT_EVENT_CANCELLED
                        ? AT_LOG_INFO
                        : AT_LOG_DEBUG;
    if (at__log_enabled(level) && ev > 0 && ev <= AT_EVENT_FAILED)
        at__log(level, "worker", job, 0, "job %s%s%s", names[ev], detail ? ": " : "", detail ? detail : "");
    if (w->on_event)
        w->on_event(w->event_ud, ev, job, detail);
    if (w->st->ev_fn)
        w->st->ev_fn(w->st->ev_ud, ev, job, detail);
}

/* ------------------------------------------------------------- config */

AT_EXTERN int at_worker_new(at_worker **out, at_store *st)
{
    if (out)
        *out = NULL;
    int rc = at__store_enter_job(st);
    if (rc)
        return rc;
    if (!out)
        return at__err_set(st, AT_ERR_INVAL, 0, "out is NULL");
    at_worker *w = at__calloc(1, sizeof *w);
    if (!w)
        return at__err_set(st, AT_ERR_NOMEM, 0, "out of memory");
    w->magic = WORKER_MAGIC;
    w->st = st;
    w->threads = 4;
    w->grace_ms = 10000;
    w->stop_pipe[0] = w->stop_pipe[1] = w->ready_pipe[0] = w->ready_pipe[1] = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = w;
    return 0;
}

static int started(at_worker *w)
{
    return w->started ? at__err_set(w->st, AT_ERR_MISUSE, 0, "the worker is already running") : 0;
}

AT_EXTERN int at_worker_handle(at_worker *w, const char *type, at_handler_fn fn, void *ud)
{
    if (!valid(w) || !fn)
        return AT_ERR_INVAL;
    int rc = started(w);
    if (rc)
        return rc;
    if (strcmp(type ? type : "", "*") != 0 && at__check_name(type))
        return at__err_set(w->st, AT_ERR_NAME, 0, "job type must be \"*\" or 1..%d of [A-Za-z0-9._:-]",
                           AT_NAME_MAX);
    for (size_t i = 0; i < w->nh; i++)
        if (strcmp(w->h[i].type, type) == 0) {
            w->h[i].fn = fn, w->h[i].ud = ud;
            return 0;
        }
    struct whandler *v = at__realloc(w->h, (w->nh + 1) * sizeof *v);
    if (!v)
        return at__err_set(w->st, AT_ERR_NOMEM, 0, "out of memory");
    w->h = v;
    snprintf(w->h[w->nh].type, sizeof w->h[w->nh].type, "%s", type);
    w->h[w->nh].fn = fn;
    w->h[w->nh].ud = ud;
    w->nh++;
    return 0;
}

static struct wqueue *find_queue(at_worker *w, const char *name)
{
    for (size_t i = 0; i < w->nq; i++)
        if (strcmp(w->q[i].name, name) == 0)
            return &w->q[i];
    return NULL;
}

AT_EXTERN int at_worker_add_queue(at_worker *w, const char *queue, int32_t weight, int32_t concurrency)
{
    if (!valid(w))
        return AT_ERR_INVAL;
    int rc = started(w);
    if (rc)
        return rc;
    if (at__check_name(queue))
        return at__err_set(w->st, AT_ERR_NAME, 0, "queue name must be 1..%d of [A-Za-z0-9._:-]", AT_NAME_MAX);
    if (weight < 1 || weight > 1000 || concurrency < 0 || concurrency > 1000000)
        return at__err_set(w->st, AT_ERR_RANGE, 0, "weight must be 1..1000 and concurrency 0..1000000");
    if (find_queue(w, queue))
        return at__err_set(w->st, AT_ERR_EXISTS, 0, "queue %s was added already", queue);
    if (w->nq == MAX_QUEUES)
        return at__err_set(w->st, AT_ERR_RANGE, 0, "a worker takes at most %d queues", MAX_QUEUES);
    struct wqueue *q = &w->q[w->nq++];
    snprintf(q->name, sizeof q->name, "%s", queue);
    q->weight = weight;
    q->concurrency = concurrency;
    return 0;
}

AT_EXTERN int at_worker_set_rate(at_worker *w, const char *queue, uint32_t limit, int64_t period_ms)
{
    if (!valid(w))
        return AT_ERR_INVAL;
    int rc = started(w);
    if (rc)
        return rc;
    struct wqueue *q = queue ? find_queue(w, queue) : NULL;
    if (!q)
        return at__err_set(w->st, AT_ERR_NOTFOUND, 0, "add queue %s before its rate", queue ? queue : "(null)");
    if (limit < 1 || limit > 1000000 || period_ms < 1 || period_ms > AT__DAY_MS)
        return at__err_set(w->st, AT_ERR_RANGE, 0, "rate must be 1..1000000 jobs per 1 ms..1 day");
    if (!at__store_has_rate(w->st))
        return at__err_set(w->st, AT_ERR_UNSUPPORTED, 0, "the %s backend has no shared rate limits",
                           w->st->vt->scheme);
    q->rate_limit = limit;
    q->rate_period = period_ms;
    return 0;
}

AT_EXTERN int at_worker_set_int(at_worker *w, int32_t option, int64_t v)
{
    if (!valid(w))
        return AT_ERR_INVAL;
    int rc = started(w);
    if (rc)
        return rc;
    int64_t lo = 0, hi = 0, *dst = NULL;
    switch (option) {
    case AT_WORKER_THREADS:
        lo = 1, hi = MAX_THREADS, dst = &w->threads;
        break;
    case AT_WORKER_TIMEOUT_MS:
        lo = 0, hi = AT__DAY_MS, dst = &w->timeout_ms;
        break;
    case AT_WORKER_GRACE_MS:
        lo = 0, hi = AT__DAY_MS, dst = &w->grace_ms;
        break;
    case AT_WORKER_WEIGHTED:
        lo = 0, hi = 1, dst = &w->weighted;
        break;
    default:
        return at__err_set(w->st, AT_ERR_INVAL, 0, "unknown worker option %d", (int)option);
    }
    if (v < lo || v > hi)
        return at__err_set(w->st, AT_ERR_RANGE, 0, "worker option %d value %lld is outside %lld..%lld", (int)option,
                           (long long)v, (long long)lo, (long long)hi);
    *dst = v;
    return 0;
}

AT_EXTERN int at_worker_on_event(at_worker *w, at_event_fn fn, void *ud)
{
    if (!valid(w))
        return AT_ERR_INVAL;
    int rc = started(w);
    if (rc)
        return rc;
    w->on_event = fn;
    w->event_ud = ud;
    return 0;
}

/* ------------------------------------------------------------ running */

/* Reserve a concurrency slot of q; false when it is full. */
static bool reserve(struct wqueue *q)
{
    if (q->concurrency == 0) {
        atomic_fetch_add(&q->running, 1);
        return true;
    }
    int cur = atomic_load(&q->running);
    while (cur < q->concurrency)
        if (atomic_compare_exchange_weak(&q->running, &cur, cur + 1))
            return true;
    return false;
}

/* The queues a claim may take from now, in this claim's order, each with a
 * concurrency slot reserved for the claim, so no thread claims a job it may
 * not run; unreserve() gives back the ones the claim did not use. */
static size_t eligible(at_worker *w, const char **names, struct wqueue **held, unsigned *seed)
{
    struct wqueue *pick[MAX_QUEUES];
    size_t n = 0;
    for (size_t i = 0; i < w->nq; i++)
        if (reserve(&w->q[i]))
            pick[n++] = &w->q[i];
    if (w->weighted && n > 1) {
        /* Weighted order without replacement: each place drawn in
         * proportion to the weights still in the draw. */
        for (size_t i = 0; i < n; i++) {
            int64_t total = 0;
            for (size_t k = i; k < n; k++)
                total += pick[k]->weight;
            int64_t r = (int64_t)(rand_r(seed) % (unsigned)total);
            size_t k = i;
            while (r >= pick[k]->weight)
                r -= pick[k++]->weight;
            struct wqueue *t = pick[i];
            pick[i] = pick[k];
            pick[k] = t;
        }
    }
    for (size_t i = 0; i < n; i++) {
        names[i] = pick[i]->name;
        held[i] = pick[i];
    }
    return n;
}

/* Give back the reserved slots except the one of `keep` (NULL: all). */
static void unreserve(struct wqueue **held, size_t n, const struct wqueue *keep)
{
    for (size_t i = 0; i < n; i++)
        if (held[i] != keep)
            atomic_fetch_sub(&held[i]->running, 1);
}

/* Claim one job over the eligible queues; its queue's slot stays reserved
 * for it.  A stop ends the wait at once (at__poll's abort flag). */
static at_job *claim_one(at_worker *w, unsigned *seed, int64_t timeout_ms, bool *none_eligible)
{
    const char *names[MAX_QUEUES];
    struct wqueue *held[MAX_QUEUES];
    size_t n = eligible(w, names, held, seed);
    *none_eligible = n == 0;
    if (n == 0)
        return NULL;
    at_job *job = NULL;
    size_t got = 0;
    if (at__poll(&job, &got, w->st, names, n, 1, timeout_ms, &w->stopping) != 0 || got == 0) {
        unreserve(held, n, NULL);
        return NULL;
    }
    struct wqueue *q = find_queue(w, at_job_queue(job));
    unreserve(held, n, q);
    return job;
}

static const struct whandler *handler_for(const at_worker *w, const char *type)
{
    const struct whandler *any = NULL;
    for (size_t i = 0; i < w->nh; i++) {
        if (strcmp(w->h[i].type, type) == 0)
            return &w->h[i];
        if (strcmp(w->h[i].type, "*") == 0)
            any = &w->h[i];
    }
    return any;
}

static void fail_event(at_worker *w, const at_job *job, int32_t state, const char *error)
{
    atomic_fetch_add(&w->failed_n, 1);
    if (state != AT_STATE_CANCELLED)
        emit(w, AT_EVENT_FAILED, job, error);
    emit(w, state == AT_STATE_DEAD ? AT_EVENT_DEAD : state == AT_STATE_CANCELLED ? AT_EVENT_CANCELLED : AT_EVENT_RETRIED,
         job, error);
}

static bool transient(int rc)
{
    return rc == AT_ERR_CONN || rc == AT_ERR_TIMEOUT || rc == AT_ERR_BUSY || rc == AT_ERR_IO;
}

/* Finish a job by the handler's answer (unless the keeper already did).
 * Transient store trouble is retried a few times within the lease: giving
 * up would leave a finished job RUNNING until its lease expires and then run
 * it again. */
static void finish(at_worker *w, at_ctx *c, int32_t answer);

static void finish_retrying(at_worker *w, at_ctx *c, int32_t answer)
{
    static const int backoff_ms[] = {50, 200, 500, 1000};
    for (size_t i = 0;; i++) {
        c->last_rc = 0;
        finish(w, c, answer);
        if (!transient(c->last_rc) || i == sizeof backoff_ms / sizeof backoff_ms[0])
            break;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)backoff_ms[i] * 1000000};
        nanosleep(&ts, NULL);
    }
    if (c->last_rc)
        at__log(AT_LOG_ERROR, "worker", c->job, c->last_rc,
                "the store refused the job's outcome (%s); its lease will expire and it will run again",
                at_err_name(c->last_rc));
}

static void finish(at_worker *w, at_ctx *c, int32_t answer)
{
    const at_job *j = c->job;
    if (atomic_load(&c->done_elsewhere))
        return;
    int rc = 0;
    int32_t state = 0;
    switch (answer) {
    case AT_HANDLER_OK:
        rc = at_ack(w->st, at_job_id(j), at_job_token(j), c->result, c->result_len);
        if (rc == 0) {
            atomic_fetch_add(&w->succeeded_n, 1);
            emit(w, AT_EVENT_SUCCEEDED, j, NULL);
        } else if (rc == AT_ERR_CANCELLED) {
            emit(w, AT_EVENT_CANCELLED, j, NULL);
        }
        break;
    case AT_HANDLER_RELEASE:
        rc = at_release(w->st, at_job_id(j), at_job_token(j), 0);
        if (rc == 0) {
            atomic_fetch_add(&w->released_n, 1);
            emit(w, AT_EVENT_RELEASED, j, NULL);
        }
        break;
    default: {
        const char *err = c->error ? c->error : "the handler failed without an error text";
        uint32_t flags = answer == AT_HANDLER_PERMANENT ? AT_FAIL_PERMANENT : AT_FAIL_RETRY;
        if (answer != AT_HANDLER_RETRY && answer != AT_HANDLER_PERMANENT) {
            err = "the handler returned an unknown answer";
            flags = AT_FAIL_RETRY;
        }
        rc = at_fail(&state, w->st, at_job_id(j), at_job_token(j), err, flags);
        if (rc == 0 || rc == AT_ERR_CANCELLED)
            fail_event(w, j, rc == AT_ERR_CANCELLED ? AT_STATE_CANCELLED : state, err);
        break;
    }
    }
    /* STALE, CANCELLED, NOTFOUND are outcomes, not trouble. */
    c->last_rc = (rc == AT_ERR_STALE || rc == AT_ERR_CANCELLED || rc == AT_ERR_NOTFOUND) ? 0 : rc;
}

static bool running_add(at_worker *w, at_ctx *c)
{
    pthread_mutex_lock(&w->mu);
    if (w->keeper_done) {
        pthread_mutex_unlock(&w->mu);
        return false;
    }
    c->next = w->running;
    w->running = c;
    pthread_mutex_unlock(&w->mu);
    /* The keeper sleeps in poll() on the pipe: a byte makes it re-plan, so
     * a job with a short lease is renewed in time. */
    ssize_t r = write(w->stop_pipe[1], "k", 1);
    (void)r; /* a full pipe wakes it anyway */
    return true;
}

static void running_remove(at_worker *w, at_ctx *c)
{
    pthread_mutex_lock(&w->mu);
    for (at_ctx **pp = &w->running; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void give_back(at_worker *w, at_job *job, int64_t delay_ms, const char *why)
{
    if (at_release(w->st, at_job_id(job), at_job_token(job), delay_ms) == 0) {
        atomic_fetch_add(&w->released_n, 1);
        emit(w, AT_EVENT_RELEASED, job, why);
    }
    at_job_free(job);
}

/* Run one claimed job (taking ownership of `job`). */
static void run_job(at_worker *w, at_job *job)
{
    /* The claim reserved the job's concurrency slot (claim_one). */
    struct wqueue *q = find_queue(w, at_job_queue(job));
    if (q && q->rate_limit) {
        uint32_t got = 0;
        int64_t wait = 0;
        int rc = at__store_rate_take(&got, &wait, w->st, q->name, q->rate_limit, q->rate_period, 1);
        if (rc != 0 || got == 0) {
            /* Over the shared rate (or unable to ask: fail closed): back in
             * the queue until a token is due. */
            atomic_fetch_sub(&q->running, 1);
            give_back(w, job, rc ? 1000 : wait > 0 ? wait : 1, "rate limit");
            return;
        }
    }
    at_ctx c = {.w = w, .job = job, .q = q, .deadline = AT_TIME_NONE};
    if (w->timeout_ms > 0) {
        /* On the clock keep() compares it with (at_store_now), not from the
         * claim's STARTED: for Redis that is the server's TIME, and a host
         * whose clock is off the server's by more than the timeout would
         * time every job out at once (or far too late). */
        int64_t start = AT_TIME_NONE;
        at_store_now(&start, w->st);
        c.deadline = start + w->timeout_ms;
    }
    c.next_touch = mono_ms() + job->info.lease_ms / 3;
    if (!running_add(w, &c)) {
        /* The keeper has already given back everything at stop: this job,
         * claimed just before, goes back too. */
        if (q)
            atomic_fetch_sub(&q->running, 1);
        give_back(w, job, 0, "worker stopped");
        return;
    }
    atomic_fetch_add(&w->started_n, 1);
    emit(w, AT_EVENT_STARTED, job, NULL);
    const struct whandler *h = handler_for(w, at_job_type(job));
    int32_t answer;
    if (h) {
        answer = h->fn(&c, h->ud);
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "no handler for job type %s in this worker", at_job_type(job));
        at_ctx_set_error(&c, msg);
        answer = AT_HANDLER_RETRY;
    }
    running_remove(w, &c);
    finish_retrying(w, &c, answer);
    if (q && atomic_fetch_sub(&q->running, 1) == q->concurrency && q->concurrency)
        at_store_notify(w->st); /* a slot opened: pollers may take this queue again */
    at__free(c.result);
    at__free(c.error);
    at_job_free(job);
}

static void *handler_thread(void *arg)
{
    at_worker *w = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self() ^ (unsigned)mono_ms();
    while (!atomic_load(&w->stopping)) {
        bool none;
        at_job *job = claim_one(w, &seed, POLL_TIMEOUT_MS, &none);
        if (none) {
            /* Every queue is at its concurrency limit: wait for a slot. */
            pthread_mutex_lock(&w->mu);
            if (!atomic_load(&w->stopping))
                wait_until(w, mono_ms() + 50);
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        if (!job)
            continue;
        if (atomic_load(&w->stopping)) {
            atomic_fetch_sub(&find_queue(w, at_job_queue(job))->running, 1);
            give_back(w, job, 0, "worker stopped"); /* claimed while stopping */
            break;
        }
        run_job(w, job);
    }
    pthread_mutex_lock(&w->mu);
    w->nthreads_live--;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ------------------------------------------------------------- keeper */

/* Renew, cancel, time out: one pass over the running jobs.  Returns the
 * mono time of the next thing to do.  Caller holds w->mu; store calls are
 * made with it held, which only delays handlers' start/finish bookkeeping. */
static int64_t keep(at_worker *w)
{
    int64_t now = mono_ms(), next = now + 1000;
    int64_t wall = 0;
    at_store_now(&wall, w->st);
    /* Event mode: a job claimed for the host's loop holds its lease while it
     * waits for at_worker_run_ready, however late that comes. */
    if (w->slot && now >= w->slot_touch) {
        at_job *j = w->slot;
        int rc = at_touch(w->st, at_job_id(j), at_job_token(j), 0);
        if (rc == AT_ERR_CANCELLED || rc == AT_ERR_STALE || rc == AT_ERR_NOTFOUND) {
            /* Not ours to run any more: the slot makes room for the next. */
            w->slot = NULL;
            atomic_fetch_sub(&find_queue(w, at_job_queue(j))->running, 1);
            if (rc == AT_ERR_CANCELLED)
                emit(w, AT_EVENT_CANCELLED, j, NULL);
            at_job_free(j);
            pthread_cond_broadcast(&w->cv);
        } else {
            w->slot_touch = now + (rc == 0 ? j->info.lease_ms / 3 : 200);
        }
    }
    if (w->slot && w->slot_touch < next)
        next = w->slot_touch;
    for (at_ctx *c = w->running; c; c = c->next) {
        if (atomic_load(&c->done_elsewhere))
            continue;
        const at_job *j = c->job;
        if (c->deadline != AT_TIME_NONE && wall >= c->deadline) {
            atomic_store(&c->cancelled, 1);
            atomic_store(&c->done_elsewhere, 1);
            char msg[96];
            snprintf(msg, sizeof msg, "timeout: ran longer than %lld ms", (long long)w->timeout_ms);
            int32_t state = 0;
            int rc = at_fail(&state, w->st, at_job_id(j), at_job_token(j), msg, AT_FAIL_RETRY);
            /* After the store has it, so a hook that reads the job sees the failure. */
            emit(w, AT_EVENT_TIMEOUT, j, msg);
            if (rc == 0 || rc == AT_ERR_CANCELLED)
                fail_event(w, j, rc ? AT_STATE_CANCELLED : state, msg);
            continue;
        }
        if (now >= c->next_touch) {
            int rc = at_touch(w->st, at_job_id(j), at_job_token(j), 0);
            if (rc == AT_ERR_CANCELLED || rc == AT_ERR_STALE || rc == AT_ERR_NOTFOUND) {
                /* Cancelled, or the lease is gone: the handler should stop,
                 * and its result has nowhere to go. */
                atomic_store(&c->cancelled, 1);
                atomic_store(&c->done_elsewhere, 1);
                if (rc == AT_ERR_CANCELLED)
                    emit(w, AT_EVENT_CANCELLED, j, NULL);
                continue;
            }
            /* On a transient failure try again soon, well inside the lease. */
            c->next_touch = now + (rc == 0 ? j->info.lease_ms / 3 : 200);
        }
        if (c->next_touch < next)
            next = c->next_touch;
        if (c->deadline != AT_TIME_NONE && now + (c->deadline - wall) < next)
            next = now + (c->deadline - wall);
    }
    return next;
}

static void wait_until(at_worker *w, int64_t mono_deadline)
{
    struct timespec ts = {.tv_sec = mono_deadline / 1000, .tv_nsec = (mono_deadline % 1000) * 1000000};
    pthread_cond_timedwait(&w->cv, &w->mu, &ts);
}

static void *keeper_thread(void *arg)
{
    at_worker *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int64_t next = keep(w);
        pthread_mutex_unlock(&w->mu);
        if (atomic_load(&w->stopping))
            break;
        int64_t wait = next - mono_ms();
        struct pollfd pfd = {.fd = w->stop_pipe[0], .events = POLLIN};
        if (poll(&pfd, 1, wait < 0 ? 0 : wait > 1000 ? 1000 : (int)wait) > 0) {
            char buf[64];
            while (read(w->stop_pipe[0], buf, sizeof buf) > 0)
                ;
        }
        if (atomic_load(&w->stopping))
            break;
    }
    pthread_mutex_lock(&w->mu);
    /* Stop: wake everything that sleeps, tell handlers, give them the grace. */
    pthread_mutex_unlock(&w->mu);
    at_store_notify(w->st);
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->cv);
    for (at_ctx *c = w->running; c; c = c->next)
        atomic_store(&c->cancelled, 1);
    int64_t end = mono_ms() + w->grace_ms;
    while (w->running && mono_ms() < end) {
        int64_t next = keep(w);
        wait_until(w, next < end ? next : end);
    }
    for (at_ctx *c = w->running; c; c = c->next) {
        if (atomic_exchange(&c->done_elsewhere, 1))
            continue;
        if (at_release(w->st, at_job_id(c->job), at_job_token(c->job), 0) == 0) {
            atomic_fetch_add(&w->released_n, 1);
            emit(w, AT_EVENT_RELEASED, c->job, "worker stopped");
        }
    }
    if (w->slot) { /* event mode: a claimed job nobody ran */
        atomic_fetch_sub(&find_queue(w, at_job_queue(w->slot))->running, 1);
        at_release(w->st, at_job_id(w->slot), at_job_token(w->slot), 0);
        at_job_free(w->slot);
        w->slot = NULL;
    }
    w->keeper_done = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int make_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
    }
    return 0;
}

static int start_common(at_worker *w)
{
    if (w->started)
        return at__err_set(w->st, AT_ERR_MISUSE, 0, "the worker was started already");
    if (w->nq == 0)
        return at__err_set(w->st, AT_ERR_INVAL, 0, "add at least one queue before starting the worker");
    if (w->nh == 0)
        return at__err_set(w->st, AT_ERR_INVAL, 0, "register at least one handler before starting the worker");
    if (make_pipe(w->stop_pipe) != 0)
        return at__err_set(w->st, AT_ERR_IO, errno, "pipe: %s", strerror(errno));
    if (pthread_create(&w->keeper, NULL, keeper_thread, w) != 0)
        return at__err_set(w->st, AT_ERR_NOMEM, 0, "cannot start the worker's keeper thread");
    w->started = true;
    return 0;
}

AT_EXTERN int at_worker_start(at_worker *w)
{
    if (!valid(w))
        return AT_ERR_INVAL;
    int rc = start_common(w);
    if (rc)
        return rc;
    if (!(w->th = at__calloc((size_t)w->threads, sizeof *w->th))) {
        at_worker_stop(w);
        return at__err_set(w->st, AT_ERR_NOMEM, 0, "out of memory");
    }
    for (int64_t i = 0; i < w->threads; i++) {
        pthread_mutex_lock(&w->mu);
        w->nthreads_live++;
        pthread_mutex_unlock(&w->mu);
        if (pthread_create(&w->th[i], NULL, handler_thread, w) != 0) {
            pthread_mutex_lock(&w->mu);
            w->nthreads_live--;
            pthread_mutex_unlock(&w->mu);
            w->threads = i;
            at_worker_stop(w);
            return at__err_set(w->st, AT_ERR_NOMEM, 0, "cannot start handler thread %lld", (long long)i);
        }
    }
    return 0;
}

AT_EXTERN void at_worker_stop(at_worker *w)
{
    if (!valid(w))
        return;
    /* Only what a signal handler may do. */
    atomic_store(&w->stopping, 1);
    if (w->stop_pipe[1] >= 0) {
        ssize_t r = write(w->stop_pipe[1], "s", 1);
        (void)r; /* full pipe: a stop is already pending */
    }
}

AT_EXTERN int at_worker_wait(at_worker *w, int64_t timeout_ms)
{
    if (!valid(w))
        return AT_ERR_INVAL;
    if (!w->started)
        return 0;
    int64_t end = timeout_ms < 0 ? INT64_MAX : mono_ms() + timeout_ms;
    pthread_mutex_lock(&w->mu);
    while (!(w->keeper_done && w->nthreads_live == 0)) {
        if (mono_ms() >= end) {
            pthread_mutex_unlock(&w->mu);
            return at__err_set(w->st, AT_ERR_TIMEOUT, 0, "the worker has not stopped yet");
        }
        int64_t step = mono_ms() + 100;
        wait_until(w, step < end ? step : end);
    }
    pthread_mutex_unlock(&w->mu);
    return 0;
}

AT_EXTERN void at_worker_free(at_worker *w)
{
    if (!valid(w))
        return;
    if (w->started) {
        at_worker_stop(w);
        at_worker_wait(w, -1);
        pthread_join(w->keeper, NULL);
        for (int64_t i = 0; w->th && i < w->threads; i++)
            pthread_join(w->th[i], NULL);
        if (w->have_claimer)
            pthread_join(w->claimer, NULL);
    }
    for (int i = 0; i < 2; i++) {
        if (w->stop_pipe[i] >= 0)
            close(w->stop_pipe[i]);
        if (w->ready_pipe[i] >= 0)
            close(w->ready_pipe[i]);
    }
    at__free(w->th);
    at__free(w->h);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    w->magic = 0;
    at__free(w);
}

AT_EXTERN void at_worker_counters(const at_worker *w, uint64_t *started_out, uint64_t *succeeded_out,
                                  uint64_t *failed_out, uint64_t *released_out)
{
    at_worker *m = valid(w) ? (at_worker *)w : NULL;
    if (started_out)
        *started_out = m ? atomic_load(&m->started_n) : 0;
    if (succeeded_out)
        *succeeded_out = m ? atomic_load(&m->succeeded_n) : 0;
    if (failed_out)
        *failed_out = m ? atomic_load(&m->failed_n) : 0;
    if (released_out)
        *released_out = m ? atomic_load(&m->released_n) : 0;
}

/* --------------------------------------------------------- event loop */

/* Claims one job at a time into the slot and makes the fd readable. */
static void *claimer_thread(void *arg)
{
    at_worker *w = arg;
    unsigned seed = (unsigned)mono_ms();
    while (!atomic_load(&w->stopping)) {
        pthread_mutex_lock(&w->mu);
        while (w->slot && !atomic_load(&w->stopping))
            wait_until(w, mono_ms() + 100);
        pthread_mutex_unlock(&w->mu);
        if (atomic_load(&w->stopping))
            break;
        bool none;
        at_job *job = claim_one(w, &seed, POLL_TIMEOUT_MS, &none);
        if (none) { /* every queue at its limit: wait for a slot */
            pthread_mutex_lock(&w->mu);
            wait_until(w, mono_ms() + 50);
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        if (!job)
            continue;
        pthread_mutex_lock(&w->mu);
        if (atomic_load(&w->stopping)) {
            pthread_mutex_unlock(&w->mu);
            atomic_fetch_sub(&find_queue(w, at_job_queue(job))->running, 1);
            give_back(w, job, 0, "worker stopped");
            break;
        }
        w->slot = job;
        w->slot_touch = mono_ms() + job->info.lease_ms / 3;
        pthread_mutex_unlock(&w->mu);
        ssize_t r = write(w->ready_pipe[1], "r", 1);
        (void)r; /* already readable */
        /* The keeper re-plans (as for a running job): a short lease is
         * renewed in time even if the host's loop is slow to come. */
        r = write(w->stop_pipe[1], "k", 1);
        (void)r;
    }
    pthread_mutex_lock(&w->mu);
    w->nthreads_live--;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

AT_EXTERN int at_worker_fd(at_worker *w)
{
    if (!valid(w))
        return AT_ERR_INVAL;
    if (w->event_mode)
        return w->ready_pipe[0];
    if (w->th)
        return at__err_set(w->st, AT_ERR_MISUSE, 0, "the worker runs its own threads (at_worker_start)");
    if (make_pipe(w->ready_pipe) != 0)
        return at__err_set(w->st, AT_ERR_IO, errno, "pipe: %s", strerror(errno));
    int rc = start_common(w);
    if (rc) {
        close(w->ready_pipe[0]);
        close(w->ready_pipe[1]);
        w->ready_pipe[0] = w->ready_pipe[1] = -1;
        return rc;
    }
    w->event_mode = true;
    pthread_mutex_lock(&w->mu);
    w->nthreads_live++;
    pthread_mutex_unlock(&w->mu);
    if (pthread_create(&w->claimer, NULL, claimer_thread, w) != 0) {
        pthread_mutex_lock(&w->mu);
        w->nthreads_live--;
        pthread_mutex_unlock(&w->mu);
        at_worker_stop(w);
        return at__err_set(w->st, AT_ERR_NOMEM, 0, "cannot start the claimer thread");
    }
    w->have_claimer = true;
    return w->ready_pipe[0];
}

AT_EXTERN int at_worker_run_ready(size_t *ran_out, at_worker *w, size_t max)
{
    if (ran_out)
        *ran_out = 0;
    if (!valid(w) || max == 0)
        return AT_ERR_INVAL;
    if (!w->event_mode)
        return at__err_set(w->st, AT_ERR_MISUSE, 0, "call at_worker_fd first");
    char buf[64];
    while (read(w->ready_pipe[0], buf, sizeof buf) > 0)
        ;
    size_t ran = 0;
    unsigned seed = (unsigned)mono_ms();
    while (ran < max && !atomic_load(&w->stopping)) {
        pthread_mutex_lock(&w->mu);
        at_job *job = w->slot;
        w->slot = NULL;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        if (!job) {
            bool none;
            if (!(job = claim_one(w, &seed, 0, &none)))
                break;
        }
        run_job(w, job);
        ran++;
    }
    if (ran_out)
        *ran_out = ran;
    return 0;
}

/* ------------------------------------------------------------- context */

AT_EXTERN const at_job *at_ctx_job(const at_ctx *c)
{
    return c ? c->job : NULL;
}

AT_EXTERN at_store *at_ctx_store(const at_ctx *c)
{
    return c ? c->w->st : NULL;
}

AT_EXTERN int at_ctx_set_result(at_ctx *c, const void *result, size_t len)
{
    if (!c || (!result && len))
        return AT_ERR_INVAL;
    if (len > ((size_t)1 << 30)) /* no store takes more; refused before any copy */
        return AT_ERR_TOOBIG;
    void *copy = NULL;
    if (result && !(copy = at__memdup(result, len ? len : 1)))
        return AT_ERR_NOMEM;
    at__free(c->result);
    c->result = copy;
    c->result_len = len;
    return 0;
}

AT_EXTERN int at_ctx_set_error(at_ctx *c, const char *error)
{
    if (!c)
        return AT_ERR_INVAL;
    char *copy = NULL;
    if (error && !(copy = at__strdup(error)))
        return AT_ERR_NOMEM;
    at__free(c->error);
    c->error = copy;
    return 0;
}

AT_EXTERN int at_ctx_progress(at_ctx *c, int32_t permille, const char *note)
{
    if (!c || permille < 0 || permille > 1000)
        return AT_ERR_INVAL;
    char detail[300];
    snprintf(detail, sizeof detail, "%d.%d%%%s%s", (int)(permille / 10), (int)(permille % 10), note ? " " : "",
             note ? note : "");
    emit(c->w, AT_EVENT_PROGRESS, c->job, detail);
    int rc = at_touch(c->w->st, at_job_id(c->job), at_job_token(c->job), 0);
    if (rc == AT_ERR_CANCELLED || rc == AT_ERR_STALE || rc == AT_ERR_NOTFOUND)
        atomic_store(&c->cancelled, 1);
    return rc;
}

AT_EXTERN int32_t at_ctx_cancelled(const at_ctx *c)
{
    if (!c)
        return 1;
    return atomic_load(&((at_ctx *)c)->cancelled) || atomic_load(&c->w->stopping) ? 1 : 0;
}

AT_EXTERN int64_t at_ctx_deadline(const at_ctx *c)
{
    return c ? c->deadline : AT_TIME_NONE;
}
