/*
 * bad_input.c - every exported function called with bad input, as a table.
 *
 * Each row names a function, the bad argument it gets and the outcome its
 * man page (or <asynctask.h>) documents: an AT_ERR_* code, or for functions
 * that cannot fail a documented value (NULL, 0, AT_TIME_NONE, "unknown
 * error"), written as a BI_* pseudo-code.  Every row runs in a fresh store
 * seeded with jobs in every state, a paused queue, a workflow and two
 * schedules; the store is dumped through the public API before and after
 * the call (tests/bad_input_dump.c) and the dumps must be equal byte for
 * byte: a refused call leaves nothing behind.
 *
 * The table must cover tests/exports.txt: a test reads that list and fails
 * for any exported function without a row, so a new function comes with its
 * bad-input rows.  tests/conformance_input.c already covers the basic cases
 * (NULL store for at_enqueue, empty or long types, malformed ids for the job
 * calls); the rows here go past them: wrong-type handles, lengths that
 * would overflow, out-of-range times, URIs, cron expressions, time zones,
 * the builders and the worker's configuration.
 *
 * Usage: tests/bad_input [URI] with URI memory: (default: a fresh store per
 * row, each row in a child process), sqlite:DIR (one new file in DIR) or
 * redis://HOST:PORT (one new key prefix): a durable store is seeded once
 * and every row runs on it in this process, as each row leaves it as it
 * was.  $SRCDIR locates tests/exports.txt.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "config.h"

/* A backend configured out answers its own URIs with AT_ERR_NOBACKEND. */
#ifdef AT_HAVE_REDIS
#define BI_REDIS_URI AT_ERR_URI
#else
#define BI_REDIS_URI AT_ERR_NOBACKEND
#endif
#ifdef AT_HAVE_SQLITE
#define BI_SQLITE_URI AT_ERR_URI
#else
#define BI_SQLITE_URI AT_ERR_NOBACKEND
#endif

#include "asynctask.h"
#include "asynctask/store.h"
#include "bad_input.h"

/* ------------------------------------------------------- pseudo-codes */

/* Outcomes of functions that return no AT_ERR_* code; far from any code. */
enum {
    BI_DOC = 1000,  /* the documented value for this input was returned */
    BI_BAD,         /* something else was returned */
    BI_OUT_DIRTY,   /* the code was right but an output was not reset as documented */
};
#define IS(cond) ((cond) ? BI_DOC : BI_BAD)
/* A void function: it returned (no crash, no store change). */
#define VOID(call) ((call), BI_DOC)
/* Expected on backends that refuse a host clock (Redis) when it differs. */
#define SAME INT_MIN

/* --------------------------------------------------------------- fixture */

static const char *g_base = "memory:";

struct fx {
    at_store *s;
    at_clock *clk;
    int host_clock;     /* the store took the manual clock */
    at_opts *opts;      /* a valid opts object; also the "wrong type" handle */
    at_store *notstore; /* an at_opts posing as a store */
    at_clock *notclock; /* an at_opts posing as a clock */
    /* Rows that change the store on purpose around the bad call (a handler
     * must run for an at_ctx) compare dumps taken right around the call. */
    int inner;
    char *in_before, *in_after;
};
static struct fx F;
/* What seed() made.  A durable store (SQLite, Redis) is seeded once, before
 * the rows fork, and every row opens a handle of its own on it: a row
 * changes nothing (that is what it asserts), so the next one finds the same
 * store.  Memory stores are private to their handle and seeded per row. */
static struct {
    char ready[AT_ID_SIZE], sched[AT_ID_SIZE], running[AT_ID_SIZE], done[AT_ID_SIZE], dead[AT_ID_SIZE],
        cancelled[AT_ID_SIZE], pausedq_job[AT_ID_SIZE], ctxjob[AT_ID_SIZE], wf[AT_ID_SIZE], wf_parent[AT_ID_SIZE];
    uint64_t token; /* the lease of `running` */
} K;
static char g_uri[8400]; /* the shared durable store, "" for memory */
/* Non-NULL output pointers for rows where only NULL-ness matters (the
 * helpers write to locals of their own). */
static at_job *g_job_slot;
static at_stats *g_stats_slot;
static at_schedule *g_sched_slot;
static int32_t g_i32_slot;

static const char *const k_extra_queues[] = {"bi.p", "bi.none", "bi.ctx", NULL};

#define TRACEPARENT "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
#define UNKNOWN_ID "00000000000000000000000000"
#define ID_25 "0000000000000000000000000"
#define ID_27 "000000000000000000000000000"
#define ID_BADCHAR "0000000000000000000000000U"
/* 26 characters whose first digit carries more than the 3 bits left for
 * it: the value does not fit 128 bits. */
#define ID_OVERFLOW "80000000000000000000000000"

static char g_name129[AT_NAME_MAX + 2], g_key256[AT_KEY_MAX + 2], g_expr300[301];
static char g_cursor_long[AT_CURSOR_SIZE + 8];

/* The one durable store of this run: a new file in the directory, or a key
 * prefix of its own on the server; memory: stays as it is. */
static void shared_uri(char *out, size_t size)
{
    long pid = (long)getpid();
    if (strncmp(g_base, "sqlite:", 7) == 0)
        snprintf(out, size, "sqlite:%s/bi%ld.db?sync=normal", g_base + 7, pid);
    else if (strncmp(g_base, "redis://", 8) == 0)
        snprintf(out, size, "%s%cprefix=bi-%ld-%lld-", g_base, strchr(g_base, '?') ? '&' : '?', pid,
                 (long long)time(NULL));
    else
        out[0] = '\0';
}

/* Seeding runs before the rows for a durable store, outside any test,
 * where Check cannot report: there a failure prints and exits. */
static int g_outside;
#define REQUIRE(cond, ...)                                                                                     \
    do {                                                                                                       \
        if (!(cond)) {                                                                                         \
            if (g_outside) {                                                                                   \
                fprintf(stderr, "bad_input: seeding failed: " __VA_ARGS__);                                    \
                fprintf(stderr, " (%s)\n", at_last_error());                                                   \
                exit(1);                                                                                       \
            }                                                                                                  \
            ck_abort_msg(__VA_ARGS__);                                                                         \
        }                                                                                                      \
    } while (0)
#define OK(call)                                                                                               \
    do {                                                                                                       \
        int ok_rc_ = (call);                                                                                   \
        REQUIRE(ok_rc_ == 0, "%s: %s", #call, at_err_name(ok_rc_));                                            \
    } while (0)

static void enq(char *id, const char *type, const void *p, size_t n, const char *queue)
{
    OK(at_opts_set_str(F.opts, AT_OPT_QUEUE, queue));
    OK(at_enqueue(id, F.s, type, p, n, F.opts));
    at_opts_reset(F.opts);
}

static at_job *claim(const char *queue)
{
    at_job *j = NULL;
    size_t n = 0;
    const char *q[1] = {queue};
    OK(at_poll(&j, &n, F.s, q, 1, 1, 0));
    REQUIRE(n == 1, "no job to claim in %s", queue);
    return j;
}

/* Jobs in every state, a paused queue, a workflow with a waiting child,
 * two schedules (one paused). */
static void seed(void)
{
    at_opts *o = F.opts;
    OK(at_opts_set_str(o, AT_OPT_QUEUE, "bi.a"));
    OK(at_opts_set_int(o, AT_OPT_PRIORITY, 7));
    OK(at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, "bi:key/1"));
    OK(at_opts_set_str(o, AT_OPT_TRACEPARENT, TRACEPARENT));
    OK(at_enqueue(K.ready, F.s, "t.ready", "\0\1ready\377", 8, o));
    at_opts_reset(o);
    OK(at_opts_set_str(o, AT_OPT_QUEUE, "bi.a"));
    OK(at_opts_set_int(o, AT_OPT_DELAY_MS, 86400000));
    OK(at_enqueue(K.sched, F.s, "t.sched", "s", 1, o));
    OK(at_enqueue(K.cancelled, F.s, "t.cancel", NULL, 0, o));
    OK(at_cancel(NULL, F.s, K.cancelled));
    at_opts_reset(o);

    OK(at_opts_set_str(o, AT_OPT_QUEUE, "bi.r"));
    OK(at_opts_set_int(o, AT_OPT_LEASE_MS, 86400000));
    OK(at_enqueue(K.running, F.s, "t.run", "r", 1, o));
    at_opts_reset(o);
    at_job *j = claim("bi.r");
    K.token = at_job_token(j);
    at_job_free(j);

    enq(K.done, "t.done", "d", 1, "bi.s");
    j = claim("bi.s");
    OK(at_ack(F.s, K.done, at_job_token(j), "result", 6));
    at_job_free(j);

    OK(at_opts_set_str(o, AT_OPT_QUEUE, "bi.d"));
    OK(at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, 1));
    OK(at_enqueue(K.dead, F.s, "t.dead", NULL, 0, o));
    at_opts_reset(o);
    j = claim("bi.d");
    int32_t st = 0;
    OK(at_fail(&st, F.s, K.dead, at_job_token(j), "boom", AT_FAIL_RETRY));
    REQUIRE(st == AT_STATE_DEAD, "the failed job is not DEAD");
    at_job_free(j);

    enq(K.pausedq_job, "t.p", NULL, 0, "bi.p");
    OK(at_queue_pause(F.s, "bi.p"));
    enq(K.ctxjob, "t.ctx", "c", 1, "bi.ctx");

    at_workflow *wf = NULL;
    OK(at_workflow_new(&wf));
    OK(at_opts_set_str(o, AT_OPT_QUEUE, "bi.w"));
    OK(at_workflow_add(wf, "p", "t.wp", NULL, 0, o));
    OK(at_workflow_add(wf, "c", "t.wc", "child", 5, o));
    at_opts_reset(o);
    OK(at_workflow_depend(wf, "c", "p"));
    OK(at_workflow_submit(K.wf, F.s, wf));
    snprintf(K.wf_parent, sizeof K.wf_parent, "%s", at_workflow_job_id(wf, "p"));
    at_workflow_free(wf);

    at_schedule *sc = NULL;
    OK(at_schedule_new(&sc, "bi.sched1", "*/5 * * * *", NULL, "t.cron"));
    OK(at_schedule_set_payload(sc, "tick", 4));
    OK(at_schedule_add(NULL, F.s, sc));
    at_schedule_free(sc);
    OK(at_schedule_new(&sc, "bi.sched2", "@hourly", "UTC", "t.cron2"));
    OK(at_schedule_set_misfire(sc, AT_MISFIRE_ALL, 5000, 7));
    OK(at_schedule_add(NULL, F.s, sc));
    OK(at_schedule_pause(F.s, "bi.sched2"));
    at_schedule_free(sc);
}

static void open_store(void)
{
    memset(&F, 0, sizeof F);
    const char *uri = g_uri[0] ? g_uri : g_base;
    int rc = at_store_open(&F.s, uri);
    REQUIRE(rc == 0, "at_store_open(%s): %s", uri, at_err_name(rc));
    OK(at_clock_new_manual(&F.clk, INT64_C(1800000000000)));
    rc = at_store_set_clock(F.s, F.clk);
    REQUIRE(rc == 0 || rc == AT_ERR_UNSUPPORTED, "at_store_set_clock: %s", at_err_name(rc));
    F.host_clock = rc == 0;
    OK(at_opts_new(&F.opts));
    F.notstore = (at_store *)(void *)F.opts;
    F.notclock = (at_clock *)(void *)F.opts;
}

static void close_store(void)
{
    at_store_close(F.s);
    at_clock_free(F.clk);
    at_opts_free(F.opts);
    F.s = NULL, F.clk = NULL, F.opts = NULL;
}

/* A durable store is opened and seeded once by main() and its rows run in
 * this process (a handle does not cross fork()); a memory store is made
 * and seeded per row, each row in a child of its own. */
static void setup(void)
{
    F.inner = 0;
    F.in_before = F.in_after = NULL;
    if (!g_uri[0]) {
        open_store();
        seed();
    }
}

static void teardown(void)
{
    if (!g_uri[0])
        close_store();
    free(F.in_before);
    free(F.in_after);
    F.in_before = F.in_after = NULL;
}

/* ----------------------------------------------- helpers of complex rows */

/* Output parameters must be reset on failure where documented: the helper
 * returns the code when they were, BI_OUT_DIRTY when not. */
static int outs(int rc, int clean)
{
    return clean ? rc : BI_OUT_DIRTY;
}

static int h_enqueue(const char *type, const void *p, size_t n, const at_opts *o)
{
    char id[AT_ID_SIZE] = "x";
    int rc = at_enqueue(id, F.s, type, p, n, o);
    return outs(rc, id[0] == '\0');
}

static at_opts *opts_int(int32_t option, int64_t v)
{
    at_opts_reset(F.opts);
    ck_assert_int_eq(at_opts_set_int(F.opts, option, v), 0);
    return F.opts;
}

/* A setter failing leaves the object as it was: the row's code, or
 * BI_OUT_DIRTY when the object changed. */
static int h_opts_set_int(int32_t option, int64_t v)
{
    at_opts_reset(F.opts);
    OK(at_opts_set_int(F.opts, AT_OPT_PRIORITY, 3));
    int rc = at_opts_set_int(F.opts, option, v);
    char id[AT_ID_SIZE];
    /* Where the options land: the job enqueued with them in a store of its
     * own, so the row's store stays as it was. */
    at_store *m = NULL;
    OK(at_store_open(&m, "memory:"));
    OK(at_enqueue(id, m, "t", NULL, 0, F.opts));
    at_job *j = NULL;
    OK(at_get(&j, m, id));
    int clean = at_job_priority(j) == 3 && at_job_time(j, AT_JOB_TIME_RUN_AT) == at_job_time(j, AT_JOB_TIME_CREATED);
    at_job_free(j);
    at_store_close(m);
    at_opts_reset(F.opts);
    return outs(rc, clean);
}

static int h_opts_set_str(int32_t option, const char *v)
{
    at_opts_reset(F.opts);
    OK(at_opts_set_str(F.opts, AT_OPT_QUEUE, "bi.keep"));
    OK(at_opts_set_str(F.opts, AT_OPT_IDEMPOTENCY_KEY, "bi.k"));
    int rc = at_opts_set_str(F.opts, option, v);
    at_store *m = NULL;
    char id[AT_ID_SIZE];
    OK(at_store_open(&m, "memory:"));
    OK(at_enqueue(id, m, "t", NULL, 0, F.opts));
    at_job *j = NULL;
    OK(at_get(&j, m, id));
    int clean = strcmp(at_job_queue(j), "bi.keep") == 0 && strcmp(at_job_idempotency_key(j), "bi.k") == 0 &&
                at_job_traceparent(j) == NULL;
    at_job_free(j);
    at_store_close(m);
    at_opts_reset(F.opts);
    return outs(rc, clean);
}

static int h_opts_new_null(void)
{
    return at_opts_new(NULL);
}

static int h_store_open(const char *uri)
{
    at_store *s = (at_store *)(void *)&F; /* must be overwritten with NULL */
    int rc = at_store_open(&s, uri);
    if (rc == 0)
        at_store_close(s);
    return outs(rc, s == NULL && at_last_error()[0] != '\0');
}

/* An SQLite URI with a bad parameter must not create the file. */
static int h_store_open_sqlite(const char *query)
{
    char dir[] = "/tmp/at_bi_open.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char uri[256], file[200];
    snprintf(file, sizeof file, "%s/x.db", dir);
    snprintf(uri, sizeof uri, "sqlite:%s%s", file, query);
    int rc = h_store_open(uri);
    struct stat st;
    int created = stat(file, &st) == 0;
    unlink(file);
    rmdir(dir);
    return created ? BI_OUT_DIRTY : rc;
}

static int h_store_errmsg_null_store(void)
{
    char buf[8] = "xxxxxxx";
    int32_t native = 5;
    size_t n = at_store_errmsg(NULL, buf, sizeof buf, &native);
    return IS(n == 0 && buf[0] == '\0' && native == 0);
}

static int h_store_errmsg_truncates(void)
{
    at_job *j = NULL;
    ck_assert_int_eq(at_get(&j, F.s, UNKNOWN_ID), AT_ERR_NOTFOUND);
    char buf[1] = {'x'};
    size_t full = at_store_errmsg(F.s, NULL, 0, NULL);
    size_t n = at_store_errmsg(F.s, buf, sizeof buf, NULL);
    return IS(full > 0 && n == full && buf[0] == '\0');
}

static int h_last_error(void)
{
    at_store *s = NULL;
    ck_assert_int_eq(at_store_open(&s, "nosuchscheme:"), AT_ERR_NOBACKEND);
    return IS(strstr(at_last_error(), "nosuchscheme") != NULL);
}

static int h_store_error(void)
{
    int rc = at_store_error(NULL, AT_ERR_IO, 5, "bad input %d", 42);
    return rc == AT_ERR_IO && strcmp(at_last_error(), "bad input 42") == 0 ? rc : BI_BAD;
}

static int h_store_close_null(void)
{
    at_store_close(NULL);
    at_store_close(F.notstore); /* a wrong handle is ignored: F.opts stays usable */
    return IS(at_opts_set_int(F.opts, AT_OPT_PRIORITY, 1) == 0);
}

static int h_clock_new(int64_t start)
{
    at_clock *c = (at_clock *)(void *)&F;
    int rc = at_clock_new_manual(&c, start);
    if (rc == 0)
        at_clock_free(c);
    return outs(rc, c == NULL);
}

static int h_clock(int which, int64_t v)
{
    at_clock *c = NULL;
    OK(at_clock_new_manual(&c, 1000));
    int rc = which == 0 ? at_clock_advance(c, v) : at_clock_set(c, v);
    int clean = at_clock_now(c) == 1000;
    at_clock_free(c);
    return outs(rc, clean);
}

