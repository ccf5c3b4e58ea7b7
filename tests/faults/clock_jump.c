/*
 * clock_jump.c - jobs never run before their run_at when the wall clock
 * jumps: the memory backend on an injected (manual) clock, with pollers
 * blocked in at_poll and the worker runtime running (ADR/0005, "Time" in
 * docs/SEMANTICS.md).
 *
 * at_clock_set() moves only the wall reading, exactly as an NTP step or
 * `date -s` would; at_clock_advance() moves wall and monotonic time
 * together, as time passing does.  Each test jumps the wall clock back or
 * forward by an hour and checks that no job is handed out while the
 * injected now is before its run_at, that it is handed out at the very
 * millisecond now reaches run_at (after a forward jump: at once, without
 * waiting for the monotonic deadline armed before the jump), and that the
 * pollers neither spin nor oversleep.
 *
 * Spinning is measured, not guessed: the store is the memory backend behind
 * a thin vtable that counts claim calls (registered as "clockmem:"), so a
 * poller that wakes without cause shows up as claims nobody asked for.  A
 * manual clock never moves by itself, so every claim must be explained by an
 * enqueue, a clock move or a real-time poll timeout.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "../chaos/util.h"

#define T0 INT64_C(1700000000000) /* 2023-11-14T22:13:20Z, any epoch time will do */
#define HOUR INT64_C(3600000)
/* Real time a poller may take to return after the move that made its job
 * due: generous for loaded CI machines and sanitizers; a lost wake-up
 * would take the poll's whole timeout (20 s), the failure we look for. */
#define PROMPT_MS 500
/* How long "nothing happens" is watched for (real time). */
#define QUIET_MS 60

/* --------------------------------------------------- counting backend */

static atomic_ulong g_claims;
static at_store_vtable g_vt;

static int count_open(at_backend **out, at_store *store, const char *uri)
{
    (void)uri;
    return at__memory_vtable.open(out, store, "memory:");
}

static int count_claim(at_job **jobs, size_t *n_out, int64_t *wake, at_backend *be, const char *const *queues,
                       size_t nq, size_t max)
{
    atomic_fetch_add(&g_claims, 1);
    return at__memory_vtable.claim(jobs, n_out, wake, be, queues, nq, max);
}

/* ------------------------------------------------------------ helpers */

static at_clock *clk;
static at_store *st;

static void setup(void)
{
    ck_assert_int_eq(at_clock_new_manual(&clk, T0), 0);
    ck_assert_int_eq(at_store_open(&st, "clockmem:"), 0);
    ck_assert_int_eq(at_store_set_clock(st, clk), 0);
    atomic_store(&g_claims, 0);
}

static void teardown(void)
{
    at_store_close(st);
    ck_assert_int_eq(at_clock_free(clk), 0);
}

/* Enqueue a job on queue "cj" due at run_at (a lease of lease_ms, 0: the
 * default); checks its state and run_at and returns run_at. */
static int64_t enqueue_at(char *id, int64_t run_at, int64_t lease_ms)
{
    at_opts *o;
    ck_assert_int_eq(at_opts_new(&o), 0);
    ck_assert_int_eq(at_opts_set_str(o, AT_OPT_QUEUE, "cj"), 0);
    ck_assert_int_eq(at_opts_set_int(o, AT_OPT_RUN_AT, run_at), 0);
    if (lease_ms)
        ck_assert_int_eq(at_opts_set_int(o, AT_OPT_LEASE_MS, lease_ms), 0);
    ck_assert_int_eq(at_enqueue(id, st, "t", NULL, 0, o), 0);
    at_opts_free(o);
    at_job *j;
    ck_assert_int_eq(at_get(&j, st, id), 0);
    ck_assert_int_eq(at_job_state(j), run_at > at_clock_now(clk) ? AT_STATE_SCHEDULED : AT_STATE_READY);
    ck_assert_int_eq(at_job_time(j, AT_JOB_TIME_RUN_AT), run_at);
    at_job_free(j);
    return run_at;
}

/* A thread blocked in at_poll on queue "cj". */
struct poller {
    pthread_t th;
    size_t max;
    at_job *jobs[4];
    size_t n;
    int rc;
    int64_t returned_mono; /* real monotonic ms at return */
    atomic_int done;
};

static void *poll_thread(void *arg)
{
    struct poller *p = arg;
    const char *q = "cj";
    /* 20 s of real time: only a lost wake-up would use it up. */
    p->rc = at_poll(p->jobs, &p->n, st, &q, 1, p->max, 20000);
    p->returned_mono = mono_ms();
    atomic_store(&p->done, 1);
    return NULL;
}

