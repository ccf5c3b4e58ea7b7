/*
 * fake_redis.c - the Redis backend over a fake connection layer, for the
 * fuzz targets uri, record and redis_reply.
 *
 * This file #includes backends/redis.c, for two reasons: its reply handling
 * and decoders are static, and the hiredis calls it makes can be renamed by
 * macros to the fakes below, so every reply the backend reads comes from
 * bytes the fuzzer chose, with no server, no socket and no timing.  The
 * copy defines at__redis_vtable and at__redis_sentinel_vtable itself, so a
 * program linking this file instead of backends/redis.c (the fuzz builds
 * compile the library without it; the replay drivers link libat_core.a,
 * whose redis.o the linker then never pulls in) opens "redis://" URIs
 * through the fakes, with the real store core above.
 *
 * A fake connection records what each command it was sent is (SCRIPT LOAD,
 * CONFIG GET, ... or anything else) and answers in order: from the stream,
 * or, for the commands of an open without FZ_REDIS_OPEN_FROM_STREAM, as a
 * healthy server would.  Reply boundaries are found by a strict RESP
 * scanner first (bounded arrays, depth at most 6), so hiredis' reader is only
 * ever given one complete reply it can parse: it would try to allocate an
 * array of whatever count the bytes claim.
 *
 * The subscriber thread is not started (pthread_create is faked for this
 * copy): its only reply handling is "an array means subscribed", and a
 * second thread reading the stream would make runs irreproducible.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>

#include "fake_redis.h"

/* ------------------------------------------------------------- the stream */

static struct {
    const uint8_t *p;
    size_t n, pos;
    unsigned flags;
    size_t commands;
    /* record mode */
    bool record;
    char host[256];
    int port;
    uint8_t *rec;
    size_t rec_len, rec_cap;
} g;

void fz_redis_feed(const uint8_t *data, size_t len, unsigned flags)
{
    g.p = data;
    g.n = len;
    g.pos = 0;
    g.flags = flags;
    g.commands = 0;
    g.rec_len = 0;
}

size_t fz_redis_left(void)
{
    return g.n - g.pos;
}

size_t fz_redis_commands(void)
{
    return g.commands;
}

void fz_redis_record(const char *host, int port)
{
    g.record = host != NULL;
    snprintf(g.host, sizeof g.host, "%s", host ? host : "");
    g.port = port;
}

const uint8_t *fz_redis_recorded(size_t *len_out)
{
    *len_out = g.rec_len;
    return g.rec;
}

static void rec_put(const void *p, size_t n)
{
    if (g.rec_len + n > g.rec_cap) {
        size_t cap = g.rec_cap ? g.rec_cap : 4096;
        while (cap < g.rec_len + n)
            cap *= 2;
        uint8_t *q = realloc(g.rec, cap);
        if (!q)
            abort(); /* a seed generator out of memory has nothing to say */
        g.rec = q;
        g.rec_cap = cap;
    }
    memcpy(g.rec + g.rec_len, p, n);
    g.rec_len += n;
}

/* A reply back in RESP, as the server sent it (hiredis 0.14 keeps a nil
 * array as a nil bulk: the same meaning to the backend). */
static void rec_reply(const redisReply *r)
{
    char h[64];
    switch (r->type) {
    case REDIS_REPLY_STRING:
        snprintf(h, sizeof h, "$%zu\r\n", (size_t)r->len);
        rec_put(h, strlen(h));
        rec_put(r->str, r->len);
        rec_put("\r\n", 2);
        break;
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        rec_put(r->type == REDIS_REPLY_STATUS ? "+" : "-", 1);
        rec_put(r->str, r->len);
        rec_put("\r\n", 2);
        break;
    case REDIS_REPLY_INTEGER:
        snprintf(h, sizeof h, ":%lld\r\n", (long long)r->integer);
        rec_put(h, strlen(h));
        break;
    case REDIS_REPLY_ARRAY:
        snprintf(h, sizeof h, "*%zu\r\n", (size_t)r->elements);
        rec_put(h, strlen(h));
        for (size_t i = 0; i < r->elements; i++)
            rec_reply(r->element[i]);
        break;
    default:
        rec_put("$-1\r\n", 5);
        break;
    }
}

