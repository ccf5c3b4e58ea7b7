/*
 * sched_procs.c - schedulers in several processes sharing one store: one
 * job per tick through a leader's death, and a restart after downtime.
 *
 * Usage: sched_procs [URI]
 *   sqlite:DIR        the processes share DIR/sched.db
 *   redis://...       the processes share the server (a fresh key prefix)
 *   memory: (default) one process, three schedulers on one store (a memory
 *                     store cannot be shared); the leader is stopped, not
 *                     killed, and there is no restart case
 *
 * Case "leader_kill": three scheduler processes (lease 2000 ms); a schedule
 * firing every second is added; half-way the leader is SIGKILLed; at 10.5 s
 * every process is SIGKILLed (a whole-site crash).  The jobs must be one per
 * tick, every tick from the first after the add to the crash, each created at
 * most a lease period (plus scheduling slack) after its tick.
 * Case "restart" (durable stores): the same store 6 s later gets one new
 * scheduler process; with AT_MISFIRE_ONCE and a 3 s grace the ticks of the
 * downtime older than the grace are one job (the latest), and every tick
 * within the grace fires.  All child processes are stopped by PID.
 */
#define _POSIX_C_SOURCE 200809L

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "asynctask.h"

#define LEASE_MS 2000
#define GRACE_MS 3000
#define NPROCS 3
#define SLACK_MS 400 /* scheduling and store latency on a loaded 2-core CI box */

static char g_uri[1024];
static const char *g_queue = "cron.procs";
static const char *g_name = "every-second";

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

static at_store *open_store(void)
{
    at_store *st = NULL;
    int rc = at_store_open(&st, g_uri);
    ck_assert_msg(rc == 0, "open %s: %s %s", g_uri, at_err_name(rc), at_last_error());
    ck_assert_int_eq(at_store_set_option(st, AT_OPT_STORE_SCHEDULER_LEASE_MS, LEASE_MS), 0);
    return st;
}

/* ---------------------------------------------------------- children */

static volatile sig_atomic_t g_term;

static void on_term(int sig)
{
    (void)sig;
    g_term = 1;
}

/* A scheduler process: reports "pid store_ms" on `fd` each time it becomes
 * leader; on SIGTERM stops (handing the lease over) and exits. */
static void child(int fd)
{
    signal(SIGTERM, on_term);
    at_store *st = NULL;
    if (at_store_open(&st, g_uri) != 0 || at_store_set_option(st, AT_OPT_STORE_SCHEDULER_LEASE_MS, LEASE_MS))
        _exit(3);
    at_scheduler *s = NULL;
    if (at_scheduler_start(&s, st) != 0)
        _exit(4);
    int was = 0;
    while (!g_term) {
        int is = at_scheduler_is_leader(s);
        if (is && !was) {
            int64_t now = 0;
            at_store_now(&now, st);
            char line[64];
            int n = snprintf(line, sizeof line, "%ld %lld\n", (long)getpid(), (long long)now);
            if (write(fd, line, (size_t)n) != n)
                _exit(5);
        }
        was = is;
        sleep_ms(2);
    }
    at_scheduler_stop(s);
    at_store_close(st);
    _exit(0);
}

struct procs {
    pid_t pid[NPROCS + 1];
    int n;
    int rfd;
    char buf[4096];
    size_t len;
    pid_t leader;
    int64_t elected_at; /* store ms the current leader reported */
    int elections;
};

static void spawn(struct procs *p, int count)
{
    int fds[2] = {-1, -1};
    if (p->rfd < 0) {
        ck_assert_int_eq(pipe(fds), 0);
        p->rfd = fds[0];
        fcntl(p->rfd, F_SETFL, O_NONBLOCK);
    }
    for (int i = 0; i < count; i++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            /* A fresh image: this process has threads (the store's), and a
             * forked copy of a threaded process may only exec. */
            close(p->rfd);
            char fd[16];
            snprintf(fd, sizeof fd, "%d", fds[1]);
            execl("/proc/self/exe", "sched_procs", "--child", g_uri, fd, (char *)NULL);
            _exit(127);
        }
        p->pid[p->n++] = pid;
    }
    close(fds[1]);
}

/* Read leader reports that arrived. */
static void drain(struct procs *p)
{
    ssize_t r;
    while ((r = read(p->rfd, p->buf + p->len, sizeof p->buf - 1 - p->len)) > 0)
        p->len += (size_t)r;
    char *nl;
    while ((nl = memchr(p->buf, '\n', p->len)) != NULL) {
        *nl = '\0';
        long pid;
        long long at;
        if (sscanf(p->buf, "%ld %lld", &pid, &at) == 2) {
            p->leader = (pid_t)pid;
            p->elected_at = at;
            p->elections++;
        }
        size_t used = (size_t)(nl + 1 - p->buf);
        memmove(p->buf, nl + 1, p->len - used);
        p->len -= used;
    }
}

