/*
 * sqlite_faultinj.c - out-of-memory, I/O-error and disk-full loops over the
 * SQLite backend, in SQLite's own style (sqlite_faultinj.h).
 *
 * For each operation (open creating the schema, open of an existing store,
 * open upgrading a version-1 file, enqueue, batch enqueue, poll, ack, fail with retry, cancel, requeue from
 * dead, purge, schedule put, workflow submit) and each fault kind (the Nth
 * allocation, once and persistently from N on; the Nth VFS call; a byte
 * budget of file growth), the loop runs N = 1, 2, ... until the operation
 * runs without meeting its fault.  Each loop runs in a child process, so
 * a crash names its loop and, under ASan, so does a leak.  Each iteration:
 *
 *   1. copies a prepared store file (a known state: ready, running, dead,
 *      succeeded and scheduled jobs, a stored schedule) and opens it;
 *   2. arms fault N and runs the operation;
 *   3. checks the return: 0, or the code the fault kind documents
 *      (AT_ERR_NOMEM, AT_ERR_IO, AT_ERR_FULL: ADR 0006), never another;
 *      and an error only when a fault was injected;
 *   4. disarms; through the same handle every job must be in its old state
 *      or its new one, all of them the same side (one transaction), the new
 *      side when the call returned 0; from the old side the operation is
 *      run again and must now succeed (the handle is usable again);
 *   5. closes, reopens and compares again, checks that the per-queue counts
 *      (at_stats_get) agree with the jobs listed, and that PRAGMA
 *      integrity_check says ok.
 *
 * "Old" is the prepared file's state, "new" the state after a fault-free
 * run; both read through the public API (at_list, at_stats_get,
 * at_schedule_list) at a fixed manual clock.  Jobs the operation creates
 * have fresh ids, so they are compared by type, payload and queue.
 *
 * Plus the disk-full scenario: single enqueues under a small growth budget
 * until AT_ERR_FULL; every acknowledged job is there, the store works again
 * once space is back (same handle, and after a close while still full), and
 * the file passes integrity_check.
 *
 * A loop whose faults were never injected, or never made the operation
 * fail, fails the test: it would prove nothing.  A control operation that
 * commits in two transactions (control_torn) must be caught leaving a
 * torn state, or the checks themselves are blind.  Long loops (the opens
 * allocate thousands of times) are sampled: the first 16 N, then an even
 * stride, so each loop runs about 30 * AT_FAULT_SCALE iterations at most
 * (AT_FAULT_SCALE, default 1, up to 1000: 1000 runs every N).
 *
 * Usage: sqlite_faultinj [OPERATION...]   (default: all)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "asynctask.h"
#include "asynctask/store.h" /* at_id_parse */
#include "sqlite_faultinj.h"

/* Hidden in the shared library: this program links libat_core to build a
 * file as an older release made it. */
const char *at__sqlite_schema_step(size_t v);

#define SCHEMA_VERSION 6 /* backends/sqlite.c */
#define APPLICATION_ID 0x6174736b

/* ------------------------------------------------------------- reporting */

static int g_failures;
static char g_ctx[160]; /* the loop and iteration being run, for messages */

static void fail_at(int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL (line %d) [%s]: ", line, g_ctx);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    g_failures++;
}
#define FAIL(...) fail_at(__LINE__, __VA_ARGS__)
/* Fatal: the harness itself cannot go on (setup without faults failed). */
#define MUST(cond)                                                                                           \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "FATAL (line %d) [%s]: %s\n", __LINE__, g_ctx, #cond);                           \
            exit(1);                                                                                         \
        }                                                                                                    \
    } while (0)

/* ------------------------------------------------------------- the store */

#define T_PREP INT64_C(1700000000000)
#define T_OP (T_PREP + 1000)

static char g_dir[512];
static char g_tmpl[600];    /* the prepared store */
static char g_tmpl_v1[600]; /* a store of schema version 1, one job */
static char g_db[600];      /* each iteration's copy */
static char g_uri[640];
static at_clock *g_clock; /* manual, at T_OP during the loops */

/* The prepared store's jobs the operations act on. */
static struct {
    char done[AT_ID_SIZE];  /* SUCCEEDED at T_PREP - 120 s: purged */
    char dead[AT_ID_SIZE];  /* DEAD: requeued */
    char ack[AT_ID_SIZE];   /* RUNNING under tok_ack: acked */
    char fail[AT_ID_SIZE];  /* RUNNING under tok_fail, attempts left: failed */
    char r1[AT_ID_SIZE];    /* READY, priority 5, key "k1": polled */
    char r2[AT_ID_SIZE];    /* READY, priority 1: polled, or cancelled */
    char r3[AT_ID_SIZE];    /* READY in q2: a workflow node's parent */
    char sched[AT_ID_SIZE]; /* SCHEDULED an hour ahead */
    uint64_t tok_ack, tok_fail;
} T;

