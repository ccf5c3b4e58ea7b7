/*
 * backoff.c - retry delays, computed by the core so every backend retries
 * on the same schedule.
 *
 * delay(n) = min(cap, base * 2^(n-1)) for the n-th failed attempt, then
 * jitter takes off up to jitter/1000 of it: delay * (1 - j * U), U in [0,1).
 * Jitter only shortens, so the cap is a true upper bound and a retry storm
 * of jobs that failed together spreads out ("equal jitter" family).
 */
#include <sys/random.h>

#include "internal.h"

uint64_t at__random64(void)
{
    /* xorshift64* per thread, seeded once from getrandom: jitter needs
     * spread, not secrecy, and must not cost a syscall per failure. */
    static _Thread_local uint64_t state;
    if (state == 0) {
        if (getrandom(&state, sizeof state, 0) != sizeof state || state == 0)
            state = (uint64_t)at__real_mono_ns() | 1;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Dull;
}

int64_t at__backoff_ms(uint32_t attempt, int64_t base_ms, int64_t cap_ms, int32_t jitter, uint64_t r)
{
    if (attempt < 1)
        attempt = 1;
    if (base_ms <= 0)
        return 0;
    int64_t d = base_ms;
    for (uint32_t i = 1; i < attempt && d < cap_ms; i++)
        d = d > cap_ms / 2 ? cap_ms : d * 2;
    if (d > cap_ms)
        d = cap_ms;
    if (d < 0) /* a cap below zero: only a policy read from a damaged store */
        d = 0;
    if (jitter > 0) {
        /* U in [0,1) with 53 bits; the reduction is floor(d * j/1000 * U).
         * The permille is clamped and the cut bounded in double before the
         * conversion: a policy read from a store need not be in range, and
         * converting an out-of-range double is undefined. */
        if (jitter > 1000)
            jitter = 1000;
        double u = (double)(r >> 11) * (1.0 / 9007199254740992.0);
        double c = (double)d * (jitter / 1000.0) * u;
        int64_t cut = c >= (double)d ? d : (int64_t)c;
        d -= cut;
    }
    return d;
}
