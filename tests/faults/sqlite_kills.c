/*
 * sqlite_kills.c - no acknowledged job is ever lost on the SQLite backend,
 * whatever moment a process is SIGKILLed at and however many processes
 * contend for the file (a fault test of the reliability issue).
 *
 *   sqlite_kills [batch] [claim] [contend]      (default: all three)
 *
 * Environment: AT_FAULT_SCALE=N (1..1000, default 1) multiplies jobs, kills
 * and operations; AT_FAULT_SEED=X repeats a run's random choices (the seed
 * is printed first); AT_FAULT_KEEP=1 keeps the temporary directory of a
 * failed run; TMPDIR says where that directory is made.
 *
 * Each scenario has its own database file in the temporary directory.
 * Children are fork()ed while the parent has no store open (a handle must
 * not cross fork) and report to the parent through a pipe, one fixed-size
 * record per write(), far below PIPE_BUF: a SIGKILL never leaves half a
 * record, so the parent knows which calls were started and which returned,
 * and what they returned.  Outcomes go into tests/chaos/history.h.
 *
 * batch    3 producers enqueue batches of 1-64 jobs (a sequence number as
 *          payload, an idempotency key per job), are SIGKILLed 30 times
 *          (x scale) at random moments and replaced; a replacement first
 *          re-sends the batch its predecessor died in, as a recovering
 *          producer would.  A batch is reported before the call (its jobs are
 *          "unknown" from then on) and after it (0: acknowledged).  Checks:
 *          every acknowledged job is in the store, once; no job that was never
 *          sent or whose batch failed is; no batch is partly in the store; a
 *          re-sent batch comes back all duplicates or all new.
 * claim    1500 jobs (x scale) with 250 ms leases; 3 workers claim 1-4 at a
 *          time and ack each, reporting every claim (token, start, lease
 *          deadline) and every ack; 20 kills (x scale) at random points of the
 *          progress.  Checks: every job ends SUCCEEDED once the dead workers'
 *          leases expire; at most one ack of a job succeeds, under the job's
 *          final token; two claims of a job have different tokens and the
 *          later starts no earlier than the earlier's lease deadline; no ack
 *          is refused as stale before its lease deadline.
 * contend  4 processes (2 with the default busy_timeout of 5 s and 2 with
 *          2 ms; 2 sync=full, 2 sync=normal) make 400 random operations each
 *          (x scale): enqueue, batch enqueue, poll, ack, fail (retry or
 *          permanent), release, cancel, and now and then a holder stalls past
 *          its lease; then each drains the queue until every job is terminal.  Checks: AT_ERR_BUSY only from a call that waited
 *          its busy_timeout (at_store_open(3)), and then it changed nothing (a
 *          refused enqueue's job must not exist, a refused ack is retried and
 *          must not be stale before the deadline); no other error; every
 *          acknowledged job exists and ends in the state its successful
 *          operations imply, with the token of the operation that ended it;
 *          the claim rules of `claim`, except that after a successful fail or
 *          release the next claim may follow at once (but not precede it).
 *
 * Every scenario also checks that the per-queue counts (kept incrementally by
 * each transaction) match the jobs listed, and that PRAGMA integrity_check
 * on the file (opened with sqlite3 directly) answers "ok".  It prints one
 * line: its own figures, then history.h's counts.  Exit 0 only when every
 * check of every scenario passed; every child is stopped and reaped by PID
 * and the temporary directory is removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "asynctask.h"
#include "../chaos/history.h"
#include "../chaos/util.h"

/* Sequence numbers per producer process: block b holds b * SEQ_SPAN + 0..,
 * so producers never need to agree on numbers. */
#define SEQ_SPAN INT64_C(1000000000)
#define MAX_KIDS 4

/* ---------------------------------------------------------------- reports */

enum { R_READY = 1, R_ENQ_BEGIN, R_ENQ_END, R_CLAIM, R_OP, R_DONE };
enum { OP_POLL = 1, OP_ACK, OP_FAIL, OP_FAIL_PERM, OP_RELEASE, OP_CANCEL, OP_STATS, OP_OPEN };

/* One report; written with one write() so that it is in the pipe whole or
 * not at all. */
struct rec {
    int32_t kind, op;
    int32_t rc;
    int32_t aux;   /* batch size; at_fail's new state; at_cancel's pending */
    int32_t flag;  /* ENQ: a re-sent batch */
    int32_t extra; /* ENQ_END: entries that were duplicates */
    int32_t slot, pad_; /* set by the parent: the slot it came from */
    int64_t seq;   /* the job's (or the batch's first) sequence number */
    uint64_t token;
    int64_t t0, t1;  /* the child's wall clock (ms) just before and after the call */
    int64_t took_ms; /* the call's duration on the monotonic clock */
    int64_t started, lease; /* CLAIM: the snapshot's start and lease deadline */
};
_Static_assert(sizeof(struct rec) <= PIPE_BUF / 8, "a report must be written atomically");

static int g_rep_fd = -1; /* in a child: the write end of its pipe */

