/*
 * conformance_api.c - conformance: the library-wide promises of the header.
 *
 * Version macros and functions agree; every error code has a name and a
 * message; state names round-trip; store URIs and store options are checked
 * with their exact codes; the clock API and the rule that a store's clock is
 * fixed before its first job; job ids are 26 Crockford base32 characters,
 * sort in enqueue order and never repeat.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

/* The prefix trap (docs/STYLE.md): system headers define AT_FDCWD, AT_NULL
 * and friends; <asynctask.h> must compile beside them. */
#include <elf.h>
#include <fcntl.h>

#include "conformance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- api */

START_TEST(version_string_matches_version_macros)
{
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", AT_VERSION_MAJOR, AT_VERSION_MINOR, AT_VERSION_PATCH);
    ck_assert_ptr_nonnull(at_version());
    ck_assert_str_eq(at_version(), expect);
}
END_TEST

START_TEST(version_number_matches_version_macros)
{
    ck_assert_uint_eq(AT_VERSION_NUMBER,
                      AT_VERSION_MAJOR * 10000 + AT_VERSION_MINOR * 100 + AT_VERSION_PATCH);
    ck_assert_uint_eq(at_version_number(), AT_VERSION_NUMBER);
}
END_TEST

struct code_entry {
    int code;
    const char *name;
    const char *msg;
};
#define CT_ERR_ENTRY(name, value, msg) {value, "AT_ERR_" #name, msg},
static const struct code_entry codes[] = {AT_ERR_MAP(CT_ERR_ENTRY)};
#undef CT_ERR_ENTRY
#define N_CODES (sizeof codes / sizeof codes[0])

START_TEST(every_error_code_has_its_symbolic_name)
{
    for (size_t i = 0; i < N_CODES; i++) {
        const char *name = at_err_name(codes[i].code);
        ck_assert_ptr_nonnull(name);
        ck_assert_str_eq(name, codes[i].name);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(name, at_err_name(codes[j].code));
    }
}
END_TEST

START_TEST(every_error_code_has_its_message)
{
    for (size_t i = 0; i < N_CODES; i++) {
        const char *msg = at_strerror(codes[i].code);
        ck_assert_ptr_nonnull(msg);
        ck_assert_uint_gt(strlen(msg), 0);
        ck_assert_str_eq(msg, codes[i].msg);
    }
}
END_TEST

START_TEST(unknown_error_code_has_fallback_name_and_message)
{
    ck_assert_str_eq(at_err_name(-9999), "AT_ERR_UNKNOWN");
    ck_assert_str_eq(at_strerror(-9999), "unknown error");
    ck_assert_str_eq(at_err_name(7), "AT_ERR_UNKNOWN");
    ck_assert_str_eq(at_strerror(7), "unknown error");
}
END_TEST

struct state_entry {
    int32_t value;
    const char *text;
};
#define CT_STATE_ENTRY(name, value, text) {value, text},
static const struct state_entry states[] = {AT_STATE_MAP(CT_STATE_ENTRY)};
#undef CT_STATE_ENTRY

START_TEST(state_names_round_trip)
{
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        ck_assert_ptr_nonnull(at_state_name(states[i].value));
        ck_assert_str_eq(at_state_name(states[i].value), states[i].text);
        ck_assert_int_eq(at_state_from_name(states[i].text), states[i].value);
    }
}
END_TEST

START_TEST(non_state_has_no_name_and_unknown_name_is_inval)
{
    ck_assert_ptr_null(at_state_name(-1));
    ck_assert_ptr_null(at_state_name(AT_STATE_COUNT__));
    ck_assert_ptr_null(at_state_name(99));
    ck_assert_int_eq(at_state_from_name("bogus"), AT_ERR_INVAL);
    ck_assert_int_eq(at_state_from_name(""), AT_ERR_INVAL);
    ck_assert_int_eq(at_state_from_name(NULL), AT_ERR_INVAL);
}
END_TEST

START_TEST(open_with_null_uri_is_inval)
{
    at_store *s = (at_store *)&s; /* not NULL: the call must clear it */
    ck_assert_int_eq(at_store_open(&s, NULL), AT_ERR_INVAL);
    ck_assert_ptr_null(s);
}
END_TEST

