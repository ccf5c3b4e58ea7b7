/*
 * test_core.c - unit tests of the core's building blocks that the
 * conformance suite cannot see from the public API alone: the id generator,
 * the backoff formula and the name rules.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

START_TEST(ids_are_26_crockford_characters)
{
    char id[AT_ID_SIZE];
    at__id_new(id);
    ck_assert_uint_eq(strlen(id), AT_ID_LEN);
    ck_assert_uint_eq(strspn(id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"), AT_ID_LEN);
}
END_TEST

START_TEST(ids_increase_strictly_within_a_process)
{
    char prev[AT_ID_SIZE], cur[AT_ID_SIZE];
    at__id_new(prev);
    for (int i = 0; i < 200000; i++) {
        at__id_new(cur);
        ck_assert_msg(strcmp(prev, cur) < 0, "%s !< %s", prev, cur);
        memcpy(prev, cur, sizeof cur);
    }
}
END_TEST

START_TEST(id_carries_its_millisecond_in_the_first_48_bits)
{
    int64_t before = at__real_wall_ns() / 1000000;
    char id[AT_ID_SIZE];
    at__id_new(id);
    int64_t after = at__real_wall_ns() / 1000000;
    uint8_t b[16];
    ck_assert_int_eq(at_id_parse(b, id), 0);
    int64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = (ms << 8) | b[i];
    ck_assert_int_ge(ms, before);
    ck_assert_int_le(ms, after + 1);
}
END_TEST

START_TEST(id_parse_and_format_round_trip)
{
    uint8_t b[16], c[16];
    for (int i = 0; i < 16; i++)
        b[i] = (uint8_t)(i * 37 + 11);
    char s[AT_ID_SIZE];
    at_id_format(s, b);
    ck_assert_int_eq(at_id_parse(c, s), 0);
    ck_assert_mem_eq(b, c, 16);
    /* lower case is accepted, as Crockford's spec asks */
    for (char *p = s; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    ck_assert_int_eq(at_id_parse(c, s), 0);
    ck_assert_mem_eq(b, c, 16);
}
END_TEST

