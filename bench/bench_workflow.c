/*
 * bench_workflow.c - suite `workflow` of bench/run: workflows end to end,
 * against the same number of independent jobs.
 *
 *   bench_workflow [--quick] [--repeat N] NAME=URI ...
 *
 * fanout10k: a root, 10,000 children of it and a merge waiting for all of
 *            them: from the start of the submit until the merge is acked,
 *            one worker loop (poll up to 64, at_ack_many).
 * chain1k:   1,000 steps each waiting for the one before: submit, then
 *            claim and ack one at a time until the last is acked.
 * The baselines run the same loops over as many independent jobs (one
 * batch enqueue): the ratio is the cost of the dependencies.
 *   BENCH workflow.fanout10k_NAME <s> s        (and _jobs_s, _overhead x)
 *   BENCH workflow.chain1k_NAME <s> s          (and _jobs_s, _overhead x)
 * Each figure is the median of --repeat runs; every run uses a new store
 * (a fresh file for sqlite:PATH URIs, a fresh prefix for redis://).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "asynctask.h"
#include "bench_median.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc, at_store *st)
{
    char msg[256] = "";
    if (st)
        at_store_errmsg(st, msg, sizeof msg, NULL);
    fprintf(stderr, "bench_workflow: %s: %s %s %s\n", what, at_err_name(rc), msg, at_last_error());
    exit(1);
}

static int g_run;

/* A fresh store for one run. */
static at_store *open_fresh(const char *uri)
{
    char u[1024];
    g_run++;
    if (strncmp(uri, "sqlite:", 7) == 0) {
        const char *q = strchr(uri, '?');
        int n = q ? (int)(q - uri) : (int)strlen(uri);
        snprintf(u, sizeof u, "%.*s.%ld.%d%s", n, uri, (long)getpid(), g_run, q ? q : "");
    } else if (strncmp(uri, "redis://", 8) == 0) {
        snprintf(u, sizeof u, "%s%sprefix=wfb%ld-%d", uri, strchr(uri, '?') ? "&" : "?", (long)getpid(), g_run);
    } else {
        snprintf(u, sizeof u, "%s", uri);
    }
    at_store *st;
    int rc = at_store_open(&st, u);
    if (rc)
        die("open", rc, NULL);
    return st;
}

/* Claim and ack until `total` jobs are done; returns when they are. */
static void drain(at_store *st, size_t total, size_t batch)
{
    const char *qs[1] = {"wf"};
    size_t done = 0;
    at_job *jobs[64];
    const char *ids[64];
    uint64_t tok[64];
    int32_t res[64];
    while (done < total) {
        size_t n = 0;
        int rc = at_poll(jobs, &n, st, qs, 1, batch, 5000);
        if (rc)
            die("at_poll", rc, st);
        if (n == 0)
            die("at_poll: nothing ready for 5 s", AT_ERR_TIMEOUT, st);
        for (size_t i = 0; i < n; i++) {
            ids[i] = at_job_id(jobs[i]);
            tok[i] = at_job_token(jobs[i]);
        }
        if ((rc = at_ack_many(res, st, n, ids, tok)) != 0)
            die("at_ack_many", rc, st);
        for (size_t i = 0; i < n; i++) {
            if (res[i])
                die("ack", res[i], st);
            at_job_free(jobs[i]);
        }
        done += n;
    }
}

static double fanout(const char *uri, int width, int independent)
{
    at_store *st = open_fresh(uri);
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "wf");
    double t0 = now_s();
    if (independent) {
        at_batch *b;
        at_batch_new(&b);
        for (int i = 0; i < width + 2; i++)
            at_batch_add(b, "step", NULL, 0, o);
        int rc = at_enqueue_batch(st, b);
        if (rc)
            die("at_enqueue_batch", rc, st);
        at_batch_free(b);
    } else {
        at_workflow *wf;
        at_workflow_new(&wf);
        at_workflow_add(wf, "root", "step", NULL, 0, o);
        at_workflow_add(wf, "merge", "step", NULL, 0, o);
        char name[32];
        for (int i = 0; i < width; i++) {
            snprintf(name, sizeof name, "c%d", i);
            at_workflow_add(wf, name, "step", NULL, 0, o);
            at_workflow_depend(wf, name, "root");
            at_workflow_depend(wf, "merge", name);
        }
        int rc = at_workflow_submit(NULL, st, wf);
        if (rc)
            die("at_workflow_submit", rc, st);
        at_workflow_free(wf);
    }
    drain(st, (size_t)width + 2, 64);
    double t = now_s() - t0;
    at_opts_free(o);
    at_store_close(st);
    return t;
}

