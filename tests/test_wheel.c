/*
 * test_wheel.c - specification tests for the hierarchical timing wheel
 * (lib/wheel.h, ADR/0004-timing-wheel.md).
 *
 * Each test names the rule it checks.  The differential test drives the
 * wheel and a reference binary min-heap (bench/minheap.c, compiled into this
 * program) with the same random operations, callbacks included, and requires
 * the same timers to fire at the same logical times in the same order.
 * AT_WHEEL_OPS sets its operation count (default 1,000,000) so that the
 * sanitizer and valgrind jobs can run fewer.
 */
#include <check.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "wheel.h"
#include "../bench/minheap.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* ---- simple fixtures: timers with ids and a firing log ---- */

#define MAXLOG 4096

typedef struct rec rec;
typedef void (*rec_action)(at_wheel *w, rec *r);

struct rec {
    at_timer t;
    int id;
    rec_action action; /* run once from the fire callback, then cleared */
    rec *other;
    uint64_t arg;
};

static struct {
    at_wheel *w;
    size_t n;
    int id[MAXLOG];
    uint64_t at[MAXLOG];
} lg;

static void log_fire(at_timer *t, void *ud)
{
    rec *r = container_of(t, rec, t);
    (void)ud;
    ck_assert(!at__timer_pending(t));
    ck_assert_uint_lt(lg.n, MAXLOG);
    lg.id[lg.n] = r->id;
    lg.at[lg.n] = at__wheel_now(lg.w);
    lg.n++;
    ck_assert_uint_eq(t->expires, at__wheel_now(lg.w)); /* never early, never late */
    if (r->action) {
        rec_action a = r->action;
        r->action = NULL;
        a(lg.w, r);
    }
}

static at_wheel *fresh(uint64_t now)
{
    at_wheel *w = at__wheel_new(now);
    ck_assert_ptr_nonnull(w);
    lg.w = w;
    lg.n = 0;
    return w;
}

static void recs_init(rec *r, int n)
{
    for (int i = 0; i < n; i++) {
        at__timer_init(&r[i].t);
        r[i].id = i;
        r[i].action = NULL;
        r[i].other = NULL;
        r[i].arg = 0;
    }
}

static void expect_log(const int *ids, const uint64_t *at, size_t n)
{
    ck_assert_uint_eq(lg.n, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(lg.id[i], ids[i]);
        ck_assert_uint_eq(lg.at[i], at[i]);
    }
}

static void act_cancel_other(at_wheel *w, rec *r)
{
    at__wheel_del(w, &r->other->t);
}

static void act_readd_self(at_wheel *w, rec *r)
{
    at__wheel_add(w, &r->t, r->arg);
}

/* ---- edge cases ---- */

START_TEST(zero_delay_timer_fires_at_the_current_time)
{
    at_wheel *w = fresh(1000);
    rec r[1];
    recs_init(r, 1);
    at__wheel_add(w, &r[0].t, 1000);
    ck_assert(at__timer_pending(&r[0].t));
    ck_assert_uint_eq(at__wheel_next(w), 1000);
    ck_assert_uint_eq(at__wheel_earliest(w), 1000);
    ck_assert_uint_eq(at__wheel_advance(w, 1000, log_fire, NULL), 1);
    expect_log((int[]){0}, (uint64_t[]){1000}, 1);
    ck_assert(!at__timer_pending(&r[0].t));
    ck_assert_uint_eq(at__wheel_count(w), 0);
    ck_assert_int_eq(at__wheel_check(w), 0);
    at__wheel_free(w);
}
END_TEST

START_TEST(past_due_timer_is_clamped_to_now_and_fires_after_those_already_due)
{
    at_wheel *w = fresh(1000);
    rec r[2];
    recs_init(r, 2);
    at__wheel_add(w, &r[0].t, 1000);
    at__wheel_add(w, &r[1].t, 3);
    ck_assert_uint_eq(r[1].t.expires, 1000);
    ck_assert_int_eq(at__wheel_check(w), 0);
    ck_assert_uint_eq(at__wheel_advance(w, 1200, log_fire, NULL), 2);
    expect_log((int[]){0, 1}, (uint64_t[]){1000, 1000}, 2);
    ck_assert_uint_eq(at__wheel_now(w), 1200);
    at__wheel_free(w);
}
END_TEST

