/*
 * conformance_sched.c - conformance: stored schedules and the scheduler
 * (docs/SEMANTICS.md "Schedules"; at_schedule_add(3), at_scheduler_start(3)).
 *
 * On a manual clock the tests move time by hand and wait (in real time) only
 * for the scheduler thread to act; on a real clock (Redis) they use
 * one-second schedules and assert what holds whatever the phase of the
 * second the test started in: ticks are whole seconds, one job per tick,
 * never early.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVERY_SECOND "* * * * * *"

static at_schedule *new_sched(const char *name, const char *expr, const char *queue)
{
    at_schedule *s = NULL;
    int rc = at_schedule_new(&s, name, expr, NULL, "tick");
    ck_assert_msg(rc == 0, "at_schedule_new: %s (%s)", at_err_name(rc), at_last_error());
    if (queue) {
        at_opts *o = ct_opts(queue);
        ck_assert_int_eq(at_schedule_set_opts(s, o), 0);
    }
    return s;
}

static void add(at_schedule *s)
{
    int rc = at_schedule_add(NULL, ct_store, s);
    ck_assert_msg(rc == 0, "at_schedule_add: %s", at_err_name(rc));
}

static at_schedule *get(const char *name)
{
    at_schedule *s = NULL;
    int rc = at_schedule_get(&s, ct_store, name);
    ck_assert_msg(rc == 0, "at_schedule_get(%s): %s", name, at_err_name(rc));
    return s;
}

/* ------------------------------------------------------------ storage */

START_TEST(added_schedule_reads_back_whole)
{
    static const char payload[] = {'a', 0, 'b', 0, 'c'};
    at_schedule *s = NULL;
    ck_assert_int_eq(at_schedule_new(&s, CT_Q("s"), "*/5 9-17 * * MON-FRI", "Europe/Berlin", "report"), 0);
    ck_assert_int_eq(at_schedule_set_payload(s, payload, sizeof payload), 0);
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set(o, AT_OPT_PRIORITY, 7);
    ck_assert_int_eq(at_schedule_set_opts(s, o), 0);
    ck_assert_int_eq(at_schedule_set_misfire(s, AT_MISFIRE_ALL, 2500, 3), 0);
    int32_t created = -1;
    int64_t t0 = ct_now();
    ck_assert_int_eq(at_schedule_add(&created, ct_store, s), 0);
    int64_t t1 = ct_now();
    ck_assert_int_eq(created, 1);

    at_schedule *g = get(CT_Q("s"));
    ck_assert_str_eq(at_schedule_name(g), CT_Q("s"));
    ck_assert_str_eq(at_schedule_expr(g), "*/5 9-17 * * MON-FRI");
    ck_assert_str_eq(at_schedule_tz(g), "Europe/Berlin");
    ck_assert_str_eq(at_schedule_type(g), "report");
    ck_assert_str_eq(at_schedule_queue(g), CT_Q("q"));
    size_t len = 0;
    const void *p = at_schedule_payload(g, &len);
    ck_assert_uint_eq(len, sizeof payload);
    ck_assert_int_eq(memcmp(p, payload, len), 0);
    int64_t grace = 0;
    int32_t cap = 0;
    ck_assert_int_eq(at_schedule_misfire(g, &grace, &cap), AT_MISFIRE_ALL);
    ck_assert_int_eq(grace, 2500);
    ck_assert_int_eq(cap, 3);
    ck_assert_int_eq(at_schedule_paused(g), 0);
    CT_ASSERT_TIME(at_schedule_time(g, AT_SCHEDULE_TIME_CREATED), t0, t1);
    CT_ASSERT_TIME(at_schedule_time(g, AT_SCHEDULE_TIME_UPDATED), t0, t1);
    ck_assert_int_eq(at_schedule_time(g, AT_SCHEDULE_TIME_LAST_FIRE), AT_TIME_NONE);
    ck_assert_ptr_null(at_schedule_last_job_id(g));
    int64_t a = 0, b = 0;
    ck_assert_int_eq(at_schedule_next(&a, g, t0), 0);
    ck_assert_int_eq(at_cron_next(&b, "*/5 9-17 * * MON-FRI", "Europe/Berlin", t0), 0);
    ck_assert_int_eq(a, b);
    at_schedule_free(g);
    at_schedule_free(s);
}
END_TEST

