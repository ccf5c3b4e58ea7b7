/*
 * redis_restart.c - SIGKILL and restart redis-server under load: no
 * acknowledged enqueue or ack is lost with appendfsync always, at most about
 * a second of them with appendfsync everysec (chaos test).
 *
 *   redis_restart --fsync always|everysec [--seconds S] [--restarts K]
 *                 [--down MS] [--producers P] [--pace MS] [--timeout-ms T] [--slack MS]
 *                 [--seed X]
 *
 * The program starts its own redis-server (redis_proc.h: loopback, a free
 * port, a temporary directory, stopped by PID) with appendonly yes and the
 * given appendfsync.  P producer threads enqueue jobs whose payload is a
 * sequence number, alone (at_enqueue) or in batches of 2-16
 * (at_enqueue_batch); one worker thread polls and acks them (at_ack one by
 * one, or at_ack_many, in turn).  K times during the S seconds of load the
 * server is SIGKILLed, left down for MS ms, and started again on the same
 * port and directory, so it loads its AOF.  Everything goes through ONE
 * store handle opened before the first kill: the client must reconnect by
 * itself.  Then the producers stop, the worker drains the queue, and the
 * checker runs:
 *
 *   - history.h classifies every job by its enqueue's answer (0: ok;
 *     AT_ERR_CONN, AT_ERR_TIMEOUT, AT_ERR_IO: unknown; anything else:
 *     failed) and its deliveries (claims by the worker);
 *   - enqueues lost: the enqueue returned 0 but the job was never
 *     delivered, though the queue was drained (history.h's lost);
 *   - acks lost: at_ack / at_ack_many said 0 for a job that was claimed
 *     again later;
 *   - vanished: the store's count of SUCCEEDED jobs is below the number of
 *     jobs delivered (a delivered job and its ack undone); unfinished: jobs
 *     in any other state after the drain (the producers wait while 3000
 *     jobs are unacked, so the drain is short even at one fsync per ack);
 *   - every call is timed: none may take longer than T (the URI's
 *     timeout_ms) + slack (+ its own blocking time for at_poll), and every
 *     failure must be a clear outage code (AT_ERR_CONN, AT_ERR_TIMEOUT,
 *     AT_ERR_BUSY for LOADING);
 *   - after each restart an enqueue must succeed again within 10 s, through
 *     the same handle (the recovery time is printed).
 *
 * With always, enqueues lost, acks lost and vanished must be 0: Redis fsyncs the
 * AOF before it answers.  With everysec, Redis writes the AOF before it
 * answers but fsyncs it once a second, so up to about a second of writes may
 * be lost by a crash of the machine; the test asserts
 *
 *   enqueues lost + acks lost + vanished <= K * ceil(R * 1.5 s)
 *
 * where R is the measured rate of acknowledged writes (jobs enqueued with 0
 * plus jobs acked with 0, per second of load).  A SIGKILL of the process
 * alone leaves the written AOF in the page cache, so the figure printed is
 * normally 0 here; the bound is what the setting promises.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, MSG_NOSIGNAL; also set by AM_CPPFLAGS */
#endif

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "asynctask.h"
#include "history.h"
#include "redis_proc.h"

#define QUEUE "restart"
#define TYPE "chaos.restart"
#define LEASE_MS 1500
#define POLL_MS 100
#define MAX_PRODUCERS 16
/* Jobs acknowledged but not yet acked at which the producers wait. */
#define BACKLOG_MAX 3000
#define NCODES 64

