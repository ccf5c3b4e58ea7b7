/*
 * conformance_lifecycle.c - conformance: states, time, ordering, polling,
 * leases and ack (docs/SEMANTICS.md "States", "Time", "Ordering", "Leases
 * and delivery").
 *
 * On a manual clock the due and lease boundaries are checked to the
 * millisecond (nothing at due - 1, the job at due); on a real clock the same
 * tests check that nothing happens early and allow lateness.  Blocking polls
 * run in a second thread; the test thread only sleeps (really) to let that
 * thread reach its blocking call.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "conformance.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* -------------------------------------------------------------- states */

START_TEST(enqueue_without_delay_is_ready)
{
    char id[AT_ID_SIZE];
    ct_enqueue(id, ct_opts(CT_Q("q")));
    ck_assert_int_eq(ct_state(id), AT_STATE_READY);
}
END_TEST

START_TEST(enqueue_with_zero_delay_is_ready)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set(o, AT_OPT_DELAY_MS, 0);
    ct_enqueue(id, o);
    ck_assert_int_eq(ct_state(id), AT_STATE_READY);
}
END_TEST

START_TEST(enqueue_with_delay_is_scheduled)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set(o, AT_OPT_DELAY_MS, 60000);
    ct_enqueue(id, o);
    ck_assert_int_eq(ct_state(id), AT_STATE_SCHEDULED);
}
END_TEST

START_TEST(enqueue_with_future_run_at_is_scheduled_at_that_time)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    int64_t run_at = ct_now() + 60000;
    ct_set(o, AT_OPT_RUN_AT, run_at);
    ct_enqueue(id, o);
    ck_assert_int_eq(ct_state(id), AT_STATE_SCHEDULED);
    ck_assert_int_eq(at_job_time(ct_get(id), AT_JOB_TIME_RUN_AT), run_at);
}
END_TEST

START_TEST(enqueue_with_past_run_at_is_ready)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    int64_t run_at = ct_now() - 60000;
    ct_set(o, AT_OPT_RUN_AT, run_at);
    ct_enqueue(id, o);
    ck_assert_int_eq(ct_state(id), AT_STATE_READY);
    ck_assert_int_eq(at_job_time(ct_get(id), AT_JOB_TIME_RUN_AT), run_at);
}
END_TEST

START_TEST(enqueue_with_run_at_now_is_ready)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set(o, AT_OPT_RUN_AT, ct_now());
    ct_enqueue(id, o);
    ck_assert_int_eq(ct_state(id), AT_STATE_READY);
}
END_TEST

START_TEST(delay_becomes_run_at_by_the_store_clock)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    int64_t before, after;
    ct_set(o, AT_OPT_DELAY_MS, 5000);
    before = ct_now();
    ct_enqueue(id, o);
    after = ct_now();
    CT_ASSERT_TIME(at_job_time(ct_get(id), AT_JOB_TIME_RUN_AT), before + 5000, after + 5000);
}
END_TEST

START_TEST(delayed_job_is_not_claimable_before_it_is_due)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set(o, AT_OPT_DELAY_MS, 500);
    ct_enqueue(id, o);
    if (ct_manual())
        ct_advance(499); /* due - 1 ms */
    ck_assert_ptr_null(ct_try_claim(CT_Q("q")));
    ck_assert_int_eq(ct_state(id), AT_STATE_SCHEDULED);
}
END_TEST

START_TEST(delayed_job_is_claimable_when_due)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    at_job *j;
    ct_set(o, AT_OPT_DELAY_MS, 500);
    ct_enqueue(id, o);
    ct_advance(500); /* exactly due on a manual clock */
    j = ct_claim(CT_Q("q"));
    ck_assert_str_eq(at_job_id(j), id);
    ck_assert_int_ge(at_job_time(j, AT_JOB_TIME_STARTED), at_job_time(j, AT_JOB_TIME_RUN_AT));
}
END_TEST

START_TEST(scheduled_job_becomes_ready_when_due_without_a_poll)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set(o, AT_OPT_DELAY_MS, 300);
    ct_enqueue(id, o);
    ct_advance(300);
    ck_assert_int_eq(ct_state(id), AT_STATE_READY);
}
END_TEST