START_TEST(default_zone_is_utc_and_default_queue_is_default)
{
    at_schedule *s = new_sched(CT_Q("s"), "@hourly", NULL);
    add(s);
    at_schedule *g = get(CT_Q("s"));
    ck_assert_str_eq(at_schedule_tz(g), "UTC");
    ck_assert_str_eq(at_schedule_queue(g), "default");
    ck_assert_int_eq(at_schedule_misfire(g, NULL, NULL), AT_MISFIRE_ONCE);
    at_schedule_free(g);
    at_schedule_free(s);
}
END_TEST

START_TEST(adding_an_existing_name_replaces_it)
{
    at_schedule *a = new_sched(CT_Q("s"), "@hourly", NULL);
    at_schedule *b = new_sched(CT_Q("s"), "@daily", NULL);
    int32_t created = -1;
    ck_assert_int_eq(at_schedule_add(&created, ct_store, a), 0);
    ck_assert_int_eq(created, 1);
    ct_advance(5);
    ck_assert_int_eq(at_schedule_add(&created, ct_store, b), 0);
    ck_assert_int_eq(created, 0);
    at_schedule **v = NULL;
    size_t n = 0;
    ck_assert_int_eq(at_schedule_list(&v, &n, ct_store), 0);
    size_t same = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(at_schedule_name(v[i]), CT_Q("s")) == 0) {
            same++;
            ck_assert_str_eq(at_schedule_expr(v[i]), "@daily");
        }
    ck_assert_uint_eq(same, 1);
    at_schedule_list_free(v, n);
    at_schedule_free(a);
    at_schedule_free(b);
}
END_TEST

START_TEST(replacing_keeps_paused_and_created_and_moves_updated_only_on_change)
{
    at_schedule *a = new_sched(CT_Q("s"), "@hourly", NULL);
    add(a);
    at_schedule *g = get(CT_Q("s"));
    int64_t created = at_schedule_time(g, AT_SCHEDULE_TIME_CREATED);
    int64_t updated = at_schedule_time(g, AT_SCHEDULE_TIME_UPDATED);
    at_schedule_free(g);
    ck_assert_int_eq(at_schedule_pause(ct_store, CT_Q("s")), 0);
    ct_advance(20);
    add(a); /* the same definition: nothing changes */
    g = get(CT_Q("s"));
    ck_assert_int_eq(at_schedule_paused(g), 1);
    ck_assert_int_eq(at_schedule_time(g, AT_SCHEDULE_TIME_UPDATED), updated);
    at_schedule_free(g);
    at_schedule *b = new_sched(CT_Q("s"), "@daily", NULL);
    int64_t t0 = ct_now();
    add(b);
    int64_t t1 = ct_now();
    g = get(CT_Q("s"));
    ck_assert_int_eq(at_schedule_paused(g), 1);
    ck_assert_int_eq(at_schedule_time(g, AT_SCHEDULE_TIME_CREATED), created);
    CT_ASSERT_TIME(at_schedule_time(g, AT_SCHEDULE_TIME_UPDATED), t0, t1);
    ck_assert_int_gt(at_schedule_time(g, AT_SCHEDULE_TIME_UPDATED), updated);
    at_schedule_free(g);
    at_schedule_free(a);
    at_schedule_free(b);
}
END_TEST

