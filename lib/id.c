/*
 * id.c - job ids: 128 bits, 48 of Unix milliseconds then 80 that make the id
 * unique, written as 26 characters of Crockford base32 (the ULID layout),
 * so that ids sort by creation time as plain strings.
 *
 * Within one process ids are strictly increasing: in the same millisecond
 * the 80-bit part is incremented instead of drawn again, which is also what
 * lets the memory backend keep each queue's job list in id order by
 * appending.  A new millisecond draws 80 fresh bits from getrandom(), so two
 * processes or hosts collide only with probability ~2^-80 per millisecond.
 * After fork() the child draws afresh (at__id_after_fork), else parent and
 * child would produce the same sequence.
 */
#include <string.h>
#include <sys/random.h>

#include "internal.h"

static const char ENC[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_last_ms;
static uint8_t g_rand[10];

static void fill_random(uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        /* getrandom cannot fail on Linux >= 3.17 once the pool is seeded;
         * fall back to the monotonic clock's noise rather than abort. */
        uint64_t x = (uint64_t)at__real_mono_ns() * 0x9E3779B97F4A7C15ull;
        for (; got < n; got++, x = x * 6364136223846793005ull + 1442695040888963407ull)
            buf[got] = (uint8_t)(x >> 56);
    }
}

void at__id_after_fork(void)
{
    /* Runs in the child's only thread: no lock held by anyone. */
    g_last_ms = 0;
    pthread_mutex_init(&g_mu, NULL);
}

AT_EXTERN void at_id_format(char out[AT_ID_SIZE], const uint8_t b[16])
{
    /* 130 bits of output for 128 of input: the first character carries 3.
     * The low 60 bits give characters 14..25, character 13 straddles the
     * halves, the high 63 bits give 0..12. */
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) {
        hi = (hi << 8) | b[i];
        lo = (lo << 8) | b[8 + i];
    }
    for (int i = AT_ID_LEN - 1; i >= 14; i--, lo >>= 5)
        out[i] = ENC[lo & 31];
    out[13] = ENC[(lo & 15) | ((hi & 1) << 4)];
    hi >>= 1;
    for (int i = 12; i >= 0; i--, hi >>= 5)
        out[i] = ENC[hi & 31];
    out[AT_ID_LEN] = '\0';
}

/* Decoding table: -1 for characters outside the alphabet; lower case is
 * accepted as Crockford's spec asks. */
static const int8_t g_dec[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1, -1, -1, -1, -1, -1,
    -1, 10, 11, 12, 13, 14, 15, 16, 17, -1, 18, 19, -1, 20, 21, -1,
    22, 23, 24, 25, 26, -1, 27, 28, 29, 30, 31, -1, -1, -1, -1, -1,
    -1, 10, 11, 12, 13, 14, 15, 16, 17, -1, 18, 19, -1, 20, 21, -1,
    22, 23, 24, 25, 26, -1, 27, 28, 29, 30, 31, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

AT_EXTERN int at_id_parse(uint8_t out[16], const char *id)
{
    if (!id || strnlen(id, AT_ID_SIZE) != AT_ID_LEN)
        return AT_ERR_INVAL;
    const unsigned char *c = (const unsigned char *)id;
    /* 128 bits = 3 bits of c[0] + 5 of each of c[1..25]: c[0..12] fill the
     * top 63 bits, c[13] is split 1 + 4, c[14..25] fill the low 60.  Invalid
     * characters decode to -1, whose sign bit `bad` collects, so the loop has
     * no branch per character (this runs several times per job). */
    int bad = 0;
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 13; i++) {
        int d = g_dec[c[i]];
        bad |= d;
        hi = (hi << 5) | (uint64_t)(d & 31);
    }
    int d13 = g_dec[c[13]];
    bad |= d13;
    hi = (hi << 1) | (uint64_t)((d13 & 31) >> 4);
    lo = (uint64_t)(d13 & 15);
    for (int i = 14; i < AT_ID_LEN; i++) {
        int d = g_dec[c[i]];
        bad |= d;
        lo = (lo << 5) | (uint64_t)(d & 31);
    }
    if (bad < 0 || g_dec[c[0]] > 7)
        return AT_ERR_INVAL;
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)hi;
        out[8 + i] = (uint8_t)lo;
        hi >>= 8;
        lo >>= 8;
    }
    return 0;
}

int at__id_canon(char out[AT_ID_SIZE], const char *id)
{
    if (!id || strnlen(id, AT_ID_SIZE) != AT_ID_LEN)
        return AT_ERR_INVAL;
    int bad = 0;
    for (int i = 0; i < AT_ID_LEN; i++) {
        int d = g_dec[(unsigned char)id[i]];
        bad |= d;
        out[i] = ENC[d & 31];
    }
    out[AT_ID_LEN] = '\0';
    return bad < 0 || g_dec[(unsigned char)id[0]] > 7 ? AT_ERR_INVAL : 0;
}

void at__id_new(char out[AT_ID_SIZE])
{
    uint8_t b[16];
    uint64_t ms = (uint64_t)(at__real_wall_ns() / 1000000);
    pthread_mutex_lock(&g_mu);
    if (ms <= g_last_ms) {
        /* Same millisecond, or the wall clock stepped back: keep the last
         * time and count up, so ids stay increasing in this process. */
        ms = g_last_ms;
        int i = 9;
        while (i >= 0 && ++g_rand[i] == 0)
            i--;
        if (i < 0) /* 2^80 ids in one ms: borrow the next millisecond */
            g_last_ms = ++ms;
    } else {
        g_last_ms = ms;
        fill_random(g_rand, sizeof g_rand);
        g_rand[0] &= 0x7f; /* headroom so increments rarely carry into the time */
    }
    memcpy(b + 6, g_rand, 10);
    pthread_mutex_unlock(&g_mu);
    for (int i = 5; i >= 0; i--) {
        b[i] = (uint8_t)ms;
        ms >>= 8;
    }
    at_id_format(out, b);
}
