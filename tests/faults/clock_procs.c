/*
 * clock_procs.c - processes whose wall clock is an hour off never run a job
 * before its run_at by the clock that judges the store (ADR/0005).
 *
 *   clock_procs memory:               the timing wheel across a real jump
 *   clock_procs sqlite:DIR            worker processes shifted +1h and -1h
 *   clock_procs redis://HOST:PORT     the same against a Redis server
 *
 * Shifted processes run under libfaketime (Debian package faketime), loaded
 * with LD_PRELOAD into the child only, after exec; this parent keeps the
 * real clock.  The library's path comes in $AT_FAKETIME_LIB (set by the
 * tests/faults/clock_faketime_*.sh scripts).  The child's environment:
 *   FAKETIME=+3600 / -3600          wall clock an hour ahead / behind
 *   FAKETIME_DONT_FAKE_MONOTONIC=1  CLOCK_MONOTONIC stays real, as on a
 *                                   host whose wall clock is simply wrong
 *   FAKETIME_FORCE_MONOTONIC_FIX=0  libfaketime 0.9.10 turns this fix on by
 *                                   itself on glibc >= 2.34, and with it every
 *                                   pthread_cond_timedwait on a CLOCK_MONOTONIC
 *                                   condition variable times out at once
 *                                   (fixed upstream in wolfcw/libfaketime#503):
 *                                   every sleeping poller would spin.  The
 *                                   claim counts below catch that.
 *   FAKETIME_START_AFTER_SECONDS=1  (memory case only) real time for the
 *                                   first second, then the shift: a wall-clock
 *                                   step while a timer is armed.
 * Under AddressSanitizer its runtime must come first in the preload list, so
 * the libasan this process has loaded is put before libfaketime.
 *
 * The real time inside a shifted child is its CLOCK_MONOTONIC (not faked)
 * plus the parent's real (CLOCK_REALTIME - CLOCK_MONOTONIC), given on the
 * command line; the child reports its faked minus real time, which must be
 * the shift, so a preload that silently did nothing fails the test.
 *
 * Which clock judges: Redis decides due-ness by the server's TIME (here
 * the real clock), so a worker shifted either way must run each job at or
 * after run_at in real time, and promptly.  SQLite decides by the clock of
 * the process calling into the store: a worker an hour behind must not run
 * a job that is due in 1.5..3 s (by its clock it is due in an hour), and a
 * worker an hour ahead runs it at once, which is never early by its own
 * clock but 1.5..3 s early in real time; the figures are printed.
 *
 * Every claim a child makes goes through a counting wrapper of its backend
 * (scheme "cnt+BACKEND"), and children report their CPU time: a poller that
 * spins shows up in both.  Children are fresh images of this program, stopped
 * by PID.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "../chaos/util.h"

#define HOUR INT64_C(3600000)
#define NDELAYED 3
static const int64_t delays[NDELAYED] = {1500, 2250, 3000};

extern char **environ;

static int64_t cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* ------------------------------------------------------ counting wrapper */

/* "cnt+memory:", "cnt+sqlite:PATH", "cnt+redis://...": the named backend,
 * with every claim counted. */
static const at_store_vtable *g_base;
static at_store_vtable g_cnt;
static char g_cnt_scheme[40];
static atomic_ulong g_claims;

static int cnt_open(at_backend **out, at_store *store, const char *uri)
{
    return g_base->open(out, store, uri + 4);
}

static int cnt_claim(at_job **jobs, size_t *n_out, int64_t *wake, at_backend *be, const char *const *queues,
                     size_t nq, size_t max)
{
    atomic_fetch_add(&g_claims, 1);
    return g_base->claim(jobs, n_out, wake, be, queues, nq, max);
}