START_TEST(list_is_in_name_order)
{
    const char *names[] = {"c", "a", "b", "a.b", "B"};
    char full[5][200];
    for (size_t i = 0; i < 5; i++) {
        snprintf(full[i], sizeof full[i], "%s", CT_Q(names[i]));
        at_schedule *s = new_sched(full[i], "@daily", NULL);
        add(s);
        at_schedule_free(s);
    }
    at_schedule **v = NULL;
    size_t n = 0;
    ck_assert_int_eq(at_schedule_list(&v, &n, ct_store), 0);
    ck_assert_uint_ge(n, 5);
    size_t mine = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            ck_assert_int_lt(strcmp(at_schedule_name(v[i - 1]), at_schedule_name(v[i])), 0);
        for (size_t k = 0; k < 5; k++)
            mine += strcmp(at_schedule_name(v[i]), full[k]) == 0;
    }
    ck_assert_uint_eq(mine, 5);
    at_schedule_list_free(v, n);
}
END_TEST

START_TEST(remove_pause_resume_and_get_of_unknown_names_are_notfound)
{
    ck_assert_int_eq(at_schedule_remove(ct_store, CT_Q("none")), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_schedule_pause(ct_store, CT_Q("none")), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_schedule_resume(ct_store, CT_Q("none")), AT_ERR_NOTFOUND);
    at_schedule *g = (at_schedule *)1;
    ck_assert_int_eq(at_schedule_get(&g, ct_store, CT_Q("none")), AT_ERR_NOTFOUND);
    ck_assert_ptr_null(g);
}
END_TEST

START_TEST(removed_schedule_is_gone)
{
    at_schedule *s = new_sched(CT_Q("s"), "@daily", NULL);
    add(s);
    ck_assert_int_eq(at_schedule_remove(ct_store, CT_Q("s")), 0);
    at_schedule *g = NULL;
    ck_assert_int_eq(at_schedule_get(&g, ct_store, CT_Q("s")), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_schedule_remove(ct_store, CT_Q("s")), AT_ERR_NOTFOUND);
    int32_t created = 0;
    ck_assert_int_eq(at_schedule_add(&created, ct_store, s), 0);
    ck_assert_int_eq(created, 1);
    at_schedule_free(s);
}
END_TEST

START_TEST(pause_and_resume_flip_the_flag)
{
    at_schedule *s = new_sched(CT_Q("s"), "@daily", NULL);
    add(s);
    ck_assert_int_eq(at_schedule_pause(ct_store, CT_Q("s")), 0);
    ck_assert_int_eq(at_schedule_pause(ct_store, CT_Q("s")), 0);
    at_schedule *g = get(CT_Q("s"));
    ck_assert_int_eq(at_schedule_paused(g), 1);
    at_schedule_free(g);
    ck_assert_int_eq(at_schedule_resume(ct_store, CT_Q("s")), 0);
    g = get(CT_Q("s"));
    ck_assert_int_eq(at_schedule_paused(g), 0);
    at_schedule_free(g);
    at_schedule_free(s);
}
END_TEST

