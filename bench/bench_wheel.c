/*
 * bench_wheel.c - the timing wheel (lib/wheel.c) against a binary min-heap
 * (bench/minheap.c), the structure libuv and libevent use for timers.
 *
 * Two workloads, each run on both structures with the same random numbers
 * and preallocated timer nodes (nothing is allocated while the clock runs):
 *
 *  bulk   insert N timers with delays 0..60,000 ms, cancel a random half,
 *         then advance time 1 ms at a time until every timer has fired.
 *         ns/op over inserts + cancels + expiries.
 *  churn  keep about N timers live (delays up to 60 s) while each op inserts
 *         one timer and moves time forward by 60,000 / (2N) ms, so that on
 *         average one timer expires per op and the population stays near N.
 *         (Advancing to the next expiry instead would fire the ~N/60,000
 *         timers sharing that millisecond and drain the population.)
 *         ns/op over 2N ops.
 *
 * Progress goes to stderr; stdout carries only "BENCH <name> <value> <unit>"
 * lines with the median of --repeat runs (default 3).  --quick uses 10x fewer
 * timers and ops.  PITFALLS.md: a heap slows as it grows, so both structures
 * are measured at the same size.
 */
#include "wheel.h"
#include "minheap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_median.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define MAX_DELAY 60000 /* ms */
#define MAX_REPEAT 99

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "bench_wheel: out of memory\n");
        exit(1);
    }
    return p;
}

/* Inputs shared by both structures. */
static size_t n_bulk, n_live, n_churn, pool;
static uint64_t *bulk_delay, *churn_init, *churn_delay;
static size_t *cancel_idx;

/* Timer nodes, allocated once. */
static at_timer *wt;
static minheap_node *hn;

/* Free list of node indices for churn: fired nodes are reused. */
static size_t *free_stack, n_free;

static void make_inputs(void)
{
    uint64_t s = 20240917;
    bulk_delay = xmalloc(n_bulk * sizeof *bulk_delay);
    cancel_idx = xmalloc(n_bulk * sizeof *cancel_idx);
    churn_init = xmalloc(n_live * sizeof *churn_init);
    churn_delay = xmalloc(n_churn * sizeof *churn_delay);
    for (size_t i = 0; i < n_bulk; i++) {
        bulk_delay[i] = rng_next(&s) % (MAX_DELAY + 1);
        cancel_idx[i] = i;
    }
    for (size_t i = n_bulk - 1; i > 0; i--) { /* Fisher-Yates: first half is the cancel set */
        size_t j = rng_next(&s) % (i + 1), t = cancel_idx[i];
        cancel_idx[i] = cancel_idx[j];
        cancel_idx[j] = t;
    }
    for (size_t i = 0; i < n_live; i++)
        churn_init[i] = rng_next(&s) % (MAX_DELAY + 1);
    for (size_t i = 0; i < n_churn; i++)
        churn_delay[i] = rng_next(&s) % (MAX_DELAY + 1);
    pool = n_bulk > 2 * n_live ? n_bulk : 2 * n_live;
    wt = xmalloc(pool * sizeof *wt);
    hn = xmalloc(pool * sizeof *hn);
    free_stack = xmalloc(pool * sizeof *free_stack);
}

static void reset_nodes(void)
{
    for (size_t i = 0; i < pool; i++) {
        at__timer_init(&wt[i]);
        minheap_node_init(&hn[i]);
    }
}

static void fill_free_stack(void)
{
    n_free = 0;
    for (size_t i = pool; i-- > n_live;)
        free_stack[n_free++] = i;
}

static size_t take_node(void)
{
    if (!n_free) {
        fprintf(stderr, "bench_wheel: node pool exhausted\n");
        exit(1);
    }
    return free_stack[--n_free];
}

/* Churn time after op i: 60,000 / (2N) ms per op keeps ~N timers live. */
static uint64_t churn_time(size_t i)
{
    return (uint64_t)i * MAX_DELAY / (2 * n_live);
}

static void count_fire(at_timer *t, void *ud)
{
    (void)t;
    ++*(size_t *)ud;
}

static void recycle_fire(at_timer *t, void *ud)
{
    (void)ud;
    free_stack[n_free++] = (size_t)(t - wt);
}

static double wheel_bulk(size_t *fired_out)
{
    at_wheel *w = at__wheel_new(0);
    size_t fired = 0;
    if (!w)
        exit(1);
    reset_nodes();
    double t0 = now_ns();
    for (size_t i = 0; i < n_bulk; i++)
        at__wheel_add(w, &wt[i], bulk_delay[i]);
    for (size_t i = 0; i < n_bulk / 2; i++)
        at__wheel_del(w, &wt[cancel_idx[i]]);
    for (uint64_t now = 0; at__wheel_count(w); now++)
        at__wheel_advance(w, now, count_fire, &fired);
    double t1 = now_ns();
    at__wheel_free(w);
    *fired_out = fired;
    return (t1 - t0) / (double)(n_bulk + n_bulk / 2 + fired);
}

