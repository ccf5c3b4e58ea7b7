/*
 * redis_test.c - the Redis backend's own rules, beyond the conformance suite:
 * authentication, connection loss and reconnect, a server restart mid-run,
 * cross-process wake-ups, stats that never touch jobs, script reloads, a full
 * server, command timeouts, and URI errors.
 *
 * Run by tests/redis_backend.sh, which starts the servers and passes them in
 * the environment:
 *   AT_TEST_REDIS_PORT       plain server with AOF (restartable)
 *   AT_TEST_REDIS_RESTART    shell command that restarts that server
 *   AT_TEST_REDIS_AUTH_PORT  server with requirepass "s3cret pass" and the
 *                            ACL user worker / "w0rker:pw"
 * Each test uses a key prefix of its own.  A raw hiredis connection plays the
 * operator (CLIENT KILL, SCRIPT FLUSH, CONFIG SET, INFO).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "asynctask.h"

static int port(const char *var)
{
    const char *v = getenv(var);
    ck_assert_msg(v != NULL, "%s is not set: run tests/redis_backend.sh", var);
    return atoi(v);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A URI for the plain server with a prefix unique to the test and run. */
static const char *uri_for(const char *test, const char *extra)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "redis://127.0.0.1:%d/0?prefix=rt-%s-%ld-%ld%s", port("AT_TEST_REDIS_PORT"), test,
             (long)getpid(), (long)time(NULL), extra ? extra : "");
    return buf;
}

static at_store *open_ok(const char *uri)
{
    at_store *s = NULL;
    int rc = at_store_open(&s, uri);
    ck_assert_msg(rc == 0, "at_store_open(%s): %s: %s", uri, at_err_name(rc), at_last_error());
    return s;
}

/* The operator's connection to the plain server. */
static redisContext *admin(int p)
{
    redisContext *c = redisConnect("127.0.0.1", p);
    ck_assert_msg(c && !c->err, "admin connection: %s", c ? c->errstr : "no memory");
    return c;
}

static long long admin_int(redisContext *c, const char *cmd)
{
    redisReply *r = redisCommand(c, cmd);
    ck_assert_ptr_nonnull(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return v;
}

static void admin_ok(redisContext *c, const char *cmd)
{
    redisReply *r = redisCommand(c, cmd);
    ck_assert_msg(r && r->type != REDIS_REPLY_ERROR, "%s: %s", cmd, r ? r->str : c->errstr);
    freeReplyObject(r);
}

/* calls=N of one command in INFO commandstats (0 if never called). */
static long long cmd_calls(redisContext *c, const char *name)
{
    redisReply *r = redisCommand(c, "INFO commandstats");
    ck_assert_ptr_nonnull(r);
    char key[64];
    snprintf(key, sizeof key, "cmdstat_%s:calls=", name);
    const char *p = r->str ? strstr(r->str, key) : NULL;
    long long v = p ? atoll(p + strlen(key)) : 0;
    freeReplyObject(r);
    return v;
}

static uint64_t count_of(at_store *s, const char *queue, int32_t state)
{
    at_stats *st = NULL;
    ck_assert_int_eq(at_stats_get(&st, s), 0);
    uint64_t n = 0;
    for (size_t i = 0; i < at_stats_queue_count(st); i++)
        if (strcmp(at_stats_queue_name(st, i), queue) == 0)
            n = at_stats_count(st, i, state);
    at_stats_free(st);
    return n;
}

/* ------------------------------------------------------------------ auth */

static char auth_uri[512];

static const char *auth(const char *cred)
{
    snprintf(auth_uri, sizeof auth_uri, "redis://%s127.0.0.1:%d?prefix=auth-%ld", cred,
             port("AT_TEST_REDIS_AUTH_PORT"), (long)getpid());
    return auth_uri;
}

START_TEST(requirepass_password_opens_and_works)
{
    /* The space is %-escaped in the URI. */
    at_store *s = open_ok(auth(":s3cret%20pass@"));
    char id[AT_ID_SIZE];
    at_job *j = NULL;
    size_t n = 0;
    const char *q[1] = {"q"};
    ck_assert_int_eq(at_enqueue(id, s, "t", "x", 1, NULL), 0);
    ck_assert_int_eq(at_get(&j, s, id), 0);
    at_job_free(j);
    ck_assert_int_eq(at_poll(&j, &n, s, q, 1, 1, 0), 0);
    at_store_close(s);
}
END_TEST

START_TEST(acl_user_opens_and_works)
{
    at_store *s = open_ok(auth("worker:w0rker%3Apw@"));
    char id[AT_ID_SIZE];
    at_job *j = NULL;
    ck_assert_int_eq(at_enqueue(id, s, "t", NULL, 0, NULL), 0);
    ck_assert_int_eq(at_get(&j, s, id), 0);
    ck_assert_int_eq(at_job_state(j), AT_STATE_READY);
    at_job_free(j);
    at_store_close(s);
}
END_TEST

START_TEST(wrong_password_is_an_auth_error)
{
    at_store *s = NULL;
    ck_assert_int_eq(at_store_open(&s, auth(":wrong@")), AT_ERR_AUTH);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(at_last_error(), "password"));
    ck_assert_int_eq(at_store_open(&s, auth("worker:wrong@")), AT_ERR_AUTH);
    ck_assert_int_eq(at_store_open(&s, auth("nobody:s3cret%20pass@")), AT_ERR_AUTH);
}
END_TEST