static void poller_start(struct poller *p, size_t max)
{
    memset(p, 0, sizeof *p);
    p->max = max;
    ck_assert_int_eq(pthread_create(&p->th, NULL, poll_thread, p), 0);
}

static void poller_join(struct poller *p)
{
    pthread_join(p->th, NULL);
    ck_assert_int_eq(p->rc, 0);
}

static void poller_free(struct poller *p)
{
    for (size_t i = 0; i < p->n; i++)
        at_job_free(p->jobs[i]);
}

/* Wait until the blocked poller has made exactly `want` claims in total,
 * then watch a little longer: more claims than the clock moves explain is
 * a poller that spins.  The poller must still be blocked. */
static void settle(const struct poller *p, unsigned long want)
{
    int64_t t0 = mono_ms();
    while (atomic_load(&g_claims) < want && mono_ms() - t0 < 5000)
        sleep_ms(1);
    ck_assert_uint_eq(atomic_load(&g_claims), want);
    sleep_ms(QUIET_MS);
    ck_assert_msg(atomic_load(&g_claims) == want, "poller spins: %lu claims where %lu are explained",
                  (unsigned long)atomic_load(&g_claims), want);
    ck_assert_msg(!atomic_load(&p->done), "poller returned (%zu jobs) before any job was due", p->n);
}

/* Wait for the poller to return after the clock move made at `moved_mono`
 * and check it did so promptly. */
static void expect_prompt(struct poller *p, int64_t moved_mono)
{
    poller_join(p);
    int64_t late = p->returned_mono - moved_mono;
    ck_assert_msg(late <= PROMPT_MS, "poller returned %lld ms after the job became due", (long long)late);
}

static int64_t started(const at_job *j)
{
    return at_job_time(j, AT_JOB_TIME_STARTED);
}

/* -------------------------------------------------------------- tests */

START_TEST(backward_jump_never_hands_out_a_job_before_its_run_at)
{
    char id[AT_ID_SIZE];
    int64_t run_at = enqueue_at(id, T0 + 60000, 0);
    struct poller p;
    poller_start(&p, 1);
    settle(&p, 1);
    /* Time passes to a second before run_at, then the wall clock steps
     * back an hour: the monotonic deadline armed at enqueue is reached by
     * the next advance, while the wall clock is still an hour short. */
    ck_assert_int_eq(at_clock_advance(clk, 59000), 0);
    settle(&p, 2);
    ck_assert_int_eq(at_clock_set(clk, T0 + 59000 - HOUR), 0);
    settle(&p, 3);
    ck_assert_int_eq(at_clock_advance(clk, HOUR), 0); /* wall: run_at - 1000 */
    settle(&p, 4);
    ck_assert_int_eq(at_clock_advance(clk, 999), 0); /* wall: run_at - 1 */
    settle(&p, 5);
    int64_t moved = mono_ms();
    ck_assert_int_eq(at_clock_advance(clk, 1), 0); /* wall: run_at */
    expect_prompt(&p, moved);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(at_job_id(p.jobs[0]), id);
    /* Claimed by the store's clock at exactly run_at: not a millisecond
     * early, not one late. */
    ck_assert_int_eq(started(p.jobs[0]), run_at);
    ck_assert_uint_eq(atomic_load(&g_claims), 6);
    poller_free(&p);
}
END_TEST

START_TEST(forward_jump_hands_out_overdue_jobs_at_once)
{
    char a[AT_ID_SIZE], b[AT_ID_SIZE], c[AT_ID_SIZE];
    int64_t ra = enqueue_at(a, T0 + 10 * 60000, 0);
    int64_t rb = enqueue_at(b, T0 + 20 * 60000, 0);
    int64_t rc = enqueue_at(c, T0 + 2 * HOUR, 0);
    struct poller p;
    poller_start(&p, 4);
    settle(&p, 1);
    /* The wall clock steps 20 minutes ahead; the monotonic clock does not
     * move at all, so only re-arming from run_at can make A and B due. */
    int64_t moved = mono_ms();
    ck_assert_int_eq(at_clock_set(clk, T0 + 20 * 60000), 0);
    expect_prompt(&p, moved);
    ck_assert_uint_eq(p.n, 2);
    ck_assert_str_eq(at_job_id(p.jobs[0]), a);
    ck_assert_str_eq(at_job_id(p.jobs[1]), b);
    ck_assert_int_ge(started(p.jobs[0]), ra);
    ck_assert_int_ge(started(p.jobs[1]), rb);
    ck_assert_uint_eq(atomic_load(&g_claims), 2);
    /* Done with them, or their leases would expire on the way to C. */
    for (size_t i = 0; i < 2; i++)
        ck_assert_int_eq(at_ack(st, at_job_id(p.jobs[i]), at_job_token(p.jobs[i]), NULL, 0), 0);
    poller_free(&p);

    /* C stays put until the wall clock reaches it, and then not later. */
    atomic_store(&g_claims, 0);
    poller_start(&p, 4);
    settle(&p, 1);
    ck_assert_int_eq(at_clock_set(clk, rc - 1), 0);
    settle(&p, 2);
    moved = mono_ms();
    ck_assert_int_eq(at_clock_set(clk, rc), 0);
    expect_prompt(&p, moved);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(at_job_id(p.jobs[0]), c);
    ck_assert_int_eq(started(p.jobs[0]), rc);
    poller_free(&p);
}
END_TEST

