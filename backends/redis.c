/*
 * redis.c - the Redis backend ("redis://"), through hiredis 0.14.
 *
 * Many processes on many hosts share one Redis.  Every transition that
 * touches more than one key is one Lua script (backends/redis_scripts.h),
 * loaded once with SCRIPT LOAD, run with EVALSHA and reloaded on NOSCRIPT, so
 * each transition is atomic on the server.  Time is the server's TIME, read
 * inside the scripts: client clock skew cannot fire a job early or steal a
 * lease.  Time is also lazy: a script first applies what the passing of time
 * did to the jobs it touches (due jobs become READY, leases end), so no
 * process has to be running for a lease to expire.
 *
 * Key layout (ADR/0008-redis-key-layout.md): all keys of one queue share the
 * hash tag {prefix:queue}, so every single-queue script touches one slot.  A
 * job lives in its queue's hash (binary id -> packed record) and in exactly
 * one index of its state.  An operation by id alone first finds the job's
 * queue: from a small per-store cache of ids this process made or claimed,
 * else by asking every queue (one pipelined round trip).  A job never changes
 * queue, so finding it and then running the single-queue script is as atomic
 * as one script.
 *
 * Connections: a small pool (hiredis contexts are not thread-safe), each
 * command bounded by timeout_ms (redisSetTimeout).  A lost connection gives
 * AT_ERR_CONN with the reason; the next call reconnects, backing off from
 * 50 ms to 1 s while the server stays away.  Behind Sentinel
 * ("redis-sentinel://", ADR/0011-redis-sentinel.md) that reconnect first
 * asks the sentinels where the master is now and checks its ROLE.
 *
 * Schedules and leases (vtable version 2) share one slot of their own,
 * {prefix/sched}: a firing is fenced by the scheduler lease in one script.
 *
 * Workflows (vtable version 2): a job of a workflow carries a workflow part
 * in its record (flag F_WF) and its workflow's dependency state lives under
 * {prefix/wf:ID}.  Every transition of such a job, in whichever queue
 * script, updates the workflow's counts and tells its children in the same
 * script; those keys are found while the script runs (ADR 0008,
 * "Workflows", says what that means for Cluster).  A plain job pays a flag
 * test.
 *
 * Worker support (vtable version 2): release is one more holder script
 * like fail; a queue's paused flag is a field of its meta hash, which the
 * claim script already holds; a rate limit is one expiring token-bucket
 * hash per queue, in the queue's slot (ADR 0008, "Worker support").
 *
 * Acks come one job per call from many threads; they are group-committed
 * into one script call (rd_ack), and at_ack_many sends a claimed batch as
 * one (rd_ack_many).  The hot scripts write in bulk (ADR 0008).
 *
 * Wake-ups across processes: one thread per store SUBSCRIBEs to the store's
 * wake channel on a connection of its own and calls at_store_notify() for
 * every message.  Scripts PUBLISH only when a queue goes from no READY job to
 * some, or gains an earlier scheduled time or lease deadline: exactly the
 * events a sleeping poller cannot know of.  The timing itself is the core's
 * (claim returns the next due time), never a Redis-side timeout (coarse: hz).
 *
 * The thread is stopped at close by shutting its socket down.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "internal.h"
#include "redis_scripts.h"

#define DEFAULT_PORT 6379
#define DEFAULT_SENTINEL_PORT 26379
/* Sentinels one redis-sentinel:// URI may name. */
#define MAX_SENTINELS 16
#define DEFAULT_PREFIX "at"
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_POOL 8
#define PREFIX_MAX 64
/* Ids whose queue this process knows: a direct-mapped cache, 80 KiB. */
#define LOC_SLOTS 8192
/* ... in sets of 4: a worker's jobs between claim and ack (hundreds) then
 * almost never evict each other, as they did direct-mapped (one ack in 10
 * paid a locate round trip at 4 threads x 100 jobs). 160 KiB. */
#define LOC_WAYS 4
/* Jobs one purge or requeue script call handles; the client loops. */
#define CHUNK 1000
/* HSCAN step of a listing. */
#define SCAN_COUNT 1000
/* Reconnect backoff while the server stays away. */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
/* Keys per queue passed to every script (j r s l f d m). */
#define QKEYS 7
/* Schedules and leases share the hash tag {P/sched} (ADR 0008): '/' is in
 * neither the prefix nor the queue-name charset, so no queue's {P:Q} can
 * be this tag. */
#define SCHED_TAG "sched"
/* A workflow's dependency state: the hash tag {P/wf:W} (ADR 0008,
 * "Workflows"), 5 keys in the order the workflow scripts take them. */
#define WF_TAG "wf"
#define WKEYS 5
static const char k_wf_suffix[WKEYS] = {'c', 'l', 'n', 'j', 'q'};

enum { SC_ENQUEUE, SC_CLAIM, SC_ACK, SC_FAIL, SC_TOUCH, SC_CANCEL, SC_GET, SC_SCAN, SC_REQUEUE, SC_PURGE,
       SC_PURGE_KEYS, SC_STATS, SC_SCHED_PUT, SC_SCHED_PAUSE, SC_SCHED_FIRED, SC_LEASE_ACQUIRE,
       SC_LEASE_RELEASE, SC_WF_SUBMIT, SC_WF_STATUS, SC_WF_CANCEL, SC_RELEASE, SC_QUEUE_PAUSE, SC_RATE_TAKE,
       SC_COUNT };

static const struct {
    const char *name;
    const char *body;
} k_scripts[SC_COUNT] = {
    {"enqueue", k_redis_enqueue}, {"claim", k_redis_claim},   {"ack", k_redis_ack},
    {"fail", k_redis_fail},       {"touch", k_redis_touch},   {"cancel", k_redis_cancel},
    {"get", k_redis_get},         {"scan", k_redis_scan},     {"requeue", k_redis_requeue},
    {"purge", k_redis_purge},     {"purge_keys", k_redis_purge_keys}, {"stats", k_redis_stats},
    {"sched_put", k_redis_sched_put}, {"sched_pause", k_redis_sched_pause}, {"sched_fired", k_redis_sched_fired},
    {"lease_acquire", k_redis_lease_acquire}, {"lease_release", k_redis_lease_release},
    {"wf_submit", k_redis_wf_submit}, {"wf_status", k_redis_wf_status}, {"wf_cancel", k_redis_wf_cancel},
    {"release", k_redis_release}, {"queue_pause", k_redis_queue_pause}, {"rate_take", k_redis_rate_take},
};

/* One pooled connection. */
struct rconn {
    redisContext *c;
    struct rconn *next;
    unsigned epoch;
};

/* A queue this store has seen: its name and its keys, built once. */
struct rqueue {
    char *name;
    char *keys[QKEYS];
    size_t klen[QKEYS];
    bool registered; /* in the store's queue set, as far as we know */
};

struct loc {
    uint8_t id[16];
    uint32_t q1; /* queue index + 1; 0 = empty slot */
};

struct sentinel_addr {
    char host[256];
    int port;
};

struct at_backend {
    at_store *store;
    /* From the URI.  host and port name the server; with Sentinel they are
     * the master's last known address and change under `mu`. */
    char host[256];
    int port;
    /* redis-sentinel://: where to ask for the master, and its name. */
    bool sentinel;
    char master[128];
    struct sentinel_addr sent[MAX_SENTINELS];
    int nsent;
    char sent_pass[256];
    bool has_sent_pass;
    int db;
    char user[256];
    char pass[256];
    bool has_user, has_pass;
    char prefix[PREFIX_MAX + 1];
    int64_t timeout_ms;
    int wait_replicas;
    int pool_max;
    /* Store-wide keys and the wake channel. */
    char k_queues[PREFIX_MAX + 16];
    char k_idem[PREFIX_MAX + 16];
    char k_idemx[PREFIX_MAX + 16];
    char k_sched[PREFIX_MAX + 16]; /* {P/sched}:defs: schedule name -> record */
    char channel[PREFIX_MAX + 32];

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* a pooled connection came back */
    struct rconn *idle;
    int nconn;
    unsigned epoch; /* bumped when a connection breaks: idle ones are suspect */
    int fails;      /* consecutive failed connects */
    bool rediscover; /* Sentinel: ask the sentinels before the next connect */
    int sent_next;   /* Sentinel: the one that answered last, asked first */
    int64_t retry_at;
    char last_conn_err[256];
    char *script[SC_COUNT]; /* prelude + body */
    char sha[SC_COUNT][41];

    struct rqueue *q;
    size_t nq, qcap;
    uint32_t *qhash; /* open addressing: queue index + 1 */
    size_t qhmask;
    struct loc *loc;

    /* Acks waiting for a batch (rd_ack). */
    pthread_mutex_t ack_mu;
    pthread_cond_t ack_cv;
    struct ack_req *ack_head, **ack_tail;
    bool ack_leading;

    /* The subscriber thread. */
    pthread_t sub;
    bool sub_started;
    bool stop;
    int sub_fd;
    pthread_cond_t sub_cv;
};

/* ------------------------------------------------------------------ util */

static int64_t mono_ms(void)
{
    return at__real_mono_ns() / 1000000;
}

static struct timeval ms_tv(int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int64_t get_sle(const unsigned char *p, int n)
{
    uint64_t v = get_le(p, n);
    if (n < 8 && (v >> (8 * n - 1)) & 1)
        v |= ~UINT64_C(0) << (8 * n);
    return (int64_t)v;
}

/* ------------------------------------------------------------ arguments */

/* A command's arguments: borrowed buffers or copies kept in an arena.  The
 * arena may move while it grows, so copies are kept as offsets and turned
 * into pointers by av_done(). */
typedef struct {
    const char **ptr;
    size_t *len;
    size_t *off; /* SIZE_MAX: ptr is borrowed */
    size_t n, cap;
    char *arena;
    size_t an, acap;
    bool oom;
} argv_t;

static void av_init(argv_t *a)
{
    memset(a, 0, sizeof *a);
}

static void av_free(argv_t *a)
{
    at__free(a->ptr);
    at__free(a->len);
    at__free(a->off);
    at__free(a->arena);
    av_init(a);
}

static bool av_slot(argv_t *a)
{
    if (a->oom)
        return false;
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 32;
        const char **p = at__realloc(a->ptr, nc * sizeof *p);
        if (p)
            a->ptr = p;
        size_t *l = p ? at__realloc(a->len, nc * sizeof *l) : NULL;
        if (l)
            a->len = l;
        size_t *o = l ? at__realloc(a->off, nc * sizeof *o) : NULL;
        if (o)
            a->off = o;
        if (!o) {
            a->oom = true;
            return false;
        }
        a->cap = nc;
    }
    return true;
}

static void av_ext(argv_t *a, const void *p, size_t len)
{
    if (!av_slot(a))
        return;
    a->ptr[a->n] = len ? p : "";
    a->len[a->n] = len;
    a->off[a->n] = SIZE_MAX;
    a->n++;
}

static void av_str(argv_t *a, const char *s)
{
    av_ext(a, s, strlen(s));
}

static void av_copy(argv_t *a, const void *p, size_t len)
{
    if (!av_slot(a))
        return;
    if (a->an + len > a->acap) {
        size_t nc = a->acap ? a->acap * 2 : 1024;
        while (nc < a->an + len)
            nc *= 2;
        char *ar = at__realloc(a->arena, nc);
        if (!ar) {
            a->oom = true;
            return;
        }
        a->arena = ar;
        a->acap = nc;
    }
    if (len)
        memcpy(a->arena + a->an, p, len);
    a->ptr[a->n] = NULL;
    a->len[a->n] = len;
    a->off[a->n] = a->an;
    a->an += len;
    a->n++;
}

static void av_i64(argv_t *a, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", (long long)v);
    av_copy(a, b, (size_t)n);
}

static void av_u64(argv_t *a, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    av_copy(a, b, (size_t)n);
}

/* Resolve copies into pointers; AT_ERR_NOMEM if any append failed. */
static int av_done(argv_t *a)
{
    if (a->oom)
        return AT_ERR_NOMEM;
    for (size_t i = 0; i < a->n; i++)
        if (a->off[i] != SIZE_MAX)
            a->ptr[i] = a->arena + a->off[i];
    return 0;
}

/* "EVALSHA <sha> <nkeys>" then the keys of queue qi (when >= 0). */
static void av_script(argv_t *a, at_backend *be, int sc, int64_t nkeys)
{
    av_str(a, "EVALSHA");
    av_str(a, be->sha[sc]);
    av_i64(a, nkeys);
}

static void av_qkeys(argv_t *a, at_backend *be, size_t qi)
{
    /* Queue names and keys are never freed before close: borrowing is safe
     * even if another thread grows the table (the strings do not move). */
    pthread_mutex_lock(&be->mu);
    struct rqueue q = be->q[qi];
    pthread_mutex_unlock(&be->mu);
    for (int k = 0; k < QKEYS; k++)
        av_ext(a, q.keys[k], q.klen[k]);
}

/* The last two arguments of every queue script: the wake channel and the
 * key prefix, from which a workflow transition names the keys it finds
 * only while it runs (ADR 0008, "Workflows"). */
static void av_tail(argv_t *a, at_backend *be)
{
    av_str(a, be->channel);
    av_str(a, be->prefix);
}

/* ---------------------------------------------------------------- errors */

/* "host:port" of the server, for messages.  With Sentinel the address moves
 * at a failover (under `mu`), so it is copied under the lock; callers must
 * not hold `mu`. */
#define ADDR_MAX 300
static const char *cur_addr(at_backend *be, char out[ADDR_MAX])
{
    pthread_mutex_lock(&be->mu);
    snprintf(out, ADDR_MAX, "%s%s:%d", be->sentinel ? "master " : "", be->host, be->port);
    pthread_mutex_unlock(&be->mu);
    return out;
}

static bool is_timeout(const redisContext *c)
{
    return c->err == REDIS_ERR_IO &&
           (strcmp(c->errstr, strerror(EAGAIN)) == 0 || strcmp(c->errstr, strerror(EWOULDBLOCK)) == 0);
}

/* The connection failed under a command: its context is unusable now. */
static int conn_failed(at_backend *be, const redisContext *c, const char *what)
{
    char a[ADDR_MAX];
    if (is_timeout(c))
        return at_store_error(be->store, AT_ERR_TIMEOUT, 0, "redis at %s did not answer %s within %lld ms (timeout_ms)",
                              cur_addr(be, a), what, (long long)be->timeout_ms);
    return at_store_error(be->store, AT_ERR_CONN, c->err, "connection to redis at %s lost during %s: %s",
                          cur_addr(be, a), what, c->errstr[0] ? c->errstr : "unknown error");
}

/* An error reply.  *broken_out is set when the connection should not be
 * reused (the server became a replica, or refuses us for good). */
static int reply_error(at_backend *be, const redisReply *r, const char *what, bool *broken_out)
{
    const char *s = r->str ? r->str : "";
    int code = AT_ERR_IO;
    if (strstr(s, "OOM command not allowed") || strncmp(s, "OOM", 3) == 0)
        code = AT_ERR_FULL;
    /* A key of another type where ours should be, or a value the scripts
     * cannot unpack or count with: data this library did not write. */
    else if (strstr(s, "WRONGTYPE") || strstr(s, "data string too short") || strstr(s, "hash value is not an integer") ||
             strstr(s, "AT_CORRUPT"))
        code = AT_ERR_CORRUPT;
    else if (strncmp(s, "NOAUTH", 6) == 0 || strncmp(s, "WRONGPASS", 9) == 0 || strncmp(s, "NOPERM", 6) == 0)
        code = AT_ERR_AUTH;
    else if (strstr(s, "Protocol error: unauthenticated")) {
        /* Redis >= 6.2.13 / 7.0.12 answers an unauthenticated client's
         * argument of more than 16 KiB (a script at open) this way, not
         * with NOAUTH, and closes the connection. */
        code = AT_ERR_AUTH;
        if (broken_out)
            *broken_out = true;
    } else if (strncmp(s, "BUSY", 4) == 0 || strncmp(s, "LOADING", 7) == 0)
        code = AT_ERR_BUSY;
    else if (strncmp(s, "READONLY", 8) == 0 || strncmp(s, "MASTERDOWN", 10) == 0) {
        code = AT_ERR_CONN;
        if (broken_out)
            *broken_out = true;
    }
    char a[ADDR_MAX];
    if (code == AT_ERR_FULL)
        return at_store_error(be->store, code, 0,
                              "redis at %s is out of memory (maxmemory reached under noeviction); %s "
                              "changed nothing: %.200s",
                              cur_addr(be, a), what, s);
    if (code == AT_ERR_CORRUPT)
        return at_store_error(be->store, code, 0, "redis at %s holds data this library did not write under prefix %s; "
                              "%s failed: %.300s", cur_addr(be, a), be->prefix, what, s);
    return at_store_error(be->store, code, 0, "redis at %s refused %s: %.300s", cur_addr(be, a), what, s);
}

/* ------------------------------------------------------------- connecting */

static int simple_command(at_backend *be, redisContext *c, const char *what, int argc, const char **argv,
                          const size_t *lens, redisReply **out)
{
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    if (!r)
        return conn_failed(be, c, what);
    if (r->type == REDIS_REPLY_ERROR) {
        int rc = reply_error(be, r, what, NULL);
        freeReplyObject(r);
        return rc;
    }
    if (out)
        *out = r;
    else
        freeReplyObject(r);
    return 0;
}

/* Connect, authenticate and select the database.  `rw_timeout`: 0 for none
 * (the subscriber blocks for as long as there is nothing to say). */