static void rm_db(const char *path)
{
    char p[700];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-journal", path);
    unlink(p);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    MUST(in);
    FILE *out = fopen(to, "wb");
    MUST(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        MUST(fwrite(buf, 1, n, out) == n);
    fclose(in);
    MUST(fclose(out) == 0);
}

static at_store *open_store(const char *path)
{
    char uri[700];
    snprintf(uri, sizeof uri, "sqlite:%s", path);
    at_store *s = NULL;
    int rc = at_store_open(&s, uri);
    if (rc != 0) {
        fprintf(stderr, "open %s: %s (%s)\n", uri, at_err_name(rc), at_last_error());
        MUST(rc == 0);
    }
    MUST(at_store_set_clock(s, g_clock) == 0);
    return s;
}

/* PRAGMA integrity_check through a connection of our own. */
static int integrity_ok(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int ok = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        ok = t && strcmp(t, "ok") == 0;
        if (!ok)
            fprintf(stderr, "integrity_check: %s\n", t ? t : "(null)");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok;
}

static int64_t user_version(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* --------------------------------------------------------------- snapshots */

/* A store's state as sorted text lines: one per job, per queue count and
 * per schedule.  Jobs of the prepared store go by id; jobs an operation
 * created by type, payload and queue (their ids are new every run). */
struct snap {
    char **line;
    size_t n, cap;
    int ok; /* 0: reading it failed */
};

static void snap_add(struct snap *s, const char *fmt, ...)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->line = realloc(s->line, s->cap * sizeof *s->line);
        MUST(s->line);
    }
    va_list ap;
    va_start(ap, fmt);
    MUST(vasprintf(&s->line[s->n++], fmt, ap) >= 0);
    va_end(ap);
}

static void snap_free(struct snap *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->line[i]);
    free(s->line);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int snap_eq(const struct snap *a, const struct snap *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->line[i], b->line[i]) != 0)
            return 0;
    return 1;
}

static void snap_print(const char *title, const struct snap *s)
{
    fprintf(stderr, "  %s (%zu lines):\n", title, s->n);
    for (size_t i = 0; i < s->n; i++)
        fprintf(stderr, "    %s\n", s->line[i]);
}

static const char *known_ids[16];
static size_t n_known;

static int is_known(const char *id)
{
    for (size_t i = 0; i < n_known; i++)
        if (strcmp(known_ids[i], id) == 0)
            return 1;
    return 0;
}

/* Read everything; also checks that the kept counts match the jobs. */
static struct snap take_snap(at_store *st)
{
    struct snap s = {0};
    char cursor[AT_CURSOR_SIZE] = "", next[AT_CURSOR_SIZE];
    uint64_t counts[8][AT_STATE_COUNT__]; /* by queue index in qname */
    char qname[8][32];
    size_t nq = 0;
    memset(counts, 0, sizeof counts);
    int rc;
    do {
        at_job *jobs[64];
        size_t n = 0;
        rc = at_list(jobs, &n, next, st, NULL, AT_STATE_ANY, cursor, 64);
        if (rc != 0) {
            FAIL("at_list after the fault: %s", at_err_name(rc));
            snap_free(&s);
            return s;
        }
        for (size_t i = 0; i < n; i++) {
            const at_job *j = jobs[i];
            size_t plen = 0, rlen = 0;
            const char *p = at_job_payload(j, &plen);
            at_job_result(j, &rlen);
            char key[AT_ID_SIZE + 64];
            if (is_known(at_job_id(j)))
                snprintf(key, sizeof key, "%s", at_job_id(j));
            else
                snprintf(key, sizeof key, "new:%s:%.*s", at_job_type(j), (int)plen, p);
            const char *ek = at_job_idempotency_key(j);
            const char *le = at_job_last_error(j);
            snap_add(&s, "job|%s|%s|%s|att=%u/%u|cancel=%d|left=%u|res=%zu|err=%s|key=%s|wf=%s|node=%s", key,
                     at_job_queue(j), at_state_name(at_job_state(j)), at_job_attempts(j),
                     at_job_max_attempts(j), at_job_cancel_requested(j), at_job_parents_left(j), rlen,
                     le ? le : "-", ek ? ek : "-", at_job_workflow_id(j) ? "yes" : "-",
                     at_job_node(j) ? at_job_node(j) : "-");
            size_t q = 0;
            while (q < nq && strcmp(qname[q], at_job_queue(j)) != 0)
                q++;
            if (q == nq && nq < 8)
                snprintf(qname[nq++], sizeof qname[0], "%s", at_job_queue(j));
            if (q < 8)
                counts[q][at_job_state(j)]++;
            at_job_free(jobs[i]);
        }
        memcpy(cursor, next, sizeof cursor);
    } while (cursor[0]);

