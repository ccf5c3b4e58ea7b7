/*
 * worker_kills.c - SIGKILLed worker processes lose no job (chaos test).
 *
 *   worker_kills URI [--jobs N] [--workers W] [--kills K] [--seconds S] [--seed X]
 *
 * URI is sqlite:DIR (the store is a new file in DIR) or redis://HOST:PORT
 * (a fresh key prefix).  Defaults are a bounded run: 2000 jobs, 4 workers,
 * 10 kills, a deadline of 300 s; the reliability issue's figure is
 * --jobs 20000 --workers 4 --kills 30 or more.  --seed repeats a run's
 * choices of when and whom to kill (printed with the result).
 *
 * The parent enqueues N jobs whose payload is a sequence number, with a
 * 500 ms lease so that a killed worker's jobs come back quickly, and starts
 * W worker processes (fresh images of this program, "--child").  Each runs
 * the worker runtime with a handler that appends "seq attempt token\n" to a
 * log file of its own process (O_APPEND, no fsync: a SIGKILL does not lose
 * what write() returned, only a power cut would), sleeps 0-5 ms and
 * returns AT_HANDLER_OK.  The parent SIGKILLs a random worker K times, at
 * random points of the run, restarting it each time, waits until every job
 * is SUCCEEDED or S seconds passed since the workers started, then stops the
 * workers by PID (SIGTERM, waitpid) and classifies every job with the
 * shared checker (history.h): the enqueue's answer (the batch returned 0:
 * ok; AT_ERR_CONN, AT_ERR_TIMEOUT, AT_ERR_IO: unknown; else failed), and as
 * deliveries the runs in the logs of a job that is SUCCEEDED in the store
 * (a job that is not SUCCEEDED counts as never delivered: lost, however
 * often it ran).  So:
 *   ok          SUCCEEDED in the store and run once by the logs
 *   duplicated  SUCCEEDED and run more than once by the logs: allowed by the
 *               at-least-once contract only when a lease expired, so the
 *               store must count more than one attempt and every run must
 *               carry a different token (checked here, beside history.h)
 *   lost        enqueued (the batch returned 0) but not SUCCEEDED
 *   unexpected  run by the logs but never enqueued
 * and, beside history.h:
 *   unlogged    SUCCEEDED in the store without any run in the logs (counted
 *               as one delivery, "found done in the store", and a failure)
 * It prints history.h's line and one line with the counts, and exits 0 only
 * when nothing was lost, unexpected or unlogged, every duplicate is
 * explained by an expired lease, and every job is SUCCEEDED.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "asynctask.h"
#include "history.h"
#include "util.h"

#define QUEUE "chaos"
#define TYPE "chaos.seq"
#define LEASE_MS 500
#define MAX_WORKERS 64

/* ------------------------------------------------------------- child */

static at_worker *g_w;
static int g_log_fd = -1;
static _Thread_local uint64_t t_rng;

static void on_term(int sig)
{
    (void)sig;
    at_worker_stop(g_w);
}

static int32_t handler(at_ctx *ctx, void *ud)
{
    (void)ud;
    const at_job *job = at_ctx_job(ctx);
    size_t len;
    const char *payload = at_job_payload(job, &len);
    char seq[32];
    if (len == 0 || len >= sizeof seq)
        return AT_HANDLER_PERMANENT; /* the checker reports it as lost */
    memcpy(seq, payload, len);
    seq[len] = '\0';
    char line[128];
    int n = snprintf(line, sizeof line, "%s %" PRIu32 " %" PRIu64 "\n", seq, at_job_attempts(job),
                     at_job_token(job));
    /* One write() per line: with O_APPEND the lines of the handler threads
     * never interleave, and a SIGKILL cannot cut a line the write returned. */
    if (write(g_log_fd, line, (size_t)n) != n)
        return AT_HANDLER_RETRY; /* not logged: must not be acked either */
    if (t_rng == 0)
        t_rng = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&t_rng ^ (uint64_t)mono_ms() ^ 1;
    sleep_ms((int64_t)(rng_next(&t_rng) % 6));
    return AT_HANDLER_OK;
}

