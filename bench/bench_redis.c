/*
 * bench_redis.c - throughput, latency and memory of the Redis backend.
 *
 *   bench_redis URI MODE [--quick] [--repeat N] [--suffix S]
 *
 * MODE is one of:
 *   enqueue    jobs/s, one at_enqueue per job             (redis.enqueue)
 *   batch      jobs/s, at_enqueue_batch of 100             (redis.enqueue_batch)
 *   cycle1     jobs/s of the full cycle (batched enqueue, poll of up to 100,
 *              one at_ack_many for what the poll claimed) with 1 worker
 *              process of 4 threads                        (redis.cycle_1p)
 *   cycle2     the same with 2 worker processes            (redis.cycle_2p)
 *   latency    p50 and p99 ms from at_enqueue in this process to at_poll
 *              returning in another, the poller asleep     (redis.latency_p50/_p99)
 *   lateness   p99 ms by which a delayed job is claimed after its due time,
 *              poller in another process                   (redis.lateness_p99)
 *   phases     server time per job of each transition alone: INFO
 *              commandstats (EVALSHA usec) and used_cpu around batched
 *              enqueues, then polls of 100 each followed by the acks of its
 *              jobs from 8 threads (phases-many: one at_ack_many per
 *              poll); one step at a time, so no client
 *              competes with the server for the CPU (INFO calls included)
 *              (a profile for ADR 0008, not a figure of bench/run)
 *   memory     bytes of Redis memory (INFO used_memory) per delayed job beyond
 *              its 64-byte payload, over 100,000 jobs      (redis.bytes_per_job)
 * Prints "BENCH <name><suffix> <value> <unit>", the median of --repeat runs.
 * bench/suite_redis.sh starts the servers and runs redis-benchmark beside it.
 * Every run uses a fresh key prefix; nothing is cleaned up (the suite's
 * servers are thrown away).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "asynctask.h"

static const char *g_base;
static int g_quick;
static int g_many; /* phases: acks by at_ack_many (phases-many) */
static unsigned g_run;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_us(int64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000L};
    nanosleep(&ts, NULL);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_redis: %s: %s (%s)\n", what, at_err_name(rc), at_last_error());
    exit(1);
}

/* A fresh store URI: a prefix no earlier run used. */
static void fresh_uri(char *out, size_t n)
{
    snprintf(out, n, "%s%cprefix=bench-%ld-%u-%ld", g_base, strchr(g_base, '?') ? '&' : '?', (long)getpid(),
             ++g_run, (long)time(NULL));
}

static at_store *open_store(const char *uri)
{
    at_store *s = NULL;
    int rc = at_store_open(&s, uri);
    if (rc)
        die("at_store_open", rc);
    return s;
}

static at_opts *queue_opts(const char *q)
{
    at_opts *o = NULL;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, q);
    return o;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------- enqueue */

static double run_enqueue(int batch)
{
    char uri[1024];
    fresh_uri(uri, sizeof uri);
    at_store *s = open_store(uri);
    at_opts *o = queue_opts("q");
    long n = g_quick ? 20000 : 100000;
    char payload[64] = {0};
    at_batch *b = NULL;
    at_batch_new(&b);
    int64_t t0 = now_us();
    for (long i = 0; i < n; i += batch) {
        int rc;
        if (batch == 1) {
            rc = at_enqueue(NULL, s, "t", payload, sizeof payload, o);
        } else {
            at_batch_clear(b);
            for (int k = 0; k < batch; k++)
                at_batch_add(b, "t", payload, sizeof payload, o);
            rc = at_enqueue_batch(s, b);
        }
        if (rc)
            die("enqueue", rc);
    }
    double rate = n / ((now_us() - t0) / 1e6);
    at_batch_free(b);
    at_opts_free(o);
    at_store_close(s);
    return rate;
}

/* --------------------------------------------------------------- cycle */

enum { WORKER_THREADS = 4, POLL_MAX = 100, BATCH = 100 };