static int h_clock_now_null(void)
{
    int64_t now = (int64_t)time(NULL) * 1000, c = at_clock_now(NULL);
    return IS(c > now - 5000 && c < now + 5000);
}

static int h_clock_free_busy(void)
{
    at_clock *c = NULL;
    at_store *m = NULL;
    OK(at_clock_new_manual(&c, 1000));
    OK(at_store_open(&m, "memory:"));
    OK(at_store_set_clock(m, c));
    int rc = at_clock_free(c);
    int still = at_clock_now(c) == 1000; /* not freed: still readable */
    at_store_close(m);
    OK(at_clock_free(c));
    return outs(rc, still);
}

static int h_store_clock_wall_null(void)
{
    int64_t now = (int64_t)time(NULL) * 1000, c = at_store_clock_wall(NULL);
    return IS(c > now - 5000 && c < now + 5000);
}

static int h_store_clock_mono_null(void)
{
    int64_t a = at_store_clock_mono(NULL), b = at_store_clock_mono(NULL);
    return IS(a >= 0 && b >= a);
}

static int h_set_option(int32_t option, int64_t v)
{
    return at_store_set_option(F.s, option, v);
}

static int h_get_option(at_store *s, int32_t option)
{
    int64_t v = 77;
    return at_store_get_option(&v, s, option);
}

static int h_now(at_store *s)
{
    int64_t v = 0;
    return at_store_now(&v, s);
}

static int h_set_clock_used(void)
{
    at_clock *c = NULL;
    OK(at_clock_new_manual(&c, 5));
    int rc = at_store_set_clock(F.s, c);
    OK(at_clock_free(c));
    return rc;
}

static void on_event(void *ud, int32_t event, const at_job *job, const char *detail)
{
    (void)ud, (void)event, (void)job, (void)detail;
}

/* Register: a vtable that would be valid but for the one thing each row
 * breaks.  Its methods are never called. */
static int vt_open(at_backend **out, at_store *store, const char *uri)
{
    (void)out, (void)store, (void)uri;
    return AT_ERR_INTERNAL;
}
static void vt_close(at_backend *be)
{
    (void)be;
}
static int h_register(int variant)
{
    /* Borrow the memory backend's table for the required methods. */
    static at_store_vtable vt;
    memset(&vt, 0, sizeof vt);
    vt.version = AT_STORE_VTABLE_VERSION;
    vt.size = sizeof vt;
    vt.scheme = "bi-never";
    vt.open = vt_open;
    vt.close = vt_close;
    /* Non-NULL placeholders of the right types. */
    vt.enqueue = (int (*)(at_backend *, at_enqueue_item *, size_t))(void (*)(void))vt_close;
    vt.claim = (int (*)(at_job **, size_t *, int64_t *, at_backend *, const char *const *, size_t,
                        size_t))(void (*)(void))vt_close;
    vt.ack = (int (*)(at_backend *, const char *, uint64_t, const void *, size_t))(void (*)(void))vt_close;
    vt.fail = (int (*)(int32_t *, at_backend *, const char *, uint64_t, const char *, uint32_t,
                       int64_t))(void (*)(void))vt_close;
    vt.touch = (int (*)(at_backend *, const char *, uint64_t, int64_t))(void (*)(void))vt_close;
    vt.cancel = (int (*)(int32_t *, at_backend *, const char *))(void (*)(void))vt_close;
    vt.get = (int (*)(at_job **, at_backend *, const char *))(void (*)(void))vt_close;
    vt.list = (int (*)(at_job **, size_t *, char *, at_backend *, const char *, int32_t, const char *,
                       size_t))(void (*)(void))vt_close;
    vt.requeue = (int (*)(uint64_t *, at_backend *, const char *, const char *))(void (*)(void))vt_close;
    vt.purge = (int (*)(uint64_t *, at_backend *, int64_t))(void (*)(void))vt_close;
    vt.stats = (int (*)(at_stats *, at_backend *))(void (*)(void))vt_close;
    switch (variant) {
    case 0:
        return at_store_register(NULL);
    case 1:
        vt.version = 0;
        break;
    case 2:
        vt.size = 8;
        break;
    case 3:
        vt.scheme = "Bad Scheme";
        break;
    case 4:
        vt.scheme = NULL;
        break;
    case 5:
        vt.claim = NULL;
        break;
    case 6:
        vt.scheme = "memory"; /* taken */
        break;
    }
    return at_store_register(&vt);
}

static int h_job_create(int variant)
{
    at_job_info info;
    at_job_info_init(&info);
    at_job *j = (at_job *)(void *)&F;
    int rc;
    if (variant == 0)
        return at_job_create(NULL, &info);
    if (variant == 1)
        return at_job_create(&j, NULL);
    info.size = 4; /* older than version 1 of the struct */
    rc = at_job_create(&j, &info);
    return rc;
}

static int h_job_info_init_null(void)
{
    at_job_info_init(NULL);
    at_job_info i;
    memset(&i, 0x55, sizeof i);
    at_job_info_init(&i);
    return IS(i.size == sizeof i && i.run_at == AT_TIME_NONE && i.type == NULL);
}

static int h_sched_row_init(void)
{
    at_sched_row_init(NULL);
    at_sched_row r;
    memset(&r, 0x55, sizeof r);
    at_sched_row_init(&r);
    return IS(r.size == sizeof r && r.last_fire_at == AT_TIME_NONE && r.name == NULL);
}

static int h_stats_add_queue(int variant)
{
    at_stats *st = NULL;
    OK(at_stats_get(&st, F.s));
    uint64_t counts[AT_STATE_COUNT__] = {0};
    size_t before = at_stats_queue_count(st);
    int rc = variant == 0   ? at_stats_add_queue(NULL, "q", counts, 0)
             : variant == 1 ? at_stats_add_queue(st, NULL, counts, 0)
                            : at_stats_add_queue(st, "q", NULL, 0);
    int clean = at_stats_queue_count(st) == before;
    at_stats_free(st);
    return outs(rc, clean);
}

static int h_stats_reader(int which)
{
    at_stats *st = NULL;
    OK(at_stats_get(&st, F.s));
    size_t n = at_stats_queue_count(st);
    int ok = 0;
    switch (which) {
    case 0:
        ok = at_stats_queue_name(st, n) == NULL && at_stats_queue_name(st, SIZE_MAX) == NULL &&
             at_stats_queue_name(NULL, 0) == NULL;
        break;
    case 1:
        ok = at_stats_count(st, 0, AT_STATE_COUNT__) == 0 && at_stats_count(st, 0, -1) == 0 &&
             at_stats_count(st, n, AT_STATE_ANY) == 0 && at_stats_count(NULL, 0, AT_STATE_ANY) == 0;
        break;
    case 2:
        ok = at_stats_next_due(st, n) == AT_TIME_NONE && at_stats_next_due(NULL, 0) == AT_TIME_NONE;
        break;
    case 3:
        ok = at_stats_queue_count(NULL) == 0 && at_stats_queue_count((const at_stats *)(void *)F.opts) == 0;
        break;
    }
    at_stats_free(st);
    return IS(ok);
}

static int h_stats_get(at_stats **out, at_store *s)
{
    at_stats *st = (at_stats *)(void *)&F;
    int rc = at_stats_get(out ? &st : NULL, s);
    if (rc == 0)
        at_stats_free(st);
    return outs(rc, !out || st == NULL);
}

static int h_id_parse(const char *id)
{
    uint8_t b[16];
    return at_id_parse(b, id);
}