/* Largest array a reply may claim: more elements than a 4 KiB input can
 * hold anyway, far less than an allocation ASan would refuse. */
#define MAX_ELEMENTS 2048
/* Nesting the scanner accepts (hiredis 0.14 stops at 7). */
#define MAX_DEPTH 6

/* A "-1" or 1..9 digits no larger than max in [s, e); -2 when malformed. */
static long scan_num(const uint8_t *s, const uint8_t *e, long max)
{
    if (e - s == 2 && s[0] == '-' && s[1] == '1')
        return -1;
    if (s == e || e - s > 9)
        return -2;
    long v = 0;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9')
            return -2;
        v = v * 10 + (*s - '0');
    }
    return v <= max ? v : -2;
}

/* Length of the one reply at p[0..n): > 0, 0 if incomplete, -1 if it is not
 * a reply. */
static long scan_reply(const uint8_t *p, size_t n, int depth)
{
    const uint8_t *nl = NULL;
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n') {
            nl = p + i;
            break;
        }
    if (n == 0 || (p[0] != '+' && p[0] != '-' && p[0] != ':' && p[0] != '$' && p[0] != '*'))
        return n == 0 ? 0 : -1;
    if (!nl)
        return 0;
    size_t line = (size_t)(nl - p) + 2;
    if (p[0] == '+' || p[0] == '-' || p[0] == ':')
        return (long)line;
    if (p[0] == '$') {
        long v = scan_num(p + 1, nl, 100000000);
        if (v < -1)
            return -1;
        if (v < 0)
            return (long)line;
        if ((size_t)v + 2 > n - line)
            return 0;
        return (long)(line + (size_t)v + 2);
    }
    long v = scan_num(p + 1, nl, MAX_ELEMENTS);
    if (v < -1 || (v > 0 && depth >= MAX_DEPTH))
        return -1;
    size_t off = line;
    for (long i = 0; i < v; i++) {
        long k = scan_reply(p + off, n - off, depth + 1);
        if (k <= 0)
            return k;
        off += (size_t)k;
    }
    return (long)off;
}

static redisReply *parse_reply(const uint8_t *p, size_t n)
{
    redisReader *rd = redisReaderCreate();
    if (!rd)
        return NULL;
    void *r = NULL;
    if (redisReaderFeed(rd, (const char *)p, n) != REDIS_OK || redisReaderGetReply(rd, &r) != REDIS_OK)
        r = NULL;
    redisReaderFree(rd);
    return r;
}

static void set_err(redisContext *c, int err, const char *msg)
{
    c->err = err;
    snprintf(c->errstr, sizeof c->errstr, "%s", msg);
}

/* The next reply of the stream, or NULL with c->err set. */
static redisReply *stream_reply(redisContext *c)
{
    if (g.pos >= g.n) {
        set_err(c, REDIS_ERR_EOF, "Server closed the connection");
        return NULL;
    }
    if (g.p[g.pos] == '!') {
        g.pos++;
        /* What hiredis reports when SO_RCVTIMEO runs out. */
        set_err(c, REDIS_ERR_IO, strerror(EAGAIN));
        return NULL;
    }
    long k = scan_reply(g.p + g.pos, g.n - g.pos, 0);
    if (k == 0) {
        g.pos = g.n;
        set_err(c, REDIS_ERR_EOF, "Server closed the connection");
        return NULL;
    }
    redisReply *r = k > 0 ? parse_reply(g.p + g.pos, (size_t)k) : NULL;
    if (!r) {
        /* Skip the rest of the line, so the next connection reads on. */
        size_t i = g.pos + 1;
        while (i < g.n && g.p[i - 1] != '\n')
            i++;
        g.pos = i;
        set_err(c, REDIS_ERR_PROTOCOL, "Protocol error, got bad bytes as reply type byte");
        return NULL;
    }
    g.pos += (size_t)k;
    return r;
}

/* ------------------------------------------------------ fake connections */

/* What a command is, for the answers of a healthy server. */
enum kind { K_DATA, K_SCRIPT_LOAD, K_CONFIG_GET, K_AUTH, K_SELECT, K_SENTINEL, K_ROLE };

