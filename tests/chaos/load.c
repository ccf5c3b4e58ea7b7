/*
 * load.c - producers, a worker and the checker shared by the Redis chaos
 * tests (see load.h).
 */
#include "load.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Jobs acknowledged but not yet acked at which the producers wait. */
#define BACKLOG_MAX 3000
#define POLL_MS 100

/* Outcome of an enqueue for history.h: only 0 is an acknowledgement; a
 * cut connection or a timeout may have written the job or not. */
static enum hist_enq enq_outcome(int rc)
{
    if (rc == 0)
        return HIST_ENQ_OK;
    if (rc == AT_ERR_CONN || rc == AT_ERR_TIMEOUT || rc == AT_ERR_IO)
        return HIST_ENQ_UNKNOWN;
    return HIST_ENQ_FAILED;
}

static const char *const CALL_NAMES[LOAD_NCALLS] = {"enqueue", "enqueue_batch", "poll", "ack"};

static void note_call(struct load *l, int kind, int rc, int64_t ms, int64_t blocking_ms)
{
    char msg[256] = "";
    if (rc)
        at_store_errmsg(l->st, msg, sizeof msg, NULL);
    int64_t limit = blocking_ms + l->cfg.timeout_ms + l->cfg.slack_ms;
    pthread_mutex_lock(&l->mu);
    l->calls++;
    if (ms > l->max_ms[kind])
        l->max_ms[kind] = ms;
    if (rc < 0 && -rc < LOAD_NCODES && l->errors[-rc]++ == 0)
        snprintf(l->sample[-rc], sizeof l->sample[-rc], "%.20s: %.256s", CALL_NAMES[kind], msg);
    if (rc && !l->cfg.clear_code(rc) && l->unclear++ < 5)
        fprintf(stderr, "%s returned %s, not %s: %s\n", CALL_NAMES[kind], at_err_name(rc), l->cfg.clear_names, msg);
    if (ms > limit && l->slow++ < 5)
        fprintf(stderr, "%s took %lld ms (limit %lld): %s %s\n", CALL_NAMES[kind], (long long)ms, (long long)limit,
                rc ? at_err_name(rc) : "ok", msg);
    pthread_mutex_unlock(&l->mu);
}

/* ------------------------------------------------------------- producers */

static void *producer(void *arg)
{
    struct load_producer *me = arg;
    struct load *l = me->l;
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, l->cfg.queue);
    at_opts_set_int(o, AT_OPT_LEASE_MS, l->cfg.lease_ms);
    at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, 1000000);
    at_batch *b;
    at_batch_new(&b);
    while (!atomic_load(&l->stop_producers)) {
        /* The producers must not outrun the worker (one fsync per ack
         * under appendfsync always): a backlog would make the drain at
         * the end take longer than the run. */
        if (atomic_load(&l->enq_ok) > atomic_load(&l->acks_ok) + BACKLOG_MAX) {
            sleep_ms(2);
            continue;
        }
        size_t k = rng_next(&me->rng) % 3 == 0 ? 1 : 2 + (size_t)(rng_next(&me->rng) % 15);
        size_t first = atomic_fetch_add(&l->next, k);
        if (first + k > l->cap)
            break; /* the record is full: the load phase ends early */
        int rc;
        int64_t t0;
        if (k == 1) {
            char p[24];
            int n = snprintf(p, sizeof p, "%zu", first);
            t0 = mono_ms();
            rc = at_enqueue(NULL, l->st, l->cfg.type, p, (size_t)n, o);
            note_call(l, LOAD_ENQ, rc, mono_ms() - t0, 0);
        } else {
            at_batch_clear(b);
            for (size_t s = first; s < first + k; s++) {
                char p[24];
                int n = snprintf(p, sizeof p, "%zu", s);
                at_batch_add(b, l->cfg.type, p, (size_t)n, o);
            }
            t0 = mono_ms();
            rc = at_enqueue_batch(l->st, b);
            note_call(l, LOAD_BATCH, rc, mono_ms() - t0, 0);
        }
        for (size_t s = first; s < first + k; s++)
            l->enq[s] = (unsigned char)enq_outcome(rc);
        if (rc == 0) {
            atomic_fetch_add(&l->enq_ok, k);
            atomic_store(&l->last_enq_ok_ms, mono_ms());
            sleep_ms(l->cfg.pace_ms);
        } else {
            sleep_ms(5); /* the server is away: do not spin on fast failures */
        }
    }
    at_batch_free(b);
    at_opts_free(o);
    return NULL;
}

