/*
 * conformance_workflow.c - conformance: workflows (docs/SEMANTICS.md
 * "Workflows"; at_workflow_new(3), ADR/0014).
 *
 * Every node's job goes to the test's own queue, so "what is claimable" is
 * the whole observation: a WAITING job never is, a released one is at once.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "conformance.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static at_workflow *g_wf;

static at_workflow *wf_new(void)
{
    at_workflow_free(g_wf);
    g_wf = NULL;
    ck_assert_int_eq(at_workflow_new(&g_wf), 0);
    return g_wf;
}

static void wf_teardown(void)
{
    at_workflow_free(g_wf);
    g_wf = NULL;
}

static void node(const char *name, const char *queue)
{
    at_opts *o = ct_opts(queue);
    int rc = at_workflow_add(g_wf, name, "step", name, strlen(name), o);
    ck_assert_msg(rc == 0, "at_workflow_add(%s): %s", name, at_err_name(rc));
}

static void dep(const char *child, const char *parent)
{
    ck_assert_int_eq(at_workflow_depend(g_wf, child, parent), 0);
}

static void submit(char wf_id[AT_ID_SIZE])
{
    char buf[AT_ID_SIZE];
    int rc = at_workflow_submit(wf_id ? wf_id : buf, ct_store, g_wf);
    char msg[256] = "";
    at_store_errmsg(ct_store, msg, sizeof msg, NULL);
    ck_assert_msg(rc == 0, "at_workflow_submit: %s (%s)", at_err_name(rc), msg);
}

static const char *id_of(const char *name)
{
    const char *id = at_workflow_job_id(g_wf, name);
    ck_assert_ptr_nonnull(id);
    return id;
}

/* Claim one job of `queue`; it must be node `name` (NULL: any); kept. */
static at_job *claim_node(const char *queue, const char *name)
{
    at_job *j = ct_claim(queue);
    if (name) {
        ck_assert_ptr_nonnull(at_job_node(j));
        ck_assert_str_eq(at_job_node(j), name);
    }
    return j;
}

static void ack(at_job *j)
{
    ck_assert_int_eq(at_ack(ct_store, at_job_id(j), at_job_token(j), NULL, 0), 0);
}

static void run_node(const char *queue, const char *name)
{
    ack(claim_node(queue, name));
}

static void status(const char *wf_id, int32_t *done, int32_t *failed, uint64_t counts[AT_STATE_COUNT__])
{
    int rc = at_workflow_status(done, failed, counts, ct_store, wf_id);
    ck_assert_msg(rc == 0, "at_workflow_status: %s", at_err_name(rc));
}

/* ------------------------------------------------------------- shapes */

START_TEST(chain_releases_each_child_with_its_parents_ack)
{
    const char *q = CT_Q("q");
    wf_new();
    node("a", q), node("b", q), node("c", q);
    dep("b", "a"), dep("c", "b");
    char wf[AT_ID_SIZE];
    submit(wf);
    at_job *a = claim_node(q, "a");
    ck_assert_ptr_null(ct_try_claim(q)); /* b and c wait */
    ack(a);
    ck_assert_int_eq(ct_state(id_of("b")), AT_STATE_READY);
    ck_assert_int_eq(ct_state(id_of("c")), AT_STATE_WAITING);
    run_node(q, "b");
    run_node(q, "c");
    int32_t done = 0, failed = 1;
    uint64_t c[AT_STATE_COUNT__];
    status(wf, &done, &failed, c);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(failed, 0);
    ck_assert_uint_eq(c[AT_STATE_SUCCEEDED], 3);
}
END_TEST

START_TEST(diamond_join_waits_for_both_branches)
{
    const char *q = CT_Q("q");
    wf_new();
    node("a", q), node("b", q), node("c", q), node("d", q);
    dep("b", "a"), dep("c", "a"), dep("d", "b"), dep("d", "c");
    submit(NULL);
    run_node(q, "a");
    at_job *x = claim_node(q, NULL), *y = claim_node(q, NULL);
    ck_assert_ptr_null(ct_try_claim(q));
    ack(x);
    ck_assert_int_eq(ct_state(id_of("d")), AT_STATE_WAITING);
    ck_assert_uint_eq(at_job_parents_left(ct_get(id_of("d"))), 1);
    ack(y);
    ck_assert_int_eq(ct_state(id_of("d")), AT_STATE_READY);
    run_node(q, "d");
    ck_assert_ptr_null(ct_try_claim(q));
}
END_TEST