static double chain(const char *uri, int steps, int independent)
{
    at_store *st = open_fresh(uri);
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "wf");
    double t0 = now_s();
    if (independent) {
        at_batch *b;
        at_batch_new(&b);
        for (int i = 0; i < steps; i++)
            at_batch_add(b, "step", NULL, 0, o);
        int rc = at_enqueue_batch(st, b);
        if (rc)
            die("at_enqueue_batch", rc, st);
        at_batch_free(b);
    } else {
        at_workflow *wf;
        at_workflow_new(&wf);
        char name[32], prev[32];
        for (int i = 0; i < steps; i++) {
            snprintf(name, sizeof name, "s%d", i);
            at_workflow_add(wf, name, "step", NULL, 0, o);
            if (i)
                at_workflow_depend(wf, name, prev);
            memcpy(prev, name, sizeof prev);
        }
        int rc = at_workflow_submit(NULL, st, wf);
        if (rc)
            die("at_workflow_submit", rc, st);
        at_workflow_free(wf);
    }
    drain(st, (size_t)steps, 1);
    double t = now_s() - t0;
    at_opts_free(o);
    at_store_close(st);
    return t;
}

int main(int argc, char **argv)
{
    int repeat = 3, width = 10000, steps = 1000, first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (strcmp(argv[first], "--quick") == 0)
            width = 2000, steps = 200;
        else if (strcmp(argv[first], "--repeat") == 0 && first + 1 < argc)
            repeat = atoi(argv[++first]);
        else
            break;
    }
    if (repeat < 1 || repeat > 99 || first >= argc) {
        fprintf(stderr, "usage: bench_workflow [--quick] [--repeat N] NAME=URI ...\n");
        return 2;
    }
    for (int a = first; a < argc; a++) {
        char *eq = strchr(argv[a], '=');
        if (!eq) {
            fprintf(stderr, "bench_workflow: '%s' is not NAME=URI\n", argv[a]);
            return 2;
        }
        *eq = '\0';
        const char *name = argv[a], *uri = eq + 1;
        double f[99], fb[99], c[99], cb[99];
        for (int r = 0; r < repeat; r++) {
            f[r] = fanout(uri, width, 0);
            fb[r] = fanout(uri, width, 1);
            c[r] = chain(uri, steps, 0);
            cb[r] = chain(uri, steps, 1);
            fprintf(stderr, "  %s run %d: fanout %.3f s (independent %.3f s), chain %.3f s (independent %.3f s)\n",
                    name, r, f[r], fb[r], c[r], cb[r]);
        }
        double fm = median(f, repeat), fbm = median(fb, repeat), cm = median(c, repeat), cbm = median(cb, repeat);
        const char *tag = width == 10000 ? "fanout10k" : "fanout2k_quick";
        const char *ctag = steps == 1000 ? "chain1k" : "chain200_quick";
        printf("BENCH workflow.%s_%s %.3f s\n", tag, name, fm);
        printf("BENCH workflow.%s_%s_jobs_s %.0f jobs/s\n", tag, name, (width + 2) / fm);
        printf("BENCH workflow.%s_%s_overhead %.2f x\n", tag, name, fm / fbm);
        printf("BENCH workflow.%s_%s %.3f s\n", ctag, name, cm);
        printf("BENCH workflow.%s_%s_jobs_s %.0f jobs/s\n", ctag, name, steps / cm);
        printf("BENCH workflow.%s_%s_overhead %.2f x\n", ctag, name, cm / cbm);
        fflush(stdout);
    }
    return 0;
}
