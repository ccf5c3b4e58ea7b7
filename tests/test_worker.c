/*
 * test_worker.c - the worker runtime (at_worker_*, ADR/0015) against one
 * backend.
 *
 *   test_worker [URI]     memory: (default), sqlite:DIR, redis://HOST:PORT
 *
 * Real time throughout (workers are threads that sleep on real clocks);
 * every test uses its own queue names, and a fresh file or key prefix per
 * test on the durable backends.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "asynctask.h"

static char g_base[512] = "memory:";
static int g_n;
static at_store *st;
static char g_uri[700];

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void setup(void)
{
    g_n++;
    if (strncmp(g_base, "sqlite:", 7) == 0)
        snprintf(g_uri, sizeof g_uri, "%s/w%ld-%d.db", g_base, (long)getpid(), g_n);
    else if (strncmp(g_base, "redis://", 8) == 0)
        snprintf(g_uri, sizeof g_uri, "%s?prefix=tw%ld-%d", g_base, (long)getpid(), g_n);
    else
        snprintf(g_uri, sizeof g_uri, "%s", g_base);
    int rc = at_store_open(&st, g_uri);
    ck_assert_msg(rc == 0, "open %s: %s %s", g_uri, at_err_name(rc), at_last_error());
}

static void teardown(void)
{
    at_store_close(st);
    st = NULL;
}

static void enqueue(const char *queue, const char *type, const char *payload, int64_t lease_ms, char *id_out)
{
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, queue);
    if (lease_ms)
        at_opts_set_int(o, AT_OPT_LEASE_MS, lease_ms);
    at_opts_set_int(o, AT_OPT_BACKOFF_BASE_MS, 20);
    at_opts_set_int(o, AT_OPT_BACKOFF_CAP_MS, 40);
    int rc = at_enqueue(id_out, st, type, payload, payload ? strlen(payload) : 0, o);
    ck_assert_msg(rc == 0, "enqueue: %s", at_err_name(rc));
    at_opts_free(o);
}

static int32_t state_of(const char *id)
{
    at_job *j;
    ck_assert_int_eq(at_get(&j, st, id), 0);
    int32_t s = at_job_state(j);
    at_job_free(j);
    return s;
}

static int wait_state(const char *id, int32_t want, int64_t ms)
{
    int64_t end = mono_ms() + ms;
    while (mono_ms() < end) {
        if (state_of(id) == want)
            return 1;
        sleep_ms(5);
    }
    return state_of(id) == want;
}

static at_worker *worker(const char *queue, int threads)
{
    at_worker *w;
    ck_assert_int_eq(at_worker_new(&w, st), 0);
    ck_assert_int_eq(at_worker_add_queue(w, queue, 1, 0), 0);
    ck_assert_int_eq(at_worker_set_int(w, AT_WORKER_THREADS, threads), 0);
    return w;
}

static void finish(at_worker *w)
{
    at_worker_stop(w);
    ck_assert_int_eq(at_worker_wait(w, 20000), 0);
    at_worker_free(w);
}

/* ------------------------------------------------------------ handlers */

static int32_t h_echo(at_ctx *c, void *ud)
{
    (void)ud;
    size_t n;
    const void *p = at_job_payload(at_ctx_job(c), &n);
    at_ctx_set_result(c, p, n);
    return AT_HANDLER_OK;
}

static int32_t h_fail(at_ctx *c, void *ud)
{
    at_ctx_set_error(c, "it broke");
    return *(int32_t *)ud;
}

static atomic_int g_now, g_max;

static int32_t h_slow(at_ctx *c, void *ud)
{
    (void)c;
    int now = atomic_fetch_add(&g_now, 1) + 1;
    int m = atomic_load(&g_max);
    while (now > m && !atomic_compare_exchange_weak(&g_max, &m, now))
        ;
    sleep_ms(*(int *)ud);
    atomic_fetch_sub(&g_now, 1);
    return AT_HANDLER_OK;
}