START_TEST(open_with_unknown_scheme_is_nobackend)
{
    at_store *s = (at_store *)&s;
    ck_assert_int_eq(at_store_open(&s, "nosuch:x"), AT_ERR_NOBACKEND);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(at_last_error());
}
END_TEST

START_TEST(open_with_empty_uri_is_uri_error)
{
    at_store *s = (at_store *)&s;
    ck_assert_int_eq(at_store_open(&s, ""), AT_ERR_URI);
    ck_assert_ptr_null(s);
}
END_TEST

START_TEST(open_with_uri_without_colon_is_uri_error)
{
    at_store *s = (at_store *)&s;
    ck_assert_int_eq(at_store_open(&s, "memory"), AT_ERR_URI);
    ck_assert_ptr_null(s);
}
END_TEST

START_TEST(store_backend_is_the_uri_scheme)
{
    const char *name = at_store_backend(ct_store);
    ck_assert_ptr_nonnull(name);
    ck_assert_uint_gt(strlen(name), 0);
    /* "memory" for "memory:", "redis" for "redis://...". */
    ck_assert_msg(strncmp(ct_base_uri(), name, strlen(name)) == 0 && ct_base_uri()[strlen(name)] == ':',
                  "backend \"%s\" is not the scheme of \"%s\"", name, ct_base_uri());
}
END_TEST

START_TEST(store_options_have_documented_defaults)
{
    static const struct {
        int32_t option;
        int64_t value;
    } defaults[] = {
        {AT_OPT_STORE_MAX_PAYLOAD, 1048576},
        {AT_OPT_STORE_RETENTION_MS, INT64_C(7) * 24 * 3600 * 1000},
        {AT_OPT_STORE_DEFAULT_LEASE_MS, 30000},
        {AT_OPT_STORE_DEFAULT_MAX_ATTEMPTS, 25},
        {AT_OPT_STORE_DEFAULT_BACKOFF_BASE_MS, 1000},
        {AT_OPT_STORE_DEFAULT_BACKOFF_CAP_MS, 3600000},
        {AT_OPT_STORE_DEFAULT_BACKOFF_JITTER, 200},
        {AT_OPT_STORE_IDEMPOTENCY_TTL_MS, 86400000},
        {AT_OPT_STORE_MAX_RESULT, 1048576},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        int64_t v = -42;
        ck_assert_int_eq(at_store_get_option(&v, ct_store, defaults[i].option), 0);
        ck_assert_msg(v == defaults[i].value, "option %d: expected %lld, got %lld", (int)defaults[i].option,
                      (long long)defaults[i].value, (long long)v);
    }
}
END_TEST

START_TEST(store_option_set_is_read_back)
{
    int64_t v = 0;
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_MAX_PAYLOAD, 4096), 0);
    ck_assert_int_eq(at_store_get_option(&v, ct_store, AT_OPT_STORE_MAX_PAYLOAD), 0);
    ck_assert_int_eq(v, 4096);
}
END_TEST

START_TEST(unknown_store_option_is_inval)
{
    int64_t v = 0;
    ck_assert_int_eq(at_store_set_option(ct_store, 9999, 1), AT_ERR_INVAL);
    ck_assert_int_eq(at_store_get_option(&v, ct_store, 9999), AT_ERR_INVAL);
    /* Job options are not store options. */
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_PRIORITY, 1), AT_ERR_INVAL);
}
END_TEST

START_TEST(negative_retention_is_range_and_keeps_the_old_value)
{
    int64_t v = 0;
    ck_assert_int_eq(at_store_set_option(ct_store, AT_OPT_STORE_RETENTION_MS, -5), AT_ERR_RANGE);
    ck_assert_int_eq(at_store_get_option(&v, ct_store, AT_OPT_STORE_RETENTION_MS), 0);
    ck_assert_int_eq(v, INT64_C(7) * 24 * 3600 * 1000);
}
END_TEST

