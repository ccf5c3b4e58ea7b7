/*
 * redis_sentinel.c - the Redis backend behind Sentinel through a failover.
 *
 * Run by tests/redis_sentinel.sh, which starts a master, two replicas and
 * three sentinels and passes in the environment:
 *   AT_TEST_SENTINELS    host:port,host:port,... of the sentinels
 *   AT_TEST_MASTER_PID   the master's PID (killed here with SIGKILL)
 *   AT_TEST_MASTER_PORT  the master's port
 *
 * Two producers enqueue one job at a time, as fast as they can, through
 * redis-sentinel:// stores: one plain (replication is asynchronous, so an
 * acknowledged enqueue the master had not yet sent on may be lost) and one
 * with wait_replicas=1 (every enqueue is followed by WAIT 1: an acknowledged
 * one is on a replica, which Sentinel promotes before any less advanced one,
 * so none may be lost).  Once both have been acknowledged a few hundred
 * times the master is killed; both must then be acknowledged again against
 * the promoted replica within 30 s.  Afterwards every acknowledged id is
 * looked up through a fresh store; the test reports how many are missing
 * and fails if the wait_replicas producer lost any.  Bounded: about 10 to
 * 20 s, 60 s at worst.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "asynctask.h"
#include "asynctask/store.h"

/* Until lib/registry.c lists the scheme itself, the test registers it. */
extern const at_store_vtable at__redis_sentinel_vtable;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void fail(const char *fmt, const char *a, const char *b)
{
    printf("FAIL: ");
    printf(fmt, a, b);
    printf("\n");
    exit(1);
}

struct producer {
    const char *name;
    char uri[1024];
    pthread_t t;
    /* Acknowledged ids, in order. */
    char (*ids)[AT_ID_SIZE];
    size_t n, cap;
    atomic_size_t acked;       /* = n, readable by main */
    atomic_size_t acked_after; /* acknowledged after the kill */
    atomic_long errors;
    atomic_llong first_ok_after_ms; /* mono time of the first ack after the kill; 0 none */
    char last_err[256];
};

static atomic_bool g_stop;
static atomic_llong g_killed_at; /* 0 until the master is killed */

static void *produce(void *arg)
{
    struct producer *p = arg;
    at_store *s = NULL;
    int64_t deadline = mono_ms() + 10000;
    int rc;
    /* The open itself asks the sentinels; they answer at once here. */
    while ((rc = at_store_open(&s, p->uri)) != 0) {
        if (mono_ms() > deadline)
            fail("%s: at_store_open failed: %s", p->name, at_last_error());
        sleep_ms(50);
    }
    at_opts *o = NULL;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "q");
    unsigned long seq = 0;
    while (!atomic_load(&g_stop)) {
        char payload[32];
        int len = snprintf(payload, sizeof payload, "%lu", seq++);
        char id[AT_ID_SIZE];
        bool after = atomic_load(&g_killed_at) != 0; /* the call starts after the kill */
        rc = at_enqueue(id, s, "t", payload, (size_t)len, o);
        if (rc != 0) {
            atomic_fetch_add(&p->errors, 1);
            char msg[200];
            at_store_errmsg(s, msg, sizeof msg, NULL);
            snprintf(p->last_err, sizeof p->last_err, "%s: %s", at_err_name(rc), msg);
            /* Failing fast while the store backs off: do not spin. */
            sleep_ms(5);
            continue;
        }
        if (p->n == p->cap) {
            size_t nc = p->cap ? p->cap * 2 : 4096;
            void *np = realloc(p->ids, nc * sizeof *p->ids);
            if (!np)
                fail("%s: %s", p->name, "out of memory");
            p->ids = np;
            p->cap = nc;
        }
        memcpy(p->ids[p->n++], id, AT_ID_SIZE);
        atomic_store(&p->acked, p->n);
        if (after) {
            if (atomic_fetch_add(&p->acked_after, 1) == 0)
                atomic_store(&p->first_ok_after_ms, mono_ms());
        }
    }
    at_opts_free(o);
    at_store_close(s);
    return NULL;
}

/* How many of p's acknowledged ids a fresh store cannot find. */
static size_t missing(struct producer *p)
{
    at_store *s = NULL;
    int rc = at_store_open(&s, p->uri);
    if (rc)
        fail("%s: reopen: %s", p->name, at_last_error());
    size_t lost = 0;
    for (size_t i = 0; i < p->n; i++) {
        at_job *j = NULL;
        rc = at_get(&j, s, p->ids[i]);
        if (rc == AT_ERR_NOTFOUND)
            lost++;
        else if (rc != 0) {
            char msg[200];
            at_store_errmsg(s, msg, sizeof msg, NULL);
            fail("%s: at_get: %s", p->name, msg);
        }
        else
            at_job_free(j);
    }
    at_store_close(s);
    return lost;
}

static int master_port_now(const char *sentinels)
{
    char host[256];
    int port = 0;
    if (sscanf(sentinels, "%255[^:]:%d", host, &port) != 2)
        return -1;
    redisContext *c = redisConnect(host, port);
    if (!c || c->err)
        return -1;
    redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name m");
    int mp = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        mp = atoi(r->element[1]->str);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return mp;
}

