/*
 * sqlite_test.c - what only the SQLite backend promises, beyond the
 * conformance suite (tests/sqlite_conformance.sh runs that one):
 *
 *   crash      a child enqueueing (or acking) in a loop is SIGKILLed at
 *              random moments, 30 times each: every id it reported after
 *              rc 0 is there afterwards, every acked job stays acked, and
 *              PRAGMA integrity_check says ok
 *   processes  2 producer and 4 worker processes share one file: each of
 *              20,000 jobs runs exactly once, nothing is left
 *   wakeup     a poller blocked in one process gets a job enqueued by
 *              another without busy polling (ADR 0007)
 *   env        unwritable directory, a file that is not a database, another
 *              application's database, a corrupt database, a lock held
 *              beyond busy_timeout, processes opening a new file at once,
 *              a full disk (RLIMIT_FSIZE), a newer schema, URI errors,
 *              file mode 0600, network file systems
 *   schedules  schedules and the scheduler lease survive reopening the
 *              file; two handles (connections, as two processes have)
 *              compete for the lease and get growing tokens; a firing with
 *              a stale token changes nothing; a version-1 file is upgraded
 *   workflows  a version-2 file is upgraded and its jobs can be parents; a
 *              waiting child survives reopening and is released by an ack
 *              through another connection; two processes acking a child's
 *              last two parents at once release it once; a 10,000-wide
 *              fan-out and fan-in; purge forgets a finished workflow
 *   worker_support
 *              release gives a claim back (the attempt uncounted, the old
 *              token stale, a marked job cancelled with its waiting
 *              children); a pause through one handle stops claims through
 *              another and survives reopening, without a wake time that
 *              spins; two handles share one token bucket; a version-3 file
 *              is upgraded
 *   plans      EXPLAIN QUERY PLAN of every cached statement: claim, due
 *              lookup, idempotency, listing, purge and the workflow tables
 *              use indexes
 *
 * Each test makes its own temporary directory and removes it.  Processes
 * are forked before any store is opened in the parent (a store never
 * crosses fork()).  Bounded to well under a minute on 2 cores.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "asynctask.h"
/* The store handle's vtable and backend: the lease methods have no public
 * call of their own. */
#include "internal.h"

/* Hidden helpers of backends/sqlite.c (this program links libat_core). */
int at__sqlite_fs_is_network(long f_type);
const char *at__sqlite_statement(size_t i);
const char *at__sqlite_schema_step(size_t v);

/* ---------------------------------------------------------------- helpers */

static char g_dir[512];
static char g_db[600];

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "%s/at_sqlite.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    snprintf(g_db, sizeof g_db, "%s/q.db", g_dir);
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            chmod(p, 0700);
            rm_tree(p);
        } else {
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

static void teardown(void)
{
    rm_tree(g_dir);
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (time_t)(ms / 1000) * 1000) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static at_store *open_uri(const char *query)
{
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s%s", g_db, query ? query : "");
    at_store *s = NULL;
    int rc = at_store_open(&s, uri);
    ck_assert_msg(rc == 0, "open %s: %s (%s)", uri, at_err_name(rc), at_last_error());
    return s;
}

/* PRAGMA integrity_check through a connection of our own. */
static void assert_integrity(const char *path)
{
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static uint64_t count_state(at_store *s, int32_t state)
{
    at_stats *st;
    ck_assert_int_eq(at_stats_get(&st, s), 0);
    uint64_t n = 0;
    for (size_t i = 0; i < at_stats_queue_count(st); i++)
        n += at_stats_count(st, i, state);
    at_stats_free(st);
    return n;
}

/* A set of job ids read from a child, as NUL-terminated strings. */
struct idset {
    char (*ids)[AT_ID_SIZE];
    size_t n, cap;
};

static void idset_add(struct idset *s, const char *id)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->ids = realloc(s->ids, s->cap * sizeof *s->ids);
        ck_assert_ptr_nonnull(s->ids);
    }
    memcpy(s->ids[s->n++], id, AT_ID_SIZE);
}

static int idset_has(const struct idset *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0)
            return 1;
    return 0;
}

/* Read "ID\n" records (27 bytes each) until EOF. */
static void read_ids(int fd, struct idset *into, size_t *got)
{
    char rec[AT_ID_SIZE];
    size_t have = 0;
    *got = 0;
    for (;;) {
        ssize_t r = read(fd, rec + have, sizeof rec - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        if (have == sizeof rec) {
            rec[AT_ID_LEN] = '\0';
            idset_add(into, rec);
            (*got)++;
            have = 0;
        }
    }
}

static void report_id(int fd, const char *id)
{
    char rec[AT_ID_SIZE];
    memcpy(rec, id, AT_ID_LEN);
    rec[AT_ID_LEN] = '\n';
    /* 27 bytes < PIPE_BUF: one atomic write, never torn by the kill. */
    if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec)
        _exit(3);
}

/* Fork a child running fn(arg, pipe write end); returns the read end. */
static pid_t spawn(void (*fn)(void *, int), void *arg, int *rfd)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        fn(arg, p[1]);
        _exit(0);
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

/* ------------------------------------------------------------------ crash */

/* arg: the URI's query string, so that rounds alternate sync=full (the
 * default) and sync=normal: a process crash loses nothing under either. */
static void child_enqueue(void *arg, int fd)
{
    at_store *s;
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s%s", g_db, (const char *)arg);
    if (at_store_open(&s, uri) != 0)
        _exit(2);
    char id[AT_ID_SIZE];
    for (;;) {
        if (at_enqueue(id, s, "crash", "payload", 7, NULL) != 0)
            _exit(4);
        report_id(fd, id);
    }
}

START_TEST(sigkilled_enqueuer_loses_no_reported_job)
{
    at_store_close(open_uri(NULL)); /* the schema exists before the first kill */
    struct idset all = {0};
    unsigned seed = (unsigned)getpid();
    for (int round = 0; round < 30; round++) {
        int fd;
        pid_t pid = spawn(child_enqueue, (void *)(round % 2 ? "?sync=normal" : ""), &fd);
        sleep_ms(5 + rand_r(&seed) % 40);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        ck_assert_msg(WIFSIGNALED(st), "the enqueuer exited by itself (status %d)", st);
        size_t got;
        size_t before = all.n;
        read_ids(fd, &all, &got);
        close(fd);
        assert_integrity(g_db);
        at_store *s = open_uri(NULL);
        for (size_t i = before; i < all.n; i++) {
            at_job *j = NULL;
            int rc = at_get(&j, s, all.ids[i]);
            ck_assert_msg(rc == 0, "round %d: reported job %s is missing (%s)", round, all.ids[i], at_err_name(rc));
            at_job_free(j);
        }
        at_store_close(s);
    }
    ck_assert_uint_gt(all.n, 30);
    free(all.ids);
}
END_TEST

static void child_ack(void *arg, int fd)
{
    at_store *s;
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s%s", g_db, (const char *)arg);
    if (at_store_open(&s, uri) != 0)
        _exit(2);
    const char *q[] = {"default"};
    for (;;) {
        at_job *j;
        size_t n = 0;
        if (at_poll(&j, &n, s, q, 1, 1, 0) != 0)
            _exit(4);
        if (n == 0)
            _exit(0);
        int rc = at_ack(s, at_job_id(j), at_job_token(j), NULL, 0);
        if (rc == 0)
            report_id(fd, at_job_id(j));
        else if (rc != AT_ERR_STALE)
            _exit(5);
        at_job_free(j);
    }
}

START_TEST(sigkilled_worker_never_gets_an_acked_job_back)
{
    /* Short leases: jobs a killed worker held come back within the test. */
    at_store *s = open_uri(NULL);
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_int(o, AT_OPT_LEASE_MS, 150);
    at_batch *b;
    at_batch_new(&b);
    for (int i = 0; i < 4000; i++)
        ck_assert_int_eq(at_batch_add(b, "crash", "p", 1, o), 0);
    ck_assert_int_eq(at_enqueue_batch(s, b), 0);
    at_batch_free(b);
    at_opts_free(o);
    at_store_close(s);

    struct idset acked = {0};
    unsigned seed = (unsigned)getpid() * 7u;
    for (int round = 0; round < 30; round++) {
        int fd;
        pid_t pid = spawn(child_ack, (void *)(round % 2 ? "?sync=normal" : ""), &fd);
        sleep_ms(5 + rand_r(&seed) % 30);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        size_t got, before = acked.n;
        read_ids(fd, &acked, &got);
        close(fd);
        assert_integrity(g_db);
        s = open_uri(NULL);
        for (size_t i = before; i < acked.n; i++) {
            at_job *j = NULL;
            ck_assert_int_eq(at_get(&j, s, acked.ids[i]), 0);
            ck_assert_msg(at_job_state(j) == AT_STATE_SUCCEEDED, "round %d: acked job %s is %s", round,
                          acked.ids[i], at_state_name(at_job_state(j)));
            at_job_free(j);
        }
        at_store_close(s);
    }
    ck_assert_uint_gt(acked.n, 30);
    /* Drain what is left, leases of killed holders included: no acked job
     * is ever handed out again. */
    s = open_uri(NULL);
    const char *q[] = {"default"};
    for (;;) {
        at_job *jobs[100];
        size_t n = 0;
        ck_assert_int_eq(at_poll(jobs, &n, s, q, 1, 20, 400), 0);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(!idset_has(&acked, at_job_id(jobs[i])), "acked job %s came back", at_job_id(jobs[i]));
            /* A lease may run out while the page is being acked: that job
             * comes back and is acked on a later round. */
            int rc = at_ack(s, at_job_id(jobs[i]), at_job_token(jobs[i]), NULL, 0);
            ck_assert_msg(rc == 0 || rc == AT_ERR_STALE, "ack: %s", at_err_name(rc));
            at_job_free(jobs[i]);
        }
    }
    ck_assert_uint_eq(count_state(s, AT_STATE_SUCCEEDED), 4000);
    at_store_close(s);
    free(acked.ids);
}
END_TEST

/* -------------------------------------------------------------- processes */

#define MP_JOBS 20000
#define MP_PRODUCERS 2
#define MP_WORKERS 4

struct mp_shared {
    _Atomic int runs[MP_JOBS];
    _Atomic long done;
};

static struct mp_shared *g_mp;

static void mp_producer(void *arg, int fd)
{
    (void)fd;
    int which = *(int *)arg;
    at_store *s;
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s?sync=normal", g_db);
    if (at_store_open(&s, uri) != 0)
        _exit(2);
    at_batch *b;
    at_batch_new(&b);
    int per = MP_JOBS / MP_PRODUCERS;
    for (int i = 0; i < per; i += 100) {
        at_batch_clear(b);
        for (int k = i; k < i + 100 && k < per; k++) {
            int32_t idx = which * per + k;
            if (at_batch_add(b, "mp", &idx, sizeof idx, NULL) != 0)
                _exit(3);
        }
        int rc = at_enqueue_batch(s, b);
        if (rc != 0) {
            fprintf(stderr, "producer: %s (%s)\n", at_err_name(rc), at_last_error());
            _exit(4);
        }
    }
    at_batch_free(b);
    at_store_close(s);
}