struct worker {
    at_store *s;
};

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    const char *q[1] = {"q"};
    at_job *jobs[POLL_MAX];
    for (;;) {
        size_t n = 0;
        if (at_poll(jobs, &n, w->s, q, 1, POLL_MAX, 1000) != 0) {
            sleep_us(1000);
            continue;
        }
        if (n == 0)
            continue;
        /* The batch a poll claimed is finished in one script call. */
        const char *ids[POLL_MAX];
        uint64_t tokens[POLL_MAX];
        int32_t res[POLL_MAX];
        for (size_t i = 0; i < n; i++) {
            ids[i] = at_job_id(jobs[i]);
            tokens[i] = at_job_token(jobs[i]);
        }
        int rc = at_ack_many(res, w->s, n, ids, tokens);
        for (size_t i = 0; i < n; i++) {
            if (rc == 0 && res[i] != 0)
                die("ack of one job", res[i]);
            at_job_free(jobs[i]);
        }
    }
    return NULL;
}

/* A worker process: opens its own store, polls and acks until killed. */
static void worker_main(const char *uri)
{
    struct worker w = {open_store(uri)};
    pthread_t t[WORKER_THREADS];
    for (int i = 0; i < WORKER_THREADS; i++)
        pthread_create(&t[i], NULL, worker_thread, &w);
    pthread_join(t[0], NULL);
    _exit(0);
}

static uint64_t succeeded(at_store *s)
{
    at_stats *st = NULL;
    if (at_stats_get(&st, s) != 0)
        return 0;
    uint64_t n = 0;
    for (size_t i = 0; i < at_stats_queue_count(st); i++)
        if (strcmp(at_stats_queue_name(st, i), "q") == 0)
            n = at_stats_count(st, i, AT_STATE_SUCCEEDED);
    at_stats_free(st);
    return n;
}

static double run_cycle(int procs)
{
    char uri[1024];
    fresh_uri(uri, sizeof uri);
    pid_t pids[8];
    for (int i = 0; i < procs; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            worker_main(uri);
    }
    at_store *s = open_store(uri);
    at_opts *o = queue_opts("q");
    long n = g_quick ? 20000 : 100000;
    char payload[64] = {0};
    at_batch *b = NULL;
    at_batch_new(&b);
    sleep_us(200000); /* workers connected and blocked */
    int64_t t0 = now_us();
    for (long i = 0; i < n; i += BATCH) {
        at_batch_clear(b);
        for (int k = 0; k < BATCH; k++)
            at_batch_add(b, "t", payload, sizeof payload, o);
        int rc = at_enqueue_batch(s, b);
        if (rc)
            die("enqueue", rc);
    }
    while (succeeded(s) < (uint64_t)n)
        sleep_us(2000);
    double rate = n / ((now_us() - t0) / 1e6);
    for (int i = 0; i < procs; i++) {
        kill(pids[i], SIGKILL);
        waitpid(pids[i], NULL, 0);
    }
    at_batch_free(b);
    at_opts_free(o);
    at_store_close(s);
    return rate;
}

/* ------------------------------------------------- latency and lateness */

/* A poller process: claims `n` jobs, up to 64 per poll as a worker would
 * (claiming one at a time would measure the poller's own backlog when jobs
 * fall due faster than one round trip, not how late they were released),
 * and writes how late each arrived (us after the time in its payload). */
static void poller_main(const char *uri, int n, int fd)
{
    at_store *s = open_store(uri);
    const char *q[1] = {"q"};
    int done = 0;
    while (done < n) {
        at_job *j[64];
        size_t got = 0;
        if (at_poll(j, &got, s, q, 1, 64, 10000) != 0 || got == 0)
            _exit(3);
        int64_t now = now_us();
        const char *ids[64];
        uint64_t tokens[64];
        int32_t res[64];
        for (size_t i = 0; i < got; i++) {
            int64_t due;
            memcpy(&due, at_job_payload(j[i], NULL), sizeof due);
            int64_t late = now - due;
            if (write(fd, &late, sizeof late) != sizeof late)
                _exit(4);
            ids[i] = at_job_id(j[i]);
            tokens[i] = at_job_token(j[i]);
        }
        at_ack_many(res, s, got, ids, tokens);
        for (size_t i = 0; i < got; i++)
            at_job_free(j[i]);
        done += (int)got;
    }
    _exit(0);
}

