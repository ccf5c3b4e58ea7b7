/*
 * names.c - the charset rules for queue names, job types and idempotency
 * keys, checked before any store is touched.
 *
 * Names are restricted to characters that are safe unquoted in a Redis key,
 * a SQL literal, a file name, a Prometheus label and a shell word, so no
 * backend and no tool has to escape them (at_enqueue(3) documents the set).
 */
#include <string.h>

#include "internal.h"

static int check(const char *s, size_t max, const char *extra)
{
    if (!s)
        return AT_ERR_NAME;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++) {
        unsigned char c = *p;
        if (n >= max)
            return AT_ERR_NAME;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
            c == '_' || c == ':' || c == '-')
            continue;
        if (extra && c && strchr(extra, c))
            continue;
        return AT_ERR_NAME;
    }
    return n == 0 ? AT_ERR_NAME : 0;
}

int at__check_name(const char *s)
{
    return check(s, AT_NAME_MAX, NULL);
}

int at__check_key(const char *s)
{
    return check(s, AT_KEY_MAX, "/@+=#");
}