struct fz_conn {
    redisContext c; /* first: the backend holds a redisContext pointer */
    redisContext *real; /* record mode */
    int *pend;          /* kinds of the commands awaiting replies, FIFO */
    size_t npend, head, cap;
    char cfg[2][32];    /* CONFIG GET parameters asked, in order */
    size_t ncfg_asked, ncfg_answered;
};

static redisContext *fake_connect(const char *host, int port, const struct timeval tv)
{
    (void)tv;
    /* What parse_uri and discover() hand over: never empty, a valid port. */
    if (!host || !host[0] || port < 1 || port > 65535)
        abort();
    struct fz_conn *fc = calloc(1, sizeof *fc);
    if (!fc)
        return NULL;
    fc->c.fd = -1;
    if (g.record) {
        fc->real = redisConnectWithTimeout(g.host, g.port, tv);
        if (!fc->real || fc->real->err)
            set_err(&fc->c, REDIS_ERR_IO, fc->real ? fc->real->errstr : "out of memory");
    }
    return &fc->c;
}

static void fake_free(redisContext *c)
{
    if (!c)
        return;
    struct fz_conn *fc = (struct fz_conn *)c;
    if (fc->real)
        redisFree(fc->real);
    free(fc->pend);
    free(fc);
}

static int fake_set_timeout(redisContext *c, const struct timeval tv)
{
    struct fz_conn *fc = (struct fz_conn *)c;
    return fc->real ? redisSetTimeout(fc->real, tv) : REDIS_OK;
}

static int fake_keepalive(redisContext *c)
{
    (void)c;
    return REDIS_OK;
}

static bool arg_is(const char *a, size_t n, const char *lit)
{
    return n == strlen(lit) && strncasecmp(a, lit, n) == 0;
}

static int fake_append(redisContext *c, int argc, const char **argv, const size_t *lens)
{
    struct fz_conn *fc = (struct fz_conn *)c;
    /* What the backend promises every command is. */
    if (argc < 1 || !argv || !lens)
        abort();
    for (int i = 0; i < argc; i++)
        if (!argv[i] && lens[i])
            abort();
    if (arg_is(argv[0], lens[0], "EVALSHA")) {
        /* EVALSHA sha numkeys key... arg...: the count must fit. */
        char nk[16] = "";
        /* (A SHA1 as the server gave it: 40 bytes, fewer if it held a NUL.) */
        if (argc < 3 || lens[1] > 40 || lens[2] >= sizeof nk)
            abort();
        memcpy(nk, argv[2], lens[2]);
        long keys = strtol(nk, NULL, 10);
        if (keys < 0 || keys > argc - 3)
            abort();
    }
    if (c->err)
        return REDIS_ERR;
    if (fc->npend == fc->cap) {
        size_t cap = fc->cap ? 2 * fc->cap : 16;
        int *p = realloc(fc->pend, cap * sizeof *p);
        if (!p) {
            set_err(c, REDIS_ERR_OOM, "Out of memory");
            return REDIS_ERR;
        }
        /* Compact the FIFO while growing it. */
        memmove(p, p + fc->head, (fc->npend - fc->head) * sizeof *p);
        fc->npend -= fc->head;
        fc->head = 0;
        fc->pend = p;
        fc->cap = cap;
    }
    enum kind k = K_DATA;
    if (argc == 3 && arg_is(argv[0], lens[0], "SCRIPT") && arg_is(argv[1], lens[1], "LOAD"))
        k = K_SCRIPT_LOAD;
    else if (argc == 3 && arg_is(argv[0], lens[0], "CONFIG") && arg_is(argv[1], lens[1], "GET")) {
        k = K_CONFIG_GET;
        if (fc->ncfg_asked < 2)
            snprintf(fc->cfg[fc->ncfg_asked++], sizeof fc->cfg[0], "%.*s", (int)lens[2], argv[2]);
    } else if (arg_is(argv[0], lens[0], "AUTH"))
        k = K_AUTH;
    else if (arg_is(argv[0], lens[0], "SELECT"))
        k = K_SELECT;
    else if (arg_is(argv[0], lens[0], "SENTINEL"))
        k = K_SENTINEL;
    else if (arg_is(argv[0], lens[0], "ROLE"))
        k = K_ROLE;
    fc->pend[fc->npend++] = k;
    g.commands++;
    if (fc->real && redisAppendCommandArgv(fc->real, argc, argv, lens) != REDIS_OK) {
        set_err(c, fc->real->err, fc->real->errstr);
        return REDIS_ERR;
    }
    return REDIS_OK;
}