static int64_t mono_ms(void)
{
    return rproc_mono_ms();
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

/* ------------------------------------------------------------ the record */

static at_store *g_st;
static size_t g_cap;         /* sequence numbers 0..g_cap-1 */
static atomic_size_t g_next; /* next sequence number to hand out */
static unsigned char *g_enq; /* enum hist_enq per seq */
static atomic_uint *g_claims;
static unsigned char *g_acked; /* ack returned 0 */
static unsigned char *g_ack_lost;
static atomic_bool g_stop_producers, g_stop_worker;
static atomic_llong g_last_enq_ok_ms; /* mono time of the last enqueue that returned 0 */
static atomic_ullong g_enq_ok, g_acks_ok;
static int64_t g_timeout_ms = 1000, g_slack_ms = 500, g_pace_ms = 3;

/* Call statistics, under g_mu. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_calls, g_errors[NCODES], g_unclear, g_slow;
static int64_t g_max_ms[4];
static char g_sample[NCODES][300]; /* the first message of each error code */
static const char *const CALL_NAMES[4] = {"enqueue", "enqueue_batch", "poll", "ack"};
enum { C_ENQ, C_BATCH, C_POLL, C_ACK };

/* The failures that an outage may cause: the connection is gone or
 * refused (CONN), no answer in time (TIMEOUT), the server is loading its
 * AOF (BUSY). */
static int outage_code(int rc)
{
    return rc == AT_ERR_CONN || rc == AT_ERR_TIMEOUT || rc == AT_ERR_BUSY;
}

/* Outcome of an enqueue for history.h: only 0 is an acknowledgement; a
 * cut connection or a timeout may have written the job or not. */
static enum hist_enq enq_outcome(int rc)
{
    if (rc == 0)
        return HIST_ENQ_OK;
    if (rc == AT_ERR_CONN || rc == AT_ERR_TIMEOUT || rc == AT_ERR_IO)
        return HIST_ENQ_UNKNOWN;
    return HIST_ENQ_FAILED;
}

static void note_call(int kind, int rc, int64_t ms, int64_t blocking_ms)
{
    char msg[256] = "";
    if (rc)
        at_store_errmsg(g_st, msg, sizeof msg, NULL);
    pthread_mutex_lock(&g_mu);
    g_calls++;
    if (ms > g_max_ms[kind])
        g_max_ms[kind] = ms;
    if (rc < 0 && -rc < NCODES && g_errors[-rc]++ == 0)
        snprintf(g_sample[-rc], sizeof g_sample[-rc], "%.20s: %.256s", CALL_NAMES[kind], msg);
    if (rc && !outage_code(rc)) {
        if (g_unclear++ < 5)
            fprintf(stderr, "%s returned %s, not an outage code: %s\n", CALL_NAMES[kind], at_err_name(rc), msg);
    }
    if (ms > blocking_ms + g_timeout_ms + g_slack_ms) {
        if (g_slow++ < 5)
            fprintf(stderr, "%s took %lld ms (limit %lld): %s %s\n", CALL_NAMES[kind], (long long)ms,
                    (long long)(blocking_ms + g_timeout_ms + g_slack_ms), rc ? at_err_name(rc) : "ok", msg);
    }
    pthread_mutex_unlock(&g_mu);
}

/* ------------------------------------------------------------- producers */

static void *producer(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, QUEUE);
    at_opts_set_int(o, AT_OPT_LEASE_MS, LEASE_MS);
    at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, 1000000);
    at_batch *b;
    at_batch_new(&b);
    while (!atomic_load(&g_stop_producers)) {
        /* The producers must not outrun the worker (one fsync per ack
         * under appendfsync always): a backlog would make the drain at
         * the end take longer than the run. */
        if (atomic_load(&g_enq_ok) > atomic_load(&g_acks_ok) + BACKLOG_MAX) {
            sleep_ms(2);
            continue;
        }
        size_t k = rng_next(&rng) % 3 == 0 ? 1 : 2 + (size_t)(rng_next(&rng) % 15);
        size_t first = atomic_fetch_add(&g_next, k);
        if (first + k > g_cap)
            break; /* the record is full: the load phase ends early */
        int rc;
        int64_t t0 = mono_ms();
        if (k == 1) {
            char p[24];
            int n = snprintf(p, sizeof p, "%zu", first);
            rc = at_enqueue(NULL, g_st, TYPE, p, (size_t)n, o);
            note_call(C_ENQ, rc, mono_ms() - t0, 0);
        } else {
            at_batch_clear(b);
            for (size_t s = first; s < first + k; s++) {
                char p[24];
                int n = snprintf(p, sizeof p, "%zu", s);
                at_batch_add(b, TYPE, p, (size_t)n, o);
            }
            t0 = mono_ms();
            rc = at_enqueue_batch(g_st, b);
            note_call(C_BATCH, rc, mono_ms() - t0, 0);
        }
        for (size_t s = first; s < first + k; s++)
            g_enq[s] = (unsigned char)enq_outcome(rc);
        if (rc == 0) {
            atomic_fetch_add(&g_enq_ok, k);
            atomic_store(&g_last_enq_ok_ms, mono_ms());
            sleep_ms(g_pace_ms);
        } else {
            sleep_ms(5); /* the server is away: do not spin on fast failures */
        }
    }
    at_batch_free(b);
    at_opts_free(o);
    return NULL;
}

