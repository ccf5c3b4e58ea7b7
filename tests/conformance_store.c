/*
 * conformance_store.c - conformance: idempotency, batches, get, list, stats
 * and purge (docs/SEMANTICS.md "Idempotency", "Batches"; the inspection
 * calls of <asynctask.h>).
 *
 * Counts are read per queue from at_stats, so the tests also hold on a store
 * shared with other tests or runs: every queue and key name carries the
 * test's name and a run tag (ct_name).
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "conformance.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNKNOWN_ID "01ARZ3NDEKTSV4RRFFQ69G5FAV"

/* --------------------------------------------------------- idempotency */

static at_opts *keyed_opts(const char *queue, const char *key)
{
    at_opts *o = ct_opts(queue);
    ct_set_str(o, AT_OPT_IDEMPOTENCY_KEY, key);
    return o;
}

START_TEST(duplicate_key_returns_the_existing_id)
{
    char first[AT_ID_SIZE], second[AT_ID_SIZE] = "";
    at_opts *o = keyed_opts(CT_Q("q"), CT_KEY("k"));
    ct_enqueue(first, o);
    ck_assert_int_eq(at_enqueue(second, ct_store, "t", NULL, 0, o), AT_ERR_DUPLICATE);
    ck_assert_str_eq(second, first);
}
END_TEST

START_TEST(duplicate_key_creates_no_job)
{
    at_opts *o = keyed_opts(CT_Q("q"), CT_KEY("k"));
    ct_enqueue(NULL, o);
    ck_assert_int_eq(at_enqueue(NULL, ct_store, "t", "other", 5, o), AT_ERR_DUPLICATE);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_ANY), 1);
}
END_TEST

START_TEST(key_is_held_within_its_ttl)
{
    char first[AT_ID_SIZE], second[AT_ID_SIZE] = "";
    at_opts *o = keyed_opts(CT_Q("q"), CT_KEY("k"));
    ct_set(o, AT_OPT_IDEMPOTENCY_TTL_MS, 1000);
    ct_enqueue(first, o);
    if (ct_manual())
        ct_advance(999);
    ck_assert_int_eq(at_enqueue(second, ct_store, "t", NULL, 0, o), AT_ERR_DUPLICATE);
    ck_assert_str_eq(second, first);
}
END_TEST

START_TEST(key_is_free_again_after_its_ttl)
{
    char first[AT_ID_SIZE], second[AT_ID_SIZE];
    at_opts *o = keyed_opts(CT_Q("q"), CT_KEY("k"));
    ct_set(o, AT_OPT_IDEMPOTENCY_TTL_MS, 300);
    ct_enqueue(first, o);
    ct_advance(301);
    ck_assert_int_eq(at_enqueue(second, ct_store, "t", NULL, 0, o), 0);
    ck_assert_str_ne(second, first);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_ANY), 2);
}
END_TEST

START_TEST(store_idempotency_ttl_applies_without_a_job_ttl)
{
    char first[AT_ID_SIZE], second[AT_ID_SIZE];
    at_opts *o = keyed_opts(CT_Q("q"), CT_KEY("k"));
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_IDEMPOTENCY_TTL_MS, 300), 0);
    ct_enqueue(first, o);
    ck_assert_int_eq(at_enqueue(second, ct_store, "t", NULL, 0, o), AT_ERR_DUPLICATE);
    ct_advance(301);
    ck_assert_int_eq(at_enqueue(second, ct_store, "t", NULL, 0, o), 0);
    ck_assert_str_ne(second, first);
}
END_TEST

START_TEST(key_is_per_store_not_per_queue)
{
    char first[AT_ID_SIZE], second[AT_ID_SIZE] = "";
    ct_enqueue(first, keyed_opts(CT_Q("a"), CT_KEY("k")));
    ck_assert_int_eq(at_enqueue(second, ct_store, "t", NULL, 0, keyed_opts(CT_Q("b"), CT_KEY("k"))),
                     AT_ERR_DUPLICATE);
    ck_assert_str_eq(second, first);
    ck_assert_uint_eq(ct_count(CT_Q("b"), AT_STATE_ANY), 0);
}
END_TEST

enum { RACERS = 8 };
struct racer {
    pthread_t thread;
    pthread_barrier_t *start;
    const at_opts *opts;
    int rc;
    char id[AT_ID_SIZE];
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    pthread_barrier_wait(r->start);
    r->rc = at_enqueue(r->id, ct_store, "t", NULL, 0, r->opts);
    return NULL;
}

START_TEST(racing_enqueues_with_one_key_create_exactly_one_job)
{
    struct racer r[RACERS];
    pthread_barrier_t start;
    at_opts *o = keyed_opts(CT_Q("q"), CT_KEY("k"));
    int created = 0, winner = -1;
    ck_assert_int_eq(pthread_barrier_init(&start, NULL, RACERS), 0);
    for (int i = 0; i < RACERS; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].start = &start;
        r[i].opts = o; /* read-only in every thread: enqueue copies it */
        ck_assert_int_eq(pthread_create(&r[i].thread, NULL, racer_main, &r[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        ck_assert_int_eq(pthread_join(r[i].thread, NULL), 0);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < RACERS; i++) {
        ck_assert_msg(r[i].rc == 0 || r[i].rc == AT_ERR_DUPLICATE, "racer %d: %s", i, at_err_name(r[i].rc));
        if (r[i].rc == 0) {
            created++;
            winner = i;
        }
    }
    ck_assert_int_eq(created, 1);
    for (int i = 0; i < RACERS; i++)
        ck_assert_str_eq(r[i].id, r[winner].id);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_ANY), 1);
}
END_TEST

