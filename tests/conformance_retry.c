/*
 * conformance_retry.c - conformance: fail, retry with backoff, dead letters
 * and cancellation (docs/SEMANTICS.md "Retries and dead letters",
 * "Cancellation").
 *
 * The backoff of attempt n (the claims so far, from 1) is
 * min(cap, base * 2^(n-1)), shortened by jitter to delay * (1 - jitter/1000 *
 * U) with U in [0, 1).  With jitter 0 the retry's run_at is exactly the fail
 * time plus that delay; the tests read the store's time around each at_fail
 * so the same assertions hold on a real clock (late, never early).
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "conformance.h"

#include <string.h>

/* Opts for the test's queue with the given backoff (jitter 0 unless set). */
static at_opts *backoff_opts(const char *queue, int64_t base, int64_t cap, int64_t jitter)
{
    at_opts *o = ct_opts(queue);
    ct_set(o, AT_OPT_BACKOFF_BASE_MS, base);
    if (cap >= 0)
        ct_set(o, AT_OPT_BACKOFF_CAP_MS, cap);
    ct_set(o, AT_OPT_BACKOFF_JITTER, jitter);
    return o;
}

/* Fail job `j` (retry) and check that its run_at is the fail time plus
 * `delay`; returns the state at_fail reported. */
static int32_t fail_expecting_delay(const at_job *j, int64_t delay)
{
    int32_t st = -1;
    int64_t before = ct_now(), after;
    ck_assert_int_eq(at_fail(&st, ct_store, at_job_id(j), at_job_token(j), "retry me", AT_FAIL_RETRY), 0);
    after = ct_now();
    CT_ASSERT_TIME(at_job_time(ct_get(at_job_id(j)), AT_JOB_TIME_RUN_AT), before + delay, after + delay);
    return st;
}

/* --------------------------------------------------------------- retry */

START_TEST(fail_with_attempts_left_schedules_a_retry)
{
    int32_t st = -1;
    at_job *j;
    ct_enqueue(NULL, backoff_opts(CT_Q("q"), 1000, -1, 0));
    j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_fail(&st, ct_store, at_job_id(j), at_job_token(j), "e", AT_FAIL_RETRY), 0);
    ck_assert_int_eq(st, AT_STATE_SCHEDULED);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_SCHEDULED);
}
END_TEST

START_TEST(fail_keeps_the_last_error)
{
    at_job *j;
    ct_enqueue(NULL, backoff_opts(CT_Q("q"), 1000, -1, 0));
    j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_fail(NULL, ct_store, at_job_id(j), at_job_token(j), "disk full: /var", AT_FAIL_RETRY),
                     0);
    ck_assert_str_eq(at_job_last_error(ct_get(at_job_id(j))), "disk full: /var");
}
END_TEST

START_TEST(fail_accepts_a_null_error)
{
    int32_t st = -1;
    at_job *j;
    ct_enqueue(NULL, backoff_opts(CT_Q("q"), 1000, -1, 0));
    j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_fail(&st, ct_store, at_job_id(j), at_job_token(j), NULL, AT_FAIL_RETRY), 0);
    ck_assert_int_eq(st, AT_STATE_SCHEDULED);
}
END_TEST

START_TEST(retry_runs_at_fail_time_plus_base_backoff)
{
    at_job *j;
    ct_enqueue(NULL, backoff_opts(CT_Q("q"), 1000, -1, 0));
    j = ct_claim(CT_Q("q"));
    ct_advance(50);
    ck_assert_int_eq(fail_expecting_delay(j, 1000), AT_STATE_SCHEDULED);
}
END_TEST

START_TEST(retry_is_claimable_exactly_after_the_backoff)
{
    at_job *j, *k;
    ct_enqueue(NULL, backoff_opts(CT_Q("q"), 1000, -1, 0));
    j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_fail(NULL, ct_store, at_job_id(j), at_job_token(j), "e", AT_FAIL_RETRY), 0);
    if (ct_manual())
        ct_advance(999);
    ck_assert_ptr_null(ct_try_claim(CT_Q("q")));
    ct_advance(ct_manual() ? 1 : 1000);
    k = ct_claim(CT_Q("q"));
    ck_assert_str_eq(at_job_id(k), at_job_id(j));
    ck_assert_uint_eq(at_job_attempts(k), 2);
    ck_assert_int_ge(at_job_time(k, AT_JOB_TIME_STARTED), at_job_time(k, AT_JOB_TIME_RUN_AT));
}
END_TEST

