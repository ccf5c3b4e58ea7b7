/*
 * demo.c - the main demo: a small shop's order pipeline on one store.
 *
 *   ./examples/demo [STORE_URI]     (default: sqlite:asynctask-demo.db when the
 *                                    SQLite backend is built, else memory:)
 *
 * What it shows, in about ten seconds:
 *  - order jobs due now and later (delays up to 4 s), with high-priority
 *    refunds that are claimed first although they were enqueued last;
 *  - a flaky payment that fails twice and succeeds on its third attempt
 *    (retry with exponential backoff);
 *  - a broken invoice job that ends DEAD, is fixed by the "operator" and
 *    requeued, and then succeeds;
 *  - "cancel unpaid order" jobs due in 2, 3 and 4 s, one of which is cancelled
 *    because the payment arrived in time;
 *  - a duplicate payment refused by its idempotency key;
 *  - a cron schedule firing every 2 s (a seconds field of "*" "/2"), run by
 *    a scheduler in this process, each tick making one sales-report job;
 *  - a workflow fulfil_order: reserve_stock -> (charge_card, pack_box) -> ship,
 *    plus a completion node that notifies the customer;
 *  - a worker (4 threads, two queues, at most one report at a time) running
 *    one handler per job type, its events feeding a live status line.
 * It ends with a summary and exits 0 only if everything expected happened,
 * so it doubles as a smoke test.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <asynctask.h>

#define MAX_TRACKED 40
/* Long enough for five cron ticks, short enough to stay a quick demo. */
#define WANT_TICKS 5
#define MIN_TICKS 3
/* With the shutdown's bounded waits below, the demo ends within 30 s even
 * when something hangs. */
#define DEADLINE_MS 22000

static at_store *g_store;
static int64_t g_t0; /* monotonic ms at start */
static int g_tty;
static volatile sig_atomic_t g_interrupted;
/* Unique per run, so idempotency keys of an earlier run on a store the user
 * passed in cannot turn this run's first payment into a "duplicate". */
static char g_run[24];

/* Counters fed by the worker's events and the handlers. */
static atomic_int g_started, g_retried, g_dead;
static atomic_int g_ticks, g_wf_done, g_orders_confirmed;
static atomic_int g_template_fixed;
static atomic_llong g_dead_at; /* monotonic ms when the invoice went DEAD, 0 before */

/* The jobs whose final state the smoke test checks. */
struct tracked {
    char id[AT_ID_SIZE];
    char label[64];
    int32_t expect;
};
static struct tracked g_tr[MAX_TRACKED];
static int g_ntr;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double elapsed(void)
{
    return (mono_ms() - g_t0) / 1000.0;
}

static int64_t store_now(void)
{
    int64_t t = 0;
    at_store_now(&t, g_store);
    return t;
}

static void die(int rc, const char *what)
{
    char msg[256];
    at_store_errmsg(g_store, msg, sizeof msg, NULL);
    fprintf(stderr, "%sdemo: %s: %s%s%s\n", g_tty ? "\r\033[K" : "", what, at_strerror(rc),
            msg[0] ? ": " : "", msg);
    exit(1);
}

static void check(int rc, const char *what)
{
    if (rc)
        die(rc, what);
}

/* ----------------------------------------------------------------- output */

/* Log lines and the status line come from many threads; one lock keeps a
 * log line from being cut in half by a redraw. */
static pthread_mutex_t g_out = PTHREAD_MUTEX_INITIALIZER;
static char g_status[256]; /* last status line, redrawn under every log line on a tty */

static int term_cols(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        return ws.ws_col;
    return 80;
}

/* On a tty the status line must never wrap, or "\r" would redraw only its
 * last row and leave the others behind as garbage. */
static void draw_status_locked(void)
{
    if (g_tty && g_status[0]) {
        printf("\r\033[K%.*s", term_cols() - 1, g_status);
        fflush(stdout);
    }
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g_out);
    printf("%s[%5.2fs] %s\n", g_tty ? "\r\033[K" : "", elapsed(), line);
    draw_status_locked();
    fflush(stdout);
    pthread_mutex_unlock(&g_out);
}

