/*
 * load.h - the load that the Redis chaos tests (redis_restart, conn_faults)
 * put on one store handle while they hurt its server, and the checks they
 * make on it afterwards.
 *
 * P producer threads enqueue jobs whose payload is a sequence number, alone
 * (at_enqueue) or in batches of 2-16 (at_enqueue_batch); one worker thread
 * polls and acks them (at_ack one by one, or at_ack_many, in turn).  All of
 * them share the one handle, which must reconnect by itself.  Every call is
 * timed: none may take longer than the URI's timeout_ms + slack (at_poll: +
 * its own blocking time), and every failure must be one the fault explains
 * (cfg.clear_code).  The program then stops the producers, lets the worker
 * drain the queue (load_drain) and runs the checker (load_check):
 *
 *   - history.h classifies every job by its enqueue's answer (0: ok;
 *     AT_ERR_CONN, AT_ERR_TIMEOUT, AT_ERR_IO: unknown; anything else:
 *     failed) and its deliveries (claims by the worker);
 *   - enqueues lost: the enqueue returned 0 but the job was never
 *     delivered, though the queue was drained (history.h's lost);
 *   - acks lost: at_ack / at_ack_many said 0 for a job claimed again later;
 *   - vanished: the store's count of SUCCEEDED jobs is below the number of
 *     jobs delivered (a delivered job and its ack undone); extra: above it
 *     (jobs nobody claimed completed); unfinished: jobs in any other state
 *     after the drain.
 *
 * What each program allows of these figures is its own verdict.  One load
 * per process: the threads share the program's struct load.
 */
#ifndef AT_TESTS_CHAOS_LOAD_H
#define AT_TESTS_CHAOS_LOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "asynctask.h"
#include "history.h"

#define LOAD_MAX_PRODUCERS 16
/* Error codes counted (AT_ERR_* are small negatives). */
#define LOAD_NCODES 64
enum { LOAD_ENQ, LOAD_BATCH, LOAD_POLL, LOAD_ACK, LOAD_NCALLS };

struct load_cfg {
    const char *queue, *type;
    int64_t lease_ms;
    int64_t timeout_ms, slack_ms; /* the limit on a call's time */
    int64_t pace_ms;              /* pause of a producer after an acknowledged enqueue */
    int (*clear_code)(int rc);    /* the failures the faults may cause */
    const char *clear_names;      /* the same, for the message: "CONN or TIMEOUT" */
};

struct load_producer {
    struct load *l;
    uint64_t rng;
    pthread_t thread;
};

struct load {
    struct load_cfg cfg;
    at_store *st;
    /* The record, indexed by sequence number 0..cap-1. */
    size_t cap;
    atomic_size_t next;       /* next sequence number to hand out */
    unsigned char *enq;       /* enum hist_enq per seq */
    atomic_uint *claims;
    unsigned char *acked;     /* an ack returned 0 */
    unsigned char *ack_lost;  /* ... and the job was claimed again later */
    uint64_t stray_claims;    /* jobs claimed whose payload is no seq of ours */
    atomic_bool stop_producers, stop_worker;
    atomic_llong last_enq_ok_ms; /* mono time of the last enqueue that returned 0 */
    atomic_ullong enq_ok, acks_ok;
    /* Call statistics, under mu. */
    pthread_mutex_t mu;
    uint64_t calls, errors[LOAD_NCODES], unclear, slow;
    int64_t max_ms[LOAD_NCALLS];
    char sample[LOAD_NCODES][300]; /* the first message of each error code */
    /* Threads. */
    long nprod;
    struct load_producer prod[LOAD_MAX_PRODUCERS];
    pthread_t worker;
    int64_t drain_ms;
};

/* What load_check found. */
struct load_result {
    int counted;  /* the store's counts were read */
    size_t used;  /* sequence numbers handed out */
    uint64_t enq_lost, ack_lost, acked, distinct, unknown_enq;
    uint64_t unfinished, vanished, extra;
    struct hist_counts hc;
    int hist_bad; /* hist_report's verdict */
};

/* Open redis://127.0.0.1:port?timeout_ms=T&prefix=P; NULL after saying
 * why on stderr. */
at_store *load_open(int port, int64_t timeout_ms, const char *prefix);
/* Set up the record for `cap` sequence numbers on the open store `st`.
 * 0, or -1 (out of memory, said on stderr). */
int load_init(struct load *l, const struct load_cfg *cfg, at_store *st, size_t cap);
/* Start `nprod` producers (each seeded from `seed`) and the worker. */
void load_start(struct load *l, long nprod, uint64_t seed);
/* Stop the producers and wait for them. */
void load_stop_producers(struct load *l);
/* Wait until no job of the queue is left unfinished (jobs claimed by a call
 * whose reply was lost come back when their lease ends), giving up only
 * when no ack succeeded for 3 leases + 10 s; then stop the worker.  With
 * `wait` 0 (the server is gone) only stop it.  1 when drained, else 0. */
int load_drain(struct load *l, int wait);
/* Classify every job (see above) and print history.h's report under
 * `name`.  0, or -1 (out of memory). */
int load_check(struct load *l, const char *name, struct load_result *r);
/* The call statistics, for the result line: " | calls=... | drained in N
 * ms" (no newline). */
void load_print_calls(const struct load *l);
/* After the result line: one message per error code seen (what a caller
 * saw, to judge them clear), and why the drain failed if it did. */
void load_print_samples(const struct load *l, int drained);
void load_free(struct load *l);

/* The number in s within [lo, hi]; anything else prints "usage: argv0
 * usage" and exits with 2. */
long load_parse_long(const char *s, long lo, long hi, const char *argv0, const char *usage);
_Noreturn void load_usage(const char *argv0, const char *usage);

#endif
