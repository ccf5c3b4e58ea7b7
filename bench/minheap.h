/*
 * minheap.h - textbook binary min-heap of timers (benchmark baseline and
 * reference model for the timing wheel's tests).
 *
 * The structure libuv and libevent use for their timers: an array of
 * pointers to caller-owned nodes ordered by (expires, seq), each node
 * remembering its array index so that cancel is O(log n) without a search.
 * Insert, cancel and pop-min are O(log n); min is O(1).  The sequence number
 * is assigned on every push, so equal expiries leave in insertion order,
 * the same order rule as the wheel (lib/wheel.h).
 */
#ifndef MINHEAP_H
#define MINHEAP_H

#include <stddef.h>
#include <stdint.h>

#define MINHEAP_NONE SIZE_MAX /* index of a node that is not in the heap */

typedef struct minheap_node {
    uint64_t expires;
    uint64_t seq;
    size_t index; /* position in the array, MINHEAP_NONE when idle */
} minheap_node;

typedef struct minheap {
    minheap_node **a;
    size_t n, cap;
    uint64_t seq; /* next insertion sequence number */
} minheap;

/* Marks a node idle. */
void minheap_node_init(minheap_node *x);
/* An empty heap with room for `cap` nodes (it grows when full).  0 or -1. */
int minheap_init(minheap *h, size_t cap);
void minheap_free(minheap *h);
/* Insert (or re-insert) x with the given expiry.  0, or -1 if growing fails. */
int minheap_push(minheap *h, minheap_node *x, uint64_t expires);
/* Remove x; harmless if it is idle. */
void minheap_remove(minheap *h, minheap_node *x);
/* The (expires, seq)-smallest node, NULL when empty. */
minheap_node *minheap_top(const minheap *h);
/* Remove and return the smallest node, NULL when empty. */
minheap_node *minheap_pop(minheap *h);

static inline int minheap_contains(const minheap_node *x)
{
    return x->index != MINHEAP_NONE;
}

static inline size_t minheap_count(const minheap *h)
{
    return h->n;
}

#endif /* MINHEAP_H */