START_TEST(fan_out_of_1000_and_fan_in)
{
    const char *q = CT_Q("q");
    wf_new();
    node("root", q);
    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "chunk.%d", i);
        node(name, q);
        dep(name, "root");
    }
    node("merge", q);
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "chunk.%d", i);
        dep("merge", name);
    }
    char wf[AT_ID_SIZE];
    submit(wf);
    uint64_t c[AT_STATE_COUNT__];
    status(wf, NULL, NULL, c);
    ck_assert_uint_eq(c[AT_STATE_WAITING], 1001);
    ck_assert_uint_eq(c[AT_STATE_READY], 1);
    run_node(q, "root");
    size_t done = 0;
    while (done < 1000) {
        at_job *jobs[64];
        size_t n = 0;
        const char *qs[1] = {q};
        ck_assert_int_eq(at_poll(jobs, &n, ct_store, qs, 1, 64, 0), 0);
        ck_assert_uint_gt(n, 0);
        for (size_t i = 0; i < n; i++) {
            ck_assert_str_ne(at_job_node(jobs[i]), "merge");
            ck_assert_int_eq(at_ack(ct_store, at_job_id(jobs[i]), at_job_token(jobs[i]), NULL, 0), 0);
            at_job_free(jobs[i]);
        }
        done += n;
        if (done < 1000)
            ck_assert_int_eq(ct_state(id_of("merge")), AT_STATE_WAITING);
    }
    ck_assert_uint_eq(done, 1000);
    at_job *m = claim_node(q, "merge");
    ck_assert_uint_eq(at_job_parent_count(m), 1000);
    ack(m);
    int32_t fin = 0;
    status(wf, &fin, NULL, c);
    ck_assert_int_eq(fin, 1);
    ck_assert_uint_eq(c[AT_STATE_SUCCEEDED], 1002);
}
END_TEST

struct blocked_poll {
    const char *queue;
    at_job *job;
    int64_t took_ms;
};

static void *poll_thread(void *arg)
{
    struct blocked_poll *b = arg;
    const char *qs[1] = {b->queue};
    size_t n = 0;
    int64_t t0 = ct_mono_ms();
    if (at_poll(&b->job, &n, ct_store, qs, 1, 1, 5000) != 0 || n != 1)
        b->job = NULL;
    b->took_ms = ct_mono_ms() - t0;
    return NULL;
}

START_TEST(nodes_keep_their_own_queues_and_a_release_wakes_a_blocked_poller)
{
    const char *qa = CT_Q("qa");
    char qb[200];
    snprintf(qb, sizeof qb, "%s", CT_Q("qb"));
    wf_new();
    node("a", qa), node("b", qb);
    dep("b", "a");
    submit(NULL);
    ck_assert_str_eq(at_job_queue(ct_get(id_of("a"))), qa);
    ck_assert_str_eq(at_job_queue(ct_get(id_of("b"))), qb);
    at_job *a = claim_node(qa, "a");
    struct blocked_poll bp = {.queue = qb};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, poll_thread, &bp), 0);
    ct_sleep_real(100); /* let it block */
    int64_t t0 = ct_mono_ms();
    ack(a);
    pthread_join(t, NULL);
    ck_assert_ptr_nonnull(bp.job);
    ct_keep_job(bp.job);
    ck_assert_str_eq(at_job_node(bp.job), "b");
    ck_assert_int_lt(ct_mono_ms() - t0, 500);
}
END_TEST

START_TEST(a_waiting_job_with_a_future_run_at_is_scheduled_when_released)
{
    const char *q = CT_Q("q");
    wf_new();
    node("a", q);
    at_opts *o = ct_opts(q);
    ct_set(o, AT_OPT_RUN_AT, ct_now() + 60000);
    ck_assert_int_eq(at_workflow_add(g_wf, "later", "step", NULL, 0, o), 0);
    dep("later", "a");
    submit(NULL);
    run_node(q, "a");
    ck_assert_int_eq(ct_state(id_of("later")), AT_STATE_SCHEDULED);
}
END_TEST

/* ----------------------------------------------------------- failure */