START_TEST(equal_due_times_fire_in_insertion_order)
{
    /* Timers for the same instant added from different distances (so from
     * different levels, meeting after cascades) and one re-armed (which
     * moves it to the back) still fire in insertion order. */
    at_wheel *w = fresh(0);
    rec r[6];
    recs_init(r, 6);
    at__wheel_add(w, &r[0].t, 300000); /* level 3 */
    at__wheel_add(w, &r[1].t, 300000);
    at__wheel_add(w, &r[2].t, 300000);
    at__wheel_advance(w, 299000, log_fire, NULL);
    at__wheel_add(w, &r[3].t, 300000); /* level 1 or 0 now */
    at__wheel_add(w, &r[1].t, 300000); /* re-arm: goes to the back */
    at__wheel_advance(w, 299990, log_fire, NULL);
    at__wheel_add(w, &r[4].t, 300000);
    at__wheel_add(w, &r[5].t, 299999);
    ck_assert_int_eq(at__wheel_check(w), 0);
    ck_assert_uint_eq(lg.n, 0);
    ck_assert_uint_eq(at__wheel_advance(w, 400000, log_fire, NULL), 6);
    expect_log((int[]){5, 0, 2, 3, 1, 4}, (uint64_t[]){299999, 300000, 300000, 300000, 300000, 300000}, 6);
    at__wheel_free(w);
}
END_TEST

START_TEST(cancel_from_callback_of_timer_in_same_batch_stops_it)
{
    at_wheel *w = fresh(0);
    rec r[3];
    recs_init(r, 3);
    for (int i = 0; i < 3; i++)
        at__wheel_add(w, &r[i].t, 100);
    r[0].action = act_cancel_other;
    r[0].other = &r[1];
    ck_assert_uint_eq(at__wheel_advance(w, 100, log_fire, NULL), 2);
    expect_log((int[]){0, 2}, (uint64_t[]){100, 100}, 2);
    ck_assert(!at__timer_pending(&r[1].t));
    ck_assert_uint_eq(at__wheel_count(w), 0);
    ck_assert_int_eq(at__wheel_check(w), 0);
    at__wheel_free(w);
}
END_TEST

START_TEST(cancel_from_callback_of_later_timer_stops_it)
{
    at_wheel *w = fresh(0);
    rec r[3];
    recs_init(r, 3);
    at__wheel_add(w, &r[0].t, 100);
    at__wheel_add(w, &r[1].t, 150);
    at__wheel_add(w, &r[2].t, 5000000); /* far level, cancelled before cascading */
    r[0].action = act_cancel_other;
    r[0].other = &r[1];
    ck_assert_uint_eq(at__wheel_advance(w, 200, log_fire, NULL), 1);
    expect_log((int[]){0}, (uint64_t[]){100}, 1);
    ck_assert(!at__timer_pending(&r[1].t));
    at__wheel_del(w, &r[2].t);
    at__wheel_del(w, &r[2].t); /* deleting an idle timer is harmless */
    ck_assert_uint_eq(at__wheel_count(w), 0);
    ck_assert_uint_eq(at__wheel_next(w), AT_WHEEL_NEVER);
    ck_assert_uint_eq(at__wheel_earliest(w), AT_WHEEL_NEVER);
    ck_assert_int_eq(at__wheel_check(w), 0);
    at__wheel_free(w);
}
END_TEST