START_TEST(bad_definitions_are_refused_with_their_codes)
{
    at_schedule *s = (at_schedule *)1;
    ck_assert_int_eq(at_schedule_new(&s, "bad name", "@daily", NULL, "t"), AT_ERR_NAME);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(at_schedule_new(&s, "n", "@daily", NULL, "bad type"), AT_ERR_NAME);
    ck_assert_int_eq(at_schedule_new(&s, "n", "61 * * * *", NULL, "t"), AT_ERR_INVAL);
    ck_assert_ptr_nonnull(strstr(at_last_error(), "minute"));
    ck_assert_int_eq(at_schedule_new(&s, "n", "@daily", "Mars/Olympus_Mons", "t"), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_schedule_new(&s, "n", "0 0 30 2 *", NULL, "t"), AT_ERR_RANGE);
    ck_assert_int_eq(at_schedule_new(&s, "n", NULL, NULL, "t"), AT_ERR_INVAL);
    ck_assert_int_eq(at_schedule_new(NULL, "n", "@daily", NULL, "t"), AT_ERR_INVAL);

    ck_assert_int_eq(at_schedule_new(&s, "n", "@daily", NULL, "t"), 0);
    at_opts *o = ct_opts(NULL);
    ct_set(o, AT_OPT_DELAY_MS, 5);
    ck_assert_int_eq(at_schedule_set_opts(s, o), AT_ERR_INVAL);
    at_opts *k = ct_opts(NULL);
    ct_set_str(k, AT_OPT_IDEMPOTENCY_KEY, "k");
    ck_assert_int_eq(at_schedule_set_opts(s, k), AT_ERR_INVAL);
    ck_assert_int_eq(at_schedule_set_misfire(s, 7, 0, 1), AT_ERR_INVAL);
    ck_assert_int_eq(at_schedule_set_misfire(s, AT_MISFIRE_ALL, -1, 1), AT_ERR_RANGE);
    ck_assert_int_eq(at_schedule_set_misfire(s, AT_MISFIRE_ALL, 0, 0), AT_ERR_RANGE);
    ck_assert_int_eq(at_schedule_set_misfire(s, AT_MISFIRE_ALL, 0, 10001), AT_ERR_RANGE);
    ck_assert_int_eq(at_schedule_set_payload(s, NULL, 3), AT_ERR_INVAL);
    /* Refused setters left the definition as it was. */
    ck_assert_int_eq(at_schedule_misfire(s, NULL, NULL), AT_MISFIRE_ONCE);
    ck_assert_int_eq(at_schedule_add(NULL, ct_store, NULL), AT_ERR_INVAL);
    ck_assert_int_eq(at_schedule_add(NULL, NULL, s), AT_ERR_INVAL);
    ck_assert_int_eq(at_schedule_remove(ct_store, "bad name"), AT_ERR_NAME);
    at_schedule_free(s);
}
END_TEST

START_TEST(template_over_the_store_limit_is_refused_at_add)
{
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_MAX_PAYLOAD, 4), 0);
    at_schedule *s = new_sched(CT_Q("s"), "@daily", NULL);
    ck_assert_int_eq(at_schedule_set_payload(s, "12345", 5), 0);
    ck_assert_int_eq(at_schedule_add(NULL, ct_store, s), AT_ERR_TOOBIG);
    at_schedule *g = NULL;
    ck_assert_int_eq(at_schedule_get(&g, ct_store, CT_Q("s")), AT_ERR_NOTFOUND);
    at_schedule_free(s);
}
END_TEST

/* ---------------------------------------------------------- scheduler */

/* Jobs of `queue` (any state), oldest id first; *n_out of them, kept. */
static size_t jobs_of(const char *queue, at_job **out, size_t max)
{
    char cursor[AT_CURSOR_SIZE] = "";
    size_t total = 0;
    do {
        at_job *page[100];
        size_t n = 0;
        char next[AT_CURSOR_SIZE];
        ck_assert_int_eq(at_list(page, &n, next, ct_store, queue, AT_STATE_ANY, cursor, 100), 0);
        for (size_t i = 0; i < n; i++) {
            ct_keep_job(page[i]);
            if (total < max)
                out[total] = page[i];
            total++;
        }
        memcpy(cursor, next, sizeof cursor);
    } while (cursor[0]);
    return total;
}

/* Wait (real time, up to 5 s) until `queue` holds at least `n` jobs. */
static size_t wait_jobs(const char *queue, size_t n)
{
    int64_t end = ct_mono_ms() + 5000;
    size_t have;
    for (;;) {
        at_job *tmp[1];
        have = jobs_of(queue, tmp, 0);
        if (have >= n || ct_mono_ms() > end)
            return have;
        ct_sleep_real(5);
    }
}

static int by_run_at(const void *a, const void *b)
{
    int64_t x = at_job_time(*(at_job *const *)a, AT_JOB_TIME_RUN_AT);
    int64_t y = at_job_time(*(at_job *const *)b, AT_JOB_TIME_RUN_AT);
    return (x > y) - (x < y);
}

