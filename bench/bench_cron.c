/*
 * bench_cron.c - suite `cron` of bench/run: how late a scheduler creates the
 * job of each tick, per backend.
 *
 *   bench_cron [--quick] [--repeat N] NAME=URI ...
 *
 * For each store: a scheduler (this process) and one schedule "@every 100ms";
 * after TICKS ticks the jobs are read back and, for each, the lateness is
 * created_at - run_at (run_at is the tick, created_at the store's clock at
 * the enqueue: the Redis server's TIME, the host clock for SQLite and
 * memory).  Each run reports p50/p99/max; the figure printed is the median
 * over --repeat runs of the p99:
 *   BENCH cron.lateness_p99_NAME <ms> ms
 * (plus cron.lateness_p50_NAME and cron.lateness_max_NAME).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "asynctask.h"
#include "bench_median.h"

#define PERIOD_MS 100

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int die(const char *what, int rc, at_store *st)
{
    char msg[256] = "";
    if (st)
        at_store_errmsg(st, msg, sizeof msg, NULL);
    fprintf(stderr, "bench_cron: %s: %s %s %s\n", what, at_err_name(rc), msg, at_last_error());
    exit(1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One run: p50, p99 and max lateness in ms over `ticks` ticks. */
static void run(const char *uri, int run_no, int ticks, double out[3])
{
    at_store *st = NULL;
    int rc = at_store_open(&st, uri);
    if (rc)
        die("open", rc, NULL);
    char name[64], queue[80];
    snprintf(name, sizeof name, "bench%ld-%d", (long)getpid(), run_no);
    snprintf(queue, sizeof queue, "cron.%s", name);
    at_schedule *s = NULL;
    if ((rc = at_schedule_new(&s, name, "@every 100ms", NULL, "tick")) != 0)
        die("at_schedule_new", rc, NULL);
    at_opts *o = NULL;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, queue);
    at_schedule_set_opts(s, o);
    if ((rc = at_schedule_add(NULL, st, s)) != 0)
        die("at_schedule_add", rc, st);
    at_scheduler *sc = NULL;
    if ((rc = at_scheduler_start(&sc, st)) != 0)
        die("at_scheduler_start", rc, st);
    sleep_ms((int64_t)ticks * PERIOD_MS + PERIOD_MS / 2);
    at_schedule_pause(st, name);
    at_scheduler_stop(sc);

    int64_t *late = malloc(sizeof *late * (size_t)(ticks + 16));
    size_t n = 0, cap = (size_t)ticks + 16;
    char cursor[AT_CURSOR_SIZE] = "";
    do {
        at_job *page[200];
        size_t k = 0;
        char next[AT_CURSOR_SIZE];
        if ((rc = at_list(page, &k, next, st, queue, AT_STATE_ANY, cursor, 200)) != 0)
            die("at_list", rc, st);
        for (size_t i = 0; i < k; i++) {
            if (n < cap)
                late[n++] = at_job_time(page[i], AT_JOB_TIME_CREATED) - at_job_time(page[i], AT_JOB_TIME_RUN_AT);
            at_job_free(page[i]);
        }
        memcpy(cursor, next, sizeof cursor);
    } while (cursor[0]);
    /* The first tick can be a catch-up of the one due while the scheduler
     * was being elected: leave it out, it measures the election. */
    int64_t *v = n > 1 ? late + 1 : late;
    size_t m = n > 1 ? n - 1 : n;
    qsort(v, m, sizeof *v, cmp_i64);
    out[0] = m ? (double)v[m / 2] : 0;
    out[1] = m ? (double)v[(m * 99) / 100] : 0;
    out[2] = m ? (double)v[m - 1] : 0;
    fprintf(stderr, "  %s run %d: %zu jobs for %d ticks, lateness p50 %.0f p99 %.0f max %.0f ms\n", uri, run_no, n,
            ticks, out[0], out[1], out[2]);
    at_schedule_remove(st, name);
    free(late);
    at_opts_free(o);
    at_schedule_free(s);
    at_store_close(st);
}

int main(int argc, char **argv)
{
    int repeat = 3, ticks = 200;
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (strcmp(argv[first], "--quick") == 0)
            ticks = 50;
        else if (strcmp(argv[first], "--repeat") == 0 && first + 1 < argc)
            repeat = atoi(argv[++first]);
        else {
            fprintf(stderr, "usage: bench_cron [--quick] [--repeat N] NAME=URI ...\n");
            return 2;
        }
    }
    if (repeat < 1 || repeat > 99 || first == argc) {
        fprintf(stderr, "usage: bench_cron [--quick] [--repeat N] NAME=URI ...\n");
        return 2;
    }
    for (int a = first; a < argc; a++) {
        char *eq = strchr(argv[a], '=');
        if (!eq) {
            fprintf(stderr, "bench_cron: '%s' is not NAME=URI\n", argv[a]);
            return 2;
        }
        *eq = '\0';
        const char *name = argv[a], *uri = eq + 1;
        double p50[99], p99[99], mx[99];
        for (int r = 0; r < repeat; r++) {
            double out[3];
            run(uri, r, ticks, out);
            p50[r] = out[0], p99[r] = out[1], mx[r] = out[2];
        }
        printf("BENCH cron.lateness_p50_%s %.0f ms\n", name, median(p50, repeat));
        printf("BENCH cron.lateness_p99_%s %.0f ms\n", name, median(p99, repeat));
        printf("BENCH cron.lateness_max_%s %.0f ms\n", name, median(mx, repeat));
        fflush(stdout);
    }
    return 0;
}
