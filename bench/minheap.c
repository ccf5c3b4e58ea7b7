/*
 * minheap.c - array binary min-heap keyed by (expires, seq); see minheap.h.
 *
 * Written plainly on purpose: it is the baseline the wheel is measured
 * against, so it must be the usual structure, not a tuned variant.
 */
#include "minheap.h"

#include <stdlib.h>

static int less(const minheap_node *a, const minheap_node *b)
{
    return a->expires < b->expires || (a->expires == b->expires && a->seq < b->seq);
}

static void set(minheap *h, size_t i, minheap_node *x)
{
    h->a[i] = x;
    x->index = i;
}

static void sift_up(minheap *h, size_t i)
{
    minheap_node *x = h->a[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!less(x, h->a[p]))
            break;
        set(h, i, h->a[p]);
        i = p;
    }
    set(h, i, x);
}

static void sift_down(minheap *h, size_t i)
{
    minheap_node *x = h->a[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && less(h->a[c + 1], h->a[c]))
            c++;
        if (!less(h->a[c], x))
            break;
        set(h, i, h->a[c]);
        i = c;
    }
    set(h, i, x);
}

void minheap_node_init(minheap_node *x)
{
    x->expires = 0;
    x->seq = 0;
    x->index = MINHEAP_NONE;
}

int minheap_init(minheap *h, size_t cap)
{
    h->n = 0;
    h->seq = 0;
    h->cap = cap ? cap : 16;
    h->a = malloc(h->cap * sizeof *h->a);
    return h->a ? 0 : -1;
}

void minheap_free(minheap *h)
{
    free(h->a);
    h->a = NULL;
    h->n = h->cap = 0;
}

int minheap_push(minheap *h, minheap_node *x, uint64_t expires)
{
    minheap_remove(h, x);
    if (h->n == h->cap) {
        minheap_node **a = realloc(h->a, 2 * h->cap * sizeof *a);
        if (!a)
            return -1;
        h->a = a;
        h->cap *= 2;
    }
    x->expires = expires;
    x->seq = h->seq++;
    set(h, h->n++, x);
    sift_up(h, h->n - 1);
    return 0;
}

void minheap_remove(minheap *h, minheap_node *x)
{
    size_t i = x->index;
    if (i == MINHEAP_NONE)
        return;
    x->index = MINHEAP_NONE;
    if (i == --h->n)
        return;
    /* Move the last node into the hole; it may belong above or below it. */
    set(h, i, h->a[h->n]);
    if (i > 0 && less(h->a[i], h->a[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

minheap_node *minheap_top(const minheap *h)
{
    return h->n ? h->a[0] : NULL;
}

minheap_node *minheap_pop(minheap *h)
{
    minheap_node *x = minheap_top(h);
    if (x)
        minheap_remove(h, x);
    return x;
}
