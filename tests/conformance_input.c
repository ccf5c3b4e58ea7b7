/*
 * conformance_input.c - conformance: bad input, payloads and concurrency.
 *
 * docs/SEMANTICS.md "Errors": every failure is a negative AT_ERR_* code,
 * invalid arguments are rejected before the store is touched, nothing is
 * half-written.  Each bad-input test checks the exact code and that no job
 * appeared.  Then payloads round-trip byte for byte, and many threads polling
 * one store receive every job exactly once.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "conformance.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNKNOWN_ID "01ARZ3NDEKTSV4RRFFQ69G5FAV"

/* Enqueue `type` into `queue` expecting `code`, and check no job appeared. */
static void assert_enqueue_refused(int code, const char *queue, const char *type, const void *payload,
                                   size_t len, const at_opts *opts)
{
    char id[AT_ID_SIZE];
    int rc = at_enqueue(id, ct_store, type, payload, len, opts);
    ck_assert_msg(rc == code, "at_enqueue: %s, expected %s", at_err_name(rc), at_err_name(code));
    ck_assert_uint_eq(ct_count(queue, AT_STATE_ANY), 0);
}

/* A name of `len` bytes of 'n'. */
static const char *long_name(size_t len)
{
    static char buf[AT_KEY_MAX + 8];
    ck_assert_uint_lt(len, sizeof buf);
    memset(buf, 'n', len);
    buf[len] = '\0';
    return buf;
}

/* ---------------------------------------------------------------- names */

START_TEST(enqueue_on_a_null_store_is_inval)
{
    char id[AT_ID_SIZE];
    ck_assert_int_eq(at_enqueue(id, NULL, "t", NULL, 0, NULL), AT_ERR_INVAL);
}
END_TEST

START_TEST(null_type_is_a_name_error)
{
    assert_enqueue_refused(AT_ERR_NAME, CT_Q("q"), NULL, NULL, 0, ct_opts(CT_Q("q")));
}
END_TEST

START_TEST(empty_type_is_a_name_error)
{
    assert_enqueue_refused(AT_ERR_NAME, CT_Q("q"), "", NULL, 0, ct_opts(CT_Q("q")));
}
END_TEST

START_TEST(type_with_a_space_is_a_name_error)
{
    assert_enqueue_refused(AT_ERR_NAME, CT_Q("q"), "send mail", NULL, 0, ct_opts(CT_Q("q")));
}
END_TEST

START_TEST(type_with_a_slash_is_a_name_error)
{
    assert_enqueue_refused(AT_ERR_NAME, CT_Q("q"), "mail/send", NULL, 0, ct_opts(CT_Q("q")));
}
END_TEST

START_TEST(non_ascii_type_is_a_name_error)
{
    assert_enqueue_refused(AT_ERR_NAME, CT_Q("q"), "caf\xc3\xa9", NULL, 0, ct_opts(CT_Q("q")));
}
END_TEST

START_TEST(type_longer_than_name_max_is_a_name_error)
{
    assert_enqueue_refused(AT_ERR_NAME, CT_Q("q"), long_name(AT_NAME_MAX + 1), NULL, 0, ct_opts(CT_Q("q")));
}
END_TEST

START_TEST(type_of_exactly_name_max_and_every_allowed_char_is_accepted)
{
    char id[AT_ID_SIZE];
    ck_assert_int_eq(at_enqueue(id, ct_store, long_name(AT_NAME_MAX), NULL, 0, ct_opts(CT_Q("q"))), 0);
    ck_assert_str_eq(at_job_type(ct_get(id)), long_name(AT_NAME_MAX));
    ck_assert_int_eq(at_enqueue(id, ct_store, "Az09._:-", NULL, 0, ct_opts(CT_Q("q"))), 0);
    ck_assert_str_eq(at_job_type(ct_get(id)), "Az09._:-");
}
END_TEST