START_TEST(batch_item_with_a_held_key_resolves_to_the_existing_job)
{
    char existing[AT_ID_SIZE];
    at_batch *b = ct_batch();
    ct_enqueue(existing, keyed_opts(CT_Q("q"), CT_KEY("k")));
    ck_assert_int_eq(at_batch_add(b, "t", NULL, 0, keyed_opts(CT_Q("q"), CT_KEY("k"))), 0);
    ck_assert_int_eq(at_batch_add(b, "t", NULL, 0, ct_opts(CT_Q("q"))), 0);
    ck_assert_int_eq(at_enqueue_batch(ct_store, b), 0);
    ck_assert_int_eq(at_batch_status(b, 0), AT_ERR_DUPLICATE);
    ck_assert_str_eq(at_batch_id(b, 0), existing);
    ck_assert_int_eq(at_batch_status(b, 1), 0);
    ck_assert_str_ne(at_batch_id(b, 1), existing);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_ANY), 2);
}
END_TEST

START_TEST(batch_items_sharing_a_key_create_one_job)
{
    at_batch *b = ct_batch();
    at_opts *o = keyed_opts(CT_Q("q"), CT_KEY("k"));
    ck_assert_int_eq(at_batch_add(b, "t", "1", 1, o), 0);
    ck_assert_int_eq(at_batch_add(b, "t", "2", 1, o), 0);
    ck_assert_int_eq(at_enqueue_batch(ct_store, b), 0);
    ck_assert_int_eq(at_batch_status(b, 0), 0);
    ck_assert_int_eq(at_batch_status(b, 1), AT_ERR_DUPLICATE);
    ck_assert_str_eq(at_batch_id(b, 1), at_batch_id(b, 0));
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_ANY), 1);
}
END_TEST

TCase *ct_tcase_idempotency(void)
{
    TCase *tc = ct_tcase("idempotency");
    tcase_add_test(tc, duplicate_key_returns_the_existing_id);
    tcase_add_test(tc, duplicate_key_creates_no_job);
    tcase_add_test(tc, key_is_held_within_its_ttl);
    tcase_add_test(tc, key_is_free_again_after_its_ttl);
    tcase_add_test(tc, store_idempotency_ttl_applies_without_a_job_ttl);
    tcase_add_test(tc, key_is_per_store_not_per_queue);
    tcase_add_test(tc, racing_enqueues_with_one_key_create_exactly_one_job);
    tcase_add_test(tc, batch_item_with_a_held_key_resolves_to_the_existing_job);
    tcase_add_test(tc, batch_items_sharing_a_key_create_one_job);
    return tc;
}

/* --------------------------------------------------------------- batch */

START_TEST(batch_enqueue_creates_every_job)
{
    at_batch *b = ct_batch();
    at_opts *o = ct_opts(CT_Q("q"));
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(at_batch_add(b, "t", NULL, 0, o), 0);
    ck_assert_uint_eq(at_batch_count(b), 5);
    ck_assert_int_eq(at_enqueue_batch(ct_store, b), 0);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_READY), 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(at_batch_status(b, i), 0);
}
END_TEST

START_TEST(batch_ids_follow_the_order_of_adding)
{
    at_batch *b = ct_batch();
    at_opts *o = ct_opts(CT_Q("q"));
    char payload[2] = "0";
    for (int i = 0; i < 4; i++) {
        payload[0] = (char)('0' + i);
        ck_assert_int_eq(at_batch_add(b, "t", payload, 1, o), 0);
    }
    ck_assert_int_eq(at_enqueue_batch(ct_store, b), 0);
    for (size_t i = 0; i < 4; i++) {
        size_t len = 0;
        const char *p;
        ck_assert_ptr_nonnull(at_batch_id(b, i));
        p = at_job_payload(ct_get(at_batch_id(b, i)), &len);
        ck_assert_uint_eq(len, 1);
        ck_assert_int_eq(p[0], (char)('0' + i));
        if (i > 0)
            ck_assert_str_lt(at_batch_id(b, i - 1), at_batch_id(b, i));
    }
}
END_TEST

START_TEST(batch_id_is_null_before_enqueue_and_out_of_range)
{
    at_batch *b = ct_batch();
    ck_assert_int_eq(at_batch_add(b, "t", NULL, 0, ct_opts(CT_Q("q"))), 0);
    ck_assert_ptr_null(at_batch_id(b, 0));
    ck_assert_int_eq(at_enqueue_batch(ct_store, b), 0);
    ck_assert_ptr_nonnull(at_batch_id(b, 0));
    ck_assert_ptr_null(at_batch_id(b, 1));
}
END_TEST

START_TEST(batch_add_with_a_bad_name_is_refused_and_not_counted)
{
    at_batch *b = ct_batch();
    ck_assert_int_eq(at_batch_add(b, "t", NULL, 0, ct_opts(CT_Q("q"))), 0);
    ck_assert_int_eq(at_batch_add(b, "bad name", NULL, 0, ct_opts(CT_Q("q"))), AT_ERR_NAME);
    ck_assert_int_eq(at_batch_add(b, NULL, NULL, 0, ct_opts(CT_Q("q"))), AT_ERR_NAME);
    ck_assert_uint_eq(at_batch_count(b), 1);
    ck_assert_int_eq(at_enqueue_batch(ct_store, b), 0);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_ANY), 1);
}
END_TEST

START_TEST(batch_add_leaves_the_payload_limit_to_the_store)
{
    /* A batch knows no store, and a store's limit may be above the default:
     * the limit is the store's, checked by at_enqueue_batch. */
    at_batch *b = ct_batch();
    char *big = calloc(1, 1048577);
    size_t len = 0;
    int rc_add, rc_enq;
    ck_assert_ptr_nonnull(big);
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_MAX_PAYLOAD, 2 * 1048576), 0);
    rc_add = at_batch_add(b, "t", big, 1048577, ct_opts(CT_Q("q")));
    free(big);
    ck_assert_int_eq(rc_add, 0);
    rc_enq = at_enqueue_batch(ct_store, b);
    ck_assert_int_eq(rc_enq, 0);
    at_job_payload(ct_get(at_batch_id(b, 0)), &len);
    ck_assert_uint_eq(len, 1048577);
}
END_TEST