static int dial(at_backend *be, redisContext **out, bool rw_timeout)
{
    *out = NULL;
    char host[sizeof be->host];
    pthread_mutex_lock(&be->mu);
    memcpy(host, be->host, sizeof host);
    int port = be->port;
    pthread_mutex_unlock(&be->mu);
    redisContext *c = redisConnectWithTimeout(host, port, ms_tv(be->timeout_ms));
    if (!c)
        return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory for a redis connection");
    if (c->err) {
        int rc = at_store_error(be->store, AT_ERR_CONN, c->err, "cannot connect to redis %sat %s:%d: %s",
                                be->sentinel ? "master " : "", host, port, c->errstr);
        redisFree(c);
        return rc;
    }
    redisSetTimeout(c, ms_tv(rw_timeout ? be->timeout_ms : 0));
    redisEnableKeepAlive(c);
    int rc = 0;
    if (be->has_pass) {
        /* AUTH user password (ACL, Redis 6+) or AUTH password. */
        const char *argv[3];
        size_t lens[3];
        int argc = 0;
        argv[argc] = "AUTH", lens[argc++] = 4;
        if (be->has_user)
            argv[argc] = be->user, lens[argc++] = strlen(be->user);
        argv[argc] = be->pass, lens[argc++] = strlen(be->pass);
        redisReply *r = redisCommandArgv(c, argc, argv, lens);
        if (!r) {
            rc = conn_failed(be, c, "AUTH");
        } else {
            if (r->type == REDIS_REPLY_ERROR)
                rc = at_store_error(be->store, AT_ERR_AUTH, 0, "redis at %s:%d refused the password%s%s: %.200s",
                                    host, port, be->has_user ? " of user " : "",
                                    be->has_user ? be->user : "", r->str);
            freeReplyObject(r);
        }
    }
    if (rc == 0 && be->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", be->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, strlen(db)};
        rc = simple_command(be, c, "SELECT", 2, argv, lens, NULL);
        if (rc == AT_ERR_IO)
            rc = at_store_error(be->store, AT_ERR_URI, 0, "redis at %s:%d has no database %d", host, port, be->db);
    }
    if (rc) {
        redisFree(c);
        return rc;
    }
    *out = c;
    return 0;
}

static int parse_int(int64_t *out, const char *s, size_t n, int64_t lo, int64_t hi);

/*
 * Sentinel: ask the sentinels, each in turn starting with the one that
 * answered last, for the address of the master (SENTINEL
 * get-master-addr-by-name).  The answer becomes be->host/port.
 */
static int discover(at_backend *be)
{
    char why[300] = "no sentinel was asked";
    pthread_mutex_lock(&be->mu);
    int start = be->sent_next;
    pthread_mutex_unlock(&be->mu);
    for (int k = 0; k < be->nsent; k++) {
        int i = (start + k) % be->nsent;
        const struct sentinel_addr *sa = &be->sent[i];
        redisContext *c = redisConnectWithTimeout(sa->host, sa->port, ms_tv(be->timeout_ms));
        if (!c)
            return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory for a sentinel connection");
        if (c->err) {
            snprintf(why, sizeof why, "sentinel %s:%d: %s", sa->host, sa->port, c->errstr);
            redisFree(c);
            continue;
        }
        redisSetTimeout(c, ms_tv(be->timeout_ms));
        redisReply *r = NULL;
        if (be->has_sent_pass) {
            const char *av[2] = {"AUTH", be->sent_pass};
            size_t al[2] = {4, strlen(be->sent_pass)};
            r = redisCommandArgv(c, 2, av, al);
            if (!r || r->type == REDIS_REPLY_ERROR) {
                snprintf(why, sizeof why, "sentinel %s:%d refused sentinel_password: %.200s", sa->host, sa->port,
                         r ? r->str : c->errstr);
                if (r)
                    freeReplyObject(r);
                redisFree(c);
                continue;
            }
            freeReplyObject(r);
        }
        const char *av[3] = {"SENTINEL", "get-master-addr-by-name", be->master};
        size_t al[3] = {8, 23, strlen(be->master)};
        r = redisCommandArgv(c, 3, av, al);
        int64_t port = 0;
        if (!r) {
            snprintf(why, sizeof why, "sentinel %s:%d: %s", sa->host, sa->port, c->errstr);
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
                   r->element[1]->type == REDIS_REPLY_STRING && r->element[0]->len > 0 &&
                   r->element[0]->len < sizeof be->host &&
                   /* A NUL inside would cut the host short: dial "" or a prefix. */
                   !memchr(r->element[0]->str, '\0', r->element[0]->len) &&
                   parse_int(&port, r->element[1]->str, r->element[1]->len, 1, 65535) == 0) {
            pthread_mutex_lock(&be->mu);
            memcpy(be->host, r->element[0]->str, r->element[0]->len);
            be->host[r->element[0]->len] = '\0';
            be->port = (int)port;
            be->sent_next = i;
            be->rediscover = false;
            pthread_mutex_unlock(&be->mu);
            freeReplyObject(r);
            redisFree(c);
            return 0;
        } else if (r->type == REDIS_REPLY_NIL) {
            snprintf(why, sizeof why, "sentinel %s:%d does not monitor a master named %s", sa->host, sa->port,
                     be->master);
        } else {
            snprintf(why, sizeof why, "sentinel %s:%d answered %.200s", sa->host, sa->port,
                     r->type == REDIS_REPLY_ERROR ? r->str : "something else than an address");
        }
        if (r)
            freeReplyObject(r);
        redisFree(c);
    }
    return at_store_error(be->store, AT_ERR_CONN, 0, "no sentinel (of %d) gave the address of master %s; last: %s",
                          be->nsent, be->master, why);
}

/* dial(), with Sentinel first asking where the master is when it may have
 * moved, and then checking that the server is the master (ROLE): during a
 * failover a sentinel may still name the old one, and a replica would
 * refuse every write with READONLY anyway. */
static int connect_master(at_backend *be, redisContext **out, bool rw_timeout)
{
    *out = NULL;
    int rc = 0;
    if (be->sentinel) {
        pthread_mutex_lock(&be->mu);
        bool ask = be->rediscover;
        pthread_mutex_unlock(&be->mu);
        if (ask && (rc = discover(be)))
            return rc;
    }
    redisContext *c = NULL;
    rc = dial(be, &c, rw_timeout);
    if (rc == 0 && be->sentinel) {
        const char *av[1] = {"ROLE"};
        size_t al[1] = {4};
        redisReply *r = redisCommandArgv(c, 1, av, al);
        if (!r) {
            rc = conn_failed(be, c, "ROLE");
        } else {
            if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING ||
                strcmp(r->element[0]->str, "master") != 0) {
                char a[ADDR_MAX];
                rc = at_store_error(be->store, AT_ERR_CONN, 0,
                                    "redis at %s is not (or no longer) the master %s: ROLE says %.40s; a failover "
                                    "may be under way",
                                    cur_addr(be, a), be->master,
                                    r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                                            r->element[0]->type == REDIS_REPLY_STRING
                                        ? r->element[0]->str
                                        : (r->type == REDIS_REPLY_ERROR ? r->str : "nothing"));
            }
            freeReplyObject(r);
        }
        if (rc) {
            redisFree(c);
            c = NULL;
        }
    }
    if (rc) {
        if (be->sentinel && rc != AT_ERR_NOMEM && rc != AT_ERR_AUTH && rc != AT_ERR_URI) {
            pthread_mutex_lock(&be->mu);
            be->rediscover = true;
            pthread_mutex_unlock(&be->mu);
        }
        return rc;
    }
    *out = c;
    return 0;
}

/* A connection from the pool, or a new one.  Blocks while pool_max are in
 * use.  Fails fast while a reconnect backoff runs. */
static int acquire(at_backend *be, struct rconn **out)
{
    *out = NULL;
    pthread_mutex_lock(&be->mu);
    for (;;) {
        if (be->idle) {
            struct rconn *rc = be->idle;
            be->idle = rc->next;
            if (rc->epoch == be->epoch) {
                pthread_mutex_unlock(&be->mu);
                *out = rc;
                return 0;
            }
            /* Idle while another connection broke: likely broken too (a
             * server restart), so replace it rather than fail on it. */
            redisFree(rc->c);
            at__free(rc);
            be->nconn--;
            continue;
        }
        if (be->nconn < be->pool_max)
            break;
        pthread_cond_wait(&be->cv, &be->mu);
    }
    int64_t now = mono_ms();
    if (be->fails > 0 && now < be->retry_at) {
        int64_t wait = be->retry_at - now;
        char why[256];
        memcpy(why, be->last_conn_err, sizeof why);
        pthread_mutex_unlock(&be->mu);
        char a[ADDR_MAX];
        return at_store_error(be->store, AT_ERR_CONN, 0, "redis at %s is unreachable (next attempt in %lld ms): %s",
                              cur_addr(be, a), (long long)wait, why);
    }
    be->nconn++;
    pthread_mutex_unlock(&be->mu);

    redisContext *c = NULL;
    int rc = connect_master(be, &c, true);
    struct rconn *conn = rc == 0 ? at__calloc(1, sizeof *conn) : NULL;
    if (rc == 0 && !conn) {
        redisFree(c);
        rc = at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory for a redis connection");
    }
    pthread_mutex_lock(&be->mu);
    if (rc) {
        be->nconn--;
        if (rc == AT_ERR_CONN || rc == AT_ERR_TIMEOUT) {
            int shift = be->fails < 5 ? be->fails : 5;
            int64_t backoff = (int64_t)BACKOFF_MIN_MS << shift;
            be->fails++;
            be->retry_at = mono_ms() + (backoff < BACKOFF_MAX_MS ? backoff : BACKOFF_MAX_MS);
            at_store_errmsg(be->store, be->last_conn_err, sizeof be->last_conn_err, NULL);
        }
        pthread_cond_signal(&be->cv);
        pthread_mutex_unlock(&be->mu);
        return rc;
    }
    be->fails = 0;
    conn->c = c;
    conn->epoch = be->epoch;
    pthread_mutex_unlock(&be->mu);
    *out = conn;
    return 0;
}

/* Back to the pool; a broken one is closed (and makes the idle ones
 * suspect). */
static void release(at_backend *be, struct rconn *conn, bool broken)
{
    if (!conn)
        return;
    pthread_mutex_lock(&be->mu);
    if (broken || conn->c->err) {
        if (broken || !is_timeout(conn->c))
            be->epoch++;
        /* Lost, timed out or demoted: the master may have moved. */
        if (be->sentinel)
            be->rediscover = true;
        redisFree(conn->c);
        at__free(conn);
        be->nconn--;
    } else {
        conn->next = be->idle;
        be->idle = conn;
    }
    pthread_cond_signal(&be->cv);
    pthread_mutex_unlock(&be->mu);
}

static int load_script(at_backend *be, redisContext *c, int sc)
{
    const char *argv[3] = {"SCRIPT", "LOAD", be->script[sc]};
    size_t lens[3] = {6, 4, strlen(be->script[sc])};
    redisReply *r = NULL;
    int rc = simple_command(be, c, "SCRIPT LOAD", 3, argv, lens, &r);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        freeReplyObject(r);
        return at_store_error(be->store, AT_ERR_IO, 0, "SCRIPT LOAD of the %s script gave no SHA1", k_scripts[sc].name);
    }
    pthread_mutex_lock(&be->mu);
    memcpy(be->sha[sc], r->str, 40);
    be->sha[sc][40] = '\0';
    pthread_mutex_unlock(&be->mu);
    freeReplyObject(r);
    return 0;
}

static bool is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/*
 * Send n commands in one write and read the n replies (pipelining).  Error
 * replies are left in replies[] for the caller, except NOSCRIPT: the script
 * is loaded again (the server restarted or SCRIPT FLUSH ran) and the command
 * sent once more.  scripts[i] names the script of command i (-1: none).
 * A connection failure frees every reply and returns its code.
 */
static int pipeline(at_backend *be, struct rconn *conn, size_t n, argv_t *cmds, const int *scripts,
                    redisReply **replies, const char *what)
{
    redisContext *c = conn->c;
    for (size_t i = 0; i < n; i++)
        replies[i] = NULL;
    for (size_t i = 0; i < n; i++) {
        int rc = av_done(&cmds[i]);
        if (rc)
            return at_store_error(be->store, rc, 0, "out of memory building a redis command");
        if (redisAppendCommandArgv(c, (int)cmds[i].n, cmds[i].ptr, cmds[i].len) != REDIS_OK)
            return conn_failed(be, c, what);
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(c, &r) != REDIS_OK) {
            rc = conn_failed(be, c, what);
            break;
        }
        replies[i] = r;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!is_noscript(replies[i]) || !scripts || scripts[i] < 0)
            continue;
        freeReplyObject(replies[i]);
        replies[i] = NULL;
        if ((rc = load_script(be, c, scripts[i])))
            break;
        /* The SHA is the same text's: the command needs no change. */
        void *r = redisCommandArgv(c, (int)cmds[i].n, cmds[i].ptr, cmds[i].len);
        if (!r) {
            rc = conn_failed(be, c, what);
            break;
        }
        replies[i] = r;
    }
    if (rc)
        for (size_t i = 0; i < n; i++)
            if (replies[i]) {
                freeReplyObject(replies[i]);
                replies[i] = NULL;
            }
    return rc;
}

/* One script call; an error reply becomes its AT_ERR_* code. */
static int run1(at_backend *be, struct rconn *conn, argv_t *cmd, int sc, redisReply **out, const char *what)
{
    redisReply *r = NULL;
    int rc = pipeline(be, conn, 1, cmd, &sc, &r, what);
    if (rc)
        return rc;
    if (r->type == REDIS_REPLY_ERROR) {
        bool broken = false;
        rc = reply_error(be, r, what, &broken);
        freeReplyObject(r);
        if (broken)
            conn->c->err = REDIS_ERR_OTHER; /* released as broken */
        return rc;
    }
    *out = r;
    return 0;
}

/* ------------------------------------------------------------------ URI */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode [s, s+n) into out (size cap); -1 on a bad escape, an
 * escaped NUL or no room. */
static int pct_decode(char *out, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
            if (a < 0 || b < 0 || (a == 0 && b == 0))
                return -1;
            ch = (char)(a * 16 + b);
            i += 2;
        }
        if (k + 1 >= cap)
            return -1;
        out[k++] = ch;
    }
    out[k] = '\0';
    return 0;
}

static int parse_int(int64_t *out, const char *s, size_t n, int64_t lo, int64_t hi)
{
    if (n == 0 || n > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static bool prefix_ok(const char *s, size_t n)
{
    if (n == 0 || n > PREFIX_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == ':' || c == '-'))
            return false;
    }
    return true;
}

/* host[:port] or [v6]:port in [p, end) into host/port; -1 when malformed. */
static int parse_hostport(const char *p, const char *end, char *host, size_t cap, int *port, int defport)
{
    const char *hend;
    if (p < end && *p == '[') {
        hend = memchr(p, ']', (size_t)(end - p));
        if (!hend || hend == p + 1 || (size_t)(hend - p - 1) >= cap)
            return -1;
        memcpy(host, p + 1, (size_t)(hend - p - 1));
        host[hend - p - 1] = '\0';
        hend++;
    } else {
        hend = p;
        while (hend < end && *hend != ':')
            hend++;
        if (hend == p || (size_t)(hend - p) >= cap)
            return -1;
        memcpy(host, p, (size_t)(hend - p));
        host[hend - p] = '\0';
    }
    *port = defport;
    if (hend < end) {
        int64_t v;
        if (*hend != ':' || parse_int(&v, hend + 1, (size_t)(end - hend - 1), 1, 65535))
            return -1;
        *port = (int)v;
    }
    return 0;
}

/*
 * redis://[user:password@]host[:port][/db][?options]
 * redis-sentinel://[user:password@]host[:port][,host[:port]...]/MASTER[?options]
 * options: prefix, timeout_ms, wait_replicas, pool, password, user, db,
 * sentinel_password.  With Sentinel the credentials (in the authority or as
 * password=/user=) are the master's; sentinel_password is the sentinels' own.
 */
static int parse_uri(at_backend *be, const char *uri)
{
    at_store *st = be->store;
#define URI_ERR(...) at_store_error(st, AT_ERR_URI, 0, __VA_ARGS__)
    const char *p;
    if (strncmp(uri, "redis://", 8) == 0) {
        p = uri + 8;
    } else if (strncmp(uri, "redis-sentinel://", 17) == 0) {
        p = uri + 17;
        be->sentinel = true;
    } else {
        return URI_ERR("a redis URI starts with redis:// (redis://[user:password@]host:port[/db][?options]) or "
                       "redis-sentinel:// (redis-sentinel://host:port[,host:port...]/MASTER[?options])");
    }
    const char *end = p + strcspn(p, "/?");
    const char *at = NULL;
    for (const char *x = p; x < end; x++)
        if (*x == '@')
            at = x;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            return URI_ERR("credentials in a redis URI are user:password@ or :password@");
        if (pct_decode(be->user, sizeof be->user, p, (size_t)(colon - p)) ||
            pct_decode(be->pass, sizeof be->pass, colon + 1, (size_t)(at - colon - 1)))
            return URI_ERR("bad %%-escape or over-long user or password in the redis URI");
        be->has_user = be->user[0] != '\0';
        be->has_pass = true;
        p = at + 1;
    }
    be->db = 0;
    if (be->sentinel) {
        for (;;) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *hend = comma ? comma : end;
            if (be->nsent == MAX_SENTINELS)
                return URI_ERR("at most %d sentinels in a redis-sentinel URI", MAX_SENTINELS);
            struct sentinel_addr *sa = &be->sent[be->nsent];
            if (parse_hostport(p, hend, sa->host, sizeof sa->host, &sa->port, DEFAULT_SENTINEL_PORT))
                return URI_ERR("bad sentinel address '%.*s' in the redis-sentinel URI (host[:port])", (int)(hend - p),
                               p);
            be->nsent++;
            if (!comma)
                break;
            p = comma + 1;
        }
        p = end;
        if (*p != '/')
            return URI_ERR("the redis-sentinel URI names no master (redis-sentinel://host:port/MASTER)");
        p++;
        size_t n = strcspn(p, "?");
        if (n == 0 || pct_decode(be->master, sizeof be->master, p, n))
            return URI_ERR("bad or over-long master name in the redis-sentinel URI");
        p += n;
        /* Until the sentinels answer, messages name the first of them. */
        snprintf(be->host, sizeof be->host, "%s", be->sent[0].host);
        be->port = be->sent[0].port;
        be->rediscover = true;
    } else {
        if (parse_hostport(p, end, be->host, sizeof be->host, &be->port, DEFAULT_PORT))
            return URI_ERR(end > p && (p[0] == '[' || memchr(p, ':', (size_t)(end - p)))
                               ? "bad host or port in the redis URI (port 1..65535)"
                               : "the redis URI names no host (redis://host:port)");
        p = end;
        if (*p == '/') {
            p++;
            size_t n = strcspn(p, "?");
            int64_t db = 0;
            if (n > 0 && parse_int(&db, p, n, 0, 1000000))
                return URI_ERR("bad database number in the redis URI");
            be->db = (int)db;
            p += n;
        }
    }
    snprintf(be->prefix, sizeof be->prefix, "%s", DEFAULT_PREFIX);
    be->timeout_ms = DEFAULT_TIMEOUT_MS;
    be->pool_max = DEFAULT_POOL;
    if (*p == '?') {
        p++;
        while (*p) {
            size_t n = strcspn(p, "&");
            const char *eq = memchr(p, '=', n);
            if (!eq)
                return URI_ERR("option without a value in the redis URI: %.*s", (int)n, p);
            size_t kn = (size_t)(eq - p), vn = n - kn - 1;
            const char *v = eq + 1;
            int64_t iv = 0;
            if (kn == 6 && memcmp(p, "prefix", 6) == 0) {
                if (!prefix_ok(v, vn))
                    return URI_ERR("prefix must be 1..%d of [A-Za-z0-9._:-]", PREFIX_MAX);
                memcpy(be->prefix, v, vn);
                be->prefix[vn] = '\0';
            } else if (kn == 10 && memcmp(p, "timeout_ms", 10) == 0) {
                if (parse_int(&iv, v, vn, 1, 3600000))
                    return URI_ERR("timeout_ms must be 1..3600000");
                be->timeout_ms = iv;
            } else if (kn == 13 && memcmp(p, "wait_replicas", 13) == 0) {
                if (parse_int(&iv, v, vn, 0, 100))
                    return URI_ERR("wait_replicas must be 0..100");
                be->wait_replicas = (int)iv;
            } else if (kn == 4 && memcmp(p, "pool", 4) == 0) {
                if (parse_int(&iv, v, vn, 1, 256))
                    return URI_ERR("pool must be 1..256");
                be->pool_max = (int)iv;
            } else if (kn == 2 && memcmp(p, "db", 2) == 0) {
                if (parse_int(&iv, v, vn, 0, 1000000))
                    return URI_ERR("db must be a database number");
                be->db = (int)iv;
            } else if (kn == 8 && memcmp(p, "password", 8) == 0) {
                if (pct_decode(be->pass, sizeof be->pass, v, vn))
                    return URI_ERR("bad %%-escape or over-long password in the redis URI");
                be->has_pass = true;
            } else if (kn == 4 && memcmp(p, "user", 4) == 0) {
                if (pct_decode(be->user, sizeof be->user, v, vn))
                    return URI_ERR("bad %%-escape or over-long user in the redis URI");
                be->has_user = be->user[0] != '\0';
            } else if (kn == 17 && memcmp(p, "sentinel_password", 17) == 0) {
                if (pct_decode(be->sent_pass, sizeof be->sent_pass, v, vn))
                    return URI_ERR("bad %%-escape or over-long sentinel_password in the redis URI");
                be->has_sent_pass = true;
            } else {
                return URI_ERR("unknown redis URI option '%.*s' (known: prefix, timeout_ms, wait_replicas, pool, "
                               "db, password, user, sentinel_password)",
                               (int)kn, p);
            }
            p += n;
            if (*p == '&')
                p++;
        }
    }
    if (be->has_user && !be->has_pass)
        return URI_ERR("a redis user needs a password (user=U&password=P or U:P@)");
    return 0;