static int child(const char *uri, const char *logdir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/worker-%ld.log", logdir, (long)getpid());
    g_log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (g_log_fd < 0)
        return 3;
    at_store *st;
    if (at_store_open(&st, uri) != 0) {
        fprintf(stderr, "worker %ld: open %s: %s\n", (long)getpid(), uri, at_last_error());
        return 4;
    }
    if (at_worker_new(&g_w, st) || at_worker_add_queue(g_w, QUEUE, 1, 0) ||
        at_worker_set_int(g_w, AT_WORKER_THREADS, 4) || at_worker_handle(g_w, TYPE, handler, NULL))
        return 5;
    struct sigaction sa = {.sa_handler = on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    if (at_worker_start(g_w) != 0)
        return 6;
    /* Blocked by the parent before exec (see spawn); a SIGTERM that came
     * meanwhile is delivered now and stops the worker. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL); /* threads are running: not sigprocmask */
    at_worker_wait(g_w, -1);
    at_worker_free(g_w);
    at_store_close(st);
    close(g_log_fd);
    return 0;
}

/* ------------------------------------------------------------- parent */

static const char *g_self;
static char g_uri[1024];
static char g_logdir[512];

static pid_t spawn(void)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        /* SIGTERM stays blocked across exec until the child has its handler
         * and its worker: a stop sent right after a restart must be a
         * graceful stop, not the default action that kills the process. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        /* A fresh image: the parent's store handle must not cross fork(). */
        execl(g_self, "worker_kills", "--child", g_uri, g_logdir, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* SIGTERM, then wait up to 20 s for the worker's graceful stop; a worker
 * that hangs is SIGKILLed so that the test itself never hangs.  Returns 1 if
 * it exited cleanly. */
static int stop_worker(pid_t pid)
{
    kill(pid, SIGTERM);
    int64_t end = mono_ms() + 20000;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 1;
            fprintf(stderr, "worker %ld stopped with status %d\n", (long)pid, status);
            return 0;
        }
        if (r < 0)
            return 0;
        if (mono_ms() > end) {
            fprintf(stderr, "worker %ld did not stop within 20 s of SIGTERM: SIGKILL\n", (long)pid);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return 0;
        }
        sleep_ms(10);
    }
}

static uint64_t succeeded_count(at_store *st)
{
    at_stats *s;
    uint64_t n = 0;
    if (at_stats_get(&s, st) != 0)
        return 0;
    for (size_t i = 0; i < at_stats_queue_count(s); i++)
        if (strcmp(at_stats_queue_name(s, i), QUEUE) == 0)
            n = at_stats_count(s, i, AT_STATE_SUCCEEDED);
    at_stats_free(s);
    return n;
}

struct run {
    uint64_t token;
    uint32_t attempt;
};

struct jobrec {
    char id[AT_ID_SIZE]; /* "" when the enqueue returned no id */
    struct run *runs;
    size_t nruns, cap;
};

static int add_run(struct jobrec *j, uint32_t attempt, uint64_t token)
{
    if (j->nruns == j->cap) {
        size_t cap = j->cap ? 2 * j->cap : 2;
        struct run *r = realloc(j->runs, cap * sizeof *r);
        if (!r)
            return -1;
        j->runs = r;
        j->cap = cap;
    }
    j->runs[j->nruns++] = (struct run){.token = token, .attempt = attempt};
    return 0;
}

/* Read every worker log into jobs[]; a line naming no enqueued job is a
 * delivery of a job nobody enqueued (history.h counts it as unexpected),
 * lines that do not parse as malformed. */
static int read_logs(struct jobrec *jobs, long njobs, struct hist *h, uint64_t *malformed, uint64_t *lines,
                     int *nfiles)
{
    DIR *d = opendir(g_logdir);
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "worker-", 7) != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", g_logdir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        (*nfiles)++;
        char buf[256];
        while (fgets(buf, sizeof buf, f)) {
            (*lines)++;
            long seq;
            uint32_t attempt;
            uint64_t token;
            char nl;
            if (sscanf(buf, "%ld %" SCNu32 " %" SCNu64 "%c", &seq, &attempt, &token, &nl) != 4 || nl != '\n') {
                (*malformed)++;
                continue;
            }
            if (seq < 0 || seq >= njobs || jobs[seq].id[0] == '\0') {
                hist_delivered(h, seq < 0 ? SIZE_MAX : (size_t)seq);
                continue;
            }
            if (add_run(&jobs[seq], attempt, token) != 0) {
                fclose(f);
                closedir(d);
                return -1;
            }
        }
        fclose(f);
    }
    closedir(d);
    return 0;
}