START_TEST(batch_add_with_null_payload_and_length_is_inval)
{
    at_batch *b = ct_batch();
    ck_assert_int_eq(at_batch_add(b, "t", NULL, 3, ct_opts(CT_Q("q"))), AT_ERR_INVAL);
    ck_assert_uint_eq(at_batch_count(b), 0);
}
END_TEST

START_TEST(empty_batch_enqueue_is_inval)
{
    ck_assert_int_eq(at_enqueue_batch(ct_store, ct_batch()), AT_ERR_INVAL);
}
END_TEST

START_TEST(batch_over_the_store_payload_limit_creates_none_of_its_jobs)
{
    at_batch *b = ct_batch();
    at_opts *o = ct_opts(CT_Q("q"));
    char payload[100];
    at_job *jobs[10];
    size_t n = 99;
    char cursor[AT_CURSOR_SIZE];
    memset(payload, 'p', sizeof payload);
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_MAX_PAYLOAD, 64), 0);
    /* at_batch_add knows no store: the store's own limit is checked by
     * at_enqueue_batch, for the whole batch, before anything is written. */
    ck_assert_int_eq(at_batch_add(b, "t", payload, 10, o), 0);
    ck_assert_int_eq(at_batch_add(b, "t", payload, 100, o), 0);
    ck_assert_int_eq(at_batch_add(b, "t", payload, 10, o), 0);
    ck_assert_int_eq(at_enqueue_batch(ct_store, b), AT_ERR_TOOBIG);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_ANY), 0);
    ck_assert_int_eq(at_list(jobs, &n, cursor, ct_store, CT_Q("q"), AT_STATE_ANY, NULL, 10), 0);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(batch_clear_empties_the_batch_for_reuse)
{
    at_batch *b = ct_batch();
    ck_assert_int_eq(at_batch_add(b, "t", NULL, 0, ct_opts(CT_Q("q"))), 0);
    ck_assert_int_eq(at_batch_add(b, "t", NULL, 0, ct_opts(CT_Q("q"))), 0);
    at_batch_clear(b);
    ck_assert_uint_eq(at_batch_count(b), 0);
    ck_assert_int_eq(at_batch_add(b, "t", NULL, 0, ct_opts(CT_Q("q"))), 0);
    ck_assert_int_eq(at_enqueue_batch(ct_store, b), 0);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_ANY), 1);
}
END_TEST

TCase *ct_tcase_batch(void)
{
    TCase *tc = ct_tcase("batch");
    tcase_add_test(tc, batch_enqueue_creates_every_job);
    tcase_add_test(tc, batch_ids_follow_the_order_of_adding);
    tcase_add_test(tc, batch_id_is_null_before_enqueue_and_out_of_range);
    tcase_add_test(tc, batch_add_with_a_bad_name_is_refused_and_not_counted);
    tcase_add_test(tc, batch_add_leaves_the_payload_limit_to_the_store);
    tcase_add_test(tc, batch_add_with_null_payload_and_length_is_inval);
    tcase_add_test(tc, empty_batch_enqueue_is_inval);
    tcase_add_test(tc, batch_over_the_store_payload_limit_creates_none_of_its_jobs);
    tcase_add_test(tc, batch_clear_empties_the_batch_for_reuse);
    return tc;
}

/* ----------------------------------------------------------------- get */