/* The run_at of every job of `queue`, sorted, must be distinct whole
 * seconds one apart (one job per tick of EVERY_SECOND, none missing);
 * returns how many and the earliest and latest through the pointers. */
static size_t check_ticks(const char *queue, const char *sched, int64_t *first, int64_t *last)
{
    at_job *v[256];
    size_t n = jobs_of(queue, v, 256);
    ck_assert_uint_le(n, 256);
    qsort(v, n, sizeof *v, by_run_at);
    for (size_t i = 0; i < n; i++) {
        int64_t t = at_job_time(v[i], AT_JOB_TIME_RUN_AT);
        ck_assert_int_eq(t % 1000, 0);
        if (i > 0)
            ck_assert_int_eq(t - at_job_time(v[i - 1], AT_JOB_TIME_RUN_AT), 1000);
        char key[300];
        snprintf(key, sizeof key, "at:cron:%s:%lld", sched, (long long)t);
        ck_assert_ptr_nonnull(at_job_idempotency_key(v[i]));
        ck_assert_str_eq(at_job_idempotency_key(v[i]), key);
        ck_assert_str_eq(at_job_type(v[i]), "tick");
        /* Never created before its tick. */
        ck_assert_int_ge(at_job_time(v[i], AT_JOB_TIME_CREATED), t);
    }
    if (n > 0) {
        *first = at_job_time(v[0], AT_JOB_TIME_RUN_AT);
        *last = at_job_time(v[n - 1], AT_JOB_TIME_RUN_AT);
    }
    return n;
}

static at_scheduler *start(void)
{
    at_scheduler *s = NULL;
    int rc = at_scheduler_start(&s, ct_store);
    ck_assert_msg(rc == 0, "at_scheduler_start: %s", at_err_name(rc));
    return s;
}

/* Move time by `ms` in steps a scheduler can follow (manual clock), or
 * sleep (real clock). */
static void run_for(int64_t ms)
{
    for (int64_t done = 0; done < ms; done += 250) {
        ct_advance(ms - done < 250 ? ms - done : 250);
        if (ct_manual())
            ct_sleep_real(2);
    }
}

START_TEST(scheduler_makes_one_job_per_tick)
{
    at_schedule *s = new_sched(CT_Q("s"), EVERY_SECOND, CT_Q("q"));
    add(s);
    int64_t added = ct_now();
    at_scheduler *sc = start();
    if (ct_manual()) {
        for (int i = 1; i <= 3; i++) {
            int64_t tick = (added / 1000 + i) * 1000;
            ct_advance(tick - ct_now());
            ck_assert_uint_eq(wait_jobs(CT_Q("q"), (size_t)i), (size_t)i);
        }
    } else {
        ck_assert_uint_ge(wait_jobs(CT_Q("q"), 3), 3);
    }
    at_scheduler_stop(sc);
    int64_t first = 0, last = 0;
    size_t n = check_ticks(CT_Q("q"), CT_Q("s"), &first, &last);
    ck_assert_uint_ge(n, 3);
    ck_assert_int_eq(first, (added / 1000 + 1) * 1000);
    at_schedule *g = get(CT_Q("s"));
    ck_assert_int_eq(at_schedule_time(g, AT_SCHEDULE_TIME_LAST_FIRE), last);
    ck_assert_ptr_nonnull(at_schedule_last_job_id(g));
    at_job *j = ct_get(at_schedule_last_job_id(g));
    ck_assert_int_eq(at_job_time(j, AT_JOB_TIME_RUN_AT), last);
    at_schedule_free(g);
    at_schedule_free(s);
}
END_TEST