    at_stats *stats = NULL;
    if ((rc = at_stats_get(&stats, st)) != 0) {
        FAIL("at_stats_get after the fault: %s", at_err_name(rc));
        snap_free(&s);
        return s;
    }
    for (size_t i = 0; i < at_stats_queue_count(stats); i++) {
        const char *name = at_stats_queue_name(stats, i);
        size_t q = 0;
        while (q < nq && strcmp(qname[q], name) != 0)
            q++;
        char line[256];
        int len = snprintf(line, sizeof line, "stats|%s", name);
        for (int k = 1; k < AT_STATE_COUNT__; k++) {
            uint64_t c = at_stats_count(stats, i, k);
            len += snprintf(line + len, sizeof line - (size_t)len, "|%llu", (unsigned long long)c);
            uint64_t listed = q < nq ? counts[q][k] : 0;
            if (c != listed)
                FAIL("queue %s: at_stats_get counts %llu %s jobs, at_list finds %llu", name,
                     (unsigned long long)c, at_state_name(k), (unsigned long long)listed);
        }
        snap_add(&s, "%s", line);
    }
    at_stats_free(stats);

    at_schedule **sl = NULL;
    size_t ns = 0;
    if ((rc = at_schedule_list(&sl, &ns, st)) != 0) {
        FAIL("at_schedule_list after the fault: %s", at_err_name(rc));
        snap_free(&s);
        return s;
    }
    for (size_t i = 0; i < ns; i++)
        snap_add(&s, "sched|%s|%s|%s|paused=%d", at_schedule_name(sl[i]), at_schedule_expr(sl[i]),
                 at_schedule_type(sl[i]), at_schedule_paused(sl[i]));
    at_schedule_list_free(sl, ns);
    if (s.n)
        qsort(s.line, s.n, sizeof *s.line, cmp_str);
    s.ok = 1;
    return s;
}

/* ------------------------------------------------------------- the template */

static void must_enqueue(char *id, at_store *s, const char *queue, const char *payload, int prio, int max_att,
                         int64_t delay, const char *key)
{
    at_opts *o = NULL;
    MUST(at_opts_new(&o) == 0);
    MUST(at_opts_set_str(o, AT_OPT_QUEUE, queue) == 0);
    MUST(at_opts_set_int(o, AT_OPT_PRIORITY, prio) == 0);
    MUST(at_opts_set_int(o, AT_OPT_LEASE_MS, 3600000) == 0);
    MUST(at_opts_set_int(o, AT_OPT_BACKOFF_JITTER, 0) == 0);
    if (max_att)
        MUST(at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, max_att) == 0);
    if (delay)
        MUST(at_opts_set_int(o, AT_OPT_DELAY_MS, delay) == 0);
    if (key)
        MUST(at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, key) == 0);
    MUST(at_enqueue(id, s, "t", payload, strlen(payload), o) == 0);
    at_opts_free(o);
}

/* Claim the one ready job of `queue`, which must be `id`. */
static uint64_t must_claim(at_store *s, const char *queue, const char *id)
{
    at_job *j = NULL;
    size_t n = 0;
    const char *qs[] = {queue};
    MUST(at_poll(&j, &n, s, qs, 1, 1, 0) == 0 && n == 1);
    MUST(strcmp(at_job_id(j), id) == 0);
    uint64_t tok = at_job_token(j);
    at_job_free(j);
    return tok;
}

static void build_template(void)
{
    snprintf(g_ctx, sizeof g_ctx, "template");
    rm_db(g_tmpl);
    MUST(at_clock_set(g_clock, T_PREP - 120000) == 0);
    at_store *s = open_store(g_tmpl);
    must_enqueue(T.done, s, "q", "done", 0, 0, 0, NULL);
    MUST(at_ack(s, T.done, must_claim(s, "q", T.done), "r", 1) == 0);
    MUST(at_clock_set(g_clock, T_PREP - 2000) == 0);
    must_enqueue(T.dead, s, "q", "dead", 0, 1, 0, NULL);
    int32_t state = 0;
    MUST(at_fail(&state, s, T.dead, must_claim(s, "q", T.dead), "gone", AT_FAIL_RETRY) == 0);
    MUST(state == AT_STATE_DEAD);
    MUST(at_clock_set(g_clock, T_PREP) == 0);
    must_enqueue(T.ack, s, "q", "ack", 0, 0, 0, NULL);
    T.tok_ack = must_claim(s, "q", T.ack);
    must_enqueue(T.fail, s, "q", "fail", 0, 5, 0, NULL);
    T.tok_fail = must_claim(s, "q", T.fail);
    must_enqueue(T.r1, s, "q", "r1", 5, 0, 0, "k1");
    must_enqueue(T.r2, s, "q", "r2", 1, 0, 0, NULL);
    must_enqueue(T.r3, s, "q2", "r3", 0, 0, 0, NULL);
    must_enqueue(T.sched, s, "q", "sched", 0, 0, 3600000, NULL);
    at_schedule *sc = NULL;
    MUST(at_schedule_new(&sc, "s1", "0 3 * * *", NULL, "nightly") == 0);
    MUST(at_schedule_add(NULL, s, sc) == 0);
    at_schedule_free(sc);
    at_store_close(s);
    const char *ids[] = {T.done, T.dead, T.ack, T.fail, T.r1, T.r2, T.r3, T.sched};
    n_known = sizeof ids / sizeof ids[0];
    memcpy(known_ids, ids, sizeof ids);
    /* The last close checkpointed: the main file alone is the store. */
    char wal[700];
    snprintf(wal, sizeof wal, "%s-wal", g_tmpl);
    MUST(access(wal, F_OK) != 0);
    MUST(at_clock_set(g_clock, T_OP) == 0);
}