START_TEST(bad_queue_name_is_refused_by_opts_and_leaves_them_unchanged)
{
    static const char *const bad[] = {"", "a b", "a/b", "caf\xc3\xa9", "x#y"};
    at_opts *o = ct_opts(CT_Q("q"));
    char id[AT_ID_SIZE];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(at_opts_set_str(o, AT_OPT_QUEUE, bad[i]) == AT_ERR_NAME, "queue \"%s\" accepted",
                      bad[i]);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_QUEUE, long_name(AT_NAME_MAX + 1)), AT_ERR_NAME);
    ct_enqueue(id, o);
    ck_assert_str_eq(at_job_queue(ct_get(id)), CT_Q("q"));
}
END_TEST

START_TEST(queue_name_of_exactly_name_max_is_accepted)
{
    char id[AT_ID_SIZE], name[AT_NAME_MAX + 1];
    /* The test's unique name, padded to the limit. */
    snprintf(name, sizeof name, "%s", CT_Q("q"));
    memset(name + strlen(name), 'x', AT_NAME_MAX - strlen(name));
    name[AT_NAME_MAX] = '\0';
    ct_enqueue(id, ct_opts(name));
    ck_assert_str_eq(at_job_queue(ct_get(id)), name);
}
END_TEST

START_TEST(idempotency_key_empty_or_over_key_max_is_a_name_error)
{
    at_opts *o = ct_opts(CT_Q("q"));
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, ""), AT_ERR_NAME);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, long_name(AT_KEY_MAX + 1)), AT_ERR_NAME);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, "a key"), AT_ERR_NAME);
}
END_TEST

START_TEST(idempotency_key_of_key_max_with_key_chars_is_accepted)
{
    char id[AT_ID_SIZE], key[AT_KEY_MAX + 1];
    at_opts *o;
    snprintf(key, sizeof key, "%s/@+=#", CT_KEY("k"));
    memset(key + strlen(key), 'k', AT_KEY_MAX - strlen(key));
    key[AT_KEY_MAX] = '\0';
    o = ct_opts(CT_Q("q"));
    ct_set_str(o, AT_OPT_IDEMPOTENCY_KEY, key);
    ct_enqueue(id, o);
    ck_assert_str_eq(at_job_idempotency_key(ct_get(id)), key);
}
END_TEST

/* ------------------------------------------------------------- payload */

START_TEST(null_payload_with_a_length_is_inval)
{
    assert_enqueue_refused(AT_ERR_INVAL, CT_Q("q"), "t", NULL, 1, ct_opts(CT_Q("q")));
}
END_TEST

START_TEST(payload_of_the_default_limit_is_accepted)
{
    char id[AT_ID_SIZE];
    char *p = malloc(1048576);
    size_t len = 0;
    int rc;
    ck_assert_ptr_nonnull(p);
    memset(p, 0xa5, 1048576);
    rc = at_enqueue(id, ct_store, "t", p, 1048576, ct_opts(CT_Q("q")));
    free(p);
    ck_assert_int_eq(rc, 0);
    at_job_payload(ct_get(id), &len);
    ck_assert_uint_eq(len, 1048576);
}
END_TEST

START_TEST(payload_over_the_default_limit_is_toobig)
{
    char *p = calloc(1, 1048577);
    char id[AT_ID_SIZE];
    int rc;
    ck_assert_ptr_nonnull(p);
    rc = at_enqueue(id, ct_store, "t", p, 1048577, ct_opts(CT_Q("q")));
    free(p);
    ck_assert_int_eq(rc, AT_ERR_TOOBIG);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_ANY), 0);
}
END_TEST

START_TEST(payload_limit_follows_the_store_option)
{
    char id[AT_ID_SIZE];
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_MAX_PAYLOAD, 10), 0);
    ck_assert_int_eq(at_enqueue(id, ct_store, "t", "0123456789A", 11, ct_opts(CT_Q("q"))), AT_ERR_TOOBIG);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_ANY), 0);
    ck_assert_int_eq(at_enqueue(id, ct_store, "t", "0123456789", 10, ct_opts(CT_Q("q"))), 0);
}
END_TEST

