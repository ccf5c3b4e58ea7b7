/*
 * test_observe.c - the log callback (at_set_log) and the metrics exposition
 * (at_metrics_prometheus), on the memory backend.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "asynctask.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_log[64][600];
static int g_nlog;

static void on_log(void *ud, const at_log_record *r)
{
    (void)ud;
    pthread_mutex_lock(&g_mu);
    if (g_nlog < 64)
        snprintf(g_log[g_nlog++], sizeof g_log[0], "%d|%s|%s|%s|%s|%s|%u", (int)r->level, r->component,
                 r->job_id ? r->job_id : "-", r->queue ? r->queue : "-", r->type ? r->type : "-", r->message,
                 r->attempt);
    pthread_mutex_unlock(&g_mu);
}

static int find_log(const char *needle)
{
    pthread_mutex_lock(&g_mu);
    int found = -1;
    for (int i = 0; i < g_nlog && found < 0; i++)
        if (strstr(g_log[i], needle))
            found = i;
    pthread_mutex_unlock(&g_mu);
    return found;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

START_TEST(log_levels_are_checked)
{
    ck_assert_int_eq(at_set_log(on_log, NULL, 0), AT_ERR_RANGE);
    ck_assert_int_eq(at_set_log(on_log, NULL, 5), AT_ERR_RANGE);
    ck_assert_int_eq(at_set_log(NULL, NULL, AT_LOG_ERROR), 0);
}
END_TEST

START_TEST(the_scheduler_logs_its_election)
{
    g_nlog = 0;
    ck_assert_int_eq(at_set_log(on_log, NULL, AT_LOG_INFO), 0);
    at_store *st;
    ck_assert_int_eq(at_store_open(&st, "memory:"), 0);
    at_scheduler *s;
    ck_assert_int_eq(at_scheduler_start(&s, st), 0);
    for (int i = 0; i < 200 && find_log("leads the schedules") < 0; i++)
        sleep_ms(5);
    at_scheduler_stop(s);
    at_store_close(st);
    ck_assert_int_ge(find_log("3|scheduler|-|-|-|"), 0);
    at_set_log(NULL, NULL, AT_LOG_ERROR);
}
END_TEST

static int32_t h_fail(at_ctx *c, void *ud)
{
    (void)ud;
    at_ctx_set_error(c, "disk on fire");
    return AT_HANDLER_PERMANENT;
}

START_TEST(worker_failures_are_logged_with_the_jobs_fields)
{
    g_nlog = 0;
    ck_assert_int_eq(at_set_log(on_log, NULL, AT_LOG_WARN), 0);
    at_store *st;
    ck_assert_int_eq(at_store_open(&st, "memory:"), 0);
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "obs.q");
    char id[AT_ID_SIZE];
    ck_assert_int_eq(at_enqueue(id, st, "obs.type", NULL, 0, o), 0);
    at_opts_free(o);
    at_worker *w;
    at_worker_new(&w, st);
    at_worker_add_queue(w, "obs.q", 1, 0);
    at_worker_handle(w, "*", h_fail, NULL);
    ck_assert_int_eq(at_worker_start(w), 0);
    char want[200];
    snprintf(want, sizeof want, "2|worker|%s|obs.q|obs.type|job dead: disk on fire|1", id);
    for (int i = 0; i < 400 && find_log(want) < 0; i++)
        sleep_ms(5);
    at_worker_free(w);
    at_store_close(st);
    ck_assert_msg(find_log(want) >= 0, "no log line %s (first: %s)", want, g_nlog ? g_log[0] : "none");
    /* INFO events are below the WARN threshold. */
    ck_assert_int_lt(find_log("|job failed"), 0);
    at_set_log(NULL, NULL, AT_LOG_ERROR);
}
END_TEST

START_TEST(metrics_count_and_time_what_this_handle_did)
{
    at_store *st;
    ck_assert_int_eq(at_store_open(&st, "memory:"), 0);
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "m.q");
    at_opts_set_int(o, AT_OPT_BACKOFF_BASE_MS, 60000);
    at_opts_set_int(o, AT_OPT_BACKOFF_CAP_MS, 60000);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(at_enqueue(NULL, st, "t", NULL, 0, o), 0);
    at_opts_free(o);
    const char *qs[] = {"m.q"};
    at_job *jobs[2];
    size_t n = 0;
    ck_assert_int_eq(at_poll(jobs, &n, st, qs, 1, 2, 0), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(at_ack(st, at_job_id(jobs[0]), at_job_token(jobs[0]), NULL, 0), 0);
    ck_assert_int_eq(at_fail(NULL, st, at_job_id(jobs[1]), at_job_token(jobs[1]), "x", 0), 0);
    at_job_free(jobs[0]);
    at_job_free(jobs[1]);

    int64_t len = at_metrics_prometheus(NULL, 0, st);
    ck_assert_int_gt(len, 0);
    char *text = malloc((size_t)len + 1);
    ck_assert_int_eq(at_metrics_prometheus(text, (size_t)len + 1, st), len);
    ck_assert_uint_eq(strlen(text), (size_t)len);
    const char *want[] = {
        "asynctask_jobs{queue=\"m.q\",state=\"ready\"} 1\n",
        "asynctask_jobs{queue=\"m.q\",state=\"scheduled\"} 1\n",
        "asynctask_jobs{queue=\"m.q\",state=\"succeeded\"} 1\n",
        "asynctask_jobs_enqueued_total{queue=\"m.q\"} 3\n",
        "asynctask_jobs_started_total{queue=\"m.q\"} 2\n",
        "asynctask_jobs_succeeded_total{queue=\"m.q\"} 1\n",
        "asynctask_jobs_failed_total{queue=\"m.q\"} 1\n",
        "asynctask_jobs_retried_total{queue=\"m.q\"} 1\n",
        "asynctask_jobs_dead_total{queue=\"m.q\"} 0\n",
        "asynctask_job_wait_seconds_count{queue=\"m.q\"} 2\n",
        "asynctask_job_run_seconds_count{queue=\"m.q\"} 2\n",
        "asynctask_job_run_seconds_bucket{queue=\"m.q\",le=\"+Inf\"} 2\n",
        "# TYPE asynctask_job_wait_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(text, want[i]) != NULL, "missing: %s", want[i]);

    /* A small buffer gets a truncated, terminated prefix and the full length. */
    char small[16];
    ck_assert_int_eq(at_metrics_prometheus(small, sizeof small, st), len);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    ck_assert_int_eq(at_metrics_prometheus(NULL, 5, st), AT_ERR_INVAL);

    /* promtool, when installed (Debian package prometheus), agrees. */
    if (system("command -v promtool >/dev/null 2>&1") == 0) {
        char path[] = "/tmp/at_metricsXXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, (size_t)len), len);
        close(fd);
        char cmd[256];
        snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
        int rc = system(cmd);
        unlink(path);
        ck_assert_msg(rc == 0, "promtool check metrics failed");
    }
    free(text);
    at_store_close(st);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("observe");
    TCase *tc = tcase_create("observe");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, log_levels_are_checked);
    tcase_add_test(tc, the_scheduler_logs_its_election);
    tcase_add_test(tc, worker_failures_are_logged_with_the_jobs_fields);
    tcase_add_test(tc, metrics_count_and_time_what_this_handle_did);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
