/*
 * fuzz_redis_reply.c - libFuzzer target for the Redis backend's handling of
 * replies: whatever a server (or something posing as one) answers, every
 * store call returns 0 or an AT_ERR_* code it may return, hands out only
 * well-formed objects, and never crashes, hangs or leaks.
 *
 * The input is a first line of operation letters (below; at most 32), then
 * the replies in RESP, read in order by the fake connection layer of
 * fake_redis.c for each command the calls send.  A first letter '@' takes
 * the open's replies from the stream too (SCRIPT LOAD x23, CONFIG GET x2);
 * '%' opens through redis-sentinel:// (discovery and ROLE); '+' sets
 * wait_replicas=1 (a WAIT after each write).  Job ids and tokens come from
 * the last claim's reply, so it steers the ack that follows, as in a
 * worker (before any claim: a fixed id).
 *
 * Seeds (tests/fuzz/redis_reply/) were recorded from a real redis-server
 * by tests/fuzz/record_redis_seeds.c.
 *
 * Build and run: `make fuzz` (tests/fuzz/fuzz.am), or by hand from the top
 * of the tree, in a build directory `b` configured with hiredis:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DHAVE_CONFIG_H -Ib -Iinclude -Ilib -D_GNU_SOURCE \
 *       -DAT_BUILDING_LIBRARY tests/fuzz/fuzz_redis_reply.c tests/fuzz/fake_redis.c lib/\*.c \
 *       backends/memory.c backends/memory_sched.c [backends/sqlite.c -lsqlite3] -lhiredis -lpthread -o fr
 *   ./fr -max_total_time=60 -max_len=4096 corpus/ tests/fuzz/redis_reply/
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_redis.h"
#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 32
#define POLL_MAX 4
#define FIXED_ID "01J0000000000000000000000A"

/* The codes any call that reaches the server may give for the server's
 * sake: it failed, refused, timed out, went away, answered nonsense.
 * AT_ERR_INTERNAL too: a script answering a code its C caller does not know
 * is the library's two halves disagreeing, which that code names. */
static bool store_code(int rc)
{
    return rc == AT_ERR_IO || rc == AT_ERR_CONN || rc == AT_ERR_TIMEOUT || rc == AT_ERR_BUSY || rc == AT_ERR_AUTH ||
           rc == AT_ERR_FULL || rc == AT_ERR_CORRUPT || rc == AT_ERR_NOMEM || rc == AT_ERR_INTERNAL;
}

/* rc must be 0, a store code, or one of the listed call-specific codes
 * (a 0-terminated list). */
static void expect(int rc, char op, const int *also)
{
    if (rc == 0 || store_code(rc))
        return;
    for (; also && *also; also++)
        if (rc == *also)
            return;
    fprintf(stderr, "op '%c' returned %d (%s): not a code it may return\n", op, rc, at_err_name(rc));
    abort();
}

static void check_id(const char *id)
{
    if (!id || strlen(id) != AT_ID_LEN)
        abort();
}

/* A job snapshot the API hands out: every accessor answers within its
 * promise. */
static void check_job(const at_job *j)
{
    if (!j)
        abort();
    check_id(at_job_id(j));
    const char *t = at_job_type(j), *q = at_job_queue(j);
    if (!t || !q)
        abort();
    int32_t st = at_job_state(j);
    if (st < AT_STATE_WAITING || st > AT_STATE_CANCELLED || !at_state_name(st))
        abort();
    size_t len = 99;
    const void *p = at_job_payload(j, &len);
    if (!p && len)
        abort();
    for (size_t i = 0; i < at_job_parent_count(j); i++)
        check_id(at_job_parent_id(j, i));
    if (at_job_parent_id(j, at_job_parent_count(j)) != NULL)
        abort();
    const char *tp = at_job_traceparent(j);
    if (tp && strlen(tp) != 55)
        abort();
}

/* A listing page: at most max jobs, each well-formed, and a terminated
 * cursor; the jobs are freed. */
static void check_page(int rc, at_job **jobs, size_t n, size_t max, const char *cursor)
{
    if (rc != 0)
        return;
    if (n > max || !memchr(cursor, '\0', AT_CURSOR_SIZE))
        abort();
    for (size_t i = 0; i < n; i++) {
        check_job(jobs[i]);
        at_job_free(jobs[i]);
    }
}

/* What the calls of one input remember from earlier replies. */
struct state {
    char id[AT_ID_SIZE];
    uint64_t token;
    char wf[AT_ID_SIZE];
    uint64_t lease_token;
};

static void take_job(struct state *s, const at_job *j)
{
    snprintf(s->id, sizeof s->id, "%s", at_job_id(j));
    s->token = at_job_token(j);
}

