/*
 * bench_sqlite.c - figures for the SQLite backend (suite `sqlite`), next to
 * a raw SQLite baseline written here, so that the backend's overhead over
 * the database itself is measured on the machine at hand.
 *
 *   bench_sqlite [--quick] [--repeat N] [--sync normal|full] [--dir DIR]
 *
 * Prints progress on stderr and `BENCH <name> <value> <unit>` on stdout;
 * throughput figures are medians of N runs (default 3).  Every run uses a
 * fresh database file in DIR (default: a new directory under $TMPDIR).
 *
 *   sqlite.enqueue           at_enqueue one job per call (one transaction each)
 *   sqlite.enqueue_batch     at_enqueue_batch, 1000 jobs per call
 *   sqlite.raw_insert_batch  plain INSERTs of rows with the same columns and
 *                            values into a WAL file with the same sync
 *                            setting, 1000 per transaction, with one index on
 *                            the due time (the least a queue needs), due
 *                            times increasing as in the batch enqueue
 *   sqlite.batch_ratio       enqueue_batch / raw_insert_batch
 *   sqlite.cycle_1p, _2p     one producer process (batches of 100) and 1 or 2
 *                            worker processes (poll up to 32, then one
 *                            at_ack_many for the batch):
 *                            jobs enqueued, claimed and acked per second
 *   sqlite.latency_p50, _p99 enqueue in one process -> at_poll returns in
 *                            another (the cross-process wake-up, ADR 0007)
 *   sqlite.bytes_per_job     file size / jobs at 1,000,000 delayed jobs
 *                            (--quick: 100,000), after a checkpoint
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include <asynctask.h>

#include "bench_median.h"

static int g_quick;
static int g_repeat = 3;
static const char *g_sync = "normal";
static char g_dir[4096];
static unsigned g_seq;
static const char PAYLOAD[64] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_sqlite: %s: %s (%s)\n", what, at_strerror(rc), at_last_error());
    exit(1);
}

/* A fresh database path for one run; files of the previous run removed. */
static void fresh_path(char *out, size_t size)
{
    snprintf(out, size, "%s/b%u.db", g_dir, ++g_seq);
}

static void remove_db(const char *path)
{
    char p[4200];
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        unlink(p);
    }
}

static at_store *open_store(const char *path)
{
    char uri[4300];
    snprintf(uri, sizeof uri, "sqlite:%s?sync=%s", path, g_sync);
    at_store *s;
    int rc = at_store_open(&s, uri);
    if (rc)
        die("open", rc);
    return s;
}

/* ----------------------------------------------------------- enqueue */

static double run_enqueue(long n)
{
    char path[4200];
    fresh_path(path, sizeof path);
    at_store *s = open_store(path);
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        int rc = at_enqueue(NULL, s, "bench", PAYLOAD, sizeof PAYLOAD, NULL);
        if (rc)
            die("enqueue", rc);
    }
    double dt = now_s() - t0;
    at_store_close(s);
    remove_db(path);
    return n / dt;
}

static void enqueue_batches(at_store *s, long n, const at_opts *o)
{
    at_batch *b;
    int rc = at_batch_new(&b);
    if (rc)
        die("batch", rc);
    for (long done = 0; done < n; done += 1000) {
        at_batch_clear(b);
        for (long i = done; i < n && i < done + 1000; i++)
            if ((rc = at_batch_add(b, "bench", PAYLOAD, sizeof PAYLOAD, o)))
                die("batch add", rc);
        if ((rc = at_enqueue_batch(s, b)))
            die("enqueue batch", rc);
    }
    at_batch_free(b);
}

static double run_enqueue_batch(long n)
{
    char path[4200];
    fresh_path(path, sizeof path);
    at_store *s = open_store(path);
    double t0 = now_s();
    enqueue_batches(s, n, NULL);
    double dt = now_s() - t0;
    at_store_close(s);
    remove_db(path);
    return n / dt;
}

/* ------------------------------------------------------ raw baseline */