/* Runs until told to stop, then answers OK. */
static int32_t h_until_cancelled(at_ctx *c, void *ud)
{
    (void)ud;
    while (!at_ctx_cancelled(c))
        sleep_ms(5);
    return AT_HANDLER_OK;
}

/* Ignores every request to stop for `ud` ms. */
static int32_t h_stubborn(at_ctx *c, void *ud)
{
    (void)c;
    sleep_ms(*(int *)ud);
    return AT_HANDLER_OK;
}

/* --------------------------------------------------------------- tests */

START_TEST(handlers_ack_with_results)
{
    char id[3][AT_ID_SIZE];
    for (int i = 0; i < 3; i++)
        enqueue("q.echo", "echo", i == 0 ? "a" : i == 1 ? "bb" : "ccc", 0, id[i]);
    at_worker *w = worker("q.echo", 2);
    ck_assert_int_eq(at_worker_handle(w, "echo", h_echo, NULL), 0);
    ck_assert_int_eq(at_worker_start(w), 0);
    for (int i = 0; i < 3; i++)
        ck_assert(wait_state(id[i], AT_STATE_SUCCEEDED, 5000));
    /* The counter moves just after the store's ack returns. */
    uint64_t started = 0, ok = 0;
    for (int64_t end = mono_ms() + 5000; ok < 3 && mono_ms() < end; sleep_ms(2))
        at_worker_counters(w, &started, &ok, NULL, NULL);
    ck_assert_uint_eq(started, 3);
    ck_assert_uint_eq(ok, 3);
    finish(w);
    at_job *j;
    ck_assert_int_eq(at_get(&j, st, id[2]), 0);
    size_t n;
    const char *r = at_job_result(j, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(memcmp(r, "ccc", 3), 0);
    at_job_free(j);
}
END_TEST

START_TEST(answers_retry_permanent_release_and_unknown_types)
{
    char retry[AT_ID_SIZE], dead[AT_ID_SIZE], unknown[AT_ID_SIZE];
    enqueue("q.f", "retry", NULL, 0, retry);
    enqueue("q.f", "dead", NULL, 0, dead);
    enqueue("q.f", "nobody", NULL, 0, unknown);
    at_worker *w = worker("q.f", 1);
    static int32_t r = AT_HANDLER_RETRY, p = AT_HANDLER_PERMANENT;
    ck_assert_int_eq(at_worker_handle(w, "retry", h_fail, &r), 0);
    ck_assert_int_eq(at_worker_handle(w, "dead", h_fail, &p), 0);
    ck_assert_int_eq(at_worker_start(w), 0);
    ck_assert(wait_state(dead, AT_STATE_DEAD, 5000));
    int64_t end = mono_ms() + 5000;
    at_job *j = NULL;
    while (mono_ms() < end) {
        ck_assert_int_eq(at_get(&j, st, retry), 0);
        if (at_job_attempts(j) >= 2)
            break;
        at_job_free(j);
        j = NULL;
        sleep_ms(5);
    }
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(at_job_last_error(j), "it broke");
    at_job_free(j);
    finish(w);
    ck_assert_int_eq(at_get(&j, st, unknown), 0);
    ck_assert_ptr_nonnull(strstr(at_job_last_error(j), "no handler"));
    at_job_free(j);
}
END_TEST

START_TEST(per_queue_concurrency_is_a_ceiling)
{
    for (int i = 0; i < 8; i++)
        enqueue("q.c", "slow", NULL, 0, NULL);
    atomic_store(&g_now, 0);
    atomic_store(&g_max, 0);
    at_worker *w;
    ck_assert_int_eq(at_worker_new(&w, st), 0);
    ck_assert_int_eq(at_worker_add_queue(w, "q.c", 1, 2), 0);
    ck_assert_int_eq(at_worker_set_int(w, AT_WORKER_THREADS, 6), 0);
    static int ms = 60;
    ck_assert_int_eq(at_worker_handle(w, "*", h_slow, &ms), 0);
    ck_assert_int_eq(at_worker_start(w), 0);
    int64_t end = mono_ms() + 8000;
    uint64_t ok = 0;
    while (ok < 8 && mono_ms() < end) {
        at_worker_counters(w, NULL, &ok, NULL, NULL);
        sleep_ms(10);
    }
    finish(w);
    ck_assert_uint_eq(ok, 8);
    ck_assert_int_eq(atomic_load(&g_max), 2);
}
END_TEST

START_TEST(leases_are_renewed_while_a_handler_runs)
{
    char id[AT_ID_SIZE];
    enqueue("q.l", "slow", NULL, 300, id);
    at_worker *w = worker("q.l", 1);
    static int ms = 1200;
    ck_assert_int_eq(at_worker_handle(w, "slow", h_stubborn, &ms), 0);
    ck_assert_int_eq(at_worker_start(w), 0);
    ck_assert(wait_state(id, AT_STATE_SUCCEEDED, 6000));
    finish(w);
    at_job *j;
    ck_assert_int_eq(at_get(&j, st, id), 0);
    ck_assert_uint_eq(at_job_attempts(j), 1); /* never expired and re-claimed */
    at_job_free(j);
}
END_TEST

static atomic_int g_events[16];

static void on_event(void *ud, int32_t ev, const at_job *job, const char *detail)
{
    (void)ud, (void)job, (void)detail;
    if (ev > 0 && ev < 16)
        atomic_fetch_add(&g_events[ev], 1);
}

START_TEST(a_job_past_its_timeout_fails_and_the_handler_is_told)
{
    char id[AT_ID_SIZE];
    enqueue("q.t", "forever", NULL, 0, id);
    memset(g_events, 0, sizeof g_events);
    at_worker *w = worker("q.t", 1);
    ck_assert_int_eq(at_worker_set_int(w, AT_WORKER_TIMEOUT_MS, 200), 0);
    ck_assert_int_eq(at_worker_handle(w, "forever", h_until_cancelled, NULL), 0);
    ck_assert_int_eq(at_worker_on_event(w, on_event, NULL), 0);
    ck_assert_int_eq(at_worker_start(w), 0);
    int64_t end = mono_ms() + 5000;
    while (atomic_load(&g_events[AT_EVENT_TIMEOUT]) == 0 && mono_ms() < end)
        sleep_ms(5);
    ck_assert_int_ge(atomic_load(&g_events[AT_EVENT_TIMEOUT]), 1);
    /* The job may already be running again (the retry): its record keeps
     * the timeout as its last error until that attempt ends. */
    at_job *j = NULL;
    int seen = 0;
    for (int64_t stop = mono_ms() + 5000; !seen && mono_ms() < stop; sleep_ms(5)) {
        ck_assert_int_eq(at_get(&j, st, id), 0);
        seen = at_job_last_error(j) && strstr(at_job_last_error(j), "timeout") != NULL;
        at_job_free(j);
    }
    ck_assert_msg(seen, "the job's last error never named the timeout");
    finish(w);
}
END_TEST

START_TEST(cancelling_a_running_job_reaches_its_handler)
{
    char id[AT_ID_SIZE];
    enqueue("q.x", "forever", NULL, 300, id);
    at_worker *w = worker("q.x", 1);
    ck_assert_int_eq(at_worker_handle(w, "forever", h_until_cancelled, NULL), 0);
    ck_assert_int_eq(at_worker_start(w), 0);
    ck_assert(wait_state(id, AT_STATE_RUNNING, 5000));
    int32_t pending = 0;
    ck_assert_int_eq(at_cancel(&pending, st, id), 0);
    ck_assert_int_eq(pending, 1);
    ck_assert(wait_state(id, AT_STATE_CANCELLED, 3000));
    finish(w);
}
END_TEST

START_TEST(stop_gives_back_unfinished_jobs_at_once_and_they_run_once_more)
{
    char id[AT_ID_SIZE];
    enqueue("q.s", "stubborn", NULL, 30000, id);
    at_worker *w = worker("q.s", 1);
    static int ms = 1500;
    ck_assert_int_eq(at_worker_handle(w, "stubborn", h_stubborn, &ms), 0);
    ck_assert_int_eq(at_worker_set_int(w, AT_WORKER_GRACE_MS, 100), 0);
    ck_assert_int_eq(at_worker_start(w), 0);
    ck_assert(wait_state(id, AT_STATE_RUNNING, 5000));
    int64_t t0 = mono_ms();
    at_worker_stop(w);
    /* Released after the 100 ms grace, long before the 30 s lease. */
    ck_assert(wait_state(id, AT_STATE_READY, 2000));
    ck_assert_int_lt(mono_ms() - t0, 1500);
    at_job *j;
    ck_assert_int_eq(at_get(&j, st, id), 0);
    ck_assert_uint_eq(at_job_attempts(j), 0);
    at_job_free(j);
    ck_assert_int_eq(at_worker_wait(w, 20000), 0);
    at_worker_free(w);
    at_worker *w2 = worker("q.s", 1);
    ck_assert_int_eq(at_worker_handle(w2, "stubborn", h_echo, NULL), 0);
    ck_assert_int_eq(at_worker_start(w2), 0);
    ck_assert(wait_state(id, AT_STATE_SUCCEEDED, 5000));
    finish(w2);
    ck_assert_int_eq(at_get(&j, st, id), 0);
    ck_assert_uint_eq(at_job_attempts(j), 1);
    at_job_free(j);
}
END_TEST

static at_worker *g_sig_worker;

static void on_sigusr1(int sig)
{
    (void)sig;
    at_worker_stop(g_sig_worker);
}

START_TEST(stop_is_safe_from_a_signal_handler)
{
    at_worker *w = worker("q.sig", 2);
    ck_assert_int_eq(at_worker_handle(w, "*", h_echo, NULL), 0);
    ck_assert_int_eq(at_worker_start(w), 0);
    g_sig_worker = w;
    struct sigaction sa = {.sa_handler = on_sigusr1};
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    sleep_ms(50);
    raise(SIGUSR1);
    ck_assert_int_eq(at_worker_wait(w, 5000), 0);
    at_worker_free(w);
    signal(SIGUSR1, SIG_DFL);
}
END_TEST

START_TEST(event_loop_mode_runs_jobs_in_the_callers_thread)
{
    char id[2][AT_ID_SIZE];
    at_worker *w = worker("q.ev", 1);
    ck_assert_int_eq(at_worker_handle(w, "*", h_echo, NULL), 0);
    int fd = at_worker_fd(w);
    ck_assert_int_ge(fd, 0);
    enqueue("q.ev", "e", "x", 0, id[0]);
    enqueue("q.ev", "e", "y", 0, id[1]);
    size_t total = 0;
    int64_t end = mono_ms() + 5000;
    while (total < 2 && mono_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 500) > 0) {
            size_t ran = 0;
            ck_assert_int_eq(at_worker_run_ready(&ran, w, 10), 0);
            total += ran;
        }
    }
    ck_assert_uint_eq(total, 2);
    ck_assert_int_eq(state_of(id[0]), AT_STATE_SUCCEEDED);
    ck_assert_int_eq(state_of(id[1]), AT_STATE_SUCCEEDED);
    finish(w);
}
END_TEST