/* p50 and p99 (ms) of enqueue-to-poll, or of lateness when `delayed`. */
static void run_latency(bool delayed, double *p50, double *p99)
{
    char uri[1024];
    fresh_uri(uri, sizeof uri);
    int n = g_quick ? 200 : 1000;
    int fd[2];
    if (pipe(fd) != 0)
        exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        poller_main(uri, n, fd[1]);
    }
    close(fd[1]);
    at_store *s = open_store(uri);
    at_opts *o = queue_opts("q");
    int64_t *lat = calloc((size_t)n, sizeof *lat);
    sleep_us(200000);
    if (!delayed) {
        for (int i = 0; i < n; i++) {
            int64_t t = now_us();
            int rc = at_enqueue(NULL, s, "t", &t, sizeof t, o);
            if (rc)
                die("enqueue", rc);
            if (read(fd[0], &lat[i], sizeof lat[i]) != sizeof lat[i])
                exit(1);
            sleep_us(1000 + (i % 7) * 300); /* the poller is asleep again */
        }
    } else {
        /* Delays of 50..1050 ms, enqueued at once: the poller sleeps until
         * each one is due (the timing wheel's job, not Redis's). */
        at_batch *b = NULL;
        at_batch_new(&b);
        int64_t t = now_us();
        for (int i = 0; i < n; i++) {
            int64_t delay_ms = 50 + (int64_t)i * 1000 / n;
            int64_t due = t + delay_ms * 1000;
            at_opts_set_int(o, AT_OPT_DELAY_MS, delay_ms);
            at_batch_add(b, "t", &due, sizeof due, o);
        }
        int rc = at_enqueue_batch(s, b);
        if (rc)
            die("enqueue", rc);
        at_batch_free(b);
        for (int i = 0; i < n; i++)
            if (read(fd[0], &lat[i], sizeof lat[i]) != sizeof lat[i])
                exit(1);
    }
    waitpid(pid, NULL, 0);
    close(fd[0]);
    qsort(lat, (size_t)n, sizeof *lat, cmp_i64);
    *p50 = lat[n / 2] / 1000.0;
    *p99 = lat[n * 99 / 100] / 1000.0;
    free(lat);
    at_opts_free(o);
    at_store_close(s);
}

/* --------------------------------------------------------------- memory */

static long long used_memory(redisContext *c)
{
    redisReply *r = redisCommand(c, "INFO memory");
    const char *p = r && r->str ? strstr(r->str, "used_memory:") : NULL;
    long long v = p ? atoll(p + 12) : 0;
    if (r)
        freeReplyObject(r);
    return v;
}

static double run_memory(void)
{
    char uri[1024], host[256] = "127.0.0.1";
    int port = 6379;
    const char *h = strstr(g_base, "://");
    const char *at = h ? strchr(h, '@') : NULL;
    if (h && sscanf(at ? at + 1 : h + 3, "%255[^:]:%d", host, &port) < 1)
        return 0;
    redisContext *c = redisConnect(host, port);
    if (!c || c->err)
        return 0;
    fresh_uri(uri, sizeof uri);
    at_store *s = open_store(uri);
    at_opts *o = queue_opts("q");
    at_opts_set_int(o, AT_OPT_DELAY_MS, 3600000);
    char payload[64];
    memset(payload, 'p', sizeof payload);
    long n = 100000;
    /* The queue's own keys and the class exist before the measurement. */
    at_enqueue(NULL, s, "t", payload, sizeof payload, o);
    long long before = used_memory(c);
    at_batch *b = NULL;
    at_batch_new(&b);
    for (long i = 0; i < n; i += 1000) {
        at_batch_clear(b);
        for (int k = 0; k < 1000; k++)
            at_batch_add(b, "t", payload, sizeof payload, o);
        int rc = at_enqueue_batch(s, b);
        if (rc)
            die("enqueue", rc);
    }
    long long after = used_memory(c);
    double per = (double)(after - before) / n;
    fprintf(stderr, "memory: %.1f B per delayed job in all, %.1f beyond its 64-byte payload\n", per,
            per - (double)sizeof payload);
    at_batch_free(b);
    at_opts_free(o);
    at_store_close(s);
    redisFree(c);
    return per - (double)sizeof payload;
}