START_TEST(readd_self_from_callback_at_same_time_fires_again_after_the_batch)
{
    at_wheel *w = fresh(0);
    rec r[2];
    recs_init(r, 2);
    at__wheel_add(w, &r[0].t, 100);
    at__wheel_add(w, &r[1].t, 100);
    r[0].action = act_readd_self;
    r[0].arg = 100;
    ck_assert_uint_eq(at__wheel_advance(w, 100, log_fire, NULL), 3);
    expect_log((int[]){0, 1, 0}, (uint64_t[]){100, 100, 100}, 3);
    ck_assert_uint_eq(at__wheel_count(w), 0);
    at__wheel_free(w);
}
END_TEST

START_TEST(readd_self_from_callback_in_the_past_is_clamped_to_now)
{
    at_wheel *w = fresh(0);
    rec r[1];
    recs_init(r, 1);
    at__wheel_add(w, &r[0].t, 100);
    r[0].action = act_readd_self;
    r[0].arg = 7;
    ck_assert_uint_eq(at__wheel_advance(w, 500, log_fire, NULL), 2);
    expect_log((int[]){0, 0}, (uint64_t[]){100, 100}, 2);
    at__wheel_free(w);
}
END_TEST

START_TEST(readd_self_from_callback_later_fires_at_the_new_time)
{
    at_wheel *w = fresh(0);
    rec r[2];
    recs_init(r, 2);
    at__wheel_add(w, &r[0].t, 100);
    r[0].action = act_readd_self;
    r[0].arg = 150;
    at__wheel_add(w, &r[1].t, 100);
    r[1].action = act_readd_self;
    r[1].arg = 300; /* beyond this advance: stays armed */
    ck_assert_uint_eq(at__wheel_advance(w, 200, log_fire, NULL), 3);
    expect_log((int[]){0, 1, 0}, (uint64_t[]){100, 100, 150}, 3);
    ck_assert(at__timer_pending(&r[1].t));
    ck_assert_uint_eq(at__wheel_earliest(w), 300);
    ck_assert_int_eq(at__wheel_check(w), 0);
    at__wheel_free(w);
}
END_TEST

/* Wheel times and distances around the level boundaries 2^(6k). */
static const uint64_t boundary_bases[] = {
    0,
    1,
    62,
    63,
    64,
    4095,
    4096,
    (UINT64_C(1) << 36) - 1,
    UINT64_C(1) << 36,
    (UINT64_C(1) << 60) - 1,
    UINT64_C(1) << 60,
    UINT64_C(0x8000000000000000) - 65,
    UINT64_MAX - (UINT64_C(1) << 40),
};

static const uint64_t boundary_deltas[] = {
    1,
    63,
    64,
    65,
    4095,
    4096,
    4097,
    (UINT64_C(1) << 18) - 1,
    UINT64_C(1) << 18,
    (UINT64_C(1) << 36) - 1,
    UINT64_C(1) << 36,
    (UINT64_C(1) << 36) + 1,
    (UINT64_C(1) << 60) - 1,
    UINT64_C(1) << 60,
    (UINT64_C(1) << 62) + 12345,
};

START_TEST(timers_across_level_boundaries_fire_exactly_on_time)
{
    size_t nb = sizeof boundary_bases / sizeof *boundary_bases;
    size_t nd = sizeof boundary_deltas / sizeof *boundary_deltas;
    for (size_t i = 0; i < nb; i++) {
        for (size_t j = 0; j < nd; j++) {
            uint64_t base = boundary_bases[i], d = boundary_deltas[j];
            if (d > UINT64_MAX - base)
                continue;
            uint64_t e = base + d;
            at_wheel *w = fresh(base);
            rec r[1];
            recs_init(r, 1);
            at__wheel_add(w, &r[0].t, e);
            ck_assert_int_eq(at__wheel_check(w), 0);
            ck_assert_uint_eq(at__wheel_earliest(w), e);
            ck_assert_uint_le(at__wheel_next(w), e);
            ck_assert_uint_ge(at__wheel_next(w), base);
            /* Follow next() as a sleeping caller would: never fires early. */
            while (at__wheel_next(w) < e) {
                ck_assert_uint_eq(at__wheel_advance(w, at__wheel_next(w), log_fire, NULL), 0);
                ck_assert_int_eq(at__wheel_check(w), 0);
            }
            ck_assert_uint_eq(at__wheel_advance(w, e - 1, log_fire, NULL), 0);
            ck_assert_uint_eq(at__wheel_now(w), e - 1);
            ck_assert_int_eq(at__wheel_check(w), 0);
            ck_assert_uint_eq(at__wheel_advance(w, e, log_fire, NULL), 1);
            expect_log((int[]){0}, (uint64_t[]){e}, 1);
            at__wheel_free(w);

            /* The same timer reached by one big jump from its start. */
            w = fresh(base);
            at__timer_init(&r[0].t);
            at__wheel_add(w, &r[0].t, e);
            ck_assert_uint_eq(at__wheel_advance(w, UINT64_MAX, log_fire, NULL), 1);
            expect_log((int[]){0}, (uint64_t[]){e}, 1);
            ck_assert_uint_eq(at__wheel_now(w), UINT64_MAX);
            at__wheel_free(w);
        }
    }
}
END_TEST