static void report(struct rec r)
{
    /* The parent is gone or the pipe is broken: nobody to work for. */
    if (write(g_rep_fd, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(3);
}

/* When a call began: the wall clock for its report (the checks compare it
 * with leases), the monotonic one for its duration. */
struct began {
    int64_t wall, mono_ns;
};

static struct began began_now(void)
{
    return (struct began){.wall = wall_ms(), .mono_ns = mono_ns()};
}

/* Report r for a call that began at b and has just returned: t0, t1 and
 * took_ms filled in. */
static void report_call(struct rec r, struct began b)
{
    r.t0 = b.wall;
    r.t1 = wall_ms();
    r.took_ms = (mono_ns() - b.mono_ns) / 1000000;
    report(r);
}

/* In a child that has opened its store: say so, or (the open failed) exit
 * with 4 after saying why. */
static void child_opened(int rc, const char *who, const char *uri)
{
    if (rc != 0) {
        fprintf(stderr, "%s %ld: open %s: %s\n", who, (long)getpid(), uri, at_last_error());
        _exit(4);
    }
    report((struct rec){.kind = R_READY});
}

static int64_t parse_seq(const at_job *j)
{
    size_t len;
    const char *p = at_job_payload(j, &len);
    char buf[32];
    size_t n = 0;
    while (n < len && n < sizeof buf - 1 && p[n] != '|') {
        buf[n] = p[n];
        n++;
    }
    buf[n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    return (n == 0 || *end != '\0' || errno) ? -1 : (int64_t)v;
}

/* Jobs of `queue` that are not terminal, or a negative AT_ERR_* code. */
static int64_t unfinished(at_store *st, const char *queue)
{
    at_stats *s;
    int rc = at_stats_get(&s, st);
    if (rc != 0)
        return rc;
    int64_t n = 0;
    for (size_t i = 0; i < at_stats_queue_count(s); i++)
        if (strcmp(at_stats_queue_name(s, i), queue) == 0)
            for (int32_t state = AT_STATE_WAITING; state <= AT_STATE_RUNNING; state++)
                n += (int64_t)at_stats_count(s, i, state);
    at_stats_free(s);
    return n;
}

/* ------------------------------------------------------------- children */

struct kid {
    pid_t pid; /* 0: the slot is free */
    int fd;
    size_t have; /* bytes of a report read so far */
    unsigned char part[sizeof(struct rec)];
    int ready, done;
    int64_t block;   /* its block of sequence numbers */
    long open_batch; /* batch reported begun and not ended, or -1 */
    long holding;    /* claims reported and not yet acked */
};

static struct kid g_kids[MAX_KIDS];
static int g_nkids;

/* The reports that only say where a child is in its life (open, or done
 * with its share): 1 when r was one of them. */
static int kid_lifecycle(int slot, const struct rec *r)
{
    if (r->kind == R_READY)
        g_kids[slot].ready = 1;
    else if (r->kind == R_DONE)
        g_kids[slot].done = 1;
    else
        return 0;
    return 1;
}

/* A child that exited by itself: finished when it had reported DONE and
 * exited with 0, else a crash, said on stderr as `what` in slot N. */
static void count_exit(int slot, int status, const char *what, long *finished, long *crashes)
{
    if (g_kids[slot].done && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        (*finished)++;
        return;
    }
    fprintf(stderr, "%s in slot %d exited with status %d before it was done\n", what, slot, status);
    (*crashes)++;
}

/* Past the scenario's deadline: 1, after saying so. */
static int overdue(const char *scenario, int64_t deadline, int64_t t_start)
{
    if (mono_ms() <= deadline)
        return 0;
    fprintf(stderr, "%s: not finished after %lld s\n", scenario, (long long)(deadline - t_start) / 1000);
    return 1;
}

typedef void (*rec_fn)(int slot, struct rec *r);
typedef void (*child_fn)(int slot, void *arg);

/* Fork a child into `slot` running fn(slot, arg).  The parent must hold no
 * store handle now. */
static int spawn(int slot, child_fn fn, void *arg)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        perror("pipe2");
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        /* Die with the parent: an interrupted test leaves no process behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
        close(p[0]);
        for (int i = 0; i < g_nkids; i++)
            if (g_kids[i].pid)
                close(g_kids[i].fd);
        g_rep_fd = p[1];
        fn(slot, arg);
        _exit(0);
    }
    close(p[1]);
    struct kid *k = &g_kids[slot];
    memset(k, 0, sizeof *k);
    k->pid = pid;
    k->fd = p[0];
    k->open_batch = -1;
    return 0;
}

/* Read once from the slot's pipe and hand every complete report to fn;
 * 0 at end of file (the child has exited). */
static int pump(int slot, rec_fn fn)
{
    struct kid *k = &g_kids[slot];
    unsigned char buf[64 * sizeof(struct rec)];
    ssize_t n = read(k->fd, buf, sizeof buf);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN;
    if (n == 0)
        return 0;
    size_t off = 0;
    while (off < (size_t)n) {
        size_t take = sizeof(struct rec) - k->have;
        if (take > (size_t)n - off)
            take = (size_t)n - off;
        memcpy(k->part + k->have, buf + off, take);
        k->have += take;
        off += take;
        if (k->have == sizeof(struct rec)) {
            struct rec r;
            memcpy(&r, k->part, sizeof r);
            k->have = 0;
            r.slot = slot;
            fn(slot, &r);
        }
    }
    return 1;
}

/* Reap the slot's child (already dead or exiting), read what it reported
 * before it died, and free the slot.  Returns the wait status. */
static int reap(int slot, rec_fn fn)
{
    struct kid *k = &g_kids[slot];
    int status = 0;
    while (waitpid(k->pid, &status, 0) < 0 && errno == EINTR)
        ;
    while (pump(slot, fn))
        ;
    close(k->fd);
    k->pid = 0;
    return status;
}

/* SIGKILL the slot's child and reap it. */
static int kill_kid(int slot, rec_fn fn)
{
    kill(g_kids[slot].pid, SIGKILL);
    return reap(slot, fn);
}

static void ignore_rec(int slot, struct rec *r)
{
    (void)slot;
    (void)r;
}

/* On every way out: no child outlives its test. */
static void kill_all(void)
{
    for (int i = 0; i < g_nkids; i++)
        if (g_kids[i].pid)
            kill_kid(i, ignore_rec);
}

/* Wait up to timeout_ms for reports; a child whose pipe ends is reaped and
 * its status passed to on_exit (with the slot already free). */
static void pump_all(int64_t timeout_ms, rec_fn fn, void (*on_exit)(int slot, int status))
{
    struct pollfd pf[MAX_KIDS];
    int idx[MAX_KIDS], n = 0;
    for (int i = 0; i < g_nkids; i++)
        if (g_kids[i].pid) {
            pf[n] = (struct pollfd){.fd = g_kids[i].fd, .events = POLLIN};
            idx[n++] = i;
        }
    if (n == 0) {
        sleep_ms(timeout_ms);
        return;
    }
    if (poll(pf, (nfds_t)n, (int)timeout_ms) <= 0)
        return;
    for (int i = 0; i < n; i++)
        if (pf[i].revents && !pump(idx[i], fn))
            on_exit(idx[i], reap(idx[i], fn));
}

/* ---------------------------------------------------------------- common */

static uint64_t g_rng;
static long g_scale = 1;
static char g_dir[512];

static void store_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s.db", g_dir, name);
}

/* PRAGMA integrity_check through sqlite3 itself, not the library under
 * test.  Writes "ok" or the first complaint to out; 1 when ok. */
static int integrity(const char *path, char *out, size_t len)
{
    sqlite3 *db = NULL;
    snprintf(out, len, "cannot open");
    /* Read-write: the last process may have died with a WAL to recover. */
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(out, len, "open: %s", db ? sqlite3_errmsg(db) : "?");
        sqlite3_close(db);
        return 0;
    }
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt *s = NULL;
    int rows = 0, ok = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) == SQLITE_OK) {
        int src;
        while ((src = sqlite3_step(s)) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(s, 0);
            if (rows++ == 0) {
                snprintf(out, len, "%s", t ? t : "(null)");
                ok = t && strcmp(t, "ok") == 0;
            }
        }
        if (src != SQLITE_DONE) {
            snprintf(out, len, "step: %s", sqlite3_errmsg(db));
            ok = 0;
        }
    } else {
        snprintf(out, len, "prepare: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return ok && rows == 1;
}

typedef void (*job_fn)(void *ud, const at_job *j);

/* Every job of the store, oldest first; counts per state into by_state. */
static int each_job(at_store *st, job_fn fn, void *ud, uint64_t by_state[AT_STATE_COUNT__])
{
    char cursor[AT_CURSOR_SIZE] = "", next[AT_CURSOR_SIZE];
    static at_job *jobs[1000];
    for (;;) {
        size_t n = 0;
        int rc = at_list(jobs, &n, next, st, NULL, AT_STATE_ANY, cursor, 1000);
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            int32_t s = at_job_state(jobs[i]);
            if (s > 0 && s < AT_STATE_COUNT__)
                by_state[s]++;
            fn(ud, jobs[i]);
            at_job_free(jobs[i]);
        }
        if (next[0] == '\0')
            return 0;
        memcpy(cursor, next, sizeof cursor);
    }
}

/* The queue's counts per state, kept by every transaction, must be those
 * of the jobs listed: a kill between two halves of a transition would show. */
static int counts_match(at_store *st, const char *queue, const uint64_t by_state[AT_STATE_COUNT__])
{
    at_stats *s;
    if (at_stats_get(&s, st) != 0)
        return 0;
    int ok = 1, seen = 0;
    for (size_t i = 0; i < at_stats_queue_count(s); i++) {
        if (strcmp(at_stats_queue_name(s, i), queue) != 0)
            continue;
        seen = 1;
        for (int32_t state = 1; state < AT_STATE_COUNT__; state++)
            if (at_stats_count(s, i, state) != by_state[state]) {
                fprintf(stderr, "counts: queue %s state %s: stats %" PRIu64 ", listed %" PRIu64 "\n", queue,
                        at_state_name(state), at_stats_count(s, i, state), by_state[state]);
                ok = 0;
            }
    }
    at_stats_free(s);
    if (!seen)
        for (int32_t state = 1; state < AT_STATE_COUNT__; state++)
            ok &= by_state[state] == 0;
    return ok;
}

/* ------------------------------------------------- enqueue bookkeeping */

/* Batches (single enqueues are batches of one) as the parent learnt of
 * them, and per block of sequence numbers how many were used, so that the
 * history's job numbers can be dense. */
struct batch {
    int64_t first;
    int32_t count;
    int32_t outcome; /* enum hist_enq */
};

struct enqlog {
    struct batch *b;
    size_t nb, capb;
    int64_t *used; /* per block */
    size_t *offset;
    size_t nblocks, capused;
    size_t total;
};

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *q = realloc(p, nc * size);
    if (!q) {
        perror("realloc");
        kill_all();
        exit(1);
    }
    memset((char *)q + *cap * size, 0, (nc - *cap) * size);
    *cap = nc;
    return q;
}

static void enq_blocks(struct enqlog *e, size_t nblocks)
{
    e->used = grow(e->used, &e->capused, nblocks, sizeof *e->used);
    if (nblocks > e->nblocks)
        e->nblocks = nblocks;
}