/* ---------------------------------------------------------------- worker */

static long seq_of(const at_job *j)
{
    size_t len;
    const char *p = at_job_payload(j, &len);
    char buf[24];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    char *end;
    long s = strtol(buf, &end, 10);
    return *end == '\0' && s >= 0 ? s : -1;
}

static void mark_acked(struct load *l, long s)
{
    if (s >= 0 && (size_t)s < l->cap) {
        l->acked[s] = 1;
        atomic_fetch_add(&l->acks_ok, 1);
    }
}

static void *worker(void *arg)
{
    struct load *l = arg;
    const char *queues[] = {l->cfg.queue};
    at_job *jobs[32];
    const char *ids[32];
    uint64_t tokens[32];
    long seqs[32];
    int32_t res[32];
    unsigned round = 0;
    while (!atomic_load(&l->stop_worker)) {
        size_t n = 0;
        int64_t t0 = mono_ms();
        int rc = at_poll(jobs, &n, l->st, queues, 1, 32, POLL_MS);
        note_call(l, LOAD_POLL, rc, mono_ms() - t0, POLL_MS);
        if (rc) {
            sleep_ms(5);
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            long s = seq_of(jobs[i]);
            seqs[i] = s;
            ids[i] = at_job_id(jobs[i]);
            tokens[i] = at_job_token(jobs[i]);
            if (s < 0 || (size_t)s >= l->cap) {
                l->stray_claims++;
                continue;
            }
            atomic_fetch_add(&l->claims[s], 1);
            /* An ack that returned 0 made the job SUCCEEDED for good: being
             * claimed again means the store forgot it. */
            if (l->acked[s])
                l->ack_lost[s] = 1;
        }
        if (n > 0 && (round++ & 1)) {
            t0 = mono_ms();
            rc = at_ack_many(res, l->st, n, ids, tokens);
            note_call(l, LOAD_ACK, rc, mono_ms() - t0, 0);
            for (size_t i = 0; rc == 0 && i < n; i++)
                if (res[i] == 0)
                    mark_acked(l, seqs[i]);
        } else {
            for (size_t i = 0; i < n; i++) {
                t0 = mono_ms();
                rc = at_ack(l->st, ids[i], tokens[i], NULL, 0);
                /* STALE: the lease ran out during an outage or a stall and
                 * the job was claimed again: a correct refusal, not an
                 * outage error, not an ack either. */
                note_call(l, LOAD_ACK, rc == AT_ERR_STALE ? 0 : rc, mono_ms() - t0, 0);
                if (rc == 0)
                    mark_acked(l, seqs[i]);
            }
        }
        for (size_t i = 0; i < n; i++)
            at_job_free(jobs[i]);
    }
    return NULL;
}

/* ------------------------------------------------------------- the phases */

int load_init(struct load *l, const struct load_cfg *cfg, at_store *st, size_t cap)
{
    memset(l, 0, sizeof *l);
    l->cfg = *cfg;
    l->st = st;
    l->cap = cap;
    pthread_mutex_init(&l->mu, NULL);
    l->enq = calloc(cap, 1);
    l->claims = calloc(cap, sizeof *l->claims);
    l->acked = calloc(cap, 1);
    l->ack_lost = calloc(cap, 1);
    if (!l->enq || !l->claims || !l->acked || !l->ack_lost) {
        fprintf(stderr, "out of memory\n");
        return -1;
    }
    return 0;
}