TCase *ct_tcase_states(void)
{
    TCase *tc = ct_tcase("states");
    tcase_add_test(tc, enqueue_without_delay_is_ready);
    tcase_add_test(tc, enqueue_with_zero_delay_is_ready);
    tcase_add_test(tc, enqueue_with_delay_is_scheduled);
    tcase_add_test(tc, enqueue_with_future_run_at_is_scheduled_at_that_time);
    tcase_add_test(tc, enqueue_with_past_run_at_is_ready);
    tcase_add_test(tc, enqueue_with_run_at_now_is_ready);
    tcase_add_test(tc, delay_becomes_run_at_by_the_store_clock);
    tcase_add_test(tc, delayed_job_is_not_claimable_before_it_is_due);
    tcase_add_test(tc, delayed_job_is_claimable_when_due);
    tcase_add_test(tc, scheduled_job_becomes_ready_when_due_without_a_poll);
    return tc;
}

/* ------------------------------------------------------------ ordering */

/* Poll up to `max` jobs of `queues` without blocking and check their ids
 * are exactly `expect` (n_expect of them), in that order. */
static void assert_poll_order(const char *const *queues, size_t nqueues, size_t max,
                              char (*expect)[AT_ID_SIZE], size_t n_expect)
{
    at_job *jobs[16];
    size_t n = 0;
    ck_assert_uint_le(max, 16);
    ck_assert_int_eq(at_poll(jobs, &n, ct_store, queues, nqueues, max, 0), 0);
    for (size_t i = 0; i < n; i++)
        ct_keep_job(jobs[i]);
    ck_assert_uint_eq(n, n_expect);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(strcmp(at_job_id(jobs[i]), expect[i]) == 0, "job %zu is %s, expected %s", i,
                      at_job_id(jobs[i]), expect[i]);
}

START_TEST(poll_returns_higher_priority_first)
{
    static const int prio[6] = {0, 5, -3, 5, 1000, -1000};
    static const int order[6] = {4, 1, 3, 0, 2, 5}; /* ties by enqueue order */
    char ids[6][AT_ID_SIZE], expect[6][AT_ID_SIZE];
    const char *q[1] = {CT_Q("q")};
    at_opts *o = ct_opts(q[0]);
    for (int i = 0; i < 6; i++) {
        ct_set(o, AT_OPT_PRIORITY, prio[i]);
        ct_enqueue(ids[i], o);
    }
    for (int i = 0; i < 6; i++)
        memcpy(expect[i], ids[order[i]], AT_ID_SIZE);
    assert_poll_order(q, 1, 10, expect, 6);
}
END_TEST

START_TEST(poll_orders_equal_priority_by_earlier_run_at)
{
    static const int64_t age[3] = {1000, 2000, 1500};
    char ids[3][AT_ID_SIZE], expect[3][AT_ID_SIZE];
    const char *q[1] = {CT_Q("q")};
    at_opts *o = ct_opts(q[0]);
    int64_t now = ct_now();
    for (int i = 0; i < 3; i++) {
        ct_set(o, AT_OPT_RUN_AT, now - age[i]);
        ct_enqueue(ids[i], o);
    }
    memcpy(expect[0], ids[1], AT_ID_SIZE);
    memcpy(expect[1], ids[2], AT_ID_SIZE);
    memcpy(expect[2], ids[0], AT_ID_SIZE);
    assert_poll_order(q, 1, 10, expect, 3);
}
END_TEST

START_TEST(poll_ranks_priority_above_earlier_run_at)
{
    char ids[2][AT_ID_SIZE], expect[2][AT_ID_SIZE];
    const char *q[1] = {CT_Q("q")};
    at_opts *o = ct_opts(q[0]);
    int64_t now = ct_now();
    ct_set(o, AT_OPT_RUN_AT, now - 100000);
    ct_enqueue(ids[0], o);
    ct_set(o, AT_OPT_RUN_AT, now - 1);
    ct_set(o, AT_OPT_PRIORITY, 1);
    ct_enqueue(ids[1], o);
    memcpy(expect[0], ids[1], AT_ID_SIZE);
    memcpy(expect[1], ids[0], AT_ID_SIZE);
    assert_poll_order(q, 1, 10, expect, 2);
}
END_TEST

START_TEST(poll_orders_equal_priority_and_run_at_by_enqueue_order)
{
    char ids[8][AT_ID_SIZE];
    const char *q[1] = {CT_Q("q")};
    at_opts *o = ct_opts(q[0]);
    ct_set(o, AT_OPT_RUN_AT, ct_now() - 100);
    for (int i = 0; i < 8; i++)
        ct_enqueue(ids[i], o);
    assert_poll_order(q, 1, 16, ids, 8);
}
END_TEST