/* Register the wrapper for the backend of `uri`; 0 or -1. */
static int cnt_register(const char *uri)
{
    size_t n = strcspn(uri, ":");
    if (!(g_base = at__registry_find(uri, n)) || n + 4 >= sizeof g_cnt_scheme)
        return -1;
    snprintf(g_cnt_scheme, sizeof g_cnt_scheme, "cnt+%.*s", (int)n, uri);
    g_cnt = *g_base;
    g_cnt.scheme = g_cnt_scheme;
    g_cnt.open = cnt_open;
    g_cnt.claim = cnt_claim;
    return at_store_register(&g_cnt) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ children */

static int64_t g_realoff; /* real CLOCK_REALTIME - CLOCK_MONOTONIC, from the parent */
static int g_log = -1;

static int64_t real_ms(void)
{
    return mono_ms() + g_realoff;
}

/* One line per write(2) on an O_APPEND file: lines never interleave. */
static void logf_(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static void logf_(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof line && write(g_log, line, (size_t)n) != n)
        _exit(90);
}

static at_worker *g_w;

static void on_term(int sig)
{
    (void)sig;
    at_worker_stop(g_w);
}

static int32_t h_record(at_ctx *c, void *ud)
{
    (void)ud;
    /* Both clocks, read together: the real one and the one this process
     * believes in (faked). */
    int64_t real = real_ms(), own = wall_ms();
    logf_("run %s %lld %lld\n", at_job_id(at_ctx_job(c)), (long long)real, (long long)own);
    /* Long enough for the worker's keeper to look at the job's timeout at
     * least once (it wakes every second): a keeper that compares the
     * timeout with a clock the deadline was not computed on kills it. */
    int64_t end = mono_ms() + 1200;
    while (mono_ms() < end && !at_ctx_cancelled(c))
        sleep_ms(20);
    return AT_HANDLER_OK;
}

/* --worker URI QUEUE: a worker process (2 threads) on QUEUE until SIGTERM. */
static int child_worker(const char *uri, const char *queue)
{
    logf_("shift %lld\n", (long long)(wall_ms() - real_ms()));
    char cu[700];
    snprintf(cu, sizeof cu, "cnt+%s", uri);
    at_store *st;
    if (cnt_register(uri) || at_store_open(&st, cu) != 0)
        return 3;
    if (at_worker_new(&g_w, st) || at_worker_add_queue(g_w, queue, 1, 0) ||
        at_worker_set_int(g_w, AT_WORKER_THREADS, 2) || at_worker_set_int(g_w, AT_WORKER_GRACE_MS, 200) ||
        at_worker_set_int(g_w, AT_WORKER_TIMEOUT_MS, 10000) ||
        at_worker_handle(g_w, "*", h_record, NULL))
        return 4;
    struct sigaction sa = {.sa_handler = on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    int64_t t0 = mono_ms();
    if (at_worker_start(g_w) != 0)
        return 6;
    at_worker_wait(g_w, -1);
    at_worker_free(g_w);
    at_store_close(st);
    logf_("end %lu %lld %lld\n", (unsigned long)atomic_load(&g_claims), (long long)cpu_ms(),
          (long long)(mono_ms() - t0));
    return 0;
}

/* --wheel: the memory backend's wheel on the real (faked) clock of a
 * process whose wall clock steps by the shift one second after start. */
static int child_wheel(void)
{
    at_store *st;
    if (cnt_register("memory:") || at_store_open(&st, "cnt+memory:") != 0)
        return 3;
    at_opts *o;
    char id[AT_ID_SIZE];
    if (at_opts_new(&o) || at_opts_set_int(o, AT_OPT_DELAY_MS, 3000) || at_enqueue(id, st, "t", NULL, 0, o))
        return 4;
    at_opts_free(o);
    int64_t t0 = mono_ms(), shift0 = wall_ms() - real_ms();
    at_job *j;
    if (at_get(&j, st, id))
        return 5;
    int64_t run_at = at_job_time(j, AT_JOB_TIME_RUN_AT);
    at_job_free(j);
    /* One poll for 4.5 s of real time: past the monotonic deadline armed
     * at enqueue (3 s) by a margin. */
    const char *q = "default";
    size_t n = 0;
    if (at_poll(&j, &n, st, &q, 1, 1, 4500))
        return 6;
    int64_t claimed = n ? mono_ms() - t0 : -1, own_at_claim = wall_ms();
    int64_t started = n ? at_job_time(j, AT_JOB_TIME_STARTED) : -1;
    if (n)
        at_job_free(j);
    logf_("wheel %lld %lld %lld %lld %lld %lld %lu %lld\n", (long long)shift0,
          (long long)(wall_ms() - real_ms()), (long long)claimed, (long long)run_at,
          (long long)started, (long long)own_at_claim, (unsigned long)atomic_load(&g_claims),
          (long long)cpu_ms());
    at_store_close(st);
    return 0;
}

/* --------------------------------------------------------------- parent */

static char g_base_uri[512];
static const char *g_backend; /* "sqlite" or "redis" */
static char g_dir[600];
static int g_n;

/* The child's environment: ours plus the preload and FAKETIME settings. */
struct env {
    char *v[512];
    char preload[1200];
    char faketime[40];
};

/* The AddressSanitizer runtime this process runs with, if any: it must
 * come first in a child's LD_PRELOAD. */
static void asan_runtime(char *out, size_t len)
{
    out[0] = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *p = strchr(line, '/');
        if (p && strstr(p, "/libasan.so")) {
            p[strcspn(p, "\n")] = 0;
            snprintf(out, len, "%s", p);
            break;
        }
    }
    fclose(f);
}

static void env_build(struct env *e, int64_t shift_ms, int start_after)
{
    const char *lib = getenv("AT_FAKETIME_LIB");
    ck_assert_msg(lib && *lib && access(lib, R_OK) == 0,
                  "AT_FAKETIME_LIB must name libfaketimeMT.so.1 (apt-get install faketime)");
    char asan[512];
    asan_runtime(asan, sizeof asan);
    snprintf(e->preload, sizeof e->preload, "LD_PRELOAD=%s%s%s", asan, *asan ? " " : "", lib);
    snprintf(e->faketime, sizeof e->faketime, "FAKETIME=%+lld", (long long)(shift_ms / 1000));
    size_t k = 0;
    for (char **p = environ; *p && k < 500; p++)
        if (strncmp(*p, "LD_PRELOAD=", 11) != 0 && strncmp(*p, "FAKETIME", 8) != 0)
            e->v[k++] = *p;
    e->v[k++] = e->preload;
    e->v[k++] = e->faketime;
    e->v[k++] = "FAKETIME_DONT_FAKE_MONOTONIC=1";
    e->v[k++] = "FAKETIME_FORCE_MONOTONIC_FIX=0";
    if (start_after)
        e->v[k++] = "FAKETIME_START_AFTER_SECONDS=1";
    e->v[k] = NULL;
}

/* Start `argv` (argv[0] is ignored: this program) shifted by shift_ms,
 * logging to a new file `log`. */
static pid_t spawn(const char *log, int64_t shift_ms, int start_after, char *const *argv)
{
    static struct env e;
    env_build(&e, shift_ms, start_after);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    ck_assert_int_ge(fd, 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fd, 3);
        execve("/proc/self/exe", argv, e.v);
        _exit(127);
    }
    close(fd);
    return pid;
}