START_TEST(retry_backoff_doubles_with_each_attempt)
{
    at_opts *o = backoff_opts(CT_Q("q"), 100, 100000, 0);
    at_job *j;
    int64_t delay = 100;
    ct_set(o, AT_OPT_MAX_ATTEMPTS, 10);
    ct_enqueue(NULL, o);
    for (int attempt = 1; attempt <= 5; attempt++, delay *= 2) {
        j = ct_claim(CT_Q("q"));
        ck_assert_uint_eq(at_job_attempts(j), (unsigned)attempt);
        ck_assert_int_eq(fail_expecting_delay(j, delay), AT_STATE_SCHEDULED);
        ct_advance(delay);
    }
}
END_TEST

START_TEST(retry_backoff_is_capped)
{
    static const int64_t delays[5] = {100, 200, 250, 250, 250};
    at_opts *o = backoff_opts(CT_Q("q"), 100, 250, 0);
    ct_set(o, AT_OPT_MAX_ATTEMPTS, 10);
    ct_enqueue(NULL, o);
    for (int i = 0; i < 5; i++) {
        at_job *j = ct_claim(CT_Q("q"));
        fail_expecting_delay(j, delays[i]);
        ct_advance(delays[i]);
    }
}
END_TEST

START_TEST(retry_jitter_shortens_the_delay_within_its_bounds)
{
    enum { N = 16 };
    at_opts *o = backoff_opts(CT_Q("q"), 1000, -1, 500); /* delay in [500, 1000] */
    int shortened = 0;
    for (int i = 0; i < N; i++)
        ct_enqueue(NULL, o);
    for (int i = 0; i < N; i++) {
        at_job *j = ct_claim(CT_Q("q"));
        int64_t before = ct_now(), after, run_at;
        ck_assert_int_eq(at_fail(NULL, ct_store, at_job_id(j), at_job_token(j), "e", AT_FAIL_RETRY), 0);
        after = ct_now();
        run_at = at_job_time(ct_get(at_job_id(j)), AT_JOB_TIME_RUN_AT);
        CT_ASSERT_TIME(run_at, before + 500, after + 1000);
        if (run_at < before + 1000)
            shortened++;
    }
    /* U is uniform in [0, 1): 16 full delays in a row mean no jitter. */
    ck_assert_int_gt(shortened, 0);
}
END_TEST

START_TEST(store_default_backoff_applies_without_job_backoff)
{
    at_job *j;
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_DEFAULT_BACKOFF_BASE_MS, 300), 0);
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_DEFAULT_BACKOFF_JITTER, 0), 0);
    ct_enqueue(NULL, ct_opts(CT_Q("q")));
    j = ct_claim(CT_Q("q"));
    fail_expecting_delay(j, 300);
}
END_TEST

START_TEST(permanent_fail_is_dead_at_once)
{
    int32_t st = -1;
    at_job *j, *g;
    at_opts *o = backoff_opts(CT_Q("q"), 1000, -1, 0);
    ct_set(o, AT_OPT_MAX_ATTEMPTS, 5);
    ct_enqueue(NULL, o);
    j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_fail(&st, ct_store, at_job_id(j), at_job_token(j), "bad input", AT_FAIL_PERMANENT),
                     0);
    ck_assert_int_eq(st, AT_STATE_DEAD);
    g = ct_get(at_job_id(j));
    ck_assert_int_eq(at_job_state(g), AT_STATE_DEAD);
    ck_assert_str_eq(at_job_last_error(g), "bad input");
    ck_assert_int_ne(at_job_time(g, AT_JOB_TIME_FINISHED), AT_TIME_NONE);
}
END_TEST