static void remove_logs(void)
{
    DIR *d = opendir(g_logdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, "worker-", 7) != 0)
                continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", g_logdir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(g_logdir);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s URI [--jobs N] [--workers W] [--kills K] [--seconds S] [--seed X]\n"
            "  URI: sqlite:DIR or redis://HOST:PORT\n",
            argv0);
    exit(2);
}

static long parse_long(const char *s, long lo, long hi, const char *argv0)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi)
        usage(argv0);
    return v;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child(argv[2], argv[3]);
    if (argc < 2)
        usage(argv[0]);
    long njobs = 2000, nworkers = 4, nkills = 10, seconds = 300;
    uint64_t seed = seed_default();
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc)
            usage(argv[0]);
        if (strcmp(argv[i], "--jobs") == 0)
            njobs = parse_long(argv[++i], 1, 10000000, argv[0]);
        else if (strcmp(argv[i], "--workers") == 0)
            nworkers = parse_long(argv[++i], 1, MAX_WORKERS, argv[0]);
        else if (strcmp(argv[i], "--kills") == 0)
            nkills = parse_long(argv[++i], 0, 1000000, argv[0]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = parse_long(argv[++i], 1, 86400, argv[0]);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = (uint64_t)parse_long(argv[++i], 1, LONG_MAX, argv[0]);
        else
            usage(argv[0]);
    }
    if (seed == 0)
        seed = 1;
    const char *base = argv[1];
    /* /proc/self/exe rather than argv[0]: the libtool wrapper or a relative
     * path must not matter to the children. */
    g_self = "/proc/self/exe";
    if (strncmp(base, "sqlite:", 7) == 0)
        snprintf(g_uri, sizeof g_uri, "%s/worker_kills-%ld.db", base, (long)getpid());
    else if (strncmp(base, "redis://", 8) == 0)
        /* A fresh prefix: earlier runs on the same server are not seen. */
        snprintf(g_uri, sizeof g_uri, "%s%cprefix=wk%ld-%lld", base, strchr(base, '?') ? '&' : '?',
                 (long)getpid(), (long long)time(NULL));
    else
        usage(argv[0]);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_logdir, sizeof g_logdir, "%s/at-chaos-wk.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_logdir)) {
        perror("mkdtemp");
        return 1;
    }
    int64_t t_start = mono_ms();

    at_store *st;
    if (at_store_open(&st, g_uri) != 0) {
        fprintf(stderr, "open %s: %s\n", g_uri, at_last_error());
        return 1;
    }
    struct jobrec *jobs = calloc((size_t)njobs, sizeof *jobs);
    if (!jobs)
        return 1;

    /* Enqueue in batches of 1000 (one transaction or script each) so that
     * the 20,000-job run does not spend its time on round trips. */
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, QUEUE);
    at_opts_set_int(o, AT_OPT_LEASE_MS, LEASE_MS);
    /* Expired leases use attempts; a job must never go DEAD from kills. */
    at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, 1000000);
    long enq_failed = 0;
    struct hist *h = hist_new((size_t)njobs);
    if (!h)
        return 1;
    for (long first = 0; first < njobs; first += 1000) {
        long last = first + 1000 < njobs ? first + 1000 : njobs;
        at_batch *b;
        at_batch_new(&b);
        for (long s = first; s < last; s++) {
            char p[32];
            int n = snprintf(p, sizeof p, "%ld", s);
            at_batch_add(b, TYPE, p, (size_t)n, o);
        }
        int rc = at_enqueue_batch(st, b);
        /* Only 0 acknowledges; a cut connection or a timeout may have
         * written the batch or not (atomic: all of it or none). */
        enum hist_enq outcome = rc == 0 ? HIST_ENQ_OK
                                : (rc == AT_ERR_CONN || rc == AT_ERR_TIMEOUT || rc == AT_ERR_IO) ? HIST_ENQ_UNKNOWN
                                                                                                : HIST_ENQ_FAILED;
        for (long s = first; s < last; s++)
            hist_enqueued(h, (size_t)s, outcome);
        if (rc != 0) {
            fprintf(stderr, "enqueue of jobs %ld..%ld: %s\n", first, last - 1, at_strerror(rc));
            enq_failed += last - first;
        } else {
            for (long s = first; s < last; s++)
                snprintf(jobs[s].id, sizeof jobs[s].id, "%s", at_batch_id(b, (size_t)(s - first)));
        }
        at_batch_free(b);
    }
    at_opts_free(o);
    int64_t t_enqueued = mono_ms();

    pid_t workers[MAX_WORKERS];
    for (long i = 0; i < nworkers; i++)
        workers[i] = spawn();
    int64_t t0 = mono_ms();

    /* When to kill: at K random points of the run's progress rather than at
     * K random clock times, so that every kill lands while jobs are in
     * flight however fast the backend is (Redis finishes 2000 jobs in well
     * under a second, SQLite takes seconds).  Each point is a count of
     * SUCCEEDED jobs drawn uniformly below 90% of N; the kill happens at the
     * first look (every 5-25 ms, at random) that finds the count past it. */
    uint64_t rng = seed;
    uint64_t total = (uint64_t)(njobs - enq_failed);
    int64_t *kill_at = calloc((size_t)nkills + 1, sizeof *kill_at);
    if (!kill_at)
        return 1;
    for (long k = 0; k < nkills; k++)
        kill_at[k] = (int64_t)(rng_next(&rng) % (total * 9 / 10 + 1));
    qsort(kill_at, (size_t)nkills, sizeof *kill_at, cmp_i64);

    int64_t deadline = t0 + seconds * 1000;
    long kills = 0, kills_busy = 0, crashes = 0;
    int done = 0;
    int64_t t_done = -1;
    while (mono_ms() < deadline) {
        uint64_t count = succeeded_count(st);
        while (kills < nkills && (uint64_t)kill_at[kills] <= count) {
            long victim = (long)(rng_next(&rng) % (uint64_t)nworkers);
            /* Only a kill while jobs are unfinished can hit a job in flight. */
            kills_busy += count < total;
            kill(workers[victim], SIGKILL);
            int status;
            waitpid(workers[victim], &status, 0);
            if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
                fprintf(stderr, "worker %ld had exited on its own (status %d) before its kill\n",
                        (long)workers[victim], status);
                crashes++;
            }
            workers[victim] = spawn();
            kills++;
        }
        /* A worker that dies by itself (not killed here) is a failure too:
         * it is reported and replaced so the run can finish. */
        for (long i = 0; i < nworkers; i++) {
            int status;
            if (waitpid(workers[i], &status, WNOHANG) == workers[i]) {
                fprintf(stderr, "worker %ld exited on its own (status %d)\n", (long)workers[i], status);
                crashes++;
                workers[i] = spawn();
            }
        }
        if (count == total) {
            done = 1;
            t_done = mono_ms() - t0;
            break;
        }
        sleep_ms(5 + (int64_t)(rng_next(&rng) % 21));
    }
    if (!done)
        fprintf(stderr, "deadline: %" PRIu64 " of %" PRIu64 " jobs SUCCEEDED after %ld s\n", succeeded_count(st),
                total, seconds);
    long unclean = 0;
    for (long i = 0; i < nworkers; i++)
        unclean += !stop_worker(workers[i]);

    /* ------------------------------------------------------ the checker */
    uint64_t malformed = 0, lines = 0;
    int nfiles = 0;
    if (read_logs(jobs, njobs, h, &malformed, &lines, &nfiles) != 0) {
        fprintf(stderr, "cannot read the worker logs in %s\n", g_logdir);
        return 1;
    }
    uint64_t duplicated = 0, dup_explained = 0, unlogged = 0, not_succeeded = 0, extra_runs = 0;
    for (long s = 0; s < njobs; s++) {
        struct jobrec *j = &jobs[s];
        if (j->id[0] == '\0')
            continue; /* never enqueued: only runs of it would matter (unexpected) */
        at_job *job;
        int rc = at_get(&job, st, j->id);
        int32_t state = rc == 0 ? at_job_state(job) : 0;
        uint32_t attempts = rc == 0 ? at_job_attempts(job) : 0;
        if (rc == 0)
            at_job_free(job);
        if (state != AT_STATE_SUCCEEDED) {
            /* No delivery recorded: history.h counts the job as lost. */
            if (not_succeeded++ < 5)
                fprintf(stderr, "lost: seq %ld id %s state %s (%s), %zu runs logged\n", s, j->id,
                        rc == 0 ? at_state_name(state) : "-", rc == 0 ? "found" : at_strerror(rc), j->nruns);
            continue;
        }
        if (j->nruns == 0) {
            hist_delivered(h, (size_t)s); /* found done in the store */
            if (unlogged++ < 5)
                fprintf(stderr, "unlogged: seq %ld id %s SUCCEEDED with no run in the logs\n", s, j->id);
            continue;
        }
        for (size_t r = 0; r < j->nruns; r++)
            hist_delivered(h, (size_t)s);
        if (j->nruns == 1)
            continue;
        duplicated++;
        extra_runs += j->nruns - 1;
        /* Each run of one job must hold its own claim: equal tokens would mean
         * one lease ran the handler twice, which no lease expiry explains. */
        int distinct = 1;
        for (size_t a = 0; a < j->nruns; a++)
            for (size_t b = a + 1; b < j->nruns; b++)
                if (j->runs[a].token == j->runs[b].token)
                    distinct = 0;
        if (attempts > 1 && distinct)
            dup_explained++;
        else
            fprintf(stderr, "unexplained duplicate: seq %ld id %s, %zu runs, attempts %" PRIu32 "%s\n", s, j->id,
                    j->nruns, attempts, distinct ? "" : ", a token repeated");
    }
    at_store_close(st);
    int64_t t_end = mono_ms();

    struct hist_counts hc;
    hist_check(h, &hc);
    char name[1100];
    snprintf(name, sizeof name, "worker_kills %s", base);
    int hist_bad = hist_report(name, &hc);
    /* history.h's duplicated and this loop's must agree: both count the
     * SUCCEEDED jobs run more than once. */
    int pass = hist_bad == 0 && hc.duplicated == duplicated && unlogged == 0 && not_succeeded == 0 &&
               malformed == 0 && dup_explained == duplicated && enq_failed == 0 && crashes == 0 && unclean == 0;
    printf("worker_kills %s: jobs=%ld ok=%" PRIu64 " duplicated=%" PRIu64 " (expired leases %" PRIu64 "/%" PRIu64
           ", extra runs %" PRIu64 ") lost=%" PRIu64 " unexpected=%" PRIu64 " unlogged=%" PRIu64
           " not_succeeded=%" PRIu64 " | kills=%ld (%ld before all done) workers=%ld crashes=%ld unclean_stops=%ld"
           " log_lines=%" PRIu64 " logs=%d malformed=%" PRIu64 " | seed=%" PRIu64
           " enqueue %lld ms, all succeeded after %lld ms, total %lld ms: %s\n",
           base, njobs, hc.ok, hc.duplicated, dup_explained, duplicated, extra_runs, hc.lost, hc.unexpected, unlogged,
           not_succeeded, kills, kills_busy, nworkers, crashes, unclean, lines, nfiles, malformed, seed,
           (long long)(t_enqueued - t_start), (long long)t_done, (long long)(t_end - t_start), pass ? "PASS" : "FAIL");
    if (pass)
        remove_logs();
    else
        fprintf(stderr, "worker logs kept in %s, store %s\n", g_logdir, g_uri);
    for (long s = 0; s < njobs; s++)
        free(jobs[s].runs);
    free(jobs);
    free(kill_at);
    hist_free(h);
    return pass ? 0 : 1;
}
