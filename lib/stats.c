/*
 * stats.c - at_stats snapshots: one line per queue with counts per state and
 * the next due time, filled by a backend's stats method.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define STATS_MAGIC 0x61737461u /* "asta" */

int at__stats_new(at_stats **out)
{
    at_stats *st = at__calloc(1, sizeof *st);
    if (!st)
        return AT_ERR_NOMEM;
    st->magic = STATS_MAGIC;
    *out = st;
    return 0;
}

AT_EXTERN int at_stats_add_queue(at_stats *st, const char *queue, const uint64_t counts[AT_STATE_COUNT__],
                                 int64_t next_due)
{
    if (!st || st->magic != STATS_MAGIC || !queue || !counts)
        return AT_ERR_INVAL;
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 8;
        struct at_stats_queue *q = at__realloc(st->q, nc * sizeof *q);
        if (!q)
            return AT_ERR_NOMEM;
        st->q = q;
        st->cap = nc;
    }
    struct at_stats_queue *e = &st->q[st->n];
    e->name = at__strdup(queue);
    if (!e->name)
        return AT_ERR_NOMEM;
    memcpy(e->counts, counts, sizeof e->counts);
    e->counts[0] = 0;
    for (int s = 1; s < AT_STATE_COUNT__; s++)
        e->counts[0] += counts[s];
    e->next_due = next_due;
    st->n++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct at_stats_queue *)a)->name, ((const struct at_stats_queue *)b)->name);
}

void at__stats_sort(at_stats *st)
{
    if (st->n > 1)
        qsort(st->q, st->n, sizeof *st->q, by_name);
}

AT_EXTERN int at_stats_get(at_stats **out, at_store *s)
{
    if (!out)
        return AT_ERR_INVAL;
    *out = NULL;
    int rc = at__store_enter_job(s);
    if (rc)
        return rc;
    at_stats *st;
    rc = at__stats_new(&st);
    if (rc)
        return rc;
    rc = s->vt->stats(st, s->be);
    if (rc) {
        at_stats_free(st);
        return rc;
    }
    at__stats_sort(st);
    *out = st;
    return 0;
}

AT_EXTERN void at_stats_free(at_stats *st)
{
    if (!st || st->magic != STATS_MAGIC)
        return;
    for (size_t i = 0; i < st->n; i++)
        at__free(st->q[i].name);
    at__free(st->q);
    st->magic = 0;
    at__free(st);
}

#define OK(st) ((st) && (st)->magic == STATS_MAGIC)

AT_EXTERN size_t at_stats_queue_count(const at_stats *st)
{
    return OK(st) ? st->n : 0;
}

AT_EXTERN const char *at_stats_queue_name(const at_stats *st, size_t i)
{
    return OK(st) && i < st->n ? st->q[i].name : NULL;
}

AT_EXTERN uint64_t at_stats_count(const at_stats *st, size_t i, int32_t state)
{
    if (!OK(st) || i >= st->n || state < 0 || state >= AT_STATE_COUNT__)
        return 0;
    return st->q[i].counts[state];
}

AT_EXTERN int64_t at_stats_next_due(const at_stats *st, size_t i)
{
    return OK(st) && i < st->n ? st->q[i].next_due : AT_TIME_NONE;
}