static int h_id_format(void)
{
    uint8_t b[16], back[16];
    char id[AT_ID_SIZE];
    memset(b, 0xff, sizeof b);
    at_id_format(id, b);
    int ok = strcmp(id, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ") == 0 && at_id_parse(back, id) == 0 &&
             memcmp(b, back, 16) == 0;
    return IS(ok);
}

static int h_job_accessors_null(int which)
{
    size_t len = 9;
    switch (which) {
    case 0:
        return IS(at_job_payload(NULL, &len) == NULL && len == 0);
    case 1:
        return IS(at_job_result(NULL, &len) == NULL && len == 0);
    }
    return BI_BAD;
}

/* A job snapshot asked for a time or a parent it does not have. */
static int h_job_get_then(int which)
{
    at_job *j = NULL;
    OK(at_get(&j, F.s, K.ready));
    int ok = 0;
    switch (which) {
    case 0:
        ok = at_job_time(j, 0) == AT_TIME_NONE && at_job_time(j, 7) == AT_TIME_NONE &&
             at_job_time(j, INT32_MIN) == AT_TIME_NONE;
        break;
    case 1:
        ok = at_job_parent_id(j, 0) == NULL && at_job_parent_id(j, SIZE_MAX) == NULL;
        break;
    }
    at_job_free(j);
    return IS(ok);
}

static int h_get(at_job **out, at_store *s, const char *id)
{
    at_job *j = (at_job *)(void *)&F;
    int rc = at_get(out ? &j : NULL, s, id);
    if (rc == 0)
        at_job_free(j);
    return outs(rc, !out || j == NULL);
}

static int h_poll(int variant)
{
    at_job *jobs[2];
    size_t n = 9;
    const char *q[65];
    for (int i = 0; i < 65; i++)
        q[i] = "bi.a";
    const char *badq[2] = {"bi.a", "bad queue"};
    const char *nullq[1] = {NULL};
    int rc;
    switch (variant) {
    case 0:
        rc = at_poll(NULL, &n, F.s, q, 1, 1, 0);
        break;
    case 1:
        return at_poll(jobs, NULL, F.s, q, 1, 1, 0);
    case 2:
        rc = at_poll(jobs, &n, F.s, NULL, 1, 1, 0);
        break;
    case 3:
        rc = at_poll(jobs, &n, F.s, q, 0, 1, 0);
        break;
    case 4:
        rc = at_poll(jobs, &n, F.s, q, 65, 1, 0);
        break;
    case 5:
        rc = at_poll(jobs, &n, F.s, q, 1, 0, 0);
        break;
    case 6:
        rc = at_poll(jobs, &n, F.s, q, 1, 1001, 0);
        break;
    case 7:
        rc = at_poll(jobs, &n, F.s, q, 1, 1, -2);
        break;
    case 8:
        rc = at_poll(jobs, &n, F.s, q, 1, 1, INT64_MIN);
        break;
    case 9:
        rc = at_poll(jobs, &n, F.s, badq, 2, 1, 0);
        break;
    case 10:
        rc = at_poll(jobs, &n, F.s, nullq, 1, 1, 0);
        break;
    default:
        rc = at_poll(jobs, &n, F.notstore, q, 1, 1, 0);
        break;
    }
    return outs(rc, n == 0);
}

static int h_ack_many(int variant)
{
    int32_t res[2] = {99, 99};
    const char *ids[2] = {K.running, ID_BADCHAR};
    uint64_t tokens[2] = {K.token, 1};
    switch (variant) {
    case 0:
        return at_ack_many(res, F.s, 0, ids, tokens);
    case 1:
        return at_ack_many(res, F.s, 1001, ids, tokens);
    case 2:
        return at_ack_many(NULL, F.s, 1, ids, tokens);
    case 3:
        return at_ack_many(res, F.s, 1, NULL, tokens);
    case 4:
        return at_ack_many(res, F.s, 1, ids, NULL);
    case 5: /* the first id would be acked: a bad second one must stop it */
        return at_ack_many(res, F.s, 2, ids, tokens);
    case 6:
        ids[1] = NULL;
        return at_ack_many(res, F.s, 2, ids, tokens);
    default:
        return at_ack_many(res, F.notstore, 1, ids, tokens);
    }
}

static int h_fail(const char *id, uint64_t token, uint32_t flags)
{
    int32_t st = 99;
    int rc = at_fail(&st, F.s, id, token, "e", flags);
    return outs(rc, st == 0);
}

static int h_cancel(at_store *s, const char *id)
{
    int32_t pending = 9;
    int rc = at_cancel(&pending, s, id);
    return outs(rc, pending == 0);
}

static int h_list(int variant)
{
    at_job *jobs[4];
    size_t n = 9;
    char cur[AT_CURSOR_SIZE] = "x";
    int rc;
    switch (variant) {
    case 0:
        return at_list(NULL, &n, cur, F.s, NULL, AT_STATE_ANY, NULL, 4);
    case 1:
        return at_list(jobs, NULL, cur, F.s, NULL, AT_STATE_ANY, NULL, 4);
    case 2:
        return at_list(jobs, &n, NULL, F.s, NULL, AT_STATE_ANY, NULL, 4);
    case 3:
        rc = at_list(jobs, &n, cur, F.s, NULL, AT_STATE_ANY, NULL, 0);
        break;
    case 4:
        rc = at_list(jobs, &n, cur, F.s, NULL, AT_STATE_ANY, NULL, 10001);
        break;
    case 5:
        rc = at_list(jobs, &n, cur, F.s, NULL, AT_STATE_COUNT__, NULL, 4);
        break;
    case 6:
        rc = at_list(jobs, &n, cur, F.s, NULL, -1, NULL, 4);
        break;
    case 7:
        rc = at_list(jobs, &n, cur, F.s, "bad queue", AT_STATE_ANY, NULL, 4);
        break;
    case 8:
        rc = at_list(jobs, &n, cur, F.s, "", AT_STATE_ANY, NULL, 4);
        break;
    case 9:
        rc = at_list(jobs, &n, cur, F.s, NULL, AT_STATE_ANY, g_cursor_long, 4);
        break;
    case 10:
        rc = at_list(jobs, &n, cur, F.s, NULL, AT_STATE_ANY, "not a cursor \x01\xff", 4);
        break;
    case 11:
        rc = at_list(jobs, &n, cur, F.s, "bi.a", AT_STATE_READY, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 4);
        break;
    default:
        rc = at_list(jobs, &n, cur, F.notstore, NULL, AT_STATE_ANY, NULL, 4);
        break;
    }
    return outs(rc, n == 0 && cur[0] == '\0');
}

static int h_requeue(at_store *s, const char *queue, const char *id)
{
    uint64_t n = 9;
    int rc = at_requeue(&n, s, queue, id);
    return outs(rc, n == 0);
}

static int h_purge(at_store *s, int64_t older)
{
    uint64_t n = 9;
    int rc = at_purge(&n, s, older);
    return outs(rc, n == 0);
}

static int h_is_paused(int32_t *out, at_store *s, const char *q)
{
    int32_t p = 9;
    int rc = at_queue_is_paused(out ? &p : NULL, s, q);
    return outs(rc, !out || p == 0);
}

static int h_batch(int variant)
{
    at_batch *b = NULL;
    OK(at_batch_new(&b));
    OK(at_batch_add(b, "t", "ok", 2, NULL));
    static char big[1048577];
    int rc = 0, clean = 1;
    switch (variant) {
    case 0:
        rc = at_batch_add(b, "bad type", NULL, 0, NULL);
        break;
    case 1:
        rc = at_batch_add(b, "t", NULL, 1, NULL);
        break;
    case 2: /* never read: a length no store accepts is refused first */
        rc = at_batch_add(b, "t", "x", SIZE_MAX, NULL);
        break;
    case 3:
        rc = at_batch_add(b, NULL, NULL, 0, NULL);
        break;
    case 4: /* all or nothing: the good first job is not created either */
        OK(at_batch_add(b, "t", big, sizeof big, NULL));
        rc = at_enqueue_batch(F.s, b);
        clean = at_batch_id(b, 0) == NULL;
        break;
    case 5:
        OK(at_batch_add(b, "t", NULL, 0, opts_int(AT_OPT_BACKOFF_CAP_MS, 10)));
        at_opts_reset(F.opts);
        rc = at_enqueue_batch(F.s, b);
        clean = at_batch_id(b, 0) == NULL;
        break;
    case 6:
        rc = at_enqueue_batch(F.notstore, b);
        break;
    case 7:
        at_batch_clear(b);
        rc = at_enqueue_batch(F.s, b);
        break;
    case 8:
        rc = at_enqueue_batch(F.s, NULL);
        break;
    case 9:
        rc = at_enqueue_batch(F.s, (at_batch *)(void *)F.opts);
        break;
    case 10:
        rc = at_batch_add(b, g_name129, NULL, 0, NULL);
        break;
    }
    if (variant < 4 || variant == 10)
        clean = at_batch_count(b) == 1;
    at_batch_free(b);
    return outs(rc, clean);
}

static int h_batch_readers(int which)
{
    at_batch *b = NULL;
    OK(at_batch_new(&b));
    OK(at_batch_add(b, "t", NULL, 0, NULL));
    int ok = 0;
    switch (which) {
    case 0: /* before a successful at_enqueue_batch, and out of range */
        ok = at_batch_id(b, 0) == NULL && at_batch_id(NULL, 0) == NULL;
        break;
    case 1:
        ok = at_batch_status(b, 0) == AT_ERR_INVAL && at_batch_status(NULL, 0) == AT_ERR_INVAL;
        break;
    case 2:
        ok = at_batch_count(NULL) == 0 && at_batch_count((const at_batch *)(void *)F.opts) == 0;
        break;
    case 3:
        at_batch_clear(NULL);
        at_batch_free(NULL);
        ok = at_batch_count(b) == 1;
        break;
    }
    at_batch_free(b);
    return IS(ok);
}

static int h_batch_new_null(void)
{
    return at_batch_new(NULL);
}

static int h_cron_next(const char *expr, const char *tz, int64_t after)
{
    int64_t t = 5;
    int rc = at_cron_next(&t, expr, tz, after);
    return outs(rc, t == AT_TIME_NONE);
}

static int h_cron_check(const char *expr, int32_t want_pos)
{
    int32_t pos = -7;
    int rc = at_cron_check(&pos, expr);
    return outs(rc, want_pos == INT32_MIN || pos == want_pos);
}

static at_workflow *wf_two(void)
{
    at_workflow *wf = NULL;
    OK(at_workflow_new(&wf));
    OK(at_workflow_add(wf, "a", "t", NULL, 0, NULL));
    OK(at_workflow_add(wf, "b", "t", NULL, 0, NULL));
    return wf;
}

/* A builder call that fails leaves the builder as it was. */
static int h_wf_build(int variant)
{
    at_workflow *wf = wf_two();
    int rc = 0;
    switch (variant) {
    case 0:
        rc = at_workflow_add(wf, "", "t", NULL, 0, NULL);
        break;
    case 1:
        rc = at_workflow_add(wf, g_name129, "t", NULL, 0, NULL);
        break;
    case 2:
        rc = at_workflow_add(wf, "c", "a b", NULL, 0, NULL);
        break;
    case 3:
        rc = at_workflow_add(wf, "c", "t", NULL, 3, NULL);
        break;
    case 4:
        rc = at_workflow_add(wf, "a", "t", NULL, 0, NULL);
        break;
    case 5:
        rc = at_workflow_add(NULL, "c", "t", NULL, 0, NULL);
        break;
    case 6:
        rc = at_workflow_add(wf, NULL, "t", NULL, 0, NULL);
        break;
    case 7:
        rc = at_workflow_add_completion(wf, "a", "t", NULL, 0, NULL);
        break;
    case 8:
        rc = at_workflow_add_completion(wf, "c", "bad/type", NULL, 0, NULL);
        break;
    case 9:
        rc = at_workflow_add_completion(NULL, "c", "t", NULL, 0, NULL);
        break;
    case 10:
        rc = at_workflow_depend(wf, "a", "a");
        break;
    case 11:
        rc = at_workflow_depend(wf, "a", "nope");
        break;
    case 12:
        rc = at_workflow_depend(wf, NULL, "a");
        break;
    case 13:
        rc = at_workflow_depend(NULL, "a", "b");
        break;
    case 14:
        rc = at_workflow_depend_on_job(wf, "a", ID_25);
        break;
    case 15:
        rc = at_workflow_depend_on_job(wf, "a", NULL);
        break;
    case 16:
        rc = at_workflow_depend_on_job(wf, "nope", UNKNOWN_ID);
        break;
    case 17:
        rc = at_workflow_set_policy(wf, "a", 3);
        break;
    case 18:
        rc = at_workflow_set_policy(wf, "a", -1);
        break;
    case 19:
        rc = at_workflow_set_policy(wf, "nope", AT_PARENT_FAIL_RUN);
        break;
    case 20:
        rc = at_workflow_set_policy(NULL, "a", AT_PARENT_FAIL_RUN);
        break;
    case 21:
        rc = at_workflow_add(wf, "c", "t", "x", SIZE_MAX, NULL);
        break;
    case 22:
        rc = at_workflow_add_completion(wf, "c", "t", "x", SIZE_MAX, NULL);
        break;
    }
    int clean = at_workflow_count(wf) == 2;
    /* Nothing was added: a submit creates two independent READY jobs. */
    at_workflow_free(wf);
    return outs(rc, clean);
}

static int h_wf_new_null(void)
{
    return at_workflow_new(NULL);
}

static int h_wf_readers(int which)
{
    at_workflow *wf = wf_two();
    int ok = 0;
    switch (which) {
    case 0:
        ok = at_workflow_count(NULL) == 0 && at_workflow_count((const at_workflow *)(void *)F.opts) == 0;
        break;
    case 1: /* before a submit, unknown node, NULL node, NULL builder */
        ok = at_workflow_job_id(wf, "a") == NULL && at_workflow_job_id(wf, "nope") == NULL &&
             at_workflow_job_id(wf, NULL) == NULL && at_workflow_job_id(NULL, "a") == NULL;
        break;
    case 2:
        at_workflow_free(NULL);
        at_workflow_free((at_workflow *)(void *)F.opts);
        ok = at_workflow_count(wf) == 2 && at_opts_set_int(F.opts, AT_OPT_PRIORITY, 1) == 0;
        break;
    }
    at_workflow_free(wf);
    return IS(ok);
}

static int h_wf_submit(int variant)
{
    at_workflow *wf = wf_two();
    char id[AT_ID_SIZE] = "x";
    int rc = 0;
    static char big[1048577];
    switch (variant) {
    case 0:
        OK(at_workflow_depend(wf, "a", "b"));
        OK(at_workflow_depend(wf, "b", "a"));
        rc = at_workflow_submit(id, F.s, wf);
        break;
    case 1:
        /* The nodes go to a queue that exists: the memory backend leaves a
         * queue it made for a refused submit in the stats (reported; a
         * backend's half-write, not this row's subject). */
        at_workflow_free(wf);
        OK(at_workflow_new(&wf));
        OK(at_opts_set_str(F.opts, AT_OPT_QUEUE, "bi.a"));
        OK(at_workflow_add(wf, "a", "t", NULL, 0, F.opts));
        OK(at_workflow_add(wf, "b", "t", NULL, 0, F.opts));
        at_opts_reset(F.opts);
        OK(at_workflow_depend_on_job(wf, "b", UNKNOWN_ID));
        rc = at_workflow_submit(id, F.s, wf);
        break;
    case 2:
        OK(at_workflow_add(wf, "big", "t", big, sizeof big, NULL));
        rc = at_workflow_submit(id, F.s, wf);
        break;
    case 3:
        OK(at_workflow_add(wf, "cap", "t", NULL, 0, opts_int(AT_OPT_BACKOFF_CAP_MS, 10)));
        at_opts_reset(F.opts);
        rc = at_workflow_submit(id, F.s, wf);
        break;
    case 4:
        rc = at_workflow_submit(id, F.s, NULL);
        break;
    case 5: {
        at_workflow *empty = NULL;
        OK(at_workflow_new(&empty));
        rc = at_workflow_submit(id, F.s, empty);
        at_workflow_free(empty);
        break;
    }
    case 6:
        rc = at_workflow_submit(id, F.notstore, wf);
        break;
    case 7:
        rc = at_workflow_submit(id, NULL, wf);
        break;
    }
    int clean = id[0] == '\0' && at_workflow_job_id(wf, "a") == NULL;
    at_workflow_free(wf);
    return outs(rc, clean);
}

static int h_wf_spawn(int variant)
{
    /* Nodes in a queue that exists: the Redis backend leaves a queue it
     * made for a refused spawn in the stats (reported; a backend's
     * half-write, not this row's subject). */
    at_workflow *wf = NULL;
    OK(at_workflow_new(&wf));
    OK(at_opts_set_str(F.opts, AT_OPT_QUEUE, "bi.a"));
    OK(at_workflow_add(wf, "a", "t", NULL, 0, F.opts));
    OK(at_workflow_add(wf, "b", "t", NULL, 0, F.opts));
    at_opts_reset(F.opts);
    int rc = 0;
    switch (variant) {
    case 0:
        rc = at_workflow_spawn(F.s, K.running, K.token + 1, wf);
        break;
    case 1:
        rc = at_workflow_spawn(F.s, UNKNOWN_ID, 1, wf);
        break;
    case 2:
        rc = at_workflow_spawn(F.s, ID_27, K.token, wf);
        break;
    case 3:
        rc = at_workflow_spawn(F.s, K.running, K.token, NULL);
        break;
    case 4:
        rc = at_workflow_spawn(F.notstore, K.running, K.token, wf);
        break;
    case 5: /* a ready job holds no lease */
        rc = at_workflow_spawn(F.s, K.ready, 0, wf);
        break;
    case 6: {
        at_workflow *cyc = wf_two();
        OK(at_workflow_depend(cyc, "a", "b"));
        OK(at_workflow_depend(cyc, "b", "a"));
        rc = at_workflow_spawn(F.s, K.running, K.token, cyc);
        at_workflow_free(cyc);
        break;
    }
    }
    int clean = at_workflow_job_id(wf, "a") == NULL;
    at_workflow_free(wf);
    return outs(rc, clean);
}

static int h_wf_status(at_store *s, const char *id)
{
    int32_t done = 9, failed = 9;
    int rc = at_workflow_status(&done, &failed, NULL, s, id);
    return outs(rc, done == 0 && failed == 0);
}

static int h_wf_jobs(int variant)
{
    at_job *jobs[4];
    size_t n = 9;
    char cur[AT_CURSOR_SIZE] = "x";
    int rc;
    switch (variant) {
    case 0:
        return at_workflow_jobs(NULL, &n, cur, F.s, K.wf, NULL, 4);
    case 1:
        rc = at_workflow_jobs(jobs, &n, cur, F.s, K.wf, NULL, 0);
        break;
    case 2:
        rc = at_workflow_jobs(jobs, &n, cur, F.s, K.wf, NULL, 10001);
        break;
    case 3:
        rc = at_workflow_jobs(jobs, &n, cur, F.s, ID_BADCHAR, NULL, 4);
        break;
    case 4:
        rc = at_workflow_jobs(jobs, &n, cur, F.s, NULL, NULL, 4);
        break;
    case 5:
        rc = at_workflow_jobs(jobs, &n, cur, F.s, K.wf, g_cursor_long, 4);
        break;
    default:
        rc = at_workflow_jobs(jobs, &n, cur, F.notstore, K.wf, NULL, 4);
        break;
    }
    return outs(rc, n == 0 && cur[0] == '\0');
}

static int h_wf_cancel(at_store *s, const char *id)
{
    uint64_t n = 9;
    int rc = at_workflow_cancel(&n, s, id);
    return outs(rc, n == 0);
}

static int h_sched_new(const char *name, const char *expr, const char *tz, const char *type)
{
    at_schedule *s = (at_schedule *)(void *)&F;
    int rc = at_schedule_new(&s, name, expr, tz, type);
    if (rc == 0)
        at_schedule_free(s);
    return outs(rc, s == NULL);
}

static int h_sched_new_null(void)
{
    return at_schedule_new(NULL, "n", "* * * * *", NULL, "t");
}

/* A setter failing leaves the definition as it was. */
static int h_sched_set(int variant)
{
    at_schedule *s = NULL;
    OK(at_schedule_new(&s, "bi.x", "* * * * *", NULL, "t"));
    OK(at_schedule_set_payload(s, "pl", 2));
    int rc = 0;
    switch (variant) {
    case 0:
        rc = at_schedule_set_payload(s, NULL, 3);
        break;
    case 1:
        rc = at_schedule_set_payload(NULL, "x", 1);
        break;
    case 2:
        rc = at_schedule_set_opts(s, opts_int(AT_OPT_RUN_AT, 5));
        break;
    case 3:
        rc = at_schedule_set_opts(s, opts_int(AT_OPT_DELAY_MS, 5));
        break;
    case 4:
        at_opts_reset(F.opts);
        OK(at_opts_set_str(F.opts, AT_OPT_IDEMPOTENCY_KEY, "k"));
        rc = at_schedule_set_opts(s, F.opts);
        break;
    case 5:
        rc = at_schedule_set_opts(NULL, F.opts);
        break;
    case 6:
        rc = at_schedule_set_misfire(s, 3, 0, 1);
        break;
    case 7:
        rc = at_schedule_set_misfire(s, -1, 0, 1);
        break;
    case 8:
        rc = at_schedule_set_misfire(s, AT_MISFIRE_ALL, -1, 1);
        break;
    case 9:
        rc = at_schedule_set_misfire(s, AT_MISFIRE_ALL, 86400001, 1);
        break;
    case 10:
        rc = at_schedule_set_misfire(s, AT_MISFIRE_ALL, 0, 0);
        break;
    case 11:
        rc = at_schedule_set_misfire(s, AT_MISFIRE_ALL, 0, 10001);
        break;
    case 12:
        rc = at_schedule_set_misfire(NULL, AT_MISFIRE_ALL, 0, 1);
        break;
    case 13:
        rc = at_schedule_set_payload(s, "x", SIZE_MAX);
        break;
    }
    at_opts_reset(F.opts);
    size_t len = 0;
    const void *p = at_schedule_payload(s, &len);
    int64_t grace = 0;
    int32_t cap = 0;
    int clean = len == 2 && memcmp(p, "pl", 2) == 0 && at_schedule_misfire(s, &grace, &cap) == AT_MISFIRE_ONCE &&
                grace == 10000 && cap == 100 && strcmp(at_schedule_queue(s), "default") == 0;
    at_schedule_free(s);
    return outs(rc, clean);
}

static int h_sched_readers_null(void)
{
    const at_schedule *n = NULL, *w = (const at_schedule *)(void *)F.opts;
    size_t len = 9;
    int ok = at_schedule_name(n) == NULL && at_schedule_expr(n) == NULL && at_schedule_tz(n) == NULL &&
             at_schedule_type(n) == NULL && at_schedule_queue(n) == NULL && at_schedule_last_job_id(n) == NULL &&
             at_schedule_name(w) == NULL && at_schedule_expr(w) == NULL && at_schedule_type(w) == NULL;
    ok = ok && at_schedule_payload(n, &len) == NULL && len == 0;
    return IS(ok);
}

static int h_sched_reader(int which)
{
    at_schedule *s = NULL;
    OK(at_schedule_new(&s, "bi.x", "* * * * *", NULL, "t"));
    int ok = 0;
    int64_t t = 5;
    int rc = BI_BAD;
    switch (which) {
    case 0:
        ok = at_schedule_time(s, 0) == AT_TIME_NONE && at_schedule_time(s, 4) == AT_TIME_NONE &&
             at_schedule_time(NULL, AT_SCHEDULE_TIME_CREATED) == AT_TIME_NONE &&
             at_schedule_time(s, AT_SCHEDULE_TIME_CREATED) == AT_TIME_NONE;
        break;
    case 1:
        ok = at_schedule_paused(NULL) == 0 && at_schedule_paused(s) == 0;
        break;
    case 2:
        rc = at_schedule_misfire(NULL, NULL, NULL);
        break;
    case 3:
        rc = at_schedule_next(NULL, s, 0);
        break;
    case 4:
        rc = at_schedule_next(&t, NULL, 0);
        break;
    case 5:
        rc = at_schedule_next(&t, s, INT64_MAX);
        rc = outs(rc, t == AT_TIME_NONE);
        break;
    case 6:
        rc = at_schedule_next(&t, s, INT64_MIN);
        rc = outs(rc, t == AT_TIME_NONE);
        break;
    case 7:
        ok = at_schedule_last_job_id(s) == NULL;
        break;
    }
    at_schedule_free(s);
    return which >= 2 && which <= 6 ? rc : IS(ok);
}

static int h_sched_free(void)
{
    at_schedule_free(NULL);
    at_schedule_free((at_schedule *)(void *)F.opts);
    at_schedule_list_free(NULL, 5);
    return IS(at_opts_set_int(F.opts, AT_OPT_PRIORITY, 1) == 0);
}

static int h_sched_add(int variant)
{
    at_schedule *s = NULL;
    OK(at_schedule_new(&s, "bi.new", "* * * * *", NULL, "t"));
    static char big[1048577];
    int32_t created = 9;
    int rc = 0;
    switch (variant) {
    case 0:
        rc = at_schedule_add(&created, NULL, s);
        break;
    case 1:
        rc = at_schedule_add(&created, F.s, NULL);
        break;
    case 2:
        rc = at_schedule_add(&created, F.notstore, s);
        break;
    case 3:
        rc = at_schedule_add(&created, F.s, (const at_schedule *)(void *)F.opts);
        break;
    case 4:
        OK(at_schedule_set_payload(s, big, sizeof big));
        rc = at_schedule_add(&created, F.s, s);
        break;
    case 5:
        OK(at_schedule_set_opts(s, opts_int(AT_OPT_BACKOFF_CAP_MS, 10)));
        at_opts_reset(F.opts);
        rc = at_schedule_add(&created, F.s, s);
        break;
    case 6: /* a store option made smaller than a template that was fine */
        OK(at_schedule_set_payload(s, "12345", 5));
        OK(at_store_set_option(F.s, AT_OPT_STORE_MAX_PAYLOAD, 4));
        rc = at_schedule_add(&created, F.s, s);
        OK(at_store_set_option(F.s, AT_OPT_STORE_MAX_PAYLOAD, 1048576));
        break;
    }
    at_schedule_free(s);
    return outs(rc, created == 0);
}

static int h_sched_get(at_schedule **out, at_store *st, const char *name)
{
    at_schedule *s = (at_schedule *)(void *)&F;
    int rc = at_schedule_get(out ? &s : NULL, st, name);
    if (rc == 0)
        at_schedule_free(s);
    return outs(rc, !out || s == NULL);
}

static int h_sched_list(int variant)
{
    at_schedule **v = (at_schedule **)(void *)&F;
    size_t n = 9;
    int rc = variant == 0   ? at_schedule_list(NULL, &n, F.s)
             : variant == 1 ? at_schedule_list(&v, NULL, F.s)
             : variant == 2 ? at_schedule_list(&v, &n, NULL)
                            : at_schedule_list(&v, &n, F.notstore);
    return outs(rc, (variant == 0 || v == NULL) && (variant == 1 || n == 0));
}

static int h_scheduler(int variant)
{
    at_scheduler *x = (at_scheduler *)(void *)&F;
    int rc;
    switch (variant) {
    case 0:
        return at_scheduler_start(NULL, F.s);
    case 1:
        rc = at_scheduler_start(&x, NULL);
        break;
    default:
        rc = at_scheduler_start(&x, F.notstore);
        break;
    }
    return outs(rc, x == NULL);
}

static int h_scheduler_null(int which)
{
    uint64_t a = 9, b = 9, c = 9, d = 9;
    switch (which) {
    case 0:
        at_scheduler_stop(NULL);
        at_scheduler_stop((at_scheduler *)(void *)F.opts);
        return IS(at_opts_set_int(F.opts, AT_OPT_PRIORITY, 1) == 0);
    case 1:
        return IS(at_scheduler_is_leader(NULL) == 0 &&
                  at_scheduler_is_leader((const at_scheduler *)(void *)F.opts) == 0);
    default:
        at_scheduler_counters(NULL, &a, &b, &c, &d);
        at_scheduler_counters(NULL, NULL, NULL, NULL, NULL);
        return IS(a == 0 && b == 0 && c == 0 && d == 0);
    }
}

static int32_t never_handler(at_ctx *ctx, void *ud)
{
    (void)ctx, (void)ud;
    return AT_HANDLER_RELEASE;
}

static int h_worker_new(int variant)
{
    at_worker *w = (at_worker *)(void *)&F;
    int rc;
    switch (variant) {
    case 0:
        return at_worker_new(NULL, F.s);
    case 1:
        rc = at_worker_new(&w, NULL);
        break;
    default:
        rc = at_worker_new(&w, F.notstore);
        break;
    }
    return outs(rc, w == NULL);
}

/* A worker configured up to the bad call (never started unless the row
 * needs it, and then only on an empty queue). */
static int h_worker(int variant)
{
    at_worker *w = NULL;
    OK(at_worker_new(&w, F.s));
    int rc = 0;
    size_t ran = 9;
    switch (variant) {
    case 0:
        rc = at_worker_handle(w, "t", NULL, NULL);
        break;
    case 1:
        rc = at_worker_handle(w, "a b", never_handler, NULL);
        break;
    case 2:
        rc = at_worker_handle(w, NULL, never_handler, NULL);
        break;
    case 3:
        rc = at_worker_handle(NULL, "t", never_handler, NULL);
        break;
    case 4:
        rc = at_worker_add_queue(w, "bad queue", 1, 0);
        break;
    case 5:
        rc = at_worker_add_queue(w, NULL, 1, 0);
        break;
    case 6:
        rc = at_worker_add_queue(w, "bi.none", 0, 0);
        break;
    case 7:
        rc = at_worker_add_queue(w, "bi.none", 1001, 0);
        break;
    case 8:
        rc = at_worker_add_queue(w, "bi.none", 1, -1);
        break;
    case 9:
        rc = at_worker_add_queue(w, "bi.none", 1, 1000001);
        break;
    case 10:
        OK(at_worker_add_queue(w, "bi.none", 1, 0));
        rc = at_worker_add_queue(w, "bi.none", 1, 0);
        break;
    case 11: {
        char q[32];
        for (int i = 0; i < 64; i++) {
            snprintf(q, sizeof q, "bi.q%d", i);
            OK(at_worker_add_queue(w, q, 1, 0));
        }
        rc = at_worker_add_queue(w, "bi.q64", 1, 0);
        break;
    }
    case 12:
        rc = at_worker_add_queue(NULL, "bi.none", 1, 0);
        break;
    case 13:
        rc = at_worker_set_rate(w, "bi.none", 1, 1000);
        break;
    case 14:
        rc = at_worker_set_rate(w, NULL, 1, 1000);
        break;
    case 15:
        OK(at_worker_add_queue(w, "bi.none", 1, 0));
        rc = at_worker_set_rate(w, "bi.none", 0, 1000);
        break;
    case 16:
        OK(at_worker_add_queue(w, "bi.none", 1, 0));
        rc = at_worker_set_rate(w, "bi.none", 1000001, 1000);
        break;
    case 17:
        OK(at_worker_add_queue(w, "bi.none", 1, 0));
        rc = at_worker_set_rate(w, "bi.none", 1, 0);
        break;
    case 18:
        OK(at_worker_add_queue(w, "bi.none", 1, 0));
        rc = at_worker_set_rate(w, "bi.none", 1, INT64_MAX);
        break;
    case 19:
        rc = at_worker_set_rate(NULL, "bi.none", 1, 1000);
        break;
    case 20:
        rc = at_worker_set_int(w, 99, 1);
        break;
    case 21:
        rc = at_worker_set_int(w, AT_WORKER_THREADS, 0);
        break;
    case 22:
        rc = at_worker_set_int(w, AT_WORKER_THREADS, 1025);
        break;
    case 23:
        rc = at_worker_set_int(w, AT_WORKER_TIMEOUT_MS, -1);
        break;
    case 24:
        rc = at_worker_set_int(w, AT_WORKER_GRACE_MS, INT64_MIN);
        break;
    case 25:
        rc = at_worker_set_int(w, AT_WORKER_WEIGHTED, 2);
        break;
    case 26:
        rc = at_worker_set_int(NULL, AT_WORKER_THREADS, 1);
        break;
    case 27:
        rc = at_worker_on_event(NULL, on_event, NULL);
        break;
    case 28:
        rc = at_worker_start(w);
        break;
    case 29:
        OK(at_worker_add_queue(w, "bi.none", 1, 0));
        rc = at_worker_start(w);
        break;
    case 30:
        rc = at_worker_start(NULL);
        break;
    case 31:
        rc = at_worker_wait(NULL, 0);
        break;
    case 32:
        rc = at_worker_fd(NULL);
        break;
    case 33:
        rc = at_worker_fd(w);
        break;
    case 34:
        rc = at_worker_run_ready(&ran, NULL, 1);
        rc = outs(rc, ran == 0);
        break;
    case 35:
        rc = at_worker_run_ready(&ran, w, 0);
        rc = outs(rc, ran == 0);
        break;
    case 36:
        rc = at_worker_run_ready(&ran, w, 1);
        rc = outs(rc, ran == 0);
        break;
    case 37: /* configuration after the worker started (event mode) */
        OK(at_worker_add_queue(w, "bi.none", 1, 0));
        OK(at_worker_handle(w, "*", never_handler, NULL));
        ck_assert_int_ge(at_worker_fd(w), 0);
        rc = at_worker_add_queue(w, "bi.none2", 1, 0);
        break;
    case 38:
        OK(at_worker_add_queue(w, "bi.none", 1, 0));
        OK(at_worker_handle(w, "*", never_handler, NULL));
        ck_assert_int_ge(at_worker_fd(w), 0);
        rc = at_worker_start(w);
        break;
    case 39: /* a worker never started has stopped already */
        rc = at_worker_wait(w, -5);
        break;
    case 40:
        rc = at_worker_handle((at_worker *)(void *)F.opts, "t", never_handler, NULL);
        break;
    }
    at_worker_free(w);
    return rc;
}

static int h_worker_void(int which)
{
    uint64_t a = 9, b = 9, c = 9, d = 9;
    switch (which) {
    case 0:
        at_worker_stop(NULL);
        at_worker_stop((at_worker *)(void *)F.opts);
        return IS(at_opts_set_int(F.opts, AT_OPT_PRIORITY, 1) == 0);
    case 1:
        at_worker_free(NULL);
        at_worker_free((at_worker *)(void *)F.opts);
        return IS(at_opts_set_int(F.opts, AT_OPT_PRIORITY, 1) == 0);
    default:
        at_worker_counters(NULL, &a, &b, &c, &d);
        at_worker_counters(NULL, NULL, NULL, NULL, NULL);
        return IS(a == 0 && b == 0 && c == 0 && d == 0);
    }
}

/* at_ctx rows: a handler runs (event mode, this thread) on the seeded job of
 * bi.ctx and makes the bad call there, between two dumps of its own; it
 * then releases the job. */
static int g_ctx_op, g_ctx_rc;

static int32_t ctx_handler(at_ctx *ctx, void *ud)
{
    (void)ud;
    F.in_before = bi_dump(at_ctx_store(ctx), k_extra_queues);
    switch (g_ctx_op) {
    case 0:
        g_ctx_rc = at_ctx_progress(ctx, 1001, NULL);
        break;
    case 1:
        g_ctx_rc = at_ctx_progress(ctx, -1, "note");
        break;
    case 2:
        g_ctx_rc = at_ctx_progress(NULL, 5, NULL);
        break;
    case 3:
        g_ctx_rc = at_ctx_set_result(ctx, NULL, 4);
        break;
    case 4:
        g_ctx_rc = at_ctx_set_result(NULL, "r", 1);
        break;
    case 5:
        g_ctx_rc = at_ctx_set_error(NULL, "e");
        break;
    case 6:
        g_ctx_rc = at_ctx_set_result(ctx, "r", SIZE_MAX);
        break;
    case 7:
        g_ctx_rc = IS(at_ctx_job(NULL) == NULL && at_ctx_job(ctx) != NULL);
        break;
    case 8:
        g_ctx_rc = IS(at_ctx_store(NULL) == NULL && at_ctx_store(ctx) == F.s);
        break;
    case 9:
        g_ctx_rc = IS(at_ctx_cancelled(NULL) == 1 && at_ctx_cancelled(ctx) == 0);
        break;
    case 10:
        g_ctx_rc = IS(at_ctx_deadline(NULL) == AT_TIME_NONE);
        break;
    }
    F.in_after = bi_dump(at_ctx_store(ctx), k_extra_queues);
    return AT_HANDLER_RELEASE;
}

static int h_ctx(int op)
{
    at_worker *w = NULL;
    size_t ran = 0;
    g_ctx_op = op;
    g_ctx_rc = BI_BAD;
    F.inner = 1;
    OK(at_worker_new(&w, F.s));
    OK(at_worker_handle(w, "*", ctx_handler, NULL));
    OK(at_worker_add_queue(w, "bi.ctx", 1, 0));
    int fd = at_worker_fd(w);
    ck_assert_int_ge(fd, 0);
    /* The claim happens on the worker's own thread: wait (up to 10 s) until
     * the descriptor says a job is there. */
    for (int i = 0; i < 100 && ran == 0; i++) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        poll(&pfd, 1, 100);
        OK(at_worker_run_ready(&ran, w, 1));
    }
    at_worker_free(w);
    ck_assert_uint_eq(ran, 1);
    return g_ctx_rc;
}