TCase *ct_tcase_api(void)
{
    TCase *tc = ct_tcase("api");
    tcase_add_test(tc, version_string_matches_version_macros);
    tcase_add_test(tc, version_number_matches_version_macros);
    tcase_add_test(tc, every_error_code_has_its_symbolic_name);
    tcase_add_test(tc, every_error_code_has_its_message);
    tcase_add_test(tc, unknown_error_code_has_fallback_name_and_message);
    tcase_add_test(tc, state_names_round_trip);
    tcase_add_test(tc, non_state_has_no_name_and_unknown_name_is_inval);
    tcase_add_test(tc, open_with_null_uri_is_inval);
    tcase_add_test(tc, open_with_unknown_scheme_is_nobackend);
    tcase_add_test(tc, open_with_empty_uri_is_uri_error);
    tcase_add_test(tc, open_with_uri_without_colon_is_uri_error);
    tcase_add_test(tc, store_backend_is_the_uri_scheme);
    tcase_add_test(tc, store_options_have_documented_defaults);
    tcase_add_test(tc, store_option_set_is_read_back);
    tcase_add_test(tc, unknown_store_option_is_inval);
    tcase_add_test(tc, negative_retention_is_range_and_keeps_the_old_value);
    return tc;
}

/* --------------------------------------------------------------- clock */

START_TEST(manual_clock_reads_its_start_until_moved)
{
    at_clock *c = NULL;
    ck_assert_int_eq(at_clock_new_manual(&c, CT_CLOCK_START), 0);
    ck_assert_int_eq(at_clock_now(c), CT_CLOCK_START);
    ck_assert_int_eq(at_clock_advance(c, 250), 0);
    ck_assert_int_eq(at_clock_now(c), CT_CLOCK_START + 250);
    ck_assert_int_eq(at_clock_set(c, CT_CLOCK_START - 1000), 0);
    ck_assert_int_eq(at_clock_now(c), CT_CLOCK_START - 1000);
    ck_assert_int_eq(at_clock_free(c), 0);
}
END_TEST

START_TEST(negative_clock_advance_is_inval)
{
    at_clock *c = NULL;
    ck_assert_int_eq(at_clock_new_manual(&c, CT_CLOCK_START), 0);
    ck_assert_int_eq(at_clock_advance(c, -1), AT_ERR_INVAL);
    ck_assert_int_eq(at_clock_now(c), CT_CLOCK_START);
    ck_assert_int_eq(at_clock_free(c), 0);
}
END_TEST

START_TEST(store_time_is_its_manual_clock)
{
    if (!ct_manual()) {
        /* Real clock: the store's time still never goes back. */
        int64_t a = ct_now();
        ck_assert_int_ge(ct_now(), a);
        return;
    }
    ck_assert_int_eq(ct_now(), CT_CLOCK_START);
    ct_advance(1234);
    ck_assert_int_eq(ct_now(), CT_CLOCK_START + 1234);
}
END_TEST

START_TEST(set_clock_after_first_enqueue_is_misuse)
{
    at_clock *other = NULL;
    int64_t before;
    int rc;
    ct_enqueue(NULL, ct_opts(CT_Q("q")));
    before = ct_now();
    ck_assert_int_eq(at_clock_new_manual(&other, 5000), 0);
    rc = at_store_set_clock(ct_store, other);
    if (ct_manual())
        ck_assert_int_eq(rc, AT_ERR_MISUSE);
    else
        ck_assert_int_ne(rc, 0); /* UNSUPPORTED or MISUSE: never accepted */
    /* The store keeps its own clock. */
    ck_assert_int_ge(ct_now(), before);
    ck_assert_int_eq(at_clock_free(other), 0);
}
END_TEST

START_TEST(clock_in_use_cannot_be_freed)
{
    if (!ct_manual())
        return; /* nothing to free: the store runs on its own clock */
    ck_assert_int_eq(at_clock_free(ct_clock), AT_ERR_BUSY);
    /* ...and it is still the store's clock. */
    ct_advance(10);
    ck_assert_int_eq(ct_now(), CT_CLOCK_START + 10);
}
END_TEST

START_TEST(clock_set_backward_never_fires_a_job_early)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    if (!ct_manual())
        return; /* only a manual clock can jump by hand */
    ct_set(o, AT_OPT_DELAY_MS, 1000);
    ct_enqueue(id, o);
    ck_assert_int_eq(at_clock_set(ct_clock, CT_CLOCK_START - 5000), 0);
    ct_advance(1500); /* 1500 ms have passed, the reading is still before run_at */
    ck_assert_ptr_null(ct_try_claim(CT_Q("q")));
    ck_assert_int_eq(ct_state(id), AT_STATE_SCHEDULED);
    ck_assert_int_eq(at_clock_set(ct_clock, CT_CLOCK_START + 1000), 0);
    ck_assert_ptr_nonnull(ct_try_claim(CT_Q("q")));
}
END_TEST