#undef URI_ERR
}

/* ---------------------------------------------------------------- queues */

/* The index of queue `name` (interned on first sight); -1 on no memory. */
static long queue_index(at_backend *be, const char *name, size_t n)
{
    uint64_t h = hash_str(name, n);
    pthread_mutex_lock(&be->mu);
    size_t i = (size_t)h & be->qhmask;
    for (; be->qhash[i]; i = (i + 1) & be->qhmask) {
        struct rqueue *q = &be->q[be->qhash[i] - 1];
        if (strlen(q->name) == n && memcmp(q->name, name, n) == 0) {
            long idx = (long)(be->qhash[i] - 1);
            pthread_mutex_unlock(&be->mu);
            return idx;
        }
    }
    long idx = -1;
    if (be->nq == be->qcap) {
        size_t nc = be->qcap * 2;
        struct rqueue *nqs = at__realloc(be->q, nc * sizeof *nqs);
        if (!nqs)
            goto out;
        be->q = nqs;
        be->qcap = nc;
    }
    if ((be->nq + 1) * 2 > be->qhmask + 1) {
        size_t nm = be->qhmask * 2 + 1;
        uint32_t *nh = at__calloc(nm + 1, sizeof *nh);
        if (!nh)
            goto out;
        for (size_t k = 0; k < be->nq; k++) {
            size_t s = (size_t)hash_str(be->q[k].name, strlen(be->q[k].name)) & nm;
            while (nh[s])
                s = (s + 1) & nm;
            nh[s] = (uint32_t)(k + 1);
        }
        at__free(be->qhash);
        be->qhash = nh;
        be->qhmask = nm;
        i = (size_t)h & nm;
        while (nh[i])
            i = (i + 1) & nm;
    }
    struct rqueue *q = &be->q[be->nq];
    memset(q, 0, sizeof *q);
    q->name = at__malloc(n + 1);
    if (!q->name)
        goto out;
    memcpy(q->name, name, n);
    q->name[n] = '\0';
    static const char suffix[QKEYS] = {'j', 'r', 's', 'l', 'f', 'd', 'm'};
    for (int k = 0; k < QKEYS; k++) {
        size_t kl = strlen(be->prefix) + n + 6;
        q->keys[k] = at__malloc(kl + 1);
        if (!q->keys[k]) {
            for (int m = 0; m < k; m++)
                at__free(q->keys[m]);
            at__free(q->name);
            goto out;
        }
        q->klen[k] = (size_t)snprintf(q->keys[k], kl + 1, "{%s:%s}:%c", be->prefix, q->name, suffix[k]);
    }
    be->qhash[i] = (uint32_t)(be->nq + 1);
    idx = (long)be->nq++;
out:
    pthread_mutex_unlock(&be->mu);
    return idx;
}

static const char *queue_name(at_backend *be, size_t qi)
{
    pthread_mutex_lock(&be->mu);
    const char *n = be->q[qi].name;
    pthread_mutex_unlock(&be->mu);
    return n;
}

/* The first entry of id's set. */
static struct loc *loc_set(at_backend *be, const uint8_t id[16])
{
    /* The last bytes of an id are random or a counter. */
    uint64_t h = get_le(id + 8, 8);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return &be->loc[((h >> 32) & (LOC_SLOTS / LOC_WAYS - 1)) * LOC_WAYS];
}

/* id's entry in its set, or NULL. */
static struct loc *loc_find(struct loc *set, const uint8_t id[16])
{
    for (int w = 0; w < LOC_WAYS; w++)
        if (set[w].q1 && memcmp(set[w].id, id, 16) == 0)
            return &set[w];
    return NULL;
}

static void loc_put(at_backend *be, const uint8_t id[16], size_t qi)
{
    pthread_mutex_lock(&be->mu);
    struct loc *set = loc_set(be, id);
    struct loc *l = loc_find(set, id);
    for (int w = 0; !l && w < LOC_WAYS; w++)
        if (!set[w].q1)
            l = &set[w];
    if (!l) {
        /* Full: the oldest goes (entries move up, the new one is last). */
        memmove(set, set + 1, (LOC_WAYS - 1) * sizeof *set);
        l = &set[LOC_WAYS - 1];
    }
    memcpy(l->id, id, 16);
    l->q1 = (uint32_t)qi + 1;
    pthread_mutex_unlock(&be->mu);
}

static long loc_get(at_backend *be, const uint8_t id[16])
{
    pthread_mutex_lock(&be->mu);
    struct loc *l = loc_find(loc_set(be, id), id);
    long qi = l ? (long)l->q1 - 1 : -1;
    pthread_mutex_unlock(&be->mu);
    return qi;
}

static void loc_drop(at_backend *be, const uint8_t id[16])
{
    pthread_mutex_lock(&be->mu);
    struct loc *l = loc_find(loc_set(be, id), id);
    if (l)
        l->q1 = 0;
    pthread_mutex_unlock(&be->mu);
}

/* Every queue of the store (SMEMBERS), interned; *idx_out is allocated. */
static int all_queues(at_backend *be, struct rconn *conn, size_t **idx_out, size_t *n_out)
{
    *idx_out = NULL;
    *n_out = 0;
    argv_t a;
    av_init(&a);
    av_str(&a, "SMEMBERS");
    av_str(&a, be->k_queues);
    redisReply *r = NULL;
    int rc = pipeline(be, conn, 1, &a, NULL, &r, "SMEMBERS");
    av_free(&a);
    if (rc)
        return rc;
    if (r->type == REDIS_REPLY_ERROR) {
        rc = reply_error(be, r, "SMEMBERS", NULL);
        freeReplyObject(r);
        return rc;
    }
    size_t *idx = at__calloc(r->elements ? r->elements : 1, sizeof *idx);
    if (!idx) {
        freeReplyObject(r);
        return AT_ERR_NOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        char name[AT_NAME_MAX + 1];
        if (e->type != REDIS_REPLY_STRING || e->len > AT_NAME_MAX)
            continue;
        memcpy(name, e->str, e->len);
        name[e->len] = '\0';
        if (at__check_name(name))
            continue; /* not a name this library writes: leave it alone */
        long qi = queue_index(be, name, e->len);
        if (qi < 0) {
            rc = AT_ERR_NOMEM;
            break;
        }
        pthread_mutex_lock(&be->mu);
        be->q[qi].registered = true;
        pthread_mutex_unlock(&be->mu);
        idx[n++] = (size_t)qi;
    }
    freeReplyObject(r);
    if (rc) {
        at__free(idx);
        return rc;
    }
    *idx_out = idx;
    *n_out = n;
    return 0;
}

/* Find the queue of job `id`: one pipelined HEXISTS per queue. */
static int locate(at_backend *be, struct rconn *conn, const uint8_t id[16], size_t *qi_out)
{
    size_t *qs = NULL, nq = 0;
    int rc = all_queues(be, conn, &qs, &nq);
    if (rc)
        return rc;
    argv_t *cmds = at__calloc(nq ? nq : 1, sizeof *cmds);
    redisReply **rs = at__calloc(nq ? nq : 1, sizeof *rs);
    if (!cmds || !rs) {
        at__free(cmds);
        at__free(rs);
        at__free(qs);
        return AT_ERR_NOMEM;
    }
    for (size_t i = 0; i < nq; i++) {
        av_init(&cmds[i]);
        av_str(&cmds[i], "HEXISTS");
        pthread_mutex_lock(&be->mu);
        av_ext(&cmds[i], be->q[qs[i]].keys[0], be->q[qs[i]].klen[0]);
        pthread_mutex_unlock(&be->mu);
        av_ext(&cmds[i], id, 16);
    }
    rc = nq ? pipeline(be, conn, nq, cmds, NULL, rs, "HEXISTS") : 0;
    long found = -1;
    for (size_t i = 0; i < nq; i++) {
        if (rc == 0 && found < 0 && rs[i] && rs[i]->type == REDIS_REPLY_INTEGER && rs[i]->integer == 1)
            found = (long)qs[i];
        if (rs[i])
            freeReplyObject(rs[i]);
        av_free(&cmds[i]);
    }
    at__free(cmds);
    at__free(rs);
    at__free(qs);
    if (rc)
        return rc;
    if (found < 0)
        return AT_ERR_NOTFOUND;
    *qi_out = (size_t)found;
    loc_put(be, id, (size_t)found);
    return 0;
}

/* --------------------------------------------------------------- records */

/* Bytes of a class: max_attempts I4, lease i8, base i8, cap i8, jitter i4,
 * then the type (ADR 0008). */
#define CLASS_HEAD 32
/* Record head: state B, flags B, class I4, priority i2, created i8, run_at i8. */
#define REC_HEAD 24
#define REC_EXT 36
#define F_CANCEL 1
#define F_EXT 2
#define F_KEY 4
#define F_ERR 8
#define F_RES 16
/* The workflow part, right after the claim part: workflow id length u8 (0
 * or 26) and id, policy u8, node length u8 and node, parent count u32 and
 * 16-byte ids, count u16 of other workflows holding children of the job
 * and their 26-byte ids.  A plain job has none, so it pays nothing. */
#define F_WF 32
/* The trace context part, right after the workflow part: a W3C traceparent
 * packed from its 55 characters to bytes (version 1, trace id 16, parent id
 * 8, flags 1).  Only a job that has one carries the part. */
#define F_TP 64
#define TP_LEN 26
#define TP_CHARS 55

static int hex_val(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Packs "vv-<32 hex>-<16 hex>-<2 hex>" (lower-case hex, as the core accepts it)
 * into TP_LEN bytes; false if `tp` is not of that form. */
static bool tp_pack(unsigned char out[TP_LEN], const char *tp)
{
    if (strlen(tp) != TP_CHARS || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
        return false;
    const char *p = tp;
    for (size_t k = 0; k < TP_LEN; k++) {
        if (*p == '-')
            p++;
        int hi = hex_val(p[0]), lo = hex_val(p[1]);
        if (hi < 0 || lo < 0)
            return false;
        out[k] = (unsigned char)(hi << 4 | lo);
        p += 2;
    }
    return true;
}

static void tp_unpack(char out[TP_CHARS + 1], const unsigned char in[TP_LEN])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (size_t k = 0; k < TP_LEN; k++) {
        if (k == 1 || k == 17 || k == 25)
            *p++ = '-';
        *p++ = hex[in[k] >> 4];
        *p++ = hex[in[k] & 15];
    }
    *p = '\0';
}

static size_t class_encode(unsigned char *out, const at_job_info *j)
{
    size_t tn = strlen(j->type);
    put_le(out, j->max_attempts, 4);
    put_le(out + 4, (uint64_t)j->lease_ms, 8);
    put_le(out + 12, (uint64_t)j->backoff_base_ms, 8);
    put_le(out + 20, (uint64_t)j->backoff_cap_ms, 8);
    put_le(out + 28, (uint64_t)(int64_t)j->backoff_jitter, 4);
    memcpy(out + CLASS_HEAD, j->type, tn);
    return CLASS_HEAD + tn;
}

/* A job snapshot from a record and its class, as the scripts write them;
 * `left` (may be NULL) is the get script's count of parents left. */
static int decode_job(at_backend *be, at_job **out, const uint8_t bid[16], const char *queue, const redisReply *rec,
                      const redisReply *cls, const redisReply *left)
{
    if (!rec || !cls || rec->type != REDIS_REPLY_STRING || cls->type != REDIS_REPLY_STRING ||
        rec->len < REC_HEAD || cls->len < CLASS_HEAD + 1 || cls->len > CLASS_HEAD + AT_NAME_MAX)
        goto corrupt;
    const unsigned char *p = (const unsigned char *)rec->str, *end = p + rec->len;
    const unsigned char *c = (const unsigned char *)cls->str;
    at_job_info i;
    at_job_info_init(&i);
    at_id_format(i.id, bid);
    char type[AT_NAME_MAX + 1];
    memcpy(type, c + CLASS_HEAD, cls->len - CLASS_HEAD);
    type[cls->len - CLASS_HEAD] = '\0';
    i.type = type;
    i.queue = queue;
    i.max_attempts = (uint32_t)get_le(c, 4);
    i.lease_ms = get_sle(c + 4, 8);
    i.backoff_base_ms = get_sle(c + 12, 8);
    i.backoff_cap_ms = get_sle(c + 20, 8);
    i.backoff_jitter = (int32_t)get_sle(c + 28, 4);
    i.state = p[0];
    unsigned flags = p[1];
    i.priority = (int32_t)get_sle(p + 6, 2);
    i.created_at = get_sle(p + 8, 8);
    i.run_at = get_sle(p + 16, 8);
    i.updated_at = i.created_at;
    i.cancel_requested = (flags & F_CANCEL) ? 1 : 0;
    if (i.state < AT_STATE_WAITING || i.state >= AT_STATE_COUNT__)
        goto corrupt;
    p += REC_HEAD;
    int64_t lf = AT_TIME_NONE;
    if (flags & F_EXT) {
        if (end - p < REC_EXT)
            goto corrupt;
        i.attempts = (uint32_t)get_le(p, 4);
        i.token = (uint64_t)get_sle(p + 4, 8);
        i.started_at = get_sle(p + 12, 8);
        lf = get_sle(p + 20, 8);
        i.updated_at = get_sle(p + 28, 8);
        p += REC_EXT;
    }
    if (i.state == AT_STATE_RUNNING)
        i.lease_until = lf;
    else if (i.state >= AT_STATE_SUCCEEDED)
        i.finished_at = lf;
    char wf[AT_ID_SIZE], node[256];
    const unsigned char *par = NULL;
    size_t npar = 0;
    if (flags & F_WF) {
        if (end - p < 1)
            goto corrupt;
        size_t wl = p[0];
        p++;
        if ((wl != 0 && wl != AT_ID_LEN) || (size_t)(end - p) < wl + 2)
            goto corrupt;
        memcpy(wf, p, wl);
        wf[wl] = '\0';
        i.workflow_id = wl ? wf : NULL;
        p += wl;
        i.on_parent_failure = p[0];
        size_t nl = p[1];
        p += 2;
        if ((size_t)(end - p) < nl + 4)
            goto corrupt;
        memcpy(node, p, nl);
        node[nl] = '\0';
        i.node = nl ? node : NULL;
        p += nl;
        npar = (size_t)get_le(p, 4);
        p += 4;
        if ((size_t)(end - p) / 16 < npar)
            goto corrupt;
        par = p;
        p += npar * 16;
        if (end - p < 2)
            goto corrupt;
        size_t nc = (size_t)get_le(p, 2);
        p += 2;
        if ((size_t)(end - p) / 26 < nc)
            goto corrupt;
        p += nc * 26;
        if (left && left->type == REDIS_REPLY_INTEGER && left->integer > 0)
            i.parents_left = (uint32_t)left->integer;
    }
    char tp[TP_CHARS + 1];
    if (flags & F_TP) {
        if (end - p < TP_LEN)
            goto corrupt;
        tp_unpack(tp, p);
        i.traceparent = tp;
        p += TP_LEN;
    }
    char key[AT_KEY_MAX + 1];
    char *err = NULL;
    if (flags & F_KEY) {
        if (end - p < 2)
            goto corrupt;
        size_t n = (size_t)get_le(p, 2);
        p += 2;
        if ((size_t)(end - p) < n || n > AT_KEY_MAX)
            goto corrupt;
        memcpy(key, p, n);
        key[n] = '\0';
        i.idempotency_key = key;
        p += n;
    }
    if (flags & F_ERR) {
        if (end - p < 4)
            goto corrupt;
        size_t n = (size_t)get_le(p, 4);
        p += 4;
        if ((size_t)(end - p) < n)
            goto corrupt;
        err = at__malloc(n + 1);
        if (!err)
            return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory for a job snapshot");
        memcpy(err, p, n);
        err[n] = '\0';
        i.last_error = err;
        p += n;
    }
    if (flags & F_RES) {
        if (end - p < 4) {
            at__free(err);
            goto corrupt;
        }
        size_t n = (size_t)get_le(p, 4);
        p += 4;
        if ((size_t)(end - p) < n) {
            at__free(err);
            goto corrupt;
        }
        i.result = p;
        i.result_len = n;
        p += n;
    }
    i.payload = p;
    i.payload_len = (size_t)(end - p);
    /* Over this handle's limits (written by hand, or by a process with larger
     * ones): refused as at enqueue rather than handed to the host. */
    if ((uint64_t)i.payload_len > (uint64_t)at__store_opt(be->store, AT__SOPT_MAX_PAYLOAD) ||
        (i.result && (uint64_t)i.result_len > (uint64_t)at__store_opt(be->store, AT__SOPT_MAX_RESULT))) {
        at__free(err);
        char id[AT_ID_SIZE];
        at_id_format(id, bid);
        return at_store_error(be->store, AT_ERR_TOOBIG, 0,
                              "job %s in queue %s has a payload of %zu or a result of %zu bytes, over the store's "
                              "limits (AT_OPT_STORE_MAX_PAYLOAD, AT_OPT_STORE_MAX_RESULT)",
                              id, queue, i.payload_len, i.result_len);
    }
    /* Parent ids as strings for at_job_create, which copies them. */
    char(*pids)[AT_ID_SIZE] = npar ? at__malloc(npar * sizeof *pids) : NULL;
    const char **pptr = npar ? at__malloc(npar * sizeof *pptr) : NULL;
    if (npar && (!pids || !pptr)) {
        at__free(pids);
        at__free(pptr);
        at__free(err);
        return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory for a job snapshot");
    }
    for (size_t k = 0; k < npar; k++) {
        at_id_format(pids[k], par + 16 * k);
        pptr[k] = pids[k];
    }
    i.nparents = npar;
    i.parents = pptr;
    int rc = at_job_create(out, &i);
    at__free(pids);
    at__free(pptr);
    at__free(err);
    if (rc)
        return at_store_error(be->store, rc, 0, "out of memory for a job snapshot");
    return 0;
corrupt:;
    char id[AT_ID_SIZE];
    at_id_format(id, bid);
    return at_store_error(be->store, AT_ERR_CORRUPT, 0,
                          "job %s in queue %s has a record this library did not write (prefix %s)", id, queue,
                          be->prefix);
}

/* ------------------------------------------------------------- job calls */

static const char *state_text(long long st)
{
    const char *n = at_state_name((int32_t)st);
    return n ? n : "unknown";
}

/* What a holder script's {code, state} reply means. */
static int holder_code(at_backend *be, const char *id, uint64_t token, const redisReply *r, long long *state_out)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER)
        return at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from a redis script");
    long long code = r->element[0]->integer, st = r->element[1]->integer;
    if (state_out)
        *state_out = st;
    switch (code) {
    case 0:
        return 0;
    case AT_ERR_NOTFOUND:
        return at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s", id);
    case AT_ERR_STALE:
        if (st == AT_STATE_RUNNING)
            return at_store_error(be->store, AT_ERR_STALE, 0, "job %s: token %llu is not its current lease", id,
                                  (unsigned long long)token);
        return at_store_error(be->store, AT_ERR_STALE, 0, "job %s is %s: the lease is over", id, state_text(st));
    case AT_ERR_CANCELLED:
        return at_store_error(be->store, AT_ERR_CANCELLED, 0, "job %s was cancelled", id);
    case AT_ERR_TERMINAL:
        return at_store_error(be->store, AT_ERR_TERMINAL, 0, "job %s is already %s", id, state_text(st));
    case AT_ERR_STATE:
        return at_store_error(be->store, AT_ERR_STATE, 0, "job %s is %s, not dead", id, state_text(st));
    default:
        return at_store_error(be->store, AT_ERR_INTERNAL, 0, "a redis script answered code %lld", code);
    }
}