/* A version-1 file (as release 0.1.0 made it) holding one ready job: its
 * open upgrades the schema in one transaction (ADR 0006). */
static void build_template_v1(void)
{
    snprintf(g_ctx, sizeof g_ctx, "template v1");
    rm_db(g_tmpl_v1);
    sqlite3 *db = NULL;
    MUST(sqlite3_open(g_tmpl_v1, &db) == SQLITE_OK);
    MUST(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) == SQLITE_OK);
    MUST(sqlite3_exec(db, at__sqlite_schema_step(0), NULL, NULL, NULL) == SQLITE_OK);
    char sql[256];
    snprintf(sql, sizeof sql,
             "PRAGMA application_id=%d; PRAGMA user_version=1;"
             "INSERT INTO queues(qid, name, n3) VALUES(1, 'default', 1);",
             APPLICATION_ID);
    MUST(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    uint8_t id[16];
    MUST(at_id_parse(id, "01HB0000000000000000000000") == 0);
    sqlite3_stmt *st = NULL;
    MUST(sqlite3_prepare_v2(
             db,
             "INSERT INTO jobs(id, qid, state, priority, run_at, attempts, max_attempts,"
             " token, created_at, updated_at, lease_ms, backoff_base_ms, backoff_cap_ms,"
             " backoff_jitter, cancel_req, type, payload)"
             " VALUES(?1, 1, 3, 0, ?2, 0, 3, 0, ?2, ?2, 30000, 1000, 60000, 0, 0, 'old', x'78')",
             -1, &st, NULL) == SQLITE_OK);
    sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, T_PREP);
    MUST(sqlite3_step(st) == SQLITE_DONE);
    sqlite3_finalize(st);
    MUST(sqlite3_close(db) == SQLITE_OK);
    MUST(user_version(g_tmpl_v1) == 1);
}

/* ------------------------------------------------------------- operations */

/* An operation runs on an open store (NULL for the opens, which open and
 * close by themselves) and returns what the API returned. */
typedef int (*op_fn)(at_store *s);

static int op_enqueue(at_store *s)
{
    at_opts *o = NULL;
    int rc = at_opts_new(&o);
    if (rc)
        return rc;
    /* A new queue and a new key: the queue row, the key row and the job
     * row must commit or vanish together, and the handle's queue cache
     * with them. */
    if ((rc = at_opts_set_str(o, AT_OPT_QUEUE, "q3")) == 0 &&
        (rc = at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, "kenq")) == 0) {
        char id[AT_ID_SIZE];
        rc = at_enqueue(id, s, "t", "enq", 3, o);
    }
    at_opts_free(o);
    return rc;
}

static int op_batch(at_store *s)
{
    at_batch *b = NULL;
    at_opts *o = NULL, *o3 = NULL, *ok = NULL;
    int rc = at_batch_new(&b);
    if (rc == 0)
        rc = at_opts_new(&o);
    if (rc == 0)
        rc = at_opts_new(&o3);
    if (rc == 0)
        rc = at_opts_new(&ok);
    if (rc == 0)
        rc = at_opts_set_str(o, AT_OPT_QUEUE, "q");
    if (rc == 0)
        rc = at_opts_set_str(o3, AT_OPT_QUEUE, "q3");
    if (rc == 0)
        rc = at_opts_set_str(ok, AT_OPT_QUEUE, "q");
    /* The third holds the key of job r1: a duplicate inside the batch. */
    if (rc == 0)
        rc = at_opts_set_str(ok, AT_OPT_IDEMPOTENCY_KEY, "k1");
    if (rc == 0)
        rc = at_batch_add(b, "t", "b1", 2, o);
    if (rc == 0)
        rc = at_batch_add(b, "t", "b2", 2, o3);
    if (rc == 0)
        rc = at_batch_add(b, "t", "b3", 2, ok);
    if (rc == 0)
        rc = at_enqueue_batch(s, b);
    if (rc == 0 && (at_batch_status(b, 2) != AT_ERR_DUPLICATE || strcmp(at_batch_id(b, 2), T.r1) != 0))
        FAIL("batch entry 3 is not the duplicate of r1");
    at_opts_free(o);
    at_opts_free(o3);
    at_opts_free(ok);
    at_batch_free(b);
    return rc;
}

static int op_poll(at_store *s)
{
    at_job *j[4] = {0};
    size_t n = 0;
    const char *qs[] = {"q"};
    int rc = at_poll(j, &n, s, qs, 1, 4, 0);
    if (rc == 0 && n != 2)
        FAIL("poll claimed %zu jobs, not 2", n);
    for (size_t i = 0; i < n; i++)
        at_job_free(j[i]);
    return rc;
}

static int op_ack(at_store *s)
{
    return at_ack(s, T.ack, T.tok_ack, "res", 3);
}