START_TEST(clock_set_forward_makes_a_job_due)
{
    char id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    if (!ct_manual())
        return;
    ct_set(o, AT_OPT_DELAY_MS, 3600000);
    ct_enqueue(id, o);
    ck_assert_int_eq(at_clock_set(ct_clock, CT_CLOCK_START + 3600000), 0);
    ck_assert_str_eq(at_job_id(ct_claim(CT_Q("q"))), id);
}
END_TEST

TCase *ct_tcase_clock(void)
{
    TCase *tc = ct_tcase("clock");
    tcase_add_test(tc, manual_clock_reads_its_start_until_moved);
    tcase_add_test(tc, negative_clock_advance_is_inval);
    tcase_add_test(tc, store_time_is_its_manual_clock);
    tcase_add_test(tc, set_clock_after_first_enqueue_is_misuse);
    tcase_add_test(tc, clock_in_use_cannot_be_freed);
    tcase_add_test(tc, clock_set_backward_never_fires_a_job_early);
    tcase_add_test(tc, clock_set_forward_makes_a_job_due);
    return tc;
}

/* ----------------------------------------------------------------- ids */

/* Crockford base32: digits and capitals without I, L, O and U. */
static int is_crockford(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U');
}

START_TEST(id_is_26_crockford_base32_characters)
{
    char id[AT_ID_SIZE + 8];
    memset(id, 'x', sizeof id);
    ct_enqueue(id, ct_opts(CT_Q("q")));
    ck_assert_uint_eq(strlen(id), AT_ID_LEN);
    for (size_t i = 0; i < AT_ID_LEN; i++)
        ck_assert_msg(is_crockford(id[i]), "id %s: '%c' is not Crockford base32", id, id[i]);
    /* 128 bits in 26 characters: the first holds only 3 bits. */
    ck_assert_msg(id[0] >= '0' && id[0] <= '7', "id %s overflows 128 bits", id);
    /* AT_ID_SIZE bytes written, no more. */
    ck_assert_int_eq(id[AT_ID_SIZE], 'x');
}
END_TEST

START_TEST(successive_ids_sort_in_enqueue_order)
{
    char prev[AT_ID_SIZE] = "", id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("q"));
    for (int i = 0; i < 2000; i++) {
        ct_enqueue(id, o);
        ck_assert_msg(strcmp(prev, id) < 0, "id %d (%s) does not sort after %s", i, id, prev);
        memcpy(prev, id, sizeof id);
        if (i % 500 == 499)
            ct_advance(1); /* across a millisecond boundary as well */
    }
}
END_TEST

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

START_TEST(ids_are_unique_over_100k_enqueues)
{
    enum { N = 100000 };
    char(*ids)[AT_ID_SIZE] = malloc((size_t)N * AT_ID_SIZE);
    at_opts *o = ct_opts(CT_Q("q"));
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < N; i++) {
        int rc = at_enqueue(ids[i], ct_store, "t", NULL, 0, o);
        if (rc != 0) {
            free(ids);
            ck_abort_msg("enqueue %zu: %s", i, at_err_name(rc));
        }
    }
    qsort(ids, N, AT_ID_SIZE, cmp_id);
    for (size_t i = 1; i < N; i++) {
        if (strcmp(ids[i - 1], ids[i]) == 0) {
            char dup[AT_ID_SIZE];
            memcpy(dup, ids[i], AT_ID_SIZE);
            free(ids);
            ck_abort_msg("id %s was given twice", dup);
        }
    }
    free(ids);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_ANY), N);
}
END_TEST

START_TEST(enqueue_accepts_null_id_out)
{
    ck_assert_int_eq(at_enqueue(NULL, ct_store, "t", NULL, 0, ct_opts(CT_Q("q"))), 0);
    ck_assert_uint_eq(ct_count(CT_Q("q"), AT_STATE_READY), 1);
}
END_TEST

TCase *ct_tcase_ids(void)
{
    TCase *tc = ct_tcase("ids");
    tcase_set_timeout(tc, 300); /* 100k enqueues on a durable backend */
    tcase_add_test(tc, id_is_26_crockford_base32_characters);
    tcase_add_test(tc, successive_ids_sort_in_enqueue_order);
    tcase_add_test(tc, ids_are_unique_over_100k_enqueues);
    tcase_add_test(tc, enqueue_accepts_null_id_out);
    return tc;
}
