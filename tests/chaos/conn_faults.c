/*
 * conn_faults.c - connections stalled, cut mid-command and killed by the
 * server under load: no crash, no call past the timeout, no acknowledged
 * operation lost (chaos test).
 *
 *   conn_faults [--seconds S] [--timeout-ms T] [--slack MS] [--every MS]
 *               [--producers P] [--seed X]
 *
 * The program starts its own redis-server (redis_proc.h) and, in a thread,
 * a loopback TCP proxy that the store connects through
 * (redis://127.0.0.1:PROXY?timeout_ms=T).  Every --every ms on average
 * (random between half and one and a half times it) the main thread arms
 * one fault, which the proxy applies to the next request any client sends,
 * so that it hits a command in flight:
 *
 *   cut-request  close both sides without forwarding the request
 *   cut-reply    forward the request, then close both sides when the reply
 *                comes: the server did the work, the client cannot know
 *   stall-long   forward the request, then stop forwarding that connection
 *                for 2 T: the client must give up after T (AT_ERR_TIMEOUT)
 *   stall-short  the same for T / 4: the call must just be slower
 *   client-kill  CLIENT KILL TYPE normal on a side connection straight to
 *                the server: every pooled connection breaks at once
 *
 * Meanwhile P producer threads enqueue jobs (payload: a sequence number)
 * alone or in batches, and a worker thread polls and acks them (at_ack, or
 * at_ack_many), all through one store handle, which must reconnect by
 * itself.  Every call is timed: at most T + slack (at_poll: + its own
 * 100 ms of blocking), and every failure must be AT_ERR_CONN or
 * AT_ERR_TIMEOUT.  After S seconds the faults stop, the queue is drained,
 * and the checker runs: history.h (enqueue answered 0: ok; CONN, TIMEOUT,
 * IO: unknown; deliveries: claims), plus no ack that returned 0 may be
 * followed by another claim of the job, and the store's counts at the end
 * must show every delivered job SUCCEEDED and nothing in another state
 * (the load and the checker are tests/chaos/load.[ch], shared with
 * redis_restart).  Prints the counts of faults, errors and outcomes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, MSG_NOSIGNAL; also set by AM_CPPFLAGS */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "asynctask.h"
#include "load.h"
#include "redis_proc.h"
#include "util.h"

#define MAX_PAIRS 256

static const char USAGE[] = "[--seconds S] [--timeout-ms T] [--slack MS] [--every MS] [--producers P] [--seed X]";

/* ----------------------------------------------------------------- proxy */

enum { F_NONE, F_CUT_REQUEST, F_CUT_REPLY, F_STALL_LONG, F_STALL_SHORT, F_CLIENT_KILL, F_COUNT };
static const char *const FAULT_NAMES[F_COUNT] = {"none", "cut_request", "cut_reply", "stall_long", "stall_short",
                                                 "client_kill"};

struct pair {
    int c, s;             /* client side, server side; -1 when free */
    int64_t stall_until;  /* forward nothing before this */
    int cut_on_reply;
};

static struct pair g_pairs[MAX_PAIRS];
static int g_listen = -1, g_proxy_port, g_redis_port;
static atomic_int g_fault;          /* armed fault, taken by the next request */
static atomic_bool g_proxy_stop;
static atomic_ullong g_applied[F_COUNT];
static int64_t g_timeout_ms = 400; /* the stalls' lengths follow it */
static uint64_t g_accepted;

static void pair_close(struct pair *p)
{
    if (p->c >= 0)
        close(p->c);
    if (p->s >= 0)
        close(p->s);
    p->c = p->s = -1;
}

/* Write all of buf; -1 when the peer is gone. */
static int send_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, buf, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        buf += k;
        n -= (size_t)k;
    }
    return 0;
}