/* A batch was begun by a child of `block`: its jobs are unknown from now. */
static long enq_begin(struct enqlog *e, int64_t block, int64_t first, int32_t count)
{
    e->b = grow(e->b, &e->capb, e->nb + 1, sizeof *e->b);
    e->b[e->nb] = (struct batch){.first = first, .count = count, .outcome = HIST_ENQ_UNKNOWN};
    int64_t local = first - block * SEQ_SPAN;
    if (block >= 0 && (size_t)block < e->nblocks && local >= 0 && local + count <= SEQ_SPAN &&
        e->used[block] < local + count)
        e->used[block] = local + count;
    return (long)e->nb++;
}

static void enq_finish(struct enqlog *e)
{
    e->offset = calloc(e->nblocks + 1, sizeof *e->offset);
    if (!e->offset) {
        perror("calloc");
        exit(1);
    }
    e->total = 0;
    for (size_t i = 0; i < e->nblocks; i++) {
        e->offset[i] = e->total;
        e->total += (size_t)e->used[i];
    }
}

/* The history's number of a sequence number, or SIZE_MAX for one that no
 * child ever reported: history.h counts those as unexpected. */
static size_t enq_index(const struct enqlog *e, int64_t seq)
{
    if (seq < 0)
        return SIZE_MAX;
    int64_t block = seq / SEQ_SPAN, local = seq % SEQ_SPAN;
    if ((size_t)block >= e->nblocks || local >= e->used[block])
        return SIZE_MAX;
    return e->offset[block] + (size_t)local;
}

static void enq_free(struct enqlog *e)
{
    free(e->b);
    free(e->used);
    free(e->offset);
    memset(e, 0, sizeof *e);
}

/* Map the logged batches into a new history. */
static struct hist *enq_history(struct enqlog *e)
{
    enq_finish(e);
    struct hist *h = hist_new(e->total);
    if (!h) {
        perror("hist_new");
        exit(1);
    }
    for (size_t i = 0; i < e->nb; i++)
        for (int32_t j = 0; j < e->b[i].count; j++)
            hist_enqueued(h, enq_index(e, e->b[i].first + j), (enum hist_enq)e->b[i].outcome);
    return h;
}

/* ======================================================= 1: batch kills */

#define S1_KIDS 3
#define S1_MAX_BATCH 64

struct s1_arg {
    char uri[800];
    int64_t block;
    int64_t resend_first;
    int32_t resend_count;
    uint64_t seed;
};

static void s1_send(at_store *st, at_batch *b, at_opts *o, int64_t first, int32_t count, int resend,
                    uint64_t *rng)
{
    at_batch_clear(b);
    for (int32_t i = 0; i < count; i++) {
        /* Payloads of 8 to about 400 bytes, so that batches end at every
         * offset of a page and some spill into overflow pages. */
        char payload[512], key[64];
        int n = snprintf(payload, sizeof payload, "%lld|", (long long)(first + i));
        size_t pad = (size_t)rng_below(rng, 384);
        memset(payload + n, 'x', pad);
        snprintf(key, sizeof key, "k1:%lld", (long long)(first + i));
        if (at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, key) != 0 ||
            at_batch_add(b, "kills.batch", payload, (size_t)n + pad, o) != 0)
            _exit(5);
    }
    report((struct rec){.kind = R_ENQ_BEGIN, .seq = first, .aux = count, .flag = resend});
    struct began t = began_now();
    int rc = at_enqueue_batch(st, b);
    int32_t dups = 0;
    for (int32_t i = 0; rc == 0 && i < count; i++)
        dups += at_batch_status(b, (size_t)i) == AT_ERR_DUPLICATE;
    report_call((struct rec){.kind = R_ENQ_END, .seq = first, .aux = count, .flag = resend, .rc = rc, .extra = dups},
                t);
}

static void s1_child(int slot, void *arg)
{
    (void)slot;
    const struct s1_arg *a = arg;
    at_store *st;
    child_opened(at_store_open(&st, a->uri), "producer", a->uri);
    at_opts *o;
    at_batch *b;
    if (at_opts_new(&o) != 0 || at_opts_set_str(o, AT_OPT_QUEUE, "k1") != 0 || at_batch_new(&b) != 0)
        _exit(5);
    uint64_t rng = a->seed;
    if (a->resend_count > 0)
        s1_send(st, b, o, a->resend_first, a->resend_count, 1, &rng);
    for (int64_t local = 0; local + S1_MAX_BATCH <= SEQ_SPAN;) {
        int32_t n = 1 + (int32_t)rng_below(&rng, S1_MAX_BATCH);
        s1_send(st, b, o, a->block * SEQ_SPAN + local, n, 0, &rng);
        local += n;
    }
    _exit(0);
}

static struct {
    struct enqlog e;
    long pending[S1_KIDS]; /* batch to re-send by the slot's next child, or -1 */
    long kills, in_call, opening, between, crashes;
    long acked, resent, resent_dup, resend_mixed, fresh_dups, errors, bad_reports;
    int64_t nblocks;
    int crashed_slot[S1_KIDS];
} s1;

static void s1_rec(int slot, struct rec *r)
{
    struct kid *k = &g_kids[slot];
    switch (r->kind) {
    case R_READY:
        k->ready = 1;
        break;
    case R_ENQ_BEGIN:
        if (r->flag) {
            long p = s1.pending[slot];
            if (p < 0 || s1.e.b[p].first != r->seq || s1.e.b[p].count != r->aux) {
                s1.bad_reports++;
                break;
            }
            k->open_batch = p;
        } else {
            k->open_batch = enq_begin(&s1.e, k->block, r->seq, r->aux);
        }
        break;
    case R_ENQ_END: {
        long p = k->open_batch;
        k->open_batch = -1;
        if (p < 0 || s1.e.b[p].first != r->seq) {
            s1.bad_reports++;
            break;
        }
        struct batch *b = &s1.e.b[p];
        if (r->rc == 0) {
            b->outcome = HIST_ENQ_OK;
            s1.acked++;
            if (r->flag) {
                /* All keys found (the first send committed) or none: a mix
                 * would be a batch that was half written. */
                s1.resent++;
                s1.resent_dup += r->extra == b->count && b->count > 0;
                s1.resend_mixed += r->extra != 0 && r->extra != b->count;
                s1.pending[slot] = -1;
            } else {
                s1.fresh_dups += r->extra != 0;
            }
        } else {
            if (s1.errors++ < 5)
                fprintf(stderr, "batch: enqueue of %d jobs: %s after %lld ms\n", b->count, at_err_name(r->rc),
                        (long long)r->took_ms);
            /* A failure of a re-send says nothing of the first send. */
            if (!r->flag && b->outcome != HIST_ENQ_OK)
                b->outcome = HIST_ENQ_FAILED;
        }
        break;
    }
    default:
        s1.bad_reports++;
    }
}

static void s1_exit(int slot, int status)
{
    /* A producer never stops by itself. */
    fprintf(stderr, "batch: producer in slot %d exited by itself (status %d)\n", slot, status);
    s1.crashes++;
    s1.crashed_slot[slot] = 1;
}

static int s1_spawn(int slot, const char *path)
{
    struct s1_arg a = {.block = s1.nblocks, .seed = rng_next(&g_rng) | 1};
    snprintf(a.uri, sizeof a.uri, "sqlite:%s%s", path, slot == 1 ? "?sync=normal" : "");
    long p = s1.pending[slot];
    if (p >= 0) {
        a.resend_first = s1.e.b[p].first;
        a.resend_count = s1.e.b[p].count;
    }
    enq_blocks(&s1.e, (size_t)s1.nblocks + 1);
    if (spawn(slot, s1_child, &a) != 0)
        return -1;
    g_kids[slot].block = s1.nblocks++;
    return 0;
}

/* SIGKILL the slot's producer and sort the kill by where it landed. */
static void s1_kill(int slot)
{
    struct kid *k = &g_kids[slot];
    int status = kill_kid(slot, s1_rec);
    s1.kills++;
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
        fprintf(stderr, "batch: producer had exited (status %d) before its kill\n", status);
        s1.crashes++;
    }
    if (k->open_batch >= 0) {
        /* Begun and not ended: killed inside at_enqueue_batch (or just
         * around it); the batch is unknown and the next child re-sends it. */
        s1.in_call++;
        s1.pending[slot] = k->open_batch;
    } else if (!k->ready) {
        s1.opening++;
    } else {
        s1.between++;
    }
}