static int h_metrics(int variant)
{
    char buf[16];
    switch (variant) {
    case 0:
        return (int)at_metrics_prometheus(NULL, 5, F.s);
    case 1:
        return (int)at_metrics_prometheus(buf, sizeof buf, NULL);
    case 2:
        return (int)at_metrics_prometheus(buf, sizeof buf, F.notstore);
    default: { /* buf NULL with len 0 asks for the length; a short buf is cut with a NUL */
        int64_t n = at_metrics_prometheus(NULL, 0, F.s);
        int64_t m = at_metrics_prometheus(buf, sizeof buf, F.s);
        return IS(n > 16 && m == n && buf[15] == '\0' && strlen(buf) == 15);
    }
    }
}

static int h_set_allocator_partial(void)
{
    at_malloc_fn m = NULL;
    at_realloc_fn r = NULL;
    at_free_fn f = NULL;
    int rc = at_set_allocator(malloc, NULL, NULL, NULL, NULL, NULL);
    /* Unchanged: asking again (all NULL restores the default, which is what
     * was in use) reports the C library's functions. */
    at_set_allocator(NULL, NULL, NULL, &m, &r, &f);
    return outs(rc, m == malloc && r == realloc && f == free);
}

static int h_set_log(int32_t level)
{
    return at_set_log(NULL, NULL, level);
}

static int h_strs(int which)
{
    switch (which) {
    case 0:
        return IS(strcmp(at_strerror(1), "unknown error") == 0 && strcmp(at_strerror(INT_MIN), "unknown error") == 0 &&
                  strcmp(at_strerror(-27), "unknown error") == 0);
    case 1:
        return IS(strcmp(at_err_name(1), "AT_ERR_UNKNOWN") == 0 && strcmp(at_err_name(INT_MAX), "AT_ERR_UNKNOWN") == 0 &&
                  strcmp(at_err_name(-27), "AT_ERR_UNKNOWN") == 0);
    case 2:
        return IS(at_state_name(AT_STATE_ANY) == NULL && at_state_name(AT_STATE_COUNT__) == NULL &&
                  at_state_name(-1) == NULL && at_state_name(INT32_MIN) == NULL);
    case 3:
        return IS(strcmp(at_version(), "0.1.0") == 0);
    default:
        return IS(at_version_number() == AT_VERSION_NUMBER);
    }
}

static int h_store_backend(void)
{
    return IS(at_store_backend(NULL) == NULL && at_store_backend(F.notstore) == NULL);
}

static int h_is_manual(void)
{
    return IS(at_store_clock_is_manual(NULL) == 0 && at_store_clock_is_manual(F.s) == F.host_clock);
}

static int h_notify(void)
{
    at_store_notify(NULL);
    return BI_DOC;
}

static int h_opts_void(int which)
{
    at_opts_free(NULL);
    at_opts_reset(NULL);
    if (which == 0) {
        at_opts_free((at_opts *)(void *)F.clk); /* a clock is not freed as opts */
        return IS(at_clock_now(F.clk) == at_clock_now(F.clk));
    }
    at_opts_reset((at_opts *)(void *)F.clk);
    return IS(at_clock_now(F.clk) >= 0);
}

static int h_ack(int variant)
{
    static char big[1048577];
    switch (variant) {
    case 0:
        return at_ack(F.s, K.running, K.token, NULL, 5);
    case 1:
        return at_ack(F.s, K.running, K.token, "r", SIZE_MAX);
    case 2:
        return at_ack(F.s, K.running, K.token, big, sizeof big);
    case 3:
        return at_ack(F.s, K.running, K.token + 1, NULL, 0);
    case 4:
        return at_ack(F.notstore, K.running, K.token, NULL, 0);
    case 5:
        return at_ack(F.s, ID_OVERFLOW, K.token, NULL, 0);
    default:
        return at_ack(F.s, K.ready, 0, NULL, 0);
    }
}

static int h_touch(const char *id, uint64_t token, int64_t ext)
{
    return at_touch(F.s, id, token, ext);
}

static int h_release(const char *id, uint64_t token, int64_t delay)
{
    return at_release(F.s, id, token, delay);
}

/* ------------------------------------------------------------------ table */

/* X(function, variant, expected, expected on a backend without a host
 * clock or SAME, expression yielding the outcome) */