static int reap(pid_t pid, int sig)
{
    if (sig)
        kill(pid, sig);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void check_shift(int64_t got, int64_t want, const char *who)
{
    /* Whole seconds plus the time between the two reads: a preload that
     * did not take reads 0, a faked monotonic clock reads years. */
    ck_assert_msg(got > want - 2000 && got < want + 2000, "%s: its clock is off by %lld ms, not %lld: is "
                  "libfaketime active?", who, (long long)got, (long long)want);
}

/* ---- memory: the wheel of one process across a real wall-clock step */

START_TEST(wheel_in_a_process_whose_clock_steps)
{
    int64_t shifts[2] = {HOUR, -HOUR};
    pid_t pid[2];
    char log[2][700];
    char off[32];
    snprintf(off, sizeof off, "%lld", (long long)(wall_ms() - mono_ms()));
    for (int k = 0; k < 2; k++) {
        snprintf(log[k], sizeof log[k], "%s/wheel%d-%ld.log", g_dir, k, (long)getpid());
        char *argv[] = {"clock_procs", "--wheel", off, NULL};
        pid[k] = spawn(log[k], shifts[k], 1, argv);
    }
    for (int k = 0; k < 2; k++) {
        int status = reap(pid[k], 0);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wheel child %d: status %d", k, status);
        long long s0, s1, claimed, run_at, started, own, cpu;
        unsigned long claims;
        const char *text = slurp(log[k]);
        ck_assert_msg(sscanf(text, "wheel %lld %lld %lld %lld %lld %lld %lu %lld", &s0, &s1, &claimed, &run_at,
                             &started, &own, &claims, &cpu) == 8, "wheel child %d log: %s", k, text);
        printf("FIGURE memory wheel, clock steps %+lld s at 1 s: job due 3 s after enqueue claimed at %lld ms, "
               "%lu claims, %lld ms CPU\n", (long long)(shifts[k] / 1000), claimed, claims, cpu);
        check_shift(s0, 0, "wheel child before the step");
        check_shift(s1, shifts[k], "wheel child after the step");
        if (shifts[k] > 0) {
            /* Due by the new reading: handed out once the step is noticed,
             * within the 1 s jump check, long before the 3 s deadline that
             * was armed on the monotonic clock. */
            ck_assert_msg(claimed >= 0, "the job was not claimed after the clock stepped past its run_at");
            ck_assert_msg(claimed < 2600, "claimed %lld ms after enqueue: the forward step was not noticed",
                          claimed);
            ck_assert_int_ge(started, run_at);
            ck_assert_int_ge(own, run_at);
        } else {
            /* An hour short by the new reading: the monotonic deadline
             * passes at 3 s and must not hand it out. */
            ck_assert_msg(claimed < 0, "claimed at %lld ms, an hour before its run_at by the process's clock",
                          claimed);
        }
        /* About one claim per second of sleep while a timer is armed
         * (ADR/0005); a spinning poller makes thousands. */
        ck_assert_msg(claims <= 12, "%lu claims in 4.5 s: the poller spins", claims);
        ck_assert_msg(cpu < 500, "%lld ms of CPU in 4.5 s: the poller spins", cpu);
    }
}
END_TEST

/* ---- durable stores: shifted worker processes */

static int server_clock(void)
{
    return strncmp(g_base_uri, "redis", 5) == 0;
}

struct side {
    int64_t shift;
    char uri[800];
    char log[700];
    at_store *st;
    char control[AT_ID_SIZE];
    char ids[NDELAYED][AT_ID_SIZE];
    int64_t run_at[NDELAYED];
    pid_t pid;
};

static void side_open(struct side *s, int64_t shift, const char *tag)
{
    s->shift = shift;
    g_n++;
    if (strncmp(g_base_uri, "sqlite:", 7) == 0)
        snprintf(s->uri, sizeof s->uri, "%s/clk-%s-%ld-%d.db", g_base_uri, tag, (long)getpid(), g_n);
    else
        snprintf(s->uri, sizeof s->uri, "%s?prefix=clk%s%ld-%d", g_base_uri, tag, (long)getpid(), g_n);
    snprintf(s->log, sizeof s->log, "%s/worker-%s-%ld.log", g_dir, tag, (long)getpid());
    ck_assert_int_eq(at_store_open(&s->st, s->uri), 0);
}

static void side_enqueue(struct side *s)
{
    at_opts *o;
    ck_assert_int_eq(at_opts_new(&o), 0);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_QUEUE, "clk"), 0);
    for (int i = 0; i < NDELAYED; i++) {
        /* run_at = now + delay by the store's clock (Redis: its server's). */
        ck_assert_int_eq(at_opts_set_int(o, AT_OPT_DELAY_MS, delays[i]), 0);
        ck_assert_int_eq(at_enqueue(s->ids[i], s->st, "t", NULL, 0, o), 0);
        at_job *j;
        ck_assert_int_eq(at_get(&j, s->st, s->ids[i]), 0);
        ck_assert_int_eq(at_job_state(j), AT_STATE_SCHEDULED);
        s->run_at[i] = at_job_time(j, AT_JOB_TIME_RUN_AT);
        at_job_free(j);
    }
    /* Due two hours ago: due for every clock within an hour of real time,
     * so the worker proves it is alive and polling.  Last, and not read
     * until the end (see the wait below). */
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_RUN_AT, wall_ms() - 2 * HOUR), 0);
    ck_assert_int_eq(at_enqueue(s->control, s->st, "t", NULL, 0, o), 0);
    at_opts_free(o);
}