START_TEST(payload_over_the_default_limit_is_accepted_under_a_raised_limit)
{
    char id[AT_ID_SIZE];
    char *p = calloc(1, 1048577);
    size_t len = 0;
    int rc;
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_MAX_PAYLOAD, 2 * 1048576), 0);
    rc = at_enqueue(id, ct_store, "t", p, 1048577, ct_opts(CT_Q("q")));
    free(p);
    ck_assert_int_eq(rc, 0);
    at_job_payload(ct_get(id), &len);
    ck_assert_uint_eq(len, 1048577);
}
END_TEST

/* ------------------------------------------------------------- options */

START_TEST(priority_out_of_range_is_a_range_error)
{
    at_opts *o = ct_opts(CT_Q("q"));
    char id[AT_ID_SIZE];
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_PRIORITY, AT_PRIORITY_MAX + 1), AT_ERR_RANGE);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_PRIORITY, -AT_PRIORITY_MAX - 1), AT_ERR_RANGE);
    ct_set(o, AT_OPT_PRIORITY, -AT_PRIORITY_MAX);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_PRIORITY, 5000), AT_ERR_RANGE);
    ct_enqueue(id, o); /* the refused value left the last good one */
    ck_assert_int_eq(at_job_priority(ct_get(id)), -AT_PRIORITY_MAX);
    ct_set(o, AT_OPT_PRIORITY, AT_PRIORITY_MAX); /* both bounds are in range */
}
END_TEST

START_TEST(unknown_job_option_is_inval)
{
    at_opts *o = ct_opts(NULL);
    ck_assert_int_eq(at_opts_set_int(o, 9999, 1), AT_ERR_INVAL);
    ck_assert_int_eq(at_opts_set_str(o, 9999, "x"), AT_ERR_INVAL);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_STORE_MAX_PAYLOAD, 1), AT_ERR_INVAL);
}
END_TEST

START_TEST(job_option_of_the_other_type_is_inval)
{
    at_opts *o = ct_opts(NULL);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_QUEUE, 1), AT_ERR_INVAL);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_IDEMPOTENCY_KEY, 1), AT_ERR_INVAL);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_PRIORITY, "1"), AT_ERR_INVAL);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_DELAY_MS, "10"), AT_ERR_INVAL);
}
END_TEST

START_TEST(setting_delay_clears_run_at)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set(o, AT_OPT_RUN_AT, ct_now() + 3600000);
    ct_set(o, AT_OPT_DELAY_MS, 0);
    ct_enqueue(id, o);
    ck_assert_int_eq(ct_state(id), AT_STATE_READY);
}
END_TEST

START_TEST(setting_run_at_clears_delay)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    int64_t run_at = ct_now() - 10;
    ct_set(o, AT_OPT_DELAY_MS, 3600000);
    ct_set(o, AT_OPT_RUN_AT, run_at);
    ct_enqueue(id, o);
    ck_assert_int_eq(ct_state(id), AT_STATE_READY);
    ck_assert_int_eq(at_job_time(ct_get(id), AT_JOB_TIME_RUN_AT), run_at);
}
END_TEST

START_TEST(negative_delay_is_a_range_error)
{
    ck_assert_int_eq(at_opts_set_int(ct_opts(NULL), AT_OPT_DELAY_MS, -1), AT_ERR_RANGE);
}
END_TEST

START_TEST(max_attempts_outside_1_to_1000000_is_a_range_error)
{
    at_opts *o = ct_opts(NULL);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, 0), AT_ERR_RANGE);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, 1000001), AT_ERR_RANGE);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, 1), 0);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, 1000000), 0);
}
END_TEST

START_TEST(lease_outside_1ms_to_1_day_is_a_range_error)
{
    at_opts *o = ct_opts(NULL);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_LEASE_MS, 0), AT_ERR_RANGE);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_LEASE_MS, 86400001), AT_ERR_RANGE);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_LEASE_MS, 1), 0);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_LEASE_MS, 86400000), 0);
}
END_TEST