/* Jobs per state over every queue of the store. */
static int state_counts(uint64_t c[AT_STATE_COUNT__])
{
    at_stats *st;
    memset(c, 0, AT_STATE_COUNT__ * sizeof *c);
    int rc = at_stats_get(&st, g_store);
    if (rc)
        return rc;
    for (size_t i = 0; i < at_stats_queue_count(st); i++)
        for (int s = 1; s < AT_STATE_COUNT__; s++)
            c[s] += at_stats_count(st, i, s);
    at_stats_free(st);
    return 0;
}

/* Fits 80 columns even in the busiest moment; WAITING (only workflow jobs
 * wait here) is shown only while some job waits, to make that room. */
static void status(void)
{
    uint64_t c[AT_STATE_COUNT__];
    if (state_counts(c) != 0)
        return; /* a busy moment on the store: the next refresh shows it */
    char line[sizeof g_status], wait[32] = "";
    if (c[AT_STATE_WAITING])
        snprintf(wait, sizeof wait, " wait %llu", (unsigned long long)c[AT_STATE_WAITING]);
    snprintf(
        line, sizeof line,
        "%4.1fs%s sched %llu ready %llu run %llu ok %llu dead %llu cancel %llu  retry %d cron %d wf %d/5",
        elapsed(), wait, (unsigned long long)c[AT_STATE_SCHEDULED], (unsigned long long)c[AT_STATE_READY],
        (unsigned long long)c[AT_STATE_RUNNING], (unsigned long long)c[AT_STATE_SUCCEEDED],
        (unsigned long long)c[AT_STATE_DEAD], (unsigned long long)c[AT_STATE_CANCELLED],
        atomic_load(&g_retried), atomic_load(&g_ticks), atomic_load(&g_wf_done));
    pthread_mutex_lock(&g_out);
    memcpy(g_status, line, sizeof g_status);
    if (g_tty)
        draw_status_locked();
    else
        printf("%s\n", line);
    fflush(stdout);
    pthread_mutex_unlock(&g_out);
}

/* The random tail of a job id: enough to tell jobs apart on screen (the
 * head of an id is its creation time, the same for jobs made together). */
static const char *short_id(const char *id)
{
    size_t n = strlen(id);
    return n > 6 ? id + n - 6 : id;
}

/* -------------------------------------------------------------- enqueueing */

struct job_spec {
    const char *queue, *type, *payload, *key;
    int64_t delay_ms;
    int priority, max_attempts;
    int64_t backoff_ms; /* base of the exponential backoff, 0: the store's */
};

static int enqueue(char *id_out, const struct job_spec *js)
{
    at_opts *o;
    check(at_opts_new(&o), "at_opts_new");
    check(at_opts_set_str(o, AT_OPT_QUEUE, js->queue), "queue option");
    check(at_opts_set_int(o, AT_OPT_DELAY_MS, js->delay_ms), "delay option");
    check(at_opts_set_int(o, AT_OPT_PRIORITY, js->priority), "priority option");
    if (js->max_attempts)
        check(at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, js->max_attempts), "attempts option");
    if (js->backoff_ms) {
        check(at_opts_set_int(o, AT_OPT_BACKOFF_BASE_MS, js->backoff_ms), "backoff option");
        check(at_opts_set_int(o, AT_OPT_BACKOFF_CAP_MS, 8 * js->backoff_ms), "backoff cap option");
    }
    /* Without jitter the retry delays printed are exactly base, 2*base, ... */
    check(at_opts_set_int(o, AT_OPT_BACKOFF_JITTER, 0), "jitter option");
    if (js->key)
        check(at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, js->key), "key option");
    int rc = at_enqueue(id_out, g_store, js->type, js->payload, strlen(js->payload), o);
    at_opts_free(o);
    return rc;
}

static void track(const char *id, int32_t expect, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void track(const char *id, int32_t expect, const char *fmt, ...)
{
    if (g_ntr == MAX_TRACKED) {
        fprintf(stderr, "demo: too many tracked jobs\n");
        exit(1);
    }
    struct tracked *t = &g_tr[g_ntr++];
    snprintf(t->id, sizeof t->id, "%s", id);
    t->expect = expect;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->label, sizeof t->label, fmt, ap);
    va_end(ap);
}

static void enqueue_tracked(char *id_out, const struct job_spec *js)
{
    char id[AT_ID_SIZE];
    check(enqueue(id, js), "at_enqueue");
    track(id, AT_STATE_SUCCEEDED, "%s %s", js->type, js->payload);
    if (id_out)
        memcpy(id_out, id, sizeof id);
}