START_TEST(scheduler_fires_on_the_tick_not_before)
{
    if (!ct_manual())
        return; /* exactness needs the manual clock; the real one is covered by the bench */
    at_schedule *s = new_sched(CT_Q("s"), EVERY_SECOND, CT_Q("q"));
    add(s);
    at_scheduler *sc = start();
    int64_t tick = (ct_now() / 1000 + 1) * 1000;
    ct_advance(tick - 1 - ct_now());
    ct_sleep_real(50);
    at_job *tmp[1];
    ck_assert_uint_eq(jobs_of(CT_Q("q"), tmp, 0), 0);
    ct_advance(1);
    ck_assert_uint_eq(wait_jobs(CT_Q("q"), 1), 1);
    at_scheduler_stop(sc);
    at_schedule_free(s);
}
END_TEST

START_TEST(two_schedulers_elect_one_leader_and_make_one_job_per_tick)
{
    at_schedule *s = new_sched(CT_Q("s"), EVERY_SECOND, CT_Q("q"));
    add(s);
    at_scheduler *a = start(), *b = start();
    int64_t end = ct_mono_ms() + 3000;
    while (at_scheduler_is_leader(a) + at_scheduler_is_leader(b) == 0 && ct_mono_ms() < end)
        ct_sleep_real(2);
    ck_assert_int_eq(at_scheduler_is_leader(a) + at_scheduler_is_leader(b), 1);
    run_for(3000);
    ck_assert_uint_ge(wait_jobs(CT_Q("q"), 3), 3);
    ck_assert_int_eq(at_scheduler_is_leader(a) + at_scheduler_is_leader(b), 1);
    at_scheduler_stop(a);
    at_scheduler_stop(b);
    int64_t first, last;
    ck_assert_uint_ge(check_ticks(CT_Q("q"), CT_Q("s"), &first, &last), 3);
    at_schedule_free(s);
}
END_TEST

START_TEST(stopping_the_leader_hands_over_within_a_third_of_the_lease)
{
    at_scheduler *a = start();
    int64_t end = ct_mono_ms() + 3000;
    while (!at_scheduler_is_leader(a) && ct_mono_ms() < end)
        ct_sleep_real(2);
    ck_assert_int_eq(at_scheduler_is_leader(a), 1);
    at_scheduler *b = start();
    ct_sleep_real(50);
    ck_assert_int_eq(at_scheduler_is_leader(b), 0);
    at_scheduler_stop(a);
    /* The released lease is free now; a follower asks every third of the
     * lease period (at once in this process, which the stop kicks). */
    int64_t stopped = ct_mono_ms();
    end = stopped + 6000;
    while (!at_scheduler_is_leader(b) && ct_mono_ms() < end) {
        if (ct_manual())
            ct_advance(100);
        ct_sleep_real(5);
    }
    ck_assert_int_eq(at_scheduler_is_leader(b), 1);
    ck_assert_int_le(ct_mono_ms() - stopped, 5000 / 3 + 500);
    uint64_t elected = 0;
    at_scheduler_counters(b, NULL, NULL, NULL, &elected);
    ck_assert_uint_eq(elected, 1);
    at_scheduler_stop(b);
}
END_TEST

/* Leave a one-second schedule unattended for 3.5 s, then start a
 * scheduler: with grace 0 the ticks of that time are misfired. */
static size_t misfire_run(int32_t policy, int32_t cap, int64_t *first, int64_t *last, int64_t *started)
{
    at_schedule *s = new_sched(CT_Q("s"), EVERY_SECOND, CT_Q("q"));
    ck_assert_int_eq(at_schedule_set_misfire(s, policy, 0, cap), 0);
    add(s);
    at_schedule_free(s);
    ct_advance(3500);
    *started = ct_now();
    at_scheduler *sc = start();
    size_t want = policy == AT_MISFIRE_SKIP ? 0 : policy == AT_MISFIRE_ONCE ? 1 : (size_t)cap;
    if (want > 0)
        wait_jobs(CT_Q("q"), want);
    ct_sleep_real(100);
    uint64_t misfires = 0;
    at_scheduler_counters(sc, NULL, &misfires, NULL, NULL);
    at_scheduler_stop(sc);
    ck_assert_uint_ge(misfires, 1);
    /* Only the catch-up's jobs: later ticks of a real clock may follow. */
    at_job *v[64];
    size_t n = jobs_of(CT_Q("q"), v, 64), k = 0;
    qsort(v, n < 64 ? n : 64, sizeof *v, by_run_at);
    *first = *last = AT_TIME_NONE;
    for (size_t i = 0; i < n && i < 64; i++) {
        int64_t t = at_job_time(v[i], AT_JOB_TIME_RUN_AT);
        if (t >= *started)
            continue;
        if (k++ == 0)
            *first = t;
        *last = t;
    }
    return k;
}