START_TEST(largest_delay_up_to_uint64_max_fires_exactly_on_time)
{
    at_wheel *w = fresh(123456789);
    rec r[3];
    recs_init(r, 3);
    at__wheel_add(w, &r[0].t, UINT64_MAX);
    at__wheel_add(w, &r[1].t, UINT64_MAX - 1);
    ck_assert_int_eq(at__wheel_check(w), 0);
    ck_assert_uint_eq(at__wheel_earliest(w), UINT64_MAX - 1);
    ck_assert_uint_eq(at__wheel_advance(w, UINT64_MAX - 2, log_fire, NULL), 0);
    ck_assert_uint_eq(at__wheel_advance(w, UINT64_MAX - 1, log_fire, NULL), 1);
    /* A timer at UINT64_MAX is armed although earliest() says "never". */
    ck_assert_uint_eq(at__wheel_count(w), 1);
    ck_assert_uint_eq(at__wheel_earliest(w), UINT64_MAX);
    ck_assert_uint_eq(at__wheel_advance(w, UINT64_MAX, log_fire, NULL), 1);
    expect_log((int[]){1, 0}, (uint64_t[]){UINT64_MAX - 1, UINT64_MAX}, 2);
    /* At the end of time everything is due at once. */
    at__wheel_add(w, &r[2].t, 5);
    ck_assert_uint_eq(at__wheel_advance(w, UINT64_MAX, log_fire, NULL), 1);
    ck_assert_int_eq(at__wheel_check(w), 0);
    at__wheel_free(w);
}
END_TEST

START_TEST(advance_backwards_fires_nothing_and_keeps_the_time)
{
    at_wheel *w = fresh(1000);
    rec r[2];
    recs_init(r, 2);
    at__wheel_add(w, &r[0].t, 1000);
    at__wheel_add(w, &r[1].t, 1500);
    ck_assert_uint_eq(at__wheel_advance(w, 500, log_fire, NULL), 0);
    ck_assert_uint_eq(at__wheel_now(w), 1000);
    ck_assert_uint_eq(at__wheel_advance(w, 0, log_fire, NULL), 0);
    ck_assert_uint_eq(at__wheel_now(w), 1000);
    ck_assert_int_eq(at__wheel_check(w), 0);
    ck_assert_uint_eq(at__wheel_advance(w, 1000, log_fire, NULL), 1);
    ck_assert_uint_eq(at__wheel_advance(w, 999, log_fire, NULL), 0);
    ck_assert_uint_eq(at__wheel_now(w), 1000);
    ck_assert_uint_eq(at__wheel_count(w), 1);
    at__wheel_free(w);
}
END_TEST

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: small, fast, good enough to generate test inputs */
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

