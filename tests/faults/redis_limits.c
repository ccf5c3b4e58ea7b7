/*
 * redis_limits.c - what the Redis backend does about a server's limits
 * (ADR 0008, "Out of memory" and "Warnings"):
 *
 *  - At open it reads appendonly and maxmemory-policy and warns through the
 *    log callback (at_set_log), once per risk and process: an eviction policy
 *    other than noeviction can drop queue keys, appendonly no loses writes
 *    since the last snapshot.  A safe server gets no warning; a server that
 *    refuses CONFIG (an ACL user without +config, a renamed command) opens
 *    without warning and without failing.  Each case opens its stores in a
 *    child process of its own, because "once per process" means a second
 *    case in the same process would see nothing whatever the code did.
 *  - A server at maxmemory under noeviction refuses every way of creating
 *    jobs (single, batch, idempotency keys, several queues, workflow submit,
 *    schedule add) with AT_ERR_FULL and leaves nothing behind: the keys,
 *    records, idempotency entries, schedule records and counts are the same
 *    before and after.  Workers can still drain it (poll, ack, fail, cancel,
 *    purge, stats, list), and once drained it takes jobs again.
 *
 * Run by tests/faults/redis_limits.sh, which starts the servers and passes
 * their ports in AT_TEST_CFG_PORT, AT_TEST_NOCFG_PORT, AT_TEST_FULL_PORT.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "asynctask.h"

static int port(const char *var)
{
    const char *v = getenv(var);
    ck_assert_msg(v != NULL, "%s is not set: run tests/faults/redis_limits.sh", var);
    return atoi(v);
}

static redisContext *admin(int p)
{
    redisContext *c = redisConnect("127.0.0.1", p);
    ck_assert_msg(c && !c->err, "admin connection: %s", c ? c->errstr : "no memory");
    return c;
}

static void admin_ok(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_msg(r && r->type != REDIS_REPLY_ERROR, "%s: %s", fmt, r ? r->str : c->errstr);
    freeReplyObject(r);
}

static long long admin_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_msg(r && r->type == REDIS_REPLY_INTEGER, "%s: not an integer reply", fmt);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static long long used_memory(redisContext *c)
{
    redisReply *r = redisCommand(c, "INFO memory");
    ck_assert_ptr_nonnull(r);
    const char *p = strstr(r->str, "used_memory:");
    ck_assert_ptr_nonnull(p);
    long long v = atoll(p + 12);
    freeReplyObject(r);
    return v;
}

/* ------------------------------------------------------------- warnings */

/*
 * One open case in a child process: install the log callback (unless
 * `with_log` is 0), point stderr at a temporary file, open `nopens` stores
 * on `uri` (the first stays open while the others open, as threads of one
 * host would), enqueue one job through the first, and report to the parent
 * through a pipe: "R<rc>" per open, "W<level>|<code>|<has job>|<component>|
 * <message>" per log record, "E<bytes on stderr>".
 */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_fd = -1;

static void on_log(void *ud, const at_log_record *r)
{
    (void)ud;
    char line[800];
    int n = snprintf(line, sizeof line, "W%d|%d|%d|%s|%s\n", (int)r->level, (int)r->code,
                     r->job_id || r->queue || r->type, r->component ? r->component : "(null)",
                     r->message ? r->message : "(null)");
    pthread_mutex_lock(&g_mu);
    if (n > 0 && write(g_fd, line, (size_t)n) != n)
        _exit(5);
    pthread_mutex_unlock(&g_mu);
}