/* A job claimed for the host's loop keeps its lease while the loop is late
 * to call at_worker_run_ready: nobody else claims it, and it runs once. */
START_TEST(event_loop_mode_holds_the_lease_of_a_job_the_loop_has_not_run_yet)
{
    char id[AT_ID_SIZE];
    at_worker *w = worker("q.evl", 1);
    ck_assert_int_eq(at_worker_handle(w, "*", h_echo, NULL), 0);
    int fd = at_worker_fd(w);
    ck_assert_int_ge(fd, 0);
    enqueue("q.evl", "e", "x", 300, id);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ck_assert_int_eq(poll(&p, 1, 5000), 1); /* claimed into the slot */
    ck_assert_int_eq(state_of(id), AT_STATE_RUNNING);
    /* Four lease periods late: an unrenewed lease would have expired. */
    int64_t end = mono_ms() + 1200;
    while (mono_ms() < end) {
        at_job *other[1];
        size_t n = 0;
        const char *q[1] = {"q.evl"};
        ck_assert_int_eq(at_poll(other, &n, st, q, 1, 1, 0), 0);
        ck_assert_msg(n == 0, "the slot's job was claimed by another poller: its lease ran out");
        sleep_ms(50);
    }
    size_t ran = 0;
    ck_assert_int_eq(at_worker_run_ready(&ran, w, 1), 0);
    ck_assert_uint_eq(ran, 1);
    ck_assert_int_eq(state_of(id), AT_STATE_SUCCEEDED);
    at_job *j;
    ck_assert_int_eq(at_get(&j, st, id), 0);
    ck_assert_uint_eq(at_job_attempts(j), 1);
    at_job_free(j);
    finish(w);
}
END_TEST