START_TEST(misfire_skip_drops_missed_ticks)
{
    int64_t first, last, started;
    ck_assert_uint_eq(misfire_run(AT_MISFIRE_SKIP, 1, &first, &last, &started), 0);
}
END_TEST

START_TEST(misfire_once_fires_the_latest_missed_tick)
{
    int64_t first, last, started;
    ck_assert_uint_eq(misfire_run(AT_MISFIRE_ONCE, 1, &first, &last, &started), 1);
    ck_assert_int_eq(last, (started - 1) / 1000 * 1000);
}
END_TEST

START_TEST(misfire_all_fires_the_latest_cap_ticks)
{
    int64_t first, last, started;
    ck_assert_uint_eq(misfire_run(AT_MISFIRE_ALL, 2, &first, &last, &started), 2);
    ck_assert_int_eq(last, (started - 1) / 1000 * 1000);
    ck_assert_int_eq(first, last - 1000);
}
END_TEST

START_TEST(ticks_within_the_grace_all_fire_late)
{
    if (!ct_manual())
        return; /* needs time moved past ticks with no scheduler running */
    at_schedule *s = new_sched(CT_Q("s"), EVERY_SECOND, CT_Q("q"));
    ck_assert_int_eq(at_schedule_set_misfire(s, AT_MISFIRE_SKIP, 10000, 1), 0);
    add(s);
    int64_t added = ct_now();
    ct_advance(4500);
    at_scheduler *sc = start();
    ck_assert_uint_eq(wait_jobs(CT_Q("q"), 4), 4);
    at_scheduler_stop(sc);
    int64_t first, last;
    ck_assert_uint_eq(check_ticks(CT_Q("q"), CT_Q("s"), &first, &last), 4);
    ck_assert_int_eq(first, (added / 1000 + 1) * 1000);
    at_schedule_free(s);
}
END_TEST

START_TEST(paused_schedule_does_not_fire)
{
    at_schedule *s = new_sched(CT_Q("s"), EVERY_SECOND, CT_Q("q"));
    ck_assert_int_eq(at_schedule_set_misfire(s, AT_MISFIRE_SKIP, 0, 1), 0);
    add(s);
    ck_assert_int_eq(at_schedule_pause(ct_store, CT_Q("s")), 0);
    at_scheduler *sc = start();
    run_for(2500);
    at_job *tmp[1];
    ck_assert_uint_eq(jobs_of(CT_Q("q"), tmp, 0), 0);
    ck_assert_int_eq(at_schedule_resume(ct_store, CT_Q("s")), 0);
    run_for(1500);
    ck_assert_uint_ge(wait_jobs(CT_Q("q"), 1), 1);
    at_scheduler_stop(sc);
    at_schedule_free(s);
}
END_TEST

START_TEST(removed_schedule_stops_firing)
{
    at_schedule *s = new_sched(CT_Q("s"), EVERY_SECOND, CT_Q("q"));
    add(s);
    at_scheduler *sc = start();
    run_for(1200);
    ck_assert_uint_ge(wait_jobs(CT_Q("q"), 1), 1);
    ck_assert_int_eq(at_schedule_remove(ct_store, CT_Q("s")), 0);
    ct_sleep_real(20);
    at_job *tmp[1];
    size_t before = jobs_of(CT_Q("q"), tmp, 0);
    run_for(2200);
    ct_sleep_real(20);
    ck_assert_uint_eq(jobs_of(CT_Q("q"), tmp, 0), before);
    at_scheduler_stop(sc);
    at_schedule_free(s);
}
END_TEST

