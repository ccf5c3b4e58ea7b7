/*
 * poll.c - at_poll: claim due jobs, or sleep exactly until there may be some.
 *
 * Backends only offer a non-blocking claim that also says when work is next
 * known to appear (the earliest timer of the memory backend's wheels, the
 * earliest due time in a SQLite index).  The waiting lives here, once for all
 * backends: a condition variable on CLOCK_MONOTONIC, woken by every local
 * change that may make a job claimable (enqueue, retry, requeue, a manual
 * clock moving) and timed to the backend's wake time.  A generation counter
 * read before the claim closes the race with a change that lands between the
 * claim and the sleep.  No timer ticks: an idle poller sleeps until its
 * timeout (ADR/0004, ADR/0005).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* While timers are armed, a sleeper re-reads the clocks at least this often,
 * so a forward step of the wall clock delays due jobs by at most this much
 * (ADR/0005).  With nothing armed it sleeps as long as it was asked to. */
#define JUMP_CHECK_NS INT64_C(1000000000)

static struct timespec to_ts(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    return ts;
}

AT_EXTERN int at_poll(at_job **jobs_out, size_t *n_out, at_store *s, const char *const *queues, size_t nqueues,
                      size_t max, int64_t timeout_ms)
{
    return at__poll(jobs_out, n_out, s, queues, nqueues, max, timeout_ms, NULL);
}

/* As at_poll; also returns (with no job) as soon as *abort is nonzero after
 * a wake-up, so a worker that is stopping does not sit out its timeout:
 * whoever sets it calls at_store_notify. */
int at__poll(at_job **jobs_out, size_t *n_out, at_store *s, const char *const *queues, size_t nqueues, size_t max,
             int64_t timeout_ms, const atomic_int *abort)
{
    if (n_out)
        *n_out = 0;
    int rc = at__store_enter_job(s);
    if (rc)
        return rc;
    if (!jobs_out || !n_out)
        return at__err_set(s, AT_ERR_INVAL, 0, "at_poll needs jobs_out and n_out");
    if (!queues || nqueues == 0 || nqueues > AT__MAX_QUEUES_PER_POLL)
        return at__err_set(s, AT_ERR_INVAL, 0, "at_poll needs 1..%d queue names", AT__MAX_QUEUES_PER_POLL);
    for (size_t i = 0; i < nqueues; i++)
        if (at__check_name(queues[i]))
            return at__err_set(s, AT_ERR_NAME, 0, "queue name %zu must be 1..%d of [A-Za-z0-9._:-]", i,
                               AT_NAME_MAX);
    if (max < 1 || max > AT__MAX_POLL_BATCH)
        return at__err_set(s, AT_ERR_INVAL, 0, "max %zu is outside 1..%d", max, AT__MAX_POLL_BATCH);
    if (timeout_ms < -1)
        return at__err_set(s, AT_ERR_RANGE, 0, "timeout %lld ms is invalid (-1 waits forever)",
                           (long long)timeout_ms);

    int64_t deadline = 0; /* set after the first empty claim: a hit costs no clock read */
    uint64_t intr = atomic_load(&s->intr);
    for (;;) {
        uint64_t gen = atomic_load(&s->wgen);
        if ((abort && atomic_load(abort)) || atomic_load(&s->intr) != intr)
            return 0;

        int64_t wake = AT_TIME_NONE;
        size_t n = 0;
        rc = s->vt->claim(jobs_out, &n, &wake, s->be, queues, nqueues, max);
        if (rc || n > 0) {
            *n_out = rc ? 0 : n;
            if (n > 0 && rc == 0)
                at__metrics_claimed(s->metrics, jobs_out, n);
            return rc;
        }
        if (timeout_ms == 0)
            return 0;
        int64_t now = at__real_mono_ns();
        if (deadline == 0)
            deadline = timeout_ms < 0 ? INT64_MAX : now + timeout_ms * 1000000;
        else if (now >= deadline)
            return 0;

        /* Turn the backend's wake time (store-monotonic ms) into a real
         * monotonic deadline.  A manual clock does not move by itself: its
         * pollers wait for at_clock_advance to notify them. */
        int64_t until = deadline;
        if (wake != AT_TIME_NONE && !s->clock) {
            int64_t w = wake > INT64_MAX / 1000000 ? INT64_MAX : wake * 1000000;
            if (w < until)
                until = w;
            if (now + JUMP_CHECK_NS < until)
                until = now + JUMP_CHECK_NS;
        }
        /* Backends shared with other processes are asked, every watch
         * interval, whether anything changed; only then is a claim tried. */
        int (*changed)(at_backend *) =
            s->vt->size >= offsetof(at_store_vtable, changed) + sizeof s->vt->changed ? s->vt->changed : NULL;
        int64_t interval = changed ? at__store_opt(s, AT__SOPT_WATCH_INTERVAL) * 1000000 : 0;
        for (;;) {
            int64_t step = changed && now + interval < until ? now + interval : until;
            struct timespec ts = to_ts(step == INT64_MAX ? INT64_MAX / 2 : step);
            bool woken = false;
            pthread_mutex_lock(&s->wmu);
            atomic_fetch_add(&s->nwaiters, 1);
            while (atomic_load(&s->wgen) == gen) {
                if (pthread_cond_timedwait(&s->wcv, &s->wmu, &ts) == ETIMEDOUT)
                    break;
            }
            atomic_fetch_sub(&s->nwaiters, 1);
            woken = atomic_load(&s->wgen) != gen;
            pthread_mutex_unlock(&s->wmu);
            if (woken)
                break;
            now = at__real_mono_ns();
            if (now >= until)
                break;
            if (changed) {
                int c = changed(s->be);
                if (c < 0)
                    return c;
                if (c > 0)
                    break;
            }
        }
    }
}

AT_EXTERN int at_store_interrupt(at_store *s)
{
    int rc = at__store_enter(s);
    if (rc)
        return rc;
    atomic_fetch_add(&s->intr, 1);
    at_store_notify(s);
    return 0;
}
