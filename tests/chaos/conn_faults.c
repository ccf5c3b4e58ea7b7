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
 * must show every delivered job SUCCEEDED and nothing in another state.  Prints the counts of faults, errors and outcomes.
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
#include "history.h"
#include "redis_proc.h"

#define QUEUE "faults"
#define TYPE "chaos.faults"
#define LEASE_MS 1000
#define POLL_MS 100
#define MAX_PRODUCERS 16
/* Jobs acknowledged but not yet acked at which the producers wait. */
#define BACKLOG_MAX 3000
#define NCODES 64
#define MAX_PAIRS 256

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
static int64_t g_timeout_ms = 400, g_slack_ms = 500;
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

/* ------------------------------------------------------------ the record */

static at_store *g_st;
static size_t g_cap;
static atomic_size_t g_next;
static unsigned char *g_enq; /* enum hist_enq per seq */
static atomic_uint *g_claims;
static unsigned char *g_acked, *g_ack_lost;
static atomic_bool g_stop_producers, g_stop_worker;
static atomic_ullong g_enq_ok, g_acks_ok;
static uint64_t g_stray_claims;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_calls, g_errors[NCODES], g_unclear, g_slow;
static int64_t g_max_ms[4];
static char g_sample[NCODES][300]; /* the first message of each error code */
static const char *const CALL_NAMES[4] = {"enqueue", "enqueue_batch", "poll", "ack"};
enum { C_ENQ, C_BATCH, C_POLL, C_ACK };

/* A cut or killed connection is CONN, a stall TIMEOUT: nothing else. */
static int fault_code(int rc)
{
    return rc == AT_ERR_CONN || rc == AT_ERR_TIMEOUT;
}

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
    if (rc && !fault_code(rc) && g_unclear++ < 5)
        fprintf(stderr, "%s returned %s, not CONN or TIMEOUT: %s\n", CALL_NAMES[kind], at_err_name(rc), msg);
    if (ms > blocking_ms + g_timeout_ms + g_slack_ms && g_slow++ < 5)
        fprintf(stderr, "%s took %lld ms (limit %lld): %s %s\n", CALL_NAMES[kind], (long long)ms,
                (long long)(blocking_ms + g_timeout_ms + g_slack_ms), rc ? at_err_name(rc) : "ok", msg);
    pthread_mutex_unlock(&g_mu);
}

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
            break;
        int rc;
        int64_t t0;
        if (k == 1) {
            char p[24];
            int n = snprintf(p, sizeof p, "%zu", first);
            t0 = mono_ms();
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
        if (rc == 0)
            atomic_fetch_add(&g_enq_ok, k);
        sleep_ms(rc == 0 ? 2 : 5);
    }
    at_batch_free(b);
    at_opts_free(o);
    return NULL;
}

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