void load_start(struct load *l, long nprod, uint64_t seed)
{
    l->nprod = nprod;
    for (long i = 0; i < nprod; i++) {
        l->prod[i] = (struct load_producer){.l = l, .rng = seed + 977 * (uint64_t)i + 1};
        pthread_create(&l->prod[i].thread, NULL, producer, &l->prod[i]);
    }
    pthread_create(&l->worker, NULL, worker, l);
}

void load_stop_producers(struct load *l)
{
    atomic_store(&l->stop_producers, true);
    for (long i = 0; i < l->nprod; i++)
        pthread_join(l->prod[i].thread, NULL);
}

/* Jobs of the queue in each state, or -1 on error. */
static int queue_counts(struct load *l, uint64_t counts[AT_STATE_COUNT__])
{
    at_stats *s;
    memset(counts, 0, AT_STATE_COUNT__ * sizeof *counts);
    if (at_stats_get(&s, l->st) != 0)
        return -1;
    for (size_t i = 0; i < at_stats_queue_count(s); i++)
        if (strcmp(at_stats_queue_name(s, i), l->cfg.queue) == 0)
            for (int k = 1; k < AT_STATE_COUNT__; k++)
                counts[k] = at_stats_count(s, i, k);
    at_stats_free(s);
    return 0;
}

int load_drain(struct load *l, int wait)
{
    int64_t t_drain = mono_ms(), deadline = t_drain + 3 * l->cfg.lease_ms + 10000;
    uint64_t acks_seen = atomic_load(&l->acks_ok);
    int drained = 0;
    while (wait && mono_ms() < deadline) {
        if (atomic_load(&l->acks_ok) != acks_seen) {
            acks_seen = atomic_load(&l->acks_ok);
            deadline = mono_ms() + 3 * l->cfg.lease_ms + 10000;
        }
        uint64_t c[AT_STATE_COUNT__];
        if (queue_counts(l, c) == 0 && c[AT_STATE_READY] + c[AT_STATE_RUNNING] + c[AT_STATE_SCHEDULED] == 0) {
            drained = 1;
            break;
        }
        sleep_ms(50);
    }
    atomic_store(&l->stop_worker, true);
    pthread_join(l->worker, NULL);
    l->drain_ms = mono_ms() - t_drain;
    return drained;
}

int load_check(struct load *l, const char *name, struct load_result *r)
{
    memset(r, 0, sizeof *r);
    /* The store's own counts, not a listing of the jobs: at_list scans the
     * queue's hash once per page, far too slow for the soak's 10^5 jobs. */
    uint64_t fc[AT_STATE_COUNT__];
    r->counted = queue_counts(l, fc) == 0;
    r->used = atomic_load(&l->next) < l->cap ? atomic_load(&l->next) : l->cap;
    /* The history covers the sequence numbers handed out, no more. */
    struct hist *h = hist_new(r->used);
    if (!h) {
        fprintf(stderr, "out of memory\n");
        return -1;
    }
    for (size_t s = 0; s < r->used; s++) {
        unsigned claims = atomic_load(&l->claims[s]);
        hist_enqueued(h, s, (enum hist_enq)l->enq[s]);
        r->unknown_enq += l->enq[s] == HIST_ENQ_UNKNOWN;
        for (unsigned d = claims; d > 0; d--)
            hist_delivered(h, s);
        r->distinct += claims > 0;
        /* Drained, so every job in the store was claimed: an acknowledged
         * job never claimed is not in the store (history.h: lost). */
        if (l->enq[s] == HIST_ENQ_OK && claims == 0 && r->enq_lost++ < 5)
            fprintf(stderr, "enqueue lost: seq %zu was acknowledged and never delivered\n", s);
        if (l->acked[s]) {
            r->acked++;
            if (l->ack_lost[s] && r->ack_lost++ < 5)
                fprintf(stderr, "ack lost: seq %zu was acked (0) and claimed again\n", s);
        }
    }
    /* Every job claimed must end SUCCEEDED, once, and nothing else may be
     * left: fewer SUCCEEDED than jobs claimed means delivered jobs
     * vanished (their enqueue and any ack undone), more means jobs nobody
     * claimed were completed. */
    for (int k = 1; k < AT_STATE_COUNT__; k++)
        if (k != AT_STATE_SUCCEEDED)
            r->unfinished += fc[k];
    uint64_t succeeded = fc[AT_STATE_SUCCEEDED];
    r->vanished = r->distinct > succeeded ? r->distinct - succeeded : 0;
    r->extra = succeeded > r->distinct ? succeeded - r->distinct : 0;
    if (r->vanished || r->extra || r->unfinished)
        fprintf(stderr,
                "store counts: %" PRIu64 " SUCCEEDED for %" PRIu64 " jobs delivered, %" PRIu64 " in other states\n",
                succeeded, r->distinct, r->unfinished);
    for (uint64_t i = 0; i < l->stray_claims; i++)
        hist_delivered(h, SIZE_MAX); /* a job nobody enqueued: unexpected */
    hist_check(h, &r->hc);
    r->hist_bad = hist_report(name, &r->hc);
    hist_free(h);
    return 0;
}

