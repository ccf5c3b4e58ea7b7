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
 * checker runs (the load and the checker are tests/chaos/load.[ch], shared
 * with conn_faults):
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

#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asynctask.h"
#include "load.h"
#include "redis_proc.h"
#include "util.h"

static const char USAGE[] = "--fsync always|everysec [--seconds S] [--restarts K] [--down MS] [--producers P]\n"
                           "          [--pace MS] [--timeout-ms T] [--slack MS] [--seed X]";

/* The failures that an outage may cause: the connection is gone or
 * refused (CONN), no answer in time (TIMEOUT), the server is loading its
 * AOF (BUSY). */
static int outage_code(int rc)
{
    return rc == AT_ERR_CONN || rc == AT_ERR_TIMEOUT || rc == AT_ERR_BUSY;
}

static struct load g_load;
static struct rproc g_redis;

int main(int argc, char **argv)
{
    struct load_cfg cfg = {.queue = "restart",
                           .type = "chaos.restart",
                           .lease_ms = 1500,
                           .timeout_ms = 1000,
                           .slack_ms = 500,
                           .pace_ms = 3,
                           .clear_code = outage_code,
                           .clear_names = "an outage code (CONN, TIMEOUT, BUSY)"};
    const char *fsync = NULL;
    long seconds = 6, restarts = 3, down_ms = 300, nprod = 2;
    uint64_t seed = seed_default();
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            load_usage(argv[0], USAGE);
        if (strcmp(argv[i], "--fsync") == 0)
            fsync = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = load_parse_long(argv[++i], 1, 86400, argv[0], USAGE);
        else if (strcmp(argv[i], "--restarts") == 0)
            restarts = load_parse_long(argv[++i], 1, 10000, argv[0], USAGE);
        else if (strcmp(argv[i], "--down") == 0)
            down_ms = load_parse_long(argv[++i], 0, 60000, argv[0], USAGE);
        else if (strcmp(argv[i], "--producers") == 0)
            nprod = load_parse_long(argv[++i], 1, LOAD_MAX_PRODUCERS, argv[0], USAGE);
        else if (strcmp(argv[i], "--pace") == 0)
            cfg.pace_ms = load_parse_long(argv[++i], 0, 10000, argv[0], USAGE);
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            cfg.timeout_ms = load_parse_long(argv[++i], 50, 60000, argv[0], USAGE);
        else if (strcmp(argv[i], "--slack") == 0)
            cfg.slack_ms = load_parse_long(argv[++i], 0, 60000, argv[0], USAGE);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = (uint64_t)load_parse_long(argv[++i], 1, LONG_MAX, argv[0], USAGE);
        else
            load_usage(argv[0], USAGE);
    }
    if (!fsync || (strcmp(fsync, "always") != 0 && strcmp(fsync, "everysec") != 0))
        load_usage(argv[0], USAGE);
    int strict = strcmp(fsync, "always") == 0;
    rproc_kill_on_signal(&g_redis);
    signal(SIGPIPE, SIG_IGN);

    int64_t t_start = mono_ms();
    const char *const args[] = {"--appendonly", "yes", "--appendfsync", fsync, NULL};
    if (rproc_start(&g_redis, args) != 0) {
        rproc_cleanup(&g_redis);
        return 1;
    }
    at_store *st = load_open(g_redis.port, cfg.timeout_ms, "rr");
    if (!st) {
        rproc_cleanup(&g_redis);
        return 1;
    }
    /* Room for the whole run at well above the rate the producers reach
     * (at most 16 jobs per call, a pause of --pace ms after each). */
    if (load_init(&g_load, &cfg, st, (size_t)nprod * 12000 * (size_t)seconds + 1000) != 0)
        return 1;
    load_start(&g_load, nprod, seed);

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
        while (atomic_load(&g_load.last_enq_ok_ms) <= t_ready && mono_ms() < t_ready + 10000)
            sleep_ms(2);
        int64_t rec = atomic_load(&g_load.last_enq_ok_ms) - t_ready;
        if (atomic_load(&g_load.last_enq_ok_ms) <= t_ready) {
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
    load_stop_producers(&g_load);
    double load_s = (double)(mono_ms() - t_load) / 1000.0;
    uint64_t writes = atomic_load(&g_load.enq_ok) + atomic_load(&g_load.acks_ok);
    int drained = load_drain(&g_load, !server_failed);

    /* ------------------------------------------------------ the checker */
    struct load_result r;
    char name[64];
    snprintf(name, sizeof name, "redis_restart appendfsync=%s", fsync);
    if (load_check(&g_load, name, &r) != 0)
        return 1;
    double rate = load_s > 0 ? (double)writes / load_s : 0;
    uint64_t bound = strict ? 0 : (uint64_t)done_restarts * (uint64_t)(rate * 1.5 + 0.999999);
    uint64_t lost_writes = r.enq_lost + r.ack_lost + r.vanished;
    /* history.h's "lost" (acknowledged, never claimed) is enq_lost; under
     * everysec it is allowed within the bound, like the rest. */
    int pass = !server_failed && drained && r.counted && r.hc.unexpected == 0 && r.extra == 0 && r.unfinished == 0 &&
               no_recovery == 0 && g_load.unclear == 0 && g_load.slow == 0 && done_restarts == restarts &&
               lost_writes <= bound && (strict ? r.hist_bad == 0 : 1);
    printf("redis_restart appendfsync=%s: restarts=%ld (down %ld ms, back after <= %lld ms) jobs=%zu acked=%" PRIu64
           " | enqueues_lost=%" PRIu64 " acks_lost=%" PRIu64 " vanished=%" PRIu64 " unfinished=%" PRIu64
           " lost_total=%" PRIu64 " bound=%" PRIu64
           " (= restarts %ld x ceil(%.0f writes/s x 1.5 s)%s) | recovery after restart: max %lld ms, mean %lld ms",
           fsync, done_restarts, down_ms, (long long)max_ready, r.used, r.acked, r.enq_lost, r.ack_lost, r.vanished,
           r.unfinished, lost_writes, bound, done_restarts, rate, strict ? ", always: must be 0" : "",
           (long long)max_recovery, (long long)(done_restarts ? sum_recovery / done_restarts : 0));
    load_print_calls(&g_load);
    printf(", seed=%" PRIu64 ", total %lld ms: %s\n", seed, (long long)(mono_ms() - t_start), pass ? "PASS" : "FAIL");
    load_print_samples(&g_load, drained);

    at_store_close(st);
    rproc_cleanup(&g_redis);
    load_free(&g_load);
    return pass ? 0 : 1;
}