START_TEST(get_reports_every_field_of_a_new_job)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    at_job *g;
    size_t len = 99;
    int64_t before, after, created;
    const void *p;
    ct_set(o, AT_OPT_PRIORITY, -7);
    ct_set(o, AT_OPT_MAX_ATTEMPTS, 3);
    ct_set(o, AT_OPT_LEASE_MS, 5000);
    ct_set_str(o, AT_OPT_IDEMPOTENCY_KEY, CT_KEY("k"));
    before = ct_now();
    ck_assert_int_eq(at_enqueue(id, ct_store, "mail.send", "hello", 5, o), 0);
    after = ct_now();
    g = ct_get(id);
    ck_assert_str_eq(at_job_id(g), id);
    ck_assert_str_eq(at_job_type(g), "mail.send");
    ck_assert_str_eq(at_job_queue(g), CT_Q("q"));
    p = at_job_payload(g, &len);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(p, "hello", 5);
    ck_assert_int_eq(at_job_state(g), AT_STATE_READY);
    ck_assert_int_eq(at_job_priority(g), -7);
    ck_assert_uint_eq(at_job_attempts(g), 0);
    ck_assert_uint_eq(at_job_max_attempts(g), 3);
    ck_assert_uint_eq(at_job_token(g), 0);
    created = at_job_time(g, AT_JOB_TIME_CREATED);
    CT_ASSERT_TIME(created, before, after);
    ck_assert_int_eq(at_job_time(g, AT_JOB_TIME_RUN_AT), created);
    ck_assert_int_eq(at_job_time(g, AT_JOB_TIME_STARTED), AT_TIME_NONE);
    ck_assert_int_eq(at_job_time(g, AT_JOB_TIME_LEASE), AT_TIME_NONE);
    ck_assert_int_eq(at_job_time(g, AT_JOB_TIME_FINISHED), AT_TIME_NONE);
    CT_ASSERT_TIME(at_job_time(g, AT_JOB_TIME_UPDATED), created, after);
    ck_assert_ptr_null(at_job_last_error(g));
    ck_assert_ptr_null(at_job_result(g, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(at_job_idempotency_key(g), CT_KEY("k"));
    ck_assert_int_eq(at_job_cancel_requested(g), 0);
}
END_TEST

START_TEST(get_reports_the_defaults_of_a_job_without_opts)
{
    char id[AT_ID_SIZE];
    at_job *g;
    ck_assert_int_eq(at_enqueue(id, ct_store, "t", NULL, 0, NULL), 0);
    g = ct_get(id);
    ck_assert_str_eq(at_job_queue(g), "default");
    ck_assert_int_eq(at_job_priority(g), 0);
    ck_assert_uint_eq(at_job_max_attempts(g), 25);
    ck_assert_ptr_null(at_job_idempotency_key(g));
    /* Leave the shared "default" queue as found. */
    ck_assert_int_eq(at_cancel(NULL, ct_store, id), 0);
}
END_TEST

START_TEST(get_reports_the_claim_fields_of_a_running_job)
{
    char id[AT_ID_SIZE];
    at_job *j, *g;
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set(o, AT_OPT_LEASE_MS, 5000);
    ct_enqueue(id, o);
    ct_advance(20);
    j = ct_claim(CT_Q("q"));
    g = ct_get(id);
    ck_assert_int_eq(at_job_state(g), AT_STATE_RUNNING);
    ck_assert_uint_eq(at_job_attempts(g), 1);
    ck_assert_int_eq(at_job_time(g, AT_JOB_TIME_STARTED), at_job_time(j, AT_JOB_TIME_STARTED));
    ck_assert_int_ge(at_job_time(g, AT_JOB_TIME_STARTED), at_job_time(g, AT_JOB_TIME_CREATED) + 20);
    ck_assert_int_eq(at_job_time(g, AT_JOB_TIME_LEASE), at_job_time(g, AT_JOB_TIME_STARTED) + 5000);
    ck_assert_int_eq(at_job_time(g, AT_JOB_TIME_UPDATED), at_job_time(g, AT_JOB_TIME_STARTED));
    ck_assert_int_eq(at_job_time(g, AT_JOB_TIME_FINISHED), AT_TIME_NONE);
}
END_TEST

START_TEST(get_of_an_unknown_id_is_notfound)
{
    at_job *j = (at_job *)&j;
    ck_assert_int_eq(at_get(&j, ct_store, UNKNOWN_ID), AT_ERR_NOTFOUND);
}
END_TEST

START_TEST(get_of_a_malformed_id_is_inval)
{
    static const char *const bad[] = {"",
                                      "not-an-id",
                                      "01ARZ3NDEKTSV4RRFFQ69G5FA",
                                      "01ARZ3NDEKTSV4RRFFQ69G5FAVX",
                                      "01ARZ3NDEKTSV4RRFFQ69G5FA!",
                                      "01ARZ3NDEKTSV4RRFFQ69G5F V"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        at_job *j = NULL;
        ck_assert_msg(at_get(&j, ct_store, bad[i]) == AT_ERR_INVAL, "at_get(\"%s\") is not AT_ERR_INVAL",
                      bad[i]);
    }
}
END_TEST

TCase *ct_tcase_get(void)
{
    TCase *tc = ct_tcase("get");
    tcase_add_test(tc, get_reports_every_field_of_a_new_job);
    tcase_add_test(tc, get_reports_the_defaults_of_a_job_without_opts);
    tcase_add_test(tc, get_reports_the_claim_fields_of_a_running_job);
    tcase_add_test(tc, get_of_an_unknown_id_is_notfound);
    tcase_add_test(tc, get_of_a_malformed_id_is_inval);
    return tc;
}

/* ---------------------------------------------------------------- list */

/* One page of at_list; the jobs are kept for the teardown. */
static size_t list_page(at_job **jobs, char cursor_out[AT_CURSOR_SIZE], const char *queue, int32_t state,
                        const char *cursor, size_t limit)
{
    size_t n = 0;
    int rc = at_list(jobs, &n, cursor_out, ct_store, queue, state, cursor, limit);
    ck_assert_msg(rc == 0, "at_list: %s", at_err_name(rc));
    ck_assert_uint_le(n, limit);
    for (size_t i = 0; i < n; i++)
        ct_keep_job(jobs[i]);
    return n;
}

START_TEST(list_filters_by_queue_and_state)
{
    char a[3][AT_ID_SIZE];
    at_job *jobs[10], *running;
    char cursor[AT_CURSOR_SIZE];
    for (int i = 0; i < 3; i++)
        ct_enqueue(a[i], ct_opts(CT_Q("a")));
    ct_enqueue(NULL, ct_opts(CT_Q("b")));
    running = ct_claim(CT_Q("a"));
    ck_assert_str_eq(at_job_id(running), a[0]);

    ck_assert_uint_eq(list_page(jobs, cursor, CT_Q("a"), AT_STATE_READY, NULL, 10), 2);
    ck_assert_str_eq(at_job_id(jobs[0]), a[1]);
    ck_assert_str_eq(at_job_id(jobs[1]), a[2]);
    ck_assert_uint_eq(list_page(jobs, cursor, CT_Q("a"), AT_STATE_RUNNING, NULL, 10), 1);
    ck_assert_str_eq(at_job_id(jobs[0]), a[0]);
    ck_assert_uint_eq(list_page(jobs, cursor, CT_Q("a"), AT_STATE_DEAD, NULL, 10), 0);
    ck_assert_str_eq(cursor, "");
}
END_TEST

START_TEST(list_returns_the_oldest_id_first)
{
    char ids[5][AT_ID_SIZE];
    at_job *jobs[10];
    char cursor[AT_CURSOR_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    /* Priority and run_at must not change the listing order. */
    for (int i = 0; i < 5; i++) {
        ct_set(o, AT_OPT_PRIORITY, i * 10);
        ct_set(o, AT_OPT_RUN_AT, ct_now() - i * 1000);
        ct_enqueue(ids[i], o);
    }
    ck_assert_uint_eq(list_page(jobs, cursor, CT_Q("q"), AT_STATE_ANY, "", 10), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(at_job_id(jobs[i]), ids[i]);
}
END_TEST

START_TEST(list_pages_through_25_jobs_10_at_a_time)
{
    char ids[25][AT_ID_SIZE];
    at_job *jobs[10];
    char cursor[AT_CURSOR_SIZE], next[AT_CURSOR_SIZE];
    static const size_t sizes[3] = {10, 10, 5};
    size_t seen = 0;
    at_opts *o = ct_opts(CT_Q("q"));
    for (int i = 0; i < 25; i++)
        ct_enqueue(ids[i], o);
    cursor[0] = '\0';
    for (int page = 0; page < 3; page++) {
        size_t n = list_page(jobs, next, CT_Q("q"), AT_STATE_ANY, cursor, 10);
        ck_assert_uint_eq(n, sizes[page]);
        for (size_t i = 0; i < n; i++)
            ck_assert_str_eq(at_job_id(jobs[i]), ids[seen + i]);
        seen += n;
        if (page < 2)
            ck_assert_str_ne(next, "");
        memcpy(cursor, next, sizeof cursor);
    }
    ck_assert_str_eq(cursor, "");
}
END_TEST

/* Listing by each state a plain job can be in gives exactly that state's
 * jobs, oldest first, over pages of 2.  A store may read a state's own index
 * for this when it is small beside the queue (Redis does, under a quarter,
 * with SUCCEEDED and CANCELLED sharing one index): 3 jobs of each state and
 * 10 SCHEDULED ones take both ways there.  The states' jobs are created
 * interleaved. */
START_TEST(list_by_each_state_gives_exactly_its_jobs_over_several_pages)
{
    enum { NSTATES = 6, MOST = 10 };
    static const int32_t states[NSTATES] = {AT_STATE_READY,     AT_STATE_SCHEDULED, AT_STATE_RUNNING,
                                            AT_STATE_SUCCEEDED, AT_STATE_DEAD,      AT_STATE_CANCELLED};
    static const int per[NSTATES] = {3, MOST, 3, 3, 3, 3};
    char want[NSTATES][MOST][AT_ID_SIZE];
    const char *q = CT_Q("q");
    at_opts *now = ct_opts(q), *later = ct_opts(q), *first = ct_opts(q);
    ct_set(later, AT_OPT_RUN_AT, ct_now() + 3600000);
    ct_set(first, AT_OPT_PRIORITY, 100); /* claimed at once, before the READY ones */
    ct_set(first, AT_OPT_LEASE_MS, 3600000);
    for (int r = 0; r < MOST; r++) {
        for (int k = 0; k < NSTATES; k++) {
            if (r >= per[k])
                continue;
            char *id = want[k][r];
            int32_t st = states[k];
            ct_enqueue(id, st == AT_STATE_READY || st == AT_STATE_CANCELLED ? now
                           : st == AT_STATE_SCHEDULED                        ? later
                                                                             : first);
            if (st == AT_STATE_CANCELLED) {
                ck_assert_int_eq(at_cancel(NULL, ct_store, id), 0);
            } else if (st == AT_STATE_RUNNING || st == AT_STATE_SUCCEEDED || st == AT_STATE_DEAD) {
                at_job *j = ct_claim(q);
                ck_assert_str_eq(at_job_id(j), id);
                if (st == AT_STATE_SUCCEEDED)
                    ck_assert_int_eq(at_ack(ct_store, id, at_job_token(j), NULL, 0), 0);
                else if (st == AT_STATE_DEAD)
                    ck_assert_int_eq(at_fail(NULL, ct_store, id, at_job_token(j), "gone", AT_FAIL_PERMANENT), 0);
            }
        }
    }
    for (int k = 0; k < NSTATES; k++) {
        char cursor[AT_CURSOR_SIZE] = "", next[AT_CURSOR_SIZE];
        int seen = 0, pages = 0;
        do {
            at_job *jobs[2];
            size_t n = list_page(jobs, next, q, states[k], cursor, 2);
            for (size_t i = 0; i < n; i++) {
                ck_assert_msg(seen < per[k], "%s: more than %d jobs listed", at_state_name(states[k]), per[k]);
                ck_assert_str_eq(at_job_id(jobs[i]), want[k][seen]);
                ck_assert_int_eq(at_job_state(jobs[i]), states[k]);
                seen++;
            }
            memcpy(cursor, next, sizeof cursor);
        } while (cursor[0] != '\0' && ++pages < 2 * MOST);
        ck_assert_msg(seen == per[k], "%s: %d of %d jobs listed", at_state_name(states[k]), seen, per[k]);
    }
}
END_TEST

START_TEST(list_pages_have_no_duplicates_or_gaps_while_jobs_change_state)
{
    char ids[25][AT_ID_SIZE];
    int seen[25] = {0};
    at_job *jobs[10];
    char cursor[AT_CURSOR_SIZE] = "", next[AT_CURSOR_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    int pages = 0;
    for (int i = 0; i < 25; i++)
        ct_enqueue(ids[i], o);
    do {
        size_t n = list_page(jobs, next, CT_Q("q"), AT_STATE_ANY, cursor, 10);
        for (size_t i = 0; i < n; i++) {
            int k = -1;
            for (int m = 0; m < 25; m++)
                if (strcmp(at_job_id(jobs[i]), ids[m]) == 0)
                    k = m;
            ck_assert_msg(k >= 0, "listed a job that is not in the queue");
            seen[k]++;
        }
        memcpy(cursor, next, sizeof cursor);
        if (pages == 0) {
            /* Between pages: claim the oldest (listed) jobs, cancel jobs of
             * the pages still to come, finish one. */
            at_job *j = ct_claim(CT_Q("q"));
            ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), 0);
            ct_claim(CT_Q("q"));
            ck_assert_int_eq(at_cancel(NULL, ct_store, ids[12]), 0);
            ck_assert_int_eq(at_cancel(NULL, ct_store, ids[24]), 0);
        }
        pages++;
    } while (cursor[0] != '\0' && pages < 10);
    for (int i = 0; i < 25; i++)
        ck_assert_msg(seen[i] == 1, "job %d was listed %d times", i, seen[i]);
}
END_TEST

START_TEST(list_limit_zero_is_inval)
{
    at_job *jobs[1];
    size_t n = 0;
    char cursor[AT_CURSOR_SIZE];
    ck_assert_int_eq(at_list(jobs, &n, cursor, ct_store, CT_Q("q"), AT_STATE_ANY, NULL, 0), AT_ERR_INVAL);
}
END_TEST

START_TEST(list_limit_over_10000_is_inval)
{
    at_job **jobs = calloc(10001, sizeof *jobs);
    size_t n = 0;
    char cursor[AT_CURSOR_SIZE];
    int rc_over, rc_max;
    ck_assert_ptr_nonnull(jobs);
    ct_enqueue(NULL, ct_opts(CT_Q("q")));
    rc_over = at_list(jobs, &n, cursor, ct_store, CT_Q("q"), AT_STATE_ANY, NULL, 10001);
    rc_max = at_list(jobs, &n, cursor, ct_store, CT_Q("q"), AT_STATE_ANY, NULL, 10000);
    if (rc_max == 0)
        for (size_t i = 0; i < n; i++)
            at_job_free(jobs[i]);
    free(jobs);
    ck_assert_int_eq(rc_over, AT_ERR_INVAL);
    ck_assert_int_eq(rc_max, 0);
    ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(list_any_state_lists_every_state)
{
    char dead[AT_ID_SIZE];
    at_job *jobs[10], *j;
    char cursor[AT_CURSOR_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    ct_enqueue(dead, o);
    j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_fail(NULL, ct_store, dead, at_job_token(j), "x", AT_FAIL_PERMANENT), 0);
    ct_enqueue(NULL, o);
    ct_claim(CT_Q("q"));
    ct_enqueue(NULL, o);
    ct_set(o, AT_OPT_DELAY_MS, 60000);
    ct_enqueue(NULL, o);
    ck_assert_uint_eq(list_page(jobs, cursor, CT_Q("q"), AT_STATE_ANY, NULL, 10), 4);
    ck_assert_int_eq(at_job_state(jobs[0]), AT_STATE_DEAD);
    ck_assert_int_eq(at_job_state(jobs[1]), AT_STATE_RUNNING);
    ck_assert_int_eq(at_job_state(jobs[2]), AT_STATE_READY);
    ck_assert_int_eq(at_job_state(jobs[3]), AT_STATE_SCHEDULED);
}
END_TEST

START_TEST(list_without_queue_lists_every_queue)
{
    char a[AT_ID_SIZE], b[AT_ID_SIZE];
    char cursor[AT_CURSOR_SIZE] = "", next[AT_CURSOR_SIZE];
    at_job *jobs[100];
    int found_a = 0, found_b = 0, pages = 0;
    ct_enqueue(a, ct_opts(CT_Q("a")));
    ct_enqueue(b, ct_opts(CT_Q("b")));
    /* A shared store may hold other jobs: page until both are seen. */
    do {
        size_t n = list_page(jobs, next, NULL, AT_STATE_ANY, cursor, 100);
        for (size_t i = 0; i < n; i++) {
            found_a += strcmp(at_job_id(jobs[i]), a) == 0;
            found_b += strcmp(at_job_id(jobs[i]), b) == 0;
        }
        memcpy(cursor, next, sizeof cursor);
    } while (cursor[0] != '\0' && ++pages < 1000);
    ck_assert_int_eq(found_a, 1);
    ck_assert_int_eq(found_b, 1);
}
END_TEST

TCase *ct_tcase_list(void)
{
    TCase *tc = ct_tcase("list");
    tcase_add_test(tc, list_filters_by_queue_and_state);
    tcase_add_test(tc, list_returns_the_oldest_id_first);
    tcase_add_test(tc, list_pages_through_25_jobs_10_at_a_time);
    tcase_add_test(tc, list_by_each_state_gives_exactly_its_jobs_over_several_pages);
    tcase_add_test(tc, list_pages_have_no_duplicates_or_gaps_while_jobs_change_state);
    tcase_add_test(tc, list_limit_zero_is_inval);
    tcase_add_test(tc, list_limit_over_10000_is_inval);
    tcase_add_test(tc, list_any_state_lists_every_state);
    tcase_add_test(tc, list_without_queue_lists_every_queue);
    return tc;
}

/* --------------------------------------------------------------- stats */

/* Assert the counts of `queue` for every state at once:
 * expect[] is indexed by AT_STATE_*; the total must be their sum. */
static void assert_counts(const char *queue, uint64_t scheduled, uint64_t ready, uint64_t running,
                          uint64_t succeeded, uint64_t dead, uint64_t cancelled)
{
    uint64_t expect[AT_STATE_COUNT__] = {0};
    uint64_t total = 0;
    expect[AT_STATE_SCHEDULED] = scheduled;
    expect[AT_STATE_READY] = ready;
    expect[AT_STATE_RUNNING] = running;
    expect[AT_STATE_SUCCEEDED] = succeeded;
    expect[AT_STATE_DEAD] = dead;
    expect[AT_STATE_CANCELLED] = cancelled;
    for (int32_t s = AT_STATE_WAITING; s < AT_STATE_COUNT__; s++) {
        uint64_t got = ct_count(queue, s);
        ck_assert_msg(got == expect[s], "%s: %s count %llu, expected %llu", queue, at_state_name(s),
                      (unsigned long long)got, (unsigned long long)expect[s]);
        total += expect[s];
    }
    ck_assert_uint_eq(ct_count(queue, AT_STATE_ANY), total);
}

START_TEST(stats_follow_enqueue_claim_and_ack)
{
    const char *q = CT_Q("q");
    at_opts *o = ct_opts(q);
    at_job *j;
    ct_enqueue(NULL, o);
    ct_enqueue(NULL, o);
    ct_set(o, AT_OPT_DELAY_MS, 60000);
    ct_enqueue(NULL, o);
    assert_counts(q, 1, 2, 0, 0, 0, 0);
    j = ct_claim(q);
    assert_counts(q, 1, 1, 1, 0, 0, 0);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), 0);
    assert_counts(q, 1, 1, 0, 1, 0, 0);
}
END_TEST

START_TEST(stats_follow_fail_retry_and_dead)
{
    const char *q = CT_Q("q");
    at_opts *o = ct_opts(q);
    at_job *j;
    ct_set(o, AT_OPT_MAX_ATTEMPTS, 2);
    ct_set(o, AT_OPT_BACKOFF_BASE_MS, 1000);
    ct_set(o, AT_OPT_BACKOFF_JITTER, 0);
    ct_enqueue(NULL, o);
    j = ct_claim(q);
    ck_assert_int_eq(at_fail(NULL, ct_store, at_job_id(j), at_job_token(j), "e", AT_FAIL_RETRY), 0);
    assert_counts(q, 1, 0, 0, 0, 0, 0);
    ct_advance(1000);
    assert_counts(q, 0, 1, 0, 0, 0, 0);
    j = ct_claim(q);
    ck_assert_int_eq(at_fail(NULL, ct_store, at_job_id(j), at_job_token(j), "e", AT_FAIL_RETRY), 0);
    assert_counts(q, 0, 0, 0, 0, 1, 0);
}
END_TEST

START_TEST(stats_follow_cancel)
{
    const char *q = CT_Q("q");
    char ready[AT_ID_SIZE];
    at_job *j;
    ct_enqueue(NULL, ct_opts(q));
    j = ct_claim(q);
    ct_enqueue(ready, ct_opts(q));
    ck_assert_int_eq(at_cancel(NULL, ct_store, ready), 0);
    ck_assert_int_eq(at_cancel(NULL, ct_store, at_job_id(j)), 0);
    /* The running job stays RUNNING until its holder learns of the cancel. */
    assert_counts(q, 0, 0, 1, 0, 0, 1);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), AT_ERR_CANCELLED);
    assert_counts(q, 0, 0, 0, 0, 0, 2);
}
END_TEST

