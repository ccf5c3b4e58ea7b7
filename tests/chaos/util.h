/*
 * util.h - clocks, sleeps and a seeded random stream for the fault and
 * chaos test programs (tests/chaos/, tests/faults/).
 *
 * Header-only (static inline) so that each program includes it without
 * another source file in its _SOURCES, and so that a program run under
 * libfaketime still calls clock_gettime() itself, from its own code: what
 * the clocks mean (faked or not) is the same as when each program carried
 * its own copy.  The older Check suites (tests/test_worker.c,
 * tests/sched_procs.c, ...) keep theirs.
 */
#ifndef AT_TESTS_CHAOS_UTIL_H
#define AT_TESTS_CHAOS_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* Milliseconds on clock `id`. */
static inline int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic milliseconds: for durations and deadlines. */
static inline int64_t mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

/* Monotonic nanoseconds: for durations shorter than a millisecond. */
static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wall-clock milliseconds since the epoch, the time the library's API
 * speaks (run_at, lease ends). */
static inline int64_t wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

/* Sleep the whole `ms`, resumed when a signal handler interrupts it (a
 * negative `ms` returns at once: nanosleep refuses it). */
static inline void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* xorshift64*: a reproducible stream from the printed seed (rand() would
 * do, but its state is shared and threads or children need their own).
 * The state must not be 0. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

/* A number in [0, n), or 0 when n is 0. */
static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return n ? rng_next(s) % n : 0;
}

/* The seed of a run given none: differs between runs and between
 * processes started in the same second; the programs print it so that a
 * failing run can be repeated with --seed. */
static inline uint64_t seed_default(void)
{
    return (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
}

#endif