START_TEST(missing_password_is_an_auth_error)
{
    at_store *s = NULL;
    ck_assert_int_eq(at_store_open(&s, auth("")), AT_ERR_AUTH);
    ck_assert_ptr_null(s);
}
END_TEST

/* ------------------------------------------------------------------- URI */

START_TEST(bad_uris_are_uri_errors)
{
    static const char *const bad[] = {
        "redis://",                                  /* no host */
        "redis://127.0.0.1:0",                       /* port */
        "redis://127.0.0.1:99999",                   /* port */
        "redis://127.0.0.1:6379/x",                  /* database */
        "redis://127.0.0.1:6379?prefix=a{b}",        /* hash tag in the prefix */
        "redis://127.0.0.1:6379?prefix=",            /* empty prefix */
        "redis://127.0.0.1:6379?nosuch=1",           /* unknown option */
        "redis://127.0.0.1:6379?timeout_ms=0",       /* range */
        "redis://127.0.0.1:6379?timeout_ms",         /* no value */
        "redis://secret@127.0.0.1:6379",             /* credentials without ':' */
        "redis://:%zz@127.0.0.1:6379",               /* bad escape */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        at_store *s = NULL;
        int rc = at_store_open(&s, bad[i]);
        ck_assert_msg(rc == AT_ERR_URI, "%s: %s, expected AT_ERR_URI", bad[i], at_err_name(rc));
        ck_assert_ptr_null(s);
    }
}
END_TEST

START_TEST(unreachable_server_is_a_conn_error_at_once)
{
    at_store *s = NULL;
    int64_t t0 = mono_ms();
    /* Port 1 on loopback: nothing listens, the connect is refused. */
    ck_assert_int_eq(at_store_open(&s, "redis://127.0.0.1:1"), AT_ERR_CONN);
    ck_assert_int_lt(mono_ms() - t0, 2000);
    ck_assert_ptr_nonnull(strstr(at_last_error(), "127.0.0.1:1"));
}
END_TEST

/* ------------------------------------------------------ connection loss */