static void child_opens(int fd, const char *uri, int nopens, int with_log)
{
    g_fd = fd;
    FILE *err = tmpfile();
    if (!err || dup2(fileno(err), 2) < 0)
        _exit(6);
    if (with_log)
        at_set_log(on_log, NULL, AT_LOG_DEBUG);
    at_store *s[4] = {NULL};
    char line[64];
    for (int i = 0; i < nopens && i < 4; i++) {
        int rc = at_store_open(&s[i], uri);
        int n = snprintf(line, sizeof line, "R%d\n", rc);
        if (write(fd, line, (size_t)n) != n)
            _exit(5);
    }
    /* The store works, not merely opens. */
    int rc = s[0] ? at_enqueue(NULL, s[0], "t", "x", 1, NULL) : -100;
    int n = snprintf(line, sizeof line, "Q%d\n", rc);
    if (write(fd, line, (size_t)n) != n)
        _exit(5);
    for (int i = 0; i < 4; i++)
        at_store_close(s[i]);
    fflush(stderr);
    struct stat st;
    n = snprintf(line, sizeof line, "E%lld\n", fstat(2, &st) == 0 ? (long long)st.st_size : -1LL);
    if (write(fd, line, (size_t)n) != n)
        _exit(5);
    _exit(0);
}

struct outcome {
    int opens, open_failed, enqueue_rc;
    int nwarn;            /* records at WARN or more severe */
    char warn[4][700];    /* their "level|code|job|component|message" */
    long long stderr_len; /* bytes written to stderr */
};

static struct outcome open_case(const char *uri, int nopens, int with_log)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        child_opens(fds[1], uri, nopens, with_log);
    }
    close(fds[1]);
    static char buf[16384];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fds[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the open case's child failed (%d): %s", status,
                  buf);
    struct outcome o;
    memset(&o, 0, sizeof o);
    o.enqueue_rc = -100;
    o.stderr_len = -1;
    for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (l[0] == 'R') {
            o.opens++;
            o.open_failed += atoi(l + 1) != 0;
        } else if (l[0] == 'Q') {
            o.enqueue_rc = atoi(l + 1);
        } else if (l[0] == 'E') {
            o.stderr_len = atoll(l + 1);
        } else if (l[0] == 'W' && atoi(l + 1) <= AT_LOG_WARN) {
            ck_assert_msg(o.nwarn < 4, "more than 4 warnings: %s", l);
            snprintf(o.warn[o.nwarn++], sizeof o.warn[0], "%s", l + 1);
        }
    }
    ck_assert_int_eq(o.opens, nopens);
    ck_assert_msg(o.open_failed == 0, "a store failed to open on %s", uri);
    ck_assert_msg(o.enqueue_rc == 0, "enqueue after open: %d", o.enqueue_rc);
    return o;
}

static char g_uri[256];

static const char *cfg_uri(const char *cred)
{
    snprintf(g_uri, sizeof g_uri, "redis://%s127.0.0.1:%d/0?prefix=lim-%ld", cred ? cred : "",
             port("AT_TEST_CFG_PORT"), (long)getpid());
    return g_uri;
}

static void configure(const char *appendonly, const char *policy)
{
    redisContext *op = admin(port("AT_TEST_CFG_PORT"));
    admin_ok(op, "CONFIG SET appendonly %s", appendonly);
    admin_ok(op, "CONFIG SET maxmemory-policy %s", policy);
    redisFree(op);
}

/* The one warning the log record `w` must be: a WARN of component "redis"
 * with no code and no job, naming the server and the risky setting. */
static void is_warning(const char *w, const char *setting)
{
    char want[128];
    snprintf(want, sizeof want, "%d|0|0|redis|redis at 127.0.0.1:%d ", AT_LOG_WARN, port("AT_TEST_CFG_PORT"));
    ck_assert_msg(strncmp(w, want, strlen(want)) == 0, "warning \"%s\" is not \"%s...\"", w, want);
    ck_assert_msg(strstr(w, setting) != NULL, "warning \"%s\" does not name \"%s\"", w, setting);
}

/* Open one store on a server configured so: it must give one warning,
 * naming `setting`, to the host's logger and nothing on stderr.  The
 * outcome, for the test's own checks. */