START_TEST(poll_takes_queues_in_the_given_order)
{
    char a[AT_ID_SIZE], b[2][AT_ID_SIZE], expect[3][AT_ID_SIZE];
    /* Named "b" before "a": the given order counts, not the names. */
    const char *qs[2] = {CT_Q("b"), CT_Q("a")};
    at_opts *oa = ct_opts(CT_Q("a")), *ob = ct_opts(CT_Q("b"));
    ct_set(oa, AT_OPT_PRIORITY, AT_PRIORITY_MAX); /* strict: priority does not cross queues */
    ct_enqueue(a, oa);
    ct_enqueue(b[0], ob);
    ct_enqueue(b[1], ob);
    memcpy(expect[0], b[0], AT_ID_SIZE);
    memcpy(expect[1], b[1], AT_ID_SIZE);
    memcpy(expect[2], a, AT_ID_SIZE);
    assert_poll_order(qs, 2, 3, expect, 3);
}
END_TEST

START_TEST(poll_max_limits_the_count)
{
    const char *q = CT_Q("q");
    at_opts *o = ct_opts(q);
    for (int i = 0; i < 5; i++)
        ct_enqueue(NULL, o);
    ck_assert_uint_eq(ct_poll_count(q, 2), 2);
    ck_assert_uint_eq(ct_poll_count(q, 2), 2);
    ck_assert_uint_eq(ct_poll_count(q, 2), 1);
    ck_assert_uint_eq(ct_poll_count(q, 2), 0);
}
END_TEST

START_TEST(poll_claims_only_from_the_named_queues)
{
    char id[AT_ID_SIZE];
    ct_enqueue(id, ct_opts(CT_Q("a")));
    ck_assert_ptr_null(ct_try_claim(CT_Q("b")));
    ck_assert_int_eq(ct_state(id), AT_STATE_READY);
}
END_TEST

START_TEST(poll_without_queues_is_inval)
{
    char id[AT_ID_SIZE];
    at_job *jobs[1];
    size_t n = 0;
    const char *q[1] = {CT_Q("q")};
    ct_enqueue(id, ct_opts(q[0]));
    ck_assert_int_eq(at_poll(jobs, &n, ct_store, q, 0, 1, 0), AT_ERR_INVAL);
    ck_assert_int_eq(at_poll(jobs, &n, ct_store, NULL, 1, 1, 0), AT_ERR_INVAL);
    ck_assert_int_eq(ct_state(id), AT_STATE_READY);
}
END_TEST

START_TEST(poll_with_a_bad_queue_name_is_a_name_error)
{
    at_job *jobs[1];
    size_t n = 99;
    const char *q[2] = {CT_Q("q"), "bad name"};
    ct_enqueue(NULL, ct_opts(q[0]));
    ck_assert_int_eq(at_poll(jobs, &n, ct_store, q, 2, 1, 0), AT_ERR_NAME);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(ct_count(q[0], AT_STATE_READY), 1);
}
END_TEST

TCase *ct_tcase_ordering(void)
{
    TCase *tc = ct_tcase("ordering");
    tcase_add_test(tc, poll_returns_higher_priority_first);
    tcase_add_test(tc, poll_orders_equal_priority_by_earlier_run_at);
    tcase_add_test(tc, poll_ranks_priority_above_earlier_run_at);
    tcase_add_test(tc, poll_orders_equal_priority_and_run_at_by_enqueue_order);
    tcase_add_test(tc, poll_takes_queues_in_the_given_order);
    tcase_add_test(tc, poll_max_limits_the_count);
    tcase_add_test(tc, poll_claims_only_from_the_named_queues);
    tcase_add_test(tc, poll_without_queues_is_inval);
    tcase_add_test(tc, poll_with_a_bad_queue_name_is_a_name_error);
    return tc;
}

/* ------------------------------------------------------ blocking polls */

/* One blocking at_poll in a thread of its own.  No Check assertion runs in
 * that thread: it records what happened and the test thread asserts. */
struct poller {
    pthread_t thread;
    char queue[AT_NAME_MAX + 1];
    int64_t timeout_ms;
    int rc;
    size_t n;
    at_job *job;
    int64_t elapsed_ms;
    atomic_int done;
};

static void *poller_main(void *arg)
{
    struct poller *p = arg;
    const char *q[1] = {p->queue};
    int64_t t0 = ct_mono_ms();
    p->rc = at_poll(&p->job, &p->n, ct_store, q, 1, 1, p->timeout_ms);
    p->elapsed_ms = ct_mono_ms() - t0;
    atomic_store(&p->done, 1);
    return NULL;
}

static void poller_start(struct poller *p, const char *queue, int64_t timeout_ms)
{
    memset(p, 0, sizeof *p);
    snprintf(p->queue, sizeof p->queue, "%s", queue);
    p->timeout_ms = timeout_ms;
    p->n = 99;
    atomic_init(&p->done, 0);
    ck_assert_int_eq(pthread_create(&p->thread, NULL, poller_main, p), 0);
}