static int op_fail(at_store *s)
{
    int32_t state = 0;
    int rc = at_fail(&state, s, T.fail, T.tok_fail, "boom", AT_FAIL_RETRY);
    if (rc == 0 && state != AT_STATE_SCHEDULED)
        FAIL("at_fail gave state %s", at_state_name(state));
    return rc;
}

static int op_cancel(at_store *s)
{
    int32_t pending = -1;
    int rc = at_cancel(&pending, s, T.r2);
    if (rc == 0 && pending != 0)
        FAIL("cancelling a ready job left it pending");
    return rc;
}

static int op_requeue(at_store *s)
{
    uint64_t n = 0;
    int rc = at_requeue(&n, s, NULL, T.dead);
    if (rc == 0 && n != 1)
        FAIL("at_requeue moved %llu jobs", (unsigned long long)n);
    return rc;
}

static int op_purge(at_store *s)
{
    uint64_t n = 0;
    int rc = at_purge(&n, s, 60000);
    if (rc == 0 && n != 1)
        FAIL("at_purge removed %llu jobs", (unsigned long long)n);
    return rc;
}

static int op_sched_put(at_store *s)
{
    at_schedule *sc = NULL;
    int rc = at_schedule_new(&sc, "s1", "0 4 * * *", NULL, "nightly");
    int32_t created = -1;
    if (rc == 0)
        rc = at_schedule_add(&created, s, sc);
    if (rc == 0 && created != 0)
        FAIL("replacing schedule s1 created one");
    at_schedule_free(sc);
    return rc;
}

static int op_wf_submit(at_store *s)
{
    at_workflow *wf = NULL;
    int rc = at_workflow_new(&wf);
    if (rc == 0)
        rc = at_workflow_add(wf, "a", "t", "wa", 2, NULL);
    if (rc == 0)
        rc = at_workflow_add(wf, "b", "t", "wb", 2, NULL);
    if (rc == 0)
        rc = at_workflow_add(wf, "c", "t", "wc", 2, NULL);
    if (rc == 0)
        rc = at_workflow_depend(wf, "b", "a");
    if (rc == 0)
        rc = at_workflow_depend(wf, "c", "a");
    if (rc == 0)
        rc = at_workflow_depend_on_job(wf, "c", T.r3);
    char wf_id[AT_ID_SIZE];
    if (rc == 0)
        rc = at_workflow_submit(wf_id, s, wf);
    at_workflow_free(wf);
    return rc;
}

/* The opens: the whole life of a handle, close included (the last close
 * checkpoints the WAL into the file, so it writes too). */
/* The control: two transactions where one is promised.  A fault in the
 * second leaves the first done, which the old-or-new check must report;
 * if it never does, the check is blind and the other loops prove little. */
static int op_control(at_store *s)
{
    int rc = op_enqueue(s);
    if (rc == 0) {
        char id[AT_ID_SIZE];
        rc = at_enqueue(id, s, "t", "second", 6, NULL);
    }
    return rc;
}

static int op_open(at_store *unused)
{
    (void)unused;
    at_store *s = NULL;
    int rc = at_store_open(&s, g_uri);
    if (rc == 0 && !s)
        FAIL("at_store_open returned 0 and no store");
    if (rc != 0 && s)
        FAIL("at_store_open returned %s and a store", at_err_name(rc));
    at_store_close(s);
    return rc;
}

enum { OPEN_NONE, OPEN_EXISTING, OPEN_CREATE, OPEN_UPGRADE };

struct op {
    const char *name;
    op_fn fn;
    int opens;   /* OPEN_*: op_open on a copy of the template, a new file, a v1 file */
    int nogrow;  /* writes nothing: no disk-full loop (checked: it grows 0 bytes) */
    int control; /* a deliberately non-atomic operation the checks must catch */
};

static const struct op k_ops[] = {
    {"open_create", op_open, OPEN_CREATE, 0, 0},
    {"open_existing", op_open, OPEN_EXISTING, 1, 0},
    {"open_upgrade", op_open, OPEN_UPGRADE, 0, 0},
    {"enqueue", op_enqueue, 0, 0, 0},
    {"batch", op_batch, 0, 0, 0},
    {"poll", op_poll, 0, 0, 0},
    {"ack", op_ack, 0, 0, 0},
    {"fail_retry", op_fail, 0, 0, 0},
    {"cancel", op_cancel, 0, 0, 0},
    {"requeue", op_requeue, 0, 0, 0},
    {"purge", op_purge, 0, 0, 0},
    {"schedule_put", op_sched_put, 0, 0, 0},
    {"workflow_submit", op_wf_submit, 0, 0, 0},
    {"control_torn", op_control, 0, 0, 1},
};
#define N_OPS (sizeof k_ops / sizeof k_ops[0])

/* ------------------------------------------------------------- the loops */

struct mode {
    const char *name;
    enum fi_kind kind;
    int persistent;
    int allowed[3]; /* the documented codes of this fault kind */
};