static struct outcome one_warning(const char *appendonly, const char *policy, const char *setting)
{
    configure(appendonly, policy);
    struct outcome o = open_case(cfg_uri(NULL), 1, 1);
    ck_assert_int_eq(o.nwarn, 1);
    is_warning(o.warn[0], setting);
    ck_assert_int_eq(o.stderr_len, 0);
    return o;
}

START_TEST(appendonly_no_is_one_warning)
{
    struct outcome o = one_warning("no", "noeviction", "runs with appendonly no");
    ck_assert_msg(strstr(o.warn[0], "set appendonly yes") != NULL, "no remedy in \"%s\"", o.warn[0]);
}
END_TEST

START_TEST(allkeys_lru_is_one_warning)
{
    struct outcome o = one_warning("yes", "allkeys-lru", "has maxmemory-policy allkeys-lru");
    ck_assert_msg(strstr(o.warn[0], "set maxmemory-policy noeviction") != NULL, "no remedy in \"%s\"", o.warn[0]);
}
END_TEST

START_TEST(volatile_lru_is_one_warning)
{
    /* Queue keys carry no TTL, but the rate buckets do, and a volatile
     * policy still names a server that evicts: warned as any non-noeviction. */
    one_warning("yes", "volatile-lru", "has maxmemory-policy volatile-lru");
}
END_TEST

START_TEST(both_risks_are_warned_once_each_however_many_stores_open)
{
    configure("no", "allkeys-lru");
    struct outcome o = open_case(cfg_uri(NULL), 3, 1);
    ck_assert_int_eq(o.nwarn, 2);
    int evict = strstr(o.warn[0], "maxmemory-policy allkeys-lru") ? 0 : 1;
    is_warning(o.warn[evict], "has maxmemory-policy allkeys-lru");
    is_warning(o.warn[1 - evict], "runs with appendonly no");
    ck_assert_int_eq(o.stderr_len, 0);
}
END_TEST

START_TEST(safe_config_gives_no_warning)
{
    configure("yes", "noeviction");
    struct outcome o = open_case(cfg_uri(NULL), 2, 1);
    ck_assert_int_eq(o.nwarn, 0);
    ck_assert_int_eq(o.stderr_len, 0);
}
END_TEST

START_TEST(without_a_log_callback_the_warnings_go_to_stderr_once)
{
    configure("no", "allkeys-lru");
    unsetenv("AT_REDIS_WARN");
    struct outcome o = open_case(cfg_uri(NULL), 2, 0);
    ck_assert_int_eq(o.nwarn, 0);
    /* Two lines of "libasynctask: warning: redis at ...": one per risk,
     * not one per store. */
    ck_assert_int_gt(o.stderr_len, 2 * 60);
    ck_assert_int_lt(o.stderr_len, 2 * 400);
    setenv("AT_REDIS_WARN", "0", 1);
    o = open_case(cfg_uri(NULL), 1, 0);
    ck_assert_int_eq(o.stderr_len, 0);
}
END_TEST

START_TEST(acl_user_without_config_opens_without_warning)
{
    configure("no", "allkeys-lru");
    redisContext *op = admin(port("AT_TEST_CFG_PORT"));
    admin_ok(op, "ACL SETUSER nocfg reset on >nocfg-pw ~* &* +@all -config");
    /* The user really cannot read the settings, so no warning is due to
     * the code not asking. */
    redisContext *u = admin(port("AT_TEST_CFG_PORT"));
    admin_ok(u, "AUTH nocfg nocfg-pw");
    redisReply *r = redisCommand(u, "CONFIG GET appendonly");
    ck_assert_msg(r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOPERM", 6) == 0,
                  "CONFIG is not refused to the user");
    freeReplyObject(r);
    redisFree(u);
    struct outcome o = open_case(cfg_uri("nocfg:nocfg-pw@"), 1, 1);
    ck_assert_int_eq(o.nwarn, 0);
    ck_assert_int_eq(o.stderr_len, 0);
    admin_ok(op, "ACL DELUSER nocfg");
    redisFree(op);
}
END_TEST