static void wait_leader(struct procs *p, int elections)
{
    int64_t end = mono_ms() + 3 * LEASE_MS + 2000;
    while (p->elections < elections && mono_ms() < end) {
        drain(p);
        sleep_ms(2);
    }
    ck_assert_msg(p->elections >= elections, "no leader was elected (%d elections)", p->elections);
}

static void kill_all(struct procs *p, int sig)
{
    for (int i = 0; i < p->n; i++)
        if (p->pid[i] > 0) {
            kill(p->pid[i], sig);
            int status;
            waitpid(p->pid[i], &status, 0);
            p->pid[i] = 0;
        }
    if (p->rfd >= 0)
        close(p->rfd);
    p->rfd = -1;
}

static void kill_one(struct procs *p, pid_t pid)
{
    for (int i = 0; i < p->n; i++)
        if (p->pid[i] == pid) {
            kill(pid, SIGKILL);
            int status;
            waitpid(pid, &status, 0);
            p->pid[i] = 0;
        }
}

/* ---------------------------------------------------------- checking */

static int by_run_at(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Every job of the queue: run_at sorted into ticks[], the worst creation
 * lateness behind its tick in *late_out; the number of jobs. */
static size_t collect(at_store *st, int64_t *ticks, size_t max, int64_t *late_out)
{
    char cursor[AT_CURSOR_SIZE] = "";
    size_t n = 0;
    *late_out = 0;
    do {
        at_job *page[200];
        size_t k = 0;
        char next[AT_CURSOR_SIZE];
        ck_assert_int_eq(at_list(page, &k, next, st, g_queue, AT_STATE_ANY, cursor, 200), 0);
        for (size_t i = 0; i < k; i++) {
            int64_t t = at_job_time(page[i], AT_JOB_TIME_RUN_AT);
            int64_t late = at_job_time(page[i], AT_JOB_TIME_CREATED) - t;
            ck_assert_int_ge(late, 0);
            if (late > *late_out)
                *late_out = late;
            ck_assert_uint_lt(n, max);
            ticks[n++] = t;
            at_job_free(page[i]);
        }
        memcpy(cursor, next, sizeof cursor);
    } while (cursor[0]);
    qsort(ticks, n, sizeof *ticks, by_run_at);
    return n;
}

static void add_schedule(at_store *st)
{
    at_schedule *s = NULL;
    ck_assert_int_eq(at_schedule_new(&s, g_name, "* * * * * *", NULL, "tick"), 0);
    at_opts *o = NULL;
    ck_assert_int_eq(at_opts_new(&o), 0);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_QUEUE, g_queue), 0);
    ck_assert_int_eq(at_schedule_set_opts(s, o), 0);
    ck_assert_int_eq(at_schedule_set_misfire(s, AT_MISFIRE_ONCE, GRACE_MS, 1), 0);
    ck_assert_int_eq(at_schedule_add(NULL, st, s), 0);
    at_opts_free(o);
    at_schedule_free(s);
}

static bool is_memory(void)
{
    return strncmp(g_uri, "memory:", 7) == 0;
}

/* The memory variant: three schedulers in this process. */
static void memory_leader_kill(void)
{
    at_store *st = open_store();
    at_scheduler *s[NPROCS];
    for (int i = 0; i < NPROCS; i++)
        ck_assert_int_eq(at_scheduler_start(&s[i], st), 0);
    add_schedule(st);
    int64_t added = 0;
    at_store_now(&added, st);
    sleep_ms(5000);
    int leaders = 0, victim = -1;
    for (int i = 0; i < NPROCS; i++)
        if (at_scheduler_is_leader(s[i]))
            leaders++, victim = i;
    ck_assert_int_eq(leaders, 1);
    at_scheduler_stop(s[victim]);
    s[victim] = NULL;
    sleep_ms(5500);
    ck_assert_int_eq(at_schedule_pause(st, g_name), 0);
    int64_t stopped = 0;
    at_store_now(&stopped, st);
    sleep_ms(50);
    for (int i = 0; i < NPROCS; i++)
        at_scheduler_stop(s[i]);
    int64_t ticks[64], late;
    size_t n = collect(st, ticks, 64, &late);
    printf("memory: %zu jobs, worst creation lateness %lld ms\n", n, (long long)late);
    ck_assert_uint_ge(n, 10);
    ck_assert_int_eq(ticks[0], (added / 1000 + 1) * 1000);
    for (size_t i = 1; i < n; i++)
        ck_assert_int_eq(ticks[i] - ticks[i - 1], 1000);
    ck_assert_int_le(ticks[n - 1], stopped);
    ck_assert_int_ge(ticks[n - 1], stopped - 1000 - SLACK_MS);
    ck_assert_int_le(late, SLACK_MS);
    at_store_close(st);
}