START_TEST(stats_follow_requeue)
{
    const char *q = CT_Q("q");
    at_job *j;
    ct_enqueue(NULL, ct_opts(q));
    j = ct_claim(q);
    ck_assert_int_eq(at_fail(NULL, ct_store, at_job_id(j), at_job_token(j), "e", AT_FAIL_PERMANENT), 0);
    assert_counts(q, 0, 0, 0, 0, 1, 0);
    ck_assert_int_eq(at_requeue(NULL, ct_store, NULL, at_job_id(j)), 0);
    assert_counts(q, 0, 1, 0, 0, 0, 0);
}
END_TEST

START_TEST(stats_follow_lease_expiry)
{
    const char *q = CT_Q("q");
    at_opts *o = ct_opts(q);
    ct_set(o, AT_OPT_LEASE_MS, 500);
    ct_enqueue(NULL, o);
    ct_claim(q);
    assert_counts(q, 0, 0, 1, 0, 0, 0);
    ct_advance(501);
    assert_counts(q, 0, 1, 0, 0, 0, 0);
}
END_TEST

START_TEST(stats_follow_purge)
{
    const char *q = CT_Q("q");
    at_job *j;
    ct_enqueue(NULL, ct_opts(q));
    ct_enqueue(NULL, ct_opts(q));
    j = ct_claim(q);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), 0);
    ct_advance(200);
    ck_assert_int_eq(at_purge(NULL, ct_store, 100), 0);
    assert_counts(q, 0, 1, 0, 0, 0, 0);
}
END_TEST