START_TEST(next_is_never_after_earliest_and_earliest_is_exact)
{
    enum { N = 3000 };
    static rec r[N];
    uint64_t seed = 77;
    at_wheel *w = fresh(5000);
    recs_init(r, N);
    for (int round = 0; round < 20000; round++) {
        int i = (int)(rng_next(&seed) % N);
        uint64_t k = rng_next(&seed) % 10;
        uint64_t now = at__wheel_now(w);
        if (k < 5)
            at__wheel_add(w, &r[i].t,
                          now + (rng_next(&seed) >> (rng_next(&seed) % 64)) % (UINT64_C(1) << 40));
        else if (k < 8)
            at__wheel_del(w, &r[i].t);
        else
            at__wheel_advance(w, now + rng_next(&seed) % 100000, log_fire, NULL);
        lg.n = 0;
        uint64_t min = AT_WHEEL_NEVER;
        for (int j = 0; j < N; j++)
            if (at__timer_pending(&r[j].t) && r[j].t.expires < min)
                min = r[j].t.expires;
        uint64_t next = at__wheel_next(w);
        ck_assert_uint_eq(at__wheel_earliest(w), min);
        ck_assert_uint_le(next, min);
        ck_assert_uint_ge(next, at__wheel_now(w));
        ck_assert_uint_eq(at__wheel_earliest(w), min); /* cached answer too */
        if (round % 500 == 0)
            ck_assert_int_eq(at__wheel_check(w), 0);
    }
    at__wheel_free(w);
}
END_TEST

static void count_fire(at_timer *t, void *ud)
{
    (void)t;
    ++*(size_t *)ud;
}

START_TEST(a_million_armed_timers_allocate_nothing)
{
    enum { N = 1000000 };
    rec *r = malloc(N * sizeof *r);
    ck_assert_ptr_nonnull(r);
    uint64_t seed = 1;
    at_wheel *w = fresh(0);
    recs_init(r, N);
    /* glibc's count of bytes in use (0 under sanitizers, which still holds). */
    size_t before = mallinfo2().uordblks;
    for (int i = 0; i < N; i++)
        at__wheel_add(w, &r[i].t, rng_next(&seed) % 60000);
    ck_assert_uint_eq(mallinfo2().uordblks, before);
    ck_assert_uint_eq(at__wheel_count(w), N);
    ck_assert_int_eq(at__wheel_check(w), 0);
    size_t fired = 0, calls = 0;
    for (uint64_t t = 0; t <= 60000; t += 1000)
        fired += at__wheel_advance(w, t, count_fire, &calls);
    ck_assert_uint_eq(fired, N);
    ck_assert_uint_eq(calls, N);
    ck_assert_uint_eq(at__wheel_count(w), 0);
    at__wheel_free(w);
    free(r);
}
END_TEST

START_TEST(advancing_an_empty_wheel_by_years_does_no_work)
{
    at_wheel *w = fresh(42);
    uint64_t years = UINT64_C(10) * 365 * 24 * 3600 * 1000;
    ck_assert_uint_eq(at__wheel_advance(w, 42 + years, log_fire, NULL), 0);
    ck_assert_uint_eq(at__wheel_now(w), 42 + years);
    ck_assert_uint_eq(at__wheel_next(w), AT_WHEEL_NEVER);
    ck_assert_int_eq(at__wheel_check(w), 0);
    at__wheel_free(w);
}
END_TEST

/* ---- differential test against the reference heap ---- */

enum { POOL = 4096 };

enum { ACT_NONE, ACT_READD_SELF, ACT_READD_OTHER, ACT_CANCEL_OTHER, ACT_READD_SELF_PAST, ACT_COUNT };

typedef struct mrec {
    at_timer t;     /* used by the wheel model */
    minheap_node h; /* used by the reference model */
    int action, target;
    uint64_t arg;
} mrec;

typedef struct model {
    int is_wheel;
    at_wheel *w;
    minheap h;
    uint64_t rtime; /* reference model's time */
    mrec *recs;
    size_t nlog;
    int *log_id;
    uint64_t *log_at;
    size_t log_cap;
} model;

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