/* A function that appends a script's arguments after the queue's keys. */
typedef void (*args_fn)(argv_t *a, at_backend *be, const uint8_t bid[16], void *ctx);

/*
 * Run script `sc` on the queue of job `id`.  The queue comes from the cache
 * when this process saw the job, else from locate().  A script that finds no
 * such job in a cached queue ({-3, ...} or a nil first element) is retried
 * after a real locate: the cache entry may be stale (the job was purged and
 * the id is unknown now, or the slot was reused).
 */
static int run_on(at_backend *be, struct rconn *conn, size_t qi, const uint8_t bid[16], int sc, args_fn args,
                  void *ctx, redisReply **out, const char *what)
{
    argv_t a;
    av_init(&a);
    av_script(&a, be, sc, QKEYS);
    av_qkeys(&a, be, qi);
    args(&a, be, bid, ctx);
    av_tail(&a, be);
    int rc = run1(be, conn, &a, sc, out, what);
    av_free(&a);
    return rc;
}

/* The script found no such job: {-3, ...}, or a nil record from get. */
static bool reply_missing(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
           ((r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == AT_ERR_NOTFOUND) ||
            r->element[0]->type == REDIS_REPLY_NIL);
}

static int with_job(at_backend *be, const char *id, int sc, args_fn args, void *ctx, redisReply **out,
                    size_t *qi_out, const char *what)
{
    uint8_t bid[16];
    if (at_id_parse(bid, id))
        return at_store_error(be->store, AT_ERR_INVAL, 0, "'%s' is not a job id", id);
    struct rconn *conn = NULL;
    int rc = acquire(be, &conn);
    if (rc)
        return rc;
    long cached = loc_get(be, bid);
    size_t qi = cached >= 0 ? (size_t)cached : 0;
    if (cached < 0)
        rc = locate(be, conn, bid, &qi);
    redisReply *r = NULL;
    if (rc == 0)
        rc = run_on(be, conn, qi, bid, sc, args, ctx, &r, what);
    if (rc == 0 && cached >= 0 && reply_missing(r)) {
        /* A stale cache entry (the job was purged, or another id took
         * the slot): ask the queues. */
        freeReplyObject(r);
        r = NULL;
        loc_drop(be, bid);
        rc = locate(be, conn, bid, &qi);
        if (rc == 0)
            rc = run_on(be, conn, qi, bid, sc, args, ctx, &r, what);
    }
    release(be, conn, false);
    if (rc == AT_ERR_NOTFOUND)
        return at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s", id);
    if (rc)
        return rc;
    *out = r;
    if (qi_out)
        *qi_out = qi;
    return 0;
}

static void args_id(argv_t *a, at_backend *be, const uint8_t bid[16], void *ctx)
{
    (void)be;
    (void)ctx;
    av_ext(a, bid, 16);
}

struct ack_ctx {
    uint64_t token;
    const void *result;
    size_t len;
};

static void args_ack(argv_t *a, at_backend *be, const uint8_t bid[16], void *ctx)
{
    struct ack_ctx *c = ctx;
    (void)be;
    av_str(a, "1");
    av_str(a, "0");
    av_ext(a, bid, 16);
    av_u64(a, c->token);
    av_str(a, c->result ? "1" : "0");
    av_ext(a, c->result ? c->result : "", c->result ? c->len : 0);
}

/* One ack the slow way: the queue from locate() when the cache has none. */
static int ack_one(at_backend *be, const char *id, uint64_t token, const void *result, size_t len)
{
    struct ack_ctx c = {token, result, len};
    redisReply *r = NULL;
    int rc = with_job(be, id, SC_ACK, args_ack, &c, &r, NULL, "ack");
    if (rc)
        return rc;
    rc = holder_code(be, id, token, r, NULL);
    freeReplyObject(r);
    return rc;
}

/*
 * Group commit of acks.  Workers ack one job per call, usually from several
 * threads at once, and one script call per job costs the server far more
 * than the job's own work (the call, its round trip and the count updates).
 * So an ack whose queue the cache knows joins a list; the first thread to
 * find no batch under way becomes the leader, takes everything listed, runs
 * one ack script per queue for all of it (pipelined on one connection) and
 * hands each waiting thread its {code, state}.  Acks that arrive meanwhile
 * form the next batch, led by one of their threads.  Nothing waits for a
 * batch to fill: a lone ack goes out at once, as before.  Each thread turns
 * its own reply into its error (messages are per thread); a job the script
 * did not find in the cached queue goes the slow way (locate) in its own
 * thread.
 */
struct ack_req {
    uint8_t bid[16];
    uint64_t token;
    const void *result;
    size_t len;
    size_t qi;
    struct ack_req *next;
    /* Out, under ack_mu: */
    bool done;
    int rc;              /* a failure of the whole batch (connection) */
    long long code, st;  /* the script's answer for this job */
    char msg[256];       /* the message of rc */
};

#define ACK_BATCH_MAX 256

/* Run the ack script once for reqs[0..n) (any queues): each gets its
 * {code, state}, or all get rc (and its message) when the call failed, in
 * which case no job changed (one script is atomic). */
static int ack_run(at_backend *be, struct ack_req **reqs, size_t n)
{
    size_t *qs = at__malloc(n * sizeof *qs), *local = at__malloc(n * sizeof *local), nq = 0;
    argv_t a;
    av_init(&a);
    int rc = qs && local ? 0 : at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory while acking");
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t k = 0;
        while (k < nq && qs[k] != reqs[i]->qi)
            k++;
        if (k == nq)
            qs[nq++] = reqs[i]->qi;
        local[i] = k;
    }
    redisReply *r = NULL;
    struct rconn *conn = NULL;
    if (rc == 0) {
        av_script(&a, be, SC_ACK, (int64_t)nq * QKEYS);
        for (size_t k = 0; k < nq; k++)
            av_qkeys(&a, be, qs[k]);
        av_u64(&a, n);
        for (size_t i = 0; i < n; i++) {
            struct ack_req *q = reqs[i];
            av_u64(&a, local[i]);
            av_ext(&a, q->bid, 16);
            av_u64(&a, q->token);
            av_str(&a, q->result ? "1" : "0");
            av_ext(&a, q->result ? q->result : "", q->result ? q->len : 0);
        }
        av_tail(&a, be);
        rc = acquire(be, &conn);
    }
    if (rc == 0)
        rc = run1(be, conn, &a, SC_ACK, &r, "ack");
    release(be, conn, false);
    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 * n))
        rc = at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from the ack script");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const redisReply *c = r->element[2 * i], *st = r->element[2 * i + 1];
        reqs[i]->code = c->type == REDIS_REPLY_INTEGER ? c->integer : AT_ERR_IO;
        reqs[i]->st = st->type == REDIS_REPLY_INTEGER ? st->integer : 0;
    }
    if (r)
        freeReplyObject(r);
    av_free(&a);
    at__free(qs);
    at__free(local);
    char msg[256] = "";
    if (rc)
        at_store_errmsg(be->store, msg, sizeof msg, NULL);
    for (size_t i = 0; i < n; i++) {
        reqs[i]->rc = rc;
        if (rc)
            memcpy(reqs[i]->msg, msg, sizeof msg);
    }
    return rc;
}

/*
 * at_ack_many: one script for the whole batch, so it is atomic as a whole.
 * Queues come from the cache (the worker claimed these jobs), else from
 * locate(), which runs before anything changes; an id no queue holds is
 * AT_ERR_NOTFOUND.  A job never changes queue, so an id the script does not
 * find in its cached queue is gone (purged): AT_ERR_NOTFOUND too.
 */
static int rd_ack_many(at_backend *be, size_t n, const char *const *ids, const uint64_t *tokens, int32_t *results)
{
    struct ack_req *req = at__calloc(n, sizeof *req);
    struct ack_req **run = at__calloc(n, sizeof *run);
    if (!req || !run) {
        at__free(req);
        at__free(run);
        return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory while acking");
    }
    int rc = 0;
    size_t m = 0;
    struct rconn *conn = NULL;
    for (size_t i = 0; i < n && rc == 0; i++) {
        results[i] = 0;
        req[i].token = tokens[i];
        if (at_id_parse(req[i].bid, ids[i])) {
            rc = at_store_error(be->store, AT_ERR_INVAL, 0, "'%s' is not a job id", ids[i]);
            break;
        }
        long cached = loc_get(be, req[i].bid);
        if (cached >= 0) {
            req[i].qi = (size_t)cached;
        } else {
            if (!conn && (rc = acquire(be, &conn)) != 0)
                break;
            rc = locate(be, conn, req[i].bid, &req[i].qi);
            if (rc == AT_ERR_NOTFOUND) {
                results[i] = AT_ERR_NOTFOUND;
                rc = 0;
                continue;
            }
            if (rc)
                break;
        }
        run[m++] = &req[i];
    }
    release(be, conn, false);
    if (rc == 0 && m > 0)
        rc = ack_run(be, run, m);
    for (size_t i = 0; rc == 0 && i < m; i++) {
        struct ack_req *q = run[i];
        int32_t *res = &results[q - req];
        if (q->code == 0)
            *res = 0;
        else if (q->code == AT_ERR_NOTFOUND || q->code == AT_ERR_STALE || q->code == AT_ERR_CANCELLED)
            *res = (int32_t)q->code;
        else
            rc = at_store_error(be->store, AT_ERR_INTERNAL, 0, "the ack script answered code %lld", q->code);
    }
    if (rc)
        for (size_t i = 0; i < n; i++)
            results[i] = rc;
    at__free(req);
    at__free(run);
    return rc;
}

static int rd_ack(at_backend *be, const char *id, uint64_t token, const void *result, size_t len)
{
    struct ack_req me = {.token = token, .result = result, .len = len};
    if (at_id_parse(me.bid, id))
        return at_store_error(be->store, AT_ERR_INVAL, 0, "'%s' is not a job id", id);
    long cached = loc_get(be, me.bid);
    if (cached < 0)
        return ack_one(be, id, token, result, len);
    me.qi = (size_t)cached;

    pthread_mutex_lock(&be->ack_mu);
    *be->ack_tail = &me;
    be->ack_tail = &me.next;
    while (!me.done && be->ack_leading)
        pthread_cond_wait(&be->ack_cv, &be->ack_mu);
    while (!me.done) {
        /* Lead: take what is listed (ours among it), at most ACK_BATCH_MAX. */
        be->ack_leading = true;
        struct ack_req *reqs[ACK_BATCH_MAX];
        size_t n = 0;
        while (be->ack_head && n < ACK_BATCH_MAX) {
            reqs[n++] = be->ack_head;
            be->ack_head = be->ack_head->next;
        }
        if (!be->ack_head)
            be->ack_tail = &be->ack_head;
        pthread_mutex_unlock(&be->ack_mu);
        ack_run(be, reqs, n);
        pthread_mutex_lock(&be->ack_mu);
        for (size_t i = 0; i < n; i++)
            reqs[i]->done = true;
        be->ack_leading = false;
        pthread_cond_broadcast(&be->ack_cv);
    }
    pthread_mutex_unlock(&be->ack_mu);

    if (me.rc)
        return at_store_error(be->store, me.rc, 0, "%s", me.msg);
    if (me.code == AT_ERR_NOTFOUND) {
        /* A stale cache entry (purged, or the slot reused): ask the queues. */
        loc_drop(be, me.bid);
        return ack_one(be, id, token, result, len);
    }
    redisReply fake_code = {.type = REDIS_REPLY_INTEGER, .integer = me.code};
    redisReply fake_st = {.type = REDIS_REPLY_INTEGER, .integer = me.st};
    redisReply *el[2] = {&fake_code, &fake_st};
    redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = el};
    return holder_code(be, id, token, &r, NULL);
}

struct fail_ctx {
    uint64_t token;
    const char *error;
    uint32_t flags;
    int64_t delay;
};

static void args_fail(argv_t *a, at_backend *be, const uint8_t bid[16], void *ctx)
{
    struct fail_ctx *c = ctx;
    av_str(a, be->channel);
    av_ext(a, bid, 16);
    av_u64(a, c->token);
    av_str(a, c->error ? "1" : "0");
    av_str(a, c->error ? c->error : "");
    av_str(a, (c->flags & AT_FAIL_PERMANENT) ? "1" : "0");
    av_i64(a, c->delay);
}

static int rd_fail(int32_t *state_out, at_backend *be, const char *id, uint64_t token, const char *error,
                   uint32_t flags, int64_t delay)
{
    struct fail_ctx c = {token, error, flags, delay};
    redisReply *r = NULL;
    int rc = with_job(be, id, SC_FAIL, args_fail, &c, &r, NULL, "fail");
    if (rc)
        return rc;
    long long st = 0;
    rc = holder_code(be, id, token, r, &st);
    freeReplyObject(r);
    /* A state the library does not know would reach the host as one. */
    if ((rc == 0 || rc == AT_ERR_CANCELLED) && (st < AT_STATE_WAITING || st > AT_STATE_CANCELLED))
        return at_store_error(be->store, AT_ERR_IO, 0, "unexpected state %lld from the fail script", st);
    if (rc == 0 || rc == AT_ERR_CANCELLED)
        *state_out = (int32_t)st;
    return rc;
}

/* Arguments of the scripts that take a job's token and a duration (touch:
 * the extension, release: the delay). */
struct token_ms {
    uint64_t token;
    int64_t ms;
};

static void args_token_ms(argv_t *a, at_backend *be, const uint8_t bid[16], void *ctx)
{
    struct token_ms *c = ctx;
    (void)be;
    av_ext(a, bid, 16);
    av_u64(a, c->token);
    av_i64(a, c->ms);
}

/* A holder's call (touch, release): the script's reply becomes the holder's
 * outcome as for ack. */
static int token_ms_call(at_backend *be, const char *id, int script, uint64_t token, int64_t ms, const char *what)
{
    struct token_ms c = {token, ms};
    redisReply *r = NULL;
    int rc = with_job(be, id, script, args_token_ms, &c, &r, NULL, what);
    if (rc)
        return rc;
    rc = holder_code(be, id, token, r, NULL);
    freeReplyObject(r);
    return rc;
}

static int rd_touch(at_backend *be, const char *id, uint64_t token, int64_t extend)
{
    return token_ms_call(be, id, SC_TOUCH, token, extend, "touch");
}

