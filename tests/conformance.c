/*
 * conformance.c - fixture and assembly of the backend conformance suite.
 *
 * Opens one fresh store per test from the base URI a backend's author gives
 * (tests/check_conformance.c), installs a manual clock when the backend takes
 * one, keeps the objects helpers hand out so the teardown frees them, and
 * collects the TCases of the areas (tests/conformance_*.c) into one Suite.
 * The fixture is "checked": in Check's default fork mode it runs in the
 * test's child, with CK_FORK=no in-process; it leaks nothing either way.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "conformance.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

at_store *ct_store;
at_clock *ct_clock;

/* Lateness allowed after each real-clock ct_advance (see there). */
#define CT_REAL_SLACK_MS 10

/* The base URI, copied: argv or getenv storage is not ours to keep. */
static char base_uri[4096];
/* Opens in this process: with the pid, names every fresh file or prefix.  In
 * fork mode each child starts from the parent's value, the pid differs. */
static unsigned open_counter;
/* "p<pid>n<counter>t<seconds>": unique per test and per run, so tests never
 * see each other's jobs on a shared store, nor an earlier run's. */
static char run_tag[64];
/* The URI ct_open last opened (for messages). */
static char opened_uri[8400];
/* The SQLite file ct_open made for this test, removed at teardown. */
static char fresh_path[4200];

/* Objects handed out by helpers, freed by the teardown. */
enum { KEEP_JOB, KEEP_OPTS, KEEP_BATCH };
struct kept {
    int kind;
    void *ptr;
};
static struct kept *kept;
static size_t kept_n, kept_cap;

static void keep(int kind, void *ptr)
{
    if (kept_n == kept_cap) {
        size_t cap = kept_cap ? kept_cap * 2 : 64;
        struct kept *k = realloc(kept, cap * sizeof *k);
        ck_assert_ptr_nonnull(k);
        kept = k;
        kept_cap = cap;
    }
    kept[kept_n].kind = kind;
    kept[kept_n].ptr = ptr;
    kept_n++;
}

static void free_kept(void)
{
    for (size_t i = 0; i < kept_n; i++) {
        switch (kept[i].kind) {
        case KEEP_JOB:
            at_job_free(kept[i].ptr);
            break;
        case KEEP_OPTS:
            at_opts_free(kept[i].ptr);
            break;
        case KEEP_BATCH:
            at_batch_free(kept[i].ptr);
            break;
        }
    }
    free(kept);
    kept = NULL;
    kept_n = kept_cap = 0;
}

/* Build the URI of a fresh store from the base URI (rules in conformance.h). */
static void fresh_uri(char *out, size_t size)
{
    unsigned n = ++open_counter;
    long pid = (long)getpid();
    fresh_path[0] = '\0';

    if (strncmp(base_uri, "sqlite:", 7) == 0) {
        const char *path = base_uri + 7;
        const char *query = strchr(path, '?');
        size_t plen = query ? (size_t)(query - path) : strlen(path);
        char dir[4096];
        struct stat st;
        if (plen < sizeof dir) {
            memcpy(dir, path, plen);
            dir[plen] = '\0';
            if (plen > 0 && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
                snprintf(fresh_path, sizeof fresh_path, "%s/t%ld-%u.db", dir, pid, n);
                snprintf(out, size, "sqlite:%s%s", fresh_path, query ? query : "");
                return;
            }
        }
    } else if (strncmp(base_uri, "redis://", 8) == 0 || strncmp(base_uri, "rediss://", 9) == 0) {
        snprintf(out, size, "%s%cprefix=ct-%ld-%u-%lld-", base_uri, strchr(base_uri, '?') ? '&' : '?', pid, n,
                 (long long)time(NULL));
        return;
    }
    snprintf(out, size, "%s", base_uri);
}

/* AT_TEST_REAL_CLOCK=1 runs a host-clock backend on real time, as Redis
 * runs: checks the suite's real-clock paths (sleeps, lateness allowed). */