static uint64_t sat_sub(uint64_t a, uint64_t b)
{
    return b > a ? 0 : a - b;
}

static uint64_t m_now(const model *m)
{
    return m->is_wheel ? at__wheel_now(m->w) : m->rtime;
}

static void m_add(model *m, int id, uint64_t expires, int action, int target, uint64_t arg)
{
    mrec *r = &m->recs[id];
    r->action = action;
    r->target = target;
    r->arg = arg;
    if (m->is_wheel) {
        at__wheel_add(m->w, &r->t, expires);
    } else {
        if (expires < m->rtime)
            expires = m->rtime; /* the clamp rule of wheel.h */
        ck_assert_int_eq(minheap_push(&m->h, &r->h, expires), 0);
    }
}

static void m_del(model *m, int id)
{
    if (m->is_wheel)
        at__wheel_del(m->w, &m->recs[id].t);
    else
        minheap_remove(&m->h, &m->recs[id].h);
}

static void m_fired(model *m, int id)
{
    mrec *r = &m->recs[id];
    uint64_t now = m_now(m);
    if (m->nlog == m->log_cap) {
        m->log_cap *= 2;
        m->log_id = realloc(m->log_id, m->log_cap * sizeof *m->log_id);
        m->log_at = realloc(m->log_at, m->log_cap * sizeof *m->log_at);
        ck_assert(m->log_id && m->log_at);
    }
    m->log_id[m->nlog] = id;
    m->log_at[m->nlog] = now;
    m->nlog++;
    int a = r->action;
    r->action = ACT_NONE; /* one shot, so chains end */
    switch (a) {
    case ACT_READD_SELF:
        m_add(m, id, sat_add(now, r->arg), ACT_NONE, 0, 0);
        break;
    case ACT_READD_OTHER:
        m_add(m, r->target, sat_add(now, r->arg), ACT_NONE, 0, 0);
        break;
    case ACT_CANCEL_OTHER:
        m_del(m, r->target);
        break;
    case ACT_READD_SELF_PAST:
        m_add(m, id, sat_sub(now, r->arg), ACT_NONE, 0, 0);
        break;
    default:
        break;
    }
}

static void wheel_model_fire(at_timer *t, void *ud)
{
    model *m = ud;
    mrec *r = container_of(t, mrec, t);
    m_fired(m, (int)(r - m->recs));
}

static void m_advance(model *m, uint64_t now)
{
    if (m->is_wheel) {
        at__wheel_advance(m->w, now, wheel_model_fire, m);
        return;
    }
    minheap_node *x;
    while ((x = minheap_top(&m->h)) && x->expires <= now) {
        minheap_pop(&m->h);
        m->rtime = x->expires;
        m_fired(m, (int)(container_of(x, mrec, h) - m->recs));
    }
    if (now > m->rtime)
        m->rtime = now;
}

static void m_init(model *m, int is_wheel, uint64_t start)
{
    m->is_wheel = is_wheel;
    m->rtime = start;
    m->w = NULL;
    if (is_wheel) {
        m->w = at__wheel_new(start);
        ck_assert_ptr_nonnull(m->w);
    } else {
        ck_assert_int_eq(minheap_init(&m->h, POOL), 0);
    }
    m->recs = calloc(POOL, sizeof *m->recs);
    ck_assert_ptr_nonnull(m->recs);
    for (int i = 0; i < POOL; i++) {
        at__timer_init(&m->recs[i].t);
        minheap_node_init(&m->recs[i].h);
    }
    m->nlog = 0;
    m->log_cap = 1024;
    m->log_id = malloc(m->log_cap * sizeof *m->log_id);
    m->log_at = malloc(m->log_cap * sizeof *m->log_at);
    ck_assert(m->log_id && m->log_at);
}

static void m_free(model *m)
{
    if (m->is_wheel)
        at__wheel_free(m->w);
    else
        minheap_free(&m->h);
    free(m->recs);
    free(m->log_id);
    free(m->log_at);
}