static int rd_cancel(int32_t *pending, at_backend *be, const char *id)
{
    redisReply *r = NULL;
    int rc = with_job(be, id, SC_CANCEL, args_id, NULL, &r, NULL, "cancel");
    if (rc)
        return rc;
    long long st = 0;
    rc = holder_code(be, id, 0, r, &st);
    freeReplyObject(r);
    if (rc == 0)
        *pending = st != 0; /* the script's 1 or 0; the API promises no other value */
    return rc;
}

static void args_get(argv_t *a, at_backend *be, const uint8_t bid[16], void *ctx)
{
    (void)be;
    (void)ctx;
    av_str(a, "0");
    av_ext(a, bid, 16);
}

static int rd_get(at_job **out, at_backend *be, const char *id)
{
    redisReply *r = NULL;
    size_t qi = 0;
    int rc = with_job(be, id, SC_GET, args_get, NULL, &r, &qi, "get");
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        freeReplyObject(r);
        return at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from the get script");
    }
    if (r->element[0]->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s", id);
    }
    uint8_t bid[16];
    at_id_parse(bid, id);
    rc = decode_job(be, out, bid, queue_name(be, qi), r->element[0], r->element[1], r->element[2]);
    freeReplyObject(r);
    return rc;
}

/* --------------------------------------------------------------- enqueue */

/* Queue names not yet known to be in the store's queue set: SADD, sent in
 * the same write as the script (a queue set entry without jobs is harmless,
 * and a store that held a queue keeps listing it, as memory: does). */
static void av_register(argv_t *a, at_backend *be, const size_t *qs, size_t nq, bool *any)
{
    *any = false;
    for (size_t i = 0; i < nq; i++) {
        pthread_mutex_lock(&be->mu);
        bool reg = be->q[qs[i]].registered;
        const char *name = be->q[qs[i]].name;
        pthread_mutex_unlock(&be->mu);
        if (reg)
            continue;
        if (!*any) {
            av_str(a, "SADD");
            av_str(a, be->k_queues);
            *any = true;
        }
        av_str(a, name);
    }
}

/* The (status, id) pairs an enqueue or workflow script returns for its
 * items, from `pairs`: each item's outcome and id, and where new jobs live. */
static int read_created(at_backend *be, at_enqueue_item *items, size_t n, redisReply **pairs,
                        const uint8_t (*bids)[16], const size_t *qi)
{
    for (size_t i = 0; i < n; i++) {
        redisReply *st = pairs[2 * i], *id = pairs[2 * i + 1];
        if (id->type != REDIS_REPLY_STRING || id->len != 16)
            return at_store_error(be->store, AT_ERR_CORRUPT, 0, "an idempotency key of prefix %s holds no job id",
                                  be->prefix);
        items[i].status = st->integer == 0 ? 0 : AT_ERR_DUPLICATE;
        at_id_format(items[i].result_id, (const uint8_t *)id->str);
        if (st->integer == 0)
            loc_put(be, bids[i], qi[i]);
    }
    return 0;
}

/* The WAIT reply `w` after a write (wait_replicas set): enough replicas? */
static int check_replicas(at_backend *be, const redisReply *w, const char *what, const char *pronoun)
{
    if (w->type == REDIS_REPLY_INTEGER && w->integer >= be->wait_replicas)
        return 0;
    return at_store_error(be->store, AT_ERR_TIMEOUT, 0,
                          "%s written on the master but only %lld of %d replicas confirmed %s within %lld ms "
                          "(wait_replicas)",
                          what, w->type == REDIS_REPLY_INTEGER ? w->integer : 0LL, be->wait_replicas, pronoun,
                          (long long)(be->timeout_ms * 3 / 4));
}

static int rd_enqueue(at_backend *be, at_enqueue_item *items, size_t n)
{
    size_t *qi = at__calloc(n, sizeof *qi);   /* queue index of item i */
    size_t *local = at__calloc(n, sizeof *local); /* its position among the call's queues */
    size_t *qs = at__calloc(n, sizeof *qs);   /* the call's distinct queues */
    unsigned char *cls = at__malloc(n * (CLASS_HEAD + AT_NAME_MAX));
    unsigned char *tps = at__malloc((n ? n : 1) * TP_LEN); /* item i's packed traceparent */
    int rc = (!qi || !local || !qs || !cls || !tps) ? AT_ERR_NOMEM : 0;
    size_t nq = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *tp = items[i].job.traceparent;
        if (tp && !tp_pack(tps + i * TP_LEN, tp)) {
            rc = at_store_error(be->store, AT_ERR_INVAL, 0, "job %zu: '%.60s' is not a W3C traceparent", i,
                                tp);
            break;
        }
        long q = queue_index(be, items[i].job.queue, strlen(items[i].job.queue));
        if (q < 0) {
            rc = AT_ERR_NOMEM;
            break;
        }
        qi[i] = (size_t)q;
        size_t k = 0;
        while (k < nq && qs[k] != (size_t)q)
            k++;
        if (k == nq)
            qs[nq++] = (size_t)q;
        local[i] = k;
    }
    argv_t cmds[3];
    for (int i = 0; i < 3; i++)
        av_init(&cmds[i]);
    uint8_t(*bids)[16] = rc == 0 ? at__malloc(n * 16) : NULL;
    if (rc == 0 && !bids)
        rc = AT_ERR_NOMEM;
    size_t ncmd = 0;
    int scripts[3] = {-1, -1, -1};
    if (rc == 0) {
        bool reg = false;
        av_register(&cmds[0], be, qs, nq, &reg);
        if (reg)
            ncmd++;
        argv_t *a = &cmds[ncmd];
        scripts[ncmd] = SC_ENQUEUE;
        av_script(a, be, SC_ENQUEUE, 2 + (int64_t)nq * QKEYS);
        av_str(a, be->k_idem);
        av_str(a, be->k_idemx);
        for (size_t k = 0; k < nq; k++)
            av_qkeys(a, be, qs[k]);
        av_str(a, be->channel);
        av_u64(a, nq);
        av_u64(a, n);
        for (size_t i = 0; i < n; i++) {
            const at_job_info *j = &items[i].job;
            at_id_parse(bids[i], j->id);
            av_u64(a, local[i]);
            av_ext(a, bids[i], 16);
            av_i64(a, j->priority);
            if (j->run_at == AT_TIME_NONE)
                av_str(a, "");
            else
                av_i64(a, j->run_at);
            av_i64(a, j->delay_ms);
            unsigned char *c = cls + i * (CLASS_HEAD + AT_NAME_MAX);
            av_ext(a, c, class_encode(c, j));
            av_str(a, j->idempotency_key ? j->idempotency_key : "");
            av_i64(a, j->idempotency_ttl_ms);
            av_ext(a, j->payload ? j->payload : "", j->payload_len);
            av_ext(a, tps + i * TP_LEN, j->traceparent ? TP_LEN : 0);
        }
        av_tail(a, be);
        ncmd++;
        if (be->wait_replicas > 0) {
            argv_t *w = &cmds[ncmd++];
            /* WAIT gives up before the socket's own timeout would, so its
             * answer (how many replicas have the jobs) still arrives. */
            av_str(w, "WAIT");
            av_i64(w, be->wait_replicas);
            av_i64(w, be->timeout_ms * 3 / 4 > 0 ? be->timeout_ms * 3 / 4 : 1);
        }
    }
    struct rconn *conn = NULL;
    if (rc == AT_ERR_NOMEM)
        rc = at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory while enqueueing");
    if (rc == 0)
        rc = acquire(be, &conn);
    redisReply *rs[3] = {NULL, NULL, NULL};
    if (rc == 0)
        rc = pipeline(be, conn, ncmd, cmds, scripts, rs, "enqueue");
    size_t si = ncmd - (be->wait_replicas > 0 ? 2 : 1); /* the script's reply */
    bool broken = false;
    if (rc == 0 && rs[si]->type == REDIS_REPLY_ERROR)
        rc = reply_error(be, rs[si], "enqueue", &broken);
    if (rc == 0 && (rs[si]->type != REDIS_REPLY_ARRAY || rs[si]->elements != 2 * n))
        rc = at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from the enqueue script");
    if (rc == 0) {
        if (si > 0 && rs[0]->type != REDIS_REPLY_ERROR)
            for (size_t k = 0; k < nq; k++) {
                pthread_mutex_lock(&be->mu);
                be->q[qs[k]].registered = true;
                pthread_mutex_unlock(&be->mu);
            }
        redisReply *r = rs[si];
        rc = read_created(be, items, n, r->element, bids, qi);
        if (rc == 0 && be->wait_replicas > 0)
            rc = check_replicas(be, rs[si + 1], "the jobs were", "them");
    }
    for (size_t i = 0; i < ncmd; i++) {
        if (rs[i])
            freeReplyObject(rs[i]);
        av_free(&cmds[i]);
    }
    release(be, conn, broken);
    at__free(bids);
    at__free(cls);
    at__free(tps);
    at__free(qs);
    at__free(local);
    at__free(qi);
    return rc;
}

/* ----------------------------------------------------------------- claim */

static int rd_claim(at_job **jobs, size_t *n_out, int64_t *wake, at_backend *be, const char *const *queues,
                    size_t nqueues, size_t max)
{
    *n_out = 0;
    *wake = AT_TIME_NONE;
    size_t qs[AT__MAX_QUEUES_PER_POLL];
    for (size_t i = 0; i < nqueues; i++) {
        long q = queue_index(be, queues[i], strlen(queues[i]));
        if (q < 0)
            return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory while claiming");
        qs[i] = (size_t)q;
    }
    argv_t a;
    av_init(&a);
    av_script(&a, be, SC_CLAIM, (int64_t)nqueues * QKEYS);
    for (size_t i = 0; i < nqueues; i++)
        av_qkeys(&a, be, qs[i]);
    av_str(&a, be->channel);
    av_u64(&a, max);
    av_u64(&a, nqueues);
    av_tail(&a, be);
    struct rconn *conn = NULL;
    int rc = acquire(be, &conn);
    redisReply *r = NULL;
    if (rc == 0)
        rc = run1(be, conn, &a, SC_CLAIM, &r, "claim");
    release(be, conn, false);
    av_free(&a);
    if (rc)
        return rc;
    /* More than max jobs would overrun the caller's array. */
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || (r->elements - 3) % 4 != 0 ||
        (r->elements - 3) / 4 > max || r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER || r->element[2]->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from the claim script");
    }
    /* Records this library did not write, found at the head of READY: the
     * script moved them to the dead index rather than lose the valid jobs
     * popped with them, or stall the queue behind them. */
    if (r->element[2]->integer > 0)
        at__log(AT_LOG_WARN, "redis", NULL, AT_ERR_CORRUPT,
                "claim set aside %lld unreadable job record(s) of queue(s) %s%s as DEAD (key prefix %s); "
                "at_get names the damage, purging DEAD jobs removes them",
                (long long)r->element[2]->integer, queues[0], nqueues > 1 ? ", ..." : "", be->prefix);
    int64_t srv_now = r->element[0]->integer, due = r->element[1]->integer;
    if (due >= 0) {
        /* Server time to this host's monotonic clock.  The reply left the
         * server before we read our clock, so this is late by the trip
         * back, never early; +1 covers the server's ms rounding. */
        int64_t d = due - srv_now;
        *wake = at_store_clock_mono(be->store) + (d > 0 ? d : 0) + 1;
    }
    size_t n = 0;
    for (size_t k = 3; k + 3 < r->elements && rc == 0; k += 4) {
        redisReply *q = r->element[k], *id = r->element[k + 1];
        if (q->type != REDIS_REPLY_INTEGER || q->integer < 0 || (size_t)q->integer >= nqueues ||
            id->type != REDIS_REPLY_STRING || id->len != 16) {
            rc = at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from the claim script");
            break;
        }
        size_t qi = qs[q->integer];
        /* A snapshot that cannot be made loses nothing: the job stays
         * RUNNING and returns when its lease runs out. */
        rc = decode_job(be, &jobs[n], (const uint8_t *)id->str, queues[q->integer], r->element[k + 2],
                        r->element[k + 3], NULL);
        if (rc == 0) {
            loc_put(be, (const uint8_t *)id->str, qi);
            n++;
        }
    }
    freeReplyObject(r);
    *n_out = n;
    return n > 0 ? 0 : rc;
}

/* ------------------------------------------------------------ many queues */

/* Run `sc` on every queue in qs (pipelined), with extra args from mk; the
 * replies are handed to `each`, which returns a negative code to stop. */
typedef void (*qargs_fn)(argv_t *a, at_backend *be, size_t qi, void *ctx);
typedef int (*qreply_fn)(at_backend *be, size_t qi, const redisReply *r, void *ctx);

static int per_queue(at_backend *be, struct rconn *conn, int sc, const size_t *qs, size_t nq, qargs_fn mk,
                     qreply_fn each, void *ctx, const char *what)
{
    if (nq == 0)
        return 0;
    argv_t *cmds = at__calloc(nq, sizeof *cmds);
    redisReply **rs = at__calloc(nq, sizeof *rs);
    int *scs = at__calloc(nq, sizeof *scs);
    if (!cmds || !rs || !scs) {
        at__free(cmds);
        at__free(rs);
        at__free(scs);
        return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory during %s", what);
    }
    for (size_t i = 0; i < nq; i++) {
        av_init(&cmds[i]);
        av_script(&cmds[i], be, sc, QKEYS);
        av_qkeys(&cmds[i], be, qs[i]);
        if (mk)
            mk(&cmds[i], be, qs[i], ctx);
        av_tail(&cmds[i], be);
        scs[i] = sc;
    }
    int rc = pipeline(be, conn, nq, cmds, scs, rs, what);
    for (size_t i = 0; i < nq; i++) {
        if (rc == 0) {
            if (rs[i]->type == REDIS_REPLY_ERROR)
                rc = reply_error(be, rs[i], what, NULL);
            else
                rc = each(be, qs[i], rs[i], ctx);
        }
        if (rs[i])
            freeReplyObject(rs[i]);
        av_free(&cmds[i]);
    }
    at__free(cmds);
    at__free(rs);
    at__free(scs);
    return rc;
}

/* The queues an operation covers: one named queue, or all. */
static int pick_queues(at_backend *be, struct rconn *conn, const char *queue, size_t **qs, size_t *nq)
{
    if (!queue)
        return all_queues(be, conn, qs, nq);
    *qs = at__malloc(sizeof **qs);
    if (!*qs)
        return AT_ERR_NOMEM;
    long q = queue_index(be, queue, strlen(queue));
    if (q < 0) {
        at__free(*qs);
        *qs = NULL;
        return AT_ERR_NOMEM;
    }
    (*qs)[0] = (size_t)q;
    *nq = 1;
    return 0;
}

/* ----------------------------------------------------------------- stats */

static int stats_reply(at_backend *be, size_t qi, const redisReply *r, void *ctx)
{
    at_stats *st = ctx;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 8)
        return at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from the stats script");
    uint64_t counts[AT_STATE_COUNT__] = {0};
    for (int s = 1; s < AT_STATE_COUNT__; s++) {
        long long v = r->element[s - 1]->integer;
        counts[s] = v > 0 ? (uint64_t)v : 0;
    }
    long long due = r->element[7]->integer;
    return at_stats_add_queue(st, queue_name(be, qi), counts, due >= 0 ? due : AT_TIME_NONE);
}

static int rd_stats(at_stats *st, at_backend *be)
{
    struct rconn *conn = NULL;
    int rc = acquire(be, &conn);
    if (rc)
        return rc;
    size_t *qs = NULL, nq = 0;
    rc = all_queues(be, conn, &qs, &nq);
    if (rc == 0)
        rc = per_queue(be, conn, SC_STATS, qs, nq, NULL, stats_reply, st, "stats");
    at__free(qs);
    release(be, conn, false);
    return rc;
}

/* ----------------------------------------------------------------- purge */

struct purge_ctx {
    int64_t older;
    uint64_t n;
    size_t *again; /* queues with more to delete */
    size_t nagain;
};

static void purge_args(argv_t *a, at_backend *be, size_t qi, void *ctx)
{
    struct purge_ctx *c = ctx;
    (void)be;
    (void)qi;
    av_i64(a, c->older);
    av_i64(a, CHUNK);
}

static int purge_reply(at_backend *be, size_t qi, const redisReply *r, void *ctx)
{
    struct purge_ctx *c = ctx;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from the purge script");
    c->n += (uint64_t)r->element[0]->integer;
    if (r->element[1]->integer)
        c->again[c->nagain++] = qi;
    return 0;
}

static int rd_purge(uint64_t *n_out, at_backend *be, int64_t older)
{
    *n_out = 0;
    struct rconn *conn = NULL;
    int rc = acquire(be, &conn);
    if (rc)
        return rc;
    size_t *qs = NULL, nq = 0;
    rc = all_queues(be, conn, &qs, &nq);
    struct purge_ctx c = {older, 0, NULL, 0};
    c.again = at__calloc(nq ? nq : 1, sizeof *c.again);
    if (rc == 0 && !c.again)
        rc = AT_ERR_NOMEM;
    /* Each round deletes up to CHUNK per zset per queue; queues that had
     * more go again.  No call holds the server for long. */
    while (rc == 0 && nq > 0) {
        c.nagain = 0;
        rc = per_queue(be, conn, SC_PURGE, qs, nq, purge_args, purge_reply, &c, "purge");
        memcpy(qs, c.again, c.nagain * sizeof *qs);
        nq = c.nagain;
    }
    for (int more = 1; rc == 0 && more;) {
        argv_t a;
        av_init(&a);
        av_script(&a, be, SC_PURGE_KEYS, 2);
        av_str(&a, be->k_idem);
        av_str(&a, be->k_idemx);
        av_i64(&a, CHUNK);
        redisReply *r = NULL;
        rc = run1(be, conn, &a, SC_PURGE_KEYS, &r, "purge");
        av_free(&a);
        if (rc == 0) {
            more = r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->integer == 1;
            freeReplyObject(r);
        }
    }
    at__free(c.again);
    at__free(qs);
    release(be, conn, false);
    *n_out = c.n;
    return rc;
}

/* --------------------------------------------------------------- requeue */

static void requeue_args(argv_t *a, at_backend *be, size_t qi, void *ctx)
{
    (void)qi;
    (void)ctx;
    av_str(a, be->channel);
    av_str(a, "all");
    av_i64(a, CHUNK);
}

struct requeue_ctx {
    uint64_t n;
    size_t *again;
    size_t nagain;
};

static int requeue_reply(at_backend *be, size_t qi, const redisReply *r, void *ctx)
{
    struct requeue_ctx *c = ctx;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from the requeue script");
    long long moved = r->element[1]->integer;
    c->n += (uint64_t)moved;
    if (moved >= CHUNK)
        c->again[c->nagain++] = qi;
    return 0;
}