START_TEST(stats_next_due_is_the_earliest_scheduled_run_at)
{
    const char *q = CT_Q("q");
    char early[AT_ID_SIZE];
    at_opts *o = ct_opts(q);
    ct_set(o, AT_OPT_DELAY_MS, 5000);
    ct_enqueue(NULL, o);
    ct_set(o, AT_OPT_DELAY_MS, 3000);
    ct_enqueue(early, o);
    ct_set(o, AT_OPT_DELAY_MS, 4000);
    ct_enqueue(NULL, o);
    ct_enqueue(NULL, ct_opts(q)); /* READY jobs do not count */
    ck_assert_int_eq(ct_next_due(q), at_job_time(ct_get(early), AT_JOB_TIME_RUN_AT));
}
END_TEST

START_TEST(stats_next_due_is_none_without_scheduled_jobs)
{
    const char *q = CT_Q("q");
    ct_enqueue(NULL, ct_opts(q));
    ck_assert_uint_eq(ct_count(q, AT_STATE_ANY), 1);
    ck_assert_int_eq(ct_next_due(q), AT_TIME_NONE);
}
END_TEST

START_TEST(stats_list_queues_sorted_by_name)
{
    at_stats *s = NULL;
    size_t n;
    int found = 0;
    ct_enqueue(NULL, ct_opts(CT_Q("c")));
    ct_enqueue(NULL, ct_opts(CT_Q("a")));
    ct_enqueue(NULL, ct_opts(CT_Q("b")));
    ck_assert_int_eq(at_stats_get(&s, ct_store), 0);
    n = at_stats_queue_count(s);
    for (size_t i = 0; i < n; i++) {
        const char *name = at_stats_queue_name(s, i);
        found += strcmp(name, CT_Q("a")) == 0 || strcmp(name, CT_Q("b")) == 0 || strcmp(name, CT_Q("c")) == 0;
        if (i > 0 && strcmp(at_stats_queue_name(s, i - 1), name) >= 0) {
            at_stats_free(s);
            ck_abort_msg("queue %zu is not sorted after queue %zu", i, i - 1);
        }
    }
    /* Out of range: NULL, 0 and no due time. */
    ck_assert_ptr_null(at_stats_queue_name(s, n));
    ck_assert_uint_eq(at_stats_count(s, n, AT_STATE_ANY), 0);
    ck_assert_int_eq(at_stats_next_due(s, n), AT_TIME_NONE);
    at_stats_free(s);
    ck_assert_int_eq(found, 3);
}
END_TEST