#define BI_ROWS(X)                                                                                             \
    /* versions and error texts */                                                                             \
    X(at_version, "is the header's version", BI_DOC, SAME, h_strs(3))                                          \
    X(at_version_number, "is AT_VERSION_NUMBER", BI_DOC, SAME, h_strs(4))                                      \
    X(at_strerror, "unassigned codes (1, -27, INT_MIN) say unknown error", BI_DOC, SAME, h_strs(0))           \
    X(at_err_name, "unassigned codes give AT_ERR_UNKNOWN", BI_DOC, SAME, h_strs(1))                            \
    X(at_state_name, "0, 8, -1, INT32_MIN are not states: NULL", BI_DOC, SAME, h_strs(2))                      \
    X(at_state_from_name, "NULL", AT_ERR_INVAL, SAME, at_state_from_name(NULL))                                \
    X(at_state_from_name, "empty", AT_ERR_INVAL, SAME, at_state_from_name(""))                                 \
    X(at_state_from_name, "upper case READY", AT_ERR_INVAL, SAME, at_state_from_name("READY"))                 \
    X(at_state_from_name, "trailing space", AT_ERR_INVAL, SAME, at_state_from_name("ready "))                  \
    X(at_state_from_name, "the filter's name any", AT_ERR_INVAL, SAME, at_state_from_name("any"))             \
    X(at_last_error, "names the scheme after a failed open", BI_DOC, SAME, h_last_error())                     \
    X(at_set_allocator, "partial set (malloc only)", AT_ERR_INVAL, SAME, h_set_allocator_partial())            \
    X(at_set_log, "level 0", AT_ERR_RANGE, SAME, h_set_log(0))                                                 \
    X(at_set_log, "level 5", AT_ERR_RANGE, SAME, h_set_log(5))                                                 \
    X(at_set_log, "level INT32_MIN", AT_ERR_RANGE, SAME, h_set_log(INT32_MIN))                                 \
    /* clocks */                                                                                               \
    X(at_clock_new_manual, "out NULL", AT_ERR_INVAL, SAME, at_clock_new_manual(NULL, 0))                       \
    X(at_clock_new_manual, "start before the epoch", AT_ERR_RANGE, SAME, h_clock_new(-1))                      \
    X(at_clock_new_manual, "start INT64_MIN", AT_ERR_RANGE, SAME, h_clock_new(INT64_MIN))                      \
    X(at_clock_advance, "NULL clock", AT_ERR_INVAL, SAME, at_clock_advance(NULL, 1))                           \
    X(at_clock_advance, "wrong-type handle", AT_ERR_INVAL, SAME, at_clock_advance(F.notclock, 1))              \
    X(at_clock_advance, "negative delta", AT_ERR_INVAL, SAME, h_clock(0, -1))                                  \
    X(at_clock_advance, "INT64_MIN delta", AT_ERR_INVAL, SAME, h_clock(0, INT64_MIN))                          \
    X(at_clock_advance, "delta overflowing the clock", AT_ERR_RANGE, SAME, h_clock(0, INT64_MAX))              \
    X(at_clock_set, "NULL clock", AT_ERR_INVAL, SAME, at_clock_set(NULL, 0))                                   \
    X(at_clock_set, "before the epoch", AT_ERR_RANGE, SAME, h_clock(1, -1))                                    \
    X(at_clock_set, "INT64_MAX", AT_ERR_RANGE, SAME, h_clock(1, INT64_MAX))                                    \
    X(at_clock_now, "NULL reads the real clock", BI_DOC, SAME, h_clock_now_null())                             \
    X(at_clock_free, "used by a store", AT_ERR_BUSY, SAME, h_clock_free_busy())                                \
    X(at_clock_free, "NULL is accepted", 0, SAME, at_clock_free(NULL))                                         \
    X(at_clock_free, "wrong-type handle", AT_ERR_INVAL, SAME, at_clock_free(F.notclock))                       \
    /* store handles */                                                                                        \
    X(at_store_open, "out NULL", AT_ERR_INVAL, SAME, at_store_open(NULL, "memory:"))                           \
    X(at_store_open, "uri NULL", AT_ERR_INVAL, SAME, h_store_open(NULL))                                       \
    X(at_store_open, "empty uri", AT_ERR_URI, SAME, h_store_open(""))                                          \
    X(at_store_open, "no colon", AT_ERR_URI, SAME, h_store_open("memory"))                                     \
    X(at_store_open, "upper-case scheme", AT_ERR_URI, SAME, h_store_open("MEMORY:"))                           \
    X(at_store_open, "scheme starting with a digit", AT_ERR_URI, SAME, h_store_open("1mem:"))                  \
    X(at_store_open, "scheme of 32 characters", AT_ERR_URI, SAME,                                              \
      h_store_open("abcdefghijabcdefghijabcdefghijab:"))                                                       \
    X(at_store_open, "scheme with a space", AT_ERR_URI, SAME, h_store_open("mem ory:"))                        \
    X(at_store_open, "unknown scheme", AT_ERR_NOBACKEND, SAME, h_store_open("nosuch:"))                        \
    X(at_store_open, "sqlite: empty path", BI_SQLITE_URI, SAME, h_store_open("sqlite:"))                          \
    X(at_store_open, "sqlite: unknown sync value", BI_SQLITE_URI, SAME, h_store_open_sqlite("?sync=sometimes"))   \
    X(at_store_open, "sqlite: unknown parameter", BI_SQLITE_URI, SAME, h_store_open_sqlite("?bogus=1"))           \
    X(at_store_open, "redis: no host", BI_REDIS_URI, SAME, h_store_open("redis://"))                             \
    X(at_store_open, "redis: port not a number", BI_REDIS_URI, SAME, h_store_open("redis://127.0.0.1:port"))     \
    X(at_store_open, "redis: port 70000", BI_REDIS_URI, SAME, h_store_open("redis://127.0.0.1:70000"))           \
    X(at_store_open, "redis: db not a number", BI_REDIS_URI, SAME, h_store_open("redis://127.0.0.1:6379/db"))    \
    X(at_store_open, "redis: unknown parameter", BI_REDIS_URI, SAME, h_store_open("redis://127.0.0.1:6379?x=1")) \
    X(at_store_close, "NULL and a wrong-type handle are ignored", BI_DOC, SAME, h_store_close_null())          \
    X(at_store_backend, "NULL and wrong-type handles give NULL", BI_DOC, SAME, h_store_backend())              \
    X(at_store_errmsg, "NULL store: empty message, native 0", BI_DOC, SAME, h_store_errmsg_null_store())        \
    X(at_store_errmsg, "buffer of 1: NUL only, full length returned", BI_DOC, SAME, h_store_errmsg_truncates()) \
    X(at_store_set_option, "NULL store", AT_ERR_INVAL, SAME, at_store_set_option(NULL, 100, 1))                \
    X(at_store_set_option, "wrong-type handle", AT_ERR_MISUSE, SAME, at_store_set_option(F.notstore, 100, 1))  \
    X(at_store_set_option, "option 99", AT_ERR_INVAL, SAME, h_set_option(99, 1))                               \
    X(at_store_set_option, "option 112", AT_ERR_INVAL, SAME, h_set_option(112, 1))                             \
    X(at_store_set_option, "a job option (priority)", AT_ERR_INVAL, SAME, h_set_option(AT_OPT_PRIORITY, 1))    \
    X(at_store_set_option, "negative payload limit", AT_ERR_RANGE, SAME, h_set_option(100, -1))                \
    X(at_store_set_option, "payload limit over 1 GiB", AT_ERR_RANGE, SAME, h_set_option(100, (1 << 30) + 1))   \
    X(at_store_set_option, "negative retention", AT_ERR_RANGE, SAME, h_set_option(101, -1))                    \
    X(at_store_set_option, "retention INT64_MAX", AT_ERR_RANGE, SAME, h_set_option(101, INT64_MAX))            \
    X(at_store_set_option, "lease 0", AT_ERR_RANGE, SAME, h_set_option(102, 0))                                \
    X(at_store_set_option, "max attempts 0", AT_ERR_RANGE, SAME, h_set_option(103, 0))                         \
    X(at_store_set_option, "jitter 1001", AT_ERR_RANGE, SAME, h_set_option(106, 1001))                         \
    X(at_store_set_option, "idempotency ttl 0", AT_ERR_RANGE, SAME, h_set_option(107, 0))                      \
    X(at_store_set_option, "watch interval 0", AT_ERR_RANGE, SAME, h_set_option(109, 0))                       \
    X(at_store_set_option, "scheduler lease 499", AT_ERR_RANGE, SAME, h_set_option(110, 499))                  \
    X(at_store_set_option, "scheduler refresh INT64_MIN", AT_ERR_RANGE, SAME, h_set_option(111, INT64_MIN))   \
    X(at_store_get_option, "value_out NULL", AT_ERR_INVAL, SAME, at_store_get_option(NULL, F.s, 100))          \
    X(at_store_get_option, "NULL store", AT_ERR_INVAL, SAME, h_get_option(NULL, 100))                          \
    X(at_store_get_option, "wrong-type handle", AT_ERR_MISUSE, SAME, h_get_option(F.notstore, 100))            \
    X(at_store_get_option, "option 0", AT_ERR_INVAL, SAME, h_get_option(F.s, 0))                               \
    X(at_store_get_option, "option INT32_MIN", AT_ERR_INVAL, SAME, h_get_option(F.s, INT32_MIN))               \
    X(at_store_set_clock, "NULL store", AT_ERR_INVAL, SAME, at_store_set_clock(NULL, F.clk))                   \
    X(at_store_set_clock, "NULL clock", AT_ERR_INVAL, SAME, at_store_set_clock(F.s, NULL))                     \
    X(at_store_set_clock, "wrong-type clock", AT_ERR_INVAL, SAME, at_store_set_clock(F.s, F.notclock))         \
    X(at_store_set_clock, "wrong-type store", AT_ERR_MISUSE, SAME, at_store_set_clock(F.notstore, F.clk))      \
    X(at_store_set_clock, "after the first job operation", AT_ERR_MISUSE, AT_ERR_UNSUPPORTED, h_set_clock_used()) \
    X(at_store_now, "now_out NULL", AT_ERR_INVAL, SAME, at_store_now(NULL, F.s))                               \
    X(at_store_now, "NULL store", AT_ERR_INVAL, SAME, h_now(NULL))                                             \
    X(at_store_now, "wrong-type handle", AT_ERR_MISUSE, SAME, h_now(F.notstore))                               \
    X(at_store_control, "NULL store", AT_ERR_INVAL, SAME, at_store_control(NULL, 1, NULL))                     \
    X(at_store_control, "wrong-type handle", AT_ERR_MISUSE, SAME, at_store_control(F.notstore, 1, NULL))       \
    X(at_store_control, "unknown op", AT_ERR_UNSUPPORTED, SAME, at_store_control(F.s, INT32_MAX, NULL))        \
    X(at_store_control, "negative op", AT_ERR_UNSUPPORTED, SAME, at_store_control(F.s, -1, NULL))              \
    X(at_store_interrupt, "NULL store", AT_ERR_INVAL, SAME, at_store_interrupt(NULL))                          \
    X(at_store_interrupt, "wrong-type handle", AT_ERR_MISUSE, SAME, at_store_interrupt(F.notstore))            \
    X(at_store_on_event, "NULL store", AT_ERR_INVAL, SAME, at_store_on_event(NULL, on_event, NULL))            \
    X(at_store_on_event, "wrong-type handle", AT_ERR_MISUSE, SAME, at_store_on_event(F.notstore, on_event, NULL)) \
    X(at_store_notify, "NULL is ignored", BI_DOC, SAME, h_notify())                                            \
    X(at_store_error, "NULL store: returns code, message for at_last_error", AT_ERR_IO, SAME, h_store_error()) \
    X(at_store_clock_wall, "NULL store: the real clock", BI_DOC, SAME, h_store_clock_wall_null())              \
    X(at_store_clock_mono, "NULL store: the real monotonic clock", BI_DOC, SAME, h_store_clock_mono_null())    \
    X(at_store_clock_is_manual, "NULL store: 0", BI_DOC, SAME, h_is_manual())                                  \
    X(at_store_register, "NULL vtable", AT_ERR_INVAL, SAME, h_register(0))                                     \
    X(at_store_register, "version 0", AT_ERR_INVAL, SAME, h_register(1))                                       \
    X(at_store_register, "size 8", AT_ERR_INVAL, SAME, h_register(2))                                          \
    X(at_store_register, "scheme with upper case and space", AT_ERR_INVAL, SAME, h_register(3))                \
    X(at_store_register, "NULL scheme", AT_ERR_INVAL, SAME, h_register(4))                                     \
    X(at_store_register, "required claim missing", AT_ERR_INVAL, SAME, h_register(5))                          \
    X(at_store_register, "scheme taken (memory)", AT_ERR_EXISTS, SAME, h_register(6))                          \
    /* options */                                                                                              \
    X(at_opts_new, "out NULL", AT_ERR_INVAL, SAME, h_opts_new_null())                                          \
    X(at_opts_free, "NULL and a wrong-type handle are ignored", BI_DOC, SAME, h_opts_void(0))                  \
    X(at_opts_reset, "NULL and a wrong-type handle are ignored", BI_DOC, SAME, h_opts_void(1))                 \
    X(at_opts_set_int, "NULL opts", AT_ERR_INVAL, SAME, at_opts_set_int(NULL, AT_OPT_PRIORITY, 1))             \
    X(at_opts_set_int, "wrong-type handle", AT_ERR_INVAL, SAME,                                                \
      at_opts_set_int((at_opts *)(void *)F.clk, AT_OPT_PRIORITY, 1))                                           \
    X(at_opts_set_int, "run_at before the epoch", AT_ERR_RANGE, SAME, h_opts_set_int(AT_OPT_RUN_AT, -1))       \
    X(at_opts_set_int, "run_at INT64_MAX", AT_ERR_RANGE, SAME, h_opts_set_int(AT_OPT_RUN_AT, INT64_MAX))       \
    X(at_opts_set_int, "delay INT64_MAX", AT_ERR_RANGE, SAME, h_opts_set_int(AT_OPT_DELAY_MS, INT64_MAX))      \
    X(at_opts_set_int, "delay INT64_MIN", AT_ERR_RANGE, SAME, h_opts_set_int(AT_OPT_DELAY_MS, INT64_MIN))      \
    X(at_opts_set_int, "priority INT64_MAX", AT_ERR_RANGE, SAME, h_opts_set_int(AT_OPT_PRIORITY, INT64_MAX))   \
    X(at_opts_set_int, "backoff base over a year", AT_ERR_RANGE, SAME,                                         \
      h_opts_set_int(AT_OPT_BACKOFF_BASE_MS, INT64_C(366) * 86400000 + 1))                                     \
    X(at_opts_set_int, "backoff cap negative", AT_ERR_RANGE, SAME, h_opts_set_int(AT_OPT_BACKOFF_CAP_MS, -1))  \
    X(at_opts_set_int, "idempotency ttl INT64_MAX", AT_ERR_RANGE, SAME,                                        \
      h_opts_set_int(AT_OPT_IDEMPOTENCY_TTL_MS, INT64_MAX))                                                    \
    X(at_opts_set_int, "traceparent is a string option", AT_ERR_INVAL, SAME, h_opts_set_int(AT_OPT_TRACEPARENT, 1)) \
    X(at_opts_set_int, "store option 100", AT_ERR_INVAL, SAME, h_opts_set_int(100, 1))                         \
    X(at_opts_set_int, "option 0", AT_ERR_INVAL, SAME, h_opts_set_int(0, 1))                                   \
    X(at_opts_set_str, "NULL opts", AT_ERR_INVAL, SAME, at_opts_set_str(NULL, AT_OPT_QUEUE, "q"))              \
    X(at_opts_set_str, "queue with a newline", AT_ERR_NAME, SAME, h_opts_set_str(AT_OPT_QUEUE, "q\n"))         \
    X(at_opts_set_str, "queue with a quote", AT_ERR_NAME, SAME, h_opts_set_str(AT_OPT_QUEUE, "q\""))           \
    X(at_opts_set_str, "queue non-ASCII", AT_ERR_NAME, SAME, h_opts_set_str(AT_OPT_QUEUE, "caf\xc3\xa9"))      \
    X(at_opts_set_str, "queue with a key-only character /", AT_ERR_NAME, SAME, h_opts_set_str(AT_OPT_QUEUE, "a/b")) \
    X(at_opts_set_str, "key of 256 bytes", AT_ERR_NAME, SAME, h_opts_set_str(AT_OPT_IDEMPOTENCY_KEY, g_key256)) \
    X(at_opts_set_str, "key with a tab", AT_ERR_NAME, SAME, h_opts_set_str(AT_OPT_IDEMPOTENCY_KEY, "k\t"))     \
    X(at_opts_set_str, "traceparent upper-case hex", AT_ERR_INVAL, SAME,                                       \
      h_opts_set_str(AT_OPT_TRACEPARENT, "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01"))           \
    X(at_opts_set_str, "traceparent version ff", AT_ERR_INVAL, SAME,                                           \
      h_opts_set_str(AT_OPT_TRACEPARENT, "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))           \
    X(at_opts_set_str, "traceparent all-zero trace id", AT_ERR_INVAL, SAME,                                    \
      h_opts_set_str(AT_OPT_TRACEPARENT, "00-00000000000000000000000000000000-b7ad6b7169203331-01"))           \
    X(at_opts_set_str, "traceparent truncated", AT_ERR_INVAL, SAME, h_opts_set_str(AT_OPT_TRACEPARENT, "00-0af7")) \
    X(at_opts_set_str, "traceparent with a trailing byte", AT_ERR_INVAL, SAME,                                 \
      h_opts_set_str(AT_OPT_TRACEPARENT, TRACEPARENT "x"))                                                     \
    X(at_opts_set_str, "an integer option", AT_ERR_INVAL, SAME, h_opts_set_str(AT_OPT_RUN_AT, "5"))            \
    X(at_opts_set_str, "option 13", AT_ERR_INVAL, SAME, h_opts_set_str(13, "x"))                               \
    /* enqueue and batches */                                                                                  \
    X(at_enqueue, "wrong-type store", AT_ERR_MISUSE, SAME, at_enqueue(NULL, F.notstore, "t", NULL, 0, NULL))   \
    X(at_enqueue, "type with a newline", AT_ERR_NAME, SAME, h_enqueue("t\n", NULL, 0, NULL))                   \
    X(at_enqueue, "type *", AT_ERR_NAME, SAME, h_enqueue("*", NULL, 0, NULL))                                  \
    X(at_enqueue, "type with DEL", AT_ERR_NAME, SAME, h_enqueue("t\x7f", NULL, 0, NULL))                       \
    X(at_enqueue, "length SIZE_MAX (never read)", AT_ERR_TOOBIG, SAME, h_enqueue("t", "x", SIZE_MAX, NULL))    \
    X(at_enqueue, "NULL payload, length SIZE_MAX", AT_ERR_INVAL, SAME, h_enqueue("t", NULL, SIZE_MAX, NULL))   \
    X(at_enqueue, "cap below the store's default base", AT_ERR_RANGE, SAME,                                    \
      h_enqueue("t", NULL, 0, opts_int(AT_OPT_BACKOFF_CAP_MS, 999)))                                           \
    X(at_batch_new, "out NULL", AT_ERR_INVAL, SAME, h_batch_new_null())                                        \
    X(at_batch_add, "type with a space", AT_ERR_NAME, SAME, h_batch(0))                                        \
    X(at_batch_add, "NULL payload with a length", AT_ERR_INVAL, SAME, h_batch(1))                              \
    X(at_batch_add, "length SIZE_MAX (never read)", AT_ERR_TOOBIG, SAME, h_batch(2))                           \
    X(at_batch_add, "NULL type", AT_ERR_NAME, SAME, h_batch(3))                                                \
    X(at_batch_add, "type of 129 bytes", AT_ERR_NAME, SAME, h_batch(10))                                       \
    X(at_batch_add, "NULL batch", AT_ERR_INVAL, SAME, at_batch_add(NULL, "t", NULL, 0, NULL))                  \
    X(at_batch_add, "wrong-type batch", AT_ERR_INVAL, SAME,                                                    \
      at_batch_add((at_batch *)(void *)F.opts, "t", NULL, 0, NULL))                                            \
    X(at_enqueue_batch, "second job over the payload limit: none created", AT_ERR_TOOBIG, SAME, h_batch(4))    \
    X(at_enqueue_batch, "cap below base: none created", AT_ERR_RANGE, SAME, h_batch(5))                        \
    X(at_enqueue_batch, "wrong-type store", AT_ERR_MISUSE, SAME, h_batch(6))                                   \
    X(at_enqueue_batch, "empty batch", AT_ERR_INVAL, SAME, h_batch(7))                                         \
    X(at_enqueue_batch, "NULL batch", AT_ERR_INVAL, SAME, h_batch(8))                                          \
    X(at_enqueue_batch, "wrong-type batch", AT_ERR_INVAL, SAME, h_batch(9))                                    \
    X(at_batch_id, "before enqueue, NULL batch: NULL", BI_DOC, SAME, h_batch_readers(0))                       \
    X(at_batch_status, "before enqueue, NULL batch: AT_ERR_INVAL", BI_DOC, SAME, h_batch_readers(1))           \
    X(at_batch_count, "NULL and wrong-type: 0", BI_DOC, SAME, h_batch_readers(2))                              \
    X(at_batch_clear, "NULL is ignored", BI_DOC, SAME, h_batch_readers(3))                                     \
    X(at_batch_free, "NULL is ignored", BI_DOC, SAME, h_batch_readers(3))                                      \
    /* job snapshots */                                                                                        \
    X(at_job_free, "NULL and wrong-type are ignored", BI_DOC, SAME,                                            \
      (at_job_free(NULL), at_job_free((at_job *)(void *)F.opts), IS(at_opts_set_int(F.opts, 2, 1) == 0)))      \
    X(at_job_id, "NULL", BI_DOC, SAME, IS(at_job_id(NULL) == NULL))                                            \
    X(at_job_id, "wrong-type handle", BI_DOC, SAME, IS(at_job_id((const at_job *)(void *)F.opts) == NULL))     \
    X(at_job_type, "NULL", BI_DOC, SAME, IS(at_job_type(NULL) == NULL))                                        \
    X(at_job_queue, "NULL", BI_DOC, SAME, IS(at_job_queue(NULL) == NULL))                                      \
    X(at_job_payload, "NULL: NULL and length 0", BI_DOC, SAME, h_job_accessors_null(0))                        \
    X(at_job_state, "NULL", AT_ERR_INVAL, SAME, at_job_state(NULL))                                            \
    X(at_job_state, "wrong-type handle", AT_ERR_INVAL, SAME, at_job_state((const at_job *)(void *)F.opts))     \
    X(at_job_priority, "NULL: 0", BI_DOC, SAME, IS(at_job_priority(NULL) == 0))                                \
    X(at_job_attempts, "NULL: 0", BI_DOC, SAME, IS(at_job_attempts(NULL) == 0))                                \
    X(at_job_max_attempts, "NULL: 0", BI_DOC, SAME, IS(at_job_max_attempts(NULL) == 0))                        \
    X(at_job_token, "NULL: 0", BI_DOC, SAME, IS(at_job_token(NULL) == 0))                                      \
    X(at_job_time, "NULL: AT_TIME_NONE", BI_DOC, SAME, IS(at_job_time(NULL, AT_JOB_TIME_CREATED) == AT_TIME_NONE)) \
    X(at_job_time, "which 0, 7, INT32_MIN: AT_TIME_NONE", BI_DOC, SAME, h_job_get_then(0))                     \
    X(at_job_last_error, "NULL", BI_DOC, SAME, IS(at_job_last_error(NULL) == NULL))                            \
    X(at_job_result, "NULL: NULL and length 0", BI_DOC, SAME, h_job_accessors_null(1))                         \
    X(at_job_idempotency_key, "NULL", BI_DOC, SAME, IS(at_job_idempotency_key(NULL) == NULL))                  \
    X(at_job_cancel_requested, "NULL: 0", BI_DOC, SAME, IS(at_job_cancel_requested(NULL) == 0))                \
    X(at_job_traceparent, "NULL", BI_DOC, SAME, IS(at_job_traceparent(NULL) == NULL))                          \
    X(at_job_workflow_id, "NULL", BI_DOC, SAME, IS(at_job_workflow_id(NULL) == NULL))                          \
    X(at_job_node, "NULL", BI_DOC, SAME, IS(at_job_node(NULL) == NULL))                                        \
    X(at_job_parent_count, "NULL: 0", BI_DOC, SAME, IS(at_job_parent_count(NULL) == 0))                        \
    X(at_job_parent_id, "out of range (0, SIZE_MAX) on a job without parents", BI_DOC, SAME, h_job_get_then(1)) \
    X(at_job_parent_id, "NULL", BI_DOC, SAME, IS(at_job_parent_id(NULL, 0) == NULL))                           \
    X(at_job_parents_left, "NULL: 0", BI_DOC, SAME, IS(at_job_parents_left(NULL) == 0))                        \
    X(at_job_parent_policy, "NULL: 0", BI_DOC, SAME, IS(at_job_parent_policy(NULL) == 0))                      \
    X(at_job_info_init, "NULL ignored; fills size and AT_TIME_NONE", BI_DOC, SAME, h_job_info_init_null())     \
    X(at_job_create, "out NULL", AT_ERR_INVAL, SAME, h_job_create(0))                                          \
    X(at_job_create, "info NULL", AT_ERR_INVAL, SAME, h_job_create(1))                                         \
    X(at_job_create, "info.size 4", AT_ERR_INVAL, SAME, h_job_create(2))                                       \
    X(at_sched_row_init, "NULL ignored; fills size and AT_TIME_NONE", BI_DOC, SAME, h_sched_row_init())        \
    X(at_id_parse, "NULL", AT_ERR_INVAL, SAME, h_id_parse(NULL))                                               \
    X(at_id_parse, "empty", AT_ERR_INVAL, SAME, h_id_parse(""))                                                \
    X(at_id_parse, "25 characters", AT_ERR_INVAL, SAME, h_id_parse(ID_25))                                     \
    X(at_id_parse, "27 characters", AT_ERR_INVAL, SAME, h_id_parse(ID_27))                                     \
    X(at_id_parse, "U is not Crockford base32", AT_ERR_INVAL, SAME, h_id_parse(ID_BADCHAR))                    \
    X(at_id_parse, "first digit over 7 overflows 128 bits", AT_ERR_INVAL, SAME, h_id_parse(ID_OVERFLOW))       \
    X(at_id_parse, "non-ASCII byte", AT_ERR_INVAL, SAME, h_id_parse("0000000000000000000000000\xc3"))          \
    X(at_id_format, "all ones formats to 7ZZ..Z and parses back", BI_DOC, SAME, h_id_format())                 \
    /* job control */                                                                                          \
    X(at_poll, "jobs_out NULL", AT_ERR_INVAL, SAME, h_poll(0))                                                 \
    X(at_poll, "n_out NULL", AT_ERR_INVAL, SAME, h_poll(1))                                                    \
    X(at_poll, "queues NULL", AT_ERR_INVAL, SAME, h_poll(2))                                                   \
    X(at_poll, "nqueues 0", AT_ERR_INVAL, SAME, h_poll(3))                                                     \
    X(at_poll, "nqueues 65", AT_ERR_INVAL, SAME, h_poll(4))                                                    \
    X(at_poll, "max 0", AT_ERR_INVAL, SAME, h_poll(5))                                                         \
    X(at_poll, "max 1001", AT_ERR_INVAL, SAME, h_poll(6))                                                      \
    X(at_poll, "timeout -2", AT_ERR_RANGE, SAME, h_poll(7))                                                    \
    X(at_poll, "timeout INT64_MIN", AT_ERR_RANGE, SAME, h_poll(8))                                             \
    X(at_poll, "second queue name invalid (first is due)", AT_ERR_NAME, SAME, h_poll(9))                       \
    X(at_poll, "a NULL queue name", AT_ERR_NAME, SAME, h_poll(10))                                             \
    X(at_poll, "wrong-type store", AT_ERR_MISUSE, SAME, h_poll(11))                                            \
    X(at_ack, "NULL result with a length", AT_ERR_INVAL, SAME, h_ack(0))                                       \
    X(at_ack, "result length SIZE_MAX (never read)", AT_ERR_TOOBIG, SAME, h_ack(1))                            \
    X(at_ack, "result over the store's limit", AT_ERR_TOOBIG, SAME, h_ack(2))                                  \
    X(at_ack, "a token one past the lease's", AT_ERR_STALE, SAME, h_ack(3))                                    \
    X(at_ack, "wrong-type store", AT_ERR_MISUSE, SAME, h_ack(4))                                               \
    X(at_ack, "id overflowing 128 bits", AT_ERR_INVAL, SAME, h_ack(5))                                         \
    X(at_ack, "a READY job (no lease)", AT_ERR_STALE, SAME, h_ack(6))                                          \
    X(at_ack_many, "n 0", AT_ERR_INVAL, SAME, h_ack_many(0))                                                   \
    X(at_ack_many, "n 1001", AT_ERR_INVAL, SAME, h_ack_many(1))                                                \
    X(at_ack_many, "results_out NULL", AT_ERR_INVAL, SAME, h_ack_many(2))                                      \
    X(at_ack_many, "ids NULL", AT_ERR_INVAL, SAME, h_ack_many(3))                                              \
    X(at_ack_many, "tokens NULL", AT_ERR_INVAL, SAME, h_ack_many(4))                                           \
    X(at_ack_many, "second id malformed: the first is not acked", AT_ERR_INVAL, SAME, h_ack_many(5))           \
    X(at_ack_many, "second id NULL: the first is not acked", AT_ERR_INVAL, SAME, h_ack_many(6))                \
    X(at_ack_many, "wrong-type store", AT_ERR_MISUSE, SAME, h_ack_many(7))                                     \
    X(at_fail, "flags 2", AT_ERR_INVAL, SAME, h_fail(K.running, K.token, 2))                                   \
    X(at_fail, "flags all ones", AT_ERR_INVAL, SAME, h_fail(K.running, K.token, UINT32_MAX))                   \
    X(at_fail, "25-character id", AT_ERR_INVAL, SAME, h_fail(ID_25, K.token, 0))                               \
    X(at_fail, "stale token", AT_ERR_STALE, SAME, h_fail(K.running, K.token + 1, AT_FAIL_PERMANENT))           \
    X(at_fail, "wrong-type store", AT_ERR_MISUSE, SAME, at_fail(NULL, F.notstore, K.running, K.token, "e", 0)) \
    X(at_touch, "negative extension", AT_ERR_RANGE, SAME, h_touch(K.running, K.token, -1))                    \
    X(at_touch, "extension INT64_MAX", AT_ERR_RANGE, SAME, h_touch(K.running, K.token, INT64_MAX))             \
    X(at_touch, "extension one day + 1 ms", AT_ERR_RANGE, SAME, h_touch(K.running, K.token, 86400001))         \
    X(at_touch, "27-character id", AT_ERR_INVAL, SAME, h_touch(ID_27, K.token, 0))                             \
    X(at_touch, "stale token", AT_ERR_STALE, SAME, h_touch(K.running, 0, 0))                                   \
    X(at_touch, "wrong-type store", AT_ERR_MISUSE, SAME, at_touch(F.notstore, K.running, K.token, 0))          \
    X(at_cancel, "wrong-type store", AT_ERR_MISUSE, SAME, h_cancel(F.notstore, K.ready))                       \
    X(at_cancel, "id overflowing 128 bits", AT_ERR_INVAL, SAME, h_cancel(F.s, ID_OVERFLOW))                    \
    X(at_cancel, "a SUCCEEDED job", AT_ERR_TERMINAL, SAME, h_cancel(F.s, K.done))                              \
    X(at_cancel, "a DEAD job", AT_ERR_TERMINAL, SAME, h_cancel(F.s, K.dead))                                   \
    X(at_cancel, "a CANCELLED job", AT_ERR_TERMINAL, SAME, h_cancel(F.s, K.cancelled))                         \
    X(at_get, "out NULL", AT_ERR_INVAL, SAME, h_get(NULL, F.s, K.ready))                                       \
    X(at_get, "wrong-type store", AT_ERR_MISUSE, SAME, h_get(&g_job_slot, F.notstore, K.ready))       \
    X(at_get, "27-character id", AT_ERR_INVAL, SAME, h_get(&g_job_slot, F.s, ID_27))                  \
    X(at_get, "non-ASCII id", AT_ERR_INVAL, SAME, h_get(&g_job_slot, F.s, "0000000000000000000000000\xc3")) \
    X(at_list, "jobs_out NULL", AT_ERR_INVAL, SAME, h_list(0))                                                 \
    X(at_list, "n_out NULL", AT_ERR_INVAL, SAME, h_list(1))                                                    \
    X(at_list, "cursor_out NULL", AT_ERR_INVAL, SAME, h_list(2))                                               \
    X(at_list, "limit 0", AT_ERR_INVAL, SAME, h_list(3))                                                       \
    X(at_list, "limit 10001", AT_ERR_INVAL, SAME, h_list(4))                                                   \
    X(at_list, "state 8", AT_ERR_INVAL, SAME, h_list(5))                                                       \
    X(at_list, "state -1", AT_ERR_INVAL, SAME, h_list(6))                                                      \
    X(at_list, "queue with a space", AT_ERR_NAME, SAME, h_list(7))                                             \
    X(at_list, "empty queue name", AT_ERR_NAME, SAME, h_list(8))                                               \
    X(at_list, "cursor longer than a cursor", AT_ERR_INVAL, SAME, h_list(9))                                   \
    X(at_list, "cursor of garbage bytes", AT_ERR_INVAL, SAME, h_list(10))                                      \
    X(at_list, "cursor not made by the store", AT_ERR_INVAL, SAME, h_list(11))                                 \
    X(at_list, "wrong-type store", AT_ERR_MISUSE, SAME, h_list(12))                                            \
    X(at_requeue, "a READY job", AT_ERR_STATE, SAME, h_requeue(F.s, NULL, K.ready))                            \
    X(at_requeue, "a RUNNING job", AT_ERR_STATE, SAME, h_requeue(F.s, NULL, K.running))                        \
    X(at_requeue, "queue of 129 bytes", AT_ERR_NAME, SAME, h_requeue(F.s, g_name129, NULL))                    \
    X(at_requeue, "empty queue name", AT_ERR_NAME, SAME, h_requeue(F.s, "", NULL))                             \
    X(at_requeue, "unknown id", AT_ERR_NOTFOUND, SAME, h_requeue(F.s, NULL, UNKNOWN_ID))                       \
    X(at_requeue, "25-character id", AT_ERR_INVAL, SAME, h_requeue(F.s, NULL, ID_25))                          \
    X(at_requeue, "wrong-type store", AT_ERR_MISUSE, SAME, h_requeue(F.notstore, NULL, NULL))                  \
    X(at_requeue, "NULL store", AT_ERR_INVAL, SAME, h_requeue(NULL, NULL, NULL))                               \
    X(at_purge, "older_than -2", AT_ERR_RANGE, SAME, h_purge(F.s, -2))                                         \
    X(at_purge, "older_than INT64_MIN", AT_ERR_RANGE, SAME, h_purge(F.s, INT64_MIN))                           \
    X(at_purge, "NULL store", AT_ERR_INVAL, SAME, h_purge(NULL, 0))                                            \
    X(at_purge, "wrong-type store", AT_ERR_MISUSE, SAME, h_purge(F.notstore, 0))                               \
    X(at_release, "negative delay", AT_ERR_RANGE, SAME, h_release(K.running, K.token, -1))                    \
    X(at_release, "delay over a year", AT_ERR_RANGE, SAME, h_release(K.running, K.token, INT64_MAX))           \
    X(at_release, "malformed id", AT_ERR_INVAL, SAME, h_release(ID_BADCHAR, K.token, 0))                       \
    X(at_release, "NULL id", AT_ERR_INVAL, SAME, h_release(NULL, K.token, 0))                                  \
    X(at_release, "stale token", AT_ERR_STALE, SAME, h_release(K.running, K.token + 1, 0))                    \
    X(at_release, "unknown id", AT_ERR_NOTFOUND, SAME, h_release(UNKNOWN_ID, 1, 0))                            \
    X(at_release, "wrong-type store", AT_ERR_MISUSE, SAME, at_release(F.notstore, K.running, K.token, 0))      \
    /* queues */                                                                                               \
    X(at_queue_pause, "NULL queue", AT_ERR_NAME, SAME, at_queue_pause(F.s, NULL))                              \
    X(at_queue_pause, "queue of 129 bytes", AT_ERR_NAME, SAME, at_queue_pause(F.s, g_name129))                 \
    X(at_queue_pause, "NULL store", AT_ERR_INVAL, SAME, at_queue_pause(NULL, "bi.a"))                          \
    X(at_queue_pause, "wrong-type store", AT_ERR_MISUSE, SAME, at_queue_pause(F.notstore, "bi.a"))             \
    X(at_queue_resume, "empty queue name", AT_ERR_NAME, SAME, at_queue_resume(F.s, ""))                        \
    X(at_queue_resume, "queue with a newline (bi.p stays paused)", AT_ERR_NAME, SAME, at_queue_resume(F.s, "bi.p\n")) \
    X(at_queue_resume, "NULL store", AT_ERR_INVAL, SAME, at_queue_resume(NULL, "bi.p"))                        \
    X(at_queue_is_paused, "paused_out NULL", AT_ERR_INVAL, SAME, h_is_paused(NULL, F.s, "bi.p"))               \
    X(at_queue_is_paused, "NULL queue", AT_ERR_NAME, SAME, h_is_paused(&g_i32_slot, F.s, NULL))                   \
    X(at_queue_is_paused, "wrong-type store", AT_ERR_MISUSE, SAME, h_is_paused(&g_i32_slot, F.notstore, "bi.p"))  \
    /* stats */                                                                                                \
    X(at_stats_get, "out NULL", AT_ERR_INVAL, SAME, h_stats_get(NULL, F.s))                                    \
    X(at_stats_get, "NULL store", AT_ERR_INVAL, SAME, h_stats_get(&g_stats_slot, NULL))                 \
    X(at_stats_get, "wrong-type store", AT_ERR_MISUSE, SAME, h_stats_get(&g_stats_slot, F.notstore))    \
    X(at_stats_free, "NULL and wrong-type are ignored", BI_DOC, SAME,                                          \
      (at_stats_free(NULL), at_stats_free((at_stats *)(void *)F.opts), IS(at_opts_set_int(F.opts, 2, 1) == 0))) \
    X(at_stats_queue_count, "NULL and wrong-type: 0", BI_DOC, SAME, h_stats_reader(3))                         \
    X(at_stats_queue_name, "index out of range, NULL: NULL", BI_DOC, SAME, h_stats_reader(0))                  \
    X(at_stats_count, "state 8, -1, index out of range: 0", BI_DOC, SAME, h_stats_reader(1))                   \
    X(at_stats_next_due, "index out of range: AT_TIME_NONE", BI_DOC, SAME, h_stats_reader(2))                  \
    X(at_stats_add_queue, "NULL stats", AT_ERR_INVAL, SAME, h_stats_add_queue(0))                              \
    X(at_stats_add_queue, "NULL queue", AT_ERR_INVAL, SAME, h_stats_add_queue(1))                              \
    X(at_stats_add_queue, "NULL counts", AT_ERR_INVAL, SAME, h_stats_add_queue(2))                             \
    X(at_metrics_prometheus, "NULL buf with a length", AT_ERR_INVAL, SAME, h_metrics(0))                       \
    X(at_metrics_prometheus, "NULL store", AT_ERR_INVAL, SAME, h_metrics(1))                                   \
    X(at_metrics_prometheus, "wrong-type store", AT_ERR_MISUSE, SAME, h_metrics(2))                            \
    X(at_metrics_prometheus, "NULL/0 asks the length; a short buf is cut", BI_DOC, SAME, h_metrics(3))         \
    /* cron */                                                                                                 \
    X(at_cron_next, "next_out NULL", AT_ERR_INVAL, SAME, at_cron_next(NULL, "* * * * *", NULL, 0))             \
    X(at_cron_next, "NULL expression", AT_ERR_INVAL, SAME, h_cron_next(NULL, NULL, 0))                         \
    X(at_cron_next, "four fields", AT_ERR_INVAL, SAME, h_cron_next("* * * *", NULL, 0))                        \
    X(at_cron_next, "minute 60", AT_ERR_INVAL, SAME, h_cron_next("60 * * * *", NULL, 0))                       \
    X(at_cron_next, "zone with ..", AT_ERR_INVAL, SAME, h_cron_next("* * * * *", "../../etc/passwd", 0))       \
    X(at_cron_next, "absolute zone path", AT_ERR_INVAL, SAME, h_cron_next("* * * * *", "/etc/localtime", 0))   \
    X(at_cron_next, "unknown zone", AT_ERR_NOTFOUND, SAME, h_cron_next("* * * * *", "Nowhere/No_City", 0))     \
    X(at_cron_next, "never fires (Feb 30)", AT_ERR_RANGE, SAME, h_cron_next("0 0 30 2 *", NULL, 0))            \
    X(at_cron_next, "after INT64_MAX", AT_ERR_RANGE, SAME, h_cron_next("* * * * *", NULL, INT64_MAX))          \
    X(at_cron_next, "after INT64_MIN", AT_ERR_RANGE, SAME, h_cron_next("* * * * *", NULL, INT64_MIN))          \
    X(at_cron_next, "after year 10000", AT_ERR_RANGE, SAME, h_cron_next("* * * * *", NULL, INT64_C(253402300800000))) \
    X(at_cron_check, "NULL expression", AT_ERR_INVAL, SAME, h_cron_check(NULL, INT32_MIN))                     \
    X(at_cron_check, "empty expression", AT_ERR_INVAL, SAME, h_cron_check("", INT32_MIN))                      \
    X(at_cron_check, "hour 25 at byte 2", AT_ERR_INVAL, SAME, h_cron_check("* 25 * * *", 2))                   \
    X(at_cron_check, "seven fields", AT_ERR_INVAL, SAME, h_cron_check("* * * * * * *", INT32_MIN))             \
    X(at_cron_check, "step 0", AT_ERR_INVAL, SAME, h_cron_check("*/0 * * * *", INT32_MIN))                     \
    X(at_cron_check, "open range 1-", AT_ERR_INVAL, SAME, h_cron_check("1- * * * *", INT32_MIN))               \
    X(at_cron_check, "reversed range", AT_ERR_INVAL, SAME, h_cron_check("5-1 * * * *", INT32_MIN))             \
    X(at_cron_check, "@every 0s", AT_ERR_INVAL, SAME, h_cron_check("@every 0s", INT32_MIN))                    \
    X(at_cron_check, "@every with a negative duration", AT_ERR_INVAL, SAME, h_cron_check("@every -5s", INT32_MIN)) \
    X(at_cron_check, "unknown macro", AT_ERR_INVAL, SAME, h_cron_check("@fortnightly", INT32_MIN))             \
    X(at_cron_check, "month name JANUARY", AT_ERR_INVAL, SAME, h_cron_check("0 0 1 JANUARY *", INT32_MIN))     \
    X(at_cron_check, "300 bytes of digits", AT_ERR_INVAL, SAME, h_cron_check(g_expr300, INT32_MIN))            \
    X(at_cron_check, "number overflowing int", AT_ERR_INVAL, SAME, h_cron_check("99999999999999999999 * * * *", 0)) \
    /* workflow builders */                                                                                    \
    X(at_workflow_new, "out NULL", AT_ERR_INVAL, SAME, h_wf_new_null())                                        \
    X(at_workflow_free, "NULL and wrong-type are ignored", BI_DOC, SAME, h_wf_readers(2))                      \
    X(at_workflow_count, "NULL and wrong-type: 0", BI_DOC, SAME, h_wf_readers(0))                              \
    X(at_workflow_job_id, "before submit, unknown or NULL node: NULL", BI_DOC, SAME, h_wf_readers(1))          \
    X(at_workflow_add, "empty node", AT_ERR_NAME, SAME, h_wf_build(0))                                         \
    X(at_workflow_add, "node of 129 bytes", AT_ERR_NAME, SAME, h_wf_build(1))                                  \
    X(at_workflow_add, "type with a space", AT_ERR_NAME, SAME, h_wf_build(2))                                  \
    X(at_workflow_add, "NULL payload with a length", AT_ERR_INVAL, SAME, h_wf_build(3))                        \
    X(at_workflow_add, "node taken", AT_ERR_EXISTS, SAME, h_wf_build(4))                                       \
    X(at_workflow_add, "NULL builder", AT_ERR_INVAL, SAME, h_wf_build(5))                                      \
    X(at_workflow_add, "NULL node", AT_ERR_NAME, SAME, h_wf_build(6))                                          \
    X(at_workflow_add, "length SIZE_MAX (never read)", AT_ERR_TOOBIG, SAME, h_wf_build(21))                    \
    X(at_workflow_add_completion, "node taken", AT_ERR_EXISTS, SAME, h_wf_build(7))                            \
    X(at_workflow_add_completion, "type with a slash", AT_ERR_NAME, SAME, h_wf_build(8))                       \
    X(at_workflow_add_completion, "NULL builder", AT_ERR_INVAL, SAME, h_wf_build(9))                           \
    X(at_workflow_add_completion, "length SIZE_MAX (never read)", AT_ERR_TOOBIG, SAME, h_wf_build(22))         \
    X(at_workflow_depend, "node on itself", AT_ERR_INVAL, SAME, h_wf_build(10))                                \
    X(at_workflow_depend, "unknown parent", AT_ERR_NOTFOUND, SAME, h_wf_build(11))                             \
    X(at_workflow_depend, "NULL child", AT_ERR_NOTFOUND, SAME, h_wf_build(12))                                 \
    X(at_workflow_depend, "NULL builder", AT_ERR_INVAL, SAME, h_wf_build(13))                                  \
    X(at_workflow_depend_on_job, "25-character id", AT_ERR_INVAL, SAME, h_wf_build(14))                        \
    X(at_workflow_depend_on_job, "NULL id", AT_ERR_INVAL, SAME, h_wf_build(15))                                \
    X(at_workflow_depend_on_job, "unknown child", AT_ERR_NOTFOUND, SAME, h_wf_build(16))                       \
    X(at_workflow_set_policy, "policy 3", AT_ERR_INVAL, SAME, h_wf_build(17))                                  \
    X(at_workflow_set_policy, "policy -1", AT_ERR_INVAL, SAME, h_wf_build(18))                                 \
    X(at_workflow_set_policy, "unknown node", AT_ERR_NOTFOUND, SAME, h_wf_build(19))                           \
    X(at_workflow_set_policy, "NULL builder", AT_ERR_INVAL, SAME, h_wf_build(20))                              \
    /* workflows in the store */                                                                               \
    X(at_workflow_submit, "a cycle: nothing created", AT_ERR_CYCLE, SAME, h_wf_submit(0))                      \
    X(at_workflow_submit, "unknown existing-job parent", AT_ERR_NOTFOUND, SAME, h_wf_submit(1))                \
    X(at_workflow_submit, "third node over the payload limit", AT_ERR_TOOBIG, SAME, h_wf_submit(2))            \
    X(at_workflow_submit, "cap below base", AT_ERR_RANGE, SAME, h_wf_submit(3))                                \
    X(at_workflow_submit, "NULL builder", AT_ERR_INVAL, SAME, h_wf_submit(4))                                  \
    X(at_workflow_submit, "empty builder", AT_ERR_INVAL, SAME, h_wf_submit(5))                                 \
    X(at_workflow_submit, "wrong-type store", AT_ERR_MISUSE, SAME, h_wf_submit(6))                             \
    X(at_workflow_submit, "NULL store", AT_ERR_INVAL, SAME, h_wf_submit(7))                                    \
    X(at_workflow_spawn, "stale token", AT_ERR_STALE, SAME, h_wf_spawn(0))                                     \
    X(at_workflow_spawn, "unknown job", AT_ERR_NOTFOUND, SAME, h_wf_spawn(1))                                  \
    X(at_workflow_spawn, "27-character id", AT_ERR_INVAL, SAME, h_wf_spawn(2))                                 \
    X(at_workflow_spawn, "NULL builder", AT_ERR_INVAL, SAME, h_wf_spawn(3))                                    \
    X(at_workflow_spawn, "wrong-type store", AT_ERR_MISUSE, SAME, h_wf_spawn(4))                               \
    X(at_workflow_spawn, "a READY job holds no lease", AT_ERR_STALE, SAME, h_wf_spawn(5))                      \
    X(at_workflow_spawn, "a cycle", AT_ERR_CYCLE, SAME, h_wf_spawn(6))                                         \
    X(at_workflow_status, "unknown workflow", AT_ERR_NOTFOUND, SAME, h_wf_status(F.s, UNKNOWN_ID))             \
    X(at_workflow_status, "a plain job's id", AT_ERR_NOTFOUND, SAME, h_wf_status(F.s, K.ready))                \
    X(at_workflow_status, "NULL id", AT_ERR_INVAL, SAME, h_wf_status(F.s, NULL))                               \
    X(at_workflow_status, "malformed id", AT_ERR_INVAL, SAME, h_wf_status(F.s, ID_OVERFLOW))                   \
    X(at_workflow_status, "wrong-type store", AT_ERR_MISUSE, SAME, h_wf_status(F.notstore, K.wf))              \
    X(at_workflow_jobs, "jobs_out NULL", AT_ERR_INVAL, SAME, h_wf_jobs(0))                                     \
    X(at_workflow_jobs, "limit 0", AT_ERR_INVAL, SAME, h_wf_jobs(1))                                           \
    X(at_workflow_jobs, "limit 10001", AT_ERR_INVAL, SAME, h_wf_jobs(2))                                       \
    X(at_workflow_jobs, "malformed id", AT_ERR_INVAL, SAME, h_wf_jobs(3))                                      \
    X(at_workflow_jobs, "NULL id", AT_ERR_INVAL, SAME, h_wf_jobs(4))                                           \
    X(at_workflow_jobs, "cursor longer than a cursor", AT_ERR_INVAL, SAME, h_wf_jobs(5))                       \
    X(at_workflow_jobs, "wrong-type store", AT_ERR_MISUSE, SAME, h_wf_jobs(6))                                 \
    X(at_workflow_cancel, "unknown workflow", AT_ERR_NOTFOUND, SAME, h_wf_cancel(F.s, UNKNOWN_ID))             \
    X(at_workflow_cancel, "malformed id", AT_ERR_INVAL, SAME, h_wf_cancel(F.s, ID_25))                         \
    X(at_workflow_cancel, "NULL id", AT_ERR_INVAL, SAME, h_wf_cancel(F.s, NULL))                               \
    X(at_workflow_cancel, "wrong-type store", AT_ERR_MISUSE, SAME, h_wf_cancel(F.notstore, K.wf))              \
    /* schedule definitions */                                                                                 \
    X(at_schedule_new, "out NULL", AT_ERR_INVAL, SAME, h_sched_new_null())                                     \
    X(at_schedule_new, "NULL name", AT_ERR_NAME, SAME, h_sched_new(NULL, "* * * * *", NULL, "t"))              \
    X(at_schedule_new, "name with a space", AT_ERR_NAME, SAME, h_sched_new("a b", "* * * * *", NULL, "t"))     \
    X(at_schedule_new, "name of 129 bytes", AT_ERR_NAME, SAME, h_sched_new(g_name129, "* * * * *", NULL, "t")) \
    X(at_schedule_new, "type *", AT_ERR_NAME, SAME, h_sched_new("n", "* * * * *", NULL, "*"))                  \
    X(at_schedule_new, "NULL expression", AT_ERR_INVAL, SAME, h_sched_new("n", NULL, NULL, "t"))               \
    X(at_schedule_new, "expression of 300 bytes", AT_ERR_INVAL, SAME, h_sched_new("n", g_expr300, NULL, "t"))  \
    X(at_schedule_new, "bad expression", AT_ERR_INVAL, SAME, h_sched_new("n", "* * * *", NULL, "t"))           \
    X(at_schedule_new, "zone with ..", AT_ERR_INVAL, SAME, h_sched_new("n", "* * * * *", "../x", "t"))         \
    X(at_schedule_new, "unknown zone", AT_ERR_NOTFOUND, SAME, h_sched_new("n", "* * * * *", "Nowhere/No_City", "t")) \
    X(at_schedule_new, "never fires", AT_ERR_RANGE, SAME, h_sched_new("n", "0 0 31 4 *", NULL, "t"))           \
    X(at_schedule_set_payload, "NULL payload with a length", AT_ERR_INVAL, SAME, h_sched_set(0))               \
    X(at_schedule_set_payload, "NULL schedule", AT_ERR_INVAL, SAME, h_sched_set(1))                            \
    X(at_schedule_set_payload, "length SIZE_MAX (never read)", AT_ERR_TOOBIG, SAME, h_sched_set(13))           \
    X(at_schedule_set_opts, "opts with RUN_AT", AT_ERR_INVAL, SAME, h_sched_set(2))                            \
    X(at_schedule_set_opts, "opts with DELAY_MS", AT_ERR_INVAL, SAME, h_sched_set(3))                          \
    X(at_schedule_set_opts, "opts with a key", AT_ERR_INVAL, SAME, h_sched_set(4))                             \
    X(at_schedule_set_opts, "NULL schedule", AT_ERR_INVAL, SAME, h_sched_set(5))                               \
    X(at_schedule_set_misfire, "policy 3", AT_ERR_INVAL, SAME, h_sched_set(6))                                 \
    X(at_schedule_set_misfire, "policy -1", AT_ERR_INVAL, SAME, h_sched_set(7))                                \
    X(at_schedule_set_misfire, "grace -1", AT_ERR_RANGE, SAME, h_sched_set(8))                                 \
    X(at_schedule_set_misfire, "grace one day + 1 ms", AT_ERR_RANGE, SAME, h_sched_set(9))                     \
    X(at_schedule_set_misfire, "cap 0", AT_ERR_RANGE, SAME, h_sched_set(10))                                   \
    X(at_schedule_set_misfire, "cap 10001", AT_ERR_RANGE, SAME, h_sched_set(11))                               \
    X(at_schedule_set_misfire, "NULL schedule", AT_ERR_INVAL, SAME, h_sched_set(12))                           \
    X(at_schedule_name, "NULL and wrong-type: NULL (all string readers)", BI_DOC, SAME, h_sched_readers_null()) \
    X(at_schedule_expr, "NULL: NULL", BI_DOC, SAME, IS(at_schedule_expr(NULL) == NULL))                        \
    X(at_schedule_tz, "NULL: NULL", BI_DOC, SAME, IS(at_schedule_tz(NULL) == NULL))                            \
    X(at_schedule_type, "NULL: NULL", BI_DOC, SAME, IS(at_schedule_type(NULL) == NULL))                        \
    X(at_schedule_payload, "NULL: NULL and length 0", BI_DOC, SAME, h_sched_readers_null())                    \
    X(at_schedule_queue, "NULL: NULL", BI_DOC, SAME, IS(at_schedule_queue(NULL) == NULL))                      \
    X(at_schedule_misfire, "NULL", AT_ERR_INVAL, SAME, h_sched_reader(2))                                      \
    X(at_schedule_paused, "NULL and a definition: 0", BI_DOC, SAME, h_sched_reader(1))                         \
    X(at_schedule_time, "which 0 and 4, NULL, a definition: AT_TIME_NONE", BI_DOC, SAME, h_sched_reader(0))    \
    X(at_schedule_last_job_id, "a definition: NULL", BI_DOC, SAME, h_sched_reader(7))                          \
    X(at_schedule_next, "next_out NULL", AT_ERR_INVAL, SAME, h_sched_reader(3))                                \
    X(at_schedule_next, "NULL schedule", AT_ERR_INVAL, SAME, h_sched_reader(4))                                \
    X(at_schedule_next, "after INT64_MAX", AT_ERR_RANGE, SAME, h_sched_reader(5))                              \
    X(at_schedule_next, "after INT64_MIN", AT_ERR_RANGE, SAME, h_sched_reader(6))                              \
    X(at_schedule_free, "NULL and wrong-type are ignored", BI_DOC, SAME, h_sched_free())                       \
    X(at_schedule_list_free, "NULL list with a count is ignored", BI_DOC, SAME, h_sched_free())                \
    /* schedules in the store */                                                                               \
    X(at_schedule_add, "NULL store", AT_ERR_INVAL, SAME, h_sched_add(0))                                       \
    X(at_schedule_add, "NULL schedule", AT_ERR_INVAL, SAME, h_sched_add(1))                                    \
    X(at_schedule_add, "wrong-type store", AT_ERR_MISUSE, SAME, h_sched_add(2))                                \
    X(at_schedule_add, "wrong-type schedule", AT_ERR_INVAL, SAME, h_sched_add(3))                              \
    X(at_schedule_add, "template over the payload limit", AT_ERR_TOOBIG, SAME, h_sched_add(4))                 \
    X(at_schedule_add, "template cap below base", AT_ERR_RANGE, SAME, h_sched_add(5))                          \
    X(at_schedule_add, "template over a lowered limit", AT_ERR_TOOBIG, SAME, h_sched_add(6))                   \
    X(at_schedule_remove, "NULL name", AT_ERR_NAME, SAME, at_schedule_remove(F.s, NULL))                       \
    X(at_schedule_remove, "empty name", AT_ERR_NAME, SAME, at_schedule_remove(F.s, ""))                        \
    X(at_schedule_remove, "unknown name", AT_ERR_NOTFOUND, SAME, at_schedule_remove(F.s, "bi.nope"))           \
    X(at_schedule_remove, "wrong-type store", AT_ERR_MISUSE, SAME, at_schedule_remove(F.notstore, "bi.sched1")) \
    X(at_schedule_pause, "NULL name", AT_ERR_NAME, SAME, at_schedule_pause(F.s, NULL))                         \
    X(at_schedule_pause, "unknown name", AT_ERR_NOTFOUND, SAME, at_schedule_pause(F.s, "bi.nope"))             \
    X(at_schedule_pause, "name of 129 bytes", AT_ERR_NAME, SAME, at_schedule_pause(F.s, g_name129))            \
    X(at_schedule_resume, "NULL name", AT_ERR_NAME, SAME, at_schedule_resume(F.s, NULL))                       \
    X(at_schedule_resume, "unknown name", AT_ERR_NOTFOUND, SAME, at_schedule_resume(F.s, "bi.nope"))           \
    X(at_schedule_resume, "NULL store", AT_ERR_INVAL, SAME, at_schedule_resume(NULL, "bi.sched2"))             \
    X(at_schedule_get, "out NULL", AT_ERR_INVAL, SAME, h_sched_get(NULL, F.s, "bi.sched1"))                    \
    X(at_schedule_get, "NULL name", AT_ERR_NAME, SAME, h_sched_get(&g_sched_slot, F.s, NULL))           \
    X(at_schedule_get, "unknown name", AT_ERR_NOTFOUND, SAME, h_sched_get(&g_sched_slot, F.s, "bi.nope")) \
    X(at_schedule_get, "name with a quote", AT_ERR_NAME, SAME, h_sched_get(&g_sched_slot, F.s, "bi\"x")) \
    X(at_schedule_list, "list_out NULL", AT_ERR_INVAL, SAME, h_sched_list(0))                                  \
    X(at_schedule_list, "n_out NULL", AT_ERR_INVAL, SAME, h_sched_list(1))                                     \
    X(at_schedule_list, "NULL store", AT_ERR_INVAL, SAME, h_sched_list(2))                                     \
    X(at_schedule_list, "wrong-type store", AT_ERR_MISUSE, SAME, h_sched_list(3))                              \
    X(at_scheduler_start, "out NULL", AT_ERR_INVAL, SAME, h_scheduler(0))                                      \
    X(at_scheduler_start, "NULL store", AT_ERR_INVAL, SAME, h_scheduler(1))                                    \
    X(at_scheduler_start, "wrong-type store", AT_ERR_MISUSE, SAME, h_scheduler(2))                             \
    X(at_scheduler_stop, "NULL and wrong-type are ignored", BI_DOC, SAME, h_scheduler_null(0))                 \
    X(at_scheduler_is_leader, "NULL and wrong-type: 0", BI_DOC, SAME, h_scheduler_null(1))                     \
    X(at_scheduler_counters, "NULL: zeros, NULL outputs accepted", BI_DOC, SAME, h_scheduler_null(2))          \
    /* workers */                                                                                              \
    X(at_worker_new, "out NULL", AT_ERR_INVAL, SAME, h_worker_new(0))                                          \
    X(at_worker_new, "NULL store", AT_ERR_INVAL, SAME, h_worker_new(1))                                        \
    X(at_worker_new, "wrong-type store", AT_ERR_MISUSE, SAME, h_worker_new(2))                                 \
    X(at_worker_handle, "NULL handler", AT_ERR_INVAL, SAME, h_worker(0))                                       \
    X(at_worker_handle, "type with a space", AT_ERR_NAME, SAME, h_worker(1))                                   \
    X(at_worker_handle, "NULL type", AT_ERR_NAME, SAME, h_worker(2))                                           \
    X(at_worker_handle, "NULL worker", AT_ERR_INVAL, SAME, h_worker(3))                                        \
    X(at_worker_handle, "wrong-type worker", AT_ERR_INVAL, SAME, h_worker(40))                                 \
    X(at_worker_add_queue, "queue with a space", AT_ERR_NAME, SAME, h_worker(4))                               \
    X(at_worker_add_queue, "NULL queue", AT_ERR_NAME, SAME, h_worker(5))                                       \
    X(at_worker_add_queue, "weight 0", AT_ERR_RANGE, SAME, h_worker(6))                                        \
    X(at_worker_add_queue, "weight 1001", AT_ERR_RANGE, SAME, h_worker(7))                                     \
    X(at_worker_add_queue, "concurrency -1", AT_ERR_RANGE, SAME, h_worker(8))                                  \
    X(at_worker_add_queue, "concurrency 1000001", AT_ERR_RANGE, SAME, h_worker(9))                             \
    X(at_worker_add_queue, "queue added twice", AT_ERR_EXISTS, SAME, h_worker(10))                             \
    X(at_worker_add_queue, "a 65th queue", AT_ERR_RANGE, SAME, h_worker(11))                                   \
    X(at_worker_add_queue, "NULL worker", AT_ERR_INVAL, SAME, h_worker(12))                                    \
    X(at_worker_add_queue, "after the worker started", AT_ERR_MISUSE, SAME, h_worker(37))                      \
    X(at_worker_set_rate, "queue not added", AT_ERR_NOTFOUND, SAME, h_worker(13))                              \
    X(at_worker_set_rate, "NULL queue", AT_ERR_NOTFOUND, SAME, h_worker(14))                                   \
    X(at_worker_set_rate, "limit 0", AT_ERR_RANGE, SAME, h_worker(15))                                         \
    X(at_worker_set_rate, "limit 1000001", AT_ERR_RANGE, SAME, h_worker(16))                                   \
    X(at_worker_set_rate, "period 0", AT_ERR_RANGE, SAME, h_worker(17))                                        \
    X(at_worker_set_rate, "period INT64_MAX", AT_ERR_RANGE, SAME, h_worker(18))                                \
    X(at_worker_set_rate, "NULL worker", AT_ERR_INVAL, SAME, h_worker(19))                                     \
    X(at_worker_set_int, "option 99", AT_ERR_INVAL, SAME, h_worker(20))                                        \
    X(at_worker_set_int, "threads 0", AT_ERR_RANGE, SAME, h_worker(21))                                        \
    X(at_worker_set_int, "threads 1025", AT_ERR_RANGE, SAME, h_worker(22))                                     \
    X(at_worker_set_int, "timeout -1", AT_ERR_RANGE, SAME, h_worker(23))                                       \
    X(at_worker_set_int, "grace INT64_MIN", AT_ERR_RANGE, SAME, h_worker(24))                                  \
    X(at_worker_set_int, "weighted 2", AT_ERR_RANGE, SAME, h_worker(25))                                       \
    X(at_worker_set_int, "NULL worker", AT_ERR_INVAL, SAME, h_worker(26))                                      \
    X(at_worker_on_event, "NULL worker", AT_ERR_INVAL, SAME, h_worker(27))                                     \
    X(at_worker_start, "no queue", AT_ERR_INVAL, SAME, h_worker(28))                                           \
    X(at_worker_start, "a queue but no handler", AT_ERR_INVAL, SAME, h_worker(29))                             \
    X(at_worker_start, "NULL worker", AT_ERR_INVAL, SAME, h_worker(30))                                        \
    X(at_worker_start, "after at_worker_fd", AT_ERR_MISUSE, SAME, h_worker(38))                                \
    X(at_worker_stop, "NULL and wrong-type are ignored", BI_DOC, SAME, h_worker_void(0))                       \
    X(at_worker_wait, "NULL worker", AT_ERR_INVAL, SAME, h_worker(31))                                         \
    X(at_worker_wait, "never started, timeout -5: stopped already", 0, SAME, h_worker(39))                     \
    X(at_worker_free, "NULL and wrong-type are ignored", BI_DOC, SAME, h_worker_void(1))                       \
    X(at_worker_counters, "NULL: zeros, NULL outputs accepted", BI_DOC, SAME, h_worker_void(2))                \
    X(at_worker_fd, "NULL worker", AT_ERR_INVAL, SAME, h_worker(32))                                           \
    X(at_worker_fd, "no queue, no handler", AT_ERR_INVAL, SAME, h_worker(33))                                  \
    X(at_worker_run_ready, "NULL worker", AT_ERR_INVAL, SAME, h_worker(34))                                    \
    X(at_worker_run_ready, "max 0", AT_ERR_INVAL, SAME, h_worker(35))                                          \
    X(at_worker_run_ready, "before at_worker_fd", AT_ERR_MISUSE, SAME, h_worker(36))                           \
    /* handler contexts (dumps taken inside the handler) */                                                    \
    X(at_ctx_progress, "permille 1001", AT_ERR_INVAL, SAME, h_ctx(0))                                          \
    X(at_ctx_progress, "permille -1", AT_ERR_INVAL, SAME, h_ctx(1))                                            \
    X(at_ctx_progress, "NULL ctx", AT_ERR_INVAL, SAME, h_ctx(2))                                               \
    X(at_ctx_set_result, "NULL result with a length", AT_ERR_INVAL, SAME, h_ctx(3))                            \
    X(at_ctx_set_result, "NULL ctx", AT_ERR_INVAL, SAME, h_ctx(4))                                             \
    X(at_ctx_set_result, "length SIZE_MAX (never read)", AT_ERR_TOOBIG, SAME, h_ctx(6))                        \
    X(at_ctx_set_error, "NULL ctx", AT_ERR_INVAL, SAME, h_ctx(5))                                              \
    X(at_ctx_job, "NULL: NULL", BI_DOC, SAME, h_ctx(7))                                                        \
    X(at_ctx_store, "NULL: NULL", BI_DOC, SAME, h_ctx(8))                                                      \
    X(at_ctx_cancelled, "NULL: 1", BI_DOC, SAME, h_ctx(9))                                                     \
    X(at_ctx_deadline, "NULL: AT_TIME_NONE", BI_DOC, SAME, h_ctx(10))