static void args_requeue_one(argv_t *a, at_backend *be, const uint8_t bid[16], void *ctx)
{
    (void)ctx;
    av_str(a, be->channel);
    av_str(a, "one");
    av_ext(a, bid, 16);
}

static int rd_requeue(uint64_t *n_out, at_backend *be, const char *queue, const char *id)
{
    *n_out = 0;
    if (id) {
        redisReply *r = NULL;
        int rc = with_job(be, id, SC_REQUEUE, args_requeue_one, NULL, &r, NULL, "requeue");
        if (rc)
            return rc;
        long long moved = 0;
        rc = holder_code(be, id, 0, r, &moved);
        freeReplyObject(r);
        if (rc == 0)
            *n_out = (uint64_t)moved;
        return rc;
    }
    struct rconn *conn = NULL;
    int rc = acquire(be, &conn);
    if (rc)
        return rc;
    size_t *qs = NULL, nq = 0;
    rc = pick_queues(be, conn, queue, &qs, &nq);
    struct requeue_ctx c = {0, NULL, 0};
    c.again = at__calloc(nq ? nq : 1, sizeof *c.again);
    if (rc == 0 && !c.again)
        rc = AT_ERR_NOMEM;
    while (rc == 0 && nq > 0) {
        c.nagain = 0;
        rc = per_queue(be, conn, SC_REQUEUE, qs, nq, requeue_args, requeue_reply, &c, "requeue");
        memcpy(qs, c.again, c.nagain * sizeof *qs);
        nq = c.nagain;
    }
    at__free(c.again);
    at__free(qs);
    release(be, conn, false);
    *n_out = c.n;
    return rc;
}

/* A requeue of one id restricted to a queue: the job must be in it. */
static int rd_requeue_checked(uint64_t *n_out, at_backend *be, const char *queue, const char *id)
{
    if (id && queue) {
        uint8_t bid[16];
        if (at_id_parse(bid, id))
            return at_store_error(be->store, AT_ERR_INVAL, 0, "'%s' is not a job id", id);
        long q = queue_index(be, queue, strlen(queue));
        if (q < 0)
            return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory");
        *n_out = 0;
        struct rconn *conn = NULL;
        int rc = acquire(be, &conn);
        if (rc)
            return rc;
        argv_t a;
        av_init(&a);
        av_script(&a, be, SC_REQUEUE, QKEYS);
        av_qkeys(&a, be, (size_t)q);
        args_requeue_one(&a, be, bid, NULL);
        av_tail(&a, be);
        redisReply *r = NULL;
        rc = run1(be, conn, &a, SC_REQUEUE, &r, "requeue");
        av_free(&a);
        release(be, conn, false);
        if (rc)
            return rc;
        long long moved = 0;
        rc = holder_code(be, id, 0, r, &moved);
        freeReplyObject(r);
        if (rc == AT_ERR_NOTFOUND)
            return at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s in queue %s", id, queue);
        if (rc == 0)
            *n_out = (uint64_t)moved;
        return rc;
    }
    return rd_requeue(n_out, be, queue, id);
}

/* ------------------------------------------------------------------ list */

/* The `limit` smallest ids above the cursor, kept sorted (plus one more, to
 * know whether a next page exists). */
struct cand {
    uint8_t id[16];
    size_t qi;
};

struct list_ctx {
    struct cand *c;
    size_t n, cap; /* cap = limit + 1 */
    const uint8_t *after;
};

static void cand_add(struct list_ctx *l, const uint8_t *id, size_t qi)
{
    if (l->after && memcmp(id, l->after, 16) <= 0)
        return;
    if (l->n == l->cap && memcmp(id, l->c[l->n - 1].id, 16) >= 0)
        return;
    /* Binary search for the place; HSCAN may return an element twice. */
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = memcmp(l->c[mid].id, id, 16);
        if (c == 0)
            return;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (l->n == l->cap)
        l->n--;
    memmove(&l->c[lo + 1], &l->c[lo], (l->n - lo) * sizeof *l->c);
    memcpy(l->c[lo].id, id, 16);
    l->c[lo].qi = qi;
    l->n++;
}

/* HSCAN one queue through the scan script, step by step: each step is a
 * short script, so a large queue never blocks the server (ADR 0008). */
static int scan_queue(at_backend *be, struct rconn *conn, size_t qi, int32_t state, struct list_ctx *l)
{
    char cursor[32] = "0";
    do {
        argv_t a;
        av_init(&a);
        av_script(&a, be, SC_SCAN, QKEYS);
        av_qkeys(&a, be, qi);
        av_str(&a, cursor);
        av_i64(&a, SCAN_COUNT);
        av_i64(&a, state);
        av_tail(&a, be);
        redisReply *r = NULL;
        int rc = run1(be, conn, &a, SC_SCAN, &r, "list");
        av_free(&a);
        if (rc)
            return rc;
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[0]->len >= sizeof cursor || (r->elements - 1) % 2 != 0) {
            freeReplyObject(r);
            return at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from the scan script");
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        for (size_t k = 1; k + 1 < r->elements; k += 2) {
            redisReply *id = r->element[k];
            if (id->type == REDIS_REPLY_STRING && id->len == 16)
                cand_add(l, (const uint8_t *)id->str, qi);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* The records of c[0..take) into tmp[] (NULL for a job gone or no longer
 * in `state`), one get script per queue.  c[i].qi is consumed (SIZE_MAX). */
static int fetch_page(at_backend *be, struct rconn *conn, struct cand *c, size_t take, int32_t state, at_job **tmp,
                      const char *what)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < take; i++) {
        if (c[i].qi == SIZE_MAX)
            continue; /* fetched with an earlier job of its queue */
        size_t qi = c[i].qi;
        argv_t a;
        av_init(&a);
        av_script(&a, be, SC_GET, QKEYS);
        av_qkeys(&a, be, qi);
        av_i64(&a, state);
        size_t first = i, cnt = 0;
        for (size_t k = i; k < take; k++)
            if (c[k].qi == qi) {
                av_ext(&a, c[k].id, 16);
                cnt++;
            }
        av_tail(&a, be);
        redisReply *r = NULL;
        rc = run1(be, conn, &a, SC_GET, &r, what);
        av_free(&a);
        if (rc)
            break;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 * cnt) {
            freeReplyObject(r);
            rc = at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from the get script");
            break;
        }
        size_t e = 0;
        for (size_t k = first; k < take && rc == 0; k++) {
            if (c[k].qi != qi)
                continue;
            if (r->element[e]->type != REDIS_REPLY_NIL)
                rc = decode_job(be, &tmp[k], c[k].id, queue_name(be, qi), r->element[e], r->element[e + 1],
                                r->element[e + 2]);
            e += 3;
            c[k].qi = SIZE_MAX;
        }
        freeReplyObject(r);
    }
    return rc;
}

static int rd_list(at_job **jobs, size_t *n_out, char *cursor_out, at_backend *be, const char *queue,
                   int32_t state, const char *cursor, size_t limit)
{
    *n_out = 0;
    uint8_t after[16];
    if (cursor && at_id_parse(after, cursor))
        return at_store_error(be->store, AT_ERR_INVAL, 0, "'%s' is not a cursor of this store", cursor);
    struct list_ctx l = {NULL, 0, limit + 1, cursor ? after : NULL};
    l.c = at__malloc((limit + 1) * sizeof *l.c);
    if (!l.c)
        return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory while listing");
    struct rconn *conn = NULL;
    int rc = acquire(be, &conn);
    size_t *qs = NULL, nq = 0;
    if (rc == 0)
        rc = pick_queues(be, conn, queue, &qs, &nq);
    for (size_t i = 0; rc == 0 && i < nq; i++)
        rc = scan_queue(be, conn, qs[i], state, &l);
    bool more = l.n > limit;
    size_t take = more ? limit : l.n;
    /* Fetch the page's records, queue by queue (one script per queue and
     * page); a job that left the state meanwhile is skipped. */
    size_t n = 0;
    at_job **tmp = at__calloc(take ? take : 1, sizeof *tmp);
    if (rc == 0 && !tmp)
        rc = AT_ERR_NOMEM;
    if (rc == 0)
        rc = fetch_page(be, conn, l.c, take, state, tmp, "list");
    release(be, conn, false);
    if (rc == 0) {
        for (size_t i = 0; i < take; i++)
            if (tmp && tmp[i])
                jobs[n++] = tmp[i];
        /* The last candidate of the page, even if it left meanwhile:
         * everything before it was in this page or is gone. */
        if (more && take > 0)
            at_id_format(cursor_out, l.c[take - 1].id);
    } else if (tmp) {
        for (size_t i = 0; i < take; i++)
            at_job_free(tmp[i]);
    }
    at__free(tmp);
    at__free(qs);
    at__free(l.c);
    *n_out = n;
    return rc;
}

/* ------------------------------------------------------------- workflows */

/*
 * Workflows (ADR 0008, "Workflows").  A job of a workflow carries a
 * workflow part in its record (flag F_WF); its workflow's dependency state
 * lives under {P/wf:W}.  Submission is one script with every key it needs
 * in KEYS (the queues of the items, of existing parents and of the guard,
 * and the workflows' keys), except the queue of a job that holds a
 * duplicate's idempotency key, which only the script learns.  Transitions
 * of workflow jobs run in the queue scripts and reach the workflow's keys
 * and the children's queues by name (not Cluster-ready; the ADR says why).
 */

#define WKEY_MAX (PREFIX_MAX + AT_ID_SIZE + 16)

static int run_cmd(at_backend *be, int sc, argv_t *a, redisReply **out, const char *what);
static int bad_reply(at_backend *be, redisReply *r, const char *what);

static size_t wf_key(char out[WKEY_MAX], at_backend *be, const char *wf, char suffix)
{
    return (size_t)snprintf(out, WKEY_MAX, "{%s/" WF_TAG ":%s}:%c", be->prefix, wf, suffix);
}

/* 16-byte id -> index + 1, open addressing: ids of one submission (up to
 * AT_WORKFLOW_MAX_NODES items and their parents) looked up in O(1). */
struct idmap {
    uint8_t (*id)[16];
    size_t *val;
    size_t mask;
};

static int idmap_init(struct idmap *m, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    m->id = at__malloc(cap * 16);
    m->val = at__calloc(cap, sizeof *m->val);
    m->mask = cap - 1;
    return m->id && m->val ? 0 : AT_ERR_NOMEM;
}

static void idmap_free(struct idmap *m)
{
    at__free(m->id);
    at__free(m->val);
}

/* The slot of id: its value, or 0 for a free slot the caller may fill. */
static size_t *idmap_slot(struct idmap *m, const uint8_t id[16])
{
    uint64_t h = get_le(id + 8, 8) ^ (get_le(id, 8) * 0x9e3779b97f4a7c15ull);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    size_t i = (size_t)(h >> 17) & m->mask;
    while (m->val[i] && memcmp(m->id[i], id, 16) != 0)
        i = (i + 1) & m->mask;
    if (!m->val[i])
        memcpy(m->id[i], id, 16);
    return &m->val[i];
}

/* Local index of queue qi among qs[0..*nq), appended when new. */
static size_t local_queue(size_t *qs, size_t *nq, size_t qi)
{
    for (size_t k = 0; k < *nq; k++)
        if (qs[k] == qi)
            return k;
    qs[*nq] = qi;
    return (*nq)++;
}

/* The queue of job bid: from the cache unless `fresh`, else located.
 * *cached_out says which. */
static int find_queue(at_backend *be, struct rconn *conn, const uint8_t bid[16], bool fresh, size_t *qi_out,
                      bool *cached_out)
{
    long c = fresh ? -1 : loc_get(be, bid);
    *cached_out = c >= 0;
    if (c >= 0) {
        *qi_out = (size_t)c;
        return 0;
    }
    return locate(be, conn, bid, qi_out);
}

/* One submission attempt.  *stale_out: a job whose queue came from the
 * cache was not there (purged, or the slot reused): try again located. */
static int wf_submit_once(at_backend *be, at_enqueue_item *items, size_t n, const char *guard_id,
                          uint64_t guard_token, bool fresh, bool *stale_out)
{
    *stale_out = false;
    size_t nx = 0, nq = 0, nw = 0, npar = 0;
    for (size_t i = 0; i < n; i++)
        npar += items[i].job.parents ? items[i].job.nparents : 0;
    uint8_t(*bids)[16] = at__malloc((n ? n : 1) * 16);
    uint8_t(*xb)[16] = at__malloc((npar + 1) * 16);   /* existing parents */
    bool *xcached = at__calloc(npar + 1, sizeof *xcached);
    size_t *xq = at__malloc((npar + 1) * sizeof *xq); /* their local queue */
    size_t *qi = at__malloc((n ? n : 1) * sizeof *qi);
    size_t *lq = at__malloc((n ? n : 1) * sizeof *lq);
    size_t *lw = at__malloc((n ? n : 1) * sizeof *lw);
    size_t *qs = at__malloc((n + npar + 1) * sizeof *qs);
    size_t *wfs = at__malloc((n ? n : 1) * sizeof *wfs); /* item whose workflow id is workflow k */
    uint8_t *pbuf = at__malloc(npar * 16 + 1);
    unsigned char *cls = at__malloc((n ? n : 1) * (CLASS_HEAD + AT_NAME_MAX));
    unsigned char *tps = at__malloc((n ? n : 1) * TP_LEN); /* item i's packed traceparent */
    struct idmap im = {0}, xm = {0};
    argv_t cmds[3];
    for (int k = 0; k < 3; k++)
        av_init(&cmds[k]);
    redisReply *rs[3] = {NULL, NULL, NULL};
    struct rconn *conn = NULL;
    bool broken = false;
    int rc = 0;
    if (!bids || !xb || !xcached || !xq || !qi || !lq || !lw || !qs || !wfs || !pbuf || !cls || !tps ||
        idmap_init(&im, n) || idmap_init(&xm, npar))
        rc = at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory submitting a workflow of %zu jobs", n);
    /* Items: ids, queues, workflows. */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const at_job_info *j = &items[i].job;
        uint8_t wb[16];
        if (at_id_parse(bids[i], j->id) || !j->workflow_id || at_id_parse(wb, j->workflow_id)) {
            rc = at_store_error(be->store, AT_ERR_INVAL, 0, "workflow job %zu has no valid id or workflow id", i);
            break;
        }
        if (j->node && strlen(j->node) > 255) {
            rc = at_store_error(be->store, AT_ERR_NAME, 0, "node name '%.40s...' is too long", j->node);
            break;
        }
        if (j->traceparent && !tp_pack(tps + i * TP_LEN, j->traceparent)) {
            rc = at_store_error(be->store, AT_ERR_INVAL, 0,
                                "workflow job %zu: '%.60s' is not a W3C traceparent", i, j->traceparent);
            break;
        }
        *idmap_slot(&im, bids[i]) = i + 1;
        long q = queue_index(be, j->queue, strlen(j->queue));
        if (q < 0) {
            rc = at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory submitting a workflow");
            break;
        }
        qi[i] = (size_t)q;
        lq[i] = local_queue(qs, &nq, (size_t)q);
        size_t k = 0;
        while (k < nw && strcmp(items[wfs[k]].job.workflow_id, j->workflow_id) != 0)
            k++;
        if (k == nw)
            wfs[nw++] = i;
        lw[i] = k;
    }
    /* Parents that are not items of this call must exist: their queues. */
    if (rc == 0)
        rc = acquire(be, &conn);
    uint8_t *pp = pbuf;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const at_job_info *j = &items[i].job;
        for (size_t k = 0; rc == 0 && j->parents && k < j->nparents; k++, pp += 16) {
            if (!j->parents[k] || at_id_parse(pp, j->parents[k])) {
                rc = at_store_error(be->store, AT_ERR_INVAL, 0, "parent '%s' of job %s is not a job id",
                                    j->parents[k] ? j->parents[k] : "(null)", j->id);
                break;
            }
            if (*idmap_slot(&im, pp))
                continue;
            size_t *slot = idmap_slot(&xm, pp);
            if (*slot)
                continue;
            size_t q = 0;
            rc = find_queue(be, conn, pp, fresh, &q, &xcached[nx]);
            if (rc == AT_ERR_NOTFOUND)
                rc = at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s (a parent of %s %s): nothing was created",
                                    j->parents[k], j->node ? "node" : "job", j->node ? j->node : j->id);
            if (rc)
                break;
            memcpy(xb[nx], pp, 16);
            xq[nx] = local_queue(qs, &nq, q);
            *slot = ++nx;
        }
    }
    uint8_t gbid[16];
    size_t gq = 0;
    bool gcached = false;
    if (rc == 0 && guard_id) {
        size_t q = 0;
        if (at_id_parse(gbid, guard_id))
            rc = at_store_error(be->store, AT_ERR_INVAL, 0, "'%s' is not a job id", guard_id);
        else
            rc = find_queue(be, conn, gbid, fresh, &q, &gcached);
        if (rc == AT_ERR_NOTFOUND)
            rc = at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s (the spawning job): nothing was created",
                                guard_id);
        if (rc == 0)
            gq = local_queue(qs, &nq, q);
    }
    size_t ncmd = 0, si = 0;
    int scripts[3] = {-1, -1, -1};
    if (rc == 0) {
        bool reg = false;
        av_register(&cmds[0], be, qs, nq, &reg);
        if (reg)
            ncmd++;
        si = ncmd;
        argv_t *a = &cmds[ncmd];
        scripts[ncmd++] = SC_WF_SUBMIT;
        av_script(a, be, SC_WF_SUBMIT, 3 + (int64_t)nq * QKEYS + (int64_t)nw * WKEYS);
        av_str(a, be->k_idem);
        av_str(a, be->k_idemx);
        av_str(a, be->k_queues);
        for (size_t k = 0; k < nq; k++)
            av_qkeys(a, be, qs[k]);
        for (size_t w = 0; w < nw; w++)
            for (int k = 0; k < WKEYS; k++) {
                char key[WKEY_MAX];
                av_copy(a, key, wf_key(key, be, items[wfs[w]].job.workflow_id, k_wf_suffix[k]));
            }
        av_u64(a, nq);
        av_u64(a, nw);
        av_u64(a, n);
        av_u64(a, nx);
        if (guard_id) {
            av_u64(a, gq);
            av_ext(a, gbid, 16);
            av_u64(a, guard_token);
        } else {
            av_str(a, "");
            av_str(a, "");
            av_str(a, "0");
        }
        for (size_t w = 0; w < nw; w++)
            av_str(a, items[wfs[w]].job.workflow_id);
        for (size_t x = 0; x < nx; x++) {
            av_u64(a, xq[x]);
            av_ext(a, xb[x], 16);
        }
        pp = pbuf;
        for (size_t i = 0; i < n; i++) {
            const at_job_info *j = &items[i].job;
            size_t np = j->parents ? j->nparents : 0;
            av_u64(a, lq[i]);
            av_u64(a, lw[i]);
            av_ext(a, bids[i], 16);
            av_i64(a, j->priority);
            if (j->run_at == AT_TIME_NONE)
                av_str(a, "");
            else
                av_i64(a, j->run_at);
            av_i64(a, j->delay_ms);
            unsigned char *c = cls + i * (CLASS_HEAD + AT_NAME_MAX);
            av_ext(a, c, class_encode(c, j));
            av_str(a, j->idempotency_key ? j->idempotency_key : "");
            av_i64(a, j->idempotency_ttl_ms);
            av_ext(a, j->payload ? j->payload : "", j->payload_len);
            av_str(a, j->node ? j->node : "");
            av_i64(a, j->on_parent_failure);
            av_ext(a, pp, np * 16);
            pp += np * 16;
            av_ext(a, tps + i * TP_LEN, j->traceparent ? TP_LEN : 0);
        }
        av_tail(a, be);
        if (be->wait_replicas > 0) {
            argv_t *w = &cmds[ncmd++];
            av_str(w, "WAIT");
            av_i64(w, be->wait_replicas);
            av_i64(w, be->timeout_ms * 3 / 4 > 0 ? be->timeout_ms * 3 / 4 : 1);
        }
        rc = pipeline(be, conn, ncmd, cmds, scripts, rs, "wf_submit");
    }
    redisReply *r = rc == 0 ? rs[si] : NULL;
    if (rc == 0 && r->type == REDIS_REPLY_ERROR)
        rc = reply_error(be, r, "wf_submit", &broken);
    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER))
        rc = at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from the wf_submit script");
    long long code = rc == 0 ? r->element[0]->integer : 0;
    if (rc == 0 && code != 0) {
        long long d = r->elements > 1 && r->element[1]->type == REDIS_REPLY_INTEGER ? r->element[1]->integer : 0;
        if (code == AT_ERR_NOTFOUND) {
            bool was_cached = d < 0 ? gcached : (d < (long long)nx && xcached[d]);
            char id[AT_ID_SIZE];
            if (d >= 0 && d < (long long)nx)
                at_id_format(id, xb[d]);
            else
                snprintf(id, sizeof id, "%s", guard_id ? guard_id : "");
            if (was_cached) {
                loc_drop(be, d < 0 ? gbid : xb[d]);
                *stale_out = true;
            }
            rc = at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s (%s): nothing was created", id,
                                d < 0 ? "the spawning job" : "a parent");
        } else if (code == AT_ERR_STALE) {
            rc = at_store_error(be->store, AT_ERR_STALE, 0,
                                "job %s is %s or claimed under another token than %llu: nothing was spawned",
                                guard_id, state_text(d), (unsigned long long)guard_token);
        } else if (code == AT_ERR_CANCELLED) {
            rc = at_store_error(be->store, AT_ERR_CANCELLED, 0,
                                "job %s was cancelled (or marked for cancellation): nothing was spawned", guard_id);
        } else {
            rc = at_store_error(be->store, AT_ERR_INTERNAL, 0, "the wf_submit script answered code %lld", code);
        }
    } else if (rc == 0 && r->elements != 1 + 2 * n) {
        rc = at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from the wf_submit script");
    }
    if (rc == 0) {
        if (si > 0 && rs[0]->type != REDIS_REPLY_ERROR)
            for (size_t k = 0; k < nq; k++) {
                pthread_mutex_lock(&be->mu);
                be->q[qs[k]].registered = true;
                pthread_mutex_unlock(&be->mu);
            }
        rc = read_created(be, items, n, r->element + 1, bids, qi);
        if (rc == 0 && be->wait_replicas > 0)
            rc = check_replicas(be, rs[si + 1], "the workflow was", "it");
    }
    for (size_t k = 0; k < 3; k++) {
        if (rs[k])
            freeReplyObject(rs[k]);
        av_free(&cmds[k]);
    }
    release(be, conn, broken);
    idmap_free(&im);
    idmap_free(&xm);
    at__free(bids);
    at__free(xb);
    at__free(xcached);
    at__free(xq);
    at__free(qi);
    at__free(lq);
    at__free(lw);
    at__free(qs);
    at__free(wfs);
    at__free(pbuf);
    at__free(cls);
    at__free(tps);
    return rc;
}