/* --------------------------------------------------------------- phases */

/* EVALSHA usec and calls, and the server's CPU seconds, so far. */
static void server_cost(redisContext *c, double *usec, double *calls, double *cpu)
{
    redisReply *r = redisCommand(c, "INFO commandstats");
    const char *p = r && r->str ? strstr(r->str, "cmdstat_evalsha:calls=") : NULL;
    *calls = p ? atof(p + 22) : 0;
    p = p ? strstr(p, "usec=") : NULL;
    *usec = p ? atof(p + 5) : 0;
    freeReplyObject(r);
    r = redisCommand(c, "INFO cpu");
    p = r && r->str ? strstr(r->str, "used_cpu_user:") : NULL;
    const char *q = r && r->str ? strstr(r->str, "used_cpu_sys:") : NULL;
    *cpu = (p ? atof(p + 14) : 0) + (q ? atof(q + 13) : 0);
    freeReplyObject(r);
}

struct acker {
    at_store *s;
    at_job **jobs;
    long from, to;
};

static void *ack_range(void *arg)
{
    struct acker *a = arg;
    for (long i = a->from; i < a->to; i++)
        if (at_ack(a->s, at_job_id(a->jobs[i]), at_job_token(a->jobs[i]), NULL, 0) != 0)
            die("ack", AT_ERR_INTERNAL);
    return NULL;
}

static void run_phases(void)
{
    char uri[1024];
    fresh_uri(uri, sizeof uri);
    const char *hp = strstr(g_base, "://");
    char host[256] = "127.0.0.1";
    int port = 6379;
    if (hp)
        sscanf(hp + 3, "%255[^:/?]:%d", host, &port);
    redisContext *c = redisConnect(host, port);
    if (!c || c->err)
        die("redis connection", AT_ERR_CONN);
    at_store *s = open_store(uri);
    at_opts *o = queue_opts("q");
    enum { N = 20000, ACKERS = 8 };
    char payload[64] = {0};
    at_job **jobs = malloc(N * sizeof *jobs);
    /* Per phase: EVALSHA usec, calls, server CPU s. */
    double acc[3][3] = {{0}};
    double u0, c0, p0, u1, c1, p1;
    const char *names[3] = {"enqueue (batches of 100)", "claim (polls of up to 100)",
                            g_many ? "ack (at_ack_many per poll)" : "ack (at_ack, 8 threads)"};
    server_cost(c, &u0, &c0, &p0);
    at_batch *b = NULL;
    at_batch_new(&b);
    for (long i = 0; i < N; i += BATCH) {
        at_batch_clear(b);
        for (int k = 0; k < BATCH; k++)
            at_batch_add(b, "t", payload, sizeof payload, o);
        int rc = at_enqueue_batch(s, b);
        if (rc)
            die("enqueue", rc);
    }
    at_batch_free(b);
    server_cost(c, &u1, &c1, &p1);
    acc[0][0] = u1 - u0, acc[0][1] = c1 - c0, acc[0][2] = p1 - p0;
    /* Claims and acks alternate, as workers do (acks soon after their
     * claim: the id cache knows their queue). */
    const char *q[1] = {"q"};
    for (long got = 0; got < N;) {
        size_t n = 0;
        server_cost(c, &u0, &c0, &p0);
        int rc = at_poll(jobs + got, &n, s, q, 1, POLL_MAX, 1000);
        if (rc)
            die("poll", rc);
        server_cost(c, &u1, &c1, &p1);
        acc[1][0] += u1 - u0, acc[1][1] += c1 - c0, acc[1][2] += p1 - p0;
        if (g_many) {
            const char *ids[POLL_MAX];
            uint64_t tokens[POLL_MAX];
            int32_t res[POLL_MAX];
            for (size_t i = 0; i < n; i++) {
                ids[i] = at_job_id(jobs[got + (long)i]);
                tokens[i] = at_job_token(jobs[got + (long)i]);
            }
            if ((rc = at_ack_many(res, s, n, ids, tokens)) != 0)
                die("ack_many", rc);
        } else {
            pthread_t t[ACKERS];
            struct acker a[ACKERS];
            for (int i = 0; i < ACKERS; i++) {
                a[i] = (struct acker){s, jobs, got + (long)n * i / ACKERS, got + (long)n * (i + 1) / ACKERS};
                pthread_create(&t[i], NULL, ack_range, &a[i]);
            }
            for (int i = 0; i < ACKERS; i++)
                pthread_join(t[i], NULL);
        }
        server_cost(c, &u0, &c0, &p0);
        acc[2][0] += u0 - u1, acc[2][1] += c0 - c1, acc[2][2] += p0 - p1;
        got += (long)n;
    }
    for (int phase = 0; phase < 3; phase++)
        printf("PHASE %-28s EVALSHA calls %6.0f, %7.2f us per call, %5.2f us per job; server CPU %5.2f us per "
               "job\n",
               names[phase], acc[phase][1], acc[phase][0] / (acc[phase][1] > 0 ? acc[phase][1] : 1),
               acc[phase][0] / N, acc[phase][2] * 1e6 / N);
    for (long i = 0; i < N; i++)
        at_job_free(jobs[i]);
    free(jobs);
    at_opts_free(o);
    at_store_close(s);
    redisFree(c);
}

