/*
 * worker_procs.c - worker processes sharing one durable store.
 *
 *   worker_procs URI       sqlite:DIR or redis://HOST:PORT
 *
 * Case "sigterm_mid_job": a worker process (grace 200 ms) is running a job
 * that takes 3 s when it gets SIGTERM; its handler calls at_worker_stop.
 * The job must be READY again well before its 30 s lease would run out,
 * with no attempt used, and a second worker process must then run it to
 * SUCCEEDED exactly once more.
 * Case "rate_limit_across_processes": two worker processes with the same
 * limit (5 per second) on one queue of 40 jobs: over the run, starts never
 * exceed the bucket (5) plus 5 per elapsed second, in total.
 * Children are fresh images of this program (exec), stopped by PID.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "asynctask.h"

static char g_base[512];
static char g_uri[700];
static int g_n;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------- child */

static at_worker *g_w;

static void on_term(int sig)
{
    (void)sig;
    at_worker_stop(g_w);
}

static int32_t h_sleep(at_ctx *c, void *ud)
{
    int64_t ms = *(int64_t *)ud, end = mono_ms() + ms;
    /* Deliberately ignores cancellation: the grace must run out. */
    while (mono_ms() < end)
        sleep_ms(10);
    (void)c;
    return AT_HANDLER_OK;
}

/* child MODE: "slow" (3 s jobs, grace 200 ms), "fast", "rate" (5/s). */
static int child(const char *mode)
{
    at_store *st;
    if (at_store_open(&st, g_uri) != 0)
        return 3;
    static int64_t slow = 3000, fast = 0;
    if (at_worker_new(&g_w, st) || at_worker_add_queue(g_w, "wp", 1, 0) ||
        at_worker_set_int(g_w, AT_WORKER_THREADS, 2) || at_worker_set_int(g_w, AT_WORKER_GRACE_MS, 200) ||
        at_worker_handle(g_w, "*", h_sleep, strcmp(mode, "slow") == 0 ? &slow : &fast))
        return 4;
    if (strcmp(mode, "rate") == 0 && at_worker_set_rate(g_w, "wp", 5, 1000) != 0)
        return 5;
    struct sigaction sa = {.sa_handler = on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    if (at_worker_start(g_w) != 0)
        return 6;
    at_worker_wait(g_w, -1);
    at_worker_free(g_w);
    at_store_close(st);
    return 0;
}

static pid_t spawn(const char *mode)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl("/proc/self/exe", "worker_procs", "--child", g_uri, mode, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int reap(pid_t pid, int sig)
{
    if (sig)
        kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

/* ------------------------------------------------------------- tests */

static at_store *st;

static void setup(void)
{
    g_n++;
    if (strncmp(g_base, "sqlite:", 7) == 0)
        snprintf(g_uri, sizeof g_uri, "%s/wp%ld-%d.db", g_base, (long)getpid(), g_n);
    else
        snprintf(g_uri, sizeof g_uri, "%s?prefix=wp%ld-%d", g_base, (long)getpid(), g_n);
    ck_assert_int_eq(at_store_open(&st, g_uri), 0);
}

static void teardown(void)
{
    at_store_close(st);
}

static at_job *get(const char *id)
{
    at_job *j;
    ck_assert_int_eq(at_get(&j, st, id), 0);
    return j;
}

static int32_t state_of(const char *id)
{
    at_job *j = get(id);
    int32_t s = at_job_state(j);
    at_job_free(j);
    return s;
}

static int64_t wait_state(const char *id, int32_t want, int64_t ms)
{
    int64_t t0 = mono_ms();
    while (mono_ms() - t0 < ms) {
        if (state_of(id) == want)
            return mono_ms() - t0;
        sleep_ms(5);
    }
    return -1;
}

START_TEST(sigterm_mid_job)
{
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "wp");
    at_opts_set_int(o, AT_OPT_LEASE_MS, 30000);
    char id[AT_ID_SIZE];
    ck_assert_int_eq(at_enqueue(id, st, "job", NULL, 0, o), 0);
    at_opts_free(o);
    pid_t a = spawn("slow");
    ck_assert_int_ge(wait_state(id, AT_STATE_RUNNING, 10000), 0);
    int64_t t0 = mono_ms();
    kill(a, SIGTERM);
    int64_t back = wait_state(id, AT_STATE_READY, 5000);
    ck_assert_msg(back >= 0, "the job was not given back after SIGTERM");
    at_job *j = get(id);
    ck_assert_uint_eq(at_job_attempts(j), 0);
    at_job_free(j);
    /* Another process takes it at once, while the first one is still
     * waiting for its stubborn handler thread to return before exiting. */
    pid_t b = spawn("fast");
    int64_t done = wait_state(id, AT_STATE_SUCCEEDED, 10000);
    int status = reap(a, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    reap(b, SIGTERM);
    ck_assert_int_ge(done, 0);
    j = get(id);
    ck_assert_uint_eq(at_job_attempts(j), 1);
    at_job_free(j);
    printf("%s: given back %lld ms after SIGTERM (lease 30000 ms), run again and done %lld ms after it\n",
           g_base, (long long)back, (long long)(t0 + back + done - t0));
}
END_TEST

START_TEST(rate_limit_across_processes)
{
    at_batch *b;
    at_batch_new(&b);
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "wp");
    for (int i = 0; i < 40; i++)
        at_batch_add(b, "job", NULL, 0, o);
    ck_assert_int_eq(at_enqueue_batch(st, b), 0);
    int64_t t0 = mono_ms();
    pid_t p1 = spawn("rate"), p2 = spawn("rate");
    sleep_ms(2500);
    kill(p1, SIGTERM);
    kill(p2, SIGTERM);
    reap(p1, 0);
    reap(p2, 0);
    /* Until both are gone: they may start jobs while they stop. */
    int64_t elapsed = mono_ms() - t0;
    uint64_t done = 0;
    for (size_t i = 0; i < at_batch_count(b); i++)
        done += state_of(at_batch_id(b, i)) == AT_STATE_SUCCEEDED;
    printf("%s: %llu of 40 jobs in %lld ms by two processes limited to 5/s together\n", g_base,
           (unsigned long long)done, (long long)elapsed);
    ck_assert_uint_ge(done, 5);
    ck_assert_uint_le(done, 5 + (uint64_t)(5 * elapsed / 1000) + 1);
    at_batch_free(b);
    at_opts_free(o);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0) {
        snprintf(g_uri, sizeof g_uri, "%s", argv[2]);
        return child(argv[3]);
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s URI (sqlite:DIR or redis://HOST:PORT)\n", argv[0]);
        return 2;
    }
    snprintf(g_base, sizeof g_base, "%s", argv[1]);
    Suite *s = suite_create("worker processes");
    TCase *tc = tcase_create("worker_processes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sigterm_mid_job);
    tcase_add_test(tc, rate_limit_across_processes);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