void load_print_calls(const struct load *l)
{
    char errs[512] = "";
    size_t el = 0;
    for (int c = 1; c < LOAD_NCODES; c++)
        if (l->errors[c] && el < sizeof errs)
            el += (size_t)snprintf(errs + el, sizeof errs - el, " %s=%" PRIu64, at_err_name(-c), l->errors[c]);
    printf(" | calls=%" PRIu64 " errors:%s unclear=%" PRIu64 " over_limit=%" PRIu64
           " max_ms enqueue=%lld batch=%lld poll=%lld ack=%lld (limit timeout %lld + slack %lld) | drained in %lld ms",
           l->calls, errs[0] ? errs : " none", l->unclear, l->slow, (long long)l->max_ms[LOAD_ENQ],
           (long long)l->max_ms[LOAD_BATCH], (long long)l->max_ms[LOAD_POLL], (long long)l->max_ms[LOAD_ACK],
           (long long)l->cfg.timeout_ms, (long long)l->cfg.slack_ms, (long long)l->drain_ms);
}

void load_print_samples(const struct load *l, int drained)
{
    for (int c = 1; c < LOAD_NCODES; c++)
        if (l->errors[c])
            printf("  e.g. %s from %s\n", at_err_name(-c), l->sample[c]);
    if (!drained)
        fprintf(stderr, "the queue was not drained: no ack for %lld ms\n", (long long)(3 * l->cfg.lease_ms + 10000));
}

void load_free(struct load *l)
{
    free(l->enq);
    free(l->claims);
    free(l->acked);
    free(l->ack_lost);
    pthread_mutex_destroy(&l->mu);
}

/* ------------------------------------------------------------ arguments */

_Noreturn void load_usage(const char *argv0, const char *usage)
{
    fprintf(stderr, "usage: %s %s\n", argv0, usage);
    exit(2);
}

long load_parse_long(const char *s, long lo, long hi, const char *argv0, const char *usage)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi)
        load_usage(argv0, usage);
    return v;
}

at_store *load_open(int port, int64_t timeout_ms, const char *prefix)
{
    char uri[256];
    snprintf(uri, sizeof uri, "redis://127.0.0.1:%d?timeout_ms=%lld&prefix=%s", port, (long long)timeout_ms, prefix);
    at_store *st = NULL;
    if (at_store_open(&st, uri) != 0) {
        fprintf(stderr, "open %s: %s\n", uri, at_last_error());
        return NULL;
    }
    return st;
}