START_TEST(a_tick_already_enqueued_by_a_racing_scheduler_is_not_doubled)
{
    at_schedule *s = new_sched(CT_Q("s"), EVERY_SECOND, CT_Q("q"));
    add(s);
    int64_t tick = (ct_now() / 1000 + 1) * 1000;
    /* What another scheduler would have made for the next tick. */
    char key[300], id[AT_ID_SIZE];
    snprintf(key, sizeof key, "at:cron:%s:%lld", CT_Q("s"), (long long)tick);
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set_str(o, AT_OPT_IDEMPOTENCY_KEY, key);
    ct_set(o, AT_OPT_RUN_AT, tick);
    ck_assert_int_eq(at_enqueue(id, ct_store, "tick", NULL, 0, o), 0);
    at_scheduler *sc = start();
    run_for(tick - ct_now() + 100);
    ct_sleep_real(50);
    at_scheduler_stop(sc);
    at_job *v[16];
    size_t n = jobs_of(CT_Q("q"), v, 16), at_tick = 0;
    for (size_t i = 0; i < n && i < 16; i++)
        at_tick += at_job_time(v[i], AT_JOB_TIME_RUN_AT) == tick;
    ck_assert_uint_eq(at_tick, 1);
    at_schedule *g = get(CT_Q("s"));
    if (at_schedule_time(g, AT_SCHEDULE_TIME_LAST_FIRE) == tick)
        ck_assert_str_eq(at_schedule_last_job_id(g), id);
    at_schedule_free(g);
    at_schedule_free(s);
}
END_TEST

TCase *ct_tcase_schedules(void)
{
    TCase *tc = ct_tcase("schedules");
    tcase_add_test(tc, added_schedule_reads_back_whole);
    tcase_add_test(tc, default_zone_is_utc_and_default_queue_is_default);
    tcase_add_test(tc, adding_an_existing_name_replaces_it);
    tcase_add_test(tc, replacing_keeps_paused_and_created_and_moves_updated_only_on_change);
    tcase_add_test(tc, list_is_in_name_order);
    tcase_add_test(tc, remove_pause_resume_and_get_of_unknown_names_are_notfound);
    tcase_add_test(tc, removed_schedule_is_gone);
    tcase_add_test(tc, pause_and_resume_flip_the_flag);
    tcase_add_test(tc, bad_definitions_are_refused_with_their_codes);
    tcase_add_test(tc, template_over_the_store_limit_is_refused_at_add);
    return tc;
}

TCase *ct_tcase_scheduler(void)
{
    TCase *tc = ct_tcase("scheduler");
    tcase_add_test(tc, scheduler_makes_one_job_per_tick);
    tcase_add_test(tc, scheduler_fires_on_the_tick_not_before);
    tcase_add_test(tc, two_schedulers_elect_one_leader_and_make_one_job_per_tick);
    tcase_add_test(tc, stopping_the_leader_hands_over_within_a_third_of_the_lease);
    tcase_add_test(tc, misfire_skip_drops_missed_ticks);
    tcase_add_test(tc, misfire_once_fires_the_latest_missed_tick);
    tcase_add_test(tc, misfire_all_fires_the_latest_cap_ticks);
    tcase_add_test(tc, ticks_within_the_grace_all_fire_late);
    tcase_add_test(tc, paused_schedule_does_not_fire);
    tcase_add_test(tc, removed_schedule_stops_firing);
    tcase_add_test(tc, a_tick_already_enqueued_by_a_racing_scheduler_is_not_doubled);
    return tc;
}