static void fail_dead(at_job *j)
{
    int32_t st = 0;
    ck_assert_int_eq(at_fail(&st, ct_store, at_job_id(j), at_job_token(j), "boom", AT_FAIL_PERMANENT), 0);
    ck_assert_int_eq(st, AT_STATE_DEAD);
}

START_TEST(dead_parent_cancels_descendants_by_default)
{
    const char *q = CT_Q("q");
    wf_new();
    node("a", q), node("b", q), node("c", q), node("side", q);
    dep("b", "a"), dep("c", "b");
    char wf[AT_ID_SIZE];
    submit(wf);
    at_job *a = NULL;
    /* "a" and "side" are both ready; fail "a". */
    for (int i = 0; i < 2; i++) {
        at_job *j = claim_node(q, NULL);
        if (strcmp(at_job_node(j), "a") == 0)
            a = j;
        else
            ack(j);
    }
    ck_assert_ptr_nonnull(a);
    fail_dead(a);
    ck_assert_int_eq(ct_state(id_of("b")), AT_STATE_CANCELLED);
    ck_assert_int_eq(ct_state(id_of("c")), AT_STATE_CANCELLED);
    at_job *b = ct_get(id_of("b"));
    ck_assert_ptr_nonnull(at_job_last_error(b));
    ck_assert_ptr_nonnull(strstr(at_job_last_error(b), id_of("a")));
    int32_t done = 0, failed = 0;
    status(wf, &done, &failed, NULL);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(failed, 1);
}
END_TEST

START_TEST(run_anyway_policy_runs_after_a_dead_parent)
{
    const char *q = CT_Q("q");
    wf_new();
    node("a", q), node("b", q), node("c", q);
    dep("b", "a"), dep("c", "b");
    ck_assert_int_eq(at_workflow_set_policy(g_wf, "b", AT_PARENT_FAIL_RUN), 0);
    submit(NULL);
    fail_dead(claim_node(q, "a"));
    ck_assert_int_eq(ct_state(id_of("b")), AT_STATE_READY);
    run_node(q, "b");
    run_node(q, "c");
}
END_TEST

START_TEST(dead_policy_dead_letters_and_descendants_follow_their_own_policy)
{
    const char *q = CT_Q("q");
    wf_new();
    node("a", q), node("b", q), node("c", q), node("d", q);
    dep("b", "a"), dep("c", "b"), dep("d", "b");
    ck_assert_int_eq(at_workflow_set_policy(g_wf, "b", AT_PARENT_FAIL_DEAD), 0);
    ck_assert_int_eq(at_workflow_set_policy(g_wf, "d", AT_PARENT_FAIL_RUN), 0);
    submit(NULL);
    fail_dead(claim_node(q, "a"));
    ck_assert_int_eq(ct_state(id_of("b")), AT_STATE_DEAD);
    ck_assert_ptr_nonnull(strstr(at_job_last_error(ct_get(id_of("b"))), id_of("a")));
    ck_assert_int_eq(ct_state(id_of("c")), AT_STATE_CANCELLED);
    ck_assert_int_eq(ct_state(id_of("d")), AT_STATE_READY);
}
END_TEST

START_TEST(cancelling_a_waiting_node_cancels_its_descendants)
{
    const char *q = CT_Q("q");
    wf_new();
    node("a", q), node("b", q), node("c", q);
    dep("b", "a"), dep("c", "b");
    submit(NULL);
    ck_assert_int_eq(at_cancel(NULL, ct_store, id_of("b")), 0);
    ck_assert_int_eq(ct_state(id_of("c")), AT_STATE_CANCELLED);
    run_node(q, "a");
    ck_assert_ptr_null(ct_try_claim(q));
}
END_TEST

START_TEST(lease_expiry_on_the_last_attempt_propagates)
{
    const char *q = CT_Q("q");
    wf_new();
    at_opts *o = ct_opts(q);
    ct_set(o, AT_OPT_MAX_ATTEMPTS, 1);
    ct_set(o, AT_OPT_LEASE_MS, 200);
    ck_assert_int_eq(at_workflow_add(g_wf, "a", "step", NULL, 0, o), 0);
    node("b", q);
    dep("b", "a");
    submit(NULL);
    claim_node(q, "a");
    ct_advance(300);
    ck_assert_ptr_null(ct_try_claim(q)); /* finds the expired lease */
    ck_assert_int_eq(ct_state(id_of("a")), AT_STATE_DEAD);
    ck_assert_int_eq(ct_state(id_of("b")), AT_STATE_CANCELLED);
}
END_TEST