static void poller_join(struct poller *p)
{
    ck_assert_int_eq(pthread_join(p->thread, NULL), 0);
    if (p->rc == 0 && p->n == 1)
        ct_keep_job(p->job);
}

START_TEST(poll_with_zero_timeout_returns_at_once_without_jobs)
{
    at_job *jobs[1];
    size_t n = 99;
    const char *q[1] = {CT_Q("q")};
    int64_t t0 = ct_mono_ms();
    ck_assert_int_eq(at_poll(jobs, &n, ct_store, q, 1, 1, 0), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_lt(ct_mono_ms() - t0, 1000);
}
END_TEST

START_TEST(blocked_poll_wakes_when_another_thread_enqueues)
{
    struct poller p;
    char id[AT_ID_SIZE];
    poller_start(&p, CT_Q("q"), 10000);
    ct_sleep_real(50); /* let it block */
    ck_assert_int_eq(atomic_load(&p.done), 0);
    ct_enqueue(id, ct_opts(CT_Q("q")));
    poller_join(&p);
    ck_assert_int_eq(p.rc, 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(at_job_id(p.job), id);
    ck_assert_int_lt(p.elapsed_ms, 5000);
}
END_TEST

START_TEST(poll_with_infinite_timeout_waits_for_a_job)
{
    struct poller p;
    char id[AT_ID_SIZE];
    poller_start(&p, CT_Q("q"), -1);
    ct_sleep_real(50);
    ck_assert_int_eq(atomic_load(&p.done), 0);
    ct_enqueue(id, ct_opts(CT_Q("q")));
    poller_join(&p);
    ck_assert_int_eq(p.rc, 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(at_job_id(p.job), id);
}
END_TEST

START_TEST(blocked_poll_ignores_jobs_of_other_queues)
{
    struct poller p;
    char other[AT_ID_SIZE], mine[AT_ID_SIZE];
    poller_start(&p, CT_Q("mine"), 10000);
    ct_sleep_real(30);
    ct_enqueue(other, ct_opts(CT_Q("other")));
    ct_sleep_real(50);
    ck_assert_int_eq(atomic_load(&p.done), 0);
    ct_enqueue(mine, ct_opts(CT_Q("mine")));
    poller_join(&p);
    ck_assert_int_eq(p.rc, 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(at_job_id(p.job), mine);
    ck_assert_int_eq(ct_state(other), AT_STATE_READY);
}
END_TEST

START_TEST(blocked_poll_wakes_when_a_delayed_job_becomes_due)
{
    struct poller p;
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set(o, AT_OPT_DELAY_MS, ct_manual() ? 1000 : 200);
    ct_enqueue(id, o);
    poller_start(&p, CT_Q("q"), 10000);
    ct_sleep_real(50);
    ck_assert_int_eq(atomic_load(&p.done), 0);
    if (ct_manual()) {
        ct_advance(999); /* wakes the poller, which finds nothing due yet */
        ct_sleep_real(50);
        ck_assert_int_eq(atomic_load(&p.done), 0);
        ct_advance(1);
    }
    poller_join(&p);
    ck_assert_int_eq(p.rc, 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(at_job_id(p.job), id);
    ck_assert_int_ge(at_job_time(p.job, AT_JOB_TIME_STARTED), at_job_time(p.job, AT_JOB_TIME_RUN_AT));
    ck_assert_int_lt(p.elapsed_ms, 5000);
}
END_TEST

START_TEST(poll_timeout_expires_with_no_jobs_and_success)
{
    struct poller p;
    poller_start(&p, CT_Q("q"), 100);
    if (ct_manual()) {
        /* Whichever clock measures the timeout, it passes now. */
        ct_sleep_real(20);
        ct_advance(200);
    }
    poller_join(&p);
    ck_assert_int_eq(p.rc, 0);
    ck_assert_uint_eq(p.n, 0);
    if (!ct_manual())
        ck_assert_int_ge(p.elapsed_ms, 99);
    ck_assert_int_lt(p.elapsed_ms, 5000);
}
END_TEST

TCase *ct_tcase_poll(void)
{
    TCase *tc = ct_tcase("poll");
    tcase_add_test(tc, poll_with_zero_timeout_returns_at_once_without_jobs);
    tcase_add_test(tc, blocked_poll_wakes_when_another_thread_enqueues);
    tcase_add_test(tc, poll_with_infinite_timeout_waits_for_a_job);
    tcase_add_test(tc, blocked_poll_ignores_jobs_of_other_queues);
    tcase_add_test(tc, blocked_poll_wakes_when_a_delayed_job_becomes_due);
    tcase_add_test(tc, poll_timeout_expires_with_no_jobs_and_success);
    return tc;
}

/* -------------------------------------------------------------- leases */

/* Enqueue one job with lease `lease_ms` (and max_attempts when > 0) into the
 * test's queue and claim it. */
static at_job *enqueue_and_claim(const char *queue, int64_t lease_ms, int64_t max_attempts)
{
    at_opts *o = ct_opts(queue);
    if (lease_ms > 0)
        ct_set(o, AT_OPT_LEASE_MS, lease_ms);
    if (max_attempts > 0)
        ct_set(o, AT_OPT_MAX_ATTEMPTS, max_attempts);
    ct_enqueue(NULL, o);
    return ct_claim(queue);
}

START_TEST(claim_makes_the_job_running_and_counts_an_attempt)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 0, 0);
    ck_assert_int_eq(at_job_state(j), AT_STATE_RUNNING);
    ck_assert_uint_eq(at_job_attempts(j), 1);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_RUNNING);
    ck_assert_uint_eq(at_job_attempts(ct_get(at_job_id(j))), 1);
}
END_TEST

START_TEST(claim_gives_a_nonzero_token)
{
    ck_assert_uint_ne(at_job_token(enqueue_and_claim(CT_Q("q"), 0, 0)), 0);
}
END_TEST

START_TEST(lease_deadline_is_claim_time_plus_lease)
{
    at_job *j;
    at_opts *o = ct_opts(CT_Q("q"));
    int64_t before, after;
    ct_set(o, AT_OPT_LEASE_MS, 5000);
    ct_enqueue(NULL, o);
    before = ct_now();
    j = ct_claim(CT_Q("q"));
    after = ct_now();
    CT_ASSERT_TIME(at_job_time(j, AT_JOB_TIME_STARTED), before, after);
    ck_assert_int_eq(at_job_time(j, AT_JOB_TIME_LEASE), at_job_time(j, AT_JOB_TIME_STARTED) + 5000);
    ck_assert_int_eq(at_job_time(ct_get(at_job_id(j)), AT_JOB_TIME_LEASE), at_job_time(j, AT_JOB_TIME_LEASE));
}
END_TEST

START_TEST(lease_holds_until_its_deadline)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 1000, 0);
    ct_advance(ct_manual() ? 999 : 500);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_RUNNING);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), 0);
}
END_TEST