static void mp_worker(void *arg, int fd)
{
    (void)arg;
    (void)fd;
    at_store *s;
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s?sync=normal", g_db);
    if (at_store_open(&s, uri) != 0)
        _exit(2);
    const char *q[] = {"default"};
    double give_up = mono_ms() + 60000;
    while (atomic_load(&g_mp->done) < MP_JOBS && mono_ms() < give_up) {
        at_job *jobs[16];
        size_t n = 0;
        int rc = at_poll(jobs, &n, s, q, 1, 16, 100);
        if (rc != 0) {
            fprintf(stderr, "worker poll: %s (%s)\n", at_err_name(rc), at_last_error());
            _exit(4);
        }
        for (size_t i = 0; i < n; i++) {
            int32_t idx;
            memcpy(&idx, at_job_payload(jobs[i], NULL), sizeof idx);
            atomic_fetch_add(&g_mp->runs[idx], 1);
            rc = at_ack(s, at_job_id(jobs[i]), at_job_token(jobs[i]), NULL, 0);
            if (rc != 0) {
                fprintf(stderr, "worker ack: %s (%s)\n", at_err_name(rc), at_last_error());
                _exit(5);
            }
            atomic_fetch_add(&g_mp->done, 1);
            at_job_free(jobs[i]);
        }
    }
    at_store_close(s);
}

START_TEST(six_processes_run_each_of_20000_jobs_exactly_once)
{
    g_mp = mmap(NULL, sizeof *g_mp, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(g_mp, MAP_FAILED);
    at_store_close(open_uri("?sync=normal"));
    pid_t pids[MP_PRODUCERS + MP_WORKERS];
    int fds[MP_PRODUCERS + MP_WORKERS];
    int which[MP_PRODUCERS];
    for (int i = 0; i < MP_WORKERS; i++)
        pids[i] = spawn(mp_worker, NULL, &fds[i]);
    for (int i = 0; i < MP_PRODUCERS; i++) {
        which[i] = i;
        pids[MP_WORKERS + i] = spawn(mp_producer, &which[i], &fds[MP_WORKERS + i]);
    }
    for (int i = 0; i < MP_PRODUCERS + MP_WORKERS; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        close(fds[i]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "process %d failed (status %d)", i, st);
    }
    for (int i = 0; i < MP_JOBS; i++)
        ck_assert_msg(atomic_load(&g_mp->runs[i]) == 1, "job %d ran %d times", i, atomic_load(&g_mp->runs[i]));
    at_store *s = open_uri("?sync=normal");
    ck_assert_uint_eq(count_state(s, AT_STATE_SUCCEEDED), MP_JOBS);
    ck_assert_uint_eq(count_state(s, AT_STATE_ANY), MP_JOBS);
    at_store_close(s);
    assert_integrity(g_db);
    munmap(g_mp, sizeof *g_mp);
}
END_TEST

/* ----------------------------------------------------------------- wakeup */

static void wake_poller(void *arg, int fd)
{
    (void)arg;
    at_store *s;
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s", g_db);
    if (at_store_open(&s, uri) != 0)
        _exit(2);
    const char *q[] = {"wake"};
    for (int i = 0; i < 5; i++) {
        if (write(fd, "r", 1) != 1) /* ready: about to block */
            _exit(3);
        at_job *j;
        size_t n = 0;
        if (at_poll(&j, &n, s, q, 1, 1, 5000) != 0 || n != 1)
            _exit(4);
        double now = mono_ms(), sent;
        memcpy(&sent, at_job_payload(j, NULL), sizeof sent);
        double lat = now - sent;
        if (write(fd, &lat, sizeof lat) != (ssize_t)sizeof lat)
            _exit(5);
        at_job_free(j);
    }
    at_store_close(s);
}

START_TEST(poller_in_another_process_wakes_for_an_enqueue)
{
    at_store_close(open_uri(NULL));
    int fd;
    pid_t pid = spawn(wake_poller, NULL, &fd);
    at_store *s = open_uri(NULL);
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "wake");
    double worst = 0;
    for (int i = 0; i < 5; i++) {
        char r;
        ck_assert_int_eq(read(fd, &r, 1), 1);
        sleep_ms(150 + 7 * i); /* the poller is blocked by now */
        double t = mono_ms();
        ck_assert_int_eq(at_enqueue(NULL, s, "w", &t, sizeof t, o), 0);
        double lat;
        ck_assert_int_eq(read(fd, &lat, sizeof lat), (ssize_t)sizeof lat);
        if (lat > worst)
            worst = lat;
    }
    /* ADR 0007 aims at 50 ms (one 20 ms watch interval plus a claim); the
     * bound is generous for loaded CI machines.  bench/run reports p50/p99. */
    ck_assert_msg(worst < 500, "worst cross-process wake-up took %.1f ms", worst);
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fd);
    at_opts_free(o);
    at_store_close(s);
}
END_TEST

/* -------------------------------------------------------------------- env */

static int open_rc(const char *uri)
{
    at_store *s = NULL;
    int rc = at_store_open(&s, uri);
    at_store_close(s);
    return rc;
}

START_TEST(unwritable_directory_is_an_io_error_and_creates_nothing)
{
    char sub[700], uri[800];
    snprintf(sub, sizeof sub, "%s/ro", g_dir);
    ck_assert_int_eq(mkdir(sub, 0555), 0);
    chmod(g_dir, 0755);
    snprintf(uri, sizeof uri, "sqlite:%s/q.db", sub);
    pid_t pid = fork();
    if (pid == 0) {
        /* root ignores permissions: test as an ordinary user. */
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(9);
        int rc = open_rc(uri);
        _exit(rc == AT_ERR_IO ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "expected AT_ERR_IO (child status %d)", st);
    char p[800];
    snprintf(p, sizeof p, "%s/q.db", sub);
    ck_assert_int_ne(access(p, F_OK), 0);
}
END_TEST

START_TEST(missing_directory_is_an_io_error)
{
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s/no/such/dir/q.db", g_dir);
    ck_assert_int_eq(open_rc(uri), AT_ERR_IO);
    ck_assert_ptr_nonnull(strstr(at_last_error(), "No such file"));
}
END_TEST

static void write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, buf, cap);
    close(fd);
    ck_assert_int_ge(n, 0);
    return (size_t)n;
}

START_TEST(file_that_is_not_a_database_is_corrupt_and_left_alone)
{
    char text[8192];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + i % 26);
    write_file(g_db, text, sizeof text);
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s", g_db);
    ck_assert_int_eq(open_rc(uri), AT_ERR_CORRUPT);
    char back[9000];
    ck_assert_uint_eq(read_file(g_db, back, sizeof back), sizeof text);
    ck_assert_mem_eq(back, text, sizeof text);
}
END_TEST