START_TEST(workflow_cancel_mid_run)
{
    const char *q = CT_Q("q");
    wf_new();
    node("a", q), node("b", q), node("c", q);
    dep("b", "a"), dep("c", "b");
    char wf[AT_ID_SIZE];
    submit(wf);
    at_job *a = claim_node(q, "a");
    uint64_t n = 0;
    ck_assert_int_eq(at_workflow_cancel(&n, ct_store, wf), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(ct_state(id_of("b")), AT_STATE_CANCELLED);
    ck_assert_int_eq(ct_state(id_of("a")), AT_STATE_RUNNING);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(a), at_job_token(a), NULL, 0), AT_ERR_CANCELLED);
    int32_t done = 0, failed = 0;
    uint64_t c[AT_STATE_COUNT__];
    status(wf, &done, &failed, c);
    ck_assert_int_eq(done, 1);
    ck_assert_int_eq(failed, 1);
    ck_assert_uint_eq(c[AT_STATE_CANCELLED], 3);
}
END_TEST

/* ------------------------------------------------------------ submit */

START_TEST(cycle_is_rejected_naming_a_node_and_nothing_is_created)
{
    const char *q = CT_Q("q");
    wf_new();
    node("start", q), node("x", q), node("y", q), node("z", q);
    dep("x", "start"), dep("y", "x"), dep("z", "y"), dep("x", "z");
    char wf[AT_ID_SIZE] = "untouched";
    ck_assert_int_eq(at_workflow_submit(wf, ct_store, g_wf), AT_ERR_CYCLE);
    ck_assert_str_eq(wf, "");
    char msg[256] = "";
    at_store_errmsg(ct_store, msg, sizeof msg, NULL);
    ck_assert_msg(strstr(msg, "'x'") || strstr(msg, "'y'") || strstr(msg, "'z'"), "message: %s", msg);
    ck_assert_ptr_null(strstr(msg, "'start'"));
    ck_assert_uint_eq(ct_count(q, AT_STATE_ANY), 0);
    ck_assert_ptr_null(at_workflow_job_id(g_wf, "x"));
}
END_TEST

START_TEST(submit_with_an_unknown_parent_job_creates_nothing)
{
    const char *q = CT_Q("q");
    wf_new();
    node("a", q), node("b", q);
    dep("b", "a");
    ck_assert_int_eq(at_workflow_depend_on_job(g_wf, "b", "01ARZ3NDEKTSV4RRFFQ69G5FAV"), 0);
    ck_assert_int_eq(at_workflow_submit(NULL, ct_store, g_wf), AT_ERR_NOTFOUND);
    ck_assert_uint_eq(ct_count(q, AT_STATE_ANY), 0);
}
END_TEST

START_TEST(existing_jobs_as_parents)
{
    const char *q = CT_Q("q");
    char done_id[AT_ID_SIZE], dead_id[AT_ID_SIZE];
    at_opts *o = ct_opts(CT_Q("pre"));
    ct_enqueue(done_id, o);
    ct_enqueue(dead_id, o);
    at_job *first = ct_claim(CT_Q("pre"));
    at_job *second = ct_claim(CT_Q("pre"));
    at_job *d = strcmp(at_job_id(first), done_id) == 0 ? first : second;
    at_job *x = d == first ? second : first;
    ack(d);
    fail_dead(x);
    wf_new();
    node("after_done", q), node("after_dead", q), node("after_dead_run", q);
    ck_assert_int_eq(at_workflow_depend_on_job(g_wf, "after_done", done_id), 0);
    ck_assert_int_eq(at_workflow_depend_on_job(g_wf, "after_dead", dead_id), 0);
    ck_assert_int_eq(at_workflow_depend_on_job(g_wf, "after_dead_run", dead_id), 0);
    ck_assert_int_eq(at_workflow_set_policy(g_wf, "after_dead_run", AT_PARENT_FAIL_RUN), 0);
    submit(NULL);
    ck_assert_int_eq(ct_state(id_of("after_done")), AT_STATE_READY);
    ck_assert_int_eq(ct_state(id_of("after_dead")), AT_STATE_CANCELLED);
    ck_assert_int_eq(ct_state(id_of("after_dead_run")), AT_STATE_READY);
}
END_TEST