START_TEST(client_kill_gives_a_clear_error_then_reconnects)
{
    at_store *s = open_ok(uri_for("kill", NULL));
    redisContext *op = admin(port("AT_TEST_REDIS_PORT"));
    at_opts *o = NULL;
    ck_assert_int_eq(at_opts_new(&o), 0);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_QUEUE, "kq"), 0);
    enum { N = 300 };
    char ids[N][AT_ID_SIZE];
    int ok = 0, conn_errors = 0;
    for (int i = 0; i < N; i++) {
        if (i == 100 || i == 200)
            /* Every client of the store, the subscriber included. */
            ck_assert_int_ge(admin_int(op, "CLIENT KILL TYPE normal SKIPME yes"), 1);
        int rc = at_enqueue(ids[ok], s, "t", &i, sizeof i, o);
        if (rc == 0) {
            ok++;
        } else {
            char msg[256];
            ck_assert_msg(rc == AT_ERR_CONN, "enqueue %d: %s", i, at_err_name(rc));
            at_store_errmsg(s, msg, sizeof msg, NULL);
            ck_assert_msg(strstr(msg, "connection to redis") != NULL, "unclear message: %s", msg);
            conn_errors++;
        }
    }
    /* One failed call per kill at most: the next call reconnects. */
    ck_assert_int_le(conn_errors, 2);
    ck_assert_int_ge(ok, N - 2);
    for (int i = 0; i < ok; i++) {
        at_job *j = NULL;
        ck_assert_msg(at_get(&j, s, ids[i]) == 0, "enqueue %d returned 0 but its job is gone", i);
        at_job_free(j);
    }
    ck_assert_uint_eq(count_of(s, "kq", AT_STATE_READY), (uint64_t)ok);
    at_opts_free(o);
    redisFree(op);
    at_store_close(s);
}
END_TEST

struct producer {
    at_store *s;
    atomic_int stop;
    char (*ids)[AT_ID_SIZE];
    int cap, ok, errors;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    at_opts *o = NULL;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "rq");
    while (!atomic_load(&p->stop) && p->ok < p->cap) {
        int rc = at_enqueue(p->ids[p->ok], p->s, "t", NULL, 0, o);
        if (rc == 0)
            p->ok++;
        else
            p->errors++, sleep_ms(5);
    }
    at_opts_free(o);
    return NULL;
}

START_TEST(server_restart_mid_run_loses_no_acknowledged_enqueue)
{
    const char *restart = getenv("AT_TEST_REDIS_RESTART");
    ck_assert_ptr_nonnull(restart);
    at_store *s = open_ok(uri_for("restart", "&timeout_ms=1000"));
    struct producer p = {.s = s, .cap = 200000};
    p.ids = malloc((size_t)p.cap * AT_ID_SIZE);
    ck_assert_ptr_nonnull(p.ids);
    atomic_init(&p.stop, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, produce, &p), 0);
    sleep_ms(300);
    /* TERM: redis-server writes and fsyncs its AOF before it exits. */
    ck_assert_int_eq(system(restart), 0);
    sleep_ms(500);
    atomic_store(&p.stop, 1);
    pthread_join(t, NULL);
    ck_assert_int_gt(p.ok, 0);
    /* The store came back by itself: calls work again. */
    char id[AT_ID_SIZE];
    int rc = -1;
    for (int i = 0; i < 50 && rc != 0; i++, sleep_ms(50))
        rc = at_enqueue(id, s, "t", NULL, 0, NULL);
    ck_assert_int_eq(rc, 0);
    int lost = 0;
    for (int i = 0; i < p.ok; i++) {
        at_job *j = NULL;
        if (at_get(&j, s, p.ids[i]) != 0)
            lost++;
        at_job_free(j);
    }
    printf("restart: %d enqueues acknowledged, %d failed during the restart, %d lost\n", p.ok, p.errors, lost);
    ck_assert_int_eq(lost, 0);
    free(p.ids);
    at_store_close(s);
}
END_TEST