static int real_clock_forced(void)
{
    const char *v = getenv("AT_TEST_REAL_CLOCK");
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

const char *ct_base_uri(void)
{
    return base_uri;
}

int ct_open(at_store **store_out, at_clock **clock_out)
{
    at_clock *clock = NULL;
    int rc;

    *store_out = NULL;
    *clock_out = NULL;
    fresh_uri(opened_uri, sizeof opened_uri);
    rc = at_store_open(store_out, opened_uri);
    if (rc != 0)
        return rc;
    if (real_clock_forced())
        return 0;
    rc = at_clock_new_manual(&clock, CT_CLOCK_START);
    if (rc != 0)
        return rc;
    rc = at_store_set_clock(*store_out, clock);
    if (rc == AT_ERR_UNSUPPORTED) {
        /* Judged by its own clock (Redis: the server's TIME): real time. */
        at_clock_free(clock);
        return 0;
    }
    if (rc != 0) {
        at_clock_free(clock);
        return rc;
    }
    *clock_out = clock;
    return 0;
}

void ct_setup(void)
{
    int rc;
    snprintf(run_tag, sizeof run_tag, "p%ldn%ut%lld", (long)getpid(), open_counter + 1,
             (long long)time(NULL));
    rc = ct_open(&ct_store, &ct_clock);
    ck_assert_msg(rc == 0, "cannot open a store from \"%s\": %s (%s)", opened_uri, at_err_name(rc),
                  at_last_error());
}

void ct_teardown(void)
{
    int rc;
    free_kept();
    /* Close before freeing the clock: a clock in use refuses (AT_ERR_BUSY). */
    at_store_close(ct_store);
    ct_store = NULL;
    rc = at_clock_free(ct_clock);
    ct_clock = NULL;
    if (fresh_path[0] != '\0') {
        static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
            char p[4300];
            snprintf(p, sizeof p, "%s%s", fresh_path, suffixes[i]);
            (void)unlink(p);
        }
        fresh_path[0] = '\0';
    }
    ck_assert_int_eq(rc, 0);
}

int ct_manual(void)
{
    return ct_clock != NULL;
}

void ct_sleep_real(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int64_t ct_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ct_advance(int64_t ms)
{
    if (ct_clock != NULL) {
        ck_assert_int_eq(at_clock_advance(ct_clock, ms), 0);
    } else {
        /* A real clock: sleep at least `ms` of store time, then a little
         * more.  A store may judge due times on its monotonic clock, whose
         * millisecond boundaries are not the wall clock's: a job due at
         * wall time t may become claimable a millisecond after ct_now()
         * reads t.  Real clocks may be late, never early. */
        int64_t until = ct_now() + ms;
        ct_sleep_real(ms);
        while (ct_now() < until)
            ct_sleep_real(1);
        ct_sleep_real(CT_REAL_SLACK_MS);
    }
}

int64_t ct_now(void)
{
    int64_t now = 0;
    ck_assert_int_eq(at_store_now(&now, ct_store), 0);
    return now;
}

const char *ct_name(const char *func, const char *suffix)
{
    static char ring[32][AT_NAME_MAX + 1];
    static unsigned next;
    char *buf = ring[next++ % 32];
    size_t flen = strlen(func);
    /* START_TEST(x) defines x_fn: the rule's name is x. */
    if (flen > 3 && strcmp(func + flen - 3, "_fn") == 0)
        flen -= 3;
    if (flen > 70)
        flen = 70;
    snprintf(buf, AT_NAME_MAX + 1, "%.*s.%.16s.%s", (int)flen, func, suffix, run_tag);
    return buf;
}

at_opts *ct_opts(const char *queue)
{
    at_opts *o = NULL;
    ck_assert_int_eq(at_opts_new(&o), 0);
    ck_assert_ptr_nonnull(o);
    keep(KEEP_OPTS, o);
    if (queue != NULL)
        ct_set_str(o, AT_OPT_QUEUE, queue);
    return o;
}

void ct_set(at_opts *opts, int32_t option, int64_t value)
{
    int rc = at_opts_set_int(opts, option, value);
    ck_assert_msg(rc == 0, "at_opts_set_int(%d, %lld): %s", (int)option, (long long)value, at_err_name(rc));
}

void ct_set_str(at_opts *opts, int32_t option, const char *value)
{
    int rc = at_opts_set_str(opts, option, value);
    ck_assert_msg(rc == 0, "at_opts_set_str(%d, \"%s\"): %s", (int)option, value ? value : "(null)",
                  at_err_name(rc));
}

void ct_enqueue(char id_out[AT_ID_SIZE], const at_opts *opts)
{
    int rc = at_enqueue(id_out, ct_store, "t", NULL, 0, opts);
    ck_assert_msg(rc == 0, "at_enqueue: %s", at_err_name(rc));
}

at_job *ct_keep_job(at_job *job)
{
    if (job != NULL)
        keep(KEEP_JOB, job);
    return job;
}

at_batch *ct_batch(void)
{
    at_batch *b = NULL;
    ck_assert_int_eq(at_batch_new(&b), 0);
    ck_assert_ptr_nonnull(b);
    keep(KEEP_BATCH, b);
    return b;
}

at_job *ct_try_claim(const char *queue)
{
    at_job *jobs[1] = {NULL};
    size_t n = 99;
    const char *qs[1] = {queue};
    int rc = at_poll(jobs, &n, ct_store, qs, 1, 1, 0);
    ck_assert_msg(rc == 0, "at_poll: %s", at_err_name(rc));
    ck_assert_uint_le(n, 1);
    return n == 1 ? ct_keep_job(jobs[0]) : NULL;
}

at_job *ct_claim(const char *queue)
{
    at_job *j = ct_try_claim(queue);
    ck_assert_msg(j != NULL, "no job of %s was claimable", queue);
    return j;
}

size_t ct_poll_count(const char *queue, size_t max)
{
    at_job *jobs[64];
    size_t n = 0;
    const char *qs[1] = {queue};
    ck_assert_uint_le(max, 64);
    ck_assert_int_eq(at_poll(jobs, &n, ct_store, qs, 1, max, 0), 0);
    ck_assert_uint_le(n, max);
    for (size_t i = 0; i < n; i++)
        at_job_free(jobs[i]);
    return n;
}

at_job *ct_get(const char *id)
{
    at_job *j = NULL;
    int rc = at_get(&j, ct_store, id);
    ck_assert_msg(rc == 0, "at_get(%s): %s", id, at_err_name(rc));
    ck_assert_ptr_nonnull(j);
    return ct_keep_job(j);
}

int32_t ct_state(const char *id)
{
    at_job *j = NULL;
    int32_t state;
    int rc = at_get(&j, ct_store, id);
    ck_assert_msg(rc == 0, "at_get(%s): %s", id, at_err_name(rc));
    state = at_job_state(j);
    at_job_free(j);
    return state;
}

/* Fresh stats and the index of `queue` in them (SIZE_MAX: not listed). */
static at_stats *stats_of(const char *queue, size_t *index_out)
{
    at_stats *s = NULL;
    ck_assert_int_eq(at_stats_get(&s, ct_store), 0);
    ck_assert_ptr_nonnull(s);
    *index_out = SIZE_MAX;
    for (size_t i = 0; i < at_stats_queue_count(s); i++) {
        const char *name = at_stats_queue_name(s, i);
        ck_assert_ptr_nonnull(name);
        if (strcmp(name, queue) == 0)
            *index_out = i;
    }
    return s;
}

uint64_t ct_count(const char *queue, int32_t state)
{
    size_t i;
    at_stats *s = stats_of(queue, &i);
    uint64_t c = i == SIZE_MAX ? 0 : at_stats_count(s, i, state);
    at_stats_free(s);
    return c;
}

int64_t ct_next_due(const char *queue)
{
    size_t i;
    at_stats *s = stats_of(queue, &i);
    int64_t due = i == SIZE_MAX ? AT_TIME_NONE : at_stats_next_due(s, i);
    at_stats_free(s);
    return due;
}

TCase *ct_tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    /* Real clocks sleep for leases and delays; CK_TIMEOUT_MULTIPLIER
     * stretches this under valgrind. */
    tcase_set_timeout(tc, 30);
    return tc;
}