START_TEST(expired_lease_returns_the_job_to_ready)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 1000, 0), *g;
    ct_advance(1001);
    g = ct_get(at_job_id(j));
    ck_assert_int_eq(at_job_state(g), AT_STATE_READY);
    ck_assert_uint_eq(at_job_attempts(g), 1);
}
END_TEST

START_TEST(expired_lease_token_is_stale_before_another_claim)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 1000, 0);
    ct_advance(1001);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), AT_ERR_STALE);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_READY);
}
END_TEST

START_TEST(expired_lease_token_is_stale_after_another_claim)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 1000, 0), *k;
    ct_advance(1001);
    k = ct_claim(CT_Q("q"));
    ck_assert_str_eq(at_job_id(k), at_job_id(j));
    ck_assert_uint_ne(at_job_token(k), at_job_token(j));
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), AT_ERR_STALE);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_RUNNING);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(k), at_job_token(k), NULL, 0), 0);
}
END_TEST

START_TEST(claim_after_lease_expiry_counts_another_attempt)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 1000, 0);
    (void)j;
    ct_advance(1001);
    ck_assert_uint_eq(at_job_attempts(ct_claim(CT_Q("q"))), 2);
}
END_TEST

START_TEST(tokens_of_successive_claims_are_never_reused)
{
    uint64_t tokens[6];
    at_job *j = enqueue_and_claim(CT_Q("q"), 100, 100);
    tokens[0] = at_job_token(j);
    for (int i = 1; i < 6; i++) {
        ct_advance(101);
        tokens[i] = at_job_token(ct_claim(CT_Q("q")));
        for (int k = 0; k < i; k++)
            ck_assert_msg(tokens[i] != tokens[k], "claim %d reused the token of claim %d", i, k);
    }
}
END_TEST

START_TEST(expired_lease_without_attempts_left_is_dead_with_an_error)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 1000, 1), *g;
    ct_advance(1001);
    g = ct_get(at_job_id(j));
    ck_assert_int_eq(at_job_state(g), AT_STATE_DEAD);
    ck_assert_ptr_nonnull(at_job_last_error(g));
    ck_assert_uint_gt(strlen(at_job_last_error(g)), 0);
    ck_assert_int_ne(at_job_time(g, AT_JOB_TIME_FINISHED), AT_TIME_NONE);
    ck_assert_ptr_null(ct_try_claim(CT_Q("q")));
}
END_TEST