static void sq(sqlite3 *db, int src, const char *what)
{
    if (src != SQLITE_OK && src != SQLITE_DONE && src != SQLITE_ROW) {
        fprintf(stderr, "bench_sqlite: raw %s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

/* The rows the backend writes for a READY job of this benchmark: the same
 * columns and values (a 16-byte id, the job type, the 64-byte payload and
 * the integers), in a plain rowid table with an index on the due time. */
static double run_raw_batch(long n)
{
    char path[4200];
    fresh_path(path, sizeof path);
    sqlite3 *db;
    sq(NULL, sqlite3_open(path, &db), "open");
    char sql[512];
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;", g_sync);
    sq(db, sqlite3_exec(db, sql, NULL, NULL, NULL), "pragma");
    sq(db,
       sqlite3_exec(db,
                    "CREATE TABLE t(id BLOB, qid INTEGER, state INTEGER, priority INTEGER, run_at INTEGER,"
                    " attempts INTEGER, max_attempts INTEGER, token INTEGER, created_at INTEGER, updated_at INTEGER,"
                    " started_at INTEGER, lease_until INTEGER, finished_at INTEGER, lease_ms INTEGER,"
                    " backoff_base_ms INTEGER, backoff_cap_ms INTEGER, backoff_jitter INTEGER, cancel_req INTEGER,"
                    " type TEXT, idem_key TEXT, last_error TEXT, result BLOB, payload BLOB);"
                    "CREATE INDEX t_due ON t(run_at);",
                    NULL, NULL, NULL),
       "schema");
    sqlite3_stmt *ins;
    sq(db,
       sqlite3_prepare_v2(db,
                          "INSERT INTO t VALUES(?1, 1, 3, 0, ?2, 0, 25, 0, ?2, ?2, NULL, NULL, NULL, 30000, 1000,"
                          " 3600000, 200, 0, 'bench', NULL, NULL, NULL, ?3)",
                          -1, &ins, NULL),
       "prepare");
    unsigned char id[16];
    double t0 = now_s();
    for (long done = 0; done < n; done += 1000) {
        sq(db, sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), "begin");
        for (long i = done; i < n && i < done + 1000; i++) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
            /* Time-ordered like a job id: 48 bits of ms, then a counter. */
            for (int k = 0; k < 6; k++)
                id[k] = (unsigned char)(ms >> (40 - 8 * k));
            for (int k = 6; k < 16; k++)
                id[k] = (unsigned char)((unsigned long)i >> (8 * (15 - k) % 64));
            sqlite3_bind_blob(ins, 1, id, 16, SQLITE_STATIC);
            sqlite3_bind_int64(ins, 2, ms);
            sqlite3_bind_blob(ins, 3, PAYLOAD, sizeof PAYLOAD, SQLITE_STATIC);
            sq(db, sqlite3_step(ins), "insert");
            sqlite3_reset(ins);
        }
        sq(db, sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), "commit");
    }
    double dt = now_s() - t0;
    sqlite3_finalize(ins);
    sqlite3_close(db);
    remove_db(path);
    return n / dt;
}

/* ------------------------------------------------------------- cycle */

struct shared {
    _Atomic long acked;
    _Atomic int go;
    double lat[4096];
    _Atomic int nlat;
};

static struct shared *g_sh;

static void producer(const char *path, long n)
{
    at_store *s = open_store(path);
    at_batch *b;
    int rc = at_batch_new(&b);
    if (rc)
        die("batch", rc);
    while (!atomic_load(&g_sh->go))
        usleep(100);
    for (long done = 0; done < n; done += 100) {
        at_batch_clear(b);
        for (long i = done; i < n && i < done + 100; i++)
            if ((rc = at_batch_add(b, "bench", PAYLOAD, sizeof PAYLOAD, NULL)))
                die("batch add", rc);
        if ((rc = at_enqueue_batch(s, b)))
            die("enqueue batch", rc);
    }
    at_batch_free(b);
    at_store_close(s);
}