static void mark_acked(long s)
{
    if (s >= 0 && (size_t)s < g_cap) {
        g_acked[s] = 1;
        atomic_fetch_add(&g_acks_ok, 1);
    }
}

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
            if (g_acked[s])
                g_ack_lost[s] = 1; /* acked with 0, yet claimable again */
        }
        if (n > 0 && (round++ & 1)) {
            t0 = mono_ms();
            rc = at_ack_many(res, g_st, n, ids, tokens);
            note_call(C_ACK, rc, mono_ms() - t0, 0);
            for (size_t i = 0; rc == 0 && i < n; i++)
                if (res[i] == 0)
                    mark_acked(seqs[i]);
        } else {
            for (size_t i = 0; i < n; i++) {
                t0 = mono_ms();
                rc = at_ack(g_st, ids[i], tokens[i], NULL, 0);
                /* STALE: a stall outlived the lease and the job was claimed
                 * again; a correct refusal, not a connection error. */
                note_call(C_ACK, rc == AT_ERR_STALE ? 0 : rc, mono_ms() - t0, 0);
                if (rc == 0)
                    mark_acked(seqs[i]);
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
            "usage: %s [--seconds S] [--timeout-ms T] [--slack MS] [--every MS] [--producers P] [--seed X]\n",
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
    if (g_redis.pid > 0)
        kill(g_redis.pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    long seconds = 5, every = 100, nprod = 2;
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage(argv[0]);
        if (strcmp(argv[i], "--seconds") == 0)
            seconds = parse_long(argv[++i], 1, 86400, argv[0]);
        else if (strcmp(argv[i], "--timeout-ms") == 0)
            g_timeout_ms = parse_long(argv[++i], 50, 60000, argv[0]);
        else if (strcmp(argv[i], "--slack") == 0)
            g_slack_ms = parse_long(argv[++i], 0, 60000, argv[0]);
        else if (strcmp(argv[i], "--every") == 0)
            every = parse_long(argv[++i], 2, 60000, argv[0]);
        else if (strcmp(argv[i], "--producers") == 0)
            nprod = parse_long(argv[++i], 1, MAX_PRODUCERS, argv[0]);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = (uint64_t)parse_long(argv[++i], 1, LONG_MAX, argv[0]);
        else
            usage(argv[0]);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
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
    char uri[256];
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d?timeout_ms=%lld&prefix=cf", g_proxy_port,
             (long long)g_timeout_ms);
    if (at_store_open(&g_st, uri) != 0) {
        fprintf(stderr, "open %s: %s\n", uri, at_last_error());
        atomic_store(&g_proxy_stop, true);
        pthread_join(px, NULL);
        rproc_cleanup(&g_redis);
        return 1;
    }
    g_cap = (size_t)nprod * 9000 * (size_t)seconds + 1000;
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
    atomic_store(&g_stop_producers, true);
    for (long i = 0; i < nprod; i++)
        pthread_join(prod[i], NULL);

    /* Drain, without faults: jobs claimed by a call whose reply was cut
     * come back when their lease ends. */
    /* Given up only when no ack succeeded for 3 leases + 10 s. */
    int64_t t_drain = mono_ms(), deadline = t_drain + 3 * LEASE_MS + 10000;
    uint64_t acks_seen = atomic_load(&g_acks_ok);
    int drained = 0;
    while (mono_ms() < deadline) {
        if (atomic_load(&g_acks_ok) != acks_seen) {
            acks_seen = atomic_load(&g_acks_ok);
            deadline = mono_ms() + 3 * LEASE_MS + 10000;
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
    uint64_t enq_lost = 0, ack_lost = 0, acked = 0, distinct = 0, unknown_enq = 0;
    for (size_t s = 0; s < used; s++) {
        unsigned claims = atomic_load(&g_claims[s]);
        hist_enqueued(h, s, (enum hist_enq)g_enq[s]);
        unknown_enq += g_enq[s] == HIST_ENQ_UNKNOWN;
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
        hist_delivered(h, SIZE_MAX);
    struct hist_counts hc;
    hist_check(h, &hc);
    int hist_bad = hist_report("conn_faults", &hc);

    /* Tear down before the verdict: the store first (its connections go
     * through the proxy), then the proxy, then the server. */
    at_store_close(g_st);
    atomic_store(&g_proxy_stop, true);
    pthread_join(px, NULL);
    close(g_listen);
    rproc_cleanup(&g_redis);

    uint64_t applied_total = 0;
    for (int f = 1; f < F_COUNT; f++)
        applied_total += atomic_load(&g_applied[f]);
    /* A run in which no fault reached a command tested nothing. */
    int pass = hist_bad == 0 && enq_lost == 0 && ack_lost == 0 && vanished == 0 && extra == 0 && unfinished == 0 && drained && counted && g_unclear == 0 &&
               g_slow == 0 && applied_total > 0;
    char errs[512] = "";
    size_t el = 0;
    for (int c = 1; c < NCODES; c++)
        if (g_errors[c] && el < sizeof errs)
            el += (size_t)snprintf(errs + el, sizeof errs - el, " %s=%" PRIu64, at_err_name(-c), g_errors[c]);
    char faults[512] = "";
    size_t fl = 0;
    for (int f = 1; f < F_COUNT; f++)
        fl += (size_t)snprintf(faults + fl, sizeof faults - fl, " %s=%llu/%" PRIu64, FAULT_NAMES[f],
                               (unsigned long long)atomic_load(&g_applied[f]), armed[f]);
    printf("conn_faults: faults applied/armed:%s (clients killed %" PRIu64 ", connections proxied %" PRIu64
           ") | jobs=%zu enqueue_unknown=%" PRIu64 " acked=%" PRIu64 " enqueues_lost=%" PRIu64 " acks_lost=%" PRIu64 " vanished=%" PRIu64 " unfinished=%" PRIu64
           " | calls=%" PRIu64 " errors:%s unclear=%" PRIu64 " over_limit=%" PRIu64
           " max_ms enqueue=%lld batch=%lld poll=%lld ack=%lld (limit timeout %lld + slack %lld) | drained in %lld ms,"
           " seed=%" PRIu64 ", total %lld ms: %s\n",
           faults, killed_clients, g_accepted, used, unknown_enq, acked, enq_lost, ack_lost, vanished, unfinished, g_calls,
           errs[0] ? errs : " none", g_unclear, g_slow, (long long)g_max_ms[C_ENQ], (long long)g_max_ms[C_BATCH],
           (long long)g_max_ms[C_POLL], (long long)g_max_ms[C_ACK], (long long)g_timeout_ms, (long long)g_slack_ms,
           (long long)drain_ms, seed, (long long)(mono_ms() - t_start), pass ? "PASS" : "FAIL");
    /* What a caller saw: one message per error code, to judge them clear. */
    for (int c = 1; c < NCODES; c++)
        if (g_errors[c])
            printf("  e.g. %s from %s\n", at_err_name(-c), g_sample[c]);
    if (!drained)
        fprintf(stderr, "the queue was not drained: no ack for %d ms\n", 3 * LEASE_MS + 10000);
    hist_free(h);
    free(g_enq);
    free(g_claims);
    free(g_acked);
    free(g_ack_lost);
    return pass ? 0 : 1;
}