START_TEST(a_paused_queue_is_not_claimed_until_resumed)
{
    char id[AT_ID_SIZE];
    ck_assert_int_eq(at_queue_pause(st, "q.p"), 0);
    int32_t paused = 0;
    ck_assert_int_eq(at_queue_is_paused(&paused, st, "q.p"), 0);
    ck_assert_int_eq(paused, 1);
    enqueue("q.p", "e", NULL, 0, id);
    at_worker *w = worker("q.p", 1);
    ck_assert_int_eq(at_worker_handle(w, "*", h_echo, NULL), 0);
    ck_assert_int_eq(at_worker_start(w), 0);
    sleep_ms(300);
    ck_assert_int_eq(state_of(id), AT_STATE_READY);
    ck_assert_int_eq(at_queue_resume(st, "q.p"), 0);
    ck_assert(wait_state(id, AT_STATE_SUCCEEDED, 3000));
    finish(w);
}
END_TEST

START_TEST(a_rate_limit_holds_for_the_queue)
{
    for (int i = 0; i < 12; i++)
        enqueue("q.r", "e", NULL, 0, NULL);
    at_worker *w = worker("q.r", 4);
    ck_assert_int_eq(at_worker_handle(w, "*", h_echo, NULL), 0);
    int rc = at_worker_set_rate(w, "q.r", 4, 1000);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(at_worker_start(w), 0);
    sleep_ms(1500);
    uint64_t ok = 0;
    at_worker_counters(w, NULL, &ok, NULL, NULL);
    finish(w);
    /* A full bucket of 4 at once, then 4 per second: 10 by 1.5 s at most. */
    ck_assert_uint_ge(ok, 4);
    ck_assert_uint_le(ok, 10);
}
END_TEST