START_TEST(fail_on_the_last_attempt_is_dead)
{
    int32_t st = -1;
    at_job *j;
    at_opts *o = backoff_opts(CT_Q("q"), 0, -1, 0);
    ct_set(o, AT_OPT_MAX_ATTEMPTS, 2);
    ct_enqueue(NULL, o);
    j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_fail(&st, ct_store, at_job_id(j), at_job_token(j), "first", AT_FAIL_RETRY), 0);
    ck_assert_int_eq(st, AT_STATE_READY);
    j = ct_claim(CT_Q("q"));
    ck_assert_uint_eq(at_job_attempts(j), 2);
    ck_assert_int_eq(at_fail(&st, ct_store, at_job_id(j), at_job_token(j), "second", AT_FAIL_RETRY), 0);
    ck_assert_int_eq(st, AT_STATE_DEAD);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_DEAD);
    ck_assert_str_eq(at_job_last_error(ct_get(at_job_id(j))), "second");
}
END_TEST

START_TEST(store_default_max_attempts_applies_without_a_job_value)
{
    int32_t st = -1;
    at_job *j;
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_DEFAULT_MAX_ATTEMPTS, 1), 0);
    ct_enqueue(NULL, ct_opts(CT_Q("q")));
    j = ct_claim(CT_Q("q"));
    ck_assert_uint_eq(at_job_max_attempts(j), 1);
    ck_assert_int_eq(at_fail(&st, ct_store, at_job_id(j), at_job_token(j), "e", AT_FAIL_RETRY), 0);
    ck_assert_int_eq(st, AT_STATE_DEAD);
}
END_TEST

START_TEST(fail_with_zero_backoff_base_is_ready_at_once)
{
    int32_t st = -1;
    at_job *j, *k;
    ct_enqueue(NULL, backoff_opts(CT_Q("q"), 0, -1, 0));
    j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_fail(&st, ct_store, at_job_id(j), at_job_token(j), "e", AT_FAIL_RETRY), 0);
    ck_assert_int_eq(st, AT_STATE_READY);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_READY);
    k = ct_claim(CT_Q("q"));
    ck_assert_str_eq(at_job_id(k), at_job_id(j));
}
END_TEST

TCase *ct_tcase_retry(void)
{
    TCase *tc = ct_tcase("retry");
    tcase_add_test(tc, fail_with_attempts_left_schedules_a_retry);
    tcase_add_test(tc, fail_keeps_the_last_error);
    tcase_add_test(tc, fail_accepts_a_null_error);
    tcase_add_test(tc, retry_runs_at_fail_time_plus_base_backoff);
    tcase_add_test(tc, retry_is_claimable_exactly_after_the_backoff);
    tcase_add_test(tc, retry_backoff_doubles_with_each_attempt);
    tcase_add_test(tc, retry_backoff_is_capped);
    tcase_add_test(tc, retry_jitter_shortens_the_delay_within_its_bounds);
    tcase_add_test(tc, store_default_backoff_applies_without_job_backoff);
    tcase_add_test(tc, permanent_fail_is_dead_at_once);
    tcase_add_test(tc, fail_on_the_last_attempt_is_dead);
    tcase_add_test(tc, store_default_max_attempts_applies_without_a_job_value);
    tcase_add_test(tc, fail_with_zero_backoff_base_is_ready_at_once);
    return tc;
}

/* -------------------------------------------------------- dead letters */

/* Enqueue a job into `queue`, claim it and fail it permanently. */
static void make_dead(char id_out[AT_ID_SIZE], const char *queue)
{
    at_opts *o = ct_opts(queue);
    at_job *j;
    ct_set(o, AT_OPT_MAX_ATTEMPTS, 3);
    ct_enqueue(id_out, o);
    j = ct_claim(queue);
    ck_assert_str_eq(at_job_id(j), id_out);
    ck_assert_int_eq(at_fail(NULL, ct_store, id_out, at_job_token(j), "gone", AT_FAIL_PERMANENT), 0);
}

START_TEST(dead_jobs_are_listed_by_state)
{
    char d1[AT_ID_SIZE], d2[AT_ID_SIZE];
    at_job *jobs[10];
    size_t n = 0;
    char cursor[AT_CURSOR_SIZE];
    make_dead(d1, CT_Q("q"));
    make_dead(d2, CT_Q("q"));
    ct_enqueue(NULL, ct_opts(CT_Q("q")));
    ck_assert_int_eq(at_list(jobs, &n, cursor, ct_store, CT_Q("q"), AT_STATE_DEAD, NULL, 10), 0);
    for (size_t i = 0; i < n; i++)
        ct_keep_job(jobs[i]);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(at_job_id(jobs[0]), d1);
    ck_assert_str_eq(at_job_id(jobs[1]), d2);
    ck_assert_int_eq(at_job_state(jobs[0]), AT_STATE_DEAD);
}
END_TEST