START_TEST(another_applications_database_is_refused_untouched)
{
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(g_db, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE mine(x); INSERT INTO mine VALUES(42);", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s", g_db);
    ck_assert_int_eq(open_rc(uri), AT_ERR_CORRUPT);
    ck_assert_int_eq(sqlite3_open(g_db, &db), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
}
END_TEST

START_TEST(corrupt_database_gives_corrupt_errors_not_crashes)
{
    at_store *s = open_uri(NULL);
    at_batch *b;
    at_batch_new(&b);
    for (int i = 0; i < 3000; i++)
        at_batch_add(b, "c", "0123456789abcdef0123456789abcdef", 32, NULL);
    ck_assert_int_eq(at_enqueue_batch(s, b), 0);
    at_batch_free(b);
    at_store_close(s); /* checkpointed: everything is in the main file */
    /* Trash every page but the first (file header and schema). */
    int fd = open(g_db, O_RDWR);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    fstat(fd, &st);
    char junk[4096];
    memset(junk, 0x5a, sizeof junk);
    for (off_t off = 4096; off < st.st_size; off += 4096)
        ck_assert_int_eq(pwrite(fd, junk, sizeof junk, off), (ssize_t)sizeof junk);
    close(fd);
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s", g_db);
    s = NULL;
    int rc = at_store_open(&s, uri);
    if (rc == 0) {
        const char *q[] = {"default"};
        at_job *j[4];
        size_t n;
        rc = at_poll(j, &n, s, q, 1, 4, 0);
        ck_assert_msg(rc == AT_ERR_CORRUPT, "poll: %s", at_err_name(rc));
        char msg[256];
        int32_t native = 0;
        at_store_errmsg(s, msg, sizeof msg, &native);
        ck_assert_msg((native & 0xff) == SQLITE_CORRUPT || (native & 0xff) == SQLITE_NOTADB, "native %d", native);
        rc = at_enqueue(NULL, s, "c", NULL, 0, NULL);
        ck_assert_msg(rc == AT_ERR_CORRUPT, "enqueue: %s", at_err_name(rc));
        at_stats *stats = NULL;
        rc = at_stats_get(&stats, s);
        at_stats_free(stats);
        ck_assert_msg(rc == AT_ERR_CORRUPT, "stats: %s", at_err_name(rc));
        at_store_close(s);
    } else {
        ck_assert_int_eq(rc, AT_ERR_CORRUPT);
    }
}
END_TEST

START_TEST(lock_held_beyond_busy_timeout_is_busy_then_clears)
{
    at_store *s = open_uri("?busy_timeout=200");
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(g_db, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    double t0 = mono_ms();
    int rc = at_enqueue(NULL, s, "b", NULL, 0, NULL);
    double waited = mono_ms() - t0;
    ck_assert_int_eq(rc, AT_ERR_BUSY);
    ck_assert_msg(waited >= 190 && waited < 2000, "waited %.0f ms for a 200 ms busy_timeout", waited);
    int32_t native = 0;
    char msg[256];
    at_store_errmsg(s, msg, sizeof msg, &native);
    ck_assert_int_eq(native & 0xff, SQLITE_BUSY);
    /* A new store cannot even check its schema while the lock is held. */
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s?busy_timeout=100", g_db);
    ck_assert_int_eq(open_rc(uri), AT_ERR_BUSY);
    ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(at_enqueue(NULL, s, "b", NULL, 0, NULL), 0);
    ck_assert_uint_eq(count_state(s, AT_STATE_ANY), 1);
    at_store_close(s);
}
END_TEST

/* An opener process: waits for the go byte, opens the store, enqueues one
 * job, and writes its return code and error text to the pipe. */
static void opener_child(void *arg, int fd)
{
    int go = *(int *)arg;
    char c, uri[800], msg[256] = "";
    snprintf(uri, sizeof uri, "sqlite:%s?busy_timeout=5000", g_db);
    if (read(go, &c, 1) != 1)
        _exit(3);
    at_store *s = NULL;
    int32_t rc = at_store_open(&s, uri);
    if (rc == 0)
        rc = at_enqueue(NULL, s, "first", NULL, 0, NULL);
    if (rc)
        snprintf(msg, sizeof msg, "%s", at_last_error());
    at_store_close(s);
    if (write(fd, &rc, sizeof rc) != sizeof rc || write(fd, msg, sizeof msg) != sizeof msg)
        _exit(4);
}

/* Processes that open a new store file at the same moment all switch it to
 * WAL, and SQLite refuses all but one of those switches with SQLITE_BUSY
 * without calling the busy handler (measured: 37 of 800 openers, after
 * 0.1 ms, on SQLite 3.40).  The others must wait within their busy_timeout
 * like for any other lock, not fail (seen in CI: a producer of
 * tests/faults/sqlite_kills refused at open with "database is locked"). */
START_TEST(processes_opening_a_new_file_at_once_all_open_it)
{
    enum { OPENERS = 4, ROUNDS = 25 };
    for (int round = 0; round < ROUNDS; round++) {
        snprintf(g_db, sizeof g_db, "%s/new%d.db", g_dir, round);
        int go[2], ofd[OPENERS], status;
        ck_assert_int_eq(pipe(go), 0);
        pid_t opid[OPENERS];
        for (int i = 0; i < OPENERS; i++)
            opid[i] = spawn(opener_child, &go[0], &ofd[i]);
        ck_assert_int_eq(write(go[1], "gggg", OPENERS), OPENERS); /* all start together */
        close(go[0]);
        close(go[1]);
        for (int i = 0; i < OPENERS; i++) {
            int32_t rc = -1;
            char msg[256] = "";
            ck_assert_int_eq(read(ofd[i], &rc, sizeof rc), (ssize_t)sizeof rc);
            ck_assert_int_eq(read(ofd[i], msg, sizeof msg), (ssize_t)sizeof msg);
            close(ofd[i]);
            ck_assert_int_eq(waitpid(opid[i], &status, 0), opid[i]);
            ck_assert_msg(rc == 0, "round %d opener %d: %s (%s)", round, i, at_err_name(rc), msg);
        }
        at_store *s = open_uri(NULL);
        ck_assert_uint_eq(count_state(s, AT_STATE_ANY), OPENERS);
        at_store_close(s);
    }
}
END_TEST

/* In a child limited to a file size: batches until the disk is "full". */
static void full_child(void *arg, int fd)
{
    (void)arg;
    struct stat st;
    if (stat(g_db, &st) != 0)
        _exit(2);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {(rlim_t)st.st_size + 256 * 1024, (rlim_t)st.st_size + 256 * 1024};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        _exit(2);
    at_store *s;
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s", g_db);
    if (at_store_open(&s, uri) != 0)
        _exit(3);
    static char payload[1000];
    at_batch *b;
    at_batch_new(&b);
    int32_t committed = 0, rc = 0;
    for (int i = 0; i < 1000 && rc == 0; i++) {
        at_batch_clear(b);
        for (int k = 0; k < 50; k++)
            at_batch_add(b, "full", payload, sizeof payload, NULL);
        rc = at_enqueue_batch(s, b);
        if (rc == 0)
            committed += 50;
    }
    if (write(fd, &committed, sizeof committed) != sizeof committed || write(fd, &rc, sizeof rc) != sizeof rc)
        _exit(4);
    at_batch_free(b);
    at_store_close(s);
}

START_TEST(full_disk_is_full_or_io_and_keeps_every_committed_batch)
{
    at_store_close(open_uri(NULL));
    int fd;
    pid_t pid = spawn(full_child, NULL, &fd);
    int32_t committed = -1, rc = 0;
    ck_assert_int_eq(read(fd, &committed, sizeof committed), (ssize_t)sizeof committed);
    ck_assert_int_eq(read(fd, &rc, sizeof rc), (ssize_t)sizeof rc);
    int st;
    waitpid(pid, &st, 0);
    close(fd);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    ck_assert_msg(rc == AT_ERR_FULL || rc == AT_ERR_IO, "expected FULL or IO, got %s", at_err_name(rc));
    ck_assert_int_gt(committed, 0);
    assert_integrity(g_db);
    at_store *s = open_uri(NULL);
    /* All or nothing: exactly the committed batches are there. */
    ck_assert_uint_eq(count_state(s, AT_STATE_ANY), (uint64_t)committed);
    ck_assert_int_eq(at_enqueue(NULL, s, "after", NULL, 0, NULL), 0);
    at_store_close(s);
}
END_TEST

START_TEST(newer_schema_is_unsupported)
{
    at_store_close(open_uri(NULL));
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(g_db, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s", g_db);
    ck_assert_int_eq(open_rc(uri), AT_ERR_UNSUPPORTED);
}
END_TEST

START_TEST(uri_errors_are_refused)
{
    char uri[800];
    ck_assert_int_eq(open_rc("sqlite:"), AT_ERR_URI);
    ck_assert_int_eq(open_rc("sqlite::memory:"), AT_ERR_URI);
    snprintf(uri, sizeof uri, "sqlite:%s?sync=fast", g_db);
    ck_assert_int_eq(open_rc(uri), AT_ERR_URI);
    snprintf(uri, sizeof uri, "sqlite:%s?cache=shared", g_db);
    ck_assert_int_eq(open_rc(uri), AT_ERR_URI);
    snprintf(uri, sizeof uri, "sqlite:%s?busy_timeout=soon", g_db);
    ck_assert_int_eq(open_rc(uri), AT_ERR_URI);
    snprintf(uri, sizeof uri, "sqlite:%s?sync=normal&busy_timeout=250&nfs=allow", g_db);
    ck_assert_int_eq(open_rc(uri), 0);
}
END_TEST

START_TEST(relative_path_is_relative_to_the_working_directory)
{
    char cwd[1024];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(g_dir), 0);
    int rc = open_rc("sqlite:rel.db");
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_int_eq(rc, 0);
    char p[800];
    snprintf(p, sizeof p, "%s/rel.db", g_dir);
    ck_assert_int_eq(access(p, F_OK), 0);
}
END_TEST

START_TEST(new_files_have_mode_0600_whatever_the_umask)
{
    mode_t old = umask(0);
    at_store *s = open_uri(NULL);
    umask(old);
    ck_assert_int_eq(at_enqueue(NULL, s, "m", NULL, 0, NULL), 0);
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[800];
        struct stat st;
        snprintf(p, sizeof p, "%s%s", g_db, suffixes[i]);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_msg((st.st_mode & 0777) == 0600, "%s has mode %o", p, (unsigned)(st.st_mode & 0777));
    }
    at_store_close(s);
}
END_TEST

START_TEST(network_file_systems_are_recognised)
{
    ck_assert_int_eq(at__sqlite_fs_is_network(0x6969), 1);          /* NFS */
    ck_assert_int_eq(at__sqlite_fs_is_network((long)0xFF534D42), 1); /* CIFS */
    ck_assert_int_eq(at__sqlite_fs_is_network((long)0xFE534D42), 1); /* SMB2 */
    ck_assert_int_eq(at__sqlite_fs_is_network(0x517B), 1);          /* SMB */
    ck_assert_int_eq(at__sqlite_fs_is_network(0xEF53), 0);          /* ext4 */
    ck_assert_int_eq(at__sqlite_fs_is_network(0x01021994), 0);      /* tmpfs */
    ck_assert_int_eq(at__sqlite_fs_is_network(0x58465342), 0);      /* xfs */
}
END_TEST

START_TEST(store_used_after_fork_is_refused_in_the_child)
{
    at_store *s = open_uri(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int rc = at_enqueue(NULL, s, "f", NULL, 0, NULL);
        _exit(rc == AT_ERR_FORK ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_int_eq(at_enqueue(NULL, s, "f", NULL, 0, NULL), 0);
    at_store_close(s);
}
END_TEST

/* -------------------------------------------------------------- schedules */

#define T0 INT64_C(1700000000000)
#define LEASE "scheduler"

/* A store on g_db judged by `clock` (set before any other call). */
static at_store *open_clocked(at_clock *clock)
{
    at_store *s = open_uri("?sync=normal");
    ck_assert_int_eq(at_store_set_clock(s, clock), 0);
    return s;
}

static void add_schedule(at_store *s, const char *name, const char *expr, int32_t want_created)
{
    at_schedule *d;
    ck_assert_int_eq(at_schedule_new(&d, name, expr, NULL, "report"), 0);
    int32_t created = -1;
    int rc = at_schedule_add(&created, s, d);
    ck_assert_msg(rc == 0, "add %s: %s (%s)", name, at_err_name(rc), at_last_error());
    ck_assert_int_eq(created, want_created);
    at_schedule_free(d);
}

/* The lease and firing methods have no public call of their own (the
 * scheduler uses them), so these go to the backend's vtable directly. */
static int lease_acquire(uint64_t *token, int64_t *left, at_store *s, const char *owner, int64_t ttl_ms)
{
    return s->vt->lease_acquire(token, left, s->be, LEASE, owner, ttl_ms);
}

static int lease_release(at_store *s, const char *owner, uint64_t token)
{
    return s->vt->lease_release(s->be, LEASE, owner, token);
}

static int sched_fired(at_store *s, const char *name, int64_t fire_at, const char *job_id, uint64_t token)
{
    return s->vt->sched_fired(s->be, name, fire_at, job_id, LEASE, token);
}

#define JOB_A "01HF0000000000000000000000"
/* SCHEMA_VERSION of backends/sqlite.c: what every upgrade ends at. */
#define SCHEMA_NOW 6
#define JOB_B "01HF0000000000000000000001"

START_TEST(schedules_and_the_lease_survive_closing_and_reopening)
{
    at_clock *clock;
    ck_assert_int_eq(at_clock_new_manual(&clock, T0), 0);
    at_store *s = open_clocked(clock);
    add_schedule(s, "nightly", "0 3 * * *", 1);
    add_schedule(s, "hourly", "0 * * * *", 1);
    ck_assert_int_eq(at_schedule_pause(s, "nightly"), 0);
    uint64_t token = 0;
    int64_t left = 0;
    ck_assert_int_eq(lease_acquire(&token, &left, s, "host-a", 60000), 0);
    ck_assert_uint_eq(token, 1);
    ck_assert_int_eq(sched_fired(s, "hourly", T0 - 1000, JOB_A, token), 0);
    at_store_close(s);

    ck_assert_int_eq(at_clock_advance(clock, 5000), 0);
    s = open_clocked(clock);
    at_schedule **v;
    size_t n;
    ck_assert_int_eq(at_schedule_list(&v, &n, s), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(at_schedule_name(v[0]), "hourly");
    ck_assert_str_eq(at_schedule_expr(v[0]), "0 * * * *");
    ck_assert_int_eq(at_schedule_paused(v[0]), 0);
    ck_assert_int_eq(at_schedule_time(v[0], AT_SCHEDULE_TIME_CREATED), T0);
    ck_assert_int_eq(at_schedule_time(v[0], AT_SCHEDULE_TIME_LAST_FIRE), T0 - 1000);
    ck_assert_str_eq(at_schedule_last_job_id(v[0]), JOB_A);
    ck_assert_str_eq(at_schedule_name(v[1]), "nightly");
    ck_assert_int_eq(at_schedule_paused(v[1]), 1);
    ck_assert_int_eq(at_schedule_time(v[1], AT_SCHEDULE_TIME_LAST_FIRE), AT_TIME_NONE);
    at_schedule_list_free(v, n);
    /* The lease is still held by host-a, 55 s from expiry. */
    ck_assert_int_eq(lease_acquire(&token, &left, s, "host-b", 60000), AT_ERR_BUSY);
    ck_assert_uint_eq(token, 1);
    ck_assert_int_eq(left, 55000);
    ck_assert_int_eq(lease_acquire(&token, &left, s, "host-a", 60000), 0);
    ck_assert_uint_eq(token, 1);
    at_store_close(s);
    ck_assert_int_eq(at_clock_free(clock), 0);
    assert_integrity(g_db);
}
END_TEST

START_TEST(two_handles_compete_for_one_lease_and_tokens_only_grow)
{
    at_clock *clock;
    ck_assert_int_eq(at_clock_new_manual(&clock, T0), 0);
    /* Two handles are two connections to the file, as two processes have. */
    at_store *a = open_clocked(clock), *b = open_clocked(clock);
    uint64_t ta = 0, tb = 0;
    int64_t left = 0;
    ck_assert_int_eq(lease_acquire(&ta, &left, a, "host-a", 1000), 0);
    ck_assert_uint_eq(ta, 1);
    ck_assert_int_eq(left, 1000);
    ck_assert_int_eq(lease_acquire(&tb, &left, b, "host-b", 1000), AT_ERR_BUSY);
    ck_assert_uint_eq(tb, 1);
    ck_assert_int_eq(left, 1000);

    /* Renewing keeps the holder's token and restarts its time. */
    ck_assert_int_eq(at_clock_advance(clock, 600), 0);
    ck_assert_int_eq(lease_acquire(&ta, &left, a, "host-a", 1000), 0);
    ck_assert_uint_eq(ta, 1);
    ck_assert_int_eq(lease_acquire(&tb, &left, b, "host-b", 1000), AT_ERR_BUSY);
    ck_assert_int_eq(left, 1000);

    /* Expired at its deadline exactly: the other handle takes it over. */
    ck_assert_int_eq(at_clock_advance(clock, 1000), 0);
    ck_assert_int_eq(lease_acquire(&tb, &left, b, "host-b", 1000), 0);
    ck_assert_uint_eq(tb, 2);
    ck_assert_int_eq(lease_acquire(&ta, &left, a, "host-a", 1000), AT_ERR_BUSY);
    ck_assert_uint_eq(ta, 2);

    /* Only the holder with its token can give it back; the counter stays. */
    ck_assert_int_eq(lease_release(a, "host-a", 1), AT_ERR_STALE);
    ck_assert_int_eq(lease_release(a, "host-a", 2), AT_ERR_STALE);
    ck_assert_int_eq(lease_release(b, "host-b", 1), AT_ERR_STALE);
    ck_assert_int_eq(lease_release(b, "host-b", 2), 0);
    ck_assert_int_eq(lease_acquire(&ta, &left, a, "host-a", 1000), 0);
    ck_assert_uint_eq(ta, 3);
    at_store_close(a);
    at_store_close(b);
    ck_assert_int_eq(at_clock_free(clock), 0);
}
END_TEST

/* The schedule's record as the store holds it. */
static void assert_last_fire(at_store *s, const char *name, int64_t fire_at, const char *job_id)
{
    at_schedule *got;
    ck_assert_int_eq(at_schedule_get(&got, s, name), 0);
    ck_assert_int_eq(at_schedule_time(got, AT_SCHEDULE_TIME_LAST_FIRE), fire_at);
    ck_assert_str_eq(at_schedule_last_job_id(got) ? at_schedule_last_job_id(got) : "", job_id);
    at_schedule_free(got);
}

START_TEST(firing_with_a_stale_token_is_rejected_and_changes_nothing)
{
    at_clock *clock;
    ck_assert_int_eq(at_clock_new_manual(&clock, T0), 0);
    at_store *a = open_clocked(clock), *b = open_clocked(clock);
    add_schedule(a, "hourly", "0 * * * *", 1);
    uint64_t ta = 0, tb = 0;
    int64_t left = 0;
    ck_assert_int_eq(lease_acquire(&ta, &left, a, "host-a", 1000), 0);
    ck_assert_int_eq(sched_fired(a, "hourly", T0, JOB_A, ta), 0);
    assert_last_fire(b, "hourly", T0, JOB_A);

    /* Expired but not yet taken over: already fenced. */
    ck_assert_int_eq(at_clock_advance(clock, 1000), 0);
    ck_assert_int_eq(sched_fired(a, "hourly", T0 + 500, JOB_B, ta), AT_ERR_STALE);
    ck_assert_int_eq(lease_acquire(&tb, &left, b, "host-b", 1000), 0);
    ck_assert_uint_eq(tb, ta + 1);
    ck_assert_int_eq(sched_fired(a, "hourly", T0 + 500, JOB_B, ta), AT_ERR_STALE);
    assert_last_fire(b, "hourly", T0, JOB_A);

    /* The new holder's firings count, whoever's handle makes the call (the
     * fence is the token); an older tick never moves the record back. */
    ck_assert_int_eq(sched_fired(b, "hourly", T0 - 500, JOB_B, tb), 0);
    assert_last_fire(a, "hourly", T0, JOB_A);
    ck_assert_int_eq(sched_fired(a, "hourly", T0 + 500, JOB_B, tb), 0);
    assert_last_fire(b, "hourly", T0 + 500, JOB_B);
    ck_assert_int_eq(sched_fired(b, "gone", T0 + 600, JOB_B, tb), AT_ERR_NOTFOUND);
    at_store_close(a);
    at_store_close(b);
    ck_assert_int_eq(at_clock_free(clock), 0);
}
END_TEST

static int64_t user_version(const char *path)
{
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Insert a READY job of type "old" in queue 1 as an older release wrote
 * it, with the columns of version 1, plus the workflow ones (version 3 on)
 * when `wf` is not NULL. */
static void insert_old_job(sqlite3 *db, const char *job_id, int64_t run_at, const char *wf)
{
    uint8_t id[16], w[16];
    ck_assert_int_eq(at_id_parse(id, job_id), 0);
    ck_assert(!wf || at_id_parse(w, wf) == 0);
    char sql[600];
    snprintf(sql, sizeof sql,
             "INSERT INTO jobs(id, qid, state, priority, run_at, attempts, max_attempts, token, created_at,"
             " updated_at, lease_ms, backoff_base_ms, backoff_cap_ms, backoff_jitter, cancel_req, type, payload%s)"
             " VALUES(?1, 1, 3, 0, ?2, 0, 3, 0, ?2, ?2, 30000, 1000, 60000, 0, 0, 'old', x'78'%s)",
             wf ? ", workflow, node" : "", wf ? ", ?3, 'n'" : "");
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, run_at);
    if (wf)
        sqlite3_bind_blob(st, 3, w, 16, SQLITE_STATIC);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

/* A file as a release with schema `version` made it: the steps up to that
 * version, stamped, holding one READY job JOB_A of type "old" in queue
 * "default" written with the columns that version knows. */
static void make_old_store(int version)
{
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(g_db, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL), SQLITE_OK);
    for (int v = 0; v < version; v++) {
        const char *step = at__sqlite_schema_step((size_t)v);
        ck_assert_ptr_nonnull(step);
        ck_assert_msg(sqlite3_exec(db, step, NULL, NULL, NULL) == SQLITE_OK, "step %d: %s", v,
                      sqlite3_errmsg(db));
    }
    char sql[1024];
    snprintf(sql, sizeof sql,
             "PRAGMA application_id=%d; PRAGMA user_version=%d;"
             "INSERT INTO queues(qid, name, n3) VALUES(1, 'default', 1);",
             0x6174736b, version);
    ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    insert_old_job(db, JOB_A, T0, NULL);
    sqlite3_close(db);
    ck_assert_int_eq(user_version(g_db), version);
}

/* The old job as the upgraded store shows it: unchanged, in no workflow,
 * with no trace context. */
static void assert_old_job(at_store *s)
{
    at_job *j;
    ck_assert_int_eq(at_get(&j, s, JOB_A), 0);
    ck_assert_str_eq(at_job_type(j), "old");
    ck_assert_int_eq(at_job_state(j), AT_STATE_READY);
    ck_assert_ptr_null(at_job_workflow_id(j));
    ck_assert_ptr_null(at_job_node(j));
    ck_assert_uint_eq(at_job_parent_count(j), 0);
    ck_assert_ptr_null(at_job_traceparent(j));
    at_job_free(j);
    ck_assert_uint_eq(count_state(s, AT_STATE_READY), 1);
}

START_TEST(version_1_file_is_upgraded_in_place_keeping_its_jobs)
{
    make_old_store(1);
    at_store *s = open_uri(NULL);
    ck_assert_int_eq(user_version(g_db), SCHEMA_NOW);
    assert_old_job(s);
    add_schedule(s, "hourly", "0 * * * *", 1);
    uint64_t token = 0;
    int64_t left = 0;
    ck_assert_int_eq(lease_acquire(&token, &left, s, "host-a", 1000), 0);
    ck_assert_uint_eq(token, 1);
    at_store_close(s);
    assert_integrity(g_db);
}
END_TEST

START_TEST(version_2_file_is_upgraded_in_place_and_its_jobs_can_be_parents)
{
    make_old_store(2);
    at_store *s = open_uri(NULL);
    ck_assert_int_eq(user_version(g_db), SCHEMA_NOW);
    assert_old_job(s);
    /* A row written before the workflow columns existed is a parent like
     * any other: its ack releases the new child. */
    at_workflow *wf;
    ck_assert_int_eq(at_workflow_new(&wf), 0);
    ck_assert_int_eq(at_workflow_add(wf, "after", "new", NULL, 0, NULL), 0);
    ck_assert_int_eq(at_workflow_depend_on_job(wf, "after", JOB_A), 0);
    char wf_id[AT_ID_SIZE];
    int rc = at_workflow_submit(wf_id, s, wf);
    ck_assert_msg(rc == 0, "submit: %s (%s)", at_err_name(rc), at_last_error());
    char after[AT_ID_SIZE];
    snprintf(after, sizeof after, "%s", at_workflow_job_id(wf, "after"));
    at_workflow_free(wf);
    at_job *j;
    ck_assert_int_eq(at_get(&j, s, after), 0);
    ck_assert_int_eq(at_job_state(j), AT_STATE_WAITING);
    ck_assert_str_eq(at_job_parent_id(j, 0), JOB_A);
    at_job_free(j);
    const char *q[] = {"default"};
    size_t n = 0;
    ck_assert_int_eq(at_poll(&j, &n, s, q, 1, 1, 0), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(at_job_id(j), JOB_A);
    ck_assert_int_eq(at_ack(s, JOB_A, at_job_token(j), NULL, 0), 0);
    at_job_free(j);
    ck_assert_int_eq(at_get(&j, s, after), 0);
    ck_assert_int_eq(at_job_state(j), AT_STATE_READY);
    at_job_free(j);
    at_store_close(s);
    assert_integrity(g_db);
}
END_TEST

/* -------------------------------------------------------------- workflows */

/* Submit `wf` on s; the node ids are read with at_workflow_job_id. */
static void submit_wf(char wf_id[AT_ID_SIZE], at_store *s, at_workflow *wf)
{
    int rc = at_workflow_submit(wf_id, s, wf);
    ck_assert_msg(rc == 0, "submit: %s (%s)", at_err_name(rc), at_last_error());
}

static at_workflow *wf_join(const char *queue)
{
    /* a and b, then c waiting for both. */
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, queue);
    at_workflow *wf;
    ck_assert_int_eq(at_workflow_new(&wf), 0);
    ck_assert_int_eq(at_workflow_add(wf, "a", "step", NULL, 0, o), 0);
    ck_assert_int_eq(at_workflow_add(wf, "b", "step", NULL, 0, o), 0);
    ck_assert_int_eq(at_workflow_add(wf, "c", "join", NULL, 0, o), 0);
    ck_assert_int_eq(at_workflow_depend(wf, "c", "a"), 0);
    ck_assert_int_eq(at_workflow_depend(wf, "c", "b"), 0);
    at_opts_free(o);
    return wf;
}

static int32_t state_of(at_store *s, const char *id)
{
    at_job *j;
    ck_assert_int_eq(at_get(&j, s, id), 0);
    int32_t st = at_job_state(j);
    at_job_free(j);
    return st;
}

/* Claim the one ready job of `queue`: it must be `id`. */
static uint64_t claim_id(at_store *s, const char *queue, const char *id)
{
    const char *q[] = {queue};
    at_job *j;
    size_t n = 0;
    ck_assert_int_eq(at_poll(&j, &n, s, q, 1, 1, 0), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(at_job_id(j), id);
    uint64_t token = at_job_token(j);
    at_job_free(j);
    return token;
}

START_TEST(waiting_child_survives_reopening_and_is_released_through_another_connection)
{
    at_store *s = open_uri("?sync=normal");
    at_workflow *wf = wf_join("wq");
    char wf_id[AT_ID_SIZE], a[AT_ID_SIZE], b[AT_ID_SIZE], c[AT_ID_SIZE];
    submit_wf(wf_id, s, wf);
    snprintf(a, sizeof a, "%s", at_workflow_job_id(wf, "a"));
    snprintf(b, sizeof b, "%s", at_workflow_job_id(wf, "b"));
    snprintf(c, sizeof c, "%s", at_workflow_job_id(wf, "c"));
    at_workflow_free(wf);
    uint64_t ta = claim_id(s, "wq", a);
    uint64_t tb = claim_id(s, "wq", b);
    ck_assert_int_eq(at_ack(s, a, ta, NULL, 0), 0);
    at_store_close(s);

    /* Mid-way, from the file alone: c still waits for b, and knows both. */
    s = open_uri("?sync=normal");
    at_job *j;
    ck_assert_int_eq(at_get(&j, s, c), 0);
    ck_assert_int_eq(at_job_state(j), AT_STATE_WAITING);
    ck_assert_uint_eq(at_job_parents_left(j), 1);
    ck_assert_uint_eq(at_job_parent_count(j), 2);
    ck_assert_str_eq(at_job_parent_id(j, 0), a);
    ck_assert_str_eq(at_job_parent_id(j, 1), b);
    ck_assert_str_eq(at_job_workflow_id(j), wf_id);
    ck_assert_str_eq(at_job_node(j), "c");
    at_job_free(j);
    const char *q[] = {"wq"};
    size_t n = 1;
    ck_assert_int_eq(at_poll(&j, &n, s, q, 1, 1, 0), 0);
    ck_assert_uint_eq(n, 0); /* a waiting job is never claimable */

    /* b's holder acks through a connection of its own, as another process
     * would: the first connection sees c released and can claim it. */
    at_store *other = open_uri("?sync=normal");
    ck_assert_int_eq(at_ack(other, b, tb, NULL, 0), 0);
    at_store_close(other);
    ck_assert_int_eq(state_of(s, c), AT_STATE_READY);
    uint64_t counts[AT_STATE_COUNT__];
    int32_t done = -1, failed = -1;
    ck_assert_int_eq(at_workflow_status(&done, &failed, counts, s, wf_id), 0);
    ck_assert_int_eq(done, 0);
    ck_assert_uint_eq(counts[AT_STATE_SUCCEEDED], 2);
    ck_assert_uint_eq(counts[AT_STATE_READY], 1);
    ck_assert_uint_eq(counts[AT_STATE_WAITING], 0);
    ck_assert_int_eq(at_ack(s, c, claim_id(s, "wq", c), NULL, 0), 0);
    ck_assert_int_eq(at_workflow_status(&done, &failed, counts, s, wf_id), 0);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(failed, 0);
    ck_assert_uint_eq(counts[AT_STATE_SUCCEEDED], 3);
    at_store_close(s);
    assert_integrity(g_db);
}
END_TEST

#define RACE_ROUNDS 20

struct race_arg {
    char id[AT_ID_SIZE];
    uint64_t token;
    int go[2]; /* closed by the parent to start both at once */
};

static void race_acker(void *arg, int fd)
{
    struct race_arg *r = arg;
    at_store *s;
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s?sync=normal", g_db);
    /* Only the parent may hold the write end, or the read never ends. */
    close(r->go[1]);
    if (at_store_open(&s, uri) != 0)
        _exit(2);
    if (write(fd, "r", 1) != 1)
        _exit(3);
    char c;
    while (read(r->go[0], &c, 1) > 0)
        ;
    int rc = at_ack(s, r->id, r->token, NULL, 0);
    at_store_close(s);
    _exit(rc == 0 ? 0 : 10 - rc);
}

START_TEST(two_processes_acking_the_last_two_parents_release_the_child_once)
{
    char wf_ids[RACE_ROUNDS][AT_ID_SIZE], cs[RACE_ROUNDS][AT_ID_SIZE], queue[RACE_ROUNDS][16];
    for (int round = 0; round < RACE_ROUNDS; round++) {
        /* A queue per round: the joins released earlier stay out of the
         * way of this round's claims. */
        snprintf(queue[round], sizeof queue[round], "race%d", round);
        at_store *s = open_uri("?sync=normal");
        at_workflow *wf = wf_join(queue[round]);
        submit_wf(wf_ids[round], s, wf);
        struct race_arg r[2];
        snprintf(r[0].id, sizeof r[0].id, "%s", at_workflow_job_id(wf, "a"));
        snprintf(r[1].id, sizeof r[1].id, "%s", at_workflow_job_id(wf, "b"));
        snprintf(cs[round], sizeof cs[round], "%s", at_workflow_job_id(wf, "c"));
        at_workflow_free(wf);
        r[0].token = claim_id(s, queue[round], r[0].id);
        r[1].token = claim_id(s, queue[round], r[1].id);
        at_store_close(s); /* no store crosses fork() */
        int go[2];
        ck_assert_int_eq(pipe(go), 0);
        pid_t pids[2];
        int fds[2];
        for (int k = 0; k < 2; k++) {
            r[k].go[0] = go[0];
            r[k].go[1] = go[1];
            pids[k] = spawn(race_acker, &r[k], &fds[k]);
        }
        close(go[0]);
        char c;
        for (int k = 0; k < 2; k++)
            ck_assert_int_eq(read(fds[k], &c, 1), 1);
        close(go[1]); /* both are blocked on it: they ack together */
        for (int k = 0; k < 2; k++) {
            int st;
            waitpid(pids[k], &st, 0);
            close(fds[k]);
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "round %d: acker %d status %d", round, k,
                          st);
        }
    }
    at_store *s = open_uri("?sync=normal");
    /* Each join is READY once: the queue counts, its workflow's counts and
     * the claims agree. */
    ck_assert_uint_eq(count_state(s, AT_STATE_READY), RACE_ROUNDS);
    ck_assert_uint_eq(count_state(s, AT_STATE_WAITING), 0);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        uint64_t counts[AT_STATE_COUNT__];
        ck_assert_int_eq(at_workflow_status(NULL, NULL, counts, s, wf_ids[round]), 0);
        ck_assert_uint_eq(counts[AT_STATE_SUCCEEDED], 2);
        ck_assert_uint_eq(counts[AT_STATE_READY], 1);
        ck_assert_uint_eq(counts[AT_STATE_WAITING], 0);
        at_job *j;
        ck_assert_int_eq(at_get(&j, s, cs[round]), 0);
        ck_assert_int_eq(at_job_state(j), AT_STATE_READY);
        ck_assert_uint_eq(at_job_parents_left(j), 0);
        at_job_free(j);
        const char *q[] = {queue[round]};
        at_job *jobs[2];
        size_t n = 0;
        ck_assert_int_eq(at_poll(jobs, &n, s, q, 1, 2, 0), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(at_job_id(jobs[0]), cs[round]);
        at_job_free(jobs[0]);
    }
    at_store_close(s);
    assert_integrity(g_db);
}
END_TEST

#define FAN 10000

START_TEST(fan_out_of_10000_and_fan_in_release_the_merge_after_the_last_ack)
{
    at_store *s = open_uri("?sync=normal");
    at_workflow *wf;
    ck_assert_int_eq(at_workflow_new(&wf), 0);
    ck_assert_int_eq(at_workflow_add(wf, "root", "split", NULL, 0, NULL), 0);
    char name[32];
    for (int i = 0; i < FAN; i++) {
        snprintf(name, sizeof name, "c%d", i);
        ck_assert_int_eq(at_workflow_add(wf, name, "chunk", NULL, 0, NULL), 0);
        ck_assert_int_eq(at_workflow_depend(wf, name, "root"), 0);
    }
    ck_assert_int_eq(at_workflow_add(wf, "merge", "merge", NULL, 0, NULL), 0);
    for (int i = 0; i < FAN; i++) {
        snprintf(name, sizeof name, "c%d", i);
        ck_assert_int_eq(at_workflow_depend(wf, "merge", name), 0);
    }
    char wf_id[AT_ID_SIZE], root[AT_ID_SIZE], merge[AT_ID_SIZE];
    submit_wf(wf_id, s, wf);
    snprintf(root, sizeof root, "%s", at_workflow_job_id(wf, "root"));
    snprintf(merge, sizeof merge, "%s", at_workflow_job_id(wf, "merge"));
    at_workflow_free(wf);
    uint64_t counts[AT_STATE_COUNT__];
    ck_assert_int_eq(at_workflow_status(NULL, NULL, counts, s, wf_id), 0);
    ck_assert_uint_eq(counts[AT_STATE_READY], 1);
    ck_assert_uint_eq(counts[AT_STATE_WAITING], FAN + 1);
    at_job *m;
    ck_assert_int_eq(at_get(&m, s, merge), 0);
    ck_assert_uint_eq(at_job_parent_count(m), FAN);
    ck_assert_uint_eq(at_job_parents_left(m), FAN);
    at_job_free(m);

    ck_assert_int_eq(at_ack(s, root, claim_id(s, "default", root), NULL, 0), 0);
    ck_assert_uint_eq(count_state(s, AT_STATE_READY), FAN);
    const char *q[] = {"default"};
    size_t acked = 0;
    while (acked < FAN) {
        at_job *jobs[500];
        const char *ids[500];
        uint64_t tokens[500];
        int32_t res[500];
        size_t n = 0;
        ck_assert_int_eq(at_poll(jobs, &n, s, q, 1, 500, 0), 0);
        ck_assert_uint_eq(n, 500);
        for (size_t i = 0; i < n; i++) {
            ck_assert_str_eq(at_job_type(jobs[i]), "chunk");
            ids[i] = at_job_id(jobs[i]);
            tokens[i] = at_job_token(jobs[i]);
        }
        ck_assert_int_eq(at_ack_many(res, s, n, ids, tokens), 0);
        for (size_t i = 0; i < n; i++) {
            ck_assert_int_eq(res[i], 0);
            at_job_free(jobs[i]);
        }
        acked += n;
        ck_assert_int_eq(at_get(&m, s, merge), 0);
        ck_assert_int_eq(at_job_state(m), acked < FAN ? AT_STATE_WAITING : AT_STATE_READY);
        ck_assert_uint_eq(at_job_parents_left(m), FAN - acked);
        at_job_free(m);
    }
    ck_assert_int_eq(at_ack(s, merge, claim_id(s, "default", merge), NULL, 0), 0);
    int32_t done = 0;
    ck_assert_int_eq(at_workflow_status(&done, NULL, counts, s, wf_id), 0);
    ck_assert_int_eq(done, 1);
    ck_assert_uint_eq(counts[AT_STATE_SUCCEEDED], FAN + 2);
    at_store_close(s);
}
END_TEST

START_TEST(purging_a_finished_workflow_forgets_it_and_its_edges)
{
    at_store *s = open_uri("?sync=normal");
    at_workflow *wf = wf_join("default");
    char wf_id[AT_ID_SIZE];
    submit_wf(wf_id, s, wf);
    const char *order[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        const char *id = at_workflow_job_id(wf, order[i]);
        ck_assert_int_eq(at_ack(s, id, claim_id(s, "default", id), NULL, 0), 0);
    }
    at_workflow_free(wf);
    uint64_t n = 0;
    sleep_ms(3); /* purge takes jobs finished strictly before now - 0 */
    ck_assert_int_eq(at_purge(&n, s, 0), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(at_workflow_status(NULL, NULL, NULL, s, wf_id), AT_ERR_NOTFOUND);
    at_store_close(s);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(g_db, &db), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT (SELECT count(*) FROM deps) + (SELECT count(*) FROM wf_jobs)"
                                        " + (SELECT count(*) FROM workflows)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
}
END_TEST

/* --------------------------------------------------------- worker support */

static void enqueue_in(char id[AT_ID_SIZE], at_store *s, const char *queue, int64_t delay_ms)
{
    at_opts *o;
    ck_assert_int_eq(at_opts_new(&o), 0);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_QUEUE, queue), 0);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_DELAY_MS, delay_ms), 0);
    int rc = at_enqueue(id, s, "work", "x", 1, o);
    ck_assert_msg(rc == 0, "enqueue: %s (%s)", at_err_name(rc), at_last_error());
    at_opts_free(o);
}

/* Claim through the backend directly: the wake time is what a blocked
 * poller would sleep until. */
static size_t claim_raw(at_job **jobs, size_t max, int64_t *wake, at_store *s, const char *const *q, size_t nq)
{
    size_t n = 0;
    int rc = s->vt->claim(jobs, &n, wake, s->be, q, nq, max);
    ck_assert_msg(rc == 0, "claim: %s (%s)", at_err_name(rc), at_last_error());
    return n;
}

static void assert_paused(at_store *s, const char *queue, int32_t want)
{
    int32_t p = -1;
    ck_assert_int_eq(at_queue_is_paused(&p, s, queue), 0);
    ck_assert_int_eq(p, want);
}

START_TEST(release_gives_the_claim_back_without_using_an_attempt)
{
    at_clock *clock;
    ck_assert_int_eq(at_clock_new_manual(&clock, T0), 0);
    at_store *a = open_clocked(clock), *b = open_clocked(clock);
    char id[AT_ID_SIZE];
    enqueue_in(id, a, "rq", 0);
    uint64_t t1 = claim_id(a, "rq", id);

    /* Given back through another connection, as another process would. */
    ck_assert_int_eq(at_release(b, id, t1, 0), 0);
    at_job *j;
    ck_assert_int_eq(at_get(&j, a, id), 0);
    ck_assert_int_eq(at_job_state(j), AT_STATE_READY);
    ck_assert_uint_eq(at_job_attempts(j), 0);
    ck_assert_int_eq(at_job_time(j, AT_JOB_TIME_LEASE), AT_TIME_NONE);
    at_job_free(j);
    ck_assert_uint_eq(count_state(a, AT_STATE_READY), 1);
    ck_assert_uint_eq(count_state(a, AT_STATE_RUNNING), 0);
    ck_assert_int_eq(at_ack(a, id, t1, NULL, 0), AT_ERR_STALE);
    ck_assert_int_eq(at_release(a, id, t1, 0), AT_ERR_STALE);
    ck_assert_int_eq(at_release(a, JOB_B, t1, 0), AT_ERR_NOTFOUND);

    /* Claimed again under a new token; with a delay it waits out its time
     * as SCHEDULED. */
    uint64_t t2 = claim_id(b, "rq", id);
    ck_assert_uint_ne(t2, t1);
    ck_assert_int_eq(at_release(a, id, t1, 0), AT_ERR_STALE);
    ck_assert_int_eq(at_release(a, id, t2, 500), 0);
    ck_assert_int_eq(at_get(&j, b, id), 0);
    ck_assert_int_eq(at_job_state(j), AT_STATE_SCHEDULED);
    ck_assert_int_eq(at_job_time(j, AT_JOB_TIME_RUN_AT), T0 + 500);
    ck_assert_uint_eq(at_job_attempts(j), 0);
    at_job_free(j);
    ck_assert_uint_eq(count_state(a, AT_STATE_SCHEDULED), 1);
    const char *q[] = {"rq"};
    size_t n = 1;
    ck_assert_int_eq(at_poll(&j, &n, b, q, 1, 1, 0), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(at_clock_advance(clock, 500), 0);

    /* Two releases, one run: the job ends with the one attempt it used. */
    uint64_t t3 = claim_id(b, "rq", id);
    ck_assert_int_eq(at_ack(a, id, t2, NULL, 0), AT_ERR_STALE);
    ck_assert_int_eq(at_ack(a, id, t3, NULL, 0), 0);
    ck_assert_int_eq(at_get(&j, b, id), 0);
    ck_assert_int_eq(at_job_state(j), AT_STATE_SUCCEEDED);
    ck_assert_uint_eq(at_job_attempts(j), 1);
    at_job_free(j);
    ck_assert_uint_eq(count_state(b, AT_STATE_SUCCEEDED), 1);
    ck_assert_uint_eq(count_state(b, AT_STATE_READY) + count_state(b, AT_STATE_SCHEDULED) +
                          count_state(b, AT_STATE_RUNNING),
                      0);
    at_store_close(a);
    at_store_close(b);
    ck_assert_int_eq(at_clock_free(clock), 0);
    assert_integrity(g_db);
}
END_TEST

START_TEST(releasing_a_job_marked_for_cancellation_cancels_it_and_its_children)
{
    at_store *s = open_uri("?sync=normal");
    at_workflow *wf = wf_join("cq");
    char wf_id[AT_ID_SIZE], a[AT_ID_SIZE], b[AT_ID_SIZE], c[AT_ID_SIZE];
    submit_wf(wf_id, s, wf);
    snprintf(a, sizeof a, "%s", at_workflow_job_id(wf, "a"));
    snprintf(b, sizeof b, "%s", at_workflow_job_id(wf, "b"));
    snprintf(c, sizeof c, "%s", at_workflow_job_id(wf, "c"));
    at_workflow_free(wf);
    uint64_t ta = claim_id(s, "cq", a);
    int32_t pending = 0;
    ck_assert_int_eq(at_cancel(&pending, s, a), 0);
    ck_assert_int_eq(pending, 1);
    ck_assert_int_eq(at_release(s, a, ta, 0), AT_ERR_CANCELLED);
    ck_assert_int_eq(state_of(s, a), AT_STATE_CANCELLED);
    /* c waited for a: cancelled in the same commit (the default policy). */
    ck_assert_int_eq(state_of(s, c), AT_STATE_CANCELLED);
    ck_assert_int_eq(state_of(s, b), AT_STATE_READY);
    ck_assert_uint_eq(count_state(s, AT_STATE_CANCELLED), 2);
    ck_assert_uint_eq(count_state(s, AT_STATE_RUNNING), 0);
    ck_assert_uint_eq(count_state(s, AT_STATE_WAITING), 0);
    uint64_t counts[AT_STATE_COUNT__];
    int32_t done = -1, failed = -1;
    ck_assert_int_eq(at_workflow_status(&done, &failed, counts, s, wf_id), 0);
    ck_assert_uint_eq(counts[AT_STATE_CANCELLED], 2);
    ck_assert_uint_eq(counts[AT_STATE_READY], 1);
    ck_assert_int_eq(at_release(s, a, ta, 0), AT_ERR_CANCELLED);
    at_store_close(s);
    assert_integrity(g_db);
}
END_TEST

START_TEST(a_pause_through_one_handle_stops_claims_through_another)
{
    at_clock *clock;
    ck_assert_int_eq(at_clock_new_manual(&clock, T0), 0);
    at_store *a = open_clocked(clock), *b = open_clocked(clock);
    char p1[AT_ID_SIZE], p2[AT_ID_SIZE], late[AT_ID_SIZE], other[AT_ID_SIZE];
    enqueue_in(p1, a, "pq", 0);
    enqueue_in(p2, a, "pq", 0);
    enqueue_in(late, a, "pq", 100);
    enqueue_in(other, a, "oq", 0);
    assert_paused(b, "pq", 0);
    ck_assert_int_eq(at_queue_pause(a, "pq"), 0);
    assert_paused(b, "pq", 1);
    assert_paused(b, "oq", 0);
    ck_assert_int_eq(at_clock_advance(clock, 100), 0);

    /* Only the other queue's job; the paused queue's jobs stay READY, and
     * its due job sets no wake time (it would be "now": a spinning
     * poller). */
    const char *both[] = {"pq", "oq"};
    at_job *jobs[8];
    int64_t wake = 0;
    ck_assert_uint_eq(claim_raw(jobs, 8, &wake, b, both, 2), 1);
    ck_assert_str_eq(at_job_id(jobs[0]), other);
    uint64_t to = at_job_token(jobs[0]);
    at_job_free(jobs[0]);
    ck_assert_uint_eq(claim_raw(jobs, 8, &wake, b, both, 2), 0);
    /* Only the running job's lease is known to make work. */
    ck_assert_int_eq(wake, at_store_clock_mono(b) + 30000);
    ck_assert_int_eq(at_ack(b, other, to, NULL, 0), 0);
    ck_assert_uint_eq(claim_raw(jobs, 8, &wake, b, both, 2), 0);
    ck_assert_int_eq(wake, AT_TIME_NONE);
    ck_assert_uint_eq(claim_raw(jobs, 8, &wake, a, both, 2), 0);
    ck_assert_int_eq(wake, AT_TIME_NONE);
    ck_assert_int_eq(state_of(b, p1), AT_STATE_READY);
    ck_assert_int_eq(state_of(b, p2), AT_STATE_READY);

    /* Resumed: claimable at once, everywhere. */
    ck_assert_int_eq(at_queue_resume(a, "pq"), 0);
    assert_paused(b, "pq", 0);
    ck_assert_uint_eq(claim_raw(jobs, 8, &wake, b, both, 2), 3);
    for (size_t i = 0; i < 3; i++)
        at_job_free(jobs[i]);
    ck_assert_uint_eq(count_state(a, AT_STATE_RUNNING), 3);

    /* Any valid name: a queue with no jobs, and one the store never saw. */
    ck_assert_int_eq(at_queue_pause(b, "empty"), 0);
    assert_paused(a, "empty", 1);
    assert_paused(a, "never-seen", 0);
    ck_assert_int_eq(at_queue_resume(a, "never-seen"), 0);
    assert_paused(b, "never-seen", 0);
    ck_assert_int_eq(at_queue_pause(a, "bad name"), AT_ERR_NAME);
    at_store_close(a);
    at_store_close(b);
    ck_assert_int_eq(at_clock_free(clock), 0);
}
END_TEST

START_TEST(the_paused_flag_survives_reopening)
{
    at_store *s = open_uri("?sync=normal");
    ck_assert_int_eq(at_queue_pause(s, "pq"), 0);
    ck_assert_int_eq(at_queue_pause(s, "gone"), 0);
    ck_assert_int_eq(at_queue_resume(s, "gone"), 0);
    at_store_close(s);

    s = open_uri("?sync=normal");
    assert_paused(s, "pq", 1);
    assert_paused(s, "gone", 0);
    char id[AT_ID_SIZE];
    enqueue_in(id, s, "pq", 0);
    const char *q[] = {"pq"};
    at_job *j;
    size_t n = 1;
    ck_assert_int_eq(at_poll(&j, &n, s, q, 1, 1, 0), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(at_queue_resume(s, "pq"), 0);
    ck_assert_int_eq(at_ack(s, id, claim_id(s, "pq", id), NULL, 0), 0);
    at_store_close(s);
    assert_integrity(g_db);
}
END_TEST

static uint32_t take(int64_t *wait, at_store *s, uint32_t limit, int64_t period, uint32_t want)
{
    uint32_t got = UINT32_MAX;
    *wait = -1;
    int rc = at__store_rate_take(&got, wait, s, "rq", limit, period, want);
    ck_assert_msg(rc == 0, "rate_take: %s (%s)", at_err_name(rc), at_last_error());
    ck_assert_uint_le(got, want);
    ck_assert(got == 0 ? *wait > 0 : *wait == 0);
    return got;
}

START_TEST(two_handles_share_one_token_bucket)
{
    at_clock *clock;
    ck_assert_int_eq(at_clock_new_manual(&clock, T0), 0);
    at_store *h[2] = {open_clocked(clock), open_clocked(clock)};
    int64_t wait = 0;
    /* 5 per second: a new bucket starts full, and the two handles drain
     * it together. */
    uint32_t total = 0;
    for (int i = 0; i < 8; i++)
        total += take(&wait, h[i % 2], 5, 1000, 1);
    ck_assert_uint_eq(total, 5);
    ck_assert_int_eq(wait, 200); /* one token per 200 ms */
    ck_assert_int_eq(at_clock_advance(clock, 199), 0);
    ck_assert_uint_eq(take(&wait, h[1], 5, 1000, 1), 0);
    ck_assert_int_eq(wait, 1);
    ck_assert_int_eq(at_clock_advance(clock, 1), 0);
    ck_assert_uint_eq(take(&wait, h[0], 5, 1000, 3), 1);
    ck_assert_uint_eq(take(&wait, h[1], 5, 1000, 1), 0);
    ck_assert_int_eq(wait, 200);

    /* Refill is continuous and stops at the capacity. */
    ck_assert_int_eq(at_clock_advance(clock, 450), 0);
    ck_assert_uint_eq(take(&wait, h[1], 5, 1000, 5), 2);
    ck_assert_int_eq(at_clock_advance(clock, 10000), 0);
    ck_assert_uint_eq(take(&wait, h[0], 5, 1000, 3), 3);
    ck_assert_uint_eq(take(&wait, h[1], 5, 1000, 3), 2);
    ck_assert_uint_eq(take(&wait, h[0], 5, 1000, 3), 0);
    ck_assert_int_eq(wait, 200);

    /* Another limit than the bucket was filled for: full again. */
    ck_assert_uint_eq(take(&wait, h[1], 3, 60000, 10), 3);
    ck_assert_uint_eq(take(&wait, h[0], 3, 60000, 1), 0);
    ck_assert_int_eq(wait, 20000);
    /* A year idle refills without overflowing. */
    ck_assert_int_eq(at_clock_advance(clock, INT64_C(365) * 86400000), 0);
    ck_assert_uint_eq(take(&wait, h[0], 3, 60000, 10), 3);
    at_store_close(h[0]);

    /* The bucket is in the file: a new handle sees it drained. */
    h[0] = open_clocked(clock);
    ck_assert_uint_eq(take(&wait, h[0], 3, 60000, 1), 0);
    ck_assert_int_eq(wait, 20000);
    at_store_close(h[0]);
    at_store_close(h[1]);
    ck_assert_int_eq(at_clock_free(clock), 0);
}
END_TEST

START_TEST(version_3_file_is_upgraded_in_place_for_worker_support)
{
    make_old_store(3);
    at_store *s = open_uri(NULL);
    ck_assert_int_eq(user_version(g_db), SCHEMA_NOW);
    assert_old_job(s);
    /* The queue made before the flag existed reads "not paused". */
    assert_paused(s, "default", 0);
    ck_assert_int_eq(at_queue_pause(s, "default"), 0);
    const char *q[] = {"default"};
    at_job *j;
    size_t n = 1;
    ck_assert_int_eq(at_poll(&j, &n, s, q, 1, 1, 0), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(at_queue_resume(s, "default"), 0);
    uint64_t t = claim_id(s, "default", JOB_A);
    ck_assert_int_eq(at_release(s, JOB_A, t, 0), 0);
    t = claim_id(s, "default", JOB_A);
    ck_assert_int_eq(at_ack(s, JOB_A, t, NULL, 0), 0);
    uint32_t got = 0;
    int64_t wait = 0;
    ck_assert_int_eq(at__store_rate_take(&got, &wait, s, "default", 2, 1000, 5), 0);
    ck_assert_uint_eq(got, 2);
    at_store_close(s);
    assert_integrity(g_db);
}
END_TEST

/* ---------------------------------------------------------- trace context */

#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

START_TEST(version_4_file_is_upgraded_in_place_and_keeps_its_jobs)
{
    make_old_store(4);
    at_store *s = open_uri(NULL);
    ck_assert_int_eq(user_version(g_db), SCHEMA_NOW);
    assert_old_job(s);
    /* New jobs carry their traceparent, through enqueue and workflow
     * submit, and a plain one still has none. */
    at_opts *o;
    ck_assert_int_eq(at_opts_new(&o), 0);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_TRACEPARENT, TRACEPARENT), 0);
    char traced[AT_ID_SIZE], plain[AT_ID_SIZE];
    ck_assert_int_eq(at_enqueue(traced, s, "new", NULL, 0, o), 0);
    ck_assert_int_eq(at_enqueue(plain, s, "new", NULL, 0, NULL), 0);
    at_workflow *wf;
    ck_assert_int_eq(at_workflow_new(&wf), 0);
    ck_assert_int_eq(at_workflow_add(wf, "a", "step", NULL, 0, o), 0);
    ck_assert_int_eq(at_workflow_add(wf, "b", "step", NULL, 0, NULL), 0);
    ck_assert_int_eq(at_workflow_depend(wf, "b", "a"), 0);
    char wf_id[AT_ID_SIZE], node_a[AT_ID_SIZE], node_b[AT_ID_SIZE];
    submit_wf(wf_id, s, wf);
    snprintf(node_a, sizeof node_a, "%s", at_workflow_job_id(wf, "a"));
    snprintf(node_b, sizeof node_b, "%s", at_workflow_job_id(wf, "b"));
    at_workflow_free(wf);
    at_opts_free(o);
    at_store_close(s);

    /* Reopened: the file is not upgraded twice and everything is kept. */
    s = open_uri(NULL);
    ck_assert_int_eq(user_version(g_db), SCHEMA_NOW);
    at_job *j;
    ck_assert_int_eq(at_get(&j, s, traced), 0);
    ck_assert_str_eq(at_job_traceparent(j), TRACEPARENT);
    at_job_free(j);
    ck_assert_int_eq(at_get(&j, s, plain), 0);
    ck_assert_ptr_null(at_job_traceparent(j));
    at_job_free(j);
    at_job *members[4];
    size_t n = 0;
    char cursor[AT_ID_SIZE];
    ck_assert_int_eq(at_workflow_jobs(members, &n, cursor, s, wf_id, NULL, 4), 0);
    ck_assert_uint_eq(n, 2);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(at_job_id(members[i]), node_a) == 0)
            ck_assert_str_eq(at_job_traceparent(members[i]), TRACEPARENT);
        else
            ck_assert_ptr_null(at_job_traceparent(members[i]));
        at_job_free(members[i]);
    }
    /* Every claim returns its job's trace context, old rows' included. */
    const char *q[] = {"default"};
    at_job *claimed[4];
    ck_assert_int_eq(at_poll(claimed, &n, s, q, 1, 4, 0), 0);
    ck_assert_uint_eq(n, 4);
    size_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = at_job_id(claimed[i]);
        const char *tp = at_job_traceparent(claimed[i]);
        if (strcmp(id, traced) == 0 || strcmp(id, node_a) == 0) {
            ck_assert_str_eq(tp, TRACEPARENT);
            seen++;
        } else {
            ck_assert_msg(strcmp(id, JOB_A) == 0 || strcmp(id, plain) == 0, "claimed %s", id);
            ck_assert_ptr_null(tp);
        }
        at_job_free(claimed[i]);
    }
    ck_assert_uint_eq(seen, 2);
    ck_assert_int_eq(state_of(s, node_b), AT_STATE_WAITING);
    at_store_close(s);
    assert_integrity(g_db);
}
END_TEST

