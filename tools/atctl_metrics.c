/*
 * atctl_metrics.c - `atctl metrics`: the store's state in the Prometheus
 * text exposition format 0.0.4, for a node_exporter textfile collector or a
 * scrape wrapper.
 *
 * Job counts per queue and state come from at_stats_get, which the stores
 * keep as jobs move (cheap).  The latency histograms cannot come from there:
 * the library keeps no lifetime latency counters, so they are computed from
 * the jobs still retained in the store (SUCCEEDED and DEAD, until purged),
 * keeping the most recently enqueued --sample of each queue and state.  They
 * are therefore a sample, not lifetime totals: they can go down between two
 * runs, so they are exposed as histograms of the sample, and every HELP text
 * says so.  Reading them costs one at_list pass over the retained finished
 * jobs of each queue.
 */
#include <stdlib.h>
#include <string.h>

#include "atctl.h"

#define PAGE 1000

/* Bucket bounds in seconds: from a fast handler to an hour-long backlog. */
static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,  1,    2.5,   5,
                                10,    30,   60,    120,  300, 600,  1800, 3600, 21600, 86400};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

/* The three durations of one finished job, in ms. */
typedef struct sample {
    int64_t wait, run, late;
} sample;

typedef struct hist {
    uint64_t bucket[NBOUNDS]; /* non-cumulative; summed when printed */
    uint64_t count;
    int64_t sum_ms;
} hist;

/* The sampled histograms of one queue and state. */
typedef struct series {
    const char *queue; /* owned by the at_stats */
    int32_t state;
    hist h[3]; /* wait, run, lateness */
} series;

static void observe(hist *h, int64_t ms)
{
    /* A negative difference can only come from clocks of different hosts
     * disagreeing; it counts as zero rather than bending the sum. */
    if (ms < 0)
        ms = 0;
    size_t i = 0;
    while (i < NBOUNDS && (double)ms / 1000.0 > bounds[i])
        i++;
    if (i < NBOUNDS)
        h->bucket[i]++;
    h->count++;
    h->sum_ms += ms;
}

/* Label values may hold any character; the format escapes three. */
static void print_label(const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            fputs("\\\\", stdout);
        else if (*v == '"')
            fputs("\\\"", stdout);
        else if (*v == '\n')
            fputs("\\n", stdout);
        else
            fputc(*v, stdout);
    }
}