START_TEST(jump_back_then_forward_makes_the_job_due_at_its_run_at)
{
    char id[AT_ID_SIZE];
    int64_t run_at = enqueue_at(id, T0 + 30000, 0);
    struct poller p;
    poller_start(&p, 1);
    settle(&p, 1);
    ck_assert_int_eq(at_clock_set(clk, T0 - HOUR), 0);
    settle(&p, 2);
    /* The monotonic deadline passes while the wall clock is an hour
     * behind: the timer fires, finds the job not due and re-arms it for
     * the remaining hour. */
    ck_assert_int_eq(at_clock_advance(clk, 31000), 0);
    settle(&p, 3);
    /* Back to the right time, a millisecond short of run_at... */
    ck_assert_int_eq(at_clock_set(clk, run_at - 1), 0);
    settle(&p, 4);
    /* ...and to run_at: due at once, not an hour later when the re-armed
     * monotonic deadline would come. */
    int64_t moved = mono_ms();
    ck_assert_int_eq(at_clock_set(clk, run_at), 0);
    expect_prompt(&p, moved);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_int_eq(started(p.jobs[0]), run_at);
    ck_assert_uint_eq(atomic_load(&g_claims), 5);
    poller_free(&p);
}
END_TEST

START_TEST(leases_follow_the_wall_clock_never_expiring_early)
{
    char id[AT_ID_SIZE];
    enqueue_at(id, T0, 30000);
    const char *q = "cj";
    at_job *j[1];
    size_t n = 0;
    ck_assert_int_eq(at_poll(j, &n, st, &q, 1, 1, 0), 0);
    ck_assert_uint_eq(n, 1);
    uint64_t token = at_job_token(j[0]);
    int64_t lease = at_job_time(j[0], AT_JOB_TIME_LEASE);
    ck_assert_int_eq(lease, T0 + 30000);
    at_job_free(j[0]);
    /* Back an hour, then more than the lease passes on the monotonic
     * clock: by the store's clock the lease still has an hour to go. */
    ck_assert_int_eq(at_clock_set(clk, T0 - HOUR), 0);
    ck_assert_int_eq(at_clock_advance(clk, 31000), 0);
    ck_assert_int_eq(at_poll(j, &n, st, &q, 1, 1, 0), 0);
    ck_assert_uint_eq(n, 0);
    at_job *g;
    ck_assert_int_eq(at_get(&g, st, id), 0);
    ck_assert_int_eq(at_job_state(g), AT_STATE_RUNNING);
    at_job_free(g);
    /* A millisecond short of the deadline it still holds... */
    ck_assert_int_eq(at_clock_set(clk, lease - 1), 0);
    ck_assert_int_eq(at_poll(j, &n, st, &q, 1, 1, 0), 0);
    ck_assert_uint_eq(n, 0);
    /* ...and the forward jump to the deadline expires it at once. */
    ck_assert_int_eq(at_clock_set(clk, lease), 0);
    ck_assert_int_eq(at_poll(j, &n, st, &q, 1, 1, 0), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(at_job_attempts(j[0]), 2);
    ck_assert_uint_ne(at_job_token(j[0]), token);
    at_job_free(j[0]);
}
END_TEST

/* The worker runtime: handlers record the store's time when they start. */
#define WJOBS 2
static struct {
    pthread_mutex_t mu;
    char ids[WJOBS][AT_ID_SIZE];
    int64_t run_at[WJOBS];
    int64_t seen_now[WJOBS];
    int64_t seen_mono[WJOBS];
    int runs[WJOBS];
} g_w = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int32_t record(at_ctx *ctx, void *ud)
{
    (void)ud;
    int64_t now = AT_TIME_NONE;
    at_store_now(&now, at_ctx_store(ctx));
    pthread_mutex_lock(&g_w.mu);
    for (int i = 0; i < WJOBS; i++)
        if (strcmp(g_w.ids[i], at_job_id(at_ctx_job(ctx))) == 0) {
            g_w.runs[i]++;
            g_w.seen_now[i] = now;
            g_w.seen_mono[i] = mono_ms();
        }
    pthread_mutex_unlock(&g_w.mu);
    return AT_HANDLER_OK;
}

static int runs_of(int i)
{
    pthread_mutex_lock(&g_w.mu);
    int r = g_w.runs[i];
    pthread_mutex_unlock(&g_w.mu);
    return r;
}

static void wait_runs(int i, int want)
{
    int64_t t0 = mono_ms();
    while (runs_of(i) < want && mono_ms() - t0 < 5000)
        sleep_ms(1);
    ck_assert_int_eq(runs_of(i), want);
}

START_TEST(worker_runs_jobs_only_once_due_across_jumps)
{
    memset(g_w.runs, 0, sizeof g_w.runs);
    g_w.run_at[0] = enqueue_at(g_w.ids[0], T0 + 30000, 0);
    g_w.run_at[1] = enqueue_at(g_w.ids[1], T0 + 90000, 0);
    at_worker *w;
    ck_assert_int_eq(at_worker_new(&w, st), 0);
    ck_assert_int_eq(at_worker_add_queue(w, "cj", 1, 0), 0);
    ck_assert_int_eq(at_worker_set_int(w, AT_WORKER_THREADS, 2), 0);
    ck_assert_int_eq(at_worker_handle(w, "*", record, NULL), 0);
    int64_t t_start = mono_ms();
    ck_assert_int_eq(at_worker_start(w), 0);
    int moves = 0;

    /* Back an hour, then past both monotonic deadlines: nothing is due. */
    ck_assert_int_eq(at_clock_set(clk, T0 - HOUR), 0);
    moves++;
    ck_assert_int_eq(at_clock_advance(clk, 100000), 0);
    moves++;
    sleep_ms(QUIET_MS * 2);
    ck_assert_int_eq(runs_of(0) + runs_of(1), 0);

    /* Forward to the first run_at: it runs at once, the second does not. */
    int64_t moved = mono_ms();
    ck_assert_int_eq(at_clock_set(clk, g_w.run_at[0]), 0);
    moves++;
    wait_runs(0, 1);
    ck_assert_int_le(g_w.seen_mono[0] - moved, PROMPT_MS);
    ck_assert_int_eq(at_clock_advance(clk, g_w.run_at[1] - g_w.run_at[0] - 1), 0);
    moves++;
    sleep_ms(QUIET_MS * 2);
    ck_assert_int_eq(runs_of(1), 0);
    moved = mono_ms();
    ck_assert_int_eq(at_clock_advance(clk, 1), 0);
    moves++;
    wait_runs(1, 1);
    ck_assert_int_le(g_w.seen_mono[1] - moved, PROMPT_MS);

    at_worker_free(w);
    int64_t elapsed_s = (mono_ms() - t_start) / 1000;
    for (int i = 0; i < WJOBS; i++) {
        ck_assert_int_eq(runs_of(i), 1);
        ck_assert_msg(g_w.seen_now[i] >= g_w.run_at[i], "job %d ran at %lld, %lld ms before its run_at", i,
                      (long long)g_w.seen_now[i], (long long)(g_w.run_at[i] - g_w.seen_now[i]));
    }
    /* Each of the 2 threads claims once per clock move, once per finished
     * job, once per real-time poll timeout (1 s), plus its first claim and
     * one at stop: anything beyond is a poller that spins. */
    unsigned long bound = 2 * ((unsigned long)moves + WJOBS + (unsigned long)elapsed_s + 3);
    ck_assert_msg(atomic_load(&g_claims) <= bound, "worker made %lu claims, at most %lu are explained",
                  (unsigned long)atomic_load(&g_claims), bound);
}
END_TEST

int main(void)
{
    g_vt = at__memory_vtable;
    g_vt.scheme = "clockmem";
    g_vt.open = count_open;
    g_vt.claim = count_claim;
    if (at_store_register(&g_vt) != 0) {
        fprintf(stderr, "clock_jump: cannot register the counting backend: %s\n", at_last_error());
        return 1;
    }
    Suite *s = suite_create("clock_jump");
    TCase *tc = tcase_create("memory_manual_clock");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, backward_jump_never_hands_out_a_job_before_its_run_at);
    tcase_add_test(tc, forward_jump_hands_out_overdue_jobs_at_once);
    tcase_add_test(tc, jump_back_then_forward_makes_the_job_due_at_its_run_at);
    tcase_add_test(tc, leases_follow_the_wall_clock_never_expiring_early);
    tcase_add_test(tc, worker_runs_jobs_only_once_due_across_jumps);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