START_TEST(command_never_hangs_past_timeout_ms)
{
    at_store *s = open_ok(uri_for("timeout", "&timeout_ms=200"));
    redisContext *op = admin(port("AT_TEST_REDIS_PORT"));
    admin_ok(op, "CLIENT PAUSE 1500 ALL");
    int64_t t0 = mono_ms();
    int rc = at_enqueue(NULL, s, "t", NULL, 0, NULL);
    int64_t took = mono_ms() - t0;
    admin_ok(op, "CLIENT UNPAUSE");
    ck_assert_msg(rc == AT_ERR_TIMEOUT, "enqueue under CLIENT PAUSE: %s", at_err_name(rc));
    ck_assert_int_lt(took, 1000);
    /* And the store recovers. */
    ck_assert_int_eq(at_enqueue(NULL, s, "t", NULL, 0, NULL), 0);
    redisFree(op);
    at_store_close(s);
}
END_TEST

START_TEST(wait_replicas_without_replicas_is_a_timeout_after_the_write)
{
    /* A socket timeout with room to spare (also under sanitizers), so the
     * WAIT, which gives up at 3/4 of it, is what times out. */
    at_store *s = open_ok(uri_for("wait", "&wait_replicas=1&timeout_ms=1000"));
    char id[AT_ID_SIZE];
    char msg[256];
    ck_assert_int_eq(at_enqueue(id, s, "t", NULL, 0, NULL), AT_ERR_TIMEOUT);
    at_store_errmsg(s, msg, sizeof msg, NULL);
    ck_assert_ptr_nonnull(strstr(msg, "replicas"));
    at_store_close(s);
}
END_TEST

/* ---------------------------------------------------------------- scripts */

START_TEST(script_flush_is_survived_by_reloading)
{
    at_store *s = open_ok(uri_for("flush", NULL));
    redisContext *op = admin(port("AT_TEST_REDIS_PORT"));
    char id[AT_ID_SIZE];
    ck_assert_int_eq(at_enqueue(id, s, "t", NULL, 0, NULL), 0);
    admin_ok(op, "SCRIPT FLUSH");
    ck_assert_int_eq(at_enqueue(id, s, "t", NULL, 0, NULL), 0);
    admin_ok(op, "SCRIPT FLUSH");
    at_stats *st = NULL;
    ck_assert_int_eq(at_stats_get(&st, s), 0);
    at_stats_free(st);
    admin_ok(op, "SCRIPT FLUSH");
    at_job *j = NULL;
    ck_assert_int_eq(at_get(&j, s, id), 0);
    at_job_free(j);
    redisFree(op);
    at_store_close(s);
}
END_TEST

/* ------------------------------------------------------------------ stats */

START_TEST(stats_cost_does_not_grow_with_jobs)
{
    at_store *s = open_ok(uri_for("stats", NULL));
    redisContext *op = admin(port("AT_TEST_REDIS_PORT"));
    at_batch *b = NULL;
    at_opts *o = NULL;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "big");
    ck_assert_int_eq(at_batch_new(&b), 0);
    for (int i = 0; i < 5000; i++)
        ck_assert_int_eq(at_batch_add(b, "t", NULL, 0, o), 0);
    ck_assert_int_eq(at_enqueue_batch(s, b), 0);
    at_opts_set_str(o, AT_OPT_QUEUE, "small");
    ck_assert_int_eq(at_enqueue(NULL, s, "t", NULL, 0, o), 0);
    long long hget0 = cmd_calls(op, "hget"), hscan0 = cmd_calls(op, "hscan"), zrange0 = cmd_calls(op, "zrange"),
              hmget0 = cmd_calls(op, "hmget");
    ck_assert_uint_eq(count_of(s, "big", AT_STATE_READY), 5000);
    /* No job record is read, nothing is scanned: a constant number of
     * commands per queue (one HMGET of the counts, one ZRANGE for the next
     * due time). */
    ck_assert_int_eq(cmd_calls(op, "hget") - hget0, 0);
    ck_assert_int_eq(cmd_calls(op, "hscan") - hscan0, 0);
    ck_assert_int_le(cmd_calls(op, "hmget") - hmget0, 2 + 2 /* other tests' stores are not listed */);
    ck_assert_int_le(cmd_calls(op, "zrange") - zrange0, 2);
    at_batch_free(b);
    at_opts_free(o);
    redisFree(op);
    at_store_close(s);
}
END_TEST

