/*
 * registry.c - URI scheme -> backend vtable.
 *
 * Built-in backends are in the table from the start; at_store_register()
 * appends out-of-tree ones.  A small fixed table under a mutex: lookups happen
 * once per at_store_open, registrations once per process.
 */
#include <stddef.h>
#include <string.h>

#include "internal.h"

#ifdef AT_HAVE_SQLITE
extern const at_store_vtable at__sqlite_vtable;
#endif
#ifdef AT_HAVE_REDIS
extern const at_store_vtable at__redis_vtable;
extern const at_store_vtable at__redis_sentinel_vtable;
#endif

#define MAX_BACKENDS 32

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static const at_store_vtable *g_table[MAX_BACKENDS] = {
    &at__memory_vtable,
#ifdef AT_HAVE_SQLITE
    &at__sqlite_vtable,
#endif
#ifdef AT_HAVE_REDIS
    &at__redis_vtable,
    &at__redis_sentinel_vtable,
#endif
};

static int valid_scheme(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 31 || !(s[0] >= 'a' && s[0] <= 'z'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

const at_store_vtable *at__registry_find(const char *scheme, size_t len)
{
    const at_store_vtable *found = NULL;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < MAX_BACKENDS && g_table[i]; i++)
        if (strlen(g_table[i]->scheme) == len && memcmp(g_table[i]->scheme, scheme, len) == 0) {
            found = g_table[i];
            break;
        }
    pthread_mutex_unlock(&g_mu);
    return found;
}

AT_EXTERN int at_store_register(const at_store_vtable *vt)
{
    at__err_clear();
    if (!vt)
        return AT_ERR_INVAL;
    if (vt->version < 1 || vt->size < offsetof(at_store_vtable, control))
        return at__err_set(NULL, AT_ERR_INVAL, 0, "vtable version %u / size %u is too old or too small",
                           (unsigned)vt->version, (unsigned)vt->size);
    if (!valid_scheme(vt->scheme))
        return at__err_set(NULL, AT_ERR_INVAL, 0, "scheme must be 1..31 of [a-z0-9+.-], starting with a letter");
    if (!vt->open || !vt->close || !vt->enqueue || !vt->claim || !vt->ack || !vt->fail || !vt->touch ||
        !vt->cancel || !vt->get || !vt->list || !vt->requeue || !vt->purge || !vt->stats)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "vtable for '%s' lacks a required method", vt->scheme);
    int rc = 0;
    pthread_mutex_lock(&g_mu);
    size_t i = 0;
    for (; i < MAX_BACKENDS && g_table[i]; i++)
        if (strcmp(g_table[i]->scheme, vt->scheme) == 0)
            break;
    if (i == MAX_BACKENDS)
        rc = at__err_set(NULL, AT_ERR_FULL, 0, "at most %d backends can be registered", MAX_BACKENDS);
    else if (g_table[i])
        rc = at__err_set(NULL, AT_ERR_EXISTS, 0, "scheme '%s' is already registered", vt->scheme);
    else
        g_table[i] = vt;
    pthread_mutex_unlock(&g_mu);
    return rc;
}