START_TEST(requeue_makes_a_dead_job_ready_with_a_fresh_attempt_budget)
{
    char id[AT_ID_SIZE];
    uint64_t n = 99;
    at_job *g, *k;
    make_dead(id, CT_Q("q"));
    ck_assert_int_eq(at_requeue(&n, ct_store, NULL, id), 0);
    ck_assert_uint_eq(n, 1);
    g = ct_get(id);
    ck_assert_int_eq(at_job_state(g), AT_STATE_READY);
    ck_assert_uint_eq(at_job_attempts(g), 0);
    k = ct_claim(CT_Q("q"));
    ck_assert_str_eq(at_job_id(k), id);
    ck_assert_uint_eq(at_job_attempts(k), 1);
}
END_TEST

START_TEST(requeue_of_a_job_that_is_not_dead_is_a_state_error)
{
    char ready[AT_ID_SIZE], done[AT_ID_SIZE];
    at_job *running;
    ct_enqueue(done, ct_opts(CT_Q("done")));
    running = ct_claim(CT_Q("done"));
    ck_assert_int_eq(at_ack(ct_store, done, at_job_token(running), NULL, 0), 0);
    ct_enqueue(NULL, ct_opts(CT_Q("run")));
    running = ct_claim(CT_Q("run"));
    ct_enqueue(ready, ct_opts(CT_Q("ready")));

    ck_assert_int_eq(at_requeue(NULL, ct_store, NULL, ready), AT_ERR_STATE);
    ck_assert_int_eq(at_requeue(NULL, ct_store, NULL, at_job_id(running)), AT_ERR_STATE);
    ck_assert_int_eq(at_requeue(NULL, ct_store, NULL, done), AT_ERR_STATE);
    ck_assert_int_eq(ct_state(ready), AT_STATE_READY);
    ck_assert_int_eq(ct_state(at_job_id(running)), AT_STATE_RUNNING);
    ck_assert_int_eq(ct_state(done), AT_STATE_SUCCEEDED);
}
END_TEST

START_TEST(requeue_of_an_unknown_id_is_notfound)
{
    ck_assert_int_eq(at_requeue(NULL, ct_store, NULL, "01ARZ3NDEKTSV4RRFFQ69G5FAV"), AT_ERR_NOTFOUND);
}
END_TEST

START_TEST(requeue_of_a_queue_moves_all_its_dead_jobs)
{
    char d[3][AT_ID_SIZE], other[AT_ID_SIZE], ready[AT_ID_SIZE];
    uint64_t n = 0;
    for (int i = 0; i < 3; i++)
        make_dead(d[i], CT_Q("q"));
    make_dead(other, CT_Q("other"));
    ct_enqueue(ready, ct_opts(CT_Q("q")));
    ck_assert_int_eq(at_requeue(&n, ct_store, CT_Q("q"), NULL), 0);
    ck_assert_uint_eq(n, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ct_state(d[i]), AT_STATE_READY);
    ck_assert_int_eq(ct_state(other), AT_STATE_DEAD);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_READY), 4);
}
END_TEST

START_TEST(claim_after_requeue_has_a_token_no_earlier_claim_had)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    uint64_t tokens[3];
    at_job *j;
    ct_set(o, AT_OPT_MAX_ATTEMPTS, 2);
    ct_set(o, AT_OPT_BACKOFF_BASE_MS, 0);
    ct_enqueue(id, o);
    j = ct_claim(CT_Q("q"));
    tokens[0] = at_job_token(j);
    ck_assert_int_eq(at_fail(NULL, ct_store, id, tokens[0], "e", AT_FAIL_RETRY), 0);
    j = ct_claim(CT_Q("q"));
    tokens[1] = at_job_token(j);
    ck_assert_int_eq(at_fail(NULL, ct_store, id, tokens[1], "e", AT_FAIL_RETRY), 0);
    ck_assert_int_eq(ct_state(id), AT_STATE_DEAD);
    /* The attempt count starts again; the fencing token must not. */
    ck_assert_int_eq(at_requeue(NULL, ct_store, NULL, id), 0);
    tokens[2] = at_job_token(ct_claim(CT_Q("q")));
    ck_assert_uint_ne(tokens[2], tokens[0]);
    ck_assert_uint_ne(tokens[2], tokens[1]);
    ck_assert_uint_ne(tokens[1], tokens[0]);
}
END_TEST

