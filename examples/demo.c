/*
 * demo.c - the main demo: an order pipeline on one store.
 *
 *   ./examples/demo [STORE_URI]     (default: sqlite:asynctask-demo.db when the
 *                                    SQLite backend is built, else memory:)
 *
 * Enqueues order jobs now and in the future (delays up to 4 s), high-priority
 * refunds, a flaky payment job that fails twice and then succeeds (retry
 * with exponential backoff), a broken job that ends in the dead-letter queue
 * and is requeued, an unpaid-order expiry that is cancelled before it is due,
 * and a duplicate enqueue stopped by its idempotency key.  Three worker
 * threads claim jobs with at_poll (which sleeps until the next job is due)
 * while a live line shows the counts per state.  Ends with a summary, in
 * about 6 seconds.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <asynctask.h>

#define NWORKERS 3

static at_store *g_store;
static atomic_int g_stop;
static atomic_int g_runs, g_retries, g_dead;
static int64_t g_t0;
static int g_tty;

static int64_t now_ms(void)
{
    int64_t t = 0;
    at_store_now(&t, g_store);
    return t;
}

static void check(int rc, const char *what)
{
    if (rc && rc != AT_ERR_DUPLICATE) {
        char msg[256];
        at_store_errmsg(g_store, msg, sizeof msg, NULL);
        fprintf(stderr, "demo: %s: %s%s%s\n", what, at_strerror(rc), msg[0] ? ": " : "", msg);
        exit(1);
    }
}

static void enqueue(char *id, const char *type, const char *payload, int64_t delay_ms, int priority,
                    const char *key, int max_attempts)
{
    at_opts *o;
    check(at_opts_new(&o), "opts");
    at_opts_set_str(o, AT_OPT_QUEUE, "orders");
    at_opts_set_int(o, AT_OPT_DELAY_MS, delay_ms);
    at_opts_set_int(o, AT_OPT_PRIORITY, priority);
    at_opts_set_int(o, AT_OPT_BACKOFF_BASE_MS, 300);
    at_opts_set_int(o, AT_OPT_BACKOFF_CAP_MS, 2000);
    at_opts_set_int(o, AT_OPT_BACKOFF_JITTER, 0);
    at_opts_set_int(o, AT_OPT_LEASE_MS, 5000);
    at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, max_attempts);
    if (key)
        at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, key);
    int rc = at_enqueue(id, g_store, type, payload, strlen(payload), o);
    at_opts_free(o);
    check(rc, "enqueue");
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&mu);
    printf("%s[%5.2fs] %s\n", g_tty ? "\r\033[K" : "", (now_ms() - g_t0) / 1000.0, line);
    fflush(stdout);
    pthread_mutex_unlock(&mu);
}

static void *worker(void *arg)
{
    int no = (int)(intptr_t)arg;
    const char *queues[] = {"orders"};
    while (!atomic_load(&g_stop)) {
        at_job *job;
        size_t n;
        check(at_poll(&job, &n, g_store, queues, 1, 1, 200), "poll");
        if (n == 0)
            continue;
        atomic_fetch_add(&g_runs, 1);
        const char *type = at_job_type(job);
        size_t len;
        const char *payload = at_job_payload(job, &len);
        int64_t late = now_ms() - at_job_time(job, AT_JOB_TIME_RUN_AT);
        usleep(20000 + (unsigned)(rand() % 30000)); /* the "work" */
        if (strcmp(type, "payment.capture") == 0 && at_job_attempts(job) < 3) {
            int32_t st;
            check(at_fail(&st, g_store, at_job_id(job), at_job_token(job), "gateway timeout", AT_FAIL_RETRY), "fail");
            atomic_fetch_add(&g_retries, 1);
            say("worker %d: %s %.*s failed (attempt %u), retry in %d ms", no, type, (int)len, payload,
                at_job_attempts(job), 300 << (at_job_attempts(job) - 1));
        } else if (strcmp(type, "invoice.render") == 0) {
            int32_t st;
            check(at_fail(&st, g_store, at_job_id(job), at_job_token(job), "template missing", AT_FAIL_RETRY), "fail");
            if (st == AT_STATE_DEAD) {
                atomic_fetch_add(&g_dead, 1);
                say("worker %d: %s %.*s is dead after %u attempts", no, type, (int)len, payload, at_job_attempts(job));
            }
        } else {
            check(at_ack(g_store, at_job_id(job), at_job_token(job), "ok", 2), "ack");
            if (strcmp(type, "order.ship") != 0 || late > 5)
                say("worker %d: %s %.*s done (attempt %u, %lld ms after due)", no, type, (int)len, payload,
                    at_job_attempts(job), (long long)late);
        }
        at_job_free(job);
    }
    return NULL;
}