static const struct mode k_modes[] = {
    {"malloc", FI_MALLOC, 0, {AT_ERR_NOMEM}},
    {"malloc-persist", FI_MALLOC, 1, {AT_ERR_NOMEM}},
    {"ioerr", FI_IO, 0, {AT_ERR_IO}},
    {"diskfull", FI_FULL, 0, {AT_ERR_FULL}},
};
#define N_MODES (sizeof k_modes / sizeof k_modes[0])

static int g_scale = 1;

struct tally {
    long iters, hits, errors, reruns, torn;
    int64_t calls;  /* eligible calls of a fault-free run */
    int64_t last_n; /* the N (or byte budget) that met no fault */
    long codes[32]; /* by -code */
};

static void prepare_files(const struct op *op)
{
    rm_db(g_db);
    if (op->opens == OPEN_UPGRADE)
        copy_file(g_tmpl_v1, g_db);
    else if (op->opens != OPEN_CREATE)
        copy_file(g_tmpl, g_db);
}

/* The state with nothing done (old) and after a fault-free run (new). */
static struct snap g_old, g_new;

/* One iteration: returns the faults injected. */
static int64_t iterate(const struct op *op, const struct mode *m, int64_t n, struct tally *t)
{
    prepare_files(op);
    at_store *s = op->opens ? NULL : open_store(g_db);
    fi_arm(m->kind, n, m->persistent);
    int rc = op->fn(s);
    int64_t hits = fi_disarm();
    t->iters++;
    t->hits += hits;
    if (rc != 0) {
        t->errors++;
        if (-rc > 0 && -rc < 32)
            t->codes[-rc]++;
        int allowed = 0;
        for (size_t i = 0; i < 3; i++)
            allowed |= m->allowed[i] == rc;
        if (!allowed) {
            char msg[256] = "";
            if (s)
                at_store_errmsg(s, msg, sizeof msg, NULL);
            FAIL("returned %s (%s), not a code of this fault kind", at_err_name(rc),
                 s ? msg : at_last_error());
        }
        if (hits == 0)
            FAIL("returned %s with no fault injected", at_err_name(rc));
    }
    if (s) {
        /* The same handle, space back and memory back: old or new. */
        struct snap now = take_snap(s);
        if (now.ok) {
            int is_new = snap_eq(&now, &g_new), is_old = snap_eq(&now, &g_old);
            if (rc == 0 && !is_new) {
                FAIL("returned 0 but the store is not in the new state");
                snap_print("seen", &now);
                snap_print("new", &g_new);
            } else if (!is_new && !is_old && op->control) {
                t->torn++; /* caught, as it must be */
                snap_free(&now);
                at_store_close(s);
                return hits;
            } else if (!is_new && !is_old) {
                FAIL("returned %s and left the store neither old nor new", at_err_name(rc));
                snap_print("seen", &now);
                snap_print("old", &g_old);
                snap_print("new", &g_new);
            } else if (is_old && !is_new) {
                /* Nothing happened: doing it again must work now. */
                t->reruns++;
                int rc2 = op->fn(s);
                snap_free(&now);
                now = take_snap(s);
                if (rc2 != 0 || !now.ok || !snap_eq(&now, &g_new))
                    FAIL("after the fault the same handle could not redo the operation: %s",
                         at_err_name(rc2));
            }
        }
        snap_free(&now);
        at_store_close(s);
    }
    if (op->opens == OPEN_UPGRADE) {
        /* The upgrade is one transaction: the file is at version 1 or at
         * the newest, and at the newest if the open succeeded. */
        int64_t v = user_version(g_db);
        if (v != SCHEMA_VERSION && (rc == 0 || v != 1))
            FAIL("after an open that returned %s the file is at schema version %lld", at_err_name(rc),
                 (long long)v);
        if (!integrity_ok(g_db))
            FAIL("PRAGMA integrity_check is not ok before reopening");
    }
    /* A fresh handle sees the same, and the file is sound. */
    at_store *r = open_store(g_db);
    struct snap again = take_snap(r);
    at_store_close(r);
    if (again.ok) {
        int want_new = !op->opens; /* a handle's own failures were redone above */
        if (want_new ? !snap_eq(&again, &g_new) : !(snap_eq(&again, &g_new) || snap_eq(&again, &g_old))) {
            FAIL("after reopening, the store is not in the %s state", want_new ? "new" : "old or new");
            snap_print("seen", &again);
        }
    }
    snap_free(&again);
    if (!integrity_ok(g_db))
        FAIL("PRAGMA integrity_check is not ok");
    return hits;
}

/* A fault-free run of `op`: the new state, and how many eligible calls a
 * run makes (the loop's length). */