/* ------------------------------------------------------------------ plans */

START_TEST(every_statement_searches_jobs_through_an_index)
{
    at_store_close(open_uri(NULL));
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(g_db, &db), SQLITE_OK);
    int seen_claim = 0, seen_due = 0, seen_idem = 0, seen_list = 0, seen_purge = 0, seen_lease = 0;
    int seen_children = 0, seen_parents = 0, seen_members = 0;
    for (size_t i = 0; at__sqlite_statement(i); i++) {
        const char *sql = at__sqlite_statement(i);
        char eqp[2048];
        snprintf(eqp, sizeof eqp, "EXPLAIN QUERY PLAN %s", sql);
        sqlite3_stmt *st;
        ck_assert_msg(sqlite3_prepare_v2(db, eqp, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
        char plan[4096] = "";
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *d = (const char *)sqlite3_column_text(st, 3);
            strncat(plan, d, sizeof plan - strlen(plan) - 2);
            strcat(plan, "\n");
        }
        sqlite3_finalize(st);
        /* The one scan allowed: the running jobs of a queue are found through
         * the lease index, which holds only running jobs (bounded by the
         * workers' concurrency). */
        int lease_scan = strstr(plan, "SCAN jobs USING INDEX jobs_lease") != NULL;
        ck_assert_msg(!strstr(plan, "SCAN jobs") || lease_scan, "%s\nscans jobs:\n%s", sql, plan);
        ck_assert_msg(!strstr(plan, "SCAN idem"), "%s\nscans idem:\n%s", sql, plan);
        /* Workflows: a finishing job's children, a job's parents and a
         * workflow's members are each one index range. */
        ck_assert_msg(!strstr(plan, "SCAN deps") && !strstr(plan, "SCAN wf_jobs") &&
                          !strstr(plan, "SCAN workflows"),
                      "%s\nscans a workflow table:\n%s", sql, plan);
        if (strstr(plan, "SEARCH deps USING PRIMARY KEY (parent=?)"))
            seen_children = 1;
        if (strstr(plan, "deps_child (child=?)"))
            seen_parents = 1;
        if (strstr(plan, "SEARCH w USING PRIMARY KEY (workflow=?)") ||
            strstr(plan, "SEARCH wf_jobs USING PRIMARY KEY (workflow=?"))
            seen_members = 1;
        if (strstr(sql, "ORDER BY priority DESC") && strstr(plan, "INDEX jobs_ready (qid=?)"))
            seen_claim = 1;
        if (strstr(plan, "jobs_sched (qid=? AND run_at<?)"))
            seen_due = 1;
        if (strstr(plan, "SEARCH idem USING PRIMARY KEY (key=?)"))
            seen_idem = 1;
        if (strstr(plan, "COVERING INDEX jobs_list (qid=? AND state=? AND id>?)"))
            seen_list = 1;
        if (strstr(plan, "jobs_fin (finished_at<?)"))
            seen_purge = 1;
        if (strstr(plan, "jobs_lease (lease_until<?)"))
            seen_lease = 1;
    }
    sqlite3_close(db);
    ck_assert_msg(seen_claim, "no claim through jobs_ready");
    ck_assert_msg(seen_due, "no due lookup through jobs_sched");
    ck_assert_msg(seen_idem, "no idempotency lookup by primary key");
    ck_assert_msg(seen_list, "no listing through jobs_list");
    ck_assert_msg(seen_purge, "no purge through jobs_fin");
    ck_assert_msg(seen_lease, "no lease expiry through jobs_lease");
    ck_assert_msg(seen_children, "no children lookup by the deps primary key");
    ck_assert_msg(seen_parents, "no parents lookup through deps_child");
    ck_assert_msg(seen_members, "no member lookup by the wf_jobs primary key");
}
END_TEST

