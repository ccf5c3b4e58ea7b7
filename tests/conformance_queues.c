/*
 * conformance_queues.c - conformance: releases, paused queues and the
 * trace context stored with a job (docs/SEMANTICS.md "Queues and releases";
 * at_queue_pause(3), AT_OPT_TRACEPARENT in at_opts_new(3)).
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "conformance.h"

#include <pthread.h>
#include <string.h>

START_TEST(release_puts_the_job_back_without_using_an_attempt)
{
    char id[AT_ID_SIZE];
    ct_enqueue(id, ct_opts(CT_Q("q")));
    at_job *j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_release(ct_store, id, at_job_token(j), 0), 0);
    ck_assert_int_eq(ct_state(id), AT_STATE_READY);
    ck_assert_uint_eq(at_job_attempts(ct_get(id)), 0);
    /* The old claim is over. */
    ck_assert_int_eq(at_ack(ct_store, id, at_job_token(j), NULL, 0), AT_ERR_STALE);
    ck_assert_int_eq(at_release(ct_store, id, at_job_token(j), 0), AT_ERR_STALE);
    at_job *again = ct_claim(CT_Q("q"));
    ck_assert_uint_eq(at_job_attempts(again), 1);
    ck_assert_uint_ne(at_job_token(again), at_job_token(j));
    ck_assert_int_eq(at_ack(ct_store, id, at_job_token(again), NULL, 0), 0);
}
END_TEST

START_TEST(release_with_a_delay_schedules_the_job)
{
    char id[AT_ID_SIZE];
    ct_enqueue(id, ct_opts(CT_Q("q")));
    at_job *j = ct_claim(CT_Q("q"));
    int64_t t0 = ct_now();
    ck_assert_int_eq(at_release(ct_store, id, at_job_token(j), 5000), 0);
    int64_t t1 = ct_now();
    at_job *g = ct_get(id);
    ck_assert_int_eq(at_job_state(g), AT_STATE_SCHEDULED);
    CT_ASSERT_TIME(at_job_time(g, AT_JOB_TIME_RUN_AT), t0 + 5000, t1 + 5000);
    ck_assert_ptr_null(ct_try_claim(CT_Q("q")));
}
END_TEST

START_TEST(release_of_a_job_marked_for_cancellation_cancels_it)
{
    char id[AT_ID_SIZE];
    ct_enqueue(id, ct_opts(CT_Q("q")));
    at_job *j = ct_claim(CT_Q("q"));
    int32_t pending = 0;
    ck_assert_int_eq(at_cancel(&pending, ct_store, id), 0);
    ck_assert_int_eq(pending, 1);
    ck_assert_int_eq(at_release(ct_store, id, at_job_token(j), 0), AT_ERR_CANCELLED);
    ck_assert_int_eq(ct_state(id), AT_STATE_CANCELLED);
}
END_TEST

START_TEST(release_checks_its_arguments)
{
    ck_assert_int_eq(at_release(ct_store, "not-an-id", 1, 0), AT_ERR_INVAL);
    ck_assert_int_eq(at_release(ct_store, "01ARZ3NDEKTSV4RRFFQ69G5FAV", 1, 0), AT_ERR_NOTFOUND);
    char id[AT_ID_SIZE];
    ct_enqueue(id, ct_opts(CT_Q("q")));
    ck_assert_int_eq(at_release(ct_store, id, 1, -1), AT_ERR_RANGE);
    ck_assert_int_eq(at_release(ct_store, id, 0, 0), AT_ERR_STALE); /* READY: nothing to give back */
}
END_TEST

START_TEST(a_paused_queue_is_skipped_by_claims_until_resumed)
{
    char id[AT_ID_SIZE];
    ct_enqueue(id, ct_opts(CT_Q("q")));
    ck_assert_int_eq(at_queue_pause(ct_store, CT_Q("q")), 0);
    int32_t paused = 0;
    ck_assert_int_eq(at_queue_is_paused(&paused, ct_store, CT_Q("q")), 0);
    ck_assert_int_eq(paused, 1);
    ck_assert_ptr_null(ct_try_claim(CT_Q("q")));
    ck_assert_int_eq(ct_state(id), AT_STATE_READY);
    /* Other queues are not affected. */
    ct_enqueue(NULL, ct_opts(CT_Q("other")));
    ct_claim(CT_Q("other"));
    ck_assert_int_eq(at_queue_resume(ct_store, CT_Q("q")), 0);
    ck_assert_int_eq(at_queue_is_paused(&paused, ct_store, CT_Q("q")), 0);
    ck_assert_int_eq(paused, 0);
    ck_assert_str_eq(at_job_id(ct_claim(CT_Q("q"))), id);
}
END_TEST