static void print_ms_as_seconds(int64_t ms)
{
    printf("%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
}

/* Read the last `limit` finished jobs of (queue, state) into s. */
static int sample_series(series *s, at_store *store, size_t limit, at_job **jobs, sample *ring)
{
    char cursor[AT_CURSOR_SIZE] = "";
    size_t head = 0, filled = 0;
    int rc;
    for (;;) {
        size_t n = 0;
        if ((rc = at_list(jobs, &n, cursor, store, s->queue, s->state, cursor, PAGE)) < 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            int64_t run_at = at_job_time(jobs[i], AT_JOB_TIME_RUN_AT);
            int64_t started = at_job_time(jobs[i], AT_JOB_TIME_STARTED);
            int64_t finished = at_job_time(jobs[i], AT_JOB_TIME_FINISHED);
            /* Jobs that never ran (dead-lettered by a workflow parent) have
             * no wait or run time. */
            if (run_at != AT_TIME_NONE && started != AT_TIME_NONE && finished != AT_TIME_NONE) {
                ring[head] = (sample){started - run_at, finished - started, finished - run_at};
                head = (head + 1) % limit;
                if (filled < limit)
                    filled++;
            }
            at_job_free(jobs[i]);
        }
        if (cursor[0] == '\0' || n == 0)
            break;
    }
    for (size_t i = 0; i < filled; i++) {
        observe(&s->h[0], ring[i].wait);
        observe(&s->h[1], ring[i].run);
        observe(&s->h[2], ring[i].late);
    }
    return 0;
}

static void print_hist(const char *name, const char *help, const series *ss, size_t n, int which,
                       size_t limit)
{
    printf(
        "# HELP %s %s Sampled from at most %zu of the most recently enqueued jobs per queue and state still "
        "retained in the store (not lifetime totals).\n",
        name, help, limit);
    printf("# TYPE %s histogram\n", name);
    for (size_t i = 0; i < n; i++) {
        const hist *h = &ss[i].h[which];
        const char *state = at_state_name(ss[i].state);
        uint64_t cum = 0;
        for (size_t b = 0; b < NBOUNDS; b++) {
            cum += h->bucket[b];
            printf("%s_bucket{queue=\"", name);
            print_label(ss[i].queue);
            printf("\",state=\"%s\",le=\"%g\"} %llu\n", state, bounds[b], (unsigned long long)cum);
        }
        printf("%s_bucket{queue=\"", name);
        print_label(ss[i].queue);
        printf("\",state=\"%s\",le=\"+Inf\"} %llu\n", state, (unsigned long long)h->count);
        printf("%s_sum{queue=\"", name);
        print_label(ss[i].queue);
        printf("\",state=\"%s\"} ", state);
        print_ms_as_seconds(h->sum_ms);
        printf("\n%s_count{queue=\"", name);
        print_label(ss[i].queue);
        printf("\",state=\"%s\"} %llu\n", state, (unsigned long long)h->count);
    }
}

int atctl_cmd_metrics(atctl *a, int argc, char **argv)
{
    static const atctl_optdef defs[] = {{"sample", 1}, {NULL, 0}};
    atctl_args args;
    int rc = atctl_parse(&args, a, "metrics", argc, argv, defs);
    if (rc || (rc = atctl_want_pos(&args, "metrics", 0, "[--sample N]")))
        return rc;
    int64_t limit = 10000;
    const char *s = atctl_opt(&args, "sample");
    if (s && (rc = atctl_parse_int(&limit, s, "--sample", 1, 1000000)))
        return rc;
    if (a->json)
        return atctl_usage("metrics has no JSON form (it prints the Prometheus text format)");
    if ((rc = atctl_open(a)))
        return rc;

    at_stats *st = NULL;
    at_schedule **scheds = NULL;
    size_t nsched = 0;
    series *ss = NULL;
    at_job **jobs = NULL;
    sample *ring = NULL;
    int32_t *paused = NULL;
    const char *failed = NULL;
    if ((rc = at_stats_get(&st, a->store)) < 0) {
        failed = "at_stats_get";
        goto out;
    }
    size_t nq = at_stats_queue_count(st);
    if ((rc = at_schedule_list(&scheds, &nsched, a->store)) == AT_ERR_UNSUPPORTED)
        nsched = 0;
    else if (rc < 0) {
        failed = "at_schedule_list";
        goto out;
    }
    ss = calloc(nq * 2 + 1, sizeof *ss);
    paused = calloc(nq + 1, sizeof *paused);
    jobs = malloc(PAGE * sizeof *jobs);
    ring = malloc((size_t)limit * sizeof *ring);
    if (!ss || !paused || !jobs || !ring) {
        rc = AT_ERR_NOMEM;
        failed = "malloc";
        goto out;
    }
    /* Gather everything before printing a line, so a store error never
     * leaves a half-written exposition behind. */
    for (size_t i = 0; i < nq; i++) {
        int prc = at_queue_is_paused(&paused[i], a->store, at_stats_queue_name(st, i));
        if (prc == AT_ERR_UNSUPPORTED)
            paused[i] = -1;
        else if (prc < 0) {
            rc = prc;
            failed = "at_queue_is_paused";
            goto out;
        }
        for (int k = 0; k < 2; k++) {
            series *se = &ss[i * 2 + (size_t)k];
            se->queue = at_stats_queue_name(st, i);
            se->state = k == 0 ? AT_STATE_SUCCEEDED : AT_STATE_DEAD;
            if ((rc = sample_series(se, a->store, (size_t)limit, jobs, ring)) < 0) {
                failed = "at_list";
                goto out;
            }
        }
    }

    printf("# HELP asynctask_jobs Jobs in the store by queue and state, now (terminal jobs until purged).\n");
    printf("# TYPE asynctask_jobs gauge\n");
    for (size_t i = 0; i < nq; i++)
        for (int32_t state = AT_STATE_WAITING; state < AT_STATE_COUNT__; state++) {
            printf("asynctask_jobs{queue=\"");
            print_label(at_stats_queue_name(st, i));
            printf("\",state=\"%s\"} %llu\n", at_state_name(state),
                   (unsigned long long)at_stats_count(st, i, state));
        }
    printf("# HELP asynctask_queue_paused 1 if claims from the queue are paused (atctl pause).\n");
    printf("# TYPE asynctask_queue_paused gauge\n");
    for (size_t i = 0; i < nq; i++)
        if (paused[i] >= 0) {
            printf("asynctask_queue_paused{queue=\"");
            print_label(at_stats_queue_name(st, i));
            printf("\"} %d\n", paused[i] ? 1 : 0);
        }
    printf(
        "# HELP asynctask_queue_next_due_timestamp_seconds When the earliest scheduled job of the queue is "
        "due (Unix time; absent when none is scheduled).\n");
    printf("# TYPE asynctask_queue_next_due_timestamp_seconds gauge\n");
    for (size_t i = 0; i < nq; i++) {
        int64_t due = at_stats_next_due(st, i);
        if (due == AT_TIME_NONE)
            continue;
        printf("asynctask_queue_next_due_timestamp_seconds{queue=\"");
        print_label(at_stats_queue_name(st, i));
        printf("\"} ");
        print_ms_as_seconds(due);
        fputc('\n', stdout);
    }
    size_t npaused = 0;
    for (size_t i = 0; i < nsched; i++)
        npaused += at_schedule_paused(scheds[i]) != 0;
    printf("# HELP asynctask_schedules Cron schedules stored, by whether they are paused.\n");
    printf("# TYPE asynctask_schedules gauge\n");
    printf("asynctask_schedules{paused=\"false\"} %zu\n", nsched - npaused);
    printf("asynctask_schedules{paused=\"true\"} %zu\n", npaused);
    printf("# HELP asynctask_job_sample_limit Most recent finished jobs per queue and state that the "
           "asynctask_job_*_seconds histograms are computed from.\n");
    printf("# TYPE asynctask_job_sample_limit gauge\n");
    printf("asynctask_job_sample_limit %lld\n", (long long)limit);
    print_hist("asynctask_job_wait_seconds", "Time from due (run_at) to the start of the last attempt.", ss,
               nq * 2, 0, (size_t)limit);
    print_hist("asynctask_job_run_seconds", "Run time of the last attempt (finished - started).", ss, nq * 2,
               1, (size_t)limit);
    print_hist("asynctask_job_lateness_seconds", "Time from due (run_at) to finished.", ss, nq * 2, 2,
               (size_t)limit);
    rc = 0;
out:
    if (rc < 0)
        rc = atctl_fail(a, rc, failed);
    free(ring);
    free(jobs);
    free(paused);
    free(ss);
    at_schedule_list_free(scheds, nsched);
    at_stats_free(st);
    return rc;
}
