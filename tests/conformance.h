/*
 * conformance.h - the backend conformance suite of libasynctask.
 *
 * docs/SEMANTICS.md is the contract every store backend implements; this
 * suite states each of its rules (and each promise of <asynctask.h>) as a
 * Check test case, one behaviour per test, named as the rule.  It uses the
 * public header only, so a third-party backend's author runs the same suite
 * against their own URI (tests/check_conformance.c).
 *
 * The fixture gives every test its own store opened from a base URI (see
 * ct_open) and, when the backend accepts one, a manual clock so that time
 * moves by hand: tests then never sleep and every time assertion is exact.
 * On backends judged by their own clock (Redis) ct_advance() really sleeps
 * and the assertions allow lateness, never earliness.
 *
 * The helpers below belong to the fixture: objects they hand out (opts, jobs,
 * batches) are freed by the teardown, so a test body reads as the rule it
 * checks.  Everything else is internal to the suite's files.
 */
#ifndef AT_CONFORMANCE_H
#define AT_CONFORMANCE_H

#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include "asynctask.h"

/* The whole suite against stores opened from `base_uri` (copied). */
Suite *at_conformance_suite(const char *base_uri);

/* ------------------------------------------------------------- fixture */

/* The manual clock's start: a fixed instant (2027-01-15) so that manual-clock
 * runs are reproducible and far from any real "now". */
#define CT_CLOCK_START INT64_C(1800000000000)

/*
 * Open a fresh store from the suite's base URI:
 *   "memory:..."      as is (every open is a new, empty store);
 *   "sqlite:DIR"      when DIR is a directory, the new file DIR/t<pid>-<n>.db
 *                     (query string kept), removed again by the teardown;
 *   "redis://..."     the URI plus a unique "prefix=" query parameter;
 *   anything else     as is (tests use unique queue names and keys).
 * Then try to install a manual clock: *clock_out is the clock when the store
 * accepted it, NULL when it refused with AT_ERR_UNSUPPORTED (real time) or
 * when the environment sets AT_TEST_REAL_CLOCK=1 (real time forced).
 * Returns 0 or the failing call's code.
 */
int ct_open(at_store **store_out, at_clock **clock_out);

/* The suite's base URI, as given to at_conformance_suite. */
const char *ct_base_uri(void);

/* Checked fixture: ct_setup opens ct_store (and ct_clock), ct_teardown frees
 * what the helpers kept, closes the store, then frees the clock. */
void ct_setup(void);
void ct_teardown(void);

/* The current test's store and its manual clock (NULL on a real clock). */
extern at_store *ct_store;
extern at_clock *ct_clock;

/* 1 when time is manual (exact assertions), 0 on a real clock. */
int ct_manual(void);
/* Move the store's time forward: at_clock_advance, or nanosleep. */
void ct_advance(int64_t ms);
/* The store's time (at_store_now, asserted to succeed). */
int64_t ct_now(void);
/* Sleep in real time: only to let another thread reach a blocking call. */
void ct_sleep_real(int64_t ms);
/* A monotonic real-time reading in ms, for bounds on blocking calls. */
int64_t ct_mono_ms(void);

/* A name unique to this test and run: "<test>.<suffix>.<run tag>", valid as a
 * queue name and as an idempotency key.  Returned in one of 32 rotating static
 * buffers: use from the test's own thread, copy it to keep it long. */
const char *ct_name(const char *func, const char *suffix);
#define CT_Q(suffix) ct_name(__func__, (suffix))
#define CT_KEY(suffix) ct_name(__func__, (suffix))

/* New opts with AT_OPT_QUEUE set to `queue` (NULL: untouched); kept. */
at_opts *ct_opts(const char *queue);
/* at_opts_set_int / at_opts_set_str asserted to succeed. */
void ct_set(at_opts *opts, int32_t option, int64_t value);
void ct_set_str(at_opts *opts, int32_t option, const char *value);
/* at_enqueue of type "t", empty payload, asserted to succeed. */
void ct_enqueue(char id_out[AT_ID_SIZE], const at_opts *opts);
/* Hand a job to the teardown; returns it. */
at_job *ct_keep_job(at_job *job);
/* A new, empty batch; kept. */
at_batch *ct_batch(void);

/* Claim exactly one job of `queue` without blocking (asserted); kept. */
at_job *ct_claim(const char *queue);
/* Claim one job or return NULL when none is due; kept. */
at_job *ct_try_claim(const char *queue);
/* Number of jobs a non-blocking poll of up to `max` claims (jobs freed). */
size_t ct_poll_count(const char *queue, size_t max);
/* at_get asserted to succeed; kept. */
at_job *ct_get(const char *id);
/* The state at_get reports. */
int32_t ct_state(const char *id);
/* The stats of `queue` in `state` (0 when the queue is not listed). */
uint64_t ct_count(const char *queue, int32_t state);
/* The next_due of `queue` in the stats (AT_TIME_NONE when not listed). */
int64_t ct_next_due(const char *queue);

/* A time read around a call: `t` lies in [lo, hi], where lo and hi are the
 * store's time before and after the call plus the expected offset.  Exact on
 * a manual clock (lo == hi); a real clock may only be late, never early. */
#define CT_ASSERT_TIME(t, lo, hi)                                                                            \
    do {                                                                                                     \
        int64_t ct_t_ = (t), ct_lo_ = (lo), ct_hi_ = (hi);                                                   \
        ck_assert_msg(ct_t_ >= ct_lo_ && ct_t_ <= ct_hi_, "%s = %lld, expected in [%lld, %lld]", #t,         \
                      (long long)ct_t_, (long long)ct_lo_, (long long)ct_hi_);                               \
    } while (0)

/* A TCase with the checked fixture and a timeout fit for real clocks. */
TCase *ct_tcase(const char *name);

/* ------------------------------------------------------ areas (TCases) */

TCase *ct_tcase_api(void);
TCase *ct_tcase_clock(void);
TCase *ct_tcase_ids(void);
TCase *ct_tcase_states(void);
TCase *ct_tcase_ordering(void);
TCase *ct_tcase_poll(void);
TCase *ct_tcase_leases(void);
TCase *ct_tcase_ack(void);
TCase *ct_tcase_retry(void);
TCase *ct_tcase_dead(void);
TCase *ct_tcase_cancel(void);
TCase *ct_tcase_idempotency(void);
TCase *ct_tcase_batch(void);
TCase *ct_tcase_get(void);
TCase *ct_tcase_list(void);
TCase *ct_tcase_stats(void);
TCase *ct_tcase_purge(void);
TCase *ct_tcase_input(void);
TCase *ct_tcase_payload(void);
TCase *ct_tcase_concurrency(void);
TCase *ct_tcase_schedules(void);
TCase *ct_tcase_scheduler(void);
TCase *ct_tcase_workflows(void);
TCase *ct_tcase_queues(void);

#endif /* AT_CONFORMANCE_H */