/* --------------------------------------------------------------- handlers */

/* Sleep `ms` in slices, reporting progress `notes` evenly when given, and
 * stop early when the worker asks.  Giving the job back is right for every
 * reason it asks: on shutdown the job runs again later without losing an
 * attempt, and a cancelled or timed-out job was already settled by the
 * worker, which then ignores the answer. */
static int work(at_ctx *ctx, int ms, const char *const *notes, int nnotes)
{
    int slices = nnotes > 0 ? nnotes : 1;
    for (int i = 0; i < slices; i++) {
        if (nnotes > 0)
            at_ctx_progress(ctx, (int32_t)(1000 * i / slices), notes[i]);
        usleep((useconds_t)(ms / slices) * 1000u);
        if (at_ctx_cancelled(ctx))
            return AT_HANDLER_RELEASE;
    }
    return AT_HANDLER_OK;
}

/* 0..n-1, for handlers' varying run times; rand() is not thread-safe. */
static int jitter(int n)
{
    static _Thread_local unsigned seed;
    if (!seed)
        seed = (unsigned)mono_ms() ^ (unsigned)(uintptr_t)&seed;
    return rand_r(&seed) % n;
}

struct simple {
    int ms;
    const char *const *notes;
    int nnotes;
    const char *result;
};

/* Plain work with a fixed duration: confirms, refunds, workflow steps. */
static int32_t h_simple(at_ctx *ctx, void *ud)
{
    const struct simple *s = ud;
    int32_t answer = work(ctx, s->ms + jitter(40), s->notes, s->nnotes);
    if (answer == AT_HANDLER_OK && s->result)
        at_ctx_set_result(ctx, s->result, strlen(s->result));
    return answer;
}

static int32_t h_confirm(at_ctx *ctx, void *ud)
{
    (void)ud;
    int32_t answer = work(ctx, 60 + jitter(120), NULL, 0);
    if (answer == AT_HANDLER_OK)
        atomic_fetch_add(&g_orders_confirmed, 1);
    return answer;
}

/* The payment gateway times out on the first two attempts. */
static int32_t h_capture(at_ctx *ctx, void *ud)
{
    (void)ud;
    int32_t answer = work(ctx, 80, NULL, 0);
    if (answer != AT_HANDLER_OK)
        return answer;
    if (at_job_attempts(at_ctx_job(ctx)) < 3) {
        at_ctx_set_error(ctx, "payment gateway timeout");
        return AT_HANDLER_RETRY;
    }
    at_ctx_set_result(ctx, "captured", 8);
    return AT_HANDLER_OK;
}

/* Fails until the operator "deploys the missing template". */
static int32_t h_invoice(at_ctx *ctx, void *ud)
{
    (void)ud;
    int32_t answer = work(ctx, 50, NULL, 0);
    if (answer != AT_HANDLER_OK)
        return answer;
    if (!atomic_load(&g_template_fixed)) {
        at_ctx_set_error(ctx, "template invoice.html not found");
        return AT_HANDLER_RETRY;
    }
    return AT_HANDLER_OK;
}

static int32_t h_cancel_unpaid(at_ctx *ctx, void *ud)
{
    (void)ud;
    const at_job *j = at_ctx_job(ctx);
    size_t len;
    const char *p = at_job_payload(j, &len);
    int64_t due = at_job_time(j, AT_JOB_TIME_RUN_AT), created = at_job_time(j, AT_JOB_TIME_CREATED);
    say("order.cancel_unpaid %.*s: unpaid %.1f s after ordering, so cancelled (ran %lld ms after due)",
        (int)len, p, (due - created) / 1000.0, (long long)(store_now() - due));
    return work(ctx, 40, NULL, 0);
}

static int32_t h_report(at_ctx *ctx, void *ud)
{
    (void)ud;
    const at_job *j = at_ctx_job(ctx);
    int64_t tick = at_job_time(j, AT_JOB_TIME_RUN_AT);
    time_t secs = (time_t)(tick / 1000);
    struct tm tm;
    char when[16];
    localtime_r(&secs, &tm);
    strftime(when, sizeof when, "%H:%M:%S", &tm);
    say("cron tick %s -> report.sales job %s: %d orders confirmed so far (started %lld ms after the tick)",
        when, short_id(at_job_id(j)), atomic_load(&g_orders_confirmed), (long long)(store_now() - tick));
    return work(ctx, 150, NULL, 0);
}