/* A workflow job a release of version 5 wrote: its insert trigger added
 * the membership row and the count (version 6 drops that trigger). */
#define OLD_WF "01HF00000000000000000000WF"
#define OLD_WF_JOB "01HF0000000000000000000WJ1"

START_TEST(version_5_file_is_upgraded_and_workflows_are_counted_without_the_insert_trigger)
{
    make_old_store(5);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(g_db, &db), SQLITE_OK);
    insert_old_job(db, OLD_WF_JOB, T0 + 1, OLD_WF);
    ck_assert_int_eq(sqlite3_exec(db, "UPDATE queues SET n3 = n3 + 1 WHERE qid = 1", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    at_store *s = open_uri(NULL);
    ck_assert_int_eq(user_version(g_db), SCHEMA_NOW);
    ck_assert_int_eq(sqlite3_open(g_db, &db), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name = 'jobs_wf_insert'", -1,
                                        &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* The old workflow keeps what the trigger wrote. */
    int32_t done, failed;
    uint64_t counts[AT_STATE_COUNT__];
    ck_assert_int_eq(at_workflow_status(&done, &failed, counts, s, OLD_WF), 0);
    ck_assert_uint_eq(counts[AT_STATE_READY], 1);
    ck_assert_int_eq(done, 0);

    /* A new workflow gets its membership and counts from submit itself; a
     * plain job is in none. */
    at_workflow *w;
    ck_assert_int_eq(at_workflow_new(&w), 0);
    ck_assert_int_eq(at_workflow_add(w, "a", "step", NULL, 0, NULL), 0);
    ck_assert_int_eq(at_workflow_add(w, "b", "step", NULL, 0, NULL), 0);
    ck_assert_int_eq(at_workflow_depend(w, "b", "a"), 0);
    char wf_id[AT_ID_SIZE], node_a[AT_ID_SIZE];
    submit_wf(wf_id, s, w);
    snprintf(node_a, sizeof node_a, "%s", at_workflow_job_id(w, "a"));
    at_workflow_free(w);
    ck_assert_int_eq(at_enqueue(NULL, s, "plain", NULL, 0, NULL), 0);
    ck_assert_int_eq(at_workflow_status(&done, &failed, counts, s, wf_id), 0);
    ck_assert_uint_eq(counts[AT_STATE_READY], 1);
    ck_assert_uint_eq(counts[AT_STATE_WAITING], 1);
    at_job *members[4];
    size_t n = 0;
    char cursor[AT_ID_SIZE];
    ck_assert_int_eq(at_workflow_jobs(members, &n, cursor, s, wf_id, NULL, 4), 0);
    ck_assert_uint_eq(n, 2);
    for (size_t i = 0; i < n; i++)
        at_job_free(members[i]);

    /* The update trigger still follows both workflows' jobs. */
    const char *q[] = {"default"};
    at_job *claimed[8];
    ck_assert_int_eq(at_poll(claimed, &n, s, q, 1, 8, 0), 0);
    ck_assert_uint_eq(n, 4); /* JOB_A, OLD_WF_JOB, a, plain */
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(at_ack(s, at_job_id(claimed[i]), at_job_token(claimed[i]), NULL, 0), 0);
        at_job_free(claimed[i]);
    }
    ck_assert_int_eq(at_workflow_status(&done, &failed, counts, s, OLD_WF), 0);
    ck_assert_uint_eq(counts[AT_STATE_SUCCEEDED], 1);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(at_workflow_status(&done, &failed, counts, s, wf_id), 0);
    ck_assert_uint_eq(counts[AT_STATE_SUCCEEDED], 1);
    ck_assert_uint_eq(counts[AT_STATE_READY], 1); /* b, released by a's ack */
    ck_assert_uint_eq(counts[AT_STATE_WAITING], 0);
    at_store_close(s);
    assert_integrity(g_db);
}
END_TEST

/* ------------------------------------------------------------------ suite */

static TCase *tcase(const char *name, int timeout)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, timeout);
    return tc;
}