/* An expiry for a new timer: mostly near, some years ahead, a few at the very
 * top of the range, some already past. */
static uint64_t random_expiry(uint64_t *s, uint64_t now)
{
    uint64_t k = rng_next(s) % 100, x = rng_next(s);
    if (k < 40)
        return sat_add(now, x % 65);
    if (k < 60)
        return sat_add(now, x % 4097);
    if (k < 75)
        return sat_add(now, x % (UINT64_C(1) << 20));
    if (k < 85)
        return sat_add(now, x % (UINT64_C(1) << 40));
    if (k < 88)
        return UINT64_MAX - x % (UINT64_C(1) << 20);
    if (k < 90)
        return sat_add(now, x); /* anywhere up to the end of time */
    return sat_sub(now, x % 2000);
}

/* How far the next advance goes: often not at all or a little, sometimes a
 * long way (up to 2^big ms); rarely a jump of 2^60 when the range allows. */
static uint64_t random_step(uint64_t *s, const at_wheel *w, unsigned big)
{
    uint64_t k = rng_next(s) % 10000, x = rng_next(s), now = at__wheel_now(w);
    if (k < 2500)
        return 0;
    if (k < 6500)
        return x % 65;
    if (k < 8500)
        return x % 5000;
    if (k < 9300)
        return x % (UINT64_C(1) << 24);
    if (k < 9700)
        return x % (UINT64_C(1) << big);
    if (k < 9999) { /* exactly to the next event, as a sleeping caller would */
        uint64_t next = at__wheel_next(w);
        return next == AT_WHEEL_NEVER ? 0 : next - now;
    }
    return UINT64_MAX - now > (UINT64_C(1) << 62) ? (UINT64_C(1) << 60) + x % (UINT64_C(1) << 58) : 0;
}

static size_t differential_ops(void)
{
    const char *s = getenv("AT_WHEEL_OPS");
    if (s && *s) {
        long long v = atoll(s);
        if (v > 0)
            return (size_t)v;
    }
    return 1000000;
}

/* Fixed seeds, each from a wheel time near a different level boundary; the
 * last starts close to the end of time, so its long jumps are shorter. */
static const struct {
    uint64_t seed, start;
    unsigned big; /* log2 of the longest ordinary jump */
} diff_runs[] = {
    {1, 0, 42},
    {20240601, (UINT64_C(1) << 36) - 3000, 42},
    {987654321, (UINT64_C(1) << 60) - 100000, 42},
    {4242, UINT64_MAX - (UINT64_C(1) << 45), 30},
};

#define DIFF_RUNS ((int)(sizeof diff_runs / sizeof *diff_runs))

