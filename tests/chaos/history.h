/*
 * history.h - the queue checker of the fault tests, after Jepsen's "total
 * queue" checker.  A test records, per job it tried to enqueue (numbered
 * 0..n-1 by the test, e.g. by a sequence number in the payload), what the
 * enqueue call answered and how many times the job was delivered (run by a
 * handler, or found completed in the store at the end, as the test defines
 * it), then classifies every job:
 *
 *   ok          enqueue acknowledged (returned 0), delivered exactly once
 *   duplicated  enqueue acknowledged, delivered more than once (allowed by
 *               at-least-once; the test says when a duplicate is explained)
 *   lost        enqueue acknowledged, never delivered
 *   recovered   enqueue outcome unknown (timeout, connection cut, process
 *               killed in the call), and the job was delivered anyway
 *   unexpected  delivered, but its enqueue failed definitely or was never
 *               attempted
 *
 * Jobs whose enqueue was unknown or failed and that never turned up are
 * counted as "absent" (correct behaviour, shown for completeness).  A run
 * passes only with lost = 0 and unexpected = 0.
 *
 * Not thread-safe: record from one thread (the test's parent process), after
 * collecting the children's logs.
 */
#ifndef AT_TESTS_HISTORY_H
#define AT_TESTS_HISTORY_H

#include <stddef.h>
#include <stdint.h>

enum hist_enq {
    HIST_ENQ_NONE = 0, /* never attempted */
    HIST_ENQ_OK,       /* the call returned 0: acknowledged */
    HIST_ENQ_FAILED,   /* the call returned a definite error: nothing written */
    HIST_ENQ_UNKNOWN   /* timeout, cut connection, killed mid-call */
};

struct hist_counts {
    uint64_t ok, duplicated, lost, recovered, unexpected, absent;
    uint64_t deliveries; /* total deliveries of all jobs */
};

struct hist;

/* A history of n jobs (all HIST_ENQ_NONE, never delivered); NULL on ENOMEM. */
struct hist *hist_new(size_t n);
void hist_free(struct hist *h);

/* The outcome of job i's enqueue.  A later call overrides an earlier one
 * except that OK is never downgraded (a retried enqueue that hit its
 * idempotency key does not make an acknowledged job unknown).  Out-of-range
 * i is counted as an unexpected job by hist_check. */
void hist_enqueued(struct hist *h, size_t i, enum hist_enq outcome);

/* Job i was delivered once more (a run, or found done in the store). */
void hist_delivered(struct hist *h, size_t i);

/* Deliveries of job i so far (0 for out-of-range i). */
uint32_t hist_deliveries(const struct hist *h, size_t i);

/* Classify every job into *c. */
void hist_check(const struct hist *h, struct hist_counts *c);

/* Print one line "NAME: ok=.. duplicated=.. lost=.. recovered=..
 * unexpected=.. absent=.. deliveries=.." to stdout, and return 0 when lost and
 * unexpected are both 0, 1 otherwise. */
int hist_report(const char *name, const struct hist_counts *c);

#endif