static int count_rows(void *ud, const at_sched_row *row)
{
    if (!row || !row->name || (row->spec_len && !row->spec) || strlen(row->last_job_id) >= AT_ID_SIZE)
        abort();
    (*(size_t *)ud)++;
    return 0;
}

static void run_op(at_store *st, struct state *s, char op)
{
    static const char *const queues[] = {"q1", "q2"};
    /* The calls on one job pass the script's {code, state} answer through
     * holder_code(), which knows these five: a server may answer any of
     * them to any such call. */
    static const int k_finish[] = {AT_ERR_STALE, AT_ERR_CANCELLED, AT_ERR_NOTFOUND, AT_ERR_TERMINAL, AT_ERR_STATE, 0};
    static const int k_notfound[] = {AT_ERR_NOTFOUND, 0};
    int rc = 0;
    switch (op) {
    case 'E': { /* enqueue, with an idempotency key and a traceparent */
        at_opts *o = NULL;
        if (at_opts_new(&o))
            return;
        at_opts_set_str(o, AT_OPT_QUEUE, "q1");
        at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, "k1");
        at_opts_set_str(o, AT_OPT_TRACEPARENT, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        char id[AT_ID_SIZE] = "";
        rc = at_enqueue(id, st, "t", "p", 1, o);
        at_opts_free(o);
        expect(rc, op, (const int[]){AT_ERR_DUPLICATE, 0});
        /* The id is not kept for later calls: it is made here at random,
         * so a recorded seed would take other paths on replay. */
        if (rc == 0 || rc == AT_ERR_DUPLICATE)
            check_id(id);
        break;
    }
    case 'B': { /* a batch over two queues, one job delayed */
        at_batch *b = NULL;
        at_opts *o = NULL;
        if (at_batch_new(&b) || at_opts_new(&o)) {
            at_batch_free(b);
            return;
        }
        at_batch_add(b, "t", "a", 1, NULL);
        at_opts_set_str(o, AT_OPT_QUEUE, "q2");
        at_opts_set_int(o, AT_OPT_DELAY_MS, 60000);
        at_batch_add(b, "t", "b", 1, o);
        rc = at_enqueue_batch(st, b);
        expect(rc, op, NULL);
        for (size_t i = 0; rc == 0 && i < at_batch_count(b); i++) {
            check_id(at_batch_id(b, i));
            int bs = at_batch_status(b, i);
            if (bs != 0 && bs != AT_ERR_DUPLICATE)
                abort();
        }
        at_batch_free(b);
        at_opts_free(o);
        break;
    }
    case 'C': { /* claim, into an array of exactly POLL_MAX */
        at_job **jobs = malloc(POLL_MAX * sizeof *jobs);
        if (!jobs)
            return;
        size_t n = 99;
        rc = at_poll(jobs, &n, st, queues, 2, POLL_MAX, 0);
        expect(rc, op, NULL);
        if (rc == 0 && n > POLL_MAX)
            abort();
        for (size_t i = 0; rc == 0 && i < n; i++) {
            check_job(jobs[i]);
            const char *q = at_job_queue(jobs[i]);
            if (strcmp(q, "q1") != 0 && strcmp(q, "q2") != 0)
                abort();
            take_job(s, jobs[i]);
            at_job_free(jobs[i]);
        }
        free(jobs);
        break;
    }
    case 'A':
        rc = at_ack(st, s->id, s->token, "r", 1);
        expect(rc, op, k_finish);
        break;
    case 'M': {
        const char *ids[2] = {s->id, FIXED_ID};
        uint64_t tokens[2] = {s->token, 7};
        int32_t res[2] = {99, 99};
        rc = at_ack_many(res, st, 2, ids, tokens);
        expect(rc, op, NULL);
        for (int i = 0; rc == 0 && i < 2; i++)
            expect(res[i], op, k_finish);
        break;
    }
    case 'F': {
        int32_t state = -1;
        rc = at_fail(&state, st, s->id, s->token, "boom", AT_FAIL_RETRY);
        expect(rc, op, k_finish);
        if ((rc == 0 || rc == AT_ERR_CANCELLED) && !at_state_name(state))
            abort();
        break;
    }
    case 'T':
        rc = at_touch(st, s->id, s->token, 0);
        expect(rc, op, k_finish);
        break;
    case 'Z':
        rc = at_release(st, s->id, s->token, 0);
        expect(rc, op, k_finish);
        break;
    case 'X': {
        int32_t pending = -1;
        rc = at_cancel(&pending, st, s->id);
        expect(rc, op, k_finish);
        if (rc == 0 && pending != 0 && pending != 1)
            abort();
        break;
    }
    case 'G': {
        at_job *j = NULL;
        rc = at_get(&j, st, s->id);
        expect(rc, op, k_notfound);
        if (rc == 0) {
            check_job(j);
            if (strcmp(at_job_id(j), s->id) != 0)
                abort();
            at_job_free(j);
        }
        break;
    }
    case 'L': {
        at_job *jobs[3];
        size_t n = 99;
        char cursor[AT_CURSOR_SIZE];
        memset(cursor, 'x', sizeof cursor);
        rc = at_list(jobs, &n, cursor, st, "q1", AT_STATE_ANY, NULL, 3);
        expect(rc, op, NULL);
        check_page(rc, jobs, n, 3, cursor);
        break;
    }
    case 'R': {
        uint64_t n = 0;
        rc = at_requeue(&n, st, "q1", NULL);
        expect(rc, op, NULL);
        break;
    }
    case 'r': {
        uint64_t n = 0;
        rc = at_requeue(&n, st, NULL, s->id);
        expect(rc, op, k_finish);
        break;
    }
    case 'P': {
        uint64_t n = 0;
        rc = at_purge(&n, st, 0);
        expect(rc, op, NULL);
        break;
    }
    case 'S': {
        at_stats *stats = NULL;
        rc = at_stats_get(&stats, st);
        expect(rc, op, NULL);
        if (rc == 0) {
            size_t nq = at_stats_queue_count(stats);
            for (size_t i = 0; i < nq; i++)
                if (!at_stats_queue_name(stats, i))
                    abort();
            at_stats_free(stats);
        }
        break;
    }
    case 'I': {
        char buf[256];
        int64_t n = at_metrics_prometheus(buf, sizeof buf, st);
        if (n < 0)
            expect((int)n, op, NULL);
        break;
    }
    case 'H': {
        at_schedule *sc = NULL;
        if (at_schedule_new(&sc, "s1", "*/5 * * * *", NULL, "t"))
            abort();
        int32_t created = -1;
        rc = at_schedule_add(&created, st, sc);
        expect(rc, op, NULL);
        if (rc == 0 && created != 0 && created != 1)
            abort();
        at_schedule_free(sc);
        break;
    }
    case 'h': {
        at_schedule **list = NULL;
        size_t n = 0;
        rc = at_schedule_list(&list, &n, st);
        expect(rc, op, NULL);
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (!at_schedule_name(list[i]) || !at_schedule_expr(list[i]))
                abort();
        if (rc == 0)
            at_schedule_list_free(list, n);
        break;
    }
    case 'l': { /* the rows as the scheduler reads them, undecoded */
        size_t n = 0;
        rc = st->vt->sched_list(st->be, NULL, count_rows, &n);
        expect(rc, op, NULL);
        break;
    }
    case 'g': {
        at_schedule *sc = NULL;
        rc = at_schedule_get(&sc, st, "s1");
        expect(rc, op, k_notfound);
        if (rc == 0) {
            if (strcmp(at_schedule_name(sc), "s1") != 0)
                abort();
            at_schedule_free(sc);
        }
        break;
    }
    case 'p':
        expect(at_schedule_pause(st, "s1"), op, k_notfound);
        break;
    case 'u':
        expect(at_schedule_resume(st, "s1"), op, k_notfound);
        break;
    case 'k':
        expect(at_schedule_remove(st, "s1"), op, k_notfound);
        break;
    case 'D': { /* the scheduler's lease, as a scheduler thread takes it */
        uint64_t token = 0;
        int64_t left = 0;
        rc = st->vt->lease_acquire(&token, &left, st->be, "at:scheduler", "owner-1", 5000);
        expect(rc, op, NULL);
        if (rc == 0)
            s->lease_token = token;
        break;
    }
    case 'd':
        rc = st->vt->lease_release(st->be, "at:scheduler", "owner-1", s->lease_token);
        expect(rc, op, (const int[]){AT_ERR_STALE, 0});
        break;
    case 'f':
        rc = st->vt->sched_fired(st->be, "s1", INT64_C(1775347200000), s->id, "at:scheduler", s->lease_token);
        expect(rc, op, (const int[]){AT_ERR_STALE, AT_ERR_NOTFOUND, 0});
        break;
    case 'N': { /* a worker's rate limit */
        uint32_t granted = 99;
        int64_t wait = -2;
        rc = st->vt->rate_take(&granted, &wait, st->be, "q1", 10, 1000, 3);
        expect(rc, op, NULL);
        if (rc == 0 && (granted > 3 || wait < 0))
            abort();
        break;
    }
    case 'Q':
        expect(at_queue_pause(st, "q1"), op, NULL);
        break;
    case 'U':
        expect(at_queue_resume(st, "q1"), op, NULL);
        break;
    case 'q': {
        int32_t paused = -1;
        rc = at_queue_is_paused(&paused, st, "q1");
        expect(rc, op, NULL);
        if (rc == 0 && paused != 0 && paused != 1)
            abort();
        break;
    }
    case 'W': { /* a workflow a -> {b, c}, c also after the last job seen */
        at_workflow *wf = NULL;
        if (at_workflow_new(&wf))
            return;
        at_workflow_add(wf, "a", "t", "x", 1, NULL);
        at_workflow_add(wf, "b", "t", NULL, 0, NULL);
        at_workflow_add(wf, "c", "t", NULL, 0, NULL);
        at_workflow_depend(wf, "b", "a");
        at_workflow_depend(wf, "c", "a");
        if (s->id[0])
            at_workflow_depend_on_job(wf, "c", s->id);
        char wid[AT_ID_SIZE] = "";
        rc = at_workflow_submit(wid, st, wf);
        /* STALE and CANCELLED are the spawn guard's, which the script
         * shares; a server may answer them here too. */
        expect(rc, op, (const int[]){AT_ERR_NOTFOUND, AT_ERR_STALE, AT_ERR_CANCELLED, 0});
        if (rc == 0) {
            check_id(wid);
            memcpy(s->wf, wid, sizeof wid);
            check_id(at_workflow_job_id(wf, "b"));
        }
        at_workflow_free(wf);
        break;
    }
    case 'K': { /* a running job spawns a node */
        at_workflow *wf = NULL;
        if (at_workflow_new(&wf))
            return;
        at_workflow_add(wf, "n", "t", NULL, 0, NULL);
        rc = at_workflow_spawn(st, s->id, s->token, wf);
        expect(rc, op, (const int[]){AT_ERR_STALE, AT_ERR_NOTFOUND, AT_ERR_CANCELLED, 0});
        if (rc == 0)
            check_id(at_workflow_job_id(wf, "n"));
        at_workflow_free(wf);
        break;
    }
    case 'w': {
        int32_t done = -1, failed = -1;
        uint64_t counts[AT_STATE_COUNT__];
        rc = at_workflow_status(&done, &failed, counts, st, s->wf[0] ? s->wf : FIXED_ID);
        expect(rc, op, k_notfound);
        if (rc == 0 && ((done != 0 && done != 1) || (failed != 0 && failed != 1)))
            abort();
        break;
    }
    case 'x': {
        uint64_t n = 0;
        rc = at_workflow_cancel(&n, st, s->wf[0] ? s->wf : FIXED_ID);
        expect(rc, op, k_notfound);
        break;
    }
    case 'j': {
        at_job *jobs[3];
        size_t n = 99;
        char cursor[AT_CURSOR_SIZE];
        rc = at_workflow_jobs(jobs, &n, cursor, st, s->wf[0] ? s->wf : FIXED_ID, NULL, 3);
        expect(rc, op, k_notfound);
        check_page(rc, jobs, n, 3, cursor);
        break;
    }
    default: /* not an operation: fuzzers spend little on these */
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    const uint8_t *nl = memchr(data, '\n', size < MAX_OPS + 4 ? size : MAX_OPS + 4);
    if (!nl)
        return 0;
    size_t nops = (size_t)(nl - data);
    const uint8_t *ops = data;
    unsigned flags = 0;
    bool sentinel = false, wait = false;
    for (; nops > 0 && (*ops == '@' || *ops == '%' || *ops == '+'); ops++, nops--) {
        if (*ops == '@')
            flags |= FZ_REDIS_OPEN_FROM_STREAM;
        else if (*ops == '%')
            sentinel = true;
        else
            wait = true;
    }
    /* An exact copy: ASan sees a read past the stream's end. */
    size_t rlen = size - (size_t)(nl + 1 - data);
    uint8_t *replies = malloc(rlen ? rlen : 1);
    if (!replies)
        return 0;
    memcpy(replies, nl + 1, rlen);
    fz_redis_feed(replies, rlen, flags);

    char uri[128];
    snprintf(uri, sizeof uri, "%s?timeout_ms=50&pool=2%s",
             sentinel ? "redis-sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster" : "redis://127.0.0.1:6379/0",
             wait ? "&wait_replicas=1" : "");
    at_store *st = NULL;
    int rc = at_store_open(&st, uri);
    expect(rc, 'o', NULL);
    if (rc == 0) {
        struct state s;
        memset(&s, 0, sizeof s);
        memcpy(s.id, FIXED_ID, sizeof s.id);
        s.token = 1;
        for (size_t i = 0; i < nops; i++)
            run_op(st, &s, (char)ops[i]);
        at_store_close(st);
    }
    free(replies);
    return 0;
}