struct row {
    const char *fn, *variant;
    int expect, expect_server_clock;
};

#define BI_ROW(fn, variant, expect, expect2, expr) {#fn, variant, expect, expect2},
static const struct row k_rows[] = {BI_ROWS(BI_ROW)};
#undef BI_ROW
#define NROWS (sizeof k_rows / sizeof k_rows[0])

static int run_row(size_t i)
{
    size_t k = 0;
#define BI_CALL(fn, variant, expect, expect2, expr)                                                           \
    if (i == k++)                                                                                              \
        return (expr);
    BI_ROWS(BI_CALL)
#undef BI_CALL
    return BI_BAD;
}

static const char *outcome_name(int v)
{
    static char buf[32];
    switch (v) {
    case BI_DOC:
        return "the documented value";
    case BI_BAD:
        return "an undocumented value";
    case BI_OUT_DIRTY:
        return "the code, but an output not reset";
    }
    if (v <= 0)
        return at_err_name(v);
    snprintf(buf, sizeof buf, "%d", v);
    return buf;
}

/* The lines of one dump missing from the other ("-" before only, "+"
 * after only), cut to fit a Check message. */
static const char *dump_diff(const char *a, const char *b)
{
    static char out[3000];
    size_t n = 0;
    out[0] = '\0';
    for (int pass = 0; pass < 2; pass++) {
        const char *x = pass ? b : a, *y = pass ? a : b;
        for (const char *l = x; *l;) {
            const char *e = strchr(l, '\n');
            size_t len = e ? (size_t)(e - l) : strlen(l);
            int found = 0;
            for (const char *m = y; *m && !found;) {
                const char *me = strchr(m, '\n');
                size_t mlen = me ? (size_t)(me - m) : strlen(m);
                found = mlen == len && memcmp(l, m, len) == 0;
                m = me ? me + 1 : m + mlen;
            }
            if (!found && n + len + 4 < sizeof out)
                n += (size_t)snprintf(out + n, sizeof out - n, "%c%.*s\n", pass ? '+' : '-', (int)len, l);
            l = e ? e + 1 : l + len;
        }
    }
    return out;
}