static redisReply *healthy_answer(struct fz_conn *fc, enum kind k)
{
    char buf[160];
    switch (k) {
    case K_SCRIPT_LOAD:
        snprintf(buf, sizeof buf, "$40\r\n%040d\r\n", 0);
        break;
    case K_CONFIG_GET: {
        const char *param = fc->ncfg_answered < fc->ncfg_asked ? fc->cfg[fc->ncfg_answered] : "";
        fc->ncfg_answered++;
        const char *v = strcmp(param, "maxmemory-policy") == 0 ? "noeviction" : "yes";
        snprintf(buf, sizeof buf, "*2\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(param), param, strlen(v), v);
        break;
    }
    case K_SENTINEL:
        snprintf(buf, sizeof buf, "*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n");
        break;
    case K_ROLE:
        snprintf(buf, sizeof buf, "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
        break;
    default:
        snprintf(buf, sizeof buf, "+OK\r\n");
        break;
    }
    return parse_reply((const uint8_t *)buf, strlen(buf));
}

static int fake_get_reply(redisContext *c, void **out)
{
    struct fz_conn *fc = (struct fz_conn *)c;
    *out = NULL;
    if (c->err)
        return REDIS_ERR;
    /* A reply without a command: what a subscriber reads (never here). */
    enum kind k = fc->head < fc->npend ? (enum kind)fc->pend[fc->head++] : K_DATA;
    bool from_stream = k == K_DATA || (g.flags & FZ_REDIS_OPEN_FROM_STREAM);
    redisReply *r = NULL;
    if (fc->real) {
        void *rr = NULL;
        if (redisGetReply(fc->real, &rr) != REDIS_OK) {
            set_err(c, fc->real->err, fc->real->errstr);
            return REDIS_ERR;
        }
        r = rr;
        if (from_stream)
            rec_reply(r);
    } else if (from_stream) {
        r = stream_reply(c);
        if (!r)
            return REDIS_ERR;
    } else {
        r = healthy_answer(fc, k);
        if (!r) {
            set_err(c, REDIS_ERR_OOM, "Out of memory");
            return REDIS_ERR;
        }
    }
    *out = r;
    return REDIS_OK;
}

static void *fake_command(redisContext *c, int argc, const char **argv, const size_t *lens)
{
    void *r = NULL;
    if (fake_append(c, argc, argv, lens) != REDIS_OK || fake_get_reply(c, &r) != REDIS_OK)
        return NULL;
    return r;
}

/* The subscriber thread is never started (see the head comment). */
static int fake_thread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    (void)attr;
    (void)fn;
    (void)arg;
    memset(t, 0, sizeof *t);
    return 0;
}

static int fake_thread_join(pthread_t t, void **ret)
{
    (void)t;
    if (ret)
        *ret = NULL;
    return 0;
}

#define redisConnectWithTimeout fake_connect
#define redisFree fake_free
#define redisSetTimeout fake_set_timeout
#define redisEnableKeepAlive fake_keepalive
#define redisAppendCommandArgv fake_append
#define redisGetReply fake_get_reply
#define redisCommandArgv fake_command
#define pthread_create fake_thread_create
#define pthread_join fake_thread_join

#include "../../backends/redis.c"

#undef redisConnectWithTimeout
#undef redisFree
#undef redisSetTimeout
#undef redisEnableKeepAlive
#undef redisAppendCommandArgv
#undef redisGetReply
#undef redisCommandArgv
#undef pthread_create
#undef pthread_join

/* ------------------------------------------------------ for the targets */

/* Every byte but unreserved ones as %XX, so the text re-parses as itself. */
static int put_pct(char **o, char *end, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                     ch == '.' || ch == '_' || ch == '~';
        int n = plain ? snprintf(*o, (size_t)(end - *o), "%c", ch) : snprintf(*o, (size_t)(end - *o), "%%%02X", ch);
        if (n < 0 || n >= end - *o)
            return -1;
        *o += n;
    }
    return 0;
}