static int connect_redis(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_redis_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* One thread, poll() over every pair: requests and replies are forwarded
 * as they come, except that the armed fault is applied to the first request
 * read after it was armed. */
static void *proxy(void *arg)
{
    (void)arg;
    struct pollfd pfd[1 + 2 * MAX_PAIRS];
    int who[1 + 2 * MAX_PAIRS]; /* pair index * 2 + side (0 client, 1 server) */
    char buf[65536];
    while (!atomic_load(&g_proxy_stop)) {
        int64_t now = mono_ms();
        int n = 0;
        pfd[n] = (struct pollfd){.fd = g_listen, .events = POLLIN};
        who[n++] = -1;
        for (int i = 0; i < MAX_PAIRS; i++) {
            if (g_pairs[i].c < 0 || g_pairs[i].stall_until > now)
                continue;
            pfd[n] = (struct pollfd){.fd = g_pairs[i].c, .events = POLLIN};
            who[n++] = 2 * i;
            pfd[n] = (struct pollfd){.fd = g_pairs[i].s, .events = POLLIN};
            who[n++] = 2 * i + 1;
        }
        if (poll(pfd, (nfds_t)n, 10) <= 0)
            continue;
        for (int k = 0; k < n; k++) {
            if (!pfd[k].revents)
                continue;
            if (who[k] < 0) {
                int c = accept4(g_listen, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                    continue;
                int s = connect_redis();
                int slot = -1;
                for (int i = 0; i < MAX_PAIRS && slot < 0; i++)
                    if (g_pairs[i].c < 0)
                        slot = i;
                if (s < 0 || slot < 0) {
                    close(c);
                    if (s >= 0)
                        close(s);
                    continue;
                }
                int one = 1;
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                g_pairs[slot] = (struct pair){.c = c, .s = s};
                g_accepted++;
                continue;
            }
            struct pair *p = &g_pairs[who[k] / 2];
            int side = who[k] % 2;
            int fd = side ? p->s : p->c;
            /* Closed earlier in this round, or the slot already reused. */
            if (fd < 0 || fd != pfd[k].fd || p->stall_until > mono_ms())
                continue;
            ssize_t got = recv(fd, buf, sizeof buf, 0);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                pair_close(p);
                continue;
            }
            if (side == 1) {
                if (p->cut_on_reply || send_all(p->c, buf, (size_t)got) != 0)
                    pair_close(p);
                continue;
            }
            int f = atomic_exchange(&g_fault, F_NONE);
            if (f == F_CUT_REQUEST) {
                atomic_fetch_add(&g_applied[f], 1);
                pair_close(p);
                continue;
            }
            if (send_all(p->s, buf, (size_t)got) != 0) {
                pair_close(p);
                continue;
            }
            if (f == F_CUT_REPLY)
                p->cut_on_reply = 1;
            else if (f == F_STALL_LONG)
                p->stall_until = mono_ms() + 2 * g_timeout_ms;
            else if (f == F_STALL_SHORT)
                p->stall_until = mono_ms() + g_timeout_ms / 4;
            else
                f = F_NONE;
            if (f != F_NONE)
                atomic_fetch_add(&g_applied[f], 1);
        }
    }
    for (int i = 0; i < MAX_PAIRS; i++)
        pair_close(&g_pairs[i]);
    return NULL;
}

static int proxy_listen(void)
{
    g_listen = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (g_listen < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(g_listen, (struct sockaddr *)&a, sizeof a) != 0 || listen(g_listen, 64) != 0 ||
        getsockname(g_listen, (struct sockaddr *)&a, &len) != 0)
        return -1;
    g_proxy_port = ntohs(a.sin_port);
    for (int i = 0; i < MAX_PAIRS; i++)
        g_pairs[i].c = g_pairs[i].s = -1;
    return 0;
}

/* A cut or killed connection is CONN, a stall TIMEOUT: nothing else. */
static int fault_code(int rc)
{
    return rc == AT_ERR_CONN || rc == AT_ERR_TIMEOUT;
}

static struct load g_load;
static struct rproc g_redis;

int main(int argc, char **argv)
{
    struct load_cfg cfg = {.queue = "faults",
                           .type = "chaos.faults",
                           .lease_ms = 1000,
                           .timeout_ms = 400,
                           .slack_ms = 500,
                           .pace_ms = 2,
                           .clear_code = fault_code,
                           .clear_names = "CONN or TIMEOUT"};
    long seconds = 5, every = 100, nprod = 2;
    uint64_t seed = seed_default();
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            load_usage(argv[0], USAGE);
        if (strcmp(argv[i], "--seconds") == 0)
            seconds = load_parse_long(argv[++i], 1, 86400, argv[0], USAGE);
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            cfg.timeout_ms = load_parse_long(argv[++i], 50, 60000, argv[0], USAGE);
        else if (strcmp(argv[i], "--slack") == 0)
            cfg.slack_ms = load_parse_long(argv[++i], 0, 60000, argv[0], USAGE);
        else if (strcmp(argv[i], "--every") == 0)
            every = load_parse_long(argv[++i], 2, 60000, argv[0], USAGE);
        else if (strcmp(argv[i], "--producers") == 0)
            nprod = load_parse_long(argv[++i], 1, LOAD_MAX_PRODUCERS, argv[0], USAGE);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = (uint64_t)load_parse_long(argv[++i], 1, LONG_MAX, argv[0], USAGE);
        else
            load_usage(argv[0], USAGE);
    }
    g_timeout_ms = cfg.timeout_ms;
    rproc_kill_on_signal(&g_redis);
    signal(SIGPIPE, SIG_IGN);
    /* No persistence is intended here (nothing restarts): no warning. */
    setenv("AT_REDIS_WARN", "0", 1);

    int64_t t_start = mono_ms();
    const char *const args[] = {"--appendonly", "no", NULL};
    if (rproc_start(&g_redis, args) != 0) {
        rproc_cleanup(&g_redis);
        return 1;
    }
    g_redis_port = g_redis.port;
    if (proxy_listen() != 0) {
        perror("proxy");
        rproc_cleanup(&g_redis);
        return 1;
    }
    pthread_t px;
    pthread_create(&px, NULL, proxy, NULL);
    at_store *st = load_open(g_proxy_port, cfg.timeout_ms, "cf");
    if (!st) {
        atomic_store(&g_proxy_stop, true);
        pthread_join(px, NULL);
        rproc_cleanup(&g_redis);
        return 1;
    }
    if (load_init(&g_load, &cfg, st, (size_t)nprod * 9000 * (size_t)seconds + 1000) != 0)
        return 1;
    load_start(&g_load, nprod, seed);

    /* The faults.  Weights: cuts and long stalls are what the issue is
     * about; short stalls and server-side kills are rarer. */
    static const int weights[F_COUNT] = {0, 3, 3, 2, 1, 1};
    uint64_t rng = seed, armed[F_COUNT] = {0}, killed_clients = 0;
    int64_t t_load = mono_ms(), end = t_load + seconds * 1000;
    while (mono_ms() < end) {
        sleep_ms(every / 2 + (int64_t)(rng_next(&rng) % (uint64_t)(every + 1)));
        uint64_t r = rng_next(&rng) % 10;
        int f = F_CUT_REQUEST;
        for (int k = 1, acc = 0; k < F_COUNT; k++) {
            acc += weights[k];
            if (r < (uint64_t)acc) {
                f = k;
                break;
            }
        }
        armed[f]++;
        if (f == F_CLIENT_KILL) {
            char reply[64];
            if (rproc_command(g_redis_port, "CLIENT KILL TYPE normal", reply, sizeof reply, 2000) == 0 &&
                reply[0] == ':') {
                killed_clients += strtoull(reply + 1, NULL, 10);
                atomic_fetch_add(&g_applied[f], 1);
            }
        } else {
            atomic_store(&g_fault, f);
        }
    }
    atomic_store(&g_fault, F_NONE);
    load_stop_producers(&g_load);

    /* Drain, without faults: jobs claimed by a call whose reply was cut
     * come back when their lease ends. */
    int drained = load_drain(&g_load, 1);
    struct load_result r;
    if (load_check(&g_load, "conn_faults", &r) != 0)
        return 1;

    /* Tear down before the verdict: the store first (its connections go
     * through the proxy), then the proxy, then the server. */
    at_store_close(st);
    atomic_store(&g_proxy_stop, true);
    pthread_join(px, NULL);
    close(g_listen);
    rproc_cleanup(&g_redis);

    uint64_t applied_total = 0;
    for (int f = 1; f < F_COUNT; f++)
        applied_total += atomic_load(&g_applied[f]);
    /* A run in which no fault reached a command tested nothing. */
    int pass = r.hist_bad == 0 && r.enq_lost == 0 && r.ack_lost == 0 && r.vanished == 0 && r.extra == 0 &&
               r.unfinished == 0 && drained && r.counted && g_load.unclear == 0 && g_load.slow == 0 &&
               applied_total > 0;
    char faults[512] = "";
    size_t fl = 0;
    for (int f = 1; f < F_COUNT; f++)
        fl += (size_t)snprintf(faults + fl, sizeof faults - fl, " %s=%llu/%" PRIu64, FAULT_NAMES[f],
                               (unsigned long long)atomic_load(&g_applied[f]), armed[f]);
    printf("conn_faults: faults applied/armed:%s (clients killed %" PRIu64 ", connections proxied %" PRIu64
           ") | jobs=%zu enqueue_unknown=%" PRIu64 " acked=%" PRIu64 " enqueues_lost=%" PRIu64 " acks_lost=%" PRIu64
           " vanished=%" PRIu64 " unfinished=%" PRIu64,
           faults, killed_clients, g_accepted, r.used, r.unknown_enq, r.acked, r.enq_lost, r.ack_lost, r.vanished,
           r.unfinished);
    load_print_calls(&g_load);
    printf(", seed=%" PRIu64 ", total %lld ms: %s\n", seed, (long long)(mono_ms() - t_start), pass ? "PASS" : "FAIL");
    load_print_samples(&g_load, drained);
    load_free(&g_load);
    return pass ? 0 : 1;
}