START_TEST(stale_token_ack_is_rejected)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 0, 0);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j) + 1, "x", 1), AT_ERR_STALE);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_RUNNING);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), 0);
}
END_TEST

START_TEST(stale_token_fail_is_rejected)
{
    int32_t st = -1;
    at_job *j = enqueue_and_claim(CT_Q("q"), 0, 0), *g;
    ck_assert_int_eq(at_fail(&st, ct_store, at_job_id(j), at_job_token(j) + 1, "e", AT_FAIL_PERMANENT),
                     AT_ERR_STALE);
    g = ct_get(at_job_id(j));
    ck_assert_int_eq(at_job_state(g), AT_STATE_RUNNING);
    ck_assert_ptr_null(at_job_last_error(g));
    ck_assert_uint_eq(at_job_attempts(g), 1);
}
END_TEST

START_TEST(stale_token_touch_is_rejected)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 1000, 0);
    ck_assert_int_eq(at_touch(ct_store, at_job_id(j), at_job_token(j) + 1, 60000), AT_ERR_STALE);
    ck_assert_int_eq(at_job_time(ct_get(at_job_id(j)), AT_JOB_TIME_LEASE), at_job_time(j, AT_JOB_TIME_LEASE));
}
END_TEST

START_TEST(touch_extends_the_lease_past_its_original_deadline)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 1000, 0);
    ct_advance(600);
    ck_assert_int_eq(at_touch(ct_store, at_job_id(j), at_job_token(j), 0), 0);
    ct_advance(600); /* 1200 ms after the claim, 600 into the new lease */
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_RUNNING);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), 0);
}
END_TEST

START_TEST(touch_sets_the_lease_to_now_plus_extend_ms)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 1000, 0);
    int64_t before, after;
    ct_advance(100);
    before = ct_now();
    ck_assert_int_eq(at_touch(ct_store, at_job_id(j), at_job_token(j), 7000), 0);
    after = ct_now();
    CT_ASSERT_TIME(at_job_time(ct_get(at_job_id(j)), AT_JOB_TIME_LEASE), before + 7000, after + 7000);
}
END_TEST

START_TEST(touch_with_zero_extends_by_the_job_lease)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 3000, 0);
    int64_t before, after;
    ct_advance(100);
    before = ct_now();
    ck_assert_int_eq(at_touch(ct_store, at_job_id(j), at_job_token(j), 0), 0);
    after = ct_now();
    CT_ASSERT_TIME(at_job_time(ct_get(at_job_id(j)), AT_JOB_TIME_LEASE), before + 3000, after + 3000);
}
END_TEST

START_TEST(token_is_stale_after_fail)
{
    at_job *j;
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set(o, AT_OPT_BACKOFF_BASE_MS, 0);
    ct_enqueue(NULL, o);
    j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_fail(NULL, ct_store, at_job_id(j), at_job_token(j), "e", AT_FAIL_RETRY), 0);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), AT_ERR_STALE);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_READY);
}
END_TEST

START_TEST(store_default_lease_applies_without_a_job_lease)
{
    at_job *j;
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_DEFAULT_LEASE_MS, 700), 0);
    j = enqueue_and_claim(CT_Q("q"), 0, 0);
    ck_assert_int_eq(at_job_time(j, AT_JOB_TIME_LEASE), at_job_time(j, AT_JOB_TIME_STARTED) + 700);
}
END_TEST

TCase *ct_tcase_leases(void)
{
    TCase *tc = ct_tcase("leases");
    tcase_add_test(tc, claim_makes_the_job_running_and_counts_an_attempt);
    tcase_add_test(tc, claim_gives_a_nonzero_token);
    tcase_add_test(tc, lease_deadline_is_claim_time_plus_lease);
    tcase_add_test(tc, lease_holds_until_its_deadline);
    tcase_add_test(tc, expired_lease_returns_the_job_to_ready);
    tcase_add_test(tc, expired_lease_token_is_stale_before_another_claim);
    tcase_add_test(tc, expired_lease_token_is_stale_after_another_claim);
    tcase_add_test(tc, claim_after_lease_expiry_counts_another_attempt);
    tcase_add_test(tc, tokens_of_successive_claims_are_never_reused);
    tcase_add_test(tc, expired_lease_without_attempts_left_is_dead_with_an_error);
    tcase_add_test(tc, stale_token_ack_is_rejected);
    tcase_add_test(tc, stale_token_fail_is_rejected);
    tcase_add_test(tc, stale_token_touch_is_rejected);
    tcase_add_test(tc, touch_extends_the_lease_past_its_original_deadline);
    tcase_add_test(tc, touch_sets_the_lease_to_now_plus_extend_ms);
    tcase_add_test(tc, touch_with_zero_extends_by_the_job_lease);
    tcase_add_test(tc, token_is_stale_after_fail);
    tcase_add_test(tc, store_default_lease_applies_without_a_job_lease);
    return tc;
}