TCase *ct_tcase_stats(void)
{
    TCase *tc = ct_tcase("stats");
    tcase_add_test(tc, stats_follow_enqueue_claim_and_ack);
    tcase_add_test(tc, stats_follow_fail_retry_and_dead);
    tcase_add_test(tc, stats_follow_cancel);
    tcase_add_test(tc, stats_follow_requeue);
    tcase_add_test(tc, stats_follow_lease_expiry);
    tcase_add_test(tc, stats_follow_purge);
    tcase_add_test(tc, stats_next_due_is_the_earliest_scheduled_run_at);
    tcase_add_test(tc, stats_next_due_is_none_without_scheduled_jobs);
    tcase_add_test(tc, stats_list_queues_sorted_by_name);
    return tc;
}

/* --------------------------------------------------------------- purge */

/* Enqueue, claim and ack one job of `queue`. */
static void make_succeeded(char id_out[AT_ID_SIZE], const char *queue)
{
    at_job *j;
    ct_enqueue(id_out, ct_opts(queue));
    j = ct_claim(queue);
    ck_assert_int_eq(at_ack(ct_store, id_out, at_job_token(j), NULL, 0), 0);
}

START_TEST(purge_deletes_terminal_jobs_finished_longer_ago)
{
    char done[AT_ID_SIZE], dead[AT_ID_SIZE], cancelled[AT_ID_SIZE];
    at_job *j, *g = NULL;
    uint64_t n = 0;
    make_succeeded(done, CT_Q("q"));
    ct_enqueue(dead, ct_opts(CT_Q("q")));
    j = ct_claim(CT_Q("q"));
    ck_assert_int_eq(at_fail(NULL, ct_store, dead, at_job_token(j), "e", AT_FAIL_PERMANENT), 0);
    ct_enqueue(cancelled, ct_opts(CT_Q("q")));
    ck_assert_int_eq(at_cancel(NULL, ct_store, cancelled), 0);
    ct_advance(1000);
    ck_assert_int_eq(at_purge(&n, ct_store, 500), 0);
    ck_assert_uint_ge(n, 3); /* a shared store may hold more */
    ck_assert_int_eq(at_get(&g, ct_store, done), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_get(&g, ct_store, dead), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_get(&g, ct_store, cancelled), AT_ERR_NOTFOUND);
}
END_TEST