static int put_text(char **o, char *end, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int put_text(char **o, char *end, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*o, (size_t)(end - *o), fmt, ap);
    va_end(ap);
    if (n < 0 || n >= end - *o)
        return -1;
    *o += n;
    return 0;
}

static int put_host(char **o, char *end, const char *host, int port)
{
    /* A host with ':' or a leading '[' only parses inside brackets, and
     * such a host never holds ']'. */
    return strchr(host, ':') || host[0] == '[' ? put_text(o, end, "[%s]:%d", host, port)
                                               : put_text(o, end, "%s:%d", host, port);
}

int fz_redis_canonical(char *out, size_t cap, const at_store *st)
{
    if (!st || (st->vt != &at__redis_vtable && st->vt != &at__redis_sentinel_vtable))
        return -1;
    const at_backend *be = st->be;
    char *o = out, *end = out + cap;
    int rc = put_text(&o, end, "%s", be->sentinel ? "redis-sentinel://" : "redis://");
    if (rc == 0 && be->has_pass) {
        rc = put_pct(&o, end, be->has_user ? be->user : "");
        rc = rc ? rc : put_text(&o, end, ":");
        rc = rc ? rc : put_pct(&o, end, be->pass);
        rc = rc ? rc : put_text(&o, end, "@");
    }
    if (be->sentinel) {
        for (int i = 0; rc == 0 && i < be->nsent; i++) {
            rc = i ? put_text(&o, end, ",") : 0;
            rc = rc ? rc : put_host(&o, end, be->sent[i].host, be->sent[i].port);
        }
        rc = rc ? rc : put_text(&o, end, "/");
        rc = rc ? rc : put_pct(&o, end, be->master);
        rc = rc ? rc : put_text(&o, end, "?db=%d", be->db);
    } else {
        rc = rc ? rc : put_host(&o, end, be->host, be->port);
        rc = rc ? rc : put_text(&o, end, "/%d?", be->db);
        rc = rc ? rc : put_text(&o, end, "db=%d", be->db);
    }
    rc = rc ? rc
            : put_text(&o, end, "&prefix=%s&timeout_ms=%lld&wait_replicas=%d&pool=%d", be->prefix,
                       (long long)be->timeout_ms, be->wait_replicas, be->pool_max);
    if (rc == 0 && be->has_sent_pass) {
        rc = put_text(&o, end, "&sentinel_password=");
        rc = rc ? rc : put_pct(&o, end, be->sent_pass);
    }
    return rc;
}

/* A backend for the decoders: they name it in error messages and read
 * the limits of its store (a memory: store with the defaults, kept). */
static at_backend *decoder_backend(void)
{
    static at_backend be;
    if (!be.store) {
        if (at_store_open(&be.store, "memory:") != 0)
            abort();
        snprintf(be.prefix, sizeof be.prefix, "%s", DEFAULT_PREFIX);
    }
    return &be;
}

int fz_redis_decode_job(at_job **out, const uint8_t bid[16], const char *queue, const void *rec, size_t rec_len,
                        const void *cls, size_t cls_len, int64_t left)
{
    redisReply r = {.type = REDIS_REPLY_STRING, .len = rec_len, .str = (char *)rec};
    redisReply c = {.type = REDIS_REPLY_STRING, .len = cls_len, .str = (char *)cls};
    redisReply l = {.type = left < 0 ? REDIS_REPLY_NIL : REDIS_REPLY_INTEGER, .integer = left};
    return decode_job(decoder_backend(), out, bid, queue, &r, &c, &l);
}

int fz_redis_decode_sched(at_sched_row *row, const char *name, const void *rec, size_t rec_len)
{
    redisReply r = {.type = REDIS_REPLY_STRING, .len = rec_len, .str = (char *)rec};
    return sched_decode(decoder_backend(), row, name, &r);
}