START_TEST(a_running_plain_job_releases_its_workflow_child)
{
    const char *q = CT_Q("q");
    char pid[AT_ID_SIZE];
    ct_enqueue(pid, ct_opts(CT_Q("pre")));
    at_job *p = ct_claim(CT_Q("pre"));
    wf_new();
    node("child", q);
    ck_assert_int_eq(at_workflow_depend_on_job(g_wf, "child", pid), 0);
    submit(NULL);
    ck_assert_int_eq(ct_state(id_of("child")), AT_STATE_WAITING);
    ack(p);
    ck_assert_int_eq(ct_state(id_of("child")), AT_STATE_READY);
}
END_TEST

START_TEST(duplicate_node_key_makes_children_wait_for_the_existing_job)
{
    const char *q = CT_Q("q");
    at_opts *k = ct_opts(q);
    ct_set_str(k, AT_OPT_IDEMPOTENCY_KEY, CT_KEY("k"));
    char existing[AT_ID_SIZE];
    ct_enqueue(existing, k);
    wf_new();
    ck_assert_int_eq(at_workflow_add(g_wf, "keyed", "step", NULL, 0, k), 0);
    node("child", q);
    dep("child", "keyed");
    submit(NULL);
    ck_assert_str_eq(id_of("keyed"), existing);
    at_job *c = ct_get(id_of("child"));
    ck_assert_int_eq(at_job_state(c), AT_STATE_WAITING);
    ck_assert_str_eq(at_job_parent_id(c, 0), existing);
    run_node(q, NULL); /* the existing job */
    ck_assert_int_eq(ct_state(id_of("child")), AT_STATE_READY);
}
END_TEST

START_TEST(snapshots_carry_workflow_node_parents_and_policy)
{
    const char *q = CT_Q("q");
    wf_new();
    node("a", q), node("b", q), node("c", q);
    dep("c", "a"), dep("c", "b");
    ck_assert_int_eq(at_workflow_set_policy(g_wf, "c", AT_PARENT_FAIL_DEAD), 0);
    char wf[AT_ID_SIZE];
    submit(wf);
    at_job *c = ct_get(id_of("c"));
    ck_assert_str_eq(at_job_workflow_id(c), wf);
    ck_assert_str_eq(at_job_node(c), "c");
    ck_assert_uint_eq(at_job_parent_count(c), 2);
    ck_assert_uint_eq(at_job_parents_left(c), 2);
    ck_assert_int_eq(at_job_parent_policy(c), AT_PARENT_FAIL_DEAD);
    const char *p0 = at_job_parent_id(c, 0), *p1 = at_job_parent_id(c, 1);
    ck_assert(((strcmp(p0, id_of("a")) == 0 && strcmp(p1, id_of("b")) == 0) ||
               (strcmp(p0, id_of("b")) == 0 && strcmp(p1, id_of("a")) == 0)));
    ck_assert_ptr_null(at_job_parent_id(c, 2));
    at_job *plain = ct_get(id_of("a"));
    ck_assert_uint_eq(at_job_parent_count(plain), 0);
}
END_TEST

START_TEST(children_read_their_parents_results)
{
    const char *q = CT_Q("q");
    wf_new();
    node("fetch", q), node("use", q);
    dep("use", "fetch");
    submit(NULL);
    at_job *f = claim_node(q, "fetch");
    ck_assert_int_eq(at_ack(ct_store, at_job_id(f), at_job_token(f), "r\0s", 3), 0);
    at_job *u = claim_node(q, "use");
    at_job *p = ct_get(at_job_parent_id(u, 0));
    size_t len = 0;
    const void *r = at_job_result(p, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(r, "r\0s", 3), 0);
}
END_TEST

