/*
 * wheel.c - hierarchical timing wheel (see wheel.h and ADR/0004-timing-wheel.md).
 *
 * The wheel keeps its own time `now` (ms).  A timer with expiry e is stored at
 * level l = index of the highest 6-bit group in which e and now differ, slot =
 * e's group l.  Because e > now, that slot lies strictly after now's slot at
 * level l, and every timer of a lower level expires before any slot of a
 * higher level starts.  So the next thing to do is always the lowest set bit
 * of the lowest non-empty level: a level-0 slot holds timers that all expire
 * at exactly its start time (they fire), a higher slot is "cascaded": the wheel
 * moves its time to the slot's start and re-places each timer relative to it,
 * which puts it at a strictly lower level.  A timer therefore moves at most
 * once per level on its way down, and nothing ever fires early or late.
 *
 * The placement is a pure function of (expires, now), and at__wheel_check()
 * verifies exactly that for every timer.
 */
#include "wheel.h"

#include "internal.h"

#include <stdlib.h>

#define SLOT_MASK ((uint64_t)AT_WHEEL_SLOTS - 1)

struct at_wheel {
    uint64_t now;                                   /* wheel time: never moves backwards */
    uint64_t seq;                                   /* next insertion sequence number */
    size_t count;                                   /* armed timers, including the firing batch */
    uint64_t earliest;                              /* cached exact minimum expiry of slotted timers */
    int earliest_ok;                                /* 1 while `earliest` is valid */
    int firing;                                     /* 1 inside advance: forbids re-entry */
    uint32_t levels;                                /* bit l set when bitmap[l] != 0 */
    uint64_t bitmap[AT_WHEEL_LEVELS];               /* bit s set when slot s is non-empty */
    at_timer batch;                                 /* sentinel: timers collected to fire now */
    uint64_t gen;                                   /* cascade generation, tags `mark` entries */
    at_timer slot[AT_WHEEL_LEVELS][AT_WHEEL_SLOTS]; /* sentinel heads */
    struct {
        at_timer *node; /* first back-half node placed in this slot ... */
        uint64_t gen;   /* ... by the cascade with this generation */
    } mark[AT_WHEEL_LEVELS][AT_WHEEL_SLOTS];
};

/* Level of a timer whose expiry differs from the wheel time first in bit b:
 * b / 6, by table because a division sits on the insert path. */
static const uint8_t level_of_bit[64] = {
    0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4,  4,  5,  5,
    5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 10, 10, 10, 10,
};

static void list_init(at_timer *head)
{
    head->next = head->prev = head;
}

static int list_empty(const at_timer *head)
{
    return head->next == head;
}

static void list_append(at_timer *head, at_timer *t)
{
    t->prev = head->prev;
    t->next = head;
    head->prev->next = t;
    head->prev = t;
}

