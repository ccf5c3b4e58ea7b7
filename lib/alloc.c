/*
 * alloc.c - the library's allocator hooks.
 *
 * Every allocation of the core and the memory backend goes through these, so
 * a host can account memory and a test can make the Nth allocation fail
 * (at_set_allocator(3)).  Plain function pointers: the hooks are set before
 * any store opens, so reading them needs no lock.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static at_malloc_fn g_malloc = malloc;
static at_realloc_fn g_realloc = realloc;
static at_free_fn g_free = free;

AT_EXTERN int at_set_allocator(at_malloc_fn m, at_realloc_fn r, at_free_fn f, at_malloc_fn *m_old,
                               at_realloc_fn *r_old, at_free_fn *f_old)
{
    if (m_old)
        *m_old = g_malloc;
    if (r_old)
        *r_old = g_realloc;
    if (f_old)
        *f_old = g_free;
    if (!m && !r && !f) {
        g_malloc = malloc;
        g_realloc = realloc;
        g_free = free;
        return 0;
    }
    /* A partial set would pair one allocator's malloc with another's free. */
    if (!m || !r || !f)
        return AT_ERR_INVAL;
    g_malloc = m;
    g_realloc = r;
    g_free = f;
    return 0;
}

void *at__malloc(size_t n)
{
    return g_malloc(n ? n : 1);
}

void *at__calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t total = n * size;
    void *p = g_malloc(total ? total : 1);
    if (p)
        memset(p, 0, total);
    return p;
}

void *at__realloc(void *p, size_t n)
{
    return g_realloc(p, n ? n : 1);
}

void at__free(void *p)
{
    if (p)
        g_free(p);
}

char *at__strdup(const char *s)
{
    return s ? at__memdup(s, strlen(s) + 1) : NULL;
}

void *at__memdup(const void *p, size_t n)
{
    void *q = g_malloc(n ? n : 1);
    if (q && n)
        memcpy(q, p, n);
    return q;
}