/* ---------------------------------------------------------------- worker */

static long seq_of(const at_job *j)
{
    size_t len;
    const char *p = at_job_payload(j, &len);
    char buf[24];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    char *end;
    long s = strtol(buf, &end, 10);
    return *end == '\0' && s >= 0 ? s : -1;
}

static uint64_t g_stray_claims;

static void *worker(void *arg)
{
    (void)arg;
    const char *queues[] = {QUEUE};
    at_job *jobs[32];
    const char *ids[32];
    uint64_t tokens[32];
    long seqs[32];
    int32_t res[32];
    unsigned round = 0;
    while (!atomic_load(&g_stop_worker)) {
        size_t n = 0;
        int64_t t0 = mono_ms();
        int rc = at_poll(jobs, &n, g_st, queues, 1, 32, POLL_MS);
        note_call(C_POLL, rc, mono_ms() - t0, POLL_MS);
        if (rc) {
            sleep_ms(5);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            long s = seq_of(jobs[i]);
            seqs[i] = s;
            ids[i] = at_job_id(jobs[i]);
            tokens[i] = at_job_token(jobs[i]);
            if (s < 0 || (size_t)s >= g_cap) {
                g_stray_claims++;
                continue;
            }
            atomic_fetch_add(&g_claims[s], 1);
            /* An ack that returned 0 made the job SUCCEEDED for good: being
             * claimed again means the store forgot it. */
            if (g_acked[s])
                g_ack_lost[s] = 1;
        }
        if (n > 0 && (round++ & 1)) {
            t0 = mono_ms();
            rc = at_ack_many(res, g_st, n, ids, tokens);
            note_call(C_ACK, rc, mono_ms() - t0, 0);
            for (size_t i = 0; i < n; i++)
                if (rc == 0 && res[i] == 0 && seqs[i] >= 0 && (size_t)seqs[i] < g_cap) {
                    g_acked[seqs[i]] = 1;
                    atomic_fetch_add(&g_acks_ok, 1);
                }
        } else {
            for (size_t i = 0; i < n; i++) {
                t0 = mono_ms();
                rc = at_ack(g_st, ids[i], tokens[i], NULL, 0);
                /* STALE: the lease ran out during an outage and the job was
                 * claimed again: not an outage error, not an ack either. */
                note_call(C_ACK, rc == AT_ERR_STALE ? 0 : rc, mono_ms() - t0, 0);
                if (rc == 0 && seqs[i] >= 0 && (size_t)seqs[i] < g_cap) {
                    g_acked[seqs[i]] = 1;
                    atomic_fetch_add(&g_acks_ok, 1);
                }
            }
        }
        for (size_t i = 0; i < n; i++)
            at_job_free(jobs[i]);
    }
    return NULL;
}