/* ------------------------------------------------------------------- full */

START_TEST(full_server_refuses_enqueue_and_writes_nothing)
{
    at_store *s = open_ok(uri_for("full", NULL));
    redisContext *op = admin(port("AT_TEST_REDIS_PORT"));
    ck_assert_int_eq(at_store_set_option(s, AT_OPT_STORE_MAX_PAYLOAD, 1 << 20), 0);
    at_opts *o = NULL;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "fq");
    ck_assert_int_eq(at_enqueue(NULL, s, "t", NULL, 0, o), 0); /* the queue exists */
    redisReply *r = redisCommand(op, "INFO memory");
    long long used = atoll(strstr(r->str, "used_memory:") + 12);
    freeReplyObject(r);
    r = redisCommand(op, "CONFIG SET maxmemory %lld", used + 4 * 1048576);
    freeReplyObject(r);
    admin_ok(op, "CONFIG SET maxmemory-policy noeviction");
    static char big[512 * 1024];
    at_batch *b = NULL;
    at_batch_new(&b);
    for (int i = 0; i < 4; i++)
        at_batch_add(b, "t", big, sizeof big, o);
    int created = 1, rc = 0;
    for (int i = 0; i < 40 && rc == 0; i++) {
        rc = at_enqueue_batch(s, b);
        if (rc == 0)
            created += 4;
    }
    admin_ok(op, "CONFIG SET maxmemory 0");
    ck_assert_msg(rc == AT_ERR_FULL, "enqueue into a full server: %s", at_err_name(rc));
    /* All or nothing: the refused batch left no job behind. */
    ck_assert_uint_eq(count_of(s, "fq", AT_STATE_ANY), (uint64_t)created);
    at_batch_free(b);
    at_opts_free(o);
    redisFree(op);
    at_store_close(s);
}
END_TEST

START_TEST(eviction_policy_is_warned_about_on_stderr)
{
    redisContext *op = admin(port("AT_TEST_REDIS_PORT"));
    admin_ok(op, "CONFIG SET maxmemory-policy allkeys-lru");
    char path[] = "/tmp/at-redis-warn-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    unsetenv("AT_REDIS_WARN");
    at_store *s = NULL;
    int rc = at_store_open(&s, uri_for("warn", NULL));
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    admin_ok(op, "CONFIG SET maxmemory-policy noeviction");
    ck_assert_int_eq(rc, 0);
    char text[2048] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    ck_assert_msg(strstr(text, "allkeys-lru") != NULL, "no warning on stderr: \"%s\"", text);
    at_store_close(s);
    redisFree(op);
}
END_TEST

/* --------------------------------------------------------------- wake-ups */

/* A poller in another process: it opens its own store (never one from
 * before fork), polls `n` times blocking and writes each job's latency (µs,
 * from the monotonic time the producer put in the payload) to `fd`. */