START_TEST(each_row_returns_its_documented_outcome_and_changes_nothing)
{
    const struct row *r = &k_rows[_i];
    char *before = bi_dump(F.s, k_extra_queues);
    ck_assert_ptr_nonnull(before);
    int got = run_row((size_t)_i);
    char *after = bi_dump(F.s, k_extra_queues);
    int want = !F.host_clock && r->expect_server_clock != SAME ? r->expect_server_clock : r->expect;
    ck_assert_msg(got == want, "%s (%s): got %s, expected %s; %s", r->fn, r->variant, outcome_name(got),
                  outcome_name(want), at_last_error());
    if (F.inner) {
        ck_assert_ptr_nonnull(F.in_before);
        ck_assert_ptr_nonnull(F.in_after);
        ck_assert_msg(strcmp(F.in_before, F.in_after) == 0, "%s (%s) changed the store:\n%s", r->fn, r->variant,
                      dump_diff(F.in_before, F.in_after));
    } else {
        ck_assert_msg(strcmp(before, after) == 0, "%s (%s) changed the store:\n%s", r->fn, r->variant,
                      dump_diff(before, after));
    }
    free(before);
    free(after);
}
END_TEST

/* ---------------------------------------------------- coverage of exports */

static char *read_exports(void)
{
    const char *src = getenv("SRCDIR");
    char path[4200];
    snprintf(path, sizeof path, "%s/tests/exports.txt", src && src[0] ? src : "..");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s (set SRCDIR to the source tree)", path);
    char *buf = calloc(1, 1 << 16);
    ck_assert_ptr_nonnull(buf);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    ck_assert_uint_gt(n, 0);
    return buf;
}