static atomic_int g_store_events[16];

static void on_store_event(void *ud, int32_t ev, const at_job *job, const char *detail)
{
    (void)ud, (void)detail;
    if (ev > 0 && ev < 16 && job && at_job_id(job))
        atomic_fetch_add(&g_store_events[ev], 1);
}

START_TEST(the_store_hook_sees_enqueues_and_every_workers_events)
{
    memset(g_store_events, 0, sizeof g_store_events);
    ck_assert_int_eq(at_store_on_event(st, on_store_event, NULL), 0);
    char ok[AT_ID_SIZE], bad[AT_ID_SIZE];
    enqueue("q.h", "echo", "x", 0, ok);
    enqueue("q.h", "dead", NULL, 0, bad);
    ck_assert_int_eq(atomic_load(&g_store_events[AT_EVENT_ENQUEUED]), 2);
    at_worker *w = worker("q.h", 1);
    static int32_t p = AT_HANDLER_PERMANENT;
    ck_assert_int_eq(at_worker_handle(w, "echo", h_echo, NULL), 0);
    ck_assert_int_eq(at_worker_handle(w, "dead", h_fail, &p), 0);
    ck_assert_int_eq(at_worker_start(w), 0);
    ck_assert(wait_state(ok, AT_STATE_SUCCEEDED, 5000));
    ck_assert(wait_state(bad, AT_STATE_DEAD, 5000));
    finish(w);
    ck_assert_int_eq(atomic_load(&g_store_events[AT_EVENT_STARTED]), 2);
    ck_assert_int_eq(atomic_load(&g_store_events[AT_EVENT_SUCCEEDED]), 1);
    ck_assert_int_eq(atomic_load(&g_store_events[AT_EVENT_FAILED]), 1);
    ck_assert_int_eq(atomic_load(&g_store_events[AT_EVENT_DEAD]), 1);
    ck_assert_int_eq(at_store_on_event(st, NULL, NULL), 0);
}
END_TEST