static void worker(const char *path, long n)
{
    at_store *s = open_store(path);
    const char *q[] = {"default"};
    at_job *jobs[32];
    while (!atomic_load(&g_sh->go))
        usleep(100);
    while (atomic_load(&g_sh->acked) < n) {
        size_t got = 0;
        int rc = at_poll(jobs, &got, s, q, 1, 32, 50);
        if (rc)
            die("poll", rc);
        if (got == 0)
            continue;
        /* The batch a poll claimed is finished in one transaction. */
        const char *ids[32];
        uint64_t tokens[32];
        int32_t res[32];
        for (size_t i = 0; i < got; i++) {
            ids[i] = at_job_id(jobs[i]);
            tokens[i] = at_job_token(jobs[i]);
        }
        if ((rc = at_ack_many(res, s, got, ids, tokens)))
            die("ack", rc);
        for (size_t i = 0; i < got; i++) {
            if (res[i])
                die("ack of one job", res[i]);
            at_job_free(jobs[i]);
        }
        atomic_fetch_add(&g_sh->acked, (long)got);
    }
    at_store_close(s);
}

static double run_cycle(long n, int workers)
{
    char path[4200];
    fresh_path(path, sizeof path);
    at_store_close(open_store(path)); /* create the schema before the race */
    atomic_store(&g_sh->acked, 0);
    atomic_store(&g_sh->go, 0);
    pid_t pids[9];
    int np = 0;
    for (int w = 0; w <= workers; w++) {
        pid_t p = fork();
        if (p < 0) {
            perror("fork");
            exit(1);
        }
        if (p == 0) {
            if (w == 0)
                producer(path, n);
            else
                worker(path, n);
            _exit(0);
        }
        pids[np++] = p;
    }
    usleep(200000); /* let every process open its store */
    double t0 = now_s();
    atomic_store(&g_sh->go, 1);
    int failed = 0;
    for (int i = 0; i < np; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    double dt = now_s() - t0;
    if (failed) {
        fprintf(stderr, "bench_sqlite: a cycle process failed\n");
        exit(1);
    }
    remove_db(path);
    return n / dt;
}

/* ----------------------------------------------------------- latency */

static int cmp_lat(const void *a, const void *b)
{
    return bench_cmp_double(a, b);
}

static void run_latency(int samples, double *p50, double *p99)
{
    char path[4200];
    fresh_path(path, sizeof path);
    at_store_close(open_store(path));
    atomic_store(&g_sh->nlat, 0);
    atomic_store(&g_sh->go, 0);
    pid_t w = fork();
    if (w == 0) {
        at_store *s = open_store(path);
        const char *q[] = {"default"};
        atomic_store(&g_sh->go, 1);
        for (int i = 0; i < samples; i++) {
            at_job *j;
            size_t got = 0;
            int rc = at_poll(&j, &got, s, q, 1, 1, -1);
            double t = now_s();
            if (rc || got != 1)
                die("latency poll", rc);
            double sent;
            memcpy(&sent, at_job_payload(j, NULL), sizeof sent);
            g_sh->lat[atomic_fetch_add(&g_sh->nlat, 1)] = (t - sent) * 1000;
            at_ack(s, at_job_id(j), at_job_token(j), NULL, 0);
            at_job_free(j);
        }
        at_store_close(s);
        _exit(0);
    }
    at_store *s = open_store(path);
    while (!atomic_load(&g_sh->go))
        usleep(1000);
    usleep(100000); /* the poller is blocked in at_poll by now */
    unsigned seed = 12345;
    for (int i = 0; i < samples; i++) {
        /* Random gaps: jobs must not arrive in step with the watch timer. */
        usleep(5000 + rand_r(&seed) % 20000);
        double t = now_s();
        int rc = at_enqueue(NULL, s, "bench", &t, sizeof t, NULL);
        if (rc)
            die("latency enqueue", rc);
        while (atomic_load(&g_sh->nlat) <= i)
            usleep(200);
    }
    int st;
    waitpid(w, &st, 0);
    at_store_close(s);
    remove_db(path);
    int n = atomic_load(&g_sh->nlat);
    qsort(g_sh->lat, (size_t)n, sizeof g_sh->lat[0], cmp_lat);
    *p50 = g_sh->lat[n / 2];
    *p99 = g_sh->lat[(int)(n * 0.99)];
}

/* ------------------------------------------------------------- bytes */

static double run_bytes(long n)
{
    char path[4200];
    fresh_path(path, sizeof path);
    at_store *s = open_store(path);
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_int(o, AT_OPT_DELAY_MS, 3600 * 1000);
    enqueue_batches(s, n, o);
    at_opts_free(o);
    at_store_close(s); /* the last close checkpoints the WAL into the file */
    struct stat st;
    double per = stat(path, &st) == 0 ? (double)st.st_size / n : 0;
    remove_db(path);
    return per;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            g_quick = 1;
        else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            g_repeat = atoi(argv[++i]);
        else if (strcmp(argv[i], "--sync") == 0 && i + 1 < argc)
            g_sync = argv[++i];
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            snprintf(g_dir, sizeof g_dir, "%s", argv[++i]);
        else {
            fprintf(stderr, "usage: bench_sqlite [--quick] [--repeat N] [--sync normal|full] [--dir DIR]\n");
            return 2;
        }
    }
    if (g_repeat < 1 || g_repeat > 15)
        g_repeat = 3;
    int made_dir = 0;
    if (!g_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/bench_sqlite.XXXXXX", t && t[0] ? t : "/tmp");
        if (!mkdtemp(g_dir)) {
            perror("mkdtemp");
            return 1;
        }
        made_dir = 1;
    }
    g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_sh == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    fprintf(stderr, "  sqlite %s, sync=%s, files in %s\n", sqlite3_libversion(), g_sync, g_dir);
    int r = g_repeat;
    double v[16], raw[16];
    long n1 = g_quick ? 5000 : 20000, nb = g_quick ? 50000 : 200000, nc = g_quick ? 20000 : 100000;

    for (int i = 0; i < r; i++) {
        v[i] = run_enqueue(n1);
        fprintf(stderr, "  enqueue run %d: %.0f jobs/s\n", i + 1, v[i]);
    }
    printf("BENCH sqlite.enqueue %.0f jobs/s\n", median(v, r));
    double ratio[16];
    for (int i = 0; i < r; i++) {
        /* Alternate the two so that both meet the same page cache state. */
        raw[i] = run_raw_batch(nb);
        v[i] = run_enqueue_batch(nb);
        ratio[i] = v[i] / raw[i];
        fprintf(stderr, "  batch run %d: library %.0f jobs/s, raw %.0f rows/s\n", i + 1, v[i], raw[i]);
    }
    printf("BENCH sqlite.enqueue_batch %.0f jobs/s\n", median(v, r));
    printf("BENCH sqlite.raw_insert_batch %.0f rows/s\n", median(raw, r));
    printf("BENCH sqlite.batch_ratio %.2f x\n", median(ratio, r));
    fflush(stdout);
    for (int i = 0; i < r; i++) {
        v[i] = run_cycle(nc, 1);
        fprintf(stderr, "  cycle 1 worker process run %d: %.0f jobs/s\n", i + 1, v[i]);
    }
    printf("BENCH sqlite.cycle_1p %.0f jobs/s\n", median(v, r));
    for (int i = 0; i < r; i++) {
        v[i] = run_cycle(nc, 2);
        fprintf(stderr, "  cycle 2 worker processes run %d: %.0f jobs/s\n", i + 1, v[i]);
    }
    printf("BENCH sqlite.cycle_2p %.0f jobs/s\n", median(v, r));
    fflush(stdout);
    double p50, p99;
    run_latency(g_quick ? 100 : 400, &p50, &p99);
    printf("BENCH sqlite.latency_p50 %.2f ms\n", p50);
    printf("BENCH sqlite.latency_p99 %.2f ms\n", p99);
    fflush(stdout);
    long nbytes = g_quick ? 100000 : 1000000;
    double per = run_bytes(nbytes);
    fprintf(stderr, "  %ld delayed jobs\n", nbytes);
    printf("BENCH sqlite.bytes_per_job %.0f B\n", per);
    if (made_dir)
        rmdir(g_dir);
    return 0;
}