static int32_t state_of(at_store *st, const char *id)
{
    at_job *j;
    ck_assert_int_eq(at_get(&j, st, id), 0);
    int32_t s = at_job_state(j);
    at_job_free(j);
    return s;
}

/* What the worker's log says about job `id`: runs, and the first run's
 * real and own (faked) start times. */
static int runs_of(const char *text, const char *id, long long *real, long long *own)
{
    int runs = 0;
    for (const char *p = text; (p = strstr(p, "run ")) != NULL; p++) {
        char got[AT_ID_SIZE];
        long long r, o;
        if (sscanf(p, "run %26s %lld %lld", got, &r, &o) == 3 && strcmp(got, id) == 0 && runs++ == 0)
            *real = r, *own = o;
    }
    return runs;
}

START_TEST(shifted_workers_never_run_a_job_early)
{
    struct side sides[2];
    const char *tags[2] = {"plus", "minus"};
    int64_t shifts[2] = {HOUR, -HOUR};
    char off[32];
    snprintf(off, sizeof off, "%lld", (long long)(wall_ms() - mono_ms()));
    for (int k = 0; k < 2; k++) {
        side_open(&sides[k], shifts[k], tags[k]);
        char *argv[] = {"clock_procs", "--worker", sides[k].uri, "clk", off, NULL};
        sides[k].pid = spawn(sides[k].log, shifts[k], 0, argv);
    }
    /* Enqueue once both workers are polling, so they wait for the due
     * times rather than find everything on their first claim. */
    sleep_ms(300);
    int64_t last_due = 0;
    for (int k = 0; k < 2; k++) {
        side_enqueue(&sides[k]);
        if (sides[k].run_at[NDELAYED - 1] > last_due)
            last_due = sides[k].run_at[NDELAYED - 1];
    }
    /* Until a second past the last run_at in real time (the store's clock
     * for Redis and for this process), and until every job the workers
     * should run has succeeded.  SQLite stores are not read meanwhile: a
     * reader expires the leases that are over by its own clock, and those
     * of the worker an hour behind are over for this process the moment
     * they are granted (the job would run again, and again). */
    int64_t give_up = mono_ms() + (last_due - wall_ms()) + 6000;
    if (!server_clock())
        sleep_ms(last_due + 1000 + 1500 - wall_ms());
    while (server_clock()) {
        int pending = 0;
        for (int k = 0; k < 2; k++) {
            pending += state_of(sides[k].st, sides[k].control) != AT_STATE_SUCCEEDED;
            for (int i = 0; i < NDELAYED; i++)
                pending += state_of(sides[k].st, sides[k].ids[i]) != AT_STATE_SUCCEEDED;
        }
        if ((pending == 0 && wall_ms() > last_due + 1000) || mono_ms() > give_up)
            break;
        sleep_ms(50);
    }
    for (int k = 0; k < 2; k++) {
        int status = reap(sides[k].pid, SIGTERM);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s worker: status %d", tags[k], status);
    }

    for (int k = 0; k < 2; k++) {
        struct side *s = &sides[k];
        const char *text = slurp(s->log);
        long long shift, real, own, cpu, ran_ms;
        unsigned long claims;
        ck_assert_msg(sscanf(text, "shift %lld", &shift) == 1, "%s worker log: %s", tags[k], text);
        check_shift(shift, s->shift, tags[k]);
        ck_assert_msg(runs_of(text, s->control, &real, &own) == 1, "%s worker did not run the control job once: "
                      "%s", tags[k], text);
        for (int i = 0; i < NDELAYED; i++) {
            int runs = runs_of(text, s->ids[i], &real, &own);
            if (runs)
                printf("FIGURE %s worker %+lld s, job due %lld ms after enqueue: started %+lld ms from run_at "
                       "by the real clock, %+lld ms by its own\n",
                       g_backend, (long long)(s->shift / 1000), (long long)delays[i], real - s->run_at[i],
                       own - s->run_at[i]);
            else
                printf("FIGURE %s worker %+lld s, job due %lld ms after enqueue: not run %lld ms after run_at "
                       "(state %s)\n",
                       g_backend, (long long)(s->shift / 1000), (long long)delays[i],
                       (long long)(wall_ms() - s->run_at[i]),
                       at_state_name(state_of(s->st, s->ids[i])));
            if (runs) {
                /* Ran once, to the end: not timed out by a skewed clock. */
                at_job *j;
                ck_assert_int_eq(at_get(&j, s->st, s->ids[i]), 0);
                ck_assert_msg(at_job_state(j) == AT_STATE_SUCCEEDED && at_job_attempts(j) == 1,
                              "%s worker: job %d is %s after %u attempts (%s)", tags[k], i,
                              at_state_name(at_job_state(j)), at_job_attempts(j),
                              at_job_last_error(j) ? at_job_last_error(j) : "no error");
                at_job_free(j);
            }
            if (server_clock()) {
                /* The server's clock judges: never early in real time,
                 * whatever the worker's clock says, and not held back by
                 * it either. */
                ck_assert_msg(runs == 1, "%s worker ran job %d %d times", tags[k], i, runs);
                ck_assert_msg(real >= s->run_at[i], "%s worker ran job %d %lld ms before its run_at", tags[k],
                              i, (long long)s->run_at[i] - real);
                ck_assert_msg(real - s->run_at[i] < 1000, "%s worker ran job %d %lld ms late", tags[k], i,
                              real - s->run_at[i]);
            } else if (s->shift < 0) {
                /* The caller's clock judges, and it says an hour to go. */
                ck_assert_msg(runs == 0, "%s worker ran job %d, due in an hour by its clock", tags[k], i);
                /* Never claimed; by this (real-clock) reader it is READY. */
                at_job *j;
                ck_assert_int_eq(at_get(&j, s->st, s->ids[i]), 0);
                ck_assert_uint_eq(at_job_attempts(j), 0);
                ck_assert_int_eq(at_job_state(j), AT_STATE_READY);
                at_job_free(j);
            } else {
                /* The caller's clock judges, and by it the job is overdue:
                 * never early by that clock (which is an hour ahead). */
                ck_assert_msg(runs == 1, "%s worker ran job %d %d times", tags[k], i, runs);
                ck_assert_msg(own >= s->run_at[i], "%s worker ran job %d %lld ms before run_at by its own clock",
                              tags[k], i, (long long)s->run_at[i] - own);
            }
        }
        ck_assert_msg(sscanf(strstr(text, "end ") ? strstr(text, "end ") : "", "end %lu %lld %lld", &claims,
                             &cpu, &ran_ms) == 3, "%s worker did not log its end: %s", tags[k], text);
        printf("FIGURE %s worker %+lld s: %lu claims, %lld ms CPU in %lld ms\n", g_backend,
               (long long)(s->shift / 1000), claims, cpu, ran_ms);
        /* Per handler thread: about one claim per second of sleep (the poll
         * timeout, the jump check), one per job and per wake-up by a change;
         * a poller that spins makes thousands. */
        unsigned long bound = 2 * (3 * (unsigned long)(ran_ms / 1000 + 1) + 2 * (NDELAYED + 1) + 4);
        ck_assert_msg(claims <= bound, "%s worker: %lu claims in %lld ms (at most %lu explained): it spins",
                      tags[k], claims, ran_ms, bound);
        ck_assert_msg(cpu < ran_ms / 3, "%s worker: %lld ms CPU in %lld ms: it spins", tags[k], cpu, ran_ms);
        at_store_close(s->st);
    }
}
END_TEST