/* Jobs of the queue in each state, or -1 on error. */
static int queue_counts(uint64_t counts[AT_STATE_COUNT__])
{
    at_stats *s;
    memset(counts, 0, AT_STATE_COUNT__ * sizeof *counts);
    if (at_stats_get(&s, g_st) != 0)
        return -1;
    for (size_t i = 0; i < at_stats_queue_count(s); i++)
        if (strcmp(at_stats_queue_name(s, i), QUEUE) == 0)
            for (int k = 1; k < AT_STATE_COUNT__; k++)
                counts[k] = at_stats_count(s, i, k);
    at_stats_free(s);
    return 0;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --fsync always|everysec [--seconds S] [--restarts K] [--down MS] [--producers P]\n"
            "          [--pace MS] [--timeout-ms T] [--slack MS] [--seed X]\n",
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

static struct rproc g_redis;

static void on_signal(int sig)
{
    /* Stop the server by its PID even when the test is interrupted. */
    if (g_redis.pid > 0)
        kill(g_redis.pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    const char *fsync = NULL;
    long seconds = 6, restarts = 3, down_ms = 300, nprod = 2;
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage(argv[0]);
        if (strcmp(argv[i], "--fsync") == 0)
            fsync = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = parse_long(argv[++i], 1, 86400, argv[0]);
        else if (strcmp(argv[i], "--restarts") == 0)
            restarts = parse_long(argv[++i], 1, 10000, argv[0]);
        else if (strcmp(argv[i], "--down") == 0)
            down_ms = parse_long(argv[++i], 0, 60000, argv[0]);
        else if (strcmp(argv[i], "--producers") == 0)
            nprod = parse_long(argv[++i], 1, MAX_PRODUCERS, argv[0]);
        else if (strcmp(argv[i], "--pace") == 0)
            g_pace_ms = parse_long(argv[++i], 0, 10000, argv[0]);
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            g_timeout_ms = parse_long(argv[++i], 50, 60000, argv[0]);
        else if (strcmp(argv[i], "--slack") == 0)
            g_slack_ms = parse_long(argv[++i], 0, 60000, argv[0]);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = (uint64_t)parse_long(argv[++i], 1, LONG_MAX, argv[0]);
        else
            usage(argv[0]);
    }
    if (!fsync || (strcmp(fsync, "always") != 0 && strcmp(fsync, "everysec") != 0))
        usage(argv[0]);
    int strict = strcmp(fsync, "always") == 0;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    int64_t t_start = mono_ms();
    const char *const args[] = {"--appendonly", "yes", "--appendfsync", fsync, NULL};
    if (rproc_start(&g_redis, args) != 0) {
        rproc_cleanup(&g_redis);
        return 1;
    }
    char uri[256];
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d?timeout_ms=%lld&prefix=rr", g_redis.port,
             (long long)g_timeout_ms);
    if (at_store_open(&g_st, uri) != 0) {
        fprintf(stderr, "open %s: %s\n", uri, at_last_error());
        rproc_cleanup(&g_redis);
        return 1;
    }
    /* Room for the whole run at well above the rate the producers reach
     * (at most 16 jobs per call, a pause of --pace ms after each). */
    g_cap = (size_t)nprod * 12000 * (size_t)seconds + 1000;
    g_enq = calloc(g_cap, 1);
    g_claims = calloc(g_cap, sizeof *g_claims);
    g_acked = calloc(g_cap, 1);
    g_ack_lost = calloc(g_cap, 1);
    if (!g_enq || !g_claims || !g_acked || !g_ack_lost ) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }

    pthread_t prod[MAX_PRODUCERS], wk;
    for (long i = 0; i < nprod; i++)
        pthread_create(&prod[i], NULL, producer, (void *)(uintptr_t)(seed + 977 * (uint64_t)i + 1));
    pthread_create(&wk, NULL, worker, NULL);

    /* The kills, evenly spaced over the load with a random jitter of up
     * to a fifth of the gap, so that they land at varied points of the
     * producers' and the worker's calls. */
    uint64_t rng = seed;
    int64_t t_load = mono_ms(), gap = seconds * 1000 / (restarts + 1);
    int64_t max_recovery = 0, sum_recovery = 0, max_ready = 0;
    long done_restarts = 0, no_recovery = 0;
    int server_failed = 0;
    for (long k = 0; k < restarts && !server_failed; k++) {
        int64_t at = t_load + gap * (k + 1) + (int64_t)(rng_next(&rng) % (uint64_t)(gap / 5 + 1)) - gap / 10;
        while (mono_ms() < at)
            sleep_ms(5);
        int64_t t_kill = mono_ms();
        rproc_stop(&g_redis, SIGKILL);
        sleep_ms(down_ms);
        if (rproc_restart(&g_redis) != 0) {
            server_failed = 1;
            break;
        }
        int64_t t_ready = mono_ms();
        if (t_ready - t_kill > max_ready)
            max_ready = t_ready - t_kill;
        done_restarts++;
        /* Recovery: the first enqueue acknowledged after the server is back,
         * through the same store handle. */
        while (atomic_load(&g_last_enq_ok_ms) <= t_ready && mono_ms() < t_ready + 10000)
            sleep_ms(2);
        int64_t rec = atomic_load(&g_last_enq_ok_ms) - t_ready;
        if (atomic_load(&g_last_enq_ok_ms) <= t_ready) {
            no_recovery++;
            fprintf(stderr, "restart %ld: no enqueue succeeded within 10 s of the server's return\n", k + 1);
        } else {
            sum_recovery += rec;
            if (rec > max_recovery)
                max_recovery = rec;
        }
    }
    while (!server_failed && mono_ms() < t_load + seconds * 1000)
        sleep_ms(10);
    atomic_store(&g_stop_producers, true);
    for (long i = 0; i < nprod; i++)
        pthread_join(prod[i], NULL);
    double load_s = (double)(mono_ms() - t_load) / 1000.0;
    uint64_t writes = atomic_load(&g_enq_ok) + atomic_load(&g_acks_ok);

    /* Drain: until no job of the queue is left unfinished (jobs claimed
     * by a call whose reply was lost come back when their lease ends). */
    /* Given up only when no ack succeeded for 3 leases + 10 s. */
    int64_t t_drain = mono_ms(), drain_deadline = t_drain + 3 * LEASE_MS + 10000;
    uint64_t acks_seen = atomic_load(&g_acks_ok);
    int drained = 0;
    while (!server_failed && mono_ms() < drain_deadline) {
        if (atomic_load(&g_acks_ok) != acks_seen) {
            acks_seen = atomic_load(&g_acks_ok);
            drain_deadline = mono_ms() + 3 * LEASE_MS + 10000;
        }
        uint64_t c[AT_STATE_COUNT__];
        if (queue_counts(c) == 0 && c[AT_STATE_READY] + c[AT_STATE_RUNNING] + c[AT_STATE_SCHEDULED] == 0) {
            drained = 1;
            break;
        }
        sleep_ms(50);
    }
    atomic_store(&g_stop_worker, true);
    pthread_join(wk, NULL);
    int64_t drain_ms = mono_ms() - t_drain;

    /* ------------------------------------------------------ the checker */
    /* The store's own counts, not a listing of the jobs: at_list scans the
     * queue's hash once per page, far too slow for the soak's 10^5 jobs. */
    uint64_t fc[AT_STATE_COUNT__];
    int counted = queue_counts(fc) == 0;
    size_t used = atomic_load(&g_next) < g_cap ? atomic_load(&g_next) : g_cap;
    /* The history covers the sequence numbers handed out, no more. */
    struct hist *h = hist_new(used);
    if (!h) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t enq_lost = 0, ack_lost = 0, acked = 0, distinct = 0;
    for (size_t s = 0; s < used; s++) {
        unsigned claims = atomic_load(&g_claims[s]);
        hist_enqueued(h, s, (enum hist_enq)g_enq[s]);
        for (unsigned d = claims; d > 0; d--)
            hist_delivered(h, s);
        distinct += claims > 0;
        /* Drained, so every job in the store was claimed: an acknowledged
         * job never claimed is not in the store (history.h: lost). */
        if (g_enq[s] == HIST_ENQ_OK && claims == 0 && enq_lost++ < 5)
            fprintf(stderr, "enqueue lost: seq %zu was acknowledged and never delivered\n", s);
        if (g_acked[s]) {
            acked++;
            if (g_ack_lost[s] && ack_lost++ < 5)
                fprintf(stderr, "ack lost: seq %zu was acked (0) and claimed again\n", s);
        }
    }
    /* Every job claimed must end SUCCEEDED, once, and nothing else may be
     * left: fewer SUCCEEDED than jobs claimed means delivered jobs
     * vanished (their enqueue and any ack undone), more means jobs nobody
     * claimed were completed. */
    uint64_t unfinished = 0;
    for (int k = 1; k < AT_STATE_COUNT__; k++)
        if (k != AT_STATE_SUCCEEDED)
            unfinished += fc[k];
    uint64_t vanished = distinct > fc[AT_STATE_SUCCEEDED] ? distinct - fc[AT_STATE_SUCCEEDED] : 0;
    uint64_t extra = fc[AT_STATE_SUCCEEDED] > distinct ? fc[AT_STATE_SUCCEEDED] - distinct : 0;
    if (vanished || extra || unfinished)
        fprintf(stderr, "store counts: %" PRIu64 " SUCCEEDED for %" PRIu64 " jobs delivered, %" PRIu64
                        " in other states\n", fc[AT_STATE_SUCCEEDED], distinct, unfinished);
    for (uint64_t i = 0; i < g_stray_claims; i++)
        hist_delivered(h, SIZE_MAX); /* a job nobody enqueued: unexpected */
    struct hist_counts hc;
    hist_check(h, &hc);
    char name[64];
    snprintf(name, sizeof name, "redis_restart appendfsync=%s", fsync);
    int hist_bad = hist_report(name, &hc);

    double rate = load_s > 0 ? (double)writes / load_s : 0;
    uint64_t bound = strict ? 0 : (uint64_t)done_restarts * (uint64_t)(rate * 1.5 + 0.999999);
    uint64_t lost_writes = enq_lost + ack_lost + vanished;
    /* history.h's "lost" (acknowledged, never claimed) is enq_lost; under
     * everysec it is allowed within the bound, like the rest. */
    int pass = !server_failed && drained && counted && hc.unexpected == 0 && extra == 0 && unfinished == 0 && no_recovery == 0 && g_unclear == 0 &&
               g_slow == 0 && done_restarts == restarts && lost_writes <= bound && (strict ? hist_bad == 0 : 1);
    char errs[512] = "";
    size_t el = 0;
    for (int c = 1; c < NCODES; c++)
        if (g_errors[c] && el < sizeof errs)
            el += (size_t)snprintf(errs + el, sizeof errs - el, " %s=%" PRIu64, at_err_name(-c), g_errors[c]);
    printf("redis_restart appendfsync=%s: restarts=%ld (down %ld ms, back after <= %lld ms) jobs=%zu acked=%" PRIu64
           " | enqueues_lost=%" PRIu64 " acks_lost=%" PRIu64 " vanished=%" PRIu64 " unfinished=%" PRIu64 " lost_total=%" PRIu64 " bound=%" PRIu64
           " (= restarts %ld x ceil(%.0f writes/s x 1.5 s)%s) | recovery after restart: max %lld ms, mean %lld ms"
           " | calls=%" PRIu64 " errors:%s unclear=%" PRIu64 " over_limit=%" PRIu64
           " max_ms enqueue=%lld batch=%lld poll=%lld ack=%lld (limit timeout %lld + slack %lld) | drained in %lld ms,"
           " seed=%" PRIu64 ", total %lld ms: %s\n",
           fsync, done_restarts, down_ms, (long long)max_ready, used, acked, enq_lost, ack_lost, vanished, unfinished, lost_writes, bound,
           done_restarts, rate, strict ? ", always: must be 0" : "", (long long)max_recovery,
           (long long)(done_restarts ? sum_recovery / done_restarts : 0), g_calls, errs[0] ? errs : " none",
           g_unclear, g_slow, (long long)g_max_ms[C_ENQ], (long long)g_max_ms[C_BATCH], (long long)g_max_ms[C_POLL],
           (long long)g_max_ms[C_ACK], (long long)g_timeout_ms, (long long)g_slack_ms, (long long)drain_ms, seed,
           (long long)(mono_ms() - t_start), pass ? "PASS" : "FAIL");
    /* What a caller saw: one message per error code, to judge them clear. */
    for (int c = 1; c < NCODES; c++)
        if (g_errors[c])
            printf("  e.g. %s from %s\n", at_err_name(-c), g_sample[c]);
    if (!drained)
        fprintf(stderr, "the queue was not drained: no ack for %d ms\n", 3 * LEASE_MS + 10000);

    at_store_close(g_st);
    rproc_cleanup(&g_redis);
    hist_free(h);
    free(g_enq);
    free(g_claims);
    free(g_acked);
    free(g_ack_lost);
    return pass ? 0 : 1;
}