START_TEST(workflow_jobs_lists_every_job_in_id_order_by_pages)
{
    const char *q = CT_Q("q");
    wf_new();
    char name[16];
    for (int i = 0; i < 25; i++) {
        snprintf(name, sizeof name, "n%d", i);
        node(name, q);
        if (i)
            dep(name, "n0");
    }
    char wf[AT_ID_SIZE];
    submit(wf);
    char cursor[AT_CURSOR_SIZE] = "", last[AT_ID_SIZE] = "";
    size_t total = 0;
    do {
        at_job *page[10];
        size_t n = 0;
        char next[AT_CURSOR_SIZE];
        ck_assert_int_eq(at_workflow_jobs(page, &n, next, ct_store, wf, cursor, 10), 0);
        for (size_t i = 0; i < n; i++) {
            ck_assert_str_eq(at_job_workflow_id(page[i]), wf);
            ck_assert_int_lt(strcmp(last, at_job_id(page[i])), 0);
            snprintf(last, sizeof last, "%s", at_job_id(page[i]));
            at_job_free(page[i]);
        }
        total += n;
        memcpy(cursor, next, sizeof cursor);
    } while (cursor[0]);
    ck_assert_uint_eq(total, 25);
}
END_TEST

START_TEST(unknown_workflow_is_notfound)
{
    ck_assert_int_eq(at_workflow_status(NULL, NULL, NULL, ct_store, "01ARZ3NDEKTSV4RRFFQ69G5FAV"), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_workflow_cancel(NULL, ct_store, "01ARZ3NDEKTSV4RRFFQ69G5FAV"), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_workflow_status(NULL, NULL, NULL, ct_store, "not-an-id"), AT_ERR_INVAL);
}
END_TEST

START_TEST(builder_errors_have_their_codes)
{
    wf_new();
    ck_assert_int_eq(at_workflow_add(g_wf, "bad name", "t", NULL, 0, NULL), AT_ERR_NAME);
    ck_assert_int_eq(at_workflow_add(g_wf, "a", "bad type", NULL, 0, NULL), AT_ERR_NAME);
    ck_assert_int_eq(at_workflow_add(g_wf, "a", "t", NULL, 3, NULL), AT_ERR_INVAL);
    ck_assert_int_eq(at_workflow_add(g_wf, "a", "t", NULL, 0, NULL), 0);
    ck_assert_int_eq(at_workflow_add(g_wf, "a", "t", NULL, 0, NULL), AT_ERR_EXISTS);
    ck_assert_int_eq(at_workflow_depend(g_wf, "a", "a"), AT_ERR_INVAL);
    ck_assert_int_eq(at_workflow_depend(g_wf, "a", "nope"), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_workflow_depend(g_wf, "nope", "a"), AT_ERR_NOTFOUND);
    ck_assert_int_eq(at_workflow_depend_on_job(g_wf, "a", "xyz"), AT_ERR_INVAL);
    ck_assert_int_eq(at_workflow_set_policy(g_wf, "a", 9), AT_ERR_INVAL);
    ck_assert_int_eq(at_workflow_set_policy(g_wf, "nope", AT_PARENT_FAIL_RUN), AT_ERR_NOTFOUND);
    ck_assert_uint_eq(at_workflow_count(g_wf), 1);
    at_workflow *empty = NULL;
    ck_assert_int_eq(at_workflow_new(&empty), 0);
    ck_assert_int_eq(at_workflow_submit(NULL, ct_store, empty), AT_ERR_INVAL);
    at_workflow_free(empty);
    ck_assert_int_eq(at_workflow_submit(NULL, ct_store, NULL), AT_ERR_INVAL);
}
END_TEST

/* ---------------------------------------------------------- batches */

START_TEST(completion_runs_after_all_members_with_their_counts)
{
    const char *q = CT_Q("q");
    wf_new();
    node("m1", q), node("m2", q), node("m3", q);
    ck_assert_int_eq(at_workflow_add_completion(g_wf, "done", "callback", NULL, 0, ct_opts(q)), 0);
    char wf[AT_ID_SIZE];
    submit(wf);
    for (int i = 0; i < 3; i++) {
        at_job *j = claim_node(q, NULL);
        ck_assert_str_ne(at_job_node(j), "done");
        if (strcmp(at_job_node(j), "m2") == 0)
            fail_dead(j);
        else
            ack(j);
    }
    at_job *cb = claim_node(q, "done");
    ck_assert_uint_eq(at_job_parent_count(cb), 3);
    uint64_t c[AT_STATE_COUNT__];
    int32_t done = 1, failed = 0;
    status(at_job_workflow_id(cb), &done, &failed, c);
    ck_assert_uint_eq(c[AT_STATE_SUCCEEDED], 2);
    ck_assert_uint_eq(c[AT_STATE_DEAD], 1);
    ck_assert_uint_eq(c[AT_STATE_RUNNING], 1);
    ck_assert_int_eq(done, 0);
    ck_assert_int_eq(failed, 1);
    ack(cb);
}
END_TEST

