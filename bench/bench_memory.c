/*
 * bench_memory.c - figures for the memory backend through the public API
 * (suite `memory`), and the timing behaviour seen by a poller (suite
 * `wheel`: lateness and idle cost).
 *
 *   bench_memory [--quick] [--repeat N] memory|wheel
 *
 * Prints progress on stderr and `BENCH <name> <value> <unit>` on stdout;
 * throughput figures are medians of N runs (default 3).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <asynctask.h>

#include "bench_median.h"

static int g_quick;
static int g_repeat = 3;
static const char PAYLOAD[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_memory: %s: %s\n", what, at_strerror(rc));
    exit(1);
}

static at_store *open_store(void)
{
    at_store *s;
    int rc = at_store_open(&s, "memory:");
    if (rc)
        die("open", rc);
    return s;
}

static double run_enqueue(long n)
{
    at_store *s = open_store();
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        int rc = at_enqueue(NULL, s, "bench", PAYLOAD, sizeof PAYLOAD, NULL);
        if (rc)
            die("enqueue", rc);
    }
    double dt = now_s() - t0;
    at_store_close(s);
    return n / dt;
}

struct cycle_arg {
    at_store *s;
    long n;
};

static void *cycle_worker(void *p)
{
    struct cycle_arg *a = p;
    const char *q[] = {"default"};
    for (long i = 0; i < a->n; i++) {
        int rc = at_enqueue(NULL, a->s, "bench", PAYLOAD, sizeof PAYLOAD, NULL);
        if (rc)
            die("enqueue", rc);
        at_job *job;
        size_t got;
        /* With two threads the job this thread enqueued may be taken by the
         * other; either way each thread completes n cycles. */
        rc = at_poll(&job, &got, a->s, q, 1, 1, -1);
        if (rc || got != 1)
            die("poll", rc);
        rc = at_ack(a->s, at_job_id(job), at_job_token(job), NULL, 0);
        if (rc)
            die("ack", rc);
        at_job_free(job);
        /* Steady state: finished jobs do not pile up, as in a service whose
         * worker purges them (the default retention would keep them all). */
        if (i % 4096 == 4095 && (rc = at_purge(NULL, a->s, 0)))
            die("purge", rc);
    }
    return NULL;
}

static double run_cycle(long n, int threads)
{
    at_store *s = open_store();
    pthread_t th[8];
    struct cycle_arg a = {s, n / threads};
    double t0 = now_s();
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, cycle_worker, &a);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    double dt = now_s() - t0;
    at_store_close(s);
    return (double)a.n * threads / dt;
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

/* In a child process, so the parent's earlier runs do not blur the heap. */
static double run_bytes_per_job(long n)
{
    int fd[2];
    if (pipe(fd))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        at_store *s = open_store();
        at_opts *o;
        at_opts_new(&o);
        at_opts_set_int(o, AT_OPT_DELAY_MS, 3600 * 1000);
        /* one job first, so the store's fixed structures are not counted */
        at_enqueue(NULL, s, "bench", PAYLOAD, sizeof PAYLOAD, o);
        long before = rss_bytes();
        srand(1);
        for (long i = 0; i < n; i++) {
            at_opts_set_int(o, AT_OPT_DELAY_MS, 60000 + rand() % (3600 * 1000));
            int rc = at_enqueue(NULL, s, "bench", PAYLOAD, sizeof PAYLOAD, o);
            if (rc)
                die("enqueue", rc);
        }
        double per = (double)(rss_bytes() - before) / n - (double)sizeof PAYLOAD;
        ssize_t w = write(fd[1], &per, sizeof per);
        at_opts_free(o);
        at_store_close(s);
        _exit(w == sizeof per ? 0 : 1);
    }
    double per = -1;
    if (read(fd[0], &per, sizeof per) != sizeof per)
        per = -1;
    waitpid(pid, NULL, 0);
    close(fd[0]);
    close(fd[1]);
    return per;
}