static int has_row(const char *fn)
{
    for (size_t i = 0; i < NROWS; i++)
        if (strcmp(k_rows[i].fn, fn) == 0)
            return 1;
    return 0;
}

START_TEST(every_exported_function_has_a_row)
{
    char *buf = read_exports();
    size_t names = 0;
    char missing[4096] = "";
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!line[0] || line[0] == '#')
            continue;
        names++;
        if (!has_row(line) && strlen(missing) + strlen(line) + 2 < sizeof missing) {
            strcat(missing, " ");
            strcat(missing, line);
        }
    }
    free(buf);
    ck_assert_uint_gt(names, 100);
    ck_assert_msg(missing[0] == '\0', "exported functions without a bad-input row:%s", missing);
}
END_TEST

START_TEST(every_row_names_an_exported_function)
{
    char *buf = read_exports();
    for (size_t i = 0; i < NROWS; i++) {
        const char *p = buf;
        size_t n = strlen(k_rows[i].fn);
        int found = 0;
        while ((p = strstr(p, k_rows[i].fn)) != NULL) {
            if ((p == buf || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0')) {
                found = 1;
                break;
            }
            p += n;
        }
        ck_assert_msg(found, "row %zu names %s, which tests/exports.txt does not list", i, k_rows[i].fn);
    }
    free(buf);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        g_base = argv[1];
    memset(g_name129, 'a', AT_NAME_MAX + 1);
    memset(g_key256, 'k', AT_KEY_MAX + 1);
    memset(g_expr300, '1', 300);
    memset(g_cursor_long, 'c', AT_CURSOR_SIZE + 4);
    shared_uri(g_uri, sizeof g_uri);
    if (g_uri[0]) {
        g_outside = 1;
        open_store();
        seed();
        g_outside = 0;
    }
    Suite *s = suite_create("bad_input");
    TCase *t = tcase_create("table");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    /* BI_ONLY=N runs row N alone (for a debugger, with CK_FORK=no). */
    const char *only = getenv("BI_ONLY");
    int lo = only ? atoi(only) : 0, hi = only ? lo + 1 : (int)NROWS;
    tcase_add_loop_test(t, each_row_returns_its_documented_outcome_and_changes_nothing, lo, hi);
    suite_add_tcase(s, t);
    TCase *c = tcase_create("coverage");
    tcase_add_test(c, every_exported_function_has_a_row);
    tcase_add_test(c, every_row_names_an_exported_function);
    suite_add_tcase(s, c);
    SRunner *sr = srunner_create(s);
    if (g_uri[0])
        srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (g_uri[0])
        close_store();
    printf("bad_input: %zu rows against %s\n", NROWS, g_base);
    return failed ? 1 : 0;
}