/* ---------------------------------------------------- dynamic fan-out */

static void spawn_chunks(const at_job *split, int n)
{
    wf_new();
    const char *q = at_job_queue(split);
    char name[32];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "chunk.%d", i);
        node(name, q);
    }
    node("merge", q);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "chunk.%d", i);
        dep("merge", name);
    }
    int rc = at_workflow_spawn(ct_store, at_job_id(split), at_job_token(split), g_wf);
    ck_assert_msg(rc == 0, "at_workflow_spawn: %s", at_err_name(rc));
}

START_TEST(a_running_job_spawns_chunks_and_a_merge)
{
    const char *q = CT_Q("q");
    wf_new();
    node("split", q);
    char wf[AT_ID_SIZE];
    submit(wf);
    at_job *split = claim_node(q, "split");
    spawn_chunks(split, 5);
    ck_assert_str_eq(at_job_workflow_id(ct_get(id_of("merge"))), wf);
    ck_assert_int_eq(ct_state(id_of("chunk.0")), AT_STATE_WAITING); /* until split succeeds */
    ck_assert_ptr_null(ct_try_claim(q));
    ack(split);
    for (int i = 0; i < 5; i++) {
        at_job *c = claim_node(q, NULL);
        ck_assert_str_ne(at_job_node(c), "merge");
        ack(c);
    }
    run_node(q, "merge");
    int32_t done = 0;
    uint64_t c[AT_STATE_COUNT__];
    status(wf, &done, NULL, c);
    ck_assert_int_eq(done, 1);
    ck_assert_uint_eq(c[AT_STATE_SUCCEEDED], 7);
}
END_TEST

START_TEST(spawn_under_a_stale_token_adds_nothing)
{
    const char *q = CT_Q("q");
    wf_new();
    node("split", q);
    char wf[AT_ID_SIZE];
    submit(wf);
    at_job *split = claim_node(q, "split");
    at_workflow *w = NULL;
    ck_assert_int_eq(at_workflow_new(&w), 0);
    ck_assert_int_eq(at_workflow_add(w, "x", "step", NULL, 0, ct_opts(q)), 0);
    ck_assert_int_eq(at_workflow_spawn(ct_store, at_job_id(split), at_job_token(split) + 1, w), AT_ERR_STALE);
    ack(split);
    ck_assert_int_eq(at_workflow_spawn(ct_store, at_job_id(split), at_job_token(split), w), AT_ERR_STALE);
    at_workflow_free(w);
    uint64_t c[AT_STATE_COUNT__];
    status(wf, NULL, NULL, c);
    ck_assert_uint_eq(c[AT_STATE_SUCCEEDED], 1);
    ck_assert_uint_eq(c[AT_STATE_WAITING] + c[AT_STATE_READY], 0);
}
END_TEST

START_TEST(a_retried_spawner_gets_the_same_children_not_copies)
{
    const char *q = CT_Q("q");
    wf_new();
    at_opts *o = ct_opts(q);
    ct_set(o, AT_OPT_LEASE_MS, 200);
    ck_assert_int_eq(at_workflow_add(g_wf, "split", "step", NULL, 0, o), 0);
    char wf[AT_ID_SIZE];
    submit(wf);
    at_job *first = claim_node(q, "split");
    spawn_chunks(first, 3);
    char merge1[AT_ID_SIZE];
    snprintf(merge1, sizeof merge1, "%s", id_of("merge"));
    ct_advance(300); /* the lease is lost mid-run */
    at_job *second = claim_node(q, "split");
    ck_assert_uint_eq(at_job_attempts(second), 2);
    /* The first attempt wakes up: fenced out. */
    ck_assert_int_eq(at_ack(ct_store, at_job_id(first), at_job_token(first), NULL, 0), AT_ERR_STALE);
    spawn_chunks(second, 3);
    ck_assert_str_eq(id_of("merge"), merge1);
    ack(second);
    for (int i = 0; i < 3; i++)
        run_node(q, NULL);
    run_node(q, "merge");
    ck_assert_ptr_null(ct_try_claim(q));
    uint64_t c[AT_STATE_COUNT__];
    status(wf, NULL, NULL, c);
    ck_assert_uint_eq(c[AT_STATE_SUCCEEDED], 5); /* split, 3 chunks, merge: each once */
    ck_assert_uint_eq(c[AT_STATE_WAITING] + c[AT_STATE_READY] + c[AT_STATE_RUNNING], 0);
}
END_TEST