static double heap_bulk(size_t *fired_out)
{
    minheap h;
    size_t fired = 0;
    if (minheap_init(&h, pool))
        exit(1);
    reset_nodes();
    double t0 = now_ns();
    for (size_t i = 0; i < n_bulk; i++)
        minheap_push(&h, &hn[i], bulk_delay[i]);
    for (size_t i = 0; i < n_bulk / 2; i++)
        minheap_remove(&h, &hn[cancel_idx[i]]);
    for (uint64_t now = 0; minheap_count(&h); now++) {
        minheap_node *x;
        while ((x = minheap_top(&h)) && x->expires <= now) {
            minheap_pop(&h);
            fired++;
        }
    }
    double t1 = now_ns();
    minheap_free(&h);
    *fired_out = fired;
    return (t1 - t0) / (double)(n_bulk + n_bulk / 2 + fired);
}

static double wheel_churn(size_t *live_out)
{
    at_wheel *w = at__wheel_new(0);
    if (!w)
        exit(1);
    reset_nodes();
    fill_free_stack();
    for (size_t i = 0; i < n_live; i++)
        at__wheel_add(w, &wt[i], churn_init[i]);
    double t0 = now_ns();
    for (size_t i = 0; i < n_churn; i++) {
        size_t k = take_node();
        at__wheel_add(w, &wt[k], churn_time(i) + churn_delay[i]);
        at__wheel_advance(w, churn_time(i + 1), recycle_fire, NULL);
    }
    double t1 = now_ns();
    *live_out = at__wheel_count(w);
    at__wheel_free(w);
    return (t1 - t0) / (double)n_churn;
}

static double heap_churn(size_t *live_out)
{
    minheap h;
    if (minheap_init(&h, pool))
        exit(1);
    reset_nodes();
    fill_free_stack();
    for (size_t i = 0; i < n_live; i++)
        minheap_push(&h, &hn[i], churn_init[i]);
    double t0 = now_ns();
    for (size_t i = 0; i < n_churn; i++) {
        size_t k = take_node();
        minheap_push(&h, &hn[k], churn_time(i) + churn_delay[i]);
        uint64_t now = churn_time(i + 1);
        minheap_node *x;
        while ((x = minheap_top(&h)) && x->expires <= now) {
            minheap_pop(&h);
            free_stack[n_free++] = (size_t)(x - hn);
        }
    }
    double t1 = now_ns();
    *live_out = minheap_count(&h);
    minheap_free(&h);
    return (t1 - t0) / (double)n_churn;
}

int main(int argc, char **argv)
{
    int quick = 0, repeat = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = 1;
        } else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            repeat = atoi(argv[++i]);
            if (repeat < 1 || repeat > MAX_REPEAT) {
                fprintf(stderr, "bench_wheel: --repeat takes 1..%d\n", MAX_REPEAT);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: bench_wheel [--quick] [--repeat N]\n");
            return 2;
        }
    }
    n_bulk = quick ? 100000 : 1000000;
    n_live = n_bulk;
    n_churn = 2 * n_live;
    make_inputs();

    double wb[MAX_REPEAT], hb[MAX_REPEAT], wc[MAX_REPEAT], hc[MAX_REPEAT];
    for (int r = 0; r < repeat; r++) {
        size_t wf, hf, wl, hl;
        wb[r] = wheel_bulk(&wf);
        hb[r] = heap_bulk(&hf);
        wc[r] = wheel_churn(&wl);
        hc[r] = heap_churn(&hl);
        fprintf(stderr,
                "run %d/%d: bulk wheel %.1f ns/op heap %.1f ns/op (fired %zu/%zu); "
                "churn wheel %.1f ns/op heap %.1f ns/op (live at end %zu/%zu)\n",
                r + 1, repeat, wb[r], hb[r], wf, hf, wc[r], hc[r], wl, hl);
        if (wf != hf || wl != hl) {
            fprintf(stderr, "bench_wheel: wheel and heap disagree\n");
            return 1;
        }
    }
    double mwb = median(wb, repeat), mhb = median(hb, repeat);
    double mwc = median(wc, repeat), mhc = median(hc, repeat);
    printf("BENCH wheel.bulk_ns %.1f ns\n", mwb);
    printf("BENCH heap.bulk_ns %.1f ns\n", mhb);
    printf("BENCH wheel.churn_ns %.1f ns\n", mwc);
    printf("BENCH heap.churn_ns %.1f ns\n", mhc);
    printf("BENCH wheel.bulk_speedup %.2f x\n", mhb / mwb);
    printf("BENCH wheel.churn_speedup %.2f x\n", mhc / mwc);
    return 0;
}