Suite *at_conformance_suite(const char *uri)
{
    Suite *s = suite_create("conformance");
    snprintf(base_uri, sizeof base_uri, "%s", uri != NULL ? uri : "memory:");

    /* A table of contents: the order of docs/SEMANTICS.md, then the API. */
    suite_add_tcase(s, ct_tcase_api());
    suite_add_tcase(s, ct_tcase_clock());
    suite_add_tcase(s, ct_tcase_ids());
    suite_add_tcase(s, ct_tcase_states());
    suite_add_tcase(s, ct_tcase_ordering());
    suite_add_tcase(s, ct_tcase_poll());
    suite_add_tcase(s, ct_tcase_leases());
    suite_add_tcase(s, ct_tcase_ack());
    suite_add_tcase(s, ct_tcase_retry());
    suite_add_tcase(s, ct_tcase_dead());
    suite_add_tcase(s, ct_tcase_idempotency());
    suite_add_tcase(s, ct_tcase_cancel());
    suite_add_tcase(s, ct_tcase_batch());
    suite_add_tcase(s, ct_tcase_get());
    suite_add_tcase(s, ct_tcase_list());
    suite_add_tcase(s, ct_tcase_stats());
    suite_add_tcase(s, ct_tcase_purge());
    suite_add_tcase(s, ct_tcase_input());
    suite_add_tcase(s, ct_tcase_payload());
    suite_add_tcase(s, ct_tcase_concurrency());
    suite_add_tcase(s, ct_tcase_schedules());
    suite_add_tcase(s, ct_tcase_scheduler());
    suite_add_tcase(s, ct_tcase_workflows());
    suite_add_tcase(s, ct_tcase_queues());
    return s;
}