/* The workflow's completion node: runs once every step has finished,
 * whatever the outcome, and reads the outcome from the store. */
static int32_t h_notify(at_ctx *ctx, void *ud)
{
    (void)ud;
    const at_job *j = at_ctx_job(ctx);
    uint64_t c[AT_STATE_COUNT__];
    int32_t done, failed;
    int rc = at_workflow_status(&done, &failed, c, at_ctx_store(ctx), at_job_workflow_id(j));
    if (rc) {
        at_ctx_set_error(ctx, at_strerror(rc));
        return AT_HANDLER_RETRY;
    }
    say("fulfil_order: notify_customer sees %llu steps succeeded, %llu failed: \"order shipped\" e-mail sent",
        (unsigned long long)c[AT_STATE_SUCCEEDED],
        (unsigned long long)(c[AT_STATE_DEAD] + c[AT_STATE_CANCELLED]));
    return work(ctx, 60, NULL, 0);
}

/* ----------------------------------------------------------------- events */

static void on_event(void *ud, int32_t ev, const at_job *job, const char *detail)
{
    (void)ud;
    const char *type = at_job_type(job);
    const char *node = at_job_node(job);
    size_t len;
    const char *p = at_job_payload(job, &len);
    switch (ev) {
    case AT_EVENT_STARTED: {
        int n = atomic_fetch_add(&g_started, 1) + 1;
        if (at_job_priority(job) > 0 && at_job_attempts(job) == 1)
            say("%s %.*s (priority %d, enqueued after the orders) started as job #%d", type, (int)len, p,
                (int)at_job_priority(job), n);
        if (node && strcmp(node, "notify_customer") != 0)
            say("fulfil_order: %s started", node);
        break;
    }
    case AT_EVENT_SUCCEEDED:
        if (node)
            say("fulfil_order: %s done (%d/5)", node, atomic_fetch_add(&g_wf_done, 1) + 1);
        else if (strcmp(type, "report.sales") == 0)
            atomic_fetch_add(&g_ticks, 1);
        else if (at_job_attempts(job) > 1)
            say("%s %.*s succeeded on attempt %u", type, (int)len, p, at_job_attempts(job));
        else if (strcmp(type, "invoice.render") == 0) /* a requeue starts the attempts afresh */
            say("%s %.*s succeeded after its requeue", type, (int)len, p);
        break;
    case AT_EVENT_RETRIED: {
        atomic_fetch_add(&g_retried, 1);
        /* The snapshot predates the failure: the store has the new due time. */
        at_job *now;
        long long in = -1;
        if (at_get(&now, g_store, at_job_id(job)) == 0) {
            in = (long long)(at_job_time(now, AT_JOB_TIME_RUN_AT) - store_now());
            at_job_free(now);
        }
        say("%s %.*s failed (attempt %u of %u: %s), retry in %lld ms", type, (int)len, p,
            at_job_attempts(job), at_job_max_attempts(job), detail ? detail : "?", in < 0 ? 0 : in);
        break;
    }
    case AT_EVENT_DEAD:
        atomic_fetch_add(&g_dead, 1);
        say("%s %.*s is DEAD after %u attempts (%s): parked in the dead-letter queue", type, (int)len, p,
            at_job_attempts(job), detail ? detail : "?");
        atomic_store(&g_dead_at, mono_ms());
        break;
    case AT_EVENT_CANCELLED:
        say("%s %.*s was cancelled while running", type, (int)len, p);
        break;
    case AT_EVENT_PROGRESS:
        if (node)
            say("fulfil_order: %s %s", node, detail ? detail : "");
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------- main */

/* Whether a report job is due or running. */
static bool reports_busy(void)
{
    at_stats *st;
    if (at_stats_get(&st, g_store) != 0)
        return true;
    bool busy = false;
    for (size_t i = 0; i < at_stats_queue_count(st); i++)
        if (strcmp(at_stats_queue_name(st, i), "reports") == 0)
            busy = at_stats_count(st, i, AT_STATE_READY) + at_stats_count(st, i, AT_STATE_RUNNING) > 0;
    at_stats_free(st);
    return busy;
}

/* Whether every tracked job reached a final state.  Judged by this run's
 * own jobs, not by the store's totals, so leftovers of another run on a
 * store the user passed in cannot keep the demo waiting. */
static bool tracked_finished(void)
{
    for (int i = 0; i < g_ntr; i++) {
        at_job *j;
        if (at_get(&j, g_store, g_tr[i].id) != 0)
            return false;
        int32_t s = at_job_state(j);
        at_job_free(j);
        if (s != AT_STATE_SUCCEEDED && s != AT_STATE_DEAD && s != AT_STATE_CANCELLED)
            return false;
    }
    return true;
}

static void on_sigint(int sig)
{
    g_interrupted = 1;
    /* A second Ctrl-C kills at once, should the shutdown hang. */
    signal(sig, SIG_DFL);
}

/* Each default run starts from an empty store, so the counts shown are this
 * run's and a file left by an earlier (even killed) run cannot get in the
 * way.  Only the demo's own default file is removed, never a URI the user
 * passed. */
static void remove_default_store(const char *uri)
{
    if (strncmp(uri, "sqlite:", 7) != 0)
        return;
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s%s", uri + 7, suffix[i]);
        unlink(path);
    }
}

static const char *const pack_notes[] = {"picking items", "packing", "printing label"};
static const struct simple s_refund = {120, NULL, 0, "refunded"};
static const struct simple s_reserve = {300, NULL, 0, "reserved"};
static const struct simple s_charge = {500, NULL, 0, "charged"};
static const struct simple s_pack = {750, pack_notes, 3, "packed"};
static const struct simple s_ship = {300, NULL, 0, "DHL 00340434161234567890"};

static void add_handlers(at_worker *w)
{
    struct {
        const char *type;
        at_handler_fn fn;
        const void *ud;
    } h[] = {
        {"order.confirm", h_confirm, NULL},
        {"refund.issue", h_simple, &s_refund},
        {"payment.capture", h_capture, NULL},
        {"invoice.render", h_invoice, NULL},
        {"order.cancel_unpaid", h_cancel_unpaid, NULL},
        {"report.sales", h_report, NULL},
        {"stock.reserve", h_simple, &s_reserve},
        {"payment.charge", h_simple, &s_charge},
        {"box.pack", h_simple, &s_pack},
        {"order.ship", h_simple, &s_ship},
        {"customer.notify", h_notify, NULL},
    };
    for (size_t i = 0; i < sizeof h / sizeof *h; i++)
        check(at_worker_handle(w, h[i].type, h[i].fn, (void *)h[i].ud), "at_worker_handle");
}

/* fulfil_order for one order: a diamond plus a completion node. */
static void submit_workflow(char *wf_id)
{
    at_workflow *wf;
    at_opts *o;
    check(at_workflow_new(&wf), "at_workflow_new");
    check(at_opts_new(&o), "at_opts_new");
    check(at_opts_set_str(o, AT_OPT_QUEUE, "orders"), "queue option");
    const char *p = "order-1020";
    /* The root waits a little so the workflow runs in the middle of the
     * order traffic rather than before it. */
    check(at_opts_set_int(o, AT_OPT_DELAY_MS, 800), "delay option");
    check(at_workflow_add(wf, "reserve_stock", "stock.reserve", p, strlen(p), o), "workflow add");
    at_opts_reset(o);
    check(at_opts_set_str(o, AT_OPT_QUEUE, "orders"), "queue option");
    check(at_workflow_add(wf, "charge_card", "payment.charge", p, strlen(p), o), "workflow add");
    check(at_workflow_add(wf, "pack_box", "box.pack", p, strlen(p), o), "workflow add");
    check(at_workflow_add(wf, "ship", "order.ship", p, strlen(p), o), "workflow add");
    check(at_workflow_depend(wf, "charge_card", "reserve_stock"), "workflow depend");
    check(at_workflow_depend(wf, "pack_box", "reserve_stock"), "workflow depend");
    check(at_workflow_depend(wf, "ship", "charge_card"), "workflow depend");
    check(at_workflow_depend(wf, "ship", "pack_box"), "workflow depend");
    check(at_workflow_add_completion(wf, "notify_customer", "customer.notify", p, strlen(p), o),
          "workflow completion");
    check(at_workflow_submit(wf_id, g_store, wf), "at_workflow_submit");
    at_opts_free(o);
    at_workflow_free(wf);
}

static at_scheduler *start_cron(void)
{
    at_schedule *s;
    at_opts *o;
    check(at_schedule_new(&s, "sales-report", "*/2 * * * * *", NULL, "report.sales"), "at_schedule_new");
    check(at_opts_new(&o), "at_opts_new");
    check(at_opts_set_str(o, AT_OPT_QUEUE, "reports"), "queue option");
    check(at_schedule_set_opts(s, o), "at_schedule_set_opts");
    at_opts_free(o);
    /* Ticks missed while no demo ran are not worth a report each. */
    check(at_schedule_set_misfire(s, AT_MISFIRE_SKIP, 1000, 1), "at_schedule_set_misfire");
    /* Declared at every start: a stored schedule of the same name is
     * replaced, keeping its history. */
    int32_t created;
    check(at_schedule_add(&created, g_store, s), "at_schedule_add");
    at_schedule_free(s);
    at_scheduler *sch;
    check(at_scheduler_start(&sch, g_store), "at_scheduler_start");
    return sch;
}

int main(int argc, char **argv)
{
#ifdef AT_DEMO_DEFAULT_URI
    const char *uri = argc > 1 ? argv[1] : AT_DEMO_DEFAULT_URI;
#else
    const char *uri = argc > 1 ? argv[1] : "memory:";
#endif
    g_tty = isatty(STDOUT_FILENO);
    g_t0 = mono_ms();
    signal(SIGINT, on_sigint);
    if (argc <= 1)
        remove_default_store(uri);
    int rc = at_store_open(&g_store, uri);
    if (rc) {
        fprintf(stderr, "demo: cannot open %s: %s (%s)\n", uri, at_strerror(rc), at_last_error());
        return 1;
    }
    snprintf(g_run, sizeof g_run, "%llx", (long long unsigned)store_now());
    printf("libasynctask %s demo on %s (Ctrl-C stops it)\n", at_version(), uri);

    /* Everything is enqueued before the worker starts, so the claim order
     * shows the priorities rather than who came first. */
    char pay_id[AT_ID_SIZE], dup_id[AT_ID_SIZE], invoice_id[AT_ID_SIZE], unpaid[3][AT_ID_SIZE];
    char payload[16][32];
    int np = 0, due_now = 0, later = 0;
    for (int i = 1; i <= 12; i++) {
        snprintf(payload[np], sizeof payload[np], "order-%d", 1000 + i);
        int64_t delay = i <= 6 ? 0 : (i - 6) * 600; /* the last ones up to 3.6 s out */
        struct job_spec js = {
            .queue = "orders", .type = "order.confirm", .payload = payload[np++], .delay_ms = delay};
        enqueue_tracked(NULL, &js);
        if (delay)
            later++;
        else
            due_now++;
    }
    struct job_spec refund1 = {
        .queue = "orders", .type = "refund.issue", .payload = "order-977", .priority = 10};
    struct job_spec refund2 = {
        .queue = "orders", .type = "refund.issue", .payload = "order-988", .priority = 10};
    enqueue_tracked(NULL, &refund1);
    enqueue_tracked(NULL, &refund2);
    char key[64];
    snprintf(key, sizeof key, "capture:order-1013@%s", g_run);
    struct job_spec pay = {.queue = "orders",
                           .type = "payment.capture",
                           .payload = "order-1013",
                           .key = key,
                           .priority = 5,
                           .max_attempts = 5,
                           .backoff_ms = 400};
    enqueue_tracked(pay_id, &pay);
    due_now += 3;
    /* The customer double-clicks "pay": the second request carries the same
     * key and gets the first job back instead of charging twice. */
    int dup_rc = enqueue(dup_id, &pay);
    if (dup_rc != 0 && dup_rc != AT_ERR_DUPLICATE)
        die(dup_rc, "at_enqueue (duplicate)");
    bool dup_ok = dup_rc == AT_ERR_DUPLICATE && strcmp(dup_id, pay_id) == 0;
    say("second payment.capture for order-1013 refused (%s): same job %s as the first", at_err_name(dup_rc),
        short_id(dup_id));
    struct job_spec inv = {.queue = "orders",
                           .type = "invoice.render",
                           .payload = "order-1007",
                           .delay_ms = 500,
                           .max_attempts = 2,
                           .backoff_ms = 400};
    enqueue_tracked(invoice_id, &inv);
    later++;
    for (int i = 0; i < 3; i++) {
        snprintf(payload[np], sizeof payload[np], "order-%d", 1014 + i);
        struct job_spec js = {.queue = "orders",
                              .type = "order.cancel_unpaid",
                              .payload = payload[np++],
                              .delay_ms = 2000 + 1000 * i};
        check(enqueue(unpaid[i], &js), "at_enqueue");
        track(unpaid[i], i == 1 ? AT_STATE_CANCELLED : AT_STATE_SUCCEEDED, "order.cancel_unpaid %s",
              js.payload);
        later++;
    }
    char wf_id[AT_ID_SIZE];
    submit_workflow(wf_id);
    say("enqueued %d jobs due now, %d delayed up to 4.0 s; workflow fulfil_order %s (5 jobs) submitted",
        due_now, later, short_id(wf_id));

    at_scheduler *sched = start_cron();
    say("schedule sales-report \"*/2 * * * * *\" stored; scheduler started");

    at_worker *w;
    check(at_worker_new(&w, g_store), "at_worker_new");
    check(at_worker_set_int(w, AT_WORKER_THREADS, 4), "worker threads");
    check(at_worker_set_int(w, AT_WORKER_GRACE_MS, 2000), "worker grace");
    check(at_worker_add_queue(w, "orders", 1, 0), "at_worker_add_queue orders");
    /* Reports are heavy: never more than one at a time, whatever the
     * number of threads. */
    check(at_worker_add_queue(w, "reports", 1, 1), "at_worker_add_queue reports");
    add_handlers(w);
    check(at_worker_on_event(w, on_event, NULL), "at_worker_on_event");
    check(at_worker_start(w), "at_worker_start");
    say("worker started: 4 threads on queues orders and reports (reports: 1 at a time)");

    bool cancelled = false, requeued = false, finished = false;
    int64_t last_plain = 0;
    while (!g_interrupted && mono_ms() - g_t0 < DEADLINE_MS) {
        usleep(100000);
        int64_t t = mono_ms() - g_t0;
        if (!cancelled && t >= 1500) {
            at_job *j;
            check(at_get(&j, g_store, unpaid[1]), "at_get");
            int64_t due_in = at_job_time(j, AT_JOB_TIME_RUN_AT) - store_now();
            at_job_free(j);
            check(at_cancel(NULL, g_store, unpaid[1]), "at_cancel");
            say("payment for order-1015 arrived: its cancel_unpaid job, due in %.1f s, is cancelled",
                due_in / 1000.0);
            cancelled = true;
        }
        int64_t dead_at = atomic_load(&g_dead_at);
        if (!requeued && dead_at && mono_ms() - dead_at >= 800) {
            uint64_t n = 0;
            atomic_store(&g_template_fixed, 1);
            check(at_requeue(&n, g_store, NULL, invoice_id), "at_requeue");
            say("operator deployed the missing template and requeued %llu dead job", (unsigned long long)n);
            requeued = true;
        }
        if (g_tty || t - last_plain >= 1000) {
            status();
            last_plain = t;
        }
        int32_t wf_done = 0;
        if (cancelled && requeued && atomic_load(&g_ticks) >= WANT_TICKS && tracked_finished() &&
            at_workflow_status(&wf_done, NULL, NULL, g_store, wf_id) == 0 && wf_done) {
            finished = true;
            break;
        }
    }

    /* Shut down with nothing running, so no job needs to be handed back:
     * first no more ticks, then let the last tick's report finish.  The
     * counters die with the scheduler, so they are read just before. */
    uint64_t fired = 0;
    at_scheduler_counters(sched, &fired, NULL, NULL, NULL);
    at_scheduler_stop(sched);
    for (int64_t until = mono_ms() + 3000; mono_ms() < until && reports_busy();)
        usleep(20000);
    at_worker_stop(w);
    if (at_worker_wait(w, 4000) != 0)
        fprintf(stderr, "demo: the worker did not stop in time\n");
    uint64_t w_started, w_ok, w_failed, w_released;
    at_worker_counters(w, &w_started, &w_ok, &w_failed, &w_released);
    at_worker_free(w);
    status();
    pthread_mutex_lock(&g_out);
    g_status[0] = '\0';
    pthread_mutex_unlock(&g_out);
    if (g_tty)
        printf("\n");

    /* ------------------------------------------------------------ summary */
    double secs = elapsed();
    printf("\nsummary after %.1f s on %s%s\n", secs, uri, g_interrupted ? " (interrupted)" : "");
    at_stats *st;
    check(at_stats_get(&st, g_store), "at_stats_get");
    for (size_t i = 0; i < at_stats_queue_count(st); i++) {
        printf("  queue %-8s", at_stats_queue_name(st, i));
        for (int s = 1; s < AT_STATE_COUNT__; s++)
            if (at_stats_count(st, i, s))
                printf("  %s %llu", at_state_name(s), (unsigned long long)at_stats_count(st, i, s));
        printf("\n");
    }
    at_stats_free(st);
    printf("  worker   %llu started, %llu succeeded, %llu failed (%d retried, %d dead), %llu released\n",
           (unsigned long long)w_started, (unsigned long long)w_ok, (unsigned long long)w_failed,
           atomic_load(&g_retried), atomic_load(&g_dead), (unsigned long long)w_released);
    printf("  other    dead-lettered %d, requeued %d, duplicates refused %d, delayed jobs cancelled %d\n",
           atomic_load(&g_dead), requeued ? 1 : 0, dup_ok ? 1 : 0, cancelled ? 1 : 0);

    int failures = 0;
    uint64_t wc[AT_STATE_COUNT__] = {0};
    int32_t wf_done = 0, wf_failed = 0;
    check(at_workflow_status(&wf_done, &wf_failed, wc, g_store, wf_id), "at_workflow_status");
    printf("  workflow fulfil_order %s: %s, %llu/5 jobs succeeded\n", short_id(wf_id),
           !wf_done    ? "unfinished"
           : wf_failed ? "failed"
                       : "done",
           (unsigned long long)wc[AT_STATE_SUCCEEDED]);
    int ticks = atomic_load(&g_ticks);
    printf("  cron     %llu ticks fired by the scheduler, %d reports run\n", (unsigned long long)fired,
           ticks);

    if (g_interrupted) {
        /* A half-run day says nothing about the library: no verdict. */
        printf("interrupted: checks skipped\n");
        at_store_close(g_store);
        return 130;
    }

    /* The smoke test: every expectation, checked against the store. */
    for (int i = 0; i < g_ntr; i++) {
        at_job *j;
        rc = at_get(&j, g_store, g_tr[i].id);
        int32_t state = rc == 0 ? at_job_state(j) : 0;
        if (state != g_tr[i].expect) {
            printf("  FAIL: %s is %s, expected %s\n", g_tr[i].label,
                   rc ? at_strerror(rc) : at_state_name(state), at_state_name(g_tr[i].expect));
            failures++;
        }
        if (rc == 0 && strcmp(g_tr[i].id, pay_id) == 0 && at_job_attempts(j) != 3) {
            printf("  FAIL: the flaky payment took %u attempts, expected 3\n", at_job_attempts(j));
            failures++;
        }
        if (rc == 0)
            at_job_free(j);
    }
    if (!dup_ok) {
        printf("  FAIL: the duplicate payment was not refused by its idempotency key\n");
        failures++;
    }
    if (!requeued || atomic_load(&g_dead) != 1) {
        printf("  FAIL: expected one dead job, requeued (dead %d, requeued %d)\n", atomic_load(&g_dead),
               requeued);
        failures++;
    }
    if (!wf_done || wf_failed || wc[AT_STATE_SUCCEEDED] != 5) {
        printf("  FAIL: the workflow did not succeed\n");
        failures++;
    }
    if (ticks < MIN_TICKS) {
        printf("  FAIL: %d cron ticks, expected at least %d\n", ticks, MIN_TICKS);
        failures++;
    }
    if (!finished) {
        printf("  FAIL: timed out before everything finished\n");
        failures++;
    }
    if (failures == 0)
        printf("all checks passed in %.1f s\n", secs);
    else
        printf("%d check%s failed\n", failures, failures == 1 ? "" : "s");
    at_store_close(g_store);
    return failures ? 1 : 0;
}