START_TEST(wheel_fires_the_same_timers_at_the_same_times_in_the_same_order_as_a_heap)
{
    uint64_t seed = diff_runs[_i].seed, s = seed;
    size_t ops = differential_ops() / DIFF_RUNS + 1;
    model wm, hm;
    m_init(&wm, 1, diff_runs[_i].start);
    m_init(&hm, 0, diff_runs[_i].start);
    for (size_t op = 0; op < ops; op++) {
        uint64_t k = rng_next(&s) % 100;
        int id = (int)(rng_next(&s) % POOL);
        if (k < 50) {
            uint64_t e = random_expiry(&s, m_now(&wm));
            int action = ACT_NONE, target = 0;
            uint64_t arg = 0;
            if (rng_next(&s) % 100 < 25) {
                action = 1 + (int)(rng_next(&s) % (ACT_COUNT - 1));
                target = (int)(rng_next(&s) % POOL);
                arg = rng_next(&s) % 4 ? rng_next(&s) % 8 : rng_next(&s) % 100000;
            }
            m_add(&wm, id, e, action, target, arg);
            m_add(&hm, id, e, action, target, arg);
        } else if (k < 65) {
            m_del(&wm, id);
            m_del(&hm, id);
        } else {
            uint64_t now = sat_add(m_now(&wm), random_step(&s, wm.w, diff_runs[_i].big));
            if (rng_next(&s) % 50 == 0)
                now = sat_sub(m_now(&wm), rng_next(&s) % 100); /* backwards */
            m_advance(&wm, now);
            m_advance(&hm, now);
            ck_assert_msg(wm.nlog == hm.nlog, "seed %llu op %zu: wheel fired %zu, heap %zu",
                          (unsigned long long)seed, op, wm.nlog, hm.nlog);
            for (size_t i = 0; i < wm.nlog; i++)
                ck_assert_msg(wm.log_id[i] == hm.log_id[i] && wm.log_at[i] == hm.log_at[i],
                              "seed %llu op %zu: fire %zu: wheel timer %d at %llu, heap timer %d at %llu",
                              (unsigned long long)seed, op, i, wm.log_id[i], (unsigned long long)wm.log_at[i],
                              hm.log_id[i], (unsigned long long)hm.log_at[i]);
            wm.nlog = hm.nlog = 0;
        }
        ck_assert_msg(m_now(&wm) == m_now(&hm) && at__wheel_count(wm.w) == minheap_count(&hm.h),
                      "seed %llu op %zu: time or count differ", (unsigned long long)seed, op);
        if (op % 4 == 0) {
            minheap_node *top = minheap_top(&hm.h);
            uint64_t want = top ? top->expires : AT_WHEEL_NEVER;
            uint64_t next = at__wheel_next(wm.w);
            ck_assert_msg(at__wheel_earliest(wm.w) == want && next <= want && next >= m_now(&wm),
                          "seed %llu op %zu: earliest %llu next %llu, heap minimum %llu",
                          (unsigned long long)seed, op, (unsigned long long)at__wheel_earliest(wm.w),
                          (unsigned long long)next, (unsigned long long)want);
        }
        if (op % 1009 == 0) {
            int rc = at__wheel_check(wm.w);
            ck_assert_msg(rc == 0, "seed %llu op %zu: at__wheel_check %d", (unsigned long long)seed, op, rc);
        }
    }
    ck_assert_int_eq(at__wheel_check(wm.w), 0);
    m_free(&wm);
    m_free(&hm);
}
END_TEST

static Suite *wheel_suite(void)
{
    Suite *s = suite_create("wheel");
    TCase *tc = tcase_create("rules");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, zero_delay_timer_fires_at_the_current_time);
    tcase_add_test(tc, past_due_timer_is_clamped_to_now_and_fires_after_those_already_due);
    tcase_add_test(tc, equal_due_times_fire_in_insertion_order);
    tcase_add_test(tc, cancel_from_callback_of_timer_in_same_batch_stops_it);
    tcase_add_test(tc, cancel_from_callback_of_later_timer_stops_it);
    tcase_add_test(tc, readd_self_from_callback_at_same_time_fires_again_after_the_batch);
    tcase_add_test(tc, readd_self_from_callback_in_the_past_is_clamped_to_now);
    tcase_add_test(tc, readd_self_from_callback_later_fires_at_the_new_time);
    tcase_add_test(tc, timers_across_level_boundaries_fire_exactly_on_time);
    tcase_add_test(tc, largest_delay_up_to_uint64_max_fires_exactly_on_time);
    tcase_add_test(tc, advance_backwards_fires_nothing_and_keeps_the_time);
    tcase_add_test(tc, next_is_never_after_earliest_and_earliest_is_exact);
    tcase_add_test(tc, advancing_an_empty_wheel_by_years_does_no_work);
    suite_add_tcase(s, tc);

    TCase *big = tcase_create("scale");
    tcase_set_timeout(big, 600); /* valgrind and sanitizer jobs are slow */
    tcase_add_test(big, a_million_armed_timers_allocate_nothing);
    tcase_add_loop_test(big, wheel_fires_the_same_timers_at_the_same_times_in_the_same_order_as_a_heap, 0,
                        DIFF_RUNS);
    suite_add_tcase(s, big);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(wheel_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