static void list_unlink(at_timer *t)
{
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

/* Level for expiry e relative to wheel time now (e >= now). */
static unsigned level_for(uint64_t e, uint64_t now)
{
    uint64_t x = e ^ now;
    return x ? level_of_bit[63 - __builtin_clzll(x)] : 0;
}

/* Start time of slot s at level l, relative to wheel time now: now's bits
 * above the level kept, the level's group set to s, lower bits cleared.  At
 * the top level (bits 60..63) there are no bits above, and a shift by 66
 * would be undefined, hence the test. */
static uint64_t slot_start(uint64_t now, unsigned l, unsigned s)
{
    unsigned shift = AT_WHEEL_BITS * l;
    unsigned above = shift + AT_WHEEL_BITS;
    uint64_t high = above >= 64 ? 0 : now & ~((UINT64_C(1) << above) - 1);
    return high | ((uint64_t)s << shift);
}

/* Put t in slot (l, s), linked in before `at` (NULL: at the end). */
static void place_before(at_wheel *w, at_timer *t, unsigned l, unsigned s, at_timer *at)
{
    at_timer *head = &w->slot[l][s];
    if (!at)
        at = head;
    t->prev = at->prev;
    t->next = at;
    at->prev->next = t;
    at->prev = t;
    w->bitmap[l] |= UINT64_C(1) << s;
    w->levels |= 1u << l;
    t->level = (uint8_t)l;
    t->slot = (uint8_t)s;
    t->where = AT_TIMER_SLOT;
}

static unsigned slot_for(uint64_t e, unsigned l)
{
    return (unsigned)((e >> (AT_WHEEL_BITS * l)) & SLOT_MASK);
}

static void place(at_wheel *w, at_timer *t)
{
    unsigned l = level_for(t->expires, w->now);
    place_before(w, t, l, slot_for(t->expires, l), NULL);
}

static void clear_slot_bit(at_wheel *w, unsigned l, unsigned s)
{
    w->bitmap[l] &= ~(UINT64_C(1) << s);
    if (!w->bitmap[l])
        w->levels &= ~(1u << l);
}

void at__timer_init(at_timer *t)
{
    t->next = t->prev = NULL;
    t->expires = 0;
    t->seq = 0;
    t->level = t->slot = 0;
    t->where = AT_TIMER_IDLE;
}

int at__timer_pending(const at_timer *t)
{
    return t->where != AT_TIMER_IDLE;
}

at_wheel *at__wheel_new(uint64_t now)
{
    at_wheel *w = at__malloc(sizeof *w);
    if (!w)
        return NULL;
    w->now = now;
    w->seq = 0;
    w->count = 0;
    w->earliest = AT_WHEEL_NEVER;
    w->earliest_ok = 1; /* empty: "never" is exact */
    w->firing = 0;
    w->levels = 0;
    w->gen = 0;
    list_init(&w->batch);
    for (unsigned l = 0; l < AT_WHEEL_LEVELS; l++) {
        w->bitmap[l] = 0;
        for (unsigned s = 0; s < AT_WHEEL_SLOTS; s++) {
            list_init(&w->slot[l][s]);
            w->mark[l][s].node = NULL;
            w->mark[l][s].gen = 0;
        }
    }
    return w;
}

void at__wheel_free(at_wheel *w)
{
    at__free(w);
}

void at__wheel_del(at_wheel *w, at_timer *t)
{
    if (t->where == AT_TIMER_IDLE)
        return;
    int in_slot = t->where == AT_TIMER_SLOT;
    list_unlink(t);
    if (in_slot && list_empty(&w->slot[t->level][t->slot]))
        clear_slot_bit(w, t->level, t->slot);
    /* Another timer may share the expiry, but finding out would mean a scan:
     * recompute lazily instead. */
    if (in_slot && t->expires == w->earliest)
        w->earliest_ok = 0;
    t->where = AT_TIMER_IDLE;
    w->count--;
}

void at__wheel_add(at_wheel *w, at_timer *t, uint64_t expires)
{
    at__wheel_del(w, t);
    /* The clamp keeps every expiry >= now, which the placement relies on; the
     * fresh sequence number puts the timer after those already due now. */
    if (expires < w->now)
        expires = w->now;
    t->expires = expires;
    t->seq = w->seq++;
    place(w, t);
    if (w->earliest_ok && expires < w->earliest)
        w->earliest = expires;
    w->count++;
}

/* Lowest non-empty level and its first slot; 0 when the wheel's slots are
 * all empty. */
static int lowest_slot(const at_wheel *w, unsigned *lp, unsigned *sp)
{
    if (!w->levels)
        return 0;
    unsigned l = (unsigned)__builtin_ctz(w->levels);
    *lp = l;
    *sp = (unsigned)__builtin_ctzll(w->bitmap[l]);
    return 1;
}

/* Timers with equal expiry always share one slot (a second one would have
 * to lie at a different level, which the placement rule excludes), they are
 * appended in seq order and cascade() keeps list order: so a level-0 slot
 * is already in seq order and the O(k) check in sort_batch() returns.  This
 * merge sort is the safety net the design asks for should that argument
 * ever be broken by a change; at__wheel_check() reports such a slot.  Sorts
 * the NULL-terminated list linked through `next`. */
static at_timer *merge_sort_by_seq(at_timer *h)
{
    if (!h || !h->next)
        return h;
    at_timer *slow = h, *fast = h->next;
    while (fast && fast->next) {
        slow = slow->next;
        fast = fast->next->next;
    }
    at_timer *b = slow->next;
    slow->next = NULL;
    at_timer *a = merge_sort_by_seq(h);
    b = merge_sort_by_seq(b);
    at_timer head, *tail = &head;
    while (a && b) {
        if (b->seq < a->seq) {
            tail->next = b;
            b = b->next;
        } else {
            tail->next = a;
            a = a->next;
        }
        tail = tail->next;
    }
    tail->next = a ? a : b;
    return head.next;
}

static void sort_batch(at_wheel *w)
{
    at_timer *head = &w->batch;
    int sorted = 1;
    for (at_timer *t = head->next; t->next != head; t = t->next) {
        if (t->next->seq < t->seq) {
            sorted = 0;
            break;
        }
    }
    if (sorted)
        return;
    head->prev->next = NULL;
    at_timer *t = merge_sort_by_seq(head->next);
    list_init(head);
    while (t) {
        at_timer *n = t->next;
        list_append(head, t);
        t = n;
    }
}

/* Cascade helpers: a front-half node goes before the back-half nodes this
 * cascade already put in its slot; a back-half node too, and becomes the
 * slot's new mark.  The result per slot: [older timers][front half in order]
 * [back half in order]. */
static void place_front(at_wheel *w, at_timer *t)
{
    unsigned l = level_for(t->expires, w->now), s = slot_for(t->expires, l);
    at_timer *at = w->mark[l][s].gen == w->gen ? w->mark[l][s].node : NULL;
    place_before(w, t, l, s, at);
}

static void place_back(at_wheel *w, at_timer *t)
{
    unsigned l = level_for(t->expires, w->now), s = slot_for(t->expires, l);
    at_timer *at = w->mark[l][s].gen == w->gen ? w->mark[l][s].node : NULL;
    place_before(w, t, l, s, at);
    w->mark[l][s].node = t;
    w->mark[l][s].gen = w->gen;
}

/* Re-place the detached list a..b relative to the new wheel time.  Each
 * timer now shares the time's bits down to the cascaded level, so it lands
 * strictly lower and never in the slot being emptied.  The nodes are
 * scattered in memory and each step of a list walk waits for a cache miss,
 * so the list is walked from both ends at once: two independent chains of
 * misses, about half the time.  Insertion order, which the firing order of
 * equal expiries relies on, survives thanks to the per-slot marks (a new
 * generation per cascade makes old marks void without clearing them). */
static void cascade(at_wheel *w, at_timer *a, at_timer *b)
{
    w->gen++;
    for (;;) {
        if (a == b) {
            place_front(w, a);
            return;
        }
        at_timer *na = a->next, *pb = b->prev;
        place_front(w, a);
        place_back(w, b);
        if (na == b)
            return;
        a = na;
        b = pb;
    }
}

size_t at__wheel_advance(at_wheel *w, uint64_t now, at_timer_fn fire, void *ud)
{
    size_t fired = 0;
    unsigned l, s;

    if (w->firing)
        return 0; /* re-entered from a callback: the outer call does the work */
    w->firing = 1;
    while (lowest_slot(w, &l, &s)) {
        uint64_t t = slot_start(w->now, l, s);
        if (t > now)
            break;
        /* t is the earliest slot start, so moving time there skips nothing;
         * every other timer keeps its level (ADR/0004). */
        w->now = t;
        at_timer *head = &w->slot[l][s];
        at_timer *first = head->next, *last = head->prev;
        list_init(head);
        clear_slot_bit(w, l, s);
        if (l > 0) {
            cascade(w, first, last);
            continue;
        }
        /* Level 0: all expire exactly at t.  Keep them on a sentinel list so
         * that a callback deleting a batch member is an O(1) unlink. */
        at_timer *b = &w->batch;
        b->next = first;
        first->prev = b;
        b->prev = last;
        last->next = b;
        for (at_timer *x = first; x != b; x = x->next)
            x->where = AT_TIMER_FIRING;
        sort_batch(w);
        if (w->earliest == t)
            w->earliest_ok = 0;
        while (!list_empty(b)) {
            at_timer *x = b->next;
            list_unlink(x);
            x->where = AT_TIMER_IDLE;
            w->count--;
            fired++;
            fire(x, ud);
        }
    }
    /* No event is due at or before `now`, so moving the time there keeps
     * every timer's level (ADR/0004); never move it backwards. */
    if (now > w->now)
        w->now = now;
    w->firing = 0;
    return fired;
}

uint64_t at__wheel_now(const at_wheel *w)
{
    return w->now;
}

uint64_t at__wheel_next(const at_wheel *w)
{
    unsigned l, s;
    if (!list_empty(&w->batch))
        return w->now;
    if (!lowest_slot(w, &l, &s))
        return AT_WHEEL_NEVER;
    return slot_start(w->now, l, s);
}

uint64_t at__wheel_earliest(at_wheel *w)
{
    unsigned l, s;
    if (!list_empty(&w->batch))
        return w->now; /* called from a callback: the rest of the batch */
    if (w->earliest_ok)
        return w->earliest;
    uint64_t e = AT_WHEEL_NEVER;
    if (lowest_slot(w, &l, &s)) {
        if (l == 0) {
            e = slot_start(w->now, 0, s);
        } else {
            const at_timer *head = &w->slot[l][s];
            for (const at_timer *x = head->next; x != head; x = x->next)
                if (x->expires < e)
                    e = x->expires;
        }
    }
    w->earliest = e;
    w->earliest_ok = 1;
    return e;
}

size_t at__wheel_count(const at_wheel *w)
{
    return w->count;
}

int at__wheel_check(const at_wheel *w)
{
    size_t n = 0;
    uint32_t levels = 0;
    uint64_t min = AT_WHEEL_NEVER;

    for (unsigned l = 0; l < AT_WHEEL_LEVELS; l++) {
        for (unsigned s = 0; s < AT_WHEEL_SLOTS; s++) {
            const at_timer *head = &w->slot[l][s];
            int bit = (int)((w->bitmap[l] >> s) & 1);
            if (bit != !list_empty(head))
                return -1; /* bitmap disagrees with the slot */
            if (l == AT_WHEEL_LEVELS - 1 && s >= 16 && bit)
                return -2; /* level 10 only covers bits 60..63 */
            for (const at_timer *x = head->next; x != head; x = x->next) {
                if (x->next->prev != x || x->prev->next != x)
                    return -3; /* broken links */
                if (x->where != AT_TIMER_SLOT || x->level != l || x->slot != s)
                    return -4; /* node fields disagree with its slot */
                if (x->expires < w->now)
                    return -5; /* expiry behind the wheel time */
                unsigned pl = level_for(x->expires, w->now);
                if (pl != l || ((x->expires >> (AT_WHEEL_BITS * l)) & SLOT_MASK) != s)
                    return -6; /* not where (expires, now) says it belongs */
                if (x->seq >= w->seq)
                    return -7; /* sequence number from the future */
                /* Adjacent pairs only; complete at level 0, one expiry per slot. */
                if (x->next != head && x->next->expires == x->expires && x->next->seq < x->seq)
                    return -8; /* equal expiries out of insertion order */
                if (x->expires < min)
                    min = x->expires;
                n++;
            }
        }
        if (w->bitmap[l])
            levels |= 1u << l;
    }
    if (levels != w->levels)
        return -9; /* level summary disagrees with the bitmaps */
    for (const at_timer *x = w->batch.next; x != &w->batch; x = x->next) {
        if (x->where != AT_TIMER_FIRING || x->expires != w->now)
            return -10; /* batch member not firing now */
        if (x->next != &w->batch && x->next->seq < x->seq)
            return -11; /* batch out of insertion order */
        n++;
    }
    if (n != w->count)
        return -12; /* count disagrees with the timers found */
    if (w->earliest_ok && w->earliest != min)
        return -13; /* stale earliest cache */
    return 0;
}