/* ----------------------------------------------------------------- main */

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_redis URI MODE [--quick] [--repeat N] [--suffix S]\n");
        return 2;
    }
    g_base = argv[1];
    const char *mode = argv[2], *suffix = "";
    int repeat = 1;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            g_quick = 1;
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (strcmp(argv[i], "--suffix") == 0 && i + 1 < argc)
            suffix = argv[++i];
    }
    if (repeat < 1 || repeat > 99)
        repeat = 1;
    setenv("AT_REDIS_WARN", "0", 0);
    if (strcmp(mode, "phases") == 0 || strcmp(mode, "phases-many") == 0) {
        g_many = strcmp(mode, "phases-many") == 0;
        run_phases();
        return 0;
    }
    double v[99], w[99];
    for (int r = 0; r < repeat; r++) {
        if (strcmp(mode, "enqueue") == 0)
            v[r] = run_enqueue(1);
        else if (strcmp(mode, "batch") == 0)
            v[r] = run_enqueue(BATCH);
        else if (strcmp(mode, "cycle1") == 0)
            v[r] = run_cycle(1);
        else if (strcmp(mode, "cycle2") == 0)
            v[r] = run_cycle(2);
        else if (strcmp(mode, "latency") == 0)
            run_latency(false, &v[r], &w[r]);
        else if (strcmp(mode, "lateness") == 0)
            run_latency(true, &w[r], &v[r]);
        else if (strcmp(mode, "memory") == 0)
            v[r] = run_memory();
        else {
            fprintf(stderr, "bench_redis: unknown mode %s\n", mode);
            return 2;
        }
    }
    if (strcmp(mode, "enqueue") == 0)
        printf("BENCH redis.enqueue%s %.0f jobs/s\n", suffix, median(v, repeat));
    else if (strcmp(mode, "batch") == 0)
        printf("BENCH redis.enqueue_batch%s %.0f jobs/s\n", suffix, median(v, repeat));
    else if (strcmp(mode, "cycle1") == 0)
        printf("BENCH redis.cycle_1p%s %.0f jobs/s\n", suffix, median(v, repeat));
    else if (strcmp(mode, "cycle2") == 0)
        printf("BENCH redis.cycle_2p%s %.0f jobs/s\n", suffix, median(v, repeat));
    else if (strcmp(mode, "latency") == 0) {
        printf("BENCH redis.latency_p50%s %.2f ms\n", suffix, median(v, repeat));
        printf("BENCH redis.latency_p99%s %.2f ms\n", suffix, median(w, repeat));
    } else if (strcmp(mode, "lateness") == 0)
        printf("BENCH redis.lateness_p99%s %.2f ms\n", suffix, median(v, repeat));
    else
        printf("BENCH redis.bytes_per_job%s %.0f B\n", suffix, median(v, repeat));
    fflush(stdout);
    return 0;
}
