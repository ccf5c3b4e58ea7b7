/*
 * clock.c - the clocks that judge a store: the host's real-time and
 * monotonic clocks, or a manual clock moved by hand in tests.
 *
 * A manual clock keeps two readings.  at_clock_advance() moves both, as time
 * passing does; at_clock_set() moves only the wall reading, as an NTP step or
 * an operator's `date -s` would.  The timing wheel runs on the monotonic
 * reading, so the same code path is exercised by tests and production
 * (ADR/0005-clock-and-time.md).
 */
#include <errno.h>
#include <time.h>

#include "internal.h"

#define CLOCK_MAGIC 0x61636c6bu /* "aclk" */

int64_t at__real_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t at__real_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

AT_EXTERN int at_clock_new_manual(at_clock **out, int64_t start_ms)
{
    if (!out)
        return AT_ERR_INVAL;
    *out = NULL;
    if (start_ms < 0)
        return at__err_set(NULL, AT_ERR_RANGE, 0, "clock start %lld ms is before the epoch", (long long)start_ms);
    at_clock *c = at__calloc(1, sizeof *c);
    if (!c)
        return AT_ERR_NOMEM;
    c->magic = CLOCK_MAGIC;
    pthread_mutex_init(&c->mu, NULL);
    atomic_store(&c->wall_ms, start_ms);
    /* Any positive origin: only differences of monotonic readings matter. */
    atomic_store(&c->mono_ms, INT64_C(1000000));
    *out = c;
    return 0;
}

static void wake_stores(at_clock *c)
{
    pthread_mutex_lock(&c->mu);
    for (at_store *s = c->stores; s; s = s->clock_next) {
        at_store_notify(s);
        at__sched_kick(s);
    }
    pthread_mutex_unlock(&c->mu);
}

AT_EXTERN int at_clock_advance(at_clock *c, int64_t delta_ms)
{
    if (!c || c->magic != CLOCK_MAGIC)
        return AT_ERR_INVAL;
    if (delta_ms < 0)
        return AT_ERR_INVAL;
    if (delta_ms > INT64_MAX / 4 - atomic_load(&c->wall_ms))
        return AT_ERR_RANGE;
    atomic_fetch_add(&c->mono_ms, delta_ms);
    atomic_fetch_add(&c->wall_ms, delta_ms);
    wake_stores(c);
    return 0;
}

AT_EXTERN int at_clock_set(at_clock *c, int64_t now_ms)
{
    if (!c || c->magic != CLOCK_MAGIC)
        return AT_ERR_INVAL;
    if (now_ms < 0 || now_ms > INT64_MAX / 4)
        return AT_ERR_RANGE;
    atomic_store(&c->wall_ms, now_ms);
    wake_stores(c);
    return 0;
}

AT_EXTERN int64_t at_clock_now(const at_clock *c)
{
    if (!c || c->magic != CLOCK_MAGIC)
        return at__real_wall_ns() / 1000000;
    return atomic_load(&((at_clock *)c)->wall_ms);
}

AT_EXTERN int at_clock_free(at_clock *c)
{
    if (!c)
        return 0;
    if (c->magic != CLOCK_MAGIC)
        return AT_ERR_INVAL;
    pthread_mutex_lock(&c->mu);
    bool busy = c->stores != NULL;
    pthread_mutex_unlock(&c->mu);
    if (busy)
        return at__err_set(NULL, AT_ERR_BUSY, 0, "clock is still used by an open store");
    c->magic = 0;
    pthread_mutex_destroy(&c->mu);
    at__free(c);
    return 0;
}

void at__store_clock_ns(const at_store *s, int64_t *wall_ns, int64_t *mono_ns)
{
    /* A NULL store reads the real clock: these return a time, not a code. */
    if (s && s->clock) {
        if (wall_ns)
            *wall_ns = atomic_load(&s->clock->wall_ms) * 1000000;
        if (mono_ns)
            *mono_ns = atomic_load(&s->clock->mono_ms) * 1000000;
        return;
    }
    if (wall_ns)
        *wall_ns = at__real_wall_ns();
    if (mono_ns)
        *mono_ns = at__real_mono_ns();
}

AT_EXTERN int64_t at_store_clock_wall(const at_store *s)
{
    int64_t w;
    at__store_clock_ns(s, &w, NULL);
    return w / 1000000;
}

AT_EXTERN int64_t at_store_clock_mono(const at_store *s)
{
    int64_t m;
    at__store_clock_ns(s, NULL, &m);
    return m / 1000000;
}

AT_EXTERN int32_t at_store_clock_is_manual(const at_store *s)
{
    return s && s->clock ? 1 : 0;
}

void at__clock_detach(at_store *s)
{
    if (!s->clock)
        return;
    pthread_mutex_lock(&s->clock->mu);
    for (at_store **pp = &s->clock->stores; *pp; pp = &(*pp)->clock_next)
        if (*pp == s) {
            *pp = s->clock_next;
            break;
        }
    pthread_mutex_unlock(&s->clock->mu);
    s->clock = NULL;
}

AT_EXTERN int at_store_set_clock(at_store *s, at_clock *c)
{
    AT__ENTER(s);
    if (!c || c->magic != CLOCK_MAGIC)
        return at__err_set(s, AT_ERR_INVAL, 0, "not a clock handle");
    if (!(s->vt->flags & AT_STORE_F_HOST_CLOCK))
        return at__err_set(s, AT_ERR_UNSUPPORTED, 0, "the %s backend is judged by its server's clock",
                           s->vt->scheme);
    if (atomic_load(&s->used))
        return at__err_set(s, AT_ERR_MISUSE, 0, "the clock must be set before the store's first job operation");
    at__clock_detach(s);
    if (c) {
        pthread_mutex_lock(&c->mu);
        s->clock_next = c->stores;
        c->stores = s;
        s->clock = c;
        pthread_mutex_unlock(&c->mu);
    }
    return 0;
}