struct s1_check {
    struct hist *h;
    const struct enqlog *e;
    long stray, wrong, badkey;
};

static void s1_job(void *ud, const at_job *j)
{
    struct s1_check *c = ud;
    int64_t seq = parse_seq(j);
    size_t i = enq_index(c->e, seq);
    if (i == SIZE_MAX && c->stray++ < 5)
        fprintf(stderr, "batch: job %s (seq %lld) was never sent\n", at_job_id(j), (long long)seq);
    hist_delivered(c->h, i);
    char key[64];
    snprintf(key, sizeof key, "k1:%lld", (long long)seq);
    const char *k = at_job_idempotency_key(j);
    c->badkey += !k || strcmp(k, key) != 0;
    c->wrong += at_job_state(j) != AT_STATE_READY;
}

static int scenario_batch(void)
{
    char path[600];
    store_path(path, sizeof path, "batch");
    memset(&s1, 0, sizeof s1);
    for (int i = 0; i < S1_KIDS; i++)
        s1.pending[i] = -1;
    g_nkids = S1_KIDS;
    int64_t t_start = mono_ms();
    long nkills = 30 * g_scale;
    for (int i = 0; i < S1_KIDS; i++)
        if (s1_spawn(i, path) != 0)
            goto fail;
    /* Kill a random producer 1-25 ms after it has opened the store, long
     * enough for a few batches and short enough that most kills land inside
     * a call; one kill in four does not wait for the open (schema check, WAL
     * recovery after the previous kill), whose duration varies most. */
    while (s1.kills < nkills) {
        int victim = (int)rng_below(&g_rng, S1_KIDS);
        int early = rng_below(&g_rng, 4) == 0;
        int64_t delay = 1 + (int64_t)rng_below(&g_rng, 25), now;
        int64_t ready_by = mono_ms() + 10000;
        while (!early && g_kids[victim].pid && !g_kids[victim].ready && mono_ms() < ready_by)
            pump_all(5, s1_rec, s1_exit);
        int64_t at = mono_ms() + delay;
        while ((now = mono_ms()) < at)
            pump_all(at - now, s1_rec, s1_exit);
        for (int i = 0; i < S1_KIDS; i++) {
            if (i == victim && g_kids[i].pid)
                s1_kill(i);
            if (!g_kids[i].pid && s1_spawn(i, path) != 0)
                goto fail;
        }
    }
    /* The last ones die at a random moment too. */
    for (int i = 0; i < S1_KIDS; i++)
        if (g_kids[i].pid)
            s1_kill(i);

    struct hist *h = enq_history(&s1.e);
    struct s1_check c = {.h = h, .e = &s1.e};
    uint64_t by_state[AT_STATE_COUNT__] = {0};
    at_store *st;
    int counts_ok = 0, rc;
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s", path);
    if ((rc = at_store_open(&st, uri)) != 0) {
        fprintf(stderr, "batch: open %s: %s\n", uri, at_last_error());
        hist_free(h);
        goto fail;
    }
    rc = each_job(st, s1_job, &c, by_state);
    if (rc == 0)
        counts_ok = counts_match(st, "k1", by_state);
    else
        fprintf(stderr, "batch: at_list: %s\n", at_err_name(rc));
    at_store_close(st);
    /* All or nothing: a batch's jobs are all in the store or none is. */
    long half = 0;
    for (size_t i = 0; i < s1.e.nb; i++) {
        int32_t found = 0;
        for (int32_t j = 0; j < s1.e.b[i].count; j++)
            found += hist_deliveries(h, enq_index(&s1.e, s1.e.b[i].first + j)) > 0;
        if (found != 0 && found != s1.e.b[i].count && half++ < 5)
            fprintf(stderr, "batch: %d of the %d jobs of batch %lld are in the store\n", found, s1.e.b[i].count,
                    (long long)s1.e.b[i].first);
    }
    char integ[256];
    int integ_ok = integrity(path, integ, sizeof integ);
    struct hist_counts hc;
    hist_check(h, &hc);
    /* A kill that never lands inside a call tests nothing. */
    int pass = rc == 0 && counts_ok && integ_ok && half == 0 && hc.duplicated == 0 && s1.resend_mixed == 0 &&
               s1.fresh_dups == 0 && s1.errors == 0 && s1.crashes == 0 && s1.bad_reports == 0 && c.wrong == 0 &&
               c.badkey == 0 && s1.in_call > 0;
    char name[640];
    snprintf(name, sizeof name,
             "sqlite_kills batch [kills=%ld in_call=%ld opening=%ld between=%ld batches=%zu acked=%ld resent=%ld"
             " (found_committed=%ld) resend_mixed=%ld half_batches=%ld duplicates=%" PRIu64 " errors=%ld crashes=%ld counts=%s"
             " integrity=%s %.1fs]",
             s1.kills, s1.in_call, s1.opening, s1.between, s1.e.nb, s1.acked, s1.resent, s1.resent_dup, s1.resend_mixed, half,
             hc.duplicated, s1.errors, s1.crashes, counts_ok ? "ok" : "MISMATCH", integ,
             (double)(mono_ms() - t_start) / 1000);
    pass &= hist_report(name, &hc) == 0;
    if (c.wrong || c.badkey || s1.bad_reports || s1.fresh_dups)
        fprintf(stderr, "batch: %ld jobs not READY, %ld with a wrong key, %ld bad reports, %ld fresh batches with"
                        " duplicate keys\n", c.wrong, c.badkey, s1.bad_reports, s1.fresh_dups);
    hist_free(h);
    enq_free(&s1.e);
    return pass;
fail:
    kill_all();
    enq_free(&s1.e);
    return 0;
}

/* ================================================ claim rules (2 and 3) */

/* What the store says of a job at the end. */
struct final {
    int found;
    int32_t state;
    uint64_t token;
    uint32_t attempts;
};

struct viol {
    uint64_t claims, reclaimed;
    uint64_t same_token;  /* two reported claims of one job with one token */
    uint64_t overlap;     /* a claim while an earlier one was still valid */
    uint64_t after_end;   /* a claim after the job had ended */
    uint64_t token_wrong; /* the operation that ended a job is not its last claim */
    uint64_t double_ack;  /* two acks of one job succeeded */
    uint64_t stale_early; /* refused as stale before its lease deadline */
    uint64_t state_wrong; /* final state not the one the operations imply */
    uint64_t lease_wrong; /* a lease deadline other than start + the job's lease */
};

static int cmp_rec(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    if (x->token != y->token)
        return x->token < y->token ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind == R_CLAIM ? -1 : 1; /* a claim before its operations */
    return (x->t0 > y->t0) - (x->t0 < y->t0);
}

static void complain(uint64_t *counter, int64_t seq, const char *what, uint64_t token)
{
    if ((*counter)++ < 3)
        fprintf(stderr, "job seq %lld, token %" PRIu64 ": %s\n", (long long)seq, token, what);
}

/* Check the reports of one job, ev[0..n) sorted by cmp_rec, against each
 * other and the job's final snapshot.  Returns how many acks succeeded. */