START_TEST(bad_configuration_is_refused)
{
    at_worker *w;
    ck_assert_int_eq(at_worker_new(&w, st), 0);
    ck_assert_int_eq(at_worker_start(w), AT_ERR_INVAL); /* no queue */
    ck_assert_int_eq(at_worker_add_queue(w, "bad name", 1, 0), AT_ERR_NAME);
    ck_assert_int_eq(at_worker_add_queue(w, "q", 0, 0), AT_ERR_RANGE);
    ck_assert_int_eq(at_worker_add_queue(w, "q", 1, 0), 0);
    ck_assert_int_eq(at_worker_add_queue(w, "q", 1, 0), AT_ERR_EXISTS);
    ck_assert_int_eq(at_worker_set_rate(w, "other", 1, 1000), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_worker_set_int(w, AT_WORKER_THREADS, 0), AT_ERR_RANGE);
    ck_assert_int_eq(at_worker_set_int(w, 999, 1), AT_ERR_INVAL);
    ck_assert_int_eq(at_worker_start(w), AT_ERR_INVAL); /* no handler */
    ck_assert_int_eq(at_worker_handle(w, "bad type", h_echo, NULL), AT_ERR_NAME);
    at_worker_free(w);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        snprintf(g_base, sizeof g_base, "%s", argv[1]);
    Suite *s = suite_create("worker");
    TCase *tc = tcase_create("worker");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, handlers_ack_with_results);
    tcase_add_test(tc, answers_retry_permanent_release_and_unknown_types);
    tcase_add_test(tc, per_queue_concurrency_is_a_ceiling);
    tcase_add_test(tc, leases_are_renewed_while_a_handler_runs);
    tcase_add_test(tc, a_job_past_its_timeout_fails_and_the_handler_is_told);
    tcase_add_test(tc, cancelling_a_running_job_reaches_its_handler);
    tcase_add_test(tc, stop_gives_back_unfinished_jobs_at_once_and_they_run_once_more);
    tcase_add_test(tc, stop_is_safe_from_a_signal_handler);
    tcase_add_test(tc, event_loop_mode_runs_jobs_in_the_callers_thread);
    tcase_add_test(tc, event_loop_mode_holds_the_lease_of_a_job_the_loop_has_not_run_yet);
    tcase_add_test(tc, a_paused_queue_is_not_claimed_until_resumed);
    tcase_add_test(tc, a_rate_limit_holds_for_the_queue);
    tcase_add_test(tc, the_store_hook_sees_enqueues_and_every_workers_events);
    tcase_add_test(tc, bad_configuration_is_refused);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    printf("worker tests against %s\n", g_base);
    return failed ? 1 : 0;
}