static void progress(void)
{
    at_stats *st;
    if (at_stats_get(&st, g_store) != 0)
        return;
    uint64_t c[AT_STATE_COUNT__] = {0};
    for (size_t i = 0; i < at_stats_queue_count(st); i++)
        for (int s = 1; s < AT_STATE_COUNT__; s++)
            c[s] += at_stats_count(st, i, s);
    at_stats_free(st);
    char line[200];
    snprintf(line, sizeof line,
             "scheduled %-3llu ready %-3llu running %-2llu | succeeded %-3llu dead %-2llu cancelled %-2llu",
             (unsigned long long)c[AT_STATE_SCHEDULED], (unsigned long long)c[AT_STATE_READY],
             (unsigned long long)c[AT_STATE_RUNNING], (unsigned long long)c[AT_STATE_SUCCEEDED],
             (unsigned long long)c[AT_STATE_DEAD], (unsigned long long)c[AT_STATE_CANCELLED]);
    if (g_tty) {
        printf("\r\033[K[%5.2fs] %s", (now_ms() - g_t0) / 1000.0, line);
        fflush(stdout);
    } else {
        say("%s", line);
    }
}

int main(int argc, char **argv)
{
#ifdef AT_DEMO_DEFAULT_URI
    const char *uri = argc > 1 ? argv[1] : AT_DEMO_DEFAULT_URI;
#else
    const char *uri = argc > 1 ? argv[1] : "memory:";
#endif
    g_tty = isatty(STDOUT_FILENO);
    /* Each run starts from an empty demo store, so the counts shown are this
     * run's (only the demo's own default file is removed, never a URI the
     * user passed). */
    if (argc <= 1 && strncmp(uri, "sqlite:", 7) == 0) {
        char path[512];
        const char *suffix[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s%s", uri + 7, suffix[i]);
            unlink(path);
        }
    }
    srand((unsigned)time(NULL));
    int rc = at_store_open(&g_store, uri);
    if (rc) {
        fprintf(stderr, "demo: cannot open %s: %s (%s)\n", uri, at_strerror(rc), at_last_error());
        return 1;
    }
    g_t0 = now_ms();
    printf("libasynctask %s demo on %s\n", at_version(), uri);

    char id[AT_ID_SIZE], expiry[AT_ID_SIZE], dead_id[AT_ID_SIZE];
    for (int i = 1; i <= 30; i++) {
        char p[32];
        snprintf(p, sizeof p, "order-%d", i);
        enqueue(id, "order.ship", p, (i % 6) * 700, 0, NULL, 5);
    }
    enqueue(id, "refund.issue", "order-7", 1500, 10, NULL, 5);
    enqueue(id, "payment.capture", "order-31", 0, 5, "pay-order-31", 5);
    char again[AT_ID_SIZE];
    enqueue(again, "payment.capture", "order-31", 0, 5, "pay-order-31", 5);
    say("duplicate payment for order-31 stopped by its idempotency key: same job %s", again);
    enqueue(dead_id, "invoice.render", "order-12", 200, 0, NULL, 2);
    enqueue(expiry, "order.expire_unpaid", "order-32", 30 * 60 * 1000, 0, NULL, 1);
    say("enqueued 35 jobs; order-32 expires in 30 min unless paid");

    pthread_t th[NWORKERS];
    for (int i = 0; i < NWORKERS; i++)
        pthread_create(&th[i], NULL, worker, (void *)(intptr_t)(i + 1));

    int requeued = 0, cancelled = 0;
    for (int tick = 0; tick < 24; tick++) {
        usleep(250000);
        if (!cancelled && tick == 4) {
            int32_t pending;
            check(at_cancel(&pending, g_store, expiry), "cancel");
            say("order-32 was paid: its expiry job is cancelled");
            cancelled = 1;
        }
        if (!requeued && atomic_load(&g_dead) > 0) {
            uint64_t n;
            check(at_requeue(&n, g_store, "orders", dead_id), "requeue");
            say("operator fixed the template: requeued %llu dead job (it fails again and stays dead)",
                (unsigned long long)n);
            requeued = 1;
        }
        progress();
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(th[i], NULL);
    if (g_tty)
        printf("\n");
    at_stats *st;
    check(at_stats_get(&st, g_store), "stats");
    printf("\nsummary after %.1f s: %d runs, %d retries, %d dead-letterings\n", (now_ms() - g_t0) / 1000.0,
           atomic_load(&g_runs), atomic_load(&g_retries), atomic_load(&g_dead));
    for (size_t i = 0; i < at_stats_queue_count(st); i++) {
        printf("  queue %-8s", at_stats_queue_name(st, i));
        for (int s = 1; s < AT_STATE_COUNT__; s++)
            if (at_stats_count(st, i, s))
                printf("  %s %llu", at_state_name(s), (unsigned long long)at_stats_count(st, i, s));
        printf("\n");
    }
    at_stats_free(st);
    at_store_close(g_store);
    return 0;
}