static void child_poller(const char *uri, int n, int fd)
{
    at_store *s = NULL;
    if (at_store_open(&s, uri) != 0)
        _exit(2);
    const char *q[1] = {"wq"};
    for (int i = 0; i < n; i++) {
        at_job *j = NULL;
        size_t got = 0;
        if (at_poll(&j, &got, s, q, 1, 1, 5000) != 0 || got != 1)
            _exit(3);
        int64_t lat = mono_us();
        int64_t sent;
        memcpy(&sent, at_job_payload(j, NULL), sizeof sent);
        lat -= sent;
        at_ack(s, at_job_id(j), at_job_token(j), NULL, 0);
        at_job_free(j);
        if (write(fd, &lat, sizeof lat) != sizeof lat)
            _exit(4);
    }
    at_store_close(s);
    _exit(0);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

START_TEST(enqueue_in_one_process_wakes_a_poller_in_another)
{
    enum { N = 200 };
    char uri[512];
    snprintf(uri, sizeof uri, "%s", uri_for("wake", NULL));
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(pfd[0]);
        child_poller(uri, N, pfd[1]);
    }
    close(pfd[1]);
    at_store *s = open_ok(uri);
    at_opts *o = NULL;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "wq");
    int64_t lat[N];
    sleep_ms(200); /* the child opens its store and blocks */
    for (int i = 0; i < N; i++) {
        int64_t now = mono_us();
        ck_assert_int_eq(at_enqueue(NULL, s, "t", &now, sizeof now, o), 0);
        /* Wait for the child's answer: each job finds the poller asleep. */
        ck_assert_int_eq(read(pfd[0], &lat[i], sizeof lat[i]), (ssize_t)sizeof lat[i]);
        sleep_ms(2);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "poller process failed: %d", status);
    qsort(lat, N, sizeof lat[0], cmp_i64);
    printf("cross-process wake: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", lat[N / 2] / 1000.0,
           lat[N * 99 / 100] / 1000.0, lat[N - 1] / 1000.0);
    /* The target is 10 ms at p99 on an idle machine (bench suite `redis`
     * measures it); a loaded CI box gets some slack. */
    ck_assert_int_lt(lat[N * 99 / 100], 50000);
    at_opts_free(o);
    close(pfd[0]);
    at_store_close(s);
}
END_TEST

START_TEST(delayed_job_wakes_a_blocked_poller_on_time)
{
    at_store *s = open_ok(uri_for("delay", NULL));
    at_opts *o = NULL;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, "dq");
    at_opts_set_int(o, AT_OPT_DELAY_MS, 300);
    ck_assert_int_eq(at_enqueue(NULL, s, "t", NULL, 0, o), 0);
    const char *q[1] = {"dq"};
    at_job *j = NULL;
    size_t n = 0;
    ck_assert_int_eq(at_poll(&j, &n, s, q, 1, 1, 5000), 0);
    ck_assert_uint_eq(n, 1);
    int64_t late = at_job_time(j, AT_JOB_TIME_STARTED) - at_job_time(j, AT_JOB_TIME_RUN_AT);
    printf("delayed job: claimed %lld ms after its run_at\n", (long long)late);
    ck_assert_int_ge(late, 0);
    ck_assert_int_lt(late, 50);
    at_job_free(j);
    at_opts_free(o);
    at_store_close(s);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("redis");
    TCase *tc = tcase_create("auth");
    tcase_add_test(tc, requirepass_password_opens_and_works);
    tcase_add_test(tc, acl_user_opens_and_works);
    tcase_add_test(tc, wrong_password_is_an_auth_error);
    tcase_add_test(tc, missing_password_is_an_auth_error);
    suite_add_tcase(su, tc);
    tc = tcase_create("uri");
    tcase_add_test(tc, bad_uris_are_uri_errors);
    tcase_add_test(tc, unreachable_server_is_a_conn_error_at_once);
    suite_add_tcase(su, tc);
    tc = tcase_create("connection");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, client_kill_gives_a_clear_error_then_reconnects);
    tcase_add_test(tc, server_restart_mid_run_loses_no_acknowledged_enqueue);
    tcase_add_test(tc, command_never_hangs_past_timeout_ms);
    tcase_add_test(tc, wait_replicas_without_replicas_is_a_timeout_after_the_write);
    suite_add_tcase(su, tc);
    tc = tcase_create("server");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, script_flush_is_survived_by_reloading);
    tcase_add_test(tc, stats_cost_does_not_grow_with_jobs);
    tcase_add_test(tc, full_server_refuses_enqueue_and_writes_nothing);
    tcase_add_test(tc, eviction_policy_is_warned_about_on_stderr);
    suite_add_tcase(su, tc);
    tc = tcase_create("wake");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, enqueue_in_one_process_wakes_a_poller_in_another);
    tcase_add_test(tc, delayed_job_wakes_a_blocked_poller_on_time);
    suite_add_tcase(su, tc);

    setenv("AT_REDIS_WARN", "0", 0);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