int main(void)
{
    const char *sent = getenv("AT_TEST_SENTINELS");
    const char *pid_s = getenv("AT_TEST_MASTER_PID");
    const char *port_s = getenv("AT_TEST_MASTER_PORT");
    if (!sent || !pid_s || !port_s) {
        printf("FAIL: AT_TEST_SENTINELS, AT_TEST_MASTER_PID and AT_TEST_MASTER_PORT are not set: run "
               "tests/redis_sentinel.sh\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    int rc = at_store_register(&at__redis_sentinel_vtable);
    if (rc != 0 && rc != AT_ERR_EXISTS)
        fail("at_store_register: %s%s", at_err_name(rc), "");

    /* Bad URIs of the scheme are URI errors before anything is dialled. */
    static const char *const bad[] = {
        "redis-sentinel://", "redis-sentinel://127.0.0.1:1", "redis-sentinel://127.0.0.1:1/",
        "redis-sentinel://127.0.0.1:0/m", "redis-sentinel://127.0.0.1:1,/m", "redis-sentinel://127.0.0.1:1/m?x=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        at_store *s = NULL;
        if ((rc = at_store_open(&s, bad[i])) != AT_ERR_URI)
            fail("%s: %s, expected AT_ERR_URI", bad[i], at_err_name(rc));
    }
    /* No sentinel answers: a connection error that says so, at once. */
    at_store *none = NULL;
    int64_t t0 = mono_ms();
    rc = at_store_open(&none, "redis-sentinel://127.0.0.1:1,127.0.0.1:2/m");
    if (rc != AT_ERR_CONN || !strstr(at_last_error(), "sentinel") || mono_ms() - t0 > 3000)
        fail("unreachable sentinels: %s: %s", at_err_name(rc), at_last_error());
    /* A master the sentinels do not monitor. */
    char uri[1024];
    snprintf(uri, sizeof uri, "redis-sentinel://%s/nosuch", sent);
    rc = at_store_open(&none, uri);
    if (rc != AT_ERR_CONN || !strstr(at_last_error(), "nosuch"))
        fail("unknown master: %s: %s", at_err_name(rc), at_last_error());
    /* The first sentinel is down: the next one is asked. */
    snprintf(uri, sizeof uri, "redis-sentinel://127.0.0.1:1,%s/m?prefix=sent-first-%ld", sent, (long)getpid());
    if ((rc = at_store_open(&none, uri)) != 0)
        fail("first sentinel down: %s: %s", at_err_name(rc), at_last_error());
    at_store_close(none);

    static struct producer prod[2];
    prod[0].name = "async";
    prod[1].name = "wait_replicas=1";
    /* timeout_ms bounds each call while the master is gone (and WAIT at
     * 3/4 of it while the remaining replica resyncs). */
    snprintf(prod[0].uri, sizeof prod[0].uri, "redis-sentinel://%s/m?prefix=sent-async-%ld&timeout_ms=1000", sent,
             (long)getpid());
    snprintf(prod[1].uri, sizeof prod[1].uri,
             "redis-sentinel://%s/m?prefix=sent-wait-%ld&timeout_ms=1000&wait_replicas=1", sent, (long)getpid());
    for (int i = 0; i < 2; i++)
        pthread_create(&prod[i].t, NULL, produce, &prod[i]);

    int64_t deadline = mono_ms() + 10000;
    while (atomic_load(&prod[0].acked) < 500 || atomic_load(&prod[1].acked) < 300) {
        if (mono_ms() > deadline)
            fail("producers did not get going: %s / %s", prod[0].last_err, prod[1].last_err);
        sleep_ms(10);
    }
    pid_t master = (pid_t)atol(pid_s);
    int old_port = atoi(port_s);
    size_t before[2] = {atomic_load(&prod[0].acked), atomic_load(&prod[1].acked)};
    int64_t killed = mono_ms();
    atomic_store(&g_killed_at, killed);
    if (kill(master, SIGKILL) != 0)
        fail("kill -9 of the master: %s%s", strerror(errno), "");
    printf("killed the master (pid %ld, port %d) after %zu + %zu acknowledged enqueues\n", (long)master, old_port,
           before[0], before[1]);

    /* Keep working against the promoted replica: each producer acknowledged
     * again, a good number of times. */
    deadline = killed + 30000;
    while (atomic_load(&prod[0].acked_after) < 300 || atomic_load(&prod[1].acked_after) < 100) {
        if (mono_ms() > deadline) {
            atomic_store(&g_stop, true);
            fail("the store did not recover within 30 s of the failover: %s / %s", prod[0].last_err,
                 prod[1].last_err);
        }
        sleep_ms(10);
    }
    atomic_store(&g_stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(prod[i].t, NULL);
    int new_port = master_port_now(sent);
    printf("sentinels now name port %d as the master\n", new_port);
    if (new_port == old_port || new_port <= 0)
        fail("no failover happened (%s%s)", "the sentinels still name the old master", "");

    size_t lost[2];
    for (int i = 0; i < 2; i++) {
        lost[i] = missing(&prod[i]);
        printf("%-16s acknowledged %6zu (%zu after the kill), lost %zu, failed calls %ld, first ack %lld ms after "
               "the kill; last error: %s\n",
               prod[i].name, prod[i].n, atomic_load(&prod[i].acked_after), lost[i], atomic_load(&prod[i].errors),
               (long long)(atomic_load(&prod[i].first_ok_after_ms) - killed),
               prod[i].last_err[0] ? prod[i].last_err : "none");
    }
    printf("LOST async=%zu wait_replicas=%zu\n", lost[0], lost[1]);
    if (lost[1] != 0) {
        printf("FAIL: with wait_replicas=1 an acknowledged enqueue was lost\n");
        return 1;
    }
    printf("PASS\n");
    return 0;
}