START_TEST(purge_keeps_terminal_jobs_finished_more_recently)
{
    char old[AT_ID_SIZE], recent[AT_ID_SIZE];
    make_succeeded(old, CT_Q("q"));
    ct_advance(1000);
    make_succeeded(recent, CT_Q("q"));
    ct_advance(100);
    ck_assert_int_eq(at_purge(NULL, ct_store, 500), 0);
    ck_assert_int_eq(ct_state(recent), AT_STATE_SUCCEEDED);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_ANY), 1);
}
END_TEST

START_TEST(purge_minus_one_uses_the_store_retention)
{
    char id[AT_ID_SIZE];
    at_job *g = NULL;
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_RETENTION_MS, 1000), 0);
    make_succeeded(id, CT_Q("q"));
    ct_advance(500);
    ck_assert_int_eq(at_purge(NULL, ct_store, -1), 0);
    ck_assert_int_eq(ct_state(id), AT_STATE_SUCCEEDED);
    ct_advance(1000);
    ck_assert_int_eq(at_purge(NULL, ct_store, -1), 0);
    ck_assert_int_eq(at_get(&g, ct_store, id), AT_ERR_NOTFOUND);
}
END_TEST

START_TEST(purge_never_deletes_unfinished_jobs)
{
    char ready[AT_ID_SIZE], scheduled[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    at_job *running;
    ct_enqueue(NULL, o);
    running = ct_claim(CT_Q("q"));
    ct_enqueue(ready, o);
    ct_set(o, AT_OPT_DELAY_MS, 3600000);
    ct_enqueue(scheduled, o);
    ct_advance(1000);
    ck_assert_int_eq(at_purge(NULL, ct_store, 0), 0);
    ck_assert_int_eq(ct_state(at_job_id(running)), AT_STATE_RUNNING);
    ck_assert_int_eq(ct_state(ready), AT_STATE_READY);
    ck_assert_int_eq(ct_state(scheduled), AT_STATE_SCHEDULED);
}
END_TEST

TCase *ct_tcase_purge(void)
{
    TCase *tc = ct_tcase("purge");
    tcase_add_test(tc, purge_deletes_terminal_jobs_finished_longer_ago);
    tcase_add_test(tc, purge_keeps_terminal_jobs_finished_more_recently);
    tcase_add_test(tc, purge_minus_one_uses_the_store_retention);
    tcase_add_test(tc, purge_never_deletes_unfinished_jobs);
    return tc;
}