TCase *ct_tcase_dead(void)
{
    TCase *tc = ct_tcase("dead-letters");
    tcase_add_test(tc, dead_jobs_are_listed_by_state);
    tcase_add_test(tc, requeue_makes_a_dead_job_ready_with_a_fresh_attempt_budget);
    tcase_add_test(tc, requeue_of_a_job_that_is_not_dead_is_a_state_error);
    tcase_add_test(tc, requeue_of_an_unknown_id_is_notfound);
    tcase_add_test(tc, requeue_of_a_queue_moves_all_its_dead_jobs);
    tcase_add_test(tc, claim_after_requeue_has_a_token_no_earlier_claim_had);
    return tc;
}

/* -------------------------------------------------------------- cancel */

START_TEST(cancel_of_a_ready_job_is_cancelled_at_once)
{
    char id[AT_ID_SIZE];
    int32_t pending = -1;
    at_job *g;
    ct_enqueue(id, ct_opts(CT_Q("q")));
    ck_assert_int_eq(at_cancel(&pending, ct_store, id), 0);
    ck_assert_int_eq(pending, 0);
    g = ct_get(id);
    ck_assert_int_eq(at_job_state(g), AT_STATE_CANCELLED);
    ck_assert_int_ne(at_job_time(g, AT_JOB_TIME_FINISHED), AT_TIME_NONE);
    ck_assert_ptr_null(ct_try_claim(CT_Q("q")));
}
END_TEST

START_TEST(cancel_of_a_scheduled_job_is_cancelled_and_never_claimed)
{
    char id[AT_ID_SIZE];
    int32_t pending = -1;
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set(o, AT_OPT_DELAY_MS, 200);
    ct_enqueue(id, o);
    ck_assert_int_eq(at_cancel(&pending, ct_store, id), 0);
    ck_assert_int_eq(pending, 0);
    ck_assert_int_eq(ct_state(id), AT_STATE_CANCELLED);
    ct_advance(300); /* past its run_at */
    ck_assert_ptr_null(ct_try_claim(CT_Q("q")));
    ck_assert_int_eq(ct_state(id), AT_STATE_CANCELLED);
}
END_TEST

START_TEST(cancel_of_a_running_job_is_pending)
{
    int32_t pending = -1;
    at_job *j, *g;
    ct_enqueue(NULL, ct_opts(CT_Q("q")));
    j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_cancel(&pending, ct_store, at_job_id(j)), 0);
    ck_assert_int_eq(pending, 1);
    g = ct_get(at_job_id(j));
    ck_assert_int_eq(at_job_state(g), AT_STATE_RUNNING);
    ck_assert_int_eq(at_job_cancel_requested(g), 1);
}
END_TEST

/* Claim a job and request its cancellation. */
static at_job *claim_and_cancel(const char *queue, int64_t lease_ms)
{
    at_opts *o = ct_opts(queue);
    at_job *j;
    if (lease_ms > 0)
        ct_set(o, AT_OPT_LEASE_MS, lease_ms);
    ct_enqueue(NULL, o);
    j = ct_claim(queue);
    ck_assert_int_eq(at_cancel(NULL, ct_store, at_job_id(j)), 0);
    return j;
}

START_TEST(ack_of_a_cancel_requested_job_is_cancelled)
{
    at_job *j = claim_and_cancel(CT_Q("q"), 0), *g;
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), "r", 1), AT_ERR_CANCELLED);
    g = ct_get(at_job_id(j));
    ck_assert_int_eq(at_job_state(g), AT_STATE_CANCELLED);
    ck_assert_int_ne(at_job_time(g, AT_JOB_TIME_FINISHED), AT_TIME_NONE);
}
END_TEST

START_TEST(fail_of_a_cancel_requested_job_is_cancelled)
{
    at_job *j = claim_and_cancel(CT_Q("q"), 0);
    ck_assert_int_eq(at_fail(NULL, ct_store, at_job_id(j), at_job_token(j), "e", AT_FAIL_RETRY),
                     AT_ERR_CANCELLED);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_CANCELLED);
}
END_TEST