static int rd_wf_submit(at_backend *be, at_enqueue_item *items, size_t n, const char *guard_id,
                        uint64_t guard_token)
{
    bool stale = false;
    int rc = wf_submit_once(be, items, n, guard_id, guard_token, false, &stale);
    if (stale)
        rc = wf_submit_once(be, items, n, guard_id, guard_token, true, &stale);
    return rc;
}

static int rd_wf_status(at_backend *be, const char *wf_id, uint64_t counts[AT_STATE_COUNT__])
{
    uint8_t wb[16];
    if (at_id_parse(wb, wf_id))
        return at_store_error(be->store, AT_ERR_INVAL, 0, "'%s' is not a workflow id", wf_id);
    argv_t a;
    av_init(&a);
    av_script(&a, be, SC_WF_STATUS, 2);
    char key[WKEY_MAX];
    av_copy(&a, key, wf_key(key, be, wf_id, 'n'));
    av_copy(&a, key, wf_key(key, be, wf_id, 'q'));
    av_tail(&a, be);
    redisReply *r = NULL;
    int rc = run_cmd(be, SC_WF_STATUS, &a, &r, "wf_status");
    av_free(&a);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 7)
        return bad_reply(be, r, "wf_status");
    uint64_t total = 0;
    counts[0] = 0;
    for (int s = 1; s < AT_STATE_COUNT__; s++) {
        long long v = r->element[s - 1]->type == REDIS_REPLY_INTEGER ? r->element[s - 1]->integer : 0;
        counts[s] = v > 0 ? (uint64_t)v : 0;
        total += counts[s];
    }
    freeReplyObject(r);
    if (total == 0)
        return at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no workflow %s", wf_id);
    return 0;
}

static int rd_wf_cancel(uint64_t *n_out, at_backend *be, const char *wf_id)
{
    uint8_t wb[16];
    if (n_out)
        *n_out = 0;
    if (at_id_parse(wb, wf_id))
        return at_store_error(be->store, AT_ERR_INVAL, 0, "'%s' is not a workflow id", wf_id);
    argv_t a;
    av_init(&a);
    av_script(&a, be, SC_WF_CANCEL, 1);
    char key[WKEY_MAX];
    av_copy(&a, key, wf_key(key, be, wf_id, 'j'));
    av_tail(&a, be);
    redisReply *r = NULL;
    int rc = run_cmd(be, SC_WF_CANCEL, &a, &r, "wf_cancel");
    av_free(&a);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER)
        return bad_reply(be, r, "wf_cancel");
    long long code = r->element[0]->integer, n = r->element[1]->integer;
    freeReplyObject(r);
    if (code == AT_ERR_NOTFOUND)
        return at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no workflow %s", wf_id);
    if (n_out)
        *n_out = n > 0 ? (uint64_t)n : 0;
    return 0;
}

/* A page of the workflow's job index ({P/wf:W}:j, members id .. queue in
 * id order, ZRANGEBYLEX), then the records, one get script per queue. */
static int rd_wf_jobs(at_job **jobs, size_t *n_out, char *cursor_out, at_backend *be, const char *wf_id,
                      const char *cursor, size_t limit)
{
    *n_out = 0;
    uint8_t wb[16], after[16];
    if (at_id_parse(wb, wf_id))
        return at_store_error(be->store, AT_ERR_INVAL, 0, "'%s' is not a workflow id", wf_id);
    if (cursor && at_id_parse(after, cursor))
        return at_store_error(be->store, AT_ERR_INVAL, 0, "'%s' is not a cursor of this store", cursor);
    argv_t a;
    av_init(&a);
    av_str(&a, "ZRANGEBYLEX");
    char key[WKEY_MAX];
    av_copy(&a, key, wf_key(key, be, wf_id, 'j'));
    if (cursor) {
        /* Past every member of the cursor's id: queue names are ASCII. */
        unsigned char min[18];
        min[0] = '(';
        memcpy(min + 1, after, 16);
        min[17] = 0xff;
        av_copy(&a, min, sizeof min);
    } else {
        av_str(&a, "-");
    }
    av_str(&a, "+");
    av_str(&a, "LIMIT");
    av_str(&a, "0");
    av_u64(&a, limit + 1);
    struct rconn *conn = NULL;
    int rc = acquire(be, &conn);
    redisReply *r = NULL;
    if (rc == 0)
        rc = run1(be, conn, &a, -1, &r, "wf_jobs (ZRANGEBYLEX)");
    av_free(&a);
    if (rc == 0 && r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        r = NULL;
        rc = at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from redis to wf_jobs");
    }
    size_t got = r ? r->elements : 0;
    struct cand *c = rc == 0 ? at__calloc(got ? got : 1, sizeof *c) : NULL;
    at_job **tmp = rc == 0 ? at__calloc(got ? got : 1, sizeof *tmp) : NULL;
    if (rc == 0 && (!c || !tmp))
        rc = at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory listing a workflow");
    for (size_t i = 0; rc == 0 && i < got; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len <= 16 || e->len > 16 + AT_NAME_MAX) {
            rc = at_store_error(be->store, AT_ERR_CORRUPT, 0, "workflow %s has an index entry this library did not write",
                                wf_id);
            break;
        }
        long q = queue_index(be, e->str + 16, e->len - 16);
        if (q < 0) {
            rc = at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory listing a workflow");
            break;
        }
        memcpy(c[i].id, e->str, 16);
        c[i].qi = (size_t)q;
    }
    if (r)
        freeReplyObject(r);
    bool more = got > limit;
    size_t take = more ? limit : got;
    uint8_t last[16];
    if (take > 0)
        memcpy(last, c[take - 1].id, 16);
    if (rc == 0)
        rc = fetch_page(be, conn, c, take, AT_STATE_ANY, tmp, "wf_jobs");
    release(be, conn, false);
    size_t n = 0;
    if (rc == 0) {
        for (size_t i = 0; i < take; i++)
            if (tmp[i])
                jobs[n++] = tmp[i];
        if (more && take > 0)
            at_id_format(cursor_out, last);
    } else if (tmp) {
        for (size_t i = 0; i < take; i++)
            at_job_free(tmp[i]);
    }
    at__free(tmp);
    at__free(c);
    *n_out = n;
    return rc;
}

/* ----------------------------------------------------- schedules, leases */

/*
 * One hash {P/sched}:defs holds every schedule (name -> packed record, see
 * redis_scripts.h) and each lease is a hash {P/sched}:lease:<name> that is
 * never deleted, so its token counter outlives expiries and releases.  Both
 * share one slot: sched_fired checks the lease and writes the record in one
 * script, and every script here stays single-slot on Cluster.
 */

/* The scripts answer with these codes as plain numbers. */
_Static_assert(AT_ERR_NOTFOUND == -3 && AT_ERR_STALE == -4 && AT_ERR_BUSY == -19,
               "redis_scripts.h hard-codes -3, -4 and -19");

/* flags u8, created i64, updated i64, last_fire i64, job id length u8. */
#define SCHED_HEAD 26
#define SCHED_PAUSED 1u
#define SCHED_FIRED 2u
/* "{" prefix "/sched}:lease:" name */
#define LEASE_KEY_MAX (PREFIX_MAX + AT_NAME_MAX + 32)

static int lease_key(at_backend *be, char out[LEASE_KEY_MAX], const char *name)
{
    int n = snprintf(out, LEASE_KEY_MAX, "{%s/" SCHED_TAG "}:lease:%s", be->prefix, name);
    if (n < 0 || n >= LEASE_KEY_MAX)
        return at_store_error(be->store, AT_ERR_NAME, 0, "lease name '%.40s...' is longer than %d bytes",
                              name, AT_NAME_MAX);
    return 0;
}

/* One command on a pooled connection (script sc, or -1 for a plain
 * command).  The connection is back in the pool when this returns, so
 * callers may run user callbacks on the reply. */
static int run_cmd(at_backend *be, int sc, argv_t *a, redisReply **out, const char *what)
{
    struct rconn *conn = NULL;
    int rc = acquire(be, &conn);
    if (rc)
        return rc;
    rc = run1(be, conn, a, sc, out, what);
    release(be, conn, false);
    return rc;
}

static int bad_reply(at_backend *be, redisReply *r, const char *what)
{
    freeReplyObject(r);
    return at_store_error(be->store, AT_ERR_IO, 0, "unexpected reply from redis to %s", what);
}

static int rd_sched_put(int32_t *created_out, at_backend *be, const char *name, const void *spec,
                        size_t spec_len)
{
    argv_t a;
    av_init(&a);
    av_script(&a, be, SC_SCHED_PUT, 1);
    av_str(&a, be->k_sched);
    av_str(&a, name);
    av_ext(&a, spec, spec_len);
    redisReply *r = NULL;
    int rc = run_cmd(be, SC_SCHED_PUT, &a, &r, "sched_put");
    av_free(&a);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        return bad_reply(be, r, "sched_put");
    *created_out = r->integer == 1;
    freeReplyObject(r);
    return 0;
}

static int rd_sched_remove(at_backend *be, const char *name)
{
    argv_t a;
    av_init(&a);
    av_str(&a, "HDEL");
    av_str(&a, be->k_sched);
    av_str(&a, name);
    redisReply *r = NULL;
    int rc = run_cmd(be, -1, &a, &r, "sched_remove (HDEL)");
    av_free(&a);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        return bad_reply(be, r, "sched_remove (HDEL)");
    long long n = r->integer;
    freeReplyObject(r);
    if (n != 1)
        return at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no schedule '%s'", name);
    return 0;
}

static int rd_sched_pause(at_backend *be, const char *name, int32_t paused)
{
    argv_t a;
    av_init(&a);
    av_script(&a, be, SC_SCHED_PAUSE, 1);
    av_str(&a, be->k_sched);
    av_str(&a, name);
    av_str(&a, paused ? "1" : "0");
    redisReply *r = NULL;
    int rc = run_cmd(be, SC_SCHED_PAUSE, &a, &r, "sched_pause");
    av_free(&a);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        return bad_reply(be, r, "sched_pause");
    long long code = r->integer;
    freeReplyObject(r);
    if (code == AT_ERR_NOTFOUND)
        return at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no schedule '%s'", name);
    return 0;
}

/* A record as a row pointing into the reply (valid while it lives). */
static int sched_decode(at_backend *be, at_sched_row *row, const char *name, const redisReply *rec)
{
    const unsigned char *p = (const unsigned char *)rec->str;
    size_t idlen = rec->type == REDIS_REPLY_STRING && rec->len >= SCHED_HEAD ? p[SCHED_HEAD - 1] : 0;
    if (rec->type != REDIS_REPLY_STRING || rec->len < SCHED_HEAD + idlen || idlen >= AT_ID_SIZE)
        return at_store_error(be->store, AT_ERR_CORRUPT, 0, "schedule '%s' has a malformed record in redis (%s)",
                              name, rec->type == REDIS_REPLY_STRING ? "too short" : "not a string");
    at_sched_row_init(row);
    row->name = name;
    row->paused = (p[0] & SCHED_PAUSED) != 0;
    row->created_at = get_sle(p + 1, 8);
    row->updated_at = get_sle(p + 9, 8);
    row->last_fire_at = (p[0] & SCHED_FIRED) ? get_sle(p + 17, 8) : AT_TIME_NONE;
    memcpy(row->last_job_id, p + SCHED_HEAD, idlen);
    row->last_job_id[idlen] = '\0';
    row->spec = p + SCHED_HEAD + idlen;
    row->spec_len = rec->len - SCHED_HEAD - idlen;
    return 0;
}

static int row_cmp(const void *a, const void *b)
{
    /* Names have no NUL inside, and strcmp compares as unsigned char:
     * bytewise order. */
    return strcmp(((const at_sched_row *)a)->name, ((const at_sched_row *)b)->name);
}

/*
 * One read (HGET, or HGETALL of the one hash: a consistent snapshot without
 * a script), then the callbacks with no connection held, so fn may take as
 * long as it likes.  Every record is decoded before the first call: a
 * malformed one fails the listing instead of cutting it short.  Name order
 * is sorted here rather than kept in a zset beside the hash, which would
 * cost a second write per put and remove for a list that is read whole.
 */