int main(int argc, char **argv)
{
    if (argc >= 3 && (strcmp(argv[1], "--worker") == 0 || strcmp(argv[1], "--wheel") == 0)) {
        g_log = 3;
        if (strcmp(argv[1], "--wheel") == 0) {
            g_realoff = strtoll(argv[2], NULL, 10);
            return child_wheel();
        }
        if (argc != 5)
            return 2;
        g_realoff = strtoll(argv[4], NULL, 10);
        return child_worker(argv[2], argv[3]);
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s URI (memory:, sqlite:DIR or redis://HOST:PORT)\n", argv[0]);
        return 2;
    }
    snprintf(g_base_uri, sizeof g_base_uri, "%s", argv[1]);
    g_backend = strncmp(argv[1], "redis", 5) == 0 ? "redis" : "sqlite";
    /* Logs go to the SQLite directory, or a temporary one. */
    if (strncmp(argv[1], "sqlite:", 7) == 0) {
        snprintf(g_dir, sizeof g_dir, "%s", argv[1] + 7);
    } else {
        snprintf(g_dir, sizeof g_dir, "%s/at_clock.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(g_dir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    Suite *s = suite_create("clock_procs");
    TCase *tc = tcase_create(strncmp(argv[1], "memory:", 7) == 0 ? "faked_wheel" : "faked_workers");
    tcase_set_timeout(tc, 60);
    if (strcmp(argv[1], "memory:") == 0)
        tcase_add_test(tc, wheel_in_a_process_whose_clock_steps);
    else
        tcase_add_test(tc, shifted_workers_never_run_a_job_early);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    if (strncmp(argv[1], "sqlite:", 7) != 0) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "clock_procs: could not remove %s\n", g_dir);
    }
    return failed ? 1 : 0;
}