int main(void)
{
    Suite *s = suite_create("sqlite");
    TCase *tc = tcase("crash", 120);
    tcase_add_test(tc, sigkilled_enqueuer_loses_no_reported_job);
    tcase_add_test(tc, sigkilled_worker_never_gets_an_acked_job_back);
    suite_add_tcase(s, tc);
    tc = tcase("processes", 120);
    tcase_add_test(tc, six_processes_run_each_of_20000_jobs_exactly_once);
    suite_add_tcase(s, tc);
    tc = tcase("wakeup", 30);
    tcase_add_test(tc, poller_in_another_process_wakes_for_an_enqueue);
    suite_add_tcase(s, tc);
    tc = tcase("env", 30);
    tcase_add_test(tc, unwritable_directory_is_an_io_error_and_creates_nothing);
    tcase_add_test(tc, missing_directory_is_an_io_error);
    tcase_add_test(tc, file_that_is_not_a_database_is_corrupt_and_left_alone);
    tcase_add_test(tc, another_applications_database_is_refused_untouched);
    tcase_add_test(tc, corrupt_database_gives_corrupt_errors_not_crashes);
    tcase_add_test(tc, lock_held_beyond_busy_timeout_is_busy_then_clears);
    tcase_add_test(tc, processes_opening_a_new_file_at_once_all_open_it);
    tcase_add_test(tc, full_disk_is_full_or_io_and_keeps_every_committed_batch);
    tcase_add_test(tc, newer_schema_is_unsupported);
    tcase_add_test(tc, uri_errors_are_refused);
    tcase_add_test(tc, relative_path_is_relative_to_the_working_directory);
    tcase_add_test(tc, new_files_have_mode_0600_whatever_the_umask);
    tcase_add_test(tc, network_file_systems_are_recognised);
    tcase_add_test(tc, store_used_after_fork_is_refused_in_the_child);
    suite_add_tcase(s, tc);
    tc = tcase("schedules", 30);
    tcase_add_test(tc, schedules_and_the_lease_survive_closing_and_reopening);
    tcase_add_test(tc, two_handles_compete_for_one_lease_and_tokens_only_grow);
    tcase_add_test(tc, firing_with_a_stale_token_is_rejected_and_changes_nothing);
    tcase_add_test(tc, version_1_file_is_upgraded_in_place_keeping_its_jobs);
    suite_add_tcase(s, tc);
    tc = tcase("workflows", 60);
    tcase_add_test(tc, version_2_file_is_upgraded_in_place_and_its_jobs_can_be_parents);
    tcase_add_test(tc, waiting_child_survives_reopening_and_is_released_through_another_connection);
    tcase_add_test(tc, two_processes_acking_the_last_two_parents_release_the_child_once);
    tcase_add_test(tc, fan_out_of_10000_and_fan_in_release_the_merge_after_the_last_ack);
    tcase_add_test(tc, purging_a_finished_workflow_forgets_it_and_its_edges);
    suite_add_tcase(s, tc);
    tc = tcase("worker_support", 30);
    tcase_add_test(tc, release_gives_the_claim_back_without_using_an_attempt);
    tcase_add_test(tc, releasing_a_job_marked_for_cancellation_cancels_it_and_its_children);
    tcase_add_test(tc, a_pause_through_one_handle_stops_claims_through_another);
    tcase_add_test(tc, the_paused_flag_survives_reopening);
    tcase_add_test(tc, two_handles_share_one_token_bucket);
    tcase_add_test(tc, version_3_file_is_upgraded_in_place_for_worker_support);
    suite_add_tcase(s, tc);
    tc = tcase("trace_context", 30);
    tcase_add_test(tc, version_4_file_is_upgraded_in_place_and_keeps_its_jobs);
    tcase_add_test(tc, version_5_file_is_upgraded_and_workflows_are_counted_without_the_insert_trigger);
    suite_add_tcase(s, tc);
    tc = tcase("plans", 30);
    tcase_add_test(tc, every_statement_searches_jobs_through_an_index);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