START_TEST(jitter_outside_0_to_1000_is_a_range_error)
{
    at_opts *o = ct_opts(NULL);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_BACKOFF_JITTER, -1), AT_ERR_RANGE);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_BACKOFF_JITTER, 1001), AT_ERR_RANGE);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_BACKOFF_JITTER, 0), 0);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_BACKOFF_JITTER, 1000), 0);
}
END_TEST

START_TEST(negative_backoff_base_is_a_range_error)
{
    ck_assert_int_eq(at_opts_set_int(ct_opts(NULL), AT_OPT_BACKOFF_BASE_MS, -1), AT_ERR_RANGE);
}
END_TEST

START_TEST(zero_idempotency_ttl_is_a_range_error)
{
    ck_assert_int_eq(at_opts_set_int(ct_opts(NULL), AT_OPT_IDEMPOTENCY_TTL_MS, 0), AT_ERR_RANGE);
}
END_TEST

START_TEST(backoff_cap_below_base_is_a_range_error_at_enqueue)
{
    at_opts *o = ct_opts(CT_Q("q"));
    /* Each value alone is fine: only the pair is wrong. */
    ct_set(o, AT_OPT_BACKOFF_BASE_MS, 5000);
    ct_set(o, AT_OPT_BACKOFF_CAP_MS, 1000);
    assert_enqueue_refused(AT_ERR_RANGE, CT_Q("q"), "t", NULL, 0, o);
}
END_TEST

START_TEST(opts_reset_restores_every_default)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    at_job *g;
    ct_set(o, AT_OPT_PRIORITY, 9);
    ct_set(o, AT_OPT_DELAY_MS, 3600000);
    ct_set(o, AT_OPT_MAX_ATTEMPTS, 2);
    at_opts_reset(o);
    ct_set_str(o, AT_OPT_QUEUE, CT_Q("q"));
    ct_enqueue(id, o);
    g = ct_get(id);
    ck_assert_int_eq(at_job_priority(g), 0);
    ck_assert_int_eq(at_job_state(g), AT_STATE_READY);
    ck_assert_uint_eq(at_job_max_attempts(g), 25);
}
END_TEST