START_TEST(a_queue_can_be_paused_before_it_has_jobs)
{
    int32_t paused = 1;
    ck_assert_int_eq(at_queue_is_paused(&paused, ct_store, CT_Q("never")), 0);
    ck_assert_int_eq(paused, 0);
    ck_assert_int_eq(at_queue_pause(ct_store, CT_Q("empty")), 0);
    ct_enqueue(NULL, ct_opts(CT_Q("empty")));
    ck_assert_ptr_null(ct_try_claim(CT_Q("empty")));
    ck_assert_int_eq(at_queue_resume(ct_store, CT_Q("empty")), 0);
    ct_claim(CT_Q("empty"));
}
END_TEST

START_TEST(a_paused_queue_still_takes_enqueues_and_running_jobs_finish)
{
    char id[AT_ID_SIZE];
    ct_enqueue(id, ct_opts(CT_Q("q")));
    at_job *j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_queue_pause(ct_store, CT_Q("q")), 0);
    ct_enqueue(NULL, ct_opts(CT_Q("q")));
    ck_assert_int_eq(at_ack(ct_store, id, at_job_token(j), NULL, 0), 0);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_READY), 1);
}
END_TEST

START_TEST(queue_calls_check_names)
{
    int32_t p;
    ck_assert_int_eq(at_queue_pause(ct_store, "bad name"), AT_ERR_NAME);
    ck_assert_int_eq(at_queue_resume(ct_store, NULL), AT_ERR_NAME);
    ck_assert_int_eq(at_queue_is_paused(&p, ct_store, ""), AT_ERR_NAME);
    ck_assert_int_eq(at_queue_is_paused(NULL, ct_store, "q"), AT_ERR_INVAL);
}
END_TEST

/* ------------------------------------------------------------ interrupt */

struct blocked {
    const char *queue;
    int rc;
    size_t n;
    int64_t took;
};

static void *block_forever(void *arg)
{
    struct blocked *b = arg;
    at_job *j = NULL;
    const char *qs[1] = {b->queue};
    int64_t t0 = ct_mono_ms();
    b->rc = at_poll(&j, &b->n, ct_store, qs, 1, 1, -1);
    b->took = ct_mono_ms() - t0;
    if (b->n)
        at_job_free(j);
    return NULL;
}

START_TEST(interrupt_returns_blocked_pollers_with_no_job)
{
    struct blocked b = {.queue = CT_Q("q"), .rc = -999};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, block_forever, &b), 0);
    ct_sleep_real(100);
    ck_assert_int_eq(at_store_interrupt(ct_store), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(b.rc, 0);
    ck_assert_uint_eq(b.n, 0);
    ck_assert_int_lt(b.took, 2000);
    /* Later polls are not affected. */
    ct_enqueue(NULL, ct_opts(CT_Q("q")));
    ck_assert_uint_eq(ct_poll_count(CT_Q("q"), 1), 1);
    ck_assert_int_eq(at_store_interrupt(NULL), AT_ERR_INVAL);
}
END_TEST

/* ------------------------------------------------------- trace context */

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

START_TEST(traceparent_travels_with_the_job)
{
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set_str(o, AT_OPT_TRACEPARENT, TP);
    char id[AT_ID_SIZE], plain[AT_ID_SIZE];
    ct_enqueue(id, o);
    ct_enqueue(plain, ct_opts(CT_Q("q")));
    ck_assert_str_eq(at_job_traceparent(ct_get(id)), TP);
    ck_assert_ptr_null(at_job_traceparent(ct_get(plain)));
    at_job *a = ct_claim(CT_Q("q")), *b = ct_claim(CT_Q("q"));
    at_job *traced = strcmp(at_job_id(a), id) == 0 ? a : b;
    ck_assert_str_eq(at_job_traceparent(traced), TP);
}
END_TEST

START_TEST(malformed_traceparents_are_refused)
{
    at_opts *o = ct_opts(NULL);
    const char *bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",       /* no flags */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    /* zero parent id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    /* forbidden version */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx", /* trailing data */
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",    /* separators */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(at_opts_set_str(o, AT_OPT_TRACEPARENT, bad[i]) == AT_ERR_INVAL, "accepted: %s", bad[i]);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_TRACEPARENT, TP), 0);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_TRACEPARENT, NULL), 0);
}
END_TEST

TCase *ct_tcase_queues(void)
{
    TCase *tc = ct_tcase("queues");
    tcase_add_test(tc, release_puts_the_job_back_without_using_an_attempt);
    tcase_add_test(tc, release_with_a_delay_schedules_the_job);
    tcase_add_test(tc, release_of_a_job_marked_for_cancellation_cancels_it);
    tcase_add_test(tc, release_checks_its_arguments);
    tcase_add_test(tc, a_paused_queue_is_skipped_by_claims_until_resumed);
    tcase_add_test(tc, a_queue_can_be_paused_before_it_has_jobs);
    tcase_add_test(tc, a_paused_queue_still_takes_enqueues_and_running_jobs_finish);
    tcase_add_test(tc, queue_calls_check_names);
    tcase_add_test(tc, interrupt_returns_blocked_pollers_with_no_job);
    tcase_add_test(tc, traceparent_travels_with_the_job);
    tcase_add_test(tc, malformed_traceparents_are_refused);
    return tc;
}