START_TEST(renamed_config_command_opens_without_warning)
{
    /* That server has allkeys-lru and appendonly no, both risks, and no
     * CONFIG command at all (rename-command cannot be set at runtime). */
    int p = port("AT_TEST_NOCFG_PORT");
    redisContext *op = admin(p);
    redisReply *r = redisCommand(op, "CONFIG GET appendonly");
    ck_assert_msg(r && r->type == REDIS_REPLY_ERROR, "CONFIG still answers on the renamed server");
    freeReplyObject(r);
    redisFree(op);
    char uri[128];
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d/0?prefix=nocfg-%ld", p, (long)getpid());
    struct outcome o = open_case(uri, 1, 1);
    ck_assert_int_eq(o.nwarn, 0);
    ck_assert_int_eq(o.stderr_len, 0);
}
END_TEST

/* ----------------------------------------------------------- full server */

#define FILL_PAYLOAD (64 * 1024)
/* Below the memory in use once filled: every write that grows memory is
 * refused whatever buffers the server frees meanwhile, while the drain
 * steps (which free a few small jobs each) keep it full. */
#define FULL_MARGIN (256 * 1024)

static at_store *g_s;
static redisContext *g_op;
static char g_prefix[64];
static size_t g_filled;

static at_opts *queue_opts(const char *queue, const char *key)
{
    at_opts *o = NULL;
    ck_assert_int_eq(at_opts_new(&o), 0);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_QUEUE, queue), 0);
    if (key)
        ck_assert_int_eq(at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, key), 0);
    return o;
}

static int enqueue_to(const char *queue, const char *key, size_t len, char *id_out)
{
    static char payload[FILL_PAYLOAD];
    at_opts *o = queue_opts(queue, key);
    int rc = at_enqueue(id_out, g_s, "t", payload, len, o);
    at_opts_free(o);
    return rc;
}

/* A fresh store on an empty server with a few small jobs in "dq" (the
 * ones the drain test works on) and one keyed job, then filled with
 * 64 KiB jobs in "fill" until an enqueue is refused, then held full. */
static void fill_server(void)
{
    g_op = admin(port("AT_TEST_FULL_PORT"));
    admin_ok(g_op, "CONFIG SET maxmemory 0");
    admin_ok(g_op, "FLUSHALL");
    snprintf(g_prefix, sizeof g_prefix, "full-%ld", (long)getpid());
    char uri[160];
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d/0?prefix=%s", port("AT_TEST_FULL_PORT"), g_prefix);
    int rc = at_store_open(&g_s, uri);
    ck_assert_msg(rc == 0, "open: %s", at_last_error());
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(enqueue_to("dq", NULL, 16, NULL), 0);
    ck_assert_int_eq(enqueue_to("dq", "k-old", 16, NULL), 0);
    admin_ok(g_op, "CONFIG SET maxmemory %lld", used_memory(g_op) + 1024 * 1024);
    g_filled = 0;
    for (int i = 0; i < 200 && (rc = enqueue_to("fill", NULL, FILL_PAYLOAD, NULL)) == 0; i++)
        g_filled++;
    ck_assert_msg(rc == AT_ERR_FULL, "filling: %s", at_err_name(rc));
    ck_assert_uint_ge(g_filled, 4);
    admin_ok(g_op, "CONFIG SET maxmemory %lld", used_memory(g_op) - FULL_MARGIN);
}

static void unfill_server(void)
{
    if (g_op) {
        admin_ok(g_op, "CONFIG SET maxmemory 0");
        redisFree(g_op);
        g_op = NULL;
    }
    at_store_close(g_s);
    g_s = NULL;
}