static void suite_memory(void)
{
    long n = g_quick ? 100000 : 1000000;
    double v[16];
    int r = g_repeat;
    for (int i = 0; i < r; i++) {
        v[i] = run_enqueue(n);
        fprintf(stderr, "  enqueue run %d: %.0f jobs/s\n", i + 1, v[i]);
    }
    printf("BENCH memory.enqueue %.0f jobs/s\n", median(v, r));
    for (int i = 0; i < r; i++) {
        v[i] = run_cycle(n, 1);
        fprintf(stderr, "  cycle 1 thread run %d: %.0f jobs/s\n", i + 1, v[i]);
    }
    printf("BENCH memory.cycle_1t %.0f jobs/s\n", median(v, r));
    for (int i = 0; i < r; i++) {
        v[i] = run_cycle(n, 2);
        fprintf(stderr, "  cycle 2 threads run %d: %.0f jobs/s\n", i + 1, v[i]);
    }
    printf("BENCH memory.cycle_2t %.0f jobs/s\n", median(v, r));
    double per = run_bytes_per_job(1000000);
    fprintf(stderr, "  bytes per delayed job beyond its 64-byte payload: %.1f\n", per);
    printf("BENCH memory.bytes_per_job %.0f B\n", per);
}

/* ---------------------------------------------------------------- wheel */

static void suite_wheel(void)
{
    int n = g_quick ? 2000 : 10000;
    int span = g_quick ? 1000 : 3000;
    at_store *s = open_store();
    at_opts *o;
    at_opts_new(&o);
    srand(7);
    int64_t *run_at = malloc(sizeof *run_at * (size_t)n);
    char (*ids)[AT_ID_SIZE] = malloc(sizeof *ids * (size_t)n);
    for (int i = 0; i < n; i++) {
        at_opts_set_int(o, AT_OPT_DELAY_MS, 1 + rand() % span);
        int rc = at_enqueue(ids[i], s, "late", NULL, 0, o);
        if (rc)
            die("enqueue", rc);
    }
    at_opts_free(o);
    double *late = malloc(sizeof *late * (size_t)n);
    int got = 0;
    const char *q[] = {"default"};
    fprintf(stderr, "  lateness: %d jobs over %d ms\n", n, span);
    while (got < n) {
        at_job *jobs[256];
        size_t k;
        int rc = at_poll(jobs, &k, s, q, 1, 256, 10000);
        if (rc || k == 0)
            die("poll", rc);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double wall_ms = ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
        for (size_t i = 0; i < k; i++) {
            late[got++] = wall_ms - (double)at_job_time(jobs[i], AT_JOB_TIME_RUN_AT);
            at_ack(s, at_job_id(jobs[i]), at_job_token(jobs[i]), NULL, 0);
            at_job_free(jobs[i]);
        }
    }
    qsort(late, (size_t)n, sizeof *late, bench_cmp_double);
    printf("BENCH wheel.lateness_p50 %.3f ms\n", late[n / 2]);
    printf("BENCH wheel.lateness_p99 %.3f ms\n", late[(int)(n * 0.99)]);
    printf("BENCH wheel.lateness_max %.3f ms\n", late[n - 1]);
    if (late[0] < 0)
        fprintf(stderr, "  ERROR: a job was delivered %.3f ms before its run_at\n", -late[0]);
    free(late);
    free(run_at);
    free(ids);

    /* Idle: one poller blocked with nothing due; its process's CPU time. */
    int secs = g_quick ? 2 : 10;
    fprintf(stderr, "  idle: a poller blocked %d s with nothing due\n", secs);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    at_job *j;
    size_t k;
    const char *empty[] = {"empty"};
    int rc = at_poll(&j, &k, s, empty, 1, 1, secs * 1000);
    if (rc || k)
        die("idle poll", rc);
    getrusage(RUSAGE_SELF, &r1);
    double cpu = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1e3 + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e3 +
                 (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e3 + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e3;
    printf("BENCH wheel.idle_cpu_ms %.3f ms\n", cpu);
    at_store_close(s);
}

int main(int argc, char **argv)
{
    const char *suite = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            g_quick = 1;
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            g_repeat = atoi(argv[++i]);
        else
            suite = argv[i];
    }
    if (g_repeat < 1 || g_repeat > 15)
        g_repeat = 3;
    if (suite && strcmp(suite, "memory") == 0)
        suite_memory();
    else if (suite && strcmp(suite, "wheel") == 0)
        suite_wheel();
    else {
        fprintf(stderr, "usage: bench_memory [--quick] [--repeat N] memory|wheel\n");
        return 2;
    }
    return 0;
}
