/*
 * test_cron.c - cron expressions and time zones (lib/cron.c, lib/tzfile.c).
 *
 * The bulk is the table in cron_cases.h: valid expressions with their next
 * fire times in several zones (DST changes in New York, Berlin and Lord
 * Howe's half-hour DST, in years inside the zone files' tables and beyond
 * them, where the POSIX footer rule takes over), invalid expressions with the
 * error and the byte position at_cron_check(3) must report, and expressions
 * that never fire.  The expected values come from an independent model over
 * Python's zoneinfo (see the table's header).  The other tests state one rule
 * each: the DST rules as counts over a whole day, the POSIX rule forms, the
 * zone loader's input checks, its cache under concurrent loads, TZDIR.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cron.h"
#include "internal.h"
#include "tzfile.h"

#include "cron_cases.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* 2026-01-01T00:00:00Z */
#define T2026 INT64_C(1767225600000)

/* ISO-8601 UTC with the C library (not the code under test), or "ms:N"
 * for a time that is not a whole second. */
static void fmt_time(char *buf, size_t len, int64_t ms)
{
    if (ms % 1000 != 0) {
        snprintf(buf, len, "ms:%lld", (long long)ms);
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int64_t iso_ms(const char *s)
{
    struct tm tm = {0};
    ck_assert_ptr_nonnull(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return (int64_t)timegm(&tm) * 1000;
}

static bool same_time(const char *expected, int64_t got)
{
    if (strncmp(expected, "ms:", 3) == 0)
        return strtoll(expected + 3, NULL, 10) == got;
    char buf[64];
    fmt_time(buf, sizeof buf, got);
    return strcmp(expected, buf) == 0;
}

/* ------------------------------------------------------------- the table */

START_TEST(valid_expression_gives_expected_fire_times)
{
    const struct cron_valid_case *c = &k_valid[_i];
    int32_t pos = 99;
    ck_assert_msg(at_cron_check(&pos, c->expr) == 0, "'%s': %s", c->expr, at_last_error());
    ck_assert_int_eq(pos, -1);
    int64_t t = c->after_ms;
    for (int j = 0; j < c->n; j++) {
        int64_t next = 0;
        int rc = at_cron_next(&next, c->expr, c->tz, t);
        ck_assert_msg(rc == 0, "'%s' in %s after %s, fire %d: %s (%s)", c->expr, c->tz ? c->tz : "UTC",
                      c->after_iso, j + 1, at_err_name(rc), at_last_error());
        char got[64];
        fmt_time(got, sizeof got, next);
        ck_assert_msg(same_time(c->next[j], next), "'%s' in %s after %s (%s), fire %d: expected %s, got %s",
                      c->expr, c->tz ? c->tz : "UTC", c->after_iso, c->note, j + 1, c->next[j], got);
        ck_assert_int_gt(next, t);
        t = next;
    }
}
END_TEST

START_TEST(invalid_input_gives_expected_error_and_position)
{
    const struct cron_error_case *c = &k_errors[_i];
    int32_t pos = 99;
    int rc = at_cron_check(&pos, c->expr);
    if (c->err == AT_ERR_INVAL && c->pos >= 0) {
        ck_assert_msg(rc == AT_ERR_INVAL, "'%s': check gave %s", c->expr, at_err_name(rc));
        ck_assert_msg(pos == c->pos, "'%s': position %d expected, got %d (%s)", c->expr, (int)c->pos,
                      (int)pos, at_last_error());
        char want[32];
        snprintf(want, sizeof want, "position %d:", (int)c->pos);
        ck_assert_msg(strstr(at_last_error(), want), "'%s': message '%s' lacks '%s'", c->expr,
                      at_last_error(), want);
    } else {
        ck_assert_msg(rc == 0, "'%s' is valid, check gave %s: %s", c->expr, at_err_name(rc), at_last_error());
        ck_assert_int_eq(pos, -1);
    }
    int64_t next = 0;
    rc = at_cron_next(&next, c->expr, c->tz, T2026);
    ck_assert_msg(rc == c->err, "'%s' in '%s': %s expected, got %s (%s)", c->expr, c->tz ? c->tz : "(UTC)",
                  at_err_name(c->err), at_err_name(rc), at_last_error());
    ck_assert_int_eq(next, AT_TIME_NONE);
    ck_assert_str_ne(at_last_error(), "");
}
END_TEST

START_TEST(expression_that_never_fires_again_is_a_range_error)
{
    const struct cron_range_case *c = &k_range[_i];
    int64_t next = 0;
    ck_assert_int_eq(at_cron_check(NULL, c->expr), 0);
    int rc = at_cron_next(&next, c->expr, c->tz, c->after_ms);
    ck_assert_msg(rc == AT_ERR_RANGE, "'%s': %s", c->expr, at_err_name(rc));
    ck_assert_int_eq(next, AT_TIME_NONE);
}
END_TEST

START_TEST(footer_rule_changes_offsets_where_zoneinfo_does)
{
    const struct tz_change_case *c = &k_changes[_i];
    const struct at__tz *z;
    ck_assert_int_eq(at__tz_load(&z, c->tz), 0);
    ck_assert_int_eq(at__tz_offset(z, c->at_s - 1), c->off_before);
    ck_assert_int_eq(at__tz_offset(z, c->at_s), c->off_after);
}
END_TEST

/* ----------------------------------------------------------- error texts */

START_TEST(error_message_names_field_and_position)
{
    int32_t pos;
    ck_assert_int_eq(at_cron_check(&pos, "10 1,25 * * *"), AT_ERR_INVAL);
    ck_assert_int_eq(pos, 5);
    ck_assert_str_eq(at_last_error(), "field 2 (hour), position 5: 25 is outside 0..23");
    ck_assert_int_eq(at_cron_check(&pos, "0 0 0 * * 9"), AT_ERR_INVAL);
    ck_assert_str_eq(at_last_error(), "field 6 (day-of-week), position 10: 9 is outside 0..7");
    int64_t next;
    ck_assert_int_eq(at_cron_next(&next, "0 0 * FOO *", NULL, T2026), AT_ERR_INVAL);
    ck_assert_str_eq(at_last_error(), "field 4 (month), position 6: unknown name 'FOO' (expected JAN..DEC)");
}
END_TEST

START_TEST(success_clears_the_detail_message)
{
    int64_t next;
    ck_assert_int_eq(at_cron_check(NULL, "61 * * * *"), AT_ERR_INVAL);
    ck_assert_str_ne(at_last_error(), "");
    ck_assert_int_eq(at_cron_next(&next, "0 * * * *", NULL, T2026), 0);
    ck_assert_str_eq(at_last_error(), "");
}
END_TEST

START_TEST(null_arguments_are_invalid)
{
    int64_t next = 0;
    int32_t pos = 99;
    ck_assert_int_eq(at_cron_next(NULL, "* * * * *", NULL, T2026), AT_ERR_INVAL);
    ck_assert_int_eq(at_cron_next(&next, NULL, NULL, T2026), AT_ERR_INVAL);
    ck_assert_int_eq(next, AT_TIME_NONE);
    ck_assert_int_eq(at_cron_check(&pos, NULL), AT_ERR_INVAL);
    ck_assert_int_eq(pos, 0);
    ck_assert_int_eq(at_cron_check(NULL, "* * * * *"), 0);
}
END_TEST

START_TEST(expression_longer_than_1024_bytes_is_rejected_at_1024)
{
    static char buf[2048];
    memset(buf, ' ', sizeof buf - 1);
    memcpy(buf, "0 0 * * *", 9);
    int32_t pos;
    buf[AT__CRON_MAX_LEN] = '\0';
    ck_assert_int_eq(at_cron_check(&pos, buf), 0); /* 1024 bytes: fine */
    buf[AT__CRON_MAX_LEN] = ' ';
    ck_assert_int_eq(at_cron_check(&pos, buf), AT_ERR_INVAL);
    ck_assert_int_eq(pos, AT__CRON_MAX_LEN);
}
END_TEST

START_TEST(unknown_zone_is_notfound_and_named_in_the_message)
{
    int64_t next;
    ck_assert_int_eq(at_cron_next(&next, "0 0 * * *", "Atlantis/Capital", T2026), AT_ERR_NOTFOUND);
    ck_assert_ptr_nonnull(strstr(at_last_error(), "Atlantis/Capital"));
}
END_TEST

START_TEST(after_outside_years_1_to_9999_is_a_range_error)
{
    int64_t next;
    ck_assert_int_eq(at_cron_next(&next, "* * * * *", NULL, INT64_MIN), AT_ERR_RANGE);
    ck_assert_int_eq(at_cron_next(&next, "* * * * *", NULL, INT64_MAX), AT_ERR_RANGE);
    ck_assert_int_eq(at_cron_next(&next, "@every 1s", NULL, INT64_MAX), AT_ERR_RANGE);
    ck_assert_int_eq(at_cron_next(&next, "* * * * *", NULL, AT__CRON_MIN_MS), 0);
    ck_assert_int_eq(next, AT__CRON_MIN_MS + 60000);
    ck_assert_int_eq(at_cron_next(&next, "0 0 1 1 *", "America/New_York", AT__CRON_MIN_MS), 0);
}
END_TEST

/* ------------------------------------------------------------ DST rules */

static int count_fires(const char *expr, const char *tz, int64_t from, int64_t to)
{
    int n = 0;
    int64_t t = from - 1, next;
    for (;;) {
        ck_assert_int_eq(at_cron_next(&next, expr, tz, t), 0);
        ck_assert_int_gt(next, t);
        if (next >= to)
            return n;
        n++;
        t = next;
    }
}

START_TEST(each_wall_minute_fires_once_on_a_fall_back_day)
{
    /* 2026-11-01 in New York: 25 real hours, 1440 distinct wall minutes */
    ck_assert_int_eq(count_fires("* * * * *", "America/New_York", iso_ms("2026-11-01T04:00:00Z"),
                                 iso_ms("2026-11-02T05:00:00Z")),
                     1440);
    /* Lord Howe, 2026-04-05: 24.5 real hours */
    ck_assert_int_eq(count_fires("* * * * *", "Australia/Lord_Howe", iso_ms("2026-04-04T13:00:00Z"),
                                 iso_ms("2026-04-05T13:30:00Z")),
                     1440);
}
END_TEST

START_TEST(skipped_wall_minutes_fire_once_at_the_end_of_the_gap)
{
    /* 2026-03-08 in New York: 02:00..02:59 are skipped and fire together
     * with 03:00, at 07:00Z: 1440 - 60 fires. */
    ck_assert_int_eq(count_fires("* * * * *", "America/New_York", iso_ms("2026-03-08T05:00:00Z"),
                                 iso_ms("2026-03-09T04:00:00Z")),
                     1380);
    ck_assert_int_eq(count_fires("* * * * *", "Europe/Berlin", iso_ms("2050-03-26T23:00:00Z"),
                                 iso_ms("2050-03-27T22:00:00Z")),
                     1380);
    ck_assert_int_eq(count_fires("* * * * *", "Australia/Lord_Howe", iso_ms("2026-10-03T13:30:00Z"),
                                 iso_ms("2026-10-04T13:00:00Z")),
                     1410);
}
END_TEST

START_TEST(daily_job_fires_exactly_once_each_day_of_a_dst_year)
{
    /* Every local day of 2026 has exactly one 02:30 fire in New York,
     * Berlin and Lord Howe, the gap days included. */
    const char *zones[] = {"America/New_York", "Europe/Berlin", "Australia/Lord_Howe"};
    for (size_t z = 0; z < NELEM(zones); z++) {
        int n = count_fires("30 2 * * *", zones[z], iso_ms("2025-12-31T12:00:00Z"),
                            iso_ms("2026-12-31T12:00:00Z"));
        ck_assert_msg(n == 365, "%s: %d", zones[z], n);
    }
}
END_TEST

START_TEST(local_time_maps_to_first_occurrence_or_end_of_gap)
{
    const struct at__tz *ny;
    int64_t u;
    ck_assert_int_eq(at__tz_load(&ny, "America/New_York"), 0);
    /* 2026-03-08 02:30 does not exist: the gap ends at 07:00Z */
    int64_t l = iso_ms("2026-03-08T02:30:00Z") / 1000;
    ck_assert_int_eq(at__tz_local_to_utc(ny, l, &u), AT__TZ_GAP);
    ck_assert_int_eq(u, iso_ms("2026-03-08T07:00:00Z") / 1000);
    /* 2026-11-01 01:30 happens twice: 05:30Z (EDT) and 06:30Z (EST) */
    l = iso_ms("2026-11-01T01:30:00Z") / 1000;
    ck_assert_int_eq(at__tz_local_to_utc(ny, l, &u), AT__TZ_AMBIGUOUS);
    ck_assert_int_eq(u, iso_ms("2026-11-01T05:30:00Z") / 1000);
    l = iso_ms("2026-07-01T12:00:00Z") / 1000;
    ck_assert_int_eq(at__tz_local_to_utc(ny, l, &u), AT__TZ_UNIQUE);
    ck_assert_int_eq(u, iso_ms("2026-07-01T16:00:00Z") / 1000);
}
END_TEST

/* ------------------------------------------------------- POSIX TZ rules */

static void assert_change(const char *posix, const char *at_iso, int32_t before, int32_t after)
{
    struct at__tz *z;
    ck_assert_msg(at__tz_from_posix(&z, posix) == 0, "%s: %s", posix, at_last_error());
    int64_t at = iso_ms(at_iso) / 1000;
    ck_assert_msg(at__tz_offset(z, at - 1) == before && at__tz_offset(z, at) == after,
                  "%s at %s: %d -> %d expected, got %d -> %d", posix, at_iso, (int)before, (int)after,
                  (int)at__tz_offset(z, at - 1), (int)at__tz_offset(z, at));
    at__tz_free(z);
}

START_TEST(posix_julian_day_never_counts_february_29)
{
    /* J60 is March 1 in every year; J300 is October 27 */
    assert_change("AAA0BBB,J60,J300", "2040-03-01T02:00:00Z", 0, 3600);
    assert_change("AAA0BBB,J60,J300", "2041-03-01T02:00:00Z", 0, 3600);
    assert_change("AAA0BBB,J60,J300", "2040-10-27T01:00:00Z", 3600, 0);
}
END_TEST

START_TEST(posix_zero_based_day_counts_february_29)
{
    /* day 59 is February 29 in a leap year, March 1 otherwise */
    assert_change("AAA0BBB,59,299", "2040-02-29T02:00:00Z", 0, 3600);
    assert_change("AAA0BBB,59,299", "2041-03-01T02:00:00Z", 0, 3600);
    assert_change("AAA0BBB,59,299", "2040-10-26T01:00:00Z", 3600, 0);
}
END_TEST

START_TEST(posix_rule_times_may_be_negative_or_beyond_24_hours)
{
    /* first Sunday of March 2041 is the 3rd; + 167 h = the 9th, 23:00 */
    assert_change("AAA0BBB,M3.1.0/167,M11.1.0", "2041-03-09T23:00:00Z", 0, 3600);
    /* last Sunday of March 2040 is the 25th; -1:00 local (UTC-2) is 01:00Z */
    assert_change("<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2040-03-25T01:00:00Z", -7200, -3600);
    /* southern hemisphere, half-hour DST, explicit DST offset */
    assert_change("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2040-10-06T15:30:00Z", 37800, 39600);
    /* week 5 is the last such weekday: May 2041 has five Fridays (the 31st is
     * the fifth), February 2041 four Sundays (the 24th is the last) */
    assert_change("AAA0BBB,M5.5.5/0,M11.1.0", "2041-05-31T00:00:00Z", 0, 3600);
    assert_change("AAA0BBB,M2.5.0/0,M11.1.0", "2041-02-24T00:00:00Z", 0, 3600);
    /* no rule after the DST name: the US rule */
    assert_change("EST5EDT", "2041-03-10T07:00:00Z", -18000, -14400);
}
END_TEST

START_TEST(posix_strings_that_are_not_rules_are_rejected)
{
    const char *bad[] = {"",
                         "A0",
                         "ABC",
                         "ABC+",
                         "ABC0DEF,M3",
                         "ABC0DEF,M13.1.0,M11.1.0",
                         "ABC0DEF,M3.6.0,M11.1.0",
                         "ABC0DEF,M3.1.7,M11.1.0",
                         "ABC0DEF,J0,J10",
                         "ABC0DEF,366,10",
                         "ABC0DEF,M3.2.0/168,M11.1.0",
                         "<AB>0",
                         "ABC25",
                         "ABC0DEF,M3.2.0,M11.1.0x"};
    for (size_t i = 0; i < NELEM(bad); i++) {
        struct at__tz *z = NULL;
        ck_assert_msg(at__tz_from_posix(&z, bad[i]) == AT_ERR_INVAL, "'%s' accepted", bad[i]);
        ck_assert_ptr_null(z);
    }
}
END_TEST

/* --------------------------------------------------------- zone loading */

START_TEST(utc_needs_no_file)
{
    const struct at__tz *a, *b;
    ck_assert_int_eq(at__tz_load(&a, NULL), 0);
    ck_assert_int_eq(at__tz_load(&b, "UTC"), 0);
    ck_assert_ptr_eq(a, at__tz_utc());
    ck_assert_ptr_eq(b, at__tz_utc());
    at__tz_cache_clear();
    setenv("TZDIR", "/nonexistent", 1);
    int64_t next;
    ck_assert_int_eq(at_cron_next(&next, "0 0 * * *", "UTC", T2026), 0);
    ck_assert_int_eq(at_cron_next(&next, "0 0 * * *", "Europe/Paris", T2026), AT_ERR_NOTFOUND);
    unsetenv("TZDIR");
    at__tz_cache_clear();
}
END_TEST

START_TEST(repeated_loads_return_the_cached_zone)
{
    const struct at__tz *a, *b;
    at__tz_cache_clear();
    ck_assert_int_eq(at__tz_load(&a, "Europe/Berlin"), 0);
    ck_assert_int_eq(at__tz_load(&b, "Europe/Berlin"), 0);
    ck_assert_ptr_eq(a, b);
    ck_assert_str_eq(at__tz_name(a), "Europe/Berlin");
    ck_assert_uint_eq(at__tz_cache_size(), 1);
}
END_TEST

static const char *const k_thread_zones[] = {
    "America/New_York",  "Europe/Berlin",    "Australia/Lord_Howe", "Asia/Tokyo",
    "America/Sao_Paulo", "Europe/London",    "Asia/Kolkata",        "Pacific/Chatham",
    "America/Santiago",  "Africa/Cairo",     "Asia/Jerusalem",      "America/St_Johns",
    "Europe/Moscow",     "Australia/Sydney", "America/Los_Angeles", "Pacific/Apia",
};
#define NTHREADS 8
static int64_t g_expected[NELEM(k_thread_zones)];

static void *load_many(void *arg)
{
    size_t start = (size_t)(uintptr_t)arg;
    intptr_t bad = 0;
    for (int round = 0; round < 50; round++) {
        for (size_t k = 0; k < NELEM(k_thread_zones); k++) {
            size_t i = (start + k) % NELEM(k_thread_zones);
            int64_t next;
            if (at_cron_next(&next, "30 2 * * *", k_thread_zones[i], T2026) != 0 || next != g_expected[i])
                bad++;
        }
    }
    return (void *)bad;
}

START_TEST(zones_load_safely_from_many_threads_at_once)
{
    for (size_t i = 0; i < NELEM(k_thread_zones); i++)
        ck_assert_int_eq(at_cron_next(&g_expected[i], "30 2 * * *", k_thread_zones[i], T2026), 0);
    at__tz_cache_clear();
    pthread_t th[NTHREADS];
    for (size_t t = 0; t < NTHREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, load_many, (void *)(uintptr_t)(t * 5)), 0);
    for (size_t t = 0; t < NTHREADS; t++) {
        void *bad;
        pthread_join(th[t], &bad);
        ck_assert_int_eq((intptr_t)bad, 0);
    }
    ck_assert_uint_eq(at__tz_cache_size(), NELEM(k_thread_zones));
}
END_TEST

static char g_dir[64];

static void write_file(const char *rel, const void *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, rel);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static unsigned char buf[65536];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static void make_tzdir(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/test_cron.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    at__tz_cache_clear(); /* zones are cached by name, whatever TZDIR was */
    char sub[128];
    snprintf(sub, sizeof sub, "%s/Test", g_dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    setenv("TZDIR", g_dir, 1);
}

static void remove_tzdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    ck_assert_int_eq(system(cmd), 0);
    unsetenv("TZDIR");
    at__tz_cache_clear();
}

START_TEST(tzdir_environment_variable_is_honoured)
{
    size_t len;
    void *berlin = slurp("/usr/share/zoneinfo/Europe/Berlin", &len);
    make_tzdir();
    write_file("Test/Zone", berlin, len);
    int64_t a, b;
    ck_assert_int_eq(at_cron_next(&a, "30 2 * * *", "Test/Zone", iso_ms("2026-03-28T12:00:00Z")), 0);
    ck_assert_str_eq(at_last_error(), "");
    ck_assert_int_eq(a, iso_ms("2026-03-29T01:00:00Z"));
    ck_assert_int_eq(at_cron_next(&b, "30 2 * * *", "Europe/Berlin", iso_ms("2026-03-28T12:00:00Z")),
                     AT_ERR_NOTFOUND);
    remove_tzdir();
}
END_TEST

START_TEST(malformed_zone_files_are_rejected)
{
    size_t len;
    unsigned char *ny = slurp("/usr/share/zoneinfo/America/New_York", &len);
    make_tzdir();
    write_file("Test/Text", "not a zone\n", 11);
    write_file("Test/Short", ny, 100);
    unsigned char copy[8192];
    memcpy(copy, ny, len);
    copy[len - 3] = '!'; /* the footer's rule: "...M11.1.0" -> "...M11.1!0" */
    write_file("Test/Footer", copy, len);
    int64_t next;
    ck_assert_int_eq(at_cron_next(&next, "* * * * *", "Test/Text", T2026), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_cron_next(&next, "* * * * *", "Test/Short", T2026), AT_ERR_CORRUPT);
    ck_assert_int_eq(at_cron_next(&next, "* * * * *", "Test/Footer", T2026), AT_ERR_CORRUPT);
    ck_assert_int_eq(at_cron_next(&next, "* * * * *", "Test", T2026), AT_ERR_NOTFOUND); /* a directory */
    remove_tzdir();
}
END_TEST

START_TEST(version_1_file_uses_its_32_bit_table)
{
    /* clang-format off */
    static const unsigned char v1[] = {
        'T', 'Z', 'i', 'f', 0,                      /* magic, version 1 */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* unused */
        0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,        /* isut, isstd, leap counts */
        0, 0, 0, 1,  0, 0, 0, 2,  0, 0, 0, 4,        /* 1 transition, 2 types, 4 chars */
        0x3b, 0x9a, 0xca, 0x00,                      /* at 1000000000 */
        1,                                           /* to type 1 */
        0, 0, 0, 0, 0, 0,                            /* type 0: UTC+0 */
        0, 0, 0x0e, 0x10, 1, 0,                      /* type 1: UTC+1, DST */
        'A', 'B', 0, 0,
    };
    /* clang-format on */
    struct at__tz *z;
    ck_assert_int_eq(at__tz_parse(&z, "v1", v1, sizeof v1), 0);
    ck_assert_int_eq(at__tz_offset(z, 999999999), 0);
    ck_assert_int_eq(at__tz_offset(z, 1000000000), 3600);
    ck_assert_int_eq(at__tz_offset(z, INT64_C(4000000000)), 3600);
    at__tz_free(z);
    /* a transition to a type that does not exist */
    unsigned char bad[sizeof v1];
    memcpy(bad, v1, sizeof v1);
    bad[48] = 2;
    ck_assert_int_eq(at__tz_parse(&z, "v1", bad, sizeof bad), AT_ERR_CORRUPT);
    ck_assert_ptr_null(z);
}
END_TEST

/* ------------------------------------------------------ internal API */

START_TEST(parsed_form_gives_the_same_times_as_the_public_call)
{
    struct at__cron *c;
    const struct at__tz *z;
    ck_assert_int_eq(at__cron_parse(&c, "*/7 1-3 * * SAT,SUN"), 0);
    ck_assert_int_eq(at__tz_load(&z, "Australia/Lord_Howe"), 0);
    int64_t t = T2026;
    for (int i = 0; i < 200; i++) {
        int64_t a, b;
        ck_assert_int_eq(at__cron_next(c, z, t, &a), 0);
        ck_assert_int_eq(at_cron_next(&b, "*/7 1-3 * * SAT,SUN", "Australia/Lord_Howe", t), 0);
        ck_assert_int_eq(a, b);
        t = a;
    }
    at__cron_free(c);
    ck_assert_int_eq(at__cron_parse(&c, "0 0 * * 8"), AT_ERR_INVAL);
    ck_assert_ptr_null(c);
    at__cron_free(NULL);
}
END_TEST

static void *fail_malloc(size_t n)
{
    (void)n;
    return NULL;
}
static void *fail_realloc(void *p, size_t n)
{
    (void)p;
    (void)n;
    return NULL;
}

START_TEST(allocation_failure_is_nomem)
{
    at__tz_cache_clear();
    ck_assert_int_eq(at_set_allocator(fail_malloc, fail_realloc, free, NULL, NULL, NULL), 0);
    struct at__cron *c = (struct at__cron *)1;
    int rc1 = at__cron_parse(&c, "* * * * *");
    int64_t next;
    int rc2 = at_cron_next(&next, "0 0 * * *", "Europe/Berlin", T2026);
    int rc3 = at_cron_next(&next, "0 0 * * *", NULL, T2026); /* UTC allocates nothing */
    at_set_allocator(NULL, NULL, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(rc1, AT_ERR_NOMEM);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(rc2, AT_ERR_NOMEM);
    ck_assert_int_eq(rc3, 0);
    ck_assert_int_eq(at_cron_next(&next, "0 0 * * *", "Europe/Berlin", T2026), 0);
}
END_TEST

START_TEST(every_is_aligned_to_the_epoch_whatever_the_start)
{
    /* Two schedulers started at different times agree on the ticks. */
    int64_t a, b;
    ck_assert_int_eq(at_cron_next(&a, "@every 1h30m", NULL, T2026 + 1234), 0);
    ck_assert_int_eq(at_cron_next(&b, "@every 1h30m", "Asia/Kathmandu", T2026 + 4000000), 0);
    ck_assert_int_eq(a % 5400000, 0);
    ck_assert_int_eq(a, b);
}
END_TEST

static Suite *cron_suite(void)
{
    Suite *s = suite_create("cron");
    TCase *tc = tcase_create("table");
    tcase_add_loop_test(tc, valid_expression_gives_expected_fire_times, 0, (int)NELEM(k_valid));
    tcase_add_loop_test(tc, invalid_input_gives_expected_error_and_position, 0, (int)NELEM(k_errors));
    tcase_add_loop_test(tc, expression_that_never_fires_again_is_a_range_error, 0, (int)NELEM(k_range));
    tcase_add_loop_test(tc, footer_rule_changes_offsets_where_zoneinfo_does, 0, (int)NELEM(k_changes));
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, error_message_names_field_and_position);
    tcase_add_test(tc, success_clears_the_detail_message);
    tcase_add_test(tc, null_arguments_are_invalid);
    tcase_add_test(tc, expression_longer_than_1024_bytes_is_rejected_at_1024);
    tcase_add_test(tc, unknown_zone_is_notfound_and_named_in_the_message);
    tcase_add_test(tc, after_outside_years_1_to_9999_is_a_range_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("dst");
    tcase_add_test(tc, each_wall_minute_fires_once_on_a_fall_back_day);
    tcase_add_test(tc, skipped_wall_minutes_fire_once_at_the_end_of_the_gap);
    tcase_add_test(tc, daily_job_fires_exactly_once_each_day_of_a_dst_year);
    tcase_add_test(tc, local_time_maps_to_first_occurrence_or_end_of_gap);
    suite_add_tcase(s, tc);

    tc = tcase_create("posix");
    tcase_add_test(tc, posix_julian_day_never_counts_february_29);
    tcase_add_test(tc, posix_zero_based_day_counts_february_29);
    tcase_add_test(tc, posix_rule_times_may_be_negative_or_beyond_24_hours);
    tcase_add_test(tc, posix_strings_that_are_not_rules_are_rejected);
    suite_add_tcase(s, tc);

    tc = tcase_create("zones");
    tcase_add_test(tc, utc_needs_no_file);
    tcase_add_test(tc, repeated_loads_return_the_cached_zone);
    tcase_add_test(tc, zones_load_safely_from_many_threads_at_once);
    tcase_add_test(tc, tzdir_environment_variable_is_honoured);
    tcase_add_test(tc, malformed_zone_files_are_rejected);
    tcase_add_test(tc, version_1_file_uses_its_32_bit_table);
    suite_add_tcase(s, tc);

    tc = tcase_create("internal");
    tcase_add_test(tc, parsed_form_gives_the_same_times_as_the_public_call);
    tcase_add_test(tc, allocation_failure_is_nomem);
    tcase_add_test(tc, every_is_aligned_to_the_epoch_whatever_the_start);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cron_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