START_TEST(touch_of_a_cancel_requested_job_is_cancelled)
{
    at_job *j = claim_and_cancel(CT_Q("q"), 0);
    ck_assert_int_eq(at_touch(ct_store, at_job_id(j), at_job_token(j), 0), AT_ERR_CANCELLED);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_CANCELLED);
}
END_TEST

START_TEST(expired_lease_of_a_cancel_requested_job_cancels_it)
{
    at_job *j = claim_and_cancel(CT_Q("q"), 1000);
    ct_advance(1001);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_CANCELLED);
    ck_assert_ptr_null(ct_try_claim(CT_Q("q")));
}
END_TEST

START_TEST(holder_keeps_learning_of_the_cancel_on_later_calls)
{
    at_job *j = claim_and_cancel(CT_Q("q"), 0);
    ck_assert_int_eq(at_touch(ct_store, at_job_id(j), at_job_token(j), 0), AT_ERR_CANCELLED);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), AT_ERR_CANCELLED);
    ck_assert_int_eq(ct_state(at_job_id(j)), AT_STATE_CANCELLED);
}
END_TEST

/* Cancelling a terminal job: AT_ERR_TERMINAL and not even its times move. */
static void assert_cancel_is_terminal(const char *id, int32_t state)
{
    at_job *before = ct_get(id), *after;
    int32_t pending = -1;
    ct_advance(10);
    ck_assert_int_eq(at_cancel(&pending, ct_store, id), AT_ERR_TERMINAL);
    after = ct_get(id);
    ck_assert_int_eq(at_job_state(after), state);
    ck_assert_int_eq(at_job_time(after, AT_JOB_TIME_UPDATED), at_job_time(before, AT_JOB_TIME_UPDATED));
    ck_assert_int_eq(at_job_time(after, AT_JOB_TIME_FINISHED), at_job_time(before, AT_JOB_TIME_FINISHED));
    ck_assert_int_eq(at_job_cancel_requested(after), 0);
}

START_TEST(cancel_of_a_succeeded_job_is_terminal)
{
    at_job *j;
    ct_enqueue(NULL, ct_opts(CT_Q("q")));
    j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), 0);
    assert_cancel_is_terminal(at_job_id(j), AT_STATE_SUCCEEDED);
}
END_TEST

START_TEST(cancel_of_a_dead_job_is_terminal)
{
    char id[AT_ID_SIZE];
    make_dead(id, CT_Q("q"));
    assert_cancel_is_terminal(id, AT_STATE_DEAD);
}
END_TEST

START_TEST(cancel_of_a_cancelled_job_is_terminal)
{
    char id[AT_ID_SIZE];
    ct_enqueue(id, ct_opts(CT_Q("q")));
    ck_assert_int_eq(at_cancel(NULL, ct_store, id), 0);
    assert_cancel_is_terminal(id, AT_STATE_CANCELLED);
}
END_TEST

START_TEST(cancel_of_an_unknown_id_is_notfound)
{
    int32_t pending = -1;
    ck_assert_int_eq(at_cancel(&pending, ct_store, "01ARZ3NDEKTSV4RRFFQ69G5FAV"), AT_ERR_NOTFOUND);
}
END_TEST

TCase *ct_tcase_cancel(void)
{
    TCase *tc = ct_tcase("cancel");
    tcase_add_test(tc, cancel_of_a_ready_job_is_cancelled_at_once);
    tcase_add_test(tc, cancel_of_a_scheduled_job_is_cancelled_and_never_claimed);
    tcase_add_test(tc, cancel_of_a_running_job_is_pending);
    tcase_add_test(tc, ack_of_a_cancel_requested_job_is_cancelled);
    tcase_add_test(tc, fail_of_a_cancel_requested_job_is_cancelled);
    tcase_add_test(tc, touch_of_a_cancel_requested_job_is_cancelled);
    tcase_add_test(tc, holder_keeps_learning_of_the_cancel_on_later_calls);
    tcase_add_test(tc, expired_lease_of_a_cancel_requested_job_cancels_it);
    tcase_add_test(tc, cancel_of_a_succeeded_job_is_terminal);
    tcase_add_test(tc, cancel_of_a_dead_job_is_terminal);
    tcase_add_test(tc, cancel_of_a_cancelled_job_is_terminal);
    tcase_add_test(tc, cancel_of_an_unknown_id_is_notfound);
    return tc;
}