static uint64_t check_job(const struct rec *ev, size_t n, const struct final *f, int64_t lease_ms, struct viol *v)
{
    uint64_t ok_acks = 0;
    const struct rec *prev = NULL; /* the previous claim */
    int prev_terminal = 0;         /* ended by its holder in a terminal state */
    int64_t prev_early = -1;       /* t0 of its holder's successful fail/release */
    int32_t want = 0;              /* the final state the operations imply */
    for (size_t i = 0; i < n; i++) {
        const struct rec *r = &ev[i];
        if (r->kind == R_OP && r->op == OP_CANCEL) {
            if (r->rc == 0)
                want = AT_STATE_CANCELLED;
            continue;
        }
        if (r->kind == R_CLAIM) {
            v->claims++;
            if (r->lease - r->started != lease_ms)
                complain(&v->lease_wrong, r->seq, "lease deadline is not start + lease", r->token);
            if (prev) {
                v->reclaimed++;
                if (prev->token == r->token)
                    complain(&v->same_token, r->seq, "two claims with one token", r->token);
                else if (prev_terminal)
                    complain(&v->after_end, r->seq, "claimed after its holder ended it", r->token);
                else if (prev_early >= 0 ? r->t1 < prev_early : r->started < prev->lease) {
                    /* Claimed (and returned) before the earlier holder gave it
                     * back, or started before the earlier lease expired. */
                    char what[256];
                    snprintf(what, sizeof what,
                             "claimed (start %lld, poll %lld..%lld) while token %" PRIu64
                             " held it (start %lld, lease until %lld, given back at %lld)",
                             (long long)r->started, (long long)r->t0, (long long)r->t1, prev->token,
                             (long long)prev->started, (long long)prev->lease, (long long)prev_early);
                    complain(&v->overlap, r->seq, what, r->token);
                }
            }
            prev = r;
            prev_terminal = 0;
            prev_early = -1;
            continue;
        }
        if (r->kind != R_OP || !prev || r->token != prev->token)
            continue;
        /* An operation of the holder of `prev`. */
        int ends = 0;
        int32_t state = 0;
        if (r->rc == AT_ERR_STALE && r->t1 < prev->lease)
            complain(&v->stale_early, r->seq, "refused as stale before its lease deadline", r->token);
        if (r->rc == AT_ERR_CANCELLED) {
            ends = 1;
            state = AT_STATE_CANCELLED;
        } else if (r->rc == 0 && r->op == OP_ACK) {
            ends = 1;
            state = AT_STATE_SUCCEEDED;
            if (++ok_acks > 1)
                complain(&v->double_ack, r->seq, "acked twice", r->token);
        } else if (r->rc == 0 && (r->op == OP_FAIL || r->op == OP_FAIL_PERM) && r->aux == AT_STATE_DEAD) {
            ends = 1;
            state = AT_STATE_DEAD;
        } else if (r->rc == 0 && (r->op == OP_FAIL || r->op == OP_FAIL_PERM || r->op == OP_RELEASE)) {
            if (r->op == OP_FAIL_PERM)
                complain(&v->state_wrong, r->seq, "a permanent fail did not make it DEAD", r->token);
            prev_early = r->t0;
        }
        if (ends) {
            prev_terminal = 1;
            if (want != AT_STATE_CANCELLED || state == AT_STATE_CANCELLED)
                want = state;
            if (f->found && f->token != r->token)
                complain(&v->token_wrong, r->seq, "ended under a token that is not its last", r->token);
        }
    }
    if (want && (!f->found || f->state != want))
        complain(&v->state_wrong, ev[0].seq, "final state differs from what its operations imply", 0);
    return ok_acks;
}

static uint64_t viol_total(const struct viol *v)
{
    return v->same_token + v->overlap + v->after_end + v->token_wrong + v->double_ack + v->stale_early +
           v->state_wrong + v->lease_wrong;
}

/* The reports of the run, for the checks at the end. */
static struct rec *g_ev;
static size_t g_nev, g_capev;

static void ev_push(const struct rec *r)
{
    g_ev = grow(g_ev, &g_capev, g_nev + 1, sizeof *g_ev);
    g_ev[g_nev++] = *r;
}

static void ev_free(void)
{
    free(g_ev);
    g_ev = NULL;
    g_nev = g_capev = 0;
}

/* ======================================================= 2: claim kills */

#define S2_KIDS 3
#define S2_LEASE_MS 250

struct s2_arg {
    char uri[800];
    uint64_t seed;
};

static void s2_child(int slot, void *arg)
{
    (void)slot;
    const struct s2_arg *a = arg;
    at_store *st;
    child_opened(at_store_open(&st, a->uri), "worker", a->uri);
    uint64_t rng = a->seed;
    const char *q[] = {"k2"};
    for (;;) {
        at_job *jobs[4];
        size_t n = 0, max = 1 + (size_t)rng_below(&rng, 4);
        struct began t = began_now();
        int rc = at_poll(jobs, &n, st, q, 1, max, 50);
        int64_t t1 = wall_ms();
        if (rc != 0) {
            report_call((struct rec){.kind = R_OP, .op = OP_POLL, .rc = rc}, t);
            sleep_ms(2);
            continue;
        }
        /* Every claim is reported before any of them is acked. */
        for (size_t i = 0; i < n; i++)
            report((struct rec){.kind = R_CLAIM, .seq = parse_seq(jobs[i]), .token = at_job_token(jobs[i]),
                                .t0 = t.wall, .t1 = t1, .started = at_job_time(jobs[i], AT_JOB_TIME_STARTED),
                                .lease = at_job_time(jobs[i], AT_JOB_TIME_LEASE)});
        for (size_t i = 0; i < n; i++) {
            sleep_ms((int64_t)rng_below(&rng, 3)); /* "work", and time for a kill to land */
            t = began_now();
            rc = at_ack(st, at_job_id(jobs[i]), at_job_token(jobs[i]), NULL, 0);
            report_call((struct rec){.kind = R_OP, .op = OP_ACK, .seq = parse_seq(jobs[i]),
                                     .token = at_job_token(jobs[i]), .rc = rc},
                        t);
            at_job_free(jobs[i]);
        }
        if (n == 0) {
            t = began_now();
            int64_t left = unfinished(st, "k2");
            if (left < 0)
                report_call((struct rec){.kind = R_OP, .op = OP_STATS, .rc = (int32_t)left}, t);
            else if (left == 0) {
                report((struct rec){.kind = R_DONE});
                at_store_close(st);
                _exit(0);
            }
        }
    }
}

static struct {
    long kills, holding, opening, idle, crashes, errors, finished;
    uint64_t acked;
} s2;

static void s2_rec(int slot, struct rec *r)
{
    struct kid *k = &g_kids[slot];
    if (kid_lifecycle(slot, r))
        return;
    switch (r->kind) {
    case R_CLAIM:
        k->holding++;
        break;
    case R_OP:
        if (r->op == OP_ACK) {
            k->holding--;
            s2.acked += r->rc == 0;
        }
        if (r->rc != 0 && !(r->op == OP_ACK && r->rc == AT_ERR_STALE) && s2.errors++ < 5)
            fprintf(stderr, "claim: operation %d: %s after %lld ms\n", r->op, at_err_name(r->rc),
                    (long long)r->took_ms);
        if (r->op != OP_ACK)
            return; /* not about a job */
        break;
    default:
        s2.errors++;
        return;
    }
    ev_push(r);
}