static int64_t reference(const struct op *op, const struct mode *m)
{
    prepare_files(op);
    at_store *s = op->opens ? NULL : open_store(g_db);
    /* Armed with an N (or budget) no run reaches, to count the calls. */
    fi_arm(m->kind, INT64_MAX / 4, 0);
    int rc = op->fn(s);
    MUST(fi_disarm() == 0);
    int64_t calls = fi_calls();
    if (rc != 0)
        fprintf(stderr, "[%s] the fault-free run returned %s\n", op->name, at_err_name(rc));
    MUST(rc == 0);
    if (s)
        at_store_close(s);
    at_store *r = open_store(g_db);
    snap_free(&g_new);
    g_new = take_snap(r);
    MUST(g_new.ok);
    at_store_close(r);
    return calls;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run_loop(const struct op *op, const struct mode *m)
{
    struct tally t = {0};
    snprintf(g_ctx, sizeof g_ctx, "%s/%s reference", op->name, m->name);
    t.calls = reference(op, m);
    if (m->kind == FI_FULL && op->nogrow) {
        if (t.calls != 0)
            FAIL("grows the files by %lld bytes, yet is marked as writing nothing", (long long)t.calls);
        printf("%-16s %-15s n/a: grows no file (checked)\n", op->name, m->name);
        return;
    }
    snap_free(&g_old);
    /* The opens change no job: old and new are the same (an empty store
     * when creating one). */
    if (op->opens != OPEN_CREATE)
        prepare_files(op);
    at_store *r = open_store(g_db);
    g_old = take_snap(r);
    at_store_close(r);
    MUST(g_old.ok);

    /* Which N: every one up to 16, then one stride that keeps the loop
     * near 30 * scale iterations (the reference run counted the calls).
     * A disk-full budget steps by at least 4 KiB: a WAL frame is 4 KiB +
     * 24 bytes, so finer steps only fail the same frame again. */
    int64_t dense = 16, cap = 30 * (int64_t)g_scale, stride = 1;
    int64_t unit = 1, start = 1;
    if (m->kind == FI_FULL) {
        start = 0;
        unit = t.calls / cap > 4096 ? t.calls / cap : 4096;
    }
    double t0 = now_s();
    int64_t n = start;
    for (;;) {
        snprintf(g_ctx, sizeof g_ctx, "%s/%s N=%lld", op->name, m->name, (long long)n);
        int64_t hits = iterate(op, m, n, &t);
        if (hits == 0) {
            t.last_n = n;
            break;
        }
        if (m->kind == FI_FULL) {
            n += unit;
        } else {
            if (t.iters == dense && g_scale < 1000 && t.calls > cap)
                stride = (t.calls - n) / (cap - dense) + 1;
            n += stride;
        }
        if (t.iters > 4 * (t.calls / unit + 100)) {
            FAIL("the loop does not end: a fault is still met at N=%lld", (long long)n);
            break;
        }
    }
    double dt = now_s() - t0;
    if (t.hits == 0)
        FAIL("no fault was ever injected: the loop proves nothing");
    if (op->control && t.torn == 0)
        FAIL("the control's torn state (one of two transactions done) was never detected");
    if (t.errors == 0)
        FAIL("no injected fault ever made the operation fail");
    char codes[160] = "";
    size_t len = 0;
    for (int c = 1; c < 32; c++)
        if (t.codes[c])
            len += (size_t)snprintf(codes + len, sizeof codes - len, " %s:%ld", at_err_name(-c), t.codes[c]);
    printf(
        "%-16s %-15s calls=%-6lld iters=%-4ld last_N=%-6lld faults=%-5ld errors=%-4ld redone=%-4ld %5.2fs%s",
        op->name, m->name, (long long)t.calls, t.iters, (long long)t.last_n, t.hits, t.errors, t.reruns, dt,
        codes);
    if (op->control)
        printf(" torn-states-caught=%ld", t.torn);
    printf("\n");
    fflush(stdout);
}

/* ------------------------------------------------------------- disk full */

/* Enqueue under a growth budget until the disk is full; every job whose
 * enqueue returned 0 must survive, and the store must work again once
 * there is space (through the same handle, or reopened after a close while
 * still full). */
static void disk_full(int close_while_full)
{
    snprintf(g_ctx, sizeof g_ctx, "disk_full%s", close_while_full ? "/close_while_full" : "/same_handle");
    double t0 = now_s();
    rm_db(g_db);
    copy_file(g_tmpl, g_db);
    at_store *s = open_store(g_db);
    enum { MAXJ = 4000 };
    static char ids[MAXJ][AT_ID_SIZE];
    size_t n = 0;
    int rc = 0;
    char payload[300];
    memset(payload, 'x', sizeof payload);
    fi_arm(FI_FULL, 96 * 1024, 0);
    while (n < MAXJ) {
        rc = at_enqueue(ids[n], s, "t", payload, sizeof payload, NULL);
        if (rc != 0)
            break;
        n++;
    }
    /* Full stays full: the next try fails the same way. */
    int rc_again = at_enqueue(NULL, s, "t", payload, sizeof payload, NULL);
    if (rc != AT_ERR_FULL || rc_again != AT_ERR_FULL)
        FAIL("enqueues on a full disk returned %s then %s, not AT_ERR_FULL", at_err_name(rc),
             at_err_name(rc_again));
    if (n == 0)
        FAIL("the budget admitted no enqueue at all");
    if (close_while_full) {
        at_store_close(s);
        fi_disarm();
        s = open_store(g_db);
    } else {
        fi_disarm();
    }
    for (size_t i = 0; i < n; i++) {
        at_job *j = NULL;
        if ((rc = at_get(&j, s, ids[i])) != 0)
            FAIL("acknowledged job %zu of %zu is gone: %s", i, n, at_err_name(rc));
        at_job_free(j);
    }
    char id[AT_ID_SIZE];
    if ((rc = at_enqueue(id, s, "t", payload, sizeof payload, NULL)) != 0)
        FAIL("with space back, enqueue returns %s", at_err_name(rc));
    at_store_close(s);
    s = open_store(g_db);
    at_job *j = NULL;
    if ((rc = at_get(&j, s, id)) != 0)
        FAIL("the job enqueued after the full disk is gone after reopening: %s", at_err_name(rc));
    at_job_free(j);
    struct snap any = take_snap(s); /* also checks the counts */
    snap_free(&any);
    at_store_close(s);
    if (!integrity_ok(g_db))
        FAIL("PRAGMA integrity_check is not ok");
    printf("%-16s %-15s enqueued=%zu before AT_ERR_FULL (budget 96 KiB), all kept, usable after  %5.2fs\n",
           close_while_full ? "disk_full_close" : "disk_full", "diskfull", n, now_s() - t0);
}

/* ------------------------------------------------------------------ main */

static pid_t g_parent;

static void cleanup(void)
{
    if (getpid() != g_parent)
        return;
    rm_db(g_db);
    rm_db(g_tmpl);
    rm_db(g_tmpl_v1);
    rmdir(g_dir);
}

/* Run one loop in a child process: a crash is reported with the loop's
 * name and the others still run, and under ASan the leak check at the
 * child's exit names the loop that leaked (LeakSanitizer exits with 23). */
static void isolated(const struct op *op, const struct mode *m, int close_while_full)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    MUST(pid >= 0);
    if (pid == 0) {
        g_failures = 0;
        if (op)
            run_loop(op, m);
        else
            disk_full(close_while_full);
        snap_free(&g_old);
        snap_free(&g_new);
        at_clock_free(g_clock);
        exit(g_failures ? 1 : 0);
    }
    int status = 0;
    MUST(waitpid(pid, &status, 0) == pid);
    snprintf(g_ctx, sizeof g_ctx, "%s/%s", op ? op->name : "disk_full", m ? m->name : "diskfull");
    if (WIFSIGNALED(status))
        FAIL("the loop died of signal %d", WTERMSIG(status));
    else if (WEXITSTATUS(status) == 23)
        FAIL("LeakSanitizer found leaks (reported above)");
    else if (WEXITSTATUS(status) != 0)
        FAIL("the loop failed (exit status %d, messages above)", WEXITSTATUS(status));
}