static uint64_t stats_count(const char *queue, int32_t state)
{
    at_stats *st = NULL;
    int rc = at_stats_get(&st, g_s);
    ck_assert_msg(rc == 0, "stats: %s", at_err_name(rc));
    uint64_t n = 0;
    for (size_t i = 0; i < at_stats_queue_count(st); i++)
        if (!queue || strcmp(at_stats_queue_name(st, i), queue) == 0)
            n += at_stats_count(st, i, state);
    at_stats_free(st);
    return n;
}

/* Everything a refused write could have left behind. */
struct snap {
    long long keys, jobs, idem, idemx, queues, defs, wf_keys;
    uint64_t counted;
};

static long long count_keys(const char *pattern)
{
    long long n = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(g_op, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        ck_assert_msg(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2, "SCAN");
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        n += (long long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

static struct snap snapshot(void)
{
    struct snap s;
    memset(&s, 0, sizeof s);
    s.keys = admin_int(g_op, "DBSIZE");
    s.jobs = admin_int(g_op, "HLEN {%s:dq}:j", g_prefix) + admin_int(g_op, "HLEN {%s:fill}:j", g_prefix) +
             admin_int(g_op, "HLEN {%s:dq2}:j", g_prefix) + admin_int(g_op, "HLEN {%s:newq}:j", g_prefix);
    s.idem = admin_int(g_op, "HLEN {%s}:idem", g_prefix);
    s.idemx = admin_int(g_op, "ZCARD {%s}:idemx", g_prefix);
    s.queues = admin_int(g_op, "SCARD {%s}:queues", g_prefix);
    s.defs = admin_int(g_op, "HLEN {%s/sched}:defs", g_prefix);
    char pat[96];
    snprintf(pat, sizeof pat, "{%s/wf:*", g_prefix);
    s.wf_keys = count_keys(pat);
    s.counted = stats_count(NULL, AT_STATE_ANY);
    return s;
}

static void same_snapshot(const struct snap *a, const struct snap *b)
{
    ck_assert_int_eq(a->keys, b->keys);
    ck_assert_int_eq(a->jobs, b->jobs);
    ck_assert_int_eq(a->idem, b->idem);
    ck_assert_int_eq(a->idemx, b->idemx);
    ck_assert_int_eq(a->queues, b->queues);
    ck_assert_int_eq(a->defs, b->defs);
    ck_assert_int_eq(a->wf_keys, b->wf_keys);
    ck_assert_uint_eq(a->counted, b->counted);
}

/* rc is the full server's answer: the code, its text, and a detail that
 * says what to do. */
static void is_full(int rc, const char *what)
{
    ck_assert_msg(rc == AT_ERR_FULL, "%s on a full server: %s (%s)", what, at_err_name(rc), at_last_error());
    ck_assert_str_eq(at_strerror(rc), "store is full");
    char msg[512];
    at_store_errmsg(g_s, msg, sizeof msg, NULL);
    ck_assert_msg(strstr(msg, "out of memory") && strstr(msg, "maxmemory") && strstr(msg, "changed nothing"),
                  "%s: detail \"%s\"", what, msg);
}

/* The server is still full: probing adds nothing when it is. */
static void still_full(const char *after)
{
    int rc = enqueue_to("dq", NULL, 16, NULL);
    ck_assert_msg(rc == AT_ERR_FULL, "after %s the server took a job (%s): the test no longer runs full", after,
                  at_err_name(rc));
}

START_TEST(full_server_refuses_single_enqueues_and_leaves_nothing)
{
    fill_server();
    struct snap before = snapshot();
    is_full(enqueue_to("dq", NULL, 16, NULL), "enqueue");
    is_full(enqueue_to("dq", "k-new", 16, NULL), "keyed enqueue");
    /* A new queue would be registered in {P}:queues by the same script. */
    is_full(enqueue_to("newq", NULL, 0, NULL), "enqueue into a new queue");
    struct snap after = snapshot();
    same_snapshot(&before, &after);
    ck_assert_int_eq(admin_int(g_op, "SISMEMBER {%s}:queues newq", g_prefix), 0);
    /* A key already held answers without writing: a duplicate, even when
     * full, with the holder's id. */
    char id[AT_ID_SIZE] = "";
    ck_assert_int_eq(enqueue_to("dq", "k-old", 16, id), AT_ERR_DUPLICATE);
    ck_assert_int_eq((int)strlen(id), AT_ID_LEN);
    unfill_server();
}
END_TEST

static at_batch *small_batch(const char *const *queues, const char *const *keys, size_t n)
{
    at_batch *b = NULL;
    ck_assert_int_eq(at_batch_new(&b), 0);
    for (size_t i = 0; i < n; i++) {
        at_opts *o = queue_opts(queues[i], keys ? keys[i] : NULL);
        ck_assert_int_eq(at_batch_add(b, "t", "payload", 7, o), 0);
        at_opts_free(o);
    }
    return b;
}

START_TEST(full_server_refuses_a_batch_whole)
{
    fill_server();
    struct snap before = snapshot();
    const char *q3[3] = {"dq", "dq", "dq"};
    at_batch *b = small_batch(q3, NULL, 3);
    is_full(at_enqueue_batch(g_s, b), "batch");
    ck_assert_ptr_null(at_batch_id(b, 0));
    at_batch_free(b);
    /* A held key among new ones: still nothing created, and the held key
     * keeps its job. */
    const char *keys[3] = {"k-a", "k-old", "k-b"};
    b = small_batch(q3, keys, 3);
    is_full(at_enqueue_batch(g_s, b), "keyed batch");
    at_batch_free(b);
    const char *q2[4] = {"dq", "dq2", "newq", "dq"};
    const char *keys2[4] = {NULL, "k-c", NULL, "k-d"};
    b = small_batch(q2, keys2, 4);
    is_full(at_enqueue_batch(g_s, b), "batch over three queues");
    at_batch_free(b);
    struct snap after = snapshot();
    same_snapshot(&before, &after);
    ck_assert_int_eq(admin_int(g_op, "HEXISTS {%s}:idem k-a", g_prefix), 0);
    ck_assert_int_eq(admin_int(g_op, "HEXISTS {%s}:idem k-old", g_prefix), 1);
    unfill_server();
}
END_TEST

START_TEST(full_server_refuses_workflow_submit_and_schedule_add)
{
    fill_server();
    struct snap before = snapshot();
    at_workflow *wf = NULL;
    ck_assert_int_eq(at_workflow_new(&wf), 0);
    at_opts *o = queue_opts("dq", NULL);
    ck_assert_int_eq(at_workflow_add(wf, "a", "t", "x", 1, o), 0);
    ck_assert_int_eq(at_workflow_add(wf, "b", "t", "y", 1, o), 0);
    ck_assert_int_eq(at_workflow_depend(wf, "b", "a"), 0);
    at_opts_free(o);
    char wf_id[AT_ID_SIZE];
    is_full(at_workflow_submit(wf_id, g_s, wf), "workflow submit");
    ck_assert_ptr_null(at_workflow_job_id(wf, "a"));
    at_workflow_free(wf);

    at_schedule *sc = NULL;
    ck_assert_int_eq(at_schedule_new(&sc, "nightly", "0 3 * * *", NULL, "t"), 0);
    int32_t created = -1;
    is_full(at_schedule_add(&created, g_s, sc), "schedule add");
    at_schedule_free(sc);
    at_schedule **list = NULL;
    size_t n = 99;
    ck_assert_int_eq(at_schedule_list(&list, &n, g_s), 0);
    ck_assert_uint_eq(n, 0);
    at_schedule_list_free(list, n);
    struct snap after = snapshot();
    same_snapshot(&before, &after);
    unfill_server();
}
END_TEST

static int32_t state_of(const char *id)
{
    at_job *j = NULL;
    int rc = at_get(&j, g_s, id);
    ck_assert_msg(rc == 0, "get %s on a full server: %s", id, at_err_name(rc));
    int32_t st = at_job_state(j);
    at_job_free(j);
    return st;
}

START_TEST(workers_drain_a_full_server)
{
    fill_server();
    const char *dq[1] = {"dq"};
    at_job *jobs[4] = {NULL};
    size_t n = 0;
    int rc = at_poll(jobs, &n, g_s, dq, 1, 4, 0);
    ck_assert_msg(rc == 0, "poll on a full server: %s (%s)", at_err_name(rc), at_last_error());
    ck_assert_uint_eq(n, 4);
    still_full("poll");

    ck_assert_int_eq(at_ack(g_s, at_job_id(jobs[0]), at_job_token(jobs[0]), NULL, 0), 0);
    ck_assert_int_eq(state_of(at_job_id(jobs[0])), AT_STATE_SUCCEEDED);
    still_full("ack");

    int32_t st = 0;
    ck_assert_int_eq(at_fail(&st, g_s, at_job_id(jobs[1]), at_job_token(jobs[1]), "boom", AT_FAIL_RETRY), 0);
    ck_assert_int_eq(st, AT_STATE_SCHEDULED);
    still_full("fail (retry)");

    ck_assert_int_eq(at_fail(&st, g_s, at_job_id(jobs[2]), at_job_token(jobs[2]), "boom", AT_FAIL_PERMANENT), 0);
    ck_assert_int_eq(st, AT_STATE_DEAD);
    still_full("fail (permanent)");

    /* A holder keeps its lease on a full server: the touch script removes
     * before it adds (Redis refuses a script whose first write may grow
     * memory). */
    ck_assert_msg(at_touch(g_s, at_job_id(jobs[3]), at_job_token(jobs[3]), 60000) == 0, "touch on a full server: %s",
                  at_last_error());
    still_full("touch");

    /* at_ack_many is how the worker acks a poll. */
    const char *ids[1] = {at_job_id(jobs[3])};
    uint64_t toks[1] = {at_job_token(jobs[3])};
    int32_t res[1] = {1};
    ck_assert_int_eq(at_ack_many(res, g_s, 1, ids, toks), 0);
    ck_assert_int_eq(res[0], 0);
    still_full("ack_many");

    /* The two READY jobs left: claim one and cancel it while it runs (the
     * cancel only marks it; the script removes before it writes, as touch
     * does), its holder's ack then ends it CANCELLED; cancel the other
     * while READY. */
    at_job *run = NULL;
    size_t nrun = 0;
    ck_assert_int_eq(at_poll(&run, &nrun, g_s, dq, 1, 1, 0), 0);
    ck_assert_uint_eq(nrun, 1);
    int32_t pending = -1;
    ck_assert_msg(at_cancel(&pending, g_s, at_job_id(run)) == 0, "cancel of a RUNNING job on a full server: %s",
                  at_last_error());
    ck_assert_int_eq(pending, 1);
    still_full("cancel (mark)");
    ck_assert_int_eq(at_ack(g_s, at_job_id(run), at_job_token(run), NULL, 0), AT_ERR_CANCELLED);
    ck_assert_int_eq(state_of(at_job_id(run)), AT_STATE_CANCELLED);
    at_job *rest[2] = {NULL};
    size_t nrest = 0;
    char cursor[AT_CURSOR_SIZE];
    ck_assert_int_eq(at_list(rest, &nrest, cursor, g_s, "dq", AT_STATE_READY, NULL, 2), 0);
    ck_assert_uint_eq(nrest, 1);
    pending = -1;
    ck_assert_int_eq(at_cancel(&pending, g_s, at_job_id(rest[0])), 0);
    ck_assert_int_eq(pending, 0);
    ck_assert_int_eq(state_of(at_job_id(rest[0])), AT_STATE_CANCELLED);
    rest[1] = run;
    nrest = 2;
    still_full("cancel");
    ck_assert_uint_eq(stats_count("dq", AT_STATE_CANCELLED), 2);

    /* Purge: the finished ones (2 succeeded, 1 dead, 2 cancelled) go; "finished more than 0 ms ago" needs a tick. */
    struct timespec ts = {0, 5 * 1000000L};
    nanosleep(&ts, NULL);
    uint64_t purged = 0;
    rc = at_purge(&purged, g_s, 0);
    ck_assert_msg(rc == 0, "purge on a full server: %s (%s)", at_err_name(rc), at_last_error());
    ck_assert_uint_eq(purged, 5);
    ck_assert_uint_eq(stats_count("dq", AT_STATE_ANY), 1); /* the retried one */
    still_full("purge");

    for (size_t i = 0; i < 4; i++)
        at_job_free(jobs[i]);
    for (size_t i = 0; i < nrest; i++)
        at_job_free(rest[i]);
    unfill_server();
}
END_TEST

START_TEST(draining_a_full_server_lets_it_take_jobs_again)
{
    fill_server();
    is_full(enqueue_to("dq", "k-later", 16, NULL), "keyed enqueue");
    /* Drain the fill: cancel each job, then purge them. */
    char cursor[AT_CURSOR_SIZE] = "";
    size_t cancelled = 0;
    do {
        at_job *page[64];
        size_t n = 0;
        char next[AT_CURSOR_SIZE];
        ck_assert_int_eq(at_list(page, &n, next, g_s, "fill", AT_STATE_READY, cursor, 64), 0);
        for (size_t i = 0; i < n; i++) {
            int rc = at_cancel(NULL, g_s, at_job_id(page[i]));
            ck_assert_msg(rc == 0, "cancel on a full server: %s (%s)", at_err_name(rc), at_last_error());
            cancelled++;
            at_job_free(page[i]);
        }
        memcpy(cursor, next, sizeof cursor);
    } while (cursor[0]);
    ck_assert_uint_eq(cancelled, g_filled);
    struct timespec ts = {0, 5 * 1000000L};
    nanosleep(&ts, NULL);
    uint64_t purged = 0;
    ck_assert_int_eq(at_purge(&purged, g_s, 0), 0);
    ck_assert_uint_eq(purged, g_filled);
    /* The key a full server refused was never taken: it creates its job. */
    char id[AT_ID_SIZE];
    ck_assert_int_eq(enqueue_to("dq", "k-later", 16, id), 0);
    ck_assert_int_eq(state_of(id), AT_STATE_READY);
    ck_assert_int_eq(enqueue_to("fill", NULL, FILL_PAYLOAD, NULL), 0);
    unfill_server();
}
END_TEST

int main(void)
{
    /* The full-server tests open stores without a log callback on a server
     * with appendonly no: keep their warnings off the test log. */
    setenv("AT_REDIS_WARN", "0", 0);
    Suite *su = suite_create("redis_limits");
    TCase *tc = tcase_create("warnings");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, appendonly_no_is_one_warning);
    tcase_add_test(tc, allkeys_lru_is_one_warning);
    tcase_add_test(tc, volatile_lru_is_one_warning);
    tcase_add_test(tc, both_risks_are_warned_once_each_however_many_stores_open);
    tcase_add_test(tc, safe_config_gives_no_warning);
    tcase_add_test(tc, without_a_log_callback_the_warnings_go_to_stderr_once);
    tcase_add_test(tc, acl_user_without_config_opens_without_warning);
    tcase_add_test(tc, renamed_config_command_opens_without_warning);
    suite_add_tcase(su, tc);
    tc = tcase_create("full");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, full_server_refuses_single_enqueues_and_leaves_nothing);
    tcase_add_test(tc, full_server_refuses_a_batch_whole);
    tcase_add_test(tc, full_server_refuses_workflow_submit_and_schedule_add);
    tcase_add_test(tc, workers_drain_a_full_server);
    tcase_add_test(tc, draining_a_full_server_lets_it_take_jobs_again);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