static void s2_exit(int slot, int status)
{
    count_exit(slot, status, "claim: worker", &s2.finished, &s2.crashes);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

struct s2_check {
    struct final *fin;
    size_t n;
    long stray;
};

static void s2_job(void *ud, const at_job *j)
{
    struct s2_check *c = ud;
    int64_t seq = parse_seq(j);
    if (seq < 0 || (size_t)seq >= c->n || c->fin[seq].found) {
        c->stray++;
        return;
    }
    c->fin[seq] = (struct final){.found = 1, .state = at_job_state(j), .token = at_job_token(j),
                                 .attempts = at_job_attempts(j)};
}

static int scenario_claim(void)
{
    char path[600], uri[700];
    store_path(path, sizeof path, "claim");
    snprintf(uri, sizeof uri, "sqlite:%s", path);
    memset(&s2, 0, sizeof s2);
    int64_t t_start = mono_ms();
    size_t njobs = (size_t)(1500 * g_scale);
    long nkills = 20 * g_scale;
    struct hist *h = hist_new(njobs);
    struct final *fin = calloc(njobs, sizeof *fin);
    int64_t *kill_at = calloc((size_t)nkills + 1, sizeof *kill_at);
    if (!h || !fin || !kill_at) {
        perror("calloc");
        exit(1);
    }

    /* Enqueued by the parent, which then closes the store before forking. */
    at_store *st;
    if (at_store_open(&st, uri) != 0) {
        fprintf(stderr, "claim: open %s: %s\n", uri, at_last_error());
        goto fail;
    }
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "k2");
    at_opts_set_int(o, AT_OPT_LEASE_MS, S2_LEASE_MS);
    at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, 1000000); /* kills must never make a job DEAD */
    for (size_t first = 0; first < njobs; first += 500) {
        size_t last = first + 500 < njobs ? first + 500 : njobs;
        at_batch *b;
        at_batch_new(&b);
        for (size_t s = first; s < last; s++) {
            char p[32];
            int n = snprintf(p, sizeof p, "%zu", s);
            at_batch_add(b, "kills.claim", p, (size_t)n, o);
        }
        int rc = at_enqueue_batch(st, b);
        for (size_t s = first; s < last; s++)
            hist_enqueued(h, s, rc == 0 ? HIST_ENQ_OK : HIST_ENQ_FAILED);
        if (rc != 0) {
            fprintf(stderr, "claim: enqueue: %s\n", at_err_name(rc));
            s2.errors++;
        }
        at_batch_free(b);
    }
    at_opts_free(o);
    at_store_close(st);

    g_nkids = S2_KIDS;
    for (int i = 0; i < S2_KIDS; i++) {
        struct s2_arg a = {.seed = rng_next(&g_rng) | 1};
        snprintf(a.uri, sizeof a.uri, "%s%s", uri, i == 1 ? "?sync=normal" : "");
        if (spawn(i, s2_child, &a) != 0)
            goto fail;
    }
    /* Kills at random points of the progress (acks reported), below 90% of
     * the jobs: each lands while jobs are in flight, however fast the run. */
    for (long i = 0; i < nkills; i++)
        kill_at[i] = (int64_t)rng_below(&g_rng, njobs * 9 / 10 + 1);
    qsort(kill_at, (size_t)nkills, sizeof *kill_at, cmp_i64);
    int64_t deadline = mono_ms() + 60000 + 30000 * (int64_t)g_scale;
    for (;;) {
        pump_all(5 + (int64_t)rng_below(&g_rng, 21), s2_rec, s2_exit);
        while (s2.kills < nkills && (uint64_t)kill_at[s2.kills] <= s2.acked) {
            int victim = (int)rng_below(&g_rng, S2_KIDS);
            struct kid *k = &g_kids[victim];
            if (k->pid) {
                int status = kill_kid(victim, s2_rec);
                if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
                    s2_exit(victim, status);
                else if (k->holding > 0)
                    s2.holding++; /* its claims come back after their leases */
                else if (!k->ready)
                    s2.opening++;
                else
                    s2.idle++;
            }
            s2.kills++;
        }
        int live = 0;
        for (int i = 0; i < S2_KIDS; i++) {
            if (g_kids[i].pid) {
                live++;
            } else if (!g_kids[i].done) {
                /* Killed or crashed: a new worker takes the slot. */
                struct s2_arg a = {.seed = rng_next(&g_rng) | 1};
                snprintf(a.uri, sizeof a.uri, "%s%s", uri, i == 1 ? "?sync=normal" : "");
                if (spawn(i, s2_child, &a) != 0)
                    goto fail;
                live++;
            }
        }
        if (live == 0)
            break;
        if (overdue("claim", deadline, t_start))
            goto fail;
    }

    uint64_t by_state[AT_STATE_COUNT__] = {0};
    struct s2_check c = {.fin = fin, .n = njobs};
    int counts_ok = 0;
    if (at_store_open(&st, uri) != 0) {
        fprintf(stderr, "claim: open %s: %s\n", uri, at_last_error());
        goto fail;
    }
    int rc = each_job(st, s2_job, &c, by_state);
    if (rc == 0)
        counts_ok = counts_match(st, "k2", by_state);
    at_store_close(st);

    qsort(g_ev, g_nev, sizeof *g_ev, cmp_rec);
    struct viol v = {0};
    uint64_t not_succeeded = 0, reclaimed = 0, acked_lost = 0;
    size_t e = 0;
    for (size_t s = 0; s < njobs; s++) {
        /* Reports naming no job (a payload that did not parse) are strays. */
        for (; e < g_nev && g_ev[e].seq < (int64_t)s; e++)
            c.stray++;
        size_t e0 = e;
        while (e < g_nev && g_ev[e].seq == (int64_t)s)
            e++;
        uint64_t ok_acks = check_job(g_ev + e0, e - e0, &fin[s], S2_LEASE_MS, &v);
        /* Delivered: found SUCCEEDED, once per successful ack reported (once
         * when the ack's report died with its worker). */
        int succ = fin[s].found && fin[s].state == AT_STATE_SUCCEEDED;
        for (uint64_t d = 0; succ && d < (ok_acks ? ok_acks : 1); d++)
            hist_delivered(h, s);
        not_succeeded += !succ;
        acked_lost += ok_acks > 0 && !succ;
        reclaimed += fin[s].attempts > 1;
    }
    c.stray += (long)(g_nev - e);
    char integ[256];
    int integ_ok = integrity(path, integ, sizeof integ);
    struct hist_counts hc;
    hist_check(h, &hc);
    int pass = rc == 0 && counts_ok && integ_ok && not_succeeded == 0 && acked_lost == 0 && c.stray == 0 &&
               hc.duplicated == 0 && viol_total(&v) == 0 && s2.errors == 0 && s2.crashes == 0 &&
               (nkills == 0 || s2.holding > 0);
    char name[640];
    snprintf(name, sizeof name,
             "sqlite_kills claim [kills=%ld holding=%ld opening=%ld idle=%ld claims=%" PRIu64 " reclaimed=%" PRIu64
             " same_token=%" PRIu64 " overlap=%" PRIu64 " other_violations=%" PRIu64 " not_succeeded=%" PRIu64
             " errors=%ld crashes=%ld counts=%s integrity=%s %.1fs]",
             s2.kills, s2.holding, s2.opening, s2.idle, v.claims, reclaimed, v.same_token, v.overlap,
             viol_total(&v) - v.same_token - v.overlap, not_succeeded, s2.errors, s2.crashes,
             counts_ok ? "ok" : "MISMATCH", integ, (double)(mono_ms() - t_start) / 1000);
    pass &= hist_report(name, &hc) == 0;
    hist_free(h);
    free(fin);
    free(kill_at);
    ev_free();
    return pass;
fail:
    kill_all();
    hist_free(h);
    free(fin);
    free(kill_at);
    ev_free();
    return 0;
}

/* ====================================================== 3: contention */

#define S3_KIDS 4
#define S3_LEASE_MS 300

struct s3_arg {
    char uri[800];
    int64_t block, ops;
    uint64_t seed;
};

/* A contending process's state. */
struct s3_proc {
    at_store *st;
    at_opts *o;
    at_batch *b;
    uint64_t rng;
    int64_t next_seq;
    char (*ids)[AT_ID_SIZE]; /* its acknowledged jobs, for at_cancel */
    int64_t *seqs;
    size_t nids, capids, capseqs;
};

static void s3_remember(struct s3_proc *x, const char *id, int64_t seq)
{
    x->ids = grow(x->ids, &x->capids, x->nids + 1, sizeof *x->ids);
    x->seqs = grow(x->seqs, &x->capseqs, x->nids + 1, sizeof *x->seqs);
    snprintf(x->ids[x->nids], AT_ID_SIZE, "%s", id);
    x->seqs[x->nids++] = seq;
}

static void s3_enqueue(struct s3_proc *x, int32_t count)
{
    int64_t first = x->next_seq;
    x->next_seq += count;
    char p[32], id[AT_ID_SIZE];
    int n = 0;
    if (count == 1) {
        n = snprintf(p, sizeof p, "%lld", (long long)first);
    } else {
        at_batch_clear(x->b);
        for (int32_t i = 0; i < count; i++) {
            n = snprintf(p, sizeof p, "%lld", (long long)(first + i));
            if (at_batch_add(x->b, "kills.mix", p, (size_t)n, x->o) != 0)
                _exit(5);
        }
    }
    report((struct rec){.kind = R_ENQ_BEGIN, .seq = first, .aux = count});
    struct began t = began_now();
    /* No retry after AT_ERR_BUSY: the job must then not exist at all. */
    int rc = count == 1 ? at_enqueue(id, x->st, "kills.mix", p, (size_t)n, x->o) : at_enqueue_batch(x->st, x->b);
    report_call((struct rec){.kind = R_ENQ_END, .seq = first, .aux = count, .rc = rc}, t);
    for (int32_t i = 0; rc == 0 && i < count; i++)
        s3_remember(x, count == 1 ? id : at_batch_id(x->b, (size_t)i), first + i);
}