/* ----------------------------------------------------------------- ack */

START_TEST(ack_makes_the_job_succeeded)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 0, 0);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), 0);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_SUCCEEDED);
    ck_assert_ptr_null(ct_try_claim(CT_Q("q")));
}
END_TEST

START_TEST(ack_keeps_the_result_bytes)
{
    static const char result[5] = {'r', '\0', 's', (char)0xff, '\0'};
    size_t len = 0;
    at_job *j = enqueue_and_claim(CT_Q("q"), 0, 0), *g;
    const void *r;
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), result, sizeof result), 0);
    g = ct_get(at_job_id(j));
    r = at_job_result(g, &len);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(len, sizeof result);
    ck_assert_mem_eq(r, result, sizeof result);
}
END_TEST

START_TEST(ack_without_result_has_no_result)
{
    size_t len = 99;
    at_job *j = enqueue_and_claim(CT_Q("q"), 0, 0);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), 0);
    ck_assert_ptr_null(at_job_result(ct_get(at_job_id(j)), &len));
    ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(ack_sets_the_finished_time)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 0, 0), *g;
    int64_t before, after;
    ct_advance(10);
    before = ct_now();
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), 0);
    after = ct_now();
    g = ct_get(at_job_id(j));
    CT_ASSERT_TIME(at_job_time(g, AT_JOB_TIME_FINISHED), before, after);
    CT_ASSERT_TIME(at_job_time(g, AT_JOB_TIME_UPDATED), before, after);
}
END_TEST

START_TEST(finished_job_has_no_lease_deadline)
{
    at_job *j = enqueue_and_claim(CT_Q("q"), 0, 0);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), 0);
    ck_assert_int_eq(at_job_time(ct_get(at_job_id(j)), AT_JOB_TIME_LEASE), AT_TIME_NONE);
}
END_TEST

START_TEST(second_ack_is_stale_and_the_job_stays_succeeded)
{
    size_t len = 0;
    at_job *j = enqueue_and_claim(CT_Q("q"), 0, 0), *g;
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), "one", 3), 0);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), "two", 3), AT_ERR_STALE);
    g = ct_get(at_job_id(j));
    ck_assert_int_eq(at_job_state(g), AT_STATE_SUCCEEDED);
    ck_assert_mem_eq(at_job_result(g, &len), "one", 3);
}
END_TEST

START_TEST(ack_of_an_unclaimed_job_is_stale)
{
    char id[AT_ID_SIZE];
    ct_enqueue(id, ct_opts(CT_Q("q")));
    ck_assert_int_eq(at_ack(ct_store, id, 1, NULL, 0), AT_ERR_STALE);
    ck_assert_int_eq(ct_state(id), AT_STATE_READY);
}
END_TEST

START_TEST(ack_result_over_the_store_limit_is_toobig_and_changes_nothing)
{
    char big[17];
    size_t len = 0;
    at_job *j = enqueue_and_claim(CT_Q("q"), 0, 0);
    memset(big, 'r', sizeof big);
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_MAX_RESULT, 16), 0);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), big, 17), AT_ERR_TOOBIG);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_RUNNING);
    /* The lease is still good: the limit itself is accepted. */
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), big, 16), 0);
    at_job_result(ct_get(at_job_id(j)), &len);
    ck_assert_uint_eq(len, 16);
}
END_TEST


/* ---------------------------------------------------------- at_ack_many */

START_TEST(ack_many_finishes_every_held_job)
{
    const char *q = CT_Q("q");
    at_opts *o = ct_opts(q);
    const char *ids[3];
    uint64_t tokens[3];
    for (int i = 0; i < 3; i++) {
        ct_enqueue(NULL, o);
        at_job *j = ct_claim(q);
        ids[i] = at_job_id(j);
        tokens[i] = at_job_token(j);
    }
    int32_t res[3] = {-99, -99, -99};
    ck_assert_int_eq(at_ack_many(res, ct_store, 3, ids, tokens), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(res[i], 0);
        ck_assert_int_eq(ct_state(ids[i]), AT_STATE_SUCCEEDED);
    }
    ck_assert_uint_eq(ct_count(q, AT_STATE_SUCCEEDED), 3);
    ck_assert_uint_eq(ct_count(q, AT_STATE_RUNNING), 0);
}
END_TEST