START_TEST(a_parents_lease_expiry_mid_workflow_still_completes_once)
{
    const char *q = CT_Q("q");
    wf_new();
    at_opts *o = ct_opts(q);
    ct_set(o, AT_OPT_LEASE_MS, 200);
    ck_assert_int_eq(at_workflow_add(g_wf, "a", "step", NULL, 0, o), 0);
    node("b", q);
    dep("b", "a");
    char wf[AT_ID_SIZE];
    submit(wf);
    at_job *a1 = claim_node(q, "a");
    ct_advance(300);
    at_job *a2 = claim_node(q, "a");
    ck_assert_int_eq(ct_state(id_of("b")), AT_STATE_WAITING);
    ck_assert_int_eq(at_ack(ct_store, at_job_id(a1), at_job_token(a1), NULL, 0), AT_ERR_STALE);
    ck_assert_int_eq(ct_state(id_of("b")), AT_STATE_WAITING);
    ack(a2);
    run_node(q, "b");
    ck_assert_ptr_null(ct_try_claim(q));
    uint64_t c[AT_STATE_COUNT__];
    int32_t done = 0;
    status(wf, &done, NULL, c);
    ck_assert_int_eq(done, 1);
    ck_assert_uint_eq(c[AT_STATE_SUCCEEDED], 2);
}
END_TEST

TCase *ct_tcase_workflows(void)
{
    TCase *tc = ct_tcase("workflows");
    tcase_add_checked_fixture(tc, NULL, wf_teardown);
    tcase_add_test(tc, chain_releases_each_child_with_its_parents_ack);
    tcase_add_test(tc, diamond_join_waits_for_both_branches);
    tcase_add_test(tc, fan_out_of_1000_and_fan_in);
    tcase_add_test(tc, nodes_keep_their_own_queues_and_a_release_wakes_a_blocked_poller);
    tcase_add_test(tc, a_waiting_job_with_a_future_run_at_is_scheduled_when_released);
    tcase_add_test(tc, dead_parent_cancels_descendants_by_default);
    tcase_add_test(tc, run_anyway_policy_runs_after_a_dead_parent);
    tcase_add_test(tc, dead_policy_dead_letters_and_descendants_follow_their_own_policy);
    tcase_add_test(tc, cancelling_a_waiting_node_cancels_its_descendants);
    tcase_add_test(tc, lease_expiry_on_the_last_attempt_propagates);
    tcase_add_test(tc, workflow_cancel_mid_run);
    tcase_add_test(tc, cycle_is_rejected_naming_a_node_and_nothing_is_created);
    tcase_add_test(tc, submit_with_an_unknown_parent_job_creates_nothing);
    tcase_add_test(tc, existing_jobs_as_parents);
    tcase_add_test(tc, a_running_plain_job_releases_its_workflow_child);
    tcase_add_test(tc, duplicate_node_key_makes_children_wait_for_the_existing_job);
    tcase_add_test(tc, snapshots_carry_workflow_node_parents_and_policy);
    tcase_add_test(tc, children_read_their_parents_results);
    tcase_add_test(tc, workflow_jobs_lists_every_job_in_id_order_by_pages);
    tcase_add_test(tc, unknown_workflow_is_notfound);
    tcase_add_test(tc, builder_errors_have_their_codes);
    tcase_add_test(tc, completion_runs_after_all_members_with_their_counts);
    tcase_add_test(tc, a_running_job_spawns_chunks_and_a_merge);
    tcase_add_test(tc, spawn_under_a_stale_token_adds_nothing);
    tcase_add_test(tc, a_retried_spawner_gets_the_same_children_not_copies);
    tcase_add_test(tc, a_parents_lease_expiry_mid_workflow_still_completes_once);
    return tc;
}