static int wanted(int argc, char **argv, const char *name)
{
    if (argc < 2)
        return 1;
    for (int a = 1; a < argc; a++)
        if (strcmp(argv[a], name) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *sc = getenv("AT_FAULT_SCALE");
    if (sc && *sc) {
        g_scale = atoi(sc);
        if (g_scale < 1)
            g_scale = 1;
        if (g_scale > 1000)
            g_scale = 1000;
    }
    int src = fi_install();
    if (src != SQLITE_OK) {
        fprintf(stderr, "cannot install the fault injection: %s\n", sqlite3_errstr(src));
        return 1;
    }
    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/at_faultinj.XXXXXX", tmp);
    MUST(mkdtemp(g_dir));
    g_parent = getpid();
    atexit(cleanup);
    snprintf(g_tmpl, sizeof g_tmpl, "%s/template.db", g_dir);
    snprintf(g_tmpl_v1, sizeof g_tmpl_v1, "%s/template_v1.db", g_dir);
    snprintf(g_db, sizeof g_db, "%s/run.db", g_dir);
    snprintf(g_uri, sizeof g_uri, "sqlite:%s", g_db);
    MUST(at_clock_new_manual(&g_clock, T_OP) == 0);
    /* Built before any fork, with every store closed again: no handle
     * crosses fork(). */
    build_template();
    build_template_v1();

    double t0 = now_s();
    printf("# SQLite fault injection (AT_FAULT_SCALE=%d): operation, fault kind, eligible calls (bytes for\n"
           "# diskfull) of a fault-free run, iterations, the N that met no fault, faults injected, calls\n"
           "# that failed, failed calls redone on the same handle, time, codes returned\n",
           g_scale);
    for (size_t i = 0; i < N_OPS; i++) {
        if (!wanted(argc, argv, k_ops[i].name))
            continue;
        for (size_t k = 0; k < N_MODES; k++)
            isolated(&k_ops[i], &k_modes[k], 0);
    }
    if (wanted(argc, argv, "disk_full")) {
        isolated(NULL, NULL, 0);
        isolated(NULL, NULL, 1);
    }
    at_clock_free(g_clock);
    printf("# total %.1fs, %d failure%s\n", now_s() - t0, g_failures, g_failures == 1 ? "" : "s");
    return g_failures ? 1 : 0;
}