static int rd_sched_list(at_backend *be, const char *name, at_sched_row_fn fn, void *ud)
{
    argv_t a;
    av_init(&a);
    av_str(&a, name ? "HGET" : "HGETALL");
    av_str(&a, be->k_sched);
    if (name)
        av_str(&a, name);
    const char *what = name ? "sched_list (HGET)" : "sched_list (HGETALL)";
    redisReply *r = NULL;
    int rc = run_cmd(be, -1, &a, &r, what);
    av_free(&a);
    if (rc)
        return rc;
    if (name) {
        if (r->type == REDIS_REPLY_NIL) {
            freeReplyObject(r);
            return at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no schedule '%s'", name);
        }
        at_sched_row row;
        rc = sched_decode(be, &row, name, r);
        if (rc == 0)
            rc = fn(ud, &row);
        freeReplyObject(r);
        return rc;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return bad_reply(be, r, what);
    size_t n = r->elements / 2;
    at_sched_row *rows = n ? at__calloc(n, sizeof *rows) : NULL;
    if (n && !rows) {
        freeReplyObject(r);
        return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory listing %zu schedules", n);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const redisReply *k = r->element[2 * i];
        if (k->type != REDIS_REPLY_STRING || memchr(k->str, '\0', k->len))
            rc = at_store_error(be->store, AT_ERR_CORRUPT, 0, "a schedule name in redis is not a name");
        else
            rc = sched_decode(be, &rows[i], k->str, r->element[2 * i + 1]);
    }
    if (rc == 0 && n > 1)
        qsort(rows, n, sizeof *rows, row_cmp);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = fn(ud, &rows[i]);
    at__free(rows);
    freeReplyObject(r);
    return rc;
}

static int rd_sched_fired(at_backend *be, const char *name, int64_t fire_at, const char *job_id,
                          const char *lease, uint64_t token)
{
    char lk[LEASE_KEY_MAX];
    int rc = lease_key(be, lk, lease);
    if (rc)
        return rc;
    size_t idlen = strlen(job_id);
    if (idlen >= AT_ID_SIZE)
        return at_store_error(be->store, AT_ERR_INVAL, 0, "'%.40s' is not a job id", job_id);
    argv_t a;
    av_init(&a);
    av_script(&a, be, SC_SCHED_FIRED, 2);
    av_str(&a, be->k_sched);
    av_str(&a, lk);
    av_str(&a, name);
    av_i64(&a, fire_at);
    av_ext(&a, job_id, idlen);
    av_u64(&a, token);
    redisReply *r = NULL;
    rc = run_cmd(be, SC_SCHED_FIRED, &a, &r, "sched_fired");
    av_free(&a);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        return bad_reply(be, r, "sched_fired");
    long long code = r->integer;
    freeReplyObject(r);
    if (code == AT_ERR_STALE)
        return at_store_error(be->store, AT_ERR_STALE, 0,
                              "lease '%s' is not held under token %llu (expired, released or taken over): "
                              "the firing of schedule '%s' was not recorded",
                              lease, (unsigned long long)token, name);
    if (code == AT_ERR_NOTFOUND)
        return at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no schedule '%s'", name);
    return 0;
}

static int rd_lease_acquire(uint64_t *token_out, int64_t *ttl_left_out, at_backend *be, const char *name,
                            const char *owner, int64_t ttl_ms)
{
    char lk[LEASE_KEY_MAX];
    int rc = lease_key(be, lk, name);
    if (rc)
        return rc;
    argv_t a;
    av_init(&a);
    av_script(&a, be, SC_LEASE_ACQUIRE, 1);
    av_str(&a, lk);
    av_str(&a, owner);
    av_i64(&a, ttl_ms);
    redisReply *r = NULL;
    rc = run_cmd(be, SC_LEASE_ACQUIRE, &a, &r, "lease_acquire");
    av_free(&a);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER || r->element[2]->type != REDIS_REPLY_INTEGER)
        return bad_reply(be, r, "lease_acquire");
    long long code = r->element[0]->integer;
    *token_out = (uint64_t)r->element[1]->integer;
    *ttl_left_out = (int64_t)r->element[2]->integer;
    /* The scripts only ever store tokens from 1 up and expiries in the
     * server's clock: anything else was written by someone else. */
    bool bad = r->element[1]->integer < 0 || r->element[2]->integer < 0;
    freeReplyObject(r);
    if (bad)
        return at_store_error(be->store, AT_ERR_CORRUPT, 0,
                              "lease '%s' holds a token or expiry this library did not write (prefix %s)", name,
                              be->prefix);
    if (code == AT_ERR_BUSY)
        return at_store_error(be->store, AT_ERR_BUSY, 0,
                              "lease '%s' is held by another owner (token %llu) for %lld ms more", name,
                              (unsigned long long)*token_out, (long long)*ttl_left_out);
    return 0;
}

static int rd_lease_release(at_backend *be, const char *name, const char *owner, uint64_t token)
{
    char lk[LEASE_KEY_MAX];
    int rc = lease_key(be, lk, name);
    if (rc)
        return rc;
    argv_t a;
    av_init(&a);
    av_script(&a, be, SC_LEASE_RELEASE, 1);
    av_str(&a, lk);
    av_str(&a, owner);
    av_u64(&a, token);
    redisReply *r = NULL;
    rc = run_cmd(be, SC_LEASE_RELEASE, &a, &r, "lease_release");
    av_free(&a);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        return bad_reply(be, r, "lease_release");
    long long code = r->integer;
    freeReplyObject(r);
    if (code == AT_ERR_STALE)
        return at_store_error(be->store, AT_ERR_STALE, 0,
                              "lease '%s' is not held by this owner under token %llu (expired, released or "
                              "taken over)",
                              name, (unsigned long long)token);
    return 0;
}

/* -------------------------------------------------------- worker support */

static int rd_release(at_backend *be, const char *id, uint64_t token, int64_t delay)
{
    return token_ms_call(be, id, SC_RELEASE, token, delay, "release");
}

/* The paused flag is a field of the queue's meta hash {P:Q}:m (ADR 0008):
 * the claim script already holds that key, so checking it costs one HEXISTS
 * and no key outside the queue's slot. */
static int rd_queue_pause(at_backend *be, const char *queue, int32_t paused)
{
    long qi = queue_index(be, queue, strlen(queue));
    if (qi < 0)
        return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory pausing queue %s", queue);
    pthread_mutex_lock(&be->mu);
    struct rqueue q = be->q[qi];
    pthread_mutex_unlock(&be->mu);
    argv_t a;
    av_init(&a);
    av_script(&a, be, SC_QUEUE_PAUSE, 1);
    av_ext(&a, q.keys[QKEYS - 1], q.klen[QKEYS - 1]);
    av_str(&a, paused ? "1" : "0");
    av_tail(&a, be);
    redisReply *r = NULL;
    int rc = run_cmd(be, SC_QUEUE_PAUSE, &a, &r, paused ? "queue_pause" : "queue_resume");
    av_free(&a);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        return bad_reply(be, r, "queue_pause");
    freeReplyObject(r);
    return 0;
}

static int rd_queue_is_paused(int32_t *paused_out, at_backend *be, const char *queue)
{
    long qi = queue_index(be, queue, strlen(queue));
    if (qi < 0)
        return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory reading queue %s", queue);
    pthread_mutex_lock(&be->mu);
    struct rqueue q = be->q[qi];
    pthread_mutex_unlock(&be->mu);
    argv_t a;
    av_init(&a);
    av_str(&a, "HEXISTS");
    av_ext(&a, q.keys[QKEYS - 1], q.klen[QKEYS - 1]);
    av_str(&a, "paused");
    redisReply *r = NULL;
    int rc = run_cmd(be, -1, &a, &r, "queue_is_paused (HEXISTS)");
    av_free(&a);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        return bad_reply(be, r, "queue_is_paused (HEXISTS)");
    *paused_out = r->integer == 1;
    freeReplyObject(r);
    return 0;
}

/* The script counts in units of 1/period_ms token in Lua doubles: exact
 * only while the bucket's capacity limit * period_ms in units (and a refill
 * added to it) stays below 2^53. */
#define RATE_UNITS_MAX (INT64_C(1) << 52)
/* "{" prefix ":" queue "}:b" */
#define BUCKET_KEY_MAX (PREFIX_MAX + AT_NAME_MAX + 8)

static int rd_rate_take(uint32_t *granted_out, int64_t *wait_ms_out, at_backend *be, const char *queue,
                        uint32_t limit, int64_t period_ms, uint32_t want)
{
    *granted_out = 0;
    *wait_ms_out = 0;
    if (!queue || at__check_name(queue))
        return at_store_error(be->store, AT_ERR_NAME, 0, "queue name must be 1..%d of [A-Za-z0-9._:-]",
                              AT_NAME_MAX);
    if (limit == 0 || period_ms <= 0 || period_ms > RATE_UNITS_MAX / limit)
        return at_store_error(
            be->store, AT_ERR_RANGE, 0,
            "rate %lu per %lld ms: limit and period must be positive, their product below 2^52",
            (unsigned long)limit, (long long)period_ms);
    /* In the queue's slot, but not one of the 7 keys every queue script
     * takes: only this script needs it, and it expires when idle. */
    char key[BUCKET_KEY_MAX];
    int kl = snprintf(key, sizeof key, "{%s:%s}:b", be->prefix, queue);
    argv_t a;
    av_init(&a);
    av_script(&a, be, SC_RATE_TAKE, 1);
    av_ext(&a, key, (size_t)kl);
    av_u64(&a, limit);
    av_i64(&a, period_ms);
    av_u64(&a, want);
    av_tail(&a, be);
    redisReply *r = NULL;
    int rc = run_cmd(be, SC_RATE_TAKE, &a, &r, "rate_take");
    av_free(&a);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER || r->element[0]->integer < 0 ||
        r->element[0]->integer > (long long)want || r->element[1]->integer < 0)
        return bad_reply(be, r, "rate_take");
    *granted_out = (uint32_t)r->element[0]->integer;
    *wait_ms_out = r->element[1]->integer;
    freeReplyObject(r);
    return 0;
}

/* ------------------------------------------------------------ subscriber */

static void *sub_main(void *arg)
{
    at_backend *be = arg;
    int64_t backoff = BACKOFF_MIN_MS;
    for (;;) {
        pthread_mutex_lock(&be->mu);
        bool stop = be->stop;
        pthread_mutex_unlock(&be->mu);
        if (stop)
            break;
        redisContext *c = NULL;
        /* Messages of failures here go to this thread's own slot: no
         * caller reads them. */
        if (connect_master(be, &c, false) == 0) {
            const char *argv[2] = {"SUBSCRIBE", be->channel};
            size_t lens[2] = {9, strlen(be->channel)};
            redisReply *r = redisCommandArgv(c, 2, argv, lens);
            bool ok = r && r->type == REDIS_REPLY_ARRAY;
            if (r)
                freeReplyObject(r);
            pthread_mutex_lock(&be->mu);
            stop = be->stop;
            if (ok && !stop)
                be->sub_fd = c->fd;
            pthread_mutex_unlock(&be->mu);
            if (ok && !stop) {
                backoff = BACKOFF_MIN_MS;
                /* Whatever happened while we were away is news too. */
                at_store_notify(be->store);
                void *msg = NULL;
                while (redisGetReply(c, &msg) == REDIS_OK) {
                    freeReplyObject(msg);
                    at_store_notify(be->store);
                }
                pthread_mutex_lock(&be->mu);
                be->sub_fd = -1;
                stop = be->stop;
                pthread_mutex_unlock(&be->mu);
            }
            redisFree(c);
            if (stop)
                break;
        }
        /* Disconnected: until the channel is back, pollers re-check at each
         * attempt, so no wake-up is lost for longer than the backoff. */
        at_store_notify(be->store);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(backoff / 1000);
        ts.tv_nsec += (long)(backoff % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&be->mu);
        if (!be->stop)
            pthread_cond_timedwait(&be->sub_cv, &be->mu, &ts);
        pthread_mutex_unlock(&be->mu);
        backoff = backoff * 2 < BACKOFF_MAX_MS ? backoff * 2 : BACKOFF_MAX_MS;
    }
    return NULL;
}

/* ------------------------------------------------------------ open/close */

static void rd_close(at_backend *be)
{
    if (!be)
        return;
    if (be->sub_started) {
        pthread_mutex_lock(&be->mu);
        be->stop = true;
        if (be->sub_fd >= 0)
            shutdown(be->sub_fd, SHUT_RDWR);
        pthread_cond_signal(&be->sub_cv);
        pthread_mutex_unlock(&be->mu);
        pthread_join(be->sub, NULL);
    }
    for (struct rconn *c = be->idle, *n; c; c = n) {
        n = c->next;
        redisFree(c->c);
        at__free(c);
    }
    for (size_t i = 0; i < be->nq; i++) {
        at__free(be->q[i].name);
        for (int k = 0; k < QKEYS; k++)
            at__free(be->q[i].keys[k]);
    }
    for (int i = 0; i < SC_COUNT; i++)
        at__free(be->script[i]);
    at__free(be->q);
    at__free(be->qhash);
    at__free(be->loc);
    pthread_cond_destroy(&be->sub_cv);
    pthread_cond_destroy(&be->ack_cv);
    pthread_mutex_destroy(&be->ack_mu);
    pthread_cond_destroy(&be->cv);
    pthread_mutex_destroy(&be->mu);
    at__free(be);
}

/* Once per risk and process: through the log callback when the host set
 * one (at_set_log), else one line on stderr unless AT_REDIS_WARN=0, because
 * an eviction policy that drops queue keys loses jobs silently (ADR 0008). */
static void warn_once(atomic_bool *done, const char *fmt, ...)
{
    if (atomic_exchange(done, true))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at__log_enabled(AT_LOG_WARN)) {
        at__log(AT_LOG_WARN, "redis", NULL, 0, "%s", msg);
        return;
    }
    const char *env = getenv("AT_REDIS_WARN");
    if (!(env && strcmp(env, "0") == 0))
        fprintf(stderr, "libasynctask: warning: %s\n", msg);
}

static void check_config(at_backend *be, redisContext *c)
{
    static atomic_bool warned_evict, warned_aof;
    const char *params[2] = {"maxmemory-policy", "appendonly"};
    char a[ADDR_MAX];
    for (int i = 0; i < 2; i++) {
        const char *argv[3] = {"CONFIG", "GET", params[i]};
        size_t lens[3] = {6, 3, strlen(params[i])};
        redisReply *r = redisCommandArgv(c, 3, argv, lens);
        /* CONFIG may be renamed or forbidden to us: then we cannot tell. */
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING) {
            const char *v = r->element[1]->str;
            if (i == 0 && strcmp(v, "noeviction") != 0)
                warn_once(&warned_evict,
                          "redis at %s has maxmemory-policy %s: when full it may evict queue keys and lose "
                          "jobs; set maxmemory-policy noeviction",
                          cur_addr(be, a), v);
            if (i == 1 && strcmp(v, "no") == 0)
                warn_once(&warned_aof,
                          "redis at %s runs with appendonly no: jobs written since its last snapshot are lost "
                          "if it restarts; set appendonly yes (appendfsync everysec)",
                          cur_addr(be, a));
        }
        if (r)
            freeReplyObject(r);
    }
}

static int rd_open(at_backend **out, at_store *store, const char *uri)
{
    at_backend *be = at__calloc(1, sizeof *be);
    if (!be)
        return AT_ERR_NOMEM;
    be->store = store;
    be->sub_fd = -1;
    pthread_mutex_init(&be->mu, NULL);
    pthread_cond_init(&be->cv, NULL);
    pthread_cond_init(&be->sub_cv, NULL);
    pthread_mutex_init(&be->ack_mu, NULL);
    pthread_cond_init(&be->ack_cv, NULL);
    be->ack_tail = &be->ack_head;
    int rc = parse_uri(be, uri);
    if (rc) {
        rd_close(be);
        return rc;
    }
    snprintf(be->k_queues, sizeof be->k_queues, "{%s}:queues", be->prefix);
    snprintf(be->k_idem, sizeof be->k_idem, "{%s}:idem", be->prefix);
    snprintf(be->k_idemx, sizeof be->k_idemx, "{%s}:idemx", be->prefix);
    snprintf(be->k_sched, sizeof be->k_sched, "{%s/" SCHED_TAG "}:defs", be->prefix);
    /* Channels are global across databases: the number keeps stores of the
     * same prefix in different databases from waking each other. */
    snprintf(be->channel, sizeof be->channel, "{%s}:wake:%d", be->prefix, be->db);
    be->qcap = 16;
    be->qhmask = 63;
    be->q = at__calloc(be->qcap, sizeof *be->q);
    be->qhash = at__calloc(be->qhmask + 1, sizeof *be->qhash);
    be->loc = at__calloc(LOC_SLOTS, sizeof *be->loc);
    size_t plen = strlen(k_redis_prelude);
    for (int i = 0; i < SC_COUNT && be->q && be->qhash && be->loc; i++) {
        size_t bl = strlen(k_scripts[i].body);
        be->script[i] = at__malloc(plen + bl + 1);
        if (!be->script[i])
            break;
        memcpy(be->script[i], k_redis_prelude, plen);
        memcpy(be->script[i] + plen, k_scripts[i].body, bl + 1);
    }
    if (!be->q || !be->qhash || !be->loc || !be->script[SC_COUNT - 1]) {
        rd_close(be);
        return at_store_error(store, AT_ERR_NOMEM, 0, "out of memory opening a redis store");
    }
    /* The first connection proves the address and the credentials, loads
     * the scripts and looks at the server's settings. */
    struct rconn *conn = NULL;
    rc = acquire(be, &conn);
    for (int i = 0; rc == 0 && i < SC_COUNT; i++)
        rc = load_script(be, conn->c, i);
    if (rc == 0)
        check_config(be, conn->c);
    release(be, conn, rc != 0);
    if (rc) {
        rd_close(be);
        return rc;
    }
    if (pthread_create(&be->sub, NULL, sub_main, be) != 0) {
        rd_close(be);
        return at_store_error(store, AT_ERR_NOMEM, 0, "cannot start the redis subscriber thread");
    }
    be->sub_started = true;
    *out = be;
    return 0;
}

/* Both schemes share every method; only how the master is found differs. */
#define RD_METHODS                                                                                           \
    .open = rd_open, .close = rd_close, .enqueue = rd_enqueue, .claim = rd_claim, .ack = rd_ack,             \
    .fail = rd_fail, .touch = rd_touch, .cancel = rd_cancel, .get = rd_get, .list = rd_list,                 \
    .requeue = rd_requeue_checked, .purge = rd_purge, .stats = rd_stats, .control = NULL, .changed = NULL,   \
    .ack_many = rd_ack_many, .sched_put = rd_sched_put, .sched_remove = rd_sched_remove,                     \
    .sched_pause = rd_sched_pause, .sched_list = rd_sched_list, .sched_fired = rd_sched_fired,               \
    .lease_acquire = rd_lease_acquire, .lease_release = rd_lease_release, .wf_submit = rd_wf_submit,        \
    .wf_status = rd_wf_status, .wf_cancel = rd_wf_cancel, .wf_jobs = rd_wf_jobs, .release = rd_release,     \
    .queue_pause = rd_queue_pause, .queue_is_paused = rd_queue_is_paused, .rate_take = rd_rate_take,

const at_store_vtable at__redis_vtable = {
    .version = AT_STORE_VTABLE_VERSION,
    .size = sizeof(at_store_vtable),
    .scheme = "redis",
    .flags = 0, /* judged by the server's TIME: no manual clock */
    RD_METHODS
};

/* The same backend behind Sentinel: redis-sentinel://host:port[,...]/MASTER
 * asks the sentinels for the master and asks again after a lost connection,
 * a timeout or a READONLY/MASTERDOWN reply (ADR/0011-redis-sentinel.md). */
const at_store_vtable at__redis_sentinel_vtable = {
    .version = AT_STORE_VTABLE_VERSION,
    .size = sizeof(at_store_vtable),
    .scheme = "redis-sentinel",
    .flags = 0,
    RD_METHODS
};