static size_t s3_poll(struct s3_proc *x, at_job **jobs, size_t max, int64_t timeout_ms)
{
    const char *q[] = {"k3"};
    size_t n = 0;
    struct began t = began_now();
    int rc = at_poll(jobs, &n, x->st, q, 1, max, timeout_ms);
    int64_t t1 = wall_ms();
    if (rc != 0) {
        report_call((struct rec){.kind = R_OP, .op = OP_POLL, .seq = -1, .rc = rc}, t);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        report((struct rec){.kind = R_CLAIM, .seq = parse_seq(jobs[i]), .token = at_job_token(jobs[i]), .t0 = t.wall,
                            .t1 = t1, .started = at_job_time(jobs[i], AT_JOB_TIME_STARTED),
                            .lease = at_job_time(jobs[i], AT_JOB_TIME_LEASE)});
    return n;
}

/* Finish a claimed job as `how` says, reporting every answer.  AT_ERR_BUSY
 * changed nothing (at_store_open(3)), so the same call is made again. */
static void s3_finish(struct s3_proc *x, const at_job *j, int how)
{
    const char *id = at_job_id(j);
    uint64_t tok = at_job_token(j);
    for (;;) {
        int32_t state = 0;
        struct began t = began_now();
        int rc;
        if (how == OP_ACK)
            rc = at_ack(x->st, id, tok, NULL, 0);
        else if (how == OP_FAIL)
            rc = at_fail(&state, x->st, id, tok, "contend: retry", AT_FAIL_RETRY);
        else if (how == OP_FAIL_PERM)
            rc = at_fail(&state, x->st, id, tok, "contend: permanent", AT_FAIL_PERMANENT);
        else
            rc = at_release(x->st, id, tok, 0);
        report_call((struct rec){.kind = R_OP, .op = how, .seq = parse_seq(j), .token = tok, .rc = rc, .aux = state},
                    t);
        if (rc != AT_ERR_BUSY)
            return;
        sleep_ms(1);
    }
}

static void s3_cancel(struct s3_proc *x)
{
    if (x->nids == 0)
        return;
    size_t i = (size_t)rng_below(&x->rng, x->nids);
    for (;;) {
        int32_t pending = 0;
        struct began t = began_now();
        int rc = at_cancel(&pending, x->st, x->ids[i]);
        report_call((struct rec){.kind = R_OP, .op = OP_CANCEL, .seq = x->seqs[i], .rc = rc, .aux = pending}, t);
        if (rc != AT_ERR_BUSY)
            return;
        sleep_ms(1);
    }
}

static void s3_child(int slot, void *arg)
{
    (void)slot;
    const struct s3_arg *a = arg;
    struct s3_proc x = {.rng = a->seed, .next_seq = a->block * SEQ_SPAN};
    for (;;) {
        /* Opening checks the schema in a write transaction: BUSY there is
         * documented as well, and is tried again like any other call. */
        struct began t = began_now();
        int rc = at_store_open(&x.st, a->uri);
        if (rc == 0)
            break;
        report_call((struct rec){.kind = R_OP, .op = OP_OPEN, .seq = -1, .rc = rc}, t);
        if (rc != AT_ERR_BUSY)
            child_opened(rc, "contender", a->uri); /* exits */
        sleep_ms(1);
    }
    child_opened(0, "contender", a->uri);
    /* Short leases and tiny backoffs: retries and expiries happen within
     * the run; three attempts, so some jobs end DEAD by retries. */
    if (at_opts_new(&x.o) != 0 || at_opts_set_str(x.o, AT_OPT_QUEUE, "k3") != 0 ||
        at_opts_set_int(x.o, AT_OPT_LEASE_MS, S3_LEASE_MS) != 0 || at_opts_set_int(x.o, AT_OPT_MAX_ATTEMPTS, 3) != 0 ||
        at_opts_set_int(x.o, AT_OPT_BACKOFF_BASE_MS, 1) != 0 || at_opts_set_int(x.o, AT_OPT_BACKOFF_CAP_MS, 5) != 0 ||
        at_batch_new(&x.b) != 0)
        _exit(5);
    at_job *jobs[4];
    for (int64_t op = 0; op < a->ops; op++) {
        uint64_t r = rng_below(&x.rng, 100);
        if (r < 30) {
            s3_enqueue(&x, 1);
        } else if (r < 40) {
            s3_enqueue(&x, 2 + (int32_t)rng_below(&x.rng, 7));
        } else if (r < 85) {
            size_t n = s3_poll(&x, jobs, 1 + (size_t)rng_below(&x.rng, 3), rng_below(&x.rng, 4) == 0 ? 10 : 0);
            for (size_t i = 0; i < n; i++) {
                uint64_t w = rng_below(&x.rng, 100);
                int how = w < 65 ? OP_ACK : w < 80 ? OP_FAIL : w < 88 ? OP_FAIL_PERM : OP_RELEASE;
                /* Now and then a holder that stalls past its lease: its job
                 * is claimed again, and its late answer must be refused. */
                sleep_ms(rng_below(&x.rng, 100) < 2 ? S3_LEASE_MS + 20 : (int64_t)rng_below(&x.rng, 2));
                s3_finish(&x, jobs[i], how);
                at_job_free(jobs[i]);
            }
        } else {
            s3_cancel(&x);
        }
    }
    /* Drain: ack whatever is claimable until no job of the queue is left
     * unfinished (the others may still be adding some). */
    for (;;) {
        size_t n = s3_poll(&x, jobs, 4, 20);
        for (size_t i = 0; i < n; i++) {
            s3_finish(&x, jobs[i], OP_ACK);
            at_job_free(jobs[i]);
        }
        if (n > 0)
            continue;
        struct began t = began_now();
        int64_t left = unfinished(x.st, "k3");
        if (left < 0)
            report_call((struct rec){.kind = R_OP, .op = OP_STATS, .seq = -1, .rc = (int32_t)left}, t);
        else if (left == 0)
            break;
    }
    report((struct rec){.kind = R_DONE});
    at_batch_free(x.b);
    at_opts_free(x.o);
    at_store_close(x.st);
    free(x.ids);
    free(x.seqs);
    _exit(0);
}

static struct {
    struct enqlog e;
    int64_t busy_ms[S3_KIDS];
    long busy_doc, busy_leak, errors, crashes, finished, enq_ok, enq_failed;
} s3;

/* Every answer must be one the call documents; AT_ERR_BUSY only after the
 * caller's busy_timeout was spent waiting. */
static void s3_check_rc(const struct rec *r)
{
    int rc = r->rc, ok;
    if (rc == AT_ERR_BUSY) {
        if (r->took_ms >= s3.busy_ms[r->slot]) {
            s3.busy_doc++;
        } else if (s3.busy_leak++ < 5) {
            fprintf(stderr, "contend: AT_ERR_BUSY after %lld ms, busy_timeout is %lld ms (kind %d op %d)\n",
                    (long long)r->took_ms, (long long)s3.busy_ms[r->slot], r->kind, r->op);
        }
        return;
    }
    if (r->kind == R_ENQ_END || r->op == OP_POLL || r->op == OP_STATS || r->op == OP_OPEN)
        ok = rc == 0;
    else if (r->op == OP_CANCEL)
        ok = rc == 0 || rc == AT_ERR_TERMINAL;
    else
        ok = rc == 0 || rc == AT_ERR_STALE || rc == AT_ERR_CANCELLED;
    if (!ok && s3.errors++ < 5)
        fprintf(stderr, "contend: kind %d op %d answered %s after %lld ms\n", r->kind, r->op, at_err_name(rc),
                (long long)r->took_ms);
}

static void s3_rec(int slot, struct rec *r)
{
    struct kid *k = &g_kids[slot];
    if (kid_lifecycle(slot, r))
        return;
    switch (r->kind) {
    case R_ENQ_BEGIN:
        k->open_batch = enq_begin(&s3.e, k->block, r->seq, r->aux);
        return;
    case R_ENQ_END:
        s3_check_rc(r);
        if (k->open_batch < 0 || s3.e.b[k->open_batch].first != r->seq) {
            s3.errors++;
            return;
        }
        /* An error, BUSY included, is definite: nothing was written. */
        s3.e.b[k->open_batch].outcome = r->rc == 0 ? HIST_ENQ_OK : HIST_ENQ_FAILED;
        if (r->rc == 0)
            s3.enq_ok += r->aux;
        else
            s3.enq_failed += r->aux;
        k->open_batch = -1;
        return;
    case R_CLAIM:
        break;
    case R_OP:
        s3_check_rc(r);
        if (r->op == OP_POLL || r->op == OP_STATS || r->op == OP_OPEN)
            return;
        break;
    default:
        s3.errors++;
        return;
    }
    ev_push(r);
}

static void s3_exit(int slot, int status)
{
    count_exit(slot, status, "contend: process", &s3.finished, &s3.crashes);
}

struct s3_check {
    struct hist *h;
    const struct enqlog *e;
    struct final *fin;
    long stray, unfinished;
    uint64_t by_final[AT_STATE_COUNT__];
};

static void s3_job(void *ud, const at_job *j)
{
    struct s3_check *c = ud;
    int64_t seq = parse_seq(j);
    size_t i = enq_index(c->e, seq);
    hist_delivered(c->h, i);
    if (i == SIZE_MAX) {
        if (c->stray++ < 5)
            fprintf(stderr, "contend: job %s (seq %lld) was never enqueued\n", at_job_id(j), (long long)seq);
        return;
    }
    if (c->fin[i].found)
        return; /* a second job of one number: history.h calls it duplicated */
    c->fin[i] = (struct final){.found = 1, .state = at_job_state(j), .token = at_job_token(j),
                               .attempts = at_job_attempts(j)};
    c->unfinished += at_job_state(j) < AT_STATE_SUCCEEDED;
    if (at_job_state(j) > 0 && at_job_state(j) < AT_STATE_COUNT__)
        c->by_final[at_job_state(j)]++;
}

static int scenario_contend(void)
{
    char path[600];
    store_path(path, sizeof path, "contend");
    memset(&s3, 0, sizeof s3);
    int64_t t_start = mono_ms();
    g_nkids = S3_KIDS;
    enq_blocks(&s3.e, S3_KIDS);
    for (int i = 0; i < S3_KIDS; i++) {
        /* Two wait the default 5 s for the lock, two only 2 ms (they see
         * BUSY often); sync=full and normal crosswise. */
        struct s3_arg a = {.block = i, .ops = 400 * (int64_t)g_scale, .seed = rng_next(&g_rng) | 1};
        s3.busy_ms[i] = i < 2 ? 5000 : 2;
        snprintf(a.uri, sizeof a.uri, "sqlite:%s%s", path,
                 i < 2 ? (i % 2 ? "?sync=normal" : "") : (i % 2 ? "?sync=normal&busy_timeout=2" : "?busy_timeout=2"));
        if (spawn(i, s3_child, &a) != 0)
            goto fail;
        g_kids[i].block = i;
    }
    int64_t deadline = mono_ms() + 60000 + 30000 * (int64_t)g_scale;
    for (;;) {
        pump_all(50, s3_rec, s3_exit);
        int live = 0;
        for (int i = 0; i < S3_KIDS; i++)
            live += g_kids[i].pid != 0;
        if (live == 0)
            break;
        if (overdue("contend", deadline, t_start))
            goto fail;
    }

    struct hist *h = enq_history(&s3.e);
    struct s3_check c = {.h = h, .e = &s3.e, .fin = calloc(s3.e.total + 1, sizeof(struct final))};
    if (!c.fin) {
        perror("calloc");
        exit(1);
    }
    uint64_t by_state[AT_STATE_COUNT__] = {0};
    int counts_ok = 0, rc;
    char uri[800];
    snprintf(uri, sizeof uri, "sqlite:%s", path);
    at_store *st;
    if ((rc = at_store_open(&st, uri)) == 0) {
        rc = each_job(st, s3_job, &c, by_state);
        if (rc == 0)
            counts_ok = counts_match(st, "k3", by_state);
        at_store_close(st);
    }
    if (rc != 0)
        fprintf(stderr, "contend: reading the store: %s\n", at_err_name(rc));

    qsort(g_ev, g_nev, sizeof *g_ev, cmp_rec);
    struct viol v = {0};
    long stray_ev = 0;
    for (size_t e = 0; e < g_nev;) {
        size_t e0 = e;
        while (e < g_nev && g_ev[e].seq == g_ev[e0].seq)
            e++;
        size_t i = enq_index(&s3.e, g_ev[e0].seq);
        if (i == SIZE_MAX)
            stray_ev++;
        else
            check_job(g_ev + e0, e - e0, &c.fin[i], S3_LEASE_MS, &v);
    }
    char integ[256];
    int integ_ok = integrity(path, integ, sizeof integ);
    struct hist_counts hc;
    hist_check(h, &hc);
    int pass = rc == 0 && counts_ok && integ_ok && hc.duplicated == 0 && viol_total(&v) == 0 && s3.busy_leak == 0 &&
               s3.errors == 0 && s3.crashes == 0 && c.unfinished == 0 && stray_ev == 0 && c.stray == 0;
    char name[700];
    snprintf(name, sizeof name,
             "sqlite_kills contend [procs=%d enqueued=%ld refused=%ld claims=%" PRIu64 " reclaimed=%" PRIu64
             " succeeded=%" PRIu64 " dead=%" PRIu64 " cancelled=%" PRIu64 " busy=%ld busy_leaked=%ld"
             " same_token=%" PRIu64 " overlap=%" PRIu64 " other_violations=%" PRIu64 " unfinished=%ld errors=%ld"
             " crashes=%ld counts=%s integrity=%s %.1fs]",
             S3_KIDS, s3.enq_ok, s3.enq_failed, v.claims, v.reclaimed, c.by_final[AT_STATE_SUCCEEDED],
             c.by_final[AT_STATE_DEAD], c.by_final[AT_STATE_CANCELLED], s3.busy_doc, s3.busy_leak, v.same_token,
             v.overlap, viol_total(&v) - v.same_token - v.overlap, c.unfinished, s3.errors, s3.crashes,
             counts_ok ? "ok" : "MISMATCH", integ, (double)(mono_ms() - t_start) / 1000);
    pass &= hist_report(name, &hc) == 0;
    free(c.fin);
    hist_free(h);
    enq_free(&s3.e);
    ev_free();
    return pass;
fail:
    kill_all();
    enq_free(&s3.e);
    ev_free();
    return 0;
}

/* ------------------------------------------------------------------ main */

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static long env_long(const char *name, long dflt, long lo, long hi)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "sqlite_kills: %s=%s: want an integer in %ld..%ld\n", name, s, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(void);
    } scenarios[] = {{"batch", scenario_batch}, {"claim", scenario_claim}, {"contend", scenario_contend}};
    int want[3] = {argc < 2, argc < 2, argc < 2};
    for (int i = 1; i < argc; i++) {
        int found = 0;
        for (int s = 0; s < 3; s++)
            if (strcmp(argv[i], scenarios[s].name) == 0)
                want[s] = found = 1;
        if (!found) {
            fprintf(stderr, "usage: %s [batch] [claim] [contend]\n", argv[0]);
            return 2;
        }
    }
    g_scale = env_long("AT_FAULT_SCALE", 1, 1, 1000);
    uint64_t seed = (uint64_t)env_long("AT_FAULT_SEED", 0, 0, LONG_MAX);
    if (seed == 0)
        seed = seed_default() & (uint64_t)LONG_MAX;
    if (seed == 0)
        seed = 1;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/at-sqlite-kills.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    printf("sqlite_kills: seed=%" PRIu64 " scale=%ld dir=%s\n", seed, g_scale, g_dir);
    int64_t t0 = mono_ms();
    int pass = 1;
    for (int s = 0; s < 3; s++) {
        if (!want[s])
            continue;
        /* Each scenario's choices follow from the seed alone, so one can be
         * repeated by itself. */
        g_rng = (seed * UINT64_C(0x9E3779B97F4A7C15)) ^ (uint64_t)(s + 1);
        if (g_rng == 0)
            g_rng = 1;
        pass &= scenarios[s].run();
        kill_all();
    }
    if (pass || !getenv("AT_FAULT_KEEP"))
        remove_dir(g_dir);
    else
        fprintf(stderr, "sqlite_kills: kept %s\n", g_dir);
    printf("sqlite_kills: %s, seed=%" PRIu64 " scale=%ld, %.1f s\n", pass ? "PASS" : "FAIL", seed, g_scale,
           (double)(mono_ms() - t0) / 1000);
    return pass ? 0 : 1;
}
