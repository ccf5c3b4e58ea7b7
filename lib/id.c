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
    /* 130 bits of output for 128 of input: the first character carries 3. */
    unsigned __int128 v = 0;
    for (int i = 0; i < 16; i++)
        v = (v << 8) | b[i];
    for (int i = AT_ID_LEN - 1; i >= 0; i--) {
        out[i] = ENC[(unsigned)(v & 31)];
        v >>= 5;
    }
    out[AT_ID_LEN] = '\0';
}

static int dec(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    const char *p = c ? strchr(ENC, c) : NULL;
    return p ? (int)(p - ENC) : -1;
}

AT_EXTERN int at_id_parse(uint8_t out[16], const char *id)
{
    if (!id || strlen(id) != AT_ID_LEN)
        return AT_ERR_INVAL;
    unsigned __int128 v = 0;
    for (int i = 0; i < AT_ID_LEN; i++) {
        int d = dec(id[i]);
        if (d < 0 || (i == 0 && d > 7))
            return AT_ERR_INVAL;
        v = (v << 5) | (unsigned)d;
    }
    for (int i = 15; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
    return 0;
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