START_TEST(ack_many_reports_each_stale_or_cancelled_job_and_finishes_the_others)
{
    const char *q = CT_Q("q");
    at_opts *o = ct_opts(q);
    const char *ids[3];
    uint64_t tokens[3];
    for (int i = 0; i < 3; i++) {
        ct_enqueue(NULL, o);
        at_job *j = ct_claim(q);
        ids[i] = at_job_id(j);
        tokens[i] = at_job_token(j);
    }
    tokens[0] += 1000; /* not its lease */
    int32_t pending = 0;
    ck_assert_int_eq(at_cancel(&pending, ct_store, ids[2]), 0);
    ck_assert_int_eq(pending, 1);
    int32_t res[3];
    ck_assert_int_eq(at_ack_many(res, ct_store, 3, ids, tokens), 0);
    ck_assert_int_eq(res[0], AT_ERR_STALE);
    ck_assert_int_eq(res[1], 0);
    ck_assert_int_eq(res[2], AT_ERR_CANCELLED);
    ck_assert_int_eq(ct_state(ids[0]), AT_STATE_RUNNING);
    ck_assert_int_eq(ct_state(ids[1]), AT_STATE_SUCCEEDED);
    ck_assert_int_eq(ct_state(ids[2]), AT_STATE_CANCELLED);
}
END_TEST

START_TEST(ack_many_of_an_unknown_id_is_notfound_for_that_job)
{
    const char *q = CT_Q("q");
    ct_enqueue(NULL, ct_opts(q));
    at_job *j = ct_claim(q);
    const char *ids[2] = {"01ARZ3NDEKTSV4RRFFQ69G5FAV", at_job_id(j)};
    uint64_t tokens[2] = {1, at_job_token(j)};
    int32_t res[2];
    ck_assert_int_eq(at_ack_many(res, ct_store, 2, ids, tokens), 0);
    ck_assert_int_eq(res[0], AT_ERR_NOTFOUND);
    ck_assert_int_eq(res[1], 0);
}
END_TEST

START_TEST(ack_many_with_a_malformed_id_changes_nothing)
{
    const char *q = CT_Q("q");
    ct_enqueue(NULL, ct_opts(q));
    at_job *j = ct_claim(q);
    const char *ids[2] = {at_job_id(j), "not-an-id"};
    uint64_t tokens[2] = {at_job_token(j), 1};
    int32_t res[2];
    ck_assert_int_eq(at_ack_many(res, ct_store, 2, ids, tokens), AT_ERR_INVAL);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_RUNNING);
}
END_TEST

START_TEST(ack_many_needs_1_to_1000_jobs)
{
    const char *ids[1] = {"01ARZ3NDEKTSV4RRFFQ69G5FAV"};
    uint64_t tokens[1] = {1};
    int32_t res[1];
    ck_assert_int_eq(at_ack_many(res, ct_store, 0, ids, tokens), AT_ERR_INVAL);
    ck_assert_int_eq(at_ack_many(res, ct_store, 1001, ids, tokens), AT_ERR_INVAL);
    ck_assert_int_eq(at_ack_many(NULL, ct_store, 1, ids, tokens), AT_ERR_INVAL);
}
END_TEST

TCase *ct_tcase_ack(void)
{
    TCase *tc = ct_tcase("ack");
    tcase_add_test(tc, ack_makes_the_job_succeeded);
    tcase_add_test(tc, ack_keeps_the_result_bytes);
    tcase_add_test(tc, ack_without_result_has_no_result);
    tcase_add_test(tc, ack_sets_the_finished_time);
    tcase_add_test(tc, finished_job_has_no_lease_deadline);
    tcase_add_test(tc, second_ack_is_stale_and_the_job_stays_succeeded);
    tcase_add_test(tc, ack_of_an_unclaimed_job_is_stale);
    tcase_add_test(tc, ack_result_over_the_store_limit_is_toobig_and_changes_nothing);
    tcase_add_test(tc, ack_many_finishes_every_held_job);
    tcase_add_test(tc, ack_many_reports_each_stale_or_cancelled_job_and_finishes_the_others);
    tcase_add_test(tc, ack_many_of_an_unknown_id_is_notfound_for_that_job);
    tcase_add_test(tc, ack_many_with_a_malformed_id_changes_nothing);
    tcase_add_test(tc, ack_many_needs_1_to_1000_jobs);
    return tc;
}
