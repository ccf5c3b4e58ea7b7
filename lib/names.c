/*
 * names.c - the charset rules for queue names, job types and idempotency
 * keys, checked before any store is touched.
 *
 * Names are restricted to characters that are safe unquoted in a Redis key,
 * a SQL literal, a file name, a Prometheus label and a shell word, so no
 * backend and no tool has to escape them (at_enqueue(3) documents the set).
 */
#include "internal.h"

/* Bit 1: allowed in names; bit 2: allowed in keys. */
static const unsigned char k_class[256] = {
    ['.'] = 3, ['_'] = 3, [':'] = 3, ['-'] = 3, ['/'] = 2, ['@'] = 2, ['+'] = 2, ['='] = 2, ['#'] = 2,
#define R3(a) [a] = 3
#define DIGITS R3('0'), R3('1'), R3('2'), R3('3'), R3('4'), R3('5'), R3('6'), R3('7'), R3('8'), R3('9')
#define UPPER                                                                                                \
    R3('A'), R3('B'), R3('C'), R3('D'), R3('E'), R3('F'), R3('G'), R3('H'), R3('I'), R3('J'), R3('K'), R3('L'),  \
        R3('M'), R3('N'), R3('O'), R3('P'), R3('Q'), R3('R'), R3('S'), R3('T'), R3('U'), R3('V'), R3('W'),    \
        R3('X'), R3('Y'), R3('Z')
#define LOWER                                                                                                \
    R3('a'), R3('b'), R3('c'), R3('d'), R3('e'), R3('f'), R3('g'), R3('h'), R3('i'), R3('j'), R3('k'), R3('l'),  \
        R3('m'), R3('n'), R3('o'), R3('p'), R3('q'), R3('r'), R3('s'), R3('t'), R3('u'), R3('v'), R3('w'),    \
        R3('x'), R3('y'), R3('z')
    DIGITS, UPPER, LOWER,
#undef R3
#undef DIGITS
#undef UPPER
#undef LOWER
};

static int check(const char *s, size_t max, unsigned char bit)
{
    if (!s || !*s)
        return AT_ERR_NAME;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (n >= max || !(k_class[*p] & bit))
            return AT_ERR_NAME;
    return 0;
}

int at__check_name(const char *s)
{
    return check(s, AT_NAME_MAX, 1);
}

int at__check_key(const char *s)
{
    return check(s, AT_KEY_MAX, 2);
}