START_TEST(id_parse_rejects_malformed_ids)
{
    uint8_t b[16];
    ck_assert_int_eq(at_id_parse(b, NULL), AT_ERR_INVAL);
    ck_assert_int_eq(at_id_parse(b, ""), AT_ERR_INVAL);
    ck_assert_int_eq(at_id_parse(b, "01ARZ3NDEKTSV4RRFFQ69G5FA"), AT_ERR_INVAL);   /* 25 chars */
    ck_assert_int_eq(at_id_parse(b, "01ARZ3NDEKTSV4RRFFQ69G5FAVX"), AT_ERR_INVAL); /* 27 chars */
    ck_assert_int_eq(at_id_parse(b, "01ARZ3NDEKTSV4RRFFQ69G5FAU"), AT_ERR_INVAL);  /* U not in alphabet */
    ck_assert_int_eq(at_id_parse(b, "81ARZ3NDEKTSV4RRFFQ69G5FAV"), AT_ERR_INVAL);  /* > 128 bits */
    ck_assert_int_eq(at_id_parse(b, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"), 0);             /* the largest id */
}
END_TEST

START_TEST(ids_differ_between_parent_and_child_after_fork)
{
    /* The child must not continue the parent's sequence (same ms, same
     * counter) or the two would hand out equal ids. */
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    char parent[AT_ID_SIZE], child[AT_ID_SIZE];
    at__id_new(parent); /* the state a fork copies */
    at_store *s;
    ck_assert_int_eq(at_store_open(&s, "memory:"), 0); /* installs the fork handler */
    at_store_close(s);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char id[AT_ID_SIZE];
        at__id_new(id);
        ssize_t w = write(fd[1], id, sizeof id);
        _exit(w == (ssize_t)sizeof id ? 0 : 1);
    }
    at__id_new(parent);
    ck_assert_int_eq(read(fd[0], child, sizeof child), (ssize_t)sizeof child);
    int st;
    waitpid(pid, &st, 0);
    close(fd[0]);
    close(fd[1]);
    ck_assert_str_ne(parent, child);
    ck_assert_mem_ne(parent + 10, child + 10, 16); /* the random parts differ */
}
END_TEST

START_TEST(backoff_doubles_from_base_until_cap)
{
    ck_assert_int_eq(at__backoff_ms(1, 1000, 60000, 0, 0), 1000);
    ck_assert_int_eq(at__backoff_ms(2, 1000, 60000, 0, 0), 2000);
    ck_assert_int_eq(at__backoff_ms(3, 1000, 60000, 0, 0), 4000);
    ck_assert_int_eq(at__backoff_ms(6, 1000, 60000, 0, 0), 32000);
    ck_assert_int_eq(at__backoff_ms(7, 1000, 60000, 0, 0), 60000);
    ck_assert_int_eq(at__backoff_ms(1000000, 1000, 60000, 0, 0), 60000);
}
END_TEST

START_TEST(backoff_never_overflows_with_huge_attempts_and_cap)
{
    int64_t year = INT64_C(366) * 24 * 3600 * 1000;
    ck_assert_int_eq(at__backoff_ms(UINT32_MAX, year, year, 0, ~0ull), year);
    ck_assert_int_eq(at__backoff_ms(200, 1, year, 0, 0), year);
}
END_TEST

START_TEST(backoff_jitter_only_shortens_within_its_fraction)
{
    for (int i = 0; i < 10000; i++) {
        int64_t d = at__backoff_ms(3, 1000, 60000, 250, at__random64());
        ck_assert_int_le(d, 4000);
        ck_assert_int_ge(d, 3000);
    }
    ck_assert_int_eq(at__backoff_ms(3, 1000, 60000, 1000, 0), 4000); /* U = 0 */
}
END_TEST

START_TEST(backoff_with_zero_base_retries_at_once)
{
    ck_assert_int_eq(at__backoff_ms(5, 0, 0, 500, at__random64()), 0);
}
END_TEST

START_TEST(names_accept_the_documented_charset)
{
    ck_assert_int_eq(at__check_name("emails.high-prio_2:eu"), 0);
    char n[AT_NAME_MAX + 2];
    memset(n, 'a', sizeof n);
    n[AT_NAME_MAX] = '\0';
    ck_assert_int_eq(at__check_name(n), 0);
    n[AT_NAME_MAX] = 'a';
    n[AT_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(at__check_name(n), AT_ERR_NAME);
}
END_TEST

START_TEST(names_reject_everything_else)
{
    const char *bad[] = {"", "a b", "a/b", "a\n", "caf\xc3\xa9", "{x}", "a*", "a\"b", "a'b", "a%", NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(at__check_name(bad[i]) == AT_ERR_NAME, "accepted '%s'", bad[i]);
    ck_assert_int_eq(at__check_name(NULL), AT_ERR_NAME);
}
END_TEST

START_TEST(keys_allow_more_punctuation_and_255_bytes)
{
    ck_assert_int_eq(at__check_key("order/42@shop+eu=#1"), 0);
    char k[AT_KEY_MAX + 2];
    memset(k, 'k', sizeof k);
    k[AT_KEY_MAX] = '\0';
    ck_assert_int_eq(at__check_key(k), 0);
    k[AT_KEY_MAX] = 'k';
    k[AT_KEY_MAX + 1] = '\0';
    ck_assert_int_eq(at__check_key(k), AT_ERR_NAME);
    ck_assert_int_eq(at__check_key("a b"), AT_ERR_NAME);
}
END_TEST

static int g_fail_after = -1;
static void *failing_malloc(size_t n)
{
    if (g_fail_after == 0)
        return NULL;
    if (g_fail_after > 0)
        g_fail_after--;
    return malloc(n);
}

START_TEST(every_allocation_failure_in_enqueue_leaves_the_store_unchanged)
{
    /* Make the Nth allocation fail for N = 0, 1, 2, ... until enqueue
     * succeeds: each failure is AT_ERR_NOMEM and leaves no job behind. */
    at_store *s;
    ck_assert_int_eq(at_store_open(&s, "memory:"), 0);
    at_opts *o;
    ck_assert_int_eq(at_opts_new(&o), 0);
    at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, "k1");
    at_opts_set_int(o, AT_OPT_DELAY_MS, 5000);
    int rc = -1;
    for (int n = 0; n < 100 && rc != 0; n++) {
        ck_assert_int_eq(at_set_allocator(failing_malloc, realloc, free, NULL, NULL, NULL), 0);
        g_fail_after = n;
        char id[AT_ID_SIZE];
        rc = at_enqueue(id, s, "t", "p", 1, o);
        g_fail_after = -1;
        at_set_allocator(NULL, NULL, NULL, NULL, NULL, NULL);
        at_stats *st;
        ck_assert_int_eq(at_stats_get(&st, s), 0);
        uint64_t total = 0;
        for (size_t i = 0; i < at_stats_queue_count(st); i++)
            total += at_stats_count(st, i, AT_STATE_ANY);
        at_stats_free(st);
        if (rc != 0) {
            ck_assert_int_eq(rc, AT_ERR_NOMEM);
            ck_assert_uint_eq(total, 0);
        } else {
            ck_assert_uint_eq(total, 1);
        }
    }
    ck_assert_int_eq(rc, 0);
    at_opts_free(o);
    at_store_close(s);
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *ids = tcase_create("ids");
    tcase_add_test(ids, ids_are_26_crockford_characters);
    tcase_add_test(ids, ids_increase_strictly_within_a_process);
    tcase_add_test(ids, id_carries_its_millisecond_in_the_first_48_bits);
    tcase_add_test(ids, id_parse_and_format_round_trip);
    tcase_add_test(ids, id_parse_rejects_malformed_ids);
    tcase_add_test(ids, ids_differ_between_parent_and_child_after_fork);
    suite_add_tcase(s, ids);
    TCase *bo = tcase_create("backoff");
    tcase_add_test(bo, backoff_doubles_from_base_until_cap);
    tcase_add_test(bo, backoff_never_overflows_with_huge_attempts_and_cap);
    tcase_add_test(bo, backoff_jitter_only_shortens_within_its_fraction);
    tcase_add_test(bo, backoff_with_zero_base_retries_at_once);
    suite_add_tcase(s, bo);
    TCase *nm = tcase_create("names");
    tcase_add_test(nm, names_accept_the_documented_charset);
    tcase_add_test(nm, names_reject_everything_else);
    tcase_add_test(nm, keys_allow_more_punctuation_and_255_bytes);
    suite_add_tcase(s, nm);
    TCase *al = tcase_create("allocator");
    tcase_add_test(al, every_allocation_failure_in_enqueue_leaves_the_store_unchanged);
    suite_add_tcase(s, al);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(core_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