START_TEST(opts_set_str_null_clears_the_key)
{
    char a[AT_ID_SIZE], b[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    ct_set_str(o, AT_OPT_IDEMPOTENCY_KEY, CT_KEY("k"));
    ct_enqueue(a, o);
    ct_set_str(o, AT_OPT_IDEMPOTENCY_KEY, NULL);
    ct_enqueue(b, o); /* no key: no duplicate */
    ck_assert_str_ne(a, b);
    ck_assert_ptr_null(at_job_idempotency_key(ct_get(b)));
}
END_TEST

/* ---------------------------------------------------------------- ids */

START_TEST(job_calls_with_a_null_id_are_inval)
{
    at_job *j = NULL;
    ck_assert_int_eq(at_ack(ct_store, NULL, 1, NULL, 0), AT_ERR_INVAL);
    ck_assert_int_eq(at_fail(NULL, ct_store, NULL, 1, "e", AT_FAIL_RETRY), AT_ERR_INVAL);
    ck_assert_int_eq(at_touch(ct_store, NULL, 1, 0), AT_ERR_INVAL);
    ck_assert_int_eq(at_cancel(NULL, ct_store, NULL), AT_ERR_INVAL);
    ck_assert_int_eq(at_get(&j, ct_store, NULL), AT_ERR_INVAL);
}
END_TEST

START_TEST(job_calls_with_a_malformed_id_are_inval)
{
    static const char *const bad = "01ARZ3NDEKTSV4RRFFQ69G5FA!";
    at_job *j = NULL;
    ck_assert_int_eq(at_ack(ct_store, bad, 1, NULL, 0), AT_ERR_INVAL);
    ck_assert_int_eq(at_fail(NULL, ct_store, bad, 1, "e", AT_FAIL_RETRY), AT_ERR_INVAL);
    ck_assert_int_eq(at_touch(ct_store, bad, 1, 0), AT_ERR_INVAL);
    ck_assert_int_eq(at_cancel(NULL, ct_store, bad), AT_ERR_INVAL);
    ck_assert_int_eq(at_get(&j, ct_store, bad), AT_ERR_INVAL);
    ck_assert_int_eq(at_requeue(NULL, ct_store, NULL, bad), AT_ERR_INVAL);
}
END_TEST

START_TEST(job_calls_with_an_unknown_id_are_notfound)
{
    at_job *j = NULL;
    ck_assert_int_eq(at_ack(ct_store, UNKNOWN_ID, 1, NULL, 0), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_fail(NULL, ct_store, UNKNOWN_ID, 1, "e", AT_FAIL_RETRY), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_touch(ct_store, UNKNOWN_ID, 1, 0), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_cancel(NULL, ct_store, UNKNOWN_ID), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_get(&j, ct_store, UNKNOWN_ID), AT_ERR_NOTFOUND);
}
END_TEST

START_TEST(calls_on_a_null_store_are_inval)
{
    at_job *jobs[1];
    size_t n = 0;
    const char *q[1] = {"q"};
    char cursor[AT_CURSOR_SIZE];
    int64_t now;
    at_stats *s = NULL;
    ck_assert_int_eq(at_poll(jobs, &n, NULL, q, 1, 1, 0), AT_ERR_INVAL);
    ck_assert_int_eq(at_ack(NULL, UNKNOWN_ID, 1, NULL, 0), AT_ERR_INVAL);
    ck_assert_int_eq(at_get(&jobs[0], NULL, UNKNOWN_ID), AT_ERR_INVAL);
    ck_assert_int_eq(at_list(jobs, &n, cursor, NULL, NULL, AT_STATE_ANY, NULL, 1), AT_ERR_INVAL);
    ck_assert_int_eq(at_stats_get(&s, NULL), AT_ERR_INVAL);
    ck_assert_int_eq(at_store_now(&now, NULL), AT_ERR_INVAL);
    ck_assert_int_eq(at_enqueue_batch(NULL, ct_batch()), AT_ERR_INVAL);
}
END_TEST

TCase *ct_tcase_input(void)
{
    TCase *tc = ct_tcase("input");
    tcase_add_test(tc, enqueue_on_a_null_store_is_inval);
    tcase_add_test(tc, null_type_is_a_name_error);
    tcase_add_test(tc, empty_type_is_a_name_error);
    tcase_add_test(tc, type_with_a_space_is_a_name_error);
    tcase_add_test(tc, type_with_a_slash_is_a_name_error);
    tcase_add_test(tc, non_ascii_type_is_a_name_error);
    tcase_add_test(tc, type_longer_than_name_max_is_a_name_error);
    tcase_add_test(tc, type_of_exactly_name_max_and_every_allowed_char_is_accepted);
    tcase_add_test(tc, bad_queue_name_is_refused_by_opts_and_leaves_them_unchanged);
    tcase_add_test(tc, queue_name_of_exactly_name_max_is_accepted);
    tcase_add_test(tc, idempotency_key_empty_or_over_key_max_is_a_name_error);
    tcase_add_test(tc, idempotency_key_of_key_max_with_key_chars_is_accepted);
    tcase_add_test(tc, null_payload_with_a_length_is_inval);
    tcase_add_test(tc, payload_of_the_default_limit_is_accepted);
    tcase_add_test(tc, payload_over_the_default_limit_is_toobig);
    tcase_add_test(tc, payload_limit_follows_the_store_option);
    tcase_add_test(tc, payload_over_the_default_limit_is_accepted_under_a_raised_limit);
    tcase_add_test(tc, priority_out_of_range_is_a_range_error);
    tcase_add_test(tc, unknown_job_option_is_inval);
    tcase_add_test(tc, job_option_of_the_other_type_is_inval);
    tcase_add_test(tc, setting_delay_clears_run_at);
    tcase_add_test(tc, setting_run_at_clears_delay);
    tcase_add_test(tc, negative_delay_is_a_range_error);
    tcase_add_test(tc, max_attempts_outside_1_to_1000000_is_a_range_error);
    tcase_add_test(tc, lease_outside_1ms_to_1_day_is_a_range_error);
    tcase_add_test(tc, jitter_outside_0_to_1000_is_a_range_error);
    tcase_add_test(tc, negative_backoff_base_is_a_range_error);
    tcase_add_test(tc, zero_idempotency_ttl_is_a_range_error);
    tcase_add_test(tc, backoff_cap_below_base_is_a_range_error_at_enqueue);
    tcase_add_test(tc, opts_reset_restores_every_default);
    tcase_add_test(tc, opts_set_str_null_clears_the_key);
    tcase_add_test(tc, job_calls_with_a_null_id_are_inval);
    tcase_add_test(tc, job_calls_with_a_malformed_id_are_inval);
    tcase_add_test(tc, job_calls_with_an_unknown_id_are_notfound);
    tcase_add_test(tc, calls_on_a_null_store_are_inval);
    return tc;
}

/* ------------------------------------------------------------ payloads */

START_TEST(binary_payload_round_trips_byte_for_byte)
{
    unsigned char payload[256];
    char id[AT_ID_SIZE];
    size_t len = 0;
    const void *p;
    for (int i = 0; i < 256; i++)
        payload[i] = (unsigned char)(255 - i); /* NUL in the middle, 0xff first */
    ck_assert_int_eq(at_enqueue(id, ct_store, "t", payload, sizeof payload, ct_opts(CT_Q("q"))), 0);
    p = at_job_payload(ct_get(id), &len);
    ck_assert_uint_eq(len, sizeof payload);
    ck_assert_mem_eq(p, payload, sizeof payload);
}
END_TEST

START_TEST(claimed_job_carries_its_payload)
{
    static const char payload[6] = {'a', '\0', 'b', '\0', '\0', 'c'};
    size_t len = 0;
    const void *p;
    ck_assert_int_eq(at_enqueue(NULL, ct_store, "t", payload, sizeof payload, ct_opts(CT_Q("q"))), 0);
    p = at_job_payload(ct_claim(CT_Q("q")), &len);
    ck_assert_uint_eq(len, sizeof payload);
    ck_assert_mem_eq(p, payload, sizeof payload);
}
END_TEST

START_TEST(empty_payload_is_a_non_null_buffer_of_length_zero)
{
    char a[AT_ID_SIZE], b[AT_ID_SIZE];
    size_t len = 99;
    ck_assert_int_eq(at_enqueue(a, ct_store, "t", NULL, 0, ct_opts(CT_Q("q"))), 0);
    ck_assert_int_eq(at_enqueue(b, ct_store, "t", "ignored", 0, ct_opts(CT_Q("q"))), 0);
    ck_assert_ptr_nonnull(at_job_payload(ct_get(a), &len));
    ck_assert_uint_eq(len, 0);
    len = 99;
    ck_assert_ptr_nonnull(at_job_payload(ct_get(b), &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_nonnull(at_job_payload(ct_claim(CT_Q("q")), NULL));
}
END_TEST

TCase *ct_tcase_payload(void)
{
    TCase *tc = ct_tcase("payload");
    tcase_add_test(tc, binary_payload_round_trips_byte_for_byte);
    tcase_add_test(tc, claimed_job_carries_its_payload);
    tcase_add_test(tc, empty_payload_is_a_non_null_buffer_of_length_zero);
    return tc;
}

/* --------------------------------------------------------- concurrency */

enum { CC_JOBS = 20000, CC_POLLERS = 4, CC_BATCH = 16 };

/* Shared by the producer, the pollers and the test thread.  received[i]
 * counts deliveries of job i (its payload is i); errors count calls that
 * failed, for the test thread to assert on. */
struct cc {
    char queue[AT_NAME_MAX + 1];
    atomic_uint received[CC_JOBS];
    atomic_uint acked;
    atomic_uint errors;
    atomic_int stop;
    atomic_int exited;
};

static void *cc_producer(void *arg)
{
    struct cc *cc = arg;
    at_opts *o = NULL;
    if (at_opts_new(&o) != 0 || at_opts_set_str(o, AT_OPT_QUEUE, cc->queue) != 0) {
        atomic_fetch_add(&cc->errors, 1);
        at_opts_free(o);
        return NULL;
    }
    for (uint32_t i = 0; i < CC_JOBS; i++)
        if (at_enqueue(NULL, ct_store, "t", &i, sizeof i, o) != 0)
            atomic_fetch_add(&cc->errors, 1);
    at_opts_free(o);
    return NULL;
}

static void *cc_poller(void *arg)
{
    struct cc *cc = arg;
    const char *q[1] = {cc->queue};
    while (!atomic_load(&cc->stop)) {
        at_job *jobs[CC_BATCH];
        size_t n = 0;
        if (at_poll(jobs, &n, ct_store, q, 1, CC_BATCH, 100) != 0) {
            atomic_fetch_add(&cc->errors, 1);
            break;
        }
        for (size_t k = 0; k < n; k++) {
            size_t len = 0;
            const void *p = at_job_payload(jobs[k], &len);
            uint32_t i;
            if (len != sizeof i) {
                atomic_fetch_add(&cc->errors, 1);
            } else {
                memcpy(&i, p, sizeof i);
                if (i < CC_JOBS)
                    atomic_fetch_add(&cc->received[i], 1);
                else
                    atomic_fetch_add(&cc->errors, 1);
            }
            if (at_ack(ct_store, at_job_id(jobs[k]), at_job_token(jobs[k]), NULL, 0) == 0)
                atomic_fetch_add(&cc->acked, 1);
            else
                atomic_fetch_add(&cc->errors, 1);
            at_job_free(jobs[k]);
        }
    }
    atomic_fetch_add(&cc->exited, 1);
    return NULL;
}

START_TEST(four_pollers_receive_each_of_20000_jobs_exactly_once)
{
    struct cc *cc = calloc(1, sizeof *cc);
    pthread_t producer, pollers[CC_POLLERS];
    int64_t deadline;
    unsigned missing = 0, doubled = 0;
    ck_assert_ptr_nonnull(cc);
    snprintf(cc->queue, sizeof cc->queue, "%s", CT_Q("q"));
    for (int i = 0; i < CC_POLLERS; i++)
        ck_assert_int_eq(pthread_create(&pollers[i], NULL, cc_poller, cc), 0);
    ck_assert_int_eq(pthread_create(&producer, NULL, cc_producer, cc), 0);
    ck_assert_int_eq(pthread_join(producer, NULL), 0);

    /* Wait for every ack (bounded, so a lost job fails instead of hanging). */
    deadline = ct_mono_ms() + 60000;
    while (atomic_load(&cc->acked) < CC_JOBS && atomic_load(&cc->errors) == 0 && ct_mono_ms() < deadline)
        ct_sleep_real(5);
    /* Stop the pollers.  A poll's timeout may be judged by the manual clock:
     * moving it wakes every poller (no lease is left to expire by now). */
    atomic_store(&cc->stop, 1);
    while (atomic_load(&cc->exited) < CC_POLLERS) {
        if (ct_manual())
            ck_assert_int_eq(at_clock_advance(ct_clock, 100), 0);
        ct_sleep_real(5);
    }
    for (int i = 0; i < CC_POLLERS; i++)
        ck_assert_int_eq(pthread_join(pollers[i], NULL), 0);

    for (uint32_t i = 0; i < CC_JOBS; i++) {
        unsigned r = atomic_load(&cc->received[i]);
        missing += r == 0;
        doubled += r > 1;
    }
    {
        unsigned errors = atomic_load(&cc->errors), acked = atomic_load(&cc->acked);
        free(cc);
        ck_assert_uint_eq(errors, 0);
        ck_assert_uint_eq(missing, 0);
        ck_assert_uint_eq(doubled, 0);
        ck_assert_uint_eq(acked, CC_JOBS);
    }
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_SUCCEEDED), CC_JOBS);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_ANY), CC_JOBS);
}
END_TEST

TCase *ct_tcase_concurrency(void)
{
    TCase *tc = ct_tcase("concurrency");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, four_pollers_receive_each_of_20000_jobs_exactly_once);
    return tc;
}
