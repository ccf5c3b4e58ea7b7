/*
 * history.c - the fault tests' queue checker (see history.h).
 */
#include "history.h"

#include <stdio.h>
#include <stdlib.h>

struct hist {
    size_t n;
    uint64_t stray; /* deliveries of ids outside 0..n-1: never enqueued */
    unsigned char *enq;
    uint32_t *del;
};

struct hist *hist_new(size_t n)
{
    struct hist *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->n = n;
    h->enq = calloc(n ? n : 1, 1);
    h->del = calloc(n ? n : 1, sizeof *h->del);
    if (!h->enq || !h->del) {
        hist_free(h);
        return NULL;
    }
    return h;
}

void hist_free(struct hist *h)
{
    if (!h)
        return;
    free(h->enq);
    free(h->del);
    free(h);
}

void hist_enqueued(struct hist *h, size_t i, enum hist_enq outcome)
{
    if (i >= h->n)
        return;
    if (h->enq[i] == HIST_ENQ_OK)
        return;
    h->enq[i] = (unsigned char)outcome;
}

void hist_delivered(struct hist *h, size_t i)
{
    if (i >= h->n) {
        h->stray++;
        return;
    }
    if (h->del[i] < UINT32_MAX)
        h->del[i]++;
}

uint32_t hist_deliveries(const struct hist *h, size_t i)
{
    return i < h->n ? h->del[i] : 0;
}

void hist_check(const struct hist *h, struct hist_counts *c)
{
    *c = (struct hist_counts){0};
    c->unexpected = h->stray; /* each stray delivery is a job nobody enqueued */
    c->deliveries = h->stray;
    for (size_t i = 0; i < h->n; i++) {
        uint32_t d = h->del[i];
        c->deliveries += d;
        switch (h->enq[i]) {
        case HIST_ENQ_OK:
            if (d == 0)
                c->lost++;
            else if (d == 1)
                c->ok++;
            else
                c->duplicated++;
            break;
        case HIST_ENQ_UNKNOWN:
            if (d > 0)
                c->recovered++;
            else
                c->absent++;
            break;
        default: /* NONE or FAILED: must never turn up */
            if (d > 0)
                c->unexpected++;
            else
                c->absent++;
            break;
        }
    }
}

int hist_report(const char *name, const struct hist_counts *c)
{
    printf("%s: ok=%llu duplicated=%llu lost=%llu recovered=%llu unexpected=%llu absent=%llu deliveries=%llu\n", name,
           (unsigned long long)c->ok, (unsigned long long)c->duplicated, (unsigned long long)c->lost,
           (unsigned long long)c->recovered, (unsigned long long)c->unexpected, (unsigned long long)c->absent,
           (unsigned long long)c->deliveries);
    fflush(stdout);
    return (c->lost == 0 && c->unexpected == 0) ? 0 : 1;
}