START_TEST(leader_kill)
{
    if (is_memory()) {
        memory_leader_kill();
        return;
    }
    at_store *st = open_store();
    struct procs p = {.rfd = -1};
    spawn(&p, NPROCS);
    wait_leader(&p, 1);
    add_schedule(st);
    int64_t added = 0, added_mono = mono_ms();
    ck_assert_int_eq(at_store_now(&added, st), 0);
    sleep_ms(5000);
    drain(&p);
    pid_t victim = p.leader;
    kill_one(&p, victim);
    int64_t killed = 0;
    at_store_now(&killed, st);
    wait_leader(&p, 2);
    ck_assert_int_ne(p.leader, victim);
    int64_t takeover = p.elected_at - killed;
    int64_t left = added_mono + 10500 - mono_ms();
    if (left > 0)
        sleep_ms(left);
    int64_t crashed = 0;
    at_store_now(&crashed, st);
    kill_all(&p, SIGKILL);
    int64_t ticks[128], late;
    size_t n = collect(st, ticks, 128, &late);
    printf("%s: %zu jobs for ticks %lld..%lld, leader killed, new leader after %lld ms, worst creation "
           "lateness %lld ms (lease %d ms)\n",
           g_uri, n, n ? (long long)ticks[0] : 0, n ? (long long)ticks[n - 1] : 0, (long long)takeover,
           (long long)late, LEASE_MS);
    ck_assert_uint_ge(n, 10);
    ck_assert_int_eq(ticks[0], (added / 1000 + 1) * 1000);
    for (size_t i = 1; i < n; i++)
        ck_assert_msg(ticks[i] - ticks[i - 1] == 1000, "ticks %lld and %lld: %s", (long long)ticks[i - 1],
                      (long long)ticks[i], ticks[i] == ticks[i - 1] ? "a tick fired twice" : "a tick is missing");
    ck_assert_int_le(ticks[n - 1], crashed);
    ck_assert_int_ge(ticks[n - 1], crashed - 1000 - SLACK_MS);
    ck_assert_int_le(takeover, LEASE_MS + SLACK_MS);
    ck_assert_int_le(late, LEASE_MS + SLACK_MS);

    /* ---- restart after downtime: grace + 3 s, so at least two ticks are
     * past the grace and ONCE visibly drops one ---- */
    sleep_ms(GRACE_MS + 3000);
    spawn(&p, 1);
    wait_leader(&p, 3);
    int64_t up = p.elected_at;
    sleep_ms(1500);
    kill_all(&p, SIGTERM);
    int64_t all[128];
    size_t m = collect(st, all, 128, &late);
    /* The jobs made after the restart. */
    size_t first = 0;
    while (first < m && all[first] <= ticks[n - 1])
        first++;
    ck_assert_uint_eq(first, n);
    ck_assert_uint_gt(m, n);
    printf("%s: restart %lld ms after the crash: %zu jobs for ticks %lld..%lld\n", g_uri,
           (long long)(up - crashed), m - n, (long long)all[first], (long long)all[m - 1]);
    /* Ticks older than the grace were one job, the latest of them: none
     * before cut - 1 s, where cut = restart - grace. */
    ck_assert_int_ge(all[first], up - GRACE_MS - 1000 - 100);
    ck_assert_int_lt(all[first], up - GRACE_MS + 100);
    ck_assert_int_gt(all[first] - ticks[n - 1], 1000);
    for (size_t i = first + 1; i < m; i++)
        ck_assert_int_eq(all[i] - all[i - 1], 1000);
    ck_assert_int_ge(all[m - 1], up);
    at_store_close(st);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0) {
        snprintf(g_uri, sizeof g_uri, "%s", argv[2]);
        child(atoi(argv[3]));
    }
    if (argc > 2) {
        fprintf(stderr, "usage: %s [URI] (memory: by default, sqlite:DIR, redis://HOST:PORT)\n", argv[0]);
        return 2;
    }
    if (argc == 1)
        argv[1] = (char *)"memory:";
    if (strncmp(argv[1], "sqlite:", 7) == 0)
        snprintf(g_uri, sizeof g_uri, "sqlite:%s/sched.db", argv[1] + 7);
    else if (strncmp(argv[1], "redis://", 8) == 0)
        snprintf(g_uri, sizeof g_uri, "%s%sprefix=procs%ld", argv[1], strchr(argv[1], '?') ? "&" : "?",
                 (long)getpid());
    else
        snprintf(g_uri, sizeof g_uri, "%s", argv[1]);
    Suite *s = suite_create("scheduler processes");
    TCase *tc = tcase_create("scheduler_processes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, leader_kill);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
