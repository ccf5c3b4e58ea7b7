/*
 * wheel.h - hierarchical timing wheel (internal to libasynctask).
 *
 * Holds timers with 1 ms resolution for the memory backend (delayed jobs,
 * retry backoffs, lease deadlines) and for anything else in the core that
 * must sleep exactly until a known time.  Design, order rule and clock
 * mapping: ADR/0004-timing-wheel.md.
 *
 *  - 11 levels of 64 slots (6 bits each) cover the whole uint64_t range, so a
 *    timer years ahead needs no overflow list.  A timer lives at the level of
 *    the highest 6-bit group in which its expiry differs from the wheel's
 *    time, which makes every occupied slot lie *after* the current one: the
 *    next event is the lowest set bit of the lowest non-empty level.
 *  - Insert and cancel are O(1); a timer is cascaded at most once per level.
 *  - Intrusive: the caller embeds at_timer in its own record, so arming a
 *    million timers allocates nothing.
 *  - Tickless: nothing happens between calls; at__wheel_advance(now) does
 *    all due work, at__wheel_next() says how long the caller may sleep.
 *
 * Order rule: one advance fires every timer with expires <= now in
 * ascending (expires, insertion sequence) order.  A timer added with an
 * expiry at or before the wheel's current time is clamped to that time (it is
 * due at once and fires after the timers already due at that time).
 *
 * Not thread-safe: the owner serialises calls (the memory backend holds its
 * store lock).
 */
#ifndef AT_WHEEL_H
#define AT_WHEEL_H

#include <stddef.h>
#include <stdint.h>

#define AT_WHEEL_BITS 6
#define AT_WHEEL_SLOTS 64
#define AT_WHEEL_LEVELS 11 /* ceil(64 / 6) */
#define AT_WHEEL_NEVER UINT64_MAX

typedef struct at_timer {
    struct at_timer *next, *prev; /* slot list links (circular, sentinel head) */
    uint64_t expires;             /* absolute time in wheel ms */
    uint64_t seq;                 /* insertion sequence: tie-break for equal expiries */
    uint8_t level, slot;          /* where it is while pending in a slot */
    uint8_t where;                /* AT_TIMER_IDLE / _SLOT / _FIRING */
} at_timer;

#define AT_TIMER_IDLE 0
#define AT_TIMER_SLOT 1
#define AT_TIMER_FIRING 2

typedef struct at_wheel at_wheel;

typedef void (*at_timer_fn)(at_timer *timer, void *ud);

/* Initialise an embedded timer node (idle). */
void at__timer_init(at_timer *t);
/* 1 while the timer is armed (in a slot, or collected and about to fire). */
int at__timer_pending(const at_timer *t);

/* A wheel whose current time is `now`.  NULL when out of memory. */
at_wheel *at__wheel_new(uint64_t now);
/* Frees the wheel; armed timers are simply forgotten (they are the caller's). */
void at__wheel_free(at_wheel *w);

/* Arm (or re-arm) `t` to expire at `expires`; clamped to the wheel's time. */
void at__wheel_add(at_wheel *w, at_timer *t, uint64_t expires);
/* Disarm `t`; harmless if it is idle.  Safe from inside a fire callback, for
 * any timer, including ones collected in the same advance. */
void at__wheel_del(at_wheel *w, at_timer *t);

/* Move the wheel's time to `now` (never backwards: an earlier `now` fires
 * nothing, not even timers clamped to the wheel's time, and leaves the time
 * as it is) and fire every due timer in the order rule,
 * calling fire(timer, ud) with the timer already idle.  Callbacks may add and
 * delete timers (one added at or before the current time fires later in the
 * same call), but must not call advance: nested, it fires nothing and
 * returns 0.  Returns the number of timers fired. */
size_t at__wheel_advance(at_wheel *w, uint64_t now, at_timer_fn fire, void *ud);

/* The wheel's current time. */
uint64_t at__wheel_now(const at_wheel *w);
/* Earliest time at which advance has work to do (an expiry, or a cascade of
 * far timers toward finer levels): never later than the earliest expiry.
 * O(levels), no scanning.  AT_WHEEL_NEVER when empty. */
uint64_t at__wheel_next(const at_wheel *w);
/* The exact earliest expiry, AT_WHEEL_NEVER when empty.  Looks into one slot
 * at most and caches the answer until that timer goes. */
uint64_t at__wheel_earliest(at_wheel *w);
/* Number of armed timers. */
size_t at__wheel_count(const at_wheel *w);
/* Invariant checker for tests: 0 when consistent, else a negative number
 * naming the first broken invariant. */
int at__wheel_check(const at_wheel *w);

#endif /* AT_WHEEL_H */
